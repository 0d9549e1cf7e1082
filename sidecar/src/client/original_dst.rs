//! The destination a connection had before iptables redirected it to the sidecar.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::sys::socket::{SockaddrIn, SockaddrIn6, getsockopt, sockopt};
use tokio::net::TcpStream;

/// Reads the original destination of a redirected connection: `SO_ORIGINAL_DST` for IPv4,
/// `IP6T_SO_ORIGINAL_DST` for IPv6 (netfilter's conntrack entry for the socket).
///
/// A connection that was not redirected has no such entry and yields an error, or its own local
/// address; [`is_redirected`] tells the two apart.
pub fn original_dst(tcp: &TcpStream) -> io::Result<SocketAddr> {
    let local = tcp.local_addr()?;
    // A dual-stack listener sees IPv4 clients as v4-mapped IPv6: their conntrack entry is IPv4.
    let ipv4 = match local.ip() {
        std::net::IpAddr::V4(_) => true,
        std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped().is_some(),
    };
    let destination = if ipv4 {
        let raw = getsockopt(tcp, sockopt::OriginalDst)?;
        SocketAddr::V4(SocketAddrV4::from(SockaddrIn::from(raw)))
    } else {
        let raw = getsockopt(tcp, sockopt::Ip6tOriginalDst)?;
        SocketAddr::V6(SocketAddrV6::from(SockaddrIn6::from(raw)))
    };
    Ok(destination)
}

/// Whether `original` differs from the socket's local address: a connection made straight to
/// the sidecar's port has itself as "original destination", and tunneling it would loop.
pub fn is_redirected(tcp: &TcpStream, original: SocketAddr) -> bool {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    tcp.local_addr()
        .is_ok_and(|local| canonical(local) != canonical(original))
}

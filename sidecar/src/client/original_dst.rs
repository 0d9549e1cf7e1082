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
    let destination = if local.is_ipv4() {
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
    tcp.local_addr().is_ok_and(|local| local != original)
}

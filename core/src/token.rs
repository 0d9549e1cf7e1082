//! The destination token: how a Warren client tells the tunnel server, inside the TLS
//! ClientHello, where the tunneled connection is going.
//!
//! rustls does not let applications add TLS extensions, so the token rides as one entry of the
//! ALPN extension (RFC 7301), next to Warren's protocol id [`ALPN_PROTOCOL`]. The server reads it
//! before it answers the ClientHello and negotiates [`ALPN_PROTOCOL`]; the handshake transcript
//! covers the whole ClientHello, so the token is authenticated like the rest of the handshake.
//!
//! Wire format (all integers big-endian), specified in `docs/protocol.md`:
//!
//! ```text
//! token   = magic version kind port address
//! magic   = "wdst"                     ; 4 bytes
//! version = %x01                       ; 1 byte
//! kind    = %x04 / %x06 / %x64         ; IPv4, IPv6, DNS name ("d")
//! port    = 2 bytes, 1..=65535
//! address = 4 bytes / 16 bytes / 1..=247 bytes of a lower-case DNS name
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::destination::{Destination, validate_dns_name};

/// The ALPN protocol id a Warren server negotiates with a Warren client.
pub const ALPN_PROTOCOL: &[u8] = b"warren/1";

/// The first bytes of every destination token; ALPN entries without them are not tokens.
pub const MAGIC: &[u8; 4] = b"wdst";

/// The token version this code writes and reads.
pub const VERSION: u8 = 1;

/// Bytes before the address: magic, version, kind and port.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + 1 + 2;

/// An ALPN protocol name is at most 255 bytes (RFC 7301), so a token is too.
pub const MAX_TOKEN_LEN: usize = 255;

/// The longest DNS name a token carries: what is left of [`MAX_TOKEN_LEN`] after the header.
pub const MAX_NAME_LEN: usize = MAX_TOKEN_LEN - HEADER_LEN;

const KIND_IPV4: u8 = 0x04;
const KIND_IPV6: u8 = 0x06;
const KIND_NAME: u8 = b'd';

/// Why a destination cannot be encoded, or a token cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a destination token")]
    NotAToken,
    /// The token is of a version this code does not know.
    #[error("unsupported token version {0}")]
    UnsupportedVersion(u8),
    /// The address kind byte is unknown.
    #[error("unknown address kind 0x{0:02x}")]
    UnknownKind(u8),
    /// The token is shorter or longer than its kind allows.
    #[error("token length {len} is invalid for its address kind")]
    BadLength {
        /// The token's length in bytes.
        len: usize,
    },
    /// The port is zero.
    #[error("port 0 is not a destination")]
    ZeroPort,
    /// The DNS name is not valid.
    #[error("invalid DNS name: {0}")]
    InvalidName(&'static str),
    /// The DNS name does not fit in an ALPN entry.
    #[error("DNS name of {len} bytes is longer than the {MAX_NAME_LEN} a token carries")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The ClientHello carries more than one token.
    #[error("more than one destination token")]
    Duplicate,
    /// The ClientHello has a token but does not offer [`ALPN_PROTOCOL`].
    #[error(
        "token without the {:?} protocol id",
        String::from_utf8_lossy(ALPN_PROTOCOL)
    )]
    MissingProtocolId,
}

/// Encodes a destination as a token.
pub fn encode(dest: &Destination) -> Result<Vec<u8>, TokenError> {
    let (kind, port, address): (u8, u16, &[u8]);
    let octets_v4;
    let octets_v6;
    match dest {
        Destination::Ip(SocketAddr::V4(a)) => {
            octets_v4 = a.ip().octets();
            (kind, port, address) = (KIND_IPV4, a.port(), &octets_v4);
        }
        Destination::Ip(SocketAddr::V6(a)) => {
            octets_v6 = a.ip().octets();
            (kind, port, address) = (KIND_IPV6, a.port(), &octets_v6);
        }
        Destination::Name { host, port: p } => {
            if host.len() > MAX_NAME_LEN {
                return Err(TokenError::NameTooLong { len: host.len() });
            }
            validate_dns_name(host).map_err(TokenError::InvalidName)?;
            (kind, port, address) = (KIND_NAME, *p, host.as_bytes());
        }
    }
    if port == 0 {
        return Err(TokenError::ZeroPort);
    }
    let mut token = Vec::with_capacity(HEADER_LEN + address.len());
    token.extend_from_slice(MAGIC);
    token.push(VERSION);
    token.push(kind);
    token.extend_from_slice(&port.to_be_bytes());
    token.extend_from_slice(address);
    Ok(token)
}

/// Decodes one token. Never panics, whatever the input.
pub fn decode(token: &[u8]) -> Result<Destination, TokenError> {
    let rest = token.strip_prefix(MAGIC).ok_or(TokenError::NotAToken)?;
    let (&version, rest) = rest
        .split_first()
        .ok_or(TokenError::BadLength { len: token.len() })?;
    if version != VERSION {
        return Err(TokenError::UnsupportedVersion(version));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::BadLength { len: token.len() });
    }
    let [kind, port_hi, port_lo, address @ ..] = rest else {
        return Err(TokenError::BadLength { len: token.len() });
    };
    let port = u16::from_be_bytes([*port_hi, *port_lo]);
    if port == 0 {
        return Err(TokenError::ZeroPort);
    }
    let bad_length = || TokenError::BadLength { len: token.len() };
    match *kind {
        KIND_IPV4 => {
            let octets: [u8; 4] = address.try_into().map_err(|_| bad_length())?;
            Ok(Destination::Ip(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(octets)),
                port,
            )))
        }
        KIND_IPV6 => {
            let octets: [u8; 16] = address.try_into().map_err(|_| bad_length())?;
            Ok(Destination::Ip(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        KIND_NAME => {
            let host =
                std::str::from_utf8(address).map_err(|_| TokenError::InvalidName("not ASCII"))?;
            validate_dns_name(host).map_err(TokenError::InvalidName)?;
            Ok(Destination::Name {
                host: host.to_owned(),
                port,
            })
        }
        other => Err(TokenError::UnknownKind(other)),
    }
}

/// Finds the destination in a ClientHello's ALPN entries.
///
/// `Ok(None)` means the client sent no token (a plain TLS client such as stunnel). A token must
/// come with [`ALPN_PROTOCOL`], and there must be at most one.
pub fn find_in_alpn<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<Destination>, TokenError> {
    let mut found = None;
    let mut offers_protocol = false;
    for entry in entries {
        if entry == ALPN_PROTOCOL {
            offers_protocol = true;
        } else if entry.starts_with(MAGIC) {
            if found.is_some() {
                return Err(TokenError::Duplicate);
            }
            found = Some(decode(entry)?);
        }
    }
    match found {
        Some(_) if !offers_protocol => Err(TokenError::MissingProtocolId),
        found => Ok(found),
    }
}

/// The ALPN list a Warren client offers for `dest`: the token, then [`ALPN_PROTOCOL`].
pub fn client_alpn(dest: &Destination) -> Result<Vec<Vec<u8>>, TokenError> {
    Ok(vec![encode(dest)?, ALPN_PROTOCOL.to_vec()])
}

#[cfg(test)]
mod tests;

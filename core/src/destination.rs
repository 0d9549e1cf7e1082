//! Where a tunneled connection is going.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The longest DNS name Warren accepts as a destination, in bytes (RFC 1035's limit).
pub const MAX_DNS_NAME_LEN: usize = 253;

/// A connection's destination: an IP socket address, or a DNS name and a port that the tunnel
/// server resolves.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// An IPv4 or IPv6 address with a port.
    Ip(SocketAddr),
    /// A DNS name (lower-case, without a trailing dot) with a port.
    Name {
        /// The host name, validated by [`validate_dns_name`].
        host: String,
        /// The TCP port.
        port: u16,
    },
}

/// Why a string is not a valid destination.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DestinationParseError {
    /// The string has no `:port` suffix.
    #[error("missing ':PORT' in {0:?}")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("invalid port {0:?}: expected 1-65535")]
    InvalidPort(String),
    /// The host is neither an IP address nor a valid DNS name.
    #[error("invalid host {host:?}: {why}")]
    InvalidHost {
        /// The offending host part.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

// === impl Destination ===

impl Destination {
    /// Builds a name destination, validating and lower-casing the host; an IP literal given as a
    /// "name" becomes an [`Destination::Ip`].
    pub fn from_host_port(host: &str, port: u16) -> Result<Self, DestinationParseError> {
        if port == 0 {
            return Err(DestinationParseError::InvalidPort("0".into()));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Destination::Ip(SocketAddr::new(ip, port)));
        }
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        validate_dns_name(&host).map_err(|why| DestinationParseError::InvalidHost {
            host: host.clone(),
            why,
        })?;
        Ok(Destination::Name { host, port })
    }

    /// The destination's port.
    pub fn port(&self) -> u16 {
        match self {
            Destination::Ip(addr) => addr.port(),
            Destination::Name { port, .. } => *port,
        }
    }

    /// The same host with another port.
    pub fn with_port(&self, port: u16) -> Self {
        match self {
            Destination::Ip(addr) => Destination::Ip(SocketAddr::new(addr.ip(), port)),
            Destination::Name { host, .. } => Destination::Name {
                host: host.clone(),
                port,
            },
        }
    }
}

impl FromStr for Destination {
    type Err = DestinationParseError;

    /// Parses `1.2.3.4:80`, `[fd00::1]:80` or `example.com:80`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(DestinationParseError::InvalidPort("0".into()));
            }
            return Ok(Destination::Ip(addr));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| DestinationParseError::MissingPort(s.into()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| DestinationParseError::InvalidPort(port.into()))?;
        Destination::from_host_port(host, port)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Ip(addr) => write!(f, "{addr}"),
            Destination::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl From<SocketAddr> for Destination {
    fn from(addr: SocketAddr) -> Self {
        Destination::Ip(addr)
    }
}

/// Checks that `name` is a lower-case DNS host name: 1 to 253 bytes, labels of 1 to 63 bytes
/// made of `a-z`, `0-9` and inner `-` (underscores are allowed too, as SRV-style names use them).
pub fn validate_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err("longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 bytes");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("label starts or ends with '-'");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err("characters other than a-z, 0-9, '-' and '_'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_ipv6_and_names() {
        assert_eq!(
            "10.0.0.1:443".parse::<Destination>().unwrap(),
            Destination::Ip("10.0.0.1:443".parse().unwrap())
        );
        assert_eq!(
            "[fd00::1]:80".parse::<Destination>().unwrap(),
            Destination::Ip("[fd00::1]:80".parse().unwrap())
        );
        assert_eq!(
            "Api.Example.COM.:8443".parse::<Destination>().unwrap(),
            Destination::Name {
                host: "api.example.com".into(),
                port: 8443
            }
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            "example.com".parse::<Destination>(),
            Err(DestinationParseError::MissingPort(_))
        ));
        assert!(matches!(
            "example.com:0".parse::<Destination>(),
            Err(DestinationParseError::InvalidPort(_))
        ));
        assert!(matches!(
            "example.com:70000".parse::<Destination>(),
            Err(DestinationParseError::InvalidPort(_))
        ));
        assert!(matches!(
            "exa mple.com:80".parse::<Destination>(),
            Err(DestinationParseError::InvalidHost { .. })
        ));
        assert!(matches!(
            "-a.com:80".parse::<Destination>(),
            Err(DestinationParseError::InvalidHost { .. })
        ));
        let long = format!("{}.com:80", "a".repeat(260));
        assert!(long.parse::<Destination>().is_err());
    }

    #[test]
    fn displays_round_trip() {
        for s in ["10.0.0.1:443", "[fd00::1]:80", "example.com:8443"] {
            assert_eq!(s.parse::<Destination>().unwrap().to_string(), s);
        }
    }
}

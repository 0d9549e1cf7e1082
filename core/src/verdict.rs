//! The verdict: the first bytes a Warren server sends after the handshake, telling the client
//! whether its connection goes through and, when it does not, why and which route decided.
//!
//! It is only sent when [`crate::token::ALPN_PROTOCOL`] was negotiated, so plain TLS peers
//! (stunnel) never see it. Wire format, specified in `docs/protocol.md`:
//!
//! ```text
//! verdict = version code route-len route
//! version = %x01; code = 1 byte (see VerdictCode); route-len = 1 byte; route = route-len bytes UTF-8
//! ```

use std::fmt;

/// The verdict format version this code writes and reads.
pub const VERSION: u8 = 1;

/// The longest route name a verdict carries, in bytes; longer names are cut at a char boundary.
pub const MAX_ROUTE_LEN: usize = 255;

/// Bytes before the route name.
pub const HEADER_LEN: usize = 3;

/// Why a connection was or was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum VerdictCode {
    /// Connected to the destination; relaying follows.
    Connected = 0,
    /// A route denied the destination.
    DeniedByRoute = 1,
    /// No route matched: default deny.
    NoRoute = 2,
    /// The destination refused or reset the connection, or was unreachable.
    UpstreamFailed = 3,
    /// Connecting to the destination timed out.
    UpstreamTimeout = 4,
    /// The server has no policy yet (e.g. before its first sync with the Kubernetes API).
    PolicyNotReady = 5,
    /// The destination's DNS name did not resolve.
    ResolveFailed = 6,
}

/// A decoded verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What happened.
    pub code: VerdictCode,
    /// The deciding route, `namespace/name`, or empty when none decided.
    pub route: String,
}

/// Why verdict bytes are invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerdictError {
    /// The version byte is unknown.
    #[error("unsupported verdict version {0}")]
    UnsupportedVersion(u8),
    /// The code byte is unknown.
    #[error("unknown verdict code {0}")]
    UnknownCode(u8),
    /// The route name is not UTF-8.
    #[error("route name is not UTF-8")]
    InvalidRoute,
}

// === impl VerdictCode ===

impl VerdictCode {
    /// A stable lower-case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictCode::Connected => "connected",
            VerdictCode::DeniedByRoute => "denied_by_route",
            VerdictCode::NoRoute => "no_route",
            VerdictCode::UpstreamFailed => "upstream_failed",
            VerdictCode::UpstreamTimeout => "upstream_timeout",
            VerdictCode::PolicyNotReady => "policy_not_ready",
            VerdictCode::ResolveFailed => "resolve_failed",
        }
    }

    fn from_u8(code: u8) -> Result<Self, VerdictError> {
        Ok(match code {
            0 => VerdictCode::Connected,
            1 => VerdictCode::DeniedByRoute,
            2 => VerdictCode::NoRoute,
            3 => VerdictCode::UpstreamFailed,
            4 => VerdictCode::UpstreamTimeout,
            5 => VerdictCode::PolicyNotReady,
            6 => VerdictCode::ResolveFailed,
            other => return Err(VerdictError::UnknownCode(other)),
        })
    }
}

impl fmt::Display for VerdictCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Verdict ===

impl Verdict {
    /// Encodes the verdict; a route name over [`MAX_ROUTE_LEN`] bytes is shortened.
    pub fn encode(&self) -> Vec<u8> {
        let mut end = self.route.len().min(MAX_ROUTE_LEN);
        while !self.route.is_char_boundary(end) {
            end -= 1;
        }
        let route = &self.route.as_bytes()[..end];
        let mut out = Vec::with_capacity(HEADER_LEN + route.len());
        out.extend_from_slice(&[VERSION, self.code as u8, route.len() as u8]);
        out.extend_from_slice(route);
        out
    }

    /// Checks the fixed header and returns how many route bytes follow it.
    pub fn route_len(header: [u8; HEADER_LEN]) -> Result<usize, VerdictError> {
        if header[0] != VERSION {
            return Err(VerdictError::UnsupportedVersion(header[0]));
        }
        VerdictCode::from_u8(header[1])?;
        Ok(header[2] as usize)
    }

    /// Decodes a verdict from its header and the route bytes that followed it.
    pub fn decode(header: [u8; HEADER_LEN], route: &[u8]) -> Result<Self, VerdictError> {
        Self::route_len(header)?;
        let code = VerdictCode::from_u8(header[1])?;
        let route = std::str::from_utf8(route).map_err(|_| VerdictError::InvalidRoute)?;
        Ok(Verdict {
            code,
            route: route.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vectors() {
        let v = Verdict {
            code: VerdictCode::DeniedByRoute,
            route: "shop/deny-db".into(),
        };
        assert_eq!(v.encode(), b"\x01\x01\x0cshop/deny-db");
        let ok = Verdict {
            code: VerdictCode::Connected,
            route: String::new(),
        };
        assert_eq!(ok.encode(), b"\x01\x00\x00");
        let bytes = v.encode();
        let header = [bytes[0], bytes[1], bytes[2]];
        assert_eq!(Verdict::route_len(header), Ok(12));
        assert_eq!(Verdict::decode(header, &bytes[3..]), Ok(v));
    }

    #[test]
    fn rejects_unknown_versions_and_codes() {
        assert_eq!(
            Verdict::route_len([2, 0, 0]),
            Err(VerdictError::UnsupportedVersion(2))
        );
        assert_eq!(
            Verdict::route_len([1, 99, 0]),
            Err(VerdictError::UnknownCode(99))
        );
        assert_eq!(
            Verdict::decode([1, 1, 2], &[0xff, 0xfe]),
            Err(VerdictError::InvalidRoute)
        );
    }

    #[test]
    fn long_route_names_are_cut_on_a_char_boundary() {
        let v = Verdict {
            code: VerdictCode::NoRoute,
            route: "é".repeat(200),
        };
        let bytes = v.encode();
        assert_eq!(bytes[2] as usize, 254);
        assert!(std::str::from_utf8(&bytes[3..]).is_ok());
    }
}

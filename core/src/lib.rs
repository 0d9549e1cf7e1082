//! Warren's domain logic, free of I/O, Kubernetes and TLS libraries so that it is unit-tested
//! and fuzzed on its own.
//!
//! - [`destination`]: where a tunneled connection wants to go (an IP socket address or a DNS
//!   name with a port).
//! - [`token`]: the versioned destination token a Warren client places in the ALPN extension of
//!   its ClientHello (specified in `docs/protocol.md`).
//! - [`identity`]: the client identity taken from its certificate (SPIFFE URI SAN, DNS SANs).
//! - [`policy`]: routes, their compiled index, and the deterministic decision for one connection.
//! - [`verdict`]: the server's first answer after the handshake: connected, or why not.
//! - [`capture`]: the networks and ports `warren init` captures, as flags and annotations give them.
#![forbid(unsafe_code)]

pub mod capture;
pub mod destination;
pub mod identity;
pub mod policy;
pub mod token;
pub mod verdict;

pub use destination::{Destination, DestinationParseError};
pub use identity::ClientIdentity;

//! Warren's data plane: the `warren` binary's library.
//!
//! - [`client`]: the sidecar. Accepts the application's (redirected) connections and tunnels
//!   each to the server, its destination in the ClientHello.
//! - [`server`]: the tunnel server. Reads the destination, asks the [`policy`], connects,
//!   answers with a verdict and relays.
//! - [`init`]: the iptables rules that send a pod's outbound TCP to the sidecar.
//! - Shared pieces: [`tls`] configurations and their [`reload`]ing, [`connect`]ing to a
//!   destination, the [`relay`], the [`accept`] loop with graceful [`shutdown`], [`metrics`] and
//!   the [`admin`] listener, [`telemetry`] (logs).
//!
//! [`run`] wires a parsed command line to these.
#![forbid(unsafe_code)]

pub mod accept;
pub mod admin;
pub mod cli;
pub mod client;
pub mod connect;
pub mod init;
pub mod limits;
pub mod metrics;
pub mod policy;
pub mod relay;
pub mod reload;
pub mod run;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

pub use run::run;

use std::time::Duration;

/// The time limits of a client or server.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For connecting to the next hop, and separately for the TLS handshake.
    pub connect: Duration,
    /// A tunnel with no traffic either way for this long is closed.
    pub idle: Duration,
    /// How long live tunnels may finish after shutdown begins.
    pub drain: Duration,
}

//! The tunnel client (the sidecar): accepts the application's connections, finds where each was
//! going, and carries it through a mutual-TLS tunnel to the server.
//!
//! The data path per connection, in [`connection`]:
//! `accept → original destination → connect to server → handshake (token in ALPN) → verdict
//! → relay`.

mod connection;
pub mod original_dst;

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use warren_core::Destination;

use crate::Timeouts;

/// Where the client sends each connection.
#[derive(Debug, Clone)]
pub enum Mode {
    /// To the connection's original destination, read from the socket after an iptables
    /// REDIRECT, carried in the token.
    Transparent,
    /// To one fixed destination, carried in the token so the server's policy still decides.
    Fixed(Destination),
    /// Plain TLS to a non-Warren server (e.g. stunnel): no token, no verdict.
    Plain,
}

/// Everything a running client needs.
pub struct Client {
    /// The bound listener.
    pub listener: TcpListener,
    /// The tunnel server.
    pub server: Destination,
    /// The name the server's certificate must carry.
    pub server_name: ServerName<'static>,
    /// TLS configuration without ALPN, replaced when the certificate files change.
    pub tls: watch::Receiver<Arc<ClientConfig>>,
    /// Where connections go.
    pub mode: Mode,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Connections handled at once, at most.
    pub max_connections: usize,
}

// === impl Client ===

impl Client {
    /// Accepts until `shutdown` is cancelled, then drains live connections.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Ok(local) = self.listener.local_addr() {
            tracing::info!(%local, server = %self.server, mode = ?self.mode, "tunnel client listening");
        }
        let shared = Arc::new(connection::Shared {
            server: self.server,
            server_name: self.server_name,
            mode: self.mode,
            timeouts: self.timeouts,
        });
        let tls = self.tls;
        crate::accept::serve(
            self.listener,
            shutdown,
            self.timeouts.drain,
            self.max_connections,
            move |tcp, peer| connection::handle(tcp, peer, tls.borrow().clone(), shared.clone()),
        )
        .await;
    }
}

//! The tunnel server: accepts mutual-TLS connections, reads the destination token from the
//! ClientHello, asks the connect policy, connects and relays.
//!
//! The data path per connection, in [`connection`]:
//! `accept → read ClientHello (token) → finish handshake → decide → connect → verdict → relay`.

mod connection;
mod reject;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Timeouts;
use crate::policy::ConnectPolicy;
use crate::tls::ServerConfigs;

/// Everything a running server needs.
pub struct Server {
    /// The bound listener.
    pub listener: TcpListener,
    /// TLS configurations, replaced when the certificate files change.
    pub tls: watch::Receiver<Arc<ServerConfigs>>,
    /// The connect callback.
    pub policy: Arc<dyn ConnectPolicy>,
    /// Whether token-less (plain TLS) clients are served; only static `--connect` mode does,
    /// because a policy cannot decide without a destination.
    pub accept_plain: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Connections handled at once, at most.
    pub max_connections: usize,
}

// === impl Server ===

impl Server {
    /// Accepts until `shutdown` is cancelled, then drains live connections.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Ok(local) = self.listener.local_addr() {
            tracing::info!(%local, "tunnel server listening");
        }
        let shared = Arc::new(connection::Shared {
            policy: self.policy,
            accept_plain: self.accept_plain,
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

//! One application connection on the client, from accept to the last relayed byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use warren_core::Destination;
use warren_core::token::{self, ALPN_PROTOCOL};
use warren_core::verdict::{HEADER_LEN, Verdict, VerdictCode};

use super::Mode;
use super::original_dst::{is_redirected, original_dst};
use crate::Timeouts;
use crate::connect;
use crate::metrics;
use crate::relay;

/// What every connection shares.
pub(super) struct Shared {
    pub(super) server: Destination,
    pub(super) server_name: ServerName<'static>,
    pub(super) mode: Mode,
    pub(super) timeouts: Timeouts,
}

/// Why a connection did not get through, for the log line and the outcome label.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot read the original destination: {0}")]
    OriginalDst(std::io::Error),
    #[error(
        "connection was not redirected by iptables (original destination is the sidecar itself)"
    )]
    NotRedirected,
    #[error("destination token: {0}")]
    Token(#[from] token::TokenError),
    #[error("tunnel server: {0}")]
    Server(#[from] connect::ConnectError),
    #[error("TLS handshake with the tunnel server: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake with the tunnel server timed out")]
    HandshakeTimeout,
    #[error(
        "the tunnel server did not negotiate {:?}: not a Warren server, or plain mode is needed",
        String::from_utf8_lossy(ALPN_PROTOCOL)
    )]
    NotWarren,
    #[error("reading the verdict: {0}")]
    Verdict(String),
    #[error("denied by the tunnel server: {code} (route {route})")]
    Denied { code: VerdictCode, route: String },
}

// === impl Failure ===

impl Failure {
    fn outcome(&self) -> &'static str {
        match self {
            Failure::OriginalDst(_) | Failure::NotRedirected => "no_destination",
            Failure::Token(_) => "bad_destination",
            Failure::Server(_) => "server_unreachable",
            Failure::Handshake(_) | Failure::HandshakeTimeout | Failure::NotWarren => {
                "handshake_failed"
            }
            Failure::Verdict(_) => "protocol_error",
            Failure::Denied { .. } => "denied",
        }
    }
}

/// Serves one application connection.
pub(super) async fn handle(
    app: TcpStream,
    peer: SocketAddr,
    tls: Arc<ClientConfig>,
    shared: Arc<Shared>,
) {
    let metrics = metrics::get();
    metrics.accepted.with_label_values(&["client"]).inc();
    metrics.active.inc();
    let started = Instant::now();
    let _ = app.set_nodelay(true);
    let mut destination = None;
    let result = tunnel(&app, &tls, &shared, &mut destination).await;
    let destination = destination.map_or_else(|| "-".to_owned(), |d| d.to_string());
    match result {
        Ok(tunnel) => {
            let outcome = relay::relay(app, tunnel, shared.timeouts.idle).await;
            metrics
                .bytes
                .with_label_values(&["outbound"])
                .inc_by(outcome.forward);
            metrics
                .bytes
                .with_label_values(&["inbound"])
                .inc_by(outcome.backward);
            metrics
                .closed
                .with_label_values(&["client", outcome.end.as_str()])
                .inc();
            tracing::info!(
                %peer,
                %destination,
                outcome = outcome.end.as_str(),
                bytes_out = outcome.forward,
                bytes_in = outcome.backward,
                duration_ms = started.elapsed().as_millis() as u64,
                "connection closed"
            );
        }
        Err(failure) => {
            if let Failure::Denied { code, .. } = &failure {
                metrics
                    .denials_received
                    .with_label_values(&[code.as_str()])
                    .inc();
            }
            metrics
                .closed
                .with_label_values(&["client", failure.outcome()])
                .inc();
            tracing::warn!(
                %peer,
                %destination,
                outcome = failure.outcome(),
                duration_ms = started.elapsed().as_millis() as u64,
                "connection refused: {failure}"
            );
            // A reset, not a clean FIN, so the application sees a failure, not an empty reply.
            let _ = app.set_zero_linger();
        }
    }
    metrics.active.dec();
}

/// Opens the tunnel for `app`: destination, server connection, handshake, verdict.
async fn tunnel(
    app: &TcpStream,
    tls: &Arc<ClientConfig>,
    shared: &Shared,
    destination: &mut Option<Destination>,
) -> Result<TlsStream<TcpStream>, Failure> {
    let config = match &shared.mode {
        Mode::Transparent => {
            let original = original_dst(app).map_err(Failure::OriginalDst)?;
            if !is_redirected(app, original) {
                return Err(Failure::NotRedirected);
            }
            with_token(tls, destination.insert(Destination::Ip(original)))?
        }
        Mode::Fixed(fixed) => with_token(tls, destination.insert(fixed.clone()))?,
        Mode::Plain => tls.clone(),
    };
    let framed = !matches!(shared.mode, Mode::Plain);
    let tcp = connect::connect(&shared.server, shared.timeouts.connect).await?;
    let handshake_started = Instant::now();
    let handshake = TlsConnector::from(config).connect(shared.server_name.clone(), tcp);
    let mut stream = tokio::time::timeout(shared.timeouts.connect, handshake)
        .await
        .map_err(|_| Failure::HandshakeTimeout)?
        .map_err(Failure::Handshake)?;
    metrics::get()
        .handshake_seconds
        .with_label_values(&["client"])
        .observe(handshake_started.elapsed().as_secs_f64());
    if framed {
        if stream.get_ref().1.alpn_protocol() != Some(ALPN_PROTOCOL) {
            return Err(Failure::NotWarren);
        }
        let verdict = read_verdict(&mut stream, shared).await?;
        if verdict.code != VerdictCode::Connected {
            return Err(Failure::Denied {
                code: verdict.code,
                route: if verdict.route.is_empty() {
                    "-".into()
                } else {
                    verdict.route
                },
            });
        }
    }
    Ok(stream)
}

/// The client configuration with this connection's ALPN list: the token, then Warren's id.
fn with_token(
    base: &Arc<ClientConfig>,
    destination: &Destination,
) -> Result<Arc<ClientConfig>, Failure> {
    let mut config = ClientConfig::clone(base);
    config.alpn_protocols = token::client_alpn(destination)?;
    Ok(Arc::new(config))
}

/// Reads the server's verdict, which comes once the server has connected to the destination.
async fn read_verdict(
    stream: &mut TlsStream<TcpStream>,
    shared: &Shared,
) -> Result<Verdict, Failure> {
    let read = async {
        let mut header = [0u8; HEADER_LEN];
        stream
            .read_exact(&mut header)
            .await
            .map_err(|e| Failure::Verdict(format!("server closed before its verdict: {e}")))?;
        let len = Verdict::route_len(header).map_err(|e| Failure::Verdict(e.to_string()))?;
        let mut route = vec![0u8; len];
        stream
            .read_exact(&mut route)
            .await
            .map_err(|e| Failure::Verdict(e.to_string()))?;
        Verdict::decode(header, &route).map_err(|e| Failure::Verdict(e.to_string()))
    };
    // The server answers after its own connect attempt, itself bounded by a connect timeout.
    let limit = shared.timeouts.connect * 2;
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| Failure::Verdict(format!("no verdict within {limit:?}")))?
}

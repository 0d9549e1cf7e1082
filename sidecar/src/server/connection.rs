//! One tunnel connection on the server, from the first ClientHello byte to the last relayed one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rustls::server::Acceptor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use warren_core::token::{self, TokenError};
use warren_core::verdict::{Verdict, VerdictCode};
use warren_core::{ClientIdentity, Destination};

use crate::Timeouts;
use crate::connect::{self, ConnectError};
use crate::metrics;
use crate::policy::{ConnectPolicy, ConnectRequest, Decision};
use crate::relay::{self, RelayEnd};
use crate::tls::{ServerConfigs, peer_identity};

/// What every connection shares.
pub(super) struct Shared {
    pub(super) policy: Arc<dyn ConnectPolicy>,
    pub(super) accept_plain: bool,
    pub(super) timeouts: Timeouts,
}

/// The facts of one connection, logged as one line when it ends.
#[derive(Default)]
struct Record {
    identity: Option<ClientIdentity>,
    requested: Option<Destination>,
    decision: Option<Decision>,
    bytes_out: u64,
    bytes_in: u64,
}

/// Serves one accepted TCP connection. Never panics on what the client sends.
pub(super) async fn handle(
    mut tcp: TcpStream,
    peer: SocketAddr,
    tls: Arc<ServerConfigs>,
    shared: Arc<Shared>,
) {
    let metrics = metrics::get();
    metrics.accepted.with_label_values(&["server"]).inc();
    metrics.active.inc();
    let started = Instant::now();
    let _ = tcp.set_nodelay(true);
    let mut record = Record::default();
    let outcome = serve(&mut tcp, peer, &tls, &shared, &mut record).await;
    metrics.active.dec();
    metrics.closed.with_label_values(&["server", outcome]).inc();
    let metrics_bytes = &metrics.bytes;
    metrics_bytes
        .with_label_values(&["outbound"])
        .inc_by(record.bytes_out);
    metrics_bytes
        .with_label_values(&["inbound"])
        .inc_by(record.bytes_in);
    tracing::info!(
        %peer,
        identity = %display_or_dash(record.identity.as_ref()),
        destination = %display_or_dash(record.requested.as_ref()),
        decision = record.decision.as_ref().map_or("-", Decision::action),
        route = record.decision.as_ref().map_or("-", Decision::route),
        target = %display_or_dash(record.decision.as_ref().and_then(target_of)),
        outcome,
        bytes_out = record.bytes_out,
        bytes_in = record.bytes_in,
        duration_ms = started.elapsed().as_millis() as u64,
        "connection closed"
    );
}

/// The connection's steps; returns the outcome label.
async fn serve(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    tls: &ServerConfigs,
    shared: &Shared,
    record: &mut Record,
) -> &'static str {
    let handshake_started = Instant::now();
    let deadline = shared.timeouts.connect;
    let start = match tokio::time::timeout(
        deadline,
        LazyConfigAcceptor::new(Acceptor::default(), &mut *tcp),
    )
    .await
    {
        Err(_) => return "handshake_timeout",
        // A TCP health check connects and closes without a word: not a failed handshake.
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return "closed_before_hello";
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "invalid ClientHello");
            return "handshake_failed";
        }
        Ok(Ok(start)) => start,
    };
    let hello = start.client_hello();
    let found = token::find_in_alpn(hello.alpn().into_iter().flatten());
    let (config, framed) = match found {
        Ok(Some(destination)) => {
            record.requested = Some(destination);
            (tls.warren.clone(), true)
        }
        Ok(None) if shared.accept_plain => (tls.plain.clone(), false),
        Ok(None) => {
            drop(start);
            return refuse_token(tcp, peer, "missing", None).await;
        }
        Err(error) => {
            drop(start);
            return refuse_token(tcp, peer, token_reason(&error), Some(error)).await;
        }
    };
    let remaining = deadline.saturating_sub(handshake_started.elapsed());
    let mut stream = match tokio::time::timeout(remaining, start.into_stream(config)).await {
        Err(_) => return "handshake_timeout",
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return "handshake_failed";
        }
        Ok(Ok(stream)) => stream,
    };
    metrics::get()
        .handshake_seconds
        .with_label_values(&["server"])
        .observe(handshake_started.elapsed().as_secs_f64());
    let identity = peer_identity(stream.get_ref().1.peer_certificates());
    let decision = shared
        .policy
        .decide(ConnectRequest {
            identity: &identity,
            peer,
            destination: record.requested.as_ref(),
        })
        .await;
    record.identity = Some(identity);
    metrics::get()
        .decisions
        .with_label_values(&[decision.action()])
        .inc();
    let target = match &decision {
        Decision::Allow { target, .. } | Decision::Redirect { target, .. } => target.clone(),
        Decision::Deny { code, route } => {
            let verdict = Verdict {
                code: *code,
                route: route.clone().unwrap_or_default(),
            };
            record.decision = Some(decision);
            if framed {
                let _ = stream.write_all(&verdict.encode()).await;
            }
            let _ = stream.shutdown().await;
            return "denied";
        }
    };
    record.decision = Some(decision);
    let upstream = match connect::connect(&target, shared.timeouts.connect).await {
        Ok(upstream) => upstream,
        Err(error) => {
            metrics::get()
                .upstream_failures
                .with_label_values(&[error.label()])
                .inc();
            tracing::warn!(%peer, %target, %error, "cannot connect to destination");
            if framed {
                let verdict = Verdict {
                    code: verdict_for(&error),
                    route: String::new(),
                };
                let _ = stream.write_all(&verdict.encode()).await;
            }
            let _ = stream.shutdown().await;
            return "upstream_failed";
        }
    };
    if framed {
        let connected = Verdict {
            code: VerdictCode::Connected,
            route: String::new(),
        };
        if stream.write_all(&connected.encode()).await.is_err() {
            return "client_gone";
        }
    }
    let outcome = relay::relay(stream, upstream, shared.timeouts.idle).await;
    record.bytes_out = outcome.forward;
    record.bytes_in = outcome.backward;
    if let RelayEnd::Error(error) = &outcome.end {
        tracing::debug!(%peer, %error, "relay ended with an error");
    }
    outcome.end.as_str()
}

/// Refuses a ClientHello whose destination token is missing or invalid.
async fn refuse_token(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    reason: &'static str,
    error: Option<TokenError>,
) -> &'static str {
    metrics::get()
        .token_rejections
        .with_label_values(&[reason])
        .inc();
    match error {
        Some(error) => {
            tracing::warn!(%peer, reason, %error, "refused ClientHello: bad destination token")
        }
        None => tracing::warn!(%peer, reason, "refused ClientHello: no destination token"),
    }
    super::reject::no_application_protocol(tcp).await;
    "bad_token"
}

/// The metric label of a token error.
fn token_reason(error: &TokenError) -> &'static str {
    match error {
        TokenError::BadLength { .. } | TokenError::NameTooLong { .. } => "oversized_or_truncated",
        TokenError::UnsupportedVersion(_) => "unsupported_version",
        TokenError::Duplicate => "duplicate",
        TokenError::MissingProtocolId => "missing_protocol_id",
        TokenError::NotAToken
        | TokenError::UnknownKind(_)
        | TokenError::ZeroPort
        | TokenError::InvalidName(_) => "malformed",
    }
}

fn verdict_for(error: &ConnectError) -> VerdictCode {
    match error {
        ConnectError::Timeout { .. } => VerdictCode::UpstreamTimeout,
        ConnectError::Resolve { .. } => VerdictCode::ResolveFailed,
        ConnectError::Connect { .. } => VerdictCode::UpstreamFailed,
    }
}

fn target_of(decision: &Decision) -> Option<&Destination> {
    match decision {
        Decision::Allow { target, .. } | Decision::Redirect { target, .. } => Some(target),
        Decision::Deny { .. } => None,
    }
}

fn display_or_dash<T: std::fmt::Display>(value: Option<&T>) -> String {
    value.map_or_else(|| "-".to_owned(), ToString::to_string)
}

//! Graceful shutdown: SIGTERM or Ctrl-C stops the accept loops, then live connections get up to
//! the drain timeout to finish.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cancels `token` on the first SIGTERM or SIGINT.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: draining"),
        }
        token.cancel();
    });
}

/// Waits for the tracked connections to finish, at most `timeout`; returns how many were still
/// open when it gave up.
pub async fn drain(connections: &TaskTracker, timeout: Duration) -> usize {
    connections.close();
    if tokio::time::timeout(timeout, connections.wait())
        .await
        .is_ok()
    {
        tracing::info!("drained: all connections finished");
        0
    } else {
        let left = connections.len();
        tracing::warn!(left, "drain timeout: closing remaining connections");
        left
    }
}

//! Rebuilds a value when the files it is built from change on disk: the tunnel's certificates
//! and policy file, the webhook's serving certificate.
//!
//! Files are polled rather than watched with inotify: Kubernetes mounts Secrets and ConfigMaps
//! through symlink swaps that inotify watches on the file itself miss, and a poll of a few small
//! files every couple of seconds costs nothing.

use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// What a reloaded value is for, in logs and metrics (`tls`, `policy`).
pub type Subject = &'static str;

/// Builds the value once (an error here is the caller's start-up error), then keeps rebuilding
/// it whenever the content of one of `paths` changes, until every receiver is gone. A rebuild
/// that fails keeps the last good value and logs why; `reloaded` hears whether each rebuild
/// succeeded (for metrics).
pub fn watch_files<T, E, F, R>(
    subject: Subject,
    paths: Vec<PathBuf>,
    interval: Duration,
    build: F,
    reloaded: R,
) -> Result<watch::Receiver<Arc<T>>, E>
where
    T: Send + Sync + 'static,
    E: Display + Send + 'static,
    F: Fn() -> Result<T, E> + Send + 'static,
    R: Fn(bool) + Send + 'static,
{
    let mut seen = snapshot(&paths);
    let (tx, rx) = watch::channel(Arc::new(build()?));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let now = snapshot(&paths);
            if now == seen {
                continue;
            }
            seen = now;
            match build() {
                Ok(value) => {
                    tx.send_replace(Arc::new(value));
                    reloaded(true);
                    tracing::info!(subject, "reloaded from changed files");
                }
                Err(error) => {
                    reloaded(false);
                    tracing::error!(subject, %error, "reload failed; keeping the last good version");
                }
            }
        }
    });
    Ok(rx)
}

/// The files' contents (None where unreadable): comparing contents, not mtimes, catches
/// same-second rewrites and symlink swaps alike.
fn snapshot(paths: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    paths.iter().map(|p| std::fs::read(p).ok()).collect()
}

//! File reloading ([`warren_operator::reload`]), counted in this process's metrics.

use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
pub use warren_operator::reload::Subject;

/// [`warren_operator::reload::watch_files`], each rebuild counted in
/// `warren_reloads_total{subject, result}`.
pub fn watch_files<T, E, F>(
    subject: Subject,
    paths: Vec<PathBuf>,
    interval: Duration,
    build: F,
) -> Result<watch::Receiver<Arc<T>>, E>
where
    T: Send + Sync + 'static,
    E: Display + Send + 'static,
    F: Fn() -> Result<T, E> + Send + 'static,
{
    warren_operator::reload::watch_files(subject, paths, interval, build, move |ok| {
        crate::metrics::get()
            .reloads
            .with_label_values(&[subject, if ok { "ok" } else { "error" }])
            .inc();
    })
}

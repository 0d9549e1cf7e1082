//! Routes from a file of TunnelRoute manifests, reloaded when it changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use warren_core::policy::PolicyIndex;

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file cannot be read.
    #[error("policy file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid set of TunnelRoutes.
    #[error("policy file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with which route.
        source: anyhow::Error,
    },
}

/// Reads and compiles the routes in `path`.
pub fn load(path: &Path, trust_domain: &str) -> Result<PolicyIndex, PolicyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parse_error = |source: anyhow::Error| PolicyFileError::Parse {
        path: path.to_owned(),
        source,
    };
    let manifests =
        warren_operator::api::parse_routes_yaml(&text).map_err(|e| parse_error(e.into()))?;
    let routes = manifests
        .iter()
        .map(warren_core::policy::Route::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_error(e.into()))?;
    let index = PolicyIndex::new(trust_domain, routes);
    crate::metrics::get().policy_routes.set(index.len() as i64);
    Ok(index)
}

/// Loads `path` now (an error is a start-up error) and again whenever it changes; a file that
/// turns bad keeps the last good routes in force.
pub fn watch(
    path: PathBuf,
    trust_domain: String,
    interval: Duration,
) -> Result<watch::Receiver<Arc<PolicyIndex>>, PolicyFileError> {
    crate::reload::watch_files("policy", vec![path.clone()], interval, move || {
        load(&path, &trust_domain)
    })
}

//! Installing Warren's CRDs into a test cluster, once per test binary.

use std::sync::OnceLock;

use crate::TestCluster;

/// The generated CRDs.
pub const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");

/// `kubectl apply -f crds/`, then waits until the TunnelRoute CRD is Established. Runs once per
/// process; later calls return the first result.
pub fn install_crds(cluster: &TestCluster) -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let apply = cluster
                .kubectl(&["apply", "-f", CRDS])
                .map_err(|e| e.to_string())?;
            if !apply.contains("tunnelroutes.warren.dev") {
                return Err(format!(
                    "kubectl apply did not mention tunnelroutes.warren.dev:\n{apply}"
                ));
            }
            wait_established(cluster).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("installing {CRDS}: {e}"))
}

/// Waits until the API server serves the TunnelRoute CRD (after an apply or an update).
pub fn wait_established(cluster: &TestCluster) -> Result<(), crate::Error> {
    cluster
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/tunnelroutes.warren.dev",
            "--timeout=60s",
        ])
        .map(drop)
}

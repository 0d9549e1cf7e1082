//! Routes watched live from the Kubernetes API (`--policy-source kubernetes`).

use anyhow::Context;
use warren_operator::routes_watch::{WatchConfig, watch_routes};

use super::RoutesPolicy;
use crate::admin::Readiness;
use crate::metrics;

/// Starts watching TunnelRoutes with the ambient Kubernetes configuration (in-cluster, or
/// `KUBECONFIG`), in `namespaces` (empty: all). The policy refuses connections
/// (`policy_not_ready`) and `readiness` stays false until the first complete list is compiled;
/// afterwards an unreachable API server only sets `warren_policy_stale`, since the last known
/// routes keep serving.
pub async fn start(
    trust_domain: String,
    label_selector: Option<String>,
    namespaces: Vec<String>,
    readiness: Readiness,
) -> anyhow::Result<RoutesPolicy> {
    let client = kube::Client::try_default().await.context(
        "--policy-source kubernetes: no usable Kubernetes configuration (in-cluster or KUBECONFIG)",
    )?;
    let watch = watch_routes(
        client,
        WatchConfig {
            trust_domain,
            label_selector,
            namespaces,
        },
    );
    let synced = Readiness::default();
    let policy = RoutesPolicy::new(watch.routes.clone(), synced.clone());
    let (mut synced_rx, mut stale_rx, mut routes_rx) = (watch.synced, watch.stale, watch.routes);
    tokio::spawn(async move {
        loop {
            let is_synced = *synced_rx.borrow_and_update();
            synced.set(is_synced);
            readiness.set(is_synced);
            metrics::get()
                .policy_stale
                .set(i64::from(*stale_rx.borrow_and_update()));
            metrics::get()
                .policy_routes
                .set(routes_rx.borrow_and_update().len() as i64);
            tokio::select! {
                r = synced_rx.changed() => if r.is_err() { return },
                r = stale_rx.changed() => if r.is_err() { return },
                r = routes_rx.changed() => if r.is_err() { return },
            }
        }
    });
    Ok(policy)
}

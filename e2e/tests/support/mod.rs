//! Support shared by the Kubernetes policy tests: TunnelRoute manifests and an API server
//! connection that a test can cut.

#![allow(dead_code)] // each test binary uses a different part

pub mod proxy;

use anyhow::{Context, Result};
use warren_operator::api::TunnelRoute;

/// A TunnelRoute `namespace/name` for clients `service_accounts` (empty: all of the namespace)
/// and one destination `cidr` with `ports`.
pub fn route(
    namespace: &str,
    name: &str,
    action: &str,
    service_accounts: &[&str],
    cidr: &str,
    ports: &[&str],
) -> Result<TunnelRoute> {
    let mut spec = serde_json::json!({
        "destinations": [{"cidr": cidr, "ports": ports}],
        "action": action,
    });
    if !service_accounts.is_empty() {
        spec["clients"] = serde_json::json!({ "serviceAccounts": service_accounts });
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .context("route JSON")
}

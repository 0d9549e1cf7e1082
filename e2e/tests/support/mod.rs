//! Support shared by the Kubernetes policy tests: TunnelRoute manifests, a `warren server`
//! following them, and an API server connection that a test can cut.

#![allow(dead_code)] // each test binary uses a different part

pub mod proxy;

use anyhow::{Context, Result};
use warren_operator::api::TunnelRoute;
use warren_tests::process::{Proc, free_port, warren_bin};
use warren_tests::tunnel::Pki;

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

/// Starts `warren server --policy-source kubernetes` with `kubeconfig` and `extra` flags.
pub fn start_server(
    pki: &Pki,
    kubeconfig: &std::path::Path,
    extra: &[&str],
) -> (Proc, std::net::SocketAddr, std::net::SocketAddr) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = std::process::Command::new(warren_bin());
    command
        .args([
            "server",
            "--listen",
            &addr.to_string(),
            "--metrics-addr",
            &admin.to_string(),
        ])
        .arg("--cert")
        .arg(&pki.server.cert)
        .arg("--key")
        .arg(&pki.server.key)
        .arg("--client-ca")
        .arg(&pki.server.ca)
        .args(["--policy-source", "kubernetes"])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info");
    (Proc::spawn("server", command, pki.path()), addr, admin)
}

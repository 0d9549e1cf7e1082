//! The `warren-operator` binary against the real API server: two replicas, one Lease; the leader
//! validates TunnelRoutes, writes Accepted/Conflicted conditions and Events; when it stops, the
//! other replica takes over.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use warren_e2e::TestCluster;
use warren_operator::api::TunnelRoute;
use warren_tests::process::{Proc, free_port, warren_bin};
use warren_tests::tunnel::http_get;

fn operator(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
    dir: &std::path::Path,
) -> (Proc, std::net::SocketAddr) {
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let bin = warren_bin().with_file_name("warren-operator");
    let mut command = std::process::Command::new(bin);
    command
        .args(["--admin-addr", &admin.to_string(), "--lease-seconds", "6"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("POD_NAMESPACE", namespace)
        .env("POD_NAME", name)
        .env("RUST_LOG", "info");
    (Proc::spawn(name, command, dir), admin)
}

fn route(
    namespace: &str,
    name: &str,
    action: &str,
    cidr: &str,
    ports: &[&str],
) -> Result<TunnelRoute> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"destinations": [{"cidr": cidr, "ports": ports}], "action": action},
    }))
    .context("route JSON")
}

/// Polls `name` until its condition `type_` has `status`; returns the condition's message.
async fn wait_condition(
    api: &Api<TunnelRoute>,
    name: &str,
    type_: &str,
    status: &str,
) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let route = api.get(name).await?;
        let found = route.status.as_ref().and_then(|s| {
            let fresh = s.observed_generation == route.metadata.generation;
            s.conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == status && fresh)
                .cloned()
        });
        if let Some(condition) = found {
            return Ok(condition.message);
        }
        if Instant::now() > deadline {
            bail!(
                "{name}: no {type_}={status} within 20s; status: {:?}",
                route.status
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_validates_routes_and_a_standby_takes_over() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let namespace = cluster.namespace(&client, "operator").await?;
    let dir = tempfile::tempdir()?;
    let (first, first_admin) = operator(cluster, &namespace, "replica-a", dir.path());
    let (second, second_admin) = operator(cluster, &namespace, "replica-b", dir.path());

    let routes: Api<TunnelRoute> = Api::namespaced(client.clone(), &namespace);
    let pp = PostParams::default();
    routes
        .create(
            &pp,
            &route(&namespace, "allow-web", "Allow", "10.0.0.0/8", &["80-90"])?,
        )
        .await?;
    routes
        .create(
            &pp,
            &route(&namespace, "deny-db", "Deny", "10.1.0.0/16", &["85"])?,
        )
        .await?;
    routes
        .create(
            &pp,
            &route(&namespace, "ssh", "Allow", "192.0.2.0/24", &["22"])?,
        )
        .await?;
    // Valid for the schema, not for the controller: a backwards port range.
    routes
        .create(
            &pp,
            &route(&namespace, "broken", "Allow", "10.0.0.0/8", &["90-80"])?,
        )
        .await?;

    let message = wait_condition(&routes, "allow-web", "Conflicted", "True").await?;
    assert!(
        message.contains(&format!("{namespace}/deny-db")),
        "{message}"
    );
    wait_condition(&routes, "allow-web", "Accepted", "True").await?;
    wait_condition(&routes, "deny-db", "Conflicted", "True").await?;
    wait_condition(&routes, "ssh", "Accepted", "True").await?;
    wait_condition(&routes, "ssh", "Conflicted", "False").await?;
    let message = wait_condition(&routes, "broken", "Accepted", "False").await?;
    assert!(message.contains("runs backwards"), "{message}");

    // One Lease, one leader.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let holder = leases
        .get("warren-operator")
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .context("lease has no holder")?;
    let leaders: Vec<bool> = [first_admin, second_admin]
        .iter()
        .map(|a| {
            http_get(*a, "/metrics")
                .lines()
                .any(|l| l == "warren_operator_leader 1")
        })
        .collect();
    assert_eq!(
        leaders.iter().filter(|l| **l).count(),
        1,
        "exactly one leader: {leaders:?}"
    );
    let (leader, standby) = if holder == "replica-a" {
        (first, second)
    } else {
        (second, first)
    };
    assert!(leader.log().contains("leading: starting the controller"));
    assert!(
        !standby.log().contains("leading: starting the controller"),
        "{}",
        standby.log()
    );

    let events = cluster.kubectl(&["get", "events", "-n", &namespace, "-o", "wide"])?;
    assert!(
        events.contains("Invalid") && events.contains("broken"),
        "{events}"
    );

    // The leader stops (and releases the Lease); the standby takes over and reconciles.
    leader.terminate();
    let fix =
        serde_json::json!({"spec": {"destinations": [{"cidr": "10.0.0.0/8", "ports": ["80-90"]}]}});
    routes
        .patch("broken", &PatchParams::default(), &Patch::Merge(&fix))
        .await?;
    let took_over = Instant::now();
    wait_condition(&routes, "broken", "Accepted", "True").await?;
    eprintln!(
        "standby took over and reconciled after {:?}",
        took_over.elapsed()
    );
    standby.wait_for_log("leading: starting the controller", Duration::from_secs(5));
    Ok(())
}

//! The route controller against the real API server. The `warren-operator` binary: two
//! replicas, one Lease; the leader validates TunnelRoutes, writes Accepted/Conflicted conditions
//! and Events, clears a conflict when the other route goes away; when it stops, the other replica
//! takes over. In process: a leader cut off from the API server stops leading before a standby
//! can start, and a route this build cannot decode is reported instead of stalling the rest.

mod support;

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

    // Deleting one side of a conflict clears it on the other.
    routes.delete("deny-db", &Default::default()).await?;
    let message = wait_condition(&routes, "allow-web", "Conflicted", "False").await?;
    assert_eq!(message, "no conflicting route");

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

/// Samples `a` and `b` every 10 ms for `period`, failing if both lead at once; returns when
/// (since the start) `a` was last seen leading and `b` first.
async fn never_both(
    a: &tokio::sync::watch::Receiver<bool>,
    b: &tokio::sync::watch::Receiver<bool>,
    period: Duration,
) -> (Option<Duration>, Option<Duration>) {
    let start = Instant::now();
    let (mut a_last, mut b_first) = (None, None);
    while start.elapsed() < period {
        let (la, lb) = (*a.borrow(), *b.borrow());
        assert!(!(la && lb), "two leaders at {:?}", start.elapsed());
        if la {
            a_last = Some(start.elapsed());
        }
        if lb && b_first.is_none() {
            b_first = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (a_last, b_first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_a_standby_starts() -> Result<()> {
    use warren_operator::leader::{LeaseConfig, campaign};
    let cluster = warren_e2e::shared()?;
    let client = cluster.client().await?;
    let namespace = cluster.namespace(&client, "lease").await?;
    let config = |identity: &str| LeaseConfig {
        namespace: namespace.clone(),
        name: "warren-operator".into(),
        identity: identity.into(),
        duration: Duration::from_secs(3),
        renew_every: Duration::from_secs(1),
    };
    // Replica A reaches the API server through a relay the test cuts.
    let proxy = support::proxy::ApiProxy::start(cluster.server()).await?;
    let a = campaign(proxy.client(cluster.kubeconfig()).await?, config("a"));
    let mut a_leading = a.leading();
    tokio::time::timeout(Duration::from_secs(10), a_leading.wait_for(|l| *l))
        .await
        .context("A never led")??;
    let b = campaign(client.clone(), config("b"));
    let b_leading = b.leading();
    let (_, b_first) = never_both(&a_leading, &b_leading, Duration::from_secs(3)).await;
    assert_eq!(b_first, None, "B took a held Lease");

    proxy.cut();
    let (a_last, b_first) = never_both(&a_leading, &b_leading, Duration::from_secs(8)).await;
    let b_first = b_first.context("B never took over the expired Lease")?;
    assert!(!*a_leading.borrow(), "A still leads without the API server");
    eprintln!("A cut off: A last led at {a_last:?}, B first led at {b_first:?} (3 s Lease)");

    // B resigns: it releases the Lease; A, reconnected, takes it at its next round.
    proxy.restore();
    b.resign().await;
    let released = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), a_leading.wait_for(|l| *l))
        .await
        .context("A did not take the released Lease")??;
    eprintln!(
        "A led again {:?} after B released the Lease",
        released.elapsed()
    );
    let holder = Api::<Lease>::namespaced(client, &namespace)
        .get("warren-operator")
        .await?
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("a"));
    a.resign().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_this_version_cannot_decode_is_reported_and_the_rest_reconciled() -> Result<()> {
    // A private cluster, since its CRD is changed: a newer CRD that knows an action this build
    // does not.
    let cluster = TestCluster::start()?;
    let crd =
        std::fs::read_to_string(format!("{}/warren.dev_tunnelroutes.yaml", warren_e2e::CRDS))?;
    let newer = crd.replace(
        "                - Redirect\n",
        "                - Redirect\n                - Mirror\n",
    );
    anyhow::ensure!(
        newer != crd,
        "the action enum moved in the CRD; update this test"
    );
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(newer.as_bytes()))?;
    warren_e2e::wait_established(&cluster)?;
    let client = cluster.client().await?;
    let namespace = cluster.namespace(&client, "controller-newer").await?;
    let future = serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": "future", "namespace": namespace},
        "spec": {"destinations": [{"cidr": "10.0.0.0/8"}], "action": "Mirror"},
    });
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(future.to_string().as_bytes()))?;
    let routes: Api<TunnelRoute> = Api::namespaced(client.clone(), &namespace);
    routes
        .create(
            &PostParams::default(),
            &route(&namespace, "good", "Allow", "192.0.2.0/24", &[])?,
        )
        .await?;

    let metrics = std::sync::Arc::new(warren_operator::metrics::Metrics::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let controller = tokio::spawn(warren_operator::controller::run(
        client.clone(),
        metrics.clone(),
        stop.clone().cancelled_owned(),
    ));
    wait_condition(&routes, "good", "Accepted", "True").await?;
    // The typed API cannot read the future route; read its status untyped.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let json = cluster.kubectl(&[
            "get",
            "tunnelroute",
            "future",
            "-n",
            &namespace,
            "-o",
            "json",
        ])?;
        let object: serde_json::Value = serde_json::from_str(&json)?;
        let accepted = object["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Accepted").cloned());
        if let Some(accepted) = accepted {
            break accepted;
        }
        assert!(
            Instant::now() < deadline,
            "future route has no status: {json}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["status"], "False", "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot decode") && message.contains("Mirror"),
        "{message}"
    );

    // Its status is written once, not on every reconciliation.
    let version = |cluster: &TestCluster| -> Result<String> {
        Ok(cluster.kubectl(&[
            "get",
            "tunnelroute",
            "future",
            "-n",
            &namespace,
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])?)
    };
    let before = version(&cluster)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(version(&cluster)?, before, "status rewritten in a loop");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .context("controller did not stop")??;
    Ok(())
}

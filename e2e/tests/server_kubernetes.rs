//! `warren server --policy-source kubernetes` against the real API server: it is not ready and
//! refuses connections until its first sync, then follows TunnelRoute changes live without
//! dropping tunnels that are already open, and keeps serving the last routes (flagged stale)
//! while the API server is unreachable.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use support::proxy::ApiProxy;
use support::start_server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_operator::api::TunnelRoute;
use warren_tests::echo::spawn_echo;
use warren_tests::tunnel::{Pki, http_get, ping_through, start_client_with, wait_ready};

/// Waits until `ping_through(entry)` equals `want`; returns how long it took.
async fn until(entry: std::net::SocketAddr, want: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    while ping_through(entry).await != want {
        assert!(
            start.elapsed() < limit,
            "ping did not become {want} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn route(namespace: &str, port: u16, action: &str) -> Result<TunnelRoute> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": "echo", "namespace": namespace},
        "spec": {
            "clients": {"serviceAccounts": ["api"]},
            "destinations": [{"cidr": "127.0.0.1/32", "ports": [port.to_string()]}],
            "action": action,
        },
    }))
    .context("route JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_follows_tunnelroutes_live() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let namespace = cluster.namespace(&client, "tunnel").await?;
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let identity = format!("spiffe://cluster.local/ns/{namespace}/sa/api");
    let cert = pki.ca.client(pki.path(), "k8s-client", &identity);
    // Only this test's namespace: the other tests of this binary create routes beside it.
    let (mut server, addr, admin) = start_server(
        &pki,
        cluster.kubeconfig(),
        &["--route-namespaces", &namespace],
    );
    wait_ready(&mut server, admin);
    let tunnel = start_client_with(&pki, &cert, addr, &["--connect", &echo.to_string()], &[]);

    assert!(
        !ping_through(tunnel.addr).await,
        "no route yet: default deny"
    );
    let routes: Api<TunnelRoute> = Api::namespaced(client, &namespace);
    routes
        .create(
            &PostParams::default(),
            &route(&namespace, echo.port(), "Allow")?,
        )
        .await?;
    let applied = until(tunnel.addr, true, Duration::from_secs(5)).await;
    eprintln!("Allow route applied to new connections after {applied:?}");
    assert!(
        applied < Duration::from_secs(1),
        "route applied after {applied:?}"
    );

    let mut live = TcpStream::connect(tunnel.addr).await?;
    live.write_all(b"live").await?;
    let mut buf = [0u8; 4];
    live.read_exact(&mut buf).await?;

    let deny = serde_json::json!({"spec": {"action": "Deny"}});
    routes
        .patch("echo", &PatchParams::default(), &Patch::Merge(&deny))
        .await?;
    let denied = until(tunnel.addr, false, Duration::from_secs(5)).await;
    eprintln!("Deny applied to new connections after {denied:?}");
    assert!(
        denied < Duration::from_secs(1),
        "deny applied after {denied:?}"
    );
    live.write_all(b"more").await?;
    live.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"more", "the live tunnel survived the policy change");

    let log = tunnel
        .proc
        .wait_for_log("denied_by_route", Duration::from_secs(5));
    assert!(log.contains(&format!("route {namespace}/echo")), "{log}");
    let metrics = http_get(admin, "/metrics");
    assert!(
        metrics.lines().any(|l| l == "warren_policy_routes 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "warren_policy_stale 0"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_and_refusing_until_the_first_sync() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let namespace = cluster.namespace(&client, "tunnel-unsynced").await?;
    let echo = spawn_echo("127.0.0.1:0").await;
    let routes: Api<TunnelRoute> = Api::namespaced(client, &namespace);
    routes
        .create(
            &PostParams::default(),
            &route(&namespace, echo.port(), "Allow")?,
        )
        .await?;
    let pki = Pki::new();
    // The API server is unreachable from the start: the watch cannot list.
    let proxy = ApiProxy::start(cluster.server()).await?;
    proxy.cut();
    let kubeconfig = proxy.kubeconfig(cluster.kubeconfig(), cluster.server(), pki.path())?;
    let (mut server, addr, admin) =
        start_server(&pki, &kubeconfig, &["--route-namespaces", &namespace]);
    server.wait_until("serving metrics", Duration::from_secs(20), || {
        std::net::TcpStream::connect_timeout(&admin, Duration::from_millis(100)).is_ok()
            && http_get(admin, "/healthz").starts_with("HTTP/1.0 200")
    });
    let identity = format!("spiffe://cluster.local/ns/{namespace}/sa/api");
    let cert = pki.ca.client(pki.path(), "k8s-client", &identity);
    let tunnel = start_client_with(&pki, &cert, addr, &["--connect", &echo.to_string()], &[]);
    assert!(
        !ping_through(tunnel.addr).await,
        "refused before the first sync"
    );
    tunnel
        .proc
        .wait_for_log("policy_not_ready", Duration::from_secs(5));
    wait_metric(admin, "warren_policy_stale 1", Duration::from_secs(10)).await;
    let readyz = http_get(admin, "/readyz");
    assert!(readyz.starts_with("HTTP/1.0 503"), "{readyz}");

    // Once the API server answers, the first list makes the server ready and the route applies.
    proxy.restore();
    let restored = Instant::now();
    wait_ready(&mut server, admin);
    let ready = restored.elapsed();
    assert!(ping_through(tunnel.addr).await, "allowed after the sync");
    wait_metric(admin, "warren_policy_stale 0", Duration::from_secs(1)).await;
    eprintln!("ready {ready:?} after the API server became reachable");
    Ok(())
}

/// Polls `/metrics` until it has the line `line`.
async fn wait_metric(admin: std::net::SocketAddr, line: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let metrics = http_get(admin, "/metrics");
        if metrics.lines().any(|l| l == line) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "no `{line}` within {limit:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_keeps_the_last_routes_serving() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let namespace = cluster.namespace(&client, "tunnel-outage").await?;
    let echo = spawn_echo("127.0.0.1:0").await;
    let routes: Api<TunnelRoute> = Api::namespaced(client, &namespace);
    routes
        .create(
            &PostParams::default(),
            &route(&namespace, echo.port(), "Allow")?,
        )
        .await?;
    let pki = Pki::new();
    let proxy = ApiProxy::start(cluster.server()).await?;
    let kubeconfig = proxy.kubeconfig(cluster.kubeconfig(), cluster.server(), pki.path())?;
    let (mut server, addr, admin) =
        start_server(&pki, &kubeconfig, &["--route-namespaces", &namespace]);
    wait_ready(&mut server, admin);
    let identity = format!("spiffe://cluster.local/ns/{namespace}/sa/api");
    let cert = pki.ca.client(pki.path(), "k8s-client", &identity);
    let tunnel = start_client_with(&pki, &cert, addr, &["--connect", &echo.to_string()], &[]);
    assert!(ping_through(tunnel.addr).await, "allowed by the route");
    let mut live = TcpStream::connect(tunnel.addr).await?;
    live.write_all(b"live").await?;
    let mut buf = [0u8; 4];
    live.read_exact(&mut buf).await?;

    proxy.cut();
    let noticed = wait_metric(admin, "warren_policy_stale 1", Duration::from_secs(10)).await;
    assert!(
        ping_through(tunnel.addr).await,
        "the last routes keep serving"
    );
    assert!(
        http_get(admin, "/readyz").starts_with("HTTP/1.0 200"),
        "still ready: taking every server out of its Service would be worse"
    );
    live.write_all(b"more").await?;
    live.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"more");
    server.wait_for_log("TunnelRoute watch failing", Duration::from_secs(5));

    proxy.restore();
    let recovered = wait_metric(admin, "warren_policy_stale 0", Duration::from_secs(40)).await;
    server.wait_for_log("TunnelRoute watch recovered", Duration::from_secs(5));
    eprintln!(
        "stale noticed after {noticed:?}, fresh {recovered:?} after the API server came back"
    );
    assert!(ping_through(tunnel.addr).await);
    Ok(())
}

//! The server's connect policy from a route file: allow, deny, redirect, default deny, and live
//! reloading of the file.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_tests::echo::{spawn_counting_echo, spawn_echo};
use warren_tests::tunnel::{Pki, ServerMode, http_get, start_client, start_server};

fn route(name: &str, port: u16, action: &str) -> String {
    format!(
        "---
apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {{name: {name}, namespace: shop}}
spec:
  destinations:
    - cidr: 127.0.0.0/8
      ports: [\"{port}\"]
  action: {action}
"
    )
}

fn redirect(name: &str, port: u16, to_port: u16) -> String {
    format!(
        "{}  redirect: {{host: 127.0.0.1, port: {to_port}}}\n",
        route(name, port, "Redirect")
    )
}

/// Sends `ping` through the tunnel; `Ok(reply)` or the error the application sees.
async fn ping(addr: std::net::SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(b"ping").await?;
    tcp.shutdown().await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .map_err(|_| std::io::Error::other("no answer within 10s"))??;
    Ok(reply)
}

/// A denied or refused connection is closed without a reply (reset or empty).
fn assert_refused(result: std::io::Result<Vec<u8>>) {
    match result {
        Ok(reply) => assert!(reply.is_empty(), "expected no reply, got {reply:?}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_deny_redirect_and_default_deny() {
    let (allowed, _) = spawn_counting_echo("127.0.0.1:0").await;
    let (denied, denied_counts) = spawn_counting_echo("127.0.0.1:0").await;
    let (unrouted, unrouted_counts) = spawn_counting_echo("127.0.0.1:0").await;
    let (redirect_target, redirect_counts) = spawn_counting_echo("127.0.0.1:0").await;
    let nothing_listens = warren_tests::process::free_port();
    let routes = [
        route("allow-echo", allowed.port(), "Allow"),
        route("deny-db", denied.port(), "Deny"),
        redirect("move-it", nothing_listens, redirect_target.port()),
    ]
    .concat();
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Policy(&routes), &[]);

    let client = start_client(&pki, server.addr, &allowed.to_string(), &[]);
    assert_eq!(ping(client.addr).await.unwrap(), b"ping");

    let client = start_client(&pki, server.addr, &denied.to_string(), &[]);
    assert_refused(ping(client.addr).await);
    let log = client
        .proc
        .wait_for_log("denied by the tunnel server", Duration::from_secs(5));
    assert!(
        log.contains("denied_by_route (route shop/deny-db)"),
        "{log}"
    );
    assert_eq!(
        denied_counts.connections(),
        0,
        "a denied connection reached its destination"
    );

    let client = start_client(&pki, server.addr, &unrouted.to_string(), &[]);
    assert_refused(ping(client.addr).await);
    client.proc.wait_for_log(
        "denied by the tunnel server: no_route",
        Duration::from_secs(5),
    );
    assert_eq!(unrouted_counts.connections(), 0);
    let metrics = http_get(client.admin, "/metrics");
    assert!(
        metrics.contains("warren_denials_received_total{code=\"no_route\"} 1"),
        "{metrics}"
    );

    let target = format!("127.0.0.1:{nothing_listens}");
    let client = start_client(&pki, server.addr, &target, &[]);
    assert_eq!(ping(client.addr).await.unwrap(), b"ping");
    assert_eq!(
        redirect_counts.connections(),
        1,
        "the redirect target got the connection"
    );

    // The server logs a connection once both directions have closed, which can be just after
    // the client has its reply.
    server
        .proc
        .wait_for_log("decision=\"redirect\"", Duration::from_secs(5));
    let metrics = http_get(server.admin, "/metrics");
    for needle in [
        "warren_policy_decisions_total{action=\"allow\"} 1",
        "warren_policy_decisions_total{action=\"deny\"} 2",
        "warren_policy_decisions_total{action=\"redirect\"} 1",
    ] {
        assert!(
            metrics.contains(needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_file_reloads_without_dropping_live_connections() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(
        &pki,
        ServerMode::Policy(&route("echo", echo.port(), "Allow")),
        &[],
    );
    let client = start_client(&pki, server.addr, &echo.to_string(), &[]);

    let mut live = TcpStream::connect(client.addr).await.unwrap();
    live.write_all(b"one").await.unwrap();
    let mut buf = [0u8; 3];
    live.read_exact(&mut buf).await.unwrap();

    let policy = server.policy.as_ref().unwrap();
    std::fs::write(policy, route("echo", echo.port(), "Deny")).unwrap();
    let changed = Instant::now();
    loop {
        if ping(client.addr)
            .await
            .map(|r| r.is_empty())
            .unwrap_or(true)
        {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "new policy not applied within 5s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("policy change applied after {:?}", changed.elapsed());
    // The tunnel opened under the old policy is still up.
    live.write_all(b"two").await.unwrap();
    live.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"two");

    // A broken file keeps the last good policy.
    std::fs::write(policy, "kind: TunnelRoute\nspec: [not, a, spec\n").unwrap();
    server.proc.wait_for_log(
        "reload failed; keeping the last good version",
        Duration::from_secs(5),
    );
    assert_refused(ping(client.addr).await);
    std::fs::write(policy, route("echo", echo.port(), "Allow")).unwrap();
    let fixed = Instant::now();
    while ping(client.addr)
        .await
        .map(|r| r != b"ping")
        .unwrap_or(true)
    {
        assert!(
            fixed.elapsed() < Duration::from_secs(5),
            "fixed policy not applied within 5s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

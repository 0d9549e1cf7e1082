//! Loopback black-box tests of the tunnel: application → warren client → warren server →
//! destination, with the real binary.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_tests::echo::{spawn_echo, spawn_reply_after_eof};
use warren_tests::tunnel::{Pki, ServerMode, http_get, start_client, start_server};

/// A route file allowing the fixture client (`shop/api`) to reach `port` on 127.0.0.1.
fn allow_port(port: u16) -> String {
    format!(
        "apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {{name: allow-echo, namespace: shop}}
spec:
  destinations:
    - cidr: 127.0.0.1/32
      ports: [\"{port}\"]
  action: Allow
"
    )
}

/// Deterministic pseudo-random bytes, so a corrupted or reordered byte changes the digest.
fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_64_mib_each_way_intact() {
    const TOTAL: usize = 64 * 1024 * 1024;
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Policy(&allow_port(echo.port())), &[]);
    let client = start_client(&pki, server.addr, &echo.to_string(), &[]);

    let started = Instant::now();
    let tcp = TcpStream::connect(client.addr).await.unwrap();
    let (mut r, mut w) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let mut hash = Sha256::new();
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0;
        while sent < TOTAL {
            fill(&mut buf, &mut state);
            w.write_all(&buf).await.unwrap();
            hash.update(&buf);
            sent += buf.len();
        }
        w.shutdown().await.unwrap();
        hash.finalize()
    });
    let mut hash = Sha256::new();
    let mut received = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        received += n;
    }
    let sent_digest = writer.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(received, TOTAL, "bytes echoed back");
    assert_eq!(hash.finalize(), sent_digest, "SHA-256 of what came back");
    eprintln!(
        "64 MiB each way in {elapsed:?} ({:.0} MiB/s each way)",
        64.0 / elapsed.as_secs_f64()
    );
    let log = server
        .proc
        .wait_for_log("connection closed", Duration::from_secs(10));
    assert!(log.contains(&format!("bytes_out={TOTAL}")), "{log}");
    assert!(log.contains(&format!("bytes_in={TOTAL}")), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_still_receives_the_reply() {
    let upstream = spawn_reply_after_eof("127.0.0.1:0", b"reply after your FIN").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Policy(&allow_port(upstream.port())), &[]);
    let client = start_client(&pki, server.addr, &upstream.to_string(), &[]);

    let mut tcp = TcpStream::connect(client.addr).await.unwrap();
    tcp.write_all(b"request").await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut reply))
        .await
        .expect("reply within 10s")
        .unwrap();
    assert_eq!(reply, "reply after your FIN (7 bytes)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_metrics_health_and_readiness() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Policy(&allow_port(echo.port())), &[]);
    let client = start_client(&pki, server.addr, &echo.to_string(), &[]);
    let mut tcp = TcpStream::connect(client.addr).await.unwrap();
    tcp.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tcp.read_exact(&mut buf).await.unwrap();
    drop(tcp);
    server
        .proc
        .wait_for_log("connection closed", Duration::from_secs(10));

    for admin in [server.admin, client.admin] {
        assert!(http_get(admin, "/healthz").starts_with("HTTP/1.0 200"));
        assert!(http_get(admin, "/readyz").starts_with("HTTP/1.0 200"));
    }
    let metrics = http_get(server.admin, "/metrics");
    for needle in [
        "warren_connections_accepted_total{role=\"server\"} 1",
        "warren_policy_decisions_total{action=\"allow\"} 1",
        "warren_bytes_total{direction=\"outbound\"} 4",
        "warren_bytes_total{direction=\"inbound\"} 4",
        "warren_handshake_duration_seconds_count{role=\"server\"} 1",
        "warren_policy_routes 1",
    ] {
        assert!(
            metrics.contains(needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_live_connections() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let mut server = start_server(
        &pki,
        ServerMode::Policy(&allow_port(echo.port())),
        &["--drain-timeout", "10s"],
    );
    let client = start_client(&pki, server.addr, &echo.to_string(), &[]);
    let mut live = TcpStream::connect(client.addr).await.unwrap();
    live.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    live.read_exact(&mut buf).await.unwrap();

    server.proc.terminate();
    server.proc.wait_for_log("SIGTERM", Duration::from_secs(5));
    // New connections are refused once draining starts...
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(server.addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "server still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...while the live tunnel keeps working until it ends.
    live.write_all(b"during").await.unwrap();
    live.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"during");
    drop(live);
    assert_eq!(server.proc.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        server
            .proc
            .log()
            .contains("drained: all connections finished")
    );
}

/// At `--max-connections`, a new connection waits unaccepted in the listen backlog until one
/// closes, then goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_at_the_connection_limit() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let target = echo.to_string();
    let server = start_server(
        &pki,
        ServerMode::Static(&target),
        &["--max-connections", "2"],
    );
    let client = start_client(&pki, server.addr, &target, &[]);
    let echoed = |mut tcp: TcpStream, message: &'static [u8]| async move {
        tcp.write_all(message).await.unwrap();
        let mut reply = vec![0u8; message.len()];
        tcp.read_exact(&mut reply).await.map(|_| (tcp, reply))
    };

    let (first, reply) = echoed(TcpStream::connect(client.addr).await.unwrap(), b"one")
        .await
        .unwrap();
    assert_eq!(reply, b"one");
    let (_second, reply) = echoed(TcpStream::connect(client.addr).await.unwrap(), b"two")
        .await
        .unwrap();
    assert_eq!(reply, b"two");

    // The client accepts a third and starts its handshake, which the server leaves unanswered.
    let third = tokio::spawn(echoed(
        TcpStream::connect(client.addr).await.unwrap(),
        b"three",
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served at --max-connections 2"
    );
    drop(first);
    let (_third, reply) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the third connection was not served once the first closed")
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"three");

    let metrics = http_get(server.admin, "/metrics");
    let pauses: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("warren_connection_limit_reached_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no limit counter in:\n{metrics}"));
    assert!(pauses >= 1, "{metrics}");
    assert!(
        server.proc.log().contains("connection limit reached"),
        "{}",
        server.proc.log()
    );
}

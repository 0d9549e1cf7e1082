//! Certificates rotate without a restart: the server picks up a new client CA bundle from disk,
//! and live tunnels survive the change.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_tests::certs::TestCa;
use warren_tests::echo::spawn_echo;
use warren_tests::process::{Proc, free_port};
use warren_tests::tunnel::{CLIENT_ID, Pki, http_get, ping_through, start_client_with, wait_ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_client_ca_applies_without_restart() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let new_ca = TestCa::new("rotated CA");
    let new_client = new_ca.client(pki.path(), "new-client", CLIENT_ID);
    let client_ca = pki.write("client-ca.pem", &pki.ca.cert_pem);

    let addr = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let mut server = Proc::warren(
        "server",
        &[
            "server",
            "--listen",
            &addr,
            "--cert",
            pki.server.cert.to_str().unwrap(),
            "--key",
            pki.server.key.to_str().unwrap(),
            "--client-ca",
            client_ca.to_str().unwrap(),
            "--connect",
            &echo.to_string(),
            "--metrics-addr",
            &admin,
            "--reload-interval",
            "100ms",
        ],
        pki.path(),
    );
    let admin = admin.parse().unwrap();
    wait_ready(&mut server, admin);
    let addr = addr.parse().unwrap();
    let old = start_client_with(
        &pki,
        &pki.client,
        addr,
        &["--connect", &echo.to_string()],
        &[],
    );
    let new = start_client_with(
        &pki,
        &new_client,
        addr,
        &["--connect", &echo.to_string()],
        &[],
    );
    assert!(ping_through(old.addr).await, "old client before rotation");
    assert!(!ping_through(new.addr).await, "new client before rotation");

    let mut live = TcpStream::connect(old.addr).await.unwrap();
    live.write_all(b"live").await.unwrap();
    let mut buf = [0u8; 4];
    live.read_exact(&mut buf).await.unwrap();

    std::fs::write(&client_ca, &new_ca.cert_pem).unwrap();
    let rotated = Instant::now();
    while !ping_through(new.addr).await {
        assert!(
            rotated.elapsed() < Duration::from_secs(5),
            "rotation not applied within 5s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("rotation applied after {:?}", rotated.elapsed());
    assert!(
        !ping_through(old.addr).await,
        "the old CA is no longer trusted"
    );
    live.write_all(b"more").await.unwrap();
    live.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"more", "a live tunnel survives the rotation");

    // A broken file keeps the last good configuration.
    std::fs::write(&client_ca, "not a certificate").unwrap();
    server.wait_for_log(
        "reload failed; keeping the last good version",
        Duration::from_secs(5),
    );
    assert!(ping_through(new.addr).await);
    let metrics = http_get(admin, "/metrics");
    assert!(
        metrics.contains("warren_reloads_total{result=\"ok\",subject=\"tls\"} 1"),
        "{metrics}"
    );
}

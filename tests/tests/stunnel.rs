//! Interoperability with a real stunnel4 (Debian's package), both ways.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_tests::echo::spawn_echo;
use warren_tests::process::{Proc, free_port};
use warren_tests::tunnel::{Pki, ServerMode, start_client_with, start_server};

/// Starts stunnel in the foreground with `config` (the service section and global options).
fn start_stunnel(dir: &Path, name: &str, config: &str, listen: u16) -> Proc {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(
        &path,
        format!("foreground = yes\npid =\ndebug = info\n{config}"),
    )
    .unwrap();
    let mut command = Command::new("stunnel4");
    command.arg(&path);
    let mut proc = Proc::spawn(name, command, dir);
    proc.wait_for_port(
        format!("127.0.0.1:{listen}").parse().unwrap(),
        Duration::from_secs(10),
    );
    proc
}

async fn try_echo_through(port: u16, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.write_all(message).await?;
    tcp.shutdown().await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("reply or close within 10s")?;
    Ok(reply)
}

async fn echo_through(port: u16, message: &[u8]) -> Vec<u8> {
    try_echo_through(port, message)
        .await
        .expect("echo through the tunnel")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warren_client_in_plain_mode_talks_to_a_stunnel_server() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let port = free_port();
    let _stunnel = start_stunnel(
        pki.path(),
        "stunnel-server",
        &format!(
            "[tunnel]\naccept = 127.0.0.1:{port}\nconnect = {echo}\ncert = {}\nkey = {}\n\
             CAfile = {}\nverifyChain = yes\n",
            pki.server.cert.display(),
            pki.server.key.display(),
            pki.client.ca.display(),
        ),
        port,
    );
    let server = format!("127.0.0.1:{port}").parse().unwrap();
    let client = start_client_with(&pki, &pki.client, server, &["--plain"], &[]);
    let message = b"hello stunnel, from warren".repeat(1000);
    assert_eq!(echo_through(client.addr.port(), &message).await, message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stunnel_client_talks_to_a_static_warren_server() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Static(&echo.to_string()), &[]);
    let stunnel_client = |name: &str, extra: &str| {
        let port = free_port();
        let proc = start_stunnel(
            pki.path(),
            name,
            &format!(
                "[tunnel]\nclient = yes\naccept = 127.0.0.1:{port}\nconnect = {}\ncert = {}\n\
                 key = {}\nCAfile = {}\nverifyChain = yes\ncheckHost = localhost\n{extra}",
                server.addr,
                pki.client.cert.display(),
                pki.client.key.display(),
                pki.server.ca.display(),
            ),
            port,
        );
        (proc, port)
    };
    let (_stunnel, port) = stunnel_client("stunnel-client", "");
    let message = b"hello warren, from stunnel".repeat(1000);
    assert_eq!(echo_through(port, &message).await, message);
    let log = server
        .proc
        .wait_for_log("connection closed", Duration::from_secs(5));
    assert!(
        log.contains("spiffe://cluster.local/ns/shop/sa/api"),
        "{log}"
    );

    // TLS 1.2 is refused unless the server allows it explicitly.
    let (_old, port) = stunnel_client("stunnel-tls12", "sslVersion = TLSv1.2\n");
    let refused = try_echo_through(port, b"x").await;
    assert!(
        refused.as_ref().map_or(true, Vec::is_empty),
        "TLS 1.2 got through: {refused:?}"
    );
    let tls12 = start_server(
        &pki,
        ServerMode::Static(&echo.to_string()),
        &["--allow-tls12"],
    );
    let port = free_port();
    let _ok = start_stunnel(
        pki.path(),
        "stunnel-tls12-allowed",
        &format!(
            "[tunnel]\nclient = yes\naccept = 127.0.0.1:{port}\nconnect = {}\ncert = {}\n\
             key = {}\nCAfile = {}\nverifyChain = yes\nsslVersion = TLSv1.2\n",
            tls12.addr,
            pki.client.cert.display(),
            pki.client.key.display(),
            pki.server.ca.display(),
        ),
        port,
    );
    assert_eq!(echo_through(port, b"tls12").await, b"tls12");
}

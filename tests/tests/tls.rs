//! Mutual TLS and the destination token at the server's edge: certificates from another CA,
//! missing, malformed and oversized tokens.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use warren_core::token::ALPN_PROTOCOL;
use warren_tests::certs::{CertFiles, TestCa};
use warren_tests::echo::spawn_echo;
use warren_tests::tunnel::{Pki, ServerMode, http_get, start_client_with, start_server};

fn client_config(pki: &Pki, cert: &CertFiles, alpn: Vec<Vec<u8>>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pki.server.ca).unwrap())
        .unwrap();
    let chain = vec![CertificateDer::from_pem_file(&cert.cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn;
    Arc::new(config)
}

/// Handshakes with the given ALPN list; returns the alert the server answered with, if any.
async fn handshake_alert(
    server: std::net::SocketAddr,
    config: Arc<ClientConfig>,
) -> Option<AlertDescription> {
    let tcp = TcpStream::connect(server).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    match TlsConnector::from(config).connect(name, tcp).await {
        Ok(_) => None,
        Err(e) => {
            let inner = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            match inner {
                Some(rustls::Error::AlertReceived(alert)) => Some(*alert),
                other => panic!("handshake failed without an alert: {e} ({other:?})"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_a_no_application_protocol_alert() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Policy(""), &[]);
    let protocol = ALPN_PROTOCOL.to_vec();
    let cases: [(&str, Vec<Vec<u8>>); 5] = [
        ("missing", vec![]),
        (
            "malformed",
            vec![
                b"wdst\x01\x05\x01\xbb\x7f\x00\x00\x01".to_vec(),
                protocol.clone(),
            ],
        ),
        (
            "oversized_or_truncated",
            vec![
                [&b"wdst\x01\x04\x01\xbb\x7f\x00\x00\x01"[..], &[0xaa; 200]].concat(),
                protocol.clone(),
            ],
        ),
        (
            "unsupported_version",
            vec![
                b"wdst\x09\x04\x01\xbb\x7f\x00\x00\x01".to_vec(),
                protocol.clone(),
            ],
        ),
        (
            "missing_protocol_id",
            vec![warren_core::token::encode(&echo.into()).unwrap()],
        ),
    ];
    for (reason, alpn) in cases {
        let alert = handshake_alert(server.addr, client_config(&pki, &pki.client, alpn)).await;
        assert_eq!(
            alert,
            Some(AlertDescription::NoApplicationProtocol),
            "{reason}"
        );
    }
    let metrics = http_get(server.admin, "/metrics");
    for (reason, _) in [
        ("missing", ()),
        ("malformed", ()),
        ("oversized_or_truncated", ()),
        ("unsupported_version", ()),
        ("missing_protocol_id", ()),
    ] {
        let needle = format!("warren_token_rejections_total{{reason=\"{reason}\"}} 1");
        assert!(
            metrics.contains(&needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }
    server
        .proc
        .wait_for_log("refused ClientHello", Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_negotiates_warren_protocol() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Static(&echo.to_string()), &[]);
    let alpn = warren_core::token::client_alpn(&echo.into()).unwrap();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut tls = TlsConnector::from(client_config(&pki, &pki.client, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_PROTOCOL));
    let mut verdict = [0u8; 3];
    tls.read_exact(&mut verdict).await.unwrap();
    assert_eq!(verdict, [1, 0, 0], "version 1, code connected, no route");
    tls.write_all(b"hello").await.unwrap();
    let mut echoed = [0u8; 5];
    tls.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_a_client_certificate_from_another_ca() {
    let echo = spawn_echo("127.0.0.1:0").await;
    let pki = Pki::new();
    let server = start_server(&pki, ServerMode::Static(&echo.to_string()), &[]);
    let rogue_ca = TestCa::new("rogue CA");
    let rogue = rogue_ca.client(pki.path(), "rogue", warren_tests::tunnel::CLIENT_ID);

    let failed_handshakes = || {
        let metrics = http_get(server.admin, "/metrics");
        let prefix =
            "warren_connections_closed_total{outcome=\"handshake_failed\",role=\"server\"} ";
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    // Straight rustls: the server refuses the certificate during the handshake.
    let config = client_config(&pki, &rogue, vec![]);
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let result = TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    // In TLS 1.3 the client finishes first; the refusal arrives as an alert on the first read.
    if let Ok(mut tls) = result {
        let mut buf = [0u8; 1];
        let read = tls.read(&mut buf).await;
        assert!(
            read.is_err() || read.unwrap() == 0,
            "server accepted a rogue certificate"
        );
    }

    // Through a warren client: the application's connection is closed with nothing relayed.
    let client = start_client_with(
        &pki,
        &rogue,
        server.addr,
        &["--connect", &echo.to_string()],
        &[],
    );
    let before = failed_handshakes();
    let mut app = TcpStream::connect(client.addr).await.unwrap();
    let _ = app.write_all(b"ping").await;
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), app.read_to_end(&mut reply))
        .await
        .expect("closed within 10s");
    assert!(read.is_err() || reply.is_empty(), "got {reply:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while failed_handshakes() < before + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "server did not count the refusal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = http_get(server.admin, "/metrics");
    assert!(
        !metrics.contains("warren_policy_decisions_total{"),
        "{metrics}"
    );
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("warren_bytes_total{"))
    {
        assert!(
            line.ends_with(" 0"),
            "bytes relayed for a rogue client: {line}"
        );
    }
}

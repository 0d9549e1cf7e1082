//! A loopback tunnel fixture: a test PKI, a `warren server` and a `warren client`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::certs::{CertFiles, TestCa};
use crate::process::{Proc, free_port};

/// The SPIFFE ID of the fixture's client certificate.
pub const CLIENT_ID: &str = "spiffe://cluster.local/ns/shop/sa/api";

/// A test PKI in a temporary directory: one CA, a server certificate for `localhost` and
/// `127.0.0.1`, and a client certificate with [`CLIENT_ID`].
pub struct Pki {
    /// The directory holding every file (and the processes' logs).
    pub dir: tempfile::TempDir,
    /// The CA.
    pub ca: TestCa,
    /// The server's certificate.
    pub server: CertFiles,
    /// The client's certificate.
    pub client: CertFiles,
}

// === impl Pki ===

impl Pki {
    /// Creates the PKI.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new("warren test CA");
        let server = ca.server(dir.path(), "server", &["localhost", "127.0.0.1", "::1"]);
        let client = ca.client(dir.path(), "client", CLIENT_ID);
        Pki {
            dir,
            ca,
            server,
            client,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to a file in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// How the fixture's server decides.
pub enum ServerMode<'a> {
    /// `--policy FILE` with these TunnelRoute manifests.
    Policy(&'a str),
    /// `--connect HOST:PORT`.
    Static(&'a str),
}

/// A running `warren server`.
pub struct TestServer {
    /// The process.
    pub proc: Proc,
    /// Its tunnel address.
    pub addr: SocketAddr,
    /// Its admin address.
    pub admin: SocketAddr,
    /// The policy file, in policy mode.
    pub policy: Option<PathBuf>,
}

/// Starts `warren server` with the PKI's server certificate.
pub fn start_server(pki: &Pki, mode: ServerMode<'_>, extra: &[&str]) -> TestServer {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (addr_s, admin_s) = (addr.to_string(), admin.to_string());
    let mut args = vec![
        "server".to_owned(),
        "--listen".into(),
        addr_s,
        "--cert".into(),
        path_str(&pki.server.cert),
        "--key".into(),
        path_str(&pki.server.key),
        "--client-ca".into(),
        path_str(&pki.server.ca),
        "--metrics-addr".into(),
        admin_s,
        "--reload-interval".into(),
        "200ms".into(),
    ];
    let mut policy = None;
    match mode {
        ServerMode::Policy(routes) => {
            let path = pki.write("routes.yaml", routes);
            args.extend(["--policy".into(), path_str(&path)]);
            policy = Some(path);
        }
        ServerMode::Static(target) => args.extend(["--connect".into(), target.into()]),
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proc = Proc::warren("server", &args, pki.path());
    wait_ready(&mut proc, admin);
    TestServer {
        proc,
        addr,
        admin,
        policy,
    }
}

/// A running `warren client`.
pub struct TestClient {
    /// The process.
    pub proc: Proc,
    /// Where applications connect.
    pub addr: SocketAddr,
    /// Its admin address.
    pub admin: SocketAddr,
}

/// Starts `warren client --connect DEST` toward `server` with the PKI's client certificate.
pub fn start_client(
    pki: &Pki,
    server: SocketAddr,
    destination: &str,
    extra: &[&str],
) -> TestClient {
    start_client_with(pki, &pki.client, server, &["--connect", destination], extra)
}

/// Starts `warren client` with any certificate and mode flags.
pub fn start_client_with(
    pki: &Pki,
    cert: &CertFiles,
    server: SocketAddr,
    mode: &[&str],
    extra: &[&str],
) -> TestClient {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (addr_s, admin_s, server_s) = (addr.to_string(), admin.to_string(), server.to_string());
    let (cert_s, key_s, ca_s) = (
        path_str(&cert.cert),
        path_str(&cert.key),
        path_str(&pki.server.ca),
    );
    let mut args = vec![
        "client",
        "--listen",
        &addr_s,
        "--server",
        &server_s,
        "--server-name",
        "localhost",
        "--ca",
        &ca_s,
        "--cert",
        &cert_s,
        "--key",
        &key_s,
        "--metrics-addr",
        &admin_s,
    ];
    args.extend_from_slice(mode);
    args.extend_from_slice(extra);
    let name = format!("client-{}", addr.port());
    let mut proc = Proc::warren(&name, &args, pki.path());
    wait_ready(&mut proc, admin);
    TestClient { proc, addr, admin }
}

/// Waits for `/readyz` on the admin listener: probing the tunnel port itself would open a
/// connection that the metrics and logs under test would count.
pub fn wait_ready(proc: &mut Proc, admin: SocketAddr) {
    proc.wait_until("ready", Duration::from_secs(20), || {
        std::net::TcpStream::connect_timeout(&admin, Duration::from_millis(100)).is_ok()
            && http_get(admin, "/readyz").starts_with("HTTP/1.0 200")
    });
}

/// Fetches `http://ADDR/PATH` from an admin listener with a minimal HTTP/1.0 request.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("connect to admin listener");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response);
    response
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

/// Sends `ping` through the tunnel entry `addr`, half-closes, and reports whether exactly `ping`
/// came back within 10 s.
pub async fn ping_through(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if tcp.write_all(b"ping").await.is_err() || tcp.shutdown().await.is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    matches!(read, Ok(Ok(_))) && reply == b"ping"
}

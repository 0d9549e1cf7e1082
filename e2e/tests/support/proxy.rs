//! A TCP relay in front of the API server that a test cuts and restores, to make the API server
//! unreachable for one client without stopping the cluster the other tests share.
//!
//! The API server's certificate names `127.0.0.1`, so a client pointed at the relay's loopback
//! port still verifies it (the port is not part of the check).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The relay. Dropping it stops accepting; relayed connections end with the test's runtime.
pub struct ApiProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

// === impl ApiProxy ===

impl ApiProxy {
    /// Relays a fresh loopback port to `upstream` (an `https://127.0.0.1:PORT` URL).
    pub async fn start(upstream: &str) -> Result<ApiProxy> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("API server address in {upstream}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, _) = watch::channel(true);
        let signal = up.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut up = signal.subscribe();
                if !*up.borrow_and_update() {
                    continue; // cut: close new connections at once
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = up.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(ApiProxy { addr, up, accept })
    }

    /// The relay's URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Makes the API server unreachable: drops every relayed connection and closes new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Relays again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }

    /// A kube client that goes through the relay, with the credentials of `kubeconfig`.
    pub async fn client(&self, kubeconfig: &Path) -> Result<kube::Client> {
        let file = kube::config::Kubeconfig::read_from(kubeconfig)?;
        let mut config = kube::Config::from_custom_kubeconfig(file, &Default::default()).await?;
        config.cluster_url = self.url().parse()?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A copy of `kubeconfig` in `dir` whose server is the relay.
    pub fn kubeconfig(&self, kubeconfig: &Path, server: &str, dir: &Path) -> Result<PathBuf> {
        let text = std::fs::read_to_string(kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        anyhow::ensure!(text.contains(server), "{server} not in {text}");
        let path = dir.join("proxied.kubeconfig");
        std::fs::write(&path, text.replace(server, &self.url()))?;
        Ok(path)
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

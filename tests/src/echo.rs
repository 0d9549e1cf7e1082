//! Small TCP servers for tests: an echo server that honours half-close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts an echo server on `addr` (port 0 for any); returns its address. Each connection is
/// echoed until the client's FIN, then the server shuts its write half, so a client that
/// half-closes still receives everything it sent.
pub async fn spawn_echo(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("bind echo server");
    let local = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = w.shutdown().await;
            });
        }
    });
    local
}

/// Starts a server that reads until the client's FIN, then replies with `reply` and closes:
/// the half-close case, where the answer only comes after the request side is shut.
pub async fn spawn_reply_after_eof(addr: &str, reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("bind server");
    let local = listener.local_addr().expect("server address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                if tcp.read_to_end(&mut request).await.is_ok() {
                    let _ = tcp.write_all(reply).await;
                    let _ = tcp
                        .write_all(format!(" ({} bytes)", request.len()).as_bytes())
                        .await;
                    let _ = tcp.shutdown().await;
                }
            });
        }
    });
    local
}

/// Starts an echo server that counts the connections it accepts and the bytes it receives:
/// proof that a denied connection never reached its destination.
pub async fn spawn_counting_echo(addr: &str) -> (SocketAddr, Arc<EchoCounts>) {
    let listener = TcpListener::bind(addr).await.expect("bind echo server");
    let local = listener.local_addr().expect("echo address");
    let counts = Arc::new(EchoCounts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let shared = shared.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n @ 1..) = r.read(&mut buf).await {
                    shared.bytes.fetch_add(n, Ordering::SeqCst);
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                let _ = w.shutdown().await;
            });
        }
    });
    (local, counts)
}

/// What a counting echo server has seen.
#[derive(Debug, Default)]
pub struct EchoCounts {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Bytes received.
    pub bytes: AtomicUsize,
}

// === impl EchoCounts ===

impl EchoCounts {
    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

//! `warren-bench`: the load side of `bench/run.sh`.
//!
//! - `conn-rate`: new connections per second and connect-to-first-byte latency through a tunnel
//!   in front of an echo server: each connection connects, sends a small request, waits for the
//!   echoed reply and closes. Every connection is a new tunnel, hence a new TLS handshake.
//! - `hold`: opens N tunneled connections, proves each carries a byte, then keeps them idle so
//!   the script can read the tunnel processes' memory.
//! - `aead`: what the cipher alone costs per GiB, the floor of any TLS tunnel's user-space work,
//!   and what rustls' buffered API costs for the same bytes.
#![forbid(unsafe_code)]

mod aead;
mod rustls_cost;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Load generator for Warren's benchmarks.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure new connections per second and connect-to-first-byte latency.
    ConnRate {
        /// Tunnel entry (in front of an echo server).
        #[arg(long)]
        addr: SocketAddr,
        /// How long to run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Connections in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Request size in bytes (echoed back).
        #[arg(long, default_value_t = 64)]
        payload: usize,
    },
    /// Serve TCP echo (the destination behind the tunnels).
    Echo {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Measure what AES-256-GCM alone costs per GiB (seal and open, 16 KiB records), and what
    /// rustls' buffered API costs for the same bytes.
    Aead {
        /// GiB to seal and open.
        #[arg(long, default_value_t = 1.0)]
        gib: f64,
    },
    /// Open and hold idle tunneled connections.
    Hold {
        /// Tunnel entry (in front of an echo server).
        #[arg(long)]
        addr: SocketAddr,
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// How long to hold them after printing `ready`.
        #[arg(long, default_value_t = 10)]
        hold_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::ConnRate {
            addr,
            seconds,
            concurrency,
            payload,
        } => conn_rate(addr, Duration::from_secs(seconds), concurrency, payload).await,
        Command::Hold {
            addr,
            count,
            hold_seconds,
        } => hold(addr, count, Duration::from_secs(hold_seconds)).await,
        Command::Echo { listen } => echo(listen).await,
        Command::Aead { gib } => {
            let cipher = aead::measure(gib)?;
            let rustls = rustls_cost::measure(gib)?;
            println!(
                "aead seal_s_per_gib={:.3} open_s_per_gib={:.3} rustls_seal_s_per_gib={:.3} \
                 rustls_open_s_per_gib={:.3}",
                cipher.seal, cipher.open, rustls.seal, rustls.open
            );
            Ok(())
        }
    }
}

async fn echo(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    loop {
        let (mut tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let (mut r, mut w) = tcp.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
    }
}

/// One request/reply on a new connection; returns connect-to-first-byte time.
async fn one(addr: SocketAddr, request: &[u8]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(request).await?;
    let mut reply = vec![0u8; request.len()];
    let n = tcp.read(&mut reply).await?;
    if n == 0 {
        bail!("connection closed without a reply");
    }
    let first_byte = start.elapsed();
    tcp.read_exact(&mut reply[n..]).await?;
    Ok(first_byte)
}

async fn conn_rate(
    addr: SocketAddr,
    duration: Duration,
    concurrency: usize,
    payload: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(async move {
                let request = vec![b'x'; payload];
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    match one(addr, &request).await {
                        Ok(latency) => latencies.push(latency),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, e) = worker.await?;
        all.extend(latencies);
        errors += e;
    }
    if all.is_empty() {
        bail!("no connection succeeded ({errors} errors)");
    }
    all.sort_unstable();
    let pct =
        |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "conns_per_sec={:.0} p50_ms={:.3} p99_ms={:.3} ok={} errors={}",
        all.len() as f64 / duration.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.len(),
        errors
    );
    Ok(())
}

async fn hold(addr: SocketAddr, count: usize, hold_for: Duration) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let mut tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connection {i}"))?;
        tcp.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte)
            .await
            .with_context(|| format!("connection {i}: no echo"))?;
        held.push(tcp);
    }
    println!("ready {count}");
    tokio::time::sleep(hold_for).await;
    drop(held);
    Ok(())
}

//! `warren-operator`: the TunnelRoute controller, run by whichever replica holds the Lease.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use warren_operator::{admin, leader, metrics::Metrics, replica};

/// Warren's operator: validates TunnelRoutes and writes their status.
#[derive(Parser)]
#[command(name = "warren-operator", version)]
struct Args {
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "WARREN_OPERATOR_ADMIN_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    admin_addr: SocketAddr,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "warren-system")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "WARREN_OPERATOR_LEASE", default_value = "warren-operator")]
    lease_name: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease stays valid without renewal.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-operator: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("no usable Kubernetes configuration (in-cluster or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let ready = admin::serve(args.admin_addr, metrics.clone(), shutdown.clone()).await?;
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            admin::wait_for_signal().await;
            shutdown.cancel();
        }
    });
    let identity = args
        .identity
        .unwrap_or_else(|| format!("warren-operator-{}", std::process::id()));
    let lease = leader::LeaseConfig {
        namespace: args.lease_namespace,
        name: args.lease_name,
        identity,
        duration: Duration::from_secs(args.lease_seconds),
        renew_every: Duration::from_secs(args.lease_seconds / 3).max(Duration::from_secs(1)),
    };
    ready.set(true);
    replica::run(client, lease, metrics, shutdown).await;
    Ok(())
}

//! `warren-operator`: the TunnelRoute controller, run by whichever replica holds the Lease, and
//! the sidecar-injection webhook, served by every replica.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use warren_operator::inject::InjectConfig;
use warren_operator::webhook::namespaces::NamespaceAnnotations;
use warren_operator::webhook::{self, Webhook, tls::CertFiles};
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
    /// The injection webhook.
    #[command(flatten)]
    webhook: WebhookArgs,
}

/// The injection webhook's options; it runs when a serving certificate is given.
#[derive(clap::Args)]
struct WebhookArgs {
    /// Address the injection webhook serves HTTPS on.
    #[arg(long, env = "WARREN_WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    webhook_addr: SocketAddr,
    /// The webhook's serving certificate chain (PEM), re-read when it changes.
    #[arg(long, env = "WARREN_WEBHOOK_CERT", requires_all = ["webhook_key", "tunnel_server"])]
    webhook_cert: Option<PathBuf>,
    /// The webhook's private key (PEM).
    #[arg(long, env = "WARREN_WEBHOOK_KEY", requires = "webhook_cert")]
    webhook_key: Option<PathBuf>,
    /// Image of the injected containers (its entrypoint is the `warren` binary).
    #[arg(long, env = "WARREN_PROXY_IMAGE", default_value = concat!("ghcr.io/warren-dev/warren:", env!("CARGO_PKG_VERSION")))]
    proxy_image: String,
    /// Pull policy of the injected containers (the cluster's default when omitted).
    #[arg(long, env = "WARREN_PROXY_IMAGE_PULL_POLICY", value_parser = ["Always", "IfNotPresent", "Never"])]
    proxy_image_pull_policy: Option<String>,
    /// The tunnel server injected sidecars connect to, HOST:PORT.
    #[arg(long, env = "WARREN_TUNNEL_SERVER")]
    tunnel_server: Option<String>,
    /// Name sidecars verify the server certificate against (default: the host of
    /// `--tunnel-server`).
    #[arg(long, env = "WARREN_TUNNEL_SERVER_NAME")]
    tunnel_server_name: Option<String>,
    /// Secret with each workload's `tls.crt`, `tls.key` and `ca.crt`, in the pod's namespace
    /// (a pod may name another with `warren.dev/identity-secret`).
    #[arg(
        long,
        env = "WARREN_IDENTITY_SECRET",
        default_value = "warren-identity"
    )]
    identity_secret: String,
    /// User id of the sidecar; its own connections are never captured.
    #[arg(long, env = "WARREN_PROXY_UID", default_value_t = 1337)]
    proxy_uid: u32,
    /// Port the sidecar accepts redirected connections on.
    #[arg(long, env = "WARREN_PROXY_PORT", default_value_t = 15001)]
    proxy_port: u16,
    /// Port of the sidecar's `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "WARREN_PROXY_ADMIN_PORT", default_value_t = 15090)]
    proxy_admin_port: u16,
    /// Capture IPv4 only (for clusters whose pods have no IPv6).
    #[arg(long, env = "WARREN_NO_IPV6")]
    no_ipv6: bool,
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
    serve_webhook(args.webhook, &client, &metrics, &shutdown).await?;
    ready.set(true);
    replica::run(client, lease, metrics, shutdown).await;
    Ok(())
}

/// Starts the injection webhook, unless no certificate was given.
async fn serve_webhook(
    args: WebhookArgs,
    client: &kube::Client,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let (Some(cert), Some(key), Some(tunnel_server)) =
        (args.webhook_cert, args.webhook_key, args.tunnel_server)
    else {
        tracing::info!("no --webhook-cert: injection webhook off");
        return Ok(());
    };
    let tls = webhook::tls::server_config(CertFiles { cert, key })
        .context("--webhook-cert/--webhook-key")?;
    let config = InjectConfig {
        image: args.proxy_image,
        image_pull_policy: args.proxy_image_pull_policy,
        tunnel_server,
        tunnel_server_name: args.tunnel_server_name,
        identity_secret: args.identity_secret,
        proxy_uid: args.proxy_uid.into(),
        proxy_port: args.proxy_port,
        admin_port: args.proxy_admin_port,
        ipv6: !args.no_ipv6,
    };
    let webhook = Arc::new(Webhook {
        config,
        namespaces: NamespaceAnnotations::watch(
            kube::Api::all(client.clone()),
            metrics.clone(),
            shutdown.clone(),
        ),
        metrics: metrics.clone(),
    });
    let bound = webhook::serve(args.webhook_addr, tls, webhook, shutdown.clone()).await?;
    tracing::info!(%bound, path = webhook::PATH, "injection webhook serving");
    Ok(())
}

//! Wires a parsed command line to the client, the server or init.
//!
//! Configuration is read and checked before any port is bound, and a bad configuration exits
//! with its own code ([`ExitStatus::Config`]), so an orchestrator can tell "fix the flags" from
//! "crashed".

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rustls_pki_types::ServerName;
use tokio_util::sync::CancellationToken;
use warren_core::Destination;

use crate::admin::{self, Readiness};
use crate::cli::{Cli, ClientArgs, Command, CommonArgs, ServerArgs};
use crate::client::{Client, Mode};
use crate::policy::{ConnectPolicy, RoutesPolicy, StaticPolicy};
use crate::server::Server;
use crate::tls::TlsFiles;
use crate::{Timeouts, limits, reload, shutdown, telemetry, tls};

/// How the process ends.
#[derive(Debug)]
pub enum ExitStatus {
    /// Ran and stopped cleanly.
    Ok,
    /// The configuration is invalid (exit code 2).
    Config(anyhow::Error),
    /// Failed while running (exit code 1).
    Runtime(anyhow::Error),
}

/// Runs the command line's subcommand to completion.
pub fn run(cli: Cli) -> ExitStatus {
    telemetry::init(cli.log_format);
    if let Command::Init(args) = &cli.command {
        return match crate::init::run(args) {
            Ok(()) => ExitStatus::Ok,
            Err(e) => ExitStatus::Runtime(e),
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return ExitStatus::Runtime(anyhow!("cannot start the async runtime: {e}")),
    };
    tls::install_default_provider();
    runtime.block_on(async {
        match cli.command {
            Command::Server(args) => run_server(args).await,
            Command::Client(args) => run_client(args).await,
            Command::Init(_) => unreachable!("handled above"),
        }
    })
}

fn timeouts(common: &CommonArgs) -> Timeouts {
    Timeouts {
        connect: common.connect_timeout,
        idle: common.idle_timeout,
        drain: common.drain_timeout,
    }
}

/// `--max-connections`, else what the (raised) open-files limit holds.
fn max_connections(common: &CommonArgs) -> usize {
    let open_files = limits::raise_open_files();
    let (max, source) = match common.max_connections {
        Some(max) => (
            usize::try_from(max).unwrap_or(usize::MAX),
            "--max-connections",
        ),
        None => (limits::max_connections_for(open_files), "open-files limit"),
    };
    tracing::info!(
        max_connections = max,
        source,
        open_files,
        "connection limit"
    );
    if max > limits::max_connections_for(open_files) {
        tracing::warn!(
            max_connections = max,
            open_files,
            "--max-connections is more than the open-files limit holds; accepts may fail with EMFILE"
        );
    }
    max
}

/// Starts the admin listener if asked for, and the signal handler.
async fn start_operations(
    metrics_addr: Option<SocketAddr>,
    readiness: Readiness,
) -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    if let Some(addr) = metrics_addr {
        admin::serve(addr, readiness, token.clone()).await?;
    }
    shutdown::cancel_on_signal(token.clone());
    Ok(token)
}

async fn run_server(args: ServerArgs) -> ExitStatus {
    let files = TlsFiles {
        cert: args.cert.clone(),
        key: args.key.clone(),
        ca: args.client_ca.clone(),
        allow_tls12: args.common.allow_tls12,
    };
    let interval = args.common.reload_interval;
    let tls = match reload::watch_files("tls", files.paths(), interval, move || {
        files.server_configs()
    }) {
        Ok(tls) => tls,
        Err(e) => return ExitStatus::Config(e.into()),
    };
    let readiness = Readiness::default();
    let (policy, accept_plain): (Arc<dyn ConnectPolicy>, bool) = match (
        &args.connect,
        &args.policy,
        args.policy_source,
    ) {
        (Some(target), None, None) => match resolve_checked("--connect", target).await {
            Ok(target) => (Arc::new(StaticPolicy { target }), true),
            Err(e) => return ExitStatus::Config(e),
        },
        (None, Some(path), None) => {
            let routes =
                crate::policy::file::watch(path.clone(), args.trust_domain.clone(), interval);
            match routes {
                Ok(routes) => {
                    let synced = Readiness::default();
                    synced.set(true);
                    (Arc::new(RoutesPolicy::new(routes, synced)), false)
                }
                Err(e) => return ExitStatus::Config(e.into()),
            }
        }
        (None, None, Some(_)) => {
            let selector = args.route_selector.clone();
            let namespaces = args.route_namespaces.clone();
            let trust_domain = args.trust_domain.clone();
            let started = crate::policy::kubernetes::start(
                trust_domain,
                selector,
                namespaces,
                readiness.clone(),
            );
            match started.await {
                Ok(policy) => (Arc::new(policy), false),
                Err(e) => return ExitStatus::Config(e),
            }
        }
        _ => {
            return ExitStatus::Config(anyhow!(
                "give exactly one of --policy FILE, --connect HOST:PORT or --policy-source kubernetes"
            ));
        }
    };
    let listener = match crate::accept::bind("--listen", args.listen).await {
        Ok(listener) => listener,
        Err(e) => return ExitStatus::Config(e),
    };
    let shutdown = match start_operations(args.common.metrics_addr, readiness.clone()).await {
        Ok(token) => token,
        Err(e) => return ExitStatus::Config(e),
    };
    // With Kubernetes routes, readiness follows the first sync instead.
    if args.policy_source.is_none() {
        readiness.set(true);
    }
    let server = Server {
        listener,
        tls,
        policy,
        accept_plain,
        timeouts: timeouts(&args.common),
        max_connections: max_connections(&args.common),
    };
    server.run(shutdown.clone()).await;
    shutdown.cancel();
    ExitStatus::Ok
}

async fn run_client(args: ClientArgs) -> ExitStatus {
    let files = TlsFiles {
        cert: args.cert.clone(),
        key: args.key.clone(),
        ca: args.ca.clone(),
        allow_tls12: args.common.allow_tls12,
    };
    let interval = args.common.reload_interval;
    let resume = !args.no_session_resumption;
    let tls = match reload::watch_files("tls", files.paths(), interval, move || {
        files.client_config(resume)
    }) {
        Ok(tls) => tls,
        Err(e) => return ExitStatus::Config(e.into()),
    };
    let server = match resolve_checked("--server", &args.server).await {
        Ok(server) => server,
        Err(e) => return ExitStatus::Config(e),
    };
    let server_name = match server_name(args.server_name.as_deref(), &server) {
        Ok(name) => name,
        Err(e) => return ExitStatus::Config(e),
    };
    let mode = match (&args.connect, args.transparent, args.plain) {
        (Some(target), false, false) => match target.parse::<Destination>() {
            Ok(target) => Mode::Fixed(target),
            Err(e) => return ExitStatus::Config(anyhow!("--connect {target}: {e}")),
        },
        (None, true, false) => Mode::Transparent,
        (None, false, true) => Mode::Plain,
        _ => {
            return ExitStatus::Config(anyhow!(
                "give exactly one of --transparent, --connect HOST:PORT or --plain"
            ));
        }
    };
    let listener = match crate::accept::bind("--listen", args.listen).await {
        Ok(listener) => listener,
        Err(e) => return ExitStatus::Config(e),
    };
    let readiness = Readiness::default();
    let shutdown = match start_operations(args.common.metrics_addr, readiness.clone()).await {
        Ok(token) => token,
        Err(e) => return ExitStatus::Config(e),
    };
    readiness.set(true);
    let client = Client {
        listener,
        server,
        server_name,
        tls,
        mode,
        timeouts: timeouts(&args.common),
        max_connections: max_connections(&args.common),
    };
    client.run(shutdown.clone()).await;
    shutdown.cancel();
    ExitStatus::Ok
}

/// Parses HOST:PORT and checks now that the host resolves, so a typo fails at start-up with the
/// flag's name rather than on every connection.
async fn resolve_checked(flag: &str, value: &str) -> anyhow::Result<Destination> {
    let destination: Destination = value.parse().with_context(|| format!("{flag} {value}"))?;
    if let Destination::Name { host, port } = &destination {
        let mut addresses = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .with_context(|| format!("{flag} {value}: cannot resolve {host}"))?;
        if addresses.next().is_none() {
            return Err(anyhow!("{flag} {value}: {host} resolves to no address"));
        }
    }
    Ok(destination)
}

/// The name to verify the server certificate against.
fn server_name(flag: Option<&str>, server: &Destination) -> anyhow::Result<ServerName<'static>> {
    let name = match (flag, server) {
        (Some(name), _) => name.to_owned(),
        (None, Destination::Ip(addr)) => addr.ip().to_string(),
        (None, Destination::Name { host, .. }) => host.clone(),
    };
    ServerName::try_from(name.clone()).map_err(|e| anyhow!("--server-name {name}: {e}"))
}

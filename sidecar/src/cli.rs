//! Command-line interface of the `warren` binary.
//!
//! Every flag can also be given as an environment variable (`WARREN_...`), which is how the
//! injection webhook configures the sidecar and init containers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Warren: a Kubernetes-native transparent TLS tunnel.
#[derive(Debug, Parser)]
#[command(name = "warren", version, about, propagate_version = true)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, env = "WARREN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The `warren` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tunnel server: terminates mutual TLS, applies the policy, connects and relays.
    Server(ServerArgs),
    /// Tunnel client (the sidecar): accepts local connections and tunnels them to a server.
    Client(ClientArgs),
    /// Installs the iptables rules that send a pod's outbound TCP to the sidecar.
    Init(crate::init::InitArgs),
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options shared by the client and the server.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Address to serve Prometheus `/metrics`, `/healthz` and `/readyz` on.
    #[arg(long, env = "WARREN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Close a tunnel when no byte moved either way for this long (e.g. `1h`, `30s`).
    #[arg(long, env = "WARREN_IDLE_TIMEOUT", value_parser = parse_duration, default_value = "1h")]
    pub idle_timeout: Duration,

    /// Give up connecting to the next hop after this long.
    #[arg(long, env = "WARREN_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,

    /// On SIGTERM, stop accepting and let live connections finish for at most this long.
    #[arg(long, env = "WARREN_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,

    /// How often certificate, key and policy files are checked for changes.
    #[arg(long, env = "WARREN_RELOAD_INTERVAL", value_parser = parse_duration, default_value = "2s")]
    pub reload_interval: Duration,

    /// Handle at most this many connections at once; more wait in the listen backlog until one
    /// closes. Default: as many as the open-files limit holds (two sockets each, after raising
    /// the soft limit to the hard one).
    #[arg(long, env = "WARREN_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Also allow TLS 1.2 (TLS 1.3 only by default; nothing older is ever allowed).
    #[arg(long, env = "WARREN_ALLOW_TLS12")]
    pub allow_tls12: bool,
}

/// `warren server` options.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to accept tunnel connections on.
    #[arg(long, env = "WARREN_LISTEN")]
    pub listen: SocketAddr,

    /// Server certificate chain (PEM).
    #[arg(long, env = "WARREN_CERT")]
    pub cert: PathBuf,

    /// Server private key (PEM).
    #[arg(long, env = "WARREN_KEY")]
    pub key: PathBuf,

    /// CA certificates (PEM) that client certificates must chain to.
    #[arg(long, env = "WARREN_CLIENT_CA")]
    pub client_ca: PathBuf,

    /// Policy file: TunnelRoute manifests (multi-document YAML), reloaded when it changes.
    #[arg(long, env = "WARREN_POLICY", conflicts_with_all = ["connect", "policy_source"])]
    pub policy: Option<PathBuf>,

    /// Static mode: forward every authenticated connection to this HOST:PORT (like stunnel's
    /// `connect`), whatever destination the client asks for.
    #[arg(long, env = "WARREN_CONNECT", conflicts_with = "policy_source")]
    pub connect: Option<String>,

    /// Where routes come from when no `--policy` or `--connect` is given.
    #[arg(long, env = "WARREN_POLICY_SOURCE", value_enum)]
    pub policy_source: Option<PolicySource>,

    /// Only watch TunnelRoutes matching this label selector (`--policy-source kubernetes`).
    #[arg(long, env = "WARREN_ROUTE_SELECTOR")]
    pub route_selector: Option<String>,

    /// Only watch TunnelRoutes of these namespaces (comma-separated; `--policy-source
    /// kubernetes`). Omitted: all namespaces, which needs cluster-wide list/watch.
    #[arg(long, env = "WARREN_ROUTE_NAMESPACES", value_delimiter = ',')]
    pub route_namespaces: Vec<String>,

    /// SPIFFE trust domain of client identities (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`).
    #[arg(long, env = "WARREN_TRUST_DOMAIN", default_value = "cluster.local")]
    pub trust_domain: String,

    /// Shared client/server options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Where the server's routes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicySource {
    /// TunnelRoute resources watched live from the Kubernetes API.
    Kubernetes,
}

/// `warren client` options.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Address to accept application connections on.
    #[arg(long, env = "WARREN_LISTEN")]
    pub listen: SocketAddr,

    /// Tunnel server, HOST:PORT.
    #[arg(long, env = "WARREN_SERVER")]
    pub server: String,

    /// Name to verify the server certificate against (default: the host of `--server`).
    #[arg(long, env = "WARREN_SERVER_NAME")]
    pub server_name: Option<String>,

    /// CA certificates (PEM) that the server certificate must chain to.
    #[arg(long, env = "WARREN_CA")]
    pub ca: PathBuf,

    /// Client certificate chain (PEM): the workload identity shown to the server.
    #[arg(long, env = "WARREN_CERT")]
    pub cert: PathBuf,

    /// Client private key (PEM).
    #[arg(long, env = "WARREN_KEY")]
    pub key: PathBuf,

    /// Tunnel connections that iptables redirected here, to their original destination.
    #[arg(
        long,
        env = "WARREN_TRANSPARENT",
        conflicts_with_all = ["connect", "plain"],
        required_unless_present_any = ["connect", "plain"]
    )]
    pub transparent: bool,

    /// Tunnel every connection to this fixed HOST:PORT destination (like stunnel's
    /// `client = yes` + `connect`); the server's policy still decides.
    #[arg(long, env = "WARREN_CONNECT", conflicts_with = "plain")]
    pub connect: Option<String>,

    /// Plain TLS toward a non-Warren TLS server (e.g. a stunnel `accept` service), which picks
    /// the destination itself: no destination token, no verdict.
    #[arg(long, env = "WARREN_PLAIN")]
    pub plain: bool,

    /// Do not resume TLS sessions: every tunnel makes a full handshake (resumption saves the
    /// server a signature and the client a certificate verification per new tunnel).
    #[arg(long, env = "WARREN_NO_SESSION_RESUMPTION")]
    pub no_session_resumption: bool,

    /// Shared client/server options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Parses durations like `500ms`, `30s`, `5m`, `1h` (a bare number means seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 30s, 5m, 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("").is_err());
    }

    /// What the injection webhook puts in a pod's containers is a valid `warren init` and
    /// `warren client` configuration: each variable is one the CLI declares, and its value
    /// parses (a flag without a value is "true").
    #[test]
    fn injected_containers_configure_this_cli() {
        use warren_operator::inject::{self, InjectConfig, Outcome};
        let config = InjectConfig {
            image: "warren:test".into(),
            image_pull_policy: None,
            tunnel_server: "warren-server.warren-system.svc:4443".into(),
            tunnel_server_name: Some("warren-server".into()),
            identity_secret: "warren-identity".into(),
            proxy_uid: 1337,
            proxy_port: 15001,
            admin_port: 15090,
            ipv6: false,
        };
        let pod = serde_json::json!({
            "metadata": {"name": "app", "annotations": {
                "warren.dev/exclude-outbound-ports": "22,8000-8100",
                "warren.dev/exclude-outbound-cidrs": "10.96.0.0/12",
                "warren.dev/include-outbound-ports": "1-65535",
                "warren.dev/include-outbound-cidrs": "0.0.0.0/0,::/0",
            }},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        });
        let Ok(Outcome::Inject(patch)) =
            inject::inject(&serde_json::from_value(pod.clone()).unwrap(), &config)
        else {
            panic!("not injected");
        };
        let mut pod = pod;
        json_patch::patch(&mut pod, &patch).unwrap();
        let containers = pod["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        let cli = Cli::command();
        for container in containers {
            let subcommand = container["args"][0].as_str().unwrap();
            let declared = cli.find_subcommand(subcommand).unwrap();
            let mut argv = vec!["warren".to_owned(), subcommand.to_owned()];
            for var in container["env"].as_array().unwrap() {
                let (name, value) = (
                    var["name"].as_str().unwrap(),
                    var["value"].as_str().unwrap(),
                );
                let arg = declared
                    .get_arguments()
                    .find(|a| a.get_env().is_some_and(|e| e == name))
                    .unwrap_or_else(|| panic!("warren {subcommand} declares no {name}"));
                let long = arg.get_long().unwrap();
                if arg.get_action().takes_values() {
                    argv.push(format!("--{long}={value}"));
                } else {
                    assert_eq!(value, "true", "{name}");
                    argv.push(format!("--{long}"));
                }
            }
            if let Err(error) = Cli::try_parse_from(&argv) {
                panic!("{argv:?}: {error}");
            }
        }
    }
}

//! The process's one Prometheus registry and Warren's metrics.

use std::sync::OnceLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric Warren exports. One instance per process, from [`get`].
pub struct Metrics {
    registry: Registry,
    /// Connections accepted, by role (`client`, `server`).
    pub accepted: IntCounterVec,
    /// Connections being handled now.
    pub active: IntGauge,
    /// Times the accept loop stopped at `--max-connections`.
    pub connection_limit_reached: IntCounter,
    /// Connections finished, by role and outcome.
    pub closed: IntCounterVec,
    /// Bytes relayed, by direction: `outbound` (application → destination) and `inbound`.
    pub bytes: IntCounterVec,
    /// TLS handshake duration, by role.
    pub handshake_seconds: HistogramVec,
    /// Policy decisions, by action (`allow`, `redirect`, `deny`).
    pub decisions: IntCounterVec,
    /// Failed connections to the next hop, by reason.
    pub upstream_failures: IntCounterVec,
    /// ClientHellos refused for their destination token, by reason.
    pub token_rejections: IntCounterVec,
    /// Denials a client received from the server, by verdict code.
    pub denials_received: IntCounterVec,
    /// File reloads, by subject (`tls`, `policy`) and result (`ok`, `error`).
    pub reloads: IntCounterVec,
    /// Routes in the active policy.
    pub policy_routes: IntGauge,
    /// 1 while the policy may be outdated (its source is unreachable), else 0.
    pub policy_stale: IntGauge,
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

// === impl Metrics ===

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("warren".into()), None)
            .expect("the prefix is a valid metric name");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let single_counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let handshake_seconds = HistogramVec::new(
            HistogramOpts::new("handshake_duration_seconds", "TLS handshake duration.").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ],
            ),
            &["role"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(handshake_seconds.clone()))
            .expect("registered once");
        Metrics {
            accepted: counter(
                "connections_accepted_total",
                "Connections accepted.",
                &["role"],
            ),
            active: gauge("connections_active", "Connections being handled now."),
            connection_limit_reached: single_counter(
                "connection_limit_reached_total",
                "Times accepting paused at the connection limit until a connection closed.",
            ),
            closed: counter(
                "connections_closed_total",
                "Connections finished, by outcome.",
                &["role", "outcome"],
            ),
            bytes: counter(
                "bytes_total",
                "Bytes relayed, by direction.",
                &["direction"],
            ),
            handshake_seconds,
            decisions: counter("policy_decisions_total", "Policy decisions.", &["action"]),
            upstream_failures: counter(
                "upstream_connect_failures_total",
                "Failed connections to the next hop.",
                &["reason"],
            ),
            token_rejections: counter(
                "token_rejections_total",
                "ClientHellos refused for their destination token.",
                &["reason"],
            ),
            denials_received: counter(
                "denials_received_total",
                "Denials received from the tunnel server, by verdict code.",
                &["code"],
            ),
            reloads: counter("reloads_total", "File reloads.", &["subject", "result"]),
            policy_routes: gauge("policy_routes", "Routes in the active policy."),
            policy_stale: gauge(
                "policy_stale",
                "1 while the policy source is unreachable and the last known policy serves.",
            ),
            registry,
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

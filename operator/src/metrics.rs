//! The operator's Prometheus metrics.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// The operator's metrics, in one registry.
pub struct Metrics {
    registry: Registry,
    /// Reconciliations by result (`ok` or an error's metric label).
    pub reconciliations: IntCounterVec,
    /// Reconciliation duration.
    pub reconcile_seconds: Histogram,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
    /// Injection reviews by outcome (`injected`, `not_requested`, `refused`, `error`, ...).
    pub injections: IntCounterVec,
    /// Namespace annotation lookups by source (`watch`, or `api` when the watch had not seen
    /// the namespace).
    pub namespace_lookups: IntCounterVec,
}

// === impl Metrics ===

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("warren_operator".into()), None).expect("valid prefix");
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "reconciliations_total",
                "TunnelRoute reconciliations by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let reconcile_seconds = Histogram::with_opts(HistogramOpts::new(
            "reconcile_duration_seconds",
            "TunnelRoute reconciliation duration.",
        ))
        .expect("valid metric");
        let leader =
            IntGauge::new("leader", "1 while this replica holds the Lease.").expect("valid metric");
        registry
            .register(Box::new(reconciliations.clone()))
            .expect("once");
        registry
            .register(Box::new(reconcile_seconds.clone()))
            .expect("once");
        registry.register(Box::new(leader.clone())).expect("once");
        let injections = IntCounterVec::new(
            Opts::new(
                "injection_reviews_total",
                "Injection webhook reviews by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(injections.clone()))
            .expect("once");
        let namespace_lookups = IntCounterVec::new(
            Opts::new(
                "namespace_lookups_total",
                "Namespace annotation lookups of the injection webhook by source.",
            ),
            &["source"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(namespace_lookups.clone()))
            .expect("once");
        Metrics {
            registry,
            reconciliations,
            reconcile_seconds,
            leader,
            injections,
            namespace_lookups,
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding into a Vec");
        String::from_utf8(out).expect("UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

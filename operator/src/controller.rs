//! The route controller: validates every TunnelRoute, finds conflicting pairs, and writes the
//! result as status conditions (server-side apply, one field manager) and Events.
//!
//! A route's conflicts depend on its neighbours, so a change to any route of a namespace
//! re-reconciles every route of that namespace.

pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use warren_core::policy::{Route, conflicts};

use crate::api::TunnelRoute;
use crate::metrics::Metrics;
use status::Findings;

/// The field manager of everything the controller writes.
pub const FIELD_MANAGER: &str = "warren-operator";

/// Why a reconciliation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the status failed.
    #[error("writing status of {route}: {source}")]
    Status {
        /// `namespace/name`.
        route: String,
        /// The API error.
        source: kube::Error,
    },
}

// === impl Error ===

impl Error {
    /// A stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Status { .. } => "status_write",
        }
    }
}

/// What reconciliations share.
pub struct Context {
    client: Client,
    store: Store<TunnelRoute>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Consecutive failures per route, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<TunnelRoute>, u32>>,
}

/// Runs the controller until `shutdown` completes.
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let routes: Api<TunnelRoute> = Api::all(client.clone());
    let controller = Controller::new(routes.clone(), watcher::Config::default());
    let store = controller.store();
    let neighbours = store.clone();
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        store,
        metrics,
        failures: Mutex::default(),
    });
    controller
        // Any route change re-checks its namespace's routes for conflicts.
        .watches(
            routes,
            watcher::Config::default(),
            move |changed: TunnelRoute| {
                let namespace = changed.namespace();
                neighbours
                    .state()
                    .into_iter()
                    .filter(|r| r.namespace() == namespace)
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile loop");
            }
        })
        .await;
}

/// Validates one route and writes its status.
#[tracing::instrument(skip_all, fields(route = %format!("{}/{}", route.namespace().unwrap_or_default(), route.name_any())))]
async fn reconcile(route: Arc<TunnelRoute>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_seconds.start_timer();
    let namespace = route.namespace().unwrap_or_default();
    let name = route.name_any();
    let full_name = format!("{namespace}/{name}");
    let findings = findings(&route, &ctx.store.state(), &full_name);
    let status = status::desired(
        &findings,
        route.meta().generation,
        route.status.as_ref(),
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if route.status.as_ref() != Some(&status) {
        let api: Api<TunnelRoute> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = serde_json::json!({
            "apiVersion": "warren.dev/v1alpha1",
            "kind": "TunnelRoute",
            "status": status,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::Status {
            route: full_name.clone(),
            source,
        })?;
        publish(&ctx, &route, &findings).await;
    }
    ctx.failures
        .lock()
        .expect("failures lock")
        .remove(&ObjectRef::from_obj(route.as_ref()));
    ctx.metrics.reconciliations.with_label_values(&["ok"]).inc();
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Validation and conflicts of `route` among the routes of its namespace.
fn findings(route: &TunnelRoute, all: &[Arc<TunnelRoute>], full_name: &str) -> Findings {
    let converted = Route::try_from(route);
    let valid = converted.as_ref().map(drop).map_err(|e| e.problem.clone());
    let mut conflicts_with = Vec::new();
    if let Ok(this) = converted {
        let mut neighbours: Vec<Route> = all
            .iter()
            .filter(|r| r.namespace() == route.namespace() && r.name_any() != route.name_any())
            .filter_map(|r| Route::try_from(r.as_ref()).ok())
            .collect();
        neighbours.push(this);
        for conflict in conflicts(&neighbours) {
            let (deny, allow) = (conflict.deny.to_string(), conflict.allow.to_string());
            if deny == full_name {
                conflicts_with.push(allow);
            } else if allow == full_name {
                conflicts_with.push(deny);
            }
        }
        conflicts_with.sort();
        conflicts_with.dedup();
    }
    Findings {
        valid,
        conflicts_with,
    }
}

/// Emits an Event when a route is invalid or conflicted (and once when it becomes accepted).
async fn publish(ctx: &Context, route: &TunnelRoute, findings: &Findings) {
    let (type_, reason, note) = match (&findings.valid, findings.conflicts_with.is_empty()) {
        (Err(message), _) => (EventType::Warning, "Invalid", message.clone()),
        (Ok(()), false) => (
            EventType::Warning,
            "Conflicted",
            format!("conflicts with {}", findings.conflicts_with.join(", ")),
        ),
        (Ok(()), true) => (
            EventType::Normal,
            "Accepted",
            "the route is in force".to_owned(),
        ),
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Validate".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &route.object_ref(&())).await {
        tracing::warn!(%error, "cannot publish event");
    }
}

/// Backs off exponentially per route: 1 s, 2 s, 4 s … up to 5 minutes.
fn error_policy(route: Arc<TunnelRoute>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconciliations
        .with_label_values(&[error.metric_label()])
        .inc();
    let mut failures = ctx.failures.lock().expect("failures lock");
    let n = failures
        .entry(ObjectRef::from_obj(route.as_ref()))
        .or_insert(0);
    *n = n.saturating_add(1);
    let delay = Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300));
    tracing::warn!(%error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, action: &str, cidr: &str) -> Arc<TunnelRoute> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "warren.dev/v1alpha1", "kind": "TunnelRoute",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"destinations": [{"cidr": cidr}], "action": action},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn finds_invalid_routes_and_conflicts_in_the_namespace() {
        let allow = route("allow", "Allow", "10.0.0.0/8");
        let deny = route("deny", "Deny", "10.1.0.0/16");
        let broken = route("broken", "Allow", "10.0.0.0/33");
        let all = vec![allow.clone(), deny.clone(), broken.clone()];
        let f = findings(&allow, &all, "shop/allow");
        assert_eq!(f.valid, Ok(()));
        assert_eq!(f.conflicts_with, vec!["shop/deny".to_owned()]);
        let f = findings(&deny, &all, "shop/deny");
        assert_eq!(f.conflicts_with, vec!["shop/allow".to_owned()]);
        let f = findings(&broken, &all, "shop/broken");
        assert!(f.valid.unwrap_err().contains("cidr"));
    }
}

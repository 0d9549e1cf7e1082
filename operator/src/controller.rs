//! The route controller: validates every TunnelRoute, finds conflicting pairs, and writes the
//! result as status conditions (server-side apply, one field manager) and Events.
//!
//! One watch feeds both a reflector store and the controller. A route's conflicts depend on its
//! neighbours, so every change or deletion also triggers the other routes of its namespace. Those
//! triggers are taken from the same stream, after the store has applied the event, so that a
//! neighbour's reconciliation always sees the change that triggered it (a second watch feeding
//! the triggers would race the store). Objects are watched through `DeserializeGuard`: a route
//! this build cannot decode is reported `Accepted=False` instead of failing every list.

pub mod backoff;
pub mod findings;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{TunnelRoute, TunnelRouteStatus};
use crate::metrics::Metrics;
use backoff::Backoff;
use findings::{Guarded, full_name};
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
    /// Reading the current status of an undecodable route failed.
    #[error("reading {route}: {source}")]
    Read {
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
            Error::Read { .. } => "read",
        }
    }
}

/// What reconciliations share.
pub struct Context {
    client: Client,
    store: Store<Guarded>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Consecutive failures per route.
    backoff: Backoff<ObjectRef<Guarded>>,
}

/// Runs the controller until `shutdown` completes.
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Guarded> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let (neighbours, neighbour_triggers) = mpsc::unbounded();
    let reader = store.clone();
    let routes = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |event| trigger_neighbours(&reader, event, &neighbours))
        .applied_objects();
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        store: store.clone(),
        metrics,
        backoff: Backoff::default(),
    });
    Controller::for_stream(routes, store)
        .reconcile_on(neighbour_triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile loop");
            }
        })
        .await;
}

/// After the store applied `event`, asks for the other routes of the changed route's namespace
/// to be reconciled. (A full re-list reconciles every route anyway.)
fn trigger_neighbours(
    store: &Store<Guarded>,
    event: &watcher::Event<Guarded>,
    triggers: &mpsc::UnboundedSender<ObjectRef<Guarded>>,
) {
    let (watcher::Event::Apply(changed) | watcher::Event::Delete(changed)) = event else {
        return;
    };
    for route in store.state() {
        if route.namespace() == changed.namespace() && route.name_any() != changed.name_any() {
            // Fails only once the controller is gone, when nothing needs reconciling.
            let _ = triggers.unbounded_send(ObjectRef::from_obj(route.as_ref()));
        }
    }
}

/// Validates one route and writes its status.
#[tracing::instrument(skip_all, fields(route = %full_name(&route)))]
async fn reconcile(route: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_seconds.start_timer();
    let namespace = route.namespace().unwrap_or_default();
    let name = route.name_any();
    let findings = findings::findings(&route, &ctx.store.state());
    let current = match &route.0 {
        Ok(decoded) => decoded.status.clone(),
        Err(_) => undecodable_status(&ctx.client, &namespace, &name).await?,
    };
    let status = status::desired(
        &findings,
        route.meta().generation,
        current.as_ref(),
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if current.as_ref() != Some(&status) {
        let api: Api<Guarded> = Api::namespaced(ctx.client.clone(), &namespace);
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
            route: full_name(&route),
            source,
        })?;
        publish(&ctx, &route, &findings).await;
    }
    ctx.backoff
        .succeeded(&ObjectRef::from_obj(route.as_ref()), |key| {
            ctx.store.get(key).is_some()
        });
    ctx.metrics.reconciliations.with_label_values(&["ok"]).inc();
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// The status of a route whose spec this build cannot decode, read untyped; without it every
/// reconciliation would write a new `lastTransitionTime` and trigger the next one.
async fn undecodable_status(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<TunnelRouteStatus>, Error> {
    let resource = ApiResource::erase::<TunnelRoute>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let object = api.get(name).await.map_err(|source| Error::Read {
        route: format!("{namespace}/{name}"),
        source,
    })?;
    Ok(object
        .data
        .get("status")
        .and_then(|status| serde_json::from_value(status.clone()).ok()))
}

/// Emits an Event when a route is invalid or conflicted (and once when it becomes accepted).
async fn publish(ctx: &Context, route: &Guarded, findings: &Findings) {
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
fn error_policy(route: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconciliations
        .with_label_values(&[error.metric_label()])
        .inc();
    let delay = ctx
        .backoff
        .failed(&ObjectRef::from_obj(route.as_ref()), |key| {
            ctx.store.get(key).is_some()
        });
    tracing::warn!(%error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

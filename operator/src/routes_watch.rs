//! TunnelRoutes watched live from the Kubernetes API and compiled into a [`PolicyIndex`]: the
//! tunnel server's `--policy-source kubernetes`.
//!
//! A kube-runtime watcher feeds a reflector store; after the first complete list (`InitDone`)
//! and after every later change the store is compiled into a fresh index, published on a
//! `watch` channel. Routes that fail conversion are skipped with a log line, so one bad route
//! does not take the others down. When the watch fails (API server unreachable, RBAC) the last
//! index keeps serving and `stale` turns true until events flow again.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use warren_core::policy::{PolicyIndex, Route};

use crate::api::TunnelRoute;

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Trust domain of client identities.
    pub trust_domain: String,
    /// Only TunnelRoutes matching this label selector.
    pub label_selector: Option<String>,
}

/// The live view of the routes.
#[derive(Debug, Clone)]
pub struct RoutesWatch {
    /// The current compiled routes (empty until the first sync).
    pub routes: watch::Receiver<Arc<PolicyIndex>>,
    /// True once the first complete list has been compiled.
    pub synced: watch::Receiver<bool>,
    /// True while the watch is failing and the routes may be outdated.
    pub stale: watch::Receiver<bool>,
}

/// Starts watching TunnelRoutes in all namespaces; the task ends when every receiver is gone.
pub fn watch_routes(client: Client, config: WatchConfig) -> RoutesWatch {
    let (routes_tx, routes) =
        watch::channel(Arc::new(PolicyIndex::new(&config.trust_domain, vec![])));
    let (synced_tx, synced) = watch::channel(false);
    let (stale_tx, stale) = watch::channel(false);
    let api: Api<TunnelRoute> = Api::all(client);
    let mut watcher_config = watcher::Config::default();
    if let Some(selector) = &config.label_selector {
        watcher_config = watcher_config.labels(selector);
    }
    let (store, writer) = reflector::store();
    let events = watcher::watcher(api, watcher_config)
        .default_backoff()
        .reflect(writer);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if routes_tx.is_closed() {
                return;
            }
            match event {
                Ok(event) => {
                    stale_tx.send_if_modified(|stale| std::mem::replace(stale, false));
                    let publish = match event {
                        Event::InitDone => {
                            synced_tx.send_replace(true);
                            true
                        }
                        Event::Apply(_) | Event::Delete(_) => *synced_tx.borrow(),
                        Event::Init | Event::InitApply(_) => false,
                    };
                    if publish {
                        routes_tx.send_replace(Arc::new(compile(&store, &config.trust_domain)));
                    }
                }
                Err(error) => {
                    let newly_stale =
                        stale_tx.send_if_modified(|stale| !std::mem::replace(stale, true));
                    if newly_stale {
                        tracing::warn!(%error, "TunnelRoute watch failing; serving the last known routes");
                    } else {
                        tracing::debug!(%error, "TunnelRoute watch still failing");
                    }
                }
            }
        }
    });
    RoutesWatch {
        routes,
        synced,
        stale,
    }
}

/// Compiles the store's routes, skipping (and logging) the ones that do not convert.
fn compile(store: &Store<TunnelRoute>, trust_domain: &str) -> PolicyIndex {
    let mut routes = Vec::new();
    for object in store.state() {
        match Route::try_from(object.as_ref()) {
            Ok(route) => routes.push(route),
            Err(error) => tracing::warn!(
                route = %format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()),
                %error,
                "skipping invalid TunnelRoute"
            ),
        }
    }
    let index = PolicyIndex::new(trust_domain, routes);
    tracing::info!(routes = index.len(), "TunnelRoutes compiled");
    index
}

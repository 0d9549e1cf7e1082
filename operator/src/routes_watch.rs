//! TunnelRoutes watched live from the Kubernetes API and compiled into a [`PolicyIndex`]: the
//! tunnel server's `--policy-source kubernetes`.
//!
//! One [`scope`] follower per watched scope (all namespaces, or each namespace asked for) runs a
//! kube-runtime watcher into its own reflector store. A compiler task hears from the followers,
//! waits a few milliseconds for a burst of changes to settle, and compiles every store into a
//! fresh index published on a `watch` channel:
//!
//! - nothing is published, and `synced` stays false, until every scope has completed its first
//!   full list, so a server never decides on a partial view;
//! - a route that does not convert is skipped with one log line (per version of it), and so is an
//!   object that does not even deserialize (`DeserializeGuard`, e.g. a newer CRD version): one
//!   bad object never stalls the others;
//! - when the API server is unreachable the last index keeps serving and `stale` is true until a
//!   follower has re-listed its scope.

mod scope;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use warren_core::policy::{PolicyIndex, Route};

use crate::api::TunnelRoute;
use scope::Notice;

/// A TunnelRoute, or the metadata and error of one that does not deserialize.
type Guarded = DeserializeGuard<TunnelRoute>;

/// After a change, how long the compiler waits for the next one before compiling.
const SETTLE: Duration = Duration::from_millis(5);
/// The longest a change waits for a burst to settle.
const MAX_DELAY: Duration = Duration::from_millis(50);

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Trust domain of client identities.
    pub trust_domain: String,
    /// Only TunnelRoutes matching this label selector.
    pub label_selector: Option<String>,
    /// Only TunnelRoutes of these namespaces; empty: all namespaces.
    pub namespaces: Vec<String>,
}

/// The live view of the routes.
#[derive(Debug, Clone)]
pub struct RoutesWatch {
    /// The current compiled routes (empty until the first sync).
    pub routes: watch::Receiver<Arc<PolicyIndex>>,
    /// True once every scope has been listed completely and compiled.
    pub synced: watch::Receiver<bool>,
    /// True while a watch is failing and the routes may be outdated.
    pub stale: watch::Receiver<bool>,
}

/// Starts watching TunnelRoutes; the tasks end when every receiver of `routes` is gone.
pub fn watch_routes(client: Client, config: WatchConfig) -> RoutesWatch {
    let (routes_tx, routes) =
        watch::channel(Arc::new(PolicyIndex::new(&config.trust_domain, vec![])));
    let (synced_tx, synced) = watch::channel(false);
    let (stale_tx, stale) = watch::channel(false);
    let mut watcher_config = kube::runtime::watcher::Config::default();
    if let Some(selector) = &config.label_selector {
        watcher_config = watcher_config.labels(selector);
    }
    let apis: Vec<Api<Guarded>> = if config.namespaces.is_empty() {
        vec![Api::all(client)]
    } else {
        config
            .namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let (notices, notices_rx) = mpsc::unbounded_channel();
    let stores = apis
        .into_iter()
        .enumerate()
        .map(|(id, api)| scope::follow(id, api, watcher_config.clone(), notices.clone()))
        .collect();
    let compiler = Compiler {
        trust_domain: config.trust_domain,
        stores,
        routes: routes_tx,
        synced: synced_tx,
        stale: stale_tx,
        reported: HashSet::new(),
    };
    tokio::spawn(compiler.run(notices_rx));
    RoutesWatch {
        routes,
        synced,
        stale,
    }
}

/// Turns the followers' notices into published indexes and flags.
struct Compiler {
    trust_domain: String,
    stores: Vec<Store<Guarded>>,
    routes: watch::Sender<Arc<PolicyIndex>>,
    synced: watch::Sender<bool>,
    stale: watch::Sender<bool>,
    /// Invalid route versions already logged, so that each is logged once.
    reported: HashSet<(String, String)>,
}

// === impl Compiler ===

impl Compiler {
    async fn run(mut self, mut notices: mpsc::UnboundedReceiver<Notice>) {
        let scopes = self.stores.len();
        let mut synced = vec![false; scopes];
        let mut stale = vec![false; scopes];
        let mut dirty = false;
        let mut deadline: Option<Instant> = None;
        loop {
            let settle = deadline.map(|at| (Instant::now() + SETTLE).min(at));
            let settled = async move {
                match settle {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let notice = tokio::select! {
                () = self.routes.closed() => return,
                () = settled => None,
                notice = notices.recv() => match notice {
                    Some(notice) => Some(notice),
                    None => return,
                },
            };
            let Some(notice) = notice else {
                // The burst has settled.
                self.publish();
                deadline = None;
                dirty = false;
                continue;
            };
            match notice {
                Notice::Listed(id) => {
                    synced[id] = true;
                    stale[id] = false;
                    dirty = true;
                }
                Notice::Changed(_) => dirty = true,
                Notice::Failing(id) => stale[id] = true,
            }
            let any_stale = stale.contains(&true);
            self.stale
                .send_if_modified(|s| std::mem::replace(s, any_stale) != any_stale);
            if dirty && deadline.is_none() && synced.iter().all(|s| *s) {
                deadline = Some(Instant::now() + MAX_DELAY);
            }
        }
    }

    /// Compiles every store and publishes the index, then (the first time) `synced`.
    fn publish(&mut self) {
        let index = self.compile();
        tracing::info!(routes = index.len(), "TunnelRoutes compiled");
        self.routes.send_replace(Arc::new(index));
        self.synced
            .send_if_modified(|s| !std::mem::replace(s, true));
    }

    /// The routes of every store, skipping (and logging once) those that do not convert.
    fn compile(&mut self) -> PolicyIndex {
        let mut routes = Vec::new();
        let mut invalid = HashSet::new();
        for object in self.stores.iter().flat_map(Store::state) {
            let problem = match &object.0 {
                Ok(route) => match Route::try_from(route) {
                    Ok(route) => {
                        routes.push(route);
                        continue;
                    }
                    Err(error) => error.to_string(),
                },
                Err(undecodable) => format!("cannot decode: {undecodable}"),
            };
            let name = format!(
                "{}/{}",
                object.namespace().unwrap_or_default(),
                object.name_any()
            );
            let version = (name, object.resource_version().unwrap_or_default());
            if !self.reported.contains(&version) {
                tracing::warn!(route = %version.0, error = %problem, "skipping invalid TunnelRoute");
            }
            invalid.insert(version);
        }
        self.reported = invalid;
        PolicyIndex::new(&self.trust_domain, routes)
    }
}

#[cfg(test)]
mod tests;

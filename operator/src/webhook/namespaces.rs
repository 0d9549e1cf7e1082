//! Namespace annotations for the webhook, read from a metadata watch so that a review of a pod
//! without an annotation of its own costs no round trip to the API server.
//!
//! A namespace the watch has not seen (created a moment ago, or the watch not yet listed, or
//! failing, e.g. for want of `list`/`watch` on namespaces) is read with a GET instead, so a
//! review is never judged on a missing namespace. A watch trails the API server by milliseconds:
//! a pod created in the instant after its namespace's annotation changed may be judged by the
//! previous annotation, as with any informer-based injector.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// A namespace's metadata only: `Api<PartialObjectMeta<_>>` makes metadata-only requests.
type Metadata = PartialObjectMeta<Namespace>;

/// Annotations of namespaces: a watched store, with the API server behind it.
pub struct NamespaceAnnotations {
    store: Store<Metadata>,
    api: Api<Metadata>,
    metrics: Arc<Metrics>,
}

// === impl NamespaceAnnotations ===

impl NamespaceAnnotations {
    /// Starts watching the metadata of every namespace until `shutdown`.
    pub fn watch(api: Api<Metadata>, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Self {
        let (store, writer) = reflector::store();
        let events = reflector::reflector(
            writer,
            watcher::watcher(api.clone(), watcher::Config::default()).default_backoff(),
        );
        tokio::spawn(async move {
            let mut events = pin!(events);
            let mut failing = false;
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = events.next() => event,
                };
                match event {
                    Some(Ok(watcher::Event::InitDone)) if failing => {
                        tracing::info!("namespace watch recovered");
                        failing = false;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        // Retried with backoff; reviews meanwhile read namespaces directly.
                        if !failing {
                            tracing::warn!(%error, "namespace watch failing; reading namespaces per review");
                        }
                        failing = true;
                    }
                    None => return,
                }
            }
        });
        NamespaceAnnotations {
            store,
            api,
            metrics,
        }
    }

    /// The annotations of `namespace`, from the watch when it has seen the namespace.
    pub async fn get(&self, namespace: &str) -> Result<BTreeMap<String, String>, kube::Error> {
        let (source, annotations) = match self.store.get(&ObjectRef::new(namespace)) {
            Some(watched) => ("watch", watched.metadata.annotations.clone()),
            None => ("api", self.api.get(namespace).await?.metadata.annotations),
        };
        self.metrics
            .namespace_lookups
            .with_label_values(&[source])
            .inc();
        Ok(annotations.unwrap_or_default())
    }
}

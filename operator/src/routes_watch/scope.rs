//! One watched scope (all namespaces, or one namespace): a kube-runtime watcher feeding a
//! reflector store, restarted with backoff when it fails.
//!
//! kube's own `default_backoff()` would resume a broken watch from its last resource version
//! without telling anyone that it is healthy again. Restarting the watcher instead means every
//! recovery goes through a full list, whose end (`InitDone`) is the proof that the view is fresh:
//! that is when the scope stops being stale. The reflector keeps serving the previous objects
//! until the new list is complete.

use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff, Event};
use tokio::sync::mpsc;

use super::Guarded;

/// The longest wait between two attempts, should the backoff run dry.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a follower tells the compiler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    /// Scope `id` completed a full list: its store is complete and fresh.
    Listed(usize),
    /// A route of scope `id` was added, changed or deleted.
    Changed(usize),
    /// The watch of scope `id` failed; its store is kept but may be outdated.
    Failing(usize),
}

/// Follows one scope until the compiler is gone; returns the store it fills.
pub(super) fn follow(
    id: usize,
    api: Api<Guarded>,
    config: watcher::Config,
    notices: mpsc::UnboundedSender<Notice>,
) -> Store<Guarded> {
    let (store, mut writer) = reflector::store();
    tokio::spawn(async move {
        let mut backoff = DefaultBackoff::default();
        let mut failing = false;
        loop {
            let mut events = pin!(watcher::watcher(api.clone(), config.clone()));
            let error = loop {
                let event = tokio::select! {
                    event = events.next() => event,
                    () = notices.closed() => return,
                };
                let event = match event {
                    Some(Ok(event)) => event,
                    Some(Err(error)) => break error,
                    // Watcher streams do not end; if one did, start over.
                    None => break watcher::Error::NoResourceVersion,
                };
                writer.apply_watcher_event(&event);
                let notice = match event {
                    Event::InitDone => {
                        if failing {
                            tracing::info!(scope = %scope_name(&api), "TunnelRoute watch recovered");
                        }
                        failing = false;
                        backoff.reset();
                        Notice::Listed(id)
                    }
                    Event::Apply(_) | Event::Delete(_) => Notice::Changed(id),
                    Event::Init | Event::InitApply(_) => continue,
                };
                if notices.send(notice).is_err() {
                    return;
                }
            };
            let delay = if is_gone(&error) {
                // The resource version expired (etcd compaction): an ordinary re-list, not an
                // outage.
                tracing::debug!(%error, "TunnelRoute watch expired; re-listing");
                Duration::ZERO
            } else {
                if !failing {
                    tracing::warn!(scope = %scope_name(&api), %error, "TunnelRoute watch failing; serving the last known routes");
                }
                failing = true;
                if notices.send(Notice::Failing(id)).is_err() {
                    return;
                }
                backoff.next().unwrap_or(MAX_BACKOFF)
            };
            tracing::debug!(%error, retry_in = ?delay, "restarting the TunnelRoute watch");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = notices.closed() => return,
            }
        }
    });
    store
}

/// `410 Gone`: the watch's resource version is too old.
fn is_gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// The scope of `api` for logs: `all namespaces` or the namespace.
fn scope_name(api: &Api<Guarded>) -> String {
    api.namespace()
        .map_or_else(|| "all namespaces".to_owned(), str::to_owned)
}

//! The compiler without a cluster: notices and reflector stores are fed by hand, on a paused
//! clock.

use std::time::Duration;

use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;

use super::*;

fn guarded(namespace: &str, name: &str, version: &str) -> Guarded {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1", "kind": "TunnelRoute",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        "spec": {"destinations": [{"cidr": "10.0.0.0/8"}], "action": "Allow"},
    }))
    .unwrap()
}

struct Harness {
    writers: Vec<Writer<Guarded>>,
    notices: mpsc::UnboundedSender<Notice>,
    watch: RoutesWatch,
}

fn harness(scopes: usize) -> Harness {
    let (writers, stores): (Vec<_>, Vec<_>) = (0..scopes)
        .map(|_| {
            let (store, writer) = reflector::store();
            (writer, store)
        })
        .unzip();
    let (routes_tx, routes) = watch::channel(Arc::new(PolicyIndex::new("cluster.local", vec![])));
    let (synced_tx, synced) = watch::channel(false);
    let (stale_tx, stale) = watch::channel(false);
    let (notices, rx) = mpsc::unbounded_channel();
    let compiler = Compiler {
        trust_domain: "cluster.local".into(),
        stores,
        routes: routes_tx,
        synced: synced_tx,
        stale: stale_tx,
        reported: HashSet::new(),
    };
    tokio::spawn(compiler.run(rx));
    Harness {
        writers,
        notices,
        watch: RoutesWatch {
            routes,
            synced,
            stale,
        },
    }
}

/// Lets the compiler run until the clock has moved by `by`.
async fn advance(by: Duration) {
    tokio::time::sleep(by).await;
}

#[tokio::test(start_paused = true)]
async fn synced_only_when_every_scope_is_listed() {
    let mut h = harness(2);
    for event in [
        Event::Init,
        Event::InitApply(guarded("a", "one", "1")),
        Event::InitDone,
    ] {
        h.writers[0].apply_watcher_event(&event);
    }
    h.notices.send(Notice::Listed(0)).unwrap();
    advance(Duration::from_secs(1)).await;
    assert!(!*h.watch.synced.borrow(), "scope 1 is not listed yet");
    assert!(h.watch.routes.borrow().is_empty());

    h.writers[1].apply_watcher_event(&Event::Init);
    h.writers[1].apply_watcher_event(&Event::InitDone);
    h.notices.send(Notice::Listed(1)).unwrap();
    advance(MAX_DELAY).await;
    assert!(*h.watch.synced.borrow());
    assert_eq!(h.watch.routes.borrow().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stale_while_any_scope_fails_until_it_lists_again() {
    let h = harness(2);
    h.notices.send(Notice::Failing(1)).unwrap();
    advance(Duration::from_millis(1)).await;
    assert!(*h.watch.stale.borrow());
    h.notices.send(Notice::Failing(0)).unwrap();
    h.notices.send(Notice::Listed(1)).unwrap();
    advance(Duration::from_millis(1)).await;
    assert!(*h.watch.stale.borrow(), "scope 0 still fails");
    h.notices.send(Notice::Listed(0)).unwrap();
    advance(Duration::from_millis(1)).await;
    assert!(!*h.watch.stale.borrow());
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_is_compiled_a_few_times_within_the_delay_bound() {
    let mut h = harness(1);
    h.writers[0].apply_watcher_event(&Event::Init);
    h.writers[0].apply_watcher_event(&Event::InitDone);
    h.notices.send(Notice::Listed(0)).unwrap();
    advance(MAX_DELAY).await;
    let compilations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut probe = h.watch.routes.clone();
    probe.borrow_and_update();
    let counter = compilations.clone();
    tokio::spawn(async move {
        while probe.changed().await.is_ok() {
            probe.borrow_and_update();
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });

    // 100 changes 1 ms apart: never quiet for SETTLE, so MAX_DELAY bounds the wait.
    for i in 0..100u32 {
        if Duration::from_millis(i.into()) > MAX_DELAY {
            assert!(
                !h.watch.routes.borrow().is_empty(),
                "published within MAX_DELAY"
            );
        }
        h.writers[0].apply_watcher_event(&Event::Apply(guarded("a", &format!("r{i}"), "1")));
        h.notices.send(Notice::Changed(0)).unwrap();
        advance(Duration::from_millis(1)).await;
    }
    advance(MAX_DELAY).await;
    assert_eq!(h.watch.routes.borrow().len(), 100);
    let n = compilations.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=3).contains(&n), "{n} compilations for 100 changes");
}

#[test]
fn undecodable_and_unconvertible_routes_are_skipped() {
    let (store, mut writer) = reflector::store::<Guarded>();
    let undecodable: Guarded = serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1", "kind": "TunnelRoute",
        "metadata": {"name": "future", "namespace": "a", "resourceVersion": "1"},
        "spec": {"destinations": [{"cidr": "10.0.0.0/8"}], "action": "Mirror"},
    }))
    .unwrap();
    assert!(undecodable.0.is_err());
    let backwards: Guarded = serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1", "kind": "TunnelRoute",
        "metadata": {"name": "backwards", "namespace": "a", "resourceVersion": "1"},
        "spec": {"destinations": [{"cidr": "10.0.0.0/8", "ports": ["90-80"]}], "action": "Allow"},
    }))
    .unwrap();
    for object in [undecodable, backwards, guarded("a", "good", "1")] {
        writer.apply_watcher_event(&Event::Apply(object));
    }
    let (routes, _) = watch::channel(Arc::new(PolicyIndex::new("cluster.local", vec![])));
    let mut compiler = Compiler {
        trust_domain: "cluster.local".into(),
        stores: vec![store],
        routes,
        synced: watch::channel(false).0,
        stale: watch::channel(false).0,
        reported: HashSet::new(),
    };
    assert_eq!(compiler.compile().len(), 1);
    assert_eq!(compiler.reported.len(), 2, "both bad routes reported");
}

//! The tunnel server's route watcher (`warren_operator::routes_watch`) against the real API
//! server: not synced until the initial list is compiled, changes decided on within a second,
//! bad objects skipped without stalling the rest, and an unreachable API server turning the
//! last known routes stale instead of dropping them.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use warren_core::policy::Decision;
use warren_core::{ClientIdentity, Destination};
use warren_operator::api::TunnelRoute;
use warren_operator::routes_watch::{RoutesWatch, WatchConfig, watch_routes};

use support::proxy::ApiProxy;
use support::route;

fn client_identity(namespace: &str, service_account: &str) -> ClientIdentity {
    ClientIdentity {
        uri: Some(format!(
            "spiffe://cluster.local/ns/{namespace}/sa/{service_account}"
        )),
        dns_names: vec![],
    }
}

fn destination(addr: &str) -> Destination {
    Destination::Ip(addr.parse().expect("socket address"))
}

fn watch_namespace(client: kube::Client, namespace: &str) -> RoutesWatch {
    watch_routes(
        client,
        WatchConfig {
            trust_domain: "cluster.local".into(),
            label_selector: None,
            namespaces: vec![namespace.to_owned()],
        },
    )
}

async fn wait_synced(watch: &RoutesWatch) -> Result<()> {
    let mut synced = watch.synced.clone();
    tokio::time::timeout(Duration::from_secs(20), synced.wait_for(|s| *s))
        .await
        .context("not synced within 20 s")??;
    Ok(())
}

/// Waits until `accept(decision)` for `who` going to `to`; returns how long it took.
async fn wait_decision(
    watch: &RoutesWatch,
    who: &ClientIdentity,
    to: &Destination,
    limit: Duration,
    accept: impl Fn(&Decision) -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    let mut routes = watch.routes.clone();
    loop {
        let decision = routes.borrow_and_update().decide(who, to);
        if accept(&decision) {
            return Ok(start.elapsed());
        }
        let left = limit.saturating_sub(start.elapsed());
        if tokio::time::timeout(left, routes.changed()).await.is_err() {
            bail!("decision for {to} still {decision:?} after {limit:?}");
        }
    }
}

fn allowed_by(name: &str) -> impl Fn(&Decision) -> bool + '_ {
    move |d| matches!(d, Decision::Allow { route } if route.to_string() == name)
}

fn denied_by(name: &str) -> impl Fn(&Decision) -> bool + '_ {
    move |d| matches!(d, Decision::Deny { route: Some(route) } if route.to_string() == name)
}

fn default_deny(d: &Decision) -> bool {
    matches!(d, Decision::Deny { route: None })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_only_once_every_existing_route_is_compiled() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "watch-initial").await?;
    let routes: Api<TunnelRoute> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();
    for i in 0..20 {
        let cidr = format!("10.0.{i}.0/24");
        routes
            .create(
                &pp,
                &route(&ns, &format!("r{i}"), "Allow", &[], &cidr, &[])?,
            )
            .await?;
    }
    // Valid for the schema, rejected by the engine: a backwards port range.
    routes
        .create(
            &pp,
            &route(&ns, "backwards", "Allow", &[], "10.9.0.0/16", &["90-80"])?,
        )
        .await?;

    let watch = watch_namespace(client, &ns);
    assert!(!*watch.synced.borrow(), "synced before any list");
    assert!(watch.routes.borrow().is_empty());
    wait_synced(&watch).await?;
    // The first synced view is the whole list, never a part of it.
    assert_eq!(watch.routes.borrow().len(), 20);
    assert!(!*watch.stale.borrow());
    let who = client_identity(&ns, "api");
    let index = watch.routes.borrow().clone();
    assert!(allowed_by(&format!("{ns}/r19"))(
        &index.decide(&who, &destination("10.0.19.5:443"))
    ));
    assert!(default_deny(
        &index.decide(&who, &destination("10.9.0.1:85"))
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_changes_are_decided_on_within_a_second() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "watch-live").await?;
    let watch = watch_namespace(client.clone(), &ns);
    wait_synced(&watch).await?;
    let routes: Api<TunnelRoute> = Api::namespaced(client, &ns);
    let (who, to) = (client_identity(&ns, "api"), destination("192.0.2.7:5432"));
    let name = format!("{ns}/db");
    let limit = Duration::from_secs(1);

    let db = route(&ns, "db", "Allow", &["api"], "192.0.2.0/24", &["5432"])?;
    routes.create(&PostParams::default(), &db).await?;
    let created = wait_decision(&watch, &who, &to, limit, allowed_by(&name)).await?;

    let deny = serde_json::json!({"spec": {"action": "Deny"}});
    routes
        .patch("db", &PatchParams::default(), &Patch::Merge(&deny))
        .await?;
    let changed = wait_decision(&watch, &who, &to, limit, denied_by(&name)).await?;

    routes.delete("db", &DeleteParams::default()).await?;
    let deleted = wait_decision(&watch, &who, &to, limit, default_deny).await?;
    eprintln!("API write to decision: create {created:?}, change {changed:?}, delete {deleted:?}");
    assert!(!*watch.stale.borrow());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_the_engine_rejects_is_skipped_and_the_others_still_apply() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "watch-broken").await?;
    let watch = watch_namespace(client.clone(), &ns);
    wait_synced(&watch).await?;
    let routes: Api<TunnelRoute> = Api::namespaced(client, &ns);
    let pp = PostParams::default();
    let who = client_identity(&ns, "api");
    let limit = Duration::from_secs(1);

    let broken = route(&ns, "broken", "Allow", &[], "10.0.0.0/8", &["90-80"])?;
    routes.create(&pp, &broken).await?;
    let good = route(&ns, "good", "Allow", &[], "192.0.2.0/24", &[])?;
    routes.create(&pp, &good).await?;
    let good_name = format!("{ns}/good");
    wait_decision(
        &watch,
        &who,
        &destination("192.0.2.1:80"),
        limit,
        allowed_by(&good_name),
    )
    .await?;
    assert_eq!(watch.routes.borrow().len(), 1, "only the good route");
    assert!(default_deny(
        &watch
            .routes
            .borrow()
            .decide(&who, &destination("10.1.1.1:85"))
    ));

    // Once fixed, the route applies like any other.
    let fix =
        serde_json::json!({"spec": {"destinations": [{"cidr": "10.0.0.0/8", "ports": ["80-90"]}]}});
    routes
        .patch("broken", &PatchParams::default(), &Patch::Merge(&fix))
        .await?;
    let broken_name = format!("{ns}/broken");
    wait_decision(
        &watch,
        &who,
        &destination("10.1.1.1:85"),
        limit,
        allowed_by(&broken_name),
    )
    .await?;
    assert_eq!(watch.routes.borrow().len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_this_version_cannot_decode_does_not_stall_the_watch() -> Result<()> {
    // A private cluster, since its CRD is changed: a newer CRD that knows an action this build
    // does not, as during an upgrade that installs CRDs before the servers roll.
    let cluster = warren_e2e::TestCluster::start()?;
    let crd =
        std::fs::read_to_string(format!("{}/warren.dev_tunnelroutes.yaml", warren_e2e::CRDS))?;
    let newer = crd.replace(
        "                - Redirect\n",
        "                - Redirect\n                - Mirror\n",
    );
    anyhow::ensure!(
        newer != crd,
        "the action enum moved in the CRD; update this test"
    );
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(newer.as_bytes()))?;
    warren_e2e::wait_established(&cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "watch-newer").await?;
    let future = serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": "future", "namespace": ns},
        "spec": {"destinations": [{"cidr": "10.0.0.0/8"}], "action": "Mirror"},
    });
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(future.to_string().as_bytes()))?;
    let routes: Api<TunnelRoute> = Api::namespaced(client.clone(), &ns);
    let good = route(&ns, "good", "Allow", &[], "192.0.2.0/24", &[])?;
    routes.create(&PostParams::default(), &good).await?;
    // This build cannot list the namespace as TunnelRoutes at all: the list fails as a whole.
    assert!(routes.list(&Default::default()).await.is_err());

    let watch = watch_namespace(client.clone(), &ns);
    wait_synced(&watch).await?;
    assert_eq!(watch.routes.borrow().len(), 1);
    let who = client_identity(&ns, "api");
    let good_name = format!("{ns}/good");
    assert!(allowed_by(&good_name)(
        &watch
            .routes
            .borrow()
            .decide(&who, &destination("192.0.2.1:80"))
    ));
    // Later changes still flow, and a later undecodable object is skipped as well.
    let other = route(&ns, "other", "Deny", &[], "198.51.100.0/24", &[])?;
    routes.create(&PostParams::default(), &other).await?;
    let future2 = future.to_string().replace("\"future\"", "\"future-2\"");
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(future2.as_bytes()))?;
    let other_name = format!("{ns}/other");
    wait_decision(
        &watch,
        &who,
        &destination("198.51.100.1:80"),
        Duration::from_secs(1),
        denied_by(&other_name),
    )
    .await?;
    assert_eq!(watch.routes.borrow().len(), 2);
    assert!(!*watch.stale.borrow());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_keeps_the_last_routes_and_marks_them_stale() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "watch-outage").await?;
    let routes: Api<TunnelRoute> = Api::namespaced(client.clone(), &ns);
    let db = route(&ns, "db", "Allow", &[], "192.0.2.0/24", &[])?;
    routes.create(&PostParams::default(), &db).await?;
    let proxy = ApiProxy::start(cluster.server()).await?;
    let watch = watch_namespace(proxy.client(cluster.kubeconfig()).await?, &ns);
    wait_synced(&watch).await?;
    let (who, to) = (client_identity(&ns, "api"), destination("192.0.2.7:5432"));
    let name = format!("{ns}/db");
    assert!(allowed_by(&name)(&watch.routes.borrow().decide(&who, &to)));

    // An outage without changes: stale while it lasts, fresh again once the API server is back,
    // although no event says so.
    let mut stale = watch.stale.clone();
    let outage = Outage::begin(&proxy, &mut stale).await?;
    assert!(
        *watch.synced.borrow(),
        "still synced: the last routes serve"
    );
    assert!(allowed_by(&name)(&watch.routes.borrow().decide(&who, &to)));
    let first = outage.recover(&proxy, &mut stale).await?;

    // An outage during which the route changes: the last routes serve until the API server is
    // back, then the change applies.
    let outage = Outage::begin(&proxy, &mut stale).await?;
    let deny = serde_json::json!({"spec": {"action": "Deny"}});
    routes
        .patch("db", &PatchParams::default(), &Patch::Merge(&deny))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(allowed_by(&name)(&watch.routes.borrow().decide(&who, &to)));
    assert!(*watch.stale.borrow());
    let second = outage.recover(&proxy, &mut stale).await?;
    wait_decision(&watch, &who, &to, Duration::from_secs(1), denied_by(&name)).await?;
    eprintln!("fresh again {first:?} and {second:?} after the API server came back");
    Ok(())
}

/// An outage in progress.
struct Outage;

// === impl Outage ===

impl Outage {
    /// Cuts the API server and waits until the watch says it is stale.
    async fn begin(
        proxy: &ApiProxy,
        stale: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<Outage> {
        proxy.cut();
        tokio::time::timeout(Duration::from_secs(10), stale.wait_for(|s| *s))
            .await
            .context("not stale 10 s after the API server became unreachable")??;
        Ok(Outage)
    }

    /// Restores the API server; returns how long the watch took to be fresh again.
    async fn recover(
        self,
        proxy: &ApiProxy,
        stale: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<Duration> {
        proxy.restore();
        let restored = Instant::now();
        tokio::time::timeout(Duration::from_secs(40), stale.wait_for(|s| !*s))
            .await
            .context("still stale 40 s after the API server came back")??;
        Ok(restored.elapsed())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_with_a_label_selector() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let a = cluster.namespace(&client, "watch-sel-a").await?;
    let b = cluster.namespace(&client, "watch-sel-b").await?;
    let label = format!("watch-sel-{}", a.rsplit('-').next().unwrap_or("x"));
    let pp = PostParams::default();
    for (ns, name, labelled) in [
        (&a, "one", true),
        (&b, "two", true),
        (&b, "unlabelled", false),
    ] {
        let mut r = route(ns, name, "Allow", &[], "192.0.2.0/24", &[])?;
        if labelled {
            r.metadata.labels = Some([("warren.dev/test".to_owned(), label.clone())].into());
        }
        Api::<TunnelRoute>::namespaced(client.clone(), ns)
            .create(&pp, &r)
            .await?;
    }
    let watch = watch_routes(
        client,
        WatchConfig {
            trust_domain: "cluster.local".into(),
            label_selector: Some(format!("warren.dev/test={label}")),
            namespaces: vec![],
        },
    );
    wait_synced(&watch).await?;
    assert_eq!(watch.routes.borrow().len(), 2);
    let to = destination("192.0.2.1:80");
    let index = watch.routes.borrow().clone();
    assert!(allowed_by(&format!("{a}/one"))(
        &index.decide(&client_identity(&a, "x"), &to)
    ));
    assert!(allowed_by(&format!("{b}/two"))(
        &index.decide(&client_identity(&b, "x"), &to)
    ));
    Ok(())
}

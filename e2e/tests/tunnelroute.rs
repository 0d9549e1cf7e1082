//! The TunnelRoute CRD on the real API server: `crds/` (generated from
//! `warren_operator::api::TunnelRoute`) is accepted, so its structural schema is valid;
//! `kubectl explain` prints its field docs; `kubectl get` shows its printer columns; and a
//! kube-rs client creates, lists, watches and deletes TunnelRoutes through the Rust type.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use warren_operator::api::TunnelRoute;

const CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crds/warren.dev_tunnelroutes.yaml"
);

/// The committed CRD, parsed.
fn crd() -> Result<CustomResourceDefinition> {
    let text = std::fs::read_to_string(CRD_FILE).with_context(|| format!("reading {CRD_FILE}"))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {CRD_FILE}"))
}

/// A TunnelRoute named `name` with the given spec (JSON, as a manifest would have it).
fn route_with(name: &str, spec: serde_json::Value) -> Result<TunnelRoute> {
    let value = serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": name},
        "spec": spec,
    });
    Ok(serde_json::from_value(value)?)
}

/// A valid TunnelRoute using every field of the spec.
fn route(name: &str) -> Result<TunnelRoute> {
    route_with(
        name,
        serde_json::json!({
            "priority": 10,
            "clients": {"serviceAccounts": ["api"]},
            "destinations": [
                {"cidr": "10.0.0.0/8", "ports": ["443", "8000-8080"]},
                {"host": "*.example.com"}
            ],
            "action": "Redirect",
            "redirect": {"host": "egress.internal", "port": 8443}
        }),
    )
}

#[tokio::test]
async fn crds_apply_and_kubectl_explain_prints_the_field_docs() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let crd = crd()?;
    let version = crd.spec.versions.first().context("CRD without versions")?;
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .context("CRD version without schema")?;
    let spec = schema
        .properties
        .as_ref()
        .and_then(|p| p.get("spec"))
        .context("schema without spec")?;

    // The apiserver publishes a new CRD's OpenAPI (which explain reads) shortly after it
    // is Established: retry for a bounded while.
    let mut explain = cluster.kubectl(&["explain", "tunnelroute.spec"]);
    for _ in 0..60 {
        if explain.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        explain = cluster.kubectl(&["explain", "tunnelroute.spec"]);
    }
    let explain = explain?;
    assert!(explain.contains("GROUP:      warren.dev"), "{explain}");
    let description = spec
        .description
        .as_deref()
        .context("spec without description")?;
    let first_words: String = description
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        explain.contains(&first_words),
        "explain lacks {first_words:?}:\n{explain}"
    );
    let fields = spec
        .properties
        .as_ref()
        .context("spec without properties")?;
    for (name, field) in fields {
        assert!(
            explain.contains(&format!("  {name}\t")),
            "explain lacks field {name}:\n{explain}"
        );
        assert!(
            field.description.is_some(),
            "spec.{name} has no description"
        );
    }
    Ok(())
}

#[tokio::test]
async fn kubectl_get_shows_the_printer_columns() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "columns").await?;
    Api::<TunnelRoute>::namespaced(client, &ns)
        .create(&PostParams::default(), &route("shown")?)
        .await?;

    let columns: Vec<String> = crd()?
        .spec
        .versions
        .iter()
        .flat_map(|v| v.additional_printer_columns.iter().flatten())
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.to_uppercase())
        .collect();
    assert!(
        !columns.is_empty(),
        "{CRD_FILE} declares no printer columns"
    );
    let table = cluster.kubectl(&["get", "tunnelroutes", "-n", &ns])?;
    let header = table.lines().next().unwrap_or_default();
    for column in &columns {
        assert!(
            header.contains(column.as_str()),
            "column {column} missing:\n{table}"
        );
    }
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("shown ")),
        "{table}"
    );
    Ok(())
}

#[tokio::test]
async fn kube_rs_creates_lists_watches_and_deletes_a_tunnelroute() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "routes").await?;
    let api = Api::<TunnelRoute>::namespaced(client, &ns);

    let mut events = api
        .watch(&WatchParams::default().timeout(60), "0")
        .await?
        .boxed();
    let created = api.create(&PostParams::default(), &route("r1")?).await?;
    assert_eq!(
        created.spec,
        route("r1")?.spec,
        "the API server changed the spec"
    );
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await?
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert_eq!(names, ["r1"]);
    api.delete("r1", &DeleteParams::default()).await?;

    let mut seen = Vec::new();
    while !seen.contains(&"deleted") {
        let event = tokio::time::timeout(Duration::from_secs(30), events.try_next())
            .await
            .with_context(|| format!("no watch event in 30s; saw {seen:?}"))??
            .with_context(|| format!("watch ended; saw {seen:?}"))?;
        seen.push(match event {
            WatchEvent::Added(r) if r.name_any() == "r1" => "added",
            WatchEvent::Deleted(r) if r.name_any() == "r1" => "deleted",
            WatchEvent::Error(e) => bail!("watch error: {e:?}"),
            other => {
                eprintln!("ignoring watch event {other:?}");
                continue;
            }
        });
    }
    assert_eq!(seen, ["added", "deleted"]);
    assert!(api.get_opt("r1").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn the_api_server_enforces_the_schema_and_cel_rules() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "invalid").await?;
    let api = Api::<TunnelRoute>::namespaced(client, &ns);
    let cases = [
        (
            serde_json::json!({"destinations": [{"cidr": "10.0.0.0/8"}], "action": "Redirect"}),
            "redirect is required when action is Redirect",
        ),
        (
            serde_json::json!({"destinations": [{"cidr": "10.0.0.0/8", "host": "a.example"}], "action": "Allow"}),
            "give exactly one of cidr or host",
        ),
        (
            serde_json::json!({"destinations": [{"cidr": "10.0.0.0/33"}], "action": "Allow"}),
            "cidr must be an IPv4 or IPv6 CIDR",
        ),
        (
            serde_json::json!({"destinations": [], "action": "Allow"}),
            "at least one destination is required",
        ),
    ];
    for (i, (spec, message)) in cases.into_iter().enumerate() {
        let bad = route_with(&format!("bad-{i}"), spec.clone())?;
        match api.create(&PostParams::default(), &bad).await {
            Err(kube::Error::Api(status))
                if status.code == 422 && status.message.contains(message) => {}
            other => bail!("spec {spec} should be rejected with {message:?}, got {other:?}"),
        }
    }
    Ok(())
}

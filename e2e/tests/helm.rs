//! The built helm is the real upstream program: it renders and lints a chart made by
//! `helm create`, and installs, lists and uninstalls a release on the test API server.
//! Warren's own chart, `charts/warren`, is tested in `chart.rs`.

use anyhow::{Context, Result};

/// Pinned value of `key` in e2e/versions.env.
fn pin(key: &str) -> Result<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/versions.env");
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .map(str::to_owned)
        .with_context(|| format!("no {key} in {path}"))
}

#[tokio::test]
async fn helm_creates_lints_templates_and_installs_a_chart() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    let version = cluster.helm(&["version", "--short"])?;
    assert!(
        version.starts_with(&pin("HELM_VERSION")?),
        "helm version: {version}"
    );

    let tmp = tempfile::tempdir()?;
    let chart = tmp.path().join("demo");
    let chart_str = chart.to_str().context("non-UTF-8 temp path")?;
    cluster.helm(&["create", chart_str])?;
    let lint = cluster.helm(&["lint", "--strict", chart_str])?;
    assert!(
        lint.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{lint}"
    );

    let rendered = cluster.helm(&["template", "demo", chart_str, "--set", "replicaCount=3"])?;
    let mut kinds = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&rendered) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)?;
        if let Some(kind) = value.get("kind").and_then(|k| k.as_str()) {
            if kind == "Deployment" {
                assert_eq!(value["spec"]["replicas"].as_u64(), Some(3), "{rendered}");
            }
            kinds.push(kind.to_owned());
        }
    }
    for kind in ["ServiceAccount", "Service", "Deployment"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} not rendered: {kinds:?}"
        );
    }

    // helm talks to the API server: install stores the objects and the release secret.
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "helm").await?;
    cluster.helm(&["install", "demo", chart_str, "--namespace", &ns])?;
    let deployments = cluster.kubectl(&["get", "deployments", "-n", &ns, "-o", "name"])?;
    assert_eq!(deployments.trim(), "deployment.apps/demo", "{deployments}");
    let list = cluster.helm(&["list", "--namespace", &ns, "--short"])?;
    assert_eq!(list.trim(), "demo");
    cluster.helm(&["uninstall", "demo", "--namespace", &ns])?;
    let left = cluster.kubectl(&["get", "deployments,services", "-n", &ns, "-o", "name"])?;
    assert_eq!(left.trim(), "", "left after uninstall: {left}");
    Ok(())
}

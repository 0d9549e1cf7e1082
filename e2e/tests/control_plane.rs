//! The test control plane is a real Kubernetes API server: it reports the pinned release,
//! stores and watches objects through kube-rs, enforces RBAC on service-account tokens it
//! signed itself, and answers the real kubectl.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};

/// The pinned Kubernetes release, read from the file build.sh builds from.
fn pinned_k8s_version() -> Result<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/versions.env");
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("K8S_VERSION="))
        .map(str::to_owned)
        .with_context(|| format!("no K8S_VERSION in {path}"))
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

#[tokio::test]
async fn discovery_and_kubectl_report_the_pinned_release() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    let client = cluster.client().await?;
    let pinned = pinned_k8s_version()?;
    let info = client.apiserver_version().await?;
    assert_eq!(info.git_version, pinned, "/version: {info:?}");

    let out = cluster.kubectl(&["version", "-o", "json"])?;
    let json: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(
        json["clientVersion"]["gitVersion"],
        pinned.as_str(),
        "{out}"
    );
    assert_eq!(
        json["serverVersion"]["gitVersion"],
        pinned.as_str(),
        "{out}"
    );
    // The apiserver's own system namespaces controller made these; kubectl lists them.
    let namespaces = cluster.kubectl(&["get", "namespaces", "-o", "name"])?;
    for ns in ["namespace/default", "namespace/kube-system"] {
        assert!(
            namespaces.lines().any(|l| l == ns),
            "{ns} missing from:\n{namespaces}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn configmap_create_list_watch_delete_with_kube_rs() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "crud").await?;
    let api = Api::<ConfigMap>::namespaced(client, &ns);

    let mut events = api
        .watch(&WatchParams::default().timeout(60), "0")
        .await?
        .boxed();
    let cm = ConfigMap {
        metadata: meta("e2e"),
        data: Some([("k".to_owned(), "v".to_owned())].into()),
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm).await?;
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await?
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names, ["e2e"]);
    api.delete("e2e", &DeleteParams::default()).await?;

    let mut seen = Vec::new();
    while !seen.contains(&"deleted") {
        let event = tokio::time::timeout(Duration::from_secs(30), events.try_next())
            .await
            .with_context(|| format!("no watch event in 30s; saw {seen:?}"))??
            .with_context(|| format!("watch ended; saw {seen:?}"))?;
        seen.push(match event {
            WatchEvent::Added(c) if c.name_any() == "e2e" => "added",
            WatchEvent::Deleted(c) if c.name_any() == "e2e" => "deleted",
            WatchEvent::Error(e) => bail!("watch error: {e:?}"),
            // Bookmarks and other objects are not part of this story.
            other => {
                eprintln!("ignoring watch event {other:?}");
                continue;
            }
        });
    }
    assert_eq!(seen, ["added", "deleted"]);
    assert!(api.get_opt("e2e").await?.is_none());
    Ok(())
}

/// A client authenticating with a bearer token instead of the admin certificate.
async fn token_client(cluster: &warren_e2e::TestCluster, token: String) -> Result<Client> {
    let mut kubeconfig = Kubeconfig::read_from(cluster.kubeconfig())?;
    for user in &mut kubeconfig.auth_infos {
        user.auth_info = Some(AuthInfo {
            token: Some(token.clone().into()),
            ..AuthInfo::default()
        });
    }
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

#[tokio::test]
async fn rbac_governs_a_service_account_token_signed_by_the_apiserver() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    let admin = cluster.client().await?;
    let ns = cluster.namespace(&admin, "rbac").await?;
    let sas = Api::<ServiceAccount>::namespaced(admin.clone(), &ns);
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: meta("probe"),
            ..ServiceAccount::default()
        },
    )
    .await?;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = sas
        .create_token_request("probe", &PostParams::default(), &request)
        .await?
        .status
        .context("TokenRequest without status")?
        .token;
    let pods = Api::<Pod>::namespaced(token_client(cluster, token).await?, &ns);

    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => bail!("expected 403 for an unbound service account, got {other:?}"),
    }

    let role = Role {
        metadata: meta("list-pods"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".to_owned()]),
            verbs: vec!["list".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await?;
    let binding = RoleBinding {
        metadata: meta("probe-list-pods"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: "list-pods".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: "probe".to_owned(),
            namespace: Some(ns.clone()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, &ns)
        .create(&PostParams::default(), &binding)
        .await?;
    // The authorizer reads RBAC objects from an informer: allow it a moment to see the binding.
    let mut last = None;
    for _ in 0..50 {
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                assert!(list.items.is_empty());
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("still denied 10s after the RoleBinding: {last:?}")
}

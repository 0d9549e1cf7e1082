//! Sidecar injection against the real API server: `warren-operator` serves its webhook over
//! HTTPS on loopback, a MutatingWebhookConfiguration points the kube-apiserver at it, and Pods
//! created through the API come back with Warren's init container and native sidecar, which the
//! API server then validated and stored. Namespace and pod annotations decide; a malformed one is
//! refused with its reason.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use warren_e2e::TestCluster;
use warren_tests::certs::TestCa;
use warren_tests::process::{Proc, free_port, warren_bin};
use warren_tests::tunnel::{http_get, wait_ready};

const TUNNEL_SERVER: &str = "warren-server.warren-system.svc:4443";

/// Starts `warren-operator` with its webhook on loopback; returns it, the webhook address, the
/// admin address and the CA that signed the webhook's certificate (PEM).
fn operator(
    cluster: &TestCluster,
    namespace: &str,
    dir: &std::path::Path,
) -> (Proc, SocketAddr, SocketAddr, String) {
    let ca = TestCa::new("warren webhook CA");
    let serving = ca.server(dir, "webhook", &["127.0.0.1"]);
    let webhook: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = std::process::Command::new(warren_bin().with_file_name("warren-operator"));
    command
        .arg("--admin-addr")
        .arg(admin.to_string())
        .arg("--webhook-addr")
        .arg(webhook.to_string())
        .arg("--webhook-cert")
        .arg(&serving.cert)
        .arg("--webhook-key")
        .arg(&serving.key)
        .args(["--tunnel-server", TUNNEL_SERVER])
        .args(["--proxy-image", "registry.invalid/warren:e2e"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("POD_NAMESPACE", namespace)
        .env("POD_NAME", "injector")
        .env("RUST_LOG", "info");
    let mut proc = Proc::spawn("warren-operator", command, dir);
    wait_ready(&mut proc, admin);
    (proc, webhook, admin, ca.cert_pem.clone())
}

/// Sends Pod CREATEs in `namespaces` to the webhook at `addr`.
fn webhook_config(
    name: &str,
    namespaces: &[&str],
    addr: SocketAddr,
    ca_pem: &str,
) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "inject.warren.dev".to_owned(),
            client_config: WebhookClientConfig {
                url: Some(format!("https://{addr}/inject")),
                ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                service: None,
            },
            rules: Some(vec![RuleWithOperations {
                operations: Some(vec!["CREATE".to_owned()]),
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_owned()]),
                resources: Some(vec!["pods".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            // Only this test's namespaces: other tests share the cluster.
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(namespaces.iter().map(|n| n.to_string()).collect()),
                }]),
                ..LabelSelector::default()
            }),
            side_effects: "None".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            failure_policy: Some("Fail".to_owned()),
            reinvocation_policy: Some("IfNeeded".to_owned()),
            timeout_seconds: Some(10),
            ..MutatingWebhook::default()
        }]),
    }
}

fn pod(name: &str, annotations: &[(&str, &str)], host_network: bool) -> Result<Pod> {
    let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "hostNetwork": host_network,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
        },
    }))
    .context("pod JSON")
}

/// The names of the pod's init containers.
fn init_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_pods_get_the_sidecar_through_the_real_api_server() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    warren_e2e::install_crds(cluster)?;
    let client = cluster.client().await?;
    let plain_ns = cluster.namespace(&client, "inject").await?;
    let meshed_ns = cluster.namespace(&client, "inject-ns").await?;
    Api::<Namespace>::all(client.clone())
        .patch(
            &meshed_ns,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {"warren.dev/inject": "enabled"}}
            })),
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let (operator, webhook, admin, ca_pem) = operator(cluster, &plain_ns, dir.path());

    let configs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let name = format!("warren-e2e-{plain_ns}");
    configs
        .create(
            &PostParams::default(),
            &webhook_config(&name, &[&plain_ns, &meshed_ns], webhook, &ca_pem),
        )
        .await?;
    let result = check(&client, &plain_ns, &meshed_ns, admin).await;
    configs.delete(&name, &DeleteParams::default()).await?;
    if result.is_err() {
        eprintln!("operator log:\n{}", operator.log());
    }
    result
}

async fn check(
    client: &kube::Client,
    plain_ns: &str,
    meshed_ns: &str,
    admin: SocketAddr,
) -> Result<()> {
    let plain = Api::<Pod>::namespaced(client.clone(), plain_ns);
    let meshed = Api::<Pod>::namespaced(client.clone(), meshed_ns);
    let create = PostParams::default();
    let enabled = [("warren.dev/inject", "enabled")];

    // The API server picks up webhook configurations from an informer: dry-run creates (the
    // webhook declares no side effects) until the sidecar shows up.
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut active = false;
    for _ in 0..100 {
        let probe = plain
            .create(&dry_run, &pod("probe", &enabled, false)?)
            .await?;
        if init_names(&probe).contains(&"warren-proxy".to_owned()) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !active {
        bail!("webhook configuration not in effect after 20 s");
    }

    // A pod that asks: both containers in front, validated by the API server and stored.
    plain
        .create(
            &create,
            &pod(
                "asks",
                &[
                    ("warren.dev/inject", "enabled"),
                    ("warren.dev/exclude-outbound-ports", "22"),
                ],
                false,
            )?,
        )
        .await
        .context("creating an annotated pod")?;
    let stored = plain.get("asks").await?;
    assert_eq!(init_names(&stored), ["warren-init", "warren-proxy"]);
    let spec = stored.spec.clone().context("spec")?;
    let init_containers = spec.init_containers.clone().context("init containers")?;
    let proxy = &init_containers[1];
    assert_eq!(proxy.restart_policy.as_deref(), Some("Always"));
    let env: BTreeMap<String, String> = proxy
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        env.get("WARREN_SERVER").map(String::as_str),
        Some(TUNNEL_SERVER)
    );
    assert_eq!(
        env.get("WARREN_TRANSPARENT").map(String::as_str),
        Some("true")
    );
    let init_env: Vec<String> = init_containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| format!("{}={}", e.name, e.value.clone().unwrap_or_default()))
        .collect();
    assert!(
        init_env.contains(&"WARREN_INIT_EXCLUDE_PORTS=22".to_owned()),
        "{init_env:?}"
    );
    assert!(
        spec.volumes
            .iter()
            .flatten()
            .any(|v| v.name == "warren-identity"),
        "{:?}",
        spec.volumes
    );
    assert!(stored.annotations().contains_key("warren.dev/injected"));
    // The other admission plugins ran too: the Pod uses the namespace's default SA.
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));

    // A pod that does not ask, in a namespace that does not either: untouched.
    plain.create(&create, &pod("quiet", &[], false)?).await?;
    assert!(init_names(&plain.get("quiet").await?).is_empty());

    // The node's network is not the pod's to rewrite.
    plain.create(&create, &pod("host", &enabled, true)?).await?;
    assert!(init_names(&plain.get("host").await?).is_empty());

    // A namespace that asks: its pods are injected unless they opt out.
    meshed
        .create(&create, &pod("inherits", &[], false)?)
        .await?;
    assert_eq!(
        init_names(&meshed.get("inherits").await?),
        ["warren-init", "warren-proxy"]
    );
    meshed
        .create(
            &create,
            &pod("opts-out", &[("warren.dev/inject", "disabled")], false)?,
        )
        .await?;
    assert!(init_names(&meshed.get("opts-out").await?).is_empty());

    // The namespace changes its mind: the webhook follows its namespace watch, and pods created
    // from then on are left alone (dry-run: the webhook is called, nothing is stored).
    Api::<Namespace>::all(client.clone())
        .patch(
            meshed_ns,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {"warren.dev/inject": "disabled"}}
            })),
        )
        .await?;
    let mut followed = false;
    for _ in 0..50 {
        let probe = meshed
            .create(&dry_run, &pod("after-change", &[], false)?)
            .await?;
        let from_watch = http_get(admin, "/metrics")
            .contains("warren_operator_namespace_lookups_total{source=\"watch\"}");
        if init_names(&probe).is_empty() && from_watch {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !followed {
        bail!("the namespace's new annotation was not read from the watch within 10 s");
    }

    // A malformed annotation is refused with its reason, not run without the tunnel.
    let refused = plain
        .create(
            &create,
            &pod("typo", &[("warren.dev/inject", "yes")], false)?,
        )
        .await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert!(
                status
                    .message
                    .contains("must be \"enabled\" or \"disabled\""),
                "{}",
                status.message
            );
        }
        other => bail!("a malformed annotation was not refused: {other:?}"),
    }
    assert!(plain.get_opt("typo").await?.is_none());

    let metrics = http_get(admin, "/metrics");
    for line in [
        "warren_operator_injection_reviews_total{outcome=\"host_network\"} 1",
        "warren_operator_injection_reviews_total{outcome=\"refused\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    Ok(())
}

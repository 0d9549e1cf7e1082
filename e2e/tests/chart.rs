//! Warren's Helm chart (`charts/warren`) with the real helm against a private kube-apiserver:
//! it lints strictly, renders what the docs promise, installs, keeps its webhook certificate
//! across an upgrade, and its RBAC is enough: the real `warren-operator` and `warren server`,
//! logged in with the chart's ServiceAccount tokens, lead, validate routes, answer injection
//! reviews with the chart's certificate, and sync.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use warren_e2e::TestCluster;
use warren_operator::api::TunnelRoute;
use warren_tests::process::{Proc, free_port, warren_bin};
use warren_tests::tunnel::{Pki, http_get, wait_ready};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/warren");
const RELEASE: &str = "w";

/// Every rendered object as (kind, name, object).
fn objects(rendered: &str) -> Result<Vec<(String, String, serde_yaml::Value)>> {
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(rendered) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)?;
        let (Some(kind), Some(name)) = (value["kind"].as_str(), value["metadata"]["name"].as_str())
        else {
            continue;
        };
        let (kind, name) = (kind.to_owned(), name.to_owned());
        objects.push((kind, name, value));
    }
    Ok(objects)
}

/// A kubeconfig that logs in with `token`.
/// The webhook as the API server would call it, through curl.
struct CurlWebhook {
    host: String,
    port: u16,
    ca: std::path::PathBuf,
}

impl CurlWebhook {
    /// Sends the review of a Pod CREATE in `namespace` with `annotations`; returns the answer.
    fn review(&self, namespace: &str, annotations: serde_json::Value) -> Result<serde_json::Value> {
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "e2e",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE",
                "namespace": namespace,
                "name": "app",
                "userInfo": {},
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "app", "namespace": namespace, "annotations": annotations},
                    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                },
            },
        });
        let (host, port) = (&self.host, self.port);
        let output = std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .arg("--cacert")
            .arg(&self.ca)
            .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(review.to_string())
            .arg(format!("https://{host}:{port}/inject"))
            .output()
            .context("running curl")?;
        let body = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("curl: {}{body}", String::from_utf8_lossy(&output.stderr));
        }
        serde_json::from_str(&body).with_context(|| format!("the webhook's answer: {body}"))
    }
}

fn token_kubeconfig(cluster: &TestCluster, token: &str, path: &std::path::Path) -> Result<()> {
    let ca = cluster.dir().join("pki/ca.crt");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context:\n    cluster: e2e\n    user: sa\ncurrent-context: sa\n",
        cluster.server(),
        ca.display()
    );
    std::fs::write(path, text).context("writing a token kubeconfig")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_upgrades_and_its_rbac_runs_warren() -> Result<()> {
    // Private: the chart's controller and webhook configuration are cluster-wide.
    let cluster = TestCluster::start()?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "warren-system").await?;

    let lint = cluster.helm(&["lint", "--strict", CHART])?;
    assert!(
        lint.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{lint}"
    );

    let rendered = cluster.helm(&["template", RELEASE, CHART, "--namespace", &ns])?;
    let rendered = objects(&rendered)?;
    let kinds: BTreeSet<&str> = rendered.iter().map(|(k, _, _)| k.as_str()).collect();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "Deployment",
        "MutatingWebhookConfiguration",
    ] {
        assert!(kinds.contains(kind), "{kind} not rendered: {kinds:?}");
    }
    let operator = rendered
        .iter()
        .find(|(k, n, _)| k == "Deployment" && n == "w-warren-operator")
        .context("no operator Deployment")?;
    let args =
        serde_yaml::to_string(&operator.2["spec"]["template"]["spec"]["containers"][0]["args"])?;
    assert!(
        args.contains(&format!("--tunnel-server=w-warren-server.{ns}.svc:4443")),
        "{args}"
    );

    // Installed for real, with the webhook aimed at no namespace: no kubelet runs the operator.
    let install = |verb: &str| {
        cluster.helm(&[
            verb,
            RELEASE,
            CHART,
            "--namespace",
            &ns,
            "--set",
            "webhook.failurePolicy=Ignore",
            "--set-json",
            r#"webhook.namespaceSelector={"matchLabels":{"warren.dev/e2e-none":"x"}}"#,
        ])
    };
    install("install")?;
    warren_e2e::wait_established(&cluster)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret_name = "w-warren-operator-webhook-tls";
    let first = secrets.get(secret_name).await?.data.context("no data")?;
    let webhooks = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let webhook = webhooks.get(&format!("w-warren-operator-{ns}")).await?;
    let ca_bundle = webhook.webhooks.as_ref().context("no webhooks")?[0]
        .client_config
        .ca_bundle
        .clone()
        .context("no caBundle")?;
    assert_eq!(Some(&ca_bundle), first.get("ca.crt"));

    // The API server would trust the serving certificate for the Service's name.
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&ca_bundle.0)?)?;
        Arc::new(roots)
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
    let leaf = CertificateDer::from_pem_slice(&first.get("tls.crt").context("no tls.crt")?.0)?;
    verifier.verify_server_cert(
        &leaf,
        &[],
        &ServerName::try_from(format!("w-warren-operator.{ns}.svc"))?,
        &[],
        UnixTime::now(),
    )?;

    // An upgrade keeps the pair, so the caBundle never runs ahead of the mounted certificate.
    install("upgrade")?;
    let second = secrets.get(secret_name).await?.data.context("no data")?;
    assert_eq!(first, second, "the webhook certificate changed on upgrade");

    // The chart's RBAC, exercised by the real binaries.
    let dir = tempfile::tempdir()?;
    let operator_config = dir.path().join("operator.kubeconfig");
    let token = cluster.kubectl(&["create", "token", "w-warren-operator", "-n", &ns])?;
    token_kubeconfig(&cluster, token.trim(), &operator_config)?;
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let webhook_port = free_port();
    let (cert, key, ca) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("ca.crt"),
    );
    for (path, item) in [(&cert, "tls.crt"), (&key, "tls.key"), (&ca, "ca.crt")] {
        std::fs::write(path, &first.get(item).context("secret item")?.0)?;
    }
    let mut command = std::process::Command::new(warren_bin().with_file_name("warren-operator"));
    command
        .args(["--admin-addr", &admin.to_string(), "--lease-seconds", "6"])
        .args(["--webhook-addr", &format!("127.0.0.1:{webhook_port}")])
        .arg("--webhook-cert")
        .arg(&cert)
        .arg("--webhook-key")
        .arg(&key)
        .args(["--tunnel-server", &format!("w-warren-server.{ns}.svc:4443")])
        .env("KUBECONFIG", &operator_config)
        .env("POD_NAMESPACE", &ns)
        .env("POD_NAME", "chart-operator")
        .env("RUST_LOG", "info");
    let mut operator = Proc::spawn("warren-operator", command, dir.path());
    wait_ready(&mut operator, admin);

    let routes: Api<TunnelRoute> = Api::namespaced(client.clone(), &ns);
    let route: TunnelRoute = serde_json::from_value(serde_json::json!({
        "apiVersion": "warren.dev/v1alpha1",
        "kind": "TunnelRoute",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"destinations": [{"cidr": "10.0.0.0/8", "ports": ["443"]}], "action": "Allow"},
    }))?;
    routes.create(&PostParams::default(), &route).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = routes.get("web").await?.status;
        let accepted = status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && c.status == "True")
        });
        if accepted {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the operator, as the chart's ServiceAccount, wrote no Accepted status in 30 s: {status:?}\n{}",
                operator.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lease = Api::<Lease>::namespaced(client.clone(), &ns)
        .get("warren-operator")
        .await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("chart-operator")
    );
    // The webhook, with the chart's certificate, reached under the Service's name by curl (the
    // API server would resolve the Service; nothing does here).
    let webhook = CurlWebhook {
        host: format!("w-warren-operator.{ns}.svc"),
        port: webhook_port,
        ca: ca.clone(),
    };
    for (annotations, patched) in [
        (serde_json::json!({}), false),
        (serde_json::json!({"warren.dev/inject": "enabled"}), true),
    ] {
        let answer = webhook
            .review(&ns, annotations)
            .with_context(|| operator.log())?;
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        // kube-rs writes the patch as an array of bytes, which the API server reads as well as
        // base64 (e2e/tests/injection.rs).
        assert_eq!(!answer["response"]["patch"].is_null(), patched, "{answer}");
    }
    // A pod that does not ask makes the webhook read its namespace: from the namespace watch
    // that the chart's `list`/`watch` on namespaces allows, once it has listed them.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !http_get(admin, "/metrics")
        .contains("warren_operator_namespace_lookups_total{source=\"watch\"}")
    {
        if Instant::now() > deadline {
            bail!(
                "no namespace read from the watch in 15 s\n{}",
                operator.log()
            );
        }
        webhook.review(&ns, serde_json::json!({}))?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = operator.log();
    assert!(!log.contains("Forbidden"), "{log}");

    let server_config = dir.path().join("server.kubeconfig");
    let token = cluster.kubectl(&["create", "token", "w-warren-server", "-n", &ns])?;
    token_kubeconfig(&cluster, token.trim(), &server_config)?;
    let pki = Pki::new();
    let (mut server, _, metrics) = support::start_server(&pki, &server_config, &[]);
    // Ready means its first list of TunnelRoutes, cluster-wide, succeeded.
    wait_ready(&mut server, metrics);

    cluster.helm(&["uninstall", RELEASE, "--namespace", &ns])?;
    assert!(
        webhooks
            .get_opt(&format!("w-warren-operator-{ns}"))
            .await?
            .is_none(),
        "the webhook configuration outlived the release"
    );
    Ok(())
}

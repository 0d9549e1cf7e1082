//! A mutating admission webhook served over HTTPS by this test process on loopback is called by
//! the real kube-apiserver when a Pod is created, and its JSON patch lands in the stored Pod.
//! This is the path Warren's sidecar-injection webhook takes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::{Api, ResourceExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const ANNOTATION: &str = "e2e.warren.dev/mutated-by";

/// Pod names (namespace/name) the webhook has been asked about.
type Seen = Arc<Mutex<Vec<String>>>;

/// A CA and a server certificate for 127.0.0.1 signed by it; returns (CA PEM, TLS config).
fn tls() -> Result<(String, ServerConfig)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca.pem(), config))
}

/// The mutation: add [`ANNOTATION`] to the Pod, creating the annotations map if needed.
fn mutate(body: &[u8], seen: &Seen) -> Result<Vec<u8>> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    let request: AdmissionRequest<DynamicObject> = review.try_into()?;
    seen.lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .push(format!(
            "{}/{}",
            request.namespace.clone().unwrap_or_default(),
            request.name
        ));
    let has_annotations = request
        .object
        .as_ref()
        .is_some_and(|pod| pod.metadata.annotations.is_some());
    let op = if has_annotations {
        serde_json::json!({"op": "add", "path": format!("/metadata/annotations/{}", ANNOTATION.replace('/', "~1")), "value": "e2e-webhook"})
    } else {
        serde_json::json!({"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION: "e2e-webhook"}})
    };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([op]))?;
    let response = AdmissionResponse::from(&request).with_patch(patch)?;
    Ok(serde_json::to_vec(&response.into_review())?)
}

async fn handle(req: Request<Incoming>, seen: Seen) -> Result<Response<Full<Bytes>>> {
    let body = req.into_body().collect().await?.to_bytes();
    Ok(match mutate(&body, &seen) {
        Ok(json) => Response::new(Full::new(Bytes::from(json))),
        Err(e) => {
            eprintln!("webhook: bad review: {e:#}");
            let mut resp = Response::new(Full::new(Bytes::from(e.to_string())));
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            resp
        }
    })
}

/// Serves the webhook on 127.0.0.1 (ephemeral port) until the returned task is aborted.
async fn serve(
    config: ServerConfig,
    seen: Seen,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| handle(req, seen.clone()));
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

fn webhook_config(
    name: &str,
    namespace: &str,
    addr: SocketAddr,
    ca_pem: &str,
) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "inject.e2e.warren.dev".to_owned(),
            client_config: WebhookClientConfig {
                url: Some(format!("https://{addr}/mutate")),
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
            // Only this test's namespace: other tests share the cluster.
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    namespace.to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            side_effects: "None".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            failure_policy: Some("Fail".to_owned()),
            timeout_seconds: Some(10),
            ..MutatingWebhook::default()
        }]),
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".to_owned(),
                image: Some("registry.invalid/app:1".to_owned()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[tokio::test]
async fn mutating_webhook_is_called_on_pod_create_and_its_patch_is_stored() -> Result<()> {
    let cluster = warren_e2e::shared()?;
    let client = cluster.client().await?;
    let ns = cluster.namespace(&client, "webhook").await?;
    let seen: Seen = Arc::default();
    let (ca_pem, config) = tls()?;
    let (addr, server) = serve(config, seen.clone()).await?;

    let configs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let name = format!("warren-e2e-{ns}");
    configs
        .create(
            &PostParams::default(),
            &webhook_config(&name, &ns, addr, &ca_pem),
        )
        .await?;

    // The apiserver picks up webhook configurations from an informer: poll with dry-run
    // creates (allowed, the webhook declares no side effects) until the patch shows up.
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut active = false;
    for _ in 0..100 {
        let probe = pods.create(&dry_run, &pod("probe")).await?;
        if probe.annotations().contains_key(ANNOTATION) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !active {
        bail!(
            "webhook configuration not in effect after 20s; webhook saw {:?}",
            seen.lock().map(|s| s.clone())
        );
    }

    let created = pods
        .create(&PostParams::default(), &pod("app"))
        .await
        .context("creating the Pod")?;
    let stored = pods.get("app").await?;
    configs.delete(&name, &DeleteParams::default()).await?;
    server.abort();

    assert_eq!(
        created.annotations().get(ANNOTATION).map(String::as_str),
        Some("e2e-webhook")
    );
    assert_eq!(
        stored.annotations().get(ANNOTATION).map(String::as_str),
        Some("e2e-webhook")
    );
    let seen = seen
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    assert!(
        seen.contains(&format!("{ns}/app")),
        "webhook was not asked about {ns}/app: {seen:?}"
    );
    // The ServiceAccount admission plugin ran too: the Pod uses the namespace's default SA.
    assert_eq!(
        stored.spec.and_then(|s| s.service_account_name).as_deref(),
        Some("default")
    );
    Ok(())
}

//! The sidecar-injection webhook: the API server sends every Pod CREATE it is configured for as
//! an `AdmissionReview` to `POST /inject` over HTTPS, and gets back the JSON patch of
//! [`crate::inject`], or no patch when the pod did not ask for Warren.
//!
//! A pod asks with the annotation `warren.dev/inject: enabled`, or inherits it from its
//! namespace's annotation; the pod's own `disabled` wins. A pod that asked but cannot be
//! injected as written (a malformed `warren.dev/` annotation) is refused with the reason: running
//! it without the tunnel it asked for would be silent. Namespace annotations come from a watch
//! ([`namespaces`]); when a namespace cannot be read at all, the webhook answers 500, and the
//! webhook configuration's `failurePolicy` decides.

pub mod namespaces;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::inject::{self, InjectConfig, Outcome, Wish, annotations};
use crate::metrics::Metrics;
use namespaces::NamespaceAnnotations;

/// The path the API server posts reviews to.
pub const PATH: &str = "/inject";

/// Reviews are Pods; the API server's own request limit is 3 MiB.
const MAX_BODY: usize = 8 << 20;

/// A client that has not finished its handshake by then is dropped, so that idle connections
/// cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What answering a review needs.
pub struct Webhook {
    /// What injected containers are made of.
    pub config: InjectConfig,
    /// Where namespace annotations are read.
    pub namespaces: NamespaceAnnotations,
    /// Counts outcomes.
    pub metrics: Arc<Metrics>,
}

/// Why a review could not be answered; the API server then applies the failure policy.
#[derive(Debug, thiserror::Error)]
#[error("reading namespace {namespace}: {source}")]
struct NamespaceUnreadable {
    namespace: String,
    source: kube::Error,
}

/// Serves the webhook on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    webhook: Arc<Webhook>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("--webhook-addr {addr}: cannot listen"))?;
    let bound = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of descriptors, typically: back off instead of spinning.
                    tracing::warn!(%error, "webhook accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, webhook) = (acceptor.clone(), webhook.clone());
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "webhook TLS handshake");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "webhook TLS handshake timed out");
                        return;
                    }
                };
                let service = hyper::service::service_fn(move |request| {
                    let webhook = webhook.clone();
                    async move { Ok::<_, std::convert::Infallible>(route(&webhook, request).await) }
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(%peer, %error, "webhook connection");
                }
            });
        }
    });
    Ok(bound)
}

/// Dispatches one HTTP request.
async fn route(webhook: &Webhook, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return reply(
            StatusCode::NOT_FOUND,
            format!("not found; reviews go to {PATH}\n"),
        );
    }
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "POST only\n".into());
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {error}\n"),
            );
        }
    };
    match review(webhook, &body).await {
        Ok(response) => match serde_json::to_vec(&response.into_review()) {
            Ok(json) => {
                let mut reply = Response::new(Full::new(Bytes::from(json)));
                reply.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    "application/json".parse().expect("valid"),
                );
                reply
            }
            Err(error) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding: {error}\n"),
            ),
        },
        Err(error) => {
            webhook
                .metrics
                .injections
                .with_label_values(&["error"])
                .inc();
            tracing::warn!(%error, "injection review failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n"))
        }
    }
}

fn reply(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

/// Answers one review.
async fn review(webhook: &Webhook, body: &[u8]) -> Result<AdmissionResponse, NamespaceUnreadable> {
    let request: AdmissionRequest<Pod> = match serde_json::from_slice::<AdmissionReview<Pod>>(body)
        .map_err(|e| e.to_string())
        .and_then(|review| review.try_into().map_err(|e| format!("{e}")))
    {
        Ok(request) => request,
        Err(error) => {
            webhook
                .metrics
                .injections
                .with_label_values(&["invalid_review"])
                .inc();
            return Ok(AdmissionResponse::invalid(format!(
                "not an AdmissionReview of a Pod: {error}"
            )));
        }
    };
    let response = AdmissionResponse::from(&request);
    let Some(pod) = &request.object else {
        return Ok(response);
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let pod_name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.as_ref().map(|g| format!("{g}*")))
        .unwrap_or_default();
    let (label, response) = match wish(webhook, pod, &namespace).await? {
        Err(reason) => ("refused", response.deny(reason)),
        Ok(Wish::Disabled) => ("not_requested", response),
        Ok(Wish::Enabled) => match inject::inject(pod, &webhook.config) {
            Err(reason) => ("refused", response.deny(reason)),
            Ok(Outcome::Inject(patch)) => match response.clone().with_patch(patch) {
                Ok(patched) => ("injected", patched),
                Err(error) => (
                    "refused",
                    response.deny(format!("encoding the patch: {error}")),
                ),
            },
            Ok(other) => (other.label(), response),
        },
    };
    webhook.metrics.injections.with_label_values(&[label]).inc();
    let subject = format!("{namespace}/{pod_name}");
    // Every pod of every selected namespace comes here; only the ones that asked are news.
    if label == "not_requested" {
        tracing::debug!(pod = %subject, outcome = label, dry_run = request.dry_run, "injection review");
    } else {
        tracing::info!(pod = %subject, outcome = label, dry_run = request.dry_run, "injection review");
    }
    Ok(response)
}

/// The pod's wish, else its namespace's, else `Disabled`; `Err` for a malformed annotation.
async fn wish(
    webhook: &Webhook,
    pod: &Pod,
    namespace: &str,
) -> Result<Result<Wish, String>, NamespaceUnreadable> {
    match inject::pod_wish(pod) {
        Err(reason) => return Ok(Err(reason)),
        Ok(Some(wish)) => return Ok(Ok(wish)),
        Ok(None) => {}
    }
    let annotations =
        webhook
            .namespaces
            .get(namespace)
            .await
            .map_err(|source| NamespaceUnreadable {
                namespace: namespace.to_owned(),
                source,
            })?;
    Ok(
        annotations::inject_wish(Some(&annotations), &format!("namespace {namespace}"))
            .map(|wish| wish.unwrap_or(Wish::Disabled)),
    )
}

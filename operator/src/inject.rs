//! Sidecar injection: what the mutating admission webhook adds to a pod that asks for Warren.
//!
//! Two init containers go in front of the pod's own: `warren-init` installs the capture rules
//! (`warren init`), then `warren-proxy` runs `warren client --transparent` as a native sidecar
//! (an init container with `restartPolicy: Always`). The order matters: the rules exist before
//! anything else in the pod runs, and the pod's own init containers already start behind a ready
//! tunnel, since the kubelet starts the next init container only once the sidecar's startup
//! probe passed. The workload's certificate comes from a Secret mounted read-only.
//!
//! Everything here is a pure function of the pod and [`InjectConfig`]; the webhook
//! ([`crate::webhook`]) does the I/O.

pub mod annotations;
mod containers;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

pub use annotations::Wish;

/// The name of the init container that installs the capture rules.
pub const INIT_CONTAINER: &str = "warren-init";
/// The name of the sidecar (a native sidecar: an init container that keeps running).
pub const PROXY_CONTAINER: &str = "warren-proxy";
/// The name of the volume holding the workload's certificate.
pub const IDENTITY_VOLUME: &str = "warren-identity";

/// What injected containers are made of; the operator's flags set it.
#[derive(Debug, Clone)]
pub struct InjectConfig {
    /// Image with the `warren` binary as its entrypoint.
    pub image: String,
    /// The image pull policy of both containers (the cluster's default when `None`).
    pub image_pull_policy: Option<String>,
    /// The tunnel server, `HOST:PORT`.
    pub tunnel_server: String,
    /// Name the server certificate is verified against (default: the host of `tunnel_server`).
    pub tunnel_server_name: Option<String>,
    /// Default Secret with the workload's `tls.crt`, `tls.key` and `ca.crt`.
    pub identity_secret: String,
    /// User id of the sidecar, whose own connections are never captured.
    pub proxy_uid: i64,
    /// Port the sidecar accepts redirected connections on.
    pub proxy_port: u16,
    /// Port of the sidecar's `/metrics`, `/healthz` and `/readyz`.
    pub admin_port: u16,
    /// Capture IPv6 too (the sidecar then listens dual-stack).
    pub ipv6: bool,
}

/// What the webhook does with one pod.
#[derive(Debug)]
pub enum Outcome {
    /// Add the containers: this patch does it.
    Inject(json_patch::Patch),
    /// The pod already has Warren's containers (the webhook was called again).
    AlreadyInjected,
    /// The pod shares the node's network namespace, whose rules are not the pod's to change.
    HostNetwork,
}

// === impl Outcome ===

impl Outcome {
    /// A stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Inject(_) => "injected",
            Outcome::AlreadyInjected => "already_injected",
            Outcome::HostNetwork => "host_network",
        }
    }
}

/// Whether `pod` asks for injection, or leaves it to its namespace (`Ok(None)`).
pub fn pod_wish(pod: &Pod) -> Result<Option<Wish>, String> {
    annotations::inject_wish(pod.metadata.annotations.as_ref(), "the pod")
}

/// What to do with `pod`, which asked for injection. An `Err` explains why the pod cannot be
/// injected as written (a bad annotation, a name already taken); the webhook then refuses it
/// rather than letting it run without the tunnel it asked for.
pub fn inject(pod: &Pod, config: &InjectConfig) -> Result<Outcome, String> {
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    let injected = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == INIT_CONTAINER || c.name == PROXY_CONTAINER);
    if injected {
        return Ok(Outcome::AlreadyInjected);
    }
    if spec.host_network == Some(true) {
        return Ok(Outcome::HostNetwork);
    }
    if spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.name == IDENTITY_VOLUME)
    {
        return Err(format!(
            "the pod already has a volume named {IDENTITY_VOLUME}"
        ));
    }
    let pod_annotations = pod.metadata.annotations.as_ref();
    let capture = annotations::capture_env(pod_annotations)?;
    let secret = pod_annotations
        .and_then(|a| a.get(annotations::IDENTITY_SECRET))
        .unwrap_or(&config.identity_secret);
    let init = containers::init(config, capture);
    let proxy = containers::proxy(config);
    let volume = containers::identity_volume(secret);

    let mut ops = Vec::new();
    let marker = env!("CARGO_PKG_VERSION");
    if pod_annotations.is_some() {
        ops.push(add(
            &format!("/metadata/annotations/{}", escape(annotations::INJECTED)),
            json!(marker),
        ));
    } else {
        ops.push(add(
            "/metadata/annotations",
            json!({ annotations::INJECTED: marker }),
        ));
    }
    if spec.init_containers.as_ref().is_none_or(Vec::is_empty) {
        ops.push(add("/spec/initContainers", json!([init, proxy])));
    } else {
        // Inserting at 0 twice: the proxy, then the init container in front of it.
        ops.push(add("/spec/initContainers/0", json!(proxy)));
        ops.push(add("/spec/initContainers/0", json!(init)));
    }
    if spec.volumes.is_none() {
        ops.push(add("/spec/volumes", json!([volume])));
    } else {
        ops.push(add("/spec/volumes/-", json!(volume)));
    }
    let patch = serde_json::from_value(Value::Array(ops))
        .map_err(|e| format!("building the patch: {e}"))?;
    Ok(Outcome::Inject(patch))
}

/// One JSON-patch `add` operation.
fn add(path: &str, value: Value) -> Value {
    json!({"op": "add", "path": path, "value": value})
}

/// A key as one JSON-pointer segment (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests;

//! The injected containers and volume.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, HTTPGetAction, Probe, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{IDENTITY_VOLUME, INIT_CONTAINER, InjectConfig, PROXY_CONTAINER};

/// Where the identity Secret is mounted in the sidecar.
const IDENTITY_DIR: &str = "/var/run/warren/identity";

/// `warren init`: root with `NET_ADMIN` and `NET_RAW` (iptables), nothing else, and gone before
/// the pod's own containers start.
pub fn init(config: &InjectConfig, capture: Vec<(&'static str, String)>) -> Container {
    let mut env = vec![
        var("WARREN_INIT_PROXY_PORT", config.proxy_port.to_string()),
        var("WARREN_INIT_PROXY_UID", config.proxy_uid.to_string()),
    ];
    if !config.ipv6 {
        env.push(var("WARREN_INIT_NO_IPV6", "true".into()));
    }
    env.extend(capture.into_iter().map(|(name, value)| var(name, value)));
    Container {
        name: INIT_CONTAINER.into(),
        image: Some(config.image.clone()),
        image_pull_policy: config.image_pull_policy.clone(),
        args: Some(vec!["init".into()]),
        env: Some(env),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// `warren client --transparent` as a native sidecar, under its own uid (whose connections the
/// rules never capture), with no capabilities and a read-only root filesystem.
pub fn proxy(config: &InjectConfig) -> Container {
    let any = if config.ipv6 { "[::]" } else { "0.0.0.0" };
    let mut env = vec![
        var("WARREN_TRANSPARENT", "true".into()),
        var("WARREN_LISTEN", format!("{any}:{}", config.proxy_port)),
        var("WARREN_SERVER", config.tunnel_server.clone()),
        var("WARREN_CA", format!("{IDENTITY_DIR}/ca.crt")),
        var("WARREN_CERT", format!("{IDENTITY_DIR}/tls.crt")),
        var("WARREN_KEY", format!("{IDENTITY_DIR}/tls.key")),
        var(
            "WARREN_METRICS_ADDR",
            format!("{any}:{}", config.admin_port),
        ),
    ];
    if let Some(name) = &config.tunnel_server_name {
        env.push(var("WARREN_SERVER_NAME", name.clone()));
    }
    let probe = |path: &str, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(config.admin_port.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(1),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    Container {
        name: PROXY_CONTAINER.into(),
        image: Some(config.image.clone()),
        image_pull_policy: config.image_pull_policy.clone(),
        args: Some(vec!["client".into()]),
        // Native sidecar: keeps running beside the app and stops after it.
        restart_policy: Some("Always".into()),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("warren-admin".into()),
            container_port: config.admin_port.into(),
            ..ContainerPort::default()
        }]),
        startup_probe: Some(probe("/readyz", 120)),
        readiness_probe: Some(probe("/readyz", 3)),
        liveness_probe: Some(Probe {
            period_seconds: Some(10),
            ..probe("/healthz", 3)
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: IDENTITY_VOLUME.into(),
            mount_path: IDENTITY_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        security_context: Some(SecurityContext {
            run_as_user: Some(config.proxy_uid),
            run_as_group: Some(config.proxy_uid),
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The Secret volume with the workload's certificate, key and CA.
pub fn identity_volume(secret: &str) -> Volume {
    Volume {
        name: IDENTITY_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A literal environment variable.
fn var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

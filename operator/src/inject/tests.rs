use k8s_openapi::api::core::v1::{Container, Pod};

use super::*;

fn config() -> InjectConfig {
    InjectConfig {
        image: "registry.example/warren:1".into(),
        image_pull_policy: None,
        tunnel_server: "warren-server.warren-system.svc:4443".into(),
        tunnel_server_name: Some("warren-server.warren-system.svc".into()),
        identity_secret: "warren-identity".into(),
        proxy_uid: 1337,
        proxy_port: 15001,
        admin_port: 15090,
        ipv6: true,
    }
}

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).expect("a pod")
}

fn app() -> serde_json::Value {
    json!({
        "metadata": {"name": "app", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    })
}

/// Applies what `inject` returns, as the API server would.
fn injected(original: &Pod) -> Pod {
    let Outcome::Inject(patch) = inject(original, &config()).expect("injectable") else {
        panic!("not injected");
    };
    let mut document = serde_json::to_value(original).unwrap();
    json_patch::patch(&mut document, &patch).expect("the patch applies");
    serde_json::from_value(document).expect("still a pod")
}

fn names(containers: &Option<Vec<Container>>) -> Vec<&str> {
    containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect()
}

fn env<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

#[test]
fn a_bare_pod_gets_init_sidecar_volume_and_marker() {
    let pod = injected(&pod(app()));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        names(&spec.init_containers),
        [INIT_CONTAINER, PROXY_CONTAINER]
    );
    assert_eq!(names(&Some(spec.containers.clone())), ["app"]);
    let init = &spec.init_containers.as_ref().unwrap()[0];
    let proxy = &spec.init_containers.as_ref().unwrap()[1];
    assert_eq!(init.args.as_deref(), Some(&["init".to_owned()][..]));
    assert_eq!(env(init, "WARREN_INIT_PROXY_PORT"), Some("15001"));
    assert_eq!(env(init, "WARREN_INIT_PROXY_UID"), Some("1337"));
    assert_eq!(env(init, "WARREN_INIT_NO_IPV6"), None);
    let caps = init
        .security_context
        .as_ref()
        .unwrap()
        .capabilities
        .as_ref()
        .unwrap();
    assert_eq!(
        caps.add.as_deref(),
        Some(&["NET_ADMIN".to_owned(), "NET_RAW".to_owned()][..])
    );

    assert_eq!(proxy.restart_policy.as_deref(), Some("Always"));
    assert_eq!(proxy.args.as_deref(), Some(&["client".to_owned()][..]));
    assert_eq!(env(proxy, "WARREN_TRANSPARENT"), Some("true"));
    assert_eq!(env(proxy, "WARREN_LISTEN"), Some("[::]:15001"));
    assert_eq!(
        env(proxy, "WARREN_SERVER"),
        Some("warren-server.warren-system.svc:4443")
    );
    assert_eq!(
        env(proxy, "WARREN_SERVER_NAME"),
        Some("warren-server.warren-system.svc")
    );
    assert_eq!(
        env(proxy, "WARREN_CERT"),
        Some("/var/run/warren/identity/tls.crt")
    );
    let security = proxy.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_user, Some(1337));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert!(proxy.startup_probe.is_some());

    let volumes = spec.volumes.as_ref().unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(
        volumes[0].secret.as_ref().unwrap().secret_name.as_deref(),
        Some("warren-identity")
    );
    assert_eq!(
        pod.metadata
            .annotations
            .unwrap()
            .get(annotations::INJECTED)
            .map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn warren_goes_before_the_pods_own_init_containers_and_volumes_are_kept() {
    let mut value = app();
    value["metadata"]["annotations"] = json!({"team": "a", "warren.dev/inject": "enabled"});
    value["spec"]["initContainers"] = json!([{"name": "migrate", "image": "app:1"}]);
    value["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    let pod = injected(&pod(value));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        names(&spec.init_containers),
        [INIT_CONTAINER, PROXY_CONTAINER, "migrate"]
    );
    let volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(volumes, ["data", IDENTITY_VOLUME]);
    let annotations = pod.metadata.annotations.unwrap();
    assert_eq!(annotations.get("team").map(String::as_str), Some("a"));
    assert!(annotations.contains_key(annotations::INJECTED));
}

#[test]
fn annotations_tune_capture_and_identity() {
    let mut value = app();
    value["metadata"]["annotations"] = json!({
        "warren.dev/exclude-outbound-ports": "22, 5432",
        "warren.dev/include-outbound-cidrs": "10.0.0.0/8",
        "warren.dev/identity-secret": "shop-identity",
    });
    let pod = injected(&pod(value));
    let spec = pod.spec.as_ref().unwrap();
    let init = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(env(init, "WARREN_INIT_EXCLUDE_PORTS"), Some("22,5432"));
    assert_eq!(env(init, "WARREN_INIT_INCLUDE_CIDRS"), Some("10.0.0.0/8"));
    assert_eq!(
        spec.volumes.as_ref().unwrap()[0]
            .secret
            .as_ref()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("shop-identity")
    );
}

#[test]
fn ipv4_only_clusters_get_ipv4_listeners_and_rules() {
    let config = InjectConfig {
        ipv6: false,
        ..config()
    };
    let Outcome::Inject(patch) = inject(&pod(app()), &config).unwrap() else {
        panic!("not injected");
    };
    let text = serde_json::to_string(&patch).unwrap();
    assert!(
        text.contains("0.0.0.0:15001") && text.contains("WARREN_INIT_NO_IPV6"),
        "{text}"
    );
    assert!(!text.contains("[::]"), "{text}");
}

#[test]
fn injection_happens_once() {
    let once = injected(&pod(app()));
    assert!(matches!(
        inject(&once, &config()),
        Ok(Outcome::AlreadyInjected)
    ));
}

#[test]
fn host_network_pods_are_left_alone() {
    let mut value = app();
    value["spec"]["hostNetwork"] = json!(true);
    assert!(matches!(
        inject(&pod(value), &config()),
        Ok(Outcome::HostNetwork)
    ));
}

#[test]
fn pods_that_cannot_be_injected_as_written_are_explained() {
    let mut bad_ports = app();
    bad_ports["metadata"]["annotations"] = json!({"warren.dev/exclude-outbound-ports": "ssh"});
    let error = inject(&pod(bad_ports), &config()).unwrap_err();
    assert!(
        error.contains("warren.dev/exclude-outbound-ports") && error.contains("\"ssh\""),
        "{error}"
    );

    let mut taken = app();
    taken["spec"]["volumes"] = json!([{"name": IDENTITY_VOLUME, "emptyDir": {}}]);
    let error = inject(&pod(taken), &config()).unwrap_err();
    assert!(error.contains(IDENTITY_VOLUME), "{error}");
}

#[test]
fn the_pods_wish_is_read_and_checked() {
    let mut value = app();
    assert_eq!(pod_wish(&pod(value.clone())), Ok(None));
    value["metadata"]["annotations"] = json!({"warren.dev/inject": "disabled"});
    assert_eq!(pod_wish(&pod(value.clone())), Ok(Some(Wish::Disabled)));
    value["metadata"]["annotations"] = json!({"warren.dev/inject": "yes"});
    assert!(pod_wish(&pod(value)).unwrap_err().contains("the pod"));
}

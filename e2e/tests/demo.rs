//! `make demo` keeps working: docs/demo-kubernetes.sh runs end to end against its own control
//! plane and shows what it promises.

use std::process::Command;

#[test]
fn kubernetes_demo_runs_end_to_end() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/demo-kubernetes.sh");
    let target = warren_tests::process::warren_bin();
    let output = Command::new("bash")
        .arg(script)
        .env("WARREN_TARGET_DIR", target.parent().expect("target dir"))
        .env("WARREN_E2E_BIN", warren_e2e::bin_dir())
        .output()
        .expect("run docs/demo-kubernetes.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for needle in [
        "kube-apiserver v1.35.4",
        "-A WARREN_OUTPUT -p tcp -j REDIRECT --to-ports 15001",
        "denied by the tunnel server: no_route",
        "app → 10.79.0.1:7000: 'echo service got: hello from the pod'",
        "allow-echo   Allow    0          10.79.0.1/32   True",
        "denied_by_route (route demo/freeze-echo)",
        "after kubectl delete: app → 10.79.0.1:7000: 'echo service got: hello from the pod'",
        "identity=spiffe://cluster.local/ns/demo/sa/app destination=10.79.0.1:7000 decision=\"allow\"",
        "init warren-init warren-proxy | app web",
        "restartPolicy (a native sidecar): Always",
        "warren_operator_injection_reviews_total{outcome=\"injected\"}",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from the demo output:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        !Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("warren-demo-"))
            .unwrap_or(false),
        "the demo left its network namespace behind"
    );
}

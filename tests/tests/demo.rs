//! `make demo-loopback` keeps working: the script runs end to end and shows what it promises.

use std::process::Command;

#[test]
fn demo_script_runs_end_to_end() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/demo.sh");
    let output = Command::new("bash")
        .arg(script)
        .env("WARREN_BIN", warren_tests::process::warren_bin())
        .output()
        .expect("run docs/demo.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for needle in [
        "intact: 1048576 bytes came back",
        "denied_by_route (route demo/deny-secret)",
        "decision=\"allow\" route=\"demo/allow-echo\"",
        "warren_policy_decisions_total{action=\"deny\"}",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from the demo output:\n{stdout}"
        );
    }
}

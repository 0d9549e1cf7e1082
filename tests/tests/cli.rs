//! Bad configuration gets one clear error line naming the flag or file, and exit code 2.

use std::process::Command;
use std::time::Duration;

use warren_tests::process::{Proc, free_port, warren_bin};
use warren_tests::tunnel::Pki;

/// Runs `warren ARGS` to completion; returns (exit code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(warren_bin())
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run warren");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn server_args<'a>(pki: &'a Pki, listen: &'a str, cert: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "server",
        "--listen",
        listen,
        "--cert",
        cert,
        "--key",
        key,
        "--client-ca",
        pki.server.ca.to_str().unwrap(),
    ]
}

fn assert_one_line_error(code: Option<i32>, stderr: &str, needles: &[&str]) {
    assert_eq!(code, Some(2), "exit code; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    }
}

#[test]
fn bad_configuration_is_explained() {
    let pki = Pki::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let cert = pki.server.cert.to_str().unwrap();
    let key = pki.server.key.to_str().unwrap();
    let client_key = pki.client.key.to_str().unwrap();
    let missing = pki.path().join("missing.crt");
    let missing = missing.to_str().unwrap();

    let mut args = server_args(&pki, &listen, missing, key);
    args.extend(["--connect", "127.0.0.1:9"]);
    let (code, stderr) = run(&args);
    assert_one_line_error(code, &stderr, &[missing, "No such file"]);

    let mut args = server_args(&pki, &listen, cert, client_key);
    args.extend(["--connect", "127.0.0.1:9"]);
    let (code, stderr) = run(&args);
    assert_one_line_error(code, &stderr, &[cert, client_key]);

    let policy = pki.write(
        "bad-routes.yaml",
        "kind: TunnelRoute\nspec: {action: Sometimes}\n",
    );
    let mut args = server_args(&pki, &listen, cert, key);
    args.extend(["--policy", policy.to_str().unwrap()]);
    let (code, stderr) = run(&args);
    assert_one_line_error(code, &stderr, &["policy file", policy.to_str().unwrap()]);

    let mut args = server_args(&pki, &listen, cert, key);
    args.extend(["--connect", "no-such-host.invalid:443"]);
    let (code, stderr) = run(&args);
    assert_one_line_error(code, &stderr, &["--connect", "no-such-host.invalid"]);

    let (code, stderr) = run(&[
        "client",
        "--listen",
        &listen,
        "--server",
        "no-such-host.invalid:443",
        "--ca",
        pki.client.ca.to_str().unwrap(),
        "--cert",
        pki.client.cert.to_str().unwrap(),
        "--key",
        client_key,
        "--connect",
        "127.0.0.1:9",
    ]);
    assert_one_line_error(code, &stderr, &["--server", "no-such-host.invalid"]);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let mut args = server_args(&pki, &taken, cert, key);
    args.extend(["--connect", "127.0.0.1:9"]);
    let (code, stderr) = run(&args);
    assert_one_line_error(code, &stderr, &["--listen", &taken]);
}

/// A process started with a low soft open-files limit raises it to the hard limit, and without
/// `--max-connections` accepts as many connections as that holds (two sockets each, 64 kept).
#[test]
fn raises_the_open_files_limit_and_sizes_the_connection_limit() {
    let pki = Pki::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let cert = pki.server.cert.to_str().unwrap();
    let key = pki.server.key.to_str().unwrap();
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=256:4096")
        .arg(warren_bin())
        .args(server_args(&pki, &listen, cert, key))
        .args(["--connect", "127.0.0.1:9"])
        .env("RUST_LOG", "info");
    let proc = Proc::spawn("server", command, pki.path());
    let log = proc.wait_for_log("connection limit", Duration::from_secs(10));
    assert!(
        log.contains("max_connections=2016") && log.contains("open_files=4096"),
        "{log}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proc.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"],
        "{open_files}"
    );
}

//! `warren init` against real iptables, each test in its own network namespace: idempotence,
//! cleanup, both backends and their detection, the read-back self-test, rollback, and the
//! one-line failures (no binary, no CAP_NET_ADMIN).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use warren_tests::netns::Netns;
use warren_tests::process::warren_bin;

fn warren() -> String {
    warren_bin().to_str().expect("UTF-8 path").to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Warren's lines (the chain, its rules, the jump) in `<program> -t nat` of the namespace.
fn warren_lines(ns: &Netns, program: &str) -> Vec<String> {
    text(&ns.run(program, &["-t", "nat"]).stdout)
        .lines()
        .filter(|l| l.contains("WARREN"))
        .map(str::to_owned)
        .collect()
}

/// The whole nat table of both families as `<backend>-save` prints it, minus comments (they
/// carry timestamps).
fn nat_tables(ns: &Netns, backend: &str) -> String {
    ["iptables", "ip6tables"]
        .iter()
        .map(|p| {
            text(
                &ns.run(&format!("{p}-{backend}-save"), &["-t", "nat"])
                    .stdout,
            )
        })
        .flat_map(|t| {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A failed run: non-zero exit and exactly one line on stderr, which is returned.
fn one_line_failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure: {output:?}");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn init_twice_gives_one_copy_and_cleanup_restores_the_empty_nat_table() {
    let ns = Netns::new("init");
    let before = nat_tables(&ns, "nft");
    assert!(!before.contains("WARREN"), "{before}");

    let flags = ["init", "--server-addrs", "10.9.9.9,fd00:9::9"];
    ns.run(&warren(), &flags);
    let once = nat_tables(&ns, "nft");
    ns.run(&warren(), &flags);
    let twice = nat_tables(&ns, "nft");
    assert_eq!(once, twice, "running init twice changed the rules");
    assert_eq!(once.matches("-A OUTPUT -p tcp -j WARREN_OUTPUT").count(), 2); // v4 + v6
    assert!(
        once.contains("-A WARREN_OUTPUT -d 10.9.9.9/32 -j RETURN"),
        "{once}"
    );
    assert!(
        once.contains("-A WARREN_OUTPUT -d fd00:9::9/128 -j RETURN"),
        "{once}"
    );

    // --dry-run prints exactly the installed rules (chain, rules, jump) and changes nothing.
    let mut dry_flags = flags.to_vec();
    dry_flags.push("--dry-run");
    let dry = text(&ns.run(&warren(), &dry_flags).stdout);
    let mut installed: Vec<&str> = once.lines().filter(|l| l.contains("WARREN")).collect();
    let mut printed: Vec<&str> = dry.lines().filter(|l| l.contains("WARREN")).collect();
    // iptables-save lists the OUTPUT jump before Warren's chain; --dry-run lists it last.
    installed.sort_unstable();
    printed.sort_unstable();
    assert_eq!(installed, printed, "dry run:\n{dry}");
    assert_eq!(nat_tables(&ns, "nft"), once, "--dry-run changed the rules");

    ns.run(&warren(), &["init", "--cleanup"]);
    assert_eq!(nat_tables(&ns, "nft"), before, "cleanup left rules behind");
    // Cleaning up what is already clean succeeds.
    ns.run(&warren(), &["init", "--cleanup"]);
}

#[test]
fn legacy_backend_is_used_when_forced_and_detected_when_it_holds_rules() {
    let ns = Netns::new("legacy");
    let output = ns.run(&warren(), &["init", "--backend", "legacy"]);
    assert!(text(&output.stdout).contains("Legacy backend"));
    let legacy = warren_lines(&ns, "iptables-legacy-save");
    assert!(
        legacy.contains(&"-A OUTPUT -p tcp -j WARREN_OUTPUT".to_owned()),
        "{legacy:?}"
    );
    assert!(warren_lines(&ns, "ip6tables-legacy-save").len() > 2);
    assert_eq!(warren_lines(&ns, "iptables-nft-save"), Vec::<String>::new());

    // Without --backend, init keeps to the backend that already holds the pod's rules rather
    // than splitting them across two.
    let output = ns.run(&warren(), &["init", "--proxy-port", "15099"]);
    assert!(text(&output.stdout).contains("Legacy backend"));
    assert!(
        warren_lines(&ns, "iptables-legacy-save")
            .contains(&"-A WARREN_OUTPUT -p tcp -j REDIRECT --to-ports 15099".to_owned())
    );
    assert_eq!(warren_lines(&ns, "iptables-nft-save"), Vec::<String>::new());

    ns.run(&warren(), &["init", "--cleanup"]);
    assert_eq!(
        warren_lines(&ns, "iptables-legacy-save"),
        Vec::<String>::new()
    );
    assert_eq!(
        warren_lines(&ns, "ip6tables-legacy-save"),
        Vec::<String>::new()
    );
}

/// A directory for `PATH` holding the real nft-backend iptables programs, except those given
/// as `(name, shell script)`: faults injected into one step of init.
fn iptables_path(dir: &Path, replaced: &[(&str, &str)]) -> String {
    for program in [
        "iptables-nft-save",
        "iptables-nft-restore",
        "ip6tables-nft-save",
        "ip6tables-nft-restore",
    ] {
        let path = dir.join(program);
        match replaced.iter().find(|(name, _)| *name == program) {
            Some((_, script)) => {
                std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            // xtables-nft-multi picks its personality from the name it is called by.
            None => std::os::unix::fs::symlink(format!("/usr/sbin/{program}"), &path).unwrap(),
        }
    }
    dir.to_str().unwrap().to_owned()
}

#[test]
fn a_failure_after_the_ipv4_half_rolls_everything_back() {
    let ns = Netns::new("rollback");
    let dir = tempfile::tempdir().unwrap();
    let path = iptables_path(
        dir.path(),
        &[(
            "ip6tables-nft-restore",
            "/usr/bin/cat >/dev/null; echo 'ip6tables-restore: line 2 failed (injected)' >&2; exit 1",
        )],
    );
    let output = ns
        .command("env")
        .args([
            &format!("PATH={path}"),
            &warren(),
            "init",
            "--backend",
            "nft",
        ])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output);
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(stderr.contains("line 2 failed (injected)"), "{stderr}");
    assert_eq!(warren_lines(&ns, "iptables-nft-save"), Vec::<String>::new());
    assert_eq!(
        warren_lines(&ns, "ip6tables-nft-save"),
        Vec::<String>::new()
    );
}

#[test]
fn the_self_test_catches_rules_that_differ_from_the_intended_ones() {
    let ns = Netns::new("selftest");
    let dir = tempfile::tempdir().unwrap();
    // iptables-restore "succeeds" but installs a redirect to the wrong port: only reading the
    // rules back can notice.
    let path = iptables_path(
        dir.path(),
        &[(
            "iptables-nft-restore",
            "/usr/bin/sed 's/--to-ports 15001/--to-ports 15002/' | /usr/sbin/iptables-nft-restore \"$@\"",
        )],
    );
    let output = ns
        .command("env")
        .args([
            &format!("PATH={path}"),
            &warren(),
            "init",
            "--backend",
            "nft",
        ])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output);
    assert!(stderr.contains("ipv4 self-test failed"), "{stderr}");
    assert!(stderr.contains("--to-ports 15002"), "{stderr}");
    assert_eq!(warren_lines(&ns, "iptables-nft-save"), Vec::<String>::new());
    assert_eq!(
        warren_lines(&ns, "ip6tables-nft-save"),
        Vec::<String>::new()
    );
}

#[test]
fn missing_iptables_or_capability_is_one_line_and_changes_nothing() {
    let ns = Netns::new("nocap");
    let empty = tempfile::tempdir().unwrap();
    let output = ns
        .command("env")
        .args([
            &format!("PATH={}", empty.path().display()),
            &warren(),
            "init",
        ])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output);
    assert!(stderr.contains("not found: install iptables"), "{stderr}");

    let output = ns
        .command("setpriv")
        .args([
            "--reuid",
            "1000",
            "--regid",
            "1000",
            "--clear-groups",
            &warren(),
            "init",
        ])
        .output()
        .unwrap();
    let stderr = one_line_failure(&output);
    assert!(stderr.contains("needs CAP_NET_ADMIN"), "{stderr}");
    assert_eq!(warren_lines(&ns, "iptables-nft-save"), Vec::<String>::new());
    assert_eq!(
        warren_lines(&ns, "iptables-legacy-save"),
        Vec::<String>::new()
    );
}

#[test]
fn flags_come_from_the_environment() {
    // What the injection webhook does: no flags, only WARREN_INIT_* variables.
    let output = std::process::Command::new(warren_bin())
        .args(["init", "--dry-run"])
        .env("WARREN_INIT_PROXY_PORT", "15123")
        .env("WARREN_INIT_PROXY_UID", "4242")
        .env("WARREN_INIT_EXCLUDE_PORTS", "22,9000-9100")
        .env("WARREN_INIT_INCLUDE_CIDRS", "10.0.0.0/8,fd00::/8")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let dry = text(&output.stdout);
    for rule in [
        "-A WARREN_OUTPUT -m owner --uid-owner 4242 -j RETURN",
        "-A WARREN_OUTPUT -p tcp -m multiport --dports 22,9000:9100 -j RETURN",
        "-A WARREN_OUTPUT -d 10.0.0.0/8 -p tcp -j REDIRECT --to-ports 15123",
        "-A WARREN_OUTPUT -d fd00::/8 -p tcp -j REDIRECT --to-ports 15123",
    ] {
        assert!(dry.contains(rule), "{rule:?} missing:\n{dry}");
    }
}

#[test]
fn the_documented_rules_are_what_dry_run_prints() {
    let output = std::process::Command::new(warren_bin())
        .args([
            "init",
            "--dry-run",
            "--exclude-ports",
            "22",
            "--exclude-cidrs",
            "10.96.0.0/12",
            "--server-addrs",
            "10.0.5.7",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/transparent-capture.md");
    let doc = std::fs::read_to_string(&doc).unwrap();
    let dry = text(&output.stdout);
    assert!(
        doc.contains(&format!("```\n{dry}```")),
        "docs/transparent-capture.md shows other rules than --dry-run prints:\n{dry}"
    );
}

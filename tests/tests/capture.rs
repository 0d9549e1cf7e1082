//! Transparent capture end to end, with real iptables in network namespaces:
//!
//! ```text
//!  pod (warren init + warren client --transparent as uid 1337, unmodified apps)
//!   │ 10.231.1.1 / fd00:231:1::1
//!   │ 10.231.1.2 / fd00:231:1::2
//!  gateway (warren server --policy routes.yaml; also forwards, for traffic that bypasses)
//!   │ 10.231.2.2 / fd00:231:2::2
//!   │ 10.231.2.3, .4, .5 / fd00:231:2::3, ::4, ::5
//!  dest (echo servers that name the peer they see, an HTTP server)
//! ```

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use warren_tests::certs::TestCa;
use warren_tests::netns::{Netns, link};
use warren_tests::process::{Proc, warren_bin};

/// Addresses of one family.
struct Plan {
    pod: &'static str,
    gateway_pod_side: &'static str,
    gateway: &'static str,
    dest: &'static str,
    dest_b: &'static str,
    dest_excluded: &'static str,
    prefix: &'static str,
}

const V4: Plan = Plan {
    pod: "10.231.1.1",
    gateway_pod_side: "10.231.1.2",
    gateway: "10.231.2.2",
    dest: "10.231.2.3",
    dest_b: "10.231.2.4",
    dest_excluded: "10.231.2.5",
    prefix: "24",
};

const V6: Plan = Plan {
    pod: "fd00:231:1::1",
    gateway_pod_side: "fd00:231:1::2",
    gateway: "fd00:231:2::2",
    dest: "fd00:231:2::3",
    dest_b: "fd00:231:2::4",
    dest_excluded: "fd00:231:2::5",
    prefix: "64",
};

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// The three hosts, their processes and files; everything goes away on drop.
struct Testbed {
    // Processes first: they die before their namespaces are deleted.
    server: Proc,
    client: Proc,
    _dest_procs: Vec<Proc>,
    pod: Netns,
    _gateway: Netns,
    _dest: Netns,
    dir: tempfile::TempDir,
}

fn routes() -> String {
    let route = |name: &str, dests: &str, action: &str| {
        format!(
            "---\napiVersion: warren.dev/v1alpha1\nkind: TunnelRoute\nmetadata: {{name: {name}, namespace: shop}}\n\
             spec:\n  clients: {{serviceAccounts: [api]}}\n  destinations: {dests}\n  action: {action}\n"
        )
    };
    [
        route(
            "allow-dest",
            "[{cidr: 10.231.2.0/24, ports: [\"7000\", \"8080\"]}, {cidr: \"fd00:231:2::/64\", ports: [\"7000\", \"8080\"]}]",
            "Allow",
        ),
        route(
            "deny-7002",
            "[{cidr: 10.231.2.0/24, ports: [\"7002\"]}, {cidr: \"fd00:231:2::/64\", ports: [\"7002\"]}]",
            "Deny",
        ),
        route("move-v4", "[{cidr: 10.231.2.3/32, ports: [\"7003\"]}]", "Redirect")
            + "  redirect: {host: 10.231.2.4, port: 7000}\n",
        route("move-v6", "[{cidr: \"fd00:231:2::3/128\", ports: [\"7003\"]}]", "Redirect")
            + "  redirect: {host: \"fd00:231:2::4\", port: 7000}\n",
    ]
    .concat()
}

impl Testbed {
    fn start() -> Testbed {
        let pod = Netns::new("pod");
        let gateway = Netns::new("gw");
        let dest = Netns::new("dest");
        let (pod_if, gw_pod_if) = link(&pod, &gateway);
        let (gw_dest_if, dest_if) = link(&gateway, &dest);
        for plan in [&V4, &V6] {
            let nodad = |p: &Plan| {
                if p.prefix == "64" {
                    vec!["nodad"]
                } else {
                    vec![]
                }
            };
            let add = |ns: &Netns, ip: &str, dev: &str| {
                let cidr = format!("{ip}/{}", plan.prefix);
                let mut args = vec!["addr", "add", cidr.as_str(), "dev", dev];
                args.extend(nodad(plan));
                ns.ip(&args);
            };
            add(&pod, plan.pod, &pod_if);
            add(&gateway, plan.gateway_pod_side, &gw_pod_if);
            add(&gateway, plan.gateway, &gw_dest_if);
            for ip in [plan.dest, plan.dest_b, plan.dest_excluded] {
                add(&dest, ip, &dest_if);
            }
        }
        // Only routes between the test's own hosts: the pod reaches dest through the gateway.
        pod.ip(&["route", "add", "10.231.2.0/24", "via", "10.231.1.2"]);
        pod.ip(&[
            "-6",
            "route",
            "add",
            "fd00:231:2::/64",
            "via",
            "fd00:231:1::2",
        ]);
        dest.ip(&["route", "add", "10.231.1.0/24", "via", "10.231.2.2"]);
        dest.ip(&[
            "-6",
            "route",
            "add",
            "fd00:231:1::/64",
            "via",
            "fd00:231:2::2",
        ]);
        gateway.sysctl("net.ipv4.ip_forward=1");
        gateway.sysctl("net.ipv6.conf.all.forwarding=1");

        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ca = TestCa::new("capture CA");
        let server_cert = ca.server(dir.path(), "gateway", &["10.231.1.2", "fd00:231:1::2"]);
        let client_cert = ca.client(dir.path(), "pod", "spiffe://cluster.local/ns/shop/sa/api");
        // The sidecar runs as uid 1337 and must read its key.
        std::fs::set_permissions(&client_cert.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let policy = dir.path().join("routes.yaml");
        std::fs::write(&policy, routes()).unwrap();

        // dest: echo servers that first say which peer and local address they see.
        let mut dest_procs = Vec::new();
        for port in [7000, 7001, 7002] {
            let mut socat = dest.command("socat");
            // -d -d logs every accepted connection: proof of what reached dest.
            socat.args([
                "-d",
                "-d",
                &format!("TCP6-LISTEN:{port},fork,reuseaddr,ipv6only=0"),
                "SYSTEM:'echo peer=$SOCAT_PEERADDR local=$SOCAT_SOCKADDR; exec cat'",
            ]);
            dest_procs.push(Proc::spawn(&format!("dest-echo-{port}"), socat, dir.path()));
        }
        let mut http = dest.command("socat");
        http.args([
            "TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0",
            "SYSTEM:'printf \"HTTP/1.0 200 OK\\r\\nContent-Length: 15\\r\\n\\r\\nhello from dest\"'",
        ]);
        dest_procs.push(Proc::spawn("dest-http", http, dir.path()));

        let p = |path: &std::path::Path| path.to_str().unwrap().to_owned();
        let mut server_cmd = gateway.command(warren_bin().to_str().unwrap());
        server_cmd.args([
            "server",
            "--listen",
            "[::]:4443",
            "--cert",
            &p(&server_cert.cert),
            "--key",
            &p(&server_cert.key),
            "--client-ca",
            &p(&server_cert.ca),
            "--policy",
            &p(&policy),
        ]);
        let server = Proc::spawn("gateway-server", server_cmd, dir.path());
        server.wait_for_log("tunnel server listening", Duration::from_secs(20));

        let init = pod.run(
            warren_bin().to_str().unwrap(),
            &[
                "init",
                "--exclude-ports",
                "7001",
                "--exclude-cidrs",
                &format!("{}/32,{}/128", V4.dest_excluded, V6.dest_excluded),
            ],
        );
        assert!(String::from_utf8_lossy(&init.stdout).contains("verified"));

        let mut client_cmd = pod.command("setpriv");
        client_cmd.args([
            "--reuid",
            "1337",
            "--regid",
            "1337",
            "--clear-groups",
            warren_bin().to_str().unwrap(),
            "client",
            "--listen",
            "[::]:15001",
            "--server",
            "10.231.1.2:4443",
            "--ca",
            &p(&client_cert.ca),
            "--cert",
            &p(&client_cert.cert),
            "--key",
            &p(&client_cert.key),
            "--transparent",
        ]);
        let client = Proc::spawn("pod-client", client_cmd, dir.path());
        client.wait_for_log("tunnel client listening", Duration::from_secs(20));
        Testbed {
            server,
            client,
            _dest_procs: dest_procs,
            pod,
            _gateway: gateway,
            _dest: dest,
            dir,
        }
    }

    /// An unmodified socat in the pod sends `message` to `to` and returns what came back.
    fn socat(&self, to: SocketAddr, message: &str) -> String {
        let output = self
            .pod
            .command("socat")
            .args(["-t", "3", "-T", "10", "-", &format!("TCP:{to}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(message.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn scenarios(bed: &Testbed, plan: &Plan) {
    // 1. Through the tunnel: dest sees the gateway, not the pod; the server logs the original
    //    destination.
    let reply = bed.socat(addr(plan.dest, 7000), "hello\n");
    assert_eq!(seen(&reply, "peer"), ip(plan.gateway), "{reply}");
    assert!(reply.ends_with("hello\n"), "{reply}");
    let log = bed.server.wait_for_log(
        &format!("destination={}", addr(plan.dest, 7000)),
        Duration::from_secs(5),
    );
    assert!(log.contains("route=\"shop/allow-dest\""), "{log}");
    let curl = bed.pod.run(
        "curl",
        &[
            "-s",
            "--max-time",
            "10",
            &format!("http://{}/", addr(plan.dest_b, 8080)),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "hello from dest");

    // 2. Deny: the application's connection is closed, nothing reaches dest.
    let reply = bed.socat(addr(plan.dest, 7002), "secret\n");
    assert_eq!(reply, "", "a denied connection got an answer");
    bed.client.wait_for_log(
        &format!("destination={}", addr(plan.dest, 7002)),
        Duration::from_secs(5),
    );
    let dest_log =
        std::fs::read_to_string(bed.dir.path().join("dest-echo-7002.log")).unwrap_or_default();
    assert!(!dest_log.contains("accepting connection"), "{dest_log}");
    let allowed_log =
        std::fs::read_to_string(bed.dir.path().join("dest-echo-7000.log")).unwrap_or_default();
    assert!(
        allowed_log.contains("accepting connection"),
        "the check above would prove nothing: {allowed_log}"
    );

    // 3. Redirect: a connection to A lands on B.
    let reply = bed.socat(addr(plan.dest, 7003), "moved\n");
    assert_eq!(seen(&reply, "local"), ip(plan.dest_b), "{reply}");

    // 4. Excluded port and excluded CIDR go directly: dest sees the pod's own address.
    for to in [addr(plan.dest, 7001), addr(plan.dest_excluded, 7000)] {
        let reply = bed.socat(to, "direct\n");
        assert_eq!(seen(&reply, "peer"), ip(plan.pod), "{to}: {reply}");
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The address a dest echo reported as `peer=` or `local=` (socat prints IPv4 clients of its
/// dual-stack listener as v4-mapped IPv6, in brackets).
fn seen(reply: &str, field: &str) -> IpAddr {
    let value = reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{field}=")))
        .unwrap_or_else(|| panic!("no {field}= in {reply:?}"));
    let host = value.trim_start_matches('[').trim_end_matches(']');
    ip(host).to_canonical()
}

#[test]
fn transparent_capture_ipv4_and_ipv6() {
    let bed = Testbed::start();
    scenarios(&bed, &V4);
    scenarios(&bed, &V6);

    // 5. No loop: the gateway's address is inside the captured range (everything is), and the
    //    sidecar's own connections to it carried every tunnel above. An application's connection
    //    to the gateway is captured and tunneled like any other (and denied: no route).
    let reply = bed.socat(addr(V4.gateway_pod_side, 4443), "x");
    assert_eq!(reply, "");
    bed.client
        .wait_for_log("destination=10.231.1.2:4443", Duration::from_secs(5));

    // 6. 100 MiB each way through the tunnel from a plain Rust client, half-closing its side.
    for plan in [&V4, &V6] {
        let to = addr(plan.dest, 7000);
        let (sent, received, prefix) = bed.pod.in_ns(move || bulk(to, 100 * 1024 * 1024));
        assert!(prefix.contains("peer="), "{prefix}");
        assert_eq!(sent, received, "SHA-256 of 100 MiB each way ({to})");
    }
}

/// Sends `total` pseudo-random bytes to the echo at `to`, shuts the write half, reads all that
/// comes back; returns (digest sent, digest of the echoed part, the echo's first line).
fn bulk(to: SocketAddr, total: usize) -> (Vec<u8>, Vec<u8>, String) {
    let mut tcp = TcpStream::connect_timeout(&to, Duration::from_secs(10)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = tcp.try_clone().unwrap();
    let send = std::thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut state = 0x0123_4567_89ab_cdef_u64;
        let mut buf = vec![0u8; 1 << 16];
        let mut sent = 0;
        while sent < total {
            for b in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            writer.write_all(&buf).unwrap();
            hash.update(&buf);
            sent += buf.len();
        }
        writer.shutdown(std::net::Shutdown::Write).unwrap();
        hash.finalize().to_vec()
    });
    let mut received = Vec::with_capacity(total + 128);
    tcp.read_to_end(&mut received).unwrap();
    let newline = received.iter().position(|&b| b == b'\n').unwrap() + 1;
    let first = String::from_utf8_lossy(&received[..newline]).into_owned();
    let echoed = Sha256::digest(&received[newline..]).to_vec();
    assert_eq!(received.len() - newline, total, "bytes echoed");
    (send.join().unwrap(), echoed, first)
}

#[test]
fn init_is_idempotent_and_cleanup_restores_an_empty_nat_table() {
    let ns = Netns::new("init");
    let warren = warren_bin();
    let warren = warren.to_str().unwrap();
    let save = |program: &str| {
        String::from_utf8_lossy(&ns.run(program, &["-t", "nat"]).stdout).into_owned()
    };
    let rules = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("-A") || l.starts_with(":WARREN"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let before = (
        rules(&save("iptables-save")),
        rules(&save("ip6tables-save")),
    );
    assert_eq!(before, (vec![], vec![]));

    ns.run(warren, &["init", "--server-addrs", "10.9.9.9"]);
    let once = (
        rules(&save("iptables-save")),
        rules(&save("ip6tables-save")),
    );
    ns.run(warren, &["init", "--server-addrs", "10.9.9.9"]);
    let twice = (
        rules(&save("iptables-save")),
        rules(&save("ip6tables-save")),
    );
    assert_eq!(once, twice, "running init twice changed the rules");
    assert_eq!(
        once.0
            .iter()
            .filter(|l| l.contains("-j WARREN_OUTPUT"))
            .count(),
        1
    );
    assert!(
        once.0
            .contains(&"-A WARREN_OUTPUT -d 10.9.9.9/32 -j RETURN".to_owned()),
        "{once:?}"
    );
    assert!(
        once.1
            .contains(&"-A WARREN_OUTPUT -p tcp -j REDIRECT --to-ports 15001".to_owned()),
        "{once:?}"
    );

    // --dry-run prints exactly the chain's rules and changes nothing.
    let dry = String::from_utf8_lossy(
        &ns.run(warren, &["init", "--dry-run", "--server-addrs", "10.9.9.9"])
            .stdout,
    )
    .into_owned();
    for rule in once.0.iter().filter(|l| l.starts_with("-A")) {
        assert!(
            dry.contains(rule.as_str()),
            "{rule:?} not in dry run:\n{dry}"
        );
    }

    ns.run(warren, &["init", "--cleanup"]);
    let after = (
        rules(&save("iptables-save")),
        rules(&save("ip6tables-save")),
    );
    assert_eq!(after, before, "cleanup left rules behind");

    // Without CAP_NET_ADMIN: one clear line, non-zero exit, nothing applied.
    let output = ns
        .command("setpriv")
        .args([
            "--reuid",
            "1000",
            "--regid",
            "1000",
            "--clear-groups",
            warren,
            "init",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs CAP_NET_ADMIN"), "{stderr}");
    assert_eq!(rules(&save("iptables-save")), Vec::<String>::new());
}

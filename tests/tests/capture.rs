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
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use warren_tests::certs::TestCa;
use warren_tests::netns::{Netns, link};
use warren_tests::process::{Proc, warren_bin};
use warren_tests::tunnel::http_get;

/// The admin listener (`/readyz`, `/metrics`) of both warren processes, each on its own host's
/// loopback (which the capture rules leave alone).
const ADMIN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090));

/// Waits until `proc`, running in `ns`, answers `/readyz` with 200.
fn wait_ready_in(ns: &Netns, proc: &mut Proc) {
    proc.wait_until("ready", Duration::from_secs(20), || {
        ns.in_ns(|| {
            TcpStream::connect_timeout(&ADMIN, Duration::from_millis(100)).is_ok()
                && http_get(ADMIN, "/readyz").starts_with("HTTP/1.0 200")
        })
    });
}

/// The value of one sample (`name{labels}`) of the metrics of the warren process in `ns`.
fn metric(ns: &Netns, sample: &str) -> u64 {
    let text = ns.in_ns(|| http_get(ADMIN, "/metrics"));
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
}

/// Waits for the log line of `proc` that contains `needle`, and returns that line.
fn log_line(proc: &Proc, needle: &str) -> String {
    let log = proc.wait_for_log(needle, Duration::from_secs(5));
    log.lines()
        .find(|l| l.contains(needle))
        .expect("wait_for_log found it")
        .to_owned()
}

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
    gateway: Netns,
    _dest: Netns,
    dir: tempfile::TempDir,
    /// SHA-256 of the file dest sends after a client's half-close (port 7004).
    download_sha256: Vec<u8>,
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
            "[{cidr: 10.231.2.0/24, ports: [\"7000\", \"7004\", \"8080\"]}, {cidr: \"fd00:231:2::/64\", ports: [\"7000\", \"7004\", \"8080\"]}]",
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
        // Half-close: the digest of everything received until EOF, then a 100 MiB file.
        let download = dir.path().join("download.bin");
        let download_sha256 = write_random_file(&download, MIB_100);
        let mut half_close = dest.command("socat");
        half_close.args([
            "TCP6-LISTEN:7004,fork,reuseaddr,ipv6only=0".to_owned(),
            format!("SYSTEM:'sha256sum; cat {}'", download.display()),
        ]);
        dest_procs.push(Proc::spawn("dest-half-close", half_close, dir.path()));

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
            "--metrics-addr",
            &ADMIN.to_string(),
        ]);
        let mut server = Proc::spawn("gateway-server", server_cmd, dir.path());
        wait_ready_in(&gateway, &mut server);

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
            "--metrics-addr",
            &ADMIN.to_string(),
        ]);
        let mut client = Proc::spawn("pod-client", client_cmd, dir.path());
        wait_ready_in(&pod, &mut client);
        Testbed {
            server,
            client,
            _dest_procs: dest_procs,
            pod,
            gateway,
            _dest: dest,
            dir,
            download_sha256,
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
    let line = log_line(
        &bed.server,
        &format!("destination={} ", addr(plan.dest, 7000)),
    );
    assert!(line.contains("route=\"shop/allow-dest\""), "{line}");
    assert!(line.contains("decision=\"allow\""), "{line}");
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
    assert!(reply.ends_with("moved\n"), "{reply}");
    let line = log_line(
        &bed.server,
        &format!("destination={} ", addr(plan.dest, 7003)),
    );
    assert!(line.contains("decision=\"redirect\""), "{line}");
    assert!(
        line.contains(&format!("target={}", addr(plan.dest_b, 7000))),
        "{line}"
    );

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
    let line = log_line(&bed.server, "destination=10.231.1.2:4443 ");
    assert!(line.contains("decision=\"deny\""), "{line}");

    // 6. 100 MiB each way from a plain Rust client: concurrently through an echo, then strictly
    //    one way after the other across the client's half-close (dest answers only after EOF).
    for plan in [&V4, &V6] {
        let to = addr(plan.dest, 7000);
        let started = Instant::now();
        let (sent, received, prefix) = bed.pod.in_ns(move || bulk(to, MIB_100));
        eprintln!(
            "100 MiB each way through an echo ({to}): {:?}",
            started.elapsed()
        );
        assert!(prefix.contains("peer="), "{prefix}");
        assert_eq!(sent, received, "SHA-256 of 100 MiB each way ({to})");

        let to = addr(plan.dest, 7004);
        let started = Instant::now();
        let (sent, dest_saw, received) = bed.pod.in_ns(move || upload_then_download(to, MIB_100));
        eprintln!(
            "100 MiB up, FIN, 100 MiB down ({to}): {:?}",
            started.elapsed()
        );
        assert_eq!(hex(&sent), dest_saw, "dest's SHA-256 of the upload ({to})");
        assert_eq!(
            received, bed.download_sha256,
            "SHA-256 of the download ({to})"
        );
    }

    // The sidecar accepted exactly the applications' connections (a captured connection of its
    // own would show up here as one more, or as an endless loop), and the server saw each once.
    let captured = 4 + 4 + 1 + 4; // scenarios 1-3 per family, the gateway, the bulk transfers
    assert_eq!(
        metric(
            &bed.pod,
            "warren_connections_accepted_total{role=\"client\"}"
        ),
        captured
    );
    assert_eq!(
        metric(
            &bed.gateway,
            "warren_connections_accepted_total{role=\"server\"}"
        ),
        captured
    );
    let decisions = |action: &str| {
        metric(
            &bed.gateway,
            &format!("warren_policy_decisions_total{{action=\"{action}\"}}"),
        )
    };
    assert_eq!(
        (decisions("allow"), decisions("deny"), decisions("redirect")),
        (8, 3, 2)
    );
    for direction in ["outbound", "inbound"] {
        let bytes = metric(
            &bed.gateway,
            &format!("warren_bytes_total{{direction=\"{direction}\"}}"),
        );
        assert!(bytes >= 4 * MIB_100 as u64, "{direction}: {bytes} bytes");
    }
}

const MIB_100: usize = 100 * 1024 * 1024;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `buf` from the xorshift generator `state`: reproducible bytes that compress badly.
fn fill(state: &mut u64, buf: &mut [u8]) {
    for b in buf.iter_mut() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *b = *state as u8;
    }
}

/// Writes `total` pseudo-random bytes to `path`; returns their SHA-256.
fn write_random_file(path: &std::path::Path, total: usize) -> Vec<u8> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut state, mut hash, mut buf) =
        (0xfeed_f00d_dead_beef_u64, Sha256::new(), vec![0; 1 << 16]);
    for _ in 0..total / buf.len() {
        fill(&mut state, &mut buf);
        file.write_all(&buf).unwrap();
        hash.update(&buf);
    }
    file.flush().unwrap();
    hash.finalize().to_vec()
}

/// Sends `total` pseudo-random bytes to `to`, half-closes, then reads until dest closes.
/// Dest (`sha256sum; cat FILE`) answers only after the EOF: the digest it computed of the
/// upload, then the file. Returns (SHA-256 sent, dest's hex digest, SHA-256 of the file part).
fn upload_then_download(to: SocketAddr, total: usize) -> (Vec<u8>, String, Vec<u8>) {
    let mut tcp = TcpStream::connect_timeout(&to, Duration::from_secs(10)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let (mut state, mut hash, mut buf) =
        (0x0bad_cafe_1234_5678_u64, Sha256::new(), vec![0; 1 << 16]);
    for _ in 0..total / buf.len() {
        fill(&mut state, &mut buf);
        tcp.write_all(&buf).unwrap();
        hash.update(&buf);
    }
    tcp.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = Vec::with_capacity(total + 128);
    tcp.read_to_end(&mut received).unwrap();
    let newline = received
        .iter()
        .position(|&b| b == b'\n')
        .expect("a digest line")
        + 1;
    let digest = String::from_utf8_lossy(&received[..newline]);
    let digest = digest
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        received.len() - newline,
        total,
        "bytes downloaded after the half-close"
    );
    (
        hash.finalize().to_vec(),
        digest,
        Sha256::digest(&received[newline..]).to_vec(),
    )
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
            fill(&mut state, &mut buf);
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

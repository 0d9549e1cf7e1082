#!/usr/bin/env bash
# `make bench`: Warren beside its peers, on this machine, in one run; writes docs/benchmarks.md.
# Not a test: nothing here passes or fails on a number. Every figure is a median of $RUNS runs
# with its spread (min–max), and every Warren figure is also given as a ratio to stunnel's.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
SECS=${BENCH_SECONDS:-5}
# Each tunnel process holds two sockets per connection, so the open-files hard limit bounds the
# idle-connection test (raising it needs CAP_SYS_RESOURCE, which not every sandbox grants).
fd_limit=$(ulimit -Hn)
[[ $fd_limit == unlimited ]] && fd_limit=1048576
max_conns=$(((fd_limit - 1000) / 2))
IDLE_CONNS=${IDLE_CONNS:-$((max_conns < 10000 ? max_conns : 10000))}
out=${BENCH_OUT:-$root/docs/benchmarks.md}

# --- peers and builds -------------------------------------------------------------------
need=(stunnel4 haproxy socat iperf3 iptables iproute2 openssl procps python3)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release --locked -q -p warren -p warren-bench
warren=$root/target/release/warren
load=$root/target/release/warren-bench
ulimit -n "$fd_limit"

work=$(mktemp -d /tmp/warren-bench.XXXXXX)
ns_pod=wb$$-pod ns_srv=wb$$-srv
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  ip netns del "$ns_pod" 2>/dev/null || true
  ip netns del "$ns_srv" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=scripts/pki.sh
source "$root/scripts/pki.sh"
make_pki "$work"
cd "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # [netns] port
  local ns=() port=$1
  if (($# == 2)); then ns=(ip netns exec "$1"); port=$2; fi
  for _ in $(seq 200); do
    "${ns[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $port" >&2; return 1
}
log() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
# median and spread of numbers on stdin: "median min max"
stats() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %s %s\n", m, a[1], a[NR]}'; }

# --- the tunnels --------------------------------------------------------------------------
# Each start_* function starts one tunnel whose entry is 127.0.0.1:$entry, in front of $target.
start_stunnel() { # entry target [extra service options]
  local mid; mid=$(free_port)
  cat > "stunnel-srv-$1.conf" <<CONF
foreground = yes
pid =
debug = warning
[s]
accept = 127.0.0.1:$mid
connect = $2
cert = server.crt
key = server.key
CAfile = ca.crt
verifyChain = yes
${3:-}
CONF
  cat > "stunnel-cli-$1.conf" <<CONF
foreground = yes
pid =
debug = warning
[c]
client = yes
accept = 127.0.0.1:$1
connect = 127.0.0.1:$mid
cert = client.crt
key = client.key
CAfile = ca.crt
verifyChain = yes
checkHost = localhost
${3:-}
CONF
  stunnel4 "stunnel-srv-$1.conf" 2>>stunnel.log & pids+=($!); server_pid=$!
  stunnel4 "stunnel-cli-$1.conf" 2>>stunnel.log & pids+=($!); client_pid=$!
  wait_port "$mid"; wait_port "$1"
}

start_haproxy() { # entry target
  local mid; mid=$(free_port)
  cat > "haproxy-$1.cfg" <<CONF
global
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend cli
  bind 127.0.0.1:$1
  default_backend tls_out
backend tls_out
  server s 127.0.0.1:$mid ssl verify required ca-file ca.crt crt client.pem sni str(localhost) verifyhost localhost
frontend srv
  bind 127.0.0.1:$mid ssl crt server.pem ca-file ca.crt verify required
  default_backend plain
backend plain
  server t $2
CONF
  haproxy -db -f "haproxy-$1.cfg" 2>>haproxy.log & pids+=($!); server_pid=$!; client_pid=$!
  wait_port "$mid"; wait_port "$1"
}

start_warren() { # entry target [client flags...]
  local entry=$1 target=$2 mid; shift 2; mid=$(free_port)
  "$warren" server --listen 127.0.0.1:"$mid" --cert server.crt --key server.key --client-ca ca.crt \
    --connect "$target" 2>>warren.log & pids+=($!); server_pid=$!
  "$warren" client --listen 127.0.0.1:"$entry" --server 127.0.0.1:"$mid" --server-name localhost \
    --ca ca.crt --cert client.crt --key client.key --connect "$target" "$@" 2>>warren.log & pids+=($!); client_pid=$!
  wait_port "$mid"; wait_port "$entry"
}

# --- 1. bulk throughput ---------------------------------------------------------------------
iperf_run() { # [netns] host port streams -> "Gbit/s bytes iperf3-CPU-seconds"; retried, since an
  # iperf3 server still closing the previous test answers "busy"
  local ns=() json
  if (($# == 4)); then ns=(ip netns exec "$1"); shift; fi
  for attempt in 1 2 3; do
    json=$("${ns[@]}" iperf3 -c "$1" -p "$2" -P "$3" -t "$SECS" -J 2>/dev/null || true)
    # iperf3's own CPU use, both ends ("host" is its client, "remote" its server), in percent of
    # the test's duration.
    if python3 -c 'import json,sys; e=json.loads(sys.argv[1])["end"]; s=e["sum_received"]; c=e["cpu_utilization_percent"]
print("%.2f %d %.3f" % (s["bits_per_second"]/1e9, s["bytes"], (c["host_total"]+c["remote_total"])/100*s["seconds"]))' "$json" 2>/dev/null; then
      return 0
    fi
    log "iperf3 attempt $attempt failed: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("error","?"))' "$json" 2>/dev/null || echo no output)"
    sleep 1
  done
  return 1
}

# CPU clock ticks so far: user and system time of the given processes, then the machine's busy
# and idle time (all cores; steal excluded).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
  local user=0 sys=0 pid t us ni sy id io irq sirq
  for pid in $(printf '%s\n' "$@" | sort -u); do
    read -r -a t < <(cut -d' ' -f14,15 "/proc/$pid/stat")
    user=$((user + t[0])) sys=$((sys + t[1]))
  done
  read -r _ us ni sy id io irq sirq _ < /proc/stat
  echo "$user $sys $((us + ni + sy + irq + sirq)) $((id + io))"
}

declare -A result
# The one-stream runs also record where the CPU went, in CPU-seconds per GiB moved: the tunnel
# processes' user and kernel time, iperf3's (both ends) and the whole machine's busy and idle time.
tunnel_pids=()
measure_throughput() { # name entry-port [netns host]
  local name=$1 port=$2 ns=${3:-} host=${4:-127.0.0.1} run before after
  local -a where=() costs=()
  [[ -n $ns ]] && where=("$ns")
  for streams in 1 8; do
    local samples=() ok=()
    for _ in $(seq "$RUNS"); do
      before=$(cpu_ticks "${tunnel_pids[@]}")
      run=$(iperf_run "${where[@]}" "$host" "$port" "$streams") || run=failed
      after=$(cpu_ticks "${tunnel_pids[@]}")
      samples+=("${run%% *}")
      if [[ $streams == 1 && $run != failed ]]; then
        costs+=("$(python3 -c 'import sys
gbps, moved, iperf = map(float, sys.argv[1].split()); b = list(map(int, sys.argv[2].split())); a = list(map(int, sys.argv[3].split()))
gib, tck = moved / 2**30, float(sys.argv[4]); d = [(y - x) / tck / gib for x, y in zip(b, a)]
print("%.3f %.3f %.3f %.3f %.3f" % (d[0], d[1], iperf / gib, d[2], d[3]))' "$run" "$before" "$after" "$clk_tck")")
      fi
    done
    for run in "${samples[@]}"; do [[ $run == failed ]] || ok+=("$run"); done
    if ((${#ok[@]})); then result["tput,$name,$streams"]=$(printf '%s\n' "${ok[@]}" | stats)
    else result["tput,$name,$streams"]=failed; fi
    log "throughput $name x$streams: ${result["tput,$name,$streams"]} Gbit/s (median min max)"
  done
  local field
  for field in 1 2 3 4 5; do
    ((${#costs[@]})) || break
    result["cpu$field,$name"]=$(printf '%s\n' "${costs[@]}" | cut -d' ' -f"$field" | stats)
  done
}

iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
wait_port "$iperf_port"
measure_throughput plain "$iperf_port"
for peer in stunnel haproxy warren; do
  entry=$(free_port)
  "start_$peer" "$entry" "127.0.0.1:$iperf_port"
  tunnel_pids=("$server_pid" "$client_pid")
  measure_throughput "$peer" "$entry"
  tunnel_pids=()
  stop_all
  iperf3 -s -p "$iperf_port" >/dev/null 2>&1 & pids+=($!); wait_port "$iperf_port"
done
stop_all

# Warren transparent: an unmodified iperf3 in a "pod" namespace whose TCP `warren init` captures,
# tunneled to a server namespace across a veth pair.
transparent=ok
if ip netns add "$ns_pod" && ip netns add "$ns_srv"; then
  ip link add "$ns_pod-v" netns "$ns_pod" type veth peer name "$ns_srv-v" netns "$ns_srv"
  ip -n "$ns_pod" addr add 10.77.0.1/24 dev "$ns_pod-v"; ip -n "$ns_srv" addr add 10.77.0.2/24 dev "$ns_srv-v"
  for ns in "$ns_pod" "$ns_srv"; do ip -n "$ns" link set lo up; ip -n "$ns" link set "$ns-v" up; done
  cat > routes.yaml <<YAML
apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {name: iperf, namespace: demo}
spec:
  destinations: [{cidr: 10.77.0.2/32, ports: ["5201"]}]
  action: Allow
YAML
  ip netns exec "$ns_srv" iperf3 -s -p 5201 >/dev/null 2>&1 & pids+=($!)
  ip netns exec "$ns_srv" "$warren" server --listen 10.77.0.2:4443 --cert server.crt --key server.key \
    --client-ca ca.crt --policy routes.yaml 2>>warren-transparent.log & pids+=($!)
  measure_throughput veth-plain 5201 "$ns_pod" 10.77.0.2
  if ip netns exec "$ns_pod" "$warren" init --proxy-port 15001 --proxy-uid 1337 >>warren-transparent.log 2>&1; then
    # The sidecar runs as uid 1337, like in a pod.
    chmod 755 "$work"; chmod 644 ./*.key
    ip netns exec "$ns_pod" setpriv --reuid 1337 --regid 1337 --clear-groups "$warren" client \
      --listen 127.0.0.1:15001 --server 10.77.0.2:4443 --server-name localhost --ca ca.crt \
      --cert client.crt --key client.key --transparent 2>>warren-transparent.log & pids+=($!)
    if wait_port "$ns_pod" 15001; then
      measure_throughput warren-transparent 5201 "$ns_pod" 10.77.0.2
    else
      transparent="the sidecar did not start: $(tail -n 1 warren-transparent.log)"
      log "$transparent"
    fi
  else
    transparent="warren init failed: $(tail -n 1 warren-transparent.log)"
    log "$transparent"
  fi
  stop_all
else
  transparent="cannot create network namespaces"
fi

# --- 2. new connections per second, connect-to-first-byte latency ---------------------------------
echo_port=$(free_port)
"$load" echo --listen 127.0.0.1:"$echo_port" & pids+=($!)
wait_port "$echo_port"
measure_rate() { # name entry
  local rates=() p50s=() p99s=() line
  for _ in $(seq "$RUNS"); do
    line=$("$load" conn-rate --addr 127.0.0.1:"$2" --seconds "$SECS" --concurrency 8)
    rates+=("$(sed -E 's/.*conns_per_sec=([0-9.]+).*/\1/' <<<"$line")")
    p50s+=("$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")")
    p99s+=("$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")")
  done
  result["rate,$1"]=$(printf '%s\n' "${rates[@]}" | stats)
  result["p50,$1"]=$(printf '%s\n' "${p50s[@]}" | stats)
  result["p99,$1"]=$(printf '%s\n' "${p99s[@]}" | stats)
  log "conn rate $1: ${result["rate,$1"]} /s, p50 ${result["p50,$1"]} ms, p99 ${result["p99,$1"]} ms"
}
for variant in stunnel warren warren-resumption; do
  entry=$(free_port)
  case $variant in
    stunnel) start_stunnel "$entry" "127.0.0.1:$echo_port" "sessionResume = no" ;;
    warren) start_warren "$entry" "127.0.0.1:$echo_port" --no-session-resumption ;;
    warren-resumption) start_warren "$entry" "127.0.0.1:$echo_port" ;;
  esac
  measure_rate "$variant" "$entry"
  kill "$server_pid" "$client_pid"; wait "$server_pid" "$client_pid" 2>/dev/null || true
done

# --- 3. memory per idle connection ------------------------------------------------------------
rss_of() { local total=0 pid; for pid in "$@"; do total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status"))); done; echo "$total"; }
measure_memory() { # name entry
  local idle held fifo=$work/hold-$1
  sleep 0.5
  idle=$(rss_of "$server_pid" "$client_pid")
  mkfifo "$fifo"
  "$load" hold --addr 127.0.0.1:"$2" --count "$IDLE_CONNS" --hold-seconds 30 > "$fifo" & local holder=$!
  if read -r -t 300 ready < "$fifo" && [[ $ready == ready* ]]; then
    sleep 1
    held=$(rss_of "$server_pid" "$client_pid")
    result["mem,$1"]=$(awk -v h="$held" -v i="$idle" -v n="$IDLE_CONNS" 'BEGIN {printf "%.1f %d %d", (h-i)*1024/n, i, h}')
    log "memory $1: ${result["mem,$1"]} (bytes per connection, idle KiB, held KiB)"
  else
    result["mem,$1"]="failed"
    log "memory $1: could not hold $IDLE_CONNS connections"
  fi
  kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
  rm -f "$fifo"
}
for variant in stunnel warren; do
  entry=$(free_port)
  case $variant in
    stunnel) start_stunnel "$entry" "127.0.0.1:$echo_port" ;;
    warren) start_warren "$entry" "127.0.0.1:$echo_port" ;;
  esac
  measure_memory "$variant" "$entry"
  kill "$server_pid" "$client_pid"; wait "$server_pid" "$client_pid" 2>/dev/null || true
done
stop_all

# --- 4. policy decisions ----------------------------------------------------------------------
decide=$(cd "$root" && cargo bench -q -p warren-core --bench decide -- --warm-up-time 1 --measurement-time 3 2>/dev/null |
  grep -E '^decide with|^decide/10k-routes|^compiled' || true)
log "$decide"
aead=$("$load" aead --gib 2)
log "$aead"

# --- report -------------------------------------------------------------------------------------
python3 - "$out" "$RUNS" "$SECS" "$IDLE_CONNS" "$transparent" "$decide" "$aead" <<PY
import sys, subprocess, platform, socket
out, runs, secs, idle, transparent, decide, aead = sys.argv[1:]
aead = dict(kv.split("=") for kv in aead.split()[1:])
def ktls():
    """Whether this kernel offers TLS in the kernel (TCP_ULP "tls"), the one lever left."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        with socket.create_connection(listener.getsockname()) as c:
            c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
        return "available"
    except OSError as e:
        return f"not available here (setsockopt(TCP_ULP, \"tls\"): {e.strerror})"
    finally:
        listener.close()
r = {}
for line in """$(for k in "${!result[@]}"; do printf '%s=%s\n' "$k" "${result[$k]}"; done)""".strip().splitlines():
    k, v = line.split("=", 1)
    r[k] = v.split()
def med(k): return float(r[k][0]) if k in r and r[k][0] != "failed" else None
def cell(k, unit=""):
    if k not in r: return "not run"
    if r[k][0] == "failed": return "failed"
    m, lo, hi = r[k][:3]
    return f"{float(m):g}{unit} ({float(lo):g}–{float(hi):g})"
def ratio(a, b, invert=False):
    if a is None or b is None or a == 0 or b == 0: return "–"
    return f"{(b / a if invert else a / b):.2f}×"
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
L = []
L.append("# Benchmarks\n")
L.append("Generated by \`make bench\` (bench/run.sh); numbers from one run on one machine, each a median of "
         f"{runs} runs of {secs} s with the spread (min–max) in brackets. Ratios are Warren ÷ stunnel from the same run.\n")
L.append(f"Machine: {cores} cores, {cpu}, Linux {platform.release()}; kernel TLS {ktls()}.\n")
L.append("## Bulk throughput (iperf3 through each tunnel, Gbit/s)\n")
L.append("| tunnel | 1 stream | 8 streams | 1 stream vs stunnel | 8 streams vs stunnel |")
L.append("|---|---|---|---|---|")
for name, label in [("plain","plain loopback TCP (ceiling)"),("stunnel","stunnel client → stunnel server"),
                    ("haproxy","haproxy TLS pair"),("warren","Warren client → server (static)"),
                    ("veth-plain","plain TCP across a veth pair (ceiling for the next row)"),
                    ("warren-transparent","Warren transparent (iptables REDIRECT, netns, veth)")]:
    rr = [ratio(med(f"tput,{name},{s}"), med(f"tput,stunnel,{s}")) if name.startswith("warren") else "" for s in (1,8)]
    L.append(f"| {label} | {cell(f'tput,{name},1')} | {cell(f'tput,{name},8')} | {rr[0]} | {rr[1]} |")
if transparent != "ok":
    L.append(f"\nWarren transparent: {transparent}\n")
L.append("\n### Where the CPU goes: one stream, CPU-seconds per GiB moved\n")
L.append("The tunnel's two processes (user and kernel time from \`/proc/PID/stat\`), iperf3's own use at both "
         "ends (its report), and the whole machine (\`/proc/stat\`). Cheaper per GiB means faster, since "
         f"everything shares {cores} cores.\n")
L.append("| tunnel | tunnel user | tunnel kernel | iperf3, both ends | machine busy | machine idle |")
L.append("|---|---|---|---|---|---|")
for name, label in [("plain","plain loopback TCP (no tunnel)"),("stunnel","stunnel"),("haproxy","haproxy"),("warren","Warren")]:
    tunnel = ["–", "–"] if name == "plain" else [cell(f"cpu{i},{name}") for i in (1, 2)]
    L.append(f"| {label} | " + " | ".join(tunnel + [cell(f"cpu{i},{name}") for i in (3, 4, 5)]) + " |")
seal, opn = float(aead["seal_s_per_gib"]), float(aead["open_s_per_gib"])
rseal, ropn = float(aead["rustls_seal_s_per_gib"]), float(aead["rustls_open_s_per_gib"])
L.append(f"\nIn isolation (\`warren-bench aead\`, CPU-seconds per GiB): the cipher alone, ring AES-256-GCM on "
         f"16 KiB records in place, seals in {seal:.3f} and opens in {opn:.3f} ({seal + opn:.3f} both ways); rustls' "
         f"buffered API around it, as tokio-rustls drives it, takes {rseal:.3f} and {ropn:.3f} ({rseal + ropn:.3f}).\n")
stun = med("tput,stunnel,1")
if stun and med("cpu2,warren") is not None:
    target = 2 * stun
    budget = float(cores) / (target * 1e9 / 8 / 2**30)
    floor = med("cpu2,warren") + med("cpu3,warren") + seal + opn
    verdict = ("more than the machine has. Even with no user-space work but the cipher, Warren would miss the "
               "target on this machine; only less kernel work per byte (kernel TLS with splice) could close the gap"
               if floor > budget else
               f"leaving {budget - floor:.2f} for all the rest of Warren's user-space work, which spent "
               f"{med('cpu1,warren') - seal - opn:.2f} in this run")
    L.append(f"**Budget at the one-stream target.** 2× stunnel is {target:.2f} Gbit/s, at which {cores} fully busy cores "
             f"afford {budget:.2f} CPU-seconds per GiB. Warren's kernel time ({med('cpu2,warren'):.2f}), iperf3's own "
             f"({med('cpu3,warren'):.2f}) and the cipher ({seal + opn:.2f}) already need {floor:.2f}: {verdict}.\n")
L.append("\n## New connections: a full mutual TLS 1.3 handshake per connection, 64-byte request and reply, 8 in flight\n")
L.append("| tunnel | connections/s | connect-to-first-byte p50 (ms) | p99 (ms) | conn/s vs stunnel | p99 vs stunnel |")
L.append("|---|---|---|---|---|---|")
for name, label in [("stunnel","stunnel (sessionResume = no)"),("warren","Warren (--no-session-resumption)"),
                    ("warren-resumption","Warren with TLS session resumption (default)")]:
    rr = ["", ""] if name == "stunnel" else [ratio(med(f"rate,{name}"), med("rate,stunnel")), ratio(med(f"p99,{name}"), med("p99,stunnel"))]
    L.append(f"| {label} | {cell(f'rate,{name}')} | {cell(f'p50,{name}')} | {cell(f'p99,{name}')} | {rr[0]} | {rr[1]} |")
L.append(f"\n## Memory per idle connection ({idle} tunneled connections held open)\n")
L.append("| tunnel | bytes per connection (client + server RSS growth ÷ connections) | idle RSS (KiB) | RSS holding them (KiB) | vs stunnel |")
L.append("|---|---|---|---|---|")
for name in ["stunnel", "warren"]:
    v = r.get(f"mem,{name}")
    if not v or v[0] == "failed":
        L.append(f"| {name} | {'failed' if v else 'not run'} | | | |"); continue
    rr = "" if name == "stunnel" else ratio(float(v[0]), med("mem,stunnel"))
    L.append(f"| {name} | {float(v[0]):.0f} | {v[1]} | {v[2]} | {rr} |")
L.append("\n## Policy decisions (criterion, 10,000 routes)\n")
L.append("\`\`\`\n" + decide + "\n\`\`\`\n")
L.append("\n## Targets\n")
t1 = ratio(med("tput,warren,1"), med("tput,stunnel,1"))
t2 = ratio(med("rate,warren"), med("rate,stunnel"))
t3 = ratio(med("p99,warren"), med("p99,stunnel"))
t4 = ratio(float(r["mem,warren"][0]) if "mem,warren" in r and r["mem,warren"][0] != "failed" else None, med("mem,stunnel"))
L.append("| target | goal | this run |")
L.append("|---|---|---|")
L.append(f"| bulk throughput, one stream | ≥ 2.0× stunnel | {t1} |")
L.append(f"| new connections per second | ≥ 2.0× stunnel | {t2} |")
L.append(f"| p99 connect-to-first-byte | ≤ 1.0× stunnel | {t3} |")
L.append(f"| memory per idle connection | ≤ 0.5× stunnel | {t4} |")
text = "\n".join(L) + "\n"
marker = "<!-- notes -->"
try:
    old = open(out).read()
    if marker in old:
        text += "\n" + old[old.index(marker):]
except FileNotFoundError:
    pass
open(out, "w").write(text)
print(text)
PY

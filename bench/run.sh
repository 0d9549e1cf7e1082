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
iperf_gbps() { # [netns] host port streams; retried, since an iperf3 server still closing the
  # previous test answers "busy"
  local ns=() json
  if (($# == 4)); then ns=(ip netns exec "$1"); shift; fi
  for attempt in 1 2 3; do
    json=$("${ns[@]}" iperf3 -c "$1" -p "$2" -P "$3" -t "$SECS" -J 2>/dev/null || true)
    if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$json" 2>/dev/null; then
      return 0
    fi
    log "iperf3 attempt $attempt failed: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("error","?"))' "$json" 2>/dev/null || echo no output)"
    sleep 1
  done
  return 1
}

declare -A result
measure_throughput() { # name entry-port [netns host]
  local name=$1 port=$2 ns=${3:-} host=${4:-127.0.0.1}
  for streams in 1 8; do
    local samples=()
    for _ in $(seq "$RUNS"); do
      if [[ -n $ns ]]; then samples+=("$(iperf_gbps "$ns" "$host" "$port" "$streams")")
      else samples+=("$(iperf_gbps "$host" "$port" "$streams")"); fi
    done
    result["tput,$name,$streams"]=$(printf '%s\n' "${samples[@]}" | stats)
    log "throughput $name x$streams: ${result["tput,$name,$streams"]} Gbit/s (median min max)"
  done
}

iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
wait_port "$iperf_port"
measure_throughput plain "$iperf_port"
for peer in stunnel haproxy warren; do
  entry=$(free_port)
  "start_$peer" "$entry" "127.0.0.1:$iperf_port"
  measure_throughput "$peer" "$entry"
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

# --- report -------------------------------------------------------------------------------------
python3 - "$out" "$RUNS" "$SECS" "$IDLE_CONNS" "$transparent" "$decide" <<PY
import sys, subprocess, platform
out, runs, secs, idle, transparent, decide = sys.argv[1:]
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
L.append(f"Machine: {cores} cores, {cpu}, Linux {platform.release()}.\n")
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

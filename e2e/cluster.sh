#!/usr/bin/env bash
# A real Kubernetes control plane for tests: etcd + kube-apiserver on loopback, no kubelet and
# no controller-manager (like envtest). Built by e2e/build.sh from upstream Go modules.
#
#   eval "$(bash e2e/cluster.sh start)"        # prints export lines: KUBECONFIG, WARREN_E2E_DIR
#   kubectl get ns
#   bash e2e/cluster.sh stop "$WARREN_E2E_DIR"  # kills etcd + apiserver, deletes the data dir
#
# start [--dir DIR] [--watch-pid PID]
#   DIR (default: a fresh mktemp dir) holds the PKI, the admin kubeconfig, data and logs; it must
#   not exist yet. With --watch-pid the cluster tears itself down once PID has exited, so a test
#   process that dies (even by SIGKILL) leaks nothing. Every start picks free loopback ports.
# stop DIR
#   Tears the cluster down and removes DIR (WARREN_E2E_KEEP=1 keeps DIR, e.g. to read logs).
#
# Layout: a supervisor (own session, so a test runner's signals to its process group do not
# skip teardown) starts etcd and kube-apiserver as its children, reports readiness through
# marker files and, on TERM or when the watched pid is gone, stops both and removes DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/cluster.sh"
STARTUP_TIMEOUT="${WARREN_E2E_STARTUP_TIMEOUT:-180}" # seconds, bounded wait for /readyz

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

bin_dir() {
  local b="${WARREN_E2E_BIN:-${WARREN_CACHE:-$here/../.cache}/e2e/bin}"
  for exe in etcd kube-apiserver kubectl; do
    [ -x "$b/$exe" ] || die "missing $b/$exe: build the test control plane first with \`make e2e-bins\` (bash e2e/build.sh)"
  done
  (cd "$b" && pwd -P)
}

# A loopback TCP port nobody listens on, below the ephemeral range so that outgoing
# connections cannot be handed it between this check and the bind.
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    if ! ss -Htan "( sport = :$p )" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  die "no free port found after 200 tries"
}

gen_pki() { # DIR: CA, apiserver serving cert, admin client cert, service-account keys
  local d="$1/pki"
  mkdir -p "$d"
  (
    cd "$d"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=warren-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req "${ec[@]}" -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile apiserver.ext -out apiserver.crt
    # system:masters: the admin is authorized by RBAC's bootstrap cluster-admin binding.
    openssl req "${ec[@]}" -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=warren-e2e-admin"
    printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature" >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out admin.crt
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
  ) >"$1/pki.log" 2>&1 || { cat "$1/pki.log" >&2; die "PKI generation failed"; }
}

write_kubeconfig() { # DIR PORT
  local d="$1" b64="base64 -w0"
  cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: warren-e2e
  cluster:
    server: https://127.0.0.1:$2
    certificate-authority-data: $($b64 <"$d/pki/ca.crt")
users:
- name: warren-e2e-admin
  user:
    client-certificate-data: $($b64 <"$d/pki/admin.crt")
    client-key-data: $($b64 <"$d/pki/admin.key")
contexts:
- name: warren-e2e
  context: {cluster: warren-e2e, user: warren-e2e-admin, namespace: default}
current-context: warren-e2e
EOF
}

# --- supervisor (runs detached, in its own session) ---------------------------------------
children=()
# Stops the children newest first (kube-apiserver before etcd: without etcd its graceful
# shutdown stalls), each with up to 5 s to exit cleanly before SIGKILL.
teardown() {
  local i pid
  for ((i = ${#children[@]} - 1; i >= 0; i--)); do
    pid="${children[$i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  children=()
}

start_processes() { # DIR BIN -> 0 when /readyz answers ok, 1 on failure (reason in DIR/failed)
  local d="$1" b="$2" etcd_port peer_port api_port i
  etcd_port="$(free_port)"
  peer_port="$(free_port)"
  api_port="$(free_port)"
  rm -rf "$d/etcd-data"
  "$b/etcd" --name warren-e2e --data-dir "$d/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "warren-e2e=http://127.0.0.1:$peer_port" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn >"$d/etcd.log" 2>&1 &
  children+=($!)
  echo "$!" >"$d/etcd.pid"
  # The apiserver retries etcd itself; only make sure etcd did not die on a port clash.
  for i in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break
    kill -0 "${children[0]}" 2>/dev/null || { echo "etcd exited, see etcd.log" >"$d/failed"; return 1; }
    sleep 0.1
  done
  "$b/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$d/pki/apiserver.crt" --tls-private-key-file "$d/pki/apiserver.key" \
    --client-ca-file "$d/pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/pki/sa.pub" --service-account-signing-key-file "$d/pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.0.0.0/24 \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount,DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --allow-privileged=true --profiling=false --v=1 >"$d/apiserver.log" 2>&1 &
  children+=($!)
  echo "$!" >"$d/apiserver.pid"
  write_kubeconfig "$d" "$api_port"
  echo "https://127.0.0.1:$api_port" >"$d/server"
  local deadline=$((SECONDS + STARTUP_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -fsS --cacert "$d/pki/ca.crt" --cert "$d/pki/admin.crt" --key "$d/pki/admin.key" \
      "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "${children[0]}" 2>/dev/null || { echo "etcd exited, see etcd.log" >"$d/failed"; return 1; }
    kill -0 "${children[1]}" 2>/dev/null || { echo "kube-apiserver exited, see apiserver.log" >"$d/failed"; return 1; }
    sleep 0.5
  done
  echo "kube-apiserver not ready after ${STARTUP_TIMEOUT}s, see apiserver.log" >"$d/failed"
  return 1
}

supervise() { # DIR BIN WATCH_PID(0 = none)
  local d="$1" b="$2" watch="$3" attempt stop=0
  trap 'stop=1' TERM INT HUP
  for attempt in 1 2 3; do # a port taken between the check and the bind gets fresh ports
    rm -f "$d/failed"
    if start_processes "$d" "$b"; then touch "$d/ready"; break; fi
    teardown
    grep -qi 'address already in use' "$d/etcd.log" "$d/apiserver.log" 2>/dev/null || break
    log "port clash on attempt $attempt, retrying with new ports"
  done
  while [ "$stop" = 0 ]; do
    if [ "$watch" != 0 ] && ! kill -0 "$watch" 2>/dev/null; then break; fi
    # `wait` (unlike a foreground sleep) returns as soon as a trapped signal arrives.
    sleep 1 &
    wait $! || true
  done
  teardown
  [ "${WARREN_E2E_KEEP:-0}" = 1 ] || rm -rf "$d"
}

# --- commands -----------------------------------------------------------------------------
cmd_start() {
  local d="" watch=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) d="$2"; shift 2 ;;
      --watch-pid) watch="$2"; shift 2 ;;
      *) die "start: unknown argument $1" ;;
    esac
  done
  local b
  b="$(bin_dir)"
  if [ -z "$d" ]; then d="$(mktemp -d "${TMPDIR:-/tmp}/warren-e2e.XXXXXX")"; else
    [ -e "$d" ] && die "start: $d already exists (each cluster needs a fresh dir)"
    mkdir -p "$d"
  fi
  d="$(cd "$d" && pwd)"
  gen_pki "$d"
  setsid bash "$self" _supervise "$d" "$b" "$watch" </dev/null >"$d/supervisor.log" 2>&1 &
  echo "$!" >"$d/supervisor.pid"
  local deadline=$((SECONDS + STARTUP_TIMEOUT + 30))
  while [ "$SECONDS" -lt "$deadline" ] && [ ! -e "$d/ready" ] && [ ! -e "$d/failed" ]; do sleep 0.2; done
  if [ ! -e "$d/ready" ]; then
    log "control plane failed to start: $(cat "$d/failed" 2>/dev/null || echo timeout)"
    for f in supervisor.log etcd.log apiserver.log; do
      [ -f "$d/$f" ] && { log "--- last lines of $f"; tail -n 30 "$d/$f" >&2; }
    done
    cmd_stop "$d"
    exit 1
  fi
  log "ready: $(cat "$d/server") (dir $d)"
  echo "export KUBECONFIG=$d/kubeconfig"
  echo "export WARREN_E2E_DIR=$d"
  echo "export PATH=$b:\$PATH"
}

cmd_stop() {
  local d="${1:?usage: cluster.sh stop DIR}" sup i
  [ -d "$d" ] || return 0
  sup="$(cat "$d/supervisor.pid" 2>/dev/null || echo 0)"
  if [ "$sup" != 0 ] && kill -TERM "$sup" 2>/dev/null; then
    for i in $(seq 1 300); do kill -0 "$sup" 2>/dev/null || break; sleep 0.1; done
  fi
  # Fallback when the supervisor is gone or stuck: kill what it started.
  for f in etcd.pid apiserver.pid; do
    if [ -f "$d/$f" ]; then kill -KILL "$(cat "$d/$f")" 2>/dev/null || true; fi
  done
  if [ "$sup" != 0 ]; then kill -KILL "$sup" 2>/dev/null || true; fi
  [ "${WARREN_E2E_KEEP:-0}" = 1 ] || rm -rf "$d"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  _supervise) shift; supervise "$@" ;;
  *) sed -n '2,16p' "$self" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# `make demo-loopback`: Warren end to end on loopback, with throwaway certificates (no Kubernetes,
# no root; `make demo` runs the Kubernetes demo, docs/demo-kubernetes.sh).
#   application ──TCP──▶ warren client ══mTLS, destination in the ClientHello══▶ warren server ──TCP──▶ echo
# It shows bytes flowing through an allowed route, a destination denied by a route, the log
# lines and metrics that explain both, then stops everything it started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
warren=${WARREN_BIN:-$root/target/debug/warren}
work=$(mktemp -d /tmp/warren-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Readiness through the admin listener: probing a tunnel port would itself open a tunnel.
wait_ready() {
  for _ in $(seq 100); do
    curl -fs http://127.0.0.1:"$1"/readyz >/dev/null && return 0
    sleep 0.1
  done
  echo "nothing ready on admin port $1" >&2; return 1
}

step "A throwaway PKI: one CA, a server certificate, a client certificate for spiffe://cluster.local/ns/demo/sa/app"
# shellcheck source=scripts/pki.sh
source "$root/scripts/pki.sh"
make_pki "$work"
cd "$work"
ls -1 "$work"/*.crt

echo_port=$(free_port); secret_port=$(free_port); server_port=$(free_port)
admin_port=$(free_port); app_port=$(free_port); secret_app_port=$(free_port)
client_admin=$(free_port); secret_client_admin=$(free_port)

step "Two destinations on loopback: an echo service (:$echo_port) and a 'secret' one (:$secret_port)"
socat TCP-LISTEN:"$echo_port",bind=127.0.0.1,fork,reuseaddr EXEC:cat & pids+=($!)
socat TCP-LISTEN:"$secret_port",bind=127.0.0.1,fork,reuseaddr SYSTEM:'echo top secret' & pids+=($!)

step "The policy: TunnelRoute manifests, the same objects you would kubectl apply"
cat > routes.yaml <<YAML
apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {name: allow-echo, namespace: demo}
spec:
  destinations:
    - cidr: 127.0.0.1/32
      ports: ["$echo_port"]
  action: Allow
---
apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {name: deny-secret, namespace: demo}
spec:
  priority: 10
  destinations:
    - cidr: 127.0.0.0/8
      ports: ["$secret_port"]
  action: Deny
YAML
cat routes.yaml

step "warren server on :$server_port (metrics on :$admin_port) and two warren clients"
"$warren" server --listen 127.0.0.1:"$server_port" --cert server.crt --key server.key --client-ca ca.crt \
  --policy routes.yaml --metrics-addr 127.0.0.1:"$admin_port" 2> server.log & pids+=($!)
wait_ready "$admin_port"
"$warren" client --listen 127.0.0.1:"$app_port" --server 127.0.0.1:"$server_port" --server-name localhost \
  --ca ca.crt --cert client.crt --key client.key --connect 127.0.0.1:"$echo_port" --metrics-addr 127.0.0.1:"$client_admin" 2> client.log & pids+=($!)
"$warren" client --listen 127.0.0.1:"$secret_app_port" --server 127.0.0.1:"$server_port" --server-name localhost \
  --ca ca.crt --cert client.crt --key client.key --connect 127.0.0.1:"$secret_port" --metrics-addr 127.0.0.1:"$secret_client_admin" 2> secret-client.log & pids+=($!)
wait_ready "$client_admin"; wait_ready "$secret_client_admin"

step "Allowed: 1 MiB through the tunnel to the echo service and back"
head -c 1048576 /dev/urandom > payload
socat -t 5 - TCP:127.0.0.1:"$app_port" < payload > echoed
sha256sum payload echoed
cmp -s payload echoed && echo "intact: $(stat -c %s echoed) bytes came back"

step "Denied: the 'secret' destination"
reply=$(socat -t 5 - TCP:127.0.0.1:"$secret_app_port" <<< "let me in" 2>&1 || true)
echo "the application got: '${reply}' (connection closed, nothing reached the secret service)"
sleep 0.3
grep -h "connection refused" secret-client.log | tail -n 1

step "The server's log: one line per connection"
grep -h "connection closed" server.log

step "A few of the server's metrics (http://127.0.0.1:$admin_port/metrics)"
curl -s http://127.0.0.1:"$admin_port"/metrics | grep -E '^warren_(policy_decisions|bytes|connections_closed)_total'

step "Done; stopping everything"

#!/usr/bin/env bash
# `make demo`: Warren's main job, end to end on this machine, against a real Kubernetes API server.
#
#   pod (network namespace)                                   node (this host)
#   app ──TCP──▶ iptables REDIRECT ──▶ warren client ══mTLS══▶ warren server ──TCP──▶ destinations
#               (warren init)          (uid 1337)              follows TunnelRoutes live
#                                                               ▲ kube-apiserver + etcd (built from source)
#                                                               └ warren-operator: route status, injection webhook
#
# It starts a control plane (etcd + kube-apiserver, no kubelet), applies TunnelRoutes with
# kubectl, sends an unmodified application's traffic through the tunnel, flips the policy live,
# shows the operator's status and the injection webhook at work, then stops everything it
# started. Needs root (a network namespace with iptables) and `make e2e-bins`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WARREN_TARGET_DIR:-$root/target/debug}
warren=$bin/warren
operator=$bin/warren-operator
[ "$(id -u)" = 0 ] || { echo "demo: run as root: the pod is a network namespace with iptables rules" >&2; exit 1; }
for exe in "$warren" "$operator"; do
  [ -x "$exe" ] || { echo "demo: $exe is missing: cargo build first (make demo does)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/warren-demo-k8s.XXXXXX)
chmod 755 "$work"
pod=warren-demo-$$
veth=wd$$
node_ip=10.79.0.1 pod_ip=10.79.0.2
pids=()
cluster_dir=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Whatever still runs in the pod's namespace goes with it.
  ip netns pids "$pod" 2>/dev/null | xargs -r kill 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$pod" 2>/dev/null || true
  [ -n "$cluster_dir" ] && bash "$root/e2e/cluster.sh" stop "$cluster_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # ADMIN_ADDR [NETNS]
  for _ in $(seq 200); do
    if [ -n "${2:-}" ]; then ip netns exec "$2" curl -fs "http://$1/readyz" >/dev/null && return 0
    else curl -fs "http://$1/readyz" >/dev/null && return 0; fi
    sleep 0.1
  done
  echo "nothing ready at $1" >&2; return 1
}
in_pod() { ip netns exec "$pod" "$@"; }
app() { # DEST: an unmodified client in the pod sends a line and prints the reply
  in_pod socat -t 2 -T 5 - "TCP:$1" <<< "hello from the pod" 2>/dev/null || true
}

step "A Kubernetes control plane: etcd + kube-apiserver on loopback (built from upstream Go modules)"
eval "$(bash "$root/e2e/cluster.sh" start --watch-pid $$)"
cluster_dir=$WARREN_E2E_DIR
kubectl version 2>/dev/null | sed -n 's/^Server Version: /kube-apiserver /p'
kubectl apply -f "$root/crds/"
kubectl wait --for=condition=Established crd/tunnelroutes.warren.dev --timeout=60s
kubectl create namespace demo
kubectl -n demo create serviceaccount default 2>/dev/null || true

step "A throwaway PKI: one CA, the tunnel server's certificate, the pod's identity spiffe://cluster.local/ns/demo/sa/app"
# shellcheck source=scripts/pki.sh
source "$root/scripts/pki.sh"
make_pki "$work"
chmod 644 "$work"/*.key # the sidecar runs as uid 1337
cd "$work"

step "warren-operator: TunnelRoute status, and the injection webhook on https://127.0.0.1"
operator_admin=127.0.0.1:$(free_port) webhook_port=$(free_port)
POD_NAMESPACE=demo POD_NAME=operator-0 "$operator" --admin-addr "$operator_admin" --lease-seconds 6 \
  --webhook-addr 127.0.0.1:"$webhook_port" --webhook-cert server.crt --webhook-key server.key \
  --tunnel-server "$node_ip:4443" --tunnel-server-name localhost > operator.log 2>&1 & pids+=($!)
wait_ready "$operator_admin"

step "The node: two destinations ($node_ip:7000 echoes, $node_ip:7001 is 'payments') and warren server"
ip netns add "$pod"
ip link add "$veth" type veth peer name eth0 netns "$pod"
ip addr add "$node_ip/30" dev "$veth"; ip link set "$veth" up
in_pod ip addr add "$pod_ip/30" dev eth0; in_pod ip link set eth0 up; in_pod ip link set lo up
socat TCP-LISTEN:7000,bind=$node_ip,fork,reuseaddr SYSTEM:'echo "echo service got: $(head -n1)"' & pids+=($!)
socat TCP-LISTEN:7001,bind=$node_ip,fork,reuseaddr SYSTEM:'echo "payments got: $(head -n1)"' & pids+=($!)
server_admin=127.0.0.1:$(free_port)
"$warren" server --listen "$node_ip:4443" --cert server.crt --key server.key --client-ca ca.crt \
  --policy-source kubernetes --metrics-addr "$server_admin" 2> server.log & pids+=($!)
wait_ready "$server_admin"
echo "warren server is following TunnelRoutes (ready = first list done)"

step "The pod: warren init installs the capture rules, warren client runs as uid 1337"
in_pod "$warren" init --no-ipv6 2>&1 | tail -n 3
in_pod iptables -t nat -S WARREN_OUTPUT
# `ip netns exec` and setpriv both exec, so $! is the sidecar itself.
ip netns exec "$pod" setpriv --reuid 1337 --regid 1337 --clear-groups "$warren" client --listen 0.0.0.0:15001 \
  --server "$node_ip:4443" --server-name localhost --ca ca.crt --cert client.crt --key client.key \
  --transparent --metrics-addr 127.0.0.1:15090 2> client.log & pids+=($!)
wait_ready 127.0.0.1:15090 "$pod"

step "No route yet: the server denies by default"
echo "app → $node_ip:7000: '$(app $node_ip:7000)'"
sleep 0.3; grep -h "connection refused" client.log | tail -n 1 | sed 's/^.*WARN //'

step "kubectl apply: allow the demo namespace to reach the echo service"
kubectl apply -f - <<YAML
apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {name: allow-echo, namespace: demo}
spec:
  destinations:
    - cidr: $node_ip/32
      ports: ["7000"]
  action: Allow
YAML
for _ in $(seq 50); do reply=$(app $node_ip:7000); [ -n "$reply" ] && break; sleep 0.1; done
echo "app → $node_ip:7000: '$reply'"
echo "app → $node_ip:7001: '$(app $node_ip:7001)' (no route: denied)"
kubectl wait -n demo tunnelroute/allow-echo --for=condition=Accepted --timeout=30s >/dev/null
kubectl get tunnelroutes -n demo

step "kubectl apply: a Deny that outranks it, in force for the very next connection"
kubectl apply -f - <<YAML
apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {name: freeze-echo, namespace: demo}
spec:
  priority: 10
  destinations:
    - cidr: $node_ip/32
      ports: ["7000"]
  action: Deny
YAML
for _ in $(seq 50); do reply=$(app $node_ip:7000); [ -z "$reply" ] && break; sleep 0.1; done
echo "app → $node_ip:7000: '$reply' (denied by demo/freeze-echo)"
sleep 0.3; grep -h "connection refused" client.log | tail -n 1 | sed 's/^.*WARN //'
kubectl delete -n demo tunnelroute freeze-echo
for _ in $(seq 50); do reply=$(app $node_ip:7000); [ -n "$reply" ] && break; sleep 0.1; done
echo "after kubectl delete: app → $node_ip:7000: '$reply'"

step "The server's view: one line per connection, with the pod's identity and original destination"
grep -h "connection closed" server.log | tail -n 3 | sed 's/^.*INFO //'

step "Injection: a namespace annotated warren.dev/inject=enabled, a Pod created through the API"
kubectl apply -f - <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: warren-demo}
webhooks:
  - name: inject.warren.dev
    clientConfig:
      url: https://127.0.0.1:$webhook_port/inject
      caBundle: $(base64 -w0 ca.crt)
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods], scope: Namespaced}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: demo}}
    sideEffects: None
    admissionReviewVersions: [v1]
    reinvocationPolicy: IfNeeded
    failurePolicy: Fail
YAML
kubectl annotate namespace demo warren.dev/inject=enabled
# The API server loads webhook configurations asynchronously: dry runs until it is in force.
for _ in $(seq 50); do
  kubectl -n demo run probe --image=registry.invalid/app:1 --restart=Never --dry-run=server -o yaml \
    | grep -q warren-proxy && break
  sleep 0.2
done
kubectl -n demo run web --image=registry.invalid/app:1 --restart=Never
grep -h "injection review" operator.log | grep 'demo/web' | head -n 1 | sed 's/^.*INFO //'
echo "containers of demo/web as stored: init $(kubectl -n demo get pod web \
  -o jsonpath='{range .spec.initContainers[*]}{.name}{" "}{end}')| app $(kubectl -n demo get pod web \
  -o jsonpath='{range .spec.containers[*]}{.name}{" "}{end}')"
kubectl -n demo get pod web -o jsonpath='{.spec.initContainers[1].restartPolicy}{"\n"}' \
  | sed 's/^/warren-proxy restartPolicy (a native sidecar): /'

step "Metrics"
curl -s "http://$server_admin/metrics" | grep -E '^warren_policy_decisions_total'
curl -s "http://$operator_admin/metrics" | grep -E '^warren_operator_(injection_reviews_total|leader)'

step "Done; stopping everything (processes, the pod's namespace, the control plane)"

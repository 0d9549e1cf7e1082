#!/usr/bin/env bash
# Builds (or reuses) the test control plane from upstream Go modules:
#   kube-apiserver and kubectl (k8s.io/kubernetes, wrapper module e2e/kube),
#   etcd (go.etcd.io/etcd/server/v3, wrapper module e2e/etcd),
#   helm (helm.sh/helm/v3, wrapper module e2e/helm).
#
# Binaries land in $WARREN_CACHE/e2e/<key>/bin, where <key> names the pins plus a hash of the
# wrapper sources, go.mod/go.sum files, this script and the Go version; nothing is rebuilt while
# that key is unchanged. $WARREN_CACHE/e2e/bin is a symlink to the current key's bin/, which is
# what cluster.sh and the Rust test support use.
#
# Go builds use the committed go.sum files (-mod=readonly), CGO_ENABLED=0 (static binaries) and
# the local toolchain; the module proxy is only needed when ~/go/pkg/mod is cold.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${WARREN_CACHE:-$here/../.cache}"
mkdir -p "$cache/e2e"
cache="$(cd "$cache" && pwd)"
# One build at a time per cache (two `make test` runs side by side would race on the rename).
exec 9>"$cache/e2e/.build.lock"
flock 9

export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-mod=readonly -buildvcs=false"
# A build cache of its own, removed once the binaries exist: Kubernetes leaves ~3 GB of objects
# behind, which only a rebuild of the same key (never needed, the binaries are kept) would reuse,
# and which a clean CI machine may not have the disk for.
# A GOCACHE set by the caller is theirs to keep.
if [ -z "${GOCACHE:-}" ]; then
  export GOCACHE="$cache/e2e/go-build"
  trap 'rm -rf "$GOCACHE"' EXIT
fi
# The image installs Go in /usr/local/go; a login-less environment may not have it on PATH.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "e2e/build.sh: go not found on PATH (need Go >= 1.26)" >&2; exit 1; }

inputs_hash() {
  (cd "$here" && cat versions.env build.sh kube/go.mod kube/go.sum kube/*/main.go \
    etcd/go.mod etcd/go.sum etcd/main.go helm/go.mod helm/go.sum && go env GOVERSION) |
    sha256sum | cut -c1-12
}
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_$(inputs_hash)"
dir="$cache/e2e/$key"
bin="$dir/bin"
times="$dir/build-times.txt"
mkdir -p "$bin"

# build NAME MODULE_DIR PACKAGE LDFLAGS: builds one binary unless it is already in $bin.
build() {
  local name="$1" mod="$2" pkg="$3" ldflags="$4"
  if [ -x "$bin/$name" ]; then
    return 0
  fi
  echo "e2e/build.sh: building $name ($pkg) ..."
  local start end
  start="$(date +%s)"
  (cd "$here/$mod" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/.$name.tmp" "$pkg")
  mv "$bin/.$name.tmp" "$bin/$name"
  end="$(date +%s)"
  echo "$name $((end - start))s $(date -u +%FT%TZ) $(go env GOVERSION)" >>"$times"
  echo "e2e/build.sh: built $name in $((end - start))s"
}

# Version stamps, as upstream's hack/lib/version.sh sets them, so that `--version`, discovery
# (/version) and `kubectl version` report the real release rather than v0.0.0-master.
k8s_minor="${K8S_VERSION#v1.}"
k8s_minor="${k8s_minor%%.*}"
k8s_build_date="2000-01-01T00:00:00Z"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$k8s_build_date"
done

# Helm's Makefile stamps its version and the Kubernetes version of its client-go (used for
# .Capabilities.KubeVersion and deprecation lint).
helm_kube_minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$here/helm/go.mod")"
[ -n "$helm_kube_minor" ] || { echo "e2e/build.sh: no k8s.io/client-go in helm/go.mod" >&2; exit 1; }
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_kube_minor"
done

total_start="$(date +%s)"
build kube-apiserver kube ./kube-apiserver "$k8s_ldflags"
build kubectl kube ./kubectl "$k8s_ldflags"
build etcd etcd . ""
build helm helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"

# Cheap self-check: each binary runs and reports the pinned version. (Output is captured
# first: `cmd | grep -q` would fail under pipefail when grep exits before cmd has written all.)
check() { # NAME EXPECTED COMMAND...
  local name="$1" want="$2" out
  shift 2
  out="$("$@" 2>&1)" || { echo "e2e/build.sh: $name failed: $out" >&2; exit 1; }
  [[ "$out" == *"$want"* ]] || { echo "e2e/build.sh: $name does not report $want: $out" >&2; exit 1; }
}
check kube-apiserver "Kubernetes $K8S_VERSION" "$bin/kube-apiserver" --version
check kubectl "Client Version: $K8S_VERSION" "$bin/kubectl" version --client
check etcd "etcd Version: ${ETCD_VERSION#v}" "$bin/etcd" --version
check helm "$HELM_VERSION" "$bin/helm" version --short

ln -sfn "$key/bin" "$cache/e2e/bin.tmp"
mv -T "$cache/e2e/bin.tmp" "$cache/e2e/bin"
# Older keys are ~250 MB each and unused once the pointer moved (running processes keep their
# deleted executables).
for old in "$cache"/e2e/k8s-*; do
  [ "$old" = "$dir" ] || rm -rf "$old"
done
echo "e2e/build.sh: binaries ready in $cache/e2e/bin -> $key/bin ($(($(date +%s) - total_start))s this run)"
# First-build times of this key, so a cached run still shows what a cold one costs.
[ -f "$times" ] && sed 's/^/e2e\/build.sh:   first build: /' "$times"
exit 0

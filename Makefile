# Warren's one task runner: CI runs exactly `make test` (through .ci/run).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
# Build outputs that survive between runs on one machine live in gitignored folders.
export WARREN_CACHE ?= $(CURDIR)/.cache
# Debian packages the tests use as real peers and tools.
DEB_PACKAGES := stunnel4 socat iperf3 curl iptables iproute2 openssl procps psmisc

.PHONY: all demo demo-loopback test deps lint build e2e-bins crds fuzz bench fmt clean

all: build

## demo: Warren's main job end to end on this machine (as root): a real kube-apiserver, TunnelRoutes
## applied with kubectl, a pod's outbound TCP captured and tunneled, the policy changed live, and
## the injection webhook; then everything it started is stopped.
demo: deps build e2e-bins
	bash docs/demo-kubernetes.sh

## demo-loopback: the tunnel alone on loopback: no Kubernetes, no root.
demo-loopback: deps build
	bash docs/demo.sh

## test: install what the tests need, then run every test.
test: deps lint build e2e-bins
	$(CARGO) test --workspace --locked -- --test-threads=2

## deps: install the Debian packages the tests use (root, apt-get).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

build:
	$(CARGO) build --workspace --locked --bins

## e2e-bins: build (or reuse) etcd, kube-apiserver, kubectl and helm from upstream Go modules.
e2e-bins:
	bash e2e/build.sh

## crds: regenerate crds/ (and the chart's copy) from the Rust types.
crds:
	$(CARGO) run -q -p warren-operator --bin crdgen > crds/warren.dev_tunnelroutes.yaml
	cp crds/warren.dev_tunnelroutes.yaml charts/warren/crds/

## fuzz: run each cargo-fuzz target for FUZZ_SECONDS (default 60) from its committed seeds.
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd sidecar/fuzz && for target in token_decode alpn_list; do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$target seeds/$$target -- -max_total_time=$(FUZZ_SECONDS); \
	done

## bench: compare Warren with stunnel and other peers; writes docs/benchmarks.md.
bench:
	bash bench/run.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

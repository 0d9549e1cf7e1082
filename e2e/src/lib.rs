//! Test support for Warren's tests against a real Kubernetes API server.
//!
//! `e2e/build.sh` builds etcd, kube-apiserver, kubectl and helm from their upstream Go modules;
//! `e2e/cluster.sh` starts etcd and kube-apiserver on loopback ports with a fresh PKI, RBAC,
//! service-account keys and the admission webhooks enabled (no kubelet and no
//! controller-manager, like envtest). This crate drives that script from Rust:
//!
//! - [`TestCluster::start`] starts a private control plane and stops it on drop;
//! - [`shared`] starts one control plane per test binary, shared by its tests, which isolate
//!   themselves with [`TestCluster::namespace`];
//! - [`TestCluster::client`], [`TestCluster::kubectl`] and [`TestCluster::helm`] talk to it.
//!
//! Nothing leaks when a test process dies: the script's supervisor watches the test process id
//! and tears the cluster (processes and data dir) down once it is gone. That is also how the
//! [`shared`] cluster, a static that is never dropped, is stopped.
//!
//! Missing binaries are an error telling to run `make e2e-bins`; tests never pass without them.

mod cluster;
mod crds;
mod error;
mod paths;
mod process;

pub use cluster::{TestCluster, shared};
pub use crds::{CRDS, install_crds, wait_established};
pub use error::Error;
pub use paths::bin_dir;

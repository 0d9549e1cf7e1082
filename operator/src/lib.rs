//! Warren's Kubernetes side.
//!
//! - [`api`]: the `TunnelRoute` custom resource (`warren.dev/v1alpha1`), the one definition
//!   shared by the tunnel server's file and Kubernetes policy sources and by the controller.
//! - [`controller`]: validates TunnelRoutes and writes their status and Events, run by the
//!   replica that holds the [`leader`] Lease.
//! - [`replica`]: one `warren-operator` replica — campaign, and the controller while leading;
//!   [`admin`] serves its `/metrics`, `/healthz` and `/readyz`.
//! - [`inject`]: what the injection webhook adds to a pod that asks for Warren.
//! - [`webhook`]: serves [`inject`] to the API server as a mutating admission webhook.
//! - [`routes_watch`]: TunnelRoutes watched live and compiled, for the tunnel server.
//! - [`reload`]: values rebuilt when their files change (certificates, policy files), shared
//!   with the tunnel.
//! - [`crd_yaml`]: the generated CRD manifest (`crds/` holds it; a test keeps it in sync).
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod controller;
pub mod inject;
pub mod leader;
pub mod metrics;
pub mod reload;
pub mod replica;
pub mod routes_watch;
pub mod webhook;

use kube::CustomResourceExt;

/// The header of generated CRD files.
pub const GENERATED_HEADER: &str =
    "# Generated from operator/src/api by `make crds` (the crdgen binary). DO NOT EDIT.\n";

/// The TunnelRoute CRD as YAML, with the generated-file header.
pub fn crd_yaml() -> String {
    let yaml =
        serde_yaml::to_string(&api::TunnelRoute::crd()).expect("a CRD always serializes to YAML");
    format!("{GENERATED_HEADER}{yaml}")
}

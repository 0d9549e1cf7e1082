//! Warren's Kubernetes side.
//!
//! - [`api`]: the `TunnelRoute` custom resource (`warren.dev/v1alpha1`), the one definition
//!   shared by the tunnel server's file and Kubernetes policy sources and by the controller.
#![forbid(unsafe_code)]

pub mod api;

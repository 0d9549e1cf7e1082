//! The connect callback: what the tunnel server does with an authenticated connection.
//!
//! The server asks a [`ConnectPolicy`] once per connection, after the handshake and before it
//! connects anywhere. Implementations: [`StaticPolicy`] (stunnel-style `--connect`) and
//! [`RoutesPolicy`], which decides from compiled TunnelRoutes loaded from a file ([`file`]) or
//! watched from the Kubernetes API ([`kubernetes`]).

pub mod file;
pub mod kubernetes;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;
use warren_core::policy::{self as engine, PolicyIndex};
use warren_core::verdict::VerdictCode;
use warren_core::{ClientIdentity, Destination};

use crate::admin::Readiness;

/// What the server knows about a connection when it asks the policy.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The identity from the client's verified certificate.
    pub identity: &'a ClientIdentity,
    /// The client's address.
    pub peer: SocketAddr,
    /// The destination the client asked for; `None` for plain TLS clients, which send no token.
    pub destination: Option<&'a Destination>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect to `target`, the requested destination (or the static one).
    Allow {
        /// Where to connect.
        target: Destination,
        /// The deciding route, if a route decided.
        route: Option<String>,
    },
    /// Connect to `target` instead of the requested destination.
    Redirect {
        /// Where to connect.
        target: Destination,
        /// The deciding route.
        route: String,
    },
    /// Refuse the connection.
    Deny {
        /// Why, as sent to the client.
        code: VerdictCode,
        /// The deciding route, if a route decided.
        route: Option<String>,
    },
}

/// The connect callback.
pub trait ConnectPolicy: Send + Sync + 'static {
    /// Decides what to do with one connection.
    fn decide<'a>(&'a self, request: ConnectRequest<'a>) -> BoxFuture<'a, Decision>;
}

// === impl Decision ===

impl Decision {
    /// A stable lower-case action name for logs and metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Redirect { .. } => "redirect",
            Decision::Deny { .. } => "deny",
        }
    }

    /// The deciding route's name, or `-`.
    pub fn route(&self) -> &str {
        match self {
            Decision::Allow { route, .. } | Decision::Deny { route, .. } => {
                route.as_deref().unwrap_or("-")
            }
            Decision::Redirect { route, .. } => route,
        }
    }
}

/// Forwards every connection to one fixed target, like stunnel's `connect`.
#[derive(Debug, Clone)]
pub struct StaticPolicy {
    /// The fixed target.
    pub target: Destination,
}

impl ConnectPolicy for StaticPolicy {
    fn decide<'a>(&'a self, _request: ConnectRequest<'a>) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            Decision::Allow {
                target: self.target.clone(),
                route: None,
            }
        })
    }
}

/// Decides from the current compiled TunnelRoutes, whatever their source.
pub struct RoutesPolicy {
    routes: watch::Receiver<Arc<PolicyIndex>>,
    /// False until the source has delivered a complete set of routes.
    synced: Readiness,
}

// === impl RoutesPolicy ===

impl RoutesPolicy {
    /// Decides from `routes`; connections are refused with
    /// [`VerdictCode::PolicyNotReady`] while `synced` is false.
    pub fn new(routes: watch::Receiver<Arc<PolicyIndex>>, synced: Readiness) -> Self {
        RoutesPolicy { routes, synced }
    }

    /// The decision for one request, synchronously (the index is in memory).
    pub fn decide_now(&self, request: ConnectRequest<'_>) -> Decision {
        if !self.synced.get() {
            return Decision::Deny {
                code: VerdictCode::PolicyNotReady,
                route: None,
            };
        }
        let Some(destination) = request.destination else {
            // Unreachable through the server, which refuses token-less clients in routes mode;
            // kept as a denial so that the policy never allows an unknown destination.
            return Decision::Deny {
                code: VerdictCode::NoRoute,
                route: None,
            };
        };
        let index = self.routes.borrow().clone();
        match index.decide(request.identity, destination) {
            engine::Decision::Allow { route } => Decision::Allow {
                target: destination.clone(),
                route: Some(route.to_string()),
            },
            engine::Decision::Redirect { to, route } => Decision::Redirect {
                target: to,
                route: route.to_string(),
            },
            engine::Decision::Deny { route: Some(route) } => Decision::Deny {
                code: VerdictCode::DeniedByRoute,
                route: Some(route.to_string()),
            },
            engine::Decision::Deny { route: None } => Decision::Deny {
                code: VerdictCode::NoRoute,
                route: None,
            },
        }
    }
}

impl ConnectPolicy for RoutesPolicy {
    fn decide<'a>(&'a self, request: ConnectRequest<'a>) -> BoxFuture<'a, Decision> {
        Box::pin(async move { self.decide_now(request) })
    }
}

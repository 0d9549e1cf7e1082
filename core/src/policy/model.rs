//! The engine's vocabulary: routes and decisions.

use std::fmt;
use std::sync::Arc;

use ipnet::IpNet;

use crate::destination::{Destination, validate_dns_name};

/// One route, as the engine sees it (converted from a `TunnelRoute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route's namespace: it only applies to clients of this namespace.
    pub namespace: String,
    /// The route's name.
    pub name: String,
    /// Higher wins.
    pub priority: i32,
    /// Which clients of the namespace.
    pub clients: ClientSelector,
    /// Which destinations; a connection matches if it matches any of them.
    pub destinations: Vec<DestinationMatch>,
    /// What to do.
    pub action: Action,
}

/// Which clients of the route's namespace a route applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSelector {
    /// Every service account of the namespace.
    AllInNamespace,
    /// Only these service accounts.
    ServiceAccounts(Vec<String>),
}

/// One destination criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationMatch {
    /// The address or name.
    pub target: TargetMatch,
    /// Ports; empty means all ports.
    pub ports: Vec<PortRange>,
}

/// An address range or a host name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetMatch {
    /// IP destinations inside this network.
    Cidr(IpNet),
    /// DNS-name destinations matching this pattern.
    Host(HostPattern),
}

/// A DNS name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name.
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix` (not `suffix` itself). Holds the suffix.
    Wildcard(String),
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connect to the requested destination.
    Allow,
    /// Refuse.
    Deny,
    /// Connect to `host` (an IP or DNS name) instead, on `port` or else the requested port.
    Redirect {
        /// The new host.
        host: String,
        /// The new port; `None` keeps the requested one.
        port: Option<u16>,
    },
}

/// A route's `namespace/name`, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteName(Arc<str>);

/// The engine's answer for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect to the requested destination.
    Allow {
        /// The deciding route.
        route: RouteName,
    },
    /// Connect to `to` instead.
    Redirect {
        /// Where to connect.
        to: Destination,
        /// The deciding route.
        route: RouteName,
    },
    /// Refuse.
    Deny {
        /// The deciding route; `None` when no route matched (default deny).
        route: Option<RouteName>,
    },
}

// === impl Route ===

impl Route {
    /// The route's `namespace/name`.
    pub fn full_name(&self) -> RouteName {
        RouteName(format!("{}/{}", self.namespace, self.name).into())
    }
}

// === impl ClientSelector ===

impl ClientSelector {
    /// Whether the selector covers `service_account`.
    pub fn matches(&self, service_account: &str) -> bool {
        match self {
            ClientSelector::AllInNamespace => true,
            ClientSelector::ServiceAccounts(accounts) => {
                accounts.iter().any(|a| a == service_account)
            }
        }
    }
}

// === impl HostPattern ===

impl HostPattern {
    /// Parses `name` or `*.suffix`, lower-casing it; `None` if it is not a valid pattern.
    pub fn parse(pattern: &str) -> Option<Self> {
        let pattern = pattern
            .strip_suffix('.')
            .unwrap_or(pattern)
            .to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => validate_dns_name(suffix)
                .ok()
                .map(|()| HostPattern::Wildcard(suffix.to_owned())),
            None => validate_dns_name(&pattern)
                .ok()
                .map(|()| HostPattern::Exact(pattern)),
        }
    }

    /// Whether `host` (lower-case) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

// === impl PortRange ===

impl PortRange {
    /// A single port.
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Whether `port` is inside.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// Whether two ranges share a port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// How many ports it covers.
    pub fn width(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

// === impl RouteName ===

impl RouteName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

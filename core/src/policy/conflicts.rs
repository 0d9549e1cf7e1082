//! Routes that contradict each other: same priority, same clients, overlapping destinations,
//! one denying what the other lets through. Precedence still decides (Deny wins the tie), but
//! such a pair is almost always a mistake, so the controller reports it.

use super::model::{
    Action, ClientSelector, DestinationMatch, HostPattern, Route, RouteName, TargetMatch,
};

/// Two conflicting routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The route that denies.
    pub deny: RouteName,
    /// The route that allows or redirects.
    pub allow: RouteName,
}

/// Every conflicting pair in `routes`.
pub fn conflicts(routes: &[Route]) -> Vec<Conflict> {
    let mut found = Vec::new();
    for deny in routes.iter().filter(|r| r.action == Action::Deny) {
        for allow in routes.iter().filter(|r| r.action != Action::Deny) {
            if deny.namespace == allow.namespace
                && deny.priority == allow.priority
                && clients_overlap(&deny.clients, &allow.clients)
                && deny.destinations.iter().any(|d| {
                    allow
                        .destinations
                        .iter()
                        .any(|a| destinations_overlap(d, a))
                })
            {
                found.push(Conflict {
                    deny: deny.full_name(),
                    allow: allow.full_name(),
                });
            }
        }
    }
    found
}

fn clients_overlap(a: &ClientSelector, b: &ClientSelector) -> bool {
    match (a, b) {
        (ClientSelector::ServiceAccounts(x), ClientSelector::ServiceAccounts(y)) => {
            x.iter().any(|sa| y.contains(sa))
        }
        _ => true,
    }
}

fn destinations_overlap(a: &DestinationMatch, b: &DestinationMatch) -> bool {
    let ports = a.ports.is_empty()
        || b.ports.is_empty()
        || a.ports
            .iter()
            .any(|p| b.ports.iter().any(|q| p.overlaps(q)));
    let targets = match (&a.target, &b.target) {
        (TargetMatch::Cidr(x), TargetMatch::Cidr(y)) => x.contains(y) || y.contains(x),
        (TargetMatch::Host(x), TargetMatch::Host(y)) => hosts_overlap(x, y),
        _ => false,
    };
    ports && targets
}

fn hosts_overlap(a: &HostPattern, b: &HostPattern) -> bool {
    match (a, b) {
        (HostPattern::Exact(x), HostPattern::Exact(y)) => x == y,
        (HostPattern::Wildcard(_), HostPattern::Exact(name)) => a.matches(name),
        (HostPattern::Exact(name), HostPattern::Wildcard(_)) => b.matches(name),
        (HostPattern::Wildcard(x), HostPattern::Wildcard(y)) => {
            x == y || x.ends_with(&format!(".{y}")) || y.ends_with(&format!(".{x}"))
        }
    }
}

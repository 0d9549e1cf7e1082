//! The compiled routes: per destination kind, a map from what a destination can look like to
//! the route entries that may match it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::model::HostPattern;
use super::model::{Action, ClientSelector, Decision, PortRange, Route, RouteName, TargetMatch};
use crate::destination::Destination;
use crate::identity::{ClientIdentity, SpiffeId};

/// Compiled, immutable routes; share it in an `Arc` and replace it whole on change.
#[derive(Debug, Default)]
pub struct PolicyIndex {
    trust_domain: String,
    routes: usize,
    entries: Vec<Entry>,
    v4: PrefixMap<u32>,
    v6: PrefixMap<u128>,
    exact_hosts: HashMap<String, Vec<u32>>,
    wildcard_hosts: HashMap<String, Vec<u32>>,
}

/// One destination criterion of one route.
#[derive(Debug)]
struct Entry {
    name: RouteName,
    namespace: Arc<str>,
    clients: Arc<ClientSelector>,
    action: Arc<Action>,
    priority: i32,
    ports: Vec<PortRange>,
    /// Higher is more specific: the CIDR prefix length, or for hosts see `host_specificity`.
    target_specificity: u32,
}

/// The precedence key of a candidate; the greatest wins.
type Rank<'a> = (
    i32,
    u32,
    std::cmp::Reverse<u32>,
    bool,
    std::cmp::Reverse<&'a RouteName>,
);

/// Exact-prefix hash maps, probed from the longest prefix length in use to the shortest.
#[derive(Debug, Default)]
struct PrefixMap<A> {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    by_prefix: HashMap<(A, u8), Vec<u32>>,
}

// === impl PolicyIndex ===

impl PolicyIndex {
    /// Compiles `routes` for clients of `trust_domain`.
    pub fn new(trust_domain: &str, routes: Vec<Route>) -> Self {
        let mut index = PolicyIndex {
            trust_domain: trust_domain.to_owned(),
            routes: routes.len(),
            ..Default::default()
        };
        for route in routes {
            let name = route.full_name();
            let namespace: Arc<str> = route.namespace.as_str().into();
            let clients = Arc::new(route.clients);
            let action = Arc::new(route.action);
            for destination in route.destinations {
                let id = index.entries.len() as u32;
                let target_specificity = match &destination.target {
                    TargetMatch::Cidr(net) => {
                        let net = net.trunc();
                        match net.network() {
                            IpAddr::V4(a) => index.v4.insert(u32::from(a), net.prefix_len(), id),
                            IpAddr::V6(a) => index.v6.insert(u128::from(a), net.prefix_len(), id),
                        }
                        u32::from(net.prefix_len())
                    }
                    TargetMatch::Host(pattern) => {
                        let (map, key) = match pattern {
                            HostPattern::Exact(h) => (&mut index.exact_hosts, h.clone()),
                            HostPattern::Wildcard(s) => (&mut index.wildcard_hosts, s.clone()),
                        };
                        map.entry(key).or_default().push(id);
                        host_specificity(pattern)
                    }
                };
                index.entries.push(Entry {
                    name: name.clone(),
                    namespace: namespace.clone(),
                    clients: clients.clone(),
                    action: action.clone(),
                    priority: route.priority,
                    ports: destination.ports,
                    target_specificity,
                });
            }
        }
        index
    }

    /// The number of routes compiled.
    pub fn len(&self) -> usize {
        self.routes
    }

    /// Whether there are no routes (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Decides what to do with a connection from `client` to `destination`.
    pub fn decide(&self, client: &ClientIdentity, destination: &Destination) -> Decision {
        let Some(id) = client
            .spiffe()
            .filter(|id| id.trust_domain == self.trust_domain)
        else {
            return Decision::Deny { route: None };
        };
        let port = destination.port();
        let mut best: Option<(Rank<'_>, &Entry)> = None;
        let mut consider = |candidates: &[u32]| {
            for &i in candidates {
                let entry = &self.entries[i as usize];
                if let Some(rank) = entry.rank(&id, port)
                    && best.as_ref().is_none_or(|(b, _)| rank > *b)
                {
                    best = Some((rank, entry));
                }
            }
        };
        match destination {
            Destination::Ip(addr) => match addr.ip() {
                IpAddr::V4(a) => self.v4.each_match(u32::from(a), 32, &mut consider),
                IpAddr::V6(a) => self.v6.each_match(u128::from(a), 128, &mut consider),
            },
            Destination::Name { host, .. } => {
                if let Some(ids) = self.exact_hosts.get(host) {
                    consider(ids);
                }
                // Every proper suffix after a dot: a.b.example.com → b.example.com, example.com, com.
                let mut rest = host.as_str();
                while let Some((_, suffix)) = rest.split_once('.') {
                    if let Some(ids) = self.wildcard_hosts.get(suffix) {
                        consider(ids);
                    }
                    rest = suffix;
                }
            }
        }
        let Some((_, entry)) = best else {
            return Decision::Deny { route: None };
        };
        let route = entry.name.clone();
        match entry.action.as_ref() {
            Action::Allow => Decision::Allow { route },
            Action::Deny => Decision::Deny { route: Some(route) },
            Action::Redirect {
                host,
                port: new_port,
            } => {
                match Destination::from_host_port(host, new_port.unwrap_or(port)) {
                    Ok(to) => Decision::Redirect { to, route },
                    // Conversion validates redirect targets, so this only guards hand-built routes.
                    Err(_) => Decision::Deny { route: Some(route) },
                }
            }
        }
    }
}

// === impl Entry ===

impl Entry {
    /// The entry's rank if it applies to this client and port.
    fn rank(&self, id: &SpiffeId<'_>, port: u16) -> Option<Rank<'_>> {
        if *self.namespace != *id.namespace || !self.clients.matches(id.service_account) {
            return None;
        }
        let port_width = if self.ports.is_empty() {
            65_536
        } else {
            self.ports
                .iter()
                .filter(|r| r.contains(port))
                .map(PortRange::width)
                .min()?
        };
        Some((
            self.priority,
            self.target_specificity,
            std::cmp::Reverse(port_width),
            matches!(*self.action, Action::Deny),
            std::cmp::Reverse(&self.name),
        ))
    }
}

/// Exact names beat every wildcard; longer wildcard suffixes beat shorter ones.
fn host_specificity(pattern: &HostPattern) -> u32 {
    match pattern {
        HostPattern::Exact(_) => u32::MAX,
        HostPattern::Wildcard(suffix) => suffix.len() as u32,
    }
}

// === impl PrefixMap ===

impl<A> PrefixMap<A>
where
    A: Copy + Eq + std::hash::Hash + Mask,
{
    fn insert(&mut self, network: A, len: u8, id: u32) {
        self.by_prefix.entry((network, len)).or_default().push(id);
        if let Err(at) = self.lengths.binary_search_by(|l| len.cmp(l)) {
            self.lengths.insert(at, len);
        }
    }

    fn each_match(&self, addr: A, bits: u8, mut f: impl FnMut(&[u32])) {
        for &len in &self.lengths {
            if let Some(ids) = self.by_prefix.get(&(addr.mask(len, bits), len)) {
                f(ids);
            }
        }
    }
}

/// Keeping the first `len` of `bits` bits of an address.
trait Mask {
    fn mask(self, len: u8, bits: u8) -> Self;
}

impl Mask for u32 {
    fn mask(self, len: u8, bits: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (bits - len))
        }
    }
}

impl Mask for u128 {
    fn mask(self, len: u8, bits: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (bits - len))
        }
    }
}

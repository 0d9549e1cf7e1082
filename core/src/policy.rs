//! The policy engine: routes, their compiled index, and the decision for one connection.
//!
//! A [`Route`] says which clients (service accounts of its namespace), which destinations
//! (CIDRs or DNS names, with ports) and what to do (allow, deny, redirect). [`PolicyIndex`]
//! compiles a set of routes so that a decision looks up only the routes whose destination can
//! match, instead of scanning them all.
//!
//! Precedence, when several routes match one connection (documented in `docs/policy.md`):
//! 1. higher `priority`;
//! 2. more specific destination: a longer CIDR prefix; an exact host over a wildcard, a longer
//!    wildcard suffix over a shorter one;
//! 3. narrower matching port range (a single port over a range, a range over all ports);
//! 4. `Deny` over `Allow` and `Redirect`;
//! 5. route name (`namespace/name`), alphabetically first — only so that the outcome never
//!    depends on load order.
//!
//! No matching route: deny (default deny).

mod conflicts;
mod index;
mod model;

pub use conflicts::{Conflict, conflicts};
pub use index::PolicyIndex;
pub use model::{
    Action, ClientSelector, Decision, DestinationMatch, HostPattern, PortRange, Route, RouteName,
    TargetMatch,
};

#[cfg(test)]
mod tests;

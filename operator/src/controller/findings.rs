//! What the controller finds about one route among the routes of its namespace: a pure function
//! of reflector contents, tested without a cluster.

use std::sync::Arc;

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use warren_core::policy::{Route, conflicts};

use super::status::Findings;
use crate::api::TunnelRoute;

/// A TunnelRoute, or the metadata and error of one this build cannot decode.
pub type Guarded = DeserializeGuard<TunnelRoute>;

/// `namespace/name` of an object.
pub fn full_name(object: &Guarded) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The engine's route for `object`, or why there is none.
fn convert(object: &Guarded) -> Result<Route, String> {
    match &object.0 {
        Ok(route) => Route::try_from(route).map_err(|e| e.problem),
        Err(undecodable) => Err(format!(
            "this warren-operator cannot decode the route (written for a newer API?): {undecodable}"
        )),
    }
}

/// Validation of `route`, and the routes of its namespace it conflicts with (`all` may include
/// `route` itself and other namespaces).
pub fn findings(route: &Guarded, all: &[Arc<Guarded>]) -> Findings {
    let name = full_name(route);
    let this = match convert(route) {
        Ok(this) => this,
        Err(problem) => {
            return Findings {
                valid: Err(problem),
                conflicts_with: vec![],
            };
        }
    };
    let mut neighbours: Vec<Route> = all
        .iter()
        .filter(|r| r.namespace() == route.namespace() && r.name_any() != route.name_any())
        .filter_map(|r| convert(r).ok())
        .collect();
    neighbours.push(this);
    let mut conflicts_with = Vec::new();
    for conflict in conflicts(&neighbours) {
        let (deny, allow) = (conflict.deny.to_string(), conflict.allow.to_string());
        if deny == name {
            conflicts_with.push(allow);
        } else if allow == name {
            conflicts_with.push(deny);
        }
    }
    conflicts_with.sort();
    conflicts_with.dedup();
    Findings {
        valid: Ok(()),
        conflicts_with,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, action: &str, cidr: &str) -> Arc<Guarded> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "warren.dev/v1alpha1", "kind": "TunnelRoute",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"destinations": [{"cidr": cidr}], "action": action},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn finds_invalid_routes_and_conflicts_in_the_namespace() {
        let allow = route("allow", "Allow", "10.0.0.0/8");
        let deny = route("deny", "Deny", "10.1.0.0/16");
        let broken = route("broken", "Allow", "10.0.0.0/33");
        let future = route("future", "Mirror", "10.0.0.0/8");
        let all = vec![allow.clone(), deny.clone(), broken.clone(), future.clone()];
        let f = findings(&allow, &all);
        assert_eq!(f.valid, Ok(()));
        assert_eq!(f.conflicts_with, vec!["shop/deny".to_owned()]);
        let f = findings(&deny, &all);
        assert_eq!(f.conflicts_with, vec!["shop/allow".to_owned()]);
        let f = findings(&broken, &all);
        assert!(f.valid.unwrap_err().contains("cidr"));
        let f = findings(&future, &all);
        assert!(f.valid.unwrap_err().contains("Mirror"));
    }

    #[test]
    fn other_namespaces_never_conflict() {
        let allow = route("allow", "Allow", "10.0.0.0/8");
        let mut elsewhere = (*route("deny", "Deny", "10.1.0.0/16")).clone();
        elsewhere.0.as_mut().unwrap().metadata.namespace = Some("other".into());
        let f = findings(&allow, &[allow.clone(), Arc::new(elsewhere)]);
        assert!(f.conflicts_with.is_empty());
    }
}

//! From the API object to the engine's route, with the checks the schema cannot make.

use kube::ResourceExt;
use warren_core::destination::{Destination, validate_dns_name};
use warren_core::policy::{
    Action, ClientSelector, DestinationMatch, HostPattern, PortRange, Route, TargetMatch,
};

use super::{RouteAction, TunnelRoute};

/// Why a TunnelRoute is invalid; the message starts with `namespace/name`.
#[derive(Debug, thiserror::Error)]
#[error("TunnelRoute {route}: {problem}")]
pub struct RouteError {
    /// `namespace/name`.
    pub route: String,
    /// What is wrong.
    pub problem: String,
}

impl TryFrom<&TunnelRoute> for Route {
    type Error = RouteError;

    fn try_from(object: &TunnelRoute) -> Result<Self, RouteError> {
        let namespace = object.namespace().unwrap_or_else(|| "default".to_owned());
        let name = object.name_any();
        let fail = |problem: String| RouteError {
            route: format!("{namespace}/{name}"),
            problem,
        };
        let spec = &object.spec;
        if spec.destinations.is_empty() {
            return Err(fail(
                "spec.destinations: at least one destination is required".into(),
            ));
        }
        let mut destinations = Vec::with_capacity(spec.destinations.len());
        for (i, d) in spec.destinations.iter().enumerate() {
            let at = format!("spec.destinations[{i}]");
            let target = match (&d.cidr, &d.host) {
                (Some(cidr), None) => TargetMatch::Cidr(
                    cidr.parse()
                        .map_err(|_| fail(format!("{at}.cidr: {cidr:?} is not a CIDR")))?,
                ),
                (None, Some(host)) => {
                    TargetMatch::Host(HostPattern::parse(host).ok_or_else(|| {
                        fail(format!("{at}.host: {host:?} is not a DNS name or *.suffix"))
                    })?)
                }
                _ => return Err(fail(format!("{at}: give exactly one of cidr or host"))),
            };
            let ports = d
                .ports
                .iter()
                .map(|p| parse_port_range(&p.0).map_err(|why| fail(format!("{at}.ports: {why}"))))
                .collect::<Result<_, _>>()?;
            destinations.push(DestinationMatch { target, ports });
        }
        let action = match (spec.action, &spec.redirect) {
            (RouteAction::Allow, None) => Action::Allow,
            (RouteAction::Deny, None) => Action::Deny,
            (RouteAction::Redirect, Some(redirect)) => {
                let host = redirect.host.trim_start_matches('[').trim_end_matches(']');
                if host.parse::<std::net::IpAddr>().is_err() {
                    validate_dns_name(&host.to_ascii_lowercase())
                        .map_err(|why| fail(format!("spec.redirect.host {host:?}: {why}")))?;
                }
                if redirect.port == Some(0) {
                    return Err(fail("spec.redirect.port: 0 is not a port".into()));
                }
                // Checks the host and port combine into a destination.
                Destination::from_host_port(host, redirect.port.unwrap_or(1))
                    .map_err(|e| fail(format!("spec.redirect: {e}")))?;
                Action::Redirect {
                    host: host.to_owned(),
                    port: redirect.port,
                }
            }
            (RouteAction::Redirect, None) => {
                return Err(fail(
                    "spec.redirect is required when action is Redirect".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(fail(
                    "spec.redirect is only allowed when action is Redirect".into(),
                ));
            }
        };
        let clients = match &spec.clients {
            None => ClientSelector::AllInNamespace,
            Some(c) if c.service_accounts.is_empty() => {
                return Err(fail(
                    "spec.clients.serviceAccounts: list at least one, or omit clients".into(),
                ));
            }
            Some(c) => ClientSelector::ServiceAccounts(c.service_accounts.clone()),
        };
        Ok(Route {
            namespace,
            name,
            priority: spec.priority,
            clients,
            destinations,
            action,
        })
    }
}

/// Parses `"443"` or `"8000-8080"`.
fn parse_port_range(spec: &str) -> Result<PortRange, String> {
    let port = |s: &str| match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{spec:?}: ports are 1-65535")),
    };
    match spec.split_once('-') {
        None => port(spec).map(PortRange::single),
        Some((first, last)) => {
            let (first, last) = (port(first)?, port(last)?);
            if first > last {
                return Err(format!("{spec:?}: range runs backwards"));
            }
            Ok(PortRange { first, last })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_routes_yaml;

    fn convert(yaml: &str) -> Result<Route, String> {
        let routes = parse_routes_yaml(yaml).map_err(|e| e.to_string())?;
        Route::try_from(&routes[0]).map_err(|e| e.to_string())
    }

    #[test]
    fn converts_a_full_route() {
        let route = convert(
            "apiVersion: warren.dev/v1alpha1
kind: TunnelRoute
metadata: {name: r, namespace: shop}
spec:
  priority: 5
  clients: {serviceAccounts: [api]}
  destinations:
    - {cidr: 10.0.0.0/8, ports: [\"443\", \"8000-8080\"]}
    - {host: \"*.example.com\"}
  action: Redirect
  redirect: {host: egress.internal, port: 8443}
",
        )
        .unwrap();
        assert_eq!(route.namespace, "shop");
        assert_eq!(route.priority, 5);
        assert_eq!(
            route.destinations[0].ports,
            vec![
                PortRange::single(443),
                PortRange {
                    first: 8000,
                    last: 8080
                }
            ]
        );
        assert_eq!(
            route.action,
            Action::Redirect {
                host: "egress.internal".into(),
                port: Some(8443)
            }
        );
    }

    #[test]
    fn explains_invalid_routes() {
        let base = "apiVersion: warren.dev/v1alpha1\nkind: TunnelRoute\nmetadata: {name: r, namespace: shop}\nspec:\n";
        let cases = [
            (
                "  destinations: [{cidr: 10.0.0.0/33}]\n  action: Allow\n",
                "shop/r: spec.destinations[0].cidr",
            ),
            (
                "  destinations: [{cidr: 10.0.0.0/8, host: a.b}]\n  action: Allow\n",
                "exactly one of cidr or host",
            ),
            (
                "  destinations: [{host: \"a b\"}]\n  action: Allow\n",
                "spec.destinations[0].host",
            ),
            (
                "  destinations: [{cidr: 10.0.0.0/8, ports: [\"90-80\"]}]\n  action: Allow\n",
                "runs backwards",
            ),
            (
                "  destinations: [{cidr: 10.0.0.0/8, ports: [\"0\"]}]\n  action: Allow\n",
                "ports are 1-65535",
            ),
            (
                "  destinations: [{cidr: 10.0.0.0/8}]\n  action: Redirect\n",
                "spec.redirect is required",
            ),
            (
                "  destinations: [{cidr: 10.0.0.0/8}]\n  action: Deny\n  redirect: {host: a.b}\n",
                "only allowed",
            ),
            (
                "  destinations: []\n  action: Allow\n",
                "at least one destination",
            ),
            (
                "  destinations: [{cidr: 10.0.0.0/8}]\n  action: Sometimes\n",
                "unknown variant",
            ),
        ];
        for (spec, want) in cases {
            let err = convert(&format!("{base}{spec}")).unwrap_err();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
    }

    #[test]
    fn route_files_are_checked_per_document() {
        let two = "---\napiVersion: warren.dev/v1alpha1\nkind: TunnelRoute\nmetadata: {name: a}\nspec: {destinations: [{cidr: 10.0.0.0/8}], action: Allow}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let err = parse_routes_yaml(two).unwrap_err().to_string();
        assert!(
            err.contains("document 3") && err.contains("ConfigMap"),
            "{err}"
        );
        let dup = "apiVersion: warren.dev/v1alpha1\nkind: TunnelRoute\nmetadata: {name: a}\nspec: {destinations: [{cidr: 10.0.0.0/8}], action: Allow}\n---\napiVersion: warren.dev/v1alpha1\nkind: TunnelRoute\nmetadata: {name: a, namespace: default}\nspec: {destinations: [{cidr: 10.0.0.0/8}], action: Deny}\n";
        let err = parse_routes_yaml(dup).unwrap_err().to_string();
        assert!(err.contains("duplicate TunnelRoute default/a"), "{err}");
        assert!(parse_routes_yaml("").unwrap().is_empty());
        let routes = parse_routes_yaml(&two[..two.find("---\n---").unwrap()]).unwrap();
        assert_eq!(routes[0].metadata.namespace.as_deref(), Some("default"));
    }
}

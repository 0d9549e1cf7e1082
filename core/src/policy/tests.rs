use super::*;
use crate::{ClientIdentity, Destination};

fn id(ns: &str, sa: &str) -> ClientIdentity {
    ClientIdentity {
        uri: Some(format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")),
        dns_names: vec![],
    }
}

fn dest(s: &str) -> Destination {
    s.parse().unwrap()
}

fn ports(spec: &[(u16, u16)]) -> Vec<PortRange> {
    spec.iter()
        .map(|&(first, last)| PortRange { first, last })
        .collect()
}

fn cidr(name: &str, priority: i32, net: &str, port_spec: &[(u16, u16)], action: Action) -> Route {
    Route {
        namespace: "shop".into(),
        name: name.into(),
        priority,
        clients: ClientSelector::AllInNamespace,
        destinations: vec![DestinationMatch {
            target: TargetMatch::Cidr(net.parse().unwrap()),
            ports: ports(port_spec),
        }],
        action,
    }
}

fn host(name: &str, priority: i32, pattern: &str, action: Action) -> Route {
    Route {
        namespace: "shop".into(),
        name: name.into(),
        priority,
        clients: ClientSelector::AllInNamespace,
        destinations: vec![DestinationMatch {
            target: TargetMatch::Host(HostPattern::parse(pattern).unwrap()),
            ports: vec![],
        }],
        action,
    }
}

/// The route that decides, or "default-deny".
fn winner(routes: Vec<Route>, client: &ClientIdentity, to: &str) -> String {
    match PolicyIndex::new("cluster.local", routes).decide(client, &dest(to)) {
        Decision::Allow { route } => format!("allow:{route}"),
        Decision::Redirect { to, route } => format!("redirect:{route}->{to}"),
        Decision::Deny { route: Some(route) } => format!("deny:{route}"),
        Decision::Deny { route: None } => "default-deny".into(),
    }
}

#[test]
fn precedence_table() {
    let api = id("shop", "api");
    let cases: Vec<(&str, Vec<Route>, &str, &str)> = vec![
        ("nothing matches", vec![], "10.0.0.1:80", "default-deny"),
        (
            "higher priority wins over specificity",
            vec![
                cidr("wide", 10, "10.0.0.0/8", &[], Action::Allow),
                cidr("narrow", 0, "10.0.0.1/32", &[], Action::Deny),
            ],
            "10.0.0.1:80",
            "allow:shop/wide",
        ),
        (
            "longer prefix wins at equal priority",
            vec![
                cidr("wide", 0, "10.0.0.0/8", &[], Action::Deny),
                cidr("narrow", 0, "10.1.0.0/16", &[], Action::Allow),
            ],
            "10.1.2.3:80",
            "allow:shop/narrow",
        ),
        (
            "narrower port range wins at equal prefix",
            vec![
                cidr("range", 0, "10.0.0.0/8", &[(1, 1024)], Action::Deny),
                cidr("single", 0, "10.0.0.0/8", &[(443, 443)], Action::Allow),
            ],
            "10.0.0.1:443",
            "allow:shop/single",
        ),
        (
            "explicit ports beat all ports",
            vec![
                cidr("all", 0, "10.0.0.0/8", &[], Action::Allow),
                cidr("ranged", 0, "10.0.0.0/8", &[(8000, 8080)], Action::Deny),
            ],
            "10.0.0.1:8001",
            "deny:shop/ranged",
        ),
        (
            "deny wins a full tie",
            vec![
                cidr("b-allow", 0, "10.0.0.0/8", &[], Action::Allow),
                cidr("a-deny", 0, "10.0.0.0/8", &[], Action::Deny),
            ],
            "10.0.0.1:80",
            "deny:shop/a-deny",
        ),
        (
            "name breaks a tie of equal actions",
            vec![
                cidr("b", 0, "10.0.0.0/8", &[], Action::Allow),
                cidr("a", 0, "10.0.0.0/8", &[], Action::Allow),
            ],
            "10.0.0.1:80",
            "allow:shop/a",
        ),
        (
            "port outside every range does not match",
            vec![cidr(
                "web",
                0,
                "10.0.0.0/8",
                &[(80, 80), (443, 443)],
                Action::Allow,
            )],
            "10.0.0.1:22",
            "default-deny",
        ),
        (
            "redirect keeps the requested port when none is given",
            vec![cidr(
                "move",
                0,
                "10.0.0.0/8",
                &[],
                Action::Redirect {
                    host: "192.168.9.9".into(),
                    port: None,
                },
            )],
            "10.0.0.1:5432",
            "redirect:shop/move->192.168.9.9:5432",
        ),
        (
            "redirect to a name and port",
            vec![cidr(
                "move",
                0,
                "10.0.0.0/8",
                &[],
                Action::Redirect {
                    host: "egress.internal".into(),
                    port: Some(8443),
                },
            )],
            "10.0.0.1:443",
            "redirect:shop/move->egress.internal:8443",
        ),
    ];
    for (what, routes, to, want) in cases {
        assert_eq!(winner(routes, &api, to), want, "{what}");
    }
}

#[test]
fn ipv6_and_overlapping_cidrs() {
    let api = id("shop", "api");
    let routes = || {
        vec![
            cidr("v6-wide", 0, "fd00::/8", &[], Action::Allow),
            cidr("v6-narrow", 0, "fd00:1::/32", &[], Action::Deny),
            cidr("v4-all", 0, "0.0.0.0/0", &[], Action::Allow),
        ]
    };
    assert_eq!(
        winner(routes(), &api, "[fd00:1::5]:80"),
        "deny:shop/v6-narrow"
    );
    assert_eq!(
        winner(routes(), &api, "[fd00:2::5]:80"),
        "allow:shop/v6-wide"
    );
    assert_eq!(winner(routes(), &api, "[2001:db8::1]:80"), "default-deny");
    assert_eq!(
        winner(routes(), &api, "203.0.113.7:80"),
        "allow:shop/v4-all"
    );
    // A CIDR written with host bits set still means its network.
    let sloppy = vec![cidr("sloppy", 0, "10.1.2.3/16", &[], Action::Allow)];
    assert_eq!(winner(sloppy, &api, "10.1.9.9:80"), "allow:shop/sloppy");
}

#[test]
fn dns_names_and_wildcards() {
    let api = id("shop", "api");
    let routes = || {
        vec![
            host("any-example", 0, "*.example.com", Action::Allow),
            host("deeper", 0, "*.internal.example.com", Action::Deny),
            host("exact", 0, "secret.internal.example.com", Action::Allow),
        ]
    };
    assert_eq!(
        winner(routes(), &api, "www.example.com:443"),
        "allow:shop/any-example"
    );
    assert_eq!(
        winner(routes(), &api, "a.b.example.com:443"),
        "allow:shop/any-example"
    );
    assert_eq!(
        winner(routes(), &api, "db.internal.example.com:443"),
        "deny:shop/deeper"
    );
    assert_eq!(
        winner(routes(), &api, "secret.internal.example.com:443"),
        "allow:shop/exact"
    );
    assert_eq!(winner(routes(), &api, "example.com:443"), "default-deny");
    assert_eq!(winner(routes(), &api, "notexample.com:443"), "default-deny");
    // A name route never matches an IP destination and vice versa.
    assert_eq!(winner(routes(), &api, "10.0.0.1:443"), "default-deny");
    let by_ip = vec![cidr("all", 0, "0.0.0.0/0", &[], Action::Allow)];
    assert_eq!(winner(by_ip, &api, "www.example.com:443"), "default-deny");
}

#[test]
fn identities() {
    let mut only_api = cidr("api-only", 0, "0.0.0.0/0", &[], Action::Allow);
    only_api.clients = ClientSelector::ServiceAccounts(vec!["api".into()]);
    let routes = || vec![only_api.clone()];
    assert_eq!(
        winner(routes(), &id("shop", "api"), "10.0.0.1:80"),
        "allow:shop/api-only"
    );
    assert_eq!(
        winner(routes(), &id("shop", "web"), "10.0.0.1:80"),
        "default-deny"
    );
    assert_eq!(
        winner(routes(), &id("other", "api"), "10.0.0.1:80"),
        "default-deny"
    );
    let foreign = ClientIdentity {
        uri: Some("spiffe://elsewhere.example/ns/shop/sa/api".into()),
        dns_names: vec![],
    };
    assert_eq!(winner(routes(), &foreign, "10.0.0.1:80"), "default-deny");
    assert_eq!(
        winner(routes(), &ClientIdentity::default(), "10.0.0.1:80"),
        "default-deny"
    );
}

#[test]
fn finds_conflicts() {
    let allow = cidr("allow", 0, "10.0.0.0/8", &[(80, 90)], Action::Allow);
    let deny = cidr("deny", 0, "10.1.0.0/16", &[(85, 85)], Action::Deny);
    let other_priority = cidr("later", 1, "10.1.0.0/16", &[], Action::Deny);
    let other_ports = cidr("ssh", 0, "10.1.0.0/16", &[(22, 22)], Action::Deny);
    let found = conflicts(&[allow, deny, other_priority, other_ports]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].deny.as_str(), "shop/deny");
    assert_eq!(found[0].allow.as_str(), "shop/allow");
    let wild = host("wild", 0, "*.example.com", Action::Allow);
    let exact = host("exact", 0, "db.example.com", Action::Deny);
    assert_eq!(conflicts(&[wild, exact]).len(), 1);
}

#[test]
fn host_patterns() {
    assert_eq!(
        HostPattern::parse("*.Example.COM."),
        Some(HostPattern::Wildcard("example.com".into()))
    );
    assert_eq!(
        HostPattern::parse("a.b"),
        Some(HostPattern::Exact("a.b".into()))
    );
    assert_eq!(HostPattern::parse("*.*.b"), None);
    assert_eq!(HostPattern::parse("a b"), None);
    assert_eq!(HostPattern::parse("*"), None);
}

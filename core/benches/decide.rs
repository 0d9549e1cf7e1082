//! Policy decision latency with 10,000 routes: criterion's statistics, plus a p50/p99/p999 of
//! single decisions (criterion reports means and medians, the target is a p99).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use criterion::Criterion;
use warren_core::policy::{
    Action, ClientSelector, DestinationMatch, HostPattern, PolicyIndex, PortRange, Route,
    TargetMatch,
};
use warren_core::{ClientIdentity, Destination};

const ROUTES: u32 = 10_000;

/// A realistic mix: /24 and /32 networks over many namespaces and prefix lengths, port lists,
/// host names and wildcards, a few catch-alls.
fn routes() -> Vec<Route> {
    (0..ROUTES)
        .map(|i| {
            let namespace = format!("ns{}", i % 50);
            let target = match i % 10 {
                0..=5 => TargetMatch::Cidr(
                    format!("10.{}.{}.0/24", (i >> 8) & 0xff, i & 0xff)
                        .parse()
                        .unwrap(),
                ),
                6 | 7 => TargetMatch::Cidr(
                    format!("172.16.{}.{}/32", (i >> 8) & 0xff, i & 0xff)
                        .parse()
                        .unwrap(),
                ),
                8 => TargetMatch::Host(HostPattern::Exact(format!("svc{i}.example.com"))),
                _ => TargetMatch::Host(HostPattern::Wildcard(format!("zone{i}.example.com"))),
            };
            Route {
                namespace,
                name: format!("route-{i}"),
                priority: (i % 3) as i32,
                clients: if i % 4 == 0 {
                    ClientSelector::AllInNamespace
                } else {
                    ClientSelector::ServiceAccounts(vec!["api".into(), format!("sa{}", i % 7)])
                },
                destinations: vec![DestinationMatch {
                    target,
                    ports: if i % 2 == 0 {
                        vec![]
                    } else {
                        vec![
                            PortRange::single(443),
                            PortRange {
                                first: 8000,
                                last: 8100,
                            },
                        ]
                    },
                }],
                action: if i % 5 == 0 {
                    Action::Deny
                } else {
                    Action::Allow
                },
            }
        })
        .chain((0..50).map(|n| Route {
            namespace: format!("ns{n}"),
            name: "default-out".into(),
            priority: -1,
            clients: ClientSelector::AllInNamespace,
            destinations: vec![DestinationMatch {
                target: TargetMatch::Cidr("0.0.0.0/0".parse().unwrap()),
                ports: vec![PortRange::single(443)],
            }],
            action: Action::Allow,
        }))
        .collect()
}

fn queries() -> Vec<(ClientIdentity, Destination)> {
    (0..4096u32)
        .map(|i| {
            let client = ClientIdentity {
                uri: Some(format!("spiffe://cluster.local/ns/ns{}/sa/api", i % 50)),
                dns_names: vec![],
            };
            let destination = match i % 4 {
                0 => Destination::Ip(SocketAddr::from((
                    Ipv4Addr::new(10, (i >> 8) as u8, i as u8, 7),
                    443,
                ))),
                1 => Destination::Ip(SocketAddr::from((Ipv4Addr::new(192, 0, 2, i as u8), 443))),
                2 => Destination::Name {
                    host: format!("svc{}.example.com", i * 10 + 8),
                    port: 8080,
                },
                _ => Destination::Name {
                    host: format!("a.zone{}.example.com", i * 10 + 9),
                    port: 443,
                },
            };
            (client, destination)
        })
        .collect()
}

fn percentiles(index: &PolicyIndex, queries: &[(ClientIdentity, Destination)]) {
    let mut samples: Vec<u64> = Vec::with_capacity(200_000);
    for round in 0..50 {
        for (client, destination) in queries {
            let start = Instant::now();
            black_box(index.decide(black_box(client), black_box(destination)));
            let nanos = start.elapsed().as_nanos() as u64;
            if round > 0 {
                samples.push(nanos);
            }
        }
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "decide with {} routes over {} decisions: p50 {} ns, p99 {} ns, p99.9 {} ns (target p99 < 10000 ns)",
        index.len(),
        samples.len(),
        at(0.50),
        at(0.99),
        at(0.999)
    );
}

fn main() {
    let build = Instant::now();
    let index = PolicyIndex::new("cluster.local", routes());
    println!("compiled {} routes in {:?}", index.len(), build.elapsed());
    let queries = queries();
    percentiles(&index, &queries);

    let mut criterion = Criterion::default().configure_from_args();
    let mut i = 0usize;
    criterion.bench_function("decide/10k-routes", |b| {
        b.iter(|| {
            let (client, destination) = &queries[i % queries.len()];
            i += 1;
            black_box(index.decide(client, destination))
        })
    });
    criterion.bench_function("compile/10k-routes", |b| {
        b.iter_batched(
            routes,
            |r| PolicyIndex::new("cluster.local", r),
            criterion::BatchSize::LargeInput,
        )
    });
    criterion.final_summary();
}

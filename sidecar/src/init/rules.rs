//! The capture rules as data, rendered exactly as `iptables-save` prints them so that the
//! read-back check can compare text.

use ipnet::IpNet;

use super::{Backend, InitArgs};
pub use warren_core::capture::{parse_net, parse_ports};

/// Warren's own chain in the nat table, jumped to from `OUTPUT`.
pub const CHAIN: &str = "WARREN_OUTPUT";

/// An address family, with its iptables programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4: iptables.
    V4,
    /// IPv6: ip6tables.
    V6,
}

/// The rules for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// The family.
    pub family: Family,
    /// Rules of [`CHAIN`], in `iptables-save` form without the `-A CHAIN ` prefix.
    pub chain_rules: Vec<String>,
}

/// The jump from OUTPUT, in `iptables-save` form.
pub const JUMP: &str = "-A OUTPUT -p tcp -j WARREN_OUTPUT";

// === impl Family ===

impl Family {
    /// `ipv4` or `ipv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The iptables program of this family and backend.
    pub fn iptables(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Family::V4, Backend::Nft) => "iptables-nft",
            (Family::V4, Backend::Legacy) => "iptables-legacy",
            (Family::V6, Backend::Nft) => "ip6tables-nft",
            (Family::V6, Backend::Legacy) => "ip6tables-legacy",
        }
    }

    fn loopback(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.0/8",
            Family::V6 => "::1/128",
        }
    }

    fn contains(self, net: &IpNet) -> bool {
        matches!(
            (self, net),
            (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_))
        )
    }
}

// === impl RuleSet ===

impl RuleSet {
    /// The rules `args` ask for, for `family`. Order matters: every RETURN comes before the
    /// REDIRECTs.
    pub fn new(args: &InitArgs, family: Family) -> Self {
        let mut rules = vec![
            format!("-m owner --uid-owner {} -j RETURN", args.proxy_uid),
            format!("-d {} -j RETURN", family.loopback()),
        ];
        let nets = |list: &[IpNet]| -> Vec<IpNet> {
            list.iter()
                .filter(|n| family.contains(n))
                .map(IpNet::trunc)
                .collect()
        };
        for net in nets(&args.server_addrs)
            .iter()
            .chain(&nets(&args.exclude_cidrs))
        {
            rules.push(format!("-d {net} -j RETURN"));
        }
        if !args.exclude_ports.is_empty() {
            rules.push(format!(
                "-p tcp {} -j RETURN",
                ports_match(&args.exclude_ports)
            ));
        }
        let ports = if args.include_ports.is_empty() {
            String::new()
        } else {
            format!(" {}", ports_match(&args.include_ports))
        };
        let redirect = format!("-j REDIRECT --to-ports {}", args.proxy_port);
        if args.include_cidrs.is_empty() {
            rules.push(format!("-p tcp{ports} {redirect}"));
        } else {
            // Include-CIDRs of the other family only: this family captures nothing.
            for net in nets(&args.include_cidrs) {
                rules.push(format!("-d {net} -p tcp{ports} {redirect}"));
            }
        }
        RuleSet {
            family,
            chain_rules: rules,
        }
    }

    /// Input for `iptables-restore --noflush`: declaring the chain empties it (or creates it),
    /// so applying twice leaves one copy. The OUTPUT jump is added only when `with_jump`,
    /// because `--noflush` would append a second one.
    pub fn restore_input(&self, with_jump: bool) -> String {
        let mut out = format!("*nat\n:{CHAIN} - [0:0]\n");
        for rule in &self.chain_rules {
            out.push_str(&format!("-A {CHAIN} {rule}\n"));
        }
        if with_jump {
            out.push_str(JUMP);
            out.push('\n');
        }
        out.push_str("COMMIT\n");
        out
    }

    /// The lines `iptables-save -t nat` must show for these rules, in order.
    pub fn expected_save_lines(&self) -> Vec<String> {
        let mut lines = vec![JUMP.to_owned()];
        lines.extend(self.chain_rules.iter().map(|r| format!("-A {CHAIN} {r}")));
        lines
    }
}

/// `-m multiport --dports 22,8000:8080`.
fn ports_match(ports: &[(u16, u16)]) -> String {
    let list: Vec<String> = ports
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    format!("-m multiport --dports {}", list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: InitArgs,
    }

    fn args(flags: &[&str]) -> InitArgs {
        Cli::parse_from(std::iter::once("init").chain(flags.iter().copied())).args
    }

    #[test]
    fn default_rules_capture_all_tcp_but_the_sidecar_and_loopback() {
        let v4 = RuleSet::new(&args(&[]), Family::V4);
        assert_eq!(
            v4.restore_input(true),
            "*nat\n:WARREN_OUTPUT - [0:0]\n\
             -A WARREN_OUTPUT -m owner --uid-owner 1337 -j RETURN\n\
             -A WARREN_OUTPUT -d 127.0.0.0/8 -j RETURN\n\
             -A WARREN_OUTPUT -p tcp -j REDIRECT --to-ports 15001\n\
             -A OUTPUT -p tcp -j WARREN_OUTPUT\nCOMMIT\n"
        );
        let v6 = RuleSet::new(&args(&[]), Family::V6);
        assert!(v6.chain_rules.contains(&"-d ::1/128 -j RETURN".to_owned()));
    }

    #[test]
    fn exclusions_come_before_the_redirect_and_split_by_family() {
        let a = args(&[
            "--proxy-port=15006",
            "--proxy-uid=2000",
            "--server-addrs=10.96.0.10,fd00::10",
            "--exclude-cidrs=192.168.0.0/16,fd00:1::/64",
            "--exclude-ports=22,8000-8080",
            "--include-cidrs=10.0.0.0/8,10.1.2.3/16",
            "--include-ports=443",
        ]);
        assert_eq!(
            RuleSet::new(&a, Family::V4).chain_rules,
            vec![
                "-m owner --uid-owner 2000 -j RETURN",
                "-d 127.0.0.0/8 -j RETURN",
                "-d 10.96.0.10/32 -j RETURN",
                "-d 192.168.0.0/16 -j RETURN",
                "-p tcp -m multiport --dports 22,8000:8080 -j RETURN",
                "-d 10.0.0.0/8 -p tcp -m multiport --dports 443 -j REDIRECT --to-ports 15006",
                "-d 10.1.0.0/16 -p tcp -m multiport --dports 443 -j REDIRECT --to-ports 15006",
            ]
        );
        let v6 = RuleSet::new(&a, Family::V6).chain_rules;
        assert!(v6.contains(&"-d fd00::10/128 -j RETURN".to_owned()));
        assert!(v6.contains(&"-d fd00:1::/64 -j RETURN".to_owned()));
        assert!(
            !v6.iter().any(|r| r.contains("REDIRECT")),
            "no IPv6 include-CIDR: {v6:?}"
        );
    }

    #[test]
    fn flags_come_from_the_environment_too() {
        // The declared names are what the webhook sets; reading them back avoids mutating the
        // test process's environment.
        use clap::CommandFactory;
        let envs: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        for name in [
            "WARREN_INIT_PROXY_PORT",
            "WARREN_INIT_EXCLUDE_CIDRS",
            "WARREN_INIT_SERVER_ADDRS",
        ] {
            assert!(envs.iter().any(|e| e == name), "{name} missing: {envs:?}");
        }
    }
}

//! `warren init`: installs the nat rules that send a pod's outbound TCP to the sidecar.
//!
//! The rules are data ([`rules`]), rendered for `iptables-restore` and applied per address family
//! by [`iptables`], then read back with `iptables-save` and compared: a pod whose traffic would
//! silently bypass the tunnel fails here, loudly, instead. Anything applied before a failure is
//! removed again, so a failed init leaves no half-installed capture behind.

mod iptables;
mod rules;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

pub use rules::{CHAIN, Family, RuleSet};

/// Which iptables implementation to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// nf_tables (`iptables-nft`).
    Nft,
    /// x_tables (`iptables-legacy`).
    Legacy,
}

/// `warren init` options. Every flag can also come from the environment (`WARREN_INIT_...`),
/// which is how the injection webhook configures the init container.
#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// Port the sidecar (`warren client --transparent`) listens on.
    #[arg(long, env = "WARREN_INIT_PROXY_PORT", default_value_t = 15001)]
    pub proxy_port: u16,

    /// User id the sidecar runs as; its own connections are never captured.
    #[arg(long, env = "WARREN_INIT_PROXY_UID", default_value_t = 1337)]
    pub proxy_uid: u32,

    /// Only capture connections to these networks (comma-separated CIDRs; default: all).
    #[arg(long, env = "WARREN_INIT_INCLUDE_CIDRS", value_delimiter = ',', value_parser = rules::parse_net)]
    pub include_cidrs: Vec<IpNet>,

    /// Only capture connections to these ports (comma-separated ports or ranges `a-b`).
    #[arg(long, env = "WARREN_INIT_INCLUDE_PORTS", value_delimiter = ',', value_parser = rules::parse_ports)]
    pub include_ports: Vec<(u16, u16)>,

    /// Never capture connections to these networks.
    #[arg(long, env = "WARREN_INIT_EXCLUDE_CIDRS", value_delimiter = ',', value_parser = rules::parse_net)]
    pub exclude_cidrs: Vec<IpNet>,

    /// Never capture connections to these ports (ports or ranges `a-b`).
    #[arg(long, env = "WARREN_INIT_EXCLUDE_PORTS", value_delimiter = ',', value_parser = rules::parse_ports)]
    pub exclude_ports: Vec<(u16, u16)>,

    /// The tunnel server's addresses (IPs or CIDRs): never captured, even for other users.
    #[arg(long, env = "WARREN_INIT_SERVER_ADDRS", value_delimiter = ',', value_parser = rules::parse_net)]
    pub server_addrs: Vec<IpNet>,

    /// iptables backend; detected when omitted (the one already holding rules, else nft).
    #[arg(long, env = "WARREN_INIT_BACKEND", value_enum)]
    pub backend: Option<Backend>,

    /// Leave IPv6 alone (for kernels or pods without IPv6).
    #[arg(long, env = "WARREN_INIT_NO_IPV6")]
    pub no_ipv6: bool,

    /// Print the rules that would be applied, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Remove Warren's rules instead of installing them.
    #[arg(long, conflicts_with = "dry_run")]
    pub cleanup: bool,
}

// === impl InitArgs ===

impl InitArgs {
    /// The address families to configure.
    fn families(&self) -> Vec<Family> {
        if self.no_ipv6 {
            vec![Family::V4]
        } else {
            vec![Family::V4, Family::V6]
        }
    }
}

/// Runs `warren init`.
pub fn run(args: &InitArgs) -> anyhow::Result<()> {
    let families = args.families();
    if args.dry_run {
        for family in &families {
            let rules = RuleSet::new(args, *family);
            println!(
                "# {}",
                family.iptables(Backend::Nft).trim_end_matches("-nft")
            );
            print!("{}", rules.restore_input(true));
        }
        return Ok(());
    }
    let backend = match args.backend {
        Some(backend) => backend,
        None => iptables::detect_backend(&families)?,
    };
    if args.cleanup {
        for family in &families {
            iptables::cleanup(backend, *family)?;
        }
        println!("removed Warren's capture rules ({backend:?} backend)");
        return Ok(());
    }
    let mut applied = Vec::new();
    for family in &families {
        let rules = RuleSet::new(args, *family);
        let result =
            iptables::apply(backend, &rules).and_then(|()| iptables::verify(backend, &rules));
        applied.push(*family);
        if let Err(error) = result {
            for family in &applied {
                let _ = iptables::cleanup(backend, *family);
            }
            return Err(error.context("warren init failed; rolled back every rule it applied"));
        }
    }
    println!(
        "capturing outbound TCP to port {} ({backend:?} backend, {} verified)",
        args.proxy_port,
        families
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(" + ")
    );
    Ok(())
}

//! The values that choose which outbound connections `warren init` captures, parsed the same way
//! from its flags and from the injection webhook's pod annotations.

use ipnet::IpNet;

/// Parses a CIDR, or a bare IP address as a single-address network.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("invalid address {s:?}: expected an IP address or a CIDR"))
}

/// Parses `80` or `8000-8080` into an inclusive range.
pub fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid port {p:?}: expected 1-65535")),
    };
    match s.split_once('-') {
        None => port(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("invalid port range {s:?}: runs backwards"));
            }
            Ok((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ranges() {
        assert_eq!(parse_ports("80"), Ok((80, 80)));
        assert_eq!(parse_ports("80-90"), Ok((80, 90)));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("65536").is_err());
        assert!(parse_ports("90-80").is_err());
        assert!(parse_ports("http").is_err());
    }

    #[test]
    fn networks_and_addresses() {
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net(" 10.1.2.3 ").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_net("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.com").is_err());
    }
}

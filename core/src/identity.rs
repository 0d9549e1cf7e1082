//! The identity a client proves with its certificate.

use std::fmt;

/// What the tunnel server knows about an authenticated client, taken from the subject
/// alternative names of its verified certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The URI SAN, e.g. `spiffe://cluster.local/ns/shop/sa/api`.
    pub uri: Option<String>,
    /// The DNS SANs.
    pub dns_names: Vec<String>,
}

/// A parsed Kubernetes SPIFFE ID: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    /// The trust domain, e.g. `cluster.local`.
    pub trust_domain: &'a str,
    /// The Kubernetes namespace.
    pub namespace: &'a str,
    /// The Kubernetes service account.
    pub service_account: &'a str,
}

// === impl ClientIdentity ===

impl ClientIdentity {
    /// The Kubernetes SPIFFE ID in the URI SAN, if it has that shape.
    pub fn spiffe(&self) -> Option<SpiffeId<'_>> {
        SpiffeId::parse(self.uri.as_deref()?)
    }
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.uri, self.dns_names.first()) {
            (Some(uri), _) => f.write_str(uri),
            (None, Some(dns)) => write!(f, "dns:{dns}"),
            (None, None) => f.write_str("-"),
        }
    }
}

// === impl SpiffeId ===

impl<'a> SpiffeId<'a> {
    /// Parses `spiffe://<td>/ns/<ns>/sa/<sa>`; anything else is `None`.
    pub fn parse(uri: &'a str) -> Option<Self> {
        let rest = uri.strip_prefix("spiffe://")?;
        let mut parts = rest.split('/');
        let trust_domain = parts.next().filter(|s| !s.is_empty())?;
        if parts.next()? != "ns" {
            return None;
        }
        let namespace = parts.next().filter(|s| !s.is_empty())?;
        if parts.next()? != "sa" {
            return None;
        }
        let service_account = parts.next().filter(|s| !s.is_empty())?;
        if parts.next().is_some() {
            return None;
        }
        Some(SpiffeId {
            trust_domain,
            namespace,
            service_account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_spiffe_ids() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/api").unwrap();
        assert_eq!(id.trust_domain, "cluster.local");
        assert_eq!(id.namespace, "shop");
        assert_eq!(id.service_account, "api");
        for bad in [
            "spiffe://cluster.local/ns/shop",
            "spiffe://cluster.local/ns/shop/sa/api/extra",
            "spiffe:///ns/shop/sa/api",
            "https://cluster.local/ns/shop/sa/api",
            "spiffe://cluster.local/ns//sa/api",
        ] {
            assert_eq!(SpiffeId::parse(bad), None, "{bad}");
        }
    }
}

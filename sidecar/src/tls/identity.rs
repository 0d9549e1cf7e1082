//! The client identity in a verified peer certificate.

use rustls_pki_types::CertificateDer;
use warren_core::ClientIdentity;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Reads the URI and DNS subject alternative names of the peer's end-entity certificate.
///
/// The certificate was already verified by rustls; a certificate x509-parser cannot read yields
/// an empty identity, which no route matches.
pub fn peer_identity(chain: Option<&[CertificateDer<'_>]>) -> ClientIdentity {
    let mut identity = ClientIdentity::default();
    let Some(end_entity) = chain.and_then(|c| c.first()) else {
        return identity;
    };
    let Ok((_, cert)) = X509Certificate::from_der(end_entity.as_ref()) else {
        return identity;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return identity;
    };
    for name in &san.value.general_names {
        match name {
            GeneralName::URI(uri) if identity.uri.is_none() => identity.uri = Some(uri.to_string()),
            GeneralName::DNSName(dns) => identity.dns_names.push(dns.to_string()),
            _ => {}
        }
    }
    identity
}

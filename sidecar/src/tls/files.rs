//! PEM files: certificates, private keys and CA bundles, with errors that name the file.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a PEM file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("{}: invalid PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no item of the expected kind.
    #[error("{}: no {what} found", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was expected, e.g. "CERTIFICATE block".
        what: &'static str,
    },
    /// A CA certificate was rejected.
    #[error("{}: CA certificate rejected: {source}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// Loads a certificate chain.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let pem = super::read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| FileError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(FileError::Empty {
            path: path.to_owned(),
            what: "CERTIFICATE block",
        });
    }
    Ok(certs)
}

/// Loads a private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    let pem = super::read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => FileError::Empty {
            path: path.to_owned(),
            what: "PRIVATE KEY block",
        },
        source => FileError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// Loads a CA bundle into a root store; every certificate in it must be usable.
pub fn load_roots(path: &Path) -> Result<RootCertStore, FileError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| FileError::BadCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

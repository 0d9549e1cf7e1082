//! The webhook's serving certificate, re-read when its files change: cert-manager and similar
//! tools rotate it in place, and the API server must keep trusting the webhook without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use crate::reload;

/// How often the certificate files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// The certificate and key files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Serves whichever certificate was loaded last.
#[derive(Debug)]
struct Current(watch::Receiver<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.borrow().clone())
    }
}

/// A TLS configuration for the webhook (HTTP/1.1, no client certificates); the files are
/// checked every ten seconds while the configuration is in use, and a broken update keeps the
/// last good pair.
pub fn server_config(files: CertFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let current = Current(watch(files, provider.clone())?);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(current));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The pair, reloaded whenever either file's content changes.
fn watch(
    files: CertFiles,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<watch::Receiver<Arc<CertifiedKey>>> {
    let paths = vec![files.cert.clone(), files.key.clone()];
    reload::watch_files(
        "webhook-tls",
        paths,
        RELOAD_EVERY,
        move || load(&files, &provider).map_err(|e| format!("{e:#}")),
        |_| {},
    )
    .map_err(anyhow::Error::msg)
}

/// Loads and checks the pair: the key must match the certificate.
fn load(files: &CertFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("{}: no usable private key", files.key.display()))?;
    let key = CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "{} and {} do not form a usable pair",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(key)
}

/// Reads a PEM certificate chain.
fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("{}: cannot read certificates", path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{}: no CERTIFICATE block",
        path.display()
    );
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a fresh self-signed pair for `name`; returns the certificate's DER.
    fn write_pair(files: &CertFiles, name: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        cert.der().to_vec()
    }

    fn serving(current: &watch::Receiver<Arc<CertifiedKey>>) -> Vec<u8> {
        current.borrow().cert[0].to_vec()
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_pair_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let first = write_pair(&files, "first.example");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = watch(files.clone(), provider).unwrap();
        tokio::time::sleep(RELOAD_EVERY + Duration::from_secs(1)).await;
        assert_eq!(serving(&current), first, "unchanged files keep the pair");

        let second = write_pair(&files, "second.example");
        tokio::time::sleep(RELOAD_EVERY).await;
        assert_eq!(serving(&current), second, "the rotated pair is served");

        std::fs::write(
            &files.key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        tokio::time::sleep(RELOAD_EVERY).await;
        assert_eq!(
            serving(&current),
            second,
            "a broken update keeps the last good pair"
        );
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let provider = rustls::crypto::ring::default_provider();
        let error = format!("{:#}", load(&files, &provider).unwrap_err());
        assert!(
            error.contains("tls.crt: cannot read certificates"),
            "{error}"
        );

        write_pair(&files, "a.example");
        let other = tempfile::tempdir().unwrap();
        let mismatched = CertFiles {
            cert: files.cert.clone(),
            key: other.path().join("tls.key"),
        };
        write_pair(
            &CertFiles {
                cert: other.path().join("tls.crt"),
                key: mismatched.key.clone(),
            },
            "b.example",
        );
        let error = format!("{:#}", load(&mismatched, &provider).unwrap_err());
        assert!(error.contains("do not form a usable pair"), "{error}");
    }
}

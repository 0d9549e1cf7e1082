//! TLS set-up: the one crypto provider, PEM loading with errors that name the file, and the
//! rustls configurations of the tunnel server and client.
//!
//! Configurations are built from files and rebuilt by [`crate::reload`] when the files change,
//! so certificates rotate without a restart.

mod files;
mod identity;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

pub use files::{FileError, load_certs, load_key, load_roots};
pub use identity::peer_identity;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file is unusable.
    #[error(transparent)]
    File(#[from] FileError),
    /// rustls refused the material, e.g. a key that does not match its certificate.
    #[error("{what}: {source}")]
    Rustls {
        /// What was being configured, naming the files.
        what: String,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The client CA file holds no usable CA.
    #[error("client CA {path}: {source}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// Why no verifier could be built from it.
        source: rustls::server::VerifierBuilderError,
    },
}

/// The crypto provider every Warren TLS configuration uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs [`provider`] as the process default, for libraries (the Kubernetes client) that
/// build their own configurations. Call once at start-up; later calls are harmless.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn versions(allow_tls12: bool) -> &'static [&'static SupportedProtocolVersion] {
    if allow_tls12 {
        rustls::ALL_VERSIONS
    } else {
        TLS13_ONLY
    }
}

/// Files and settings of a TLS endpoint.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// CA bundle (PEM) the peer's certificate must chain to.
    pub ca: PathBuf,
    /// Whether TLS 1.2 is allowed besides TLS 1.3.
    pub allow_tls12: bool,
}

/// The tunnel server's configurations: one for Warren clients, one for plain TLS clients.
#[derive(Debug, Clone)]
pub struct ServerConfigs {
    /// Negotiates [`warren_core::token::ALPN_PROTOCOL`]; used when the ClientHello has a token.
    pub warren: Arc<ServerConfig>,
    /// Negotiates no ALPN protocol; used for plain TLS clients such as stunnel.
    pub plain: Arc<ServerConfig>,
}

// === impl TlsFiles ===

impl TlsFiles {
    /// All files, for the reloader to watch.
    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.cert.clone(), self.key.clone(), self.ca.clone()]
    }

    fn rustls_error(&self, source: rustls::Error) -> TlsError {
        TlsError::Rustls {
            what: format!(
                "certificate {} with key {}",
                self.cert.display(),
                self.key.display()
            ),
            source,
        }
    }

    /// Builds the server configurations: client certificates are required and must chain to
    /// the CA file (mutual TLS).
    pub fn server_configs(&self) -> Result<ServerConfigs, TlsError> {
        let certs = load_certs(&self.cert)?;
        let key = load_key(&self.key)?;
        let roots = load_roots(&self.ca)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|source| TlsError::Verifier {
                path: self.ca.clone(),
                source,
            })?;
        let mut plain = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(self.allow_tls12))
            .map_err(|e| self.rustls_error(e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| self.rustls_error(e))?;
        tune_server(&mut plain);
        let mut warren = plain.clone();
        warren.alpn_protocols = vec![warren_core::token::ALPN_PROTOCOL.to_vec()];
        Ok(ServerConfigs {
            warren: Arc::new(warren),
            plain: Arc::new(plain),
        })
    }

    /// Builds the client configuration, without ALPN: the connection adds its token.
    /// With `resume`, tickets from the server are kept so later tunnels skip the full handshake.
    pub fn client_config(&self, resume: bool) -> Result<ClientConfig, TlsError> {
        let certs = load_certs(&self.cert)?;
        let key = load_key(&self.key)?;
        let roots: RootCertStore = load_roots(&self.ca)?;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(self.allow_tls12))
            .map_err(|e| self.rustls_error(e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| self.rustls_error(e))?;
        config.resumption = if resume {
            rustls::client::Resumption::in_memory_sessions(4096)
        } else {
            rustls::client::Resumption::disabled()
        };
        Ok(config)
    }
}

/// Server settings chosen for a tunnel rather than a web server.
fn tune_server(config: &mut ServerConfig) {
    // Resumption saves a full handshake per new tunnel; many sidecars share one server.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(64 * 1024);
    config.send_tls13_tickets = 1;
}

/// Reads a file's bytes, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })
}

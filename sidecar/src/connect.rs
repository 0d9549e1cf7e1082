//! Connecting to a destination: name resolution, a timeout, and errors that say which step failed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use warren_core::Destination;

/// Why a connection to a destination failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The DNS name did not resolve to any address.
    #[error("resolving {destination}: {source}")]
    Resolve {
        /// The destination.
        destination: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Every address refused or was unreachable.
    #[error("connecting to {address}: {source}")]
    Connect {
        /// The last address tried.
        address: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// No connection within the timeout.
    #[error("connecting to {destination}: timed out after {timeout:?}")]
    Timeout {
        /// The destination.
        destination: String,
        /// The timeout.
        timeout: Duration,
    },
}

// === impl ConnectError ===

impl ConnectError {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ConnectError::Resolve { .. } => "resolve",
            ConnectError::Connect { .. } => "refused_or_unreachable",
            ConnectError::Timeout { .. } => "timeout",
        }
    }
}

/// Connects to `destination` within `timeout`, trying each resolved address in turn.
pub async fn connect(
    destination: &Destination,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let attempt = async {
        let addresses: Vec<SocketAddr> = match destination {
            Destination::Ip(address) => vec![*address],
            Destination::Name { host, port } => tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|source| ConnectError::Resolve {
                    destination: destination.to_string(),
                    source,
                })?
                .collect(),
        };
        let mut last_error = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(source) => last_error = Some(ConnectError::Connect { address, source }),
            }
        }
        Err(last_error.unwrap_or_else(|| ConnectError::Resolve {
            destination: destination.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        }))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout {
                destination: destination.to_string(),
                timeout,
            })
        })
}

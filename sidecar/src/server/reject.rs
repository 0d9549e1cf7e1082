//! Refusing a ClientHello before the handshake, with a TLS alert.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A plaintext TLS alert record: fatal `no_application_protocol` (RFC 7301, section 3.2), the
/// alert a server sends when it cannot accept the client's ALPN offer. Before the handshake no
/// keys exist, so the record is not encrypted (RFC 8446, section 5).
const NO_APPLICATION_PROTOCOL_ALERT: [u8; 7] = [
    0x15, // content type: alert
    0x03, 0x03, // legacy record version: TLS 1.2, as TLS 1.3 requires
    0x00, 0x02, // length
    0x02, // level: fatal
    0x78, // description: no_application_protocol (120)
];

/// Sends the alert and closes the connection. Errors are ignored: the client may be gone.
pub async fn no_application_protocol(tcp: &mut TcpStream) {
    let _ = tcp.write_all(&NO_APPLICATION_PROTOCOL_ALERT).await;
    let _ = tcp.shutdown().await;
}

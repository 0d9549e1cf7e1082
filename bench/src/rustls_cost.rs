//! What rustls' buffered API (the one tokio-rustls drives) costs per GiB beyond the cipher: a
//! client and a server connection, handshaken in memory, move data in 128 KiB writes like
//! Warren's relay. Only rustls' own work is timed: handing plaintext in (`writer()`, which
//! encrypts) and getting plaintext out (`process_new_packets` and `reader()`). Moving ciphertext
//! between the two is left out, as on a socket that copy is the kernel's.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::aead::{AeadCost, GIB};

/// Bytes per write, as Warren's relay reads them.
const CHUNK: usize = 128 * 1024;

/// Seconds per GiB rustls spends to seal (client) and open (server) `gib` GiB.
pub fn measure(gib: f64) -> anyhow::Result<AeadCost> {
    let (mut client, mut server) = connected_pair()?;
    let plaintext = vec![0x17u8; CHUNK];
    let mut received = vec![0u8; CHUNK];
    let mut wire = Vec::with_capacity(2 * CHUNK);
    let chunks = (gib * GIB / CHUNK as f64).ceil() as u64;
    let (mut sealing, mut opening) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..chunks {
        // rustls takes at most its buffer limit (64 KiB) per write, as under tokio-rustls.
        wire.clear();
        let mut sent = 0;
        while sent < CHUNK {
            let started = Instant::now();
            sent += client.writer().write(&plaintext[sent..])?;
            sealing += started.elapsed();
            while client.wants_write() {
                client.write_tls(&mut wire)?;
            }
        }
        let mut ciphertext = &wire[..];
        let mut got = 0;
        while got < CHUNK {
            if !ciphertext.is_empty() {
                server.read_tls(&mut ciphertext)?;
            }
            let started = Instant::now();
            server.process_new_packets()?;
            loop {
                match server.reader().read(&mut received[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            opening += started.elapsed();
            if ciphertext.is_empty() && got < CHUNK && !server.wants_read() {
                return Err(anyhow!("rustls delivered {got} of {CHUNK} bytes"));
            }
        }
    }
    let moved = (chunks * CHUNK as u64) as f64 / GIB;
    Ok(AeadCost {
        seal: sealing.as_secs_f64() / moved,
        open: opening.as_secs_f64() / moved,
    })
}

/// A TLS 1.3 client and server (ring provider, a throwaway certificate) after their handshake.
fn connected_pair() -> anyhow::Result<(ClientConnection, ServerConnection)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])?.self_signed(&key)?;
    let der = CertificateDer::from(cert.der().to_vec());
    let mut roots = RootCertStore::empty();
    roots.add(der.clone())?;
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost")?;
    let mut client = ClientConnection::new(Arc::new(client_config), name)?;
    let mut server = ServerConnection::new(Arc::new(server_config))?;
    let mut wire = Vec::new();
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
        wire.clear();
        client.write_tls(&mut wire)?;
        feed(&wire, |r| server.read_tls(r))?;
        server.process_new_packets().context("server handshake")?;
        wire.clear();
        server.write_tls(&mut wire)?;
        feed(&wire, |r| client.read_tls(r))?;
        client.process_new_packets().context("client handshake")?;
    }
    Err(anyhow!("the in-memory handshake did not finish"))
}

fn feed(
    mut bytes: &[u8],
    mut read_tls: impl FnMut(&mut &[u8]) -> std::io::Result<usize>,
) -> anyhow::Result<()> {
    while !bytes.is_empty() {
        read_tls(&mut bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_data_and_measures_both_directions() {
        let cost = measure(1.0 / 64.0).unwrap();
        assert!(cost.seal > 0.0 && cost.open > 0.0);
    }
}

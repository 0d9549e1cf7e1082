//! What the cipher alone costs per GiB: AES-256-GCM (the TLS 1.3 suite Warren and stunnel
//! negotiate) sealing and opening full 16 KiB records in place with ring, the provider Warren's
//! rustls uses. This is the floor any TLS tunnel pays per byte in user space; `make bench`
//! sets it beside the measured costs to show how much room a throughput target leaves.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// A TLS 1.3 record's plaintext: 16 KiB of data and its content-type byte.
const RECORD: usize = 16 * 1024 + 1;
/// The additional data of such a record: its header.
const HEADER: [u8; 5] = [23, 3, 3, 0x40, 0x11];
/// Bytes in a GiB.
pub const GIB: f64 = (1u64 << 30) as f64;

/// Seconds per GiB to seal, and to open, `gib` GiB of records.
pub struct AeadCost {
    /// Seconds to encrypt one GiB.
    pub seal: f64,
    /// Seconds to decrypt and verify one GiB.
    pub open: f64,
}

/// Seals and opens `gib` GiB in 16 KiB records, timing each side separately.
pub fn measure(gib: f64) -> anyhow::Result<AeadCost> {
    let key = UnboundKey::new(&AES_256_GCM, &[0x42; 32]).map_err(|_| anyhow!("AES-256 key"))?;
    let key = LessSafeKey::new(key);
    let records = (gib * GIB / RECORD as f64).ceil() as u64;
    let mut record = vec![0x17u8; RECORD + AES_256_GCM.tag_len()];
    let (mut sealing, mut opening) = (Duration::ZERO, Duration::ZERO);
    for sequence in 0..records {
        let started = Instant::now();
        let (plaintext, tag_space) = record.split_at_mut(RECORD);
        let tag = key
            .seal_in_place_separate_tag(nonce(sequence), Aad::from(HEADER), plaintext)
            .map_err(|_| anyhow!("seal failed"))?;
        tag_space.copy_from_slice(tag.as_ref());
        sealing += started.elapsed();
        let started = Instant::now();
        key.open_in_place(nonce(sequence), Aad::from(HEADER), &mut record)
            .map_err(|_| anyhow!("open failed: the record did not verify"))?;
        opening += started.elapsed();
    }
    let moved = (records * RECORD as u64) as f64 / GIB;
    Ok(AeadCost {
        seal: sealing.as_secs_f64() / moved,
        open: opening.as_secs_f64() / moved,
    })
}

/// TLS 1.3's per-record nonce with a zero IV: the sequence number, big-endian, right-aligned.
fn nonce(sequence: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[NONCE_LEN - 8..].copy_from_slice(&sequence.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_both_directions() {
        let cost = measure(1.0 / 64.0).unwrap();
        assert!(cost.seal > 0.0 && cost.open > 0.0);
    }
}

//! Ciphers, and the constructors that pair a cipher with a MAC into a [`PacketSealer`] or
//! [`PacketOpener`].
//!
//! | cipher | key | IV | block | tag | AEAD |
//! |---|---|---|---|---|---|
//! | `chacha20-poly1305@openssh.com` | 64 | 0 | 8 | 16 | yes |
//! | `aes128-gcm@openssh.com` | 16 | 12 | 16 | 16 | yes |
//! | `aes256-gcm@openssh.com` | 32 | 12 | 16 | 16 | yes |
//! | `aes128-ctr` / `aes192-ctr` / `aes256-ctr` | 16 / 24 / 32 | 16 | 16 | MAC's | no |
//!
//! With an AEAD cipher the MAC is not negotiated, as in OpenSSH: the transport skips the MAC
//! name-lists and passes `None`. With a CTR cipher a MAC from [`crate::crypto::mac`] is
//! required; its `-etm@openssh.com` form leaves `packet_length` in the clear.
//!
//! Implementations: `ring` for AES-GCM (`ring::aead`) and for HMAC; for ChaCha20-Poly1305,
//! the `chacha20` and `poly1305` crates on packets of 8 KiB or more (AVX-512 or AVX2 detected
//! at run time; 2,260–2,340 MB/s sealed or opened on the machine below on 2026-11-28, against
//! 1,360–1,380 for `ring`'s `chacha20_poly1305_openssh`, measured the same way) and `ring`'s
//! on smaller ones (a fifth of the crates' fixed cost per packet); the `aes` and `ctr` crates
//! for CTR (AES-NI detected at run time). Nothing allocates per packet.
//!
//! # Throughput baseline
//!
//! One direction, 32 KiB payloads, sealed then opened in place (the opener including
//! `decrypt_length`), single thread, release build, on the development machine (AMD EPYC, 2
//! shared cores, AES-NI/VAES, PCLMULQDQ, AVX-512, SHA-NI; load average about 7 from other
//! builds), MB/s of payload, two runs of 256 MiB each:
//!
//! | cipher + MAC | seal | open |
//! |---|---|---|
//! | `chacha20-poly1305@openssh.com` | 1 080–1 160 | 1 120–1 160 |
//! | `aes128-gcm@openssh.com` | 9 400–9 500 | 10 000–10 200 |
//! | `aes256-gcm@openssh.com` | 7 900–8 300 | 8 600–9 100 |
//! | `aes128-ctr` + `hmac-sha2-256-etm@openssh.com` | 1 290–1 350 | 1 300–1 340 |
//! | `aes256-ctr` + `hmac-sha2-256-etm@openssh.com` | 1 260–1 340 | 1 240–1 330 |
//! | `aes128-ctr` + `hmac-sha2-256` | 1 240–1 360 | 1 230–1 370 |
//! | `aes256-ctr` + `hmac-sha2-512-etm@openssh.com` | 370–400 | 370–390 |
//! | `aes128-ctr` + `hmac-sha1-etm@openssh.com` | 330–380 | 330–380 |
//!
//! Measured by hand with a scratch `examples/` loop over [`new_sealer`] / [`new_opener`] (not
//! kept: speed belongs in `benches/`, side by side with OpenSSH), run as `cargo build --release
//! -p twine-conch --example cipher_speed && ./target/release/examples/cipher_speed`. A
//! baseline for the benchmark issue, not a claim: CTR modes are bound by the HMAC, and
//! `ring`'s SHA-512 and SHA-1 paths are far slower than its SHA-256 on this CPU.

use super::mac::{mac_by_name, PacketMac};
use super::{CryptoError, NoneCipher, PacketOpener, PacketSealer};

mod chacha;
mod ctr;
mod gcm;

/// Every cipher name we implement (`none` aside), in OpenSSH 10's preference order.
pub const CIPHER_NAMES: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ChaCha20Poly1305,
    AesGcm,
    AesCtr,
}

/// A cipher: its name and the sizes the transport needs.
#[derive(Debug)]
pub struct CipherSpec {
    name: &'static str,
    kind: Kind,
    key_len: usize,
    iv_len: usize,
    block_size: usize,
}

impl CipherSpec {
    /// The SSH name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The key length in bytes (key derivation letters C and D).
    pub fn key_len(&self) -> usize {
        self.key_len
    }

    /// The IV length in bytes (key derivation letters A and B); 0 for ChaCha20-Poly1305.
    pub fn iv_len(&self) -> usize {
        self.iv_len
    }

    /// The block size that padding aligns to.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Whether the cipher authenticates by itself, so that no MAC is negotiated or used.
    pub fn is_aead(&self) -> bool {
        self.kind != Kind::AesCtr
    }

    /// The AEAD tag length, or 0 for a cipher that needs a MAC.
    pub fn aead_tag_len(&self) -> usize {
        if self.is_aead() {
            16
        } else {
            0
        }
    }
}

static SPECS: [CipherSpec; 6] = [
    CipherSpec {
        name: "chacha20-poly1305@openssh.com",
        kind: Kind::ChaCha20Poly1305,
        key_len: 64,
        iv_len: 0,
        block_size: 8,
    },
    CipherSpec {
        name: "aes128-gcm@openssh.com",
        kind: Kind::AesGcm,
        key_len: 16,
        iv_len: 12,
        block_size: 16,
    },
    CipherSpec {
        name: "aes256-gcm@openssh.com",
        kind: Kind::AesGcm,
        key_len: 32,
        iv_len: 12,
        block_size: 16,
    },
    CipherSpec { name: "aes128-ctr", kind: Kind::AesCtr, key_len: 16, iv_len: 16, block_size: 16 },
    CipherSpec { name: "aes192-ctr", kind: Kind::AesCtr, key_len: 24, iv_len: 16, block_size: 16 },
    CipherSpec { name: "aes256-ctr", kind: Kind::AesCtr, key_len: 32, iv_len: 16, block_size: 16 },
];

/// The cipher called `name`, or `None` if we do not implement it (`none` included: use
/// [`NoneCipher`]).
pub fn cipher_by_name(name: &str) -> Option<&'static CipherSpec> {
    SPECS.iter().find(|spec| spec.name == name)
}

/// Checks names and key lengths, and returns the cipher and the keyed MAC (if any).
fn resolve(
    cipher: &str,
    mac: Option<&str>,
    enc_key: &[u8],
    iv: &[u8],
    mac_key: &[u8],
) -> Result<(&'static CipherSpec, Option<PacketMac>), CryptoError> {
    let spec = cipher_by_name(cipher).ok_or(CryptoError::UnsupportedAlgorithm)?;
    if enc_key.len() != spec.key_len || iv.len() != spec.iv_len {
        return Err(CryptoError::InvalidKey);
    }
    if spec.is_aead() {
        return Ok((spec, None));
    }
    let mac_spec = mac.and_then(mac_by_name).ok_or(CryptoError::UnsupportedAlgorithm)?;
    Ok((spec, Some(PacketMac::new(mac_spec, mac_key)?)))
}

/// Builds the packet sealer for one direction.
///
/// - `cipher`: a name from [`CIPHER_NAMES`], or `none` (then `mac` must be `None` or `none`,
///   and the result is [`NoneCipher`]).
/// - `mac`: for a CTR cipher, a name from [`crate::crypto::mac::MAC_NAMES`] (required); for an
///   AEAD cipher it is ignored, since OpenSSH negotiates no MAC then.
/// - `enc_key`, `iv`, `mac_key`: exactly [`CipherSpec::key_len`], [`CipherSpec::iv_len`] and
///   [`crate::crypto::MacSpec::key_len`] bytes (key derivation letters C/D, A/B and E/F); the
///   MAC key is ignored for an AEAD cipher.
///
/// Errors: [`CryptoError::UnsupportedAlgorithm`] for an unknown or missing name,
/// [`CryptoError::InvalidKey`] for a key or IV of the wrong length. The keys are copied into
/// the sealer; the caller keeps and zeroizes its own copies.
pub fn new_sealer(
    cipher: &str,
    mac: Option<&str>,
    enc_key: &[u8],
    iv: &[u8],
    mac_key: &[u8],
) -> Result<Box<dyn PacketSealer>, CryptoError> {
    if cipher == "none" {
        return none_for(mac).map(|n| Box::new(n) as Box<dyn PacketSealer>);
    }
    let (spec, mac) = resolve(cipher, mac, enc_key, iv, mac_key)?;
    Ok(match (spec.kind, mac) {
        (Kind::ChaCha20Poly1305, _) => Box::new(chacha::ChaChaSealer::new(enc_key)?),
        (Kind::AesGcm, _) => Box::new(gcm::GcmSealer::new(enc_key, iv)?),
        (Kind::AesCtr, Some(mac)) => Box::new(ctr::CtrSealer::new(enc_key, iv, mac)?),
        (Kind::AesCtr, None) => return Err(CryptoError::UnsupportedAlgorithm),
    })
}

/// Builds the packet opener for one direction; the arguments are as for [`new_sealer`].
pub fn new_opener(
    cipher: &str,
    mac: Option<&str>,
    enc_key: &[u8],
    iv: &[u8],
    mac_key: &[u8],
) -> Result<Box<dyn PacketOpener>, CryptoError> {
    if cipher == "none" {
        return none_for(mac).map(|n| Box::new(n) as Box<dyn PacketOpener>);
    }
    let (spec, mac) = resolve(cipher, mac, enc_key, iv, mac_key)?;
    Ok(match (spec.kind, mac) {
        (Kind::ChaCha20Poly1305, _) => Box::new(chacha::ChaChaOpener::new(enc_key)?),
        (Kind::AesGcm, _) => Box::new(gcm::GcmOpener::new(enc_key, iv)?),
        (Kind::AesCtr, Some(mac)) => Box::new(ctr::CtrOpener::new(enc_key, iv, mac)?),
        (Kind::AesCtr, None) => return Err(CryptoError::UnsupportedAlgorithm),
    })
}

fn none_for(mac: Option<&str>) -> Result<NoneCipher, CryptoError> {
    match mac {
        None | Some("none") => Ok(NoneCipher),
        Some(_) => Err(CryptoError::UnsupportedAlgorithm),
    }
}

/// What a sealer does with a packet it cannot seal (shorter than `packet_length`, or a tag
/// buffer of the wrong size — both caller bugs, since `seal` cannot return an error): it zeroes
/// the packet and the tag, so nothing goes out in the clear and the peer rejects the packet.
fn fail_closed(packet: &mut [u8], tag: &mut [u8]) {
    log::error!("PacketSealer::seal called with a malformed packet or tag buffer; zeroing it");
    packet.fill(0);
    tag.fill(0);
}

/// Reads a big-endian `u32` from the first four bytes.
fn read_u32(bytes: &[u8]) -> Result<u32, CryptoError> {
    let head: [u8; 4] =
        bytes.get(..4).and_then(|h| h.try_into().ok()).ok_or(CryptoError::InvalidLength)?;
    Ok(u32::from_be_bytes(head))
}

#[cfg(test)]
mod tests;

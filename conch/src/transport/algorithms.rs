//! The transport's view of the algorithms in [`crate::crypto`]: lookups by SSH name, key sizes,
//! and building packet protection and compression for one direction from the derived keys.
//!
//! This is the only file of the transport that knows how `crypto` names and builds things;
//! the state machine asks it by name.

use zeroize::Zeroizing;

use crate::crypto::compression::compression_by_name;
use crate::crypto::kdf::letter;
use crate::crypto::{
    self, Compressor, CryptoError, Decompressor, HashAlgorithm, KexAlgorithm, PacketOpener,
    PacketSealer, SharedSecret,
};

/// The longest packet tag (MAC or AEAD tag) any algorithm writes: HMAC-SHA-512's 64 bytes.
pub(crate) const MAX_TAG_LEN: usize = crypto::mac::MAX_TAG_LEN;

/// The key exchange method called `name`.
pub(crate) fn kex(name: &str) -> Option<&'static dyn KexAlgorithm> {
    crypto::kex_by_name(name)
}

/// Whether the cipher `name` is an AEAD (then no MAC is negotiated).
pub(crate) fn is_aead(name: &str) -> bool {
    crypto::cipher_by_name(name).is_some_and(|c| c.is_aead())
}

/// Whether `name` is compression that waits for user authentication (`zlib@openssh.com`).
pub(crate) fn is_delayed_compression(name: &str) -> bool {
    name == "zlib@openssh.com"
}

/// The cipher's block size, for OpenSSH's default rekey volume.
pub(crate) fn cipher_block_size(name: &str) -> usize {
    crypto::cipher_by_name(name).map_or(8, |c| c.block_size())
}

/// The names of one direction's negotiated packet protection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Protection<'a> {
    pub(crate) cipher: &'a str,
    pub(crate) mac: Option<&'a str>,
}

/// Inputs of the key derivation (RFC 4253 §7.2) for one key exchange.
pub(crate) struct KeyMaterial<'a> {
    pub(crate) hash: HashAlgorithm,
    pub(crate) secret: &'a SharedSecret,
    pub(crate) exchange_hash: &'a [u8],
    pub(crate) session_id: &'a [u8],
}

/// The letters of RFC 4253 §7.2 for one direction: IV, encryption key, integrity key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Letters {
    iv: u8,
    key: u8,
    mac: u8,
}

/// Client to server: `A`, `C`, `E`.
pub(crate) const CLIENT_TO_SERVER: Letters = Letters {
    iv: letter::IV_CLIENT_TO_SERVER,
    key: letter::KEY_CLIENT_TO_SERVER,
    mac: letter::MAC_CLIENT_TO_SERVER,
};

/// Server to client: `B`, `D`, `F`.
pub(crate) const SERVER_TO_CLIENT: Letters = Letters {
    iv: letter::IV_SERVER_TO_CLIENT,
    key: letter::KEY_SERVER_TO_CLIENT,
    mac: letter::MAC_SERVER_TO_CLIENT,
};

/// One direction's derived keys: IV, encryption key and integrity key, zeroized on drop.
struct DirectionKeys {
    iv: Zeroizing<Vec<u8>>,
    key: Zeroizing<Vec<u8>>,
    mac: Zeroizing<Vec<u8>>,
}

impl DirectionKeys {
    /// Derives the sizes `protection` needs.
    fn derive(
        protection: Protection<'_>,
        m: &KeyMaterial<'_>,
        letters: Letters,
    ) -> Result<Self, CryptoError> {
        let cipher =
            crypto::cipher_by_name(protection.cipher).ok_or(CryptoError::UnsupportedAlgorithm)?;
        let mac_len = match protection.mac {
            Some(name) if !cipher.is_aead() => {
                crypto::mac_by_name(name).ok_or(CryptoError::UnsupportedAlgorithm)?.key_len()
            }
            _ => 0,
        };
        let derive = |letter, len| {
            crypto::derive_key(m.hash, m.secret, m.exchange_hash, letter, m.session_id, len)
        };
        Ok(Self {
            iv: derive(letters.iv, cipher.iv_len()),
            key: derive(letters.key, cipher.key_len()),
            mac: derive(letters.mac, mac_len),
        })
    }
}

/// Builds the sealer for one direction from the derived keys.
pub(crate) fn sealer(
    protection: Protection<'_>,
    material: &KeyMaterial<'_>,
    letters: Letters,
) -> Result<Box<dyn PacketSealer>, CryptoError> {
    let keys = DirectionKeys::derive(protection, material, letters)?;
    crypto::new_sealer(protection.cipher, protection.mac, &keys.key, &keys.iv, &keys.mac)
}

/// Builds the opener for one direction from the derived keys.
pub(crate) fn opener(
    protection: Protection<'_>,
    material: &KeyMaterial<'_>,
    letters: Letters,
) -> Result<Box<dyn PacketOpener>, CryptoError> {
    let keys = DirectionKeys::derive(protection, material, letters)?;
    crypto::new_opener(protection.cipher, protection.mac, &keys.key, &keys.iv, &keys.mac)
}

/// A fresh compressor for `name`, or `None` for `none`.
pub(crate) fn compressor(name: &str) -> Result<Option<Box<dyn Compressor>>, CryptoError> {
    match compression_by_name(name) {
        Some((c, _)) => Ok(Some(Box::new(c))),
        None if name == "none" => Ok(None),
        None => Err(CryptoError::UnsupportedAlgorithm),
    }
}

/// A fresh decompressor for `name`, or `None` for `none`.
pub(crate) fn decompressor(name: &str) -> Result<Option<Box<dyn Decompressor>>, CryptoError> {
    match compression_by_name(name) {
        Some((_, d)) => Ok(Some(Box::new(d))),
        None if name == "none" => Ok(None),
        None => Err(CryptoError::UnsupportedAlgorithm),
    }
}

//! Fixed host keys and hand-made wire bytes for tests.

use std::sync::{Arc, OnceLock};

use super::SeededRandom;
use crate::keys::{EcdsaCurve, HostKeySigner, KeySpec, PrivateKey};
use crate::wire::msgs::transport::KexInit;
use crate::wire::msgs::Message;
use crate::wire::NameList;

/// An Ed25519 host key made from a fixed seed (`[byte; 32]`).
///
/// # Panics
///
/// Never: every 32-byte seed is a valid key.
pub fn ed25519_host_key(byte: u8) -> Arc<dyn HostKeySigner> {
    #[allow(clippy::expect_used)] // invariant: any 32-byte seed is valid
    let key = PrivateKey::ed25519_from_seed(&[byte; 32]).expect("32-byte seed");
    Arc::new(key)
}

/// An ECDSA host key on `curve` made from a fixed scalar (`[byte; field length]`, which is
/// below every curve's order for `byte` under 0x80).
///
/// # Panics
///
/// If the scalar is not valid for the curve (a broken test).
pub fn ecdsa_host_key(curve: EcdsaCurve, byte: u8) -> Arc<dyn HostKeySigner> {
    let mut scalar = vec![byte; curve.field_len()];
    if curve == EcdsaCurve::P521 {
        scalar[0] &= 0x01;
    }
    #[allow(clippy::expect_used)] // the test kit: a bad fixture is a broken test
    let key = PrivateKey::ecdsa_from_scalar(curve, &scalar).expect("valid scalar");
    Arc::new(key)
}

/// A 2048-bit RSA host key, generated once per process from a fixed seed.
///
/// # Panics
///
/// If generation fails (a broken build).
pub fn rsa_host_key() -> Arc<dyn HostKeySigner> {
    static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        #[allow(clippy::expect_used)] // the test kit: generation from a seed cannot fail
        let key = PrivateKey::generate(KeySpec::Rsa(2048), &mut SeededRandom::new(2048))
            .expect("RSA generation");
        Arc::new(key)
    });
    Arc::clone(key) as Arc<dyn HostKeySigner>
}

/// One host key of every type we support: Ed25519, ECDSA on P-256, P-384 and P-521, RSA.
pub fn all_host_keys() -> Vec<Arc<dyn HostKeySigner>> {
    vec![
        ed25519_host_key(1),
        ecdsa_host_key(EcdsaCurve::P256, 0x11),
        ecdsa_host_key(EcdsaCurve::P384, 0x22),
        ecdsa_host_key(EcdsaCurve::P521, 0x33),
        rsa_host_key(),
    ]
}

/// `payload` framed as a binary packet under the `none` cipher (block size 8), with zero
/// padding: what a peer sends before the first NEWKEYS.
pub fn plain_packet(payload: &[u8]) -> Vec<u8> {
    let unpadded = 4 + 1 + payload.len();
    let mut padding = 8 - unpadded % 8;
    if padding < 4 {
        padding += 8;
    }
    let packet_len = u32::try_from(1 + payload.len() + padding).unwrap_or(u32::MAX);
    let mut out = packet_len.to_be_bytes().to_vec();
    out.push(u8::try_from(padding).unwrap_or(u8::MAX));
    out.extend_from_slice(payload);
    out.resize(out.len() + padding, 0);
    out
}

/// The ten name-lists of a KEXINIT, by category, for building one by hand.
#[derive(Clone, Debug)]
pub struct KexInitLists<'a> {
    /// Key exchange methods and markers.
    pub kex: &'a str,
    /// Host key algorithms.
    pub host_key: &'a str,
    /// Ciphers, both directions.
    pub cipher: &'a str,
    /// MACs, both directions.
    pub mac: &'a str,
    /// Compression, both directions.
    pub compression: &'a str,
    /// Whether a guessed key exchange packet follows.
    pub first_kex_packet_follows: bool,
}

impl<'a> KexInitLists<'a> {
    /// Lists offering `kex` (markers included as given) with `ssh-ed25519`, `aes128-ctr`,
    /// `hmac-sha2-256`, no compression, and no guess.
    pub fn with_kex(kex: &'a str) -> Self {
        Self {
            kex,
            host_key: "ssh-ed25519",
            cipher: "aes128-ctr",
            mac: "hmac-sha2-256",
            compression: "none",
            first_kex_packet_follows: false,
        }
    }

    /// The KEXINIT payload with these lists and a zero cookie.
    ///
    /// # Panics
    ///
    /// If a list is not a valid name-list (a broken test).
    pub fn payload(&self) -> Vec<u8> {
        #[allow(clippy::expect_used)] // the test kit: a malformed list is a broken test
        let list = |s| NameList::parse(s).expect("valid name-list");
        let msg = KexInit {
            cookie: [0; 16],
            kex: list(self.kex.as_bytes()),
            host_key: list(self.host_key.as_bytes()),
            cipher_c2s: list(self.cipher.as_bytes()),
            cipher_s2c: list(self.cipher.as_bytes()),
            mac_c2s: list(self.mac.as_bytes()),
            mac_s2c: list(self.mac.as_bytes()),
            compression_c2s: list(self.compression.as_bytes()),
            compression_s2c: list(self.compression.as_bytes()),
            language_c2s: NameList::default(),
            language_s2c: NameList::default(),
            first_kex_packet_follows: self.first_kex_packet_follows,
            reserved: 0,
        };
        let mut out = Vec::new();
        msg.encode(&mut out);
        out
    }
}

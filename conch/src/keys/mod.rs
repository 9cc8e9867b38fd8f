//! Key types, signatures, and the files keys live in.
//!
//! [`PublicKey`] is a public key as SSH encodes it (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709):
//! parse it from a key blob, write it back, verify signatures with it. [`PrivateKey`] signs,
//! and is generated from an injected [`crate::crypto::SecureRandom`].
//! [`SignatureAlgorithm`] names what a signature was made with: one RSA key can sign as
//! `rsa-sha2-256`, `rsa-sha2-512` or (legacy, verification only) `ssh-rsa`.
//!
//! The server's host keys are used through the [`HostKeySigner`] trait, so that a privilege-
//! separated server can keep private keys in another process and sign over a request protocol.
//!
//! Files (all parsed from bytes the caller read; nothing here touches the file system or the
//! clock):
//!
//! - [`load_private_key`]: any private key file (`openssh-key-v1` plain or encrypted with every
//!   cipher `ssh-keygen` writes, PEM PKCS#1/SEC1 plain or legacy-encrypted, PKCS#8 plain or
//!   PBES2-encrypted), with a passphrase callback called only for encrypted files;
//!   [`openssh::encode`] and [`pem::encode_private`] write them.
//! - [`PublicKeyLine`] (`type base64 comment`), [`decode_rfc4716`]/[`encode_rfc4716`],
//!   [`pem::decode_public`]/[`pem::encode_public`], [`load_public_key`] for any of them.
//! - [`Fingerprint`]s (`SHA256:`, `MD5:`), randomart and bubblebabble in `ssh-keygen`'s forms.
//! - [`authorized_keys`]: lines with every OpenSSH option into [`KeyOptions`]; bad lines are
//!   reported with their numbers and skipped.
//! - [`known_hosts`]: the client's lookup ([`KnownHosts::check`] → [`HostKeyStatus`]), new
//!   lines, and the rewrites behind `ckeygen -R` and `-H`.
//! - [`pattern`]: OpenSSH's host, address and CIDR pattern lists.
//! - [`krl`]: OpenSSH key revocation lists (`ssh-keygen -k`).
//! - [`cert`]: OpenSSH certificates ([`Certificate`]): parsed, CA signature verified, validity,
//!   principals, critical options and extensions checked.

use std::fmt;

use p521::ecdsa::signature::Verifier as _;
use ring::signature::{self as ring_sig, UnparsedPublicKey};

use crate::crypto::CryptoError;
use crate::wire::{InvalidMessage, Reader, Writer};

mod armor;
pub mod authorized_keys;
pub mod cert;
mod file;
mod fingerprint;
pub mod known_hosts;
pub mod krl;
pub mod openssh;
pub mod pattern;
pub mod pem;
mod private;
mod public;

pub use authorized_keys::{AuthorizedKey, AuthorizedKeys, KeyOptions};
pub use cert::{CertError, CertType, Certificate};
pub use file::{
    load_private_key, load_public_key, public_key_from_private, LoadedKey, PrivateKeyFormat,
};
pub use fingerprint::{Fingerprint, FingerprintHash};
pub use known_hosts::{HostKeyStatus, KnownHosts};
pub use private::{
    KeySpec, PrivateKey, RsaComponents, SecretParts, DEFAULT_RSA_BITS, MAX_RSA_GENERATE_BITS,
    MIN_RSA_GENERATE_BITS,
};
pub use public::{
    decode_rfc4716, encode_rfc4716, is_rfc4716, PublicKeyLine, Rfc4716Key, MAX_PUBLIC_LINE_LEN,
};

/// The largest RSA modulus we accept, in bits (OpenSSH's `SSHBUF_MAX_BIGNUM` allows 16384).
pub const MAX_RSA_BITS: usize = 16384;

/// The smallest RSA modulus we accept, in bits (OpenSSH's `SSH_RSA_MINIMUM_MODULUS_SIZE`).
pub const MIN_RSA_BITS: usize = 1024;

/// The algorithm a signature is made with, by its SSH name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// `ssh-ed25519` (RFC 8709).
    Ed25519,
    /// `ecdsa-sha2-nistp256` (RFC 5656).
    EcdsaP256,
    /// `ecdsa-sha2-nistp384` (RFC 5656).
    EcdsaP384,
    /// `ecdsa-sha2-nistp521` (RFC 5656).
    EcdsaP521,
    /// `rsa-sha2-256` (RFC 8332).
    RsaSha256,
    /// `rsa-sha2-512` (RFC 8332).
    RsaSha512,
    /// `ssh-rsa`: RSA with SHA-1. Legacy: in no default list, used only where configured.
    RsaSha1,
}

impl SignatureAlgorithm {
    /// Every algorithm, in OpenSSH's default preference order for host keys.
    pub const ALL: [Self; 7] = [
        Self::Ed25519,
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::EcdsaP521,
        Self::RsaSha512,
        Self::RsaSha256,
        Self::RsaSha1,
    ];

    /// The SSH name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ssh-ed25519",
            Self::EcdsaP256 => "ecdsa-sha2-nistp256",
            Self::EcdsaP384 => "ecdsa-sha2-nistp384",
            Self::EcdsaP521 => "ecdsa-sha2-nistp521",
            Self::RsaSha256 => "rsa-sha2-256",
            Self::RsaSha512 => "rsa-sha2-512",
            Self::RsaSha1 => "ssh-rsa",
        }
    }

    /// The algorithm with this SSH name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The key type this algorithm signs with.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::Ed25519 => KeyType::Ed25519,
            Self::EcdsaP256 => KeyType::Ecdsa(EcdsaCurve::P256),
            Self::EcdsaP384 => KeyType::Ecdsa(EcdsaCurve::P384),
            Self::EcdsaP521 => KeyType::Ecdsa(EcdsaCurve::P521),
            Self::RsaSha256 | Self::RsaSha512 | Self::RsaSha1 => KeyType::Rsa,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An ECDSA curve (RFC 5656 §10.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcdsaCurve {
    /// NIST P-256, `nistp256`.
    P256,
    /// NIST P-384, `nistp384`.
    P384,
    /// NIST P-521, `nistp521`.
    P521,
}

impl EcdsaCurve {
    /// The curve identifier in key blobs.
    pub fn identifier(self) -> &'static str {
        match self {
            Self::P256 => "nistp256",
            Self::P384 => "nistp384",
            Self::P521 => "nistp521",
        }
    }

    /// The size of a field element (and of the private scalar), in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// The only signature algorithm for keys on this curve.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::P256 => SignatureAlgorithm::EcdsaP256,
            Self::P384 => SignatureAlgorithm::EcdsaP384,
            Self::P521 => SignatureAlgorithm::EcdsaP521,
        }
    }

    /// The key size in bits, as `ssh-keygen -l` prints it.
    pub fn bits(self) -> usize {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }
}

/// The type of a key, independent of the signature algorithm used with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// Ed25519.
    Ed25519,
    /// ECDSA on a curve.
    Ecdsa(EcdsaCurve),
    /// RSA.
    Rsa,
}

impl KeyType {
    /// The key type's name in key blobs and key files (`ssh-ed25519`, `ecdsa-sha2-nistp256`,
    /// `ssh-rsa`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ssh-ed25519",
            Self::Ecdsa(curve) => curve.signature_algorithm().name(),
            Self::Rsa => "ssh-rsa",
        }
    }

    /// The key type with this blob name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ssh-ed25519" => Some(Self::Ed25519),
            "ecdsa-sha2-nistp256" => Some(Self::Ecdsa(EcdsaCurve::P256)),
            "ecdsa-sha2-nistp384" => Some(Self::Ecdsa(EcdsaCurve::P384)),
            "ecdsa-sha2-nistp521" => Some(Self::Ecdsa(EcdsaCurve::P521)),
            "ssh-rsa" => Some(Self::Rsa),
            _ => None,
        }
    }
}

/// Why a key could not be read or used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes do not decode as a key.
    Malformed(InvalidMessage),
    /// The key type is one we do not support (its name is given).
    UnsupportedType(String),
    /// The key decodes but is not valid: a point not on its curve, an RSA modulus out of
    /// bounds, a curve identifier that does not match the type.
    Invalid,
    /// The private key does not match the public key stored beside it.
    Mismatch,
    /// A key size that cannot be generated (RSA below 2048 or above 16384 bits, an ECDSA size
    /// other than 256, 384 or 521).
    InvalidSize,
    /// The random source failed during key generation.
    Random,
    /// The file is not in any key format we know, or breaks its format's rules (the text says
    /// how).
    InvalidFormat(&'static str),
    /// The passphrase did not decrypt the key (check-ints or the AEAD tag did not match).
    WrongPassphrase,
    /// The key is encrypted and no passphrase was given.
    PassphraseRequired,
    /// The key file is encrypted with a cipher or KDF we do not implement (its name is given).
    UnsupportedCipher(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "invalid format: {e}"),
            Self::UnsupportedType(name) => write!(f, "unknown or unsupported key type {name:?}"),
            Self::Invalid => f.write_str("invalid key"),
            Self::Mismatch => f.write_str("private key does not match public key"),
            Self::InvalidSize => f.write_str("invalid key length"),
            Self::Random => f.write_str("random number generator failed"),
            Self::InvalidFormat(why) => write!(f, "invalid format: {why}"),
            Self::WrongPassphrase => {
                f.write_str("incorrect passphrase supplied to decrypt private key")
            }
            Self::PassphraseRequired => f.write_str("a passphrase is required to decrypt the key"),
            Self::UnsupportedCipher(name) => write!(f, "unknown cipher or KDF {name:?}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl From<InvalidMessage> for KeyError {
    fn from(e: InvalidMessage) -> Self {
        Self::Malformed(e)
    }
}

/// A public key, as carried in SSH key blobs.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicKey {
    /// An Ed25519 public key (32 bytes).
    Ed25519([u8; 32]),
    /// An ECDSA public key: the curve and the uncompressed SEC1 point (`0x04 || x || y`).
    Ecdsa {
        /// The curve.
        curve: EcdsaCurve,
        /// The SEC1 uncompressed point.
        point: Vec<u8>,
    },
    /// An RSA public key: exponent and modulus as unsigned big-endian magnitudes.
    Rsa {
        /// The public exponent `e`.
        e: Vec<u8>,
        /// The modulus `n`.
        n: Vec<u8>,
    },
}

impl PublicKey {
    /// Parses a public key blob (`string type || ...`), which must be consumed exactly.
    pub fn from_blob(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let key = Self::read(&mut r)?;
        r.finish()?;
        Ok(key)
    }

    /// Reads a public key's fields (starting with its type name) from `r`. Key files put more
    /// fields after these, so this does not require the reader to end.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let name = r.read_utf8()?;
        let key_type =
            KeyType::from_name(name).ok_or_else(|| KeyError::UnsupportedType(name.to_owned()))?;
        Self::read_body(key_type, r)
    }

    /// Reads the fields after the type name for a key of `key_type`.
    pub fn read_body(key_type: KeyType, r: &mut Reader<'_>) -> Result<Self, KeyError> {
        match key_type {
            KeyType::Ed25519 => {
                let bytes = r.read_string()?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Invalid)?;
                Ok(Self::Ed25519(key))
            }
            KeyType::Ecdsa(curve) => {
                if r.read_utf8()? != curve.identifier() {
                    return Err(KeyError::Invalid);
                }
                let point = r.read_string()?;
                if point.len() != 1 + 2 * curve.field_len() || point.first() != Some(&0x04) {
                    return Err(KeyError::Invalid);
                }
                Ok(Self::Ecdsa { curve, point: point.to_vec() })
            }
            KeyType::Rsa => {
                let e = r.read_mpint_unsigned()?;
                let n = r.read_mpint_unsigned()?;
                let bits = bit_len(n);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) || e.is_empty() || e.len() > 8 {
                    return Err(KeyError::Invalid);
                }
                Ok(Self::Rsa { e: e.to_vec(), n: n.to_vec() })
            }
        }
    }

    /// The key blob.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut blob = Vec::new();
        self.write(&mut Writer::new(&mut blob));
        blob
    }

    /// Writes the key blob's fields (type name first) to `w`.
    pub fn write(&self, w: &mut Writer<'_>) {
        w.write_string(self.key_type().name().as_bytes());
        match self {
            Self::Ed25519(key) => {
                w.write_string(key);
            }
            Self::Ecdsa { curve, point } => {
                w.write_string(curve.identifier().as_bytes()).write_string(point);
            }
            Self::Rsa { e, n } => {
                w.write_mpint_unsigned(e).write_mpint_unsigned(n);
            }
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::Ed25519(_) => KeyType::Ed25519,
            Self::Ecdsa { curve, .. } => KeyType::Ecdsa(*curve),
            Self::Rsa { .. } => KeyType::Rsa,
        }
    }

    /// The key size in bits, as `ssh-keygen -l` prints it.
    pub fn bits(&self) -> usize {
        match self {
            Self::Ed25519(_) => 256,
            Self::Ecdsa { curve, .. } => curve.bits(),
            Self::Rsa { n, .. } => bit_len(n),
        }
    }

    /// Whether this key can make signatures of `algorithm`.
    pub fn supports(&self, algorithm: SignatureAlgorithm) -> bool {
        algorithm.key_type() == self.key_type()
    }

    /// Verifies a signature blob (`string algorithm || string signature`) over `data`. The blob
    /// must name `expected`, and `expected` must suit this key.
    pub fn verify(
        &self,
        expected: SignatureAlgorithm,
        data: &[u8],
        signature_blob: &[u8],
    ) -> Result<(), CryptoError> {
        if !self.supports(expected) {
            return Err(CryptoError::BadSignature);
        }
        let mut r = Reader::new(signature_blob);
        let name = r.read_string().map_err(|_| CryptoError::BadSignature)?;
        let sig = r.read_string().map_err(|_| CryptoError::BadSignature)?;
        r.finish().map_err(|_| CryptoError::BadSignature)?;
        if name != expected.name().as_bytes() {
            return Err(CryptoError::BadSignature);
        }
        match self {
            Self::Ed25519(key) => UnparsedPublicKey::new(&ring_sig::ED25519, key).verify(data, sig),
            Self::Ecdsa { curve, point } => {
                let (alg, field): (&ring_sig::EcdsaVerificationAlgorithm, usize) = match curve {
                    EcdsaCurve::P256 => (&ring_sig::ECDSA_P256_SHA256_FIXED, 32),
                    EcdsaCurve::P384 => (&ring_sig::ECDSA_P384_SHA384_FIXED, 48),
                    EcdsaCurve::P521 => return verify_p521(point, sig, data),
                };
                let fixed = ecdsa_signature_to_fixed(sig, field)?;
                UnparsedPublicKey::new(alg, point).verify(data, &fixed)
            }
            Self::Rsa { e, n } => {
                let params = match expected {
                    SignatureAlgorithm::RsaSha256 => {
                        &ring_sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
                    }
                    SignatureAlgorithm::RsaSha512 => {
                        &ring_sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
                    }
                    _ => &ring_sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                };
                ring_sig::RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                    .verify(params, data, sig)
            }
        }
        .map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {} bits)", self.key_type().name(), self.bits())
    }
}

/// Something that can sign with a host key: a [`PrivateKey`] in memory, or a request to a
/// privileged process that holds it.
pub trait HostKeySigner: Send + Sync + fmt::Debug {
    /// The public half.
    fn public_key(&self) -> &PublicKey;

    /// Signs `data` with `algorithm`, returning a signature blob
    /// (`string algorithm || string signature`).
    fn sign(&self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError>;

    /// Signs this key's `hostkeys-prove-00@openssh.com` proof for the connection whose session
    /// id is `session_id` (the data is [`hostkeys_prove_data`]). A signer whose private half is
    /// elsewhere asks for the proof itself, so that it never signs arbitrary data.
    fn sign_hostkeys_proof(
        &self,
        algorithm: SignatureAlgorithm,
        session_id: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.sign(algorithm, &hostkeys_prove_data(session_id, &self.public_key().to_blob()))
    }
}

/// What a `hostkeys-prove-00@openssh.com` proof signs (OpenSSH's `PROTOCOL` §2.5):
/// `string "hostkeys-prove-00@openssh.com" || string session id || string host key`.
pub fn hostkeys_prove_data(session_id: &[u8], key_blob: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    Writer::new(&mut data)
        .write_string(b"hostkeys-prove-00@openssh.com")
        .write_string(session_id)
        .write_string(key_blob);
    data
}

/// Converts an SSH ECDSA signature (`mpint r || mpint s`) to the fixed-width `r || s` form.
fn ecdsa_signature_to_fixed(sig: &[u8], field: usize) -> Result<Vec<u8>, CryptoError> {
    let mut r = Reader::new(sig);
    let bad = |_| CryptoError::BadSignature;
    let big_r = r.read_mpint_unsigned().map_err(bad)?;
    let big_s = r.read_mpint_unsigned().map_err(bad)?;
    r.finish().map_err(bad)?;
    if big_r.len() > field || big_s.len() > field {
        return Err(CryptoError::BadSignature);
    }
    let mut fixed = vec![0; 2 * field];
    fixed[field - big_r.len()..field].copy_from_slice(big_r);
    fixed[2 * field - big_s.len()..].copy_from_slice(big_s);
    Ok(fixed)
}

/// Verifies a P-521 signature (`mpint r || mpint s`) with RustCrypto, which `ring` lacks.
fn verify_p521(point: &[u8], sig: &[u8], data: &[u8]) -> Result<(), CryptoError> {
    let fixed = ecdsa_signature_to_fixed(sig, EcdsaCurve::P521.field_len())?;
    let key =
        p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| CryptoError::BadSignature)?;
    let sig = p521::ecdsa::Signature::from_slice(&fixed).map_err(|_| CryptoError::BadSignature)?;
    key.verify(data, &sig).map_err(|_| CryptoError::BadSignature)
}

/// The number of significant bits in a big-endian magnitude.
pub(crate) fn bit_len(magnitude: &[u8]) -> usize {
    let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    match magnitude.get(start) {
        None => 0,
        Some(&top) => (magnitude.len() - start - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 8032 §7.1 TEST 1 key signs the empty message as the RFC says, and verifies it.
    #[test]
    fn ed25519_signs_and_verifies_the_rfc_8032_vector() {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let key = PrivateKey::ed25519_from_seed(&seed).unwrap();
        let public = key.public_key();
        assert_eq!(
            public,
            &PublicKey::Ed25519(
                hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                    .unwrap()
                    .try_into()
                    .unwrap()
            )
        );
        let blob = key.sign(SignatureAlgorithm::Ed25519, b"").unwrap();
        let mut r = Reader::new(&blob);
        assert_eq!(r.read_string().unwrap(), b"ssh-ed25519");
        assert_eq!(
            hex::encode(r.read_string().unwrap()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        public.verify(SignatureAlgorithm::Ed25519, b"", &blob).unwrap();
        assert_eq!(
            public.verify(SignatureAlgorithm::Ed25519, b"x", &blob),
            Err(CryptoError::BadSignature)
        );
    }

    /// A key blob round-trips, and a blob with trailing bytes or a bad length is refused.
    #[test]
    fn public_key_blobs_round_trip_and_reject_garbage() {
        let key = PrivateKey::ed25519_from_seed(&[7; 32]).unwrap();
        let blob = key.public_key().to_blob();
        assert_eq!(&PublicKey::from_blob(&blob).unwrap(), key.public_key());
        let mut long = blob.clone();
        long.push(0);
        assert_eq!(
            PublicKey::from_blob(&long),
            Err(KeyError::Malformed(InvalidMessage::TrailingData))
        );
        let mut unknown = Vec::new();
        Writer::new(&mut unknown).write_string(b"ssh-dss").write_string(b"");
        assert_eq!(
            PublicKey::from_blob(&unknown),
            Err(KeyError::UnsupportedType("ssh-dss".into()))
        );
    }

    /// A signature blob naming another algorithm than the expected one does not verify.
    #[test]
    fn verify_requires_the_expected_algorithm_name() {
        let key = PrivateKey::ed25519_from_seed(&[1; 32]).unwrap();
        let blob = key.sign(SignatureAlgorithm::Ed25519, b"data").unwrap();
        assert_eq!(
            key.public_key().verify(SignatureAlgorithm::EcdsaP256, b"data", &blob),
            Err(CryptoError::BadSignature)
        );
    }

    /// Every public key type's blob, cut at every byte, is refused with an error (never a panic
    /// or a key), and the whole blob round-trips.
    #[test]
    fn truncated_public_key_blobs_are_errors() {
        let mut rng = crate::crypto::OsRandom::new();
        for spec in [
            KeySpec::Ed25519,
            KeySpec::Ecdsa(EcdsaCurve::P256),
            KeySpec::Ecdsa(EcdsaCurve::P384),
            KeySpec::Ecdsa(EcdsaCurve::P521),
            KeySpec::Rsa(2048),
        ] {
            let key = PrivateKey::generate(spec, &mut rng).unwrap();
            let blob = key.public_key().to_blob();
            assert_eq!(&PublicKey::from_blob(&blob).unwrap(), key.public_key());
            for len in 0..blob.len() {
                assert!(PublicKey::from_blob(&blob[..len]).is_err(), "{spec:?} at {len}");
            }
        }
    }

    /// A P-521 signature verifies, and one with a flipped bit does not.
    #[test]
    fn verifies_p521_signatures() {
        let key = PrivateKey::ecdsa_from_scalar(EcdsaCurve::P521, &[0x42; 65]).unwrap();
        let mut sig = key.sign(SignatureAlgorithm::EcdsaP521, b"data").unwrap();
        key.public_key().verify(SignatureAlgorithm::EcdsaP521, b"data", &sig).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert_eq!(
            key.public_key().verify(SignatureAlgorithm::EcdsaP521, b"data", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    /// Bit lengths ignore leading zero bytes and count the top byte's significant bits.
    #[test]
    fn counts_significant_bits() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[0, 1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
    }
}

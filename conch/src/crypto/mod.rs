//! The negotiable algorithms: key exchange, packet protection (ciphers and MACs), compression,
//! exchange hashes and key derivation, and the injected source of randomness.
//!
//! Algorithms are trait objects looked up by their SSH names, so the transport never matches on
//! an algorithm enum, and tests can run everything from a seeded [`SecureRandom`].
//!
//! # Packet protection contract
//!
//! A binary packet (RFC 4253 §6) is `uint32 packet_length || byte padding_length || payload ||
//! padding`, followed by a tag (the MAC, or the AEAD tag). The transport builds the plaintext
//! packet in a reusable buffer and hands it to a [`PacketSealer`], which encrypts in place and
//! writes the tag. On input the transport asks a [`PacketOpener`] for the packet length from the
//! first [`PacketOpener::length_prefix_len`] bytes, waits for the whole packet and tag, and has it
//! verified and decrypted in place. No allocation happens per packet.
//!
//! # From negotiation to protected packets
//!
//! 1. [`algorithms::Preferences`] (or [`algorithms::Category::defaults`]) gives the name-lists
//!    for KEXINIT; configuration goes through [`algorithms::configure`].
//! 2. For the negotiated method, [`kex_by_name`] gives a [`KexAlgorithm`]: the client calls
//!    [`KexAlgorithm::start_client`] and sends [`KexClient::public`], the server answers with
//!    [`KexAlgorithm::respond`], and the client ends with [`KexClient::finish`]. Both get the
//!    same [`SharedSecret`], already encoded for hashing. The exchange hash uses
//!    [`KexAlgorithm::hash`].
//! 3. [`cipher_by_name`] and [`mac_by_name`] give the key, IV and MAC key lengths;
//!    [`derive_key`] (letters in [`kdf::letter`]) derives them. With an AEAD cipher
//!    ([`CipherSpec::is_aead`]) no MAC is negotiated.
//! 4. [`new_sealer`] and [`new_opener`] build each direction's packet protection;
//!    [`compression::compression_by_name`] its zlib stream.

use std::fmt;

use zeroize::Zeroizing;

pub mod algorithms;
pub mod cipher;
pub mod compression;
pub mod kdf;
pub mod kex;
pub mod mac;
#[cfg(any(test, feature = "testing"))]
mod seeded;

pub use cipher::{cipher_by_name, new_opener, new_sealer, CipherSpec};
pub use kdf::derive_key;
pub use kex::kex_by_name;
pub use mac::{mac_by_name, MacSpec};
#[cfg(any(test, feature = "testing"))]
pub use seeded::SeededRandom;

/// A failure inside a cryptographic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The system random number generator failed.
    RandomFailed,
    /// A peer's public value is invalid (wrong length, not on the curve, out of range, or gives
    /// an all-zero shared secret).
    InvalidPublicValue,
    /// A key could not be used: wrong length, malformed, unsupported size.
    InvalidKey,
    /// A signature did not verify, or was malformed.
    BadSignature,
    /// The named algorithm is not one we implement.
    UnsupportedAlgorithm,
    /// A packet failed authentication (MAC or AEAD tag mismatch).
    AuthenticationFailed,
    /// A buffer had the wrong length for the operation.
    InvalidLength,
    /// Compressed data was corrupt, or would have decompressed beyond the allowed size.
    BadCompression,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RandomFailed => "random number generator failed",
            Self::InvalidPublicValue => "invalid public value",
            Self::InvalidKey => "invalid key",
            Self::BadSignature => "signature verification failed",
            Self::UnsupportedAlgorithm => "unsupported algorithm",
            Self::AuthenticationFailed => "message authentication failed",
            Self::InvalidLength => "invalid length",
            Self::BadCompression => "bad compressed data",
        })
    }
}

impl std::error::Error for CryptoError {}

/// A source of cryptographically secure random bytes, injected into every state machine so
/// that tests and fuzzers can run deterministically.
pub trait SecureRandom: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// The operating system's random number generator.
#[derive(Debug)]
pub struct OsRandom {
    inner: ring::rand::SystemRandom,
}

impl OsRandom {
    /// The system generator.
    pub fn new() -> Self {
        Self { inner: ring::rand::SystemRandom::new() }
    }
}

impl Default for OsRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl SecureRandom for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
        ring::rand::SecureRandom::fill(&self.inner, dest).map_err(|_| CryptoError::RandomFailed)
    }
}

/// The hash function of a key exchange method, used for the exchange hash and key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1, for `diffie-hellman-group14-sha1` only (never in the defaults).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// A fresh incremental hasher.
    pub fn hasher(self) -> Hasher {
        Hasher(ring::digest::Context::new(self.ring()))
    }

    /// The digest of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Digest {
        let mut h = self.hasher();
        for part in parts {
            h.update(part);
        }
        h.finish()
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        self.ring().output_len()
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// An incremental hash computation.
#[derive(Clone)]
pub struct Hasher(ring::digest::Context);

impl Hasher {
    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Digest {
        Digest(self.0.finish())
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Hasher").field(&self.0.algorithm()).finish()
    }
}

/// A finished digest.
#[derive(Clone, Copy)]
pub struct Digest(ring::digest::Digest);

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The shared secret `K` of a key exchange, already in the encoding that goes into the exchange
/// hash and the key derivation: an `mpint` for (EC)DH methods, a `string` for the post-quantum
/// hybrids. The bytes include the uint32 length prefix. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// Wraps an already-encoded `K` (length prefix included).
    pub fn from_encoded(encoded: Zeroizing<Vec<u8>>) -> Self {
        Self(encoded)
    }

    /// `K` as an `mpint` from a non-negative big-endian magnitude (ECDH, DH).
    pub fn from_mpint_magnitude(magnitude: &[u8]) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(magnitude.len() + 5));
        crate::wire::Writer::new(&mut buf).write_mpint_unsigned(magnitude);
        Self(buf)
    }

    /// `K` as a `string` (the hybrid methods, whose K is a hash output).
    pub fn from_string(bytes: &[u8]) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(bytes.len() + 4));
        crate::wire::Writer::new(&mut buf).write_string(bytes);
        Self(buf)
    }

    /// The encoded bytes, length prefix included, as they go into hashes.
    pub fn encoded(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

/// A key exchange method (RFC 4253 §8, RFC 5656, RFC 8731, the hybrids).
///
/// The public values are exchanged as the *contents* of the single field of the init and reply
/// messages: the bytes of `string Q_C` / `string Q_S` for ECDH and the hybrids, or the body of
/// `mpint e` / `mpint f` for finite-field DH (an `mpint` and a `string` are both a uint32 length
/// and bytes on the wire, so the transport handles both alike). The implementation validates
/// every peer value and returns [`CryptoError::InvalidPublicValue`] for a bad one.
pub trait KexAlgorithm: Send + Sync + fmt::Debug {
    /// The SSH name, such as `curve25519-sha256`.
    fn name(&self) -> &'static str;

    /// The hash used for the exchange hash and key derivation.
    fn hash(&self) -> HashAlgorithm;

    /// Client side: makes the ephemeral key and the value for the init message.
    fn start_client(&self, rng: &mut dyn SecureRandom) -> Result<Box<dyn KexClient>, CryptoError>;

    /// Server side: answers the client's public value with ours and the shared secret.
    fn respond(
        &self,
        client_public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<KexReply, CryptoError>;
}

/// The client's half of a key exchange in progress.
pub trait KexClient: Send {
    /// The value to send in the init message.
    fn public(&self) -> &[u8];

    /// Completes the exchange with the server's public value.
    fn finish(self: Box<Self>, server_public: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// The server's answer to a client's key exchange value.
#[derive(Debug)]
pub struct KexReply {
    /// The server's public value, for the reply message.
    pub public: Vec<u8>,
    /// The shared secret.
    pub secret: SharedSecret,
}

/// Encrypts and authenticates outgoing packets of one direction.
pub trait PacketSealer: Send {
    /// The block size that padding aligns to (at least 8).
    fn block_size(&self) -> usize;

    /// Whether `packet_length` is sent in the clear as associated data (AES-GCM, EtM MACs) or
    /// encrypted separately (chacha20-poly1305@openssh.com): then padding aligns
    /// `packet_length` bytes, not `4 + packet_length`.
    fn length_excluded_from_padding(&self) -> bool;

    /// The length of the tag written after the packet (0 for `none`).
    fn tag_len(&self) -> usize;

    /// Encrypts `packet` (from `packet_length` through the padding) in place, and writes the tag
    /// for sequence number `seq` into `tag` (exactly [`Self::tag_len`] bytes).
    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]);
}

/// Authenticates and decrypts incoming packets of one direction.
pub trait PacketOpener: Send {
    /// The block size packets are aligned to.
    fn block_size(&self) -> usize;

    /// Whether `packet_length` is outside the aligned region (see
    /// [`PacketSealer::length_excluded_from_padding`]).
    fn length_excluded_from_padding(&self) -> bool;

    /// The length of the tag after each packet.
    fn tag_len(&self) -> usize;

    /// How many leading bytes [`Self::decrypt_length`] needs: 4 when the length can be read on
    /// its own, the block size when it is encrypted inside the first block (CTR with a
    /// non-EtM MAC).
    fn length_prefix_len(&self) -> usize;

    /// Reads `packet_length` from the first [`Self::length_prefix_len`] bytes of a packet. It may
    /// decrypt them in place (then [`Self::open`] does not decrypt them again). The caller
    /// checks the length against its limits before waiting for the rest.
    fn decrypt_length(&mut self, seq: u32, head: &mut [u8]) -> Result<u32, CryptoError>;

    /// Verifies `tag` over the whole `packet` (from `packet_length` through the padding) and
    /// decrypts it in place. Returns [`CryptoError::AuthenticationFailed`] on a bad tag, in
    /// which case the packet contents are unspecified.
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError>;
}

/// The `none` cipher with no MAC, in force until the first NEWKEYS.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoneCipher;

impl PacketSealer for NoneCipher {
    fn block_size(&self) -> usize {
        8
    }

    fn length_excluded_from_padding(&self) -> bool {
        false
    }

    fn tag_len(&self) -> usize {
        0
    }

    fn seal(&mut self, _seq: u32, _packet: &mut [u8], _tag: &mut [u8]) {}
}

impl PacketOpener for NoneCipher {
    fn block_size(&self) -> usize {
        8
    }

    fn length_excluded_from_padding(&self) -> bool {
        false
    }

    fn tag_len(&self) -> usize {
        0
    }

    fn length_prefix_len(&self) -> usize {
        4
    }

    fn decrypt_length(&mut self, _seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        let bytes: [u8; 4] =
            head.get(..4).and_then(|h| h.try_into().ok()).ok_or(CryptoError::InvalidLength)?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn open(&mut self, _seq: u32, _packet: &mut [u8], _tag: &[u8]) -> Result<(), CryptoError> {
        Ok(())
    }
}

/// Compresses outgoing payloads of one direction (`zlib`, `zlib@openssh.com`).
pub trait Compressor: Send {
    /// Appends the compressed form of `payload` to `out`. The stream is continuous across
    /// packets (a sync flush ends each one), as RFC 4253 §6.2 requires.
    fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError>;
}

/// Decompresses incoming payloads of one direction.
pub trait Decompressor: Send {
    /// Appends the decompressed form of `payload` to `out`, failing rather than producing more
    /// than `limit` bytes.
    fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), CryptoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of "abc" matches FIPS 180-2's example, whether fed at once or in parts.
    #[test]
    fn hashes_match_the_fips_example_in_one_or_many_parts() {
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex::encode(HashAlgorithm::Sha256.digest(&[b"abc"])), want);
        assert_eq!(hex::encode(HashAlgorithm::Sha256.digest(&[b"a", b"", b"bc"])), want);
        assert_eq!(HashAlgorithm::Sha512.output_len(), 64);
    }

    /// A shared secret from an ECDH output is an mpint, with a zero byte when the top bit is set.
    #[test]
    fn shared_secret_encodes_as_mpint_or_string() {
        let k = SharedSecret::from_mpint_magnitude(&[0x80, 1]);
        assert_eq!(k.encoded(), [0, 0, 0, 3, 0, 0x80, 1]);
        let k = SharedSecret::from_string(&[0x80, 1]);
        assert_eq!(k.encoded(), [0, 0, 0, 2, 0x80, 1]);
        assert_eq!(format!("{k:?}"), "SharedSecret(6 bytes)");
    }
}

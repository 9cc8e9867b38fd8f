//! Finite-field Diffie-Hellman over the RFC 3526 MODP groups: `diffie-hellman-group14-sha256`,
//! `diffie-hellman-group16-sha512`, `diffie-hellman-group18-sha512` (RFC 8268) and the legacy
//! `diffie-hellman-group14-sha1` (RFC 4253 §8.2), all with generator 2.
//!
//! # Bignum choice
//!
//! The arithmetic is `crypto-bigint`'s `BoxedUint` / `BoxedMontyForm`: RustCrypto's audited
//! bignum library, written to run in constant time. Modular exponentiation with our secret
//! exponent goes through `pow_bounded_exp`, whose time depends only on the exponent's bit
//! length (a public constant here), never on its value. General-purpose crates such as
//! `num-bigint` make no such promise, and `ring` no longer exposes finite-field DH.
//!
//! # Exponent size
//!
//! The secret exponent has [`EXPONENT_BITS`] bits, as OpenSSH uses for a cipher that needs
//! 512 bits of key (twice the need, against square-root attacks); it exceeds twice the
//! strength of every group here (about 112 bits for group 14 up to about 200 for group 18).
//!
//! # Peer values
//!
//! A peer's `e` or `f` must be a non-negative `mpint` body with `1 < value < p - 1` and, as
//! OpenSSH checks, at least four bits set (a power of two is a trivial discrete log for g = 2).

use std::fmt;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{
    CryptoError, HashAlgorithm, KexAlgorithm, KexClient, KexReply, SecureRandom, SharedSecret,
};

/// Bits of the secret exponent.
pub const EXPONENT_BITS: u32 = 1024;

/// The fewest bits a peer's public value may have set (OpenSSH's `dh_pub_is_valid`).
const MIN_BITS_SET: u32 = 4;

pub(super) static GROUP14_SHA1: DhGroup = DhGroup {
    name: "diffie-hellman-group14-sha1",
    hash: HashAlgorithm::Sha1,
    prime_hex: GROUP14_PRIME,
};
pub(super) static GROUP14_SHA256: DhGroup = DhGroup {
    name: "diffie-hellman-group14-sha256",
    hash: HashAlgorithm::Sha256,
    prime_hex: GROUP14_PRIME,
};
pub(super) static GROUP16_SHA512: DhGroup = DhGroup {
    name: "diffie-hellman-group16-sha512",
    hash: HashAlgorithm::Sha512,
    prime_hex: GROUP16_PRIME,
};
pub(super) static GROUP18_SHA512: DhGroup = DhGroup {
    name: "diffie-hellman-group18-sha512",
    hash: HashAlgorithm::Sha512,
    prime_hex: GROUP18_PRIME,
};

/// A MODP group with generator 2 and the hash of the method using it.
pub struct DhGroup {
    name: &'static str,
    hash: HashAlgorithm,
    prime_hex: &'static str,
}

impl DhGroup {
    /// The prime `p`, big-endian, without leading zeros.
    pub fn prime(&self) -> Vec<u8> {
        self.prime_hex
            .as_bytes()
            .chunks(2)
            .map(|pair| (nibble(pair[0]) << 4) | nibble(*pair.get(1).unwrap_or(&b'0')))
            .collect()
    }

    fn arithmetic(&self) -> Result<Arithmetic, CryptoError> {
        let p = self.prime();
        let bits = u32::try_from(p.len() * 8).map_err(|_| CryptoError::InvalidKey)?;
        let modulus = BoxedUint::from_be_slice(&p, bits).map_err(|_| CryptoError::InvalidKey)?;
        let modulus = Option::from(Odd::new(modulus)).ok_or(CryptoError::InvalidKey)?;
        let mut p_minus_1 = p.clone();
        if let Some(last) = p_minus_1.last_mut() {
            *last -= 1; // p is odd, so no borrow
        }
        Ok(Arithmetic { params: BoxedMontyParams::new(modulus), p_minus_1, bits })
    }

    fn generate(&self, rng: &mut dyn SecureRandom) -> Result<DhKey, CryptoError> {
        let arithmetic = self.arithmetic()?;
        let mut bytes = Zeroizing::new(vec![0u8; (EXPONENT_BITS / 8) as usize]);
        rng.fill(&mut bytes)?;
        let x = BoxedUint::from_be_slice(&bytes, EXPONENT_BITS)
            .map_err(|_| CryptoError::InvalidLength)?;
        let two =
            BoxedUint::from_be_slice(&[2], arithmetic.bits).map_err(|_| CryptoError::InvalidKey)?;
        let g = BoxedMontyForm::new(two, &arithmetic.params);
        let e = g.pow_bounded_exp(&x, EXPONENT_BITS).retrieve();
        let public = mpint_body(&e.to_be_bytes());
        Ok(DhKey { arithmetic, x, public })
    }
}

impl KexAlgorithm for DhGroup {
    fn name(&self) -> &'static str {
        self.name
    }

    fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    fn start_client(&self, rng: &mut dyn SecureRandom) -> Result<Box<dyn KexClient>, CryptoError> {
        Ok(Box::new(self.generate(rng)?))
    }

    fn respond(
        &self,
        client_public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<KexReply, CryptoError> {
        // Validate before spending an exponentiation on our own key.
        self.arithmetic()?.parse_peer(client_public)?;
        let key = self.generate(rng)?;
        let secret = key.agree(client_public)?;
        Ok(KexReply { public: key.public.clone(), secret })
    }
}

impl fmt::Debug for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhGroup").field("name", &self.name).finish()
    }
}

struct Arithmetic {
    params: BoxedMontyParams,
    p_minus_1: Vec<u8>,
    bits: u32,
}

impl Arithmetic {
    /// The peer's value as a `BoxedUint`, after every check in the module docs.
    fn parse_peer(&self, body: &[u8]) -> Result<BoxedUint, CryptoError> {
        if body.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(CryptoError::InvalidPublicValue);
        }
        let start = body.iter().position(|&b| b != 0).unwrap_or(body.len());
        let digits = &body[start..];
        let p_len = self.p_minus_1.len();
        if digits.len() > p_len {
            return Err(CryptoError::InvalidPublicValue);
        }
        let mut padded = vec![0u8; p_len];
        padded[p_len - digits.len()..].copy_from_slice(digits);
        let bits_set: u32 = digits.iter().map(|b| b.count_ones()).sum();
        // Public values, so ordinary comparisons are fine. bits_set >= 4 also excludes 0 and 1.
        if bits_set < MIN_BITS_SET || padded >= self.p_minus_1 {
            return Err(CryptoError::InvalidPublicValue);
        }
        BoxedUint::from_be_slice(&padded, self.bits).map_err(|_| CryptoError::InvalidPublicValue)
    }
}

/// Our ephemeral exponent `x` (zeroized on drop) and public value `g^x mod p`.
struct DhKey {
    arithmetic: Arithmetic,
    x: BoxedUint,
    public: Vec<u8>,
}

impl DhKey {
    fn agree(&self, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let peer = self.arithmetic.parse_peer(peer)?;
        let base = BoxedMontyForm::new(peer, &self.arithmetic.params);
        let mut k = base.pow_bounded_exp(&self.x, EXPONENT_BITS).retrieve();
        let bytes = Zeroizing::new(k.to_be_bytes());
        k.zeroize();
        Ok(SharedSecret::from_mpint_magnitude(&bytes))
    }
}

impl Drop for DhKey {
    fn drop(&mut self) {
        self.x.zeroize();
    }
}

impl KexClient for DhKey {
    fn public(&self) -> &[u8] {
        &self.public
    }

    fn finish(self: Box<Self>, server_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        self.agree(server_public)
    }
}

/// The body of the minimal `mpint` for a non-negative magnitude.
fn mpint_body(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    let digits = &magnitude[start..];
    let mut body = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_some_and(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(digits);
    body
}

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0, // invariant: the prime constants are lowercase hex, checked by a test
    }
}

/// The 2048-bit MODP prime of RFC 3526.
const GROUP14_PRIME: &str = "\
    ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22514a0879\
    8e3404ddef9519b3cd3a431b302b0a6df25f14374fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b\
    0bff5cb6f406b7edee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf0598da4836\
    1c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb9ed529077096966d670c354e4abc9804\
    f1746c08ca18217c32905e462e36ce3be39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf6\
    955817183995497cea956ae515d2261898fa051015728e5a8aacaa68ffffffffffffffff";

/// The 4096-bit MODP prime of RFC 3526.
const GROUP16_PRIME: &str = "\
    ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22514a0879\
    8e3404ddef9519b3cd3a431b302b0a6df25f14374fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b\
    0bff5cb6f406b7edee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf0598da4836\
    1c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb9ed529077096966d670c354e4abc9804\
    f1746c08ca18217c32905e462e36ce3be39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf6\
    955817183995497cea956ae515d2261898fa051015728e5a8aaac42dad33170d04507a33a85521abdf1cba64\
    ecfb850458dbef0a8aea71575d060c7db3970f85a6e1e4c7abf5ae8cdb0933d71e8c94e04a25619dcee3d226\
    1ad2ee6bf12ffa06d98a0864d87602733ec86a64521f2b18177b200cbbe117577a615d6c770988c0bad946e2\
    08e24fa074e5ab3143db5bfce0fd108e4b82d120a92108011a723c12a787e6d788719a10bdba5b2699c32718\
    6af4e23c1a946834b6150bda2583e9ca2ad44ce8dbbbc2db04de8ef92e8efc141fbecaa6287c59474e6bc05d\
    99b2964fa090c3a2233ba186515be7ed1f612970cee2d7afb81bdd762170481cd0069127d5b05aa993b4ea98\
    8d8fddc186ffb7dc90a6c08f4df435c934063199ffffffffffffffff";

/// The 8192-bit MODP prime of RFC 3526.
const GROUP18_PRIME: &str = "\
    ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22514a0879\
    8e3404ddef9519b3cd3a431b302b0a6df25f14374fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b\
    0bff5cb6f406b7edee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf0598da4836\
    1c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb9ed529077096966d670c354e4abc9804\
    f1746c08ca18217c32905e462e36ce3be39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf6\
    955817183995497cea956ae515d2261898fa051015728e5a8aaac42dad33170d04507a33a85521abdf1cba64\
    ecfb850458dbef0a8aea71575d060c7db3970f85a6e1e4c7abf5ae8cdb0933d71e8c94e04a25619dcee3d226\
    1ad2ee6bf12ffa06d98a0864d87602733ec86a64521f2b18177b200cbbe117577a615d6c770988c0bad946e2\
    08e24fa074e5ab3143db5bfce0fd108e4b82d120a92108011a723c12a787e6d788719a10bdba5b2699c32718\
    6af4e23c1a946834b6150bda2583e9ca2ad44ce8dbbbc2db04de8ef92e8efc141fbecaa6287c59474e6bc05d\
    99b2964fa090c3a2233ba186515be7ed1f612970cee2d7afb81bdd762170481cd0069127d5b05aa993b4ea98\
    8d8fddc186ffb7dc90a6c08f4df435c93402849236c3fab4d27c7026c1d4dcb2602646dec9751e763dba37bd\
    f8ff9406ad9e530ee5db382f413001aeb06a53ed9027d831179727b0865a8918da3edbebcf9b14ed44ce6cba\
    ced4bb1bdb7f1447e6cc254b332051512bd7af426fb8f401378cd2bf5983ca01c64b92ecf032ea15d1721d03\
    f482d7ce6e74fef6d55e702f46980c82b5a84031900b1c9e59e7c97fbec7e8f323a97a7e36cc88be0f1d45b7\
    ff585ac54bd407b22b4154aacc8f6d7ebf48e1d814cc5ed20f8037e0a79715eef29be32806a1d58bb7c5da76\
    f550aa3d8a1fbff0eb19ccb1a313d55cda56c9ec2ef29632387fe8d76e3c0468043e8f663f4860ee12bf2d5b\
    0b7474d6e694f91e6dbe115974a3926f12fee5e438777cb6a932df8cd8bec4d073b931ba3bc832b68d9dd300\
    741fa7bf8afc47ed2576f6936ba424663aab639c5ae4f5683423b4742bf1c978238f16cbe39d652de3fdb8be\
    fc848ad922222e04a4037c0713eb57a81a23f0c73473fc646cea306b4bcbc8862f8385ddfa9d4b7fa2c087e8\
    79683303ed5bdd3a062b3cf5b3a278a66d2a13f83f44f82ddf310ee074ab6a364597e899a0255dc164f31cc5\
    0846851df9ab48195ded7ea1b1d510bd7ee74d73faf36bc31ecfa268359046f4eb879f924009438b481c6cd7\
    889a002ed5ee382bc9190da6fc026e479558e4475677e9aa9e3050e2765694dfc81f56e880b96e7160c980dd\
    98edd3dfffffffffffffffff";

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::crypto::SeededRandom;

    /// Our primes are exactly the RFC 3526 groups as OpenSSL knows them.
    #[test]
    fn primes_match_openssl_modp_groups() {
        for (group, openssl_name) in [
            (&GROUP14_SHA256, "modp_2048"),
            (&GROUP16_SHA512, "modp_4096"),
            (&GROUP18_SHA512, "modp_8192"),
        ] {
            assert!(group
                .prime_hex
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            let params = Command::new("openssl")
                .args(["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt"])
                .arg(format!("group:{openssl_name}"))
                .output()
                .expect("openssl must be installed for this test (CI installs it)");
            assert!(params.status.success());
            let mut parse = Command::new("openssl")
                .arg("asn1parse")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            parse.stdin.take().unwrap().write_all(&params.stdout).unwrap();
            let out = parse.wait_with_output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let p = text
                .lines()
                .find(|l| l.contains("INTEGER"))
                .and_then(|l| l.rsplit(':').next())
                .unwrap()
                .trim()
                .to_ascii_lowercase();
            assert_eq!(hex::encode(group.prime()), p, "{}", group.name);
        }
    }

    fn group14() -> Arithmetic {
        GROUP14_SHA256.arithmetic().unwrap()
    }

    /// Out-of-range and degenerate values are rejected: 0, 1, 2, p-1, p, p+1, a negative mpint,
    /// an oversized one, and powers of two.
    #[test]
    fn rejects_out_of_range_and_degenerate_values() {
        let a = group14();
        let p = GROUP14_SHA256.prime();
        let mut p_plus_1 = p.clone();
        for byte in p_plus_1.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        let mut p_body = vec![0u8];
        p_body.extend_from_slice(&p);
        let mut p_minus_1_body = vec![0u8];
        p_minus_1_body.extend_from_slice(&a.p_minus_1);
        let mut p_plus_1_body = vec![0u8];
        p_plus_1_body.extend_from_slice(&p_plus_1);
        let mut too_long = vec![0x01];
        too_long.extend(vec![0u8; p.len()]);
        let mut power_of_two = vec![0u8; 100];
        power_of_two[0] = 0x40;
        let cases: [(&str, Vec<u8>); 10] = [
            ("empty (zero)", vec![]),
            ("zero", vec![0]),
            ("one", vec![1]),
            ("two", vec![2]),
            ("p - 1", p_minus_1_body),
            ("p", p_body),
            ("p + 1", p_plus_1_body),
            ("negative", vec![0x80, 1, 2, 3]),
            ("longer than p", too_long),
            ("power of two", power_of_two),
        ];
        let mut rng = SeededRandom::new(4);
        for (what, bad) in cases {
            assert_eq!(a.parse_peer(&bad).unwrap_err(), CryptoError::InvalidPublicValue, "{what}");
            assert_eq!(
                GROUP14_SHA256.respond(&bad, &mut rng).unwrap_err(),
                CryptoError::InvalidPublicValue,
                "{what}"
            );
            let client = GROUP14_SHA256.start_client(&mut rng).unwrap();
            assert_eq!(client.finish(&bad).unwrap_err(), CryptoError::InvalidPublicValue, "{what}");
        }
    }

    /// p - 2 and small values with enough bits set are accepted, with or without redundant
    /// leading zero bytes.
    #[test]
    fn accepts_values_inside_the_range() {
        let a = group14();
        let mut p_minus_2 = vec![0u8];
        p_minus_2.extend_from_slice(&a.p_minus_1);
        *p_minus_2.last_mut().unwrap() -= 1;
        assert!(a.parse_peer(&p_minus_2).is_ok());
        assert!(a.parse_peer(&[0x0f]).is_ok());
        assert!(a.parse_peer(&[0, 0, 0x0f]).is_ok());
    }

    /// Public values are minimal mpint bodies: no redundant zero, a zero before a set top bit.
    #[test]
    fn public_values_are_minimal_mpint_bodies() {
        let mut rng = SeededRandom::new(6);
        for _ in 0..8 {
            let client = GROUP14_SHA256.start_client(&mut rng).unwrap();
            let e = client.public();
            assert!(e[0] & 0x80 == 0);
            assert!(e[0] != 0 || e[1] & 0x80 != 0);
            assert!(e.len() <= 257);
        }
        assert_eq!(mpint_body(&[0, 0, 0x80]), [0, 0x80]);
        assert_eq!(mpint_body(&[0, 0x7f]), [0x7f]);
        assert!(mpint_body(&[0, 0]).is_empty());
    }
}

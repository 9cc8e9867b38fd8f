//! Key exchange methods, looked up by their SSH names with [`kex_by_name`].
//!
//! | name | public values | `K` |
//! |---|---|---|
//! | `mlkem768x25519-sha256` | ML-KEM-768 key ‖ X25519 key; ciphertext ‖ X25519 key | `string` SHA-256(kem ‖ x25519) |
//! | `sntrup761x25519-sha512` (and `@openssh.com`) | sntrup761 key ‖ X25519 key; ciphertext ‖ X25519 key | `string` SHA-512(kem ‖ x25519) |
//! | `curve25519-sha256` (and `@libssh.org`) | 32-byte X25519 keys (RFC 8731) | `mpint` |
//! | `ecdh-sha2-nistp256/384/521` | uncompressed SEC1 points (RFC 5656) | `mpint` of x |
//! | `diffie-hellman-group14/16/18-*` | `mpint` bodies (RFC 4253, RFC 8268) | `mpint` |
//!
//! Every ephemeral secret comes from the [`SecureRandom`] passed in, so a seeded generator
//! replays an exchange exactly. Every peer value is checked before use: exact lengths, points
//! on the curve, an all-zero X25519 result, DH values in `(1, p-1)`, ML-KEM encapsulation keys
//! that fail the FIPS 203 modulus check. A bad value is [`CryptoError::InvalidPublicValue`].
//!
//! # Crates
//!
//! - **ML-KEM-768: `ml-kem`** (RustCrypto). Pure Rust, follows the final FIPS 203, checks
//!   encapsulation keys as §7.2 requires, zeroizes its decapsulation key, and exposes seeded
//!   key generation (`DecapsulationKey::from_seed`) and encapsulation (`hazmat`
//!   `encapsulate_deterministic`), which is what lets our randomness come only from the
//!   injected [`SecureRandom`]. RustCrypto maintains it beside the hash and AEAD crates the
//!   ecosystem already trusts, and runs the Wycheproof ML-KEM vectors against it (so do we).
//! - **sntrup761: `sntrup761`**. The one pure-Rust implementation that is maintained and
//!   matches the round-3 "sntrup761" that OpenSSH ships (1158-byte keys, 1039-byte ciphertexts
//!   with the confirmation hash); it is a port of the PQClean reference code, tested against
//!   its known answers, constant-time by intent, zeroizes secrets, and derives keys and
//!   encapsulations from 32-byte seeds (`generate_key_from_seed`, `encapsulate_deterministic`),
//!   which again keeps our randomness injected. The alternative, `pqcrypto-ntruprime`, binds C
//!   code and draws randomness from the OS itself.
//! - **X25519: `x25519-dalek`**, with `StaticSecret::from(bytes)` for injected randomness.
//! - **NIST curves: `p256`, `p384`, `p521`** (RustCrypto, constant-time field arithmetic), with
//!   the scalar drawn from our generator by rejection sampling; `ring`'s ECDH cannot take an
//!   injected generator.
//! - **Finite-field DH: `crypto-bigint`** — see [`dh`].

//!
//! # Cost
//!
//! Milliseconds per step, release build, the same loaded 2-core development machine as the
//! cipher figures in [`crate::crypto::cipher`], means of 20 runs from a scratch loop (client
//! start / server respond / client finish): ML-KEM hybrid 0.5 / 0.4 / 0.2; sntrup761 hybrid
//! 21 / 1.3 / 3.5 (its key generation dominates); X25519 under 0.3 each; P-256 0.4 / 0.8 /
//! 0.2; P-384 1.6 / 2.5 / 1.9; P-521 2.1 / 5.0 / 1.3; DH group 14 3.6 / 7.6 / 3.4; group 16
//! 21 / 42 / 20; group 18 84 / 175 / 85.

use zeroize::Zeroizing;

use super::{CryptoError, KexAlgorithm, SecureRandom};

mod curve25519;
pub mod dh;
mod ecdh;
mod hybrid;

/// Every key exchange name we implement, in OpenSSH 10's client preference order with
/// `diffie-hellman-group14-sha1` last; [`crate::crypto::algorithms`] takes the default lists
/// from this order.
pub const KEX_NAMES: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group14-sha1",
];

/// The key exchange method called `name`, or `None` if we do not implement it.
pub fn kex_by_name(name: &str) -> Option<&'static dyn KexAlgorithm> {
    Some(match name {
        "mlkem768x25519-sha256" => &hybrid::MLKEM768_X25519_SHA256,
        "sntrup761x25519-sha512" => &hybrid::SNTRUP761_X25519_SHA512,
        "sntrup761x25519-sha512@openssh.com" => &hybrid::SNTRUP761_X25519_SHA512_OPENSSH,
        "curve25519-sha256" => &curve25519::CURVE25519_SHA256,
        "curve25519-sha256@libssh.org" => &curve25519::CURVE25519_SHA256_LIBSSH,
        "ecdh-sha2-nistp256" => &ecdh::ECDH_NISTP256,
        "ecdh-sha2-nistp384" => &ecdh::ECDH_NISTP384,
        "ecdh-sha2-nistp521" => &ecdh::ECDH_NISTP521,
        "diffie-hellman-group14-sha1" => &dh::GROUP14_SHA1,
        "diffie-hellman-group14-sha256" => &dh::GROUP14_SHA256,
        "diffie-hellman-group16-sha512" => &dh::GROUP16_SHA512,
        "diffie-hellman-group18-sha512" => &dh::GROUP18_SHA512,
        _ => return None,
    })
}

/// `N` random bytes from `rng`, zeroized on drop.
fn random_array<const N: usize>(
    rng: &mut dyn SecureRandom,
) -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    rng.fill(&mut *bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{HashAlgorithm, KexReply, SeededRandom, SharedSecret};

    /// Runs one exchange both ways from seeded generators and returns both secrets and values.
    pub(super) fn run(
        kex: &dyn KexAlgorithm,
        seed: u64,
    ) -> (SharedSecret, SharedSecret, Vec<u8>, Vec<u8>) {
        let mut client_rng = SeededRandom::new(seed);
        let mut server_rng = SeededRandom::new(seed + 1_000_000);
        let client = kex.start_client(&mut client_rng).unwrap();
        let client_public = client.public().to_vec();
        let KexReply { public, secret } = kex.respond(&client_public, &mut server_rng).unwrap();
        let client_secret = client.finish(&public).unwrap();
        (client_secret, secret, client_public, public)
    }

    /// Every listed name resolves to a method of that name, and no other name does.
    #[test]
    fn every_listed_name_resolves_to_itself() {
        for name in KEX_NAMES {
            let kex = kex_by_name(name).unwrap();
            assert_eq!(kex.name(), *name);
        }
        assert!(kex_by_name("diffie-hellman-group1-sha1").is_none());
        assert!(kex_by_name("").is_none());
        assert!(kex_by_name("CURVE25519-SHA256").is_none());
    }

    /// For every method, client and server derive the same `K`, in the encoding the method
    /// prescribes, and the same seeds replay the same exchange while other seeds do not.
    #[test]
    fn client_and_server_agree_for_every_method_and_seeds_replay() {
        for name in KEX_NAMES {
            let kex = kex_by_name(name).unwrap();
            let (client, server, client_public, server_public) = run(kex, 3);
            assert_eq!(client, server, "{name}");
            let encoded = client.encoded();
            let body_len = u32::from_be_bytes(encoded[..4].try_into().unwrap()) as usize;
            assert_eq!(body_len + 4, encoded.len(), "{name}");
            if name.starts_with("mlkem") || name.starts_with("sntrup") {
                assert_eq!(body_len, kex.hash().output_len(), "{name}: K is a string hash");
            } else {
                assert!(encoded[4] & 0x80 == 0, "{name}: K is a positive mpint");
                assert!(encoded[4] != 0 || encoded[5] & 0x80 != 0, "{name}: mpint is minimal");
            }
            let (again, _, client_public_again, server_public_again) = run(kex, 3);
            assert_eq!(again, client, "{name}");
            assert_eq!(client_public_again, client_public, "{name}");
            assert_eq!(server_public_again, server_public, "{name}");
            let (other, _, _, _) = run(kex, 4);
            assert_ne!(other, client, "{name}");
        }
    }

    /// The hash of each method is the one its name says.
    #[test]
    fn each_method_uses_the_hash_its_name_says() {
        for name in KEX_NAMES {
            let want = if name.ends_with("sha1") {
                HashAlgorithm::Sha1
            } else if name.contains("sha512") || name.ends_with("nistp521") {
                HashAlgorithm::Sha512
            } else if name.ends_with("nistp384") {
                HashAlgorithm::Sha384
            } else {
                HashAlgorithm::Sha256
            };
            assert_eq!(kex_by_name(name).unwrap().hash(), want, "{name}");
        }
    }

    /// Peer values of every wrong length, empty or one byte off, are rejected by both sides.
    #[test]
    fn rejects_peer_values_of_the_wrong_length_for_every_method() {
        for name in KEX_NAMES {
            let kex = kex_by_name(name).unwrap();
            let (_, _, client_public, server_public) = run(kex, 5);
            let mut rng = SeededRandom::new(9);
            let mut bad_clients =
                vec![Vec::new(), client_public[..client_public.len() - 1].to_vec()];
            let mut longer = client_public.clone();
            longer.push(1);
            bad_clients.push(longer);
            let is_dh = name.starts_with("diffie-hellman");
            for bad in &bad_clients {
                if is_dh && bad.len() + 1 == client_public.len() {
                    continue; // a shorter DH value may well be a valid smaller number
                }
                assert_eq!(
                    kex.respond(bad, &mut rng).unwrap_err(),
                    CryptoError::InvalidPublicValue,
                    "{name}: client value of {} bytes",
                    bad.len()
                );
            }
            for bad in [Vec::new(), server_public[..server_public.len() - 1].to_vec()] {
                if is_dh && !bad.is_empty() {
                    continue;
                }
                let client = kex.start_client(&mut rng).unwrap();
                assert_eq!(
                    client.finish(&bad).unwrap_err(),
                    CryptoError::InvalidPublicValue,
                    "{name}: server value of {} bytes",
                    bad.len()
                );
            }
        }
    }

    /// Random peer values of many lengths, including each method's exact ones, never panic:
    /// each is either used or refused as `InvalidPublicValue`, on both sides.
    #[test]
    fn random_peer_values_are_used_or_refused_never_a_panic() {
        let mut rng = SeededRandom::new(21);
        for name in KEX_NAMES {
            let kex = kex_by_name(name).unwrap();
            let (_, _, client_public, server_public) = run(kex, 22);
            let expensive = name.contains("group16") || name.contains("group18");
            let mut lengths = vec![0, 1, 4, 31, 33, 64, 65, 97, 133, 255, 257];
            if !expensive {
                lengths.extend([client_public.len(), server_public.len()]);
            }
            for len in lengths {
                let mut value = vec![0u8; len];
                rng.fill(&mut value).unwrap();
                if let Err(e) = kex.respond(&value, &mut rng) {
                    assert_eq!(e, CryptoError::InvalidPublicValue, "{name}: {len} bytes");
                }
                let client = kex.start_client(&mut rng).unwrap();
                if let Err(e) = client.finish(&value) {
                    assert_eq!(e, CryptoError::InvalidPublicValue, "{name}: {len} bytes");
                }
            }
        }
    }
}

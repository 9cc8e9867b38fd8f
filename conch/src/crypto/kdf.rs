//! Key derivation from the shared secret and the exchange hash (RFC 4253 §7.2).

use zeroize::Zeroizing;

use super::{HashAlgorithm, SharedSecret};

/// The letters that select each derived key (RFC 4253 §7.2).
pub mod letter {
    /// Initial IV, client to server.
    pub const IV_CLIENT_TO_SERVER: u8 = b'A';
    /// Initial IV, server to client.
    pub const IV_SERVER_TO_CLIENT: u8 = b'B';
    /// Encryption key, client to server.
    pub const KEY_CLIENT_TO_SERVER: u8 = b'C';
    /// Encryption key, server to client.
    pub const KEY_SERVER_TO_CLIENT: u8 = b'D';
    /// Integrity key, client to server.
    pub const MAC_CLIENT_TO_SERVER: u8 = b'E';
    /// Integrity key, server to client.
    pub const MAC_SERVER_TO_CLIENT: u8 = b'F';
}

/// Derives `len` bytes of key material: `K1 = HASH(K || H || letter || session_id)`, extended
/// while too short with `Kn = HASH(K || H || K1 || ... || Kn-1)`, then truncated (RFC 4253
/// §7.2).
///
/// `k` is the shared secret already encoded (an `mpint` or a `string`, length included), `h`
/// the exchange hash of this key exchange and `session_id` the exchange hash of the first one.
/// `len` 0 gives an empty key.
pub fn derive_key(
    hash: HashAlgorithm,
    k: &SharedSecret,
    h: &[u8],
    letter: u8,
    session_id: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash.output_len()));
    if len == 0 {
        return out;
    }
    let mut first = hash.hasher();
    first.update(k.encoded());
    first.update(h);
    first.update(&[letter]);
    first.update(session_id);
    out.extend_from_slice(first.finish().as_ref());
    while out.len() < len {
        let next = hash.digest(&[k.encoded(), h, &out]);
        out.extend_from_slice(next.as_ref());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::crypto::{SecureRandom, SeededRandom};

    fn openssl_sshkdf(
        hash: HashAlgorithm,
        k: &[u8],
        h: &[u8],
        letter: u8,
        session_id: &[u8],
        len: usize,
    ) -> Vec<u8> {
        let digest = match hash {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha384 => "SHA384",
            HashAlgorithm::Sha512 => "SHA512",
        };
        let out = Command::new("openssl")
            .args(["kdf", "-binary", "-keylen", &len.to_string()])
            .args(["-kdfopt", &format!("digest:{digest}")])
            .args(["-kdfopt", &format!("hexkey:{}", hex::encode(k))])
            .args(["-kdfopt", &format!("hexxcghash:{}", hex::encode(h))])
            .args(["-kdfopt", &format!("hexsession_id:{}", hex::encode(session_id))])
            .args(["-kdfopt", &format!("type:{}", char::from(letter))])
            .arg("SSHKDF")
            .output()
            .expect("openssl must be installed for this test (CI installs it)");
        assert!(
            out.status.success(),
            "openssl kdf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Our derivation equals `openssl kdf SSHKDF` for every hash, every letter and lengths
    /// shorter than, equal to and several times longer than one digest.
    #[test]
    fn derivation_matches_openssl_sshkdf() {
        let mut rng = SeededRandom::new(1);
        let hashes = [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ];
        for (i, hash) in hashes.into_iter().enumerate() {
            let mut magnitude = [0u8; 48];
            rng.fill(&mut magnitude).unwrap();
            magnitude[0] |= 0x80; // an mpint that needs its leading zero byte
            let k = SharedSecret::from_mpint_magnitude(&magnitude);
            let mut h = vec![0u8; hash.output_len()];
            rng.fill(&mut h).unwrap();
            let mut session_id = vec![0u8; hash.output_len()];
            rng.fill(&mut session_id).unwrap();
            for (j, letter) in (b'A'..=b'F').enumerate() {
                let len = [1, 12, 16, 20, 32, 48, 64, 65, 150][(i + j) % 9];
                let ours = derive_key(hash, &k, &h, letter, &session_id, len);
                let theirs = openssl_sshkdf(hash, k.encoded(), &h, letter, &session_id, len);
                assert_eq!(hex::encode(&*ours), hex::encode(theirs), "{hash:?} {letter} {len}");
            }
            let long = derive_key(hash, &k, &h, b'C', &session_id, 200);
            let theirs = openssl_sshkdf(hash, k.encoded(), &h, b'C', &session_id, 200);
            assert_eq!(hex::encode(&*long), hex::encode(theirs));
        }
    }

    /// Transcribed NIST CAVS 14.1 SSH KDF vectors (SHA-1 and SHA-256).
    #[test]
    fn derivation_matches_nist_cavs_vectors() {
        struct Case {
            hash: HashAlgorithm,
            k: &'static str,
            h: &'static str,
            session_id: &'static str,
            letter: u8,
            want: &'static str,
        }
        let k1 =
            "0000008055bae931c07fd824bf10add1902b6fbc7c665347383498a686929ff5a25f8e40cb6645ea81\
                  4fb1a5e0a11f852f86255641e5ed986e83a78bc8269480eac0b0dfd770cab92e7a28dd87ff452466\
                  d6ae867cead63b366b1c286e6c4811a9f14c27aea14c5171d49b78c06e3735d36e6a3be321dd5fc8\
                  2308f34ee1cb17fba94a59";
        let h1 = "a4ebd45934f56792b5112dcd75a1075fdc889245";
        let k2 = "0000008100831889c603d4dc01d0d9f19f07ccadb6a9fa7662305277d59efbc872f38325de2ec215\
                  1f58649f5fd15ff3a099f0191dca69be0b9c88ef729fe74af849cc8e7479f8a5406842af88e12167\
                  607103cda449a1394c86b2c21d4083cdee216f74078d4e878b352df901727870815528ae99f74f25\
                  c21a8a39772940d871badb39a6";
        let h2 = "f77992d066bc305419a6c1b0879008856287b95ec20c2b1be5a5c8189cadbbb1";
        let s2 = "15bd2e8c86d23eace4a581377ef8a3f5266dbd081cfcd01ab2b68506438228a2";
        let cases = [
            Case {
                hash: HashAlgorithm::Sha1,
                k: k1,
                h: h1,
                session_id: h1,
                letter: b'A',
                want: "e2f627c0b43f1ac1",
            },
            Case {
                hash: HashAlgorithm::Sha1,
                k: k1,
                h: h1,
                session_id: h1,
                letter: b'C',
                want: "1ca9d310f86d51f6cb8e7007cb2b220d55c5281ce680b533",
            },
            Case {
                hash: HashAlgorithm::Sha1,
                k: k1,
                h: h1,
                session_id: h1,
                letter: b'F',
                want: "e3e2fdb9d7bc21165a3dbe47e1eceb7764390bab",
            },
            Case {
                hash: HashAlgorithm::Sha256,
                k: k2,
                h: h2,
                session_id: s2,
                letter: b'C',
                want: "871db438b8b33c2102ddab0c1f7be51ee4c2cbdf52a01a58",
            },
            Case {
                hash: HashAlgorithm::Sha256,
                k: k2,
                h: h2,
                session_id: s2,
                letter: b'F',
                want: "df0570749d67136095b0dda6d461676b7eeb9a386f126306d436cab16dfd1b3c",
            },
        ];
        for case in cases {
            let k = SharedSecret::from_encoded(Zeroizing::new(hex::decode(case.k).unwrap()));
            let h = hex::decode(case.h).unwrap();
            let session_id = hex::decode(case.session_id).unwrap();
            let len = case.want.len() / 2;
            let got = derive_key(case.hash, &k, &h, case.letter, &session_id, len);
            assert_eq!(hex::encode(&*got), case.want, "{:?} {}", case.hash, case.letter);
        }
    }

    /// A zero-length request gives an empty key.
    #[test]
    fn zero_length_gives_an_empty_key() {
        let k = SharedSecret::from_mpint_magnitude(&[1]);
        assert!(derive_key(HashAlgorithm::Sha256, &k, b"h", b'A', b"s", 0).is_empty());
    }
}

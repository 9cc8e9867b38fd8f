//! Algorithm negotiation (RFC 4253 §7.1) and the exchange hash (RFC 4253 §8, RFC 5656 §4).

use super::algorithms;
use crate::crypto::{Digest, HashAlgorithm, SharedSecret};
use crate::error::PeerIncompatible;
use crate::keys::SignatureAlgorithm;
use crate::wire::msgs::transport::KexInit;
use crate::wire::NameList;

/// The client's pseudo-algorithm asking for `SSH_MSG_EXT_INFO` (RFC 8308 §2.1).
pub const EXT_INFO_C: &str = "ext-info-c";
/// The server's pseudo-algorithm offering `SSH_MSG_EXT_INFO`.
pub const EXT_INFO_S: &str = "ext-info-s";
/// The client's strict key exchange marker (OpenSSH `PROTOCOL` §1.9, the Terrapin fix).
pub const KEX_STRICT_C: &str = "kex-strict-c-v00@openssh.com";
/// The server's strict key exchange marker.
pub const KEX_STRICT_S: &str = "kex-strict-s-v00@openssh.com";

/// The algorithms one key exchange settled on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The key exchange method.
    pub kex: String,
    /// The host key signature algorithm.
    pub host_key: SignatureAlgorithm,
    /// Cipher, client to server.
    pub cipher_c2s: String,
    /// Cipher, server to client.
    pub cipher_s2c: String,
    /// MAC, client to server; `None` with an AEAD cipher.
    pub mac_c2s: Option<String>,
    /// MAC, server to client; `None` with an AEAD cipher.
    pub mac_s2c: Option<String>,
    /// Compression, client to server.
    pub compression_c2s: String,
    /// Compression, server to client.
    pub compression_s2c: String,
}

/// Whether `name` is a signalling pseudo-algorithm in the kex list rather than a method.
fn is_marker(name: &str) -> bool {
    matches!(name, EXT_INFO_C | EXT_INFO_S | KEX_STRICT_C | KEX_STRICT_S)
        || name.starts_with("kex-strict-")
        || name.starts_with("ext-info-")
}

/// The first name on the client's list that the server also lists (RFC 4253 §7.1).
fn first_match<'a>(client: NameList<'a>, server: NameList<'_>) -> Option<&'a str> {
    client.iter().find(|name| !is_marker(name) && server.contains(name))
}

/// Chooses every algorithm from the two KEXINITs. One of them is ours, so a name on both lists
/// is one we implement.
pub(crate) fn negotiate(
    client: &KexInit<'_>,
    server: &KexInit<'_>,
) -> Result<Negotiated, PeerIncompatible> {
    let kex = first_match(client.kex, server.kex).ok_or(PeerIncompatible::NoCommonKex)?;
    let host_key = client
        .host_key
        .iter()
        .filter(|name| server.host_key.contains(name))
        .find_map(SignatureAlgorithm::from_name)
        .ok_or(PeerIncompatible::NoCommonHostKey)?;
    let cipher_c2s = first_match(client.cipher_c2s, server.cipher_c2s)
        .ok_or(PeerIncompatible::NoCommonCipher)?;
    let cipher_s2c = first_match(client.cipher_s2c, server.cipher_s2c)
        .ok_or(PeerIncompatible::NoCommonCipher)?;
    let mac = |cipher: &str, c: NameList<'_>, s: NameList<'_>| {
        if algorithms::is_aead(cipher) {
            return Ok(None);
        }
        first_match(c, s).map(|m| Some(m.to_owned())).ok_or(PeerIncompatible::NoCommonMac)
    };
    let mac_c2s = mac(cipher_c2s, client.mac_c2s, server.mac_c2s)?;
    let mac_s2c = mac(cipher_s2c, client.mac_s2c, server.mac_s2c)?;
    let compression_c2s = first_match(client.compression_c2s, server.compression_c2s)
        .ok_or(PeerIncompatible::NoCommonCompression)?;
    let compression_s2c = first_match(client.compression_s2c, server.compression_s2c)
        .ok_or(PeerIncompatible::NoCommonCompression)?;
    Ok(Negotiated {
        kex: kex.to_owned(),
        host_key,
        cipher_c2s: cipher_c2s.to_owned(),
        cipher_s2c: cipher_s2c.to_owned(),
        mac_c2s,
        mac_s2c,
        compression_c2s: compression_c2s.to_owned(),
        compression_s2c: compression_s2c.to_owned(),
    })
}

/// Whether the peer's guessed key exchange packet (sent when `first_kex_packet_follows`) used
/// the algorithms negotiation chose (RFC 4253 §7.1): its first kex method and first host key
/// algorithm must be the ones chosen.
pub(crate) fn guess_was_right(peer: &KexInit<'_>, chosen: &Negotiated) -> bool {
    let first_kex = peer.kex.iter().find(|n| !is_marker(n));
    let first_host_key = peer.host_key.iter().next();
    first_kex == Some(chosen.kex.as_str()) && first_host_key == Some(chosen.host_key.name())
}

/// The values every exchange hash starts with: both identification lines (without CR LF) and
/// both KEXINIT payloads, exactly as sent.
#[derive(Clone, Debug)]
pub(crate) struct ExchangeInputs {
    pub(crate) v_c: Vec<u8>,
    pub(crate) v_s: Vec<u8>,
    pub(crate) i_c: Vec<u8>,
    pub(crate) i_s: Vec<u8>,
}

impl ExchangeInputs {
    /// `H = HASH(V_C || V_S || I_C || I_S || K_S || Q_C || Q_S || K)`, each a `string` except
    /// `K`, which comes encoded. For finite-field DH the public values are `mpint`s, which
    /// encode like strings of their bodies, so one form serves every method.
    pub(crate) fn exchange_hash(
        &self,
        hash: HashAlgorithm,
        host_key: &[u8],
        client_public: &[u8],
        server_public: &[u8],
        secret: &SharedSecret,
    ) -> Digest {
        let mut h = hash.hasher();
        for part in
            [&self.v_c[..], &self.v_s, &self.i_c, &self.i_s, host_key, client_public, server_public]
        {
            h.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(part);
        }
        h.update(secret.encoded());
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kexinit<'a>(kex: &'a str, host: &'a str, cipher: &'a str, mac: &'a str) -> KexInit<'a> {
        let n = |s: &'a str| NameList::parse(s.as_bytes()).unwrap();
        KexInit {
            cookie: [0; 16],
            kex: n(kex),
            host_key: n(host),
            cipher_c2s: n(cipher),
            cipher_s2c: n(cipher),
            mac_c2s: n(mac),
            mac_s2c: n(mac),
            compression_c2s: n("none,zlib@openssh.com"),
            compression_s2c: n("zlib@openssh.com,none"),
            language_c2s: n(""),
            language_s2c: n(""),
            first_kex_packet_follows: false,
            reserved: 0,
        }
    }

    /// The client's order wins, per category and direction, and markers never match.
    #[test]
    fn picks_the_first_client_algorithm_the_server_supports() {
        let client = kexinit(
            "ext-info-c,kex-strict-c-v00@openssh.com,curve25519-sha256,ecdh-sha2-nistp256",
            "rsa-sha2-512,ssh-ed25519",
            "aes256-ctr,aes128-ctr",
            "hmac-sha2-512,hmac-sha2-256",
        );
        let server = kexinit(
            "ecdh-sha2-nistp256,curve25519-sha256,ext-info-c",
            "ssh-ed25519,rsa-sha2-512",
            "aes128-ctr,aes256-ctr",
            "hmac-sha2-256,hmac-sha2-512",
        );
        let got = negotiate(&client, &server).unwrap();
        assert_eq!(got.kex, "curve25519-sha256");
        assert_eq!(got.host_key, SignatureAlgorithm::RsaSha512);
        assert_eq!(got.cipher_c2s, "aes256-ctr");
        assert_eq!(got.mac_s2c.as_deref(), Some("hmac-sha2-512"));
        assert_eq!(got.compression_c2s, "none");
        assert_eq!(got.compression_s2c, "zlib@openssh.com");
    }

    /// Each category without a common name fails with its own error.
    #[test]
    fn reports_which_category_has_nothing_in_common() {
        let base = kexinit("curve25519-sha256", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256");
        let cases = [
            (
                kexinit("ext-info-c", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256"),
                PeerIncompatible::NoCommonKex,
            ),
            (
                kexinit("curve25519-sha256", "ssh-dss", "aes128-ctr", "hmac-sha2-256"),
                PeerIncompatible::NoCommonHostKey,
            ),
            (
                kexinit("curve25519-sha256", "ssh-ed25519", "3des-cbc", "hmac-sha2-256"),
                PeerIncompatible::NoCommonCipher,
            ),
            (
                kexinit("curve25519-sha256", "ssh-ed25519", "aes128-ctr", "hmac-md5"),
                PeerIncompatible::NoCommonMac,
            ),
        ];
        for (client, want) in cases {
            assert_eq!(negotiate(&client, &base), Err(want));
        }
    }

    /// A guess is right only if both the first kex method and the first host key algorithm
    /// are the chosen ones.
    #[test]
    fn judges_first_kex_packet_guesses() {
        let client = kexinit(
            "curve25519-sha256,ecdh-sha2-nistp256",
            "ssh-ed25519",
            "aes128-ctr",
            "hmac-sha2-256",
        );
        let server = kexinit("ecdh-sha2-nistp256", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256");
        let chosen = negotiate(&client, &server).unwrap();
        assert!(!guess_was_right(&client, &chosen));
        assert!(guess_was_right(&server, &chosen));
    }

    /// The exchange hash is the hash of the length-prefixed fields, then `K` as encoded.
    #[test]
    fn exchange_hash_hashes_length_prefixed_fields() {
        let inputs =
            ExchangeInputs { v_c: b"a".to_vec(), v_s: b"b".to_vec(), i_c: vec![], i_s: vec![1] };
        let k = SharedSecret::from_mpint_magnitude(&[5]);
        let got = inputs.exchange_hash(HashAlgorithm::Sha256, b"K", b"", b"qs", &k);
        let want = HashAlgorithm::Sha256.digest(&[
            &[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0, 0, 0, 0, 0, 0, 1, 1],
            &[0, 0, 0, 1, b'K', 0, 0, 0, 0, 0, 0, 0, 2, b'q', b's'],
            &[0, 0, 0, 1, 5],
        ]);
        assert_eq!(got.as_ref(), want.as_ref());
    }
}

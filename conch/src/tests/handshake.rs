//! Complete handshakes: every algorithm combination, host key decisions, extensions.

use super::util::{
    client_config, client_config_with, exchange_data, host_keys, rekeys, server_config,
};
use crate::crypto::algorithms::Category;
use crate::crypto::cipher::{cipher_by_name, CIPHER_NAMES};
use crate::crypto::mac::MAC_NAMES;
use crate::error::Error;
use crate::keys::SignatureAlgorithm;
use crate::testing::Pair;
use crate::transport::{Event, Negotiated};
use crate::wire::{DisconnectReason, MessageType};

/// Every (cipher, MAC) pair: AEAD ciphers alone, the others with each MAC.
pub(super) fn cipher_mac_pairs() -> Vec<(&'static str, Option<&'static str>)> {
    let mut pairs = Vec::new();
    for &cipher in CIPHER_NAMES {
        if cipher_by_name(cipher).unwrap().is_aead() {
            pairs.push((cipher, None));
        } else {
            pairs.extend(MAC_NAMES.iter().map(|&mac| (cipher, Some(mac))));
        }
    }
    pairs
}

/// Runs `kex` with `host_key` and every cipher/MAC pair, fed all at once and one byte at a
/// time: handshake, data both ways, a rekey with data queued during it, data again.
fn every_cipher_and_mac_over(kex: &str, host_key: SignatureAlgorithm) {
    for (cipher, mac) in cipher_mac_pairs() {
        for chunk in [None, Some(1)] {
            let what = format!("{kex} {host_key} {cipher} {mac:?} chunk {chunk:?}");
            let client = client_config_with(kex, host_key, cipher, mac);
            let mut pair = Pair::new(client, server_config());
            pair.set_chunk_size(chunk);
            pair.handshake();
            let negotiated: &Negotiated = pair.client.negotiated().unwrap();
            assert_eq!(negotiated.kex, kex, "{what}");
            assert_eq!(negotiated.host_key, host_key, "{what}");
            assert_eq!(negotiated.cipher_c2s, cipher, "{what}");
            assert_eq!(negotiated.mac_s2c.as_deref(), mac, "{what}");
            assert_eq!(pair.server.negotiated(), Some(negotiated), "{what}");
            assert!(pair.client.host_key().unwrap().supports(host_key), "{what}");
            exchange_data(&mut pair, 3, 100);
            pair.client.rekey(pair.time).unwrap();
            exchange_data(&mut pair, 3, 1000);
            assert_eq!(rekeys(&pair), (1, 1), "{what}");
        }
    }
}

macro_rules! every_combination {
    ($($test:ident => $kex:literal, $host_key:ident,)*) => {$(
        /// Every cipher and MAC completes a handshake over this key exchange and host key
        /// algorithm and carries data through a rekey, fed all at once and one byte at a
        /// time.
        #[test]
        fn $test() {
            every_cipher_and_mac_over($kex, SignatureAlgorithm::$host_key);
        }
    )*};
}

// One test per key exchange method and host key algorithm, so that they run in parallel.
every_combination! {
    every_combination_completes_over_mlkem768x25519_sha256_with_ed25519 =>
        "mlkem768x25519-sha256", Ed25519,
    every_combination_completes_over_mlkem768x25519_sha256_with_ecdsa_p256 =>
        "mlkem768x25519-sha256", EcdsaP256,
    every_combination_completes_over_mlkem768x25519_sha256_with_ecdsa_p384 =>
        "mlkem768x25519-sha256", EcdsaP384,
    every_combination_completes_over_mlkem768x25519_sha256_with_ecdsa_p521 =>
        "mlkem768x25519-sha256", EcdsaP521,
    every_combination_completes_over_mlkem768x25519_sha256_with_rsa_sha2_256 =>
        "mlkem768x25519-sha256", RsaSha256,
    every_combination_completes_over_mlkem768x25519_sha256_with_rsa_sha2_512 =>
        "mlkem768x25519-sha256", RsaSha512,
    every_combination_completes_over_sntrup761x25519_sha512_with_ed25519 =>
        "sntrup761x25519-sha512", Ed25519,
    every_combination_completes_over_sntrup761x25519_sha512_with_ecdsa_p256 =>
        "sntrup761x25519-sha512", EcdsaP256,
    every_combination_completes_over_sntrup761x25519_sha512_with_ecdsa_p384 =>
        "sntrup761x25519-sha512", EcdsaP384,
    every_combination_completes_over_sntrup761x25519_sha512_with_ecdsa_p521 =>
        "sntrup761x25519-sha512", EcdsaP521,
    every_combination_completes_over_sntrup761x25519_sha512_with_rsa_sha2_256 =>
        "sntrup761x25519-sha512", RsaSha256,
    every_combination_completes_over_sntrup761x25519_sha512_with_rsa_sha2_512 =>
        "sntrup761x25519-sha512", RsaSha512,
    every_combination_completes_over_sntrup761x25519_sha512_openssh_with_ed25519 =>
        "sntrup761x25519-sha512@openssh.com", Ed25519,
    every_combination_completes_over_sntrup761x25519_sha512_openssh_with_ecdsa_p256 =>
        "sntrup761x25519-sha512@openssh.com", EcdsaP256,
    every_combination_completes_over_sntrup761x25519_sha512_openssh_with_ecdsa_p384 =>
        "sntrup761x25519-sha512@openssh.com", EcdsaP384,
    every_combination_completes_over_sntrup761x25519_sha512_openssh_with_ecdsa_p521 =>
        "sntrup761x25519-sha512@openssh.com", EcdsaP521,
    every_combination_completes_over_sntrup761x25519_sha512_openssh_with_rsa_sha2_256 =>
        "sntrup761x25519-sha512@openssh.com", RsaSha256,
    every_combination_completes_over_sntrup761x25519_sha512_openssh_with_rsa_sha2_512 =>
        "sntrup761x25519-sha512@openssh.com", RsaSha512,
    every_combination_completes_over_curve25519_sha256_with_ed25519 =>
        "curve25519-sha256", Ed25519,
    every_combination_completes_over_curve25519_sha256_with_ecdsa_p256 =>
        "curve25519-sha256", EcdsaP256,
    every_combination_completes_over_curve25519_sha256_with_ecdsa_p384 =>
        "curve25519-sha256", EcdsaP384,
    every_combination_completes_over_curve25519_sha256_with_ecdsa_p521 =>
        "curve25519-sha256", EcdsaP521,
    every_combination_completes_over_curve25519_sha256_with_rsa_sha2_256 =>
        "curve25519-sha256", RsaSha256,
    every_combination_completes_over_curve25519_sha256_with_rsa_sha2_512 =>
        "curve25519-sha256", RsaSha512,
    every_combination_completes_over_curve25519_sha256_libssh_with_ed25519 =>
        "curve25519-sha256@libssh.org", Ed25519,
    every_combination_completes_over_curve25519_sha256_libssh_with_ecdsa_p256 =>
        "curve25519-sha256@libssh.org", EcdsaP256,
    every_combination_completes_over_curve25519_sha256_libssh_with_ecdsa_p384 =>
        "curve25519-sha256@libssh.org", EcdsaP384,
    every_combination_completes_over_curve25519_sha256_libssh_with_ecdsa_p521 =>
        "curve25519-sha256@libssh.org", EcdsaP521,
    every_combination_completes_over_curve25519_sha256_libssh_with_rsa_sha2_256 =>
        "curve25519-sha256@libssh.org", RsaSha256,
    every_combination_completes_over_curve25519_sha256_libssh_with_rsa_sha2_512 =>
        "curve25519-sha256@libssh.org", RsaSha512,
    every_combination_completes_over_ecdh_nistp256_with_ed25519 =>
        "ecdh-sha2-nistp256", Ed25519,
    every_combination_completes_over_ecdh_nistp256_with_ecdsa_p256 =>
        "ecdh-sha2-nistp256", EcdsaP256,
    every_combination_completes_over_ecdh_nistp256_with_ecdsa_p384 =>
        "ecdh-sha2-nistp256", EcdsaP384,
    every_combination_completes_over_ecdh_nistp256_with_ecdsa_p521 =>
        "ecdh-sha2-nistp256", EcdsaP521,
    every_combination_completes_over_ecdh_nistp256_with_rsa_sha2_256 =>
        "ecdh-sha2-nistp256", RsaSha256,
    every_combination_completes_over_ecdh_nistp256_with_rsa_sha2_512 =>
        "ecdh-sha2-nistp256", RsaSha512,
    every_combination_completes_over_ecdh_nistp384_with_ed25519 =>
        "ecdh-sha2-nistp384", Ed25519,
    every_combination_completes_over_ecdh_nistp384_with_ecdsa_p256 =>
        "ecdh-sha2-nistp384", EcdsaP256,
    every_combination_completes_over_ecdh_nistp384_with_ecdsa_p384 =>
        "ecdh-sha2-nistp384", EcdsaP384,
    every_combination_completes_over_ecdh_nistp384_with_ecdsa_p521 =>
        "ecdh-sha2-nistp384", EcdsaP521,
    every_combination_completes_over_ecdh_nistp384_with_rsa_sha2_256 =>
        "ecdh-sha2-nistp384", RsaSha256,
    every_combination_completes_over_ecdh_nistp384_with_rsa_sha2_512 =>
        "ecdh-sha2-nistp384", RsaSha512,
    every_combination_completes_over_ecdh_nistp521_with_ed25519 =>
        "ecdh-sha2-nistp521", Ed25519,
    every_combination_completes_over_ecdh_nistp521_with_ecdsa_p256 =>
        "ecdh-sha2-nistp521", EcdsaP256,
    every_combination_completes_over_ecdh_nistp521_with_ecdsa_p384 =>
        "ecdh-sha2-nistp521", EcdsaP384,
    every_combination_completes_over_ecdh_nistp521_with_ecdsa_p521 =>
        "ecdh-sha2-nistp521", EcdsaP521,
    every_combination_completes_over_ecdh_nistp521_with_rsa_sha2_256 =>
        "ecdh-sha2-nistp521", RsaSha256,
    every_combination_completes_over_ecdh_nistp521_with_rsa_sha2_512 =>
        "ecdh-sha2-nistp521", RsaSha512,
    every_combination_completes_over_dh_group14_sha256_with_ed25519 =>
        "diffie-hellman-group14-sha256", Ed25519,
    every_combination_completes_over_dh_group14_sha256_with_ecdsa_p256 =>
        "diffie-hellman-group14-sha256", EcdsaP256,
    every_combination_completes_over_dh_group14_sha256_with_ecdsa_p384 =>
        "diffie-hellman-group14-sha256", EcdsaP384,
    every_combination_completes_over_dh_group14_sha256_with_ecdsa_p521 =>
        "diffie-hellman-group14-sha256", EcdsaP521,
    every_combination_completes_over_dh_group14_sha256_with_rsa_sha2_256 =>
        "diffie-hellman-group14-sha256", RsaSha256,
    every_combination_completes_over_dh_group14_sha256_with_rsa_sha2_512 =>
        "diffie-hellman-group14-sha256", RsaSha512,
    every_combination_completes_over_dh_group16_sha512_with_ed25519 =>
        "diffie-hellman-group16-sha512", Ed25519,
    every_combination_completes_over_dh_group16_sha512_with_ecdsa_p256 =>
        "diffie-hellman-group16-sha512", EcdsaP256,
    every_combination_completes_over_dh_group16_sha512_with_ecdsa_p384 =>
        "diffie-hellman-group16-sha512", EcdsaP384,
    every_combination_completes_over_dh_group16_sha512_with_ecdsa_p521 =>
        "diffie-hellman-group16-sha512", EcdsaP521,
    every_combination_completes_over_dh_group16_sha512_with_rsa_sha2_256 =>
        "diffie-hellman-group16-sha512", RsaSha256,
    every_combination_completes_over_dh_group16_sha512_with_rsa_sha2_512 =>
        "diffie-hellman-group16-sha512", RsaSha512,
    every_combination_completes_over_dh_group18_sha512_with_ed25519 =>
        "diffie-hellman-group18-sha512", Ed25519,
    every_combination_completes_over_dh_group18_sha512_with_ecdsa_p256 =>
        "diffie-hellman-group18-sha512", EcdsaP256,
    every_combination_completes_over_dh_group18_sha512_with_ecdsa_p384 =>
        "diffie-hellman-group18-sha512", EcdsaP384,
    every_combination_completes_over_dh_group18_sha512_with_ecdsa_p521 =>
        "diffie-hellman-group18-sha512", EcdsaP521,
    every_combination_completes_over_dh_group18_sha512_with_rsa_sha2_256 =>
        "diffie-hellman-group18-sha512", RsaSha256,
    every_combination_completes_over_dh_group18_sha512_with_rsa_sha2_512 =>
        "diffie-hellman-group18-sha512", RsaSha512,
}

/// Default configs complete a handshake: both sides agree on the session id and algorithms,
/// strict KEX is on, and the client was asked about the host key.
#[test]
fn default_configs_complete_a_strict_handshake() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.handshake();
    assert_eq!(pair.client.session_id(), pair.server.session_id());
    assert_eq!(pair.client.session_id().map(<[u8]>::len), Some(32));
    assert_eq!(pair.client.negotiated(), pair.server.negotiated());
    assert_eq!(pair.client.negotiated().unwrap().kex, "mlkem768x25519-sha256");
    assert_eq!(pair.client.is_strict_kex(), Some(true));
    assert_eq!(pair.server.is_strict_kex(), Some(true));
    let asked: Vec<_> = pair
        .client_events()
        .iter()
        .filter(|e| matches!(e, Event::HostKeyReceived { .. }))
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(pair.client.host_key(), Some(host_keys()[0].0.public_key()));
    assert!(pair.client.peer_identification().unwrap().starts_with(b"SSH-2.0-twine_"));
}

/// A client that refuses the host key disconnects with HOST_KEY_NOT_VERIFIABLE.
#[test]
fn refusing_the_host_key_disconnects_with_host_key_not_verifiable() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.host_key_decision = Some(false);
    pair.drive();
    assert_eq!(pair.client_error(), Some(&Error::HostKeyRejected));
    assert!(matches!(
        pair.server_error(),
        Some(Error::DisconnectReceived { reason: DisconnectReason::HOST_KEY_NOT_VERIFIABLE, .. })
    ));
}

/// While the host key decision is pending nothing moves; deciding later resumes the
/// handshake.
#[test]
fn the_handshake_waits_for_a_late_host_key_decision() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.host_key_decision = None;
    pair.drive();
    assert_eq!(pair.client.state_name(), "ExpectHostKeyDecision");
    assert!(pair.client_events().iter().any(|e| matches!(e, Event::HostKeyReceived { .. })));
    assert!(!pair.server.is_established());
    pair.client.host_key_decided(true).unwrap();
    assert_eq!(pair.client.host_key_decided(true), Err(crate::error::LocalMisuse::NotReady.into()));
    pair.handshake();
}

/// Payloads sent before the handshake wait for it and arrive first, in order: a client can
/// send its service request at once.
#[test]
fn payloads_sent_before_the_handshake_arrive_after_it_in_order() {
    let mut pair = Pair::new(client_config(), server_config());
    let request = [MessageType::SERVICE_REQUEST.0, 0, 0, 0, 12]
        .iter()
        .copied()
        .chain(*b"ssh-userauth")
        .collect::<Vec<_>>();
    pair.client.send_payload(&request).unwrap();
    pair.client.send_payload(&[MessageType::IGNORE.0 + 48, 1]).unwrap();
    assert!(pair.client.send_queue_len() > 0);
    pair.handshake();
    let got: Vec<_> = pair.server_payloads().drain(..).collect();
    assert_eq!(got, vec![request, vec![50, 1]]);
}

/// The server announces server-sig-algs (and OpenSSH's ping and hostbound extensions) to a
/// client that offered ext-info-c; the client exposes the list.
#[test]
fn the_client_learns_server_sig_algs_from_ext_info() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.handshake();
    let want = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\
                rsa-sha2-512,rsa-sha2-256";
    let extensions: Vec<(String, Vec<u8>)> = vec![
        ("server-sig-algs".into(), want.as_bytes().to_vec()),
        ("publickey-hostbound@openssh.com".into(), b"0".to_vec()),
        ("ping@openssh.com".into(), b"0".to_vec()),
    ];
    assert!(pair.client_events().contains(&Event::ExtInfoReceived { extensions }));
    assert_eq!(pair.client.server_sig_algs().unwrap().as_str(), want);
    assert!(pair.server.server_sig_algs().is_none());
}

/// Compression `zlib` works from the first NEWKEYS; `zlib@openssh.com` waits for
/// authentication, then stays on across rekeys.
#[test]
fn delayed_compression_starts_after_authentication_and_survives_rekeys() {
    for chunk in super::util::CHUNKINGS {
        let mut client = client_config();
        client.algorithms.configure(Category::Compression, "zlib@openssh.com").unwrap();
        let mut server = server_config();
        server.algorithms.configure(Category::Compression, "zlib@openssh.com,none").unwrap();
        let mut pair = Pair::new(client, server);
        pair.set_chunk_size(chunk);
        pair.handshake();
        assert_eq!(pair.client.compression_active(), (false, false));
        exchange_data(&mut pair, 2, 300);
        // "Authentication succeeds": the server enables after sending its success, the
        // client after receiving it.
        pair.server.send_payload(&[MessageType::USERAUTH_SUCCESS.0]).unwrap();
        pair.server.enable_delayed_compression();
        pair.drive();
        assert_eq!(pair.client_payloads().pop_front(), Some(vec![MessageType::USERAUTH_SUCCESS.0]));
        pair.client.enable_delayed_compression();
        assert_eq!(pair.client.compression_active(), (true, true), "chunk {chunk:?}");
        assert_eq!(pair.server.compression_active(), (true, true), "chunk {chunk:?}");
        exchange_data(&mut pair, 5, 2000);
        pair.server.rekey(pair.time).unwrap();
        exchange_data(&mut pair, 5, 2000);
        assert_eq!(rekeys(&pair), (1, 1));
        assert_eq!(pair.client.compression_active(), (true, true));
        assert_eq!(pair.server.compression_active(), (true, true));
    }
}

/// Plain `zlib` compresses from the first NEWKEYS on.
#[test]
fn zlib_compression_starts_at_once() {
    let mut client = client_config();
    client.algorithms.configure(Category::Compression, "zlib").unwrap();
    let mut server = server_config();
    server.algorithms.configure(Category::Compression, "none,zlib").unwrap();
    let mut pair = Pair::new(client, server);
    pair.handshake();
    assert_eq!(pair.client.compression_active(), (true, true));
    exchange_data(&mut pair, 10, 5000);
}

//! Key exchanges that go wrong, and `first_kex_packet_follows` guesses.

use super::util::{
    assert_failed, client_config, feed_all_ways, plain_disconnect_reason, plain_output,
    server_config, Scripted, CLIENT_LINE, SERVER_LINE,
};
use crate::crypto::algorithms::{Category, Preferences, Side};
use crate::crypto::kex_by_name;
use crate::error::{PeerIncompatible, PeerMisbehaved};
use crate::testing::fixtures::{plain_packet, KexInitLists};
use crate::testing::{Pair, SeededRandom};
use crate::transport::ServerConfig;
use crate::wire::msgs::transport::{KexEcdhInit, KexEcdhReply, NewKeys};
use crate::wire::msgs::Message;
use crate::wire::{DisconnectReason, InvalidMessage, MessageType, Writer, MAX_NAME_LIST_LEN};

/// A KEXINIT for one key exchange method, with a strict marker for `side` ("c" or "s").
fn kexinit_for(kex: &str, side: &str, first_kex_packet_follows: bool) -> Vec<u8> {
    let kex = format!("{kex},kex-strict-{side}-v00@openssh.com");
    KexInitLists { first_kex_packet_follows, ..KexInitLists::with_kex(&kex) }.payload()
}

fn encoded<'a>(msg: &impl Message<'a>) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out);
    out
}

/// A second KEXINIT while a key exchange runs ends it with KEY_EXCHANGE_FAILED.
#[test]
fn a_second_kexinit_during_a_key_exchange_is_refused() {
    let mut pair = Pair::new(client_config(), server_config());
    let mut first_flight = Vec::new();
    pair.client.poll_transmit(&mut first_flight);
    let (_, packets) = plain_output(&first_flight);
    pair.to_server.inject(&first_flight);
    pair.to_server.inject(&plain_packet(&packets[0]));
    pair.drive();
    assert_failed(&pair, false, &PeerMisbehaved::KexInitDuringKeyExchange.into());
}

/// NEWKEYS before the server's reply ends the exchange: KEY_EXCHANGE_FAILED under strict KEX,
/// PROTOCOL_ERROR without it.
#[test]
fn newkeys_before_the_reply_is_refused() {
    let newkeys = plain_packet(&encoded(&NewKeys));
    let strict =
        [SERVER_LINE, &plain_packet(&kexinit_for("curve25519-sha256", "s", false)), &newkeys]
            .concat();
    let (error, output) = feed_all_ways(Scripted::client, &strict);
    assert_eq!(error, Some(PeerMisbehaved::UnexpectedMessageDuringStrictKex.into()));
    assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::KEY_EXCHANGE_FAILED));

    let lax = KexInitLists::with_kex("curve25519-sha256").payload();
    let input = [SERVER_LINE, &plain_packet(&lax), &newkeys].concat();
    let (error, output) = feed_all_ways(Scripted::client, &input);
    assert_eq!(error, Some(PeerMisbehaved::UnexpectedMessage(MessageType::NEWKEYS).into()));
    assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::PROTOCOL_ERROR));
}

/// A KEXINIT whose kex name-list is over 64 KiB is refused before it is parsed further.
#[test]
fn an_oversized_name_list_is_refused() {
    let mut payload = vec![MessageType::KEXINIT.0];
    payload.extend_from_slice(&[0; 16]);
    let long = "a,".repeat(MAX_NAME_LIST_LEN / 2) + "a";
    let mut w = Writer::new(&mut payload);
    w.write_string(long.as_bytes());
    for _ in 0..9 {
        w.write_string(b"none");
    }
    w.write_bool(false).write_u32(0);
    let input = [CLIENT_LINE, &plain_packet(&payload)].concat();
    let (error, output) = feed_all_ways(Scripted::server, &input);
    assert_eq!(error, Some(InvalidMessage::LengthOverLimit.into()));
    assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::PROTOCOL_ERROR));
}

/// A KEXINIT with nothing in common ends the connection with KEY_EXCHANGE_FAILED.
#[test]
fn a_kexinit_with_nothing_in_common_is_refused() {
    let input =
        [CLIENT_LINE, &plain_packet(&kexinit_for("diffie-hellman-group1-sha1", "c", false))]
            .concat();
    let (error, output) = feed_all_ways(Scripted::server, &input);
    assert_eq!(error, Some(PeerIncompatible::NoCommonKex.into()));
    assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::KEY_EXCHANGE_FAILED));
}

/// For every key exchange method, a client value that is empty, one byte short, one byte
/// long, twice as long, or out of range ends the exchange with KEY_EXCHANGE_FAILED.
#[test]
fn bad_client_public_values_are_refused_for_every_method() {
    for &kex in Preferences::defaults(Side::Client).list(Category::Kex) {
        let good = kex_by_name(kex).unwrap().start_client(&mut SeededRandom::new(5)).unwrap();
        let len = good.public().len();
        let mut bad_values =
            vec![vec![], vec![0x42; len - 1], vec![0x42; len + 1], vec![0x42; 2 * len]];
        if kex.starts_with("diffie-hellman") {
            // Shorter values are smaller numbers, which may be valid: try 0, 1 and a negative.
            bad_values = vec![vec![], vec![1], vec![0xff; len + 1]];
        } else {
            bad_values.push(vec![0; len]);
        }
        for value in bad_values {
            let mut s = Scripted::server();
            let init = encoded(&KexEcdhInit { public: &value });
            let input =
                [CLIENT_LINE, &plain_packet(&kexinit_for(kex, "c", false)), &plain_packet(&init)]
                    .concat();
            let error = s.feed(&input, None);
            let what = format!("{kex} value of {} bytes", value.len());
            assert_eq!(error, Some(PeerMisbehaved::InvalidKexPublicValue.into()), "{what}");
            assert_eq!(
                plain_disconnect_reason(&s.output()),
                Some(DisconnectReason::KEY_EXCHANGE_FAILED),
                "{what}"
            );
        }
    }
}

/// Feeds a client a strict curve25519 server KEXINIT and then `reply`, in every chunking.
fn client_fed_reply(reply: &[u8]) -> (Option<crate::error::Error>, Vec<u8>) {
    let kexinit = plain_packet(&kexinit_for("curve25519-sha256", "s", false));
    feed_all_ways(Scripted::client, &[SERVER_LINE, &kexinit, &plain_packet(reply)].concat())
}

/// A server reply with a bad public value ends the client's exchange with
/// KEY_EXCHANGE_FAILED, before any signature is looked at.
#[test]
fn a_bad_server_public_value_is_refused() {
    let host_key = crate::testing::fixtures::ed25519_host_key(1).public_key().to_blob();
    for value in [vec![], vec![9; 31], vec![0; 32], vec![9; 33]] {
        let reply =
            encoded(&KexEcdhReply { host_key: &host_key, public: &value, signature: b"sig" });
        let (error, output) = client_fed_reply(&reply);
        assert_eq!(error, Some(PeerMisbehaved::InvalidKexPublicValue.into()), "{value:?}");
        assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::KEY_EXCHANGE_FAILED));
    }
}

/// A server reply whose signature does not verify ends the exchange with
/// HOST_KEY_NOT_VERIFIABLE; one whose key is of another type than negotiated too.
#[test]
fn a_bad_host_key_signature_is_refused() {
    let host_key = crate::testing::fixtures::ed25519_host_key(1).public_key().to_blob();
    let server = kex_by_name("curve25519-sha256").unwrap();
    let mut rng = SeededRandom::new(3);
    let server_public = server.start_client(&mut rng).unwrap().public().to_vec();
    let mut sig = Vec::new();
    Writer::new(&mut sig).write_string(b"ssh-ed25519").write_string(&[0; 64]);
    let reply =
        encoded(&KexEcdhReply { host_key: &host_key, public: &server_public, signature: &sig });
    let (error, output) = client_fed_reply(&reply);
    assert_eq!(error, Some(PeerMisbehaved::BadHostKeySignature.into()));
    assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::HOST_KEY_NOT_VERIFIABLE));

    let mut rsa_blob = Vec::new();
    Writer::new(&mut rsa_blob)
        .write_string(b"ssh-rsa")
        .write_mpint_unsigned(&[1, 0, 1])
        .write_mpint_unsigned(&[0xc5; 256]);
    let reply =
        encoded(&KexEcdhReply { host_key: &rsa_blob, public: &server_public, signature: &sig });
    let (error, _) = client_fed_reply(&reply);
    assert_eq!(error, Some(PeerMisbehaved::HostKeyAlgorithmMismatch.into()));
}

/// With `first_kex_packet_follows` and a wrong guess (the client's first method is not the
/// one chosen), the server drops the guessed packet, even a malformed one, and answers the
/// real one; with a right guess it answers the guessed packet itself.
#[test]
fn a_wrong_first_kex_packet_guess_is_ignored_and_a_right_one_is_used() {
    let mut config = ServerConfig::new(vec![crate::testing::fixtures::ed25519_host_key(1)]);
    config.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
    let real =
        kex_by_name("curve25519-sha256").unwrap().start_client(&mut SeededRandom::new(4)).unwrap();
    let real_init = plain_packet(&encoded(&KexEcdhInit { public: real.public() }));
    for (kex_list, guess_is_right) in [
        ("ecdh-sha2-nistp256,curve25519-sha256", false),
        ("curve25519-sha256,ecdh-sha2-nistp256", true),
    ] {
        let mut input = [CLIENT_LINE, &plain_packet(&kexinit_for(kex_list, "c", true))].concat();
        if !guess_is_right {
            input.extend_from_slice(&plain_packet(&encoded(&KexEcdhInit { public: &[0x04; 7] })));
        }
        input.extend_from_slice(&real_init);
        let (error, output) = feed_all_ways(|| Scripted::server_with(config.clone()), &input);
        assert_eq!(error, None, "{kex_list}");
        let (_, payloads) = plain_output(&output);
        let types: Vec<u8> = payloads.iter().map(|p| p[0]).collect();
        assert_eq!(types, [20, 31, 21], "{kex_list}: KEXINIT, KEX_ECDH_REPLY, NEWKEYS");
    }
}

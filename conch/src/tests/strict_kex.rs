//! Strict key exchange (OpenSSH `PROTOCOL` §1.9), the fix for Terrapin (CVE-2023-48795).

use super::util::{
    assert_failed, client_config, exchange_data, feed_all_ways, plain_disconnect_reason,
    plain_output, server_config, Scripted, CHUNKINGS, CLIENT_LINE, SERVER_LINE,
};
use crate::error::{Error, PeerMisbehaved};
use crate::testing::fixtures::{plain_packet, KexInitLists};
use crate::testing::Pair;
use crate::wire::msgs::transport::{Debug, Ignore, Ping, Unimplemented};
use crate::wire::msgs::Message;
use crate::wire::DisconnectReason;

/// The plaintext messages an attacker can inject: IGNORE, DEBUG, UNIMPLEMENTED, PING.
fn injectable() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = Vec::new();
        f(&mut p);
        out.push(p);
    };
    push(&|p| Ignore { data: b"terrapin" }.encode(p));
    push(&|p| Debug { always_display: false, message: b"x", language: b"" }.encode(p));
    push(&|p| Unimplemented { seq: 0 }.encode(p));
    push(&|p| Ping { data: b"x" }.encode(p));
    out
}

/// A server KEXINIT for curve25519 with or without the strict marker.
fn server_kexinit(strict: bool) -> Vec<u8> {
    let kex = if strict {
        "curve25519-sha256,ext-info-s,kex-strict-s-v00@openssh.com"
    } else {
        "curve25519-sha256"
    };
    KexInitLists::with_kex(kex).payload()
}

/// CVE-2023-48795 (Terrapin): a message injected after the server's KEXINIT and before its
/// NEWKEYS ends the initial key exchange with KEY_EXCHANGE_FAILED under strict KEX, whatever
/// the message and the chunking.
#[test]
fn cve_2023_48795_terrapin_rejects_ignore_injected_before_newkeys() {
    for message in injectable() {
        for chunk in CHUNKINGS {
            let mut pair = Pair::new(client_config(), server_config());
            pair.set_chunk_size(chunk);
            let mut first_flight = Vec::new();
            pair.server.poll_transmit(&mut first_flight);
            pair.to_client.inject(&first_flight);
            pair.to_client.inject(&plain_packet(&message));
            pair.drive();
            let error: Error = PeerMisbehaved::UnexpectedMessageDuringStrictKex.into();
            assert_eq!(error.disconnect_reason(), Some(DisconnectReason::KEY_EXCHANGE_FAILED));
            assert_failed(&pair, true, &error);
        }
    }
}

/// CVE-2023-48795: under strict KEX the peer's KEXINIT must be its very first packet; an
/// IGNORE slipped in before it is caught when the KEXINIT turns out to be strict.
#[test]
fn cve_2023_48795_terrapin_rejects_a_message_before_the_first_kexinit() {
    for chunk in CHUNKINGS {
        let mut pair = Pair::new(client_config(), server_config());
        pair.set_chunk_size(chunk);
        let mut first_flight = Vec::new();
        pair.server.poll_transmit(&mut first_flight);
        let line_end = first_flight.iter().position(|&b| b == b'\n').unwrap() + 1;
        pair.to_client.inject(&first_flight[..line_end]);
        pair.to_client.inject(&plain_packet(&injectable()[0]));
        pair.to_client.inject(&first_flight[line_end..]);
        pair.drive();
        assert_failed(&pair, true, &PeerMisbehaved::UnexpectedMessageDuringStrictKex.into());
    }
}

/// Without strict KEX (a peer that does not offer it), the same injected IGNORE is
/// tolerated, as RFC 4253 allows: the difference is the marker.
#[test]
fn without_the_strict_marker_an_ignore_during_kex_is_tolerated() {
    for strict in [false, true] {
        let input =
            [SERVER_LINE, &plain_packet(&server_kexinit(strict)), &plain_packet(&injectable()[0])]
                .concat();
        let (error, output) = feed_all_ways(Scripted::client, &input);
        if strict {
            assert_eq!(error, Some(PeerMisbehaved::UnexpectedMessageDuringStrictKex.into()));
            assert_eq!(
                plain_disconnect_reason(&output),
                Some(DisconnectReason::KEY_EXCHANGE_FAILED)
            );
        } else {
            assert_eq!(error, None);
            assert_eq!(plain_disconnect_reason(&output), None);
        }
    }
}

/// Under strict KEX each NEWKEYS resets its direction's sequence number: after the
/// handshake the numbers count only the packets since NEWKEYS (the server's EXT_INFO), and
/// the same holds after a rekey.
#[test]
fn newkeys_resets_sequence_numbers_under_strict_kex() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.handshake();
    assert_eq!(pair.client.sequence_numbers(), (1, 0));
    assert_eq!(pair.server.sequence_numbers(), (0, 1));
    exchange_data(&mut pair, 5, 10);
    assert_eq!(pair.client.sequence_numbers(), (6, 5));
    pair.server.rekey(pair.time).unwrap();
    pair.drive();
    assert_eq!(pair.client.sequence_numbers(), (0, 0));
    assert_eq!(pair.server.sequence_numbers(), (0, 0));
    exchange_data(&mut pair, 2, 10);
}

/// Under strict KEX a sequence number that wraps during the initial key exchange ends it.
#[test]
fn a_sequence_number_wrap_during_strict_initial_kex_is_fatal() {
    let mut s = Scripted::server();
    let client_kexinit =
        KexInitLists::with_kex("curve25519-sha256,ext-info-c,kex-strict-c-v00@openssh.com")
            .payload();
    assert_eq!(s.feed(&[CLIENT_LINE, &plain_packet(&client_kexinit)].concat(), None), None);
    s.transport.set_incoming_seq(u32::MAX);
    let error = s.feed(&plain_packet(&[30, 0, 0, 0, 32]), None);
    assert_eq!(error, Some(PeerMisbehaved::SequenceNumberWrapped.into()));
    let (_, payloads) = plain_output(&s.output());
    assert_eq!(payloads.last().map(|p| p[0]), Some(1));
}

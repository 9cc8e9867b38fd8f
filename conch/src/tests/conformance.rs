//! Every message number (0–255) in every state a peer can put us in, on both sides: each is
//! refused with the right disconnect reason, answered with UNIMPLEMENTED, ignored, or passed
//! up, exactly as the table here says, and nothing panics.

use super::util::{client_config, server_config, Scripted, CLIENT_LINE, SERVER_LINE};
use crate::testing::fixtures::{plain_packet, KexInitLists};
use crate::testing::Pair;
use crate::transport::Event;
use crate::wire::{DisconnectReason, MessageType};

/// What became of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The connection ended with this reason.
    Closed(DisconnectReason),
    /// The receiver answered SSH_MSG_UNIMPLEMENTED and carried on.
    Unimplemented,
    /// The receiver passed it to the layer above.
    Delivered,
    /// The receiver took it without a word (IGNORE).
    Ignored,
}

use Outcome::{Closed, Delivered, Ignored, Unimplemented};

const PROTOCOL_ERROR: Outcome = Closed(DisconnectReason::PROTOCOL_ERROR);
const KEY_EXCHANGE_FAILED: Outcome = Closed(DisconnectReason::KEY_EXCHANGE_FAILED);

/// Whether `n` has a meaning in some layer (the transport answers the rest itself).
fn known(n: u8) -> bool {
    MessageType(n).name().is_some() && MessageType(n) != MessageType::NEWCOMPRESS
}

/// Before the peer's KEXINIT, when strictness is not yet known: IGNORE passes, messages with
/// a body we need fail to decode (the test sends the number alone), numbers nobody defines get
/// UNIMPLEMENTED, and every other known number is out of place.
fn expected_before_peer_kexinit(n: u8) -> Outcome {
    match n {
        2 => Ignored,
        _ if known(n) => PROTOCOL_ERROR,
        _ => Unimplemented,
    }
}

/// After a strict peer's KEXINIT: only the awaited key exchange message (here undecodable)
/// and DISCONNECT are protocol errors; everything else breaks strict KEX.
fn expected_during_strict_kex(n: u8, awaited: MessageType) -> Outcome {
    if n == 1 || n == awaited.0 {
        PROTOCOL_ERROR
    } else {
        KEY_EXCHANGE_FAILED
    }
}

/// Once established: IGNORE passes, service and upper-layer messages go up, unknown numbers
/// get UNIMPLEMENTED, and the rest are transport messages that fail to decode or are out of
/// place.
fn expected_when_established(n: u8) -> Outcome {
    let t = MessageType(n);
    match n {
        2 => Ignored,
        5 | 6 => Delivered,
        _ if !known(n) => Unimplemented,
        _ if n >= 50 && t != MessageType::PING && t != MessageType::PONG => Delivered,
        _ => PROTOCOL_ERROR,
    }
}

/// Feeds `prefix` then a plaintext packet holding only the number `n`, and says what became
/// of it.
fn outcome_before_keys(make: fn() -> Scripted, prefix: &[u8], n: u8) -> Outcome {
    let mut s = make();
    assert_eq!(s.feed(prefix, None), None, "the prefix alone is fine");
    s.output();
    if let Some(error) = s.feed(&plain_packet(&[n]), None) {
        return Closed(error.disconnect_reason().expect("a reason on the wire"));
    }
    let mut buf = Vec::new();
    if s.transport.poll_payload(&mut buf).is_some() {
        return Delivered;
    }
    let sent = s.output();
    let unimplemented = sent.len() >= 6 && sent.get(5) == Some(&MessageType::UNIMPLEMENTED.0);
    if unimplemented {
        Unimplemented
    } else {
        assert!(sent.is_empty(), "{n}: unexpected output {sent:?}");
        Ignored
    }
}

fn strict_kexinit(side: &str) -> Vec<u8> {
    let kex = format!("curve25519-sha256,kex-strict-{side}-v00@openssh.com");
    plain_packet(&KexInitLists::with_kex(&kex).payload())
}

/// Every message number before the client's KEXINIT, on the server.
#[test]
fn every_message_number_before_the_peer_kexinit_on_the_server() {
    for n in 0..=255 {
        let got = outcome_before_keys(Scripted::server, CLIENT_LINE, n);
        assert_eq!(got, expected_before_peer_kexinit(n), "message {n}");
    }
}

/// Every message number before the server's KEXINIT, on the client.
#[test]
fn every_message_number_before_the_peer_kexinit_on_the_client() {
    for n in 0..=255 {
        let got = outcome_before_keys(Scripted::client, SERVER_LINE, n);
        assert_eq!(got, expected_before_peer_kexinit(n), "message {n}");
    }
}

/// Every message number while a server awaits the client's key exchange value under strict
/// KEX.
#[test]
fn every_message_number_while_the_server_awaits_the_kex_value() {
    let prefix = [CLIENT_LINE, &strict_kexinit("c")].concat();
    for n in 0..=255 {
        let got = outcome_before_keys(Scripted::server, &prefix, n);
        assert_eq!(got, expected_during_strict_kex(n, MessageType::KEX_INIT), "message {n}");
    }
}

/// Every message number while a client awaits the server's reply under strict KEX.
#[test]
fn every_message_number_while_the_client_awaits_the_kex_reply() {
    let prefix = [SERVER_LINE, &strict_kexinit("s")].concat();
    for n in 0..=255 {
        let got = outcome_before_keys(Scripted::client, &prefix, n);
        assert_eq!(got, expected_during_strict_kex(n, MessageType::KEX_REPLY), "message {n}");
    }
}

/// Every message number, encrypted, once both sides are established, in each direction.
#[test]
fn every_message_number_once_established() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.handshake();
    for n in 0..=255u8 {
        for to_server in [true, false] {
            let got = established_outcome(&mut pair, to_server, n);
            assert_eq!(got, expected_when_established(n), "message {n} to server: {to_server}");
            if matches!(got, Closed(_)) {
                pair = Pair::new(client_config(), server_config());
                pair.handshake();
            }
        }
    }
}

/// Sends `[n]` over an established pair and says what became of it.
fn established_outcome(pair: &mut Pair, to_server: bool, n: u8) -> Outcome {
    let count = |events: &[Event]| {
        events.iter().filter(|e| matches!(e, Event::UnimplementedReceived { .. })).count()
    };
    let sender_unimplemented =
        |pair: &Pair| count(if to_server { pair.client_events() } else { pair.server_events() });
    let before = sender_unimplemented(pair);
    if to_server {
        pair.client.send_raw_for_test(&[n]);
    } else {
        pair.server.send_raw_for_test(&[n]);
    }
    pair.drive();
    let receiver_error = if to_server { pair.server_error() } else { pair.client_error() };
    if let Some(error) = receiver_error {
        return Closed(error.disconnect_reason().expect("a reason on the wire"));
    }
    let inbox = if to_server { pair.server_payloads() } else { pair.client_payloads() };
    if let Some(payload) = inbox.pop_front() {
        assert_eq!(payload, [n]);
        return Delivered;
    }
    if sender_unimplemented(pair) > before {
        Unimplemented
    } else {
        Ignored
    }
}

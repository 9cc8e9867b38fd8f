//! The transport's own messages once established, and the bounds that keep a peer from
//! making us hold or send without limit.

use std::sync::Arc;

use super::util::{assert_failed, client_config, data_payload, exchange_data, server_config};
use crate::crypto::algorithms::Category;
use crate::error::{Error, Initiator, LocalMisuse, PeerMisbehaved};
use crate::testing::{Pair, SeededRandom};
use crate::transport::{Event, Transport, MAX_PAYLOAD_LEN};
use crate::wire::msgs::transport::{Debug, Ignore, Ping};
use crate::wire::msgs::Message;
use crate::wire::{DisconnectReason, MessageType};

fn established() -> Pair {
    let mut pair = Pair::new(client_config(), server_config());
    pair.handshake();
    pair
}

fn encoded<'a>(msg: &impl Message<'a>) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out);
    out
}

/// An unknown message number gets SSH_MSG_UNIMPLEMENTED naming its sequence number, not a
/// disconnect: upper-layer numbers and unassigned transport numbers alike.
#[test]
fn unknown_message_numbers_get_unimplemented() {
    for number in [150u8, 255, 15, 8, 35, 49] {
        let mut pair = established();
        let (_, seq) = pair.client.sequence_numbers();
        pair.client.send_raw_for_test(&[number, 1, 2, 3]);
        pair.drive();
        assert_eq!(pair.server_error(), None, "{number}");
        assert!(pair.client_events().contains(&Event::UnimplementedReceived { seq }), "{number}");
        exchange_data(&mut pair, 1, 10);
    }
}

/// A key exchange method message outside a key exchange is a protocol error.
#[test]
fn a_kex_method_message_outside_a_key_exchange_is_refused() {
    let mut pair = established();
    pair.client.send_raw_for_test(&[MessageType::KEX_INIT.0, 0, 0, 0, 0]);
    pair.drive();
    assert_failed(&pair, false, &PeerMisbehaved::UnexpectedMessage(MessageType::KEX_INIT).into());
}

/// IGNORE is dropped silently; DEBUG becomes an event with control characters removed.
#[test]
fn ignore_is_dropped_and_debug_is_reported_sanitized() {
    let mut pair = established();
    pair.client.send_raw_for_test(&encoded(&Ignore { data: b"noise" }));
    pair.client.send_raw_for_test(&encoded(&Debug {
        always_display: true,
        message: b"\x1b[31mred\x07 text\r\n",
        language: b"",
    }));
    pair.drive();
    let debug: Vec<_> =
        pair.server_events().iter().filter(|e| matches!(e, Event::DebugReceived { .. })).collect();
    assert_eq!(
        debug,
        [&Event::DebugReceived { always_display: true, message: "[31mred text".into() }]
    );
    assert!(pair.server_payloads().is_empty());
    assert_eq!(pair.server_error(), None);
}

/// A PING gets a PONG (the sender sees no error and no event); during a key exchange it
/// gets none (CVE-2025-26466).
#[test]
fn ping_gets_pong_except_during_a_key_exchange() {
    let mut pair = established();
    let before = pair.to_client.position();
    pair.client.send_raw_for_test(&encoded(&Ping { data: b"hello" }));
    pair.drive();
    assert!(pair.to_client.position() > before, "a PONG was sent");
    assert_eq!(pair.client_error(), None);

    let mut pair = established();
    pair.server.rekey(pair.time).unwrap();
    let mut kexinit = Vec::new();
    pair.server.poll_transmit(&mut kexinit);
    pair.client.handle_input(pair.time, &kexinit).unwrap();
    let (in_seq, out_seq) = pair.client.sequence_numbers();
    let mut ping = Vec::new();
    pair.server.send_raw_for_test(&encoded(&Ping { data: b"x" }));
    pair.server.poll_transmit(&mut ping);
    pair.client.handle_input(pair.time, &ping).unwrap();
    while pair.client.poll_payload(&mut Vec::new()).is_some() {}
    assert_eq!(pair.client.sequence_numbers(), (in_seq + 1, out_seq), "no PONG during KEX");
}

/// A DISCONNECT from the application reaches the peer with its reason and a sanitized
/// description; afterwards the connection refuses payloads.
#[test]
fn disconnect_reaches_the_peer_with_reason_and_sanitized_description() {
    let mut pair = established();
    pair.client.disconnect(DisconnectReason::BY_APPLICATION, "bye\x1b[0m\x07");
    pair.drive();
    assert!(pair.client_events().contains(&Event::Disconnected {
        error: Error::DisconnectSent {
            reason: DisconnectReason::BY_APPLICATION,
            description: "bye\x1b[0m\x07".into()
        },
        initiator: Initiator::Local,
    }));
    assert!(pair.server_events().contains(&Event::Disconnected {
        error: Error::DisconnectReceived {
            reason: DisconnectReason::BY_APPLICATION,
            description: "bye[0m".into()
        },
        initiator: Initiator::Remote,
    }));
    assert_eq!(pair.client.send_payload(&[94]), Err(Error::ConnectionClosed));
    assert!(pair.client.is_closed() && pair.server.is_closed());
}

/// Payloads the transport owns, empty payloads and oversized ones are refused locally; the
/// connection stays up.
#[test]
fn send_payload_refuses_transport_messages_and_oversized_payloads() {
    let mut pair = established();
    for bad in [&[][..], &[20], &[1, 0], &[MessageType::PING.0], &[MessageType::EXT_INFO.0]] {
        assert_eq!(
            pair.client.send_payload(bad),
            Err(LocalMisuse::InvalidPayload.into()),
            "{bad:?}"
        );
    }
    let big = data_payload(0, MAX_PAYLOAD_LEN + 1);
    assert_eq!(pair.client.send_payload(&big), Err(LocalMisuse::PayloadTooLarge.into()));
    pair.client.send_payload(&data_payload(0, MAX_PAYLOAD_LEN)).unwrap();
    pair.drive();
    assert_eq!(pair.server_payloads().pop_front().map(|p| p.len()), Some(MAX_PAYLOAD_LEN));
}

/// Input beyond the buffer's capacity is refused without consuming anything, and
/// processing stops at one pending payload until it is polled.
#[test]
fn input_is_bounded_and_processing_waits_for_the_layer_above() {
    let mut pair = established();
    for i in 0..40u8 {
        pair.client.send_payload(&data_payload(i, 20_000)).unwrap();
    }
    let mut wire = Vec::new();
    pair.client.poll_transmit(&mut wire);
    let capacity = pair.server.input_capacity();
    assert!(wire.len() > capacity);
    assert_eq!(
        pair.server.handle_input(pair.time, &wire[..capacity + 1]),
        Err(LocalMisuse::InputBufferFull.into())
    );
    pair.server.handle_input(pair.time, &wire[..capacity]).unwrap();
    // One packet was decoded and waits for the layer above; the rest waits behind it.
    assert!(pair.server.input_capacity() <= 20_100, "{}", pair.server.input_capacity());
    let mut buf = Vec::new();
    let mut got = 0;
    let mut fed = capacity;
    while pair.server.poll_payload(&mut buf).is_some() {
        assert_eq!(buf, data_payload(got, 20_000));
        got += 1;
        let n = pair.server.input_capacity().min(wire.len() - fed);
        pair.server.handle_input(pair.time, &wire[fed..fed + n]).unwrap();
        fed += n;
    }
    assert_eq!(got, 40);
}

/// Reads into the space `input_buffer` lends, at most `max` bytes at a time, polling payloads
/// before each read; returns the payloads in order. Checks on every read that the space is never
/// longer than the input capacity.
fn read_through_lent_space(pair: &mut Pair, wire: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut fed = 0;
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while fed < wire.len() {
        while pair.server.poll_payload(&mut buf).is_some() {
            got.push(buf.clone());
        }
        let capacity = pair.server.input_capacity();
        let rest = &wire[fed..];
        let space = pair.server.input_buffer(max);
        assert!(space.len() <= capacity.min(max), "{} > {capacity}", space.len());
        assert!(!space.is_empty(), "no room while nothing waits to be polled");
        let n = space.len().min(rest.len());
        space[..n].copy_from_slice(&rest[..n]);
        pair.server.input_written(pair.time, n).unwrap();
        fed += n;
    }
    while pair.server.poll_payload(&mut buf).is_some() {
        got.push(buf.clone());
    }
    got
}

/// Input read straight into the transport's lent space decodes exactly as `handle_input`'s:
/// a byte at a time, in 7-byte reads and in 64 KiB reads.
#[test]
fn lent_input_space_decodes_like_handle_input_in_any_chunking() {
    let payloads: Vec<Vec<u8>> =
        (0..40u8).map(|i| data_payload(i, 100 + 50 * usize::from(i))).collect();
    for max in [1, 7, 64 * 1024] {
        let mut pair = established();
        for payload in &payloads {
            pair.client.send_payload(payload).unwrap();
        }
        let mut wire = Vec::new();
        pair.client.poll_transmit(&mut wire);
        assert_eq!(read_through_lent_space(&mut pair, &wire, max), payloads, "max {max}");
    }
}

/// The lent space never exceeds the input capacity: unpolled input fills the buffer until the
/// space is empty, exactly when the capacity is 0, and polling makes room again.
#[test]
fn lent_input_space_is_bounded_by_the_input_capacity() {
    let mut pair = established();
    for i in 0..40u8 {
        pair.client.send_payload(&data_payload(i, 20_000)).unwrap();
    }
    let mut wire = Vec::new();
    pair.client.poll_transmit(&mut wire);
    let mut fed = 0;
    for _ in 0..1000 {
        let capacity = pair.server.input_capacity();
        let space = pair.server.input_buffer(64 * 1024);
        assert!(space.len() <= capacity);
        if space.is_empty() {
            break;
        }
        let n = space.len();
        space.copy_from_slice(&wire[fed..fed + n]);
        pair.server.input_written(pair.time, n).unwrap();
        fed += n;
    }
    assert_eq!(pair.server.input_capacity(), 0);
    assert!(pair.server.input_buffer(64 * 1024).is_empty());
    // A claim past what was lent counts only what was lent (here nothing).
    pair.server.input_written(pair.time, 10).unwrap();
    assert_eq!(pair.server.input_capacity(), 0);
    let mut buf = Vec::new();
    assert!(pair.server.poll_payload(&mut buf).is_some());
    assert_eq!(buf, data_payload(0, 20_000));
    let rest = read_through_lent_space(&mut pair, &wire[fed..], 64 * 1024);
    assert_eq!(rest.len(), 39);
    assert_eq!(rest[38], data_payload(39, 20_000));
}

/// A flood of DEBUG messages pauses reading once the event queue is full; polling events
/// resumes it.
#[test]
fn the_event_queue_is_bounded() {
    let mut pair = established();
    for _ in 0..200 {
        pair.client.send_raw_for_test(&encoded(&Debug {
            always_display: false,
            message: b"m",
            language: b"",
        }));
    }
    let mut wire = Vec::new();
    pair.client.poll_transmit(&mut wire);
    pair.server.handle_input(pair.time, &wire).unwrap();
    let mut total = 0;
    loop {
        let mut batch = 0;
        while pair.server.poll_event().is_some() {
            batch += 1;
        }
        assert!(batch <= 64, "{batch} events queued");
        total += batch;
        if pair.server.poll_payload(&mut Vec::new()).is_none() && batch == 0 {
            break;
        }
    }
    assert_eq!(total, 200);
}

/// A peer that floods PINGs while never reading our output is disconnected once our
/// unsent output reaches the send bound, instead of being answered without limit.
#[test]
fn ping_floods_against_a_blocked_output_are_bounded() {
    let mut server = server_config();
    server.limits.max_send_queue = 4096;
    let mut pair = Pair::new(client_config(), server);
    pair.handshake();
    for _ in 0..1000 {
        pair.client.send_raw_for_test(&encoded(&Ping { data: &[0; 64] }));
    }
    let mut wire = Vec::new();
    pair.client.poll_transmit(&mut wire);
    let _ = pair.server.handle_input(pair.time, &wire);
    while pair.server.poll_payload(&mut Vec::new()).is_some() {}
    assert!(pair.server.send_queue_len() < 4096 + 200);
    let mut events = Vec::new();
    while let Some(e) = pair.server.poll_event() {
        events.push(e);
    }
    assert!(events.contains(&Event::Disconnected {
        error: PeerMisbehaved::BufferLimitExceeded.into(),
        initiator: Initiator::Local
    }));
}

/// A configuration without algorithms, or naming one we lack, is refused up front.
#[test]
fn invalid_configs_are_refused() {
    let mut c = client_config();
    c.algorithms.configure(Category::Cipher, "aes128-ctr").unwrap();
    c.algorithms.configure(Category::Mac, "-*").unwrap_err();
    c.limits.max_input_buffer = 1000;
    assert_eq!(
        Transport::client(Arc::new(c), Box::new(SeededRandom::new(1))).err(),
        Some(LocalMisuse::InvalidConfig.into())
    );
    let mut c = client_config();
    c.identification.software_version = "has space".into();
    assert!(Transport::client(Arc::new(c), Box::new(SeededRandom::new(1))).is_err());
    let s = crate::transport::ServerConfig::new(vec![]);
    assert!(Transport::server(Arc::new(s), Box::new(SeededRandom::new(1))).is_err());
}

/// The layer above can answer a payload it does not know with UNIMPLEMENTED naming the
/// sequence number the payload came with.
#[test]
fn the_layer_above_can_answer_unimplemented_by_sequence_number() {
    let mut pair = established();
    let (_, seq) = pair.client.sequence_numbers();
    pair.client.send_payload(&[MessageType::CHANNEL_SUCCESS.0]).unwrap();
    let mut wire = Vec::new();
    pair.client.poll_transmit(&mut wire);
    pair.server.handle_input(pair.time, &wire).unwrap();
    let mut buf = Vec::new();
    let incoming = pair.server.poll_payload(&mut buf).unwrap();
    assert_eq!(incoming.msg_type, MessageType::CHANNEL_SUCCESS);
    assert_eq!(incoming.seq, pair.server.sequence_numbers().0 - 1);
    pair.server.send_unimplemented(incoming.seq).unwrap();
    pair.drive();
    assert!(pair.client_events().contains(&Event::UnimplementedReceived { seq }));
}

/// An error found by the layer above ends the connection with that error's reason.
#[test]
fn the_layer_above_can_end_the_connection_with_its_error() {
    let mut pair = established();
    let error: Error = PeerMisbehaved::TooManyAuthFailures.into();
    pair.server.disconnect_with_error(error.clone());
    pair.drive();
    assert_failed(&pair, false, &error);
}

/// Both sides know the host key of the initial exchange: the server's own, the client's
/// accepted one.
#[test]
fn both_sides_know_the_host_key() {
    let pair = established();
    assert!(pair.client.host_key().is_some());
    assert_eq!(pair.client.host_key(), pair.server.host_key());
}

/// A transport can move to another thread (a reactor per core hands connections around).
#[test]
fn a_transport_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Transport>();
    assert_send::<Event>();
}

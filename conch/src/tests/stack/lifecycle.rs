//! How a whole-stack connection ends, and what it does on the way: one `Closed` as the last
//! event, the application's own disconnect, end of stream, a refused host key, and input
//! processing that waits while events pile up.

use super::matrix::sample;
use super::scripted::{server_harness, State};
use super::util::{authenticated_pair, client_config, open_session, server_config, CHUNKINGS};
use crate::connection::msgs::ChannelRequest;
use crate::connection::Event as ConnectionEvent;
use crate::error::{Error, Initiator, PeerMisbehaved};
use crate::stack::{ClientEvent, ServerEvent, MAX_QUEUED_EVENTS};
use crate::testing::StackPair;
use crate::transport;
use crate::wire::{DisconnectReason, MessageType};

/// The application's `disconnect` is reported as `Closed` with no error on its side and as the
/// peer's DISCONNECT, reason and text, on the other; `Closed` is the last event, once, and later
/// input is refused.
#[test]
fn an_application_disconnect_closes_both_sides_once() {
    let mut pair = authenticated_pair();
    pair.server.disconnect(DisconnectReason::BY_APPLICATION, "maintenance");
    pair.server.disconnect(DisconnectReason::PROTOCOL_ERROR, "again");
    pair.drive();
    let server = pair.take_server_events();
    let closed = server.iter().filter(|e| matches!(e, ServerEvent::Closed { .. })).count();
    assert_eq!(closed, 1);
    assert!(matches!(
        server.last(),
        Some(ServerEvent::Closed { error: None, initiator: Initiator::Local })
    ));
    let client = pair.take_client_events();
    match client.last() {
        Some(ClientEvent::Closed {
            error: Some(Error::DisconnectReceived { reason, description }),
            initiator: Initiator::Remote,
        }) => {
            assert_eq!(
                (*reason, description.as_str()),
                (DisconnectReason::BY_APPLICATION, "maintenance")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pair.server.handle_input(pair.time, b"x"), Err(Error::ConnectionClosed));
    assert_eq!(pair.server.poll_event().map(|_| ()), None);
    assert_eq!(pair.server.poll_timeout(), None);
    assert_eq!(pair.server.input_capacity(), 0);
}

/// What the application queued before it disconnected (an exit status, the channel's close)
/// goes out before the DISCONNECT.
#[test]
fn a_disconnect_sends_what_was_queued_first() {
    let mut pair = authenticated_pair();
    let (client_id, server_id) = open_session(&mut pair);
    let connection = pair.server.connection_mut().unwrap();
    connection.send_data(server_id, b"bye\n").unwrap();
    connection.send_request(server_id, &ChannelRequest::ExitStatus { code: 3 }, false).unwrap();
    connection.close(server_id).unwrap();
    pair.server.disconnect(DisconnectReason::BY_APPLICATION, "done");
    pair.drive();
    let events = super::util::client_connection_events(&pair);
    assert!(events.contains(&&ConnectionEvent::DataReceived {
        id: client_id,
        stream: crate::connection::Stream::Data
    }));
    assert!(events.iter().any(|e| matches!(
        e,
        ConnectionEvent::RequestReceived { request: ChannelRequest::ExitStatus { code: 3 }, .. }
    )));
    assert!(events.contains(&&ConnectionEvent::CloseReceived { id: client_id }));
}

/// The peer closing the stream between packets ends the connection without an error; inside a
/// packet, as truncated.
#[test]
fn end_of_stream_ends_the_connection() {
    let mut pair = authenticated_pair();
    pair.client.handle_eof(pair.time);
    assert!(matches!(
        pair.client.poll_event(),
        Some(ClientEvent::Closed { error: None, initiator: Initiator::Remote })
    ));
    let mut pair = authenticated_pair();
    pair.client.handle_input(pair.time, &[0, 0]).unwrap();
    pair.client.handle_eof(pair.time);
    assert!(matches!(
        pair.client.poll_event(),
        Some(ClientEvent::Closed {
            error: Some(Error::InvalidMessage(crate::wire::InvalidMessage::Truncated)),
            initiator: Initiator::Remote
        })
    ));
}

/// Refusing the host key ends the connection with `HOST_KEY_NOT_VERIFIABLE` before any user
/// authentication.
#[test]
fn a_refused_host_key_ends_the_connection() {
    let mut pair: StackPair<()> = StackPair::new(client_config(), server_config(), "alice");
    pair.host_key_decision = Some(false);
    pair.drive();
    assert_eq!(pair.client_closed(), Some((Some(&Error::HostKeyRejected), Initiator::Local)));
    match pair.server_closed() {
        Some((Some(Error::DisconnectReceived { reason, .. }), Initiator::Remote)) => {
            assert_eq!(*reason, DisconnectReason::HOST_KEY_NOT_VERIFIABLE);
        }
        other => panic!("{other:?}"),
    }
    assert!(pair.client.userauth().is_none() && pair.server.userauth().is_none());
}

/// The host key decision may come much later; until it does, nothing moves past the key
/// exchange, and afterwards the login completes.
#[test]
fn the_host_key_decision_may_come_later() {
    for chunk in CHUNKINGS {
        let mut pair = super::util::password_pair();
        pair.set_chunk_size(chunk);
        pair.host_key_decision = None;
        pair.drive();
        let asked = pair
            .client_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Transport(transport::Event::HostKeyReceived { .. })));
        assert!(asked && !pair.client.transport().is_established());
        assert!(pair.client.host_key_decided(pair.time, true).is_ok());
        assert!(pair.client.host_key_decided(pair.time, true).is_err(), "asked once");
        pair.drive();
        super::util::assert_authenticated(&pair);
    }
}

/// A flood of DEBUG messages makes the stack stop taking up input at the event bound rather
/// than queueing without limit; every one is still delivered as it is polled.
#[test]
fn input_waits_while_events_pile_up() {
    let mut h = server_harness();
    h.reach(State::Authenticated);
    let debug = sample(MessageType::DEBUG.0);
    for _ in 0..3 * MAX_QUEUED_EVENTS {
        h.inject(&debug);
    }
    let bytes = std::mem::take(&mut h.to_stack);
    h.stack.handle_input(h.now, &bytes).unwrap();
    let mut first_batch = 0;
    while h.stack.poll_event().is_some() {
        first_batch += 1;
    }
    assert!(first_batch <= 2 * MAX_QUEUED_EVENTS, "{first_batch} events queued at once");
    let mut total = first_batch;
    for _ in 0..10 {
        let mut out = Vec::new();
        h.stack.poll_transmit(h.now, &mut out);
        while h.stack.poll_event().is_some() {
            total += 1;
        }
    }
    assert_eq!(total, 3 * MAX_QUEUED_EVENTS);
    assert!(!h.stack.is_closed());
}

/// A connection message that fails in the connection layer ends the connection with its
/// reason, and the error comes back from `handle_input` too.
#[test]
fn a_connection_layer_error_is_returned_and_reported() {
    let mut h = server_harness();
    h.reach(State::Authenticated);
    h.inject(&sample(MessageType::CHANNEL_DATA.0));
    let bytes = std::mem::take(&mut h.to_stack);
    let error: Error = PeerMisbehaved::UnknownChannel(MessageType::CHANNEL_DATA).into();
    assert_eq!(h.stack.handle_input(h.now, &bytes), Err(error.clone()));
    assert!(matches!(
        h.stack.poll_event(),
        Some(ServerEvent::Closed { error: Some(e), initiator: Initiator::Local }) if e == error
    ));
}

/// A bit flipped on the wire after login ends the connection with a MAC error on the side that
/// reads it, which tells the other.
#[test]
fn a_flipped_bit_ends_the_connection_with_a_mac_error() {
    let mut pair = authenticated_pair();
    let at = pair.to_server.position() + 20;
    pair.to_server.flip_bit(at, 0x01);
    let kind = crate::connection::msgs::ChannelKind::Session;
    pair.client.connection_mut().unwrap().open_channel(kind).unwrap();
    pair.drive();
    let mac: Error = crate::wire::InvalidMessage::MacMismatch.into();
    assert_eq!(pair.server_closed(), Some((Some(&mac), Initiator::Local)));
    match pair.client_closed() {
        Some((Some(Error::DisconnectReceived { reason, .. }), Initiator::Remote)) => {
            assert_eq!(*reason, DisconnectReason::MAC_ERROR);
        }
        other => panic!("{other:?}"),
    }
}

/// A stream cut inside a packet ends the connection as truncated on the reading side.
#[test]
fn a_stream_cut_inside_a_packet_is_truncated() {
    let mut pair = authenticated_pair();
    let at = pair.to_server.position() + 10;
    pair.to_server.truncate_at(at);
    let kind = crate::connection::msgs::ChannelKind::Session;
    pair.client.connection_mut().unwrap().open_channel(kind).unwrap();
    pair.drive();
    let truncated: Error = crate::wire::InvalidMessage::Truncated.into();
    assert_eq!(pair.server_closed(), Some((Some(&truncated), Initiator::Remote)));
}

//! Channels and flow control through the whole stack: windows from 1 byte to 2^32−1, a peer
//! that overruns them, data after EOF, close races, a bulk transfer across rekeys, and
//! backpressure from a blocked socket to `send_data`.

use super::matrix::sample;
use super::scripted::{payload, server_harness, server_harness_with, Outcome, State};
use super::util::{
    authenticated_pair, client_config_full, client_config_with, exec, open_session,
    password_backend, read_client, read_server, server_config_full, server_config_with,
    server_transport, CHUNKINGS, PASSWORD,
};
use crate::connection::{self, ChannelId, Event as ConnectionEvent, Stream};
use crate::stack::{ClientEvent, ServerEvent};
use crate::testing::StackPair;
use crate::transport::{self, RekeyLimits};
use crate::userauth::{self, PasswordAnswer};
use crate::wire::{DisconnectReason, MessageType};

const PROTOCOL_ERROR: Outcome = Outcome::Refused(DisconnectReason::PROTOCOL_ERROR);

/// A logged-in pair whose both connection layers use `connection`, delivering in `chunk`s.
fn pair_with(connection: connection::Config, chunk: Option<usize>) -> StackPair<String> {
    let server = server_config_with(|_| {}, connection.clone());
    let client = client_config_with(|_| {}, connection);
    logged_in(StackPair::new(client, server, "alice"), chunk)
}

/// Logs `pair` in with a password, delivering in `chunk`s, and clears its events.
fn logged_in(mut pair: StackPair<String>, chunk: Option<usize>) -> StackPair<String> {
    pair.set_chunk_size(chunk);
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(Box::new(|event, client| {
        if let userauth::ClientEvent::PasswordRequested { .. } = event {
            client.password_ready(Some(PasswordAnswer::Password(PASSWORD.into()))).unwrap();
        }
    }));
    pair.drive();
    assert!(pair.client.is_authenticated() && pair.server.is_authenticated());
    pair.take_client_events();
    pair.take_server_events();
    pair
}

/// Moves `data` over the channel, server to client (`downstream`) or client to server, sending
/// what the window takes each round and reading everything that arrived; returns what the
/// receiver read.
fn transfer(
    pair: &mut StackPair<String>,
    (client_id, server_id): (ChannelId, ChannelId),
    data: &[u8],
    downstream: bool,
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..1_000_000 {
        if sent < data.len() {
            let connection = if downstream {
                pair.server.connection_mut().unwrap()
            } else {
                pair.client.connection_mut().unwrap()
            };
            let id = if downstream { server_id } else { client_id };
            sent += connection.send_data(id, &data[sent..]).unwrap();
        }
        pair.drive();
        got.extend(if downstream {
            read_client(pair, client_id, Stream::Data)
        } else {
            read_server(pair, server_id, Stream::Data)
        });
        if got.len() >= data.len() {
            return got;
        }
    }
    panic!("transfer stalled at {} of {} bytes", got.len(), data.len());
}

/// Bytes of a recognizable pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

/// A session opens, an exec request and data reach the server, and the answer comes back, in
/// every chunking.
#[test]
fn session_data_flows_both_ways() {
    for chunk in CHUNKINGS {
        let mut pair = authenticated_pair();
        pair.set_chunk_size(chunk);
        let (client_id, server_id) = open_session(&mut pair);
        exec(&mut pair, client_id, "echo hi");
        pair.client.connection_mut().unwrap().send_data(client_id, b"input").unwrap();
        pair.drive();
        let got_exec = pair.server_events().iter().any(|e| {
            matches!(e, ServerEvent::Connection(ConnectionEvent::RequestReceived { id, .. }) if *id == server_id)
        });
        assert!(got_exec);
        assert_eq!(read_server(&mut pair, server_id, Stream::Data), b"input");
        pair.server.connection_mut().unwrap().send_data(server_id, b"output").unwrap();
        pair.drive();
        assert_eq!(read_client(&mut pair, client_id, Stream::Data), b"output");
    }
}

/// One-byte windows and packets move every byte, one at a time, both ways.
#[test]
fn one_byte_windows_move_every_byte() {
    for chunk in CHUNKINGS {
        let config =
            connection::Config { window_size: 1, max_packet_size: 1, ..Default::default() };
        let mut pair = pair_with(config, chunk);
        let ids = open_session(&mut pair);
        let data = pattern(300);
        assert_eq!(transfer(&mut pair, ids, &data, true), data, "chunk {chunk:?}");
        assert_eq!(transfer(&mut pair, ids, &data, false), data, "chunk {chunk:?}");
    }
}

/// 2^32−1 windows: data flows, and once it is read the window is handed back (in adjusts of
/// a megabyte or more) without overflowing: the sender ends within a megabyte of 2^32−1.
#[test]
fn maximal_windows_are_refilled_without_overflow() {
    let config = connection::Config { window_size: u32::MAX, ..Default::default() };
    let mut pair = pair_with(config, None);
    let ids = open_session(&mut pair);
    let data = pattern(3 << 20);
    assert_eq!(transfer(&mut pair, ids, &data, true), data);
    pair.drive();
    let window = pair.server.connection().unwrap().send_window(ids.1).unwrap();
    assert!(window > u32::MAX - (1 << 20), "window {window}");
    assert_eq!(pair.client_closed(), None);
}

/// A window adjust that would take a 2^32−1 window past its maximum ends the connection.
#[test]
fn a_window_adjust_past_the_maximum_ends_the_connection() {
    for chunk in CHUNKINGS {
        let mut h = server_harness();
        h.chunk = chunk;
        h.reach(State::Authenticated);
        h.send(&payload(|w| {
            w.write_u8(MessageType::CHANNEL_OPEN.0)
                .write_string(b"session")
                .write_u32(0)
                .write_u32(u32::MAX)
                .write_u32(32 * 1024);
        }));
        h.drive();
        let adjust = payload(|w| {
            w.write_u8(MessageType::CHANNEL_WINDOW_ADJUST.0).write_u32(0).write_u32(1);
        });
        assert_eq!(h.outcome_of(&adjust), PROTOCOL_ERROR);
    }
}

/// Data beyond the window we advertised, or larger than our maximum packet, ends the
/// connection.
#[test]
fn a_peer_that_overruns_the_window_or_packet_size_is_disconnected() {
    for (window, max_packet) in [(16, 16), (1024, 16)] {
        for chunk in CHUNKINGS {
            let config = connection::Config {
                window_size: window,
                max_packet_size: max_packet,
                ..Default::default()
            };
            let mut h = server_harness_with(server_config_with(|_| {}, config));
            h.chunk = chunk;
            h.reach(State::ChannelOpen);
            let data = payload(|w| {
                w.write_u8(MessageType::CHANNEL_DATA.0).write_u32(0).write_string(&[7; 17]);
            });
            assert_eq!(h.outcome_of(&data), PROTOCOL_ERROR, "window {window}, {chunk:?}");
        }
    }
}

/// Data after the peer's EOF is dropped, as OpenSSH does; extended data after it ends the
/// connection.
#[test]
fn data_after_eof_is_dropped_and_extended_data_after_eof_is_refused() {
    for chunk in CHUNKINGS {
        let mut h = server_harness();
        h.chunk = chunk;
        h.reach(State::ChannelOpen);
        assert_eq!(h.outcome_of(&sample(MessageType::CHANNEL_EOF.0)), Outcome::Accepted);
        assert_eq!(h.outcome_of(&sample(MessageType::CHANNEL_DATA.0)), Outcome::Accepted);
        let delivered = h
            .log
            .connection_events
            .iter()
            .any(|e| matches!(e, ConnectionEvent::DataReceived { .. }));
        assert!(!delivered, "data after EOF reached the application");
        let extended = sample(MessageType::CHANNEL_EXTENDED_DATA.0);
        assert_eq!(h.outcome_of(&extended), PROTOCOL_ERROR);
    }
}

/// Both sides closing a channel at once each see it closed exactly once, and the connection
/// goes on: a new session opens and works.
#[test]
fn simultaneous_closes_free_the_channel_once_on_each_side() {
    for chunk in CHUNKINGS {
        let mut pair = authenticated_pair();
        pair.set_chunk_size(chunk);
        let (client_id, server_id) = open_session(&mut pair);
        pair.server.connection_mut().unwrap().send_data(server_id, b"last words").unwrap();
        pair.client.connection_mut().unwrap().send_data(client_id, b"too late").unwrap();
        pair.client.connection_mut().unwrap().close(client_id).unwrap();
        pair.server.connection_mut().unwrap().close(server_id).unwrap();
        pair.drive();
        let closed = |events: Vec<&ConnectionEvent>, id| {
            events.iter().filter(|e| **e == &ConnectionEvent::ChannelClosed { id }).count()
        };
        assert_eq!(closed(super::util::client_connection_events(&pair), client_id), 1);
        assert_eq!(closed(super::util::server_connection_events(&pair), server_id), 1);
        assert_eq!(pair.client.connection().unwrap().channel_count(), 0);
        assert_eq!(pair.server.connection().unwrap().channel_count(), 0);
        let (client_id, server_id) = open_session(&mut pair);
        pair.client.connection_mut().unwrap().send_data(client_id, b"again").unwrap();
        pair.drive();
        assert_eq!(read_server(&mut pair, server_id, Stream::Data), b"again");
        assert_eq!(pair.client_closed(), None);
    }
}

/// A close crossing data in flight: the closing side drops what arrives after its CLOSE, the
/// other side sees the close, answers it, and nobody errs.
#[test]
fn a_close_crossing_data_in_flight_is_clean() {
    let mut pair = authenticated_pair();
    let (client_id, server_id) = open_session(&mut pair);
    pair.client.connection_mut().unwrap().close(client_id).unwrap();
    pair.server.connection_mut().unwrap().send_data(server_id, &pattern(10_000)).unwrap();
    pair.drive();
    let close_received = super::util::server_connection_events(&pair)
        .iter()
        .any(|e| **e == ConnectionEvent::CloseReceived { id: server_id });
    assert!(close_received);
    pair.server.connection_mut().unwrap().close(server_id).unwrap();
    pair.drive();
    assert_eq!(pair.client.connection().unwrap().channel_count(), 0);
    assert_eq!(pair.server.connection().unwrap().channel_count(), 0);
    assert_eq!((pair.client_closed(), pair.server_closed()), (None, None));
}

/// A bulk transfer across several rekeys (a byte limit on the server, and one the client asks
/// for in the middle) arrives intact, fed all at once, one byte and seven bytes at a time.
#[test]
fn a_bulk_transfer_survives_rekeys_in_the_middle() {
    for (chunk, len) in [(None, 1 << 20), (Some(7), 128 * 1024), (Some(1), 40 * 1024)] {
        let mut transport = server_transport();
        transport.rekey = RekeyLimits { bytes: Some(16 * 1024), ..RekeyLimits::default() };
        // Windows of 32 KiB make the sender send in rounds, each past the byte limit.
        let window = connection::Config { window_size: 32 * 1024, ..Default::default() };
        let server = server_config_full(transport, |_| {}, window.clone());
        let client = client_config_full(transport::ClientConfig::default(), |_| {}, window);
        let mut pair = logged_in(StackPair::new(client, server, "alice"), chunk);
        let ids = open_session(&mut pair);
        let data = pattern(len);
        let half = len / 2;
        assert_eq!(transfer(&mut pair, ids, &data[..half], true), &data[..half]);
        pair.client.rekey(pair.time).unwrap();
        assert_eq!(transfer(&mut pair, ids, &data[half..], true), &data[half..]);
        let rekeys = |events: Vec<bool>| events.into_iter().filter(|r| *r).count();
        let client_rekeys = rekeys(
            pair.client_events()
                .iter()
                .map(|e| {
                    matches!(
                        e,
                        ClientEvent::Transport(transport::Event::KexCompleted { initial: false })
                    )
                })
                .collect(),
        );
        let server_rekeys = rekeys(
            pair.server_events()
                .iter()
                .map(|e| {
                    matches!(
                        e,
                        ServerEvent::Transport(transport::Event::KexCompleted { initial: false })
                    )
                })
                .collect(),
        );
        // The one the client asked for, and at least one the byte limit started.
        assert!(
            client_rekeys >= 2 && client_rekeys == server_rekeys,
            "{client_rekeys} {server_rekeys}"
        );
        assert_eq!((pair.client_closed(), pair.server_closed()), (None, None));
    }
}

/// A reader that does not read stops the writer at the window: `send_data` takes no more, and
/// `Writable` follows once the reader catches up.
#[test]
fn a_full_window_stops_the_writer_until_the_reader_reads() {
    let config = connection::Config { window_size: 64 * 1024, ..Default::default() };
    let mut pair = pair_with(config, None);
    let (client_id, server_id) = open_session(&mut pair);
    let data = pattern(100 * 1024);
    let taken = pair.server.connection_mut().unwrap().send_data(server_id, &data).unwrap();
    assert_eq!(taken, 64 * 1024);
    pair.drive();
    assert_eq!(
        pair.server.connection_mut().unwrap().send_data(server_id, &data[taken..]).unwrap(),
        0
    );
    pair.take_server_events();
    assert_eq!(read_client(&mut pair, client_id, Stream::Data).len(), taken);
    pair.drive();
    let writable = super::util::server_connection_events(&pair)
        .iter()
        .any(|e| **e == ConnectionEvent::Writable { id: server_id });
    assert!(writable);
    assert!(
        pair.server.connection_mut().unwrap().send_data(server_id, &data[taken..]).unwrap() > 0
    );
}

/// A blocked socket (nobody calls `poll_transmit`) stops `send_data` at the connection's output
/// bound instead of buffering without limit; once the socket drains, `Writable` follows.
#[test]
fn a_blocked_socket_reaches_send_data_as_a_short_write() {
    let mut pair = authenticated_pair();
    let (_, server_id) = open_session(&mut pair);
    let limit = pair.server.config().connection().max_queued_output;
    let chunk = pattern(64 * 1024);
    let mut taken = 0;
    for _ in 0..100 {
        let n = pair.server.connection_mut().unwrap().send_data(server_id, &chunk).unwrap();
        taken += n;
        if n < chunk.len() {
            break;
        }
    }
    assert!(taken <= limit, "{taken} > {limit}");
    pair.take_server_events();
    let mut wire = Vec::new();
    pair.server.poll_transmit(pair.time, &mut wire);
    assert!(wire.len() > taken, "everything queued went out");
    let max_send_queue = pair.server.config().transport().limits.max_send_queue;
    assert!(pair.server.transport().send_queue_len() <= max_send_queue);
    let writable = std::iter::from_fn(|| pair.server.poll_event())
        .any(|e| matches!(e, ServerEvent::Connection(ConnectionEvent::Writable { id }) if id == server_id));
    assert!(writable);
}

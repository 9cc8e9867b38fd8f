//! Channels end to end: opening, data and flow control, EOF and CLOSE, limits.

use super::super::msgs::*;
use super::super::{ChannelId, Config, Event, Side, Stream, MAX_CHANNEL_PACKET};
use super::{assert_open_failed, direct_tcpip, forwarded_tcpip, message_type, Pair};
use crate::error::{Error, LocalMisuse, PeerMisbehaved};
use crate::wire::{DisconnectReason, MessageType, Reader, Writer};

pub(super) fn encode(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut Writer::new(&mut buf));
    buf
}

pub(super) fn data_to(id: ChannelId, data: &[u8]) -> Vec<u8> {
    encode(|w| ChannelData { recipient: id.as_u32(), data }.encode(w))
}

fn ext_data_to(id: ChannelId, code: u32, data: &[u8]) -> Vec<u8> {
    encode(|w| ChannelExtendedData { recipient: id.as_u32(), code, data }.encode(w))
}

fn adjust_to(id: ChannelId, bytes_to_add: u32) -> Vec<u8> {
    encode(|w| ChannelWindowAdjust { recipient: id.as_u32(), bytes_to_add }.encode(w))
}

fn peer_error(e: PeerMisbehaved) -> Result<(), Error> {
    Err(Error::PeerMisbehaved(e))
}

fn local_error<T>(e: LocalMisuse) -> Result<T, Error> {
    Err(Error::LocalMisuse(e))
}

/// The data field of each `SSH_MSG_CHANNEL_DATA` among `payloads`.
fn data_fields(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .filter(|p| message_type(p) == MessageType::CHANNEL_DATA)
        .map(|p| ChannelData::decode(&mut Reader::new(&p[1..])).unwrap().data.to_vec())
        .collect()
}

/// A session opens once the server accepts it; both sides count it and know the windows.
#[test]
fn opens_a_session_when_the_server_accepts() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    assert_eq!((pair.client.channel_count(), pair.server.channel_count()), (1, 1));
    let window = Config::default().window_size;
    assert_eq!(pair.client.send_window(c), Some(window));
    assert_eq!(pair.server.send_window(s), Some(window));
}

/// A refused open reaches the opener with its reason and description, and frees both ends.
#[test]
fn reports_a_refused_open_and_frees_the_channel() {
    let mut pair = Pair::new();
    let c = pair.client.open_channel(direct_tcpip()).unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::ChannelOpenRequested { id: s, .. }] = events[..] else { panic!("{events:?}") };
    pair.server.reject_channel(s, OpenFailureReason::CONNECT_FAILED, "refused").unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [Event::ChannelOpenFailed {
            id: c,
            reason: OpenFailureReason::CONNECT_FAILED,
            description: "refused".into()
        }]
    );
    assert_eq!((pair.client.channel_count(), pair.server.channel_count()), (0, 0));
    assert_eq!(pair.client.send_data(c, b"x"), local_error(LocalMisuse::UnknownId));
    assert_eq!(pair.server.accept_channel(s), local_error(LocalMisuse::UnknownId));
}

/// Data and standard error cross in both directions intact, each announced once.
#[test]
fn moves_data_both_ways() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    assert_eq!(pair.client.send_data(c, b"ping"), Ok(4));
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Server),
        [Event::DataReceived { id: s, stream: Stream::Data }]
    );
    assert_eq!(pair.read_all(Side::Server, s, Stream::Data), b"ping");
    assert_eq!(pair.server.send_data(s, b"pong"), Ok(4));
    assert_eq!(pair.server.send_extended_data(s, EXTENDED_DATA_STDERR, b"oops"), Ok(4));
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [
            Event::DataReceived { id: c, stream: Stream::Data },
            Event::DataReceived { id: c, stream: Stream::Stderr }
        ]
    );
    assert_eq!(pair.read_all(Side::Client, c, Stream::Data), b"pong");
    assert_eq!(pair.read_all(Side::Client, c, Stream::Stderr), b"oops");
}

/// With 1-byte windows and packets each way, every byte travels alone, the sender is told
/// each time it may send again, and everything arrives in order.
#[test]
fn moves_data_through_one_byte_windows() {
    let config = Config { window_size: 1, max_packet_size: 1, ..Config::default() };
    let mut pair = Pair::with_config(config);
    let (c, s) = pair.open_session();
    let message: Vec<u8> = (0..100u8).collect();
    let (mut sent, mut writable, mut received) = (0, 0, Vec::new());
    for _ in 0..1000 {
        if sent == message.len() {
            break;
        }
        sent += pair.client.send_data(c, &message[sent..]).unwrap();
        pair.collect();
        for field in data_fields(pair.to_server.make_contiguous()) {
            assert_eq!(field.len(), 1);
        }
        pair.drive();
        received.extend(pair.read_all(Side::Server, s, Stream::Data));
        pair.drive();
        writable += pair
            .take_events(Side::Client)
            .iter()
            .filter(|e| **e == Event::Writable { id: c })
            .count();
    }
    assert_eq!(received, message);
    assert_eq!(writable, 99, "one per short send: the last send took all it was given");
    // And back the other way, through the same windows.
    let mut sent = 0;
    let mut echoed = Vec::new();
    for _ in 0..1000 {
        if echoed.len() == message.len() {
            break;
        }
        sent += pair.server.send_data(s, &message[sent..]).unwrap();
        pair.drive();
        echoed.extend(pair.read_all(Side::Client, c, Stream::Data));
        pair.drive();
    }
    assert_eq!(echoed, message);
}

/// Windows of 2^32-1 bytes fill and refill without overflowing either side's accounting.
#[test]
fn handles_windows_of_two_to_the_32_minus_one() {
    let config = Config {
        window_size: u32::MAX,
        max_packet_size: MAX_CHANNEL_PACKET,
        max_queued_output: 4 << 20,
        ..Config::default()
    };
    let mut pair = Pair::with_config(config);
    let (c, s) = pair.open_session();
    assert_eq!(pair.client.send_window(c), Some(u32::MAX));
    let data = vec![0x5a; 3 << 20];
    assert_eq!(pair.client.send_data(c, &data), Ok(data.len()));
    assert_eq!(pair.client.send_window(c), Some(u32::MAX - (3 << 20)));
    pair.drive();
    assert_eq!(pair.read_all(Side::Server, s, Stream::Data), data);
    pair.drive();
    assert_eq!(pair.client.send_window(c), Some(u32::MAX));
    assert_eq!(pair.server.channel(s).unwrap().recv.window, u32::MAX);
}

/// Data is split into packets no larger than the peer's maximum packet size.
#[test]
fn splits_data_at_the_peers_maximum_packet() {
    let server = Config { max_packet_size: 1000, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (c, s) = pair.open_session();
    let data: Vec<u8> = (0..10_500u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(pair.client.send_data(c, &data), Ok(data.len()));
    pair.collect();
    let fields = data_fields(pair.to_server.make_contiguous());
    let sizes: Vec<usize> = fields.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 500]);
    pair.drive();
    assert_eq!(pair.read_all(Side::Server, s, Stream::Data), data);
}

/// However large the peer's maximum packet, we send no more than `MAX_CHANNEL_PACKET` at once.
#[test]
fn caps_packets_at_our_own_limit() {
    let mut pair = Pair::new();
    let c = pair.client.open_channel(ChannelKind::Session).unwrap();
    pair.collect();
    let confirmation = ChannelOpenConfirmation {
        recipient: c.as_u32(),
        sender: 0,
        window: u32::MAX,
        max_packet: u32::MAX,
    };
    pair.client.handle_payload(&encode(|w| confirmation.encode(w))).unwrap();
    let data = vec![1u8; 300 * 1024];
    assert_eq!(pair.client.send_data(c, &data), Ok(data.len()));
    let mut payloads = Vec::new();
    let mut payload = Vec::new();
    while pair.client.poll_payload(&mut payload) {
        payloads.push(std::mem::take(&mut payload));
    }
    let sizes: Vec<usize> = data_fields(&payloads).iter().map(Vec::len).collect();
    let limit = MAX_CHANNEL_PACKET as usize;
    assert_eq!(sizes, [limit, limit, data.len() - 2 * limit]);
}

/// Data beyond the window ends the connection with a protocol error, and nothing is accepted
/// after that.
#[test]
fn disconnects_a_peer_that_overruns_the_window() {
    let server = Config { window_size: 10, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (_, s) = pair.open_session();
    assert_eq!(pair.server.handle_payload(&data_to(s, b"0123456789")), Ok(()));
    let result = pair.server.handle_payload(&data_to(s, b"x"));
    assert_eq!(result, peer_error(PeerMisbehaved::ChannelWindowExceeded));
    let reason = result.unwrap_err().disconnect_reason();
    assert_eq!(reason, Some(DisconnectReason::PROTOCOL_ERROR));
    assert_eq!(pair.server.handle_payload(&data_to(s, b"")), Err(Error::ConnectionClosed));
    assert_eq!(pair.server.send_data(s, b"x"), Err(Error::ConnectionClosed));
}

/// Standard error shares the window with data.
#[test]
fn extended_data_shares_the_window() {
    let server = Config { window_size: 10, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (_, s) = pair.open_session();
    assert_eq!(pair.server.handle_payload(&data_to(s, b"01234")), Ok(()));
    assert_eq!(pair.server.handle_payload(&ext_data_to(s, 1, b"56789")), Ok(()));
    assert_eq!(
        pair.server.handle_payload(&ext_data_to(s, 1, b"!")),
        peer_error(PeerMisbehaved::ChannelWindowExceeded)
    );
}

/// Extended data of a type we do not know is charged to the window and dropped.
#[test]
fn drops_extended_data_of_unknown_types() {
    let mut pair = Pair::new();
    let (_, s) = pair.open_session();
    pair.server.handle_payload(&ext_data_to(s, 7, b"mystery")).unwrap();
    assert_eq!(pair.server.buffered(s, Stream::Data) + pair.server.buffered(s, Stream::Stderr), 0);
    let recv = &pair.server.channel(s).unwrap().recv;
    assert_eq!((recv.window_max - recv.window, recv.consumed), (7, 7));
    assert!(pair.take_events(Side::Server).is_empty());
}

/// A window adjust that would pass 2^32-1 ends the connection; one that reaches it exactly
/// does not.
#[test]
fn disconnects_a_peer_whose_window_adjust_overflows() {
    let mut pair = Pair::new();
    let (c, _) = pair.open_session();
    let window = pair.client.send_window(c).unwrap();
    assert_eq!(pair.client.handle_payload(&adjust_to(c, u32::MAX - window)), Ok(()));
    assert_eq!(pair.client.send_window(c), Some(u32::MAX));
    let result = pair.client.handle_payload(&adjust_to(c, 1));
    assert_eq!(result, peer_error(PeerMisbehaved::ChannelWindowOverflow));
    assert_eq!(result.unwrap_err().disconnect_reason(), Some(DisconnectReason::PROTOCOL_ERROR));
}

/// Data larger than the maximum packet we advertised ends the connection.
#[test]
fn disconnects_a_peer_that_sends_oversized_packets() {
    let server = Config { max_packet_size: 1000, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (_, s) = pair.open_session();
    assert_eq!(pair.server.handle_payload(&data_to(s, &[0; 1000])), Ok(()));
    assert_eq!(
        pair.server.handle_payload(&data_to(s, &[0; 1001])),
        peer_error(PeerMisbehaved::ChannelPacketTooLarge)
    );
}

/// After the peer's EOF more data is discarded, as OpenSSH does, yet still counts toward
/// reopening the window; extended data after EOF ends the connection; our own data may still
/// flow the other way.
#[test]
fn discards_data_after_eof_and_refuses_extended_data_after_eof() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    pair.client.send_eof(c).unwrap();
    assert_eq!(pair.client.send_data(c, b"more"), local_error(LocalMisuse::WrongChannelState));
    pair.drive();
    assert_eq!(pair.take_events(Side::Server), [Event::EofReceived { id: s }]);
    assert_eq!(pair.server.handle_payload(&data_to(s, b"late")), Ok(()));
    assert_eq!(pair.server.buffered(s, Stream::Data), 0);
    assert_eq!(pair.server.channel(s).unwrap().recv.consumed, 4);
    assert!(pair.take_events(Side::Server).is_empty());
    assert_eq!(pair.server.send_data(s, b"reply"), Ok(5));
    pair.drive();
    assert_eq!(pair.read_all(Side::Client, c, Stream::Data), b"reply");
    assert_eq!(
        pair.server.handle_payload(&ext_data_to(s, 1, b"late")),
        peer_error(PeerMisbehaved::ChannelDataAfterEof)
    );
}

/// Data discarded after EOF never credits more than the window it was sent in, so our window
/// adjusts cannot hand the peer more than the window we advertised.
#[test]
fn credits_discarded_data_no_more_than_the_window() {
    let server = Config { window_size: 10, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (c, s) = pair.open_session();
    pair.client.send_eof(c).unwrap();
    pair.drive();
    pair.server.handle_payload(&data_to(s, &[0; 100])).unwrap();
    let recv = &pair.server.channel(s).unwrap().recv;
    assert_eq!((recv.window, recv.consumed), (0, 10));
    pair.drive();
    let recv = &pair.server.channel(s).unwrap().recv;
    assert_eq!((recv.window, recv.consumed), (10, 0));
}

/// A second EOF changes nothing and raises no second event.
#[test]
fn ignores_a_second_eof() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    pair.client.send_eof(c).unwrap();
    pair.client.send_eof(c).unwrap();
    pair.drive();
    let eof = encode(|w| ChannelEof { recipient: s.as_u32() }.encode(w));
    pair.server.handle_payload(&eof).unwrap();
    assert_eq!(pair.take_events(Side::Server), [Event::EofReceived { id: s }]);
}

/// When both sides close at once, each sends one EOF and one CLOSE, and both free the channel.
#[test]
fn frees_the_channel_when_both_sides_close_at_once() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    pair.client.close(c).unwrap();
    pair.server.close(s).unwrap();
    pair.collect();
    let types = |q: &std::collections::VecDeque<Vec<u8>>| {
        q.iter().map(|p| message_type(p)).collect::<Vec<_>>()
    };
    let eof_close = [MessageType::CHANNEL_EOF, MessageType::CHANNEL_CLOSE];
    assert_eq!(types(&pair.to_server), eof_close);
    assert_eq!(types(&pair.to_client), eof_close);
    pair.drive();
    assert_eq!(pair.take_events(Side::Client), [Event::ChannelClosed { id: c }]);
    assert_eq!(pair.take_events(Side::Server), [Event::ChannelClosed { id: s }]);
    assert_eq!((pair.client.channel_count(), pair.server.channel_count()), (0, 0));
}

/// Closing while the peer's data is in flight: the closer discards what arrives; the peer
/// sees EOF and CLOSE, and the channel is freed once it closes too.
#[test]
fn frees_the_channel_when_closing_with_data_in_flight() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    pair.server.send_data(s, b"unread").unwrap();
    pair.drive();
    pair.client.send_data(c, b"in flight").unwrap();
    pair.collect();
    pair.server.close(s).unwrap();
    pair.drive();
    assert!(pair.take_events(Side::Server).is_empty(), "no data event after close");
    assert_eq!(
        pair.take_events(Side::Client),
        [
            Event::DataReceived { id: c, stream: Stream::Data },
            Event::EofReceived { id: c },
            Event::CloseReceived { id: c }
        ]
    );
    assert_eq!(pair.read_all(Side::Client, c, Stream::Data), b"unread");
    assert_eq!(pair.client.send_data(c, b"x"), local_error(LocalMisuse::WrongChannelState));
    pair.client.close(c).unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Client), [Event::ChannelClosed { id: c }]);
    assert_eq!(pair.take_events(Side::Server), [Event::ChannelClosed { id: s }]);
}

/// A channel closed while still opening sends CLOSE as soon as it is confirmed (no EOF), and
/// its opener hears only that it closed.
#[test]
fn closes_a_channel_that_is_still_opening() {
    let mut pair = Pair::new();
    let c = pair.client.open_channel(ChannelKind::Session).unwrap();
    pair.client.close(c).unwrap();
    pair.client.close(c).unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::ChannelOpenRequested { id: s, .. }] = events[..] else { panic!("{events:?}") };
    pair.server.accept_channel(s).unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Server), [Event::CloseReceived { id: s }]);
    assert!(pair.take_events(Side::Client).is_empty());
    pair.server.close(s).unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Client), [Event::ChannelClosed { id: c }]);
    assert_eq!(pair.take_events(Side::Server), [Event::ChannelClosed { id: s }]);

    // Refused instead: still only "closed".
    let c = pair.client.open_channel(ChannelKind::Session).unwrap();
    pair.client.close(c).unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::ChannelOpenRequested { id: s, .. }] = events[..] else { panic!("{events:?}") };
    pair.server.reject_channel(s, OpenFailureReason::ADMINISTRATIVELY_PROHIBITED, "").unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Client), [Event::ChannelClosed { id: c }]);
    assert_eq!(pair.client.channel_count(), 0);
}

/// The peer's opens beyond the channel cap are refused with RESOURCE_SHORTAGE; our own fail
/// locally; closing a channel makes room again.
#[test]
fn enforces_the_channel_cap() {
    let server = Config { max_channels: 2, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (c1, _) = pair.open_session();
    pair.open(Side::Client, direct_tcpip());
    let c3 = pair.client.open_channel(ChannelKind::Session).unwrap();
    pair.drive();
    assert!(pair.take_events(Side::Server).is_empty());
    assert_open_failed(&pair.take_events(Side::Client), c3, OpenFailureReason::RESOURCE_SHORTAGE);
    pair.client.close(c1).unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::EofReceived { .. }, Event::CloseReceived { id: s1 }] = events[..] else {
        panic!("{events:?}")
    };
    pair.server.close(s1).unwrap();
    pair.drive();
    pair.open_session();

    let client = Config { max_channels: 1, ..Config::default() };
    let mut pair = Pair::with_configs(client, Config::default());
    pair.client.open_channel(ChannelKind::Session).unwrap();
    assert_eq!(
        pair.client.open_channel(ChannelKind::Session),
        local_error(LocalMisuse::TooManyChannels)
    );
}

/// A consumer that does not read keeps the sender blocked with exactly one window buffered;
/// reading a little does not reopen the window, reading a packet's worth does.
#[test]
fn slow_consumer_blocks_the_sender_with_bounded_buffering() {
    let server = Config { window_size: 64 * 1024, max_packet_size: 16 * 1024, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (c, s) = pair.open_session();
    let data = vec![7u8; 1 << 20];
    let mut sent = 0;
    for _ in 0..10 {
        sent += pair.client.send_data(c, &data[sent..]).unwrap();
        pair.drive();
        assert!(pair.server.buffered(s, Stream::Data) <= 64 * 1024);
    }
    assert_eq!(sent, 64 * 1024);
    assert_eq!(pair.server.buffered(s, Stream::Data), 64 * 1024);
    assert_eq!(pair.client.send_window(c), Some(0));
    assert_eq!(pair.client.send_data(c, &data[sent..]), Ok(0));

    assert_eq!(pair.server.consume(s, Stream::Data, 1024), Ok(1024));
    pair.drive();
    assert_eq!(pair.client.send_window(c), Some(0), "a small read reopens nothing");
    assert!(!pair.take_events(Side::Client).contains(&Event::Writable { id: c }));

    assert_eq!(pair.server.consume(s, Stream::Data, 15 * 1024), Ok(15 * 1024));
    pair.drive();
    assert_eq!(pair.client.send_window(c), Some(16 * 1024));
    assert!(pair.take_events(Side::Client).contains(&Event::Writable { id: c }));
    for _ in 0..10 {
        sent += pair.client.send_data(c, &data[sent..]).unwrap();
        pair.drive();
        assert!(pair.server.buffered(s, Stream::Data) <= 64 * 1024);
    }
    assert_eq!(sent, 80 * 1024);
}

/// An interactive trickle does not cost a window adjust per packet.
#[test]
fn does_not_adjust_the_window_per_keystroke() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    for key in b"ls -l\n" {
        pair.client.send_data(c, &[*key]).unwrap();
        pair.drive();
        pair.read_all(Side::Server, s, Stream::Data);
        pair.collect();
        assert!(pair.to_client.is_empty(), "no adjust for one byte");
    }
}

/// `DataReceived` is edge-triggered: one per stream until its buffer is read empty.
#[test]
fn data_received_is_edge_triggered() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    let event = Event::DataReceived { id: s, stream: Stream::Data };
    pair.client.send_data(c, b"a").unwrap();
    pair.drive();
    pair.client.send_data(c, b"b").unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Server), std::slice::from_ref(&event));
    assert_eq!(pair.server.peek(s, Stream::Data), Ok(&b"ab"[..]));
    assert_eq!(pair.server.consume(s, Stream::Data, 1), Ok(1));
    pair.client.send_data(c, b"c").unwrap();
    pair.drive();
    assert!(pair.take_events(Side::Server).is_empty(), "buffer was not empty");
    assert_eq!(pair.read_all(Side::Server, s, Stream::Data), b"bc");
    pair.client.send_data(c, b"d").unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Server), [event]);
}

/// The output queue bounds what `send_data` takes; `Writable` follows once it drains.
#[test]
fn output_queue_bounds_send_data() {
    let client = Config { max_queued_output: 10_000, ..Config::default() };
    let mut pair = Pair::with_configs(client, Config::default());
    let (c, s) = pair.open_session();
    let data = vec![3u8; 50_000];
    assert_eq!(pair.client.send_data(c, &data), Ok(10_000));
    assert_eq!(pair.client.send_data(c, &data), Ok(0));
    assert!(pair.client.queued_output() <= 10_000 + 100);
    pair.drive();
    assert!(pair.take_events(Side::Client).contains(&Event::Writable { id: c }));
    assert_eq!(pair.client.send_data(c, &data[10_000..]), Ok(10_000));
    pair.drive();
    assert_eq!(pair.read_all(Side::Server, s, Stream::Data).len(), 20_000);
}

/// A stale id never reaches the channel that reuses its slot, and ids stay below 2^31 as
/// OpenSSH requires.
#[test]
fn stale_channel_ids_do_not_reach_reused_slots() {
    let mut pair = Pair::new();
    let (c1, s1) = pair.open_session();
    pair.client.close(c1).unwrap();
    pair.server.close(s1).unwrap();
    pair.drive();
    let (c2, _) = pair.open_session();
    assert_ne!(c1, c2);
    assert_eq!(c1.slot(), c2.slot());
    assert_eq!(pair.client.send_data(c1, b"x"), local_error(LocalMisuse::UnknownId));
    assert_eq!(pair.client.send_data(c2, b"x"), Ok(1));
    for _ in 0..0x9000 {
        let id = pair.client.open_channel(ChannelKind::Session).unwrap();
        assert!(id.as_u32() < 1 << 31);
        pair.client.close(id).unwrap();
        let failure = ChannelOpenFailure {
            recipient: id.as_u32(),
            reason: OpenFailureReason::CONNECT_FAILED,
            description: String::new(),
        };
        pair.client.handle_payload(&encode(|w| failure.encode(w))).unwrap();
        pair.collect();
        pair.to_server.clear();
        pair.client_events.clear();
    }
}

/// A server session ends as OpenSSH's does (output, exit-status, EOF, CLOSE) and the client
/// sees them in that order.
#[test]
fn server_session_ends_in_openssh_order() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    pair.server.send_data(s, b"output").unwrap();
    pair.server.send_request(s, &ChannelRequest::ExitStatus { code: 3 }, false).unwrap();
    pair.server.send_eof(s).unwrap();
    pair.server.close(s).unwrap();
    pair.collect();
    let types: Vec<_> = pair.to_client.iter().map(|p| message_type(p)).collect();
    assert_eq!(
        types,
        [
            MessageType::CHANNEL_DATA,
            MessageType::CHANNEL_REQUEST,
            MessageType::CHANNEL_EOF,
            MessageType::CHANNEL_CLOSE
        ]
    );
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [
            Event::DataReceived { id: c, stream: Stream::Data },
            Event::RequestReceived {
                id: c,
                request: ChannelRequest::ExitStatus { code: 3 },
                reply: None
            },
            Event::EofReceived { id: c },
            Event::CloseReceived { id: c },
        ]
    );
    assert_eq!(pair.read_all(Side::Client, c, Stream::Data), b"output");
    pair.client.close(c).unwrap();
    pair.drive();
    assert_eq!(pair.take_events(Side::Server), [Event::ChannelClosed { id: s }]);
}

/// The API refuses what this side may not send and what the channel's state does not allow.
#[test]
fn refuses_local_misuse() {
    let mut pair = Pair::new();
    let wrong_side = Some(Error::LocalMisuse(LocalMisuse::WrongSide));
    assert_eq!(pair.server.open_channel(ChannelKind::Session).err(), wrong_side);
    assert_eq!(pair.client.open_channel(forwarded_tcpip()).err(), wrong_side);
    let c = pair.client.open_channel(ChannelKind::Session).unwrap();
    let wrong_state = Some(Error::LocalMisuse(LocalMisuse::WrongChannelState));
    assert_eq!(pair.client.send_data(c, b"early").err(), wrong_state);
    assert_eq!(pair.client.send_eof(c).err(), wrong_state);
    assert_eq!(pair.client.send_request(c, &ChannelRequest::Shell, true).err(), wrong_state);
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::ChannelOpenRequested { id: s, .. }] = events[..] else { panic!("{events:?}") };
    assert_eq!(pair.server.close(s).err(), wrong_state);
    assert_eq!(pair.server.send_data(s, b"early").err(), wrong_state);
    pair.server.accept_channel(s).unwrap();
    assert_eq!(pair.server.accept_channel(s).err(), wrong_state);
    let reject = pair.server.reject_channel(s, OpenFailureReason::CONNECT_FAILED, "");
    assert_eq!(reject.err(), wrong_state);
    assert_eq!(pair.client.send_data(c, b"").err(), wrong_state, "not confirmed yet");
    pair.drive();
    assert_eq!(pair.client.send_data(c, b""), Ok(0));
}

/// Channel types this side does not accept, and unknown types, are refused without asking the
/// application: unknown with UNKNOWN_CHANNEL_TYPE, wrong-direction as OpenSSH's client does.
#[test]
fn refuses_unknown_and_wrong_direction_channel_types() {
    let mut pair = Pair::new();
    let tun = encode(|w| {
        w.write_u8(90).write_string(b"tun@openssh.com").write_u32(5).write_u32(64).write_u32(64);
        w.write_u32(1).write_u32(0);
    });
    pair.server.handle_payload(&tun).unwrap();
    let session_to_client =
        ChannelOpen { sender: 6, window: 64, max_packet: 64, kind: Some(ChannelKind::Session) };
    pair.client.handle_payload(&encode(|w| session_to_client.encode(w))).unwrap();
    pair.collect();
    let failure = |p: &Vec<u8>| ChannelOpenFailure::decode(&mut Reader::new(&p[1..])).unwrap();
    let from_server: Vec<_> = pair.to_client.iter().map(failure).collect();
    let from_client: Vec<_> = pair.to_server.iter().map(failure).collect();
    assert_eq!(from_server.len(), 1);
    assert_eq!(
        (from_server[0].recipient, from_server[0].reason),
        (5, OpenFailureReason::UNKNOWN_CHANNEL_TYPE)
    );
    assert_eq!(from_client.len(), 1);
    assert_eq!(
        (from_client[0].recipient, from_client[0].reason),
        (6, OpenFailureReason::ADMINISTRATIVELY_PROHIBITED)
    );
    assert!(pair.client_events.is_empty() && pair.server_events.is_empty());
    assert_eq!((pair.client.channel_count(), pair.server.channel_count()), (0, 0));
}

/// Every channel kind opens from the side that may open it.
#[test]
fn opens_every_channel_kind() {
    let kinds = [
        ChannelKind::Session,
        direct_tcpip(),
        ChannelKind::DirectStreamlocal { socket_path: b"/run/a.sock".to_vec() },
        forwarded_tcpip(),
        ChannelKind::ForwardedStreamlocal { socket_path: b"/run/b.sock".to_vec() },
        ChannelKind::AuthAgent,
        ChannelKind::X11 { originator_address: "127.0.0.1".into(), originator_port: 6001 },
    ];
    let mut pair = Pair::new();
    for kind in kinds {
        let opener = kind.opener();
        let (id, peer_id) = pair.open(opener, kind);
        assert_eq!(pair.conn(opener).send_data(id, b"hi"), Ok(2));
        pair.drive();
        assert_eq!(pair.read_all(opener.peer(), peer_id, Stream::Data), b"hi");
    }
    assert_eq!(pair.client.channel_count(), 7);
}

/// Configuration values out of range are refused.
#[test]
fn rejects_out_of_range_configuration() {
    let bad = [
        Config { window_size: 0, ..Config::default() },
        Config { max_packet_size: 0, ..Config::default() },
        Config { max_packet_size: MAX_CHANNEL_PACKET + 1, ..Config::default() },
        Config { max_channels: 0, ..Config::default() },
        Config { max_channels: (1 << 16) + 1, ..Config::default() },
        Config { max_pending_requests: 0, ..Config::default() },
        Config { max_queued_output: 0, ..Config::default() },
    ];
    for config in bad {
        let result = super::super::Connection::new(Side::Server, config.clone());
        assert_eq!(
            result.err(),
            Some(Error::LocalMisuse(LocalMisuse::InvalidConfig)),
            "{config:?}"
        );
    }
}

/// Prints how fast the connection layer alone moves channel data: a client and a server back to
/// back, default configuration, 1 GiB one way, the receiver reading as data arrives.
#[test]
#[ignore = "a benchmark; run in release mode with --ignored --nocapture"]
fn measures_channel_throughput() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    let total: usize = 1 << 30;
    let chunk = vec![0x42u8; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut payload = Vec::with_capacity(MAX_CHANNEL_PACKET as usize + 64);
    let (mut sent, mut received, mut packets) = (0, 0, 0u64);
    let start = std::time::Instant::now();
    while received < total {
        if sent < total {
            let n = chunk.len().min(total - sent);
            sent += pair.client.send_data(c, &chunk[..n]).unwrap();
        }
        while pair.client.poll_payload(&mut payload) {
            pair.server.handle_payload(&payload).unwrap();
            payload.clear();
            packets += 1;
        }
        loop {
            let n = pair.server.recv(s, Stream::Data, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            received += n;
        }
        while pair.server.poll_payload(&mut payload) {
            pair.client.handle_payload(&payload).unwrap();
            payload.clear();
        }
        while pair.client.poll_event().is_some() {}
        while pair.server.poll_event().is_some() {}
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "connection layer: {} MiB in {seconds:.3} s = {:.0} MiB/s over {packets} data packets",
        total >> 20,
        (total >> 20) as f64 / seconds
    );
    assert_eq!(received, total);
}

/// `send_stream_with` hands each packet to the caller as the header and the piece of data of
/// the message `send_data` would have queued, split at the peer's maximum packet.
#[test]
fn data_handed_over_in_parts_is_the_message_send_data_queues() {
    let server = Config { max_packet_size: 1000, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (c, s) = pair.open_session();
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let mut payloads = Vec::new();
    let sent = pair.client.send_stream_with(c, None, &data, usize::MAX, |head, piece| {
        payloads.push([head, piece].concat());
        Ok(())
    });
    assert_eq!(sent, Ok(data.len()));
    assert_eq!(pair.client.queued_output(), 0);
    let want: Vec<Vec<u8>> = data.chunks(1000).map(|piece| data_to(s, piece)).collect();
    assert_eq!(payloads, want);
    let mut stderr = Vec::new();
    let sent = pair.client.send_stream_with(c, Some(EXTENDED_DATA_STDERR), b"oops", 10, |h, p| {
        stderr.push([h, p].concat());
        Ok(())
    });
    assert_eq!(sent, Ok(4));
    assert_eq!(stderr, [ext_data_to(s, EXTENDED_DATA_STDERR, b"oops")]);
}

/// `send_stream_with` takes no more than the room it is given; `Writable` follows once the
/// driver reports its output taken.
#[test]
fn data_handed_over_in_parts_stops_at_the_room_given() {
    let mut pair = Pair::new();
    let (c, _) = pair.open_session();
    let data = vec![5u8; 5000];
    let mut taken = 0;
    let sent = pair.client.send_stream_with(c, None, &data, 3000, |_, piece| {
        taken += piece.len();
        Ok(())
    });
    assert_eq!(sent, Ok(3000));
    assert_eq!(taken, 3000);
    assert!(pair.take_events(Side::Client).is_empty());
    pair.client.output_taken();
    assert_eq!(pair.take_events(Side::Client), [Event::Writable { id: c }]);
}

/// While payloads wait in the output queue, `send_stream_with` queues behind them rather than
/// overtaking them.
#[test]
fn data_handed_over_in_parts_waits_behind_queued_payloads() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    assert_eq!(pair.client.send_data(c, b"first"), Ok(5));
    let mut called = false;
    let sent = pair.client.send_stream_with(c, None, b"second", usize::MAX, |_, _| {
        called = true;
        Ok(())
    });
    assert_eq!(sent, Ok(6));
    assert!(!called);
    pair.drive();
    assert_eq!(pair.read_all(Side::Server, s, Stream::Data), b"firstsecond");
}

/// A bulk reader hands the window back a megabyte at a time (a quarter of the default 4 MiB
/// window), not a packet at a time: one adjust, and one wakeup of the sender, per megabyte.
#[test]
fn a_bulk_reader_adjusts_the_window_once_per_megabyte() {
    let mut pair = Pair::with_configs(Config::default(), Config::default());
    let (c, s) = pair.open_session();
    let window = Config::default().window_size;
    let data = vec![3u8; 1 << 20];
    let mut sent = 0;
    for _ in 0..100 {
        if sent == data.len() {
            break;
        }
        sent += pair.client.send_data(c, &data[sent..]).unwrap();
        pair.drive();
    }
    assert_eq!(sent, data.len());
    assert_eq!(pair.server.consume(s, Stream::Data, (1 << 20) - 1), Ok((1 << 20) - 1));
    pair.drive();
    assert_eq!(pair.client.send_window(c), Some(window - (1 << 20)), "no adjust yet");
    assert_eq!(pair.server.consume(s, Stream::Data, 1), Ok(1));
    pair.drive();
    assert_eq!(pair.client.send_window(c), Some(window), "one adjust for the megabyte");
}

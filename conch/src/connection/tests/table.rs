//! The message × state table: every message number 80–127 (and some outside), well formed,
//! sent to a channel in each state, from each side; each is accepted or ends the connection
//! with the right error.

use super::super::msgs::*;
use super::super::{ChannelId, Event, Side, Stream};
use super::flow::{data_to, encode};
use super::{forwarded_tcpip, Pair};
use crate::error::{Error, PeerMisbehaved};
use crate::wire::{DisconnectReason, InvalidMessage, MessageType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChannelState {
    /// No channel with that number.
    Unknown,
    /// We opened it; no answer yet.
    Opening,
    /// The peer opened it; the application has not decided.
    AwaitingAccept,
    Open,
    EofReceived,
    EofSent,
    CloseSent,
    CloseReceived,
}

const STATES: [ChannelState; 8] = [
    ChannelState::Unknown,
    ChannelState::Opening,
    ChannelState::AwaitingAccept,
    ChannelState::Open,
    ChannelState::EofReceived,
    ChannelState::EofSent,
    ChannelState::CloseSent,
    ChannelState::CloseReceived,
];

/// A pair where `holder`'s channel `id` is in `state`.
fn setup(holder: Side, state: ChannelState) -> (Pair, ChannelId) {
    let mut pair = Pair::new();
    let peer = holder.peer();
    let holder_kind = match holder {
        Side::Client => ChannelKind::Session,
        Side::Server => forwarded_tcpip(),
    };
    let id = match state {
        ChannelState::Unknown => ChannelId(0x0005),
        ChannelState::Opening => {
            let id = pair.conn(holder).open_channel(holder_kind).unwrap();
            pair.collect();
            pair.to_server.clear();
            pair.to_client.clear();
            id
        }
        ChannelState::AwaitingAccept => {
            let peer_kind = match peer {
                Side::Client => ChannelKind::Session,
                Side::Server => forwarded_tcpip(),
            };
            pair.conn(peer).open_channel(peer_kind).unwrap();
            pair.drive();
            let events = pair.take_events(holder);
            let [Event::ChannelOpenRequested { id, .. }] = events[..] else { panic!("{events:?}") };
            id
        }
        _ => {
            let (id, peer_id) = pair.open(holder, holder_kind);
            match state {
                ChannelState::EofReceived => pair.conn(peer).send_eof(peer_id).unwrap(),
                ChannelState::EofSent => pair.conn(holder).send_eof(id).unwrap(),
                ChannelState::CloseSent => pair.conn(holder).close(id).unwrap(),
                ChannelState::CloseReceived => pair.conn(peer).close(peer_id).unwrap(),
                _ => {}
            }
            pair.drive();
            id
        }
    };
    pair.take_events(holder);
    (pair, id)
}

/// A well-formed payload of message number `n` from `holder`'s peer, naming channel `id`.
fn payload(n: u8, holder: Side, id: ChannelId) -> Vec<u8> {
    let recipient = id.as_u32();
    match MessageType(n) {
        MessageType::GLOBAL_REQUEST => {
            encode(|w| GlobalRequestHeader::encode(w, &GlobalRequest::Keepalive, true))
        }
        MessageType::CHANNEL_OPEN => {
            let kind = match holder {
                Side::Server => ChannelKind::Session,
                Side::Client => forwarded_tcpip(),
            };
            let open = ChannelOpen { sender: 77, window: 1000, max_packet: 1000, kind: Some(kind) };
            encode(|w| open.encode(w))
        }
        MessageType::CHANNEL_OPEN_CONFIRMATION => {
            let confirmation =
                ChannelOpenConfirmation { recipient, sender: 77, window: 1000, max_packet: 1000 };
            encode(|w| confirmation.encode(w))
        }
        MessageType::CHANNEL_OPEN_FAILURE => {
            let failure = ChannelOpenFailure {
                recipient,
                reason: OpenFailureReason::CONNECT_FAILED,
                description: "no".into(),
            };
            encode(|w| failure.encode(w))
        }
        MessageType::CHANNEL_WINDOW_ADJUST => {
            encode(|w| ChannelWindowAdjust { recipient, bytes_to_add: 1 }.encode(w))
        }
        MessageType::CHANNEL_DATA => data_to(id, b"x"),
        MessageType::CHANNEL_EXTENDED_DATA => {
            encode(|w| ChannelExtendedData { recipient, code: 1, data: b"x" }.encode(w))
        }
        MessageType::CHANNEL_EOF => encode(|w| ChannelEof { recipient }.encode(w)),
        MessageType::CHANNEL_CLOSE => encode(|w| ChannelClose { recipient }.encode(w)),
        MessageType::CHANNEL_REQUEST => encode(|w| {
            ChannelRequestHeader::encode(w, recipient, &ChannelRequest::Keepalive, true);
        }),
        MessageType::CHANNEL_SUCCESS => encode(|w| ChannelSuccess { recipient }.encode(w)),
        MessageType::CHANNEL_FAILURE => encode(|w| ChannelFailure { recipient }.encode(w)),
        _ => vec![n, 0, 0, 0, 0],
    }
}

/// What handling message `n` in `state` must do.
fn expected(state: ChannelState, n: u8) -> Result<(), Error> {
    use ChannelState as S;
    let t = MessageType(n);
    let unexpected = Err(PeerMisbehaved::UnexpectedMessage(t).into());
    let unknown = Err(PeerMisbehaved::UnknownChannel(t).into());
    match n {
        // Requests, opens and unsolicited replies do not depend on the channel.
        80..=82 | 90 | 99 | 100 => Ok(()),
        91 | 92 => match state {
            S::Unknown => unknown,
            S::Opening => Ok(()),
            _ => unexpected,
        },
        // OpenSSH ignores window adjusts for channels it does not have.
        93 => match state {
            S::Unknown => Ok(()),
            S::Opening | S::AwaitingAccept => unexpected,
            _ => Ok(()),
        },
        95 if state == S::EofReceived => Err(PeerMisbehaved::ChannelDataAfterEof.into()),
        94..=98 => match state {
            S::Unknown => unknown,
            S::Opening | S::AwaitingAccept => unexpected,
            _ => Ok(()),
        },
        _ => unexpected,
    }
}

fn numbers() -> impl Iterator<Item = u8> {
    [0, 1, 2, 3, 4, 20, 21, 30, 31, 50, 52, 60, 79].into_iter().chain(80..=128).chain([192, 255])
}

/// Every message number in every channel state, on both sides, is accepted or ends the
/// connection with the error the table says, and every error is a protocol error on the wire.
#[test]
fn every_message_in_every_channel_state_from_each_side() {
    let mut cases = 0;
    for holder in [Side::Client, Side::Server] {
        for state in STATES {
            for n in numbers() {
                let (mut pair, id) = setup(holder, state);
                let result = pair.conn(holder).handle_payload(&payload(n, holder, id));
                assert_eq!(result, expected(state, n), "{holder:?} {state:?} message {n}");
                match result {
                    Ok(()) if matches!(n, 81 | 82 | 99 | 100) => {
                        let event = pair.conn(holder).poll_event();
                        assert_eq!(event, None, "an unsolicited reply raises nothing");
                    }
                    Ok(()) => {}
                    Err(e) => {
                        assert_eq!(e.disconnect_reason(), Some(DisconnectReason::PROTOCOL_ERROR));
                        let again = pair.conn(holder).handle_payload(&[80]);
                        assert_eq!(again, Err(Error::ConnectionClosed));
                    }
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 2 * 8 * 64);
}

/// Data accepted in each state is buffered only where the channel can still deliver it.
#[test]
fn data_is_buffered_only_while_the_peer_may_send() {
    for holder in [Side::Client, Side::Server] {
        for state in STATES {
            let (mut pair, id) = setup(holder, state);
            if pair.conn(holder).handle_payload(&data_to(id, b"abc")).is_err() {
                continue;
            }
            let buffered = pair.conn(holder).buffered(id, Stream::Data);
            let delivers = matches!(state, ChannelState::Open | ChannelState::EofSent);
            assert_eq!(buffered, if delivers { 3 } else { 0 }, "{holder:?} {state:?}");
        }
    }
}

/// The connection layer claims exactly the numbers RFC 4254 assigns to it.
#[test]
fn handles_exactly_the_assigned_connection_messages() {
    let claimed: Vec<u8> =
        (0..=255).filter(|&n| super::super::Connection::handles(MessageType(n))).collect();
    let assigned: Vec<u8> = (80..=82).chain(90..=100).collect();
    assert_eq!(claimed, assigned);
}

/// An empty payload is a decoding error, not a panic.
#[test]
fn rejects_an_empty_payload() {
    let mut pair = Pair::new();
    assert_eq!(pair.server.handle_payload(&[]), Err(InvalidMessage::EmptyMessage.into()));
}

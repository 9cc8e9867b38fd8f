//! The message × state matrix: every message number 1–255, sent by a scripted peer in every
//! protocol state of the whole stack, from each side. Only the messages a state allows are
//! taken; numbers no layer defines get `SSH_MSG_UNIMPLEMENTED`; the rest end the connection
//! with the reason the table below gives.

use super::scripted::{
    channel_open_session, client_harness, payload, server_harness, Harness, Outcome, State,
    UnderTest,
};
use crate::connection::Side;
use crate::stack::{ClientStack, ServerStack};
use crate::testing::fixtures::{self, KexInitLists};
use crate::wire::{DisconnectReason, MessageType};

/// A well-formed message numbered `n` (unknown numbers carry four zero bytes), addressed to
/// channel 0 where it names a channel.
pub(super) fn sample(n: u8) -> Vec<u8> {
    let t = MessageType(n);
    payload(|w| {
        w.write_u8(n);
        match t {
            MessageType::DISCONNECT => {
                w.write_u32(DisconnectReason::BY_APPLICATION.0)
                    .write_string(b"bye")
                    .write_string(b"");
            }
            MessageType::IGNORE | MessageType::PING | MessageType::PONG => {
                w.write_string(b"x");
            }
            MessageType::UNIMPLEMENTED => {
                w.write_u32(0);
            }
            MessageType::DEBUG => {
                w.write_bool(false).write_string(b"debug").write_string(b"");
            }
            MessageType::SERVICE_REQUEST | MessageType::SERVICE_ACCEPT => {
                w.write_string(b"ssh-userauth");
            }
            MessageType::EXT_INFO => {
                w.write_u32(1).write_string(b"x@example.com").write_string(b"y");
            }
            MessageType::KEXINIT => {
                let lists = KexInitLists::with_kex("curve25519-sha256");
                w.write_raw(&lists.payload()[1..]);
            }
            MessageType::NEWKEYS | MessageType::USERAUTH_SUCCESS => {}
            MessageType::REQUEST_SUCCESS | MessageType::REQUEST_FAILURE => {}
            MessageType::KEX_INIT => {
                w.write_string(&[9; 32]);
            }
            MessageType::KEX_REPLY => {
                w.write_string(b"not a host key");
            }
            MessageType::USERAUTH_REQUEST => {
                w.write_string(b"alice").write_string(b"ssh-connection").write_string(b"none");
            }
            MessageType::USERAUTH_FAILURE => {
                w.write_string(b"password").write_bool(false);
            }
            MessageType::USERAUTH_BANNER => {
                w.write_string(b"hello").write_string(b"");
            }
            MessageType::USERAUTH_60 => {
                w.write_string(b"ssh-ed25519").write_string(b"blob");
            }
            MessageType::USERAUTH_INFO_RESPONSE => {
                w.write_u32(0);
            }
            MessageType::GLOBAL_REQUEST => {
                w.write_string(b"keepalive@openssh.com").write_bool(true);
            }
            MessageType::CHANNEL_OPEN => {
                w.write_raw(&channel_open_session(5)[1..]);
            }
            MessageType::CHANNEL_OPEN_CONFIRMATION => {
                w.write_u32(0).write_u32(7).write_u32(1000).write_u32(1000);
            }
            MessageType::CHANNEL_OPEN_FAILURE => {
                w.write_u32(0).write_u32(2).write_string(b"no").write_string(b"");
            }
            MessageType::CHANNEL_WINDOW_ADJUST => {
                w.write_u32(0).write_u32(100);
            }
            MessageType::CHANNEL_DATA => {
                w.write_u32(0).write_string(b"x");
            }
            MessageType::CHANNEL_EXTENDED_DATA => {
                w.write_u32(0).write_u32(1).write_string(b"x");
            }
            MessageType::CHANNEL_REQUEST => {
                w.write_u32(0).write_string(b"x@example.com").write_bool(true);
            }
            MessageType::CHANNEL_EOF
            | MessageType::CHANNEL_CLOSE
            | MessageType::CHANNEL_SUCCESS
            | MessageType::CHANNEL_FAILURE => {
                w.write_u32(0);
            }
            _ => {
                w.write_u32(0);
            }
        }
    })
}

const PROTOCOL_ERROR: Outcome = Outcome::Refused(DisconnectReason::PROTOCOL_ERROR);
const KEX_FAILED: Outcome = Outcome::Refused(DisconnectReason::KEY_EXCHANGE_FAILED);

/// What a stack on `side` must make of message `n` from its peer in `state`.
pub(super) fn expected(side: Side, state: State, n: u8) -> Outcome {
    match state {
        // Before the identification line nothing is a message. A server refuses anything but
        // the line; a client reads the bytes as the text a server may send before it (RFC 4253
        // §4.2), and nothing reaches a layer.
        State::Version => match side {
            Side::Server => PROTOCOL_ERROR,
            Side::Client => Outcome::Accepted,
        },
        _ if n == MessageType::DISCONNECT.0 => Outcome::PeerDisconnected,
        // Strict key exchange (CVE-2023-48795): only the next key exchange message.
        State::Kex => match (side, n) {
            (Side::Server, 30) => Outcome::Accepted,
            (Side::Client, 31) => PROTOCOL_ERROR,
            _ => KEX_FAILED,
        },
        State::NewKeys if n == MessageType::NEWKEYS.0 => Outcome::Accepted,
        State::NewKeys => KEX_FAILED,
        _ => established(side, state, n),
    }
}

/// After the first key exchange: the transport's own rules, then the layers above.
fn established(side: Side, state: State, n: u8) -> Outcome {
    match n {
        // IGNORE, UNIMPLEMENTED, DEBUG, EXT_INFO, a rekey's KEXINIT, PING, PONG.
        2..=4 | 7 | 20 | 192 | 193 => Outcome::Accepted,
        // NEWKEYS or a key exchange message outside a key exchange.
        21 | 30 | 31 => PROTOCOL_ERROR,
        5 | 6 | 50..=53 | 60 | 61 | 80..=82 | 90..=100 => upper_layer(side, state, n),
        // Numbers no layer defines.
        _ => Outcome::Unimplemented,
    }
}

fn upper_layer(side: Side, state: State, n: u8) -> Outcome {
    match (side, state, n) {
        (Side::Server, State::Service, 5) | (Side::Client, State::Service, 6) => Outcome::Accepted,
        // A request, and after success a request ignored (RFC 4252 §5.1).
        (Side::Server, State::Userauth | State::Authenticated | State::ChannelOpen, 50) => {
            Outcome::Accepted
        }
        // The answers to the client's `none`: failure, success, banner.
        (Side::Client, State::Userauth, 51..=53) => Outcome::Accepted,
        (_, State::Authenticated | State::ChannelOpen, 80..=100) => connection(state, n),
        // Everything else, including any connection message before authentication
        // (CVE-2018-10933, CVE-2025-32433), and the other side's user authentication messages.
        _ => PROTOCOL_ERROR,
    }
}

/// Connection messages after authentication: channel messages need the channel.
fn connection(state: State, n: u8) -> Outcome {
    match (state, n) {
        // Global requests and replies nobody waits for; opens (a server's `session` is refused
        // politely); window adjusts and request replies for unknown channels, ignored as
        // OpenSSH does.
        (_, 80..=82 | 90 | 93 | 99 | 100) => Outcome::Accepted,
        (State::ChannelOpen, 94..=98) => Outcome::Accepted,
        // Open answers for a channel that is not opening; data, EOF, CLOSE and requests for a
        // channel that does not exist.
        _ => PROTOCOL_ERROR,
    }
}

/// What the stack under test made of message `n` in `state`.
fn observe<S: UnderTest>(
    mut harness: Harness<S>,
    state: State,
    n: u8,
    reach: fn(&mut Harness<S>, State),
) -> Outcome {
    let message = sample(n);
    match state {
        State::Version => {
            harness.to_stack.extend_from_slice(&fixtures::plain_packet(&message));
            harness.deliver_to_stack();
            let log = &harness.log;
            assert!(
                log.auth_requests == 0 && log.connection_events.is_empty() && !log.authenticated
            );
            harness.outcome(u32::MAX)
        }
        _ => {
            reach(&mut harness, state);
            harness.outcome_of(&message)
        }
    }
}

/// Runs the matrix for one side; returns the mismatches as readable lines.
fn mismatches<S: UnderTest>(
    side: Side,
    make: fn() -> Harness<S>,
    reach: fn(&mut Harness<S>, State),
    observe_newkeys: Option<fn(Harness<S>, u8) -> Outcome>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for state in State::ALL {
        for n in 1..=255u8 {
            let got = match (state, observe_newkeys) {
                (State::NewKeys, Some(f)) => f(make(), n),
                _ => observe(make(), state, n, reach),
            };
            let want = expected(side, state, n);
            if got != want {
                wrong.push(format!(
                    "{state:?} {n} ({}): got {got:?}, want {want:?}",
                    MessageType(n)
                ));
            }
        }
    }
    wrong
}

/// Every message number from a client, in every state of the server stack, meets the table.
#[test]
fn every_message_in_every_state_from_a_client() {
    let wrong = mismatches(Side::Server, server_harness, Harness::<ServerStack<()>>::reach, None);
    assert!(wrong.is_empty(), "{} mismatches:\n{}", wrong.len(), wrong.join("\n"));
}

/// Every message number from a server, in every state of the client stack, meets the table.
#[test]
fn every_message_in_every_state_from_a_server() {
    let wrong = mismatches(
        Side::Client,
        client_harness,
        Harness::<ClientStack>::reach,
        Some(|mut h, n| h.outcome_before_server_newkeys(&sample(n))),
    );
    assert!(wrong.is_empty(), "{} mismatches:\n{}", wrong.len(), wrong.join("\n"));
}

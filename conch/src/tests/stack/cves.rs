//! Regression tests named for the vulnerabilities they pin, each played by a scripted peer on
//! a real transport against the whole stack, in every delivery chunking.

use super::matrix::sample;
use super::scripted::{
    channel_open_session, client_harness, payload, server_harness, Outcome, State,
};
use super::util::CHUNKINGS;
use crate::stack::{ClientStack, ServerStack};
use crate::testing::fixtures;
use crate::userauth::Decision;
use crate::wire::{DisconnectReason, MessageType};

use super::scripted::Harness;

const PROTOCOL_ERROR: Outcome = Outcome::Refused(DisconnectReason::PROTOCOL_ERROR);
const KEX_FAILED: Outcome = Outcome::Refused(DisconnectReason::KEY_EXCHANGE_FAILED);

/// A server harness in `state`, delivering in `chunk`-byte pieces.
fn server_in(state: State, chunk: Option<usize>) -> Harness<ServerStack<()>> {
    let mut h = server_harness();
    h.chunk = chunk;
    h.reach(state);
    h
}

/// A client harness in `state`, delivering in `chunk`-byte pieces.
fn client_in(state: State, chunk: Option<usize>) -> Harness<ClientStack> {
    let mut h = client_harness();
    h.chunk = chunk;
    h.reach(state);
    h
}

/// `SSH_MSG_CHANNEL_REQUEST` `exec` on channel 0, wanting a reply.
fn exec_request() -> Vec<u8> {
    payload(|w| {
        w.write_u8(MessageType::CHANNEL_REQUEST.0)
            .write_u32(0)
            .write_string(b"exec")
            .write_bool(true)
            .write_string(b"id");
    })
}

/// CVE-2018-10933 (libssh): a client that sends `SSH_MSG_USERAUTH_SUCCESS` itself is not logged
/// in; the connection ends with a protocol error, before and during user authentication.
#[test]
fn cve_2018_10933_a_client_sent_userauth_success_is_refused() {
    for chunk in CHUNKINGS {
        for state in [State::Service, State::Userauth] {
            let mut h = server_in(state, chunk);
            assert_eq!(h.outcome_of(&[MessageType::USERAUTH_SUCCESS.0]), PROTOCOL_ERROR);
            assert!(!h.log.authenticated && !h.stack.is_authenticated());
            assert!(h.stack.connection().is_none());
        }
    }
}

/// CVE-2025-32433 (Erlang/OTP SSH): connection messages before authentication, such as a
/// session open and an `exec`, end the connection and never reach the application.
#[test]
fn cve_2025_32433_connection_messages_before_authentication_end_the_connection() {
    for chunk in CHUNKINGS {
        for state in [State::Service, State::Userauth] {
            for message in [channel_open_session(0), exec_request(), sample(80)] {
                let mut h = server_in(state, chunk);
                assert_eq!(h.outcome_of(&message), PROTOCOL_ERROR, "{state:?}");
                assert!(h.log.connection_events.is_empty());
            }
        }
    }
}

/// CVE-2025-32433, pipelined: a channel open sent while a login is being decided waits, and when
/// the login is refused the connection ends without the open reaching the application.
#[test]
fn cve_2025_32433_a_pipelined_open_dies_with_a_refused_login() {
    for chunk in CHUNKINGS {
        let mut h = server_in(State::Userauth, chunk);
        h.log.hold_logins = true;
        h.send(&payload(|w| {
            w.write_u8(MessageType::USERAUTH_REQUEST.0)
                .write_string(b"alice")
                .write_string(b"ssh-connection")
                .write_string(b"password")
                .write_bool(false)
                .write_string(b"guess");
        }));
        h.send(&channel_open_session(0));
        h.drive();
        assert_eq!(h.log.pending.len(), 1);
        let id = h.log.pending[0];
        h.stack.auth_decided(h.now, id, Decision::Reject).unwrap_err();
        h.deliver_to_stack();
        assert_eq!(h.outcome(u32::MAX), PROTOCOL_ERROR);
        assert!(h.log.connection_events.is_empty() && !h.log.authenticated);
    }
}

/// CVE-2023-48795 (Terrapin): under strict key exchange, an `SSH_MSG_IGNORE` slipped in before
/// the peer's key exchange or NEWKEYS ends the connection, from either side.
#[test]
fn cve_2023_48795_messages_injected_into_the_key_exchange_end_the_connection() {
    let ignore = sample(MessageType::IGNORE.0);
    for chunk in CHUNKINGS {
        for state in [State::Kex, State::NewKeys] {
            let mut h = server_in(state, chunk);
            assert_eq!(h.outcome_of(&ignore), KEX_FAILED, "server, {state:?}");
        }
        let mut h = client_in(State::Kex, chunk);
        assert_eq!(h.outcome_of(&ignore), KEX_FAILED, "client, Kex");
        let mut h = client_harness();
        h.chunk = chunk;
        assert_eq!(h.outcome_before_server_newkeys(&ignore), KEX_FAILED, "client, NewKeys");
    }
}

/// CVE-2023-48795, the first packet: a peer whose KEXINIT is not its first packet is refused.
#[test]
fn cve_2023_48795_a_packet_before_kexinit_ends_the_connection() {
    for chunk in CHUNKINGS {
        let mut h = server_harness();
        h.chunk = chunk;
        let mut first = Vec::new();
        h.peer.poll_transmit(&mut first);
        let line_end = first.iter().position(|&b| b == b'\n').unwrap() + 1;
        h.to_stack.extend_from_slice(&first[..line_end]);
        h.to_stack.extend_from_slice(&fixtures::plain_packet(&sample(MessageType::IGNORE.0)));
        h.to_stack.extend_from_slice(&first[line_end..]);
        h.deliver_to_stack();
        assert_eq!(h.outcome(u32::MAX), KEX_FAILED);
    }
}

/// CVE-2018-7750 (Paramiko): a client that skips user authentication gets nothing: asking for
/// `ssh-connection` directly is refused as an unavailable service, and opening a channel
/// without a service is a protocol error.
#[test]
fn cve_2018_7750_skipping_authentication_gets_nothing() {
    for chunk in CHUNKINGS {
        let mut h = server_in(State::Service, chunk);
        let request = payload(|w| {
            w.write_u8(MessageType::SERVICE_REQUEST.0).write_string(b"ssh-connection");
        });
        let refused = Outcome::Refused(DisconnectReason::SERVICE_NOT_AVAILABLE);
        assert_eq!(h.outcome_of(&request), refused);
        let mut h = server_in(State::Service, chunk);
        assert_eq!(h.outcome_of(&channel_open_session(0)), PROTOCOL_ERROR);
        assert!(h.stack.connection().is_none());
    }
}

/// CVE-2018-1000805 (Paramiko): user authentication answers sent the wrong way (a client
/// sending the server's messages, a server sending the client's) are protocol errors, never a
/// login.
#[test]
fn cve_2018_1000805_userauth_messages_the_wrong_way_are_refused() {
    for chunk in CHUNKINGS {
        for n in [51u8, 52, 53, 60] {
            let mut h = server_in(State::Userauth, chunk);
            assert_eq!(h.outcome_of(&sample(n)), PROTOCOL_ERROR, "to the server: {n}");
            assert!(!h.stack.is_authenticated());
        }
        for n in [50u8, 61] {
            let mut h = client_in(State::Userauth, chunk);
            assert_eq!(h.outcome_of(&sample(n)), PROTOCOL_ERROR, "to the client: {n}");
            assert!(!h.stack.is_authenticated());
        }
    }
}

/// CVE-2023-46445 (AsyncSSH rogue extension negotiation): an `SSH_MSG_EXT_INFO` injected before
/// the server's NEWKEYS (say, to downgrade `server-sig-algs`) ends the connection instead of
/// reaching user authentication.
#[test]
fn cve_2023_46445_an_injected_ext_info_ends_the_connection() {
    let rogue = payload(|w| {
        w.write_u8(MessageType::EXT_INFO.0)
            .write_u32(1)
            .write_string(b"server-sig-algs")
            .write_string(b"ssh-rsa");
    });
    for chunk in CHUNKINGS {
        let mut h = client_harness();
        h.chunk = chunk;
        assert_eq!(h.outcome_before_server_newkeys(&rogue), KEX_FAILED);
        assert!(h.stack.userauth().is_none());
        let mut h = client_in(State::Kex, chunk);
        assert_eq!(h.outcome_of(&rogue), KEX_FAILED);
    }
}

/// CVE-2023-46446 (AsyncSSH rogue session): a login injected into the key exchange (an attacker's
/// `USERAUTH_REQUEST` to the server, or a `USERAUTH_SUCCESS` to the client) ends the connection
/// before any user authentication runs.
#[test]
fn cve_2023_46446_a_login_injected_into_the_key_exchange_ends_the_connection() {
    for chunk in CHUNKINGS {
        for state in [State::Kex, State::NewKeys] {
            let mut h = server_in(state, chunk);
            assert_eq!(h.outcome_of(&sample(50)), KEX_FAILED, "{state:?}");
            assert_eq!(h.log.auth_requests, 0);
        }
        let mut h = client_harness();
        h.chunk = chunk;
        let success = [MessageType::USERAUTH_SUCCESS.0];
        assert_eq!(h.outcome_before_server_newkeys(&success), KEX_FAILED);
        assert!(!h.stack.is_authenticated());
    }
}

//! The stack's timers in virtual time: the login grace time and both sides' keepalives.

use std::time::Duration;

use super::util::{client_config, password_pair, server_config};
use crate::connection::Event as ConnectionEvent;
use crate::error::{Error, Initiator, TimeoutKind};
use crate::stack::{ClientEvent, ServerEvent};
use crate::testing::StackPair;
use crate::wire::DisconnectReason;

/// The error the peer of a closed side received: reason and text.
fn received(closed: Option<(Option<&Error>, Initiator)>) -> (DisconnectReason, String) {
    match closed {
        Some((Some(Error::DisconnectReceived { reason, description }), Initiator::Remote)) => {
            (*reason, description.clone())
        }
        other => panic!("expected a received DISCONNECT, got {other:?}"),
    }
}

/// A client that has not logged in when `LoginGraceTime` runs out is disconnected with
/// OpenSSH's words; one second earlier it is still there.
#[test]
fn the_login_grace_time_ends_an_unauthenticated_connection() {
    let mut config = server_config();
    config.login_grace_time = Some(Duration::from_secs(30));
    let mut pair: StackPair<()> = StackPair::new(client_config(), config, "alice");
    pair.drive();
    assert!(pair.server.poll_timeout().is_some());
    pair.advance(Duration::from_secs(29));
    assert_eq!(pair.server_closed(), None);
    pair.advance(Duration::from_secs(1));
    let timeout = Error::Timeout(TimeoutKind::LoginGrace);
    assert_eq!(pair.server_closed(), Some((Some(&timeout), Initiator::Local)));
    let (reason, text) = received(pair.client_closed());
    assert_eq!(reason, DisconnectReason::BY_APPLICATION);
    assert_eq!(text, "Timeout before authentication");
}

/// The login grace time stops at authentication: an idle logged-in connection has no timer.
#[test]
fn the_login_grace_time_stops_at_authentication() {
    let mut pair = password_pair();
    pair.drive();
    assert!(pair.server.is_authenticated());
    assert_eq!(pair.server.poll_timeout(), None);
    pair.advance(Duration::from_secs(1000));
    assert_eq!(pair.server_closed(), None);
}

/// With `ClientAliveInterval`, the server probes a quiet client; the client's stack answers on
/// its own, so the connection lives on, and neither application sees the probes.
#[test]
fn client_alive_probes_are_answered_and_invisible() {
    let mut config = server_config();
    config.client_alive_interval = Some(Duration::from_secs(15));
    let mut pair = password_pair_with(config);
    pair.drive();
    pair.take_server_events();
    pair.take_client_events();
    for _ in 0..10 {
        let before = pair.to_client.position();
        pair.advance(Duration::from_secs(15));
        assert!(pair.to_client.position() > before, "a probe went out");
    }
    assert_eq!(pair.server_closed(), None);
    assert!(pair.server_events().is_empty(), "{:?}", pair.server_events());
    assert!(pair.client_events().is_empty(), "{:?}", pair.client_events());
}

/// A client that stops answering is disconnected after `ClientAliveCountMax` unanswered probes
/// and one more interval, with OpenSSH's words.
#[test]
fn client_alive_gives_up_on_a_silent_client() {
    let mut config = server_config();
    config.client_alive_interval = Some(Duration::from_secs(15));
    config.client_alive_count_max = 3;
    let mut pair = password_pair_with(config);
    pair.drive();
    pair.to_server.drop_rest();
    for _ in 0..3 {
        pair.advance(Duration::from_secs(15));
        assert_eq!(pair.server_closed(), None);
    }
    pair.advance(Duration::from_secs(15));
    let timeout = Error::Timeout(TimeoutKind::Keepalive);
    assert_eq!(pair.server_closed(), Some((Some(&timeout), Initiator::Local)));
    let (_, text) = received(pair.client_closed());
    assert_eq!(text, "Timeout, client not responding");
}

/// A zero `ClientAliveCountMax` never gives up, as in `sshd`.
#[test]
fn a_zero_client_alive_count_never_gives_up() {
    let mut config = server_config();
    config.client_alive_interval = Some(Duration::from_secs(15));
    config.client_alive_count_max = 0;
    let mut pair = password_pair_with(config);
    pair.drive();
    pair.to_server.drop_rest();
    for _ in 0..10 {
        pair.advance(Duration::from_secs(15));
    }
    assert_eq!(pair.server_closed(), None);
}

/// Bytes from the client postpone the next probe: the silence starts again.
#[test]
fn input_postpones_the_next_probe() {
    let mut config = server_config();
    config.client_alive_interval = Some(Duration::from_secs(15));
    let mut pair = password_pair_with(config);
    pair.drive();
    let first = pair.server.poll_timeout().unwrap();
    pair.time += Duration::from_secs(10);
    pair.client.rekey(pair.time).unwrap();
    pair.drive();
    assert_eq!(pair.server.poll_timeout(), Some(first + Duration::from_secs(10)));
}

/// With `ServerAliveInterval`, a client gives up on a silent server after
/// `ServerAliveCountMax` unanswered probes and one more interval.
#[test]
fn server_alive_gives_up_on_a_silent_server() {
    let mut client = client_config();
    client.server_alive_interval = Some(Duration::from_secs(10));
    client.server_alive_count_max = 2;
    let mut pair = StackPair::new(client, server_config(), "alice");
    pair.decider = Some(Box::new(super::util::password_backend));
    pair.answerer = password_pair().answerer.take();
    pair.drive();
    assert!(pair.client.is_authenticated());
    pair.to_client.drop_rest();
    pair.advance(Duration::from_secs(10));
    pair.advance(Duration::from_secs(10));
    assert_eq!(pair.client_closed(), None);
    pair.advance(Duration::from_secs(10));
    let timeout = Error::Timeout(TimeoutKind::Keepalive);
    assert_eq!(pair.client_closed(), Some((Some(&timeout), Initiator::Local)));
    let (_, text) = received(pair.server_closed());
    assert_eq!(text, "Timeout, server not responding.");
}

/// A reply to any of our requests counts as a sign of life, and the application's own global
/// requests still get their answers while keepalives run.
#[test]
fn the_applications_own_requests_are_answered_beside_keepalives() {
    let mut config = server_config();
    config.client_alive_interval = Some(Duration::from_secs(15));
    let mut pair = password_pair_with(config);
    pair.drive();
    pair.take_server_events();
    pair.advance(Duration::from_secs(15));
    let request = crate::connection::msgs::GlobalRequest::Keepalive;
    let id = pair.server.connection_mut().unwrap().send_global_request(&request, true).unwrap();
    pair.advance(Duration::from_secs(15));
    let answered: Vec<_> = pair
        .server_events()
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Connection(ConnectionEvent::GlobalRequestAnswered { request, .. }) => {
                Some(*request)
            }
            _ => None,
        })
        .collect();
    assert_eq!(answered, [id.unwrap()]);
    assert!(!pair.client_events().iter().any(|e| matches!(e, ClientEvent::Closed { .. })));
}

/// A password pair whose server uses `config`.
fn password_pair_with(config: crate::stack::ServerStackConfig) -> StackPair<String> {
    let mut template = password_pair();
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.decider = template.decider.take();
    pair.answerer = template.answerer.take();
    pair
}

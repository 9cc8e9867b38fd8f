//! Channel requests and global requests: typed round trips, ordered replies, automatic
//! answers, and the limits on pending requests.

use super::super::msgs::*;
use super::super::{ChannelId, Config, Event, RequestId, Side};
use super::flow::encode;
use super::msgs::{all_channel_requests, all_global_requests};
use super::{direct_tcpip, message_type, Pair};
use crate::error::{Error, LocalMisuse, PeerMisbehaved};
use crate::wire::MessageType;

fn request_to(id: ChannelId, name: &str, want_reply: bool, data: &[u8]) -> Vec<u8> {
    encode(|w| {
        w.write_u8(98).write_u32(id.as_u32()).write_string(name.as_bytes()).write_bool(want_reply);
        w.write_raw(data);
    })
}

fn global(name: &str, want_reply: bool, data: &[u8]) -> Vec<u8> {
    encode(|w| {
        w.write_u8(80).write_string(name.as_bytes()).write_bool(want_reply).write_raw(data);
    })
}

/// The reply payloads `side` has produced and not yet delivered, as message numbers.
fn replies_from(pair: &mut Pair, side: Side) -> Vec<MessageType> {
    pair.collect();
    let queue = match side {
        Side::Client => &mut pair.to_server,
        Side::Server => &mut pair.to_client,
    };
    queue.drain(..).map(|p| message_type(&p)).collect()
}

/// Every typed channel request reaches the other side intact, from the side that sends it; a
/// wanted reply comes back to the request's id with the answer given.
#[test]
fn round_trips_every_typed_channel_request() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    for (i, request) in all_channel_requests().into_iter().enumerate() {
        if request == ChannelRequest::Keepalive {
            continue;
        }
        let sender = request.sender().unwrap_or(Side::Client);
        let (from, to) = match sender {
            Side::Client => (c, s),
            Side::Server => (s, c),
        };
        let success = i % 2 == 0;
        let id = pair.conn(sender).send_request(from, &request, true).unwrap().unwrap();
        pair.drive();
        let events = pair.take_events(sender.peer());
        let [Event::RequestReceived { id: got, request: received, reply: Some(reply) }] =
            events.as_slice()
        else {
            panic!("{request:?}: {events:?}")
        };
        assert_eq!((*got, received), (to, &request));
        pair.conn(sender.peer()).reply_request(to, *reply, success).unwrap();
        pair.drive();
        assert_eq!(
            pair.take_events(sender),
            [Event::RequestAnswered { id: from, request: id, success }]
        );
    }
    // `eow@openssh.com` may come from either side.
    pair.server.send_request(s, &ChannelRequest::Eow, false).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [Event::RequestReceived { id: c, request: ChannelRequest::Eow, reply: None }]
    );
}

/// Replies leave in the order the requests came, whatever order the application answers in.
#[test]
fn replies_to_channel_requests_in_order() {
    let mut pair = Pair::new();
    let (c, s) = pair.open_session();
    let requests = [
        ChannelRequest::Env { name: "A".into(), value: b"1".to_vec() },
        ChannelRequest::Subsystem { name: "sftp".into() },
        ChannelRequest::Shell,
    ];
    let ids: Vec<RequestId> =
        requests.iter().map(|r| pair.client.send_request(c, r, true).unwrap().unwrap()).collect();
    pair.drive();
    let replies: Vec<RequestId> = pair
        .take_events(Side::Server)
        .into_iter()
        .map(|e| match e {
            Event::RequestReceived { reply: Some(reply), .. } => reply,
            other => panic!("{other:?}"),
        })
        .collect();
    pair.server.reply_request(s, replies[2], true).unwrap();
    pair.server.reply_request(s, replies[1], false).unwrap();
    assert!(replies_from(&mut pair, Side::Server).is_empty(), "the first is not answered");
    assert_eq!(pair.server.reply_request(s, replies[1], true), Err(LocalMisuse::UnknownId.into()));
    pair.server.reply_request(s, replies[0], true).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [
            Event::RequestAnswered { id: c, request: ids[0], success: true },
            Event::RequestAnswered { id: c, request: ids[1], success: false },
            Event::RequestAnswered { id: c, request: ids[2], success: true },
        ]
    );
}

/// An unknown request is refused at once when a reply is wanted and reported without one;
/// one the application registered is left to it.
#[test]
fn refuses_unknown_channel_requests_unless_the_application_takes_them() {
    let server = Config { app_channel_requests: vec!["x@example.org".into()], ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (_, s) = pair.open_session();
    pair.server.handle_payload(&request_to(s, "y@example.org", true, b"\x01")).unwrap();
    assert_eq!(replies_from(&mut pair, Side::Server), [MessageType::CHANNEL_FAILURE]);
    let unknown = |name: &str, data: &[u8]| ChannelRequest::Unknown {
        name: name.into(),
        data: data.to_vec(),
    };
    assert_eq!(
        pair.take_events(Side::Server),
        [Event::RequestReceived { id: s, request: unknown("y@example.org", b"\x01"), reply: None }]
    );
    pair.server.handle_payload(&request_to(s, "y@example.org", false, b"")).unwrap();
    assert!(replies_from(&mut pair, Side::Server).is_empty());
    pair.take_events(Side::Server);

    pair.server.handle_payload(&request_to(s, "x@example.org", true, b"\x02")).unwrap();
    assert!(replies_from(&mut pair, Side::Server).is_empty());
    let events = pair.take_events(Side::Server);
    let [Event::RequestReceived { reply: Some(reply), request, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(*request, unknown("x@example.org", b"\x02"));
    pair.server.reply_request(s, *reply, true).unwrap();
    assert_eq!(replies_from(&mut pair, Side::Server), [MessageType::CHANNEL_SUCCESS]);
}

/// A request from the wrong side, or a session request on a forwarding channel, is treated as
/// unknown: refused, and reported raw.
#[test]
fn treats_misdirected_requests_as_unknown() {
    let mut pair = Pair::new();
    let (c, _) = pair.open_session();
    pair.client.handle_payload(&request_to(c, "shell", true, b"")).unwrap();
    assert_eq!(replies_from(&mut pair, Side::Client), [MessageType::CHANNEL_FAILURE]);
    let events = pair.take_events(Side::Client);
    assert!(matches!(&events[..],
        [Event::RequestReceived { request: ChannelRequest::Unknown { name, .. }, reply: None, .. }]
            if name == "shell"));

    let (c2, s2) = pair.open(Side::Client, direct_tcpip());
    assert_eq!(
        pair.client.send_request(c2, &ChannelRequest::Shell, true),
        Err(LocalMisuse::WrongChannelState.into())
    );
    pair.server.handle_payload(&request_to(s2, "shell", true, b"")).unwrap();
    assert_eq!(replies_from(&mut pair, Side::Server), [MessageType::CHANNEL_FAILURE]);
    assert_eq!(
        pair.server.send_request(c2, &ChannelRequest::Shell, true),
        Err(LocalMisuse::WrongSide.into())
    );
}

/// `keepalive@openssh.com` on a channel is answered with failure, as OpenSSH's client does,
/// and bothers nobody.
#[test]
fn answers_channel_keepalives_with_failure() {
    let mut pair = Pair::new();
    let (_, s) = pair.open_session();
    let id = pair.server.send_request(s, &ChannelRequest::Keepalive, true).unwrap().unwrap();
    pair.drive();
    assert!(pair.take_events(Side::Client).is_empty());
    assert_eq!(
        pair.take_events(Side::Server),
        [Event::RequestAnswered { id: s, request: id, success: false }]
    );
}

/// Requests after our CLOSE get no reply; after the peer's CLOSE they are refused unseen.
#[test]
fn handles_requests_on_closing_channels_as_openssh_does() {
    let mut pair = Pair::new();
    let (_, s) = pair.open_session();
    pair.server.handle_payload(&request_to(s, "env", true, b"\0\0\0\x01A\0\0\0\x01B")).unwrap();
    let events = pair.take_events(Side::Server);
    let [Event::RequestReceived { reply: Some(pending), .. }] = events[..] else {
        panic!("{events:?}")
    };
    pair.server.close(s).unwrap();
    pair.server.reply_request(s, pending, true).unwrap();
    pair.server.handle_payload(&request_to(s, "shell", true, b"")).unwrap();
    let sent = replies_from(&mut pair, Side::Server);
    assert_eq!(sent, [MessageType::CHANNEL_EOF, MessageType::CHANNEL_CLOSE]);
    assert!(pair.take_events(Side::Server).is_empty());

    let mut pair = Pair::new();
    let (c2, s2) = pair.open_session();
    pair.server.close(s2).unwrap();
    pair.drive();
    pair.take_events(Side::Client);
    pair.client.handle_payload(&request_to(c2, "exit-status", true, &[0, 0, 0, 1])).unwrap();
    assert_eq!(replies_from(&mut pair, Side::Client), [MessageType::CHANNEL_FAILURE]);
    assert!(pair.take_events(Side::Client).is_empty());
}

/// `tcpip-forward` for port 0 is answered with the bound port, which reaches the requester;
/// for a fixed port the answer is a plain success.
#[test]
fn forwards_the_bound_port_for_tcpip_forward_to_port_zero() {
    let mut pair = Pair::new();
    let any = GlobalRequest::TcpipForward { address: "localhost".into(), port: 0 };
    let fixed = GlobalRequest::TcpipForward { address: "localhost".into(), port: 8022 };
    let first = pair.client.send_global_request(&any, true).unwrap().unwrap();
    let second = pair.client.send_global_request(&fixed, true).unwrap().unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::GlobalRequestReceived { request: r1, reply: Some(a) }, Event::GlobalRequestReceived { request: r2, reply: Some(b) }] =
        events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!((r1, r2), (&any, &fixed));
    pair.server.reply_global_request(*a, GlobalReply::BoundPort(40_001)).unwrap();
    pair.server.reply_global_request(*b, GlobalReply::Success).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [
            Event::GlobalRequestAnswered { request: first, reply: GlobalReply::BoundPort(40_001) },
            Event::GlobalRequestAnswered { request: second, reply: GlobalReply::Success },
        ]
    );
}

/// Global replies leave in request order, including the automatic ones, and each answer is
/// matched to the request it answers.
#[test]
fn replies_to_global_requests_in_order() {
    let mut pair = Pair::new();
    let forward = GlobalRequest::TcpipForward { address: String::new(), port: 0 };
    let cancel = GlobalRequest::CancelTcpipForward { address: String::new(), port: 9000 };
    let ids = [
        pair.client.send_global_request(&forward, true).unwrap().unwrap(),
        pair.client.send_global_request(&GlobalRequest::Keepalive, true).unwrap().unwrap(),
        pair.client.send_global_request(&cancel, true).unwrap().unwrap(),
    ];
    pair.drive();
    let pending: Vec<RequestId> = pair
        .take_events(Side::Server)
        .into_iter()
        .map(|e| match e {
            Event::GlobalRequestReceived { reply: Some(reply), .. } => reply,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(pending.len(), 2, "the keepalive is answered without the application");
    pair.server.reply_global_request(pending[1], GlobalReply::Failure).unwrap();
    assert!(replies_from(&mut pair, Side::Server).is_empty());
    pair.server.reply_global_request(pending[0], GlobalReply::BoundPort(5555)).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [
            Event::GlobalRequestAnswered { request: ids[0], reply: GlobalReply::BoundPort(5555) },
            Event::GlobalRequestAnswered { request: ids[1], reply: GlobalReply::Failure },
            Event::GlobalRequestAnswered { request: ids[2], reply: GlobalReply::Failure },
        ]
    );
    assert_eq!(
        pair.server.reply_global_request(pending[0], GlobalReply::Success),
        Err(LocalMisuse::UnknownId.into())
    );
}

/// Every typed global request reaches the side that receives it intact.
#[test]
fn round_trips_every_typed_global_request() {
    let mut pair = Pair::new();
    for request in all_global_requests() {
        let sender = request.sender().unwrap_or(Side::Client);
        pair.conn(sender).send_global_request(&request, false).unwrap();
        pair.drive();
        let events = pair.take_events(sender.peer());
        if request == GlobalRequest::Keepalive {
            assert!(events.is_empty());
            continue;
        }
        assert_eq!(events, [Event::GlobalRequestReceived { request, reply: None }]);
    }
}

/// After `no-more-sessions@openssh.com` (answered with success) a session open ends the
/// connection, as OpenSSH's server does; other channel types still open.
#[test]
fn no_more_sessions_forbids_further_sessions() {
    let mut pair = Pair::new();
    pair.open_session();
    let id = pair.client.send_global_request(&GlobalRequest::NoMoreSessions, true).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [Event::GlobalRequestAnswered { request: id.unwrap(), reply: GlobalReply::Success }]
    );
    pair.take_events(Side::Server);
    pair.open(Side::Client, direct_tcpip());
    pair.client.open_channel(ChannelKind::Session).unwrap();
    pair.collect();
    let open = pair.to_server.pop_front().unwrap();
    let result = pair.server.handle_payload(&open);
    assert_eq!(result, Err(PeerMisbehaved::SessionAfterNoMoreSessions.into()));
}

/// `hostkeys-00@openssh.com` reaches a client as host keys; a server receiving one treats it
/// as unknown and sends nothing back (it wants no reply).
#[test]
fn passes_host_keys_to_clients_and_ignores_them_on_servers() {
    let mut pair = Pair::new();
    let keys = GlobalRequest::HostKeys { keys: vec![b"ssh-ed25519 blob".to_vec()] };
    pair.server.send_global_request(&keys, false).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [Event::GlobalRequestReceived { request: keys.clone(), reply: None }]
    );
    let mut data = Vec::new();
    keys.encode_data(&mut crate::wire::Writer::new(&mut data));
    pair.server.handle_payload(&global("hostkeys-00@openssh.com", false, &data)).unwrap();
    assert!(replies_from(&mut pair, Side::Server).is_empty());
    assert!(matches!(
        &pair.take_events(Side::Server)[..],
        [Event::GlobalRequestReceived { request: GlobalRequest::Unknown { .. }, reply: None }]
    ));
    assert_eq!(pair.client.send_global_request(&keys, false), Err(LocalMisuse::WrongSide.into()));
}

/// `hostkeys-prove-00@openssh.com` carries its signatures back to the client.
#[test]
fn returns_host_key_proofs() {
    let mut pair = Pair::new();
    let prove = GlobalRequest::HostKeysProve { keys: vec![b"k1".to_vec(), b"k2".to_vec()] };
    let id = pair.client.send_global_request(&prove, true).unwrap().unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::GlobalRequestReceived { reply: Some(reply), .. }] = events[..] else {
        panic!("{events:?}")
    };
    let proofs = GlobalReply::HostKeyProofs(vec![b"s1".to_vec(), b"s2".to_vec()]);
    pair.server.reply_global_request(reply, proofs.clone()).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [Event::GlobalRequestAnswered { request: id, reply: proofs }]
    );
}

/// Unknown global requests are refused when a reply is wanted and ignored otherwise; one the
/// application registered is left to it, and its success data reaches the requester raw.
#[test]
fn refuses_unknown_global_requests_unless_the_application_takes_them() {
    let server = Config { app_global_requests: vec!["x@example.org".into()], ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    pair.server.handle_payload(&global("y@example.org", true, b"")).unwrap();
    assert_eq!(replies_from(&mut pair, Side::Server), [MessageType::REQUEST_FAILURE]);
    pair.server.handle_payload(&global("y@example.org", false, b"")).unwrap();
    assert!(replies_from(&mut pair, Side::Server).is_empty());
    pair.take_events(Side::Server);

    let request = GlobalRequest::Unknown { name: "x@example.org".into(), data: vec![9] };
    let id = pair.client.send_global_request(&request, true).unwrap().unwrap();
    pair.drive();
    let events = pair.take_events(Side::Server);
    let [Event::GlobalRequestReceived { request: got, reply: Some(reply) }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(got, &request);
    pair.server.reply_global_request(*reply, GlobalReply::SuccessWith(vec![1, 2, 3])).unwrap();
    pair.drive();
    assert_eq!(
        pair.take_events(Side::Client),
        [Event::GlobalRequestAnswered {
            request: id,
            reply: GlobalReply::SuccessWith(vec![1, 2, 3])
        }]
    );
}

/// Answers nobody asked for are ignored, as OpenSSH ignores them.
#[test]
fn ignores_unsolicited_replies() {
    let mut pair = Pair::new();
    let (c, _) = pair.open_session();
    for payload in [
        vec![81],
        vec![82],
        encode(|w| ChannelSuccess { recipient: c.as_u32() }.encode(w)),
        encode(|w| ChannelFailure { recipient: 0x1234 }.encode(w)),
    ] {
        pair.client.handle_payload(&payload).unwrap();
    }
    assert!(pair.take_events(Side::Client).is_empty());
}

/// A peer piling up requests beyond the limit is disconnected; answering them makes room.
#[test]
fn bounds_pending_requests() {
    let server = Config { max_pending_requests: 4, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server);
    let (c, s) = pair.open_session();
    for _ in 0..4 {
        pair.client.send_request(c, &ChannelRequest::Shell, true).unwrap();
    }
    pair.drive();
    let replies: Vec<RequestId> = pair
        .take_events(Side::Server)
        .into_iter()
        .filter_map(|e| match e {
            Event::RequestReceived { reply, .. } => reply,
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 4);
    pair.server.reply_request(s, replies[0], true).unwrap();
    pair.server.handle_payload(&request_to(s, "shell", true, b"")).unwrap();
    let result = pair.server.handle_payload(&request_to(s, "shell", true, b""));
    assert_eq!(result, Err(PeerMisbehaved::TooManyPendingRequests.into()));

    // Requests that want no reply count until their event is polled.
    let server = Config { max_pending_requests: 2, ..Config::default() };
    let mut pair = Pair::with_configs(Config::default(), server.clone());
    let (_, s) = pair.open_session();
    let env = request_to(s, "env", false, b"\0\0\0\x01A\0\0\0\x01B");
    pair.server.handle_payload(&env).unwrap();
    pair.server.handle_payload(&env).unwrap();
    assert_eq!(
        pair.server.handle_payload(&env),
        Err(PeerMisbehaved::TooManyPendingRequests.into())
    );
    let mut pair = Pair::with_configs(Config::default(), server);
    let (_, s) = pair.open_session();
    let env = request_to(s, "env", false, b"\0\0\0\x01A\0\0\0\x01B");
    for _ in 0..10 {
        pair.server.handle_payload(&env).unwrap();
        pair.take_events(Side::Server);
    }
}

/// Our own requests awaiting a reply are bounded too.
#[test]
fn bounds_our_own_pending_requests() {
    let client = Config { max_pending_requests: 2, ..Config::default() };
    let mut pair = Pair::with_configs(client, Config::default());
    let (c, _) = pair.open_session();
    pair.client.send_request(c, &ChannelRequest::Shell, true).unwrap();
    pair.client.send_request(c, &ChannelRequest::Shell, true).unwrap();
    assert_eq!(
        pair.client.send_request(c, &ChannelRequest::Shell, true),
        Err(LocalMisuse::OutputQueueFull.into())
    );
    assert_eq!(pair.client.send_request(c, &ChannelRequest::Shell, false), Ok(None));
    pair.client.send_global_request(&GlobalRequest::Keepalive, true).unwrap();
    pair.client.send_global_request(&GlobalRequest::Keepalive, true).unwrap();
    assert_eq!(
        pair.client.send_global_request(&GlobalRequest::Keepalive, true),
        Err(LocalMisuse::OutputQueueFull.into())
    );
}

/// A request whose data does not match its type ends the connection.
#[test]
fn disconnects_on_malformed_request_data() {
    let mut pair = Pair::new();
    let (_, s) = pair.open_session();
    let result = pair.server.handle_payload(&request_to(s, "exec", true, &[0, 0, 0, 9, b'l']));
    assert!(matches!(result, Err(Error::InvalidMessage(_))), "{result:?}");
}

/// Control messages may exceed the data limit only by the headroom: past it our commands fail,
/// and a peer that keeps asking for replies nobody drains is disconnected.
#[test]
fn bounds_the_output_queue_for_control_messages() {
    use super::super::OUTPUT_HEADROOM;
    let config = Config { max_queued_output: 1, ..Config::default() };
    let mut pair = Pair::with_config(config);
    let (c, _) = pair.open_session();
    let signal = ChannelRequest::Signal { name: "INT".into() };
    let mut sent = 0;
    let result = loop {
        match pair.client.send_request(c, &signal, false) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < OUTPUT_HEADROOM, "never refused");
    };
    assert_eq!(result, Error::LocalMisuse(LocalMisuse::OutputQueueFull));
    assert!(pair.client.queued_output() > OUTPUT_HEADROOM);
    pair.drive();
    assert_eq!(pair.client.send_request(c, &signal, false), Ok(None));

    let keepalive = global("keepalive@openssh.com", true, b"");
    let result = loop {
        if let Err(e) = pair.server.handle_payload(&keepalive) {
            break e;
        }
    };
    assert_eq!(result, Error::PeerMisbehaved(PeerMisbehaved::BufferLimitExceeded));
}

//! The connection layer's test suite: message codecs, and a client and a server [`Connection`]
//! wired back to back through payload queues.

mod flow;
mod msgs;
mod requests;
mod table;

use std::collections::VecDeque;

use super::msgs::{ChannelKind, OpenFailureReason};
use super::{ChannelId, Config, Connection, Event, Side, Stream};
use crate::wire::{MessageType, Reader};

/// The most rounds [`Pair::drive`] runs before deciding the two sides will never go quiet.
const MAX_ROUNDS: usize = 10_000;

/// A client and a server connection layer back to back. Payloads each side produces wait in
/// an in-flight queue until delivered; events each side raises are collected per side.
pub(super) struct Pair {
    pub(super) client: Connection,
    pub(super) server: Connection,
    /// Payloads from the client not yet delivered to the server.
    pub(super) to_server: VecDeque<Vec<u8>>,
    /// Payloads from the server not yet delivered to the client.
    pub(super) to_client: VecDeque<Vec<u8>>,
    pub(super) client_events: Vec<Event>,
    pub(super) server_events: Vec<Event>,
}

impl Pair {
    pub(super) fn new() -> Self {
        Self::with_configs(Config::default(), Config::default())
    }

    pub(super) fn with_config(config: Config) -> Self {
        Self::with_configs(config.clone(), config)
    }

    pub(super) fn with_configs(client: Config, server: Config) -> Self {
        Self {
            client: Connection::new(Side::Client, client).unwrap(),
            server: Connection::new(Side::Server, server).unwrap(),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    pub(super) fn conn(&mut self, side: Side) -> &mut Connection {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    pub(super) fn events(&mut self, side: Side) -> &mut Vec<Event> {
        match side {
            Side::Client => &mut self.client_events,
            Side::Server => &mut self.server_events,
        }
    }

    /// Takes every payload both sides have produced into the in-flight queues, and every event
    /// into the event lists, without delivering anything.
    pub(super) fn collect(&mut self) {
        collect(&mut self.client, &mut self.to_server, &mut self.client_events);
        collect(&mut self.server, &mut self.to_client, &mut self.server_events);
    }

    /// Delivers everything in flight, both ways, until both sides are quiet, polling each side
    /// after each payload it handles.
    pub(super) fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            self.collect();
            if self.to_server.is_empty() && self.to_client.is_empty() {
                return;
            }
            // As the call order asks: poll after each payload.
            while let Some(payload) = self.to_server.pop_front() {
                self.server.handle_payload(&payload).unwrap();
                collect(&mut self.server, &mut self.to_client, &mut self.server_events);
            }
            while let Some(payload) = self.to_client.pop_front() {
                self.client.handle_payload(&payload).unwrap();
                collect(&mut self.client, &mut self.to_server, &mut self.client_events);
            }
        }
        panic!("the pair did not go quiet in {MAX_ROUNDS} rounds");
    }

    /// Takes the events `side` has raised so far.
    pub(super) fn take_events(&mut self, side: Side) -> Vec<Event> {
        self.collect();
        std::mem::take(self.events(side))
    }

    /// Opens a channel of `kind` from `opener` and has the other side accept it. Returns the
    /// opener's id and the acceptor's id. Other events stay where they are.
    pub(super) fn open(&mut self, opener: Side, kind: ChannelKind) -> (ChannelId, ChannelId) {
        let id = self.conn(opener).open_channel(kind.clone()).unwrap();
        self.drive();
        let acceptor = opener.peer();
        let requested =
            self.take_matching(acceptor, |e| matches!(e, Event::ChannelOpenRequested { .. }));
        let [Event::ChannelOpenRequested { id: peer_id, kind: got }] = requested.as_slice() else {
            panic!("expected one open request, got {requested:?}");
        };
        assert_eq!(*got, kind);
        let peer_id = *peer_id;
        self.conn(acceptor).accept_channel(peer_id).unwrap();
        self.drive();
        let opened = self.take_matching(opener, |e| matches!(e, Event::ChannelOpened { .. }));
        assert_eq!(opened, [Event::ChannelOpened { id }]);
        (id, peer_id)
    }

    /// Takes the events `side` has raised that match `f`, leaving the others.
    fn take_matching(&mut self, side: Side, f: impl Fn(&Event) -> bool) -> Vec<Event> {
        self.collect();
        let (matching, others) = std::mem::take(self.events(side)).into_iter().partition(f);
        *self.events(side) = others;
        matching
    }

    /// Opens a session from the client. Returns the client's and the server's ids.
    pub(super) fn open_session(&mut self) -> (ChannelId, ChannelId) {
        self.open(Side::Client, ChannelKind::Session)
    }

    /// Reads everything buffered on `stream` of `id` on `side`.
    pub(super) fn read_all(&mut self, side: Side, id: ChannelId, stream: Stream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.conn(side).recv(id, stream, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

fn collect(conn: &mut Connection, out: &mut VecDeque<Vec<u8>>, events: &mut Vec<Event>) {
    loop {
        let mut payload = Vec::new();
        if !conn.poll_payload(&mut payload) {
            break;
        }
        out.push_back(payload);
    }
    while let Some(event) = conn.poll_event() {
        events.push(event);
    }
}

/// The message number of a payload.
pub(super) fn message_type(payload: &[u8]) -> MessageType {
    Reader::new(payload).read_message_type().unwrap()
}

/// A direct-tcpip kind for tests.
pub(super) fn direct_tcpip() -> ChannelKind {
    ChannelKind::DirectTcpip {
        host: "example.org".into(),
        port: 443,
        originator_address: "127.0.0.1".into(),
        originator_port: 50_000,
    }
}

/// A forwarded-tcpip kind for tests.
pub(super) fn forwarded_tcpip() -> ChannelKind {
    ChannelKind::ForwardedTcpip {
        address: "0.0.0.0".into(),
        port: 8080,
        originator_address: "192.0.2.1".into(),
        originator_port: 40_000,
    }
}

/// Asserts an open failure event for `id` with `reason`.
pub(super) fn assert_open_failed(events: &[Event], id: ChannelId, reason: OpenFailureReason) {
    assert!(
        events.iter().any(|e| matches!(e,
            Event::ChannelOpenFailed { id: got, reason: r, .. } if *got == id && *r == reason)),
        "expected open failure {reason:?} for {id:?} in {events:?}"
    );
}

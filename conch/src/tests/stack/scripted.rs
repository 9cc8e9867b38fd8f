//! A scripted peer: a real transport on the peer's side, so that key exchange, encryption and
//! sequence numbers are genuine, with the layers above written by hand. It reaches each
//! protocol state of the stack under test, then sends one hand-made message and reports what
//! the stack made of it.

use std::sync::Arc;
use std::time::Instant;

use crate::connection::msgs::ChannelKind;
use crate::connection::Event as ConnectionEvent;
use crate::crypto::algorithms::Category;
use crate::error::{Error, Initiator};
use crate::stack::{ClientEvent, ClientStack, ServerEvent, ServerStack, ServerStackConfig};
use crate::testing::{fixtures, SeededRandom};
use crate::transport::{self, Transport};
use crate::userauth::{self, Decision};
use crate::wire::{DisconnectReason, MessageType, Writer};

use super::util::{client_config, server_config};

/// The protocol states of the whole stack, in the order a connection passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Nothing received yet: the peer's identification line is due.
    Version,
    /// The peer's KEXINIT is in; its key exchange message is due.
    Kex,
    /// The key exchange messages are in; the peer's NEWKEYS is due.
    NewKeys,
    /// Keys are in place; the service request (or its acceptance) is due.
    Service,
    /// User authentication runs.
    Userauth,
    /// The user is authenticated; no channel is open.
    Authenticated,
    /// A session channel is open (number 0 on both sides).
    ChannelOpen,
}

impl State {
    /// Every state.
    pub(super) const ALL: [Self; 7] = [
        Self::Version,
        Self::Kex,
        Self::NewKeys,
        Self::Service,
        Self::Userauth,
        Self::Authenticated,
        Self::ChannelOpen,
    ];
}

/// What the stack under test made of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Taken, and the connection goes on without an `SSH_MSG_UNIMPLEMENTED`.
    Accepted,
    /// Answered with `SSH_MSG_UNIMPLEMENTED` naming the packet; the connection goes on.
    Unimplemented,
    /// The stack ended the connection, sending `SSH_MSG_DISCONNECT` with this reason.
    Refused(DisconnectReason),
    /// The message was the peer's own `SSH_MSG_DISCONNECT`, and the connection ended by it.
    PeerDisconnected,
}

/// The side under test, as the harness drives it.
pub(super) trait UnderTest {
    fn input(&mut self, now: Instant, bytes: &[u8]);
    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>);
    fn capacity(&self) -> usize;
    /// Polls events, answering as an accommodating application would (accept host keys,
    /// logins unless `log.hold_logins`, and channels); records the end of the connection.
    fn poll(&mut self, now: Instant, log: &mut Log);
    fn open_session(&mut self);
}

/// What the harness saw of the stack under test.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// The `Closed` event, if any.
    pub(super) closed: Option<(Option<Error>, Initiator)>,
    /// Whether a login was reported.
    pub(super) authenticated: bool,
    /// Authentication questions the application was asked.
    pub(super) auth_requests: usize,
    /// Connection-layer events the application got.
    pub(super) connection_events: Vec<ConnectionEvent>,
    /// Leave authentication questions unanswered (their ids collect in `pending`).
    pub(super) hold_logins: bool,
    /// Authentication questions left unanswered.
    pub(super) pending: Vec<userauth::RequestId>,
}

impl UnderTest for ServerStack<()> {
    fn input(&mut self, now: Instant, bytes: &[u8]) {
        let _ = self.handle_input(now, bytes);
    }

    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.poll_transmit(now, out);
    }

    fn capacity(&self) -> usize {
        self.input_capacity()
    }

    fn poll(&mut self, now: Instant, log: &mut Log) {
        while let Some(event) = self.poll_event() {
            match event {
                ServerEvent::Auth(userauth::ServerEvent::AuthRequested { id, .. }) => {
                    log.auth_requests += 1;
                    if log.hold_logins {
                        log.pending.push(id);
                    } else {
                        let _ = self.auth_decided(now, id, Decision::Accept(()));
                    }
                }
                ServerEvent::Auth(userauth::ServerEvent::Authenticated { .. }) => {
                    log.authenticated = true;
                }
                ServerEvent::Connection(event) => {
                    if let ConnectionEvent::ChannelOpenRequested { id, .. } = &event {
                        let _ = self.connection_mut().unwrap().accept_channel(*id);
                    }
                    log.connection_events.push(event);
                }
                ServerEvent::Closed { error, initiator } => log.closed = Some((error, initiator)),
                _ => {}
            }
        }
    }

    fn open_session(&mut self) {
        unreachable!("servers do not open sessions")
    }
}

impl UnderTest for ClientStack {
    fn input(&mut self, now: Instant, bytes: &[u8]) {
        let _ = self.handle_input(now, bytes);
    }

    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.poll_transmit(now, out);
    }

    fn capacity(&self) -> usize {
        self.input_capacity()
    }

    fn poll(&mut self, now: Instant, log: &mut Log) {
        while let Some(event) = self.poll_event() {
            match event {
                ClientEvent::Transport(transport::Event::HostKeyReceived { .. }) => {
                    self.host_key_decided(now, true).unwrap();
                }
                ClientEvent::Auth(userauth::ClientEvent::Succeeded { .. }) => {
                    log.authenticated = true;
                }
                ClientEvent::Auth(_) => log.auth_requests += 1,
                ClientEvent::Connection(event) => log.connection_events.push(event),
                ClientEvent::Closed { error, initiator } => log.closed = Some((error, initiator)),
                _ => {}
            }
        }
    }

    fn open_session(&mut self) {
        self.connection_mut().unwrap().open_channel(ChannelKind::Session).unwrap();
    }
}

/// The stack under test and a scripted peer, with the bytes between them.
pub(super) struct Harness<S> {
    pub(super) stack: S,
    pub(super) peer: Transport,
    pub(super) now: Instant,
    /// Bytes on their way to the stack under test.
    pub(super) to_stack: Vec<u8>,
    /// Bytes on their way to the peer.
    pub(super) to_peer: Vec<u8>,
    /// How many bytes each `handle_input` gets (`None`: all at once).
    pub(super) chunk: Option<usize>,
    /// Whether the peer (a client) accepts the host key as soon as it is proved.
    pub(super) peer_accepts_host_key: bool,
    /// Payloads the peer received.
    pub(super) received: Vec<Vec<u8>>,
    /// Events the peer's transport reported.
    pub(super) peer_events: Vec<transport::Event>,
    /// What the stack under test did.
    pub(super) log: Log,
}

/// A harness testing a server stack, with a client transport (offering only
/// `curve25519-sha256`, so that a hand-made key exchange value fits) as the peer.
pub(super) fn server_harness() -> Harness<ServerStack<()>> {
    server_harness_with(server_config())
}

/// A server harness whose stack uses `config`.
pub(super) fn server_harness_with(config: ServerStackConfig) -> Harness<ServerStack<()>> {
    let stack = ServerStack::new(Arc::new(config), Box::new(SeededRandom::new(2))).unwrap();
    let mut config = transport::ClientConfig::default();
    config.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
    let peer = Transport::client(Arc::new(config), Box::new(SeededRandom::new(3))).unwrap();
    Harness::new(stack, peer)
}

/// A harness testing a client stack logging in as `alice`, with a server transport as the peer.
pub(super) fn client_harness() -> Harness<ClientStack> {
    let config = Arc::new(client_config());
    let stack = ClientStack::new(config, "alice", Box::new(SeededRandom::new(4))).unwrap();
    let mut config = transport::ServerConfig::new(vec![fixtures::ed25519_host_key(1)]);
    config.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
    let peer = Transport::server(Arc::new(config), Box::new(SeededRandom::new(5))).unwrap();
    Harness::new(stack, peer)
}

impl<S: UnderTest> Harness<S> {
    fn new(stack: S, peer: Transport) -> Self {
        Self {
            stack,
            peer,
            now: Instant::now(),
            to_stack: Vec::new(),
            to_peer: Vec::new(),
            chunk: None,
            peer_accepts_host_key: true,
            received: Vec::new(),
            peer_events: Vec::new(),
            log: Log::default(),
        }
    }

    /// Moves bytes both ways until neither side has more to say.
    pub(super) fn drive(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("harness still busy");
    }

    fn step(&mut self) -> bool {
        let before = (self.to_stack.len(), self.to_peer.len(), self.received.len());
        self.stack.transmit(self.now, &mut self.to_peer);
        self.peer.poll_transmit(&mut self.to_stack);
        let delivered = !self.to_stack.is_empty() || !self.to_peer.is_empty();
        self.deliver_to_stack();
        self.deliver_to_peer();
        delivered || before != (self.to_stack.len(), self.to_peer.len(), self.received.len())
    }

    /// Hands the bytes in flight to the stack under test, in chunks, and polls it.
    pub(super) fn deliver_to_stack(&mut self) {
        let bytes = std::mem::take(&mut self.to_stack);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = rest.len().min(self.chunk.unwrap_or(rest.len())).min(self.stack.capacity());
            if n == 0 {
                self.stack.poll(self.now, &mut self.log);
                let mut out = Vec::new();
                self.stack.transmit(self.now, &mut out);
                self.to_peer.extend_from_slice(&out);
                if self.stack.capacity() == 0 {
                    break;
                }
                continue;
            }
            let (piece, tail) = rest.split_at(n);
            self.stack.input(self.now, piece);
            rest = tail;
        }
        self.stack.poll(self.now, &mut self.log);
    }

    /// Hands the bytes in flight to the peer and collects what it received.
    pub(super) fn deliver_to_peer(&mut self) {
        let bytes = std::mem::take(&mut self.to_peer);
        let mut rest = &bytes[..];
        while !rest.is_empty() && !self.peer.is_closed() {
            let n = rest.len().min(self.peer.input_capacity());
            if n == 0 {
                self.collect_peer();
                if self.peer.input_capacity() == 0 {
                    break;
                }
                continue;
            }
            let (piece, tail) = rest.split_at(n);
            let _ = self.peer.handle_input(self.now, piece);
            rest = tail;
            self.collect_peer();
        }
        self.collect_peer();
    }

    fn collect_peer(&mut self) {
        loop {
            let mut buf = Vec::new();
            let mut any = false;
            while self.peer.poll_payload(&mut buf).is_some() {
                self.received.push(std::mem::take(&mut buf));
                any = true;
            }
            while let Some(event) = self.peer.poll_event() {
                if matches!(event, transport::Event::HostKeyReceived { .. })
                    && self.peer_accepts_host_key
                {
                    self.peer.host_key_decided(true).unwrap();
                }
                self.peer_events.push(event);
                any = true;
            }
            if !any {
                return;
            }
        }
    }

    /// Whether the peer received a payload starting with `msg_type`.
    pub(super) fn peer_received(&self, msg_type: MessageType) -> bool {
        self.received.iter().any(|p| p.first() == Some(&msg_type.0))
    }

    /// Sends `payload` from the peer as a packet now, whatever it is: encrypted under the
    /// peer's current keys, with its next sequence number, which is returned.
    pub(super) fn inject(&mut self, payload: &[u8]) -> u32 {
        let (_, seq) = self.peer.sequence_numbers();
        self.peer.send_raw_for_test(payload);
        self.peer.poll_transmit(&mut self.to_stack);
        seq
    }

    /// Sends one message in `state` and reports what the stack made of it: the message is
    /// delivered to the stack, and the stack's answer to the peer, but no more.
    pub(super) fn outcome_of(&mut self, payload: &[u8]) -> Outcome {
        let seq = self.inject(payload);
        self.deliver_to_stack();
        self.stack.transmit(self.now, &mut self.to_peer);
        self.deliver_to_peer();
        self.outcome(seq)
    }

    /// What the stack did since the injection of the packet numbered `seq`.
    pub(super) fn outcome(&self, seq: u32) -> Outcome {
        if let Some((error, _)) = &self.log.closed {
            let Some(error) = error else { panic!("closed without an error") };
            if matches!(error, Error::DisconnectReceived { .. }) {
                return Outcome::PeerDisconnected;
            }
            let reason = error.disconnect_reason().expect("a fatal error with a reason");
            // Where the peer could read it, the DISCONNECT on the wire says the same.
            for event in &self.peer_events {
                if let transport::Event::Disconnected {
                    error: Error::DisconnectReceived { reason: got, .. },
                    ..
                } = event
                {
                    assert_eq!(*got, reason, "the reason on the wire");
                }
            }
            return Outcome::Refused(reason);
        }
        let unimplemented =
            self.peer_events.contains(&transport::Event::UnimplementedReceived { seq });
        if unimplemented {
            Outcome::Unimplemented
        } else {
            Outcome::Accepted
        }
    }

    /// Sends `payload` from the peer through its transport's upper-layer path.
    pub(super) fn send(&mut self, payload: &[u8]) {
        self.peer.send_payload(payload).unwrap();
    }
}

impl Harness<ServerStack<()>> {
    /// Brings the server stack under test to `state`.
    pub(super) fn reach(&mut self, state: State) {
        match state {
            State::Version => {}
            State::Kex => self.peer.poll_transmit(&mut self.to_stack),
            State::NewKeys => {
                self.peer_accepts_host_key = false;
                self.drive();
                let pending = self
                    .peer_events
                    .iter()
                    .any(|e| matches!(e, transport::Event::HostKeyReceived { .. }));
                assert!(pending, "the peer holds its NEWKEYS");
            }
            State::Service => {
                self.drive();
                assert!(self.peer.is_established() && self.stack.transport().is_established());
            }
            State::Userauth => {
                self.reach(State::Service);
                self.send(&payload(|w| {
                    w.write_u8(MessageType::SERVICE_REQUEST.0).write_string(b"ssh-userauth");
                }));
                self.drive();
                assert!(self.peer_received(MessageType::SERVICE_ACCEPT));
            }
            State::Authenticated => {
                self.reach(State::Userauth);
                self.send(&payload(|w| {
                    w.write_u8(MessageType::USERAUTH_REQUEST.0)
                        .write_string(b"alice")
                        .write_string(b"ssh-connection")
                        .write_string(b"password")
                        .write_bool(false)
                        .write_string(b"secret");
                }));
                self.drive();
                assert!(
                    self.log.authenticated && self.peer_received(MessageType::USERAUTH_SUCCESS)
                );
            }
            State::ChannelOpen => {
                self.reach(State::Authenticated);
                self.send(&channel_open_session(0));
                self.drive();
                assert!(self.peer_received(MessageType::CHANNEL_OPEN_CONFIRMATION));
            }
        }
    }
}

impl Harness<ClientStack> {
    /// Brings the client stack under test to `state`.
    pub(super) fn reach(&mut self, state: State) {
        match state {
            State::Version => {}
            State::Kex => self.peer.poll_transmit(&mut self.to_stack),
            State::NewKeys => {}
            State::Service => {
                self.drive();
                assert!(self.peer.is_established() && self.stack.transport().is_established());
                assert!(self.peer_received(MessageType::SERVICE_REQUEST));
            }
            State::Userauth => {
                self.reach(State::Service);
                self.send(&payload(|w| {
                    w.write_u8(MessageType::SERVICE_ACCEPT.0).write_string(b"ssh-userauth");
                }));
                self.drive();
                assert!(self.peer_received(MessageType::USERAUTH_REQUEST));
            }
            State::Authenticated => {
                self.reach(State::Userauth);
                self.send(&[MessageType::USERAUTH_SUCCESS.0]);
                self.drive();
                assert!(self.log.authenticated);
            }
            State::ChannelOpen => {
                self.reach(State::Authenticated);
                self.stack.open_session();
                self.drive();
                assert!(self.peer_received(MessageType::CHANNEL_OPEN));
                self.send(&payload(|w| {
                    w.write_u8(MessageType::CHANNEL_OPEN_CONFIRMATION.0)
                        .write_u32(0)
                        .write_u32(0)
                        .write_u32(1 << 20)
                        .write_u32(32 * 1024);
                }));
                self.drive();
                let opened = self
                    .log
                    .connection_events
                    .iter()
                    .any(|e| matches!(e, ConnectionEvent::ChannelOpened { .. }));
                assert!(opened);
            }
        }
    }

    /// The client's NEWKEYS state: the server's key exchange reply is delivered, and `payload`
    /// goes in as a plaintext packet before the server's NEWKEYS. Returns the outcome.
    pub(super) fn outcome_before_server_newkeys(&mut self, payload: &[u8]) -> Outcome {
        // Version and KEXINIT both ways; then the client's key exchange value to the server.
        for _ in 0..3 {
            self.stack.transmit(self.now, &mut self.to_peer);
            self.deliver_to_peer();
            self.peer.poll_transmit(&mut self.to_stack);
            if self.peer_sent_reply() {
                break;
            }
            self.deliver_to_stack();
        }
        // The server's output is now its KEX_REPLY packet (plaintext), NEWKEYS, and what follows
        // under the new keys: deliver the reply and then the message, where NEWKEYS was due.
        let bytes = std::mem::take(&mut self.to_stack);
        let reply_len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize + 4;
        self.to_stack.extend_from_slice(&bytes[..reply_len]);
        self.to_stack.extend_from_slice(&fixtures::plain_packet(payload));
        self.deliver_to_stack();
        self.stack.transmit(self.now, &mut self.to_peer);
        self.outcome(u32::MAX)
    }

    fn peer_sent_reply(&self) -> bool {
        self.peer.state_name() == "ExpectNewKeys"
    }
}

/// A payload written by `f`.
pub(super) fn payload(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut Writer::new(&mut out));
    out
}

/// `SSH_MSG_CHANNEL_OPEN` for a session, numbered `sender` on the opener's side.
pub(super) fn channel_open_session(sender: u32) -> Vec<u8> {
    payload(|w| {
        w.write_u8(MessageType::CHANNEL_OPEN.0)
            .write_string(b"session")
            .write_u32(sender)
            .write_u32(1 << 20)
            .write_u32(32 * 1024);
    })
}

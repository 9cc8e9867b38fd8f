//! The three SSH layers composed: one sans-IO object per side, [`ServerStack`] and
//! [`ClientStack`], that takes socket bytes and gives back socket bytes, events and one timer.
//!
//! ```text
//!   socket bytes ─▶ transport ─┬─ 1–49, PING/PONG: the transport's own
//!                              ├─ 5/6 service request/accept: the stack (`ssh-userauth` only)
//!                              ├─ 50–79: userauth (ignored after success, RFC 4252 §5.1)
//!                              └─ 80–127: connection, only after success; a protocol error before
//! ```
//!
//! The stack owns what sits between the layers, where their conventions meet:
//!
//! - **Routing.** Each payload the transport passes up goes to the layer that owns its number in
//!   the current phase. A connection message before authentication ends the connection
//!   (`SSH_DISCONNECT_PROTOCOL_ERROR`, the CVE-2018-10933 and CVE-2025-32433 class); a number no
//!   layer handles gets `SSH_MSG_UNIMPLEMENTED` with its packet's sequence number.
//! - **Extensions.** The server announces `server-sig-algs` and
//!   `publickey-hostbound@openssh.com` from its user authentication configuration
//!   ([`ServerStackConfig::new`]); the client feeds the server's `SSH_MSG_EXT_INFO` to its user
//!   authentication.
//! - **Delayed compression** (`zlib@openssh.com`) starts at authentication success: on the server
//!   right after `SSH_MSG_USERAUTH_SUCCESS` is handed to the transport, on the client right after
//!   it arrives.
//! - **Timers.** The server's `LoginGraceTime` and failure delay, both sides' keepalives
//!   (`ClientAliveInterval`/`ServerAliveInterval`), and the transport's time-based rekey are
//!   merged into one [`ServerStack::poll_timeout`].
//! - **Backpressure.** Payloads move from user authentication and the connection layer into the
//!   transport only while [`Transport::can_send`](crate::transport::Transport::can_send) is true,
//!   so a full socket reaches [`Connection::send_data`](crate::connection::Connection::send_data)
//!   as a short write. Input processing pauses while [`MAX_QUEUED_EVENTS`] events wait to be
//!   polled, and resumes in the next [`ServerStack::poll_transmit`].
//! - **Endings.** Every fatal error sends `SSH_MSG_DISCONNECT` with its reason, and the end is
//!   reported once, as the last event (`Closed`).
//!
//! Channel data moves through reused buffers on both paths: the connection layer encodes into
//! the stack's outgoing buffer, the transport encrypts in place; incoming channel data goes from the transport's input
//! buffer, where it was decrypted, straight into the channel's receive buffer, and other
//! payloads are copied once into the stack's incoming buffer.
//!
//! # Call order
//!
//! After every input (`handle_input`, `handle_eof`, `handle_timeout`) or command (`auth_decided`,
//! `host_key_decided`, anything done through `connection_mut()` or `userauth_mut()`):
//!
//! 1. `poll_transmit`, writing what it appends to the socket;
//! 2. `poll_timeout`, re-arming the one timer;
//! 3. `poll_event` until `None`, acting on each event; acting may issue commands, so go back to 1
//!    after each event (or after the last one), until `poll_event` returns `None` right after a
//!    `poll_transmit`.
//!
//! Read at most `input_capacity()` bytes from the socket, and stop reading while it is 0.

mod client;
mod config;
mod hostkeys;
mod keepalive;
mod server;

pub use client::{ClientEvent, ClientStack};
pub use config::{
    ClientStackConfig, ServerStackConfig, DEFAULT_ALIVE_COUNT_MAX, DEFAULT_LOGIN_GRACE_TIME,
};
pub use server::{ServerEvent, ServerStack};

use std::collections::VecDeque;
use std::time::Instant;

use self::keepalive::Keepalive;
use crate::connection::{self, Connection};
use crate::error::{Error, Initiator, LocalMisuse, PeerMisbehaved};
use crate::transport::{self, Transport};
use crate::wire::{DisconnectReason, MessageType};

/// The service a client asks for first (RFC 4252 §1); the only one a server offers.
pub const SERVICE_USERAUTH: &str = "ssh-userauth";

/// Events waiting in a stack before it stops taking up buffered input: processing resumes once
/// they have been polled, in the next `poll_transmit`.
pub const MAX_QUEUED_EVENTS: usize = 64;

/// OpenSSH's words when the login grace time runs out (`sshd`'s `grace_alarm_handler`).
const LOGIN_GRACE_TEXT: &str = "Timeout before authentication";

/// What both stacks hold: the transport, the connection layer once authenticated, the buffers
/// payloads move through, the keepalive timer and the end of the connection.
struct Core<E> {
    transport: Transport,
    connection: Option<Connection>,
    events: VecDeque<E>,
    /// The payload being routed, reused for every incoming packet.
    incoming: Vec<u8>,
    /// The payload being moved down into the transport, reused for every outgoing packet.
    outgoing: Vec<u8>,
    keepalive: Keepalive,
    /// Server: `SSH_MSG_USERAUTH_SUCCESS` is queued in user authentication; delayed compression
    /// starts once it has been handed to the transport.
    compression_pending: bool,
    /// Why we are ending the connection on purpose, reported instead of the transport's
    /// `DisconnectSent` (a timeout says "timeout", not "we disconnected").
    reason: Option<Error>,
    /// Set once the transport has closed: who ended it.
    closed: Option<Initiator>,
    /// The error to report with `Closed`, until it is reported.
    close_error: Option<Error>,
    closed_reported: bool,
}

/// The stack events both sides have, so that [`Core`] can build either side's.
trait StackEvent {
    fn connection(event: connection::Event) -> Self;
    fn closed(error: Option<Error>, initiator: Initiator) -> Self;
}

impl<E: StackEvent> Core<E> {
    fn new(transport: Transport, keepalive: Keepalive) -> Self {
        Self {
            transport,
            connection: None,
            events: VecDeque::new(),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            keepalive,
            compression_pending: false,
            reason: None,
            closed: None,
            close_error: None,
            closed_reported: false,
        }
    }

    /// Whether input processing should wait for the application to poll events.
    fn paused(&self) -> bool {
        self.closed.is_some()
            || self.transport.is_closed()
            || self.events.len() >= MAX_QUEUED_EVENTS
    }

    /// Takes a transport event: notes the end of the connection, and returns the others for the
    /// side to act on.
    fn transport_event(&mut self, event: transport::Event) -> Option<transport::Event> {
        match event {
            transport::Event::Disconnected { error, initiator } => {
                self.record_close(error, initiator);
                None
            }
            other => Some(other),
        }
    }

    fn record_close(&mut self, error: Error, initiator: Initiator) {
        if self.closed.is_some() {
            return;
        }
        let error = match (self.reason.take(), error) {
            (Some(ours), _) => Some(ours),
            (None, Error::DisconnectSent { .. } | Error::ConnectionClosed) => None,
            (None, theirs) => Some(theirs),
        };
        self.closed = Some(initiator);
        self.close_error = error;
    }

    /// Ends the connection for `error`: `SSH_MSG_DISCONNECT` with its reason and description.
    fn fail(&mut self, error: Error) {
        self.transport.disconnect_with_error(error);
    }

    /// Ends the connection for `error`, saying `text` on the wire (OpenSSH's words).
    fn fail_saying(&mut self, error: Error, text: &str) {
        if self.transport.is_closed() {
            return;
        }
        let reason = error.disconnect_reason().unwrap_or(DisconnectReason::BY_APPLICATION);
        self.reason = Some(error);
        self.transport.disconnect(reason, text);
    }

    /// Sends `SSH_MSG_UNIMPLEMENTED` for the packet numbered `seq`.
    fn unimplemented(&mut self, seq: u32) {
        // A failure here has already closed the transport, which reports it.
        let _ = self.transport.send_unimplemented(seq);
    }

    /// Hands an authenticated connection-protocol payload to the connection layer, or answers
    /// a number it does not handle with `SSH_MSG_UNIMPLEMENTED`.
    fn route_connection(&mut self, msg_type: MessageType, seq: u32) {
        let Some(connection) = self.connection.as_mut() else {
            return self.fail(PeerMisbehaved::MessageBeforeAuthentication(msg_type).into());
        };
        if !msg_type.is_connection() || !Connection::handles(msg_type) {
            return self.unimplemented(seq);
        }
        if let Err(e) = connection.handle_payload(&self.incoming) {
            return self.fail(e);
        }
        self.collect_connection_events();
    }

    /// Hands channel data straight from the transport's input buffer, where it was decrypted,
    /// to the connection layer (no copy into `incoming`): the bulk of every transfer. `false`
    /// when the next payload is anything else, or there is none, for the general path.
    fn route_channel_data(&mut self) -> bool {
        let Some(connection) = self.connection.as_mut() else { return false };
        let is_data = |t: MessageType| {
            t == MessageType::CHANNEL_DATA || t == MessageType::CHANNEL_EXTENDED_DATA
        };
        let Some(handled) =
            self.transport.lend_payload(is_data, |payload| connection.handle_payload(payload))
        else {
            return false;
        };
        if let Err(e) = handled {
            self.fail(e);
        }
        self.collect_connection_events();
        true
    }

    /// Hands payloads that arrived before authentication finished (RFC 4252 §5.1) to the
    /// connection layer, in order.
    fn route_pipelined(&mut self, payloads: Vec<Vec<u8>>) {
        for payload in payloads {
            let Some(&number) = payload.first() else { continue };
            let Some(connection) = self.connection.as_mut() else { return };
            let msg_type = MessageType(number);
            if !Connection::handles(msg_type) {
                // The transport passes up only numbers some layer defines; this is unreachable.
                continue;
            }
            if let Err(e) = connection.handle_payload(&payload) {
                return self.fail(e);
            }
        }
        self.collect_connection_events();
    }

    /// Moves the connection layer's events into the stack's queue; keepalive answers are
    /// counted and our own dropped.
    fn collect_connection_events(&mut self) {
        let Some(connection) = self.connection.as_mut() else { return };
        while let Some(event) = connection.poll_event() {
            let ours = match &event {
                connection::Event::GlobalRequestAnswered { request, .. } => {
                    self.keepalive.answered(Some(*request))
                }
                connection::Event::RequestAnswered { .. } => self.keepalive.answered(None),
                _ => false,
            };
            if ours {
                continue;
            }
            self.events.push_back(E::connection(event));
        }
    }

    /// Moves payloads from user authentication (through `userauth`), then from the connection
    /// layer, into the transport while it can take them.
    fn pull(&mut self, mut userauth: impl FnMut(&mut Vec<u8>) -> bool) {
        if self.transport.send_queue_len() == 0 {
            // The transport's output was taken: channels that waited for room in it go on.
            if let Some(connection) = self.connection.as_mut() {
                connection.output_taken();
            }
        }
        let mut userauth_done = false;
        while self.transport.can_send() {
            self.outgoing.clear();
            if !userauth_done {
                if userauth(&mut self.outgoing) {
                    self.send_outgoing();
                    continue;
                }
                userauth_done = true;
                if std::mem::take(&mut self.compression_pending) {
                    self.transport.enable_delayed_compression();
                }
            }
            let Some(connection) = self.connection.as_mut() else { break };
            // The payload goes from the connection's queue straight into the transport's
            // packet buffer, without a copy in between.
            let transport = &mut self.transport;
            let Some(sent) = connection
                .poll_payload_with(&mut self.outgoing, |payload| transport.send_payload(payload))
            else {
                break;
            };
            self.sent(sent);
        }
        self.collect_connection_events();
    }

    /// Sends channel data straight into the transport's packet buffer, after everything queued
    /// before it (call [`Layers::pull`] first): see
    /// [`Connection::send_stream_with`](crate::connection::Connection::send_stream_with).
    fn send_channel_data(
        &mut self,
        id: connection::ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Result<usize, Error> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(Error::ConnectionClosed);
        };
        let transport = &mut self.transport;
        let room = transport.send_room();
        let result = connection.send_stream_with(id, code, data, room, |head, piece| {
            transport.send_payload_parts(head, piece)
        });
        self.collect_connection_events();
        result
    }

    fn send_outgoing(&mut self) {
        let sent = self.transport.send_payload(&self.outgoing);
        self.sent(sent);
    }

    /// Acts on the transport's answer to a payload.
    fn sent(&mut self, sent: Result<(), Error>) {
        match sent {
            Ok(()) => {}
            // A payload a layer should never have produced: end the connection, say nothing.
            Err(e @ Error::LocalMisuse(_)) => self.fail(e),
            // The transport failed and closed itself; it reports why.
            Err(_) => {}
        }
    }

    /// Runs the keepalive timer; on the last unanswered probe, ends the connection with
    /// `text`.
    fn keepalive_timeout(&mut self, now: Instant, text: &str) {
        if self.closed.is_some() {
            return;
        }
        let Some(connection) = self.connection.as_mut() else { return };
        if self.keepalive.fire(now, connection).is_err() {
            self.fail_saying(Error::Timeout(crate::error::TimeoutKind::Keepalive), text);
        }
    }

    /// The next event: queued ones first, then what the connection layer produced since, and
    /// `Closed` last, once.
    fn poll_event(&mut self) -> Option<E> {
        if self.events.is_empty() && !self.closed_reported {
            self.collect_connection_events();
        }
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let initiator = self.closed?;
        if self.closed_reported {
            return None;
        }
        self.closed_reported = true;
        Some(E::closed(self.close_error.take(), initiator))
    }

    /// The error to return from an input call that closed the connection.
    fn input_result(&self, transport_result: Result<(), Error>) -> Result<(), Error> {
        transport_result?;
        if self.closed.is_some() {
            return Err(self.close_error.clone().unwrap_or(Error::ConnectionClosed));
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.is_some() || self.transport.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        Ok(())
    }

    /// The earliest of the transport's and the keepalive's deadlines, and `others`.
    fn poll_timeout(&self, others: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        [self.transport.poll_timeout(), self.keepalive.deadline()]
            .into_iter()
            .chain(others)
            .flatten()
            .min()
    }

    fn input_capacity(&self) -> usize {
        if self.closed.is_some() {
            return 0;
        }
        self.transport.input_capacity()
    }

    /// Space for at most `max` bytes and never more than [`Self::input_capacity`].
    fn input_buffer(&mut self, max: usize) -> &mut [u8] {
        if self.closed.is_some() {
            return &mut [];
        }
        self.transport.input_buffer(max)
    }
}

/// What differs between the two sides: how a payload is routed, what a transport event means,
/// and where user authentication's payloads come from. The loops that drive them are shared.
trait Layers {
    type Event: StackEvent;

    fn core(&mut self) -> &mut Core<Self::Event>;

    /// Routes the payload in `core.incoming`.
    fn route(&mut self, now: Instant, incoming: transport::Incoming);

    /// Acts on a transport event (not the end, which `Core` takes) and queues it.
    fn transport_event(&mut self, event: transport::Event);

    /// Moves payloads from user authentication and the connection layer into the transport.
    fn pull(&mut self);
}

/// Takes up payloads while nothing waits to be polled, routing each to its layer.
fn process<S: Layers>(stack: &mut S, now: Instant) {
    loop {
        if stack.core().paused() {
            break;
        }
        if stack.core().route_channel_data() {
            continue;
        }
        let core = stack.core();
        let incoming = core.transport.poll_payload(&mut core.incoming);
        drain_transport_events(stack);
        let Some(incoming) = incoming else { break };
        stack.route(now, incoming);
    }
    drain_transport_events(stack);
}

fn drain_transport_events<S: Layers>(stack: &mut S) {
    while let Some(event) = stack.core().transport.poll_event() {
        if let Some(event) = stack.core().transport_event(event) {
            stack.transport_event(event);
        }
    }
}

/// Resumes input, then appends wire bytes to `out` until no layer has more to send.
fn poll_transmit<S: Layers>(stack: &mut S, now: Instant, out: &mut Vec<u8>) {
    process(stack, now);
    loop {
        stack.pull();
        let before = out.len();
        stack.core().transport.poll_transmit(out);
        if out.len() == before {
            return;
        }
    }
}

/// Sends what the layers have queued, then `SSH_MSG_DISCONNECT`.
fn disconnect<S: Layers>(stack: &mut S, reason: DisconnectReason, description: &str) {
    if stack.core().check_open().is_err() {
        return;
    }
    stack.pull();
    stack.core().transport.disconnect(reason, description);
    drain_transport_events(stack);
}

fn rekey<S: Layers>(stack: &mut S, now: Instant) -> Result<(), Error> {
    stack.core().check_open()?;
    let result = stack.core().transport.rekey(now);
    process(stack, now);
    result
}

/// A local misuse error that leaves the connection as it was.
fn is_local(error: &Error) -> bool {
    matches!(error, Error::LocalMisuse(_))
}

/// The error for a payload that arrived in a phase where nothing may handle it.
fn out_of_phase(msg_type: MessageType) -> Error {
    if msg_type.0 >= 80 {
        PeerMisbehaved::MessageBeforeAuthentication(msg_type).into()
    } else {
        PeerMisbehaved::UnexpectedMessage(msg_type).into()
    }
}

/// An API misuse: a command the stack is not in a state to take.
fn not_ready() -> Error {
    LocalMisuse::NotReady.into()
}

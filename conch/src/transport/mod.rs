//! The SSH transport layer (RFC 4253) as a sans-IO state machine: identification lines, the
//! binary packet protocol, algorithm negotiation, key exchange, key re-exchange, strict KEX,
//! and the transport's own messages.
//!
//! One [`Transport`] per connection. It reads no clock (time comes in as an argument), opens no
//! socket and takes its randomness from an injected [`SecureRandom`]. The layers above
//! (user authentication, then the connection protocol) exchange whole payloads with it.
//!
//! # Handshake states
//!
//! ```text
//!            ExpectVersion ──(peer's line)──▶ ExpectKexInit ◀───────────── Established
//!                                                  │ (peer's KEXINIT)      ▲  │ (rekey: we send
//!                    ┌─────────────────────────────┴──────────┐            │  │  KEXINIT, or the
//!                    ▼ client                          server ▼            │  │  peer's arrives)
//!             ExpectKexReply                          ExpectKexDhInit       │  │
//!                    │ (reply verified)                       │             │  ▼
//!     ExpectHostKeyDecision (initial KEX only)                │          (as above)
//!                    │ host_key_decided(true)                 │
//!                    └────────── NEWKEYS sent ─▶ ExpectNewKeys ◀┘
//!                                                    │ (peer's NEWKEYS)
//!                                                    └──────────▶ Established
//! ```

mod algorithms;
pub mod config;
mod kex;
pub(crate) mod packet;
mod state;
pub mod version;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

pub use config::{
    ClientConfig, Identification, Limits, RekeyLimits, ServerConfig, MAX_PACKETS_PER_KEY,
    SOFTWARE_VERSION,
};
pub use kex::{Negotiated, EXT_INFO_C, EXT_INFO_S, KEX_STRICT_C, KEX_STRICT_S};
pub use packet::MAX_PAYLOAD_LEN;

use self::packet::{PacketReader, PacketWriter, PayloadLocation};
use self::state::State;
use crate::crypto::algorithms::Preferences;
use crate::crypto::SecureRandom;
use crate::error::{Error, Initiator, LocalMisuse, PeerMisbehaved};
use crate::keys::{PublicKey, SignatureAlgorithm};
use crate::wire::msgs::transport::{
    Debug as DebugMsg, Disconnect, ExtInfo, Ping, Pong, Unimplemented,
};
use crate::wire::msgs::Message;
use crate::wire::{DisconnectReason, InvalidMessage, MessageType, NameList};

/// Which end of the connection a transport is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The side that connected, and verifies the host key.
    Client,
    /// The side that accepted, and proves its host key.
    Server,
}

/// Something that happened in the transport, for the layer above.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Client only: the server proved it holds this host key (its signature over the exchange
    /// hash verified). Nothing further happens until
    /// [`Transport::host_key_decided`] is called, which may be much later (a user prompt).
    /// Only the initial key exchange asks; a rekey requires the same key.
    HostKeyReceived {
        /// The server's host key.
        key: PublicKey,
        /// The signature algorithm it proved it with.
        algorithm: SignatureAlgorithm,
    },
    /// A key exchange finished in both directions. After the first (`initial`), the session
    /// id exists and queued payloads have been sent.
    KexCompleted {
        /// Whether this was the first key exchange of the connection.
        initial: bool,
    },
    /// The peer sent `SSH_MSG_EXT_INFO` (RFC 8308). A client passes each extension to its
    /// user authentication layer; [`Transport::server_sig_algs`] keeps `server-sig-algs`.
    ExtInfoReceived {
        /// The extensions, by name, in the order sent.
        extensions: Vec<(String, Vec<u8>)>,
    },
    /// The peer sent `SSH_MSG_DEBUG`.
    DebugReceived {
        /// Whether the peer asked for the message to be shown.
        always_display: bool,
        /// The text, with control characters removed.
        message: String,
    },
    /// The peer did not understand our packet with this sequence number.
    UnimplementedReceived {
        /// Our packet's sequence number.
        seq: u32,
    },
    /// The connection ended. Bytes still pending in [`Transport::poll_transmit`] (a
    /// `SSH_MSG_DISCONNECT`) should be sent before the socket is closed.
    Disconnected {
        /// Why: the peer's disconnect, our error, or our own [`Transport::disconnect`]
        /// ([`Error::DisconnectSent`]).
        error: Error,
        /// Who ended it.
        initiator: Initiator,
    },
}

/// An upper-layer payload handed out by [`Transport::poll_payload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Its message number (the payload's first byte).
    pub msg_type: MessageType,
    /// The sequence number of the packet it came in, for [`Transport::send_unimplemented`].
    pub seq: u32,
}

/// One SSH connection's transport layer, as a state machine.
///
/// # Call order
///
/// Create it with [`Transport::client`] or [`Transport::server`]; the identification line
/// and our first `SSH_MSG_KEXINIT` are ready to send at once. Then, whenever something happens:
///
/// 1. **Input.** Bytes from the socket go to [`handle_input`](Self::handle_input) (read at
///    most [`input_capacity`](Self::input_capacity) bytes, and stop reading while it is 0);
///    the end of the stream goes to [`handle_eof`](Self::handle_eof); an expired timer to
///    [`handle_timeout`](Self::handle_timeout).
/// 2. **Payloads and events.** Call [`poll_payload`](Self::poll_payload) until it returns
///    `None`, acting on each payload before the next call (the layer above may call
///    [`send_payload`](Self::send_payload) and
///    [`enable_delayed_compression`](Self::enable_delayed_compression) meanwhile); then
///    [`poll_event`](Self::poll_event) until `None`. Repeat both while either yields something: buffered input is processed
///    inside `poll_payload`, one upper-layer payload at a time, and pauses while events pile
///    up or a host key decision is pending.
/// 3. **Output.** [`poll_transmit`](Self::poll_transmit) appends the bytes to write.
/// 4. **Timer.** Arm one timer for [`poll_timeout`](Self::poll_timeout).
///
/// Commands ([`send_payload`](Self::send_payload), [`rekey`](Self::rekey),
/// [`disconnect`](Self::disconnect), [`host_key_decided`](Self::host_key_decided)) may come at
/// any time; follow them with steps 2–4.
///
/// # Payloads
///
/// The transport handles its own messages (1–4, 7, 20–49, PING/PONG) and passes up
/// `SSH_MSG_SERVICE_REQUEST`/`SSH_MSG_SERVICE_ACCEPT` (5, 6) and every known message from 50
/// on: the layer above owns services. Unknown message numbers get `SSH_MSG_UNIMPLEMENTED`
/// here. Going down, [`send_payload`](Self::send_payload) takes messages 5, 6 and 50–255
/// except PING/PONG; while a key exchange runs (and before the first one ends) they wait in a
/// bounded queue.
///
/// # Errors
///
/// A fatal error sends `SSH_MSG_DISCONNECT` with [`Error::disconnect_reason`], moves to the
/// closed state, and is reported once as [`Event::Disconnected`] (and by the `handle_*` call
/// that found it).
pub struct Transport {
    side: Side,
    config: Role,
    rng: Box<dyn SecureRandom>,
    now: Option<Instant>,
    our_line: Vec<u8>,
    peer_line: Option<Vec<u8>>,
    reader: PacketReader,
    writer: PacketWriter,
    state: State,
    session: Option<Session>,
    queue: SendQueue,
    events: VecDeque<Event>,
    /// An upper-layer payload decoded and not yet taken by `poll_payload`, and its sequence
    /// number.
    pending: Option<(PayloadLocation, u32)>,
    /// A copy of the transport message being handled, and a buffer to build ours in.
    scratch: Vec<u8>,
    compression: CompressionState,
    rekey: RekeySchedule,
    /// Rekey limits set for this connection, over the configuration's.
    rekey_limits: Option<RekeyLimits>,
    peer_extensions: PeerExtensions,
}

/// The configuration, by side.
#[derive(Clone)]
enum Role {
    Client(Arc<ClientConfig>),
    Server(Arc<ServerConfig>),
}

/// What the first key exchange established, and the algorithms of the last one.
#[derive(Debug)]
struct Session {
    id: Vec<u8>,
    strict: bool,
    negotiated: Negotiated,
    /// Client: the host key accepted in the initial exchange, required again on rekeys.
    host_key: Option<PublicKey>,
}

/// Delayed compression (`zlib@openssh.com`): whether user authentication has succeeded as
/// seen by each direction, and the compression method currently negotiated for each.
#[derive(Debug, Default)]
struct CompressionState {
    authenticated_in: bool,
    authenticated_out: bool,
    method_in: String,
    method_out: String,
}

/// When we next rekey on our own.
#[derive(Debug, Default)]
struct RekeySchedule {
    next_at: Option<Instant>,
    max_bytes_in: u64,
    max_bytes_out: u64,
}

/// What the peer told us in `SSH_MSG_EXT_INFO` and its KEXINIT.
#[derive(Debug, Default)]
struct PeerExtensions {
    /// Server side: the client's KEXINIT had `ext-info-c`.
    wants_ext_info: bool,
    /// Client side: `server-sig-algs`, validated as a name-list.
    server_sig_algs: Option<String>,
}

/// Upper-layer payloads (and delayed-compression markers) held while a key exchange runs:
/// records of `kind || uint32 length || bytes` in one reused buffer.
#[derive(Debug, Default)]
struct SendQueue {
    buf: Vec<u8>,
}

const QUEUED_PAYLOAD: u8 = 0;
const QUEUED_ENABLE_COMPRESSION: u8 = 1;

impl SendQueue {
    fn push(&mut self, kind: u8, payload: &[u8]) {
        self.push_parts(kind, payload, &[]);
    }

    fn push_parts(&mut self, kind: u8, head: &[u8], tail: &[u8]) {
        let len = u32::try_from(head.len() + tail.len()).unwrap_or(u32::MAX);
        self.buf.push(kind);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(tail);
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

impl Transport {
    /// A client transport. The identification line and KEXINIT are ready to send at once.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`] if an algorithm list is empty or names something we do
    /// not implement, a limit is too small, or the identification breaks RFC 4253 §4.2.
    pub fn client(config: Arc<ClientConfig>, rng: Box<dyn SecureRandom>) -> Result<Self, Error> {
        let line = config.check()?;
        Self::new(Side::Client, Role::Client(config), line, rng)
    }

    /// A server transport. The identification line and KEXINIT are ready to send at once,
    /// before any input, as OpenSSH does.
    ///
    /// # Errors
    ///
    /// As [`Transport::client`], and also when no host key can make any configured host key
    /// algorithm.
    pub fn server(config: Arc<ServerConfig>, rng: Box<dyn SecureRandom>) -> Result<Self, Error> {
        let line = config.check()?;
        Self::new(Side::Server, Role::Server(config), line, rng)
    }

    fn new(
        side: Side,
        config: Role,
        line: String,
        rng: Box<dyn SecureRandom>,
    ) -> Result<Self, Error> {
        let mut transport = Self {
            side,
            config,
            rng,
            now: None,
            our_line: line.into_bytes(),
            peer_line: None,
            reader: PacketReader::new(),
            writer: PacketWriter::new(),
            state: State::Closed,
            session: None,
            queue: SendQueue::default(),
            events: VecDeque::new(),
            pending: None,
            scratch: Vec::new(),
            compression: CompressionState::default(),
            rekey: RekeySchedule::default(),
            rekey_limits: None,
            peer_extensions: PeerExtensions::default(),
        };
        let mut banner = transport.our_line.clone();
        banner.extend_from_slice(b"\r\n");
        transport.writer.write_raw(&banner);
        let our_kexinit = transport.send_kexinit()?;
        transport.state = State::ExpectVersion(state::ExpectVersion::new(our_kexinit));
        Ok(transport)
    }

    /// Takes bytes received from the peer, and processes what it can.
    ///
    /// # Errors
    ///
    /// The fatal error the bytes caused (also reported as [`Event::Disconnected`]);
    /// [`Error::ConnectionClosed`] after the connection closed; and, without consuming
    /// anything, [`LocalMisuse::InputBufferFull`] when `bytes` is longer than
    /// [`Self::input_capacity`].
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        if bytes.len() > self.input_capacity() {
            return Err(LocalMisuse::InputBufferFull.into());
        }
        self.now = Some(now);
        self.reader.push(bytes);
        self.process()
    }

    /// Lends space for up to `max` wire bytes at the end of the input buffer, to read from the
    /// socket straight into it (sparing [`Self::handle_input`]'s copy); then
    /// [`Self::input_written`] takes the bytes read. Never longer than
    /// [`Self::input_capacity`]: empty when that is 0 (stop reading) or the connection closed.
    pub fn input_buffer(&mut self, max: usize) -> &mut [u8] {
        let want = max.min(self.input_capacity());
        if want == 0 {
            return &mut [];
        }
        self.reader.lend(want)
    }

    /// `n` bytes were read into the start of the space [`Self::input_buffer`] lent last (never
    /// more than its length counts): processes them as [`Self::handle_input`] does.
    ///
    /// # Errors
    ///
    /// As [`Self::handle_input`].
    pub fn input_written(&mut self, now: Instant, n: usize) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        self.now = Some(now);
        self.reader.filled(n);
        self.process()
    }

    /// The peer closed its half of the stream. Ends the connection: cleanly if it ended
    /// between packets ([`Error::ConnectionClosed`]), as truncated inside one.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.now = Some(now);
        let _ = self.process();
        if self.is_closed() {
            return;
        }
        let error = if self.reader.buffered() > 0 {
            Error::InvalidMessage(InvalidMessage::Truncated)
        } else {
            Error::ConnectionClosed
        };
        self.close(error, Initiator::Remote);
    }

    /// Replaces the configuration's rekey limits for this connection (sshd's `RekeyLimit` from a
    /// `Match` block): the byte limits apply to the keys in use at once, the time limit runs
    /// from `now`.
    pub fn set_rekey_limits(&mut self, now: Instant, limits: RekeyLimits) {
        self.rekey_limits = Some(limits);
        if let Some(session) = &self.session {
            let (out, inn) = match self.side {
                Side::Client => (&session.negotiated.cipher_c2s, &session.negotiated.cipher_s2c),
                Side::Server => (&session.negotiated.cipher_s2c, &session.negotiated.cipher_c2s),
            };
            let (out, inn) = (out.clone(), inn.clone());
            self.rekey.max_bytes_out = self.rekey_bytes(&out);
            self.rekey.max_bytes_in = self.rekey_bytes(&inn);
        }
        self.rekey.next_at = limits.time.and_then(|d| now.checked_add(d));
    }

    /// Handles the passing of time: starts a time-based rekey when it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if let Err(e) = self.check_rekey_limits() {
            self.fail(e);
        }
        let _ = self.process();
    }

    /// Copies the next upper-layer payload (message number first) into `out`, replacing its
    /// contents, and returns its message number and sequence number; `None` when there is none
    /// yet. Buffered input is processed here, one packet at a time, so act on each payload
    /// before calling again. `out` keeps its capacity, so a reused buffer makes this
    /// allocation-free.
    pub fn poll_payload(&mut self, out: &mut Vec<u8>) -> Option<Incoming> {
        if self.pending.is_none() {
            let _ = self.process();
        }
        let (location, seq) = self.pending.take()?;
        out.clear();
        out.extend_from_slice(self.reader.payload(&location));
        self.reader.release();
        out.first().map(|&t| Incoming { msg_type: MessageType(t), seq })
    }

    /// As [`poll_payload`](Self::poll_payload), but lends the payload to `f` where it was
    /// decrypted, without copying it, when `lend` accepts its message number and no event waits
    /// to be polled before it. `None` when nothing was lent: the payload, if any, stays for
    /// `poll_payload`.
    pub(crate) fn lend_payload<R>(
        &mut self,
        lend: impl FnOnce(MessageType) -> bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        if self.pending.is_none() {
            let _ = self.process();
        }
        if !self.events.is_empty() {
            return None;
        }
        let (location, _) = self.pending.as_ref()?;
        let payload = self.reader.payload(location);
        if !lend(MessageType(*payload.first()?)) {
            return None;
        }
        let result = f(payload);
        self.pending = None;
        self.reader.release();
        Some(result)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the bytes to send to `out` (swapping buffers without copying when `out` is
    /// empty, so reuse one buffer and clear it after each write).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.writer.take_output(out);
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Established if self.compression.authenticated_in => self.rekey.next_at,
            _ => None,
        }
    }

    /// Sends an upper-layer payload (message number first): `SSH_MSG_SERVICE_REQUEST`,
    /// `SSH_MSG_SERVICE_ACCEPT`, or a message numbered 50 or more (except PING/PONG, which are
    /// the transport's). Before the first key exchange ends, and while any runs, the payload
    /// waits in a bounded queue.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidPayload`] for an empty payload or a transport message number,
    /// [`LocalMisuse::PayloadTooLarge`] over [`MAX_PAYLOAD_LEN`],
    /// [`LocalMisuse::SendQueueFull`] when [`Self::can_send`] is false (nothing is queued; the
    /// connection stays up), [`Error::ConnectionClosed`] after close.
    pub fn send_payload(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        let Some(&first) = payload.first() else {
            return Err(LocalMisuse::InvalidPayload.into());
        };
        if !is_upper_layer_number(MessageType(first)) {
            return Err(LocalMisuse::InvalidPayload.into());
        }
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(LocalMisuse::PayloadTooLarge.into());
        }
        if !self.can_send() {
            return Err(LocalMisuse::SendQueueFull.into());
        }
        self.send_payload_parts(payload, &[])
    }

    /// Sends the upper-layer payload `head || tail` without joining it first (a channel's data
    /// goes from the caller's buffer straight into the packet buffer), whatever
    /// [`Self::can_send`] says: the caller bounds what it sends by [`Self::send_room`].
    ///
    /// # Errors
    ///
    /// As [`Self::send_payload`], except [`LocalMisuse::SendQueueFull`].
    pub(crate) fn send_payload_parts(&mut self, head: &[u8], tail: &[u8]) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        let first = head.first().or(tail.first()).copied();
        let Some(first) = first else {
            return Err(LocalMisuse::InvalidPayload.into());
        };
        if !is_upper_layer_number(MessageType(first)) {
            return Err(LocalMisuse::InvalidPayload.into());
        }
        if head.len() + tail.len() > MAX_PAYLOAD_LEN {
            return Err(LocalMisuse::PayloadTooLarge.into());
        }
        if !self.state.outgoing_keys_ready() || !self.queue.is_empty() {
            self.queue.push_parts(QUEUED_PAYLOAD, head, tail);
            return Ok(());
        }
        let result = self
            .writer
            .write_packet_parts(head, tail, &mut *self.rng)
            .and_then(|()| self.check_rekey_limits());
        result.inspect_err(|e| self.fail(e.clone()))
    }

    /// How many more bytes [`Self::send_payload`] takes before [`Self::can_send`] turns false
    /// (0 once closed).
    pub(crate) fn send_room(&self) -> usize {
        if self.is_closed() {
            return 0;
        }
        self.limits().max_send_queue.saturating_sub(self.send_queue_len())
    }

    /// Starts a key re-exchange now (`now` is the current time). Does nothing if one is
    /// already running.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotReady`] before the first key exchange ended,
    /// [`Error::ConnectionClosed`] after close, or the fatal error of sending.
    pub fn rekey(&mut self, now: Instant) -> Result<(), Error> {
        self.now = Some(now);
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        if self.session.is_none() {
            return Err(LocalMisuse::NotReady.into());
        }
        if !matches!(self.state, State::Established) {
            return Ok(());
        }
        self.start_rekey().inspect_err(|e| self.fail(e.clone()))
    }

    /// Ends the connection with `SSH_MSG_DISCONNECT`. Reported as [`Event::Disconnected`] with
    /// [`Error::DisconnectSent`]. Does nothing after close.
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        if self.is_closed() {
            return;
        }
        self.send_disconnect(reason, description);
        let error = Error::DisconnectSent { reason, description: description.to_owned() };
        self.close(error, Initiator::Local);
    }

    /// Ends the connection because the layer above found `error` in what the peer sent:
    /// sends `SSH_MSG_DISCONNECT` with [`Error::disconnect_reason`] (if it has one), and
    /// reports the error as [`Event::Disconnected`]. Does nothing after close.
    pub fn disconnect_with_error(&mut self, error: Error) {
        self.fail(error);
    }

    /// Answers a payload the layer above does not know with `SSH_MSG_UNIMPLEMENTED` naming
    /// its sequence number (from [`Incoming::seq`]), as RFC 4253 §11.4 asks. The transport
    /// already answers message numbers no layer defines; this is for the rest.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionClosed`] after close, or the fatal error of sending.
    pub fn send_unimplemented(&mut self, seq: u32) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        self.send_message(&Unimplemented { seq }).inspect_err(|e| self.fail(e.clone()))
    }

    /// Client only: the answer to [`Event::HostKeyReceived`]. Accepting continues the key
    /// exchange; refusing disconnects with `HOST_KEY_NOT_VERIFIABLE`
    /// ([`Error::HostKeyRejected`]).
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotReady`] if no host key decision is pending.
    pub fn host_key_decided(&mut self, accept: bool) -> Result<(), Error> {
        let State::ExpectHostKeyDecision(_) = &self.state else {
            return Err(LocalMisuse::NotReady.into());
        };
        if !accept {
            self.fail(Error::HostKeyRejected);
            return Ok(());
        }
        let State::ExpectHostKeyDecision(st) =
            std::mem::replace(&mut self.state, State::Transition)
        else {
            return Err(LocalMisuse::NotReady.into()); // invariant: matched just above
        };
        match self.finish_client_kex(*st) {
            Ok(next) => {
                self.state = next;
                Ok(())
            }
            Err(e) => {
                self.fail(e);
                Ok(())
            }
        }
    }

    /// Tells the transport that user authentication succeeded: the server calls this right
    /// after sending `SSH_MSG_USERAUTH_SUCCESS`, the client right after receiving it (before
    /// polling the next payload), whatever compression was negotiated. It turns on
    /// `zlib@openssh.com` where that was negotiated (it stays on across rekeys), and, as in
    /// OpenSSH, lets the rekey limits (bytes, packets, time) start rekeys from now on; before
    /// it only [`Self::rekey`] does.
    ///
    /// Each direction switches where the peer switches. Ours: at once, or, when a key exchange
    /// holds the payloads back, right after the USERAUTH_SUCCESS (or the client's next
    /// payload) leaves. The peer's: on the client at once (the server compresses from the
    /// packet after its success); on the server at once if the success went out now, else from
    /// the client's next NEWKEYS (until the client sees the success, which waits behind our
    /// NEWKEYS, it sends nothing else compressed).
    pub fn enable_delayed_compression(&mut self) {
        if self.is_closed() {
            return;
        }
        let outgoing_now = self.state.outgoing_keys_ready() && self.queue.is_empty();
        self.compression.authenticated_in = true;
        let incoming_now = self.side == Side::Client || outgoing_now;
        let delayed_in = algorithms::is_delayed_compression(&self.compression.method_in);
        if incoming_now && delayed_in && !self.reader.is_decompressing() {
            match algorithms::decompressor(&self.compression.method_in) {
                Ok(d) => self.reader.set_decompressor(d),
                Err(e) => return self.fail(e.into()),
            }
        }
        if !outgoing_now {
            self.queue.push(QUEUED_ENABLE_COMPRESSION, &[]);
        } else if let Err(e) = self.enable_outgoing_compression() {
            self.fail(e);
        }
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The session identifier: the exchange hash of the first key exchange, once it is done.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session.as_ref().map(|s| &s.id[..])
    }

    /// The algorithms of the last completed key exchange.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.session.as_ref().map(|s| &s.negotiated)
    }

    /// Whether the initial key exchange negotiated strict KEX.
    pub fn is_strict_kex(&self) -> Option<bool> {
        self.session.as_ref().map(|s| s.strict)
    }

    /// The host key of the initial key exchange: on a client the server's key it accepted, on
    /// a server the key it proved (user authentication binds signatures to it).
    pub fn host_key(&self) -> Option<&PublicKey> {
        self.session.as_ref().and_then(|s| s.host_key.as_ref())
    }

    /// The peer's identification line, without CR LF, once received. It is the peer's text:
    /// sanitize before display.
    pub fn peer_identification(&self) -> Option<&[u8]> {
        self.peer_line.as_deref()
    }

    /// Our identification line, without CR LF.
    pub fn identification(&self) -> &[u8] {
        &self.our_line
    }

    /// Client: the signature algorithms the server accepts for public key authentication,
    /// from `server-sig-algs` in its `SSH_MSG_EXT_INFO` (RFC 8308 §3.1).
    pub fn server_sig_algs(&self) -> Option<NameList<'_>> {
        let list = self.peer_extensions.server_sig_algs.as_deref()?;
        NameList::parse(list.as_bytes()).ok()
    }

    /// Whether the first key exchange has completed.
    pub fn is_established(&self) -> bool {
        self.session.is_some() && !self.is_closed()
    }

    /// Whether a key exchange is running (the first one included).
    pub fn is_kex_in_progress(&self) -> bool {
        !matches!(self.state, State::Established | State::Closed)
    }

    /// Whether the connection has closed. Send what [`Self::poll_transmit`] still holds, then
    /// close the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether [`Self::send_payload`] will accept a payload now: the connection is open and
    /// fewer than [`Limits::max_send_queue`] bytes are waiting (queued during a key exchange or
    /// not yet taken by [`Self::poll_transmit`]). When false, stop producing until output
    /// drains or [`Event::KexCompleted`].
    pub fn can_send(&self) -> bool {
        !self.is_closed() && self.send_queue_len() < self.limits().max_send_queue
    }

    /// Bytes waiting to go out: payloads queued during a key exchange plus packets not yet
    /// taken by [`Self::poll_transmit`].
    pub fn send_queue_len(&self) -> usize {
        self.queue.len() + self.writer.pending()
    }

    /// How many more bytes [`Self::handle_input`] accepts now. Read at most this much from the
    /// socket; at 0, stop reading until payloads and events have been polled.
    pub fn input_capacity(&self) -> usize {
        if self.is_closed() {
            return 0;
        }
        self.limits().max_input_buffer.saturating_sub(self.reader.buffered())
    }

    fn limits(&self) -> &Limits {
        match &self.config {
            Role::Client(c) => &c.limits,
            Role::Server(c) => &c.limits,
        }
    }

    fn rekey_limits(&self) -> &RekeyLimits {
        if let Some(limits) = &self.rekey_limits {
            return limits;
        }
        match &self.config {
            Role::Client(c) => &c.rekey,
            Role::Server(c) => &c.rekey,
        }
    }

    fn algorithms(&self) -> &Preferences {
        match &self.config {
            Role::Client(c) => &c.algorithms,
            Role::Server(c) => &c.algorithms,
        }
    }

    /// Processes buffered input until it runs out, an upper-layer payload is waiting, the
    /// event queue is full, a host key decision is pending, or the connection closes.
    fn process(&mut self) -> Result<(), Error> {
        loop {
            if self.is_closed()
                || self.pending.is_some()
                || self.events.len() >= self.limits().max_events
                || matches!(self.state, State::ExpectHostKeyDecision(_))
            {
                return Ok(());
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    self.fail(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// Takes one identification line or packet from the input. `Ok(false)` when more bytes
    /// are needed.
    fn step(&mut self) -> Result<bool, Error> {
        if let State::ExpectVersion(_) = self.state {
            return self.read_version();
        }
        let Some(packet) = self.reader.next_packet()? else {
            return Ok(false);
        };
        let payload = self.reader.payload(&packet.payload);
        let msg_type = MessageType(*payload.first().ok_or(InvalidMessage::EmptyMessage)?);
        if self.session.is_some() && is_upper_layer_number(msg_type) && msg_type.name().is_some() {
            self.pending = Some((packet.payload, packet.seq));
            self.check_rekey_limits()?;
            return Ok(true);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(payload);
        self.reader.release();
        let result = self.handle_message(packet.seq, msg_type, &scratch);
        self.scratch = scratch;
        result?;
        self.check_rekey_limits()?;
        Ok(true)
    }

    /// Handles a transport message (anything not passed up) in the current state.
    fn handle_message(
        &mut self,
        seq: u32,
        msg_type: MessageType,
        payload: &[u8],
    ) -> Result<(), Error> {
        if msg_type == MessageType::DISCONNECT {
            let msg = Disconnect::decode(payload)?;
            return Err(Error::DisconnectReceived {
                reason: msg.reason,
                description: sanitize(msg.description),
            });
        }
        let state = std::mem::replace(&mut self.state, State::Transition);
        let next = self.handle_in_state(state, seq, msg_type, payload)?;
        self.state = next;
        Ok(())
    }

    /// Messages valid whenever the peer is not in the middle of a strict initial key
    /// exchange: IGNORE, DEBUG, UNIMPLEMENTED, and (once keys exist) EXT_INFO and PING/PONG.
    /// Unknown numbers get UNIMPLEMENTED; anything else is out of place.
    fn handle_general(
        &mut self,
        seq: u32,
        msg_type: MessageType,
        payload: &[u8],
        in_kex: bool,
    ) -> Result<(), Error> {
        match msg_type {
            MessageType::IGNORE => Ok(()),
            MessageType::DEBUG => {
                let msg = DebugMsg::decode(payload)?;
                self.events.push_back(Event::DebugReceived {
                    always_display: msg.always_display,
                    message: sanitize(msg.message),
                });
                Ok(())
            }
            MessageType::UNIMPLEMENTED => {
                let msg = Unimplemented::decode(payload)?;
                self.events.push_back(Event::UnimplementedReceived { seq: msg.seq });
                Ok(())
            }
            MessageType::EXT_INFO if self.session.is_some() => self.handle_ext_info(payload),
            MessageType::PING if self.session.is_some() => {
                let msg = Ping::decode(payload)?;
                // Like OpenSSH since 9.9p2, PINGs during a key exchange get no answer, so
                // that nothing queues up while output is blocked (CVE-2025-26466).
                if in_kex {
                    return Ok(());
                }
                self.bound_replies()?;
                self.send_message(&Pong { data: msg.data })
            }
            MessageType::PONG if self.session.is_some() => {
                Pong::decode(payload).map(|_| ()).map_err(Error::from)
            }
            t if t.name().is_some() && t != MessageType::NEWCOMPRESS => {
                Err(PeerMisbehaved::UnexpectedMessage(t).into())
            }
            _ => {
                self.bound_replies()?;
                self.send_message(&Unimplemented { seq })
            }
        }
    }

    /// Refuses to answer a peer that keeps making us reply while not reading our output.
    fn bound_replies(&self) -> Result<(), Error> {
        if self.writer.pending() >= self.limits().max_send_queue {
            return Err(PeerMisbehaved::BufferLimitExceeded.into());
        }
        Ok(())
    }

    fn handle_ext_info(&mut self, payload: &[u8]) -> Result<(), Error> {
        let msg = ExtInfo::decode(payload)?;
        if self.side == Side::Client {
            if let Some(value) = msg.find("server-sig-algs") {
                let list = NameList::parse(value)?;
                self.peer_extensions.server_sig_algs = Some(list.as_str().to_owned());
            }
        }
        let extensions =
            msg.extensions.iter().map(|e| (e.name.to_owned(), e.value.to_vec())).collect();
        self.events.push_back(Event::ExtInfoReceived { extensions });
        Ok(())
    }

    /// Encodes a transport message and sends it now, whatever the state.
    fn send_message<'m>(&mut self, msg: &impl Message<'m>) -> Result<(), Error> {
        let mut buf = std::mem::take(&mut self.scratch);
        let start = buf.len();
        msg.encode(&mut buf);
        let result = self.writer.write_packet(buf.get(start..).unwrap_or_default(), &mut *self.rng);
        buf.truncate(start);
        self.scratch = buf;
        result
    }

    /// Sends payloads queued during a key exchange, now that outgoing keys are in place.
    fn flush_queue(&mut self) -> Result<(), Error> {
        let queue = std::mem::take(&mut self.queue.buf);
        let mut rest = &queue[..];
        let mut result = Ok(());
        while let [kind, a, b, c, d, tail @ ..] = rest {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            let (payload, tail) = tail.split_at(len.min(tail.len()));
            rest = tail;
            result = match *kind {
                QUEUED_ENABLE_COMPRESSION => self.enable_outgoing_compression(),
                _ => self.writer.write_packet(payload, &mut *self.rng),
            };
            if result.is_err() {
                break;
            }
        }
        let mut queue = queue;
        queue.clear();
        self.queue.buf = queue;
        result
    }

    /// Marks the outgoing direction as past authentication, starting delayed compression now
    /// if it is the current method.
    fn enable_outgoing_compression(&mut self) -> Result<(), Error> {
        self.compression.authenticated_out = true;
        if !self.writer.is_compressing()
            && algorithms::is_delayed_compression(&self.compression.method_out)
        {
            self.writer.set_compressor(algorithms::compressor(&self.compression.method_out)?);
        }
        Ok(())
    }

    /// Starts a rekey if a byte, packet or time limit has been reached. Like OpenSSH, only after
    /// user authentication: before it the limits cannot be reached honestly, and a rekey
    /// crossing USERAUTH_SUCCESS would upset delayed compression.
    fn check_rekey_limits(&mut self) -> Result<(), Error> {
        if !matches!(self.state, State::Established) || !self.compression.authenticated_in {
            return Ok(());
        }
        let packets = self.rekey_limits().packets;
        let due = self.writer.counters.bytes >= self.rekey.max_bytes_out
            || self.reader.counters.bytes >= self.rekey.max_bytes_in
            || self.writer.counters.packets >= packets
            || self.reader.counters.packets >= packets
            || self.rekey.next_at.zip(self.now).is_some_and(|(at, now)| at <= now);
        if due {
            self.start_rekey()?;
        }
        Ok(())
    }

    /// Sends DISCONNECT (or, before the peer's identification line, nothing more) for `error`
    /// and closes.
    fn fail(&mut self, error: Error) {
        if self.is_closed() {
            return;
        }
        let initiator = match error {
            Error::DisconnectReceived { .. } => Initiator::Remote,
            _ => Initiator::Local,
        };
        if let State::ExpectVersion(_) = self.state {
            if let Some(text) = version::error_text(&error) {
                self.writer.write_raw(text);
            }
        } else if let Some(reason) = error.disconnect_reason() {
            let description = error.to_string();
            self.send_disconnect(reason, &description);
        }
        self.close(error, initiator);
    }

    fn send_disconnect(&mut self, reason: DisconnectReason, description: &str) {
        let msg = Disconnect { reason, description: description.as_bytes(), language: b"" };
        // A failure here changes nothing: the connection is closing either way.
        let _ = self.send_message(&msg);
    }

    fn close(&mut self, error: Error, initiator: Initiator) {
        self.state = State::Closed;
        self.pending = None;
        self.queue.buf.clear();
        self.events.push_back(Event::Disconnected { error, initiator });
    }
}

/// The test kit's one hook (feature `testing`, or a `cfg(fuzzing)` build): the malformed-input
/// corpus and the fuzz targets send packets no honest peer sends.
#[cfg(any(feature = "testing", fuzzing))]
impl Transport {
    /// Sends `payload` as a packet now, whatever it is and whatever the state, under the
    /// current keys and the next sequence number.
    ///
    /// # Errors
    ///
    /// The error of writing the packet (a payload over [`MAX_PAYLOAD_LEN`]).
    pub fn inject_raw_packet(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.writer.write_packet(payload, &mut *self.rng)
    }
}

/// Hooks for the back-to-back suite: reaching states and damage no honest peer produces.
#[cfg(test)]
impl Transport {
    /// Sends `payload` as a packet now, whatever it is and whatever the state.
    pub(crate) fn send_raw_for_test(&mut self, payload: &[u8]) {
        self.writer.write_packet(payload, &mut *self.rng).unwrap();
    }

    /// Damages the framing of the next packet this side writes (its MAC stays valid).
    pub(crate) fn tamper_next_packet(&mut self, tamper: packet::Tamper) {
        self.writer.tamper = Some(tamper);
    }

    /// The next incoming and outgoing sequence numbers.
    pub(crate) fn sequence_numbers(&self) -> (u32, u32) {
        (self.reader.seq.next(), self.writer.seq.next())
    }

    /// Sets the next incoming sequence number.
    pub(crate) fn set_incoming_seq(&mut self, seq: u32) {
        self.reader.seq.set_next(seq);
    }

    /// Whether incoming and outgoing payloads are (de)compressed.
    pub(crate) fn compression_active(&self) -> (bool, bool) {
        (self.reader.is_decompressing(), self.writer.is_compressing())
    }

    /// The name of the current state.
    pub(crate) fn state_name(&self) -> String {
        format!("{:?}", self.state)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("side", &self.side)
            .field("state", &self.state)
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .field("queued", &self.queue.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// Message numbers the layers above send and receive: service request/accept and 50 onwards,
/// except OpenSSH's PING/PONG, which belong to the transport.
fn is_upper_layer_number(t: MessageType) -> bool {
    t == MessageType::SERVICE_REQUEST
        || t == MessageType::SERVICE_ACCEPT
        || (t.0 >= 50 && t != MessageType::PING && t != MessageType::PONG)
}

/// Peer text made safe to log or show: invalid UTF-8 replaced, control characters removed,
/// and at most 1024 bytes kept.
fn sanitize(text: &[u8]) -> String {
    const MAX_LEN: usize = 1024;
    let mut out = String::new();
    for c in String::from_utf8_lossy(text).chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_LEN {
            break;
        }
        out.push(c);
    }
    out
}

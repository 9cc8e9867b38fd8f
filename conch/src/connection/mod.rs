//! The SSH connection protocol (RFC 4254, with OpenSSH's `PROTOCOL` extensions) as a sans-IO
//! state machine, the same for servers and clients.
//!
//! [`Connection`] multiplexes channels over one authenticated transport. It takes decrypted
//! payloads of message numbers 80–127 from the transport ([`Connection::handle_payload`]),
//! produces payloads for the transport to send ([`Connection::poll_payload`]), reports what
//! happened as [`Event`]s ([`Connection::poll_event`]), and takes the application's decisions as
//! commands ([`Connection::open_channel`], [`Connection::accept_channel`],
//! [`Connection::send_data`], [`Connection::close`], ...). It reads no clock, does no I/O and
//! never blocks: every slow decision (may this channel open? may this pty be allocated?) is an
//! event out and a command back.
//!
//! # Flow control
//!
//! Each channel has two windows (RFC 4254 §5.2).
//!
//! - **Receiving.** We advertise [`Config::window_size`] and [`Config::max_packet_size`]. What
//!   the peer sends is kept in the channel's receive buffer (one per [`Stream`]) until the
//!   application reads it with [`Connection::recv`], or with [`Connection::peek`] and
//!   [`Connection::consume`]. The window is handed back (`SSH_MSG_CHANNEL_WINDOW_ADJUST`) only
//!   for bytes the application has consumed, so a slow consumer stops the peer and at most
//!   `window_size` bytes are ever buffered per channel. Data beyond the window, a packet larger
//!   than our maximum, and a window adjust that would pass 2^32−1 end the connection.
//! - **Sending.** [`Connection::send_data`] takes at most what the peer's window allows and what
//!   fits in the output queue ([`Config::max_queued_output`]), splits it into packets no larger
//!   than the peer's maximum packet size, and returns how much it took. When it took less than
//!   it was given, an [`Event::Writable`] follows once more can be sent. Nothing is buffered
//!   beyond those bounds.
//!
//! # Memory bounds
//!
//! Per channel: at most `window_size` received bytes buffered across its two streams; each
//! stream's deque keeps the capacity it grew to (it grows by doubling, so under twice
//! `window_size`, and exactly `window_size` for the default power-of-two windows), so steady
//! traffic allocates nothing. Plus the requests below.
//! Per connection: at most [`Config::max_channels`] channels; an output queue of at most
//! `max_queued_output` bytes of data plus [`OUTPUT_HEADROOM`] bytes of control messages; at most
//! [`Config::max_pending_requests`] requests from the peer that are queued as events or await
//! the application's reply, each holding at most one payload (bounded by the transport's packet
//! limit). The event queue holds a bounded number of events per channel (each kind of channel
//! event is deduplicated) plus the pending requests.
//!
//! # Call order
//!
//! After each [`Connection::handle_payload`] and after any command:
//!
//! 1. [`Connection::poll_payload`] until it returns `false`, handing each payload to the
//!    transport;
//! 2. [`Connection::poll_event`] until it returns `None`, acting on each event (which may issue
//!    more commands, so go back to 1).
//!
//! Poll after every payload, not after a batch: a request from the peer counts against
//! [`Config::max_pending_requests`] until its event has been polled (and, if it wants a reply,
//! until answered), and its replies wait in the output queue until polled.
//!
//! Answers to [`Event::ChannelOpenRequested`] and to requests with a `reply` may come later, in
//! any order: replies still leave in the order the requests arrived, as RFC 4254 requires.
//!
//! A message number in 80–127 that RFC 4254 does not assign is not ours to answer: the
//! transport should check [`Connection::handles`] and reply `SSH_MSG_UNIMPLEMENTED` itself, since
//! only it knows the sequence number. An error from `handle_payload` is terminal: send
//! `SSH_MSG_DISCONNECT` with [`Error::disconnect_reason`] and drop the connection.

mod channel;
mod incoming;
pub mod msgs;
mod queue;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;

use self::channel::{Channel, Half, State};
use self::msgs::{
    ChannelClose, ChannelData, ChannelEof, ChannelExtendedData, ChannelKind, ChannelOpen,
    ChannelOpenConfirmation, ChannelOpenFailure, ChannelRequest, ChannelRequestHeader,
    ChannelWindowAdjust, GlobalReply, GlobalRequest, GlobalRequestHeader, OpenFailureReason,
    ReplyFormat,
};
use self::queue::OutQueue;
use crate::error::{Error, LocalMisuse};
use crate::wire::{MessageType, Writer};

/// The largest data field we put in, or let the peer put in, one `SSH_MSG_CHANNEL_DATA`: well
/// inside the transport's 256 KiB packet limit, with room for headers, padding and MAC.
pub const MAX_CHANNEL_PACKET: u32 = 128 * 1024;

/// The most channels one connection may have: channel numbers carry the slot in their low 16
/// bits.
pub const MAX_CHANNELS_LIMIT: u32 = 1 << SLOT_BITS;

/// How far control messages (replies, EOF, CLOSE, requests) may take the output queue beyond
/// [`Config::max_queued_output`]. Past that, a peer that keeps asking for replies while nothing
/// drains the queue is disconnected, and local commands fail with
/// [`LocalMisuse::OutputQueueFull`].
pub const OUTPUT_HEADROOM: usize = 256 * 1024;

const SLOT_BITS: u32 = 16;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Generations use 15 bits so that channel numbers stay below 2^31, which OpenSSH requires of
/// the numbers it is sent (`channel_parse_id`).
const GENERATION_MASK: u16 = 0x7fff;

/// Which end of the connection we are: it decides which channel types and requests each side
/// may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Side {
    /// The end that authenticated and opens sessions.
    Client,
    /// The end that runs them.
    Server,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// The two data streams of a channel (RFC 4254 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Stream {
    /// `SSH_MSG_CHANNEL_DATA`: a session's standard input or output.
    Data,
    /// `SSH_MSG_CHANNEL_EXTENDED_DATA` with code 1: a session's standard error.
    Stderr,
}

/// Our number for a channel, as sent to the peer in its `sender channel` field.
///
/// Numbers are reused only after a channel is freed, and then with a new generation, so a stale
/// `ChannelId` never reaches another channel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(u32);

impl ChannelId {
    fn new(slot: u32, generation: u16) -> Self {
        Self(u32::from(generation & GENERATION_MASK) << SLOT_BITS | slot)
    }

    fn slot(self) -> usize {
        (self.0 & SLOT_MASK) as usize
    }

    fn generation(self) -> u16 {
        // invariant: the value is at most 15 bits.
        u16::try_from(self.0 >> SLOT_BITS).unwrap_or(u16::MAX)
    }

    /// The number on the wire.
    pub fn as_u32(self) -> u32 {
        self.0
    }

    /// An id for tests of code that keys tables by channel.
    #[cfg(test)]
    pub(crate) fn from_u32_for_tests(n: u32) -> Self {
        Self(n)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({}#{})", self.slot(), self.generation())
    }
}

/// Names a request awaiting a reply: one of the peer's that the application answers, or one of
/// ours whose answer an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

/// The connection layer's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The receive window we advertise for each channel, and the most we buffer for it
    /// (default 4 MiB, twice OpenSSH's 2 MiB). At least 1.
    pub window_size: u32,
    /// The largest data field we accept in one packet (default 64 KiB; OpenSSH uses 32 KiB).
    /// Between 1 and [`MAX_CHANNEL_PACKET`].
    pub max_packet_size: u32,
    /// The most channels open at once, in any state (default 128). Opens beyond it are refused
    /// with `SSH_OPEN_RESOURCE_SHORTAGE`. Between 1 and [`MAX_CHANNELS_LIMIT`].
    pub max_channels: u32,
    /// The most requests from the peer held at once: queued as events, or awaiting the
    /// application's reply (default 64). A peer that exceeds it is disconnected. Also bounds our
    /// own requests awaiting a reply, per channel and for global requests.
    pub max_pending_requests: usize,
    /// The most bytes of channel data waiting in the output queue (default 1 MiB). `send_data`
    /// takes no more than fits.
    pub max_queued_output: usize,
    /// Names of channel requests we do not know that the application answers itself. Other
    /// unknown requests are answered `SSH_MSG_CHANNEL_FAILURE` at once.
    pub app_channel_requests: Vec<String>,
    /// Names of global requests we do not know that the application answers itself. Other
    /// unknown requests are answered `SSH_MSG_REQUEST_FAILURE` at once.
    pub app_global_requests: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_size: 4 * 1024 * 1024,
            max_packet_size: 64 * 1024,
            max_channels: 128,
            max_pending_requests: 64,
            max_queued_output: 1024 * 1024,
            app_channel_requests: Vec::new(),
            app_global_requests: Vec::new(),
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        let valid = self.window_size >= 1
            && (1..=MAX_CHANNEL_PACKET).contains(&self.max_packet_size)
            && (1..=MAX_CHANNELS_LIMIT).contains(&self.max_channels)
            && self.max_pending_requests >= 1
            && self.max_queued_output >= 1;
        if valid {
            Ok(())
        } else {
            Err(LocalMisuse::InvalidConfig.into())
        }
    }
}

/// Something the application should know about or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer wants to open a channel. Answer with [`Connection::accept_channel`] or
    /// [`Connection::reject_channel`], now or later; until then the channel counts against
    /// [`Config::max_channels`].
    ChannelOpenRequested {
        /// Our number for it.
        id: ChannelId,
        /// What it is for.
        kind: ChannelKind,
    },
    /// A channel we opened was confirmed: data and requests may flow.
    ChannelOpened {
        /// The channel.
        id: ChannelId,
    },
    /// A channel we opened was refused. Its id is no longer valid.
    ChannelOpenFailed {
        /// The channel.
        id: ChannelId,
        /// The peer's reason.
        reason: OpenFailureReason,
        /// The peer's explanation.
        description: String,
    },
    /// Data arrived on a stream whose buffer was empty. Read it with [`Connection::recv`] (or
    /// [`Connection::peek`] and [`Connection::consume`]). This is edge-triggered: the next
    /// `DataReceived` for the stream comes only after its buffer has been read empty.
    DataReceived {
        /// The channel.
        id: ChannelId,
        /// Which stream.
        stream: Stream,
    },
    /// After a short [`Connection::send_data`], more can be sent now.
    Writable {
        /// The channel.
        id: ChannelId,
    },
    /// The peer will send no more data (`SSH_MSG_CHANNEL_EOF`). Bytes already buffered can
    /// still be read.
    EofReceived {
        /// The channel.
        id: ChannelId,
    },
    /// The peer closed the channel (`SSH_MSG_CHANNEL_CLOSE`). Read what is still buffered if you
    /// want it, then call [`Connection::close`]: the channel is freed once both sides have
    /// closed.
    CloseReceived {
        /// The channel.
        id: ChannelId,
    },
    /// Both sides have closed the channel. Its id is no longer valid.
    ChannelClosed {
        /// The channel.
        id: ChannelId,
    },
    /// The peer sent a channel request. If `reply` is `Some`, answer it with
    /// [`Connection::reply_request`]; if `None`, the peer wants no answer or it has already been
    /// given (unknown requests are refused at once unless listed in
    /// [`Config::app_channel_requests`]).
    RequestReceived {
        /// The channel.
        id: ChannelId,
        /// What was asked.
        request: ChannelRequest,
        /// How to answer, if an answer is owed.
        reply: Option<RequestId>,
    },
    /// The peer answered one of our channel requests.
    RequestAnswered {
        /// The channel.
        id: ChannelId,
        /// The request, as [`Connection::send_request`] returned it.
        request: RequestId,
        /// `SSH_MSG_CHANNEL_SUCCESS` or `SSH_MSG_CHANNEL_FAILURE`.
        success: bool,
    },
    /// The peer sent a global request. If `reply` is `Some`, answer it with
    /// [`Connection::reply_global_request`].
    GlobalRequestReceived {
        /// What was asked.
        request: GlobalRequest,
        /// How to answer, if an answer is owed.
        reply: Option<RequestId>,
    },
    /// The peer answered one of our global requests.
    GlobalRequestAnswered {
        /// The request, as [`Connection::send_global_request`] returned it.
        request: RequestId,
        /// The answer, decoded for the request it answers.
        reply: GlobalReply,
    },
}

/// One SSH connection's channels and requests, for either side.
///
/// API taxonomy (quinn's): the input is [`handle_payload`](Self::handle_payload); the outputs
/// are [`poll_payload`](Self::poll_payload) and [`poll_event`](Self::poll_event); everything
/// else is a command from the application. See the [module documentation](self) for the call
/// order, the flow-control contract and the memory bounds.
#[derive(Debug)]
pub struct Connection {
    side: Side,
    config: Config,
    slots: Vec<Slot>,
    /// Free slots, reused most recent first.
    free: Vec<u32>,
    /// Channels allocated, in any state.
    channel_count: u32,
    out: OutQueue,
    events: VecDeque<Event>,
    /// Channels whose consumed bytes may warrant a window adjust.
    adjust_pending: Vec<ChannelId>,
    /// Channels blocked by the output queue rather than by their window.
    queue_waiters: Vec<ChannelId>,
    /// The peer's global requests that want a reply, oldest first; `Some` once answered.
    incoming_global: VecDeque<(RequestId, Option<GlobalReply>)>,
    /// Our global requests that want a reply, oldest first, with the layout of their answer.
    outgoing_global: VecDeque<(RequestId, ReplyFormat)>,
    /// Peer requests counted against `max_pending_requests`: entries in the incoming reply
    /// queues plus request events without a reply still in the event queue.
    pending_requests: usize,
    next_request: u64,
    /// The peer (a client) sent `no-more-sessions@openssh.com`.
    no_more_sessions: bool,
    /// A terminal error has occurred.
    failed: bool,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u16,
    channel: Option<Channel>,
}

impl Connection {
    /// A connection layer for `side`, ready once the transport has authenticated the user.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`] if a [`Config`] value is out of range.
    pub fn new(side: Side, config: Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            side,
            config,
            slots: Vec::new(),
            free: Vec::new(),
            channel_count: 0,
            out: OutQueue::default(),
            events: VecDeque::new(),
            adjust_pending: Vec::new(),
            queue_waiters: Vec::new(),
            incoming_global: VecDeque::new(),
            outgoing_global: VecDeque::new(),
            pending_requests: 0,
            next_request: 0,
            no_more_sessions: false,
            failed: false,
        })
    }

    /// Whether `t` is a message this layer handles. The transport answers other numbers with
    /// `SSH_MSG_UNIMPLEMENTED` instead of passing them to [`handle_payload`](Self::handle_payload).
    pub fn handles(t: MessageType) -> bool {
        matches!(t.0, 80..=82 | 90..=100)
    }

    /// Handles one decrypted payload from the peer (message numbers 80–127).
    ///
    /// # Errors
    ///
    /// A decoding error or a protocol violation by the peer, each with its disconnect reason.
    /// Every error is terminal: later calls return [`Error::ConnectionClosed`].
    pub fn handle_payload(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.failed {
            return Err(Error::ConnectionClosed);
        }
        let result = self.dispatch(payload);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Appends the next payload to send to `out`; `false` when there is none. Window adjusts go
    /// first, then everything else in the order it was produced.
    pub fn poll_payload(&mut self, out: &mut Vec<u8>) -> bool {
        while let Some(id) = self.adjust_pending.pop() {
            let Some(channel) = self.channel_mut(id) else { continue };
            channel.recv.adjust_queued = false;
            if let Some(bytes_to_add) = channel.take_adjust() {
                let recipient = channel.remote_id;
                ChannelWindowAdjust { recipient, bytes_to_add }.encode(&mut Writer::new(out));
                return true;
            }
        }
        if !self.out.pop_into(out) {
            return false;
        }
        self.wake_queue_waiters();
        true
    }

    /// As [`poll_payload`](Self::poll_payload), but lends the next payload to `send` rather
    /// than copying it out of the queue (a window adjust is written to `scratch` first, which is
    /// cleared). `None` when there is none.
    pub fn poll_payload_with<R>(
        &mut self,
        scratch: &mut Vec<u8>,
        send: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        while let Some(id) = self.adjust_pending.pop() {
            let Some(channel) = self.channel_mut(id) else { continue };
            channel.recv.adjust_queued = false;
            if let Some(bytes_to_add) = channel.take_adjust() {
                let recipient = channel.remote_id;
                scratch.clear();
                ChannelWindowAdjust { recipient, bytes_to_add }.encode(&mut Writer::new(scratch));
                return Some(send(scratch));
            }
        }
        let result = self.out.pop_with(send)?;
        self.wake_queue_waiters();
        Some(result)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        match &event {
            Event::DataReceived { id, stream } => {
                if let Some(channel) = self.channel_mut(*id) {
                    channel.recv.stream_mut(*stream).event_queued = false;
                }
            }
            Event::RequestReceived { reply: None, .. }
            | Event::GlobalRequestReceived { reply: None, .. } => {
                self.pending_requests = self.pending_requests.saturating_sub(1);
            }
            _ => {}
        }
        Some(event)
    }

    /// Opens a channel of `kind` with our default window and packet size. The answer comes as
    /// [`Event::ChannelOpened`] or [`Event::ChannelOpenFailed`].
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::WrongSide`] if this side may not open `kind` (clients open sessions and
    /// direct forwards, servers the rest); [`LocalMisuse::TooManyChannels`] at
    /// [`Config::max_channels`]; [`LocalMisuse::OutputQueueFull`] if the output queue is full.
    pub fn open_channel(&mut self, kind: ChannelKind) -> Result<ChannelId, Error> {
        self.check_usable()?;
        if kind.opener() != self.side {
            return Err(LocalMisuse::WrongSide.into());
        }
        self.check_control_room()?;
        let mut channel = Channel::opening(
            matches!(kind, ChannelKind::Session),
            self.config.window_size,
            self.config.max_packet_size,
        );
        channel.type_name = kind.type_name();
        let id = self.allocate(channel).ok_or(LocalMisuse::TooManyChannels)?;
        let open = ChannelOpen {
            sender: id.0,
            window: self.config.window_size,
            max_packet: self.config.max_packet_size,
            kind: Some(kind),
        };
        self.out.push(|w| open.encode(w));
        Ok(id)
    }

    /// Accepts a channel the peer asked to open ([`Event::ChannelOpenRequested`]).
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`] or [`LocalMisuse::WrongChannelState`] if `id` is not awaiting
    /// a decision; [`LocalMisuse::OutputQueueFull`] if the output queue is full.
    pub fn accept_channel(&mut self, id: ChannelId) -> Result<(), Error> {
        self.check_usable()?;
        self.check_control_room()?;
        let (window, max_packet) = (self.config.window_size, self.config.max_packet_size);
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        if channel.state != State::AwaitingAccept {
            return Err(LocalMisuse::WrongChannelState.into());
        }
        channel.state = State::Open { local: Half::Open, remote: Half::Open };
        let confirmation = ChannelOpenConfirmation {
            recipient: channel.remote_id,
            sender: id.0,
            window,
            max_packet,
        };
        self.out.push(|w| confirmation.encode(w));
        Ok(())
    }

    /// Refuses a channel the peer asked to open, and frees `id`.
    ///
    /// # Errors
    ///
    /// As for [`accept_channel`](Self::accept_channel).
    pub fn reject_channel(
        &mut self,
        id: ChannelId,
        reason: OpenFailureReason,
        description: &str,
    ) -> Result<(), Error> {
        self.check_usable()?;
        self.check_control_room()?;
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        if channel.state != State::AwaitingAccept {
            return Err(LocalMisuse::WrongChannelState.into());
        }
        let failure = ChannelOpenFailure {
            recipient: channel.remote_id,
            reason,
            description: description.to_owned(),
        };
        self.out.push(|w| failure.encode(w));
        self.free(id);
        Ok(())
    }

    /// Sends up to `data.len()` bytes of channel data and returns how many were taken: no more
    /// than the peer's window and the output queue allow, in packets no larger than the peer's
    /// maximum. If fewer were taken, [`Event::Writable`] follows when more can be sent.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`]; [`LocalMisuse::WrongChannelState`] if the channel is not open,
    /// or we sent EOF or CLOSE, or the peer sent CLOSE.
    pub fn send_data(&mut self, id: ChannelId, data: &[u8]) -> Result<usize, Error> {
        self.send_stream(id, None, data)
    }

    /// As [`send_data`](Self::send_data), as `SSH_MSG_CHANNEL_EXTENDED_DATA` with type `code`
    /// (1, [`msgs::EXTENDED_DATA_STDERR`], for standard error). It shares the channel's window.
    ///
    /// # Errors
    ///
    /// As for [`send_data`](Self::send_data).
    pub fn send_extended_data(
        &mut self,
        id: ChannelId,
        code: u32,
        data: &[u8],
    ) -> Result<usize, Error> {
        self.send_stream(id, Some(code), data)
    }

    /// Sends `SSH_MSG_CHANNEL_EOF`: we will send no more data. Requests may still follow (a
    /// server sends `exit-status` after EOF, or before it). Sending EOF twice, or after CLOSE,
    /// does nothing.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`]; [`LocalMisuse::WrongChannelState`] if the channel is not open
    /// yet; [`LocalMisuse::OutputQueueFull`].
    pub fn send_eof(&mut self, id: ChannelId) -> Result<(), Error> {
        self.check_usable()?;
        self.check_control_room()?;
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        let State::Open { local, .. } = &mut channel.state else {
            return Err(LocalMisuse::WrongChannelState.into());
        };
        if *local != Half::Open {
            return Ok(());
        }
        *local = Half::Eof;
        let eof = ChannelEof { recipient: channel.remote_id };
        self.out.push(|w| eof.encode(w));
        Ok(())
    }

    /// Closes the channel: sends EOF (unless sent, or the peer has closed) and
    /// `SSH_MSG_CHANNEL_CLOSE`, and discards anything still buffered. The channel is freed, with
    /// [`Event::ChannelClosed`], once the peer's CLOSE has also arrived. Closing a channel that
    /// is still opening sends CLOSE as soon as it is confirmed. Closing twice does nothing.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`]; [`LocalMisuse::WrongChannelState`] for a channel awaiting
    /// [`accept_channel`](Self::accept_channel) (use [`reject_channel`](Self::reject_channel));
    /// [`LocalMisuse::OutputQueueFull`].
    pub fn close(&mut self, id: ChannelId) -> Result<(), Error> {
        self.check_usable()?;
        self.check_control_room()?;
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        let (local, remote) = match &mut channel.state {
            State::Opening { close_requested } => {
                *close_requested = true;
                return Ok(());
            }
            State::AwaitingAccept => return Err(LocalMisuse::WrongChannelState.into()),
            State::Open { local, remote } => (local, *remote),
        };
        if *local == Half::Closed {
            return Ok(());
        }
        let send_eof = *local == Half::Open && remote != Half::Closed;
        *local = Half::Closed;
        let recipient = channel.remote_id;
        channel.discard_buffers();
        let dropped_replies = channel.incoming.len();
        channel.incoming.clear();
        self.pending_requests = self.pending_requests.saturating_sub(dropped_replies);
        if send_eof {
            self.out.push(|w| ChannelEof { recipient }.encode(w));
        }
        self.out.push(|w| ChannelClose { recipient }.encode(w));
        if remote == Half::Closed {
            self.free(id);
            self.events.push_back(Event::ChannelClosed { id });
        }
        Ok(())
    }

    /// Sends a channel request. With `want_reply`, returns the id that the peer's answer
    /// ([`Event::RequestAnswered`]) will carry.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`]; [`LocalMisuse::WrongSide`] if this side does not send
    /// `request` (see [`ChannelRequest::sender`]); [`LocalMisuse::WrongChannelState`] if the
    /// channel is not open, we sent CLOSE or the peer did, or `request` is a session request on
    /// another kind of channel; [`LocalMisuse::OutputQueueFull`] if the output queue is full or
    /// [`Config::max_pending_requests`] of our requests on this channel await a reply.
    pub fn send_request(
        &mut self,
        id: ChannelId,
        request: &ChannelRequest,
        want_reply: bool,
    ) -> Result<Option<RequestId>, Error> {
        self.check_request_sendable(request.sender())?;
        let limit = self.config.max_pending_requests;
        let request_id = RequestId(self.next_request);
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        let open = matches!(
            channel.state,
            State::Open { local: Half::Open | Half::Eof, remote: Half::Open | Half::Eof }
        );
        if !open || (request.is_session_request() && !channel.is_session) {
            return Err(LocalMisuse::WrongChannelState.into());
        }
        if want_reply {
            if channel.outgoing.len() >= limit {
                return Err(LocalMisuse::OutputQueueFull.into());
            }
            channel.outgoing.push_back(request_id);
        }
        let recipient = channel.remote_id;
        self.out.push(|w| ChannelRequestHeader::encode(w, recipient, request, want_reply));
        if !want_reply {
            return Ok(None);
        }
        self.next_request += 1;
        Ok(Some(request_id))
    }

    /// Answers the peer's channel request `request` ([`Event::RequestReceived`] with a
    /// `reply`). Answers leave in the order the requests arrived, so this one may wait for an
    /// earlier one. Answering after we closed the channel sends nothing, as in OpenSSH.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`] if the channel is gone or `request` is not awaiting an answer
    /// on it; [`LocalMisuse::OutputQueueFull`].
    pub fn reply_request(
        &mut self,
        id: ChannelId,
        request: RequestId,
        success: bool,
    ) -> Result<(), Error> {
        self.check_usable()?;
        self.check_control_room()?;
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        if channel.close_sent() {
            return Ok(());
        }
        let entry = channel
            .incoming
            .iter_mut()
            .find(|(pending, answer)| *pending == request && answer.is_none())
            .ok_or(LocalMisuse::UnknownId)?;
        entry.1 = Some(success);
        self.flush_channel_replies(id);
        Ok(())
    }

    /// Sends a global request. With `want_reply`, returns the id that the peer's answer
    /// ([`Event::GlobalRequestAnswered`]) will carry.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::WrongSide`] if this side does not send `request`;
    /// [`LocalMisuse::OutputQueueFull`] if the output queue is full or
    /// [`Config::max_pending_requests`] of our global requests await a reply.
    pub fn send_global_request(
        &mut self,
        request: &GlobalRequest,
        want_reply: bool,
    ) -> Result<Option<RequestId>, Error> {
        self.check_request_sendable(request.sender())?;
        if want_reply && self.outgoing_global.len() >= self.config.max_pending_requests {
            return Err(LocalMisuse::OutputQueueFull.into());
        }
        self.out.push(|w| GlobalRequestHeader::encode(w, request, want_reply));
        if !want_reply {
            return Ok(None);
        }
        let request_id = self.new_request_id();
        self.outgoing_global.push_back((request_id, request.reply_format()));
        Ok(Some(request_id))
    }

    /// Answers the peer's global request `request` ([`Event::GlobalRequestReceived`] with a
    /// `reply`). For `tcpip-forward` with port 0, answer [`GlobalReply::BoundPort`]. Answers
    /// leave in the order the requests arrived.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`] if `request` is not awaiting an answer;
    /// [`LocalMisuse::OutputQueueFull`].
    pub fn reply_global_request(
        &mut self,
        request: RequestId,
        reply: GlobalReply,
    ) -> Result<(), Error> {
        self.check_usable()?;
        self.check_control_room()?;
        let entry = self
            .incoming_global
            .iter_mut()
            .find(|(pending, answer)| *pending == request && answer.is_none())
            .ok_or(LocalMisuse::UnknownId)?;
        entry.1 = Some(reply);
        self.flush_global_replies();
        Ok(())
    }

    /// Copies buffered bytes of `stream` into `buf`, consumes them (reopening the peer's window
    /// as the flow-control rules allow), and returns how many were copied: 0 when nothing is
    /// buffered.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`].
    pub fn recv(&mut self, id: ChannelId, stream: Stream, buf: &mut [u8]) -> Result<usize, Error> {
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        let n = channel.read(stream, buf);
        self.note_consumed(id);
        Ok(n)
    }

    /// The oldest contiguous run of buffered bytes of `stream`, without consuming it: hand it to
    /// a protocol, then [`consume`](Self::consume) what it took. Empty when nothing is buffered
    /// (a non-empty buffer may need more than one `peek`).
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`].
    pub fn peek(&self, id: ChannelId, stream: Stream) -> Result<&[u8], Error> {
        let channel = self.channel(id).ok_or(LocalMisuse::UnknownId)?;
        Ok(channel.peek(stream))
    }

    /// Consumes up to `n` buffered bytes of `stream` (see [`peek`](Self::peek)) and returns how
    /// many were consumed.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`].
    pub fn consume(&mut self, id: ChannelId, stream: Stream, n: usize) -> Result<usize, Error> {
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        let n = channel.consume(stream, n);
        self.note_consumed(id);
        Ok(n)
    }

    /// Takes everything buffered on `stream` at once without copying it: the buffer is
    /// exchanged with `spare` (emptied first; its capacity takes what arrives next) and its bytes
    /// are credited to the window as [`consume`](Self::consume) credits them. Returns how many
    /// were taken. A caller that takes again only once it has handed on all it took holds at
    /// most one window more than this layer does.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`].
    pub fn take_buffered(
        &mut self,
        id: ChannelId,
        stream: Stream,
        spare: &mut VecDeque<u8>,
    ) -> Result<usize, Error> {
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        spare.clear();
        std::mem::swap(&mut channel.recv.stream_mut(stream).bytes, spare);
        let n = spare.len();
        // invariant: n <= buffered <= window_max, a u32.
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        channel.recv.consumed = channel.recv.consumed.saturating_add(n32);
        self.note_consumed(id);
        Ok(n)
    }

    /// Which end we are.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Channels allocated, in any state (counted against [`Config::max_channels`]).
    pub fn channel_count(&self) -> u32 {
        self.channel_count
    }

    /// Bytes buffered on `stream` of channel `id`; 0 for an unknown channel.
    pub fn buffered(&self, id: ChannelId, stream: Stream) -> usize {
        self.channel(id).map_or(0, |channel| channel.recv.stream(stream).bytes.len())
    }

    /// How many bytes the peer's window still allows us to send on `id`; `None` for an unknown
    /// channel or one not open yet.
    pub fn send_window(&self, id: ChannelId) -> Option<u32> {
        let channel = self.channel(id)?;
        matches!(channel.state, State::Open { .. }).then_some(channel.send.window)
    }

    /// A count that grows whenever data moves on channel `id`, either way (it wraps); compare
    /// two readings to see whether the channel was used in between, as OpenSSH's
    /// `ChannelTimeout` does. `None` for an unknown channel.
    pub fn activity(&self, id: ChannelId) -> Option<u64> {
        self.channel(id).map(|channel| channel.activity)
    }

    /// The type of a channel we opened ([`ChannelKind::type_name`]); `None` for the peer's
    /// channels (their [`Event::ChannelOpenRequested`] says) and unknown ones.
    pub fn channel_type(&self, id: ChannelId) -> Option<&'static str> {
        self.channel(id).map(|channel| channel.type_name).filter(|name| !name.is_empty())
    }

    /// Bytes waiting in the output queue.
    pub fn queued_output(&self) -> usize {
        self.out.len()
    }

    // --- internals -----------------------------------------------------------------------

    fn send_stream(
        &mut self,
        id: ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Result<usize, Error> {
        let room = self.config.max_queued_output.saturating_sub(self.out.len());
        let (recipient, chunk, taken) = self.reserve_send(id, data, room)?;
        for piece in taken.chunks(chunk) {
            self.out.push(|w| match code {
                None => ChannelData { recipient, data: piece }.encode(w),
                Some(code) => ChannelExtendedData { recipient, code, data: piece }.encode(w),
            });
        }
        Ok(taken.len())
    }

    /// As [`send_data`](Self::send_data) (`code` `None`) or
    /// [`send_extended_data`](Self::send_extended_data), but each packet's payload goes to `send`
    /// in two parts, the message's header and a piece of `data`, rather than into the output
    /// queue: a driver frames them straight into the transport's packet buffer, so the data is
    /// copied once. At most `room` bytes are taken (the transport's free space); past it, as
    /// past the window, [`Event::Writable`] follows once [`output_taken`](Self::output_taken)
    /// reports room again.
    ///
    /// Payloads already queued must go first: while [`queued_output`](Self::queued_output) is
    /// not 0 this queues as `send_data` does and calls `send` for nothing.
    ///
    /// # Errors
    ///
    /// As for [`send_data`](Self::send_data), and the first error of `send`.
    pub fn send_stream_with(
        &mut self,
        id: ChannelId,
        code: Option<u32>,
        data: &[u8],
        room: usize,
        mut send: impl FnMut(&[u8], &[u8]) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        if self.out.len() != 0 {
            return self.send_stream(id, code, data);
        }
        let (recipient, chunk, taken) = self.reserve_send(id, data, room)?;
        let mut head = [0u8; 13];
        head[1..5].copy_from_slice(&recipient.to_be_bytes());
        let head_len = match code {
            None => {
                head[0] = MessageType::CHANNEL_DATA.0;
                9
            }
            Some(code) => {
                head[0] = MessageType::CHANNEL_EXTENDED_DATA.0;
                head[5..9].copy_from_slice(&code.to_be_bytes());
                13
            }
        };
        for piece in taken.chunks(chunk) {
            // invariant: piece.len() <= chunk <= MAX_CHANNEL_PACKET, a u32.
            let len = u32::try_from(piece.len()).unwrap_or(u32::MAX).to_be_bytes();
            if let Some(len_field) = head.get_mut(head_len - 4..head_len) {
                len_field.copy_from_slice(&len);
            }
            send(head.get(..head_len).unwrap_or_default(), piece)?;
        }
        Ok(taken.len())
    }

    /// After the driver's transport took output: wakes channels that waited for room in it
    /// (see [`send_stream_with`](Self::send_stream_with)).
    pub fn output_taken(&mut self) {
        self.wake_queue_waiters();
    }

    /// Takes from the peer's window what of `data` the channel may send now, at most `room`
    /// bytes: the recipient, the largest piece per packet, and the bytes taken. Past the window
    /// or `room` the channel waits for [`Event::Writable`].
    fn reserve_send<'d>(
        &mut self,
        id: ChannelId,
        data: &'d [u8],
        room: usize,
    ) -> Result<(u32, usize, &'d [u8]), Error> {
        self.check_usable()?;
        let channel = self.channel_mut(id).ok_or(LocalMisuse::UnknownId)?;
        if !channel.can_send_data() {
            return Err(LocalMisuse::WrongChannelState.into());
        }
        let recipient = channel.remote_id;
        if data.is_empty() {
            return Ok((recipient, 1, &[]));
        }
        let chunk = channel.send.max_packet.min(MAX_CHANNEL_PACKET) as usize;
        let window = channel.send.window as usize;
        let n = if chunk == 0 { 0 } else { data.len().min(window).min(room) };
        // invariant: n <= window, a u32.
        channel.send.window -= u32::try_from(n).unwrap_or(u32::MAX);
        channel.activity = channel.activity.wrapping_add(n as u64);
        let mut queue_limited = false;
        if n < data.len() {
            channel.send.blocked = true;
            queue_limited = room < window.min(data.len()) && !channel.send.waiting_for_queue;
            if queue_limited {
                channel.send.waiting_for_queue = true;
            }
        }
        if queue_limited {
            self.queue_waiters.push(id);
        }
        Ok((recipient, chunk.max(1), data.get(..n).unwrap_or_default()))
    }

    /// After `poll_payload` took from the queue: wakes channels that were waiting for room.
    fn wake_queue_waiters(&mut self) {
        if self.queue_waiters.is_empty() || self.out.len() > self.config.max_queued_output / 2 {
            return;
        }
        let waiters = std::mem::take(&mut self.queue_waiters);
        for id in waiters {
            let Some(channel) = self.channel_mut(id) else { continue };
            channel.send.waiting_for_queue = false;
            if channel.writable() {
                channel.send.blocked = false;
                self.events.push_back(Event::Writable { id });
            }
        }
    }

    /// After the peer's window grew: `Writable` if the channel was waiting for it.
    fn wake_writer(&mut self, id: ChannelId) {
        let queue_full = self.out.len() >= self.config.max_queued_output;
        let Some(channel) = self.channel_mut(id) else { return };
        if !channel.writable() {
            return;
        }
        if queue_full {
            if !channel.send.waiting_for_queue {
                channel.send.waiting_for_queue = true;
                self.queue_waiters.push(id);
            }
            return;
        }
        channel.send.blocked = false;
        self.events.push_back(Event::Writable { id });
    }

    /// After bytes were consumed or discarded: schedules a window adjust if one is due.
    fn note_consumed(&mut self, id: ChannelId) {
        let Some(channel) = self.channel_mut(id) else { return };
        if channel.recv.adjust_queued || !channel.wants_adjust() {
            return;
        }
        channel.recv.adjust_queued = true;
        self.adjust_pending.push(id);
    }

    /// Sends the answered replies at the head of a channel's incoming request queue.
    fn flush_channel_replies(&mut self, id: ChannelId) {
        let Some(channel) = self.channel_mut(id) else { return };
        let recipient = channel.remote_id;
        let mut answers = Vec::new();
        while let Some((_, Some(success))) = channel.incoming.front() {
            answers.push(*success);
            channel.incoming.pop_front();
        }
        self.pending_requests = self.pending_requests.saturating_sub(answers.len());
        for success in answers {
            self.out.push(|w| {
                if success {
                    msgs::ChannelSuccess { recipient }.encode(w);
                } else {
                    msgs::ChannelFailure { recipient }.encode(w);
                }
            });
        }
    }

    /// Sends the answered replies at the head of the incoming global request queue.
    fn flush_global_replies(&mut self) {
        while let Some((_, Some(_))) = self.incoming_global.front() {
            let Some((_, Some(reply))) = self.incoming_global.pop_front() else { break };
            self.pending_requests = self.pending_requests.saturating_sub(1);
            self.out.push(|w| reply.encode(w));
        }
    }

    fn new_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::ConnectionClosed);
        }
        Ok(())
    }

    /// Whether a request sent by `sender` (`None`: either side) may be sent now.
    fn check_request_sendable(&self, sender: Option<Side>) -> Result<(), Error> {
        self.check_usable()?;
        if sender.is_some_and(|side| side != self.side) {
            return Err(LocalMisuse::WrongSide.into());
        }
        self.check_control_room()
    }

    /// Local control messages may use the headroom above the data limit, no more.
    fn check_control_room(&self) -> Result<(), Error> {
        if self.out.len() > self.config.max_queued_output + OUTPUT_HEADROOM {
            return Err(LocalMisuse::OutputQueueFull.into());
        }
        Ok(())
    }

    fn allocate(&mut self, channel: Channel) -> Option<ChannelId> {
        if self.channel_count >= self.config.max_channels {
            return None;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.slots.len()).ok()?;
                self.slots.push(Slot::default());
                slot
            }
        };
        let entry = self.slots.get_mut(slot as usize)?;
        entry.channel = Some(channel);
        self.channel_count += 1;
        Some(ChannelId::new(slot, entry.generation))
    }

    fn free(&mut self, id: ChannelId) {
        let Some(entry) = self.slots.get_mut(id.slot()) else { return };
        if entry.generation != id.generation() {
            return;
        }
        let Some(channel) = entry.channel.take() else { return };
        entry.generation = entry.generation.wrapping_add(1) & GENERATION_MASK;
        self.pending_requests = self.pending_requests.saturating_sub(channel.incoming.len());
        self.channel_count -= 1;
        self.free.push(id.0 & SLOT_MASK);
    }

    fn channel(&self, id: ChannelId) -> Option<&Channel> {
        let entry = self.slots.get(id.slot())?;
        if entry.generation != id.generation() {
            return None;
        }
        entry.channel.as_ref()
    }

    fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        let entry = self.slots.get_mut(id.slot())?;
        if entry.generation != id.generation() {
            return None;
        }
        entry.channel.as_mut()
    }
}

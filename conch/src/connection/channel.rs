//! One channel: its lifecycle, its two windows, its receive buffers and its request queues.

use std::collections::VecDeque;

use super::{RequestId, Stream};

/// The most consumed bytes a channel holds back before adjusting the peer's window (see
/// [`Channel::wants_adjust`]).
const ADJUST_AT: u32 = 1 << 20;

/// Where a channel is in its life (RFC 4254 §5.1, §5.3), with OpenSSH's ordering rules.
///
/// ```text
///        open_channel()                               CHANNEL_OPEN received
///              |                                               |
///              v                                               v
///        +-----------+  close()                       +----------------+
///        |  Opening  |---------+                      | AwaitingAccept |
///        +-----------+         | (close_requested:    +----------------+
///   OPEN_FAILURE |   | OPEN_   |  CLOSE is sent          reject() |  | accept()
///     (freed) <--+   | CONFIRM |  on confirmation)     (freed) <--+  |
///                    v         v                                     v
///        +---------------------------------------------------------------+
///        |  Open { local, remote }                                       |
///        |                                                               |
///        |  local  (what we sent):    Open --send_eof()--> Eof           |
///        |                            Open|Eof --close()--> Closed       |
///        |  remote (what the peer     Open --CHANNEL_EOF--> Eof          |
///        |          sent):            Open|Eof --CHANNEL_CLOSE--> Closed |
///        +---------------------------------------------------------------+
///                                     |
///                    local == Closed && remote == Closed
///                                     v
///                        freed: Event::ChannelClosed
/// ```
///
/// A channel is freed, and its number reused, only once both sides have sent
/// `SSH_MSG_CHANNEL_CLOSE`. `close()` sends `SSH_MSG_CHANNEL_EOF` first unless one was sent or
/// the peer has already closed, as OpenSSH's `nchan.c` does. Once we have sent CLOSE, incoming
/// data is discarded and requests get no reply; once the peer has sent EOF or CLOSE, further
/// data is discarded (extended data after EOF ends the connection, as in OpenSSH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// We sent `SSH_MSG_CHANNEL_OPEN` and wait for the answer. The peer's channel number is not
    /// known yet, so nothing else can be sent.
    Opening {
        /// The application closed the channel before it opened.
        close_requested: bool,
    },
    /// The peer sent `SSH_MSG_CHANNEL_OPEN`; the application has not yet accepted or rejected
    /// it. The peer does not know our number yet, so it cannot address the channel.
    AwaitingAccept,
    /// Both sides know the channel; each direction closes on its own.
    Open {
        /// What we have sent.
        local: Half,
        /// What the peer has sent.
        remote: Half,
    },
}

/// One direction of an open channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Half {
    /// Data may still flow.
    Open,
    /// `SSH_MSG_CHANNEL_EOF` was sent: no more data, but requests and CLOSE may follow.
    Eof,
    /// `SSH_MSG_CHANNEL_CLOSE` was sent: nothing more.
    Closed,
}

/// A channel's state. Field-level invariants are documented per field.
#[derive(Debug)]
pub(super) struct Channel {
    pub(super) state: State,
    /// Whether this is a `session` channel (session requests are refused on other kinds).
    pub(super) is_session: bool,
    /// The peer's number for this channel. Meaningless while [`State::Opening`].
    pub(super) remote_id: u32,
    pub(super) send: SendWindow,
    pub(super) recv: Receive,
    /// Requests from the peer that want a reply, oldest first; `Some` once answered. Replies
    /// leave strictly in this order (RFC 4254 §5.4).
    pub(super) incoming: VecDeque<(RequestId, Option<bool>)>,
    /// Our requests that want a reply, oldest first.
    pub(super) outgoing: VecDeque<RequestId>,
    /// Data bytes moved either way so far (wrapping), for inactivity timeouts.
    pub(super) activity: u64,
    /// The channel type, for channels we opened (empty for the peer's).
    pub(super) type_name: &'static str,
}

/// Our right to send: the peer's window and packet size.
#[derive(Debug)]
pub(super) struct SendWindow {
    /// Bytes the peer still accepts.
    pub(super) window: u32,
    /// The largest data field the peer accepts in one packet.
    pub(super) max_packet: u32,
    /// `send_data` took less than it was given; a `Writable` event is owed.
    pub(super) blocked: bool,
    /// Blocked by the connection's output queue rather than the window (listed in
    /// `Connection::queue_waiters`).
    pub(super) waiting_for_queue: bool,
}

/// The peer's right to send, and what it sent that the application has not read yet.
///
/// Invariant while open: `window + buffered + consumed == window_max` (the sum counts discarded
/// bytes as consumed), so at most `window_max` bytes are ever buffered.
#[derive(Debug)]
pub(super) struct Receive {
    /// Bytes the peer may still send before we adjust.
    pub(super) window: u32,
    /// The window we advertised, and the most we ever buffer.
    pub(super) window_max: u32,
    /// The largest data field we accept in one packet.
    pub(super) max_packet: u32,
    /// Bytes read (or discarded) since the last window adjust.
    pub(super) consumed: u32,
    /// Listed in `Connection::adjust_pending`.
    pub(super) adjust_queued: bool,
    /// What arrived as `SSH_MSG_CHANNEL_DATA`.
    pub(super) data: StreamBuffer,
    /// What arrived as `SSH_MSG_CHANNEL_EXTENDED_DATA` for standard error.
    pub(super) stderr: StreamBuffer,
}

impl Receive {
    /// The buffer of `stream`.
    pub(super) fn stream(&self, stream: Stream) -> &StreamBuffer {
        match stream {
            Stream::Data => &self.data,
            Stream::Stderr => &self.stderr,
        }
    }

    /// The buffer of `stream`, mutably.
    pub(super) fn stream_mut(&mut self, stream: Stream) -> &mut StreamBuffer {
        match stream {
            Stream::Data => &mut self.data,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Bytes buffered across both streams.
    pub(super) fn buffered(&self) -> usize {
        self.data.bytes.len() + self.stderr.bytes.len()
    }
}

/// Received bytes of one stream that the application has not read.
///
/// The deque grows to at most the window and keeps its capacity, so steady traffic allocates
/// nothing per packet.
#[derive(Debug, Default)]
pub(super) struct StreamBuffer {
    pub(super) bytes: VecDeque<u8>,
    /// A `DataReceived` event for this stream sits in the event queue.
    pub(super) event_queued: bool,
}

/// What became of incoming data.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Buffered for the application; `notify` if a `DataReceived` event is owed.
    Buffered { notify: bool },
    /// Thrown away (the channel is closing, or the stream is unknown); the bytes count as
    /// consumed.
    Discarded,
}

impl Channel {
    /// A channel we are opening with the given receive parameters.
    pub(super) fn opening(is_session: bool, window: u32, max_packet: u32) -> Self {
        Self::new(State::Opening { close_requested: false }, is_session, 0, window, max_packet)
    }

    /// A channel the peer is opening, waiting for the application's decision.
    pub(super) fn awaiting_accept(
        is_session: bool,
        remote_id: u32,
        remote_window: u32,
        remote_max_packet: u32,
        window: u32,
        max_packet: u32,
    ) -> Self {
        let mut channel =
            Self::new(State::AwaitingAccept, is_session, remote_id, window, max_packet);
        channel.send.window = remote_window;
        channel.send.max_packet = remote_max_packet;
        channel
    }

    fn new(state: State, is_session: bool, remote_id: u32, window: u32, max_packet: u32) -> Self {
        Self {
            state,
            is_session,
            remote_id,
            send: SendWindow { window: 0, max_packet: 0, blocked: false, waiting_for_queue: false },
            recv: Receive {
                window,
                window_max: window,
                max_packet,
                consumed: 0,
                adjust_queued: false,
                data: StreamBuffer::default(),
                stderr: StreamBuffer::default(),
            },
            incoming: VecDeque::new(),
            outgoing: VecDeque::new(),
            activity: 0,
            type_name: "",
        }
    }

    /// Whether we have sent CLOSE.
    pub(super) fn close_sent(&self) -> bool {
        matches!(self.state, State::Open { local: Half::Closed, .. })
    }

    /// Whether we may still send data: open, no EOF or CLOSE from us, no CLOSE from the peer.
    pub(super) fn can_send_data(&self) -> bool {
        matches!(self.state, State::Open { local: Half::Open, remote: Half::Open | Half::Eof })
    }

    /// Whether the send side is waiting on the window and the window has opened.
    pub(super) fn writable(&self) -> bool {
        self.send.blocked && self.send.window > 0 && self.can_send_data()
    }

    /// Takes `data` from the peer for `stream` (`None`: an extended data type we do not know).
    ///
    /// The caller has checked the channel is [`State::Open`] and, for extended data, that the
    /// peer has not sent EOF. Errors are the peer's: a packet over our maximum, or more than the
    /// window allows.
    pub(super) fn receive(
        &mut self,
        stream: Option<Stream>,
        data: &[u8],
    ) -> Result<Delivery, ReceiveError> {
        let len = u32::try_from(data.len()).map_err(|_| ReceiveError::PacketTooLarge)?;
        let discard = !matches!(
            self.state,
            State::Open { local: Half::Open | Half::Eof, remote: Half::Open }
        );
        if discard {
            // OpenSSH (`channel_input_data`) charges data for a closing channel to the window
            // without checking it, and counts it as consumed so that the window still reopens.
            // We credit no more than the window held, so that our adjusts never hand the peer
            // more than `window_max` (and never overflow its window).
            let charged = len.min(self.recv.window);
            self.recv.window -= charged;
            self.recv.consumed += charged; // invariant: window + consumed <= window_max
            return Ok(Delivery::Discarded);
        }
        if len > self.recv.max_packet {
            return Err(ReceiveError::PacketTooLarge);
        }
        if len > self.recv.window {
            return Err(ReceiveError::WindowExceeded);
        }
        self.recv.window -= len;
        let Some(stream) = stream else {
            self.recv.consumed += len; // invariant: consumed + window <= window_max
            return Ok(Delivery::Discarded);
        };
        let buffer = self.recv.stream_mut(stream);
        let was_empty = buffer.bytes.is_empty();
        buffer.bytes.extend(data);
        let notify = was_empty && !data.is_empty() && !buffer.event_queued;
        if notify {
            buffer.event_queued = true;
        }
        Ok(Delivery::Buffered { notify })
    }

    /// Copies buffered bytes of `stream` into `buf` and consumes them.
    pub(super) fn read(&mut self, stream: Stream, buf: &mut [u8]) -> usize {
        let (front, back) = self.recv.stream(stream).bytes.as_slices();
        let from_front = front.len().min(buf.len());
        let from_back = back.len().min(buf.len() - from_front);
        buf[..from_front].copy_from_slice(&front[..from_front]); // invariant: both <= lengths
        buf[from_front..from_front + from_back].copy_from_slice(&back[..from_back]); // invariant
        let n = from_front + from_back;
        self.consume(stream, n)
    }

    /// The oldest contiguous run of buffered bytes of `stream`.
    pub(super) fn peek(&self, stream: Stream) -> &[u8] {
        self.recv.stream(stream).bytes.as_slices().0
    }

    /// Drops up to `n` buffered bytes of `stream` and credits them to the window; returns how
    /// many were dropped.
    pub(super) fn consume(&mut self, stream: Stream, n: usize) -> usize {
        let buffer = &mut self.recv.stream_mut(stream).bytes;
        let n = n.min(buffer.len());
        buffer.drain(..n);
        // invariant: n <= buffered <= window_max, a u32.
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        self.recv.consumed = self.recv.consumed.saturating_add(n32);
        n
    }

    /// Throws away everything buffered (we closed: nobody will read it).
    pub(super) fn discard_buffers(&mut self) {
        let n = u32::try_from(self.recv.buffered()).unwrap_or(u32::MAX);
        self.recv.consumed = self.recv.consumed.saturating_add(n);
        self.recv.data.bytes.clear();
        self.recv.stderr.bytes.clear();
    }

    /// Whether consumed bytes should be handed back to the peer now.
    ///
    /// We adjust once a worthwhile amount has been consumed (a quarter of the window, at most
    /// [`ADJUST_AT`] and at least a maximum packet, never more than half the window), or once
    /// the application has caught up with a window that is half used. A slow consumer therefore
    /// only reopens the window as it reads, an interactive channel does not send an adjust per
    /// keystroke, and a bulk transfer costs one adjust (a packet each way, and a wakeup of the
    /// sender) per megabyte rather than per packet, while the sender keeps three quarters of its
    /// window. No adjust follows a CLOSE in either direction (as in OpenSSH's
    /// `channel_check_window`, which adjusts at half the window).
    pub(super) fn wants_adjust(&self) -> bool {
        let recv = &self.recv;
        if recv.consumed == 0
            || !matches!(
                self.state,
                State::Open { local: Half::Open | Half::Eof, remote: Half::Open | Half::Eof }
            )
        {
            return false;
        }
        let half = recv.window_max / 2;
        let worthwhile = (recv.window_max / 4).min(ADJUST_AT).max(recv.max_packet).min(half).max(1);
        let caught_up = recv.buffered() == 0;
        recv.consumed >= worthwhile || (caught_up && recv.window <= half)
    }

    /// The window adjust to send now, if any, applied to our bookkeeping.
    pub(super) fn take_adjust(&mut self) -> Option<u32> {
        if !self.wants_adjust() {
            return None;
        }
        let n = std::mem::take(&mut self.recv.consumed);
        // invariant: window + consumed <= window_max, so this cannot overflow.
        self.recv.window = self.recv.window.saturating_add(n);
        Some(n)
    }
}

/// Ways incoming data breaks the channel's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReceiveError {
    /// More data in one packet than our maximum packet size.
    PacketTooLarge,
    /// More data than the window allows.
    WindowExceeded,
}

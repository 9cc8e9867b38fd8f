//! An open SSH channel as a [`twine_core::Transport`]: a protocol written for TCP runs over a
//! channel unchanged.
//!
//! [`Channels`] keeps the channels of one connection that have a protocol attached; the
//! connection's driver hands it the connection layer's channel events
//! ([`Channels::handle_event`]) and lets it flush after every turn ([`Channels::flush`]).
//! Each [`ChannelTransport`] follows the [`Transport`] contract, no re-entrancy included:
//! its methods only record requests and hand bytes to the connection layer, and every
//! protocol or producer callback comes from the loop.
//!
//! # Flow control
//!
//! - **Out.** [`write`](Transport::write) hands what the peer's window takes to the
//!   connection layer at once and buffers the rest; past the buffer's high-water mark the
//!   registered producer is paused, and it is resumed at the low-water mark as window adjusts
//!   drain the buffer. Past the hard limit the channel is aborted.
//! - **In.** While the protocol is paused ([`pause_producing`](Transport::pause_producing)),
//!   the channel stops reading its data from the connection layer, which then stops handing
//!   the window back: the peer stops sending.
//!
//! # Ending
//!
//! [`write_eof`](Transport::write_eof) sends `SSH_MSG_CHANNEL_EOF` once the buffer drains;
//! [`lose_connection`](Transport::lose_connection) sends EOF and `SSH_MSG_CHANNEL_CLOSE` once
//! it drains (after any final requests, such as a session's `exit-status`);
//! [`abort_connection`](Transport::abort_connection) discards the buffer and closes now.
//! `connection_lost` comes once both sides have closed, or when the SSH connection ends.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::{Rc, Weak};

use twine_core::error::Reason;
use twine_core::protocol::{Address, HalfClose, Protocol, PushProducer, Transport};
use twine_core::reactor::BufferLimits;
use twine_core::time::Scheduler;
use twine_core::{Error as CoreError, ErrorKind};

use crate::connection::msgs::{ChannelRequest, EXTENDED_DATA_STDERR};
use crate::connection::{ChannelId, Connection, Event, Stream};

/// At most this many reads from the connection layer per channel per turn, so one busy
/// channel does not starve the others.
const READS_PER_TURN: usize = 16;

/// What a channel needs from the connection it lives on. The server's connection driver
/// implements it over its stack; tests implement it over a bare [`Connection`].
pub(crate) trait ChannelHost {
    /// The connection layer, if it can be borrowed now (`None` while the driver holds it, or
    /// once the connection is gone).
    fn connection(&self) -> Option<RefMut<'_, Connection>>;

    /// Sends data on channel `id` (`code` `None`) or extended data of type `code`, as
    /// [`Connection::send_data`] does (a driver may frame it straight into its packet buffer);
    /// `None` when the connection cannot be borrowed now.
    fn send_data(
        &self,
        id: ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Option<Result<usize, crate::Error>> {
        let mut connection = self.connection()?;
        Some(match code {
            None => connection.send_data(id, data),
            Some(code) => connection.send_extended_data(id, code, data),
        })
    }

    /// Asks for the connection to be driven (its output sent, its events read) on a later turn
    /// of the loop.
    fn wake(&self);
}

/// The channels of one connection that carry a protocol.
///
/// A channel's producer is paused as soon as anything waits in its buffer (high-water mark 0)
/// and resumed once the buffer has drained: the data a bulk producer has not sent yet stays
/// where it is (a child's pipe) instead of being copied into the channel's buffer first.
pub(crate) struct Channels {
    host: Weak<dyn ChannelHost>,
    scheduler: Rc<dyn Scheduler>,
    peer: Address,
    local: Address,
    limits: Cell<BufferLimits>,
    open: RefCell<HashMap<ChannelId, Rc<ChannelTransport>>>,
    /// Channels with requests that could not reach the connection layer yet.
    dirty: RefCell<Vec<ChannelId>>,
}

impl Channels {
    /// Channels living on `host`, whose callbacks run on `scheduler`; `peer` and `local` are
    /// the SSH connection's addresses, which every channel reports as its own.
    pub(crate) fn new(
        host: Weak<dyn ChannelHost>,
        scheduler: Rc<dyn Scheduler>,
        peer: Address,
        local: Address,
    ) -> Rc<Self> {
        Rc::new(Self {
            host,
            scheduler,
            peer,
            local,
            limits: Cell::new(BufferLimits { high: 0, ..BufferLimits::default() }),
            open: RefCell::new(HashMap::new()),
            dirty: RefCell::new(Vec::new()),
        })
    }

    /// Sets the write-buffer limits of channels attached from now on.
    #[cfg(test)]
    pub(crate) fn set_buffer_limits(&self, limits: BufferLimits) {
        self.limits.set(limits);
    }

    /// Runs `protocol` over the open channel `id`: it gets `connection_made` from the loop,
    /// then whatever data the channel has buffered.
    pub(crate) fn attach(
        self: &Rc<Self>,
        id: ChannelId,
        protocol: Box<dyn Protocol>,
    ) -> Rc<ChannelTransport> {
        let channel = Rc::new_cyclic(|me| ChannelTransport {
            me: me.clone(),
            id,
            channels: Rc::downgrade(self),
            peer: self.peer.clone(),
            host: self.local.clone(),
            state: RefCell::new(State::new(self.limits.get())),
            protocol: RefCell::new(Some(protocol)),
        });
        self.open.borrow_mut().insert(id, Rc::clone(&channel));
        let made = Rc::clone(&channel);
        self.scheduler.call_soon_boxed(Box::new(move || made.deliver_made()));
        channel
    }

    /// The transport of channel `id`, if a protocol is attached.
    pub(crate) fn get(&self, id: ChannelId) -> Option<Rc<ChannelTransport>> {
        self.open.borrow().get(&id).cloned()
    }

    /// Takes a connection-layer event about an attached channel; `false` for events about
    /// other channels and for requests, which the caller handles.
    pub(crate) fn handle_event(&self, event: &Event) -> bool {
        let id = match event {
            Event::DataReceived { id, .. }
            | Event::Writable { id }
            | Event::EofReceived { id }
            | Event::CloseReceived { id }
            | Event::ChannelClosed { id } => *id,
            _ => return false,
        };
        let Some(channel) = self.get(id) else { return false };
        match event {
            Event::DataReceived { .. } => channel.deliver(),
            Event::Writable { .. } => channel.flush(),
            Event::EofReceived { .. } => {
                channel.state.borrow_mut().peer_eof = true;
                channel.deliver();
            }
            Event::CloseReceived { .. } => channel.close_received(),
            Event::ChannelClosed { .. } => {
                self.open.borrow_mut().remove(&id);
                channel.closed();
            }
            _ => {}
        }
        true
    }

    /// Retries whatever could not reach the connection layer (called by the driver on every
    /// turn).
    pub(crate) fn flush(&self) {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        for id in dirty {
            if let Some(channel) = self.get(id) {
                channel.flush();
            }
        }
    }

    /// Sends what every channel holds as far as its window allows (the connection's transport
    /// drained after it was full).
    pub(crate) fn flush_all(&self) {
        let channels: Vec<_> = self.open.borrow().values().cloned().collect();
        for channel in channels {
            if channel.state.borrow().pending_len > 0 {
                channel.flush();
            }
        }
    }

    /// The SSH connection is gone: every channel loses its connection with `reason`.
    pub(crate) fn connection_lost(&self, reason: &Reason) {
        let channels: Vec<_> = self.open.borrow_mut().drain().map(|(_, c)| c).collect();
        for channel in channels {
            channel.state.borrow_mut().reason.get_or_insert_with(|| reason.clone());
            channel.closed();
        }
    }

    /// How many channels carry a protocol.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.open.borrow().len()
    }

    fn mark_dirty(&self, id: ChannelId) {
        let mut dirty = self.dirty.borrow_mut();
        if !dirty.contains(&id) {
            dirty.push(id);
        }
        drop(dirty);
        if let Some(host) = self.host.upgrade() {
            host.wake();
        }
    }
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channels").field("open", &self.open.borrow().len()).finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteEnd {
    Open,
    EofRequested,
    EofSent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Running.
    No,
    /// `lose_connection`: close once the buffer drains.
    Graceful,
    /// CLOSE has been sent (or the peer closed first and ours followed).
    CloseSent,
}

struct State {
    /// Buffered writes, oldest first: each buffer's bytes from the offset on are unsent.
    pending: VecDeque<(Stream, Vec<u8>, usize)>,
    pending_len: usize,
    /// An emptied buffer of `pending`, reused for the next one.
    spare: Option<Vec<u8>>,
    limits: BufferLimits,
    producer: Option<Rc<dyn PushProducer>>,
    producer_paused: bool,
    reading_paused: bool,
    made: bool,
    lost: bool,
    write_end: WriteEnd,
    ending: Ending,
    /// Requests to send after EOF and before CLOSE (a session's `exit-status`).
    final_requests: Vec<ChannelRequest>,
    /// An in-process session's exit status, sent before a graceful CLOSE that carries none.
    exit_status: Option<Rc<Cell<u32>>>,
    peer_eof: bool,
    peer_eof_delivered: bool,
    deliver_scheduled: bool,
    reason: Option<Reason>,
}

impl State {
    fn new(limits: BufferLimits) -> Self {
        Self {
            pending: VecDeque::new(),
            pending_len: 0,
            spare: None,
            limits,
            producer: None,
            producer_paused: false,
            reading_paused: false,
            made: false,
            lost: false,
            write_end: WriteEnd::Open,
            ending: Ending::No,
            final_requests: Vec::new(),
            exit_status: None,
            peer_eof: false,
            peer_eof_delivered: false,
            deliver_scheduled: false,
            reason: None,
        }
    }

    fn accepts_writes(&self) -> bool {
        !self.lost && self.write_end == WriteEnd::Open && self.ending == Ending::No
    }
}

/// An open channel as a [`Transport`].
///
/// Writes go to the peer as its window allows and are buffered beyond it (pausing a
/// registered producer past the high-water mark, aborting past the hard limit); pausing the
/// transport closes the peer's window. `write_eof` sends EOF once the buffer drains,
/// `lose_connection` EOF and CLOSE, `abort_connection` CLOSE now, discarding the buffer.
///
/// Besides the [`Transport`] methods it can write standard error
/// ([`write_stderr`](Self::write_stderr)), send channel requests
/// ([`send_request`](Self::send_request)), and end with final requests such as `exit-status`
/// ([`finish`](Self::finish)).
pub struct ChannelTransport {
    me: Weak<Self>,
    id: ChannelId,
    channels: Weak<Channels>,
    peer: Address,
    host: Address,
    state: RefCell<State>,
    protocol: RefCell<Option<Box<dyn Protocol>>>,
}

impl ChannelTransport {
    /// The channel's number.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Queues `data` as standard error (`SSH_MSG_CHANNEL_EXTENDED_DATA` type 1), in order with
    /// [`write`](Transport::write)s.
    pub fn write_stderr(&self, data: &[u8]) {
        self.queue(Stream::Stderr, data);
    }

    /// Sends a channel request that wants no reply (`exit-status`, `xon-xoff`), in order with
    /// the data written before it (it waits for buffered data to leave first).
    pub fn send_request(&self, request: ChannelRequest) {
        if self.state.borrow().pending_len > 0 {
            // Keep the order: the request follows the data that was written before it.
            self.state.borrow_mut().final_requests.push(request);
            return;
        }
        let sent =
            self.with_connection(|connection| connection.send_request(self.id, &request, false));
        match sent {
            Some(Ok(_)) => self.wake(),
            Some(Err(err)) => {
                log::debug!("channel {:?}: request {} not sent: {err}", self.id, request.name())
            }
            None => {
                self.state.borrow_mut().final_requests.push(request);
                self.mark_dirty();
            }
        }
    }

    /// Ends the channel once everything written has been sent: EOF, then `requests` (a
    /// session's `exit-status` or `exit-signal`), then CLOSE, as OpenSSH orders them.
    pub fn finish(&self, requests: Vec<ChannelRequest>) {
        self.state.borrow_mut().final_requests.extend(requests);
        self.lose_connection();
    }

    /// Ends a graceful close ([`lose_connection`](Transport::lose_connection)) that carries no
    /// exit status of its own with `exit-status` and the value `status` holds then, so that a
    /// protocol that knows nothing of SSH ends its session as a program would (`ssh` exits
    /// with that status instead of 255). An abort sends none.
    pub(crate) fn set_exit_status(&self, status: Rc<Cell<u32>>) {
        self.state.borrow_mut().exit_status = Some(status);
    }

    /// Whether `connection_lost` has been delivered (or is about to be).
    pub fn is_lost(&self) -> bool {
        self.state.borrow().lost
    }

    fn queue(&self, stream: Stream, data: &[u8]) {
        if data.is_empty() || !self.state.borrow().accepts_writes() {
            return;
        }
        let mut rest = data;
        if self.state.borrow().pending.is_empty() {
            match self.send_now(stream, data) {
                Some(Ok(n)) => rest = data.get(n..).unwrap_or_default(),
                Some(Err(())) => return,
                None => self.mark_dirty(),
            }
        }
        if rest.is_empty() {
            return;
        }
        let (pause, over) = {
            let mut state = self.state.borrow_mut();
            match state.pending.back_mut() {
                // Grow the last buffer only while none of it has been sent; a partly sent one
                // is followed by another (the spare, once there is one), so that no unsent byte
                // is ever moved to make room.
                Some((last, bytes, 0)) if *last == stream => bytes.extend_from_slice(rest),
                _ => {
                    let mut bytes = state.spare.take().unwrap_or_default();
                    bytes.extend_from_slice(rest);
                    state.pending.push_back((stream, bytes, 0));
                }
            }
            state.pending_len += rest.len();
            let over = state.pending_len > state.limits.hard;
            let pause = !over && state.pending_len > state.limits.high && !state.producer_paused;
            let producer = if pause { state.producer.clone() } else { None };
            if producer.is_some() {
                state.producer_paused = true;
            }
            (producer, over)
        };
        if over {
            log::warn!("channel {:?}: write buffer over its hard limit; aborting", self.id);
            let err =
                CoreError::new(ErrorKind::LimitReached, "channel write buffer over its hard limit");
            self.state.borrow_mut().reason = Some(Reason::Lost(err));
            self.abort_connection();
            return;
        }
        if let Some(producer) = pause {
            if producer.pauses_at_once() {
                // A reader stops before its next read instead of buffering more here.
                producer.pause_producing();
            } else {
                self.soon(move || producer.pause_producing());
            }
        }
    }

    /// Hands `data` to the connection layer: `Some(Ok(n))` bytes taken, `Some(Err(()))` if the
    /// channel can take no more data ever, `None` if the connection cannot be borrowed now.
    fn send_now(&self, stream: Stream, data: &[u8]) -> Option<Result<usize, ()>> {
        let code = match stream {
            Stream::Data => None,
            Stream::Stderr => Some(EXTENDED_DATA_STDERR),
        };
        let host = self.channels.upgrade()?.host.upgrade()?;
        let result = host.send_data(self.id, code, data)?;
        match result {
            Ok(n) => {
                if n > 0 {
                    self.wake();
                }
                Some(Ok(n))
            }
            Err(err) => {
                log::debug!("channel {:?}: data dropped: {err}", self.id);
                let mut state = self.state.borrow_mut();
                state.pending.clear();
                state.pending_len = 0;
                Some(Err(()))
            }
        }
    }

    /// Moves buffered bytes to the connection layer as far as the window allows, then settles
    /// the producer and any EOF or close waiting for the buffer to drain.
    fn flush(&self) {
        loop {
            let front = {
                let mut state = self.state.borrow_mut();
                match state.pending.pop_front() {
                    Some(front) => front,
                    None => break,
                }
            };
            // A partly sent buffer goes back with its offset moved, rather than copying the
            // rest: a window-limited bulk transfer sends a little of a large buffer each time.
            let (stream, bytes, start) = front;
            let unsent = bytes.get(start..).unwrap_or_default();
            let unsent_len = unsent.len();
            match self.send_now(stream, unsent) {
                Some(Ok(n)) => {
                    let mut state = self.state.borrow_mut();
                    state.pending_len -= n.min(state.pending_len);
                    if n < unsent_len {
                        state.pending.push_front((stream, bytes, start + n));
                        break;
                    }
                    // Kept for the next buffer while data is still waiting (a bulk transfer
                    // alternates between two buffers); freed once the channel has caught up.
                    if !state.pending.is_empty() && state.spare.is_none() {
                        let mut bytes = bytes;
                        bytes.clear();
                        state.spare = Some(bytes);
                    }
                }
                Some(Err(())) => break,
                None => {
                    let mut state = self.state.borrow_mut();
                    state.pending.push_front((stream, bytes, start));
                    drop(state);
                    self.mark_dirty();
                    return;
                }
            }
        }
        let resume = {
            let mut state = self.state.borrow_mut();
            if state.pending.is_empty() {
                state.spare = None;
            }
            if state.producer_paused && state.pending_len <= state.limits.low {
                state.producer_paused = false;
                state.producer.clone()
            } else {
                None
            }
        };
        if let Some(producer) = resume {
            self.soon(move || producer.resume_producing());
        }
        self.settle_ending();
    }

    /// Sends EOF, final requests and CLOSE as far as the drained buffer allows.
    fn settle_ending(&self) {
        let (eof, close, requests) = {
            let state = self.state.borrow();
            if state.pending_len > 0 || state.lost {
                return;
            }
            let close = state.ending == Ending::Graceful;
            let eof = state.write_end == WriteEnd::EofRequested
                || (close && state.write_end == WriteEnd::Open);
            (eof, close, !state.final_requests.is_empty())
        };
        if !eof && !close && !requests {
            return;
        }
        let mut requests = std::mem::take(&mut self.state.borrow_mut().final_requests);
        let reported = requests.iter().any(|r| {
            matches!(r, ChannelRequest::ExitStatus { .. } | ChannelRequest::ExitSignal { .. })
        });
        let exit_status = if close { self.state.borrow_mut().exit_status.take() } else { None };
        if let Some(status) = exit_status.filter(|_| !reported) {
            requests.push(ChannelRequest::ExitStatus { code: status.get() });
        }
        let sent = self.with_connection(|connection| {
            if eof {
                connection.send_eof(self.id)?;
            }
            for request in &requests {
                if let Err(err) = connection.send_request(self.id, request, false) {
                    log::debug!("channel {:?}: {} not sent: {err}", self.id, request.name());
                }
            }
            if close {
                connection.close(self.id)?;
            }
            Ok::<(), crate::Error>(())
        });
        match sent {
            None => {
                let mut state = self.state.borrow_mut();
                let later = std::mem::replace(&mut state.final_requests, requests);
                state.final_requests.extend(later);
                drop(state);
                self.mark_dirty();
                return;
            }
            Some(Err(err)) => log::debug!("channel {:?}: ending: {err}", self.id),
            Some(Ok(())) => {}
        }
        self.wake();
        let notify_eof = {
            let mut state = self.state.borrow_mut();
            let requested = state.write_end == WriteEnd::EofRequested;
            if eof {
                state.write_end = WriteEnd::EofSent;
            }
            if close {
                state.ending = Ending::CloseSent;
            }
            requested && eof
        };
        if notify_eof {
            let me = self.me.clone();
            self.soon(move || {
                let Some(me) = me.upgrade() else { return };
                if me.state.borrow().lost {
                    return;
                }
                let mut protocol = me.protocol.borrow_mut();
                if let Some(protocol) = protocol.as_mut() {
                    protocol.write_connection_lost();
                }
            });
        }
    }

    /// `connection_made`, then whatever arrived before it.
    fn deliver_made(&self) {
        let Some(me) = self.me.upgrade() else { return };
        if self.state.borrow().lost {
            return;
        }
        self.state.borrow_mut().made = true;
        if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
            protocol.connection_made(me);
        }
        self.deliver();
        self.flush();
    }

    /// Hands buffered data to the protocol while it is not paused, then the peer's EOF once
    /// everything before it was delivered.
    fn deliver(&self) {
        {
            let state = self.state.borrow();
            if !state.made || state.lost {
                return;
            }
        }
        let mut reads = 0;
        let mut drained = false;
        while !self.state.borrow().reading_paused && !self.state.borrow().lost {
            if reads == READS_PER_TURN {
                break;
            }
            reads += 1;
            // The protocol reads the data where the connection layer buffered it (no copy);
            // whatever it does meanwhile that needs the connection waits for the next turn,
            // as any write from inside the driver does.
            let read = self.with_connection(|connection| {
                // A session's client has no standard error to send; whatever comes is dropped.
                let stderr = connection.buffered(self.id, Stream::Stderr);
                let _ = connection.consume(self.id, Stream::Stderr, stderr);
                let data = connection.peek(self.id, Stream::Data)?;
                let n = data.len();
                if n > 0 {
                    if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
                        protocol.data_received(data);
                    }
                }
                connection.consume(self.id, Stream::Data, n)
            });
            let n = match read {
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    drained = true;
                    break;
                }
                None => {
                    self.schedule_deliver();
                    break;
                }
            };
            if n == 0 {
                drained = true;
                break;
            }
            self.wake();
        }
        if reads == READS_PER_TURN && !drained {
            self.schedule_deliver();
            return;
        }
        if drained {
            self.deliver_eof();
        }
    }

    fn deliver_eof(&self) {
        {
            let mut state = self.state.borrow_mut();
            if !state.peer_eof || state.peer_eof_delivered || state.reading_paused || state.lost {
                return;
            }
            state.peer_eof_delivered = true;
        }
        let action = match self.protocol.borrow_mut().as_mut() {
            Some(protocol) => protocol.read_connection_lost(),
            None => HalfClose::LoseConnection,
        };
        if action == HalfClose::LoseConnection {
            self.lose_connection();
        }
    }

    fn schedule_deliver(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.deliver_scheduled || state.lost {
                return;
            }
            state.deliver_scheduled = true;
        }
        let me = self.me.clone();
        self.soon(move || {
            if let Some(me) = me.upgrade() {
                me.state.borrow_mut().deliver_scheduled = false;
                me.deliver();
            }
        });
    }

    /// The peer sent CLOSE: hand over what is readable, then close our side too.
    fn close_received(&self) {
        self.deliver();
        let close_sent = self.state.borrow().ending == Ending::CloseSent;
        if close_sent {
            return;
        }
        {
            let mut state = self.state.borrow_mut();
            state.pending.clear();
            state.pending_len = 0;
            state.ending = Ending::CloseSent;
        }
        match self.with_connection(|connection| connection.close(self.id)) {
            Some(Ok(())) => self.wake(),
            Some(Err(err)) => log::debug!("channel {:?}: close: {err}", self.id),
            None => {
                self.state.borrow_mut().ending = Ending::Graceful;
                self.mark_dirty();
            }
        }
    }

    /// Both sides closed (or the connection is gone): `connection_lost`, last.
    fn closed(&self) {
        let (producer, reason) = {
            let mut state = self.state.borrow_mut();
            if state.lost {
                return;
            }
            state.lost = true;
            state.pending.clear();
            state.pending_len = 0;
            (state.producer.take(), state.reason.take().unwrap_or(Reason::Done))
        };
        let protocol = self.protocol.borrow_mut().take();
        self.soon(move || {
            if let Some(producer) = producer {
                producer.stop_producing();
            }
            if let Some(mut protocol) = protocol {
                protocol.connection_lost(reason);
            }
        });
    }

    fn with_connection<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        let host = self.channels.upgrade()?.host.upgrade()?;
        let mut connection = host.connection()?;
        Some(f(&mut connection))
    }

    fn wake(&self) {
        if let Some(host) = self.channels.upgrade().and_then(|c| c.host.upgrade()) {
            host.wake();
        }
    }

    fn mark_dirty(&self) {
        if let Some(channels) = self.channels.upgrade() {
            channels.mark_dirty(self.id);
        }
    }

    fn soon(&self, call: impl FnOnce() + 'static) {
        if let Some(channels) = self.channels.upgrade() {
            channels.scheduler.call_soon_boxed(Box::new(call));
        }
    }
}

impl Transport for ChannelTransport {
    fn write(&self, data: &[u8]) {
        self.queue(Stream::Data, data);
    }

    fn lose_connection(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.lost || state.ending != Ending::No {
                return;
            }
            state.ending = Ending::Graceful;
        }
        self.flush();
    }

    fn abort_connection(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.lost || state.ending == Ending::CloseSent {
                return;
            }
            state.pending.clear();
            state.pending_len = 0;
            state.final_requests.clear();
            state.exit_status = None;
            state.reason.get_or_insert(Reason::Aborted);
            state.ending = Ending::Graceful;
        }
        self.settle_ending();
    }

    fn write_eof(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.lost || state.write_end != WriteEnd::Open || state.ending != Ending::No {
                return;
            }
            state.write_end = WriteEnd::EofRequested;
        }
        self.settle_ending();
    }

    fn peer(&self) -> Address {
        self.peer.clone()
    }

    fn host(&self) -> Address {
        self.host.clone()
    }

    fn buffered(&self) -> usize {
        self.state.borrow().pending_len
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        let pause = {
            let mut state = self.state.borrow_mut();
            if state.lost {
                drop(state);
                self.soon(move || producer.stop_producing());
                return;
            }
            let pause = state.pending_len > state.limits.high;
            state.producer_paused = pause;
            state.producer = Some(Rc::clone(&producer));
            pause
        };
        if pause {
            self.soon(move || producer.pause_producing());
        }
    }

    fn unregister_producer(&self) {
        let mut state = self.state.borrow_mut();
        state.producer = None;
        state.producer_paused = false;
    }

    fn pause_producing(&self) {
        self.state.borrow_mut().reading_paused = true;
    }

    fn resume_producing(&self) {
        let was_paused = std::mem::replace(&mut self.state.borrow_mut().reading_paused, false);
        if was_paused {
            self.schedule_deliver();
        }
    }
}

impl fmt::Debug for ChannelTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("ChannelTransport")
            .field("id", &self.id)
            .field("buffered", &state.pending_len)
            .field("lost", &state.lost)
            .finish_non_exhaustive()
    }
}

/// A channel as the producer of another transport (a process's input, a forwarded socket):
/// paused while that transport's buffer is full. That transport's end must not end the
/// channel (a session's output and exit status, or the other direction's data, are still to
/// come), so `stop_producing` does nothing.
pub(crate) struct PauseReading(pub(crate) Rc<ChannelTransport>);

impl PushProducer for PauseReading {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }

    fn resume_producing(&self) {
        self.0.resume_producing();
    }

    fn stop_producing(&self) {}

    fn pauses_at_once(&self) -> bool {
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;

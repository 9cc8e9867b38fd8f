//! An open SSH channel as a twine [`Transport`]: a protocol written for TCP runs over it
//! unchanged.
//!
//! Flow control both ways:
//!
//! - **Receiving.** Data is handed to the protocol as it arrives, from the stack's receive
//!   buffer; while the protocol has paused reading ([`Transport::pause_producing`]) nothing is
//!   consumed, so the stack hands back no window and the server stops at the channel window.
//! - **Sending.** [`Transport::write`] gives the stack what the server's window and the output
//!   queue take and keeps the rest; past [`BufferLimits::high`] the registered producer is
//!   paused, and resumed once the buffer drained to `low`; past `hard` the channel is aborted.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};

use twine_core::error::Reason;
use twine_core::protocol::{Address, HalfClose, PushProducer};
use twine_core::reactor::BufferLimits;
use twine_core::time::Scheduler;
use twine_core::{ErrorKind, Protocol, Transport};

use super::connection::Shared;
use super::session::ExitStatus;
use super::{ClientError, Pending};
use crate::connection::msgs::ChannelRequest;
use crate::connection::{ChannelId, RequestId, Stream};

/// The most bytes handed to a protocol's `data_received` at once.
const DELIVERY_CHUNK: usize = 256 * 1024;

/// What to do once a channel is ready (open, and for a session, started); called from the loop.
pub(crate) type OnMade = Box<dyn FnOnce(Result<Rc<ChannelInner>, ClientError>)>;

/// What a channel carries: it decides how end of file is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelKind {
    /// A session: the server closes it (after the exit status); reading EOF only sends ours.
    Session,
    /// A forwarded connection: either side may close.
    Forward,
}

/// Where a session's standard error goes.
pub(crate) type StderrSink = Box<dyn FnMut(&[u8])>;

/// A channel request of ours awaiting its answer.
type RequestWaiter = Box<dyn FnOnce(&ChannelInner, bool)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's confirmation (or, for a channel the server opened, for ours).
    Opening,
    /// Open; a session waits for its start request's answer.
    Starting,
    /// Open and handed to the protocol.
    Open,
    /// Both sides closed, or the connection is gone.
    Closed,
}

struct State {
    phase: Phase,
    on_made: Option<OnMade>,
    buffer: Vec<u8>,
    sent: usize,
    limits: BufferLimits,
    producer: Option<Rc<dyn PushProducer>>,
    producer_paused: bool,
    reading_paused: bool,
    delivery_scheduled: bool,
    /// Received data taken from the connection layer whole (no copy), being handed to the
    /// protocol; taken again only once empty, so at most one window more than the layer holds.
    received: VecDeque<u8>,
    /// A delivery is under way (a nested call leaves the work to it, keeping the order).
    delivering: bool,
    eof_received: bool,
    eof_delivered: bool,
    close_received: bool,
    eof_requested: bool,
    eof_sent: bool,
    lose_requested: bool,
    close_sent: bool,
    stderr: Option<StderrSink>,
    exit: Option<ExitStatus>,
    exit_waiters: Vec<Pending<ExitStatus>>,
    requests: Vec<(RequestId, RequestWaiter)>,
    /// Why this side aborted the channel, reported to the protocol when it closes.
    aborted: Option<twine_core::Error>,
}

impl State {
    fn pending(&self) -> usize {
        self.buffer.len() - self.sent
    }

    fn closing(&self) -> bool {
        self.phase == Phase::Closed || self.close_sent || self.lose_requested || self.eof_requested
    }
}

/// One channel: its state, its protocol, and its place in the connection.
pub(crate) struct ChannelInner {
    me: Weak<Self>,
    shared: Weak<Shared>,
    scheduler: Rc<dyn Scheduler>,
    id: ChannelId,
    kind: ChannelKind,
    peer: String,
    state: RefCell<State>,
    protocol: RefCell<Option<Box<dyn Protocol>>>,
}

impl ChannelInner {
    pub(crate) fn new(
        shared: &Shared,
        id: ChannelId,
        kind: ChannelKind,
        peer: String,
        protocol: Box<dyn Protocol>,
        on_made: Option<OnMade>,
    ) -> Rc<Self> {
        Rc::new_cyclic(|me| Self {
            me: me.clone(),
            shared: shared.me.clone(),
            scheduler: Rc::clone(&shared.scheduler),
            id,
            kind,
            peer,
            state: RefCell::new(State {
                phase: Phase::Opening,
                on_made,
                buffer: Vec::new(),
                sent: 0,
                // The producer pauses as soon as anything waits here, so that what it has
                // not sent stays where it is (standard input's pipe) rather than being copied
                // into this buffer first.
                limits: BufferLimits { high: 0, ..BufferLimits::default() },
                producer: None,
                producer_paused: false,
                reading_paused: false,
                delivery_scheduled: false,
                received: VecDeque::new(),
                delivering: false,
                eof_received: false,
                eof_delivered: false,
                close_received: false,
                eof_requested: false,
                eof_sent: false,
                lose_requested: false,
                close_sent: false,
                stderr: None,
                exit: None,
                exit_waiters: Vec::new(),
                requests: Vec::new(),
                aborted: None,
            }),
            protocol: RefCell::new(Some(protocol)),
        })
    }

    /// The channel's number.
    pub(crate) fn id(&self) -> ChannelId {
        self.id
    }

    /// What to do once the channel is made (replacing the opener's callback).
    pub(crate) fn set_on_made(&self, on_made: OnMade) {
        self.state.borrow_mut().on_made = Some(on_made);
    }

    /// Where standard error goes (sessions); without a sink it is discarded.
    pub(crate) fn set_stderr(&self, sink: StderrSink) {
        self.state.borrow_mut().stderr = Some(sink);
    }

    fn soon(&self, f: impl FnOnce(&Self) + 'static) {
        let me = self.me.clone();
        self.scheduler.call_soon_boxed(Box::new(move || {
            if let Some(me) = me.upgrade() {
                f(&me);
            }
        }));
    }

    fn with_connection<R>(
        &self,
        f: impl FnOnce(&mut crate::connection::Connection) -> R,
    ) -> Option<R> {
        self.shared.upgrade()?.with_connection(f)
    }

    // --- opening ---------------------------------------------------------------------------

    /// The server confirmed the channel: a session's caller sends its requests now
    /// ([`start`](Self::start)); other channels are ready.
    pub(crate) fn opened(&self) {
        self.state.borrow_mut().phase = Phase::Starting;
        if self.kind == ChannelKind::Forward {
            self.made();
            return;
        }
        let on_made = self.state.borrow_mut().on_made.take();
        if let (Some(on_made), Some(me)) = (on_made, self.me.upgrade()) {
            on_made(Ok(me));
        }
    }

    /// Accepts a channel the server opened (a forwarded connection) and makes it.
    pub(crate) fn accept(&self) {
        let accepted = self.with_connection(|conn| conn.accept_channel(self.id));
        match accepted {
            Some(Ok(())) => {
                self.state.borrow_mut().phase = Phase::Starting;
                self.made();
            }
            _ => self.closed(Some(ClientError::ConnectionLost(None))),
        }
    }

    /// The server refused to open the channel.
    pub(crate) fn open_failed(&self, error: ClientError) {
        self.closed(Some(error));
    }

    /// Sends a channel request; `waiter` hears the answer when one is wanted.
    pub(crate) fn request(
        &self,
        request: &ChannelRequest,
        waiter: Option<RequestWaiter>,
    ) -> Result<(), ClientError> {
        let want_reply = waiter.is_some();
        let sent = self
            .with_connection(|conn| conn.send_request(self.id, request, want_reply))
            .ok_or(ClientError::ConnectionLost(None))?
            .map_err(ClientError::Protocol)?;
        if let (Some(id), Some(waiter)) = (sent, waiter) {
            self.state.borrow_mut().requests.push((id, waiter));
        }
        Ok(())
    }

    /// The session's start request was answered: make the channel, or fail it.
    pub(crate) fn started(&self, result: Result<(), ClientError>) {
        match result {
            Ok(()) => self.made(),
            Err(error) => {
                let on_made = self.state.borrow_mut().on_made.take();
                if let Some(on_made) = on_made {
                    on_made(Err(error));
                }
                self.abort_connection();
            }
        }
    }

    /// Hands the channel to its protocol.
    fn made(&self) {
        let Some(me) = self.me.upgrade() else { return };
        let on_made = {
            let mut state = self.state.borrow_mut();
            if state.phase != Phase::Starting {
                return;
            }
            state.phase = Phase::Open;
            state.on_made.take()
        };
        let transport: Rc<dyn Transport> = me.clone();
        if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
            protocol.connection_made(transport);
        }
        if let Some(on_made) = on_made {
            on_made(Ok(Rc::clone(&me)));
        }
        self.schedule_delivery();
    }

    // --- receiving -------------------------------------------------------------------------

    fn schedule_delivery(&self) {
        if self.state.borrow_mut().delivery_scheduled {
            return;
        }
        self.state.borrow_mut().delivery_scheduled = true;
        self.soon(|me| {
            me.state.borrow_mut().delivery_scheduled = false;
            me.deliver();
        });
    }

    /// Hands buffered data to the protocol while it reads, then end of file, then a close.
    pub(crate) fn deliver(&self) {
        let Some(shared) = self.shared.upgrade() else { return };
        if std::mem::replace(&mut self.state.borrow_mut().delivering, true) {
            return;
        }
        let drained = self.deliver_data(&shared);
        self.state.borrow_mut().delivering = false;
        if !drained {
            return;
        }
        self.deliver_eof();
        if self.state.borrow().close_received {
            self.close_now();
        }
    }

    /// Hands data to the protocol until none is left (true) or it cannot go on (false: paused,
    /// not open, the connection gone). The data is read where the connection layer buffered it:
    /// its buffer is taken whole ([`Connection::take_buffered`]) and handed on from here, so
    /// that the protocol runs with nothing borrowed and may call back into the channel.
    ///
    /// [`Connection::take_buffered`]: crate::connection::Connection::take_buffered
    fn deliver_data(&self, shared: &Shared) -> bool {
        loop {
            let mut received = {
                let mut state = self.state.borrow_mut();
                let forced = state.close_received;
                if state.phase != Phase::Open || (state.reading_paused && !forced) {
                    return false;
                }
                std::mem::take(&mut state.received)
            };
            if received.is_empty() {
                let taken = {
                    let mut core = shared.core.borrow_mut();
                    core.engine
                        .connection_mut()
                        .map(|conn| conn.take_buffered(self.id, Stream::Data, &mut received))
                };
                match taken {
                    Some(Ok(0)) => {
                        self.state.borrow_mut().received = received;
                        return true;
                    }
                    Some(Ok(_)) => shared.schedule_drive(),
                    Some(Err(err)) => {
                        log::debug!("receive on {:?} failed: {err}", self.id);
                        self.state.borrow_mut().received = received;
                        return true;
                    }
                    None => {
                        self.state.borrow_mut().received = received;
                        return false;
                    }
                }
            }
            let n = {
                let (front, _) = received.as_slices();
                let chunk = front.get(..front.len().min(DELIVERY_CHUNK)).unwrap_or_default();
                if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
                    protocol.data_received(chunk);
                }
                chunk.len()
            };
            received.drain(..n.min(received.len()));
            let mut state = self.state.borrow_mut();
            if state.phase == Phase::Closed {
                return false;
            }
            state.received = received;
        }
    }

    /// Hands buffered standard error to the sink (or drops it): it is never held back, so a
    /// paused standard output cannot block it beyond the shared window.
    pub(crate) fn deliver_stderr(&self) {
        let Some(shared) = self.shared.upgrade() else { return };
        loop {
            let mut chunk = std::mem::take(&mut *shared.scratch.borrow_mut());
            chunk.clear();
            {
                let mut core = shared.core.borrow_mut();
                let Some(conn) = core.engine.connection_mut() else { return };
                chunk.extend_from_slice(conn.peek(self.id, Stream::Stderr).unwrap_or_default());
                if let Err(err) = conn.consume(self.id, Stream::Stderr, chunk.len()) {
                    log::debug!("consume failed on {:?}: {err}", self.id);
                }
            }
            if chunk.is_empty() {
                *shared.scratch.borrow_mut() = chunk;
                return;
            }
            shared.schedule_drive();
            let sink = self.state.borrow_mut().stderr.take();
            if let Some(mut sink) = sink {
                sink(&chunk);
                let mut state = self.state.borrow_mut();
                if state.stderr.is_none() {
                    state.stderr = Some(sink);
                }
            }
            *shared.scratch.borrow_mut() = chunk;
        }
    }

    pub(crate) fn eof_received(&self) {
        self.state.borrow_mut().eof_received = true;
        self.deliver();
    }

    fn deliver_eof(&self) {
        {
            let mut state = self.state.borrow_mut();
            if !state.eof_received || state.eof_delivered || state.phase != Phase::Open {
                return;
            }
            state.eof_delivered = true;
        }
        let action = match self.protocol.borrow_mut().as_mut() {
            Some(protocol) => protocol.read_connection_lost(),
            None => HalfClose::LoseConnection,
        };
        if action == HalfClose::KeepWriting {
            return;
        }
        match self.kind {
            // The server closes a session once it has sent the exit status.
            ChannelKind::Session => self.write_eof(),
            ChannelKind::Forward => self.lose_connection(),
        }
    }

    pub(crate) fn close_received(&self) {
        self.state.borrow_mut().close_received = true;
        let phase = self.state.borrow().phase;
        match phase {
            Phase::Open => self.deliver(),
            _ => self.close_now(),
        }
    }

    pub(crate) fn request_received(&self, request: ChannelRequest, reply: Option<RequestId>) {
        let known = match request {
            ChannelRequest::ExitStatus { code } => {
                self.state.borrow_mut().exit = Some(ExitStatus::Code(code));
                true
            }
            ChannelRequest::ExitSignal { signal, core_dumped, message, .. } => {
                self.state.borrow_mut().exit =
                    Some(ExitStatus::Signal { name: signal, core_dumped, message });
                true
            }
            ChannelRequest::XonXoff { .. } | ChannelRequest::Eow => true,
            other => {
                log::debug!("channel request {} from the server refused", other.name());
                false
            }
        };
        if let Some(reply) = reply {
            self.with_connection(|conn| conn.reply_request(self.id, reply, known));
        }
    }

    pub(crate) fn request_answered(&self, request: RequestId, success: bool) {
        let waiter = {
            let mut state = self.state.borrow_mut();
            let position = state.requests.iter().position(|(id, _)| *id == request);
            position.map(|index| state.requests.remove(index).1)
        };
        if let Some(waiter) = waiter {
            waiter(self, success);
        }
    }

    // --- sending ---------------------------------------------------------------------------

    /// Gives the stack as much of `data` as it takes now; the count taken.
    fn send(&self, data: &[u8]) -> Option<usize> {
        let shared = self.shared.upgrade()?;
        match shared.send_channel_data(self.id, data) {
            Some(Ok(n)) => Some(n),
            Some(Err(err)) => {
                log::debug!("data for {:?} dropped: {err}", self.id);
                None
            }
            None => None,
        }
    }

    /// Sends what is buffered, as far as the window allows; then resumes the producer and
    /// finishes a requested EOF or close.
    pub(crate) fn flush(&self) {
        let Some(shared) = self.shared.upgrade() else { return };
        loop {
            let sent = {
                let state = self.state.borrow();
                let pending = state.buffer.get(state.sent..).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                shared.send_channel_data(self.id, pending)
            };
            match sent {
                Some(Ok(0)) => break,
                Some(Ok(n)) => self.state.borrow_mut().sent += n,
                other => {
                    log::debug!("data for {:?} dropped: {other:?}", self.id);
                    let mut state = self.state.borrow_mut();
                    state.buffer.clear();
                    state.sent = 0;
                }
            }
        }
        self.drained();
    }

    fn drained(&self) {
        let (resume, empty) = {
            let mut state = self.state.borrow_mut();
            if state.sent == state.buffer.len() {
                state.buffer.clear();
                state.sent = 0;
            } else if state.sent * 2 >= state.buffer.len() {
                let sent = state.sent;
                state.buffer.drain(..sent);
                state.sent = 0;
            }
            let resume = if state.producer_paused && state.pending() <= state.limits.low {
                state.producer_paused = false;
                state.producer.clone()
            } else {
                None
            };
            (resume, state.pending() == 0)
        };
        if let Some(producer) = resume {
            self.soon(move |_| producer.resume_producing());
        }
        if !empty {
            return;
        }
        let (send_eof, close) = {
            let mut state = self.state.borrow_mut();
            let send_eof = state.eof_requested && !state.eof_sent && state.phase == Phase::Open;
            if send_eof {
                state.eof_sent = true;
            }
            (send_eof, state.lose_requested)
        };
        if send_eof {
            self.with_connection(|conn| conn.send_eof(self.id));
            self.soon(|me| {
                if let Some(protocol) = me.protocol.borrow_mut().as_mut() {
                    protocol.write_connection_lost();
                }
            });
        }
        if close {
            self.close_now();
        }
    }

    /// Sends CLOSE (and EOF, if not yet sent); the channel ends when the server's CLOSE comes.
    fn close_now(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.close_sent || state.phase == Phase::Closed {
                return;
            }
            state.close_sent = true;
            state.buffer.clear();
            state.sent = 0;
        }
        let closed = self.with_connection(|conn| conn.close(self.id));
        if !matches!(closed, Some(Ok(()))) {
            log::debug!("close of {:?} not sent: {closed:?}", self.id);
        }
    }

    /// The channel is gone: both sides closed (`error` is `None`), or the connection ended or
    /// the open was refused. Tells the protocol, the opener and the exit-status waiters.
    pub(crate) fn closed(&self, error: Option<ClientError>) {
        let (on_made, was_open, exit, waiters, error) = {
            let mut state = self.state.borrow_mut();
            if state.phase == Phase::Closed {
                return;
            }
            let was_open = state.phase == Phase::Open;
            state.phase = Phase::Closed;
            state.buffer = Vec::new();
            state.received = VecDeque::new();
            state.sent = 0;
            state.producer = None;
            state.requests.clear();
            state.stderr = None;
            let exit = state.exit.clone();
            let error = error.or_else(|| state.aborted.take().map(ClientError::Local));
            (state.on_made.take(), was_open, exit, std::mem::take(&mut state.exit_waiters), error)
        };
        if let Some(shared) = self.shared.upgrade() {
            shared.forget_channel(self.id);
        }
        if let Some(on_made) = on_made {
            on_made(Err(error.clone().unwrap_or(ClientError::ConnectionLost(None))));
        }
        let protocol = self.protocol.borrow_mut().take();
        if let (Some(mut protocol), true) = (protocol, was_open) {
            let reason = match &error {
                None => Reason::Done,
                Some(ClientError::ConnectionLost(Some(err)) | ClientError::Local(err)) => {
                    Reason::Lost(err.clone())
                }
                Some(other) => Reason::Lost(twine_core::Error::from(other.clone())),
            };
            protocol.connection_lost(reason);
        }
        let status = match (exit, error) {
            (Some(exit), _) => Ok(exit),
            (None, None) => Ok(ExitStatus::Unknown),
            (None, Some(error)) => Err(error),
        };
        for waiter in waiters {
            waiter.settle(status.clone());
        }
    }

    /// Settles with the exit status when the channel closes.
    pub(crate) fn exit_status(&self) -> Pending<ExitStatus> {
        let pending = Pending::new(&self.scheduler);
        let mut state = self.state.borrow_mut();
        if state.phase == Phase::Closed {
            pending.settle(Ok(state.exit.clone().unwrap_or(ExitStatus::Unknown)));
        } else {
            state.exit_waiters.push(pending.clone());
        }
        pending
    }

    /// The exit status received so far.
    pub(crate) fn exit(&self) -> Option<ExitStatus> {
        self.state.borrow().exit.clone()
    }
}

impl Transport for ChannelInner {
    fn write(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let direct = {
            let state = self.state.borrow();
            if state.closing() {
                return;
            }
            state.pending() == 0 && state.phase == Phase::Open
        };
        let taken = if direct { self.send(data).unwrap_or(data.len()) } else { 0 };
        let rest = data.get(taken..).unwrap_or_default();
        if rest.is_empty() {
            return;
        }
        let (pause, over) = {
            let mut state = self.state.borrow_mut();
            state.buffer.extend_from_slice(rest);
            let pending = state.pending();
            let over = pending > state.limits.hard;
            let pause = if pending > state.limits.high && !state.producer_paused {
                state.producer_paused = state.producer.is_some();
                state.producer.clone()
            } else {
                None
            };
            (pause, over)
        };
        if over {
            log::warn!("{:?}: write buffer past its hard limit; aborting", self.id);
            self.state.borrow_mut().aborted =
                Some(twine_core::Error::new(ErrorKind::LimitReached, "channel write buffer"));
            self.abort_connection();
            return;
        }
        if let Some(producer) = pause {
            self.soon(move |_| producer.pause_producing());
        }
    }

    fn lose_connection(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.phase == Phase::Closed || state.lose_requested {
                return;
            }
            state.lose_requested = true;
        }
        if self.state.borrow().pending() == 0 {
            self.close_now();
        }
    }

    fn abort_connection(&self) {
        self.state.borrow_mut().lose_requested = true;
        self.close_now();
    }

    fn write_eof(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.phase == Phase::Closed || state.eof_requested || state.close_sent {
                return;
            }
            state.eof_requested = true;
        }
        if self.state.borrow().pending() == 0 {
            self.drained();
        }
    }

    fn peer(&self) -> Address {
        Address::Named(self.peer.clone())
    }

    fn host(&self) -> Address {
        Address::Named(format!("ssh channel {}", self.id.as_u32()))
    }

    fn buffered(&self) -> usize {
        self.state.borrow().pending()
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        let mut state = self.state.borrow_mut();
        state.producer = Some(producer);
        state.producer_paused = false;
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
            self.schedule_delivery();
        }
    }

    fn stop_producing(&self) {
        self.lose_connection();
    }
}

impl fmt::Debug for ChannelInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("phase", &state.phase)
            .field("buffered", &state.pending())
            .finish_non_exhaustive()
    }
}

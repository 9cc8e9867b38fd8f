//! [`Connection`]: the handle to an authenticated SSH connection, and the loop that drives the
//! sans-IO stack behind it.
//!
//! The driver follows one fixed order after every input, timer and command: write what the
//! stack has to send, re-arm its one timer, then hand each event to its owner (the handshake,
//! a channel, a forward). No user code runs while the stack is borrowed, and no user callback
//! runs inside a call the user made: commands schedule a drive on the loop.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Instant;

use twine_core::protocol::PushProducer;
use twine_core::time::{DelayedCall, Scheduler};
use twine_core::{Protocol, Reactor, Transport};

use super::channel::{ChannelInner, ChannelKind as Kind, OnMade};
use super::engine::{Engine, EngineEvent};
use super::forward::RemoteForwardEntry;
use super::handshake::Handshake;
use super::prompt::Prompter;
use super::{ClientError, Pending};
use crate::connection::msgs::{ChannelKind, GlobalReply, GlobalRequest, OpenFailureReason};
use crate::connection::{self, ChannelId, RequestId};
use crate::error::{Error, TimeoutKind};
use crate::keys::PublicKey;
use crate::transport::{self, Negotiated};
use crate::wire::DisconnectReason;

/// At most this many stack events are handled per drive before the loop gets a turn.
const EVENTS_PER_DRIVE: usize = 256;

/// A handle to an authenticated SSH connection: open sessions and forwards, send global
/// requests, disconnect. Cheap to clone; usable from any callback on the reactor thread.
///
/// Every operation is asynchronous ([`Pending`]) and fails with
/// [`ClientError::ConnectionLost`] once the connection is gone.
#[derive(Clone)]
pub struct Connection {
    pub(crate) shared: Rc<Shared>,
}

impl Connection {
    /// Opens a `session` channel with `kind` and calls `on_made` once it is ready.
    pub(crate) fn open(
        &self,
        kind: ChannelKind,
        channel_kind: Kind,
        protocol: Box<dyn Protocol>,
        on_made: OnMade,
    ) -> Result<Rc<ChannelInner>, ClientError> {
        self.shared.open_channel(kind, channel_kind, protocol, on_made)
    }

    /// Sends a global request and waits for its answer (`SSH_MSG_REQUEST_SUCCESS` with its data,
    /// or [`GlobalReply::Failure`]).
    pub fn global_request(&self, request: GlobalRequest) -> Pending<GlobalReply> {
        let pending = Pending::new(&self.shared.scheduler);
        let settle = pending.clone();
        self.shared.global_request(
            &request,
            Some(Box::new(move |_: &Shared, result| settle.settle(result))),
        );
        pending
    }

    /// Closes the connection: `SSH_MSG_DISCONNECT` (`BY_APPLICATION`), then the socket. Every
    /// channel hears `connection_lost`. Idempotent.
    pub fn disconnect(&self) {
        self.shared.disconnect(DisconnectReason::BY_APPLICATION, "disconnected by user");
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.core.borrow().closed.is_some()
    }

    /// Settles with the reason once the connection ends ([`ClientError::ConnectionLost`] with
    /// no error for a clean [`disconnect`](Self::disconnect)).
    pub fn closed(&self) -> Pending<ClientError> {
        let pending = Pending::new(&self.shared.scheduler);
        let reason = self.shared.core.borrow().closed.clone();
        match reason {
            Some(reason) => pending.settle(Ok(reason)),
            None => self.shared.close_waiters.borrow_mut().push(pending.clone()),
        }
        pending
    }

    /// The server's identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2`), without its line
    /// end.
    pub fn server_identification(&self) -> Option<String> {
        self.with_transport(|t| t.peer_identification().map(|l| String::from_utf8_lossy(l).into()))
    }

    /// The host key the server proved it holds (and the policy accepted).
    pub fn host_key(&self) -> Option<PublicKey> {
        self.with_transport(|t| t.host_key().cloned())
    }

    /// What the last key exchange settled: method, host key algorithm, ciphers, MACs,
    /// compression.
    pub fn algorithms(&self) -> Option<Negotiated> {
        self.with_transport(|t| t.negotiated().cloned())
    }

    /// The session identifier: the first key exchange's hash.
    pub fn session_id(&self) -> Option<Vec<u8>> {
        self.with_transport(|t| t.session_id().map(<[u8]>::to_vec))
    }

    fn with_transport<R>(&self, f: impl FnOnce(&transport::Transport) -> Option<R>) -> Option<R> {
        self.shared.core.borrow().engine.transport().and_then(f)
    }

    /// The reactor this connection runs on, if it has one (connections over a test engine
    /// have only a scheduler).
    pub fn reactor(&self) -> Option<&Reactor> {
        self.shared.reactor.as_ref()
    }

    /// The scheduler its results are delivered on.
    pub fn scheduler(&self) -> &Rc<dyn Scheduler> {
        &self.shared.scheduler
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.shared.core.borrow();
        f.debug_struct("Connection")
            .field("channels", &core.channels.len())
            .field("closed", &core.closed)
            .finish_non_exhaustive()
    }
}

/// A callback waiting for a global request's answer.
pub(crate) type GlobalWaiter = Box<dyn FnOnce(&Shared, Result<GlobalReply, ClientError>)>;

/// Everything behind a [`Connection`]: the stack, the channels, the wire.
pub(crate) struct Shared {
    pub(crate) me: Weak<Self>,
    pub(crate) scheduler: Rc<dyn Scheduler>,
    pub(crate) reactor: Option<Reactor>,
    pub(crate) core: RefCell<Core>,
    pub(crate) handshake: RefCell<Option<Handshake>>,
    wire: RefCell<Option<Rc<dyn Transport>>>,
    wire_paused: Cell<bool>,
    reading_paused: Cell<bool>,
    drive_scheduled: Cell<bool>,
    timer: RefCell<Option<(Instant, DelayedCall)>>,
    close_waiters: RefCell<Vec<Pending<ClientError>>>,
    /// Lent to channels to copy received data out of the stack before calling protocols.
    pub(crate) scratch: RefCell<Vec<u8>>,
    /// Who hears the server's messages for the user.
    prompter: Rc<dyn Prompter>,
}

/// The state behind the stack borrow.
pub(crate) struct Core {
    pub(crate) engine: Box<dyn Engine>,
    pub(crate) channels: HashMap<ChannelId, Rc<ChannelInner>>,
    globals: HashMap<RequestId, GlobalWaiter>,
    pub(crate) remote_forwards: Vec<RemoteForwardEntry>,
    /// The local agent socket `auth-agent@openssh.com` channels are connected to, once agent
    /// forwarding was asked for ([`Connection::forward_agent`]).
    pub(crate) agent_socket: Option<std::path::PathBuf>,
    pub(crate) closed: Option<ClientError>,
    out: Vec<u8>,
}

impl Shared {
    /// A driver around `engine`; the wire comes later ([`attach_wire`](Self::attach_wire)).
    pub(crate) fn new(
        scheduler: Rc<dyn Scheduler>,
        reactor: Option<Reactor>,
        engine: Box<dyn Engine>,
        handshake: Option<Handshake>,
        prompter: Rc<dyn Prompter>,
    ) -> Rc<Self> {
        Rc::new_cyclic(|me| Self {
            me: me.clone(),
            scheduler,
            reactor,
            core: RefCell::new(Core {
                engine,
                channels: HashMap::new(),
                globals: HashMap::new(),
                remote_forwards: Vec::new(),
                agent_socket: None,
                closed: None,
                out: Vec::new(),
            }),
            handshake: RefCell::new(handshake),
            wire: RefCell::new(None),
            wire_paused: Cell::new(false),
            reading_paused: Cell::new(false),
            drive_scheduled: Cell::new(false),
            timer: RefCell::new(None),
            close_waiters: RefCell::new(Vec::new()),
            scratch: RefCell::new(Vec::new()),
            prompter,
        })
    }

    /// The connection handle.
    pub(crate) fn handle(&self) -> Option<Connection> {
        self.me.upgrade().map(|shared| Connection { shared })
    }

    pub(crate) fn now(&self) -> Instant {
        self.scheduler.now()
    }

    // --- the wire ------------------------------------------------------------------------

    /// The byte stream to the server is up.
    pub(crate) fn attach_wire(&self, wire: Rc<dyn Transport>) {
        let producer: Rc<dyn PushProducer> = Rc::new(WireProducer { shared: self.me.clone() });
        wire.register_producer(producer);
        *self.wire.borrow_mut() = Some(wire);
        if let Some(handshake) = self.handshake.borrow_mut().as_mut() {
            handshake.stream_up(self);
        }
        self.drive();
    }

    /// Bytes from the server.
    pub(crate) fn input(&self, bytes: &[u8]) {
        let now = self.now();
        let result = self.core.borrow_mut().engine.handle_input(now, bytes);
        if let Err(err) = result {
            log::debug!("input refused: {err}");
        }
        self.drive();
    }

    /// Lent-buffer input: hands `fill` space in the transport's packet buffer, at most
    /// `max` bytes and never more than the engine takes now, and processes what it wrote.
    /// `false` when the engine lends no buffer (input then comes through [`Self::input`]).
    pub(crate) fn input_into(&self, max: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        let now = self.now();
        let result = {
            let mut core = self.core.borrow_mut();
            let Some(space) = core.engine.input_buffer(max) else { return false };
            if space.is_empty() {
                // No room: the stream pauses its reading, and `update_reading` resumes it
                // once the engine takes input again.
                fill(space);
                drop(core);
                self.reading_paused.set(true);
                return true;
            }
            let n = fill(space);
            if n == 0 {
                return true;
            }
            core.engine.input_written(now, n)
        };
        if let Err(err) = result {
            log::debug!("input refused: {err}");
        }
        self.drive();
        true
    }

    /// The server closed its sending side.
    pub(crate) fn input_ended(&self) {
        let now = self.now();
        self.core.borrow_mut().engine.handle_eof(now);
        self.drive();
    }

    /// The byte stream is gone.
    pub(crate) fn wire_lost(&self, reason: &twine_core::Reason) {
        self.wire.borrow_mut().take();
        let error = match reason {
            twine_core::Reason::Lost(err) => Some(err.clone()),
            _ => None,
        };
        self.fail(ClientError::ConnectionLost(error));
    }

    // --- the drive loop --------------------------------------------------------------------

    /// Runs [`drive`](Self::drive) on the next turn (once, however often asked).
    pub(crate) fn schedule_drive(&self) {
        if self.drive_scheduled.replace(true) {
            return;
        }
        let me = self.me.clone();
        self.scheduler.call_soon_boxed(Box::new(move || {
            if let Some(me) = me.upgrade() {
                me.drive_scheduled.set(false);
                me.drive();
            }
        }));
    }

    /// Transmit, timer, events, in that order, until the stack has nothing more.
    pub(crate) fn drive(&self) {
        let mut handled = 0;
        loop {
            if let Some(handshake) = self.handshake.borrow_mut().as_mut() {
                handshake.poll_stack(&mut self.core.borrow_mut(), self.now());
            }
            self.transmit();
            self.arm_timer();
            if handled == EVENTS_PER_DRIVE {
                self.schedule_drive();
                break;
            }
            let event = self.core.borrow_mut().engine.poll_event();
            let Some(event) = event else { break };
            handled += 1;
            self.handle_event(event);
        }
        // Polling for events may have processed buffered input and produced output.
        self.transmit();
        self.arm_timer();
        self.update_reading();
    }

    fn transmit(&self) {
        if self.wire_paused.get() {
            return;
        }
        let Some(wire) = self.wire.borrow().clone() else { return };
        let now = self.now();
        let out = {
            let mut core = self.core.borrow_mut();
            let mut out = std::mem::take(&mut core.out);
            out.clear();
            core.engine.poll_transmit(now, &mut out);
            out
        };
        if !out.is_empty() {
            wire.write(&out);
        }
        self.core.borrow_mut().out = out;
    }

    fn arm_timer(&self) {
        let deadline = self.core.borrow().engine.poll_timeout();
        let mut timer = self.timer.borrow_mut();
        if timer.as_ref().map(|(at, _)| *at) == deadline {
            return;
        }
        if let Some((_, call)) = timer.take() {
            call.cancel();
        }
        let Some(deadline) = deadline else { return };
        let delay = deadline.saturating_duration_since(self.now());
        let me = self.me.clone();
        let call = self.scheduler.call_later_boxed(
            delay,
            Box::new(move || {
                let Some(me) = me.upgrade() else { return };
                me.timer.borrow_mut().take();
                let now = me.now();
                me.core.borrow_mut().engine.handle_timeout(now);
                me.drive();
            }),
        );
        *timer = Some((deadline, call));
    }

    /// Stops reading the socket while the stack takes no more input.
    fn update_reading(&self) {
        let Some(wire) = self.wire.borrow().clone() else { return };
        let full = self.core.borrow().engine.input_capacity() == 0;
        if full != self.reading_paused.get() {
            self.reading_paused.set(full);
            if full {
                wire.pause_producing();
            } else {
                wire.resume_producing();
            }
        }
    }

    pub(crate) fn handle_event(&self, event: EngineEvent) {
        match event {
            EngineEvent::Connection(event) => self.connection_event(event),
            EngineEvent::Closed { error, initiator } => {
                log::debug!("connection closed ({initiator:?}): {error:?}");
                let reason = match error {
                    None => ClientError::ConnectionLost(None),
                    Some(Error::Timeout(TimeoutKind::Keepalive)) => {
                        ClientError::ServerNotResponding
                    }
                    Some(error) => ClientError::Protocol(error),
                };
                self.fail(reason);
            }
            EngineEvent::HostKeyReceived { .. } | EngineEvent::Auth(_) => {
                let handshake = self.handshake.borrow_mut().take();
                if let Some(mut handshake) = handshake {
                    handshake.handle(self, event);
                    let closed = self.core.borrow().closed.clone();
                    match closed {
                        Some(reason) => handshake.fail(reason),
                        None if !handshake.finished() => {
                            *self.handshake.borrow_mut() = Some(handshake);
                        }
                        None => {}
                    }
                }
            }
            EngineEvent::Notice(message) => self.prompter.notice(&message),
            EngineEvent::Other => {}
        }
    }

    // --- the connection layer --------------------------------------------------------------

    /// Runs `f` on the connection layer; `None` before authentication or after the end.
    pub(crate) fn with_connection<R>(
        &self,
        f: impl FnOnce(&mut connection::Connection) -> R,
    ) -> Option<R> {
        let mut core = self.core.borrow_mut();
        if core.closed.is_some() {
            return None;
        }
        let result = core.engine.connection_mut().map(f);
        drop(core);
        self.schedule_drive();
        result
    }

    /// Sends data on channel `id`, framed straight into the stack's packet buffer (see
    /// [`Engine::send_channel_data`]); `None` once the connection is closed.
    pub(crate) fn send_channel_data(
        &self,
        id: ChannelId,
        data: &[u8],
    ) -> Option<Result<usize, Error>> {
        let mut core = self.core.borrow_mut();
        if core.closed.is_some() {
            return None;
        }
        let result = core.engine.send_channel_data(id, data);
        drop(core);
        self.schedule_drive();
        Some(result)
    }

    fn channel(&self, id: ChannelId) -> Option<Rc<ChannelInner>> {
        self.core.borrow().channels.get(&id).cloned()
    }

    /// Runs `f` on channel `id` if it is ours.
    fn on_channel(&self, id: ChannelId, f: impl FnOnce(&ChannelInner)) {
        if let Some(channel) = self.channel(id) {
            f(&channel);
        }
    }

    pub(crate) fn forget_channel(&self, id: ChannelId) {
        self.core.borrow_mut().channels.remove(&id);
    }

    pub(crate) fn open_channel(
        &self,
        kind: ChannelKind,
        channel_kind: Kind,
        protocol: Box<dyn Protocol>,
        on_made: OnMade,
    ) -> Result<Rc<ChannelInner>, ClientError> {
        if let Some(reason) = self.core.borrow().closed.clone() {
            return Err(reason);
        }
        let peer = describe(&kind);
        let id = self
            .with_connection(|conn| conn.open_channel(kind))
            .ok_or(ClientError::ConnectionLost(None))?
            .map_err(ClientError::Protocol)?;
        let channel = ChannelInner::new(self, id, channel_kind, peer, protocol, Some(on_made));
        self.core.borrow_mut().channels.insert(id, Rc::clone(&channel));
        Ok(channel)
    }

    /// Takes a channel the server opened (a forwarded connection): `on_made` runs once it is
    /// accepted with [`ChannelInner::accept`].
    pub(crate) fn adopt_channel(
        &self,
        id: ChannelId,
        peer: String,
        protocol: Box<dyn Protocol>,
    ) -> Rc<ChannelInner> {
        let channel = ChannelInner::new(self, id, Kind::Forward, peer, protocol, None);
        self.core.borrow_mut().channels.insert(id, Rc::clone(&channel));
        channel
    }

    /// Sends a global request; `waiter` hears the answer.
    pub(crate) fn global_request(&self, request: &GlobalRequest, waiter: Option<GlobalWaiter>) {
        let want_reply = waiter.is_some();
        let sent = self.with_connection(|conn| conn.send_global_request(request, want_reply));
        match sent {
            Some(Ok(Some(id))) => {
                if let Some(waiter) = waiter {
                    self.core.borrow_mut().globals.insert(id, waiter);
                }
            }
            Some(Ok(None)) => {}
            Some(Err(err)) => {
                if let Some(waiter) = waiter {
                    self.later(move |shared| waiter(shared, Err(ClientError::Protocol(err))));
                }
            }
            None => {
                let reason =
                    self.core.borrow().closed.clone().unwrap_or(ClientError::ConnectionLost(None));
                if let Some(waiter) = waiter {
                    self.later(move |shared| waiter(shared, Err(reason)));
                }
            }
        }
    }

    /// Runs `f` on the next turn, if the connection still exists.
    pub(crate) fn later(&self, f: impl FnOnce(&Self) + 'static) {
        let me = self.me.clone();
        self.scheduler.call_soon_boxed(Box::new(move || {
            if let Some(me) = me.upgrade() {
                f(&me);
            }
        }));
    }

    fn connection_event(&self, event: connection::Event) {
        use connection::{Event as E, Stream};
        match event {
            E::ChannelOpened { id } => self.on_channel(id, |channel| channel.opened()),
            E::ChannelOpenFailed { id, reason, description } => {
                let channel = self.core.borrow_mut().channels.remove(&id);
                if let Some(channel) = channel {
                    channel.open_failed(ClientError::ChannelOpenFailed { reason, description });
                }
            }
            E::DataReceived { id, stream: Stream::Data } => {
                self.on_channel(id, |channel| channel.deliver())
            }
            E::DataReceived { id, stream: Stream::Stderr } => {
                self.on_channel(id, |channel| channel.deliver_stderr())
            }
            E::Writable { id } => self.on_channel(id, |channel| channel.flush()),
            E::EofReceived { id } => self.on_channel(id, |channel| channel.eof_received()),
            E::CloseReceived { id } => self.on_channel(id, |channel| channel.close_received()),
            E::ChannelClosed { id } => {
                let channel = self.core.borrow_mut().channels.remove(&id);
                if let Some(channel) = channel {
                    channel.closed(None);
                }
            }
            E::RequestReceived { id, request, reply } => match self.channel(id) {
                Some(channel) => channel.request_received(request, reply),
                None => {
                    if let Some(reply) = reply {
                        self.with_connection(|conn| conn.reply_request(id, reply, false));
                    }
                }
            },
            E::RequestAnswered { id, request, success } => {
                if let Some(channel) = self.channel(id) {
                    channel.request_answered(request, success);
                }
            }
            E::GlobalRequestReceived { request, reply } => {
                log::debug!("global request {} from the server refused", request.name());
                if let Some(reply) = reply {
                    self.with_connection(|conn| {
                        conn.reply_global_request(reply, GlobalReply::Failure)
                    });
                }
            }
            E::GlobalRequestAnswered { request, reply } => {
                let waiter = self.core.borrow_mut().globals.remove(&request);
                if let Some(waiter) = waiter {
                    waiter(self, Ok(reply));
                }
            }
            E::ChannelOpenRequested { id, kind } => self.open_requested(id, kind),
        }
    }

    fn open_requested(&self, id: ChannelId, kind: ChannelKind) {
        if let ChannelKind::ForwardedTcpip { .. } | ChannelKind::ForwardedStreamlocal { .. } = kind
        {
            super::forward::forwarded_channel(self, id, &kind);
            return;
        }
        if let ChannelKind::AuthAgent = kind {
            let socket = self.core.borrow().agent_socket.clone();
            if let Some(socket) = socket {
                super::forward::agent_channel(self, id, socket);
                return;
            }
        }
        log::debug!("the server's {} channel refused", kind.type_name());
        self.with_connection(|conn| {
            conn.reject_channel(
                id,
                OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                "open failed: not requested",
            )
        });
    }

    // --- the end ---------------------------------------------------------------------------

    /// Ends the connection with a `SSH_MSG_DISCONNECT`.
    pub(crate) fn disconnect(&self, reason: DisconnectReason, description: &str) {
        if self.core.borrow().closed.is_some() {
            return;
        }
        self.core.borrow_mut().engine.disconnect(reason, description);
        self.fail(ClientError::ConnectionLost(None));
    }

    /// Ends everything with `reason` (the first reason given wins): the handshake's waiter,
    /// every channel, every global request, every forward, then the wire.
    pub(crate) fn fail(&self, reason: ClientError) {
        if self.core.borrow().closed.is_some() {
            return;
        }
        log::debug!("client connection ends: {reason}");
        let (channels, globals, forwards) = {
            let mut core = self.core.borrow_mut();
            core.closed = Some(reason.clone());
            (
                std::mem::take(&mut core.channels),
                std::mem::take(&mut core.globals),
                std::mem::take(&mut core.remote_forwards),
            )
        };
        if let Some((_, call)) = self.timer.borrow_mut().take() {
            call.cancel();
        }
        let handshake = self.handshake.borrow_mut().take();
        if let Some(handshake) = handshake {
            handshake.fail(reason.clone());
        }
        for channel in channels.into_values() {
            channel.closed(Some(reason.clone()));
        }
        for waiter in globals.into_values() {
            waiter(self, Err(reason.clone()));
        }
        drop(forwards);
        for waiter in self.close_waiters.borrow_mut().drain(..) {
            waiter.settle(Ok(reason.clone()));
        }
        self.transmit();
        let wire = self.wire.borrow_mut().take();
        if let Some(wire) = wire {
            wire.lose_connection();
        }
    }
}

impl Drop for Shared {
    /// A driver dropped before its connection settled (a [`ClientProtocol`] never run) fails
    /// its waiter rather than leaving it pending forever.
    ///
    /// [`ClientProtocol`]: super::ClientProtocol
    fn drop(&mut self) {
        if let Some(handshake) = self.handshake.get_mut().take() {
            handshake.fail(ClientError::ConnectionLost(None));
        }
    }
}

/// Pauses and resumes writing to the wire as its buffer fills and drains.
struct WireProducer {
    shared: Weak<Shared>,
}

impl PushProducer for WireProducer {
    fn pause_producing(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.wire_paused.set(true);
        }
    }

    fn resume_producing(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.wire_paused.set(false);
            shared.drive();
        }
    }

    fn stop_producing(&self) {}
}

/// How a channel is described as a transport's peer address.
fn describe(kind: &ChannelKind) -> String {
    match kind {
        ChannelKind::DirectTcpip { host, port, .. } => format!("ssh direct-tcpip {host}:{port}"),
        ChannelKind::DirectStreamlocal { socket_path } => {
            format!("ssh direct-streamlocal {}", String::from_utf8_lossy(socket_path))
        }
        other => format!("ssh {}", other.type_name()),
    }
}

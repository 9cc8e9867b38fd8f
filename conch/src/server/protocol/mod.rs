//! [`ServerProtocol`] and [`ServerFactory`]: one SSH connection on a reactor transport.
//!
//! # The drive loop
//!
//! Every input (`data_received`, end of file, the timer, an auth backend's answer, a channel's
//! wake-up) is followed by one `drive`, in quinn's fixed order:
//!
//! 1. `poll_transmit`: the stack's output is written to the transport;
//! 2. `poll_timeout`: the one timer ([`DelayedCall`]) is re-armed if the deadline moved;
//! 3. `poll_event`: each event is dispatched (auth requests to the [`AuthBackend`], channel
//!    events to the channels, sessions and forwardings), then back to 1 until nothing moves.
//!
//! The stack is never borrowed while application code runs: events are taken out first, and
//! slow answers (auth decisions, connects) come back as commands on a later turn. Reading
//! pauses while the stack's `input_capacity()` is 0.
//!
//! # A full socket
//!
//! The connection is the producer of its transport (Twisted's producer and consumer): past the
//! transport's high-water mark it is paused, and while paused the channels' data waits where it
//! is (a channel buffers what it was handed and pauses its own producer, a child's pipe), so what
//! the server holds for a peer that does not read stays bounded by the stack's send queue and the
//! transport's high-water mark, whatever window the peer granted. Everything else (replies,
//! window adjusts, keepalives) still goes out. Once the transport has drained it is resumed and
//! every channel sends what it held.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use twine_core::error::{ErrorKind, Reason};
use twine_core::protocol::{Address, Factory, HalfClose, Protocol, PushProducer, Transport};
use twine_core::time::{DelayedCall, Scheduler};
use twine_core::Reactor;

use super::channel::{ChannelHost, Channels};
use super::forwarding::{Forwarding, ForwardingPolicy};
use super::session::{
    env_accepted, Login, PtyRequest, SessionBackend, SessionChannel, SessionCommand,
    SessionControl, SessionInfo, SessionStart,
};
use super::{
    when_fired, Account, AccountStatus, AuthBackend, AuthRequest, ConnectionFacts, ConnectionId,
    LoginRequest, Offload, Restrictions,
};
use crate::connection::msgs::{
    ChannelKind, ChannelRequest, GlobalReply, GlobalRequest, OpenFailureReason,
};
use crate::connection::{ChannelId, Connection, Event as ChannelEvent};
use crate::crypto::OsRandom;
use crate::error::{Error, Initiator};
use crate::stack::{ServerEvent, ServerStack, ServerStackConfig};
use crate::transport;
use crate::userauth::{Attempt, Decision, Method, RequestId as AuthId, ServerEvent as AuthEvent};
use crate::wire::DisconnectReason;

mod settings;
mod timeouts;

pub use settings::{ChannelTimeout, ConnectionSettings, UserSettings, MAX_CHANNEL_TIMEOUTS};
use timeouts::Timeouts;

/// The most `env` requests one session may make (sshd's limit).
const MAX_ENV_REQUESTS: usize = 1000;

/// The most events dispatched in one drive before the loop lets others run.
const EVENTS_PER_DRIVE: usize = 256;

/// What the drive loop needs of the sans-IO server stack: [`ServerStack`] implements it, and
/// the adapter's own tests script it (order of calls, timer, read pausing) without a client.
pub(crate) trait ServerCore {
    /// Bytes from the client.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error>;
    /// The client closed its sending side.
    fn handle_eof(&mut self, now: Instant);
    /// The deadline of `poll_timeout` passed.
    fn handle_timeout(&mut self, now: Instant);
    /// Appends wire bytes to send.
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>);
    /// The one deadline the stack wants.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next event.
    fn poll_event(&mut self) -> Option<CoreEvent>;
    /// Answers an [`AuthEvent::UserIdentified`]: `config` replaces the stack's for the rest of
    /// the connection.
    fn user_settings(
        &mut self,
        now: Instant,
        config: Option<Arc<ServerStackConfig>>,
    ) -> Result<(), Error>;
    /// Replaces the transport's rekey limits for this connection.
    fn set_rekey_limits(&mut self, now: Instant, limits: transport::RekeyLimits) {
        let _ = (now, limits);
    }
    /// Answers an [`AuthEvent::AuthRequested`].
    fn auth_decided(
        &mut self,
        now: Instant,
        id: AuthId,
        decision: Decision<Restrictions>,
    ) -> Result<(), Error>;
    /// The connection layer, once the user is authenticated.
    fn connection_mut(&mut self) -> Option<&mut Connection>;
    /// Sends channel data (`code` `None`) or extended data as [`Connection::send_data`] does;
    /// the stack frames it straight into its packet buffer.
    fn send_channel_data(
        &mut self,
        id: ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Result<usize, Error> {
        let connection = self.connection_mut().ok_or(Error::ConnectionClosed)?;
        match code {
            None => connection.send_data(id, data),
            Some(code) => connection.send_extended_data(id, code, data),
        }
    }
    /// Ends the connection with `SSH_MSG_DISCONNECT`.
    fn disconnect(&mut self, reason: DisconnectReason, description: &str);
    /// How many more input bytes the stack takes now (0: stop reading).
    fn input_capacity(&self) -> usize;
    /// Space for at most `max` input bytes (and never more than
    /// [`input_capacity`](Self::input_capacity)), to read straight into from the socket; then
    /// [`input_written`](Self::input_written). `None` (the default): the core takes input only
    /// through [`handle_input`](Self::handle_input).
    fn input_buffer(&mut self, max: usize) -> Option<&mut [u8]> {
        let _ = max;
        None
    }
    /// `n` bytes were read into the start of the space [`input_buffer`](Self::input_buffer)
    /// lent last.
    fn input_written(&mut self, now: Instant, n: usize) -> Result<(), Error> {
        let _ = (now, n);
        Ok(())
    }
    /// The client's identification string, once received.
    fn peer_identification(&self) -> Option<String>;
    /// The `:style` suffix of the first authentication request's user name, if any.
    fn login_style(&self) -> Option<String> {
        None
    }
    /// The `hostkeys-00@openssh.com` announcement to send after authentication, if any.
    fn host_keys_announcement(&self) -> Option<GlobalRequest> {
        None
    }
    /// Signatures answering `hostkeys-prove-00@openssh.com` for these key blobs (`None`:
    /// refuse).
    fn prove_host_keys(&self, keys: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        let _ = keys;
        None
    }
}

/// The stack's events, as the drive loop dispatches them.
#[derive(Debug)]
pub(crate) enum CoreEvent {
    /// From user authentication.
    Auth(AuthEvent<Restrictions>),
    /// From the connection layer.
    Connection(ChannelEvent),
    /// The connection ended.
    Closed { error: Option<Error>, initiator: Initiator },
    /// Anything else (transport notices).
    Other,
}

impl ServerCore for ServerStack<Restrictions> {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        Self::handle_input(self, now, bytes)
    }

    fn handle_eof(&mut self, now: Instant) {
        Self::handle_eof(self, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Self::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        Self::poll_transmit(self, now, out);
    }

    fn send_channel_data(
        &mut self,
        id: ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Result<usize, Error> {
        Self::send_channel_data(self, id, code, data)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Self::poll_timeout(self)
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        let event = match Self::poll_event(self)? {
            ServerEvent::Auth(event) => CoreEvent::Auth(event),
            ServerEvent::Connection(event) => CoreEvent::Connection(event),
            ServerEvent::Closed { error, initiator } => CoreEvent::Closed { error, initiator },
            ServerEvent::Transport(transport::Event::DebugReceived { message, .. }) => {
                log::debug!("client debug message: {message}");
                CoreEvent::Other
            }
            ServerEvent::Transport(transport::Event::UnimplementedReceived { seq }) => {
                log::debug!("client did not understand our packet {seq}");
                CoreEvent::Other
            }
            _ => CoreEvent::Other,
        };
        Some(event)
    }

    fn user_settings(
        &mut self,
        now: Instant,
        config: Option<Arc<ServerStackConfig>>,
    ) -> Result<(), Error> {
        Self::user_settings(self, now, config)
    }

    fn set_rekey_limits(&mut self, now: Instant, limits: transport::RekeyLimits) {
        Self::set_rekey_limits(self, now, limits);
    }

    fn auth_decided(
        &mut self,
        now: Instant,
        id: AuthId,
        decision: Decision<Restrictions>,
    ) -> Result<(), Error> {
        Self::auth_decided(self, now, id, decision)
    }

    fn connection_mut(&mut self) -> Option<&mut Connection> {
        Self::connection_mut(self)
    }

    fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        Self::disconnect(self, reason, description);
    }

    fn input_capacity(&self) -> usize {
        Self::input_capacity(self)
    }

    fn input_buffer(&mut self, max: usize) -> Option<&mut [u8]> {
        Some(Self::input_buffer(self, max))
    }

    fn input_written(&mut self, now: Instant, n: usize) -> Result<(), Error> {
        Self::input_written(self, now, n)
    }

    fn peer_identification(&self) -> Option<String> {
        let line = self.transport().peer_identification()?;
        Some(String::from_utf8_lossy(line).into_owned())
    }

    fn login_style(&self) -> Option<String> {
        Self::login_style(self).map(str::to_owned)
    }

    fn host_keys_announcement(&self) -> Option<GlobalRequest> {
        Some(Self::host_keys_announcement(self))
    }

    fn prove_host_keys(&self, keys: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        Self::prove_host_keys(self, keys)
    }
}

type CoreFactory = dyn Fn() -> Result<Box<dyn ServerCore>, Error>;

/// Everything a server needs, shared by its connections: the stack's configuration, who may
/// log in ([`AuthBackend`]), what sessions run ([`SessionBackend`]), and the forwarding
/// policy.
pub struct ServerConfig {
    core: Rc<CoreFactory>,
    /// Who may log in.
    pub auth: Rc<dyn AuthBackend>,
    /// What sessions run.
    pub sessions: Rc<dyn SessionBackend>,
    /// Which forwardings are allowed.
    pub forwarding: ForwardingPolicy,
    /// sshd's `AcceptEnv`: the `env` requests accepted (globs); empty accepts none.
    pub accept_env: Vec<String>,
    /// sshd's `MaxSessions`: session channels open at once per connection (default 10).
    pub max_sessions: usize,
    /// sshd's `ChannelTimeout` (default none).
    pub channel_timeouts: Vec<ChannelTimeout>,
    /// sshd's `UnusedConnectionTimeout` (default `None`: never).
    pub unused_connection_timeout: Option<Duration>,
    /// Decides each connection's settings when its user is known (sshd's `Match`), replacing
    /// the fields above for that connection; `None` (the default) keeps them. The stack must
    /// have [`settings_per_user`](crate::userauth::ServerConfig::settings_per_user) on.
    pub user_settings: Option<Rc<dyn UserSettings>>,
}

impl ServerConfig {
    /// A server whose connections each run a [`ServerStack`] on `stack` (host keys,
    /// algorithms, user authentication's methods and limits, the connection layer's windows,
    /// the login grace time and keepalives), with `auth` deciding who logs in and `sessions`
    /// running what they ask for. Forwarding is allowed as sshd allows it by default
    /// ([`ForwardingPolicy::default`]), `AcceptEnv` is `LANG LC_*` and `MaxSessions` 10; change
    /// the public fields to differ.
    ///
    /// `stack` may be shared with other reactors' configurations (an `Arc`). Each connection
    /// draws its randomness from the operating system ([`OsRandom`]).
    pub fn new(
        stack: impl Into<Arc<ServerStackConfig>>,
        auth: impl AuthBackend + 'static,
        sessions: impl SessionBackend + 'static,
    ) -> Self {
        let stack = stack.into();
        let core = move || {
            let stack = ServerStack::new(Arc::clone(&stack), Box::new(OsRandom::new()))?;
            Ok(Box::new(stack) as Box<dyn ServerCore>)
        };
        Self::with_core(core, auth, sessions)
    }

    /// A configuration whose connections each run the stack `core` builds.
    pub(crate) fn with_core(
        core: impl Fn() -> Result<Box<dyn ServerCore>, Error> + 'static,
        auth: impl AuthBackend + 'static,
        sessions: impl SessionBackend + 'static,
    ) -> Self {
        Self {
            core: Rc::new(core),
            auth: Rc::new(auth),
            sessions: Rc::new(sessions),
            forwarding: ForwardingPolicy::default(),
            accept_env: vec!["LANG".into(), "LC_*".into()],
            max_sessions: 10,
            channel_timeouts: Vec::new(),
            unused_connection_timeout: None,
            user_settings: None,
        }
    }

    /// The settings a connection starts with.
    fn settings(&self) -> ConnectionSettings {
        let mut settings = ConnectionSettings::new();
        settings.forwarding = self.forwarding.clone();
        settings.accept_env.clone_from(&self.accept_env);
        settings.max_sessions = self.max_sessions;
        settings.channel_timeouts.clone_from(&self.channel_timeouts);
        settings.unused_connection_timeout = self.unused_connection_timeout;
        settings
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("forwarding", &self.forwarding)
            .field("accept_env", &self.accept_env)
            .field("max_sessions", &self.max_sessions)
            .field("channel_timeouts", &self.channel_timeouts)
            .field("unused_connection_timeout", &self.unused_connection_timeout)
            .finish_non_exhaustive()
    }
}

/// The loop's services for a connection: time, blocking work, and (optional) the reactor for
/// sockets. A test passes a [`Clock`](twine_core::testing::Clock)'s scheduler and no reactor.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) scheduler: Rc<dyn Scheduler>,
    pub(crate) offload: Offload,
    pub(crate) reactor: Option<Reactor>,
}

/// Builds a [`ServerProtocol`] for each connection: give it to
/// [`Reactor::listen_tcp`](twine_core::Reactor::listen_tcp), or build one protocol for
/// [`Reactor::adopt_fd_pair`](twine_core::Reactor::adopt_fd_pair) on stdin and stdout
/// (inetd mode) with [`ServerFactory::protocol`].
pub struct ServerFactory {
    config: Rc<ServerConfig>,
    services: Services,
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

impl ServerFactory {
    /// A factory serving `config` on `reactor`.
    pub fn new(reactor: &Reactor, config: ServerConfig) -> Self {
        let services = Services {
            scheduler: reactor.scheduler(),
            offload: Offload::reactor(reactor),
            reactor: Some(reactor.clone()),
        };
        Self { config: Rc::new(config), services }
    }

    /// Runs the auth backends' blocking work with `offload` instead of the reactor's thread
    /// pool: [`Offload::inline`] on the reactor's scheduler for a backend whose "blocking" calls
    /// are short requests to another process (a privilege-separated worker asking its monitor),
    /// where a hop to a pool thread and back costs more than the call.
    #[must_use]
    pub fn with_offload(mut self, offload: Offload) -> Self {
        self.services.offload = offload;
        self
    }

    #[cfg(test)]
    pub(crate) fn with_services(config: ServerConfig, services: Services) -> Self {
        Self { config: Rc::new(config), services }
    }

    /// One protocol, for a connection made some other way (inetd mode).
    pub fn protocol(&self) -> ServerProtocol {
        let id = ConnectionId(NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed));
        ServerProtocol {
            id,
            config: Rc::clone(&self.config),
            services: self.services.clone(),
            conn: None,
            failed: Rc::new(Cell::new(false)),
        }
    }
}

impl fmt::Debug for ServerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFactory").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Factory for ServerFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(self.protocol()))
    }
}

/// One SSH server connection over a reactor transport: each input is followed by the stack's
/// output, its timer and its events, in that order, until nothing moves; reading pauses while
/// the stack takes no input.
pub struct ServerProtocol {
    id: ConnectionId,
    config: Rc<ServerConfig>,
    services: Services,
    conn: Option<Rc<Conn>>,
    /// Set when the connection ends in an error (see [`ServerProtocol::ended_in_error`]).
    failed: Rc<Cell<bool>>,
}

impl ServerProtocol {
    /// The connection's id, unique in this process and increasing.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Whether the connection ended in an error — a bad identification string, a failed key
    /// exchange, a corrupt packet, the login grace time — rather than by a disconnect or end
    /// of stream from either side. sshd exits with status 255 after such a connection in inetd
    /// mode; a server running one connection on pipes reports it the same way.
    pub fn ended_in_error(&self) -> bool {
        self.failed.get()
    }
}

impl fmt::Debug for ServerProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerProtocol").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Protocol for ServerProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let peer = socket_address(&transport.peer());
        let local = socket_address(&transport.host());
        let facts = ConnectionFacts::new(self.id, peer, local);
        match (self.config.core)() {
            Ok(core) => {
                log::info!("connection {} from {}", self.id, transport.peer());
                let conn = Conn::new(
                    Rc::clone(&self.config),
                    self.services.clone(),
                    core,
                    transport,
                    facts,
                    Rc::clone(&self.failed),
                );
                let producer = WireProducer { conn: Rc::downgrade(&conn) };
                conn.transport.register_producer(Rc::new(producer));
                conn.drive();
                self.conn = Some(conn);
            }
            Err(err) => {
                log::error!(
                    "connection {} from {}: cannot start: {err}",
                    self.id,
                    transport.peer()
                );
                transport.abort_connection();
            }
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        let Some(conn) = &self.conn else { return };
        let now = conn.now();
        // A privilege-separated worker's host keys sign through its monitor, for this
        // connection (key exchanges are answered while input is handled).
        let _signing = crate::server::privsep::SigningScope::enter(self.id);
        let result = conn.core.borrow_mut().handle_input(now, data);
        if let Err(err) = result {
            log::debug!("connection {}: input error: {err}", self.id);
        }
        conn.drive();
    }

    /// Ciphertext is read straight into the transport's packet buffer (no copy through the
    /// reactor's read buffer): at most what the stack takes now, so input is never refused.
    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        let Some(conn) = &self.conn else { return false };
        let now = conn.now();
        let _signing = crate::server::privsep::SigningScope::enter(self.id);
        let result = {
            let mut core = conn.core.borrow_mut();
            let Some(space) = core.input_buffer(size_hint) else { return false };
            if space.is_empty() {
                // No room: the stream pauses its reading, and the drive resumes it once the
                // stack takes input again.
                fill(space);
                drop(core);
                conn.reading_paused.set(true);
                return true;
            }
            let n = fill(space);
            if n == 0 {
                return true;
            }
            core.input_written(now, n)
        };
        if let Err(err) = result {
            log::debug!("connection {}: input error: {err}", self.id);
        }
        conn.drive();
        true
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        if let Some(conn) = &self.conn {
            let now = conn.now();
            conn.core.borrow_mut().handle_eof(now);
            conn.drive();
        }
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: Reason) {
        if let Some(conn) = self.conn.take() {
            conn.ended(&reason);
        }
    }
}

/// The name `ChannelTimeout` knows a channel type by (sshd's names for agent and X11
/// channels differ from their wire types).
fn timeout_type(wire: &'static str) -> &'static str {
    match wire {
        "auth-agent@openssh.com" => "agent-connection",
        "x11" => "x11-connection",
        other => other,
    }
}

fn socket_address(address: &Address) -> Option<std::net::SocketAddr> {
    match address {
        Address::Tcp(addr) => Some(*addr),
        _ => None,
    }
}

/// A session channel: its setup before it starts, its controls after.
#[derive(Default)]
struct SessionSlot {
    pty: Option<PtyRequest>,
    env: Vec<(String, Vec<u8>)>,
    control: Option<Box<dyn SessionControl>>,
}

/// One connection's state, shared by the protocol, its timer, its channels and the callbacks
/// of its auth decisions.
struct Conn {
    me: Weak<Self>,
    config: Rc<ServerConfig>,
    services: Services,
    core: RefCell<Box<dyn ServerCore>>,
    transport: Rc<dyn Transport>,
    facts: RefCell<Rc<ConnectionFacts>>,
    channels: Rc<Channels>,
    timer: RefCell<Option<(Instant, DelayedCall)>>,
    driving: Cell<bool>,
    again: Cell<bool>,
    wake_scheduled: Cell<bool>,
    reading_paused: Cell<bool>,
    /// The transport's buffer is past its high-water mark: channel data waits (see the module
    /// docs).
    wire_full: Cell<bool>,
    ended: Cell<bool>,
    closed: Cell<bool>,
    out: RefCell<Vec<u8>>,
    /// The user name of the first auth request, for the log.
    user: RefCell<Option<String>>,
    /// Set once the user is in and the login is ready (account and session opened).
    login: RefCell<Option<Rc<Login>>>,
    /// Whether the backend's login session was opened (and must be closed).
    session_opened: Cell<bool>,
    /// Connection events held while the login is being set up.
    held: RefCell<VecDeque<ChannelEvent>>,
    forwarding: RefCell<Option<Rc<Forwarding>>>,
    sessions: RefCell<HashMap<ChannelId, SessionSlot>>,
    /// Shared with the protocol: set when the connection ends in an error.
    failed: Rc<Cell<bool>>,
    /// The settings in force: the server's, then the user's.
    settings: RefCell<Rc<ConnectionSettings>>,
    /// `ChannelTimeout` and `UnusedConnectionTimeout`, and their timer.
    timeouts: RefCell<Timeouts>,
    timeouts_timer: RefCell<Option<(Instant, DelayedCall)>>,
}

impl Conn {
    fn new(
        config: Rc<ServerConfig>,
        services: Services,
        core: Box<dyn ServerCore>,
        transport: Rc<dyn Transport>,
        facts: ConnectionFacts,
        failed: Rc<Cell<bool>>,
    ) -> Rc<Self> {
        Rc::new_cyclic(|me: &Weak<Self>| {
            let host: Weak<dyn ChannelHost> = me.clone() as Weak<dyn ChannelHost>;
            let settings = Rc::new(config.settings());
            let channels = Channels::new(
                host,
                Rc::clone(&services.scheduler),
                transport.peer(),
                transport.host(),
            );
            Self {
                me: me.clone(),
                config,
                services,
                core: RefCell::new(core),
                transport,
                facts: RefCell::new(Rc::new(facts)),
                channels,
                timer: RefCell::new(None),
                driving: Cell::new(false),
                again: Cell::new(false),
                wake_scheduled: Cell::new(false),
                reading_paused: Cell::new(false),
                wire_full: Cell::new(false),
                ended: Cell::new(false),
                closed: Cell::new(false),
                out: RefCell::new(Vec::new()),
                user: RefCell::new(None),
                login: RefCell::new(None),
                session_opened: Cell::new(false),
                held: RefCell::new(VecDeque::new()),
                forwarding: RefCell::new(None),
                sessions: RefCell::new(HashMap::new()),
                failed,
                settings: RefCell::new(settings),
                timeouts: RefCell::new(Timeouts::default()),
                timeouts_timer: RefCell::new(None),
            }
        })
    }

    fn now(&self) -> Instant {
        self.services.scheduler.now()
    }

    fn facts(&self) -> Rc<ConnectionFacts> {
        Rc::clone(&self.facts.borrow())
    }

    /// Transmit, timeout, events, until nothing moves (see the module docs).
    fn drive(&self) {
        if self.ended.get() {
            return;
        }
        if self.driving.replace(true) {
            self.again.set(true);
            return;
        }
        // Sessions started and keys signed while dispatching are this connection's (a
        // privilege-separated worker asks its monitor on its behalf).
        let _scope = crate::server::privsep::SigningScope::enter(self.facts.borrow().id);
        let mut dispatched = 0;
        loop {
            self.again.set(false);
            self.channels.flush();
            self.transmit();
            self.rearm_timer();
            let event = self.core.borrow_mut().poll_event();
            match event {
                Some(event) => {
                    self.dispatch(event);
                    dispatched += 1;
                }
                None if self.again.get() => {}
                None => break,
            }
            if dispatched >= EVENTS_PER_DRIVE {
                self.wake();
                break;
            }
        }
        self.transmit();
        self.settle_reading();
        self.watch_timeouts();
        self.driving.set(false);
    }

    /// Reads the channels' data counters for the timeouts and re-arms their timer.
    fn watch_timeouts(&self) {
        if !self.timeouts.borrow().active() || self.ended.get() {
            return;
        }
        let now = self.now();
        if let Some(connection) = self.connection() {
            self.timeouts
                .borrow_mut()
                .observe(now, connection.channel_count(), |id| connection.activity(id));
        }
        let deadline = self.timeouts.borrow().poll_timeout();
        let mut timer = self.timeouts_timer.borrow_mut();
        if timer.as_ref().map(|(at, _)| *at) == deadline {
            return;
        }
        if let Some((_, call)) = timer.take() {
            call.cancel();
        }
        let Some(at) = deadline else { return };
        let me = self.me.clone();
        let call = self.services.scheduler.call_later_boxed(
            at.saturating_duration_since(now),
            Box::new(move || {
                let Some(me) = me.upgrade() else { return };
                me.timeouts_timer.borrow_mut().take();
                me.timeouts_fired();
            }),
        );
        *timer = Some((at, call));
    }

    /// A timeout's deadline passed: close the idle channels, or end an unused connection.
    fn timeouts_fired(&self) {
        if self.ended.get() {
            return;
        }
        let now = self.now();
        if let Some(connection) = self.connection() {
            self.timeouts
                .borrow_mut()
                .observe(now, connection.channel_count(), |id| connection.activity(id));
        }
        let expired = self.timeouts.borrow_mut().expired(now);
        let id = self.facts().id;
        for channel in expired.channels {
            log::info!("connection {id}: channel {}: inactivity timeout", channel.as_u32());
            if let Some(control) =
                self.sessions.borrow_mut().get_mut(&channel).and_then(|s| s.control.as_mut())
            {
                control.connection_ended();
            }
            self.with_connection(|connection| connection.close(channel));
        }
        if expired.unused {
            log::info!("connection {id}: terminating unused connection");
            self.core
                .borrow_mut()
                .disconnect(DisconnectReason::BY_APPLICATION, "unused connection timeout");
        }
        self.drive();
    }

    fn transmit(&self) {
        let now = self.now();
        let mut out = std::mem::take(&mut *self.out.borrow_mut());
        self.core.borrow_mut().poll_transmit(now, &mut out);
        if !out.is_empty() {
            self.transport.write(&out);
            out.clear();
        }
        *self.out.borrow_mut() = out;
    }

    fn rearm_timer(&self) {
        let deadline = self.core.borrow().poll_timeout();
        let mut timer = self.timer.borrow_mut();
        if timer.as_ref().map(|(at, _)| *at) == deadline {
            return;
        }
        if let Some((_, call)) = timer.take() {
            call.cancel();
        }
        let Some(at) = deadline else { return };
        let delay = at.saturating_duration_since(self.now());
        let me = self.me.clone();
        let call = self.services.scheduler.call_later_boxed(
            delay,
            Box::new(move || {
                let Some(me) = me.upgrade() else { return };
                me.timer.borrow_mut().take();
                let now = me.now();
                me.core.borrow_mut().handle_timeout(now);
                me.drive();
            }),
        );
        *timer = Some((at, call));
    }

    fn settle_reading(&self) {
        let full = self.core.borrow().input_capacity() == 0;
        if full && !self.reading_paused.get() {
            self.reading_paused.set(true);
            self.transport.pause_producing();
        } else if !full && self.reading_paused.get() {
            self.reading_paused.set(false);
            self.transport.resume_producing();
        }
    }

    /// Drives on a later turn (a channel handed data to the connection layer).
    fn wake(&self) {
        if self.wake_scheduled.replace(true) || self.ended.get() {
            return;
        }
        let me = self.me.clone();
        self.services.scheduler.call_soon_boxed(Box::new(move || {
            if let Some(me) = me.upgrade() {
                me.wake_scheduled.set(false);
                me.drive();
            }
        }));
    }

    fn dispatch(&self, event: CoreEvent) {
        match event {
            CoreEvent::Auth(AuthEvent::UserIdentified { user, .. }) => self.user_identified(user),
            CoreEvent::Auth(AuthEvent::AuthRequested { id, user, attempt, .. }) => {
                self.auth_requested(id, user, attempt);
            }
            CoreEvent::Auth(AuthEvent::SignatureRefused { id, user, attempt, .. }) => {
                self.signature_refused(id, user, attempt);
            }
            CoreEvent::Auth(AuthEvent::Authenticated {
                user, methods_used, restrictions, ..
            }) => {
                self.authenticated(user, methods_used, &restrictions);
            }
            CoreEvent::Connection(event) => {
                if self.login.borrow().is_none() {
                    self.held.borrow_mut().push_back(event);
                } else {
                    self.connection_event(event);
                }
            }
            CoreEvent::Closed { error, initiator } => self.closed(error, initiator),
            CoreEvent::Other => {}
        }
    }

    /// The first request named the user: ask for the user's settings, then let the stack take
    /// the request up under them.
    fn user_identified(&self, user: String) {
        self.user.borrow_mut().get_or_insert_with(|| user.clone());
        let Some(hook) = self.config.user_settings.clone() else {
            self.settings_ready(None);
            return;
        };
        let current = Rc::clone(&self.settings.borrow());
        let answer = hook.settings(&user, &self.facts(), &current, &self.services.offload);
        let me = self.me.clone();
        when_fired(&answer, move |result| {
            let Some(me) = me.upgrade() else { return };
            match result {
                Ok(settings) => me.settings_ready(Some(settings)),
                Err(err) => {
                    // The configuration's refusal is the client's to read (the hook logs why);
                    // any other failure is the server's, told only in its log.
                    let told = if err.kind() == ErrorKind::PermissionDenied {
                        log::debug!("connection {}: {user}: {}", me.facts().id, err.context());
                        err.context().to_owned()
                    } else {
                        log::warn!("connection {}: settings for {user}: {err}", me.facts().id);
                        "no settings for the user".to_owned()
                    };
                    me.core.borrow_mut().disconnect(DisconnectReason::BY_APPLICATION, &told);
                    me.drive();
                }
            }
        });
    }

    fn settings_ready(&self, settings: Option<ConnectionSettings>) {
        if self.ended.get() {
            return;
        }
        let stack = settings.as_ref().and_then(|s| s.stack.clone());
        let rekey = settings.as_ref().and_then(|s| s.rekey_limits);
        if let Some(settings) = settings {
            *self.settings.borrow_mut() = Rc::new(settings);
        }
        let now = self.now();
        if let Some(limits) = rekey {
            self.core.borrow_mut().set_rekey_limits(now, limits);
        }
        let result = self.core.borrow_mut().user_settings(now, stack);
        if let Err(err) = result {
            log::warn!("connection {}: user settings refused: {err}", self.facts().id);
            self.core
                .borrow_mut()
                .disconnect(DisconnectReason::BY_APPLICATION, "invalid settings for the user");
        }
        self.drive();
    }

    /// The stack refused a signed key itself (the signature does not verify): tell the backend.
    fn signature_refused(&self, id: AuthId, user: String, attempt: Attempt) {
        let request = self.auth_request(id, user, attempt);
        self.config.auth.signature_refused(&request);
    }

    /// The backend's view of request `id`; the first one names the connection's user, and
    /// the client's version joins the connection's facts.
    fn auth_request(&self, id: AuthId, user: String, attempt: Attempt) -> AuthRequest {
        self.user.borrow_mut().get_or_insert_with(|| user.clone());
        if self.facts.borrow().client_version.is_none() {
            let version = self.core.borrow().peer_identification();
            let mut facts = (*self.facts()).clone();
            facts.client_version = version;
            *self.facts.borrow_mut() = Rc::new(facts);
        }
        AuthRequest::new(
            id,
            user,
            attempt,
            self.facts(),
            SystemTime::now(),
            self.services.offload.clone(),
        )
        .with_style(self.core.borrow().login_style())
    }

    fn auth_requested(&self, id: AuthId, user: String, attempt: Attempt) {
        let query = matches!(attempt, Attempt::PublicKeyQuery { .. });
        let method = attempt.method();
        let request = self.auth_request(id, user.clone(), attempt);
        let answer = self.config.auth.decide(&request);
        let me = self.me.clone();
        when_fired(&answer, move |result| {
            let Some(me) = me.upgrade() else { return };
            let decision = result.unwrap_or_else(|err| {
                log::warn!("connection {}: auth backend failed: {err}", me.facts().id);
                Decision::Reject
            });
            let accepting = matches!(decision, Decision::Accept(_) | Decision::PartialSuccess(_));
            if !accepting || query {
                me.decided(id, decision);
                return;
            }
            let login = LoginRequest::new(user, method, me.facts(), me.services.offload.clone());
            let status = me.config.auth.check_account(&login);
            let me = Rc::downgrade(&me);
            when_fired(&status, move |status| {
                let Some(me) = me.upgrade() else { return };
                let decision = match status {
                    Ok(AccountStatus::Allowed) => decision,
                    Ok(AccountStatus::Denied { reason }) => {
                        log::info!(
                            "connection {}: account {} refused: {reason}",
                            me.facts().id,
                            login.user
                        );
                        Decision::Reject
                    }
                    Err(_) => Decision::Reject,
                };
                me.decided(id, decision);
            });
        });
    }

    fn decided(&self, id: AuthId, decision: Decision<Restrictions>) {
        if self.ended.get() {
            return;
        }
        let now = self.now();
        let result = self.core.borrow_mut().auth_decided(now, id, decision);
        if let Err(err) = result {
            log::debug!("connection {}: auth decision: {err}", self.facts().id);
        }
        self.drive();
    }

    /// The user is in: find the account and open the backend's login session (both off the
    /// loop), then serve the channels that waited.
    fn authenticated(&self, user: String, methods: Vec<Method>, restrictions: &[Restrictions]) {
        let facts = self.facts();
        log::info!(
            "connection {} from {}: {user} authenticated by {}",
            facts.id,
            facts.peer_ip(),
            methods.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
        );
        let restrictions = Restrictions::combine(restrictions);
        let method = methods.last().copied().unwrap_or(Method::None);
        let mut login = Login::new(user.clone(), restrictions, Rc::clone(&facts));
        login.methods = methods;
        let lookup_user = user.clone();
        let account = self.services.offload.run(move || Account::lookup(&lookup_user));
        let me = self.me.clone();
        when_fired(&account, move |account| {
            let Some(me) = me.upgrade() else { return };
            let account = match account {
                Ok(Ok(account)) => account,
                Ok(Err(err)) | Err(err) => {
                    log::warn!("looking up account {}: {err}", login.user);
                    None
                }
            };
            login.account = account;
            let request = LoginRequest::new(
                login.user.clone(),
                method,
                me.facts(),
                me.services.offload.clone(),
            );
            let grant = me.config.auth.open_session(&request);
            let me = Rc::downgrade(&me);
            when_fired(&grant, move |grant| {
                let Some(me) = me.upgrade() else { return };
                match grant {
                    Ok(grant) => {
                        me.session_opened.set(true);
                        login.environment = grant.environment;
                        me.login_ready(login);
                    }
                    Err(err) => {
                        log::warn!(
                            "connection {}: login session for {} refused: {err}",
                            me.facts().id,
                            login.user
                        );
                        me.core
                            .borrow_mut()
                            .disconnect(DisconnectReason::BY_APPLICATION, "login refused");
                        me.drive();
                    }
                }
            });
        });
    }

    fn login_ready(&self, login: Login) {
        if self.ended.get() {
            return;
        }
        let login = Rc::new(login);
        let settings = Rc::clone(&self.settings.borrow());
        {
            let mut timeouts = self.timeouts.borrow_mut();
            timeouts.configure(&settings.channel_timeouts, settings.unused_connection_timeout);
            timeouts.start(self.now());
        }
        if let Some(reactor) = &self.services.reactor {
            let host: Weak<dyn ChannelHost> = self.me.clone() as Weak<dyn ChannelHost>;
            let policy = Rc::new(settings.forwarding.clone());
            let forwarding = Forwarding::new(
                reactor,
                Rc::clone(&self.channels),
                host,
                policy,
                Rc::clone(&login),
            );
            *self.forwarding.borrow_mut() = Some(forwarding);
        }
        *self.login.borrow_mut() = Some(login);
        // OpenSSH's notify_hostkeys: the client may learn keys it lacks (UpdateHostKeys).
        let announcement = self.core.borrow().host_keys_announcement();
        if let Some(request) = announcement {
            self.with_connection(|connection| connection.send_global_request(&request, false));
        }
        // Held requests start sessions and forwardings for this connection (a
        // privilege-separated worker asks its monitor on its behalf).
        let _scope = crate::server::privsep::SigningScope::enter(self.facts.borrow().id);
        loop {
            let event = self.held.borrow_mut().pop_front();
            let Some(event) = event else { break };
            self.connection_event(event);
        }
        self.drive();
    }

    fn connection_event(&self, event: ChannelEvent) {
        match &event {
            ChannelEvent::ChannelClosed { id } => {
                self.sessions.borrow_mut().remove(id);
                self.timeouts.borrow_mut().closed(*id);
            }
            ChannelEvent::ChannelOpenRequested { id, kind } => {
                self.timeouts.borrow_mut().opened(*id, timeout_type(kind.type_name()), self.now());
            }
            ChannelEvent::ChannelOpened { id } => {
                let kind = self.connection().and_then(|c| c.channel_type(*id));
                if let Some(kind) = kind {
                    self.timeouts.borrow_mut().opened(*id, timeout_type(kind), self.now());
                }
            }
            _ => {}
        }
        if self.channels.handle_event(&event) {
            return;
        }
        let forwarding = self.forwarding.borrow().clone();
        if forwarding.as_ref().is_some_and(|f| f.handle_event(&event)) {
            return;
        }
        match event {
            ChannelEvent::ChannelOpenRequested { id, kind } => {
                self.channel_open_requested(id, &kind)
            }
            ChannelEvent::RequestReceived { id, request, reply } => {
                let ok = self.session_request(id, request);
                if let Some(reply) = reply {
                    self.with_connection(|connection| connection.reply_request(id, reply, ok));
                }
            }
            ChannelEvent::GlobalRequestReceived {
                request: GlobalRequest::HostKeysProve { keys },
                reply,
            } => {
                let proofs = self.core.borrow().prove_host_keys(&keys);
                if let Some(reply) = reply {
                    let answer = proofs.map_or(GlobalReply::Failure, GlobalReply::HostKeyProofs);
                    self.with_connection(|c| c.reply_global_request(reply, answer));
                }
            }
            ChannelEvent::GlobalRequestReceived { request, reply } => {
                let handled =
                    forwarding.as_ref().is_some_and(|f| f.global_request(&request, reply));
                if !handled {
                    if let Some(reply) = reply {
                        self.with_connection(|connection| {
                            connection.reply_global_request(reply, GlobalReply::Failure)
                        });
                    }
                }
            }
            ChannelEvent::CloseReceived { id } => {
                self.with_connection(|connection| connection.close(id));
            }
            _ => {}
        }
    }

    fn channel_open_requested(&self, id: ChannelId, kind: &ChannelKind) {
        let forwarding = self.forwarding.borrow().clone();
        if let Some(forwarding) = forwarding {
            if forwarding.channel_open_requested(id, kind) {
                return;
            }
        }
        let (reason, why) = match kind {
            ChannelKind::Session
                if self.sessions.borrow().len() >= self.settings.borrow().max_sessions =>
            {
                (OpenFailureReason::RESOURCE_SHORTAGE, "too many sessions")
            }
            ChannelKind::Session => {
                self.sessions.borrow_mut().insert(id, SessionSlot::default());
                self.with_connection(|connection| connection.accept_channel(id));
                return;
            }
            _ => (OpenFailureReason::ADMINISTRATIVELY_PROHIBITED, "channel type not allowed"),
        };
        log::info!("connection {}: {} channel refused: {why}", self.facts().id, kind.type_name());
        self.with_connection(|connection| connection.reject_channel(id, reason, why));
    }

    /// A channel request on a session; returns the answer.
    fn session_request(&self, id: ChannelId, request: ChannelRequest) -> bool {
        let Some(login) = self.login.borrow().clone() else { return false };
        let mut sessions = self.sessions.borrow_mut();
        let Some(slot) = sessions.get_mut(&id) else { return false };
        let command = match request {
            ChannelRequest::PtyReq { term, size, modes } => {
                if !login.restrictions.pty || slot.pty.is_some() || slot.control.is_some() {
                    return false;
                }
                slot.pty = Some(PtyRequest { term, size, modes });
                return true;
            }
            ChannelRequest::Env { name, value } => {
                let accepted = slot.control.is_none()
                    && slot.env.len() < MAX_ENV_REQUESTS
                    && env_accepted(&name, &self.settings.borrow().accept_env);
                if accepted {
                    slot.env.push((name, value));
                } else {
                    log::debug!("ignoring env request {name}: not accepted");
                }
                return accepted;
            }
            ChannelRequest::WindowChange { size } => {
                if let Some(control) = &mut slot.control {
                    control.window_changed(size);
                }
                if let Some(pty) = &mut slot.pty {
                    pty.size = size;
                }
                return slot.pty.is_some();
            }
            ChannelRequest::Signal { name } => {
                return slot.control.as_mut().is_some_and(|control| control.signal(&name));
            }
            ChannelRequest::Break { length_ms } => {
                return slot
                    .control
                    .as_mut()
                    .is_some_and(|control| control.break_requested(length_ms));
            }
            ChannelRequest::AuthAgentReq => {
                let forwarding = self.forwarding.borrow().clone();
                return slot.control.is_none()
                    && forwarding.is_some_and(|forwarding| forwarding.forward_agent());
            }
            ChannelRequest::Shell => SessionCommand::Shell,
            ChannelRequest::Exec { command } => SessionCommand::Exec(command),
            ChannelRequest::Subsystem { name } => SessionCommand::Subsystem(name),
            _ => return false,
        };
        if slot.control.is_some() {
            return false;
        }
        let kind = match &command {
            SessionCommand::Shell => "session:shell".to_owned(),
            SessionCommand::Exec(_) => "session:command".to_owned(),
            SessionCommand::Subsystem(name) => format!("session:subsystem:{name}"),
        };
        self.timeouts.borrow_mut().retyped(id, &kind, self.now());
        let mut info = SessionInfo::new((*login).clone(), command).with_forced_command();
        info.pty = slot.pty.clone();
        info.env = slot.env.clone();
        drop(sessions);
        let agent = self.forwarding.borrow().as_ref().and_then(|f| f.agent_socket());
        if let Some(path) = agent {
            let path = std::os::unix::ffi::OsStringExt::into_vec(path.into_os_string());
            info.env.push(("SSH_AUTH_SOCK".to_owned(), path));
        }
        let start =
            SessionStart::new(Rc::new(info), SessionChannel::new(Rc::clone(&self.channels), id));
        match self.config.sessions.start(start) {
            Ok(control) => {
                if let Some(slot) = self.sessions.borrow_mut().get_mut(&id) {
                    slot.control = Some(control);
                }
                true
            }
            Err(err) => {
                log::info!(
                    "connection {}: session for {} not started: {err}",
                    self.facts().id,
                    login.user
                );
                false
            }
        }
    }

    fn closed(&self, error: Option<Error>, initiator: Initiator) {
        if self.closed.replace(true) {
            return;
        }
        let facts = self.facts();
        let user = self.user.borrow().clone().unwrap_or_else(|| "(no user)".into());
        let who = match initiator {
            Initiator::Local => "we",
            _ => "the client",
        };
        let failed = error.as_ref().is_some_and(|err| {
            !matches!(
                err,
                Error::DisconnectReceived { .. }
                    | Error::DisconnectSent { .. }
                    | Error::ConnectionClosed
            )
        });
        if failed {
            self.failed.set(true);
        }
        match &error {
            Some(err) => log::info!(
                "connection {} from {} ({user}) ended by {who}: {err}",
                facts.id,
                facts.peer_ip()
            ),
            None => log::info!(
                "connection {} from {} ({user}) closed by {who}",
                facts.id,
                facts.peer_ip()
            ),
        }
        self.transmit();
        self.transport.lose_connection();
    }

    /// The transport is gone: release everything the connection holds.
    fn ended(&self, reason: &Reason) {
        if self.ended.replace(true) {
            return;
        }
        if !self.closed.get() {
            let facts = self.facts();
            let user = self.user.borrow().clone().unwrap_or_else(|| "(no user)".into());
            log::info!("connection {} from {} ({user}) lost: {reason}", facts.id, facts.peer_ip());
        }
        if let Some((_, call)) = self.timer.borrow_mut().take() {
            call.cancel();
        }
        if let Some((_, call)) = self.timeouts_timer.borrow_mut().take() {
            call.cancel();
        }
        self.channels.connection_lost(reason);
        if let Some(forwarding) = self.forwarding.borrow_mut().take() {
            forwarding.shutdown();
        }
        for (_, mut slot) in self.sessions.borrow_mut().drain() {
            if let Some(control) = &mut slot.control {
                control.connection_ended();
            }
        }
        let facts = self.facts();
        if let Some(login) = self.login.borrow_mut().take() {
            if self.session_opened.get() {
                let method = login.methods.last().copied().unwrap_or(Method::None);
                let request = LoginRequest::new(
                    login.user.clone(),
                    method,
                    Rc::clone(&facts),
                    self.services.offload.clone(),
                );
                self.config.auth.close_session(&request);
            }
        }
        self.config.auth.connection_ended(&facts);
        self.held.borrow_mut().clear();
    }

    fn with_connection<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, Error>) {
        let result = match self.connection() {
            Some(mut connection) => f(&mut connection).map(|_| ()),
            None => Err(Error::ConnectionClosed),
        };
        if let Err(err) = result {
            log::debug!("connection {}: command refused: {err}", self.facts().id);
        }
        self.again.set(true);
    }
}

impl ChannelHost for Conn {
    fn connection(&self) -> Option<RefMut<'_, Connection>> {
        let core = self.core.try_borrow_mut().ok()?;
        RefMut::filter_map(core, |core| core.connection_mut()).ok()
    }

    fn send_data(
        &self,
        id: ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Option<Result<usize, Error>> {
        let mut core = self.core.try_borrow_mut().ok()?;
        core.connection_mut()?;
        if self.wire_full.get() {
            // The channel keeps it and pauses its producer; `wire_drained` flushes it.
            return Some(Ok(0));
        }
        Some(core.send_channel_data(id, code, data))
    }

    fn wake(&self) {
        if self.driving.get() {
            self.again.set(true);
        } else {
            Self::wake(self);
        }
    }
}

/// The connection as its transport's producer: paused while the transport's buffer is past
/// its high-water mark (see the module docs).
struct WireProducer {
    conn: Weak<Conn>,
}

impl PushProducer for WireProducer {
    fn pause_producing(&self) {
        if let Some(conn) = self.conn.upgrade() {
            conn.wire_full.set(true);
        }
    }

    fn resume_producing(&self) {
        let Some(conn) = self.conn.upgrade() else { return };
        if conn.wire_full.replace(false) && !conn.ended.get() {
            conn.channels.flush_all();
            conn.drive();
        }
    }

    /// The transport is gone; `connection_lost` ends the connection.
    fn stop_producing(&self) {}

    /// Pausing only sets a flag.
    fn pauses_at_once(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;

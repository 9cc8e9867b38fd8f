//! The server's stack: transport, then `ssh-userauth` on request, then the connection layer once
//! the user is authenticated.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::keepalive::Keepalive;
use super::{
    is_local, not_ready, out_of_phase, Core, Layers, ServerStackConfig, StackEvent,
    LOGIN_GRACE_TEXT, SERVICE_USERAUTH,
};
use crate::connection::{self, Connection, Side};
use crate::crypto::SecureRandom;
use crate::error::{Error, Initiator, PeerIncompatible, PeerMisbehaved, TimeoutKind};
use crate::transport::{self, Incoming, Transport};
use crate::userauth::{self, Decision, Disposition, RequestId};
use crate::wire::msgs::transport::{ServiceAccept, ServiceRequest};
use crate::wire::msgs::Message;
use crate::wire::{DisconnectReason, MessageType};

/// What the server stack tells the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent<R> {
    /// From the transport: a finished key exchange, the client's extensions, a debug message,
    /// an `SSH_MSG_UNIMPLEMENTED`. Informational.
    Transport(transport::Event),
    /// From user authentication. In [`userauth::ServerEvent::AuthRequested`] and
    /// [`userauth::ServerEvent::Authenticated`], `user` is the login name without a `:style`
    /// suffix (see [`ServerStack::login_style`]); `Authenticated`'s `pipelined` payloads have
    /// already gone to the connection layer and arrive empty.
    Auth(userauth::ServerEvent<R>),
    /// From the connection layer (after authentication); act on it through
    /// [`ServerStack::connection_mut`].
    Connection(connection::Event),
    /// The connection ended; the last event. Write what [`ServerStack::poll_transmit`] still
    /// gives, then close the socket.
    Closed {
        /// Why: `None` when the client closed the stream between packets or we ended it with
        /// [`ServerStack::disconnect`]; otherwise the error, the client's `SSH_MSG_DISCONNECT`
        /// ([`Error::DisconnectReceived`]) or a [`Error::Timeout`].
        error: Option<Error>,
        /// Who ended it.
        initiator: Initiator,
    },
}

impl<R> StackEvent for ServerEvent<R> {
    fn connection(event: connection::Event) -> Self {
        Self::Connection(event)
    }

    fn closed(error: Option<Error>, initiator: Initiator) -> Self {
        Self::Closed { error, initiator }
    }
}

/// One SSH server connection: transport, user authentication and connection layer, sans-IO.
///
/// `R` is what the application attaches to an accepting [`Decision`] (authorized_keys options,
/// a uid); it comes back in [`userauth::ServerEvent::Authenticated`].
///
/// # Call order
///
/// As the [module documentation](super) says: after every input or command, `poll_transmit`,
/// `poll_timeout`, then `poll_event` until `None`, going back to `poll_transmit` after acting
/// on events. The login grace time starts at the first call that carries a time.
///
/// # Phases
///
/// ```text
///   key exchange ─▶ ExpectServiceRequest ─(ssh-userauth)─▶ Userauth ─(success)─▶ Authenticated
/// ```
///
/// Before `Authenticated`, a connection-protocol message ends the connection
/// (`SSH_DISCONNECT_PROTOCOL_ERROR`); a service other than `ssh-userauth` ends it with
/// `SSH_DISCONNECT_SERVICE_NOT_AVAILABLE`.
pub struct ServerStack<R> {
    config: Arc<ServerStackConfig>,
    core: Core<ServerEvent<R>>,
    phase: Phase,
    userauth: Option<userauth::Server<R>>,
    login_deadline: Option<Instant>,
    started: bool,
    user: Option<String>,
    style: Option<String>,
}

/// Where the server is, past the key exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No service yet: only `SSH_MSG_SERVICE_REQUEST` for `ssh-userauth` is allowed.
    ExpectServiceRequest,
    /// User authentication runs.
    Userauth,
    /// The user is in: the connection layer runs.
    Authenticated,
}

impl<R> ServerStack<R> {
    /// A server connection. Our identification line and KEXINIT are ready to send at once.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`](crate::error::LocalMisuse::InvalidConfig) if the
    /// transport refuses its configuration.
    pub fn new(config: Arc<ServerStackConfig>, rng: Box<dyn SecureRandom>) -> Result<Self, Error> {
        let transport = Transport::server(Arc::clone(config.transport()), rng)?;
        let keepalive =
            Keepalive::new(config.client_alive_interval, config.client_alive_count_max, true);
        Ok(Self {
            config,
            core: Core::new(transport, keepalive),
            phase: Phase::ExpectServiceRequest,
            userauth: None,
            login_deadline: None,
            started: false,
            user: None,
            style: None,
        })
    }

    /// Takes bytes from the socket (at most [`Self::input_capacity`]).
    ///
    /// # Errors
    ///
    /// The fatal error the bytes caused (also reported as [`ServerEvent::Closed`]);
    /// [`Error::ConnectionClosed`] after the end; and, changing nothing,
    /// [`LocalMisuse::InputBufferFull`](crate::error::LocalMisuse::InputBufferFull) beyond
    /// the capacity.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        self.core.check_open()?;
        self.start(now);
        if !bytes.is_empty() {
            self.core.keepalive.input_seen(now);
        }
        let result = self.core.transport.handle_input(now, bytes);
        super::process(self, now);
        self.core.input_result(result)
    }

    /// Lends space for up to `max` bytes from the socket, to read straight into (sparing
    /// [`Self::handle_input`]'s copy): never more than [`Self::input_capacity`], so empty when
    /// reading should stop. [`Self::input_written`] then takes the bytes read.
    pub fn input_buffer(&mut self, max: usize) -> &mut [u8] {
        self.core.input_buffer(max)
    }

    /// `n` bytes were read into the start of the space [`Self::input_buffer`] lent last:
    /// processes them as [`Self::handle_input`] does.
    ///
    /// # Errors
    ///
    /// As [`Self::handle_input`].
    pub fn input_written(&mut self, now: Instant, n: usize) -> Result<(), Error> {
        self.core.check_open()?;
        self.start(now);
        if n > 0 {
            self.core.keepalive.input_seen(now);
        }
        let result = self.core.transport.input_written(now, n);
        super::process(self, now);
        self.core.input_result(result)
    }

    /// The client closed its side of the stream: the connection ends.
    pub fn handle_eof(&mut self, now: Instant) {
        self.start(now);
        self.core.transport.handle_eof(now);
        super::process(self, now);
    }

    /// The instant of [`Self::poll_timeout`] has passed: runs the failure delay, the login grace
    /// time, the keepalive and the time-based rekey.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.start(now);
        self.core.transport.handle_timeout(now);
        if let Some(userauth) = self.userauth.as_mut() {
            if let Err(e) = userauth.handle_timeout(now) {
                self.core.fail(e);
            }
            self.collect_userauth_events(now);
        }
        if self.login_deadline.is_some_and(|at| at <= now) && self.phase != Phase::Authenticated {
            self.login_deadline = None;
            let error = Error::Timeout(TimeoutKind::LoginGrace);
            self.core.fail_saying(error, LOGIN_GRACE_TEXT);
        }
        self.core.keepalive_timeout(now, "Timeout, client not responding");
        super::process(self, now);
    }

    /// Appends the bytes to write to the socket to `out`. Also takes up input that waited
    /// while events were pending, and moves queued payloads into the transport as far as it
    /// takes them.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.start(now);
        super::poll_transmit(self, now, out);
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let userauth = self.userauth.as_ref().and_then(userauth::Server::poll_timeout);
        let grace = self.login_deadline.filter(|_| self.phase != Phase::Authenticated);
        self.core.poll_timeout([userauth, grace])
    }

    /// The next event; [`ServerEvent::Closed`] is the last, once.
    pub fn poll_event(&mut self) -> Option<ServerEvent<R>> {
        self.core.poll_event()
    }

    /// Answers [`userauth::ServerEvent::AuthRequested`] `id`.
    ///
    /// # Errors
    ///
    /// As [`userauth::Server::auth_decided`]: misuse errors change nothing; others ended the
    /// connection (reported as [`ServerEvent::Closed`]). Before user authentication started,
    /// [`LocalMisuse::NotReady`](crate::error::LocalMisuse::NotReady).
    pub fn auth_decided(
        &mut self,
        now: Instant,
        id: RequestId,
        decision: Decision<R>,
    ) -> Result<(), Error> {
        self.core.check_open()?;
        let userauth = self.userauth.as_mut().ok_or_else(not_ready)?;
        let result = userauth.auth_decided(now, id, decision);
        if let Err(e) = &result {
            if is_local(e) {
                return result;
            }
            self.core.fail(e.clone());
        }
        self.collect_userauth_events(now);
        super::process(self, now);
        result
    }

    /// Answers [`userauth::ServerEvent::UserIdentified`] (with
    /// [`userauth::ServerConfig::settings_per_user`]): `config`, if any, replaces this
    /// connection's configuration from now on — user authentication's (banner, methods,
    /// limits), the keepalive, the connection layer's — except the transport's, which the key
    /// exchange already used.
    ///
    /// # Errors
    ///
    /// As [`userauth::Server::user_settings`]; [`LocalMisuse::NotReady`](crate::error::LocalMisuse::NotReady)
    /// before user authentication started.
    pub fn user_settings(
        &mut self,
        now: Instant,
        config: Option<Arc<ServerStackConfig>>,
    ) -> Result<(), Error> {
        self.core.check_open()?;
        let userauth = self.userauth.as_mut().ok_or_else(not_ready)?;
        let result = userauth.user_settings(now, config.as_ref().map(|c| Arc::clone(c.userauth())));
        if let Err(e) = &result {
            if is_local(e) {
                return result;
            }
            self.core.fail(e.clone());
        } else if let Some(config) = config {
            self.core.keepalive =
                Keepalive::new(config.client_alive_interval, config.client_alive_count_max, true);
            self.config = config;
        }
        self.collect_userauth_events(now);
        super::process(self, now);
        result
    }

    /// Replaces the transport's rekey limits for this connection (sshd's `RekeyLimit` from a
    /// `Match` block); see [`Transport::set_rekey_limits`].
    pub fn set_rekey_limits(&mut self, now: Instant, limits: transport::RekeyLimits) {
        self.core.transport.set_rekey_limits(now, limits);
    }

    /// The connection layer, once the user is authenticated: open, accept and close channels,
    /// send and read data, answer requests. Follow each command with the call order's outputs.
    pub fn connection_mut(&mut self) -> Option<&mut Connection> {
        self.core.connection.as_mut()
    }

    /// Sends data on channel `id` (`code` `None`) or extended data of type `code`, framed
    /// straight into the transport's packet buffer after everything produced before it: as
    /// [`Connection::send_data`] and [`Connection::send_extended_data`] (same window, same
    /// [`Writable`](crate::connection::Event::Writable) when it takes less), with one copy of
    /// the data instead of two. Call [`Self::poll_transmit`] afterwards.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send_data`]; [`Error::ConnectionClosed`] before authentication and
    /// after the end.
    pub fn send_channel_data(
        &mut self,
        id: connection::ChannelId,
        code: Option<u32>,
        data: &[u8],
    ) -> Result<usize, Error> {
        self.core.check_open()?;
        Layers::pull(self);
        self.core.send_channel_data(id, code, data)
    }

    /// Ends the connection with `SSH_MSG_DISCONNECT`, after the payloads already produced.
    /// Reported as [`ServerEvent::Closed`] with no error. Does nothing after the end.
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        super::disconnect(self, reason, description);
    }

    /// Starts a key re-exchange now (OpenSSH's `~R`); payloads wait while it runs. Does nothing
    /// if one is running.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotReady`](crate::error::LocalMisuse::NotReady) before the first key
    /// exchange ended; [`Error::ConnectionClosed`] after the end.
    pub fn rekey(&mut self, now: Instant) -> Result<(), Error> {
        super::rekey(self, now)
    }

    /// The transport: session id, the client's identification, negotiated algorithms.
    pub fn transport(&self) -> &Transport {
        &self.core.transport
    }

    /// User authentication, once the client asked for it.
    pub fn userauth(&self) -> Option<&userauth::Server<R>> {
        self.userauth.as_ref()
    }

    /// The connection layer, once the user is authenticated.
    pub fn connection(&self) -> Option<&Connection> {
        self.core.connection.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ServerStackConfig> {
        &self.config
    }

    /// How many bytes [`Self::handle_input`] takes now: read at most this many from the socket,
    /// and stop reading at 0.
    pub fn input_capacity(&self) -> usize {
        self.core.input_capacity()
    }

    /// Whether the user has been authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.phase == Phase::Authenticated
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.core.closed.is_some() || self.core.transport.is_closed()
    }

    /// The login name of the first authentication request, without its `:style` suffix.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The BSD authentication style of the first request: the text after the first `:` of the
    /// user name (`alice:skey` logs in as `alice` with style `skey`), as OpenSSH's `auth2.c`
    /// splits it. Unlike OpenSSH, a later request that changes only the style counts as a
    /// change of user name and ends the connection (user authentication compares the names as
    /// sent); public key signatures cover the name as sent, as in OpenSSH.
    pub fn login_style(&self) -> Option<&str> {
        self.style.as_deref()
    }

    /// Starts the login grace time at the first instant seen.
    fn start(&mut self, now: Instant) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        self.login_deadline = self.config.login_grace_time.and_then(|d| now.checked_add(d));
    }

    fn route_payload(&mut self, now: Instant, incoming: Incoming) {
        let Incoming { msg_type, seq } = incoming;
        match (self.phase, msg_type.0) {
            (Phase::ExpectServiceRequest, 5) => self.service_request(),
            (Phase::ExpectServiceRequest, _) | (_, 5 | 6) => self.core.fail(out_of_phase(msg_type)),
            (Phase::Authenticated, 80..=255) => self.core.route_connection(msg_type, seq),
            (Phase::Userauth | Phase::Authenticated, _) => self.route_userauth(now, seq),
        }
    }

    /// `SSH_MSG_SERVICE_REQUEST`: `ssh-userauth` starts user authentication; anything else
    /// ends the connection.
    fn service_request(&mut self) {
        let accepted = match ServiceRequest::decode(&self.core.incoming) {
            Ok(request) => request.service == SERVICE_USERAUTH.as_bytes(),
            Err(e) => return self.core.fail(e.into()),
        };
        if !accepted {
            return self.core.fail(PeerIncompatible::ServiceNotAvailable.into());
        }
        let transport = &self.core.transport;
        let (Some(session_id), Some(host_key)) = (transport.session_id(), transport.host_key())
        else {
            // The transport passes services up only after the first key exchange.
            return self
                .core
                .fail(PeerMisbehaved::UnexpectedMessage(MessageType::SERVICE_REQUEST).into());
        };
        let config = Arc::clone(self.config.userauth());
        match userauth::Server::new(config, session_id, &host_key.to_blob()) {
            Ok(server) => self.userauth = Some(server),
            Err(e) => return self.core.fail(e),
        }
        self.phase = Phase::Userauth;
        self.core.outgoing.clear();
        ServiceAccept { service: SERVICE_USERAUTH.as_bytes() }.encode(&mut self.core.outgoing);
        self.core.send_outgoing();
    }

    fn route_userauth(&mut self, now: Instant, seq: u32) {
        let Some(userauth) = self.userauth.as_mut() else { return };
        match userauth.handle_payload(now, &self.core.incoming) {
            Ok(Disposition::Handled) => {}
            Ok(Disposition::Unrecognized) => self.core.unimplemented(seq),
            Err(e) => self.core.fail(e),
        }
        self.collect_userauth_events(now);
    }

    /// Moves user authentication's events into the queue; success starts the connection layer.
    fn collect_userauth_events(&mut self, now: Instant) {
        let Some(userauth) = self.userauth.as_mut() else { return };
        let mut events = Vec::new();
        while let Some(event) = userauth.poll_event() {
            events.push(event);
        }
        for event in events {
            match event {
                userauth::ServerEvent::UserIdentified { user, service } => {
                    let user = self.note_user(user);
                    let event = userauth::ServerEvent::UserIdentified { user, service };
                    self.core.events.push_back(ServerEvent::Auth(event));
                }
                userauth::ServerEvent::AuthRequested { id, user, service, attempt } => {
                    let user = self.note_user(user);
                    let event = userauth::ServerEvent::AuthRequested { id, user, service, attempt };
                    self.core.events.push_back(ServerEvent::Auth(event));
                }
                userauth::ServerEvent::SignatureRefused { id, user, service, attempt } => {
                    let user = self.note_user(user);
                    let event =
                        userauth::ServerEvent::SignatureRefused { id, user, service, attempt };
                    self.core.events.push_back(ServerEvent::Auth(event));
                }
                userauth::ServerEvent::Authenticated {
                    user,
                    service,
                    methods_used,
                    restrictions,
                    pipelined,
                } => {
                    let user = self.note_user(user);
                    let event = userauth::ServerEvent::Authenticated {
                        user,
                        service,
                        methods_used,
                        restrictions,
                        pipelined: Vec::new(),
                    };
                    self.core.events.push_back(ServerEvent::Auth(event));
                    self.authenticated(now, pipelined);
                }
            }
        }
    }

    /// Splits `user:style` as OpenSSH's `auth2.c` does, remembering the first request's parts.
    fn note_user(&mut self, raw: String) -> String {
        let (user, style) = match raw.split_once(':') {
            Some((user, style)) => (user.to_owned(), Some(style.to_owned())),
            None => (raw, None),
        };
        if self.user.is_none() {
            self.user = Some(user.clone());
            self.style = style;
        }
        user
    }

    /// Authentication succeeded: the connection layer starts, with what the client pipelined.
    fn authenticated(&mut self, now: Instant, pipelined: Vec<Vec<u8>>) {
        let connection = match Connection::new(Side::Server, self.config.connection().clone()) {
            Ok(connection) => connection,
            Err(e) => return self.core.fail(e),
        };
        self.phase = Phase::Authenticated;
        self.login_deadline = None;
        self.core.connection = Some(connection);
        self.core.compression_pending = true;
        self.core.keepalive.start(now);
        self.core.route_pipelined(pipelined);
    }
}

impl<R> Layers for ServerStack<R> {
    type Event = ServerEvent<R>;

    fn core(&mut self) -> &mut Core<ServerEvent<R>> {
        &mut self.core
    }

    fn route(&mut self, now: Instant, incoming: Incoming) {
        self.route_payload(now, incoming);
    }

    fn transport_event(&mut self, event: transport::Event) {
        self.core.events.push_back(ServerEvent::Transport(event));
    }

    fn pull(&mut self) {
        let Self { core, userauth, .. } = self;
        core.pull(|buf| userauth.as_mut().is_some_and(|u| u.poll_payload(buf)));
    }
}

impl<R> fmt::Debug for ServerStack<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStack")
            .field("phase", &self.phase)
            .field("transport", &self.core.transport)
            .field("userauth", &self.userauth)
            .field("connection", &self.core.connection)
            .field("events", &self.core.events.len())
            .field("closed", &self.core.closed)
            .finish_non_exhaustive()
    }
}

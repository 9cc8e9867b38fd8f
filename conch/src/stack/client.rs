//! The client's stack: transport, then `ssh-userauth`, then the connection layer once the server
//! has accepted us.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::keepalive::Keepalive;
use super::{out_of_phase, ClientStackConfig, Core, Layers, StackEvent, SERVICE_USERAUTH};
use crate::connection::{self, Connection, Side};
use crate::crypto::SecureRandom;
use crate::error::{Error, Initiator, PeerMisbehaved};
use crate::keys::{Certificate, PublicKey};
use crate::transport::{self, Incoming, Transport};
use crate::userauth::{self, Disposition};
use crate::wire::msgs::transport::{ServiceAccept, ServiceRequest};
use crate::wire::msgs::Message;
use crate::wire::{DisconnectReason, MessageType};

/// What the client stack tells the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// From the transport. [`transport::Event::HostKeyReceived`] must be answered with
    /// [`ClientStack::host_key_decided`]; the rest are informational.
    Transport(transport::Event),
    /// From user authentication: answer questions through [`ClientStack::userauth_mut`].
    /// [`userauth::ClientEvent::Failed`] leaves the connection open: disconnect with
    /// `SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE` (or add an identity and carry on).
    Auth(userauth::ClientEvent),
    /// From the connection layer (after authentication); act on it through
    /// [`ClientStack::connection_mut`].
    Connection(connection::Event),
    /// The connection ended; the last event. Write what [`ClientStack::poll_transmit`] still
    /// gives, then close the socket.
    Closed {
        /// Why: `None` when the server closed the stream between packets or we ended it with
        /// [`ClientStack::disconnect`]; otherwise the error, the server's `SSH_MSG_DISCONNECT`
        /// ([`Error::DisconnectReceived`]) or a [`Error::Timeout`].
        error: Option<Error>,
        /// Who ended it.
        initiator: Initiator,
    },
}

impl StackEvent for ClientEvent {
    fn connection(event: connection::Event) -> Self {
        Self::Connection(event)
    }

    fn closed(error: Option<Error>, initiator: Initiator) -> Self {
        Self::Closed { error, initiator }
    }
}

/// One SSH client connection: transport, user authentication and connection layer, sans-IO.
///
/// # Call order
///
/// As the [module documentation](super) says: after every input or command, `poll_transmit`,
/// `poll_timeout`, then `poll_event` until `None`, going back to `poll_transmit` after acting
/// on events.
///
/// # Phases
///
/// ```text
///   key exchange ─(host key accepted)─▶ ExpectServiceAccept ─▶ Userauth ─(success)─▶ Authenticated
/// ```
///
/// `SSH_MSG_SERVICE_REQUEST` for `ssh-userauth` goes out when the first key exchange completes;
/// user authentication starts (with `none`) when the server accepts it. Before `Authenticated`, a
/// connection-protocol message from the server ends the connection.
pub struct ClientStack {
    config: Arc<ClientStackConfig>,
    core: Core<ClientEvent>,
    phase: Phase,
    user: String,
    userauth: Option<userauth::Client>,
    /// Identities added before user authentication started.
    identities: Vec<PendingIdentity>,
    /// The server's extensions seen before user authentication started.
    extensions: Vec<(String, Vec<u8>)>,
}

/// An identity added before user authentication started.
#[derive(Debug)]
enum PendingIdentity {
    Key(PublicKey),
    Certificate(Box<Certificate>),
}

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first key exchange runs.
    KeyExchange,
    /// `SSH_MSG_SERVICE_REQUEST` went out.
    ExpectServiceAccept,
    /// User authentication runs.
    Userauth,
    /// The server accepted us: the connection layer runs.
    Authenticated,
}

impl ClientStack {
    /// A client connection that will log in as `user`. Our identification line and KEXINIT are
    /// ready to send at once.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`](crate::error::LocalMisuse::InvalidConfig) if the
    /// transport refuses its configuration.
    pub fn new(
        config: Arc<ClientStackConfig>,
        user: &str,
        rng: Box<dyn SecureRandom>,
    ) -> Result<Self, Error> {
        let transport = Transport::client(Arc::clone(config.transport()), rng)?;
        let keepalive =
            Keepalive::new(config.server_alive_interval, config.server_alive_count_max, false);
        Ok(Self {
            config,
            core: Core::new(transport, keepalive),
            phase: Phase::KeyExchange,
            user: user.to_owned(),
            userauth: None,
            identities: Vec::new(),
            extensions: Vec::new(),
        })
    }

    /// Takes bytes from the socket (at most [`Self::input_capacity`]).
    ///
    /// # Errors
    ///
    /// The fatal error the bytes caused (also reported as [`ClientEvent::Closed`]);
    /// [`Error::ConnectionClosed`] after the end; and, changing nothing,
    /// [`LocalMisuse::InputBufferFull`](crate::error::LocalMisuse::InputBufferFull) beyond
    /// the capacity.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        self.core.check_open()?;
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
        if n > 0 {
            self.core.keepalive.input_seen(now);
        }
        let result = self.core.transport.input_written(now, n);
        super::process(self, now);
        self.core.input_result(result)
    }

    /// The server closed its side of the stream: the connection ends.
    pub fn handle_eof(&mut self, now: Instant) {
        self.core.transport.handle_eof(now);
        super::process(self, now);
    }

    /// The instant of [`Self::poll_timeout`] has passed: runs the keepalive and the time-based
    /// rekey.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.transport.handle_timeout(now);
        self.core.keepalive_timeout(now, "Timeout, server not responding.");
        super::process(self, now);
    }

    /// Appends the bytes to write to the socket to `out`. Also takes up input that waited
    /// while events were pending, and moves queued payloads into the transport as far as it
    /// takes them.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        // What a command through `userauth_mut()` produced (`Failed` after giving up).
        self.collect_userauth_events(now);
        super::poll_transmit(self, now, out);
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout([])
    }

    /// The next event; [`ClientEvent::Closed`] is the last, once.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.core.poll_event()
    }

    /// Answers [`transport::Event::HostKeyReceived`]: accepting continues the key exchange,
    /// refusing ends the connection with `SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE`.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotReady`](crate::error::LocalMisuse::NotReady) when no host key awaits a
    /// decision; [`Error::ConnectionClosed`] after the end.
    pub fn host_key_decided(&mut self, now: Instant, accept: bool) -> Result<(), Error> {
        self.core.check_open()?;
        self.core.transport.host_key_decided(accept)?;
        super::process(self, now);
        Ok(())
    }

    /// Adds a public key to offer, after those added before. Works at any time: keys added
    /// before user authentication starts are handed over when it does.
    pub fn add_identity(&mut self, key: PublicKey) {
        match self.userauth.as_mut() {
            Some(userauth) => userauth.add_identity(key),
            None => self.identities.push(PendingIdentity::Key(key)),
        }
    }

    /// Adds an OpenSSH certificate to offer (signed by its certified key), after those added
    /// before. Works at any time, as [`add_identity`](Self::add_identity).
    pub fn add_certificate(&mut self, cert: Certificate) {
        match self.userauth.as_mut() {
            Some(userauth) => userauth.add_certificate(&cert),
            None => self.identities.push(PendingIdentity::Certificate(Box::new(cert))),
        }
    }

    /// User authentication, from the server's `SSH_MSG_SERVICE_ACCEPT` until success: answer
    /// its questions here ([`userauth::Client::signature_ready`],
    /// [`userauth::Client::password_ready`], [`userauth::Client::info_responses_ready`]).
    pub fn userauth_mut(&mut self) -> Option<&mut userauth::Client> {
        match self.phase {
            Phase::Userauth => self.userauth.as_mut(),
            _ => None,
        }
    }

    /// The connection layer, once authenticated: open channels, send and read data, make
    /// requests. Follow each command with the call order's outputs.
    pub fn connection_mut(&mut self) -> Option<&mut Connection> {
        self.core.connection.as_mut()
    }

    /// Sends data on channel `id` framed straight into the transport's packet buffer, as
    /// [`ServerStack::send_channel_data`](super::ServerStack::send_channel_data) does: as
    /// [`Connection::send_data`] (`code` `None`) or [`Connection::send_extended_data`], with one
    /// copy of the data instead of two. Call [`Self::poll_transmit`] afterwards.
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
    /// Reported as [`ClientEvent::Closed`] with no error. Does nothing after the end.
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

    /// The transport: session id, the server's identification and host key, negotiated
    /// algorithms.
    pub fn transport(&self) -> &Transport {
        &self.core.transport
    }

    /// User authentication, once the server accepted the service.
    pub fn userauth(&self) -> Option<&userauth::Client> {
        self.userauth.as_ref()
    }

    /// The connection layer, once authenticated.
    pub fn connection(&self) -> Option<&Connection> {
        self.core.connection.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ClientStackConfig> {
        &self.config
    }

    /// How many bytes [`Self::handle_input`] takes now: read at most this many from the socket,
    /// and stop reading at 0.
    pub fn input_capacity(&self) -> usize {
        self.core.input_capacity()
    }

    /// Whether the server has accepted us.
    pub fn is_authenticated(&self) -> bool {
        self.phase == Phase::Authenticated
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.core.closed.is_some() || self.core.transport.is_closed()
    }

    /// The user we log in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The first key exchange is done: ask for `ssh-userauth`.
    fn request_service(&mut self) {
        if self.phase != Phase::KeyExchange {
            return;
        }
        self.phase = Phase::ExpectServiceAccept;
        self.core.outgoing.clear();
        ServiceRequest { service: SERVICE_USERAUTH.as_bytes() }.encode(&mut self.core.outgoing);
        self.core.send_outgoing();
    }

    /// The server's `SSH_MSG_EXT_INFO`: for user authentication, now or when it starts.
    fn server_extensions(&mut self, extensions: &[(String, Vec<u8>)]) {
        let Some(userauth) = self.userauth.as_mut() else {
            self.extensions.extend(extensions.iter().cloned());
            return;
        };
        for (name, value) in extensions {
            if let Err(e) = userauth.handle_ext_info(name, value) {
                return self.core.fail(e);
            }
        }
    }

    fn route_payload(&mut self, now: Instant, incoming: Incoming) {
        let Incoming { msg_type, seq } = incoming;
        match (self.phase, msg_type.0) {
            (Phase::ExpectServiceAccept, 6) => self.service_accepted(),
            (Phase::Authenticated, 80..=255) => self.core.route_connection(msg_type, seq),
            (Phase::Userauth | Phase::Authenticated, 50..=255) => self.route_userauth(now, seq),
            _ => self.core.fail(out_of_phase(msg_type)),
        }
    }

    /// `SSH_MSG_SERVICE_ACCEPT` for `ssh-userauth`: user authentication starts, with what the
    /// server announced and the identities added so far.
    fn service_accepted(&mut self) {
        match ServiceAccept::decode(&self.core.incoming) {
            Ok(accept) if accept.service == SERVICE_USERAUTH.as_bytes() => {}
            Ok(_) => {
                let unexpected = PeerMisbehaved::UnexpectedMessage(MessageType::SERVICE_ACCEPT);
                return self.core.fail(unexpected.into());
            }
            Err(e) => return self.core.fail(e.into()),
        }
        let transport = &self.core.transport;
        let (Some(session_id), Some(host_key)) = (transport.session_id(), transport.host_key())
        else {
            let unexpected = PeerMisbehaved::UnexpectedMessage(MessageType::SERVICE_ACCEPT);
            return self.core.fail(unexpected.into());
        };
        let config = Arc::clone(self.config.userauth());
        let mut client = userauth::Client::new(config, &self.user, session_id, &host_key.to_blob());
        for (name, value) in std::mem::take(&mut self.extensions) {
            if let Err(e) = client.handle_ext_info(&name, &value) {
                return self.core.fail(e);
            }
        }
        for identity in std::mem::take(&mut self.identities) {
            match identity {
                PendingIdentity::Key(key) => client.add_identity(key),
                PendingIdentity::Certificate(cert) => client.add_certificate(&cert),
            }
        }
        self.userauth = Some(client);
        self.phase = Phase::Userauth;
    }

    fn route_userauth(&mut self, now: Instant, seq: u32) {
        let Some(userauth) = self.userauth.as_mut() else { return };
        match userauth.handle_payload(&self.core.incoming) {
            Ok(Disposition::Handled) => {}
            Ok(Disposition::Unrecognized) => self.core.unimplemented(seq),
            Err(e) => self.core.fail(e),
        }
        self.collect_userauth_events(now);
    }

    /// Moves user authentication's events into the queue; success starts the connection layer
    /// and delayed compression, before the next payload is read.
    fn collect_userauth_events(&mut self, now: Instant) {
        let Some(userauth) = self.userauth.as_mut() else { return };
        let mut succeeded = false;
        while let Some(event) = userauth.poll_event() {
            succeeded |= matches!(event, userauth::ClientEvent::Succeeded { .. });
            self.core.events.push_back(ClientEvent::Auth(event));
        }
        if !succeeded || self.phase == Phase::Authenticated {
            return;
        }
        match Connection::new(Side::Client, self.config.connection().clone()) {
            Ok(connection) => self.core.connection = Some(connection),
            Err(e) => return self.core.fail(e),
        }
        self.phase = Phase::Authenticated;
        self.core.transport.enable_delayed_compression();
        self.core.keepalive.start(now);
    }
}

impl Layers for ClientStack {
    type Event = ClientEvent;

    fn core(&mut self) -> &mut Core<ClientEvent> {
        &mut self.core
    }

    fn route(&mut self, now: Instant, incoming: Incoming) {
        self.route_payload(now, incoming);
    }

    fn transport_event(&mut self, event: transport::Event) {
        match &event {
            transport::Event::KexCompleted { initial: true } => self.request_service(),
            transport::Event::ExtInfoReceived { extensions } => self.server_extensions(extensions),
            _ => {}
        }
        self.core.events.push_back(ClientEvent::Transport(event));
    }

    fn pull(&mut self) {
        let Self { core, userauth, .. } = self;
        core.pull(|buf| userauth.as_mut().is_some_and(|u| u.poll_payload(buf)));
    }
}

impl fmt::Debug for ClientStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientStack")
            .field("phase", &self.phase)
            .field("user", &self.user)
            .field("transport", &self.core.transport)
            .field("userauth", &self.userauth)
            .field("connection", &self.core.connection)
            .field("events", &self.core.events.len())
            .field("closed", &self.core.closed)
            .finish_non_exhaustive()
    }
}

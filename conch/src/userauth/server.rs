//! The server side: decides nothing itself except what the protocol and the configuration
//! decide (method lists, tries, signatures, the failure delay); every question about a user
//! goes out as [`ServerEvent::AuthRequested`] and comes back through [`Server::auth_decided`].

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::msgs::{
    MethodData, PublicKeyData, UserauthBanner, UserauthFailure, UserauthInfoRequest,
    UserauthInfoResponse, UserauthPasswdChangereq, UserauthPkOk, UserauthRequest, UserauthSuccess,
};
use super::{
    encode, ends_connection, signed_data, Disposition, InfoRequest, Method, Outbox, Password,
    EXTENSION_PUBLICKEY_HOSTBOUND, EXTENSION_SERVER_SIG_ALGS, MAX_ATTEMPTS, MAX_PASSWORD_LEN,
    MAX_PROMPTS, MAX_QUEUED_BYTES, MAX_QUEUED_PAYLOADS, SERVICE_CONNECTION,
};
use crate::crypto::HashAlgorithm;
use crate::error::{Error, LocalMisuse, PeerIncompatible, PeerMisbehaved};
use crate::keys::{cert, Certificate, PublicKey, SignatureAlgorithm};
use crate::wire::{InvalidMessage, MessageType, NameList};

/// What the server allows, shared by all connections (wrap it in an `Arc`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The methods enabled at all. Default: `publickey`, `password`, `keyboard-interactive`
    /// (OpenSSH's defaults). Add [`Method::None`] to let the application accept logins without
    /// credentials; it is offered once per connection, as in OpenSSH.
    pub methods: Vec<Method>,
    /// OpenSSH's `AuthenticationMethods`: each inner list is a sequence of methods that must
    /// all succeed, in order; any one complete list authenticates. Empty (the default) means
    /// any one enabled method suffices. `none` may not appear in a list.
    pub authentication_methods: Vec<Vec<Method>>,
    /// OpenSSH's `MaxAuthTries` (default 6): the connection ends at this many failures.
    pub max_auth_tries: u32,
    /// How long failures wait before they are sent.
    pub failure_delay: FailureDelay,
    /// The text sent once in `SSH_MSG_USERAUTH_BANNER` before the first answer (OpenSSH's
    /// `Banner`); `None` sends nothing.
    pub banner: Option<String>,
    /// The signature algorithms accepted for public key authentication (OpenSSH's
    /// `PubkeyAcceptedAlgorithms`), also announced in `server-sig-algs`. Default: OpenSSH's
    /// plain-key defaults (Ed25519, ECDSA, `rsa-sha2-512`, `rsa-sha2-256`; not SHA-1 `ssh-rsa`).
    pub publickey_algorithms: Vec<SignatureAlgorithm>,
    /// Whether the first request waits for the application's settings for its user, as sshd
    /// evaluates `Match` blocks when the user name arrives: the server sends
    /// [`ServerEvent::UserIdentified`] and takes up nothing until [`Server::user_settings`]
    /// answers (default `false`).
    pub settings_per_user: bool,
    /// The signature algorithms accepted with OpenSSH certificates (the `*-cert-v01@openssh.com`
    /// names of `PubkeyAcceptedAlgorithms`, by the algorithm the certified key signs with).
    /// Empty (the default): the same as [`publickey_algorithms`](Self::publickey_algorithms).
    /// Whether a certificate's CA is trusted is the
    /// [`AuthBackend`](crate::server::AuthBackend)'s decision; this machine only checks that
    /// the certified key made the signature.
    pub publickey_cert_algorithms: Vec<SignatureAlgorithm>,
    /// Whether a signed `publickey` request with a plain key reaches the
    /// [`AuthBackend`](crate::server::AuthBackend) with its signature unchecked (default
    /// `false`: this machine verifies it first, and a bad signature fails without asking).
    /// Set it only when the backend verifies every plain key signature it accepts itself, over
    /// the data RFC 4252 §7 names for this connection's session id: a privilege-separated
    /// server whose monitor verifies each key login again, which would otherwise verify it
    /// twice. With it set, a backend that accepts a signed attempt without verifying lets
    /// anyone in. A certificate's signature is verified here whatever this says (a backend
    /// may answer for a certificate from a look-up that carried no signature).
    pub backend_verifies_plain_key_signatures: bool,
}

impl ServerConfig {
    /// OpenSSH's defaults, with a per-server secret for the failure delay: draw it once per
    /// process from [`SecureRandom`](crate::crypto::SecureRandom).
    pub fn new(timing_secret: [u8; 32]) -> Self {
        Self {
            methods: vec![Method::PublicKey, Method::Password, Method::KeyboardInteractive],
            authentication_methods: Vec::new(),
            max_auth_tries: 6,
            failure_delay: FailureDelay::new(timing_secret),
            banner: None,
            publickey_algorithms: vec![
                SignatureAlgorithm::Ed25519,
                SignatureAlgorithm::EcdsaP256,
                SignatureAlgorithm::EcdsaP384,
                SignatureAlgorithm::EcdsaP521,
                SignatureAlgorithm::RsaSha512,
                SignatureAlgorithm::RsaSha256,
            ],
            settings_per_user: false,
            publickey_cert_algorithms: Vec::new(),
            backend_verifies_plain_key_signatures: false,
        }
    }

    /// The `SSH_MSG_EXT_INFO` extensions the transport should send for this configuration:
    /// `server-sig-algs` (the signature algorithms of plain keys, then any others accepted in
    /// certificates) and `publickey-hostbound@openssh.com`.
    pub fn ext_info_extensions(&self) -> Vec<(&'static str, Vec<u8>)> {
        // The signature algorithms accepted with plain keys, then those only accepted inside
        // certificates (a client picks its RSA algorithm from this list either way).
        let mut names: Vec<&str> = self.publickey_algorithms.iter().map(|a| a.name()).collect();
        for algorithm in self.cert_algorithms() {
            if !names.contains(&algorithm.name()) {
                names.push(algorithm.name());
            }
        }
        vec![
            (EXTENSION_SERVER_SIG_ALGS, names.join(",").into_bytes()),
            (EXTENSION_PUBLICKEY_HOSTBOUND, b"0".to_vec()),
        ]
    }

    /// The algorithms accepted with certificates (see
    /// [`publickey_cert_algorithms`](Self::publickey_cert_algorithms)).
    fn cert_algorithms(&self) -> &[SignatureAlgorithm] {
        if self.publickey_cert_algorithms.is_empty() {
            &self.publickey_algorithms
        } else {
            &self.publickey_cert_algorithms
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let list_ok = |list: &Vec<Method>| {
            !list.is_empty() && list.iter().all(|m| *m != Method::None && self.methods.contains(m))
        };
        if self.methods.is_empty() || !self.authentication_methods.iter().all(list_ok) {
            return Err(LocalMisuse::InvalidConfig.into());
        }
        Ok(())
    }
}

/// The delay before a failure is sent, as OpenSSH's `ensure_minimum_time_since`: a fixed
/// minimum plus a per-user part derived from a secret, measured from when the request was
/// taken up. When the decision takes longer than that, the delay doubles until it covers the
/// decision, so the time to a failure reveals neither whether the user exists nor how long the
/// backend took. Successes and answers to `none` are not delayed.
#[derive(Clone)]
#[non_exhaustive]
pub struct FailureDelay {
    /// The shortest delay (OpenSSH: 5 ms).
    pub minimum: Duration,
    /// The most the per-user part adds (OpenSSH: about 4.3 ms).
    pub per_user_spread: Duration,
    /// A decision that took longer than this is answered at once (OpenSSH: 5 s).
    pub give_up_after: Duration,
    /// The secret that makes each user's delay unpredictable.
    pub timing_secret: [u8; 32],
}

impl FailureDelay {
    /// OpenSSH's values with this secret.
    pub fn new(timing_secret: [u8; 32]) -> Self {
        Self {
            minimum: Duration::from_millis(5),
            per_user_spread: Duration::from_nanos(4_294_967),
            give_up_after: Duration::from_secs(5),
            timing_secret,
        }
    }

    /// No delay at all: for tests and for servers whose only users are programs.
    pub fn dangerous_none() -> Self {
        Self {
            minimum: Duration::ZERO,
            per_user_spread: Duration::ZERO,
            give_up_after: Duration::ZERO,
            timing_secret: [0; 32],
        }
    }

    /// The delay for `user`: the minimum plus the spread scaled by the first 32 bits of
    /// SHA-512(secret || user).
    pub fn for_user(&self, user: &str) -> Duration {
        let digest = HashAlgorithm::Sha512.digest(&[&self.timing_secret, user.as_bytes()]);
        let head = digest.as_ref().first_chunk::<4>().copied().unwrap_or_default();
        let fraction = u128::from(u32::from_be_bytes(head));
        let extra = self.per_user_spread.as_nanos() * fraction / u128::from(u32::MAX);
        self.minimum.saturating_add(Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX)))
    }
}

impl fmt::Debug for FailureDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureDelay")
            .field("minimum", &self.minimum)
            .field("per_user_spread", &self.per_user_spread)
            .field("give_up_after", &self.give_up_after)
            .finish_non_exhaustive()
    }
}

/// Names one question put to the application, to answer with [`Server::auth_decided`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(super) u64);

/// What the server tells the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent<R = ()> {
    /// The first request named the user (only with [`ServerConfig::settings_per_user`]):
    /// answer with [`Server::user_settings`]; nothing is taken up until then, not even that
    /// request (the banner and every limit come from the settings given).
    UserIdentified {
        /// The user name, as the client sent it.
        user: String,
        /// The service (always `ssh-connection`).
        service: String,
    },
    /// A user asks to log in: decide, then call [`Server::auth_decided`] with this `id`. The
    /// server takes up no other request until then.
    AuthRequested {
        /// The question's identifier.
        id: RequestId,
        /// The user name, as the client sent it.
        user: String,
        /// The service (always `ssh-connection`).
        service: String,
        /// The method and the credentials.
        attempt: Attempt,
    },
    /// A signed `publickey` request failed before any decision was asked for: its signature
    /// does not verify with the key (or, for a certificate, the certified key). The server
    /// answers it itself, with `SSH_MSG_USERAUTH_FAILURE` after the failure delay (or ends the
    /// connection at `max_auth_tries`): nothing to answer. For the log and the source's
    /// failure count, as sshd's "Failed publickey" line.
    SignatureRefused {
        /// The request's identifier (never answered).
        id: RequestId,
        /// The user name, as the client sent it.
        user: String,
        /// The service (always `ssh-connection`).
        service: String,
        /// The request: an [`Attempt::PublicKey`] with the signature that failed.
        attempt: Attempt,
    },
    /// Authentication succeeded; `SSH_MSG_USERAUTH_SUCCESS` is in the outgoing payloads.
    /// Route every later payload to the connection layer, starting with `pipelined`.
    Authenticated {
        /// The user.
        user: String,
        /// The service to start.
        service: String,
        /// The methods that succeeded, in order (more than one with partial success).
        methods_used: Vec<Method>,
        /// What the application attached to each accepting decision, in order.
        restrictions: Vec<R>,
        /// Connection-protocol payloads the client sent after its successful request and
        /// before our answer (RFC 4252 §5.1 lets it), for the connection layer, in order.
        pipelined: Vec<Vec<u8>>,
    },
}

/// A method and its credentials, as the client presented them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Attempt {
    /// `none`: may this user in without credentials? (Only when [`Method::None`] is enabled.)
    None,
    /// A password; `new_password` is set when the client answers a change request.
    Password {
        /// The password (the old one, with a change).
        password: Password,
        /// The new password.
        new_password: Option<Password>,
    },
    /// Would this key be accepted? `Accept` answers `SSH_MSG_USERAUTH_PK_OK`; no signature
    /// has been checked, and nothing is authenticated by it.
    PublicKeyQuery {
        /// The signature algorithm the client would use.
        algorithm: SignatureAlgorithm,
        /// The key (a certificate's certified key).
        key: PublicKey,
        /// The certificate the key came in, if it came in one (its CA signature and validity
        /// are not checked yet: that is the backend's decision).
        certificate: Option<Arc<Certificate>>,
    },
    /// The client proved it holds this key: the signature over the session identifier and the
    /// request has already been verified. May this key log in as this user?
    PublicKey {
        /// The signature algorithm used.
        algorithm: SignatureAlgorithm,
        /// The key (a certificate's certified key).
        key: PublicKey,
        /// The signature blob the client sent (already verified), for a privileged process
        /// that verifies it again itself (privilege separation).
        signature: Vec<u8>,
        /// Whether the request was `publickey-hostbound-v00@openssh.com`.
        host_bound: bool,
        /// The certificate the key came in, if any: the signature was made by its certified
        /// key; whether its CA is trusted, and its validity, are the backend's to check.
        certificate: Option<Arc<Certificate>>,
    },
    /// The client starts keyboard-interactive: answer with [`Decision::InfoRequest`] (or accept
    /// or reject at once). The event's `id` names the conversation.
    KeyboardInteractive {
        /// The submethods the client asked for (comma-separated, often empty).
        submethods: String,
    },
    /// The answers to the last [`Decision::InfoRequest`] of a conversation, one per prompt.
    KeyboardInteractiveResponses {
        /// The `id` of the request that started the conversation.
        conversation: RequestId,
        /// The answers.
        responses: Vec<Password>,
    },
}

impl Attempt {
    /// The method this attempt belongs to.
    pub fn method(&self) -> Method {
        match self {
            Self::None => Method::None,
            Self::Password { .. } => Method::Password,
            Self::PublicKeyQuery { .. } | Self::PublicKey { .. } => Method::PublicKey,
            Self::KeyboardInteractive { .. } | Self::KeyboardInteractiveResponses { .. } => {
                Method::KeyboardInteractive
            }
        }
    }
}

/// The application's answer to an [`Attempt`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Decision<R = ()> {
    /// Yes. The value (authorized_keys options, a uid, nothing) comes back in
    /// [`ServerEvent::Authenticated`]; for a [`Attempt::PublicKeyQuery`] it is dropped. With
    /// `AuthenticationMethods`, the server may still ask for more methods.
    Accept(R),
    /// No.
    Reject,
    /// This step passed but more are needed, whatever `AuthenticationMethods` says: the client
    /// gets a partial-success failure. Not for a public key query.
    PartialSuccess(R),
    /// The password is right but expired: ask the client for a new one (password only).
    ChangePassword {
        /// Why, to show the user.
        prompt: String,
    },
    /// Ask (more) keyboard-interactive questions (keyboard-interactive only); at most
    /// [`MAX_PROMPTS`] prompts.
    InfoRequest(InfoRequest),
}

/// The server's user authentication state machine.
///
/// Inputs: [`handle_payload`](Self::handle_payload) for each payload of message number 50 and
/// above until [`ServerEvent::Authenticated`] (and 50–79 after it),
/// [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout)'s instant
/// passes, and [`auth_decided`](Self::auth_decided) for each [`ServerEvent::AuthRequested`].
/// Outputs: [`poll_payload`](Self::poll_payload), [`poll_timeout`](Self::poll_timeout),
/// [`poll_event`](Self::poll_event), drained in that order after every input.
///
/// Requests are taken up one at a time, as OpenSSH does: while a decision or a failure delay is
/// outstanding, later payloads wait in a bounded queue.
pub struct Server<R = ()> {
    config: Arc<ServerConfig>,
    session_id: Vec<u8>,
    host_key_blob: Vec<u8>,
    phase: Phase,
    identity: Option<Identity>,
    attempts: u32,
    failures: u32,
    none_tried: bool,
    /// The application answered `UserIdentified`.
    settings_given: bool,
    lists: Vec<Vec<Method>>,
    used_keys: Vec<PublicKey>,
    methods_used: Vec<Method>,
    restrictions: Vec<R>,
    next_id: u64,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    outgoing: Outbox,
    events: VecDeque<ServerEvent<R>>,
}

impl<R> Server<R> {
    /// A server for one connection, after key exchange: `session_id` is the first exchange
    /// hash, `host_key_blob` the host key the first key exchange used.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`] when no method is enabled, or an
    /// `AuthenticationMethods` list is empty, names `none` or names a disabled method.
    pub fn new(
        config: Arc<ServerConfig>,
        session_id: &[u8],
        host_key_blob: &[u8],
    ) -> Result<Self, Error> {
        config.validate()?;
        let lists = config.authentication_methods.clone();
        Ok(Self {
            config,
            session_id: session_id.to_vec(),
            host_key_blob: host_key_blob.to_vec(),
            phase: Phase::ExpectRequest,
            identity: None,
            attempts: 0,
            failures: 0,
            none_tried: false,
            settings_given: false,
            lists,
            used_keys: Vec::new(),
            methods_used: Vec::new(),
            restrictions: Vec::new(),
            next_id: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            outgoing: Outbox::default(),
            events: VecDeque::new(),
        })
    }

    /// Takes one payload from the client.
    ///
    /// # Errors
    ///
    /// A peer error ends the connection (see [`Error::disconnect_reason`]): an undecodable
    /// request, a server-to-client message, a message of 80 or above before success, a changed
    /// user or service, a service other than `ssh-connection`, too many failures, a full queue.
    /// [`LocalMisuse::WrongLayer`] for a payload this layer does not own (a transport message,
    /// or a connection message after success).
    pub fn handle_payload(&mut self, now: Instant, payload: &[u8]) -> Result<Disposition, Error> {
        let result = self.dispatch(now, payload).and_then(|d| self.drain(now).map(|()| d));
        self.close_on_error(result)
    }

    /// Runs the failure delay's timer: call when [`poll_timeout`](Self::poll_timeout)'s
    /// instant has passed (calling early does nothing).
    ///
    /// # Errors
    ///
    /// [`PeerMisbehaved::TooManyAuthFailures`] when the delayed answer was the last failure.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let due = matches!(self.phase, Phase::DelayReply { at, .. } if at <= now);
        if !due {
            return Ok(());
        }
        let Phase::DelayReply { reply, .. } = mem::replace(&mut self.phase, Phase::ExpectRequest)
        else {
            return Ok(());
        };
        let result = self.deliver(reply).and_then(|()| self.drain(now));
        self.close_on_error(result)
    }

    /// Answers the [`ServerEvent::AuthRequested`] named `id`.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::UnknownId`] when `id` is not the question outstanding;
    /// [`LocalMisuse::InvalidAnswer`] when the decision does not fit the attempt (both leave
    /// the question open). Peer errors from requests that waited in the queue, and
    /// [`PeerMisbehaved::TooManyAuthFailures`], end the connection.
    pub fn auth_decided(
        &mut self,
        now: Instant,
        id: RequestId,
        decision: Decision<R>,
    ) -> Result<(), Error> {
        let result = self.decide(now, id, decision).and_then(|()| self.drain(now));
        self.close_on_error(result)
    }

    /// Answers [`ServerEvent::UserIdentified`]: `config` (if any) replaces the configuration
    /// for the rest of the connection — methods, `AuthenticationMethods`, `MaxAuthTries`, the
    /// banner, the public key algorithms — then the first request is taken up.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotReady`] when no `UserIdentified` is outstanding;
    /// [`LocalMisuse::InvalidConfig`] when `config` is not valid (both change nothing). Peer
    /// errors from the requests that waited end the connection.
    pub fn user_settings(
        &mut self,
        now: Instant,
        config: Option<Arc<ServerConfig>>,
    ) -> Result<(), Error> {
        if !matches!(self.phase, Phase::AwaitUserSettings(_)) {
            return Err(LocalMisuse::NotReady.into());
        }
        if let Some(config) = config {
            config.validate()?;
            self.lists.clone_from(&config.authentication_methods);
            self.config = config;
        }
        let Phase::AwaitUserSettings(payload) = mem::replace(&mut self.phase, Phase::ExpectRequest)
        else {
            return Err(LocalMisuse::NotReady.into());
        };
        self.settings_given = true;
        let result = self.request(now, &payload.0).and_then(|()| self.drain(now));
        self.close_on_error(result)
    }

    /// Appends the next payload to send to `buf`; `false` when there is none.
    pub fn poll_payload(&mut self, buf: &mut Vec<u8>) -> bool {
        self.outgoing.pop_into(buf)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ServerEvent<R>> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): while a failure waits out its
    /// delay.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::DelayReply { at, .. } => Some(at),
            _ => None,
        }
    }

    /// Whether authentication has succeeded.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Authenticated)
    }

    /// The user name of the first request, once there was one.
    pub fn user(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.user.as_str())
    }

    /// Failures counted against `MaxAuthTries` so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn dispatch(&mut self, now: Instant, payload: &[u8]) -> Result<Disposition, Error> {
        let number = *payload.first().ok_or(InvalidMessage::EmptyMessage)?;
        let t = MessageType(number);
        match (&self.phase, number) {
            (Phase::Closed, _) => Err(Error::ConnectionClosed),
            (_, 0..=49) => Err(LocalMisuse::WrongLayer.into()),
            (_, 51..=53 | 60) => Err(PeerMisbehaved::UnexpectedMessage(t).into()),
            (_, 54..=59 | 62..=79) => Ok(Disposition::Unrecognized),
            // RFC 4252 §5.1: requests after success are ignored.
            (Phase::Authenticated, 50) => Ok(Disposition::Handled),
            (Phase::Authenticated, 61) => Err(PeerMisbehaved::UnexpectedMessage(t).into()),
            (Phase::Authenticated, _) => Err(LocalMisuse::WrongLayer.into()),
            (Phase::ExpectInfoResponse(round), 61) => {
                let round = *round;
                self.info_response(now, round, payload)?;
                Ok(Disposition::Handled)
            }
            (_, 61) => Err(PeerMisbehaved::UnexpectedMessage(t).into()),
            (
                Phase::AwaitDecision(_) | Phase::DelayReply { .. } | Phase::AwaitUserSettings(_),
                _,
            ) => {
                self.enqueue(payload)?;
                Ok(Disposition::Handled)
            }
            (_, 50) => {
                self.request(now, payload)?;
                Ok(Disposition::Handled)
            }
            (_, _) => Err(PeerMisbehaved::MessageBeforeAuthentication(t).into()),
        }
    }

    fn enqueue(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.queue.len() >= MAX_QUEUED_PAYLOADS
            || self.queued_bytes + payload.len() > MAX_QUEUED_BYTES
        {
            return Err(PeerMisbehaved::BufferLimitExceeded.into());
        }
        self.queued_bytes += payload.len();
        self.queue.push_back(payload.to_vec());
        Ok(())
    }

    /// Takes up queued payloads while nothing is outstanding.
    fn drain(&mut self, now: Instant) -> Result<(), Error> {
        while matches!(self.phase, Phase::ExpectRequest | Phase::ExpectInfoResponse(_)) {
            let Some(payload) = self.queue.pop_front() else {
                return Ok(());
            };
            self.queued_bytes -= payload.len();
            match payload.first() {
                Some(&50) => self.request(now, &payload)?,
                Some(&number) => {
                    let t = MessageType(number);
                    return Err(PeerMisbehaved::MessageBeforeAuthentication(t).into());
                }
                None => return Err(InvalidMessage::EmptyMessage.into()),
            }
        }
        Ok(())
    }

    /// Takes up one `USERAUTH_REQUEST` (`input_userauth_request` in OpenSSH's `auth2.c`).
    fn request(&mut self, now: Instant, payload: &[u8]) -> Result<(), Error> {
        let request = UserauthRequest::decode(payload)?;
        if self.attempts >= MAX_ATTEMPTS {
            return Err(PeerMisbehaved::TooManyAuthFailures.into());
        }
        self.attempts += 1;
        match &self.identity {
            None => {
                if request.service != SERVICE_CONNECTION {
                    return Err(PeerIncompatible::ServiceNotAvailable.into());
                }
                if self.config.settings_per_user && !self.settings_given {
                    self.attempts -= 1;
                    self.events.push_back(ServerEvent::UserIdentified {
                        user: request.user.to_owned(),
                        service: request.service.to_owned(),
                    });
                    self.phase =
                        Phase::AwaitUserSettings(HeldRequest(Zeroizing::new(payload.to_vec())));
                    return Ok(());
                }
                self.identity = Some(Identity {
                    user: request.user.to_owned(),
                    service: request.service.to_owned(),
                    delay: self.config.failure_delay.for_user(request.user),
                });
                if let Some(banner) = &self.config.banner {
                    let banner = UserauthBanner { message: banner.as_bytes(), language: b"" };
                    self.outgoing.push(|w| banner.encode(w));
                }
            }
            Some(identity)
                if identity.user != request.user || identity.service != request.service =>
            {
                return Err(PeerMisbehaved::AuthUserOrServiceChanged.into());
            }
            Some(_) => {}
        }
        // A new request ends any keyboard-interactive conversation.
        self.phase = Phase::ExpectRequest;
        let is_none = request.method.name() == "none";
        let usable = Method::from_name(request.method.name()).is_some_and(|m| self.usable(m));
        if !usable {
            return self.fail(now, now, is_none);
        }
        let id = self.new_id();
        match request.method {
            MethodData::None => {
                self.none_tried = true;
                self.ask(now, id, PendingKind::None, Attempt::None)
            }
            MethodData::Password { password, new_password } => {
                let too_long = |p: &[u8]| p.len() > MAX_PASSWORD_LEN;
                if too_long(password) || new_password.is_some_and(too_long) {
                    return self.fail(now, now, false);
                }
                let attempt = Attempt::Password {
                    password: Password::new(password),
                    new_password: new_password.map(Password::new),
                };
                self.ask(now, id, PendingKind::Password, attempt)
            }
            MethodData::PublicKey(pk) => self.publickey(now, id, request.user, &pk),
            MethodData::KeyboardInteractive { submethods, .. } => {
                let kind = PendingKind::KeyboardInteractive { conversation: id };
                let attempt = Attempt::KeyboardInteractive { submethods: submethods.to_owned() };
                self.ask(now, id, kind, attempt)
            }
            MethodData::Other { .. } => self.fail(now, now, false),
        }
    }

    /// The checks OpenSSH's `userauth_pubkey` makes before asking whether the key may log in;
    /// a signed request is verified here, so a bad signature is never put to the application
    /// as a question, only told to it ([`ServerEvent::SignatureRefused`]).
    fn publickey(
        &mut self,
        now: Instant,
        id: RequestId,
        user: &str,
        pk: &PublicKeyData<'_>,
    ) -> Result<(), Error> {
        if pk.host_key_blob.is_some_and(|blob| blob != self.host_key_blob) {
            return Err(PeerMisbehaved::HostboundWrongHostKey.into());
        }
        let (algorithm, key, certificate) = if pk.algorithm.ends_with(cert::CERT_SUFFIX) {
            let algorithm = cert::cert_signature_algorithm(pk.algorithm)
                .filter(|a| self.config.cert_algorithms().contains(a));
            let certificate = Certificate::from_blob(pk.key_blob).ok().map(Arc::new);
            let key = certificate.as_ref().map(|c| c.key.clone());
            (algorithm, key, certificate)
        } else {
            let algorithm = SignatureAlgorithm::from_name(pk.algorithm)
                .filter(|a| self.config.publickey_algorithms.contains(a));
            (algorithm, PublicKey::from_blob(pk.key_blob).ok(), None)
        };
        let (Some(algorithm), Some(key)) = (algorithm, key) else {
            return self.fail(now, now, false);
        };
        if !key.supports(algorithm) || self.used_keys.contains(&key) {
            return self.fail(now, now, false);
        }
        let Some(signature) = pk.signature else {
            let kind = PendingKind::PublicKeyQuery {
                algorithm: pk.algorithm.to_owned(),
                key_blob: pk.key_blob.to_vec(),
            };
            return self.ask(
                now,
                id,
                kind,
                Attempt::PublicKeyQuery { algorithm, key, certificate },
            );
        };
        if !(self.config.backend_verifies_plain_key_signatures && certificate.is_none()) {
            let data = signed_data(
                &self.session_id,
                user,
                SERVICE_CONNECTION,
                pk.algorithm,
                pk.key_blob,
                pk.host_key_blob,
            );
            if key.verify(algorithm, &data, signature).is_err() {
                let (user, service) = self.names();
                let attempt = Attempt::PublicKey {
                    algorithm,
                    key,
                    signature: signature.to_vec(),
                    host_bound: pk.host_key_blob.is_some(),
                    certificate,
                };
                self.events.push_back(ServerEvent::SignatureRefused { id, user, service, attempt });
                return self.fail(now, now, false);
            }
        }
        self.ask(
            now,
            id,
            PendingKind::PublicKey(key.clone()),
            Attempt::PublicKey {
                algorithm,
                key,
                signature: signature.to_vec(),
                host_bound: pk.host_key_blob.is_some(),
                certificate,
            },
        )
    }

    fn info_response(
        &mut self,
        now: Instant,
        round: InfoRound,
        payload: &[u8],
    ) -> Result<(), Error> {
        let message = UserauthInfoResponse::decode(payload)?;
        if message.responses.len() != round.prompts {
            return Err(PeerMisbehaved::WrongNumberOfInfoResponses.into());
        }
        let responses = message.responses.iter().map(|r| Password::new(*r)).collect();
        let id = self.new_id();
        let kind = PendingKind::KeyboardInteractive { conversation: round.conversation };
        let attempt =
            Attempt::KeyboardInteractiveResponses { conversation: round.conversation, responses };
        self.ask(now, id, kind, attempt)
    }

    fn ask(
        &mut self,
        now: Instant,
        id: RequestId,
        kind: PendingKind,
        attempt: Attempt,
    ) -> Result<(), Error> {
        let (user, service) = self.names();
        self.events.push_back(ServerEvent::AuthRequested { id, user, service, attempt });
        self.phase = Phase::AwaitDecision(Pending { id, started: now, kind });
        Ok(())
    }

    fn decide(&mut self, now: Instant, id: RequestId, decision: Decision<R>) -> Result<(), Error> {
        let pending = match &self.phase {
            Phase::Closed => return Err(Error::ConnectionClosed),
            Phase::AwaitDecision(pending) if pending.id == id => pending,
            _ => return Err(LocalMisuse::UnknownId.into()),
        };
        if !pending.kind.allows(&decision) {
            return Err(LocalMisuse::InvalidAnswer.into());
        }
        let Phase::AwaitDecision(pending) = mem::replace(&mut self.phase, Phase::ExpectRequest)
        else {
            return Err(LocalMisuse::UnknownId.into());
        };
        let is_none = matches!(pending.kind, PendingKind::None);
        match (decision, pending.kind) {
            (Decision::Reject, _) => self.fail(now, pending.started, is_none),
            (Decision::Accept(_), PendingKind::PublicKeyQuery { algorithm, key_blob }) => {
                let ok = UserauthPkOk { algorithm: &algorithm, key_blob: &key_blob };
                self.outgoing.push(|w| ok.encode(w));
                Ok(())
            }
            (Decision::Accept(restriction), kind) => {
                self.accept(now, pending.started, kind, restriction, false)
            }
            (Decision::PartialSuccess(restriction), kind) => {
                self.accept(now, pending.started, kind, restriction, true)
            }
            (Decision::ChangePassword { prompt }, _) => {
                let request = UserauthPasswdChangereq { prompt: prompt.as_bytes(), language: b"" };
                let payload = encode(|w| request.encode(w));
                self.reply(now, pending.started, true, Reply::Send(payload))
            }
            (Decision::InfoRequest(info), kind) => {
                let conversation = match kind {
                    PendingKind::KeyboardInteractive { conversation } => conversation,
                    _ => pending.id,
                };
                let message = UserauthInfoRequest {
                    name: info.name.as_bytes(),
                    instruction: info.instruction.as_bytes(),
                    language: b"",
                    prompts: info.prompts.iter().map(|p| (p.text.as_bytes(), p.echo)).collect(),
                };
                self.outgoing.push(|w| message.encode(w));
                let round = InfoRound { conversation, prompts: info.prompts.len() };
                self.phase = Phase::ExpectInfoResponse(round);
                Ok(())
            }
        }
    }

    /// A method succeeded: success, or partial success while `AuthenticationMethods` (or the
    /// application) wants more.
    fn accept(
        &mut self,
        now: Instant,
        started: Instant,
        kind: PendingKind,
        restriction: R,
        partial: bool,
    ) -> Result<(), Error> {
        let method = kind.method();
        if let PendingKind::PublicKey(key) = kind {
            self.used_keys.push(key);
        }
        self.methods_used.push(method);
        self.restrictions.push(restriction);
        if !partial && self.advance_lists(method) {
            self.succeed();
            return Ok(());
        }
        let payload = self.failure_payload(true);
        self.reply(now, started, method != Method::None, Reply::Send(payload))
    }

    /// A request failed (`userauth_finish` in OpenSSH): counted unless it is the first request
    /// and `none`; delayed unless `none`; the last allowed failure ends the connection instead.
    fn fail(&mut self, now: Instant, started: Instant, is_none: bool) -> Result<(), Error> {
        if !(is_none && self.attempts == 1) {
            self.failures += 1;
        }
        let reply = if self.failures >= self.config.max_auth_tries {
            Reply::Disconnect(PeerMisbehaved::TooManyAuthFailures.into())
        } else {
            Reply::Send(self.failure_payload(false))
        };
        self.reply(now, started, !is_none, reply)
    }

    fn reply(
        &mut self,
        now: Instant,
        started: Instant,
        delayed: bool,
        reply: Reply,
    ) -> Result<(), Error> {
        if let Some(at) = delayed.then(|| self.delayed_until(started, now)).flatten() {
            self.phase = Phase::DelayReply { at, reply };
            return Ok(());
        }
        self.deliver(reply)
    }

    fn deliver(&mut self, reply: Reply) -> Result<(), Error> {
        match reply {
            Reply::Send(payload) => {
                self.outgoing.push_payload(payload);
                self.phase = Phase::ExpectRequest;
                Ok(())
            }
            Reply::Disconnect(error) => Err(error),
        }
    }

    /// OpenSSH's `ensure_minimum_time_since`: the user's delay, doubled until it covers the time
    /// already spent; `None` to answer now.
    fn delayed_until(&self, started: Instant, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(started);
        if elapsed > self.config.failure_delay.give_up_after {
            return None;
        }
        let mut delay = self.identity.as_ref()?.delay;
        if delay.is_zero() {
            return None;
        }
        while delay < elapsed {
            delay = delay.checked_mul(2)?;
        }
        let at = started.checked_add(delay)?;
        (at > now).then_some(at)
    }

    fn succeed(&mut self) {
        self.outgoing.push(|w| UserauthSuccess.encode(w));
        self.phase = Phase::Authenticated;
        let pipelined = self.queue.drain(..).filter(|p| p.first() != Some(&50)).collect();
        self.queued_bytes = 0;
        let (user, service) = self.names();
        self.events.push_back(ServerEvent::Authenticated {
            user,
            service,
            methods_used: mem::take(&mut self.methods_used),
            restrictions: mem::take(&mut self.restrictions),
            pipelined,
        });
    }

    /// Removes `method` from the head of each `AuthenticationMethods` list it heads; `true` when
    /// one list is complete (or there are no lists).
    fn advance_lists(&mut self, method: Method) -> bool {
        if self.lists.is_empty() {
            return true;
        }
        let mut complete = false;
        for list in &mut self.lists {
            if list.first() == Some(&method) {
                list.remove(0);
                complete |= list.is_empty();
            }
        }
        complete
    }

    /// Whether `method` may be tried now: enabled, `none` not yet tried, and next in some
    /// `AuthenticationMethods` list.
    fn usable(&self, method: Method) -> bool {
        self.config.methods.contains(&method)
            && (method != Method::None || !self.none_tried)
            && (self.lists.is_empty() || self.lists.iter().any(|l| l.first() == Some(&method)))
    }

    /// `SSH_MSG_USERAUTH_FAILURE` with the methods that can continue, in OpenSSH's order.
    fn failure_payload(&self, partial_success: bool) -> Vec<u8> {
        let names: Vec<&str> = [Method::PublicKey, Method::Password, Method::KeyboardInteractive]
            .into_iter()
            .filter(|&m| self.usable(m))
            .map(Method::name)
            .collect();
        let list = names.join(",");
        // invariant: a comma-joined list of our own method names is a valid name-list.
        let methods = NameList::parse(list.as_bytes()).unwrap_or_default();
        encode(|w| UserauthFailure { methods, partial_success }.encode(w))
    }

    /// The user and service of the first request.
    fn names(&self) -> (String, String) {
        self.identity.as_ref().map(|i| (i.user.clone(), i.service.clone())).unwrap_or_default()
    }

    fn new_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn close_on_error<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if result.as_ref().is_err_and(ends_connection) {
            self.phase = Phase::Closed;
        }
        result
    }
}

impl<R> fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("user", &self.user())
            .field("phase", &self.phase)
            .field("attempts", &self.attempts)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// Where the server is.
#[derive(Debug)]
enum Phase {
    /// Waiting for a `USERAUTH_REQUEST`.
    ExpectRequest,
    /// An `INFO_REQUEST` went out: waiting for its `INFO_RESPONSE` (or a new request).
    ExpectInfoResponse(InfoRound),
    /// A `UserIdentified` event went out: the first request waits for `user_settings`.
    AwaitUserSettings(HeldRequest),
    /// An `AuthRequested` event went out: waiting for `auth_decided`.
    AwaitDecision(Pending),
    /// An answer is ready but waits out the failure delay.
    DelayReply { at: Instant, reply: Reply },
    /// `USERAUTH_SUCCESS` went out.
    Authenticated,
    /// A terminal error happened.
    Closed,
}

/// The first request, held while the user's settings are decided; it may carry a password,
/// so it is wiped when dropped and never printed.
struct HeldRequest(Zeroizing<Vec<u8>>);

impl fmt::Debug for HeldRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeldRequest({} bytes)", self.0.len())
    }
}

#[derive(Clone, Copy, Debug)]
struct InfoRound {
    conversation: RequestId,
    prompts: usize,
}

#[derive(Debug)]
struct Pending {
    id: RequestId,
    started: Instant,
    kind: PendingKind,
}

/// What an outstanding question is about, with what answering it needs.
#[derive(Debug)]
enum PendingKind {
    None,
    Password,
    PublicKeyQuery { algorithm: String, key_blob: Vec<u8> },
    PublicKey(PublicKey),
    KeyboardInteractive { conversation: RequestId },
}

impl PendingKind {
    fn method(&self) -> Method {
        match self {
            Self::None => Method::None,
            Self::Password => Method::Password,
            Self::PublicKeyQuery { .. } | Self::PublicKey(_) => Method::PublicKey,
            Self::KeyboardInteractive { .. } => Method::KeyboardInteractive,
        }
    }

    fn allows<R>(&self, decision: &Decision<R>) -> bool {
        match decision {
            Decision::Accept(_) | Decision::Reject => true,
            Decision::PartialSuccess(_) => !matches!(self, Self::PublicKeyQuery { .. }),
            Decision::ChangePassword { .. } => matches!(self, Self::Password),
            Decision::InfoRequest(info) => {
                matches!(self, Self::KeyboardInteractive { .. })
                    && info.prompts.len() <= MAX_PROMPTS
            }
        }
    }
}

#[derive(Debug)]
enum Reply {
    Send(Vec<u8>),
    Disconnect(Error),
}

#[derive(Debug)]
struct Identity {
    user: String,
    service: String,
    delay: Duration,
}

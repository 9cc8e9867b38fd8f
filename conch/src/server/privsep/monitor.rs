//! The monitor's side: which request is allowed when, per connection, and how many.
//!
//! ```text
//!            ConnectionOpened
//!                  │
//!                  ▼
//!   ┌──────────  PreAuth  ── SignExchangeHash (once: the initial key exchange)
//!   │              │        LookupUser, ReadAuthorizedKeys, PamStart, PamRespond (only
//!   │              │        answering the round asked, one answer per prompt), PamAccount,
//!   │              │        AuthenticatePublicKey, AuthenticateCertificate,
//!   │              │        ConnectionLocalAddress (once)
//!   │  PAM that accepts (PamRespond, or AuthenticatePassword with UsePAM) verifies the user;
//!   │  PamStart for the name the last LookupUser did not find runs the conversation as sshd
//!   │  does for an invalid user, and its acceptance verifies no one
//!   │  ConnectionAuthenticated (the user looked up on this connection)
//!   │  AuthenticatePublicKey: the monitor checks authorized_keys (the line sshd would use:
//!   │  `from=`, `expiry-time=` by the backend's clock, `command=`), the key's algorithm and
//!   │  an RSA key's size (`LoginRules`) and the signature over the
//!   │  session id it signed itself; only then is ConnectionAuthenticated accepted (right
//!   │  after a failed check — the worker pipelines the two — it is refused, not a violation)
//!   │  ConnectionAuthenticated also needs the methods the monitor verified, in order, to
//!   │  complete AuthenticationMethods, every one allowed for the user, and for root under
//!   │  forced-commands-only a verified key that forces a command
//!   │              ▼
//!   │        Authenticated ── SignExchangeHash (rekeys, bounded), SpawnSession (bounded),
//!   │              │      ResolveHost, ListenAgent (once), ListenPrivileged (root, bounded),
//!   │              │      ProveHostKey (bounded: hostkeys-prove-00 for a key it holds)
//!   │              │
//!   └─────► ConnectionClosed ──► forgotten; its id is never accepted again
//! ```
//!
//! Anything else — a request for a connection that was never opened, a session before
//! authentication, a second pre-auth signature, data to sign that is not an exchange hash, a
//! user other than the one looked up — is a [`Violation`]. The monitor answers a violation by
//! killing the worker (every connection it served is lost); nothing a worker sends can make the
//! monitor panic or allocate without bound. Too many requests of a kind on one connection (which
//! a client can cause through an honest worker: many keys, rekeys, sessions) are refused with
//! [`Reply::Failed`] for that connection alone.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::time::SystemTime;

use crate::crypto::CryptoError;
use crate::keys::{
    cert, hostkeys_prove_data, AuthorizedKeys, Certificate, KeyType, PublicKey, SignatureAlgorithm,
};
use crate::server::{ConnectionFacts, ConnectionId, Restrictions};
use crate::userauth::Method;

use crate::server::auth::authorized_keys::local_offset;

use super::codec::{CodecError, FrameDecoder, Reply, Request, SessionPlan, UserRecord};

/// How many requests of each kind one connection may make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections one worker may have open at once.
    pub max_connections: usize,
    /// User look-ups before authentication (OpenSSH: a user may not change; a client retrying
    /// gets a few).
    pub max_lookups: u32,
    /// `authorized_keys` reads and public key checks before authentication (one per offered
    /// key).
    pub max_key_reads: u32,
    /// PAM starts and responses before authentication.
    pub max_pam: u32,
    /// Signatures after authentication (one per rekey).
    pub max_rekey_signatures: u32,
    /// Sessions started over one connection's life (multiplexed clients start many).
    pub max_sessions: u32,
    /// `hostkeys-prove-00@openssh.com` proofs signed over one connection's life.
    pub max_proofs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 65_536,
            max_lookups: 10,
            max_key_reads: 64,
            max_pam: 64,
            max_rekey_signatures: 1024,
            max_sessions: 4096,
            max_proofs: 256,
        }
    }
}

/// What the monitor does with privilege: the only code that touches host keys, the account
/// database and users' files. Implemented for the real system by [`SystemBackend`](super::SystemBackend),
/// and by fakes in tests.
pub trait MonitorBackend {
    /// Signs an exchange hash with the host key for `algorithm`; `UnsupportedAlgorithm` when
    /// the monitor holds no such key.
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The public half of the host key that signs with `algorithm`.
    fn host_public_key(&self, algorithm: SignatureAlgorithm) -> Option<PublicKey>;
    /// The account named `name`, if any.
    fn lookup_user(&mut self, name: &str) -> Option<UserRecord>;
    /// The user's `authorized_keys` contents, if readable.
    fn read_authorized_keys(&mut self, user: &UserRecord) -> Option<Vec<u8>>;
    /// Whether a connection from `address` may go on (`Err`: a per-source penalty's reason).
    /// The default admits everyone.
    fn admit(&mut self, address: std::net::IpAddr) -> Result<(), String> {
        let _ = address;
        Ok(())
    }
    /// `address` earned a per-source penalty (a failed login that ended, a crashed worker).
    /// The default forgets it.
    fn penalise(&mut self, address: std::net::IpAddr, kind: super::PenaltyKind) {
        let _ = (address, kind);
    }
    /// `connection` from `address`, admitted, starts waiting to log in: whether it may
    /// (`Err`: why not), counted with the others until it logs in
    /// ([`connection_authenticated`](Self::connection_authenticated)) or closes
    /// ([`connection_closed`](Self::connection_closed)): `MaxStartups` over every worker.
    /// The default lets every connection start.
    fn connection_starting(
        &mut self,
        connection: ConnectionId,
        address: std::net::IpAddr,
    ) -> Result<(), String> {
        let _ = (connection, address);
        Ok(())
    }
    /// `connection` logged in. The default does nothing.
    fn connection_authenticated(&mut self, connection: ConnectionId) {
        let _ = connection;
    }
    /// `connection` from `address`, admitted, closed without logging in; `kind` is what it did,
    /// as sshd's exit statuses tell its listener: `RefuseConnection` (the configuration
    /// refused it), `AuthFail` (it asked for a check: a key for a valid user, a password, a
    /// PAM conversation), `InvalidUser` (it named no valid user and asked for no check),
    /// `NoAuth` (neither). Called before
    /// [`connection_closed`](Self::connection_closed). The default penalises `address` for
    /// `kind` ([`penalise`](Self::penalise)).
    fn login_abandoned(
        &mut self,
        connection: ConnectionId,
        address: std::net::IpAddr,
        kind: super::PenaltyKind,
    ) {
        let _ = connection;
        self.penalise(address, kind);
    }
    /// Whether the configuration ends a connection over `facts` once it names `user`
    /// (`record`: the account, `None` for an invalid user): sshd's `RefuseConnection`, asked
    /// when the user is looked up, as sshd's monitor does. The default refuses none.
    fn refuses_connection(
        &mut self,
        user: &str,
        record: Option<&UserRecord>,
        facts: &ConnectionFacts,
    ) -> bool {
        let _ = (user, record, facts);
        false
    }
    /// The names of `user`'s groups. The default knows none.
    fn groups(&mut self, user: &UserRecord) -> Vec<String> {
        let _ = user;
        Vec::new()
    }
    /// Resolves `host` for a forwarding (blocking). The default resolves nothing.
    fn resolve(&mut self, host: &str, port: u16) -> Vec<std::net::SocketAddr> {
        let _ = (host, port);
        Vec::new()
    }
    /// Whether the configuration lets `user` log in by `method` (its last method) over
    /// `facts`, checked again by the monitor when the worker says the login completed
    /// (`AllowUsers`/`DenyUsers`/groups, the method switched on, `PermitRootLogin`), so a
    /// worker that skipped its policy gains nothing; `Err` with the reason. The default
    /// allows.
    fn login_policy(
        &mut self,
        user: &UserRecord,
        method: &str,
        facts: &ConnectionFacts,
    ) -> Result<(), String> {
        let _ = (user, method, facts);
        Ok(())
    }
    /// What the configuration asks of a login by `user` over `facts` that the monitor checks
    /// itself with what it verified ([`LoginRules`]: `AuthenticationMethods`,
    /// `PubkeyAcceptedAlgorithms`, `RequiredRSASize`, `PermitRootLogin forced-commands-only`);
    /// `Err` with the reason refuses the step or the login. The default,
    /// [`LoginRules::default`], asks nothing more: any one method the monitor verified
    /// completes a login, with any key, as for a monitor that knows no configuration.
    fn login_rules(
        &mut self,
        user: &UserRecord,
        facts: &ConnectionFacts,
    ) -> Result<LoginRules, String> {
        let _ = (user, facts);
        Ok(LoginRules::default())
    }
    /// The time now, against which what expires is checked (an `authorized_keys` line's
    /// `expiry-time`). The default is the system clock.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    /// Checks `password` for an account (`/etc/shadow`); the default knows no passwords.
    fn check_password(&mut self, user: &UserRecord, password: &[u8]) -> bool {
        let _ = (user, password);
        false
    }
    /// Starts a planned session's process as `user` (never as anyone the worker names),
    /// returning its pid, terminal and descriptors: a control socket first, then the pty
    /// controller or the three pipes. The default cannot.
    fn spawn_session(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        plan: &SessionPlan,
    ) -> Result<SpawnedSession, String> {
        let _ = (connection, user, plan);
        Err("sessions are not started by this monitor".to_owned())
    }
    /// Starts a PAM conversation (keyboard-interactive) for the user named `user` on
    /// `connection` from `peer`, replacing any the connection had; its first round, its
    /// outcome, or [`PamStep::Pending`] while PAM works. The name may have no account (as
    /// sshd, the conversation runs for an invalid user too, and its acceptance verifies no
    /// one). PAM's conversation blocks: the backend runs it on a thread of its own, kept until
    /// the conversation ends or [`pam_end`](Self::pam_end), and never waits for it. The default
    /// has no PAM.
    fn pam_start(
        &mut self,
        connection: ConnectionId,
        peer: Option<std::net::IpAddr>,
        user: &str,
    ) -> PamStep {
        let _ = (connection, peer, user);
        PamStep::Unsupported
    }
    /// The client's answers to the last round of `connection`'s conversation; the next round,
    /// or the outcome. The default has no PAM.
    fn pam_respond(&mut self, connection: ConnectionId, responses: &[String]) -> PamStep {
        let _ = (connection, responses);
        PamStep::Unsupported
    }
    /// Checks a password through PAM (`UsePAM yes`: `pam_authenticate`, then
    /// `pam_acct_mgmt`); `None` when passwords are not PAM's ([`check_password`] decides).
    /// The default has no PAM.
    ///
    /// [`check_password`]: Self::check_password
    fn pam_password(
        &mut self,
        connection: ConnectionId,
        peer: Option<std::net::IpAddr>,
        user: &UserRecord,
        password: &[u8],
    ) -> Option<PamStep> {
        let _ = (connection, peer, user, password);
        None
    }
    /// PAM's account check (`pam_acct_mgmt`) for a user let in some other way: `Accepted`, or
    /// `Refused` with PAM's reason when the account may not log in (or `Pending`). The
    /// default has no PAM.
    fn pam_account(
        &mut self,
        connection: ConnectionId,
        peer: Option<std::net::IpAddr>,
        user: &UserRecord,
    ) -> PamStep {
        let _ = (connection, peer, user);
        PamStep::Unsupported
    }
    /// PAM's answer to `connection`'s last PAM call that answered [`PamStep::Pending`], or
    /// `Pending` again. The default has no PAM.
    fn pam_poll(&mut self, connection: ConnectionId) -> PamStep {
        let _ = connection;
        PamStep::Unsupported
    }
    /// Ends `connection`'s PAM conversation, if any (the connection authenticated or
    /// closed): its thread unwinds. The default has none.
    fn pam_end(&mut self, connection: ConnectionId) {
        let _ = connection;
    }
    /// The user's `authorized_keys` contents for a login over `facts` (the `Match` blocks
    /// that apply to it choose the files) and, when `key` is given, the lines an
    /// `AuthorizedKeysCommand` prints for it first. The default reads the files as
    /// [`read_authorized_keys`](Self::read_authorized_keys) does.
    fn authorized_keys_for(
        &mut self,
        user: &UserRecord,
        facts: &ConnectionFacts,
        key: Option<&PublicKey>,
    ) -> Option<Vec<u8>> {
        let _ = (facts, key);
        self.read_authorized_keys(user)
    }
    /// Whether `certificate` (its CA signature already verified by the monitor) lets `user`
    /// in over `facts`: trusted CA and principals, validity, critical options, revocation;
    /// `Ok` with the login's restrictions, `Err` with the reason. The default trusts no CA.
    fn check_certificate(
        &mut self,
        user: &UserRecord,
        certificate: &Certificate,
        facts: &ConnectionFacts,
    ) -> Result<Restrictions, String> {
        let _ = (user, certificate, facts);
        Err("certificates are not trusted by this monitor".to_owned())
    }
    /// Signs `data` with the host key `key` (not any key that supports `algorithm`);
    /// `UnsupportedAlgorithm` when the monitor does not hold `key`. The default holds none.
    fn sign_with_host_key(
        &mut self,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let _ = (key, algorithm, data);
        Err(CryptoError::UnsupportedAlgorithm)
    }
    /// Makes the forwarded agent's listening socket for `user` on `connection` (sshd's
    /// private `/tmp/ssh-XXXXXXXXXX/agent.<pid>`, owned by the user), returning its path and
    /// the socket; it is the backend's to remove in
    /// [`connection_closed`](Self::connection_closed). The default cannot.
    fn listen_agent(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
    ) -> Result<(String, OwnedFd), String> {
        let _ = (connection, user);
        Err("agent forwarding is not done by this monitor".to_owned())
    }
    /// Binds and listens on `address` (a privileged port) for a root login's remote forward.
    /// The default cannot.
    fn listen_privileged(
        &mut self,
        connection: ConnectionId,
        address: std::net::SocketAddr,
    ) -> Result<OwnedFd, String> {
        let _ = (connection, address);
        Err("privileged ports are not bound by this monitor".to_owned())
    }
    /// Listens on a Unix-domain socket at `path` for `user`'s remote forward (the socket the
    /// user's, removed by the backend in [`connection_closed`](Self::connection_closed)).
    /// The default cannot.
    fn listen_streamlocal(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        path: &[u8],
    ) -> Result<OwnedFd, String> {
        let _ = (connection, user, path);
        Err("socket forwarding is not done by this monitor".to_owned())
    }
    /// Connects to the Unix-domain socket at `path` for `user`'s `direct-streamlocal`
    /// channel. The default cannot.
    fn connect_streamlocal(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        path: &[u8],
    ) -> Result<OwnedFd, String> {
        let _ = (connection, user, path);
        Err("socket forwarding is not done by this monitor".to_owned())
    }
    /// `connection` closed: forget what was made or kept for it (the agent's socket). The
    /// default has nothing to forget.
    fn connection_closed(&mut self, connection: ConnectionId) {
        let _ = connection;
    }
}

/// The configuration's rules for one login that the monitor enforces with what it verified
/// itself ([`MonitorBackend::login_rules`]), so that a worker that skipped its own policy
/// gains nothing. The default asks nothing more than one verified method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginRules {
    /// `AuthenticationMethods`: the login completes when the methods the monitor verified,
    /// in order, include every method of one list in its order (OpenSSH's lists, advanced as
    /// each method succeeds). Empty: any one verified method completes it. A list naming a
    /// method the server cannot complete is the backend's to leave out whole (never to
    /// shorten), and to answer `Err` when none is left.
    pub methods: Vec<Vec<Method>>,
    /// `PubkeyAcceptedAlgorithms`: the public key algorithms (as the client names them, a
    /// certificate's `*-cert-v01@openssh.com`) a key may authenticate with; `None`: any.
    pub public_key_algorithms: Option<Vec<String>>,
    /// `PermitRootLogin forced-commands-only` for a root login: one of the keys or
    /// certificates the monitor verified must force a command (its `authorized_keys` line's
    /// `command=`, or the certificate's `force-command`), as OpenSSH's `auth_root_allowed`.
    pub forced_command_only: bool,
    /// `RequiredRSASize`: the fewest bits an RSA key (a certificate's certified key, not its
    /// CA) may have, as OpenSSH's `sshkey_check_rsa_length` (never fewer than 1024); `None`:
    /// any.
    pub min_rsa_bits: Option<u32>,
}

impl LoginRules {
    /// Whether `verified`, the methods verified in order, completes one of the lists (or
    /// there are none).
    pub fn methods_completed_by(&self, verified: &[Method]) -> bool {
        self.methods.is_empty()
            || self.methods.iter().any(|list| {
                let mut wanted = list.iter().peekable();
                for step in verified {
                    if wanted.peek() == Some(&step) {
                        wanted.next();
                    }
                }
                wanted.peek().is_none()
            })
    }
}

/// What PAM answered, as a [`MonitorBackend`] relays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PamStep {
    /// A round for the client: show this and ask (the conversation waits for the answers).
    Ask(crate::userauth::InfoRequest),
    /// PAM authenticated the user, and its account check let them in.
    Accepted,
    /// PAM refused (its reason, for the log); the conversation is over.
    Refused(String),
    /// This monitor does not run PAM.
    Unsupported,
    /// PAM is still working: the answer comes from [`MonitorBackend::pam_poll`]. A backend
    /// answers this rather than wait, so that the monitor serves the worker's other requests
    /// meanwhile.
    Pending,
}

/// Which PAM call of a connection is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PamCall {
    /// `PamStart` or `PamRespond`: the answer is a round or the conversation's outcome.
    Conversation,
    /// `AuthenticatePassword` through PAM.
    Password,
    /// `PamAccount`.
    Account,
}

/// The most privileged ports one connection may have the monitor bind.
pub const MAX_PRIVILEGED_LISTENERS: u32 = 64;

/// What a connection had the monitor make for it: the agent's socket, privileged listeners.
#[derive(Debug, Default)]
struct Made {
    agent: bool,
    privileged: u32,
    streamlocal: u32,
}

/// A planned session the monitor started (see [`MonitorBackend::spawn_session`]).
#[derive(Debug)]
pub struct SpawnedSession {
    /// The process id.
    pub pid: u32,
    /// The terminal's path, with a pty.
    pub tty: Option<String>,
    /// The control socket, then the pty controller or stdin, stdout and stderr.
    pub fds: Vec<OwnedFd>,
}

/// Where a connection is, as far as the monitor knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Key exchange and user authentication.
    PreAuth,
    /// The named user logged in.
    Authenticated,
}

#[derive(Debug)]
struct Connection {
    phase: Phase,
    user: Option<UserRecord>,
    /// The first exchange hash signed: the session identifier.
    session_id: Option<Vec<u8>>,
    /// The host key of the first key exchange, for host-bound public key authentication.
    host_key: Option<PublicKey>,
    /// The user the monitor verified a method for (a public key, a certificate, a password,
    /// a PAM conversation).
    verified: Option<String>,
    /// The methods verified for that user, in order (`AuthenticationMethods`).
    methods: Vec<Method>,
    /// The keys (a certificate's certified key) verified for that user: none may serve
    /// twice, as OpenSSH's `auth2_key_already_used`.
    keys_used: Vec<PublicKey>,
    /// A key or certificate verified for that user forced a command
    /// (`PermitRootLogin forced-commands-only`).
    forced_command: bool,
    signatures: u32,
    lookups: u32,
    key_reads: u32,
    pam: u32,
    sessions: u32,
    /// The client's address, once the worker told it.
    peer: Option<std::net::IpAddr>,
    /// The client's port, with its address.
    peer_port: u16,
    /// Public key and password checks that failed.
    failures: u32,
    /// Its peer was admitted (`ConnectionPeer` answered `Done`): it was served, and its end
    /// may earn its source a penalty.
    admitted: bool,
    /// A PAM conversation waits for answers to this many prompts.
    pam_asked: Option<usize>,
    /// A PAM call answered `PamPending`, for `PamPoll`.
    pam_pending: Option<PamCall>,
    /// The user of the connection's last PAM call: the one PAM's acceptance verifies
    /// (whoever was looked up since).
    pam_user: Option<String>,
    /// Our address the connection reached, once the worker told it.
    local: Option<std::net::SocketAddr>,
    /// `hostkeys-prove-00@openssh.com` proofs signed.
    proofs: u32,
    /// The name the last `LookupUser` found no account for: the worker may ask for its groups
    /// and keys in the same breath (pipelined), and gets nothing.
    unknown_user: Option<String>,
    /// The connection's last request was an `AuthenticatePublicKey` that failed: a
    /// `ConnectionAuthenticated` right after it (pipelined with the check) is refused.
    failed_key_check: bool,
    /// It asked for a check (sshd's `auth_attempted`): a valid user's keys, a key or
    /// certificate verified, a password, a PAM conversation.
    attempted: bool,
    /// A user it named had no account (sshd's `invalid_user`).
    invalid_user: bool,
    /// `RefuseConnection` applies to it: every request but its close is refused.
    refused: bool,
}

impl Connection {
    /// The monitor verified `method` for `user` (a key `key`, forcing a command or not): a
    /// step of the user's login. Another user's steps are forgotten.
    fn verify(&mut self, user: &str, method: Method, key: Option<(PublicKey, bool)>) {
        if self.verified.as_deref() != Some(user) {
            self.forget_verified();
            self.verified = Some(user.to_owned());
        }
        self.methods.push(method);
        if let Some((key, forced)) = key {
            self.keys_used.push(key);
            self.forced_command |= forced;
        }
    }

    /// No user is verified any more (another was looked up).
    fn forget_verified(&mut self) {
        self.verified = None;
        self.methods.clear();
        self.keys_used.clear();
        self.forced_command = false;
    }

    /// What the monitor knows of connection `id`, as an auth backend sees it (the client's
    /// port is not told: 0).
    fn facts(&self, id: ConnectionId) -> ConnectionFacts {
        let peer = self.peer.map(|ip| std::net::SocketAddr::new(ip, self.peer_port));
        ConnectionFacts::new(id, peer, self.local)
    }
}

/// The answer to every request of a connection `RefuseConnection` ended, after the
/// `LookupUser` that found it so (answered as usual, as is `LookupGroups`: the worker, reading
/// the same configuration with them, ends the connection itself).
pub const REFUSED: &str = "RefuseConnection";

/// A request the monitor refuses to serve; the worker that sent it is killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The bytes were not a well-formed request.
    Malformed(CodecError),
    /// The request names a connection that is not open.
    UnknownConnection(ConnectionId),
    /// `ConnectionOpened` for an id not above every id opened before.
    ReusedConnection(ConnectionId),
    /// More connections open than [`Limits::max_connections`].
    TooManyConnections,
    /// A request not allowed in the connection's phase.
    OutOfState {
        /// The request's name.
        request: &'static str,
        /// The phase the connection was in.
        phase: Phase,
    },
    /// Data to sign that is not an exchange hash (20, 32, 48 or 64 bytes).
    NotAnExchangeHash(usize),
    /// A signature algorithm the monitor does not know or holds no key for.
    UnknownAlgorithm(String),
    /// A user other than the one looked up on this connection, or none was found.
    UserMismatch,
    /// `ConnectionAuthenticated` for a user the monitor did not verify.
    Unverified,
    /// `PamRespond` with other than one answer per prompt of the round.
    WrongResponseCount {
        /// The prompts of the round.
        asked: usize,
        /// The answers sent.
        got: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed request: {e}"),
            Self::UnknownConnection(c) => {
                write!(f, "request for connection {c}, which is not open")
            }
            Self::ReusedConnection(c) => write!(f, "connection id {c} reused"),
            Self::TooManyConnections => f.write_str("too many open connections"),
            Self::OutOfState { request, phase } => write!(f, "{request} not allowed in {phase:?}"),
            Self::NotAnExchangeHash(n) => write!(f, "{n} bytes to sign are not an exchange hash"),
            Self::UnknownAlgorithm(a) => write!(f, "no host key for {a:?}"),
            Self::UserMismatch => f.write_str("user is not the one looked up on this connection"),
            Self::Unverified => f.write_str("authentication the monitor did not verify"),
            Self::WrongResponseCount { asked, got } => {
                write!(f, "{got} answers to a PAM round of {asked} prompts")
            }
        }
    }
}

impl std::error::Error for Violation {}

impl From<CodecError> for Violation {
    fn from(e: CodecError) -> Self {
        Self::Malformed(e)
    }
}

/// The monitor's state for one worker: its connections and their phases.
#[derive(Debug)]
pub struct Monitor<B> {
    backend: B,
    limits: Limits,
    connections: BTreeMap<ConnectionId, Connection>,
    highest_opened: Option<ConnectionId>,
    decoder: FrameDecoder,
    fds: Vec<OwnedFd>,
    /// Per authenticated connection: the listening sockets made for it.
    made: BTreeMap<ConnectionId, Made>,
}

impl<B: MonitorBackend> Monitor<B> {
    /// A monitor serving one worker through `backend`.
    pub fn new(backend: B, limits: Limits) -> Self {
        Self {
            backend,
            limits,
            connections: BTreeMap::new(),
            highest_opened: None,
            decoder: FrameDecoder::requests(),
            fds: Vec::new(),
            made: BTreeMap::new(),
        }
    }

    /// The backend, to inspect it.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, to change it.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The phase of `connection`, if it is open.
    pub fn phase(&self, connection: ConnectionId) -> Option<&Phase> {
        self.connections.get(&connection).map(|c| &c.phase)
    }

    /// Feeds bytes read from the worker, returning the encoded replies to write back. After an
    /// error, the worker must be killed and this monitor dropped.
    pub fn received(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Violation> {
        self.decoder.extend(bytes);
        let mut out = Vec::new();
        while let Some(body) = self.decoder.next_frame()? {
            let (id, request) = Request::decode(&body)?;
            out.extend(self.handle(request)?.encode(id));
        }
        Ok(out)
    }

    /// The descriptors to attach to the replies [`received`](Self::received) just returned
    /// (a started session's). Dropped, they are closed.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }

    /// The addresses of the connections open now (to penalise when the worker dies).
    pub fn open_peers(&self) -> Vec<std::net::IpAddr> {
        self.connections.values().filter_map(|c| c.peer).collect()
    }

    /// Whether the worker stopped in the middle of a request.
    pub fn has_partial_request(&self) -> bool {
        self.decoder.has_partial()
    }

    /// Serves one decoded request.
    pub fn handle(&mut self, request: Request) -> Result<Reply, Violation> {
        let name = request.name();
        if let Request::ConnectionOpened { connection } = request {
            if self.highest_opened.is_some_and(|h| connection <= h) {
                return Err(Violation::ReusedConnection(connection));
            }
            if self.connections.len() >= self.limits.max_connections {
                return Err(Violation::TooManyConnections);
            }
            self.highest_opened = Some(connection);
            self.connections.insert(
                connection,
                Connection {
                    phase: Phase::PreAuth,
                    user: None,
                    session_id: None,
                    host_key: None,
                    verified: None,
                    methods: Vec::new(),
                    keys_used: Vec::new(),
                    forced_command: false,
                    signatures: 0,
                    lookups: 0,
                    key_reads: 0,
                    pam: 0,
                    sessions: 0,
                    peer: None,
                    peer_port: 0,
                    failures: 0,
                    admitted: false,
                    pam_asked: None,
                    pam_pending: None,
                    pam_user: None,
                    local: None,
                    proofs: 0,
                    unknown_user: None,
                    failed_key_check: false,
                    attempted: false,
                    invalid_user: false,
                    refused: false,
                },
            );
            return Ok(Reply::Done);
        }
        let id = request.connection();
        if let Request::PamPoll { connection } = request {
            // A worker may poll a connection that closed meanwhile (its pool raced the loop):
            // that grants nothing, and is not a violation.
            let closed = !self.connections.contains_key(&connection)
                && self.highest_opened.is_some_and(|h| connection <= h);
            if closed {
                return Ok(Reply::Failed("the connection has closed".to_owned()));
            }
        }
        let limits = &self.limits;
        let conn = self.connections.get_mut(&id).ok_or(Violation::UnknownConnection(id))?;
        let serves_refused =
            matches!(request, Request::ConnectionClosed { .. } | Request::LookupGroups { .. });
        if conn.refused && !serves_refused {
            // The worker ends it once it has the user's groups (its `Match` blocks may need
            // them): nothing else is served (a worker that goes on gains nothing).
            return Ok(Reply::Failed(REFUSED.to_owned()));
        }
        // Only the request right after a failed key check sees it.
        let after_failed_key_check = std::mem::take(&mut conn.failed_key_check);
        let out_of_state =
            |phase: &Phase| Violation::OutOfState { request: name, phase: phase.clone() };
        match request {
            Request::ConnectionOpened { .. } => Ok(Reply::Done),
            Request::ConnectionClosed { connection } => {
                self.backend.pam_end(connection);
                // Whatever the backend keeps for the connection (sockets made, files written
                // for its sessions, what it worked out for its login) goes now.
                self.made.remove(&connection);
                if let Some(gone) = self.connections.remove(&connection) {
                    if let (Phase::PreAuth, Some(peer), true) =
                        (&gone.phase, gone.peer, gone.admitted)
                    {
                        // sshd's order: the refusal's own status, then an attempt, then an
                        // invalid user.
                        let kind = if gone.refused {
                            super::PenaltyKind::RefuseConnection
                        } else if gone.attempted || gone.failures > 0 {
                            super::PenaltyKind::AuthFail
                        } else if gone.invalid_user {
                            super::PenaltyKind::InvalidUser
                        } else {
                            super::PenaltyKind::NoAuth
                        };
                        self.backend.login_abandoned(connection, peer, kind);
                    }
                }
                self.backend.connection_closed(connection);
                Ok(Reply::Done)
            }
            Request::LookupGroups { user, .. } => {
                if let Some(refusal) = over(&mut conn.lookups, limits.max_lookups, name) {
                    return Ok(refusal);
                }
                if conn.user.is_none() && conn.unknown_user.as_deref() == Some(user.as_str()) {
                    return Ok(Reply::Groups(Vec::new()));
                }
                let record = looked_up(conn, &user)?;
                Ok(Reply::Groups(self.backend.groups(record)))
            }
            Request::ResolveHost { host, port, .. } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                Ok(Reply::Addresses(self.backend.resolve(&host, port)))
            }
            Request::ConnectionPeer { address, .. } => {
                if conn.phase != Phase::PreAuth || conn.peer.is_some() {
                    return Err(out_of_state(&conn.phase));
                }
                conn.peer = Some(address.ip());
                conn.peer_port = address.port();
                match self.backend.admit(address.ip()) {
                    Ok(()) => match self.backend.connection_starting(id, address.ip()) {
                        Ok(()) => {
                            conn.admitted = true;
                            Ok(Reply::Done)
                        }
                        Err(reason) => Ok(Reply::Failed(reason)),
                    },
                    Err(reason) => Ok(Reply::Failed(reason)),
                }
            }
            Request::SignExchangeHash { algorithm, data, .. } => {
                let allowed = match conn.phase {
                    Phase::PreAuth => 1,
                    Phase::Authenticated => limits.max_rekey_signatures,
                };
                if let Some(refusal) = over(&mut conn.signatures, allowed, name) {
                    return Ok(refusal);
                }
                if ![20, 32, 48, 64].contains(&data.len()) {
                    return Err(Violation::NotAnExchangeHash(data.len()));
                }
                let algorithm = SignatureAlgorithm::from_name(&algorithm)
                    .ok_or(Violation::UnknownAlgorithm(algorithm))?;
                match self.backend.sign(algorithm, &data) {
                    Ok(signature) => {
                        if conn.session_id.is_none() {
                            conn.session_id = Some(data);
                            conn.host_key = self.backend.host_public_key(algorithm);
                        }
                        Ok(Reply::Signature(signature))
                    }
                    Err(CryptoError::UnsupportedAlgorithm) => {
                        Err(Violation::UnknownAlgorithm(algorithm.name().to_owned()))
                    }
                    Err(e) => Ok(Reply::Failed(e.to_string())),
                }
            }
            Request::LookupUser { user, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.lookups, limits.max_lookups, name) {
                    return Ok(refusal);
                }
                let found = self.backend.lookup_user(&user);
                if conn.user.as_ref().map(|u| &u.name) != found.as_ref().map(|u| &u.name) {
                    conn.forget_verified();
                }
                conn.invalid_user |= found.is_none();
                let facts = conn.facts(id);
                if self.backend.refuses_connection(&user, found.as_ref(), &facts) {
                    // The worker, reading the same configuration with the account (and its
                    // groups) it is given, ends the connection; no check is served after.
                    log::debug!("connection {id}: RefuseConnection for user {user}");
                    conn.refused = true;
                }
                conn.unknown_user = found.is_none().then(|| user.clone());
                conn.user.clone_from(&found);
                Ok(Reply::User(found))
            }
            Request::ReadAuthorizedKeys { user, key, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.key_reads, limits.max_key_reads, name) {
                    return Ok(refusal);
                }
                if conn.user.is_none() && conn.unknown_user.as_deref() == Some(user.as_str()) {
                    return Ok(Reply::AuthorizedKeys(None));
                }
                // A valid user's keys asked for: sshd's `keyallowed`, an attempt.
                conn.attempted = true;
                let record = looked_up(conn, &user)?;
                let key = match key.as_deref().map(PublicKey::from_blob) {
                    None => None,
                    Some(Ok(key)) => Some(key),
                    Some(Err(_)) => return Ok(Reply::Failed("malformed public key".to_owned())),
                };
                let facts = conn.facts(id);
                let text = self.backend.authorized_keys_for(record, &facts, key.as_ref());
                Ok(Reply::AuthorizedKeys(text))
            }
            Request::PamStart { ref user, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.pam, limits.max_pam, name) {
                    return Ok(refusal);
                }
                conn.attempted = true;
                // For the name the last look-up found no account for, the conversation runs as
                // sshd's does for an invalid user (the client is asked what a user would be, and
                // earns `authfail`), and PAM's acceptance verifies no one (`pam_user` unset).
                let invalid =
                    conn.user.is_none() && conn.unknown_user.as_deref() == Some(user.as_str());
                if !invalid {
                    looked_up(conn, user)?;
                }
                let step = self.backend.pam_start(id, conn.peer, user);
                conn.pam_user = (!invalid).then(|| user.clone());
                Ok(pam_outcome(conn, PamCall::Conversation, step))
            }
            Request::PamRespond { responses, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                let asked = conn.pam_asked.ok_or_else(|| out_of_state(&conn.phase))?;
                if responses.len() != asked {
                    return Err(Violation::WrongResponseCount { asked, got: responses.len() });
                }
                conn.pam_asked = None;
                if let Some(refusal) = over(&mut conn.pam, limits.max_pam, name) {
                    self.backend.pam_end(id);
                    return Ok(refusal);
                }
                let step = self.backend.pam_respond(id, &responses);
                Ok(pam_outcome(conn, PamCall::Conversation, step))
            }
            Request::PamAccount { ref user, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.pam, limits.max_pam, name) {
                    return Ok(refusal);
                }
                let record = looked_up(conn, user)?;
                let step = self.backend.pam_account(id, conn.peer, record);
                conn.pam_user = Some(user.clone());
                Ok(pam_outcome(conn, PamCall::Account, step))
            }
            Request::PamPoll { .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                let call = conn.pam_pending.ok_or_else(|| out_of_state(&conn.phase))?;
                let step = self.backend.pam_poll(id);
                Ok(pam_outcome(conn, call, step))
            }
            Request::AuthenticatePublicKey {
                user,
                algorithm,
                key_blob,
                host_bound,
                signature,
                ..
            } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                // Whatever refuses the check, a login pipelined after it is refused too.
                conn.failed_key_check = true;
                if let Some(refusal) = over(&mut conn.key_reads, limits.max_key_reads, name) {
                    return Ok(refusal);
                }
                // `user` is the name as the client sent it (signed); the account is its part
                // before any `:style`, as OpenSSH's auth2.c splits it.
                let login = login_name(&user).to_owned();
                conn.attempted = true;
                let record = looked_up(conn, &login)?;
                let signed =
                    match signed_data(conn, name, &user, &algorithm, &key_blob, host_bound)? {
                        Ok(signed) => signed,
                        Err(refusal) => return Ok(refusal),
                    };
                let Some(sig_algorithm) = SignatureAlgorithm::from_name(&algorithm) else {
                    return Ok(Reply::Failed("unknown public key algorithm".to_owned()));
                };
                let Ok(key) = PublicKey::from_blob(&key_blob) else {
                    return Ok(Reply::Failed("malformed public key".to_owned()));
                };
                let facts = conn.facts(id);
                if let Some(why) = key_refusal(&mut self.backend, record, &algorithm, &key, &facts)
                {
                    conn.failures += 1;
                    return Ok(Reply::Failed(why));
                }
                if used_before(conn, &login, &key) {
                    conn.failures += 1;
                    return Ok(Reply::Failed("key already used on this connection".to_owned()));
                }
                // The line sshd would use: the first for the key whose `from=` lets the client
                // in and whose `expiry-time` has not passed (its options are the login's;
                // `command=` forces a command).
                let ip = facts.peer_ip();
                let now = unix_seconds(self.backend.now());
                let text = self
                    .backend
                    .authorized_keys_for(record, &facts, Some(&key))
                    .unwrap_or_default();
                let lines = AuthorizedKeys::parse(&String::from_utf8_lossy(&text));
                let mut expired = false;
                let entry = lines
                    .find(&key)
                    .filter(|entry| entry.options.from_allows(&ip, &ip))
                    .find(|entry| {
                        let gone = entry.options.has_expired(now, local_offset(now));
                        expired |= gone;
                        !gone
                    });
                let Some(forced) = entry.map(|entry| entry.options.command.is_some()) else {
                    conn.failures += 1;
                    let why =
                        if expired { "key expired (expiry-time)" } else { "key not authorized" };
                    return Ok(Reply::Failed(why.to_owned()));
                };
                if key.verify(sig_algorithm, &signed, &signature).is_err() {
                    conn.failures += 1;
                    return Ok(Reply::Failed("signature does not verify".to_owned()));
                }
                conn.failed_key_check = false;
                conn.verify(&login, Method::PublicKey, Some((key, forced)));
                Ok(Reply::Done)
            }
            Request::ConnectionLocalAddress { address, .. } => {
                if conn.phase != Phase::PreAuth || conn.local.is_some() {
                    return Err(out_of_state(&conn.phase));
                }
                conn.local = Some(address);
                Ok(Reply::Done)
            }
            Request::AuthenticateCertificate {
                user,
                algorithm,
                certificate,
                host_bound,
                signature,
                ..
            } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.key_reads, limits.max_key_reads, name) {
                    return Ok(refusal);
                }
                let login = login_name(&user).to_owned();
                conn.attempted = true;
                let record = looked_up(conn, &login)?;
                let Some(sig_algorithm) = cert::cert_signature_algorithm(&algorithm) else {
                    return Ok(Reply::Failed("unknown certificate algorithm".to_owned()));
                };
                let Ok(parsed) = Certificate::from_blob(&certificate) else {
                    return Ok(Reply::Failed("malformed certificate".to_owned()));
                };
                if !parsed.key.supports(sig_algorithm) {
                    return Ok(Reply::Failed("algorithm does not match the key".to_owned()));
                }
                let facts = conn.facts(id);
                if signature.is_some() {
                    if let Some(why) =
                        key_refusal(&mut self.backend, record, &algorithm, &parsed.key, &facts)
                    {
                        conn.failures += 1;
                        return Ok(Reply::Failed(why));
                    }
                    if used_before(conn, &login, &parsed.key) {
                        conn.failures += 1;
                        return Ok(Reply::Failed("key already used on this connection".to_owned()));
                    }
                }
                // Never a certificate whose CA signature does not verify, whatever the
                // backend trusts (which algorithms a CA may use is its business).
                if parsed.verify_signature(&SignatureAlgorithm::ALL).is_err() {
                    conn.failures += 1;
                    return Ok(Reply::Failed("certificate signature does not verify".to_owned()));
                }
                if let Some(signature) = &signature {
                    let signed =
                        match signed_data(conn, name, &user, &algorithm, &certificate, host_bound)?
                        {
                            Ok(signed) => signed,
                            Err(refusal) => return Ok(refusal),
                        };
                    if parsed.key.verify(sig_algorithm, &signed, signature).is_err() {
                        conn.failures += 1;
                        return Ok(Reply::Failed("signature does not verify".to_owned()));
                    }
                }
                match self.backend.check_certificate(record, &parsed, &facts) {
                    Ok(restrictions) => {
                        if signature.is_some() {
                            let forced = restrictions.forced_command.is_some();
                            conn.verify(&login, Method::PublicKey, Some((parsed.key, forced)));
                        }
                        Ok(Reply::Authorized(restrictions))
                    }
                    Err(why) => {
                        if signature.is_some() {
                            conn.failures += 1;
                        }
                        Ok(Reply::Failed(why))
                    }
                }
            }
            Request::ProveHostKey { algorithm, key_blob, .. } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.proofs, limits.max_proofs, name) {
                    return Ok(refusal);
                }
                let Some(session_id) = conn.session_id.as_deref() else {
                    return Err(out_of_state(&conn.phase));
                };
                let Some(algorithm) = SignatureAlgorithm::from_name(&algorithm) else {
                    return Ok(Reply::Failed("unknown signature algorithm".to_owned()));
                };
                let Ok(key) = PublicKey::from_blob(&key_blob) else {
                    return Ok(Reply::Failed("malformed host key".to_owned()));
                };
                if !key.supports(algorithm) {
                    return Ok(Reply::Failed("algorithm does not match the key".to_owned()));
                }
                let data = hostkeys_prove_data(session_id, &key_blob);
                match self.backend.sign_with_host_key(&key, algorithm, &data) {
                    Ok(signature) => Ok(Reply::Signature(signature)),
                    Err(CryptoError::UnsupportedAlgorithm) => {
                        Ok(Reply::Failed("not a host key of this server".to_owned()))
                    }
                    Err(e) => Ok(Reply::Failed(e.to_string())),
                }
            }
            Request::ConnectionAuthenticated { user, method, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                let record = looked_up(conn, &user)?.clone();
                if after_failed_key_check {
                    // Sent with the check (the worker pipelines its last method's check and
                    // the login): refused, whatever an earlier method verified.
                    return Ok(Reply::Failed("the public key check failed".to_owned()));
                }
                if conn.verified.as_deref() != Some(user.as_str()) {
                    return Err(Violation::Unverified);
                }
                if let Some(why) = record.refused {
                    // The worker refuses such an account itself; this one did not.
                    return Ok(Reply::Failed(why));
                }
                let facts = conn.facts(id);
                // The method the worker names, and every method the monitor verified: each
                // must be allowed for this user (a root login by password is not a key's).
                let mut methods = vec![method.as_str()];
                for verified in &conn.methods {
                    if !methods.contains(&verified.name()) {
                        methods.push(verified.name());
                    }
                }
                let refused = methods
                    .iter()
                    .find_map(|method| self.backend.login_policy(&record, method, &facts).err())
                    .map_or_else(|| login_refusal(&mut self.backend, conn, &record, &facts), Some);
                if let Some(why) = refused {
                    conn.failures += 1;
                    return Ok(Reply::Failed(why));
                }
                conn.phase = Phase::Authenticated;
                self.backend.connection_authenticated(id);
                conn.pam_asked = None;
                conn.pam_pending = None;
                self.backend.pam_end(id);
                Ok(Reply::Done)
            }
            Request::AuthenticatePassword { user, password, .. } => {
                if conn.phase != Phase::PreAuth {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.pam, limits.max_pam, name) {
                    return Ok(refusal);
                }
                // A password is an attempt whoever it is for (sshd's monitor checks one for an
                // invalid user against a fake account); it never verifies an invalid user.
                conn.attempted = true;
                if conn.user.is_none() && conn.unknown_user.as_deref() == Some(user.as_str()) {
                    conn.failures += 1;
                    return Ok(Reply::Failed("invalid user".to_owned()));
                }
                let record = looked_up(conn, &user)?;
                if let Some(step) = self.backend.pam_password(id, conn.peer, record, &password) {
                    conn.pam_user = Some(user);
                    return Ok(pam_outcome(conn, PamCall::Password, step));
                }
                if self.backend.check_password(record, &password) {
                    conn.verify(&user, Method::Password, None);
                    Ok(Reply::Done)
                } else {
                    conn.failures += 1;
                    Ok(Reply::Failed("password refused".to_owned()))
                }
            }
            Request::SpawnSession { connection, plan } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                if let Some(refusal) = over(&mut conn.sessions, limits.max_sessions, name) {
                    return Ok(refusal);
                }
                let user = conn.user.as_ref().ok_or(Violation::UserMismatch)?;
                match self.backend.spawn_session(connection, user, &plan) {
                    Ok(spawned) => {
                        let max = twine_core::sandbox::MAX_PASSED_FDS;
                        if spawned.fds.len() > max {
                            return Ok(Reply::Failed(format!("more than {max} descriptors")));
                        }
                        let fds = u8::try_from(spawned.fds.len()).unwrap_or(u8::MAX);
                        self.fds.extend(spawned.fds);
                        Ok(Reply::SessionSpawned { pid: spawned.pid, tty: spawned.tty, fds })
                    }
                    Err(e) => Ok(Reply::Failed(e)),
                }
            }
            Request::ListenAgent { connection } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                let made = self.made.entry(connection).or_default();
                if made.agent {
                    return Ok(Reply::Failed("agent forwarding requested twice".to_owned()));
                }
                let user = conn.user.as_ref().ok_or(Violation::UserMismatch)?;
                match self.backend.listen_agent(connection, user) {
                    Ok((path, fd)) => {
                        made.agent = true;
                        self.fds.push(fd);
                        Ok(Reply::Listening { path: Some(path), fds: 1 })
                    }
                    Err(e) => Ok(Reply::Failed(e)),
                }
            }
            Request::ListenStreamlocal { connection, path } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                let user = conn.user.as_ref().ok_or(Violation::UserMismatch)?;
                let made = self.made.entry(connection).or_default();
                if let Some(refusal) = over(&mut made.streamlocal, MAX_PRIVILEGED_LISTENERS, name) {
                    return Ok(refusal);
                }
                match self.backend.listen_streamlocal(connection, user, &path) {
                    Ok(fd) => {
                        self.fds.push(fd);
                        Ok(Reply::Listening { path: None, fds: 1 })
                    }
                    Err(e) => Ok(Reply::Failed(e)),
                }
            }
            Request::ConnectStreamlocal { connection, path } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                let user = conn.user.as_ref().ok_or(Violation::UserMismatch)?;
                match self.backend.connect_streamlocal(connection, user, &path) {
                    Ok(fd) => {
                        self.fds.push(fd);
                        Ok(Reply::Listening { path: None, fds: 1 })
                    }
                    Err(e) => Ok(Reply::Failed(e)),
                }
            }
            Request::ListenPrivileged { connection, address } => {
                if conn.phase != Phase::Authenticated {
                    return Err(out_of_state(&conn.phase));
                }
                let user = conn.user.as_ref().ok_or(Violation::UserMismatch)?;
                if user.uid != 0 {
                    return Ok(Reply::Failed("privileged ports are for root only".to_owned()));
                }
                if !(1..1024).contains(&address.port()) {
                    return Ok(Reply::Failed(format!("port {} is not privileged", address.port())));
                }
                let made = self.made.entry(connection).or_default();
                if let Some(refusal) = over(&mut made.privileged, MAX_PRIVILEGED_LISTENERS, name) {
                    return Ok(refusal);
                }
                match self.backend.listen_privileged(connection, address) {
                    Ok(fd) => {
                        self.fds.push(fd);
                        Ok(Reply::Listening { path: None, fds: 1 })
                    }
                    Err(e) => Ok(Reply::Failed(e)),
                }
            }
        }
    }
}

/// Counts one more request of a kind; past `limit`, the refusal to answer instead. A client
/// can drive a well-behaved worker past these caps (keys offered, rekeys, sessions), so they
/// refuse the request for that connection rather than kill a worker that serves many.
fn over(count: &mut u32, limit: u32, name: &'static str) -> Option<Reply> {
    if *count >= limit {
        return Some(Reply::Failed(format!("too many {name} requests on this connection")));
    }
    *count += 1;
    None
}

/// The reply to a PAM call's step, and the connection's state after it: a pending call waits
/// for `PamPoll`; for a conversation, a round waits for its answers (cut to the codec's
/// limits); an authentication PAM accepts verifies `user`.
fn pam_outcome(conn: &mut Connection, call: PamCall, step: PamStep) -> Reply {
    conn.pam_asked = None;
    conn.pam_pending = None;
    match (call, step) {
        (_, PamStep::Pending) => {
            conn.pam_pending = Some(call);
            Reply::PamPending
        }
        (PamCall::Conversation, step) => pam_reply(conn, Method::KeyboardInteractive, step),
        (PamCall::Password, PamStep::Ask(_)) => {
            conn.failures += 1;
            Reply::Failed("PAM asked more than the password".to_owned())
        }
        (PamCall::Password, step) => pam_reply(conn, Method::Password, step),
        (PamCall::Account, PamStep::Accepted) => Reply::Done,
        (PamCall::Account, PamStep::Refused(reason)) => Reply::Failed(reason),
        (PamCall::Account, PamStep::Ask(_) | PamStep::Unsupported) => {
            Reply::Unsupported("this monitor does not run PAM".to_owned())
        }
    }
}

/// The reply to a conversation's (or a password's) outcome or round; an acceptance verifies
/// `method` for the user PAM was asked about.
fn pam_reply(conn: &mut Connection, method: Method, step: PamStep) -> Reply {
    match step {
        PamStep::Ask(mut info) => {
            info.prompts.truncate(super::codec::MAX_PAM_RESPONSES);
            cut(&mut info.name, super::codec::MAX_PAM_PROMPT_LEN);
            cut(&mut info.instruction, super::codec::MAX_PAM_TEXT_LEN);
            for prompt in &mut info.prompts {
                cut(&mut prompt.text, super::codec::MAX_PAM_PROMPT_LEN);
            }
            conn.pam_asked = Some(info.prompts.len());
            Reply::PamPrompts(info)
        }
        PamStep::Accepted => match conn.pam_user.clone() {
            Some(user) => {
                conn.verify(&user, method, None);
                Reply::Done
            }
            None => {
                // An invalid user's conversation (or none named): nobody is verified.
                conn.forget_verified();
                conn.failures += 1;
                Reply::Failed("invalid user".to_owned())
            }
        },
        PamStep::Refused(reason) => {
            conn.failures += 1;
            Reply::Failed(reason)
        }
        PamStep::Unsupported => Reply::Unsupported("this monitor does not run PAM".to_owned()),
        PamStep::Pending => Reply::PamPending,
    }
}

/// Why the login's rules refuse `key` (a certificate's certified key) offered with
/// `algorithm` for `record` over `facts`, if they do: an algorithm not in
/// `PubkeyAcceptedAlgorithms`, an RSA key smaller than `RequiredRSASize` (the key itself,
/// not a certificate's CA, as OpenSSH's `sshkey_check_rsa_length`).
fn key_refusal<B: MonitorBackend>(
    backend: &mut B,
    record: &UserRecord,
    algorithm: &str,
    key: &PublicKey,
    facts: &ConnectionFacts,
) -> Option<String> {
    let rules = match backend.login_rules(record, facts) {
        Ok(rules) => rules,
        Err(why) => return Some(why),
    };
    if let Some(accepted) = &rules.public_key_algorithms {
        if !accepted.iter().any(|a| a == algorithm) {
            return Some(format!(
                "{algorithm} not in PubkeyAcceptedAlgorithms for {}",
                record.name
            ));
        }
    }
    let bits = u32::try_from(key.bits()).unwrap_or(u32::MAX);
    // Below OpenSSH's floor, whatever the configuration says.
    match rules.min_rsa_bits.map(|min| min.max(MIN_RSA_BITS)) {
        Some(min) if key.key_type() == KeyType::Rsa && bits < min => Some(format!(
            "refusing RSA key for {}: Invalid key length ({bits} < RequiredRSASize {min})",
            record.name
        )),
        _ => None,
    }
}

/// The smallest RSA key OpenSSH accepts at all (`SSH_RSA_MINIMUM_MODULUS_SIZE`).
const MIN_RSA_BITS: u32 = 1024;

/// `now` in seconds since the epoch (0 before it).
fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

/// Whether `key` already verified a step for `user` on `conn` (a key serves once per login).
fn used_before(conn: &Connection, user: &str, key: &PublicKey) -> bool {
    conn.verified.as_deref() == Some(user) && conn.keys_used.contains(key)
}

/// Why the login rules refuse `record`'s login with what `conn` verified, if they do:
/// `AuthenticationMethods` not completed, or a root login under `forced-commands-only` by
/// no key that forced a command.
fn login_refusal<B: MonitorBackend>(
    backend: &mut B,
    conn: &Connection,
    record: &UserRecord,
    facts: &ConnectionFacts,
) -> Option<String> {
    let rules = match backend.login_rules(record, facts) {
        Ok(rules) => rules,
        Err(why) => return Some(why),
    };
    if !rules.methods_completed_by(&conn.methods) {
        let done: Vec<&str> = conn.methods.iter().map(|m| m.name()).collect();
        return Some(format!(
            "AuthenticationMethods for {} not completed (verified: {})",
            record.name,
            done.join(",")
        ));
    }
    if rules.forced_command_only && record.uid == 0 && !conn.forced_command {
        return Some(format!(
            "ROOT LOGIN REFUSED for {}: no verified key forces a command",
            record.name
        ));
    }
    None
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(end);
    }
}

/// What a client's `publickey` signature for `user` (as sent) with `algorithm` and `blob` (a
/// key or certificate) covers on `conn`: rebuilt from the session id this monitor signed,
/// and for `host_bound` its host key. No session id yet is a violation of `request`'s state;
/// no host key to bind to is a refusal.
fn signed_data(
    conn: &Connection,
    request: &'static str,
    user: &str,
    algorithm: &str,
    blob: &[u8],
    host_bound: bool,
) -> Result<Result<Vec<u8>, Reply>, Violation> {
    let session_id = conn
        .session_id
        .as_deref()
        .ok_or(Violation::OutOfState { request, phase: Phase::PreAuth })?;
    let host_key = match (host_bound, &conn.host_key) {
        (false, _) => None,
        (true, Some(key)) => Some(key.to_blob()),
        (true, None) => return Ok(Err(Reply::Failed("no host key to bind to".to_owned()))),
    };
    Ok(Ok(crate::userauth::signed_data(
        session_id,
        user,
        "ssh-connection",
        algorithm,
        blob,
        host_key.as_deref(),
    )))
}

/// The account part of a user name as the client sent it: before any `:style` suffix.
fn login_name(user: &str) -> &str {
    user.split_once(':').map_or(user, |(login, _)| login)
}

fn looked_up<'a>(conn: &'a Connection, user: &str) -> Result<&'a UserRecord, Violation> {
    conn.user.as_ref().filter(|u| u.name == user).ok_or(Violation::UserMismatch)
}

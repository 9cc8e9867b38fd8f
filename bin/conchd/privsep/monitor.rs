//! The monitor: root, never reading the network. It binds the listeners, starts one worker
//! per core and restarts those that die, serves each worker's requests on a thread, and
//! starts sessions' processes on its reactor.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twine::conch::config::sshd::{PermitRootLogin, SshdConfig, SshdConfigFile};
use twine::conch::crypto::CryptoError;
use twine::conch::keys::{Certificate, HostKeySigner, PublicKey, SignatureAlgorithm};
use twine::conch::server::privsep::{
    agent_socket, serve_unix, Limits, LoginRules, Monitor, MonitorBackend, PenaltyKind, ServeEnd,
    SessionPlan, SpawnedSession, SystemBackend, UserRecord,
};
use twine::conch::server::session::{LocalSpawner, SessionSpawner};
use twine::conch::server::{
    Account, AuthorizedKeys, ConnectionFacts, ConnectionId, Restrictions, ShadowPasswords,
};
use twine::conch::userauth::Decision;
use twine::internet::error::Reason;
use twine::internet::process::{ChildFds, Process, ProcessOptions, ProcessProtocol, ProcessStatus};
use twine::internet::protocol::{HalfClose, Protocol, Transport};
use twine::internet::reactor::{Signal, ThreadHandle};
use twine::internet::Reactor;

use super::control::{plan_from_wire, Frame, Frames};
use crate::around::AroundSpawner;
use crate::startups::Startups;
use crate::Fatal;
#[cfg(feature = "pam")]
use twine::conch::server::privsep::PamStep;

/// How long a dead worker's slot waits before a new worker starts, the first time.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// The longest wait before a restart, however often a worker keeps dying.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// A worker that ran this long was healthy: the next restart waits [`RESTART_DELAY`] again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How long to wait before restarting a worker slot whose worker ended after running for
/// `ran`, when the wait before its last start was `previous` (`None`: it never had to
/// restart). One second, doubling while workers keep dying early, at most a minute; back to
/// one second after a worker that ran for [`HEALTHY_RUN`].
pub(crate) fn restart_delay(previous: Option<Duration>, ran: Duration) -> Duration {
    match previous {
        Some(previous) if ran < HEALTHY_RUN => {
            previous.saturating_mul(2).clamp(RESTART_DELAY, MAX_RESTART_DELAY)
        }
        _ => RESTART_DELAY,
    }
}

/// What the monitor's backend needs from the configuration.
#[derive(Clone)]
struct Settings {
    /// The whole file, for the `Match` blocks that apply to a login.
    file: Arc<SshdConfigFile>,
    /// `RefuseConnection yes` appears in it (globally or in a `Match` block).
    refuses_connections: bool,
    authorized_keys_files: Vec<String>,
    strict_modes: bool,
    permit_empty_passwords: bool,
    print_motd: bool,
    print_last_log: bool,
    /// `AllowAgentForwarding` (and not `DisableForwarding`), server-wide.
    agent_forwarding: bool,
    /// `AllowTcpForwarding` allows remote forwards, server-wide.
    remote_forwarding: bool,
    /// `AllowStreamLocalForwarding` allows remote socket forwards, server-wide.
    remote_streamlocal: bool,
    /// `StreamLocalBindUnlink`.
    streamlocal_bind_unlink: bool,
    /// `StreamLocalBindMask`.
    streamlocal_bind_mask: u32,
    /// `UsePAM yes`: the PAM service, for sessions (opened by the keeper, as root).
    #[cfg(feature = "pam")]
    pam_service: Option<String>,
    /// `UsePAM yes`: authentication and account checks through PAM.
    #[cfg(feature = "pam")]
    pam: Option<twine::conch::server::PamDriver>,
}

impl Settings {
    /// The account of `user` and the configuration for its login over `facts` (the `Match`
    /// blocks that apply), as the worker's policy evaluates them.
    fn for_login(
        &self,
        user: &UserRecord,
        facts: &ConnectionFacts,
    ) -> Option<(Account, SshdConfig)> {
        let account = Account::lookup(&user.name).ok().flatten().filter(|a| a.uid == user.uid)?;
        match crate::policy::config_for(&self.file, &user.name, Some(&account), facts) {
            Ok(config) => Some((account, config)),
            Err(err) => {
                log::info!("settings for {}: {err}", user.name);
                None
            }
        }
    }
}

/// The monitor's backend for one worker: the system's, with `authorized_keys` read as sshd
/// does, passwords from `/etc/shadow` (or PAM, `UsePAM yes`), keyboard-interactive
/// conversations with PAM, and sessions started on the main reactor.
struct ConchdBackend {
    system: SystemBackend,
    settings: Settings,
    main: ThreadHandle,
    /// Every worker's connections not yet logged in (`MaxStartups`, `PerSourceMaxStartups`),
    /// and the sources' penalties.
    startups: Arc<Startups>,
    /// This worker's pid: its connections' ids are its own.
    worker: u32,
    /// The forwarded agents' sockets made for this worker's open connections.
    agent_sockets: std::collections::HashMap<ConnectionId, std::path::PathBuf>,
    /// The remote socket forwards' files made for this worker's open connections.
    forward_sockets: std::collections::HashMap<ConnectionId, Vec<std::path::PathBuf>>,
    /// The `ExposeAuthInfo` files written for this worker's open connections' sessions.
    auth_files: std::collections::HashMap<ConnectionId, Vec<std::path::PathBuf>>,
    /// Per open connection: the account and the configuration for its login (the `Match`
    /// blocks that apply), worked out once for the requests that need them.
    logins: std::collections::HashMap<ConnectionId, LoginSettings>,
    /// Each connection's PAM call in progress, or its conversation waiting for the client's
    /// answers (a transaction on a thread of its own); dropped with the connection, or with
    /// this worker's backend.
    #[cfg(feature = "pam")]
    pam: std::collections::HashMap<ConnectionId, PamHeld>,
}

impl Drop for ConchdBackend {
    /// The worker is gone: so are its connections' agent sockets, socket forwards and auth
    /// info files.
    fn drop(&mut self) {
        self.startups.worker_gone(self.worker);
        for (_, path) in self.agent_sockets.drain() {
            agent_socket::remove(&path);
        }
        for path in self.forward_sockets.drain().flat_map(|(_, paths)| paths) {
            let _ = std::fs::remove_file(path);
        }
        for path in self.auth_files.drain().flat_map(|(_, paths)| paths) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The settings for one connection's login, and what they were worked out for.
struct LoginSettings {
    user: String,
    uid: u32,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    account: Account,
    config: SshdConfig,
}

impl ConchdBackend {
    /// [`Settings::for_login`], once per connection for the same user and addresses (the
    /// connection's requests ask for it more than once: `authorized_keys`, the login checks).
    fn for_login(
        &mut self,
        user: &UserRecord,
        facts: &ConnectionFacts,
    ) -> Option<(Account, SshdConfig)> {
        if let Some(known) = self.logins.get(&facts.id) {
            if known.user == user.name
                && known.uid == user.uid
                && known.peer == facts.peer
                && known.local == facts.local
            {
                return Some((known.account.clone(), known.config.clone()));
            }
        }
        let (account, config) = self.settings.for_login(user, facts)?;
        let known = LoginSettings {
            user: user.name.clone(),
            uid: user.uid,
            peer: facts.peer,
            local: facts.local,
            account: account.clone(),
            config: config.clone(),
        };
        self.logins.insert(facts.id, known);
        Some((account, config))
    }
}

/// What the monitor holds of a connection's PAM transaction.
#[cfg(feature = "pam")]
enum PamHeld {
    /// PAM is working: polled on the worker's `PamPoll`.
    Pending(twine::conch::server::PamPending),
    /// A round was relayed: the conversation waits for the client's answers.
    Conversation(twine::conch::server::PamConversation),
}

#[cfg(feature = "pam")]
impl ConchdBackend {
    /// PAM's answer if it has come (keeping a conversation for the next answers), else
    /// `Pending`, keeping the call for the worker's poll. Never waits: one connection's PAM
    /// holds up none of the worker's other requests.
    fn pam_wait(
        &mut self,
        connection: ConnectionId,
        pending: twine::conch::server::PamPending,
    ) -> PamStep {
        match pending.poll() {
            Ok((conversation, step)) => {
                if let Some(conversation) = conversation {
                    self.pam.insert(connection, PamHeld::Conversation(conversation));
                }
                if let PamStep::Refused(why) = &step {
                    log::debug!("connection {connection}: PAM refused: {why}");
                }
                step
            }
            Err(pending) => {
                self.pam.insert(connection, PamHeld::Pending(pending));
                PamStep::Pending
            }
        }
    }
}

type Slot = Rc<RefCell<Option<Rc<dyn Transport>>>>;

/// Hears a session's process in the monitor: its end goes to the worker.
struct Reporter {
    slot: Slot,
}

impl ProcessProtocol for Reporter {
    fn out_received(&mut self, _data: &[u8]) {}

    fn process_exited(&mut self, status: ProcessStatus) {
        if let Some(transport) = self.slot.borrow_mut().take() {
            transport.write(&Frame::Ended(status).encode());
            transport.lose_connection();
        }
    }
}

/// The monitor's end of a session's control socket: signals asked for by the worker.
struct Signals {
    process: Process,
    frames: Frames,
}

impl Protocol for Signals {
    fn data_received(&mut self, data: &[u8]) {
        let Some(frames) = self.frames.feed(data) else {
            log::warn!("malformed session control frame from a worker");
            return;
        };
        for frame in frames {
            if let Frame::Kill { signal, group } = frame {
                let result = if group {
                    self.process.signal_group_number(signal)
                } else {
                    Signal::from_raw(signal).map_or(Ok(()), |s| self.process.signal(s))
                };
                if let Err(err) = result {
                    log::debug!("signal session {}: {err}", self.process.pid());
                }
            }
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, _reason: Reason) {}
}

/// What a session spawner is made from: `PrintMotd`, `PrintLastLog`, and the PAM service
/// sessions open (`UsePAM yes`).
type SpawnerKey = (bool, bool, Option<String>);

thread_local! {
    /// The main reactor's session spawner, kept from one session to the next (what it looks
    /// up, such as the `tty` group and a burst of sessions' groups, stays looked up), with
    /// what it was made from.
    static SPAWNER: RefCell<Option<(SpawnerKey, Rc<AroundSpawner>)>> = const { RefCell::new(None) };
}

/// The spawner for `settings` on the main reactor: the one kept, else a new one, kept.
fn session_spawner(reactor: &Reactor, settings: &Settings) -> Rc<AroundSpawner> {
    #[cfg(feature = "pam")]
    let pam_service = settings.pam_service.clone();
    #[cfg(not(feature = "pam"))]
    let pam_service = None;
    let key: SpawnerKey = (settings.print_motd, settings.print_last_log, pam_service);
    SPAWNER.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some((made_for, spawner)) = kept.as_ref() {
            if *made_for == key {
                return Rc::clone(spawner);
            }
        }
        let spawner = AroundSpawner::new(LocalSpawner::new(reactor), key.0, key.1);
        // `UsePAM yes`: the PAM session is opened (and closed) by the session's keeper, as
        // root, as conchd does without privilege separation.
        #[cfg(feature = "pam")]
        let spawner = match &key.2 {
            Some(service) => spawner.with_pam_sessions(service.clone()),
            None => spawner,
        };
        let spawner = Rc::new(spawner);
        *kept = Some((key, Rc::clone(&spawner)));
        spawner
    })
}

/// On the main reactor: starts `plan` for `account`, hands back its descriptors.
fn start_session(
    reactor: &Reactor,
    settings: &Settings,
    plan: &SessionPlan,
    account: Account,
) -> Result<SpawnedSession, String> {
    let plan = plan_from_wire(plan, account);
    let pty = plan.pty.is_some();
    let spawner = session_spawner(reactor, settings);
    let slot: Slot = Rc::default();
    let process = spawner
        .spawn(plan, Box::new(Reporter { slot: Rc::clone(&slot) }))
        .map_err(|e| e.to_string())?;
    let child = process.duplicate_fds();
    // The worker serves the descriptors; ours close (the child's end is its only reader).
    process.abort_connection();
    let child = child.map_err(|e| e.to_string())?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let signals = Signals { process: process.clone(), frames: Frames::default() };
    let transport = reactor.adopt_fd(OwnedFd::from(ours), signals).map_err(|e| e.to_string())?;
    *slot.borrow_mut() = Some(transport);
    let mut fds = vec![OwnedFd::from(theirs)];
    let tty = match child {
        ChildFds::Pty { controller, tty } => {
            fds.push(controller);
            tty.map(|t| t.display().to_string())
        }
        ChildFds::Pipes { stdin, stdout, stderr } => {
            fds.extend([stdin, stdout, stderr]);
            None
        }
    };
    debug_assert_eq!(pty, tty.is_some() || fds.len() == 2);
    Ok(SpawnedSession { pid: process.pid(), tty, fds })
}

impl MonitorBackend for ConchdBackend {
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.system.sign(algorithm, data)
    }

    fn host_public_key(&self, algorithm: SignatureAlgorithm) -> Option<PublicKey> {
        self.system.host_public_key(algorithm)
    }

    fn lookup_user(&mut self, name: &str) -> Option<UserRecord> {
        let mut record = self.system.lookup_user(name)?;
        // Without PAM, the shadow file's account checks (locked, expired) apply to every
        // method, as sshd's allowed_user: the worker cannot read it, so it is told.
        #[cfg(feature = "pam")]
        let pam = self.settings.pam.is_some();
        #[cfg(not(feature = "pam"))]
        let pam = false;
        if !pam {
            record.refused = ShadowPasswords::new().account_refusal(name);
        }
        Some(record)
    }

    fn sign_with_host_key(
        &mut self,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.system.sign_with_host_key(key, algorithm, data)
    }

    fn authorized_keys_for(
        &mut self,
        user: &UserRecord,
        facts: &ConnectionFacts,
        key: Option<&PublicKey>,
    ) -> Option<Vec<u8>> {
        let (account, config) = self.for_login(user, facts)?;
        let keys = crate::policy::authorized_keys(&config).with_connection(facts.peer, facts.local);
        keys.read_all_for(&account, key.map(|key| (key, None))).map(String::into_bytes)
    }

    fn check_certificate(
        &mut self,
        user: &UserRecord,
        certificate: &Certificate,
        facts: &ConnectionFacts,
    ) -> Result<Restrictions, String> {
        let (_, config) = self
            .for_login(user, facts)
            .ok_or_else(|| format!("no configuration for {}", user.name))?;
        // The policy's own check, as without privilege separation: trusted CA or
        // cert-authority line, principals (file or command, run here), validity, critical
        // options, source-address, RevokedKeys, CASignatureAlgorithms.
        let keys = crate::policy::authorized_keys(&config).with_connection(facts.peer, facts.local);
        let now = self.now();
        match keys.check_attempt(
            &user.name,
            &certificate.key,
            Some(certificate),
            &facts.peer_ip(),
            now,
        ) {
            Decision::Accept(restrictions) => Ok(restrictions),
            _ => Err("certificate refused".to_owned()),
        }
    }

    fn read_authorized_keys(&mut self, user: &UserRecord) -> Option<Vec<u8>> {
        let account = Account::lookup(&user.name).ok().flatten()?;
        let keys = AuthorizedKeys::new()
            .with_files(self.settings.authorized_keys_files.clone())
            .with_strict_modes(self.settings.strict_modes);
        keys.read_all(&account).map(String::into_bytes)
    }

    fn penalise(&mut self, address: IpAddr, kind: PenaltyKind) {
        self.startups.penalise(address, kind, Instant::now());
    }

    fn login_abandoned(&mut self, connection: ConnectionId, address: IpAddr, kind: PenaltyKind) {
        self.startups.abandoned(self.worker, connection, address, kind, Instant::now());
    }

    fn groups(&mut self, user: &UserRecord) -> Vec<String> {
        crate::policy::groups_from_system(&user.name, user.gid)
    }

    fn resolve(&mut self, host: &str, port: u16) -> Vec<SocketAddr> {
        (host, port).to_socket_addrs().map(Iterator::collect).unwrap_or_default()
    }

    fn login_policy(
        &mut self,
        user: &UserRecord,
        method: &str,
        facts: &ConnectionFacts,
    ) -> Result<(), String> {
        let (account, config) = self
            .for_login(user, facts)
            .ok_or_else(|| format!("no configuration for {}", user.name))?;
        let ip = facts.peer.map_or_else(|| "UNKNOWN".to_owned(), |a| a.ip().to_string());
        crate::policy::login_allowed(&config, &account, method, &ip)
    }

    /// `RefuseConnection` for the user named (with its account, or as an invalid user) on
    /// the connection, read from the `Match` blocks as the worker reads them.
    fn refuses_connection(
        &mut self,
        user: &str,
        record: Option<&UserRecord>,
        facts: &ConnectionFacts,
    ) -> bool {
        if !self.settings.refuses_connections {
            return false;
        }
        let config = match record {
            Some(record) => self.for_login(record, facts).map(|(_, config)| config),
            None => crate::policy::config_for(&self.settings.file, user, None, facts).ok(),
        };
        // A configuration that cannot be read for the user refuses every check anyway.
        config.is_some_and(|config| config.refuse_connection)
    }

    /// The `Match` blocks' settings for the user and the connection, as the worker's policy
    /// reads them: `AuthenticationMethods`, `PubkeyAcceptedAlgorithms`, and whether a root
    /// login needs a forced command (`PermitRootLogin forced-commands-only`).
    fn login_rules(
        &mut self,
        user: &UserRecord,
        facts: &ConnectionFacts,
    ) -> Result<LoginRules, String> {
        let (account, config) = self
            .for_login(user, facts)
            .ok_or_else(|| format!("no configuration for {}", user.name))?;
        let mut rules = LoginRules::default();
        rules.methods = crate::policy::authentication_methods(&config)?;
        rules.public_key_algorithms =
            Some(config.pubkey_accepted_algorithms.iter().map(|a| (*a).to_owned()).collect());
        rules.forced_command_only =
            account.uid == 0 && config.permit_root_login == PermitRootLogin::ForcedCommandsOnly;
        rules.min_rsa_bits = Some(config.required_rsa_size);
        Ok(rules)
    }

    fn check_password(&mut self, user: &UserRecord, password: &[u8]) -> bool {
        ShadowPasswords::new()
            .with_empty_passwords(self.settings.permit_empty_passwords)
            .verify(&user.name, password)
    }

    fn listen_agent(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
    ) -> Result<(String, OwnedFd), String> {
        if !self.settings.agent_forwarding {
            return Err("agent forwarding is off (AllowAgentForwarding)".to_owned());
        }
        let account = Account::lookup(&user.name)
            .map_err(|e| e.to_string())?
            .filter(|a| a.uid == user.uid)
            .ok_or_else(|| format!("account {} changed", user.name))?;
        let (path, listener) = agent_socket::listen_for(&std::env::temp_dir(), &account)?;
        let text = path.to_string_lossy().into_owned();
        log::debug!("{}: agent socket {text}", user.name);
        if let Some(old) = self.agent_sockets.insert(connection, path) {
            agent_socket::remove(&old);
        }
        Ok((text, OwnedFd::from(listener)))
    }

    fn listen_privileged(
        &mut self,
        _connection: ConnectionId,
        address: SocketAddr,
    ) -> Result<OwnedFd, String> {
        if !self.settings.remote_forwarding {
            return Err("remote forwarding is off (AllowTcpForwarding)".to_owned());
        }
        let listener = bind(address).map_err(|e| format!("bind {address}: {e}"))?;
        log::debug!("privileged remote forward listening on {address}");
        Ok(OwnedFd::from(listener))
    }

    fn listen_streamlocal(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        path: &[u8],
    ) -> Result<OwnedFd, String> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        if !self.settings.remote_streamlocal {
            return Err("socket forwarding is off (AllowStreamLocalForwarding)".to_owned());
        }
        let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path));
        if !path.is_absolute() {
            return Err(format!("{}: not an absolute path", path.display()));
        }
        // As sshd's unprivileged child: unlinked and made by the user, with the user's
        // permissions, then given StreamLocalBindMask's mode.
        let (unlink, mask) =
            (self.settings.streamlocal_bind_unlink, self.settings.streamlocal_bind_mask);
        let listener = as_user(user, || {
            if unlink {
                let _ = std::fs::remove_file(&path);
            }
            let listener = std::os::unix::net::UnixListener::bind(&path)?;
            let mode = std::fs::Permissions::from_mode(0o666 & !mask);
            if let Err(err) = std::fs::set_permissions(&path, mode) {
                let _ = std::fs::remove_file(&path);
                return Err(err);
            }
            Ok(listener)
        })
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
        self.forward_sockets.entry(connection).or_default().push(path);
        Ok(OwnedFd::from(listener))
    }

    fn connect_streamlocal(
        &mut self,
        _connection: ConnectionId,
        user: &UserRecord,
        path: &[u8],
    ) -> Result<OwnedFd, String> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        // With the user's permissions, as sshd's unprivileged child connects.
        let stream = as_user(user, || UnixStream::connect(path))
            .map_err(|e| format!("connect to unix:{}: {e}", path.display()))?;
        Ok(OwnedFd::from(stream))
    }

    fn connection_starting(
        &mut self,
        connection: ConnectionId,
        address: IpAddr,
    ) -> Result<(), String> {
        let percentile = crate::startups::percentile();
        self.startups
            .open(self.worker, connection, address, percentile, Instant::now())
            .map_err(|dropped| dropped.to_wire())
    }

    fn connection_authenticated(&mut self, connection: ConnectionId) {
        self.startups.done(self.worker, connection);
    }

    fn connection_closed(&mut self, connection: ConnectionId) {
        self.startups.done(self.worker, connection);
        self.logins.remove(&connection);
        if let Some(path) = self.agent_sockets.remove(&connection) {
            agent_socket::remove(&path);
        }
        for path in self.forward_sockets.remove(&connection).unwrap_or_default() {
            let _ = std::fs::remove_file(path);
        }
        for path in self.auth_files.remove(&connection).unwrap_or_default() {
            let _ = std::fs::remove_file(path);
        }
    }

    #[cfg(feature = "pam")]
    fn pam_start(&mut self, connection: ConnectionId, peer: Option<IpAddr>, user: &str) -> PamStep {
        self.pam.remove(&connection);
        let Some(pam) = &self.settings.pam else { return PamStep::Unsupported };
        let pending = pam.converse(user, peer);
        self.pam_wait(connection, pending)
    }

    #[cfg(feature = "pam")]
    fn pam_respond(&mut self, connection: ConnectionId, responses: &[String]) -> PamStep {
        let Some(PamHeld::Conversation(conversation)) = self.pam.remove(&connection) else {
            return PamStep::Refused("no PAM conversation".to_owned());
        };
        let pending = conversation.respond(responses);
        self.pam_wait(connection, pending)
    }

    #[cfg(feature = "pam")]
    fn pam_password(
        &mut self,
        connection: ConnectionId,
        peer: Option<IpAddr>,
        user: &UserRecord,
        password: &[u8],
    ) -> Option<PamStep> {
        self.pam.remove(&connection);
        let pending = self.settings.pam.as_ref()?.password(&user.name, peer, password);
        Some(self.pam_wait(connection, pending))
    }

    #[cfg(feature = "pam")]
    fn pam_account(
        &mut self,
        connection: ConnectionId,
        peer: Option<IpAddr>,
        user: &UserRecord,
    ) -> PamStep {
        self.pam.remove(&connection);
        let Some(pam) = &self.settings.pam else { return PamStep::Unsupported };
        let pending = pam.check_account(&user.name, peer);
        self.pam_wait(connection, pending)
    }

    #[cfg(feature = "pam")]
    fn pam_poll(&mut self, connection: ConnectionId) -> PamStep {
        match self.pam.remove(&connection) {
            Some(PamHeld::Pending(pending)) => self.pam_wait(connection, pending),
            Some(held) => {
                self.pam.insert(connection, held);
                PamStep::Refused("no PAM call pending".to_owned())
            }
            None => PamStep::Refused("no PAM call pending".to_owned()),
        }
    }

    #[cfg(feature = "pam")]
    fn pam_end(&mut self, connection: ConnectionId) {
        self.pam.remove(&connection);
    }

    fn spawn_session(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        plan: &SessionPlan,
    ) -> Result<SpawnedSession, String> {
        let account = Account::lookup(&user.name)
            .map_err(|e| e.to_string())?
            .filter(|a| a.uid == user.uid)
            .ok_or_else(|| format!("account {} changed", user.name))?;
        let mut plan = plan.clone();
        let marker = super::AUTH_INFO_VAR.as_bytes();
        if let Some(at) = plan.env.iter().position(|(name, _)| name == marker) {
            // ExposeAuthInfo: the file the worker could not write, written here as the user's.
            let (_, text) = plan.env.remove(at);
            let lines: Vec<String> =
                String::from_utf8_lossy(&text).lines().map(str::to_owned).collect();
            match crate::policy::write_auth_info(&user.name, &lines) {
                Ok(path) => {
                    use std::os::unix::ffi::OsStrExt;
                    let value = path.as_os_str().as_bytes().to_vec();
                    plan.env.push((b"SSH_USER_AUTH".to_vec(), value));
                    self.auth_files.entry(connection).or_default().push(path);
                }
                Err(err) => log::warn!("ExposeAuthInfo: {err}"),
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let settings = self.settings.clone();
        self.main
            .call_from_thread(move |reactor| {
                let _ = tx.send(start_session(reactor, &settings, &plan, account));
            })
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|_| "the monitor's reactor stopped".to_owned())?
    }
}

/// Runs `f` with this thread's filesystem identity set to `user`'s (the monitor's other
/// threads stay root): see [`as_filesystem_user`](twine::conch::server::as_filesystem_user).
fn as_user<T>(user: &UserRecord, f: impl FnOnce() -> T) -> T {
    twine::conch::server::as_filesystem_user(user.uid, user.gid, f)
}

/// One worker slot: its current process.
struct Slot2 {
    pid: Cell<Option<u32>>,
    /// When its current worker started.
    since: Cell<Option<Instant>>,
    /// The wait before the current worker's start, when it was a restart.
    delay: Cell<Option<Duration>>,
}

impl Slot2 {
    fn new() -> Self {
        Self { pid: Cell::new(None), since: Cell::new(None), delay: Cell::new(None) }
    }
}

/// Everything the main reactor keeps.
struct State {
    args: Vec<String>,
    listeners: RefCell<Vec<TcpListener>>,
    /// Whether the workers log to syslog (the monitor is a daemon).
    daemon: bool,
    /// After SIGHUP, until the new server is started.
    restart_pending: Cell<bool>,
    host_keys: Vec<Arc<dyn HostKeySigner>>,
    public_keys: String,
    settings: Settings,
    slots: Vec<Slot2>,
    stopping: Cell<bool>,
    single: bool,
    /// Every worker's connections not yet logged in, and the sources' penalties.
    startups: Arc<Startups>,
    /// Inetd mode (`-i`): the connection's standard input and output, handed to the one
    /// worker instead of listeners.
    inetd: Option<(OwnedFd, OwnedFd)>,
    /// Inetd mode: whether the worker ended in failure (sshd's 255: no login).
    failed: Cell<bool>,
}

/// Hears a worker: relays its output, and restarts it when it dies.
struct WorkerWatch {
    state: Rc<State>,
    reactor: Reactor,
    index: usize,
}

impl ProcessProtocol for WorkerWatch {
    fn out_received(&mut self, data: &[u8]) {
        let _ = std::io::stdout().write_all(data);
    }

    fn err_received(&mut self, data: &[u8]) {
        let _ = std::io::stderr().write_all(data);
    }

    fn process_ended(&mut self, status: ProcessStatus) {
        let state = Rc::clone(&self.state);
        if let Some(slot) = state.slots.get(self.index) {
            slot.pid.set(None);
        }
        if state.stopping.get() {
            if !state.restart_pending.get()
                && state.slots.iter().all(|slot| slot.pid.get().is_none())
            {
                self.reactor.stop();
            }
            return;
        }
        if state.single {
            // -d or -i: the one connection is over.
            state.failed.set(!status.success());
            self.reactor.stop();
            return;
        }
        let ran = state
            .slots
            .get(self.index)
            .and_then(|slot| slot.since.take())
            .map_or(Duration::ZERO, |since| since.elapsed());
        log::error!("privsep worker {} ended ({status:?}) after {}s", self.index, ran.as_secs());
        restart_later(&state, &self.reactor, self.index, ran);
    }
}

/// Starts a new worker in slot `index` after the back-off's delay ([`restart_delay`]).
fn restart_later(state: &Rc<State>, reactor: &Reactor, index: usize, ran: Duration) {
    let Some(slot) = state.slots.get(index) else { return };
    let delay = restart_delay(slot.delay.get(), ran);
    slot.delay.set(Some(delay));
    if delay > RESTART_DELAY {
        log::error!(
            "privsep worker {index} keeps ending early: restarting it in {}s",
            delay.as_secs()
        );
    } else {
        log::info!("privsep worker {index}: restarting it in {}s", delay.as_secs());
    }
    let (state, again) = (Rc::clone(state), reactor.clone());
    let _ = reactor.call_later(delay, move || {
        if !state.stopping.get() {
            spawn_worker(&state, &again, index);
        }
    });
}

fn spawn_worker(state: &Rc<State>, reactor: &Reactor, index: usize) {
    let result = (|| -> Result<u32, String> {
        let exe = crate::around::this_program()?;
        let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
        // Started from /proc/self/exe (the monitor's own binary, even if replaced since), shown
        // under the name the monitor was started with.
        let name = std::env::args_os().next().unwrap_or_else(|| "conchd".into());
        let mut options = ProcessOptions::new(&exe)
            .arg0(name)
            .args(&state.args)
            .env(super::WORKER_VAR, index.to_string())
            .env(super::MONITOR_PID_VAR, std::process::id().to_string())
            .env(super::LISTENERS_VAR, state.listeners.borrow().len().to_string())
            .env(super::HOST_KEYS_VAR, &state.public_keys)
            .inherit_fd(OwnedFd::from(theirs), super::MONITOR_FD);
        if state.daemon {
            options = options.env(crate::DAEMON_CHILD, "1");
        }
        let cpu = super::affinity::worker_cpu(index, state.slots.len());
        if let Some(cpu) = cpu {
            options = options.env(super::CPU_VAR, cpu.to_string());
        }
        if let Some((input, output)) = &state.inetd {
            let input = input.try_clone().map_err(|e| e.to_string())?;
            let output = output.try_clone().map_err(|e| e.to_string())?;
            options = options
                .env(super::INETD_VAR, "1")
                .env(super::LISTENERS_VAR, "2")
                .inherit_fd(input, super::MONITOR_FD + 1)
                .inherit_fd(output, super::MONITOR_FD + 2);
        }
        for (n, listener) in state.listeners.borrow().iter().enumerate() {
            let fd = listener.try_clone().map_err(|e| e.to_string())?;
            let target = super::MONITOR_FD + 1 + i32::try_from(n).map_err(|e| e.to_string())?;
            options = options.inherit_fd(OwnedFd::from(fd), target);
        }
        let watch = WorkerWatch { state: Rc::clone(state), reactor: reactor.clone(), index };
        let process = reactor.spawn_process(options, watch).map_err(|e| e.to_string())?;
        let pid = process.pid();
        let backend = ConchdBackend {
            system: SystemBackend::new(state.host_keys.clone()),
            settings: state.settings.clone(),
            main: reactor.thread_handle(),
            startups: Arc::clone(&state.startups),
            worker: pid,
            agent_sockets: std::collections::HashMap::new(),
            forward_sockets: std::collections::HashMap::new(),
            auth_files: std::collections::HashMap::new(),
            logins: std::collections::HashMap::new(),
            #[cfg(feature = "pam")]
            pam: std::collections::HashMap::new(),
        };
        std::thread::Builder::new()
            .name(format!("monitor-{index}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    super::affinity::pin_current_thread(cpu);
                }
                serve_worker(backend, &ours, pid);
            })
            .map_err(|e| e.to_string())?;
        Ok(pid)
    })();
    match result {
        Ok(pid) => {
            log::debug!("privsep worker {index} started as pid {pid}");
            if let Some(slot) = state.slots.get(index) {
                slot.pid.set(Some(pid));
                slot.since.set(Some(Instant::now()));
            }
        }
        Err(err) => {
            log::error!("privsep worker {index}: cannot start: {err}");
            restart_later(state, reactor, index, Duration::ZERO);
        }
    }
}

/// A worker's thread: serves its requests until it closes or breaks the rules; kills it then.
fn serve_worker(backend: ConchdBackend, stream: &UnixStream, pid: u32) {
    let mut monitor = Monitor::new(backend, Limits::default());
    let end = serve_unix(&mut monitor, stream);
    // A worker that ends with connections open crashed (or was killed for breaking the
    // rules); one that drains closes them first.
    let peers = monitor.open_peers();
    match end {
        ServeEnd::Closed => log::debug!("privsep worker {pid} closed its channel"),
        ServeEnd::Violation(v) => log::error!("privsep worker {pid} killed: {v}"),
        ServeEnd::Io(e) => log::error!("privsep worker {pid}: channel failed: {e}"),
    }
    if let Ok(raw) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(raw),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    for peer in peers {
        log::info!("penalising {peer}: its connection's worker crashed");
        monitor.backend_mut().penalise(peer, PenaltyKind::Crash);
    }
}

/// After `SIGHUP`: starts the new server once the workers have closed the listeners (the
/// addresses can be bound again), checking every 50 ms, `tries` times at most.
fn restart_when_free(
    state: &Rc<State>,
    reactor: &Reactor,
    addresses: Vec<SocketAddr>,
    args: Vec<String>,
    foreground: bool,
    tries: u32,
) {
    let free = addresses.iter().all(|addr| bind(*addr).is_ok());
    if free || tries == 0 {
        let cwd = crate::START_DIR.get().cloned();
        if let Err(err) = crate::restart(&args, cwd.as_deref(), foreground) {
            log::error!("restart failed: {err}");
        }
        state.restart_pending.set(false);
        if state.slots.iter().all(|slot| slot.pid.get().is_none()) {
            reactor.stop();
        }
        return;
    }
    let (again, state) = (reactor.clone(), Rc::clone(state));
    let _ = reactor.call_later(Duration::from_millis(50), move || {
        restart_when_free(&state, &again, addresses, args, foreground, tries - 1);
    });
}

/// A listening socket as sshd makes it (as `server::bind`).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

fn listen(c: &SshdConfig) -> Vec<TcpListener> {
    let mut out = Vec::new();
    for la in &c.listen_addresses {
        let addrs: Vec<SocketAddr> = match la.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, la.port)],
            Err(_) => match (la.host.as_str(), la.port).to_socket_addrs() {
                Ok(addrs) => addrs.collect(),
                Err(err) => {
                    log::error!("Bad listen address {}: {err}", la.host);
                    continue;
                }
            },
        };
        for addr in addrs {
            match bind(addr) {
                Ok(listener) => {
                    let port = listener.local_addr().map_or(addr.port(), |a| a.port());
                    log::info!("Server listening on {} port {port}.", addr.ip());
                    out.push(listener);
                }
                Err(err) => {
                    log::error!("Bind to port {} on {} failed: {err}.", addr.port(), addr.ip());
                }
            }
        }
    }
    out
}

/// Makes the workers' empty directory: root's, mode 0755, nothing in it.
fn prepare_chroot() -> Result<(), Fatal> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::Path::new(super::CHROOT_DIR);
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| Fatal(format!("privsep: {}: {e}", dir.display()), 255))?;
    // The workers refuse a directory they could find something in: say so once, here.
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    if !empty {
        return Err(Fatal(
            format!(
                "privsep: {} must be an empty directory (or run with -o UsePrivilegeSeparation=no)",
                dir.display()
            ),
            255,
        ));
    }
    Ok(())
}

/// The monitor's life.
pub(crate) fn run(
    args: &[String],
    opts: &crate::cli::Options,
    file: &Arc<SshdConfigFile>,
    startup: &SshdConfig,
    host_keys: Vec<Arc<dyn HostKeySigner>>,
) -> Result<(), Fatal> {
    prepare_chroot()?;
    // Inetd mode: the connection is on standard input and output, and one worker serves it.
    let inetd = if opts.inetd {
        use std::os::fd::AsFd;
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned().map_err(|e| Fatal(e.to_string(), 255))
        };
        Some((dup(std::io::stdin().as_fd())?, dup(std::io::stdout().as_fd())?))
    } else {
        None
    };
    let listeners = if inetd.is_some() { Vec::new() } else { listen(startup) };
    if listeners.is_empty() && inetd.is_none() {
        return Err(Fatal("Cannot bind any address.".into(), 255));
    }
    let public_keys = host_keys
        .iter()
        .map(|k| super::hex(&k.public_key().to_blob()))
        .collect::<Vec<_>>()
        .join(",");
    let single = opts.debug > 0 || opts.inetd;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = if single {
        1
    } else {
        // CONCHD_PRIVSEP_WORKERS overrides one per core (tests).
        std::env::var(super::WORKERS_VAR)
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(cores)
            .clamp(1, 64)
    };
    let reactor = Reactor::new().map_err(|e| Fatal(e.to_string(), 255))?;
    let state = Rc::new(State {
        args: args.to_vec(),
        listeners: RefCell::new(listeners),
        daemon: !(opts.foreground || opts.debug > 0),
        restart_pending: Cell::new(false),
        host_keys,
        public_keys,
        settings: Settings {
            file: Arc::clone(file),
            refuses_connections: file.refuses_connections(),
            authorized_keys_files: startup.authorized_keys_files.clone(),
            strict_modes: startup.strict_modes,
            permit_empty_passwords: startup.permit_empty_passwords,
            print_motd: startup.print_motd,
            print_last_log: startup.print_last_log,
            agent_forwarding: startup.agent_forwarding(),
            remote_forwarding: !startup.disable_forwarding
                && startup.allow_tcp_forwarding.allows_remote(),
            remote_streamlocal: !startup.disable_forwarding
                && startup.allow_stream_local_forwarding.allows_remote(),
            streamlocal_bind_unlink: startup.stream_local_bind_unlink,
            streamlocal_bind_mask: startup.stream_local_bind_mask,
            #[cfg(feature = "pam")]
            pam_service: startup
                .use_pam
                .then(|| startup.pam_service_name.clone().unwrap_or_else(|| "sshd".into())),
            #[cfg(feature = "pam")]
            pam: startup.use_pam.then(|| {
                let service = startup.pam_service_name.clone().unwrap_or_else(|| "sshd".into());
                twine::conch::server::PamDriver::new(service)
                    .with_empty_passwords(startup.permit_empty_passwords)
            }),
        },
        slots: (0..workers).map(|_| Slot2::new()).collect(),
        stopping: Cell::new(false),
        single,
        startups: Arc::new(Startups::new(startup)),
        inetd,
        failed: Cell::new(false),
    });
    for index in 0..workers {
        spawn_worker(&state, &reactor, index);
    }
    log::debug!("privilege separation: {workers} workers");
    let pid_file = if single { None } else { startup.pid_file.clone() };
    if let Some(path) = &pid_file {
        if let Err(err) = std::fs::write(path, format!("{}\n", std::process::id())) {
            log::error!("Couldn't create pid file \"{path}\": {err}");
        }
    }
    let stop_all = {
        let state = Rc::clone(&state);
        move || {
            state.stopping.set(true);
            for slot in &state.slots {
                if let Some(pid) = slot.pid.get().and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
    };
    for signal in [Signal::Terminate, Signal::Interrupt] {
        let (stop_all, pid_file) = (stop_all.clone(), pid_file.clone());
        reactor
            .observe_signal(signal, move || {
                log::info!("Received signal {}; terminating.", signal.as_raw());
                stop_all();
                if let Some(path) = &pid_file {
                    let _ = std::fs::remove_file(path);
                }
                std::process::exit(255);
            })
            .map_err(|e| Fatal(e.to_string(), 255))?;
    }
    {
        let (args, foreground) = (args.to_vec(), opts.foreground || opts.debug > 0);
        let (state, pid_file) = (Rc::clone(&state), pid_file.clone());
        let main = reactor.clone();
        reactor
            .observe_signal(Signal::Hangup, move || {
                if state.stopping.get() {
                    return;
                }
                log::info!("Received SIGHUP; restarting.");
                if let Some(path) = &pid_file {
                    let _ = std::fs::remove_file(path);
                }
                // The workers stop accepting and end with their last connection, as sshd's
                // children of a restarted server; this monitor ends with the last of them.
                state.stopping.set(true);
                let addresses: Vec<SocketAddr> =
                    state.listeners.borrow().iter().filter_map(|l| l.local_addr().ok()).collect();
                state.listeners.borrow_mut().clear();
                for slot in &state.slots {
                    if let Some(pid) = slot.pid.get().and_then(|p| i32::try_from(p).ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGHUP,
                        );
                    }
                }
                state.restart_pending.set(true);
                restart_when_free(&state, &main, addresses, args.clone(), foreground, 100);
            })
            .map_err(|e| Fatal(e.to_string(), 255))?;
    }
    let result = reactor.run().map_err(|e| Fatal(e.to_string(), 255));
    stop_all();
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    if opts.inetd && state.failed.get() {
        // As without privilege separation: 255 when the connection ended without a login.
        return Err(Fatal(String::new(), 255));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_restart_waits_one_second() {
        assert_eq!(restart_delay(None, Duration::ZERO), Duration::from_secs(1));
        assert_eq!(restart_delay(None, Duration::from_secs(3600)), Duration::from_secs(1));
    }

    #[test]
    fn workers_that_keep_dying_early_wait_twice_as_long_each_time_up_to_a_minute() {
        let mut delay = None;
        let mut waits = Vec::new();
        for _ in 0..10 {
            let next = restart_delay(delay, Duration::from_secs(2));
            waits.push(next.as_secs());
            delay = Some(next);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn a_worker_that_ran_for_a_minute_resets_the_back_off() {
        let long = restart_delay(Some(Duration::from_secs(60)), Duration::from_secs(59));
        assert_eq!(long, Duration::from_secs(60));
        let reset = restart_delay(Some(Duration::from_secs(60)), Duration::from_secs(60));
        assert_eq!(reset, Duration::from_secs(1));
    }
}

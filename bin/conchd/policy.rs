//! The auth backend that applies `sshd_config` to each login: `Match` blocks evaluated for the
//! user and the connection, `AllowUsers`/`DenyUsers`/`AllowGroups`/`DenyGroups`,
//! `PermitRootLogin`, the methods enabled, `AuthorizedKeysFile` and `StrictModes`, then
//! `ForceCommand`, `PermitTTY`, `AllowTcpForwarding`, `PermitOpen`, `PermitListen` as the
//! login's restrictions, and `SetEnv` and `ExposeAuthInfo` in its sessions.
//!
//! [`MatchSettings`] is the rest of sshd's `Match` evaluation, done as sshd does it when the
//! first authentication request names the user: `Banner`, `MaxAuthTries`,
//! `AuthenticationMethods`, `PubkeyAcceptedAlgorithms`, the methods' switches,
//! `ClientAliveInterval`/`ClientAliveCountMax`, `RekeyLimit`, `AcceptEnv`, `MaxSessions`,
//! `GatewayPorts`, `AllowStreamLocalForwarding`, `StreamLocalBind*`, `DisableForwarding`,
//! `ChannelTimeout` and `UnusedConnectionTimeout` become that connection's settings, and
//! `RequiredRSASize` and `PermitEmptyPasswords no` are checked here per login. What a
//! `Match` block may set but conchd applies only server-wide (`PubkeyAuthOptions`,
//! `Subsystem`, `PAMServiceName`, `RefuseConnection`) refuses the login
//! when it differs from the server's; `LogLevel`/`LogVerbose` (logging is per process) and
//! settings for features conchd lacks (X11, tunnels, host-based authentication, `IPQoS`) only
//! grant what is not offered anyway and are ignored.
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::unistd::{Gid, Group};
use std::time::Duration;
use twine::conch::config::sshd::{
    ConnectionInfo, PermitRootLogin, SshdConfig, SshdConfigFile, UserAccess,
};
use twine::conch::keys::authorized_keys::PermittedHostPort;
use twine::conch::keys::{FingerprintHash, KeyType, PublicKey};
use twine::conch::server::session::KeptGroups;
use twine::internet::process::Groups;

use twine::conch::config::sshd::GatewayPorts as GatewayPortsSetting;
use twine::conch::keys::SignatureAlgorithm;
use twine::conch::server::{
    Account, AccountStatus, AllowForwarding, AuthBackend, AuthRequest, AuthorizedKeys, Chain,
    ChannelTimeout, ConnectionFacts, ConnectionId, ConnectionSettings, ForwardingPolicy,
    GatewayPorts, LoginRequest, Offload, Restrictions, SessionGrant, UserSettings,
};
use twine::conch::stack::ServerStackConfig;
use twine::conch::transport::RekeyLimits;
use twine::conch::userauth::{self, Attempt, Decision, Method};
use twine::internet::Deferred;

/// OpenSSH's sftp server, which stands in for `internal-sftp`.
pub(crate) const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// What a connection's successful logins left for its sessions.
#[derive(Default)]
struct ConnState {
    config: Option<Arc<SshdConfig>>,
    auth_info: Vec<String>,
    auth_file: Option<PathBuf>,
    /// The methods accepted so far, for `AuthenticationMethods`' partial steps.
    methods: Vec<Method>,
    /// The keyboard-interactive conversation under way was refused before it started (an
    /// invalid user, `DenyUsers`, root where `PermitRootLogin` forbids): it runs all the same,
    /// as sshd's does, so that the client cannot tell such a user from one whose answer was
    /// wrong, and ends refused whatever PAM says. `Some(invalid)`: whether sshd would call the
    /// user invalid (for the failure's log line).
    decoy: Option<bool>,
}

/// Whether accepting `method` after `done` completes one of the `AuthenticationMethods`
/// lists (as the userauth machine advances them), so that sshd logs "Accepted", not "Partial".
fn completes_a_list(config: &SshdConfig, done: &[Method], method: Method) -> bool {
    let Ok(mut lists) = authentication_methods(config) else { return false };
    if lists.is_empty() {
        return true;
    }
    let mut complete = false;
    for step in done.iter().chain(std::iter::once(&method)) {
        complete = false;
        for list in &mut lists {
            if list.first() == Some(step) {
                list.remove(0);
                complete |= list.is_empty();
            }
        }
    }
    complete
}

/// Applies the configuration, then asks `inner` (PAM) for passwords and keyboard-interactive.
pub(crate) struct Policy {
    file: Arc<SshdConfigFile>,
    inner: Chain,
    state: Rc<RefCell<HashMap<ConnectionId, ConnState>>>,
    /// Connections whose login session is open (for `MaxStartups`).
    authenticated: RefCell<std::collections::HashSet<ConnectionId>>,
    /// Login sessions opened so far (inetd mode's exit status).
    pub(crate) logins: Rc<std::cell::Cell<u64>>,
    /// Logins open now on every reactor (`MaxStartups`).
    open_logins: Arc<AtomicUsize>,
}

impl Policy {
    pub(crate) fn new(
        file: Arc<SshdConfigFile>,
        inner: Chain,
        open_logins: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            file,
            inner,
            state: Rc::default(),
            authenticated: RefCell::default(),
            logins: Rc::default(),
            open_logins,
        }
    }
}

/// The outcome of the checks made on a thread.
enum Verdict {
    /// Refused before the method was tried; the reason is logged.
    Refused(String),
    /// Refused as sshd refuses a user it treats as invalid (no account, or refused by
    /// `AllowUsers`, `DenyUsers`, `AllowGroups`, `DenyGroups`): the same, and the failure's log
    /// line says "for invalid user".
    Invalid(String),
    /// The method decided (public keys are decided on the thread too).
    Decided(Decision<Restrictions>, Arc<SshdConfig>),
    /// Allowed so far: `inner` decides.
    Ask(Arc<SshdConfig>),
}

/// The groups `config`'s `AllowGroups` and `DenyGroups` test (none to read without them).
fn groups_for_access(config: &SshdConfig, account: &Account) -> Vec<String> {
    if config.allow_groups.is_empty() && config.deny_groups.is_empty() {
        return Vec::new();
    }
    groups_of(account)
}

pub(crate) fn groups_of(account: &Account) -> Vec<String> {
    if let Some(groups) = crate::privsep::worker::groups_of(&account.name) {
        return groups;
    }
    groups_from_system(&account.name, account.gid)
}

thread_local! {
    /// The last user's group names read on this thread: one login asks several times (its
    /// `Match` settings, `AllowGroups`, the monitor's answer to the worker).
    static LAST_GROUPS: RefCell<KeptGroups<Vec<String>>> = RefCell::new(KeptGroups::default());
}

/// `name`'s group names (primary group `gid`) from the group database, or as this thread read
/// them less than [`GROUPS_KEPT`](twine::conch::server::session::GROUPS_KEPT) ago; none when
/// the database cannot be read.
pub(crate) fn groups_from_system(name: &str, gid: u32) -> Vec<String> {
    let read = || {
        let ids = Groups::OfUser(name.to_owned()).resolve(gid)?;
        let names = ids.into_iter().filter_map(|id| Group::from_gid(Gid::from_raw(id)).ok()?);
        Ok::<_, twine::internet::Error>(names.map(|g| g.name).collect())
    };
    LAST_GROUPS
        .with(|last| last.borrow_mut().get(name, gid, std::time::Instant::now(), read))
        .unwrap_or_default()
}

/// The effective configuration for `user` on `facts` (blocking: the user database).
pub(crate) fn config_for(
    file: &SshdConfigFile,
    user: &str,
    account: Option<&Account>,
    facts: &ConnectionFacts,
) -> Result<SshdConfig, String> {
    // Over inetd pipes there is no address: sshd matches "UNKNOWN" and port 65535.
    let address = facts.peer.map_or_else(|| "UNKNOWN".to_owned(), |a| a.ip().to_string());
    let ci = ConnectionInfo {
        user: Some(user.to_owned()),
        user_invalid: account.is_none(),
        // Read only when a `Match Group` block or a group list may test them.
        groups: account.map(|a| if file.uses_groups() { groups_of(a) } else { Vec::new() }),
        host: Some(address.clone()),
        address: Some(address),
        local_address: Some(
            facts.local.map_or_else(|| "UNKNOWN".to_owned(), |a| a.ip().to_string()),
        ),
        local_port: Some(facts.local.map_or(65535, |a| a.port())),
        rdomain: None,
        test: false,
    };
    file.effective(Some(&ci)).map_err(|e| e.to_string())
}

fn from_where(facts: &ConnectionFacts) -> String {
    match facts.peer {
        Some(peer) => format!("{} port {}", peer.ip(), peer.port()),
        None => "UNKNOWN port 65535".into(),
    }
}

fn verdict(
    file: &SshdConfigFile,
    request_user: &str,
    attempt: &Attempt,
    facts: &ConnectionFacts,
    now: std::time::SystemTime,
) -> Verdict {
    let account = match Account::lookup(request_user) {
        Ok(account) => account,
        Err(err) => return Verdict::Refused(format!("looking up {request_user}: {err}")),
    };
    let config = match config_for(file, request_user, account.as_ref(), facts) {
        Ok(config) => Arc::new(config),
        Err(err) => return Verdict::Refused(err),
    };
    let mut unenforced = unenforced(&config);
    unenforced.extend(per_login_unenforced(&config));
    if !unenforced.is_empty() {
        // A Match block asks for something conchd cannot enforce (ChrootDirectory, ...):
        // refuse rather than let the user in without it.
        return Verdict::Refused(format!(
            "User {request_user} refused: unsupported settings apply: {}",
            unenforced.join(", ")
        ));
    }
    if let Err(why) = authentication_methods(&config) {
        // Every list names a method conchd cannot complete for this login: none can succeed.
        return Verdict::Refused(format!("{why} for {request_user}"));
    }
    let Some(account) = account else {
        return Verdict::Invalid(format!("Invalid user {request_user} from {}", from_where(facts)));
    };
    let ip = facts.peer_ip();
    if let UserAccess::Refused(why) =
        config.user_access(request_user, &groups_for_access(&config, &account), &ip, &ip)
    {
        return Verdict::Invalid(format!("User {request_user} from {ip} {why}"));
    }
    let (pubkey, certificate) = match attempt {
        Attempt::PublicKeyQuery { key, certificate, .. }
        | Attempt::PublicKey { key, certificate, .. } => (Some(key), certificate.as_deref()),
        _ => (None, None),
    };
    let enabled = match attempt {
        Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. } => config.pubkey_authentication,
        Attempt::Password { .. } => config.password_authentication,
        Attempt::KeyboardInteractive { .. } => config.kbd_interactive_authentication,
        _ => false,
    };
    if !enabled {
        return Verdict::Decided(Decision::Reject, config);
    }
    // The password backend is built once with the server-wide PermitEmptyPasswords; a Match
    // block that forbids empty passwords is applied here.
    if let Attempt::Password { password, .. } = attempt {
        if password.as_bytes().is_empty() && !config.permit_empty_passwords {
            return Verdict::Decided(Decision::Reject, config);
        }
    }
    if let Some(name) = pubkey_algorithm_name(attempt) {
        if !config.pubkey_accepted_algorithms.contains(&name) {
            return Verdict::Refused(format!(
                "{name} not in PubkeyAcceptedAlgorithms for {request_user}"
            ));
        }
    }
    if account.uid == 0 {
        let allowed = match config.permit_root_login {
            PermitRootLogin::Yes => true,
            PermitRootLogin::ProhibitPassword | PermitRootLogin::ForcedCommandsOnly => {
                pubkey.is_some()
            }
            PermitRootLogin::No => false,
        };
        if !allowed {
            return Verdict::Refused(format!(
                "ROOT LOGIN REFUSED FROM {ip} port {}",
                facts.peer.map_or(0, |p| p.port())
            ));
        }
    }
    let Some(key) = pubkey else { return Verdict::Ask(config) };
    let rsa_bits = required_rsa_bits(key);
    let required = usize::try_from(config.required_rsa_size).unwrap_or(usize::MAX);
    if rsa_bits.is_some_and(|bits| bits < required) {
        // sshd's `sshkey_check_rsa_length`, for the key offered (RequiredRSASize).
        log::info!(
            "refusing RSA key for {request_user}: Invalid key length ({} < RequiredRSASize {})",
            rsa_bits.unwrap_or(0),
            config.required_rsa_size
        );
        return Verdict::Decided(Decision::Reject, config);
    }
    let keys = authorized_keys(&config).with_connection(facts.peer, facts.local);
    let decision = keys.check_attempt(request_user, key, certificate, &ip, now);
    if let Decision::Accept(r) = &decision {
        if account.uid == 0
            && config.permit_root_login == PermitRootLogin::ForcedCommandsOnly
            && r.forced_command.is_none()
        {
            return Verdict::Refused(format!("Root login refused for {ip}: no forced command"));
        }
    }
    Verdict::Decided(decision, config)
}

/// Whether `config` (the user's, Match blocks applied) lets `account` in from `ip` by
/// `method` (a completed login's last method): the user and group lists, the method switched
/// on, and `PermitRootLogin`. What a privilege-separated monitor checks again for its worker.
pub(crate) fn login_allowed(
    config: &SshdConfig,
    account: &Account,
    method: &str,
    ip: &str,
) -> Result<(), String> {
    let user = account.name.as_str();
    if let UserAccess::Refused(why) =
        config.user_access(user, &groups_for_access(config, account), ip, ip)
    {
        return Err(format!("User {user} from {ip} {why}"));
    }
    let enabled = match method {
        "publickey" => config.pubkey_authentication,
        "password" => config.password_authentication,
        "keyboard-interactive" => config.kbd_interactive_authentication,
        _ => true,
    };
    if !enabled {
        return Err(format!("{method} is not enabled for {user}"));
    }
    if account.uid == 0 {
        let allowed = match config.permit_root_login {
            PermitRootLogin::Yes => true,
            PermitRootLogin::ProhibitPassword | PermitRootLogin::ForcedCommandsOnly => {
                method == "publickey"
            }
            PermitRootLogin::No => false,
        };
        if !allowed {
            return Err(format!("ROOT LOGIN REFUSED FROM {ip} ({method})"));
        }
    }
    Ok(())
}

/// The public key backend as `config` sets it up (`AuthorizedKeysFile`, `StrictModes`,
/// `TrustedUserCAKeys`, `AuthorizedPrincipalsFile`/`Command`, `RevokedKeys`,
/// `CASignatureAlgorithms`): the policy's, and a privilege-separated monitor's for the
/// same user and connection.
pub(crate) fn authorized_keys(config: &SshdConfig) -> AuthorizedKeys {
    AuthorizedKeys::new()
        .with_files(config.authorized_keys_files.clone())
        .with_strict_modes(config.strict_modes)
        .with_trusted_user_ca_keys(config.trusted_user_ca_keys.clone())
        .with_authorized_principals_file(config.authorized_principals_file.clone())
        .with_authorized_principals_command(
            config.authorized_principals_command.clone(),
            config.authorized_principals_command_user.clone(),
        )
        .with_authorized_keys_command(
            config.authorized_keys_command.clone(),
            config.authorized_keys_command_user.clone(),
        )
        .with_revoked_keys(config.revoked_keys.clone())
        .with_ca_signature_algorithms(
            config
                .ca_signature_algorithms
                .iter()
                .filter_map(|n| SignatureAlgorithm::from_name(n))
                .collect(),
        )
}

/// The modulus size of an RSA key, `None` for other types.
fn required_rsa_bits(key: &PublicKey) -> Option<usize> {
    (key.key_type() == KeyType::Rsa).then(|| key.bits())
}

/// The settings in force that conchd cannot enforce: the configuration's list, less
/// `TrustedUserCAKeys`, `AuthorizedPrincipalsFile`, `AuthorizedPrincipalsCommand`,
/// `AuthorizedKeysCommand` and `RevokedKeys`, which the authorized_keys backend enforces.
pub(crate) fn unenforced(config: &SshdConfig) -> Vec<String> {
    let enforced = [
        "TrustedUserCAKeys ",
        "AuthorizedPrincipalsFile ",
        "AuthorizedPrincipalsCommand ",
        "AuthorizedKeysCommand ",
        "RevokedKeys ",
    ];
    let mut out = config.unenforced();
    out.retain(|setting| !enforced.iter().any(|keyword| setting.starts_with(keyword)));
    out
}

/// The public key algorithm name a publickey attempt used (a certificate's
/// `*-cert-v01@openssh.com` form for certificates).
fn pubkey_algorithm_name(attempt: &Attempt) -> Option<&'static str> {
    match attempt {
        Attempt::PublicKeyQuery { algorithm, certificate, .. }
        | Attempt::PublicKey { algorithm, certificate, .. } => Some(match certificate {
            Some(_) => twine::conch::keys::cert::cert_algorithm_name(*algorithm),
            None => algorithm.name(),
        }),
        _ => None,
    }
}

fn permitted(list: &[String], listen: bool) -> Option<Vec<PermittedHostPort>> {
    if list.is_empty() || list.iter().any(|e| e.eq_ignore_ascii_case("any")) {
        return None;
    }
    let mut out = Vec::new();
    for entry in list.iter().flat_map(|e| e.split_whitespace()) {
        if entry.eq_ignore_ascii_case("none") {
            continue;
        }
        let (host, port) = match entry.rsplit_once(':') {
            Some((h, p)) => (Some(h.trim_matches(['[', ']']).to_owned()), p),
            None if listen => (None, entry),
            None => continue,
        };
        let port = if port == "*" { None } else { port.parse().ok() };
        out.push(PermittedHostPort { host, port });
    }
    Some(out)
}

/// The configuration's share of the restrictions.
fn config_restrictions(config: &SshdConfig, mut r: Restrictions) -> Restrictions {
    r.pty &= config.permit_tty;
    r.port_forwarding &= config.tcp_forwarding_local() || config.tcp_forwarding_remote();
    r.agent_forwarding &= config.agent_forwarding();
    r.x11_forwarding = false;
    r.user_rc &= config.permit_user_rc;
    if let Some(command) = &config.force_command {
        // There is no in-process sftp server: `internal-sftp` runs OpenSSH's `sftp-server`
        // with the same arguments.
        r.forced_command = Some(match command.strip_prefix("internal-sftp") {
            Some(args) if args.is_empty() || args.starts_with(' ') => {
                format!("{SFTP_SERVER}{args}")
            }
            _ => command.clone(),
        });
    }
    // AllowTcpForwarding local|remote, per connection: the direction not allowed gets an
    // empty permit list.
    let mut extra = Restrictions::none();
    extra.permit_open = if config.tcp_forwarding_local() {
        permitted(&config.permit_open, false)
    } else {
        Some(Vec::new())
    };
    extra.permit_listen = if config.tcp_forwarding_remote() {
        permitted(&config.permit_listen, true)
    } else {
        Some(Vec::new())
    };
    r.intersect(&extra)
}

fn method_text(attempt: &Attempt) -> &'static str {
    attempt.method().name()
}

fn key_text(key: &PublicKey) -> String {
    format!("{} {}", key.short_type_name(), key.fingerprint(FingerprintHash::Sha256))
}

impl AuthBackend for Policy {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        if matches!(request.attempt, Attempt::KeyboardInteractiveResponses { .. }) {
            let id = request.connection.id;
            let decoy = self.state.borrow().get(&id).and_then(|state| state.decoy);
            let answer = self.inner.decide(request);
            let Some(invalid) = decoy else { return answer };
            let (state, request) = (Rc::clone(&self.state), request.clone());
            return answer.then(move |decision| {
                Ok(match decision {
                    Ok(Decision::InfoRequest(info)) => Decision::InfoRequest(info),
                    _ => {
                        if let Some(state) = state.borrow_mut().get_mut(&id) {
                            state.decoy = None;
                        }
                        log_decision(&request, &Decision::Reject, false, invalid);
                        Decision::Reject
                    }
                })
            });
        }
        // A new attempt ends any conversation held for show (a later one decides afresh).
        if let Some(state) = self.state.borrow_mut().get_mut(&request.connection.id) {
            state.decoy = None;
        }
        let file = Arc::clone(&self.file);
        let user = request.user.clone();
        let attempt = request.attempt.clone();
        let facts = Rc::clone(&request.connection);
        let facts_copy = ConnectionFacts::clone(&facts);
        let now = request.now;
        let verdict =
            request.offload.run(move || verdict(&file, &user, &attempt, &facts_copy, now));
        let out = request.offload.deferred();
        let inner = self.inner.clone();
        let state = Rc::clone(&self.state);
        let request = request.clone();
        let fired = out.clone();
        let ask = request.clone();
        let decoys = Rc::clone(&self.state);
        let _end: Deferred<()> = verdict.then(move |result| {
            let verdict = result.unwrap_or_else(|e| Verdict::Refused(e.to_string()));
            let invalid = matches!(verdict, Verdict::Invalid(_));
            let finish = move |decision: Decision<Restrictions>,
                               config: Option<Arc<SshdConfig>>| {
                let decision = match (decision, &config) {
                    (Decision::Accept(r), Some(config)) => {
                        Decision::Accept(config_restrictions(config, r))
                    }
                    (Decision::PartialSuccess(r), Some(config)) => {
                        Decision::PartialSuccess(config_restrictions(config, r))
                    }
                    (Decision::Accept(_) | Decision::PartialSuccess(_), None) => Decision::Reject,
                    (other, _) => other,
                };
                let counts = matches!(decision, Decision::Accept(_) | Decision::PartialSuccess(_))
                    && !matches!(request.attempt, Attempt::PublicKeyQuery { .. });
                let partial = counts
                    && (matches!(decision, Decision::PartialSuccess(_))
                        || config.as_deref().is_some_and(|config| {
                            let state = state.borrow();
                            let done = state.get(&facts.id).map_or(&[][..], |s| &s.methods[..]);
                            !completes_a_list(config, done, request.attempt.method())
                        }));
                // In a worker, a signed key counts once the monitor has verified it too: its
                // line ("Accepted", "Partial", or "Failed" when the monitor refuses) waits.
                let unsettled = counts
                    && crate::privsep::is_worker()
                    && matches!(request.attempt, Attempt::PublicKey { certificate: None, .. });
                let settle = {
                    let (request, decision, state, id) =
                        (request.clone(), decision.clone(), Rc::clone(&state), facts.id);
                    move |confirmed: bool| {
                        if !confirmed {
                            log_decision(&request, &Decision::Reject, false, invalid);
                            return;
                        }
                        log_decision(&request, &decision, partial, invalid);
                        if counts {
                            count_method(&state, id, &request.attempt, config);
                        }
                    }
                };
                if unsettled {
                    UNSETTLED.with(|unsettled| {
                        unsettled.borrow_mut().insert(facts.id, Box::new(settle));
                    });
                } else {
                    settle(true);
                }
                fired.callback(decision);
            };
            match verdict {
                Verdict::Refused(why) | Verdict::Invalid(why)
                    if matches!(ask.attempt, Attempt::KeyboardInteractive { .. }) =>
                {
                    // As sshd: the conversation runs (its prompts reach the client), and ends
                    // refused whatever the answers (see `ConnState::decoy`).
                    log::info!("{why}");
                    decoys.borrow_mut().entry(ask.connection.id).or_default().decoy = Some(invalid);
                    let answer = inner.decide(&ask);
                    let _end: Deferred<()> = answer.then(move |result| {
                        match result {
                            Ok(Decision::InfoRequest(info)) => {
                                finish(Decision::InfoRequest(info), None);
                            }
                            _ => finish(Decision::Reject, None),
                        }
                        Ok(())
                    });
                }
                Verdict::Refused(why) | Verdict::Invalid(why) => {
                    log::info!("{why}");
                    finish(Decision::Reject, None);
                }
                Verdict::Decided(decision, config) => finish(decision, Some(config)),
                Verdict::Ask(config) => {
                    let answer = inner.decide(&ask);
                    let _end: Deferred<()> = answer.then(move |result| {
                        finish(result.unwrap_or(Decision::Reject), Some(config));
                        Ok(())
                    });
                }
            }
            Ok(())
        });
        out
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        self.inner.check_account(login)
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        if self.authenticated.borrow_mut().insert(login.connection.id) {
            self.open_logins.fetch_add(1, Ordering::SeqCst);
        }
        self.logins.set(self.logins.get() + 1);
        let mut extra = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let slot = state.entry(login.connection.id).or_default();
            if let Some(config) = &slot.config {
                for entry in &config.set_env {
                    if let Some((name, value)) = entry.split_once('=') {
                        extra.push((name.to_owned(), value.to_owned()));
                    }
                }
                if config.expose_auth_info && crate::privsep::is_worker() {
                    // The worker's empty root has no /tmp: the monitor writes the file as it
                    // starts the session, from these lines.
                    extra.push((
                        crate::privsep::AUTH_INFO_VAR.to_owned(),
                        slot.auth_info.join("\n"),
                    ));
                } else if config.expose_auth_info {
                    match write_auth_info(&login.user, &slot.auth_info) {
                        Ok(path) => {
                            extra.push(("SSH_USER_AUTH".to_owned(), path.display().to_string()));
                            slot.auth_file = Some(path);
                        }
                        Err(err) => log::warn!("ExposeAuthInfo: {err}"),
                    }
                }
            }
        }
        self.inner.open_session(login).then(move |grant| {
            let mut grant = grant?;
            let mut env = extra;
            env.append(&mut grant.environment);
            grant.environment = env;
            Ok(grant)
        })
    }

    /// sshd's line for a signed key whose signature does not verify: "Failed publickey for
    /// USER from ADDR port PORT ssh2: TYPE SHA256:…", with "invalid user USER" where the
    /// checks before any method (the account, `AllowUsers` and the like) call the user invalid.
    fn signature_refused(&self, request: &AuthRequest) {
        let (file, user) = (Arc::clone(&self.file), request.user.clone());
        let (facts, now) = (ConnectionFacts::clone(&request.connection), request.now);
        let invalid = request.offload.run(move || {
            matches!(verdict(&file, &user, &Attempt::None, &facts, now), Verdict::Invalid(_))
        });
        let refused = request.clone();
        let _logged: Deferred<()> = invalid.then(move |invalid| {
            log_decision(&refused, &Decision::Reject, false, invalid.unwrap_or(false));
            Ok(())
        });
        self.inner.signature_refused(request);
    }

    fn close_session(&self, login: &LoginRequest) {
        self.inner.close_session(login);
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        UNSETTLED.with(|unsettled| unsettled.borrow_mut().remove(&connection.id));
        if self.authenticated.borrow_mut().remove(&connection.id) {
            self.open_logins.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(state) = self.state.borrow_mut().remove(&connection.id) {
            if let Some(path) = state.auth_file {
                let _ = std::fs::remove_file(path);
            }
        }
        self.inner.connection_ended(connection);
    }
}

/// A decision waiting for the monitor's word before it is logged and counted.
type Settle = Box<dyn FnOnce(bool)>;

thread_local! {
    /// In a privilege-separated worker, per connection: the signed public key the policy
    /// accepted, waiting for the monitor's check ([`settle_public_key`]).
    static UNSETTLED: RefCell<HashMap<ConnectionId, Settle>> = RefCell::default();
}

/// In a privilege-separated worker: the monitor `confirmed` (or refused) the signed public key
/// the policy last accepted on `connection`. Confirmed, it is logged ("Accepted publickey",
/// "Partial publickey") and counted towards `AuthenticationMethods` and `ExposeAuthInfo`;
/// refused, it is logged as a failure ("Failed publickey"), as without privilege separation.
/// Nothing waits for a connection the policy did not accept a key on.
pub(crate) fn settle_public_key(connection: ConnectionId, confirmed: bool) {
    let settle = UNSETTLED.with(|unsettled| unsettled.borrow_mut().remove(&connection));
    if let Some(settle) = settle {
        settle(confirmed);
    }
}

/// A method accepted on connection `id`: one more step for `AuthenticationMethods`, a line
/// for `ExposeAuthInfo`, and the configuration for its sessions.
fn count_method(
    state: &RefCell<HashMap<ConnectionId, ConnState>>,
    id: ConnectionId,
    attempt: &Attempt,
    config: Option<Arc<SshdConfig>>,
) {
    let mut state = state.borrow_mut();
    let slot = state.entry(id).or_default();
    slot.methods.push(attempt.method());
    slot.config = config;
    if let Attempt::PublicKey { certificate: Some(cert), .. } = attempt {
        slot.auth_info.push(format!("publickey {}", cert.to_openssh()));
    } else if let Attempt::PublicKey { key, .. } = attempt {
        slot.auth_info.push(format!("publickey {}", key.to_openssh()));
    } else {
        slot.auth_info.push(method_text(attempt).to_owned());
    }
}

fn log_decision(
    request: &AuthRequest,
    decision: &Decision<Restrictions>,
    partial: bool,
    invalid: bool,
) {
    let from = from_where(&request.connection);
    let user =
        if invalid { format!("invalid user {}", request.user) } else { request.user.clone() };
    let (method, detail) = match &request.attempt {
        Attempt::PublicKeyQuery { .. } => return,
        Attempt::PublicKey { certificate: Some(cert), .. } => (
            "publickey",
            format!(
                ": {}-CERT {} ID {} (serial {}) CA {}",
                cert.key.short_type_name(),
                cert.key.fingerprint(FingerprintHash::Sha256),
                cert.key_id,
                cert.serial,
                key_text(&cert.signature_key)
            ),
        ),
        Attempt::PublicKey { key, .. } => ("publickey", format!(": {}", key_text(key))),
        Attempt::Password { .. } => ("password", String::new()),
        Attempt::KeyboardInteractive { .. } | Attempt::KeyboardInteractiveResponses { .. } => {
            ("keyboard-interactive/pam", String::new())
        }
        _ => ("none", String::new()),
    };
    match decision {
        Decision::Accept(_) | Decision::PartialSuccess(_) if partial => {
            log::info!("Partial {method} for {user} from {from} ssh2{detail}");
        }
        Decision::Accept(_) => log::info!("Accepted {method} for {user} from {from} ssh2{detail}"),
        Decision::PartialSuccess(_) => {
            log::info!("Partial {method} for {user} from {from} ssh2{detail}");
        }
        Decision::Reject if method != "none" => {
            log::info!("Failed {method} for {user} from {from} ssh2{detail}");
        }
        _ => {}
    }
}

/// sshd's `ExposeAuthInfo` file: the methods and keys that authenticated, one per line,
/// readable by the user only.
pub(crate) fn write_auth_info(user: &str, lines: &[String]) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let account = Account::lookup(user).ok().flatten().ok_or("no account")?;
    let mut bytes = [0u8; 8];
    twine::conch::crypto::SecureRandom::fill(
        &mut twine::conch::crypto::OsRandom::new(),
        &mut bytes,
    )
    .map_err(|e| e.to_string())?;
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = std::env::temp_dir().join(format!("sshauth.{name}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| e.to_string())?;
    for line in lines {
        writeln!(file, "{line}").map_err(|e| e.to_string())?;
    }
    if nix::unistd::Uid::effective().is_root() {
        std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid))
            .map_err(|e| e.to_string())?;
    }
    Ok(path)
}

/// Settings a `Match` block may change that conchd applies only server-wide, as
/// `keyword value` texts: a login whose settings differ from the server's here is refused
/// rather than let in under the server's.
fn per_login_unenforced(config: &SshdConfig) -> Vec<String> {
    let Some(startup) = STARTUP.get() else { return Vec::new() };
    let mut out = Vec::new();
    if config.pubkey_auth_options != startup.pubkey_auth_options {
        out.push(format!("PubkeyAuthOptions {}", config.pubkey_auth_options.join(",")));
    }
    if config.subsystems != startup.subsystems {
        out.push("Subsystem (in a Match block)".to_owned());
    }
    if config.pam_service_name != startup.pam_service_name {
        out.push(format!("PAMServiceName {}", config.pam_service_name.clone().unwrap_or_default()));
    }
    if config.refuse_connection {
        out.push("RefuseConnection yes".to_owned());
    }
    out
}

/// `RefuseConnection` applies to `user` (`valid`: an account exists) on `facts`: sshd's log
/// line, the source's `refuseconnection` penalty (without privilege separation; with it the
/// monitor keeps it), and the error that ends the connection.
pub(crate) fn refuse_connection(
    user: &str,
    valid: bool,
    facts: &ConnectionFacts,
) -> twine::internet::Error {
    log::info!(
        "administratively prohibited connection for {}{user} from {}",
        if valid { "" } else { "invalid user " },
        from_where(facts)
    );
    if let Some(peer) = facts.peer {
        crate::penalties::refused(peer);
    }
    twine::internet::Error::new(
        twine::internet::ErrorKind::PermissionDenied,
        "administratively prohibited connection",
    )
}

/// The server-wide configuration, for [`per_login_unenforced`].
static STARTUP: std::sync::OnceLock<SshdConfig> = std::sync::OnceLock::new();

/// The stack configuration a user's settings start from: user authentication's part as
/// [`UserSettings`] rebuilds it.
pub(crate) struct MatchSettings {
    file: Arc<SshdConfigFile>,
    stack: Arc<ServerStackConfig>,
}

impl MatchSettings {
    /// Settings per user from `file`, over the server's `stack` (built from `startup`).
    pub(crate) fn new(
        file: Arc<SshdConfigFile>,
        startup: &SshdConfig,
        stack: Arc<ServerStackConfig>,
    ) -> Self {
        let _ = STARTUP.set(startup.clone());
        Self { file, stack }
    }
}

/// The forwarding policy of a configuration (TCP forwarding is in each login's restrictions).
pub(crate) fn forwarding_policy(c: &SshdConfig) -> ForwardingPolicy {
    let allow = |local: bool, remote: bool| match (local, remote) {
        (true, true) => AllowForwarding::Yes,
        (true, false) => AllowForwarding::Local,
        (false, true) => AllowForwarding::Remote,
        (false, false) => AllowForwarding::No,
    };
    let mut forwarding = ForwardingPolicy::default();
    forwarding.tcp = AllowForwarding::Yes;
    forwarding.streamlocal = if c.disable_forwarding {
        AllowForwarding::No
    } else {
        allow(
            c.allow_stream_local_forwarding.allows_local(),
            c.allow_stream_local_forwarding.allows_remote(),
        )
    };
    forwarding.gateway_ports = match c.gateway_ports {
        GatewayPortsSetting::No => GatewayPorts::No,
        GatewayPortsSetting::Yes => GatewayPorts::Yes,
        GatewayPortsSetting::ClientSpecified => GatewayPorts::ClientSpecified,
    };
    forwarding.streamlocal_bind_unlink = c.stream_local_bind_unlink;
    forwarding.streamlocal_bind_mask = c.stream_local_bind_mask;
    forwarding
}

/// `ChannelTimeout`'s entries (checked when the file was read).
pub(crate) fn channel_timeouts(c: &SshdConfig) -> Vec<ChannelTimeout> {
    c.channel_timeout.iter().filter_map(|entry| ChannelTimeout::parse(entry)).collect()
}

/// `UnusedConnectionTimeout`.
pub(crate) fn unused_connection_timeout(c: &SshdConfig) -> Option<Duration> {
    (c.unused_connection_timeout > 0)
        .then(|| Duration::from_secs(c.unused_connection_timeout.into()))
}

/// Whether conchd can complete `entry`, a method of an `AuthenticationMethods` list (with any
/// `:submethod`), for a login under `c`: a method conchd implements, switched on —
/// `keyboard-interactive` only through PAM (whose one submethod is `pam`). `none`,
/// `hostbased`, `gssapi-with-mic` and a submethod of another method never are.
fn method_usable(c: &SshdConfig, entry: &str) -> bool {
    let (name, submethod) = match entry.split_once(':') {
        Some((name, submethod)) => (name, Some(submethod)),
        None => (entry, None),
    };
    match (name, submethod) {
        ("publickey", None) => c.pubkey_authentication,
        ("password", None) => c.password_authentication,
        ("keyboard-interactive", None | Some("pam")) => {
            c.kbd_interactive_authentication && cfg!(feature = "pam") && c.use_pam
        }
        _ => false,
    }
}

/// The `AuthenticationMethods` lists of `c` that conchd can complete, as userauth takes them,
/// and the lists skipped, each with its first method conchd cannot complete.
fn method_lists(c: &SshdConfig) -> (Vec<Vec<Method>>, Vec<(&str, &str)>) {
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for list in c.authentication_methods.iter().filter(|list| !list.eq_ignore_ascii_case("any")) {
        let entries = list.split(',');
        match entries.clone().find(|entry| !method_usable(c, entry)) {
            Some(entry) => skipped.push((list.as_str(), entry)),
            None => usable.push(
                entries
                    .filter_map(|entry| {
                        Method::from_name(entry.split_once(':').map_or(entry, |(name, _)| name))
                    })
                    .collect(),
            ),
        }
    }
    (usable, skipped)
}

/// `AuthenticationMethods` for a login under `c`, as userauth and the monitor take them: no
/// lists for `any`; else the lists conchd can complete, as OpenSSH's
/// `auth2_setup_methods_lists` keeps those whose every method is enabled. A list naming a
/// method conchd cannot complete (switched off, `hostbased`, `gssapi-with-mic`) is skipped
/// whole, never shortened; `Err` when lists were given and none is left.
pub(crate) fn authentication_methods(c: &SshdConfig) -> Result<Vec<Vec<Method>>, String> {
    let (usable, skipped) = method_lists(c);
    if usable.is_empty() && !skipped.is_empty() {
        return Err("No AuthenticationMethods left after eliminating disabled methods".to_owned());
    }
    Ok(usable)
}

/// sshd's startup check of the server-wide `AuthenticationMethods`: each list naming a
/// method conchd cannot complete is logged, and when every list does, no login could
/// succeed: an error (`Match` blocks are checked per login, as sshd does).
pub(crate) fn check_authentication_methods(c: &SshdConfig) -> Result<(), String> {
    let (usable, skipped) = method_lists(c);
    for (list, entry) in &skipped {
        log::error!("Disabled method \"{entry}\" in AuthenticationMethods list \"{list}\"");
    }
    if usable.is_empty() && !skipped.is_empty() {
        return Err("AuthenticationMethods cannot be satisfied by enabled authentication methods"
            .to_owned());
    }
    Ok(())
}

/// The `Banner` file's text; a file that cannot be read is logged and sends no banner.
/// Banner files read ahead ([`preload_banners`]), by path.
static BANNERS: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();

/// Reads every banner file `file` names now, for a process about to confine itself (a
/// privilege-separated worker in its empty root): [`banner`] serves them from memory after.
pub(crate) fn preload_banners(file: &SshdConfigFile) {
    let texts = file
        .banner_files()
        .into_iter()
        .filter_map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Some((path, text)),
            Err(err) => {
                log::warn!("Banner {path}: {err}");
                None
            }
        })
        .collect();
    let _ = BANNERS.set(texts);
}

pub(crate) fn banner(c: &SshdConfig) -> Option<String> {
    let path = c.banner.as_ref()?;
    if let Some(texts) = BANNERS.get() {
        return texts.get(path).cloned();
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) => {
            log::warn!("Banner {path}: {err}");
            None
        }
    }
}

/// User authentication's settings for `c`, over the server's `base` (methods enabled, the
/// failure delay's secret); `Err` when no `AuthenticationMethods` list can complete.
fn userauth_config(
    c: &SshdConfig,
    base: &userauth::ServerConfig,
) -> Result<userauth::ServerConfig, String> {
    let mut u = base.clone();
    u.settings_per_user = false;
    let enabled: Vec<Method> = base
        .methods
        .iter()
        .copied()
        .filter(|m| match m {
            Method::PublicKey => c.pubkey_authentication,
            Method::Password => c.password_authentication,
            Method::KeyboardInteractive => c.kbd_interactive_authentication,
            _ => true,
        })
        .collect();
    if !enabled.is_empty() {
        u.methods = enabled;
    }
    let (lists, skipped) = method_lists(c);
    for (list, _) in skipped {
        log::info!("Authentication methods list \"{list}\" contains disabled method, skipping");
    }
    if lists.is_empty() && !c.authentication_methods.is_empty() {
        log::error!("No AuthenticationMethods left after eliminating disabled methods");
        return Err("no authentication methods enabled".to_owned());
    }
    u.authentication_methods = lists;
    u.max_auth_tries = c.max_auth_tries;
    u.banner = banner(c);
    u.publickey_algorithms = c
        .pubkey_accepted_algorithms
        .iter()
        .filter_map(|n| SignatureAlgorithm::from_name(n))
        .collect();
    Ok(u)
}

/// Everything of `c` that one connection applies: the stack's part over `stack`. `Err` of kind
/// `PermissionDenied` when the configuration leaves the login no way in (its text is the
/// client's), of another kind when the settings cannot be built.
fn connection_settings(
    c: &SshdConfig,
    stack: &ServerStackConfig,
    current: &ConnectionSettings,
) -> Result<ConnectionSettings, twine::internet::Error> {
    use twine::internet::{Error, ErrorKind};
    let userauth = userauth_config(c, stack.userauth())
        .map_err(|e| Error::new(ErrorKind::PermissionDenied, e))?;
    let mut per_user =
        stack.with_userauth(userauth).map_err(|e| Error::new(ErrorKind::Other, e.to_string()))?;
    per_user.client_alive_interval =
        (c.client_alive_interval > 0).then(|| Duration::from_secs(c.client_alive_interval.into()));
    per_user.client_alive_count_max = c.client_alive_count_max;
    let mut settings = current.clone();
    settings.stack = Some(Arc::new(per_user));
    let connect_timeout = current.forwarding.connect_timeout;
    settings.forwarding = forwarding_policy(c);
    settings.forwarding.connect_timeout = connect_timeout;
    settings.accept_env.clone_from(&c.accept_env);
    settings.max_sessions = usize::try_from(c.max_sessions).unwrap_or(usize::MAX);
    settings.channel_timeouts = channel_timeouts(c);
    settings.unused_connection_timeout = unused_connection_timeout(c);
    if STARTUP.get().is_some_and(|startup| startup.rekey_limit != c.rekey_limit) {
        settings.rekey_limits = Some(RekeyLimits {
            bytes: (c.rekey_limit.0 > 0).then_some(c.rekey_limit.0),
            time: (c.rekey_limit.1 > 0).then(|| Duration::from_secs(c.rekey_limit.1.into())),
            ..RekeyLimits::default()
        });
    }
    Ok(settings)
}

impl UserSettings for MatchSettings {
    fn settings(
        &self,
        user: &str,
        facts: &Rc<ConnectionFacts>,
        current: &ConnectionSettings,
        offload: &Offload,
    ) -> Deferred<ConnectionSettings> {
        let (file, stack) = (Arc::clone(&self.file), Arc::clone(&self.stack));
        let (user, facts, current) =
            (user.to_owned(), ConnectionFacts::clone(facts), current.clone());
        let fallback = current.clone();
        // Both `Match` evaluation and the group lookup may block (NSS).
        let config = offload.run(move || {
            let account = Account::lookup(&user).ok().flatten();
            let config = config_for(&file, &user, account.as_ref(), &facts);
            (config, account.is_some(), user, facts)
        });
        config.then(move |looked_up| {
            let (config, valid, user, facts) = looked_up?;
            if let Some(peer) = facts.peer {
                crate::penalties::user_named(peer, valid);
            }
            let config = match config {
                Ok(config) => config,
                Err(err) => {
                    // The policy refuses every attempt for this user with the same error.
                    log::debug!("settings per user: {err}");
                    return Ok(fallback);
                }
            };
            if config.refuse_connection {
                return Err(refuse_connection(&user, valid, &facts));
            }
            connection_settings(&config, &stack, &current)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twine::conch::config::sshd::SshdLoader;
    use twine::conch::config::OsFilesystem;

    /// The server-wide configuration of `text`.
    fn config(text: &str) -> SshdConfig {
        SshdLoader::new(&OsFilesystem)
            .load_bytes("/etc/ssh/sshd_config", Some(text.as_bytes()))
            .unwrap()
            .effective(None)
            .unwrap()
    }

    const NO_LISTS_LEFT: &str = "No AuthenticationMethods left after eliminating disabled methods";
    const UNSATISFIABLE: &str =
        "AuthenticationMethods cannot be satisfied by enabled authentication methods";

    #[test]
    fn a_list_naming_a_method_conchd_cannot_complete_is_skipped_whole_never_shortened() {
        let c = config(
            "PasswordAuthentication yes\n\
             AuthenticationMethods hostbased,publickey gssapi-with-mic,password publickey,password\n",
        );
        assert_eq!(authentication_methods(&c), Ok(vec![vec![Method::PublicKey, Method::Password]]));
        assert_eq!(check_authentication_methods(&c), Ok(()));
        // Without the last list, `hostbased,publickey` is not `publickey`: nothing is left.
        let c = config("AuthenticationMethods hostbased,publickey\n");
        assert_eq!(authentication_methods(&c), Err(NO_LISTS_LEFT.to_owned()));
        assert_eq!(check_authentication_methods(&c), Err(UNSATISFIABLE.to_owned()));
    }

    #[test]
    fn a_list_naming_a_method_switched_off_or_a_submethod_conchd_lacks_can_never_complete() {
        for text in [
            "PasswordAuthentication no\nAuthenticationMethods publickey,password\n",
            "PubkeyAuthentication no\nAuthenticationMethods publickey\n",
            "HostbasedAuthentication yes\nAuthenticationMethods hostbased\n",
            "GSSAPIAuthentication yes\nAuthenticationMethods gssapi-with-mic\n",
            "AuthenticationMethods none\n",
            "AuthenticationMethods publickey:ssh-ed25519\n",
            "UsePAM yes\nAuthenticationMethods keyboard-interactive:bsdauth\n",
            "UsePAM no\nKbdInteractiveAuthentication yes\nAuthenticationMethods keyboard-interactive\n",
        ] {
            let c = config(text);
            assert_eq!(authentication_methods(&c), Err(NO_LISTS_LEFT.to_owned()), "{text}");
            assert_eq!(check_authentication_methods(&c), Err(UNSATISFIABLE.to_owned()), "{text}");
        }
    }

    #[test]
    fn methods_switched_on_make_lists_as_userauth_takes_them() {
        let c = config(
            "PasswordAuthentication yes\n\
             AuthenticationMethods publickey,publickey password,publickey\n",
        );
        assert_eq!(
            authentication_methods(&c),
            Ok(vec![
                vec![Method::PublicKey, Method::PublicKey],
                vec![Method::Password, Method::PublicKey]
            ])
        );
        if cfg!(feature = "pam") {
            let c = config(
                "UsePAM yes\nKbdInteractiveAuthentication yes\n\
                 AuthenticationMethods publickey,keyboard-interactive:pam\n",
            );
            assert_eq!(
                authentication_methods(&c),
                Ok(vec![vec![Method::PublicKey, Method::KeyboardInteractive]])
            );
        }
    }

    #[test]
    fn any_or_no_authentication_methods_asks_for_no_list() {
        for text in ["", "AuthenticationMethods any\n"] {
            let c = config(text);
            assert_eq!(authentication_methods(&c), Ok(Vec::new()), "{text:?}");
            assert_eq!(check_authentication_methods(&c), Ok(()), "{text:?}");
            assert!(completes_a_list(&c, &[], Method::Password));
        }
    }

    #[test]
    fn a_login_under_lists_none_can_complete_is_completed_by_no_method() {
        let c = config("AuthenticationMethods hostbased,publickey\n");
        assert!(!completes_a_list(&c, &[], Method::PublicKey));
        let base = userauth::ServerConfig::new([0; 32]);
        assert_eq!(
            userauth_config(&c, &base).err(),
            Some("no authentication methods enabled".to_owned())
        );
    }
}

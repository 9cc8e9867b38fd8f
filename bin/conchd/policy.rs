//! The auth backend that applies `sshd_config` to each login: `Match` blocks evaluated for the
//! user and the connection, `AllowUsers`/`DenyUsers`/`AllowGroups`/`DenyGroups`,
//! `PermitRootLogin`, the methods enabled, `AuthorizedKeysFile` and `StrictModes`, then
//! `ForceCommand`, `PermitTTY`, `AllowTcpForwarding`, `PermitOpen`, `PermitListen` as the
//! login's restrictions, and `SetEnv` and `ExposeAuthInfo` in its sessions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::unistd::{getgrouplist, Gid, Group};
use twine::conch::config::sshd::{
    ConnectionInfo, PermitRootLogin, SshdConfig, SshdConfigFile, UserAccess,
};
use twine::conch::keys::authorized_keys::PermittedHostPort;
use twine::conch::keys::{FingerprintHash, PublicKey};
use twine::conch::server::{
    Account, AccountStatus, AuthBackend, AuthRequest, AuthorizedKeys, Chain, ConnectionFacts,
    ConnectionId, LoginRequest, Restrictions, SessionGrant,
};
use twine::conch::userauth::{Attempt, Decision, Method};
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
}

/// Whether accepting `method` after `done` completes one of the `AuthenticationMethods`
/// lists (as the userauth machine advances them), so that sshd logs "Accepted", not "Partial".
fn completes_a_list(config: &SshdConfig, done: &[Method], method: Method) -> bool {
    let mut lists: Vec<Vec<Method>> = config
        .authentication_methods
        .iter()
        .filter(|list| !list.eq_ignore_ascii_case("any"))
        .map(|list| {
            list.split(',')
                .filter_map(|m| Method::from_name(m.split(':').next().unwrap_or(m)))
                .collect()
        })
        .collect();
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
    /// The method decided (public keys are decided on the thread too).
    Decided(Decision<Restrictions>, Arc<SshdConfig>),
    /// Allowed so far: `inner` decides.
    Ask(Arc<SshdConfig>),
}

fn groups_of(account: &Account) -> Vec<String> {
    let Ok(name) = CString::new(account.name.clone()) else { return Vec::new() };
    let gids = getgrouplist(&name, Gid::from_raw(account.gid)).unwrap_or_default();
    gids.into_iter().filter_map(|gid| Group::from_gid(gid).ok().flatten().map(|g| g.name)).collect()
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
        groups: account.map(groups_of),
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
    let unenforced = unenforced(&config);
    if !unenforced.is_empty() {
        // A Match block asks for something conchd cannot enforce (ChrootDirectory, ...):
        // refuse rather than let the user in without it.
        return Verdict::Refused(format!(
            "User {request_user} refused: unsupported settings apply: {}",
            unenforced.join(", ")
        ));
    }
    let Some(account) = account else {
        return Verdict::Refused(format!("Invalid user {request_user} from {}", from_where(facts)));
    };
    let ip = facts.peer_ip();
    if let UserAccess::Refused(why) =
        config.user_access(request_user, &groups_of(&account), &ip, &ip)
    {
        return Verdict::Refused(format!("User {request_user} from {ip} {why}"));
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
    let keys = AuthorizedKeys::new()
        .with_files(config.authorized_keys_files.clone())
        .with_strict_modes(config.strict_modes)
        .with_trusted_user_ca_keys(config.trusted_user_ca_keys.clone())
        .with_authorized_principals_file(config.authorized_principals_file.clone())
        .with_authorized_principals_command(
            config.authorized_principals_command.clone(),
            config.authorized_principals_command_user.clone(),
        )
        .with_revoked_keys(config.revoked_keys.clone())
        .with_ca_signature_algorithms(
            config
                .ca_signature_algorithms
                .iter()
                .filter_map(|n| twine::conch::keys::SignatureAlgorithm::from_name(n))
                .collect(),
        );
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

/// The settings in force that conchd cannot enforce: the configuration's list, less
/// `TrustedUserCAKeys`, `AuthorizedPrincipalsFile`, `AuthorizedPrincipalsCommand` and
/// `RevokedKeys`, which the authorized_keys backend enforces.
pub(crate) fn unenforced(config: &SshdConfig) -> Vec<String> {
    let enforced = [
        "TrustedUserCAKeys ",
        "AuthorizedPrincipalsFile ",
        "AuthorizedPrincipalsCommand ",
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
            return self.inner.decide(request);
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
        let _end: Deferred<()> = verdict.then(move |result| {
            let verdict = result.unwrap_or_else(|e| Verdict::Refused(e.to_string()));
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
                log_decision(&request, &decision, partial);
                if counts {
                    let mut state = state.borrow_mut();
                    let slot = state.entry(facts.id).or_default();
                    slot.methods.push(request.attempt.method());
                    slot.config = config;
                    if let Attempt::PublicKey { certificate: Some(cert), .. } = &request.attempt {
                        slot.auth_info.push(format!("publickey {}", cert.to_openssh()));
                    } else if let Attempt::PublicKey { key, .. } = &request.attempt {
                        slot.auth_info.push(format!("publickey {}", key.to_openssh()));
                    } else {
                        slot.auth_info.push(method_text(&request.attempt).to_owned());
                    }
                }
                fired.callback(decision);
            };
            match verdict {
                Verdict::Refused(why) => {
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
                if config.expose_auth_info {
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

    fn close_session(&self, login: &LoginRequest) {
        self.inner.close_session(login);
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
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

fn log_decision(request: &AuthRequest, decision: &Decision<Restrictions>, partial: bool) {
    let from = from_where(&request.connection);
    let user = &request.user;
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
fn write_auth_info(user: &str, lines: &[String]) -> Result<PathBuf, String> {
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

//! The worker: the network side of a privilege-separated conchd, sandboxed before it
//! accepts (see the module above).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Barrier, Mutex, PoisonError};

use twine::conch::config::sshd::{SshdConfig, SshdConfigFile};
use twine::conch::keys::{HostKeySigner, PublicKey};
use twine::conch::server::privsep::{
    current_connection, hooks, MonitorClient, MonitorSigner, Reply, Request, UserRecord,
};
use twine::conch::server::session::SessionSpawner;
use twine::conch::server::session::SpawnPlan;
use twine::conch::server::{
    Account, AccountStatus, AuthBackend, AuthRequest, ConnectionFacts, ConnectionId,
    ConnectionSettings, LoginRequest, Offload, Restrictions, SessionGrant, UnixSessions,
    UserSettings,
};
use twine::conch::userauth::{Attempt, Decision, Method};
use twine::internet::error::Reason;
use twine::internet::process::{ChildFds, Process, ProcessProtocol, ProcessStatus};
use twine::internet::protocol::{HalfClose, Protocol, Transport};
use twine::internet::{Deferred, Reactor};

use super::control::{plan_to_wire, Frame, Frames};
use crate::server::{self, Counted, Hub};
use crate::Fatal;

type Client = MonitorClient<UnixStream>;

/// Pool threads started before the sandbox (which forbids starting more).
const POOL_THREADS: usize = 8;

/// Accounts and `authorized_keys` the monitor gave, for the policy's look-ups (which cannot
/// name their connection): filled just before each decision.
#[derive(Default)]
struct Cache {
    accounts: HashMap<String, Option<Account>>,
    /// Why the monitor says an account may not log in (locked, expired), by user.
    refusals: HashMap<String, Option<String>>,
    /// By user and, with an `AuthorizedKeysCommand`, the key offered (its blob): the lines
    /// the monitor gave.
    keys: HashMap<(String, Option<Vec<u8>>), Option<String>>,
    groups: HashMap<String, Vec<String>>,
    /// The monitor's answers about certificates: by user, client address and certificate
    /// blob, the login's restrictions (`None`: refused).
    certs: HashMap<CertKey, Option<Restrictions>>,
}

/// A certificate offered: the user, the client's address, the certificate's blob.
type CertKey = (String, String, Vec<u8>);

const CACHE_MAX: usize = 4096;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with_cache<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    let mut guard = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = guard.get_or_insert_with(Cache::default);
    if cache.accounts.len() > CACHE_MAX
        || cache.keys.len() > CACHE_MAX
        || cache.certs.len() > CACHE_MAX
        || cache.refusals.len() > CACHE_MAX
    {
        *cache = Cache::default();
    }
    f(cache)
}

fn account_of(record: UserRecord) -> Account {
    let shell = if record.shell.is_empty() { "/bin/sh".to_owned() } else { record.shell };
    Account {
        name: record.name,
        uid: record.uid,
        gid: record.gid,
        home: record.home.into(),
        shell: shell.into(),
    }
}

/// In a worker: `user`'s group names, as the monitor gave them (the worker cannot read the
/// group database). `None` outside a worker.
pub(crate) fn groups_of(user: &str) -> Option<Vec<String>> {
    if !super::is_worker() {
        return None;
    }
    Some(with_cache(|cache| cache.groups.get(user).cloned().unwrap_or_default()))
}

/// Asks the monitor for `user`, their groups when the configuration tests any (`groups`:
/// `AllowGroups`, `DenyGroups`, `Match Group`) and, for a public key (`keys`: `Some`, with the
/// key's blob when an `AuthorizedKeysCommand` is to print lines for it), their keys on
/// `connection`, in one round trip (for a user it does not know, the monitor answers no groups
/// and no keys).
fn prefetch(
    client: &Client,
    connection: ConnectionId,
    user: &str,
    groups: bool,
    keys: Option<Option<Vec<u8>>>,
) {
    let mut requests = vec![Request::LookupUser { connection, user: user.to_owned() }];
    if groups {
        requests.push(Request::LookupGroups { connection, user: user.to_owned() });
    }
    if let Some(key) = &keys {
        let user = user.to_owned();
        requests.push(Request::ReadAuthorizedKeys { connection, user, key: key.clone() });
    }
    let mut replies = match client.call_all(&requests) {
        Ok(replies) => replies.into_iter(),
        Err(err) => {
            log::error!("monitor: {err}");
            Vec::new().into_iter()
        }
    };
    let account = match replies.next() {
        Some(Reply::User(record)) => {
            let refused = record.as_ref().and_then(|r| r.refused.clone());
            with_cache(|cache| cache.refusals.insert(user.to_owned(), refused));
            record.map(account_of)
        }
        Some(other) => {
            log::debug!("monitor: LookupUser answered {other:?}");
            None
        }
        None => None,
    };
    let found = account.is_some();
    with_cache(|cache| cache.accounts.insert(user.to_owned(), account));
    let groups = match groups.then(|| replies.next()).flatten() {
        Some(Reply::Groups(names)) if found => names,
        _ => Vec::new(),
    };
    with_cache(|cache| cache.groups.insert(user.to_owned(), groups));
    let Some(key) = keys else { return };
    let text = match replies.next() {
        Some(Reply::AuthorizedKeys(Some(text))) if found => {
            Some(String::from_utf8_lossy(&text).into_owned())
        }
        _ => None,
    };
    with_cache(|cache| cache.keys.insert((user.to_owned(), key), text));
}

/// What a connection fetched from the monitor: its user and, for each key asked about (its
/// blob with an `AuthorizedKeysCommand`, else `None` for the files), the keys.
struct Fetched {
    user: String,
    keys: Vec<Option<Vec<u8>>>,
}

/// The monitor's check of the certificate `request` offers, if it offers one: the request,
/// and where its answer goes in the cache.
fn certificate_check(request: &AuthRequest) -> Option<(Request, CertKey)> {
    let (algorithm, certificate, signed) = match &request.attempt {
        Attempt::PublicKeyQuery { algorithm, certificate: Some(certificate), .. } => {
            (*algorithm, certificate, None)
        }
        Attempt::PublicKey {
            algorithm,
            certificate: Some(certificate),
            signature,
            host_bound,
            ..
        } => (*algorithm, certificate, Some((*host_bound, signature.clone()))),
        _ => return None,
    };
    let blob = certificate.to_blob().to_vec();
    let check = Request::AuthenticateCertificate {
        connection: request.connection.id,
        user: request.wire_user(),
        algorithm: twine::conch::keys::cert::cert_algorithm_name(algorithm).to_owned(),
        certificate: blob.clone(),
        host_bound: signed.as_ref().is_some_and(|(bound, _)| *bound),
        signature: signed.map(|(_, signature)| signature),
    };
    Some((check, (request.user.clone(), request.connection.peer_ip(), blob)))
}

/// Asks the monitor about a certificate (for a user it found), caching its answer for the
/// policy's certificate check ([`hooks::set_certificate_override`]).
fn ask_certificate(client: &Client, check: &Request, key: CertKey) {
    let found = with_cache(|cache| cache.accounts.get(&key.0).is_some_and(Option::is_some));
    let answer = if found {
        match client.call(check) {
            Ok(Reply::Authorized(restrictions)) => Some(restrictions),
            Ok(Reply::Failed(why)) => {
                log::info!("monitor refused the certificate: {why}");
                None
            }
            Ok(other) => {
                log::debug!("monitor: AuthenticateCertificate answered {other:?}");
                None
            }
            Err(err) => {
                log::error!("monitor: {err}");
                None
            }
        }
    } else {
        None
    };
    with_cache(|cache| cache.certs.insert(key, answer));
}

/// Runs `next` on the result of `first`, firing the returned Deferred with its result.
fn chain<T: 'static, U: 'static>(
    first: &Deferred<T>,
    out: Deferred<U>,
    next: impl FnOnce(Result<T, twine::internet::Error>) -> Deferred<U> + 'static,
) -> Deferred<U> {
    let fire = out.clone();
    drop(first.then(move |result| {
        drop(next(result).then(move |r| {
            fire.fire(r);
            Ok(())
        }));
        Ok(())
    }));
    out
}

/// The worker's auth backend: the policy, fed from the monitor, with every acceptance
/// verified by the monitor itself.
struct PrivsepAuth {
    inner: Rc<dyn AuthBackend>,
    client: Arc<Client>,
    /// The reactor's thread pool, for what may keep the monitor busy for long: password
    /// checks (a slow hash), and `authorized_keys` when an `AuthorizedKeysCommand` or
    /// `AuthorizedPrincipalsCommand` runs. Everything else asks the monitor inline (the
    /// worker's offload): a round trip is shorter than two thread hops.
    pool: Offload,
    /// Reading `authorized_keys` may run a command: on the pool.
    slow_keys: bool,
    /// Per connection: the user fetched from the monitor, and with which keys (one look-up
    /// per user however many keys the client offers; one per key with an
    /// `AuthorizedKeysCommand`, whose lines depend on the key).
    fetched: RefCell<HashMap<ConnectionId, Fetched>>,
    /// An `AuthorizedKeysCommand` may run (`Match` blocks included).
    key_command: bool,
    /// The whole configuration, for the `AuthenticationMethods` a login is under.
    file: Arc<SshdConfigFile>,
    /// Whether a public key that completes the login may be checked and the login told in one
    /// round trip: not with `UsePAM` (its account check asks the monitor between the two).
    pipeline_login: bool,
    /// Whether the configuration tests groups ([`SshdConfigFile::uses_groups`]): else the
    /// monitor is not asked for them.
    groups: bool,
    /// Per connection: the user and the monitor's answer to a `ConnectionAuthenticated` sent
    /// with the public key check, for [`open_session`](AuthBackend::open_session).
    told: Rc<RefCell<HashMap<ConnectionId, (String, Reply)>>>,
}

/// Whether accepting a signed public key for `user` on `connection` completes the login as
/// the worker's own steps will find: no `AuthenticationMethods` for the login in `file` (every
/// accepted method completes it), and an account the checks after the decision allow. Then
/// the login is told to the monitor with the key check ([`Request::ConnectionAuthenticated`]
/// after [`Request::AuthenticatePublicKey`], one round trip); the monitor stays the authority
/// (it refuses a login sent right after a check that failed).
fn completes_login(file: &SshdConfigFile, user: &str, connection: &ConnectionFacts) -> bool {
    let (account, refused) = with_cache(|cache| {
        let account = cache.accounts.get(user).cloned().flatten();
        (account, cache.refusals.get(user).cloned().flatten())
    });
    if account.is_none() || refused.is_some() {
        return false;
    }
    crate::policy::config_for(file, user, account.as_ref(), connection).is_ok_and(|config| {
        crate::policy::authentication_methods(&config).is_ok_and(|l| l.is_empty())
    })
}

impl AuthBackend for PrivsepAuth {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        // The monitor checks a password with a slow hash: keep it off the loop.
        let pooled;
        let request = if matches!(request.attempt, Attempt::Password { .. }) {
            let mut on_pool = request.clone();
            on_pool.offload = self.pool.clone();
            pooled = on_pool;
            &pooled
        } else {
            request
        };
        let (client, connection, user) =
            (Arc::clone(&self.client), request.connection.id, request.user.clone());
        let groups = self.groups;
        let keys =
            matches!(request.attempt, Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. });
        // With an `AuthorizedKeysCommand` the lines depend on the key offered (a certificate
        // is the monitor's to check whole).
        let blob = match &request.attempt {
            Attempt::PublicKeyQuery { key, certificate: None, .. }
            | Attempt::PublicKey { key, certificate: None, .. }
                if self.key_command =>
            {
                Some(key.to_blob().to_vec())
            }
            _ => None,
        };
        let known = self
            .fetched
            .borrow()
            .get(&connection)
            .is_some_and(|f| f.user == user && (!keys || f.keys.contains(&blob)));
        // A certificate is checked by the monitor alone (and, signed, verified there) before
        // the policy runs: the policy's certificate check reads the monitor's answer.
        let certificate = certificate_check(request);
        let fetched = if known && certificate.is_none() {
            request.offload.succeed(())
        } else {
            if !known {
                let mut fetched = self.fetched.borrow_mut();
                let entry = fetched
                    .entry(connection)
                    .or_insert_with(|| Fetched { user: user.clone(), keys: Vec::new() });
                if entry.user != user {
                    *entry = Fetched { user: user.clone(), keys: Vec::new() };
                }
                if keys {
                    entry.keys.push(blob.clone());
                }
            }
            let offload = if keys && self.slow_keys { &self.pool } else { &request.offload };
            offload.run(move || {
                if !known {
                    prefetch(&client, connection, &user, groups, keys.then_some(blob));
                }
                if let Some((check, key)) = certificate {
                    ask_certificate(&client, &check, key);
                }
            })
        };
        let (inner, request) = (Rc::clone(&self.inner), request.clone());
        let client = Arc::clone(&self.client);
        // The monitor reads the keys again to check the signed attempt.
        let check_on = if self.slow_keys { self.pool.clone() } else { request.offload.clone() };
        let told = Rc::clone(&self.told);
        let file = self.pipeline_login.then(|| Arc::clone(&self.file));
        chain(&fetched, request.offload.deferred(), move |_| {
            let decided = inner.decide(&request);
            if let Attempt::Password { password, .. } = &request.attempt {
                let invalid = with_cache(|cache| {
                    cache.accounts.get(&request.user).is_some_and(Option::is_none)
                });
                if invalid {
                    // sshd's monitor checks an invalid user's password too (against a fake
                    // account): the attempt counts for the source's penalty (`authfail`).
                    let told = Request::AuthenticatePassword {
                        connection,
                        user: request.user.clone(),
                        password: password.as_bytes().to_vec(),
                    };
                    let (client, offload) = (Arc::clone(&client), request.offload.clone());
                    let asked = offload.run(move || drop(client.call(&told)));
                    return chain(&asked, offload.deferred(), move |_| decided);
                }
            }
            let Attempt::PublicKey { algorithm, key, signature, host_bound, certificate } =
                request.attempt.clone()
            else {
                return decided;
            };
            if certificate.is_some() {
                // Verified by the monitor before the policy decided (`AuthenticateCertificate`
                // with the signature): the policy accepted only what the monitor accepted.
                return decided;
            }
            let offload = request.offload.clone();
            chain(&decided, request.offload.deferred(), move |decision| {
                // An acceptance and a partial success alike are the monitor's to verify; a
                // partial success never completes the login.
                let (restrictions, partial) = match decision {
                    Ok(Decision::Accept(r)) => (r, false),
                    Ok(Decision::PartialSuccess(r)) => (r, true),
                    Ok(other) => return offload.succeed(other),
                    Err(err) => {
                        crate::policy::settle_public_key(connection, false);
                        return Deferred::fail(offload.scheduler(), err);
                    }
                };
                let mut requests = vec![Request::AuthenticatePublicKey {
                    connection,
                    user: request.wire_user(),
                    algorithm: algorithm.name().to_owned(),
                    key_blob: key.to_blob(),
                    host_bound,
                    signature,
                }];
                // The last method: the login goes with the check (one round trip, not two).
                let login_user = request.user.clone();
                if !partial
                    && file.is_some_and(|file| {
                        completes_login(&file, &login_user, &request.connection)
                    })
                {
                    log::debug!("connection {connection}: the login goes with the key check");
                    requests.push(Request::ConnectionAuthenticated {
                        connection,
                        user: login_user.clone(),
                        method: Method::PublicKey.name().to_owned(),
                    });
                }
                let checked = check_on.run(move || {
                    let mut replies = match client.call_all(&requests) {
                        Ok(replies) => replies.into_iter(),
                        Err(err) => {
                            log::error!("monitor: {err}");
                            return (Decision::Reject, None);
                        }
                    };
                    match replies.next() {
                        Some(Reply::Done) if partial => {
                            (Decision::PartialSuccess(restrictions), replies.next())
                        }
                        Some(Reply::Done) => (Decision::Accept(restrictions), replies.next()),
                        other => {
                            log::info!("monitor refused the public key: {other:?}");
                            if let Some(login) = replies.next() {
                                log::debug!("monitor: the login sent with the check: {login:?}");
                            }
                            (Decision::Reject, None)
                        }
                    }
                });
                checked.then(move |checked| {
                    // Logged and counted by the policy only now: "Accepted" (or "Partial")
                    // once the monitor verified the key, else "Failed".
                    let confirmed = checked.as_ref().is_ok_and(|(decision, _)| {
                        matches!(decision, Decision::Accept(_) | Decision::PartialSuccess(_))
                    });
                    crate::policy::settle_public_key(connection, confirmed);
                    let (decision, login) = checked?;
                    if let Some(login) = login {
                        told.borrow_mut().insert(connection, (login_user, login));
                    }
                    Ok(decision)
                })
            })
        })
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        // Called for partial successes too: the monitor hears of the login when it completes
        // (`open_session`).
        // Keyboard-interactive is PAM's, through the monitor (`PamRelay`).
        if !matches!(
            login.method,
            Method::PublicKey | Method::Password | Method::KeyboardInteractive
        ) {
            return login.offload.succeed(AccountStatus::Denied {
                reason: format!(
                    "{} is not available with privilege separation",
                    login.method.name()
                ),
            });
        }
        let told = self.told.borrow().get(&login.connection.id).is_some_and(|(user, reply)| {
            *user == login.user && login.method == Method::PublicKey && *reply == Reply::Done
        });
        if told {
            // The login went with the key check, checked against the same account (the
            // monitor refuses a locked or expired one): the monitor's answer stands, whatever
            // another connection's look-up left in the cache since.
            return login.offload.succeed(AccountStatus::Allowed);
        }
        self.inner.check_account(login)
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        let method = login.method.name().to_owned();
        let (client, connection, user) =
            (Arc::clone(&self.client), login.connection.id, login.user.clone());
        // Told with the public key check already: the monitor's answer then.
        let pipelined = self.told.borrow_mut().remove(&connection);
        let told = match pipelined {
            Some((told_user, reply)) if told_user == user && login.method == Method::PublicKey => {
                login.offload.succeed(Ok(reply))
            }
            _ => login.offload.run(move || {
                let request = Request::ConnectionAuthenticated { connection, user, method };
                client.call(&request)
            }),
        };
        let (inner, login) = (Rc::clone(&self.inner), login.clone());
        let offload = login.offload.clone();
        chain(&told, offload.deferred(), move |told| match told {
            Ok(Ok(Reply::Done)) => inner.open_session(&login),
            other => {
                let why = format!("the monitor did not confirm the login: {other:?}");
                Deferred::fail(
                    login.offload.scheduler(),
                    twine::internet::Error::new(twine::internet::ErrorKind::PermissionDenied, why),
                )
            }
        })
    }

    fn signature_refused(&self, request: &AuthRequest) {
        self.inner.signature_refused(request);
    }

    fn close_session(&self, login: &LoginRequest) {
        self.inner.close_session(login);
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        self.fetched.borrow_mut().remove(&connection.id);
        self.told.borrow_mut().remove(&connection.id);
        self.inner.connection_ended(connection);
    }
}

/// The per-user settings of a worker whose `Match` blocks test the account (`Group`,
/// `Invalid-User`) or may refuse the connection (`RefuseConnection`): the user is looked up
/// from the monitor first, as sshd's worker asks its monitor when the user is named. The
/// sandbox has no user database, and the monitor must hear of the user before the
/// connection may end (it keeps the penalty, and refuses what follows a refusal). Then the
/// settings are read as without privilege separation, with that account.
struct LookedUpFirst {
    inner: Rc<dyn UserSettings>,
    client: Arc<Client>,
    /// Whether the configuration tests groups ([`SshdConfigFile::uses_groups`]).
    groups: bool,
}

impl UserSettings for LookedUpFirst {
    fn settings(
        &self,
        user: &str,
        facts: &Rc<ConnectionFacts>,
        current: &ConnectionSettings,
        offload: &Offload,
    ) -> Deferred<ConnectionSettings> {
        let (client, connection, name) = (Arc::clone(&self.client), facts.id, user.to_owned());
        let groups = self.groups;
        let fetched = offload.run(move || prefetch(&client, connection, &name, groups, None));
        let (inner, user, facts) = (Rc::clone(&self.inner), user.to_owned(), Rc::clone(facts));
        let (current, on) = (current.clone(), offload.clone());
        chain(&fetched, offload.deferred(), move |_| inner.settings(&user, &facts, &current, &on))
    }
}

/// The monitor's channel, for the worker's PAM relay (set before the server is configured).
#[cfg(feature = "pam")]
static PAM_CLIENT: std::sync::OnceLock<Arc<Client>> = std::sync::OnceLock::new();

/// In a worker with `UsePAM yes`: the backend that stands for PAM, relaying to the monitor.
/// `None` outside a worker (conchd runs PAM itself).
#[cfg(feature = "pam")]
pub(crate) fn pam_relay() -> Option<PamRelay> {
    PAM_CLIENT.get().map(|client| PamRelay { client: Arc::clone(client) })
}

/// PAM for a worker (`UsePAM yes`), run by the monitor: passwords (`AuthenticatePassword`,
/// which the monitor checks through PAM), keyboard-interactive conversations relayed round by
/// round (`PamStart`, `PamRespond`), and PAM's account check for key logins (`PamAccount`).
/// Sessions' PAM sessions are opened by the monitor's session keeper. Every call to the
/// monitor runs on the pool, never on the reactor.
#[cfg(feature = "pam")]
pub(crate) struct PamRelay {
    client: Arc<Client>,
}

/// How often a worker asks whether PAM has answered (`PamPoll`), and how many times at most
/// (five minutes: past that, the attempt fails).
#[cfg(feature = "pam")]
const PAM_POLL: std::time::Duration = std::time::Duration::from_millis(20);
#[cfg(feature = "pam")]
const PAM_POLLS: u32 = 15_000;

/// Sends `request` from the pool; while the monitor answers `PamPending`, asks again
/// (`PamPoll`) from a timer of the loop, holding no pool thread in between. `out` gets the
/// final reply.
#[cfg(feature = "pam")]
fn pam_call(
    client: Arc<Client>,
    offload: Offload,
    request: Request,
    out: Deferred<Result<Reply, String>>,
    polls: u32,
) {
    let connection = request.connection();
    let sender = Arc::clone(&client);
    let sent = offload.run(move || sender.call(&request).map_err(|e| e.to_string()));
    drop(sent.then(move |reply| {
        match reply {
            Ok(Ok(Reply::PamPending)) if polls < PAM_POLLS => {
                let scheduler = offload.scheduler();
                let poll = Request::PamPoll { connection };
                let again = move || pam_call(client, offload, poll, out, polls + 1);
                scheduler.call_later_boxed(PAM_POLL, Box::new(again));
            }
            Ok(Ok(Reply::PamPending)) => out.callback(Err("PAM did not answer in time".into())),
            Ok(answer) => out.callback(answer),
            Err(err) => out.callback(Err(err.to_string())),
        }
        Ok(())
    }));
}

#[cfg(feature = "pam")]
impl PamRelay {
    /// Relays `request`; the monitor's answer as the userauth layer takes it.
    fn relay(&self, offload: &Offload, request: Request) -> Deferred<Decision<Restrictions>> {
        let name = request.name();
        let out = offload.deferred();
        pam_call(Arc::clone(&self.client), offload.clone(), request, out.clone(), 0);
        out.then(move |reply| {
            Ok(match reply? {
                Ok(Reply::PamPrompts(info)) => Decision::InfoRequest(info),
                Ok(Reply::Done) => Decision::Accept(Restrictions::default()),
                Ok(Reply::Failed(why) | Reply::Unsupported(why)) => {
                    log::debug!("monitor: PAM refused: {why}");
                    Decision::Reject
                }
                Ok(other) => {
                    log::error!("monitor: {name} answered {other:?}");
                    Decision::Reject
                }
                Err(err) => {
                    log::error!("monitor: {err}");
                    Decision::Reject
                }
            })
        })
    }
}

#[cfg(feature = "pam")]
impl AuthBackend for PamRelay {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let connection = request.connection.id;
        let user = request.user.clone();
        let relayed = match &request.attempt {
            Attempt::Password { password, new_password: None } => Request::AuthenticatePassword {
                connection,
                user,
                password: password.as_bytes().to_vec(),
            },
            Attempt::KeyboardInteractive { .. } => Request::PamStart { connection, user },
            Attempt::KeyboardInteractiveResponses { responses, .. } => {
                let responses: Vec<String> = responses
                    .iter()
                    .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
                    .collect();
                // The monitor takes answers as long as passwords (a longer one would be a
                // malformed request, and cost this worker its life): refused here.
                if responses.iter().any(|r| r.len() > twine::conch::userauth::MAX_PASSWORD_LEN) {
                    log::info!("connection {connection}: an answer too long for PAM refused");
                    return request.offload.succeed(Decision::Reject);
                }
                Request::PamRespond { connection, responses }
            }
            // A password change cannot be relayed: the monitor refuses expired passwords.
            _ => return request.offload.succeed(Decision::Reject),
        };
        self.relay(&request.offload, relayed)
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        if matches!(login.method, Method::Password | Method::KeyboardInteractive) {
            // The monitor ran pam_acct_mgmt in the transaction that verified the user.
            return login.offload.succeed(AccountStatus::Allowed);
        }
        let request =
            Request::PamAccount { connection: login.connection.id, user: login.user.clone() };
        let (id, ip, user) = (login.connection.id, login.connection.peer_ip(), login.user.clone());
        let out = login.offload.deferred();
        pam_call(Arc::clone(&self.client), login.offload.clone(), request, out.clone(), 0);
        out.then(move |reply| {
            Ok(match reply? {
                Ok(Reply::Done) => AccountStatus::Allowed,
                Ok(Reply::Failed(reason) | Reply::Unsupported(reason)) => {
                    log::info!("connection {id} from {ip}: PAM refused account {user}: {reason}");
                    AccountStatus::Denied { reason }
                }
                other => AccountStatus::Denied { reason: format!("monitor: {other:?}") },
            })
        })
    }
}

/// Starts sessions through the monitor and serves the descriptors it passes back.
struct MonitorSpawner {
    reactor: Reactor,
    client: Arc<Client>,
}

struct Boxed(Box<dyn ProcessProtocol>);

impl ProcessProtocol for Boxed {
    fn connection_made(&mut self, process: Process) {
        self.0.connection_made(process);
    }
    fn out_received(&mut self, data: &[u8]) {
        self.0.out_received(data);
    }
    fn err_received(&mut self, data: &[u8]) {
        self.0.err_received(data);
    }
    fn in_connection_lost(&mut self) {
        self.0.in_connection_lost();
    }
    fn out_connection_lost(&mut self) {
        self.0.out_connection_lost();
    }
    fn err_connection_lost(&mut self) {
        self.0.err_connection_lost();
    }
    fn process_exited(&mut self, status: ProcessStatus) {
        self.0.process_exited(status);
    }
    fn process_ended(&mut self, status: ProcessStatus) {
        self.0.process_ended(status);
    }
}

type Slot = Rc<RefCell<Option<Rc<dyn Transport>>>>;

/// The worker's end of a session's control socket.
struct Control {
    process: Rc<RefCell<Option<Process>>>,
    slot: Slot,
    frames: Frames,
}

impl Control {
    fn ended(&self, status: ProcessStatus) {
        if let Some(process) = self.process.borrow_mut().take() {
            process.foreign_exited(status);
        }
    }
}

impl Protocol for Control {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        *self.slot.borrow_mut() = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        for frame in self.frames.feed(data).unwrap_or_default() {
            if let Frame::Ended(status) = frame {
                self.ended(status);
            }
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::LoseConnection
    }

    fn connection_lost(&mut self, _reason: Reason) {
        self.slot.borrow_mut().take();
        self.ended(ProcessStatus::Unknown);
    }
}

impl SessionSpawner for MonitorSpawner {
    fn spawn(
        &self,
        plan: SpawnPlan,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Process, twine::internet::Error> {
        use twine::internet::{Error, ErrorKind};
        let connection = current_connection()
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "no connection to start for"))?;
        let pty = plan.pty.is_some();
        let request = Request::SpawnSession { connection, plan: plan_to_wire(&plan) };
        let (reply, fds) = self
            .client
            .call_with_fds(&request)
            .map_err(|e| Error::new(ErrorKind::Other, format!("monitor: {e}")))?;
        let (pid, tty) = match reply {
            Reply::SessionSpawned { pid, tty, .. } => (pid, tty),
            Reply::Failed(why) | Reply::Unsupported(why) => {
                return Err(Error::new(ErrorKind::Other, why))
            }
            other => return Err(Error::new(ErrorKind::Other, format!("monitor: {other:?}"))),
        };
        let mut fds = fds.into_iter();
        let short = || Error::new(ErrorKind::Other, "monitor passed too few descriptors");
        let control = fds.next().ok_or_else(short)?;
        let child = if pty {
            ChildFds::Pty { controller: fds.next().ok_or_else(short)?, tty: tty.map(Into::into) }
        } else {
            ChildFds::Pipes {
                stdin: fds.next().ok_or_else(short)?,
                stdout: fds.next().ok_or_else(short)?,
                stderr: fds.next().ok_or_else(short)?,
            }
        };
        let slot: Slot = Rc::default();
        let signaller = Rc::clone(&slot);
        let process = self.reactor.adopt_foreign_process(
            pid,
            child,
            Boxed(protocol),
            move |signal, group| match signaller.borrow().as_ref() {
                Some(transport) => {
                    transport.write(&Frame::Kill { signal, group }.encode());
                    Ok(())
                }
                None => Err(Error::new(ErrorKind::InvalidInput, "the session is gone")),
            },
        )?;
        let held = Rc::new(RefCell::new(Some(process.clone())));
        let control_protocol = Control { process: held, slot, frames: Frames::default() };
        self.reactor.adopt_fd(control, control_protocol)?;
        Ok(process)
    }
}

/// The worker's accepting state: its listeners, its open connections, whether it drains.
struct Accepting {
    reactor: Reactor,
    watches: RefCell<Vec<twine::internet::reactor::FdWatch>>,
    live: std::cell::Cell<usize>,
    /// `-d` (one connection, then exit) or `SIGHUP`: no new connections; the worker ends
    /// with its last one.
    draining: std::cell::Cell<bool>,
    single: bool,
    /// `TCPKeepAlive`.
    keep_alive: bool,
}

impl Accepting {
    fn drain(&self) {
        self.draining.set(true);
        for watch in self.watches.borrow_mut().drain(..) {
            watch.stop();
        }
        if self.live.get() == 0 {
            self.reactor.stop();
        }
    }
}

/// One connection, announced to the monitor before it is served and after it ends.
struct Tracked {
    inner: Counted,
    id: ConnectionId,
    client: Arc<Client>,
    accepting: Rc<Accepting>,
}

impl Protocol for Tracked {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.inner.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }

    // The server protocol reads the socket straight into its packet reader: pass that on.
    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        self.inner.receive_into(size_hint, fill)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.inner.read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        self.inner.write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.inner.connection_lost(reason);
        // A notice: nothing to wait for (the next call checks its reply).
        if let Err(err) = self.client.notify(&Request::ConnectionClosed { connection: self.id }) {
            log::error!("monitor: {err}");
        }
        let live = self.accepting.live.get().saturating_sub(1);
        self.accepting.live.set(live);
        if live == 0 && self.accepting.draining.get() {
            self.accepting.reactor.stop();
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    hub: &Rc<Hub>,
    accepting: &Rc<Accepting>,
    client: &Arc<Client>,
) {
    let reactor = &accepting.reactor;
    loop {
        if accepting.draining.get() {
            return;
        }
        let (stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                log::error!("accept: {err}");
                return;
            }
        };
        server::prepare_accepted(&stream, accepting.keep_alive);
        hub.count_one();
        let inner = hub.protocol();
        let id = inner.id();
        // One round trip: the monitor hears of the connection, its peer (which it may refuse:
        // its source's penalty, MaxStartups, PerSourceMaxStartups, over every worker) and our
        // end, in that order (each is valid whatever the one before answered).
        let mut requests = vec![
            Request::ConnectionOpened { connection: id },
            Request::ConnectionPeer { connection: id, address: peer },
        ];
        if let Ok(local) = stream.local_addr() {
            requests.push(Request::ConnectionLocalAddress { connection: id, address: local });
        }
        let replies = match client.call_all(&requests) {
            Ok(replies) => replies,
            Err(err) => {
                log::error!("monitor: {err}");
                return;
            }
        };
        let refusal = match replies.first().zip(replies.get(1)) {
            Some((Reply::Done, Reply::Done)) => None,
            Some((Reply::Done, Reply::Failed(why))) => {
                match crate::startups::Dropped::from_wire(why) {
                    // sshd's line; the client is told, as sshd does, unless past MaxStartups.
                    Some(dropped) => {
                        if dropped.reason != crate::startups::MAX_STARTUPS {
                            let _ = std::io::Write::write(&mut &stream, crate::penalties::REFUSAL);
                        }
                        Some(format!(
                            "drop connection #{} from [{}]:{} on {} {}",
                            dropped.startups,
                            peer.ip(),
                            peer.port(),
                            crate::penalties::local_text(&stream),
                            dropped.reason
                        ))
                    }
                    None => Some(format!("refused connection from {}: {why}", peer.ip())),
                }
            }
            Some((Reply::Failed(why), _)) => Some(format!("refused connection: {why}")),
            other => {
                log::error!("monitor: ConnectionOpened and ConnectionPeer answered {other:?}");
                return;
            }
        };
        if let Some(why) = refusal {
            log::info!("{why}");
            let _ = client.call(&Request::ConnectionClosed { connection: id });
            // Dropped unserved: its count goes with it.
            drop(inner);
            continue;
        }
        accepting.live.set(accepting.live.get() + 1);
        let tracked =
            Tracked { inner, id, client: Arc::clone(client), accepting: Rc::clone(accepting) };
        if let Err(err) = reactor.adopt_fd(OwnedFd::from(stream), tracked) {
            log::error!("cannot serve an accepted connection: {err}");
        }
        if accepting.single {
            // Not from inside the listener's own handler: on the next turn of the loop.
            accepting.draining.set(true);
            let later = Rc::clone(accepting);
            reactor.call_soon(move || later.drain());
            return;
        }
    }
}

/// Asks the monitor for a listening socket (`ListenAgent`, `ListenPrivileged`).
fn listening(
    client: &Client,
    request: &Request,
) -> std::io::Result<(Option<std::path::PathBuf>, OwnedFd)> {
    let (reply, fds) = client
        .call_with_fds(request)
        .map_err(|e| std::io::Error::other(format!("monitor: {e}")))?;
    match reply {
        Reply::Listening { path, .. } => {
            let fd = fds
                .into_iter()
                .next()
                .ok_or_else(|| std::io::Error::other("monitor passed no socket"))?;
            Ok((path.map(Into::into), fd))
        }
        Reply::Failed(why) | Reply::Unsupported(why) => Err(std::io::Error::other(why)),
        other => Err(std::io::Error::other(format!("monitor: {other:?}"))),
    }
}

/// The unprivileged identity: `sshd` if it exists, else `nobody`.
fn sandbox_user() -> Result<(u32, u32), Fatal> {
    for name in ["sshd", "nobody"] {
        if let Ok(Some(user)) = nix::unistd::User::from_name(name) {
            if !user.uid.is_root() {
                return Ok((user.uid.as_raw(), user.gid.as_raw()));
            }
        }
    }
    Err(Fatal("privsep: no unprivileged user (sshd or nobody)".into(), 255))
}

/// Starts every pool thread now: the sandbox forbids starting threads later.
fn warm_pool(reactor: &Reactor) {
    reactor.set_thread_pool_limits(POOL_THREADS, 1024);
    let barrier = Arc::new(Barrier::new(POOL_THREADS + 1));
    for _ in 0..POOL_THREADS {
        let barrier = Arc::clone(&barrier);
        drop(reactor.defer_to_thread(move || {
            barrier.wait();
        }));
    }
    barrier.wait();
}

/// The worker's life: set up, sandbox, serve.
pub(crate) fn run(
    opts: &crate::cli::Options,
    file: &Arc<SshdConfigFile>,
    startup: &SshdConfig,
) -> Result<(), Fatal> {
    let fatal =
        |what: &str, e: &dyn std::fmt::Display| Fatal(format!("privsep worker: {what}: {e}"), 255);
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // Before any thread starts, so the pool's threads share the CPU (see `affinity`).
    if let Some(cpu) = std::env::var(super::CPU_VAR).ok().and_then(|c| c.parse().ok()) {
        super::affinity::pin_current_thread(cpu);
    }
    // The parent-death signal only fires for a death after it is set: a monitor that died
    // before (or while credentials changed) is seen as a new parent.
    let monitor_pid = std::env::var(super::MONITOR_PID_VAR)
        .ok()
        .and_then(|pid| pid.parse().ok())
        .map_or_else(nix::unistd::getppid, nix::unistd::Pid::from_raw);
    if nix::unistd::getppid() != monitor_pid {
        return Err(Fatal("privsep worker: the monitor is gone".into(), 255));
    }
    let listeners: usize = std::env::var(super::LISTENERS_VAR)
        .ok()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Fatal("privsep worker: no listener count".into(), 255))?;
    let mut fds = twine::internet::sandbox::take_inherited_fds(super::MONITOR_FD, 1 + listeners)
        .map_err(|e| fatal("inherited descriptors", &e))?
        .into_iter();
    let monitor = fds.next().ok_or_else(|| Fatal("privsep worker: no monitor".into(), 255))?;
    let client = Arc::new(MonitorClient::new(UnixStream::from(monitor)));
    #[cfg(feature = "pam")]
    let _ = PAM_CLIENT.set(Arc::clone(&client));
    let mut host_keys: Vec<Arc<dyn HostKeySigner>> = Vec::new();
    for blob in std::env::var(super::HOST_KEYS_VAR).unwrap_or_default().split(',') {
        let Some(key) = super::unhex(blob).and_then(|b| PublicKey::from_blob(&b).ok()) else {
            continue;
        };
        host_keys.push(Arc::new(MonitorSigner::new(key, Arc::clone(&client))));
    }
    if host_keys.is_empty() {
        return Err(Fatal("privsep worker: no host keys".into(), 255));
    }
    hooks::set_lookup_override(|name| {
        Ok(with_cache(|cache| cache.accounts.get(name).cloned().flatten()))
    });
    hooks::set_account_delegate(|name| {
        with_cache(|cache| cache.refusals.get(name).cloned().flatten())
    });
    let key_command = file.runs_authorized_keys_command();
    hooks::set_keys_override(move |account, key| {
        let blob = key_command.then(|| key.to_blob().to_vec());
        with_cache(|cache| cache.keys.get(&(account.name.clone(), blob)).cloned().flatten())
    });
    hooks::set_certificate_override(|user, certificate, peer_ip| {
        let key = (user.to_owned(), peer_ip.to_owned(), certificate.to_blob().to_vec());
        with_cache(|cache| cache.certs.get(&key).cloned().flatten())
            .map_or(Decision::Reject, Decision::Accept)
    });
    let delegate_client = Arc::clone(&client);
    hooks::set_password_delegate(move |connection, user, password| {
        let request = Request::AuthenticatePassword {
            connection,
            user: user.to_owned(),
            password: password.as_bytes().to_vec(),
        };
        matches!(delegate_client.call(&request), Ok(Reply::Done))
    });

    let resolver_client = Arc::clone(&client);
    hooks::set_resolver_override(move |connection, host, port| {
        let connection = connection.ok_or_else(|| std::io::Error::other("no connection"))?;
        let request = Request::ResolveHost { connection, host: host.to_owned(), port };
        match resolver_client.call(&request) {
            Ok(Reply::Addresses(addresses)) => Ok(addresses),
            Ok(other) => Err(std::io::Error::other(format!("monitor: {other:?}"))),
            Err(err) => Err(std::io::Error::other(err.to_string())),
        }
    });
    let agent_client = Arc::clone(&client);
    hooks::set_agent_listener_override(move |connection| {
        let connection = connection.ok_or_else(|| std::io::Error::other("no connection"))?;
        listening(&agent_client, &Request::ListenAgent { connection })
            .and_then(|(path, fd)| Ok((path.ok_or_else(|| std::io::Error::other("no path"))?, fd)))
    });
    let bind_client = Arc::clone(&client);
    hooks::set_privileged_listener_override(move |connection, address| {
        let connection = connection.ok_or_else(|| std::io::Error::other("no connection"))?;
        listening(&bind_client, &Request::ListenPrivileged { connection, address })
            .map(|(_, fd)| fd)
    });
    let unix_client = Arc::clone(&client);
    hooks::set_streamlocal_listener_override(move |connection, path| {
        use std::os::unix::ffi::OsStrExt;
        let connection = connection.ok_or_else(|| std::io::Error::other("no connection"))?;
        let path = path.as_os_str().as_bytes().to_vec();
        listening(&unix_client, &Request::ListenStreamlocal { connection, path }).map(|(_, fd)| fd)
    });
    let connect_client = Arc::clone(&client);
    hooks::set_streamlocal_connector_override(move |connection, path| {
        use std::os::unix::ffi::OsStrExt;
        let connection = connection.ok_or_else(|| std::io::Error::other("no connection"))?;
        let path = path.as_os_str().as_bytes().to_vec();
        listening(&connect_client, &Request::ConnectStreamlocal { connection, path })
            .map(|(_, fd)| fd)
    });
    // Banner files are read now: the empty root has none of them.
    crate::policy::preload_banners(file);
    // No crate::penalties: the monitor keeps the sources' limits and penalties for every
    // worker (crate::startups).
    let stack = Arc::new(server::stack_config(startup, host_keys).map_err(|e| fatal("stack", &e))?);
    let reactor = Reactor::new().map_err(|e| fatal("reactor", &e))?;
    let shared = server::Shared::new(&reactor);
    let (mut config, logins) =
        server::server_config(&reactor, file, startup, stack, Arc::new(AtomicUsize::new(0)));
    config.auth = Rc::new(PrivsepAuth {
        inner: Rc::clone(&config.auth),
        client: Arc::clone(&client),
        pool: Offload::reactor(&reactor),
        // A command set only in a `Match` block counts too: it may run for any connection.
        slow_keys: file.runs_key_commands(),
        fetched: RefCell::default(),
        key_command: file.runs_authorized_keys_command(),
        file: Arc::clone(file),
        pipeline_login: !(cfg!(feature = "pam") && startup.use_pam),
        groups: file.uses_groups(),
        told: Rc::default(),
    });
    if file.matches_on_account() || file.refuses_connections() {
        if let Some(inner) = config.user_settings.take() {
            let client = Arc::clone(&client);
            let groups = file.uses_groups();
            config.user_settings = Some(Rc::new(LookedUpFirst { inner, client, groups }));
        }
    }
    let spawner = MonitorSpawner { reactor: reactor.clone(), client: Arc::clone(&client) };
    let mut sessions =
        UnixSessions::with_spawner(spawner).with_user_environment(startup.permit_user_environment);
    for s in &startup.subsystems {
        let command = if s.command == "internal-sftp" {
            s.args.replacen("internal-sftp", crate::policy::SFTP_SERVER, 1)
        } else {
            s.args.clone()
        };
        sessions = sessions.with_subsystem(s.name.clone(), command);
    }
    config.sessions = Rc::new(sessions);
    // The policy's "blocking" work here is the monitor's requests (and look-ups in what it
    // answered): inline, without two thread hops per request. PrivsepAuth keeps what may be
    // slow on the pool.
    let inline = Offload::inline(reactor.scheduler());
    let hub = Hub::with_offload(&reactor, config, logins, shared, inline);
    let accepting = Rc::new(Accepting {
        reactor: reactor.clone(),
        watches: RefCell::new(Vec::new()),
        live: std::cell::Cell::new(0),
        draining: std::cell::Cell::new(false),
        single: opts.debug > 0,
        keep_alive: startup.tcp_keep_alive,
    });
    let inetd = std::env::var_os(super::INETD_VAR).is_some();
    if inetd {
        let (Some(input), Some(output)) = (fds.next(), fds.next()) else {
            return Err(Fatal("privsep worker: no inetd descriptors".into(), 255));
        };
        serve_inetd(input, output, &hub, &accepting, &client)?;
    }
    for fd in fds {
        let listener = TcpListener::from(fd);
        listener.set_nonblocking(true).map_err(|e| fatal("listener", &e))?;
        let raw = listener.as_raw_fd();
        let (hub, state, client) = (Rc::clone(&hub), Rc::clone(&accepting), Arc::clone(&client));
        let watch = reactor
            // The workers share the listener: a connection wakes one of them, not all.
            .watch_shared_fd(raw, move |_| accept_all(&listener, &hub, &state, &client))
            .map_err(|e| fatal("watch a listener", &e))?;
        accepting.watches.borrow_mut().push(watch);
    }
    // The monitor's SIGHUP: stop accepting (the listeners close) and end with the last
    // connection, as a restarted sshd's old children do.
    let drain = Rc::clone(&accepting);
    reactor
        .observe_signal(twine::internet::reactor::Signal::Hangup, move || drain.drain())
        .map_err(|e| fatal("signals", &e))?;
    let (uid, gid) = sandbox_user()?;
    warm_pool(&reactor);
    // `expiry-time=` is read in local time: the zone files are out of sight in the chroot.
    twine::conch::server::auth::read_local_time_zone();
    let sandbox = twine::internet::sandbox::Sandbox {
        uid,
        gid,
        chroot: std::path::Path::new(super::CHROOT_DIR),
    };
    use twine::internet::sandbox as sb;
    sb::enter_empty_chroot(sandbox.chroot).map_err(|e| fatal("chroot", &e))?;
    sb::drop_privileges(uid, gid).map_err(|e| fatal("drop privileges", &e))?;
    if opts.log_file.is_none() {
        sb::limit_resources().map_err(|e| fatal("rlimit", &e))?;
    }
    // Changing credentials cleared the parent-death signal: ask again.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != monitor_pid {
        return Err(Fatal("privsep worker: the monitor is gone".into(), 255));
    }
    sb::no_new_privs().map_err(|e| fatal("no_new_privs", &e))?;
    sb::install_worker_seccomp().map_err(|e| fatal("seccomp", &e))?;
    log::debug!("privsep worker {} sandboxed as uid {uid}", std::process::id());
    let result = reactor.run().map_err(|e| fatal("reactor", &e));
    accepting.watches.borrow_mut().clear();
    if inetd && result.is_ok() && hub.logins.total.get() == 0 {
        // sshd ends with 255 when the connection failed before a login.
        return Err(Fatal(String::new(), 255));
    }
    result
}

/// Inetd mode (`-i`): serves the one connection on `input` and `output` (the monitor's
/// standard input and output), announced to the monitor as an accepted one is; the worker
/// ends with it.
fn serve_inetd(
    input: OwnedFd,
    output: OwnedFd,
    hub: &Rc<Hub>,
    accepting: &Rc<Accepting>,
    client: &Arc<Client>,
) -> Result<(), Fatal> {
    let refused = |what: String| Fatal(format!("privsep worker: {what}"), 255);
    server::keep_alive_inetd(&input, accepting.keep_alive);
    hub.count_one();
    let inner = hub.protocol();
    let id = inner.id();
    match client.call(&Request::ConnectionOpened { connection: id }) {
        Ok(Reply::Done) => {}
        other => return Err(refused(format!("monitor: ConnectionOpened answered {other:?}"))),
    }
    // Over a socket (inetd proper) the peer is known; over pipes (a ProxyCommand) it is not.
    let socket = |fd: &OwnedFd| {
        let stream = std::net::TcpStream::from(fd.try_clone().ok()?);
        let addresses = (stream.peer_addr().ok()?, stream.local_addr().ok()?);
        // The duplicate closes; the connection stays open through `fd`.
        Some(addresses)
    };
    if let Some((peer, local)) = socket(&input) {
        let request = Request::ConnectionPeer { connection: id, address: peer };
        match client.call(&request) {
            Ok(Reply::Done) => {}
            other => return Err(refused(format!("connection from {}: {other:?}", peer.ip()))),
        }
        let request = Request::ConnectionLocalAddress { connection: id, address: local };
        if let Err(err) = client.call(&request) {
            log::error!("monitor: {err}");
        }
    }
    accepting.live.set(accepting.live.get() + 1);
    accepting.draining.set(true);
    let tracked =
        Tracked { inner, id, client: Arc::clone(client), accepting: Rc::clone(accepting) };
    accepting
        .reactor
        .adopt_fd_pair(input, output, tracked)
        .map_err(|e| refused(format!("cannot serve the connection: {e}")))?;
    Ok(())
}

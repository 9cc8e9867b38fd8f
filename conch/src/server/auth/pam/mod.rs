//! [`PamBackend`]: passwords, keyboard-interactive, account checks and login sessions through
//! PAM, as sshd does with `UsePAM yes` (cargo feature `pam`).

mod blocking;
mod reply;
mod session;
mod transaction;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::mpsc;

use twine_core::Deferred;

pub use self::blocking::{PamConversation, PamDriver, PamPending};
pub use self::session::{PamSession, PamSessionSetup};

use self::reply::ask;
use self::transaction::{Answers, Command, Round, Setup, Threads, Transaction, Verdict};
use super::{
    AccountStatus, AuthBackend, AuthRequest, ConnectionFacts, ConnectionId, LoginRequest,
    SessionGrant,
};
use crate::server::Restrictions;
use crate::userauth::{Attempt, Decision, InfoRequest, Password, RequestId};

/// Authentication, account management and sessions by PAM (`pam_start(service, user)` and
/// the modules of `/etc/pam.d/<service>`).
///
/// - **password**: one PAM transaction per attempt, answering PAM's hidden prompts with the
///   password, then `pam_acct_mgmt`. A password PAM says has expired is answered with a
///   change request ([`Decision::ChangePassword`]) and changed with `pam_chauthtok` when the
///   client sends the new one (or rejected, [`with_password_change(false)`]).
/// - **keyboard-interactive**: a conversation with PAM relayed to the client, one round per
///   prompt, with the modules' messages since the last prompt as the round's instruction (a
///   last round without prompts shows what PAM said at the end). An expired password is
///   changed within the conversation, as sshd does.
/// - **account checks** ([`check_account`](AuthBackend::check_account)): `pam_acct_mgmt` for
///   a user let in some other way (a public key); expired accounts are refused and logged.
/// - **sessions**: `pam_setcred(PAM_ESTABLISH_CRED)` and `pam_open_session` in
///   [`open_session`](AuthBackend::open_session), whose PAM environment (`pam_getenvlist`) is
///   added to the sessions; `pam_close_session` and `pam_setcred(PAM_DELETE_CRED)` when the
///   login ends. Modules that act on the calling process (`pam_loginuid`, `pam_limits`) act
///   on this server and on a thread that is not its main one, which `pam_loginuid` refuses:
///   a server running as root opens each session in a process of its own instead
///   ([`PamSession`], sshd's way) and turns these off with
///   [`with_sessions(false)`](Self::with_sessions).
///
/// `PAM_RHOST` is the client's address, `PAM_RUSER` the login name (SSH names no remote
/// user), `PAM_TTY` is `ssh` as with sshd, and `SSH_CONNECTION` is in the PAM environment.
///
/// Every transaction runs on a thread of its own that holds the PAM handle from `pam_start`
/// to `pam_end`, so slow modules hold up neither the loop nor its thread pool. The thread of
/// the transaction that let a user in lives until that login's session closes; the others end
/// with their attempt, and all of a connection's end when it does (a conversation waiting for
/// a client that left fails at once). At most [`max_transactions`](Self::with_max_transactions)
/// run at a time; beyond that, attempts are refused and logged.
///
/// The backend adds no delay of its own: a failure takes the time the PAM stack takes
/// (including any delay its modules ask for), and userauth's failure delay pads every
/// rejection alike. As with sshd, a user the system does not know (and root, when
/// [root passwords](Self::with_root_passwords) are off) still goes through PAM, with a wrong
/// password in place of the client's, and is never let in whatever PAM says.
///
/// ```no_run
/// use twine_conch::server::{AuthorizedKeys, Chain, PamBackend};
///
/// // `UsePAM yes`: keys first, then PAM's password and keyboard-interactive; PAM's account
/// // checks and sessions apply to every login.
/// let auth = Chain::new().with(AuthorizedKeys::new()).with(PamBackend::new());
/// # let _ = auth;
/// ```
///
/// [`with_password_change(false)`]: Self::with_password_change
#[derive(Clone)]
pub struct PamBackend {
    inner: Rc<Inner>,
}

struct Inner {
    config: Config,
    threads: Threads,
    connections: RefCell<HashMap<ConnectionId, Connection>>,
}

#[derive(Clone, Debug)]
struct Config {
    service: String,
    password: bool,
    keyboard_interactive: bool,
    password_change: bool,
    empty_passwords: bool,
    root_passwords: bool,
    sessions: bool,
    max_transactions: usize,
}

/// What the backend keeps for one connection.
#[derive(Default)]
struct Connection {
    /// The transaction of the user who got in (or whose account was checked), kept for the
    /// account check and the session.
    login: Option<Transaction>,
    /// A keyboard-interactive conversation waiting for the client's answers.
    conversation: Option<Conversation>,
}

/// A keyboard-interactive conversation between rounds.
struct Conversation {
    /// The request that started it.
    id: RequestId,
    transaction: Transaction,
    /// Where the client's answers go (the thread waits on the other end).
    answers: mpsc::Sender<Answers>,
    /// PAM's verdict, when it has decided and a last round shows its final messages.
    verdict: Option<Verdict>,
}

impl PamBackend {
    /// The PAM service sshd uses, and ours by default.
    pub const DEFAULT_SERVICE: &'static str = "sshd";

    /// How many PAM transactions may run at once by default (each on its thread).
    pub const DEFAULT_MAX_TRANSACTIONS: usize = 256;

    /// A backend for the service `sshd`, with password and keyboard-interactive
    /// authentication, password changes, and no empty passwords.
    pub fn new() -> Self {
        let config = Config {
            service: Self::DEFAULT_SERVICE.to_owned(),
            password: true,
            keyboard_interactive: true,
            password_change: true,
            empty_passwords: false,
            root_passwords: true,
            sessions: true,
            max_transactions: Self::DEFAULT_MAX_TRANSACTIONS,
        };
        Self::from_config(config)
    }

    /// Uses the PAM service `service` (`/etc/pam.d/<service>`).
    #[must_use]
    pub fn with_service(self, service: impl Into<String>) -> Self {
        self.reconfigure(|config| config.service = service.into())
    }

    /// Whether the password method goes to PAM (`PasswordAuthentication`; default yes).
    #[must_use]
    pub fn with_password(self, enabled: bool) -> Self {
        self.reconfigure(|config| config.password = enabled)
    }

    /// Whether keyboard-interactive goes to PAM (`KbdInteractiveAuthentication`; default
    /// yes).
    #[must_use]
    pub fn with_keyboard_interactive(self, enabled: bool) -> Self {
        self.reconfigure(|config| config.keyboard_interactive = enabled)
    }

    /// Whether an expired password met by the password method is answered with a change
    /// request (default yes); without, the attempt is rejected and logged.
    #[must_use]
    pub fn with_password_change(self, enabled: bool) -> Self {
        self.reconfigure(|config| config.password_change = enabled)
    }

    /// Whether PAM may accept an empty password (`PermitEmptyPasswords`; default no, which
    /// passes `PAM_DISALLOW_NULL_AUTHTOK`).
    #[must_use]
    pub fn with_empty_passwords(self, permitted: bool) -> Self {
        self.reconfigure(|config| config.empty_passwords = permitted)
    }

    /// Whether root (any account with uid 0) may log in by password or keyboard-interactive
    /// (default yes; sshd's `PermitRootLogin` other than `yes` says no). When not, root's
    /// answers still go through PAM, replaced with a wrong password, so a refusal takes the
    /// time a wrong password takes, as with sshd.
    #[must_use]
    pub fn with_root_passwords(self, permitted: bool) -> Self {
        self.reconfigure(|config| config.root_passwords = permitted)
    }

    /// Whether [`open_session`](AuthBackend::open_session) opens the PAM session on the login's
    /// transaction thread (default yes). Without, it opens nothing and ends the transaction
    /// (authentication and the account check are done): the server opens the session
    /// elsewhere, with [`PamSession`] in a process of its own.
    #[must_use]
    pub fn with_sessions(self, enabled: bool) -> Self {
        self.reconfigure(|config| config.sessions = enabled)
    }

    /// How many PAM transactions (threads) may run at once (default
    /// [`DEFAULT_MAX_TRANSACTIONS`](Self::DEFAULT_MAX_TRANSACTIONS)), counting the logins
    /// whose sessions are open.
    #[must_use]
    pub fn with_max_transactions(self, limit: usize) -> Self {
        self.reconfigure(|config| config.max_transactions = limit)
    }

    /// The PAM service in use.
    pub fn service(&self) -> &str {
        &self.inner.config.service
    }

    /// How many PAM transaction threads are running now (a figure for logs and tests).
    pub fn running_transactions(&self) -> usize {
        self.inner.threads.running()
    }

    fn from_config(config: Config) -> Self {
        let inner = Inner {
            config,
            threads: Threads::default(),
            connections: RefCell::new(HashMap::new()),
        };
        Self { inner: Rc::new(inner) }
    }

    /// A backend with `change` applied to a copy of the configuration (a backend in use keeps
    /// its own).
    fn reconfigure(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.inner.config.clone();
        change(&mut config);
        Self::from_config(config)
    }
}

impl Inner {
    /// Starts a transaction for `user` on `connection`, or says why not (in the log).
    fn start(&self, user: &str, connection: &ConnectionFacts) -> Option<Transaction> {
        if user.contains('\0') {
            log::info!(
                "connection {}: a user name with a NUL byte cannot go to PAM",
                connection.id
            );
            return None;
        }
        let ssh_connection = match (connection.peer, connection.local) {
            (Some(peer), Some(local)) => {
                Some(format!("{} {} {} {}", peer.ip(), peer.port(), local.ip(), local.port()))
            }
            _ => None,
        };
        let setup = Setup {
            service: self.config.service.clone(),
            user: user.to_owned(),
            rhost: connection.peer_ip(),
            ssh_connection,
            empty_passwords: self.config.empty_passwords,
            root_passwords: self.config.root_passwords,
        };
        match Transaction::start(setup, &self.threads, self.config.max_transactions) {
            Ok(transaction) => Some(transaction),
            Err(err) => {
                log::warn!("connection {}: PAM for {user} refused: {err}", connection.id);
                None
            }
        }
    }

    /// Keeps `transaction` as the connection's login, unless the connection has ended (then
    /// it is dropped, and its thread ends).
    fn keep_login(&self, connection: ConnectionId, transaction: Transaction) {
        if let Some(entry) = self.connections.borrow_mut().get_mut(&connection) {
            entry.login = Some(transaction);
        }
    }

    /// The password method.
    fn password(
        self: &Rc<Self>,
        request: &AuthRequest,
        password: &Password,
        new_password: Option<&Password>,
    ) -> Deferred<Decision<Restrictions>> {
        let connection = Rc::clone(&request.connection);
        let Some(mut transaction) = self.start(&request.user, &connection) else {
            return request.offload.succeed(Decision::Reject);
        };
        let (password, new_password) = (password.clone(), new_password.cloned());
        let verdict = ask(&request.offload, |reply| {
            transaction.send(Command::Authenticate { password, new_password, reply });
        });
        let me = Rc::clone(self);
        verdict.then(move |verdict| {
            let verdict = verdict.unwrap_or_else(|err| Verdict::Rejected(err.to_string()));
            let decision = match verdict {
                Verdict::Accepted => {
                    transaction.account_checked = true;
                    me.keep_login(connection.id, transaction);
                    Decision::Accept(Restrictions::default())
                }
                Verdict::PasswordExpired { prompt } if me.config.password_change => {
                    Decision::ChangePassword { prompt }
                }
                verdict => me.refuse(&connection, transaction.user(), &verdict),
            };
            Ok(decision)
        })
    }

    /// Keyboard-interactive: starts a conversation.
    fn converse(self: &Rc<Self>, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let connection = Rc::clone(&request.connection);
        let Some(transaction) = self.start(&request.user, &connection) else {
            return request.offload.succeed(Decision::Reject);
        };
        let (answers, inbox) = mpsc::channel();
        let round = ask(&request.offload, |reply| {
            transaction.send(Command::Converse { answers: inbox, reply });
        });
        let conversation = Conversation { id: request.id, transaction, answers, verdict: None };
        self.next_round(connection, conversation, &round)
    }

    /// Keyboard-interactive: the client's answers to the last round.
    fn answered(
        self: &Rc<Self>,
        request: &AuthRequest,
        id: RequestId,
        responses: &[Password],
    ) -> Deferred<Decision<Restrictions>> {
        let connection = Rc::clone(&request.connection);
        let conversation = self
            .connections
            .borrow_mut()
            .get_mut(&connection.id)
            .and_then(|entry| entry.conversation.take_if(|conversation| conversation.id == id));
        let Some(mut conversation) = conversation else {
            return request.offload.succeed(Decision::Reject);
        };
        if let Some(verdict) = conversation.verdict.take() {
            let decision = self.conclude(&connection, conversation.transaction, verdict);
            return request.offload.succeed(decision);
        }
        let responses = responses.to_vec();
        let answers = conversation.answers.clone();
        let round = ask(&request.offload, |next| {
            if answers.send(Answers { responses, next }).is_err() {
                log::debug!("PAM conversation of {} already ended", request.user);
            }
        });
        self.next_round(connection, conversation, &round)
    }

    /// Turns the conversation's next round into a decision, keeping the conversation for the
    /// client's answers.
    fn next_round(
        self: &Rc<Self>,
        connection: Rc<ConnectionFacts>,
        mut conversation: Conversation,
        round: &Deferred<Round>,
    ) -> Deferred<Decision<Restrictions>> {
        let me = Rc::clone(self);
        round.then(move |round| {
            let round = round.unwrap_or_else(|err| Round::Done {
                verdict: Verdict::Rejected(err.to_string()),
                messages: String::new(),
            });
            let decision = match round {
                Round::Ask(info) => {
                    me.hold(connection.id, conversation);
                    Decision::InfoRequest(info)
                }
                // What PAM said last is shown before the verdict, as a round without prompts.
                Round::Done { verdict, messages } if !messages.trim().is_empty() => {
                    conversation.verdict = Some(verdict);
                    me.hold(connection.id, conversation);
                    let instruction = messages.trim_end().to_owned();
                    Decision::InfoRequest(InfoRequest { instruction, ..InfoRequest::default() })
                }
                Round::Done { verdict, .. } => {
                    me.conclude(&connection, conversation.transaction, verdict)
                }
            };
            Ok(decision)
        })
    }

    /// Keeps a conversation between rounds, unless its connection has ended.
    fn hold(&self, connection: ConnectionId, conversation: Conversation) {
        if let Some(entry) = self.connections.borrow_mut().get_mut(&connection) {
            entry.conversation = Some(conversation);
        }
    }

    /// The decision for a finished conversation.
    fn conclude(
        &self,
        connection: &ConnectionFacts,
        mut transaction: Transaction,
        verdict: Verdict,
    ) -> Decision<Restrictions> {
        if verdict != Verdict::Accepted {
            return self.refuse(connection, transaction.user(), &verdict);
        }
        transaction.account_checked = true;
        self.keep_login(connection.id, transaction);
        Decision::Accept(Restrictions::default())
    }

    /// Rejects, logging why.
    fn refuse(
        &self,
        connection: &ConnectionFacts,
        user: &str,
        verdict: &Verdict,
    ) -> Decision<Restrictions> {
        let (id, ip, service) = (connection.id, connection.peer_ip(), &self.config.service);
        match verdict {
            Verdict::AccountDenied(reason) => {
                log::info!(
                    "connection {id} from {ip}: PAM ({service}) refused account {user}: {reason}"
                );
            }
            Verdict::PasswordExpired { .. } => {
                log::info!(
                    "connection {id} from {ip}: password of {user} has expired and password \
                     changes are off"
                );
            }
            Verdict::Rejected(reason) => {
                log::debug!("connection {id} from {ip}: PAM ({service}) rejected {user}: {reason}");
            }
            Verdict::Accepted => {}
        }
        Decision::Reject
    }

    /// `pam_acct_mgmt` for a user let in without this backend's authentication.
    fn check(self: &Rc<Self>, login: &LoginRequest) -> Deferred<AccountStatus> {
        let connection = Rc::clone(&login.connection);
        let Some(transaction) = self.start(&login.user, &connection) else {
            let reason = "no PAM transaction could be started".to_owned();
            return login.offload.succeed(AccountStatus::Denied { reason });
        };
        let status = ask(&login.offload, |reply| {
            transaction.send(Command::CheckAccount { reply });
        });
        let me = Rc::clone(self);
        status.then(move |status| {
            let status = match status {
                Ok(Ok(())) => {
                    let mut transaction = transaction;
                    transaction.account_checked = true;
                    me.keep_login(connection.id, transaction);
                    AccountStatus::Allowed
                }
                Ok(Err(reason)) => {
                    me.refuse(
                        &connection,
                        transaction.user(),
                        &Verdict::AccountDenied(reason.clone()),
                    );
                    AccountStatus::Denied { reason }
                }
                Err(err) => AccountStatus::Denied { reason: err.to_string() },
            };
            Ok(status)
        })
    }

    /// Opens the login's PAM session on its transaction (started now if there is none).
    fn open(self: &Rc<Self>, login: &LoginRequest) -> Deferred<SessionGrant> {
        let connection = &login.connection;
        let mut connections = self.connections.borrow_mut();
        let entry = connections.entry(connection.id).or_default();
        if !self.config.sessions {
            // The session is opened elsewhere: the login's transaction has done its part.
            let done = entry.login.take();
            drop(connections);
            drop(done);
            return login.offload.succeed(SessionGrant::default());
        }
        if entry.login.as_ref().is_none_or(|t| t.user() != login.user) {
            entry.login = self.start(&login.user, connection);
        }
        let Some(transaction) = &entry.login else {
            let err = twine_core::Error::new(
                twine_core::ErrorKind::LimitReached,
                "no PAM transaction could be started",
            );
            return Deferred::fail(login.offload.scheduler(), err);
        };
        let opened = ask(&login.offload, |reply| transaction.send(Command::OpenSession { reply }));
        drop(connections);
        let user = login.user.clone();
        opened.then(move |opened| match opened? {
            Ok(environment) => Ok(SessionGrant { environment }),
            Err(reason) => Err(twine_core::Error::new(
                twine_core::ErrorKind::PermissionDenied,
                format!("PAM session for {user}: {reason}"),
            )),
        })
    }
}

impl Default for PamBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PamBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PamBackend")
            .field("config", &self.inner.config)
            .field("running", &self.inner.threads.running())
            .finish()
    }
}

impl AuthBackend for PamBackend {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let config = &self.inner.config;
        let mut connections = self.inner.connections.borrow_mut();
        let entry = connections.entry(request.connection.id).or_default();
        // Any other request abandons a conversation in progress; its thread ends.
        if !matches!(request.attempt, Attempt::KeyboardInteractiveResponses { .. }) {
            entry.conversation = None;
        }
        drop(connections);
        match &request.attempt {
            Attempt::Password { password, new_password } if config.password => {
                self.inner.password(request, password, new_password.as_ref())
            }
            Attempt::KeyboardInteractive { .. } if config.keyboard_interactive => {
                self.inner.converse(request)
            }
            Attempt::KeyboardInteractiveResponses { conversation, responses }
                if config.keyboard_interactive =>
            {
                self.inner.answered(request, *conversation, responses)
            }
            _ => request.offload.succeed(Decision::Reject),
        }
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        let mut connections = self.inner.connections.borrow_mut();
        let entry = connections.entry(login.connection.id).or_default();
        let checked = entry.login.as_ref().is_some_and(|transaction| {
            transaction.account_checked && transaction.user() == login.user
        });
        drop(connections);
        if checked {
            return login.offload.succeed(AccountStatus::Allowed);
        }
        self.inner.check(login)
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        self.inner.open(login)
    }

    fn close_session(&self, login: &LoginRequest) {
        let mut connections = self.inner.connections.borrow_mut();
        let Some(entry) = connections.get_mut(&login.connection.id) else { return };
        // The thread closes the session, then ends the transaction as this is dropped.
        if let Some(transaction) = entry.login.take() {
            transaction.send(Command::CloseSession);
        }
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        // Dropping the transactions ends their threads: sessions close, conversations fail.
        let gone = self.inner.connections.borrow_mut().remove(&connection.id);
        drop(gone);
    }
}

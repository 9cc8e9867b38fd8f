//! One PAM transaction (`pam_start` to `pam_end`) on a thread of its own.
//!
//! The thread owns the PAM handle for its whole life, so the handle never changes threads and
//! a blocking module (a password hash, a network check, a second factor waiting for the user)
//! never holds up the reactor or its thread pool. The loop sends [`Command`]s; each carries the
//! [`Reply`] its answer goes back through. When the loop drops its [`Transaction`], the thread
//! closes any session still open, ends the transaction and exits; a conversation blocked on
//! the client's answers fails at once, so PAM unwinds promptly.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use pam_client::{Context, ConversationHandler, ErrorCode, Flag, SessionToken};

use super::reply::Reply;
use crate::userauth::{InfoRequest, Password, Prompt};

/// How much of the modules' informational and error text is kept for the user (the rest is
/// dropped, with a marker): PAM allows 512 bytes a message.
const MAX_MESSAGES_LEN: usize = 4096;

/// What PAM gets instead of the client's password when the user may not log in by password
/// at all (unknown, or root when that is refused): it never matches, and fails in the time a
/// wrong password takes.
const WRONG_PASSWORD: &[u8] = b"\x08\n\r\x7fnever a password";

/// The name of every transaction thread (visible in `ps -T` and `/proc/<pid>/task`).
pub(super) const THREAD_NAME: &str = "twine-pam";

/// What a transaction needs to start.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    /// The PAM service (`/etc/pam.d/<service>`).
    pub service: String,
    /// The user to authenticate or open a session for.
    pub user: String,
    /// `PAM_RHOST`: the client's address.
    pub rhost: String,
    /// `SSH_CONNECTION`, put in the PAM environment as sshd does, if the addresses are known.
    pub ssh_connection: Option<String>,
    /// Whether an empty password may authenticate (`PermitEmptyPasswords`).
    pub empty_passwords: bool,
    /// Whether root may authenticate by password (`PermitRootLogin yes`).
    pub root_passwords: bool,
}

/// The loop's end of a transaction thread. Dropping it ends the transaction.
pub(super) struct Transaction {
    user: String,
    commands: mpsc::Sender<Command>,
    /// Whether `pam_acct_mgmt` already allowed the user in this transaction.
    pub account_checked: bool,
}

/// The live transaction threads of one backend, against its limit.
#[derive(Clone, Debug, Default)]
pub(super) struct Threads(Arc<AtomicUsize>);

/// What the loop asks of a transaction.
pub(super) enum Command {
    /// The password method: `pam_authenticate` answering hidden prompts with `password`, then
    /// `pam_acct_mgmt`; with `new_password`, an expired password is changed
    /// (`pam_chauthtok`).
    Authenticate { password: Password, new_password: Option<Password>, reply: Reply<Verdict> },
    /// Keyboard-interactive: `pam_authenticate` (and `pam_acct_mgmt`, and `pam_chauthtok` for
    /// an expired password) with every prompt relayed to the client. The first round comes
    /// back through `reply`, each later one through the [`Answers`] to the previous.
    Converse { answers: mpsc::Receiver<Answers>, reply: Reply<Round> },
    /// `pam_acct_mgmt` alone, for a user authenticated some other way (a public key).
    CheckAccount { reply: Reply<Result<(), String>> },
    /// `pam_setcred(PAM_ESTABLISH_CRED)` and `pam_open_session`; answers the PAM environment.
    OpenSession { reply: Reply<Result<Vec<(String, String)>, String>> },
    /// `pam_close_session` and `pam_setcred(PAM_DELETE_CRED)`.
    CloseSession,
}

/// The client's answers to a keyboard-interactive round, and where the next round goes.
pub(super) struct Answers {
    pub responses: Vec<Password>,
    pub next: Reply<Round>,
}

/// What a keyboard-interactive conversation does next.
#[derive(Debug)]
pub(super) enum Round {
    /// Show this and ask the client.
    Ask(InfoRequest),
    /// PAM has decided; `messages` is what it said since the last prompt.
    Done { verdict: Verdict, messages: String },
}

/// The outcome of an authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Authenticated, and the account may log in.
    Accepted,
    /// Not authenticated (PAM's reason, for the log).
    Rejected(String),
    /// The password was right but has expired; `prompt` is what PAM said about it.
    PasswordExpired { prompt: String },
    /// Authenticated, but the account may not log in (PAM's reason, for the log).
    AccountDenied(String),
}

impl Transaction {
    /// Starts a transaction thread for `setup`, if `threads` is below `limit`.
    ///
    /// # Errors
    ///
    /// [`twine_core::ErrorKind::LimitReached`] at the limit; the OS's error if no thread could
    /// be started.
    pub(super) fn start(
        setup: Setup,
        threads: &Threads,
        limit: usize,
    ) -> Result<Self, twine_core::Error> {
        let running = threads.enter(limit).ok_or_else(|| {
            twine_core::Error::new(
                twine_core::ErrorKind::LimitReached,
                format!("{limit} PAM transactions already running"),
            )
        })?;
        let (commands, inbox) = mpsc::channel();
        let user = setup.user.clone();
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let _running = running;
                run(&setup, &inbox);
            })
            .map_err(|err| twine_core::Error::from_io(&err, "start a PAM thread"))?;
        Ok(Self { user, commands, account_checked: false })
    }

    /// The user this transaction is for.
    pub(super) fn user(&self) -> &str {
        &self.user
    }

    /// Sends `command`. If the thread has ended, the command's [`Reply`] is dropped with it,
    /// which fails the waiting Deferred.
    pub(super) fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            log::debug!("PAM transaction for {} already ended", self.user);
        }
    }
}

impl Threads {
    /// How many transaction threads are running.
    pub(super) fn running(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts one more thread, unless `limit` are running already.
    fn enter(&self, limit: usize) -> Option<Running> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Running(Arc::clone(&self.0)))
    }
}

/// One counted thread; the count goes down when it is dropped, as the thread ends.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The thread's body: start the transaction, serve commands until the loop hangs up, then
/// close the session and end the transaction.
fn run(setup: &Setup, inbox: &mpsc::Receiver<Command>) {
    let mut pam = match Pam::start(setup) {
        Ok(pam) => pam,
        Err(err) => {
            // Every command's Reply is dropped unanswered, which fails its Deferred.
            log::warn!("PAM: cannot start service {} for {}: {err}", setup.service, setup.user);
            return;
        }
    };
    for command in inbox {
        pam.handle(command);
    }
    pam.close_session();
}

/// A started PAM transaction, on its thread.
struct Pam {
    context: Context<Talk>,
    session: Option<SessionToken>,
    user: String,
    service: String,
    flags: Flag,
    /// Whether the user may log in by password: known to the system, and not root unless
    /// root passwords are allowed.
    may_use_password: bool,
}

impl Pam {
    fn start(setup: &Setup) -> Result<Self, pam_client::Error> {
        let mut context = Context::new(&setup.service, Some(&setup.user), Talk::default())?;
        context.set_rhost(Some(&setup.rhost))?;
        // SSH names no remote user: the login name stands for it.
        context.set_ruser(Some(&setup.user))?;
        // As sshd does: some modules want a tty, and the real one (if any) comes later.
        context.set_tty(Some("ssh"))?;
        if let Some(connection) = &setup.ssh_connection {
            context.putenv(format!("SSH_CONNECTION={connection}"))?;
        }
        let flags = if setup.empty_passwords { Flag::NONE } else { Flag::DISALLOW_NULL_AUTHTOK };
        let (user, service) = (setup.user.clone(), setup.service.clone());
        let may_use_password = match nix::unistd::User::from_name(&setup.user) {
            Ok(Some(account)) => setup.root_passwords || !account.uid.is_root(),
            Ok(None) => false,
            Err(err) => {
                log::warn!("PAM: looking up {}: {err}", setup.user);
                false
            }
        };
        Ok(Self { context, session: None, user, service, flags, may_use_password })
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Authenticate { password, new_password, reply } => {
                let given = if self.may_use_password {
                    password.clone()
                } else {
                    Password::new(WRONG_PASSWORD)
                };
                self.talk().mode = Mode::Password(given);
                let verdict = self.authenticate(Some((password, new_password)));
                self.quiet();
                reply.send(verdict);
            }
            Command::Converse { answers, reply } => {
                self.talk().mode = Mode::Relay { round: Some(reply), answers };
                self.talk().answers_count = self.may_use_password;
                let verdict = self.authenticate(None);
                let messages = std::mem::take(&mut self.talk().messages);
                let mode = std::mem::replace(&mut self.talk().mode, Mode::Quiet);
                if let Mode::Relay { round: Some(reply), .. } = mode {
                    reply.send(Round::Done { verdict, messages });
                }
            }
            Command::CheckAccount { reply } => {
                let status = match self.context.acct_mgmt(self.flags) {
                    Ok(()) => Ok(()),
                    Err(err) if err.code() == ErrorCode::NEW_AUTHTOK_REQD => {
                        Err("the password has expired and must be changed".to_owned())
                    }
                    Err(err) => Err(err.to_string()),
                };
                self.quiet();
                reply.send(status);
            }
            Command::OpenSession { reply } => {
                let opened = self.open_session();
                self.quiet();
                reply.send(opened);
            }
            Command::CloseSession => {
                self.close_session();
                self.quiet();
            }
        }
    }

    /// `pam_authenticate`, `pam_acct_mgmt`, and `pam_chauthtok` for an expired password when
    /// there is a new one (`password` is `None` for a relayed conversation, where the user is
    /// asked for the new one).
    fn authenticate(&mut self, password: Option<(Password, Option<Password>)>) -> Verdict {
        if let Err(err) = self.context.authenticate(self.flags) {
            return Verdict::Rejected(err.to_string());
        }
        if !self.may_use_password {
            return Verdict::Rejected("unknown user, or root by password".to_owned());
        }
        let err = match self.context.acct_mgmt(self.flags) {
            Ok(()) => return Verdict::Accepted,
            Err(err) => err,
        };
        if err.code() != ErrorCode::NEW_AUTHTOK_REQD {
            return Verdict::AccountDenied(err.to_string());
        }
        match password {
            Some((_, None)) => {
                let said = std::mem::take(&mut self.talk().messages);
                let prompt = if said.trim().is_empty() {
                    "Password expired: change it now".to_owned()
                } else {
                    said.trim_end().to_owned()
                };
                return Verdict::PasswordExpired { prompt };
            }
            Some((old, Some(new))) => self.talk().mode = Mode::Change { old, new, asked: 0 },
            None => {}
        }
        match self.context.chauthtok(Flag::CHANGE_EXPIRED_AUTHTOK) {
            Ok(()) => Verdict::Accepted,
            Err(err) => Verdict::Rejected(format!("password change failed: {err}")),
        }
    }

    fn open_session(&mut self) -> Result<Vec<(String, String)>, String> {
        if self.session.is_none() {
            let session = self.context.open_session(Flag::NONE).map_err(|err| err.to_string())?;
            self.session = Some(session.leak());
        }
        let environment = self
            .context
            .envlist()
            .iter_tuples()
            .filter_map(|(name, value)| {
                Some((name.to_str()?.to_owned(), value.to_str()?.to_owned()))
            })
            .collect();
        Ok(environment)
    }

    fn close_session(&mut self) {
        let Some(token) = self.session.take() else { return };
        if let Err(err) = self.context.unleak_session(token).close(Flag::NONE) {
            log::warn!("PAM: closing the session of {} ({}): {err}", self.user, self.service);
        }
    }

    fn talk(&mut self) -> &mut Talk {
        self.context.conversation_mut()
    }

    /// Back to no one to ask; logs what the modules said meanwhile.
    fn quiet(&mut self) {
        let talk = self.talk();
        talk.mode = Mode::Quiet;
        let said = std::mem::take(&mut talk.messages);
        if !said.is_empty() {
            log::debug!("PAM ({}) said to {}: {}", self.service, self.user, said.trim_end());
        }
    }
}

/// The conversation function's side: whom PAM's prompts go to, and what it said meanwhile.
#[derive(Default)]
struct Talk {
    mode: Mode,
    /// `PAM_TEXT_INFO` and `PAM_ERROR_MSG` text not yet shown, one message a line.
    messages: String,
    /// Whether the client's answers are given to PAM (else a wrong password is, in their
    /// place).
    answers_count: bool,
}

#[derive(Default)]
enum Mode {
    /// No one to ask (account checks, sessions): prompts fail.
    #[default]
    Quiet,
    /// The password method: every hidden prompt gets the password, as sshd answers them.
    Password(Password),
    /// Changing an expired password: the first hidden prompt gets the old password (PAM asks
    /// for the current one first), every later one the new password.
    Change { old: Password, new: Password, asked: usize },
    /// Keyboard-interactive: each prompt is a round sent to the client.
    Relay { round: Option<Reply<Round>>, answers: mpsc::Receiver<Answers> },
}

impl Talk {
    /// Relays one prompt to the client and waits for its answer.
    fn relay(&mut self, text: &CStr, echo: bool) -> Result<CString, ErrorCode> {
        let Mode::Relay { round, answers } = &mut self.mode else {
            return Err(ErrorCode::CONV_ERR);
        };
        let reply = round.take().ok_or(ErrorCode::CONV_ERR)?;
        let prompt = Prompt { text: text.to_string_lossy().into_owned(), echo };
        let instruction = std::mem::take(&mut self.messages).trim_end().to_owned();
        reply.send(Round::Ask(InfoRequest {
            name: String::new(),
            instruction,
            prompts: vec![prompt],
        }));
        // The loop drops its sender when the client goes: PAM then sees a conversation error.
        let Answers { responses, next } = answers.recv().map_err(|_| ErrorCode::CONV_ERR)?;
        *round = Some(next);
        let answer = responses.first().ok_or(ErrorCode::CONV_ERR)?;
        if !self.answers_count {
            return secret(&Password::new(WRONG_PASSWORD));
        }
        secret(answer)
    }

    fn remember(&mut self, message: &CStr) {
        let text = message.to_string_lossy();
        if self.messages.len() + text.len() + 1 > MAX_MESSAGES_LEN {
            if !self.messages.ends_with("...\n") {
                self.messages.push_str("...\n");
            }
            return;
        }
        self.messages.push_str(&text);
        self.messages.push('\n');
    }
}

impl ConversationHandler for Talk {
    fn prompt_echo_on(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.relay(prompt, true)
    }

    fn prompt_echo_off(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        match &mut self.mode {
            Mode::Quiet => Err(ErrorCode::CONV_ERR),
            Mode::Password(password) => secret(password),
            Mode::Change { old, new, asked } => {
                *asked += 1;
                secret(if *asked == 1 { old } else { new })
            }
            Mode::Relay { .. } => self.relay(prompt, false),
        }
    }

    fn text_info(&mut self, msg: &CStr) {
        self.remember(msg);
    }

    fn error_msg(&mut self, msg: &CStr) {
        self.remember(msg);
    }
}

/// A password as PAM takes it. The copy is freed by `pam-client` without being wiped (its
/// conversation API takes a `CString` by value); ours are zeroized.
fn secret(password: &Password) -> Result<CString, ErrorCode> {
    CString::new(password.as_bytes()).map_err(|_| ErrorCode::CONV_ERR)
}

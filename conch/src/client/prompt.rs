//! [`Prompter`]: how the client asks its user for passwords, answers, passphrases and host key
//! confirmations, and tells them about banners and warnings.

use std::fmt;
use std::path::Path;
use std::rc::Rc;

use twine_core::time::Scheduler;
use twine_core::Deferred;
use zeroize::Zeroizing;

use crate::keys::{Fingerprint, FingerprintHash, PublicKey};
use crate::userauth::{InfoRequest, Password, PasswordAnswer};

/// A request for a password (`password` authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordPrompt {
    /// The user logging in.
    pub user: String,
    /// The host, as given to `connect`.
    pub host: String,
    /// 1 for the first password, then 2, ... (OpenSSH prints `Permission denied, please try
    /// again.` from the second on).
    pub attempt: u32,
    /// The server's reason when it asks for a new password: answer with
    /// [`PasswordAnswer::Change`].
    pub change_prompt: Option<String>,
}

impl PasswordPrompt {
    /// OpenSSH's prompt text: `user@host's password: `.
    pub fn text(&self) -> String {
        format!("{}@{}'s password: ", self.user, self.host)
    }
}

/// A host whose key is not in `known_hosts`, for the user to accept or refuse
/// (`StrictHostKeyChecking ask`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownHostKey {
    /// The host as looked up (`host`, or `[host]:port`).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The key the server proved it holds.
    pub key: PublicKey,
    /// Keys of other types already known for the host.
    pub other_keys: Vec<PublicKey>,
}

impl UnknownHostKey {
    /// The key's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.key.fingerprint(FingerprintHash::Sha256)
    }

    /// OpenSSH's question, without the trailing `(yes/no/[fingerprint])? `.
    pub fn text(&self) -> String {
        let name = crate::keys::known_hosts::host_name_for(&self.host, self.port);
        format!(
            "The authenticity of host '{name}' can't be established.\n{} key fingerprint is {}.\n\
             This key is not known by any other names.\n\
             Are you sure you want to continue connecting",
            self.key.short_type_name(),
            self.fingerprint()
        )
    }

    /// Whether `answer` accepts the key, as OpenSSH reads it: `yes`, or the key's fingerprint
    /// typed (or pasted) back.
    pub fn accepts(&self, answer: &str) -> bool {
        let answer = answer.trim();
        answer.eq_ignore_ascii_case("yes") || answer == self.fingerprint().to_string()
    }
}

/// The client's way to its user: prompts come as Deferreds, so a terminal implementation can
/// read on a thread (`Reactor::defer_to_thread`) and a GUI can answer whenever the user does.
///
/// Every method has a default that refuses (or only logs), so an implementation overrides what
/// it supports. `scheduler` is the loop the answer's Deferred must run on.
pub trait Prompter {
    /// A password for `password` authentication; `None` gives up on passwords.
    fn password(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        prompt: &PasswordPrompt,
    ) -> Deferred<Option<PasswordAnswer>> {
        let _ = prompt;
        Deferred::succeed(Rc::clone(scheduler), None)
    }

    /// One answer per prompt of a keyboard-interactive round; `None` gives up on the method.
    fn keyboard_interactive(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        request: &InfoRequest,
    ) -> Deferred<Option<Vec<Password>>> {
        let _ = request;
        Deferred::succeed(Rc::clone(scheduler), None)
    }

    /// The passphrase of the private key at `path` (OpenSSH: `Enter passphrase for key
    /// '<path>': `); `attempt` counts from 1. `None` skips the key.
    fn passphrase(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        path: &Path,
        attempt: u32,
    ) -> Deferred<Option<Zeroizing<Vec<u8>>>> {
        let _ = (path, attempt);
        Deferred::succeed(Rc::clone(scheduler), None)
    }

    /// Whether to trust a host key that is not known (`StrictHostKeyChecking ask`); see
    /// [`UnknownHostKey::text`] and [`UnknownHostKey::accepts`].
    fn confirm_host_key(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        question: &UnknownHostKey,
    ) -> Deferred<bool> {
        let _ = question;
        Deferred::succeed(Rc::clone(scheduler), false)
    }

    /// The server's pre-authentication banner, already stripped of control characters.
    fn banner(&self, message: &str) {
        log::info!("banner: {message}");
    }

    /// A warning or notice for the user: a host key added to `known_hosts`, a changed key.
    fn notice(&self, message: &str) {
        log::warn!("{message}");
    }
}

/// A [`Prompter`] that asks nothing: every prompt is refused, banners and notices are logged.
/// The default, right for batch use (OpenSSH's `BatchMode yes`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPrompts;

impl Prompter for NoPrompts {}

/// A [`Prompter`] with fixed answers, for scripts and tests: a password, the responses for
/// keyboard-interactive rounds, a key passphrase, whether to accept unknown host keys. Notices
/// and banners are kept for inspection.
#[derive(Clone, Default)]
pub struct StaticPrompter {
    password: Option<Password>,
    responses: Option<Vec<Password>>,
    passphrase: Option<Zeroizing<Vec<u8>>>,
    accept_unknown_hosts: bool,
    seen: Rc<std::cell::RefCell<Vec<String>>>,
}

impl StaticPrompter {
    /// Answers nothing (as [`NoPrompts`]) until configured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers every password prompt with `password`, and every keyboard-interactive prompt too
    /// (unless [`responses`](Self::responses) is set).
    #[must_use]
    pub fn password(mut self, password: impl Into<Password>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Answers every keyboard-interactive round with these responses (when the count matches).
    #[must_use]
    pub fn responses(mut self, responses: Vec<Password>) -> Self {
        self.responses = Some(responses);
        self
    }

    /// Answers passphrase prompts with `passphrase`.
    #[must_use]
    pub fn passphrase(mut self, passphrase: impl Into<Vec<u8>>) -> Self {
        self.passphrase = Some(Zeroizing::new(passphrase.into()));
        self
    }

    /// Accepts unknown host keys when asked.
    #[must_use]
    pub fn accept_unknown_hosts(mut self, accept: bool) -> Self {
        self.accept_unknown_hosts = accept;
        self
    }

    /// The banners and notices shown so far, and the prompts asked, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.borrow().clone()
    }

    fn record(&self, line: String) {
        self.seen.borrow_mut().push(line);
    }
}

impl Prompter for StaticPrompter {
    fn password(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        prompt: &PasswordPrompt,
    ) -> Deferred<Option<PasswordAnswer>> {
        self.record(format!("password: {}", prompt.text()));
        let answer = self.password.clone().map(PasswordAnswer::Password);
        Deferred::succeed(Rc::clone(scheduler), answer)
    }

    fn keyboard_interactive(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        request: &InfoRequest,
    ) -> Deferred<Option<Vec<Password>>> {
        let texts: Vec<&str> = request.prompts.iter().map(|p| p.text.as_str()).collect();
        self.record(format!("keyboard-interactive: {}", texts.join("|")));
        let answer = match (&self.responses, &self.password) {
            (Some(responses), _) if responses.len() == request.prompts.len() => {
                Some(responses.clone())
            }
            (None, Some(password)) => Some(vec![password.clone(); request.prompts.len()]),
            _ => None,
        };
        Deferred::succeed(Rc::clone(scheduler), answer)
    }

    fn passphrase(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        path: &Path,
        attempt: u32,
    ) -> Deferred<Option<Zeroizing<Vec<u8>>>> {
        self.record(format!("passphrase {attempt}: {}", path.display()));
        let answer = if attempt == 1 { self.passphrase.clone() } else { None };
        Deferred::succeed(Rc::clone(scheduler), answer)
    }

    fn confirm_host_key(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        question: &UnknownHostKey,
    ) -> Deferred<bool> {
        self.record(format!("confirm: {}", question.fingerprint()));
        Deferred::succeed(Rc::clone(scheduler), self.accept_unknown_hosts)
    }

    fn banner(&self, message: &str) {
        self.record(format!("banner: {message}"));
    }

    fn notice(&self, message: &str) {
        self.record(format!("notice: {message}"));
    }
}

impl fmt::Debug for StaticPrompter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticPrompter")
            .field("password", &self.password.is_some())
            .field("responses", &self.responses.as_ref().map(Vec::len))
            .field("passphrase", &self.passphrase.is_some())
            .field("accept_unknown_hosts", &self.accept_unknown_hosts)
            .finish_non_exhaustive()
    }
}

//! Authentication backends: who may log in, and with what [`Restrictions`] (Twisted's portal
//! and checkers).
//!
//! The userauth state machine decides nothing about users itself: each request leaves it as
//! [`ServerEvent::AuthRequested`](crate::userauth::ServerEvent::AuthRequested), the server
//! adapter hands it to the configured [`AuthBackend`] as an [`AuthRequest`], and the
//! backend's [`Deferred`] answer goes back in with `auth_decided`. A backend that blocks (reads
//! files, hashes passwords, talks to PAM) does that work on a thread through
//! [`Offload::run`]; the loop never waits.
//!
//! Backends here: [`AuthorizedKeys`] (OpenSSH's `authorized_keys` semantics), [`StaticUsers`]
//! (an in-memory table for embedded servers), [`TrustOnFirstUse`] (any key, remembered per
//! user name: for applications without accounts) and [`Chain`] (try several in order).
//! Writing one takes a few lines:
//!
//! ```
//! use twine_conch::server::{AuthBackend, AuthRequest, Restrictions};
//! use twine_conch::userauth::{Attempt, Decision};
//! use twine_core::Deferred;
//!
//! /// Lets `guest` in with any password, to a forced menu program.
//! struct Guests;
//!
//! impl AuthBackend for Guests {
//!     fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
//!         let decision = match &request.attempt {
//!             Attempt::Password { .. } if request.user == "guest" => {
//!                 Decision::Accept(Restrictions::restricted().with_forced_command("menu"))
//!             }
//!             _ => Decision::Reject,
//!         };
//!         request.offload.succeed(decision)
//!     }
//! }
//! # let _backend: Box<dyn AuthBackend> = Box::new(Guests);
//! ```
//!
//! After a backend accepts (anything but a public key query), the adapter asks the same
//! backend's [`check_account`](AuthBackend::check_account) (PAM's account management: expired,
//! locked), and once the user is in, [`open_session`](AuthBackend::open_session) and at the
//! end [`close_session`](AuthBackend::close_session), as sshd does with PAM.

pub(crate) mod authorized_keys;
mod chain;
mod commands;
#[cfg(feature = "pam")]
mod pam;
mod shadow;
mod tofu;
mod users;

#[cfg(test)]
mod tests;

pub use authorized_keys::{
    local_offset, read_local_time_zone, AuthorizedKeys, MAX_AUTHORIZED_KEYS_FILE_LEN,
};
#[doc(hidden)]
pub use authorized_keys::{set_certificate_override, set_keys_override};
pub use chain::Chain;
#[cfg(feature = "pam")]
pub use pam::{PamBackend, PamConversation, PamDriver, PamPending, PamSession, PamSessionSetup};
pub use shadow::ShadowPasswords;
#[doc(hidden)]
pub use shadow::{set_account_delegate, set_password_delegate};
pub use tofu::{TofuVerdict, TrustOnFirstUse};
pub use users::StaticUsers;

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::SystemTime;

use twine_core::reactor::ThreadHandle;
use twine_core::time::Scheduler;
use twine_core::{Deferred, Reactor};

use super::Restrictions;
use crate::userauth::{Attempt, Decision, Method, RequestId};

/// Decides who may log in (see the [module documentation](self)).
///
/// Every method is called on the reactor thread and must not block: return a [`Deferred`]
/// (already fired with [`Offload::succeed`], or fired later, from [`Offload::run`]'s thread or
/// a conversation). A failed Deferred counts as a rejection and is logged.
pub trait AuthBackend {
    /// Decides one attempt: accept it (with the session's restrictions), reject it, ask
    /// keyboard-interactive questions, or ask for a password change.
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>>;

    /// After an accepting decision: may this account log in now (not expired, not locked)?
    /// The default allows it.
    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        login.offload.succeed(AccountStatus::Allowed)
    }

    /// The user is in: open what the login needs (a PAM session). The variables returned are
    /// added to every session's environment. The default opens nothing.
    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        login.offload.succeed(SessionGrant::default())
    }

    /// A signed public key request was refused before it was put to [`decide`](Self::decide):
    /// its signature does not verify (the request carries the key, or the certificate, and the
    /// signature). Nothing to answer: the client has been told; for the log (sshd's "Failed
    /// publickey") and the source's failure count. The default does nothing.
    fn signature_refused(&self, request: &AuthRequest) {
        let _ = request;
    }

    /// The login's connection ended: close what `open_session` opened.
    fn close_session(&self, login: &LoginRequest) {
        let _ = login;
    }

    /// The connection ended, authenticated or not: forget any state kept for it.
    fn connection_ended(&self, connection: &ConnectionFacts) {
        let _ = connection;
    }
}

impl<B: AuthBackend + ?Sized> AuthBackend for Box<B> {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        (**self).decide(request)
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        (**self).check_account(login)
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        (**self).open_session(login)
    }

    fn signature_refused(&self, request: &AuthRequest) {
        (**self).signature_refused(request);
    }

    fn close_session(&self, login: &LoginRequest) {
        (**self).close_session(login);
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        (**self).connection_ended(connection);
    }
}

impl<B: AuthBackend + ?Sized> AuthBackend for Rc<B> {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        (**self).decide(request)
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        (**self).check_account(login)
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        (**self).open_session(login)
    }

    fn signature_refused(&self, request: &AuthRequest) {
        (**self).signature_refused(request);
    }

    fn close_session(&self, login: &LoginRequest) {
        (**self).close_session(login);
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        (**self).connection_ended(connection);
    }
}

/// Names one SSH connection for the lifetime of the server process, so that a backend serving
/// many connections can keep per-connection state (a PAM conversation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What is known about a connection before anyone has logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// This connection's number.
    pub id: ConnectionId,
    /// The client's address (`None` over a pipe, in inetd mode).
    pub peer: Option<SocketAddr>,
    /// Our address it connected to.
    pub local: Option<SocketAddr>,
    /// The client's identification string (`SSH-2.0-OpenSSH_9.2p1 ...`), if known.
    pub client_version: Option<String>,
}

impl ConnectionFacts {
    /// Facts for a connection from `peer` to `local`.
    pub fn new(id: ConnectionId, peer: Option<SocketAddr>, local: Option<SocketAddr>) -> Self {
        Self { id, peer, local, client_version: None }
    }

    /// The client's address as text, as `from=` patterns and PAM's `rhost` see it
    /// (`UNKNOWN` without one, as sshd says).
    pub fn peer_ip(&self) -> String {
        self.peer.map_or_else(|| "UNKNOWN".to_owned(), |addr| addr.ip().to_string())
    }
}

/// One authentication attempt, as an [`AuthBackend`] sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthRequest {
    /// The userauth question's identifier; for keyboard-interactive, the conversation's.
    pub id: RequestId,
    /// The user name the client gave, without a `:style` suffix.
    pub user: String,
    /// The `:style` suffix of the name the client gave (`alice:skey`), if any: the name as
    /// sent, which signatures cover, is `user:style` ([`wire_user`](Self::wire_user)).
    pub style: Option<String>,
    /// The service asked for (`ssh-connection`).
    pub service: String,
    /// The method and its credentials.
    pub attempt: Attempt,
    /// The connection it came on.
    pub connection: Rc<ConnectionFacts>,
    /// The wall-clock time, for `expiry-time=` and the like.
    pub now: SystemTime,
    /// Where blocking work goes.
    pub offload: Offload,
}

impl AuthRequest {
    /// A request, as the server adapter builds it.
    pub fn new(
        id: RequestId,
        user: impl Into<String>,
        attempt: Attempt,
        connection: Rc<ConnectionFacts>,
        now: SystemTime,
        offload: Offload,
    ) -> Self {
        Self {
            id,
            user: user.into(),
            style: None,
            service: crate::userauth::SERVICE_CONNECTION.to_owned(),
            attempt,
            connection,
            now,
            offload,
        }
    }

    /// The same request, for a name the client sent as `user:style`.
    #[must_use]
    pub fn with_style(mut self, style: Option<String>) -> Self {
        self.style = style;
        self
    }

    /// The user name as the client sent it (with its `:style`), as a `publickey` signature
    /// covers it.
    pub fn wire_user(&self) -> String {
        match &self.style {
            Some(style) => format!("{}:{style}", self.user),
            None => self.user.clone(),
        }
    }
}

/// A login that succeeded (or is about to): for account checks and sessions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoginRequest {
    /// The user.
    pub user: String,
    /// The method that completed authentication.
    pub method: Method,
    /// The connection.
    pub connection: Rc<ConnectionFacts>,
    /// Where blocking work goes.
    pub offload: Offload,
}

impl LoginRequest {
    /// A login of `user` by `method` on `connection`.
    pub fn new(
        user: impl Into<String>,
        method: Method,
        connection: Rc<ConnectionFacts>,
        offload: Offload,
    ) -> Self {
        Self { user: user.into(), method, connection, offload }
    }
}

/// The outcome of an account check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountStatus {
    /// The account may log in.
    Allowed,
    /// It may not (expired, locked, outside its hours); the reason is logged, not sent.
    Denied {
        /// Why, for the log.
        reason: String,
    },
}

/// What an opened login session adds to the user's sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionGrant {
    /// Environment variables for every session (PAM's `pam_getenvlist`).
    pub environment: Vec<(String, String)>,
}

/// Where an auth backend's blocking work runs: the reactor's thread pool
/// ([`Reactor::defer_to_thread`]), or inline for tests and for work that never blocks.
#[derive(Clone)]
pub struct Offload {
    scheduler: Rc<dyn Scheduler>,
    reactor: Option<Reactor>,
}

impl Offload {
    /// Blocking work goes to `reactor`'s thread pool.
    pub fn reactor(reactor: &Reactor) -> Self {
        Self { scheduler: reactor.scheduler(), reactor: Some(reactor.clone()) }
    }

    /// Blocking work runs at once on the calling thread; results are still delivered on a
    /// later turn of `scheduler` (a test `Clock` from `twine_core::testing`).
    pub fn inline(scheduler: Rc<dyn Scheduler>) -> Self {
        Self { scheduler, reactor: None }
    }

    /// The scheduler results are delivered on.
    pub fn scheduler(&self) -> Rc<dyn Scheduler> {
        Rc::clone(&self.scheduler)
    }

    /// Runs `work` off the loop and delivers its result as a [`Deferred`].
    pub fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Deferred<T> {
        match &self.reactor {
            Some(reactor) => reactor.defer_to_thread(work),
            None => Deferred::succeed(self.scheduler(), work()),
        }
    }

    /// A Deferred already fired with `value`.
    pub fn succeed<T: 'static>(&self, value: T) -> Deferred<T> {
        Deferred::succeed(self.scheduler(), value)
    }

    /// A new, unfired Deferred on this scheduler.
    pub fn deferred<T: 'static>(&self) -> Deferred<T> {
        Deferred::new(self.scheduler())
    }

    /// The reactor's handle for threads that deliver results themselves (a PAM conversation's
    /// thread); `None` when inline.
    pub fn thread_handle(&self) -> Option<ThreadHandle> {
        self.reactor.as_ref().map(Reactor::thread_handle)
    }
}

impl fmt::Debug for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.reactor.is_some() { "thread pool" } else { "inline" };
        f.debug_tuple("Offload").field(&kind).finish()
    }
}

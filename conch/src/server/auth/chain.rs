//! [`Chain`]: several backends tried in order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use twine_core::Deferred;

use super::{
    AccountStatus, AuthBackend, AuthRequest, ConnectionFacts, ConnectionId, LoginRequest,
    SessionGrant,
};
use crate::server::{when_fired, Restrictions};
use crate::userauth::{Attempt, Decision, RequestId};

/// Backends tried in order until one does not reject: `authorized_keys` first, then PAM, say.
///
/// - [`decide`](AuthBackend::decide): the first answer other than a rejection wins; a backend
///   whose Deferred fails counts as rejecting (and is logged). The answers to a
///   keyboard-interactive round go back to the backend that asked the questions.
/// - [`check_account`](AuthBackend::check_account): every backend must allow the account, in
///   order (so PAM's account checks apply to key logins too, as in sshd with `UsePAM`).
/// - [`open_session`](AuthBackend::open_session): every backend opens its session; the
///   environments are concatenated. [`close_session`](AuthBackend::close_session) and
///   [`connection_ended`](AuthBackend::connection_ended) go to all of them.
#[derive(Clone, Default)]
pub struct Chain {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    backends: Vec<Box<dyn AuthBackend>>,
    /// Which backend runs each keyboard-interactive conversation.
    conversations: RefCell<HashMap<(ConnectionId, RequestId), usize>>,
}

impl Chain {
    /// An empty chain (it rejects everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `backend` at the end.
    ///
    /// # Panics
    ///
    /// Never in practice: a chain being built is not shared yet. A chain already cloned
    /// ignores further additions (and logs it).
    #[must_use]
    pub fn with(mut self, backend: impl AuthBackend + 'static) -> Self {
        match Rc::get_mut(&mut self.inner) {
            Some(inner) => inner.backends.push(Box::new(backend)),
            None => log::error!("a backend added to a chain already in use is ignored"),
        }
        self
    }

    /// How many backends the chain holds.
    pub fn len(&self) -> usize {
        self.inner.backends.len()
    }

    /// Whether the chain holds no backend.
    pub fn is_empty(&self) -> bool {
        self.inner.backends.is_empty()
    }
}

impl Inner {
    /// Asks backend `index` and, on a rejection, the ones after it.
    fn decide_from(
        self: Rc<Self>,
        index: usize,
        request: Rc<AuthRequest>,
        out: Deferred<Decision<Restrictions>>,
    ) {
        let Some(backend) = self.backends.get(index) else {
            out.callback(Decision::Reject);
            return;
        };
        let answer = backend.decide(&request);
        when_fired(&answer, move |result| match result {
            Ok(Decision::Reject) => self.decide_from(index + 1, request, out),
            Err(err) => {
                log::warn!("auth backend {index} of a chain failed: {err}");
                self.decide_from(index + 1, request, out);
            }
            Ok(decision) => {
                if matches!(decision, Decision::InfoRequest(_)) {
                    let key = (request.connection.id, request.id);
                    self.conversations.borrow_mut().insert(key, index);
                }
                out.callback(decision);
            }
        });
    }

    /// Gives a keyboard-interactive round's answers to the backend that asked.
    fn continue_conversation(
        self: Rc<Self>,
        conversation: RequestId,
        request: &AuthRequest,
        out: Deferred<Decision<Restrictions>>,
    ) {
        let key = (request.connection.id, conversation);
        let index = self.conversations.borrow_mut().remove(&key);
        let Some(backend) = index.and_then(|index| self.backends.get(index)) else {
            out.callback(Decision::Reject);
            return;
        };
        let answer = backend.decide(request);
        when_fired(&answer, move |result| {
            let decision = result.unwrap_or_else(|err| {
                log::warn!("keyboard-interactive backend failed: {err}");
                Decision::Reject
            });
            if let (Decision::InfoRequest(_), Some(index)) = (&decision, index) {
                self.conversations.borrow_mut().insert(key, index);
            }
            out.callback(decision);
        });
    }

    /// Runs every backend's account check in order; the first denial wins.
    fn check_from(self: Rc<Self>, index: usize, login: LoginRequest, out: Deferred<AccountStatus>) {
        let Some(backend) = self.backends.get(index) else {
            out.callback(AccountStatus::Allowed);
            return;
        };
        let answer = backend.check_account(&login);
        when_fired(&answer, move |result| match result {
            Ok(AccountStatus::Allowed) => self.check_from(index + 1, login, out),
            Ok(denied) => out.callback(denied),
            Err(err) => out.callback(AccountStatus::Denied { reason: err.to_string() }),
        });
    }

    /// Opens every backend's session in order, gathering their environments.
    fn open_from(
        self: Rc<Self>,
        index: usize,
        login: LoginRequest,
        mut grant: SessionGrant,
        out: Deferred<SessionGrant>,
    ) {
        let Some(backend) = self.backends.get(index) else {
            out.callback(grant);
            return;
        };
        let answer = backend.open_session(&login);
        when_fired(&answer, move |result| match result {
            Ok(more) => {
                grant.environment.extend(more.environment);
                self.open_from(index + 1, login, grant, out);
            }
            Err(err) => out.errback(err),
        });
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain").field("backends", &self.inner.backends.len()).finish()
    }
}

impl AuthBackend for Chain {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let out = request.offload.deferred();
        let inner = Rc::clone(&self.inner);
        if let Attempt::KeyboardInteractiveResponses { conversation, .. } = &request.attempt {
            inner.continue_conversation(*conversation, request, out.clone());
            return out;
        }
        let request = Rc::new(request.clone());
        inner.decide_from(0, request, out.clone());
        out
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        let out = login.offload.deferred();
        Rc::clone(&self.inner).check_from(0, login.clone(), out.clone());
        out
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        let out = login.offload.deferred();
        Rc::clone(&self.inner).open_from(0, login.clone(), SessionGrant::default(), out.clone());
        out
    }

    fn signature_refused(&self, request: &AuthRequest) {
        for backend in &self.inner.backends {
            backend.signature_refused(request);
        }
    }

    fn close_session(&self, login: &LoginRequest) {
        for backend in &self.inner.backends {
            backend.close_session(login);
        }
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        self.inner.conversations.borrow_mut().retain(|(id, _), _| *id != connection.id);
        for backend in &self.inner.backends {
            backend.connection_ended(connection);
        }
    }
}

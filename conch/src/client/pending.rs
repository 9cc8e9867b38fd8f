//! [`Pending`]: a client operation's result that is not there yet.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use twine_core::time::Scheduler;
use twine_core::Deferred;

use super::ClientError;

/// The result of a client operation still under way (connecting, opening a session, asking for
/// a forward): a [`Future`] of `Result<T, ClientError>` and, for callback-style code, a
/// [`Deferred`] ([`deferred`](Self::deferred), [`on_settled`](Self::on_settled)).
///
/// The operation runs whether or not anyone waits: dropping a `Pending` does not cancel it.
/// Like every twine result, it is never delivered inside the call that settles it.
#[must_use = "a Pending does nothing by itself: await it or add a callback"]
pub struct Pending<T> {
    deferred: Deferred<Result<T, ClientError>>,
}

impl<T: 'static> Pending<T> {
    /// A result that will be settled later, on `scheduler`'s loop.
    pub(crate) fn new(scheduler: &Rc<dyn Scheduler>) -> Self {
        Self { deferred: Deferred::new(Rc::clone(scheduler)) }
    }

    /// A result already settled.
    pub(crate) fn settled(scheduler: &Rc<dyn Scheduler>, result: Result<T, ClientError>) -> Self {
        let pending = Self::new(scheduler);
        pending.settle(result);
        pending
    }

    /// Settles the result; a second settlement is ignored.
    pub(crate) fn settle(&self, result: Result<T, ClientError>) {
        if !self.deferred.fired() {
            self.deferred.callback(result);
        }
    }

    /// Whether the result is settled.
    pub fn is_settled(&self) -> bool {
        self.deferred.fired()
    }

    /// The underlying Deferred, to chain callbacks Twisted-style. Its own failure (rather than
    /// a `ClientError` inside its value) means the reactor stopped.
    pub fn deferred(&self) -> Deferred<Result<T, ClientError>> {
        self.deferred.clone()
    }

    /// Calls `f` with the result once it is settled, from the loop.
    pub fn on_settled(self, f: impl FnOnce(Result<T, ClientError>) + 'static) {
        let _ignored: Deferred<()> = self.deferred.then(move |result| {
            f(flatten(result));
            Ok(())
        });
    }

    /// Takes the result if it is settled: the polling way, for tests and loops. `None` while
    /// pending, or once taken.
    pub fn take_result(&self) -> Option<Result<T, ClientError>> {
        self.deferred.take_result().map(flatten)
    }
}

impl<T> Clone for Pending<T> {
    fn clone(&self) -> Self {
        Self { deferred: self.deferred.clone() }
    }
}

impl<T: 'static> Future for Pending<T> {
    type Output = Result<T, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.deferred).poll(cx).map(flatten)
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pending").field(&self.deferred).finish()
    }
}

fn flatten<T>(result: Result<Result<T, ClientError>, twine_core::Error>) -> Result<T, ClientError> {
    result.unwrap_or_else(|err| Err(ClientError::Local(err)))
}

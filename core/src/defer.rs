//! [`Deferred`]: a one-shot result with a callback/errback chain, and a `Future`.
//!
//! A `Deferred<T>` stands for a `Result<T, Error>` that is not there yet: a thread pool job
//! ([`Reactor::defer_to_thread`](crate::Reactor::defer_to_thread)), a spawned future, an
//! authentication decision. Whoever produces the result fires it with
//! [`callback`](Deferred::callback) or [`errback`](Deferred::errback); whoever wants it adds
//! callbacks, takes it with [`take_result`](Deferred::take_result), or `.await`s it.
//!
//! # Delivery is never synchronous
//!
//! Unlike Twisted's, a twine Deferred **never runs a callback inside the call that fires it
//! or adds the callback**. Firing (or adding a callback to a fired Deferred) queues one run
//! of the chain on the Deferred's [`Scheduler`], which happens on a later turn of the loop
//! (or at the next [`Clock::advance`](crate::testing::Clock::advance) in tests). Callbacks
//! then run in the order added, each receiving the previous one's result (Twisted's chain);
//! callbacks added by a callback to the same Deferred run in the same pass.
//!
//! So code that is in the middle of mutating a state machine (holding a `RefCell` borrow)
//! can ask a backend for a decision, receive a Deferred that may already be fired, and add a
//! callback that borrows the same state machine: the callback runs after the borrow is gone.
//! A caller that wants the value now when it is there polls
//! [`take_result`](Deferred::take_result) first.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, ErrorKind};
use crate::time::Scheduler;

type Link<T> = Box<dyn FnOnce(Result<T, Error>) -> Option<Result<T, Error>>>;

/// A result that is not there yet, with a chain of callbacks (see the module docs).
///
/// Cheap to clone: clones share the chain and the result.
pub struct Deferred<T> {
    inner: Rc<Shared<T>>,
}

struct Shared<T> {
    scheduler: Rc<dyn Scheduler>,
    state: RefCell<State<T>>,
}

struct State<T> {
    result: Option<Result<T, Error>>,
    fired: bool,
    consumed: bool,
    chain: VecDeque<Link<T>>,
    scheduled: bool,
    running: bool,
    waker: Option<Waker>,
}

impl<T: 'static> Deferred<T> {
    /// A new, unfired Deferred whose callbacks run on `scheduler`'s loop.
    pub fn new(scheduler: Rc<dyn Scheduler>) -> Self {
        Self {
            inner: Rc::new(Shared {
                scheduler,
                state: RefCell::new(State {
                    result: None,
                    fired: false,
                    consumed: false,
                    chain: VecDeque::new(),
                    scheduled: false,
                    running: false,
                    waker: None,
                }),
            }),
        }
    }

    /// A Deferred already fired with `value`.
    pub fn succeed(scheduler: Rc<dyn Scheduler>, value: T) -> Self {
        let deferred = Self::new(scheduler);
        deferred.callback(value);
        deferred
    }

    /// A Deferred already failed with `error`.
    pub fn fail(scheduler: Rc<dyn Scheduler>, error: Error) -> Self {
        let deferred = Self::new(scheduler);
        deferred.errback(error);
        deferred
    }

    /// Fires with a success. A Deferred fires once: later calls are logged and ignored.
    pub fn callback(&self, value: T) {
        self.fire(Ok(value));
    }

    /// Fires with a failure. A Deferred fires once: later calls are logged and ignored.
    pub fn errback(&self, error: Error) {
        self.fire(Err(error));
    }

    /// Fires with `result`; the chain runs on a later turn.
    pub fn fire(&self, result: Result<T, Error>) {
        {
            let mut state = self.inner.state.borrow_mut();
            if state.fired {
                log::warn!("a Deferred was fired twice; the second result is dropped");
                return;
            }
            state.fired = true;
            state.result = Some(result);
        }
        self.schedule();
    }

    /// Fails an unfired Deferred with [`ErrorKind::Cancelled`]; no effect once fired.
    pub fn cancel(&self) {
        if !self.fired() {
            self.errback(Error::new(ErrorKind::Cancelled, "deferred cancelled"));
        }
    }

    /// Adds a callback for success; a failure passes by it unchanged. Returns `self` to chain.
    pub fn add_callback(&self, callback: impl FnOnce(T) -> Result<T, Error> + 'static) -> &Self {
        self.push(Box::new(move |result: Result<T, Error>| Some(result.and_then(callback))))
    }

    /// Adds an errback for failure; it may recover (return `Ok`) or fail again.
    pub fn add_errback(&self, errback: impl FnOnce(Error) -> Result<T, Error> + 'static) -> &Self {
        self.push(Box::new(move |result: Result<T, Error>| Some(result.or_else(errback))))
    }

    /// Adds one function for both outcomes (Twisted's `addBoth`).
    pub fn add_both(
        &self,
        both: impl FnOnce(Result<T, Error>) -> Result<T, Error> + 'static,
    ) -> &Self {
        self.push(Box::new(move |result: Result<T, Error>| Some(both(result))))
    }

    /// Ends this chain by handing its result to `f`, whose output fires the returned
    /// Deferred: the way to change the result's type. Callbacks added to `self` afterwards
    /// are dropped.
    pub fn then<U: 'static>(
        &self,
        f: impl FnOnce(Result<T, Error>) -> Result<U, Error> + 'static,
    ) -> Deferred<U> {
        let next = Deferred::new(Rc::clone(&self.inner.scheduler));
        let fire = next.clone();
        self.push(Box::new(move |result: Result<T, Error>| {
            fire.fire(f(result));
            None
        }));
        next
    }

    /// Whether the Deferred has fired (its chain may still be running).
    pub fn fired(&self) -> bool {
        self.inner.state.borrow().fired
    }

    /// Takes the result if the Deferred has fired and its chain has run: the polling way to
    /// get a result without a callback. `None` while pending, or once taken.
    pub fn take_result(&self) -> Option<Result<T, Error>> {
        let mut state = self.inner.state.borrow_mut();
        if !state.fired || state.running || !state.chain.is_empty() {
            return None;
        }
        let result = state.result.take()?;
        state.consumed = true;
        Some(result)
    }

    fn push(&self, link: Link<T>) -> &Self {
        self.inner.state.borrow_mut().chain.push_back(link);
        self.schedule();
        self
    }

    /// Queues a run of the chain if it has fired and is not already queued or running.
    fn schedule(&self) {
        let waker = {
            let mut state = self.inner.state.borrow_mut();
            if !state.fired || state.scheduled || state.running {
                return;
            }
            if state.chain.is_empty() {
                state.waker.take()
            } else {
                state.scheduled = true;
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
            return;
        }
        if !self.inner.state.borrow().scheduled {
            return;
        }
        let shared = Rc::clone(&self.inner);
        self.inner.scheduler.call_soon_boxed(Box::new(move || Self::run_chain(&shared)));
    }

    fn run_chain(shared: &Rc<Shared<T>>) {
        {
            let mut state = shared.state.borrow_mut();
            state.scheduled = false;
            state.running = true;
        }
        loop {
            let (link, result) = {
                let mut state = shared.state.borrow_mut();
                if state.consumed {
                    state.chain.clear();
                    break;
                }
                let Some(link) = state.chain.pop_front() else { break };
                let Some(result) = state.result.take() else { break };
                (link, result)
            };
            let next = link(result);
            let mut state = shared.state.borrow_mut();
            match next {
                Some(result) => state.result = Some(result),
                None => state.consumed = true,
            }
        }
        let waker = {
            let mut state = shared.state.borrow_mut();
            state.running = false;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Self { inner: Rc::clone(&self.inner) }
    }
}

impl<T: 'static> Future for Deferred<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.take_result() {
            return Poll::Ready(result);
        }
        let mut state = self.inner.state.borrow_mut();
        if state.consumed {
            return Poll::Ready(Err(Error::new(ErrorKind::Cancelled, "result already taken")));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.borrow();
        f.debug_struct("Deferred")
            .field("fired", &state.fired)
            .field("callbacks", &state.chain.len())
            .field("consumed", &state.consumed)
            .finish()
    }
}

impl<T> Drop for State<T> {
    fn drop(&mut self) {
        if let Some(Err(err)) = &self.result {
            log::warn!("unhandled error in Deferred: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;
    use crate::testing::Clock;

    fn log() -> Rc<RefCell<Vec<String>>> {
        Rc::new(RefCell::new(Vec::new()))
    }

    /// Neither firing nor adding a callback to a fired Deferred runs the callback: it runs on
    /// the next turn, so a caller holding a borrow the callback needs is safe.
    #[test]
    fn never_runs_callbacks_synchronously() {
        let clock = Clock::new();
        let state = Rc::new(RefCell::new(0));
        let deferred = clock.deferred::<i32>();
        deferred.callback(5);
        {
            let mut held = state.borrow_mut();
            let target = Rc::clone(&state);
            deferred.add_callback(move |value| {
                *target.borrow_mut() += value;
                Ok(value)
            });
            *held += 1;
        }
        assert_eq!(*state.borrow(), 1);
        clock.advance(Duration::ZERO);
        assert_eq!(*state.borrow(), 6);
    }

    /// Callbacks and errbacks form one chain: each sees the previous result, an errback can
    /// recover, a callback can fail.
    #[test]
    fn runs_the_callback_chain_in_order() {
        let clock = Clock::new();
        let seen = log();
        let deferred = clock.deferred::<i32>();
        let (a, b, c) = (Rc::clone(&seen), Rc::clone(&seen), Rc::clone(&seen));
        deferred
            .add_callback(move |value| {
                a.borrow_mut().push(format!("cb {value}"));
                Err(Error::new(ErrorKind::Other, "boom"))
            })
            .add_callback(|_| unreachable!("a failure skips callbacks"))
            .add_errback(move |err| {
                b.borrow_mut().push(format!("eb {}", err.kind()));
                Ok(7)
            })
            .add_both(move |result| {
                c.borrow_mut().push(format!("both {result:?}"));
                result
            });
        deferred.callback(1);
        clock.advance(Duration::ZERO);
        assert_eq!(*seen.borrow(), ["cb 1", "eb error", "both Ok(7)"]);
        assert_eq!(deferred.take_result().and_then(Result::ok), Some(7));
    }

    /// `take_result` polls: nothing while pending, the value once, then nothing.
    #[test]
    fn take_result_polls_once() {
        let clock = Clock::new();
        let deferred = clock.deferred::<&str>();
        assert!(deferred.take_result().is_none());
        deferred.callback("done");
        assert_eq!(deferred.take_result().and_then(Result::ok), Some("done"));
        assert!(deferred.take_result().is_none());
    }

    /// `then` changes the result's type and fires the new Deferred from the old chain.
    #[test]
    fn then_maps_to_a_new_deferred() {
        let clock = Clock::new();
        let deferred = clock.deferred::<i32>();
        let text = deferred.then(|result| result.map(|value| format!("<{value}>")));
        deferred.callback(42);
        clock.advance(Duration::ZERO);
        clock.advance(Duration::ZERO);
        assert_eq!(text.take_result().and_then(Result::ok).as_deref(), Some("<42>"));
    }

    /// Cancelling an unfired Deferred fails it with `Cancelled`; a fired one is untouched.
    #[test]
    fn cancel_fails_only_an_unfired_deferred() {
        let clock = Clock::new();
        let pending = clock.deferred::<i32>();
        pending.cancel();
        let err = pending.take_result().and_then(Result::err).map(|err| err.kind());
        assert_eq!(err, Some(ErrorKind::Cancelled));
        let fired = Deferred::succeed(clock.scheduler(), 1);
        fired.cancel();
        assert_eq!(fired.take_result().and_then(Result::ok), Some(1));
    }

    struct Flag(std::sync::atomic::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// As a future, a Deferred is pending until fired, wakes its waker, then yields the result.
    #[test]
    fn is_a_future_that_wakes_when_fired() {
        let clock = Clock::new();
        let mut deferred = clock.deferred::<u8>();
        let flag = Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut deferred).poll(&mut cx).is_pending());
        deferred.callback(9);
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        let polled = Pin::new(&mut deferred).poll(&mut cx);
        assert!(matches!(polled, Poll::Ready(Ok(9))));
    }
}

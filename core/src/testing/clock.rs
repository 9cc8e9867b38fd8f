//! `Clock`: virtual time.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::defer::Deferred;
use crate::time::{run_due, DelayedCall, Scheduler, TimeSource, Timers};

/// At most this many rounds of queued calls run per [`Clock::advance`].
const ROUNDS: usize = 1000;

/// A [`Scheduler`] whose time moves only by [`advance`](Self::advance) (Twisted's
/// `task.Clock`). Cheap to clone; clones share the time and the calls.
#[derive(Clone)]
pub struct Clock {
    inner: Rc<Inner>,
}

struct Inner {
    now: Rc<Cell<Instant>>,
    timers: Rc<RefCell<Timers>>,
    soon: RefCell<VecDeque<Box<dyn FnOnce()>>>,
}

impl Clock {
    /// A clock starting at the real current instant (an `Instant` cannot be made up).
    pub fn new() -> Self {
        let now = Rc::new(Cell::new(Instant::now()));
        let timers = Timers::new(TimeSource::Manual(Rc::clone(&now)));
        Self { inner: Rc::new(Inner { now, timers, soon: RefCell::new(VecDeque::new()) }) }
    }

    /// Moves time forward by `amount`, then runs what is due: queued calls, Deferred chains,
    /// and every timer due by the new time, earliest first (each seeing [`now`](Self::now) at
    /// the new time). `advance(Duration::ZERO)` just runs what is queued.
    pub fn advance(&self, amount: Duration) {
        let now = self.inner.now.get() + amount;
        self.inner.now.set(now);
        for _ in 0..ROUNDS {
            let ran_soon = self.run_soon();
            let ran_timers = run_due(&self.inner.timers, now, 10_000);
            if ran_soon == 0 && ran_timers == 0 {
                return;
            }
        }
        log::warn!("Clock::advance stopped after {ROUNDS} rounds of calls");
    }

    /// Advances by each amount in turn (Twisted's `pump`).
    pub fn pump(&self, amounts: &[Duration]) {
        for amount in amounts {
            self.advance(*amount);
        }
    }

    /// Runs `call` once, `delay` from now.
    pub fn call_later(&self, delay: Duration, call: impl FnOnce() + 'static) -> DelayedCall {
        Timers::schedule(&self.inner.timers, delay, Box::new(call))
    }

    /// Runs `call` at the next [`advance`](Self::advance).
    pub fn call_soon(&self, call: impl FnOnce() + 'static) {
        self.inner.soon.borrow_mut().push_back(Box::new(call));
    }

    /// This clock as a shared [`Scheduler`].
    pub fn scheduler(&self) -> Rc<dyn Scheduler> {
        Rc::new(self.clone())
    }

    /// A new Deferred whose callbacks run at the next [`advance`](Self::advance).
    pub fn deferred<T: 'static>(&self) -> Deferred<T> {
        Deferred::new(self.scheduler())
    }

    /// How many timed calls are pending.
    pub fn pending(&self) -> usize {
        self.inner.timers.borrow().len()
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.inner.now.get()
    }

    fn run_soon(&self) -> usize {
        let count = self.inner.soon.borrow().len();
        for _ in 0..count {
            let Some(call) = self.inner.soon.borrow_mut().pop_front() else { break };
            call();
        }
        count
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for Clock {
    fn now(&self) -> Instant {
        self.inner.now.get()
    }

    fn call_later_boxed(&self, delay: Duration, call: Box<dyn FnOnce()>) -> DelayedCall {
        Timers::schedule(&self.inner.timers, delay, call)
    }

    fn call_soon_boxed(&self, call: Box<dyn FnOnce()>) {
        self.inner.soon.borrow_mut().push_back(call);
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock").field("pending", &self.pending()).finish()
    }
}

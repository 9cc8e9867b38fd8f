//! Time: the [`Scheduler`] trait, [`DelayedCall`] and [`LoopingCall`].
//!
//! The reactor and the test [`Clock`](crate::testing::Clock) implement the same [`Scheduler`],
//! so a protocol that takes its time source as a `Rc<dyn Scheduler>` runs against real time in
//! production and against virtual time in its tests (Twisted's `IReactorTime`).
//!
//! Calls never run inside the method that schedules them: a call due now runs on a later turn
//! of the loop (or at the next [`Clock::advance`](crate::testing::Clock::advance)).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// A source of time and of scheduled calls: the reactor, or a test clock.
///
/// The trait is object-safe; the reactor and the test clock also have generic inherent methods
/// (`call_later(delay, || ..)`) that box for you.
pub trait Scheduler {
    /// The current time.
    fn now(&self) -> Instant;

    /// Runs `call` once, `delay` from now, from the loop. A zero delay still waits for a later
    /// turn. Returns a handle to cancel or move the call.
    fn call_later_boxed(&self, delay: Duration, call: Box<dyn FnOnce()>) -> DelayedCall;

    /// Runs `call` on the next turn of the loop, before it waits for I/O again.
    fn call_soon_boxed(&self, call: Box<dyn FnOnce()>);
}

/// A call scheduled for later, as returned by [`Scheduler::call_later_boxed`].
///
/// The handle can be kept, cloned and dropped freely: dropping it does not cancel the call.
#[derive(Clone)]
pub struct DelayedCall {
    id: u64,
    timers: Weak<RefCell<Timers>>,
}

impl DelayedCall {
    /// Cancels the call. Returns whether it was still pending (not yet run, not cancelled).
    pub fn cancel(&self) -> bool {
        self.with_timers(|timers| timers.cancel(self.id)).unwrap_or(false)
    }

    /// Moves the call to `delay` from now. Returns whether it was still pending.
    pub fn reset(&self, delay: Duration) -> bool {
        self.with_timers(|timers| {
            let deadline = timers.now() + delay;
            timers.move_to(self.id, deadline)
        })
        .unwrap_or(false)
    }

    /// Postpones the call by `extra`. Returns whether it was still pending.
    pub fn delay(&self, extra: Duration) -> bool {
        self.with_timers(|timers| match timers.deadline(self.id) {
            Some(deadline) => timers.move_to(self.id, deadline + extra),
            None => false,
        })
        .unwrap_or(false)
    }

    /// Whether the call is still pending.
    pub fn active(&self) -> bool {
        self.deadline().is_some()
    }

    /// When the call is due, if it is still pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.with_timers(|timers| timers.deadline(self.id)).flatten()
    }

    fn with_timers<R>(&self, f: impl FnOnce(&mut Timers) -> R) -> Option<R> {
        let timers = self.timers.upgrade()?;
        let mut timers = timers.borrow_mut();
        Some(f(&mut timers))
    }
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall")
            .field("id", &self.id)
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// Runs a call every `interval` until stopped (Twisted's `task.LoopingCall`).
///
/// Ticks are aligned to the start time: a tick that runs late does not shift the next ones,
/// and ticks missed entirely (the loop was busy for several intervals) are skipped, not
/// bunched. The loop keeps itself alive: dropping the handle does not stop it; call
/// [`stop`](Self::stop).
#[derive(Clone)]
pub struct LoopingCall {
    state: Rc<LoopingState>,
}

struct LoopingState {
    scheduler: Rc<dyn Scheduler>,
    interval: Duration,
    start: Instant,
    call: RefCell<Box<dyn FnMut()>>,
    pending: RefCell<Option<DelayedCall>>,
    running: Cell<bool>,
}

impl LoopingCall {
    /// Starts calling `call` every `interval` on `scheduler`; the first call runs right away
    /// (on the next turn) when `now` is true, else after one interval.
    pub fn start(
        scheduler: Rc<dyn Scheduler>,
        interval: Duration,
        now: bool,
        call: impl FnMut() + 'static,
    ) -> Self {
        let start = scheduler.now();
        let state = Rc::new(LoopingState {
            scheduler,
            interval,
            start,
            call: RefCell::new(Box::new(call)),
            pending: RefCell::new(None),
            running: Cell::new(true),
        });
        let first = if now { Duration::ZERO } else { interval };
        LoopingState::arm(&state, first);
        Self { state }
    }

    /// Stops the loop; the pending tick is cancelled.
    pub fn stop(&self) {
        self.state.running.set(false);
        if let Some(pending) = self.state.pending.borrow_mut().take() {
            pending.cancel();
        }
    }

    /// Whether the loop is still running.
    pub fn running(&self) -> bool {
        self.state.running.get()
    }
}

impl fmt::Debug for LoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopingCall")
            .field("interval", &self.state.interval)
            .field("running", &self.running())
            .finish()
    }
}

impl LoopingState {
    fn arm(state: &Rc<Self>, delay: Duration) {
        let again = Rc::clone(state);
        let call = state.scheduler.call_later_boxed(delay, Box::new(move || Self::tick(&again)));
        *state.pending.borrow_mut() = Some(call);
    }

    fn tick(state: &Rc<Self>) {
        if !state.running.get() {
            return;
        }
        (state.call.borrow_mut())();
        if !state.running.get() {
            return;
        }
        let now = state.scheduler.now();
        let delay = if state.interval.is_zero() {
            Duration::ZERO
        } else {
            // The next multiple of the interval after now, counted from the start.
            let elapsed = now.saturating_duration_since(state.start).as_nanos();
            let interval = state.interval.as_nanos();
            let next = (elapsed / interval + 1) * interval;
            Duration::from_nanos(u64::try_from(next - elapsed).unwrap_or(u64::MAX))
        };
        Self::arm(state, delay);
    }
}

/// Where a timer heap reads the time: the OS clock, or a manually advanced one.
#[derive(Clone, Debug)]
pub(crate) enum TimeSource {
    /// `Instant::now()`.
    Real,
    /// A shared cell that a test clock moves.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    Manual(Rc<Cell<Instant>>),
}

impl TimeSource {
    pub(crate) fn now(&self) -> Instant {
        match self {
            Self::Real => Instant::now(),
            Self::Manual(now) => now.get(),
        }
    }
}

struct TimerEntry {
    deadline: Instant,
    seq: u64,
    call: Box<dyn FnOnce()>,
}

/// The timer heap shared by the reactor and the test clock: a binary heap ordered by deadline
/// then scheduling order, with lazy removal of cancelled and moved entries.
pub(crate) struct Timers {
    source: TimeSource,
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    /// By id. A B-tree rather than a hash map: the loop looks the heap's top up on every
    /// turn, and a few comparisons of sequential ids cost less than hashing one.
    entries: BTreeMap<u64, TimerEntry>,
    next_id: u64,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn new(source: TimeSource) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            source,
            heap: BinaryHeap::new(),
            entries: BTreeMap::new(),
            next_id: 0,
            next_seq: 0,
        }))
    }

    /// Schedules `call` at `now + delay`.
    pub(crate) fn schedule(
        timers: &Rc<RefCell<Self>>,
        delay: Duration,
        call: Box<dyn FnOnce()>,
    ) -> DelayedCall {
        let mut this = timers.borrow_mut();
        let id = this.next_id;
        this.next_id += 1;
        let deadline = this.now() + delay;
        let seq = this.bump_seq();
        this.entries.insert(id, TimerEntry { deadline, seq, call });
        this.heap.push(Reverse((deadline, seq, id)));
        DelayedCall { id, timers: Rc::downgrade(timers) }
    }

    pub(crate) fn now(&self) -> Instant {
        self.source.now()
    }

    fn bump_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn cancel(&mut self, id: u64) -> bool {
        self.entries.remove(&id).is_some()
    }

    fn move_to(&mut self, id: u64, deadline: Instant) -> bool {
        let seq = self.bump_seq();
        let Some(entry) = self.entries.get_mut(&id) else { return false };
        entry.deadline = deadline;
        entry.seq = seq;
        self.heap.push(Reverse((deadline, seq, id)));
        true
    }

    fn deadline(&self, id: u64) -> Option<Instant> {
        self.entries.get(&id).map(|entry| entry.deadline)
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, seq, id))) = self.heap.peek().copied() {
            match self.entries.get(&id) {
                Some(entry) if entry.seq == seq => return Some(deadline),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Removes and returns the earliest call due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Box<dyn FnOnce()>> {
        // The loop asks on every turn: when even the heap's top (cancelled or not) is later,
        // nothing is due, and the map need not be consulted.
        let Reverse((earliest, _, _)) = self.heap.peek()?;
        if *earliest > now {
            return None;
        }
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, _, id)) = self.heap.pop()?;
        self.entries.remove(&id).map(|entry| entry.call)
    }

    /// Drops every pending call (the loop is shutting down).
    pub(crate) fn clear(&mut self) -> Vec<Box<dyn FnOnce()>> {
        self.heap.clear();
        std::mem::take(&mut self.entries).into_values().map(|entry| entry.call).collect()
    }

    /// How many calls are pending.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Runs every call due at `now` on `timers`, earliest first, releasing the borrow around each
/// call so calls can schedule more; calls scheduled meanwhile for `now` or earlier run too,
/// up to `limit` calls. Returns how many ran.
pub(crate) fn run_due(timers: &RefCell<Timers>, now: Instant, limit: usize) -> usize {
    let mut ran = 0;
    while ran < limit {
        let Some(call) = timers.borrow_mut().pop_due(now) else { break };
        call();
        ran += 1;
    }
    ran
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::testing::Clock;

    /// A shared log and a maker of calls that append to it.
    struct Recorder {
        log: Rc<RefCell<Vec<&'static str>>>,
    }

    impl Recorder {
        fn call(&self, name: &'static str) -> Box<dyn FnOnce()> {
            let sink = Rc::clone(&self.log);
            Box::new(move || sink.borrow_mut().push(name))
        }
    }

    /// Calls run when due, earliest first, and calls due at the same time in the order made.
    #[test]
    fn runs_calls_in_deadline_then_scheduling_order() {
        let clock = Clock::new();
        let recorder = Recorder { log: Rc::default() };
        let log = Rc::clone(&recorder.log);
        let make = |name: &'static str| recorder.call(name);
        clock.call_later_boxed(Duration::from_secs(3), make("c"));
        clock.call_later_boxed(Duration::from_secs(1), make("a1"));
        clock.call_later_boxed(Duration::from_secs(1), make("a2"));
        clock.call_later_boxed(Duration::from_secs(2), make("b"));
        clock.advance(Duration::from_millis(999));
        assert!(log.borrow().is_empty());
        clock.advance(Duration::from_millis(1));
        assert_eq!(*log.borrow(), ["a1", "a2"]);
        clock.advance(Duration::from_secs(5));
        assert_eq!(*log.borrow(), ["a1", "a2", "b", "c"]);
    }

    /// A cancelled call never runs, and cancelling twice reports that it was not pending.
    #[test]
    fn cancelled_calls_never_run() {
        let clock = Clock::new();
        let recorder = Recorder { log: Rc::default() };
        let log = Rc::clone(&recorder.log);
        let make = |name: &'static str| recorder.call(name);
        let call = clock.call_later_boxed(Duration::from_secs(1), make("x"));
        assert!(call.active());
        assert!(call.cancel());
        assert!(!call.cancel());
        assert!(!call.active());
        clock.advance(Duration::from_secs(2));
        assert!(log.borrow().is_empty());
        assert_eq!(clock.pending(), 0);
    }

    /// `reset` moves a call to a new delay from now; `delay` postpones it.
    #[test]
    fn reset_and_delay_move_a_call() {
        let clock = Clock::new();
        let recorder = Recorder { log: Rc::default() };
        let log = Rc::clone(&recorder.log);
        let make = |name: &'static str| recorder.call(name);
        let call = clock.call_later_boxed(Duration::from_secs(1), make("x"));
        clock.advance(Duration::from_millis(900));
        assert!(call.reset(Duration::from_secs(1)));
        clock.advance(Duration::from_millis(900));
        assert!(log.borrow().is_empty());
        assert!(call.delay(Duration::from_secs(1)));
        clock.advance(Duration::from_millis(1000));
        assert!(log.borrow().is_empty());
        clock.advance(Duration::from_millis(100));
        assert_eq!(*log.borrow(), ["x"]);
        assert!(!call.active());
    }

    /// A looping call ticks on interval boundaries, skips ticks it missed, and stops.
    #[test]
    fn looping_call_ticks_until_stopped() {
        let clock = Clock::new();
        let ticks = Rc::new(RefCell::new(0));
        let counter = Rc::clone(&ticks);
        let looping =
            LoopingCall::start(clock.scheduler(), Duration::from_secs(1), true, move || {
                *counter.borrow_mut() += 1;
            });
        clock.advance(Duration::ZERO);
        assert_eq!(*ticks.borrow(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(*ticks.borrow(), 2);
        // Three and a half intervals late: one tick, not three.
        clock.advance(Duration::from_millis(3500));
        assert_eq!(*ticks.borrow(), 3);
        clock.advance(Duration::from_millis(500));
        assert_eq!(*ticks.borrow(), 4);
        looping.stop();
        assert!(!looping.running());
        clock.advance(Duration::from_secs(10));
        assert_eq!(*ticks.borrow(), 4);
        assert_eq!(clock.pending(), 0);
    }
}

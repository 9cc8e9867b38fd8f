//! The reactor: one thread's event loop over mio, in Twisted's vocabulary.
//!
//! A [`Reactor`] is a cheap, cloneable handle (`Rc` inside) to one loop. Protocols, factories
//! and timer closures keep clones of it; it is not `Send`. Other threads reach the loop through
//! a [`ThreadHandle`] ([`Reactor::thread_handle`]), whose
//! [`call_from_thread`](ThreadHandle::call_from_thread) wakes the loop.
//!
//! # A turn of the loop
//!
//! 1. Wait for I/O readiness, no longer than until the next timer (not at all when calls are
//!    queued).
//! 2. Dispatch readiness to transports, listeners and watched descriptors; they read, accept,
//!    flush and deliver `data_received`.
//! 3. Run calls and results sent from other threads, and poll woken futures.
//! 4. Run timers that are due.
//! 5. Run the calls queued by the steps above (`call_soon`): deferred events such as
//!    `connection_made`, `connection_lost`, `pause_producing` and Deferred callbacks. Calls
//!    they queue in turn run on the next turn.
//!
//! Nothing runs inside the method that requested it (see [the protocol module's
//! guarantee](crate::protocol#no-re-entrancy)).
//!
//! # Portability
//!
//! Readiness is edge-triggered (epoll on Linux, kqueue on the BSDs and macOS): transports drain
//! until the OS says `WouldBlock`, bounded per turn so one busy connection cannot starve the
//! others. A callback given to [`Reactor::watch_fd`] must do the same. Spurious readiness is
//! possible and harmless. Timers have millisecond resolution on Linux (the granularity of the
//! wait), and never fire early.
//!
//! For one reactor per core, run one `Reactor` per thread, each with its own listening socket
//! bound with `SO_REUSEPORT` (the kernel spreads connections), or one listener whose accepted
//! descriptors are handed to the other reactors through [`ThreadHandle::call_from_thread`] and
//! [`Reactor::adopt_fd`]; twine-core leaves that policy to the server.

mod net;
mod signals;
mod stream;
mod tasks;
mod udp;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

use crate::defer::Deferred;
use crate::error::{Error, ErrorKind};
use crate::threads::ThreadPool;
use crate::time::{run_due, DelayedCall, Scheduler, TimeSource, Timers};

pub use net::{Connector, FdWatch, Interest, ListeningPort, Readiness, TcpReactor};
pub use signals::Signal;
pub use udp::{DatagramProtocol, UdpPort};

pub use stream::BufferLimits;

pub(crate) use stream::{Stream, StreamFds, StreamKind};

/// The token of the cross-thread waker.
const WAKER_TOKEN: Token = Token(usize::MAX);
/// The token of the signal pipe.
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
/// Size of the shared read buffer: one read system call reads at most this much. A child's
/// 1 MiB output pipe that filled while its reader waited drains in 4 reads, not 16 (a stream
/// that pauses its reading stops after the read that paused it: a protocol is handed at most this
/// much past its limit).
const READ_BUFFER_SIZE: usize = 256 * 1024;
/// At most this many events are taken from the OS per turn.
const EVENTS_PER_TURN: usize = 1024;
/// At most this many due timers run per turn, so a timer that re-arms itself at zero delay
/// cannot keep the loop from I/O.
const TIMERS_PER_TURN: usize = 10_000;

/// Something registered with the poller: a transport, a listener, a watched descriptor.
pub(crate) trait Ready {
    /// Readiness for the registration tagged `side` (several descriptors may share a handler).
    fn ready(&self, side: Side, event: &mio::event::Event);

    /// The reactor is shutting down: release the descriptor and report the loss.
    fn shutdown(&self);
}

/// Which of a handler's descriptors an event is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The only descriptor (a socket, a pty, a listener).
    Both,
    /// The reading descriptor of a split pair.
    Read,
    /// The writing descriptor of a split pair.
    Write,
}

struct Registration {
    handler: Rc<dyn Ready>,
    side: Side,
}

/// A message from another thread to the loop.
enum Message {
    Call(Box<dyn FnOnce(&Reactor) + Send>),
    ThreadResult(u64, Box<dyn Any + Send>),
    Wake(usize),
}

/// Fires the Deferred of a thread-pool job with the job's type-erased result.
struct PendingResult(Box<dyn FnOnce(Box<dyn Any + Send>)>);

/// The part of the reactor other threads can touch.
struct Shared {
    waker: mio::Waker,
    queue: Mutex<Vec<Message>>,
    /// Set while the loop waits (or is about to) in the poller: only then does a message need a
    /// wake-up system call.
    sleeping: AtomicBool,
    /// Set once the loop has shut down: messages are refused.
    closed: AtomicBool,
}

impl Shared {
    fn send(&self, message: Message) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::ReactorStopped, "call from thread"));
        }
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(message);
        if self.sleeping.load(Ordering::SeqCst) {
            self.waker.wake().map_err(|err| Error::from_io(&err, "wake the reactor"))?;
        }
        Ok(())
    }

    fn take(&self) -> Vec<Message> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunState {
    Idle,
    Running,
    Stopping,
    Stopped,
}

pub(crate) struct Inner {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    registry: Registry,
    registrations: RefCell<slab::Slab<Registration>>,
    timers: Rc<RefCell<Timers>>,
    soon: RefCell<VecDeque<Box<dyn FnOnce()>>>,
    shared: Arc<Shared>,
    tasks: RefCell<tasks::Tasks>,
    state: Cell<RunState>,
    shutdown_triggers: RefCell<Vec<Box<dyn FnOnce()>>>,
    read_buffer: RefCell<Vec<u8>>,
    pool: RefCell<Option<ThreadPool>>,
    pool_limits: Cell<(usize, usize)>,
    thread_results: RefCell<HashMap<u64, PendingResult>>,
    next_job: Cell<u64>,
    signals: RefCell<signals::SignalState>,
    pub(crate) children: RefCell<HashMap<u32, Rc<dyn crate::process::Reap>>>,
    buffer_limits: Cell<BufferLimits>,
}

/// A handle to one event loop. Cheap to clone; not `Send` (see [`ThreadHandle`]).
///
/// ```no_run
/// use twine_core::Reactor;
/// use std::time::Duration;
///
/// let reactor = Reactor::new()?;
/// let stopper = reactor.clone();
/// reactor.call_later(Duration::from_millis(10), move || stopper.stop());
/// reactor.run()?;
/// # Ok::<(), twine_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Reactor {
    pub(crate) inner: Rc<Inner>,
}

impl Reactor {
    /// A new, idle reactor.
    ///
    /// # Errors
    ///
    /// The OS refused a poller or a wake-up descriptor (`EMFILE`, ...).
    pub fn new() -> Result<Self, Error> {
        let poll = Poll::new().map_err(|err| Error::from_io(&err, "create the poller"))?;
        let registry =
            poll.registry().try_clone().map_err(|err| Error::from_io(&err, "clone the poller"))?;
        let waker = mio::Waker::new(&registry, WAKER_TOKEN)
            .map_err(|err| Error::from_io(&err, "create the waker"))?;
        let shared = Arc::new(Shared {
            waker,
            queue: Mutex::new(Vec::new()),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let inner = Rc::new(Inner {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS_PER_TURN)),
            registry,
            registrations: RefCell::new(slab::Slab::new()),
            timers: Timers::new(TimeSource::Real),
            soon: RefCell::new(VecDeque::new()),
            shared,
            tasks: RefCell::new(tasks::Tasks::default()),
            state: Cell::new(RunState::Idle),
            shutdown_triggers: RefCell::new(Vec::new()),
            read_buffer: RefCell::new(vec![0; READ_BUFFER_SIZE]),
            pool: RefCell::new(None),
            pool_limits: Cell::new((ThreadPool::DEFAULT_THREADS, ThreadPool::DEFAULT_QUEUE)),
            thread_results: RefCell::new(HashMap::new()),
            next_job: Cell::new(0),
            signals: RefCell::new(signals::SignalState::default()),
            children: RefCell::new(HashMap::new()),
            buffer_limits: Cell::new(BufferLimits::default()),
        });
        Ok(Self { inner })
    }

    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Rc::downgrade(&self.inner)
    }

    /// Runs the loop until [`stop`](Self::stop) (or SIGINT/SIGTERM once
    /// [`install_signal_handlers`](Self::install_signal_handlers) was called), then shuts down:
    /// runs the shutdown triggers, loses every connection (`connection_lost` with
    /// [`ErrorKind::ReactorStopped`]), closes every port, drops pending timers and stops the
    /// thread pool (waiting for running jobs). A stopped reactor cannot run again.
    ///
    /// # Errors
    ///
    /// The poller failed, or the reactor was already stopped or running.
    pub fn run(&self) -> Result<(), Error> {
        self.start_running()?;
        let result = loop {
            if self.inner.state.get() != RunState::Running {
                break Ok(());
            }
            if let Err(err) = self.turn(true) {
                break Err(err);
            }
        };
        self.shut_down();
        result
    }

    /// Runs the loop until `future` completes and returns its output; the reactor stays usable
    /// (no shutdown). Handy in tests and in `main` functions that await one result. To release
    /// everything afterwards, [`stop`](Self::stop) then [`run`](Self::run): it shuts down at
    /// once. A reactor dropped without shutting down may leak connections whose protocols hold
    /// their own transport.
    ///
    /// # Errors
    ///
    /// The future's own error; [`ErrorKind::ReactorStopped`] if the reactor was stopped first;
    /// a poller failure.
    pub fn run_until<T: 'static>(
        &self,
        future: impl Future<Output = Result<T, Error>> + 'static,
    ) -> Result<T, Error> {
        let done = self.spawn(future);
        self.start_running()?;
        let result = loop {
            if let Some(result) = done.take_result() {
                break result.and_then(|inner| inner);
            }
            if self.inner.state.get() != RunState::Running {
                break Err(Error::new(ErrorKind::ReactorStopped, "run until"));
            }
            if let Err(err) = self.turn(true) {
                break Err(err);
            }
        };
        if self.inner.state.get() == RunState::Running {
            self.inner.state.set(RunState::Idle);
        } else {
            self.shut_down();
        }
        result
    }

    /// Asks the loop to stop at the end of the current turn. Idempotent; from a callback or a
    /// signal handler alike.
    pub fn stop(&self) {
        if matches!(self.inner.state.get(), RunState::Running | RunState::Idle) {
            self.inner.state.set(RunState::Stopping);
        }
    }

    /// Runs `trigger` when the reactor shuts down, before connections are lost (Twisted's
    /// "before shutdown" triggers), in the order added.
    pub fn add_shutdown_trigger(&self, trigger: impl FnOnce() + 'static) {
        self.inner.shutdown_triggers.borrow_mut().push(Box::new(trigger));
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Runs `call` once, `delay` from now, from the loop. A zero delay runs on the next turn.
    pub fn call_later(&self, delay: Duration, call: impl FnOnce() + 'static) -> DelayedCall {
        Timers::schedule(&self.inner.timers, delay, Box::new(call))
    }

    /// Runs `call` at the end of this turn (or on the next), before waiting for I/O again.
    pub fn call_soon(&self, call: impl FnOnce() + 'static) {
        self.inner.call_soon(Box::new(call));
    }

    /// This reactor as a shared [`Scheduler`], to inject into protocols and Deferreds.
    pub fn scheduler(&self) -> Rc<dyn Scheduler> {
        Rc::new(self.clone())
    }

    /// A new, unfired [`Deferred`] whose callbacks run on this loop.
    pub fn deferred<T: 'static>(&self) -> Deferred<T> {
        Deferred::new(self.scheduler())
    }

    /// A handle for other threads: [`ThreadHandle::call_from_thread`] runs a closure on this
    /// loop and wakes it.
    pub fn thread_handle(&self) -> ThreadHandle {
        ThreadHandle { shared: Arc::clone(&self.inner.shared) }
    }

    /// Sets the limits of the thread pool behind [`defer_to_thread`](Self::defer_to_thread):
    /// at most `threads` workers and `queue` waiting jobs. Takes effect if the pool has not
    /// started yet (it starts on first use).
    pub fn set_thread_pool_limits(&self, threads: usize, queue: usize) {
        self.inner.pool_limits.set((threads.max(1), queue));
    }

    /// Runs `work` on the bounded thread pool and returns its result as a [`Deferred`],
    /// fired on this loop. Blocking work (PAM, crypt, DNS, disk) goes here.
    ///
    /// The Deferred fails with [`ErrorKind::LimitReached`] if the pool's queue is full, with
    /// [`ErrorKind::Other`] if `work` panicked, and with [`ErrorKind::ReactorStopped`] if the
    /// reactor shut down first.
    pub fn defer_to_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Deferred<T> {
        let deferred = self.deferred::<T>();
        if self.inner.state.get() == RunState::Stopped {
            deferred.errback(Error::new(ErrorKind::ReactorStopped, "defer to thread"));
            return deferred;
        }
        let id = self.inner.next_job.get();
        self.inner.next_job.set(id + 1);
        let shared = Arc::clone(&self.inner.shared);
        let job = move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|_| Error::new(ErrorKind::Other, "thread pool job panicked"));
            if shared.send(Message::ThreadResult(id, Box::new(result))).is_err() {
                log::debug!("thread result dropped: the reactor has stopped");
            }
        };
        let submitted = self.with_pool(|pool| pool.submit(Box::new(job)));
        if let Err(err) = submitted {
            deferred.errback(err);
            return deferred;
        }
        let fire = deferred.clone();
        let pending = PendingResult(Box::new(move |result: Box<dyn Any + Send>| {
            match result.downcast::<Result<T, Error>>() {
                Ok(result) => fire.fire(*result),
                Err(_) => fire.errback(Error::new(ErrorKind::Other, "thread result of wrong type")),
            }
        }));
        self.inner.thread_results.borrow_mut().insert(id, pending);
        deferred
    }

    /// Runs `future` on this loop's thread; its output comes back as a [`Deferred`]. The
    /// future is first polled on the next turn, and again whenever its waker is woken (from
    /// any thread).
    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Deferred<T> {
        let deferred = self.deferred::<T>();
        let fire = deferred.clone();
        let task = async move {
            let output = future.await;
            fire.callback(output);
        };
        let key = self.inner.tasks.borrow_mut().insert(Box::pin(task));
        self.inner.tasks.borrow_mut().wake(key);
        deferred
    }

    fn with_pool<R>(&self, f: impl FnOnce(&ThreadPool) -> R) -> R {
        let mut pool = self.inner.pool.borrow_mut();
        let pool = pool.get_or_insert_with(|| {
            let (threads, queue) = self.inner.pool_limits.get();
            ThreadPool::new(threads, queue)
        });
        f(pool)
    }

    fn start_running(&self) -> Result<(), Error> {
        match self.inner.state.get() {
            RunState::Idle => {
                self.inner.state.set(RunState::Running);
                Ok(())
            }
            RunState::Stopping => {
                // stop() before run(): run one turn of shutdown.
                Ok(())
            }
            RunState::Running => Err(Error::new(ErrorKind::InvalidInput, "the reactor is running")),
            RunState::Stopped => Err(Error::new(ErrorKind::ReactorStopped, "run the reactor")),
        }
    }

    /// One turn of the loop; `block` lets it wait for I/O.
    fn turn(&self, block: bool) -> Result<(), Error> {
        let inner = &self.inner;
        let timeout =
            if !block || !inner.soon.borrow().is_empty() || inner.tasks.borrow().has_ready() {
                Some(Duration::ZERO)
            } else {
                inner.timers.borrow_mut().next_deadline().map(|deadline| {
                    // Round up to the next millisecond so the timer is due when we wake.
                    let wait = deadline.saturating_duration_since(Instant::now());
                    let millis = wait.as_nanos().div_ceil(1_000_000);
                    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
                })
            };
        inner.shared.sleeping.store(true, Ordering::SeqCst);
        let timeout = if inner.shared.is_empty() { timeout } else { Some(Duration::ZERO) };
        let polled = inner.poll.borrow_mut().poll(&mut inner.events.borrow_mut(), timeout);
        inner.shared.sleeping.store(false, Ordering::SeqCst);
        if let Err(err) = polled {
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::from_io(&err, "wait for events"));
            }
        }
        self.dispatch_events();
        self.run_messages();
        self.poll_tasks();
        run_due(&inner.timers, Instant::now(), TIMERS_PER_TURN);
        inner.run_soon();
        Ok(())
    }

    fn dispatch_events(&self) {
        let inner = &self.inner;
        let events = inner.events.borrow();
        for event in events.iter() {
            match event.token() {
                WAKER_TOKEN => {}
                SIGNAL_TOKEN => self.signals_ready(),
                Token(key) => {
                    let target =
                        inner.registrations.borrow().get(key).map(|registration| {
                            (Rc::clone(&registration.handler), registration.side)
                        });
                    if let Some((handler, side)) = target {
                        handler.ready(side, event);
                    }
                }
            }
        }
    }

    fn run_messages(&self) {
        for message in self.inner.shared.take() {
            match message {
                Message::Call(call) => call(self),
                Message::ThreadResult(id, result) => {
                    let fire = self.inner.thread_results.borrow_mut().remove(&id);
                    if let Some(PendingResult(fire)) = fire {
                        fire(result);
                    }
                }
                Message::Wake(key) => self.inner.tasks.borrow_mut().wake(key),
            }
        }
    }

    fn poll_tasks(&self) {
        let ready = self.inner.tasks.borrow_mut().take_ready();
        for key in ready {
            tasks::poll_task(&self.inner.tasks, key, &self.inner.shared);
        }
    }

    fn shut_down(&self) {
        let inner = &self.inner;
        inner.state.set(RunState::Stopped);
        let triggers = std::mem::take(&mut *inner.shutdown_triggers.borrow_mut());
        for trigger in triggers {
            trigger();
        }
        inner.run_soon_all();
        let handlers: Vec<Rc<dyn Ready>> = inner
            .registrations
            .borrow()
            .iter()
            .map(|(_, registration)| Rc::clone(&registration.handler))
            .collect();
        for handler in handlers {
            handler.shutdown();
        }
        inner.run_soon_all();
        inner.shared.closed.store(true, Ordering::SeqCst);
        drop(inner.shared.take());
        let pending = inner.timers.borrow_mut().clear();
        drop(pending);
        inner.tasks.borrow_mut().clear();
        inner.thread_results.borrow_mut().clear();
        let children = std::mem::take(&mut *inner.children.borrow_mut());
        for child in children.values() {
            child.abandon();
        }
        drop(children);
        let pool = inner.pool.borrow_mut().take();
        drop(pool);
        inner.run_soon_all();
    }
}

impl Scheduler for Reactor {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn call_later_boxed(&self, delay: Duration, call: Box<dyn FnOnce()>) -> DelayedCall {
        Timers::schedule(&self.inner.timers, delay, call)
    }

    fn call_soon_boxed(&self, call: Box<dyn FnOnce()>) {
        self.inner.call_soon(call);
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("state", &self.inner.state.get())
            .field("registrations", &self.inner.registrations.borrow().len())
            .field("timers", &self.inner.timers.borrow().len())
            .finish()
    }
}

impl Inner {
    pub(crate) fn call_soon(&self, call: Box<dyn FnOnce()>) {
        self.soon.borrow_mut().push_back(call);
    }

    /// Runs the calls queued so far; calls they queue wait for the next turn.
    fn run_soon(&self) {
        let count = self.soon.borrow().len();
        for _ in 0..count {
            let Some(call) = self.soon.borrow_mut().pop_front() else { break };
            call();
        }
    }

    /// Runs queued calls until none is left (shutdown), bounded.
    fn run_soon_all(&self) {
        for _ in 0..64 {
            if self.soon.borrow().is_empty() {
                return;
            }
            self.run_soon();
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reserves a token for `handler`'s `side`.
    pub(crate) fn add_registration(&self, handler: Rc<dyn Ready>, side: Side) -> Token {
        Token(self.registrations.borrow_mut().insert(Registration { handler, side }))
    }

    /// Points an existing token at a new handler (a connect attempt became a connection).
    pub(crate) fn replace_registration(&self, token: Token, handler: Rc<dyn Ready>) {
        if let Some(registration) = self.registrations.borrow_mut().get_mut(token.0) {
            registration.handler = handler;
        }
    }

    pub(crate) fn remove_registration(&self, token: Token) {
        self.registrations.borrow_mut().try_remove(token.0);
    }

    /// Lends the shared read buffer to `f`.
    pub(crate) fn take_read_buffer(&self) -> Vec<u8> {
        let buffer = std::mem::take(&mut *self.read_buffer.borrow_mut());
        if buffer.len() == READ_BUFFER_SIZE {
            buffer
        } else {
            vec![0; READ_BUFFER_SIZE]
        }
    }

    pub(crate) fn return_read_buffer(&self, buffer: Vec<u8>) {
        *self.read_buffer.borrow_mut() = buffer;
    }
}

/// The `Send` handle to a reactor, for other threads (see [`Reactor::thread_handle`]).
#[derive(Clone)]
pub struct ThreadHandle {
    shared: Arc<Shared>,
}

impl ThreadHandle {
    /// Runs `call` on the reactor's thread, from its loop, waking it if it waits. Calls run
    /// in the order sent. `call` receives the reactor, so it can stop it, open ports, or adopt
    /// a descriptor accepted on another thread (`|reactor| reactor.adopt_fd(fd, protocol)`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReactorStopped`] once the reactor has shut down; the call is dropped.
    pub fn call_from_thread(
        &self,
        call: impl FnOnce(&Reactor) + Send + 'static,
    ) -> Result<(), Error> {
        self.shared.send(Message::Call(Box::new(call)))
    }

    pub(crate) fn wake_task(&self, key: usize) {
        if self.shared.send(Message::Wake(key)).is_err() {
            log::trace!("task woken after the reactor stopped");
        }
    }
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadHandle")
            .field("closed", &self.shared.closed.load(Ordering::SeqCst))
            .finish()
    }
}

//! Timers, thread results and futures on a real reactor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use twine_core::time::{LoopingCall, Scheduler};
use twine_core::ErrorKind;
use util::reactor;

fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Timers fire in deadline order whatever the order they were made in; a cancelled one never
/// fires and a reset one fires at its new time.
#[test]
fn fires_timers_in_deadline_order_and_honours_cancel_and_reset() {
    let reactor = reactor();
    let order = Rc::new(RefCell::new(Vec::new()));
    let note = |name: &'static str| {
        let order = Rc::clone(&order);
        move || order.borrow_mut().push(name)
    };
    reactor.call_later(millis(30), note("30ms"));
    reactor.call_later(millis(10), note("10ms"));
    let cancelled = reactor.call_later(millis(15), note("cancelled"));
    let moved = reactor.call_later(millis(5), note("moved to 40ms"));
    reactor.call_later(millis(20), note("20ms"));
    reactor.call_soon(note("soon"));
    assert!(cancelled.cancel());
    assert!(moved.reset(millis(40)));
    let done = reactor.deferred::<()>();
    let fire = done.clone();
    reactor.call_later(millis(50), move || fire.callback(()));
    reactor.run_until(done).unwrap();
    assert_eq!(*order.borrow(), ["soon", "10ms", "20ms", "30ms", "moved to 40ms"]);
}

/// `stop` from a timer makes `run` return, after the shutdown triggers ran; pending timers
/// never fire.
#[test]
fn stop_runs_shutdown_triggers_and_drops_pending_timers() {
    let reactor = reactor();
    let events = Rc::new(RefCell::new(Vec::new()));
    let (a, b) = (Rc::clone(&events), Rc::clone(&events));
    reactor.add_shutdown_trigger(move || a.borrow_mut().push("trigger"));
    reactor.call_later(Duration::from_secs(3600), move || b.borrow_mut().push("never"));
    let stopper = reactor.clone();
    reactor.call_later(millis(1), move || stopper.stop());
    reactor.run().unwrap();
    assert_eq!(*events.borrow(), ["trigger"]);
    assert_eq!(reactor.run().map_err(|err| err.kind()), Err(ErrorKind::ReactorStopped));
}

/// A looping call on the reactor ticks until stopped from its own tick.
#[test]
fn looping_call_runs_on_the_reactor() {
    let reactor = reactor();
    let done = reactor.deferred::<u32>();
    let ticks = Rc::new(RefCell::new(0));
    let slot: Rc<RefCell<Option<LoopingCall>>> = Rc::default();
    let (counter, handle, fire) = (Rc::clone(&ticks), Rc::clone(&slot), done.clone());
    let looping = LoopingCall::start(reactor.scheduler(), millis(1), true, move || {
        *counter.borrow_mut() += 1;
        if *counter.borrow() == 3 {
            handle.borrow().as_ref().unwrap().stop();
            fire.callback(3);
        }
    });
    *slot.borrow_mut() = Some(looping);
    assert_eq!(reactor.run_until(done).unwrap(), 3);
    assert!(!slot.borrow().as_ref().unwrap().running());
    assert_eq!(*ticks.borrow(), 3);
}

/// The reactor's clock is the real one.
#[test]
fn now_is_real_time() {
    let reactor = reactor();
    let before = std::time::Instant::now();
    let now = Scheduler::now(&reactor);
    assert!(now >= before);
}

/// Work on the thread pool comes back as a Deferred on the reactor thread; a panicking job
/// comes back as an error.
#[test]
fn defer_to_thread_returns_results_and_panics_as_errors() {
    let reactor = reactor();
    let reactor_thread = std::thread::current().id();
    let answer = reactor.defer_to_thread(|| (6 * 7, std::thread::current().id()));
    let (value, worker) = reactor.run_until(answer).unwrap();
    assert_eq!(value, 42);
    assert_ne!(worker, reactor_thread);
    let broken = reactor.defer_to_thread(|| -> u8 { panic!("job failed on purpose") });
    let err = reactor.run_until(broken).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
}

/// A thread result handed to a callback lands in state the caller is borrowing when it adds
/// the callback: delivery waits for the next turn, so no double borrow.
#[test]
fn thread_results_can_be_handed_back_into_borrowed_state() {
    let reactor = reactor();
    let machine = Rc::new(RefCell::new(Vec::<u32>::new()));
    let done = reactor.deferred::<()>();
    {
        let mut borrowed = machine.borrow_mut();
        borrowed.push(1);
        let result = reactor.defer_to_thread(|| 2);
        let (target, fire) = (Rc::clone(&machine), done.clone());
        result.add_callback(move |value| {
            target.borrow_mut().push(value);
            fire.callback(());
            Ok(value)
        });
        // Even an already-fired Deferred would not run the callback here.
        let fired = twine_core::Deferred::succeed(reactor.scheduler(), 3);
        let target = Rc::clone(&machine);
        fired.add_callback(move |value| {
            target.borrow_mut().push(value);
            Ok(value)
        });
        borrowed.push(4);
    }
    reactor.run_until(done).unwrap();
    let seen = machine.borrow().clone();
    assert_eq!(seen.first(), Some(&1));
    assert_eq!(seen.get(1), Some(&4));
    assert!(seen.contains(&2) && seen.contains(&3));
}

/// `call_from_thread` runs closures on the reactor thread, in order, waking a loop that
/// would otherwise sleep until its only timer, an hour away.
#[test]
fn call_from_thread_wakes_the_loop() {
    let reactor = twine_core::Reactor::new().unwrap();
    let slept_through = Rc::new(RefCell::new(false));
    let flag = Rc::clone(&slept_through);
    let stopper = reactor.clone();
    let watchdog = reactor.call_later(util::WATCHDOG, move || {
        *flag.borrow_mut() = true;
        stopper.stop();
    });
    let handle = reactor.thread_handle();
    let (sender, receiver) = mpsc::channel::<(u32, std::thread::ThreadId)>();
    let worker = std::thread::spawn(move || {
        for value in 1..=3 {
            let sender = sender.clone();
            handle
                .call_from_thread(move |reactor| {
                    sender.send((value, std::thread::current().id())).unwrap();
                    if value == 3 {
                        reactor.stop();
                    }
                })
                .unwrap();
            std::thread::sleep(millis(2));
        }
    });
    reactor.run().unwrap();
    worker.join().unwrap();
    assert!(!*slept_through.borrow(), "the loop was not woken");
    assert!(!watchdog.active());
    let got: Vec<_> = receiver.try_iter().collect();
    let values: Vec<u32> = got.iter().map(|(value, _)| *value).collect();
    assert_eq!(values, [1, 2, 3]);
    assert!(got.iter().all(|(_, thread)| *thread == std::thread::current().id()));
    let handle = reactor.thread_handle();
    assert_eq!(
        handle.call_from_thread(|_| ()).map_err(|err| err.kind()),
        Err(ErrorKind::ReactorStopped)
    );
}

/// Futures spawned on the reactor can await Deferreds and timers' results.
#[test]
fn spawned_futures_await_deferreds() {
    let reactor = reactor();
    let later = reactor.deferred::<u32>();
    let fire = later.clone();
    reactor.call_later(millis(5), move || fire.callback(20));
    let pooled = reactor.defer_to_thread(|| 22);
    let sum = reactor.spawn(async move { later.await.unwrap() + pooled.await.unwrap() });
    assert_eq!(reactor.run_until(sum).unwrap(), 42);
}

/// The pool's queue is bounded: a job beyond it fails at once with `LimitReached`.
#[test]
fn the_thread_pool_queue_is_bounded() {
    let reactor = reactor();
    reactor.set_thread_pool_limits(1, 1);
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let blocking = {
        let gate = std::sync::Arc::clone(&gate);
        reactor.defer_to_thread(move || {
            started_tx.send(()).unwrap();
            gate.lock().unwrap().recv().unwrap();
        })
    };
    started_rx.recv().unwrap();
    let queued = reactor.defer_to_thread(|| 1);
    let refused = reactor.defer_to_thread(|| 2);
    let err = reactor.run_until(refused).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    release.send(()).unwrap();
    reactor.run_until(blocking).unwrap();
    assert_eq!(reactor.run_until(queued).unwrap(), 1);
}

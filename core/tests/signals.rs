//! Signals sent to this test process: SIGHUP is observed, SIGTERM stops the reactor
//! gracefully. One test in its own binary, as signals are process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use twine_core::protocol::ProtocolFactory;
use twine_core::reactor::Signal;
use twine_core::{ErrorKind, Reason};
use util::{log, loopback, Recorder};

/// SIGHUP arrives as an event on the loop; SIGTERM runs the shutdown triggers, loses the
/// open connections and makes `run` return.
#[test]
fn observes_sighup_and_stops_gracefully_on_sigterm() {
    let reactor = twine_core::Reactor::new().unwrap();
    let watchdog_fired = Rc::new(RefCell::new(false));
    let (flag, stopper) = (Rc::clone(&watchdog_fired), reactor.clone());
    reactor.call_later(util::WATCHDOG, move || {
        *flag.borrow_mut() = true;
        stopper.stop();
    });
    reactor.install_signal_handlers().unwrap();
    let events = Rc::new(RefCell::new(Vec::new()));
    let hangups = Rc::clone(&events);
    reactor
        .observe_signal(Signal::Hangup, move || {
            hangups.borrow_mut().push("hangup");
            kill(Pid::this(), NixSignal::SIGTERM).unwrap();
        })
        .unwrap();
    let triggers = Rc::clone(&events);
    reactor.add_shutdown_trigger(move || triggers.borrow_mut().push("shutdown trigger"));
    assert!(reactor.observe_signal(Signal::Kill, || ()).is_err());

    // An open connection is lost when the reactor stops.
    let port =
        reactor.listen_tcp(loopback(), ProtocolFactory::new(|| Recorder::new(&log()))).unwrap();
    let client_log = log();
    let mut client = Some(Recorder::new(&client_log));
    reactor.connect_tcp(
        port.tcp_address().unwrap(),
        Duration::from_secs(5),
        ProtocolFactory::new(move || client.take().unwrap()),
    );
    let (raiser, watch) = (reactor.clone(), Rc::clone(&client_log));
    let looping = twine_core::time::LoopingCall::start(
        raiser.scheduler(),
        Duration::from_millis(5),
        false,
        move || {
            if watch.borrow().made && watch.borrow_mut().data.is_empty() {
                watch.borrow_mut().data.push(b'!');
                kill(Pid::this(), NixSignal::SIGHUP).unwrap();
            }
        },
    );
    reactor.run().unwrap();
    looping.stop();
    assert!(!*watchdog_fired.borrow(), "SIGTERM did not stop the reactor");
    assert_eq!(*events.borrow(), ["hangup", "shutdown trigger"]);
    let lost = client_log.borrow().lost.clone();
    match lost {
        Some(Reason::Lost(err)) => assert_eq!(err.kind(), ErrorKind::ReactorStopped),
        other => panic!("connection not lost at shutdown: {other:?}"),
    }
}

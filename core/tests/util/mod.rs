//! Helpers shared by the reactor tests: a bounded reactor and a recording protocol.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::HalfClose;
use twine_core::{Deferred, Protocol, Reactor, Reason, Transport};

/// Every test's reactor stops by itself after this long, so a broken test fails instead of
/// hanging.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// A reactor with a watchdog.
pub fn reactor() -> Reactor {
    let reactor = Reactor::new().expect("a reactor");
    let stopper = reactor.clone();
    reactor.call_later(WATCHDOG, move || stopper.stop());
    reactor
}

/// Loopback, any port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// What a [`Recorder`] saw.
#[derive(Default)]
pub struct Log {
    pub made: bool,
    pub data: Vec<u8>,
    pub read_lost: bool,
    pub write_lost: bool,
    pub lost: Option<Reason>,
    pub transport: Option<Rc<dyn Transport>>,
}

type Hook = Box<dyn FnMut(&Rc<dyn Transport>, &[u8])>;

/// A protocol that records its events, optionally reacts to data, and fires `done` when the
/// connection is lost.
pub struct Recorder {
    pub log: Rc<RefCell<Log>>,
    pub greeting: Vec<u8>,
    pub on_data: Option<Hook>,
    pub half_close: HalfClose,
    pub done: Option<Deferred<()>>,
}

impl Recorder {
    pub fn new(log: &Rc<RefCell<Log>>) -> Self {
        Self {
            log: Rc::clone(log),
            greeting: Vec::new(),
            on_data: None,
            half_close: HalfClose::LoseConnection,
            done: None,
        }
    }

    pub fn greeting(mut self, greeting: &[u8]) -> Self {
        self.greeting = greeting.to_vec();
        self
    }

    pub fn on_data(mut self, hook: impl FnMut(&Rc<dyn Transport>, &[u8]) + 'static) -> Self {
        self.on_data = Some(Box::new(hook));
        self
    }

    pub fn half_close(mut self, half_close: HalfClose) -> Self {
        self.half_close = half_close;
        self
    }

    pub fn done(mut self, done: &Deferred<()>) -> Self {
        self.done = Some(done.clone());
        self
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        if !self.greeting.is_empty() {
            transport.write(&self.greeting);
        }
        let mut log = self.log.borrow_mut();
        log.made = true;
        log.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.log.borrow_mut().data.extend_from_slice(data);
        let transport = self.log.borrow().transport.clone();
        if let (Some(hook), Some(transport)) = (self.on_data.as_mut(), transport) {
            hook(&transport, data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.log.borrow_mut().read_lost = true;
        self.half_close
    }

    fn write_connection_lost(&mut self) {
        self.log.borrow_mut().write_lost = true;
    }

    fn connection_lost(&mut self, reason: Reason) {
        let mut log = self.log.borrow_mut();
        log.lost = Some(reason);
        log.transport = None;
        if let Some(done) = self.done.take() {
            done.callback(());
        }
    }
}

/// A fresh log.
pub fn log() -> Rc<RefCell<Log>> {
    Rc::new(RefCell::new(Log::default()))
}

/// A protocol that echoes what it receives.
pub fn echo(log: &Rc<RefCell<Log>>) -> Recorder {
    Recorder::new(log).on_data(|transport, data| transport.write(data))
}

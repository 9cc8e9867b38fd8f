//! `StringTransport`: a transport that keeps what is written.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::protocol::{Address, PushProducer, Transport};

/// A [`Transport`] that buffers writes in memory and records requests, without behaviour of
/// its own: `lose_connection` only sets [`disconnecting`](Self::disconnecting); delivering
/// `connection_lost` is the test's job (or [`IoPump`](super::IoPump)'s).
pub struct StringTransport {
    state: RefCell<State>,
    peer: Address,
    host: Address,
}

#[derive(Default)]
struct State {
    written: Vec<u8>,
    disconnecting: bool,
    aborted: bool,
    eof_written: bool,
    reading_paused: bool,
    producer: Option<Rc<dyn PushProducer>>,
}

impl StringTransport {
    /// A transport between two made-up addresses.
    pub fn new() -> Rc<Self> {
        Self::with_addresses(Address::Named("peer".into()), Address::Named("host".into()))
    }

    /// A transport with the given remote and local addresses.
    pub fn with_addresses(peer: Address, host: Address) -> Rc<Self> {
        Rc::new(Self { state: RefCell::new(State::default()), peer, host })
    }

    /// Everything written so far (test only).
    pub fn value(&self) -> Vec<u8> {
        self.state.borrow().written.clone()
    }

    /// Takes everything written so far, leaving the record empty (test only).
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.state.borrow_mut().written)
    }

    /// Forgets everything written so far (test only).
    pub fn clear(&self) {
        self.state.borrow_mut().written.clear();
    }

    /// Whether `lose_connection` or `abort_connection` was called (test only).
    pub fn disconnecting(&self) -> bool {
        let state = self.state.borrow();
        state.disconnecting || state.aborted
    }

    /// Whether `abort_connection` was called (test only).
    pub fn aborted(&self) -> bool {
        self.state.borrow().aborted
    }

    /// Whether `write_eof` was called (test only).
    pub fn eof_written(&self) -> bool {
        self.state.borrow().eof_written
    }

    /// Whether reading is paused (`pause_producing` without `resume_producing`; test only).
    pub fn reading_paused(&self) -> bool {
        self.state.borrow().reading_paused
    }

    /// The registered producer (test only).
    pub fn producer(&self) -> Option<Rc<dyn PushProducer>> {
        self.state.borrow().producer.clone()
    }
}

impl Transport for StringTransport {
    fn write(&self, data: &[u8]) {
        let mut state = self.state.borrow_mut();
        if !state.aborted {
            state.written.extend_from_slice(data);
        }
    }

    fn lose_connection(&self) {
        self.state.borrow_mut().disconnecting = true;
    }

    fn abort_connection(&self) {
        self.state.borrow_mut().aborted = true;
    }

    fn write_eof(&self) {
        self.state.borrow_mut().eof_written = true;
    }

    fn peer(&self) -> Address {
        self.peer.clone()
    }

    fn host(&self) -> Address {
        self.host.clone()
    }

    fn buffered(&self) -> usize {
        self.state.borrow().written.len()
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        self.state.borrow_mut().producer = Some(producer);
    }

    fn unregister_producer(&self) {
        self.state.borrow_mut().producer = None;
    }

    fn pause_producing(&self) {
        self.state.borrow_mut().reading_paused = true;
    }

    fn resume_producing(&self) {
        self.state.borrow_mut().reading_paused = false;
    }
}

impl fmt::Debug for StringTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("StringTransport")
            .field("written", &state.written.len())
            .field("disconnecting", &state.disconnecting)
            .field("aborted", &state.aborted)
            .finish()
    }
}

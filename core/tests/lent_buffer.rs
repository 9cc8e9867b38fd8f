//! Lent-buffer reading over real loopback sockets: a protocol that lends its own buffer
//! (`get_buffer`/`buffer_updated`, asyncio's `BufferedProtocol`) receives the same bytes as
//! one taking `data_received`, whole and in small pieces, and one with no room pauses reading.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::{Address, ClientFactory, Factory, ProtocolFactory};
use twine_core::{Deferred, Error, Protocol, Reactor, Reason, Transport};
use util::{log, loopback, reactor, Recorder};

/// The bytes the server sends: long enough for many full reads, in a pattern that shows any
/// byte out of place.
fn pattern() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

/// Sends [`pattern`] and closes.
struct Sender;

impl Protocol for Sender {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.write(&pattern());
        transport.lose_connection();
    }

    fn data_received(&mut self, _data: &[u8]) {}
}

/// What a [`Lender`] saw.
#[derive(Default)]
struct Seen {
    data: Vec<u8>,
    /// Calls to `get_buffer` that found no room.
    refused: usize,
    plain: usize,
    lost: Option<Reason>,
}

/// A protocol lending a buffer of `room` bytes; with a `budget`, it has room for only that
/// many bytes until a timer takes them and resumes reading.
struct Lender {
    buffer: Vec<u8>,
    seen: Rc<RefCell<Seen>>,
    budget: Option<usize>,
    held: usize,
    transport: Option<Rc<dyn Transport>>,
    reactor: Reactor,
    done: Option<Deferred<()>>,
    me: Option<std::rc::Weak<RefCell<Self>>>,
}

impl Lender {
    fn new(reactor: &Reactor, room: usize, seen: &Rc<RefCell<Seen>>) -> Self {
        Self {
            buffer: vec![0; room],
            seen: Rc::clone(seen),
            budget: None,
            held: 0,
            transport: None,
            reactor: reactor.clone(),
            done: None,
            me: None,
        }
    }
}

impl Protocol for Lender {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        let mut seen = self.seen.borrow_mut();
        seen.plain += 1;
        seen.data.extend_from_slice(data);
    }

    fn get_buffer(&mut self, size_hint: usize) -> Option<&mut [u8]> {
        let room = match self.budget {
            Some(budget) => budget - self.held,
            None => self.buffer.len(),
        };
        if room == 0 {
            self.seen.borrow_mut().refused += 1;
            // Make room later, from the loop: take what is held and resume reading.
            let me = self.me.clone();
            self.reactor.call_later(Duration::from_millis(1), move || {
                let Some(me) = me.and_then(|me| me.upgrade()) else { return };
                let transport = {
                    let mut me = me.borrow_mut();
                    me.held = 0;
                    me.transport.clone()
                };
                if let Some(transport) = transport {
                    transport.resume_producing();
                }
            });
        }
        let room = room.min(self.buffer.len()).min(size_hint);
        self.buffer.get_mut(..room)
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        self.held += nbytes;
        let data = self.buffer.get(..nbytes).unwrap();
        self.seen.borrow_mut().data.extend_from_slice(data);
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.seen.borrow_mut().lost = Some(reason);
        if let Some(done) = self.done.take() {
            done.callback(());
        }
    }
}

struct Once(Option<Box<dyn Protocol>>);

impl Factory for Once {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        self.0.take()
    }
}

impl ClientFactory for Once {
    fn client_connection_failed(&mut self, reason: Error) {
        panic!("connect failed: {reason}");
    }
}

/// Connects `client` to a [`Sender`] and runs until `done` fires.
fn receive(reactor: &Reactor, client: Box<dyn Protocol>, done: Deferred<()>) {
    let port = reactor.listen_tcp(loopback(), ProtocolFactory::new(|| Sender)).unwrap();
    let addr = port.tcp_address().unwrap();
    reactor.connect_tcp(addr, Duration::from_secs(5), Once(Some(client)));
    reactor.run_until(done).unwrap();
}

fn lent(room: usize, budget: Option<usize>) -> Seen {
    let reactor = reactor();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let done = reactor.deferred::<()>();
    let lender = Rc::new(RefCell::new(Lender::new(&reactor, room, &seen)));
    {
        let mut lender_mut = lender.borrow_mut();
        lender_mut.budget = budget;
        lender_mut.done = Some(done.clone());
        lender_mut.me = Some(Rc::downgrade(&lender));
    }
    receive(&reactor, Box::new(lender), done);
    Rc::try_unwrap(seen).ok().unwrap().into_inner()
}

/// A lent-buffer protocol gets, through its own buffer and never through `data_received`,
/// exactly the bytes a plain protocol gets: with a buffer larger than any read and with one of
/// 7 bytes (every read a short piece).
#[test]
fn a_lent_buffer_protocol_receives_the_same_bytes_as_a_plain_one_over_tcp() {
    let reactor = reactor();
    let plain_log = log();
    let done = reactor.deferred::<()>();
    let plain = Recorder::new(&plain_log).done(&done);
    receive(&reactor, Box::new(plain), done);
    assert_eq!(plain_log.borrow().data, pattern());
    for room in [1 << 20, 7] {
        let seen = lent(room, None);
        assert_eq!(seen.data.len(), pattern().len(), "room {room}");
        assert!(seen.data == pattern(), "room {room}: the bytes differ");
        assert_eq!(seen.plain, 0, "room {room}: no byte goes through data_received");
        assert_eq!(seen.lost, Some(Reason::Done), "room {room}");
    }
}

/// A protocol whose buffer is full (it lends an empty one) pauses the stream's reading: it is
/// asked once per fill, not again and again, and once it resumes the rest arrives intact.
#[test]
fn a_protocol_with_no_room_pauses_reading_until_it_resumes() {
    let budget = 50_000;
    let seen = lent(1 << 16, Some(budget));
    assert!(seen.data == pattern(), "the bytes differ");
    let fills = pattern().len().div_ceil(budget);
    // Each fill ends in one refusal at most (a fill may also end exactly at a read's end).
    assert!(seen.refused >= 1, "the budget was never reached");
    assert!(seen.refused <= fills, "asked {} times for {fills} fills: reading spun", seen.refused);
    assert_eq!(seen.lost, Some(Reason::Done));
}

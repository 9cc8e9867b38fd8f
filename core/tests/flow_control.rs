//! Flow control on real sockets: a 1 GiB producer into a slow consumer stays within the
//! write buffer's bounds, and a protocol that ignores flow control hits the hard limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::{ProtocolFactory, PushProducer};
use twine_core::reactor::BufferLimits;
use twine_core::{ErrorKind, Protocol, Reactor, Reason, Transport};
use util::{loopback, reactor};

static CHUNK: [u8; 64 * 1024] = [0x5a; 64 * 1024];
const TOTAL: u64 = 1 << 30;

/// The producing side: writes a chunk per turn until paused, and measures the buffer.
struct Firehose {
    reactor: Reactor,
    transport: RefCell<Option<Rc<dyn Transport>>>,
    paused: Cell<bool>,
    scheduled: Cell<bool>,
    sent: Cell<u64>,
    pauses: Cell<u32>,
    max_buffered: Cell<usize>,
}

impl Firehose {
    fn schedule(self: &Rc<Self>) {
        if self.scheduled.replace(true) {
            return;
        }
        let me = Rc::clone(self);
        self.reactor.call_soon(move || me.produce());
    }

    fn produce(self: &Rc<Self>) {
        self.scheduled.set(false);
        let Some(transport) = self.transport.borrow().clone() else { return };
        if self.paused.get() {
            return;
        }
        transport.write(&CHUNK);
        self.sent.set(self.sent.get() + CHUNK.len() as u64);
        self.max_buffered.set(self.max_buffered.get().max(transport.buffered()));
        if self.sent.get() >= TOTAL {
            transport.lose_connection();
            return;
        }
        self.schedule();
    }
}

struct Producer(Rc<Firehose>);

impl PushProducer for Producer {
    fn pause_producing(&self) {
        self.0.paused.set(true);
        self.0.pauses.set(self.0.pauses.get() + 1);
    }

    fn resume_producing(&self) {
        self.0.paused.set(false);
        self.0.schedule();
    }

    fn stop_producing(&self) {
        self.0.transport.borrow_mut().take();
    }
}

struct FirehoseProtocol(Rc<Firehose>);

impl Protocol for FirehoseProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.register_producer(Rc::new(Producer(Rc::clone(&self.0))));
        *self.0.transport.borrow_mut() = Some(transport);
        self.0.schedule();
    }

    fn data_received(&mut self, _data: &[u8]) {}
}

/// The consuming side: counts bytes, pausing its own reading now and then.
struct SlowConsumer {
    reactor: Reactor,
    transport: Option<Rc<dyn Transport>>,
    received: Rc<Cell<u64>>,
    next_pause: u64,
    done: twine_core::Deferred<()>,
}

impl SlowConsumer {
    fn pause_for(&self, delay: Duration) {
        let Some(transport) = self.transport.clone() else { return };
        transport.pause_producing();
        self.reactor.call_later(delay, move || transport.resume_producing());
    }
}

impl Protocol for SlowConsumer {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
        self.pause_for(Duration::from_millis(100));
    }

    fn data_received(&mut self, data: &[u8]) {
        self.received.set(self.received.get() + data.len() as u64);
        if self.received.get() >= self.next_pause {
            self.next_pause += 128 << 20;
            self.pause_for(Duration::from_millis(5));
        }
    }

    fn connection_lost(&mut self, _reason: Reason) {
        self.done.callback(());
    }
}

/// A producer offering 1 GiB to a consumer that reads slowly is paused whenever the write
/// buffer passes its high-water mark, so the buffer never holds more than the mark plus one
/// chunk, and every byte still arrives.
#[test]
fn a_gigabyte_producer_into_a_slow_consumer_stays_bounded() {
    let reactor = reactor();
    let limits = BufferLimits::default();
    let firehose = Rc::new(Firehose {
        reactor: reactor.clone(),
        transport: RefCell::new(None),
        paused: Cell::new(false),
        scheduled: Cell::new(false),
        sent: Cell::new(0),
        pauses: Cell::new(0),
        max_buffered: Cell::new(0),
    });
    let server_side = Rc::clone(&firehose);
    let mut once = Some(FirehoseProtocol(server_side));
    let port =
        reactor.listen_tcp(loopback(), ProtocolFactory::new(move || once.take().unwrap())).unwrap();
    let received = Rc::new(Cell::new(0));
    let done = reactor.deferred::<()>();
    let mut consumer = Some(SlowConsumer {
        reactor: reactor.clone(),
        transport: None,
        received: Rc::clone(&received),
        next_pause: 128 << 20,
        done: done.clone(),
    });
    reactor.connect_tcp(
        port.tcp_address().unwrap(),
        Duration::from_secs(5),
        ProtocolFactory::new(move || consumer.take().unwrap()),
    );
    reactor.run_until(done).unwrap();
    assert_eq!(received.get(), TOTAL);
    assert!(firehose.pauses.get() > 0, "the producer was never paused");
    let bound = limits.high + CHUNK.len();
    assert!(
        firehose.max_buffered.get() <= bound,
        "buffered {} bytes, bound {bound}",
        firehose.max_buffered.get()
    );
}

/// A protocol that keeps writing into a stalled peer, ignoring flow control, loses its
/// connection with `LimitReached` once its buffer passes the hard limit.
#[test]
fn ignoring_flow_control_hits_the_hard_limit() {
    let reactor = reactor();
    reactor.set_buffer_limits(BufferLimits { low: 1024, high: 4096, hard: 256 * 1024 });
    let reason: Rc<RefCell<Option<Reason>>> = Rc::default();
    let done = reactor.deferred::<()>();

    struct Greedy {
        reason: Rc<RefCell<Option<Reason>>>,
        done: twine_core::Deferred<()>,
    }
    impl Protocol for Greedy {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            // 64 MiB in one go: far more than the kernel's buffers plus the hard limit.
            for _ in 0..1024 {
                transport.write(&CHUNK);
            }
            assert!(transport.buffered() <= 256 * 1024);
        }
        fn data_received(&mut self, _data: &[u8]) {}
        fn connection_lost(&mut self, reason: Reason) {
            *self.reason.borrow_mut() = Some(reason);
            self.done.callback(());
        }
    }

    struct Stalled;
    impl Protocol for Stalled {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            transport.pause_producing();
        }
        fn data_received(&mut self, _data: &[u8]) {}
    }

    let mut greedy = Some(Greedy { reason: Rc::clone(&reason), done: done.clone() });
    let port = reactor
        .listen_tcp(loopback(), ProtocolFactory::new(move || greedy.take().unwrap()))
        .unwrap();
    reactor.connect_tcp(
        port.tcp_address().unwrap(),
        Duration::from_secs(5),
        ProtocolFactory::new(|| Stalled),
    );
    reactor.run_until(done).unwrap();
    let reason = reason.borrow().clone();
    match reason {
        Some(Reason::Lost(err)) => assert_eq!(err.kind(), ErrorKind::LimitReached),
        other => panic!("expected LimitReached, got {other:?}"),
    }
}

//! TCP on real loopback sockets: echo, IPv6, refusal, timeouts, half-close, abort, and the
//! handle model (writing from a timer and from another connection).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::{Address, ClientFactory, Factory, HalfClose};
use twine_core::{Error, ErrorKind, Protocol, Reason};
use util::{echo, log, loopback, reactor, Recorder};

/// A factory that hands out one prepared protocol, and records a failed attempt.
struct Once {
    protocol: Option<Box<dyn Protocol>>,
    failed: Rc<RefCell<Option<Error>>>,
    done: Option<twine_core::Deferred<()>>,
}

impl Once {
    fn new(protocol: impl Protocol + 'static) -> Self {
        Self { protocol: Some(Box::new(protocol)), failed: Rc::default(), done: None }
    }
}

impl Factory for Once {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        self.protocol.take()
    }
}

impl ClientFactory for Once {
    fn client_connection_failed(&mut self, reason: Error) {
        *self.failed.borrow_mut() = Some(reason);
        if let Some(done) = self.done.take() {
            done.callback(());
        }
    }
}

/// A server echoes what a client sends, and both see a clean `connection_lost` after the
/// client loses the connection.
#[test]
fn echoes_bytes_over_loopback_tcp() {
    let reactor = reactor();
    let server_log = log();
    let factory_log = Rc::clone(&server_log);
    let factory = twine_core::protocol::ProtocolFactory::new(move || echo(&factory_log));
    let port = reactor.listen_tcp(loopback(), factory).unwrap();
    let client_log = log();
    let done = reactor.deferred::<()>();
    let client =
        Recorder::new(&client_log).greeting(b"hello, twine").done(&done).on_data(|transport, _| {
            transport.lose_connection();
        });
    reactor.connect_tcp(port.tcp_address().unwrap(), Duration::from_secs(5), Once::new(client));
    reactor.run_until(done).unwrap();
    assert_eq!(client_log.borrow().data, b"hello, twine");
    assert_eq!(client_log.borrow().lost, Some(Reason::Done));
    assert_eq!(server_log.borrow().data, b"hello, twine");
}

/// The same echo works over IPv6 loopback when the host has it.
#[test]
fn echoes_bytes_over_ipv6_loopback() {
    let reactor = reactor();
    let server_log = log();
    let factory_log = Rc::clone(&server_log);
    let factory = twine_core::protocol::ProtocolFactory::new(move || echo(&factory_log));
    let port = match reactor.listen_tcp("[::1]:0".parse().unwrap(), factory) {
        Ok(port) => port,
        Err(err) => {
            eprintln!("no IPv6 loopback here ({err}); skipping");
            return;
        }
    };
    let addr = port.tcp_address().unwrap();
    assert!(addr.is_ipv6());
    let client_log = log();
    let done = reactor.deferred::<()>();
    let client = Recorder::new(&client_log)
        .greeting(b"v6")
        .done(&done)
        .on_data(|transport, _| transport.lose_connection());
    reactor.connect_tcp(addr, Duration::from_secs(5), Once::new(client));
    reactor.run_until(done).unwrap();
    assert_eq!(client_log.borrow().data, b"v6");
    let peer = client_log.borrow().lost.clone();
    assert_eq!(peer, Some(Reason::Done));
}

/// Connecting to a closed port fails with `ConnectionRefused`, through the factory, with the
/// errno kept.
#[test]
fn reports_a_refused_connection_to_the_factory() {
    let reactor = reactor();
    let port = reactor
        .listen_tcp(loopback(), twine_core::protocol::ProtocolFactory::new(|| echo(&log())))
        .unwrap();
    let addr = port.tcp_address().unwrap();
    port.stop_listening();
    let done = reactor.deferred::<()>();
    let mut factory = Once::new(Recorder::new(&log()));
    factory.done = Some(done.clone());
    let failed = Rc::clone(&factory.failed);
    reactor.connect_tcp(addr, Duration::from_secs(5), factory);
    reactor.run_until(done).unwrap();
    let failed = failed.borrow().clone().unwrap();
    assert_eq!(failed.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(failed.raw_os_error(), Some(libc::ECONNREFUSED));
}

/// A connection attempt that the peer never completes ends with `TimedOut` after the connect
/// timeout. The peer is a listener with a zero backlog that never accepts, so later SYNs are
/// dropped.
#[test]
fn times_out_a_connect_that_never_completes() {
    use nix::sys::socket::{listen, Backlog};
    // Listening again on a listening socket sets its backlog (Linux).
    let fd = std::net::TcpListener::bind(loopback()).unwrap();
    listen(&fd.as_fd(), Backlog::new(0).unwrap()).unwrap();
    let addr = fd.local_addr().unwrap();

    let reactor = reactor();
    let done = reactor.deferred::<()>();
    let kinds: Rc<RefCell<Vec<ErrorKind>>> = Rc::default();
    for _ in 0..8 {
        let factory = TimeoutWatch { done: done.clone(), kinds: Rc::clone(&kinds) };
        reactor.connect_tcp(addr, Duration::from_millis(300), factory);
    }
    reactor.run_until(done).unwrap();
    assert!(kinds.borrow().contains(&ErrorKind::TimedOut), "{:?}", kinds.borrow());
    drop(fd);
}

/// A client factory that fires `done` on the first timed-out attempt.
struct TimeoutWatch {
    done: twine_core::Deferred<()>,
    kinds: Rc<RefCell<Vec<ErrorKind>>>,
}

impl Factory for TimeoutWatch {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(Recorder::new(&log())))
    }
}

impl ClientFactory for TimeoutWatch {
    fn client_connection_failed(&mut self, reason: Error) {
        self.kinds.borrow_mut().push(reason.kind());
        if reason.kind() == ErrorKind::TimedOut && !self.done.fired() {
            self.done.callback(());
        }
    }
}

/// With half-close, the peer's end of file arrives as `read_connection_lost`, and the side
/// that asked to keep writing can still answer; `write_eof` reports `write_connection_lost`.
#[test]
fn half_close_keeps_the_other_direction_open() {
    let reactor = reactor();
    let server_log = log();
    let factory_log = Rc::clone(&server_log);
    let factory = twine_core::protocol::ProtocolFactory::new(move || {
        Recorder::new(&factory_log).half_close(HalfClose::KeepWriting)
    });
    let port = reactor.listen_tcp(loopback(), factory).unwrap();
    let client_log = log();
    let done = reactor.deferred::<()>();
    let client = Recorder::new(&client_log).greeting(b"question").done(&done);
    reactor.connect_tcp(port.tcp_address().unwrap(), Duration::from_secs(5), Once::new(client));
    // Once connected, the client half-closes; the server answers after the EOF.
    let (poll_client, poll_server, poller) =
        (Rc::clone(&client_log), Rc::clone(&server_log), reactor.clone());
    let asked = Rc::new(RefCell::new(false));
    let answered = Rc::new(RefCell::new(false));
    let looping = twine_core::time::LoopingCall::start(
        reactor.scheduler(),
        Duration::from_millis(5),
        true,
        move || {
            let client = poll_client.borrow().transport.clone();
            let already_asked = *asked.borrow();
            if let (Some(client), false) = (&client, already_asked) {
                client.write_eof();
                *asked.borrow_mut() = true;
            }
            let server = poll_server.borrow();
            if server.read_lost && !*answered.borrow() {
                let transport = server.transport.clone().unwrap();
                transport.write(b"answer");
                transport.lose_connection();
                *answered.borrow_mut() = true;
            }
            let _ = &poller;
        },
    );
    reactor.run_until(done).unwrap();
    looping.stop();
    assert_eq!(server_log.borrow().data, b"question");
    assert!(server_log.borrow().read_lost);
    assert!(client_log.borrow().write_lost);
    assert_eq!(client_log.borrow().data, b"answer");
    assert_eq!(client_log.borrow().lost, Some(Reason::Done));
}

/// `abort_connection` discards buffered data and reports `Aborted` locally; the peer sees
/// the connection end.
#[test]
fn abort_reports_aborted() {
    let reactor = reactor();
    let server_log = log();
    let server_done = reactor.deferred::<()>();
    let (factory_log, factory_done) = (Rc::clone(&server_log), server_done.clone());
    let factory = twine_core::protocol::ProtocolFactory::new(move || {
        Recorder::new(&factory_log).done(&factory_done)
    });
    let port = reactor.listen_tcp(loopback(), factory).unwrap();
    let client_log = log();
    let done = reactor.deferred::<()>();
    let client = Recorder::new(&client_log).done(&done);
    reactor.connect_tcp(port.tcp_address().unwrap(), Duration::from_secs(5), Once::new(client));
    let poll_log = Rc::clone(&client_log);
    let looping = twine_core::time::LoopingCall::start(
        reactor.scheduler(),
        Duration::from_millis(5),
        true,
        move || {
            if let Some(transport) = poll_log.borrow().transport.clone() {
                transport.abort_connection();
            }
        },
    );
    reactor.run_until(done).unwrap();
    looping.stop();
    assert_eq!(client_log.borrow().lost, Some(Reason::Aborted));
    reactor.run_until(server_done).unwrap();
    assert!(server_log.borrow().lost.is_some());
}

/// A protocol's transport handle is usable from any event: here the server writes to the
/// first client's connection from a timer and from the second client's `data_received`.
#[test]
fn writes_from_a_timer_and_from_another_connection() {
    let reactor = reactor();
    let connections: Rc<RefCell<Vec<Rc<dyn twine_core::Transport>>>> = Rc::default();
    let (registry, timer_reactor) = (Rc::clone(&connections), reactor.clone());
    let factory = twine_core::protocol::ProtocolFactory::new(move || {
        let registry = Rc::clone(&registry);
        let timer_reactor = timer_reactor.clone();
        let mut first = true;
        Recorder::new(&log()).on_data(move |transport, data| {
            registry.borrow_mut().push(Rc::clone(transport));
            if data == b"first" && first {
                first = false;
                let transport = Rc::clone(transport);
                timer_reactor
                    .call_later(Duration::from_millis(1), move || transport.write(b"tick;"));
            }
            if data == b"second" {
                let first = registry.borrow().first().cloned().unwrap();
                first.write(b"relayed;");
                first.lose_connection();
            }
        })
    });
    let port = reactor.listen_tcp(loopback(), factory).unwrap();
    let addr = port.tcp_address().unwrap();
    let first_log = log();
    let done = reactor.deferred::<()>();
    let first = Recorder::new(&first_log).greeting(b"first").done(&done);
    reactor.connect_tcp(addr, Duration::from_secs(5), Once::new(first));
    let (second_reactor, watch) = (reactor.clone(), Rc::clone(&first_log));
    let looping = twine_core::time::LoopingCall::start(
        reactor.scheduler(),
        Duration::from_millis(2),
        false,
        move || {
            if watch.borrow().data == b"tick;" {
                watch.borrow_mut().data.push(b' ');
                let second = Recorder::new(&log()).greeting(b"second");
                second_reactor.connect_tcp(addr, Duration::from_secs(5), Once::new(second));
            }
        },
    );
    reactor.run_until(done).unwrap();
    looping.stop();
    assert_eq!(first_log.borrow().data, b"tick; relayed;");
}

/// A factory that records its lifecycle.
struct Lifecycle {
    events: Rc<RefCell<Vec<&'static str>>>,
    done: Option<twine_core::Deferred<()>>,
}

impl Factory for Lifecycle {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        self.events.borrow_mut().push("build");
        let mut recorder = Recorder::new(&log());
        if let Some(done) = self.done.take() {
            recorder = recorder.done(&done).greeting(b"x");
        }
        Some(Box::new(recorder.on_data(|transport, _| transport.lose_connection())))
    }

    fn start_factory(&mut self) {
        self.events.borrow_mut().push("start");
    }

    fn stop_factory(&mut self) {
        self.events.borrow_mut().push("stop");
    }
}

impl ClientFactory for Lifecycle {}

/// Factories hear `start_factory` before their first `build_protocol`, even when the
/// connection is made on the loop's very first turn, and `stop_factory` at the end.
#[test]
fn factories_start_before_building_and_stop_at_the_end() {
    let reactor = reactor();
    let server_events = Rc::default();
    let server = Lifecycle { events: Rc::clone(&server_events), done: None };
    let port = reactor.listen_tcp(loopback(), server).unwrap();
    let client_events = Rc::default();
    let done = reactor.deferred::<()>();
    let client = Lifecycle { events: Rc::clone(&client_events), done: Some(done.clone()) };
    reactor.connect_tcp(port.tcp_address().unwrap(), Duration::from_secs(5), client);
    reactor.run_until(done).unwrap();
    port.stop_listening();
    reactor.stop();
    reactor.run().unwrap();
    assert_eq!(*client_events.borrow(), ["start", "build", "stop"]);
    assert_eq!(*server_events.borrow(), ["start", "build", "stop"]);
}

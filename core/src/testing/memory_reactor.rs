//! `MemoryReactor`: records TCP requests, keeps virtual time.

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Clock;
use crate::error::Error;
use crate::protocol::{ClientFactory, Factory};
use crate::reactor::TcpReactor;
use crate::time::{DelayedCall, Scheduler};

/// A `listen_tcp` request seen by a [`MemoryReactor`].
#[derive(Clone)]
pub struct TcpServerRecord {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The factory given; call its `build_protocol` to play an incoming connection.
    pub factory: Rc<RefCell<Box<dyn Factory>>>,
}

/// A `connect_tcp` request seen by a [`MemoryReactor`].
#[derive(Clone)]
pub struct TcpClientRecord {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The timeout asked for.
    pub timeout: Duration,
    /// The factory given; build a protocol to play success, or call
    /// `client_connection_failed` to play failure.
    pub factory: Rc<RefCell<Box<dyn ClientFactory>>>,
}

/// A reactor that performs no I/O: it records `listen_tcp`/`connect_tcp` requests for the
/// test to inspect and play out, and schedules calls on a [`Clock`] (Twisted's
/// `MemoryReactorClock`).
#[derive(Default)]
pub struct MemoryReactor {
    clock: Clock,
    servers: RefCell<Vec<TcpServerRecord>>,
    clients: RefCell<Vec<TcpClientRecord>>,
}

impl MemoryReactor {
    /// An empty reactor with a fresh clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reactor's clock, to advance.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records a listen request; returns `addr` (a port 0 stays 0).
    ///
    /// # Errors
    ///
    /// Never; the signature matches [`Reactor::listen_tcp`](crate::Reactor::listen_tcp)'s.
    pub fn listen_tcp(
        &self,
        addr: SocketAddr,
        factory: impl Factory + 'static,
    ) -> Result<SocketAddr, Error> {
        self.listen_tcp_boxed(addr, Box::new(factory))
    }

    /// Records a connect request.
    pub fn connect_tcp(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        factory: impl ClientFactory + 'static,
    ) {
        self.connect_tcp_boxed(addr, timeout, Box::new(factory));
    }

    /// The listen requests so far.
    pub fn tcp_servers(&self) -> Vec<TcpServerRecord> {
        self.servers.borrow().clone()
    }

    /// The connect requests so far.
    pub fn tcp_clients(&self) -> Vec<TcpClientRecord> {
        self.clients.borrow().clone()
    }
}

impl TcpReactor for MemoryReactor {
    fn listen_tcp_boxed(
        &self,
        addr: SocketAddr,
        factory: Box<dyn Factory>,
    ) -> Result<SocketAddr, Error> {
        let factory = Rc::new(RefCell::new(factory));
        self.servers.borrow_mut().push(TcpServerRecord { addr, factory });
        Ok(addr)
    }

    fn connect_tcp_boxed(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        factory: Box<dyn ClientFactory>,
    ) {
        let factory = Rc::new(RefCell::new(factory));
        self.clients.borrow_mut().push(TcpClientRecord { addr, timeout, factory });
    }
}

impl Scheduler for MemoryReactor {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn call_later_boxed(&self, delay: Duration, call: Box<dyn FnOnce()>) -> DelayedCall {
        self.clock.call_later_boxed(delay, call)
    }

    fn call_soon_boxed(&self, call: Box<dyn FnOnce()>) {
        self.clock.call_soon_boxed(call);
    }
}

impl fmt::Debug for MemoryReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReactor")
            .field("tcp_servers", &self.servers.borrow().len())
            .field("tcp_clients", &self.clients.borrow().len())
            .finish()
    }
}

impl fmt::Debug for TcpServerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServerRecord").field("addr", &self.addr).finish()
    }
}

impl fmt::Debug for TcpClientRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpClientRecord")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Address, ProtocolFactory};
    use crate::testing::StringTransport;
    use crate::Protocol;

    struct Greeter;

    impl Protocol for Greeter {
        fn connection_made(&mut self, transport: Rc<dyn crate::Transport>) {
            transport.write(b"hello");
        }

        fn data_received(&mut self, _data: &[u8]) {}
    }

    /// Code written against `&dyn TcpReactor` is recorded, not run: the test plays the
    /// connection with the recorded factory, and schedules on the reactor's clock.
    #[test]
    fn records_requests_for_the_test_to_play() {
        let memory = MemoryReactor::new();
        let reactor: &dyn TcpReactor = &memory;
        let addr = SocketAddr::from(([127, 0, 0, 1], 2222));
        assert_eq!(
            reactor.listen_tcp_boxed(addr, Box::new(ProtocolFactory::new(|| Greeter))).ok(),
            Some(addr)
        );
        reactor.connect_tcp_boxed(
            addr,
            Duration::from_secs(3),
            Box::new(ProtocolFactory::new(|| Greeter)),
        );
        let servers = memory.tcp_servers();
        let clients = memory.tcp_clients();
        assert_eq!((servers.len(), clients.len()), (1, 1));
        assert_eq!(clients.first().map(|client| client.timeout), Some(Duration::from_secs(3)));

        let server = servers.first().map(|server| Rc::clone(&server.factory));
        let protocol =
            server.and_then(|factory| factory.borrow_mut().build_protocol(&Address::Tcp(addr)));
        let transport = StringTransport::new();
        let mut protocol = protocol.unwrap_or_else(|| Box::new(Greeter));
        protocol.connection_made(transport.clone());
        assert_eq!(transport.value(), b"hello");

        let fired = Rc::new(std::cell::Cell::new(false));
        let flag = Rc::clone(&fired);
        memory.call_later_boxed(Duration::from_secs(1), Box::new(move || flag.set(true)));
        memory.clock().advance(Duration::from_secs(1));
        assert!(fired.get());
    }
}

//! Listening, connecting, adopting descriptors and watching raw descriptors.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::Token;

use super::stream::{BufferLimits, Stream, StreamFds, StreamKind};
use super::{Inner, Reactor, Ready, Side};
use crate::error::{Error, ErrorKind};
use crate::protocol::{Address, ClientFactory, Factory, Protocol, Transport};
use crate::time::DelayedCall;

/// At most this many connections are accepted per readiness event before the listener yields.
const ACCEPTS_PER_EVENT: usize = 64;

impl Reactor {
    /// Listens for TCP connections on `addr` (IPv4 or IPv6; port 0 picks a free port, see
    /// [`ListeningPort::address`]); `factory` builds a protocol per connection. Accepted
    /// sockets have `TCP_NODELAY` set.
    ///
    /// # Errors
    ///
    /// The address is in use ([`ErrorKind::AddrInUse`]), not local, or not permitted.
    pub fn listen_tcp(
        &self,
        addr: SocketAddr,
        factory: impl Factory + 'static,
    ) -> Result<ListeningPort, Error> {
        let socket = mio::net::TcpListener::bind(addr)
            .map_err(|err| Error::from_io(&err, format!("listen on tcp:{addr}")))?;
        let local = socket.local_addr().map_err(|err| Error::from_io(&err, "listener address"))?;
        self.listen(ListenSocket::Tcp(socket), Address::Tcp(local), Box::new(factory))
    }

    /// Listens for connections on the Unix-domain socket `path` (which must not exist); the
    /// socket file is removed when the port stops listening.
    ///
    /// # Errors
    ///
    /// The path exists ([`ErrorKind::AddrInUse`]) or its directory is not writable.
    pub fn listen_unix(
        &self,
        path: impl AsRef<Path>,
        factory: impl Factory + 'static,
    ) -> Result<ListeningPort, Error> {
        let path = path.as_ref().to_path_buf();
        let socket = mio::net::UnixListener::bind(&path)
            .map_err(|err| Error::from_io(&err, format!("listen on unix:{}", path.display())))?;
        let address = Address::Unix(Some(path.clone()));
        self.listen(ListenSocket::Unix(socket, path), address, Box::new(factory))
    }

    /// Listens on a TCP socket already bound and listening (one a privileged process bound
    /// and passed over); as [`listen_tcp`](Self::listen_tcp) from there on.
    ///
    /// # Errors
    ///
    /// The socket cannot be made non-blocking or has no local address.
    pub fn adopt_tcp_listener(
        &self,
        listener: std::net::TcpListener,
        factory: impl Factory + 'static,
    ) -> Result<ListeningPort, Error> {
        listener.set_nonblocking(true).map_err(|err| Error::from_io(&err, "adopt a listener"))?;
        let socket = mio::net::TcpListener::from_std(listener);
        let local = socket.local_addr().map_err(|err| Error::from_io(&err, "listener address"))?;
        self.listen(ListenSocket::Tcp(socket), Address::Tcp(local), Box::new(factory))
    }

    /// Listens on a Unix-domain socket already bound to `path` and listening (one a
    /// privileged process made and passed over); as [`listen_unix`](Self::listen_unix) from
    /// there on, removing `path` when the port stops listening (a failure to is logged).
    ///
    /// # Errors
    ///
    /// The socket cannot be made non-blocking.
    pub fn adopt_unix_listener(
        &self,
        listener: std::os::unix::net::UnixListener,
        path: impl AsRef<Path>,
        factory: impl Factory + 'static,
    ) -> Result<ListeningPort, Error> {
        listener.set_nonblocking(true).map_err(|err| Error::from_io(&err, "adopt a listener"))?;
        let path = path.as_ref().to_path_buf();
        let socket = mio::net::UnixListener::from_std(listener);
        let address = Address::Unix(Some(path.clone()));
        self.listen(ListenSocket::Unix(socket, path), address, Box::new(factory))
    }

    fn listen(
        &self,
        socket: ListenSocket,
        address: Address,
        factory: Box<dyn Factory>,
    ) -> Result<ListeningPort, Error> {
        let listener = Rc::new_cyclic(|me| Listener {
            me: me.clone(),
            reactor: self.downgrade(),
            socket: RefCell::new(None),
            token: Cell::new(None),
            address,
            factory: Rc::new(FactoryCell {
                factory: RefCell::new(factory),
                started: Cell::new(false),
            }),
        });
        let token = self.inner.add_registration(listener.clone(), Side::Both);
        let mut socket = socket;
        let registered = match &mut socket {
            ListenSocket::Tcp(tcp) => {
                self.inner.registry().register(tcp, token, mio::Interest::READABLE)
            }
            ListenSocket::Unix(unix, _) => {
                self.inner.registry().register(unix, token, mio::Interest::READABLE)
            }
        };
        if let Err(err) = registered {
            self.inner.remove_registration(token);
            return Err(Error::from_io(&err, "register a listener"));
        }
        *listener.socket.borrow_mut() = Some(socket);
        listener.token.set(Some(token));
        let factory = Rc::clone(&listener.factory);
        self.call_soon(move || factory.ensure_started());
        Ok(ListeningPort { listener })
    }

    /// Connects to `addr` over TCP. The outcome comes from the loop: the factory's protocol
    /// gets `connection_made`, or the factory gets
    /// [`client_connection_failed`](ClientFactory::client_connection_failed) (refused,
    /// unreachable, or [`ErrorKind::TimedOut`] after `timeout`).
    pub fn connect_tcp(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        factory: impl ClientFactory + 'static,
    ) -> Connector {
        let socket = mio::net::TcpStream::connect(addr).map(PendingSocket::Tcp);
        self.connect(socket, Address::Tcp(addr), timeout, Box::new(factory))
    }

    /// Connects to the Unix-domain socket at `path`; the outcome comes as for
    /// [`connect_tcp`](Self::connect_tcp).
    pub fn connect_unix(
        &self,
        path: impl AsRef<Path>,
        timeout: Duration,
        factory: impl ClientFactory + 'static,
    ) -> Connector {
        let path = path.as_ref().to_path_buf();
        let socket = mio::net::UnixStream::connect(&path).map(PendingSocket::Unix);
        self.connect(socket, Address::Unix(Some(path)), timeout, Box::new(factory))
    }

    fn connect(
        &self,
        socket: io::Result<PendingSocket>,
        peer: Address,
        timeout: Duration,
        factory: Box<dyn ClientFactory>,
    ) -> Connector {
        let attempt = Rc::new(Connecting {
            reactor: self.downgrade(),
            started: Cell::new(false),
            socket: RefCell::new(None),
            peer: peer.clone(),
            factory: RefCell::new(Some(factory)),
            timeout: RefCell::new(None),
        });
        let start = Rc::clone(&attempt);
        self.call_soon(move || start.ensure_started());
        let mut socket = match socket {
            Ok(socket) => socket,
            Err(err) => {
                attempt.fail(Error::from_io(&err, format!("connect to {peer}")));
                return Connector { attempt };
            }
        };
        let token = self.inner.add_registration(attempt.clone(), Side::Both);
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        let registered = match &mut socket {
            PendingSocket::Tcp(tcp) => self.inner.registry().register(tcp, token, interest),
            PendingSocket::Unix(unix) => self.inner.registry().register(unix, token, interest),
        };
        *attempt.socket.borrow_mut() = Some((socket, token));
        if let Err(err) = registered {
            attempt.fail(Error::from_io(&err, "register a connecting socket"));
            return Connector { attempt };
        }
        let expire = Rc::downgrade(&attempt);
        let timer = self.call_later(timeout, move || {
            if let Some(attempt) = expire.upgrade() {
                attempt.fail(Error::new(ErrorKind::TimedOut, format!("connect to {peer}")));
            }
        });
        *attempt.timeout.borrow_mut() = Some(timer);
        Connector { attempt }
    }

    /// Makes a transport of an already-connected descriptor: a socket handed over by inetd or
    /// by another reactor, a socketpair end. `protocol` gets `connection_made` from the loop.
    /// The descriptor is made non-blocking (which affects every descriptor sharing its open
    /// file description).
    ///
    /// # Errors
    ///
    /// The descriptor cannot be polled (a regular file: `EPERM`).
    pub fn adopt_fd(
        &self,
        fd: OwnedFd,
        protocol: impl Protocol + 'static,
    ) -> Result<Rc<dyn Transport>, Error> {
        let (fd, peer, host, kind) = socket_addresses(fd);
        let fds = StreamFds::Duplex(fd, None);
        let stream = Stream::open(&self.inner, kind, fds, peer, host, Box::new(protocol))?;
        Ok(stream)
    }

    /// Makes one transport of two descriptors: reads from `read`, writes to `write` (inetd
    /// mode over stdin and stdout, a pair of pipes). `write_eof` closes `write`.
    ///
    /// # Errors
    ///
    /// A descriptor cannot be polled (a regular file: `EPERM`).
    pub fn adopt_fd_pair(
        &self,
        read: OwnedFd,
        write: OwnedFd,
        protocol: impl Protocol + 'static,
    ) -> Result<Rc<dyn Transport>, Error> {
        let fds = StreamFds::Split { read: Some(read), write: Some(write) };
        let stream = Stream::open(
            &self.inner,
            StreamKind::Pipe,
            fds,
            Address::Pipe,
            Address::Pipe,
            Box::new(protocol),
        )?;
        Ok(stream)
    }

    /// Sets the write-buffer limits of transports opened from now on (see [`BufferLimits`]).
    pub fn set_buffer_limits(&self, limits: BufferLimits) {
        self.inner.buffer_limits.set(limits);
    }

    /// Calls `handler` from the loop whenever the raw descriptor `fd` becomes ready for
    /// `interest`. The caller keeps `fd` open until [`FdWatch::stop`].
    ///
    /// # Portability
    ///
    /// Readiness is edge-triggered: `handler` must read (or write) until the OS says
    /// `WouldBlock`, or it will not be called again for data already there. Spurious calls
    /// happen. Regular files cannot be watched (`EPERM` on Linux).
    ///
    /// # Errors
    ///
    /// The OS refused to poll the descriptor.
    pub fn watch_fd(
        &self,
        fd: RawFd,
        interest: Interest,
        handler: impl FnMut(Readiness) + 'static,
    ) -> Result<FdWatch, Error> {
        let interest = match interest {
            Interest::Readable => mio::Interest::READABLE,
            Interest::Writable => mio::Interest::WRITABLE,
            Interest::Both => mio::Interest::READABLE | mio::Interest::WRITABLE,
        };
        self.watch_with(fd, Box::new(handler), |registry, token| {
            registry.register(&mut SourceFd(&fd), token, interest)
        })
    }

    /// [`watch_fd`](Self::watch_fd) for readability of a descriptor that several reactors or
    /// processes wait on at once, such as a listening socket shared by worker processes: each
    /// event wakes one of the reactors waiting on it, not all of them (the others would find
    /// nothing to accept). On Linux this is `EPOLLEXCLUSIVE`; elsewhere it is `watch_fd`.
    ///
    /// # Errors
    ///
    /// The OS refused to poll the descriptor.
    pub fn watch_shared_fd(
        &self,
        fd: RawFd,
        handler: impl FnMut(Readiness) + 'static,
    ) -> Result<FdWatch, Error> {
        self.watch_with(fd, Box::new(handler), |registry, token| {
            #[cfg(target_os = "linux")]
            {
                use std::os::fd::AsRawFd;
                let token = u64::try_from(token.0).unwrap_or(u64::MAX);
                crate::sys::fd::epoll_add_exclusive(registry.as_raw_fd(), fd, token)
            }
            #[cfg(not(target_os = "linux"))]
            registry.register(&mut SourceFd(&fd), token, mio::Interest::READABLE)
        })
    }

    fn watch_with(
        &self,
        fd: RawFd,
        handler: Box<dyn FnMut(Readiness)>,
        register: impl FnOnce(&mio::Registry, Token) -> io::Result<()>,
    ) -> Result<FdWatch, Error> {
        let watcher = Rc::new(Watcher {
            reactor: self.downgrade(),
            fd,
            token: Cell::new(None),
            handler: RefCell::new(handler),
        });
        let token = self.inner.add_registration(watcher.clone(), Side::Both);
        if let Err(err) = register(self.inner.registry(), token) {
            self.inner.remove_registration(token);
            return Err(Error::from_io(&err, "watch a descriptor"));
        }
        watcher.token.set(Some(token));
        Ok(FdWatch { watcher })
    }
}

/// The TCP requests of a reactor, as an object-safe trait: code that opens ports and
/// connections through a `&dyn TcpReactor` can be tested with
/// [`MemoryReactor`](crate::testing::MemoryReactor).
pub trait TcpReactor {
    /// [`Reactor::listen_tcp`] with a boxed factory; returns the bound address (the port is
    /// not returned: it listens until the reactor stops).
    ///
    /// # Errors
    ///
    /// As for [`Reactor::listen_tcp`].
    fn listen_tcp_boxed(
        &self,
        addr: SocketAddr,
        factory: Box<dyn Factory>,
    ) -> Result<SocketAddr, Error>;

    /// [`Reactor::connect_tcp`] with a boxed factory.
    fn connect_tcp_boxed(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        factory: Box<dyn ClientFactory>,
    );
}

impl TcpReactor for Reactor {
    fn listen_tcp_boxed(
        &self,
        addr: SocketAddr,
        factory: Box<dyn Factory>,
    ) -> Result<SocketAddr, Error> {
        let port = self.listen_tcp(addr, factory)?;
        Ok(port.tcp_address().unwrap_or(addr))
    }

    fn connect_tcp_boxed(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        factory: Box<dyn ClientFactory>,
    ) {
        self.connect_tcp(addr, timeout, factory);
    }
}

/// Works out a socket's addresses (a pipe has none).
fn socket_addresses(fd: OwnedFd) -> (OwnedFd, Address, Address, StreamKind) {
    let tcp = std::net::TcpStream::from(fd);
    if let (Ok(peer), Ok(host)) = (tcp.peer_addr(), tcp.local_addr()) {
        return (OwnedFd::from(tcp), Address::Tcp(peer), Address::Tcp(host), StreamKind::Socket);
    }
    let unix = std::os::unix::net::UnixStream::from(OwnedFd::from(tcp));
    if let (Ok(peer), Ok(host)) = (unix.peer_addr(), unix.local_addr()) {
        let peer = Address::Unix(peer.as_pathname().map(Path::to_path_buf));
        let host = Address::Unix(host.as_pathname().map(Path::to_path_buf));
        return (OwnedFd::from(unix), peer, host, StreamKind::Socket);
    }
    (OwnedFd::from(unix), Address::Pipe, Address::Pipe, StreamKind::Pipe)
}

enum ListenSocket {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, PathBuf),
}

struct Listener {
    me: Weak<Self>,
    reactor: Weak<Inner>,
    socket: RefCell<Option<ListenSocket>>,
    token: Cell<Option<Token>>,
    address: Address,
    factory: Rc<FactoryCell>,
}

/// A listener's factory, and whether it was started.
struct FactoryCell {
    factory: RefCell<Box<dyn Factory>>,
    started: Cell<bool>,
}

impl FactoryCell {
    /// Delivers `start_factory` once, before anything else reaches the factory.
    fn ensure_started(&self) {
        if !self.started.replace(true) {
            self.factory.borrow_mut().start_factory();
        }
    }
}

impl Listener {
    fn accept(&self) -> io::Result<(OwnedFd, Address, Address)> {
        let socket = self.socket.borrow();
        match socket.as_ref() {
            Some(ListenSocket::Tcp(listener)) => {
                let (stream, peer) = listener.accept()?;
                if let Err(err) = stream.set_nodelay(true) {
                    log::debug!("TCP_NODELAY failed: {err}");
                }
                let host = stream.local_addr()?;
                Ok((OwnedFd::from(stream), Address::Tcp(peer), Address::Tcp(host)))
            }
            Some(ListenSocket::Unix(listener, path)) => {
                let (stream, peer) = listener.accept()?;
                let peer = Address::Unix(peer.as_pathname().map(Path::to_path_buf));
                Ok((OwnedFd::from(stream), peer, Address::Unix(Some(path.clone()))))
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn accept_all(&self) {
        let Some(reactor) = self.reactor.upgrade() else { return };
        for _ in 0..ACCEPTS_PER_EVENT {
            let (fd, peer, host) = match self.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // EMFILE and friends: the connection stays in the backlog; try next turn.
                    log::warn!("accept on {} failed: {err}", self.address);
                    break;
                }
            };
            self.factory.ensure_started();
            let protocol = self.factory.factory.borrow_mut().build_protocol(&peer);
            let Some(protocol) = protocol else { continue };
            let fds = StreamFds::Duplex(fd, None);
            if let Err(err) = Stream::open(&reactor, StreamKind::Socket, fds, peer, host, protocol)
            {
                log::warn!("accepted connection could not be registered: {err}");
            }
        }
        let me = self.me.clone();
        reactor.call_soon(Box::new(move || {
            if let Some(me) = me.upgrade() {
                me.accept_all();
            }
        }));
    }

    fn stop(&self) {
        let Some(mut socket) = self.socket.borrow_mut().take() else { return };
        let reactor = self.reactor.upgrade();
        if let Some(reactor) = &reactor {
            let deregistered = match &mut socket {
                ListenSocket::Tcp(tcp) => reactor.registry().deregister(tcp),
                ListenSocket::Unix(unix, _) => reactor.registry().deregister(unix),
            };
            if let Err(err) = deregistered {
                log::debug!("deregistering a listener failed: {err}");
            }
            if let Some(token) = self.token.take() {
                reactor.remove_registration(token);
            }
        }
        if let ListenSocket::Unix(_, path) = &socket {
            if let Err(err) = std::fs::remove_file(path) {
                log::debug!("removing {} failed: {err}", path.display());
            }
        }
        drop(socket);
        let factory = Rc::clone(&self.factory);
        if let Some(reactor) = reactor {
            reactor.call_soon(Box::new(move || {
                factory.ensure_started();
                factory.factory.borrow_mut().stop_factory();
            }));
        }
    }
}

impl Ready for Listener {
    fn ready(&self, _side: Side, _event: &mio::event::Event) {
        self.accept_all();
    }

    fn shutdown(&self) {
        self.stop();
    }
}

/// A listening TCP or Unix port, as returned by [`Reactor::listen_tcp`] and
/// [`Reactor::listen_unix`]. Dropping the handle does not close the port.
#[derive(Clone)]
pub struct ListeningPort {
    listener: Rc<Listener>,
}

impl ListeningPort {
    /// Stops accepting connections (existing ones go on); the factory's `stop_factory` follows
    /// from the loop. Idempotent.
    pub fn stop_listening(&self) {
        self.listener.stop();
    }

    /// The address the port listens on, with the port number the OS picked for port 0.
    pub fn address(&self) -> Address {
        self.listener.address.clone()
    }

    /// The TCP address, for a TCP port.
    pub fn tcp_address(&self) -> Option<SocketAddr> {
        match self.listener.address {
            Address::Tcp(addr) => Some(addr),
            _ => None,
        }
    }
}

impl fmt::Debug for ListeningPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListeningPort").field("address", &self.listener.address).finish()
    }
}

enum PendingSocket {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl PendingSocket {
    /// `Ok(true)` once connected, `Ok(false)` while in progress.
    fn check(&self) -> io::Result<bool> {
        let (error, peer) = match self {
            Self::Tcp(tcp) => (tcp.take_error(), tcp.peer_addr().map(drop)),
            Self::Unix(unix) => (unix.take_error(), unix.peer_addr().map(drop)),
        };
        if let Some(err) = error? {
            return Err(err);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn deregister(&mut self, reactor: &Inner) {
        let result = match self {
            Self::Tcp(tcp) => reactor.registry().deregister(tcp),
            Self::Unix(unix) => reactor.registry().deregister(unix),
        };
        if let Err(err) = result {
            log::debug!("deregistering a connecting socket failed: {err}");
        }
    }

    fn into_parts(self) -> (OwnedFd, Address, StreamKind) {
        match self {
            Self::Tcp(tcp) => {
                if let Err(err) = tcp.set_nodelay(true) {
                    log::debug!("TCP_NODELAY failed: {err}");
                }
                let host = tcp.local_addr().map_or(Address::Pipe, Address::Tcp);
                (OwnedFd::from(tcp), host, StreamKind::Socket)
            }
            Self::Unix(unix) => (OwnedFd::from(unix), Address::Unix(None), StreamKind::Socket),
        }
    }
}

struct Connecting {
    reactor: Weak<Inner>,
    /// Whether `start_factory` was delivered (the attempt may settle first).
    started: Cell<bool>,
    socket: RefCell<Option<(PendingSocket, Token)>>,
    peer: Address,
    factory: RefCell<Option<Box<dyn ClientFactory>>>,
    timeout: RefCell<Option<DelayedCall>>,
}

impl Connecting {
    /// Delivers `start_factory` once, before anything else reaches the factory.
    fn ensure_started(&self) {
        if self.started.replace(true) {
            return;
        }
        if let Some(factory) = self.factory.borrow_mut().as_mut() {
            factory.start_factory();
        }
    }

    fn finish_timer(&self) {
        if let Some(timer) = self.timeout.borrow_mut().take() {
            timer.cancel();
        }
    }

    fn fail(&self, err: Error) {
        self.finish_timer();
        let Some(reactor) = self.reactor.upgrade() else { return };
        if let Some((mut socket, token)) = self.socket.borrow_mut().take() {
            socket.deregister(&reactor);
            reactor.remove_registration(token);
        }
        let started = self.started.replace(true);
        let Some(mut factory) = self.factory.borrow_mut().take() else { return };
        reactor.call_soon(Box::new(move || {
            if !started {
                factory.start_factory();
            }
            factory.client_connection_failed(err);
            factory.stop_factory();
        }));
    }

    fn connected(&self) {
        self.finish_timer();
        let Some(reactor) = self.reactor.upgrade() else { return };
        let Some((socket, token)) = self.socket.borrow_mut().take() else { return };
        self.ensure_started();
        let Some(mut factory) = self.factory.borrow_mut().take() else { return };
        let protocol = factory.build_protocol(&self.peer);
        reactor.call_soon(Box::new(move || factory.stop_factory()));
        let (fd, host, kind) = socket.into_parts();
        let Some(protocol) = protocol else {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
            if let Err(err) = reactor.registry().deregister(&mut SourceFd(&raw)) {
                log::debug!("deregistering a refused connection failed: {err}");
            }
            reactor.remove_registration(token);
            return;
        };
        let fds = StreamFds::Duplex(fd, Some(token));
        if let Err(err) = Stream::open(&reactor, kind, fds, self.peer.clone(), host, protocol) {
            log::warn!("connected socket could not be registered: {err}");
            reactor.remove_registration(token);
        }
    }
}

impl Ready for Connecting {
    fn ready(&self, _side: Side, _event: &mio::event::Event) {
        let checked = match self.socket.borrow().as_ref() {
            Some((socket, _)) => socket.check(),
            None => return,
        };
        match checked {
            Ok(true) => self.connected(),
            Ok(false) => {}
            Err(err) => self.fail(Error::from_io(&err, format!("connect to {}", self.peer))),
        }
    }

    fn shutdown(&self) {
        self.fail(Error::new(ErrorKind::ReactorStopped, "reactor stopped"));
    }
}

/// An outgoing connection attempt, as returned by [`Reactor::connect_tcp`].
#[derive(Clone)]
pub struct Connector {
    attempt: Rc<Connecting>,
}

impl Connector {
    /// Abandons the attempt if it is still in progress: the factory hears
    /// `client_connection_failed` with [`ErrorKind::Cancelled`]. No effect once connected.
    pub fn stop_connecting(&self) {
        if self.attempt.socket.borrow().is_some() {
            self.attempt.fail(Error::new(ErrorKind::Cancelled, "connect attempt stopped"));
        }
    }

    /// Whether the attempt is still in progress.
    pub fn connecting(&self) -> bool {
        self.attempt.socket.borrow().is_some()
    }

    /// Where the attempt connects to.
    pub fn destination(&self) -> Address {
        self.attempt.peer.clone()
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("destination", &self.attempt.peer)
            .field("connecting", &self.connecting())
            .finish()
    }
}

/// What to watch a raw descriptor for (see [`Reactor::watch_fd`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Interest {
    /// Data to read, or end of file.
    Readable,
    /// Room to write.
    Writable,
    /// Either.
    Both,
}

/// What a watched descriptor is ready for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// A read would not block (data, end of file or an error is there).
    pub readable: bool,
    /// A write would not block.
    pub writable: bool,
    /// The peer closed its end (hang-up).
    pub closed: bool,
    /// The descriptor has a pending error.
    pub error: bool,
}

struct Watcher {
    reactor: Weak<Inner>,
    fd: RawFd,
    token: Cell<Option<Token>>,
    handler: RefCell<Box<dyn FnMut(Readiness)>>,
}

impl Watcher {
    fn stop(&self) {
        let Some(token) = self.token.take() else { return };
        let Some(reactor) = self.reactor.upgrade() else { return };
        if let Err(err) = reactor.registry().deregister(&mut SourceFd(&self.fd)) {
            log::debug!("deregistering a watched descriptor failed: {err}");
        }
        reactor.remove_registration(token);
    }
}

impl Ready for Watcher {
    fn ready(&self, _side: Side, event: &mio::event::Event) {
        if self.token.get().is_none() {
            return;
        }
        let readiness = Readiness {
            readable: event.is_readable(),
            writable: event.is_writable(),
            closed: event.is_read_closed() || event.is_write_closed(),
            error: event.is_error(),
        };
        (self.handler.borrow_mut())(readiness);
    }

    fn shutdown(&self) {
        self.stop();
    }
}

/// A raw descriptor being watched (see [`Reactor::watch_fd`]).
#[derive(Clone)]
pub struct FdWatch {
    watcher: Rc<Watcher>,
}

impl FdWatch {
    /// Stops watching; the handler is not called again. Idempotent.
    pub fn stop(&self) {
        self.watcher.stop();
    }
}

impl fmt::Debug for FdWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdWatch").field("fd", &self.watcher.fd).finish()
    }
}

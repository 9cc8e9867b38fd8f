//! Port forwarding: local (`-L`, a local listener opening `direct-tcpip` channels), remote
//! (`-R`, `tcpip-forward` and the `forwarded-tcpip` channels it brings), their Unix-socket
//! variants, and `direct-tcpip` channels as transports (the basis of `-W` and `-J`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::{Address, ClientFactory, Factory};
use twine_core::reactor::ListeningPort;
use twine_core::{Protocol, Transport};

use super::channel::{ChannelInner, ChannelKind as Kind};
use super::connect::resolve;
use super::connection::Shared;
use super::relay::{Splice, SpliceEnd};
use super::{ClientError, Connection, Pending};
use crate::connection::msgs::{ChannelKind, GlobalReply, GlobalRequest, OpenFailureReason};
use crate::connection::ChannelId;

/// How long connecting to a remote forward's target may take.
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where forwarded connections go: for a remote forward, a place reached from this side; for a
/// local forward, a place reached from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardTarget {
    /// A TCP host and port.
    Tcp {
        /// A host name or address.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix-domain socket.
    Unix(PathBuf),
    /// No fixed target: each forwarded channel is accepted at once and run by a protocol
    /// the handler makes (dynamic remote forwarding, `ssh -R port`: the protocol speaks SOCKS
    /// over the channel and connects where it is asked). Only for remote forwards.
    Handler(ForwardHandler),
}

/// Makes the protocol for each channel of a [`ForwardTarget::Handler`] forward.
#[derive(Clone)]
pub struct ForwardHandler(Rc<dyn Fn() -> Box<dyn Protocol>>);

impl ForwardHandler {
    /// A handler calling `make` for each forwarded channel.
    pub fn new(make: impl Fn() -> Box<dyn Protocol> + 'static) -> Self {
        Self(Rc::new(make))
    }
}

impl PartialEq for ForwardHandler {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ForwardHandler {}

impl fmt::Debug for ForwardHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardHandler").finish_non_exhaustive()
    }
}

impl ForwardTarget {
    /// A TCP target.
    pub fn tcp(host: &str, port: u16) -> Self {
        Self::Tcp { host: host.to_owned(), port }
    }
}

/// What the server listens on for a remote forward.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Listen {
    Tcp { address: String, port: u32 },
    Unix(Vec<u8>),
}

/// A remote forward the server accepted.
pub(crate) struct RemoteForwardEntry {
    listen: Listen,
    target: ForwardTarget,
}

/// A remote forward (`ssh -R`): the server listens and sends each connection back to the
/// target.
#[derive(Clone)]
pub struct RemoteForward {
    connection: Connection,
    listen: Listen,
}

impl RemoteForward {
    /// The port the server listens on (the one it chose, when 0 was asked); 0 for a Unix
    /// socket.
    pub fn bound_port(&self) -> u16 {
        match &self.listen {
            Listen::Tcp { port, .. } => u16::try_from(*port).unwrap_or(0),
            Listen::Unix(_) => 0,
        }
    }

    /// Asks the server to stop listening (`cancel-tcpip-forward`).
    pub fn cancel(&self) -> Pending<()> {
        let request = match &self.listen {
            Listen::Tcp { address, port } => {
                GlobalRequest::CancelTcpipForward { address: address.clone(), port: *port }
            }
            Listen::Unix(path) => {
                GlobalRequest::CancelStreamlocalForward { socket_path: path.clone() }
            }
        };
        let listen = self.listen.clone();
        self.connection.shared.core.borrow_mut().remote_forwards.retain(|f| f.listen != listen);
        let pending = Pending::new(self.connection.scheduler());
        let settle = pending.clone();
        let name = request.name().to_owned();
        self.connection.global_request(request).on_settled(move |reply| {
            settle.settle(match reply {
                Ok(GlobalReply::Failure) => Err(ClientError::RequestRefused { request: name }),
                Ok(_) => Ok(()),
                Err(error) => Err(error),
            });
        });
        pending
    }
}

impl fmt::Debug for RemoteForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteForward").field("listen", &self.listen).finish_non_exhaustive()
    }
}

/// A local forward (`ssh -L`): a local listener whose connections go through the server.
#[derive(Clone, Debug)]
pub struct LocalForward {
    port: ListeningPort,
}

impl LocalForward {
    /// The local address listened on (with the port the OS chose for port 0).
    pub fn address(&self) -> Address {
        self.port.address()
    }

    /// The local TCP address, for a TCP listener.
    pub fn tcp_address(&self) -> Option<SocketAddr> {
        self.port.tcp_address()
    }

    /// Stops listening; connections already forwarded go on.
    pub fn stop(&self) {
        self.port.stop_listening();
    }
}

/// What a local forward asks the server to connect to.
#[derive(Clone, Debug)]
enum Remote {
    Tcp { host: String, port: u16 },
    Unix(Vec<u8>),
}

impl Remote {
    fn kind(&self, originator: &Address) -> ChannelKind {
        match self {
            Self::Tcp { host, port } => {
                let (originator_address, originator_port) = match originator {
                    Address::Tcp(addr) => (addr.ip().to_string(), u32::from(addr.port())),
                    _ => ("127.0.0.1".to_owned(), 0),
                };
                ChannelKind::DirectTcpip {
                    host: host.clone(),
                    port: u32::from(*port),
                    originator_address,
                    originator_port,
                }
            }
            Self::Unix(path) => ChannelKind::DirectStreamlocal { socket_path: path.clone() },
        }
    }
}

/// Builds, per accepted local connection, the end that opens the channel.
struct LocalFactory {
    connection: Connection,
    remote: Remote,
}

impl Factory for LocalFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(LocalEnd {
            connection: self.connection.clone(),
            remote: self.remote.clone(),
            link: Splice::new(),
            end: None,
        }))
    }
}

/// The local connection's protocol: opens its channel, then relays.
struct LocalEnd {
    connection: Connection,
    remote: Remote,
    link: Splice,
    end: Option<SpliceEnd>,
}

impl Protocol for LocalEnd {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let kind = self.remote.kind(&transport.peer());
        let mut end = self.link.end(0);
        end.connection_made(transport);
        self.end = Some(end);
        let link = self.link.clone();
        let on_made = Box::new(move |result: Result<Rc<ChannelInner>, ClientError>| {
            if let Err(error) = result {
                log::info!("forwarded connection refused: {error}");
                link.fail();
            }
        });
        let opened = self.connection.open(kind, Kind::Forward, Box::new(self.link.end(1)), on_made);
        if let Err(error) = opened {
            log::info!("cannot forward: {error}");
            self.link.fail();
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(end) = self.end.as_mut() {
            end.data_received(data);
        }
    }

    fn read_connection_lost(&mut self) -> twine_core::protocol::HalfClose {
        match self.end.as_mut() {
            Some(end) => end.read_connection_lost(),
            None => twine_core::protocol::HalfClose::LoseConnection,
        }
    }

    fn connection_lost(&mut self, reason: twine_core::Reason) {
        if let Some(end) = self.end.as_mut() {
            end.connection_lost(reason);
        }
    }
}

impl Connection {
    /// Opens a `direct-tcpip` channel to `host:port` as seen from the server, and runs
    /// `protocol` over it: the channel is a transport like a TCP connection (`ssh -W`, and a
    /// jump host's transport for the next connection).
    pub fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
        protocol: impl Protocol + 'static,
    ) -> Pending<Rc<dyn Transport>> {
        let remote = Remote::Tcp { host: host.to_owned(), port };
        self.direct(remote.kind(&Address::Named(String::new())), Box::new(protocol))
    }

    /// Opens a `direct-streamlocal@openssh.com` channel to the Unix socket `path` on the
    /// server, and runs `protocol` over it.
    pub fn direct_streamlocal(
        &self,
        path: &Path,
        protocol: impl Protocol + 'static,
    ) -> Pending<Rc<dyn Transport>> {
        let remote = Remote::Unix(path.as_os_str().as_encoded_bytes().to_vec());
        self.direct(remote.kind(&Address::Pipe), Box::new(protocol))
    }

    fn direct(&self, kind: ChannelKind, protocol: Box<dyn Protocol>) -> Pending<Rc<dyn Transport>> {
        let pending = Pending::new(self.scheduler());
        let settle = pending.clone();
        let on_made = Box::new(move |result: Result<Rc<ChannelInner>, ClientError>| {
            settle.settle(result.map(|channel| -> Rc<dyn Transport> { channel }));
        });
        if let Err(error) = self.open(kind, Kind::Forward, protocol, on_made) {
            pending.settle(Err(error));
        }
        pending
    }

    /// Listens on `listen` locally and forwards each connection to `remote` as seen from the
    /// server (`ssh -L listen:host:port`, or `ssh -L listen:/socket` with a Unix target).
    ///
    /// # Errors
    ///
    /// [`ClientError::Local`] if the address cannot be listened on, or the connection has no
    /// reactor.
    pub fn forward_local(
        &self,
        listen: SocketAddr,
        remote: ForwardTarget,
    ) -> Result<LocalForward, ClientError> {
        self.listen_local(remote, |reactor, factory| reactor.listen_tcp(listen, factory))
    }

    /// Listens on the Unix socket `listen` locally and forwards each connection to `remote`
    /// as seen from the server.
    ///
    /// # Errors
    ///
    /// As for [`forward_local`](Self::forward_local).
    pub fn forward_local_unix(
        &self,
        listen: &Path,
        remote: ForwardTarget,
    ) -> Result<LocalForward, ClientError> {
        self.listen_local(remote, |reactor, factory| reactor.listen_unix(listen, factory))
    }

    fn listen_local(
        &self,
        remote: ForwardTarget,
        listen: impl FnOnce(
            &twine_core::Reactor,
            LocalFactory,
        ) -> Result<ListeningPort, twine_core::Error>,
    ) -> Result<LocalForward, ClientError> {
        let reactor = self.reactor_or_error()?;
        let remote = match remote {
            ForwardTarget::Tcp { host, port } => Remote::Tcp { host, port },
            ForwardTarget::Unix(path) => Remote::Unix(path.into_os_string().into_encoded_bytes()),
            ForwardTarget::Handler(_) => {
                return Err(ClientError::Local(twine_core::Error::new(
                    twine_core::ErrorKind::InvalidInput,
                    "a local forward needs a target on the server's side",
                )));
            }
        };
        let factory = LocalFactory { connection: self.clone(), remote };
        let port = listen(reactor, factory).map_err(ClientError::Local)?;
        Ok(LocalForward { port })
    }

    /// Asks the server to listen on `address:port` (port 0: a port it chooses) and to send each
    /// connection back, to be connected to `target` from this side (`ssh -R`).
    pub fn forward_remote(
        &self,
        address: &str,
        port: u16,
        target: ForwardTarget,
    ) -> Pending<RemoteForward> {
        let request =
            GlobalRequest::TcpipForward { address: address.to_owned(), port: u32::from(port) };
        let listen = Listen::Tcp { address: address.to_owned(), port: u32::from(port) };
        self.remote(request, listen, target)
    }

    /// Asks the server to listen on the Unix socket `path` and to send each connection back to
    /// `target` (`ssh -R /path:host:port`, `streamlocal-forward@openssh.com`).
    pub fn forward_remote_unix(
        &self,
        path: &Path,
        target: ForwardTarget,
    ) -> Pending<RemoteForward> {
        let socket_path = path.as_os_str().as_encoded_bytes().to_vec();
        let request = GlobalRequest::StreamlocalForward { socket_path: socket_path.clone() };
        self.remote(request, Listen::Unix(socket_path), target)
    }

    fn remote(
        &self,
        request: GlobalRequest,
        listen: Listen,
        target: ForwardTarget,
    ) -> Pending<RemoteForward> {
        let pending = Pending::new(self.scheduler());
        let settle = pending.clone();
        let name = request.name().to_owned();
        let waiter = Box::new(move |shared: &Shared, reply: Result<GlobalReply, ClientError>| {
            let listen = match (reply, listen) {
                (Ok(GlobalReply::Failure), _) => {
                    return settle.settle(Err(ClientError::RequestRefused { request: name }));
                }
                (Err(error), _) => return settle.settle(Err(error)),
                (Ok(GlobalReply::BoundPort(bound)), Listen::Tcp { address, .. }) => {
                    Listen::Tcp { address, port: bound }
                }
                (Ok(_), listen) => listen,
            };
            shared
                .core
                .borrow_mut()
                .remote_forwards
                .push(RemoteForwardEntry { listen: listen.clone(), target });
            match shared.handle() {
                Some(connection) => settle.settle(Ok(RemoteForward { connection, listen })),
                None => settle.settle(Err(ClientError::ConnectionLost(None))),
            }
        });
        self.shared.global_request(&request, Some(waiter));
        pending
    }

    /// Agent forwarding (`ssh -A`): `auth-agent@openssh.com` channels the server opens are
    /// connected to the agent at `socket`. Sessions ask for it with
    /// [`SessionBuilder::agent_forwarding`](super::SessionBuilder::agent_forwarding).
    pub fn forward_agent(&self, socket: impl Into<PathBuf>) {
        self.shared.core.borrow_mut().agent_socket = Some(socket.into());
    }

    fn reactor_or_error(&self) -> Result<&twine_core::Reactor, ClientError> {
        self.reactor().ok_or_else(|| {
            ClientError::Local(twine_core::Error::new(
                twine_core::ErrorKind::InvalidInput,
                "forwarding needs a reactor",
            ))
        })
    }
}

/// The server opened a `forwarded-tcpip` or `forwarded-streamlocal` channel: connect to the
/// forward's target, then accept the channel and relay (or refuse it if the connect fails),
/// as OpenSSH's client does.
pub(crate) fn forwarded_channel(shared: &Shared, id: ChannelId, kind: &ChannelKind) {
    let target = {
        let core = shared.core.borrow();
        core.remote_forwards
            .iter()
            .find(|entry| match (&entry.listen, kind) {
                (Listen::Tcp { port, .. }, ChannelKind::ForwardedTcpip { port: asked, .. }) => {
                    port == asked
                }
                (Listen::Unix(path), ChannelKind::ForwardedStreamlocal { socket_path }) => {
                    path == socket_path
                }
                _ => false,
            })
            .map(|entry| entry.target.clone())
    };
    let reject = move |shared: &Shared, reason: OpenFailureReason, why: &str| {
        shared.with_connection(|conn| conn.reject_channel(id, reason, why));
    };
    let (Some(target), Some(reactor)) = (target, shared.reactor.clone()) else {
        log::info!("refused a {} channel for no forward of ours", kind.type_name());
        reject(shared, OpenFailureReason::ADMINISTRATIVELY_PROHIBITED, "no such forward");
        return;
    };
    let factory = TargetFactory {
        shared: shared.me.clone(),
        id,
        link: Splice::new(),
        peer: kind.type_name().to_owned(),
    };
    match target {
        ForwardTarget::Handler(handler) => {
            let channel = shared.adopt_channel(id, kind.type_name().to_owned(), (handler.0)());
            channel.accept();
        }
        ForwardTarget::Unix(path) => {
            reactor.connect_unix(path, TARGET_CONNECT_TIMEOUT, factory);
        }
        ForwardTarget::Tcp { host, port } => {
            let weak = shared.me.clone();
            resolve(&reactor, &host, port).on_settled(move |addresses| {
                let Some(shared) = weak.upgrade() else { return };
                let Some(address) = addresses.ok().and_then(|list| list.into_iter().next()) else {
                    reject(&shared, OpenFailureReason::CONNECT_FAILED, "cannot resolve target");
                    return;
                };
                reactor.connect_tcp(address, TARGET_CONNECT_TIMEOUT, factory);
            });
        }
    }
}

/// The server opened an `auth-agent@openssh.com` channel: connect it to the local agent.
pub(crate) fn agent_channel(shared: &Shared, id: ChannelId, socket: PathBuf) {
    let Some(reactor) = shared.reactor.clone() else { return };
    let factory = TargetFactory {
        shared: shared.me.clone(),
        id,
        link: Splice::new(),
        peer: "auth-agent@openssh.com".to_owned(),
    };
    reactor.connect_unix(socket, TARGET_CONNECT_TIMEOUT, factory);
}

/// Connects a forwarded channel's target; on success, accepts the channel and relays.
struct TargetFactory {
    shared: std::rc::Weak<Shared>,
    id: ChannelId,
    link: Splice,
    peer: String,
}

impl Factory for TargetFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        let shared = self.shared.upgrade()?;
        let channel = shared.adopt_channel(self.id, self.peer.clone(), Box::new(self.link.end(1)));
        Some(Box::new(TargetEnd { end: self.link.end(0), channel }))
    }
}

impl ClientFactory for TargetFactory {
    fn client_connection_failed(&mut self, reason: twine_core::Error) {
        log::info!("forwarded connection's target refused: {reason}");
        if let Some(shared) = self.shared.upgrade() {
            shared.with_connection(|conn| {
                conn.reject_channel(self.id, OpenFailureReason::CONNECT_FAILED, "connect failed")
            });
        }
    }
}

/// The target connection's protocol: once up, accepts the channel, then relays.
struct TargetEnd {
    end: SpliceEnd,
    channel: Rc<ChannelInner>,
}

impl Protocol for TargetEnd {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.end.connection_made(transport);
        self.channel.accept();
    }

    fn data_received(&mut self, data: &[u8]) {
        self.end.data_received(data);
    }

    fn read_connection_lost(&mut self) -> twine_core::protocol::HalfClose {
        self.end.read_connection_lost()
    }

    fn connection_lost(&mut self, reason: twine_core::Reason) {
        self.end.connection_lost(reason);
    }
}

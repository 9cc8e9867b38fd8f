//! Port and socket forwarding: `direct-tcpip` and `direct-streamlocal@openssh.com` connect
//! out; `tcpip-forward` and `streamlocal-forward@openssh.com` listen and open
//! `forwarded-tcpip` / `forwarded-streamlocal@openssh.com` channels for each connection.
//!
//! Every forwarding is checked against the server's [`ForwardingPolicy`] (sshd's
//! `AllowTcpForwarding`, `AllowStreamLocalForwarding`, `GatewayPorts`) and the login's
//! [`Restrictions`] (`no-port-forwarding`, `permitopen=`, `permitlisten=`). Data is relayed
//! with flow control both ways: a full channel pauses the socket's reading, and a socket that
//! cannot keep up pauses the channel, whose window then closes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::Duration;

use twine_core::error::Reason;

type Resolver = dyn Fn(Option<crate::server::ConnectionId>, &str, u16) -> std::io::Result<Vec<SocketAddr>>
    + Send
    + Sync;

static RESOLVER: std::sync::OnceLock<Box<Resolver>> = std::sync::OnceLock::new();

/// Makes `direct-tcpip` resolve host names (not numeric addresses) with
/// `resolve(connection, host, port)`: a privilege-separated worker, whose empty root has no
/// `/etc/hosts` or `resolv.conf`, asks its monitor. Set once; `false` if it was already set.
pub fn set_resolver_override(
    resolve: impl Fn(Option<crate::server::ConnectionId>, &str, u16) -> std::io::Result<Vec<SocketAddr>>
        + Send
        + Sync
        + 'static,
) -> bool {
    RESOLVER.set(Box::new(resolve)).is_ok()
}

type AgentListener = dyn Fn(Option<crate::server::ConnectionId>) -> std::io::Result<(PathBuf, std::os::fd::OwnedFd)>
    + Send
    + Sync;

static AGENT_LISTENER: std::sync::OnceLock<Box<AgentListener>> = std::sync::OnceLock::new();

/// Makes agent forwarding listen on a socket made by `listen(connection)`: its path and the
/// listening descriptor, the directory and socket owned by the user (a privilege-separated
/// worker, which cannot create files for the user, asks its monitor). Set once; `false` if it
/// was already set.
pub fn set_agent_listener_override(
    listen: impl Fn(Option<crate::server::ConnectionId>) -> std::io::Result<(PathBuf, std::os::fd::OwnedFd)>
        + Send
        + Sync
        + 'static,
) -> bool {
    AGENT_LISTENER.set(Box::new(listen)).is_ok()
}

type PrivilegedListener = dyn Fn(Option<crate::server::ConnectionId>, SocketAddr) -> std::io::Result<std::os::fd::OwnedFd>
    + Send
    + Sync;

static PRIVILEGED_LISTENER: std::sync::OnceLock<Box<PrivilegedListener>> =
    std::sync::OnceLock::new();

type StreamlocalListener = dyn Fn(
        Option<crate::server::ConnectionId>,
        &std::path::Path,
    ) -> std::io::Result<std::os::fd::OwnedFd>
    + Send
    + Sync;

static STREAMLOCAL_LISTENER: std::sync::OnceLock<Box<StreamlocalListener>> =
    std::sync::OnceLock::new();

/// Makes `streamlocal-forward@openssh.com` listen on a socket made by
/// `listen(connection, path)`, owned by the user, mode and unlinking as the policy says (a
/// privilege-separated worker, confined to an empty root, asks its monitor). Set once;
/// `false` if it was already set.
pub fn set_streamlocal_listener_override(
    listen: impl Fn(
            Option<crate::server::ConnectionId>,
            &std::path::Path,
        ) -> std::io::Result<std::os::fd::OwnedFd>
        + Send
        + Sync
        + 'static,
) -> bool {
    STREAMLOCAL_LISTENER.set(Box::new(listen)).is_ok()
}

static STREAMLOCAL_CONNECTOR: std::sync::OnceLock<Box<StreamlocalListener>> =
    std::sync::OnceLock::new();

/// Makes `direct-streamlocal@openssh.com` connect with `connect(connection, path)`, which
/// returns the connected socket (a privilege-separated worker, confined to an empty root,
/// asks its monitor). Set once; `false` if it was already set.
pub fn set_streamlocal_connector_override(
    connect: impl Fn(
            Option<crate::server::ConnectionId>,
            &std::path::Path,
        ) -> std::io::Result<std::os::fd::OwnedFd>
        + Send
        + Sync
        + 'static,
) -> bool {
    STREAMLOCAL_CONNECTOR.set(Box::new(connect)).is_ok()
}

/// Makes a root login's `tcpip-forward` on a port below 1024 listen on a socket bound by
/// `bind(connection, address)` (a privilege-separated worker cannot bind one; its monitor
/// does, for root logins only). Set once; `false` if it was already set.
pub fn set_privileged_listener_override(
    bind: impl Fn(Option<crate::server::ConnectionId>, SocketAddr) -> std::io::Result<std::os::fd::OwnedFd>
        + Send
        + Sync
        + 'static,
) -> bool {
    PRIVILEGED_LISTENER.set(Box::new(bind)).is_ok()
}
use twine_core::protocol::{
    Address, ClientFactory, Factory, HalfClose, Protocol, PushProducer, Transport,
};
use twine_core::reactor::{Connector, ListeningPort};
use twine_core::{Error as CoreError, Reactor};

use super::channel::{ChannelHost, Channels, PauseReading};
use super::{ChannelTransport, Login, Restrictions};
use crate::connection::msgs::{ChannelKind, GlobalReply, GlobalRequest, OpenFailureReason};
use crate::connection::{ChannelId, Event, RequestId};

/// Which forwardings a server allows (sshd's `AllowTcpForwarding` and
/// `AllowStreamLocalForwarding` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowForwarding {
    /// Both directions (sshd's default).
    Yes,
    /// Neither.
    No,
    /// Only local forwarding (`ssh -L`: `direct-*` channels).
    Local,
    /// Only remote forwarding (`ssh -R`: `*-forward` requests).
    Remote,
}

impl AllowForwarding {
    fn local(self) -> bool {
        matches!(self, Self::Yes | Self::Local)
    }

    fn remote(self) -> bool {
        matches!(self, Self::Yes | Self::Remote)
    }
}

/// Where remote forwardings listen (sshd's `GatewayPorts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayPorts {
    /// Loopback only, whatever the client asks (sshd's default).
    No,
    /// Every interface, whatever the client asks.
    Yes,
    /// Where the client asks (`""` and `*` mean every interface).
    ClientSpecified,
}

/// The server's forwarding policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardingPolicy {
    /// TCP forwarding (default [`AllowForwarding::Yes`]).
    pub tcp: AllowForwarding,
    /// Unix-socket forwarding (default [`AllowForwarding::Yes`]).
    pub streamlocal: AllowForwarding,
    /// Where `tcpip-forward` listens (default [`GatewayPorts::No`]).
    pub gateway_ports: GatewayPorts,
    /// How long a `direct-tcpip` connect may take (default 10 s).
    pub connect_timeout: Duration,
    /// Remove an existing socket file before `streamlocal-forward` binds (sshd's
    /// `StreamLocalBindUnlink`, default off).
    pub streamlocal_bind_unlink: bool,
    /// The permission bits cleared on a forwarded socket file (sshd's `StreamLocalBindMask`,
    /// default 0o177).
    pub streamlocal_bind_mask: u32,
}

impl Default for ForwardingPolicy {
    fn default() -> Self {
        Self {
            tcp: AllowForwarding::Yes,
            streamlocal: AllowForwarding::Yes,
            gateway_ports: GatewayPorts::No,
            connect_timeout: Duration::from_secs(10),
            streamlocal_bind_unlink: false,
            streamlocal_bind_mask: 0o177,
        }
    }
}

impl ForwardingPolicy {
    /// No forwarding at all.
    pub fn none() -> Self {
        Self { tcp: AllowForwarding::No, streamlocal: AllowForwarding::No, ..Self::default() }
    }

    /// The addresses a `tcpip-forward` for `requested` listens on, as sshd's
    /// `channel_fwd_bind_addr` decides: every loopback address (IPv4 and IPv6) unless the
    /// client names one of them, every interface with `GatewayPorts yes` or when the client
    /// asks for `""` or `*` under `clientspecified`. `None` if it cannot be served (a host name
    /// that is not an address, under `clientspecified`: sshd would resolve it).
    ///
    /// IPv6's wildcard comes before IPv4's: on a dual-stack host it takes both families and
    /// the IPv4 bind that follows fails harmlessly. A forward listens if any address binds.
    pub fn bind_addresses(&self, requested: &str) -> Option<Vec<IpAddr>> {
        let v4_loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6_loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let loopback = match requested {
            "127.0.0.1" => vec![v4_loopback],
            "::1" => vec![v6_loopback],
            _ => vec![v4_loopback, v6_loopback],
        };
        let wildcard = vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
        match self.gateway_ports {
            GatewayPorts::No => Some(loopback),
            GatewayPorts::Yes => Some(wildcard),
            GatewayPorts::ClientSpecified => match requested {
                "" | "*" => Some(wildcard),
                "localhost" => Some(loopback),
                other => other.parse().ok().map(|ip| vec![ip]),
            },
        }
    }
}

/// What runs once a relay's socket is connected.
type OnMade = Box<dyn FnOnce(&Rc<Relay>)>;

/// What names a listening forward: as the client asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ListenKey {
    Tcp { address: String, port: u32 },
    Unix(Vec<u8>),
}

struct Listener {
    key: ListenKey,
    /// For TCP: the port bound (which differs from the one asked for with port 0).
    bound_port: u32,
    /// One per address bound (IPv4 and IPv6 loopback for `localhost`).
    ports: Vec<ListeningPort>,
    /// The socket file to remove when the forward ends.
    socket_file: Option<PathBuf>,
}

/// One connection's forwardings.
pub(crate) struct Forwarding {
    me: Weak<Self>,
    reactor: Reactor,
    channels: Rc<Channels>,
    host: Weak<dyn ChannelHost>,
    policy: Rc<ForwardingPolicy>,
    login: Rc<Login>,
    listeners: RefCell<Vec<Listener>>,
    /// Channels we opened for accepted connections, awaiting the client's answer.
    opening: RefCell<HashMap<ChannelId, Rc<Relay>>>,
    connectors: RefCell<Vec<Connector>>,
    /// Direct channels awaiting their connect, so they can be refused if the connection ends.
    connecting: RefCell<Vec<ChannelId>>,
    /// The forwarded agent's socket (`SSH_AUTH_SOCK`), once a session asked for it.
    agent_socket: RefCell<Option<PathBuf>>,
}

impl Forwarding {
    pub(crate) fn new(
        reactor: &Reactor,
        channels: Rc<Channels>,
        host: Weak<dyn ChannelHost>,
        policy: Rc<ForwardingPolicy>,
        login: Rc<Login>,
    ) -> Rc<Self> {
        Rc::new_cyclic(|me| Self {
            me: me.clone(),
            reactor: reactor.clone(),
            channels,
            host,
            policy,
            login,
            listeners: RefCell::new(Vec::new()),
            opening: RefCell::new(HashMap::new()),
            connectors: RefCell::new(Vec::new()),
            connecting: RefCell::new(Vec::new()),
            agent_socket: RefCell::new(None),
        })
    }

    /// `auth-agent-req@openssh.com` (sshd's `session_auth_agent_req`): listen on a socket in a
    /// fresh private directory; each connection to it opens an `auth-agent@openssh.com`
    /// channel to the client. Refused when the login may not forward the agent, and for any
    /// request after the first, as sshd does.
    pub(crate) fn forward_agent(&self) -> bool {
        let user = &self.login.user;
        if !self.restrictions().agent_forwarding {
            log::debug!("{user}: agent forwarding refused by policy");
            return false;
        }
        if self.agent_socket.borrow().is_some() {
            log::debug!("{user}: agent forwarding requested twice");
            return false;
        }
        if let Some(listen) = AGENT_LISTENER.get() {
            return self.forward_agent_on(listen);
        }
        let path =
            match super::agent::socket_path(&std::env::temp_dir(), self.login.account.as_ref()) {
                Ok(path) => path,
                Err(err) => {
                    log::warn!("{user}: agent forwarding: {err}");
                    return false;
                }
            };
        let factory = AgentFactory { forwarding: self.me.clone() };
        let listening = match self.reactor.listen_unix(&path, factory) {
            Ok(listening) => listening,
            Err(err) => {
                log::warn!("{user}: agent forwarding: listen on {}: {err}", path.display());
                super::agent::remove(&path);
                return false;
            }
        };
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        if let Some(account) = &self.login.account {
            if nix::unistd::Uid::effective().is_root() {
                if let Err(err) =
                    std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid))
                {
                    log::warn!("chown {}: {err}", path.display());
                }
            }
        }
        log::debug!("{user}: agent forwarding on {}", path.display());
        self.listeners.borrow_mut().push(Listener {
            key: ListenKey::Unix(path.as_os_str().as_bytes().to_vec()),
            bound_port: 0,
            ports: vec![listening],
            socket_file: Some(path.clone()),
        });
        *self.agent_socket.borrow_mut() = Some(path);
        true
    }

    /// Agent forwarding on a socket someone else made ([`set_agent_listener_override`]).
    fn forward_agent_on(&self, listen: &AgentListener) -> bool {
        let user = &self.login.user;
        let (path, fd) = match listen(crate::server::privsep::current_connection()) {
            Ok(made) => made,
            Err(err) => {
                log::warn!("{user}: agent forwarding: {err}");
                return false;
            }
        };
        let factory = AgentFactory { forwarding: self.me.clone() };
        let listener = std::os::unix::net::UnixListener::from(fd);
        let listening = match self.reactor.adopt_unix_listener(listener, &path, factory) {
            Ok(listening) => listening,
            Err(err) => {
                log::warn!("{user}: agent forwarding: listen on {}: {err}", path.display());
                return false;
            }
        };
        log::debug!("{user}: agent forwarding on {}", path.display());
        // The socket's owner removes it when the connection ends.
        self.listeners.borrow_mut().push(Listener {
            key: ListenKey::Unix(path.as_os_str().as_bytes().to_vec()),
            bound_port: 0,
            ports: vec![listening],
            socket_file: None,
        });
        *self.agent_socket.borrow_mut() = Some(path);
        true
    }

    /// Listens for a remote forward on `addr`: on a socket bound by the privileged hook for
    /// a port below 1024 when one is set ([`set_privileged_listener_override`]).
    fn bind_forward(
        &self,
        addr: SocketAddr,
        factory: ForwardedFactory,
    ) -> Result<ListeningPort, CoreError> {
        match PRIVILEGED_LISTENER.get() {
            Some(bind) if addr.port() != 0 && addr.port() < 1024 => {
                let fd =
                    bind(crate::server::privsep::current_connection(), addr).map_err(|err| {
                        CoreError::from_io(
                            &err,
                            format!("listen on tcp:{addr} (privileged): {err}"),
                        )
                    })?;
                self.reactor.adopt_tcp_listener(std::net::TcpListener::from(fd), factory)
            }
            _ => self.reactor.listen_tcp(addr, factory),
        }
    }

    /// The forwarded agent's socket, once agent forwarding was requested.
    pub(crate) fn agent_socket(&self) -> Option<PathBuf> {
        self.agent_socket.borrow().clone()
    }

    fn restrictions(&self) -> &Restrictions {
        &self.login.restrictions
    }

    /// A `direct-tcpip` or `direct-streamlocal@openssh.com` open: checks it, then connects;
    /// the channel is confirmed once connected. `false` for other channel kinds.
    pub(crate) fn channel_open_requested(&self, id: ChannelId, kind: &ChannelKind) -> bool {
        match kind {
            ChannelKind::DirectTcpip { host, port, originator_address, originator_port } => {
                if !self.policy.tcp.local() || !self.restrictions().may_open(host, *port) {
                    log::info!(
                        "{}: direct-tcpip to {host}:{port} from {originator_address}:{originator_port} \
                         refused by policy",
                        self.login.user
                    );
                    self.reject(
                        id,
                        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                        "forwarding refused",
                    );
                    return true;
                }
                let Ok(port) = u16::try_from(*port) else {
                    self.reject(id, OpenFailureReason::CONNECT_FAILED, "port out of range");
                    return true;
                };
                log::info!("{}: direct-tcpip to {host}:{port}", self.login.user);
                self.connecting.borrow_mut().push(id);
                let host = host.clone();
                let connection = crate::server::privsep::current_connection();
                let resolved = self.reactor.defer_to_thread(move || {
                    if let (Some(resolve), Err(_)) = (RESOLVER.get(), host.parse::<IpAddr>()) {
                        return resolve(connection, &host, port);
                    }
                    (host.as_str(), port).to_socket_addrs().map(Iterator::collect::<Vec<_>>)
                });
                let me = self.me.clone();
                super::when_fired(&resolved, move |result| {
                    let Some(me) = me.upgrade() else { return };
                    match result {
                        Ok(Ok(addresses)) if !addresses.is_empty() => {
                            me.connect_tcp(id, addresses, 0)
                        }
                        Ok(Ok(_)) => me.refuse_connect(id, "name has no address"),
                        Ok(Err(err)) => me.refuse_connect(id, &err.to_string()),
                        Err(err) => me.refuse_connect(id, &err.to_string()),
                    }
                });
                true
            }
            ChannelKind::DirectStreamlocal { socket_path } => {
                if !self.policy.streamlocal.local() || !self.restrictions().port_forwarding {
                    self.reject(
                        id,
                        OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                        "forwarding refused",
                    );
                    return true;
                }
                let path = PathBuf::from(std::ffi::OsStr::from_bytes(socket_path));
                log::info!("{}: direct-streamlocal to {}", self.login.user, path.display());
                self.connecting.borrow_mut().push(id);
                let mut factory = self.direct_relay(id);
                if let Some(connect) = STREAMLOCAL_CONNECTOR.get() {
                    let connection = crate::server::privsep::current_connection();
                    let adopted = connect(connection, &path)
                        .map_err(|e| {
                            CoreError::from_io(&e, format!("connect to {}", path.display()))
                        })
                        .and_then(|fd| match factory.protocol.take() {
                            Some(protocol) => self.reactor.adopt_fd(fd, protocol).map(drop),
                            None => Ok(()),
                        });
                    if let Err(err) = adopted {
                        factory.client_connection_failed(err);
                    }
                    return true;
                }
                // Reached as the user: a root server's own rights would let any user reach
                // root's sockets.
                let connector = self.as_user(|| {
                    self.reactor.connect_unix(&path, self.policy.connect_timeout, factory)
                });
                self.connectors.borrow_mut().push(connector);
                true
            }
            _ => false,
        }
    }

    /// Tries `addresses[index]`, then the next on failure.
    fn connect_tcp(&self, id: ChannelId, addresses: Vec<SocketAddr>, index: usize) {
        let Some(address) = addresses.get(index).copied() else {
            self.refuse_connect(id, "connection refused");
            return;
        };
        let mut factory = self.direct_relay(id);
        let me = self.me.clone();
        factory.failed = Some(Box::new(move |err: CoreError| {
            log::debug!("direct-tcpip to {address}: {err}");
            if let Some(me) = me.upgrade() {
                me.connect_tcp(id, addresses, index + 1);
            }
        }));
        let connector = self.reactor.connect_tcp(address, self.policy.connect_timeout, factory);
        self.connectors.borrow_mut().push(connector);
    }

    /// The relay for a direct channel: once the socket connects, the channel is confirmed
    /// and wired to it; if it fails, the channel is refused.
    fn direct_relay(&self, id: ChannelId) -> OneShot {
        let relay = Rc::new(Relay::default());
        let me = self.me.clone();
        let on_made: OnMade = Box::new(move |relay| {
            let Some(me) = me.upgrade() else { return };
            me.connecting.borrow_mut().retain(|pending| *pending != id);
            let accepted = me.with_connection(|connection| connection.accept_channel(id));
            if !matches!(accepted, Some(Ok(()))) {
                log::debug!("direct channel {id:?} could not be confirmed: {accepted:?}");
                relay.lose();
                return;
            }
            let channel = me.channels.attach(id, Box::new(ChannelSide(Rc::clone(relay))));
            relay.wire(channel);
        });
        let protocol = StreamSide { relay: Rc::clone(&relay), on_made: Some(on_made) };
        let me = self.me.clone();
        let failed: Box<dyn FnOnce(CoreError)> = Box::new(move |err| {
            if let Some(me) = me.upgrade() {
                me.refuse_connect(id, &err.to_string());
            }
        });
        OneShot { protocol: Some(Box::new(protocol)), failed: Some(failed) }
    }

    fn refuse_connect(&self, id: ChannelId, why: &str) {
        log::info!("{}: forwarded connect failed: {why}", self.login.user);
        self.connecting.borrow_mut().retain(|pending| *pending != id);
        self.reject(id, OpenFailureReason::CONNECT_FAILED, why);
    }

    fn reject(&self, id: ChannelId, reason: OpenFailureReason, why: &str) {
        let result = self.with_connection(|connection| connection.reject_channel(id, reason, why));
        if !matches!(result, Some(Ok(()))) {
            log::debug!("channel {id:?} could not be refused: {result:?}");
        }
    }

    /// A global request about forwarding; `false` for other requests. Replies at once.
    pub(crate) fn global_request(&self, request: &GlobalRequest, reply: Option<RequestId>) -> bool {
        let answer = match request {
            GlobalRequest::TcpipForward { address, port } => self.listen_tcp(address, *port),
            GlobalRequest::CancelTcpipForward { address, port } => {
                self.cancel(&ListenKey::Tcp { address: address.clone(), port: *port })
            }
            GlobalRequest::StreamlocalForward { socket_path } => self.listen_unix(socket_path),
            GlobalRequest::CancelStreamlocalForward { socket_path } => {
                self.cancel(&ListenKey::Unix(socket_path.clone()))
            }
            _ => return false,
        };
        if let Some(reply) = reply {
            let result =
                self.with_connection(|connection| connection.reply_global_request(reply, answer));
            if !matches!(result, Some(Ok(()))) {
                log::debug!("global request reply not sent: {result:?}");
            }
        }
        true
    }

    fn listen_tcp(&self, address: &str, port: u32) -> GlobalReply {
        let user = &self.login.user;
        if !self.policy.tcp.remote() || !self.restrictions().may_listen(address, port) {
            log::info!("{user}: tcpip-forward {address}:{port} refused by policy");
            return GlobalReply::Failure;
        }
        let Ok(port16) = u16::try_from(port) else { return GlobalReply::Failure };
        let root = self.login.account.as_ref().is_some_and(|account| account.uid == 0);
        if port16 != 0 && port16 < 1024 && !root {
            log::info!("{user}: tcpip-forward to privileged port {port} refused");
            return GlobalReply::Failure;
        }
        let Some(ips) = self.policy.bind_addresses(address) else {
            log::info!("{user}: tcpip-forward: cannot bind {address:?}");
            return GlobalReply::Failure;
        };
        let key = ListenKey::Tcp { address: address.to_owned(), port };
        let bound = Rc::new(Cell::new(port));
        let mut ports = Vec::new();
        for ip in ips {
            // With port 0 the first bind picks the port; the other addresses take the same.
            let Ok(bind_port) = u16::try_from(bound.get()) else { break };
            let factory = ForwardedFactory {
                forwarding: self.me.clone(),
                address: address.to_owned(),
                bound_port: Rc::clone(&bound),
                socket_path: None,
            };
            match self.bind_forward(SocketAddr::new(ip, bind_port), factory) {
                Ok(listening) => {
                    let picked = listening.tcp_address().map_or(bind_port, |a| a.port());
                    bound.set(u32::from(picked));
                    log::info!("{user}: remote forward listening on {ip}:{picked}");
                    ports.push(listening);
                }
                Err(err) => log::debug!("{user}: tcpip-forward on {ip}:{bind_port}: {err}"),
            }
        }
        if ports.is_empty() {
            log::info!("{user}: tcpip-forward {address}:{port}: nothing could be bound");
            return GlobalReply::Failure;
        }
        let bound_port = bound.get();
        self.listeners.borrow_mut().push(Listener { key, bound_port, ports, socket_file: None });
        if port == 0 {
            GlobalReply::BoundPort(bound_port)
        } else {
            GlobalReply::Success
        }
    }

    /// Runs `f` with the logged-in user's filesystem identity when this server runs as root
    /// for another user, so Unix-domain sockets are made and reached with the user's rights,
    /// as sshd's unprivileged child does; as it is otherwise.
    fn as_user<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.login.account {
            Some(account) if account.uid != 0 && nix::unistd::Uid::effective().is_root() => {
                super::account::as_filesystem_user(account.uid, account.gid, f)
            }
            _ => f(),
        }
    }

    fn listen_unix(&self, socket_path: &[u8]) -> GlobalReply {
        let user = &self.login.user;
        if !self.policy.streamlocal.remote() || !self.restrictions().port_forwarding {
            log::info!("{user}: streamlocal-forward refused by policy");
            return GlobalReply::Failure;
        }
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(socket_path));
        if let Some(listen) = STREAMLOCAL_LISTENER.get() {
            return self.listen_unix_on(listen, socket_path, path);
        }
        let factory = ForwardedFactory {
            forwarding: self.me.clone(),
            address: String::new(),
            bound_port: Rc::new(Cell::new(0)),
            socket_path: Some(socket_path.to_vec()),
        };
        // Made as the user (a root server's own rights would let any user put a socket
        // anywhere), so the socket is the user's too.
        let listening = self.as_user(|| {
            if self.policy.streamlocal_bind_unlink {
                let _ = std::fs::remove_file(&path);
            }
            let listening = self.reactor.listen_unix(&path, factory)?;
            use std::os::unix::fs::PermissionsExt;
            let mode = 0o666 & !self.policy.streamlocal_bind_mask;
            if let Err(err) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            {
                log::warn!("chmod {}: {err}", path.display());
            }
            Ok::<_, CoreError>(listening)
        });
        let listening = match listening {
            Ok(listening) => listening,
            Err(err) => {
                log::info!("{user}: streamlocal-forward {}: {err}", path.display());
                return GlobalReply::Failure;
            }
        };
        let key = ListenKey::Unix(socket_path.to_vec());
        self.listeners.borrow_mut().push(Listener {
            key,
            bound_port: 0,
            ports: vec![listening],
            socket_file: Some(path),
        });
        GlobalReply::Success
    }

    /// A remote socket forward on a socket someone else made
    /// ([`set_streamlocal_listener_override`]).
    fn listen_unix_on(
        &self,
        listen: &StreamlocalListener,
        socket_path: &[u8],
        path: PathBuf,
    ) -> GlobalReply {
        let user = &self.login.user;
        let fd = match listen(crate::server::privsep::current_connection(), &path) {
            Ok(fd) => fd,
            Err(err) => {
                log::info!("{user}: streamlocal-forward {}: {err}", path.display());
                return GlobalReply::Failure;
            }
        };
        let factory = ForwardedFactory {
            forwarding: self.me.clone(),
            address: String::new(),
            bound_port: Rc::new(Cell::new(0)),
            socket_path: Some(socket_path.to_vec()),
        };
        let listener = std::os::unix::net::UnixListener::from(fd);
        let listening = match self.reactor.adopt_unix_listener(listener, &path, factory) {
            Ok(listening) => listening,
            Err(err) => {
                log::info!("{user}: streamlocal-forward {}: {err}", path.display());
                return GlobalReply::Failure;
            }
        };
        // The socket's maker removes the file when the connection ends.
        self.listeners.borrow_mut().push(Listener {
            key: ListenKey::Unix(socket_path.to_vec()),
            bound_port: 0,
            ports: vec![listening],
            socket_file: None,
        });
        GlobalReply::Success
    }

    fn cancel(&self, key: &ListenKey) -> GlobalReply {
        let mut listeners = self.listeners.borrow_mut();
        let found = listeners.iter().position(|l| {
            &l.key == key
                || matches!((key, &l.key), (ListenKey::Tcp { address, port }, ListenKey::Tcp { address: a, .. })
                    if address == a && *port == l.bound_port)
        });
        let Some(index) = found else { return GlobalReply::Failure };
        let listener = listeners.remove(index);
        drop(listeners);
        stop(&listener);
        GlobalReply::Success
    }

    /// A connection arrived on a remote forward: open a channel for it to the client.
    fn accepted(&self, relay: &Rc<Relay>, kind: ChannelKind) {
        let opened = self.with_connection(|connection| connection.open_channel(kind));
        match opened {
            Some(Ok(id)) => {
                self.opening.borrow_mut().insert(id, Rc::clone(relay));
            }
            other => {
                log::info!("forwarded connection dropped: no channel ({other:?})");
                relay.lose();
            }
        }
    }

    /// `ChannelOpened` / `ChannelOpenFailed` for channels opened here; `false` for others.
    pub(crate) fn handle_event(&self, event: &Event) -> bool {
        match event {
            Event::ChannelOpened { id } => {
                let Some(relay) = self.opening.borrow_mut().remove(id) else { return false };
                let channel = self.channels.attach(*id, Box::new(ChannelSide(Rc::clone(&relay))));
                relay.wire(channel);
                true
            }
            Event::ChannelOpenFailed { id, reason, description } => {
                let Some(relay) = self.opening.borrow_mut().remove(id) else { return false };
                log::info!("client refused a forwarded channel: {reason:?} {description}");
                relay.lose();
                true
            }
            _ => false,
        }
    }

    /// The connection ended: stop listening, stop connecting, drop the sockets of channels
    /// that never opened.
    pub(crate) fn shutdown(&self) {
        for listener in self.listeners.borrow_mut().drain(..) {
            stop(&listener);
        }
        if let Some(path) = self.agent_socket.borrow_mut().take() {
            super::agent::remove(&path);
        }
        for connector in self.connectors.borrow_mut().drain(..) {
            connector.stop_connecting();
        }
        for (_, relay) in self.opening.borrow_mut().drain() {
            relay.lose();
        }
        self.connecting.borrow_mut().clear();
    }

    fn with_connection<R>(
        &self,
        f: impl FnOnce(&mut crate::connection::Connection) -> R,
    ) -> Option<R> {
        let host = self.host.upgrade()?;
        let result = {
            let mut connection = host.connection()?;
            f(&mut connection)
        };
        host.wake();
        Some(result)
    }
}

impl fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarding")
            .field("listeners", &self.listeners.borrow().len())
            .finish_non_exhaustive()
    }
}

fn stop(listener: &Listener) {
    for port in &listener.ports {
        port.stop_listening();
    }
    if let Some(path) = &listener.socket_file {
        let _ = std::fs::remove_file(path);
    }
}

/// Builds, for a remote forward's listener, one relay per accepted connection.
struct ForwardedFactory {
    forwarding: Weak<Forwarding>,
    /// The address the client asked to listen on (reported in `forwarded-tcpip`).
    address: String,
    bound_port: Rc<Cell<u32>>,
    socket_path: Option<Vec<u8>>,
}

impl Factory for ForwardedFactory {
    fn build_protocol(&mut self, addr: &Address) -> Option<Box<dyn Protocol>> {
        let forwarding = self.forwarding.clone();
        let kind = match &self.socket_path {
            Some(socket_path) => {
                ChannelKind::ForwardedStreamlocal { socket_path: socket_path.clone() }
            }
            None => {
                let (ip, port) = match addr {
                    Address::Tcp(peer) => (peer.ip().to_string(), u32::from(peer.port())),
                    _ => (String::new(), 0),
                };
                ChannelKind::ForwardedTcpip {
                    address: self.address.clone(),
                    port: self.bound_port.get(),
                    originator_address: ip,
                    originator_port: port,
                }
            }
        };
        let on_made: OnMade = Box::new(move |relay| {
            let Some(forwarding) = forwarding.upgrade() else {
                relay.lose();
                return;
            };
            // Nothing to send the data to until the client confirms the channel.
            if let Some(stream) = relay.stream() {
                stream.pause_producing();
            }
            forwarding.accepted(relay, kind);
        });
        let relay = Rc::new(Relay::default());
        Some(Box::new(StreamSide { relay, on_made: Some(on_made) }))
    }
}

/// Builds, for the forwarded agent's socket, one relay per accepted connection, each over an
/// `auth-agent@openssh.com` channel.
struct AgentFactory {
    forwarding: Weak<Forwarding>,
}

impl Factory for AgentFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        let forwarding = self.forwarding.clone();
        let on_made: OnMade = Box::new(move |relay| {
            let Some(forwarding) = forwarding.upgrade() else {
                relay.lose();
                return;
            };
            if let Some(stream) = relay.stream() {
                stream.pause_producing();
            }
            forwarding.accepted(relay, ChannelKind::AuthAgent);
        });
        let relay = Rc::new(Relay::default());
        Some(Box::new(StreamSide { relay, on_made: Some(on_made) }))
    }
}

/// A factory for one outgoing connection.
struct OneShot {
    protocol: Option<Box<dyn Protocol>>,
    failed: Option<Box<dyn FnOnce(CoreError)>>,
}

impl Factory for OneShot {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        self.failed = None;
        self.protocol.take()
    }
}

impl ClientFactory for OneShot {
    fn client_connection_failed(&mut self, reason: CoreError) {
        if let Some(failed) = self.failed.take() {
            failed(reason);
        }
    }
}

/// A socket and a channel relaying to each other.
#[derive(Default)]
struct Relay {
    stream: RefCell<Option<Rc<dyn Transport>>>,
    channel: RefCell<Option<Rc<ChannelTransport>>>,
}

impl Relay {
    fn stream(&self) -> Option<Rc<dyn Transport>> {
        self.stream.borrow().clone()
    }

    fn channel(&self) -> Option<Rc<ChannelTransport>> {
        self.channel.borrow().clone()
    }

    /// Connects the two ends with flow control both ways.
    fn wire(&self, channel: Rc<ChannelTransport>) {
        let Some(stream) = self.stream() else {
            channel.lose_connection();
            return;
        };
        channel.register_producer(Rc::new(Rc::clone(&stream)) as Rc<dyn PushProducer>);
        stream.register_producer(Rc::new(PauseReading(Rc::clone(&channel))));
        *self.channel.borrow_mut() = Some(channel);
        stream.resume_producing();
    }

    /// Ends both sides.
    fn lose(&self) {
        if let Some(stream) = self.stream.borrow_mut().take() {
            stream.lose_connection();
        }
        if let Some(channel) = self.channel.borrow_mut().take() {
            channel.lose_connection();
        }
    }
}

/// The socket's protocol: its data goes to the channel.
struct StreamSide {
    relay: Rc<Relay>,
    on_made: Option<OnMade>,
}

impl Protocol for StreamSide {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        *self.relay.stream.borrow_mut() = Some(transport);
        if let Some(on_made) = self.on_made.take() {
            on_made(&self.relay);
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(channel) = self.relay.channel() {
            channel.write(data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        match self.relay.channel() {
            Some(channel) => {
                channel.write_eof();
                HalfClose::KeepWriting
            }
            None => HalfClose::LoseConnection,
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("forwarded socket closed: {reason}");
        self.relay.stream.borrow_mut().take();
        if let Some(channel) = self.relay.channel.borrow_mut().take() {
            channel.lose_connection();
        }
    }
}

/// The channel's protocol: its data goes to the socket.
struct ChannelSide(Rc<Relay>);

impl Protocol for ChannelSide {
    fn data_received(&mut self, data: &[u8]) {
        if let Some(stream) = self.0.stream() {
            stream.write(data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        if let Some(stream) = self.0.stream() {
            stream.write_eof();
        }
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, _reason: Reason) {
        self.0.channel.borrow_mut().take();
        if let Some(stream) = self.0.stream.borrow_mut().take() {
            stream.lose_connection();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GatewayPorts` decides where a remote forward binds, as sshd's `channel_fwd_bind_addr`:
    /// `localhost` (what `ssh -R port:...` sends) means both loopback addresses.
    #[test]
    fn gateway_ports_decide_the_bind_addresses() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let any = vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
        let mut policy = ForwardingPolicy::default();
        assert_eq!(policy.bind_addresses("localhost"), Some(vec![v4, v6]));
        assert_eq!(policy.bind_addresses("0.0.0.0"), Some(vec![v4, v6]));
        assert_eq!(policy.bind_addresses(""), Some(vec![v4, v6]));
        assert_eq!(policy.bind_addresses("127.0.0.1"), Some(vec![v4]));
        assert_eq!(policy.bind_addresses("::1"), Some(vec![v6]));
        policy.gateway_ports = GatewayPorts::Yes;
        assert_eq!(policy.bind_addresses("localhost"), Some(any.clone()));
        assert_eq!(policy.bind_addresses("127.0.0.1"), Some(any.clone()));
        policy.gateway_ports = GatewayPorts::ClientSpecified;
        assert_eq!(policy.bind_addresses(""), Some(any.clone()));
        assert_eq!(policy.bind_addresses("*"), Some(any));
        assert_eq!(policy.bind_addresses("localhost"), Some(vec![v4, v6]));
        assert_eq!(policy.bind_addresses("::1"), Some(vec![v6]));
        assert_eq!(policy.bind_addresses("0.0.0.0"), "0.0.0.0".parse().ok().map(|ip| vec![ip]));
        assert_eq!(policy.bind_addresses("192.0.2.1"), "192.0.2.1".parse().ok().map(|ip| vec![ip]));
        assert_eq!(policy.bind_addresses("example.org"), None);
    }

    /// Each `AllowTcpForwarding` value allows the directions sshd allows.
    #[test]
    fn allow_forwarding_values_allow_their_directions() {
        let cases = [
            (AllowForwarding::Yes, true, true),
            (AllowForwarding::No, false, false),
            (AllowForwarding::Local, true, false),
            (AllowForwarding::Remote, false, true),
        ];
        for (value, local, remote) in cases {
            assert_eq!((value.local(), value.remote()), (local, remote), "{value:?}");
        }
        assert_eq!(ForwardingPolicy::none().tcp, AllowForwarding::No);
    }
}

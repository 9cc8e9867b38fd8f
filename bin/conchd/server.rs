//! From the effective configuration to a running server: the stack, the sessions, the
//! listeners, `MaxStartups`, one reactor per core with connections handed out in turn, and
//! the connection count that `-d` and `SIGHUP` wait on.

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use twine::conch::config::sshd::{self, SshdConfig, SshdConfigFile};
use twine::conch::connection;
use twine::conch::crypto::algorithms::Category;
use twine::conch::crypto::{OsRandom, SecureRandom};
use twine::conch::keys::{HostKeySigner, SignatureAlgorithm};
use twine::conch::server::{
    AllowForwarding, Chain, ForwardingPolicy, GatewayPorts, ServerConfig, ServerFactory,
    ServerProtocol, ShadowPasswords, UnixSessions,
};
use twine::conch::stack::ServerStackConfig;
use twine::conch::transport;
use twine::conch::userauth::{self, Method};
use twine::internet::error::Reason;
use twine::internet::protocol::{Address, HalfClose, Protocol, Transport};
use twine::internet::reactor::{FdWatch, Interest, ThreadHandle};
use twine::internet::Reactor;

use crate::around::AroundSpawner;
use crate::policy::Policy;
use twine::conch::server::session::LocalSpawner;

/// The stack's configuration from `sshd_config`.
/// Our identification line's parts: sshd's banner is its version, then a space and
/// `VersionAddendum` if set; `Err` if the line would break RFC 4253 (checked at startup and
/// by `-t`).
pub(crate) fn identification(c: &SshdConfig) -> Result<transport::Identification, String> {
    let mut identification = transport::Identification::default();
    if !c.version_addendum.is_empty() {
        identification.comment = Some(c.version_addendum.clone());
        identification.line().map_err(|_| {
            format!(
                "VersionAddendum {}: the identification line would not be printable ASCII of \
                 at most 253 bytes",
                c.version_addendum
            )
        })?;
    }
    Ok(identification)
}

pub(crate) fn stack_config(
    c: &SshdConfig,
    host_keys: Vec<Arc<dyn HostKeySigner>>,
) -> Result<ServerStackConfig, String> {
    let mut t = transport::ServerConfig::new(host_keys);
    t.identification = identification(c)?;
    for (category, list) in [
        (Category::Kex, &c.kex_algorithms),
        (Category::Cipher, &c.ciphers),
        (Category::Mac, &c.macs),
        (Category::HostKey, &c.host_key_algorithms),
    ] {
        t.algorithms.configure(category, &list.join(",")).map_err(|e| e.to_string())?;
    }
    if !c.compression {
        t.algorithms.configure(Category::Compression, "none").map_err(|e| e.to_string())?;
    }
    if c.rekey_limit.0 > 0 {
        t.rekey.bytes = Some(c.rekey_limit.0);
    }
    if c.rekey_limit.1 > 0 {
        t.rekey.time = Some(Duration::from_secs(c.rekey_limit.1.into()));
    }
    let mut secret = [0; 32];
    OsRandom::new().fill(&mut secret).map_err(|e| e.to_string())?;
    let mut u = userauth::ServerConfig::new(secret);
    let mut methods = Vec::new();
    // Methods are enabled here if any Match block might enable them; the policy refuses them
    // per connection.
    methods.push(Method::PublicKey);
    if cfg!(feature = "pam") && c.use_pam {
        methods.push(Method::Password);
        methods.push(Method::KeyboardInteractive);
    } else if c.password_authentication {
        // Without PAM, as sshd with `UsePAM no`: passwords from /etc/shadow.
        methods.push(Method::Password);
    }
    u.methods = methods;
    u.authentication_methods = crate::policy::authentication_methods(c)?;
    u.max_auth_tries = c.max_auth_tries;
    // Match blocks are evaluated when the user name arrives (crate::policy::MatchSettings).
    u.settings_per_user = true;
    u.banner = crate::policy::banner(c);
    u.publickey_algorithms = c
        .pubkey_accepted_algorithms
        .iter()
        .filter_map(|n| SignatureAlgorithm::from_name(n))
        .collect();
    // Every certificate algorithm reaches the policy, which applies the connection's own
    // PubkeyAcceptedAlgorithms (a Match block may allow more than the global list).
    u.publickey_cert_algorithms = SignatureAlgorithm::ALL.to_vec();
    // A privilege-separated worker's plain key logins are verified by the monitor, which
    // accepts none it has not verified itself (`AuthenticatePublicKey`): the worker does not
    // verify each signature a second time.
    u.backend_verifies_plain_key_signatures = crate::privsep::is_worker();
    let mut stack =
        ServerStackConfig::new(t, u, connection::Config::default()).map_err(|e| e.to_string())?;
    stack.login_grace_time =
        (c.login_grace_time > 0).then(|| Duration::from_secs(c.login_grace_time.into()));
    stack.client_alive_interval =
        (c.client_alive_interval > 0).then(|| Duration::from_secs(c.client_alive_interval.into()));
    stack.client_alive_count_max = c.client_alive_count_max;
    Ok(stack)
}

fn allow(local: bool, remote: bool) -> AllowForwarding {
    match (local, remote) {
        (true, true) => AllowForwarding::Yes,
        (true, false) => AllowForwarding::Local,
        (false, true) => AllowForwarding::Remote,
        (false, false) => AllowForwarding::No,
    }
}

/// The server's whole configuration: stack, policy, Unix sessions, forwarding.
pub(crate) fn server_config(
    reactor: &Reactor,
    file: &Arc<SshdConfigFile>,
    c: &SshdConfig,
    stack: Arc<ServerStackConfig>,
    open_logins: Arc<AtomicUsize>,
) -> (ServerConfig, Logins) {
    let mut inner = Chain::new();
    let pam = cfg!(feature = "pam") && c.use_pam;
    if !pam {
        // Also without PasswordAuthentication: as sshd's allowed_user, the shadow file's
        // account checks (locked, expired) apply to every method. Passwords reach it only
        // when the method is on.
        inner = inner.with(ShadowPasswords::new().with_empty_passwords(c.permit_empty_passwords));
    }
    let spawner = AroundSpawner::new(LocalSpawner::new(reactor), c.print_motd, c.print_last_log);
    #[cfg(feature = "pam")]
    let spawner = if pam {
        let service = c.pam_service_name.clone().unwrap_or_else(|| "sshd".into());
        // As root, each session's PAM session is opened by its own keeper process.
        let spawner = spawner.with_pam_sessions(service.clone());
        if let Some(relay) = crate::privsep::worker::pam_relay() {
            // A privilege-separated worker: the monitor runs PAM.
            inner = inner.with(relay);
        } else {
            inner = inner.with(
                twine::conch::server::PamBackend::new()
                    .with_service(service)
                    .with_password(c.password_authentication)
                    .with_keyboard_interactive(c.kbd_interactive_authentication)
                    .with_empty_passwords(c.permit_empty_passwords)
                    .with_sessions(!spawner.keeps_pam_sessions()),
            );
        }
        spawner
    } else {
        spawner
    };
    let policy = Policy::new(Arc::clone(file), inner, open_logins);
    let logins = Logins { total: Rc::clone(&policy.logins) };
    let sessions = UnixSessions::with_spawner(spawner);
    let mut sessions = sessions.with_user_environment(c.permit_user_environment);
    for s in &c.subsystems {
        let command = if s.command == "internal-sftp" {
            s.args.replacen("internal-sftp", crate::policy::SFTP_SERVER, 1)
        } else {
            s.args.clone()
        };
        sessions = sessions.with_subsystem(s.name.clone(), command);
    }
    let per_user = crate::policy::MatchSettings::new(Arc::clone(file), c, Arc::clone(&stack));
    let mut config = ServerConfig::new(stack, crate::penalties::Watch::new(policy), sessions);
    config.user_settings = Some(Rc::new(per_user));
    config.channel_timeouts = crate::policy::channel_timeouts(c);
    config.unused_connection_timeout = crate::policy::unused_connection_timeout(c);
    let mut forwarding = ForwardingPolicy::default();
    // Every login's restrictions carry its own AllowTcpForwarding (Match blocks included).
    forwarding.tcp = AllowForwarding::Yes;
    forwarding.streamlocal = if c.disable_forwarding {
        AllowForwarding::No
    } else {
        allow(
            c.allow_stream_local_forwarding.allows_local(),
            c.allow_stream_local_forwarding.allows_remote(),
        )
    };
    forwarding.gateway_ports = match c.gateway_ports {
        sshd::GatewayPorts::No => GatewayPorts::No,
        sshd::GatewayPorts::Yes => GatewayPorts::Yes,
        sshd::GatewayPorts::ClientSpecified => GatewayPorts::ClientSpecified,
    };
    forwarding.streamlocal_bind_unlink = c.stream_local_bind_unlink;
    forwarding.streamlocal_bind_mask = c.stream_local_bind_mask;
    config.forwarding = forwarding;
    config.accept_env = c.accept_env.clone();
    config.max_sessions = usize::try_from(c.max_sessions).unwrap_or(usize::MAX);
    (config, logins)
}

/// The policy's count of logins, for `MaxStartups` and inetd mode's exit status.
#[derive(Clone)]
pub(crate) struct Logins {
    /// Logins so far on this reactor.
    pub(crate) total: Rc<Cell<u64>>,
}

/// What every reactor of the process shares.
pub(crate) struct Shared {
    /// Connections open now, on every reactor.
    live: AtomicUsize,
    /// Set by `SIGHUP` or `-d`: no new connections; the process ends with its last one.
    draining: AtomicBool,
    /// The main reactor, which ends the process.
    main: ThreadHandle,
}

impl Shared {
    pub(crate) fn new(main: &Reactor) -> Arc<Self> {
        Arc::new(Self {
            live: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            main: main.thread_handle(),
        })
    }

    /// A connection ended somewhere: the last one of a draining server stops the process.
    fn connection_ended(&self) {
        let left = self.live.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        if left == 0 && self.draining.load(Ordering::SeqCst) {
            let _ = self.main.call_from_thread(Reactor::stop);
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The process ends with its last connection (inetd mode's one).
    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// One reactor's server: its factory (configuration, policy, sessions) and counts.
pub(crate) struct Hub {
    factory: ServerFactory,
    shared: Arc<Shared>,
    pub(crate) logins: Logins,
}

impl Hub {
    pub(crate) fn new(
        reactor: &Reactor,
        config: ServerConfig,
        logins: Logins,
        shared: Arc<Shared>,
    ) -> Rc<Self> {
        Rc::new(Self { factory: ServerFactory::new(reactor, config), shared, logins })
    }

    /// A hub whose connections run their auth backends' blocking work with `offload` (a
    /// privilege-separated worker: inline, its calls are short requests to the monitor).
    pub(crate) fn with_offload(
        reactor: &Reactor,
        config: ServerConfig,
        logins: Logins,
        shared: Arc<Shared>,
        offload: twine::conch::server::Offload,
    ) -> Rc<Self> {
        let factory = ServerFactory::new(reactor, config).with_offload(offload);
        Rc::new(Self { factory, shared, logins })
    }

    /// One protocol, counted (the count was raised when the connection was accepted).
    pub(crate) fn protocol(self: &Rc<Self>) -> Counted {
        Counted { inner: self.factory.protocol(), hub: Rc::clone(self) }
    }

    /// Serves an accepted socket on `reactor` (this hub's).
    fn adopt(self: &Rc<Self>, reactor: &Reactor, fd: OwnedFd) {
        if let Err(err) = reactor.adopt_fd(fd, self.protocol()) {
            log::error!("cannot serve an accepted connection: {err}");
            self.shared.connection_ended();
        }
    }

    /// Counts a connection made another way (inetd mode).
    pub(crate) fn count_one(&self) {
        self.shared.live.fetch_add(1, Ordering::SeqCst);
    }
}

/// A server protocol whose end is counted.
pub(crate) struct Counted {
    inner: ServerProtocol,
    hub: Rc<Hub>,
}

impl Counted {
    /// The connection's id (privilege separation announces it to the monitor).
    pub(crate) fn id(&self) -> twine::conch::server::ConnectionId {
        self.inner.id()
    }
}

impl Protocol for Counted {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        if let (Address::Tcp(peer), Address::Tcp(local)) = (transport.peer(), transport.host()) {
            log::info!(
                "Connection from {} port {} on {} port {} rdomain \"\"",
                peer.ip(),
                peer.port(),
                local.ip(),
                local.port()
            );
        }
        self.inner.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }

    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        self.inner.receive_into(size_hint, fill)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.inner.read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        self.inner.write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.inner.connection_lost(reason);
        self.hub.shared.connection_ended();
    }
}

thread_local! {
    /// The worker reactor's hub, for connections handed over from the accepting thread.
    static WORKER: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

/// Where an accepted connection goes.
enum Target {
    /// The accepting (main) reactor.
    Local(Rc<Hub>, Reactor),
    /// A worker reactor on its own thread.
    Worker(ThreadHandle),
}

/// Accepts on the main reactor and spreads connections over the reactors in turn; applies
/// `MaxStartups` and `-d`'s single connection.
pub(crate) struct Acceptor {
    targets: Vec<Target>,
    next: Cell<usize>,
    shared: Arc<Shared>,
    max_startups: (u32, u32, u32),
    /// Logins open, summed over the reactors' counts (each reactor reports through its hub).
    open_logins: Arc<AtomicUsize>,
    single: bool,
    listeners: RefCell<Vec<(FdWatch, TcpListener)>>,
    /// `TCPKeepAlive`.
    keep_alive: bool,
}

/// `TCPKeepAlive` for inetd mode's connection, when standard input is a socket (sshd's
/// `ssh_packet_connection_is_on_socket`); nothing for pipes.
pub(crate) fn keep_alive_inetd(input: &OwnedFd, keep_alive: bool) {
    if keep_alive {
        // ENOTSOCK for a pipe: nothing to set.
        let _ = socket2::SockRef::from(input).set_keepalive(true);
    }
}

/// What sshd sets on an accepted connection: no Nagle delay, and TCP keepalives unless
/// `TCPKeepAlive no` (a client that vanished is found out by the kernel even when the session
/// is idle). A failure is logged: the connection is served without.
pub(crate) fn prepare_accepted(stream: &std::net::TcpStream, keep_alive: bool) {
    let _ = stream.set_nodelay(true);
    if keep_alive {
        if let Err(err) = socket2::SockRef::from(stream).set_keepalive(true) {
            log::debug!("setsockopt SO_KEEPALIVE: {err}");
        }
    }
}

impl Acceptor {
    /// An acceptor for the main reactor's hub and `workers` more reactors, each on a thread
    /// building its own server with `build`.
    pub(crate) fn new(
        main: &Reactor,
        hub: Rc<Hub>,
        workers: usize,
        build: impl Fn(&Reactor) -> (ServerConfig, Logins) + Send + Sync + 'static,
        c: &SshdConfig,
        single: bool,
        open_logins: Arc<AtomicUsize>,
    ) -> Rc<Self> {
        let shared = Arc::clone(&hub.shared);
        crate::penalties::install(c);
        let mut targets = vec![Target::Local(hub, main.clone())];
        let build = Arc::new(build);
        for index in 0..workers {
            let (tx, rx) = std::sync::mpsc::channel();
            let build = Arc::clone(&build);
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name(format!("reactor-{}", index + 1)).spawn(
                move || {
                    let reactor = match Reactor::new() {
                        Ok(reactor) => reactor,
                        Err(err) => {
                            log::error!("worker reactor: {err}");
                            return;
                        }
                    };
                    let (config, logins) = build(&reactor);
                    let hub = Hub::new(&reactor, config, logins, shared);
                    WORKER.with(|slot| *slot.borrow_mut() = Some(hub));
                    if tx.send(reactor.thread_handle()).is_ok() {
                        if let Err(err) = reactor.run() {
                            log::error!("worker reactor: {err}");
                        }
                    }
                },
            );
            match spawned.map(|_| rx.recv()) {
                Ok(Ok(handle)) => targets.push(Target::Worker(handle)),
                _ => log::error!("could not start worker reactor {}", index + 1),
            }
        }
        Rc::new(Self {
            targets,
            next: Cell::new(0),
            shared,
            max_startups: c.max_startups,
            open_logins,
            single,
            listeners: RefCell::new(Vec::new()),
            keep_alive: c.tcp_keep_alive,
        })
    }

    /// How many reactors serve connections.
    pub(crate) fn reactors(&self) -> usize {
        self.targets.len()
    }

    /// Stops accepting (closing the listening sockets); the process ends with its last
    /// connection.
    pub(crate) fn drain(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        for (watch, _listener) in self.listeners.borrow_mut().drain(..) {
            watch.stop();
        }
        if self.shared.live.load(Ordering::SeqCst) == 0 {
            let _ = self.shared.main.call_from_thread(Reactor::stop);
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    /// The unauthenticated connections now, when `MaxStartups` drops one more.
    fn should_drop(&self) -> Option<u32> {
        let live = self.shared.live.load(Ordering::SeqCst);
        let unauthenticated = live.saturating_sub(self.open_logins.load(Ordering::SeqCst));
        let unauthenticated = u32::try_from(unauthenticated).unwrap_or(u32::MAX);
        crate::startups::past_max_startups(
            unauthenticated,
            self.max_startups,
            crate::startups::percentile(),
        )
        .then_some(unauthenticated)
    }

    fn accept_all(self: &Rc<Self>, index: usize) {
        loop {
            let accepted = {
                let listeners = self.listeners.borrow();
                let Some((_, listener)) = listeners.get(index) else { return };
                listener.accept()
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    log::error!("accept: {err}");
                    return;
                }
            };
            if self.is_draining() {
                continue;
            }
            if let Some(startups) = self.should_drop() {
                log::info!(
                    "drop connection #{startups} from [{}]:{} on {} {}",
                    peer.ip(),
                    peer.port(),
                    crate::penalties::local_text(&stream),
                    crate::startups::MAX_STARTUPS
                );
                continue;
            }
            if !crate::penalties::admit(&stream, peer) {
                continue;
            }
            prepare_accepted(&stream, self.keep_alive);
            self.shared.live.fetch_add(1, Ordering::SeqCst);
            if self.single {
                self.drain();
            }
            let turn = self.next.get();
            self.next.set((turn + 1) % self.targets.len().max(1));
            let fd = OwnedFd::from(stream);
            match self.targets.get(turn) {
                Some(Target::Local(hub, reactor)) => hub.adopt(reactor, fd),
                Some(Target::Worker(handle)) => {
                    let shared = Arc::clone(&self.shared);
                    let sent = handle.call_from_thread(move |reactor| {
                        WORKER.with(|slot| match slot.borrow().as_ref() {
                            Some(hub) => hub.adopt(reactor, fd),
                            None => shared.connection_ended(),
                        });
                    });
                    if sent.is_err() {
                        self.shared.connection_ended();
                    }
                }
                None => self.shared.connection_ended(),
            }
            if self.single {
                return;
            }
        }
    }
}

/// Listens on every `ListenAddress`; logs each as sshd does. Errors if none could be bound.
pub(crate) fn listen(
    acceptor: &Rc<Acceptor>,
    reactor: &Reactor,
    c: &SshdConfig,
) -> Result<(), String> {
    for la in &c.listen_addresses {
        let addrs: Vec<SocketAddr> = match la.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, la.port)],
            Err(_) => match (la.host.as_str(), la.port).to_socket_addrs() {
                Ok(addrs) => addrs.collect(),
                Err(err) => {
                    log::error!("Bad listen address {}: {err}", la.host);
                    continue;
                }
            },
        };
        for addr in addrs {
            listen_one(acceptor, reactor, addr);
        }
    }
    if acceptor.listeners.borrow().is_empty() {
        return Err("Cannot bind any address.".into());
    }
    Ok(())
}

/// A listening socket as sshd makes it: `SO_REUSEADDR`, and IPv6 sockets IPv6-only (so that
/// `::` and `0.0.0.0` on one port coexist).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn listen_one(acceptor: &Rc<Acceptor>, reactor: &Reactor, addr: SocketAddr) {
    let (host, port) = (addr.ip(), addr.port());
    {
        let listener = match bind(addr) {
            Ok(listener) => listener,
            Err(err) => {
                log::error!("Bind to port {port} on {host} failed: {err}.");
                return;
            }
        };
        let bound = listener.local_addr().map_or(port, |a| a.port());
        let index = acceptor.listeners.borrow().len();
        let me = Rc::downgrade(acceptor);
        let watch = reactor.watch_fd(listener.as_raw_fd(), Interest::Readable, move |_| {
            if let Some(me) = me.upgrade() {
                me.accept_all(index);
            }
        });
        match watch {
            Ok(watch) => {
                log::info!("Server listening on {host} port {bound}.");
                acceptor.listeners.borrow_mut().push((watch, listener));
            }
            Err(err) => log::error!("Bind to port {port} on {host} failed: {err}."),
        }
    }
}

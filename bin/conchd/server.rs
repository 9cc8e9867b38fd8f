//! From the effective configuration to a running server: the stack, the sessions, the
//! listeners, `MaxStartups`, and the connection count that `-d` and `SIGHUP` wait on.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use twine::conch::config::sshd::{self, SshdConfig, SshdConfigFile};
use twine::conch::connection;
use twine::conch::crypto::algorithms::Category;
use twine::conch::crypto::{OsRandom, SecureRandom};
use twine::conch::keys::{HostKeySigner, SignatureAlgorithm};
use twine::conch::server::{
    AllowForwarding, Chain, ConnectionId, ForwardingPolicy, GatewayPorts, ServerConfig,
    ServerFactory, ServerProtocol, UnixSessions,
};
use twine::conch::stack::ServerStackConfig;
use twine::conch::transport;
use twine::conch::userauth::{self, Method};
use twine::internet::error::Reason;
use twine::internet::protocol::{Address, Factory, HalfClose, Protocol, Transport};
use twine::internet::reactor::ListeningPort;
use twine::internet::Reactor;

use crate::policy::Policy;

/// The stack's configuration from `sshd_config`.
pub(crate) fn stack_config(
    c: &SshdConfig,
    host_keys: Vec<Arc<dyn HostKeySigner>>,
) -> Result<ServerStackConfig, String> {
    let mut t = transport::ServerConfig::new(host_keys);
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
    }
    u.methods = methods;
    u.authentication_methods = c
        .authentication_methods
        .iter()
        .filter(|list| !list.eq_ignore_ascii_case("any"))
        .map(|list| {
            list.split(',')
                .filter_map(|m| Method::from_name(m.split(':').next().unwrap_or(m)))
                .collect()
        })
        .collect();
    u.max_auth_tries = c.max_auth_tries;
    u.banner = match &c.banner {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(err) => {
                log::warn!("Banner {path}: {err}");
                None
            }
        },
        None => None,
    };
    u.publickey_algorithms = c
        .pubkey_accepted_algorithms
        .iter()
        .filter_map(|n| SignatureAlgorithm::from_name(n))
        .collect();
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
) -> (ServerConfig, Rc<RefCell<HashSet<ConnectionId>>>) {
    #[allow(unused_mut)]
    let mut inner = Chain::new();
    #[cfg(feature = "pam")]
    if c.use_pam {
        let service = c.pam_service_name.clone().unwrap_or_else(|| "sshd".into());
        inner = inner.with(
            twine::conch::server::PamBackend::new()
                .with_service(service)
                .with_password(c.password_authentication)
                .with_keyboard_interactive(c.kbd_interactive_authentication)
                .with_empty_passwords(c.permit_empty_passwords),
        );
    }
    let policy = Policy::new(Arc::clone(file), inner);
    let authenticated = Rc::clone(&policy.authenticated);
    let mut sessions = UnixSessions::new(reactor).with_user_environment(c.permit_user_environment);
    for s in &c.subsystems {
        let command = if s.command == "internal-sftp" {
            s.args.replacen("internal-sftp", "/usr/lib/openssh/sftp-server", 1)
        } else {
            s.args.clone()
        };
        sessions = sessions.with_subsystem(s.name.clone(), command);
    }
    let mut config = ServerConfig::new(stack, policy, sessions);
    let mut forwarding = ForwardingPolicy::default();
    forwarding.tcp = allow(c.tcp_forwarding_local(), c.tcp_forwarding_remote());
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
    (config, authenticated)
}

/// Shared by the listeners: counts connections, applies `MaxStartups`, and in debug mode
/// serves one connection.
pub(crate) struct Hub {
    factory: ServerFactory,
    reactor: Reactor,
    /// Connections open now.
    pub(crate) live: Cell<usize>,
    authenticated: Rc<RefCell<HashSet<ConnectionId>>>,
    max_startups: (u32, u32, u32),
    /// `-d`: one connection, then exit.
    single: bool,
    /// Set by `SIGHUP` or `-d`: stop when the last connection ends.
    pub(crate) draining: Cell<bool>,
    pub(crate) ports: RefCell<Vec<ListeningPort>>,
}

impl Hub {
    pub(crate) fn new(
        reactor: &Reactor,
        config: ServerConfig,
        authenticated: Rc<RefCell<HashSet<ConnectionId>>>,
        c: &SshdConfig,
        single: bool,
    ) -> Rc<Self> {
        Rc::new(Self {
            factory: ServerFactory::new(reactor, config),
            reactor: reactor.clone(),
            live: Cell::new(0),
            authenticated,
            max_startups: c.max_startups,
            single,
            draining: Cell::new(false),
            ports: RefCell::new(Vec::new()),
        })
    }

    /// One protocol, counted.
    pub(crate) fn protocol(self: &Rc<Self>) -> Counted {
        self.live.set(self.live.get() + 1);
        Counted { inner: self.factory.protocol(), hub: Rc::clone(self) }
    }

    /// Stops accepting; the process ends with its last connection.
    pub(crate) fn drain(&self) {
        self.draining.set(true);
        for port in self.ports.borrow_mut().drain(..) {
            port.stop_listening();
        }
        if self.live.get() == 0 {
            self.reactor.stop();
        }
    }

    fn should_drop(&self) -> bool {
        let (begin, rate, full) = self.max_startups;
        let unauthenticated = self.live.get().saturating_sub(self.authenticated.borrow().len());
        let unauthenticated = u32::try_from(unauthenticated).unwrap_or(u32::MAX);
        if unauthenticated < begin || begin == 0 {
            return false;
        }
        if unauthenticated >= full {
            return true;
        }
        let span = full.saturating_sub(begin).max(1);
        let p = (100 - rate.min(100)) * (unauthenticated - begin) / span + rate;
        let mut byte = [0u8; 1];
        if OsRandom::new().fill(&mut byte).is_err() {
            return true;
        }
        u32::from(byte[0]) * 100 / 256 < p
    }
}

/// The listeners' factory.
pub(crate) struct Listener(pub(crate) Rc<Hub>);

impl Factory for Listener {
    fn build_protocol(&mut self, addr: &Address) -> Option<Box<dyn Protocol>> {
        let hub = &self.0;
        if hub.draining.get() {
            return None;
        }
        if hub.should_drop() {
            log::info!("drop connection from {addr} past MaxStartups");
            return None;
        }
        if hub.single {
            hub.drain();
            hub.draining.set(true);
        }
        Some(Box::new(hub.protocol()))
    }
}

/// A server protocol whose end is counted.
pub(crate) struct Counted {
    inner: ServerProtocol,
    hub: Rc<Hub>,
}

impl Protocol for Counted {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.inner.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.inner.read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        self.inner.write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.inner.connection_lost(reason);
        let hub = &self.hub;
        hub.live.set(hub.live.get().saturating_sub(1));
        if hub.draining.get() && hub.live.get() == 0 {
            hub.reactor.stop();
        }
    }
}

/// Listens on every `ListenAddress`; logs each as sshd does. Errors if none could be bound.
pub(crate) fn listen(hub: &Rc<Hub>, c: &SshdConfig) -> Result<(), String> {
    for la in &c.listen_addresses {
        let Ok(ip) = la.host.parse::<std::net::IpAddr>() else {
            log::error!("Bad listen address {}: not a numeric address", la.host);
            continue;
        };
        let addr = SocketAddr::new(ip, la.port);
        match hub.reactor.listen_tcp(addr, Listener(Rc::clone(hub))) {
            Ok(port) => {
                log::info!("Server listening on {} port {}.", la.host, la.port);
                hub.ports.borrow_mut().push(port);
            }
            Err(err) => log::error!("Bind to port {} on {} failed: {err}.", la.port, la.host),
        }
    }
    if hub.ports.borrow().is_empty() {
        return Err("Cannot bind any address.".into());
    }
    Ok(())
}

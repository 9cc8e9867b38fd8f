//! Connecting: over TCP (every address of the name, in order, each with the connect timeout),
//! over a pair of descriptors (`ProxyCommand`, `sshd -i`), or over any transport through
//! [`ClientProtocol`] (a `direct-tcpip` channel of another connection, for jump hosts).

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::str::FromStr;

use twine_core::protocol::{Address, ClientFactory, Factory, HalfClose};
use twine_core::{Deferred, ErrorKind, Protocol, Reactor, Reason, Transport};

use super::connection::Shared;
use super::handshake::{Handshake, HandshakeParams};
use super::{stack, ClientConfig, ClientError, Connection, Pending};

/// The default SSH port.
pub const DEFAULT_PORT: u16 = 22;

/// Where to connect: a host name or address, and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// A host name, or an IPv4 or IPv6 address.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Target {
    /// `host` on `port`.
    pub fn new(host: &str, port: u16) -> Self {
        Self { host: host.to_owned(), port }
    }
}

impl From<(&str, u16)> for Target {
    fn from((host, port): (&str, u16)) -> Self {
        Self::new(host, port)
    }
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Self {
        Self::new(&addr.ip().to_string(), addr.port())
    }
}

impl FromStr for Target {
    type Err = ClientError;

    /// `host`, `host:port`, `[host]:port`, or a bare IPv6 address.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            ClientError::Local(twine_core::Error::new(
                ErrorKind::InvalidInput,
                format!("invalid host {text:?}"),
            ))
        };
        if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| invalid())?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return Err(invalid()),
            };
            return Ok(Self::new(host, port));
        }
        if text.parse::<IpAddr>().is_ok() {
            return Ok(Self::new(text, DEFAULT_PORT));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                Ok(Self::new(host, port.parse().map_err(|_| invalid())?))
            }
            Some(_) => Err(invalid()),
            None if text.is_empty() => Err(invalid()),
            None => Ok(Self::new(text, DEFAULT_PORT)),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::keys::known_hosts::host_name_for(&self.host, self.port))
    }
}

/// Resolves `host` to addresses: at once for an address, on the reactor's thread pool for a
/// name (the system resolver blocks).
pub(crate) fn resolve(reactor: &Reactor, host: &str, port: u16) -> Pending<Vec<SocketAddr>> {
    let scheduler = reactor.scheduler();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Pending::settled(&scheduler, Ok(vec![SocketAddr::new(ip, port)]));
    }
    let pending = Pending::new(&scheduler);
    let settle = pending.clone();
    let name = host.to_owned();
    let (host, error_host) = (host.to_owned(), host.to_owned());
    let resolved = reactor.defer_to_thread(move || {
        (name.as_str(), port).to_socket_addrs().map(Iterator::collect::<Vec<_>>)
    });
    let _done: Deferred<()> = resolved.then(move |result| {
        let failure = |error| ClientError::Connect { host: error_host.clone(), port, error };
        settle.settle(match result {
            Ok(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
            Ok(Ok(_)) => Err(failure(twine_core::Error::new(
                ErrorKind::NameResolution,
                format!("resolve {host}"),
            ))),
            Ok(Err(err)) => Err(failure(twine_core::Error::new(
                ErrorKind::NameResolution,
                format!("resolve {host}: {err}"),
            ))),
            Err(err) => Err(failure(err)),
        });
        Ok(())
    });
    pending
}

/// Connects to `target` over TCP, trying each of its addresses in turn (IPv4 and IPv6, in the
/// resolver's order) with the config's connect timeout; then exchanges keys, checks the host
/// key and authenticates. Settles with the connection once authenticated.
///
/// ```no_run
/// use twine_conch::client::{self, ClientConfig};
/// use twine_core::Reactor;
///
/// let reactor = Reactor::new()?;
/// let config = ClientConfig::new("alice").identity_file("/home/alice/.ssh/id_ed25519");
/// let output = reactor.run_until({
///     let reactor = reactor.clone();
///     async move {
///         let connection = client::connect(&reactor, "example.org:22".parse()?, config).await?;
///         Ok(connection.run("uname -a", 1 << 20).await?)
///     }
/// })?;
/// print!("{}", String::from_utf8_lossy(&output.stdout));
/// # Ok::<(), twine_core::Error>(())
/// ```
pub fn connect(reactor: &Reactor, target: Target, config: ClientConfig) -> Pending<Connection> {
    let resolved = resolve(reactor, &target.host, target.port);
    connect_resolved(reactor, resolved, target, config)
}

/// Connects to the first of `addresses` that accepts, in order, each with the config's connect
/// timeout; `host` and `port` are what the host key is checked against. Then as
/// [`connect`].
pub fn connect_addresses(
    reactor: &Reactor,
    addresses: Vec<SocketAddr>,
    host: &str,
    port: u16,
    config: ClientConfig,
) -> Pending<Connection> {
    let resolved = Pending::settled(&reactor.scheduler(), Ok(addresses));
    connect_resolved(reactor, resolved, Target::new(host, port), config)
}

fn connect_resolved(
    reactor: &Reactor,
    resolved: Pending<Vec<SocketAddr>>,
    target: Target,
    config: ClientConfig,
) -> Pending<Connection> {
    let timeout = config.connect_timeout;
    let (protocol, connected) =
        match ClientProtocol::new(reactor, &target.host, target.port, config) {
            Ok(made) => made,
            Err(error) => return Pending::settled(&reactor.scheduler(), Err(error)),
        };
    let shared = Rc::clone(&protocol.shared);
    let handle = reactor.clone();
    let attempt = async move {
        let result = try_addresses(&handle, resolved, &target, timeout, &shared).await;
        // The driver is held here until the attempt ends: on failure nothing else holds it.
        if let Err(error) = result {
            shared.fail(error);
        }
    };
    let _done: Deferred<()> = reactor.spawn(attempt);
    connected
}

/// Tries each address in turn; `Ok` once one accepted (the handshake then runs on it).
async fn try_addresses(
    reactor: &Reactor,
    resolved: Pending<Vec<SocketAddr>>,
    target: &Target,
    timeout: std::time::Duration,
    shared: &Rc<Shared>,
) -> Result<(), ClientError> {
    let addresses = resolved.await?;
    let mut last = None;
    for address in addresses {
        let outcome = reactor.deferred::<()>();
        let factory = AttemptFactory {
            outcome: outcome.clone(),
            protocol: Some(ClientProtocol { shared: Rc::clone(shared) }),
        };
        reactor.connect_tcp(address, timeout, factory);
        match outcome.await {
            Ok(()) => return Ok(()),
            Err(error) => {
                log::debug!("connect to {address} failed: {error}");
                last = Some(error);
            }
        }
    }
    let error = last.unwrap_or_else(|| twine_core::Error::new(ErrorKind::NotFound, "no address"));
    Err(ClientError::Connect { host: target.host.clone(), port: target.port, error })
}

/// Connects over an already-open pair of descriptors: reads from `read`, writes to `write`
/// (a `ProxyCommand`'s pipes, `sshd -i`). `host` and `port` are what the host key is checked
/// against.
///
/// # Errors
///
/// [`ClientError::Local`] if the descriptors cannot be polled; other failures settle the
/// returned [`Pending`].
pub fn connect_fd_pair(
    reactor: &Reactor,
    read: OwnedFd,
    write: OwnedFd,
    host: &str,
    port: u16,
    config: ClientConfig,
) -> Result<Pending<Connection>, ClientError> {
    let (protocol, connected) = ClientProtocol::new(reactor, host, port, config)?;
    reactor.adopt_fd_pair(read, write, protocol).map_err(ClientError::Local)?;
    Ok(connected)
}

/// The client as a twine [`Protocol`]: run it over any transport — a Unix socket, a spawned
/// `ProxyCommand`, a `direct-tcpip` channel of another connection (a jump host) — and it
/// settles its [`Pending`] once authenticated.
pub struct ClientProtocol {
    shared: Rc<Shared>,
}

impl ClientProtocol {
    /// A client for `host` on `port` (what the host key is checked against), and the result
    /// that settles once authenticated.
    ///
    /// # Errors
    ///
    /// The configuration is invalid.
    pub fn new(
        reactor: &Reactor,
        host: &str,
        port: u16,
        config: ClientConfig,
    ) -> Result<(Self, Pending<Connection>), ClientError> {
        let scheduler = reactor.scheduler();
        let engine = stack::engine(&config)?;
        let connected = Pending::new(&scheduler);
        let params = HandshakeParams {
            host: config.host_key_alias.clone().unwrap_or_else(|| host.to_owned()),
            display_host: host.to_owned(),
            port,
            // OpenSSH looks a `HostKeyAlias` up without the port.
            key_port: if config.host_key_alias.is_some() { DEFAULT_PORT } else { port },
            user: config.user.clone(),
            policy: config.policy(),
            prompter: Rc::clone(&config.prompter),
            signers: config.signers(),
            timeout: config.connect_timeout,
        };
        let handshake = Handshake::new(params, connected.clone());
        let prompter = Rc::clone(&config.prompter);
        let shared =
            Shared::new(scheduler, Some(reactor.clone()), engine, Some(handshake), prompter);
        Handshake::start(&shared);
        Ok((Self { shared }, connected))
    }
}

impl Protocol for ClientProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.shared.attach_wire(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.shared.input(data);
    }

    /// Ciphertext is read straight into the transport's packet buffer, at most what the stack
    /// takes now.
    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        self.shared.input_into(size_hint, fill)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.shared.input_ended();
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.shared.wire_lost(&reason);
    }
}

impl fmt::Debug for ClientProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientProtocol").finish_non_exhaustive()
    }
}

/// One TCP attempt: hands the client protocol over on success, reports failure otherwise.
struct AttemptFactory {
    outcome: Deferred<()>,
    protocol: Option<ClientProtocol>,
}

impl Factory for AttemptFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        let protocol = self.protocol.take()?;
        self.outcome.callback(());
        Some(Box::new(protocol))
    }
}

impl ClientFactory for AttemptFactory {
    fn client_connection_failed(&mut self, reason: twine_core::Error) {
        self.outcome.errback(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host strings parse as OpenSSH writes them: bare names and addresses take port 22.
    #[test]
    fn parses_targets_in_every_form() {
        let cases = [
            ("example.org", "example.org", 22),
            ("example.org:2222", "example.org", 2222),
            ("127.0.0.1:8022", "127.0.0.1", 8022),
            ("::1", "::1", 22),
            ("[::1]:2200", "::1", 2200),
            ("[fe80::1]", "fe80::1", 22),
        ];
        for (text, host, port) in cases {
            let target: Target = text.parse().unwrap();
            assert_eq!((target.host.as_str(), target.port), (host, port), "{text}");
        }
    }

    /// Malformed targets are refused rather than guessed at.
    #[test]
    fn refuses_malformed_targets() {
        for text in ["", ":22", "host:port", "[::1", "[::1]x", "host:99999"] {
            assert!(text.parse::<Target>().is_err(), "{text}");
        }
    }

    /// A target prints as `known_hosts` names it.
    #[test]
    fn displays_as_known_hosts_names_it() {
        assert_eq!(Target::new("h", 22).to_string(), "h");
        assert_eq!(Target::new("h", 2222).to_string(), "[h]:2222");
    }
}

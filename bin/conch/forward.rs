//! `-L`, `-R`, `-D` (a SOCKS 4, 4a and 5 server whose connections become `direct-tcpip`
//! channels) and `-W`, on an authenticated connection.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;

use twine_conch::client::{Connection, ForwardTarget, LocalForward, Splice, SpliceEnd};
use twine_conch::config::ssh::{Endpoint, Forward};
use twine_core::protocol::{Address, Factory, HalfClose};
use twine_core::reactor::ListeningPort;
use twine_core::{Protocol, Reactor, Reason, Transport};

/// What is listening, kept alive while the program runs.
#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) local: Vec<LocalForward>,
    pub(crate) dynamic: Vec<ListeningPort>,
}

/// The local addresses a listening endpoint means: `localhost` by default (both families),
/// every address for `*` or an empty host.
fn listen_addresses(host: Option<&str>, port: u16, gateway_ports: bool) -> Vec<SocketAddr> {
    match host {
        None if gateway_ports => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)],
        None | Some("localhost") => vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ],
        Some("*" | "") => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)],
        Some(host) => match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                use std::net::ToSocketAddrs as _;
                (host, port).to_socket_addrs().map(Iterator::collect).unwrap_or_default()
            }
        },
    }
}

fn target(endpoint: &Endpoint) -> ForwardTarget {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            ForwardTarget::tcp(host.as_deref().unwrap_or("localhost"), *port)
        }
        Endpoint::Unix(path) => ForwardTarget::Unix(PathBuf::from(path)),
    }
}

/// Starts a local or dynamic forward; `Err` with OpenSSH's message when nothing could listen.
pub(crate) fn start_local(
    reactor: &Reactor,
    connection: &Connection,
    forward: &Forward,
    gateway_ports: bool,
    listeners: &mut Listeners,
) -> Result<(), String> {
    let (addresses, unix) = match &forward.listen {
        Endpoint::Tcp { host, port } => {
            (listen_addresses(host.as_deref(), *port, gateway_ports), None)
        }
        Endpoint::Unix(path) => (Vec::new(), Some(path.clone())),
    };
    let mut listened = 0;
    let mut last_error = String::new();
    match &forward.connect {
        Some(connect) => {
            if let Some(path) = unix {
                match connection.forward_local_unix(std::path::Path::new(&path), target(connect)) {
                    Ok(listener) => {
                        listeners.local.push(listener);
                        listened += 1;
                    }
                    Err(err) => last_error = err.to_string(),
                }
            }
            for address in &addresses {
                match connection.forward_local(*address, target(connect)) {
                    Ok(listener) => {
                        log::debug!("Local forwarding listening on {address}");
                        listeners.local.push(listener);
                        listened += 1;
                    }
                    Err(err) => {
                        last_error = format!("bind [{}]:{}: {err}", address.ip(), address.port())
                    }
                }
            }
        }
        None => {
            for address in &addresses {
                let factory = SocksFactory { connection: connection.clone() };
                match reactor.listen_tcp(*address, factory) {
                    Ok(port) => {
                        log::debug!("Local forwarding listening on {address} (SOCKS)");
                        listeners.dynamic.push(port);
                        listened += 1;
                    }
                    Err(err) => {
                        last_error = format!("bind [{}]:{}: {err}", address.ip(), address.port())
                    }
                }
            }
        }
    }
    if listened == 0 {
        let port = match &forward.listen {
            Endpoint::Tcp { port, .. } => port.to_string(),
            Endpoint::Unix(path) => path.clone(),
        };
        log::debug!("{last_error}");
        return Err(format!("Could not request local forwarding. (port {port})"));
    }
    Ok(())
}

/// The `-R` request's listen address and port.
pub(crate) fn remote_listen(forward: &Forward) -> (String, u16) {
    match &forward.listen {
        Endpoint::Tcp { host, port } => (host.clone().unwrap_or_else(|| "localhost".into()), *port),
        Endpoint::Unix(path) => (path.clone(), 0),
    }
}

/// The `-R` target.
pub(crate) fn remote_target(forward: &Forward) -> Option<ForwardTarget> {
    forward.connect.as_ref().map(target)
}

/// Accepts SOCKS clients.
struct SocksFactory {
    connection: Connection,
}

impl Factory for SocksFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(Socks::new(Dialer::Channel(self.connection.clone()))))
    }
}

/// The handler for dynamic remote forwarding (`-R port`): SOCKS spoken over each forwarded
/// channel, with connections made from this side.
pub(crate) fn remote_socks(reactor: &Reactor, permit: &Permit) -> ForwardTarget {
    let (reactor, permit) = (reactor.clone(), Rc::new(permit.clone()));
    ForwardTarget::Handler(twine_conch::client::ForwardHandler::new(
        move || -> Box<dyn Protocol> {
            Box::new(Socks::new(Dialer::Local(reactor.clone(), Rc::clone(&permit))))
        },
    ))
}

/// `PermitRemoteOpen`: where dynamic remote forwarding may connect (`None`: anywhere).
#[derive(Clone, Debug, Default)]
pub(crate) struct Permit(Option<Vec<(String, String)>>);

impl Permit {
    /// From the `permitremoteopen` value `conch -G` prints (`any`, `none`, `host:port ...`).
    pub(crate) fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("any") || value.is_empty() {
            return Self(None);
        }
        let entries = value
            .split_whitespace()
            .filter(|e| !e.eq_ignore_ascii_case("none"))
            .filter_map(|entry| {
                let (host, port) = entry.rsplit_once(':')?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some((host.to_ascii_lowercase(), port.to_owned()))
            })
            .collect();
        Self(Some(entries))
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        let Some(entries) = &self.0 else { return true };
        entries.iter().any(|(h, p)| {
            (h == "*" || h.eq_ignore_ascii_case(host)) && (p == "*" || *p == port.to_string())
        })
    }
}

/// Where a SOCKS request is connected: through the server, or from this side.
#[derive(Clone)]
enum Dialer {
    Channel(Connection),
    Local(Reactor, Rc<Permit>),
}

impl Socks {
    fn new(dialer: Dialer) -> Self {
        Self { dialer, transport: None, buffer: Vec::new(), greeted: false, spliced: None }
    }
}

/// One SOCKS client: its request, then the connection spliced to a `direct-tcpip` channel.
struct Socks {
    dialer: Dialer,
    transport: Option<Rc<dyn Transport>>,
    buffer: Vec<u8>,
    greeted: bool,
    spliced: Option<SpliceEnd>,
}

/// What a SOCKS request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Not complete yet.
    Partial,
    /// SOCKS 5's method negotiation: answer "no authentication" and read on.
    Greeting(usize),
    /// A CONNECT to `host:port`; `consumed` bytes; `v5` for the reply format.
    Connect { host: String, port: u16, consumed: usize, v5: bool },
    /// Something we do not serve.
    Bad,
}

fn parse_request(data: &[u8], greeted: bool) -> Request {
    let Some(&version) = data.first() else { return Request::Partial };
    match version {
        4 => {
            // VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOST NUL]
            if data.len() < 9 {
                return Request::Partial;
            }
            if data.get(1) != Some(&1) {
                return Request::Bad;
            }
            let port = u16::from_be_bytes([data[2], data[3]]);
            let ip = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
            let Some(user_end) = data.iter().skip(8).position(|&b| b == 0).map(|p| p + 8) else {
                return Request::Partial;
            };
            let octets = ip.octets();
            if octets[0] == 0 && octets[1] == 0 && octets[2] == 0 && octets[3] != 0 {
                // SOCKS 4a: the host name follows.
                let rest = data.get(user_end + 1..).unwrap_or_default();
                let Some(host_end) = rest.iter().position(|&b| b == 0) else {
                    return Request::Partial;
                };
                let host =
                    String::from_utf8_lossy(rest.get(..host_end).unwrap_or_default()).into_owned();
                return Request::Connect {
                    host,
                    port,
                    consumed: user_end + 2 + host_end,
                    v5: false,
                };
            }
            Request::Connect { host: ip.to_string(), port, consumed: user_end + 1, v5: false }
        }
        5 if !greeted => {
            let Some(&count) = data.get(1) else { return Request::Partial };
            let len = 2 + usize::from(count);
            if data.len() < len {
                return Request::Partial;
            }
            if !data.get(2..len).unwrap_or_default().contains(&0) {
                return Request::Bad;
            }
            Request::Greeting(len)
        }
        5 => {
            if data.len() < 5 {
                return Request::Partial;
            }
            if data[1] != 1 {
                return Request::Bad;
            }
            let (host, at) = match data[3] {
                1 => {
                    let Some(b) = data.get(4..8) else { return Request::Partial };
                    (Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(), 8)
                }
                3 => {
                    let len = usize::from(data[4]);
                    let Some(name) = data.get(5..5 + len) else { return Request::Partial };
                    (String::from_utf8_lossy(name).into_owned(), 5 + len)
                }
                4 => {
                    let Some(b) = data.get(4..20) else { return Request::Partial };
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(b);
                    (Ipv6Addr::from(octets).to_string(), 20)
                }
                _ => return Request::Bad,
            };
            let Some(p) = data.get(at..at + 2) else { return Request::Partial };
            Request::Connect {
                host,
                port: u16::from_be_bytes([p[0], p[1]]),
                consumed: at + 2,
                v5: true,
            }
        }
        _ => Request::Bad,
    }
}

fn reply(v5: bool, ok: bool) -> Vec<u8> {
    if v5 {
        vec![5, if ok { 0 } else { 1 }, 0, 1, 0, 0, 0, 0, 0, 0]
    } else {
        vec![0, if ok { 0x5a } else { 0x5b }, 0, 0, 0, 0, 0, 0]
    }
}

/// The channel's end: sends the SOCKS success reply before anything else.
struct ChannelEnd {
    inner: SpliceEnd,
    socket: Rc<dyn Transport>,
    reply: Vec<u8>,
    made: Rc<RefCell<bool>>,
}

impl Protocol for ChannelEnd {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        *self.made.borrow_mut() = true;
        self.socket.write(&self.reply);
        self.inner.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.inner.read_connection_lost()
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.inner.connection_lost(reason);
    }
}

impl Protocol for Socks {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(end) = self.spliced.as_mut() {
            end.data_received(data);
            return;
        }
        let Some(transport) = self.transport.clone() else { return };
        self.buffer.extend_from_slice(data);
        loop {
            match parse_request(&self.buffer, self.greeted) {
                Request::Partial => {
                    if self.buffer.len() > 1024 {
                        transport.lose_connection();
                    }
                    return;
                }
                Request::Bad => {
                    log::debug!("channel: SOCKS request refused");
                    transport.lose_connection();
                    return;
                }
                Request::Greeting(len) => {
                    transport.write(&[5, 0]);
                    self.buffer.drain(..len.min(self.buffer.len()));
                    self.greeted = true;
                }
                Request::Connect { host, port, consumed, v5 } => {
                    let rest = self.buffer.split_off(consumed.min(self.buffer.len()));
                    self.buffer.clear();
                    log::debug!("Connection to port forwarding to {host} port {port} requested.");
                    self.splice(transport, &host, port, v5, &rest);
                    return;
                }
            }
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        match self.spliced.as_mut() {
            Some(end) => end.read_connection_lost(),
            None => HalfClose::LoseConnection,
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        if let Some(end) = self.spliced.as_mut() {
            end.connection_lost(reason);
        }
    }
}

impl Socks {
    fn splice(&mut self, socket: Rc<dyn Transport>, host: &str, port: u16, v5: bool, rest: &[u8]) {
        let splice = Splice::new();
        let mut socket_end = splice.end(0);
        socket_end.connection_made(Rc::clone(&socket));
        if !rest.is_empty() {
            socket_end.data_received(rest);
        }
        self.spliced = Some(socket_end);
        let made = Rc::new(RefCell::new(false));
        let channel_end = ChannelEnd {
            inner: splice.end(1),
            socket: Rc::clone(&socket),
            reply: reply(v5, true),
            made: Rc::clone(&made),
        };
        match &self.dialer {
            Dialer::Channel(connection) => {
                let opened = connection.direct_tcpip(host, port, channel_end);
                let (host, failed_socket) = (host.to_owned(), socket);
                opened.on_settled(move |result| {
                    if let Err(err) = result {
                        log::debug!("channel open to {host}:{port} failed: {err}");
                        if !*made.borrow() {
                            failed_socket.write(&reply(v5, false));
                        }
                        splice.fail();
                    }
                });
            }
            Dialer::Local(reactor, permit) => {
                use std::net::ToSocketAddrs as _;
                if !permit.allows(host, port) {
                    log::debug!(
                        "dynamic remote forward to {host}:{port} not permitted by PermitRemoteOpen"
                    );
                    socket.write(&reply(v5, false));
                    splice.fail();
                    return;
                }
                let address = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next());
                let Some(address) = address else {
                    log::debug!("cannot resolve {host}");
                    socket.write(&reply(v5, false));
                    splice.fail();
                    return;
                };
                let factory = DialFactory { end: Some(channel_end), socket, v5, splice };
                reactor.connect_tcp(address, std::time::Duration::from_secs(30), factory);
            }
        }
    }
}

/// Connects a dynamic remote forward's request from this side.
struct DialFactory {
    end: Option<ChannelEnd>,
    socket: Rc<dyn Transport>,
    v5: bool,
    splice: Splice,
}

impl Factory for DialFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        self.end.take().map(|end| Box::new(end) as Box<dyn Protocol>)
    }
}

impl twine_core::ClientFactory for DialFactory {
    fn client_connection_failed(&mut self, reason: twine_core::Error) {
        log::debug!("connect failed: {reason}");
        self.socket.write(&reply(self.v5, false));
        self.splice.fail();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOCKS 4, 4a and 5 requests give the host and port asked for.
    #[test]
    fn socks_requests_of_every_version_parse() {
        let v4 = [4, 1, 0, 80, 127, 0, 0, 1, b'u', 0];
        assert_eq!(
            parse_request(&v4, false),
            Request::Connect { host: "127.0.0.1".into(), port: 80, consumed: 10, v5: false }
        );
        let v4a = [4, 1, 0, 80, 0, 0, 0, 1, 0, b'h', b'o', 0];
        assert_eq!(
            parse_request(&v4a, false),
            Request::Connect { host: "ho".into(), port: 80, consumed: 12, v5: false }
        );
        assert_eq!(parse_request(&[5, 1, 0], false), Request::Greeting(3));
        let v5 = [5, 1, 0, 3, 2, b'h', b'o', 1, 0];
        assert_eq!(
            parse_request(&v5, true),
            Request::Connect { host: "ho".into(), port: 256, consumed: 9, v5: true }
        );
        assert_eq!(parse_request(&[4, 2, 0, 0, 0, 0, 0, 0, 0], false), Request::Bad);
    }
}

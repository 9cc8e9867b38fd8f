//! UDP: datagram protocols.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use mio::Token;

use super::{Inner, Reactor, Ready, Side};
use crate::error::Error;

/// At most this many datagrams are read per readiness event before the port yields.
const DATAGRAMS_PER_EVENT: usize = 64;

/// A UDP endpoint's behaviour (Twisted's `DatagramProtocol`).
pub trait DatagramProtocol {
    /// The port is open; `port` is the handle to send from.
    fn started(&mut self, port: UdpPort) {
        let _ = port;
    }

    /// A datagram arrived from `from`.
    fn datagram_received(&mut self, data: &[u8], from: SocketAddr);

    /// The port was closed.
    fn stopped(&mut self) {}
}

impl Reactor {
    /// Opens a UDP port on `addr` (port 0 picks one) and delivers its datagrams to
    /// `protocol`, which gets [`started`](DatagramProtocol::started) from the loop.
    ///
    /// # Errors
    ///
    /// The address is in use or not local.
    pub fn listen_udp(
        &self,
        addr: SocketAddr,
        protocol: impl DatagramProtocol + 'static,
    ) -> Result<UdpPort, Error> {
        let mut socket = mio::net::UdpSocket::bind(addr)
            .map_err(|err| Error::from_io(&err, format!("listen on udp:{addr}")))?;
        let address = socket.local_addr().map_err(|err| Error::from_io(&err, "udp address"))?;
        let port = Rc::new_cyclic(|me| UdpInner {
            me: me.clone(),
            reactor: self.downgrade(),
            socket: RefCell::new(None),
            token: Cell::new(None),
            address,
            protocol: RefCell::new(Some(Box::new(protocol))),
            started: Cell::new(false),
        });
        let token = self.inner.add_registration(port.clone(), Side::Both);
        if let Err(err) =
            self.inner.registry().register(&mut socket, token, mio::Interest::READABLE)
        {
            self.inner.remove_registration(token);
            return Err(Error::from_io(&err, "register a udp port"));
        }
        *port.socket.borrow_mut() = Some(socket);
        port.token.set(Some(token));
        let started = UdpPort { inner: Rc::clone(&port) };
        self.call_soon(move || {
            let handle = started.clone();
            if let Some(protocol) = started.inner.protocol.borrow_mut().as_mut() {
                protocol.started(handle);
            }
            started.inner.started.set(true);
            started.inner.read_all();
        });
        Ok(UdpPort { inner: port })
    }
}

struct UdpInner {
    me: Weak<Self>,
    reactor: Weak<Inner>,
    socket: RefCell<Option<mio::net::UdpSocket>>,
    token: Cell<Option<Token>>,
    address: SocketAddr,
    protocol: RefCell<Option<Box<dyn DatagramProtocol>>>,
    /// Whether `started` was delivered; datagrams wait until then.
    started: Cell<bool>,
}

impl UdpInner {
    fn read_all(&self) {
        if !self.started.get() {
            return;
        }
        let Some(reactor) = self.reactor.upgrade() else { return };
        let mut buffer = reactor.take_read_buffer();
        let mut again = true;
        for _ in 0..DATAGRAMS_PER_EVENT {
            let received = match self.socket.borrow().as_ref() {
                Some(socket) => socket.recv_from(&mut buffer),
                None => Err(io::ErrorKind::WouldBlock.into()),
            };
            match received {
                Ok((n, from)) => {
                    let data = buffer.get(..n).unwrap_or_default();
                    if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
                        protocol.datagram_received(data, from);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    again = false;
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // ICMP errors (ECONNREFUSED) surface here on Linux; they do not close a port.
                    log::debug!("udp receive on {} failed: {err}", self.address);
                }
            }
        }
        reactor.return_read_buffer(buffer);
        if again {
            let me = self.me.clone();
            reactor.call_soon(Box::new(move || {
                if let Some(me) = me.upgrade() {
                    me.read_all();
                }
            }));
        }
    }

    fn stop(&self) {
        let Some(mut socket) = self.socket.borrow_mut().take() else { return };
        let Some(reactor) = self.reactor.upgrade() else { return };
        if let Err(err) = reactor.registry().deregister(&mut socket) {
            log::debug!("deregistering a udp port failed: {err}");
        }
        if let Some(token) = self.token.take() {
            reactor.remove_registration(token);
        }
        drop(socket);
        let Some(me) = self.me.upgrade() else { return };
        reactor.call_soon(Box::new(move || {
            let protocol = me.protocol.borrow_mut().take();
            if let Some(mut protocol) = protocol {
                protocol.stopped();
            }
        }));
    }
}

impl Ready for UdpInner {
    fn ready(&self, _side: Side, _event: &mio::event::Event) {
        self.read_all();
    }

    fn shutdown(&self) {
        self.stop();
    }
}

/// An open UDP port (see [`Reactor::listen_udp`]). Cheap to clone.
#[derive(Clone)]
pub struct UdpPort {
    inner: Rc<UdpInner>,
}

impl UdpPort {
    /// Sends one datagram to `to`. UDP is not buffered: when the socket's send buffer is full
    /// the datagram is refused with an error ([`std::io::ErrorKind::WouldBlock`]'s errno).
    ///
    /// # Errors
    ///
    /// The port is closed, the datagram is too large, or the OS refused it.
    pub fn write_to(&self, data: &[u8], to: SocketAddr) -> Result<(), Error> {
        let socket = self.inner.socket.borrow();
        let Some(socket) = socket.as_ref() else {
            return Err(Error::new(crate::ErrorKind::InvalidInput, "write to a closed udp port"));
        };
        let sent = socket
            .send_to(data, to)
            .map_err(|err| Error::from_io(&err, format!("send to udp:{to}")))?;
        if sent != data.len() {
            return Err(Error::new(crate::ErrorKind::Other, "datagram truncated"));
        }
        Ok(())
    }

    /// The local address (with the port the OS picked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.inner.address
    }

    /// Closes the port; the protocol's `stopped` follows from the loop. Idempotent.
    pub fn stop_listening(&self) {
        self.inner.stop();
    }
}

impl fmt::Debug for UdpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpPort").field("address", &self.inner.address).finish()
    }
}

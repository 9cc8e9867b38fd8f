//! The vocabulary: [`Protocol`], [`Factory`], [`ClientFactory`], [`Transport`], [`PushProducer`].
//!
//! A [`Protocol`] is one connection's behaviour. It is handed a transport in
//! [`connection_made`](Protocol::connection_made), keeps it (the handle is a cheap
//! `Rc<dyn Transport>`), and writes to it from any event it handles: its own
//! [`data_received`](Protocol::data_received), a timer, a thread's result, another connection's
//! event. A [`Factory`] builds one protocol per connection.
//!
//! # No re-entrancy
//!
//! No transport method and no reactor method ever calls a protocol callback, a producer
//! callback or a scheduled call synchronously. Writing, `lose_connection`, `abort_connection`,
//! `write_eof`, registering or pausing a producer, scheduling a call: each only records the
//! request, and the resulting events (`connection_lost`, `write_connection_lost`,
//! `pause_producing`, a write error) are delivered later, from the loop, when no callback is
//! running. A protocol that keeps its state in a `Rc<RefCell<..>>` and writes from a timer or
//! from another connection's callback can therefore never hit a double borrow through twine.
//!
//! The transports in this crate honour this contract; other transports (an SSH channel) must
//! too: it is part of the [`Transport`] contract.

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use crate::error::Reason;
use crate::Error;

/// Where a connection's end is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// A TCP endpoint (IPv4 or IPv6).
    Tcp(SocketAddr),
    /// A UDP endpoint.
    Udp(SocketAddr),
    /// A Unix-domain socket; `None` for an unnamed socket (a client's end, a socketpair).
    Unix(Option<PathBuf>),
    /// A pipe or a pair of descriptors adopted as a transport (inetd mode, a child's stdio).
    Pipe,
    /// A child process, by pid.
    Process(u32),
    /// Anything else, described in words: an SSH channel, a test transport.
    Named(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "tcp:{addr}"),
            Self::Udp(addr) => write!(f, "udp:{addr}"),
            Self::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            Self::Unix(None) => f.write_str("unix:(unnamed)"),
            Self::Pipe => f.write_str("pipe"),
            Self::Process(pid) => write!(f, "process:{pid}"),
            Self::Named(name) => f.write_str(name),
        }
    }
}

/// What a transport does after the peer has finished sending (end of file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HalfClose {
    /// Lose the connection, as for a protocol that does not support half-close: this side
    /// stops writing once its buffer drains, and `connection_lost` follows.
    LoseConnection,
    /// Keep the connection open for writing; `connection_lost` follows once this side calls
    /// [`Transport::write_eof`] or [`Transport::lose_connection`].
    KeepWriting,
}

/// One connection's behaviour: reacts to events from a [`Transport`].
///
/// Events arrive in this order: `connection_made` once; then `data_received` any number of
/// times, interleaved with at most one `read_connection_lost` (the peer finished sending) and
/// at most one `write_connection_lost` (this side's `write_eof` completed); then
/// `connection_lost` once. Every event comes from the loop (see the module docs): a callback
/// may call any transport or reactor method.
///
/// `data_received` is called with whatever the OS returned: a message may arrive in several
/// pieces, or several messages in one. Test protocols by feeding input all at once and one
/// byte at a time (see [`testing`](crate::testing)).
pub trait Protocol {
    /// The connection is up; `transport` is this connection's handle, to keep and write to.
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let _ = transport;
    }

    /// Bytes arrived from the peer.
    fn data_received(&mut self, data: &[u8]);

    /// Lent-buffer reading, the first half (asyncio's `BufferedProtocol.get_buffer`): a
    /// protocol that wants the transport to read straight into its own buffer, sparing a copy,
    /// returns writable space of at most `size_hint` bytes. The transport writes what it reads
    /// into the start of it, then calls [`buffer_updated`](Self::buffer_updated); bytes that
    /// come this way are not also passed to [`data_received`](Self::data_received).
    ///
    /// `None` (the default) keeps the plain path: the transport reads into its own buffer and
    /// calls `data_received`. An empty buffer means "no room now": the transport pauses
    /// reading, as after [`Transport::pause_producing`], until the protocol calls
    /// [`Transport::resume_producing`].
    ///
    /// Transports call [`receive_into`](Self::receive_into), which a protocol behind a
    /// `RefCell` (whose buffer cannot be lent past a borrow) overrides instead.
    fn get_buffer(&mut self, size_hint: usize) -> Option<&mut [u8]> {
        let _ = size_hint;
        None
    }

    /// Lent-buffer reading, the second half (asyncio's `BufferedProtocol.buffer_updated`): the
    /// transport wrote `nbytes` (at least one) into the start of the last buffer
    /// [`get_buffer`](Self::get_buffer) returned.
    fn buffer_updated(&mut self, nbytes: usize) {
        let _ = nbytes;
    }

    /// Lent-buffer reading as a transport drives it: calls `fill` once with the protocol's
    /// buffer (at most `size_hint` bytes, empty when the protocol has no room), `fill` returns
    /// how many bytes it wrote into its start, and the protocol takes them as received. Returns
    /// `false`, without calling `fill`, when the protocol does not lend buffers.
    ///
    /// The default is [`get_buffer`](Self::get_buffer) then, for a non-zero count,
    /// [`buffer_updated`](Self::buffer_updated). A protocol whose buffer sits behind a
    /// `RefCell` overrides this one, lending the buffer for the length of the call.
    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        let Some(buffer) = self.get_buffer(size_hint) else { return false };
        let len = buffer.len().min(size_hint);
        let n = fill(buffer.get_mut(..len).unwrap_or_default()).min(len);
        if n > 0 {
            self.buffer_updated(n);
        }
        true
    }

    /// The peer finished sending (end of file); this side may still write if the protocol
    /// returns [`HalfClose::KeepWriting`]. The default loses the connection.
    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::LoseConnection
    }

    /// This side's [`Transport::write_eof`] took effect: everything buffered was sent and the
    /// write side is shut down.
    fn write_connection_lost(&mut self) {}

    /// The connection is gone, and why. The last event; the transport handle stays valid but
    /// ignores writes from now on.
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }
}

/// A protocol shared through `Rc<RefCell<..>>` is a protocol: the reactor holds one clone, the
/// application (a timer, another connection) holds others.
///
/// # Panics
///
/// A callback panics on a double borrow if application code holds a borrow of the same cell
/// while the reactor delivers an event; twine itself never does (events come from the loop).
impl<P: Protocol + ?Sized> Protocol for Rc<RefCell<P>> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.borrow_mut().connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.borrow_mut().data_received(data);
    }

    /// Lends nothing directly (a buffer cannot outlive the borrow); see
    /// [`receive_into`](Protocol::receive_into), which lends the inner protocol's buffer.
    fn get_buffer(&mut self, size_hint: usize) -> Option<&mut [u8]> {
        let _ = size_hint;
        None
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        self.borrow_mut().buffer_updated(nbytes);
    }

    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        self.borrow_mut().receive_into(size_hint, fill)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.borrow_mut().read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        self.borrow_mut().write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.borrow_mut().connection_lost(reason);
    }
}

impl<P: Protocol + ?Sized> Protocol for Box<P> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        (**self).connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        (**self).data_received(data);
    }

    fn get_buffer(&mut self, size_hint: usize) -> Option<&mut [u8]> {
        (**self).get_buffer(size_hint)
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        (**self).buffer_updated(nbytes);
    }

    fn receive_into(&mut self, size_hint: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> bool {
        (**self).receive_into(size_hint, fill)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        (**self).read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        (**self).write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        (**self).connection_lost(reason);
    }
}

/// Builds a protocol per connection (Twisted's `Factory`).
pub trait Factory {
    /// A connection to or from `addr` is being made: return its protocol, or `None` to refuse
    /// it (the connection is closed at once).
    fn build_protocol(&mut self, addr: &Address) -> Option<Box<dyn Protocol>>;

    /// The factory starts serving (its first port opened, or its first connect began).
    fn start_factory(&mut self) {}

    /// The factory stops serving (its port closed, or its connect attempt finished).
    fn stop_factory(&mut self) {}
}

impl<F: Factory + ?Sized> Factory for Box<F> {
    fn build_protocol(&mut self, addr: &Address) -> Option<Box<dyn Protocol>> {
        (**self).build_protocol(addr)
    }

    fn start_factory(&mut self) {
        (**self).start_factory();
    }

    fn stop_factory(&mut self) {
        (**self).stop_factory();
    }
}

/// A factory for outgoing connections: also hears about attempts that failed.
pub trait ClientFactory: Factory {
    /// The connection attempt failed: refused, unreachable, timed out. The default logs it.
    fn client_connection_failed(&mut self, reason: Error) {
        log::info!("connection attempt failed: {reason}");
    }
}

impl<F: ClientFactory + ?Sized> ClientFactory for Box<F> {
    fn client_connection_failed(&mut self, reason: Error) {
        (**self).client_connection_failed(reason);
    }
}

/// A [`Factory`] (and [`ClientFactory`]) that builds each protocol with a closure: Twisted's
/// `Factory.forProtocol`.
///
/// ```
/// use twine_core::protocol::{Protocol, ProtocolFactory};
///
/// #[derive(Default)]
/// struct Discard;
/// impl Protocol for Discard {
///     fn data_received(&mut self, _data: &[u8]) {}
/// }
/// let factory = ProtocolFactory::new(Discard::default);
/// # let _ = factory;
/// ```
pub struct ProtocolFactory<F> {
    build: F,
}

impl<F, P> ProtocolFactory<F>
where
    F: FnMut() -> P,
    P: Protocol + 'static,
{
    /// A factory calling `build` for each connection.
    pub fn new(build: F) -> Self {
        Self { build }
    }
}

impl<F, P> Factory for ProtocolFactory<F>
where
    F: FnMut() -> P,
    P: Protocol + 'static,
{
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new((self.build)()))
    }
}

impl<F, P> ClientFactory for ProtocolFactory<F>
where
    F: FnMut() -> P,
    P: Protocol + 'static,
{
}

impl<F> fmt::Debug for ProtocolFactory<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProtocolFactory")
    }
}

/// Something that produces data on its own schedule and can be asked to pause (Twisted's
/// `IPushProducer`): a socket read side, a process's output, an SSH channel, a file reader.
///
/// A consumer (a [`Transport`]) calls these from the loop, never from inside a transport
/// method (see the module docs).
pub trait PushProducer {
    /// Stop producing until [`resume_producing`](Self::resume_producing): the consumer's
    /// buffer is above its high-water mark.
    fn pause_producing(&self);

    /// Produce again: the consumer's buffer drained below its low-water mark.
    fn resume_producing(&self);

    /// Stop for good: the consumer is gone.
    fn stop_producing(&self);

    /// Whether [`pause_producing`](Self::pause_producing) only records the request and calls
    /// nothing, as a [`Transport`]'s does: a consumer may then pause it at once, from inside the
    /// write that filled its buffer, rather than from the loop, so that a reader stops before
    /// its next read instead of after its turn. `false` unless overridden.
    fn pauses_at_once(&self) -> bool {
        false
    }
}

/// A transport producing into another transport: pausing it pauses its reading.
impl PushProducer for Rc<dyn Transport> {
    fn pause_producing(&self) {
        Transport::pause_producing(&**self);
    }

    /// A transport's `pause_producing` records the request and returns (its contract).
    fn pauses_at_once(&self) -> bool {
        true
    }

    fn resume_producing(&self) {
        Transport::resume_producing(&**self);
    }

    fn stop_producing(&self) {
        Transport::stop_producing(&**self);
    }
}

/// The two ends of a byte stream, as a protocol sees them (Twisted's `ITransport`, plus
/// `IConsumer`, `IPushProducer` and half-close).
///
/// Implemented by the reactor's TCP, Unix-socket, pipe and pty transports, by child processes,
/// by [`testing::StringTransport`](crate::testing::StringTransport), and by other crates (an
/// SSH channel in twine-conch), so a protocol written once runs over all of them. The trait
/// is object-safe; protocols hold it as `Rc<dyn Transport>`, all methods take `&self`.
///
/// # Contract for implementors
///
/// - Requests are "thrown over the wall": a method records the request and returns. It never
///   calls the protocol, a registered producer or any scheduled call before returning; the
///   events it causes are delivered from the loop, in order.
/// - After `connection_lost` has been delivered, every method is a harmless no-op.
/// - Writes are buffered without blocking; [`buffered`](Self::buffered) says how much is
///   waiting. Past the high-water mark the registered producer is paused; below the low-water
///   mark it is resumed. An implementation may bound its buffer and lose the connection with
///   [`ErrorKind::LimitReached`](crate::ErrorKind::LimitReached) past that bound.
///
/// # Flow control both ways
///
/// As a *consumer*, a transport takes a [`PushProducer`] with
/// [`register_producer`](Self::register_producer). As a *producer*, a transport's own reading
/// can be paused with [`pause_producing`](Self::pause_producing): no `data_received` is
/// delivered until [`resume_producing`](Self::resume_producing), and the kernel's buffers push
/// back on the peer.
pub trait Transport {
    /// Queues `data` to be sent, in order.
    fn write(&self, data: &[u8]);

    /// Queues several pieces to be sent back to back (one system call when possible).
    fn write_sequence(&self, data: &[&[u8]]) {
        for piece in data {
            self.write(piece);
        }
    }

    /// Closes the connection once everything buffered is sent; `connection_lost` follows with
    /// [`Reason::Done`] (or the write error that stopped the drain). Idempotent.
    fn lose_connection(&self);

    /// Closes the connection now, discarding anything buffered; `connection_lost` follows with
    /// [`Reason::Aborted`]. Idempotent.
    fn abort_connection(&self);

    /// Half-closes: once everything buffered is sent, shuts down the write side (the peer reads
    /// end of file) and delivers `write_connection_lost`; reading goes on.
    fn write_eof(&self);

    /// The remote end.
    fn peer(&self) -> Address;

    /// The local end.
    fn host(&self) -> Address;

    /// Bytes queued and not yet handed to the OS (or to the channel below).
    fn buffered(&self) -> usize;

    /// Registers `producer` to be paused and resumed as this transport's buffer fills and
    /// drains. One producer at a time; registering replaces the previous one.
    fn register_producer(&self, producer: Rc<dyn PushProducer>);

    /// Forgets the registered producer.
    fn unregister_producer(&self);

    /// Stops delivering `data_received` (and reading from the OS) until resumed.
    fn pause_producing(&self);

    /// Delivers `data_received` again after [`pause_producing`](Self::pause_producing).
    fn resume_producing(&self);

    /// Stops reading for good and loses the connection.
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

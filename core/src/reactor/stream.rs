//! The byte-stream transport behind TCP, Unix sockets, adopted descriptors, pipes and ptys.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::{Rc, Weak};

use mio::unix::SourceFd;
use mio::Token;

use super::{Inner, Ready, Side};
use crate::error::{Error, ErrorKind, Reason};
use crate::protocol::{Address, HalfClose, Protocol, PushProducer, Transport};
use crate::sys::fd;

/// At most this many reads per readiness event before the stream yields to others.
const READS_PER_EVENT: usize = 16;

/// Buffer bounds of a stream's write side.
///
/// The defaults are Twisted's: pause the producer past 64 KiB, resume it once the buffer has
/// drained completely (so data written after a resume goes straight to the OS instead of being
/// copied into the buffer), and never hold more than 64 MiB.
///
/// Past `high` bytes buffered the registered producer is paused; at or below `low` it is
/// resumed. A write that would take the buffer past `hard` loses the connection with
/// [`ErrorKind::LimitReached`]: a protocol that ignores flow control cannot exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLimits {
    /// Resume the producer at or below this many bytes.
    pub low: usize,
    /// Pause the producer above this many bytes.
    pub high: usize,
    /// Never buffer more than this many bytes.
    pub hard: usize,
}

impl Default for BufferLimits {
    fn default() -> Self {
        Self { low: 0, high: 64 * 1024, hard: 64 * 1024 * 1024 }
    }
}

/// What kind of descriptor a stream runs over: decides how its write side half-closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// A socket: `shutdown(SHUT_WR)`.
    Socket,
    /// A pipe or a pair of pipes: closing the write descriptor.
    Pipe,
    /// A pty controller: a terminal has no half-close, `write_eof` only reports.
    Pty,
}

/// The descriptors of a stream: one for both directions, or one per direction.
pub(crate) enum StreamFds {
    /// One descriptor for reading and writing; `token` if already registered (a connect).
    Duplex(OwnedFd, Option<Token>),
    /// A read descriptor and/or a write descriptor (pipes).
    Split { read: Option<OwnedFd>, write: Option<OwnedFd> },
}

#[derive(Default)]
struct Io {
    read: Option<(File, Token)>,
    write: Option<(File, Token)>,
    duplex: bool,
}

impl Io {
    fn reader(&self) -> Option<&File> {
        self.read.as_ref().map(|(file, _)| file)
    }

    fn writer(&self) -> Option<&File> {
        if self.duplex {
            return self.reader();
        }
        self.write.as_ref().map(|(file, _)| file)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteSide {
    Open,
    EofRequested,
    Shut,
}

struct State {
    buffer: Vec<u8>,
    sent: usize,
    limits: BufferLimits,
    producer: Option<Rc<dyn PushProducer>>,
    producer_paused: bool,
    reading_paused: bool,
    made: bool,
    read_eof: bool,
    write: WriteSide,
    disconnecting: bool,
    closed: bool,
    read_scheduled: bool,
    /// The poller reported the peer's end closed: reads go on until end of file even after a
    /// short read (the hang-up does not come as a new edge).
    peer_closed: bool,
}

impl State {
    fn pending(&self) -> usize {
        self.buffer.len() - self.sent
    }
}

/// What one read did.
enum ReadOnce {
    /// No descriptor to read from (or no protocol left).
    NoReader,
    /// The protocol lent an empty buffer: it has no room now.
    Full,
    /// A read into a buffer of `room` bytes: the protocol's (`lent`, already delivered) or the
    /// stream's (to deliver with `data_received`).
    Read { result: io::Result<usize>, room: usize, lent: bool },
}

/// A byte-stream transport: the reactor's [`Transport`] implementation.
pub(crate) struct Stream {
    me: Weak<Self>,
    reactor: Weak<Inner>,
    kind: StreamKind,
    peer: Address,
    host: Address,
    io: RefCell<Io>,
    state: RefCell<State>,
    protocol: RefCell<Option<Box<dyn Protocol>>>,
}

impl Stream {
    /// Registers `fds` and schedules `connection_made` on `protocol`.
    pub(crate) fn open(
        reactor: &Rc<Inner>,
        kind: StreamKind,
        fds: StreamFds,
        peer: Address,
        host: Address,
        protocol: Box<dyn Protocol>,
    ) -> Result<Rc<Self>, Error> {
        let limits = reactor.buffer_limits.get();
        let stream = Rc::new_cyclic(|me| Self {
            me: me.clone(),
            reactor: Rc::downgrade(reactor),
            kind,
            peer,
            host,
            io: RefCell::new(Io::default()),
            state: RefCell::new(State {
                buffer: Vec::new(),
                sent: 0,
                limits,
                producer: None,
                producer_paused: false,
                reading_paused: false,
                made: false,
                read_eof: false,
                write: WriteSide::Open,
                disconnecting: false,
                closed: false,
                read_scheduled: false,
                peer_closed: false,
            }),
            protocol: RefCell::new(Some(protocol)),
        });
        let handler: Rc<dyn Ready> = stream.clone();
        let registered = Self::register(reactor, &handler, fds);
        let io = match registered {
            Ok(io) => io,
            Err(err) => {
                stream.protocol.borrow_mut().take();
                return Err(err);
            }
        };
        {
            let mut state = stream.state.borrow_mut();
            state.read_eof = io.read.is_none();
            if io.writer().is_none() {
                state.write = WriteSide::Shut;
            }
        }
        *stream.io.borrow_mut() = io;
        let made = Rc::clone(&stream);
        reactor.call_soon(Box::new(move || made.deliver_made()));
        Ok(stream)
    }

    fn register(reactor: &Rc<Inner>, handler: &Rc<dyn Ready>, fds: StreamFds) -> Result<Io, Error> {
        let registry = reactor.registry();
        let mut io = Io::default();
        let add = |owned: OwnedFd, side: Side, interest: mio::Interest, token: Option<Token>| {
            fd::set_nonblocking(owned.as_fd(), true)
                .map_err(|err| Error::from_io(&err, "make a descriptor non-blocking"))?;
            let token = match token {
                Some(token) => {
                    reactor.replace_registration(token, Rc::clone(handler));
                    token
                }
                None => {
                    let token = reactor.add_registration(Rc::clone(handler), side);
                    let raw = owned.as_raw_fd();
                    if let Err(err) = registry.register(&mut SourceFd(&raw), token, interest) {
                        reactor.remove_registration(token);
                        return Err(Error::from_io(&err, "register a descriptor"));
                    }
                    token
                }
            };
            Ok((File::from(owned), token))
        };
        match fds {
            StreamFds::Duplex(owned, token) => {
                let both = mio::Interest::READABLE | mio::Interest::WRITABLE;
                io.read = Some(add(owned, Side::Both, both, token)?);
                io.duplex = true;
            }
            StreamFds::Split { read, write } => {
                if let Some(owned) = read {
                    io.read = Some(add(owned, Side::Read, mio::Interest::READABLE, None)?);
                }
                if let Some(owned) = write {
                    io.write = Some(add(owned, Side::Write, mio::Interest::WRITABLE, None)?);
                }
            }
        }
        Ok(io)
    }

    /// The descriptor the stream reads from, for ioctls (a pty's window size).
    pub(crate) fn with_fd<R>(&self, f: impl FnOnce(&File) -> R) -> Option<R> {
        self.io.borrow().reader().or(self.io.borrow().writer()).map(f)
    }

    fn soon(&self, call: impl FnOnce() + 'static) {
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.call_soon(Box::new(call));
        }
    }

    fn deliver_made(&self) {
        let Some(me) = self.me.upgrade() else { return };
        if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
            self.state.borrow_mut().made = true;
            protocol.connection_made(me);
        }
        self.read_ready();
        self.write_ready();
    }

    fn schedule_read(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.read_scheduled || state.closed {
                return;
            }
            state.read_scheduled = true;
        }
        let me = self.me.clone();
        self.soon(move || {
            if let Some(me) = me.upgrade() {
                me.state.borrow_mut().read_scheduled = false;
                me.read_ready();
            }
        });
    }

    fn read_ready(&self) {
        let Some(reactor) = self.reactor.upgrade() else { return };
        let mut buffer = reactor.take_read_buffer();
        let mut reads = 0;
        let again = loop {
            if reads == READS_PER_EVENT {
                break true;
            }
            reads += 1;
            {
                let state = self.state.borrow();
                if state.closed || state.reading_paused || state.read_eof || !state.made {
                    break false;
                }
            }
            let (result, room) = match self.read_once(&mut buffer) {
                ReadOnce::NoReader => break false,
                ReadOnce::Full => {
                    // The protocol lends no room: wait for its `resume_producing`.
                    self.state.borrow_mut().reading_paused = true;
                    break false;
                }
                ReadOnce::Read { result, room, lent } => {
                    if let (false, Ok(n @ 1..)) = (lent, &result) {
                        let data = buffer.get(..*n).unwrap_or_default();
                        if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
                            protocol.data_received(data);
                        }
                    }
                    (result, room)
                }
            };
            match result {
                Ok(0) => {
                    self.eof_received();
                    break false;
                }
                Ok(n) => {
                    if n < room && !self.state.borrow().peer_closed {
                        // A short read drained the descriptor; the next data brings a new edge.
                        break false;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err)
                    if self.kind == StreamKind::Pty && err.raw_os_error() == Some(libc::EIO) =>
                {
                    // The terminal side closed: a pty's end of file.
                    self.eof_received();
                    break false;
                }
                Err(err) => {
                    self.close(Reason::Lost(Error::from_io(&err, "read")));
                    break false;
                }
            }
        };
        reactor.return_read_buffer(buffer);
        if again {
            self.schedule_read();
        }
    }

    /// One read, into the protocol's lent buffer when it lends one (see
    /// [`Protocol::receive_into`]), else into `buffer` (the caller then delivers the bytes).
    fn read_once(&self, buffer: &mut [u8]) -> ReadOnce {
        let mut outcome = None;
        {
            let mut protocol = self.protocol.borrow_mut();
            let Some(protocol) = protocol.as_mut() else { return ReadOnce::NoReader };
            let mut fill = |space: &mut [u8]| {
                if space.is_empty() {
                    outcome = Some(ReadOnce::Full);
                    return 0;
                }
                let result = match self.io.borrow().reader() {
                    Some(file) => self.read_from(file, space),
                    None => {
                        outcome = Some(ReadOnce::NoReader);
                        return 0;
                    }
                };
                let n = result.as_ref().map_or(0, |n| (*n).min(space.len()));
                outcome = Some(ReadOnce::Read { result, room: space.len(), lent: true });
                n
            };
            protocol.receive_into(buffer.len(), &mut fill);
        }
        if let Some(outcome) = outcome {
            return outcome;
        }
        // The protocol lends no buffer (or lent none this time): the plain path.
        match self.io.borrow().reader() {
            Some(file) => ReadOnce::Read {
                result: self.read_from(file, buffer),
                room: buffer.len(),
                lent: false,
            },
            None => ReadOnce::NoReader,
        }
    }

    /// One read: `recv` on a socket (a shorter path in the kernel than `read`), else `read`.
    fn read_from(&self, mut file: &File, buffer: &mut [u8]) -> io::Result<usize> {
        match self.kind {
            StreamKind::Socket => fd::recv_from_socket(file, buffer),
            StreamKind::Pipe | StreamKind::Pty => file.read(buffer),
        }
    }

    /// One write: `send` on a socket, else `write`.
    fn write_to(&self, mut file: &File, data: &[u8]) -> io::Result<usize> {
        match self.kind {
            StreamKind::Socket => fd::send_to_socket(file, data),
            StreamKind::Pipe | StreamKind::Pty => file.write(data),
        }
    }

    fn eof_received(&self) {
        let write_shut = {
            let mut state = self.state.borrow_mut();
            state.read_eof = true;
            state.write == WriteSide::Shut
        };
        let action = match self.protocol.borrow_mut().as_mut() {
            Some(protocol) => protocol.read_connection_lost(),
            None => HalfClose::LoseConnection,
        };
        if write_shut {
            self.close(Reason::Done);
            return;
        }
        if action == HalfClose::LoseConnection {
            self.lose_connection();
        }
    }

    fn write_ready(&self) {
        if self.state.borrow().pending() > 0 {
            self.flush();
        }
    }

    /// Writes as much of the buffer as the OS takes, then settles producer and close state.
    fn flush(&self) {
        loop {
            let result = {
                let state = self.state.borrow();
                let pending = state.buffer.get(state.sent..).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                match self.io.borrow().writer() {
                    Some(file) => self.write_to(file, pending),
                    None => break,
                }
            };
            match result {
                Ok(n) => self.state.borrow_mut().sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.close(Reason::Lost(Error::from_io(&err, "write")));
                    return;
                }
            }
        }
        self.drained();
    }

    /// After bytes left the buffer: compact it, resume the producer, finish a close or EOF.
    fn drained(&self) {
        let (resume, finish) = {
            let mut state = self.state.borrow_mut();
            if state.sent == state.buffer.len() {
                state.buffer.clear();
                state.sent = 0;
                if state.buffer.capacity() > 4 * state.limits.high.max(64 * 1024) {
                    state.buffer = Vec::new();
                }
            } else if state.sent >= 64 * 1024 && state.sent * 2 >= state.buffer.len() {
                let sent = state.sent;
                state.buffer.drain(..sent);
                state.sent = 0;
            }
            let resume = if state.producer_paused && state.pending() <= state.limits.low {
                state.producer_paused = false;
                state.producer.clone()
            } else {
                None
            };
            (resume, state.pending() == 0 && !state.closed)
        };
        if let Some(producer) = resume {
            self.soon(move || producer.resume_producing());
        }
        if !finish {
            return;
        }
        let (disconnecting, eof_requested, read_eof) = {
            let state = self.state.borrow();
            (state.disconnecting, state.write == WriteSide::EofRequested, state.read_eof)
        };
        if disconnecting {
            self.close(Reason::Done);
        } else if eof_requested {
            self.shut_write();
            let me = self.me.clone();
            self.soon(move || {
                let Some(me) = me.upgrade() else { return };
                let mut protocol = me.protocol.borrow_mut();
                if let Some(protocol) = protocol.as_mut() {
                    protocol.write_connection_lost();
                }
            });
            if read_eof {
                self.close(Reason::Done);
            }
        }
    }

    fn shut_write(&self) {
        self.state.borrow_mut().write = WriteSide::Shut;
        match self.kind {
            StreamKind::Pty => {}
            StreamKind::Socket | StreamKind::Pipe => {
                let mut io = self.io.borrow_mut();
                if io.duplex {
                    if let Some(file) = io.reader() {
                        if let Err(err) = fd::shutdown_write(file) {
                            log::debug!("shutdown of the write side failed: {err}");
                        }
                    }
                } else if let Some((file, token)) = io.write.take() {
                    self.release(&file, token);
                }
            }
        }
    }

    fn release(&self, file: &File, token: Token) {
        let Some(reactor) = self.reactor.upgrade() else { return };
        let raw = file.as_raw_fd();
        if let Err(err) = reactor.registry().deregister(&mut SourceFd(&raw)) {
            log::debug!("deregistering a descriptor failed: {err}");
        }
        reactor.remove_registration(token);
    }

    /// Tears the stream down now and schedules `connection_lost(reason)`.
    pub(crate) fn close(&self, reason: Reason) {
        let producer = {
            let mut state = self.state.borrow_mut();
            if state.closed {
                return;
            }
            state.closed = true;
            state.buffer = Vec::new();
            state.sent = 0;
            state.producer.take()
        };
        let io = std::mem::take(&mut *self.io.borrow_mut());
        if let Some((file, token)) = &io.read {
            self.release(file, *token);
        }
        if let Some((file, token)) = &io.write {
            self.release(file, *token);
        }
        drop(io);
        // A strong handle: nothing else may keep the stream alive until the loss is delivered.
        let Some(me) = self.me.upgrade() else { return };
        self.soon(move || {
            if let Some(producer) = producer {
                producer.stop_producing();
            }
            let protocol = me.protocol.borrow_mut().take();
            if let Some(mut protocol) = protocol {
                protocol.connection_lost(reason);
            }
        });
    }

    fn check_buffer(&self) {
        let (pause, over) = {
            let mut state = self.state.borrow_mut();
            let pending = state.pending();
            let over = pending > state.limits.hard;
            let pause = if !over && pending > state.limits.high && !state.producer_paused {
                state.producer.clone().inspect(|_| state.producer_paused = true)
            } else {
                None
            };
            (pause, over)
        };
        if over {
            let err = Error::new(ErrorKind::LimitReached, "write buffer over its hard limit");
            self.close(Reason::Lost(err));
            return;
        }
        if let Some(producer) = pause {
            if producer.pauses_at_once() {
                producer.pause_producing();
            } else {
                self.soon(move || producer.pause_producing());
            }
        }
    }

    fn accepts_writes(&self) -> bool {
        let state = self.state.borrow();
        !state.closed && !state.disconnecting && state.write == WriteSide::Open
    }
}

impl Transport for Stream {
    fn write(&self, data: &[u8]) {
        self.write_sequence(&[data]);
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        if !self.accepts_writes() {
            return;
        }
        let total: usize = data.iter().map(|piece| piece.len()).sum();
        if total == 0 {
            return;
        }
        let mut written = 0;
        if self.state.borrow().pending() == 0 {
            let result = match self.io.borrow().writer() {
                Some(mut file) => match data {
                    [one] => self.write_to(file, one),
                    _ => {
                        let slices: Vec<IoSlice<'_>> =
                            data.iter().map(|d| IoSlice::new(d)).collect();
                        file.write_vectored(&slices)
                    }
                },
                None => return,
            };
            match result {
                Ok(n) => written = n,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    self.close(Reason::Lost(Error::from_io(&err, "write")));
                    return;
                }
            }
        }
        if written == total {
            return;
        }
        {
            let mut state = self.state.borrow_mut();
            let mut skip = written;
            for piece in data {
                if skip >= piece.len() {
                    skip -= piece.len();
                    continue;
                }
                state.buffer.extend_from_slice(piece.get(skip..).unwrap_or_default());
                skip = 0;
            }
        }
        self.check_buffer();
    }

    fn lose_connection(&self) {
        let empty = {
            let mut state = self.state.borrow_mut();
            if state.closed || state.disconnecting {
                return;
            }
            state.disconnecting = true;
            state.pending() == 0
        };
        if empty {
            self.close(Reason::Done);
        }
    }

    fn abort_connection(&self) {
        self.close(Reason::Aborted);
    }

    fn write_eof(&self) {
        {
            let mut state = self.state.borrow_mut();
            if state.closed || state.write != WriteSide::Open {
                return;
            }
            state.write = WriteSide::EofRequested;
        }
        if self.state.borrow().pending() == 0 {
            self.drained();
        }
    }

    fn peer(&self) -> Address {
        self.peer.clone()
    }

    fn host(&self) -> Address {
        self.host.clone()
    }

    fn buffered(&self) -> usize {
        self.state.borrow().pending()
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        let pause = {
            let mut state = self.state.borrow_mut();
            if state.closed {
                drop(state);
                self.soon(move || producer.stop_producing());
                return;
            }
            let pause = state.pending() > state.limits.high;
            state.producer_paused = pause;
            state.producer = Some(Rc::clone(&producer));
            pause
        };
        if pause {
            self.soon(move || producer.pause_producing());
        }
    }

    fn unregister_producer(&self) {
        let mut state = self.state.borrow_mut();
        state.producer = None;
        state.producer_paused = false;
    }

    fn pause_producing(&self) {
        self.state.borrow_mut().reading_paused = true;
    }

    fn resume_producing(&self) {
        let was_paused = std::mem::replace(&mut self.state.borrow_mut().reading_paused, false);
        if was_paused {
            self.schedule_read();
        }
    }
}

impl Ready for Stream {
    fn ready(&self, side: Side, event: &mio::event::Event) {
        if side != Side::Read
            && (event.is_writable() || event.is_error() || event.is_write_closed())
        {
            self.write_ready();
            let lone_writer = side == Side::Write && self.io.borrow().reader().is_none();
            if lone_writer && (event.is_error() || event.is_write_closed()) {
                // A write-only pipe whose reader is gone (a child's stdin after it exited).
                self.close(Reason::Done);
                return;
            }
        }
        if side != Side::Write
            && (event.is_readable() || event.is_read_closed() || event.is_error())
        {
            if event.is_read_closed() || event.is_error() {
                self.state.borrow_mut().peer_closed = true;
            }
            self.read_ready();
        }
    }

    fn shutdown(&self) {
        self.close(Reason::Lost(Error::new(ErrorKind::ReactorStopped, "reactor stopped")));
    }
}

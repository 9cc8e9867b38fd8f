//! Standard input and output as one twine transport, whatever they are (a terminal, a pipe,
//! a regular file, `/dev/null`): a thread copies standard input into a pipe the reactor reads,
//! another copies a pipe the reactor writes to standard output. Nothing is set non-blocking on
//! descriptors shared with other processes, and flow control is the pipes' own.
//!
//! Bulk data costs no more than it must: the two pipes hold 1 MiB each (fewer wakeups of the
//! threads and the loop per byte), and on Linux the threads move data with `splice` (pages
//! handed from pipe to pipe, or to `/dev/null` or a file, without a copy through user space),
//! falling back to reads and writes where the descriptor does not support it (a terminal).
//! Standard output that is a regular file or a device other than a terminal (`/dev/null`),
//! where a write cannot wait on another process, is written from the loop itself, as standard
//! error always is: one copy, no thread in between. On Linux, standard input that is a pipe or
//! a socket is read from the loop too, with `preadv2(RWF_NOWAIT)`, which never blocks and
//! leaves the descriptor's flags alone (see [`DirectInput`]). Standard input and output that
//! are pipes are grown to 1 MiB as well, their size being the one thing changed on a pipe shared
//! with another process: with the default 64 KiB, most of a channel's data waited in our own
//! buffer for the reader (a copy more), and each wakeup moved a sixteenth as much.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{IsTerminal as _, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::thread::JoinHandle;

use twine_core::protocol::{Address, HalfClose, PushProducer};
use twine_core::{Protocol, Reactor, Reason, Transport};

/// The copying threads' handles, and standard input when the loop reads it itself.
pub(crate) struct Stdio {
    /// Finishes once everything written to the transport reached standard output.
    writer: Option<JoinHandle<()>>,
    /// Standard input read by the loop, kept until the end.
    _input: Option<Rc<DirectInput>>,
}

impl std::fmt::Debug for Stdio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdio")
            .field("writer", &self.writer.is_some())
            .field("direct_input", &self._input.is_some())
            .finish()
    }
}

impl Stdio {
    /// Adopts standard input (unless `null_input`: then it reads as empty) and standard output
    /// as one transport running `protocol`.
    pub(crate) fn open(
        reactor: &Reactor,
        null_input: bool,
        protocol: impl Protocol + 'static,
    ) -> Result<(Self, Rc<dyn Transport>), String> {
        let protocol: Rc<RefCell<dyn Protocol>> = Rc::new(RefCell::new(protocol));
        let (in_read, in_write) = pipe()?;
        let (out_read, out_write) = pipe()?;
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
        let stdout = File::from(stdout);
        let (out, writer) = match Output::start(reactor, stdout) {
            // The loop writes standard output itself; the pipe only carries the end of file.
            Ok(out) => {
                drop(out_read);
                (Some(out), None)
            }
            Err(stdout) => (None, Some(spawn_copy_out(out_read, stdout))),
        };
        let input = if null_input {
            drop(in_write);
            None
        } else {
            let stdin = std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
            DirectInput::start(reactor, File::from(stdin), in_write, &protocol)
        };
        let wrapped = Wrapped { protocol, out, input: input.clone() };
        let transport = reactor
            .adopt_fd_pair(OwnedFd::from(in_read), OwnedFd::from(out_write), wrapped)
            .map_err(|e| e.to_string())?;
        Ok((Self { writer, _input: input }, transport))
    }

    /// Waits until standard output has everything (the transport must be closed first).
    pub(crate) fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Whether a write to `file` completes without waiting on another process: a regular file or
/// a device (`/dev/null`), not a pipe, socket or terminal.
fn writes_never_wait(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt as _;

    let Ok(metadata) = file.metadata() else { return false };
    let kind = metadata.file_type();
    (kind.is_file() || kind.is_char_device() || kind.is_block_device()) && !file.is_terminal()
}

/// Runs the protocol with standard output written from the loop (when `out` is set) and
/// standard input read from it (when `input` is set); otherwise through the pipes.
struct Wrapped {
    protocol: Rc<RefCell<dyn Protocol>>,
    out: Option<Rc<Output>>,
    input: Option<Rc<DirectInput>>,
}

impl Protocol for Wrapped {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        if let Some(out) = &self.out {
            *out.inner.borrow_mut() = Some(Rc::clone(&transport));
        }
        let stdio = StdioTransport {
            inner: transport,
            out: self.out.clone(),
            input: self.input.clone(),
            done: Cell::new(false),
        };
        self.protocol.borrow_mut().connection_made(Rc::new(stdio));
        if let Some(input) = &self.input {
            input.made.set(true);
            input.read_some();
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.protocol.borrow_mut().data_received(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.protocol.borrow_mut().read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        self.protocol.borrow_mut().write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        if let Some(input) = &self.input {
            input.end();
        }
        if let Some(out) = &self.out {
            out.end();
        }
        self.protocol.borrow_mut().connection_lost(reason);
    }
}

/// Standard input and output as the protocol sees them: the pipe transport, with writes going
/// to standard output from the loop when it allows ([`Output`]), and pauses reaching standard
/// input when the loop reads it ([`DirectInput`]).
struct StdioTransport {
    inner: Rc<dyn Transport>,
    out: Option<Rc<Output>>,
    input: Option<Rc<DirectInput>>,
    /// Closing or closed: writes are ignored, as a transport's are.
    done: Cell<bool>,
}

impl Transport for StdioTransport {
    fn write(&self, data: &[u8]) {
        let Some(out) = &self.out else { return self.inner.write(data) };
        if !self.done.get() {
            out.write(data);
        }
    }

    fn lose_connection(&self) {
        self.done.set(true);
        match &self.out {
            Some(out) => out.then(Then::Lose),
            None => self.inner.lose_connection(),
        }
    }

    fn abort_connection(&self) {
        self.done.set(true);
        if let Some(out) = &self.out {
            out.end();
        }
        self.inner.abort_connection();
    }

    fn write_eof(&self) {
        self.done.set(true);
        match &self.out {
            Some(out) => out.then(Then::Eof),
            None => self.inner.write_eof(),
        }
    }

    fn peer(&self) -> Address {
        self.inner.peer()
    }

    fn host(&self) -> Address {
        self.inner.host()
    }

    fn buffered(&self) -> usize {
        match &self.out {
            Some(out) => out.pending(),
            None => self.inner.buffered(),
        }
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        if let Some(out) = &self.out {
            *out.producer.borrow_mut() = Some(Rc::clone(&producer));
            out.paused.set(false);
        }
        self.inner.register_producer(producer);
    }

    fn unregister_producer(&self) {
        if let Some(out) = &self.out {
            out.producer.borrow_mut().take();
            out.paused.set(false);
        }
        self.inner.unregister_producer();
    }

    fn pause_producing(&self) {
        self.inner.pause_producing();
        if let Some(input) = &self.input {
            input.paused.set(true);
        }
    }

    fn resume_producing(&self) {
        self.inner.resume_producing();
        if let Some(input) = &self.input {
            input.paused.set(false);
            input.read_some();
        }
    }

    fn stop_producing(&self) {
        self.inner.stop_producing();
    }
}

/// Past this many bytes waiting for standard output, the producer (the channel) is paused.
const OUTPUT_HIGH: usize = 64 * 1024;

/// What the pipe transport does once standard output has everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    Nothing,
    Eof,
    Lose,
}

/// Standard output written from the loop. A regular file or a device (`/dev/null`) is written
/// at once: the write cannot wait on another process. On Linux a pipe or a socket is written
/// with `pwritev2(RWF_NOWAIT)`, which never blocks and leaves the descriptor's flags alone;
/// what it does not take waits here (the channel paused past [`OUTPUT_HIGH`]) until the
/// descriptor is writable again. A terminal, and other systems, keep the copying thread.
struct Output {
    file: File,
    /// Written with `RWF_NOWAIT` (else plainly, at once).
    nowait: Cell<bool>,
    /// Not yet written, from `sent` on.
    buffer: RefCell<Vec<u8>>,
    sent: Cell<usize>,
    watch: RefCell<Option<twine_core::reactor::FdWatch>>,
    producer: RefCell<Option<Rc<dyn PushProducer>>>,
    paused: Cell<bool>,
    then: Cell<Then>,
    /// The pipe transport, for the end of file or close that waits for the buffer.
    inner: RefCell<Option<Rc<dyn Transport>>>,
    /// A write failed, or the transport closed: nothing more is written.
    ended: Cell<bool>,
}

impl Output {
    /// Standard output written from the loop, if `file` allows it; else `file` back.
    fn start(reactor: &Reactor, file: File) -> Result<Rc<Self>, File> {
        let nowait = if writes_never_wait(&file) {
            false
        } else if cfg!(target_os = "linux") && pollable(&file) && !file.is_terminal() {
            true
        } else {
            return Err(file);
        };
        let output = Rc::new(Self {
            file,
            nowait: Cell::new(nowait),
            buffer: RefCell::new(Vec::new()),
            sent: Cell::new(0),
            watch: RefCell::new(None),
            producer: RefCell::new(None),
            paused: Cell::new(false),
            then: Cell::new(Then::Nothing),
            inner: RefCell::new(None),
            ended: Cell::new(false),
        });
        if nowait {
            use std::os::fd::AsRawFd as _;

            grow_pipe(&output.file);

            let weak = Rc::downgrade(&output);
            let watched = reactor.watch_fd(
                output.file.as_raw_fd(),
                twine_core::reactor::Interest::Writable,
                move |_| {
                    if let Some(output) = weak.upgrade() {
                        output.flush();
                    }
                },
            );
            match watched {
                Ok(watch) => *output.watch.borrow_mut() = Some(watch),
                Err(err) => {
                    // Never for a pipe or socket; were it so, plain writes, as standard error's.
                    log::debug!("standard output not watched: {err}");
                    output.nowait.set(false);
                }
            }
        }
        Ok(output)
    }

    fn pending(&self) -> usize {
        self.buffer.borrow().len().saturating_sub(self.sent.get())
    }

    /// Writes `data`, or keeps what cannot be written now.
    fn write(&self, data: &[u8]) {
        if self.ended.get() || data.is_empty() {
            return;
        }
        if !self.nowait.get() {
            if let Err(err) = (&self.file).write_all(data) {
                self.failed(&err);
            }
            return;
        }
        let taken = if self.pending() == 0 {
            match self.write_now(data) {
                Ok(n) => n,
                Err(err) => return self.failed(&err),
            }
        } else {
            0
        };
        let rest = data.get(taken..).unwrap_or_default();
        if rest.is_empty() {
            return;
        }
        self.buffer.borrow_mut().extend_from_slice(rest);
        if self.pending() > OUTPUT_HIGH && !self.paused.get() {
            let producer = self.producer.borrow().clone();
            if let Some(producer) = producer {
                self.paused.set(true);
                producer.pause_producing();
            }
        }
    }

    /// One write without blocking: how much the descriptor took (0 when full).
    fn write_now(&self, data: &[u8]) -> std::io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            use rustix::io::{Errno, ReadWriteFlags};

            loop {
                let slices = [std::io::IoSlice::new(data)];
                match rustix::io::pwritev2(&self.file, &slices, u64::MAX, ReadWriteFlags::NOWAIT) {
                    Ok(n) => return Ok(n),
                    Err(Errno::AGAIN) => return Ok(0),
                    Err(Errno::INTR) => {}
                    Err(Errno::OPNOTSUPP) => {
                        // An old kernel: plain writes, which may wait, as standard error's do.
                        (&self.file).write_all(data)?;
                        return Ok(data.len());
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            (&self.file).write_all(data)?;
            Ok(data.len())
        }
    }

    /// Writes what waits (standard output became writable); then resumes the producer and
    /// finishes a requested end of file or close.
    fn flush(&self) {
        while self.pending() > 0 && !self.ended.get() {
            let result = {
                let buffer = self.buffer.borrow();
                let pending = buffer.get(self.sent.get()..).unwrap_or_default();
                self.write_now(pending)
            };
            match result {
                Ok(0) => return,
                Ok(n) => self.sent.set(self.sent.get() + n),
                Err(err) => return self.failed(&err),
            }
        }
        self.buffer.borrow_mut().clear();
        self.sent.set(0);
        if self.paused.replace(false) {
            let producer = self.producer.borrow().clone();
            if let Some(producer) = producer {
                producer.resume_producing();
            }
        }
        self.finish();
    }

    /// The transport is to end (`then`) once everything is written.
    fn then(&self, then: Then) {
        if self.then.get() != Then::Lose {
            self.then.set(then);
        }
        if self.pending() == 0 {
            self.finish();
        }
    }

    fn finish(&self) {
        let then = self.then.replace(Then::Nothing);
        let inner = self.inner.borrow().clone();
        match (then, inner) {
            (Then::Lose, Some(inner)) => inner.lose_connection(),
            (Then::Eof, Some(inner)) => inner.write_eof(),
            _ => {}
        }
    }

    /// Standard output failed (its reader went away): the transport is aborted.
    fn failed(&self, err: &std::io::Error) {
        log::debug!("standard output: {err}");
        let inner = self.inner.borrow().clone();
        self.end();
        if let Some(inner) = inner {
            inner.abort_connection();
        }
    }

    /// Nothing more is written or watched.
    fn end(&self) {
        self.ended.set(true);
        *self.buffer.borrow_mut() = Vec::new();
        self.sent.set(0);
        if let Some(watch) = self.watch.borrow_mut().take() {
            watch.stop();
        }
        self.producer.borrow_mut().take();
        self.inner.borrow_mut().take();
    }
}

/// A pipe or a socket: what the loop can poll.
fn pollable(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt as _;

    file.metadata().is_ok_and(|metadata| {
        let kind = metadata.file_type();
        kind.is_fifo() || kind.is_socket()
    })
}

/// How many reads of standard input one turn of the loop makes at most.
const READS_PER_TURN: usize = 4;

/// Standard input read by the loop itself (Linux; a pipe or a socket): `preadv2` with
/// `RWF_NOWAIT` reads without blocking and without setting `O_NONBLOCK` on a descriptor shared
/// with other processes. At its end the pipe to the loop is closed, which the pipe transport
/// reports as end of file after everything read. Elsewhere, and where the kernel does not
/// support it, a thread copies standard input into that pipe instead.
struct DirectInput {
    me: Weak<Self>,
    stdin: File,
    /// The pipe the loop's transport reads: nothing but its end of file (or, after a fallback,
    /// the copying thread's data).
    feed: RefCell<Option<PipeWriter>>,
    protocol: Rc<RefCell<dyn Protocol>>,
    scheduler: Rc<dyn twine_core::time::Scheduler>,
    watch: RefCell<Option<twine_core::reactor::FdWatch>>,
    buffer: RefCell<Vec<u8>>,
    /// The protocol has its transport.
    made: Cell<bool>,
    paused: Cell<bool>,
    /// A read is under way (a nested call leaves the work to it).
    reading: Cell<bool>,
    /// Another turn's reads are scheduled.
    again: Cell<bool>,
    ended: Cell<bool>,
}

impl DirectInput {
    /// Reads `stdin` from the loop where it can, else starts the copying thread into `feed`.
    fn start(
        reactor: &Reactor,
        stdin: File,
        feed: PipeWriter,
        protocol: &Rc<RefCell<dyn Protocol>>,
    ) -> Option<Rc<Self>> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            use std::os::unix::fs::FileTypeExt as _;

            let pollable = stdin.metadata().is_ok_and(|metadata| {
                let kind = metadata.file_type();
                kind.is_fifo() || kind.is_socket()
            });
            if pollable && !stdin.is_terminal() {
                grow_pipe(&stdin);
                let fd = stdin.as_raw_fd();
                let input = Rc::new_cyclic(|me| Self {
                    me: me.clone(),
                    stdin,
                    feed: RefCell::new(Some(feed)),
                    protocol: Rc::clone(protocol),
                    scheduler: reactor.scheduler(),
                    watch: RefCell::new(None),
                    buffer: RefCell::new(vec![0; CHUNK]),
                    made: Cell::new(false),
                    paused: Cell::new(false),
                    reading: Cell::new(false),
                    again: Cell::new(false),
                    ended: Cell::new(false),
                });
                let weak = Rc::downgrade(&input);
                let watched = reactor.watch_fd(fd, twine_core::reactor::Interest::Readable, {
                    move |_| {
                        if let Some(input) = weak.upgrade() {
                            input.read_some();
                        }
                    }
                });
                match watched {
                    Ok(watch) => {
                        *input.watch.borrow_mut() = Some(watch);
                        return Some(input);
                    }
                    Err(err) => {
                        log::debug!("standard input not watched: {err}");
                        let feed = input.feed.borrow_mut().take();
                        let stdin = input.stdin.try_clone().ok();
                        if let (Some(stdin), Some(feed)) = (stdin, feed) {
                            spawn_copy_in(stdin, feed);
                        }
                        return None;
                    }
                }
            }
        }
        let _ = (reactor, protocol);
        spawn_copy_in(stdin, feed);
        None
    }

    /// Reads what standard input has, a few times, handing it to the protocol.
    fn read_some(&self) {
        #[cfg(target_os = "linux")]
        {
            use rustix::io::{Errno, ReadWriteFlags};

            if self.reading.replace(true) {
                return;
            }
            let mut reads = 0;
            while self.made.get() && !self.paused.get() && !self.ended.get() {
                if reads == READS_PER_TURN {
                    self.read_again();
                    break;
                }
                reads += 1;
                let mut buffer = self.buffer.borrow_mut();
                let mut slices = [std::io::IoSliceMut::new(&mut buffer)];
                match rustix::io::preadv2(
                    &self.stdin,
                    &mut slices,
                    u64::MAX,
                    ReadWriteFlags::NOWAIT,
                ) {
                    Ok(0) => self.end(),
                    Ok(n) => {
                        let data = buffer.get(..n).unwrap_or_default();
                        self.protocol.borrow_mut().data_received(data);
                    }
                    Err(Errno::AGAIN) => break,
                    Err(Errno::INTR) => {}
                    Err(Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS) => {
                        self.fall_back();
                        break;
                    }
                    Err(err) => {
                        log::debug!("standard input: {err}");
                        self.end();
                    }
                }
            }
            self.reading.set(false);
        }
    }

    /// Reads again on the next turn (the loop gets its turn between).
    fn read_again(&self) {
        if self.again.replace(true) {
            return;
        }
        let me = self.me.clone();
        self.scheduler.call_soon_boxed(Box::new(move || {
            if let Some(me) = me.upgrade() {
                me.again.set(false);
                me.read_some();
            }
        }));
    }

    /// The kernel cannot read without blocking here: the copying thread takes over.
    fn fall_back(&self) {
        log::debug!("standard input: copied by a thread");
        self.ended.set(true);
        if let Some(watch) = self.watch.borrow_mut().take() {
            watch.stop();
        }
        let feed = self.feed.borrow_mut().take();
        if let (Ok(stdin), Some(feed)) = (self.stdin.try_clone(), feed) {
            spawn_copy_in(stdin, feed);
        }
    }

    /// End of file (or an error, or the transport closed): stop watching and close the pipe,
    /// whose end of file the transport reports.
    fn end(&self) {
        self.ended.set(true);
        if let Some(watch) = self.watch.borrow_mut().take() {
            watch.stop();
        }
        self.feed.borrow_mut().take();
    }
}

fn spawn_copy_in(from: File, to: PipeWriter) {
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(move || copy(from, to));
}

fn spawn_copy_out(from: PipeReader, to: File) -> JoinHandle<()> {
    std::thread::spawn(move || copy(from, to))
}

/// What the pipes between the threads and the loop are asked to hold (Linux's default limit
/// for an unprivileged user, `/proc/sys/fs/pipe-max-size`; refused, a pipe keeps 64 KiB).
const PIPE_SIZE: usize = 1024 * 1024;

/// The most one read, write or `splice` of a copying thread moves.
const CHUNK: usize = 256 * 1024;

/// A pipe grown to [`PIPE_SIZE`] where the kernel allows it.
fn pipe() -> Result<(PipeReader, PipeWriter), String> {
    let (read, write) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    grow_pipe(&write);
    Ok((read, write))
}

/// Grows the pipe `end` belongs to to [`PIPE_SIZE`] where the kernel allows it (never shrinks
/// it; a socket is left alone). For standard input or output that is a pipe from another
/// process this is the pipe the other side uses too: each wakeup of either side then moves up to
/// 1 MiB instead of 64 KiB, and nothing else about the pipe changes. A user past
/// `/proc/sys/fs/pipe-user-pages-soft` is refused, and the pipe stays as it was.
fn grow_pipe(end: &impl AsFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::fcntl::{fcntl, FcntlArg};

        let Ok(size) = i32::try_from(PIPE_SIZE) else { return };
        if fcntl(end, FcntlArg::F_GETPIPE_SZ).is_ok_and(|now| now < size) {
            let _ = fcntl(end, FcntlArg::F_SETPIPE_SZ(size));
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = end;
}

/// Copies `from` to `to` until end of file or an error: by `splice` where both ends allow it
/// (one of them is always our pipe), else with plain reads and writes.
fn copy(from: impl Read + AsFd, to: impl Write + AsFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if splice_all(&from, &to) == Spliced::Unsupported {
        copy_through(from, to);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    copy_through(from, to);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug, PartialEq, Eq)]
enum Spliced {
    /// End of file, or an error that ends the copy.
    Done,
    /// The kernel cannot splice between these two (nothing was lost: go on another way).
    Unsupported,
}

/// Moves everything from `from` to `to` with `splice`, at the descriptors' own positions.
/// A file opened for appending is left to plain writes, which append atomically, and a
/// terminal to plain reads and writes.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn splice_all(from: &impl AsFd, to: &impl AsFd) -> Spliced {
    use nix::errno::Errno;
    use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};

    use std::io::IsTerminal as _;

    let appending = fcntl(to, FcntlArg::F_GETFL)
        .map_or(true, |flags| OFlag::from_bits_truncate(flags).contains(OFlag::O_APPEND));
    // A terminal is read and written plainly: splicing from one fails once it hangs up, and
    // its data is too little to gain anything.
    if appending || from.as_fd().is_terminal() || to.as_fd().is_terminal() {
        return Spliced::Unsupported;
    }
    loop {
        match splice(from, None, to, None, CHUNK, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Spliced::Done,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => return Spliced::Unsupported,
            Err(_) => return Spliced::Done,
        }
    }
}

/// Copies with plain reads and writes. `std::io::copy` would splice between a pipe and a file
/// at offsets of its own, overwriting what other processes append to a shared output file.
fn copy_through(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if to.write_all(buf.get(..n).unwrap_or_default()).is_err() {
            return;
        }
    }
}

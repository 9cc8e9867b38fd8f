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
//! error always is: one copy, no thread in between.

use std::cell::Cell;
use std::fs::File;
use std::io::{IsTerminal as _, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::thread::JoinHandle;

use twine_core::protocol::{Address, HalfClose, PushProducer};
use twine_core::{Protocol, Reactor, Reason, Transport};

/// The copying threads' handles.
#[derive(Debug)]
pub(crate) struct Stdio {
    /// Finishes once everything written to the transport reached standard output.
    writer: Option<JoinHandle<()>>,
}

impl Stdio {
    /// Adopts standard input (unless `null_input`: then it reads as empty) and standard output
    /// as one transport running `protocol`.
    pub(crate) fn open(
        reactor: &Reactor,
        null_input: bool,
        protocol: impl Protocol + 'static,
    ) -> Result<(Self, Rc<dyn Transport>), String> {
        let (in_read, in_write) = pipe()?;
        let (out_read, out_write) = pipe()?;
        if !null_input {
            let stdin = std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
            spawn_copy_in(File::from(stdin), in_write);
        } else {
            drop(in_write);
        }
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
        let stdout = File::from(stdout);
        let (in_read, out_write) = (OwnedFd::from(in_read), OwnedFd::from(out_write));
        if writes_never_wait(&stdout) {
            // The loop writes standard output itself; the pipe only carries the end of file.
            drop(out_read);
            let protocol = DirectOutput { protocol, out: Rc::new(stdout) };
            let transport =
                reactor.adopt_fd_pair(in_read, out_write, protocol).map_err(|e| e.to_string())?;
            return Ok((Self { writer: None }, transport));
        }
        let writer = spawn_copy_out(out_read, stdout);
        let transport =
            reactor.adopt_fd_pair(in_read, out_write, protocol).map_err(|e| e.to_string())?;
        Ok((Self { writer: Some(writer) }, transport))
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
    let Ok(metadata) = file.metadata() else { return false };
    let kind = metadata.file_type();
    use std::os::unix::fs::FileTypeExt as _;
    (kind.is_file() || kind.is_char_device() || kind.is_block_device()) && !file.is_terminal()
}

/// Runs `protocol` with its writes going straight to standard output (see the module's notes).
struct DirectOutput<P> {
    protocol: P,
    out: Rc<File>,
}

impl<P: Protocol> Protocol for DirectOutput<P> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let direct = Direct { inner: transport, out: Rc::clone(&self.out), done: Cell::new(false) };
        self.protocol.connection_made(Rc::new(direct));
    }

    fn data_received(&mut self, data: &[u8]) {
        self.protocol.data_received(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.protocol.read_connection_lost()
    }

    fn write_connection_lost(&mut self) {
        self.protocol.write_connection_lost();
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.protocol.connection_lost(reason);
    }
}

/// Standard input and output whose writes go to standard output at once (nothing is ever
/// buffered, so nothing to pause for); everything else is the pipe transport's.
struct Direct {
    inner: Rc<dyn Transport>,
    out: Rc<File>,
    /// Closing or closed: writes are ignored, as a transport's are.
    done: Cell<bool>,
}

impl Transport for Direct {
    fn write(&self, data: &[u8]) {
        if self.done.get() || data.is_empty() {
            return;
        }
        if let Err(err) = (&*self.out).write_all(data) {
            log::debug!("standard output: {err}");
            self.abort_connection();
        }
    }

    fn lose_connection(&self) {
        self.done.set(true);
        self.inner.lose_connection();
    }

    fn abort_connection(&self) {
        self.done.set(true);
        self.inner.abort_connection();
    }

    fn write_eof(&self) {
        self.done.set(true);
        self.inner.write_eof();
    }

    fn peer(&self) -> Address {
        self.inner.peer()
    }

    fn host(&self) -> Address {
        self.inner.host()
    }

    fn buffered(&self) -> usize {
        0
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        self.inner.register_producer(producer);
    }

    fn unregister_producer(&self) {
        self.inner.unregister_producer();
    }

    fn pause_producing(&self) {
        self.inner.pause_producing();
    }

    fn resume_producing(&self) {
        self.inner.resume_producing();
    }

    fn stop_producing(&self) {
        self.inner.stop_producing();
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
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(size) = i32::try_from(PIPE_SIZE) {
        let _ = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size));
    }
    Ok((read, write))
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

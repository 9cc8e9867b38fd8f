//! Standard input and output as one twine transport, whatever they are (a terminal, a pipe,
//! a regular file, `/dev/null`): a thread copies standard input into a pipe the reactor reads,
//! another copies a pipe the reactor writes to standard output. Nothing is set non-blocking on
//! descriptors shared with other processes, and flow control is the pipes' own.
//!
//! Bulk data costs no more than it must: the two pipes hold 1 MiB each (fewer wakeups of the
//! threads and the loop per byte), and on Linux the threads move data with `splice` (pages
//! handed from pipe to pipe, or to `/dev/null` or a file, without a copy through user space),
//! falling back to reads and writes where the descriptor does not support it (a terminal).

use std::fs::File;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use twine_core::{Protocol, Reactor, Transport};

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
    ) -> Result<(Self, std::rc::Rc<dyn Transport>), String> {
        let (in_read, in_write) = pipe()?;
        let (out_read, out_write) = pipe()?;
        if !null_input {
            let stdin = std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
            spawn_copy_in(File::from(stdin), in_write);
        } else {
            drop(in_write);
        }
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
        let writer = spawn_copy_out(out_read, File::from(stdout));
        let transport = reactor
            .adopt_fd_pair(OwnedFd::from(in_read), OwnedFd::from(out_write), protocol)
            .map_err(|e| e.to_string())?;
        Ok((Self { writer: Some(writer) }, transport))
    }

    /// Waits until standard output has everything (the transport must be closed first).
    pub(crate) fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
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

//! Child processes over pipes or a pty (Twisted's `spawnProcess`).
//!
//! [`Reactor::spawn_process`] starts a program described by [`ProcessOptions`] and delivers
//! its events to a [`ProcessProtocol`]. The [`Process`] handle is a [`Transport`]: writing
//! goes to the child's stdin, pausing stops reading its stdout and stderr, so a process can
//! be wired to a network connection with the same flow control as any transport.
//!
//! The options cover what a login session needs: `argv[0]` (`-bash` for a login shell), a
//! cleared and explicit environment, the working directory, user, group and supplementary
//! groups (applied in the child as `setgroups`, `setgid`, `setuid`, so run as root to change
//! them), a pty with its initial window size and terminal modes and a new session with the pty
//! as controlling terminal, and descriptor hygiene (every descriptor but stdio and the ones
//! asked for is closed at `exec`).
//!
//! # Portability
//!
//! Unix only. On Linux a child is started with `clone(CLONE_VM | CLONE_VFORK)`, as glibc's
//! `posix_spawn` does: it runs on the parent's memory until it calls `exec`, so starting it
//! copies no page tables and, in a multi-threaded parent, interrupts no other CPU; elsewhere
//! it is forked. Either way the child sees the same steps, errors and environment as with
//! [`std::process::Command`]. Children are reaped on SIGCHLD with `waitpid(pid, WNOHANG)` for
//! this reactor's own children only, so other reactors and `std::process` keep theirs. The
//! terminal modes are nix's [`Termios`](termios::Termios) (re-exported here as [`termios`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::iter;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use nix::sys::termios;

use crate::error::{Error, ErrorKind, Reason};
use crate::protocol::{Address, HalfClose, Protocol, PushProducer, Transport};
use crate::reactor::{Reactor, Signal, Stream, StreamFds, StreamKind};
use crate::sys;

/// A terminal's size: character cells, and pixels where known (0 otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowSize {
    /// Rows of characters.
    pub rows: u16,
    /// Columns of characters.
    pub columns: u16,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

impl WindowSize {
    /// A size of `rows` by `columns` characters.
    pub fn new(rows: u16, columns: u16) -> Self {
        Self { rows, columns, width: 0, height: 0 }
    }

    /// The same size with its pixel dimensions.
    #[must_use]
    pub fn with_pixels(mut self, width: u16, height: u16) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    fn to_raw(self) -> sys::pty::RawWindowSize {
        sys::pty::RawWindowSize {
            rows: self.rows,
            columns: self.columns,
            width: self.width,
            height: self.height,
        }
    }
}

/// How a child ended: its exit code, or the signal that terminated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessStatus {
    /// The child called `exit(code)`.
    Exited(i32),
    /// The child was terminated by a signal (its number), possibly dumping core.
    Signaled {
        /// The signal's number ([`Signal::from_raw`] names it).
        signal: i32,
        /// Whether a core file was written.
        core_dumped: bool,
    },
    /// The child was reaped by someone else (a `waitpid(-1)` elsewhere in the program), so
    /// its status is unknown.
    Unknown,
}

impl ProcessStatus {
    /// Whether the child exited with code 0.
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }

    /// The exit code, if the child exited.
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Exited(code) => Some(code),
            _ => None,
        }
    }

    /// The terminating signal's number, if a signal ended the child.
    pub fn signal(self) -> Option<i32> {
        match self {
            Self::Signaled { signal, .. } => Some(signal),
            _ => None,
        }
    }
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with code {code}"),
            Self::Signaled { signal, core_dumped: true } => {
                write!(f, "terminated by signal {signal} (core dumped)")
            }
            Self::Signaled { signal, .. } => write!(f, "terminated by signal {signal}"),
            Self::Unknown => f.write_str("reaped elsewhere, status unknown"),
        }
    }
}

/// The supplementary groups a child gets.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Groups {
    /// Exactly these group ids.
    Only(Vec<u32>),
    /// The groups `/etc/group` (or NSS) lists for this user name, plus the primary group
    /// (`initgroups`), resolved in the parent before the child starts.
    OfUser(String),
}

/// The identity a child runs as. Changing it needs root (or the matching capabilities).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user id (`setuid`, applied last).
    pub uid: u32,
    /// The primary group id (`setgid`).
    pub gid: u32,
    /// The supplementary groups (`setgroups`).
    pub groups: Groups,
}

/// A pty for the child: its initial size and terminal modes.
#[derive(Clone, Debug, Default)]
pub struct PtyOptions {
    /// The initial window size.
    pub size: WindowSize,
    /// Terminal modes to start with; `None` keeps the system's defaults.
    pub modes: Option<termios::Termios>,
}

/// Who a child's pty belongs to (see [`ProcessOptions::pty_owner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtyOwner {
    /// The owning user id.
    pub uid: u32,
    /// The owning group id.
    pub gid: u32,
    /// The permission bits (`0o620`: the user reads and writes, the `tty` group writes).
    pub mode: u32,
}

/// What to run and how: a builder for [`Reactor::spawn_process`].
///
/// ```
/// use twine_core::process::{ProcessOptions, PtyOptions, WindowSize};
///
/// let login_shell = ProcessOptions::new("/bin/bash")
///     .arg0("-bash")
///     .env_clear()
///     .env("HOME", "/home/alice")
///     .env("TERM", "xterm-256color")
///     .cwd("/home/alice")
///     .pty(PtyOptions { size: WindowSize::new(24, 80), modes: None });
/// # let _ = login_shell;
/// ```
#[derive(Debug)]
pub struct ProcessOptions {
    program: OsString,
    args: Vec<OsString>,
    arg0: Option<OsString>,
    env_clear: bool,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    credentials: Option<Credentials>,
    pty: Option<PtyOptions>,
    tty_env: Option<OsString>,
    pty_owner: Option<PtyOwner>,
    new_session: bool,
    close_other_fds: bool,
    inherit: Vec<(OwnedFd, RawFd)>,
}

impl ProcessOptions {
    /// Runs `program` (looked up in `PATH` when it has no slash), with no arguments, the
    /// parent's environment, over pipes.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            arg0: None,
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            credentials: None,
            pty: None,
            tty_env: None,
            pty_owner: None,
            new_session: false,
            close_other_fds: true,
            inherit: Vec::new(),
        }
    }

    /// Adds an argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// Sets `argv[0]`, which defaults to the program: `-bash` starts a login shell.
    #[must_use]
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(arg0.as_ref().to_os_string());
        self
    }

    /// Starts from an empty environment instead of the parent's.
    #[must_use]
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Sets one environment variable.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Runs the child as another user (see [`Credentials`]).
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Attaches the child's stdin, stdout and stderr to a new pty, in a new session whose
    /// controlling terminal it is. Output then all arrives as `out_received`.
    #[must_use]
    pub fn pty(mut self, pty: PtyOptions) -> Self {
        self.pty = Some(pty);
        self
    }

    /// With a pty, sets the environment variable `name` to the terminal's path (`/dev/pts/3`),
    /// as sshd sets `SSH_TTY`; without one, nothing.
    #[must_use]
    pub fn tty_env(mut self, name: impl AsRef<OsStr>) -> Self {
        self.tty_env = Some(name.as_ref().to_os_string());
        self
    }

    /// With a pty, gives its terminal to `owner` before the child starts (sshd's
    /// `pty_setowner`), so that nothing the child runs sees the terminal with its old owner;
    /// without one, nothing. Changing the owner needs root.
    #[must_use]
    pub fn pty_owner(mut self, owner: PtyOwner) -> Self {
        self.pty_owner = Some(owner);
        self
    }

    /// Starts the child in a new session (`setsid`) even without a pty (always with one).
    #[must_use]
    pub fn new_session(mut self, on: bool) -> Self {
        self.new_session = on;
        self
    }

    /// Lets the child inherit the parent's descriptors that are not close-on-exec (by default
    /// every descriptor but stdio and [`inherit_fd`](Self::inherit_fd)'s is closed at `exec`).
    #[must_use]
    pub fn keep_other_fds(mut self) -> Self {
        self.close_other_fds = false;
        self
    }

    /// Hands `fd` to the child as descriptor number `target` (3 and up; an agent socket, a
    /// monitor pipe). Targets must differ from each other's sources.
    #[must_use]
    pub fn inherit_fd(mut self, fd: OwnedFd, target: RawFd) -> Self {
        self.inherit.push((fd, target));
        self
    }
}

/// A child process's behaviour: reacts to its output and its end (Twisted's
/// `ProcessProtocol`). Every event comes from the loop.
///
/// Order: `connection_made`; then `out_received`/`err_received` as output arrives;
/// `in/out/err_connection_lost` as each pipe closes; `process_exited` when the child is
/// reaped; and last `process_ended`, once the child is reaped *and* all its pipes are closed.
pub trait ProcessProtocol {
    /// The child started; `process` is the handle to write to, signal, resize.
    fn connection_made(&mut self, process: Process) {
        let _ = process;
    }

    /// The child wrote to stdout (or to its pty).
    fn out_received(&mut self, data: &[u8]);

    /// The child wrote to stderr (never with a pty).
    fn err_received(&mut self, data: &[u8]) {
        let _ = data;
    }

    /// The child's stdin closed (we closed it, or the child is gone).
    fn in_connection_lost(&mut self) {}

    /// The child's stdout (or pty) reached end of file.
    fn out_connection_lost(&mut self) {}

    /// The child's stderr reached end of file.
    fn err_connection_lost(&mut self) {}

    /// The child was reaped with `status`; output may still be draining.
    fn process_exited(&mut self, status: ProcessStatus) {
        let _ = status;
    }

    /// The child is reaped and every pipe is closed: the last event.
    fn process_ended(&mut self, status: ProcessStatus) {
        let _ = status;
    }
}

/// Reaping, as the reactor's SIGCHLD handling sees a child.
pub(crate) trait Reap {
    /// Checks whether the child exited; `true` once it has been reaped.
    fn reap(&self) -> bool;

    /// The reactor is going away: drop the protocol (and the cycles through it).
    fn abandon(&self);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChildFd {
    In,
    Out,
    Err,
    Pty,
}

struct ProcessShared {
    pid: u32,
    protocol: RefCell<Option<Box<dyn ProcessProtocol>>>,
    /// stdin, or the pty.
    input: RefCell<Option<Rc<Stream>>>,
    stdout: RefCell<Option<Rc<Stream>>>,
    stderr: RefCell<Option<Rc<Stream>>>,
    pty: bool,
    /// The terminal's path, with a pty.
    tty: Option<PathBuf>,
    status: Cell<Option<ProcessStatus>>,
    open: Cell<u8>,
    ended: Cell<bool>,
    /// For a child another process forked ([`Reactor::adopt_foreign_process`]): how to signal
    /// it (`signal`, whether to its group).
    foreign: Option<Box<ForeignSignal>>,
}

/// How a foreign child is signalled: through the process that forked it.
type ForeignSignal = dyn Fn(i32, bool) -> Result<(), Error>;

/// The descriptors of a child: its pty's controller, or its three pipes (our ends). What
/// [`Process::duplicate_fds`] returns and [`Reactor::adopt_foreign_process`] takes, so that a
/// privileged process can start a child and hand its descriptors to an unprivileged one.
#[derive(Debug)]
pub enum ChildFds {
    /// The pty's controller, and the terminal's path.
    Pty {
        /// The controller side.
        controller: OwnedFd,
        /// The terminal's path (`/dev/pts/3`).
        tty: Option<PathBuf>,
    },
    /// The child's standard input (our writing end), output and error (our reading ends).
    Pipes {
        /// Where we write the child's input.
        stdin: OwnedFd,
        /// Where we read its output.
        stdout: OwnedFd,
        /// Where we read its errors.
        stderr: OwnedFd,
    },
}

impl ProcessShared {
    fn with_protocol(&self, f: impl FnOnce(&mut dyn ProcessProtocol)) {
        if let Some(protocol) = self.protocol.borrow_mut().as_mut() {
            f(&mut **protocol);
        }
    }

    fn pipe_lost(&self, which: ChildFd) {
        self.with_protocol(|protocol| match which {
            ChildFd::In => protocol.in_connection_lost(),
            ChildFd::Out => protocol.out_connection_lost(),
            ChildFd::Err => protocol.err_connection_lost(),
            ChildFd::Pty => {
                protocol.in_connection_lost();
                protocol.out_connection_lost();
            }
        });
        self.open.set(self.open.get().saturating_sub(1));
        self.maybe_ended();
    }

    fn maybe_ended(&self) {
        let Some(status) = self.status.get() else { return };
        if self.open.get() > 0 || self.ended.replace(true) {
            return;
        }
        let protocol = self.protocol.borrow_mut().take();
        if let Some(mut protocol) = protocol {
            protocol.process_ended(status);
        }
        self.input.borrow_mut().take();
        self.stdout.borrow_mut().take();
        self.stderr.borrow_mut().take();
    }

    fn streams(&self) -> Vec<Rc<Stream>> {
        [&self.input, &self.stdout, &self.stderr]
            .into_iter()
            .filter_map(|slot| slot.borrow().clone())
            .collect()
    }

    fn output_streams(&self) -> Vec<Rc<Stream>> {
        if self.pty {
            return self.input.borrow().clone().into_iter().collect();
        }
        [&self.stdout, &self.stderr].into_iter().filter_map(|slot| slot.borrow().clone()).collect()
    }
}

impl Reap for ProcessShared {
    fn reap(&self) -> bool {
        if self.status.get().is_some() {
            return true;
        }
        let pid = Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        let status = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => ProcessStatus::Exited(code),
            Ok(WaitStatus::Signaled(_, signal, core_dumped)) => {
                ProcessStatus::Signaled { signal: signal as i32, core_dumped }
            }
            Ok(_) => return false,
            Err(nix::errno::Errno::ECHILD) => {
                log::warn!("child {} was reaped elsewhere", self.pid);
                ProcessStatus::Unknown
            }
            Err(err) => {
                log::warn!("waitpid({}) failed: {err}", self.pid);
                return false;
            }
        };
        self.status.set(Some(status));
        self.with_protocol(|protocol| protocol.process_exited(status));
        self.maybe_ended();
        true
    }

    fn abandon(&self) {
        self.protocol.borrow_mut().take();
    }
}

/// The stream-side protocol of one of a child's descriptors: forwards to the process.
struct ChildPipe {
    process: Rc<ProcessShared>,
    which: ChildFd,
}

impl Protocol for ChildPipe {
    fn data_received(&mut self, data: &[u8]) {
        match self.which {
            ChildFd::Out | ChildFd::Pty => {
                self.process.with_protocol(|protocol| protocol.out_received(data));
            }
            ChildFd::Err => self.process.with_protocol(|protocol| protocol.err_received(data)),
            ChildFd::In => {}
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::LoseConnection
    }

    fn connection_lost(&mut self, _reason: Reason) {
        self.process.pipe_lost(self.which);
    }
}

/// A running (or finished) child process: the handle given to
/// [`ProcessProtocol::connection_made`] and returned by [`Reactor::spawn_process`]. Cheap to
/// clone.
///
/// As a [`Transport`]: `write` goes to stdin (or the pty), `write_eof` closes stdin (a pty
/// has no half-close: use the terminal's EOF character, usually `^D`), `pause_producing`
/// stops reading stdout and stderr, `lose_connection` closes every pipe once stdin drains,
/// `abort_connection` closes them now. None of these signals the child.
#[derive(Clone)]
pub struct Process {
    shared: Rc<ProcessShared>,
}

impl Process {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// How the child ended, once it has been reaped.
    pub fn status(&self) -> Option<ProcessStatus> {
        self.shared.status.get()
    }

    /// Whether the child runs on a pty.
    pub fn is_pty(&self) -> bool {
        self.shared.pty
    }

    /// The path of the child's terminal (`/dev/pts/3`), with a pty.
    pub fn tty_path(&self) -> Option<&Path> {
        self.shared.tty.as_deref()
    }

    /// Sends `signal` to the child.
    ///
    /// # Errors
    ///
    /// The child has been reaped (its pid may belong to someone else now:
    /// [`ErrorKind::InvalidInput`]), or the OS refused (`EPERM`).
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.kill(signal, false)
    }

    /// Sends `signal` to the child's process group (a session started with a pty or
    /// [`ProcessOptions::new_session`] leads its own group).
    ///
    /// # Errors
    ///
    /// As for [`signal`](Self::signal).
    pub fn signal_group(&self, signal: Signal) -> Result<(), Error> {
        self.kill(signal, true)
    }

    /// Sends the signal numbered `signal` to the child's process group: for signals
    /// [`Signal`] does not name (`SIGABRT`, `SIGSEGV`, ... as SSH's `signal` request may).
    ///
    /// # Errors
    ///
    /// As for [`signal`](Self::signal).
    pub fn signal_group_number(&self, signal: i32) -> Result<(), Error> {
        self.kill_number(signal, true)
    }

    fn kill(&self, signal: Signal, group: bool) -> Result<(), Error> {
        self.kill_number(signal.as_raw(), group)
    }

    fn kill_number(&self, raw: i32, group: bool) -> Result<(), Error> {
        if self.shared.status.get().is_some() {
            return Err(Error::new(ErrorKind::InvalidInput, "signal a reaped process"));
        }
        if let Some(foreign) = &self.shared.foreign {
            return foreign(raw, group);
        }
        let pid = i32::try_from(self.shared.pid)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "pid out of range"))?;
        let pid = Pid::from_raw(if group { -pid } else { pid });
        let signal = nix::sys::signal::Signal::try_from(raw)
            .map_err(|err| Error::from_errno(err as i32, "signal number"))?;
        nix::sys::signal::kill(pid, signal)
            .map_err(|err| Error::from_errno(err as i32, format!("signal process {}", self.pid())))
    }

    /// Sets the pty's window size; the child's foreground job gets SIGWINCH.
    ///
    /// # Errors
    ///
    /// The child has no pty ([`ErrorKind::InvalidInput`]) or the pty is closed.
    pub fn resize(&self, size: WindowSize) -> Result<(), Error> {
        self.with_pty(|fd| sys::pty::set_window_size(fd.as_fd(), size.to_raw()))
    }

    /// The pty's window size.
    ///
    /// # Errors
    ///
    /// As for [`resize`](Self::resize).
    pub fn window_size(&self) -> Result<WindowSize, Error> {
        let raw = self.with_pty(|fd| sys::pty::window_size(fd.as_fd()))?;
        Ok(WindowSize::new(raw.rows, raw.columns).with_pixels(raw.width, raw.height))
    }

    /// The pty's terminal modes.
    ///
    /// # Errors
    ///
    /// As for [`resize`](Self::resize).
    pub fn termios(&self) -> Result<termios::Termios, Error> {
        self.with_pty(|fd| termios::tcgetattr(fd).map_err(std::io::Error::from))
    }

    /// Sets the pty's terminal modes (now, `TCSANOW`).
    ///
    /// # Errors
    ///
    /// As for [`resize`](Self::resize).
    pub fn set_termios(&self, modes: &termios::Termios) -> Result<(), Error> {
        self.with_pty(|fd| {
            termios::tcsetattr(fd, termios::SetArg::TCSANOW, modes).map_err(std::io::Error::from)
        })
    }

    /// Sends a break on the pty (`tcsendbreak`, RFC 4335's `break`); on Linux a pty takes it
    /// without effect, as sshd relies on.
    ///
    /// # Errors
    ///
    /// As for [`resize`](Self::resize).
    pub fn send_break(&self) -> Result<(), Error> {
        self.with_pty(|fd| termios::tcsendbreak(fd, 0).map_err(std::io::Error::from))
    }

    fn with_pty<R>(
        &self,
        f: impl FnOnce(&std::fs::File) -> std::io::Result<R>,
    ) -> Result<R, Error> {
        if !self.shared.pty {
            return Err(Error::new(ErrorKind::InvalidInput, "the process has no pty"));
        }
        let stream = self.shared.input.borrow().clone();
        let closed = || Error::new(ErrorKind::InvalidInput, "the pty is closed");
        let result = stream.and_then(|stream| stream.with_fd(f)).ok_or_else(closed)?;
        result.map_err(|err| Error::from_io(&err, "pty control"))
    }

    fn input(&self) -> Option<Rc<Stream>> {
        self.shared.input.borrow().clone()
    }

    /// Duplicates the child's descriptors (our ends), for handing them to another process;
    /// this process's own ends stay open until [`Transport::abort_connection`].
    ///
    /// # Errors
    ///
    /// A descriptor is already closed, or could not be duplicated.
    pub fn duplicate_fds(&self) -> Result<ChildFds, Error> {
        let closed = || Error::new(ErrorKind::InvalidInput, "the process's descriptors are closed");
        let dup = |slot: &RefCell<Option<Rc<Stream>>>| -> Result<OwnedFd, Error> {
            let stream = slot.borrow().clone().ok_or_else(closed)?;
            let file = stream.with_fd(std::fs::File::try_clone).ok_or_else(closed)?;
            file.map(OwnedFd::from).map_err(|err| Error::from_io(&err, "duplicate a descriptor"))
        };
        if self.shared.pty {
            return Ok(ChildFds::Pty {
                controller: dup(&self.shared.input)?,
                tty: self.shared.tty.clone(),
            });
        }
        Ok(ChildFds::Pipes {
            stdin: dup(&self.shared.input)?,
            stdout: dup(&self.shared.stdout)?,
            stderr: dup(&self.shared.stderr)?,
        })
    }

    /// A foreign child ([`Reactor::adopt_foreign_process`]) ended with `status`, as the
    /// process that forked it reported. Ignored for our own children and after the first.
    pub fn foreign_exited(&self, status: ProcessStatus) {
        if self.shared.foreign.is_none() || self.shared.status.get().is_some() {
            return;
        }
        self.shared.status.set(Some(status));
        self.shared.with_protocol(|protocol| protocol.process_exited(status));
        self.shared.maybe_ended();
    }
}

impl Transport for Process {
    fn write(&self, data: &[u8]) {
        if let Some(input) = self.input() {
            input.write(data);
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        if let Some(input) = self.input() {
            input.write_sequence(data);
        }
    }

    fn lose_connection(&self) {
        for stream in self.shared.streams() {
            stream.lose_connection();
        }
    }

    fn abort_connection(&self) {
        for stream in self.shared.streams() {
            stream.abort_connection();
        }
    }

    fn write_eof(&self) {
        if let Some(input) = self.input() {
            input.write_eof();
        }
    }

    fn peer(&self) -> Address {
        Address::Process(self.shared.pid)
    }

    fn host(&self) -> Address {
        Address::Process(std::process::id())
    }

    fn buffered(&self) -> usize {
        self.input().map_or(0, |input| input.buffered())
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        if let Some(input) = self.input() {
            input.register_producer(producer);
        }
    }

    fn unregister_producer(&self) {
        if let Some(input) = self.input() {
            input.unregister_producer();
        }
    }

    fn pause_producing(&self) {
        for stream in self.shared.output_streams() {
            stream.pause_producing();
        }
    }

    fn resume_producing(&self) {
        for stream in self.shared.output_streams() {
            stream.resume_producing();
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.shared.pid)
            .field("pty", &self.shared.pty)
            .field("status", &self.shared.status.get())
            .finish()
    }
}

impl Reactor {
    /// Starts a child process as `options` describe; its events go to `protocol`, starting
    /// with `connection_made` from the loop.
    ///
    /// # Errors
    ///
    /// The program was not found or not executable, a credential or descriptor step failed in
    /// the child (reported with the child's errno), or pipes or a pty could not be opened.
    pub fn spawn_process(
        &self,
        options: ProcessOptions,
        protocol: impl ProcessProtocol + 'static,
    ) -> Result<Process, Error> {
        self.watch_children()?;
        let program = options.program.to_string_lossy().into_owned();
        let context = |what: &str| format!("spawn {program}: {what}");
        let mut env = child_environment(&options);
        let mut setup = sys::process::ChildSetup {
            new_session: options.new_session || options.pty.is_some(),
            controlling_terminal: options.pty.is_some(),
            close_other_fds: options.close_other_fds,
            inherit: options.inherit.iter().map(|(fd, target)| (fd.as_raw_fd(), *target)).collect(),
            ..sys::process::ChildSetup::default()
        };
        if let Some(credentials) = &options.credentials {
            setup.groups = Some(resolve_groups(credentials)?);
            setup.gid = Some(credentials.gid);
            setup.uid = Some(credentials.uid);
        }
        // The child's ends: a pty's terminal (all three), or three pipe ends. Closed here once
        // the child has them.
        let (parent, theirs) = match &options.pty {
            Some(pty) => {
                let (controller, terminal) = sys::pty::open(pty.size.to_raw(), pty.modes.as_ref())
                    .map_err(|err| Error::from_io(&err, context("open a pty")))?;
                let path = nix::unistd::ttyname(&terminal);
                if let Some(name) = &options.tty_env {
                    let path = path
                        .as_ref()
                        .map_err(|err| Error::from_errno(*err as i32, context("name the pty")))?;
                    env.insert(name.clone(), path.clone().into_os_string());
                }
                if let Some(owner) = options.pty_owner {
                    give_terminal(&terminal, owner)
                        .map_err(|err| Error::from_errno(err as i32, context("own the pty")))?;
                }
                (ParentFds::Pty { controller, path: path.ok() }, ChildEnds::Terminal(terminal))
            }
            None => {
                // Standard input and output carry bulk data: larger pipes, fewer wakeups.
                // Standard error keeps the default (and the user's pipe quota).
                let pipe = |size: Option<usize>| {
                    size.map_or_else(sys::fd::pipe, sys::fd::pipe_sized)
                        .map_err(|err| Error::from_io(&err, context("pipe")))
                };
                let (in_read, in_write) = pipe(Some(sys::fd::CHILD_PIPE_SIZE))?;
                let (out_read, out_write) = pipe(Some(sys::fd::CHILD_PIPE_SIZE))?;
                let (err_read, err_write) = pipe(None)?;
                (
                    ParentFds::Pipes { stdin: in_write, stdout: out_read, stderr: err_read },
                    ChildEnds::Pipes([in_read, out_write, err_write]),
                )
            }
        };
        let stdio = match &theirs {
            ChildEnds::Terminal(terminal) => [terminal.as_fd(); 3],
            ChildEnds::Pipes([stdin, stdout, stderr]) => {
                [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]
            }
        };
        let argv = iter::once(options.arg0.as_ref().unwrap_or(&options.program))
            .chain(&options.args)
            .cloned()
            .collect();
        let spawn = sys::process::Spawn {
            program: options.program.clone(),
            argv,
            env: env.into_iter().collect(),
            cwd: options.cwd.clone(),
            stdio,
            setup,
        };
        let pid =
            sys::process::spawn(&spawn).map_err(|err| Error::from_io(&err, context("exec")))?;
        drop(spawn);
        drop(theirs);
        drop(options);
        self.adopt_child(pid, parent, Box::new(protocol), None)
    }

    /// Serves a child that another process forked and whose descriptors it passed us (a
    /// privilege-separated server's session): events go to `protocol` as for
    /// [`spawn_process`](Self::spawn_process), except that this process cannot reap it —
    /// call [`Process::foreign_exited`] when its parent reports its end — nor signal it:
    /// `signal(signal, to_group)` asks its parent to.
    ///
    /// # Errors
    ///
    /// A descriptor could not be registered with the reactor.
    pub fn adopt_foreign_process(
        &self,
        pid: u32,
        fds: ChildFds,
        protocol: impl ProcessProtocol + 'static,
        signal: impl Fn(i32, bool) -> Result<(), Error> + 'static,
    ) -> Result<Process, Error> {
        let parent = match fds {
            ChildFds::Pty { controller, tty } => ParentFds::Pty { controller, path: tty },
            ChildFds::Pipes { stdin, stdout, stderr } => ParentFds::Pipes { stdin, stdout, stderr },
        };
        self.adopt_child(pid, parent, Box::new(protocol), Some(Box::new(signal)))
    }

    fn adopt_child(
        &self,
        pid: u32,
        parent: ParentFds,
        protocol: Box<dyn ProcessProtocol>,
        foreign: Option<Box<ForeignSignal>>,
    ) -> Result<Process, Error> {
        let ours = foreign.is_none();
        let tty = match &parent {
            ParentFds::Pty { path, .. } => path.clone(),
            ParentFds::Pipes { .. } => None,
        };
        let pty = matches!(parent, ParentFds::Pty { .. });
        let shared = Rc::new(ProcessShared {
            pid,
            protocol: RefCell::new(Some(protocol)),
            input: RefCell::new(None),
            stdout: RefCell::new(None),
            stderr: RefCell::new(None),
            pty,
            tty,
            status: Cell::new(None),
            open: Cell::new(0),
            ended: Cell::new(false),
            foreign,
        });
        let process = Process { shared: Rc::clone(&shared) };
        let made = process.clone();
        self.call_soon(move || {
            let handle = made.clone();
            made.shared.with_protocol(|protocol| protocol.connection_made(handle));
        });
        if ours {
            self.inner.children.borrow_mut().insert(pid, shared.clone());
        }
        let inner = Rc::clone(&self.inner);
        let open = |kind, fds, which| {
            let pipe = Box::new(ChildPipe { process: Rc::clone(&shared), which });
            let address = Address::Process(pid);
            Stream::open(&inner, kind, fds, address.clone(), address, pipe)
        };
        match parent {
            ParentFds::Pty { controller, .. } => {
                let stream =
                    open(StreamKind::Pty, StreamFds::Duplex(controller, None), ChildFd::Pty)?;
                *shared.input.borrow_mut() = Some(stream);
                shared.open.set(1);
            }
            ParentFds::Pipes { stdin, stdout, stderr } => {
                let input = open(
                    StreamKind::Pipe,
                    StreamFds::Split { read: None, write: Some(stdin) },
                    ChildFd::In,
                )?;
                *shared.input.borrow_mut() = Some(input);
                let output = open(
                    StreamKind::Pipe,
                    StreamFds::Split { read: Some(stdout), write: None },
                    ChildFd::Out,
                )?;
                *shared.stdout.borrow_mut() = Some(output);
                let errors = open(
                    StreamKind::Pipe,
                    StreamFds::Split { read: Some(stderr), write: None },
                    ChildFd::Err,
                )?;
                *shared.stderr.borrow_mut() = Some(errors);
                shared.open.set(3);
            }
        }
        if ours {
            let reaper = self.clone();
            self.call_soon(move || reaper.reap_children());
        }
        Ok(process)
    }
}

enum ParentFds {
    Pty { controller: OwnedFd, path: Option<PathBuf> },
    Pipes { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
}

/// The child's ends of its descriptors, until it has them.
enum ChildEnds {
    /// A pty's terminal: the child's stdin, stdout and stderr.
    Terminal(OwnedFd),
    /// Its stdin's reading end, its stdout's and stderr's writing ends.
    Pipes([OwnedFd; 3]),
}

/// The child's environment, as the standard library's `Command` builds it: the parent's (unless
/// cleared) with the options' variables set over it, in order; sorted by name.
fn child_environment(options: &ProcessOptions) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> =
        if options.env_clear { BTreeMap::new() } else { std::env::vars_os().collect() };
    for (key, value) in &options.env {
        env.insert(key.clone(), value.clone());
    }
    env
}

/// Gives the terminal behind `terminal` to `owner`: owner and group, then mode.
fn give_terminal(terminal: &OwnedFd, owner: PtyOwner) -> nix::Result<()> {
    let (uid, gid) = (nix::unistd::Uid::from_raw(owner.uid), nix::unistd::Gid::from_raw(owner.gid));
    nix::unistd::fchown(terminal, Some(uid), Some(gid))?;
    let mode = nix::sys::stat::Mode::from_bits_truncate(owner.mode);
    nix::sys::stat::fchmod(terminal, mode)
}

impl Groups {
    /// The group ids these are, for a user whose primary group is `gid`: [`Only`](Self::Only)'s
    /// list, or [`OfUser`](Self::OfUser)'s from the group database (`getgrouplist`, which
    /// includes `gid`). Blocking: NSS may read files or ask a daemon.
    ///
    /// # Errors
    ///
    /// The user name holds a NUL byte, or the group database cannot be read.
    pub fn resolve(&self, gid: u32) -> Result<Vec<u32>, Error> {
        match self {
            Self::Only(groups) => Ok(groups.clone()),
            Self::OfUser(user) => {
                let name = CString::new(OsStr::new(user).as_bytes()).map_err(|_| {
                    Error::new(ErrorKind::InvalidInput, "user name with a NUL byte")
                })?;
                let groups = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
                    .map_err(|err| Error::from_errno(err as i32, format!("groups of {user}")))?;
                Ok(groups.into_iter().map(nix::unistd::Gid::as_raw).collect())
            }
        }
    }
}

/// Resolves the supplementary group list in the parent (reading the group database is not
/// safe in the child before exec).
fn resolve_groups(credentials: &Credentials) -> Result<Vec<libc::gid_t>, Error> {
    credentials.groups.resolve(credentials.gid)
}

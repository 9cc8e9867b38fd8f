//! Layered failures.
//!
//! An [`Error`] says three things, from the most to the least portable: *that* something
//! failed (the value itself and its context), *how* it failed ([`ErrorKind`], the same on every
//! platform), and *what the OS said* ([`Error::raw_os_error`], the errno when there was one).
//! [`Reason`] is why a connection ended, as handed to `Protocol::connection_lost`.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// How an operation failed, in portable terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peer refused the connection (`ECONNREFUSED`).
    ConnectionRefused,
    /// The peer reset the connection (`ECONNRESET`).
    ConnectionReset,
    /// The connection was aborted locally or by the network (`ECONNABORTED`).
    ConnectionAborted,
    /// Writing to a connection whose reading end is gone (`EPIPE`).
    BrokenPipe,
    /// An operation did not finish in time (a connect timeout, `ETIMEDOUT`).
    TimedOut,
    /// The address is already in use (`EADDRINUSE`).
    AddrInUse,
    /// The address is not available on this host (`EADDRNOTAVAIL`).
    AddrNotAvailable,
    /// No route to the host or network (`EHOSTUNREACH`, `ENETUNREACH`).
    Unreachable,
    /// A file or socket path does not exist (`ENOENT`).
    NotFound,
    /// The OS denied permission (`EACCES`, `EPERM`).
    PermissionDenied,
    /// An argument was invalid: a bad address, a bad flag combination.
    InvalidInput,
    /// A name could not be resolved.
    NameResolution,
    /// A limit was reached: a buffer bound, a pool size, the fd table (`EMFILE`).
    LimitReached,
    /// The operation was cancelled before it finished.
    Cancelled,
    /// The reactor is not running or has stopped.
    ReactorStopped,
    /// A child process failed to start.
    ProcessSpawn,
    /// Any other failure; the raw OS error, if any, says more.
    Other,
}

impl ErrorKind {
    /// A short lower-case description, as used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionRefused => "connection refused",
            Self::ConnectionReset => "connection reset by peer",
            Self::ConnectionAborted => "connection aborted",
            Self::BrokenPipe => "broken pipe",
            Self::TimedOut => "timed out",
            Self::AddrInUse => "address already in use",
            Self::AddrNotAvailable => "address not available",
            Self::Unreachable => "no route to host",
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::InvalidInput => "invalid input",
            Self::NameResolution => "name resolution failed",
            Self::LimitReached => "limit reached",
            Self::Cancelled => "cancelled",
            Self::ReactorStopped => "reactor stopped",
            Self::ProcessSpawn => "process failed to start",
            Self::Other => "error",
        }
    }

    fn from_io(kind: io::ErrorKind, errno: Option<i32>) -> Self {
        match errno {
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => return Self::Unreachable,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                return Self::LimitReached
            }
            _ => {}
        }
        match kind {
            io::ErrorKind::ConnectionRefused => Self::ConnectionRefused,
            io::ErrorKind::ConnectionReset => Self::ConnectionReset,
            io::ErrorKind::ConnectionAborted => Self::ConnectionAborted,
            io::ErrorKind::BrokenPipe => Self::BrokenPipe,
            io::ErrorKind::TimedOut => Self::TimedOut,
            io::ErrorKind::AddrInUse => Self::AddrInUse,
            io::ErrorKind::AddrNotAvailable => Self::AddrNotAvailable,
            io::ErrorKind::NotFound => Self::NotFound,
            io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            io::ErrorKind::InvalidInput => Self::InvalidInput,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure: what was being done, how it failed, and the OS's own error code if it gave one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    os: Option<i32>,
    context: Cow<'static, str>,
}

impl Error {
    /// A failure of `kind` while doing `context` ("connect to 127.0.0.1:22").
    pub fn new(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Self { kind, os: None, context: context.into() }
    }

    /// Wraps an OS error, keeping its errno, with what was being done.
    pub fn from_io(err: &io::Error, context: impl Into<Cow<'static, str>>) -> Self {
        let os = err.raw_os_error();
        Self { kind: ErrorKind::from_io(err.kind(), os), os, context: context.into() }
    }

    /// Wraps a raw errno, with what was being done.
    pub fn from_errno(errno: i32, context: impl Into<Cow<'static, str>>) -> Self {
        Self::from_io(&io::Error::from_raw_os_error(errno), context)
    }

    /// How it failed.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno the OS reported, if the failure came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.os
    }

    /// What was being done when it failed.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The same failure with a different description of what was being done.
    #[must_use]
    pub fn with_context(mut self, context: impl Into<Cow<'static, str>>) -> Self {
        self.context = context.into();
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        match self.os {
            Some(errno) => write!(f, "{}", io::Error::from_raw_os_error(errno)),
            None => f.write_str(self.kind.as_str()),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Self::from_io(&err, "")
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err.os {
            Some(errno) => Self::from_raw_os_error(errno),
            None => Self::other(err),
        }
    }
}

/// Why a connection ended, as handed to `Protocol::connection_lost`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The connection was closed cleanly: `lose_connection` after the buffer drained, or the
    /// peer closed both directions in order (Twisted's `ConnectionDone`).
    Done,
    /// This side called `abort_connection`; unwritten data was discarded.
    Aborted,
    /// The connection failed (Twisted's `ConnectionLost`): a reset, a timeout, an I/O error.
    Lost(Error),
}

impl Reason {
    /// Whether the connection ended cleanly.
    pub fn is_clean(&self) -> bool {
        matches!(self, Self::Done)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done => f.write_str("connection closed cleanly"),
            Self::Aborted => f.write_str("connection aborted locally"),
            Self::Lost(err) => write!(f, "connection lost: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OS error keeps its errno and maps to a portable kind.
    #[test]
    fn keeps_the_raw_errno_and_a_portable_kind() {
        let err = Error::from_errno(libc::ECONNREFUSED, "connect to 127.0.0.1:1");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
        assert!(err.to_string().starts_with("connect to 127.0.0.1:1: "));
    }

    /// Unreachable networks map to one portable kind whichever errno the OS chose.
    #[test]
    fn maps_both_unreachable_errnos_to_one_kind() {
        for errno in [libc::ENETUNREACH, libc::EHOSTUNREACH] {
            assert_eq!(Error::from_errno(errno, "").kind(), ErrorKind::Unreachable);
        }
    }

    /// A failure that did not come from the OS has no errno and says its kind.
    #[test]
    fn a_failure_without_errno_prints_its_kind() {
        let err = Error::new(ErrorKind::TimedOut, "connect to [::1]:2222");
        assert_eq!(err.raw_os_error(), None);
        assert_eq!(err.to_string(), "connect to [::1]:2222: timed out");
    }
}

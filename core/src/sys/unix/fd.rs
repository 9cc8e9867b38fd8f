//! Descriptor flags and socket half-close.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{recv, send, shutdown, MsgFlags, Shutdown};
use nix::unistd::pipe2;

/// Puts `fd` in (or out of) non-blocking mode.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if on { flags | OFlag::O_NONBLOCK } else { flags - OFlag::O_NONBLOCK };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Marks `fd` close-on-exec, so that children do not inherit it.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Shuts down the sending half of a socket. Not a socket (a pipe): `ENOTSOCK`.
pub(crate) fn shutdown_write(fd: impl AsFd) -> io::Result<()> {
    shutdown(fd.as_fd().as_raw_fd(), Shutdown::Write)?;
    Ok(())
}

/// Reads from a connected socket with `recv`: the same bytes as `read`, through a shorter path
/// in the kernel (no file-level accounting or change notification).
pub(crate) fn recv_from_socket(fd: impl AsFd, buffer: &mut [u8]) -> io::Result<usize> {
    Ok(recv(fd.as_fd().as_raw_fd(), buffer, MsgFlags::empty())?)
}

/// Writes to a connected socket with `send(MSG_NOSIGNAL)`: like `write` (Rust programs ignore
/// `SIGPIPE`, so a closed peer is `EPIPE` either way), through a shorter path in the kernel.
pub(crate) fn send_to_socket(fd: impl AsFd, data: &[u8]) -> io::Result<usize> {
    Ok(send(fd.as_fd().as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL)?)
}

/// A close-on-exec pipe: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

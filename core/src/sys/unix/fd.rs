//! Descriptor flags and socket half-close.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

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

/// The capacity asked of the pipes for a child's standard input and output: bulk data through a
/// 64 KiB pipe costs a wakeup on each side for every 64 KiB.
pub(crate) const CHILD_PIPE_SIZE: usize = 1024 * 1024;

/// A close-on-exec pipe grown to `size` bytes where the kernel allows it (Linux; past
/// `/proc/sys/fs/pipe-max-size` or an unprivileged user's pipe quota it refuses, and the pipe
/// keeps its default size). Elsewhere a plain pipe.
pub(crate) fn pipe_sized(size: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe()?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(size) = i32::try_from(size) {
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(size));
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = size;
    Ok((read, write))
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn capacity(fd: &OwnedFd) -> usize {
        usize::try_from(fcntl(fd, FcntlArg::F_GETPIPE_SZ).unwrap()).unwrap()
    }

    /// Where the kernel's limit allows it, the pipe holds what was asked.
    #[test]
    fn a_sized_pipe_holds_what_was_asked_within_the_kernel_limit() {
        let limit: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        let (read, write) = pipe_sized(CHILD_PIPE_SIZE).unwrap();
        if limit >= CHILD_PIPE_SIZE {
            assert_eq!(capacity(&write), CHILD_PIPE_SIZE);
            assert_eq!(capacity(&read), CHILD_PIPE_SIZE);
        }
    }

    /// A size out of the range fcntl takes leaves a pipe of the default size.
    #[test]
    fn a_size_out_of_range_leaves_a_default_pipe() {
        let (_, default) = pipe().unwrap();
        let (_read, write) = pipe_sized(usize::MAX).unwrap();
        assert_eq!(capacity(&write), capacity(&default));
    }
}

/// Adds `fd` to the epoll instance `epoll` for readability, edge-triggered, with
/// `EPOLLEXCLUSIVE`: when several epoll instances (reactors, processes) wait on the same
/// descriptor, an event wakes one of the waiting ones instead of all. Events carry `token`, as
/// mio's own registrations do, and mio's `deregister` removes the descriptor again.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_add_exclusive(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    // Only these flags may accompany EPOLLEXCLUSIVE (EPOLLRDHUP may not); the bit patterns are
    // small positive constants.
    #[allow(clippy::cast_sign_loss)]
    let events = (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32;
    let mut event = libc::epoll_event { events, u64: token };
    // SAFETY: epoll_ctl reads the one `epoll_event` the pointer refers to, a live local, and
    // keeps no pointer to it; the descriptors are plain integers (a wrong one is EBADF).
    let rc = unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &raw mut event) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

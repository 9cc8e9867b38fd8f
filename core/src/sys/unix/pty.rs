//! Pseudo-terminals: opening a pair, window sizes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::pty::{openpty, Winsize};
use nix::sys::termios::Termios;

/// A terminal's size in character cells and pixels (`struct winsize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawWindowSize {
    pub(crate) rows: u16,
    pub(crate) columns: u16,
    pub(crate) width: u16,
    pub(crate) height: u16,
}

impl RawWindowSize {
    fn to_winsize(self) -> Winsize {
        Winsize {
            ws_row: self.rows,
            ws_col: self.columns,
            ws_xpixel: self.width,
            ws_ypixel: self.height,
        }
    }
}

/// Opens a pty pair with the given size and modes; returns `(controller, terminal)`. The
/// controller end is close-on-exec and non-blocking; the terminal end is for the child.
pub(crate) fn open(
    size: RawWindowSize,
    termios: Option<&Termios>,
) -> io::Result<(OwnedFd, OwnedFd)> {
    let pair = openpty(&size.to_winsize(), termios)?;
    super::fd::set_cloexec(std::os::fd::AsFd::as_fd(&pair.master))?;
    super::fd::set_cloexec(std::os::fd::AsFd::as_fd(&pair.slave))?;
    super::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&pair.master), true)?;
    Ok((pair.master, pair.slave))
}

/// Sets the window size of the terminal behind `fd` (either end); the kernel then sends
/// `SIGWINCH` to the terminal's foreground process group.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, size: RawWindowSize) -> io::Result<()> {
    let winsize = size.to_winsize();
    // SAFETY: `fd` is a live descriptor borrowed for this call, and TIOCSWINSZ reads exactly one
    // `struct winsize` (which `Winsize` is, `repr(C)`) through the pointer, which outlives the
    // call. A descriptor that is not a terminal fails with ENOTTY; nothing else is touched.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &raw const winsize) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the window size of the terminal behind `fd`.
pub(crate) fn window_size(fd: BorrowedFd<'_>) -> io::Result<RawWindowSize> {
    let mut winsize = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: as above; TIOCGWINSZ writes exactly one `struct winsize` into the live, exclusively
    // borrowed `winsize`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &raw mut winsize) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(RawWindowSize {
        rows: winsize.ws_row,
        columns: winsize.ws_col,
        width: winsize.ws_xpixel,
        height: winsize.ws_ypixel,
    })
}

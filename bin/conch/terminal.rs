//! The local terminal: raw mode while a remote pty session runs, restored on every way out
//! (the session ending, an error, a signal, `~^Z`), and its window size.

use std::io::IsTerminal as _;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use twine_conch::client::WindowSize;
use twine_core::process::termios::{self, SetArg, Termios};

/// The modes to restore, while raw mode is on.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);
static RAW: AtomicBool = AtomicBool::new(false);

/// Whether raw mode is on (log lines then need `\r\n`).
pub(crate) fn raw_active() -> bool {
    RAW.load(Ordering::Relaxed)
}

/// Whether standard input is a terminal.
pub(crate) fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Puts standard input's terminal into raw mode (OpenSSH's `enter_raw_mode`), saving its modes.
pub(crate) fn enter_raw_mode() {
    let stdin = std::io::stdin();
    let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else { return };
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    // Output post-processing stays on, as OpenSSH leaves it: `\n` still returns the carriage.
    raw.output_flags |= termios::OutputFlags::OPOST;
    if termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).is_ok() {
        if let Ok(mut slot) = SAVED.lock() {
            if slot.is_none() {
                *slot = Some(saved);
            }
        }
        RAW.store(true, Ordering::Relaxed);
    }
}

/// Restores the modes saved by [`enter_raw_mode`], if raw mode is on.
pub(crate) fn leave_raw_mode() {
    let saved = SAVED.lock().ok().and_then(|mut slot| slot.take());
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &saved);
    }
    RAW.store(false, Ordering::Relaxed);
}

/// The terminal's size (of standard input, else standard output), or 80 × 24.
pub(crate) fn window_size() -> WindowSize {
    let size = terminal_size::terminal_size_of(std::io::stdin())
        .or_else(|| terminal_size::terminal_size_of(std::io::stdout()));
    match size {
        Some((terminal_size::Width(cols), terminal_size::Height(rows))) => {
            WindowSize { cols: u32::from(cols), rows: u32::from(rows), width_px: 0, height_px: 0 }
        }
        None => WindowSize { cols: 80, rows: 24, width_px: 0, height_px: 0 },
    }
}

/// Restores the terminal when dropped: held by `main` so that every return path restores it.
#[derive(Debug)]
pub(crate) struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        leave_raw_mode();
    }
}

/// Stops this process as `~^Z` does: the terminal restored while stopped, raw again after.
pub(crate) fn suspend() {
    let was_raw = raw_active();
    leave_raw_mode();
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTSTP);
    if was_raw {
        enter_raw_mode();
    }
}

/// The local terminal's modes for `pty-req` (the control characters and the common flags),
/// so that the remote terminal behaves as this one; empty without a terminal.
pub(crate) fn modes() -> twine_conch::client::TerminalModes {
    use twine_conch::connection::msgs::TerminalMode as M;
    use twine_core::process::termios::{
        ControlFlags as C, InputFlags as I, LocalFlags as L, OutputFlags as O,
        SpecialCharacterIndices as Cc,
    };
    let mut modes = twine_conch::client::TerminalModes::new();
    let Ok(termios) = termios::tcgetattr(std::io::stdin().as_fd()) else { return modes };
    let chars = [
        (M::VINTR, Cc::VINTR),
        (M::VQUIT, Cc::VQUIT),
        (M::VERASE, Cc::VERASE),
        (M::VKILL, Cc::VKILL),
        (M::VEOF, Cc::VEOF),
        (M::VEOL, Cc::VEOL),
        (M::VEOL2, Cc::VEOL2),
        (M::VSTART, Cc::VSTART),
        (M::VSTOP, Cc::VSTOP),
        (M::VSUSP, Cc::VSUSP),
        (M::VREPRINT, Cc::VREPRINT),
        (M::VWERASE, Cc::VWERASE),
        (M::VLNEXT, Cc::VLNEXT),
    ];
    for (mode, index) in chars {
        if let Some(&byte) = termios.control_chars.get(index as usize) {
            // 0 means disabled locally; the protocol says 255.
            modes.insert(mode, if byte == 0 { 255 } else { u32::from(byte) });
        }
    }
    let input = [
        (M::IGNPAR, I::IGNPAR),
        (M::ICRNL, I::ICRNL),
        (M::IXON, I::IXON),
        (M::IXANY, I::IXANY),
        (M::IMAXBEL, I::IMAXBEL),
    ];
    for (mode, flag) in input {
        modes.insert(mode, u32::from(termios.input_flags.contains(flag)));
    }
    let local = [
        (M::ISIG, L::ISIG),
        (M::ICANON, L::ICANON),
        (M::ECHO, L::ECHO),
        (M::ECHOE, L::ECHOE),
        (M::ECHOK, L::ECHOK),
        (M::ECHONL, L::ECHONL),
        (M::IEXTEN, L::IEXTEN),
        (M::ECHOCTL, L::ECHOCTL),
        (M::ECHOKE, L::ECHOKE),
    ];
    for (mode, flag) in local {
        modes.insert(mode, u32::from(termios.local_flags.contains(flag)));
    }
    for (mode, flag) in [(M::OPOST, O::OPOST), (M::ONLCR, O::ONLCR)] {
        modes.insert(mode, u32::from(termios.output_flags.contains(flag)));
    }
    for (mode, flag) in [(M::CS8, C::CS8), (M::PARENB, C::PARENB)] {
        modes.insert(mode, u32::from(termios.control_flags.contains(flag)));
    }
    modes
}

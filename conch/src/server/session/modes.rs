//! Terminal modes (RFC 4254 §8) applied to a pty's `termios`, as sshd's `tty_parse_modes`.

use nix::sys::termios::{
    cfsetispeed, cfsetospeed, BaudRate, ControlFlags, InputFlags, LocalFlags, OutputFlags,
    SpecialCharacterIndices as Cc, Termios,
};

use crate::connection::msgs::{TerminalMode as M, TerminalModes};

/// The value RFC 4254 uses for "no character", mapped to the platform's disabled value.
const DISABLED_CHAR: u32 = 255;

/// Applies every mode we know to `termios`; unknown opcodes and values are ignored, as sshd
/// ignores them.
pub(crate) fn apply(modes: &TerminalModes, termios: &mut Termios) {
    for (mode, value) in modes.iter() {
        if let Some(index) = control_char(mode) {
            let byte = if value == DISABLED_CHAR { 0 } else { u8::try_from(value).unwrap_or(0) };
            if let Some(slot) = termios.control_chars.get_mut(index as usize) {
                *slot = byte;
            }
            continue;
        }
        let on = value != 0;
        if let Some(flag) = input_flag(mode) {
            termios.input_flags.set(flag, on);
        } else if let Some(flag) = local_flag(mode) {
            termios.local_flags.set(flag, on);
        } else if let Some(flag) = output_flag(mode) {
            termios.output_flags.set(flag, on);
        } else if let Some(flag) = control_flag(mode) {
            termios.control_flags.set(flag, on);
        } else if mode == M::TTY_OP_ISPEED || mode == M::TTY_OP_OSPEED {
            let Some(rate) = baud_rate(value) else { continue };
            let result = if mode == M::TTY_OP_ISPEED {
                cfsetispeed(termios, rate)
            } else {
                cfsetospeed(termios, rate)
            };
            if let Err(err) = result {
                log::debug!("terminal speed {value}: {err}");
            }
        }
    }
}

fn control_char(mode: M) -> Option<Cc> {
    Some(match mode {
        M::VINTR => Cc::VINTR,
        M::VQUIT => Cc::VQUIT,
        M::VERASE => Cc::VERASE,
        M::VKILL => Cc::VKILL,
        M::VEOF => Cc::VEOF,
        M::VEOL => Cc::VEOL,
        M::VEOL2 => Cc::VEOL2,
        M::VSTART => Cc::VSTART,
        M::VSTOP => Cc::VSTOP,
        M::VSUSP => Cc::VSUSP,
        M::VREPRINT => Cc::VREPRINT,
        M::VWERASE => Cc::VWERASE,
        M::VLNEXT => Cc::VLNEXT,
        M::VDISCARD => Cc::VDISCARD,
        #[cfg(target_os = "linux")]
        M::VSWTCH => Cc::VSWTC,
        _ => return None,
    })
}

fn input_flag(mode: M) -> Option<InputFlags> {
    Some(match mode {
        M::IGNPAR => InputFlags::IGNPAR,
        M::PARMRK => InputFlags::PARMRK,
        M::INPCK => InputFlags::INPCK,
        M::ISTRIP => InputFlags::ISTRIP,
        M::INLCR => InputFlags::INLCR,
        M::IGNCR => InputFlags::IGNCR,
        M::ICRNL => InputFlags::ICRNL,
        #[cfg(target_os = "linux")]
        M::IUCLC => InputFlags::IUCLC,
        M::IXON => InputFlags::IXON,
        M::IXANY => InputFlags::IXANY,
        M::IXOFF => InputFlags::IXOFF,
        M::IMAXBEL => InputFlags::IMAXBEL,
        #[cfg(target_os = "linux")]
        M::IUTF8 => InputFlags::IUTF8,
        _ => return None,
    })
}

fn local_flag(mode: M) -> Option<LocalFlags> {
    Some(match mode {
        M::ISIG => LocalFlags::ISIG,
        M::ICANON => LocalFlags::ICANON,
        #[cfg(target_os = "linux")]
        M::XCASE => LocalFlags::XCASE,
        M::ECHO => LocalFlags::ECHO,
        M::ECHOE => LocalFlags::ECHOE,
        M::ECHOK => LocalFlags::ECHOK,
        M::ECHONL => LocalFlags::ECHONL,
        M::NOFLSH => LocalFlags::NOFLSH,
        M::TOSTOP => LocalFlags::TOSTOP,
        M::IEXTEN => LocalFlags::IEXTEN,
        M::ECHOCTL => LocalFlags::ECHOCTL,
        M::ECHOKE => LocalFlags::ECHOKE,
        M::PENDIN => LocalFlags::PENDIN,
        _ => return None,
    })
}

fn output_flag(mode: M) -> Option<OutputFlags> {
    Some(match mode {
        M::OPOST => OutputFlags::OPOST,
        #[cfg(target_os = "linux")]
        M::OLCUC => OutputFlags::OLCUC,
        M::ONLCR => OutputFlags::ONLCR,
        M::OCRNL => OutputFlags::OCRNL,
        M::ONOCR => OutputFlags::ONOCR,
        M::ONLRET => OutputFlags::ONLRET,
        _ => return None,
    })
}

fn control_flag(mode: M) -> Option<ControlFlags> {
    Some(match mode {
        M::CS7 => ControlFlags::CS7,
        M::CS8 => ControlFlags::CS8,
        M::PARENB => ControlFlags::PARENB,
        M::PARODD => ControlFlags::PARODD,
        _ => return None,
    })
}

/// The `termios` speed for `bps` bits per second, if it is a standard one.
fn baud_rate(bps: u32) -> Option<BaudRate> {
    Some(match bps {
        0 => BaudRate::B0,
        50 => BaudRate::B50,
        75 => BaudRate::B75,
        110 => BaudRate::B110,
        134 => BaudRate::B134,
        150 => BaudRate::B150,
        200 => BaudRate::B200,
        300 => BaudRate::B300,
        600 => BaudRate::B600,
        1200 => BaudRate::B1200,
        1800 => BaudRate::B1800,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Termios {
        let pty = nix::pty::openpty(None, None).unwrap();
        nix::sys::termios::tcgetattr(&pty.slave).unwrap()
    }

    /// Flags, control characters and speeds from `pty-req` land in the termios; 255 disables a
    /// character.
    #[test]
    fn applies_flags_characters_and_speeds() {
        let mut modes = TerminalModes::new();
        modes.insert(M::ECHO, 0);
        modes.insert(M::ICANON, 1);
        modes.insert(M::ICRNL, 0);
        modes.insert(M::ONLCR, 1);
        modes.insert(M::VINTR, 0x07);
        modes.insert(M::VQUIT, 255);
        modes.insert(M::TTY_OP_OSPEED, 9600);
        modes.insert(M(120), 1);
        let mut termios = base();
        termios.local_flags.insert(LocalFlags::ECHO);
        termios.input_flags.insert(InputFlags::ICRNL);
        apply(&modes, &mut termios);
        assert!(!termios.local_flags.contains(LocalFlags::ECHO));
        assert!(termios.local_flags.contains(LocalFlags::ICANON));
        assert!(!termios.input_flags.contains(InputFlags::ICRNL));
        assert!(termios.output_flags.contains(OutputFlags::ONLCR));
        assert_eq!(termios.control_chars[Cc::VINTR as usize], 0x07);
        assert_eq!(termios.control_chars[Cc::VQUIT as usize], 0);
        assert_eq!(nix::sys::termios::cfgetospeed(&termios), BaudRate::B9600);
    }
}

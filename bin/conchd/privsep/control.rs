//! What travels beside a session's descriptors: its plan (a `SpawnPlan` as the codec's
//! `SessionPlan`, terminal modes included) and the frames of its control socket.
//!
//! ```text
//!  control frame: byte tag · uint32 value · byte flag        (6 bytes)
//!    worker → monitor  'k' signal number · to the group?
//!    monitor → worker  'x' exit code · 0      's' signal number · core dumped?
//! ```

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use nix::sys::termios::Termios;
use twine::conch::server::privsep::{PtyPlan, SessionPlan};
use twine::conch::server::session::SpawnPlan;
use twine::conch::server::Account;
use twine::internet::process::{ProcessStatus, PtyOptions, WindowSize};

/// The length of one control frame.
pub(crate) const FRAME_LEN: usize = 6;

/// A control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Signal the session's process (or its group).
    Kill { signal: i32, group: bool },
    /// The process ended.
    Ended(ProcessStatus),
}

impl Frame {
    pub(crate) fn encode(self) -> [u8; FRAME_LEN] {
        let (tag, value, flag) = match self {
            Self::Kill { signal, group } => (b'k', signal, group),
            Self::Ended(ProcessStatus::Exited(code)) => (b'x', code, false),
            Self::Ended(ProcessStatus::Signaled { signal, core_dumped }) => {
                (b's', signal, core_dumped)
            }
            Self::Ended(_) => (b'x', 255, false),
        };
        let v = value.to_be_bytes();
        [tag, v[0], v[1], v[2], v[3], u8::from(flag)]
    }

    pub(crate) fn decode(bytes: [u8; FRAME_LEN]) -> Option<Self> {
        let [tag, a, b, c, d, flag] = bytes;
        let value = i32::from_be_bytes([a, b, c, d]);
        let flag = match flag {
            0 => false,
            1 => true,
            _ => return None,
        };
        match tag {
            b'k' => Some(Self::Kill { signal: value, group: flag }),
            b'x' => Some(Self::Ended(ProcessStatus::Exited(value))),
            b's' => Some(Self::Ended(ProcessStatus::Signaled { signal: value, core_dumped: flag })),
            _ => None,
        }
    }
}

/// Splits a byte stream into control frames.
#[derive(Default)]
pub(crate) struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Appends `data`; returns the complete frames, `None` at a malformed one.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Option<Vec<Frame>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(head) = self.buf.first_chunk::<FRAME_LEN>() {
            out.push(Frame::decode(*head)?);
            self.buf.drain(..FRAME_LEN);
        }
        Some(out)
    }
}

fn encode_termios(modes: &Termios) -> Vec<u8> {
    // From the public fields (what callers change), not the C struct they were read from.
    let mut out = Vec::new();
    for flags in [
        modes.input_flags.bits(),
        modes.output_flags.bits(),
        modes.control_flags.bits(),
        modes.local_flags.bits(),
    ] {
        out.extend_from_slice(&flags.to_be_bytes());
    }
    out.push(modes.line_discipline);
    out.extend_from_slice(&modes.control_chars);
    let speed = |s: nix::sys::termios::BaudRate| s as u32;
    out.extend_from_slice(&speed(nix::sys::termios::cfgetispeed(modes)).to_be_bytes());
    out.extend_from_slice(&speed(nix::sys::termios::cfgetospeed(modes)).to_be_bytes());
    out
}

fn decode_termios(bytes: &[u8]) -> Option<Termios> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(*bytes.get(at..at + 4)?.first_chunk::<4>()?))
    };
    let cc_at = 17;
    let cc_len = nix::libc::NCCS;
    let mut c_cc = [0; nix::libc::NCCS];
    c_cc.copy_from_slice(bytes.get(cc_at..cc_at + cc_len)?);
    let speeds = cc_at + cc_len;
    if bytes.len() != speeds + 8 {
        return None;
    }
    let raw = nix::libc::termios {
        c_iflag: word(0)?,
        c_oflag: word(4)?,
        c_cflag: word(8)?,
        c_lflag: word(12)?,
        c_line: *bytes.get(16)?,
        c_cc,
        c_ispeed: word(speeds)?,
        c_ospeed: word(speeds + 4)?,
    };
    Some(Termios::from(raw))
}

/// A worker's plan, for the monitor.
pub(crate) fn plan_to_wire(plan: &SpawnPlan) -> SessionPlan {
    let bytes = |s: &std::ffi::OsStr| s.as_bytes().to_vec();
    SessionPlan {
        program: bytes(plan.program.as_os_str()),
        arg0: bytes(&plan.arg0),
        args: plan.args.iter().map(|a| bytes(a)).collect(),
        env: plan.env.iter().map(|(k, v)| (bytes(k), bytes(v))).collect(),
        cwd: bytes(plan.cwd.as_os_str()),
        pty: plan.pty.as_ref().map(|pty| PtyPlan {
            rows: pty.size.rows,
            columns: pty.size.columns,
            width: pty.size.width,
            height: pty.size.height,
            modes: pty.modes.as_ref().map(encode_termios),
        }),
        user_rc: plan.user_rc,
    }
}

/// The monitor's plan from a worker's, for `account` (the connection's verified user,
/// whatever the worker named).
pub(crate) fn plan_from_wire(wire: &SessionPlan, account: Account) -> SpawnPlan {
    let os = |b: &[u8]| OsString::from_vec(b.to_vec());
    let mut plan = SpawnPlan::new(account, PathBuf::from(os(&wire.program)));
    plan.arg0 = os(&wire.arg0);
    plan.args = wire.args.iter().map(|a| os(a)).collect();
    plan.env = wire.env.iter().map(|(k, v)| (os(k), os(v))).collect();
    // The worker cannot see the home directory from its empty root, so it plans "/": the
    // monitor decides, as the non-separated server does (home if it is a directory).
    plan.cwd =
        if plan.account.home.is_dir() { plan.account.home.clone() } else { PathBuf::from("/") };
    plan.pty = wire.pty.as_ref().map(|pty| PtyOptions {
        size: WindowSize::new(pty.rows, pty.columns).with_pixels(pty.width, pty.height),
        modes: pty.modes.as_deref().and_then(decode_termios),
    });
    plan.user_rc = wire.user_rc;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_round_trip_and_a_bad_flag_is_malformed() {
        let frames = [
            Frame::Kill { signal: 15, group: true },
            Frame::Ended(ProcessStatus::Exited(3)),
            Frame::Ended(ProcessStatus::Signaled { signal: 9, core_dumped: false }),
        ];
        let mut stream = Frames::default();
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        let (first, rest) = bytes.split_at(4);
        assert_eq!(stream.feed(first), Some(vec![]));
        assert_eq!(stream.feed(rest), Some(frames.to_vec()));
        assert_eq!(stream.feed(&[b'x', 0, 0, 0, 0, 7]), None);
    }

    #[test]
    fn a_plan_crosses_with_its_terminal_modes_and_takes_the_monitor_s_account() {
        let account = Account {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        };
        let mut modes =
            nix::sys::termios::tcgetattr(nix::pty::openpty(None, None).unwrap().master).unwrap();
        modes.local_flags.remove(nix::sys::termios::LocalFlags::ECHO);
        let mut plan = SpawnPlan::new(account.clone(), "/bin/sh");
        plan.args = vec!["-c".into(), "true".into()];
        plan.env = vec![("TERM".into(), "xterm".into())];
        plan.pty = Some(PtyOptions { size: WindowSize::new(24, 80), modes: Some(modes) });
        let mut other = account.clone();
        other.uid = 0;
        let back = plan_from_wire(&plan_to_wire(&plan), account);
        assert_eq!(back.account.uid, 1000);
        assert_eq!(back.args, plan.args);
        assert_eq!(back.env, plan.env);
        let pty = back.pty.unwrap();
        assert_eq!((pty.size.rows, pty.size.columns), (24, 80));
        assert!(!pty.modes.unwrap().local_flags.contains(nix::sys::termios::LocalFlags::ECHO));
        let _ = other;
    }
}

//! Child processes over pipes and over a pty.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

use twine_core::process::{
    Credentials, Groups, Process, ProcessOptions, ProcessProtocol, ProcessStatus, PtyOptions,
    PtyOwner, WindowSize,
};
use twine_core::reactor::Signal;
use twine_core::{Deferred, Transport};
use util::reactor;

/// What a child did, as its protocol saw it.
#[derive(Default)]
struct Seen {
    out: Vec<u8>,
    err: Vec<u8>,
    events: Vec<&'static str>,
    exited: Option<ProcessStatus>,
    ended: Option<ProcessStatus>,
}

type Start = Box<dyn FnMut(&Process)>;
type OnOut = Box<dyn FnMut(&Process, &[u8])>;

struct Child {
    seen: Rc<RefCell<Seen>>,
    on_start: Option<Start>,
    on_out: Option<OnOut>,
    process: Option<Process>,
    done: Deferred<()>,
}

impl Child {
    fn new(done: &Deferred<()>) -> (Self, Rc<RefCell<Seen>>) {
        let seen = Rc::default();
        let child = Self {
            seen: Rc::clone(&seen),
            on_start: None,
            on_out: None,
            process: None,
            done: done.clone(),
        };
        (child, seen)
    }

    fn on_start(mut self, start: impl FnMut(&Process) + 'static) -> Self {
        self.on_start = Some(Box::new(start));
        self
    }

    fn on_out(mut self, hook: impl FnMut(&Process, &[u8]) + 'static) -> Self {
        self.on_out = Some(Box::new(hook));
        self
    }
}

impl ProcessProtocol for Child {
    fn connection_made(&mut self, process: Process) {
        self.seen.borrow_mut().events.push("made");
        if let Some(start) = self.on_start.as_mut() {
            start(&process);
        }
        self.process = Some(process);
    }

    fn out_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().out.extend_from_slice(data);
        if let (Some(hook), Some(process)) = (self.on_out.as_mut(), self.process.as_ref()) {
            hook(process, data);
        }
    }

    fn err_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().err.extend_from_slice(data);
    }

    fn out_connection_lost(&mut self) {
        self.seen.borrow_mut().events.push("out lost");
    }

    fn process_exited(&mut self, status: ProcessStatus) {
        self.seen.borrow_mut().exited = Some(status);
    }

    fn process_ended(&mut self, status: ProcessStatus) {
        let mut seen = self.seen.borrow_mut();
        seen.events.push("ended");
        seen.ended = Some(status);
        self.done.callback(());
    }
}

fn run(options: ProcessOptions, build: impl FnOnce(Child) -> Child) -> Rc<RefCell<Seen>> {
    let reactor = reactor();
    let done = reactor.deferred::<()>();
    let (child, seen) = Child::new(&done);
    reactor.spawn_process(options, build(child)).unwrap();
    reactor.run_until(done).unwrap();
    seen
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Over pipes, stdout and stderr arrive separately and the exit code is reported, first by
/// `process_exited` and last by `process_ended`.
#[test]
fn runs_a_child_over_pipes_and_reports_its_exit_code() {
    let options = ProcessOptions::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]);
    let seen = run(options, |child| child);
    let seen = seen.borrow();
    assert_eq!(text(&seen.out), "out\n");
    assert_eq!(text(&seen.err), "err\n");
    assert_eq!(seen.exited, Some(ProcessStatus::Exited(3)));
    assert_eq!(seen.ended, Some(ProcessStatus::Exited(3)));
    assert_eq!(seen.events.first(), Some(&"made"));
    assert_eq!(seen.events.last(), Some(&"ended"));
}

/// Writing to the process writes its stdin; `write_eof` closes it.
#[test]
fn writes_to_stdin_and_closes_it() {
    let options = ProcessOptions::new("cat");
    let seen = run(options, |child| {
        child.on_start(|process| {
            process.write(b"through cat\n");
            process.write_eof();
        })
    });
    let seen = seen.borrow();
    assert_eq!(text(&seen.out), "through cat\n");
    assert_eq!(seen.ended, Some(ProcessStatus::Exited(0)));
}

/// On a pty, `tty` names a terminal and succeeds; over pipes it does not.
#[test]
fn runs_tty_on_a_pty() {
    let options = ProcessOptions::new("tty").pty(PtyOptions::default());
    let seen = run(options, |child| child);
    let seen = seen.borrow();
    assert!(text(&seen.out).starts_with("/dev/"), "{:?}", text(&seen.out));
    assert_eq!(seen.ended, Some(ProcessStatus::Exited(0)));

    let seen = run(ProcessOptions::new("tty"), |child| child);
    let seen = seen.borrow();
    assert_eq!(text(&seen.out).trim(), "not a tty");
    assert_eq!(seen.ended, Some(ProcessStatus::Exited(1)));
}

/// `tty_env` names the child's terminal in the environment, as `tty` sees it; over pipes the
/// variable is not set.
#[test]
fn names_the_terminal_in_the_environment() {
    let script = r#"test "$SSH_TTY" = "$(tty)" && echo same:$SSH_TTY"#;
    let options = ProcessOptions::new("/bin/sh")
        .args(["-c", script])
        .tty_env("SSH_TTY")
        .pty(PtyOptions::default());
    let seen = run(options, |child| child);
    assert!(text(&seen.borrow().out).starts_with("same:/dev/"), "{:?}", text(&seen.borrow().out));

    let options = ProcessOptions::new("/bin/sh")
        .args(["-c", "echo \"[${SSH_TTY-unset}]\""])
        .env_clear()
        .tty_env("SSH_TTY");
    let seen = run(options, |child| child);
    assert_eq!(text(&seen.borrow().out), "[unset]\n");
}

/// `pty_owner` gives the terminal its owner, group and mode before the child starts: the
/// child's first look at its terminal sees them, and `tty_path` names the same terminal. As
/// root the terminal goes to `nobody` (65534); as anyone else to themselves, mode 0600.
#[test]
fn gives_the_terminal_to_its_owner_before_the_child_starts() {
    let root = nix::unistd::Uid::effective().is_root();
    let (uid, gid, mode) = if root {
        (65_534, 65_534, 0o620)
    } else {
        (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw(), 0o600)
    };
    let options = ProcessOptions::new("/bin/sh")
        .args(["-c", "stat -c '%u %g %a %n' \"$(tty)\""])
        .pty(PtyOptions::default())
        .pty_owner(PtyOwner { uid, gid, mode });
    let path = Rc::new(RefCell::new(None));
    let seen_path = Rc::clone(&path);
    let seen = run(options, move |child| {
        child.on_start(move |process| {
            *seen_path.borrow_mut() = process.tty_path().map(|p| p.display().to_string());
        })
    });
    let out = text(&seen.borrow().out);
    let tty = path.borrow().clone().expect("a pty has a path");
    assert_eq!(out.trim(), format!("{uid} {gid} {mode:o} {tty}"), "{out:?}");
}

/// A break goes to a pty (which takes it), and is refused over pipes.
#[test]
fn sends_a_break_on_a_pty_only() {
    let broke = Rc::new(RefCell::new(Vec::new()));
    for pty in [true, false] {
        let mut options = ProcessOptions::new("/bin/sh").args(["-c", "read line"]);
        if pty {
            options = options.pty(PtyOptions::default());
        }
        let broke = Rc::clone(&broke);
        run(options, move |child| {
            child.on_start(move |process| {
                broke.borrow_mut().push(process.send_break().is_ok());
                process.write(b"done\n");
            })
        });
    }
    assert_eq!(*broke.borrow(), [true, false]);
}

/// The pty starts with the requested window size, and a resize is seen by the child.
#[test]
fn sets_and_changes_the_window_size() {
    let options = ProcessOptions::new("/bin/sh")
        .args(["-c", "stty size; read line; stty size"])
        .pty(PtyOptions { size: WindowSize::new(24, 80), modes: None });
    let seen = run(options, |child| {
        child.on_out(|process, _| {
            if process.window_size().unwrap() == WindowSize::new(24, 80) {
                process.resize(WindowSize::new(50, 132)).unwrap();
                process.write(b"go\n");
            }
        })
    });
    let out = text(&seen.borrow().out);
    assert!(out.contains("24 80"), "{out:?}");
    assert!(out.contains("50 132"), "{out:?}");
}

/// Terminal modes given at spawn apply to the pty: here echo is off.
#[test]
fn applies_initial_terminal_modes() {
    use twine_core::process::termios::{tcgetattr, LocalFlags};
    let (controller, _terminal) =
        nix::pty::openpty(None, None).map(|p| (p.master, p.slave)).unwrap();
    let mut modes = tcgetattr(&controller).unwrap();
    modes.local_flags.remove(LocalFlags::ECHO);
    let options = ProcessOptions::new("/bin/sh")
        .args(["-c", "stty -a"])
        .pty(PtyOptions { size: WindowSize::new(24, 80), modes: Some(modes) });
    let seen = run(options, |child| {
        child.on_start(|process| {
            let modes = process.termios().unwrap();
            assert!(!modes.local_flags.contains(LocalFlags::ECHO));
        })
    });
    let out = text(&seen.borrow().out);
    assert!(out.contains("-echo "), "{out:?}");
}

/// A signal sent to the child ends it, and the terminating signal is reported.
#[test]
fn reports_the_terminating_signal() {
    let options = ProcessOptions::new("sleep").arg("30");
    let seen =
        run(options, |child| child.on_start(|process| process.signal(Signal::Terminate).unwrap()));
    let status = seen.borrow().ended.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(status.code(), None);
}

/// `argv[0]`, a cleared environment with explicit variables, and the working directory are
/// what the child sees.
#[test]
fn sets_argv0_environment_and_directory() {
    let options = ProcessOptions::new("/bin/sh")
        .arg0("-login-shell")
        .args(["-c", "echo $0; env | sort; pwd"])
        .env_clear()
        .env("GREETING", "hello")
        .env("PATH", "/usr/bin:/bin")
        .cwd("/");
    let seen = run(options, |child| child);
    let out = text(&seen.borrow().out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"-login-shell"));
    assert!(lines.contains(&"GREETING=hello"), "{out:?}");
    assert!(!lines.iter().any(|line| line.starts_with("HOME=")), "{out:?}");
    assert_eq!(lines.last(), Some(&"/"));
}

/// Descriptors the parent did not hand over are closed in the child, even ones without
/// close-on-exec; a descriptor handed over appears at its target number.
#[test]
fn closes_other_descriptors_and_passes_chosen_ones() {
    let (leak_read, leak_write) = nix::unistd::pipe().unwrap();
    let (pass_read, pass_write) = nix::unistd::pipe().unwrap();
    let leaked = std::os::fd::AsRawFd::as_raw_fd(&leak_write);
    let script = format!(
        "if [ -e /proc/self/fd/{leaked} ]; then echo leaked; else echo closed; fi; echo passed >&7"
    );
    let options = ProcessOptions::new("/bin/sh").args(["-c", &script]).inherit_fd(pass_write, 7);
    let seen = run(options, |child| child);
    assert_eq!(text(&seen.borrow().out), "closed\n");
    let mut passed = String::new();
    std::fs::File::from(pass_read).read_to_string(&mut passed).unwrap();
    assert_eq!(passed, "passed\n");
    drop((leak_read, leak_write));
}

/// Run as root, the child gets the requested user, group and supplementary groups.
#[test]
fn drops_to_the_requested_credentials_when_root() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root; skipping");
        return;
    }
    let credentials = Credentials { uid: 65_534, gid: 65_534, groups: Groups::Only(vec![65_534]) };
    let options = ProcessOptions::new("/bin/sh")
        .args(["-c", "id -u; id -g; id -G"])
        .credentials(credentials)
        .cwd("/");
    let seen = run(options, |child| child);
    assert_eq!(text(&seen.borrow().out), "65534\n65534\n65534\n");
}

/// A program that does not exist fails to spawn with `NotFound` and the errno.
#[test]
fn reports_a_missing_program() {
    let reactor = reactor();
    let done = reactor.deferred::<()>();
    let (child, _) = Child::new(&done);
    let err = reactor.spawn_process(ProcessOptions::new("/nonexistent/twine-test"), child);
    let err = err.unwrap_err();
    assert_eq!(err.kind(), twine_core::ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

/// The pipes for a child's standard input and output are grown to a mebibyte (where
/// `/proc/sys/fs/pipe-max-size` allows it), so bulk data costs fewer reads and wakeups; standard
/// error keeps the default size. These are the descriptors a privilege-separated server hands
/// its worker too (`duplicate_fds`).
#[cfg(target_os = "linux")]
#[test]
fn a_childs_standard_input_and_output_pipes_hold_a_mebibyte_and_standard_error_the_default() {
    use nix::fcntl::{fcntl, FcntlArg};
    use twine_core::process::ChildFds;

    const MIB: i32 = 1024 * 1024;
    let limit: i32 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    let (_, default) = nix::unistd::pipe().unwrap();
    let default = fcntl(&default, FcntlArg::F_GETPIPE_SZ).unwrap();
    let sizes = Rc::new(RefCell::new(None));
    let seen = run(ProcessOptions::new("cat"), |child| {
        let sizes = Rc::clone(&sizes);
        child.on_start(move |process| {
            let ChildFds::Pipes { stdin, stdout, stderr } = process.duplicate_fds().unwrap() else {
                panic!("a child without a pty has pipes");
            };
            let size = |fd| fcntl(fd, FcntlArg::F_GETPIPE_SZ).unwrap();
            *sizes.borrow_mut() = Some((size(&stdin), size(&stdout), size(&stderr)));
            process.write_eof();
        })
    });
    assert_eq!(seen.borrow().ended, Some(ProcessStatus::Exited(0)));
    let (stdin, stdout, stderr) = sizes.borrow().unwrap();
    if limit >= MIB {
        assert_eq!((stdin, stdout), (MIB, MIB));
    } else {
        assert_eq!((stdin, stdout), (default, default));
    }
    assert_eq!(stderr, default);
}

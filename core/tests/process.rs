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

/// A scratch directory of this test process's own, emptied first.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("twine-spawn-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `path` with permission bits `mode`.
fn write_file(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Starts `options` and returns the error it fails with.
fn spawn_error(options: ProcessOptions) -> twine_core::Error {
    let reactor = reactor();
    let done = reactor.deferred::<()>();
    let (child, _) = Child::new(&done);
    reactor.spawn_process(options, child).map(|process| process.pid()).unwrap_err()
}

/// Run as root, the child has exactly the requested real, effective, saved and filesystem
/// user and group ids and supplementary groups, and the parent keeps its own.
#[test]
fn a_child_started_as_another_user_has_exactly_that_identity_and_the_parent_keeps_its_own() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root; skipping");
        return;
    }
    let groups_before = nix::unistd::getgroups().unwrap();
    let credentials =
        Credentials { uid: 65_534, gid: 4_242, groups: Groups::Only(vec![65_534, 100, 4_242]) };
    let options = ProcessOptions::new("grep")
        .args(["-E", "^(Uid|Gid|Groups):", "/proc/self/status"])
        .credentials(credentials)
        .cwd("/");
    let seen = run(options, |child| child);
    let out = text(&seen.borrow().out);
    let fields: Vec<Vec<&str>> =
        out.lines().map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(
        fields,
        [
            vec!["Uid:", "65534", "65534", "65534", "65534"],
            vec!["Gid:", "4242", "4242", "4242", "4242"],
            vec!["Groups:", "100", "4242", "65534"],
        ],
        "{out:?}"
    );
    assert!(nix::unistd::Uid::current().is_root() && nix::unistd::Uid::effective().is_root());
    assert_eq!(nix::unistd::getgroups().unwrap(), groups_before);
}

/// A step that fails in the child before `exec` is the spawn's error, with the child's errno:
/// here `setgroups` with more groups than the kernel allows (`EINVAL` as root, `EPERM` as
/// anyone else).
#[test]
fn a_credential_step_that_fails_in_the_child_is_the_spawn_error() {
    let credentials =
        Credentials { uid: 65_534, gid: 65_534, groups: Groups::Only(vec![1; 70_000]) };
    let err = spawn_error(ProcessOptions::new("/bin/true").credentials(credentials));
    let expected = if nix::unistd::Uid::effective().is_root() { libc::EINVAL } else { libc::EPERM };
    assert_eq!(err.raw_os_error(), Some(expected), "{err}");
}

/// A child that failed before `exec` has been collected when the spawn returns: no zombie is
/// left to this thread.
#[test]
fn a_child_that_fails_before_exec_leaves_no_zombie() {
    let err = spawn_error(ProcessOptions::new("/bin/true").cwd("/nonexistent/twine-test"));
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let children = std::fs::read_to_string("/proc/thread-self/children").unwrap_or_default();
    assert_eq!(children.trim(), "");
}

/// A working directory that does not exist fails the spawn with `NotFound`.
#[test]
fn a_missing_working_directory_is_not_found() {
    let err = spawn_error(ProcessOptions::new("/bin/true").cwd("/nonexistent/twine-test"));
    assert_eq!(err.kind(), twine_core::ErrorKind::NotFound);
    assert!(err.to_string().contains("spawn /bin/true: exec"), "{err}");
}

/// A name without a slash is looked up in the child's `PATH`, entry by entry: the first entry
/// that has it wins, and one that lacks it is skipped.
#[test]
fn a_name_runs_from_the_first_path_entry_that_has_it() {
    let dir = scratch("path-order");
    let (empty, first, second) = (dir.join("empty"), dir.join("first"), dir.join("second"));
    for entry in [&empty, &first, &second] {
        std::fs::create_dir(entry).unwrap();
    }
    std::os::unix::fs::symlink("/bin/echo", first.join("twine-probe")).unwrap();
    std::os::unix::fs::symlink("/bin/false", second.join("twine-probe")).unwrap();
    let path = format!("{}:{}:{}", empty.display(), first.display(), second.display());
    let options =
        ProcessOptions::new("twine-probe").arg("from the first").env_clear().env("PATH", path);
    let seen = run(options, |child| child);
    assert_eq!(text(&seen.borrow().out), "from the first\n");
    assert_eq!(seen.borrow().ended, Some(ProcessStatus::Exited(0)));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Without a `PATH` in its environment, a name is looked up in `/bin` and `/usr/bin`.
#[test]
fn without_a_path_a_name_is_looked_up_in_bin_and_usr_bin() {
    let options = ProcessOptions::new("echo").arg("found").env_clear();
    let seen = run(options, |child| child);
    assert_eq!(text(&seen.borrow().out), "found\n");
}

/// A name in no `PATH` entry is `NotFound` (`ENOENT`), as `execvp` reports, in the words a
/// server's log shows for a missing shell.
#[test]
fn a_name_in_no_path_entry_is_not_found() {
    let options = ProcessOptions::new("twine-no-such-program").env_clear().env("PATH", "/bin");
    let err = spawn_error(options);
    assert_eq!(err.kind(), twine_core::ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        "spawn twine-no-such-program: exec: No such file or directory (os error 2)"
    );
}

/// A name found only as a file without execute permission is `PermissionDenied` (`EACCES`),
/// even when a later entry lacks it: `execvp` reports the denial over the absence.
#[test]
fn a_name_found_only_without_execute_permission_is_permission_denied() {
    let dir = scratch("path-denied");
    write_file(&dir.join("twine-probe"), "#!/bin/sh\necho ran\n", 0o644);
    let path = format!("{}:/nonexistent/twine-test", dir.display());
    let options = ProcessOptions::new("twine-probe").env_clear().env("PATH", path);
    let err = spawn_error(options);
    assert_eq!(err.kind(), twine_core::ErrorKind::PermissionDenied);
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    let err = spawn_error(ProcessOptions::new(dir.join("twine-probe")));
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    std::fs::remove_dir_all(dir).unwrap();
}

/// An executable text file without `#!` runs under `/bin/sh`, with the file as `$0` and the
/// arguments after it, as `execvp` runs it.
#[test]
fn an_executable_file_without_a_shebang_runs_under_the_shell() {
    let dir = scratch("no-shebang");
    let script = dir.join("twine-script");
    write_file(&script, "echo \"$0 $1\"\n", 0o755);
    // Another test's child may still hold a copy of the descriptor that wrote the file
    // (ETXTBSY) for the instant before its own exec: try again then.
    for _ in 0..50 {
        let options = ProcessOptions::new(&script).arg0("ignored").arg("one");
        let reactor = reactor();
        let done = reactor.deferred::<()>();
        let (child, seen) = Child::new(&done);
        match reactor.spawn_process(options, child) {
            Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) => continue,
            spawned => {
                spawned.unwrap();
            }
        }
        reactor.run_until(done).unwrap();
        assert_eq!(text(&seen.borrow().out), format!("{} one\n", script.display()));
        break;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A program name or argument with a NUL byte is `InvalidInput`, before anything starts.
#[test]
fn a_nul_byte_in_the_program_or_an_argument_is_invalid_input() {
    let err = spawn_error(ProcessOptions::new("/bin/echo\0x"));
    assert_eq!(err.kind(), twine_core::ErrorKind::InvalidInput);
    let err = spawn_error(ProcessOptions::new("/bin/echo").arg("a\0b"));
    assert_eq!(err.kind(), twine_core::ErrorKind::InvalidInput);
}

/// The running program has exactly stdin, stdout, stderr and the descriptor handed to it:
/// the parent's other descriptors, close-on-exec or not, are closed (read from
/// `/proc/<pid>/fd` once `cat` has echoed a line, its start-up done).
#[cfg(target_os = "linux")]
#[test]
fn a_child_has_only_its_standard_descriptors_and_those_handed_to_it() {
    let (_keep_read, keep_write) = nix::unistd::pipe().unwrap();
    let (pass_read, pass_write) = nix::unistd::pipe().unwrap();
    drop(pass_read);
    let listing = Rc::new(RefCell::new(Vec::new()));
    let options = ProcessOptions::new("cat").inherit_fd(pass_write, 9);
    let seen = run(options, |child| {
        let listing = Rc::clone(&listing);
        child.on_start(|process| process.write(b"ready\n")).on_out(move |process, _| {
            let dir = format!("/proc/{}/fd", process.pid());
            let mut fds: Vec<i32> = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect();
            fds.sort_unstable();
            *listing.borrow_mut() = fds;
            process.write_eof();
        })
    });
    assert_eq!(seen.borrow().ended, Some(ProcessStatus::Exited(0)));
    assert_eq!(*listing.borrow(), [0, 1, 2, 9]);
    drop(keep_write);
}

/// The child starts with the spawning thread's signal mask (not the everything-blocked mask
/// used while it is set up), and the thread's mask is the same after spawning.
#[cfg(target_os = "linux")]
#[test]
fn the_child_starts_with_the_threads_signal_mask_and_the_thread_keeps_it() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal as Sig};
    let mut blocked = SigSet::empty();
    blocked.add(Sig::SIGUSR2);
    let mut before = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut before))
        .unwrap();
    let during = SigSet::thread_get_mask().unwrap();
    let options = ProcessOptions::new("grep").args(["^SigBlk:", "/proc/self/status"]);
    let seen = run(options, |child| child);
    let after = SigSet::thread_get_mask().unwrap();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None).unwrap();
    assert_eq!(text(&seen.borrow().out), "SigBlk:\t0000000000000800\n");
    for signal in Sig::iterator() {
        assert_eq!(after.contains(signal), during.contains(signal), "{signal}");
    }
    assert!(after.contains(Sig::SIGUSR2));
}

/// The parent's signal handling is intact after spawning: a signal a child sends it reaches
/// the reactor's observer.
#[test]
fn a_signal_a_child_sends_its_parent_reaches_the_parents_observer() {
    let reactor = reactor();
    let observed = reactor.deferred::<()>();
    let fire = observed.clone();
    reactor
        .observe_signal(Signal::User1, move || {
            if !fire.fired() {
                fire.callback(());
            }
        })
        .unwrap();
    let done = reactor.deferred::<()>();
    let (child, seen) = Child::new(&done);
    let options = ProcessOptions::new("/bin/sh").args(["-c", "kill -USR1 $PPID"]);
    reactor.spawn_process(options, child).unwrap();
    reactor.run_until(done).unwrap();
    reactor.run_until(observed).unwrap();
    assert_eq!(seen.borrow().ended, Some(ProcessStatus::Exited(0)));
}

/// Two threads each start children one after another (as another user when root) while a
/// third allocates and frees without pause: every child runs and exits, none hangs.
#[test]
fn many_spawns_from_two_threads_while_another_allocates_all_complete() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const SPAWNS: usize = 40;
    let root = nix::unistd::Uid::effective().is_root();
    let stop = AtomicBool::new(false);
    let spawner = || {
        let mut exited = 0;
        for _ in 0..SPAWNS {
            let mut options = ProcessOptions::new("/bin/true").cwd("/");
            if root {
                options = options.credentials(Credentials {
                    uid: 65_534,
                    gid: 65_534,
                    groups: Groups::Only(vec![65_534]),
                });
            }
            if run(options, |child| child).borrow().ended == Some(ProcessStatus::Exited(0)) {
                exited += 1;
            }
        }
        exited
    };
    let (first, second) = std::thread::scope(|scope| {
        let allocator = scope.spawn(|| {
            let mut kept = Vec::new();
            for round in 0..50_000_000_usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                kept.push(vec![0_u8; 1 + round % 4096]);
                if kept.len() > 64 {
                    kept.clear();
                }
            }
        });
        let first = scope.spawn(spawner);
        let second = scope.spawn(spawner);
        let counts = (first.join().unwrap(), second.join().unwrap());
        stop.store(true, Ordering::Relaxed);
        allocator.join().unwrap();
        counts
    });
    assert_eq!((first, second), (SPAWNS, SPAWNS));
}

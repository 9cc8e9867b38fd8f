//! Linux: starting a child with `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)`, as glibc's
//! `posix_spawn` does.
//!
//! `fork` copies the parent's page tables; in a multi-threaded parent it then write-protects
//! every private page and sends every other CPU running the process an interrupt to flush its
//! TLB, and each later write to such a page faults to copy it. A child cloned with `CLONE_VM`
//! runs on the parent's memory instead, on a stack of its own, and `CLONE_VFORK` suspends the
//! calling thread until the child has called `execve` (which gives it its own memory) or exited.
//!
//! Sharing memory puts these rules on the child, which this module keeps:
//!
//! - It allocates nothing, takes no lock, does not unwind and touches no state of the standard
//!   or C library. Everything it reads was built by the parent before the clone
//!   ([`ChildArgs`]): the argument and environment arrays, the paths to try for the program, the
//!   set-up. Its one write the parent reads is the error of the step that failed.
//! - No signal handler may run in it (a handler would run on the parent's memory, for example
//!   writing to the reactor's signal pipe). The parent blocks every signal around the clone; the
//!   child resets each signal that has a handler to its default action, then restores the
//!   parent's mask just before `execve`.
//! - Credentials change through the raw system calls (see `process.rs`).
//!
//! `execvp` is emulated: the parent lists the paths to try, the child tries them in order with
//! `execve` and keeps the error `execvp` would report, and a file the kernel cannot execute
//! (`ENOEXEC`) is run with `/bin/sh`, as glibc's `execvp` does.

use std::cell::RefCell;
use std::ffi::{c_void, CStr, CString, OsStr};
use std::io;
use std::iter;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::{c_char, c_int};

use super::process::{open_fd_limit, run_in_child, ChildSetup, Spawn};

/// The kernel's signal set: one bit per signal, 64 signals (every architecture this module is
/// built for).
type KernelSigset = u64;

/// The size of [`KernelSigset`], as the signal system calls take it.
const SIGSET_SIZE: usize = size_of::<KernelSigset>();

/// The highest signal number.
const LAST_SIGNAL: c_int = 64;

/// The usable size of the child's stack. The child's calls are shallow and allocate nothing on
/// the stack beyond their frames; glibc gives its spawn helper 32 KiB and the arguments.
const STACK_SIZE: usize = 64 * 1024;

/// The shell that runs an executable file that is not a program (`execvp`'s fallback).
const SHELL: &CStr = c"/bin/sh";

/// The search path `execvp` uses when the environment has no `PATH` (glibc's `_CS_PATH`).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The longest file name `execvp` looks up in `PATH`.
const NAME_MAX: usize = 255;

/// Starts `spawn` with a vfork-style clone. `Ok(None)`: the kernel does not offer the clone
/// (`ENOSYS`); nothing was started, and the caller forks instead.
pub(super) fn spawn(spawn: &Spawn<'_>) -> io::Result<Option<u32>> {
    let program = Program::resolve(&spawn.program, &spawn.env)?;
    let argv = CStringArray::new(spawn.argv.iter().map(|arg| arg.as_bytes().to_vec()))?;
    let envp = CStringArray::new(
        spawn.env.iter().map(|(key, value)| [key.as_bytes(), b"=", value.as_bytes()].concat()),
    )?;
    let cwd = match &spawn.cwd {
        Some(cwd) => Some(c_string(cwd.as_os_str().as_bytes().to_vec())?),
        None => None,
    };
    // A source among 0..=2 could be overwritten by another's `dup2` before its own: move it up
    // first, as the standard library does.
    let mut moved: Vec<OwnedFd> = Vec::new();
    let mut stdio: [RawFd; 3] = [0; 3];
    for (slot, fd) in stdio.iter_mut().zip(&spawn.stdio) {
        *slot = fd.as_raw_fd();
        if (0..=2).contains(slot) {
            // A close-on-exec duplicate numbered 3 or above.
            let copy = fd.try_clone_to_owned()?;
            *slot = copy.as_raw_fd();
            moved.push(copy);
        }
    }
    let mut script_argv = Vec::with_capacity(argv.pointers.len() + 1);
    script_argv.extend([SHELL.as_ptr(), ptr::null()]);
    script_argv.extend(argv.pointers.iter().skip(1));
    if script_argv.len() == 2 {
        script_argv.push(ptr::null());
    }
    let mut args = ChildArgs {
        program: &program,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        script_argv,
        cwd: cwd.as_ref().map_or(ptr::null(), |cwd| cwd.as_ptr()),
        stdio,
        setup: &spawn.setup,
        open_max: open_fd_limit(),
        mask: 0,
        error: AtomicI32::new(0),
    };
    // Without this thread's stack (the thread is exiting and its locals are gone), fork instead.
    let pid = CHILD_STACK
        .try_with(|stack| {
            let Ok(mut stack) = stack.try_borrow_mut() else { return Ok(None) };
            if stack.is_none() {
                *stack = Some(ChildStack::new()?);
            }
            match stack.as_ref() {
                Some(stack) => clone_child(stack, &mut args),
                None => Ok(None),
            }
        })
        .unwrap_or(Ok(None))?;
    drop(moved);
    let Some(pid) = pid else { return Ok(None) };
    let error = args.error.load(Ordering::Relaxed);
    if error != 0 {
        // The child has exited (that is when the clone returned): collect it, as the standard
        // library does. Someone else's `waitpid(-1)` may have collected it already.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(error));
    }
    u32::try_from(pid).map(Some).map_err(|_| io::Error::other("clone returned a negative pid"))
}

/// Where `execve` is tried, in order, and how its errors are read (`execvp`'s rules).
#[derive(Debug)]
struct Program {
    lookup: Lookup,
    /// The paths to try.
    paths: Vec<CString>,
}

#[derive(Debug, Clone, Copy)]
enum Lookup {
    /// A path (it has a slash): one `execve`, its error is the error.
    Path,
    /// A name searched in `PATH`: missing or inaccessible candidates are skipped, and after
    /// the last one the error is `EACCES` if any was inaccessible, else the last error.
    Search,
    /// `execvp` fails without trying: an empty name (`ENOENT`), a name too long to look up
    /// (`ENAMETOOLONG`).
    Fails(c_int),
}

impl Program {
    fn resolve(
        program: &OsStr,
        env: &[(std::ffi::OsString, std::ffi::OsString)],
    ) -> io::Result<Self> {
        let name = program.as_bytes();
        if name.contains(&0) {
            return Err(nul_error());
        }
        if name.is_empty() {
            return Ok(Self { lookup: Lookup::Fails(libc::ENOENT), paths: Vec::new() });
        }
        if name.contains(&b'/') {
            return Ok(Self { lookup: Lookup::Path, paths: vec![c_string(name.to_vec())?] });
        }
        if name.len() > NAME_MAX {
            return Ok(Self { lookup: Lookup::Fails(libc::ENAMETOOLONG), paths: Vec::new() });
        }
        let search = env
            .iter()
            .find(|(key, _)| key == "PATH")
            .map_or(DEFAULT_PATH, |(_, value)| value.as_bytes());
        // An empty entry is the working directory: the bare name.
        let paths = search
            .split(|&byte| byte == b':')
            .map(|dir| match dir {
                [] => c_string(name.to_vec()),
                _ => c_string([dir, b"/", name].concat()),
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { lookup: Lookup::Search, paths })
    }
}

/// C strings and the NULL-terminated array of pointers to them that `execve` takes.
struct CStringArray {
    /// Owns what `pointers` points into (each string's buffer stays put when the vector moves).
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl CStringArray {
    fn new(items: impl Iterator<Item = Vec<u8>>) -> io::Result<Self> {
        let strings = items.map(c_string).collect::<io::Result<Vec<_>>>()?;
        let pointers =
            strings.iter().map(|string| string.as_ptr()).chain(iter::once(ptr::null())).collect();
        Ok(Self { _strings: strings, pointers })
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| nul_error())
}

/// The standard library's error for the same mistake.
fn nul_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data")
}

/// Everything the child reads, built by the parent before the clone; the child writes only
/// `script_argv[1]` and `error`.
struct ChildArgs<'a> {
    program: &'a Program,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// `/bin/sh`, the file (filled in by the child), `argv[1..]`, NULL.
    script_argv: Vec<*const c_char>,
    /// NULL: stay in the parent's directory.
    cwd: *const c_char,
    stdio: [RawFd; 3],
    setup: &'a ChildSetup,
    open_max: RawFd,
    /// The parent's signal mask, which the program starts with.
    mask: KernelSigset,
    /// 0, or the errno of the step that failed.
    error: AtomicI32,
}

/// A stack for cloned children: mapped once per thread (a thread starts one child at a time,
/// and is suspended while it runs), with an inaccessible guard page below it.
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

thread_local! {
    static CHILD_STACK: RefCell<Option<ChildStack>> = const { RefCell::new(None) };
}

impl ChildStack {
    fn new() -> io::Result<Self> {
        // SAFETY: `sysconf` with a valid name has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = STACK_SIZE + page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Self { base, len };
        // SAFETY: the first page of the mapping just made, which nothing uses yet.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The stack's highest address (it grows down), page-aligned.
    fn top(&self) -> *mut c_void {
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, which no child uses any more (each had exec'd or
        // exited before its clone returned).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Sets the calling thread's signal mask to `mask`; returns the previous one. The raw system
/// call, so that the C library's internal signals are blocked too.
fn set_signal_mask(mask: KernelSigset) -> KernelSigset {
    let mut old: KernelSigset = 0;
    // SAFETY: rt_sigprocmask reads one kernel signal set from `mask` and writes one to `old`,
    // both live locals of exactly SIGSET_SIZE bytes.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const mask,
            &raw mut old,
            SIGSET_SIZE,
        );
    }
    old
}

/// Clones the child on `stack`; `Ok(None)` if the kernel does not offer the clone.
fn clone_child(stack: &ChildStack, args: &mut ChildArgs<'_>) -> io::Result<Option<libc::pid_t>> {
    args.mask = set_signal_mask(!0);
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: `child_main` runs on `stack`, a mapping of its own that no other code uses, with
    // `args`, which outlives the call: with CLONE_VFORK, clone returns only once the child has
    // exec'd or exited, and the child never touches `args` after that. What the child does on
    // the shared memory is in `child_main`'s comment.
    let pid = unsafe { libc::clone(child_main, stack.top(), flags, ptr::from_mut(args).cast()) };
    let failed = (pid == -1).then(io::Error::last_os_error);
    set_signal_mask(args.mask);
    match failed {
        Some(err) if err.raw_os_error() == Some(libc::ENOSYS) => Ok(None),
        Some(err) => Err(err),
        None => Ok(Some(pid)),
    }
}

/// The child: set up, then exec. Runs on the parent's memory with every signal blocked, and
/// only reads `args` (but for `script_argv[1]` and `error`), makes system calls, and exits.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent passed to clone; the parent is suspended until
    // this child execs or exits, so nothing else uses it meanwhile.
    let args = unsafe { &mut *arg.cast::<ChildArgs<'_>>() };
    let error = match prepare(args) {
        Ok(()) => exec(args),
        Err(error) => error,
    };
    args.error.store(if error == 0 { libc::ECHILD } else { error }, Ordering::Relaxed);
    // SAFETY: `_exit` ends this child without running any of the parent's exit handlers.
    unsafe { libc::_exit(127) }
}

/// The last error of a system call in this child.
fn errno() -> c_int {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

fn os_error(error: &io::Error) -> c_int {
    error.raw_os_error().unwrap_or(libc::EINVAL)
}

/// Everything before `exec`, in the standard library's order (see [`Spawn`]).
fn prepare(args: &ChildArgs<'_>) -> Result<(), c_int> {
    reset_signal_handlers();
    for (&source, target) in args.stdio.iter().zip(0..) {
        // SAFETY: `dup2` on descriptor numbers; every signal is blocked, so no EINTR.
        if unsafe { libc::dup2(source, target) } == -1 {
            return Err(errno());
        }
    }
    if !args.cwd.is_null() {
        // SAFETY: `cwd` points to a NUL-terminated path the parent keeps alive.
        if unsafe { libc::chdir(args.cwd) } == -1 {
            return Err(errno());
        }
    }
    run_in_child(args.setup, args.open_max).map_err(|error| os_error(&error))?;
    set_signal_mask(args.mask);
    #[cfg(test)]
    if let Some(signal) = args.setup.raise_before_exec {
        // SAFETY: the raw system calls take integers; the signal goes to this child only.
        unsafe { libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), signal) };
    }
    Ok(())
}

/// Sets every signal that has a handler back to its default action, and `SIGPIPE` too (the
/// standard library's children start with it; Rust programs ignore it). Ignored signals stay
/// ignored. Raw system calls: the C library's `sigaction` refuses its internal signals and may
/// record dispositions in memory this child shares with its parent.
fn reset_signal_handlers() {
    /// Larger than the kernel's `struct sigaction` on every architecture this module is built
    /// for; its first word is the handler. All zero: the default action, no flags, empty mask.
    type RawSigaction = [usize; 8];
    for signal in 1..=LAST_SIGNAL {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let mut current: RawSigaction = [0; 8];
        // SAFETY: rt_sigaction with no new action writes the current one, at most
        // `RawSigaction`'s size, into the live local.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                ptr::null::<RawSigaction>(),
                &raw mut current,
                SIGSET_SIZE,
            )
        };
        let [handler, ..] = current;
        let has_handler = handler != libc::SIG_DFL && handler != libc::SIG_IGN;
        if rc != 0 || !(has_handler || signal == libc::SIGPIPE) {
            continue;
        }
        let default: RawSigaction = [0; 8];
        // SAFETY: rt_sigaction reads the new action (all zero: SIG_DFL) from the live local
        // and changes only this child's dispositions (no CLONE_SIGHAND).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &raw const default,
                ptr::null_mut::<RawSigaction>(),
                SIGSET_SIZE,
            );
        }
    }
}

/// Tries the program's paths with `execve` as `execvp` does; returns the error to report.
fn exec(args: &mut ChildArgs<'_>) -> c_int {
    let program = args.program;
    match program.lookup {
        Lookup::Fails(error) => error,
        Lookup::Path => program.paths.first().map_or(libc::ENOENT, |path| exec_one(args, path)),
        Lookup::Search => {
            let mut denied = false;
            let mut last = libc::ENOENT;
            for path in &program.paths {
                last = exec_one(args, path);
                match last {
                    libc::EACCES => denied = true,
                    libc::ENOENT
                    | libc::ESTALE
                    | libc::ENOTDIR
                    | libc::ENODEV
                    | libc::ETIMEDOUT => {}
                    _ => return last,
                }
            }
            if denied {
                libc::EACCES
            } else {
                last
            }
        }
    }
}

/// One `execve` of `path`, and of `/bin/sh path` if the kernel cannot execute it; returns the
/// error (it returns only on failure).
fn exec_one(args: &mut ChildArgs<'_>, path: &CStr) -> c_int {
    // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings and NULL-terminated arrays
    // of them that the parent keeps alive.
    unsafe { libc::execve(path.as_ptr(), args.argv, args.envp) };
    let error = errno();
    if error != libc::ENOEXEC {
        return error;
    }
    if let Some(slot) = args.script_argv.get_mut(1) {
        *slot = path.as_ptr();
    }
    // SAFETY: as above; `script_argv` is NULL-terminated and points into the same strings.
    unsafe { libc::execve(SHELL.as_ptr(), args.script_argv.as_ptr(), args.envp) };
    errno()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::Pid;

    use super::*;

    /// Starts `/bin/true` on /dev/null, sending itself `signal` just before `exec`; returns how
    /// it ended.
    fn true_raising(signal: Signal) -> WaitStatus {
        let null = File::options().read(true).write(true).open("/dev/null").unwrap();
        let setup = ChildSetup {
            close_other_fds: true,
            raise_before_exec: Some(signal as c_int),
            ..ChildSetup::default()
        };
        let request = Spawn {
            program: "/bin/true".into(),
            argv: vec!["true".into()],
            env: Vec::new(),
            cwd: None,
            stdio: [null.as_fd(); 3],
            setup,
        };
        let pid = spawn(&request).unwrap().unwrap();
        waitpid(Pid::from_raw(i32::try_from(pid).unwrap()), None).unwrap()
    }

    /// The parent's handler for a signal is not the child's: the child, sharing the parent's
    /// memory until it execs, takes the default action (here: it dies), and the handler never
    /// runs (it would set the flag in the shared memory).
    #[test]
    fn a_handler_installed_in_the_parent_never_runs_in_the_child() {
        let ran = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(libc::SIGUSR1, Arc::clone(&ran)).unwrap();
        let status = true_raising(Signal::SIGUSR1);
        assert!(matches!(status, WaitStatus::Signaled(_, Signal::SIGUSR1, _)), "{status:?}");
        assert!(!ran.load(Ordering::SeqCst));
    }

    /// Rust programs ignore `SIGPIPE`; their children start with its default action, as the
    /// standard library's do.
    #[test]
    fn the_child_starts_with_sigpipe_at_its_default_action() {
        let status = true_raising(Signal::SIGPIPE);
        assert!(matches!(status, WaitStatus::Signaled(_, Signal::SIGPIPE, _)), "{status:?}");
    }

    /// A signal the parent ignores stays ignored in the child (and in the program, as `exec`
    /// keeps ignored signals ignored).
    #[test]
    fn a_signal_the_parent_ignores_stays_ignored_in_the_child() {
        // SAFETY: ignoring SIGXCPU installs no handler; nothing in these tests relies on it.
        unsafe { nix::sys::signal::signal(Signal::SIGXCPU, nix::sys::signal::SigHandler::SigIgn) }
            .unwrap();
        let status = true_raising(Signal::SIGXCPU);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    /// How a start ended: the exit code, or the error's kind and errno.
    type Outcome = Result<i32, (io::ErrorKind, Option<i32>)>;

    /// A program, its arguments, environment, directory and groups, and how its start ends.
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        Option<&'a str>,
        Option<Vec<libc::gid_t>>,
        Outcome,
    );

    /// Starts `program` with `argv`, environment `env`, `cwd` and `groups` (as the current
    /// user) through `start`, and waits for it.
    fn outcome(
        start: fn(&Spawn<'_>) -> io::Result<u32>,
        program: &str,
        argv: &[&str],
        env: &[(&str, &str)],
        cwd: Option<&str>,
        groups: Option<Vec<libc::gid_t>>,
    ) -> Outcome {
        let null = File::options().read(true).write(true).open("/dev/null").unwrap();
        let request = Spawn {
            program: program.into(),
            argv: argv.iter().map(Into::into).collect(),
            env: env.iter().map(|(key, value)| (key.into(), value.into())).collect(),
            cwd: cwd.map(Into::into),
            stdio: [null.as_fd(); 3],
            setup: ChildSetup { groups, close_other_fds: true, ..ChildSetup::default() },
        };
        let pid = start(&request).map_err(|err| (err.kind(), err.raw_os_error()))?;
        match waitpid(Pid::from_raw(i32::try_from(pid).unwrap()), None).unwrap() {
            WaitStatus::Exited(_, code) => Ok(code),
            status => panic!("{status:?}"),
        }
    }

    /// The clone and the standard library's fork (the path on other systems and when the
    /// kernel lacks the clone) give the same outcomes: exit codes, a program found in `PATH`
    /// after a missing entry, a missing program (by path, by name, empty), a missing directory,
    /// a refused set-up step, a NUL byte.
    #[test]
    fn the_clone_and_the_fork_give_the_same_outcomes() {
        use io::ErrorKind::{InvalidInput, NotFound};
        fn clone(spawn: &Spawn<'_>) -> io::Result<u32> {
            super::spawn(spawn)?.ok_or_else(|| io::Error::other("no clone"))
        }
        let fork = super::super::process::spawn_with_fork;
        let path = [("PATH", "/nonexistent/twine-test:/bin")];
        let refused =
            if nix::unistd::Uid::effective().is_root() { libc::EINVAL } else { libc::EPERM };
        let too_many = Some(vec![1; 70_000]);
        let missing = Err((NotFound, Some(libc::ENOENT)));
        let cases: [Case<'_>; 8] = [
            ("/bin/sh", &["sh", "-c", "exit 3"], &[], None, None, Ok(3)),
            ("sh", &["sh", "-c", "[ \"$(pwd)\" = / ]"], &path, Some("/"), None, Ok(0)),
            ("/nonexistent/twine-test", &["x"], &[], None, None, missing),
            ("twine-no-such-program", &["x"], &path, None, None, missing),
            ("", &["x"], &[], None, None, missing),
            ("/bin/true", &["true"], &[], Some("/nonexistent/twine-test"), None, missing),
            ("/bin/true", &["true"], &[], None, too_many, Err((InvalidInput, Some(refused)))),
            ("/bin/true", &["a\0b"], &[], None, None, Err((InvalidInput, None))),
        ];
        for (program, argv, env, cwd, groups, expected) in cases {
            let cloned = outcome(clone, program, argv, env, cwd, groups.clone());
            let forked = outcome(fork, program, argv, env, cwd, groups);
            assert_eq!((&cloned, &forked), (&expected, &expected), "{program} {argv:?}");
        }
    }

    /// `execvp`'s candidates: the `PATH` entries in order, an empty entry being the bare name,
    /// `/bin:/usr/bin` without a `PATH`.
    #[test]
    fn a_name_is_looked_up_in_each_path_entry_in_order() {
        let env = [("PATH".into(), "/usr/local/bin::/bin".into())];
        let program = Program::resolve(OsStr::new("ls"), &env).unwrap();
        assert!(matches!(program.lookup, Lookup::Search));
        assert_eq!(program.paths, [c"/usr/local/bin/ls", c"ls", c"/bin/ls"]);
        let program = Program::resolve(OsStr::new("ls"), &[]).unwrap();
        assert_eq!(program.paths, [c"/bin/ls", c"/usr/bin/ls"]);
        let program = Program::resolve(OsStr::new("./bin/ls"), &env).unwrap();
        assert!(matches!(program.lookup, Lookup::Path));
        assert_eq!(program.paths, [c"./bin/ls"]);
    }

    /// What `execvp` refuses without trying: an empty name, a name longer than NAME_MAX.
    #[test]
    fn an_empty_or_overlong_name_fails_as_execvp_fails() {
        let program = Program::resolve(OsStr::new(""), &[]).unwrap();
        assert!(matches!(program.lookup, Lookup::Fails(libc::ENOENT)));
        let long = "x".repeat(NAME_MAX + 1);
        let program = Program::resolve(OsStr::new(&long), &[]).unwrap();
        assert!(matches!(program.lookup, Lookup::Fails(libc::ENAMETOOLONG)));
    }
}

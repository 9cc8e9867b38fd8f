//! Starting a child: what the parent prepares, and what the child does between its creation and
//! `exec`.
//!
//! [`spawn`] starts a [`Spawn`]. On Linux it clones a child that shares the parent's memory
//! until it execs (`CLONE_VM | CLONE_VFORK`, as glibc's `posix_spawn` does; see `vfork.rs`):
//! no page tables are copied, no copy-on-write faults follow, and a multi-threaded parent sends
//! no TLB-shootdown interrupts. Elsewhere, or where the kernel refuses that clone (`ENOSYS`), it
//! builds a [`Command`] with a `pre_exec` hook and lets the standard library fork.
//!
//! Both paths run the same steps in the child ([`run_in_child`]): new session, controlling
//! terminal, supplementary groups, group id, user id, descriptors. These run in a child of a
//! possibly multi-threaded parent (and, for the clone, on the parent's memory), so they only make
//! async-signal-safe system calls through `libc`: they allocate nothing, take no lock and read no
//! file. Everything they need (the group list, the descriptor numbers, the descriptor limit) is
//! computed in the parent beforehand. Credentials are changed with the raw system calls on
//! Linux: glibc's `setuid` and friends broadcast the change to every thread of the process they
//! believe they run in, which a child sharing its parent's memory must not do.

use std::ffi::OsString;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What the child does to itself before `exec`, in this order: new session, controlling
/// terminal, supplementary groups, group id, user id, descriptors.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChildSetup {
    /// Start a new session (`setsid`), detaching from the parent's terminal.
    pub(crate) new_session: bool,
    /// Make the terminal on fd 0 the session's controlling terminal (`TIOCSCTTY`).
    pub(crate) controlling_terminal: bool,
    /// Supplementary groups to set (`setgroups`), already resolved by the parent.
    pub(crate) groups: Option<Vec<libc::gid_t>>,
    /// Group id to set (`setgid`).
    pub(crate) gid: Option<libc::gid_t>,
    /// User id to set (`setuid`), last, so that the calls before it still have privilege.
    pub(crate) uid: Option<libc::uid_t>,
    /// Mark every descriptor from 3 up close-on-exec, so the program inherits only stdio and
    /// `inherit`.
    pub(crate) close_other_fds: bool,
    /// Descriptors to hand to the program: `(source, target)`, duplicated with `dup2` after the
    /// close-on-exec sweep. Targets must not collide with another pair's source.
    pub(crate) inherit: Vec<(RawFd, RawFd)>,
    /// Tests only: the child sends itself this signal just before `exec`, when its signal
    /// dispositions and mask are what the program will start with.
    #[cfg(test)]
    pub(crate) raise_before_exec: Option<libc::c_int>,
}

/// A program to start, fully described.
///
/// The child runs, in this order: its standard descriptors from `stdio`, the working directory,
/// `SIGPIPE` back to its default action, [`ChildSetup`], then `exec` of `program` looked up as
/// `execvp` does (in the `PATH` of `env`, or `/bin:/usr/bin` without one; a file that is
/// executable but not a program runs under `/bin/sh`). The child's signal mask is the calling
/// thread's. These are the standard library's steps for a [`Command`] with a `pre_exec` hook.
#[derive(Debug)]
pub(crate) struct Spawn<'a> {
    /// The program: a path, or a name to look up in `PATH`.
    pub(crate) program: OsString,
    /// The arguments, `argv[0]` first.
    pub(crate) argv: Vec<OsString>,
    /// The complete environment, in the order the program sees it.
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The working directory (entered before `setup` runs, so with the parent's privileges).
    pub(crate) cwd: Option<PathBuf>,
    /// The child's standard input, output and error; the same descriptor may appear more than
    /// once (a pty's terminal).
    pub(crate) stdio: [BorrowedFd<'a>; 3],
    /// The rest of the child's set-up.
    pub(crate) setup: ChildSetup,
}

/// Starts `spawn`'s program; returns the child's pid.
///
/// # Errors
///
/// An argument, variable or path holds a NUL byte (`InvalidInput`), the child could not be
/// created, or a step in the child or the `exec` failed: the error carries the child's errno.
pub(crate) fn spawn(spawn: &Spawn<'_>) -> io::Result<u32> {
    #[cfg(twine_vfork)]
    if let Some(pid) = super::vfork::spawn(spawn)? {
        return Ok(pid);
    }
    spawn_with_fork(spawn)
}

/// The portable path: the standard library forks and runs [`run_in_child`] as a `pre_exec` hook.
pub(super) fn spawn_with_fork(spawn: &Spawn<'_>) -> io::Result<u32> {
    let mut command = Command::new(&spawn.program);
    if let Some((arg0, args)) = spawn.argv.split_first() {
        command.arg0(arg0).args(args);
    }
    command.env_clear().envs(spawn.env.iter().map(|(key, value)| (key, value)));
    if let Some(cwd) = &spawn.cwd {
        command.current_dir(cwd);
    }
    let [stdin, stdout, stderr] = &spawn.stdio;
    command.stdin(Stdio::from(stdin.try_clone_to_owned()?));
    command.stdout(Stdio::from(stdout.try_clone_to_owned()?));
    command.stderr(Stdio::from(stderr.try_clone_to_owned()?));
    install(&mut command, spawn.setup.clone());
    Ok(command.spawn()?.id())
}

/// Installs `setup` as `cmd`'s pre-exec hook.
fn install(cmd: &mut Command, setup: ChildSetup) {
    let open_max = open_fd_limit();
    let hook = move || run_in_child(&setup, open_max);
    // SAFETY: `pre_exec` requires the closure to be safe to run in a forked child of a
    // multi-threaded process: it must not allocate, lock or touch state other threads may hold.
    // `run_in_child` only calls async-signal-safe functions (setsid, ioctl, the credential
    // system calls, fcntl, dup2) on data that was fully built before the fork (`setup` is
    // moved in, its vectors are only read), and builds errors with `from_raw_os_error`, which
    // does not allocate.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// The highest descriptor number worth sweeping, read in the parent (`sysconf` may not be
/// async-signal-safe everywhere).
pub(super) fn open_fd_limit() -> RawFd {
    // SAFETY: `sysconf` with a valid name has no preconditions and touches no memory of ours.
    let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    RawFd::try_from(limit).unwrap_or(65_536).clamp(256, 65_536)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The child's set-up (see [`ChildSetup`]), run after the child is created and before `exec`.
/// Async-signal-safe and allocation-free: see the module's documentation.
pub(super) fn run_in_child(setup: &ChildSetup, open_max: RawFd) -> io::Result<()> {
    if setup.new_session {
        // SAFETY: `setsid` takes no arguments and only changes this (child) process's session.
        check(unsafe { libc::setsid() })?;
    }
    if setup.controlling_terminal {
        // SAFETY: fd 0 was set up as the pty's terminal end; TIOCSCTTY takes an integer
        // argument (0: do not steal) and no pointer.
        check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })?;
    }
    if let Some(groups) = &setup.groups {
        credentials::set_groups(groups)?;
    }
    if let Some(gid) = setup.gid {
        credentials::set_gid(gid)?;
    }
    if let Some(uid) = setup.uid {
        credentials::set_uid(uid)?;
    }
    if setup.close_other_fds {
        mark_cloexec_from(3, open_max);
    }
    for &(source, target) in &setup.inherit {
        if source == target {
            // SAFETY: F_SETFD with an integer flag on a descriptor number; an invalid number
            // fails with EBADF and changes nothing.
            check(unsafe { libc::fcntl(source, libc::F_SETFD, 0) })?;
            continue;
        }
        // SAFETY: `dup2` on descriptor numbers; the new descriptor has close-on-exec clear.
        check(unsafe { libc::dup2(source, target) })?;
    }
    Ok(())
}

/// Changing this process's credentials, and only this process's: the raw system calls on
/// Linux (credentials are per task there, and the child is a single task), the C library's
/// calls elsewhere (only a forked, single-threaded child calls them).
mod credentials {
    use std::io;

    #[cfg(target_os = "linux")]
    fn check(rc: libc::c_long) -> io::Result<()> {
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    // The 16-bit-id system calls of 32-bit x86 and Arm would truncate ids: use the 32-bit ones.
    #[cfg(all(target_os = "linux", not(any(target_arch = "x86", target_arch = "arm"))))]
    use libc::{
        SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS, SYS_setuid as SYS_SETUID,
    };
    #[cfg(all(target_os = "linux", any(target_arch = "x86", target_arch = "arm")))]
    use libc::{
        SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS, SYS_setuid32 as SYS_SETUID,
    };

    /// `setgroups(groups)`.
    pub(super) fn set_groups(groups: &[libc::gid_t]) -> io::Result<()> {
        // Past NGROUPS_MAX (65536) the kernel refuses the list with EINVAL; a count beyond the
        // C type's range is refused the same way.
        let count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        #[cfg(target_os = "linux")]
        // SAFETY: the system call takes a count and a pointer to that many `gid_t`, which it
        // only reads; both describe the live, immutable `groups` slice (a clamped count is
        // larger than any list the kernel reads).
        return check(unsafe { libc::syscall(SYS_SETGROUPS, count, groups.as_ptr()) });
        #[cfg(not(target_os = "linux"))]
        // SAFETY: as above, through the C library.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return super::check(unsafe { libc::setgroups(count as _, groups.as_ptr()) });
    }

    /// `setgid(gid)`: real, effective and saved group id when privileged.
    pub(super) fn set_gid(gid: libc::gid_t) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        // SAFETY: the system call takes one integer and changes only this task's credentials.
        return check(unsafe { libc::syscall(SYS_SETGID, gid) });
        #[cfg(not(target_os = "linux"))]
        // SAFETY: as above, through the C library.
        return super::check(unsafe { libc::setgid(gid) });
    }

    /// `setuid(uid)`: real, effective and saved user id when privileged.
    pub(super) fn set_uid(uid: libc::uid_t) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        // SAFETY: as for `set_gid`.
        return check(unsafe { libc::syscall(SYS_SETUID, uid) });
        #[cfg(not(target_os = "linux"))]
        // SAFETY: as above, through the C library.
        return super::check(unsafe { libc::setuid(uid) });
    }
}

/// Marks every descriptor from `first` up close-on-exec (std's error pipe to the parent is
/// already close-on-exec, so exec failures are still reported).
fn mark_cloexec_from(first: RawFd, open_max: RawFd) {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: the close_range system call takes three integers; with CLOSE_RANGE_CLOEXEC it
        // only sets a flag on descriptors in range. Old kernels fail with ENOSYS or EINVAL, and
        // the loop below takes over.
        let rc = unsafe {
            libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC)
        };
        if rc == 0 {
            return;
        }
    }
    for fd in first..open_max {
        // SAFETY: F_SETFD with an integer flag; descriptors that are not open fail with EBADF,
        // which is ignored on purpose.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

//! The child side of spawning: what runs between `fork` and `exec`.
//!
//! [`install`] registers one `pre_exec` hook on a [`Command`]. The hook runs in the forked child
//! of a possibly multi-threaded parent, so it only makes async-signal-safe system calls through
//! `libc`: it allocates nothing, takes no lock and reads no file. Everything it needs (the group
//! list, the descriptor numbers) is computed in the parent beforehand.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

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
}

/// Installs `setup` as `cmd`'s pre-exec hook.
pub(crate) fn install(cmd: &mut Command, setup: ChildSetup) {
    let open_max = open_fd_limit();
    let hook = move || run_in_child(&setup, open_max);
    // SAFETY: `pre_exec` requires the closure to be safe to run in a forked child of a
    // multi-threaded process: it must not allocate, lock or touch state other threads may hold.
    // `run_in_child` only calls async-signal-safe functions (setsid, ioctl, setgroups, setgid,
    // setuid, syscall/fcntl, dup2) on data that was fully built before the fork (`setup` is
    // moved in, its vectors are only read), and builds errors with `from_raw_os_error`, which
    // does not allocate.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// The highest descriptor number worth sweeping, read in the parent (`sysconf` may not be
/// async-signal-safe everywhere).
fn open_fd_limit() -> RawFd {
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

fn run_in_child(setup: &ChildSetup, open_max: RawFd) -> io::Result<()> {
    if setup.new_session {
        // SAFETY: `setsid` takes no arguments and only changes this (child) process's session.
        check(unsafe { libc::setsid() })?;
    }
    if setup.controlling_terminal {
        // SAFETY: fd 0 was set up by `Command` as the pty's terminal end; TIOCSCTTY takes an
        // integer argument (0: do not steal) and no pointer.
        check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })?;
    }
    if let Some(groups) = &setup.groups {
        // Group lists are bounded by NGROUPS_MAX (65536), far below the C type's range.
        #[allow(clippy::cast_possible_truncation)]
        let count = groups.len() as _;
        // SAFETY: the pointer and length describe the live, immutable `groups` vector of
        // `gid_t`, which `setgroups` only reads.
        check(unsafe { libc::setgroups(count, groups.as_ptr()) })?;
    }
    if let Some(gid) = setup.gid {
        // SAFETY: `setgid` takes a plain integer and changes only this process's credentials.
        check(unsafe { libc::setgid(gid) })?;
    }
    if let Some(uid) = setup.uid {
        // SAFETY: as for `setgid`.
        check(unsafe { libc::setuid(uid) })?;
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

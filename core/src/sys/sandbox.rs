//! Confining a process that parses untrusted data: the steps OpenSSH's `sshd-auth` takes
//! before it reads a byte from the network, as safe calls.
//!
//! A worker calls them in this order, while it is still root and after everything it needs
//! from the file system is open (listening sockets, the monitor's socketpair end):
//!
//! 1. [`enter_empty_chroot`] — the file system disappears (needs root).
//! 2. [`drop_privileges`] — every uid and gid becomes the unprivileged user's, with no
//!    supplementary groups, and getting root back is checked to fail.
//! 3. [`limit_resources`] — no file may be grown (`RLIMIT_FSIZE` 0).
//! 4. [`no_new_privs`] — no `execve` can ever raise privileges again.
//! 5. [`install_seccomp`] — every thread may make only the system calls a reactor needs; the
//!    file-system family fails with `EACCES`, anything else kills the process.
//!
//! [`enter`] does all five. Linux only: elsewhere each step fails with `Unsupported`.

use std::io;
use std::path::Path;

/// An unprivileged identity and an empty directory to confine a worker to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox<'a> {
    /// The user id every real, effective and saved uid becomes.
    pub uid: u32,
    /// The group id every real, effective and saved gid becomes; the only group.
    pub gid: u32,
    /// An empty directory, owned by root and not writable by anyone else.
    pub chroot: &'a Path,
}

/// Applies every step of the sandbox, in order (see the module documentation).
pub fn enter(sandbox: &Sandbox<'_>) -> io::Result<()> {
    enter_empty_chroot(sandbox.chroot)?;
    drop_privileges(sandbox.uid, sandbox.gid)?;
    limit_resources()?;
    no_new_privs()?;
    install_seccomp()
}

/// Changes root to `dir` and the working directory to the new root. `dir` must be empty,
/// owned by root and writable only by root, so the confined process can neither find nor
/// plant anything there.
pub fn enter_empty_chroot(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: must be a directory owned by root and writable only by it", dir.display()),
        ));
    }
    if std::fs::read_dir(dir)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not empty", dir.display()),
        ));
    }
    nix::unistd::chroot(dir)?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Sets every uid to `uid` and every gid to `gid`, with `gid` as the only group, then checks
/// that root cannot be regained. Refuses uid 0 and gid 0.
pub fn drop_privileges(uid: u32, gid: u32) -> io::Result<()> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    if uid == 0 || gid == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "refusing to drop to root's ids"));
    }
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    if Uid::effective().is_root() {
        setgroups(&[gid])?;
    }
    setresgid(gid, gid, gid)?;
    setresuid(uid, uid, uid)?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok()
        || nix::unistd::setgid(Gid::from_raw(0)).is_ok()
    {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "root could be regained"));
    }
    Ok(())
}

/// Forbids growing any file (`RLIMIT_FSIZE` 0), as OpenSSH's sandbox does.
pub fn limit_resources() -> io::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_FSIZE, 0, 0)?;
    Ok(())
}

/// Sets `no_new_privs` on the calling thread: no later `execve` can gain privileges (setuid
/// bits and file capabilities are ignored), and a seccomp filter may be installed.
#[cfg(target_os = "linux")]
pub fn no_new_privs() -> io::Result<()> {
    nix::sys::prctl::set_no_new_privs()?;
    Ok(())
}

/// Sets `no_new_privs` (Linux only).
#[cfg(not(target_os = "linux"))]
pub fn no_new_privs() -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Installs the reactor's seccomp filter on every thread of the process (see
/// [`REACTOR_SYSCALLS`] and [`REFUSED_SYSCALLS`]); sets `no_new_privs` first.
#[cfg(target_os = "linux")]
pub fn install_seccomp() -> io::Result<()> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    use std::collections::BTreeMap;

    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(io::Error::other)?;
    let program = |calls: &[i64], mismatch, matched| -> io::Result<BpfProgram> {
        let rules = calls.iter().map(|&call| (call, Vec::new())).collect::<BTreeMap<_, _>>();
        let filter =
            SeccompFilter::new(rules, mismatch, matched, arch).map_err(io::Error::other)?;
        BpfProgram::try_from(filter).map_err(io::Error::other)
    };
    let allowed: Vec<i64> = REACTOR_SYSCALLS.iter().chain(REFUSED_SYSCALLS).copied().collect();
    // Two filters: the kernel takes the most restrictive answer of all, so a call in neither
    // list is killed by the first, and a refused call is allowed by the first and made to
    // fail with EACCES by the second.
    let allow_list = program(&allowed, SeccompAction::KillProcess, SeccompAction::Allow)?;
    let refusals = program(
        REFUSED_SYSCALLS,
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::EACCES).unwrap_or(13)),
    )?;
    // The refusals go first: installing a filter makes a `prctl` call, which only they allow.
    seccompiler::apply_filter_all_threads(&refusals).map_err(io::Error::other)?;
    seccompiler::apply_filter_all_threads(&allow_list).map_err(io::Error::other)?;
    Ok(())
}

/// Installs the reactor's seccomp filter (Linux only).
#[cfg(not(target_os = "linux"))]
pub fn install_seccomp() -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Installs a privilege-separated SSH worker's filter: the reactor's ([`REACTOR_SYSCALLS`],
/// file-system calls refused), plus what serving logged-in users needs in the same process —
/// [`WORKER_SYSCALLS`]: `socket` for `AF_INET`, `AF_INET6` and `AF_UNIX` only (TCP and
/// Unix-socket forwarding), `connect`, `bind`, `listen`, and `ioctl` for a session's pty
/// (window size, modes). Still no `execve`, `fork`/`clone`, `ptrace`, `kill`, `setuid`,
/// `mount`, `chroot`: sessions are started by the monitor.
///
/// OpenSSH sandboxes only its pre-authentication child this tightly; its post-authentication
/// child runs unconfined as the user. A worker here serves many connections in both phases,
/// so it keeps the one filter, opened just enough for forwarding.
#[cfg(target_os = "linux")]
pub fn install_worker_seccomp() -> io::Result<()> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;

    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(io::Error::other)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = REACTOR_SYSCALLS
        .iter()
        .chain(REFUSED_SYSCALLS)
        .chain(WORKER_SYSCALLS)
        .map(|&call| (call, Vec::new()))
        .collect();
    let mut families = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX] {
        let family = u64::try_from(family).map_err(io::Error::other)?;
        let condition = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, family)
            .map_err(io::Error::other)?;
        families.push(SeccompRule::new(vec![condition]).map_err(io::Error::other)?);
    }
    rules.insert(libc::SYS_socket, families);
    let program = |rules, mismatch, matched| -> io::Result<BpfProgram> {
        let filter =
            SeccompFilter::new(rules, mismatch, matched, arch).map_err(io::Error::other)?;
        BpfProgram::try_from(filter).map_err(io::Error::other)
    };
    let allow_list = program(rules, SeccompAction::KillProcess, SeccompAction::Allow)?;
    let refused = REFUSED_SYSCALLS.iter().map(|&call| (call, Vec::new())).collect();
    let refusals = program(
        refused,
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::EACCES).unwrap_or(13)),
    )?;
    seccompiler::apply_filter_all_threads(&refusals).map_err(io::Error::other)?;
    seccompiler::apply_filter_all_threads(&allow_list).map_err(io::Error::other)?;
    Ok(())
}

/// Installs a worker's seccomp filter (Linux only).
#[cfg(not(target_os = "linux"))]
pub fn install_worker_seccomp() -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// What a privilege-separated SSH worker may do beyond [`REACTOR_SYSCALLS`] (see
/// [`install_worker_seccomp`]; `socket` is allowed separately, for three families).
#[cfg(target_os = "linux")]
pub const WORKER_SYSCALLS: &[i64] = &[
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_ioctl,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_rt_sigaction,
    libc::SYS_pipe2,
    libc::SYS_socketpair,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_lseek,
    libc::SYS_uname,
    libc::SYS_sched_getaffinity,
    libc::SYS_prlimit64,
    libc::SYS_getrusage,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_umask,
];

/// Takes ownership of `count` descriptors from `first` on that the process inherited (a
/// worker's socketpair end and listeners, placed there by its parent). Each must be open;
/// the first call takes them, later calls fail.
pub fn take_inherited_fds(first: i32, count: usize) -> io::Result<Vec<std::os::fd::OwnedFd>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if first < 3 || TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "inherited descriptors taken"));
    }
    let mut fds = Vec::with_capacity(count);
    for offset in 0..count {
        let raw = first
            .checked_add(i32::try_from(offset).map_err(io::Error::other)?)
            .ok_or_else(|| io::Error::other("descriptor number overflow"))?;
        // The descriptor must be open before we claim it.
        // SAFETY: F_GETFD only reads the descriptor's flags; a closed number fails with EBADF.
        if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is open (checked above), below any descriptor this process opened
        // itself (the parent placed it before exec), and claimed once (`TAKEN`): nothing
        // else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        nix::fcntl::fcntl(&owned, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        fds.push(owned);
    }
    Ok(fds)
}

/// The system calls a sandboxed reactor may make: readiness (epoll, eventfd for the waker),
/// reading and writing sockets it already has, accepting on listeners it already has, memory,
/// time, futexes, signals it already installed, and exiting. No `socket`, `connect`, `bind`,
/// `execve`, `fork`/`clone`, `ptrace` or `kill` of another process.
#[cfg(target_os = "linux")]
pub const REACTOR_SYSCALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_wait,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_eventfd2,
    libc::SYS_accept4,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_accept,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_futex,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_getrandom,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_sched_yield,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// System calls that fail with `EACCES` instead of killing: the file-system family, which
/// library code may probe (and must find nothing).
#[cfg(target_os = "linux")]
pub const REFUSED_SYSCALLS: &[i64] = &[
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    libc::SYS_readlinkat,
];

/// The most descriptors [`recv_with_fds`] accepts with one message; more are closed.
pub const MAX_PASSED_FDS: usize = 8;

/// Sends `data` on the Unix socket `socket`, with `fds` attached (`SCM_RIGHTS`): the way the
/// monitor hands a worker a session's pty master or pipes. Returns how many bytes were sent;
/// the descriptors go with the first byte.
pub fn send_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    data: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<usize> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsgs = if raw.is_empty() { Vec::new() } else { vec![ControlMessage::ScmRights(&raw)] };
    let iov = [io::IoSlice::new(data)];
    Ok(sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)?)
}

/// Receives into `buf` from the Unix socket `socket`, appending any descriptors that came with
/// the bytes to `fds` (close-on-exec; beyond [`MAX_PASSED_FDS`] they are closed). Returns how
/// many bytes were read; 0 is end of stream. A truncated set of descriptors is an error.
pub fn recv_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<std::os::fd::OwnedFd>,
) -> io::Result<usize> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; MAX_PASSED_FDS]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let bytes = msg.bytes;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            for raw in received {
                // SAFETY: the kernel just installed `raw` in our table for this message; nothing
                // else in the process knows the number, so this is its only owner.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fds.len() < MAX_PASSED_FDS {
                    fds.push(owned);
                }
            }
        }
    }
    if truncated {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "too many descriptors passed"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_sent_with_bytes_arrives_with_them_and_still_works() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut reader, writer) = io::pipe().unwrap();
        assert_eq!(send_with_fds(a.as_fd(), b"pty", &[writer.as_fd()]).unwrap(), 3);
        drop(writer);
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        assert_eq!(recv_with_fds(b.as_fd(), &mut buf, &mut fds).unwrap(), 3);
        assert_eq!(&buf[..3], b"pty");
        assert_eq!(fds.len(), 1);
        let mut passed = std::fs::File::from(fds.pop().unwrap());
        passed.write_all(b"through the socket").unwrap();
        drop(passed);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the socket");
    }

    #[test]
    fn dropping_to_root_s_user_or_group_is_refused_before_anything_changes() {
        for (uid, gid) in [(0, 65534), (65534, 0)] {
            let err = drop_privileges(uid, gid).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn a_chroot_into_a_directory_that_is_not_empty_is_refused() {
        let dir = std::env::temp_dir().join(format!("twine-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("planted")).unwrap();
        let result = enter_empty_chroot(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(result.is_err());
    }

    #[test]
    fn bytes_without_descriptors_arrive_with_none() {
        let (a, b) = UnixStream::pair().unwrap();
        send_with_fds(a.as_fd(), b"x", &[]).unwrap();
        let mut fds = Vec::new();
        assert_eq!(recv_with_fds(b.as_fd(), &mut [0u8; 4], &mut fds).unwrap(), 1);
        assert!(fds.is_empty());
    }

    #[test]
    fn more_descriptors_than_allowed_are_an_error_and_none_leak_into_the_list() {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<_> = (0..MAX_PASSED_FDS + 1).map(|_| io::pipe().unwrap()).collect();
        let borrowed: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        send_with_fds(a.as_fd(), b"x", &borrowed).unwrap();
        let mut fds = Vec::new();
        assert!(recv_with_fds(b.as_fd(), &mut [0u8; 4], &mut fds).is_err());
        assert!(fds.len() <= MAX_PASSED_FDS);
    }
}

//! What conchd adds around a session's process, as sshd does: login records for sessions
//! on a pty ([`crate::utmp`]), `PrintMotd` (a login shell on a pty first shows `/etc/motd`)
//! and `~/.ssh/rc` (or `/etc/ssh/sshrc`) run before the session's program. For the last two
//! the session starts `conchd` itself in a helper role, already as the user: it prints the
//! file, runs the rc script, and then becomes the session's program (same process, same
//! terminal, `argv[0]` kept), so nothing is written into the session from outside.
//!
//! With PAM sessions (`UsePAM yes`, as root) the session starts in the PAM session keeper
//! ([`crate::keeper`]) as root, which opens the PAM session and starts the helper, still as
//! root: the helper then takes the terminal's foreground and becomes the user first.

use std::cell::RefCell;
use std::rc::Rc;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use twine::conch::server::session::{LocalSpawner, SessionSpawner, SpawnPlan};
use twine::internet::process::{Process, ProcessProtocol, ProcessStatus};

use twine::conch::server::Account;

use crate::utmp::Entry;

/// The program the helper becomes.
const PROGRAM_VAR: &str = "CONCHD_HELPER_PROGRAM";
/// Its `argv[0]`.
const ARG0_VAR: &str = "CONCHD_HELPER_ARG0";
/// Set when the helper prints `/etc/motd`.
const MOTD_VAR: &str = "CONCHD_HELPER_MOTD";
/// The rc script the helper runs first.
const RC_VAR: &str = "CONCHD_HELPER_RC";
/// Set when the helper prints the "Last login" line for this user.
const LASTLOG_VAR: &str = "CONCHD_HELPER_LASTLOG";
/// Set (by the PAM session keeper) when the helper starts as root and becomes this user.
pub(crate) const BECOME_VAR: &str = "CONCHD_HELPER_BECOME";

/// The helper's `argv[0]`.
pub(crate) const ARG0: &str = "conchd-session";

/// sshd's system-wide rc script, run when the user has none.
const SYSTEM_RC: &str = "/etc/ssh/sshrc";

/// Spawns like [`LocalSpawner`], with login records, and through the helper when there is
/// a message of the day to show or an rc script to run.
pub(crate) struct AroundSpawner {
    inner: LocalSpawner,
    exe: Option<PathBuf>,
    print_motd: bool,
    print_last_log: bool,
    /// With PAM sessions: the PAM service, and the account the keeper runs as (root).
    keeper: Option<(String, Account)>,
}

impl AroundSpawner {
    pub(crate) fn new(inner: LocalSpawner, print_motd: bool, print_last_log: bool) -> Self {
        let exe = this_program().ok();
        Self { inner, exe, print_motd, print_last_log, keeper: None }
    }

    /// Every session opens a PAM session of `service` in the session keeper (as root; a server
    /// that is not root keeps spawning as before).
    #[cfg(feature = "pam")]
    #[must_use]
    pub(crate) fn with_pam_sessions(mut self, service: String) -> Self {
        match Account::current() {
            Ok(me) if me.uid == 0 => self.keeper = Some((service, me)),
            Ok(_) => {}
            Err(err) => log::warn!("PAM sessions: {err}"),
        }
        self
    }

    /// Whether sessions open their PAM session in the keeper.
    #[cfg(feature = "pam")]
    pub(crate) fn keeps_pam_sessions(&self) -> bool {
        self.keeper.is_some() && self.exe.is_some()
    }
}

/// The process's protocol, which also closes the login record when the process ends.
struct Recorded {
    inner: Box<dyn ProcessProtocol>,
    entry: Rc<RefCell<Option<Entry>>>,
}

impl ProcessProtocol for Recorded {
    fn connection_made(&mut self, process: Process) {
        self.inner.connection_made(process);
    }

    fn out_received(&mut self, data: &[u8]) {
        self.inner.out_received(data);
    }

    fn err_received(&mut self, data: &[u8]) {
        self.inner.err_received(data);
    }

    fn in_connection_lost(&mut self) {
        self.inner.in_connection_lost();
    }

    fn out_connection_lost(&mut self) {
        self.inner.out_connection_lost();
    }

    fn err_connection_lost(&mut self) {
        self.inner.err_connection_lost();
    }

    fn process_exited(&mut self, status: ProcessStatus) {
        self.inner.process_exited(status);
    }

    fn process_ended(&mut self, status: ProcessStatus) {
        if let Some(entry) = self.entry.borrow_mut().take() {
            entry.logout();
        }
        self.inner.process_ended(status);
    }
}

impl SessionSpawner for AroundSpawner {
    fn spawn(
        &self,
        mut plan: SpawnPlan,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Process, twine::internet::Error> {
        // Only conchd sets its own roles' variables (the keeper runs as root).
        plan.env.retain(|(name, _)| !name.as_bytes().starts_with(b"CONCHD_"));
        let login_shell = plan.pty.is_some()
            && plan.args.is_empty()
            && plan.arg0.as_bytes().first() == Some(&b'-');
        let motd = self.print_motd && login_shell;
        let last_log = self.print_last_log && login_shell;
        let user_rc = plan.account.home.join(".ssh/rc");
        let rc = if plan.user_rc && user_rc.is_file() {
            Some(user_rc)
        } else {
            Some(PathBuf::from(SYSTEM_RC)).filter(|p| p.is_file())
        };
        let keeper = self.keeper.as_ref().filter(|_| self.exe.is_some());
        let user = plan.account.name.clone();
        let uid = plan.account.uid;
        if let (true, Some(exe)) = (keeper.is_some() || motd || last_log || rc.is_some(), &self.exe)
        {
            plan.env.push((PROGRAM_VAR.into(), plan.program.clone().into_os_string()));
            plan.env.push((ARG0_VAR.into(), plan.arg0.clone()));
            if motd {
                plan.env.push((MOTD_VAR.into(), "1".into()));
            }
            if last_log {
                // As sshd, the record is read before this login's is written.
                let previous = crate::lastlog::Previous::of(uid, &user);
                plan.env.push((LASTLOG_VAR.into(), previous.to_env().into()));
            }
            if let Some(rc) = rc {
                plan.env.push((RC_VAR.into(), rc.into_os_string()));
            }
            plan.program = exe.clone();
            plan.arg0 = OsString::from(ARG0);
        }
        #[cfg(feature = "pam")]
        if let Some((service, root)) = keeper {
            plan.env.extend(crate::keeper::variables(&user, service, login_shell));
            plan.arg0 = OsString::from(crate::keeper::ARG0);
            plan.account = root.clone();
        }
        let host = plan
            .env
            .iter()
            .find(|(k, _)| k == "SSH_CONNECTION")
            .and_then(|(_, v)| v.to_str()?.split(' ').next()?.parse().ok());
        let slot = Rc::new(RefCell::new(None));
        let protocol = Box::new(Recorded { inner: protocol, entry: Rc::clone(&slot) });
        let process = self.inner.spawn(plan, protocol)?;
        if let Some(entry) =
            process.tty_path().and_then(|tty| Entry::new(process.pid(), tty, &user, host))
        {
            entry.login();
            crate::lastlog::record(uid, &entry.line, host);
            *slot.borrow_mut() = Some(entry);
        }
        Ok(process)
    }
}

/// In the helper role (the variables are set): prints `/etc/motd`, runs the rc script, and
/// becomes the session's program with its arguments. Returns only if this process is not the
/// helper, or the program could not be run.
pub(crate) fn run_helper() -> Option<std::io::Error> {
    let program = std::env::var_os(PROGRAM_VAR)?;
    // The session's login record names the process conchd started: this one, or the keeper.
    let mut session_pid = std::process::id();
    if let Some(user) = std::env::var_os(BECOME_VAR) {
        std::env::remove_var(BECOME_VAR);
        session_pid = nix::unistd::getppid().as_raw().try_into().unwrap_or(session_pid);
        if let Err(err) = become_user(&user) {
            return Some(err);
        }
    }
    let arg0 = std::env::var_os(ARG0_VAR).unwrap_or_else(|| program.clone());
    let motd = std::env::var_os(MOTD_VAR).is_some();
    let rc = std::env::var_os(RC_VAR);
    let last_log = std::env::var(LASTLOG_VAR).ok();
    for var in [PROGRAM_VAR, ARG0_VAR, MOTD_VAR, RC_VAR, LASTLOG_VAR] {
        std::env::remove_var(var);
    }
    let hushed =
        std::env::var_os("HOME").is_some_and(|home| Path::new(&home).join(".hushlogin").exists());
    // As sshd: the last login, then /etc/motd; ~/.hushlogin silences both.
    let previous = match last_log.as_deref().and_then(crate::lastlog::Previous::from_env) {
        _ if hushed => None,
        Some(crate::lastlog::Previous::Recorded(secs, host)) => Some((secs, host)),
        Some(crate::lastlog::Previous::InWtmp(user)) => crate::utmp::last_login(&user, session_pid),
        Some(crate::lastlog::Previous::Never) | None => None,
    };
    if let Some((secs, host)) = previous {
        use std::io::Write;
        let line = crate::utmp::last_login_message(secs, &host);
        let _ = std::io::stdout().write_all(line.as_bytes());
        let _ = std::io::stdout().flush();
    }
    let motd = motd && !hushed;
    if motd {
        if let Ok(text) = std::fs::read("/etc/motd") {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&text);
            let _ = std::io::stdout().flush();
        }
    }
    if let Some(rc) = rc {
        let _ = std::process::Command::new("/bin/sh")
            .arg(rc)
            .stdin(std::process::Stdio::null())
            .status();
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Some(std::process::Command::new(program).arg0(arg0).args(args).exec())
}

/// The helper started as root by the PAM session keeper: unblocks every signal; on a terminal,
/// takes its foreground
/// in a process group of its own (the keeper leads the terminal's session and stays in the
/// background); then becomes `user` for good (initgroups, setgid, setuid).
fn become_user(user: &std::ffi::OsStr) -> std::io::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    use std::os::fd::AsFd;
    let fail = |what: &str, err: nix::Error| {
        std::io::Error::other(format!("{what} for {}: {err}", user.to_string_lossy()))
    };
    let name = std::ffi::CString::new(user.as_bytes())
        .map_err(|_| std::io::Error::other("a user name with a NUL byte"))?;
    let account = nix::unistd::User::from_name(&user.to_string_lossy())
        .map_err(|err| fail("looking up the account", err))?
        .ok_or_else(|| std::io::Error::other(format!("no account {}", user.to_string_lossy())))?;
    // The keeper blocks the signals it passes on, and the block survives exec: the
    // session's program starts with none blocked.
    SigSet::all().thread_unblock().map_err(|err| fail("unblocking signals", err))?;
    let stdin = std::io::stdin();
    if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        let me = nix::unistd::Pid::from_raw(0);
        nix::unistd::setpgid(me, me).map_err(|err| fail("setpgid", err))?;
        // From a background group, taking the foreground would stop us with SIGTTOU.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        ttou.thread_block().map_err(|err| fail("blocking SIGTTOU", err))?;
        let taken = nix::unistd::tcsetpgrp(stdin.as_fd(), nix::unistd::getpgrp());
        ttou.thread_unblock().map_err(|err| fail("unblocking SIGTTOU", err))?;
        taken.map_err(|err| fail("taking the terminal", err))?;
    }
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    nix::unistd::initgroups(&name, account.gid).map_err(|err| fail("initgroups", err))?;
    nix::unistd::setgid(account.gid).map_err(|err| fail("setgid", err))?;
    nix::unistd::setuid(account.uid).map_err(|err| fail("setuid", err))?;
    if !account.uid.is_root() && nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
        return Err(std::io::Error::other("could not drop root"));
    }
    // A keeper killed outright (the SSH `signal` request's KILL, which it cannot pass on)
    // takes the session's program with it. Set after setuid, which clears it.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|err| fail("PR_SET_PDEATHSIG", err))?;
    Ok(())
}

/// This very program, to run again in a helper role (session helper, keeper, privilege
/// separation worker): `/proc/self/exe`, which still runs when the file was replaced or removed
/// since conchd started (as after a package upgrade, or in OpenSSH's `reexec` test), else the
/// path it was started from.
pub(crate) fn this_program() -> Result<PathBuf, String> {
    let proc = Path::new("/proc/self/exe");
    if proc.exists() {
        return Ok(proc.to_owned());
    }
    std::env::current_exe().map_err(|err| format!("finding conchd: {err}"))
}

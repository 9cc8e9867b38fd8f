//! The PAM session keeper (`UsePAM yes`, conchd running as root): sshd opens a login's PAM
//! session in a privileged process of its own, from that process's main thread, and the
//! user's program is its child. `pam_loginuid` needs that (it may write `/proc/self/loginuid`
//! only from a main thread), as do the modules that act on the calling process and so on its
//! children (`pam_limits`, `pam_keyinit`).
//!
//! So each session starts `conchd` itself as root in this role. The keeper:
//!
//! 1. opens the PAM session (`pam_start` with `PAM_TTY` the pty's path or `ssh`, `PAM_RHOST`,
//!    `PAM_RUSER`; `pam_setcred(PAM_ESTABLISH_CRED)`, `pam_open_session`), and shows what the
//!    modules said before a login shell, as sshd does;
//! 2. gives the pty to the user, and starts the session helper of [`crate::around`] with the
//!    PAM environment added; the helper (still root) takes the terminal's foreground in a
//!    process group of its own, becomes the user (initgroups, setgid, setuid) and runs the
//!    session's program;
//! 3. passes every signal conchd sends it (the SSH `signal` request, and the terminal's hangup,
//!    which reaches the keeper as the session leader) on to the child, and waits for it;
//! 4. closes the session (`pam_close_session`, `pam_setcred(PAM_DELETE_CRED)`, `pam_end`) and
//!    ends as the child did: with its exit code, or killed by the same signal, so that conchd
//!    reports `exit-status` or `exit-signal` as for the program itself.
//!
//! Signals are taken synchronously: the keeper blocks them and reads them from a signalfd,
//! so no handler runs and nothing is lost between the checks. The child starts with an empty
//! signal mask: the helper unblocks what the keeper blocked.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{Gid, Pid, Uid};
use twine::conch::server::{PamSession, PamSessionSetup};

/// Set in the keeper's environment: the user whose session it keeps.
pub(crate) const USER_VAR: &str = "CONCHD_KEEPER_USER";
/// The PAM service.
pub(crate) const SERVICE_VAR: &str = "CONCHD_KEEPER_SERVICE";
/// Set when the session is a login shell on a pty: what PAM's modules say is shown first.
pub(crate) const LOGIN_VAR: &str = "CONCHD_KEEPER_LOGIN";

/// The keeper's `argv[0]` (what `ps` shows).
pub(crate) const ARG0: &str = "conchd-keeper";

/// The signals passed on to the child (those the SSH `signal` request names, but `KILL`, which
/// no process can catch, and the job-control and user ones a session may get).
const FORWARDED: [Signal; 12] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGILL,
    Signal::SIGABRT,
    Signal::SIGFPE,
    Signal::SIGUSR1,
    Signal::SIGSEGV,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTERM,
];

/// PAM variables that do not override the session's own (sshd keeps its `SSH_*` ones).
fn overridable(name: &str) -> bool {
    !name.starts_with("SSH_") && !name.starts_with("CONCHD_")
}

/// In the keeper role (the variables are set): keeps the session and ends this process as the
/// child ended. Returns only if this process is not the keeper.
pub(crate) fn run_keeper() -> Option<std::convert::Infallible> {
    let user = std::env::var(USER_VAR).ok()?;
    crate::logging::install(crate::logging::syslog(), log::LevelFilter::Info);
    let service = std::env::var(SERVICE_VAR).unwrap_or_else(|_| "sshd".to_owned());
    let login = std::env::var_os(LOGIN_VAR).is_some();
    match keep(&user, &service, login) {
        Ok(ended) => finish(ended),
        Err(message) => {
            log::error!("{message}");
            eprintln!("conchd: {message}");
            std::process::exit(1);
        }
    }
}

/// Opens the session, runs the child, closes the session; how the child ended.
fn keep(user: &str, service: &str, login: bool) -> Result<std::process::ExitStatus, String> {
    let account = nix::unistd::User::from_name(user)
        .map_err(|err| format!("looking up {user}: {err}"))?
        .ok_or_else(|| format!("no account {user}"))?;
    let mut signals = SigSet::empty();
    for signal in FORWARDED {
        signals.add(signal);
    }
    signals.add(Signal::SIGCHLD);
    signals.thread_block().map_err(|err| format!("blocking signals: {err}"))?;
    let inbox = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC)
        .map_err(|err| format!("signalfd: {err}"))?;

    let tty = std::env::var("SSH_TTY").ok().filter(|_| on_a_terminal());
    let connection = std::env::var("SSH_CONNECTION").ok();
    let mut setup = PamSessionSetup::new(service, user);
    setup.tty = tty.clone().unwrap_or_else(|| "ssh".to_owned());
    setup.rhost = connection.as_deref().and_then(|c| c.split(' ').next()).map(str::to_owned);
    setup.ssh_connection = connection;
    let mut session = PamSession::open(&setup).map_err(|err| err.to_string())?;
    let said = session.take_messages();
    if login && !said.is_empty() && !hushed(&account.dir) {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = out.write_all(said.as_bytes()).and_then(|()| out.flush());
    }
    if tty.is_some() {
        give_terminal(account.uid, account.gid);
    }

    let mut command = Command::new(crate::around::this_program()?);
    command
        .arg0(crate::around::ARG0)
        .args(std::env::args_os().skip(1))
        .env_remove(USER_VAR)
        .env_remove(SERVICE_VAR)
        .env_remove(LOGIN_VAR)
        .env(crate::around::BECOME_VAR, user);
    for (name, value) in session.environment() {
        if overridable(&name) {
            command.env(name, value);
        }
    }
    let mut child = command.spawn().map_err(|err| format!("starting the session: {err}"))?;
    let pid = child.id().try_into().map(Pid::from_raw).map_err(|_| "pid out of range")?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(err) => return Err(format!("waiting for the session: {err}")),
        }
        match inbox.read_signal() {
            Ok(Some(info)) => {
                let Ok(signal) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
                else {
                    continue;
                };
                if signal != Signal::SIGCHLD {
                    let _ = nix::sys::signal::kill(pid, signal);
                }
            }
            Ok(None) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(format!("reading signals: {err}")),
        }
    };
    if let Err(err) = session.close() {
        log::error!("{err}");
    }
    Ok(status)
}

/// Ends this process as the child ended: its exit code, or the same signal with the default
/// action (no core file of the keeper).
fn finish(status: std::process::ExitStatus) -> ! {
    if let Some(signal) = status.signal() {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        let _ = signal_hook::low_level::emulate_default_handler(signal);
        // A signal whose default is to be ignored or to stop: end as sshd reports it.
        std::process::exit(128 + signal);
    }
    std::process::exit(status.code().unwrap_or(255));
}

/// Whether standard input is a terminal.
fn on_a_terminal() -> bool {
    nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false)
}

/// Whether `~/.hushlogin` silences the login messages.
fn hushed(home: &std::path::Path) -> bool {
    home.join(".hushlogin").exists()
}

/// sshd's `pty_setowner`: the terminal (standard input) belongs to the user and the `tty`
/// group, mode 0620 (without a `tty` group: the user's group, mode 0622).
fn give_terminal(uid: Uid, gid: Gid) {
    use nix::sys::stat::Mode;
    let stdin = std::io::stdin();
    let (group, mode) = match nix::unistd::Group::from_name("tty") {
        Ok(Some(tty)) => (tty.gid, 0o620),
        _ => (gid, 0o622),
    };
    if let Err(err) = nix::unistd::fchown(stdin.as_fd(), Some(uid), Some(group)) {
        log::warn!("giving the terminal to uid {uid}: {err}");
    }
    let _ = nix::sys::stat::fchmod(stdin.as_fd(), Mode::from_bits_truncate(mode));
}

/// The keeper's variables for a session of `user` under the PAM `service`.
pub(crate) fn variables(user: &str, service: &str, login: bool) -> Vec<(OsString, OsString)> {
    let mut vars = vec![(USER_VAR.into(), user.into()), (SERVICE_VAR.into(), service.into())];
    if login {
        vars.push((LOGIN_VAR.into(), "1".into()));
    }
    vars
}

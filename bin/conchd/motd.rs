//! What conchd adds around a session's process: login records for sessions on a pty
//! ([`crate::utmp`]) and `PrintMotd`: a login shell on a pty first shows `/etc/motd`. For
//! that the session starts `conchd` itself in a helper role that prints the file and then
//! becomes the shell (same process, same terminal, `argv[0]` `-sh` kept), so nothing is
//! written into the session from outside.

use std::cell::RefCell;
use std::rc::Rc;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use twine::conch::server::session::{LocalSpawner, SessionSpawner, SpawnPlan};
use twine::internet::process::{Process, ProcessProtocol, ProcessStatus};

use crate::utmp::Entry;

/// The shell the helper becomes.
const SHELL_VAR: &str = "CONCHD_MOTD_SHELL";
/// Its `argv[0]`.
const ARG0_VAR: &str = "CONCHD_MOTD_ARG0";

/// Spawns like [`LocalSpawner`], with login records, and login shells on a pty through the
/// helper when `PrintMotd` is on.
pub(crate) struct MotdSpawner {
    inner: LocalSpawner,
    exe: Option<PathBuf>,
}

impl MotdSpawner {
    pub(crate) fn new(inner: LocalSpawner, print_motd: bool) -> Self {
        let exe = if print_motd { std::env::current_exe().ok() } else { None };
        Self { inner, exe }
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

impl SessionSpawner for MotdSpawner {
    fn spawn(
        &self,
        mut plan: SpawnPlan,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Process, twine::internet::Error> {
        let login_shell = plan.pty.is_some()
            && plan.args.is_empty()
            && plan.arg0.as_bytes().first() == Some(&b'-');
        if let (true, Some(exe)) = (login_shell, &self.exe) {
            plan.env.push((SHELL_VAR.into(), plan.program.clone().into_os_string()));
            plan.env.push((ARG0_VAR.into(), plan.arg0.clone()));
            plan.program = exe.clone();
            plan.arg0 = OsString::from("conchd-motd");
        }
        let user = plan.account.name.clone();
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
            *slot.borrow_mut() = Some(entry);
        }
        Ok(process)
    }
}

/// In the helper role (the variables are set): prints `/etc/motd` and becomes the shell.
/// Returns only if this process is not the helper, or the shell could not be run.
pub(crate) fn run_helper() -> Option<std::io::Error> {
    let shell = std::env::var_os(SHELL_VAR)?;
    let arg0 = std::env::var_os(ARG0_VAR).unwrap_or_else(|| shell.clone());
    std::env::remove_var(SHELL_VAR);
    std::env::remove_var(ARG0_VAR);
    if let Ok(text) = std::fs::read("/etc/motd") {
        use std::io::Write;
        let _ = std::io::stdout().write_all(&text);
        let _ = std::io::stdout().flush();
    }
    Some(std::process::Command::new(shell).arg0(arg0).exec())
}

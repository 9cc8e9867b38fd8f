//! `PrintMotd`: a login shell on a pty first shows `/etc/motd`. The session starts `conchd`
//! itself in a helper role that prints the file and then becomes the shell (same process,
//! same terminal, `argv[0]` `-sh` kept), so nothing is written into the session from outside.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use twine::conch::server::session::{LocalSpawner, SessionSpawner, SpawnPlan};
use twine::internet::process::{Process, ProcessProtocol};

/// The shell the helper becomes.
const SHELL_VAR: &str = "CONCHD_MOTD_SHELL";
/// Its `argv[0]`.
const ARG0_VAR: &str = "CONCHD_MOTD_ARG0";

/// Spawns like [`LocalSpawner`], login shells on a pty through the helper.
pub(crate) struct MotdSpawner {
    inner: LocalSpawner,
    exe: Option<PathBuf>,
}

impl MotdSpawner {
    pub(crate) fn new(inner: LocalSpawner) -> Self {
        Self { inner, exe: std::env::current_exe().ok() }
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
        self.inner.spawn(plan, protocol)
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

//! Helpers for the `conchd` tests: temporary directories, free loopback ports, keys made by
//! `ssh-keygen`, throwaway Unix accounts (as root), `conchd` children killed by PID on drop,
//! and OpenSSH's `ssh` with a private configuration.
#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one client may run before `timeout` kills it (a bound, never an assertion).
pub(crate) const CLIENT_TIME_LIMIT: &str = "120";

/// The binary under test.
pub(crate) fn conchd() -> &'static str {
    env!("CARGO_BIN_EXE_conchd")
}

/// Whether the tests run as root (they may then create accounts).
pub(crate) fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("conchd-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(dir)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.0
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to `name` and returns the path as text.
    pub(crate) fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Makes an unencrypted key pair `dir/name` and `dir/name.pub` with `ssh-keygen`.
pub(crate) fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen -t {kind} failed");
    path
}

/// A Unix account made for one test (root only), deleted on drop with its home.
pub(crate) struct TestUser {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
}

impl TestUser {
    /// Creates `ct<pid><n>` with home `home` (made, owned by the user, mode 0700), shell
    /// `/bin/sh`, password field `*` (no password, not locked), and `authorized_keys` holding
    /// `key`'s public half. `None` if the account cannot be created (not root, or no
    /// `useradd`).
    pub(crate) fn create(home: &Path, key: &Path) -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ct{}x{n}", std::process::id());
        // A stale account of this name (a run with the same pid, killed before its clean-up,
        // on a machine that kept its /etc/passwd) would fail useradd and skip the test.
        let _ = Command::new("userdel").arg(&name).stderr(Stdio::null()).status();
        let mut created = false;
        for _ in 0..20 {
            // `-p '*'`: no password, but not locked (useradd's `!` locks the account, and
            // sshd with `UsePAM no` then refuses even keys).
            let status = Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", "-p", "*", "-d"])
                .arg(home)
                .arg(&name)
                .stderr(Stdio::null())
                .status()
                .ok()?;
            if status.success() {
                created = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !created {
            return None;
        }
        let user = nix::unistd::User::from_name(&name).ok()??;
        let me =
            Self { name, uid: user.uid.as_raw(), gid: user.gid.as_raw(), home: home.to_owned() };
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        std::fs::write(ssh.join("authorized_keys"), public).unwrap();
        for path in [home, ssh.as_path(), ssh.join("authorized_keys").as_path()] {
            std::os::unix::fs::chown(path, Some(me.uid), Some(me.gid)).unwrap();
        }
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
        Some(me)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        for _ in 0..20 {
            let ok = Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A running `conchd` in the foreground, killed by its PID on drop.
pub(crate) struct Daemon {
    child: Child,
    /// The port it said it listens on.
    pub(crate) port: u16,
    /// Its standard error, line by line, after the listening line.
    pub(crate) log: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts `command` (a `conchd` that logs to standard error) and waits for its
    /// `Server listening on ... port N.` line.
    pub(crate) fn start(mut command: Command) -> Self {
        let mut child = command.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let port = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Server listening on ") {
                        let port = rest.rsplit(' ').next().unwrap().trim_end_matches('.');
                        break port.parse().unwrap();
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("conchd did not start listening; it said: {seen:#?}");
                }
            }
        };
        Self { child, port, log: rx }
    }

    /// The child's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the child has exited.
    pub(crate) fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits (bounded) for a log line for each of `wanted` (a line with every one of its
    /// needles), in any order: a worker's lines reach the log through its monitor, so they may
    /// come after the monitor's own later ones. The lines found, in `wanted`'s order, or every
    /// line seen.
    pub(crate) fn log_lines_any_order(
        &self,
        wanted: &[&[&str]],
    ) -> Result<Vec<String>, Vec<String>> {
        let mut found: Vec<Option<String>> = vec![None; wanted.len()];
        let mut seen = Vec::new();
        for _ in 0..600 {
            if found.iter().all(Option::is_some) {
                return Ok(found.into_iter().flatten().collect());
            }
            match self.log.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    for (slot, needles) in found.iter_mut().zip(wanted) {
                        if slot.is_none() && needles.iter().all(|n| line.contains(n)) {
                            *slot = Some(line.clone());
                        }
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        Err(seen)
    }

    /// Waits for a log line containing `needle` (bounded), returning it.
    pub(crate) fn wait_for_log(&self, needle: &str) -> Option<String> {
        for _ in 0..600 {
            match self.log.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `conchd` run as `user` (when given) in `dir`.
pub(crate) fn conchd_command(user: Option<&TestUser>, dir: &Path) -> Command {
    let mut command = Command::new(conchd());
    command.current_dir(dir);
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// OpenSSH's `ssh` with no configuration, no known hosts, only `key`, batch mode.
pub(crate) fn ssh(port: u16, key: &Path, user: &str) -> Command {
    let mut command = Command::new("timeout");
    command.arg(CLIENT_TIME_LIMIT).arg("ssh");
    command.args(client_options(key));
    command.args(["-p", &port.to_string(), "-l", user, "127.0.0.1"]);
    command
}

/// `ssh` (bounded by [`CLIENT_TIME_LIMIT`]) through `sshpass` giving `password`, by `method`
/// only (`password` or `keyboard-interactive`), with no configuration file, host keys not
/// checked and one prompt; the caller adds the port, user, host and command.
pub(crate) fn ssh_with_password(password: &str, method: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args([CLIENT_TIME_LIMIT, "sshpass", "-p", password, "ssh", "-F", "/dev/null"]);
    for option in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "GlobalKnownHostsFile=/dev/null",
        "LogLevel=ERROR",
        "PubkeyAuthentication=no",
        &format!("PreferredAuthentications={method}"),
        "NumberOfPasswordPrompts=1",
    ] {
        c.args(["-o", option]);
    }
    c
}

/// The options `ssh`, `scp` and `sftp` share: no config files, no known hosts, one key.
pub(crate) fn client_options(key: &Path) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-i",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([key.display().to_string()])
    .collect()
}

/// Runs a command to completion with empty input.
pub(crate) fn output(mut command: Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

/// Standard output as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A real `ssh-agent` listening on `socket` (it may take a moment to appear), holding `key`
/// (`ssh-add`). The caller kills it by its PID (`kill`, then `wait`).
pub(crate) fn agent_holding(socket: &Path, key: &Path) -> Child {
    let agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(socket)
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("ssh-agent");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let added = Command::new("ssh-add")
        .arg(key)
        .env("SSH_AUTH_SOCK", socket)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success(), "ssh-add failed");
    agent
}

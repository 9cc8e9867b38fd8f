//! `conchd -o UsePrivilegeSeparation=sandbox --features pam` as root with `UsePAM yes`: PAM
//! runs in the monitor, its keyboard-interactive conversation relayed round by round to the
//! sandboxed worker. OpenSSH's client logs in by keyboard-interactive and by password through
//! a private PAM service (`/etc/pam.d/conchd-psp-<pid>-<n>`, removed afterwards) whose
//! `pam_exec` lines show the monitor's PAM calls and the session the keeper opens and closes;
//! a wrong password, a locked account and an expired one are refused; a conversation the
//! client abandons ends its PAM thread in the monitor.
//!
//! Every test needs root (users, PAM services, privilege separation); as anyone else it says
//! it was skipped and passes.
#![cfg(feature = "pam")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conchd_support::{
    conchd_command, free_port, is_root, keygen, output, ssh, ssh_with_password, stderr, stdout,
    Daemon, TempDir, TestUser, CLIENT_TIME_LIMIT,
};

const PASSWORD: &str = "Tw1ne-psp-pw";

/// Runs an account tool with `input`, again while another holds the user database's lock (a
/// bounded number of times); whether it succeeded.
fn admin(program: &str, args: &[&str], input: &str) -> bool {
    (0..20).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{program}: {err}"));
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait().unwrap().success()
    })
}

/// A PAM service of our own, removed on drop: `pam_exec` logs each auth, account and session
/// call (`<dir>/seen`) before the system's stacks decide.
struct Service {
    name: String,
    file: PathBuf,
    seen: PathBuf,
}

impl Service {
    fn new(dir: &TempDir) -> Self {
        Self::with_auth_first(dir, "")
    }

    /// The same, with `first` (PAM lines) at the head of the auth stack.
    fn with_auth_first(dir: &TempDir, first: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("conchd-psp-{}-{n}", std::process::id());
        let script = dir.path("log.sh");
        let seen = dir.path("seen");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$PAM_TYPE user=$PAM_USER rhost=$PAM_RHOST\" >> {}\n",
                seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = format!("optional pam_exec.so quiet {}", script.display());
        let config = format!(
            "{first}auth {log}\n@include common-auth\n\
             account {log}\naccount required pam_nologin.so\n@include common-account\n\
             session {log}\n@include common-session\n\
             @include common-password\n"
        );
        let file = PathBuf::from("/etc/pam.d").join(&name);
        std::fs::write(&file, config).unwrap();
        Self { name, file, seen }
    }

    /// The lines `pam_exec` logged so far.
    fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.seen).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// Waits (a bounded while) until a logged line starts with `what`; the lines.
    fn wait_for(&self, what: &str) -> Vec<String> {
        for _ in 0..300 {
            let lines = self.lines();
            if lines.iter().any(|l| l.starts_with(what)) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.lines()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A test user with a key and a password, and a privilege-separated root `conchd` with
/// `UsePAM yes` and the private service.
struct Setup {
    dir: TempDir,
    key: PathBuf,
    user: TestUser,
    service: Service,
    daemon: Daemon,
}

fn setup(tag: &str, extra: &str) -> Option<Setup> {
    setup_with(tag, extra, Service::new)
}

fn setup_with(tag: &str, extra: &str, service: impl FnOnce(&TempDir) -> Service) -> Option<Setup> {
    if !is_root() {
        println!("{tag}: skipped: needs root to create users and PAM services");
        return None;
    }
    if Command::new("sshpass").arg("-V").output().is_err() {
        println!("{tag}: skipped: sshpass is not installed");
        return None;
    }
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &key) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    assert!(admin("chpasswd", &[], &format!("{}:{PASSWORD}\n", user.name)), "chpasswd failed");
    let service = service(&dir);
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "{extra}Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n\
             LogLevel DEBUG\nUsePAM yes\nPAMServiceName {}\nPrintMotd no\nPrintLastLog no\n",
            free_port(),
            host_key.display(),
            service.name
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command
        .args(["-D", "-e", "-f", &config, "-o", "UsePrivilegeSeparation=sandbox"])
        .env("CONCHD_PRIVSEP_WORKERS", "1")
        .env_remove("CONCHD_PRIVSEP");
    let daemon = Daemon::start(command);
    assert!(daemon.wait_for_log("sandboxed as uid").is_some(), "no sandboxed worker");
    Some(Setup { dir, key, user, service, daemon })
}

/// `ssh` through `sshpass` giving `password`, with only `method`, running `command`.
fn login(s: &Setup, method: &str, password: &str, command: &str) -> std::process::Output {
    output({
        let mut c = ssh_with_password(password, method);
        c.args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1", command]);
        c
    })
}

/// How many PAM transaction threads the process `pid` runs.
fn pam_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "twine-pam")
        })
        .count()
}

/// Waits (a bounded while) until `pid` runs `count` PAM threads; whether it did.
fn wait_for_pam_threads(pid: u32, count: usize) -> bool {
    (0..300).any(|_| {
        if pam_threads(pid) == count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    })
}

#[test]
fn keyboard_interactive_through_the_monitor_s_pam_logs_in_and_runs_a_command() {
    let Some(s) = setup("psp-kbd", "") else { return };
    let out = login(&s, "keyboard-interactive", PASSWORD, "echo in by $USER; id -un; exit 4");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("in by {0}\n{0}\n", s.user.name));
    let by_keyboard = format!("{} authenticated by keyboard-interactive", s.user.name);
    assert!(s.daemon.wait_for_log(&by_keyboard).is_some());
    let lines = s.service.wait_for("close_session");
    let items = format!("user={} rhost=127.0.0.1", s.user.name);
    for call in ["auth", "account", "open_session", "close_session"] {
        assert!(lines.contains(&format!("{call} {items}")), "no {call} in {lines:#?}");
    }
    // The conversation's thread ended with the login.
    assert!(wait_for_pam_threads(s.daemon.pid(), 0), "PAM threads left in the monitor");
}

#[test]
fn a_wrong_password_is_refused_by_keyboard_interactive_and_by_password() {
    let Some(s) = setup("psp-wrong", "PasswordAuthentication yes\n") else { return };
    for method in ["keyboard-interactive", "password"] {
        let out = login(&s, method, "not-the-password", "echo in");
        assert!(!out.status.success(), "{method}: a wrong password got in");
        assert_eq!(stdout(&out), "", "{method}");
        assert!(stderr(&out).contains("Permission denied"), "{method}: {}", stderr(&out));
    }
}

#[test]
fn a_password_goes_through_the_monitor_s_pam_with_use_pam() {
    let Some(s) = setup("psp-password", "PasswordAuthentication yes\n") else { return };
    let out = login(&s, "password", PASSWORD, "echo in by $USER");
    assert_eq!(stdout(&out), format!("in by {}\n", s.user.name), "{}", stderr(&out));
    assert!(s.daemon.wait_for_log("Accepted password for").is_some());
    let lines = s.service.wait_for("open_session");
    assert!(lines.contains(&format!("auth user={} rhost=127.0.0.1", s.user.name)), "{lines:#?}");
}

#[test]
fn a_locked_account_is_refused_even_with_the_right_password() {
    let Some(s) = setup("psp-locked", "PasswordAuthentication yes\n") else { return };
    assert!(admin("usermod", &["-L", &s.user.name], ""), "usermod -L failed");
    for method in ["keyboard-interactive", "password"] {
        let out = login(&s, method, PASSWORD, "echo in");
        assert!(!out.status.success(), "{method}: a locked account got in: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{method}");
    }
}

#[test]
fn an_expired_account_is_refused_by_the_monitor_s_pam_even_with_a_key() {
    let Some(s) = setup("psp-expired", "") else { return };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert_eq!(stdout(&out), "in\n", "{}", stderr(&out));
    assert!(admin("chage", &["-E", "1", &s.user.name], ""), "chage failed");
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert!(!out.status.success(), "an expired account got in: {}", stdout(&out));
    let line = s.daemon.wait_for_log(&format!("refused account {}", s.user.name));
    assert!(line.is_some(), "no PAM account refusal in the log");
    let out = login(&s, "keyboard-interactive", PASSWORD, "echo in");
    assert!(!out.status.success(), "an expired account got in by keyboard-interactive");
}

#[test]
fn a_conversation_the_client_abandons_ends_its_pam_thread_in_the_monitor() {
    let Some(s) = setup("psp-abandon", "") else { return };
    // The client's askpass tells us the prompt arrived, then waits: PAM is mid-conversation.
    let asked = s.dir.path("asked");
    let askpass = s.dir.path("askpass.sh");
    std::fs::write(&askpass, format!("#!/bin/sh\necho $$ > {}\nexec sleep 60\n", asked.display()))
        .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut client = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no"])
        .args(["-o", "PreferredAuthentications=keyboard-interactive"])
        .args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1", "true"])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let prompted = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        asked_pid(&asked).is_some()
    });
    let monitor = s.daemon.pid();
    let held = pam_threads(monitor);
    if let Some(pid) = asked_pid(&asked) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = client.kill();
    let _ = client.wait();
    assert!(prompted, "the client was never asked");
    assert_eq!(held, 1, "the monitor holds no PAM conversation while the client is asked");
    assert!(wait_for_pam_threads(monitor, 0), "the abandoned conversation's thread lives on");
}

/// The askpass helper's pid, once it has run.
fn asked_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn a_key_login_goes_on_while_pam_works_on_another_connection_s_password() {
    // The PAM stack's first module waits until the test opens a gate (at most 30 s), as a
    // slow module or a failed password's delay would: the monitor must not wait with it.
    let gate = std::cell::RefCell::new(None);
    let Some(s) = setup_with("psp-gate", "PasswordAuthentication yes\n", |dir| {
        let script = dir.path("gate.sh");
        let (waiting, open, result) = (dir.path("waiting"), dir.path("open"), dir.path("result"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntouch {w}\n\
                 for i in $(seq 300); do\n  if [ -e {o} ]; then echo released > {r}; exit 0; fi\n  \
                 sleep 0.1\ndone\necho timed-out > {r}\n",
                w = waiting.display(),
                o = open.display(),
                r = result.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        *gate.borrow_mut() = Some((waiting, open, result));
        Service::with_auth_first(
            dir,
            &format!("auth required pam_exec.so quiet {}\n", script.display()),
        )
    }) else {
        return;
    };
    let (waiting, open, result) = gate.into_inner().unwrap();
    let by_password = Command::new("timeout")
        .args([CLIENT_TIME_LIMIT, "sshpass", "-p", PASSWORD, "ssh", "-F", "/dev/null"])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password"])
        .args(["-o", "NumberOfPasswordPrompts=1", "-o", "LogLevel=ERROR"])
        .args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1", "echo in"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        waiting.exists()
    });
    let by_key = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo key-in");
        c
    });
    // Still closed: the key login did not wait for the gate.
    let still_closed = !result.exists();
    std::fs::write(&open, "").unwrap();
    let out = by_password.wait_with_output().unwrap();
    assert!(waited, "PAM never reached the gate");
    assert_eq!(stdout(&by_key), "key-in\n", "{}", stderr(&by_key));
    assert!(still_closed, "the key login waited for another connection's PAM");
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "released\n");
    assert_eq!(stdout(&out), "in\n", "{}", stderr(&out));
}

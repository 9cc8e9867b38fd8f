//! `conchd` built with PAM (`--features pam`), as root with `UsePAM yes`, against OpenSSH's
//! client: each session's PAM session is opened by a keeper process from its main thread, so
//! the system's `/etc/pam.d/sshd` (with `pam_loginuid`) works; keys and passwords log in, exit
//! codes and signals come back as from sshd, a pty shell has job control and is hung up when
//! the connection is lost, and a private PAM service (`/etc/pam.d/conchd-test-<pid>-<n>`,
//! removed afterwards) shows both `pam_open_session` and `pam_close_session` ran, with
//! `PAM_TTY` and the login uid. PAM account checks apply to key logins too.
//!
//! Every test needs root (it creates users and PAM services); as anyone else it says it was
//! skipped and passes.
#![cfg(feature = "pam")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conchd_support::{
    client_options, conchd_command, free_port, is_root, keygen, output, ssh, ssh_with_password,
    stderr, stdout, Daemon, TempDir, TestUser, CLIENT_TIME_LIMIT,
};

/// Whether a root-only test can run; prints why not.
fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        println!("{test}: skipped: needs root to create users and PAM services");
    }
    is_root()
}

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

/// Sets `user`'s password with `chpasswd`.
fn set_password(user: &str, password: &str) {
    assert!(admin("chpasswd", &[], &format!("{user}:{password}\n")), "chpasswd failed");
}

/// A PAM service of our own in `/etc/pam.d`, removed on drop: the system's `sshd` stack
/// for authentication and accounts, `pam_loginuid`, `pam_env` from a file of ours, and
/// `pam_exec` logging each session call to `<dir>/seen`.
struct Service {
    name: String,
    file: PathBuf,
    seen: PathBuf,
}

impl Service {
    fn new(dir: &TempDir) -> Self {
        Self::with_session_stack(dir, "")
    }

    /// The same, with `first` (PAM lines) at the head of the session stack.
    fn with_session_stack(dir: &TempDir, first: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("conchd-test-{}-{n}", std::process::id());
        let script = dir.path("log.sh");
        let seen = dir.path("seen");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$PAM_TYPE user=$PAM_USER tty=$PAM_TTY rhost=$PAM_RHOST \
                 loginuid=$(cat /proc/self/loginuid)\" >> {}\n",
                seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir.write("environment", "TWINE_PAM_SESSION=from-pam-env\n");
        dir.write("empty", "");
        let root = dir.root().display();
        let config = format!(
            "@include common-auth\n\
             account required pam_nologin.so\n\
             @include common-account\n\
             {first}\
             session required pam_loginuid.so\n\
             @include common-session\n\
             session required pam_env.so readenv=1 envfile={root}/environment conffile={root}/empty\n\
             session optional pam_exec.so quiet {}\n\
             @include common-password\n",
            script.display()
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

    /// Waits (a bounded while) until `pam_exec` has logged `count` lines; the lines.
    fn wait_for_lines(&self, count: usize) -> Vec<String> {
        for _ in 0..600 {
            let lines = self.lines();
            if lines.len() >= count {
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

/// A test user with a key and a password, and a root `conchd` with `UsePAM yes` and `extra`.
struct Setup {
    _dir: TempDir,
    key: PathBuf,
    user: TestUser,
    daemon: Daemon,
    password: &'static str,
}

fn setup(tag: &str, extra: &str) -> Option<Setup> {
    let (dir, key, user, password) = test_user(tag)?;
    let daemon = start_daemon(&dir, extra);
    Some(Setup { _dir: dir, key, user, daemon, password })
}

/// A scratch directory, a key, and a test user with that key and a password (`None`, said
/// why, when `useradd` fails).
fn test_user(tag: &str) -> Option<(TempDir, PathBuf, TestUser, &'static str)> {
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &key) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    let password = "Tw1ne-pam-pw";
    set_password(&user.name, password);
    Some((dir, key, user, password))
}

/// A root daemon (`-D -e`) with `UsePAM yes` and `extra` lines (first: the first value of a
/// setting counts).
fn start_daemon(dir: &TempDir, extra: &str) -> Daemon {
    start_daemon_with_env(dir, extra, &[])
}

/// [`start_daemon`] with `env` set for conchd (`CONCHD_PRIVSEP=no`: without privilege
/// separation).
fn start_daemon_with_env(dir: &TempDir, extra: &str, env: &[(&str, &str)]) -> Daemon {
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "{extra}Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n\
             LogLevel VERBOSE\nUsePAM yes\nPrintMotd no\nPrintLastLog no\n",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command.envs(env.iter().copied());
    command.args(["-D", "-e", "-f", &config]);
    Daemon::start(command)
}

/// `ssh` with the test key running `command`; its output.
fn run(s: &Setup, command: &str) -> std::process::Output {
    output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg(command);
        c
    })
}

/// `ssh` through `sshpass` with only `method` (password or keyboard-interactive).
fn run_with_password(s: &Setup, method: &str, command: &str) -> std::process::Output {
    output({
        let mut c = ssh_with_password(s.password, method);
        c.args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1", command]);
        c
    })
}

/// A pty login shell given `input`; its output.
fn pty_login(s: &Setup, input: &[u8]) -> String {
    let mut child = Command::new("timeout")
        .arg(CLIENT_TIME_LIMIT)
        .arg("ssh")
        .args(client_options(&s.key))
        .args(["-tt", "-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    stdout(&out)
}

/// Whether the process `pid` has gone (or is a zombie), waiting a bounded while.
fn gone(pid: &str) -> bool {
    let proc = Path::new("/proc").join(pid);
    (0..300).any(|_| {
        let zombie = std::fs::read_to_string(proc.join("stat"))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')));
        if !proc.exists() || zombie {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    })
}

/// Under the system's `/etc/pam.d/sshd` (with `pam_loginuid`), a key login's session runs as
/// the user with the user's login uid, and reports exit codes and signals as sshd does: the
/// code itself, and 255 from `ssh` for a shell killed by `SIGTERM`.
#[test]
fn under_the_system_sshd_service_a_key_login_gets_its_login_uid_exit_codes_and_signals() {
    if !root_or_skip("system") {
        return;
    }
    if !Path::new("/etc/pam.d/sshd").exists() {
        println!("system: skipped: no /etc/pam.d/sshd");
        return;
    }
    let Some(s) = setup("pam-system", "") else { return };
    let out = run(&s, "id -un; cat /proc/self/loginuid; echo; exit 3");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n{}\n", s.user.name, s.user.uid));

    let out = run(&s, "kill -TERM $$; echo not-killed");
    assert_eq!(out.status.code(), Some(255), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "");
    let line = s.daemon.wait_for_log("session process ended: terminated by signal");
    assert!(line.is_some_and(|l| l.ends_with("signal 15")), "no exit-signal TERM in the log");
}

/// A password logs in through PAM by both the password and the keyboard-interactive method,
/// and the session has the user's login uid.
#[test]
fn a_password_logs_in_through_pam_by_password_and_keyboard_interactive() {
    if !root_or_skip("password") {
        return;
    }
    if Command::new("sshpass").arg("-V").output().is_err() {
        println!("password: skipped: sshpass is not installed");
        return;
    }
    let Some(s) = setup("pam-password", "PasswordAuthentication yes\n") else { return };
    for method in ["password", "keyboard-interactive"] {
        let out = run_with_password(&s, method, "echo in by $USER; cat /proc/self/loginuid");
        assert_eq!(stdout(&out), format!("in by {}\n{}", s.user.name, s.user.uid), "{method}");
    }
    assert!(s.daemon.wait_for_log("Accepted password for").is_some());
    let by_keyboard = format!("{} authenticated by keyboard-interactive", s.user.name);
    assert!(s.daemon.wait_for_log(&by_keyboard).is_some());
}

/// Keyboard-interactive asks a user without an account, and a user `DenyUsers` refuses, for a
/// password as it asks anyone (sshd's PAM conversation runs for them too), so that a client
/// cannot tell them apart by an immediate failure; neither gets in, the refused user not even
/// with the right password. Each conversation is an attempt (its source earns `authfail`, not
/// `invaliduser`), and both fail as sshd logs them, "for invalid user". With and without
/// privilege separation.
#[test]
fn keyboard_interactive_asks_an_invalid_or_refused_user_like_any_other_and_lets_neither_in() {
    if !root_or_skip("pam-decoy") {
        return;
    }
    let Some((dir, _key, user, password)) = test_user("pam-decoy") else { return };
    // Answers every prompt with the password given in the environment, noting the prompt.
    let prompts = dir.path("prompts");
    let askpass = dir.write(
        "askpass.sh",
        &format!("#!/bin/sh\necho \"$1\" >> {}\necho \"$ANSWER\"\n", prompts.display()),
    );
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = format!(
        "KbdInteractiveAuthentication yes\nPasswordAuthentication no\nDenyUsers {}\n\
         PerSourcePenalties authfail:30 invaliduser:1 min:1\n",
        user.name
    );
    let invalid = format!("nobody{}", std::process::id());
    for (mode, env) in [("privsep", &[][..]), ("single", &[("CONCHD_PRIVSEP", "no")][..])] {
        let daemon_dir = TempDir::new(&format!("pam-decoy-{mode}"));
        let daemon = start_daemon_with_env(&daemon_dir, &extra, env);
        for (name, answer, from) in [
            (invalid.as_str(), "wrong", "127.0.0.21"),
            (user.name.as_str(), password, "127.0.0.22"),
        ] {
            let _ = std::fs::remove_file(&prompts);
            let out = output({
                let mut c = Command::new("timeout");
                c.arg(CLIENT_TIME_LIMIT).arg("setsid").arg("ssh");
                c.args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]);
                c.args(["-o", "PreferredAuthentications=keyboard-interactive"]);
                c.args(["-o", "NumberOfPasswordPrompts=1", "-b", from]);
                c.args(["-p", &daemon.port.to_string(), "-l", name, "127.0.0.1", "echo in"]);
                c.env("SSH_ASKPASS", &askpass).env("SSH_ASKPASS_REQUIRE", "force");
                c.env("DISPLAY", ":0").env("ANSWER", answer).stdin(Stdio::null());
                c
            });
            assert!(!out.status.success(), "{mode}: {name} logged in: {}", stdout(&out));
            assert!(stderr(&out).contains("Permission denied"), "{mode}: {}", stderr(&out));
            let asked = std::fs::read_to_string(&prompts).unwrap_or_default();
            assert!(asked.contains("Password:"), "{mode}: {name} was not asked: {asked:?}");
            // sshd's lines: both are invalid users to it, and both earn `authfail`.
            let failed =
                format!("Failed keyboard-interactive/pam for invalid user {name} from {from}");
            let penalty: &[&str] = &[from, "penalty now active", "failed authentication"];
            let lines = daemon.log_lines_any_order(&[&[&failed], penalty]);
            assert!(lines.is_ok(), "{mode}: {name}: {lines:#?}");
        }
    }
}

/// A private PAM service sees `pam_open_session` with `PAM_TTY` `ssh` and the client's
/// address, and `pam_close_session` once the command has ended; modules that ran in the
/// session (`pam_loginuid`) set the login uid of the processes that follow, and `pam_env`'s
/// variables reach the command.
#[test]
fn a_session_opens_and_closes_the_pam_session_with_its_items() {
    if !root_or_skip("private") {
        return;
    }
    let dir = TempDir::new("pam-service");
    let service = Service::new(&dir);
    let Some(s) = setup("pam-private", &format!("PAMServiceName {}\n", service.name)) else {
        return;
    };
    let out = run(&s, "echo $TWINE_PAM_SESSION; cat /proc/self/loginuid");
    assert_eq!(stdout(&out), format!("from-pam-env\n{}", s.user.uid), "{}", stderr(&out));
    let lines = service.wait_for_lines(2);
    let items = format!("user={} tty=ssh rhost=127.0.0.1", s.user.name);
    assert_eq!(
        lines,
        vec![
            format!("open_session {items} loginuid={}", s.user.uid),
            format!("close_session {items} loginuid={}", s.user.uid),
        ]
    );
}

/// On a pty, `PAM_TTY` is the terminal's path; the login shell has job control (a command
/// runs in the terminal's foreground group, not the shell's) and the user's login uid.
#[test]
fn a_pty_login_has_the_terminal_as_pam_tty_and_job_control() {
    if !root_or_skip("pty") {
        return;
    }
    let dir = TempDir::new("pam-pty-service");
    let service = Service::new(&dir);
    let Some(s) = setup("pam-pty", &format!("PAMServiceName {}\n", service.name)) else {
        return;
    };
    // A child shell reports whether it leads its own group in the terminal's foreground
    // (job control). The markers are split so that the terminal's echo does not match.
    let out = pty_login(
        &s,
        b"echo \"lo\"\"ginuid=$(cat /proc/self/loginuid) tty=$(tty)\"\n\
          sh -c 'set -- $(ps -o pid= -o pgid= -o tpgid= -p $$); \
          [ \"$1\" = \"$2\" ] && [ \"$2\" = \"$3\" ] && echo \"job\"\"control\"'\n\
          exit\n",
    );
    // Each answer follows the shell's prompt.
    let line = out
        .lines()
        .find_map(|l| l.split_once("loginuid=").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("{out}"));
    let (uid, tty) = line.trim_end().split_once(" tty=").unwrap();
    assert_eq!(uid, s.user.uid.to_string(), "{out}");
    assert!(tty.starts_with("/dev/pts/"), "{out}");
    assert!(out.lines().any(|l| l.trim_end().ends_with("$ jobcontrol")), "no job control: {out}");
    let lines = service.wait_for_lines(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&format!("open_session user={} tty={tty} ", s.user.name)));
    assert!(lines[1].starts_with(&format!("close_session user={} tty={tty} ", s.user.name)));
}

/// Losing the connection hangs up a pty session: the user's process and its keeper end, and
/// the PAM session is closed.
#[test]
fn a_lost_connection_hangs_up_the_session_and_closes_the_pam_session() {
    if !root_or_skip("hangup") {
        return;
    }
    let dir = TempDir::new("pam-hangup-service");
    let service = Service::new(&dir);
    let Some(s) = setup("pam-hangup", &format!("PAMServiceName {}\n", service.name)) else {
        return;
    };
    let mut ssh = ssh(s.daemon.port, &s.key, &s.user.name)
        .args(["-tt", "echo pid=$$ keeper=$PPID; exec sleep 300"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = ssh.stdout.take().unwrap();
    let line = std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("pid="))
        .expect("ssh printed the pids");
    let (pid, keeper) = line.trim_end().trim_start_matches("pid=").split_once(" keeper=").unwrap();
    // `timeout` passes SIGTERM on to ssh, which drops the connection.
    let client = nix::unistd::Pid::from_raw(i32::try_from(ssh.id()).unwrap());
    nix::sys::signal::kill(client, nix::sys::signal::SIGTERM).unwrap();
    let _ = ssh.wait();
    assert!(gone(pid), "process {pid} outlived its connection");
    assert!(gone(keeper), "the keeper {keeper} outlived its connection");
    let lines = service.wait_for_lines(2);
    assert!(lines.last().is_some_and(|l| l.starts_with("close_session ")), "{lines:?}");
}

/// A signal sent to the process conchd started (the keeper, as the SSH `signal` request
/// does) reaches the user's process, whose death by it comes back as sshd reports it (`ssh`
/// ends with 255, the log says which signal), and the PAM session is still closed.
#[test]
fn a_signal_to_the_session_reaches_the_users_process() {
    if !root_or_skip("signal") {
        return;
    }
    let dir = TempDir::new("pam-signal-service");
    let service = Service::new(&dir);
    let Some(s) = setup("pam-signal", &format!("PAMServiceName {}\n", service.name)) else {
        return;
    };
    let mut ssh = ssh(s.daemon.port, &s.key, &s.user.name)
        .arg("echo keeper=$PPID; exec sleep 300")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = ssh.stdout.take().unwrap();
    let line = std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("keeper="))
        .expect("ssh printed the keeper's pid");
    let keeper: i32 = line.trim_start_matches("keeper=").trim().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keeper), nix::sys::signal::SIGUSR1).unwrap();
    let status = ssh.wait().unwrap();
    assert_eq!(status.code(), Some(255));
    let line = s.daemon.wait_for_log("session process ended: terminated by signal");
    assert!(line.is_some_and(|l| l.ends_with("signal 10")), "no exit-signal USR1 in the log");
    let lines = service.wait_for_lines(2);
    assert!(lines.last().is_some_and(|l| l.starts_with("close_session ")), "{lines:?}");
}

/// With `UsePAM yes`, PAM's account checks apply to a key login too: an expired account is
/// refused.
#[test]
fn an_expired_account_is_refused_by_pam_even_with_a_key() {
    if !root_or_skip("expired") {
        return;
    }
    let Some(s) = setup("pam-expired", "") else { return };
    assert!(admin("chage", &["-E", "1", &s.user.name], ""), "chage failed");
    let out = run(&s, "echo in");
    assert!(!out.status.success(), "an expired account got in: {}", stdout(&out));
    let line = s.daemon.wait_for_log(&format!("refused account {}", s.user.name));
    assert!(line.is_some(), "no PAM account refusal in the log");
}

/// With `PrintLastLog yes`, a pty login writes the user's lastlog record (`lastlog -u`), and
/// the second login shows sshd's "Last login" line for the first, not for itself.
#[test]
fn a_pty_login_is_recorded_in_lastlog_and_shown_at_the_next_one() {
    if !root_or_skip("lastlog") {
        return;
    }
    if !Path::new("/var/log/lastlog").exists() || !Path::new("/var/log/wtmp").exists() {
        println!("lastlog: skipped: no /var/log/lastlog or /var/log/wtmp");
        return;
    }
    let Some(s) = setup("pam-lastlog", "PrintLastLog yes\n") else { return };
    // A deleted account of the same name logged in once: wtmp keeps its record, but the
    // new account's lastlog record (by uid, cleared by useradd) is empty, so sshd shows none.
    append_wtmp_login(&s.user.name, "192.0.2.7", 86_400);
    let first = pty_login(&s, b"echo fir\"\"st-done; exit\n");
    assert!(first.contains("first-done"), "{first}");
    assert!(!first.contains("Last login:"), "a first login with a last login: {first}");
    let lastlog = output({
        let mut c = Command::new("lastlog");
        c.args(["-u", &s.user.name]);
        c
    });
    let record = stdout(&lastlog);
    let line = record.lines().find(|l| l.starts_with(&s.user.name)).unwrap_or_default();
    assert!(line.contains(" pts/") && line.contains("127.0.0.1"), "{record}");
    let second = pty_login(&s, b"echo seco\"\"nd-done; exit\n");
    assert!(second.contains("second-done"), "{second}");
    let shown = second.lines().find(|l| l.starts_with("Last login: "));
    assert!(shown.is_some_and(|l| l.trim_end().ends_with(" from 127.0.0.1")), "{second}");
}

/// Appends a `USER_PROCESS` record to `/var/log/wtmp` (glibc's 384-byte `struct utmp`) for
/// `user` on a terminal no session holds, from `host`, `ago` seconds in the past.
fn append_wtmp_login(user: &str, host: &str, ago: u64) {
    let mut record = [0u8; 384];
    let mut put = |at: usize, bytes: &[u8]| record[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &7u16.to_ne_bytes());
    put(4, &1u32.to_ne_bytes());
    put(8, b"pts/999");
    put(40, b"/999");
    put(44, user.as_bytes());
    put(76, host.as_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    put(340, &u32::try_from(now.as_secs() - ago).unwrap().to_ne_bytes());
    let mut wtmp = std::fs::OpenOptions::new().append(true).open("/var/log/wtmp").unwrap();
    wtmp.write_all(&record).unwrap();
}

/// A PAM session that cannot open fails the session, not the server: the user is told why on
/// standard error, the command never runs, and the server goes on serving logins.
#[test]
fn a_pam_session_that_cannot_open_fails_the_session_with_the_reason() {
    if !root_or_skip("denied") {
        return;
    }
    let dir = TempDir::new("pam-denied-service");
    let denied = Service::with_session_stack(&dir, "session requisite pam_deny.so\n");
    let Some(s) = setup("pam-denied", &format!("PAMServiceName {}\n", denied.name)) else {
        return;
    };
    let marker = s.user.home.join("ran");
    let out = run(&s, &format!("touch {}", marker.display()));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("PAM session for"), "{}", stderr(&out));
    assert!(!marker.exists(), "the command ran without a PAM session");
    assert!(denied.lines().is_empty(), "{:?}", denied.lines());
    let out = run(&s, "echo still serving");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

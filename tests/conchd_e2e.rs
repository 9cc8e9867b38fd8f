//! `conchd` end to end with OpenSSH's clients: the embedded default run by an ordinary user,
//! and, as root, a configured daemon serving a test user: a pty shell, exit codes, standard
//! error, `scp`, `sftp`, a 256 MiB transfer, `-L`/`-R` forwarding, and the daemon's pidfile
//! and signals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use conchd_support::{
    client_options, conchd, conchd_command, free_port, is_root, keygen, output, ssh,
    ssh_with_password, stderr, stdout, Daemon, TempDir, TestUser, CLIENT_TIME_LIMIT,
};

/// Sets `user`'s password with `chpasswd -c SHA512` (a `$6$` hash in /etc/shadow).
fn set_password(user: &str, password: &str) {
    let mut chpasswd = Command::new("chpasswd")
        .args(["-c", "SHA512"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    chpasswd.stdin.take().unwrap().write_all(format!("{user}:{password}\n").as_bytes()).unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
}

/// Whether `sshpass` is there; prints why not.
fn sshpass_or_skip(test: &str) -> bool {
    let there = Command::new("sshpass").arg("-V").output().is_ok();
    if !there {
        println!("{test}: skipped: sshpass is not installed");
    }
    there
}

/// Whether a root-only test can run; prints why not.
fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        println!("{test}: skipped: needs root to create a test user");
    }
    is_root()
}

/// A root daemon (`-D -e`) serving `user` from their `authorized_keys`, with `extra` lines.
fn start_root_daemon(dir: &TempDir, extra: &str) -> Daemon {
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nLogLevel VERBOSE\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n{extra}",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command.args(["-D", "-e", "-f", &config]);
    Daemon::start(command)
}

struct RootSetup {
    dir: TempDir,
    key: std::path::PathBuf,
    user: TestUser,
    daemon: Daemon,
}

fn root_setup(tag: &str, extra: &str) -> Option<RootSetup> {
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &key) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    let daemon = start_root_daemon(&dir, extra);
    Some(RootSetup { dir, key, user, daemon })
}

/// Run by an ordinary user with no arguments, `conchd` makes its host keys under the user's
/// state directory, listens on 127.0.0.1 and lets that user in from `~/.ssh/authorized_keys`.
#[test]
fn the_embedded_default_lets_its_own_user_run_a_command() {
    let dir = TempDir::new("embedded");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let home = dir.path("home");
    let user = if is_root() {
        match TestUser::create(&home, &key) {
            Some(user) => Some(user),
            None => {
                println!("skipped: running as root and useradd failed");
                return;
            }
        }
    } else {
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::copy(key.with_extension("pub"), home.join(".ssh/authorized_keys")).unwrap();
        None
    };
    let name = user.as_ref().map_or_else(
        || nix::unistd::User::from_uid(nix::unistd::Uid::effective()).unwrap().unwrap().name,
        |u| u.name.clone(),
    );
    let mut command = conchd_command(user.as_ref(), &home);
    command
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .env("CONCHD_PORT", free_port().to_string());
    let daemon = Daemon::start(command);

    let out = output({
        let mut c = ssh(daemon.port, &key, &name);
        c.arg("echo hello from $USER; pwd");
        c
    });
    assert!(out.status.success(), "ssh failed: {}", stderr(&out));
    assert_eq!(stdout(&out), format!("hello from {name}\n{}\n", home.display()));
    assert!(home.join(".local/state/conchd/ssh_host_ed25519_key").exists());
    assert!(daemon.wait_for_log(&format!("Accepted publickey for {name}")).is_some());

    let other = output({
        let mut c = ssh(daemon.port, &key, "root");
        c.arg("true");
        c
    });
    assert!(!other.status.success(), "another user got in");
}

/// Commands report their exit status, and standard error arrives apart from output.
#[test]
fn exec_reports_exit_codes_and_standard_error() {
    if !root_or_skip("exec") {
        return;
    }
    let Some(s) = root_setup("exec", "") else { return };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo out; echo err >&2; id -un; exit 7");
        c
    });
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("out\n{}\n", s.user.name));
    assert!(stderr(&out).contains("err"), "{}", stderr(&out));
    let env = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo $USER $LOGNAME $HOME $SHELL; echo $SSH_CONNECTION");
        c
    });
    let text = stdout(&env);
    let home = s.user.home.display().to_string();
    assert!(
        text.starts_with(&format!("{0} {0} {home} /bin/sh\n127.0.0.1 ", s.user.name)),
        "{text}"
    );
    drop(s.dir);
}

/// `ssh -tt` gets a login shell on a pty owned by the user.
#[test]
fn a_pty_shell_runs_as_the_user() {
    if !root_or_skip("pty") {
        return;
    }
    let Some(s) = root_setup("pty", "") else { return };
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo T=$(tty) U=$(id -un) O=$(stat -c %U $(tty)) M=$TERM Z=$0; exit 5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text}{}", stderr(&out));
    let line = text.lines().find(|l| l.contains("T=/dev/pts/")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("U={} O={}", s.user.name, s.user.name)), "{line}");
    assert!(line.ends_with("Z=-sh"), "not a login shell: {line}");
    // The login is recorded in wtmp (when the system keeps one), as sshd records it.
    if let Ok(wtmp) = std::fs::read("/var/log/wtmp") {
        let name = s.user.name.as_bytes();
        assert!(wtmp.windows(name.len()).any(|w| w == name), "no wtmp record for {}", s.user.name);
    }
    // PrintMotd (on by default) shows /etc/motd before the shell starts.
    let motd = std::fs::read_to_string("/etc/motd").unwrap_or_default();
    if let Some(first) = motd.lines().find(|l| !l.trim().is_empty()) {
        assert!(text.contains(first.trim()), "no motd in {text}");
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

/// `scp` and `sftp` copy files both ways through the `sftp` subsystem.
#[test]
fn scp_and_sftp_copy_files_both_ways() {
    if !root_or_skip("scp") {
        return;
    }
    let Some(s) = root_setup("scp", "") else { return };
    let local = s.dir.write("local.txt", "scp payload\n");
    let remote = s.user.home.join("copied.txt");
    let port = s.daemon.port.to_string();
    let out = output({
        let mut c = Command::new("timeout");
        c.arg(CLIENT_TIME_LIMIT).arg("scp").args(client_options(&s.key)).args(["-P", &port]);
        c.arg(&local).arg(format!("{}@127.0.0.1:copied.txt", s.user.name));
        c
    });
    assert!(out.status.success(), "scp up: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&remote).unwrap(), "scp payload\n");
    let back = s.dir.path("back.txt");
    let out = output({
        let mut c = Command::new("timeout");
        c.arg(CLIENT_TIME_LIMIT).arg("scp").args(client_options(&s.key)).args(["-P", &port]);
        c.arg(format!("{}@127.0.0.1:copied.txt", s.user.name)).arg(&back);
        c
    });
    assert!(out.status.success(), "scp down: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "scp payload\n");

    let batch = s.dir.write(
        "batch",
        &format!(
            "put {local} via-sftp.txt\nget via-sftp.txt {}\nls\n",
            s.dir.path("sftp-back.txt").display()
        ),
    );
    let out = output({
        let mut c = Command::new("timeout");
        c.arg(CLIENT_TIME_LIMIT)
            .arg("sftp")
            .args(client_options(&s.key))
            .args(["-P", &port, "-b", &batch]);
        c.arg(format!("{}@127.0.0.1", s.user.name));
        c
    });
    assert!(out.status.success(), "sftp: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(s.user.home.join("via-sftp.txt")).unwrap(), "scp payload\n");
    assert_eq!(std::fs::read_to_string(s.dir.path("sftp-back.txt")).unwrap(), "scp payload\n");
}

/// 256 MiB of random bytes go up through `cat` and come back with the same SHA-256.
#[test]
fn a_256_mib_transfer_keeps_its_checksum() {
    if !root_or_skip("transfer") {
        return;
    }
    let Some(s) = root_setup("transfer", "") else { return };
    let data = s.dir.path("data");
    let status = Command::new("head")
        .args(["-c", "268435456", "/dev/urandom"])
        .stdout(std::fs::File::create(&data).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let out = {
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("cat > upload; sha256sum upload");
        c.stdin(std::fs::File::open(&data).unwrap()).output().unwrap()
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = sha256(&data);
    assert_eq!(stdout(&out).split_whitespace().next(), Some(expected.as_str()));
    let down = s.dir.path("down");
    let out = {
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("cat upload");
        c.stdin(Stdio::null()).stdout(std::fs::File::create(&down).unwrap()).output().unwrap()
    };
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sha256(&down), expected);
}

/// An echo server on a free loopback port, on a thread; serves connections until the test ends.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Connects to `port` (retrying while the forwarding is being set up) and echoes a line.
fn echo_through(port: u16) -> Option<String> {
    for _ in 0..100 {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            if stream.write_all(b"ping through the tunnel\n").is_err() {
                continue;
            }
            let mut buf = [0; 64];
            let mut got = Vec::new();
            while !got.ends_with(b"\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if !got.is_empty() {
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// `ssh -L` and `ssh -R` carry a TCP connection to an echo server.
#[test]
fn local_and_remote_forwarding_carry_tcp() {
    if !root_or_skip("forwarding") {
        return;
    }
    let Some(s) = root_setup("forwarding", "") else { return };
    let echo = echo_server();
    for flag in ["-L", "-R"] {
        let listen = free_port();
        let mut child = Command::new("timeout")
            .arg(CLIENT_TIME_LIMIT)
            .arg("ssh")
            .args(client_options(&s.key))
            .args(["-N", "-o", "ExitOnForwardFailure=yes", flag])
            .arg(format!("{listen}:127.0.0.1:{echo}"))
            .args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let echoed = echo_through(listen);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(echoed.as_deref(), Some("ping through the tunnel\n"), "{flag}");
    }
}

/// Without `-D` the daemon goes to the background, writes its pidfile once listening, and
/// removes it on SIGTERM.
#[test]
fn the_daemon_writes_its_pidfile_and_removes_it_on_sigterm() {
    let dir = TempDir::new("daemon");
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let pidfile = dir.path("conchd.pid");
    let port = free_port();
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n",
            host_key.display(),
            pidfile.display()
        ),
    );
    let log = dir.path("log").display().to_string();
    let out = output({
        let mut c = Command::new(conchd());
        c.args(["-f", &config, &format!("-E{log}")]);
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let mut pid = None;
    for _ in 0..300 {
        if let Some(p) =
            std::fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse::<i32>().ok())
        {
            pid = Some(p);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = pid.expect("no pidfile");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let mut gone = false;
    for _ in 0..300 {
        if !pidfile.exists() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "pidfile left behind");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("Server listening on 127.0.0.1 port {port}.")), "{text}");
}

/// `Match User` blocks are evaluated for each login: the matched user gets the block's
/// `ForceCommand`; `DenyUsers` turns a user away.
#[test]
fn match_blocks_and_deny_users_apply_per_login() {
    if !root_or_skip("match") {
        return;
    }
    let dir = TempDir::new("match");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(alice) = TestUser::create(&dir.path("alice"), &key) else { return };
    let Some(bob) = TestUser::create(&dir.path("bob"), &key) else { return };
    let Some(carol) = TestUser::create(&dir.path("carol"), &key) else { return };
    let extra = format!(
        "DenyUsers {}\nMatch User {}\n  ForceCommand echo forced for $USER\n",
        carol.name, alice.name
    );
    let daemon = start_root_daemon(&dir, &extra);
    let run = |user: &TestUser| {
        output({
            let mut c = ssh(daemon.port, &key, &user.name);
            c.arg("echo free");
            c
        })
    };
    let out = run(&alice);
    assert_eq!(stdout(&out), format!("forced for {}\n", alice.name), "{}", stderr(&out));
    let out = run(&bob);
    assert_eq!(stdout(&out), "free\n", "{}", stderr(&out));
    let out = run(&carol);
    assert!(!out.status.success(), "a denied user got in");
    assert!(daemon.wait_for_log("DenyUsers").is_some());
}

/// In inetd mode (`-i`), `conchd` speaks SSH on its standard input and output: OpenSSH's
/// `ssh` runs it as a `ProxyCommand`, and the session sees `SSH_CONNECTION` as `UNKNOWN`.
#[test]
fn inetd_mode_serves_one_connection_over_pipes() {
    if !root_or_skip("inetd") {
        return;
    }
    let dir = TempDir::new("inetd");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &key) else { return };
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config =
        dir.write("sshd_config", &format!("HostKey {}\nPidFile none\n", host_key.display()));
    let out = output({
        let mut c = Command::new("timeout");
        c.arg(CLIENT_TIME_LIMIT).arg("ssh").args(client_options(&key));
        c.arg("-o").arg(format!("ProxyCommand={} -i -f {config}", conchd()));
        c.args(["-l", &user.name, "inetd-host", "echo $SSH_CONNECTION; exit 3"]);
        c
    });
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "UNKNOWN 65535 UNKNOWN 65535\n");
}

/// A `Match` block that asks for something conchd cannot enforce (here `ChrootDirectory`)
/// refuses the matching users instead of letting them in without it.
#[test]
fn a_match_block_with_an_unenforced_setting_refuses_the_login() {
    if !root_or_skip("unenforced") {
        return;
    }
    let Some(s) = root_setup("unenforced", "Match User *\n  ChrootDirectory /var/empty\n") else {
        return;
    };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("true");
        c
    });
    assert!(!out.status.success(), "logged in without the chroot");
    assert!(s.daemon.wait_for_log("unsupported settings apply: ChrootDirectory").is_some());
}

/// The user running the tests, and a daemon configuration that lets them in with `key`
/// (no account needed: `conchd` runs as that user, or as root for root).
fn self_config(dir: &TempDir, key: &Path, port: u16, extra: &str) -> (String, String) {
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let keys =
        dir.write("authorized_keys", &std::fs::read_to_string(key.with_extension("pub")).unwrap());
    let me = nix::unistd::User::from_uid(nix::unistd::Uid::effective()).unwrap().unwrap().name;
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {keys}\n\
             StrictModes no\nPermitRootLogin yes\n{extra}",
            host_key.display()
        ),
    );
    (me, config)
}

/// `-d` serves one connection in the foreground, logging to standard error, then exits.
#[test]
fn debug_mode_serves_one_connection_and_exits() {
    let dir = TempDir::new("debug");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let (me, config) = self_config(&dir, &key, free_port(), "PidFile none\n");
    let mut command = conchd_command(None, dir.root());
    command.args(["-d", "-f", &config]);
    let mut daemon = Daemon::start(command);
    let out = output({
        let mut c = ssh(daemon.port, &key, &me);
        c.arg("echo one");
        c
    });
    assert_eq!(stdout(&out), "one\n", "{}", stderr(&out));
    assert!(daemon.wait_for_log("debug1:").is_some(), "no debug output");
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = daemon.try_wait() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(status.is_some(), "conchd -d did not exit after its connection");
}

/// Stops the background daemon whose pidfile this is, if the test ends early.
struct StopDaemon(std::path::PathBuf);

impl Drop for StopDaemon {
    fn drop(&mut self) {
        if let Some(pid) =
            std::fs::read_to_string(&self.0).ok().and_then(|t| t.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// SIGHUP starts a new server (which writes the pidfile again and reads the configuration
/// again) while a logged-in connection of the old one lives on.
#[test]
fn sighup_restarts_while_existing_connections_live_on() {
    let dir = TempDir::new("sighup");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let port = free_port();
    let pidfile = dir.path("conchd.pid");
    let (me, config) = self_config(&dir, &key, port, &format!("PidFile {}\n", pidfile.display()));
    let read_pid = || {
        for _ in 0..300 {
            if let Some(pid) =
                std::fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse::<i32>().ok())
            {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no pidfile");
    };
    let status = Command::new(conchd()).args(["-f", &config]).status().unwrap();
    assert!(status.success());
    let _stop = StopDaemon(pidfile.clone());
    let first = read_pid();
    let mut long = ssh(port, &key, &me)
        .arg("sleep 3; echo survived")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::remove_file(&pidfile).unwrap();
    let signal = |pid: i32, sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    signal(first, nix::sys::signal::Signal::SIGHUP).unwrap();
    let second = read_pid();
    assert_ne!(first, second);
    let out = output({
        let mut c = ssh(port, &key, &me);
        c.arg("echo after");
        c
    });
    assert_eq!(stdout(&out), "after\n", "{}", stderr(&out));
    let mut survived = String::new();
    long.stdout.take().unwrap().read_to_string(&mut survived).unwrap();
    let _ = long.wait();
    let _ = signal(second, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(survived, "survived\n");
}

/// `AllowTcpForwarding local` in a `Match` block lets the user forward with `-L` but refuses
/// `-R`, per login.
#[test]
fn match_allow_tcp_forwarding_local_refuses_remote_forwarding() {
    if !root_or_skip("fwd-match") {
        return;
    }
    let Some(s) = root_setup("fwd-match", "Match User ct*\n  AllowTcpForwarding local\n") else {
        return;
    };
    let echo = echo_server();
    let remote = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"]);
        c.arg(format!("{}:127.0.0.1:{echo}", free_port()));
        c
    });
    assert!(!remote.status.success(), "-R was allowed");
    let listen = free_port();
    let mut local = Command::new("timeout")
        .arg(CLIENT_TIME_LIMIT)
        .arg("ssh")
        .args(client_options(&s.key))
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("{listen}:127.0.0.1:{echo}"))
        .args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let echoed = echo_through(listen);
    let _ = local.kill();
    let _ = local.wait();
    assert_eq!(echoed.as_deref(), Some("ping through the tunnel\n"));
}

/// `~/.ssh/rc` runs as the user before the session's command, as sshd runs it.
#[test]
fn the_users_rc_script_runs_before_the_command() {
    if !root_or_skip("rc") {
        return;
    }
    let Some(s) = root_setup("rc", "") else { return };
    let rc = s.user.home.join(".ssh/rc");
    std::fs::write(&rc, "id -un > \"$HOME/rc-ran\"\n").unwrap();
    std::os::unix::fs::chown(&rc, Some(s.user.uid), Some(s.user.gid)).unwrap();
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("cat rc-ran; echo args: \"$0\" done");
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\nargs: sh done\n", s.user.name));
}

/// `ssh` with a password through `sshpass`, public keys off, running `command`.
fn password_login(port: u16, user: &str, password: &str, command: &str) -> std::process::Output {
    output({
        let mut c = ssh_with_password(password, "password");
        c.args(["-p", &port.to_string(), "-l", user, "127.0.0.1", command]);
        c
    })
}

/// With `UsePAM no` and `PasswordAuthentication yes`, as sshd, `conchd` checks the password
/// against the user's `/etc/shadow` hash: the right one logs in, a wrong one is refused.
#[test]
fn without_pam_a_password_from_the_shadow_file_logs_in_and_a_wrong_one_is_refused() {
    if !root_or_skip("shadow") {
        return;
    }
    if !sshpass_or_skip("shadow") {
        return;
    }
    let Some(setup) = root_setup(
        "shadow",
        "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n",
    ) else {
        return;
    };
    let password = "Tw1ne-shadow-pw";
    set_password(&setup.user.name, password);
    let out = password_login(setup.daemon.port, &setup.user.name, password, "echo in as $USER");
    assert_eq!(stdout(&out), format!("in as {}\n", setup.user.name), "{}", stderr(&out));
    assert!(setup.daemon.wait_for_log("Accepted password for").is_some());
    let out = password_login(setup.daemon.port, &setup.user.name, "not-it", "echo in");
    assert!(!out.status.success(), "a wrong password got in");
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    assert!(setup.daemon.wait_for_log("Failed password for").is_some());
}

/// Under `AuthenticationMethods publickey,password`, the key is sshd's "Partial publickey"
/// step and the password then completes the login ("Accepted password").
#[test]
fn a_partial_publickey_step_is_logged_as_partial_before_the_password_completes_it() {
    if !root_or_skip("partial") || !sshpass_or_skip("partial") {
        return;
    }
    let Some(setup) = root_setup(
        "partial",
        "UsePAM no\nPasswordAuthentication yes\nAuthenticationMethods publickey,password\n",
    ) else {
        return;
    };
    let password = "Tw1ne-partial-pw";
    set_password(&setup.user.name, password);
    let out = output({
        let mut c = Command::new("timeout");
        c.args([CLIENT_TIME_LIMIT, "sshpass", "-p", password, "ssh"]);
        c.args(client_options(&setup.key).into_iter().map(|o| {
            if o == "BatchMode=yes" {
                "BatchMode=no".to_owned()
            } else {
                o
            }
        }));
        c.args(["-o", "PreferredAuthentications=publickey,password"]);
        c.args(["-p", &setup.daemon.port.to_string(), "-l", &setup.user.name, "127.0.0.1"]);
        c.arg("echo both");
        c
    });
    assert_eq!(stdout(&out), "both\n", "{}", stderr(&out));
    let partial = setup.daemon.wait_for_log("publickey for").expect("no publickey line");
    let expected = format!("Partial publickey for {} from 127.0.0.1 port ", setup.user.name);
    assert!(partial.contains(&expected) && partial.contains(" ssh2: ED25519 SHA256:"), "{partial}");
    assert!(setup.daemon.wait_for_log("Accepted password for").is_some());
}

/// A pty login shell, given `input`; its standard output.
fn pty_login(port: u16, key: &Path, user: &str, input: &[u8]) -> String {
    let mut child = Command::new("timeout")
        .arg(CLIENT_TIME_LIMIT)
        .arg("ssh")
        .args(client_options(key))
        .args(["-tt", "-p", &port.to_string(), "-l", user, "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    stdout(&out)
}

/// With `PrintLastLog yes` (the default) a pty login shell first shows sshd's
/// "Last login: <date> from <host>" for the user's previous login; the first login shows none,
/// and `PrintLastLog no` shows none.
#[test]
fn a_second_interactive_login_shows_the_last_login_line() {
    if !root_or_skip("lastlog") {
        return;
    }
    if !Path::new("/var/log/wtmp").exists() {
        println!("lastlog: skipped: no /var/log/wtmp");
        return;
    }
    let Some(s) = root_setup("lastlog", "PrintMotd no\n") else { return };
    let first = pty_login(s.daemon.port, &s.key, &s.user.name, b"echo first-done; exit\n");
    assert!(first.contains("first-done"), "{first}");
    assert!(!first.contains("Last login:"), "a first login with a last login: {first}");
    let second = pty_login(s.daemon.port, &s.key, &s.user.name, b"echo second-done; exit\n");
    let line = second
        .lines()
        .find(|l| l.starts_with("Last login: "))
        .unwrap_or_else(|| panic!("no Last login line in {second:?}"));
    assert!(line.trim_end().ends_with(" from 127.0.0.1"), "{line:?}");
    let at = second.find("Last login: ").unwrap();
    assert!(at < second.rfind("second-done").unwrap(), "{second}");

    let quiet_dir = TempDir::new("lastlog-quiet");
    let quiet = start_root_daemon(&quiet_dir, "PrintLastLog no\n");
    let third = pty_login(quiet.port, &s.key, &s.user.name, b"echo third-done; exit\n");
    assert!(third.contains("third-done") && !third.contains("Last login:"), "{third}");
}

/// `ssh` as `user` offering `keys` in order, with `extra` client arguments (`-o LogLevel=INFO`
/// to see a banner, `-v`, `-b ADDRESS`), to the daemon on 127.0.0.1.
fn ssh_as(
    port: u16,
    keys: &[&Path],
    user: &str,
    extra: &[&str],
    command: &str,
) -> std::process::Output {
    output({
        let mut c = Command::new("timeout");
        c.args([CLIENT_TIME_LIMIT, "ssh", "-F", "/dev/null"]);
        for option in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
        ] {
            c.args(["-o", option]);
        }
        c.args(extra);
        for key in keys {
            c.arg("-i").arg(key);
        }
        c.args(["-p", &port.to_string(), "-l", user, "127.0.0.1", command]);
        c
    })
}

/// Two users with the same key, and a daemon whose `extra` lines may name the first (`{x}`).
struct TwoUsers {
    dir: TempDir,
    key: std::path::PathBuf,
    x: TestUser,
    y: TestUser,
    daemon: Daemon,
}

fn two_users(tag: &str, extra: &str) -> Option<TwoUsers> {
    if !root_or_skip(tag) {
        return None;
    }
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let x = TestUser::create(&dir.path("x"), &key)?;
    let y = TestUser::create(&dir.path("y"), &key)?;
    let daemon = start_root_daemon(&dir, &extra.replace("{x}", &x.name));
    Some(TwoUsers { dir, key, x, y, daemon })
}

/// `Match User x` with `MaxAuthTries 1`: x's first refused key ends the connection before
/// the right key is tried, while another user offering the same keys gets in (the
/// server-wide limit is 6).
#[test]
fn a_match_user_max_auth_tries_of_one_ends_the_login_at_the_first_refused_key() {
    let Some(s) = two_users("maxtries", "Match User {x}\n  MaxAuthTries 1\n") else { return };
    let wrong = keygen(s.dir.root(), "id_wrong", "ed25519");
    let keys = [wrong.as_path(), s.key.as_path()];
    let x = ssh_as(s.daemon.port, &keys, &s.x.name, &[], "echo in");
    assert!(!x.status.success(), "x got in past MaxAuthTries 1: {}", stdout(&x));
    let y = ssh_as(s.daemon.port, &keys, &s.y.name, &[], "echo in");
    assert_eq!(stdout(&y), "in\n", "{}", stderr(&y));
}

/// `Banner` inside `Match Address 127.0.0.2` is shown to a client connecting from
/// 127.0.0.2 only.
#[test]
fn a_banner_inside_match_address_is_shown_only_to_that_address() {
    if !root_or_skip("banner") {
        return;
    }
    let dir = TempDir::new("banner");
    let banner = dir.write("banner", "Only for the second loopback address\n");
    let Some(s) = root_setup("banner", &format!("Match Address 127.0.0.2\n  Banner {banner}\n"))
    else {
        return;
    };
    let show = ["-o", "LogLevel=INFO"];
    let from_2 = ssh_as(
        s.daemon.port,
        &[&s.key],
        &s.user.name,
        &[&show[..], &["-b", "127.0.0.2"]].concat(),
        "echo in",
    );
    assert_eq!(stdout(&from_2), "in\n", "{}", stderr(&from_2));
    assert!(
        stderr(&from_2).contains("Only for the second loopback address"),
        "{}",
        stderr(&from_2)
    );
    let from_1 = ssh_as(s.daemon.port, &[&s.key], &s.user.name, &show, "echo in");
    assert_eq!(stdout(&from_1), "in\n", "{}", stderr(&from_1));
    assert!(!stderr(&from_1).contains("second loopback"), "{}", stderr(&from_1));
}

/// `AuthenticationMethods publickey,password` for one user: that user's key alone is only a
/// partial success, while the other user logs in with the key.
#[test]
fn authentication_methods_in_a_match_block_apply_to_that_user_only() {
    let Some(s) = two_users(
        "authmethods",
        "UsePAM no\nPasswordAuthentication yes\n\
         Match User {x}\n  AuthenticationMethods publickey,password\n",
    ) else {
        return;
    };
    let x = ssh_as(s.daemon.port, &[&s.key], &s.x.name, &[], "echo in");
    assert!(!x.status.success(), "x got in with the key alone: {}", stdout(&x));
    let partial = s.daemon.wait_for_log("Partial publickey for").expect("no partial step");
    assert!(partial.contains(&s.x.name), "{partial}");
    let y = ssh_as(s.daemon.port, &[&s.key], &s.y.name, &[], "echo in");
    assert_eq!(stdout(&y), "in\n", "{}", stderr(&y));
}

/// `ClientAliveInterval 1` for one user: the server probes that user's quiet session with
/// `keepalive@openssh.com` (the client's debug log shows the requests); the other user's
/// session, under the server-wide 0, gets none.
#[test]
fn client_alive_interval_in_a_match_block_probes_only_that_users_connection() {
    let Some(s) = two_users("alive", "Match User {x}\n  ClientAliveInterval 1\n") else {
        return;
    };
    let x = ssh_as(s.daemon.port, &[&s.key], &s.x.name, &["-v"], "sleep 3; echo done");
    assert_eq!(stdout(&x), "done\n", "{}", stderr(&x));
    assert!(stderr(&x).contains("keepalive@openssh.com"), "no probe: {}", stderr(&x));
    let y = ssh_as(s.daemon.port, &[&s.key], &s.y.name, &["-v"], "sleep 3; echo done");
    assert_eq!(stdout(&y), "done\n", "{}", stderr(&y));
    assert!(!stderr(&y).contains("keepalive@openssh.com"), "{}", stderr(&y));
}

/// `AcceptEnv` in a `Match` block: the matched user's session receives the variable the
/// client sends, the other user's does not (no `AcceptEnv` outside the block).
#[test]
fn accept_env_in_a_match_block_passes_variables_for_that_user_only() {
    let Some(s) = two_users("acceptenv", "Match User {x}\n  AcceptEnv TWINE_*\n") else {
        return;
    };
    let send = ["-o", "SetEnv=TWINE_TEST=sent"];
    let x = ssh_as(s.daemon.port, &[&s.key], &s.x.name, &send, "echo \"[$TWINE_TEST]\"");
    assert_eq!(stdout(&x), "[sent]\n", "{}", stderr(&x));
    let y = ssh_as(s.daemon.port, &[&s.key], &s.y.name, &send, "echo \"[$TWINE_TEST]\"");
    assert_eq!(stdout(&y), "[]\n", "{}", stderr(&y));
}

/// `MaxSessions 1` in a `Match` block: over one multiplexed connection, the matched user's
/// second session is refused while the first runs; the other user's is served.
#[test]
fn max_sessions_in_a_match_block_limits_that_users_connections() {
    let Some(s) = two_users("maxsessions", "Match User {x}\n  MaxSessions 1\n") else {
        return;
    };
    let second_session = |user: &TestUser| {
        let control = s.dir.path(&format!("ctl-{}", user.name));
        let control_text = control.display().to_string();
        let master_options =
            ["-o", "ControlMaster=yes", "-o", &format!("ControlPath={control_text}")];
        let mut master = Command::new("timeout");
        master.args([CLIENT_TIME_LIMIT, "ssh"]).args(client_options(&s.key)).args(master_options);
        // The first session says it runs by making a file in the user's home.
        let started = user.home.join("started");
        master.args(["-p", &s.daemon.port.to_string(), "-l", &user.name, "127.0.0.1"]);
        master.arg("touch $HOME/started; sleep 20");
        let mut master = master
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if control.exists() && started.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = output({
            let mut c = Command::new("timeout");
            c.args([CLIENT_TIME_LIMIT, "ssh"]).args(client_options(&s.key));
            c.args(["-o", "ControlMaster=no", "-o", &format!("ControlPath={control_text}")]);
            c.args([
                "-p",
                &s.daemon.port.to_string(),
                "-l",
                &user.name,
                "127.0.0.1",
                "echo second",
            ]);
            c
        });
        let _ = master.kill();
        let _ = master.wait();
        out
    };
    let x = second_session(&s.x);
    // The refused client falls back to a connection of its own, which may run the command.
    let refused = "Session open refused by peer";
    assert!(stderr(&x).contains(refused), "a second session under MaxSessions 1: {}", stderr(&x));
    let y = second_session(&s.y);
    assert_eq!(stdout(&y), "second\n", "{}", stderr(&y));
    assert!(!stderr(&y).contains(refused), "{}", stderr(&y));
}

/// `ChannelTimeout session:command=1s` for one user: that user's silent command is closed
/// (ssh ends with 255 and no output), the other user's runs to the end.
#[test]
fn channel_timeout_in_a_match_block_closes_that_users_idle_command() {
    let Some(s) = two_users("chantimeout", "Match User {x}\n  ChannelTimeout session:command=1s\n")
    else {
        return;
    };
    let x = ssh_as(s.daemon.port, &[&s.key], &s.x.name, &[], "sleep 4; echo done");
    assert_eq!(x.status.code(), Some(255), "{}{}", stdout(&x), stderr(&x));
    assert_eq!(stdout(&x), "");
    let y = ssh_as(s.daemon.port, &[&s.key], &s.y.name, &[], "sleep 4; echo done");
    assert_eq!(stdout(&y), "done\n", "{}", stderr(&y));
}

/// A directive sshd allows only outside `Match` (here `Ciphers`) inside one is a fatal
/// configuration error naming the file and the line, with sshd's exit status 255.
#[test]
fn a_global_only_directive_inside_match_is_refused_naming_file_and_line() {
    let dir = TempDir::new("matchglobal");
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "HostKey {}\nPidFile none\nMatch User nobody\n  Ciphers aes128-ctr\n",
            host_key.display()
        ),
    );
    let out = output({
        let mut c = conchd_command(None, dir.root());
        c.args(["-t", "-f", &config]);
        c
    });
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{config} line 4: Directive 'Ciphers' is not allowed within a Match block"
        )),
        "{}",
        stderr(&out)
    );
}

/// `conchd -t` as `sshd -t`: an `AuthenticationMethods` list naming an unknown method is an
/// error naming the file and the line; lists that name only methods conchd cannot complete
/// (here host-based authentication, which it lacks) leave no way to log in, a fatal error
/// with each list logged; one list conchd can complete is enough.
#[test]
fn authentication_methods_no_login_could_complete_fail_the_configuration_test() {
    let dir = TempDir::new("authmethods-t");
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let test = |name: &str, methods: &str| {
        let config = dir.write(
            name,
            &format!(
                "HostKey {}\nPidFile none\nAuthenticationMethods {methods}\n",
                host_key.display()
            ),
        );
        let out = output({
            let mut c = conchd_command(None, dir.root());
            c.args(["-t", "-f", &config]);
            c
        });
        (config, out)
    };
    let (config, out) = test("unknown", "publickey,kerberos");
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains(&format!("{config} line 3: invalid AuthenticationMethods method list.")),
        "{}",
        stderr(&out)
    );
    let (_, out) = test("hostbased", "hostbased,publickey");
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Disabled method \"hostbased\" in AuthenticationMethods list \"hostbased,publickey\""
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(
            "AuthenticationMethods cannot be satisfied by enabled authentication methods"
        ),
        "{}",
        stderr(&out)
    );
    let (_, out) = test("either", "hostbased,publickey publickey");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `RekeyLimit 64K` for one user: that user's 1 MiB of output brings key re-exchanges (the
/// client's debug log shows more than one KEXINIT), the other user's none.
#[test]
fn rekey_limit_in_a_match_block_rekeys_only_that_users_connection() {
    let Some(s) = two_users("rekeymatch", "Match User {x}\n  RekeyLimit 64K\n") else {
        return;
    };
    let kexinits = |user: &TestUser| {
        let out =
            ssh_as(s.daemon.port, &[&s.key], &user.name, &["-v"], "head -c 1048576 /dev/zero");
        assert_eq!(out.stdout.len(), 1 << 20, "{}", stderr(&out));
        stderr(&out).matches("SSH2_MSG_KEXINIT received").count()
    };
    assert!(kexinits(&s.x) > 1, "no rekey under RekeyLimit 64K");
    assert_eq!(kexinits(&s.y), 1);
}

/// `RequiredRSASize 4096` for one user refuses that user's 3072-bit RSA key; the other user
/// logs in with it.
#[test]
fn required_rsa_size_in_a_match_block_refuses_that_users_smaller_rsa_key() {
    let Some(s) = two_users("rsasize", "Match User {x}\n  RequiredRSASize 4096\n") else {
        return;
    };
    let rsa = keygen(s.dir.root(), "id_rsa", "rsa");
    let public = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();
    for user in [&s.x, &s.y] {
        std::fs::write(user.home.join(".ssh/authorized_keys"), &public).unwrap();
    }
    let x = ssh_as(s.daemon.port, &[&rsa], &s.x.name, &[], "echo in");
    assert!(!x.status.success(), "a 3072-bit key under RequiredRSASize 4096: {}", stdout(&x));
    assert!(s.daemon.wait_for_log("RequiredRSASize 4096").is_some());
    let y = ssh_as(s.daemon.port, &[&rsa], &s.y.name, &[], "echo in");
    assert_eq!(stdout(&y), "in\n", "{}", stderr(&y));
}

/// A setting a `Match` block may carry but conchd applies only server-wide (here
/// `PubkeyAuthOptions`) refuses the matching user rather than letting them in under the
/// server's; the other user is not affected.
#[test]
fn a_match_setting_still_applied_only_server_wide_refuses_that_user() {
    let Some(s) = two_users("serverwide", "Match User {x}\n  PubkeyAuthOptions verify-required\n")
    else {
        return;
    };
    let x = ssh_as(s.daemon.port, &[&s.key], &s.x.name, &[], "echo in");
    assert!(!x.status.success(), "logged in without PubkeyAuthOptions: {}", stdout(&x));
    assert!(s
        .daemon
        .wait_for_log("unsupported settings apply: PubkeyAuthOptions verify-required")
        .is_some());
    let y = ssh_as(s.daemon.port, &[&s.key], &s.y.name, &[], "echo in");
    assert_eq!(stdout(&y), "in\n", "{}", stderr(&y));
}

/// `PubkeyAcceptedAlgorithms` in a `Match` block: the matched user's Ed25519 key is not
/// accepted under an ECDSA-only list; the other user's is.
#[test]
fn pubkey_accepted_algorithms_in_a_match_block_apply_to_that_user_only() {
    let Some(s) =
        two_users("pubkeyalgs", "Match User {x}\n  PubkeyAcceptedAlgorithms ecdsa-sha2-nistp256\n")
    else {
        return;
    };
    let x = ssh_as(s.daemon.port, &[&s.key], &s.x.name, &[], "echo in");
    assert!(!x.status.success(), "an Ed25519 key under an ECDSA-only list: {}", stdout(&x));
    let y = ssh_as(s.daemon.port, &[&s.key], &s.y.name, &[], "echo in");
    assert_eq!(stdout(&y), "in\n", "{}", stderr(&y));
}

/// `UnusedConnectionTimeout 1` for one user: that user's connection with no channel (`ssh
/// -N`) is ended by the server; the other user's stays until the client is stopped.
#[test]
fn unused_connection_timeout_in_a_match_block_ends_only_that_users_idle_connection() {
    let Some(s) = two_users("unusedmatch", "Match User {x}\n  UnusedConnectionTimeout 1\n") else {
        return;
    };
    let idle = |user: &TestUser| {
        output({
            let mut c = Command::new("timeout");
            c.args(["6", "ssh", "-N"]).args(client_options(&s.key));
            c.args(["-p", &s.daemon.port.to_string(), "-l", &user.name, "127.0.0.1"]);
            c
        })
    };
    let x = idle(&s.x);
    assert_eq!(x.status.code(), Some(255), "not ended by the server: {}", stderr(&x));
    let y = idle(&s.y);
    assert_eq!(y.status.code(), Some(124), "ended without a timeout: {}", stderr(&y));
}

/// `usermod` with `args`, again while another test holds the user database's lock (a bounded
/// number of times); whether it succeeded.
fn usermod(args: &[&str]) -> bool {
    (0..20).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        Command::new("usermod").args(args).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

/// With `UsePAM no`, as sshd's `allowed_user`, an account locked with `usermod -L` (a shadow
/// password starting with `!`) may not log in by any method, a key included; unlocked, the
/// same key gets in.
#[test]
fn without_pam_a_locked_account_is_refused_even_with_a_key() {
    if !root_or_skip("locked") {
        return;
    }
    let Some(s) = root_setup("locked", "UsePAM no\n") else { return };
    set_password(&s.user.name, "Tw1ne-locked-pw");
    assert!(usermod(&["-L", &s.user.name]), "usermod -L failed");
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert!(!out.status.success(), "a locked account got in: {}", stdout(&out));
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    let line = format!("User {} not allowed because account is locked", s.user.name);
    assert!(s.daemon.wait_for_log(&line).is_some(), "no log line {line:?}");

    assert!(usermod(&["-U", &s.user.name]), "usermod -U failed");
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert_eq!(stdout(&out), "in\n", "{}", stderr(&out));
}

/// `VersionAddendum` is appended to the identification line after a space, as sshd's banner.
#[test]
fn version_addendum_follows_the_version_in_the_identification_line() {
    let dir = TempDir::new("addendum");
    let daemon = start_root_daemon(&dir, "VersionAddendum ours, on loopback\n");
    let mut stream = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 255 && !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    assert!(line.starts_with("SSH-2.0-"), "{line:?}");
    assert!(line.ends_with(" ours, on loopback\r\n"), "{line:?}");
    assert!(!line["SSH-2.0-".len()..].split(' ').next().unwrap().is_empty(), "{line:?}");
}

/// The timer the kernel runs on the server's end of a connection from local port `client`
/// to `server`, as `/proc/net/tcp` shows it (`tr`: 0 none, 1 retransmit, 2 keepalive, ...),
/// once no data waits for an acknowledgement (the retransmit timer hides the keepalive one):
/// looked at again for up to 5 s.
fn server_socket_timer(server: u16, client: u16) -> Option<u8> {
    let mut timer = None;
    for _ in 0..100 {
        timer = socket_timer_now(server, client);
        if timer.is_some_and(|t| t != 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    timer
}

fn socket_timer_now(server: u16, client: u16) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| field.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, timer) = (fields.get(1)?, fields.get(2)?, fields.get(5)?);
        if port(local)? != server || port(remote)? != client {
            return None;
        }
        timer.split(':').next()?.parse().ok()
    })
}

/// `TCPKeepAlive yes` (the default) turns TCP keepalives on for each accepted connection, as
/// sshd does, so the kernel finds out a client that vanished from an idle session; `no` leaves
/// them off. Seen from the kernel's own table of sockets, with and (as root) without privilege
/// separation.
#[test]
fn tcp_keepalive_is_on_for_accepted_connections_unless_turned_off() {
    let mut modes = vec![("", "")];
    if is_root() {
        modes.push(("single", "no"));
    }
    for (tag, privsep) in modes {
        for (setting, expected) in [("", 2), ("TCPKeepAlive no\n", 0)] {
            let dir = TempDir::new(&format!("keepalive{tag}"));
            let host_key = keygen(dir.root(), "host_key", "ed25519");
            let port = free_port();
            let config = dir.write(
                "sshd_config",
                &format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n{setting}",
                    host_key.display()
                ),
            );
            let mut command = conchd_command(None, dir.root());
            command.args(["-D", "-e", "-f", &config]);
            if !privsep.is_empty() {
                command.env("CONCHD_PRIVSEP", privsep);
            }
            let daemon = Daemon::start(command);
            let mut stream = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            // The identification line: the connection was accepted and set up.
            let mut banner = [0u8; 8];
            stream.read_exact(&mut banner).unwrap();
            assert_eq!(&banner, b"SSH-2.0-");
            let client = stream.local_addr().unwrap().port();
            let timer = server_socket_timer(daemon.port, client);
            assert_eq!(timer, Some(expected), "{tag} {setting:?}: the server socket's timer");
        }
    }
}

/// In inetd mode over a socket (as inetd hands it over), `TCPKeepAlive` applies to that
/// socket as to an accepted one; `no` leaves it off.
#[test]
fn tcp_keepalive_applies_to_an_inetd_socket() {
    for (setting, expected) in [("", 2), ("TCPKeepAlive no\n", 0)] {
        let dir = TempDir::new("keepalive-inetd");
        let host_key = keygen(dir.root(), "host_key", "ed25519");
        let config = dir.write(
            "sshd_config",
            &format!("HostKey {}\nPidFile none\n{setting}", host_key.display()),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (served, _) = listener.accept().unwrap();
        let input = served.try_clone().unwrap();
        let mut daemon = Command::new(conchd())
            .args(["-i", "-e", "-f", &config])
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(input)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(served)))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut banner = [0u8; 8];
        client.read_exact(&mut banner).unwrap();
        assert_eq!(&banner, b"SSH-2.0-");
        let server_port = listener.local_addr().unwrap().port();
        let timer = server_socket_timer(server_port, client.local_addr().unwrap().port());
        drop(client);
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert_eq!(timer, Some(expected), "{setting:?}: the inetd socket's timer");
    }
}

//! `conchd -o UsePrivilegeSeparation=sandbox` as root, seen from `/proc` and from OpenSSH's
//! clients: every worker is unprivileged, confined and filtered and cannot read a host key;
//! a killed worker is restarted while another worker's login lives on; logins run commands,
//! a pty shell and sftp, and passwords are checked by the monitor; certificates, host key
//! proofs and `Match` blocks' `AuthorizedKeysFile` work as without privilege separation (the
//! scenarios of `conchd_certs`, from `certs_support`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certs_support;
mod conchd_support;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use conchd_support::{
    agent_holding, client_options, conchd_command, free_port, is_root, keygen, output, ssh,
    ssh_with_password, stderr, stdout, Daemon, TempDir, TestUser, CLIENT_TIME_LIMIT,
};

/// A privilege-separated daemon with `workers` workers, serving a fresh test user.
struct Setup {
    dir: TempDir,
    key: std::path::PathBuf,
    host_key: std::path::PathBuf,
    user: TestUser,
    daemon: Daemon,
}

fn setup(tag: &str, workers: usize, extra: &str) -> Option<Setup> {
    start(tag, workers, extra, "sandbox")
}

/// A root conchd with `UsePrivilegeSeparation=<privsep>` (`sandbox` or `no`).
fn start(tag: &str, workers: usize, extra: &str, privsep: &str) -> Option<Setup> {
    start_with(tag, workers, extra, privsep, &[])
}

/// [`start`], with `env` set for conchd.
fn start_with(
    tag: &str,
    workers: usize,
    extra: &str,
    privsep: &str,
    env: &[(&str, &str)],
) -> Option<Setup> {
    if !is_root() {
        println!("{tag}: skipped: not root");
        return None;
    }
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &key) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nLogLevel DEBUG\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n{extra}",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command
        .args(["-D", "-e", "-f", &config, "-o"])
        .arg(format!("UsePrivilegeSeparation={privsep}"))
        .env("CONCHD_PRIVSEP_WORKERS", workers.to_string())
        .envs(env.iter().copied())
        .env_remove("CONCHD_PRIVSEP");
    let daemon = Daemon::start(command);
    Some(Setup { dir, key, host_key, user, daemon })
}

fn status_field(pid: u32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
}

/// The monitor's workers (its children with the worker variable), once each is sandboxed.
fn sandboxed_workers(monitor: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let parent = status_field(pid, "PPid").and_then(|p| p.parse::<u32>().ok());
        let worker = std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
            env.split(|b| *b == 0).any(|v| v.starts_with(b"CONCHD_PRIVSEP_WORKER="))
        });
        if parent == Some(monitor) && worker && status_field(pid, "Seccomp").as_deref() == Some("2")
        {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Waits (bounded) for `count` sandboxed workers other than `not`.
fn wait_for_workers(monitor: u32, count: usize, not: &[u32]) -> Vec<u32> {
    for _ in 0..300 {
        let workers = sandboxed_workers(monitor);
        if workers.len() == count && !workers.iter().any(|w| not.contains(w)) {
            return workers;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {count} sandboxed workers (have {:?})", sandboxed_workers(monitor));
}

/// The daemon's log lines up to the first containing `needle` (bounded wait): the lines
/// before it, and the line.
fn log_until(daemon: &Daemon, needle: &str) -> (Vec<String>, Option<String>) {
    let mut before = Vec::new();
    loop {
        match daemon.log.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains(needle) => return (before, Some(line)),
            Ok(line) => before.push(line),
            Err(_) => return (before, None),
        }
    }
}

/// The process that holds the server side of the established connection from `client_port`.
fn owner_of_connection(server_port: u16, workers: &[u32]) -> Option<u32> {
    for _ in 0..300 {
        let out = Command::new("ss")
            .args(["-tnpH", "state", "established", &format!("( sport = :{server_port} )")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(pid) = workers.iter().find(|w| text.contains(&format!("pid={w},"))) {
            return Some(*pid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn every_worker_runs_unprivileged_in_an_empty_root_under_seccomp_and_cannot_read_a_host_key() {
    let Some(s) = setup("privsep-proc", 2, "") else { return };
    let workers = wait_for_workers(s.daemon.pid(), 2, &[]);
    for &worker in &workers {
        let uids = status_field(worker, "Uid").unwrap();
        assert!(uids.split_whitespace().all(|u| u != "0"), "worker {worker} uids {uids}");
        assert_eq!(status_field(worker, "NoNewPrivs").as_deref(), Some("1"));
        assert_eq!(status_field(worker, "Seccomp").as_deref(), Some("2"));
        let root = std::fs::read_link(format!("/proc/{worker}/root")).unwrap();
        assert_eq!(root, std::path::Path::new("/run/sshd"), "worker {worker} is not confined");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "the chroot is not empty");
        // As the worker's user, the host key cannot be read.
        let uid: u32 = uids.split_whitespace().next().unwrap().parse().unwrap();
        let gids = status_field(worker, "Gid").unwrap();
        let gid: u32 = gids.split_whitespace().next().unwrap().parse().unwrap();
        let read = Command::new("cat")
            .arg(&s.host_key)
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!read.success(), "uid {uid} could read the host key");
    }
    // And the monitor still signs for them: a login works.
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("id -un");
        c
    });
    assert_eq!(stdout(&out), format!("{}\n", s.user.name), "{}", stderr(&out));
}

#[test]
fn a_killed_worker_is_restarted_while_a_login_on_another_worker_lives_on() {
    let Some(s) = setup("privsep-kill", 2, "") else { return };
    let monitor = s.daemon.pid();
    let workers = wait_for_workers(monitor, 2, &[]);
    let mut long = ssh(s.daemon.port, &s.key, &s.user.name)
        .arg("sleep 4; echo survived")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let serving = owner_of_connection(s.daemon.port, &workers).expect("no worker serves it");
    let victim = *workers.iter().find(|w| **w != serving).unwrap();
    let raw = i32::try_from(victim).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let now = wait_for_workers(monitor, 2, &[victim]);
    assert!(now.contains(&serving), "the serving worker was replaced: {now:?}");
    for _ in 0..4 {
        let out = output({
            let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
            c.arg("echo after");
            c
        });
        assert_eq!(stdout(&out), "after\n", "{}", stderr(&out));
    }
    let mut survived = String::new();
    long.stdout.take().unwrap().read_to_string(&mut survived).unwrap();
    let status = long.wait().unwrap();
    assert_eq!(survived, "survived\n");
    assert!(status.success());
}

#[test]
fn a_login_runs_commands_a_pty_shell_and_sftp_through_the_monitor() {
    let Some(s) = setup("privsep-session", 2, "") else { return };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo out; echo err >&2; id -un; exit 7");
        c
    });
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("out\n{}\n", s.user.name));
    assert!(stderr(&out).contains("err"), "{}", stderr(&out));

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
        .write_all(b"echo T=$(tty) U=$(id -un) O=$(stat -c %U $(tty)); exit 5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text}{}", stderr(&out));
    let line = text.lines().find(|l| l.contains("T=/dev/pts/")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("U={} O={}", s.user.name, s.user.name)), "{line}");

    let local = s.dir.path("payload");
    std::fs::write(&local, b"through sftp under privsep\n").unwrap();
    let fetched = s.dir.path("fetched");
    let batch = s
        .dir
        .write("batch", &format!("put {} up\nget up {}\n", local.display(), fetched.display()));
    let out = output({
        let mut c = Command::new("timeout");
        c.arg(CLIENT_TIME_LIMIT).arg("sftp").args(client_options(&s.key));
        c.args(["-P", &s.daemon.port.to_string(), "-b", &batch]);
        c.arg(format!("{}@127.0.0.1", s.user.name));
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&fetched).unwrap(), b"through sftp under privsep\n");
    let uploaded = std::fs::metadata(s.user.home.join("up")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&uploaded), s.user.uid);
}

#[test]
fn a_password_is_checked_by_the_monitor_and_a_wrong_one_is_refused() {
    if Command::new("sshpass").arg("-V").output().is_err() {
        println!("skipped: no sshpass");
        return;
    }
    let Some(s) = setup(
        "privsep-password",
        1,
        "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n",
    ) else {
        return;
    };
    let password = "Tw1ne-privsep-pw";
    let mut chpasswd =
        Command::new("chpasswd").args(["-c", "SHA512"]).stdin(Stdio::piped()).spawn().unwrap();
    let line = format!("{}:{password}\n", s.user.name);
    chpasswd.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
    assert!(chpasswd.wait().unwrap().success());
    let login = |password: &str| {
        output({
            let mut c = ssh_with_password(password, "password");
            c.args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1"]);
            c.arg("echo in as $USER");
            c
        })
    };
    let out = login(password);
    assert_eq!(stdout(&out), format!("in as {}\n", s.user.name), "{}", stderr(&out));
    let out = login("not-it");
    assert!(!out.status.success(), "a wrong password got in");
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
}

#[test]
fn a_source_whose_connection_crashed_its_worker_is_refused_for_a_while() {
    let Some(s) = setup("privsep-penalty", 1, "") else { return };
    let monitor = s.daemon.pid();
    let workers = wait_for_workers(monitor, 1, &[]);
    let mut long = ssh(s.daemon.port, &s.key, &s.user.name)
        .arg("sleep 30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serving = owner_of_connection(s.daemon.port, &workers).expect("no worker serves it");
    let raw = i32::try_from(serving).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let _ = long.wait();
    wait_for_workers(monitor, 1, &[serving]);
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert!(!out.status.success(), "a penalised source got in: {}", stdout(&out));
    assert!(s.daemon.wait_for_log("penalty: caused crash").is_some());
}

#[test]
fn allow_groups_sees_the_user_s_groups_through_the_monitor() {
    let Some(s) = setup("privsep-groups", 1, "") else { return };
    let group =
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(s.user.gid)).unwrap().unwrap().name;
    drop(s.daemon);
    for (allowed, expect_in) in [(group.as_str(), true), ("no-such-group-here", false)] {
        let config = s.dir.write(
            &format!("sshd_config_{expect_in}"),
            &format!(
                "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nAllowGroups {allowed}\n",
                free_port(),
                s.host_key.display()
            ),
        );
        let mut command = conchd_command(None, s.dir.root());
        command
            .args(["-D", "-e", "-f", &config, "-o", "UsePrivilegeSeparation=sandbox"])
            .env("CONCHD_PRIVSEP_WORKERS", "1")
            .env_remove("CONCHD_PRIVSEP");
        let daemon = Daemon::start(command);
        let out = output({
            let mut c = ssh(daemon.port, &s.key, &s.user.name);
            c.arg("echo in");
            c
        });
        assert_eq!(out.status.success(), expect_in, "AllowGroups {allowed}: {}", stderr(&out));
    }
}

/// A session runs with the user's supplementary groups as the group database lists them when
/// it starts: a group the user joins is in the next session's `id -G`, and one the user
/// leaves is gone from it (the monitor reuses what it read for at most a second, so each
/// change waits that long).
#[test]
fn sessions_get_the_supplementary_groups_the_group_database_lists_when_they_start() {
    struct Group(String);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = Command::new("groupdel").arg(&self.0).stderr(Stdio::null()).status();
        }
    }
    let Some(s) = setup("privsep-supplementary", 1, "") else { return };
    let group = Group(format!("twg{}", std::process::id()));
    drop(Command::new("groupdel").arg(&group.0).stderr(Stdio::null()).status());
    assert!(Command::new("groupadd").arg(&group.0).status().unwrap().success());
    let gid = nix::unistd::Group::from_name(&group.0).unwrap().unwrap().gid.as_raw();
    let ids = || {
        let out = output({
            let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
            c.arg("id -G");
            c
        });
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).split_whitespace().map(|id| id.parse::<u32>().unwrap()).collect::<Vec<_>>()
    };
    let before = ids();
    assert!(before.contains(&s.user.gid) && !before.contains(&gid), "{before:?}");
    let joined = Command::new("usermod").args(["-aG", &group.0, &s.user.name]).status().unwrap();
    assert!(joined.success());
    std::thread::sleep(Duration::from_millis(1200));
    let member = ids();
    assert!(member.contains(&gid) && member.contains(&s.user.gid), "{member:?}");
    let left = Command::new("gpasswd")
        .args(["-d", &s.user.name, &group.0])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(left.success());
    std::thread::sleep(Duration::from_millis(1200));
    let after = ids();
    assert!(!after.contains(&gid), "a group the user left: {after:?}");
}

/// Certificates are checked by the monitor as without privilege separation: a trusted CA's
/// certificate logs in; a wrong principal, an expired, an untrusted and a revoked one do not.
#[test]
fn a_certificate_from_trusted_user_ca_keys_logs_in_and_a_bad_one_is_refused_under_privsep() {
    if certs_support::root_or_skip("privsep trusted CA") {
        certs_support::trusted_user_ca_keys_let_in_valid_certificates_only(
            "privsep-certs-trusted",
            certs_support::Mode::Sandbox,
        );
    }
}

/// The principals file is read by the monitor, and the line's and the certificate's forced
/// commands still run instead of the client's (restrictions reach the worker).
#[test]
fn principals_files_and_certificate_forced_commands_apply_under_privsep() {
    if certs_support::root_or_skip("privsep principals file") {
        certs_support::authorized_principals_file_and_forced_commands_apply(
            "privsep-certs-principals",
            certs_support::Mode::Sandbox,
        );
    }
}

/// `AuthorizedPrincipalsCommand` is run by the monitor (the worker cannot execute anything).
#[test]
fn the_monitor_runs_the_authorized_principals_command() {
    if certs_support::root_or_skip("privsep principals command") {
        certs_support::authorized_principals_command_lists_the_principals(
            "privsep-certs-command",
            certs_support::Mode::Sandbox,
        );
    }
}

/// `AuthorizedKeysCommand` is run by the monitor for the key the worker names, with both ends
/// of the connection.
#[test]
fn the_monitor_runs_the_authorized_keys_command() {
    if certs_support::root_or_skip("privsep keys command") {
        certs_support::authorized_keys_command_prints_the_lines_for_the_key(
            "privsep-keys-command",
            certs_support::Mode::Sandbox,
        );
    }
}

/// `cert-authority` lines (with `principals=`) and a certificate's missing `permit-pty` apply
/// under privilege separation.
#[test]
fn a_cert_authority_line_accepts_the_cas_certificates_under_privsep() {
    if certs_support::root_or_skip("privsep cert-authority") {
        certs_support::cert_authority_lines_accept_the_cas_certificates(
            "privsep-certs-authority",
            certs_support::Mode::Sandbox,
        );
    }
}

/// `hostkeys-prove-00@openssh.com` is signed by the monitor: `UpdateHostKeys` learns the
/// second host key.
#[test]
fn update_host_keys_learns_the_second_host_key_under_privsep() {
    if certs_support::root_or_skip("privsep UpdateHostKeys") {
        certs_support::update_host_keys_learns_every_host_key(
            "privsep-hostkeys",
            certs_support::Mode::Sandbox,
        );
    }
}

/// The monitor reads `authorized_keys` from the files of the `Match User` block.
#[test]
fn authorized_keys_file_in_a_match_user_block_is_honoured_under_privsep() {
    if certs_support::root_or_skip("privsep Match AuthorizedKeysFile") {
        certs_support::authorized_keys_file_in_a_match_block_is_honoured(
            "privsep-match",
            certs_support::Mode::Sandbox,
        );
    }
}

#[test]
fn a_forwarded_agent_lists_its_key_through_a_socket_the_monitor_made_and_removes() {
    let Some(s) = setup("privsep-agent", 1, "") else { return };
    let agent_sock = s.dir.path("agent.sock");
    let mut agent = agent_holding(&agent_sock, &s.key);
    let fingerprint = {
        let out = output({
            let mut c = Command::new("ssh-keygen");
            c.arg("-lf").arg(s.key.with_extension("pub"));
            c
        });
        stdout(&out).split_whitespace().nth(1).unwrap().to_owned()
    };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.env("SSH_AUTH_SOCK", &agent_sock);
        c.args(["-A", "echo sock=$SSH_AUTH_SOCK; stat -c '%a %U' \"$(dirname \"$SSH_AUTH_SOCK\")\"; ssh-add -l"]);
        c
    });
    let _ = agent.kill();
    let _ = agent.wait();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "ssh -A failed: {text} {}\n{}",
        stderr(&out),
        s.daemon.log.try_iter().collect::<Vec<_>>().join("\n")
    );
    let sock = text
        .lines()
        .find_map(|l| l.strip_prefix("sock="))
        .filter(|p| p.starts_with("/tmp/ssh-"))
        .unwrap_or_else(|| panic!("no agent socket: {text}"));
    assert!(text.contains(&format!("700 {}", s.user.name)), "agent directory not private: {text}");
    assert!(text.contains(&fingerprint), "the forwarded agent does not list the key: {text}");
    let dir = std::path::Path::new(sock).parent().unwrap().to_owned();
    // The monitor removes it when the worker says the connection closed.
    for _ in 0..100 {
        if !dir.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.exists(), "{} outlived its connection", dir.display());
}

#[test]
fn agent_forwarding_off_in_the_config_gives_no_socket_under_privsep() {
    let Some(s) = setup("privsep-agent-off", 1, "AllowAgentForwarding no\n") else { return };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.args(["-A", "echo sock=$SSH_AUTH_SOCK"]);
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "sock=\n");
}

/// A free privileged TCP port on 127.0.0.1 (probed by binding it; we run as root).
fn free_privileged_port() -> Option<u16> {
    (600..1000).find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
}

#[test]
fn a_root_login_forwards_a_privileged_port_the_monitor_binds_and_another_user_cannot() {
    let keys = TempDir::new("privsep-rfwd-keys");
    let extra = format!(
        "PermitRootLogin prohibit-password\nStrictModes no\n\
         AuthorizedKeysFile .ssh/authorized_keys {}/authorized_keys_%u\n",
        keys.root().display()
    );
    let Some(s) = setup("privsep-rfwd", 1, &extra) else { return };
    let Some(port) = free_privileged_port() else {
        println!("skipped: no free port below 1024");
        return;
    };
    keys.write(
        "authorized_keys_root",
        &std::fs::read_to_string(s.key.with_extension("pub")).unwrap(),
    );
    let forward = format!("127.0.0.1:{port}:127.0.0.1:{}", s.daemon.port);
    // Through the forward, the remote command reads the daemon's own banner.
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, "root");
        c.args(["-o", "ExitOnForwardFailure=yes", "-R", &forward]);
        c.arg(format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; head -c 7 <&3'"));
        c
    });
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        s.daemon.log.try_iter().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(stdout(&out), "SSH-2.0");

    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.args(["-o", "ExitOnForwardFailure=yes", "-R", &forward, "true"]);
        c
    });
    assert_eq!(out.status.code(), Some(255), "{}", stdout(&out));
    assert!(stderr(&out).contains("remote port forwarding failed"), "{}", stderr(&out));
}

/// A Unix-domain socket that answers each connection with `hello`, on a thread.
fn hello_socket(path: &std::path::Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(b"hello");
        }
    });
}

#[test]
fn socket_forwarding_both_ways_reaches_paths_outside_the_worker_s_empty_root() {
    let Some(s) = setup("privsep-unixfwd", 1, "") else { return };
    let target = s.dir.path("target.sock");
    hello_socket(&target);

    // -R: the monitor makes the listening socket, the user's, where the user may make one;
    // the client connects to target.
    let remote = s.user.home.join("remote.sock");
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.args(["-o", "ExitOnForwardFailure=yes", "-R"]);
        c.arg(format!("{}:{}", remote.display(), target.display()));
        c.arg(format!(
            "stat -c %U {0}; python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); \
             s.connect('{0}'); print(s.recv(5).decode())\"",
            remote.display()
        ));
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\nhello\n", s.user.name));

    // -L to a path: the monitor connects to target for the worker.
    let local = s.dir.path("local.sock");
    let mut client = ssh(s.daemon.port, &s.key, &s.user.name);
    client.args(["-N", "-L"]).arg(format!("{}:{}", local.display(), target.display()));
    let mut client = client.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // The socket's file appears at bind, before it listens: wait until a connect succeeds.
    let mut connected = Err(std::io::Error::other("no local socket"));
    for _ in 0..200 {
        connected = std::os::unix::net::UnixStream::connect(&local);
        if connected.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = connected.map(|mut stream| {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    });
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(got.unwrap(), "hello");
}

#[test]
fn socket_forwarding_reaches_only_paths_the_user_may_reach() {
    let Some(s) = setup("privsep-unixperm", 1, "") else { return };
    sockets_are_made_and_reached_with_the_user_s_rights(&s);
}

/// Without privilege separation the root server makes and reaches Unix-domain sockets with the
/// user's filesystem identity too, not root's.
#[test]
fn socket_forwarding_reaches_only_paths_the_user_may_reach_without_privsep() {
    let Some(s) = start("nopriv-unixperm", 1, "", "no") else { return };
    sockets_are_made_and_reached_with_the_user_s_rights(&s);
}

fn sockets_are_made_and_reached_with_the_user_s_rights(s: &Setup) {
    // Root's own directory: the user may neither make nor reach a socket in it.
    let private = s.dir.path("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap();
    let target = private.join("target.sock");
    hello_socket(&target);

    let remote = private.join("remote.sock");
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.args(["-o", "ExitOnForwardFailure=yes", "-R"]);
        c.arg(format!("{}:{}", remote.display(), s.dir.path("nowhere.sock").display()));
        c.arg("true");
        c
    });
    assert_eq!(out.status.code(), Some(255), "{}", stdout(&out));
    assert!(!remote.exists());

    let local = s.dir.path("local.sock");
    let mut client = ssh(s.daemon.port, &s.key, &s.user.name);
    client.args(["-N", "-L"]).arg(format!("{}:{}", local.display(), target.display()));
    let mut client = client.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // The socket's file appears at bind, before it listens: wait until a connect succeeds.
    let mut connected = Err(std::io::Error::other("no local socket"));
    for _ in 0..200 {
        connected = std::os::unix::net::UnixStream::connect(&local);
        if connected.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = connected.map(|mut stream| {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    });
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(got.unwrap(), "", "the user reached a socket in root's private directory");
}

/// An agent in front of `agent`: relays each client's messages, and before it relays a
/// signing request (`SSH_AGENTC_SIGN_REQUEST`) writes `replacement` over `file`. Serves
/// connections until the test ends.
fn agent_that_rewrites_before_signing(
    listen: &std::path::Path,
    agent: std::path::PathBuf,
    file: std::path::PathBuf,
    replacement: &'static str,
) {
    use std::os::unix::net::{UnixListener, UnixStream};
    let listener = UnixListener::bind(listen).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(upstream) = UnixStream::connect(&agent) else { return };
            let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
            let mut down = client.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_read, &mut down);
            });
            let (file, replacement) = (file.clone(), replacement);
            std::thread::spawn(move || loop {
                let mut length = [0u8; 4];
                if client.read_exact(&mut length).is_err() {
                    return;
                }
                let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
                if client.read_exact(&mut body).is_err() {
                    return;
                }
                if body.first() == Some(&13) {
                    std::fs::write(&file, replacement).unwrap();
                }
                if up_write.write_all(&length).and_then(|()| up_write.write_all(&body)).is_err() {
                    return;
                }
            });
        }
    });
}

/// OpenSSH's client asks whether the key would do, then signs: the worker's answer came from
/// the keys it read then, and its check and login go to the monitor together. When the key
/// leaves `authorized_keys` in between, the monitor refuses the check and the login sent with
/// it: the client is refused as sshd refuses a key, the worker lives on, and the next login
/// (the key back) gets in through the same worker.
#[test]
fn a_key_removed_between_the_query_and_the_signature_is_refused_by_the_monitor_and_the_worker_lives_on(
) {
    let Some(s) = setup("privsep-stale-key", 1, "") else { return };
    let workers = wait_for_workers(s.daemon.pid(), 1, &[]);
    let agent_sock = s.dir.path("agent.sock");
    let mut agent = agent_holding(&agent_sock, &s.key);
    let authorized_keys = s.user.home.join(".ssh/authorized_keys");
    let front = s.dir.path("front.sock");
    agent_that_rewrites_before_signing(&front, agent_sock.clone(), authorized_keys.clone(), "");
    let public = s.key.with_extension("pub");
    let login = |agent: &std::path::Path| {
        output({
            // The public half only: the client signs through the agent.
            let mut c = ssh(s.daemon.port, &public, &s.user.name);
            c.env("SSH_AUTH_SOCK", agent);
            c.arg("echo in");
            c
        })
    };
    let out = login(&front);
    // The worker's policy accepted the key it read at the query; the monitor refused it: the
    // log says "Failed publickey" (as sshd, once) and never "Accepted publickey".
    let (before, failed) = log_until(&s.daemon, "Failed publickey for");
    assert_eq!(out.status.code(), Some(255), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("Permission denied (publickey"), "{}", stderr(&out));
    let failed = failed.unwrap_or_else(|| panic!("no Failed publickey: {before:#?}"));
    let expected = format!("Failed publickey for {} from 127.0.0.1 port ", s.user.name);
    assert!(failed.contains(&expected) && failed.contains(" ssh2: ED25519 SHA256:"), "{failed}");
    let line = |needle: &str| before.iter().find(|l| l.contains(needle)).cloned();
    let refused = line("monitor refused the public key");
    let login_refused = line("the login sent with the check");
    assert!(refused.is_some_and(|line| line.contains("key not authorized")), "{before:#?}");
    assert!(login_refused.is_some_and(|line| line.contains("the public key check failed")));
    assert!(!before.iter().any(|l| l.contains("Accepted publickey")), "{before:#?}");
    std::fs::copy(&public, &authorized_keys).unwrap();
    let out = login(&agent_sock);
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(stdout(&out), "in\n", "{}", stderr(&out));
    // Accepted once the check went to the monitor (with the login), and the refused attempt
    // was not logged again.
    let (before, accepted) = log_until(&s.daemon, "Accepted publickey for");
    assert!(accepted.is_some(), "{before:#?}");
    assert!(before.iter().any(|l| l.contains("the login goes with the key check")), "{before:#?}");
    assert!(!before.iter().any(|l| l.contains("Failed publickey")), "{before:#?}");
    assert_eq!(sandboxed_workers(s.daemon.pid()), workers, "the worker was replaced");
}

/// An agent in front of `agent` that answers each signing request with a signature by
/// another key it holds, over the same data: the client then sends its key with a signature
/// that key did not make. Serves connections until the test ends.
fn agent_that_signs_with_another_key(listen: &std::path::Path, agent: std::path::PathBuf) {
    use std::os::unix::net::{UnixListener, UnixStream};
    fn message(stream: &mut UnixStream) -> Option<Vec<u8>> {
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
        stream.read_exact(&mut body).ok()?;
        Some(body)
    }
    fn send(stream: &mut UnixStream, body: &[u8]) -> Option<()> {
        let length = u32::try_from(body.len()).ok()?.to_be_bytes();
        stream.write_all(&length).and_then(|()| stream.write_all(body)).ok()
    }
    fn string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let length = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        Some((bytes.get(4..4 + length)?, &bytes[4 + length..]))
    }
    // The key blobs the agent holds (SSH_AGENTC_REQUEST_IDENTITIES).
    fn identities(agent: &std::path::Path) -> Option<Vec<Vec<u8>>> {
        let mut stream = UnixStream::connect(agent).ok()?;
        send(&mut stream, &[11])?;
        let answer = message(&mut stream)?;
        let count = u32::from_be_bytes(answer.get(1..5)?.try_into().ok()?);
        let mut rest = &answer[5..];
        let mut blobs = Vec::new();
        for _ in 0..count {
            let (blob, after) = string(rest)?;
            let (_comment, after) = string(after)?;
            blobs.push(blob.to_vec());
            rest = after;
        }
        Some(blobs)
    }
    let listener = UnixListener::bind(listen).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut upstream) = UnixStream::connect(&agent) else { return };
            let agent = agent.clone();
            std::thread::spawn(move || loop {
                let Some(mut body) = message(&mut client) else { return };
                // SSH_AGENTC_SIGN_REQUEST: string key, string data, uint32 flags.
                if body.first() == Some(&13) {
                    let Some((key, rest)) = string(&body[1..]) else { return };
                    let Some(blobs) = identities(&agent) else { return };
                    let Some(other) = blobs.iter().find(|b| b.as_slice() != key) else { return };
                    let mut forged = vec![13];
                    forged.extend_from_slice(&u32::try_from(other.len()).unwrap().to_be_bytes());
                    forged.extend_from_slice(other);
                    forged.extend_from_slice(rest);
                    body = forged;
                }
                if send(&mut upstream, &body).is_none() {
                    return;
                }
                let Some(answer) = message(&mut upstream) else { return };
                if send(&mut client, &answer).is_none() {
                    return;
                }
            });
        }
    });
}

/// The worker leaves a key login's signature to the monitor, which verifies each one it
/// accepts: a key in `authorized_keys` sent with another key's signature over the right data
/// is refused as sshd refuses it ("Failed publickey"), nothing is accepted, and the worker
/// lives on.
#[test]
fn a_signature_made_by_another_key_is_refused_by_the_monitor_and_the_worker_lives_on() {
    let Some(s) = setup("privsep-forged-signature", 1, "") else { return };
    let workers = wait_for_workers(s.daemon.pid(), 1, &[]);
    let before = log_forged_login(&s);
    let refused = before.iter().find(|l| l.contains("monitor refused the public key"));
    assert!(refused.is_some_and(|l| l.contains("signature does not verify")), "{before:#?}");
    assert_eq!(sandboxed_workers(s.daemon.pid()), workers, "the worker was replaced");
}

/// Without privilege separation the userauth core verifies the signature itself and refuses
/// it before the policy is asked; the policy is told, and logs it as sshd does.
#[test]
fn a_signature_made_by_another_key_is_logged_as_sshd_logs_it_without_privilege_separation() {
    let Some(s) = start("forged-signature-no-privsep", 1, "", "no") else { return };
    let before = log_forged_login(&s);
    assert!(!before.iter().any(|l| l.contains("monitor refused")), "{before:#?}");
}

/// `expiry-time=` without a `Z` is a local time (sshd reads it so), in the sandboxed worker
/// too, whose chroot hides the zone files: with `TZ` naming a zone west of UTC, a key whose
/// expiry reads two hours ago in UTC (hours ahead in that zone) still logs in, and one whose
/// expiry reads an hour ago in that zone does not.
#[test]
fn expiry_times_are_local_times_inside_the_sandbox_too() {
    let zone = "America/New_York";
    if !std::path::Path::new("/usr/share/zoneinfo").join(zone).exists() {
        println!("expiry-local-time: skipped: no {zone} zone file");
        return;
    }
    let Some(s) = start_with("expiry-local-time", 1, "", "sandbox", &[("TZ", zone)]) else {
        return;
    };
    let date = |tz: &str, shift: &str| {
        let out =
            Command::new("date").env("TZ", tz).args(["-d", shift, "+%Y%m%d%H%M"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let authorized_keys = s.user.home.join(".ssh/authorized_keys");
    let line = std::fs::read_to_string(&authorized_keys).unwrap();
    for (expiry, logs_in) in [(date("UTC", "-2 hours"), true), (date(zone, "-1 hour"), false)] {
        std::fs::write(&authorized_keys, format!("expiry-time=\"{expiry}\" {line}")).unwrap();
        let out = output({
            let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
            c.arg("echo in");
            c
        });
        if logs_in {
            assert_eq!(stdout(&out), "in\n", "expiry {expiry} (local): {}", stderr(&out));
        } else {
            assert_eq!(out.status.code(), Some(255), "expiry {expiry} (local) let it in");
        }
    }
}

/// Logs in to `s` with its key offered and another key's signature (through an agent in front
/// of `ssh-agent`): the client is refused, sshd's "Failed publickey" line is logged, and
/// nothing is accepted. The log lines before that line.
fn log_forged_login(s: &Setup) -> Vec<String> {
    let agent_sock = s.dir.path("agent.sock");
    let mut agent = agent_holding(&agent_sock, &s.key);
    let other = keygen(s.dir.root(), "id_other", "ed25519");
    let added = Command::new("ssh-add")
        .arg(&other)
        .env("SSH_AUTH_SOCK", &agent_sock)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success(), "ssh-add failed");
    let front = s.dir.path("front.sock");
    agent_that_signs_with_another_key(&front, agent_sock.clone());
    let out = output({
        // The public half only: the client signs through the agent.
        let mut c = ssh(s.daemon.port, &s.key.with_extension("pub"), &s.user.name);
        c.env("SSH_AUTH_SOCK", &front);
        c.args(["-o", "IdentitiesOnly=yes", "echo in"]);
        c
    });
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(out.status.code(), Some(255), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("Permission denied (publickey"), "{}", stderr(&out));
    let (before, failed) = log_until(&s.daemon, "Failed publickey for");
    let failed = failed.unwrap_or_else(|| panic!("no Failed publickey: {before:#?}"));
    let expected = format!("Failed publickey for {} from 127.0.0.1 port ", s.user.name);
    assert!(failed.contains(&expected) && failed.contains(" ssh2: ED25519 SHA256:"), "{failed}");
    assert!(!before.iter().any(|l| l.contains("Accepted publickey")), "{before:#?}");
    before
}

/// A key that completes the login is checked by the monitor and the login told in the same
/// round trip; under `AuthenticationMethods publickey,publickey` one key is only a partial
/// success, and the monitor is not told of a login (it would then refuse the second key's
/// check as out of state, and the worker would die).
#[test]
fn a_key_login_goes_to_the_monitor_with_its_check_unless_more_methods_follow() {
    let Some(s) = setup("privsep-one-trip", 1, "") else { return };
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert_eq!(stdout(&out), "in\n", "{}", stderr(&out));
    assert!(s.daemon.wait_for_log("the login goes with the key check").is_some());

    let Some(s) = setup("privsep-two-keys", 1, "AuthenticationMethods publickey,publickey\n")
    else {
        return;
    };
    let workers = wait_for_workers(s.daemon.pid(), 1, &[]);
    let second = keygen(s.dir.root(), "id_second", "ed25519");
    let authorized_keys = s.user.home.join(".ssh/authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized_keys).unwrap();
    keys.push_str(&std::fs::read_to_string(second.with_extension("pub")).unwrap());
    std::fs::write(&authorized_keys, keys).unwrap();
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.args(["-i", &second.display().to_string(), "echo both"]);
        c
    });
    assert_eq!(stdout(&out), "both\n", "{}", stderr(&out));
    let mut lines = Vec::new();
    let accepted = loop {
        match s.daemon.log.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("Accepted publickey") => break Some(line),
            Ok(line) => lines.push(line),
            Err(_) => break None,
        }
    };
    assert!(accepted.is_some(), "no completed login: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("Partial publickey")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("the login goes with")), "{lines:#?}");
    assert_eq!(sandboxed_workers(s.daemon.pid()), workers, "the worker was replaced");
}

/// The CPUs a process may run on, from `Cpus_allowed_list` ("0-3,6").
fn cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(first.parse::<u32>().unwrap()..=last.parse::<u32>().unwrap());
    }
    cpus
}

/// With one worker per CPU conchd may use, each worker keeps to a CPU of its own (a login's
/// hand-overs between the worker and its monitor thread stay on that CPU); the sessions the
/// monitor starts may run anywhere, as before.
#[test]
fn with_one_worker_per_cpu_each_worker_keeps_to_its_own_cpu_and_sessions_do_not() {
    let ours = status_field(std::process::id(), "Cpus_allowed_list").unwrap();
    let cpus = cpu_list(&ours);
    if cpus.len() < 2 {
        println!("privsep-cpus: skipped: one CPU");
        return;
    }
    let Some(s) = setup("privsep-cpus", cpus.len(), "") else { return };
    let workers = wait_for_workers(s.daemon.pid(), cpus.len(), &[]);
    let mut pinned: Vec<u32> = workers
        .iter()
        .map(|&w| {
            let list = cpu_list(&status_field(w, "Cpus_allowed_list").unwrap());
            assert_eq!(list.len(), 1, "worker {w} may run on {list:?}");
            list[0]
        })
        .collect();
    pinned.sort_unstable();
    assert_eq!(pinned, cpus, "one worker on each CPU");
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("grep Cpus_allowed_list /proc/self/status");
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let session = stdout(&out);
    let session = session.trim().strip_prefix("Cpus_allowed_list:").unwrap();
    assert_eq!(cpu_list(session), cpus, "the session's CPUs");
}

/// Sets `user`'s password (SHA-512 crypt).
fn set_password(user: &str, password: &str) {
    let mut chpasswd =
        Command::new("chpasswd").args(["-c", "SHA512"]).stdin(Stdio::piped()).spawn().unwrap();
    chpasswd.stdin.take().unwrap().write_all(format!("{user}:{password}\n").as_bytes()).unwrap();
    assert!(chpasswd.wait().unwrap().success());
}

/// `AuthenticationMethods publickey,password`: the key is a partial success the monitor
/// verifies, the password completes the login, and the monitor, which checks the list
/// itself with the methods it verified, lets it in; the log says "Partial publickey", then
/// "Accepted password".
#[test]
fn a_key_then_a_password_log_in_under_authentication_methods_publickey_password() {
    if Command::new("sshpass").arg("-V").output().is_err() {
        println!("skipped: no sshpass");
        return;
    }
    let Some(s) = setup(
        "privsep-key-password",
        1,
        "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
         AuthenticationMethods publickey,password\n",
    ) else {
        return;
    };
    let workers = wait_for_workers(s.daemon.pid(), 1, &[]);
    let password = "Tw1ne-both-pw";
    set_password(&s.user.name, password);
    let out = output({
        let mut c = Command::new("timeout");
        c.args([CLIENT_TIME_LIMIT, "sshpass", "-p", password, "ssh", "-F", "/dev/null"]);
        for option in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes",
            "PreferredAuthentications=publickey,password",
            "NumberOfPasswordPrompts=1",
        ] {
            c.args(["-o", option]);
        }
        c.arg("-i").arg(&s.key);
        c.args(["-p", &s.daemon.port.to_string(), "-l", &s.user.name, "127.0.0.1"]);
        c.arg("echo both");
        c
    });
    assert_eq!(stdout(&out), "both\n", "{}", stderr(&out));
    let (before, accepted) = log_until(&s.daemon, "Accepted password for");
    let accepted = accepted.unwrap_or_else(|| panic!("no Accepted password: {before:#?}"));
    assert!(accepted.contains(&format!("Accepted password for {} from 127.0.0.1", s.user.name)));
    let partial = format!("Partial publickey for {} from 127.0.0.1 port ", s.user.name);
    assert_eq!(before.iter().filter(|l| l.contains(&partial)).count(), 1, "{before:#?}");
    assert!(!before.iter().any(|l| l.contains("Accepted publickey")), "{before:#?}");
    assert!(!before.iter().any(|l| l.contains("the login goes with")), "{before:#?}");
    assert_eq!(sandboxed_workers(s.daemon.pid()), workers, "the worker was replaced");
}

/// `AuthenticationMethods hostbased,publickey` is not `publickey`: conchd has no host-based
/// authentication, so that list can never complete and is skipped whole (as sshd skips a list
/// with a disabled method), never shortened to `publickey`. With a second list,
/// `publickey,password`, the daemon starts, and a client with only its key gets a partial
/// success and no login; for a user whose `Match` block leaves only the host-based list, the
/// connection ends before any method is tried.
#[test]
fn authentication_methods_hostbased_publickey_refuses_a_key_only_login() {
    let Some(s) = setup(
        "privsep-hostbased-list",
        1,
        "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
         AuthenticationMethods hostbased,publickey publickey,password\n\
         Match User root\n  AuthenticationMethods hostbased,publickey\n",
    ) else {
        return;
    };
    let workers = wait_for_workers(s.daemon.pid(), 1, &[]);
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, &s.user.name);
        c.arg("echo in");
        c
    });
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(stderr(&out).contains("Permission denied (password)"), "{}", stderr(&out));
    let (before, partial) = log_until(&s.daemon, "Partial publickey for");
    assert!(partial.is_some(), "no Partial publickey: {before:#?}");
    let skipped = "Authentication methods list \"hostbased,publickey\" contains disabled method";
    assert!(before.iter().any(|l| l.contains(skipped)), "{before:#?}");
    assert!(!before.iter().any(|l| l.contains("Accepted publickey")), "{before:#?}");
    // Root's Match block leaves no list conchd can complete: the connection ends.
    let out = output({
        let mut c = ssh(s.daemon.port, &s.key, "root");
        c.arg("echo in");
        c
    });
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    // sshd's words to the client.
    let told = "no authentication methods enabled";
    assert!(stderr(&out).contains(told), "{}", stderr(&out));
    let (before, none_left) =
        log_until(&s.daemon, "No AuthenticationMethods left after eliminating disabled methods");
    assert!(none_left.is_some(), "{before:#?}");
    assert_eq!(sandboxed_workers(s.daemon.pid()), workers, "the worker was replaced");
}

/// `PermitRootLogin forced-commands-only`: root's key gets in only when its line forces a
/// command (the monitor checks the line it read itself), and runs that command.
#[test]
fn forced_commands_only_lets_root_in_by_a_key_only_when_its_line_forces_a_command() {
    let keys = TempDir::new("privsep-forced-keys");
    let extra = format!(
        "PermitRootLogin forced-commands-only\nStrictModes no\n\
         AuthorizedKeysFile .ssh/authorized_keys {}/authorized_keys_%u\n",
        keys.root().display()
    );
    let Some(s) = setup("privsep-forced", 1, &extra) else { return };
    let workers = wait_for_workers(s.daemon.pid(), 1, &[]);
    let public = std::fs::read_to_string(s.key.with_extension("pub")).unwrap();
    let as_root = || {
        output({
            let mut c = ssh(s.daemon.port, &s.key, "root");
            c.arg("echo asked");
            c
        })
    };
    keys.write("authorized_keys_root", &public);
    let out = as_root();
    assert_eq!(out.status.code(), Some(255), "{}", stdout(&out));
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
    let (before, refused) = log_until(&s.daemon, "no forced command");
    assert!(refused.is_some(), "{before:#?}");
    keys.write("authorized_keys_root", &format!("command=\"echo forced\" {public}"));
    let out = as_root();
    assert_eq!(stdout(&out), "forced\n", "{}", stderr(&out));
    let (before, accepted) = log_until(&s.daemon, "Accepted publickey for root");
    assert!(accepted.is_some(), "{before:#?}");
    assert_eq!(sandboxed_workers(s.daemon.pid()), workers, "the worker was replaced");
}

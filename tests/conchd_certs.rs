//! `conchd` with what enterprise setups use, end to end with OpenSSH's clients (as root, for a
//! test user): user certificates through `TrustedUserCAKeys` and `AuthorizedPrincipalsFile`
//! and through `cert-authority` lines, `RevokedKeys` KRLs, `hostkeys-00@openssh.com` for
//! `UpdateHostKeys`, and agent forwarding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use conchd_support::{
    conchd_command, free_port, is_root, keygen, output, ssh, stderr, stdout, Daemon, TempDir,
    TestUser,
};

/// Whether a root-only test can run; prints why not.
fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        println!("{test}: skipped: needs root to create a test user");
    }
    is_root()
}

/// A root daemon (`-D -e`) with `extra` configuration lines.
fn start_daemon(dir: &TempDir, extra: &str) -> Daemon {
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nLogLevel VERBOSE\n{extra}",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command.args(["-D", "-e", "-f", &config]);
    Daemon::start(command)
}

/// Signs `key` with `ca` as `ssh-keygen -s ca -I id <args> key`, making `key-cert.pub`.
fn sign(ca: &Path, key: &Path, id: &str, args: &[&str]) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", id])
        .args(args)
        .arg(key)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen -s {args:?} failed");
}

/// Replaces the user's `authorized_keys` with `text`.
fn authorize(user: &TestUser, text: &str) {
    let path = user.home.join(".ssh/authorized_keys");
    std::fs::write(&path, text).unwrap();
    std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
}

/// Runs `command` over ssh with `key` (and its `-cert.pub`, which ssh loads beside it).
fn run(daemon: &Daemon, key: &Path, user: &str, command: &str) -> std::process::Output {
    let mut c = ssh(daemon.port, key, user);
    c.arg(command);
    output(c)
}

struct Setup {
    dir: TempDir,
    ca: PathBuf,
    key: PathBuf,
    user: TestUser,
}

/// A user whose `authorized_keys` holds nothing usable, a CA and a user key (unsigned yet).
fn setup(tag: &str) -> Option<Setup> {
    let dir = TempDir::new(tag);
    let unrelated = keygen(dir.root(), "unrelated", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &unrelated) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    let ca = keygen(dir.root(), "ca", "ed25519");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    Some(Setup { dir, ca, key, user })
}

/// With `TrustedUserCAKeys`, a certificate naming the user logs in; one naming someone else,
/// one expired, one from another CA, and one revoked by a KRL are refused; the certificate's
/// key alone is not in `authorized_keys` and is refused too.
#[test]
fn trusted_user_ca_keys_let_in_valid_certificates_only() {
    if !root_or_skip("trusted_user_ca_keys_let_in_valid_certificates_only") {
        return;
    }
    let Some(s) = setup("certs-trusted") else { return };
    let name = s.user.name.clone();
    let krl = s.dir.path("revoked.krl");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-k", "-f"])
        .arg(&krl)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let daemon = start_daemon(
        &s.dir,
        &format!("TrustedUserCAKeys {}.pub\nRevokedKeys {}\n", s.ca.display(), krl.display()),
    );

    sign(&s.ca, &s.key, "good", &["-n", &name, "-z", "7"]);
    let out = run(&daemon, &s.key, &name, "echo in as $USER");
    assert!(out.status.success(), "certificate refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("in as {name}"));

    sign(&s.ca, &s.key, "other", &["-n", "somebody-else"]);
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "wrong principal accepted");

    sign(&s.ca, &s.key, "old", &["-n", &name, "-V", "20200101:20200102"]);
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "expired certificate accepted");

    let other_ca = keygen(s.dir.root(), "other_ca", "ed25519");
    sign(&other_ca, &s.key, "stranger", &["-n", &name]);
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "untrusted CA accepted");

    // Revoke serial 7 and try the good certificate again.
    sign(&s.ca, &s.key, "good", &["-n", &name, "-z", "7"]);
    let spec = s.dir.write("spec", "serial: 7\n");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-k", "-f"])
        .arg(&krl)
        .arg("-s")
        .arg(format!("{}.pub", s.ca.display()))
        .arg(&spec)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "revoked certificate accepted");

    // The plain key is in no authorized_keys file.
    std::fs::remove_file(format!("{}-cert.pub", s.key.display())).unwrap();
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "plain key accepted");
}

/// `AuthorizedPrincipalsFile` (with `%u`) names the principals a certificate may carry, and a
/// line's `command=` and the certificate's `force-command` run instead of the client's.
#[test]
fn authorized_principals_file_and_forced_commands_apply() {
    if !root_or_skip("authorized_principals_file_and_forced_commands_apply") {
        return;
    }
    let Some(s) = setup("certs-principals") else { return };
    let name = s.user.name.clone();
    // Relative to the home directory (StrictModes checks the directories up to it).
    let daemon = start_daemon(
        &s.dir,
        &format!(
            "TrustedUserCAKeys {}.pub\nAuthorizedPrincipalsFile .ssh/principals_%u\n",
            s.ca.display()
        ),
    );
    let file = s.user.home.join(format!(".ssh/principals_{name}"));
    sign(&s.ca, &s.key, "ops", &["-n", "ops-team"]);
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "no principals file yet");

    std::fs::write(&file, "# ops\nops-team\n").unwrap();
    let out = run(&daemon, &s.key, &name, "echo listed");
    assert!(out.status.success(), "listed principal refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "listed");

    std::fs::write(&file, "command=\"echo forced by line\" ops-team\n").unwrap();
    let out = run(&daemon, &s.key, &name, "echo asked");
    assert_eq!(stdout(&out).trim(), "forced by line", "{}", stderr(&out));

    std::fs::write(&file, "ops-team\n").unwrap();
    sign(&s.ca, &s.key, "ops", &["-n", "ops-team", "-O", "force-command=echo forced by cert"]);
    let out = run(&daemon, &s.key, &name, "echo asked");
    assert_eq!(stdout(&out).trim(), "forced by cert", "{}", stderr(&out));

    std::fs::write(&file, "dev-team\n").unwrap();
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "unlisted principal accepted");
}

/// A `cert-authority` line in `authorized_keys` accepts the CA's certificates for the user
/// name, or with `principals=` for the names listed; a certificate without `permit-pty` gets
/// no terminal.
#[test]
fn cert_authority_lines_accept_the_cas_certificates() {
    if !root_or_skip("cert_authority_lines_accept_the_cas_certificates") {
        return;
    }
    let Some(s) = setup("certs-authority") else { return };
    let name = s.user.name.clone();
    let ca_line = std::fs::read_to_string(format!("{}.pub", s.ca.display())).unwrap();
    let daemon = start_daemon(&s.dir, "");

    authorize(&s.user, &format!("cert-authority {ca_line}"));
    sign(&s.ca, &s.key, "mine", &["-n", &name]);
    let out = run(&daemon, &s.key, &name, "echo via authority");
    assert!(out.status.success(), "certificate refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "via authority");

    authorize(&s.user, &format!("cert-authority,principals=\"web,db\" {ca_line}"));
    assert!(
        !run(&daemon, &s.key, &name, "true").status.success(),
        "user name is not in principals="
    );
    let with_tty = || {
        let mut c = ssh(daemon.port, &s.key, &name);
        c.args(["-tt", "tty"]);
        output(c)
    };
    sign(&s.ca, &s.key, "db", &["-n", "db"]);
    let out = with_tty();
    assert!(out.status.success(), "db principal refused: {}", stderr(&out));
    assert!(stdout(&out).contains("/dev/pts/"), "no pty: {}", stdout(&out));
    // Without permit-pty a terminal is refused (and ssh -tt gives up).
    sign(&s.ca, &s.key, "db", &["-n", "db", "-O", "no-pty"]);
    let out = with_tty();
    assert!(stderr(&out).contains("PTY allocation request failed"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("/dev/pts/"), "got a pty: {}", stdout(&out));

    // A plain line for the CA key (without cert-authority) does not accept certificates.
    authorize(&s.user, &ca_line);
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "plain CA line accepted");
}

/// After login the server announces every host key, so `UpdateHostKeys` learns a second key
/// the client did not know.
#[test]
fn update_host_keys_learns_every_host_key() {
    if !root_or_skip("update_host_keys_learns_every_host_key") {
        return;
    }
    let Some(s) = setup("certs-hostkeys") else { return };
    let name = s.user.name.clone();
    authorize(&s.user, &std::fs::read_to_string(s.key.with_extension("pub")).unwrap());
    let second = keygen(s.dir.root(), "host_ecdsa", "ecdsa");
    let daemon = start_daemon(&s.dir, &format!("HostKey {}\n", second.display()));
    let known = s.dir.path("known_hosts");
    let host_key = std::fs::read_to_string(s.dir.path("host_key.pub")).unwrap();
    std::fs::write(&known, format!("[127.0.0.1]:{} {host_key}", daemon.port)).unwrap();
    let mut c = Command::new("timeout");
    c.arg(conchd_support::CLIENT_TIME_LIMIT).arg("ssh");
    c.args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]);
    c.args(["-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=yes"]);
    c.args(["-o", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256"]);
    c.arg("-o").arg(format!("UserKnownHostsFile={}", known.display()));
    c.args(["-o", "GlobalKnownHostsFile=/dev/null", "-i"]).arg(&s.key);
    c.args(["-p", &daemon.port.to_string(), "-l", &name, "127.0.0.1", "true"]);
    let out = output(c);
    assert!(out.status.success(), "ssh failed: {}", stderr(&out));
    let known_text = std::fs::read_to_string(&known).unwrap();
    let ecdsa = std::fs::read_to_string(second.with_extension("pub")).unwrap();
    let ecdsa_b64 = ecdsa.split_whitespace().nth(1).unwrap();
    assert!(known_text.contains(ecdsa_b64), "second host key not learned: {known_text}");
}

/// `ssh -A` gets `SSH_AUTH_SOCK` in a private directory, and the forwarded agent lists the
/// client's key; with `AllowAgentForwarding no` there is no socket.
#[test]
fn agent_forwarding_reaches_the_clients_agent() {
    if !root_or_skip("agent_forwarding_reaches_the_clients_agent") {
        return;
    }
    let Some(s) = setup("certs-agent") else { return };
    let name = s.user.name.clone();
    authorize(&s.user, &std::fs::read_to_string(s.key.with_extension("pub")).unwrap());
    let agent_sock = s.dir.path("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&agent_sock)
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("ssh-agent");
    for _ in 0..100 {
        if agent_sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let added = Command::new("ssh-add")
        .arg(&s.key)
        .env("SSH_AUTH_SOCK", &agent_sock)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success(), "ssh-add failed");
    let fingerprint = {
        let out = output({
            let mut c = Command::new("ssh-keygen");
            c.arg("-lf").arg(s.key.with_extension("pub"));
            c
        });
        stdout(&out).split_whitespace().nth(1).unwrap().to_owned()
    };

    let forwarding = |daemon: &Daemon| {
        let mut c = ssh(daemon.port, &s.key, &name);
        c.env("SSH_AUTH_SOCK", &agent_sock);
        c.args([
            "-A",
            "echo sock=$SSH_AUTH_SOCK; ls -ld \"$(dirname \"$SSH_AUTH_SOCK\")\"; ssh-add -l",
        ]);
        output(c)
    };
    let daemon = start_daemon(&s.dir, "");
    let out = forwarding(&daemon);
    let text = stdout(&out);
    assert!(out.status.success(), "ssh -A failed: {} {}", text, stderr(&out));
    assert!(text.contains("sock=/tmp/ssh-"), "no agent socket: {text}");
    assert!(text.contains("drwx------"), "agent directory not private: {text}");
    assert!(text.contains(&name), "agent directory not the user's: {text}");
    assert!(text.contains(&fingerprint), "forwarded agent does not list the key: {text}");
    drop(daemon);

    let second = TempDir::new("certs-agent-off");
    let daemon = start_daemon(&second, "AllowAgentForwarding no\n");
    let out = forwarding(&daemon);
    assert!(stdout(&out).contains("sock=\n"), "agent forwarded anyway: {}", stdout(&out));

    let _ = agent.kill();
    let _ = agent.wait();
}

//! The certificate, host key and `Match` scenarios of `conchd_certs` (conchd as configured)
//! and `privsep_conchd` (the same under `UsePrivilegeSeparation=sandbox`): one set-up and
//! one body each, run by both.
#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::conchd_support::{
    conchd_command, free_port, is_root, keygen, output, ssh, stderr, stdout, Daemon, TempDir,
    TestUser,
};

/// How the daemon under test separates privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// As the environment says (`CONCHD_PRIVSEP`; off by default).
    AsConfigured,
    /// `-o UsePrivilegeSeparation=sandbox` with one worker, whatever the environment says;
    /// the daemon is checked to have started its worker.
    Sandbox,
}

/// Whether a root-only test can run; prints why not.
pub(crate) fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        println!("{test}: skipped: needs root to create a test user");
    }
    is_root()
}

/// A root daemon (`-D -e`) in `mode` with `extra` configuration lines.
pub(crate) fn start_daemon(dir: &TempDir, mode: Mode, extra: &str) -> Daemon {
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let level = if mode == Mode::Sandbox { "DEBUG" } else { "VERBOSE" };
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nLogLevel {level}\n{extra}",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command.args(["-D", "-e", "-f", &config]);
    if mode == Mode::Sandbox {
        command
            .args(["-o", "UsePrivilegeSeparation=sandbox"])
            .env("CONCHD_PRIVSEP_WORKERS", "1")
            .env_remove("CONCHD_PRIVSEP");
    }
    let daemon = Daemon::start(command);
    if mode == Mode::Sandbox {
        assert!(
            daemon.wait_for_log("sandboxed as uid").is_some(),
            "no sandboxed worker: privilege separation is not in force"
        );
    }
    daemon
}

/// Signs `key` with `ca` as `ssh-keygen -s ca -I id <args> key`, making `key-cert.pub`.
pub(crate) fn sign(ca: &Path, key: &Path, id: &str, args: &[&str]) {
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

/// Replaces the user's `~/.ssh/<file>` with `text`, owned by the user.
pub(crate) fn write_user_file(user: &TestUser, file: &str, text: &str) {
    let path = user.home.join(".ssh").join(file);
    std::fs::write(&path, text).unwrap();
    std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
}

/// Replaces the user's `authorized_keys` with `text`.
pub(crate) fn authorize(user: &TestUser, text: &str) {
    write_user_file(user, "authorized_keys", text);
}

/// Runs `command` over ssh with `key` (and its `-cert.pub`, which ssh loads beside it).
pub(crate) fn run(daemon: &Daemon, key: &Path, user: &str, command: &str) -> std::process::Output {
    let mut c = ssh(daemon.port, key, user);
    c.arg(command);
    output(c)
}

pub(crate) struct Setup {
    pub(crate) dir: TempDir,
    pub(crate) ca: PathBuf,
    pub(crate) key: PathBuf,
    /// The key `authorized_keys` holds at first, unrelated to the CA.
    pub(crate) unrelated: PathBuf,
    pub(crate) user: TestUser,
}

/// A user whose `authorized_keys` holds nothing usable, a CA and a user key (unsigned yet).
pub(crate) fn setup(tag: &str) -> Option<Setup> {
    let dir = TempDir::new(tag);
    let unrelated = keygen(dir.root(), "unrelated", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &unrelated) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    let ca = keygen(dir.root(), "ca", "ed25519");
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    Some(Setup { dir, ca, key, unrelated, user })
}

/// With `TrustedUserCAKeys`, a certificate naming the user logs in; one naming someone else,
/// one expired, one from another CA, and one revoked by a KRL are refused; the certificate's
/// key alone is not in `authorized_keys` and is refused too.
pub(crate) fn trusted_user_ca_keys_let_in_valid_certificates_only(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
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
        mode,
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
pub(crate) fn authorized_principals_file_and_forced_commands_apply(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
    let name = s.user.name.clone();
    // Relative to the home directory (StrictModes checks the directories up to it).
    let daemon = start_daemon(
        &s.dir,
        mode,
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

/// `AuthorizedPrincipalsCommand` (`/bin/echo team-%u`, run as `nobody`) lists the principal a
/// certificate must carry: `team-<user>` logs in, another name does not.
pub(crate) fn authorized_principals_command_lists_the_principals(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
    let name = s.user.name.clone();
    let daemon = start_daemon(
        &s.dir,
        mode,
        &format!(
            "TrustedUserCAKeys {}.pub\nAuthorizedPrincipalsCommand /bin/echo team-%u\n\
             AuthorizedPrincipalsCommandUser nobody\n",
            s.ca.display()
        ),
    );
    sign(&s.ca, &s.key, "team", &["-n", &format!("team-{name}")]);
    let out = run(&daemon, &s.key, &name, "echo via command");
    assert!(out.status.success(), "listed principal refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "via command");

    sign(&s.ca, &s.key, "team", &["-n", "team-someone-else"]);
    assert!(!run(&daemon, &s.key, &name, "true").status.success(), "unlisted principal accepted");
}

/// `AuthorizedKeysCommand`, run as `AuthorizedKeysCommandUser nobody`, prints the lines for the
/// key offered: a shell records its tokens (`%u`, `%t`, `%f`, `%C`) and `grep` finds the key's
/// base64 (`%k`) in a file of lines, here one with `command=`. The user's own
/// `authorized_keys` lists only another key. The key logs in and its line's forced command runs;
/// a key the command does not print is refused; every run saw the user, the key's type and
/// fingerprint, and both ends of the connection.
pub(crate) fn authorized_keys_command_prints_the_lines_for_the_key(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
    let name = s.user.name.clone();
    let public = std::fs::read_to_string(s.key.with_extension("pub")).unwrap();
    let keys = s.dir.write("command-keys", &format!("command=\"echo via-command\" {public}"));
    let tokens = s.dir.write("tokens", "");
    for file in [&keys, &tokens] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let daemon = start_daemon(
        &s.dir,
        mode,
        &format!(
            "AuthorizedKeysCommand /bin/sh -c \"echo \\\"$1|$2|$3|$4\\\" >> {tokens}; \
             exec grep -F -e \\\"$5\\\" {keys}\" sh %u %t %f %C %k\n\
             AuthorizedKeysCommandUser nobody\n"
        ),
    );
    let out = run(&daemon, &s.key, &name, "echo not forced");
    assert!(out.status.success(), "the command's key refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "via-command");
    let stranger = keygen(s.dir.root(), "stranger", "ed25519");
    assert!(!run(&daemon, &stranger, &name, "true").status.success(), "unlisted key accepted");
    let fingerprint = {
        let out = output({
            let mut c = Command::new("ssh-keygen");
            c.arg("-lf").arg(s.key.with_extension("pub"));
            c
        });
        stdout(&out).split_whitespace().nth(1).unwrap().to_owned()
    };
    let seen = std::fs::read_to_string(&tokens).unwrap();
    let ours = format!("{name}|ssh-ed25519|{fingerprint}|127.0.0.1 ");
    let for_key: Vec<&str> = seen.lines().filter(|l| l.starts_with(&ours)).collect();
    assert!(!for_key.is_empty(), "the command never saw the key: {seen}");
    for line in for_key {
        let ends = line.trim_start_matches(&ours);
        let (client_port, server) = ends.split_once(' ').unwrap();
        assert!(client_port.parse::<u16>().is_ok_and(|p| p > 0), "client port: {line}");
        assert_eq!(server, format!("127.0.0.1 {}", daemon.port), "{line}");
    }
}

/// A `cert-authority` line in `authorized_keys` accepts the CA's certificates for the user
/// name, or with `principals=` for the names listed; a certificate without `permit-pty` gets
/// no terminal.
pub(crate) fn cert_authority_lines_accept_the_cas_certificates(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
    let name = s.user.name.clone();
    let ca_line = std::fs::read_to_string(format!("{}.pub", s.ca.display())).unwrap();
    let daemon = start_daemon(&s.dir, mode, "");

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
/// the client did not know (proven with `hostkeys-prove-00@openssh.com`).
pub(crate) fn update_host_keys_learns_every_host_key(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
    let name = s.user.name.clone();
    authorize(&s.user, &std::fs::read_to_string(s.key.with_extension("pub")).unwrap());
    let second = keygen(s.dir.root(), "host_ecdsa", "ecdsa");
    let daemon = start_daemon(&s.dir, mode, &format!("HostKey {}\n", second.display()));
    let known = s.dir.path("known_hosts");
    let host_key = std::fs::read_to_string(s.dir.path("host_key.pub")).unwrap();
    std::fs::write(&known, format!("[127.0.0.1]:{} {host_key}", daemon.port)).unwrap();
    let mut c = Command::new("timeout");
    c.arg(crate::conchd_support::CLIENT_TIME_LIMIT).arg("ssh");
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

/// `AuthorizedKeysFile` in a `Match User` block replaces the server-wide list for that user:
/// a key listed only in the block's file logs in, one listed only in `authorized_keys` does
/// not.
pub(crate) fn authorized_keys_file_in_a_match_block_is_honoured(tag: &str, mode: Mode) {
    let Some(s) = setup(tag) else { return };
    let name = s.user.name.clone();
    write_user_file(
        &s.user,
        "match_keys",
        &std::fs::read_to_string(s.key.with_extension("pub")).unwrap(),
    );
    let daemon = start_daemon(
        &s.dir,
        mode,
        &format!("Match User {name}\n    AuthorizedKeysFile .ssh/match_keys\n"),
    );
    let out = run(&daemon, &s.key, &name, "echo matched");
    assert!(out.status.success(), "key of the Match block's file refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "matched");
    let out = run(&daemon, &s.unrelated, &name, "true");
    assert!(!out.status.success(), "a key of the server-wide authorized_keys was accepted");
}

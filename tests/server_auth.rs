//! End to end: OpenSSH's `ssh` logs in to a twine server with each kind of user key and with a
//! password, and is refused as sshd would refuse it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use server_support::{keygen, stderr, stdout, Options, Server, Sessions, TempDir, PASSWORD};
use twine_conch::userauth::Method;

/// Logs in with `key` (and `extra` options) and runs `echo`, expecting its output.
fn assert_key_login(server: &Server, key: &std::path::Path, extra: &[&str]) {
    let out = server.ssh().key(key).args(extra).run(&["echo", "in"], b"");
    assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
    assert_eq!(stdout(&out), "in\n");
}

/// Ed25519, ECDSA (P-256, P-384, P-521) and RSA keys from `authorized_keys` log in, RSA with
/// each of `rsa-sha2-256` and `rsa-sha2-512` as the only algorithm the client may sign with.
#[test]
fn publickey_logins_succeed_with_every_key_type() {
    let server = Server::start(Options::new(Sessions::Unix));
    let keys = TempDir::new("keys");
    let ed25519 = keygen(&keys, "ed25519");
    server.authorize(&ed25519, "");
    assert_key_login(&server, &ed25519, &[]);
    for bits in ["256", "384", "521"] {
        let path = keys.path(&format!("id_ecdsa{bits}"));
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", bits, "-N", "", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        server.authorize(&path, "");
        assert_key_login(&server, &path, &[]);
    }
    let rsa = keygen(&keys, "rsa");
    server.authorize(&rsa, "");
    for algorithm in ["rsa-sha2-256", "rsa-sha2-512"] {
        let option = format!("PubkeyAcceptedAlgorithms={algorithm}");
        assert_key_login(&server, &rsa, &["-o", &option]);
    }
}

/// The password the server's user table holds logs in (typed by `sshpass`).
#[test]
fn password_login_succeeds() {
    let server = Server::start(Options::new(Sessions::Unix));
    let out = server.ssh().password(PASSWORD).run(&["echo", "password", "ok"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "password ok\n");
}

/// A wrong password is refused: `ssh` asks again ("Permission denied, please try again."),
/// which `sshpass` reports as a wrong password (status 5); nothing runs.
#[test]
fn wrong_password_is_refused() {
    let server = Server::start(Options::new(Sessions::Unix));
    let out = server.ssh().password("not the password").run(&["echo", "in"], b"");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = server.ssh().password(PASSWORD).run(&["echo", "in"], b"");
    assert_eq!(stdout(&out), "in\n", "the right one still works: {}", stderr(&out));
}

/// A key that is not in `authorized_keys` is refused with OpenSSH's words when the server
/// offers only public keys.
#[test]
fn unknown_key_is_refused_with_permission_denied_publickey() {
    let mut options = Options::new(Sessions::Unix);
    options.methods = Some(vec![Method::PublicKey]);
    let server = Server::start(options);
    let keys = TempDir::new("keys");
    let (known, unknown) = (keygen(&keys, "ed25519"), keys.path("other"));
    server.authorize(&known, "");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&unknown)
        .status()
        .unwrap();
    assert!(status.success());
    let out = server.ssh().key(&unknown).run(&["echo", "in"], b"");
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("Permission denied (publickey)."), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

/// An `authorized_keys` line's `command=` replaces what the client asked, which the forced
/// command sees in `SSH_ORIGINAL_COMMAND`.
#[test]
fn forced_command_replaces_the_request() {
    let server = Server::start(Options::new(Sessions::Unix));
    let keys = TempDir::new("keys");
    let key = keygen(&keys, "ed25519");
    server.authorize(&key, r#"command="echo forced: $SSH_ORIGINAL_COMMAND""#);
    let out = server.ssh().key(&key).run(&["echo", "asked"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "forced: echo asked\n");
}

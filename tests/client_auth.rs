//! Our client's authentication and host key checking against a private OpenSSH `sshd`:
//! publickey with every key type (RSA as `rsa-sha2-*`), an encrypted key, password,
//! keyboard-interactive through PAM, a wrong key, and `known_hosts` accept, mismatch and refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod client_support;

use std::rc::Rc;
use std::time::Duration;

use client_support::{block_on, Options, Sshd, PASSWORD};
use twine_conch::client::{
    self, ClientConfig, ClientError, Method, StaticPrompter, StrictHostKeyChecking, Target,
};
use twine_core::Reactor;

const LIMIT: Duration = Duration::from_secs(120);

/// Connects with `config` and runs `whoami`.
fn whoami(sshd: &Sshd, config: ClientConfig) -> Result<String, ClientError> {
    let reactor = Reactor::new().unwrap();
    let handle = reactor.clone();
    let target = Target::new("127.0.0.1", sshd.port);
    block_on(&reactor, LIMIT, async move {
        let connection = client::connect(&handle, target, config).await?;
        let output = connection.run("whoami", 1024).await?;
        connection.disconnect();
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    })
}

/// Every key type logs in: Ed25519, ECDSA on each curve, and RSA, which signs with
/// `rsa-sha2-512` (the server's `server-sig-algs` lists it; SHA-1 is never used).
#[test]
fn publickey_with_every_key_type() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let keys = [
        ("ed25519", vec!["-t", "ed25519"]),
        ("ecdsa256", vec!["-t", "ecdsa", "-b", "256"]),
        ("ecdsa384", vec!["-t", "ecdsa", "-b", "384"]),
        ("ecdsa521", vec!["-t", "ecdsa", "-b", "521"]),
        ("rsa", vec!["-t", "rsa", "-b", "2048"]),
    ];
    for (name, args) in keys {
        let path = sshd.dir.path(&format!("id_{name}"));
        client_support::run(
            std::process::Command::new("ssh-keygen")
                .args(["-q", "-N", "", "-f"])
                .arg(&path)
                .args(args),
        );
        sshd.authorize(&path.with_extension("pub"));
        let config =
            sshd.client_config().preferred_methods(vec![Method::PublicKey]).identity_file(&path);
        let user =
            whoami(&sshd, config).unwrap_or_else(|err| panic!("{name}: {err}\n{}", sshd.log()));
        assert_eq!(user, sshd.user.name, "{name}");
    }
    let log = sshd.log();
    assert!(log.contains("rsa-sha2-512"), "RSA signed with SHA-512:\n{log}");
    assert!(!log.contains("pkalg ssh-rsa "), "no SHA-1 signatures:\n{log}");
}

/// An encrypted key is unlocked through the passphrase prompt.
#[test]
fn encrypted_key_with_passphrase_prompt() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_locked", "ed25519", "open sesame", true);
    let prompter = Rc::new(StaticPrompter::new().passphrase("open sesame"));
    let config = sshd
        .client_config()
        .preferred_methods(vec![Method::PublicKey])
        .prompter(prompter.clone())
        .identity_file(&key);
    assert_eq!(whoami(&sshd, config).unwrap(), sshd.user.name);
    let asked = prompter.seen();
    assert!(asked.iter().any(|line| line.starts_with("passphrase 1: ")), "{asked:?}");
}

/// A password from the prompter logs in.
#[test]
fn password_from_the_prompter() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let prompter = Rc::new(StaticPrompter::new().password(PASSWORD));
    let config =
        sshd.client_config().preferred_methods(vec![Method::Password]).prompter(prompter.clone());
    assert_eq!(
        whoami(&sshd, config).unwrap_or_else(|e| panic!("{e}\n{}", sshd.log())),
        sshd.user.name
    );
    let expected = format!("password: {}@127.0.0.1's password: ", sshd.user.name);
    assert_eq!(prompter.seen(), [expected]);
}

/// Keyboard-interactive through sshd's PAM conversation: the prompter answers the
/// `Password: ` prompt.
#[test]
fn keyboard_interactive_through_pam() {
    let Some(sshd) = Sshd::start(Options { pam: true, ..Options::default() }) else { return };
    let prompter = Rc::new(StaticPrompter::new().password(PASSWORD));
    let config = sshd
        .client_config()
        .preferred_methods(vec![Method::KeyboardInteractive])
        .prompter(prompter.clone());
    assert_eq!(
        whoami(&sshd, config).unwrap_or_else(|e| panic!("{e}\n{}", sshd.log())),
        sshd.user.name
    );
    let asked = prompter.seen();
    assert!(asked.iter().any(|line| line.starts_with("keyboard-interactive: ")), "{asked:?}");
}

/// A key the server does not know fails with the methods it would still take, as OpenSSH
/// prints them.
#[test]
fn wrong_key_fails_with_methods_left() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_stranger", "ed25519", "", false);
    let config =
        sshd.client_config().preferred_methods(vec![Method::PublicKey]).identity_file(&key);
    let error = whoami(&sshd, config).unwrap_err();
    let ClientError::AuthFailed { methods_left } = &error else { panic!("{error:?}") };
    assert_eq!(methods_left, &["publickey", "password"]);
    assert_eq!(error.to_string(), "Permission denied (publickey,password).");
}

/// `accept-new` records an unknown server's key and connects; the recorded key then passes in
/// `yes` mode.
#[test]
fn known_hosts_accept_new_records_the_key() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_ed25519", "ed25519", "", true);
    let file = sshd.dir.path("fresh_known_hosts");
    let config = ClientConfig::new(&sshd.user.name)
        .identity_file(&key)
        .known_hosts(&file, StrictHostKeyChecking::AcceptNew);
    assert_eq!(whoami(&sshd, config).unwrap(), sshd.user.name);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(&format!("[127.0.0.1]:{} ", sshd.port)), "{text}");
    let recorded = text.split_whitespace().nth(2).unwrap();
    assert!(sshd.host_keys.iter().any(|line| line.contains(recorded)), "{text}");
    let config = ClientConfig::new(&sshd.user.name)
        .identity_file(&key)
        .known_hosts(&file, StrictHostKeyChecking::Yes);
    assert_eq!(whoami(&sshd, config).unwrap(), sshd.user.name);
}

/// A different key recorded for the server is refused; so is an unknown server in `yes` mode.
#[test]
fn known_hosts_mismatch_and_unknown_are_refused() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_ed25519", "ed25519", "", true);
    let other = sshd.client_key("other_host", "ed25519", "", false);
    let other_line = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut parts = other_line.split_whitespace();
    let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
    let wrong = sshd.dir.path("wrong_known_hosts");
    std::fs::write(&wrong, format!("[127.0.0.1]:{} {kind} {blob}\n", sshd.port)).unwrap();
    let empty = sshd.dir.path("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    for file in [&wrong, &empty] {
        let prompter = Rc::new(StaticPrompter::new());
        let config = ClientConfig::new(&sshd.user.name)
            .identity_file(&key)
            .prompter(prompter.clone())
            .known_hosts(file, StrictHostKeyChecking::Yes);
        let error = whoami(&sshd, config).unwrap_err();
        assert!(
            matches!(&error, ClientError::HostKeyRejected { port, .. } if *port == sshd.port),
            "{error:?}"
        );
        assert_eq!(prompter.seen().len(), 1, "one notice says why");
    }
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "", "nothing recorded in yes mode");
}

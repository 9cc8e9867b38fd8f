//! The test sshd itself: OpenSSH's own client logs in to it with a key and with a password, so
//! a failure of ours against it is ours.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod client_support;

use std::process::Command;

use client_support::{run, Options, Sshd};

/// `ssh` logs in to the private sshd with an authorized key and runs a command.
#[test]
fn openssh_logs_in_to_the_test_sshd() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_ed25519", "ed25519", "", true);
    let known_hosts = sshd.known_hosts();
    let out = run(Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(&key)
        .args(["-p", &sshd.port.to_string()])
        .arg(format!("{}@127.0.0.1", sshd.user.name))
        .arg("echo $HOME"));
    assert_eq!(out.trim(), sshd.user.home.display().to_string(), "{}", sshd.log());
}

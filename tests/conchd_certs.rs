//! `conchd` with what enterprise setups use, end to end with OpenSSH's clients (as root, for a
//! test user): user certificates through `TrustedUserCAKeys` and `AuthorizedPrincipalsFile`
//! and through `cert-authority` lines, `RevokedKeys` KRLs, `hostkeys-00@openssh.com` for
//! `UpdateHostKeys`, `AuthorizedKeysFile` in a `Match` block, and agent forwarding. The
//! scenarios are in `certs_support`, which `privsep_conchd` runs under privilege separation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certs_support;
mod conchd_support;

use std::process::Command;

use conchd_support::{agent_holding, output, ssh, stderr, stdout, Daemon, TempDir};

use certs_support::{authorize, root_or_skip, setup, start_daemon, Mode};

#[test]
fn trusted_user_ca_keys_let_in_valid_certificates_only() {
    if root_or_skip("trusted_user_ca_keys_let_in_valid_certificates_only") {
        certs_support::trusted_user_ca_keys_let_in_valid_certificates_only(
            "certs-trusted",
            Mode::AsConfigured,
        );
    }
}

#[test]
fn authorized_principals_file_and_forced_commands_apply() {
    if root_or_skip("authorized_principals_file_and_forced_commands_apply") {
        certs_support::authorized_principals_file_and_forced_commands_apply(
            "certs-principals",
            Mode::AsConfigured,
        );
    }
}

#[test]
fn authorized_principals_command_lists_the_principals() {
    if root_or_skip("authorized_principals_command_lists_the_principals") {
        certs_support::authorized_principals_command_lists_the_principals(
            "certs-command",
            Mode::AsConfigured,
        );
    }
}

#[test]
fn authorized_keys_command_prints_the_lines_for_the_key() {
    if root_or_skip("authorized_keys_command_prints_the_lines_for_the_key") {
        certs_support::authorized_keys_command_prints_the_lines_for_the_key(
            "certs-keys-command",
            Mode::AsConfigured,
        );
    }
}

#[test]
fn cert_authority_lines_accept_the_cas_certificates() {
    if root_or_skip("cert_authority_lines_accept_the_cas_certificates") {
        certs_support::cert_authority_lines_accept_the_cas_certificates(
            "certs-authority",
            Mode::AsConfigured,
        );
    }
}

#[test]
fn update_host_keys_learns_every_host_key() {
    if root_or_skip("update_host_keys_learns_every_host_key") {
        certs_support::update_host_keys_learns_every_host_key("certs-hostkeys", Mode::AsConfigured);
    }
}

#[test]
fn authorized_keys_file_in_a_match_block_is_honoured() {
    if root_or_skip("authorized_keys_file_in_a_match_block_is_honoured") {
        certs_support::authorized_keys_file_in_a_match_block_is_honoured(
            "certs-match",
            Mode::AsConfigured,
        );
    }
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
    let mut agent = agent_holding(&agent_sock, &s.key);
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
    let daemon = start_daemon(&s.dir, Mode::AsConfigured, "");
    let out = forwarding(&daemon);
    let text = stdout(&out);
    assert!(out.status.success(), "ssh -A failed: {} {}", text, stderr(&out));
    assert!(text.contains("sock=/tmp/ssh-"), "no agent socket: {text}");
    assert!(text.contains("drwx------"), "agent directory not private: {text}");
    assert!(text.contains(&name), "agent directory not the user's: {text}");
    assert!(text.contains(&fingerprint), "forwarded agent does not list the key: {text}");
    drop(daemon);

    let second = TempDir::new("certs-agent-off");
    let daemon = start_daemon(&second, Mode::AsConfigured, "AllowAgentForwarding no\n");
    let out = forwarding(&daemon);
    assert!(stdout(&out).contains("sock=\n"), "agent forwarded anyway: {}", stdout(&out));

    let _ = agent.kill();
    let _ = agent.wait();
}

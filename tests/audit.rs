//! `ssh-audit` (from PyPI: `pip install ssh-audit==3.9.0`) against `conchd` on a free loopback
//! port with its default algorithms: the committed policy `tests/audit/conchd-policy.txt`
//! passes, the strict key exchange marker is offered, and no CBC cipher is offered.
//!
//! When `ssh-audit` cannot be run the tests print why and return (CI installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::process::{Command, Output, Stdio};

use conchd_support::{conchd_command, free_port, keygen, stderr, stdout, Daemon, TempDir};

/// The committed policy.
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/audit/conchd-policy.txt");

/// How long one scan may take before `timeout` kills it (a bound, never an assertion).
const AUDIT_TIME_LIMIT: &str = "120";

/// Whether `ssh-audit` runs here; prints why not.
fn ssh_audit_or_skip(test: &str) -> bool {
    let runs = Command::new("ssh-audit")
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        println!("{test}: skipped: ssh-audit not found (pip install ssh-audit==3.9.0)");
    }
    runs
}

/// A `conchd` with an Ed25519, an ECDSA and an RSA host key and no algorithm options.
fn start_daemon(dir: &TempDir) -> Daemon {
    let keys: Vec<String> = [("ed", "ed25519"), ("ec", "ecdsa"), ("rsa", "rsa")]
        .iter()
        .map(|(name, kind)| format!("HostKey {}\n", keygen(dir.root(), name, kind).display()))
        .collect();
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\n{}PidFile none\nLogLevel VERBOSE\n",
            free_port(),
            keys.concat()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command.args(["-D", "-e", "-f", &config]);
    Daemon::start(command)
}

/// `ssh-audit` without colours or the connection-rate test, against the daemon.
fn audit(daemon: &Daemon, args: &[&str]) -> Output {
    Command::new("timeout")
        .args([AUDIT_TIME_LIMIT, "ssh-audit", "-n", "--skip-rate-test"])
        .args(args)
        .args(["-p", &daemon.port.to_string(), "127.0.0.1"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The algorithms of one kind (`kex`, `key`, `enc`, `mac`) in a scan's report, in order.
fn offered(report: &str, kind: &str) -> Vec<String> {
    let prefix = format!("({kind}) ");
    report
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every algorithm a scan reports, with its kind.
fn scan(daemon: &Daemon) -> Vec<(String, String)> {
    let output = audit(daemon, &[]);
    let report = stdout(&output);
    let all: Vec<(String, String)> = ["kex", "key", "enc", "mac"]
        .iter()
        .flat_map(|kind| offered(&report, kind).into_iter().map(|name| ((*kind).to_owned(), name)))
        .collect();
    assert!(
        all.iter().any(|(kind, _)| kind == "enc"),
        "ssh-audit reported no algorithms: {report}{}",
        stderr(&output)
    );
    all
}

#[test]
fn the_default_algorithms_pass_the_committed_policy() {
    if !ssh_audit_or_skip("the_default_algorithms_pass_the_committed_policy") {
        return;
    }
    let dir = TempDir::new("audit-policy");
    let daemon = start_daemon(&dir);
    let output = audit(&daemon, &["-P", POLICY]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "policy failed:\n{report}{}", stderr(&output));
    assert!(report.contains("Passed"), "{report}");
}

#[test]
fn strict_key_exchange_is_offered_by_default() {
    if !ssh_audit_or_skip("strict_key_exchange_is_offered_by_default") {
        return;
    }
    let dir = TempDir::new("audit-strict");
    let daemon = start_daemon(&dir);
    let all = scan(&daemon);
    assert!(
        all.iter().any(|(kind, name)| kind == "kex" && name == "kex-strict-s-v00@openssh.com"),
        "no strict KEX marker among {all:?}"
    );
}

#[test]
fn no_cbc_cipher_is_offered_by_default() {
    if !ssh_audit_or_skip("no_cbc_cipher_is_offered_by_default") {
        return;
    }
    let dir = TempDir::new("audit-cbc");
    let daemon = start_daemon(&dir);
    let cbc: Vec<_> = scan(&daemon)
        .into_iter()
        .filter(|(_, name)| name.contains("-cbc") || name.contains("rijndael"))
        .collect();
    assert!(cbc.is_empty(), "CBC offered by default: {cbc:?}");
}

/// SHA-1 in any default list: `ssh-rsa` signatures, `diffie-hellman-*-sha1` key exchanges,
/// `hmac-sha1*` MACs.
#[test]
fn no_sha1_algorithm_is_offered_by_default() {
    if !ssh_audit_or_skip("no_sha1_algorithm_is_offered_by_default") {
        return;
    }
    let dir = TempDir::new("audit-sha1");
    let daemon = start_daemon(&dir);
    let sha1: Vec<_> = scan(&daemon)
        .into_iter()
        .filter(|(kind, name)| {
            name.contains("sha1") || (kind == "key" && (name == "ssh-rsa" || name == "ssh-dss"))
        })
        .collect();
    assert!(sha1.is_empty(), "SHA-1 offered by default: {sha1:?}");
}

//! `conch`'s command line without a server: `-Q`, `-G`, the usage, bad arguments, and the
//! messages and exit status of a refused connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};

const CONCH: &str = env!("CARGO_BIN_EXE_conch");

fn conch(args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!("conch-cli-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    Command::new(CONCH)
        .args(args)
        .env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("conch runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `-Q` lists our algorithms one per line, and refuses topics it does not know.
#[test]
fn query_lists_our_algorithms_and_refuses_unknown_topics() {
    let output = conch(&["-Q", "cipher"]);
    assert!(output.status.success());
    let ciphers = text(&output.stdout);
    assert!(ciphers.lines().any(|l| l == "aes128-ctr"), "{ciphers}");
    assert!(ciphers.lines().any(|l| l == "chacha20-poly1305@openssh.com"), "{ciphers}");
    for topic in ["mac", "kex", "key", "key-plain", "key-sig", "cipher-auth", "compression"] {
        let output = conch(&["-Q", topic]);
        assert!(output.status.success(), "{topic}");
        assert!(!output.stdout.is_empty(), "{topic}");
    }
    let output = conch(&["-Q", "nonsense"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(text(&output.stderr).contains("Unsupported query \"nonsense\""));
}

/// `-G` prints the effective configuration from `-F`'s file and the command line, with
/// the command line winning.
#[test]
fn dump_prints_the_effective_configuration() {
    let dir = std::env::temp_dir().join(format!("conch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        "Host web\n  HostName %h.example.org\n  User deploy\n  Port 2200\n  IdentityFile ~/k\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let output = conch(&["-G", "-F", config, "-p", "2222", "web"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let dump = text(&output.stdout);
    for line in ["hostname web.example.org", "user deploy", "port 2222"] {
        assert!(dump.lines().any(|l| l == line), "{line} in\n{dump}");
    }
    assert!(dump.lines().any(|l| l.starts_with("identityfile ") && l.ends_with("/k")), "{dump}");
    let output = conch(&["-G", "-F", config, "ssh://carol@web:2022"]);
    let dump = text(&output.stdout);
    assert!(dump.lines().any(|l| l == "user carol"), "{dump}");
    assert!(dump.lines().any(|l| l == "port 2022"), "{dump}");
}

/// No destination prints the usage and exits 255; so do unknown flags.
#[test]
fn no_destination_prints_the_usage_and_exits_255() {
    let output = conch(&[]);
    assert_eq!(output.status.code(), Some(255));
    assert!(text(&output.stderr).starts_with("usage: conch"));
    let output = conch(&["-Z", "host"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(text(&output.stderr).contains("illegal option -- Z"));
}

/// Bad forwarding specifications and ports are refused with OpenSSH's words.
#[test]
fn bad_forwardings_and_ports_are_refused_with_openssh_words() {
    let output = conch(&["-L", "nonsense", "host"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(text(&output.stderr).contains("Bad local forwarding specification 'nonsense'"));
    let output = conch(&["-p", "70000", "host"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(text(&output.stderr).contains("Bad port '70000'"));
}

/// A closed port gives `connect to host ... Connection refused` and 255.
#[test]
fn a_refused_connection_says_so_and_exits_255() {
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = conch(&["-F", "none", "-p", &port.to_string(), "127.0.0.1", "true"]);
    assert_eq!(output.status.code(), Some(255));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("connect to host 127.0.0.1 port {port}: Connection refused")),
        "{stderr}"
    );
}

/// `-q` silences even the refusal.
#[test]
fn quiet_silences_a_refused_connection() {
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = conch(&["-q", "-F", "none", "-p", &port.to_string(), "127.0.0.1", "true"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

//! `conchd`'s command line as sshd's: `-t`, `-T` with `-C`, `-o` in both spellings, `-p`,
//! `-h`, configuration errors naming file, line and keyword with exit status 255, and
//! unsupported host key types skipped with a warning.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::process::Command;

use conchd_support::{conchd, keygen, output, stderr, stdout, TempDir};

fn conchd_with(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(conchd());
    command.args(args);
    output(command)
}

/// `-T` prints lower-case `keyword value` lines; `-o` (separate and attached `=` forms) and
/// `-p` override the file, and the file's first value wins over its later ones.
#[test]
fn dash_t_prints_the_effective_configuration_with_command_line_overrides() {
    let dir = TempDir::new("cli-dump");
    let config = dir.write(
        "sshd_config",
        "Port 2022\nPort 2023\nLogLevel VERBOSE\nMaxAuthTries 4\nMaxAuthTries 9\n",
    );
    let out = conchd_with(&["-f", &config, "-T"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "port 2022"), "{text}");
    assert!(text.lines().any(|l| l == "port 2023"), "{text}");
    assert!(text.lines().any(|l| l == "loglevel VERBOSE"), "{text}");
    assert!(text.lines().any(|l| l == "maxauthtries 4"), "{text}");

    let out = conchd_with(&[
        "-f",
        &config,
        "-T",
        "-oMaxAuthTries=2",
        "-o",
        "LogLevel DEBUG3",
        "-p",
        "4000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "maxauthtries 2"), "{text}");
    assert!(text.lines().any(|l| l == "loglevel DEBUG3"), "{text}");
    assert!(text.lines().any(|l| l == "port 4000"), "{text}");
    assert!(!text.lines().any(|l| l == "port 2022"), "{text}");
}

/// `-C` evaluates `Match` blocks for the given connection in `-T` output.
#[test]
fn dash_c_applies_match_blocks_to_the_dump() {
    let dir = TempDir::new("cli-match");
    let config = dir.write(
        "sshd_config",
        "PasswordAuthentication yes\nMatch User alice Address 10.0.0.0/8\n  PasswordAuthentication no\n  ForceCommand /bin/true\n",
    );
    let alice = conchd_with(&["-f", &config, "-T", "-C", "user=alice,host=h,addr=10.1.2.3"]);
    assert!(alice.status.success(), "{}", stderr(&alice));
    assert!(stdout(&alice).contains("passwordauthentication no\n"));
    assert!(stdout(&alice).contains("forcecommand /bin/true\n"));
    let bob = conchd_with(&["-f", &config, "-T", "-Cuser=bob,host=h,addr=10.1.2.3"]);
    assert!(stdout(&bob).contains("passwordauthentication yes\n"));
    assert!(stdout(&bob).contains("forcecommand none\n"));
}

/// A bad line stops `conchd` with status 255 and a message naming the file, the line and
/// the keyword.
#[test]
fn a_bad_configuration_line_is_an_error_naming_file_line_and_keyword() {
    let dir = TempDir::new("cli-bad");
    let config = dir.write("sshd_config", "Port 22\n# fine\nNoSuchKeyword yes\n");
    let out = conchd_with(&["-f", &config, "-t"]);
    assert_eq!(out.status.code(), Some(255));
    let text = stderr(&out);
    assert!(
        text.contains(&config) && text.contains("line 3") && text.contains("NoSuchKeyword"),
        "{text}"
    );

    let config = dir.write("bad_port", "Port seventy\n");
    let out = conchd_with(&["-f", &config, "-T"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
}

/// A missing configuration file is an error with status 255.
#[test]
fn a_missing_configuration_file_is_an_error() {
    let dir = TempDir::new("cli-missing");
    let missing = dir.path("nope").display().to_string();
    let out = conchd_with(&["-f", &missing, "-t"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
}

/// `-t` passes with a usable host key, fails with status 1 when there is none, and skips
/// (with a warning) a host key type we do not support.
#[test]
fn dash_t_checks_host_keys_and_skips_unsupported_types() {
    let dir = TempDir::new("cli-keys");
    let good = keygen(dir.root(), "host_ed25519", "ed25519");
    let config = dir.write("sshd_config", &format!("HostKey {}\n", good.display()));
    let out = conchd_with(&["-f", &config, "-t"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let config = dir.write("none", &format!("HostKey {}\n", dir.path("absent").display()));
    let out = conchd_with(&["-f", &config, "-t"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no hostkeys available"), "{}", stderr(&out));

    // DSA: a type OpenSSH 9.2 still makes and we do not load (newer ssh-keygen may refuse).
    let dsa = dir.path("host_dsa");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "dsa", "-N", "", "-f"])
        .arg(&dsa)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        println!("skipped the unsupported-type part: ssh-keygen cannot make a DSA key");
        return;
    }
    let config = dir.write("mixed", &format!("HostKey {}\n", dsa.display()));
    let out = conchd_with(&["-f", &config, "-h", &good.display().to_string(), "-t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("unsupported"), "{}", stderr(&out));
}

/// Deprecated keywords OpenSSH still accepts are accepted.
#[test]
fn deprecated_keywords_are_accepted() {
    let dir = TempDir::new("cli-deprecated");
    let config =
        dir.write("sshd_config", "UsePrivilegeSeparation sandbox\nProtocol 2\nX11Forwarding yes\n");
    let out = conchd_with(&["-f", &config, "-T"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An unknown flag or a bad `-p` prints the error and the usage, with status 1.
#[test]
fn unknown_flags_and_bad_ports_print_the_usage() {
    let out = conchd_with(&["-Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("illegal option -- Z"));
    assert!(stderr(&out).contains("usage: conchd"));
    let out = conchd_with(&["-p", "0x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Bad port number 0x."));
}

/// A cipher, MAC or key exchange OpenSSH has and conchd lacks is skipped with a warning
/// naming file and line; the rest of the list is used. A name nobody knows is sshd's error.
#[test]
fn an_algorithm_openssh_has_but_conchd_lacks_is_skipped_with_a_warning() {
    let dir = TempDir::new("cli-algorithms");
    let key = keygen(dir.root(), "host_ed25519", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "HostKey {}\nCiphers aes128-cbc,aes256-ctr\nMACs umac-128-etm@openssh.com,hmac-sha2-256\n\
             KexAlgorithms diffie-hellman-group1-sha1,curve25519-sha256\n",
            key.display()
        ),
    );
    let out = conchd_with(&["-f", &config, "-T"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "ciphers aes256-ctr"), "{text}");
    assert!(text.lines().any(|l| l == "macs hmac-sha2-256"), "{text}");
    assert!(text.lines().any(|l| l == "kexalgorithms curve25519-sha256"), "{text}");
    let err = stderr(&out);
    assert!(err.contains(&format!("{config} line 2: ")) && err.contains("aes128-cbc"), "{err}");
    assert!(err.contains(&format!("{config} line 4: ")), "{err}");

    let bad =
        dir.write("bad_config", &format!("HostKey {}\nCiphers aes256-ctr,rot13\n", key.display()));
    let out = conchd_with(&["-f", &bad, "-t"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("Bad SSH2 cipher spec 'aes256-ctr,rot13'."), "{}", stderr(&out));
}

/// `-t` refuses a `VersionAddendum` that would make our identification line break RFC 4253
/// (over 255 bytes with CR LF), naming the keyword, with exit status 255; a short one passes.
#[test]
fn dash_t_refuses_a_version_addendum_too_long_for_the_identification_line() {
    let dir = TempDir::new("cli-addendum");
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let long = "x".repeat(300);
    for (addendum, ok) in [("hello there", true), (long.as_str(), false)] {
        let config = dir.write(
            "sshd_config",
            &format!("HostKey {}\nVersionAddendum {addendum}\n", host_key.display()),
        );
        let out = conchd_with(&["-f", &config, "-t"]);
        if ok {
            assert!(out.status.success(), "{}", stderr(&out));
        } else {
            assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
            assert!(stderr(&out).contains("VersionAddendum"), "{}", stderr(&out));
        }
    }
}

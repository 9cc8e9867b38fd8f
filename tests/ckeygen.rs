//! `ckeygen` beside the real `ssh-keygen`: keys it writes are read by `ssh-keygen` and used by
//! OpenSSH `ssh` to log in to a private OpenSSH `sshd` on loopback; keys `ssh-keygen` writes are
//! read by `ckeygen` with the same fingerprints and randomart; conversions round-trip with
//! `ssh-keygen` and `openssl`; errors, prompts and `known_hosts` edits behave as `ssh-keygen`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod ckeygen_support;

use ckeygen_support::{ckeygen, ok, run, TempDir};

/// `-t`, `-b` for every key type and size we generate.
const TYPES: &[(&str, &str)] =
    &[("ed25519", "256"), ("ecdsa", "256"), ("ecdsa", "384"), ("ecdsa", "521"), ("rsa", "2048")];

/// Standard error as text. OpenSSH ends its log lines with `\r\n` when standard error is not a
/// terminal; the carriage returns are dropped so that texts compare.
fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).replace("\r\n", "\n")
}

/// Keys `ckeygen` writes, plain and encrypted, have mode 0600 and a `.pub` beside them, and
/// `ssh-keygen` derives the same public key and fingerprint from them.
#[test]
fn ssh_keygen_reads_every_key_type_ckeygen_writes() {
    let dir = TempDir::new("ckeygen-writes");
    for (t, bits) in TYPES {
        for pass in ["", "s3cret"] {
            let path = dir.p(&format!("{t}{bits}{pass}"));
            ok(ckeygen(), &["-q", "-t", t, "-b", bits, "-N", pass, "-C", "our key", "-f", &path]);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{path}");
            let pub_line = std::fs::read_to_string(format!("{path}.pub")).unwrap();
            let theirs = ok("ssh-keygen", &["-y", "-P", pass, "-f", &path]);
            assert_eq!(theirs, pub_line, "{t} {bits} {pass:?}");
            assert_eq!(
                ok("ssh-keygen", &["-l", "-f", &format!("{path}.pub")]),
                ok(ckeygen(), &["-l", "-f", &format!("{path}.pub")])
            );
        }
    }
}

/// Keys `ssh-keygen` writes (every type, plain and encrypted) give `ckeygen` the same `-l`,
/// `-lv` (randomart), `-E md5`, `-B` and `-y` output as `ssh-keygen`.
#[test]
fn ckeygen_prints_what_ssh_keygen_prints_for_its_keys() {
    let dir = TempDir::new("ckeygen-reads");
    for (t, bits) in TYPES.iter().chain(&[("rsa", "3072")]) {
        for pass in ["", "pw"] {
            let path = dir.p(&format!("{t}{bits}{pass}"));
            ok(
                "ssh-keygen",
                &["-q", "-t", t, "-b", bits, "-N", pass, "-C", "their key", "-f", &path],
            );
            for args in [
                vec!["-l", "-f", &path],
                vec!["-lv", "-f", &path],
                vec!["-l", "-v", "-E", "md5", "-f", &path],
                vec!["-lv", "-E", "sha1", "-f", &path],
                vec!["-B", "-f", &path],
                vec!["-y", "-P", pass, "-f", &path],
            ] {
                assert_eq!(ok(ckeygen(), &args), ok("ssh-keygen", &args), "{args:?}");
            }
            // Without the .pub, an encrypted key shows "no comment", a plain one its comment.
            std::fs::remove_file(format!("{path}.pub")).unwrap();
            assert_eq!(
                ok(ckeygen(), &["-l", "-f", &path]),
                ok("ssh-keygen", &["-l", "-f", &path]),
                "{t} {bits} {pass:?} without .pub"
            );
        }
    }
}

/// `-l` on an `authorized_keys` file lists every key, options or not, as `ssh-keygen` does.
#[test]
fn fingerprints_every_key_in_an_authorized_keys_file() {
    let dir = TempDir::new("ckeygen-ak");
    let a = dir.p("a");
    let b = dir.p("b");
    ok("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "a", "-f", &a]);
    ok("ssh-keygen", &["-q", "-t", "ecdsa", "-N", "", "-C", "b b", "-f", &b]);
    let ak = dir.p("authorized_keys");
    let text = format!(
        "# keys\n{}{}no-pty,command=\"echo hi\" {}",
        std::fs::read_to_string(format!("{a}.pub")).unwrap(),
        std::fs::read_to_string(format!("{b}.pub")).unwrap(),
        std::fs::read_to_string(format!("{a}.pub")).unwrap(),
    );
    std::fs::write(&ak, text).unwrap();
    assert_eq!(ok(ckeygen(), &["-l", "-f", &ak]), ok("ssh-keygen", &["-l", "-f", &ak]));
}

/// `-p` changes the passphrase (old one refused afterwards, wrong old one refused with
/// OpenSSH's message and exit code), and `-c` changes the comment in both files.
#[test]
fn changes_passphrase_and_comment_like_ssh_keygen() {
    let dir = TempDir::new("ckeygen-change");
    let path = dir.p("k");
    ok(ckeygen(), &["-q", "-t", "ecdsa", "-N", "old", "-C", "first", "-f", &path]);
    let out = ok(ckeygen(), &["-p", "-P", "old", "-N", "new", "-f", &path]);
    assert_eq!(
        out,
        "Key has comment 'first'\nYour identification has been saved with the new passphrase.\n"
    );
    ok("ssh-keygen", &["-y", "-P", "new", "-f", &path]);
    let wrong = run(ckeygen(), &["-p", "-P", "old", "-N", "x", "-f", &path], "");
    let real = run("ssh-keygen", &["-p", "-P", "old", "-N", "x", "-f", &path], "");
    assert_eq!(wrong.status.code(), real.status.code());
    assert_eq!(wrong.status.code(), Some(255));
    assert_eq!(
        stderr_of(&wrong),
        format!(
            "Failed to load key {path}: incorrect passphrase supplied to decrypt private key\n"
        )
    );
    assert_eq!(stderr_of(&wrong), stderr_of(&real));

    let out = ok(ckeygen(), &["-c", "-P", "new", "-C", "second one", "-f", &path]);
    assert_eq!(out, "Old comment: first\nComment 'second one' applied\n");
    assert!(std::fs::read_to_string(format!("{path}.pub")).unwrap().ends_with(" second one\n"));
    assert!(ok("ssh-keygen", &["-l", "-f", &path]).contains(" second one "));
    let y = ok("ssh-keygen", &["-y", "-P", "new", "-f", &path]);
    assert!(y.ends_with(" second one\n"), "{y}");
}

/// An existing key is overwritten only after a `y` on standard input; `n` leaves it and exits
/// 1, as `ssh-keygen` does.
#[test]
fn asks_before_overwriting_and_obeys_the_answer() {
    let dir = TempDir::new("ckeygen-overwrite");
    let path = dir.p("k");
    ok(ckeygen(), &["-q", "-t", "ed25519", "-N", "", "-f", &path]);
    let before = std::fs::read(&path).unwrap();
    let no = run(ckeygen(), &["-q", "-t", "ed25519", "-N", "", "-f", &path], "n\n");
    assert_eq!(no.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&no.stdout),
        format!("{path} already exists.\nOverwrite (y/n)? ")
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let yes = run(ckeygen(), &["-q", "-t", "ed25519", "-N", "", "-f", &path], "y\n");
    assert_eq!(yes.status.code(), Some(0));
    assert_ne!(std::fs::read(&path).unwrap(), before);
}

/// A passphrase asked for without `-N` is read from standard input when it is not a
/// terminal, twice, and the key is encrypted with it.
#[test]
fn reads_passphrases_from_standard_input_without_a_terminal() {
    let dir = TempDir::new("ckeygen-stdin");
    let path = dir.p("k");
    let out = run(ckeygen(), &["-q", "-t", "ed25519", "-f", &path], "typed\ntyped\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    ok("ssh-keygen", &["-y", "-P", "typed", "-f", &path]);
    let askpass = dir.p("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho typed\n").unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new(ckeygen())
        .args(["-y", "-f", &path])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(format!("{path}.pub")).unwrap()
    );
}

/// Errors a user would meet carry `ssh-keygen`'s text and exit code.
#[test]
fn errors_match_ssh_keygen_text_and_exit_codes() {
    let dir = TempDir::new("ckeygen-errors");
    let key = dir.p("k");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-t", "foo", "-N", "", "-f", &key], "unknown key type foo\n"),
        (
            vec!["-t", "ecdsa", "-b", "300", "-N", "", "-f", &key],
            "Invalid ECDSA key length: valid lengths are 256, 384 or 521 bits\n",
        ),
        (vec!["-l", "-E", "sha3", "-f", &key], "Invalid hash algorithm \"sha3\"\n"),
    ];
    for (args, message) in cases {
        let ours = run(ckeygen(), &args, "");
        let theirs = run("ssh-keygen", &args, "");
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(stderr_of(&ours), message, "{args:?}");
        assert_eq!(stderr_of(&ours), stderr_of(&theirs), "{args:?}");
    }
    let missing = dir.p("missing");
    let ours = run(ckeygen(), &["-y", "-f", &missing], "");
    assert_eq!(ours.status.code(), Some(255));
    assert_eq!(stderr_of(&ours), format!("{missing}: No such file or directory\n"));
    let usage = run(ckeygen(), &["-X"], "");
    assert_eq!(usage.status.code(), Some(1));
    assert!(stderr_of(&usage).starts_with("unknown option -- X\nusage: ckeygen "));
    let rsa = run(ckeygen(), &["-t", "rsa", "-b", "1024", "-N", "", "-f", &key], "");
    assert_eq!(rsa.status.code(), Some(255));
    assert_eq!(stderr_of(&rsa), "Invalid RSA key length: minimum is 2048 bits\n");
    std::fs::write(&key, "not a key\n").unwrap();
    let not_key = run(ckeygen(), &["-l", "-f", &key], "");
    assert_eq!(not_key.status.code(), Some(255));
    assert_eq!(stderr_of(&not_key), format!("{key} is not a public key file.\n"));
}

/// RFC 4716, PKCS#8 and PEM public keys round-trip between `ckeygen` and `ssh-keygen` in both
/// directions, and `openssl` reads what `ckeygen -e` writes.
#[test]
fn public_key_conversions_round_trip_with_ssh_keygen_and_openssl() {
    let dir = TempDir::new("ckeygen-convert");
    for (t, bits) in TYPES {
        let path = dir.p(&format!("{t}{bits}"));
        ok("ssh-keygen", &["-q", "-t", t, "-b", bits, "-N", "", "-f", &path]);
        let line = std::fs::read_to_string(format!("{path}.pub")).unwrap();
        let bare: String = line.split(' ').take(2).collect::<Vec<_>>().join(" ") + "\n";
        for format in ["RFC4716", "PKCS8", "PEM"] {
            if *t == "ed25519" && format != "RFC4716" {
                continue; // ssh-keygen cannot convert Ed25519 keys to PEM or PKCS#8
            }
            let ours = ok(ckeygen(), &["-e", "-m", format, "-f", &path]);
            let theirs = ok("ssh-keygen", &["-e", "-m", format, "-f", &path]);
            if format != "RFC4716" {
                assert_eq!(ours, theirs, "{t} {bits} {format}");
            }
            let exported = dir.p("exported");
            std::fs::write(&exported, &ours).unwrap();
            // ssh-keygen's `-i -m PEM` reads only PKCS#1 RSA public keys, not the
            // SubjectPublicKeyInfo it writes for ECDSA.
            if !(format == "PEM" && *t == "ecdsa") {
                let imported = ok("ssh-keygen", &["-i", "-m", format, "-f", &exported]);
                assert_eq!(imported, bare, "{format}");
            }
            std::fs::write(&exported, &theirs).unwrap();
            assert_eq!(ok(ckeygen(), &["-i", "-m", format, "-f", &exported]), bare, "{format}");
            if format == "PKCS8" {
                std::fs::write(&exported, &ours).unwrap();
                ok("openssl", &["pkey", "-pubin", "-in", &exported, "-noout"]);
            }
        }
    }
}

/// Private keys `ckeygen` re-encodes as PEM and PKCS#8 (`-p -m`), plain and encrypted, are read
/// by `openssl` and `ssh-keygen`; keys `openssl` makes are read by `ckeygen`.
#[test]
fn private_key_formats_round_trip_with_openssl() {
    let dir = TempDir::new("ckeygen-pem");
    for (t, bits) in TYPES.iter().filter(|(t, _)| *t != "ed25519") {
        for format in ["PEM", "PKCS8"] {
            for pass in ["", "pw"] {
                let path = dir.p(&format!("{t}{bits}{format}{pass}"));
                ok(ckeygen(), &["-q", "-t", t, "-b", bits, "-N", "", "-f", &path]);
                ok(ckeygen(), &["-q", "-p", "-P", "", "-N", pass, "-m", format, "-f", &path]);
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.starts_with("-----BEGIN "), "{text}");
                assert!(!text.contains("OPENSSH"), "{format}");
                ok(
                    "openssl",
                    &["pkey", "-in", &path, "-passin", &format!("pass:{pass}"), "-noout"],
                );
                let expected = std::fs::read_to_string(format!("{path}.pub")).unwrap();
                let bare: String = expected.split(' ').take(2).collect::<Vec<_>>().join(" ");
                let theirs = ok("ssh-keygen", &["-y", "-P", pass, "-f", &path]);
                assert_eq!(theirs.trim_end(), bare, "{t} {bits} {format} {pass:?}");
            }
        }
    }
    for (algorithm, option) in
        [("EC", "ec_paramgen_curve:P-384"), ("RSA", "rsa_keygen_bits:2048"), ("ED25519", "")]
    {
        let path = dir.p(&format!("openssl-{algorithm}"));
        let mut args = vec!["genpkey", "-algorithm", algorithm, "-out", &path];
        if !option.is_empty() {
            args.extend(["-pkeyopt", option]);
        }
        ok("openssl", &args);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ours = ok(ckeygen(), &["-y", "-f", &path]);
        if algorithm != "ED25519" {
            assert_eq!(ours, ok("ssh-keygen", &["-y", "-f", &path]), "{algorithm}");
        }
        let pem_pub = dir.p("openssl-pub");
        ok("openssl", &["pkey", "-in", &path, "-pubout", "-out", &pem_pub]);
        assert_eq!(ok(ckeygen(), &["-i", "-m", "PKCS8", "-f", &pem_pub]), ours, "{algorithm}");
    }
}

fn known_hosts_fixture(dir: &TempDir) -> String {
    let mut text = String::new();
    for (i, hosts) in [
        "host-a",
        "@cert-authority host-c",
        "@revoked host-d",
        "host-e*",
        "host-f,host-g,host-h",
        "host-a",
        "[host-p]:2222",
    ]
    .iter()
    .enumerate()
    {
        let key = dir.p(&format!("kh{i}"));
        ok("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", &format!("c{i}"), "-f", &key]);
        text.push_str(&format!(
            "# entry {i}\n{hosts} {}\n",
            std::fs::read_to_string(format!("{key}.pub")).unwrap().trim_end()
        ));
    }
    text
}

/// `-F`, `-F -l`, `-R` and `-H` give `ssh-keygen`'s output, files and exit codes; hashed files
/// still find every host with either tool.
#[test]
fn known_hosts_find_remove_and_hash_like_ssh_keygen() {
    let dir = TempDir::new("ckeygen-kh");
    let text = known_hosts_fixture(&dir);
    let ours = dir.p("ours");
    let theirs = dir.p("theirs");
    std::fs::write(&ours, &text).unwrap();
    for host in
        ["host-a", "host-c", "host-d", "host-e.example", "host-g", "[host-p]:2222", "nowhere"]
    {
        for extra in [&[][..], &["-l"][..], &["-q"][..]] {
            let mut args = vec!["-f", ours.as_str(), "-F", host];
            args.extend(extra);
            let a = run(ckeygen(), &args, "");
            let b = run("ssh-keygen", &args, "");
            assert_eq!(a.stdout, b.stdout, "{args:?}");
            assert_eq!(a.status.code(), b.status.code(), "{args:?}");
        }
    }
    for host in ["host-a", "host-c", "host-g", "host-e.x", "nowhere"] {
        std::fs::write(&ours, &text).unwrap();
        std::fs::write(&theirs, &text).unwrap();
        let a = run(ckeygen(), &["-q", "-f", &ours, "-R", host], "");
        let b = run("ssh-keygen", &["-q", "-f", &theirs, "-R", host], "");
        assert_eq!(a.status.code(), b.status.code(), "{host}");
        assert_eq!(
            std::fs::read_to_string(&ours).unwrap(),
            std::fs::read_to_string(&theirs).unwrap(),
            "{host}"
        );
        if host != "nowhere" && host != "host-c" {
            assert_eq!(std::fs::read_to_string(format!("{ours}.old")).unwrap(), text);
        }
    }
    std::fs::write(&ours, &text).unwrap();
    ok(ckeygen(), &["-q", "-H", "-f", &ours]);
    let hashed = std::fs::read_to_string(&ours).unwrap();
    assert!(!hashed.contains("\nhost-a ") && !hashed.contains("host-g"), "{hashed}");
    assert!(hashed.contains("\nhost-e* ") && hashed.contains("@revoked host-d "));
    for host in ["host-a", "host-f", "host-g", "host-h", "[host-p]:2222"] {
        let found = ok("ssh-keygen", &["-f", &ours, "-F", host]);
        assert!(found.contains("|1|"), "{host}: {found}");
    }
    std::fs::write(&ours, format!("{text}host-i \n")).unwrap();
    let invalid = run(ckeygen(), &["-q", "-H", "-f", &ours], "");
    assert_eq!(invalid.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), format!("{text}host-i \n"));
}

/// Picks a free loopback port by binding port 0.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// OpenSSH's `sshd` serves with host keys `ckeygen` made, and OpenSSH's `ssh` logs in to it
/// with user keys `ckeygen` made (every type, one encrypted, unlocked through `SSH_ASKPASS`),
/// checking the host key against a `known_hosts` line from our `keys` module.
#[test]
fn openssh_logs_in_with_keys_ckeygen_made() {
    let sshd_bin = "/usr/sbin/sshd";
    assert!(
        std::path::Path::new(sshd_bin).exists(),
        "{sshd_bin} missing: apt-get install openssh-server"
    );
    let _ = std::fs::create_dir_all("/run/sshd");
    let dir = TempDir::new("ckeygen-sshd");
    let mut config = String::new();
    let mut authorized = String::new();
    let mut known = String::new();
    let port = free_port();
    for (t, bits) in TYPES {
        let host_key = dir.p(&format!("host_{t}{bits}"));
        ok(ckeygen(), &["-q", "-t", t, "-b", bits, "-N", "", "-f", &host_key]);
        config.push_str(&format!("HostKey {host_key}\n"));
        let line = std::fs::read_to_string(format!("{host_key}.pub")).unwrap();
        let key = twine::conch::keys::PublicKey::from_openssh(&line).unwrap();
        let entry = twine::conch::keys::known_hosts::format_entry(
            "127.0.0.1",
            port,
            &key,
            *t == "ecdsa",
            &mut twine::conch::crypto::OsRandom::new(),
        )
        .unwrap();
        known.push_str(&format!("{entry}\n"));
        let user_key = dir.p(&format!("user_{t}{bits}"));
        let pass = if *t == "rsa" { "unlock" } else { "" };
        ok(ckeygen(), &["-q", "-t", t, "-b", bits, "-N", pass, "-f", &user_key]);
        authorized.push_str(&std::fs::read_to_string(format!("{user_key}.pub")).unwrap());
    }
    let authorized_path = dir.p("authorized_keys");
    std::fs::write(&authorized_path, authorized).unwrap();
    std::fs::write(dir.path("known_hosts"), known).unwrap();
    config.push_str(&format!(
        "ListenAddress 127.0.0.1\nAuthorizedKeysFile {authorized_path}\nPidFile {}\n\
         StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\nUsePAM no\nPermitRootLogin prohibit-password\n\
         LogLevel DEBUG1\n",
        dir.p("sshd.pid")
    ));
    let config_path = dir.p("sshd_config");
    std::fs::write(&config_path, config).unwrap();
    ok(sshd_bin, &["-t", "-f", &config_path]);
    let sshd = Sshd(
        Command::new(sshd_bin)
            .args(["-D", "-e", "-f", &config_path, "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Bounded wait for the listener (at most 20 s).
    let ready = (0..200).any(|_| {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(ready, "sshd did not start listening");
    let askpass = dir.p("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho unlock\n").unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    for (t, bits) in TYPES {
        let host_alg = match (*t, *bits) {
            ("ed25519", _) => "ssh-ed25519".to_owned(),
            ("ecdsa", b) => format!("ecdsa-sha2-nistp{b}"),
            _ => "rsa-sha2-512".to_owned(),
        };
        let out = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                &format!("UserKnownHostsFile={}", dir.p("known_hosts")),
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                &format!("HostKeyAlgorithms={host_alg}"),
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-i",
                &dir.p(&format!("user_{t}{bits}")),
                "-p",
                &port.to_string(),
                "-l",
                user.trim(),
                "127.0.0.1",
                "echo logged-in",
            ])
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "logged-in\n",
            "{t} {bits}: {}",
            stderr_of(&out)
        );
    }
    drop(sshd);
}

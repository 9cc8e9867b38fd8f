//! `ckeygen -s` and `-L` beside `ssh-keygen`: certificates `ckeygen` signs (every key type as
//! CA and as subject, user and host) are listed by `ssh-keygen -L` exactly as `ckeygen -L`
//! lists them, verify with our library, and let OpenSSH's `ssh` into OpenSSH's `sshd`;
//! certificates `ssh-keygen -s` signs are listed by `ckeygen -L` as `ssh-keygen -L` lists
//! them; errors have `ssh-keygen`'s texts and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod ckeygen_support;

use ckeygen_support::{ckeygen, ok, run, TempDir};
use twine::conch::keys::cert::{CertType, Certificate};
use twine::conch::keys::{PublicKey, SignatureAlgorithm};

/// `-t`, `-b` for every key type and size.
const TYPES: &[(&str, &str)] =
    &[("ed25519", "256"), ("ecdsa", "256"), ("ecdsa", "384"), ("ecdsa", "521"), ("rsa", "2048")];

/// Every signature algorithm a CA may use.
const ALL_CA_ALGORITHMS: [SignatureAlgorithm; 6] = [
    SignatureAlgorithm::Ed25519,
    SignatureAlgorithm::EcdsaP256,
    SignatureAlgorithm::EcdsaP384,
    SignatureAlgorithm::EcdsaP521,
    SignatureAlgorithm::RsaSha512,
    SignatureAlgorithm::RsaSha256,
];

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).replace("\r\n", "\n")
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key made by `ssh-keygen` (fast, and independent of what is under test).
fn keygen(dir: &TempDir, name: &str, t: &str, bits: &str, pass: &str) -> String {
    let path = dir.p(name);
    ok(
        "ssh-keygen",
        &["-q", "-t", t, "-b", bits, "-N", pass, "-C", &format!("{name} key"), "-f", &path],
    );
    path
}

fn read_cert(path: &str) -> Certificate {
    Certificate::from_openssh(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

fn public(path: &str) -> PublicKey {
    PublicKey::from_openssh(std::fs::read_to_string(format!("{path}.pub")).unwrap().trim()).unwrap()
}

/// `-L` from both tools, which must agree; returns the text.
fn listed_alike(cert_path: &str) -> String {
    let theirs = ok("ssh-keygen", &["-L", "-f", cert_path]);
    let ours = ok(ckeygen(), &["-L", "-f", cert_path]);
    assert_eq!(ours, theirs, "-L of {cert_path}");
    ours
}

/// Every key type as CA and as subject: `ckeygen -s` writes `<key>-cert.pub` with the key's
/// comment, `ssh-keygen -L` prints it exactly as `ckeygen -L` does, the CA signed with its own
/// algorithm (`rsa-sha2-512` for RSA), and the signature verifies with our library.
#[test]
fn every_key_type_signs_and_is_certified_as_ssh_keygen_lists_it() {
    let dir = TempDir::new("certs-types");
    let subjects: Vec<(String, &str)> = TYPES
        .iter()
        .map(|(t, bits)| (keygen(&dir, &format!("user_{t}{bits}"), t, bits, ""), *t))
        .collect();
    for (t, bits) in TYPES {
        let ca = keygen(&dir, &format!("ca_{t}{bits}"), t, bits, "");
        let expected_alg = match (*t, *bits) {
            ("ed25519", _) => "ssh-ed25519".to_owned(),
            ("ecdsa", b) => format!("ecdsa-sha2-nistp{b}"),
            _ => "rsa-sha2-512".to_owned(),
        };
        for (subject, _) in &subjects {
            let pub_file = format!("{subject}.pub");
            ok(ckeygen(), &["-q", "-s", &ca, "-I", "typed", "-n", "alice", &pub_file]);
            let cert_path = format!("{subject}-cert.pub");
            let text = listed_alike(&cert_path);
            assert!(text.contains(&format!("(using {expected_alg})")), "{text}");
            let cert = read_cert(&cert_path);
            assert_eq!(cert.key, public(subject));
            assert_eq!(cert.signature_key, public(&ca));
            assert_eq!(cert.cert_type, CertType::User);
            cert.verify_signature(&ALL_CA_ALGORITHMS).unwrap();
            let line = std::fs::read_to_string(&cert_path).unwrap();
            assert!(
                line.trim_end().ends_with(&format!(" {} key", subject.rsplit('/').next().unwrap())),
                "{line}"
            );
        }
    }
}

/// The `Signed ... key` line and the certificate's fields are `ssh-keygen`'s for the same
/// flags: principals, serial, absolute validity, `-O` options (also custom `extension:` and
/// `critical:` ones), `-h`.
#[test]
fn signing_reports_and_encodes_what_ssh_keygen_does_for_the_same_flags() {
    let dir = TempDir::new("certs-flags");
    let ca = keygen(&dir, "ca", "ed25519", "256", "");
    let key = keygen(&dir, "key", "ecdsa", "256", "");
    let pub_file = format!("{key}.pub");
    let cert_path = format!("{key}-cert.pub");
    let cases: &[&[&str]] = &[
        &[],
        &["-n", "alice,bob", "-z", "42"],
        &["-V", "20200101:20400101123456"],
        &["-V", "always:20400101Z"],
        &["-V", "20200101123000UTC:forever"],
        &["-O", "clear"],
        &["-O", "clear", "-O", "permit-pty", "-O", "permit-user-rc"],
        &["-O", "no-pty", "-O", "no-x11-forwarding", "-O", "no-agent-forwarding"],
        &["-O", "no-port-forwarding", "-O", "no-user-rc", "-O", "verify-required"],
        &["-O", "force-command=/bin/echo forced", "-O", "source-address=127.0.0.1/32,::1"],
        &["-O", "no-touch-required"],
        &["-O", "extension:zz@example.com=value", "-O", "extension:aa@example.com"],
        &["-O", "critical:policy@example.com=strict", "-O", "Critical:flag@example.com"],
        &["-h", "-n", "host.example,127.0.0.1"],
        &["-h", "-O", "permit-pty"],
    ];
    for extra in cases {
        let mut args = vec!["-s", ca.as_str(), "-I", "flags test"];
        args.extend_from_slice(extra);
        args.push(&pub_file);
        let theirs = run("ssh-keygen", &args, "");
        assert!(theirs.status.success(), "ssh-keygen {extra:?}: {}", stderr_of(&theirs));
        let their_listing = ok("ssh-keygen", &["-L", "-f", &cert_path]);
        let ours = run(ckeygen(), &args, "");
        assert!(ours.status.success(), "ckeygen {extra:?}: {}", stderr_of(&ours));
        assert_eq!(stderr_of(&ours), stderr_of(&theirs), "{extra:?}");
        assert_eq!(stdout_of(&ours), stdout_of(&theirs), "{extra:?}");
        assert_eq!(listed_alike(&cert_path), their_listing, "{extra:?}");
    }
}

/// Relative validity (`+52w`, `-1d:+1w`) gives the same window as `ssh-keygen`'s, give or take
/// the seconds between the two runs.
#[test]
fn relative_validity_gives_ssh_keygens_window() {
    let dir = TempDir::new("certs-relative");
    let ca = keygen(&dir, "ca", "ed25519", "256", "");
    let key = keygen(&dir, "key", "ed25519", "256", "");
    let cert_path = format!("{key}-cert.pub");
    for spec in ["+52w", "-1d:+1w", "-5m:forever", "always:+1h30m"] {
        let args = ["-q", "-s", ca.as_str(), "-I", "rel", "-V", spec, key.as_str()];
        ok("ssh-keygen", &args);
        let theirs = read_cert(&cert_path);
        ok(ckeygen(), &args);
        let ours = read_cert(&cert_path);
        for (a, b) in
            [(ours.valid_after, theirs.valid_after), (ours.valid_before, theirs.valid_before)]
        {
            assert!(a >= b && a - b <= 120 || a == b, "{spec}: {a} vs {b}");
        }
    }
}

/// `-z +n` counts up for each key certified in one run, as `ssh-keygen` does.
#[test]
fn a_plus_serial_counts_up_across_keys() {
    let dir = TempDir::new("certs-serial");
    let ca = keygen(&dir, "ca", "ecdsa", "384", "");
    let keys: Vec<String> =
        (0..3).map(|i| keygen(&dir, &format!("k{i}"), "ed25519", "256", "")).collect();
    let mut args = vec!["-q", "-s", ca.as_str(), "-I", "many", "-z", "+10"];
    args.extend(keys.iter().map(String::as_str));
    ok(ckeygen(), &args);
    let serials: Vec<u64> =
        keys.iter().map(|k| read_cert(&format!("{k}-cert.pub")).serial).collect();
    assert_eq!(serials, [10, 11, 12]);
}

/// Certificates `ssh-keygen -s` signs (user and host, every option, every CA type) are listed
/// by `ckeygen -L` exactly as by `ssh-keygen -L`, also a file of several lines with a plain key
/// among them (same output, same complaint, same exit code).
#[test]
fn ckeygen_lists_ssh_keygen_certificates_as_ssh_keygen_does() {
    let dir = TempDir::new("certs-list");
    let key = keygen(&dir, "key", "rsa", "2048", "");
    let cert_path = format!("{key}-cert.pub");
    let mut lines = String::new();
    for (t, bits) in TYPES {
        let ca = keygen(&dir, &format!("ca_{t}{bits}"), t, bits, "");
        for extra in [
            &["-n", "root,alice", "-V", "20200101:20400101", "-z", "9"][..],
            &["-h", "-n", "server.example"],
            &["-O", "clear", "-O", "force-command=true", "-O", "verify-required"],
        ] {
            let mut args = vec!["-q", "-s", ca.as_str(), "-I", "theirs"];
            args.extend_from_slice(extra);
            args.push(&key);
            ok("ssh-keygen", &args);
            listed_alike(&cert_path);
            lines.push_str(&std::fs::read_to_string(&cert_path).unwrap());
        }
    }
    let mixed = dir.p("mixed");
    let plain = std::fs::read_to_string(format!("{key}.pub")).unwrap();
    std::fs::write(&mixed, format!("# certificates\n{plain}{lines}not a key\n")).unwrap();
    let theirs = run("ssh-keygen", &["-L", "-f", &mixed], "");
    let ours = run(ckeygen(), &["-L", "-f", &mixed], "");
    assert_eq!(stdout_of(&ours), stdout_of(&theirs));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert!(stderr_of(&ours).contains(&format!("{mixed}:2 is not a certificate")));
    let only_plain = run(ckeygen(), &["-L", "-f", &format!("{key}.pub")], "");
    let their_plain = run("ssh-keygen", &["-L", "-f", &format!("{key}.pub")], "");
    assert_eq!(only_plain.status.code(), Some(1));
    assert_eq!(only_plain.status.code(), their_plain.status.code());
    assert_eq!(stderr_of(&only_plain), stderr_of(&their_plain));
}

/// Failures have `ssh-keygen`'s messages and exit codes: no `-I`, a missing CA key, a
/// missing key, a certificate to certify, bad `-V`, `-O`, `-z`, `-n`, a `-t` that does not
/// suit the CA, a wrong passphrase; `-t rsa-sha2-256` picks the RSA CA's algorithm.
#[test]
fn failures_have_ssh_keygens_messages_and_codes() {
    let dir = TempDir::new("certs-errors");
    let ca = keygen(&dir, "ca", "ed25519", "256", "");
    let locked = keygen(&dir, "locked", "ed25519", "256", "right");
    let key = keygen(&dir, "key", "ed25519", "256", "");
    ok("ssh-keygen", &["-q", "-s", &ca, "-I", "x", &key]);
    let cert = format!("{key}-cert.pub");
    let missing = dir.p("missing");
    let rsa_ca = keygen(&dir, "rsa_ca", "rsa", "2048", "");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-s", &ca, &key], ""),
        (vec!["-s", &missing, "-I", "x", &key], ""),
        (vec!["-s", &ca, "-I", "x", &missing], ""),
        (vec!["-s", &ca, "-I", "x", &cert], ""),
        (vec!["-s", &ca, "-I", "x", "-V", "bogus", &key], ""),
        (vec!["-s", &ca, "-I", "x", "-V", "20300101:20200101", &key], ""),
        (vec!["-s", &ca, "-I", "x", "-V", "+1y", &key], ""),
        (vec!["-s", &ca, "-I", "x", "-O", "bogus", &key], ""),
        (vec!["-s", &ca, "-I", "x", "-z", "abc", &key], ""),
        (vec!["-s", &ca, "-I", "x", "-n", "a,,b", &key], ""),
        (vec!["-L", "-f", &missing], ""),
        (vec!["-s", &rsa_ca, "-t", "rsa", "-I", "x", &key], ""),
        (vec!["-s", &rsa_ca, "-t", "ssh-ed25519", "-I", "x", &key], ""),
        (vec!["-s", &ca, "-t", "rsa-sha2-256", "-I", "x", &key], ""),
    ];
    for (args, stdin) in &cases {
        let theirs = run("ssh-keygen", args, stdin);
        let ours = run(ckeygen(), args, stdin);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}: {}", stderr_of(&ours));
        let (ours_err, theirs_err) = (stderr_of(&ours), stderr_of(&theirs));
        assert_eq!(ours_err.replace("ckeygen:", "ssh-keygen:"), theirs_err, "{args:?}");
    }
    ok(ckeygen(), &["-q", "-s", &rsa_ca, "-t", "rsa-sha2-256", "-I", "x", &key]);
    assert!(listed_alike(&cert).contains("(using rsa-sha2-256)"));
    let wrong = run(ckeygen(), &["-s", &locked, "-I", "x", &key], "wrong\n");
    assert_eq!(wrong.status.code(), Some(255));
    assert!(
        stderr_of(&wrong).contains(&format!(
            "Load key \"{locked}\": incorrect passphrase supplied to decrypt private key"
        )),
        "{}",
        stderr_of(&wrong)
    );
    let right = run(ckeygen(), &["-q", "-s", &locked, "-I", "x", &key], "right\n");
    assert!(right.status.success(), "{}", stderr_of(&right));
    assert!(stderr_of(&right).starts_with("Enter passphrase: "));
    assert_eq!(read_cert(&cert).signature_key, public(&locked));
    let with_p = run(ckeygen(), &["-q", "-s", &locked, "-P", "right", "-I", "y", &key], "");
    assert!(with_p.status.success(), "{}", stderr_of(&with_p));
    assert_eq!(read_cert(&cert).key_id, "y");
}

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

/// OpenSSH's `sshd` trusts a CA (`TrustedUserCAKeys`) and presents a host certificate
/// (`HostCertificate`), both signed by `ckeygen`; OpenSSH's `ssh` logs in with a user
/// certificate `ckeygen` signed (for every CA type), with no `authorized_keys`, checking the
/// host through `@cert-authority` in `known_hosts`. A certificate for another principal is
/// refused.
#[test]
fn openssh_logs_in_with_certificates_ckeygen_signed() {
    let sshd_bin = "/usr/sbin/sshd";
    assert!(
        std::path::Path::new(sshd_bin).exists(),
        "{sshd_bin} missing: apt-get install openssh-server"
    );
    let _ = std::fs::create_dir_all("/run/sshd");
    let dir = TempDir::new("certs-sshd");
    let port = free_port();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let user = user.trim();
    let mut cas = String::new();
    let mut ca_paths = Vec::new();
    for (t, bits) in [("ed25519", "256"), ("ecdsa", "384"), ("rsa", "2048")] {
        let ca = keygen(&dir, &format!("ca_{t}{bits}"), t, bits, "");
        cas.push_str(&std::fs::read_to_string(format!("{ca}.pub")).unwrap());
        ca_paths.push(ca);
    }
    let ca_file = dir.p("trusted_cas");
    std::fs::write(&ca_file, &cas).unwrap();
    let host_ca = keygen(&dir, "host_ca", "ecdsa", "256", "");
    let host_key = keygen(&dir, "host_key", "ed25519", "256", "");
    ok(ckeygen(), &["-q", "-s", &host_ca, "-h", "-I", "host", "-n", "127.0.0.1", &host_key]);
    std::fs::write(
        dir.path("known_hosts"),
        format!(
            "@cert-authority [127.0.0.1]:{port} {}",
            std::fs::read_to_string(format!("{host_ca}.pub")).unwrap()
        ),
    )
    .unwrap();
    let config_path = dir.p("sshd_config");
    std::fs::write(
        &config_path,
        format!(
            "ListenAddress 127.0.0.1\nHostKey {host_key}\nHostCertificate {host_key}-cert.pub\n\
             TrustedUserCAKeys {ca_file}\nAuthorizedKeysFile none\nPidFile {}\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nUsePAM no\nPermitRootLogin prohibit-password\n",
            dir.p("sshd.pid")
        ),
    )
    .unwrap();
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
    let login = |identity: &str| {
        Command::new("ssh")
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
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "BatchMode=yes",
                "-i",
                identity,
                "-p",
                &port.to_string(),
                "-l",
                user,
                "127.0.0.1",
                "echo logged-in",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for (i, ca) in ca_paths.iter().enumerate() {
        let (t, bits) = TYPES[i * 2 % TYPES.len()];
        let key = keygen(&dir, &format!("user{i}"), t, bits, "");
        ok(ckeygen(), &["-q", "-s", ca, "-I", "login", "-n", user, "-V", "-5m:+1h", &key]);
        let out = login(&key);
        assert_eq!(stdout_of(&out), "logged-in\n", "CA {ca}: {}", stderr_of(&out));
    }
    let other = keygen(&dir, "other", "ed25519", "256", "");
    ok(ckeygen(), &["-q", "-s", &ca_paths[0], "-I", "other", "-n", "nobody-else", &other]);
    let refused = login(&other);
    assert_ne!(stdout_of(&refused), "logged-in\n");
    assert_ne!(refused.status.code(), Some(0));
    drop(sshd);
}

/// Runs `program` with `TZ` set, returning standard output and error (carriage returns
/// dropped) after checking that it succeeded.
fn run_in_zone(program: &str, zone: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(program).args(args).env("TZ", zone).output().unwrap();
    assert!(out.status.success(), "{program} {args:?} in {zone}: {}", stderr_of(&out));
    (stdout_of(&out), stderr_of(&out))
}

/// Absolute `-V` times are local times (`$TZ`), read as `ssh-keygen`'s `mktime` reads them
/// (standard time also in summer), and `-L` prints times in the local zone: in several zones
/// both tools sign the same window and print the same text.
#[test]
fn local_times_follow_tz_as_ssh_keygen_does() {
    let dir = TempDir::new("certs-tz");
    let ca = keygen(&dir, "ca", "ed25519", "256", "");
    let key = keygen(&dir, "key", "ed25519", "256", "");
    let cert_path = format!("{key}-cert.pub");
    for zone in ["America/New_York", "Asia/Kolkata", "Australia/Sydney", "EST5EDT,M3.2.0,M11.1.0"] {
        for validity in
            ["20250301:20250701", "202501011200:20251101013000", "20250330013000:forever"]
        {
            let args = ["-s", ca.as_str(), "-I", "tz", "-V", validity, key.as_str()];
            let theirs = run_in_zone("ssh-keygen", zone, &args);
            let their_cert = read_cert(&cert_path);
            let their_listing = run_in_zone("ssh-keygen", zone, &["-L", "-f", &cert_path]);
            let ours = run_in_zone(ckeygen(), zone, &args);
            let our_cert = read_cert(&cert_path);
            let our_listing = run_in_zone(ckeygen(), zone, &["-L", "-f", &cert_path]);
            assert_eq!(ours, theirs, "{zone} {validity}");
            assert_eq!(
                (our_cert.valid_after, our_cert.valid_before),
                (their_cert.valid_after, their_cert.valid_before),
                "{zone} {validity}"
            );
            assert_eq!(our_listing, their_listing, "{zone} {validity}");
        }
    }
}

//! Certificates made by OpenSSH's `ssh-keygen -s`, parsed and checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::keys::PrivateKey;

/// A fresh directory for one test's keys.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "conch-cert-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keygen(dir: &Path, name: &str, kind: &str, bits: Option<&str>) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-N", "", "-t", kind, "-f"]).arg(&path);
    if let Some(bits) = bits {
        cmd.args(["-b", bits]);
    }
    assert!(cmd.status().unwrap().success(), "ssh-keygen -t {kind}");
    path
}

/// Signs `key` with `ca` (`ssh-keygen -s ca -I id extra... key`) and returns the certificate
/// line.
fn sign(ca: &Path, key: &Path, extra: &[&str]) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", "test certificate", "-z", "42"])
        .args(extra)
        .arg(key)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen -s {extra:?}");
    let cert = format!("{}-cert.pub", key.display());
    std::fs::read_to_string(cert).unwrap()
}

fn public(path: &Path) -> PublicKey {
    let text = std::fs::read_to_string(format!("{}.pub", path.display())).unwrap();
    PublicKey::from_openssh(&text).unwrap()
}

const NOW: u64 = 1_750_000_000;

/// Every key type we support, certified by an Ed25519 CA, parses to the right key, type name,
/// serial, id and principals, and its CA signature verifies.
#[test]
fn certificates_of_every_key_type_parse_and_verify() {
    let dir = scratch("types");
    let ca = keygen(&dir, "ca", "ed25519", None);
    for (name, kind, bits, type_name) in [
        ("ed", "ed25519", None, "ssh-ed25519-cert-v01@openssh.com"),
        ("p256", "ecdsa", Some("256"), "ecdsa-sha2-nistp256-cert-v01@openssh.com"),
        ("p384", "ecdsa", Some("384"), "ecdsa-sha2-nistp384-cert-v01@openssh.com"),
        ("p521", "ecdsa", Some("521"), "ecdsa-sha2-nistp521-cert-v01@openssh.com"),
        ("rsa", "rsa", Some("2048"), "ssh-rsa-cert-v01@openssh.com"),
    ] {
        let key = keygen(&dir, name, kind, bits);
        let line = sign(&ca, &key, &["-n", "alice,bob"]);
        let cert = Certificate::from_openssh(&line).unwrap();
        assert_eq!(cert.type_name(), type_name);
        assert!(line.starts_with(type_name));
        assert_eq!(cert.key, public(&key));
        assert_eq!(cert.signature_key, public(&ca));
        assert_eq!(cert.serial, 42);
        assert_eq!(cert.key_id, "test certificate");
        assert_eq!(cert.principals, ["alice", "bob"]);
        assert_eq!(cert.cert_type, CertType::User);
        assert!(cert.has_extension(EXT_PTY) && cert.has_extension(EXT_AGENT_FORWARDING));
        cert.verify_signature(&SignatureAlgorithm::ALL).unwrap();
        cert.validate(CertType::User, NOW, Some("bob")).unwrap();
        assert_eq!(
            cert.to_openssh(),
            line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// ECDSA and RSA CAs sign too; an RSA CA's SHA-1 signature (`-t ssh-rsa`) is refused when the
/// allowed list leaves `ssh-rsa` out, as OpenSSH's default `CASignatureAlgorithms` does.
#[test]
fn ecdsa_and_rsa_cas_sign_and_sha1_can_be_refused() {
    let dir = scratch("cas");
    let user = keygen(&dir, "user", "ed25519", None);
    for (name, kind, bits) in [("eca", "ecdsa", Some("384")), ("rca", "rsa", Some("2048"))] {
        let ca = keygen(&dir, name, kind, bits);
        let cert = Certificate::from_openssh(&sign(&ca, &user, &[])).unwrap();
        cert.verify_signature(&SignatureAlgorithm::ALL).unwrap();
    }
    let rca = dir.join("rca");
    let cert = Certificate::from_openssh(&sign(&rca, &user, &["-t", "ssh-rsa"])).unwrap();
    assert_eq!(cert.signature_algorithm(), Some(SignatureAlgorithm::RsaSha1));
    let no_sha1: Vec<_> =
        SignatureAlgorithm::ALL.into_iter().filter(|a| *a != SignatureAlgorithm::RsaSha1).collect();
    assert_eq!(
        cert.verify_signature(&no_sha1),
        Err(CertError::SignatureAlgorithmNotAllowed("ssh-rsa".into()))
    );
    cert.verify_signature(&SignatureAlgorithm::ALL).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// A certificate cut at every byte is an error, never a panic; with one byte changed
/// anywhere in the signed part its signature no longer verifies (or it no longer parses).
#[test]
fn truncated_or_altered_certificates_are_refused() {
    let dir = scratch("cut");
    let ca = keygen(&dir, "ca", "ed25519", None);
    let key = keygen(&dir, "key", "ecdsa", Some("256"));
    let cert = Certificate::from_openssh(&sign(&ca, &key, &["-n", "alice"])).unwrap();
    let blob = cert.to_blob().to_vec();
    for len in 0..blob.len() {
        assert!(Certificate::from_blob(&blob[..len]).is_err(), "cut at {len}");
    }
    let mut long = blob.clone();
    long.push(0);
    assert!(Certificate::from_blob(&long).is_err());
    for at in (0..cert.signed_len).step_by(7) {
        let mut bad = blob.clone();
        bad[at] ^= 0x01;
        if let Ok(parsed) = Certificate::from_blob(&bad) {
            assert!(parsed.verify_signature(&SignatureAlgorithm::ALL).is_err(), "byte {at}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The validity window is `valid after <= now < valid before`; outside it the certificate is
/// expired or not yet valid; an unlisted principal and a host certificate are refused.
#[test]
fn validity_window_principals_and_type_are_checked() {
    let dir = scratch("valid");
    let ca = keygen(&dir, "ca", "ed25519", None);
    let key = keygen(&dir, "key", "ed25519", None);
    // 2025-01-01 .. 2025-12-31 in UTC.
    let cert =
        Certificate::from_openssh(&sign(&ca, &key, &["-n", "alice", "-V", "20250101Z:20251231Z"]))
            .unwrap();
    assert_eq!(cert.valid_after, 1_735_689_600);
    cert.validate(CertType::User, 1_735_689_600, Some("alice")).unwrap();
    assert_eq!(cert.validate(CertType::User, 1_735_689_599, None), Err(CertError::NotYetValid));
    assert_eq!(cert.validate(CertType::User, cert.valid_before, None), Err(CertError::Expired));
    assert_eq!(
        cert.validate(CertType::User, NOW, Some("mallory")),
        Err(CertError::PrincipalNotListed)
    );
    assert_eq!(cert.validate(CertType::Host, NOW, Some("alice")), Err(CertError::WrongType));
    let host = Certificate::from_openssh(&sign(&ca, &key, &["-h", "-n", "example.org"])).unwrap();
    assert_eq!(host.cert_type, CertType::Host);
    host.validate(CertType::Host, NOW, Some("example.org")).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// `force-command`, `source-address` and the extensions come through; `-O clear` leaves no
/// extension; an unknown critical option refuses the certificate.
#[test]
fn critical_options_and_extensions_are_read() {
    let dir = scratch("opts");
    let ca = keygen(&dir, "ca", "ed25519", None);
    let key = keygen(&dir, "key", "ed25519", None);
    let line = sign(
        &ca,
        &key,
        &[
            "-O",
            "clear",
            "-O",
            "force-command=echo hi",
            "-O",
            "source-address=10.0.0.0/8,127.0.0.1",
            "-O",
            "permit-pty",
        ],
    );
    let cert = Certificate::from_openssh(&line).unwrap();
    assert_eq!(cert.force_command().as_deref(), Some("echo hi"));
    assert!(cert.source_allows("127.0.0.1") && cert.source_allows("10.1.2.3"));
    assert!(!cert.source_allows("192.168.1.1"));
    assert!(cert.has_extension(EXT_PTY));
    assert!(!cert.has_extension(EXT_PORT_FORWARDING) && !cert.has_extension(EXT_USER_RC));
    cert.validate(CertType::User, NOW, None).unwrap();

    let odd = sign(&ca, &key, &["-O", "critical:frobnicate@example.com=yes"]);
    let cert = Certificate::from_openssh(&odd).unwrap();
    assert_eq!(
        cert.validate(CertType::User, NOW, None),
        Err(CertError::UnknownCriticalOption("frobnicate@example.com".into()))
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A certificate built and signed here verifies, and one whose CA key is itself a
/// certificate does not parse.
#[test]
fn a_built_certificate_verifies_and_a_certificate_ca_is_refused() {
    let ca = PrivateKey::ed25519_from_seed(&[3; 32]).unwrap();
    let user = PrivateKey::ed25519_from_seed(&[4; 32]).unwrap();
    let mut builder = CertificateBuilder::user(user.public_key().clone());
    builder.principals = vec!["alice".into()];
    builder.critical_options = vec![("force-command".into(), Some("true".into()))];
    let cert =
        builder.sign(ca.public_key(), |body| ca.sign(SignatureAlgorithm::Ed25519, body)).unwrap();
    cert.verify_signature(&[SignatureAlgorithm::Ed25519]).unwrap();
    assert_eq!(cert.force_command().as_deref(), Some("true"));
    // Splice the certificate in as its own CA key: a chained certificate.
    let blob = cert.to_blob();
    let head = &blob[..cert.signed_len];
    let ca_field_len = 4 + ca.public_key().to_blob().len();
    let mut chained = head[..head.len() - ca_field_len].to_vec();
    Writer::new(&mut chained).write_string(blob);
    Writer::new(&mut chained).write_string(b"sig");
    assert_eq!(
        Certificate::from_blob(&chained),
        Err(KeyError::InvalidFormat("CA key is not a plain key"))
    );
}

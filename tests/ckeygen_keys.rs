//! The `keys` module against real OpenSSH: keys `ssh-keygen` writes at test time (every type,
//! plain and encrypted, OpenSSH and PEM/PKCS#8 formats) are read by ours with the fingerprints,
//! randomart and bubblebabble `ssh-keygen` prints; keys we write are read by `ssh-keygen`; the
//! OpenSSH unit-test corpus (Debian's `openssh-tests`) parses where it should.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};

mod ckeygen_support;

use twine::conch::crypto::OsRandom;
use twine::conch::keys::{
    self, openssh, FingerprintHash, KeyError, PrivateKey, PublicKey, PublicKeyLine,
    SignatureAlgorithm,
};
use zeroize::Zeroizing;

use ckeygen_support::{ok, pub_path, TempDir};

/// Every key type and size `ssh-keygen` can make that we support, as `-t`/`-b` arguments.
const TYPES: &[(&str, &str)] = &[
    ("ed25519", "256"),
    ("ecdsa", "256"),
    ("ecdsa", "384"),
    ("ecdsa", "521"),
    ("rsa", "2048"),
    ("rsa", "3072"),
];

fn ssh_keygen(args: &[&str]) -> String {
    ok("ssh-keygen", args)
}

fn generate(dir: &TempDir, t: &str, bits: &str, extra: &[&str]) -> PathBuf {
    let tag: String = extra.concat().chars().filter(char::is_ascii_alphanumeric).collect();
    let path = dir.path(&format!("{t}-{bits}-{tag}"));
    let p = path.to_str().unwrap();
    let mut args = vec!["-q", "-t", t, "-b", bits, "-C", "test comment", "-f", p];
    if !extra.contains(&"-N") {
        args.extend(["-N", ""]);
    }
    args.extend(extra);
    ssh_keygen(&args);
    path
}

fn passphrase(p: &'static str) -> impl FnMut() -> Option<Zeroizing<Vec<u8>>> {
    move || Some(Zeroizing::new(p.as_bytes().to_vec()))
}

fn load(path: &Path, pass: &'static str) -> Result<keys::LoadedKey, KeyError> {
    keys::load_private_key(&std::fs::read(path).unwrap(), &mut passphrase(pass))
}

fn our_fingerprint_line(key: &PublicKey, comment: &str, hash: FingerprintHash) -> String {
    format!("{} {} {} ({})", key.bits(), key.fingerprint(hash), comment, key.short_type_name())
}

/// Plain keys of every type `ssh-keygen` writes decode with the same public key as the `.pub`
/// file, the same comment, and the fingerprints and randomart `ssh-keygen -lv` prints.
#[test]
fn reads_plain_ssh_keygen_keys_with_identical_fingerprints_and_randomart() {
    let dir = TempDir::new("plain");
    for (t, bits) in TYPES {
        let path = generate(&dir, t, bits, &[]);
        let loaded = load(&path, "").unwrap();
        let pub_text = std::fs::read_to_string(pub_path(&path)).unwrap();
        let line = PublicKeyLine::parse(pub_text.trim_end()).unwrap();
        assert_eq!(loaded.key.public_key(), &line.key, "{t} {bits}");
        assert_eq!(loaded.comment, "test comment");
        for (hash, name) in [(FingerprintHash::Sha256, "sha256"), (FingerprintHash::Md5, "md5")] {
            let theirs = ssh_keygen(&["-lv", "-E", name, "-f", path.to_str().unwrap()]);
            let ours = format!(
                "{}\n{}\n",
                our_fingerprint_line(&line.key, &line.comment, hash),
                line.key.randomart(hash)
            );
            assert_eq!(ours, theirs, "{t} {bits} {name}");
        }
        let theirs = ssh_keygen(&["-B", "-f", path.to_str().unwrap()]);
        let ours = format!(
            "{} {} {} ({})\n",
            line.key.bits(),
            line.key.bubblebabble(),
            line.comment,
            line.key.short_type_name()
        );
        assert_eq!(ours, theirs, "{t} {bits} bubblebabble");
    }
}

/// Encrypted keys with the default cipher and with every cipher `ssh-keygen -Z` offers decode
/// with the right passphrase, and report a wrong one as such.
#[test]
fn reads_encrypted_ssh_keygen_keys_and_reports_wrong_passphrases() {
    let dir = TempDir::new("enc");
    let ciphers = [
        "aes256-ctr",
        "aes128-ctr",
        "aes192-ctr",
        "aes128-cbc",
        "aes256-cbc",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "3des-cbc",
    ];
    for (i, cipher) in ciphers.iter().enumerate() {
        let (t, bits) = TYPES[i % TYPES.len()];
        let path = generate(&dir, t, bits, &["-N", "sekrit", "-a", "2", "-Z", cipher]);
        let envelope = openssh::read_envelope(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(envelope.cipher, *cipher);
        let loaded = load(&path, "sekrit").unwrap();
        let pub_text = std::fs::read_to_string(pub_path(&path)).unwrap();
        assert_eq!(loaded.key.public_key(), &PublicKey::from_openssh(&pub_text).unwrap());
        assert_eq!(load(&path, "wrong").map(|_| ()), Err(KeyError::WrongPassphrase), "{cipher}");
    }
}

/// Keys `ssh-keygen` writes as PEM (PKCS#1, SEC1) and PKCS#8, plain and encrypted, decode to
/// the key in the `.pub` file.
#[test]
fn reads_pem_and_pkcs8_keys_from_ssh_keygen() {
    let dir = TempDir::new("pem");
    for format in ["PEM", "PKCS8"] {
        for (t, bits) in TYPES.iter().filter(|(t, _)| *t != "ed25519") {
            for pass in ["", "sekrit"] {
                let path = generate(&dir, t, bits, &["-m", format, "-N", pass]);
                let loaded = load(&path, "sekrit").unwrap();
                let pub_text = std::fs::read_to_string(pub_path(&path)).unwrap();
                let expected = PublicKey::from_openssh(&pub_text).unwrap();
                assert_eq!(loaded.key.public_key(), &expected, "{format} {t} {bits} {pass:?}");
                if !pass.is_empty() {
                    assert!(load(&path, "wrong").is_err());
                }
            }
        }
    }
}

/// Keys we write, plain and encrypted, are read by `ssh-keygen -y` to the same public line,
/// and signatures we make verify with the key `ssh-keygen` derived.
#[test]
fn ssh_keygen_reads_keys_we_write() {
    let dir = TempDir::new("ours");
    let mut rng = OsRandom::new();
    for (i, spec) in [
        keys::KeySpec::Ed25519,
        keys::KeySpec::Ecdsa(keys::EcdsaCurve::P256),
        keys::KeySpec::Ecdsa(keys::EcdsaCurve::P384),
        keys::KeySpec::Ecdsa(keys::EcdsaCurve::P521),
        keys::KeySpec::Rsa(2048),
    ]
    .into_iter()
    .enumerate()
    {
        let key = PrivateKey::generate(spec, &mut rng).unwrap();
        for pass in ["", "pw"] {
            let enc = openssh::Encryption {
                passphrase: pass.as_bytes(),
                cipher: "aes256-ctr",
                rounds: 2,
            };
            let text = openssh::encode(&key, "ours", Some(&enc), &mut rng).unwrap();
            let path = dir.path(&format!("k{i}{pass}"));
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let out = ssh_keygen(&["-y", "-P", pass, "-f", path.to_str().unwrap()]);
            let theirs = PublicKeyLine::parse(out.trim_end()).unwrap();
            assert_eq!(&theirs.key, key.public_key(), "{spec:?}");
            assert_eq!(theirs.comment, "ours");
        }
        let alg = key.default_algorithm();
        let sig = key.sign(alg, b"data").unwrap();
        key.public_key().verify(alg, b"data", &sig).unwrap();
        if alg == SignatureAlgorithm::RsaSha512 {
            let sig = key.sign(SignatureAlgorithm::RsaSha256, b"data").unwrap();
            key.public_key().verify(SignatureAlgorithm::RsaSha256, b"data", &sig).unwrap();
        }
    }
}

/// Where Debian's `openssh-tests` package puts OpenSSH's unit-test data.
const UNITTESTS: &str = "/usr/lib/openssh/regress/unittests";

fn corpus(rel: &str) -> PathBuf {
    let path = Path::new(UNITTESTS).join(rel);
    assert!(path.exists(), "{} missing: apt-get install openssh-tests", path.display());
    path
}

/// OpenSSH's own test keys (PEM, PKCS#8-less SEC1, openssh-key-v1; plain and encrypted with
/// its test passphrase) load, and their fingerprints and bubblebabble match OpenSSH's files.
#[test]
fn reads_openssh_unit_test_keys_with_their_recorded_fingerprints() {
    let dir = corpus("sshkey/testdata");
    let pw = std::fs::read_to_string(dir.join("pw")).unwrap();
    let pw: &'static str = Box::leak(pw.trim_end().to_owned().into_boxed_str());
    for (file, fp_base) in [
        ("rsa_1", "rsa_1"),
        ("rsa_2", "rsa_2"),
        ("rsa_n", "rsa_1"),
        ("rsa_1_pw", "rsa_1"),
        ("rsa_n_pw", "rsa_1"),
        ("ecdsa_1", "ecdsa_1"),
        ("ecdsa_2", "ecdsa_2"),
        ("ecdsa_n", "ecdsa_1"),
        ("ecdsa_1_pw", "ecdsa_1"),
        ("ecdsa_n_pw", "ecdsa_1"),
        ("ed25519_1", "ed25519_1"),
        ("ed25519_2", "ed25519_2"),
        ("ed25519_1_pw", "ed25519_1"),
    ] {
        let loaded = load(&dir.join(file), pw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let public = loaded.key.public_key();
        let fp = std::fs::read_to_string(dir.join(format!("{fp_base}.fp"))).unwrap();
        assert_eq!(public.fingerprint(FingerprintHash::Sha256).to_string(), fp.trim(), "{file}");
        let bb = std::fs::read_to_string(dir.join(format!("{fp_base}.fp.bb"))).unwrap();
        assert_eq!(public.bubblebabble(), bb.trim(), "{file}");
        let pub_line = std::fs::read_to_string(dir.join(format!("{fp_base}.pub"))).unwrap();
        assert_eq!(public, &PublicKey::from_openssh(&pub_line).unwrap(), "{file}");
        let sig = loaded.key.sign(loaded.key.default_algorithm(), b"corpus").unwrap();
        public.verify(loaded.key.default_algorithm(), b"corpus", &sig).unwrap();
        if file.ends_with("_pw") {
            assert_eq!(load(&dir.join(file), "not it").map(|_| ()), Err(KeyError::WrongPassphrase));
        }
    }
}

/// OpenSSH's known_hosts test file: plain, address, wildcard, hashed, revoked and CA entries
/// give the lookups OpenSSH's tests expect, and its invalid lines are invalid.
#[test]
fn looks_up_hosts_in_openssh_known_hosts_test_file() {
    use twine::conch::keys::known_hosts::Line;
    use twine::conch::keys::{HostKeyStatus, KnownHosts};
    let dir = corpus("hostkeys/testdata");
    let kh = KnownHosts::parse(&std::fs::read_to_string(dir.join("known_hosts")).unwrap());
    let key = |name: &str| {
        PublicKey::from_openssh(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let matched =
        |host: &str, k: &PublicKey| matches!(kh.check(host, 22, k), HostKeyStatus::Match { .. });
    for t in ["ecdsa", "ed25519", "rsa"] {
        assert!(matched("sisyphus.example.com", &key(&format!("{t}_1.pub"))), "{t}_1");
        for host in ["prometheus.example.com", "192.0.2.1", "2001:db8::1"] {
            assert!(matched(host, &key(&format!("{t}_2.pub"))), "{t}_2 {host}");
            assert!(matched(host, &key(&format!("{t}_6.pub"))), "{t}_6 {host} (hashed)");
        }
        assert!(matched("foo.example.com", &key(&format!("{t}_3.pub"))), "{t}_3");
        assert!(matched("sisyphus.example.com", &key(&format!("{t}_5.pub"))), "{t}_5 (hashed)");
        assert!(!matched("other.example.org", &key(&format!("{t}_1.pub"))));
    }
    assert!(matches!(
        kh.check("sisyphus.example.com", 22, &key("ed25519_4.pub")),
        HostKeyStatus::Revoked { .. }
    ));
    assert!(matches!(
        kh.check("prometheus.example.com", 22, &key("ecdsa_4.pub")),
        HostKeyStatus::Mismatch { .. }
    ));
    let invalid: Vec<&str> = kh
        .lines()
        .filter(|(_, _, l)| matches!(l, Line::Invalid(_)))
        .map(|(_, raw, _)| raw)
        .collect();
    assert!(invalid.iter().any(|l| l.starts_with("@what ")), "{invalid:?}");
    assert!(invalid.iter().any(|l| l.trim_end() == "sisyphus.example.com"), "{invalid:?}");
    assert!(invalid.iter().any(|l| l.trim_end() == "prometheus.example.com ssh-ed25519"));
    assert!(invalid.iter().any(|l| l.starts_with("prometheus.example.com ssh-rsa AAAATgAAAAdz")));
}

/// An SSHSIG signature (OpenSSH's PROTOCOL.sshsig) over `message` made with our key.
fn sshsig(key: &PrivateKey, namespace: &str, message: &[u8]) -> String {
    use base64::Engine as _;
    use twine::conch::wire::Writer;
    let algorithm = match key.default_algorithm() {
        SignatureAlgorithm::RsaSha256 => SignatureAlgorithm::RsaSha512,
        other => other,
    };
    let digest = ring::digest::digest(&ring::digest::SHA512, message);
    let mut signed = b"SSHSIG".to_vec();
    Writer::new(&mut signed)
        .write_string(namespace.as_bytes())
        .write_string(b"")
        .write_string(b"sha512")
        .write_string(digest.as_ref());
    let signature = key.sign(algorithm, &signed).unwrap();
    let mut blob = b"SSHSIG".to_vec();
    Writer::new(&mut blob)
        .write_u32(1)
        .write_string(&key.public_key().to_blob())
        .write_string(namespace.as_bytes())
        .write_string(b"")
        .write_string(b"sha512")
        .write_string(&signature);
    let encoded = base64::engine::general_purpose::STANDARD.encode(blob);
    let mut out = String::from("-----BEGIN SSH SIGNATURE-----\n");
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END SSH SIGNATURE-----\n");
    out
}

/// OpenSSH (`ssh-keygen -Y check-novalidate`) accepts signatures our keys make, for every key
/// type, and refuses one over another message.
#[test]
fn openssh_verifies_signatures_we_make() {
    let dir = TempDir::new("sshsig");
    let mut rng = OsRandom::new();
    for spec in [
        keys::KeySpec::Ed25519,
        keys::KeySpec::Ecdsa(keys::EcdsaCurve::P256),
        keys::KeySpec::Ecdsa(keys::EcdsaCurve::P384),
        keys::KeySpec::Ecdsa(keys::EcdsaCurve::P521),
        keys::KeySpec::Rsa(2048),
    ] {
        let key = PrivateKey::generate(spec, &mut rng).unwrap();
        let sig_path = dir.path("msg.sig");
        std::fs::write(&sig_path, sshsig(&key, "file", b"hello")).unwrap();
        let check = |message: &str| {
            ckeygen_support::run(
                "ssh-keygen",
                &["-Y", "check-novalidate", "-n", "file", "-s", sig_path.to_str().unwrap()],
                message,
            )
        };
        let good = check("hello");
        assert!(good.status.success(), "{spec:?}: {}", String::from_utf8_lossy(&good.stderr));
        assert!(!check("hellO").status.success(), "{spec:?}");
    }
}

//! The authorized_keys backend with OpenSSH certificates: `cert-authority` lines,
//! `TrustedUserCAKeys` with and without a principals file, restrictions, revocation.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Scratch;
use crate::keys::cert::{CertificateBuilder, EXT_PORT_FORWARDING, EXT_PTY};
use crate::keys::{Certificate, PrivateKey, SignatureAlgorithm};
use crate::server::auth::AuthorizedKeys;
use crate::server::{Account, Restrictions};
use crate::userauth::Decision;

/// 2025-06-15, inside the certificates' default validity below.
const NOW: u64 = 1_750_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn ca(seed: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[seed; 32]).unwrap()
}

fn user_key() -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[9; 32]).unwrap()
}

/// A certificate for `user_key()` signed by `ca`, after `edit` changes the builder.
fn certificate(ca: &PrivateKey, edit: impl FnOnce(&mut CertificateBuilder)) -> Certificate {
    let mut builder = CertificateBuilder::user(user_key().public_key().clone());
    builder.serial = 7;
    builder.key_id = "test".into();
    builder.principals = vec!["alice".into()];
    builder.valid_after = NOW - 3600;
    builder.valid_before = NOW + 3600;
    edit(&mut builder);
    builder.sign(ca.public_key(), |body| ca.sign(SignatureAlgorithm::Ed25519, body)).unwrap()
}

/// alice's home with `authorized_keys` holding `lines`, plus files beside it.
struct Setup {
    scratch: Scratch,
    account: Account,
}

impl Setup {
    fn new(lines: &[String]) -> Self {
        let scratch = Scratch::new("certs");
        let home = scratch.0.join("alice");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        for dir in [&home, &home.join(".ssh")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let me = Account::current().unwrap();
        let account = Account { name: "alice".into(), home, ..me };
        let setup = Self { scratch, account };
        setup.home_file(".ssh/authorized_keys", &(lines.join("\n") + "\n"));
        setup
    }

    /// Writes a private (0600) file under the home directory.
    fn home_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.account.home.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Writes a file outside the home directory.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.scratch.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn backend(&self) -> AuthorizedKeys {
        let account = self.account.clone();
        AuthorizedKeys::new()
            .with_accounts(move |name| Ok((name == "alice").then(|| account.clone())))
            .with_local_offset(0)
    }
}

fn check(backend: &AuthorizedKeys, cert: &Certificate) -> Decision<Restrictions> {
    backend.check_attempt("alice", &cert.key, Some(cert), "127.0.0.1", now())
}

fn accepted(decision: Decision<Restrictions>) -> Restrictions {
    match decision {
        Decision::Accept(r) => r,
        other => panic!("expected Accept, got {other:?}"),
    }
}

fn rejected(decision: &Decision<Restrictions>) -> bool {
    matches!(decision, Decision::Reject)
}

/// A `cert-authority` line admits its CA's certificate for the user name; the restrictions
/// are the certificate's (no `permit-pty`: no pty; `force-command`) combined with the line's.
#[test]
fn a_cert_authority_line_admits_its_cas_certificates_with_merged_restrictions() {
    let ca = ca(1);
    let line = format!("cert-authority,no-agent-forwarding {}", ca.public_key().to_openssh());
    let setup = Setup::new(&[line]);
    let cert = certificate(&ca, |b| {
        b.extensions = vec![(EXT_PORT_FORWARDING.into(), None)];
        b.critical_options = vec![("force-command".into(), Some("uptime".into()))];
    });
    let r = accepted(check(&setup.backend(), &cert));
    assert!(!r.pty && r.port_forwarding && !r.agent_forwarding && !r.user_rc);
    assert_eq!(r.forced_command.as_deref(), Some("uptime"));
}

/// Expired, not yet valid, for another user, from another CA, from an address
/// `source-address` does not allow, with an unknown critical option, or a host certificate:
/// each is refused.
#[test]
fn invalid_certificates_are_refused() {
    let ca = ca(1);
    let setup = Setup::new(&[format!("cert-authority {}", ca.public_key().to_openssh())]);
    let backend = setup.backend();
    let good = certificate(&ca, |_| {});
    accepted(check(&backend, &good));
    let refused = [
        certificate(&ca, |b| b.valid_before = NOW),
        certificate(&ca, |b| b.valid_after = NOW + 1),
        certificate(&ca, |b| b.principals = vec!["bob".into()]),
        certificate(&self::ca(2), |_| {}),
        certificate(&ca, |b| {
            b.critical_options = vec![("source-address".into(), Some("10.0.0.0/8".into()))];
        }),
        certificate(&ca, |b| b.critical_options = vec![("no-such-option".into(), None)]),
        certificate(&ca, |b| b.cert_type = crate::keys::CertType::Host),
    ];
    for cert in &refused {
        assert!(rejected(&check(&backend, cert)), "accepted: {cert:?}");
    }
}

/// `principals=` on the line names the principals accepted (instead of the user name), and a
/// plain line for the certified key does not admit the certificate.
#[test]
fn principals_option_and_plain_lines() {
    let ca = ca(1);
    let line = format!("cert-authority,principals=\"ops,db\" {}", ca.public_key().to_openssh());
    let setup = Setup::new(&[line, user_key().public_key().to_openssh()]);
    let backend = setup.backend();
    assert!(rejected(&check(&backend, &certificate(&ca, |_| {}))));
    accepted(check(&backend, &certificate(&ca, |b| b.principals = vec!["db".into()])));
    let stranger = certificate(&self::ca(3), |_| {});
    assert!(rejected(&check(&backend, &stranger)), "the plain key line admitted a certificate");
    // The same key, plain, is admitted by its line.
    accepted(backend.check("alice", user_key().public_key(), "127.0.0.1", now()));
}

/// `TrustedUserCAKeys` alone wants the user name among the principals (an empty list will
/// not do); with a principals file, a listed name and the line's options apply.
#[test]
fn trusted_user_ca_keys_with_and_without_a_principals_file() {
    let ca = ca(4);
    let setup = Setup::new(&[]);
    let cas = setup.file("cas", &format!("{}\n", ca.public_key().to_openssh()));
    let backend = setup.backend().with_trusted_user_ca_keys(Some(&cas));
    accepted(check(&backend, &certificate(&ca, |_| {})));
    assert!(rejected(&check(&backend, &certificate(&ca, |b| b.principals = Vec::new()))));
    assert!(rejected(&check(&backend, &certificate(&self::ca(5), |_| {}))));

    setup.home_file(".ssh/principals", "# team\ncommand=\"id\",no-pty ops\n");
    let backend = backend.with_authorized_principals_file(Some("%h/.ssh/principals"));
    assert!(rejected(&check(&backend, &certificate(&ca, |_| {}))), "alice is not listed");
    let ops = certificate(&ca, |b| b.principals = vec!["ops".into()]);
    assert!(ops.has_extension(EXT_PTY), "the line's no-pty is what takes the pty away");
    let r = accepted(check(&backend, &ops));
    assert_eq!(r.forced_command.as_deref(), Some("id"));
    assert!(!r.pty);
}

/// `RevokedKeys` as a list of public keys refuses the certified key and the CA's
/// certificates; a revocation file that cannot be read refuses everything; `ssh-rsa` CA
/// signatures are refused unless allowed.
#[test]
fn revoked_keys_and_ca_signature_algorithms() {
    let ca = ca(6);
    let setup = Setup::new(&[format!("cert-authority {}", ca.public_key().to_openssh())]);
    let cert = certificate(&ca, |_| {});
    let nothing = setup.file("none", "");
    accepted(check(&setup.backend().with_revoked_keys([&nothing]), &cert));
    let key_list = setup.file("keys", &format!("{}\n", user_key().public_key().to_openssh()));
    assert!(rejected(&check(&setup.backend().with_revoked_keys([&key_list]), &cert)));
    let ca_list = setup.file("ca", &format!("{}\n", ca.public_key().to_openssh()));
    assert!(rejected(&check(&setup.backend().with_revoked_keys([&ca_list]), &cert)));
    let missing = setup.scratch.0.join("missing");
    assert!(rejected(&check(&setup.backend().with_revoked_keys([&missing]), &cert)));

    let only_p256 =
        setup.backend().with_ca_signature_algorithms(vec![SignatureAlgorithm::EcdsaP256]);
    assert!(rejected(&check(&only_p256, &cert)), "CA signature algorithm not allowed");
}

//! The `known_hosts` policy in every `StrictHostKeyChecking` mode, and key files with
//! passphrases, against files in a private temporary directory.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use twine_core::testing::Clock;
use twine_core::time::Scheduler;
use twine_core::Deferred;
use zeroize::Zeroizing;

use crate::client::*;
use crate::crypto::OsRandom;
use crate::keys::openssh::{self, Encryption};
use crate::keys::{
    EcdsaCurve, FingerprintHash, KeySpec, PrivateKey, PublicKey, SignatureAlgorithm,
};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("twine-client-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(spec: KeySpec) -> PrivateKey {
    PrivateKey::generate(spec, &mut OsRandom::new()).unwrap()
}

/// Runs one check and returns the answer.
fn check(policy: &dyn HostKeyPolicy, host: &str, port: u16, key: &PublicKey) -> bool {
    let clock = Clock::new();
    let scheduler: Rc<dyn Scheduler> = clock.scheduler();
    let query = HostKeyQuery::new(host, port, key.clone(), SignatureAlgorithm::Ed25519);
    let answer = policy.check_host_key(&scheduler, &query);
    clock.advance(Duration::ZERO);
    answer.take_result().unwrap().unwrap()
}

fn policy(
    file: &Path,
    mode: StrictHostKeyChecking,
    prompter: &Rc<StaticPrompter>,
) -> KnownHostsPolicy {
    KnownHostsPolicy::new(file, mode).prompter(prompter.clone())
}

/// `yes` refuses an unknown host, says why in OpenSSH's words, and writes nothing.
#[test]
fn strict_yes_refuses_unknown_hosts() {
    let dir = TempDir::new();
    let file = dir.path("known_hosts");
    let prompter = Rc::new(StaticPrompter::new().accept_unknown_hosts(true));
    let host = key(KeySpec::Ed25519).public_key().clone();
    let policy = policy(&file, StrictHostKeyChecking::Yes, &prompter);
    assert!(!check(&policy, "example.org", 22, &host));
    assert!(!file.exists());
    let seen = prompter.seen();
    assert_eq!(
        seen,
        ["notice: No ED25519 host key is known for example.org and you have requested strict checking."]
    );
}

/// `accept-new` adds an unknown host's key (creating the directory), tells the user, and
/// accepts it on the next connection without a word.
#[test]
fn accept_new_adds_unknown_hosts() {
    let dir = TempDir::new();
    let file = dir.path("ssh/known_hosts");
    let prompter = Rc::new(StaticPrompter::new());
    let host = key(KeySpec::Ecdsa(EcdsaCurve::P256)).public_key().clone();
    let policy = policy(&file, StrictHostKeyChecking::AcceptNew, &prompter);
    assert!(check(&policy, "127.0.0.1", 2222, &host));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text, format!("[127.0.0.1]:2222 {}\n", host.to_openssh()));
    assert_eq!(
        prompter.seen(),
        ["notice: Warning: Permanently added '[127.0.0.1]:2222' (ECDSA) to the list of known hosts."]
    );
    assert!(check(&policy, "127.0.0.1", 2222, &host));
    assert_eq!(prompter.seen().len(), 1, "a known key passes silently");
    assert_eq!(policy.lookup("127.0.0.1", 2222, &host), Lookup::Known { path: file, line: 1 });
}

/// `ask` asks about an unknown host: yes adds it, no refuses and writes nothing.
#[test]
fn ask_follows_the_users_answer() {
    let host = key(KeySpec::Ed25519).public_key().clone();
    for accept in [true, false] {
        let dir = TempDir::new();
        let file = dir.path("known_hosts");
        let prompter = Rc::new(StaticPrompter::new().accept_unknown_hosts(accept));
        let policy = policy(&file, StrictHostKeyChecking::Ask, &prompter);
        assert_eq!(check(&policy, "example.org", 22, &host), accept);
        assert_eq!(file.exists(), accept);
        let fingerprint = host.fingerprint(FingerprintHash::Sha256);
        assert_eq!(prompter.seen()[0], format!("confirm: {fingerprint}"));
    }
}

/// A changed key is refused in every mode but `no`, with OpenSSH's warning naming the
/// offending line; `no` connects with the warning.
#[test]
fn a_changed_key_is_refused_unless_checking_is_off() {
    let dir = TempDir::new();
    let file = dir.path("known_hosts");
    let old = key(KeySpec::Ed25519).public_key().clone();
    let new = key(KeySpec::Ed25519).public_key().clone();
    std::fs::write(&file, format!("# comment\nexample.org {}\n", old.to_openssh())).unwrap();
    for (mode, accepted) in [
        (StrictHostKeyChecking::Yes, false),
        (StrictHostKeyChecking::Ask, false),
        (StrictHostKeyChecking::AcceptNew, false),
        (StrictHostKeyChecking::No, true),
    ] {
        let prompter = Rc::new(StaticPrompter::new().accept_unknown_hosts(true));
        let policy = policy(&file, mode, &prompter);
        assert_eq!(check(&policy, "example.org", 22, &new), accepted, "{mode:?}");
        let seen = prompter.seen().join("\n");
        assert!(seen.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{seen}");
        assert!(seen.contains(&format!("Offending ED25519 key in {}:2", file.display())), "{seen}");
        assert_eq!(seen.contains("you have requested strict checking"), !accepted, "{seen}");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&new.to_openssh()), "a changed key is never written");
}

/// A revoked key is refused even with checking off.
#[test]
fn a_revoked_key_is_always_refused() {
    let dir = TempDir::new();
    let file = dir.path("known_hosts");
    let host = key(KeySpec::Ed25519).public_key().clone();
    std::fs::write(
        &file,
        format!("@revoked * {}\nexample.org {}\n", host.to_openssh(), host.to_openssh()),
    )
    .unwrap();
    let prompter = Rc::new(StaticPrompter::new());
    let policy = policy(&file, StrictHostKeyChecking::No, &prompter);
    assert!(!check(&policy, "example.org", 22, &host));
    assert!(prompter.seen()[0].contains("REVOKED HOST KEY"));
}

/// Hashed entries match, and new entries are hashed when asked; a file without a final
/// newline is appended to on a new line.
#[test]
fn hashed_entries_match_and_are_written() {
    let dir = TempDir::new();
    let file = dir.path("known_hosts");
    let first = key(KeySpec::Ed25519).public_key().clone();
    let second = key(KeySpec::Ed25519).public_key().clone();
    let hashed =
        crate::keys::known_hosts::hash_host_name("one.example", &mut OsRandom::new()).unwrap();
    std::fs::write(&file, format!("{hashed} {}", first.to_openssh())).unwrap();
    let prompter = Rc::new(StaticPrompter::new());
    let policy = policy(&file, StrictHostKeyChecking::AcceptNew, &prompter).hash_new_entries(true);
    assert!(check(&policy, "one.example", 22, &first));
    assert!(check(&policy, "two.example", 22, &second));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with("|1|") && !text.contains("two.example"), "{text}");
    assert!(check(&policy, "two.example", 22, &second));
    assert_eq!(prompter.seen().len(), 1);
}

/// A key known in a global file is accepted; new keys still go to the user file.
#[test]
fn global_files_are_read_but_never_written() {
    let dir = TempDir::new();
    let user = dir.path("known_hosts");
    let global = dir.path("ssh_known_hosts");
    let known = key(KeySpec::Ed25519).public_key().clone();
    std::fs::write(&global, format!("*.example.org {}\n", known.to_openssh())).unwrap();
    let prompter = Rc::new(StaticPrompter::new());
    let policy = policy(&user, StrictHostKeyChecking::Yes, &prompter).global_file(&global);
    assert!(check(&policy, "db.example.org", 22, &known));
    assert!(!user.exists());
}

/// The prompt for an unknown key accepts `yes` or the fingerprint typed back, as OpenSSH does.
#[test]
fn unknown_key_question_accepts_yes_or_the_fingerprint() {
    let host = key(KeySpec::Ed25519).public_key().clone();
    let question =
        UnknownHostKey { host: "h".into(), port: 22, key: host.clone(), other_keys: Vec::new() };
    let fingerprint = host.fingerprint(FingerprintHash::Sha256).to_string();
    assert!(question.accepts("yes\n"));
    assert!(question.accepts(&fingerprint));
    assert!(!question.accepts("y"));
    assert!(!question.accepts("no"));
    assert!(question.text().contains(&fingerprint));
}

/// A prompter answering passphrases in order, counting the questions.
struct Passphrases {
    answers: std::cell::RefCell<Vec<&'static str>>,
    asked: std::cell::Cell<u32>,
}

impl Prompter for Passphrases {
    fn passphrase(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        _path: &Path,
        attempt: u32,
    ) -> Deferred<Option<Zeroizing<Vec<u8>>>> {
        self.asked.set(attempt);
        let next = self.answers.borrow_mut().pop();
        Deferred::succeed(Rc::clone(scheduler), next.map(|p| Zeroizing::new(p.as_bytes().to_vec())))
    }
}

fn write_encrypted(dir: &TempDir, key: &PrivateKey, passphrase: &str) -> PathBuf {
    let path = dir.path("id_encrypted");
    let encryption =
        Encryption { passphrase: passphrase.as_bytes(), cipher: "aes256-ctr", rounds: 2 };
    let text = openssh::encode(key, "test key", Some(&encryption), &mut OsRandom::new()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn sign(file: &KeyFile, key: &PublicKey) -> Option<Vec<u8>> {
    let clock = Clock::new();
    let scheduler = clock.scheduler();
    let signature = file.sign(&scheduler, key, SignatureAlgorithm::Ed25519, b"data");
    clock.advance(Duration::ZERO);
    clock.advance(Duration::ZERO);
    signature.take_result().unwrap().unwrap()
}

/// An encrypted key's public half is read without the passphrase; the passphrase is asked
/// when signing, wrong answers are asked again, and the decrypted key is kept.
#[test]
fn encrypted_key_files_ask_for_the_passphrase_only_to_sign() {
    let dir = TempDir::new();
    let private = key(KeySpec::Ed25519);
    let path = write_encrypted(&dir, &private, "correct horse");
    let prompter = Rc::new(Passphrases {
        answers: std::cell::RefCell::new(vec!["correct horse", "wrong"]),
        asked: std::cell::Cell::new(0),
    });
    let file = KeyFile::with_prompter(&path, prompter.clone());
    assert_eq!(file.public_key().unwrap(), *private.public_key());
    assert_eq!(prompter.asked.get(), 0, "listing the key asks nothing");
    let signature = sign(&file, private.public_key()).expect("signed after a retry");
    private.public_key().verify(SignatureAlgorithm::Ed25519, b"data", &signature).unwrap();
    assert_eq!(prompter.asked.get(), 2);
    assert!(sign(&file, private.public_key()).is_some());
    assert_eq!(prompter.asked.get(), 2, "the decrypted key is kept");
}

/// Without a passphrase the key is skipped (no signature), after the allowed attempts.
#[test]
fn encrypted_key_files_give_up_without_the_passphrase() {
    let dir = TempDir::new();
    let private = key(KeySpec::Ed25519);
    let path = write_encrypted(&dir, &private, "secret");
    let prompter = Rc::new(Passphrases {
        answers: std::cell::RefCell::new(vec!["no", "nope", "wrong"]),
        asked: std::cell::Cell::new(0),
    });
    let file = KeyFile::with_prompter(&path, prompter.clone());
    assert_eq!(sign(&file, private.public_key()), None);
    assert_eq!(prompter.asked.get(), PASSPHRASE_ATTEMPTS);
    assert_eq!(sign(&KeyFile::new(&path), private.public_key()), None, "no prompter, no key");
}

/// A plain key file signs at once; a missing file offers no key.
#[test]
fn plain_key_files_sign_and_missing_files_offer_nothing() {
    let dir = TempDir::new();
    let private = key(KeySpec::Ed25519);
    let path = dir.path("id_plain");
    std::fs::write(&path, openssh::encode(&private, "", None, &mut OsRandom::new()).unwrap())
        .unwrap();
    let file = KeyFile::new(&path);
    assert!(sign(&file, private.public_key()).is_some());
    let clock = Clock::new();
    let keys = KeyFile::new(dir.path("missing")).public_keys(&clock.scheduler());
    clock.advance(Duration::ZERO);
    assert_eq!(keys.take_result().unwrap().unwrap(), Vec::<PublicKey>::new());
}

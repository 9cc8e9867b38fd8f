//! Identities for public key authentication: [`IdentitySigner`], with key files
//! ([`KeyFile`]) and keys in memory ([`InMemoryKey`]); an ssh-agent client implements the same
//! trait.

use std::cell::RefCell;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use twine_core::time::Scheduler;
use twine_core::Deferred;
use zeroize::Zeroizing;

use super::prompt::{NoPrompts, Prompter};
use crate::keys::{self, Certificate, KeyError, PrivateKey, PublicKey, SignatureAlgorithm};

/// How many times a key file's passphrase is asked before the key is skipped (OpenSSH's
/// `NumberOfPasswordPrompts` default).
pub const PASSPHRASE_ATTEMPTS: u32 = 3;

/// Something holding private keys that can sign for public key authentication: a key file, a
/// key in memory, an ssh-agent. Both operations are asynchronous, as an agent answers over a
/// socket and a key file may need a passphrase typed.
pub trait IdentitySigner {
    /// The public keys to offer, in order. An empty list (an unreadable file, an agent that is
    /// gone) offers nothing.
    fn public_keys(&self, scheduler: &Rc<dyn Scheduler>) -> Deferred<Vec<PublicKey>>;

    /// Signs `data` with the private half of `key` as `algorithm`, returning the signature blob
    /// (`string algorithm || string signature`), or `None` when it cannot (the passphrase was
    /// not given, the agent refused): the client then goes on with the next key.
    fn sign(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Deferred<Option<Vec<u8>>>;

    /// OpenSSH certificates of this signer's keys, offered before the keys themselves (a
    /// certificate's signature is asked for with its certified key). The default has none.
    fn certificates(&self) -> Vec<Certificate> {
        Vec::new()
    }
}

/// A private key held in memory.
pub struct InMemoryKey {
    key: PrivateKey,
}

impl InMemoryKey {
    /// Signs with `key`.
    pub fn new(key: PrivateKey) -> Self {
        Self { key }
    }
}

impl IdentitySigner for InMemoryKey {
    fn public_keys(&self, scheduler: &Rc<dyn Scheduler>) -> Deferred<Vec<PublicKey>> {
        Deferred::succeed(Rc::clone(scheduler), vec![self.key.public_key().clone()])
    }

    fn sign(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Deferred<Option<Vec<u8>>> {
        let signature = sign_with(&self.key, key, algorithm, data);
        Deferred::succeed(Rc::clone(scheduler), signature)
    }
}

impl fmt::Debug for InMemoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InMemoryKey").field(self.key.public_key()).finish()
    }
}

/// A private key file (`IdentityFile`), in any format `keys::load_private_key` reads.
///
/// The public key is read without the passphrase (from the file itself for OpenSSH keys, or
/// from `<path>.pub`), so an encrypted key's passphrase is asked only once the server has said
/// it would accept the key, as OpenSSH does; it is asked up to [`PASSPHRASE_ATTEMPTS`] times
/// through the [`Prompter`], and the decrypted key is kept for later signatures. Files are read
/// synchronously: they are small and local.
#[derive(Clone)]
pub struct KeyFile {
    inner: Rc<KeyFileInner>,
}

struct KeyFileInner {
    path: PathBuf,
    prompter: Rc<dyn Prompter>,
    private: RefCell<Option<Rc<PrivateKey>>>,
    /// Certificates given with `CertificateFile` for this key.
    certificates: RefCell<Vec<Certificate>>,
}

impl KeyFile {
    /// The key in the file at `path`; an encrypted key cannot be used until a prompter is set.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_prompter(path, Rc::new(NoPrompts))
    }

    /// The key in the file at `path`, asking `prompter` for its passphrase when needed.
    pub fn with_prompter(path: impl Into<PathBuf>, prompter: Rc<dyn Prompter>) -> Self {
        Self {
            inner: Rc::new(KeyFileInner {
                path: path.into(),
                prompter,
                private: RefCell::new(None),
                certificates: RefCell::new(Vec::new()),
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Offers `cert` (a `CertificateFile`'s) with this key; it must certify this file's key
    /// to be used.
    pub fn add_certificate(&self, cert: Certificate) {
        self.inner.certificates.borrow_mut().push(cert);
    }

    /// The certificates for this key: those added, then `<path>-cert.pub`, then `<path>.pub`
    /// when it holds a certificate (as `ssh` finds them), keeping those that certify the key.
    fn own_certificates(&self) -> Vec<Certificate> {
        let Ok(key) = self.public_key() else { return Vec::new() };
        let mut out: Vec<Certificate> = self.inner.certificates.borrow().clone();
        for suffix in ["-cert.pub", ".pub"] {
            let mut path = self.inner.path.as_os_str().to_owned();
            path.push(suffix);
            let Ok(text) = fs::read_to_string(&path) else { continue };
            match Certificate::from_openssh(text.trim()) {
                Ok(cert) => out.push(cert),
                Err(err) if suffix == "-cert.pub" => {
                    log::debug!("certificate {}: {err}", Path::new(&path).display());
                }
                Err(_) => {}
            }
        }
        out.retain(|cert| cert.key == key);
        out.dedup_by(|a, b| a.to_blob() == b.to_blob());
        out
    }

    /// The public key, read without the passphrase.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or neither it nor `<path>.pub` yields a public key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        let path = &self.inner.path;
        let contents = fs::read(path).map_err(|_| KeyError::InvalidFormat("cannot read file"))?;
        match keys::load_private_key(&contents, &mut || None) {
            Ok(loaded) => {
                let public = loaded.key.public_key().clone();
                *self.inner.private.borrow_mut() = Some(Rc::new(loaded.key));
                return Ok(public);
            }
            Err(KeyError::PassphraseRequired) => {}
            Err(err) => return Err(err),
        }
        if let Ok(public) = keys::public_key_from_private(&contents) {
            return Ok(public);
        }
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        let text = fs::read(&pub_path).map_err(|_| KeyError::PassphraseRequired)?;
        Ok(keys::load_public_key(&text)?.key)
    }
}

impl IdentitySigner for KeyFile {
    fn certificates(&self) -> Vec<Certificate> {
        self.own_certificates()
    }

    fn public_keys(&self, scheduler: &Rc<dyn Scheduler>) -> Deferred<Vec<PublicKey>> {
        let keys = match self.public_key() {
            Ok(key) => vec![key],
            Err(err) => {
                log::debug!("identity file {} not usable: {err}", self.inner.path.display());
                Vec::new()
            }
        };
        Deferred::succeed(Rc::clone(scheduler), keys)
    }

    fn sign(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Deferred<Option<Vec<u8>>> {
        let result = Deferred::new(Rc::clone(scheduler));
        let cached = self.inner.private.borrow().clone();
        if let Some(private) = cached {
            result.callback(sign_with(&private, key, algorithm, data));
            return result;
        }
        let contents = match fs::read(&self.inner.path) {
            Ok(contents) => Zeroizing::new(contents),
            Err(err) => {
                log::debug!("cannot read {}: {err}", self.inner.path.display());
                result.callback(None);
                return result;
            }
        };
        match keys::load_private_key(&contents, &mut || None) {
            Ok(loaded) => {
                let private = Rc::new(loaded.key);
                *self.inner.private.borrow_mut() = Some(Rc::clone(&private));
                result.callback(sign_with(&private, key, algorithm, data));
                return result;
            }
            Err(KeyError::PassphraseRequired) => {}
            Err(err) => {
                log::debug!("cannot load {}: {err}", self.inner.path.display());
                result.callback(None);
                return result;
            }
        }
        let request = SignRequest {
            file: self.clone(),
            scheduler: Rc::clone(scheduler),
            contents,
            key: key.clone(),
            algorithm,
            data: data.to_vec(),
            result: result.clone(),
        };
        request.ask(1);
        result
    }
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.inner.path)
            .field("decrypted", &self.inner.private.borrow().is_some())
            .finish_non_exhaustive()
    }
}

/// A signature waiting for a key file's passphrase.
struct SignRequest {
    file: KeyFile,
    scheduler: Rc<dyn Scheduler>,
    contents: Zeroizing<Vec<u8>>,
    key: PublicKey,
    algorithm: SignatureAlgorithm,
    data: Vec<u8>,
    result: Deferred<Option<Vec<u8>>>,
}

impl SignRequest {
    /// Asks for the passphrase (attempt `attempt`), then decrypts and signs, or asks again.
    fn ask(self, attempt: u32) {
        let inner = Rc::clone(&self.file.inner);
        let answer = inner.prompter.passphrase(&self.scheduler, &inner.path, attempt);
        let _done: Deferred<()> = answer.then(move |passphrase| {
            let Ok(Some(passphrase)) = passphrase else {
                self.result.callback(None);
                return Ok(());
            };
            let mut given = Some(passphrase);
            match keys::load_private_key(&self.contents, &mut || given.take()) {
                Ok(loaded) => {
                    let private = Rc::new(loaded.key);
                    *self.file.inner.private.borrow_mut() = Some(Rc::clone(&private));
                    let signature = sign_with(&private, &self.key, self.algorithm, &self.data);
                    self.result.callback(signature);
                }
                Err(KeyError::WrongPassphrase) if attempt < PASSPHRASE_ATTEMPTS => {
                    self.file.inner.prompter.notice(&format!(
                        "Bad passphrase, try again for {}",
                        self.file.inner.path.display()
                    ));
                    self.ask(attempt + 1);
                }
                Err(err) => {
                    log::debug!("cannot load {}: {err}", self.file.inner.path.display());
                    self.result.callback(None);
                }
            }
            Ok(())
        });
    }
}

/// Signs with `private` if it is the private half of `key`.
fn sign_with(
    private: &PrivateKey,
    key: &PublicKey,
    algorithm: SignatureAlgorithm,
    data: &[u8],
) -> Option<Vec<u8>> {
    if private.public_key() != key {
        log::debug!("asked to sign with a key this identity does not hold");
        return None;
    }
    match private.sign(algorithm, data) {
        Ok(signature) => Some(signature),
        Err(err) => {
            log::debug!("signing with {algorithm} failed: {err}");
            None
        }
    }
}

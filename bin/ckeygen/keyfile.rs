//! Reading and writing key files the way `ssh-keygen` does: permissions checked on private
//! keys, 0600 for what we write, OpenSSH's error texts.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};

use twine::conch::crypto::OsRandom;
use twine::conch::keys::{self, openssh, pem, KeyError, LoadedKey, PrivateKey};
use zeroize::Zeroizing;

use crate::{prompt, ConvertFormat, Failure, Options};

/// The text OpenSSH's `ssh_err()` gives for a key error.
pub(crate) fn key_error_text(e: &KeyError) -> String {
    match e {
        KeyError::WrongPassphrase => "incorrect passphrase supplied to decrypt private key".into(),
        KeyError::InvalidFormat(_) | KeyError::Malformed(_) => "invalid format".into(),
        KeyError::UnsupportedType(_) => "unknown or unsupported key type".into(),
        KeyError::UnsupportedCipher(_) => "unknown cipher".into(),
        KeyError::InvalidSize => "Invalid key length".into(),
        other => other.to_string(),
    }
}

/// An I/O error as `strerror` words it (without Rust's "(os error N)").
pub(crate) fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The default key file for a type name (`~/.ssh/id_ed25519`).
pub(crate) fn default_key_path(key_type: Option<&str>) -> String {
    let base = match key_type.map(|t| t.to_ascii_lowercase()) {
        Some(t) if t.contains("rsa") => "id_rsa",
        Some(t) if t.contains("ecdsa") => "id_ecdsa",
        _ => "id_ed25519",
    };
    format!("{}/.ssh/{base}", prompt::home_dir())
}

/// `-f`, or the file named at a prompt (the default if the answer is empty).
pub(crate) fn identity_path(o: &Options, question: &str) -> Result<String, Failure> {
    if let Some(f) = &o.file {
        return Ok(f.clone());
    }
    let default = default_key_path(o.key_type.as_deref());
    let answer = prompt::ask(&format!("{question} ({default}): "))
        .ok_or_else(|| Failure::exit1(String::new()))?;
    Ok(if answer.is_empty() { default } else { answer })
}

/// Reads a file, failing as `ssh-keygen` does (`path: No such file or directory`).
pub(crate) fn read_file(path: &str) -> Result<Vec<u8>, Failure> {
    fs::read(path).map_err(|e| Failure::fatal(format!("{path}: {}", os_error_text(&e))))
}

/// Refuses a private key readable by others, as OpenSSH's `sshkey_perm_ok` does.
fn check_permissions(path: &str) -> Result<(), Failure> {
    let Ok(meta) = fs::metadata(path) else { return Ok(()) };
    if Some(meta.uid()) == prompt::current_uid() && meta.mode() & 0o077 != 0 {
        let bar = "@".repeat(59);
        return Err(Failure::fatal(format!(
            "{bar}\n@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @\n{bar}\n\
             Permissions 0{:o} for '{path}' are too open.\n\
             It is required that your private key files are NOT accessible by others.\n\
             This private key will be ignored.\n\
             Load key \"{path}\": bad permissions",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Loads a private key, with `passphrase` if given, else asking for one if the key needs it.
/// `what` starts the error message (`Load key "path"` or `Failed to load key path`).
pub(crate) fn load_identity(
    path: &str,
    passphrase: Option<&str>,
    what: &str,
) -> Result<LoadedKey, Failure> {
    let contents = read_file(path)?;
    check_permissions(path)?;
    let mut ask = || match passphrase {
        Some(p) => Some(Zeroizing::new(p.as_bytes().to_vec())),
        None => prompt::read_passphrase("Enter passphrase: ")
            .map(|p| Zeroizing::new(p.as_bytes().to_vec())),
    };
    keys::load_private_key(&contents, &mut ask).map_err(|e| {
        let e = if e == KeyError::PassphraseRequired { KeyError::WrongPassphrase } else { e };
        Failure::fatal(format!("{what}: {}", key_error_text(&e)))
    })
}

/// Asks twice for a new passphrase until both answers agree (`None` if input ended).
pub(crate) fn ask_new_passphrase(first: &str, retry: bool) -> Result<Zeroizing<String>, Failure> {
    loop {
        let one = prompt::read_passphrase(first).ok_or_else(|| Failure::exit1(String::new()))?;
        let two = prompt::read_passphrase("Enter same passphrase again: ")
            .ok_or_else(|| Failure::exit1(String::new()))?;
        if *one == *two {
            return Ok(one);
        }
        if !retry {
            return Err(Failure::exit1("Pass phrases do not match.  Try again."));
        }
        eprintln!("Passphrases do not match.  Try again.");
    }
}

/// Encodes a private key in the file format `-m` asks for (OpenSSH's own by default, and for
/// key types PEM cannot hold).
pub(crate) fn encode_private(
    key: &PrivateKey,
    comment: &str,
    passphrase: &str,
    o: &Options,
) -> Result<Zeroizing<String>, Failure> {
    let mut rng = OsRandom::new();
    let pem_format = match o.format {
        Some(ConvertFormat::Pem) => Some(pem::PemFormat::Traditional),
        Some(ConvertFormat::Pkcs8) => Some(pem::PemFormat::Pkcs8),
        _ => None,
    };
    let is_ed25519 = key.key_type() == keys::KeyType::Ed25519;
    let pass = Some(passphrase.as_bytes()).filter(|p| !p.is_empty());
    let text = match pem_format {
        Some(format) if !is_ed25519 => pem::encode_private(key, format, pass, &mut rng),
        _ => {
            let enc = pass.map(|p| openssh::Encryption {
                passphrase: p,
                cipher: o.cipher.as_deref().unwrap_or(openssh::DEFAULT_CIPHER),
                rounds: o.rounds.unwrap_or(openssh::DEFAULT_KDF_ROUNDS),
            });
            openssh::encode(key, comment, enc.as_ref(), &mut rng)
        }
    };
    text.map(Zeroizing::new)
        .map_err(|e| Failure::fatal(format!("Saving key failed: {}", key_error_text(&e))))
}

/// Writes a private key file with mode 0600 (also when it existed with another mode).
pub(crate) fn write_private(path: &str, text: &str) -> Result<(), Failure> {
    let failed = |e: std::io::Error| {
        Failure::fatal(format!("Saving key \"{path}\" failed: {}", os_error_text(&e)))
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)
}

/// Writes a public key file (mode 0644 when created).
pub(crate) fn write_public(path: &str, line: &str) -> Result<(), Failure> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| {
            Failure::fatal(format!("Unable to save public key to {path}: {}", os_error_text(&e)))
        })?;
    file.write_all(format!("{line}\n").as_bytes()).map_err(|e| {
        Failure::fatal(format!("Unable to save public key to {path}: {}", os_error_text(&e)))
    })
}

//! The key commands: generate, `-y`, `-l`/`-B`, `-p`, `-c`, `-e`, `-i`.

use std::path::Path;

use twine::conch::crypto::OsRandom;
use twine::conch::keys::{
    self, authorized_keys, openssh, pem, EcdsaCurve, KeySpec, PrivateKey, PublicKey, PublicKeyLine,
};

use crate::keyfile::{self, key_error_text};
use crate::{prompt, ConvertFormat, Failure, Options};

const WHICH_KEY: &str = "Enter file in which the key is";

/// The key to generate for `-t` and `-b`, with `ssh-keygen`'s messages for bad sizes.
fn key_spec(type_name: &str, bits: Option<usize>) -> Result<KeySpec, Failure> {
    let ecdsa = |default: EcdsaCurve| -> Result<KeySpec, Failure> {
        match bits {
            None => Ok(KeySpec::Ecdsa(default)),
            Some(b) => openssh::curve_for_bits(b).map(KeySpec::Ecdsa).ok_or_else(|| {
                Failure::fatal("Invalid ECDSA key length: valid lengths are 256, 384 or 521 bits")
            }),
        }
    };
    match type_name.to_ascii_lowercase().as_str() {
        "ed25519" | "ssh-ed25519" => Ok(KeySpec::Ed25519),
        "ecdsa" | "ecdsa-sha2-nistp256" => ecdsa(EcdsaCurve::P256),
        "ecdsa-sha2-nistp384" => ecdsa(EcdsaCurve::P384),
        "ecdsa-sha2-nistp521" => ecdsa(EcdsaCurve::P521),
        "rsa" | "ssh-rsa" => {
            let bits = bits.unwrap_or(keys::DEFAULT_RSA_BITS);
            if bits < keys::MIN_RSA_GENERATE_BITS {
                return Err(Failure::fatal(format!(
                    "Invalid RSA key length: minimum is {} bits",
                    keys::MIN_RSA_GENERATE_BITS
                )));
            }
            if bits > keys::MAX_RSA_GENERATE_BITS {
                return Err(Failure::fatal(format!(
                    "Invalid RSA key length: maximum is {} bits",
                    keys::MAX_RSA_GENERATE_BITS
                )));
            }
            Ok(KeySpec::Rsa(bits))
        }
        _ => Err(Failure::fatal(format!("unknown key type {type_name}"))),
    }
}

/// Key generation (no mode flag).
pub(crate) fn generate(o: &Options) -> Result<u8, Failure> {
    let type_name = o.key_type.as_deref().unwrap_or("ed25519");
    let spec = key_spec(type_name, o.bits)?;
    if !o.quiet {
        println!("Generating public/private {type_name} key pair.");
    }
    let key = PrivateKey::generate(spec, &mut OsRandom::new())
        .map_err(|e| Failure::fatal(format!("sshkey_generate failed: {}", key_error_text(&e))))?;
    let path = keyfile::identity_path(o, "Enter file in which to save the key")?;
    if o.file.is_none() {
        if let Some(dir) = Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir(dir).map_err(|e| {
                    Failure::fatal(format!(
                        "Could not create directory '{}': {}",
                        dir.display(),
                        keyfile::os_error_text(&e)
                    ))
                })?;
                println!("Created directory '{}'.", dir.display());
            }
        }
    }
    if Path::new(&path).exists() {
        println!("{path} already exists.");
        let answer = prompt::ask("Overwrite (y/n)? ").unwrap_or_default();
        if !answer.starts_with(['y', 'Y']) {
            return Ok(1);
        }
    }
    let passphrase = match &o.new_passphrase {
        Some(p) => zeroize::Zeroizing::new(p.clone()),
        None => keyfile::ask_new_passphrase("Enter passphrase (empty for no passphrase): ", true)?,
    };
    let comment = o.comment.clone().unwrap_or_else(prompt::default_comment);
    let text = keyfile::encode_private(&key, &comment, &passphrase, o)?;
    keyfile::write_private(&path, &text)?;
    if !o.quiet {
        println!("Your identification has been saved in {path}");
    }
    let public = PublicKeyLine { key: key.public_key().clone(), comment: comment.clone() };
    keyfile::write_public(&format!("{path}.pub"), &public.to_line())?;
    if !o.quiet {
        println!("Your public key has been saved in {path}.pub");
        println!("The key fingerprint is:");
        println!("{} {comment}", public.key.fingerprint(o.hash));
        println!("The key's randomart image is:");
        println!("{}", public.key.randomart(o.hash));
    }
    Ok(0)
}

/// `-y`: the public key of a private key file.
pub(crate) fn print_public(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, WHICH_KEY)?;
    let loaded = keyfile::load_identity(
        &path,
        o.old_passphrase.as_deref(),
        &format!("Load key \"{path}\""),
    )?;
    let line = PublicKeyLine { key: loaded.key.public_key().clone(), comment: loaded.comment };
    println!("{}", line.to_line());
    Ok(0)
}

/// Whether the file holds a private key (any format).
fn is_private(contents: &[u8]) -> bool {
    let text = String::from_utf8_lossy(contents);
    let first = text.trim_start().lines().next().unwrap_or_default().to_owned();
    openssh::is_openssh_private(contents)
        || (first.starts_with("-----BEGIN ") && first.contains("PRIVATE KEY"))
}

/// The public key and comment of a private key file, as `ssh-keygen -l` finds them: the
/// `.pub` beside it, else the file itself (the comment only if it is not encrypted).
fn public_of_private(path: &str, contents: &[u8]) -> Result<PublicKeyLine, Failure> {
    if let Ok(text) = std::fs::read(format!("{path}.pub")) {
        if let Ok(line) = keys::load_public_key(&text) {
            return Ok(line);
        }
    }
    if let Ok(loaded) = keys::load_private_key(contents, &mut || None) {
        return Ok(PublicKeyLine { key: loaded.key.public_key().clone(), comment: loaded.comment });
    }
    keys::public_key_from_private(contents)
        .map(|key| PublicKeyLine { key, comment: String::new() })
        .map_err(|e| Failure::fatal(format!("Load key \"{path}\": {}", key_error_text(&e))))
}

/// The public keys in a text file: OpenSSH lines, `authorized_keys` lines with options,
/// `known_hosts` lines (hosts skipped), or one RFC 4716 / PEM public key.
fn public_keys_in(contents: &[u8]) -> Vec<PublicKeyLine> {
    let text = String::from_utf8_lossy(contents);
    if keys::is_rfc4716(&text) || pem::is_pem(contents) {
        return keys::load_public_key(contents).into_iter().collect();
    }
    let mut found = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Ok(parsed) = PublicKeyLine::parse(line) {
            found.push(parsed);
        } else if let Ok(Some((_, key, comment))) = authorized_keys::parse_line(line) {
            found.push(PublicKeyLine { key, comment });
        } else if let Some((_, rest)) = line.split_once([' ', '\t']) {
            if let Ok(parsed) = PublicKeyLine::parse(rest) {
                found.push(parsed);
            }
        }
    }
    found
}

/// The fingerprint `-l` prints (or the bubblebabble `-B` prints).
pub(crate) fn digest_text(key: &PublicKey, o: &Options) -> String {
    if o.bubblebabble {
        key.bubblebabble()
    } else {
        key.fingerprint(o.hash).to_string()
    }
}

/// The `-l`/`-B` line for a key.
fn fingerprint_line(key: &PublicKey, comment: &str, o: &Options) -> String {
    let comment = if comment.is_empty() { "no comment" } else { comment };
    format!("{} {} {comment} ({})", key.bits(), digest_text(key, o), key.short_type_name())
}

/// `-l` and `-B`.
pub(crate) fn fingerprint(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, WHICH_KEY)?;
    let contents = keyfile::read_file(&path)?;
    let keys = if is_private(&contents) {
        vec![public_of_private(&path, &contents)?]
    } else {
        public_keys_in(&contents)
    };
    if keys.is_empty() {
        return Err(Failure::fatal(format!("{path} is not a public key file.")));
    }
    for line in keys {
        println!("{}", fingerprint_line(&line.key, &line.comment, o));
        if o.verbose > 0 && !o.bubblebabble {
            println!("{}", line.key.randomart(o.hash));
        }
    }
    Ok(0)
}

/// `-p`: change (or set, or remove) the passphrase.
pub(crate) fn change_passphrase(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, WHICH_KEY)?;
    let what = format!("Failed to load key {path}");
    let loaded = match &o.old_passphrase {
        Some(p) => keyfile::load_identity(&path, Some(p), &what)?,
        None => match keyfile::load_identity(&path, Some(""), &what) {
            Ok(loaded) => loaded,
            Err(_) => {
                let old = prompt::read_passphrase("Enter old passphrase: ").unwrap_or_default();
                keyfile::load_identity(&path, Some(&old), &what)?
            }
        },
    };
    if !o.quiet {
        println!("Key has comment '{}'", loaded.comment);
    }
    let passphrase = match &o.new_passphrase {
        Some(p) => zeroize::Zeroizing::new(p.clone()),
        None => {
            keyfile::ask_new_passphrase("Enter new passphrase (empty for no passphrase): ", false)?
        }
    };
    let text = keyfile::encode_private(&loaded.key, &loaded.comment, &passphrase, o)?;
    keyfile::write_private(&path, &text)?;
    if !o.quiet {
        println!("Your identification has been saved with the new passphrase.");
    }
    Ok(0)
}

/// `-c`: change the comment in the private key and its `.pub`.
pub(crate) fn change_comment(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, WHICH_KEY)?;
    let what = format!("Cannot load private key \"{path}\"");
    let (loaded, passphrase) = match keyfile::load_identity(&path, Some(""), &what) {
        Ok(loaded) => (loaded, String::new()),
        Err(first) => {
            let pass = match &o.old_passphrase {
                Some(p) => p.clone(),
                None => match prompt::read_passphrase("Enter passphrase: ") {
                    Some(p) => p.to_string(),
                    None => return Err(first),
                },
            };
            (keyfile::load_identity(&path, Some(&pass), &what)?, pass)
        }
    };
    if matches!(o.format, Some(ConvertFormat::Pem | ConvertFormat::Pkcs8))
        && loaded.key.key_type() != keys::KeyType::Ed25519
    {
        return Err(Failure::exit1(
            "Comments are only supported for keys stored in the new format (-o).",
        ));
    }
    println!("Old comment: {}", loaded.comment);
    let comment = match &o.comment {
        Some(c) => c.clone(),
        None => prompt::ask("New comment: ").ok_or_else(|| Failure::exit1(String::new()))?,
    };
    let plain = Options { format: None, ..Options::default() };
    let o_save = Options { cipher: o.cipher.clone(), rounds: o.rounds, ..plain };
    let text = keyfile::encode_private(&loaded.key, &comment, &passphrase, &o_save)?;
    keyfile::write_private(&path, &text)?;
    let public = PublicKeyLine { key: loaded.key.public_key().clone(), comment: comment.clone() };
    keyfile::write_public(&format!("{path}.pub"), &public.to_line())?;
    println!("Comment '{comment}' applied");
    Ok(0)
}

/// The public key in a file for `-e`: a public key file, or a private key's public half.
fn public_for_export(o: &Options, path: &str) -> Result<PublicKey, Failure> {
    let contents = keyfile::read_file(path)?;
    if !is_private(&contents) {
        return keys::load_public_key(&contents)
            .map(|l| l.key)
            .map_err(|e| Failure::fatal(format!("load key \"{path}\": {}", key_error_text(&e))));
    }
    if let Ok(key) = keys::public_key_from_private(&contents) {
        return Ok(key);
    }
    let loaded =
        keyfile::load_identity(path, o.old_passphrase.as_deref(), &format!("Load key \"{path}\""))?;
    Ok(loaded.key.public_key().clone())
}

/// `-e`: export a public key as RFC 4716, PKCS#8 or PEM.
pub(crate) fn export(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, WHICH_KEY)?;
    let key = public_for_export(o, &path)?;
    let text = match o.format.unwrap_or(ConvertFormat::Rfc4716) {
        ConvertFormat::Rfc4716 => {
            let comment = format!(
                "{}-bit {}, converted by {} from OpenSSH",
                key.bits(),
                key.short_type_name(),
                prompt::default_comment()
            );
            keys::encode_rfc4716(&key, &comment)
        }
        ConvertFormat::Pkcs8 => pem::encode_public(&key, false)
            .map_err(|e| Failure::fatal(format!("do_convert_to_pkcs8: {}", key_error_text(&e))))?,
        ConvertFormat::Pem => pem::encode_public(&key, key.key_type() == keys::KeyType::Rsa)
            .map_err(|e| Failure::fatal(format!("do_convert_to_pem: {}", key_error_text(&e))))?,
    };
    print!("{text}");
    Ok(0)
}

/// `-i`: import an RFC 4716, PKCS#8 or PEM public (or PEM private) key as an OpenSSH line.
pub(crate) fn import(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, WHICH_KEY)?;
    let contents = keyfile::read_file(&path)?;
    let text = String::from_utf8_lossy(&contents);
    let key = match o.format.unwrap_or(ConvertFormat::Rfc4716) {
        ConvertFormat::Rfc4716 => keys::decode_rfc4716(&text).map(|k| k.key),
        ConvertFormat::Pkcs8 | ConvertFormat::Pem if is_private(&contents) => {
            keys::load_private_key(&contents, &mut || None).map(|l| l.key.public_key().clone())
        }
        ConvertFormat::Pkcs8 | ConvertFormat::Pem => pem::decode_public(&contents),
    }
    .map_err(|e| Failure::fatal(format!("{path}: {}", key_error_text(&e))))?;
    println!("{}", key.to_openssh());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Type names and sizes map to keys as `ssh-keygen` maps them, and bad sizes fail with its
    /// messages.
    #[test]
    fn key_types_and_sizes_follow_ssh_keygen() {
        assert_eq!(
            key_spec("ecdsa-sha2-nistp384", None).unwrap(),
            KeySpec::Ecdsa(EcdsaCurve::P384)
        );
        assert_eq!(key_spec("ECDSA", Some(521)).unwrap(), KeySpec::Ecdsa(EcdsaCurve::P521));
        assert_eq!(key_spec("rsa", None).unwrap(), KeySpec::Rsa(3072));
        assert_eq!(key_spec("ssh-ed25519", Some(1)).unwrap(), KeySpec::Ed25519);
        let err = key_spec("ecdsa", Some(300)).unwrap_err();
        assert_eq!(err.message, "Invalid ECDSA key length: valid lengths are 256, 384 or 521 bits");
        let err = key_spec("rsa", Some(1024)).unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.code),
            ("Invalid RSA key length: minimum is 2048 bits", 255)
        );
        assert_eq!(key_spec("dsa", None).unwrap_err().message, "unknown key type dsa");
    }
}

//! Loading key files whatever their format: the one entry point for the server (host keys),
//! the client (identities) and `ckeygen`.

use zeroize::Zeroizing;

use super::pem::{self, PemFormat};
use super::{openssh, KeyError, PrivateKey, PublicKey, PublicKeyLine};

/// The format a private key file was in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrivateKeyFormat {
    /// OpenSSH's `openssh-key-v1`.
    OpenSsh,
    /// PEM: PKCS#1 (RSA) or SEC1 (ECDSA).
    Pem,
    /// PKCS#8.
    Pkcs8,
}

/// A private key read from a file, with what the file said about it.
#[derive(Debug)]
pub struct LoadedKey {
    /// The key.
    pub key: PrivateKey,
    /// The comment stored in the file (always empty for PEM and PKCS#8, which have none).
    pub comment: String,
    /// The file's format.
    pub format: PrivateKeyFormat,
    /// Whether the file was encrypted.
    pub encrypted: bool,
}

/// Reads a private key file in any supported format. `passphrase` is called (at most once) only
/// if the file is encrypted; returning `None` gives [`KeyError::PassphraseRequired`]. A caller
/// that wants to ask again after [`KeyError::WrongPassphrase`] calls this again.
///
/// # Errors
///
/// [`KeyError::WrongPassphrase`], [`KeyError::PassphraseRequired`],
/// [`KeyError::UnsupportedCipher`], [`KeyError::UnsupportedType`], and
/// [`KeyError::InvalidFormat`] for anything that is not a private key.
pub fn load_private_key(
    contents: &[u8],
    passphrase: &mut dyn FnMut() -> Option<Zeroizing<Vec<u8>>>,
) -> Result<LoadedKey, KeyError> {
    let mut asked = false;
    let mut ask = || {
        asked = true;
        passphrase()
    };
    if openssh::is_openssh_private(contents) {
        let (key, comment) = openssh::decode(contents, &mut ask)?;
        return Ok(LoadedKey { key, comment, format: PrivateKeyFormat::OpenSsh, encrypted: asked });
    }
    if pem::is_pem(contents) {
        let (key, format) = pem::decode_private(contents, &mut ask)?;
        let format = match format {
            PemFormat::Traditional => PrivateKeyFormat::Pem,
            PemFormat::Pkcs8 => PrivateKeyFormat::Pkcs8,
        };
        return Ok(LoadedKey { key, comment: String::new(), format, encrypted: asked });
    }
    Err(KeyError::InvalidFormat("not a private key"))
}

/// The public key of a private key file, read without the passphrase where the format allows
/// (OpenSSH keys store it in the clear; unencrypted PEM keys are decoded).
pub fn public_key_from_private(contents: &[u8]) -> Result<PublicKey, KeyError> {
    if openssh::is_openssh_private(contents) {
        return openssh::read_envelope(contents).map(|e| e.public);
    }
    load_private_key(contents, &mut || None).map(|k| k.key.public_key().clone())
}

/// Reads a public key file: an OpenSSH line (the first that parses, skipping blank and `#`
/// lines), an RFC 4716 file, or a PEM public key. Returns the key and its comment.
pub fn load_public_key(contents: &[u8]) -> Result<PublicKeyLine, KeyError> {
    let text = std::str::from_utf8(contents).map_err(|_| KeyError::InvalidFormat("not text"))?;
    if super::is_rfc4716(text) {
        let parsed = super::decode_rfc4716(text)?;
        let comment = parsed.comment().unwrap_or_default().to_owned();
        return Ok(PublicKeyLine { key: parsed.key, comment });
    }
    if pem::is_pem(contents) {
        return Ok(PublicKeyLine { key: pem::decode_public(contents)?, comment: String::new() });
    }
    let mut first_error = KeyError::InvalidFormat("no public key");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match PublicKeyLine::parse(line) {
            Ok(parsed) => return Ok(parsed),
            Err(e) => first_error = e,
        }
    }
    Err(first_error)
}

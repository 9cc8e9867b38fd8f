//! OpenSSH's private key format, `openssh-key-v1` (PROTOCOL.key in OpenSSH).
//!
//! ```text
//! "openssh-key-v1" 0x00
//! string  ciphername            "none", "aes256-ctr", ...
//! string  kdfname               "none" or "bcrypt"
//! string  kdfoptions            empty, or: string salt, uint32 rounds
//! uint32  number of keys        1
//! string  public key blob
//! string  private section       encrypted; an AEAD tag follows it, outside the string
//! ```
//!
//! The private section is `uint32 check || uint32 check || key fields || string comment ||
//! padding 1, 2, 3, ...` up to the cipher's block size. Matching check-ints tell a right
//! passphrase from a wrong one; the padding must be exactly that sequence.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{EcdsaCurve, KeyError, KeyType, PrivateKey, PublicKey, RsaComponents, SecretParts};
use crate::crypto::SecureRandom;
use crate::wire::{Reader, Writer};

/// The magic string at the start of the binary key.
const MAGIC: &[u8] = b"openssh-key-v1\0";

/// The armor lines around the base64 text.
pub(crate) const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
pub(crate) const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// The largest key file we read, in bytes (OpenSSH's `MAX_KEY_FILE_SIZE`).
pub const MAX_KEY_FILE_LEN: usize = 1024 * 1024;

/// The bcrypt-pbkdf rounds `ssh-keygen` uses by default (`-a`).
pub const DEFAULT_KDF_ROUNDS: u32 = 16;

/// The most bcrypt-pbkdf rounds a key file may ask for. Each round costs about a millisecond,
/// so this bounds the work one (possibly hostile) file can demand to minutes; OpenSSH sets no
/// limit, but no real key uses anything near it.
pub const MAX_KDF_ROUNDS: u32 = 100_000;

/// The cipher `ssh-keygen` encrypts new keys with by default (`-Z`).
pub const DEFAULT_CIPHER: &str = "aes256-ctr";

/// The salt length `ssh-keygen` uses.
const SALT_LEN: usize = 16;

/// The base64 line width of OpenSSH's armor.
const LINE_WIDTH: usize = 70;

/// How to protect a key written in OpenSSH's format.
#[derive(Clone, Debug)]
pub struct Encryption<'a> {
    /// The passphrase (not empty).
    pub passphrase: &'a [u8],
    /// The cipher, by its OpenSSH name.
    pub cipher: &'a str,
    /// bcrypt-pbkdf rounds.
    pub rounds: u32,
}

/// The parts of an `openssh-key-v1` file readable without the passphrase.
#[derive(Clone, Debug)]
pub struct OpenSshEnvelope {
    /// The cipher name (`none` for a plain key).
    pub cipher: String,
    /// The KDF name (`none` or `bcrypt`).
    pub kdf: String,
    /// The public key, stored in the clear.
    pub public: PublicKey,
    /// bcrypt-pbkdf rounds (0 for a plain key).
    pub rounds: u32,
}

impl OpenSshEnvelope {
    /// Whether the private part is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher != "none"
    }
}

/// Whether `text` is an armored `openssh-key-v1` key.
pub fn is_openssh_private(text: &[u8]) -> bool {
    text.trim_ascii_start().starts_with(BEGIN.as_bytes())
}

/// Reads the unencrypted header of an armored key: cipher, KDF and public key.
pub fn read_envelope(text: &[u8]) -> Result<OpenSshEnvelope, KeyError> {
    let binary = dearmor(text)?;
    let parsed = parse_outer(&binary)?;
    Ok(parsed.envelope)
}

/// Decodes an armored `openssh-key-v1` key, asking `passphrase` for the passphrase only if the
/// key is encrypted. Returns the key and its comment.
///
/// # Errors
///
/// [`KeyError::PassphraseRequired`] if the key is encrypted and `passphrase` returns `None`;
/// [`KeyError::WrongPassphrase`] if the check-ints or tag do not match;
/// [`KeyError::InvalidFormat`] for a broken structure or padding.
pub fn decode(
    text: &[u8],
    passphrase: &mut dyn FnMut() -> Option<Zeroizing<Vec<u8>>>,
) -> Result<(PrivateKey, String), KeyError> {
    let binary = dearmor(text)?;
    let outer = parse_outer(&binary)?;
    let envelope = &outer.envelope;
    let cipher = cipher_by_name(&envelope.cipher)?;
    let block = cipher.block_size();
    let mut private = Zeroizing::new(outer.private.to_vec());
    if private.len() % block != 0 {
        return Err(KeyError::InvalidFormat("private section not a multiple of the block size"));
    }
    if cipher.is_some() {
        let pass = passphrase().ok_or(KeyError::PassphraseRequired)?;
        let key_iv = derive_key_iv(cipher, &pass, outer.salt, envelope.rounds)?;
        let (key_len, _) = cipher.key_and_iv_size().ok_or(KeyError::Invalid)?;
        let (key, iv) = key_iv.split_at(key_len);
        let tag = match outer.tag {
            Some(tag) => Some(tag.try_into().map_err(|_| KeyError::InvalidFormat("bad tag"))?),
            None => None,
        };
        cipher.decrypt(key, iv, &mut private, tag).map_err(|_| KeyError::WrongPassphrase)?;
    }
    let mut r = Reader::new(&private);
    let check1 = r.read_u32()?;
    let check2 = r.read_u32()?;
    if check1 != check2 {
        return Err(if cipher.is_some() {
            KeyError::WrongPassphrase
        } else {
            KeyError::InvalidFormat("check-ints differ")
        });
    }
    let key = read_private_fields(&mut r)?;
    let comment = String::from_utf8_lossy(r.read_string()?).into_owned();
    for (i, &b) in r.read_rest().iter().enumerate() {
        if usize::from(b) != (i + 1) & 0xff {
            return Err(KeyError::InvalidFormat("bad padding"));
        }
    }
    if key.public_key() != &envelope.public {
        return Err(KeyError::Mismatch);
    }
    Ok((key, comment))
}

/// Encodes `key` in OpenSSH's armored format, encrypted if `encryption` is given. Check-ints
/// and the salt come from `rng`.
pub fn encode(
    key: &PrivateKey,
    comment: &str,
    encryption: Option<&Encryption<'_>>,
    rng: &mut dyn SecureRandom,
) -> Result<String, KeyError> {
    let (cipher, kdf, salt, rounds) = match encryption {
        Some(enc) if !enc.passphrase.is_empty() => {
            if !(1..=MAX_KDF_ROUNDS).contains(&enc.rounds) {
                return Err(KeyError::InvalidFormat("KDF rounds over limit"));
            }
            let cipher = cipher_by_name(enc.cipher)?;
            let mut salt = [0; SALT_LEN];
            rng.fill(&mut salt).map_err(|_| KeyError::Random)?;
            (cipher, "bcrypt", salt.to_vec(), enc.rounds)
        }
        _ => (ssh_cipher::Cipher::None, "none", Vec::new(), 0),
    };
    let mut check = [0; 4];
    rng.fill(&mut check).map_err(|_| KeyError::Random)?;
    let check = u32::from_be_bytes(check);

    let mut private = Zeroizing::new(Vec::new());
    {
        let mut w = Writer::new(&mut private);
        w.write_u32(check).write_u32(check);
        write_private_fields(key, &mut w);
        w.write_string(comment.as_bytes());
    }
    let block = cipher.block_size();
    let mut pad = 1_u8;
    while private.len() % block != 0 {
        private.push(pad);
        pad = pad.wrapping_add(1);
    }
    let mut tag = None;
    if let Some(enc) = encryption.filter(|_| cipher.is_some()) {
        let key_iv = derive_key_iv(cipher, enc.passphrase, &salt, rounds)?;
        let (key_len, _) = cipher.key_and_iv_size().ok_or(KeyError::Invalid)?;
        let (k, iv) = key_iv.split_at(key_len);
        tag = cipher.encrypt(k, iv, &mut private).map_err(|_| KeyError::Invalid)?;
    }

    let mut binary = Vec::new();
    {
        let mut w = Writer::new(&mut binary);
        w.write_raw(MAGIC);
        w.write_string(cipher.as_str().as_bytes()).write_string(kdf.as_bytes());
        w.write_prefixed(|w| {
            if !salt.is_empty() {
                w.write_string(&salt).write_u32(rounds);
            }
        });
        w.write_u32(1);
        w.write_string(&key.public_key().to_blob());
        w.write_string(&private);
        if let Some(tag) = tag {
            w.write_raw(&tag);
        }
    }
    Ok(armor(BEGIN, END, &binary))
}

/// Base64 text wrapped at OpenSSH's width between armor lines.
pub(crate) fn armor(begin: &str, end: &str, binary: &[u8]) -> String {
    super::armor::wrap(begin, &[], binary, LINE_WIDTH, end)
}

/// The binary key between the armor lines.
fn dearmor(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if text.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::InvalidFormat("key file too large"));
    }
    let text = std::str::from_utf8(text).map_err(|_| KeyError::InvalidFormat("not text"))?;
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    if lines.next() != Some(BEGIN) {
        return Err(KeyError::InvalidFormat("not an OpenSSH private key"));
    }
    let mut body = Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines.by_ref() {
        if line == END {
            ended = true;
            break;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(KeyError::InvalidFormat("missing end marker"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| KeyError::InvalidFormat("bad base64"))?;
    Ok(Zeroizing::new(decoded))
}

struct Outer<'a> {
    envelope: OpenSshEnvelope,
    salt: &'a [u8],
    private: &'a [u8],
    tag: Option<&'a [u8]>,
}

fn parse_outer(binary: &[u8]) -> Result<Outer<'_>, KeyError> {
    let Some(rest) = binary.strip_prefix(MAGIC) else {
        return Err(KeyError::InvalidFormat("bad magic"));
    };
    let mut r = Reader::new(rest);
    let cipher_name = r.read_utf8()?.to_owned();
    let kdf = r.read_utf8()?.to_owned();
    let kdf_options = r.read_string()?;
    let cipher = cipher_by_name(&cipher_name)?;
    let (salt, rounds) = match (kdf.as_str(), cipher.is_some()) {
        ("none", false) if kdf_options.is_empty() => (&[][..], 0),
        ("bcrypt", true) => {
            let mut k = Reader::new(kdf_options);
            let salt = k.read_string()?;
            let rounds = k.read_u32()?;
            k.finish()?;
            if rounds == 0 || salt.is_empty() {
                return Err(KeyError::InvalidFormat("bad KDF options"));
            }
            if rounds > MAX_KDF_ROUNDS {
                return Err(KeyError::InvalidFormat("KDF rounds over limit"));
            }
            (salt, rounds)
        }
        ("none" | "bcrypt", _) => return Err(KeyError::InvalidFormat("KDF does not suit cipher")),
        (other, _) => return Err(KeyError::UnsupportedCipher(other.to_owned())),
    };
    if r.read_u32()? != 1 {
        return Err(KeyError::InvalidFormat("not exactly one key"));
    }
    let public = PublicKey::from_blob(r.read_string()?)?;
    let private = r.read_string()?;
    let tag_len = if cipher.has_tag() { 16 } else { 0 };
    let tag = if tag_len > 0 { Some(r.read_bytes(tag_len)?) } else { None };
    r.finish()?;
    Ok(Outer {
        envelope: OpenSshEnvelope { cipher: cipher_name, kdf, public, rounds },
        salt,
        private,
        tag,
    })
}

/// The cipher with this OpenSSH name (`none` included).
fn cipher_by_name(name: &str) -> Result<ssh_cipher::Cipher, KeyError> {
    ssh_cipher::Cipher::new(name).map_err(|_| KeyError::UnsupportedCipher(name.to_owned()))
}

/// Whether `name` is a cipher OpenSSH key files can be encrypted with here.
pub fn is_supported_cipher(name: &str) -> bool {
    name != "none" && cipher_by_name(name).is_ok()
}

fn derive_key_iv(
    cipher: ssh_cipher::Cipher,
    passphrase: &[u8],
    salt: &[u8],
    rounds: u32,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let (key_len, iv_len) = cipher.key_and_iv_size().ok_or(KeyError::Invalid)?;
    let mut out = Zeroizing::new(vec![0; key_len + iv_len]);
    if passphrase.is_empty() {
        // bcrypt-pbkdf refuses an empty passphrase; no key can be encrypted with one.
        return Err(KeyError::WrongPassphrase);
    }
    bcrypt_pbkdf::bcrypt_pbkdf(passphrase, salt, rounds, &mut out)
        .map_err(|_| KeyError::InvalidFormat("bad KDF options"))?;
    Ok(out)
}

/// Reads `string type || key fields` of the private section.
pub(crate) fn read_private_fields(r: &mut Reader<'_>) -> Result<PrivateKey, KeyError> {
    let name = r.read_utf8()?;
    let key_type =
        KeyType::from_name(name).ok_or_else(|| KeyError::UnsupportedType(name.to_owned()))?;
    match key_type {
        KeyType::Ed25519 => {
            let public = r.read_string()?;
            let secret = r.read_string()?;
            if secret.len() != 64 || public.len() != 32 {
                return Err(KeyError::Invalid);
            }
            let (seed, public_copy) = secret.split_at(32);
            if public_copy != public {
                return Err(KeyError::Mismatch);
            }
            let key = PrivateKey::ed25519_from_seed(seed)?;
            match key.public_key() {
                PublicKey::Ed25519(p) if p.as_slice() == public => Ok(key),
                _ => Err(KeyError::Mismatch),
            }
        }
        KeyType::Ecdsa(curve) => {
            let PublicKey::Ecdsa { point, .. } = PublicKey::read_body(key_type, r)? else {
                return Err(KeyError::Invalid);
            };
            let scalar = r.read_mpint_unsigned()?;
            PrivateKey::ecdsa_from_parts(curve, &point, scalar)
        }
        KeyType::Rsa => {
            let n = r.read_mpint_unsigned()?.to_vec();
            let e = r.read_mpint_unsigned()?.to_vec();
            let d = Zeroizing::new(r.read_mpint_unsigned()?.to_vec());
            let iqmp = Zeroizing::new(r.read_mpint_unsigned()?.to_vec());
            let p = Zeroizing::new(r.read_mpint_unsigned()?.to_vec());
            let q = Zeroizing::new(r.read_mpint_unsigned()?.to_vec());
            PrivateKey::rsa_from_components(RsaComponents { n, e, d, iqmp, p, q })
        }
    }
}

/// Writes `string type || key fields` of the private section.
pub(crate) fn write_private_fields(key: &PrivateKey, w: &mut Writer<'_>) {
    let public = key.public_key();
    w.write_string(public.key_type().name().as_bytes());
    match (key.secret(), public) {
        (SecretParts::Ed25519 { seed }, PublicKey::Ed25519(pk)) => {
            let mut both = Zeroizing::new(Vec::with_capacity(64));
            both.extend_from_slice(seed);
            both.extend_from_slice(pk);
            w.write_string(pk).write_string(&both);
        }
        (SecretParts::Ecdsa { scalar }, PublicKey::Ecdsa { curve, point }) => {
            w.write_string(curve.identifier().as_bytes()).write_string(point);
            w.write_mpint_unsigned(scalar);
        }
        (SecretParts::Rsa(c), _) => {
            w.write_mpint_unsigned(&c.n).write_mpint_unsigned(&c.e).write_mpint_unsigned(&c.d);
            w.write_mpint_unsigned(&c.iqmp).write_mpint_unsigned(&c.p).write_mpint_unsigned(&c.q);
        }
        // invariant: a PrivateKey's secret parts always match its public key's type.
        _ => {}
    }
}

/// The curve for a bit size as `ssh-keygen -b` names it.
pub fn curve_for_bits(bits: usize) -> Option<EcdsaCurve> {
    match bits {
        256 => Some(EcdsaCurve::P256),
        384 => Some(EcdsaCurve::P384),
        521 => Some(EcdsaCurve::P521),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::OsRandom;
    use crate::keys::KeySpec;

    fn no_passphrase() -> impl FnMut() -> Option<Zeroizing<Vec<u8>>> {
        || None
    }

    fn passphrase(p: &'static [u8]) -> impl FnMut() -> Option<Zeroizing<Vec<u8>>> {
        move || Some(Zeroizing::new(p.to_vec()))
    }

    /// Plain and encrypted keys of every type, with every cipher, decode to the same key and
    /// comment they were encoded from.
    #[test]
    fn keys_round_trip_plain_and_with_every_cipher() {
        let mut rng = OsRandom::new();
        let key = PrivateKey::generate(KeySpec::Ecdsa(EcdsaCurve::P384), &mut rng).unwrap();
        let text = encode(&key, "me@host", None, &mut rng).unwrap();
        assert!(text.starts_with(BEGIN));
        let (back, comment) = decode(text.as_bytes(), &mut no_passphrase()).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(comment, "me@host");
        for cipher in [
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-cbc",
            "aes256-cbc",
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
            "chacha20-poly1305@openssh.com",
            "3des-cbc",
        ] {
            let enc = Encryption { passphrase: b"pw", cipher, rounds: 1 };
            let text = encode(&key, "c", Some(&enc), &mut rng).unwrap();
            let envelope = read_envelope(text.as_bytes()).unwrap();
            assert_eq!(envelope.cipher, cipher);
            assert_eq!(&envelope.public, key.public_key());
            let (back, _) = decode(text.as_bytes(), &mut passphrase(b"pw")).unwrap();
            assert_eq!(back.public_key(), key.public_key(), "{cipher}");
            assert_eq!(
                decode(text.as_bytes(), &mut passphrase(b"wrong")).map(|_| ()),
                Err(KeyError::WrongPassphrase),
                "{cipher}"
            );
            assert_eq!(
                decode(text.as_bytes(), &mut no_passphrase()).map(|_| ()),
                Err(KeyError::PassphraseRequired)
            );
        }
    }

    /// A plain key whose check-ints differ, or whose padding is not 1, 2, 3, ..., is refused
    /// with a format error rather than a passphrase error.
    #[test]
    fn rejects_bad_check_ints_and_bad_padding() {
        let mut rng = OsRandom::new();
        let key = PrivateKey::ed25519_from_seed(&[9; 32]).unwrap();
        let text = encode(&key, "x", None, &mut rng).unwrap();
        let binary = dearmor(text.as_bytes()).unwrap().to_vec();
        let outer = parse_outer(&binary).unwrap();
        let private_start = binary.len() - outer.private.len();
        let mut bad_check = binary.clone();
        bad_check[private_start] ^= 1;
        let text = armor(BEGIN, END, &bad_check);
        assert_eq!(
            decode(text.as_bytes(), &mut no_passphrase()).map(|_| ()),
            Err(KeyError::InvalidFormat("check-ints differ"))
        );
        let mut bad_pad = binary.clone();
        let last = bad_pad.len() - 1;
        bad_pad[last] ^= 0x40;
        let text = armor(BEGIN, END, &bad_pad);
        assert_eq!(
            decode(text.as_bytes(), &mut no_passphrase()).map(|_| ()),
            Err(KeyError::InvalidFormat("bad padding"))
        );
    }

    /// A file asking for more KDF rounds than the limit is refused before any work.
    #[test]
    fn refuses_kdf_rounds_over_the_limit() {
        let mut rng = OsRandom::new();
        let key = PrivateKey::ed25519_from_seed(&[6; 32]).unwrap();
        let over =
            Encryption { passphrase: b"pw", cipher: "aes256-ctr", rounds: MAX_KDF_ROUNDS + 1 };
        assert!(encode(&key, "c", Some(&over), &mut rng).is_err());
        let enc = Encryption { passphrase: b"pw", cipher: "aes256-ctr", rounds: 1 };
        let text = encode(&key, "c", Some(&enc), &mut rng).unwrap();
        let mut binary = dearmor(text.as_bytes()).unwrap().to_vec();
        let rounds_at = MAGIC.len() + 4 + enc.cipher.len() + 4 + 6 + 4 + 4 + SALT_LEN;
        binary[rounds_at..rounds_at + 4].copy_from_slice(&(MAX_KDF_ROUNDS + 1).to_be_bytes());
        let text = armor(BEGIN, END, &binary);
        assert_eq!(
            decode(text.as_bytes(), &mut passphrase(b"pw")).map(|_| ()),
            Err(KeyError::InvalidFormat("KDF rounds over limit"))
        );
    }

    /// Truncating the binary key at any byte gives an error, never a panic or a key.
    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let mut rng = OsRandom::new();
        let key = PrivateKey::generate(KeySpec::Ecdsa(EcdsaCurve::P256), &mut rng).unwrap();
        let text = encode(&key, "x", None, &mut rng).unwrap();
        let binary = dearmor(text.as_bytes()).unwrap().to_vec();
        for len in 0..binary.len() {
            let text = armor(BEGIN, END, &binary[..len]);
            assert!(decode(text.as_bytes(), &mut no_passphrase()).is_err(), "{len}");
        }
    }

    /// Flipping any bit of a plain or encrypted key gives an error or (for bits the format
    /// does not check) a key, never a panic; in the encrypted private part it never gives the
    /// key back silently changed.
    #[test]
    fn flipped_bits_never_panic() {
        let mut rng = OsRandom::new();
        let key = PrivateKey::ed25519_from_seed(&[6; 32]).unwrap();
        let enc = Encryption { passphrase: b"pw", cipher: "aes256-gcm@openssh.com", rounds: 1 };
        for encryption in [None, Some(&enc)] {
            let text = encode(&key, "c", encryption, &mut rng).unwrap();
            let binary = dearmor(text.as_bytes()).unwrap().to_vec();
            // The rounds field (after magic, cipher, KDF name, options length and salt): a flip
            // there only makes the KDF slow, up to MAX_KDF_ROUNDS.
            let rounds_at = MAGIC.len() + 4 + enc.cipher.len() + 4 + 6 + 4 + 4 + SALT_LEN;
            for i in 0..binary.len() {
                if encryption.is_some() && (rounds_at..rounds_at + 4).contains(&i) {
                    continue;
                }
                let mut broken = binary.clone();
                broken[i] ^= 0x10;
                let text = armor(BEGIN, END, &broken);
                if let Ok((back, _)) = decode(text.as_bytes(), &mut passphrase(b"pw")) {
                    assert_eq!(back.public_key(), key.public_key(), "byte {i}");
                }
            }
        }
    }
}

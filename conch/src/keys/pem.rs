//! PEM key files in OpenSSL's formats: PKCS#1 RSA and SEC1 EC private keys (plain, or with the
//! legacy `Proc-Type`/`DEK-Info` encryption OpenSSL and `ssh-keygen -m PEM` use), PKCS#8
//! private keys (plain and PBES2-encrypted), and public keys as SubjectPublicKeyInfo or
//! PKCS#1. The ASN.1 is done by RustCrypto's `pkcs1`, `pkcs8`, `sec1` and `rsa` crates.

use base64::Engine as _;
use pkcs8::der::asn1::{AnyRef, BitStringRef, OctetStringRef};
use pkcs8::der::{Decode as _, Encode as _};
use pkcs8::ObjectIdentifier;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs8::{DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rsa::BigUint;
use zeroize::Zeroizing;

use super::{EcdsaCurve, KeyError, PrivateKey, PublicKey, SecretParts};
use crate::crypto::SecureRandom;

const RSA_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// PBKDF2 iterations for PKCS#8 encryption (OpenSSL 3's default).
const PKCS8_PBKDF2_ITERATIONS: u32 = 2048;

/// OpenSSL's base64 line width in PEM.
const PEM_LINE_WIDTH: usize = 64;

/// The private key formats other than OpenSSH's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PemFormat {
    /// PKCS#1 for RSA (`RSA PRIVATE KEY`), SEC1 for ECDSA (`EC PRIVATE KEY`).
    Traditional,
    /// PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a passphrase).
    Pkcs8,
}

/// One PEM block: label, headers and decoded body.
struct Block {
    label: String,
    headers: Vec<(String, String)>,
    der: Zeroizing<Vec<u8>>,
}

/// Whether `text` holds a PEM block (`-----BEGIN ...-----`).
pub fn is_pem(text: &[u8]) -> bool {
    text.trim_ascii_start().starts_with(b"-----BEGIN ")
}

/// Decodes a PEM private key in any of the formats above, asking `passphrase` only if it is
/// encrypted.
pub fn decode_private(
    text: &[u8],
    passphrase: &mut dyn FnMut() -> Option<Zeroizing<Vec<u8>>>,
) -> Result<(PrivateKey, PemFormat), KeyError> {
    let block = parse_block(text)?;
    let encrypted = block
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Proc-Type") && v.contains("ENCRYPTED"));
    let der = if encrypted {
        let pass = passphrase().ok_or(KeyError::PassphraseRequired)?;
        decrypt_legacy(&block, &pass)?
    } else {
        block.der
    };
    match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            let key = rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| bad(encrypted))?;
            Ok((PrivateKey::from_rsa(key)?, PemFormat::Traditional))
        }
        "EC PRIVATE KEY" => Ok((
            decode_sec1(&der, None).map_err(|e| {
                if encrypted {
                    KeyError::WrongPassphrase
                } else {
                    e
                }
            })?,
            PemFormat::Traditional,
        )),
        "PRIVATE KEY" => Ok((decode_pkcs8(&der)?, PemFormat::Pkcs8)),
        "ENCRYPTED PRIVATE KEY" => {
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                .map_err(|_| KeyError::InvalidFormat("bad PKCS#8"))?;
            let pass = passphrase().ok_or(KeyError::PassphraseRequired)?;
            let plain = info.decrypt(pass.as_slice()).map_err(|_| KeyError::WrongPassphrase)?;
            Ok((
                decode_pkcs8(plain.as_bytes()).map_err(|_| KeyError::WrongPassphrase)?,
                PemFormat::Pkcs8,
            ))
        }
        _ => Err(KeyError::InvalidFormat("unknown PEM label")),
    }
}

/// Decodes a PEM public key: SubjectPublicKeyInfo (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`).
pub fn decode_public(text: &[u8]) -> Result<PublicKey, KeyError> {
    let block = parse_block(text)?;
    match block.label.as_str() {
        "RSA PUBLIC KEY" => {
            let key = rsa::RsaPublicKey::from_pkcs1_der(&block.der)
                .map_err(|_| KeyError::InvalidFormat("bad PKCS#1 public key"))?;
            rsa_public(&key)
        }
        "PUBLIC KEY" => {
            let spki = pkcs8::SubjectPublicKeyInfoRef::try_from(block.der.as_slice())
                .map_err(|_| KeyError::InvalidFormat("bad SubjectPublicKeyInfo"))?;
            let bits = spki.subject_public_key.as_bytes().ok_or(KeyError::Invalid)?;
            match spki.algorithm.oid {
                RSA_OID => rsa_public(
                    &rsa::RsaPublicKey::from_public_key_der(&block.der)
                        .map_err(|_| KeyError::Invalid)?,
                ),
                EC_OID => {
                    let curve = curve_for_oid(
                        spki.algorithm.parameters_oid().map_err(|_| KeyError::Invalid)?,
                    )?;
                    let mut blob = Vec::new();
                    crate::wire::Writer::new(&mut blob)
                        .write_string(curve.signature_algorithm().name().as_bytes())
                        .write_string(curve.identifier().as_bytes())
                        .write_string(bits);
                    PublicKey::from_blob(&blob)
                }
                ED25519_OID => {
                    Ok(PublicKey::Ed25519(bits.try_into().map_err(|_| KeyError::Invalid)?))
                }
                _ => Err(KeyError::UnsupportedType(spki.algorithm.oid.to_string())),
            }
        }
        _ => Err(KeyError::InvalidFormat("unknown PEM label")),
    }
}

/// Encodes a private key as PEM. With a passphrase, traditional keys get OpenSSL's legacy
/// AES-128-CBC encryption (as `ssh-keygen -m PEM` writes) and PKCS#8 keys PBES2 with
/// PBKDF2-SHA256 and AES-256-CBC. Ed25519 keys exist only in PKCS#8.
pub fn encode_private(
    key: &PrivateKey,
    format: PemFormat,
    passphrase: Option<&[u8]>,
    rng: &mut dyn SecureRandom,
) -> Result<String, KeyError> {
    let passphrase = passphrase.filter(|p| !p.is_empty());
    match format {
        PemFormat::Traditional => {
            let (label, der) = match key.secret() {
                SecretParts::Rsa(_) => {
                    let der = rsa_key(key)?.to_pkcs1_der().map_err(|_| KeyError::Invalid)?;
                    ("RSA PRIVATE KEY", Zeroizing::new(der.as_bytes().to_vec()))
                }
                SecretParts::Ecdsa { .. } => ("EC PRIVATE KEY", encode_sec1(key, true)?),
                _ => return Err(KeyError::UnsupportedType(key.key_type().name().to_owned())),
            };
            match passphrase {
                None => Ok(armor(label, &[], &der)),
                Some(pass) => encrypt_legacy(label, &der, pass, rng),
            }
        }
        PemFormat::Pkcs8 => {
            let der = encode_pkcs8(key)?;
            match passphrase {
                None => Ok(armor("PRIVATE KEY", &[], &der)),
                Some(pass) => {
                    let mut salt = [0; 16];
                    let mut iv = [0; 16];
                    rng.fill(&mut salt).map_err(|_| KeyError::Random)?;
                    rng.fill(&mut iv).map_err(|_| KeyError::Random)?;
                    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
                        PKCS8_PBKDF2_ITERATIONS,
                        &salt,
                        &iv,
                    )
                    .map_err(|_| KeyError::Invalid)?;
                    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                        .map_err(|_| KeyError::Invalid)?;
                    let doc =
                        info.encrypt_with_params(params, pass).map_err(|_| KeyError::Invalid)?;
                    Ok(armor("ENCRYPTED PRIVATE KEY", &[], doc.as_bytes()))
                }
            }
        }
    }
}

/// Encodes a public key as PEM: SubjectPublicKeyInfo (`PUBLIC KEY`), or for RSA with
/// `pkcs1` the PKCS#1 form (`RSA PUBLIC KEY`) that `ssh-keygen -e -m PEM` writes.
pub fn encode_public(key: &PublicKey, pkcs1: bool) -> Result<String, KeyError> {
    match key {
        PublicKey::Rsa { e, n } => {
            let key = rsa::RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                .map_err(|_| KeyError::Invalid)?;
            if pkcs1 {
                let der = key.to_pkcs1_der().map_err(|_| KeyError::Invalid)?;
                Ok(armor("RSA PUBLIC KEY", &[], der.as_bytes()))
            } else {
                let der = key.to_public_key_der().map_err(|_| KeyError::Invalid)?;
                Ok(armor("PUBLIC KEY", &[], der.as_bytes()))
            }
        }
        PublicKey::Ecdsa { curve, point } => {
            let params = curve_oid(*curve);
            spki_pem(EC_OID, Some(AnyRef::from(&params)), point)
        }
        PublicKey::Ed25519(bytes) => spki_pem(ED25519_OID, None, bytes),
    }
}

fn spki_pem(
    oid: ObjectIdentifier,
    params: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<String, KeyError> {
    let spki = pkcs8::SubjectPublicKeyInfoRef {
        algorithm: pkcs8::AlgorithmIdentifierRef { oid, parameters: params },
        subject_public_key: BitStringRef::from_bytes(key).map_err(|_| KeyError::Invalid)?,
    };
    let der = spki.to_der().map_err(|_| KeyError::Invalid)?;
    Ok(armor("PUBLIC KEY", &[], &der))
}

fn bad(encrypted: bool) -> KeyError {
    if encrypted {
        KeyError::WrongPassphrase
    } else {
        KeyError::InvalidFormat("bad PKCS#1 private key")
    }
}

fn rsa_public(key: &rsa::RsaPublicKey) -> Result<PublicKey, KeyError> {
    use rsa::traits::PublicKeyParts as _;
    let mut blob = Vec::new();
    crate::wire::Writer::new(&mut blob)
        .write_string(b"ssh-rsa")
        .write_mpint_unsigned(&key.e().to_bytes_be())
        .write_mpint_unsigned(&key.n().to_bytes_be());
    PublicKey::from_blob(&blob)
}

fn rsa_key(key: &PrivateKey) -> Result<rsa::RsaPrivateKey, KeyError> {
    let SecretParts::Rsa(c) = key.secret() else {
        return Err(KeyError::Invalid);
    };
    let big = |b: &[u8]| BigUint::from_bytes_be(b);
    rsa::RsaPrivateKey::from_components(big(&c.n), big(&c.e), big(&c.d), vec![big(&c.p), big(&c.q)])
        .map_err(|_| KeyError::Invalid)
}

fn curve_oid(curve: EcdsaCurve) -> ObjectIdentifier {
    match curve {
        EcdsaCurve::P256 => P256_OID,
        EcdsaCurve::P384 => P384_OID,
        EcdsaCurve::P521 => P521_OID,
    }
}

fn curve_for_oid(oid: ObjectIdentifier) -> Result<EcdsaCurve, KeyError> {
    match oid {
        P256_OID => Ok(EcdsaCurve::P256),
        P384_OID => Ok(EcdsaCurve::P384),
        P521_OID => Ok(EcdsaCurve::P521),
        other => Err(KeyError::UnsupportedType(format!("EC curve {other}"))),
    }
}

/// An SEC1 `ECPrivateKey`; the curve comes from its parameters or from the PKCS#8 wrapper.
fn decode_sec1(der: &[u8], outer_curve: Option<EcdsaCurve>) -> Result<PrivateKey, KeyError> {
    let ec = sec1::EcPrivateKey::from_der(der).map_err(|_| KeyError::InvalidFormat("bad SEC1"))?;
    let curve = match (ec.parameters.and_then(|p| p.named_curve()), outer_curve) {
        (Some(oid), _) => curve_for_oid(oid)?,
        (None, Some(curve)) => curve,
        (None, None) => return Err(KeyError::InvalidFormat("EC key without a curve")),
    };
    match ec.public_key {
        Some(point) => PrivateKey::ecdsa_from_parts(curve, point, ec.private_key),
        None => PrivateKey::ecdsa_from_scalar(curve, ec.private_key),
    }
}

fn decode_pkcs8(der: &[u8]) -> Result<PrivateKey, KeyError> {
    let info =
        pkcs8::PrivateKeyInfo::try_from(der).map_err(|_| KeyError::InvalidFormat("bad PKCS#8"))?;
    match info.algorithm.oid {
        RSA_OID => PrivateKey::from_rsa(
            rsa::RsaPrivateKey::from_pkcs1_der(info.private_key).map_err(|_| KeyError::Invalid)?,
        ),
        EC_OID => {
            let curve =
                curve_for_oid(info.algorithm.parameters_oid().map_err(|_| KeyError::Invalid)?)?;
            decode_sec1(info.private_key, Some(curve))
        }
        ED25519_OID => {
            let seed = OctetStringRef::from_der(info.private_key).map_err(|_| KeyError::Invalid)?;
            PrivateKey::ed25519_from_seed(seed.as_bytes())
        }
        other => Err(KeyError::UnsupportedType(other.to_string())),
    }
}

fn encode_sec1(key: &PrivateKey, with_parameters: bool) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let (SecretParts::Ecdsa { scalar }, PublicKey::Ecdsa { curve, point }) =
        (key.secret(), key.public_key())
    else {
        return Err(KeyError::Invalid);
    };
    let ec = sec1::EcPrivateKey {
        private_key: scalar,
        parameters: with_parameters.then(|| sec1::EcParameters::NamedCurve(curve_oid(*curve))),
        public_key: Some(point),
    };
    Ok(Zeroizing::new(ec.to_der().map_err(|_| KeyError::Invalid)?))
}

fn encode_pkcs8(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match (key.secret(), key.public_key()) {
        (SecretParts::Rsa(_), _) => {
            let doc = rsa_key(key)?.to_pkcs8_der().map_err(|_| KeyError::Invalid)?;
            Ok(Zeroizing::new(doc.as_bytes().to_vec()))
        }
        (SecretParts::Ecdsa { .. }, PublicKey::Ecdsa { curve, .. }) => {
            let inner = encode_sec1(key, false)?;
            let params = curve_oid(*curve);
            let info = pkcs8::PrivateKeyInfo {
                algorithm: pkcs8::AlgorithmIdentifierRef {
                    oid: EC_OID,
                    parameters: Some(AnyRef::from(&params)),
                },
                private_key: &inner,
                public_key: None,
            };
            Ok(Zeroizing::new(info.to_der().map_err(|_| KeyError::Invalid)?))
        }
        (SecretParts::Ed25519 { seed }, _) => {
            let inner = Zeroizing::new(
                OctetStringRef::new(seed.as_slice())
                    .and_then(|o| o.to_der())
                    .map_err(|_| KeyError::Invalid)?,
            );
            let info = pkcs8::PrivateKeyInfo {
                algorithm: pkcs8::AlgorithmIdentifierRef { oid: ED25519_OID, parameters: None },
                private_key: &inner,
                public_key: None,
            };
            Ok(Zeroizing::new(info.to_der().map_err(|_| KeyError::Invalid)?))
        }
        _ => Err(KeyError::Invalid),
    }
}

/// The first PEM block in `text`.
fn parse_block(text: &[u8]) -> Result<Block, KeyError> {
    if text.len() > super::openssh::MAX_KEY_FILE_LEN {
        return Err(KeyError::InvalidFormat("key file too large"));
    }
    let text = std::str::from_utf8(text).map_err(|_| KeyError::InvalidFormat("not text"))?;
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(KeyError::InvalidFormat("not PEM"))?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut headers = Vec::new();
    let mut body = Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        match line.split_once(": ") {
            Some((k, v)) if body.is_empty() => headers.push((k.to_owned(), v.to_owned())),
            _ => body.push_str(line),
        }
    }
    if !ended {
        return Err(KeyError::InvalidFormat("missing PEM end line"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| KeyError::InvalidFormat("bad base64"))?;
    Ok(Block { label, headers, der: Zeroizing::new(der) })
}

fn armor(label: &str, headers: &[(&str, String)], der: &[u8]) -> String {
    let mut lines: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if !lines.is_empty() {
        lines.push(String::new());
    }
    let (begin, end) = (format!("-----BEGIN {label}-----"), format!("-----END {label}-----"));
    super::armor::wrap(&begin, &lines, der, PEM_LINE_WIDTH, &end)
}

/// The legacy OpenSSL ciphers by `DEK-Info` name, with their `ssh-cipher` equivalent.
fn legacy_cipher(name: &str) -> Result<ssh_cipher::Cipher, KeyError> {
    match name {
        "AES-128-CBC" => Ok(ssh_cipher::Cipher::Aes128Cbc),
        "AES-192-CBC" => Ok(ssh_cipher::Cipher::Aes192Cbc),
        "AES-256-CBC" => Ok(ssh_cipher::Cipher::Aes256Cbc),
        "DES-EDE3-CBC" => Ok(ssh_cipher::Cipher::TDesCbc),
        other => Err(KeyError::UnsupportedCipher(other.to_owned())),
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration: the key for legacy PEM encryption,
/// salted with the IV's first 8 bytes.
fn bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    use md5::Digest as _;
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = md5::Md5::new();
        h.update(&prev);
        h.update(pass);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

fn decrypt_legacy(block: &Block, pass: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let dek = block
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("DEK-Info"))
        .map(|(_, v)| v.as_str())
        .ok_or(KeyError::InvalidFormat("encrypted PEM without DEK-Info"))?;
    let (name, iv_hex) = dek.split_once(',').ok_or(KeyError::InvalidFormat("bad DEK-Info"))?;
    let cipher = legacy_cipher(name.trim())?;
    let iv = hex_decode(iv_hex.trim()).ok_or(KeyError::InvalidFormat("bad DEK-Info IV"))?;
    let (key_len, iv_len) = cipher.key_and_iv_size().ok_or(KeyError::Invalid)?;
    if iv.len() != iv_len || iv.len() < 8 {
        return Err(KeyError::InvalidFormat("bad DEK-Info IV"));
    }
    let key = bytes_to_key(pass, iv.get(..8).unwrap_or_default(), key_len);
    let mut data = Zeroizing::new(block.der.to_vec());
    if data.is_empty() || !data.len().is_multiple_of(cipher.block_size()) {
        return Err(KeyError::InvalidFormat("bad encrypted PEM length"));
    }
    cipher.decrypt(&key, &iv, &mut data, None).map_err(|_| KeyError::WrongPassphrase)?;
    let pad = usize::from(data.last().copied().unwrap_or(0));
    if pad == 0 || pad > cipher.block_size() || pad > data.len() {
        return Err(KeyError::WrongPassphrase);
    }
    let body_len = data.len() - pad;
    if data.get(body_len..).is_none_or(|p| p.iter().any(|&b| usize::from(b) != pad)) {
        return Err(KeyError::WrongPassphrase);
    }
    data.truncate(body_len);
    Ok(data)
}

fn encrypt_legacy(
    label: &str,
    der: &[u8],
    pass: &[u8],
    rng: &mut dyn SecureRandom,
) -> Result<String, KeyError> {
    let cipher = ssh_cipher::Cipher::Aes128Cbc;
    let mut iv = [0; 16];
    rng.fill(&mut iv).map_err(|_| KeyError::Random)?;
    let key = bytes_to_key(pass, &iv[..8], 16);
    let pad = 16 - der.len() % 16;
    let mut data = Zeroizing::new(der.to_vec());
    data.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(16), pad));
    cipher.encrypt(&key, &iv, &mut data).map_err(|_| KeyError::Invalid)?;
    let iv_hex: String = iv.iter().map(|b| format!("{b:02X}")).collect();
    let headers =
        [("Proc-Type", "4,ENCRYPTED".to_owned()), ("DEK-Info", format!("AES-128-CBC,{iv_hex}"))];
    Ok(armor(label, &headers, &data))
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::OsRandom;
    use crate::keys::KeySpec;

    fn pass(p: &'static [u8]) -> impl FnMut() -> Option<Zeroizing<Vec<u8>>> {
        move || Some(Zeroizing::new(p.to_vec()))
    }

    /// Every key type round-trips through both PEM formats, plain and encrypted, and public
    /// keys through SubjectPublicKeyInfo and PKCS#1.
    #[test]
    fn private_and_public_keys_round_trip_through_pem() {
        let mut rng = OsRandom::new();
        for spec in [
            KeySpec::Ecdsa(EcdsaCurve::P256),
            KeySpec::Ecdsa(EcdsaCurve::P521),
            KeySpec::Rsa(2048),
            KeySpec::Ed25519,
        ] {
            let key = PrivateKey::generate(spec, &mut rng).unwrap();
            for format in [PemFormat::Traditional, PemFormat::Pkcs8] {
                if spec == KeySpec::Ed25519 && format == PemFormat::Traditional {
                    assert!(encode_private(&key, format, None, &mut rng).is_err());
                    continue;
                }
                for passphrase in [None, Some(&b"pw"[..])] {
                    let text = encode_private(&key, format, passphrase, &mut rng).unwrap();
                    let (back, got) = decode_private(text.as_bytes(), &mut pass(b"pw")).unwrap();
                    assert_eq!(back.public_key(), key.public_key(), "{spec:?} {format:?}");
                    assert_eq!(got, format);
                    if passphrase.is_some() {
                        assert_eq!(
                            decode_private(text.as_bytes(), &mut pass(b"wrong")).map(|_| ()),
                            Err(KeyError::WrongPassphrase),
                            "{spec:?} {format:?}"
                        );
                    }
                }
            }
            for pkcs1 in [false, true] {
                let text = encode_public(key.public_key(), pkcs1).unwrap();
                assert_eq!(&decode_public(text.as_bytes()).unwrap(), key.public_key());
            }
        }
    }

    /// OpenSSL's legacy key derivation gives the known answer for a fixed salt.
    #[test]
    fn bytes_to_key_matches_openssl() {
        // openssl enc -aes-128-cbc -P -md md5 -pass pass:pw -S 0001020304050607
        let key = bytes_to_key(b"pw", &[0, 1, 2, 3, 4, 5, 6, 7], 16);
        assert_eq!(hex::encode_upper(&*key), "A55F79AA00E8DD0E7D3CE26ED40D7CD3");
    }
}

//! OpenSSH certificates (`PROTOCOL.certkeys`): a public key, who it is for, when and with what
//! options, signed by a certificate authority's key.
//!
//! [`Certificate::from_blob`] parses one (with bounded lengths and counts, options checked to
//! be sorted and unique); [`Certificate::verify_signature`] checks the CA's signature;
//! [`Certificate::validate`] checks the type, the validity window, a principal and that every
//! critical option is one we know. Nothing here touches the clock or the file system.
//!
//! Hand-written on the crate's own [`Reader`] rather than on the `ssh-key` crate: the
//! certified key and the CA key must be this crate's [`PublicKey`] (verified with `ring` like
//! every other signature here), and the format is a short, fixed list of fields.

use std::fmt;

use base64::Engine as _;

use super::{KeyError, KeyType, PublicKey, SignatureAlgorithm};
use crate::crypto::CryptoError;
use crate::wire::{Reader, Writer};

/// What certificate key type names end with.
pub const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// The largest certificate blob accepted (OpenSSH's `SSH_MAX_CERT_LEN`-like bound: room for
/// two 16384-bit RSA keys, a signature and options).
pub const MAX_CERT_LEN: usize = 32 * 1024;

/// The most principals a certificate may list (OpenSSH's `SSHKEY_CERT_MAX_PRINCIPALS`).
pub const MAX_PRINCIPALS: usize = 256;

/// The most critical options or extensions a certificate may carry.
pub const MAX_OPTIONS: usize = 64;

/// The longest principal, key id or option name, in bytes.
const MAX_NAME_LEN: usize = 1024;

/// `force-command`.
pub const OPTION_FORCE_COMMAND: &str = "force-command";
/// `source-address`.
pub const OPTION_SOURCE_ADDRESS: &str = "source-address";
/// `verify-required`.
pub const OPTION_VERIFY_REQUIRED: &str = "verify-required";

/// The critical options we understand; any other refuses the certificate.
const KNOWN_CRITICAL_OPTIONS: [&str; 3] =
    [OPTION_FORCE_COMMAND, OPTION_SOURCE_ADDRESS, OPTION_VERIFY_REQUIRED];

/// `permit-X11-forwarding`.
pub const EXT_X11_FORWARDING: &str = "permit-X11-forwarding";
/// `permit-agent-forwarding`.
pub const EXT_AGENT_FORWARDING: &str = "permit-agent-forwarding";
/// `permit-port-forwarding`.
pub const EXT_PORT_FORWARDING: &str = "permit-port-forwarding";
/// `permit-pty`.
pub const EXT_PTY: &str = "permit-pty";
/// `permit-user-rc`.
pub const EXT_USER_RC: &str = "permit-user-rc";
/// `no-touch-required`.
pub const EXT_NO_TOUCH_REQUIRED: &str = "no-touch-required";

/// Whom a certificate identifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertType {
    /// `SSH_CERT_TYPE_USER` (1).
    User,
    /// `SSH_CERT_TYPE_HOST` (2).
    Host,
}

impl CertType {
    fn from_wire(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::User),
            2 => Some(Self::Host),
            _ => None,
        }
    }

    fn to_wire(self) -> u32 {
        match self {
            Self::User => 1,
            Self::Host => 2,
        }
    }

    /// `user` or `host`, as `ssh-keygen -L` says.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
        }
    }
}

/// Why a certificate is refused (OpenSSH's wording where it has one).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The blob does not decode as a certificate.
    Malformed(KeyError),
    /// A user certificate where a host one is wanted, or the reverse.
    WrongType,
    /// `valid after` is in the future.
    NotYetValid,
    /// `valid before` has passed.
    Expired,
    /// The name is not among the certificate's principals.
    PrincipalNotListed,
    /// A critical option we do not know (its name).
    UnknownCriticalOption(String),
    /// The CA signed with an algorithm not allowed (OpenSSH's `CASignatureAlgorithms`).
    SignatureAlgorithmNotAllowed(String),
    /// The CA's signature does not verify.
    BadSignature,
    /// `source-address` does not allow the client's address (or does not parse).
    SourceAddressRefused,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "invalid certificate: {e}"),
            Self::WrongType => f.write_str("Certificate invalid: wrong certificate type"),
            Self::NotYetValid => f.write_str("Certificate invalid: not yet valid"),
            Self::Expired => f.write_str("Certificate invalid: expired"),
            Self::PrincipalNotListed => {
                f.write_str("Certificate invalid: name is not a listed principal")
            }
            Self::UnknownCriticalOption(name) => {
                write!(f, "Certificate invalid: unsupported critical option \"{name}\"")
            }
            Self::SignatureAlgorithmNotAllowed(name) => {
                write!(f, "CA signature algorithm \"{name}\" not in CASignatureAlgorithms")
            }
            Self::BadSignature => f.write_str("Certificate signature verification failed"),
            Self::SourceAddressRefused => {
                f.write_str("Certificate invalid: source-address does not allow this address")
            }
        }
    }
}

impl std::error::Error for CertError {}

impl From<KeyError> for CertError {
    fn from(e: KeyError) -> Self {
        Self::Malformed(e)
    }
}

/// A parsed OpenSSH certificate. Parsing does not verify the CA's signature: call
/// [`verify_signature`](Self::verify_signature) and [`validate`](Self::validate).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Certificate {
    /// The certified key: the one whose signatures authenticate.
    pub key: PublicKey,
    /// The CA's random nonce.
    pub nonce: Vec<u8>,
    /// The serial number (0 if the CA does not number).
    pub serial: u64,
    /// User or host.
    pub cert_type: CertType,
    /// The CA's free-form identifier, for logs.
    pub key_id: String,
    /// The principals; empty means any.
    pub principals: Vec<String>,
    /// The first second (Unix time) of validity.
    pub valid_after: u64,
    /// The first second (Unix time) it is no longer valid.
    pub valid_before: u64,
    /// Critical options by name (sorted, unique), with each option's data decoded when it is a
    /// string (`force-command`, `source-address`) and raw otherwise.
    pub critical_options: Vec<(String, Vec<u8>)>,
    /// Extensions by name (sorted, unique), data raw.
    pub extensions: Vec<(String, Vec<u8>)>,
    /// The CA's public key (never itself a certificate).
    pub signature_key: PublicKey,
    /// The whole blob, as received.
    blob: Vec<u8>,
    /// How many bytes of `blob` the signature covers.
    signed_len: usize,
    /// The CA's signature blob (`string algorithm || string signature`).
    signature: Vec<u8>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("key", &self.key)
            .field("serial", &self.serial)
            .field("type", &self.cert_type)
            .field("key_id", &self.key_id)
            .field("principals", &self.principals)
            .finish_non_exhaustive()
    }
}

/// The certificate type name for a key type (`ssh-ed25519-cert-v01@openssh.com`).
pub fn cert_type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Ed25519 => "ssh-ed25519-cert-v01@openssh.com",
        KeyType::Ecdsa(super::EcdsaCurve::P256) => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        KeyType::Ecdsa(super::EcdsaCurve::P384) => "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        KeyType::Ecdsa(super::EcdsaCurve::P521) => "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        KeyType::Rsa => "ssh-rsa-cert-v01@openssh.com",
    }
}

/// The key type of a certificate type name (blob names only: not the `rsa-sha2-*` algorithm
/// names).
pub fn key_type_of_cert_name(name: &str) -> Option<KeyType> {
    let base = name.strip_suffix(CERT_SUFFIX)?;
    KeyType::from_name(base)
}

/// The signature algorithm a certificate algorithm name in a userauth request or KEXINIT
/// stands for: `ssh-ed25519-cert-v01@openssh.com` → `ssh-ed25519`,
/// `rsa-sha2-256-cert-v01@openssh.com` → `rsa-sha2-256`, `ssh-rsa-cert-v01@openssh.com` →
/// `ssh-rsa`.
pub fn cert_signature_algorithm(name: &str) -> Option<SignatureAlgorithm> {
    SignatureAlgorithm::from_name(name.strip_suffix(CERT_SUFFIX)?)
}

/// The certificate algorithm name for signature algorithm `algorithm` (the inverse of
/// [`cert_signature_algorithm`]).
pub fn cert_algorithm_name(algorithm: SignatureAlgorithm) -> &'static str {
    match algorithm {
        SignatureAlgorithm::Ed25519 => "ssh-ed25519-cert-v01@openssh.com",
        SignatureAlgorithm::EcdsaP256 => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        SignatureAlgorithm::EcdsaP384 => "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        SignatureAlgorithm::EcdsaP521 => "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        SignatureAlgorithm::RsaSha256 => "rsa-sha2-256-cert-v01@openssh.com",
        SignatureAlgorithm::RsaSha512 => "rsa-sha2-512-cert-v01@openssh.com",
        SignatureAlgorithm::RsaSha1 => "ssh-rsa-cert-v01@openssh.com",
    }
}

impl Certificate {
    /// Parses a certificate blob, which must be consumed exactly. The CA's signature is not
    /// checked here.
    pub fn from_blob(blob: &[u8]) -> Result<Self, KeyError> {
        if blob.len() > MAX_CERT_LEN {
            return Err(KeyError::InvalidFormat("certificate too long"));
        }
        let mut r = Reader::new(blob);
        let name = r.read_utf8()?;
        let key_type = key_type_of_cert_name(name)
            .ok_or_else(|| KeyError::UnsupportedType(name.to_owned()))?;
        let nonce = r.read_string_limited(MAX_NAME_LEN)?.to_vec();
        let key = PublicKey::read_body(key_type, &mut r)?;
        let serial = r.read_u64()?;
        let cert_type = CertType::from_wire(r.read_u32()?)
            .ok_or(KeyError::InvalidFormat("unknown certificate type"))?;
        let key_id = utf8(r.read_string_limited(MAX_NAME_LEN)?)?;
        let principals = read_principals(r.read_string()?)?;
        let valid_after = r.read_u64()?;
        let valid_before = r.read_u64()?;
        let critical_options = read_options(r.read_string()?)?;
        let extensions = read_options(r.read_string()?)?;
        let _reserved = r.read_string()?;
        let ca_blob = r.read_string()?;
        let signed_len = blob.len() - r.remaining().len();
        let signature = r.read_string()?.to_vec();
        r.finish()?;
        // A CA key that is itself a certificate has a type name we do not know as a plain key.
        let signature_key = PublicKey::from_blob(ca_blob).map_err(|e| match e {
            KeyError::UnsupportedType(_) => KeyError::InvalidFormat("CA key is not a plain key"),
            other => other,
        })?;
        if valid_after > valid_before {
            return Err(KeyError::InvalidFormat("certificate validity interval is empty"));
        }
        Ok(Self {
            key,
            nonce,
            serial,
            cert_type,
            key_id,
            principals,
            valid_after,
            valid_before,
            critical_options,
            extensions,
            signature_key,
            blob: blob.to_vec(),
            signed_len,
            signature,
        })
    }

    /// Parses `type base64 [comment]` (a `-cert.pub` file's line).
    pub fn from_openssh(line: &str) -> Result<Self, KeyError> {
        if line.len() > super::MAX_PUBLIC_LINE_LEN {
            return Err(KeyError::InvalidFormat("line too long"));
        }
        let mut fields = line.split_ascii_whitespace();
        let name = fields.next().ok_or(KeyError::InvalidFormat("no key type"))?;
        let encoded = fields.next().ok_or(KeyError::InvalidFormat("no key"))?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| KeyError::InvalidFormat("bad base64"))?;
        let cert = Self::from_blob(&blob)?;
        if cert.type_name() != name {
            return Err(KeyError::InvalidFormat("key type does not match the blob"));
        }
        Ok(cert)
    }

    /// The blob, exactly as parsed.
    pub fn to_blob(&self) -> &[u8] {
        &self.blob
    }

    /// `type base64`, as in a `-cert.pub` file.
    pub fn to_openssh(&self) -> String {
        format!(
            "{} {}",
            self.type_name(),
            base64::engine::general_purpose::STANDARD.encode(&self.blob)
        )
    }

    /// The certificate's type name (`ssh-ed25519-cert-v01@openssh.com`).
    pub fn type_name(&self) -> &'static str {
        cert_type_name(self.key.key_type())
    }

    /// The algorithm the CA signed with, as its signature blob names it.
    pub fn signature_algorithm(&self) -> Option<SignatureAlgorithm> {
        let mut r = Reader::new(&self.signature);
        r.read_utf8().ok().and_then(SignatureAlgorithm::from_name)
    }

    /// Verifies the CA's signature. `allowed` is OpenSSH's `CASignatureAlgorithms`: the
    /// signature's algorithm must be in it and suit the CA key.
    pub fn verify_signature(&self, allowed: &[SignatureAlgorithm]) -> Result<(), CertError> {
        let algorithm = self.signature_algorithm().ok_or(CertError::BadSignature)?;
        if !allowed.contains(&algorithm) {
            return Err(CertError::SignatureAlgorithmNotAllowed(algorithm.name().to_owned()));
        }
        let signed = self.blob.get(..self.signed_len).ok_or(CertError::BadSignature)?;
        self.signature_key
            .verify(algorithm, signed, &self.signature)
            .map_err(|_: CryptoError| CertError::BadSignature)
    }

    /// OpenSSH's `sshkey_cert_check_authority`: `cert_type` as wanted, `now_unix` inside the
    /// validity window, `principal` listed (when given and the list is not empty), and every
    /// critical option known (user certificates; host certificates have none defined).
    pub fn validate(
        &self,
        cert_type: CertType,
        now_unix: u64,
        principal: Option<&str>,
    ) -> Result<(), CertError> {
        if self.cert_type != cert_type {
            return Err(CertError::WrongType);
        }
        if now_unix < self.valid_after {
            return Err(CertError::NotYetValid);
        }
        if now_unix >= self.valid_before {
            return Err(CertError::Expired);
        }
        if let Some(name) = principal {
            if !self.principals.is_empty() && !self.principals.iter().any(|p| p == name) {
                return Err(CertError::PrincipalNotListed);
            }
        }
        for (name, _) in &self.critical_options {
            let known = cert_type == CertType::User && KNOWN_CRITICAL_OPTIONS.contains(&&**name);
            if !known {
                return Err(CertError::UnknownCriticalOption(name.clone()));
            }
        }
        Ok(())
    }

    /// A critical option's data decoded as a string (`force-command`, `source-address`).
    pub fn critical_option(&self, name: &str) -> Option<String> {
        let (_, data) = self.critical_options.iter().find(|(n, _)| n == name)?;
        let mut r = Reader::new(data);
        let value = r.read_string().ok()?;
        r.finish().ok()?;
        String::from_utf8(value.to_vec()).ok()
    }

    /// Whether the critical option `name` is present (`verify-required`).
    pub fn has_critical_option(&self, name: &str) -> bool {
        self.critical_options.iter().any(|(n, _)| n == name)
    }

    /// `force-command`, if given.
    pub fn force_command(&self) -> Option<String> {
        self.critical_option(OPTION_FORCE_COMMAND)
    }

    /// `source-address`, if given: a comma-separated list of addresses and CIDR networks.
    pub fn source_address(&self) -> Option<String> {
        self.critical_option(OPTION_SOURCE_ADDRESS)
    }

    /// Whether `source-address` (if any) allows `ip`. A list that does not parse allows
    /// nothing.
    pub fn source_allows(&self, ip: &str) -> bool {
        let Some(list) = self.source_address() else {
            // Present but undecodable is refused; absent allows any address.
            return !self.has_critical_option(OPTION_SOURCE_ADDRESS);
        };
        super::pattern::match_cidr_list(ip, &list) == Ok(true)
    }

    /// Whether the extension `name` is present (`permit-pty`, ...).
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|(n, _)| n == name)
    }
}

fn utf8(bytes: &[u8]) -> Result<String, KeyError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| KeyError::InvalidFormat("text is not UTF-8"))
}

/// The packed principal strings.
fn read_principals(packed: &[u8]) -> Result<Vec<String>, KeyError> {
    let mut r = Reader::new(packed);
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_PRINCIPALS {
            return Err(KeyError::InvalidFormat("too many principals"));
        }
        out.push(utf8(r.read_string_limited(MAX_NAME_LEN)?)?);
    }
    Ok(out)
}

/// Packed `string name || string data` pairs, sorted by name and unique.
fn read_options(packed: &[u8]) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    let mut r = Reader::new(packed);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_OPTIONS {
            return Err(KeyError::InvalidFormat("too many certificate options"));
        }
        let name = utf8(r.read_string_limited(MAX_NAME_LEN)?)?;
        let data = r.read_string()?.to_vec();
        if out.last().is_some_and(|(last, _)| last.as_str() >= name.as_str()) {
            return Err(KeyError::InvalidFormat("certificate options out of order or repeated"));
        }
        out.push((name, data));
    }
    Ok(out)
}

/// Builds a certificate's body, for tests and tools that sign: everything up to and including
/// the CA key, ready for the CA's signature.
#[derive(Clone, Debug)]
pub struct CertificateBuilder {
    /// The key to certify.
    pub key: PublicKey,
    /// The nonce.
    pub nonce: Vec<u8>,
    /// The serial.
    pub serial: u64,
    /// User or host.
    pub cert_type: CertType,
    /// The key id.
    pub key_id: String,
    /// The principals.
    pub principals: Vec<String>,
    /// Valid from.
    pub valid_after: u64,
    /// Valid until (exclusive).
    pub valid_before: u64,
    /// Critical options `(name, value)`; a `Some` value is written as a string.
    pub critical_options: Vec<(String, Option<String>)>,
    /// Extensions `(name, value)`.
    pub extensions: Vec<(String, Option<String>)>,
}

impl CertificateBuilder {
    /// A user certificate for `key`, valid forever for any principal, with OpenSSH's default
    /// extensions.
    pub fn user(key: PublicKey) -> Self {
        Self {
            key,
            nonce: vec![0; 32],
            serial: 0,
            cert_type: CertType::User,
            key_id: String::new(),
            principals: Vec::new(),
            valid_after: 0,
            valid_before: u64::MAX,
            critical_options: Vec::new(),
            extensions: [
                EXT_X11_FORWARDING,
                EXT_AGENT_FORWARDING,
                EXT_PORT_FORWARDING,
                EXT_PTY,
                EXT_USER_RC,
            ]
            .into_iter()
            .map(|n| (n.to_owned(), None))
            .collect(),
        }
    }

    /// Signs with `sign` (given the body to sign, returning a signature blob) for `ca`.
    pub fn sign(
        &self,
        ca: &PublicKey,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, CryptoError>,
    ) -> Result<Certificate, KeyError> {
        let mut body = Vec::new();
        let mut w = Writer::new(&mut body);
        w.write_string(cert_type_name(self.key.key_type()).as_bytes()).write_string(&self.nonce);
        let mut key_blob = Vec::new();
        self.key.write(&mut Writer::new(&mut key_blob));
        // The key's fields without its type name.
        let mut kr = Reader::new(&key_blob);
        let _ = kr.read_string()?;
        w.write_raw(kr.remaining());
        w.write_u64(self.serial).write_u32(self.cert_type.to_wire());
        w.write_string(self.key_id.as_bytes());
        w.write_prefixed(|w| {
            for p in &self.principals {
                w.write_string(p.as_bytes());
            }
        });
        w.write_u64(self.valid_after).write_u64(self.valid_before);
        for list in [&self.critical_options, &self.extensions] {
            let mut sorted = list.clone();
            sorted.sort();
            w.write_prefixed(|w| {
                for (name, value) in &sorted {
                    w.write_string(name.as_bytes());
                    match value {
                        Some(v) => w.write_prefixed(|w| {
                            w.write_string(v.as_bytes());
                        }),
                        None => w.write_string(b""),
                    };
                }
            });
        }
        w.write_string(b"").write_string(&ca.to_blob());
        let signature = sign(&body).map_err(|_| KeyError::InvalidFormat("signing failed"))?;
        Writer::new(&mut body).write_string(&signature);
        Certificate::from_blob(&body)
    }
}

#[cfg(test)]
mod tests;

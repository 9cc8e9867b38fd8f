//! OpenSSH key revocation lists (`PROTOCOL.krl`), as `ssh-keygen -k` writes them and sshd's
//! `RevokedKeys` reads them: certificates revoked by CA and serial (lists, ranges, bitmaps) or
//! key id, plain keys revoked by blob or by SHA-1/SHA-256 hash.
//!
//! Bloom filter extensions are optional and skipped; a critical extension we do not know, or
//! anything malformed, is an error (sshd then refuses every key). Signature sections are
//! skipped unverified, as sshd does without `-s` CA keys.

use super::{Certificate, KeyError, PublicKey};
use crate::wire::Reader;

/// `SSHKRL\n\0`.
pub const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";

const FORMAT_VERSION: u32 = 1;
const SECTION_CERTIFICATES: u8 = 1;
const SECTION_EXPLICIT_KEY: u8 = 2;
const SECTION_FINGERPRINT_SHA1: u8 = 3;
const SECTION_SIGNATURE: u8 = 4;
const SECTION_FINGERPRINT_SHA256: u8 = 5;
const SECTION_EXTENSION: u8 = 255;
const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_SERIAL_RANGE: u8 = 0x21;
const CERT_SERIAL_BITMAP: u8 = 0x22;
const CERT_KEY_ID: u8 = 0x23;
const CERT_EXTENSION: u8 = 0x39;

/// The revocations of one CA (or of every CA, when `ca` is `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CaRevocations {
    ca: Option<PublicKey>,
    serials: Vec<(u64, u64)>,
    key_ids: Vec<String>,
}

/// A parsed KRL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Krl {
    /// The KRL's version number.
    pub version: u64,
    /// When it was generated (Unix time).
    pub generated: u64,
    /// Its comment.
    pub comment: String,
    certificates: Vec<CaRevocations>,
    keys: Vec<Vec<u8>>,
    sha1: Vec<Vec<u8>>,
    sha256: Vec<Vec<u8>>,
}

impl Krl {
    /// Whether `bytes` start like a KRL.
    pub fn is_krl(bytes: &[u8]) -> bool {
        bytes.starts_with(KRL_MAGIC)
    }

    /// Parses a KRL.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::InvalidFormat;
        let mut r = Reader::new(bytes);
        if r.read_bytes(KRL_MAGIC.len())? != KRL_MAGIC {
            return Err(bad("not a KRL"));
        }
        if r.read_u32()? != FORMAT_VERSION {
            return Err(bad("unsupported KRL format version"));
        }
        let mut krl = Self { version: r.read_u64()?, generated: r.read_u64()?, ..Self::default() };
        let _flags = r.read_u64()?;
        let _reserved = r.read_string()?;
        krl.comment = String::from_utf8_lossy(r.read_string()?).into_owned();
        while !r.is_empty() {
            let kind = r.read_u8()?;
            if kind == SECTION_SIGNATURE {
                let _key = r.read_string()?;
                let _signature = r.read_string()?;
                continue;
            }
            let data = r.read_string()?;
            match kind {
                SECTION_CERTIFICATES => krl.certificates.push(read_cert_section(data)?),
                SECTION_EXPLICIT_KEY => krl.keys.extend(read_strings(data)?),
                SECTION_FINGERPRINT_SHA1 => krl.sha1.extend(read_strings(data)?),
                SECTION_FINGERPRINT_SHA256 => krl.sha256.extend(read_strings(data)?),
                SECTION_EXTENSION => check_extension(data)?,
                _ => return Err(bad("unknown KRL section")),
            }
        }
        Ok(krl)
    }

    /// Whether the plain key `key` is revoked (by blob or hash).
    pub fn key_revoked(&self, key: &PublicKey) -> bool {
        let blob = key.to_blob();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &blob);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, &blob);
        self.keys.contains(&blob)
            || self.sha1.iter().any(|h| h.as_slice() == sha1.as_ref())
            || self.sha256.iter().any(|h| h.as_slice() == sha256.as_ref())
    }

    /// Whether `cert` is revoked: by its key id or serial under its CA (or under any CA), or
    /// because its key or its CA key is revoked. Serial 0 (a CA that does not number) is never
    /// revoked by serial.
    pub fn certificate_revoked(&self, cert: &Certificate) -> bool {
        if self.key_revoked(&cert.key) || self.key_revoked(&cert.signature_key) {
            return true;
        }
        self.certificates
            .iter()
            .filter(|section| section.ca.as_ref().is_none_or(|ca| *ca == cert.signature_key))
            .any(|section| {
                section.key_ids.contains(&cert.key_id)
                    || (cert.serial != 0
                        && section
                            .serials
                            .iter()
                            .any(|(low, high)| (*low..=*high).contains(&cert.serial)))
            })
    }
}

fn read_strings(data: &[u8]) -> Result<Vec<Vec<u8>>, KeyError> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.read_string()?.to_vec());
    }
    Ok(out)
}

/// An extension section or subsection: a critical one we do not know is an error.
fn check_extension(data: &[u8]) -> Result<(), KeyError> {
    let mut r = Reader::new(data);
    let _name = r.read_string()?;
    let critical = r.read_bool()?;
    let _contents = r.read_string()?;
    r.finish()?;
    if critical {
        return Err(KeyError::InvalidFormat("unsupported critical KRL extension"));
    }
    Ok(())
}

fn read_cert_section(data: &[u8]) -> Result<CaRevocations, KeyError> {
    let mut r = Reader::new(data);
    let ca_blob = r.read_string()?;
    let ca = if ca_blob.is_empty() { None } else { Some(PublicKey::from_blob(ca_blob)?) };
    let _reserved = r.read_string()?;
    let mut out = CaRevocations { ca, ..CaRevocations::default() };
    while !r.is_empty() {
        let kind = r.read_u8()?;
        let data = r.read_string()?;
        let mut s = Reader::new(data);
        match kind {
            CERT_SERIAL_LIST => {
                while !s.is_empty() {
                    let serial = s.read_u64()?;
                    out.serials.push((serial, serial));
                }
            }
            CERT_SERIAL_RANGE => {
                let (low, high) = (s.read_u64()?, s.read_u64()?);
                s.finish()?;
                if low > high {
                    return Err(KeyError::InvalidFormat("KRL serial range is inverted"));
                }
                out.serials.push((low, high));
            }
            CERT_SERIAL_BITMAP => {
                let offset = s.read_u64()?;
                let bitmap = s.read_mpint_unsigned()?;
                s.finish()?;
                // Bit N (from the least significant end) revokes serial offset + N.
                for (byte_index, byte) in bitmap.iter().rev().enumerate() {
                    for bit in 0..8u64 {
                        if byte & (1 << bit) != 0 {
                            let index = u64::try_from(byte_index)
                                .ok()
                                .and_then(|i| i.checked_mul(8))
                                .and_then(|i| i.checked_add(bit))
                                .and_then(|i| offset.checked_add(i))
                                .ok_or(KeyError::InvalidFormat("KRL bitmap overflows"))?;
                            out.serials.push((index, index));
                        }
                    }
                }
            }
            CERT_KEY_ID => {
                while !s.is_empty() {
                    out.key_ids.push(String::from_utf8_lossy(s.read_string()?).into_owned());
                }
            }
            CERT_EXTENSION => check_extension(data)?,
            _ => return Err(KeyError::InvalidFormat("unknown KRL certificate section")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    fn scratch() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "conch-krl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn run(args: &[&str], dir: &Path) {
        let status = Command::new("ssh-keygen").args(args).current_dir(dir).status().unwrap();
        assert!(status.success(), "ssh-keygen {args:?}");
    }

    fn cert(dir: &Path, name: &str, serial: &str) -> Certificate {
        run(&["-q", "-N", "", "-t", "ed25519", "-f", name], dir);
        run(&["-q", "-s", "ca", "-I", &format!("id-{name}"), "-z", serial, name], dir);
        let text = std::fs::read_to_string(dir.join(format!("{name}-cert.pub"))).unwrap();
        Certificate::from_openssh(&text).unwrap()
    }

    fn public(dir: &Path, name: &str) -> PublicKey {
        let text = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
        PublicKey::from_openssh(&text).unwrap()
    }

    /// KRLs made by `ssh-keygen -k` revoke what they list (serials, ranges, key ids, plain
    /// keys by blob and hash) and nothing else; an empty KRL revokes nothing; every prefix of
    /// a KRL is refused or parses without panicking.
    #[test]
    fn ssh_keygen_krls_revoke_what_they_list() {
        let dir = scratch();
        run(&["-q", "-N", "", "-t", "ed25519", "-f", "ca"], &dir);
        let c1 = cert(&dir, "k1", "1");
        let c5 = cert(&dir, "k5", "5");
        let c9 = cert(&dir, "k9", "9");
        let c100 = cert(&dir, "k100", "100");
        let c0 = cert(&dir, "k0", "0");
        run(&["-q", "-N", "", "-t", "ed25519", "-f", "plain"], &dir);
        run(&["-q", "-N", "", "-t", "ed25519", "-f", "hashed"], &dir);
        run(&["-q", "-N", "", "-t", "ecdsa", "-f", "other"], &dir);
        let spec = "serial: 1\nserial: 4-6\nid: id-k100\n";
        std::fs::write(dir.join("spec"), spec).unwrap();
        let hashed = public(&dir, "hashed");
        let fp = hashed.fingerprint(super::super::FingerprintHash::Sha256).to_string();
        std::fs::write(dir.join("plainspec"), format!("hash: {fp}\n")).unwrap();
        run(&["-q", "-k", "-f", "krl", "-s", "ca.pub", "spec"], &dir);
        run(&["-q", "-k", "-u", "-f", "krl", "plain.pub", "plainspec"], &dir);
        run(&["-q", "-k", "-f", "empty"], &dir);

        let bytes = std::fs::read(dir.join("krl")).unwrap();
        assert!(Krl::is_krl(&bytes));
        let krl = Krl::parse(&bytes).unwrap();
        assert!(krl.certificate_revoked(&c1));
        assert!(krl.certificate_revoked(&c5));
        assert!(!krl.certificate_revoked(&c9));
        assert!(krl.certificate_revoked(&c100));
        assert!(!krl.certificate_revoked(&c0));
        assert!(krl.key_revoked(&public(&dir, "plain")));
        assert!(krl.key_revoked(&hashed));
        assert!(!krl.key_revoked(&public(&dir, "other")));

        let empty = Krl::parse(&std::fs::read(dir.join("empty")).unwrap()).unwrap();
        assert!(!empty.certificate_revoked(&c1) && !empty.key_revoked(&hashed));

        for len in 0..bytes.len() {
            let _ = Krl::parse(&bytes[..len]);
        }
        assert!(Krl::parse(&bytes[..bytes.len() - 1]).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}

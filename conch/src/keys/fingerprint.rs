//! Fingerprints in `ssh-keygen`'s text forms: `SHA256:base64`, `MD5:hex:pairs`, the randomart
//! picture (`ssh-keygen -lv`) and the bubblebabble digest (`ssh-keygen -B`).

use std::fmt;

use base64::Engine as _;
use md5::Digest as _;

use super::{KeyType, PublicKey};

/// The hash a fingerprint is made with (`ssh-keygen -E`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FingerprintHash {
    /// SHA-256, base64 without padding. OpenSSH's default.
    #[default]
    Sha256,
    /// MD5, as colon-separated hex pairs.
    Md5,
    /// SHA-1, base64 without padding (legacy; `ssh-keygen -E sha1`).
    Sha1,
}

impl FingerprintHash {
    /// The hash by the name `-E` takes (`sha256`, `md5`; case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Some(Self::Sha256),
            "md5" => Some(Self::Md5),
            "sha1" => Some(Self::Sha1),
            _ => None,
        }
    }

    /// The prefix of the text form and the randomart footer (`SHA256`, `MD5`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA256",
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA1",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec(),
            Self::Md5 => md5::Md5::digest(data).to_vec(),
            Self::Sha1 => ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                .as_ref()
                .to_vec(),
        }
    }
}

/// A key's fingerprint: the digest of its blob.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    hash: FingerprintHash,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The hash used.
    pub fn hash(&self) -> FingerprintHash {
        self.hash
    }
}

impl fmt::Display for Fingerprint {
    /// `SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU` or
    /// `MD5:d4:1d:8c:d9:8f:00:b2:04:e9:80:09:98:ec:f8:42:7e`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash.label())?;
        f.write_str(":")?;
        match self.hash {
            FingerprintHash::Sha256 | FingerprintHash::Sha1 => {
                f.write_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(&self.digest))
            }
            FingerprintHash::Md5 => {
                for (i, b) in self.digest.iter().enumerate() {
                    if i > 0 {
                        f.write_str(":")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The randomart field's width and height (OpenSSH's `FLDSIZE_X`, `FLDSIZE_Y`).
const FIELD_WIDTH: usize = 17;
const FIELD_HEIGHT: usize = 9;

/// The symbols for 0..=14 visits, then the start and end markers.
const SYMBOLS: &[u8; 17] = b" .o+=*BOX@%&#/^SE";

impl PublicKey {
    /// The fingerprint with `hash`.
    pub fn fingerprint(&self, hash: FingerprintHash) -> Fingerprint {
        Fingerprint { hash, digest: hash.digest(&self.to_blob()) }
    }

    /// The name `ssh-keygen -l` puts in parentheses (`ED25519`, `ECDSA`, `RSA`).
    pub fn short_type_name(&self) -> &'static str {
        match self.key_type() {
            KeyType::Ed25519 => "ED25519",
            KeyType::Ecdsa(_) => "ECDSA",
            KeyType::Rsa => "RSA",
        }
    }

    /// The randomart picture of the fingerprint with `hash`, as `ssh-keygen -lv` draws it
    /// (the "drunken bishop" walk), lines joined by `\n`, without a final newline.
    pub fn randomart(&self, hash: FingerprintHash) -> String {
        let digest = hash.digest(&self.to_blob());
        let mut field = [[0_u8; FIELD_HEIGHT]; FIELD_WIDTH];
        let (mut x, mut y) = (FIELD_WIDTH / 2, FIELD_HEIGHT / 2);
        // 0..=14 visits; 15 and 16 are the start and end markers.
        const MAX_VISITS: u8 = 14;
        let max_visits = MAX_VISITS;
        for byte in digest {
            let mut input = byte;
            for _ in 0..4 {
                x = if input & 0x1 != 0 {
                    (x + 1).min(FIELD_WIDTH - 1)
                } else {
                    x.saturating_sub(1)
                };
                y = if input & 0x2 != 0 {
                    (y + 1).min(FIELD_HEIGHT - 1)
                } else {
                    y.saturating_sub(1)
                };
                let cell = &mut field[x][y]; // invariant: x, y clamped to the field
                if *cell < max_visits {
                    *cell += 1;
                }
                input >>= 2;
            }
        }
        field[FIELD_WIDTH / 2][FIELD_HEIGHT / 2] = max_visits + 1; // 'S'
        field[x][y] = max_visits + 2; // 'E'

        let title = format!("[{} {}]", self.short_type_name(), self.bits());
        let footer = format!("[{}]", hash.label());
        let mut out = border(&title);
        out.push('\n');
        for row in 0..FIELD_HEIGHT {
            out.push('|');
            for column in &field {
                out.push(char::from(SYMBOLS[usize::from(column[row])])); // invariant: ≤ 16
            }
            out.push_str("|\n");
        }
        out.push_str(&border(&footer));
        out
    }

    /// The bubblebabble encoding of the key blob's SHA-1 digest (`ssh-keygen -B`).
    pub fn bubblebabble(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.to_blob());
        bubblebabble(digest.as_ref())
    }
}

/// `+---[title]---+`: the title centred in the field's width, left-biased as OpenSSH does.
fn border(title: &str) -> String {
    let left = FIELD_WIDTH.saturating_sub(title.len()) / 2;
    let right = FIELD_WIDTH.saturating_sub(left + title.len());
    format!("+{}{}{}+", "-".repeat(left), title, "-".repeat(right))
}

/// The Bubble Babble binary data encoding (Antti Huima, 2000).
fn bubblebabble(data: &[u8]) -> String {
    const VOWELS: &[u8; 6] = b"aeiouy";
    const CONSONANTS: &[u8; 17] = b"bcdfghklmnprstvzx";
    let rounds = data.len() / 2 + 1;
    let mut seed = 1_usize;
    let mut out = String::from("x");
    let vowel = |i: usize| char::from(VOWELS[i % 6]);
    let consonant = |i: usize| char::from(CONSONANTS[i % 17]);
    for i in 0..rounds {
        let first = data.get(2 * i).copied().map(usize::from);
        let second = data.get(2 * i + 1).copied().map(usize::from);
        match first {
            Some(a) if i + 1 < rounds || !data.len().is_multiple_of(2) => {
                out.push(vowel(((a >> 6) & 3) + seed));
                out.push(consonant((a >> 2) & 15));
                out.push(vowel((a & 3) + seed / 6));
                if let (true, Some(b)) = (i + 1 < rounds, second) {
                    out.push(consonant((b >> 4) & 15));
                    out.push('-');
                    out.push(consonant(b & 15));
                    seed = (seed * 5 + a * 7 + b) % 36;
                }
            }
            _ => {
                out.push(vowel(seed));
                out.push(consonant(16));
                out.push(vowel(seed / 6));
            }
        }
    }
    out.push('x');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Bubble Babble specification's own examples.
    #[test]
    fn bubblebabble_matches_the_specification_examples() {
        assert_eq!(bubblebabble(b""), "xexax");
        assert_eq!(bubblebabble(b"1234567890"), "xesef-disof-gytuf-katof-movif-baxux");
        assert_eq!(bubblebabble(b"Pineapple"), "xigak-nyryk-humil-bosek-sonax");
    }

    /// MD5 fingerprints are colon-separated lowercase pairs; SHA-256 ones unpadded base64.
    #[test]
    fn fingerprints_use_ssh_keygen_text_forms() {
        let fp = Fingerprint { hash: FingerprintHash::Md5, digest: vec![0xd4, 0x1d, 0x8c] };
        assert_eq!(fp.to_string(), "MD5:d4:1d:8c");
        let fp = Fingerprint { hash: FingerprintHash::Sha256, digest: vec![0; 32] };
        assert_eq!(fp.to_string(), "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }

    /// The randomart frame is 11 lines of 19 columns with the title and hash in the borders.
    #[test]
    fn randomart_has_ssh_keygen_frame() {
        let key = crate::keys::PrivateKey::ed25519_from_seed(&[1; 32]).unwrap();
        let art = key.public_key().randomart(FingerprintHash::Sha256);
        let lines: Vec<&str> = art.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "+--[ED25519 256]--+");
        assert_eq!(lines[10], "+----[SHA256]-----+");
        assert!(lines.iter().all(|l| l.len() == 19));
        let field: String = lines[1..10].concat();
        assert_eq!(field.matches('S').count() + field.matches('E').count(), 2);
    }
}

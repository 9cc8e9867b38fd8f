//! `known_hosts` files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): `[marker] hosts key [comment]`
//! lines, where hosts is a comma-separated pattern list (`*`, `?`, `!` negation,
//! `[host]:port`) or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, and the
//! marker is `@cert-authority` or `@revoked`.
//!
//! [`KnownHosts`] keeps every line (comments, blank and invalid ones too) so that `ckeygen -R`
//! and `-H` can rewrite a file without losing anything; [`KnownHosts::check`] is the client's
//! lookup.

use base64::Engine as _;

use super::pattern::{self, ListMatch};
use super::public::parse_key_prefix;
use super::{KeyType, PublicKey};
use crate::crypto::SecureRandom;

/// The magic that starts a hashed host name.
const HASH_MAGIC: &str = "|1|";

/// SHA-1's output length: the salt and the hash of a hashed host name.
const SHA1_LEN: usize = 20;

/// The default SSH port, which host names carry no `[...]:port` for.
pub const DEFAULT_PORT: u16 = 22;

/// The marker before a line's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Marker {
    /// No marker: a host key.
    None,
    /// `@cert-authority`: a CA key for host certificates.
    CertAuthority,
    /// `@revoked`: a key that must never be accepted.
    Revoked,
}

/// One line of a `known_hosts` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A blank or `#` comment line.
    Comment,
    /// A host entry.
    Entry(Entry),
    /// A line that is neither (the reason is given); kept so that rewriting preserves it.
    Invalid(String),
}

/// A host entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The marker.
    pub marker: Marker,
    /// The hosts field as written (a pattern list, or one hashed name).
    pub hosts: String,
    /// The key, or `None` if its type is one we do not support (the line is kept but never
    /// matches a key).
    pub key: Option<PublicKey>,
    /// The text from the key type to the end of the line (key and comment).
    pub key_text: String,
}

impl Entry {
    /// Whether the hosts field is a hashed name.
    pub fn is_hashed(&self) -> bool {
        self.hosts.starts_with(HASH_MAGIC)
    }

    /// Whether `name` (already in `[host]:port` form when the port is not 22) matches this
    /// entry's hosts: a positive pattern match with no negation, or the hashed name.
    pub fn matches(&self, name: &str) -> bool {
        if self.is_hashed() {
            return hashed_name_matches(&self.hosts, name);
        }
        pattern::match_hostname(name, &self.hosts) == ListMatch::Match
    }
}

/// What the client's lookup found for a host and the key it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostKeyStatus {
    /// The key is known for the host, on this 1-based line.
    Match {
        /// The line.
        line: usize,
    },
    /// The host is known with a different key of the same type: the key has changed (or this
    /// is an attack). `line` is the first such entry.
    Mismatch {
        /// The line of the known key.
        line: usize,
        /// The key known there.
        known: PublicKey,
    },
    /// The key is listed as `@revoked` (for this host or any) on this line.
    Revoked {
        /// The line.
        line: usize,
    },
    /// The key is not known for this host. `other_keys` lists keys of other types known for
    /// it, with their lines (OpenSSH mentions them when asking the user).
    NotFound {
        /// Keys of other types known for the host.
        other_keys: Vec<(usize, PublicKey)>,
    },
}

/// A parsed `known_hosts` file, every line kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownHosts {
    lines: Vec<(String, Line)>,
}

impl KnownHosts {
    /// Parses a file. Never fails: bad lines become [`Line::Invalid`].
    pub fn parse(text: &str) -> Self {
        let lines = text.lines().map(|raw| (raw.to_owned(), parse_line(raw))).collect();
        Self { lines }
    }

    /// The lines with their raw text, in order (line numbers are index + 1).
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str, &Line)> + '_ {
        self.lines.iter().enumerate().map(|(i, (raw, line))| (i + 1, raw.as_str(), line))
    }

    /// The 1-based numbers of invalid lines.
    pub fn invalid_lines(&self) -> Vec<usize> {
        self.lines().filter(|(_, _, l)| matches!(l, Line::Invalid(_))).map(|(n, _, _)| n).collect()
    }

    /// The entries whose hosts match `host` on `port`, with their line numbers.
    pub fn find<'a>(
        &'a self,
        host: &str,
        port: u16,
    ) -> impl Iterator<Item = (usize, &'a Entry)> + 'a {
        let name = host_name_for(host, port);
        self.lines().filter_map(move |(n, _, line)| match line {
            Line::Entry(e) if e.matches(&name) => Some((n, e)),
            _ => None,
        })
    }

    /// The client's check of `key` presented by `host` on `port` (OpenSSH's
    /// `check_key_in_hostkeys`): revoked beats everything, then a matching key, then a key of
    /// the same type that differs.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        for (n, _, line) in self.lines() {
            if let Line::Entry(e) = line {
                if e.marker == Marker::Revoked && e.key.as_ref() == Some(key) {
                    return HostKeyStatus::Revoked { line: n };
                }
            }
        }
        let mut mismatch = None;
        let mut other_keys = Vec::new();
        for (n, e) in self.find(host, port) {
            let Some(known) = e.key.as_ref() else { continue };
            if e.marker != Marker::None {
                continue;
            }
            if known == key {
                return HostKeyStatus::Match { line: n };
            }
            if same_type(known, key) {
                mismatch.get_or_insert((n, known.clone()));
            } else {
                other_keys.push((n, known.clone()));
            }
        }
        match mismatch {
            Some((line, known)) => HostKeyStatus::Mismatch { line, known },
            None => HostKeyStatus::NotFound { other_keys },
        }
    }

    /// The file without the plain (unmarked) entries matching `host` on `port`, as
    /// `ssh-keygen -R` writes it; `@cert-authority` and `@revoked` lines stay. Returns the new
    /// text and the numbers of the removed lines.
    pub fn remove_host(&self, host: &str, port: u16) -> (String, Vec<usize>) {
        let name = host_name_for(host, port);
        let mut out = String::new();
        let mut removed = Vec::new();
        for (n, raw, line) in self.lines() {
            if let Line::Entry(e) = line {
                if e.marker == Marker::None && e.matches(&name) {
                    removed.push(n);
                    continue;
                }
            }
            out.push_str(raw);
            out.push('\n');
        }
        (out, removed)
    }

    /// The file with every plain host name hashed, as `ssh-keygen -H` writes it: a
    /// comma-separated list becomes one line per name; hashed names, names with wildcards or
    /// negation and marked lines stay as they are. Returns the text and whether anything was
    /// hashed.
    pub fn hash_all(&self, rng: &mut dyn SecureRandom) -> Result<(String, bool), super::KeyError> {
        let mut out = String::new();
        let mut hashed_any = false;
        for (_, raw, line) in self.lines() {
            match line {
                Line::Entry(e) if should_hash(e) => {
                    for line in hashed_lines(e, rng)? {
                        out.push_str(&line);
                        out.push('\n');
                    }
                    hashed_any = true;
                }
                _ => {
                    out.push_str(raw);
                    out.push('\n');
                }
            }
        }
        Ok((out, hashed_any))
    }
}

/// Whether `ssh-keygen -H` would hash this entry.
pub fn should_hash(entry: &Entry) -> bool {
    !entry.is_hashed() && entry.marker == Marker::None && !entry.hosts.contains(['*', '?', '!'])
}

/// The entry as hashed lines, one per name in its host list, lower-cased first.
pub fn hashed_lines(
    entry: &Entry,
    rng: &mut dyn SecureRandom,
) -> Result<Vec<String>, super::KeyError> {
    entry
        .hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            Ok(format!("{} {}", hash_host_name(&h.to_ascii_lowercase(), rng)?, entry.key_text))
        })
        .collect()
}

/// The name a host is looked up by: `host`, or `[host]:port` when the port is not 22.
pub fn host_name_for(host: &str, port: u16) -> String {
    if port == DEFAULT_PORT {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `|1|salt|hash` for `name` with a fresh salt from `rng`.
pub fn hash_host_name(name: &str, rng: &mut dyn SecureRandom) -> Result<String, super::KeyError> {
    let mut salt = [0; SHA1_LEN];
    rng.fill(&mut salt).map_err(|_| super::KeyError::Random)?;
    Ok(hash_host_name_with_salt(name, &salt))
}

/// `|1|salt|hash` for `name` with the given salt.
pub fn hash_host_name_with_salt(name: &str, salt: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
    let tag = ring::hmac::sign(&key, name.as_bytes());
    let b64 = &base64::engine::general_purpose::STANDARD;
    format!("{HASH_MAGIC}{}|{}", b64.encode(salt), b64.encode(tag.as_ref()))
}

/// A new line for a host's key: `host` (or `[host]:port`), or its hash when `hash` is set.
pub fn format_entry(
    host: &str,
    port: u16,
    key: &PublicKey,
    hash: bool,
    rng: &mut dyn SecureRandom,
) -> Result<String, super::KeyError> {
    let name = host_name_for(&host.to_ascii_lowercase(), port);
    let hosts = if hash { hash_host_name(&name, rng)? } else { name };
    Ok(format!("{hosts} {}", key.to_openssh()))
}

fn hashed_name_matches(hosts: &str, name: &str) -> bool {
    let Some(rest) = hosts.strip_prefix(HASH_MAGIC) else { return false };
    let Some((salt, hash)) = rest.split_once('|') else { return false };
    let b64 = &base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
    if salt.len() != SHA1_LEN || hash.len() != SHA1_LEN {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.to_ascii_lowercase().as_bytes(), &hash).is_ok()
}

fn same_type(a: &PublicKey, b: &PublicKey) -> bool {
    match (a.key_type(), b.key_type()) {
        // OpenSSH treats every ECDSA curve as one type when looking for a changed key.
        (KeyType::Ecdsa(_), KeyType::Ecdsa(_)) => true,
        (x, y) => x == y,
    }
}

fn parse_line(raw: &str) -> Line {
    let text = raw.trim_start_matches([' ', '\t']).trim_end_matches('\r');
    if text.is_empty() || text.starts_with('#') {
        return Line::Comment;
    }
    let (marker, text) = match text.split_once([' ', '\t']) {
        Some(("@cert-authority", rest)) => (Marker::CertAuthority, rest),
        Some(("@revoked", rest)) => (Marker::Revoked, rest),
        Some((m, _)) if m.starts_with('@') => return Line::Invalid("unknown marker".into()),
        _ => (Marker::None, text),
    };
    let text = text.trim_start_matches([' ', '\t']);
    let Some((hosts, key_text)) = text.split_once([' ', '\t']) else {
        return Line::Invalid("missing key".into());
    };
    let key_text = key_text.trim_start_matches([' ', '\t']);
    if key_text.is_empty() {
        return Line::Invalid("missing key".into());
    }
    if hosts.starts_with(HASH_MAGIC) && hosts.get(3..).is_none_or(|r| !r.contains('|')) {
        return Line::Invalid("bad hashed host".into());
    }
    let key = match parse_key_prefix(key_text) {
        Ok((key, _)) => Some(key),
        Err(super::KeyError::UnsupportedType(_)) => None,
        Err(e) => return Line::Invalid(e.to_string()),
    };
    Line::Entry(Entry { marker, hosts: hosts.to_owned(), key, key_text: key_text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::OsRandom;
    use crate::keys::PrivateKey;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::ed25519_from_seed(&[seed; 32]).unwrap().public_key().clone()
    }

    /// Lookup finds plain names, wildcards, comma lists, ports and hashed names, and honours
    /// negation.
    #[test]
    fn lookup_matches_every_host_form() {
        let (k1, k2) = (key(1), key(2));
        let hashed = hash_host_name_with_salt("hashed.example", &[7; 20]);
        let text = format!(
            "plain {a}\n*.wild,!bad.wild {a}\nx,y,z {a}\n[ported]:2222 {a}\n{hashed} {a}\n\
             other {b}\n",
            a = k1.to_openssh(),
            b = k2.to_openssh()
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.check("plain", 22, &k1), HostKeyStatus::Match { line: 1 });
        assert_eq!(kh.check("a.wild", 22, &k1), HostKeyStatus::Match { line: 2 });
        assert_eq!(kh.check("bad.wild", 22, &k1), HostKeyStatus::NotFound { other_keys: vec![] });
        assert_eq!(kh.check("Y", 22, &k1), HostKeyStatus::Match { line: 3 });
        assert_eq!(kh.check("ported", 2222, &k1), HostKeyStatus::Match { line: 4 });
        assert_eq!(kh.check("ported", 22, &k1), HostKeyStatus::NotFound { other_keys: vec![] });
        assert_eq!(kh.check("hashed.example", 22, &k1), HostKeyStatus::Match { line: 5 });
        assert_eq!(kh.check("other", 22, &k1), HostKeyStatus::Mismatch { line: 6, known: k2 });
    }

    /// A revoked key is reported even when the host also lists it; CA lines are not host keys;
    /// keys of another type are reported beside NotFound.
    #[test]
    fn revoked_beats_match_and_other_types_are_reported() {
        let k1 = key(1);
        let ecdsa = PrivateKey::generate(
            crate::keys::KeySpec::Ecdsa(crate::keys::EcdsaCurve::P256),
            &mut OsRandom::new(),
        )
        .unwrap()
        .public_key()
        .clone();
        let text = format!(
            "h {a}\n@revoked * {a}\n@cert-authority h {b}\nh2 {b}\n",
            a = k1.to_openssh(),
            b = ecdsa.to_openssh()
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.check("h", 22, &k1), HostKeyStatus::Revoked { line: 2 });
        assert_eq!(
            kh.check("h2", 22, &key(9)),
            HostKeyStatus::NotFound { other_keys: vec![(4, ecdsa.clone())] }
        );
        assert_eq!(
            kh.check("h", 22, &ecdsa),
            HostKeyStatus::NotFound { other_keys: vec![(1, k1.clone())] }
        );
    }

    /// Removing a host keeps comments, other hosts, marked and invalid lines; hashing splits
    /// comma lists and leaves wildcards alone, and the hashed file still finds every name.
    #[test]
    fn remove_and_hash_rewrite_like_ssh_keygen() {
        let k = key(3).to_openssh();
        let text = format!("# c\na {k}\n@revoked a {k}\nb,c {k}\nw* {k}\ninvalid-line\n\n");
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.invalid_lines(), vec![6]);
        let (out, removed) = kh.remove_host("a", 22);
        assert_eq!(removed, vec![2]);
        assert_eq!(out, format!("# c\n@revoked a {k}\nb,c {k}\nw* {k}\ninvalid-line\n\n"));

        let kh = KnownHosts::parse(&format!("# c\na {k}\nB,c {k}\nw* {k}\n"));
        let (out, any) = kh.hash_all(&mut OsRandom::new()).unwrap();
        assert!(any);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("|1|") && lines[2].starts_with("|1|"));
        assert_eq!(lines[4], format!("w* {k}"));
        let hashed = KnownHosts::parse(&out);
        for host in ["a", "b", "c"] {
            assert_eq!(hashed.find(host, 22).count(), 1, "{host}");
        }
    }

    /// Unknown markers, missing keys and broken key blobs are invalid; keys of unsupported
    /// types are kept but match nothing.
    #[test]
    fn classifies_bad_lines() {
        assert!(matches!(parse_line("@foo h ssh-ed25519 AAAA"), Line::Invalid(_)));
        assert!(matches!(parse_line("host-i "), Line::Invalid(_)));
        assert!(matches!(parse_line("h ssh-ed25519 AAAA!"), Line::Invalid(_)));
        let Line::Entry(e) = parse_line("h ssh-dss AAAAB3NzaC1kc3MAAA") else { panic!() };
        assert_eq!(e.key, None);
    }
}

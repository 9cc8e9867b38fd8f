//! Algorithm preferences as data: what we support in each negotiated category, the default
//! orders (OpenSSH 10's `myproposal.h`, less what we do not implement), and OpenSSH's
//! configuration syntax for changing a list.
//!
//! This is what `Ciphers`, `MACs`, `KexAlgorithms`, `HostKeyAlgorithms` and
//! `PubkeyAcceptedAlgorithms` in `sshd_config` / `ssh_config` go through ([`configure`]), and
//! what `conch -Q` lists ([`query`]).
//!
//! # Configuration syntax
//!
//! A value is a comma-separated list, taken relative to the default list of its category:
//!
//! - `a,b` replaces the default with exactly `a,b`;
//! - `+a,b` appends `a,b` to the default (names already present stay where they are);
//! - `-pattern,...` removes from the default every name matched by the patterns, where `*`
//!   matches any run of characters, `?` any one character, and a pattern starting with `!`
//!   protects the names it matches (OpenSSH's `match_filter_denylist`);
//! - `^a,b` puts `a,b` first, followed by the rest of the default.
//!
//! Outside `-` lists every name must be one we support, exactly: an unknown name is an error
//! naming it (OpenSSH, too, refuses a "bad SSH2 cipher spec"). A result with no names is an
//! error.

use std::fmt;

use super::cipher::{cipher_by_name, CIPHER_NAMES};
use super::compression::COMPRESSION_NAMES;
use super::kex::KEX_NAMES;
use super::mac::MAC_NAMES;

/// A negotiated category of algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// Key exchange methods (`KexAlgorithms`).
    Kex,
    /// Host key and public key signature algorithms (`HostKeyAlgorithms`,
    /// `PubkeyAcceptedAlgorithms`, `CASignatureAlgorithms`).
    HostKey,
    /// Ciphers (`Ciphers`).
    Cipher,
    /// MACs (`MACs`).
    Mac,
    /// Compression methods.
    Compression,
}

/// Which end of the connection a default list is for (the defaults differ for key exchange:
/// OpenSSH 10's server no longer offers finite-field Diffie-Hellman).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The connecting end.
    Client,
    /// The accepting end.
    Server,
}

/// Signature algorithm names we support for host keys and public key authentication.
pub const HOST_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// Key type names (`conch -Q key`).
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// OpenSSH 10's server list: the hybrids, X25519 and the NIST curves, no finite-field DH
/// (`KEX_NAMES` is kept in preference order for this).
const SERVER_KEX: &[&str] = KEX_NAMES.split_at(8).0;

/// OpenSSH 10's client list: the server's, then DH groups 16, 18 and 14 (OpenSSH also offers
/// `diffie-hellman-group-exchange-sha256`, which we do not implement, before group 16). Only
/// `diffie-hellman-group14-sha1` is left out.
const CLIENT_KEX: &[&str] = KEX_NAMES.split_at(11).0;

/// OpenSSH 10's order, less the certificate and security-key algorithms; never `ssh-rsa`.
const DEFAULT_HOST_KEY: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// Every cipher we have, which `CIPHER_NAMES` lists in OpenSSH 10's order.
const DEFAULT_CIPHER: &[&str] = CIPHER_NAMES;

/// OpenSSH 10's MAC order without its UMAC variants (we have none) and without SHA-1: the
/// SHA-1 MACs stay available (`MACs +hmac-sha1-etm@openssh.com`) but are not offered unasked.
const DEFAULT_MAC: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
];

const DEFAULT_COMPRESSION: &[&str] = &["none", "zlib@openssh.com"];

impl Category {
    /// Every name we implement in this category.
    pub fn supported(self) -> &'static [&'static str] {
        match self {
            Self::Kex => KEX_NAMES,
            Self::HostKey => HOST_KEY_ALGORITHMS,
            Self::Cipher => CIPHER_NAMES,
            Self::Mac => MAC_NAMES,
            Self::Compression => COMPRESSION_NAMES,
        }
    }

    /// The default preference order for `side`.
    pub fn defaults(self, side: Side) -> &'static [&'static str] {
        match (self, side) {
            (Self::Kex, Side::Client) => CLIENT_KEX,
            (Self::Kex, Side::Server) => SERVER_KEX,
            (Self::HostKey, _) => DEFAULT_HOST_KEY,
            (Self::Cipher, _) => DEFAULT_CIPHER,
            (Self::Mac, _) => DEFAULT_MAC,
            (Self::Compression, _) => DEFAULT_COMPRESSION,
        }
    }

    /// A lower-case noun for messages: "key exchange", "cipher", ...
    pub fn noun(self) -> &'static str {
        match self {
            Self::Kex => "key exchange algorithm",
            Self::HostKey => "signature algorithm",
            Self::Cipher => "cipher",
            Self::Mac => "MAC",
            Self::Compression => "compression method",
        }
    }
}

/// A configured list that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlgorithmListError {
    /// A name we do not implement (or a pattern where only names are allowed).
    Unknown {
        /// The list's category.
        category: Category,
        /// The offending name, as written.
        name: String,
    },
    /// The list ends up with no algorithms at all.
    Empty(Category),
}

impl fmt::Display for AlgorithmListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { category, name } => write!(f, "unknown {} \"{name}\"", category.noun()),
            Self::Empty(category) => write!(f, "no {} left in the list", category.noun()),
        }
    }
}

impl std::error::Error for AlgorithmListError {}

/// The list that configuration value `value` gives for `category`, relative to the defaults
/// for `side` (see the module docs for the syntax).
pub fn configure(
    category: Category,
    side: Side,
    value: &str,
) -> Result<Vec<&'static str>, AlgorithmListError> {
    let defaults = category.defaults(side);
    let value = value.trim();
    let list = if let Some(patterns) = value.strip_prefix('-') {
        defaults
            .iter()
            .copied()
            .filter(|name| match_pattern_list(name, patterns) != Some(true))
            .collect()
    } else if let Some(names) = value.strip_prefix('+') {
        concat_unique(defaults, &resolve_names(category, names)?)
    } else if let Some(names) = value.strip_prefix('^') {
        concat_unique(&resolve_names(category, names)?, defaults)
    } else {
        concat_unique(&resolve_names(category, value)?, &[])
    };
    if list.is_empty() {
        return Err(AlgorithmListError::Empty(category));
    }
    Ok(list)
}

/// The five negotiated lists for one side, starting from the defaults; what a transport
/// configuration holds and what KEXINIT is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preferences {
    side: Side,
    kex: Vec<&'static str>,
    host_key: Vec<&'static str>,
    cipher: Vec<&'static str>,
    mac: Vec<&'static str>,
    compression: Vec<&'static str>,
}

impl Preferences {
    /// OpenSSH 10's defaults for `side`.
    pub fn defaults(side: Side) -> Self {
        Self {
            side,
            kex: Category::Kex.defaults(side).to_vec(),
            host_key: Category::HostKey.defaults(side).to_vec(),
            cipher: Category::Cipher.defaults(side).to_vec(),
            mac: Category::Mac.defaults(side).to_vec(),
            compression: Category::Compression.defaults(side).to_vec(),
        }
    }

    /// Applies a configuration value to one category (see [`configure`]: relative to the
    /// defaults, as OpenSSH applies each keyword once). On error the list is unchanged.
    pub fn configure(&mut self, category: Category, value: &str) -> Result<(), AlgorithmListError> {
        let list = configure(category, self.side, value)?;
        *self.list_mut(category) = list;
        Ok(())
    }

    /// The side these preferences are for.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The current list for `category`, most preferred first.
    pub fn list(&self, category: Category) -> &[&'static str] {
        match category {
            Category::Kex => &self.kex,
            Category::HostKey => &self.host_key,
            Category::Cipher => &self.cipher,
            Category::Mac => &self.mac,
            Category::Compression => &self.compression,
        }
    }

    fn list_mut(&mut self, category: Category) -> &mut Vec<&'static str> {
        match category {
            Category::Kex => &mut self.kex,
            Category::HostKey => &mut self.host_key,
            Category::Cipher => &mut self.cipher,
            Category::Mac => &mut self.mac,
            Category::Compression => &mut self.compression,
        }
    }
}

/// The list `conch -Q topic` prints, for OpenSSH's topics (`cipher`, `cipher-auth`, `mac`,
/// `kex`, `key`, `key-plain`, `key-sig`, `sig`, `compression`) and, case-insensitively, the
/// configuration keywords (`Ciphers`, `MACs`, `KexAlgorithms`, `HostKeyAlgorithms`,
/// `PubkeyAcceptedAlgorithms`, `HostbasedAcceptedAlgorithms`, `CASignatureAlgorithms`).
pub fn query(topic: &str) -> Option<Vec<&'static str>> {
    let supported = |category: Category| Some(category.supported().to_vec());
    match topic.to_ascii_lowercase().as_str() {
        "cipher" | "ciphers" => supported(Category::Cipher),
        "cipher-auth" => Some(
            CIPHER_NAMES
                .iter()
                .copied()
                .filter(|n| cipher_by_name(n).is_some_and(|c| c.is_aead()))
                .collect(),
        ),
        "mac" | "macs" => supported(Category::Mac),
        "kex" | "kexalgorithms" => supported(Category::Kex),
        "key" | "key-plain" => Some(KEY_TYPES.to_vec()),
        "key-sig"
        | "sig"
        | "hostkeyalgorithms"
        | "pubkeyacceptedalgorithms"
        | "pubkeyacceptedkeytypes"
        | "hostbasedacceptedalgorithms"
        | "casignaturealgorithms" => supported(Category::HostKey),
        "compression" => supported(Category::Compression),
        _ => None,
    }
}

/// Every name of `names` (comma-separated), each checked to be one we support.
fn resolve_names(category: Category, names: &str) -> Result<Vec<&'static str>, AlgorithmListError> {
    names
        .split(',')
        .map(|name| {
            category
                .supported()
                .iter()
                .copied()
                .find(|known| *known == name)
                .ok_or_else(|| AlgorithmListError::Unknown { category, name: name.to_owned() })
        })
        .collect()
}

/// Public key authentication algorithms (`PubkeyAcceptedAlgorithms`): the signature
/// algorithms and their OpenSSH certificate forms.
pub const PUBKEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// OpenSSH's default `PubkeyAcceptedAlgorithms`, less the security-key types: certificates
/// first, never SHA-1 `ssh-rsa`.
pub const DEFAULT_PUBKEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// `PubkeyAcceptedAlgorithms`: as [`configure`], over [`PUBKEY_ALGORITHMS`] with
/// [`DEFAULT_PUBKEY_ALGORITHMS`] as the default, and with OpenSSH's wildcards allowed in every
/// form of list (`ssh-ed25519*,*-cert-v01@openssh.com`): a pattern stands for the names it
/// matches, in [`PUBKEY_ALGORITHMS`]' order (`kex_assemble_names`). A plain name must be one we
/// support.
pub fn configure_pubkey(value: &str) -> Result<Vec<&'static str>, AlgorithmListError> {
    let category = Category::HostKey;
    let defaults = DEFAULT_PUBKEY_ALGORITHMS;
    let expand = |names: &str| -> Result<Vec<&'static str>, AlgorithmListError> {
        let mut out = Vec::new();
        for name in names.split(',') {
            if name.contains(['*', '?']) {
                out.extend(
                    PUBKEY_ALGORITHMS
                        .iter()
                        .copied()
                        .filter(|known| match_pattern(known.as_bytes(), name.as_bytes())),
                );
            } else {
                let known = PUBKEY_ALGORITHMS.iter().copied().find(|known| *known == name);
                out.push(known.ok_or_else(|| AlgorithmListError::Unknown {
                    category,
                    name: name.to_owned(),
                })?);
            }
        }
        Ok(out)
    };
    let value = value.trim();
    let list = if let Some(patterns) = value.strip_prefix('-') {
        defaults
            .iter()
            .copied()
            .filter(|name| match_pattern_list(name, patterns) != Some(true))
            .collect()
    } else if let Some(names) = value.strip_prefix('+') {
        concat_unique(defaults, &expand(names)?)
    } else if let Some(names) = value.strip_prefix('^') {
        concat_unique(&expand(names)?, defaults)
    } else {
        concat_unique(&expand(value)?, &[])
    };
    if list.is_empty() {
        return Err(AlgorithmListError::Empty(category));
    }
    Ok(list)
}

/// `first` then `second`, keeping only the first occurrence of each name.
fn concat_unique(first: &[&'static str], second: &[&'static str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::with_capacity(first.len() + second.len());
    for name in first.iter().chain(second) {
        if !out.contains(name) {
            out.push(name);
        }
    }
    out
}

/// OpenSSH's `match_pattern_list` without case folding: `Some(false)` if a negated pattern
/// (`!pat`) matches, else `Some(true)` if a plain pattern matches, else `None`.
fn match_pattern_list(name: &str, patterns: &str) -> Option<bool> {
    let mut matched = None;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if match_pattern(name.as_bytes(), pattern.as_bytes()) {
            if negated {
                return Some(false);
            }
            matched = Some(true);
        }
    }
    matched
}

/// Glob matching with `*` and `?`, in linear time (backtracking only to the last `*`).
fn match_pattern(name: &[u8], pattern: &[u8]) -> bool {
    let (mut n, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                n += 1;
                p += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    star = Some((star_p, star_n + 1));
                    p = star_p + 1;
                    n = star_n + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{kex_by_name, mac_by_name};
    use crate::keys::SignatureAlgorithm;

    /// PubkeyAcceptedAlgorithms takes certificate names and wildcards, which stand for the
    /// names they match; its default starts with the certificate forms.
    #[test]
    fn pubkey_lists_take_certificates_and_wildcards() {
        assert_eq!(configure_pubkey("*-cert-v01@openssh.com").unwrap(), &PUBKEY_ALGORITHMS[..7]);
        assert_eq!(
            configure_pubkey("ssh-ed25519*,ssh-rsa*").unwrap(),
            [
                "ssh-ed25519-cert-v01@openssh.com",
                "ssh-ed25519",
                "ssh-rsa-cert-v01@openssh.com",
                "ssh-rsa"
            ]
        );
        let plus = configure_pubkey("+ssh-rsa").unwrap();
        assert_eq!(plus.first(), Some(&"ssh-ed25519-cert-v01@openssh.com"));
        assert_eq!(plus.last(), Some(&"ssh-rsa"));
        assert!(configure_pubkey("-*-cert-v01@openssh.com")
            .unwrap()
            .iter()
            .all(|n| !n.contains("cert")));
        assert!(matches!(configure_pubkey("ssh-foo"), Err(AlgorithmListError::Unknown { .. })));
        assert!(matches!(configure_pubkey("nothing*"), Err(AlgorithmListError::Empty(_))));
    }

    /// The defaults are OpenSSH 10's, in its order: PQ hybrids first, DH only on the client,
    /// chacha20-poly1305 first, EtM MACs first, and never `ssh-rsa`.
    #[test]
    fn defaults_follow_openssh_10() {
        let client = Category::Kex.defaults(Side::Client);
        assert_eq!(
            &client[..3],
            [
                "mlkem768x25519-sha256",
                "sntrup761x25519-sha512",
                "sntrup761x25519-sha512@openssh.com"
            ]
        );
        assert_eq!(
            &client[8..],
            [
                "diffie-hellman-group16-sha512",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group14-sha256"
            ]
        );
        assert!(!Category::Kex
            .defaults(Side::Server)
            .iter()
            .any(|n| n.starts_with("diffie-hellman")));
        assert!(!client.contains(&"diffie-hellman-group14-sha1"));
        assert_eq!(Category::Cipher.defaults(Side::Server)[0], "chacha20-poly1305@openssh.com");
        let macs = Category::Mac.defaults(Side::Client);
        let first_classic = macs.iter().position(|m| !m.contains("-etm@")).unwrap();
        assert!(macs[first_classic..].iter().all(|m| !m.contains("-etm@")));
        assert!(!Category::HostKey.defaults(Side::Client).contains(&"ssh-rsa"));
        assert_eq!(Category::Compression.defaults(Side::Server), ["none", "zlib@openssh.com"]);
    }

    /// Every default is supported, and every supported name has an implementation behind it.
    #[test]
    fn every_listed_name_is_implemented() {
        let categories = [
            Category::Kex,
            Category::HostKey,
            Category::Cipher,
            Category::Mac,
            Category::Compression,
        ];
        for category in categories {
            for side in [Side::Client, Side::Server] {
                for name in category.defaults(side) {
                    assert!(category.supported().contains(name), "{category:?} default {name}");
                }
            }
            for name in category.supported() {
                let implemented = match category {
                    Category::Kex => kex_by_name(name).is_some(),
                    Category::HostKey => SignatureAlgorithm::from_name(name).is_some(),
                    Category::Cipher => cipher_by_name(name).is_some(),
                    Category::Mac => mac_by_name(name).is_some(),
                    Category::Compression => COMPRESSION_NAMES.contains(name),
                };
                assert!(implemented, "{category:?} {name}");
            }
        }
    }

    /// A plain list replaces the default, in the order written, without duplicates.
    #[test]
    fn a_plain_list_replaces_the_default() {
        let list = configure(
            Category::Cipher,
            Side::Client,
            "aes256-ctr,aes128-gcm@openssh.com,aes256-ctr",
        )
        .unwrap();
        assert_eq!(list, ["aes256-ctr", "aes128-gcm@openssh.com"]);
    }

    /// `+` appends to the default; names already there keep their place.
    #[test]
    fn plus_appends_to_the_default() {
        let list = configure(Category::HostKey, Side::Server, "+ssh-rsa,ssh-ed25519").unwrap();
        assert_eq!(list.last(), Some(&"ssh-rsa"));
        assert_eq!(list[0], "ssh-ed25519");
        assert_eq!(list.len(), DEFAULT_HOST_KEY.len() + 1);
        let kex = configure(Category::Kex, Side::Server, "+diffie-hellman-group14-sha1").unwrap();
        assert_eq!(kex.last(), Some(&"diffie-hellman-group14-sha1"));
    }

    /// `-` removes the names its patterns match, with `*`, `?` and `!` as OpenSSH's
    /// `match_filter_denylist`; patterns matching nothing are ignored.
    #[test]
    fn minus_removes_matching_names_with_wildcards() {
        let list = configure(Category::Cipher, Side::Client, "-aes*-ctr").unwrap();
        assert_eq!(
            list,
            ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
        );
        let list = configure(Category::Mac, Side::Client, "-*sha1*").unwrap();
        assert!(list.iter().all(|m| !m.contains("sha1")));
        assert_eq!(list.len(), 4);
        let list = configure(Category::Cipher, Side::Client, "-aes1?8-*,nonexistent").unwrap();
        assert_eq!(
            list,
            ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes192-ctr", "aes256-ctr"]
        );
        let list =
            configure(Category::Cipher, Side::Client, "-aes*,!aes256-gcm@openssh.com").unwrap();
        assert_eq!(list, ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"]);
        let list = configure(Category::Kex, Side::Client, "-diffie-hellman-*,sntrup*").unwrap();
        assert_eq!(list[0], "mlkem768x25519-sha256");
        assert_eq!(list[1], "curve25519-sha256");
        assert_eq!(list.len(), 6);
    }

    /// `^` puts the named algorithms first, then the rest of the default in order.
    #[test]
    fn caret_puts_names_first() {
        let list = configure(Category::Cipher, Side::Server, "^aes256-gcm@openssh.com,aes256-ctr")
            .unwrap();
        assert_eq!(
            list,
            [
                "aes256-gcm@openssh.com",
                "aes256-ctr",
                "chacha20-poly1305@openssh.com",
                "aes128-gcm@openssh.com",
                "aes128-ctr",
                "aes192-ctr"
            ]
        );
    }

    /// Unknown names, wildcards outside `-`, negations and empty items are errors that name
    /// the offending entry; so is a list left empty.
    #[test]
    fn rejects_unknown_names_and_empty_results() {
        let cases = [
            (Category::Cipher, "aes128-cbc", "aes128-cbc"),
            (Category::Cipher, "+3des-cbc", "3des-cbc"),
            (Category::Mac, "^umac-64@openssh.com", "umac-64@openssh.com"),
            (Category::Cipher, "aes*", "aes*"),
            (Category::Kex, "curve25519-sha256,,ecdh-sha2-nistp256", ""),
            (Category::HostKey, "!ssh-rsa", "!ssh-rsa"),
            (Category::HostKey, "ssh-dss", "ssh-dss"),
        ];
        for (category, value, name) in cases {
            let err = configure(category, Side::Client, value).unwrap_err();
            assert_eq!(err, AlgorithmListError::Unknown { category, name: name.into() }, "{value}");
            assert!(err.to_string().contains(&format!("\"{name}\"")), "{err}");
        }
        assert_eq!(
            configure(Category::Cipher, Side::Client, "-*"),
            Err(AlgorithmListError::Empty(Category::Cipher))
        );
        assert!(configure(Category::Cipher, Side::Client, "").is_err());
    }

    /// Preferences start at the side's defaults, take configuration per category, and keep
    /// the old list when a value is rejected.
    #[test]
    fn preferences_apply_configuration_per_category() {
        let mut prefs = Preferences::defaults(Side::Server);
        assert_eq!(prefs.list(Category::Kex), Category::Kex.defaults(Side::Server));
        prefs.configure(Category::Cipher, "aes256-gcm@openssh.com").unwrap();
        assert_eq!(prefs.list(Category::Cipher), ["aes256-gcm@openssh.com"]);
        assert_eq!(prefs.list(Category::Mac), DEFAULT_MAC);
        let err = prefs.configure(Category::Mac, "hmac-md5").unwrap_err();
        assert_eq!(err.to_string(), "unknown MAC \"hmac-md5\"");
        assert_eq!(prefs.list(Category::Mac), DEFAULT_MAC);
        prefs.configure(Category::Kex, "+diffie-hellman-group14-sha256").unwrap();
        assert_eq!(prefs.list(Category::Kex).last(), Some(&"diffie-hellman-group14-sha256"));
        assert_eq!(prefs.side(), Side::Server);
    }

    /// No SHA-1 MAC is offered unless configured, yet each can be added back with `+`.
    #[test]
    fn sha1_macs_are_supported_but_not_offered_by_default() {
        for side in [Side::Client, Side::Server] {
            let defaults = Category::Mac.defaults(side);
            assert!(defaults.iter().all(|name| !name.contains("sha1")), "{defaults:?}");
            assert!(defaults.iter().all(|name| MAC_NAMES.contains(name)));
            let mut prefs = Preferences::defaults(side);
            prefs.configure(Category::Mac, "+hmac-sha1-etm@openssh.com").unwrap();
            assert_eq!(prefs.list(Category::Mac).last(), Some(&"hmac-sha1-etm@openssh.com"));
        }
    }

    /// Glob matching handles leading, trailing and repeated stars, and `?`.
    #[test]
    fn glob_matching_follows_openssh() {
        let cases = [
            ("aes128-ctr", "aes*", true),
            ("aes128-ctr", "*ctr", true),
            ("aes128-ctr", "*", true),
            ("aes128-ctr", "a*1*8*r", true),
            ("aes128-ctr", "aes???-ctr", true),
            ("aes128-ctr", "aes??-ctr", false),
            ("aes128-ctr", "aes128-ctr*", true),
            ("aes128-ctr", "aes128", false),
            ("", "*", true),
            ("", "?", false),
            ("hmac-sha1", "HMAC-SHA1", false),
        ];
        for (name, pattern, want) in cases {
            assert_eq!(
                match_pattern(name.as_bytes(), pattern.as_bytes()),
                want,
                "{name} ~ {pattern}"
            );
        }
    }

    /// `-Q` topics and config keywords list what we support; AEAD ciphers for `cipher-auth`.
    #[test]
    fn query_lists_supported_algorithms() {
        assert_eq!(query("cipher").unwrap(), CIPHER_NAMES);
        assert_eq!(query("Ciphers").unwrap(), CIPHER_NAMES);
        assert_eq!(
            query("cipher-auth").unwrap(),
            ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
        );
        assert!(query("kex").unwrap().contains(&"mlkem768x25519-sha256"));
        assert!(query("PubkeyAcceptedAlgorithms").unwrap().contains(&"ssh-rsa"));
        assert_eq!(query("key").unwrap().len(), 5);
        assert_eq!(query("compression").unwrap(), ["none", "zlib@openssh.com", "zlib"]);
        assert!(query("protocol-version").is_none());
    }
}

//! [`StaticUsers`]: an in-memory user table for embedded servers.

use std::collections::HashMap;
use std::fmt;

use subtle::ConstantTimeEq;
use twine_core::Deferred;
use zeroize::Zeroizing;

use super::{AuthBackend, AuthRequest};
use crate::keys::PublicKey;
use crate::server::Restrictions;
use crate::userauth::{Attempt, Decision, Password};

/// A fixed table of users with passwords and public keys, for servers embedded in an
/// application (no system accounts involved).
///
/// Passwords are kept either as plain bytes, compared in constant time, or as crypt(3)
/// SHA-crypt hashes (`$6$...` SHA-512 or `$5$...` SHA-256, as in `/etc/shadow`), checked on a
/// thread. Each user carries the [`Restrictions`] its sessions get.
///
/// ```
/// use twine_conch::server::{Restrictions, StaticUsers};
///
/// let users = StaticUsers::new()
///     .with_password("alice", "correct horse battery staple")
///     .with_restrictions("alice", Restrictions::restricted());
/// # let _ = users;
/// ```
#[derive(Clone, Default)]
pub struct StaticUsers {
    users: HashMap<String, Entry>,
}

#[derive(Clone, Default)]
struct Entry {
    password: Option<Secret>,
    keys: Vec<PublicKey>,
    restrictions: Restrictions,
}

#[derive(Clone)]
enum Secret {
    Plain(Zeroizing<Vec<u8>>),
    Crypt(String),
}

impl StaticUsers {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `user` in with `password`.
    #[must_use]
    pub fn with_password(mut self, user: &str, password: impl AsRef<[u8]>) -> Self {
        let secret = Secret::Plain(Zeroizing::new(password.as_ref().to_vec()));
        self.entry(user).password = Some(secret);
        self
    }

    /// Lets `user` in with the password whose crypt(3) hash is `hash` (`$6$...` or `$5$...`).
    ///
    /// # Errors
    ///
    /// [`twine_core::ErrorKind::InvalidInput`] if `hash` is not a SHA-crypt hash.
    pub fn with_password_hash(mut self, user: &str, hash: &str) -> Result<Self, twine_core::Error> {
        if CryptHash::parse(hash).is_none() {
            return Err(twine_core::Error::new(
                twine_core::ErrorKind::InvalidInput,
                "not a $5$ or $6$ SHA-crypt hash",
            ));
        }
        self.entry(user).password = Some(Secret::Crypt(hash.to_owned()));
        Ok(self)
    }

    /// Lets `user` in with `key`.
    #[must_use]
    pub fn with_key(mut self, user: &str, key: PublicKey) -> Self {
        self.entry(user).keys.push(key);
        self
    }

    /// Gives `user`'s sessions these restrictions (default: none).
    #[must_use]
    pub fn with_restrictions(mut self, user: &str, restrictions: Restrictions) -> Self {
        self.entry(user).restrictions = restrictions;
        self
    }

    fn entry(&mut self, user: &str) -> &mut Entry {
        self.users.entry(user.to_owned()).or_default()
    }
}

impl fmt::Debug for StaticUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        f.debug_struct("StaticUsers").field("users", &names).finish()
    }
}

impl AuthBackend for StaticUsers {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let offload = &request.offload;
        let Some(entry) = self.users.get(&request.user) else {
            return offload.succeed(Decision::Reject);
        };
        let accept = || Decision::Accept(entry.restrictions.clone());
        match &request.attempt {
            Attempt::PublicKeyQuery { key, .. } | Attempt::PublicKey { key, .. } => {
                let known = entry.keys.iter().any(|k| k == key);
                offload.succeed(if known { accept() } else { Decision::Reject })
            }
            Attempt::Password { password, new_password: None } => match &entry.password {
                Some(Secret::Plain(expected)) => {
                    let ok = password.matches(expected);
                    offload.succeed(if ok { accept() } else { Decision::Reject })
                }
                Some(Secret::Crypt(hash)) => {
                    let (hash, password) = (hash.clone(), password.clone());
                    let restrictions = entry.restrictions.clone();
                    offload.run(move || {
                        if crypt_matches(&hash, &password) {
                            Decision::Accept(restrictions)
                        } else {
                            Decision::Reject
                        }
                    })
                }
                None => offload.succeed(Decision::Reject),
            },
            _ => offload.succeed(Decision::Reject),
        }
    }
}

/// A parsed `$5$`/`$6$` hash: `$id$[rounds=N$]salt$hash`.
struct CryptHash<'a> {
    sha512: bool,
    rounds: Option<usize>,
    salt: &'a str,
    hash: &'a str,
}

impl<'a> CryptHash<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix('$')?;
        let (id, rest) = rest.split_once('$')?;
        let sha512 = match id {
            "6" => true,
            "5" => false,
            _ => return None,
        };
        let (rounds, rest) = match rest.strip_prefix("rounds=") {
            Some(tail) => {
                let (n, tail) = tail.split_once('$')?;
                (Some(n.parse().ok()?), tail)
            }
            None => (None, rest),
        };
        let (salt, hash) = rest.split_once('$')?;
        Some(Self { sha512, rounds, salt, hash })
    }
}

/// Whether `password` hashes to `hash` (compared in constant time). Blocking: thousands of
/// rounds of SHA-2.
pub(super) fn crypt_matches(hash: &str, password: &Password) -> bool {
    let Some(parsed) = CryptHash::parse(hash) else { return false };
    // crypt(3) clamps the rounds to 1000..=999_999_999 and truncates the salt to 16 bytes.
    let rounds = parsed.rounds.unwrap_or(5000).clamp(1000, 999_999_999);
    let salt = parsed.salt.as_bytes().get(..16).unwrap_or(parsed.salt.as_bytes());
    let computed = if parsed.sha512 {
        sha_crypt::Sha512Params::new(rounds)
            .ok()
            .and_then(|params| sha_crypt::sha512_crypt_b64(password.as_bytes(), salt, &params).ok())
    } else {
        sha_crypt::Sha256Params::new(rounds)
            .ok()
            .and_then(|params| sha_crypt::sha256_crypt_b64(password.as_bytes(), salt, &params).ok())
    };
    computed.is_some_and(|computed| bool::from(computed.as_bytes().ct_eq(parsed.hash.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash made by glibc's crypt(3) (`openssl passwd -6 -salt saltsaltsalt hunter2` agrees) checks.
    #[test]
    fn checks_a_glibc_sha512_crypt_hash() {
        let hash =
            "$6$saltsaltsalt$/YcSJBZ1GwOaYU2XCNxvWBX3MbYsX7qkf0.0L28t35vap3Pr7yS0JA8iUjaUrIKpD1\
                    vbB841OQkrlcX47Jjuy/";
        assert!(crypt_matches(hash, &Password::from("hunter2")));
        assert!(!crypt_matches(hash, &Password::from("hunter3")));
    }

    /// A hash with explicit rounds and a SHA-256 hash both parse and check.
    #[test]
    fn checks_rounds_and_sha256_hashes() {
        let params = sha_crypt::Sha256Params::new(1000).unwrap();
        let b64 = sha_crypt::sha256_crypt_b64(b"pw", b"abc", &params).unwrap();
        let hash = format!("$5$rounds=1000$abc${b64}");
        assert!(crypt_matches(&hash, &Password::from("pw")));
        assert!(!crypt_matches(&hash, &Password::from("pw2")));
        assert!(CryptHash::parse("$1$md5$nope").is_none());
        assert!(CryptHash::parse("plain").is_none());
    }
}

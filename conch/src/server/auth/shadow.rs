//! [`ShadowPasswords`]: passwords checked against `/etc/shadow`, as sshd does with `UsePAM no`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use twine_core::Deferred;

use super::users::crypt_matches;
use super::{AccountStatus, AuthBackend, AuthRequest, LoginRequest};
use crate::server::Restrictions;
use crate::userauth::{Attempt, Decision, Password};

/// Password authentication from the shadow file (`getspnam`), for servers that run without
/// PAM: SHA-crypt (`$6$`, `$5$`) and yescrypt (`$y$`, Debian's default) hashes.
///
/// A locked password (`!...`, `*`) never matches; an empty one only with
/// [`with_empty_passwords`](Self::with_empty_passwords). As sshd's `allowed_user` does with
/// `UsePAM no`, [`check_account`](AuthBackend::check_account) refuses an expired account and
/// a locked one (a password field starting with `!`, as `usermod -L` and `passwd -l` leave it;
/// a `*` only disables passwords) for every method, public keys included. The file is read on
/// the reactor's thread pool for each attempt, so a changed password counts at once.
#[derive(Clone, Debug)]
pub struct ShadowPasswords {
    path: PathBuf,
    empty_passwords: bool,
}

impl Default for ShadowPasswords {
    fn default() -> Self {
        Self::new()
    }
}

/// One line of the shadow file, with what the checks need.
#[derive(Debug, PartialEq, Eq)]
struct ShadowEntry {
    hash: String,
    /// Day of the last change (`0`: must change now).
    last_change: Option<i64>,
    max_days: Option<i64>,
    inactive_days: Option<i64>,
    /// Day the account expires.
    expire: Option<i64>,
}

impl ShadowEntry {
    fn parse(line: &str, user: &str) -> Option<Self> {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let hash = fields.next()?.to_owned();
        let mut number = || fields.next().and_then(|f| f.trim().parse::<i64>().ok());
        let last_change = number();
        let _min = number();
        let max_days = number();
        let _warn = number();
        let inactive_days = number();
        let expire = number();
        Some(Self { hash, last_change, max_days, inactive_days, expire })
    }

    /// Whether the account has expired on `today` (days since 1970), as sshd's
    /// `auth_shadow_acctexpired` says.
    fn account_expired(&self, today: i64) -> bool {
        self.expire.is_some_and(|day| day >= 0 && today >= day)
    }

    /// Whether the account is locked as sshd sees it on Linux (`LOCKED_PASSWD_PREFIX`, `!`):
    /// then no method may log in.
    fn locked(&self) -> bool {
        is_locked(&self.hash)
    }

    /// Why the password may not be used on `today`, if it may not.
    fn password_unusable(&self, today: i64) -> Option<&'static str> {
        if self.hash.starts_with('!') || self.hash.starts_with('*') {
            return Some("account is locked");
        }
        if self.last_change == Some(0) {
            return Some("password must be changed");
        }
        if let (Some(last), Some(max)) = (self.last_change, self.max_days) {
            if (0..99_999).contains(&max) {
                let inactive = self.inactive_days.filter(|d| *d >= 0).unwrap_or(0);
                if today > last + max + inactive {
                    return Some("password has expired");
                }
            }
        }
        None
    }
}

/// Whether a password field (from the shadow file, or `/etc/passwd` for an account without a
/// shadow entry) says the account is locked: it starts with `!`. An empty field or `*` does
/// not (sshd then still lets keys in).
fn is_locked(field: &str) -> bool {
    field.starts_with('!')
}

/// Today, in days since 1970 (the shadow file's unit).
fn today(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0))
}

/// Whether `password` hashes to `hash`, by the hash's kind. Blocking.
fn hash_matches(user: &str, hash: &str, password: &Password) -> bool {
    if hash.starts_with("$6$") || hash.starts_with("$5$") {
        crypt_matches(hash, password)
    } else if hash.starts_with("$y$") {
        yescrypt_matches(user, hash, password)
    } else {
        let kind = hash.split('$').nth(1).unwrap_or("DES");
        log::warn!(
            "password of {user}: hash type {kind:?} is not supported (only $6$, $5$ and $y$); \
             password refused"
        );
        false
    }
}

fn yescrypt_matches(user: &str, hash: &str, password: &Password) -> bool {
    use yescrypt::{PasswordHashRef, PasswordVerifier, Yescrypt};
    match PasswordHashRef::new(hash) {
        Ok(parsed) => Yescrypt::default().verify_password(password.as_bytes(), parsed).is_ok(),
        Err(err) => {
            log::warn!(
                "password of {user}: yescrypt hash not understood ({err}); password refused"
            );
            false
        }
    }
}

type Delegate = dyn Fn(super::ConnectionId, &str, &Password) -> bool + Send + Sync;

static DELEGATE: std::sync::OnceLock<Box<Delegate>> = std::sync::OnceLock::new();

/// Makes every [`ShadowPasswords`] of this process ask `delegate(connection, user, password)`
/// instead of reading `/etc/shadow` (which then checks expiry too): a privilege-separated
/// worker asks its monitor. Set once; returns `false` if it was already set.
pub fn set_password_delegate(
    delegate: impl Fn(super::ConnectionId, &str, &Password) -> bool + Send + Sync + 'static,
) -> bool {
    DELEGATE.set(Box::new(delegate)).is_ok()
}

type AccountDelegate = dyn Fn(&str) -> Option<String> + Send + Sync;

static ACCOUNT_DELEGATE: std::sync::OnceLock<Box<AccountDelegate>> = std::sync::OnceLock::new();

/// Makes every [`ShadowPasswords`] of this process take an account's standing (locked or
/// expired: why it may not log in, `None` when it may) from `delegate(user)` instead of
/// reading `/etc/shadow`: a privilege-separated worker has it from its monitor. Set once;
/// returns `false` if it was already set.
pub fn set_account_delegate(
    delegate: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> bool {
    ACCOUNT_DELEGATE.set(Box::new(delegate)).is_ok()
}

impl ShadowPasswords {
    /// Why `user` may not log in by any method (locked, or expired), reading the shadow file
    /// (blocking): what a privilege-separated monitor tells its workers. `None` when they may.
    pub fn account_refusal(&self, user: &str) -> Option<String> {
        match Self::account_status(&self.path, user, SystemTime::now()) {
            AccountStatus::Allowed => None,
            AccountStatus::Denied { reason } => Some(reason),
        }
    }

    /// Whether `password` is `user`'s (blocking: reads the file), with the account's expiry
    /// and the password's ageing applied: what a privilege-separated monitor checks.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        let password = Password::new(password);
        Self::check(&self.path, user, &password, self.empty_passwords, SystemTime::now())
    }

    /// Checks `/etc/shadow`; empty passwords refused.
    pub fn new() -> Self {
        Self { path: PathBuf::from("/etc/shadow"), empty_passwords: false }
    }

    /// Reads `path` instead of `/etc/shadow` (for tests).
    #[must_use]
    pub fn with_shadow_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// Lets an account with an empty password in with an empty password
    /// (`PermitEmptyPasswords`).
    #[must_use]
    pub fn with_empty_passwords(mut self, allow: bool) -> Self {
        self.empty_passwords = allow;
        self
    }

    /// The user's entry, if the file has one (blocking).
    fn entry(path: &PathBuf, user: &str) -> Result<Option<ShadowEntry>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(text.lines().find_map(|line| ShadowEntry::parse(line, user)))
    }

    fn check(
        path: &PathBuf,
        user: &str,
        password: &Password,
        empty_ok: bool,
        now: SystemTime,
    ) -> bool {
        let entry = match Self::entry(path, user) {
            Ok(Some(entry)) => entry,
            Ok(None) => return false,
            Err(err) => {
                log::warn!("password of {user}: {err}");
                return false;
            }
        };
        let today = today(now);
        if entry.account_expired(today) {
            log::info!("Account {user} has expired");
            return false;
        }
        if entry.hash.is_empty() {
            return empty_ok && password.is_empty();
        }
        if let Some(why) = entry.password_unusable(today) {
            log::info!("password of {user} refused: {why}");
            return false;
        }
        hash_matches(user, &entry.hash, password)
    }
}

impl ShadowPasswords {
    /// Whether `user` may log in at all by the shadow file (blocking): not expired, not
    /// locked. An unreadable file (a server that is not root) allows the account.
    fn account_status(path: &PathBuf, user: &str, now: SystemTime) -> AccountStatus {
        if let Some(delegate) = ACCOUNT_DELEGATE.get() {
            return match delegate(user) {
                None => AccountStatus::Allowed,
                Some(reason) => {
                    if reason.starts_with("Account ") {
                        log::info!("{reason}");
                    } else {
                        log::info!("User {user} not allowed because {reason}");
                    }
                    AccountStatus::Denied { reason }
                }
            };
        }
        let locked = match Self::entry(path, user) {
            Ok(Some(entry)) if entry.account_expired(today(now)) => {
                log::info!("Account {user} has expired");
                return AccountStatus::Denied { reason: format!("Account {user} has expired") };
            }
            Ok(Some(entry)) => entry.locked(),
            // No shadow entry: the password field of the account itself.
            Ok(None) => nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .is_some_and(|account| is_locked(&account.passwd.to_string_lossy())),
            Err(_) => false,
        };
        if locked {
            log::info!("User {user} not allowed because account is locked");
            return AccountStatus::Denied { reason: "account is locked".to_owned() };
        }
        AccountStatus::Allowed
    }
}

impl AuthBackend for ShadowPasswords {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let Attempt::Password { password, new_password: None } = &request.attempt else {
            return request.offload.succeed(Decision::Reject);
        };
        let (path, user, password) = (self.path.clone(), request.user.clone(), password.clone());
        let (empty_ok, now) = (self.empty_passwords, request.now);
        if DELEGATE.get().is_some() {
            let connection = request.connection.id;
            return request.offload.run(move || {
                match DELEGATE.get().is_some_and(|check| check(connection, &user, &password)) {
                    true => Decision::Accept(Restrictions::default()),
                    false => Decision::Reject,
                }
            });
        }
        request.offload.run(move || {
            if Self::check(&path, &user, &password, empty_ok, now) {
                Decision::Accept(Restrictions::default())
            } else {
                Decision::Reject
            }
        })
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        if DELEGATE.get().is_some() && ACCOUNT_DELEGATE.get().is_none() {
            return login.offload.succeed(AccountStatus::Allowed);
        }
        let (path, user) = (self.path.clone(), login.user.clone());
        login.offload.run(move || Self::account_status(&path, &user, SystemTime::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "$6$saltsaltsalt$/YcSJBZ1GwOaYU2XCNxvWBX3MbYsX7qkf0.0L28t35vap3Pr7yS0JA8iUjaUrIKpD1vbB841OQkrlcX47Jjuy/";
    /// Made by libxcrypt's crypt(3) (Debian 12's default parameters) for `pleaseletmein`.
    const YESCRYPT: &str =
        "$y$j9T$LdJMENpBABJJ3hIHjB1Bi.$iofk68xbXBoXKsxTyMBCh2qkQuzQZ2Zik521F9TsTq6";

    fn file(lines: &str) -> (tempfile_dir::Dir, PathBuf) {
        let dir = tempfile_dir::Dir::new();
        let path = dir.0.join("shadow");
        std::fs::write(&path, lines).unwrap();
        (dir, path)
    }

    mod tempfile_dir {
        pub(super) struct Dir(pub(super) std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                let mut bytes = [0u8; 8];
                getrandom_bytes(&mut bytes);
                let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let path = std::env::temp_dir().join(format!("conch-shadow-{name}"));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        fn getrandom_bytes(out: &mut [u8]) {
            use crate::crypto::SecureRandom;
            crate::crypto::OsRandom::new().fill(out).unwrap();
        }
    }

    fn check(path: &PathBuf, user: &str, pw: &str, empty_ok: bool) -> bool {
        ShadowPasswords::check(path, user, &Password::from(pw), empty_ok, SystemTime::now())
    }

    #[test]
    fn a_sha512_password_from_the_shadow_file_checks_and_a_wrong_one_does_not() {
        let (_dir, path) =
            file(&format!("root:*:19000:0:99999:7:::\nalice:{SHA512}:19000:0:99999:7:::\n"));
        assert!(check(&path, "alice", "hunter2", false));
        assert!(!check(&path, "alice", "hunter3", false));
        assert!(!check(&path, "bob", "hunter2", false));
    }

    #[test]
    fn a_yescrypt_password_checks() {
        let (_dir, path) = file(&format!("carol:{YESCRYPT}:19000:0:99999:7:::\n"));
        assert!(check(&path, "carol", "pleaseletmein", false));
        assert!(!check(&path, "carol", "pleaseletmeout", false));
    }

    #[test]
    fn a_locked_or_expired_account_is_refused_even_with_the_right_password() {
        let (_dir, path) = file(&format!(
            "locked:!{SHA512}:19000:0:99999:7:::\nexpired:{SHA512}:19000:0:99999:7::1:\n\
             change:{SHA512}:0:0:99999:7:::\n"
        ));
        assert!(!check(&path, "locked", "hunter2", false));
        assert!(!check(&path, "expired", "hunter2", false));
        assert!(!check(&path, "change", "hunter2", false));
    }

    #[test]
    fn a_locked_or_expired_account_is_refused_for_every_method_but_a_star_is_not_locked() {
        let (_dir, path) = file(&format!(
            "locked:!{SHA512}:19000:0:99999:7:::\nbang:!:19000:0:99999:7:::\n\
             star:*:19000:0:99999:7:::\nexpired:{SHA512}:19000:0:99999:7::1:\n\
             open:{SHA512}:19000:0:99999:7:::\nnopw::19000:0:99999:7:::\n"
        ));
        let status = |user| ShadowPasswords::account_status(&path, user, SystemTime::now());
        for user in ["locked", "bang", "expired"] {
            assert!(matches!(status(user), AccountStatus::Denied { .. }), "{user} allowed");
        }
        for user in ["star", "open", "nopw"] {
            assert_eq!(status(user), AccountStatus::Allowed, "{user} refused");
        }
        assert_eq!(
            status("locked"),
            AccountStatus::Denied { reason: "account is locked".to_owned() }
        );
    }

    #[test]
    fn an_unreadable_shadow_file_allows_the_account() {
        let path = PathBuf::from("/nonexistent/conch-shadow");
        let status = ShadowPasswords::account_status(&path, "anyone", SystemTime::now());
        assert_eq!(status, AccountStatus::Allowed);
    }

    #[test]
    fn an_empty_password_is_accepted_only_when_empty_passwords_are_permitted() {
        let (_dir, path) = file("nopw::19000:0:99999:7:::\n");
        assert!(!check(&path, "nopw", "", false));
        assert!(check(&path, "nopw", "", true));
        assert!(!check(&path, "nopw", "x", true));
    }

    #[test]
    fn an_unsupported_hash_type_is_refused() {
        let (_dir, path) = file("old:$1$salt$abcdefghijklmnopqrstuv:19000:0:99999:7:::\n");
        assert!(!check(&path, "old", "anything", false));
    }
}

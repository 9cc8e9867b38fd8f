//! [`TrustOnFirstUse`]: any key is accepted for a new user name and remembered; that name then
//! belongs to that key.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use twine_core::{Deferred, Error as CoreError, ErrorKind};

use super::{AuthBackend, AuthRequest};
use crate::keys::{FingerprintHash, PublicKey};
use crate::server::Restrictions;
use crate::userauth::{Attempt, Decision};

/// The largest file of remembered users read, in bytes.
const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// Trust on first use, for applications whose users have no accounts (a chat, a game): the
/// first public key that logs in as a user name is remembered by its SHA-256 fingerprint, and
/// from then on only that key logs in as that name. Other methods are rejected.
///
/// A key is remembered only once the client has proved it holds it (the signed request); the
/// query before it is answered yes for an unknown name or the remembered key, so a client with
/// several keys finds the right one. With a file ([`TrustOnFirstUse::open`]) the users survive
/// a restart: one `SHA256:... name` line per user, appended (on a thread) before the login is
/// accepted; a login whose key cannot be saved is refused.
///
/// ```no_run
/// use twine_conch::server::TrustOnFirstUse;
///
/// let auth = TrustOnFirstUse::open("chat-users")?;
/// # let _ = auth;
/// # Ok::<(), twine_core::Error>(())
/// ```
#[derive(Clone)]
pub struct TrustOnFirstUse {
    known: Arc<Mutex<HashMap<String, String>>>,
    file: Option<Arc<PathBuf>>,
    restrictions: Restrictions,
}

/// What [`TrustOnFirstUse::check`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TofuVerdict {
    /// The name was new: the key is now its key.
    Remembered,
    /// The key is the name's remembered key.
    Known,
    /// The name is new, and this was only a query: nothing is remembered yet.
    Unknown,
    /// The name belongs to another key.
    Refused,
}

impl TofuVerdict {
    /// Whether the login may go on.
    pub fn admits(&self) -> bool {
        !matches!(self, Self::Refused)
    }
}

impl TrustOnFirstUse {
    /// Users kept in memory only: forgotten when the process ends.
    pub fn in_memory() -> Self {
        Self {
            known: Arc::new(Mutex::new(HashMap::new())),
            file: None,
            restrictions: Restrictions::none(),
        }
    }

    /// Users remembered in `path` (created on the first login if missing), with those already
    /// in it loaded now. Lines that are not `fingerprint name` are skipped and logged.
    ///
    /// # Errors
    ///
    /// The file exists but cannot be read, or is larger than 16 MiB.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CoreError> {
        let path = path.into();
        let mut known = HashMap::new();
        match fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE_LEN => {
                return Err(CoreError::new(ErrorKind::LimitReached, "the users file is too large"));
            }
            Ok(_) => {
                let text = fs::read_to_string(&path).map_err(CoreError::from)?;
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim_start();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    match line.split_once(' ') {
                        Some((fingerprint, user)) if fingerprint.starts_with("SHA256:") => {
                            known.insert(user.to_owned(), fingerprint.to_owned());
                        }
                        _ => log::warn!("{}:{}: not `fingerprint name`", path.display(), n + 1),
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        Ok(Self {
            known: Arc::new(Mutex::new(known)),
            file: Some(Arc::new(path)),
            restrictions: Restrictions::none(),
        })
    }

    /// Gives every login these restrictions (none by default).
    #[must_use]
    pub fn with_restrictions(mut self, restrictions: Restrictions) -> Self {
        self.restrictions = restrictions;
        self
    }

    /// The fingerprint remembered for `user`, if any (`SHA256:...`).
    pub fn fingerprint_of(&self, user: &str) -> Option<String> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner).get(user).cloned()
    }

    /// Decides whether `key` may log in as `user`; `signed` says whether the client proved it
    /// holds the key (only then is a new name's key remembered, and written to the file:
    /// blocking; [`AuthBackend::decide`] runs it on a thread).
    ///
    /// # Errors
    ///
    /// The key of a new name could not be appended to the file (nothing is remembered).
    pub fn check(
        &self,
        user: &str,
        key: &PublicKey,
        signed: bool,
    ) -> Result<TofuVerdict, CoreError> {
        let fingerprint = key.fingerprint(FingerprintHash::Sha256).to_string();
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        match known.get(user) {
            Some(remembered) if *remembered == fingerprint => return Ok(TofuVerdict::Known),
            Some(remembered) => {
                if signed {
                    log::warn!("user {user:?} belongs to {remembered}; refusing key {fingerprint}");
                }
                return Ok(TofuVerdict::Refused);
            }
            None if !signed => return Ok(TofuVerdict::Unknown),
            None => {}
        }
        if user.contains(['\n', '\r']) {
            return Ok(TofuVerdict::Refused);
        }
        if let Some(path) = &self.file {
            append_line(path, &format!("{fingerprint} {user}\n"))?;
        }
        log::info!("user {user:?} is now {fingerprint}");
        known.insert(user.to_owned(), fingerprint);
        Ok(TofuVerdict::Remembered)
    }
}

impl Default for TrustOnFirstUse {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl fmt::Debug for TrustOnFirstUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.known.lock().map_or(0, |known| known.len());
        f.debug_struct("TrustOnFirstUse")
            .field("file", &self.file)
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

impl AuthBackend for TrustOnFirstUse {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let (key, signed) = match &request.attempt {
            Attempt::PublicKeyQuery { key, .. } => (key.clone(), false),
            Attempt::PublicKey { key, .. } => (key.clone(), true),
            _ => return request.offload.succeed(Decision::Reject),
        };
        let this = self.clone();
        let user = request.user.clone();
        let decide = move || match this.check(&user, &key, signed) {
            Ok(verdict) if verdict.admits() => Decision::Accept(this.restrictions.clone()),
            Ok(_) => Decision::Reject,
            Err(err) => {
                log::warn!("cannot remember the key of {user:?}: {err}");
                Decision::Reject
            }
        };
        if signed && self.file.is_some() {
            request.offload.run(decide)
        } else {
            request.offload.succeed(decide())
        }
    }
}

/// Appends `line` to `path`, creating it (mode 0600) if needed.
fn append_line(path: &Path, line: &str) -> Result<(), CoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_data()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use twine_core::testing::Clock;

    use super::*;
    use crate::server::auth::tests::Scratch;
    use crate::server::auth::{ConnectionFacts, ConnectionId, Offload};
    use crate::userauth::msgs::{MethodData, PublicKeyData, UserauthRequest};
    use crate::userauth::{self, FailureDelay, ServerEvent};
    use crate::wire::Writer;

    fn key(n: u8) -> PublicKey {
        PublicKey::Ed25519([n; 32])
    }

    /// A request as the server adapter makes it, from a real userauth server: a key query
    /// (`signature: None`) or a password.
    fn request(clock: &Clock, user: &str, method: MethodData<'_>) -> AuthRequest {
        let mut config = userauth::ServerConfig::new([7; 32]);
        config.failure_delay = FailureDelay::dangerous_none();
        let mut server: userauth::Server<Restrictions> =
            userauth::Server::new(Arc::new(config), b"session", b"host key").unwrap();
        let mut payload = Vec::new();
        UserauthRequest { user, service: "ssh-connection", method }
            .encode(&mut Writer::new(&mut payload));
        let _ = server.handle_payload(Instant::now(), &payload).unwrap();
        while let Some(event) = server.poll_event() {
            if let ServerEvent::AuthRequested { id, user, attempt, .. } = event {
                let facts = Rc::new(ConnectionFacts::new(ConnectionId(1), None, None));
                let offload = Offload::inline(clock.scheduler());
                return AuthRequest::new(id, user, attempt, facts, SystemTime::now(), offload);
            }
        }
        panic!("no auth request");
    }

    fn settle(clock: &Clock, deferred: &Deferred<Decision<Restrictions>>) -> bool {
        for _ in 0..32 {
            if let Some(result) = deferred.take_result() {
                return matches!(result.unwrap(), Decision::Accept(_));
            }
            clock.advance(Duration::ZERO);
        }
        panic!("the Deferred never fired");
    }

    /// The first key that proves itself for a name is remembered; it logs in again, and a
    /// different key for that name is refused, while other names are still free.
    #[test]
    fn accepts_the_first_key_remembers_it_and_refuses_another() {
        let tofu = TrustOnFirstUse::in_memory();
        assert_eq!(tofu.check("alice", &key(1), false).unwrap(), TofuVerdict::Unknown);
        assert_eq!(tofu.fingerprint_of("alice"), None, "a query remembers nothing");
        assert_eq!(tofu.check("alice", &key(1), true).unwrap(), TofuVerdict::Remembered);
        let fingerprint = key(1).fingerprint(FingerprintHash::Sha256).to_string();
        assert_eq!(tofu.fingerprint_of("alice"), Some(fingerprint));
        assert_eq!(tofu.check("alice", &key(1), true).unwrap(), TofuVerdict::Known);
        assert_eq!(tofu.check("alice", &key(2), false).unwrap(), TofuVerdict::Refused);
        assert_eq!(tofu.check("alice", &key(2), true).unwrap(), TofuVerdict::Refused);
        assert_eq!(tofu.check("bob", &key(2), true).unwrap(), TofuVerdict::Remembered);
        assert_eq!(tofu.check("carol", &key(1), true).unwrap(), TofuVerdict::Remembered);
    }

    /// Through the backend: a query for a free name or the owner's key is answered yes, a
    /// query with another key and any password is refused.
    #[test]
    fn the_backend_answers_queries_and_refuses_passwords() {
        let clock = Clock::new();
        let tofu = TrustOnFirstUse::in_memory();
        tofu.check("alice", &key(1), true).unwrap();
        let query = |user: &str, key: &PublicKey| {
            let blob = key.to_blob();
            let data = PublicKeyData {
                algorithm: "ssh-ed25519",
                key_blob: &blob,
                host_key_blob: None,
                signature: None,
            };
            request(&clock, user, MethodData::PublicKey(data))
        };
        assert!(settle(&clock, &tofu.decide(&query("alice", &key(1)))));
        assert!(!settle(&clock, &tofu.decide(&query("alice", &key(2)))));
        assert!(settle(&clock, &tofu.decide(&query("dave", &key(2)))));
        assert_eq!(tofu.fingerprint_of("dave"), None);
        let password = MethodData::Password { password: b"x", new_password: None };
        assert!(!settle(&clock, &tofu.decide(&request(&clock, "alice", password))));
    }

    /// Remembered users survive a restart: a new backend on the same file refuses another key
    /// for a known name and admits its own.
    #[test]
    fn remembered_users_persist_across_a_restart() {
        let scratch = Scratch::new("tofu");
        let path = scratch.0.join("users");
        let first = TrustOnFirstUse::open(&path).unwrap();
        assert_eq!(first.check("alice", &key(1), true).unwrap(), TofuVerdict::Remembered);
        assert_eq!(first.check("bob smith", &key(2), true).unwrap(), TofuVerdict::Remembered);
        drop(first);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let again = TrustOnFirstUse::open(&path).unwrap();
        assert_eq!(again.check("alice", &key(2), true).unwrap(), TofuVerdict::Refused);
        assert_eq!(again.check("alice", &key(1), true).unwrap(), TofuVerdict::Known);
        assert_eq!(again.check("bob smith", &key(2), true).unwrap(), TofuVerdict::Known);
        assert_eq!(again.check("carol", &key(3), true).unwrap(), TofuVerdict::Remembered);
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    /// A key that cannot be saved is not accepted, and nothing is remembered.
    #[test]
    fn a_key_that_cannot_be_saved_is_refused() {
        let scratch = Scratch::new("tofu-ro");
        let tofu = TrustOnFirstUse::open(scratch.0.join("missing-dir/users")).unwrap();
        assert!(tofu.check("alice", &key(1), true).is_err());
        assert_eq!(tofu.fingerprint_of("alice"), None);
    }
}

//! The `authorized_keys` backend, with sshd's file semantics.

use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use twine_core::Deferred;

use super::{AuthBackend, AuthRequest};
use crate::keys::AuthorizedKeys as KeyFile;
use crate::keys::PublicKey;
use crate::server::{Account, Restrictions};
use crate::userauth::{Attempt, Decision};

/// The largest `authorized_keys` file read, in bytes; a larger one is refused whole.
pub const MAX_AUTHORIZED_KEYS_FILE_LEN: u64 = 16 * 1024 * 1024;

type Lookup = dyn Fn(&str) -> Result<Option<Account>, twine_core::Error> + Send + Sync;

type KeysSource = dyn Fn(&Account) -> Option<String> + Send + Sync;

static KEYS_OVERRIDE: std::sync::OnceLock<Box<KeysSource>> = std::sync::OnceLock::new();

/// Makes every later [`AuthorizedKeys::check`] of this process take the account's keys from
/// `source` instead of reading its files: a privilege-separated worker, which cannot read
/// them, gets them from its monitor (which applies the file list and strict modes). Set
/// once; returns `false` if it was already set.
pub fn set_keys_override(
    source: impl Fn(&Account) -> Option<String> + Send + Sync + 'static,
) -> bool {
    KEYS_OVERRIDE.set(Box::new(source)).is_ok()
}

/// Public key authentication against `authorized_keys` files, as sshd does it.
///
/// - The files are OpenSSH's `AuthorizedKeysFile` list (default `.ssh/authorized_keys
///   .ssh/authorized_keys2`), with `%%`, `%h` (home), `%u` (user name) and `%U` (uid) expanded
///   and relative paths taken from the home directory.
/// - With strict modes (the default, sshd's `StrictModes yes`), a file is used only if it is a
///   regular file owned by root or the user and not writable by group or others, and so is
///   every directory above it up to the home directory (or `/`): `auth_secure_path`.
/// - The first line with the key whose options allow the login decides: `from=` is matched
///   against the client's address (a mismatch skips the line), `expiry-time=` against the
///   wall clock of the request (an expired key is skipped), and the line's options become the
///   session's [`Restrictions`] (`command=`, `environment=`, `no-pty`, `restrict`, `permitopen=`,
///   `permitlisten=`, `no-*-forwarding`, ...).
///
/// Files are read on a thread ([`Offload::run`](super::Offload::run)). Certificate authorities
/// (`cert-authority` lines) are not used yet.
#[derive(Clone)]
pub struct AuthorizedKeys {
    files: Vec<String>,
    strict_modes: bool,
    lookup: Arc<Lookup>,
    local_offset: Option<i64>,
}

impl AuthorizedKeys {
    /// sshd's defaults: the system's users, `.ssh/authorized_keys .ssh/authorized_keys2`,
    /// strict modes.
    pub fn new() -> Self {
        Self {
            files: vec![".ssh/authorized_keys".into(), ".ssh/authorized_keys2".into()],
            strict_modes: true,
            lookup: Arc::new(Account::lookup),
            local_offset: None,
        }
    }

    /// One file for every user name, owned by the account this process runs as: an embedded
    /// server that lets its own user in with `~/.ssh/authorized_keys`.
    ///
    /// # Errors
    ///
    /// Our own account cannot be found.
    pub fn for_current_user(file: impl Into<PathBuf>) -> Result<Self, twine_core::Error> {
        let me = Account::current()?;
        let file = file.into().to_string_lossy().replace('%', "%%");
        Ok(Self::new().with_files([file]).with_accounts(move |_| Ok(Some(me.clone()))))
    }

    /// Uses these `AuthorizedKeysFile` patterns instead of the defaults.
    #[must_use]
    pub fn with_files(mut self, files: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.files = files.into_iter().map(Into::into).collect();
        self
    }

    /// Turns sshd's `StrictModes` permission checks on or off.
    #[must_use]
    pub fn with_strict_modes(mut self, on: bool) -> Self {
        self.strict_modes = on;
        self
    }

    /// Finds accounts with `lookup` instead of the system's user database.
    #[must_use]
    pub fn with_accounts(
        mut self,
        lookup: impl Fn(&str) -> Result<Option<Account>, twine_core::Error> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// Reads `expiry-time=` values without a `Z` in a zone `offset_seconds` east of UTC,
    /// instead of the system's local time zone.
    #[must_use]
    pub fn with_local_offset(mut self, offset_seconds: i64) -> Self {
        self.local_offset = Some(offset_seconds);
        self
    }

    /// Decides whether `key` may log in as `user` from `peer_ip` at `now`: blocking (reads
    /// files); [`AuthBackend::decide`] runs it on a thread.
    pub fn check(
        &self,
        user: &str,
        key: &PublicKey,
        peer_ip: &str,
        now: SystemTime,
    ) -> Decision<Restrictions> {
        let account = match (self.lookup)(user) {
            Ok(Some(account)) => account,
            Ok(None) => {
                log::info!("authorized_keys: no account {user:?}");
                return Decision::Reject;
            }
            Err(err) => {
                log::warn!("authorized_keys: looking up {user:?} failed: {err}");
                return Decision::Reject;
            }
        };
        let now_unix = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let offset = self.local_offset.unwrap_or_else(|| local_offset(now_unix));
        let sources: Vec<(PathBuf, Option<String>)> = match KEYS_OVERRIDE.get() {
            Some(source) => vec![(PathBuf::from("(monitor)"), source(&account))],
            None => self.files.iter().map(|p| (expand_path(p, &account), None)).collect(),
        };
        let overridden = KEYS_OVERRIDE.get().is_some();
        for (path, given) in sources {
            let read = if overridden {
                Ok(given)
            } else {
                read_key_file(&path, &account, self.strict_modes)
            };
            let text = match read {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(reason) => {
                    log::warn!("authorized_keys: ignoring {}: {reason}", path.display());
                    continue;
                }
            };
            let parsed = KeyFile::parse(&text);
            for skipped in &parsed.skipped {
                log::debug!("{}:{}: skipped: {}", path.display(), skipped.line, skipped.reason);
            }
            for entry in parsed.find(key) {
                let place = format!("{}:{}", path.display(), entry.line);
                if !entry.options.from_allows(peer_ip, peer_ip) {
                    log::info!("{place}: key refused for {user}: {peer_ip} does not match from=");
                    continue;
                }
                if entry.options.has_expired(now_unix, offset) {
                    log::info!("{place}: key refused for {user}: expired");
                    continue;
                }
                log::debug!("{place}: key accepted for {user}");
                return Decision::Accept(Restrictions::from_key_options(&entry.options));
            }
        }
        Decision::Reject
    }
}

impl AuthorizedKeys {
    /// The contents of every file of `account` that [`check`](Self::check) would read, in
    /// order (blocking): what a privilege-separated monitor hands its worker.
    pub fn read_all(&self, account: &Account) -> Option<String> {
        let mut all = String::new();
        let mut any = false;
        for pattern in &self.files {
            let path = expand_path(pattern, account);
            match read_key_file(&path, account, self.strict_modes) {
                Ok(Some(text)) => {
                    any = true;
                    all.push_str(&text);
                    all.push('\n');
                }
                Ok(None) => {}
                Err(reason) => log::warn!("authorized_keys: ignoring {}: {reason}", path.display()),
            }
        }
        any.then_some(all)
    }
}

impl Default for AuthorizedKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AuthorizedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedKeys")
            .field("files", &self.files)
            .field("strict_modes", &self.strict_modes)
            .finish_non_exhaustive()
    }
}

impl AuthBackend for AuthorizedKeys {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        let key = match &request.attempt {
            Attempt::PublicKeyQuery { key, .. } | Attempt::PublicKey { key, .. } => key.clone(),
            _ => return request.offload.succeed(Decision::Reject),
        };
        let this = self.clone();
        let user = request.user.clone();
        let peer_ip = request.connection.peer_ip();
        let now = request.now;
        request.offload.run(move || this.check(&user, &key, &peer_ip, now))
    }
}

/// Expands `%%`, `%h`, `%u` and `%U` in an `AuthorizedKeysFile` pattern, and makes a relative
/// result relative to the home directory (sshd's `expand_authorized_keys`).
pub(crate) fn expand_path(pattern: &str, account: &Account) -> PathBuf {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(&account.home.to_string_lossy()),
            Some('u') => out.push_str(&account.name),
            Some('U') => out.push_str(&account.uid.to_string()),
            Some(other) => {
                // sshd refuses unknown tokens; an unknown token makes a path that never exists.
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    let path = PathBuf::from(out);
    if path.is_absolute() {
        path
    } else {
        account.home.join(path)
    }
}

/// Reads a key file: `Ok(None)` if it does not exist, `Err` with the reason if it may not be
/// used.
fn read_key_file(path: &Path, account: &Account, strict: bool) -> Result<Option<String>, String> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let meta = file.metadata().map_err(|err| err.to_string())?;
    if !meta.file_type().is_file() || meta.file_type().is_fifo() {
        return Err("not a regular file".into());
    }
    if strict {
        secure_path(path, &meta, account)?;
    }
    if meta.len() > MAX_AUTHORIZED_KEYS_FILE_LEN {
        return Err(format!("larger than {MAX_AUTHORIZED_KEYS_FILE_LEN} bytes"));
    }
    let mut bytes = Vec::new();
    file.by_ref()
        .take(MAX_AUTHORIZED_KEYS_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| err.to_string())?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// sshd's `auth_secure_path`: the file and every directory above it, up to the home directory
/// or `/`, must be owned by root or the user and not writable by group or others.
pub(crate) fn secure_path(
    path: &Path,
    meta: &fs::Metadata,
    account: &Account,
) -> Result<(), String> {
    let owner_ok = |uid: u32| uid == 0 || uid == account.uid;
    let real = fs::canonicalize(path).map_err(|err| format!("realpath: {err}"))?;
    if !owner_ok(meta.uid()) || meta.mode() & 0o022 != 0 {
        return Err(format!("bad ownership or modes for file {}", real.display()));
    }
    let home = fs::canonicalize(&account.home).ok();
    let mut dir = real.as_path();
    while let Some(parent) = dir.parent() {
        dir = parent;
        let meta = fs::metadata(dir).map_err(|err| format!("stat {}: {err}", dir.display()))?;
        if !owner_ok(meta.uid()) || meta.mode() & 0o022 != 0 {
            return Err(format!("bad ownership or modes for directory {}", dir.display()));
        }
        if home.as_deref() == Some(dir) {
            break;
        }
    }
    Ok(())
}

/// The local time zone's offset east of UTC at `now_unix`, in seconds (UTC if unknown).
fn local_offset(now_unix: i64) -> i64 {
    let zone = match tz::TimeZone::local() {
        Ok(zone) => zone,
        Err(err) => {
            log::debug!("local time zone unknown ({err}); reading expiry times as UTC");
            return 0;
        }
    };
    zone.find_local_time_type(now_unix).map_or(0, |t| i64::from(t.ut_offset()))
}

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
use crate::keys::authorized_keys::{parse_line, parse_principals_line};
use crate::keys::krl::Krl;
use crate::keys::AuthorizedKeys as KeyFile;
use crate::keys::{cert, CertType, Certificate, KeyOptions, PublicKey, SignatureAlgorithm};
use crate::server::{Account, Restrictions};
use crate::userauth::{Attempt, Decision};

/// The largest `authorized_keys` file read, in bytes; a larger one is refused whole.
pub const MAX_AUTHORIZED_KEYS_FILE_LEN: u64 = 16 * 1024 * 1024;

type Lookup = dyn Fn(&str) -> Result<Option<Account>, twine_core::Error> + Send + Sync;

type KeysSource = dyn Fn(&Account, &PublicKey) -> Option<String> + Send + Sync;

static KEYS_OVERRIDE: std::sync::OnceLock<Box<KeysSource>> = std::sync::OnceLock::new();

/// Makes every later [`AuthorizedKeys::check`] of this process take the account's keys for the
/// key offered from `source` instead of reading its files (and running its
/// `AuthorizedKeysCommand`): a privilege-separated worker, which can do neither, gets them
/// from its monitor (which applies the file list, strict modes and the command). Set once;
/// returns `false` if it was already set.
pub fn set_keys_override(
    source: impl Fn(&Account, &PublicKey) -> Option<String> + Send + Sync + 'static,
) -> bool {
    KEYS_OVERRIDE.set(Box::new(source)).is_ok()
}

type CertificateSource = dyn Fn(&str, &Certificate, &str) -> Decision<Restrictions> + Send + Sync;

static CERTIFICATE_OVERRIDE: std::sync::OnceLock<Box<CertificateSource>> =
    std::sync::OnceLock::new();

/// Makes every later certificate check of this process ([`AuthorizedKeys::check_attempt`]
/// with a certificate) take its decision from `source` (called with the user name, the
/// certificate and the client's address): a privilege-separated worker, which can read
/// neither `TrustedUserCAKeys`, principals nor `RevokedKeys` nor run
/// `AuthorizedPrincipalsCommand`, has its monitor check the certificate as
/// [`AuthorizedKeys::check_attempt`] would. Set once; returns `false` if it was already set.
pub fn set_certificate_override(
    source: impl Fn(&str, &Certificate, &str) -> Decision<Restrictions> + Send + Sync + 'static,
) -> bool {
    CERTIFICATE_OVERRIDE.set(Box::new(source)).is_ok()
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
/// OpenSSH certificates ([`Certificate`]) are accepted as sshd accepts them: signed by a CA
/// listed with `cert-authority` in an `authorized_keys` file (for the user name, or for one of
/// the line's `principals=`), or by a CA in the `TrustedUserCAKeys` file (for the user name,
/// or for a name in the `AuthorizedPrincipalsFile`), valid now, from an address its
/// `source-address` allows, with every critical option known, signed with an algorithm in
/// `CASignatureAlgorithms`. A certificate's restrictions (no extension means no pty, no
/// forwarding, no `~/.ssh/rc`; `force-command`) are combined with its line's options. A
/// certificate never matches a plain key's line. `RevokedKeys` files are KRLs (`ssh-keygen
/// -k`) or public keys one a line: a listed key, or a certificate whose key or CA is listed,
/// is refused; an unreadable file refuses every key.
///
/// Files are read on a thread ([`Offload::run`](super::Offload::run)).
#[derive(Clone)]
pub struct AuthorizedKeys {
    files: Vec<String>,
    strict_modes: bool,
    lookup: Arc<Lookup>,
    local_offset: Option<i64>,
    trusted_user_ca_keys: Option<PathBuf>,
    principals_file: Option<String>,
    principals_command: Option<(String, Option<String>)>,
    keys_command: Option<(String, Option<String>)>,
    /// `%C` for the keys command: the connection's two ends.
    connection: Option<String>,
    revoked_keys: Vec<PathBuf>,
    ca_signature_algorithms: Vec<SignatureAlgorithm>,
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
            trusted_user_ca_keys: None,
            principals_file: None,
            principals_command: None,
            keys_command: None,
            connection: None,
            revoked_keys: Vec::new(),
            ca_signature_algorithms: DEFAULT_CA_SIGNATURE_ALGORITHMS.to_vec(),
        }
    }

    /// OpenSSH's `TrustedUserCAKeys`: a file of CA public keys whose user certificates are
    /// accepted (for the user name, or the names in the principals file).
    #[must_use]
    pub fn with_trusted_user_ca_keys(mut self, file: Option<impl Into<PathBuf>>) -> Self {
        self.trusted_user_ca_keys = file.map(Into::into);
        self
    }

    /// OpenSSH's `AuthorizedPrincipalsFile` (`%%`, `%h`, `%u`, `%U` expanded, relative to the
    /// home directory): the names a `TrustedUserCAKeys` certificate may carry to log in.
    #[must_use]
    pub fn with_authorized_principals_file(mut self, pattern: Option<impl Into<String>>) -> Self {
        self.principals_file = pattern.map(Into::into);
        self
    }

    /// OpenSSH's `AuthorizedPrincipalsCommand` run as `AuthorizedPrincipalsCommandUser`
    /// (required: without it the command refuses every certificate): its output lists the
    /// names a `TrustedUserCAKeys` certificate may carry, as the principals file does.
    #[must_use]
    pub fn with_authorized_principals_command(
        mut self,
        command: Option<impl Into<String>>,
        user: Option<impl Into<String>>,
    ) -> Self {
        self.principals_command = command.map(|c| (c.into(), user.map(Into::into)));
        self
    }

    /// OpenSSH's `AuthorizedKeysCommand` run as `AuthorizedKeysCommandUser` (required:
    /// without it the command is not run): its output, `authorized_keys` lines for the key
    /// offered, is read before the files.
    #[must_use]
    pub fn with_authorized_keys_command(
        mut self,
        command: Option<impl Into<String>>,
        user: Option<impl Into<String>>,
    ) -> Self {
        self.keys_command = command.map(|c| (c.into(), user.map(Into::into)));
        self
    }

    /// The connection's two ends, for the keys command's `%C` (sshd's "client-address
    /// client-port server-address server-port"; `UNKNOWN 65535` for an end not known).
    #[must_use]
    pub fn with_connection(
        mut self,
        peer: Option<std::net::SocketAddr>,
        local: Option<std::net::SocketAddr>,
    ) -> Self {
        let end = |a: Option<std::net::SocketAddr>| {
            a.map_or_else(|| "UNKNOWN 65535".to_owned(), |a| format!("{} {}", a.ip(), a.port()))
        };
        self.connection = Some(format!("{} {}", end(peer), end(local)));
        self
    }

    /// OpenSSH's `RevokedKeys`: files of revoked public keys.
    #[must_use]
    pub fn with_revoked_keys(
        mut self,
        files: impl IntoIterator<Item = impl Into<PathBuf>>,
    ) -> Self {
        self.revoked_keys = files.into_iter().map(Into::into).collect();
        self
    }

    /// OpenSSH's `CASignatureAlgorithms`: what a CA may sign certificates with (default:
    /// all but SHA-1 `ssh-rsa`).
    #[must_use]
    pub fn with_ca_signature_algorithms(mut self, algorithms: Vec<SignatureAlgorithm>) -> Self {
        self.ca_signature_algorithms = algorithms;
        self
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
        self.check_attempt(user, key, None, peer_ip, now)
    }

    /// As [`check`](Self::check), for a key that may have come in a certificate: a
    /// certificate is checked against `cert-authority` lines and `TrustedUserCAKeys` only.
    pub fn check_attempt(
        &self,
        user: &str,
        key: &PublicKey,
        certificate: Option<&Certificate>,
        peer_ip: &str,
        now: SystemTime,
    ) -> Decision<Restrictions> {
        if let (Some(cert), Some(source)) = (certificate, CERTIFICATE_OVERRIDE.get()) {
            return source(user, cert, peer_ip);
        }
        if let Some(why) = self.revoked(key, certificate) {
            log::info!("authorized_keys: key refused for {user}: {why}");
            return Decision::Reject;
        }
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
        // Each source with its text when given (`None`: a file to read).
        let mut sources: Vec<(PathBuf, Option<Option<String>>)> = Vec::new();
        if let Some(source) = KEYS_OVERRIDE.get() {
            sources.push((PathBuf::from("(monitor)"), Some(source(&account, key))));
        } else {
            if let Some(text) = self.keys_from_command(&account, key, certificate) {
                sources.push((PathBuf::from("AuthorizedKeysCommand"), Some(Some(text))));
            }
            sources.extend(self.files.iter().map(|p| (expand_path(p, &account), None)));
        }
        for (path, given) in sources {
            let read = match given {
                Some(text) => Ok(text),
                None => read_key_file(&path, &account, self.strict_modes),
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
            if let Some(cert) = certificate {
                for entry in parsed.find_authority(&cert.signature_key) {
                    let place = format!("{}:{}", path.display(), entry.line);
                    let principal = match entry.options.principals.as_deref() {
                        // principals="a,b": the certificate must list one of them.
                        Some(list) => {
                            if !list.split(',').any(|p| cert.principals.iter().any(|c| c == p)) {
                                log::info!("{place}: certificate lists none of principals=");
                                continue;
                            }
                            None
                        }
                        None => Some(user),
                    };
                    match self.accept_cert(cert, &entry.options, principal, peer_ip, now) {
                        Ok(restrictions) => {
                            log::debug!("{place}: certificate {:?} accepted", cert.key_id);
                            return Decision::Accept(restrictions);
                        }
                        Err(why) => log::info!("{place}: certificate refused for {user}: {why}"),
                    }
                }
                continue;
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
        if let Some(cert) = certificate {
            return self.check_trusted_ca(&account, cert, peer_ip, now);
        }
        Decision::Reject
    }

    /// `TrustedUserCAKeys` with `AuthorizedPrincipalsFile` (OpenSSH's `user_cert_trusted_ca`).
    fn check_trusted_ca(
        &self,
        account: &Account,
        cert: &Certificate,
        peer_ip: &str,
        now: SystemTime,
    ) -> Decision<Restrictions> {
        let user = &account.name;
        let Some(ca_file) = &self.trusted_user_ca_keys else { return Decision::Reject };
        let text = match fs::read_to_string(ca_file) {
            Ok(text) => text,
            Err(err) => {
                log::warn!("TrustedUserCAKeys {}: {err}", ca_file.display());
                return Decision::Reject;
            }
        };
        if !key_listed(&text, &cert.signature_key) {
            log::info!("certificate {:?} for {user}: CA key is not trusted", cert.key_id);
            return Decision::Reject;
        }
        if self.principals_file.is_none() && self.principals_command.is_none() {
            // No principals file or command: the certificate must name the user (an empty
            // list will not do).
            let options = KeyOptions::default();
            if !cert.principals.iter().any(|p| p == user) {
                log::info!("certificate {:?}: {user} is not a listed principal", cert.key_id);
                return Decision::Reject;
            }
            return self.decided(cert, &options, user, user, peer_ip, now);
        }
        let mut sources = Vec::new();
        if let Some(pattern) = &self.principals_file {
            let path = expand_path(pattern, account);
            match read_key_file(&path, account, self.strict_modes) {
                Ok(Some(text)) => sources.push((path.display().to_string(), text)),
                Ok(None) => {
                    log::debug!("AuthorizedPrincipalsFile {} does not exist", path.display());
                }
                Err(reason) => {
                    log::warn!("AuthorizedPrincipalsFile: ignoring {}: {reason}", path.display());
                }
            }
        }
        if let Some((command, run_as)) = &self.principals_command {
            match self.principals_from_command(command, run_as.as_deref(), account, cert) {
                Ok(text) => sources.push(("AuthorizedPrincipalsCommand".to_owned(), text)),
                Err(why) => log::warn!("AuthorizedPrincipalsCommand: {why}"),
            }
        }
        for (place, text) in &sources {
            for (i, line) in text.lines().enumerate() {
                let (options, principal) = match parse_principals_line(line) {
                    Ok(Some(found)) => found,
                    Ok(None) => continue,
                    Err(why) => {
                        log::debug!("{place}:{}: skipped: {why}", i + 1);
                        continue;
                    }
                };
                if cert.principals.contains(&principal) {
                    log::debug!("{place}:{}: principal {principal:?} matched", i + 1);
                    return self.decided(cert, &options, &principal, user, peer_ip, now);
                }
            }
        }
        log::info!("certificate {:?} for {user}: no listed principal matched", cert.key_id);
        Decision::Reject
    }

    /// The keys command's output for `key` (a certificate's certified key, with
    /// `certificate`), or `None` (no command, or it failed: logged).
    fn keys_from_command(
        &self,
        account: &Account,
        key: &PublicKey,
        certificate: Option<&Certificate>,
    ) -> Option<String> {
        let (command, run_as) = self.keys_command.as_ref()?;
        let runner = match command_user("AuthorizedKeysCommandUser", run_as.as_deref()) {
            Ok(runner) => runner,
            Err(why) => {
                log::error!("AuthorizedKeysCommand: {why}");
                return None;
            }
        };
        let offered = super::commands::KeyOffered {
            key,
            certificate,
            connection: self.connection.as_deref(),
        };
        match super::commands::run_keys(command, &runner, account, &offered) {
            Ok(text) => Some(text),
            Err(why) => {
                log::error!("AuthorizedKeysCommand for {}: {why}", account.name);
                None
            }
        }
    }

    fn principals_from_command(
        &self,
        command: &str,
        run_as: Option<&str>,
        account: &Account,
        cert: &Certificate,
    ) -> Result<String, String> {
        let runner = command_user("AuthorizedPrincipalsCommandUser", run_as)?;
        super::commands::run_principals(command, &runner, account, cert)
    }

    fn decided(
        &self,
        cert: &Certificate,
        options: &KeyOptions,
        principal: &str,
        user: &str,
        peer_ip: &str,
        now: SystemTime,
    ) -> Decision<Restrictions> {
        match self.accept_cert(cert, options, Some(principal), peer_ip, now) {
            Ok(restrictions) => Decision::Accept(restrictions),
            Err(why) => {
                log::info!("certificate {:?} refused for {user}: {why}", cert.key_id);
                Decision::Reject
            }
        }
    }

    /// The checks every trusted certificate gets (OpenSSH's `sshkey_cert_check_authority` and
    /// the options merge): the CA's signature and algorithm, a user certificate, the validity
    /// window, `principal` listed (when given), known critical options, `source-address` and
    /// the line's `from=` and `expiry-time=`; the restrictions are the certificate's combined
    /// with the line's options.
    fn accept_cert(
        &self,
        cert: &Certificate,
        options: &KeyOptions,
        principal: Option<&str>,
        peer_ip: &str,
        now: SystemTime,
    ) -> Result<Restrictions, String> {
        cert.verify_signature(&self.ca_signature_algorithms).map_err(|e| e.to_string())?;
        let now_unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        cert.validate(CertType::User, now_unix, principal).map_err(|e| e.to_string())?;
        if !cert.source_allows(peer_ip) {
            return Err(format!("source-address does not allow {peer_ip}"));
        }
        if !options.from_allows(peer_ip, peer_ip) {
            return Err(format!("{peer_ip} does not match from="));
        }
        let now_i64 = i64::try_from(now_unix).unwrap_or(i64::MAX);
        let offset = self.local_offset.unwrap_or_else(|| local_offset(now_i64));
        if options.has_expired(now_i64, offset) {
            return Err("expired".into());
        }
        let cert_command = cert.force_command();
        if let (Some(a), Some(b)) = (&cert_command, &options.command) {
            if a != b {
                return Err("certificate and key options force different commands".into());
            }
        }
        Ok(Restrictions::from_key_options(options).intersect(&cert_restrictions(cert)))
    }
}

impl AuthorizedKeys {
    /// The contents of every file of `account` that [`check`](Self::check) would read, in
    /// order (blocking): what a privilege-separated monitor hands its worker.
    pub fn read_all(&self, account: &Account) -> Option<String> {
        self.read_all_for(account, None)
    }

    /// As [`read_all`](Self::read_all), preceded by the `AuthorizedKeysCommand`'s output for
    /// `offered` (a key, or a certificate's certified key with the certificate) when one is
    /// set: what [`check_attempt`](Self::check_attempt) reads for that key.
    pub fn read_all_for(
        &self,
        account: &Account,
        offered: Option<(&PublicKey, Option<&Certificate>)>,
    ) -> Option<String> {
        let mut all = String::new();
        let mut any = false;
        if let Some((key, certificate)) = offered {
            if let Some(text) = self.keys_from_command(account, key, certificate) {
                any = true;
                all.push_str(&text);
                all.push('\n');
            }
        }
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
        let (key, certificate) = match &request.attempt {
            Attempt::PublicKeyQuery { key, certificate, .. }
            | Attempt::PublicKey { key, certificate, .. } => (key.clone(), certificate.clone()),
            _ => return request.offload.succeed(Decision::Reject),
        };
        let this = self.clone();
        let user = request.user.clone();
        let peer_ip = request.connection.peer_ip();
        let now = request.now;
        request
            .offload
            .run(move || this.check_attempt(&user, &key, certificate.as_deref(), &peer_ip, now))
    }
}

/// The account a command runs as (`keyword`'s value: required), or why there is none.
fn command_user(keyword: &str, run_as: Option<&str>) -> Result<Account, String> {
    let run_as = run_as.ok_or_else(|| format!("{keyword} is not set"))?;
    match Account::lookup(run_as) {
        Ok(Some(runner)) => Ok(runner),
        Ok(None) => Err(format!("{keyword} {run_as}: no such user")),
        Err(err) => Err(format!("{keyword} {run_as}: {err}")),
    }
}

/// Expands `%%`, `%h`, `%u` and `%U` in an `AuthorizedKeysFile` pattern, and makes a relative
/// result relative to the home directory (sshd's `expand_authorized_keys`).
pub(crate) fn expand_path(pattern: &str, account: &Account) -> PathBuf {
    // sshd refuses unknown tokens; one kept as it is makes a path that never exists.
    let out =
        super::commands::expand(pattern, &|token| super::commands::account_token(token, account));
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

/// The local time zone (`TZ`, else `/etc/localtime`), read once; `None` if it could not be.
static LOCAL_ZONE: std::sync::OnceLock<Option<tz::TimeZone>> = std::sync::OnceLock::new();

/// The local time zone as the C library finds it from `TZ`'s value: when set, empty is UTC,
/// else a zone name, a file or a POSIX rule; unset, `/etc/localtime`.
pub(super) fn time_zone_for(tz_value: Option<&str>) -> Result<tz::TimeZone, tz::Error> {
    match tz_value {
        Some("") => Ok(tz::TimeZone::utc()),
        Some(name) => tz::TimeZone::from_posix_tz(name),
        None => tz::TimeZone::local(),
    }
}

/// Reads the local time zone now, for the `expiry-time=` values read later (without a `Z`
/// they are local times, as sshd reads them). The process keeps what this first read found:
/// one about to lose sight of `/etc/localtime` and the zone files (a privilege-separated
/// worker entering its empty chroot) calls it first, or it would read every such time as UTC.
pub fn read_local_time_zone() {
    let _ = local_zone();
}

fn local_zone() -> Option<&'static tz::TimeZone> {
    LOCAL_ZONE
        .get_or_init(|| match time_zone_for(std::env::var("TZ").ok().as_deref()) {
            Ok(zone) => Some(zone),
            Err(err) => {
                log::warn!("local time zone unknown ({err}); reading expiry times as UTC");
                None
            }
        })
        .as_ref()
}

/// The local time zone's offset east of UTC at `now_unix`, in seconds (0 if the zone is
/// unknown): the zone of `TZ` when set, as the C library reads it, else `/etc/localtime`,
/// read once per process ([`read_local_time_zone`]).
pub fn local_offset(now_unix: i64) -> i64 {
    local_zone()
        .and_then(|zone| zone.find_local_time_type(now_unix).ok())
        .map_or(0, |t| i64::from(t.ut_offset()))
}

/// CASignatureAlgorithms' default: every algorithm but SHA-1 `ssh-rsa`.
const DEFAULT_CA_SIGNATURE_ALGORITHMS: [SignatureAlgorithm; 6] = [
    SignatureAlgorithm::Ed25519,
    SignatureAlgorithm::EcdsaP256,
    SignatureAlgorithm::EcdsaP384,
    SignatureAlgorithm::EcdsaP521,
    SignatureAlgorithm::RsaSha512,
    SignatureAlgorithm::RsaSha256,
];

/// What a certificate's extensions and `force-command` allow (no extension: not allowed).
fn cert_restrictions(cert: &Certificate) -> Restrictions {
    let mut r = Restrictions::none();
    r.forced_command = cert.force_command();
    r.pty = cert.has_extension(cert::EXT_PTY);
    r.port_forwarding = cert.has_extension(cert::EXT_PORT_FORWARDING);
    r.agent_forwarding = cert.has_extension(cert::EXT_AGENT_FORWARDING);
    r.x11_forwarding = cert.has_extension(cert::EXT_X11_FORWARDING);
    r.user_rc = cert.has_extension(cert::EXT_USER_RC);
    r
}

/// Whether `key` is one of the public keys in `text` (a key file: one key a line, options
/// allowed, as `authorized_keys`).
fn key_listed(text: &str, key: &PublicKey) -> bool {
    text.lines().any(|line| matches!(parse_line(line), Ok(Some((_, k, _))) if k == *key))
}

impl AuthorizedKeys {
    /// Why `key` (or its certificate, or its certificate's CA) is revoked by a `RevokedKeys`
    /// file (a KRL, or public keys one a line), if it is. A file that cannot be read or parsed
    /// revokes everything, as sshd refuses all keys when its revocation list is unusable.
    fn revoked(&self, key: &PublicKey, certificate: Option<&Certificate>) -> Option<String> {
        for file in &self.revoked_keys {
            let bytes = match fs::read(file) {
                Ok(bytes) => bytes,
                Err(err) => return Some(format!("RevokedKeys {}: {err}", file.display())),
            };
            if Krl::is_krl(&bytes) {
                let krl = match Krl::parse(&bytes) {
                    Ok(krl) => krl,
                    Err(err) => return Some(format!("RevokedKeys {}: {err}", file.display())),
                };
                let revoked = match certificate {
                    Some(cert) => krl.certificate_revoked(cert),
                    None => krl.key_revoked(key),
                };
                if revoked {
                    return Some(format!("key is revoked in {}", file.display()));
                }
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            if key_listed(&text, key) {
                return Some(format!("key is revoked in {}", file.display()));
            }
            if let Some(cert) = certificate {
                if key_listed(&text, &cert.signature_key) {
                    return Some(format!("CA key is revoked in {}", file.display()));
                }
            }
        }
        None
    }
}

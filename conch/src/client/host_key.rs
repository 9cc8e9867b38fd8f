//! Host key policies: whether to trust the key a server proved it holds.
//!
//! The transport verifies that the server holds the private half of the key it presented; a
//! [`HostKeyPolicy`] decides whether that key is the right one for the host. The decision is a
//! `Deferred`, so a policy may ask the user, or a directory service, and answer later; the key
//! exchange waits for it.
//!
//! - [`KnownHostsPolicy`]: OpenSSH's `known_hosts` files with its `StrictHostKeyChecking`
//!   modes ([`StrictHostKeyChecking`]).
//! - [`PinnedKeys`]: trust exactly these keys (an embedded client, a test, a benchmark).
//! - [`dangerous_accept_any`]: trust whatever the server presents. Anyone on the path can then
//!   read and change the session.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use twine_core::time::Scheduler;
use twine_core::Deferred;

use super::prompt::{NoPrompts, Prompter, UnknownHostKey};
use crate::crypto::OsRandom;
use crate::keys::known_hosts::{self, host_name_for};
use crate::keys::{FingerprintHash, HostKeyStatus, KnownHosts, PublicKey, SignatureAlgorithm};

/// What a policy is asked about: the host as the user named it, and the key it proved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostKeyQuery {
    /// The host name as given to `connect` (or the configured `HostKeyAlias`).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The server's host key.
    pub key: PublicKey,
    /// The signature algorithm it proved the key with.
    pub algorithm: SignatureAlgorithm,
}

impl HostKeyQuery {
    /// A query for `key` presented by `host` on `port`.
    pub fn new(host: &str, port: u16, key: PublicKey, algorithm: SignatureAlgorithm) -> Self {
        Self { host: host.to_owned(), port, key, algorithm }
    }

    /// The key's SHA-256 fingerprint, as `SHA256:...`.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(FingerprintHash::Sha256).to_string()
    }
}

/// Decides whether a server's host key is trusted. The key exchange waits for the answer; `true`
/// goes on, `false` disconnects with `HOST_KEY_NOT_VERIFIABLE`.
pub trait HostKeyPolicy {
    /// Whether `query.key` is the right key for `query.host`; the Deferred must fire on
    /// `scheduler`'s loop.
    fn check_host_key(&self, scheduler: &Rc<dyn Scheduler>, query: &HostKeyQuery)
        -> Deferred<bool>;
}

/// A policy that trusts every host key. The connection is then open to anyone who can intercept
/// it; use it only where the network itself is trusted (a test against a local server).
pub fn dangerous_accept_any() -> Rc<dyn HostKeyPolicy> {
    Rc::new(DangerousAcceptAny)
}

#[derive(Debug)]
struct DangerousAcceptAny;

impl HostKeyPolicy for DangerousAcceptAny {
    fn check_host_key(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        query: &HostKeyQuery,
    ) -> Deferred<bool> {
        log::warn!(
            "accepting {} key {} for {} without checking",
            query.key.short_type_name(),
            query.fingerprint(),
            host_name_for(&query.host, query.port)
        );
        Deferred::succeed(Rc::clone(scheduler), true)
    }
}

/// A policy that trusts exactly the keys given, for any host.
#[derive(Clone, Debug, Default)]
pub struct PinnedKeys {
    keys: Vec<PublicKey>,
}

impl PinnedKeys {
    /// Trusts `keys`.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self { keys: keys.into_iter().collect() }
    }
}

impl HostKeyPolicy for PinnedKeys {
    fn check_host_key(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        query: &HostKeyQuery,
    ) -> Deferred<bool> {
        Deferred::succeed(Rc::clone(scheduler), self.keys.contains(&query.key))
    }
}

/// OpenSSH's `StrictHostKeyChecking`: what to do with a host whose key is not in `known_hosts`
/// and with one whose key has changed. A revoked key is refused in every mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StrictHostKeyChecking {
    /// `yes`: refuse unknown hosts and changed keys; never write `known_hosts`.
    Yes,
    /// `ask` (OpenSSH's default): ask the user about an unknown host
    /// ([`Prompter::confirm_host_key`]) and add its key if they accept; refuse changed keys.
    #[default]
    Ask,
    /// `accept-new`: add unknown hosts' keys without asking; refuse changed keys.
    AcceptNew,
    /// `no`: add unknown hosts' keys without asking, and connect to hosts whose key changed,
    /// with a warning. Unlike OpenSSH, nothing is disabled after a changed key; prefer
    /// `accept-new`.
    No,
}

/// The `known_hosts` policy, as OpenSSH's client applies it.
///
/// The files are read at every check, synchronously, as OpenSSH does: they are small local
/// files. New keys are appended to the first user file (created, with its directory, if
/// missing), hashed if [`hash_new_entries`](Self::hash_new_entries) is set. Messages for the
/// user (a key added, a changed key) go to the prompter's [`Prompter::notice`] in OpenSSH's
/// words.
#[derive(Clone)]
pub struct KnownHostsPolicy {
    user_files: Vec<PathBuf>,
    global_files: Vec<PathBuf>,
    mode: StrictHostKeyChecking,
    hash_new: bool,
    prompter: Rc<dyn Prompter>,
}

impl KnownHostsPolicy {
    /// The policy over one user file (`UserKnownHostsFile`), with `mode`, no global files and
    /// no prompter (so `ask` refuses unknown hosts until [`prompter`](Self::prompter) is set).
    pub fn new(user_file: impl Into<PathBuf>, mode: StrictHostKeyChecking) -> Self {
        Self {
            user_files: vec![user_file.into()],
            global_files: Vec::new(),
            mode,
            hash_new: false,
            prompter: Rc::new(NoPrompts),
        }
    }

    /// OpenSSH's defaults for the user whose home is `home`: `~/.ssh/known_hosts` and
    /// `~/.ssh/known_hosts2`, then `/etc/ssh/ssh_known_hosts` and `/etc/ssh/ssh_known_hosts2`.
    pub fn openssh_defaults(home: &Path, mode: StrictHostKeyChecking) -> Self {
        let ssh = home.join(".ssh");
        let mut policy = Self::new(ssh.join("known_hosts"), mode);
        policy.user_files.push(ssh.join("known_hosts2"));
        policy.global_files =
            vec!["/etc/ssh/ssh_known_hosts".into(), "/etc/ssh/ssh_known_hosts2".into()];
        policy
    }

    /// Adds a user file (`UserKnownHostsFile` takes several); new keys go to the first.
    #[must_use]
    pub fn user_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.user_files.push(path.into());
        self
    }

    /// Adds a global file (`GlobalKnownHostsFile`), only read.
    #[must_use]
    pub fn global_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.global_files.push(path.into());
        self
    }

    /// `HashKnownHosts`: write new entries with hashed host names.
    #[must_use]
    pub fn hash_new_entries(mut self, hash: bool) -> Self {
        self.hash_new = hash;
        self
    }

    /// Who to ask in `ask` mode, and who hears the notices.
    #[must_use]
    pub fn prompter(mut self, prompter: Rc<dyn Prompter>) -> Self {
        self.prompter = prompter;
        self
    }

    /// The mode.
    pub fn mode(&self) -> StrictHostKeyChecking {
        self.mode
    }

    /// What the files say about `key` for `host` on `port`: revoked beats a match, a match
    /// beats a changed key, in any file.
    pub fn lookup(&self, host: &str, port: u16, key: &PublicKey) -> Lookup {
        let mut best = Lookup::Unknown { other_keys: Vec::new() };
        for path in self.user_files.iter().chain(&self.global_files) {
            let text = match fs::read_to_string(path) {
                Ok(text) => text,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    log::warn!("cannot read {}: {err}", path.display());
                    continue;
                }
            };
            let found = match KnownHosts::parse(&text).check(host, port, key) {
                HostKeyStatus::Revoked { line } => Lookup::Revoked { path: path.clone(), line },
                HostKeyStatus::Match { line } => Lookup::Known { path: path.clone(), line },
                HostKeyStatus::Mismatch { line, known } => {
                    Lookup::Changed { path: path.clone(), line, known }
                }
                HostKeyStatus::NotFound { other_keys } => {
                    Lookup::Unknown { other_keys: other_keys.into_iter().map(|(_, k)| k).collect() }
                }
            };
            best = match (best, found) {
                (Lookup::Unknown { mut other_keys }, Lookup::Unknown { other_keys: more }) => {
                    other_keys.extend(more);
                    Lookup::Unknown { other_keys }
                }
                (old, new) if new.rank() > old.rank() => new,
                (old, _) => old,
            };
        }
        best
    }

    /// Appends `key` for `host` on `port` to the first user file.
    ///
    /// # Errors
    ///
    /// The file or its directory could not be created or written.
    pub fn add(&self, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
        let Some(path) = self.user_files.first() else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no user known_hosts file"));
        };
        let line = known_hosts::format_entry(host, port, key, self.hash_new, &mut OsRandom::new())
            .map_err(|err| io::Error::other(err.to_string()))?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            if !dir.exists() {
                use std::os::unix::fs::DirBuilderExt as _;
                fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
        }
        let needs_newline = fs::read(path)
            .map(|existing| existing.last().is_some_and(|&last| last != b'\n'))
            .unwrap_or(false);
        let mut file = fs::OpenOptions::new().create(true).append(true).open(path)?;
        let separator = if needs_newline { "\n" } else { "" };
        file.write_all(format!("{separator}{line}\n").as_bytes())
    }

    /// Adds the key and tells the user, as OpenSSH does; a failure to write is a notice too,
    /// not a refusal.
    fn add_and_notify(&self, query: &HostKeyQuery) {
        let name = host_name_for(&query.host, query.port);
        match self.add(&query.host, query.port, &query.key) {
            Ok(()) => self.prompter.notice(&format!(
                "Warning: Permanently added '{name}' ({}) to the list of known hosts.",
                query.key.short_type_name()
            )),
            Err(err) => self.prompter.notice(&format!(
                "Failed to add the host to the list of known hosts ({}): {err}",
                self.user_files.first().map(|p| p.display().to_string()).unwrap_or_default()
            )),
        }
    }

    fn changed_key_warning(&self, query: &HostKeyQuery, path: &Path, line: usize) -> String {
        let bar = "@".repeat(59);
        let kind = query.key.short_type_name();
        format!(
            "{bar}\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n{bar}\n\
             IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
             Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n\
             It is also possible that a host key has just been changed.\n\
             The fingerprint for the {kind} key sent by the remote host is\n{}.\n\
             Please contact your system administrator.\n\
             Add correct host key in {} to get rid of this message.\n\
             Offending {kind} key in {}:{line}",
            query.fingerprint(),
            self.user_files.first().map(|p| p.display().to_string()).unwrap_or_default(),
            path.display()
        )
    }
}

impl HostKeyPolicy for KnownHostsPolicy {
    fn check_host_key(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        query: &HostKeyQuery,
    ) -> Deferred<bool> {
        let decided = |accept| Deferred::succeed(Rc::clone(scheduler), accept);
        let name = host_name_for(&query.host, query.port);
        let kind = query.key.short_type_name();
        match self.lookup(&query.host, query.port, &query.key) {
            Lookup::Known { .. } => decided(true),
            Lookup::Revoked { path, line } => {
                self.prompter.notice(&format!(
                    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                     @       WARNING: REVOKED HOST KEY DETECTED!               @\n\
                     @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                     The {kind} host key for {name} is marked as revoked ({}:{line}).\n\
                     This could mean that a stolen key is being used to\n\
                     impersonate this host.",
                    path.display()
                ));
                decided(false)
            }
            Lookup::Changed { path, line, .. } => {
                let warning = self.changed_key_warning(query, &path, line);
                if self.mode == StrictHostKeyChecking::No {
                    self.prompter.notice(&warning);
                    return decided(true);
                }
                self.prompter.notice(&format!(
                    "{warning}\nHost key for {name} has changed and you have requested strict \
                     checking."
                ));
                decided(false)
            }
            Lookup::Unknown { other_keys } => match self.mode {
                StrictHostKeyChecking::Yes => {
                    self.prompter.notice(&format!(
                        "No {kind} host key is known for {name} and you have requested strict \
                         checking."
                    ));
                    decided(false)
                }
                StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => {
                    self.add_and_notify(query);
                    decided(true)
                }
                StrictHostKeyChecking::Ask => {
                    let question = UnknownHostKey {
                        host: query.host.clone(),
                        port: query.port,
                        key: query.key.clone(),
                        other_keys,
                    };
                    let policy = self.clone();
                    let query = query.clone();
                    let answer = self.prompter.confirm_host_key(scheduler, &question);
                    answer.add_callback(move |accept| {
                        if accept {
                            policy.add_and_notify(&query);
                        }
                        Ok(accept)
                    });
                    answer
                }
            },
        }
    }
}

impl fmt::Debug for KnownHostsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownHostsPolicy")
            .field("user_files", &self.user_files)
            .field("global_files", &self.global_files)
            .field("mode", &self.mode)
            .field("hash_new", &self.hash_new)
            .finish_non_exhaustive()
    }
}

/// What the `known_hosts` files say about a host's key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// The key is known for the host.
    Known {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// The host is known with another key of the same type.
    Changed {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the known key.
        line: usize,
        /// The key known there.
        known: PublicKey,
    },
    /// No key of this type is known for the host.
    Unknown {
        /// Keys of other types known for it.
        other_keys: Vec<PublicKey>,
    },
}

impl Lookup {
    fn rank(&self) -> u8 {
        match self {
            Self::Unknown { .. } => 0,
            Self::Changed { .. } => 1,
            Self::Known { .. } => 2,
            Self::Revoked { .. } => 3,
        }
    }
}

//! OpenSSH's configuration files: `sshd_config` for `conchd` ([`sshd`]) and `ssh_config` for
//! `conch` ([`ssh`]).
//!
//! Both follow OpenSSH (`servconf.c`, `readconf.c`) line for line where it matters to an
//! administrator: case-insensitive keywords, `Keyword value` or `Keyword=value`, `#` comments,
//! quoting, `Include` with globs, `Match` (and `Host`) blocks, *the first value obtained for a
//! keyword wins*, `-o` options taking precedence over files, OpenSSH's error texts with file
//! and line, and OpenSSH's `sshd -T` / `ssh -G` output.
//!
//! Files are read through a [`Filesystem`] ([`OsFilesystem`] in the binaries,
//! [`MemoryFilesystem`] in tests and fuzzing). Nothing here runs a process, looks up a user or
//! resolves a name: what a configuration needs from the system (home directories, the groups
//! of a user, `Match exec`) comes in through the contexts each module takes.
//!
//! Entry points that take bytes ([`sshd::SshdConfigFile::parse_bytes`],
//! [`ssh::SshLoader::parse_bytes`]) never panic, whatever the input.

use std::fmt;

mod expand;
mod fs;
mod lex;
pub mod pattern;
mod shared;
pub mod ssh;
pub mod sshd;
pub mod values;

pub use expand::{expand, expand_tilde, ExpandError};
pub use fs::{Filesystem, MemoryFilesystem, OsFilesystem, MAX_FILE_BYTES};

/// Looks a name up: an environment variable, a user's home directory.
pub trait Lookup {
    /// The value for `name`, if there is one.
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Deepest `Include` nesting (OpenSSH's `SERVCONF_MAX_DEPTH` and `READCONF_MAX_DEPTH`).
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// A configuration that cannot be used: OpenSSH's messages, one per line, each naming the file
/// and line (`/etc/ssh/sshd_config line 12: Bad configuration option: Foo`), ending with
/// OpenSSH's `terminating, N bad configuration options` when several lines were bad.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    messages: Vec<String>,
}

impl ConfigError {
    /// An error made of one message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { messages: vec![message.into()] }
    }

    pub(crate) fn from_messages(messages: Vec<String>) -> Self {
        Self { messages }
    }

    /// Every message, in the order OpenSSH would log them.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// How well we support a keyword OpenSSH knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Support {
    /// Parsed into the effective configuration, for the binaries to act on.
    Implemented,
    /// Parsed and printed, but without effect; its absence is harmless (`TCPKeepAlive`,
    /// `UseDNS`, `IPQoS`, ...).
    NotImplemented,
    /// Parsed, but it would restrict or grant access in ways we do not enforce: the
    /// configuration reports it unless its value is `none`, so that the daemon refuses to
    /// start rather than silently ignore it.
    Unenforced,
    /// A keyword OpenSSH itself ignores with a "Deprecated option" message.
    Deprecated,
    /// A keyword for a feature this build lacks (Kerberos, GSSAPI): "Unsupported option".
    Unsupported,
    /// Silently ignored (`Protocol`).
    Ignored,
}

//! `ssh_config`: `-o` options, the user's and the system's files (or `-F`), `Host` and
//! `Match` blocks, `Include`, `%` tokens, and the effective configuration `ssh -G` prints.
//!
//! # Use
//!
//! ```
//! use twine_conch::config::ssh::{ClientContext, SshLoader};
//! use twine_conch::config::MemoryFilesystem;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut fs = MemoryFilesystem::new();
//! fs.insert("/home/me/.ssh/config", "Host web\n  HostName %h.example.com\n  User deploy\n");
//! let ctx = ClientContext::new(&fs, "me", 1000, "/home/me", "laptop.local");
//! let config = SshLoader::new(ctx).option("Port 2222").resolve("web")?;
//! assert_eq!(config.hostname, "web.example.com");
//! assert_eq!(config.user, "deploy");
//! assert_eq!(config.port, 2222);
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics (OpenSSH's)
//!
//! `-o` options come first, then `-F`'s file or else `~/.ssh/config` and
//! `/etc/ssh/ssh_config`; the first value obtained for a keyword wins (`IdentityFile`,
//! `CertificateFile`, the forwardings and `SendEnv` accumulate). A `Match final` or
//! `Match canonical` line, or `CanonicalizeHostname`, asks for a second pass over the files
//! once `HostName` is known. `Match exec` runs its command through the context's callback;
//! this module starts no process.

mod forward;
mod keywords;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::expand::{expand, expand_tilde};
use super::fs::Filesystem;
use super::lex::{self, Split};
use super::pattern::{match_hostname, match_pattern, match_pattern_list, ListMatch};
use super::shared::{io_text, LineError};
use super::values::{ipqos_name, Facility, LogLevel};
use super::{ConfigError, Lookup, Support, MAX_INCLUDE_DEPTH};
use crate::crypto::algorithms::{configure, Category, Side};
use keywords::{
    choice_name, lookup, parse_value, Args, Jump, Kw, LineCtx, Value, ADDRESS_FAMILY, CANONICALIZE,
    CONTROL_MASTER, PUBKEY, REQUEST_TTY, SESSION_TYPE, STRICT, TUNNEL, YES_NO_ASK,
    YES_NO_ASK_CONFIRM,
};

pub use forward::{parse_forward, Endpoint, Forward, ForwardKind};

/// Whether `keyword` is an `ssh_config` keyword, and how we support it.
pub fn keyword_support(keyword: &str) -> Option<Support> {
    lookup(&keyword.to_ascii_lowercase()).map(Kw::support)
}

/// Runs a `Match exec` command (through the user's shell); `Ok(true)` when it exits 0, an
/// error when it cannot be run or ends abnormally.
pub trait MatchExec {
    /// Runs `command`.
    fn run(&self, command: &str) -> Result<bool, String>;
}

impl<F: Fn(&str) -> Result<bool, String>> MatchExec for F {
    fn run(&self, command: &str) -> Result<bool, String> {
        self(command)
    }
}

/// What the client knows about where it runs.
pub struct ClientContext<'a> {
    fs: &'a dyn Filesystem,
    local_user: String,
    uid: u32,
    home: String,
    local_host: String,
    system_dir: String,
    exec: Option<&'a dyn MatchExec>,
    env: Option<&'a dyn Lookup>,
}

impl std::fmt::Debug for ClientContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext")
            .field("local_user", &self.local_user)
            .field("uid", &self.uid)
            .field("home", &self.home)
            .field("local_host", &self.local_host)
            .field("system_dir", &self.system_dir)
            .finish_non_exhaustive()
    }
}

impl<'a> ClientContext<'a> {
    /// The local user's name, uid and home directory, and the local host name with its
    /// domain (`%l`; `%L` is its first label). The system directory is `/etc/ssh`.
    pub fn new(
        fs: &'a dyn Filesystem,
        local_user: impl Into<String>,
        uid: u32,
        home: impl Into<String>,
        local_host: impl Into<String>,
    ) -> Self {
        Self {
            fs,
            local_user: local_user.into(),
            uid,
            home: home.into(),
            local_host: local_host.into(),
            system_dir: "/etc/ssh".into(),
            exec: None,
            env: None,
        }
    }

    /// Where `ssh_config` and relative system `Include`s live.
    pub fn system_dir(mut self, dir: impl Into<String>) -> Self {
        self.system_dir = dir.into();
        self
    }

    /// Runs `Match exec` commands; without it, `Match exec` is an error.
    pub fn exec(mut self, exec: &'a dyn MatchExec) -> Self {
        self.exec = Some(exec);
        self
    }

    /// Reads environment variables for `${VAR}` in paths.
    pub fn env(mut self, env: &'a dyn Lookup) -> Self {
        self.env = Some(env);
        self
    }

    fn tilde(&self, path: &str) -> String {
        let home = |user: Option<&str>| match user {
            None => Some(self.home.clone()),
            Some(_) => None,
        };
        expand_tilde(path, &home).unwrap_or_else(|_| path.to_owned())
    }
}

/// Which configuration files to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ConfigFile {
    /// `~/.ssh/config`, then the system's `ssh_config`.
    #[default]
    Default,
    /// `-F none`: no file.
    None,
    /// `-F path`: this file only (it must exist).
    Path(String),
}

/// Resolves the client configuration for a destination.
#[derive(Debug)]
pub struct SshLoader<'a> {
    ctx: ClientContext<'a>,
    options: Vec<String>,
    file: ConfigFile,
}

impl<'a> SshLoader<'a> {
    /// A loader with no `-o` options, reading the default files.
    pub fn new(ctx: ClientContext<'a>) -> Self {
        Self { ctx, options: Vec::new(), file: ConfigFile::Default }
    }

    /// Adds a `-o` option (`"Keyword value"` or `"Keyword=value"`).
    pub fn option(mut self, line: impl Into<String>) -> Self {
        self.options.push(line.into());
        self
    }

    /// Sets the files to read (`-F`).
    pub fn file(mut self, file: ConfigFile) -> Self {
        self.file = file;
        self
    }

    /// The effective configuration for `host` as given on the command line.
    pub fn resolve(&self, host: &str) -> Result<SshConfig, ConfigError> {
        let mut reader = Reader {
            ctx: &self.ctx,
            layer: Layer::default(),
            want_final: false,
            warnings: Vec::new(),
        };
        for option in &self.options {
            let mut active = true;
            let mut errors = Vec::new();
            let mut bad = 0;
            let pass = Pass { host, original: host, final_pass: false, user_config: true };
            reader.line(
                "command-line",
                0,
                option,
                &pass,
                0,
                &mut active,
                false,
                true,
                &mut errors,
                &mut bad,
            )?;
            if bad > 0 {
                return Err(ConfigError::from_messages(errors));
            }
        }
        reader.files(
            &self.file,
            &Pass { host, original: host, final_pass: false, user_config: true },
        )?;
        let mut hostname = host.to_owned();
        if let Some(Value::Text(template)) = reader.layer.values.get(&Kw::HostName) {
            hostname = expand(template, &[('h', host)], None)
                .map_err(|e| ConfigError::new(format!("percent_expand: {e}")))?;
        }
        if hostname.parse::<std::net::IpAddr>().is_err() {
            hostname = hostname.to_ascii_lowercase();
        }
        let canonicalize = matches!(reader.layer.values.get(&Kw::CanonicalizeHostname), Some(Value::Choice(c)) if *c != 0);
        if reader.want_final || canonicalize {
            reader.layer.values.insert(Kw::HostName, Value::Text(hostname.clone()));
            reader.files(
                &self.file,
                &Pass { host: &hostname, original: host, final_pass: true, user_config: true },
            )?;
        }
        let warnings = std::mem::take(&mut reader.warnings);
        let mut config = resolve(&reader.layer, &self.ctx, host, &hostname)?;
        config.warnings = warnings;
        Ok(config)
    }

    /// Parses one file from memory for `host`, with no other file and a fixed context. For
    /// fuzzing: never panics.
    pub fn parse_bytes(bytes: &[u8], host: &str) -> Result<SshConfig, ConfigError> {
        let mut fs = super::MemoryFilesystem::new();
        fs.insert("/ssh_config", bytes.to_vec());
        let ctx = ClientContext::new(&fs, "user", 1000, "/home/user", "localhost");
        SshLoader::new(ctx).file(ConfigFile::Path("/ssh_config".into())).resolve(host)
    }
}

/// The settings obtained so far.
#[derive(Clone, Debug, Default)]
struct Layer {
    values: BTreeMap<Kw, Value>,
    identity_files: Vec<(String, bool)>,
    certificate_files: Vec<(String, bool)>,
    local_forwards: Vec<Forward>,
    remote_forwards: Vec<Forward>,
    send_env: Vec<String>,
}

impl Layer {
    fn apply(&mut self, kw: Kw, value: Value, user_config: bool) {
        match (kw, value) {
            (_, Value::Nothing) => {}
            (Kw::IdentityFile, Value::List(items)) => {
                append_unique(&mut self.identity_files, items, user_config)
            }
            (Kw::CertificateFile, Value::List(items)) => {
                append_unique(&mut self.certificate_files, items, user_config)
            }
            (Kw::LocalForward | Kw::DynamicForward, Value::Forward(f)) => {
                if !self.local_forwards.contains(&f) {
                    self.local_forwards.push(f);
                }
            }
            (Kw::RemoteForward, Value::Forward(f)) => {
                if !self.remote_forwards.contains(&f) {
                    self.remote_forwards.push(f);
                }
            }
            (Kw::SendEnv, Value::List(items)) => {
                for item in items {
                    match item.strip_prefix('-') {
                        Some(pattern) => self.send_env.retain(|e| !match_pattern(e, pattern)),
                        None => self.send_env.push(item),
                    }
                }
            }
            (_, Value::Rekey { bytes, interval }) => {
                self.values.entry(Kw::RekeyLimit).or_insert(Value::Int(bytes));
                if let Some(i) = interval {
                    self.values.entry(Kw::RekeyInterval).or_insert(Value::Int(i64::from(i)));
                }
            }
            (Kw::ProxyCommand, value) => {
                if !self.values.contains_key(&Kw::ProxyJump) {
                    self.values.entry(Kw::ProxyCommand).or_insert(value);
                }
            }
            (Kw::ProxyJump, value) => {
                if self.values.contains_key(&Kw::ProxyCommand)
                    || self.values.contains_key(&Kw::ProxyJump)
                {
                    return;
                }
                if matches!(value, Value::Jump(Some(_))) {
                    self.values.insert(Kw::ProxyCommand, Value::Text("none".into()));
                }
                self.values.insert(Kw::ProxyJump, value);
            }
            (kw, value) => {
                self.values.entry(kw).or_insert(value);
            }
        }
    }

    fn text(&self, kw: Kw) -> Option<&str> {
        match self.values.get(&kw) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }
}

fn append_unique(list: &mut Vec<(String, bool)>, items: Vec<String>, user_config: bool) {
    for item in items {
        if !list.iter().any(|(p, u)| *p == item && *u == user_config) {
            list.push((item, user_config));
        }
    }
}

struct Pass<'h> {
    /// The host `Host` lines match (the command line's, or the final host name).
    host: &'h str,
    /// The host as given on the command line.
    original: &'h str,
    final_pass: bool,
    user_config: bool,
}

struct Reader<'c, 'a> {
    ctx: &'c ClientContext<'a>,
    layer: Layer,
    want_final: bool,
    warnings: Vec<String>,
}

impl Reader<'_, '_> {
    fn files(&mut self, file: &ConfigFile, pass: &Pass<'_>) -> Result<(), ConfigError> {
        match file {
            ConfigFile::None => Ok(()),
            ConfigFile::Path(path) => {
                let bytes = self.ctx.fs.read(path).map_err(|e| {
                    ConfigError::new(format!("Can't open user config file {path}: {}", io_text(&e)))
                })?;
                let mut active = true;
                self.file(path, &bytes, pass, 0, &mut active, false)
            }
            ConfigFile::Default => {
                let user = format!("{}/.ssh/config", self.ctx.home.trim_end_matches('/'));
                if let Ok(bytes) = self.ctx.fs.read(&user) {
                    let mut active = true;
                    self.file(&user, &bytes, pass, 0, &mut active, false)?;
                }
                let system = format!("{}/ssh_config", self.ctx.system_dir.trim_end_matches('/'));
                if let Ok(bytes) = self.ctx.fs.read(&system) {
                    let mut active = true;
                    let pass = Pass { user_config: false, ..*pass };
                    self.file(&system, &bytes, &pass, 0, &mut active, false)?;
                }
                Ok(())
            }
        }
    }

    fn file(
        &mut self,
        name: &str,
        bytes: &[u8],
        pass: &Pass<'_>,
        depth: usize,
        active: &mut bool,
        never_match: bool,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::new("Too many recursive configuration includes"));
        }
        let mut errors = Vec::new();
        let mut bad = 0;
        for (number, text) in lex::lines(bytes) {
            if let Err(mut fatal) = self.line(
                name,
                number,
                &text,
                pass,
                depth,
                active,
                never_match,
                false,
                &mut errors,
                &mut bad,
            ) {
                errors.append(&mut fatal.messages);
                return Err(ConfigError::from_messages(errors));
            }
        }
        if bad > 0 {
            errors.push(format!("{name}: terminating, {bad} bad configuration options"));
            return Err(ConfigError::from_messages(errors));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        file: &str,
        number: usize,
        text: &str,
        pass: &Pass<'_>,
        depth: usize,
        active: &mut bool,
        never_match: bool,
        command_line: bool,
        errors: &mut Vec<String>,
        bad: &mut usize,
    ) -> Result<(), ConfigError> {
        let mut count = |message: String, errors: &mut Vec<String>| {
            errors.push(message);
            *bad += 1;
        };
        let line = match lex::split_line(text) {
            Split::Empty => return Ok(()),
            Split::NoArgument(keyword) => {
                let keyword = keyword.to_ascii_lowercase();
                count(
                    format!("{file} line {number}: no argument after keyword \"{keyword}\""),
                    errors,
                );
                return Ok(());
            }
            Split::Line(line) => line,
        };
        let keyword = line.keyword.to_ascii_lowercase();
        let Some(kw) = lookup(&keyword) else {
            let ignored = self
                .layer
                .text(Kw::IgnoreUnknown)
                .is_some_and(|list| match_pattern_list(&keyword, list, true) == ListMatch::Match);
            if !ignored {
                count(
                    format!("{file}: line {number}: Bad configuration option: {keyword}"),
                    errors,
                );
            }
            return Ok(());
        };
        let Ok(words) = lex::split_args(line.rest) else {
            count(format!("{file} line {number}: invalid quotes"), errors);
            return Ok(());
        };
        if command_line {
            *active = true;
        }
        match kw {
            Kw::Host => {
                if command_line {
                    count("Host directive not supported as a command-line option".into(), errors);
                    return Ok(());
                }
                *active = false;
                for word in &words {
                    if word.is_empty() {
                        count(
                            format!("{file} line {number}: keyword {keyword} empty argument"),
                            errors,
                        );
                        return Ok(());
                    }
                    if never_match {
                        break;
                    }
                    let (negated, pattern) = match word.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, word.as_str()),
                    };
                    if match_pattern(pass.host, pattern) {
                        if negated {
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
                Ok(())
            }
            Kw::Match => {
                if command_line {
                    count("Host directive not supported as a command-line option".into(), errors);
                    return Ok(());
                }
                match self.match_line(&words, pass, file, number) {
                    Ok(result) => *active = !never_match && result,
                    Err(LineError { message, fatal: true }) => {
                        return Err(ConfigError::new(message))
                    }
                    Err(LineError { message, fatal: false }) => {
                        if !message.is_empty() {
                            errors.push(message);
                        }
                        count(format!("{file} line {number}: Bad Match condition"), errors);
                    }
                }
                Ok(())
            }
            Kw::Include => {
                if command_line {
                    count(
                        "Include directive not supported as a command-line option".into(),
                        errors,
                    );
                    return Ok(());
                }
                for word in &words {
                    if word.is_empty() {
                        count(
                            format!("{file} line {number}: keyword {keyword} empty argument"),
                            errors,
                        );
                        return Ok(());
                    }
                    if word.starts_with('~') && !pass.user_config {
                        count(format!("{file} line {number}: bad include path {word}."), errors);
                        return Ok(());
                    }
                    let pattern = if word.starts_with('/') {
                        word.clone()
                    } else if word.starts_with('~') {
                        self.ctx.tilde(word)
                    } else if pass.user_config {
                        format!("{}/.ssh/{word}", self.ctx.home.trim_end_matches('/'))
                    } else {
                        format!("{}/{word}", self.ctx.system_dir.trim_end_matches('/'))
                    };
                    let Ok(paths) = self.ctx.fs.glob(&pattern) else {
                        count(format!("{file} line {number}: glob failed for {pattern}."), errors);
                        return Ok(());
                    };
                    let outer = *active;
                    for path in paths {
                        let Ok(bytes) = self.ctx.fs.read(&path) else {
                            continue;
                        };
                        self.file(&path, &bytes, pass, depth + 1, active, never_match || !outer)?;
                        *active = outer;
                    }
                }
                Ok(())
            }
            kw => {
                let ctx = LineCtx { file, line: number, keyword: &keyword, rest: line.rest };
                let mut args = Args::new(words);
                let value = match parse_value(kw, &ctx, &mut args) {
                    Ok(v) => v,
                    Err(LineError { message, fatal: true }) => {
                        return Err(ConfigError::new(message))
                    }
                    Err(LineError { message, fatal: false }) => {
                        count(message, errors);
                        return Ok(());
                    }
                };
                match kw.support() {
                    Support::Deprecated if !pass.final_pass => self
                        .warnings
                        .push(format!("{file} line {number}: Deprecated option \"{keyword}\"")),
                    Support::Unsupported if !pass.final_pass => self
                        .warnings
                        .push(format!("{file} line {number}: Unsupported option \"{keyword}\"")),
                    _ => {}
                }
                if args.remaining() > 0 {
                    count(format!("{file} line {number}: keyword {keyword} extra arguments at end of line"), errors);
                    return Ok(());
                }
                if *active {
                    self.layer.apply(kw, value, pass.user_config);
                }
                Ok(())
            }
        }
    }

    /// Evaluates a `Match` line (OpenSSH's `match_cfg_line`). A non-fatal error with an
    /// empty message means only "Bad Match condition".
    fn match_line(
        &mut self,
        words: &[String],
        pass: &Pass<'_>,
        file: &str,
        number: usize,
    ) -> Result<bool, LineError> {
        let error = |message: String| LineError { message, fatal: false };
        let port = match self.layer.values.get(&Kw::Port) {
            Some(Value::Int(p)) => u16::try_from(*p).unwrap_or(22),
            _ => 22,
        };
        let ruser = self.layer.text(Kw::User).unwrap_or(&self.ctx.local_user).to_owned();
        let host = match self.layer.text(Kw::HostName) {
            Some(h) if pass.final_pass => h.to_owned(),
            Some(template) => {
                expand(template, &[('h', pass.host)], None).unwrap_or_else(|_| template.to_owned())
            }
            None => pass.host.to_owned(),
        };
        let mut result = true;
        let mut attributes = 0;
        let mut words = words.iter();
        while let Some(word) = words.next() {
            if word.starts_with('#') {
                break;
            }
            let (negate, attribute) = match word.strip_prefix('!') {
                Some(a) => (true, a),
                None => (false, word.as_str()),
            };
            if attribute.eq_ignore_ascii_case("all") {
                let trailing = words.next().filter(|w| !w.is_empty() && !w.starts_with('#'));
                if attributes > 1 || trailing.is_some() {
                    return Err(error(format!(
                        "{file} line {number}: '{word}' cannot be combined with other Match attributes"
                    )));
                }
                return Ok(result && !negate);
            }
            attributes += 1;
            if attribute.eq_ignore_ascii_case("canonical")
                || attribute.eq_ignore_ascii_case("final")
            {
                if attribute.eq_ignore_ascii_case("final") {
                    self.want_final = true;
                }
                if pass.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let Some(arg) = words.next().filter(|a| !a.is_empty() && !a.starts_with('#')) else {
                return Err(error(format!("Missing Match criteria for {attribute}")));
            };
            let matched = match attribute.to_ascii_lowercase().as_str() {
                "host" => match_hostname(&host, arg) == ListMatch::Match,
                "originalhost" => match_hostname(pass.original, arg) == ListMatch::Match,
                "user" => match_pattern_list(&ruser, arg, false) == ListMatch::Match,
                "localuser" => {
                    match_pattern_list(&self.ctx.local_user, arg, false) == ListMatch::Match
                }
                "exec" => {
                    let info = TokenInfo::new(
                        self.ctx,
                        &host,
                        pass.original,
                        port,
                        &ruser,
                        self.layer.text(Kw::HostKeyAlias),
                    );
                    let command = expand(arg, &info.tokens(), None)
                        .map_err(|e| error(format!("percent_expand: {e}")))?;
                    if !result {
                        continue;
                    }
                    let Some(exec) = self.ctx.exec else {
                        return Err(LineError {
                            message: format!("{file} line {number}: match exec '{command}' error"),
                            fatal: true,
                        });
                    };
                    exec.run(&command).map_err(|_| LineError {
                        message: format!("{file} line {number}: match exec '{command}' error"),
                        fatal: true,
                    })?
                }
                _ => return Err(error(format!("Unsupported Match attribute {attribute}"))),
            };
            if matched == negate {
                result = false;
            }
        }
        if attributes == 0 {
            return Err(error("One or more attributes required for Match".into()));
        }
        Ok(result)
    }
}

/// The values of the `%` tokens (OpenSSH's `DEFAULT_CLIENT_PERCENT_EXPAND_ARGS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// `%C`: SHA-1 of `%l%h%p%r`, in hex.
    pub conn_hash: String,
    /// `%L`: the local host name without its domain.
    pub short_host: String,
    /// `%i`: the local uid.
    pub uid: String,
    /// `%k`: the host key alias, or the host as given.
    pub key_alias: String,
    /// `%l`: the local host name with its domain.
    pub this_host: String,
    /// `%n`: the host as given on the command line.
    pub host_arg: String,
    /// `%p`: the remote port.
    pub port: String,
    /// `%d`: the local home directory.
    pub home: String,
    /// `%h`: the remote host name.
    pub host: String,
    /// `%r`: the remote user.
    pub remote_user: String,
    /// `%u`: the local user.
    pub local_user: String,
}

impl TokenInfo {
    fn new(
        ctx: &ClientContext<'_>,
        host: &str,
        original: &str,
        port: u16,
        user: &str,
        alias: Option<&str>,
    ) -> Self {
        let this_host = ctx.local_host.clone();
        let short_host = this_host.split('.').next().unwrap_or("").to_owned();
        let port = port.to_string();
        let hash_input = format!("{this_host}{host}{port}{user}");
        let digest =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, hash_input.as_bytes());
        let conn_hash = digest.as_ref().iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Self {
            conn_hash,
            short_host,
            uid: ctx.uid.to_string(),
            key_alias: alias.unwrap_or(original).to_owned(),
            this_host,
            host_arg: original.to_owned(),
            port,
            home: ctx.home.clone(),
            host: host.to_owned(),
            remote_user: user.to_owned(),
            local_user: ctx.local_user.clone(),
        }
    }

    /// The token table for the keywords that take every token but the connection-time ones
    /// (`ControlPath`, `IdentityFile`, `UserKnownHostsFile`, `RemoteCommand`, `Match exec`,
    /// ...).
    pub fn tokens(&self) -> Vec<(char, &str)> {
        vec![
            ('C', &self.conn_hash),
            ('L', &self.short_host),
            ('i', &self.uid),
            ('k', &self.key_alias),
            ('l', &self.this_host),
            ('n', &self.host_arg),
            ('p', &self.port),
            ('d', &self.home),
            ('h', &self.host),
            ('r', &self.remote_user),
            ('u', &self.local_user),
        ]
    }

    /// The tokens `ProxyCommand` and `ProxyJump` accept (`%h %n %p %r`).
    pub fn proxy_tokens(&self) -> Vec<(char, &str)> {
        vec![('h', &self.host), ('n', &self.host_arg), ('p', &self.port), ('r', &self.remote_user)]
    }
}

/// `StrictHostKeyChecking`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrictHostKeyChecking {
    /// `yes`: never add keys; refuse unknown hosts.
    Yes,
    /// `accept-new`: add new keys, refuse changed ones.
    AcceptNew,
    /// `no` / `off`: add new keys, connect anyway (with restrictions) on changed ones.
    Off,
    /// `ask` (the default).
    Ask,
}

/// `RequestTTY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestTty {
    /// `auto`: when there is no command and stdin is a terminal.
    Auto,
    /// `no`.
    No,
    /// `yes`: when stdin is a terminal.
    Yes,
    /// `force`.
    Force,
}

/// `ProxyJump`'s destination hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyJump {
    /// The user for the jump host.
    pub user: Option<String>,
    /// The jump host.
    pub host: String,
    /// Its port.
    pub port: Option<u16>,
    /// Earlier hops (`-J` of the jump host's own connection), as written.
    pub extra: Option<String>,
}

/// The effective client configuration for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each field is the keyword of the same name
pub struct SshConfig {
    /// The host as given on the command line.
    pub host_arg: String,
    pub user: String,
    /// The host to connect to (`HostName` expanded, lower-cased unless an address).
    pub hostname: String,
    pub port: u16,
    pub address_family: u8,
    pub batch_mode: bool,
    pub compression: bool,
    pub exit_on_forward_failure: bool,
    pub forward_agent: bool,
    /// `ForwardAgent` given as a socket path (tilde and tokens expanded).
    pub forward_agent_socket: Option<String>,
    pub hash_known_hosts: bool,
    pub identities_only: bool,
    pub kbd_interactive_authentication: bool,
    pub password_authentication: bool,
    pub pubkey_authentication: bool,
    pub request_tty: RequestTty,
    pub strict_host_key_checking: StrictHostKeyChecking,
    pub gateway_ports: bool,
    pub clear_all_forwardings: bool,
    pub connection_attempts: u32,
    /// Seconds; `None` for the system's timeout.
    pub connect_timeout: Option<u32>,
    pub number_of_password_prompts: u32,
    pub server_alive_count_max: u32,
    pub server_alive_interval: u32,
    pub bind_address: Option<String>,
    pub ciphers: Vec<&'static str>,
    pub macs: Vec<&'static str>,
    pub kex_algorithms: Vec<&'static str>,
    pub host_key_algorithms: Vec<&'static str>,
    pub pubkey_accepted_algorithms: Vec<&'static str>,
    pub host_key_alias: Option<String>,
    /// Expanded (`~`, tokens, `${VAR}`); `None` for the `SSH_AUTH_SOCK` default.
    pub identity_agent: Option<String>,
    /// Expanded with the default tokens.
    pub remote_command: Option<String>,
    pub log_level: LogLevel,
    pub preferred_authentications: Option<String>,
    /// With tokens unexpanded (`%h %n %p %r` expand at connection time); `None` for none.
    pub proxy_command: Option<String>,
    pub proxy_jump: Option<ProxyJump>,
    pub local_forwards: Vec<Forward>,
    pub remote_forwards: Vec<Forward>,
    /// As written (`~` and tokens expand when the files are read; see
    /// [`SshConfig::expand_path`]).
    pub identity_files: Vec<String>,
    pub certificate_files: Vec<String>,
    pub global_known_hosts_files: Vec<String>,
    /// Expanded (`~`, tokens, `${VAR}`).
    pub user_known_hosts_files: Vec<String>,
    pub send_env: Vec<String>,
    pub set_env: Vec<String>,
    /// `None` for no escape character.
    pub escape_char: Option<u8>,
    /// Bytes (0: the cipher's default) and seconds (0: none).
    pub rekey_limit: (u64, u32),
    pub control_master: u8,
    pub control_path: Option<String>,
    pub control_persist: (bool, u32),
    /// The `%` token values for this destination.
    pub tokens: TokenInfo,
    /// OpenSSH's messages for deprecated and unsupported keywords.
    pub warnings: Vec<String>,
    /// Everything else, as `ssh -G` prints it.
    rest: Rest,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rest {
    values: BTreeMap<Kw, Value>,
}

impl Rest {
    fn flag(&self, kw: Kw, default: bool) -> bool {
        match self.values.get(&kw) {
            Some(Value::Flag(b)) => *b,
            _ => default,
        }
    }

    fn choice(&self, kw: Kw, default: u8) -> u8 {
        match self.values.get(&kw) {
            Some(Value::Choice(c)) => *c,
            _ => default,
        }
    }

    fn int(&self, kw: Kw, default: i64) -> i64 {
        match self.values.get(&kw) {
            Some(Value::Int(v)) => *v,
            _ => default,
        }
    }

    fn text(&self, kw: Kw) -> Option<String> {
        match self.values.get(&kw) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        }
    }

    fn list(&self, kw: Kw) -> Vec<String> {
        match self.values.get(&kw) {
            Some(Value::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
}

const DEFAULT_IDENTITIES: &[&str] = &[
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

fn algorithms(rest: &Rest, kw: Kw, category: Category) -> Result<Vec<&'static str>, ConfigError> {
    match rest.text(kw) {
        None => Ok(category.defaults(Side::Client).to_vec()),
        Some(v) => configure(category, Side::Client, &v)
            .map_err(|e| ConfigError::new(format!("{}: {e}", kw.name()))),
    }
}

fn resolve(
    layer: &Layer,
    ctx: &ClientContext<'_>,
    host_arg: &str,
    hostname: &str,
) -> Result<SshConfig, ConfigError> {
    let mut rest = Rest { values: layer.values.clone() };
    {
        let known = rest.list(Kw::UserKnownHostsFile);
        let default_known = known.is_empty() || known == ["~/.ssh/known_hosts"];
        if !rest.values.contains_key(&Kw::UpdateHostKeys) {
            let dns = rest.choice(Kw::VerifyHostKeyDns, 0);
            rest.values
                .insert(Kw::UpdateHostKeys, Value::Choice(u8::from(dns == 0 && default_known)));
        }
    }
    let user = rest.text(Kw::User).unwrap_or_else(|| ctx.local_user.clone());
    let port = u16::try_from(rest.int(Kw::Port, 22)).unwrap_or(22);
    let alias = rest.text(Kw::HostKeyAlias).map(|a| a.to_ascii_lowercase());
    let tokens = TokenInfo::new(ctx, hostname, host_arg, port, &user, alias.as_deref());
    let table = tokens.tokens();
    let env_fail = |_: &str| None;
    let env: &dyn Lookup = ctx.env.unwrap_or(&env_fail);
    let full = |s: &str| -> Result<String, ConfigError> {
        expand(&ctx.tilde(s), &table, Some(env))
            .map_err(|e| ConfigError::new(format!("percent_expand: {e}")))
    };
    let clear_all = rest.flag(Kw::ClearAllForwardings, false);
    let (local_forwards, remote_forwards) = if clear_all {
        (Vec::new(), Vec::new())
    } else {
        (layer.local_forwards.clone(), layer.remote_forwards.clone())
    };
    let expand_forward = |f: &Forward| -> Result<Forward, ConfigError> {
        let end = |e: &Endpoint| -> Result<Endpoint, ConfigError> {
            Ok(match e {
                Endpoint::Unix(p) => Endpoint::Unix(
                    expand(p, &table, None)
                        .map_err(|e| ConfigError::new(format!("percent_expand: {e}")))?,
                ),
                other => other.clone(),
            })
        };
        Ok(Forward { listen: end(&f.listen)?, connect: f.connect.as_ref().map(end).transpose()? })
    };
    let mut identity_files: Vec<String> =
        layer.identity_files.iter().map(|(p, _)| p.clone()).collect();
    if identity_files.is_empty() {
        identity_files = DEFAULT_IDENTITIES.iter().map(|s| (*s).to_owned()).collect();
    }
    let mut user_known = rest.list(Kw::UserKnownHostsFile);
    if user_known.is_empty() {
        user_known = vec!["~/.ssh/known_hosts".into(), "~/.ssh/known_hosts2".into()];
    }
    if user_known.len() > 1 && user_known.iter().any(|f| f.eq_ignore_ascii_case("none")) {
        return Err(ConfigError::new(
            "Invalid UserKnownHostsFiles: \"none\" appears with other entries",
        ));
    }
    let user_known_hosts_files = if user_known == ["none"] {
        Vec::new()
    } else {
        user_known.iter().map(|f| full(f)).collect::<Result<_, _>>()?
    };
    let mut global_known = rest.list(Kw::GlobalKnownHostsFile);
    if global_known.is_empty() {
        global_known = vec!["/etc/ssh/ssh_known_hosts".into(), "/etc/ssh/ssh_known_hosts2".into()];
    }
    let (forward_agent, forward_agent_socket) = match rest.values.get(&Kw::ForwardAgent) {
        Some(Value::Flag(b)) => (*b, None),
        Some(Value::Text(path)) => (true, Some(full(path)?)),
        _ => (false, None),
    };
    let proxy_jump = match rest.values.get(&Kw::ProxyJump) {
        Some(Value::Jump(Some(Jump { user, host, port, extra }))) => Some(ProxyJump {
            user: user.clone(),
            host: host.clone(),
            port: *port,
            extra: extra.clone(),
        }),
        _ => None,
    };
    let none_is_none = |v: Option<String>| v.filter(|s| !s.eq_ignore_ascii_case("none"));
    let remote_command = match none_is_none(rest.text(Kw::RemoteCommand)) {
        Some(c) => Some(
            expand(&c, &table, None)
                .map_err(|e| ConfigError::new(format!("percent_expand: {e}")))?,
        ),
        None => None,
    };
    let control_path = match none_is_none(rest.text(Kw::ControlPath)) {
        Some(p) => Some(full(&p)?),
        None => None,
    };
    let identity_agent = match rest.text(Kw::IdentityAgent) {
        Some(p) if p.eq_ignore_ascii_case("none") || p == "SSH_AUTH_SOCK" => Some(p),
        Some(p) => Some(full(&p)?),
        None => None,
    };
    if rest.choice(Kw::UpdateHostKeys, 0) == 2 {
        let persist = matches!(rest.values.get(&Kw::ControlPersist), Some(Value::Persist(true, _)));
        let quiet = rest
            .text(Kw::LogLevel)
            .and_then(|l| LogLevel::parse(&l))
            .is_some_and(|l| l < LogLevel::Info);
        // ssh.c: "UpdateHostKeys=ask is incompatible with ..." (a command given on the command
        // line disables it too; the binary knows that).
        if (persist && control_path.is_some())
            || remote_command.is_some()
            || rest.choice(Kw::RequestTty, 0) == 1
            || quiet
        {
            rest.values.insert(Kw::UpdateHostKeys, Value::Choice(0));
        }
    }
    let request_tty = match rest.choice(Kw::RequestTty, 0) {
        1 => RequestTty::No,
        2 => RequestTty::Yes,
        3 => RequestTty::Force,
        _ => RequestTty::Auto,
    };
    let strict_host_key_checking = match rest.choice(Kw::StrictHostKeyChecking, 3) {
        2 => StrictHostKeyChecking::Yes,
        1 => StrictHostKeyChecking::AcceptNew,
        0 => StrictHostKeyChecking::Off,
        _ => StrictHostKeyChecking::Ask,
    };
    let connect_timeout = match rest.int(Kw::ConnectTimeout, -1) {
        t if t < 0 => None,
        t => u32::try_from(t).ok(),
    };
    let control_persist = match rest.values.get(&Kw::ControlPersist) {
        Some(Value::Persist(on, t)) => (*on, *t),
        _ => (false, 0),
    };
    Ok(SshConfig {
        host_arg: host_arg.to_owned(),
        user,
        hostname: hostname.to_owned(),
        port,
        address_family: rest.choice(Kw::AddressFamily, 0),
        batch_mode: rest.flag(Kw::BatchMode, false),
        compression: rest.choice(Kw::Compression, 0) == 1,
        exit_on_forward_failure: rest.flag(Kw::ExitOnForwardFailure, false),
        forward_agent,
        forward_agent_socket,
        hash_known_hosts: rest.flag(Kw::HashKnownHosts, false),
        identities_only: rest.flag(Kw::IdentitiesOnly, false),
        kbd_interactive_authentication: rest.flag(Kw::KbdInteractiveAuthentication, true),
        password_authentication: rest.flag(Kw::PasswordAuthentication, true),
        pubkey_authentication: rest.choice(Kw::PubkeyAuthentication, 3) != 0,
        request_tty,
        strict_host_key_checking,
        gateway_ports: rest.flag(Kw::GatewayPorts, false),
        clear_all_forwardings: clear_all,
        connection_attempts: u32::try_from(rest.int(Kw::ConnectionAttempts, 1)).unwrap_or(1),
        connect_timeout,
        number_of_password_prompts: u32::try_from(rest.int(Kw::NumberOfPasswordPrompts, 3))
            .unwrap_or(3),
        server_alive_count_max: u32::try_from(rest.int(Kw::ServerAliveCountMax, 3)).unwrap_or(3),
        server_alive_interval: u32::try_from(rest.int(Kw::ServerAliveInterval, 0).max(0))
            .unwrap_or(0),
        bind_address: rest.text(Kw::BindAddress),
        ciphers: algorithms(&rest, Kw::Ciphers, Category::Cipher)?,
        macs: algorithms(&rest, Kw::Macs, Category::Mac)?,
        kex_algorithms: algorithms(&rest, Kw::KexAlgorithms, Category::Kex)?,
        host_key_algorithms: algorithms(&rest, Kw::HostKeyAlgorithms, Category::HostKey)?,
        pubkey_accepted_algorithms: match rest.text(Kw::PubkeyAcceptedAlgorithms) {
            None => crate::crypto::algorithms::DEFAULT_PUBKEY_ALGORITHMS.to_vec(),
            Some(v) => crate::crypto::algorithms::configure_pubkey(&v).map_err(|e| {
                ConfigError::new(format!("{}: {e}", Kw::PubkeyAcceptedAlgorithms.name()))
            })?,
        },
        host_key_alias: alias,
        identity_agent,
        remote_command,
        log_level: rest
            .text(Kw::LogLevel)
            .and_then(|l| LogLevel::parse(&l))
            .unwrap_or(LogLevel::Info),
        preferred_authentications: rest.text(Kw::PreferredAuthentications),
        proxy_command: none_is_none(rest.text(Kw::ProxyCommand)),
        proxy_jump,
        local_forwards: local_forwards.iter().map(expand_forward).collect::<Result<_, _>>()?,
        remote_forwards: remote_forwards.iter().map(expand_forward).collect::<Result<_, _>>()?,
        identity_files,
        certificate_files: layer.certificate_files.iter().map(|(p, _)| p.clone()).collect(),
        global_known_hosts_files: global_known,
        user_known_hosts_files,
        send_env: layer.send_env.clone(),
        set_env: rest.list(Kw::SetEnv),
        escape_char: match rest.values.get(&Kw::EscapeChar) {
            Some(Value::Escape(e)) => *e,
            _ => Some(b'~'),
        },
        rekey_limit: (
            u64::try_from(rest.int(Kw::RekeyLimit, 0)).unwrap_or(0),
            u32::try_from(rest.int(Kw::RekeyInterval, 0)).unwrap_or(0),
        ),
        control_master: rest.choice(Kw::ControlMaster, 0),
        control_path,
        control_persist,
        tokens,
        warnings: Vec::new(),
        rest,
    })
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// OpenSSH's `vis(VIS_WHITE)` of one byte, as `-G` prints the escape character.
fn vis(c: u8) -> String {
    match c {
        b' ' => "\\040".into(),
        b'\t' => "\\t".into(),
        b'\n' => "\\n".into(),
        0..=0x1f => format!("\\^{}", char::from(c + 64)),
        0x7f => "\\^?".into(),
        0x80..=0xff => format!("\\M-{}", vis(c - 0x80).trim_start_matches('\\')),
        _ => char::from(c).to_string(),
    }
}

impl SshConfig {
    /// Expands `~`, the `%` tokens and (through `env`) `${VAR}` in a path such as an
    /// `IdentityFile` or `CertificateFile`, as OpenSSH does when it reads them.
    pub fn expand_path(
        &self,
        path: &str,
        home: &str,
        env: Option<&dyn Lookup>,
    ) -> Result<String, ConfigError> {
        let tilde = |user: Option<&str>| user.is_none().then(|| home.to_owned());
        let path = expand_tilde(path, &tilde).map_err(|e| ConfigError::new(e.to_string()))?;
        expand(&path, &self.tokens.tokens(), env)
            .map_err(|e| ConfigError::new(format!("percent_expand: {e}")))
    }

    /// The `ProxyCommand` with `%h %n %p %r` expanded.
    pub fn expanded_proxy_command(&self) -> Option<Result<String, ConfigError>> {
        self.proxy_command.as_ref().map(|c| {
            expand(c, &self.tokens.proxy_tokens(), None)
                .map_err(|e| ConfigError::new(format!("percent_expand: {e}")))
        })
    }

    /// The configuration as `ssh -G` prints it (OpenSSH 9.2's order and formats, without
    /// the GSSAPI lines of a GSSAPI build).
    pub fn dump(&self) -> String {
        let r = &self.rest;
        let mut o = String::new();
        let mut line = |k: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(o, "{k} {v}");
        };
        line("host", &self.host_arg);
        line("user", &self.user);
        line("hostname", &self.hostname);
        line("port", &self.port);
        line("addressfamily", &choice_name(ADDRESS_FAMILY, self.address_family));
        line("batchmode", &yes_no(self.batch_mode));
        line("canonicalizefallbacklocal", &yes_no(r.flag(Kw::CanonicalizeFallbackLocal, true)));
        line(
            "canonicalizehostname",
            &choice_name(CANONICALIZE, r.choice(Kw::CanonicalizeHostname, 0)),
        );
        line("checkhostip", &yes_no(r.flag(Kw::CheckHostIp, false)));
        line("compression", &yes_no(self.compression));
        line("controlmaster", &choice_name(CONTROL_MASTER, self.control_master));
        line("enablesshkeysign", &yes_no(r.flag(Kw::EnableSshKeysign, false)));
        line("clearallforwardings", &yes_no(self.clear_all_forwardings));
        line("exitonforwardfailure", &yes_no(self.exit_on_forward_failure));
        line("fingerprinthash", &r.text(Kw::FingerprintHash).unwrap_or_else(|| "SHA256".into()));
        line("forwardx11", &yes_no(r.flag(Kw::ForwardX11, false)));
        line("forwardx11trusted", &yes_no(r.flag(Kw::ForwardX11Trusted, false)));
        line("gatewayports", &yes_no(self.gateway_ports));
        line("hashknownhosts", &yes_no(self.hash_known_hosts));
        line("hostbasedauthentication", &yes_no(r.flag(Kw::HostbasedAuthentication, false)));
        line("identitiesonly", &yes_no(self.identities_only));
        line("kbdinteractiveauthentication", &yes_no(self.kbd_interactive_authentication));
        line(
            "nohostauthenticationforlocalhost",
            &yes_no(r.flag(Kw::NoHostAuthenticationForLocalhost, false)),
        );
        line("passwordauthentication", &yes_no(self.password_authentication));
        line("permitlocalcommand", &yes_no(r.flag(Kw::PermitLocalCommand, false)));
        line("proxyusefdpass", &yes_no(r.flag(Kw::ProxyUseFdpass, false)));
        line("pubkeyauthentication", &choice_name(PUBKEY, r.choice(Kw::PubkeyAuthentication, 3)));
        line("requesttty", &choice_name(REQUEST_TTY, r.choice(Kw::RequestTty, 0)));
        line("sessiontype", &choice_name(SESSION_TYPE, r.choice(Kw::SessionType, 2)));
        line("stdinnull", &yes_no(r.flag(Kw::StdinNull, false)));
        line("forkafterauthentication", &yes_no(r.flag(Kw::ForkAfterAuthentication, false)));
        line("streamlocalbindunlink", &yes_no(r.flag(Kw::StreamLocalBindUnlink, false)));
        line("stricthostkeychecking", &choice_name(STRICT, r.choice(Kw::StrictHostKeyChecking, 3)));
        line("tcpkeepalive", &yes_no(r.flag(Kw::TcpKeepAlive, true)));
        line("tunnel", &choice_name(TUNNEL, r.choice(Kw::Tunnel, 0)));
        line("verifyhostkeydns", &choice_name(YES_NO_ASK, r.choice(Kw::VerifyHostKeyDns, 0)));
        line("visualhostkey", &yes_no(r.flag(Kw::VisualHostKey, false)));
        line("updatehostkeys", &choice_name(YES_NO_ASK, r.choice(Kw::UpdateHostKeys, 0)));
        line("enableescapecommandline", &yes_no(r.flag(Kw::EnableEscapeCommandline, false)));
        line("canonicalizemaxdots", &r.int(Kw::CanonicalizeMaxDots, 1));
        line("connectionattempts", &self.connection_attempts);
        line("forwardx11timeout", &r.int(Kw::ForwardX11Timeout, 1200));
        line("numberofpasswordprompts", &self.number_of_password_prompts);
        line("serveralivecountmax", &self.server_alive_count_max);
        line("serveraliveinterval", &self.server_alive_interval);
        line("requiredrsasize", &r.int(Kw::RequiredRsaSize, 1024));
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                line(k, &v);
            }
        };
        opt("bindaddress", self.bind_address.clone());
        opt("bindinterface", r.text(Kw::BindInterface));
        opt("ciphers", Some(self.ciphers.join(",")));
        opt("controlpath", self.control_path.clone());
        opt("hostkeyalgorithms", Some(self.host_key_algorithms.join(",")));
        opt("hostkeyalias", self.host_key_alias.clone());
        opt(
            "hostbasedacceptedalgorithms",
            Some(Category::HostKey.defaults(Side::Client).join(",")),
        );
        opt("identityagent", self.identity_agent.clone());
        opt("ignoreunknown", r.text(Kw::IgnoreUnknown));
        opt("kbdinteractivedevices", r.text(Kw::KbdInteractiveDevices));
        opt("kexalgorithms", Some(self.kex_algorithms.join(",")));
        opt("casignaturealgorithms", Some(Category::HostKey.defaults(Side::Client).join(",")));
        opt("localcommand", r.text(Kw::LocalCommand).filter(|c| !c.eq_ignore_ascii_case("none")));
        opt("remotecommand", self.remote_command.clone());
        opt("loglevel", Some(self.log_level.name().to_owned()));
        opt("macs", Some(self.macs.join(",")));
        opt(
            "securitykeyprovider",
            Some(r.text(Kw::SecurityKeyProvider).unwrap_or_else(|| "internal".into()))
                .filter(|p| !p.eq_ignore_ascii_case("none")),
        );
        opt("preferredauthentications", self.preferred_authentications.clone());
        opt("pubkeyacceptedalgorithms", Some(self.pubkey_accepted_algorithms.join(",")));
        opt(
            "revokedhostkeys",
            r.text(Kw::RevokedHostKeys).filter(|c| !c.eq_ignore_ascii_case("none")),
        );
        opt(
            "xauthlocation",
            Some(r.text(Kw::XAuthLocation).unwrap_or_else(|| "/usr/bin/xauth".into())),
        );
        opt(
            "knownhostscommand",
            r.text(Kw::KnownHostsCommand).filter(|c| !c.eq_ignore_ascii_case("none")),
        );
        // OpenSSH prints a local forward to a Unix socket under dynamicforward too, and a
        // dynamic remote forward with its internal "socks" target.
        for f in &self.local_forwards {
            if matches!(f.connect, None | Some(Endpoint::Unix(_))) {
                line("dynamicforward", &Forward::format_end(&f.listen));
            }
        }
        for f in &self.local_forwards {
            if let Some(c) = &f.connect {
                line(
                    "localforward",
                    &format!("{} {}", Forward::format_end(&f.listen), Forward::format_end(c)),
                );
            }
        }
        for f in &self.remote_forwards {
            let target = match &f.connect {
                Some(c) => Forward::format_end(c),
                None => "[socks]:0".to_owned(),
            };
            line("remoteforward", &format!("{} {target}", Forward::format_end(&f.listen)));
        }
        for f in &self.identity_files {
            line("identityfile", f);
        }
        let oneline =
            |items: &[String]| if items.is_empty() { "none".to_owned() } else { items.join(" ") };
        line("canonicaldomains", &oneline(&r.list(Kw::CanonicalDomains)));
        for f in &self.certificate_files {
            line("certificatefile", f);
        }
        line("globalknownhostsfile", &oneline(&self.global_known_hosts_files));
        line("userknownhostsfile", &oneline(&self.user_known_hosts_files));
        for v in &self.send_env {
            line("sendenv", v);
        }
        for v in &self.set_env {
            line("setenv", v);
        }
        line("logverbose", &oneline(&r.list(Kw::LogVerbose)));
        let opens = r.list(Kw::PermitRemoteOpen);
        line(
            "permitremoteopen",
            &if opens.is_empty() { "any".to_owned() } else { opens.join(" ") },
        );
        match r.values.get(&Kw::AddKeysToAgent) {
            Some(Value::AddKeys(v, t)) if *t > 0 => {
                line("addkeystoagent", &format!("{}{t}", if *v == 3 { "confirm " } else { "" }));
            }
            Some(Value::AddKeys(v, _)) => {
                line("addkeystoagent", &choice_name(YES_NO_ASK_CONFIRM, *v))
            }
            _ => line("addkeystoagent", &"false"),
        }
        match &r.values.get(&Kw::ForwardAgent) {
            Some(Value::Text(_)) => {
                line("forwardagent", &self.forward_agent_socket.clone().unwrap_or_default())
            }
            _ => line("forwardagent", &yes_no(self.forward_agent)),
        }
        match self.connect_timeout {
            None => line("connecttimeout", &"none"),
            Some(t) => line("connecttimeout", &t),
        }
        let tun = match r.values.get(&Kw::TunnelDevice) {
            Some(Value::TunnelDevice(l, rm)) => {
                let f = |v: &Option<u32>| v.map_or("any".to_owned(), |n| n.to_string());
                format!("{}:{}", f(l), f(rm))
            }
            _ => "any:any".into(),
        };
        line("tunneldevice", &tun);
        let cnames = match r.values.get(&Kw::CanonicalizePermittedCnames) {
            Some(Value::Cnames(c)) if !(c.len() == 1 && c[0].0.eq_ignore_ascii_case("none")) => {
                c.iter().map(|(a, b)| format!("{a}:{b}")).collect::<Vec<_>>().join(" ")
            }
            _ => "none".into(),
        };
        line("canonicalizePermittedcnames", &cnames);
        match self.control_persist {
            (true, t) if t > 0 => line("controlpersist", &t),
            (on, _) => line("controlpersist", &yes_no(on)),
        }
        match self.escape_char {
            None => line("escapechar", &"none"),
            Some(c) => line("escapechar", &vis(c)),
        }
        let (qi, qb) = match r.values.get(&Kw::IpQos) {
            Some(Value::IpQos(a, b)) => (*a, *b),
            _ => (0x48, 0x20),
        };
        line("ipqos", &format!("{} {}", ipqos_name(qi), ipqos_name(qb)));
        line("rekeylimit", &format!("{} {}", self.rekey_limit.0, self.rekey_limit.1));
        line("streamlocalbindmask", &format!("0{:o}", r.int(Kw::StreamLocalBindMask, 0o177)));
        let facility =
            r.text(Kw::SyslogFacility).and_then(|f| Facility::parse(&f)).unwrap_or(Facility::User);
        line("syslogfacility", &facility.name());
        match &self.proxy_jump {
            Some(j) => {
                let numeric =
                    j.host.contains(':') || j.host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                let mut s = String::new();
                if let Some(e) = &j.extra {
                    let _ = write!(s, "{e},");
                }
                if let Some(u) = &j.user {
                    let _ = write!(s, "{u}@");
                }
                if numeric {
                    let _ = write!(s, "[{}]", j.host);
                } else {
                    s.push_str(&j.host);
                }
                if let Some(p) = j.port {
                    let _ = write!(s, ":{p}");
                }
                line("proxyjump", &s);
            }
            None => {
                if let Some(c) = &self.proxy_command {
                    line("proxycommand", c);
                }
            }
        }
        o
    }
}

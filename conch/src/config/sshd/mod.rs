//! `sshd_config`: loading (with `-o` overrides and `Include`), `Match` evaluation, and the
//! effective configuration `sshd -T` prints.
//!
//! # Use
//!
//! ```
//! use twine_conch::config::sshd::{ConnectionInfo, SshdLoader};
//! use twine_conch::config::MemoryFilesystem;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut fs = MemoryFilesystem::new();
//! fs.insert("/etc/ssh/sshd_config", "Port 2222\nMatch User alice\n  PasswordAuthentication no\n");
//! let file = SshdLoader::new(&fs)
//!     .option("LogLevel DEBUG3")
//!     .load(Some("/etc/ssh/sshd_config"))?;
//! let startup = file.effective(None)?;
//! assert_eq!(startup.ports, [2222]);
//! let alice = ConnectionInfo { user: Some("alice".into()), ..ConnectionInfo::default() };
//! assert!(!file.effective(Some(&alice))?.password_authentication);
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics (OpenSSH's)
//!
//! At load, `-o` options are applied first, then the file; the first value obtained for a
//! keyword wins (a few keywords accumulate: `Port`, `ListenAddress`, `HostKey`,
//! `HostCertificate`, `AllowUsers`, `DenyUsers`, `AllowGroups`, `DenyGroups`, `AcceptEnv`,
//! `Subsystem`). Lines inside `Match` blocks are checked but not applied, except under
//! `Match all`. For a connection, the file is walked again with only the matching `Match`
//! blocks active; whatever they set (first value wins among them) replaces the value from the
//! global section, `-o` options included.

mod effective;
mod keywords;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::expand::expand_tilde;
use super::fs::Filesystem;
use super::lex::{self, Split};
use super::pattern::{match_address_list, match_hostname, match_pattern_list, ListMatch};
use super::shared::io_text;
use super::values::parse_port;
use super::{ConfigError, Lookup, Support, MAX_INCLUDE_DEPTH};
use keywords::{lookup, parse_value, Accumulation, Args, Kw, LineCtx, LineError, Scope, Value};

pub use effective::{
    AddressFamily, Forwarding, GatewayPorts, ListenAddress, PermitRootLogin, SshdConfig, Subsystem,
    UserAccess,
};

/// The release string `Match Version` compares with.
pub const RELEASE: &str = concat!("Conch_", env!("CARGO_PKG_VERSION"));

/// Whether `keyword` is an `sshd_config` keyword, and how we support it.
pub fn keyword_support(keyword: &str) -> Option<Support> {
    lookup(keyword).map(|entry| entry.kw.support())
}

/// Reads `sshd_config` files: the file system, where relative paths lead, and the command
/// line's `-o` and `-p` options.
pub struct SshdLoader<'a> {
    fs: &'a dyn Filesystem,
    system_dir: String,
    cwd: String,
    home: Option<String>,
    user_home: Option<&'a dyn Lookup>,
    options: Vec<String>,
    ports: Vec<u16>,
}

impl std::fmt::Debug for SshdLoader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshdLoader")
            .field("system_dir", &self.system_dir)
            .field("cwd", &self.cwd)
            .field("options", &self.options)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl<'a> SshdLoader<'a> {
    /// A loader reading through `fs`, with relative `Include` paths under `/etc/ssh`, the
    /// working directory `/` and no home directory.
    pub fn new(fs: &'a dyn Filesystem) -> Self {
        Self {
            fs,
            system_dir: "/etc/ssh".into(),
            cwd: "/".into(),
            home: None,
            user_home: None,
            options: Vec::new(),
            ports: Vec::new(),
        }
    }

    /// Where relative `Include` paths lead (OpenSSH's `SSHDIR`).
    pub fn system_dir(mut self, dir: impl Into<String>) -> Self {
        self.system_dir = dir.into();
        self
    }

    /// The working directory relative paths (`HostKey key`) are resolved against.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = dir.into();
        self
    }

    /// The running user's home directory, for `~` in paths.
    pub fn home(mut self, dir: impl Into<String>) -> Self {
        self.home = Some(dir.into());
        self
    }

    /// Looks up other users' home directories, for `~user` in paths.
    pub fn user_home(mut self, lookup: &'a dyn Lookup) -> Self {
        self.user_home = Some(lookup);
        self
    }

    /// Adds a `-o` option (`"Keyword value"` or `"Keyword=value"`), applied before the file.
    pub fn option(mut self, line: impl Into<String>) -> Self {
        self.options.push(line.into());
        self
    }

    /// Adds a `-p` port; with any, `Port` lines in files are ignored.
    pub fn port(mut self, port: u16) -> Self {
        self.ports.push(port);
        self
    }

    /// Loads the configuration at `path` (`None` for `-f none`: options and defaults only).
    pub fn load(&self, path: Option<&str>) -> Result<SshdConfigFile, ConfigError> {
        let bytes = match path {
            None => None,
            Some(p) => Some(
                self.fs.read(p).map_err(|e| ConfigError::new(format!("{p}: {}", io_text(&e))))?,
            ),
        };
        self.load_bytes(path.unwrap_or("none"), bytes.as_deref())
    }

    /// Loads a configuration from memory (`Include` still reads through the file system).
    /// Never panics, whatever the bytes.
    pub fn load_bytes(
        &self,
        name: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SshdConfigFile, ConfigError> {
        let mut state = Parser { loader: self, layer: Layer::default(), warnings: Vec::new() };
        for option in &self.options {
            state.command_line(option)?;
        }
        let items = match bytes {
            None => Vec::new(),
            Some(bytes) => {
                let mut active = true;
                state.file(name, bytes, 0, &mut active, false)?
            }
        };
        Ok(SshdConfigFile {
            items,
            base: state.layer,
            warnings: state.warnings,
            ports_from_command_line: self.ports.clone(),
        })
    }

    fn absolute(&self, path: &str) -> Result<String, String> {
        if path.eq_ignore_ascii_case("none") {
            return Ok("none".into());
        }
        let expanded = self.tilde(path)?;
        if expanded.starts_with('/') {
            return Ok(expanded);
        }
        let slash = if self.cwd.ends_with('/') { "" } else { "/" };
        Ok(format!("{}{slash}{expanded}", self.cwd))
    }

    fn tilde(&self, path: &str) -> Result<String, String> {
        let home = |user: Option<&str>| match user {
            None => self.home.clone(),
            Some(u) => self.user_home.and_then(|lookup| lookup.lookup(u)),
        };
        expand_tilde(path, &home).map_err(|e| format!("tilde_expand: {e}"))
    }
}

/// A loaded `sshd_config`: the startup settings and what `Match` evaluation needs.
#[derive(Clone, Debug)]
pub struct SshdConfigFile {
    items: Vec<Item>,
    base: Layer,
    warnings: Vec<String>,
    ports_from_command_line: Vec<u16>,
}

impl SshdConfigFile {
    /// Parses one file from memory with default settings (no `Include` target exists). For
    /// fuzzing: never panics.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let fs = super::MemoryFilesystem::new();
        SshdLoader::new(&fs).load_bytes("sshd_config", Some(bytes))
    }

    /// OpenSSH's log lines for deprecated and unsupported keywords (`... line 3: Deprecated
    /// option UsePrivilegeSeparation`), in file order.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every `Banner` file the configuration names, globally or in any `Match` block (for a
    /// server that must read them before it confines itself, as a privilege-separated worker).
    pub fn banner_files(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in self.texts_anywhere(Kw::Banner) {
            if !path.eq_ignore_ascii_case("none") && !out.iter().any(|p| p == path) {
                out.push(path.to_owned());
            }
        }
        out
    }

    /// Whether an `AuthorizedKeysCommand` or `AuthorizedPrincipalsCommand` may run for some
    /// connection: set globally or in any `Match` block (a server that answers key look-ups
    /// inline keeps them off its event loop then).
    pub fn runs_key_commands(&self) -> bool {
        [Kw::AuthorizedKeysCommand, Kw::AuthorizedPrincipalsCommand]
            .into_iter()
            .flat_map(|kw| self.texts_anywhere(kw))
            .any(|command| !command.eq_ignore_ascii_case("none"))
    }

    /// Whether an `AuthorizedKeysCommand` may run for some connection (globally or in a
    /// `Match` block): the keys a login may use then depend on the key offered.
    pub fn runs_authorized_keys_command(&self) -> bool {
        self.texts_anywhere(Kw::AuthorizedKeysCommand)
            .into_iter()
            .any(|command| !command.eq_ignore_ascii_case("none"))
    }

    /// Whether some connection may be refused by `RefuseConnection yes`: set globally or in
    /// any `Match` block.
    pub fn refuses_connections(&self) -> bool {
        fn walk(items: &[Item]) -> bool {
            items.iter().any(|item| match item {
                Item::Directive { kw: Kw::RefuseConnection, value: Value::Flag(yes) } => *yes,
                Item::Include(files) => files.iter().any(|f| walk(f)),
                _ => false,
            })
        }
        matches!(self.base.values.get(&Kw::RefuseConnection), Some(Value::Flag(true)))
            || walk(&self.items)
    }

    /// Whether a `Match` block tests the user's account (`Group`, `Invalid-User`): its
    /// settings then depend on the user database, not on the name alone.
    pub fn matches_on_account(&self) -> bool {
        fn walk(items: &[Item]) -> bool {
            items.iter().any(|item| match item {
                Item::Match(criteria) => criteria
                    .iter()
                    .any(|c| matches!(c, Criterion::Group(_) | Criterion::InvalidUser)),
                Item::Include(files) => files.iter().any(|f| walk(f)),
                Item::Directive { .. } => false,
            })
        }
        walk(&self.items)
    }

    /// Whether some connection's settings may depend on the user's groups: `AllowGroups` or
    /// `DenyGroups` set globally or in any `Match` block, or a `Match Group` block. When not, a
    /// server need not read the group database to authenticate anyone.
    pub fn uses_groups(&self) -> bool {
        fn walk(items: &[Item]) -> bool {
            items.iter().any(|item| match item {
                Item::Match(criteria) => criteria.iter().any(|c| matches!(c, Criterion::Group(_))),
                Item::Directive { kw, .. } => matches!(kw, Kw::AllowGroups | Kw::DenyGroups),
                Item::Include(files) => files.iter().any(|f| walk(f)),
            })
        }
        self.base.values.contains_key(&Kw::AllowGroups)
            || self.base.values.contains_key(&Kw::DenyGroups)
            || walk(&self.items)
    }

    /// The text values `kw` has in the file: the global one first, then every directive in
    /// `Match` blocks and included files, in file order.
    fn texts_anywhere(&self, kw: Kw) -> Vec<&str> {
        fn walk<'a>(items: &'a [Item], kw: Kw, out: &mut Vec<&'a str>) {
            for item in items {
                match item {
                    Item::Directive { kw: k, value: Value::Text(text) } if *k == kw => {
                        out.push(text);
                    }
                    Item::Include(files) => files.iter().for_each(|f| walk(f, kw, out)),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        if let Some(Value::Text(text)) = self.base.values.get(&kw) {
            out.push(text.as_str());
        }
        walk(&self.items, kw, &mut out);
        out
    }

    /// The effective configuration: at startup (`None`), or for a connection, whose matching
    /// `Match` blocks override the global values. `sshd -T` without `-C` uses
    /// [`ConnectionInfo::test`] with nothing set.
    pub fn effective(
        &self,
        connection: Option<&ConnectionInfo>,
    ) -> Result<SshdConfig, ConfigError> {
        let mut layer = self.base.clone();
        if let Some(ci) = connection {
            let mut matched = Layer::default();
            let mut active = false;
            walk(&self.items, &mut active, Flags::MatchOnly, &mut matched, ci)?;
            layer.overlay(&matched);
        }
        effective::resolve(&layer, &self.ports_from_command_line)
    }
}

/// What `Match` is evaluated against: the connection, or `sshd -T -C`'s test specification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The user name.
    pub user: Option<String>,
    /// Whether the user does not exist (`Match Invalid-User`).
    pub user_invalid: bool,
    /// The user's groups (primary and supplementary); `None` if the user does not exist.
    pub groups: Option<Vec<String>>,
    /// The client's host name (its address unless `UseDNS`).
    pub host: Option<String>,
    /// The client's address.
    pub address: Option<String>,
    /// The address the connection arrived on.
    pub local_address: Option<String>,
    /// The port the connection arrived on.
    pub local_port: Option<u16>,
    /// The routing domain.
    pub rdomain: Option<String>,
    /// Test mode (`sshd -T`): criteria whose attribute is missing do not match, instead of
    /// being an error.
    pub test: bool,
}

impl ConnectionInfo {
    /// An empty test specification (`sshd -T` without `-C`).
    pub fn test() -> Self {
        Self { test: true, ..Self::default() }
    }

    /// Parses `sshd -C`'s `user=..,host=..,addr=..,laddr=..,lport=..,rdomain=..` (test mode).
    /// Errors carry OpenSSH's message.
    pub fn parse_test_spec(spec: &str) -> Result<Self, String> {
        let mut ci = Self::test();
        for part in spec.split(',') {
            if part.is_empty() {
                break;
            }
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let value = value.to_owned();
            match key {
                "addr" => ci.address = Some(value),
                "host" => ci.host = Some(value),
                "user" => ci.user = Some(value),
                "laddr" => ci.local_address = Some(value),
                "rdomain" => ci.rdomain = Some(value),
                "invalid-user" if part.contains('=') => ci.user_invalid = value == "1",
                "lport" if part.contains('=') => match parse_port(&value) {
                    Some(p) => ci.local_port = Some(p),
                    None => {
                        return Err(format!(
                            "Invalid port '{value}' in test mode specification {part}"
                        ))
                    }
                },
                _ => return Err(format!("Invalid test mode specification {part}")),
            }
        }
        Ok(ci)
    }
}

/// A `Match` criterion.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Criterion {
    All,
    User(String),
    Group(String),
    Host(String),
    Address(String),
    LocalAddress(String),
    LocalPort(u16),
    RDomain(String),
    InvalidUser,
    Version(String),
}

/// A parsed line that matters after loading.
#[derive(Clone, Debug)]
enum Item {
    Directive { kw: Kw, value: Value },
    Match(Vec<Criterion>),
    Include(Vec<Vec<Self>>),
}

/// The settings obtained so far: keyword to value, first value wins.
#[derive(Clone, Debug, Default)]
struct Layer {
    values: BTreeMap<Kw, Value>,
}

impl Layer {
    fn apply(&mut self, kw: Kw, value: Value) {
        if let Value::Rekey { bytes, interval } = value {
            self.values.entry(Kw::RekeyLimit).or_insert(Value::Int(bytes));
            if let Some(interval) = interval {
                self.values.entry(Kw::RekeyInterval).or_insert(Value::Int(i64::from(interval)));
            }
            return;
        }
        if matches!(value, Value::Nothing) {
            return;
        }
        let Some(existing) = self.values.get_mut(&kw) else {
            self.values.insert(kw, value);
            return;
        };
        if kw.accumulation() != Accumulation::Append {
            return;
        }
        match (existing, value) {
            (Value::List(have), Value::List(more)) => have.extend(more),
            (Value::Ports(have), Value::Ports(more)) => have.extend(more),
            (Value::Listen(have), Value::Listen(more)) => have.extend(more),
            (Value::Subsystems(have), Value::Subsystems(more)) => {
                for s in more {
                    if !have.iter().any(|h| h.name == s.name) {
                        have.push(s);
                    }
                }
            }
            _ => {}
        }
    }

    /// Copies every `Match`-settable value of `other` over this one.
    fn overlay(&mut self, other: &Self) {
        for (kw, value) in &other.values {
            if kw.scope() == Scope::All {
                self.values.insert(*kw, value.clone());
            }
        }
    }

    fn get(&self, kw: Kw) -> Option<&Value> {
        self.values.get(&kw)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flags {
    /// Before the first `Match` line of a file read for a connection.
    MatchOnly,
    /// Included from an inactive block: its `Match` lines never match.
    NeverMatch,
    None,
}

struct Parser<'l, 'a> {
    loader: &'l SshdLoader<'a>,
    layer: Layer,
    warnings: Vec<String>,
}

impl Parser<'_, '_> {
    fn command_line(&mut self, option: &str) -> Result<(), ConfigError> {
        let mut active = true;
        let mut bad = 0;
        let mut items = Vec::new();
        let mut errors = Vec::new();
        self.line(
            "command-line",
            0,
            option,
            0,
            &mut active,
            false,
            true,
            &mut items,
            &mut errors,
            &mut bad,
        )?;
        if bad > 0 {
            return Err(ConfigError::from_messages(errors));
        }
        Ok(())
    }

    fn file(
        &mut self,
        name: &str,
        bytes: &[u8],
        depth: usize,
        active: &mut bool,
        never_match: bool,
    ) -> Result<Vec<Item>, ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::new("Too many recursive configuration includes"));
        }
        let mut items = Vec::new();
        let mut errors = Vec::new();
        let mut bad = 0;
        for (number, text) in lex::lines(bytes) {
            let result = self.line(
                name,
                number,
                &text,
                depth,
                active,
                never_match,
                false,
                &mut items,
                &mut errors,
                &mut bad,
            );
            if let Err(mut fatal) = result {
                errors.append(&mut fatal.messages);
                return Err(ConfigError::from_messages(errors));
            }
        }
        if bad > 0 {
            errors.push(format!("{name}: terminating, {bad} bad configuration options"));
            return Err(ConfigError::from_messages(errors));
        }
        Ok(items)
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        file: &str,
        number: usize,
        text: &str,
        depth: usize,
        active: &mut bool,
        never_match: bool,
        command_line: bool,
        items: &mut Vec<Item>,
        errors: &mut Vec<String>,
        bad: &mut usize,
    ) -> Result<(), ConfigError> {
        let line = match lex::split_line(text) {
            Split::Empty => return Ok(()),
            Split::NoArgument(keyword) => {
                errors
                    .push(format!("{file} line {number}: no argument after keyword \"{keyword}\""));
                *bad += 1;
                return Ok(());
            }
            Split::Line(line) => line,
        };
        let keyword = line.keyword.as_str();
        let Some(entry) = lookup(keyword) else {
            errors.push(format!("{file}: line {number}: Bad configuration option: {keyword}"));
            *bad += 1;
            return Ok(());
        };
        let Ok(words) = lex::split_args(line.rest) else {
            errors.push(format!("{file} line {number}: invalid quotes"));
            *bad += 1;
            return Ok(());
        };
        if command_line {
            *active = true;
        }
        if !*active && entry.scope == Scope::Global {
            return Err(ConfigError::new(format!(
                "{file} line {number}: Directive '{keyword}' is not allowed within a Match block"
            )));
        }
        let fatal_here = |text: String| ConfigError::new(format!("{file} line {number}: {text}"));
        match entry.kw {
            Kw::Include => {
                if command_line {
                    return Err(ConfigError::new(
                        "Include directive not supported as a command-line option",
                    ));
                }
                let mut files = Vec::new();
                if words.is_empty() {
                    return Err(fatal_here(format!("{keyword} missing filename argument")));
                }
                for word in &words {
                    if word.is_empty() {
                        errors.push(format!(
                            "{file} line {number}: keyword {keyword} empty argument"
                        ));
                        *bad += 1;
                        return Ok(());
                    }
                    let pattern = if word.starts_with('/') || word.starts_with('~') {
                        word.clone()
                    } else {
                        format!("{}/{word}", self.loader.system_dir.trim_end_matches('/'))
                    };
                    let paths =
                        self.loader.fs.glob(&pattern).map_err(|_| {
                            fatal_here(format!("include \"{pattern}\" glob failed"))
                        })?;
                    let outer = *active;
                    for path in paths {
                        let bytes =
                            self.loader.fs.read(&path).map_err(|e| {
                                ConfigError::new(format!("{path}: {}", io_text(&e)))
                            })?;
                        let included = self.file(&path, &bytes, depth + 1, active, !outer)?;
                        *active = outer;
                        files.push(included);
                    }
                }
                items.push(Item::Include(files));
                Ok(())
            }
            Kw::Match => {
                if command_line {
                    return Err(ConfigError::new(
                        "Match directive not supported as a command-line option",
                    ));
                }
                let criteria = parse_criteria(&words).map_err(|why| {
                    let mut messages = Vec::new();
                    if !why.is_empty() {
                        messages.push(why);
                    }
                    messages.push(format!("{file} line {number}: Bad Match condition"));
                    ConfigError::from_messages(messages)
                })?;
                *active = !never_match && criteria == [Criterion::All];
                items.push(Item::Match(criteria));
                Ok(())
            }
            kw => {
                if kw == Kw::Port && !self.loader.ports.is_empty() {
                    return Ok(());
                }
                let absolute = |p: &str| self.loader.absolute(p);
                let tilde = |p: &str| self.loader.tilde(p);
                let line_warnings = std::cell::RefCell::new(Vec::new());
                let ctx = LineCtx {
                    file,
                    line: number,
                    keyword,
                    rest: line.rest,
                    absolute: &absolute,
                    tilde: &tilde,
                    warnings: &line_warnings,
                };
                let mut args = Args::new(words);
                let parsed = parse_value(kw, &ctx, &mut args);
                self.warnings.append(&mut line_warnings.into_inner());
                let value = match parsed {
                    Ok(value) => value,
                    Err(LineError { message, fatal: true }) => {
                        return Err(ConfigError::new(message))
                    }
                    Err(LineError { message, fatal: false }) => {
                        errors.push(message);
                        *bad += 1;
                        return Ok(());
                    }
                };
                match kw.support() {
                    Support::Deprecated => self
                        .warnings
                        .push(format!("{file} line {number}: Deprecated option {keyword}")),
                    Support::Unsupported => self
                        .warnings
                        .push(format!("{file} line {number}: Unsupported option {keyword}")),
                    _ => {}
                }
                if args.remaining() > 0 {
                    errors.push(format!(
                        "{file} line {number}: keyword {keyword} extra arguments at end of line"
                    ));
                    *bad += 1;
                    return Ok(());
                }
                if *active {
                    self.layer.apply(kw, value.clone());
                }
                items.push(Item::Directive { kw, value });
                Ok(())
            }
        }
    }
}

/// Parses a `Match` line's criteria; the error is OpenSSH's message before "Bad Match
/// condition" (empty when there is none).
fn parse_criteria(words: &[String]) -> Result<Vec<Criterion>, String> {
    let mut criteria = Vec::new();
    let mut words = words.iter().peekable();
    while let Some(word) = words.next() {
        if word.starts_with('#') {
            break;
        }
        if word.eq_ignore_ascii_case("all") {
            let trailing = words.next().filter(|w| !w.is_empty() && !w.starts_with('#'));
            if !criteria.is_empty() || trailing.is_some() {
                return Err("'all' cannot be combined with other Match attributes".into());
            }
            return Ok(vec![Criterion::All]);
        }
        if word.eq_ignore_ascii_case("invalid-user") {
            criteria.push(Criterion::InvalidUser);
            continue;
        }
        let (attribute, arg) = match word.split_once('=') {
            Some((a, v)) if is_attribute(a) => (a.to_owned(), Some(v.to_owned())),
            _ => (word.clone(), words.next().cloned()),
        };
        let Some(arg) = arg.filter(|a| !a.is_empty() && !a.starts_with('#')) else {
            return Err(format!("Missing Match criteria for {attribute}"));
        };
        let criterion = match attribute.to_ascii_lowercase().as_str() {
            "user" => Criterion::User(arg),
            "group" => Criterion::Group(arg),
            "host" => Criterion::Host(arg),
            "address" | "localaddress" => {
                if match_address_list(None, &arg).is_err() {
                    let which = if attribute.eq_ignore_ascii_case("address") {
                        "address"
                    } else {
                        "localaddress"
                    };
                    return Err(format!("Invalid Match {which} argument '{arg}'"));
                }
                if attribute.eq_ignore_ascii_case("address") {
                    Criterion::Address(arg)
                } else {
                    Criterion::LocalAddress(arg)
                }
            }
            "localport" => match parse_port(&arg) {
                Some(p) => Criterion::LocalPort(p),
                None => return Err(format!("Invalid LocalPort '{arg}' on Match line")),
            },
            "rdomain" => Criterion::RDomain(arg),
            "version" => Criterion::Version(arg),
            _ => return Err(format!("Unsupported Match attribute {word}")),
        };
        criteria.push(criterion);
    }
    if criteria.is_empty() {
        return Err("One or more attributes required for Match".into());
    }
    Ok(criteria)
}

fn is_attribute(name: &str) -> bool {
    ["user", "group", "host", "address", "localaddress", "localport", "rdomain", "version"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name))
}

fn missing(criterion: &str, attribute: &str) -> ConfigError {
    ConfigError::new(format!(
        "'Match {criterion}' in configuration but '{attribute}' not in connection test \
         specification."
    ))
}

/// Evaluates `Match` criteria against a connection (all must hold).
fn matches(criteria: &[Criterion], ci: &ConnectionInfo) -> Result<bool, ConfigError> {
    let mut result = true;
    for criterion in criteria {
        let this = match criterion {
            Criterion::All => true,
            Criterion::InvalidUser => ci.user_invalid,
            Criterion::User(list) => match &ci.user {
                None if ci.test => false,
                None => return Err(missing("User", "user")),
                Some(user) => match_pattern_list(user, list, false) == ListMatch::Match,
            },
            Criterion::Group(list) => match (&ci.user, &ci.groups) {
                (None, _) if ci.test => false,
                (None, _) => return Err(missing("Group", "user")),
                (Some(_), None) => false,
                (Some(_), Some(groups)) => group_list_matches(groups, list),
            },
            Criterion::Host(list) => match &ci.host {
                None if ci.test => false,
                None => return Err(missing("Host", "host")),
                Some(host) => match_hostname(host, list) == ListMatch::Match,
            },
            Criterion::Address(list) => match &ci.address {
                None if ci.test => false,
                None => return Err(missing("Address", "addr")),
                Some(addr) => match_address_list(Some(addr), list) == Ok(ListMatch::Match),
            },
            Criterion::LocalAddress(list) => match &ci.local_address {
                None if ci.test => false,
                None => return Err(missing("LocalAddress", "laddr")),
                Some(addr) => match_address_list(Some(addr), list) == Ok(ListMatch::Match),
            },
            Criterion::LocalPort(port) => match ci.local_port {
                // OpenSSH's test mode treats an absent lport as 0, which it refuses.
                None => return Err(missing("LocalPort", "lport")),
                Some(p) => p == *port,
            },
            Criterion::RDomain(list) => match &ci.rdomain {
                None if ci.test => false,
                None => return Err(missing("RDomain", "rdomain")),
                Some(r) => match_pattern_list(r, list, false) == ListMatch::Match,
            },
            Criterion::Version(list) => {
                match_pattern_list(RELEASE, list, false) == ListMatch::Match
            }
        };
        result &= this;
    }
    Ok(result)
}

/// OpenSSH's `ga_match_pattern_list`: a negated match of any group refuses.
fn group_list_matches(groups: &[String], list: &str) -> bool {
    let mut found = false;
    for group in groups {
        match match_pattern_list(group, list, false) {
            ListMatch::Negated => return false,
            ListMatch::Match => found = true,
            ListMatch::NoMatch => {}
        }
    }
    found
}

/// The second pass: only matching `Match` blocks apply, and only `Match`-settable keywords.
fn walk(
    items: &[Item],
    active: &mut bool,
    mut flags: Flags,
    layer: &mut Layer,
    ci: &ConnectionInfo,
) -> Result<(), ConfigError> {
    for item in items {
        match item {
            Item::Directive { kw, value } => {
                if *active && kw.scope() == Scope::All {
                    layer.apply(*kw, value.clone());
                }
            }
            Item::Match(criteria) => {
                *active = flags != Flags::NeverMatch && matches(criteria, ci)?;
                if flags == Flags::MatchOnly {
                    flags = Flags::None;
                }
            }
            Item::Include(files) => {
                let inner = match flags {
                    Flags::MatchOnly => Flags::MatchOnly,
                    _ if *active => Flags::None,
                    _ => Flags::NeverMatch,
                };
                let outer = *active;
                for file in files {
                    walk(file, active, inner, layer, ci)?;
                    *active = outer;
                }
            }
        }
    }
    Ok(())
}

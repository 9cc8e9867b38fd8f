//! `authorized_keys` files (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"): one key a line, optionally
//! preceded by comma-separated options, parsed as OpenSSH's `auth-options.c` does: option names
//! are case-insensitive, `no-` negates the flags that allow it, values are double-quoted with
//! `\"` as the only escape, and an unknown option makes the whole line invalid.
//!
//! A malformed line is reported with its number and skipped, as sshd skips it; the rest of the
//! file still counts. Nothing here reads the clock: `expiry-time` is checked against a time the
//! caller passes.

use std::fmt;

use super::pattern::{self, ListMatch};
use super::public::parse_key_prefix;
use super::PublicKey;

/// The longest `authorized_keys` line we read, in bytes (sshd reads lines of any length, but
/// a key line beyond this is not one we could use).
pub const MAX_AUTHORIZED_KEYS_LINE_LEN: usize = 64 * 1024;

/// The most `environment=` options one line may carry.
pub const MAX_ENVIRONMENT_OPTIONS: usize = 1024;

/// The most `permitopen=`/`permitlisten=` options one line may carry.
pub const MAX_PERMIT_OPTIONS: usize = 4096;

/// A host and port from `permitopen=` or `permitlisten=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PermittedHostPort {
    /// The host (`*` for any; `None` when `permitlisten` gave only a port).
    pub host: Option<String>,
    /// The port, or `None` for `*` (any port).
    pub port: Option<u16>,
}

/// The tunnel device from `tunnel=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelDevice {
    /// `tunnel="any"`.
    Any,
    /// A device number.
    Number(u32),
}

/// `expiry-time=`: a civil time, in UTC with a trailing `Z`, otherwise in the server's local
/// time zone (whose offset the caller supplies when checking).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpiryTime {
    /// Seconds since the Unix epoch, reading the civil time as if it were UTC.
    pub civil_seconds: i64,
    /// Whether the time was given in UTC (`Z`).
    pub utc: bool,
}

impl ExpiryTime {
    /// The instant, in seconds since the epoch, given the local zone's offset east of UTC.
    pub fn to_unix(self, local_offset_seconds: i64) -> i64 {
        if self.utc {
            self.civil_seconds
        } else {
            self.civil_seconds - local_offset_seconds
        }
    }

    /// Whether the key has expired at `now` (seconds since the epoch): OpenSSH refuses a key at
    /// or after its expiry time.
    pub fn has_expired(self, now_unix: i64, local_offset_seconds: i64) -> bool {
        now_unix >= self.to_unix(local_offset_seconds)
    }
}

/// The options of one `authorized_keys` line, after `restrict` and every flag are applied in
/// order. The defaults are those of a line without options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOptions {
    /// `restrict` was given.
    pub restrict: bool,
    /// `cert-authority`: the key is a CA for user certificates.
    pub cert_authority: bool,
    /// `port-forwarding` / `no-port-forwarding` (default allowed).
    pub port_forwarding: bool,
    /// `agent-forwarding` / `no-agent-forwarding`.
    pub agent_forwarding: bool,
    /// `X11-forwarding` / `no-X11-forwarding`.
    pub x11_forwarding: bool,
    /// `pty` / `no-pty`.
    pub pty: bool,
    /// `user-rc` / `no-user-rc`.
    pub user_rc: bool,
    /// `touch-required`; `no-touch-required` clears it (FIDO keys only).
    pub touch_required: bool,
    /// `verify-required` (FIDO keys only).
    pub verify_required: bool,
    /// `command="..."`: the forced command.
    pub command: Option<String>,
    /// `principals="..."`: names accepted in certificates (with `cert-authority`).
    pub principals: Option<String>,
    /// `from="..."`: the pattern list the client's host name or address must match.
    pub from: Option<String>,
    /// `expiry-time="..."`, the earliest if given more than once.
    pub expiry_time: Option<ExpiryTime>,
    /// `environment="NAME=value"`, in order; a repeated name keeps its first value.
    pub environment: Vec<(String, String)>,
    /// `permitopen="host:port"`.
    pub permit_open: Vec<PermittedHostPort>,
    /// `permitlisten="[host:]port"`.
    pub permit_listen: Vec<PermittedHostPort>,
    /// `tunnel="n"`.
    pub tunnel: Option<TunnelDevice>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            restrict: false,
            cert_authority: false,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            pty: true,
            user_rc: true,
            touch_required: true,
            verify_required: false,
            command: None,
            principals: None,
            from: None,
            expiry_time: None,
            environment: Vec::new(),
            permit_open: Vec::new(),
            permit_listen: Vec::new(),
            tunnel: None,
        }
    }
}

impl KeyOptions {
    /// Parses an options string (`no-pty,command="ls -l"`), which must be consumed whole.
    pub fn parse(text: &str) -> Result<Self, OptionError> {
        let (options, rest) = parse_options(text)?;
        if !rest.is_empty() {
            return Err(OptionError::new("unexpected end-of-options"));
        }
        Ok(options)
    }

    /// Whether the client at `host` (its name, or its address when unresolved) and `ip` may use
    /// the key under `from=`: true without a `from` option; otherwise only on a positive match
    /// with no negation (OpenSSH's `match_host_and_ip` returning 1).
    pub fn from_allows(&self, host: &str, ip: &str) -> bool {
        match &self.from {
            None => true,
            Some(list) => pattern::match_host_and_ip(host, ip, list) == ListMatch::Match,
        }
    }

    /// Whether the key has expired at `now_unix`, given the server's local UTC offset.
    pub fn has_expired(&self, now_unix: i64, local_offset_seconds: i64) -> bool {
        self.expiry_time.is_some_and(|t| t.has_expired(now_unix, local_offset_seconds))
    }
}

/// Why an options string did not parse (OpenSSH's wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError(String);

impl OptionError {
    fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

/// One usable line of an `authorized_keys` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// The 1-based line number.
    pub line: usize,
    /// The options before the key.
    pub options: KeyOptions,
    /// The key.
    pub key: PublicKey,
    /// The comment after the key.
    pub comment: String,
}

/// A line that was skipped, with its 1-based number and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    /// The 1-based line number.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// A parsed `authorized_keys` file: the usable keys and the lines skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizedKeys {
    /// The usable lines, in file order.
    pub keys: Vec<AuthorizedKey>,
    /// Lines that hold something but could not be used (blank and `#` lines are not listed).
    pub skipped: Vec<SkippedLine>,
}

impl AuthorizedKeys {
    /// Parses a whole file. Never fails: bad lines land in [`AuthorizedKeys::skipped`].
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for (i, line) in text.lines().enumerate() {
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some((options, key, comment))) => {
                    out.keys.push(AuthorizedKey { line: i + 1, options, key, comment })
                }
                Err(reason) => out.skipped.push(SkippedLine { line: i + 1, reason }),
            }
        }
        out
    }

    /// The entries for `key`, in file order (sshd uses the first whose options allow it).
    pub fn find<'a>(&'a self, key: &'a PublicKey) -> impl Iterator<Item = &'a AuthorizedKey> + 'a {
        self.keys.iter().filter(move |k| &k.key == key && !k.options.cert_authority)
    }

    /// The `cert-authority` entries for CA key `ca`, in file order.
    pub fn find_authority<'a>(
        &'a self,
        ca: &'a PublicKey,
    ) -> impl Iterator<Item = &'a AuthorizedKey> + 'a {
        self.keys.iter().filter(move |k| &k.key == ca && k.options.cert_authority)
    }
}

/// Parses one `AuthorizedPrincipalsFile` line, `[options] principal`: `Ok(None)` for blank and
/// comment lines. As in sshd, a line with inner blanks has options before its last word.
pub fn parse_principals_line(line: &str) -> Result<Option<(KeyOptions, String)>, String> {
    if line.len() > MAX_AUTHORIZED_KEYS_LINE_LEN {
        return Err("line too long".into());
    }
    let line = line.trim_matches([' ', '\t', '\r', '\n']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let Some(at) = line.rfind([' ', '\t']) else {
        return Ok(Some((KeyOptions::default(), line.to_owned())));
    };
    let (opts, principal) = line.split_at(at);
    let (options, rest) = parse_options(opts).map_err(|e| format!("bad options: {e}"))?;
    if !rest.trim().is_empty() {
        return Err("bad options: text after the options".into());
    }
    Ok(Some((options, principal.trim().to_owned())))
}

/// Parses one line: `Ok(None)` for blank and comment lines.
pub fn parse_line(line: &str) -> Result<Option<(KeyOptions, PublicKey, String)>, String> {
    if line.len() > MAX_AUTHORIZED_KEYS_LINE_LEN {
        return Err("line too long".into());
    }
    let line = line.trim_start_matches([' ', '\t']).trim_end_matches(['\r', '\n']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if let Ok((key, rest)) = parse_key_prefix(line) {
        return Ok(Some((KeyOptions::default(), key, rest.trim().to_owned())));
    }
    let (options, rest) = parse_options(line).map_err(|e| format!("bad options: {e}"))?;
    let rest = rest.trim_start_matches([' ', '\t']);
    match parse_key_prefix(rest) {
        Ok((key, comment)) => Ok(Some((options, key, comment.trim().to_owned()))),
        Err(e) => Err(format!("no usable key: {e}")),
    }
}

/// Parses options up to the first unquoted blank, returning them and the rest of the text.
fn parse_options(text: &str) -> Result<(KeyOptions, &str), OptionError> {
    let mut o = KeyOptions::default();
    let mut s = text;
    while !s.is_empty() && !s.starts_with([' ', '\t']) {
        if let Some((v, rest)) = flag(s, "restrict", false) {
            o.restrict = v;
            o.port_forwarding = false;
            o.agent_forwarding = false;
            o.x11_forwarding = false;
            o.pty = false;
            o.user_rc = false;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "cert-authority", false) {
            o.cert_authority = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "port-forwarding", true) {
            o.port_forwarding = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "agent-forwarding", true) {
            o.agent_forwarding = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "x11-forwarding", true) {
            o.x11_forwarding = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "touch-required", true) {
            o.touch_required = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "verify-required", false) {
            o.verify_required = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "pty", true) {
            o.pty = v;
            s = rest;
        } else if let Some((v, rest)) = flag(s, "user-rc", true) {
            o.user_rc = v;
            s = rest;
        } else if let Some(rest) = named(s, "command") {
            let (value, rest) = dequote(rest)?;
            if o.command.is_some() {
                return Err(OptionError::new("multiple \"command\" clauses"));
            }
            o.command = Some(value);
            s = rest;
        } else if let Some(rest) = named(s, "principals") {
            let (value, rest) = dequote(rest)?;
            if o.principals.is_some() {
                return Err(OptionError::new("multiple \"principals\" clauses"));
            }
            o.principals = Some(value);
            s = rest;
        } else if let Some(rest) = named(s, "from") {
            let (value, rest) = dequote(rest)?;
            o.from = Some(value);
            s = rest;
        } else if let Some(rest) = named(s, "expiry-time") {
            let (value, rest) = dequote(rest)?;
            let t = parse_absolute_time(&value)
                .ok_or_else(|| OptionError::new("invalid expires time"))?;
            if o.expiry_time.is_none_or(|old| t.civil_seconds < old.civil_seconds) {
                o.expiry_time = Some(t);
            }
            s = rest;
        } else if let Some(rest) = named(s, "environment") {
            let (value, rest) = dequote(rest)?;
            let (name, val) = value
                .split_once('=')
                .filter(|(n, _)| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .ok_or_else(|| OptionError::new("invalid environment string"))?;
            if o.environment.len() >= MAX_ENVIRONMENT_OPTIONS {
                return Err(OptionError::new("too many environment strings"));
            }
            if !o.environment.iter().any(|(n, _)| n == name) {
                o.environment.push((name.to_owned(), val.to_owned()));
            }
            s = rest;
        } else if let Some(rest) = named(s, "permitopen") {
            let (value, rest) = dequote(rest)?;
            let hp = parse_permit(&value, false)?;
            if o.permit_open.len() >= MAX_PERMIT_OPTIONS {
                return Err(OptionError::new("too many permission directives"));
            }
            o.permit_open.push(hp);
            s = rest;
        } else if let Some(rest) = named(s, "permitlisten") {
            let (value, rest) = dequote(rest)?;
            let hp = parse_permit(&value, true)?;
            if o.permit_listen.len() >= MAX_PERMIT_OPTIONS {
                return Err(OptionError::new("too many permission directives"));
            }
            o.permit_listen.push(hp);
            s = rest;
        } else if let Some(rest) = named(s, "tunnel") {
            let (value, rest) = dequote(rest)?;
            o.tunnel = Some(if value.eq_ignore_ascii_case("any") {
                TunnelDevice::Any
            } else {
                TunnelDevice::Number(
                    value.parse().map_err(|_| OptionError::new("invalid tun device"))?,
                )
            });
            s = rest;
        } else {
            return Err(OptionError::new("unsupported option"));
        }
        if s.is_empty() || s.starts_with([' ', '\t']) {
            break;
        }
        match s.strip_prefix(',') {
            Some(rest) if !rest.is_empty() => s = rest,
            _ => return Err(OptionError::new("unexpected end-of-options")),
        }
    }
    Ok((o, s))
}

/// A flag option: `name` or (where allowed) `no-name`, followed by the end, a blank or a comma.
/// Returns the flag's value and the text after its name.
fn flag<'a>(s: &'a str, name: &str, negatable: bool) -> Option<(bool, &'a str)> {
    let (value, body) = match strip_prefix_ignore_case(s, "no-") {
        Some(rest) if negatable => (false, rest),
        _ => (true, s),
    };
    let rest = strip_prefix_ignore_case(body, name)?;
    (rest.is_empty() || rest.starts_with([' ', '\t', ','])).then_some((value, rest))
}

/// A valued option: `name=`, returning the text after the `=`.
fn named<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    strip_prefix_ignore_case(s, name)?.strip_prefix('=')
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| s.get(prefix.len()..)).flatten()
}

/// A double-quoted value, where `\"` stands for `"` and every other byte is literal.
fn dequote(s: &str) -> Result<(String, &str), OptionError> {
    let body = s.strip_prefix('"').ok_or_else(|| OptionError::new("missing start quote"))?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, body.get(i + 1..).unwrap_or_default())),
            '\\' if body.get(i + 1..).is_some_and(|r| r.starts_with('"')) => {
                value.push('"');
                chars.next();
            }
            _ => value.push(c),
        }
    }
    Err(OptionError::new("missing end quote"))
}

/// `host:port` (or, for `permitlisten`, a bare port), with IPv6 hosts in brackets and `*` for
/// any port.
fn parse_permit(value: &str, listen: bool) -> Result<PermittedHostPort, OptionError> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) =
            rest.split_once(']').ok_or_else(|| OptionError::new("invalid permission hostname"))?;
        let port = after.strip_prefix(':').ok_or_else(|| OptionError::new("missing port"))?;
        (Some(host), port)
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (Some(host), port),
            None if listen => (None, value),
            None => return Err(OptionError::new("missing port")),
        }
    };
    if host.is_some_and(str::is_empty) {
        return Err(OptionError::new("invalid permission hostname"));
    }
    let port = if port == "*" {
        None
    } else {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => return Err(OptionError::new("invalid port")),
        }
    };
    Ok(PermittedHostPort { host: host.map(str::to_owned), port })
}

/// OpenSSH's `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, with an
/// optional trailing `Z` for UTC.
pub fn parse_absolute_time(text: &str) -> Option<ExpiryTime> {
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        digits.get(range).and_then(|d| d.parse().ok())
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let hour = if digits.len() >= 12 { num(8..10)? } else { 0 };
    let minute = if digits.len() >= 12 { num(10..12)? } else { 0 };
    let second = if digits.len() == 14 { num(12..14)? } else { 0 };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(ExpiryTime { civil_seconds: days * 86_400 + hour * 3_600 + minute * 60 + second, utc })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the standard era-based formula).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn key_line() -> String {
        PrivateKey::ed25519_from_seed(&[4; 32]).unwrap().public_key().to_openssh()
    }

    /// Every option OpenSSH knows is parsed into its field, with `no-` negation and quoted
    /// values.
    #[test]
    fn parses_every_openssh_option() {
        let opts = KeyOptions::parse(concat!(
            "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,",
            "command=\"echo \\\"hi\\\" \\\\n\",from=\"*.example.com,!10.0.0.0/8\",",
            "environment=\"A=1\",environment=\"A=2\",environment=\"B_2=x y\",",
            "permitopen=\"host:22\",permitopen=\"[::1]:*\",permitlisten=\"8080\",",
            "permitlisten=\"localhost:9000\",expiry-time=\"20300101\",",
            "expiry-time=\"202001011200Z\",principals=\"alice,bob\",tunnel=\"5\",",
            "cert-authority,no-touch-required,verify-required"
        ))
        .unwrap();
        assert!(!opts.pty && !opts.port_forwarding && !opts.agent_forwarding);
        assert!(!opts.x11_forwarding && !opts.user_rc && !opts.touch_required);
        assert!(opts.cert_authority && opts.verify_required && !opts.restrict);
        assert_eq!(opts.command.as_deref(), Some("echo \"hi\" \\\\n"));
        assert_eq!(opts.from.as_deref(), Some("*.example.com,!10.0.0.0/8"));
        assert_eq!(opts.environment, vec![("A".into(), "1".into()), ("B_2".into(), "x y".into())]);
        assert_eq!(
            opts.permit_open,
            vec![
                PermittedHostPort { host: Some("host".into()), port: Some(22) },
                PermittedHostPort { host: Some("::1".into()), port: None },
            ]
        );
        assert_eq!(opts.permit_listen[0], PermittedHostPort { host: None, port: Some(8080) });
        assert_eq!(opts.principals.as_deref(), Some("alice,bob"));
        assert_eq!(opts.tunnel, Some(TunnelDevice::Number(5)));
        assert_eq!(
            opts.expiry_time,
            Some(ExpiryTime { civil_seconds: 1_577_880_000, utc: true }),
            "the earlier expiry wins"
        );
    }

    /// `restrict` turns every permission off, and a later flag turns one back on.
    #[test]
    fn restrict_then_pty_allows_only_a_pty() {
        let opts = KeyOptions::parse("restrict,pty").unwrap();
        assert!(opts.restrict && opts.pty);
        assert!(!opts.port_forwarding && !opts.agent_forwarding && !opts.x11_forwarding);
        assert!(!opts.user_rc);
        let opts = KeyOptions::parse("pty,restrict").unwrap();
        assert!(!opts.pty);
    }

    /// Malformed option strings give OpenSSH's reasons.
    #[test]
    fn rejects_malformed_options_with_openssh_reasons() {
        for (text, reason) in [
            ("no-ptyx", "unsupported option"),
            ("frobnicate", "unsupported option"),
            ("command=ls", "missing start quote"),
            ("command=\"ls", "missing end quote"),
            ("no-pty,", "unexpected end-of-options"),
            ("command=\"a\",command=\"b\"", "multiple \"command\" clauses"),
            ("environment=\"NOVALUE\"", "invalid environment string"),
            ("environment=\"A-B=1\"", "invalid environment string"),
            ("permitopen=\"host\"", "missing port"),
            ("permitopen=\"host:0\"", "invalid port"),
            ("expiry-time=\"2020\"", "invalid expires time"),
            ("tunnel=\"x\"", "invalid tun device"),
        ] {
            assert_eq!(KeyOptions::parse(text), Err(OptionError::new(reason)), "{text}");
        }
    }

    /// A file's bad lines are reported with their numbers and skipped; good lines with and
    /// without options are kept, and option names ignore case.
    #[test]
    fn skips_bad_lines_with_their_numbers() {
        let k = key_line();
        let text = format!(
            "# comment\n\n{k} plain key\nNO-PTY,Command=\"x\" {k} with options\nbogus,{k}\n\
             ssh-ed25519 AAAA! broken\n  {k}\n"
        );
        let parsed = AuthorizedKeys::parse(&text);
        assert_eq!(parsed.keys.iter().map(|k| k.line).collect::<Vec<_>>(), vec![3, 4, 7]);
        assert_eq!(parsed.keys[0].comment, "plain key");
        assert!(!parsed.keys[1].options.pty);
        assert_eq!(parsed.keys[1].options.command.as_deref(), Some("x"));
        assert_eq!(parsed.skipped.iter().map(|s| s.line).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(parsed.find(&parsed.keys[0].key).count(), 3);
    }

    /// Expiry is checked against the time passed in, in UTC or shifted by the local offset.
    #[test]
    fn expiry_uses_the_time_passed_in() {
        let opts = KeyOptions::parse("expiry-time=\"20200101\"").unwrap();
        let midnight_utc = 1_577_836_800;
        assert!(!opts.has_expired(midnight_utc - 1, 0));
        assert!(opts.has_expired(midnight_utc, 0));
        // One hour east of UTC, local midnight came an hour earlier.
        assert!(opts.has_expired(midnight_utc - 3_600, 3_600));
        assert_eq!(parse_absolute_time("20201301"), None);
    }

    /// `from=` allows a matching host or address and refuses a negated one.
    #[test]
    fn from_option_matches_host_and_address() {
        let opts =
            KeyOptions::parse("from=\"*.example.com,!bad.example.com,192.0.2.0/24\"").unwrap();
        assert!(opts.from_allows("ok.example.com", "198.51.100.1"));
        assert!(opts.from_allows("unknown", "192.0.2.9"));
        assert!(!opts.from_allows("bad.example.com", "192.0.2.9"));
        assert!(!opts.from_allows("other.org", "198.51.100.1"));
        assert!(KeyOptions::default().from_allows("any", "any"));
    }

    /// Lines of odd bytes (multi-byte characters where names and quotes are expected, lone
    /// quotes, commas) are skipped with a reason, never a panic.
    #[test]
    fn odd_lines_are_skipped_not_panicked_on() {
        let k = key_line();
        for line in [
            format!("é {k}"),
            format!("command=\"é\\\" {k}"),
            format!("nö-pty {k}"),
            format!("\" {k}"),
            format!(",, {k}"),
            format!("permitopen=\"[::1\" {k}"),
            format!("permitopen=\"é:é\" {k}"),
            "ssh-ed25519".to_owned(),
            "\u{0}".to_owned(),
        ] {
            let parsed = AuthorizedKeys::parse(&line);
            assert!(parsed.keys.is_empty(), "{line}");
            assert_eq!(parsed.skipped.len(), 1, "{line}");
        }
    }
}

//! Value syntaxes shared by `sshd_config` and `ssh_config`: times (`1h30m`), scaled sizes
//! (`1G`), ports, integers, log levels and facilities, IPQoS names, `host:port` splitting.
//! Each follows the OpenSSH function named in its documentation.

use std::fmt;

/// OpenSSH's `convtime`: a sum of numbers each with an optional unit (`s`, `m`, `h`, `d`, `w`,
/// either case), in seconds; `None` for anything else or a total beyond `i32::MAX`.
pub fn parse_time(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let limit = i64::from(i32::MAX);
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (number, after) = split_strtol(rest)?;
        if number < 0 || number > limit {
            return None;
        }
        let mut chars = after.chars();
        let multiplier = match chars.next() {
            None => 1,
            Some('s' | 'S') => 1,
            Some('m' | 'M') => 60,
            Some('h' | 'H') => 3_600,
            Some('d' | 'D') => 86_400,
            Some('w' | 'W') => 604_800,
            Some(_) => return None,
        };
        let secs = number.checked_mul(multiplier).filter(|v| *v <= limit)?;
        total = total.checked_add(secs).filter(|v| *v <= limit)?;
        rest = chars.as_str();
    }
    u32::try_from(total).ok()
}

/// The leading `strtol(.., 10)` number of `s` (with optional whitespace and sign) and the text
/// after it; `None` when no digit follows or the number overflows.
fn split_strtol(s: &str) -> Option<(i64, &str)> {
    let trimmed = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, trimmed.get(1..)?),
        Some(b'+') => (false, trimmed.get(1..)?),
        _ => (false, trimmed),
    };
    let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, after) = unsigned.split_at(digits);
    let value: i64 = number.parse().ok()?;
    Some((if negative { -value } else { value }, after))
}

/// Why a scaled size did not parse (the `strerror` text OpenSSH prints after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaledError {
    /// `EINVAL`.
    Invalid,
    /// `ERANGE`.
    OutOfRange,
}

impl fmt::Display for ScaledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "Invalid argument",
            Self::OutOfRange => "Numerical result out of range",
        })
    }
}

/// OpenSSH's `scan_scaled`: a number with an optional fraction and an optional unit
/// (`B K M G T P E`, powers of 1024, either case).
pub fn parse_scaled(s: &str) -> Result<i64, ScaledError> {
    const UNITS: &[u8] = b"BKMGTPE";
    const MAX_DIGITS: u32 = 21;
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut sign: i64 = 0;
    while let Some(&c) = bytes.get(i) {
        if c != b'-' && c != b'+' {
            break;
        }
        if sign != 0 {
            return Err(ScaledError::Invalid);
        }
        sign = if c == b'-' { -1 } else { 1 };
        i += 1;
    }
    let (mut whole, mut fpart): (i64, i64) = (0, 0);
    let (mut ndigits, mut fract_digits) = (0u32, 0u32);
    while let Some(&c) = bytes.get(i) {
        if c == b'.' {
            if fract_digits > 0 {
                return Err(ScaledError::Invalid);
            }
            fract_digits = 1;
            i += 1;
            continue;
        }
        if !c.is_ascii_digit() {
            break;
        }
        let digit = i64::from(c - b'0');
        if fract_digits > 0 {
            if fract_digits < MAX_DIGITS - 1 {
                fract_digits += 1;
                fpart = fpart
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(digit))
                    .ok_or(ScaledError::OutOfRange)?;
            }
        } else {
            ndigits += 1;
            if ndigits >= MAX_DIGITS {
                return Err(ScaledError::OutOfRange);
            }
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(digit))
                .ok_or(ScaledError::OutOfRange)?;
        }
        i += 1;
    }
    if sign != 0 {
        whole *= sign;
    }
    let Some(&unit) = bytes.get(i) else {
        return Ok(whole);
    };
    let Some(power) = UNITS.iter().position(|u| *u == unit.to_ascii_uppercase()) else {
        return Err(ScaledError::Invalid);
    };
    if bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) {
        return Err(ScaledError::Invalid);
    }
    let scale: i64 = 1 << (10 * power);
    whole = whole.checked_mul(scale).ok_or(ScaledError::OutOfRange)?;
    while fpart >= i64::MAX / scale {
        fpart /= 10;
        fract_digits = fract_digits.saturating_sub(1);
    }
    fpart *= scale;
    for _ in 1..fract_digits {
        fpart /= 10;
    }
    if sign < 0 {
        fpart = -fpart;
    }
    whole.checked_add(fpart).ok_or(ScaledError::OutOfRange)
}

/// OpenSSH's `strtonum`: a whole decimal number in `min..=max`, or the reason it is not
/// (`"missing"`, `"invalid"`, `"too small"`, `"too large"`), as `atoi_err` reports it.
pub fn parse_number(s: &str, min: i64, max: i64) -> Result<i64, &'static str> {
    if s.is_empty() {
        return Err("missing");
    }
    let Some((value, rest)) = split_strtol(s) else {
        // Digits that overflow still count as a number out of range.
        return Err(overflow_or_invalid(s));
    };
    if !rest.is_empty() {
        return Err("invalid");
    }
    if value < min {
        return Err("too small");
    }
    if value > max {
        return Err("too large");
    }
    Ok(value)
}

fn overflow_or_invalid(s: &str) -> &'static str {
    let t = s.trim_start();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if negative {
            "too small"
        } else {
            "too large"
        }
    } else {
        "invalid"
    }
}

/// A non-negative `int` (OpenSSH's `atoi_err`).
pub fn parse_int(s: &str) -> Result<u32, &'static str> {
    parse_number(s, 0, i64::from(i32::MAX)).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// OpenSSH's `a2port`: a port number `0..=65535`. Service names are not looked up (OpenSSH
/// asks `getservbyname`); `ssh` alone is known, as 22.
pub fn parse_port(s: &str) -> Option<u16> {
    if let Ok(v) = parse_number(s, 0, 65_535) {
        return u16::try_from(v).ok();
    }
    (s == "ssh").then_some(22)
}

/// OpenSSH's log levels, in order of verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum LogLevel {
    /// `QUIET`.
    Quiet,
    /// `FATAL`.
    Fatal,
    /// `ERROR`.
    Error,
    /// `INFO`.
    Info,
    /// `VERBOSE`.
    Verbose,
    /// `DEBUG1` (also `DEBUG`).
    Debug1,
    /// `DEBUG2`.
    Debug2,
    /// `DEBUG3`.
    Debug3,
}

impl LogLevel {
    /// Parses a level name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "QUIET" => Self::Quiet,
            "FATAL" => Self::Fatal,
            "ERROR" => Self::Error,
            "INFO" => Self::Info,
            "VERBOSE" => Self::Verbose,
            "DEBUG" | "DEBUG1" => Self::Debug1,
            "DEBUG2" => Self::Debug2,
            "DEBUG3" => Self::Debug3,
            _ => return None,
        })
    }

    /// The name `-T`/`-G` print (OpenSSH's `log_level_name`: `DEBUG` for `DEBUG1`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Quiet => "QUIET",
            Self::Fatal => "FATAL",
            Self::Error => "ERROR",
            Self::Info => "INFO",
            Self::Verbose => "VERBOSE",
            Self::Debug1 => "DEBUG",
            Self::Debug2 => "DEBUG2",
            Self::Debug3 => "DEBUG3",
        }
    }
}

/// Syslog facilities (`SyslogFacility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Facility {
    /// `DAEMON`.
    Daemon,
    /// `USER`.
    User,
    /// `AUTH`.
    Auth,
    /// `AUTHPRIV`.
    AuthPriv,
    /// `LOCAL0` to `LOCAL7`.
    Local(u8),
}

impl Facility {
    /// Parses a facility name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let upper = s.to_ascii_uppercase();
        Some(match upper.as_str() {
            "DAEMON" => Self::Daemon,
            "USER" => Self::User,
            "AUTH" => Self::Auth,
            "AUTHPRIV" => Self::AuthPriv,
            _ => {
                let digit = upper.strip_prefix("LOCAL")?;
                match digit.as_bytes() {
                    [d @ b'0'..=b'7'] => Self::Local(d - b'0'),
                    _ => return None,
                }
            }
        })
    }

    /// The name `-T`/`-G` print.
    pub fn name(self) -> String {
        match self {
            Self::Daemon => "DAEMON".into(),
            Self::User => "USER".into(),
            Self::Auth => "AUTH".into(),
            Self::AuthPriv => "AUTHPRIV".into(),
            Self::Local(n) => format!("LOCAL{n}"),
        }
    }
}

/// The IPQoS names OpenSSH knows, with their values (`misc.c`'s `ipqos` table). `none` is
/// OpenSSH's `INT_MAX`, here `0x100`.
const IPQOS: &[(&str, u16)] = &[
    ("none", IPQOS_NONE),
    ("af11", 0x28),
    ("af12", 0x30),
    ("af13", 0x38),
    ("af21", 0x48),
    ("af22", 0x50),
    ("af23", 0x58),
    ("af31", 0x68),
    ("af32", 0x70),
    ("af33", 0x78),
    ("af41", 0x88),
    ("af42", 0x90),
    ("af43", 0x98),
    ("cs0", 0x00),
    ("cs1", 0x20),
    ("cs2", 0x40),
    ("cs3", 0x60),
    ("cs4", 0x80),
    ("cs5", 0xa0),
    ("cs6", 0xc0),
    ("cs7", 0xe0),
    ("ef", 0xb8),
    ("le", 0x04),
    ("lowdelay", 0x10),
    ("throughput", 0x08),
    ("reliability", 0x04),
];

/// The IPQoS value meaning "do not set".
pub const IPQOS_NONE: u16 = 0x100;

/// OpenSSH's `parse_ipqos`: a name from the table or a number `0..=255` (C syntax: `0x` hex,
/// leading-zero octal).
pub fn parse_ipqos(s: &str) -> Option<u16> {
    if let Some((_, v)) = IPQOS.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)) {
        return Some(*v);
    }
    let value = parse_c_integer(s)?;
    u16::try_from(value).ok().filter(|v| *v <= 255)
}

/// OpenSSH's `iptos2str`.
pub fn ipqos_name(value: u16) -> String {
    match IPQOS.iter().find(|(_, v)| *v == value) {
        Some((name, _)) => (*name).to_owned(),
        None => format!("0x{value:02x}"),
    }
}

/// `strtol(s, &end, 0)` requiring the whole string: decimal, `0x` hex or `0` octal.
fn parse_c_integer(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(body.get(1..)?, 8).ok()?
    } else {
        body.parse::<i64>().ok().filter(|_| body.bytes().all(|b| b.is_ascii_digit()))?
    };
    Some(if negative { -value } else { value })
}

/// An octal file mode `0..=0777` (`StreamLocalBindMask`); like `strtol(.., 8)`, trailing text
/// after the digits is ignored.
pub fn parse_octal_mask(s: &str) -> Option<u32> {
    let t = s.trim_start();
    let digits = t.bytes().take_while(|b| (b'0'..=b'7').contains(b)).count();
    if digits == 0 {
        return None;
    }
    let value = u32::from_str_radix(t.get(..digits)?, 8).ok()?;
    (value <= 0o777).then_some(value)
}

/// OpenSSH's `hpdelim`: splits `host:rest`, `[host]:rest` or `host` (no delimiter). A `/`
/// delimiter is refused. Returns the host (brackets kept) and the rest after the delimiter.
pub fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    let end = if s.starts_with('[') {
        s.find(']')? + 1
    } else {
        match s.find([':', '/']) {
            Some(i) => i,
            None => s.len(),
        }
    };
    let host = s.get(..end)?;
    match s.get(end..)?.chars().next() {
        None => Some((host, None)),
        Some(':') => Some((host, Some(s.get(end + 1..)?))),
        Some(_) => None,
    }
}

/// OpenSSH's `cleanhostname`: strips one pair of enclosing brackets.
pub fn clean_host(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// A name of letters, digits and underscores (`valid_env_name`).
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time values follow `convtime`: units sum, plain numbers are seconds, junk fails.
    #[test]
    fn parses_times_like_convtime() {
        let cases: &[(&str, Option<u32>)] = &[
            ("0", Some(0)),
            ("90", Some(90)),
            ("10s", Some(10)),
            ("1h30m", Some(5_400)),
            ("1H30M", Some(5_400)),
            ("1w2d", Some(777_600)),
            ("2147483647", Some(2_147_483_647)),
            ("2147483648", None),
            ("3000000w", None),
            ("", None),
            ("abc", None),
            ("10x", None),
            ("-5", None),
            ("1h-5m", None),
            ("m", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_time(input), *want, "{input:?}");
        }
    }

    /// Sizes follow `scan_scaled`: binary units, fractions, and errno-style failures.
    #[test]
    fn parses_scaled_sizes_like_scan_scaled() {
        let cases: &[(&str, Result<i64, ScaledError>)] = &[
            ("0", Ok(0)),
            ("16", Ok(16)),
            ("1K", Ok(1024)),
            ("1k", Ok(1024)),
            ("1G", Ok(1 << 30)),
            ("1.5M", Ok(1_572_864)),
            ("2B", Ok(2)),
            ("1Gb", Err(ScaledError::Invalid)),
            ("1Q", Err(ScaledError::Invalid)),
            ("abc", Err(ScaledError::Invalid)),
            ("1..2", Err(ScaledError::Invalid)),
            ("9999999999999999999999", Err(ScaledError::OutOfRange)),
            ("8E", Err(ScaledError::OutOfRange)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_scaled(input), *want, "{input:?}");
        }
        assert_eq!(ScaledError::Invalid.to_string(), "Invalid argument");
    }

    /// Integers and ports follow `strtonum` with its error words.
    #[test]
    fn parses_numbers_like_strtonum() {
        assert_eq!(parse_int("6"), Ok(6));
        assert_eq!(parse_int(""), Err("missing"));
        assert_eq!(parse_int("6x"), Err("invalid"));
        assert_eq!(parse_int("-1"), Err("too small"));
        assert_eq!(parse_int("2147483648"), Err("too large"));
        assert_eq!(parse_int("99999999999999999999"), Err("too large"));
        assert_eq!(parse_port("22"), Some(22));
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("ssh"), Some(22));
        assert_eq!(parse_port("abc"), None);
    }

    /// Log levels and facilities parse case-insensitively and print in capitals.
    #[test]
    fn parses_log_levels_and_facilities() {
        assert_eq!(LogLevel::parse("debug"), Some(LogLevel::Debug1));
        assert_eq!(LogLevel::parse("DEBUG3").map(LogLevel::name), Some("DEBUG3"));
        assert_eq!(LogLevel::parse("loud"), None);
        assert_eq!(Facility::parse("local7"), Some(Facility::Local(7)));
        assert_eq!(Facility::parse("LOCAL8"), None);
        assert_eq!(Facility::parse("LOCAL07"), None);
        assert_eq!(Facility::parse("authpriv").map(Facility::name).as_deref(), Some("AUTHPRIV"));
    }

    /// IPQoS accepts names and C-style numbers and prints names where it can.
    #[test]
    fn parses_ipqos_names_and_numbers() {
        assert_eq!(parse_ipqos("AF21"), Some(0x48));
        assert_eq!(parse_ipqos("0x10"), Some(0x10));
        assert_eq!(parse_ipqos("010"), Some(8));
        assert_eq!(parse_ipqos("256"), None);
        assert_eq!(parse_ipqos("fast"), None);
        assert_eq!(ipqos_name(0x48), "af21");
        assert_eq!(ipqos_name(0x01), "0x01");
        assert_eq!(ipqos_name(IPQOS_NONE), "none");
    }

    /// `host:port` splitting handles brackets and refuses a slash delimiter.
    #[test]
    fn splits_host_and_port_like_hpdelim() {
        assert_eq!(split_host_port("a:1"), Some(("a", Some("1"))));
        assert_eq!(split_host_port("[::1]:22"), Some(("[::1]", Some("22"))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_host_port("host"), Some(("host", None)));
        assert_eq!(split_host_port("a/1"), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(clean_host("[::1]"), "::1");
        assert_eq!(parse_octal_mask("0177"), Some(0o177));
        assert_eq!(parse_octal_mask("1000"), None);
        assert_eq!(parse_octal_mask("9"), None);
    }
}

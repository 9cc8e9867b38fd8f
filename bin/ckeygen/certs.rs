//! Certificates: `-s` signs public keys with a CA key (`ssh-keygen -s ca -I id [-h] [-n
//! principals] [-V interval] [-z serial] [-O option]... key.pub...`), `-L` prints them.
//!
//! Texts, exit codes, the validity syntax and the `-L` layout are `ssh-keygen`'s (OpenSSH
//! 9.x), so that scripts comparing the two see the same output.

use std::time::{SystemTime, UNIX_EPOCH};

use twine::conch::crypto::{OsRandom, SecureRandom as _};
use twine::conch::keys::cert::{self, CertType, Certificate, CertificateBuilder, CERT_SUFFIX};
use twine::conch::keys::{self, KeyType, PrivateKey, PublicKey, PublicKeyLine, SignatureAlgorithm};

use crate::keyfile::{self, key_error_text, os_error_text};
use crate::{prompt, Failure, Options};

/// `valid_before` of a certificate that never expires.
const FOREVER: u64 = u64::MAX;

/// The most seconds `convtime` accepts (`INT_MAX`).
const MAX_RELATIVE: u64 = i32::MAX as u64;

/// The `-O` flags and values, as `ssh-keygen` keeps them while parsing its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertOptions {
    x11: bool,
    agent: bool,
    port: bool,
    pty: bool,
    user_rc: bool,
    no_touch: bool,
    verify_required: bool,
    force_command: Option<String>,
    source_address: Option<String>,
    /// `critical:name[=value]` (`true`) and `extension:name[=value]` (`false`).
    custom: Vec<(bool, String, Option<String>)>,
}

impl Default for CertOptions {
    /// A user certificate's defaults: every `permit-*` extension.
    fn default() -> Self {
        Self {
            x11: true,
            agent: true,
            port: true,
            pty: true,
            user_rc: true,
            no_touch: false,
            verify_required: false,
            force_command: None,
            source_address: None,
            custom: Vec::new(),
        }
    }
}

impl CertOptions {
    /// `clear` (and `-h`): no flags; `force-command`, `source-address` and custom options
    /// stay.
    pub(crate) fn clear_flags(&mut self) {
        let (force_command, source_address, custom) = (
            self.force_command.take(),
            self.source_address.take(),
            std::mem::take(&mut self.custom),
        );
        *self = Self {
            x11: false,
            agent: false,
            port: false,
            pty: false,
            user_rc: false,
            no_touch: false,
            verify_required: false,
            force_command,
            source_address,
            custom,
        };
    }

    /// One `-O` option (names case-insensitive, as `ssh-keygen` compares them).
    pub(crate) fn apply(&mut self, option: &str) -> Result<(), Failure> {
        let lower = option.to_ascii_lowercase();
        let value_of = |prefix: &str| {
            lower.starts_with(prefix).then(|| option.get(prefix.len()..).unwrap_or_default())
        };
        let flag = match lower.as_str() {
            "clear" => {
                self.clear_flags();
                return Ok(());
            }
            "no-x11-forwarding" => (&mut self.x11, false),
            "permit-x11-forwarding" => (&mut self.x11, true),
            "no-agent-forwarding" => (&mut self.agent, false),
            "permit-agent-forwarding" => (&mut self.agent, true),
            "no-port-forwarding" => (&mut self.port, false),
            "permit-port-forwarding" => (&mut self.port, true),
            "no-pty" => (&mut self.pty, false),
            "permit-pty" => (&mut self.pty, true),
            "no-user-rc" => (&mut self.user_rc, false),
            "permit-user-rc" => (&mut self.user_rc, true),
            "touch-required" => (&mut self.no_touch, false),
            "no-touch-required" => (&mut self.no_touch, true),
            "no-verify-required" => (&mut self.verify_required, false),
            "verify-required" => (&mut self.verify_required, true),
            _ => {
                if let Some(value) = value_of("force-command=") {
                    if value.is_empty() {
                        return Err(Failure::fatal("Empty force-command option"));
                    }
                    if self.force_command.is_some() {
                        return Err(Failure::fatal("force-command already specified"));
                    }
                    self.force_command = Some(value.to_owned());
                    return Ok(());
                }
                if let Some(value) = value_of("source-address=") {
                    if value.is_empty() {
                        return Err(Failure::fatal("Empty source-address option"));
                    }
                    if self.source_address.is_some() {
                        return Err(Failure::fatal("source-address already specified"));
                    }
                    if !cidr_list_ok(value) {
                        return Err(Failure::fatal("Invalid source-address list"));
                    }
                    self.source_address = Some(value.to_owned());
                    return Ok(());
                }
                let custom = value_of("extension:")
                    .map(|rest| (false, rest))
                    .or_else(|| value_of("critical:").map(|rest| (true, rest)));
                if let Some((critical, rest)) = custom {
                    let (name, value) = match rest.split_once('=') {
                        Some((name, value)) => (name, Some(value.to_owned())),
                        None => (rest, None),
                    };
                    self.custom.push((critical, name.to_owned(), value));
                    return Ok(());
                }
                return Err(Failure::fatal(format!("Unsupported certificate option \"{option}\"")));
            }
        };
        *flag.0 = flag.1;
        Ok(())
    }

    /// The critical options, sorted by name as the certificate holds them.
    fn critical(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        if let Some(c) = &self.force_command {
            out.push((cert::OPTION_FORCE_COMMAND.to_owned(), Some(c.clone())));
        }
        if let Some(a) = &self.source_address {
            out.push((cert::OPTION_SOURCE_ADDRESS.to_owned(), Some(a.clone())));
        }
        if self.verify_required {
            out.push((cert::OPTION_VERIFY_REQUIRED.to_owned(), None));
        }
        out.extend(self.custom_options(true));
        out
    }

    /// The `critical:` or `extension:` options given.
    fn custom_options(
        &self,
        critical: bool,
    ) -> impl Iterator<Item = (String, Option<String>)> + '_ {
        self.custom
            .iter()
            .filter(move |(c, _, _)| *c == critical)
            .map(|(_, name, value)| (name.clone(), value.clone()))
    }

    /// The extensions.
    fn extensions(&self) -> Vec<(String, Option<String>)> {
        [
            (self.no_touch, cert::EXT_NO_TOUCH_REQUIRED),
            (self.x11, cert::EXT_X11_FORWARDING),
            (self.agent, cert::EXT_AGENT_FORWARDING),
            (self.port, cert::EXT_PORT_FORWARDING),
            (self.pty, cert::EXT_PTY),
            (self.user_rc, cert::EXT_USER_RC),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| (name.to_owned(), None))
        .chain(self.custom_options(false))
        .collect()
    }
}

/// Whether `list` is a comma-separated list of addresses or CIDR blocks.
fn cidr_list_ok(list: &str) -> bool {
    list.split(',').all(|entry| {
        let (addr, bits) = match entry.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (entry, None),
        };
        let Ok(ip) = addr.parse::<std::net::IpAddr>() else { return false };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|n| n <= max))
    })
}

/// The seconds since the epoch now.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// OpenSSH's `convtime`: `90`, `5m`, `1h30m`, `2w`... in seconds; `None` if it does not
/// parse or exceeds `INT_MAX` seconds.
pub(crate) fn convtime(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: u64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let multiplier = match rest.bytes().next() {
            None => 1,
            Some(unit) => {
                rest = rest.get(1..)?;
                match unit {
                    b's' | b'S' => 1,
                    b'm' | b'M' => 60,
                    b'h' | b'H' => 3600,
                    b'd' | b'D' => 86_400,
                    b'w' | b'W' => 604_800,
                    _ => return None,
                }
            }
        };
        total = total.checked_add(value.checked_mul(multiplier)?)?;
        if total > MAX_RELATIVE {
            return None;
        }
    }
    Some(total)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (days past the month's end carry
/// over, as `mktime` normalises them).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + day - 1
}

/// The local time zone as the C library finds it: `$TZ` (a zone name, a `:file` or a POSIX
/// rule; set but empty is UTC), else `/etc/localtime`; `None` if neither reads (then UTC).
fn local_zone() -> Option<tz::TimeZone> {
    match std::env::var("TZ") {
        Ok(name) if name.is_empty() => None,
        Ok(name) => tz::TimeZone::from_posix_tz(&name).ok(),
        Err(_) => tz::TimeZone::local().ok(),
    }
}

/// The offset east of UTC `mktime` uses for a local time near `unix` with `tm_isdst` 0, as
/// `parse_absolute_time` leaves it: the zone's standard-time offset, also inside summer time.
fn standard_offset(zone: Option<&tz::TimeZone>, unix: i64) -> i64 {
    let Some(zone) = zone else { return 0 };
    let offset_at =
        |t: i64| zone.find_local_time_type(t).ok().map(|lt| (lt.is_dst(), lt.ut_offset()));
    match offset_at(unix) {
        Some((false, offset)) => i64::from(offset),
        Some((true, offset)) => [-91, 91, -182, 182, -273, 273]
            .into_iter()
            .map(|days| unix + days * 86_400)
            .filter_map(offset_at)
            .find(|(dst, _)| !dst)
            .map_or(i64::from(offset), |(_, o)| i64::from(o)),
        None => 0,
    }
}

/// OpenSSH's `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in local
/// time, or UTC with a `Z` or `UTC` suffix.
pub(crate) fn parse_absolute_time(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (digits, utc) = if s.len() > 1 && lower.ends_with('z') {
        (s.get(..s.len() - 1)?, true)
    } else if s.len() > 3 && lower.ends_with("utc") {
        (s.get(..s.len() - 3)?, true)
    } else {
        (s, false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize, len: usize| -> Option<i64> { digits.get(at..at + len)?.parse().ok() };
    let (year, month, day) = (field(0, 4)?, field(4, 2)?, field(6, 2)?);
    let (hour, minute, second) = match digits.len() {
        8 => (0, 0, 0),
        12 => (field(8, 2)?, field(10, 2)?, 0),
        _ => (field(8, 2)?, field(10, 2)?, field(12, 2)?),
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let naive = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let unix = if utc {
        naive
    } else {
        let zone = local_zone();
        let first = naive - standard_offset(zone.as_ref(), naive);
        naive - standard_offset(zone.as_ref(), first)
    };
    u64::try_from(unix).ok()
}

/// OpenSSH's `parse_relative_time`: `+time` or `-time` from `now`.
fn parse_relative_time(s: &str, now: u64) -> Result<u64, Failure> {
    let negative = s.starts_with('-');
    let secs = s
        .get(1..)
        .and_then(convtime)
        .ok_or_else(|| Failure::fatal(format!("Invalid relative certificate time {s}")))?;
    if negative {
        now.checked_sub(secs)
            .ok_or_else(|| Failure::fatal(format!("Certificate time {s} cannot be represented")))
    } else {
        Ok(now.saturating_add(secs))
    }
}

/// `-V`: the validity interval `(valid_after, valid_before)` for `spec` at `now`.
pub(crate) fn parse_validity(spec: &str, now: u64) -> Result<(u64, u64), Failure> {
    if let Some(relative) = spec.strip_prefix('+').filter(|_| !spec.contains(':')) {
        let secs = convtime(relative)
            .ok_or_else(|| Failure::fatal(format!("Invalid relative certificate life {spec}")))?;
        // Backdated to the minute, for hosts whose clocks are a little behind.
        return Ok((now.saturating_sub(59) / 60 * 60, now.saturating_add(secs)));
    }
    let invalid = || Failure::fatal(format!("Invalid certificate life specification {spec}"));
    let (from, to) = spec.split_once(':').ok_or_else(invalid)?;
    if from.is_empty() || to.is_empty() {
        return Err(invalid());
    }
    let valid_after = if from.starts_with(['-', '+']) {
        parse_relative_time(from, now)?
    } else if from == "always" {
        0
    } else {
        parse_absolute_time(from)
            .ok_or_else(|| Failure::fatal(format!("Invalid from time \"{from}\"")))?
    };
    let valid_before = if to.starts_with(['-', '+']) {
        parse_relative_time(to, now)?
    } else if to == "forever" {
        FOREVER
    } else {
        parse_absolute_time(to)
            .ok_or_else(|| Failure::fatal(format!("Invalid to time \"{to}\"")))?
    };
    if valid_before <= valid_after {
        return Err(Failure::fatal("Empty certificate validity interval"));
    }
    Ok((valid_after, valid_before))
}

/// OpenSSH's `format_absolute_time`: local time as `2026-11-28T10:16:48`.
pub(crate) fn format_time(unix: u64) -> String {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX);
    let zone = local_zone();
    let time = zone
        .as_ref()
        .and_then(|z| tz::DateTime::from_timespec(secs, 0, z.as_ref()).ok())
        .or_else(|| tz::DateTime::from_timespec(secs, 0, tz::TimeZoneRef::utc()).ok());
    match time {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.month_day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => unix.to_string(),
    }
}

/// `sshkey_format_cert_validity`: `forever`, `after X`, `before Y` or `from X to Y`.
pub(crate) fn format_validity(valid_after: u64, valid_before: u64) -> String {
    match (valid_after, valid_before) {
        (0, FOREVER) => "forever".to_owned(),
        (0, to) => format!("before {}", format_time(to)),
        (from, FOREVER) => format!("after {}", format_time(from)),
        (from, to) => format!("from {} to {}", format_time(from), format_time(to)),
    }
}

/// `-z`: a serial, `+` first to count up from it for each key.
pub(crate) fn parse_serial(arg: &str) -> Result<(u64, bool), Failure> {
    let (digits, autoinc) = match arg.strip_prefix('+') {
        Some(rest) => (rest, true),
        None => (arg, false),
    };
    let serial = digits
        .parse::<u64>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Failure::fatal(format!("Invalid serial number \"{arg}\"")))?;
    Ok((serial, autoinc))
}

/// `~/` at the start of a path, expanded.
fn tilde(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", prompt::home_dir()),
        None => path.to_owned(),
    }
}

/// The CA key for `-s`, asking for its passphrase if it has one (`-P` gives it).
fn load_ca(o: &Options, path: &str) -> Result<PrivateKey, Failure> {
    let what = format!("Load key \"{path}\"");
    if let Err(e) = std::fs::File::open(path) {
        return Err(Failure::fatal(format!("{what}: {}", os_error_text(&e))));
    }
    let loaded = match keyfile::load_identity(path, Some(""), &what) {
        Ok(loaded) => loaded,
        Err(first) => {
            let passphrase = match &o.old_passphrase {
                Some(p) => zeroize::Zeroizing::new(p.clone()),
                None => match prompt::read_passphrase("Enter passphrase: ") {
                    Some(p) => p,
                    None => return Err(first),
                },
            };
            keyfile::load_identity(path, Some(&passphrase), &what)?
        }
    };
    Ok(loaded.key)
}

/// The signature algorithm for CA key `ca`: its own for Ed25519 and ECDSA; for RSA,
/// `rsa-sha2-512` unless `-t` names another. A `-t` of another key type fails now, as
/// `ssh-keygen`'s does; `Ok(None)` is a `-t` of the CA's type that names no signature
/// algorithm (`rsa`), which fails when signing.
fn ca_algorithm(
    ca: &PrivateKey,
    requested: Option<&str>,
) -> Result<Option<SignatureAlgorithm>, Failure> {
    let ca_type = ca.key_type();
    let Some(name) = requested else {
        return Ok(match ca_type {
            KeyType::Ed25519 => Some(SignatureAlgorithm::Ed25519),
            KeyType::Ecdsa(curve) => Some(curve.signature_algorithm()),
            KeyType::Rsa => Some(SignatureAlgorithm::RsaSha512),
            _ => None,
        });
    };
    let algorithm = SignatureAlgorithm::from_name(name);
    let same_type = match algorithm {
        Some(alg) => alg.key_type() == ca_type,
        None => match name.to_ascii_lowercase().as_str() {
            "rsa" => ca_type == KeyType::Rsa,
            "ed25519" => ca_type == KeyType::Ed25519,
            "ecdsa" => matches!(ca_type, KeyType::Ecdsa(_)),
            _ => false,
        },
    };
    if !same_type {
        return Err(Failure::fatal(format!(
            "CA key type {} doesn't match specified {name}",
            ca_type.name()
        )));
    }
    Ok(algorithm)
}

/// The public key (and its comment) in `path`, or in `path.pub`, or of the private key in
/// `path`, as `sshkey_load_public` finds it. `Err` carries the `-s` failure.
fn load_subject(path: &str) -> Result<PublicKeyLine, Failure> {
    let failed = |text: String| Failure::fatal(format!("load pubkey \"{path}\": {text}"));
    let contents = std::fs::read(path).map_err(|e| failed(os_error_text(&e)))?;
    let first = String::from_utf8_lossy(&contents)
        .split_ascii_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    if let Some(base) = first.strip_suffix(CERT_SUFFIX) {
        let short = KeyType::from_name(base).map_or("UNKNOWN", short_type_name);
        return Err(Failure::fatal(format!(
            "do_ca_sign: key \"{path}\" type {short}-CERT cannot be certified"
        )));
    }
    if let Ok(line) = keys::load_public_key(&contents) {
        return Ok(line);
    }
    if let Ok(text) = std::fs::read(format!("{path}.pub")) {
        if let Ok(line) = keys::load_public_key(&text) {
            return Ok(line);
        }
    }
    keys::public_key_from_private(&contents)
        .map(|key| PublicKeyLine { key, comment: String::new() })
        .map_err(|e| failed(key_error_text(&e)))
}

/// `ED25519`, `ECDSA` or `RSA`.
fn short_type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Ed25519 => "ED25519",
        KeyType::Ecdsa(_) => "ECDSA",
        KeyType::Rsa => "RSA",
        _ => "UNKNOWN",
    }
}

/// `-s`: certify each public key in `o.operands` with the CA key.
pub(crate) fn sign(o: &Options, ca_path: &str) -> Result<u8, Failure> {
    let key_id = o
        .key_id
        .as_deref()
        .ok_or_else(|| Failure::fatal("Must specify key id (-I) when certifying"))?;
    let ca_path = tilde(ca_path);
    let ca = load_ca(o, &ca_path)?;
    let algorithm = ca_algorithm(&ca, o.key_type.as_deref())?;
    let (valid_after, valid_before) = o.validity.unwrap_or((0, FOREVER));
    let principals: Vec<String> = match &o.principals {
        None => Vec::new(),
        Some(list) => list.split(',').map(str::to_owned).collect(),
    };
    if principals.iter().any(String::is_empty) {
        return Err(Failure::fatal("Empty principal name"));
    }
    if principals.len() > cert::MAX_PRINCIPALS {
        return Err(Failure::fatal("Too many certificate principals specified"));
    }
    let mut serial = o.serial;
    let mut rng = OsRandom::new();
    for operand in &o.operands {
        let path = tilde(operand);
        let subject = load_subject(&path)?;
        let mut nonce = vec![0; 32];
        rng.fill(&mut nonce).map_err(|_| Failure::fatal("Couldn't certify key: random failed"))?;
        let builder = CertificateBuilder {
            key: subject.key.clone(),
            nonce,
            serial,
            cert_type: if o.host_cert { CertType::Host } else { CertType::User },
            key_id: key_id.to_owned(),
            principals: principals.clone(),
            valid_after,
            valid_before,
            critical_options: o.cert_options.critical(),
            extensions: o.cert_options.extensions(),
        };
        let algorithm = algorithm.ok_or_else(|| {
            Failure::fatal(format!("Couldn't certify key {path}: invalid argument"))
        })?;
        let certificate =
            builder.sign(ca.public_key(), |body| ca.sign(algorithm, body)).map_err(|e| {
                Failure::fatal(format!("Couldn't certify key {path}: {}", key_error_text(&e)))
            })?;
        let stem = path.strip_suffix(".pub").unwrap_or(&path);
        let out = format!("{stem}-cert.pub");
        let line = if subject.comment.is_empty() {
            certificate.to_openssh()
        } else {
            format!("{} {}", certificate.to_openssh(), subject.comment)
        };
        keyfile::write_public(&out, &line)?;
        if !o.quiet {
            let for_principals =
                o.principals.as_deref().map(|p| format!(" for {p}")).unwrap_or_default();
            eprintln!(
                "Signed {} key {out}: id \"{key_id}\" serial {serial}{for_principals} valid {}",
                certificate.cert_type.name(),
                format_validity(valid_after, valid_before)
            );
        }
        if o.serial_autoinc {
            serial = serial.wrapping_add(1);
        }
    }
    Ok(0)
}

/// `show_options`: one option a line, values of the ones `ssh-keygen` knows, hex of others.
fn options_text(options: &[(String, Vec<u8>)], critical: bool, out: &mut String) {
    const FLAG_EXTENSIONS: [&str; 6] = [
        cert::EXT_X11_FORWARDING,
        cert::EXT_AGENT_FORWARDING,
        cert::EXT_PORT_FORWARDING,
        cert::EXT_PTY,
        cert::EXT_USER_RC,
        cert::EXT_NO_TOUCH_REQUIRED,
    ];
    for (name, data) in options {
        out.push_str("                ");
        out.push_str(name);
        let string_value = || {
            let len = usize::try_from(u32::from_be_bytes(data.get(..4)?.try_into().ok()?)).ok()?;
            data.get(4..4 + len).map(|v| String::from_utf8_lossy(v).into_owned())
        };
        if !critical && FLAG_EXTENSIONS.contains(&name.as_str()) {
        } else if critical
            && (name == cert::OPTION_FORCE_COMMAND || name == cert::OPTION_SOURCE_ADDRESS)
        {
            out.push(' ');
            out.push_str(&string_value().unwrap_or_default());
        } else if critical && name == cert::OPTION_VERIFY_REQUIRED {
        } else if !data.is_empty() {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(" UNKNOWN OPTION: {hex} (len {})", data.len()));
        } else {
            out.push_str(" UNKNOWN FLAG OPTION");
        }
        out.push('\n');
    }
}

/// `print_cert`: the `-L` description of one certificate.
pub(crate) fn describe(c: &Certificate, hash: keys::FingerprintHash) -> String {
    let mut out = String::new();
    let short = short_type_name(c.key.key_type());
    let ca: &PublicKey = &c.signature_key;
    out.push_str(&format!("        Type: {} {} certificate\n", c.type_name(), c.cert_type.name()));
    out.push_str(&format!("        Public key: {short}-CERT {}\n", c.key.fingerprint(hash)));
    out.push_str(&format!(
        "        Signing CA: {} {} (using {})\n",
        ca.short_type_name(),
        ca.fingerprint(hash),
        c.signature_algorithm().map_or("unknown", SignatureAlgorithm::name)
    ));
    out.push_str(&format!("        Key ID: \"{}\"\n", c.key_id));
    out.push_str(&format!("        Serial: {}\n", c.serial));
    out.push_str(&format!("        Valid: {}\n", format_validity(c.valid_after, c.valid_before)));
    out.push_str("        Principals: ");
    if c.principals.is_empty() {
        out.push_str("(none)\n");
    } else {
        for p in &c.principals {
            out.push_str("\n                ");
            out.push_str(p);
        }
        out.push('\n');
    }
    for (title, list, critical) in
        [("Critical Options", &c.critical_options, true), ("Extensions", &c.extensions, false)]
    {
        out.push_str(&format!("        {title}: "));
        if list.is_empty() {
            out.push_str("(none)\n");
        } else {
            out.push('\n');
            options_text(list, critical, &mut out);
        }
    }
    out
}

/// `-L`: print every certificate in the file (`-` for standard input).
pub(crate) fn show(o: &Options) -> Result<u8, Failure> {
    let path = keyfile::identity_path(o, "Enter file in which the key is")?;
    let contents = if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::fatal(format!("(stdin): {}", os_error_text(&e))))?;
        buf
    } else {
        std::fs::read(&path)
            .map_err(|e| Failure::fatal(format!("{}: {path}: {}", o.program, os_error_text(&e))))?
    };
    let shown = if path == "-" { "(stdin)" } else { path.as_str() };
    let text = String::from_utf8_lossy(&contents);
    let mut found = false;
    for (n, raw) in text.lines().enumerate() {
        let lnum = n + 1;
        let line = raw.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let certificate = match Certificate::from_openssh(line) {
            Ok(c) => c,
            Err(_) if PublicKey::from_openssh(line).is_ok() => {
                eprintln!("{shown}:{lnum} is not a certificate");
                continue;
            }
            Err(e) => {
                eprintln!("{shown}:{lnum}: invalid key: {}", key_error_text(&e));
                continue;
            }
        };
        found = true;
        if lnum == 1 && path != "-" {
            println!("{path}:");
        } else {
            println!("{shown}:{lnum}:");
        }
        print!("{}", describe(&certificate, o.hash));
    }
    Ok(if found { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_324_000; // 2025-11-28T10:00:00Z

    /// `convtime` adds up units and refuses junk, empty text and more than `INT_MAX` seconds.
    #[test]
    fn relative_times_add_up_their_units_and_refuse_junk() {
        assert_eq!(convtime("90"), Some(90));
        assert_eq!(convtime("1h30m"), Some(5400));
        assert_eq!(convtime("52w"), Some(52 * 604_800));
        assert_eq!(convtime("1W1D1H1M1S"), Some(604_800 + 86_400 + 3600 + 61));
        assert_eq!(convtime(""), None);
        assert_eq!(convtime("x"), None);
        assert_eq!(convtime("5y"), None);
        assert_eq!(convtime("h"), None);
        assert_eq!(convtime("4000w"), None);
    }

    /// `+52w` starts a minute-rounded moment before now; `-1d:+1w` is relative at both ends.
    #[test]
    fn relative_validity_is_counted_from_now() {
        let now = NOW + 30;
        assert_eq!(parse_validity("+52w", now).unwrap(), (NOW - 60, now + 52 * 604_800));
        assert_eq!(parse_validity("-1d:+1w", now).unwrap(), (now - 86_400, now + 604_800));
        assert_eq!(parse_validity("always:forever", now).unwrap(), (0, u64::MAX));
        assert_eq!(parse_validity("-5m:forever", now).unwrap(), (now - 300, u64::MAX));
    }

    /// Absolute times in UTC (`Z`, `UTC`) are exact, at day, minute and second precision.
    #[test]
    fn absolute_utc_times_parse_at_each_precision() {
        assert_eq!(parse_absolute_time("20200101Z"), Some(1_577_836_800));
        assert_eq!(parse_absolute_time("202001011230Z"), Some(1_577_881_800));
        assert_eq!(parse_absolute_time("20200101123045UTC"), Some(1_577_881_845));
        assert_eq!(parse_absolute_time("20200229z"), Some(1_582_934_400));
        assert_eq!(parse_absolute_time("2020010"), None);
        assert_eq!(parse_absolute_time("2020130100"), None);
        assert_eq!(parse_absolute_time("20201301Z"), None);
        assert_eq!(parse_absolute_time("2020010a"), None);
        assert_eq!(parse_absolute_time("202001012460Z"), None);
    }

    /// Bad validity specifications fail with `ssh-keygen`'s messages and exit code 255.
    #[test]
    fn bad_validity_fails_with_ssh_keygens_messages() {
        let message = |spec: &str| {
            let failure = parse_validity(spec, NOW).unwrap_err();
            assert_eq!(failure.code, 255);
            failure.message
        };
        assert_eq!(message("bogus"), "Invalid certificate life specification bogus");
        assert_eq!(message("+zz"), "Invalid relative certificate life +zz");
        assert_eq!(message("2020:forever"), "Invalid from time \"2020\"");
        assert_eq!(message("forever:always"), "Invalid from time \"forever\"");
        assert_eq!(message("always:never"), "Invalid to time \"never\"");
        assert_eq!(message("20300101Z:20200101Z"), "Empty certificate validity interval");
        assert_eq!(message("-1x:+1d"), "Invalid relative certificate time -1x");
        assert_eq!(message(":+1d"), "Invalid certificate life specification :+1d");
    }

    /// The validity text has `ssh-keygen`'s four shapes.
    #[test]
    fn validity_text_has_four_shapes() {
        assert_eq!(format_validity(0, u64::MAX), "forever");
        assert!(format_validity(0, NOW).starts_with("before 2025-11-2"));
        assert!(format_validity(NOW, u64::MAX).starts_with("after 2025-11-2"));
        assert!(format_validity(NOW, NOW + 1).starts_with("from 2025-11-2"));
    }

    /// `-O` options set and clear flags, refuse repeats and unknown names.
    #[test]
    fn certificate_options_set_and_clear_flags() {
        let mut o = CertOptions::default();
        o.apply("no-pty").unwrap();
        o.apply("force-command=ls -l").unwrap();
        o.apply("verify-required").unwrap();
        o.apply("source-address=127.0.0.1/32,::1").unwrap();
        assert_eq!(
            o.critical(),
            vec![
                ("force-command".to_owned(), Some("ls -l".to_owned())),
                ("source-address".to_owned(), Some("127.0.0.1/32,::1".to_owned())),
                ("verify-required".to_owned(), None),
            ]
        );
        assert!(!o.extensions().iter().any(|(n, _)| n == "permit-pty"));
        assert_eq!(o.extensions().len(), 4);
        o.apply("CLEAR").unwrap();
        assert!(o.extensions().is_empty());
        o.apply("permit-pty").unwrap();
        assert_eq!(o.extensions(), vec![("permit-pty".to_owned(), None)]);
        assert_eq!(
            o.apply("force-command=x").unwrap_err().message,
            "force-command already specified"
        );
        assert_eq!(
            o.apply("bogus").unwrap_err().message,
            "Unsupported certificate option \"bogus\""
        );
        let mut fresh = CertOptions::default();
        assert_eq!(
            fresh.apply("source-address=nonsense").unwrap_err().message,
            "Invalid source-address list"
        );
        assert_eq!(
            fresh.apply("force-command=").unwrap_err().message,
            "Empty force-command option"
        );
    }

    /// Serials are decimal, `+` first counts up.
    #[test]
    fn serials_parse_with_an_optional_plus() {
        assert_eq!(parse_serial("42").unwrap(), (42, false));
        assert_eq!(parse_serial("+7").unwrap(), (7, true));
        assert_eq!(parse_serial("abc").unwrap_err().message, "Invalid serial number \"abc\"");
        assert!(parse_serial("-1").is_err());
    }
}

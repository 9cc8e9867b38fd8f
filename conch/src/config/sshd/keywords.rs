//! The `sshd_config` keywords (OpenSSH 9.2's `servconf.c` table, plus the keywords of later
//! releases and Debian's patches), and the parsing of each one's value.

use super::super::lex;
use super::super::pattern::{match_address_list, valid_user_pattern};
use super::super::values::{
    clean_host, parse_int, parse_ipqos, parse_octal_mask, parse_port, parse_scaled, parse_time,
    split_host_port, Facility, LogLevel, ScaledError,
};
use super::super::Support;
use crate::crypto::algorithms::Category;

use crate::config::shared::choice;
pub(super) use crate::config::shared::{Args, LineError};

/// Where a keyword may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// Only outside `Match` blocks (`SSHCFG_GLOBAL`).
    Global,
    /// Anywhere (`SSHCFG_ALL`).
    All,
}

macro_rules! keywords {
    ($($kw:ident),* $(,)?) => {
        /// A keyword (aliases resolved), plus the internal slot `RekeyInterval`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(super) enum Kw { $($kw),* }
    };
}

keywords! {
    UsePam, PamServiceName, Port, HostKey, HostKeyAgent, PidFile, ModuliFile, LoginGraceTime,
    PermitRootLogin, SyslogFacility, LogLevel, LogVerbose, HostbasedAuthentication,
    HostbasedUsesNameFromPacketOnly, HostbasedAcceptedAlgorithms, HostKeyAlgorithms,
    PubkeyAuthentication, PubkeyAcceptedAlgorithms, PubkeyAuthOptions, PasswordAuthentication,
    KbdInteractiveAuthentication, ListenAddress, AddressFamily, PrintMotd, PrintLastLog,
    IgnoreRhosts, IgnoreUserKnownHosts, X11Forwarding, X11DisplayOffset, X11UseLocalhost,
    XAuthLocation, StrictModes, PermitEmptyPasswords, PermitUserEnvironment, Compression,
    RekeyLimit, RekeyInterval, TcpKeepAlive, AllowTcpForwarding, AllowAgentForwarding,
    AllowUsers, DenyUsers, AllowGroups, DenyGroups, Ciphers, Macs, GatewayPorts, Subsystem,
    MaxStartups, PerSourceMaxStartups, PerSourceNetBlockSize, PerSourcePenalties,
    PerSourcePenaltyExemptList, MaxAuthTries, MaxSessions, Banner, UseDns, ClientAliveInterval,
    ClientAliveCountMax, AuthorizedKeysFile, AcceptEnv, SetEnv, PermitTunnel, PermitTty,
    PermitUserRc, Match, PermitOpen, PermitListen, ForceCommand, ChrootDirectory,
    HostCertificate, RevokedKeys, TrustedUserCaKeys, AuthorizedPrincipalsFile, KexAlgorithms,
    Include, IpQos, AuthorizedKeysCommand, AuthorizedKeysCommandUser,
    AuthorizedPrincipalsCommand, AuthorizedPrincipalsCommandUser, VersionAddendum,
    AuthenticationMethods, StreamLocalBindMask, StreamLocalBindUnlink,
    AllowStreamLocalForwarding, FingerprintHash, DisableForwarding, ExposeAuthInfo, RDomain,
    CaSignatureAlgorithms, SecurityKeyProvider, RequiredRsaSize, ChannelTimeout,
    UnusedConnectionTimeout, SshdSessionPath, SshdAuthPath, RefuseConnection,
    Deprecated, Unsupported, Ignore,
}

/// One name of the table.
pub(super) struct Entry {
    pub(super) name: &'static str,
    pub(super) kw: Kw,
    pub(super) scope: Scope,
}

const fn e(name: &'static str, kw: Kw, scope: Scope) -> Entry {
    Entry { name, kw, scope }
}

use Kw::*;
use Scope::{All, Global};

/// Every name `sshd_config` accepts. The first name listed for a keyword is the one `-T`
/// prints (OpenSSH's `lookup_opcode_name`).
pub(super) const KEYWORDS: &[Entry] = &[
    e("usepam", UsePam, Global),
    e("pamservicename", PamServiceName, All),
    e("pamauthenticationviakbdint", Deprecated, Global),
    e("port", Port, Global),
    e("hostkey", HostKey, Global),
    e("hostdsakey", HostKey, Global),
    e("hostkeyagent", HostKeyAgent, Global),
    e("pidfile", PidFile, Global),
    e("modulifile", ModuliFile, Global),
    e("serverkeybits", Deprecated, Global),
    e("logingracetime", LoginGraceTime, Global),
    e("keyregenerationinterval", Deprecated, Global),
    e("permitrootlogin", PermitRootLogin, All),
    e("syslogfacility", SyslogFacility, Global),
    e("loglevel", LogLevel, All),
    e("logverbose", LogVerbose, All),
    e("rhostsauthentication", Deprecated, Global),
    e("rhostsrsaauthentication", Deprecated, All),
    e("hostbasedauthentication", HostbasedAuthentication, All),
    e("hostbasedusesnamefrompacketonly", HostbasedUsesNameFromPacketOnly, All),
    e("hostbasedacceptedalgorithms", HostbasedAcceptedAlgorithms, All),
    e("hostbasedacceptedkeytypes", HostbasedAcceptedAlgorithms, All),
    e("hostkeyalgorithms", HostKeyAlgorithms, Global),
    e("rsaauthentication", Deprecated, All),
    e("pubkeyauthentication", PubkeyAuthentication, All),
    e("pubkeyacceptedalgorithms", PubkeyAcceptedAlgorithms, All),
    e("pubkeyacceptedkeytypes", PubkeyAcceptedAlgorithms, All),
    e("pubkeyauthoptions", PubkeyAuthOptions, All),
    e("dsaauthentication", PubkeyAuthentication, Global),
    e("kerberosauthentication", Unsupported, All),
    e("kerberosorlocalpasswd", Unsupported, Global),
    e("kerberosticketcleanup", Unsupported, Global),
    e("kerberosgetafstoken", Unsupported, Global),
    e("kerberostgtpassing", Unsupported, Global),
    e("afstokenpassing", Unsupported, Global),
    e("gssapiauthentication", Unsupported, All),
    e("gssapicleanupcredentials", Unsupported, Global),
    e("gssapistrictacceptorcheck", Unsupported, Global),
    e("gssapidelegatecredentials", Unsupported, Global),
    e("gssapikeyexchange", Unsupported, Global),
    e("gssapistorecredentialsonrekey", Unsupported, Global),
    e("gssapikexalgorithms", Unsupported, Global),
    e("debianbanner", Unsupported, Global),
    e("passwordauthentication", PasswordAuthentication, All),
    e("kbdinteractiveauthentication", KbdInteractiveAuthentication, All),
    e("challengeresponseauthentication", KbdInteractiveAuthentication, All),
    e("skeyauthentication", KbdInteractiveAuthentication, All),
    e("checkmail", Deprecated, Global),
    e("listenaddress", ListenAddress, Global),
    e("addressfamily", AddressFamily, Global),
    e("printmotd", PrintMotd, Global),
    e("printlastlog", PrintLastLog, Global),
    e("ignorerhosts", IgnoreRhosts, All),
    e("ignoreuserknownhosts", IgnoreUserKnownHosts, Global),
    e("x11forwarding", X11Forwarding, All),
    e("x11displayoffset", X11DisplayOffset, All),
    e("x11uselocalhost", X11UseLocalhost, All),
    e("xauthlocation", XAuthLocation, Global),
    e("strictmodes", StrictModes, Global),
    e("permitemptypasswords", PermitEmptyPasswords, All),
    e("permituserenvironment", PermitUserEnvironment, Global),
    e("uselogin", Deprecated, Global),
    e("compression", Compression, Global),
    e("rekeylimit", RekeyLimit, All),
    e("tcpkeepalive", TcpKeepAlive, Global),
    e("keepalive", TcpKeepAlive, Global),
    e("allowtcpforwarding", AllowTcpForwarding, All),
    e("allowagentforwarding", AllowAgentForwarding, All),
    e("allowusers", AllowUsers, All),
    e("denyusers", DenyUsers, All),
    e("allowgroups", AllowGroups, All),
    e("denygroups", DenyGroups, All),
    e("ciphers", Ciphers, Global),
    e("macs", Macs, Global),
    e("protocol", Ignore, Global),
    e("gatewayports", GatewayPorts, All),
    e("subsystem", Subsystem, All),
    e("maxstartups", MaxStartups, Global),
    e("persourcemaxstartups", PerSourceMaxStartups, Global),
    e("persourcenetblocksize", PerSourceNetBlockSize, Global),
    e("persourcepenalties", PerSourcePenalties, Global),
    e("persourcepenaltyexemptlist", PerSourcePenaltyExemptList, Global),
    e("maxauthtries", MaxAuthTries, All),
    e("maxsessions", MaxSessions, All),
    e("banner", Banner, All),
    e("usedns", UseDns, Global),
    e("verifyreversemapping", Deprecated, Global),
    e("reversemappingcheck", Deprecated, Global),
    e("clientaliveinterval", ClientAliveInterval, All),
    e("clientalivecountmax", ClientAliveCountMax, All),
    e("authorizedkeysfile", AuthorizedKeysFile, All),
    e("authorizedkeysfile2", Deprecated, All),
    e("useprivilegeseparation", Deprecated, Global),
    e("acceptenv", AcceptEnv, All),
    e("setenv", SetEnv, All),
    e("permittunnel", PermitTunnel, All),
    e("permittty", PermitTty, All),
    e("permituserrc", PermitUserRc, All),
    e("match", Match, All),
    e("permitopen", PermitOpen, All),
    e("permitlisten", PermitListen, All),
    e("forcecommand", ForceCommand, All),
    e("chrootdirectory", ChrootDirectory, All),
    e("hostcertificate", HostCertificate, Global),
    e("revokedkeys", RevokedKeys, All),
    e("trustedusercakeys", TrustedUserCaKeys, All),
    e("authorizedprincipalsfile", AuthorizedPrincipalsFile, All),
    e("kexalgorithms", KexAlgorithms, Global),
    e("include", Include, All),
    e("ipqos", IpQos, All),
    e("authorizedkeyscommand", AuthorizedKeysCommand, All),
    e("authorizedkeyscommanduser", AuthorizedKeysCommandUser, All),
    e("authorizedprincipalscommand", AuthorizedPrincipalsCommand, All),
    e("authorizedprincipalscommanduser", AuthorizedPrincipalsCommandUser, All),
    e("versionaddendum", VersionAddendum, Global),
    e("authenticationmethods", AuthenticationMethods, All),
    e("streamlocalbindmask", StreamLocalBindMask, All),
    e("streamlocalbindunlink", StreamLocalBindUnlink, All),
    e("allowstreamlocalforwarding", AllowStreamLocalForwarding, All),
    e("fingerprinthash", FingerprintHash, Global),
    e("disableforwarding", DisableForwarding, All),
    e("exposeauthinfo", ExposeAuthInfo, All),
    e("rdomain", RDomain, All),
    e("casignaturealgorithms", CaSignatureAlgorithms, All),
    e("securitykeyprovider", SecurityKeyProvider, Global),
    e("requiredrsasize", RequiredRsaSize, All),
    e("channeltimeout", ChannelTimeout, All),
    e("unusedconnectiontimeout", UnusedConnectionTimeout, All),
    e("sshdsessionpath", SshdSessionPath, Global),
    e("sshdauthpath", SshdAuthPath, Global),
    e("refuseconnection", RefuseConnection, All),
];

/// Looks a keyword up, case-insensitively.
pub(super) fn lookup(keyword: &str) -> Option<&'static Entry> {
    KEYWORDS.iter().find(|entry| entry.name.eq_ignore_ascii_case(keyword))
}

impl Kw {
    /// The name `-T` prints.
    pub(super) fn name(self) -> &'static str {
        match self {
            RekeyInterval => "rekeylimit",
            _ => KEYWORDS.iter().find(|e| e.kw == self).map_or("UNKNOWN", |e| e.name),
        }
    }

    /// Whether a `Match` block may set it (and so whether a matching block overrides it).
    pub(super) fn scope(self) -> Scope {
        match self {
            RekeyInterval => All,
            _ => KEYWORDS.iter().find(|e| e.kw == self).map_or(Global, |e| e.scope),
        }
    }

    /// How we support it.
    pub(super) fn support(self) -> Support {
        match self {
            Deprecated => Support::Deprecated,
            Unsupported => Support::Unsupported,
            Ignore => Support::Ignored,
            HostKeyAgent
            | HostCertificate
            | RevokedKeys
            | TrustedUserCaKeys
            | AuthorizedPrincipalsFile
            | AuthorizedKeysCommand
            | AuthorizedKeysCommandUser
            | AuthorizedPrincipalsCommand
            | AuthorizedPrincipalsCommandUser
            | ChrootDirectory
            | PermitUserEnvironment
            | PubkeyAuthOptions => Support::Unenforced,
            PamServiceName
            | ModuliFile
            | LogVerbose
            | HostbasedUsesNameFromPacketOnly
            | HostbasedAcceptedAlgorithms
            | PrintLastLog
            | IgnoreRhosts
            | IgnoreUserKnownHosts
            | X11DisplayOffset
            | X11UseLocalhost
            | XAuthLocation
            | Compression
            | TcpKeepAlive
            | PerSourceMaxStartups
            | PerSourceNetBlockSize
            | PerSourcePenalties
            | PerSourcePenaltyExemptList
            | UseDns
            | PermitTunnel
            | PermitUserRc
            | IpQos
            | VersionAddendum
            | StreamLocalBindMask
            | StreamLocalBindUnlink
            | FingerprintHash
            | RDomain
            | CaSignatureAlgorithms
            | SecurityKeyProvider
            | SshdSessionPath
            | SshdAuthPath => Support::NotImplemented,
            _ => Support::Implemented,
        }
    }

    /// How repeated lines combine.
    pub(super) fn accumulation(self) -> Accumulation {
        match self {
            Port | HostKey | HostCertificate | ListenAddress | AllowUsers | DenyUsers
            | AllowGroups | DenyGroups | AcceptEnv | Subsystem => Accumulation::Append,
            _ => Accumulation::FirstWins,
        }
    }
}

/// How repeated lines of a keyword combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Accumulation {
    /// The first line obtained wins (lists: the first line's items).
    FirstWins,
    /// Every line adds its items.
    Append,
}

/// `PermitRootLogin`'s values, in OpenSSH's table order (the first name of a value is the
/// one `-T` prints).
pub(super) const PERMIT_ROOT_LOGIN: &[(&str, u8)] = &[
    ("without-password", 2),
    ("prohibit-password", 2),
    ("forced-commands-only", 1),
    ("yes", 3),
    ("no", 0),
];
/// `yes`/`no`.
pub(super) const FLAG: &[(&str, u8)] = &[("yes", 1), ("no", 0)];
/// `IgnoreRhosts`.
pub(super) const IGNORE_RHOSTS: &[(&str, u8)] = &[("yes", 1), ("no", 0), ("shosts-only", 2)];
/// `AddressFamily`.
pub(super) const ADDRESS_FAMILY: &[(&str, u8)] = &[("inet", 4), ("inet6", 6), ("any", 0)];
/// `Compression` (`yes` and `delayed` both mean delayed compression).
pub(super) const COMPRESSION: &[(&str, u8)] = &[("yes", 1), ("delayed", 1), ("no", 0)];
/// `GatewayPorts`.
pub(super) const GATEWAY_PORTS: &[(&str, u8)] = &[("clientspecified", 2), ("yes", 1), ("no", 0)];
/// `AllowTcpForwarding`, `AllowStreamLocalForwarding`.
pub(super) const FORWARDING: &[(&str, u8)] =
    &[("yes", 3), ("all", 3), ("no", 0), ("remote", 2), ("local", 1)];
/// `PermitTunnel` (case-sensitive in OpenSSH).
pub(super) const TUNNEL: &[(&str, u8)] =
    &[("no", 0), ("point-to-point", 1), ("ethernet", 2), ("yes", 3)];

/// The name printed for a multistate value.
pub(super) fn choice_name(table: &[(&'static str, u8)], value: u8) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map_or("UNKNOWN", |(n, _)| n)
}

/// An address to listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ListenSpec {
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) rdomain: Option<String>,
}

/// A `Subsystem` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SubsystemSpec {
    pub(super) name: String,
    pub(super) command: String,
    pub(super) args: String,
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Value {
    Flag(bool),
    Int(i64),
    Choice(u8),
    Text(String),
    List(Vec<String>),
    Ports(Vec<u16>),
    Listen(Vec<ListenSpec>),
    Subsystems(Vec<SubsystemSpec>),
    MaxStartups(u32, u32, u32),
    NetBlock(u32, Option<u32>),
    IpQos(u16, u16),
    Rekey { bytes: i64, interval: Option<u32> },
    UserEnvironment(bool, Option<String>),
    Nothing,
}

/// What a value parser needs to know about the line.
pub(super) struct LineCtx<'a> {
    pub(super) file: &'a str,
    pub(super) line: usize,
    /// The keyword as written.
    pub(super) keyword: &'a str,
    /// The raw text after the keyword.
    pub(super) rest: &'a str,
    /// Turns a path into an absolute one (`derelativise_path`).
    pub(super) absolute: &'a dyn Fn(&str) -> Result<String, String>,
    /// Expands `~` in a path (`tilde_expand_filename`).
    pub(super) tilde: &'a dyn Fn(&str) -> Result<String, String>,
    /// Warnings the line gives (an algorithm OpenSSH has and we do not).
    pub(super) warnings: &'a std::cell::RefCell<Vec<String>>,
}

impl LineCtx<'_> {
    pub(super) fn fatal(&self, text: impl std::fmt::Display) -> LineError {
        LineError { message: format!("{} line {}: {text}", self.file, self.line), fatal: true }
    }

    pub(super) fn warn(&self, text: impl std::fmt::Display) {
        self.warnings.borrow_mut().push(format!("{} line {}: {text}", self.file, self.line));
    }

    pub(super) fn error(&self, text: impl std::fmt::Display) -> LineError {
        LineError { message: format!("{} line {}: {text}", self.file, self.line), fatal: false }
    }
}

/// The algorithm category of an algorithm keyword.
pub(super) fn algorithm_category(kw: Kw) -> Option<Category> {
    match kw {
        Ciphers => Some(Category::Cipher),
        Macs => Some(Category::Mac),
        KexAlgorithms => Some(Category::Kex),
        HostKeyAlgorithms
        | PubkeyAcceptedAlgorithms
        | HostbasedAcceptedAlgorithms
        | CaSignatureAlgorithms => Some(Category::HostKey),
        _ => None,
    }
}

/// Names OpenSSH knows that twine does not implement, by category: a list naming one is used
/// without it (with a warning), where an unknown name is an error.
const OPENSSH_CIPHERS: &[&str] = &["3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"];
const OPENSSH_MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
];
const OPENSSH_KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "mlkem768x25519-sha256",
];
const OPENSSH_KEY_ALGORITHMS: &[&str] = &[
    "ssh-dss",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Whether OpenSSH knows `name` in `category` but we do not implement it.
fn openssh_only(category: Category, name: &str) -> bool {
    if category.supported().contains(&name) {
        return false;
    }
    match category {
        Category::Cipher => OPENSSH_CIPHERS.contains(&name),
        Category::Mac => OPENSSH_MACS.contains(&name),
        Category::Kex => OPENSSH_KEX.contains(&name),
        Category::HostKey => {
            let known =
                |n: &str| category.supported().contains(&n) || OPENSSH_KEY_ALGORITHMS.contains(&n);
            known(name)
                || name
                    .strip_suffix("-cert-v01@openssh.com")
                    .is_some_and(|base| known(base) || known(&format!("{base}@openssh.com")))
        }
        Category::Compression => false,
    }
}

/// What an algorithm list does with one name.
enum Name {
    /// Supported: kept.
    Keep,
    /// OpenSSH has it and we do not: skipped with a warning.
    Skip,
    /// Unknown: the line is refused.
    Bad,
}

/// An algorithm list (`Ciphers`, `MACs`, ...): names OpenSSH has and we do not are skipped
/// with a warning naming the line; an unknown name is `bad`'s error, as OpenSSH's; a list
/// left with no names is an error. `-` lists (removals) are kept as written.
fn algorithm_list(
    ctx: &LineCtx<'_>,
    category: Category,
    arg: &str,
    bad: impl Fn() -> String,
) -> Result<Value, LineError> {
    filtered_list(ctx, category, arg, bad, |name| {
        if category.supported().contains(&name) {
            Name::Keep
        } else if openssh_only(category, name) {
            Name::Skip
        } else {
            Name::Bad
        }
    })
}

/// `PubkeyAcceptedAlgorithms`: as [`algorithm_list`], with certificate names and wildcards
/// (kept as written: they stand for what they match when the list is resolved).
fn pubkey_algorithm_list(
    ctx: &LineCtx<'_>,
    arg: &str,
    bad: impl Fn() -> String,
) -> Result<Value, LineError> {
    use crate::crypto::algorithms::PUBKEY_ALGORITHMS;
    filtered_list(ctx, Category::HostKey, arg, bad, |name| {
        let wildcard = name.contains(['*', '?']);
        let matches_any = || {
            PUBKEY_ALGORITHMS.iter().any(|known| crate::keys::pattern::match_pattern(known, name))
        };
        if PUBKEY_ALGORITHMS.contains(&name) || (wildcard && matches_any()) {
            Name::Keep
        } else if wildcard || openssh_only(Category::HostKey, name) {
            Name::Skip
        } else {
            Name::Bad
        }
    })
}

/// The list `arg` with each name judged by `judge` (see [`algorithm_list`]).
fn filtered_list(
    ctx: &LineCtx<'_>,
    category: Category,
    arg: &str,
    bad: impl Fn() -> String,
    judge: impl Fn(&str) -> Name,
) -> Result<Value, LineError> {
    if arg.starts_with('-') {
        return Ok(Value::Text(arg.to_owned()));
    }
    let (prefix, names) = match arg.strip_prefix(['+', '^']) {
        Some(names) => (arg.get(..1).unwrap_or(""), names),
        None => ("", arg),
    };
    let mut kept = Vec::new();
    for name in names.split(',') {
        match judge(name) {
            Name::Keep => kept.push(name),
            Name::Skip => ctx.warn(format!(
                "{}: {} {name} is not supported; skipped",
                ctx.keyword,
                category.noun()
            )),
            Name::Bad => return Err(ctx.fatal(bad())),
        }
    }
    if kept.is_empty() {
        if prefix.is_empty() {
            return Err(
                ctx.fatal(format!("{}: no supported algorithm left in '{arg}'.", ctx.keyword))
            );
        }
        // Nothing to add: the defaults stand (a removal of nothing).
        return Ok(Value::Text("-".to_owned()));
    }
    Ok(Value::Text(format!("{prefix}{}", kept.join(","))))
}

/// `AuthenticationMethods` method names.
const AUTH_METHODS: &[&str] =
    &["none", "publickey", "password", "keyboard-interactive", "hostbased", "gssapi-with-mic"];

fn valid_auth_method_list(list: &str) -> bool {
    !list.is_empty()
        && list.split(',').all(|method| {
            let name = method.split_once(':').map_or(method, |(n, _)| n);
            AUTH_METHODS.contains(&name)
        })
}

fn multistate(
    ctx: &LineCtx<'_>,
    args: &mut Args,
    table: &[(&str, u8)],
) -> Result<Value, LineError> {
    let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing argument."))?;
    choice(table, &arg)
        .map(Value::Choice)
        .ok_or_else(|| ctx.fatal(format!("unsupported option \"{arg}\".")))
}

fn flag(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    match multistate(ctx, args, FLAG)? {
        Value::Choice(v) => Ok(Value::Flag(v == 1)),
        other => Ok(other),
    }
}

fn time(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing time value."))?;
    parse_time(&arg)
        .map(|t| Value::Int(i64::from(t)))
        .ok_or_else(|| ctx.fatal("invalid time value."))
}

fn int(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg = args.next().unwrap_or_default();
    parse_int(&arg)
        .map(|v| Value::Int(i64::from(v)))
        .map_err(|why| ctx.fatal(format!("{} integer value {why}.", ctx.keyword)))
}

fn filename(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing file name."))?;
    (ctx.absolute)(&arg).map(Value::Text).map_err(|why| ctx.fatal(why))
}

/// The text after the keyword, verbatim (less leading whitespace), as `ForceCommand` and
/// the `*Command` keywords take it.
fn verbatim(ctx: &LineCtx<'_>, args: &mut Args) -> Result<String, LineError> {
    args.consume();
    let text = ctx.rest.trim_start_matches([' ', '\t', '\r', '\n']);
    if text.is_empty() {
        return Err(ctx.fatal(format!("{} missing argument.", ctx.keyword)));
    }
    Ok(text.to_owned())
}

/// Parses the value of `kw` (any keyword but `Match` and `Include`, which the loader handles).
pub(super) fn parse_value(kw: Kw, ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let keyword = ctx.keyword;
    match kw {
        UsePam
        | HostbasedAuthentication
        | HostbasedUsesNameFromPacketOnly
        | PubkeyAuthentication
        | PasswordAuthentication
        | KbdInteractiveAuthentication
        | PrintMotd
        | PrintLastLog
        | IgnoreUserKnownHosts
        | X11Forwarding
        | X11UseLocalhost
        | StrictModes
        | PermitEmptyPasswords
        | TcpKeepAlive
        | AllowAgentForwarding
        | UseDns
        | PermitTty
        | PermitUserRc
        | StreamLocalBindUnlink
        | DisableForwarding
        | ExposeAuthInfo
        | RefuseConnection => flag(ctx, args),
        PermitRootLogin => multistate(ctx, args, PERMIT_ROOT_LOGIN),
        IgnoreRhosts => multistate(ctx, args, IGNORE_RHOSTS),
        AddressFamily => multistate(ctx, args, ADDRESS_FAMILY),
        Compression => multistate(ctx, args, COMPRESSION),
        GatewayPorts => multistate(ctx, args, GATEWAY_PORTS),
        AllowTcpForwarding | AllowStreamLocalForwarding => multistate(ctx, args, FORWARDING),
        LoginGraceTime | ClientAliveInterval => time(ctx, args),
        X11DisplayOffset | MaxAuthTries | MaxSessions | ClientAliveCountMax | RequiredRsaSize => {
            int(ctx, args)
        }
        UnusedConnectionTimeout => {
            if args.peek().is_some_and(|a| a.eq_ignore_ascii_case("none")) {
                args.next();
                return Ok(Value::Int(0));
            }
            time(ctx, args)
        }
        PidFile | ModuliFile | XAuthLocation | Banner | TrustedUserCaKeys => filename(ctx, args),
        Port => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing port number."))?;
            match parse_port(&arg) {
                Some(p) if p > 0 => Ok(Value::Ports(vec![p])),
                _ => Err(ctx.fatal("Badly formatted port number.")),
            }
        }
        HostKey | HostCertificate => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing file name."))?;
            (ctx.absolute)(&arg).map(|p| Value::List(vec![p])).map_err(|why| ctx.fatal(why))
        }
        HostKeyAgent => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing socket name."))?;
            if arg == "SSH_AUTH_SOCK" {
                return Ok(Value::Text(arg));
            }
            (ctx.absolute)(&arg).map(Value::Text).map_err(|why| ctx.fatal(why))
        }
        SecurityKeyProvider => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            if arg.eq_ignore_ascii_case("internal") {
                return Ok(Value::Text(arg));
            }
            (ctx.absolute)(&arg).map(Value::Text).map_err(|why| ctx.fatal(why))
        }
        SshdSessionPath | SshdAuthPath | PamServiceName => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing argument."))?;
            Ok(Value::Text(arg))
        }
        ListenAddress => parse_listen_address(ctx, args),
        PubkeyAcceptedAlgorithms => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("Missing argument."))?;
            pubkey_algorithm_list(ctx, &arg, || format!("Bad key types '{arg}'."))
        }
        HostbasedAcceptedAlgorithms | HostKeyAlgorithms | CaSignatureAlgorithms => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("Missing argument."))?;
            let category = algorithm_category(kw).unwrap_or(Category::HostKey);
            algorithm_list(ctx, category, &arg, || format!("Bad key types '{arg}'."))
        }
        Ciphers | Macs | KexAlgorithms => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            let category = algorithm_category(kw).unwrap_or(Category::Cipher);
            algorithm_list(ctx, category, &arg, || match kw {
                Ciphers => format!("Bad SSH2 cipher spec '{arg}'."),
                Macs => format!("Bad SSH2 mac spec '{arg}'."),
                _ => format!("Bad SSH2 KexAlgorithms '{arg}'."),
            })
        }
        PubkeyAuthOptions => {
            let mut options = Vec::new();
            while let Some(arg) = args.next() {
                if arg.eq_ignore_ascii_case("none") {
                    continue;
                }
                if arg.eq_ignore_ascii_case("touch-required") {
                    options.push("touch-required".to_owned());
                } else if arg.eq_ignore_ascii_case("verify-required") {
                    options.push("verify-required".to_owned());
                } else {
                    return Err(ctx.error(format!("unsupported {keyword} option {arg}")));
                }
            }
            Ok(Value::List(options))
        }
        PermitUserEnvironment => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            Ok(match arg.as_str() {
                "yes" => Value::UserEnvironment(true, None),
                "no" => Value::UserEnvironment(false, None),
                _ => Value::UserEnvironment(true, Some(arg)),
            })
        }
        RekeyLimit => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            let bytes = if arg == "default" {
                0
            } else {
                let v = parse_scaled(&arg).map_err(|why: ScaledError| {
                    ctx.fatal(format!("Bad {keyword} number '{arg}': {why}"))
                })?;
                if v != 0 && v < 16 {
                    return Err(ctx.fatal(format!("{keyword} too small")));
                }
                v
            };
            let interval = match args.peek() {
                None => None,
                Some("none") => {
                    args.next();
                    None
                }
                Some(_) => match time(ctx, args)? {
                    Value::Int(t) => u32::try_from(t).ok(),
                    _ => None,
                },
            };
            Ok(Value::Rekey { bytes, interval })
        }
        SyslogFacility => {
            let arg = args.next().unwrap_or_default();
            Facility::parse(&arg).map(|f| Value::Text(f.name())).ok_or_else(|| {
                ctx.fatal(format!("unsupported log facility '{}'", none_if_empty(&arg)))
            })
        }
        LogLevel => {
            let arg = args.next().unwrap_or_default();
            LogLevel::parse(&arg).map(|l| Value::Text(l.name().to_owned())).ok_or_else(|| {
                ctx.fatal(format!("unsupported log level '{}'", none_if_empty(&arg)))
            })
        }
        LogVerbose | ChannelTimeout => {
            let mut items = Vec::new();
            let total = args.remaining();
            while let Some(arg) = args.next() {
                if arg.is_empty() {
                    return Err(ctx.error(format!("keyword {keyword} empty argument")));
                }
                if arg.eq_ignore_ascii_case("none") {
                    if total > 1 {
                        return Err(ctx.error(format!(
                            "keyword {keyword} \"none\" argument must appear alone."
                        )));
                    }
                } else if kw == ChannelTimeout && !valid_channel_timeout(&arg) {
                    return Err(ctx.fatal(format!("invalid channel timeout {arg}")));
                }
                items.push(arg);
            }
            Ok(Value::List(items))
        }
        AllowUsers | DenyUsers => {
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.is_empty() || !valid_user_pattern(&arg) {
                    return Err(ctx.fatal(format!("invalid {keyword} pattern: \"{arg}\"")));
                }
                items.push(arg);
            }
            Ok(Value::List(items))
        }
        AllowGroups | DenyGroups => {
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.is_empty() {
                    return Err(ctx.fatal(format!("empty {keyword} pattern")));
                }
                items.push(arg);
            }
            Ok(Value::List(items))
        }
        AcceptEnv => {
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.is_empty() || arg.contains('=') {
                    return Err(ctx.fatal("Invalid environment name."));
                }
                items.push(arg);
            }
            Ok(Value::List(items))
        }
        SetEnv => {
            let mut items: Vec<String> = Vec::new();
            while let Some(arg) = args.next() {
                let Some((name, _)) = arg.split_once('=').filter(|_| !arg.is_empty()) else {
                    return Err(ctx.fatal("Invalid environment."));
                };
                // The first value of a name wins within the line, too.
                if !items.iter().any(|i| i.split_once('=').is_some_and(|(n, _)| n == name)) {
                    items.push(arg);
                }
            }
            Ok(Value::List(items))
        }
        Subsystem => {
            let (Some(name), Some(command)) = (args.next_nonempty(), args.next_nonempty()) else {
                return Err(ctx.fatal(format!("{keyword} missing argument.")));
            };
            let mut words = vec![command.clone()];
            words.extend(std::iter::from_fn(|| args.next()));
            let spec = SubsystemSpec { name, command, args: lex::assemble_args(&words) };
            Ok(Value::Subsystems(vec![spec]))
        }
        MaxStartups => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            let bad = || ctx.fatal(format!("Invalid {keyword} spec."));
            let parts = scan_ints(&arg, 3);
            let (begin, rate, max) = match parts.as_slice() {
                [b, r, m] => {
                    if b > m || *r > 100 || *r < 1 {
                        return Err(bad());
                    }
                    (*b, *r, *m)
                }
                [b] => (*b, 30, *b),
                _ => return Err(bad()),
            };
            if begin <= 0 || max <= 0 {
                return Err(bad());
            }
            let to_u32 = |v: i64| u32::try_from(v).map_err(|_| bad());
            Ok(Value::MaxStartups(to_u32(begin)?, to_u32(rate)?, to_u32(max)?))
        }
        PerSourceNetBlockSize => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            let bad = || ctx.fatal(format!("Invalid {keyword} spec."));
            let parts = scan_ints(&arg, 2);
            let (v4, v6) = match parts.as_slice() {
                [a, b] if (0..=32).contains(a) && (0..=128).contains(b) => (*a, Some(*b)),
                [a] if (0..=32).contains(a) => (*a, None),
                _ => return Err(bad()),
            };
            let v6 = v6.and_then(|v| u32::try_from(v).ok());
            Ok(Value::NetBlock(u32::try_from(v4).map_err(|_| bad())?, v6))
        }
        PerSourceMaxStartups => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            if arg == "none" {
                return Ok(Value::Int(-1));
            }
            parse_int(&arg)
                .map(|v| Value::Int(i64::from(v)))
                .map_err(|why| ctx.fatal(format!("{keyword} integer value {why}.")))
        }
        PerSourcePenalties => parse_penalties(ctx, args),
        PerSourcePenaltyExemptList => {
            let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing argument."))?;
            if match_address_list(None, &arg).is_err() {
                return Err(ctx.fatal(format!("keyword {keyword} invalid address argument.")));
            }
            Ok(Value::Text(arg))
        }
        AuthorizedKeysFile => {
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.is_empty() {
                    return Err(ctx.error(format!("keyword {keyword} empty argument")));
                }
                items.push((ctx.tilde)(&arg).map_err(|why| ctx.fatal(why))?);
            }
            Ok(Value::List(items))
        }
        RevokedKeys => {
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.is_empty() {
                    return Err(ctx.error(format!("keyword {keyword} empty argument")));
                }
                items.push((ctx.absolute)(&arg).map_err(|why| ctx.fatal(why))?);
            }
            if items.is_empty() {
                return Err(ctx.fatal("missing file name."));
            }
            Ok(Value::List(items))
        }
        AuthorizedPrincipalsFile => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            (ctx.tilde)(&arg).map(Value::Text).map_err(|why| ctx.fatal(why))
        }
        PermitTunnel => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            TUNNEL
                .iter()
                .find(|(name, _)| *name == arg)
                .map(|(_, v)| Value::Choice(*v))
                .ok_or_else(|| ctx.fatal(format!("bad {keyword} argument {arg}")))
        }
        PermitOpen | PermitListen => parse_permit_open(kw, ctx, args),
        ForceCommand => verbatim(ctx, args).map(Value::Text),
        ChrootDirectory | AuthorizedKeysCommandUser | AuthorizedPrincipalsCommandUser => {
            let arg = args.next_nonempty().ok_or_else(|| {
                if kw == ChrootDirectory {
                    ctx.fatal(format!("{keyword} missing argument."))
                } else {
                    ctx.fatal(format!("missing {keyword} argument."))
                }
            })?;
            Ok(Value::Text(arg))
        }
        AuthorizedKeysCommand | AuthorizedPrincipalsCommand => {
            let text = ctx.rest.trim_start_matches([' ', '\t', '\r', '\n']);
            args.consume();
            if !text.starts_with('/') && !text.eq_ignore_ascii_case("none") {
                return Err(ctx.fatal(format!("{keyword} must be an absolute path")));
            }
            Ok(Value::Text(text.to_owned()))
        }
        IpQos => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            let bad = |a: &str| ctx.fatal(format!("Bad {keyword} value: {a}"));
            let interactive = parse_ipqos(&arg).ok_or_else(|| bad(&arg))?;
            let bulk = match args.next() {
                None => interactive,
                Some(a) => parse_ipqos(&a).ok_or_else(|| bad(&a))?,
            };
            Ok(Value::IpQos(interactive, bulk))
        }
        VersionAddendum => {
            let text = verbatim(ctx, args)?;
            if text.contains('\r') {
                return Err(ctx.fatal(format!("Invalid {keyword} argument")));
            }
            let text = match text.find('#') {
                Some(i) => text.get(..i).unwrap_or("").trim_end().to_owned(),
                None => text,
            };
            Ok(Value::Text(if text.eq_ignore_ascii_case("none") { String::new() } else { text }))
        }
        AuthenticationMethods => {
            let mut items: Vec<String> = Vec::new();
            let mut any = false;
            while let Some(arg) = args.next() {
                if arg == "any" {
                    if !items.is_empty() {
                        return Err(ctx.fatal(format!("\"any\" must appear alone in {keyword}")));
                    }
                    any = true;
                } else if any {
                    return Err(ctx.fatal(format!("\"any\" must appear alone in {keyword}")));
                } else if !valid_auth_method_list(&arg) {
                    return Err(ctx.fatal(format!("invalid {keyword} method list.")));
                }
                items.push(arg);
            }
            if items.is_empty() {
                return Err(ctx.fatal(format!("no {keyword} specified")));
            }
            Ok(Value::List(items))
        }
        StreamLocalBindMask => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            parse_octal_mask(&arg)
                .map(|m| Value::Int(i64::from(m)))
                .ok_or_else(|| ctx.fatal(format!("Invalid {keyword}.")))
        }
        FingerprintHash => {
            let arg = args
                .next_nonempty()
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
            match arg.to_ascii_uppercase().as_str() {
                "MD5" => Ok(Value::Text("MD5".into())),
                "SHA256" => Ok(Value::Text("SHA256".into())),
                _ => Err(ctx.fatal(format!("Invalid {keyword} algorithm \"{arg}\"."))),
            }
        }
        RDomain => Err(ctx.fatal("setting RDomain not supported on this platform.")),
        Deprecated | Unsupported | Ignore => {
            args.consume();
            Ok(Value::Nothing)
        }
        Match | Include | RekeyInterval => Ok(Value::Nothing),
    }
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() {
        "<NONE>"
    } else {
        s
    }
}

/// `sscanf("%d:%d:%d")`: up to `n` colon-separated integers, stopping at the first that does
/// not parse (trailing text after the last is ignored, as `sscanf` does).
fn scan_ints(s: &str, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    let mut rest = s;
    while out.len() < n {
        let t = rest.trim_start();
        let (negative, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        let Ok(v) = body.get(..digits).unwrap_or("").parse::<i32>() else {
            break;
        };
        out.push(if negative { -i64::from(v) } else { i64::from(v) });
        match body.get(digits..).and_then(|r| r.strip_prefix(':')) {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

fn valid_channel_timeout(s: &str) -> bool {
    match s.split_once('=') {
        Some((kind, interval)) => !kind.is_empty() && parse_time(interval).is_some(),
        None => false,
    }
}

fn parse_listen_address(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg = args.next_nonempty().ok_or_else(|| ctx.fatal("missing address"))?;
    let bare_ipv6 = !arg.contains('[') && arg.matches(':').count() >= 2;
    let (host, port) = if bare_ipv6 {
        (arg.clone(), None)
    } else {
        let (host, port) =
            split_host_port(&arg).ok_or_else(|| ctx.fatal("bad address:port usage"))?;
        let port = match port {
            None => None,
            Some(p) => match parse_port(p) {
                Some(p) if p > 0 => Some(p),
                _ => return Err(ctx.fatal("bad port number")),
            },
        };
        (clean_host(host).to_owned(), port)
    };
    let rdomain = match args.next() {
        None => None,
        Some(word) => {
            if word != "rdomain" || args.next().is_none() {
                return Err(ctx.fatal("bad ListenAddress syntax"));
            }
            return Err(ctx.fatal("bad routing domain"));
        }
    };
    Ok(Value::Listen(vec![ListenSpec { host, port, rdomain }]))
}

fn parse_permit_open(kw: Kw, ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let keyword = ctx.keyword;
    let first =
        args.next_nonempty().ok_or_else(|| ctx.fatal(format!("{keyword} missing argument.")))?;
    if first == "any" || first == "none" {
        // OpenSSH stops reading here; further words are "extra arguments".
        return Ok(Value::List(vec![first]));
    }
    let mut items = Vec::new();
    let mut next = Some(first);
    while let Some(arg) = next.take().filter(|a| !a.is_empty()) {
        let (entry, port) = if kw == PermitListen && !arg.contains(':') {
            (format!("*:{arg}"), Some(arg.clone()))
        } else {
            let (host, port) = split_host_port(&arg)
                .ok_or_else(|| ctx.fatal(format!("{keyword} missing host")))?;
            let _ = host;
            (arg.clone(), port.map(str::to_owned))
        };
        let port_ok =
            port.as_deref().is_some_and(|p| p == "*" || parse_port(p).is_some_and(|p| p > 0));
        if !port_ok {
            return Err(ctx.fatal(format!("{keyword} bad port number")));
        }
        items.push(entry);
        next = args.next();
    }
    Ok(Value::List(items))
}

fn parse_penalties(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let keyword = ctx.keyword;
    let mut items = Vec::new();
    let total = args.remaining();
    while let Some(arg) = args.next() {
        if arg.eq_ignore_ascii_case("yes") || arg.eq_ignore_ascii_case("no") {
            if total > 1 {
                return Err(
                    ctx.fatal(format!("keyword {keyword} \"{arg}\" argument must appear alone."))
                );
            }
            items.push(arg.to_ascii_lowercase());
            continue;
        }
        const TIMES: &[&str] = &[
            "crash:",
            "authfail:",
            "invaliduser:",
            "noauth:",
            "grace-exceeded:",
            "refuseconnection:",
            "max:",
            "min:",
        ];
        const FLAGS: &[&str] = &[
            "overflow:deny-all",
            "overflow:permissive",
            "overflow6:deny-all",
            "overflow6:permissive",
        ];
        if let Some(value) = TIMES.iter().find_map(|p| arg.strip_prefix(p)) {
            if !valid_fractional_time(value) {
                return Err(ctx.fatal(format!("invalid {keyword} time value.")));
            }
        } else if let Some(value) =
            ["max-sources4:", "max-sources6:"].iter().find_map(|p| arg.strip_prefix(p))
        {
            if let Err(why) = parse_int(value) {
                return Err(ctx.fatal(format!("{keyword} value {why}.")));
            }
        } else if !FLAGS.contains(&arg.as_str()) {
            return Err(ctx.fatal(format!("unsupported {keyword} keyword {arg}")));
        }
        items.push(arg);
    }
    if items.is_empty() {
        return Err(ctx.fatal(format!("no {keyword} specified")));
    }
    Ok(Value::List(items))
}

/// `convtime_double`: like a time, but the numbers may have a fraction.
fn valid_fractional_time(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        if digits == 0 || rest.get(..digits).is_some_and(|d| d.parse::<f64>().is_err()) {
            return false;
        }
        rest = rest.get(digits..).unwrap_or("");
        if let Some(c) = rest.chars().next() {
            if !"sSmMhHdDwW".contains(c) {
                return false;
            }
            rest = rest.get(1..).unwrap_or("");
        }
    }
    true
}

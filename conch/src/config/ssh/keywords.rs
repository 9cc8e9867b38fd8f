//! The `ssh_config` keywords (OpenSSH 9.2's `readconf.c` table plus later releases'), and
//! the parsing of each one's value.

use super::forward::{parse_forward, Forward, ForwardKind};
use crate::config::shared::{choice, valid_algorithm_list, LineError};
use crate::config::values::{
    parse_int, parse_ipqos, parse_octal_mask, parse_port, parse_scaled, parse_time,
    split_host_port, valid_env_name, Facility, LogLevel,
};
use crate::config::Support;
use crate::crypto::algorithms::Category;

macro_rules! keywords {
    ($($kw:ident),* $(,)?) => {
        /// A client keyword (aliases resolved).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(super) enum Kw { $($kw),* }
    };
}

keywords! {
    Host, Match, Include, ForwardAgent, ForwardX11, ForwardX11Trusted, ForwardX11Timeout,
    GatewayPorts, ExitOnForwardFailure, PasswordAuthentication, XAuthLocation, IdentityFile,
    HostName, Port, RemoteForward, LocalForward, DynamicForward, PermitRemoteOpen,
    CertificateFile, AddKeysToAgent, IdentityAgent, User, EscapeChar, ProxyCommand,
    GlobalKnownHostsFile, UserKnownHostsFile, ConnectionAttempts, BatchMode, CheckHostIp,
    StrictHostKeyChecking, Compression, TcpKeepAlive, NumberOfPasswordPrompts, SyslogFacility,
    LogLevel, LogVerbose, Ciphers, Macs, PubkeyAuthentication, KbdInteractiveAuthentication,
    KbdInteractiveDevices, HostKeyAlias, PreferredAuthentications, HostbasedAuthentication,
    HostKeyAlgorithms, BindAddress, BindInterface, ClearAllForwardings,
    NoHostAuthenticationForLocalhost, EnableSshKeysign, RekeyLimit, VerifyHostKeyDns,
    ConnectTimeout, AddressFamily, ServerAliveInterval, ServerAliveCountMax, IdentitiesOnly,
    SendEnv, SetEnv, ControlPath, ControlMaster, ControlPersist, HashKnownHosts, Tunnel,
    TunnelDevice, LocalCommand, PermitLocalCommand, RemoteCommand, VisualHostKey,
    KexAlgorithms, IpQos, RequestTty, SessionType, StdinNull, ForkAfterAuthentication,
    IgnoreUnknown, ProxyUseFdpass, CanonicalDomains, CanonicalizeHostname,
    CanonicalizeMaxDots, CanonicalizeFallbackLocal, CanonicalizePermittedCnames,
    StreamLocalBindMask, StreamLocalBindUnlink, RevokedHostKeys, FingerprintHash,
    UpdateHostKeys, HostbasedAcceptedAlgorithms, PubkeyAcceptedAlgorithms,
    CaSignatureAlgorithms, ProxyJump, SecurityKeyProvider, KnownHostsCommand, RequiredRsaSize,
    EnableEscapeCommandline, ObscureKeystrokeTiming, ChannelTimeout, RefuseConnection, Tag,
    VersionAddendum, WarnWeakCrypto, Pkcs11Provider, RekeyInterval,
    Deprecated, Unsupported, Ignore,
}

use Kw::*;

/// Every name `ssh_config` accepts (lower case); the first name of a keyword is the one
/// `-G` prints.
pub(super) const KEYWORDS: &[(&str, Kw)] = &[
    ("protocol", Ignore),
    ("cipher", Deprecated),
    ("fallbacktorsh", Deprecated),
    ("globalknownhostsfile2", Deprecated),
    ("rhostsauthentication", Deprecated),
    ("userknownhostsfile2", Deprecated),
    ("useroaming", Deprecated),
    ("usersh", Deprecated),
    ("useprivilegedport", Deprecated),
    ("afstokenpassing", Unsupported),
    ("kerberosauthentication", Unsupported),
    ("kerberostgtpassing", Unsupported),
    ("rsaauthentication", Unsupported),
    ("rhostsrsaauthentication", Unsupported),
    ("compressionlevel", Unsupported),
    ("gssapiauthentication", Unsupported),
    ("gssapidelegatecredentials", Unsupported),
    ("gssapikeyexchange", Unsupported),
    ("gssapiclientidentity", Unsupported),
    ("gssapiserveridentity", Unsupported),
    ("gssapirenewalforcesrekey", Unsupported),
    ("gssapitrustdns", Unsupported),
    ("gssapikexalgorithms", Unsupported),
    ("smartcarddevice", Pkcs11Provider),
    ("pkcs11provider", Pkcs11Provider),
    ("forwardagent", ForwardAgent),
    ("forwardx11", ForwardX11),
    ("forwardx11trusted", ForwardX11Trusted),
    ("forwardx11timeout", ForwardX11Timeout),
    ("exitonforwardfailure", ExitOnForwardFailure),
    ("xauthlocation", XAuthLocation),
    ("gatewayports", GatewayPorts),
    ("passwordauthentication", PasswordAuthentication),
    ("kbdinteractiveauthentication", KbdInteractiveAuthentication),
    ("kbdinteractivedevices", KbdInteractiveDevices),
    ("challengeresponseauthentication", KbdInteractiveAuthentication),
    ("skeyauthentication", KbdInteractiveAuthentication),
    ("tisauthentication", KbdInteractiveAuthentication),
    ("pubkeyauthentication", PubkeyAuthentication),
    ("dsaauthentication", PubkeyAuthentication),
    ("hostbasedauthentication", HostbasedAuthentication),
    ("identityfile", IdentityFile),
    ("identityfile2", IdentityFile),
    ("identitiesonly", IdentitiesOnly),
    ("certificatefile", CertificateFile),
    ("addkeystoagent", AddKeysToAgent),
    ("identityagent", IdentityAgent),
    ("hostname", HostName),
    ("hostkeyalias", HostKeyAlias),
    ("proxycommand", ProxyCommand),
    ("port", Port),
    ("ciphers", Ciphers),
    ("macs", Macs),
    ("remoteforward", RemoteForward),
    ("localforward", LocalForward),
    ("permitremoteopen", PermitRemoteOpen),
    ("user", User),
    ("host", Host),
    ("match", Match),
    ("escapechar", EscapeChar),
    ("globalknownhostsfile", GlobalKnownHostsFile),
    ("userknownhostsfile", UserKnownHostsFile),
    ("connectionattempts", ConnectionAttempts),
    ("batchmode", BatchMode),
    ("checkhostip", CheckHostIp),
    ("stricthostkeychecking", StrictHostKeyChecking),
    ("compression", Compression),
    ("tcpkeepalive", TcpKeepAlive),
    ("keepalive", TcpKeepAlive),
    ("numberofpasswordprompts", NumberOfPasswordPrompts),
    ("syslogfacility", SyslogFacility),
    ("loglevel", LogLevel),
    ("logverbose", LogVerbose),
    ("dynamicforward", DynamicForward),
    ("preferredauthentications", PreferredAuthentications),
    ("hostkeyalgorithms", HostKeyAlgorithms),
    ("casignaturealgorithms", CaSignatureAlgorithms),
    ("bindaddress", BindAddress),
    ("bindinterface", BindInterface),
    ("clearallforwardings", ClearAllForwardings),
    ("enablesshkeysign", EnableSshKeysign),
    ("verifyhostkeydns", VerifyHostKeyDns),
    ("nohostauthenticationforlocalhost", NoHostAuthenticationForLocalhost),
    ("rekeylimit", RekeyLimit),
    ("connecttimeout", ConnectTimeout),
    ("addressfamily", AddressFamily),
    ("serveraliveinterval", ServerAliveInterval),
    ("serveralivecountmax", ServerAliveCountMax),
    ("sendenv", SendEnv),
    ("setenv", SetEnv),
    ("controlpath", ControlPath),
    ("controlmaster", ControlMaster),
    ("controlpersist", ControlPersist),
    ("hashknownhosts", HashKnownHosts),
    ("include", Include),
    ("tunnel", Tunnel),
    ("tunneldevice", TunnelDevice),
    ("localcommand", LocalCommand),
    ("permitlocalcommand", PermitLocalCommand),
    ("remotecommand", RemoteCommand),
    ("visualhostkey", VisualHostKey),
    ("kexalgorithms", KexAlgorithms),
    ("ipqos", IpQos),
    ("requesttty", RequestTty),
    ("sessiontype", SessionType),
    ("stdinnull", StdinNull),
    ("forkafterauthentication", ForkAfterAuthentication),
    ("proxyusefdpass", ProxyUseFdpass),
    ("canonicaldomains", CanonicalDomains),
    ("canonicalizefallbacklocal", CanonicalizeFallbackLocal),
    ("canonicalizehostname", CanonicalizeHostname),
    ("canonicalizemaxdots", CanonicalizeMaxDots),
    ("canonicalizepermittedcnames", CanonicalizePermittedCnames),
    ("streamlocalbindmask", StreamLocalBindMask),
    ("streamlocalbindunlink", StreamLocalBindUnlink),
    ("revokedhostkeys", RevokedHostKeys),
    ("fingerprinthash", FingerprintHash),
    ("updatehostkeys", UpdateHostKeys),
    ("hostbasedacceptedalgorithms", HostbasedAcceptedAlgorithms),
    ("hostbasedkeytypes", HostbasedAcceptedAlgorithms),
    ("pubkeyacceptedalgorithms", PubkeyAcceptedAlgorithms),
    ("pubkeyacceptedkeytypes", PubkeyAcceptedAlgorithms),
    ("ignoreunknown", IgnoreUnknown),
    ("proxyjump", ProxyJump),
    ("securitykeyprovider", SecurityKeyProvider),
    ("knownhostscommand", KnownHostsCommand),
    ("requiredrsasize", RequiredRsaSize),
    ("enableescapecommandline", EnableEscapeCommandline),
    ("obscurekeystroketiming", ObscureKeystrokeTiming),
    ("channeltimeout", ChannelTimeout),
    ("refuseconnection", RefuseConnection),
    ("tag", Tag),
    ("versionaddendum", VersionAddendum),
    ("warnweakcrypto", WarnWeakCrypto),
];

/// Looks a (lower-cased) keyword up.
pub(super) fn lookup(keyword: &str) -> Option<Kw> {
    KEYWORDS.iter().find(|(name, _)| *name == keyword).map(|(_, kw)| *kw)
}

impl Kw {
    /// The name `-G` prints.
    pub(super) fn name(self) -> &'static str {
        match self {
            RekeyInterval => "rekeylimit",
            _ => KEYWORDS.iter().find(|(_, k)| *k == self).map_or("UNKNOWN", |(n, _)| n),
        }
    }

    /// How we support it.
    pub(super) fn support(self) -> Support {
        match self {
            Deprecated => Support::Deprecated,
            Unsupported => Support::Unsupported,
            Ignore => Support::Ignored,
            ForwardX11
            | ForwardX11Trusted
            | ForwardX11Timeout
            | XAuthLocation
            | PermitRemoteOpen
            | CertificateFile
            | AddKeysToAgent
            | CheckHostIp
            | TcpKeepAlive
            | SyslogFacility
            | LogVerbose
            | KbdInteractiveDevices
            | HostbasedAuthentication
            | HostbasedAcceptedAlgorithms
            | BindInterface
            | EnableSshKeysign
            | VerifyHostKeyDns
            | ControlPath
            | ControlMaster
            | ControlPersist
            | Tunnel
            | TunnelDevice
            | LocalCommand
            | PermitLocalCommand
            | VisualHostKey
            | IpQos
            | SessionType
            | IgnoreUnknown
            | ProxyUseFdpass
            | CanonicalDomains
            | CanonicalizeHostname
            | CanonicalizeMaxDots
            | CanonicalizeFallbackLocal
            | CanonicalizePermittedCnames
            | StreamLocalBindMask
            | StreamLocalBindUnlink
            | RevokedHostKeys
            | FingerprintHash
            | UpdateHostKeys
            | CaSignatureAlgorithms
            | SecurityKeyProvider
            | KnownHostsCommand
            | EnableEscapeCommandline
            | ObscureKeystrokeTiming
            | ChannelTimeout
            | RefuseConnection
            | Tag
            | VersionAddendum
            | WarnWeakCrypto
            | Pkcs11Provider => Support::NotImplemented,
            _ => Support::Implemented,
        }
    }
}

/// `yes`/`no` (and `true`/`false`).
pub(super) const FLAG: &[(&str, u8)] = &[("true", 1), ("false", 0), ("yes", 1), ("no", 0)];
/// `VerifyHostKeyDNS`, `UpdateHostKeys`.
pub(super) const YES_NO_ASK: &[(&str, u8)] =
    &[("true", 1), ("false", 0), ("yes", 1), ("no", 0), ("ask", 2)];
/// `StrictHostKeyChecking`: 2 yes, 0 off, 3 ask, 1 accept-new.
pub(super) const STRICT: &[(&str, u8)] =
    &[("true", 2), ("false", 0), ("yes", 2), ("no", 0), ("ask", 3), ("off", 0), ("accept-new", 1)];
/// `AddKeysToAgent`.
pub(super) const YES_NO_ASK_CONFIRM: &[(&str, u8)] =
    &[("true", 1), ("false", 0), ("yes", 1), ("no", 0), ("ask", 2), ("confirm", 3)];
/// `AddressFamily`.
pub(super) const ADDRESS_FAMILY: &[(&str, u8)] = &[("inet", 4), ("inet6", 6), ("any", 0)];
/// `ControlMaster`.
pub(super) const CONTROL_MASTER: &[(&str, u8)] =
    &[("true", 1), ("yes", 1), ("false", 0), ("no", 0), ("auto", 2), ("ask", 3), ("autoask", 4)];
/// `Tunnel`.
pub(super) const TUNNEL: &[(&str, u8)] =
    &[("ethernet", 2), ("point-to-point", 1), ("true", 3), ("yes", 3), ("false", 0), ("no", 0)];
/// `RequestTTY`: 0 auto, 1 no, 2 yes, 3 force.
pub(super) const REQUEST_TTY: &[(&str, u8)] =
    &[("true", 2), ("yes", 2), ("false", 1), ("no", 1), ("force", 3), ("auto", 0)];
/// `SessionType`.
pub(super) const SESSION_TYPE: &[(&str, u8)] = &[("none", 0), ("subsystem", 1), ("default", 2)];
/// `CanonicalizeHostname`.
pub(super) const CANONICALIZE: &[(&str, u8)] =
    &[("true", 1), ("false", 0), ("yes", 1), ("no", 0), ("always", 2)];
/// `PubkeyAuthentication`: 3 all, 0 no, 1 unbound, 2 host-bound.
pub(super) const PUBKEY: &[(&str, u8)] =
    &[("true", 3), ("false", 0), ("yes", 3), ("no", 0), ("unbound", 1), ("host-bound", 2)];
/// `Compression`.
pub(super) const COMPRESSION: &[(&str, u8)] = &[("yes", 1), ("no", 0)];

/// The name `-G` prints for a multistate value (the first in the table).
pub(super) fn choice_name(table: &[(&'static str, u8)], value: u8) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map_or("UNKNOWN", |(n, _)| n)
}

/// A `ProxyJump` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Jump {
    pub(super) user: Option<String>,
    pub(super) host: String,
    pub(super) port: Option<u16>,
    /// Earlier hops, as written.
    pub(super) extra: Option<String>,
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Value {
    Flag(bool),
    Int(i64),
    Choice(u8),
    Text(String),
    List(Vec<String>),
    Forward(Forward),
    Rekey { bytes: i64, interval: Option<u32> },
    AddKeys(u8, u32),
    Persist(bool, u32),
    TunnelDevice(Option<u32>, Option<u32>),
    IpQos(u16, u16),
    Escape(Option<u8>),
    Jump(Option<Jump>),
    Cnames(Vec<(String, String)>),
    Nothing,
}

/// What a value parser needs to know about the line.
pub(super) struct LineCtx<'a> {
    pub(super) file: &'a str,
    pub(super) line: usize,
    pub(super) keyword: &'a str,
    pub(super) rest: &'a str,
}

impl LineCtx<'_> {
    pub(super) fn error(&self, text: impl std::fmt::Display) -> LineError {
        LineError { message: format!("{} line {}: {text}", self.file, self.line), fatal: false }
    }

    pub(super) fn fatal(&self, text: impl std::fmt::Display) -> LineError {
        LineError { message: format!("{} line {}: {text}", self.file, self.line), fatal: true }
    }
}

fn multistate(
    ctx: &LineCtx<'_>,
    args: &mut Args,
    table: &[(&str, u8)],
) -> Result<Value, LineError> {
    let arg = args.next();
    let Some(arg) = arg.filter(|a| !a.is_empty()) else {
        return Err(ctx.error("missing argument."));
    };
    choice(table, &arg)
        .map(Value::Choice)
        .ok_or_else(|| ctx.error(format!("unsupported option \"{arg}\".")))
}

fn flag(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    match multistate(ctx, args, FLAG)? {
        Value::Choice(v) => Ok(Value::Flag(v == 1)),
        other => Ok(other),
    }
}

fn time(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg =
        args.next().filter(|a| !a.is_empty()).ok_or_else(|| ctx.error("missing time value."))?;
    if arg == "none" {
        return Ok(Value::Int(-1));
    }
    parse_time(&arg)
        .map(|t| Value::Int(i64::from(t)))
        .ok_or_else(|| ctx.error("invalid time value."))
}

fn int(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg = args.next().unwrap_or_default();
    parse_int(&arg)
        .map(|v| Value::Int(i64::from(v)))
        .map_err(|why| ctx.error(format!("integer value {why}.")))
}

fn string(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg =
        args.next().filter(|a| !a.is_empty()).ok_or_else(|| ctx.error("Missing argument."))?;
    Ok(Value::Text(arg))
}

fn command(ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    args.consume();
    let text = ctx.rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
    Ok(Value::Text(text.to_owned()))
}

fn path_list(ctx: &LineCtx<'_>, args: &mut Args, max: usize) -> Result<Value, LineError> {
    let keyword = ctx.keyword;
    let total = args.remaining();
    let mut items = Vec::new();
    while let Some(arg) = args.next() {
        if arg.is_empty() {
            return Err(ctx.error(format!("keyword {keyword} empty argument")));
        }
        if arg.eq_ignore_ascii_case("none") && total > 1 {
            return Err(
                ctx.error(format!("keyword {keyword} \"none\" argument must appear alone."))
            );
        }
        if items.len() >= max {
            return Err(ctx.error(format!("too many {keyword} entries.")));
        }
        items.push(arg);
    }
    Ok(Value::List(items))
}

/// Checks an agent socket value (`IdentityAgent`, `ForwardAgent` with a path).
fn agent_path(ctx: &LineCtx<'_>, arg: &str) -> Result<(), LineError> {
    let never = |_: &str| Some(String::new());
    if crate::config::expand::expand(arg, &[], Some(&never)).is_err() {
        return Err(ctx.error(format!("Invalid environment expansion {arg}.")));
    }
    if let Some(name) = arg.strip_prefix('$') {
        if !name.starts_with('{') && !valid_env_name(name) {
            return Err(ctx.error(format!("Invalid environment name {arg}.")));
        }
    }
    Ok(())
}

fn algorithms(kw: Kw, ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let arg =
        args.next().filter(|a| !a.is_empty()).ok_or_else(|| ctx.error("Missing argument."))?;
    let category = match kw {
        Ciphers => Category::Cipher,
        Macs => Category::Mac,
        KexAlgorithms => Category::Kex,
        _ => Category::HostKey,
    };
    let valid = if kw == PubkeyAcceptedAlgorithms {
        // Certificate names and wildcards, as OpenSSH takes them.
        arg.starts_with('-') || crate::crypto::algorithms::configure_pubkey(&arg).is_ok()
    } else {
        valid_algorithm_list(category, &arg)
    };
    if !valid {
        return Err(ctx.error(match kw {
            Ciphers => format!("Bad SSH2 cipher spec '{arg}'."),
            Macs => format!("Bad SSH2 MAC spec '{arg}'."),
            KexAlgorithms => format!("Bad SSH2 KexAlgorithms '{arg}'."),
            _ => format!("Bad key types '{arg}'."),
        }));
    }
    Ok(Value::Text(arg))
}

/// Parses the value of `kw` (not `Host`, `Match` or `Include`, which the reader handles).
pub(super) fn parse_value(kw: Kw, ctx: &LineCtx<'_>, args: &mut Args) -> Result<Value, LineError> {
    let keyword = ctx.keyword;
    match kw {
        ForwardX11
        | ForwardX11Trusted
        | GatewayPorts
        | ExitOnForwardFailure
        | PasswordAuthentication
        | KbdInteractiveAuthentication
        | HostbasedAuthentication
        | BatchMode
        | CheckHostIp
        | TcpKeepAlive
        | NoHostAuthenticationForLocalhost
        | EnableSshKeysign
        | IdentitiesOnly
        | HashKnownHosts
        | PermitLocalCommand
        | VisualHostKey
        | StdinNull
        | ForkAfterAuthentication
        | ProxyUseFdpass
        | CanonicalizeFallbackLocal
        | StreamLocalBindUnlink
        | ClearAllForwardings
        | EnableEscapeCommandline
        | RefuseConnection => flag(ctx, args),
        PubkeyAuthentication => multistate(ctx, args, PUBKEY),
        VerifyHostKeyDns | UpdateHostKeys => multistate(ctx, args, YES_NO_ASK),
        StrictHostKeyChecking => multistate(ctx, args, STRICT),
        Compression => multistate(ctx, args, COMPRESSION),
        AddressFamily => multistate(ctx, args, ADDRESS_FAMILY),
        ControlMaster => multistate(ctx, args, CONTROL_MASTER),
        Tunnel => multistate(ctx, args, TUNNEL),
        RequestTty => multistate(ctx, args, REQUEST_TTY),
        SessionType => multistate(ctx, args, SESSION_TYPE),
        CanonicalizeHostname => multistate(ctx, args, CANONICALIZE),
        ConnectTimeout | ForwardX11Timeout | ServerAliveInterval => time(ctx, args),
        NumberOfPasswordPrompts
        | ConnectionAttempts
        | ServerAliveCountMax
        | CanonicalizeMaxDots
        | RequiredRsaSize => int(ctx, args),
        KbdInteractiveDevices
        | XAuthLocation
        | User
        | HostName
        | HostKeyAlias
        | PreferredAuthentications
        | BindAddress
        | BindInterface
        | Pkcs11Provider
        | SecurityKeyProvider
        | ControlPath
        | RevokedHostKeys
        | IgnoreUnknown
        | Tag
        | VersionAddendum
        | WarnWeakCrypto
        | ObscureKeystrokeTiming => string(ctx, args),
        ProxyCommand | LocalCommand | RemoteCommand | KnownHostsCommand => command(ctx, args),
        IdentityFile | CertificateFile => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            Ok(Value::List(vec![arg]))
        }
        GlobalKnownHostsFile | UserKnownHostsFile => path_list(ctx, args, 32),
        LogVerbose | ChannelTimeout => path_list(ctx, args, usize::MAX),
        CanonicalDomains => path_list(ctx, args, 32),
        ForwardAgent => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("missing argument."))?;
            if let Some((_, v)) = FLAG.iter().find(|(n, _)| n.eq_ignore_ascii_case(&arg)) {
                return Ok(Value::Flag(*v == 1));
            }
            agent_path(ctx, &arg)?;
            Ok(Value::Text(arg))
        }
        IdentityAgent => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            agent_path(ctx, &arg)?;
            Ok(Value::Text(arg))
        }
        RekeyLimit => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            let bytes = if arg == "default" {
                0
            } else {
                let v = parse_scaled(&arg)
                    .map_err(|why| ctx.error(format!("Bad number '{arg}': {why}")))?;
                if v != 0 && v < 16 {
                    return Err(ctx.error("RekeyLimit too small"));
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
        Port => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            match parse_port(&arg) {
                Some(p) if p > 0 => Ok(Value::Int(i64::from(p))),
                _ => Err(ctx.error(format!("Bad port '{arg}'."))),
            }
        }
        Ciphers
        | Macs
        | KexAlgorithms
        | HostKeyAlgorithms
        | CaSignatureAlgorithms
        | HostbasedAcceptedAlgorithms
        | PubkeyAcceptedAlgorithms => algorithms(kw, ctx, args),
        LogLevel => {
            let arg = args.next().unwrap_or_default();
            LogLevel::parse(&arg).map(|l| Value::Text(l.name().to_owned())).ok_or_else(|| {
                ctx.error(format!(
                    "unsupported log level '{}'",
                    if arg.is_empty() { "<NONE>" } else { &arg }
                ))
            })
        }
        SyslogFacility => {
            let arg = args.next().unwrap_or_default();
            Facility::parse(&arg).map(|f| Value::Text(f.name())).ok_or_else(|| {
                ctx.error(format!(
                    "unsupported log facility '{}'",
                    if arg.is_empty() { "<NONE>" } else { &arg }
                ))
            })
        }
        LocalForward | RemoteForward | DynamicForward => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            let mut kind = match kw {
                LocalForward => ForwardKind::Local,
                RemoteForward => ForwardKind::Remote,
                _ => ForwardKind::Dynamic,
            };
            let spec = if kind == ForwardKind::Dynamic {
                arg
            } else {
                match args.next().filter(|a| !a.is_empty()) {
                    Some(target) => format!("{arg}:{target}"),
                    None if kind == ForwardKind::Remote => {
                        kind = ForwardKind::Dynamic;
                        arg
                    }
                    None => return Err(ctx.error("Missing target argument.")),
                }
            };
            let remote = kw == RemoteForward;
            let parsed = parse_forward(
                &spec,
                if remote && kind == ForwardKind::Dynamic { ForwardKind::Remote } else { kind },
            )
            .filter(|f| kind != ForwardKind::Dynamic || f.connect.is_none())
            .ok_or_else(|| ctx.error("Bad forwarding specification."))?;
            Ok(Value::Forward(parsed))
        }
        PermitRemoteOpen => {
            let total = args.remaining();
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.eq_ignore_ascii_case("none") || arg.eq_ignore_ascii_case("any") {
                    if total > 1 {
                        return Err(ctx.error(format!(
                            "keyword {keyword} \"{arg}\" argument must appear alone."
                        )));
                    }
                } else {
                    let (_, port) = split_host_port(&arg)
                        .ok_or_else(|| ctx.fatal("missing host in permitremoteopen"))?;
                    let ok = port.is_some_and(|p| p == "*" || parse_port(p).is_some_and(|p| p > 0));
                    if !ok {
                        return Err(ctx.fatal("bad port number in permitremoteopen"));
                    }
                }
                items.push(arg);
            }
            if items.is_empty() {
                return Err(ctx.fatal("missing permitremoteopen specification"));
            }
            Ok(Value::List(items))
        }
        EscapeChar => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            let bytes = arg.as_bytes();
            let value = match bytes {
                _ if arg == "none" => None,
                [c] => Some(*c),
                [b'^', c] if (64..128).contains(c) => Some(c & 31),
                _ => return Err(ctx.error("Bad escape character.")),
            };
            Ok(Value::Escape(value))
        }
        SendEnv => {
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.is_empty() || arg.contains('=') {
                    return Err(ctx.error("Invalid environment name."));
                }
                items.push(arg);
            }
            Ok(Value::List(items))
        }
        SetEnv => {
            let mut items: Vec<String> = Vec::new();
            while let Some(arg) = args.next() {
                let Some((name, _)) = arg.split_once('=') else {
                    return Err(ctx.error("Invalid SetEnv."));
                };
                if !items.iter().any(|i| i.split_once('=').is_some_and(|(n, _)| n == name)) {
                    items.push(arg);
                }
            }
            Ok(Value::List(items))
        }
        ControlPersist => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing ControlPersist argument."))?;
            match arg.as_str() {
                "no" | "false" => Ok(Value::Persist(false, 0)),
                "yes" | "true" => Ok(Value::Persist(true, 0)),
                _ => parse_time(&arg)
                    .map(|t| Value::Persist(true, t))
                    .ok_or_else(|| ctx.error("Bad ControlPersist argument.")),
            }
        }
        TunnelDevice => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            let tun = |s: &str| -> Result<Option<u32>, LineError> {
                if s == "any" {
                    return Ok(None);
                }
                parse_int(s).map(Some).map_err(|_| ctx.error("Bad tun device."))
            };
            let (local, remote) = match arg.split_once(':') {
                Some((l, r)) => (tun(l)?, tun(r)?),
                None => (tun(&arg)?, None),
            };
            Ok(Value::TunnelDevice(local, remote))
        }
        IpQos => {
            let arg = args.next().unwrap_or_default();
            let bad = |a: &str| ctx.error(format!("Bad IPQoS value: {a}"));
            let interactive = parse_ipqos(&arg).ok_or_else(|| bad(&arg))?;
            let bulk = match args.next() {
                None => interactive,
                Some(a) => parse_ipqos(&a).ok_or_else(|| bad(&a))?,
            };
            Ok(Value::IpQos(interactive, bulk))
        }
        CanonicalizePermittedCnames => {
            let total = args.remaining();
            let mut items = Vec::new();
            while let Some(arg) = args.next() {
                if arg.eq_ignore_ascii_case("none") {
                    if total > 1 {
                        return Err(ctx.error(format!(
                            "keyword {keyword} \"none\" argument must appear alone."
                        )));
                    }
                    items.push((arg, String::new()));
                } else if arg == "*" {
                    items.push((arg.clone(), arg));
                } else {
                    let lower = arg.to_ascii_lowercase();
                    match lower.split_once(':') {
                        Some((a, b)) if !b.is_empty() => items.push((a.to_owned(), b.to_owned())),
                        _ => return Err(ctx.error(format!("Invalid permitted CNAME \"{arg}\""))),
                    }
                }
            }
            Ok(Value::Cnames(items))
        }
        StreamLocalBindMask => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing StreamLocalBindMask argument."))?;
            parse_octal_mask(&arg)
                .map(|m| Value::Int(i64::from(m)))
                .ok_or_else(|| ctx.error("Bad mask."))
        }
        FingerprintHash => {
            let arg = args
                .next()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ctx.error("Missing argument."))?;
            match arg.to_ascii_uppercase().as_str() {
                "MD5" | "SHA256" => Ok(Value::Text(arg.to_ascii_uppercase())),
                _ => Err(ctx.error(format!("Invalid hash algorithm \"{arg}\"."))),
            }
        }
        AddKeysToAgent => {
            let arg = args.next().unwrap_or_default();
            let arg2 = args.next();
            let value = YES_NO_ASK_CONFIRM
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&arg))
                .map(|(_, v)| *v);
            match (value, arg2) {
                (Some(3), Some(t)) => match parse_time(&t) {
                    Some(t) => Ok(Value::AddKeys(3, t)),
                    None => Err(ctx.error("invalid time value.")),
                },
                (Some(v), None) => Ok(Value::AddKeys(v, 0)),
                (None, None) => match parse_time(&arg) {
                    Some(t) => Ok(Value::AddKeys(1, t)),
                    None => Err(ctx.error("unsupported option")),
                },
                _ => Err(ctx.error("unsupported option")),
            }
        }
        ProxyJump => {
            let text = ctx.rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
            args.consume();
            parse_jump(text)
                .map(Value::Jump)
                .ok_or_else(|| ctx.error(format!("Invalid ProxyJump \"{text}\"")))
        }
        Deprecated | Unsupported | Ignore => {
            args.consume();
            Ok(Value::Nothing)
        }
        Host | Match | Include | RekeyInterval => Ok(Value::Nothing),
    }
}

/// OpenSSH's `parse_jump`: `none`, or `[user@]host[:port]` hops separated by commas (or
/// `ssh://` URIs); the last hop is the one connected to directly.
fn parse_jump(text: &str) -> Option<Option<Jump>> {
    let text = match text.find('#') {
        Some(i) => text.get(..i)?,
        None => text,
    };
    let text = text.trim_end();
    if text.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    let (extra, last) = match text.rsplit_once(',') {
        Some((extra, last)) => (Some(extra.to_owned()), last),
        None => (None, text),
    };
    for hop in extra.iter().flat_map(|e| e.split(',')) {
        parse_hop(hop)?;
    }
    let (user, host, port) = parse_hop(last)?;
    Some(Some(Jump { user, host, port, extra: extra.filter(|e| !e.is_empty()) }))
}

type Hop = (Option<String>, String, Option<u16>);

fn parse_hop(hop: &str) -> Option<Hop> {
    if let Some(uri) = hop.strip_prefix("ssh://") {
        let (user, rest) = match uri.split_once('@') {
            Some((u, r)) => {
                let u = u.split_once(';').map_or(u, |(u, _)| u);
                if u.is_empty() {
                    return None;
                }
                (Some(u.to_owned()), r)
            }
            None => (None, uri),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest)?;
        let host = crate::config::values::clean_host(host);
        if host.is_empty() || rest.contains('/') {
            return None;
        }
        let port = match port {
            Some(p) => Some(parse_port(p).filter(|p| *p > 0)?),
            None => None,
        };
        return Some((user, host.to_owned(), port));
    }
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
        Some(_) => return None,
        None => (None, hop),
    };
    let (host, port) = split_host_port(rest)?;
    let host = crate::config::values::clean_host(host);
    if host.is_empty() {
        return None;
    }
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => Some(parse_port(p).filter(|p| *p > 0)?),
        None => None,
    };
    Some((user, host.to_owned(), port))
}

pub(super) use crate::config::shared::Args;

//! The effective `sshd_config`: typed values with OpenSSH's defaults, and `sshd -T` output.

use std::fmt::Write as _;

use super::keywords::{
    algorithm_category, choice_name, Kw, ListenSpec, Value, ADDRESS_FAMILY, COMPRESSION,
    FORWARDING, GATEWAY_PORTS, IGNORE_RHOSTS, PERMIT_ROOT_LOGIN, TUNNEL,
};
use super::Layer;
use crate::config::expand::{expand, ExpandError};
use crate::config::pattern::{match_pattern_list, match_user, ListMatch};
use crate::config::values::{ipqos_name, Facility, LogLevel};
use crate::config::ConfigError;
use crate::crypto::algorithms::{configure, Side};

/// `PermitRootLogin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermitRootLogin {
    /// `yes`.
    Yes,
    /// `prohibit-password` (also `without-password`): no password or keyboard-interactive.
    ProhibitPassword,
    /// `forced-commands-only`: public key with a forced command only.
    ForcedCommandsOnly,
    /// `no`.
    No,
}

/// `AddressFamily`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// `any`.
    Any,
    /// `inet` (IPv4 only).
    Inet,
    /// `inet6` (IPv6 only).
    Inet6,
}

/// `AllowTcpForwarding` and `AllowStreamLocalForwarding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forwarding {
    /// `yes` / `all`.
    Yes,
    /// `no`.
    No,
    /// `local`: only forwarding requested by the client (`-L`).
    Local,
    /// `remote`: only listening on the server (`-R`).
    Remote,
}

impl Forwarding {
    /// Whether local (`direct-tcpip`) forwarding is allowed.
    pub fn allows_local(self) -> bool {
        matches!(self, Self::Yes | Self::Local)
    }

    /// Whether remote (`tcpip-forward`) forwarding is allowed.
    pub fn allows_remote(self) -> bool {
        matches!(self, Self::Yes | Self::Remote)
    }
}

/// `GatewayPorts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GatewayPorts {
    /// `no`: remote forwards listen on loopback only.
    No,
    /// `yes`: on the wildcard address.
    Yes,
    /// `clientspecified`: where the client asks.
    ClientSpecified,
}

/// One address to listen on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenAddress {
    /// An address literal (`0.0.0.0` and `::` for the wildcard) or a host name to resolve.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// A `Subsystem`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subsystem {
    /// Its name (`sftp`).
    pub name: String,
    /// The program (`/usr/lib/openssh/sftp-server`, or `internal-sftp`).
    pub command: String,
    /// The whole command line, program first, quoted for a shell.
    pub args: String,
}

/// Why `AllowUsers`/`DenyUsers`/`AllowGroups`/`DenyGroups` refuse a user, in OpenSSH's words
/// (the text after "User alice from 10.0.0.1 ").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserAccess {
    /// Allowed.
    Allowed,
    /// Refused, with the reason OpenSSH logs.
    Refused(String),
}

/// The effective `sshd_config`, every keyword with its value or OpenSSH's default.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each field is the keyword of the same name
pub struct SshdConfig {
    pub ports: Vec<u16>,
    pub address_family: AddressFamily,
    /// The addresses to listen on, in order (wildcards expanded by `AddressFamily`).
    pub listen_addresses: Vec<ListenAddress>,
    pub use_pam: bool,
    pub pam_service_name: Option<String>,
    /// Seconds; 0 means no limit.
    pub login_grace_time: u32,
    pub x11_display_offset: u32,
    pub max_auth_tries: u32,
    pub max_sessions: u32,
    /// Seconds; 0 means off.
    pub client_alive_interval: u32,
    pub client_alive_count_max: u32,
    pub required_rsa_size: u32,
    pub stream_local_bind_mask: u32,
    /// Seconds; 0 means none.
    pub unused_connection_timeout: u32,
    pub permit_root_login: PermitRootLogin,
    pub ignore_rhosts: &'static str,
    pub ignore_user_known_hosts: bool,
    pub hostbased_authentication: bool,
    pub hostbased_uses_name_from_packet_only: bool,
    pub pubkey_authentication: bool,
    pub password_authentication: bool,
    pub kbd_interactive_authentication: bool,
    pub print_motd: bool,
    pub print_last_log: bool,
    pub x11_forwarding: bool,
    pub x11_use_localhost: bool,
    pub permit_tty: bool,
    pub permit_user_rc: bool,
    pub strict_modes: bool,
    pub tcp_keep_alive: bool,
    pub permit_empty_passwords: bool,
    pub compression: bool,
    pub gateway_ports: GatewayPorts,
    pub use_dns: bool,
    pub allow_tcp_forwarding: Forwarding,
    pub allow_agent_forwarding: bool,
    pub disable_forwarding: bool,
    pub allow_stream_local_forwarding: Forwarding,
    pub stream_local_bind_unlink: bool,
    pub fingerprint_hash: String,
    pub expose_auth_info: bool,
    pub refuse_connection: bool,
    pub pid_file: Option<String>,
    pub moduli_file: String,
    pub xauth_location: Option<String>,
    pub ciphers: Vec<&'static str>,
    pub macs: Vec<&'static str>,
    pub kex_algorithms: Vec<&'static str>,
    pub host_key_algorithms: Vec<&'static str>,
    pub pubkey_accepted_algorithms: Vec<&'static str>,
    pub hostbased_accepted_algorithms: Vec<&'static str>,
    pub ca_signature_algorithms: Vec<&'static str>,
    pub banner: Option<String>,
    pub force_command: Option<String>,
    pub chroot_directory: Option<String>,
    pub trusted_user_ca_keys: Option<String>,
    pub revoked_keys: Vec<String>,
    pub security_key_provider: Option<String>,
    pub authorized_principals_file: Option<String>,
    /// Empty for `none`.
    pub version_addendum: String,
    pub authorized_keys_command: Option<String>,
    pub authorized_keys_command_user: Option<String>,
    pub authorized_principals_command: Option<String>,
    pub authorized_principals_command_user: Option<String>,
    pub host_key_agent: Option<String>,
    pub log_level: LogLevel,
    pub syslog_facility: Facility,
    /// Templates with `%u %h %U %%`; relative ones are relative to the user's home.
    pub authorized_keys_files: Vec<String>,
    pub host_keys: Vec<String>,
    pub host_certificates: Vec<String>,
    pub allow_users: Vec<String>,
    pub deny_users: Vec<String>,
    pub allow_groups: Vec<String>,
    pub deny_groups: Vec<String>,
    pub accept_env: Vec<String>,
    /// `NAME=value` pairs.
    pub set_env: Vec<String>,
    /// Each entry is a comma-separated list of methods; empty means any.
    pub authentication_methods: Vec<String>,
    pub log_verbose: Vec<String>,
    pub channel_timeout: Vec<String>,
    pub subsystems: Vec<Subsystem>,
    /// `begin:rate:full`.
    pub max_startups: (u32, u32, u32),
    /// `None` for no limit.
    pub per_source_max_startups: Option<u32>,
    pub per_source_net_block_size: (u32, u32),
    pub per_source_penalties: Vec<String>,
    pub per_source_penalty_exempt_list: Option<String>,
    pub permit_tunnel: &'static str,
    pub ip_qos: (u16, u16),
    /// Bytes (0: the cipher's default) and seconds (0: none).
    pub rekey_limit: (u64, u32),
    /// `any`, `none`, or `host:port` entries.
    pub permit_open: Vec<String>,
    pub permit_listen: Vec<String>,
    pub permit_user_environment: bool,
    /// The pattern list of variables `PermitUserEnvironment` allows, if it is one.
    pub permit_user_environment_allowlist: Option<String>,
    pub pubkey_auth_options: Vec<String>,
    pub sshd_session_path: Option<String>,
    pub sshd_auth_path: Option<String>,
}

/// Default host key files, in OpenSSH's order.
const DEFAULT_HOST_KEYS: &[&str] =
    &["/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key"];

fn flag(layer: &Layer, kw: Kw, default: bool) -> bool {
    match layer.get(kw) {
        Some(Value::Flag(b)) => *b,
        _ => default,
    }
}

fn choice(layer: &Layer, kw: Kw, default: u8) -> u8 {
    match layer.get(kw) {
        Some(Value::Choice(c)) => *c,
        _ => default,
    }
}

fn int(layer: &Layer, kw: Kw, default: u32) -> u32 {
    match layer.get(kw) {
        Some(Value::Int(v)) => u32::try_from(*v).unwrap_or(default),
        _ => default,
    }
}

fn text(layer: &Layer, kw: Kw) -> Option<String> {
    match layer.get(kw) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

/// A string keyword, `None` when unset or `none`.
fn text_or_none(layer: &Layer, kw: Kw) -> Option<String> {
    text(layer, kw).filter(|t| !t.eq_ignore_ascii_case("none"))
}

fn list(layer: &Layer, kw: Kw) -> Vec<String> {
    match layer.get(kw) {
        Some(Value::List(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn algorithms(layer: &Layer, kw: Kw) -> Result<Vec<&'static str>, ConfigError> {
    let Some(category) = algorithm_category(kw) else {
        return Ok(Vec::new());
    };
    match text(layer, kw) {
        None => Ok(category.defaults(Side::Server).to_vec()),
        Some(value) => configure(category, Side::Server, &value)
            .map_err(|e| ConfigError::new(format!("{}: {e}", kw.name()))),
    }
}

/// `PubkeyAcceptedAlgorithms`, with certificate names and wildcards.
fn pubkey_algorithms(layer: &Layer) -> Result<Vec<&'static str>, ConfigError> {
    use crate::crypto::algorithms::{configure_pubkey, DEFAULT_PUBKEY_ALGORITHMS};
    let kw = Kw::PubkeyAcceptedAlgorithms;
    match text(layer, kw) {
        None => Ok(DEFAULT_PUBKEY_ALGORITHMS.to_vec()),
        Some(value) => {
            configure_pubkey(&value).map_err(|e| ConfigError::new(format!("{}: {e}", kw.name())))
        }
    }
}

/// Builds the effective configuration from the settings obtained, filling defaults.
pub(super) fn resolve(
    layer: &Layer,
    command_line_ports: &[u16],
) -> Result<SshdConfig, ConfigError> {
    let ports = if !command_line_ports.is_empty() {
        command_line_ports.to_vec()
    } else {
        match layer.get(Kw::Port) {
            Some(Value::Ports(p)) if !p.is_empty() => p.clone(),
            _ => vec![22],
        }
    };
    let address_family = match choice(layer, Kw::AddressFamily, 0) {
        4 => AddressFamily::Inet,
        6 => AddressFamily::Inet6,
        _ => AddressFamily::Any,
    };
    let queued: Vec<ListenSpec> = match layer.get(Kw::ListenAddress) {
        Some(Value::Listen(l)) => l.clone(),
        _ => Vec::new(),
    };
    let listen_addresses = listen_addresses(&queued, &ports, address_family)?;
    let permit_root_login = match choice(layer, Kw::PermitRootLogin, 2) {
        3 => PermitRootLogin::Yes,
        1 => PermitRootLogin::ForcedCommandsOnly,
        0 => PermitRootLogin::No,
        _ => PermitRootLogin::ProhibitPassword,
    };
    let forwarding = |kw| match choice(layer, kw, 3) {
        0 => Forwarding::No,
        1 => Forwarding::Local,
        2 => Forwarding::Remote,
        _ => Forwarding::Yes,
    };
    let gateway_ports = match choice(layer, Kw::GatewayPorts, 0) {
        1 => GatewayPorts::Yes,
        2 => GatewayPorts::ClientSpecified,
        _ => GatewayPorts::No,
    };
    let (max_startups, rekey_bytes) = (
        match layer.get(Kw::MaxStartups) {
            Some(Value::MaxStartups(b, r, m)) => (*b, *r, *m),
            _ => (10, 30, 100),
        },
        match layer.get(Kw::RekeyLimit) {
            Some(Value::Int(v)) => u64::try_from(*v).unwrap_or(0),
            _ => 0,
        },
    );
    let per_source_net_block_size = match layer.get(Kw::PerSourceNetBlockSize) {
        Some(Value::NetBlock(v4, v6)) => (*v4, v6.unwrap_or(128)),
        _ => (32, 128),
    };
    let (permit_user_environment, permit_user_environment_allowlist) =
        match layer.get(Kw::PermitUserEnvironment) {
            Some(Value::UserEnvironment(on, list)) => (*on, list.clone()),
            _ => (false, None),
        };
    let mut authorized_keys_files = list(layer, Kw::AuthorizedKeysFile);
    if authorized_keys_files.is_empty() {
        authorized_keys_files = vec![".ssh/authorized_keys".into(), ".ssh/authorized_keys2".into()];
    }
    let mut host_keys = list(layer, Kw::HostKey);
    if host_keys.is_empty() {
        host_keys = DEFAULT_HOST_KEYS.iter().map(|s| (*s).to_owned()).collect();
    }
    host_keys.retain(|k| !k.eq_ignore_ascii_case("none"));
    let mut authentication_methods = list(layer, Kw::AuthenticationMethods);
    if authentication_methods == ["any"] {
        authentication_methods.clear();
    }
    let mut channel_timeout = list(layer, Kw::ChannelTimeout);
    if channel_timeout.len() == 1 && channel_timeout[0].eq_ignore_ascii_case("none") {
        channel_timeout.clear();
    }
    let subsystems = match layer.get(Kw::Subsystem) {
        Some(Value::Subsystems(s)) => s
            .iter()
            .map(|s| Subsystem {
                name: s.name.clone(),
                command: s.command.clone(),
                args: s.args.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let ip_qos = match layer.get(Kw::IpQos) {
        Some(Value::IpQos(a, b)) => (*a, *b),
        _ => (0x48, 0x20),
    };
    let permit = |kw| {
        let items = list(layer, kw);
        if items.is_empty() {
            vec!["any".to_owned()]
        } else {
            items
        }
    };
    Ok(SshdConfig {
        ports,
        address_family,
        listen_addresses,
        use_pam: flag(layer, Kw::UsePam, false),
        pam_service_name: text(layer, Kw::PamServiceName),
        login_grace_time: int(layer, Kw::LoginGraceTime, 120),
        x11_display_offset: int(layer, Kw::X11DisplayOffset, 10),
        max_auth_tries: int(layer, Kw::MaxAuthTries, 6),
        max_sessions: int(layer, Kw::MaxSessions, 10),
        client_alive_interval: int(layer, Kw::ClientAliveInterval, 0),
        client_alive_count_max: int(layer, Kw::ClientAliveCountMax, 3),
        required_rsa_size: int(layer, Kw::RequiredRsaSize, 1024),
        stream_local_bind_mask: int(layer, Kw::StreamLocalBindMask, 0o177),
        unused_connection_timeout: int(layer, Kw::UnusedConnectionTimeout, 0),
        permit_root_login,
        ignore_rhosts: choice_name(IGNORE_RHOSTS, choice(layer, Kw::IgnoreRhosts, 1)),
        ignore_user_known_hosts: flag(layer, Kw::IgnoreUserKnownHosts, false),
        hostbased_authentication: flag(layer, Kw::HostbasedAuthentication, false),
        hostbased_uses_name_from_packet_only: flag(
            layer,
            Kw::HostbasedUsesNameFromPacketOnly,
            false,
        ),
        pubkey_authentication: flag(layer, Kw::PubkeyAuthentication, true),
        password_authentication: flag(layer, Kw::PasswordAuthentication, true),
        kbd_interactive_authentication: flag(layer, Kw::KbdInteractiveAuthentication, true),
        print_motd: flag(layer, Kw::PrintMotd, true),
        print_last_log: flag(layer, Kw::PrintLastLog, true),
        x11_forwarding: flag(layer, Kw::X11Forwarding, false),
        x11_use_localhost: flag(layer, Kw::X11UseLocalhost, true),
        permit_tty: flag(layer, Kw::PermitTty, true),
        permit_user_rc: flag(layer, Kw::PermitUserRc, true),
        strict_modes: flag(layer, Kw::StrictModes, true),
        tcp_keep_alive: flag(layer, Kw::TcpKeepAlive, true),
        permit_empty_passwords: flag(layer, Kw::PermitEmptyPasswords, false),
        compression: choice(layer, Kw::Compression, 1) == 1,
        gateway_ports,
        use_dns: flag(layer, Kw::UseDns, false),
        allow_tcp_forwarding: forwarding(Kw::AllowTcpForwarding),
        allow_agent_forwarding: flag(layer, Kw::AllowAgentForwarding, true),
        disable_forwarding: flag(layer, Kw::DisableForwarding, false),
        allow_stream_local_forwarding: forwarding(Kw::AllowStreamLocalForwarding),
        stream_local_bind_unlink: flag(layer, Kw::StreamLocalBindUnlink, false),
        fingerprint_hash: text(layer, Kw::FingerprintHash).unwrap_or_else(|| "SHA256".into()),
        expose_auth_info: flag(layer, Kw::ExposeAuthInfo, false),
        refuse_connection: flag(layer, Kw::RefuseConnection, false),
        pid_file: Some(text(layer, Kw::PidFile).unwrap_or_else(|| "/run/sshd.pid".into()))
            .filter(|p| !p.eq_ignore_ascii_case("none")),
        moduli_file: text(layer, Kw::ModuliFile).unwrap_or_else(|| "/etc/ssh/moduli".into()),
        xauth_location: Some(
            text(layer, Kw::XAuthLocation).unwrap_or_else(|| "/usr/bin/xauth".into()),
        )
        .filter(|p| !p.eq_ignore_ascii_case("none")),
        ciphers: algorithms(layer, Kw::Ciphers)?,
        macs: algorithms(layer, Kw::Macs)?,
        kex_algorithms: algorithms(layer, Kw::KexAlgorithms)?,
        host_key_algorithms: algorithms(layer, Kw::HostKeyAlgorithms)?,
        pubkey_accepted_algorithms: pubkey_algorithms(layer)?,
        hostbased_accepted_algorithms: algorithms(layer, Kw::HostbasedAcceptedAlgorithms)?,
        ca_signature_algorithms: algorithms(layer, Kw::CaSignatureAlgorithms)?,
        banner: text_or_none(layer, Kw::Banner),
        force_command: text_or_none(layer, Kw::ForceCommand),
        chroot_directory: text_or_none(layer, Kw::ChrootDirectory),
        trusted_user_ca_keys: text_or_none(layer, Kw::TrustedUserCaKeys),
        revoked_keys: list(layer, Kw::RevokedKeys)
            .into_iter()
            .filter(|k| !k.eq_ignore_ascii_case("none"))
            .collect(),
        security_key_provider: Some(
            text(layer, Kw::SecurityKeyProvider).unwrap_or_else(|| "internal".into()),
        )
        .filter(|p| !p.eq_ignore_ascii_case("none")),
        authorized_principals_file: text_or_none(layer, Kw::AuthorizedPrincipalsFile),
        version_addendum: text(layer, Kw::VersionAddendum).unwrap_or_default(),
        authorized_keys_command: text_or_none(layer, Kw::AuthorizedKeysCommand),
        authorized_keys_command_user: text(layer, Kw::AuthorizedKeysCommandUser),
        authorized_principals_command: text_or_none(layer, Kw::AuthorizedPrincipalsCommand),
        authorized_principals_command_user: text(layer, Kw::AuthorizedPrincipalsCommandUser),
        host_key_agent: text_or_none(layer, Kw::HostKeyAgent),
        log_level: text(layer, Kw::LogLevel)
            .and_then(|l| LogLevel::parse(&l))
            .unwrap_or(LogLevel::Info),
        syslog_facility: text(layer, Kw::SyslogFacility)
            .and_then(|f| Facility::parse(&f))
            .unwrap_or(Facility::Auth),
        authorized_keys_files,
        host_keys,
        host_certificates: list(layer, Kw::HostCertificate)
            .into_iter()
            .filter(|k| !k.eq_ignore_ascii_case("none"))
            .collect(),
        allow_users: list(layer, Kw::AllowUsers),
        deny_users: list(layer, Kw::DenyUsers),
        allow_groups: list(layer, Kw::AllowGroups),
        deny_groups: list(layer, Kw::DenyGroups),
        accept_env: list(layer, Kw::AcceptEnv),
        set_env: list(layer, Kw::SetEnv),
        authentication_methods,
        log_verbose: list(layer, Kw::LogVerbose),
        channel_timeout,
        subsystems,
        max_startups,
        per_source_max_startups: match layer.get(Kw::PerSourceMaxStartups) {
            Some(Value::Int(v)) if *v >= 0 => u32::try_from(*v).ok(),
            _ => None,
        },
        per_source_net_block_size,
        per_source_penalties: list(layer, Kw::PerSourcePenalties),
        per_source_penalty_exempt_list: text(layer, Kw::PerSourcePenaltyExemptList),
        permit_tunnel: choice_name(TUNNEL, choice(layer, Kw::PermitTunnel, 0)),
        ip_qos,
        rekey_limit: (rekey_bytes, int(layer, Kw::RekeyInterval, 0)),
        permit_open: permit(Kw::PermitOpen),
        permit_listen: permit(Kw::PermitListen),
        permit_user_environment,
        permit_user_environment_allowlist,
        pubkey_auth_options: list(layer, Kw::PubkeyAuthOptions),
        sshd_session_path: text(layer, Kw::SshdSessionPath),
        sshd_auth_path: text(layer, Kw::SshdAuthPath),
    })
}

fn listen_addresses(
    queued: &[ListenSpec],
    ports: &[u16],
    family: AddressFamily,
) -> Result<Vec<ListenAddress>, ConfigError> {
    let mut out = Vec::new();
    let wildcard = |port: u16, out: &mut Vec<ListenAddress>| {
        if family != AddressFamily::Inet {
            out.push(ListenAddress { host: "::".into(), port });
        }
        if family != AddressFamily::Inet6 {
            out.push(ListenAddress { host: "0.0.0.0".into(), port });
        }
    };
    if queued.is_empty() {
        for port in ports {
            wildcard(*port, &mut out);
        }
        return Ok(out);
    }
    for spec in queued {
        let spec_ports: Vec<u16> = match spec.port {
            Some(p) => vec![p],
            None => ports.to_vec(),
        };
        if let Ok(ip) = spec.host.parse::<std::net::IpAddr>() {
            let fits = match family {
                AddressFamily::Any => true,
                AddressFamily::Inet => ip.is_ipv4(),
                AddressFamily::Inet6 => ip.is_ipv6(),
            };
            if !fits {
                return Err(ConfigError::new(format!(
                    "bad addr or host: {} (Address family for hostname not supported)",
                    spec.host
                )));
            }
        }
        for port in spec_ports {
            out.push(ListenAddress { host: spec.host.clone(), port });
        }
    }
    Ok(out)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl SshdConfig {
    /// Settings that restrict (or grant) access in ways conchd does not enforce, as
    /// `keyword value` texts. A daemon must refuse to start while this is not empty.
    pub fn unenforced(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |keyword: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push(format!("{keyword} {v}"));
            }
        };
        add("ChrootDirectory", &self.chroot_directory);
        add("AuthorizedKeysCommand", &self.authorized_keys_command);
        add("AuthorizedPrincipalsFile", &self.authorized_principals_file);
        add("AuthorizedPrincipalsCommand", &self.authorized_principals_command);
        add("TrustedUserCAKeys", &self.trusted_user_ca_keys);
        add("HostKeyAgent", &self.host_key_agent);
        for file in &self.revoked_keys {
            out.push(format!("RevokedKeys {file}"));
        }
        for file in &self.host_certificates {
            out.push(format!("HostCertificate {file}"));
        }
        out
    }

    /// Whether TCP forwarding in the local (`-L`) direction is allowed, counting
    /// `DisableForwarding`.
    pub fn tcp_forwarding_local(&self) -> bool {
        !self.disable_forwarding && self.allow_tcp_forwarding.allows_local()
    }

    /// Whether TCP forwarding in the remote (`-R`) direction is allowed, counting
    /// `DisableForwarding`.
    pub fn tcp_forwarding_remote(&self) -> bool {
        !self.disable_forwarding && self.allow_tcp_forwarding.allows_remote()
    }

    /// Whether agent forwarding is allowed, counting `DisableForwarding`.
    pub fn agent_forwarding(&self) -> bool {
        !self.disable_forwarding && self.allow_agent_forwarding
    }

    /// The authorized keys files for a user: `%u` (name), `%U` (uid), `%h` (home) and `%%`
    /// expanded, relative paths taken from the home directory (OpenSSH's
    /// `expand_authorized_keys`). `none` entries are dropped.
    pub fn authorized_keys_files_for(
        &self,
        user: &str,
        uid: u32,
        home: &str,
    ) -> Result<Vec<String>, ExpandError> {
        let uid = uid.to_string();
        let tokens = [('h', home), ('U', uid.as_str()), ('u', user)];
        let mut out = Vec::new();
        for template in &self.authorized_keys_files {
            if template.eq_ignore_ascii_case("none") {
                continue;
            }
            let path = expand(template, &tokens, None)?;
            if path.starts_with('/') {
                out.push(path);
            } else {
                let slash = if home.ends_with('/') { "" } else { "/" };
                out.push(format!("{home}{slash}{path}"));
            }
        }
        Ok(out)
    }

    /// OpenSSH's `allowed_user` checks for the lists: `DenyUsers`, `AllowUsers`,
    /// `DenyGroups`, `AllowGroups`, in that order. `host` is the client's host name (its
    /// address unless `UseDNS`), `address` its address.
    pub fn user_access(
        &self,
        user: &str,
        groups: &[String],
        host: &str,
        address: &str,
    ) -> UserAccess {
        let refused = |why: String| UserAccess::Refused(why);
        if self.deny_users.iter().any(|p| match_user(user, host, address, p)) {
            return refused("not allowed because listed in DenyUsers".into());
        }
        if !self.allow_users.is_empty()
            && !self.allow_users.iter().any(|p| match_user(user, host, address, p))
        {
            return refused("not allowed because not listed in AllowUsers".into());
        }
        let group_hit = |patterns: &[String]| {
            groups.iter().any(|g| {
                patterns.iter().any(|p| match_pattern_list(g, p, false) == ListMatch::Match)
            })
        };
        if !self.deny_groups.is_empty() && group_hit(&self.deny_groups) {
            return refused("not allowed because a group is listed in DenyGroups".into());
        }
        if !self.allow_groups.is_empty() && !group_hit(&self.allow_groups) {
            return refused(
                "not allowed because none of user's groups are listed in AllowGroups".into(),
            );
        }
        UserAccess::Allowed
    }

    /// Whether a client-sent variable passes `AcceptEnv`.
    pub fn accepts_env(&self, name: &str) -> bool {
        self.accept_env.iter().any(|p| match_pattern_list(name, p, false) == ListMatch::Match)
    }

    /// The configuration as `sshd -T` prints it: lower-case `keyword value` lines in
    /// OpenSSH 9.2's order and formats. Kerberos and GSSAPI lines are absent, as from an
    /// OpenSSH built without them.
    pub fn dump(&self) -> String {
        let mut o = String::new();
        let mut line = |k: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(o, "{k} {v}");
        };
        for port in &self.ports {
            line("port", port);
        }
        line(
            "addressfamily",
            &choice_name(
                ADDRESS_FAMILY,
                match self.address_family {
                    AddressFamily::Any => 0,
                    AddressFamily::Inet => 4,
                    AddressFamily::Inet6 => 6,
                },
            ),
        );
        for la in &self.listen_addresses {
            if la.host.contains(':') {
                line("listenaddress", &format!("[{}]:{}", la.host, la.port));
            } else {
                line("listenaddress", &format!("{}:{}", la.host, la.port));
            }
        }
        line("usepam", &yes_no(self.use_pam));
        line("logingracetime", &self.login_grace_time);
        line("x11displayoffset", &self.x11_display_offset);
        line("maxauthtries", &self.max_auth_tries);
        line("maxsessions", &self.max_sessions);
        line("clientaliveinterval", &self.client_alive_interval);
        line("clientalivecountmax", &self.client_alive_count_max);
        line("requiredrsasize", &self.required_rsa_size);
        line("streamlocalbindmask", &format!("0{:o}", self.stream_local_bind_mask));
        if self.unused_connection_timeout == 0 {
            line("unusedconnectiontimeout", &"none");
        } else {
            line("unusedconnectiontimeout", &self.unused_connection_timeout);
        }
        line(
            "permitrootlogin",
            &choice_name(
                PERMIT_ROOT_LOGIN,
                match self.permit_root_login {
                    PermitRootLogin::Yes => 3,
                    PermitRootLogin::ProhibitPassword => 2,
                    PermitRootLogin::ForcedCommandsOnly => 1,
                    PermitRootLogin::No => 0,
                },
            ),
        );
        line("ignorerhosts", &self.ignore_rhosts);
        line("ignoreuserknownhosts", &yes_no(self.ignore_user_known_hosts));
        line("hostbasedauthentication", &yes_no(self.hostbased_authentication));
        line("hostbasedusesnamefrompacketonly", &yes_no(self.hostbased_uses_name_from_packet_only));
        line("pubkeyauthentication", &yes_no(self.pubkey_authentication));
        line("passwordauthentication", &yes_no(self.password_authentication));
        line("kbdinteractiveauthentication", &yes_no(self.kbd_interactive_authentication));
        line("printmotd", &yes_no(self.print_motd));
        line("printlastlog", &yes_no(self.print_last_log));
        line("x11forwarding", &yes_no(self.x11_forwarding));
        line("x11uselocalhost", &yes_no(self.x11_use_localhost));
        line("permittty", &yes_no(self.permit_tty));
        line("permituserrc", &yes_no(self.permit_user_rc));
        line("strictmodes", &yes_no(self.strict_modes));
        line("tcpkeepalive", &yes_no(self.tcp_keep_alive));
        line("permitemptypasswords", &yes_no(self.permit_empty_passwords));
        line("compression", &choice_name(COMPRESSION, u8::from(self.compression)));
        line(
            "gatewayports",
            &choice_name(
                GATEWAY_PORTS,
                match self.gateway_ports {
                    GatewayPorts::No => 0,
                    GatewayPorts::Yes => 1,
                    GatewayPorts::ClientSpecified => 2,
                },
            ),
        );
        line("usedns", &yes_no(self.use_dns));
        let fwd = |f: Forwarding| {
            choice_name(
                FORWARDING,
                match f {
                    Forwarding::Yes => 3,
                    Forwarding::No => 0,
                    Forwarding::Local => 1,
                    Forwarding::Remote => 2,
                },
            )
        };
        line("allowtcpforwarding", &fwd(self.allow_tcp_forwarding));
        line("allowagentforwarding", &yes_no(self.allow_agent_forwarding));
        line("disableforwarding", &yes_no(self.disable_forwarding));
        line("allowstreamlocalforwarding", &fwd(self.allow_stream_local_forwarding));
        line("streamlocalbindunlink", &yes_no(self.stream_local_bind_unlink));
        line("fingerprinthash", &self.fingerprint_hash);
        line("exposeauthinfo", &yes_no(self.expose_auth_info));
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        line("pidfile", &opt(&self.pid_file));
        line("modulifile", &self.moduli_file);
        line("xauthlocation", &opt(&self.xauth_location));
        line("ciphers", &self.ciphers.join(","));
        line("macs", &self.macs.join(","));
        line("banner", &opt(&self.banner));
        line("forcecommand", &opt(&self.force_command));
        line("chrootdirectory", &opt(&self.chroot_directory));
        line("trustedusercakeys", &opt(&self.trusted_user_ca_keys));
        if self.revoked_keys.is_empty() {
            line("revokedkeys", &"none");
        } else {
            line("revokedkeys", &self.revoked_keys.join(" "));
        }
        line("securitykeyprovider", &opt(&self.security_key_provider));
        line("authorizedprincipalsfile", &opt(&self.authorized_principals_file));
        if self.version_addendum.is_empty() {
            line("versionaddendum", &"none");
        } else {
            line("versionaddendum", &self.version_addendum);
        }
        line("authorizedkeyscommand", &opt(&self.authorized_keys_command));
        line("authorizedkeyscommanduser", &opt(&self.authorized_keys_command_user));
        line("authorizedprincipalscommand", &opt(&self.authorized_principals_command));
        line("authorizedprincipalscommanduser", &opt(&self.authorized_principals_command_user));
        line("hostkeyagent", &opt(&self.host_key_agent));
        line("kexalgorithms", &self.kex_algorithms.join(","));
        line("casignaturealgorithms", &self.ca_signature_algorithms.join(","));
        line("hostbasedacceptedalgorithms", &self.hostbased_accepted_algorithms.join(","));
        line("hostkeyalgorithms", &self.host_key_algorithms.join(","));
        line("pubkeyacceptedalgorithms", &self.pubkey_accepted_algorithms.join(","));
        line("loglevel", &self.log_level.name());
        line("syslogfacility", &self.syslog_facility.name());
        line("authorizedkeysfile", &self.authorized_keys_files.join(" "));
        for (keyword, values) in [
            ("hostkey", &self.host_keys),
            ("hostcertificate", &self.host_certificates),
            ("allowusers", &self.allow_users),
            ("denyusers", &self.deny_users),
            ("allowgroups", &self.allow_groups),
            ("denygroups", &self.deny_groups),
            ("acceptenv", &self.accept_env),
            ("setenv", &self.set_env),
        ] {
            for value in values {
                line(keyword, value);
            }
        }
        if self.authentication_methods.is_empty() {
            line("authenticationmethods", &"any");
        } else {
            line("authenticationmethods", &self.authentication_methods.join(" "));
        }
        if !self.log_verbose.is_empty() {
            line("logverbose", &self.log_verbose.join(" "));
        }
        if !self.channel_timeout.is_empty() {
            line("channeltimeout", &self.channel_timeout.join(" "));
        }
        for s in &self.subsystems {
            line("subsystem", &format!("{} {}", s.name, s.args));
        }
        let (b, r, m) = self.max_startups;
        line("maxstartups", &format!("{b}:{r}:{m}"));
        match self.per_source_max_startups {
            None => line("persourcemaxstartups", &"none"),
            Some(n) => line("persourcemaxstartups", &n),
        }
        let (v4, v6) = self.per_source_net_block_size;
        line("persourcenetblocksize", &format!("{v4}:{v6}"));
        line("permittunnel", &self.permit_tunnel);
        line("ipqos", &format!("{} {}", ipqos_name(self.ip_qos.0), ipqos_name(self.ip_qos.1)));
        line("rekeylimit", &format!("{} {}", self.rekey_limit.0, self.rekey_limit.1));
        line("permitopen", &self.permit_open.join(" "));
        line("permitlisten", &self.permit_listen.join(" "));
        match &self.permit_user_environment_allowlist {
            Some(list) => line("permituserenvironment", list),
            None => line("permituserenvironment", &yes_no(self.permit_user_environment)),
        }
        if self.pubkey_auth_options.is_empty() {
            line("pubkeyauthoptions", &"none");
        } else {
            line("pubkeyauthoptions", &self.pubkey_auth_options.join(" "));
        }
        o
    }
}

//! From the effective `ssh_config` to a [`ClientConfig`], and connecting as it says: directly
//! (every address, `ConnectionAttempts` times, `AddressFamily`), through a `ProxyCommand`, or
//! through `ProxyJump` hops (each a `direct-tcpip` channel of the previous connection).

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use twine_conch::client::{
    self, ClientConfig, ClientError, ClientProtocol, Connection, KnownHostsPolicy, Method,
    StrictHostKeyChecking,
};
use twine_conch::config::ssh::{self as ssh_config, ConfigFile, ProxyJump, SshConfig, SshLoader};
use twine_conch::config::OsFilesystem;
use twine_conch::crypto::algorithms::Category;
use twine_conch::keys::SignatureAlgorithm;
use twine_core::Reactor;

use crate::prompt::TtyPrompter;

/// Who and where we run.
#[derive(Clone, Debug)]
pub(crate) struct Local {
    pub(crate) user: String,
    pub(crate) uid: u32,
    pub(crate) home: String,
    pub(crate) host: String,
}

impl Local {
    pub(crate) fn discover() -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let entry_uid = fields.get(2)?.parse::<u32>().ok()?;
            (entry_uid == uid).then(|| {
                (
                    fields.first().copied().unwrap_or("").to_owned(),
                    fields.get(5).copied().unwrap_or("/").to_owned(),
                )
            })
        });
        let (user, passwd_home) = entry.unwrap_or_else(|| {
            (std::env::var("USER").unwrap_or_else(|_| "root".into()), "/".into())
        });
        let home = std::env::var("HOME").ok().filter(|h| !h.is_empty()).unwrap_or(passwd_home);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        Self { user, uid, home, host }
    }
}

/// Runs `Match exec` commands through the shell.
fn match_exec(command: &str) -> Result<bool, String> {
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .status()
        .map_err(|err| format!("Match exec: {err}"))?;
    Ok(status.success())
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Resolves the configuration for `host` with `options` first and `file` (`-F`).
pub(crate) fn resolve(
    local: &Local,
    file: Option<&str>,
    options: &[String],
    host: &str,
) -> Result<SshConfig, String> {
    let fs = OsFilesystem;
    let exec = match_exec;
    let env = env_lookup;
    let ctx =
        ssh_config::ClientContext::new(&fs, &*local.user, local.uid, &*local.home, &*local.host)
            .exec(&exec)
            .env(&env);
    let mut loader = SshLoader::new(ctx);
    for option in options {
        loader = loader.option(option.clone());
    }
    loader = loader.file(match file {
        None => ConfigFile::Default,
        Some("none") => ConfigFile::None,
        Some(path) => ConfigFile::Path(path.to_owned()),
    });
    loader.resolve(host).map_err(|err| err.to_string())
}

/// The identity files to try: those configured, else OpenSSH's defaults that exist.
fn identity_files(config: &SshConfig, local: &Local) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let env = env_lookup;
    for path in &config.identity_files {
        match config.expand_path(path, &local.home, Some(&env)) {
            Ok(path) => files.push(PathBuf::from(path)),
            Err(err) => log::error!("{err}"),
        }
    }
    if files.is_empty() {
        for name in ["id_rsa", "id_ecdsa", "id_ed25519"] {
            files.push(PathBuf::from(&local.home).join(".ssh").join(name));
        }
    }
    files.retain(|path| {
        let exists = path.exists();
        if !exists && !config.identity_files.is_empty() {
            log::debug!("identity file {} type -1", path.display());
        }
        exists
    });
    files
}

/// The client configuration the effective `ssh_config` describes.
pub(crate) fn client_config(
    config: &SshConfig,
    local: &Local,
    quiet: bool,
) -> Result<ClientConfig, String> {
    let prompter = Rc::new(TtyPrompter { batch: config.batch_mode, quiet });
    let mut client = ClientConfig::new(&config.user).prompter(prompter.clone());
    // The agent first, then the key files (OpenSSH's order).
    if config.pubkey_authentication {
        let agent_socket = match config.identity_agent.as_deref() {
            Some("none") => None,
            Some("SSH_AUTH_SOCK") | None => std::env::var("SSH_AUTH_SOCK").ok(),
            Some(path) => Some(path.to_owned()),
        };
        if let Some(socket) = agent_socket.filter(|s| !s.is_empty()) {
            let agent = twine_conch::agent::AgentSigner::new(&socket);
            let agent = if config.identities_only {
                agent.only(identity_files(config, local))
            } else {
                agent
            };
            client = client.identity(Rc::new(agent));
        }
        for path in identity_files(config, local) {
            log::debug!("Will attempt key: {}", path.display());
            client = client.identity_file(path);
        }
        let env = env_lookup;
        for path in &config.certificate_files {
            match config.expand_path(path, &local.home, Some(&env)) {
                Ok(path) => client = client.certificate_file(path),
                Err(err) => log::error!("{err}"),
            }
        }
    }
    // Host keys.
    let mode = match config.strict_host_key_checking {
        ssh_config::StrictHostKeyChecking::Yes => StrictHostKeyChecking::Yes,
        ssh_config::StrictHostKeyChecking::AcceptNew => StrictHostKeyChecking::AcceptNew,
        ssh_config::StrictHostKeyChecking::Off => StrictHostKeyChecking::No,
        ssh_config::StrictHostKeyChecking::Ask => StrictHostKeyChecking::Ask,
    };
    let env = env_lookup;
    let expand = |path: &String| {
        config.expand_path(path, &local.home, Some(&env)).unwrap_or_else(|_| path.clone())
    };
    let user_files: Vec<String> = config.user_known_hosts_files.iter().map(expand).collect();
    let global_files: Vec<String> = config.global_known_hosts_files.iter().map(expand).collect();
    let first =
        user_files.first().cloned().unwrap_or_else(|| format!("{}/.ssh/known_hosts", local.home));
    let mut policy = KnownHostsPolicy::new(first, mode)
        .hash_new_entries(config.hash_known_hosts)
        .prompter(prompter);
    for file in user_files.iter().skip(1).filter(|f| f.as_str() != "none") {
        policy = policy.user_file(file);
    }
    for file in global_files.iter().filter(|f| f.as_str() != "none") {
        policy = policy.global_file(file);
    }
    client = client.host_key_policy(Rc::new(policy));
    if let Some(alias) = &config.host_key_alias {
        client = client.host_key_alias(alias);
    }
    // Authentication.
    let mut userauth = twine_conch::userauth::ClientConfig::new();
    let wanted = |method: Method| match method {
        Method::PublicKey => config.pubkey_authentication,
        Method::Password => config.password_authentication,
        Method::KeyboardInteractive => config.kbd_interactive_authentication,
        _ => false,
    };
    let preferred: Vec<Method> = match &config.preferred_authentications {
        Some(list) => list.split(',').filter_map(Method::from_name).collect(),
        None => userauth.preferred_methods.clone(),
    };
    userauth.preferred_methods = preferred.into_iter().filter(|m| wanted(*m)).collect();
    userauth.number_of_password_prompts = config.number_of_password_prompts;
    let algorithms: Vec<SignatureAlgorithm> = config
        .pubkey_accepted_algorithms
        .iter()
        .filter_map(|name| SignatureAlgorithm::from_name(name))
        .collect();
    userauth.publickey_cert_algorithms = Some(
        config
            .pubkey_accepted_algorithms
            .iter()
            .filter_map(|name| twine_conch::keys::cert::cert_signature_algorithm(name))
            .collect(),
    );
    if !algorithms.is_empty() {
        userauth.publickey_algorithms = algorithms;
    }
    client = client.userauth(userauth);
    // Transport.
    let mut transport = twine_conch::transport::ClientConfig::default();
    let lists = [
        (Category::Cipher, &config.ciphers),
        (Category::Mac, &config.macs),
        (Category::Kex, &config.kex_algorithms),
        (Category::HostKey, &config.host_key_algorithms),
    ];
    for (category, list) in lists {
        if !list.is_empty() {
            transport
                .algorithms
                .configure(category, &list.join(","))
                .map_err(|err| err.to_string())?;
        }
    }
    let compression = if config.compression { "zlib@openssh.com,none" } else { "none" };
    transport
        .algorithms
        .configure(Category::Compression, compression)
        .map_err(|err| err.to_string())?;
    let (bytes, seconds) = config.rekey_limit;
    if bytes > 0 {
        transport.rekey.bytes = Some(bytes);
    }
    if seconds > 0 {
        transport.rekey.time = Some(Duration::from_secs(u64::from(seconds)));
    }
    client = client.transport(transport);
    if let Some(timeout) = config.connect_timeout.filter(|t| *t > 0) {
        client = client.connect_timeout(Duration::from_secs(u64::from(timeout)));
    }
    if config.server_alive_interval > 0 {
        client = client.server_alive(
            Duration::from_secs(u64::from(config.server_alive_interval)),
            config.server_alive_count_max,
        );
    }
    Ok(client)
}

/// A connection being made.
pub(crate) type Connecting = Pin<Box<dyn Future<Output = Result<Connection, ClientError>>>>;

/// Processes started for the connection (`ProxyCommand`s), stopped by PID at exit.
#[derive(Debug, Default)]
pub(crate) struct Children(pub(crate) Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// Connects to the configured destination however the configuration says.
pub(crate) fn connect(
    reactor: &Reactor,
    config: &SshConfig,
    client: ClientConfig,
    local: &Local,
    file: Option<&str>,
    children: &mut Children,
) -> Result<Connecting, String> {
    let host = config.hostname.clone();
    let port = config.port;
    if let Some(command) = config.expanded_proxy_command() {
        let command = command.map_err(|err| err.to_string())?;
        if command != "none" {
            return proxy_command(reactor, &command, &host, port, client, children);
        }
    }
    if let Some(jump) = &config.proxy_jump {
        let hop = jump_connection(reactor, jump, local, file, children, 0)?;
        return Ok(Box::pin(through(reactor.clone(), hop, host, port, client)));
    }
    Ok(Box::pin(direct(reactor.clone(), config.clone(), client)))
}

async fn direct(
    reactor: Reactor,
    config: SshConfig,
    client: ClientConfig,
) -> Result<Connection, ClientError> {
    let host = config.hostname.clone();
    let port = config.port;
    let attempts = config.connection_attempts.max(1);
    let mut last = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            log::debug!("Trying again...");
        }
        let addresses = resolve_addresses(&reactor, &host, port, config.address_family).await?;
        match client::connect_addresses(&reactor, addresses, &host, port, client.clone()).await {
            Ok(connection) => return Ok(connection),
            Err(error @ ClientError::Connect { .. }) => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or(ClientError::ConnectionLost(None)))
}

/// Resolves `host` (on the reactor's thread pool), keeping `AddressFamily`'s addresses.
async fn resolve_addresses(
    reactor: &Reactor,
    host: &str,
    port: u16,
    family: u8,
) -> Result<Vec<SocketAddr>, ClientError> {
    let name = host.to_owned();
    let resolved = reactor
        .defer_to_thread(move || {
            (name.as_str(), port).to_socket_addrs().map(Iterator::collect::<Vec<_>>)
        })
        .await;
    let failure = |message: String| ClientError::Connect {
        host: host.to_owned(),
        port,
        error: twine_core::Error::new(twine_core::ErrorKind::NameResolution, message),
    };
    let addresses = match resolved {
        Ok(Ok(addresses)) => addresses,
        Ok(Err(err)) => {
            return Err(failure(format!("Could not resolve hostname {host}: {err}")));
        }
        Err(err) => return Err(failure(err.to_string())),
    };
    // 1: inet, 2: inet6 (the parser's order: any, inet, inet6).
    let kept: Vec<SocketAddr> = addresses
        .into_iter()
        .filter(|a| match family {
            1 => a.is_ipv4(),
            2 => a.is_ipv6(),
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        return Err(failure(format!(
            "Could not resolve hostname {host}: Address family for hostname not supported"
        )));
    }
    Ok(kept)
}

/// `ProxyCommand`: the command's standard input and output are the connection.
fn proxy_command(
    reactor: &Reactor,
    command: &str,
    host: &str,
    port: u16,
    client: ClientConfig,
    children: &mut Children,
) -> Result<Connecting, String> {
    log::debug!("Executing proxy command: exec {command}");
    let shell =
        std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into());
    let mut child = Command::new(shell)
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("exec {command}: {err}"))?;
    let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("proxy command pipes".into());
    };
    children.0.push(child);
    let connecting = client::connect_fd_pair(
        reactor,
        OwnedFd::from(output),
        OwnedFd::from(input),
        host,
        port,
        client,
    )
    .map_err(|err| err.to_string())?;
    Ok(Box::pin(connecting))
}

/// A connection through `hop`: a `direct-tcpip` channel to `host:port` carrying the client.
async fn through(
    reactor: Reactor,
    hop: Connecting,
    host: String,
    port: u16,
    client: ClientConfig,
) -> Result<Connection, ClientError> {
    let hop = hop.await?;
    let (protocol, connected) = ClientProtocol::new(&reactor, &host, port, client)?;
    log::debug!("channel to {host}:{port} through the jump host");
    hop.direct_tcpip(&host, port, protocol).await?;
    let result = connected.await;
    // The hop's connection lives as long as the channel over it: keep it with the result.
    if let Ok(connection) = &result {
        let keep = hop.clone();
        connection.closed().on_settled(move |_| keep.disconnect());
    }
    std::mem::forget(hop);
    result
}

/// The connection to the last `ProxyJump` hop (earlier hops first, recursively).
fn jump_connection(
    reactor: &Reactor,
    jump: &ProxyJump,
    local: &Local,
    file: Option<&str>,
    children: &mut Children,
    depth: usize,
) -> Result<Connecting, String> {
    if depth > 16 {
        return Err("Too many ProxyJump hops".into());
    }
    let mut options = Vec::new();
    if let Some(user) = &jump.user {
        options.push(format!("User {user}"));
    }
    if let Some(port) = jump.port {
        options.push(format!("Port {port}"));
    }
    // The hop's own earlier hops; OpenSSH clears the hop's ProxyCommand when -J is given.
    match &jump.extra {
        Some(extra) => options.push(format!("ProxyJump {extra}")),
        None => options.push("ProxyJump none".into()),
    }
    let config = resolve(local, file, &options, &jump.host)?;
    let client = client_config(&config, local, true)?;
    log::debug!("Setting up jump host {}:{}", config.hostname, config.port);
    if let Some(earlier) = &config.proxy_jump {
        let hop = jump_connection(reactor, earlier, local, file, children, depth + 1)?;
        return Ok(Box::pin(through(
            reactor.clone(),
            hop,
            config.hostname.clone(),
            config.port,
            client,
        )));
    }
    connect(reactor, &config, client, local, file, children)
}

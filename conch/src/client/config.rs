//! [`ClientConfig`]: who logs in, with what, and how the server is trusted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::host_key::{
    dangerous_accept_any, HostKeyPolicy, KnownHostsPolicy, StrictHostKeyChecking,
};
use super::identity::{IdentitySigner, KeyFile};
use super::prompt::{NoPrompts, Prompter};
use crate::connection;
use crate::keys::Certificate;
use crate::transport;
use crate::userauth::{self, Method};

/// The default `ConnectTimeout`: how long one address may take to accept the TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a client connection needs besides the server's address (the paved path:
/// [`ClientConfig::new`] has OpenSSH's defaults).
///
/// ```no_run
/// use std::path::Path;
/// use twine_conch::client::{ClientConfig, StrictHostKeyChecking};
///
/// let config = ClientConfig::new("alice")
///     .identity_file("/home/alice/.ssh/id_ed25519")
///     .known_hosts(Path::new("/home/alice/.ssh/known_hosts"), StrictHostKeyChecking::Yes)
///     .server_alive(std::time::Duration::from_secs(15), 3);
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) user: String,
    pub(crate) transport: transport::ClientConfig,
    pub(crate) userauth: Arc<userauth::ClientConfig>,
    pub(crate) connection: connection::Config,
    pub(crate) identities: Vec<Rc<dyn IdentitySigner>>,
    pub(crate) identity_files: Vec<PathBuf>,
    certificate_files: Vec<PathBuf>,
    host_keys: HostKeys,
    pub(crate) strict_host_key_checking: StrictHostKeyChecking,
    pub(crate) prompter: Rc<dyn Prompter>,
    pub(crate) host_key_alias: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) server_alive: Option<(Duration, u32)>,
}

/// The client's connection settings: the layer's defaults, with its largest packets.
fn default_connection() -> connection::Config {
    connection::Config {
        max_packet_size: connection::MAX_CHANNEL_PACKET,
        ..connection::Config::default()
    }
}

impl ClientConfig {
    /// Logs in as `user`, with OpenSSH's defaults: methods `publickey`,
    /// `keyboard-interactive`, `password`; no identities until added; host keys checked
    /// against `~/.ssh/known_hosts` (and `/etc/ssh/ssh_known_hosts`) in `ask` mode, with a
    /// prompter that asks nothing (so unknown hosts are refused until a prompter is set);
    /// a 30-second connect timeout; no keepalives.
    pub fn new(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            transport: transport::ClientConfig::default(),
            userauth: Arc::new(userauth::ClientConfig::new()),
            connection: default_connection(),
            identities: Vec::new(),
            identity_files: Vec::new(),
            certificate_files: Vec::new(),
            host_keys: HostKeys::Default,
            strict_host_key_checking: StrictHostKeyChecking::Ask,
            prompter: Rc::new(NoPrompts),
            host_key_alias: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            server_alive: None,
        }
    }

    /// The user to log in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Adds a private key file (`IdentityFile`); its passphrase, if any, is asked through the
    /// prompter. Keys are offered in the order added, files after [`identity`](Self::identity)
    /// signers.
    #[must_use]
    pub fn identity_file(mut self, path: impl AsRef<Path>) -> Self {
        self.identity_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds an OpenSSH certificate file (`CertificateFile`): offered with the identity file
    /// whose key it certifies. (`<identity>-cert.pub` beside an identity file is found without
    /// this.)
    #[must_use]
    pub fn certificate_file(mut self, path: impl AsRef<Path>) -> Self {
        self.certificate_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Adds a signer: an in-memory key, an agent, a hardware token.
    #[must_use]
    pub fn identity(mut self, signer: Rc<dyn IdentitySigner>) -> Self {
        self.identities.push(signer);
        self
    }

    /// Who answers prompts (passwords, keyboard-interactive, passphrases, unknown host keys)
    /// and hears banners and warnings.
    #[must_use]
    pub fn prompter(mut self, prompter: Rc<dyn Prompter>) -> Self {
        self.prompter = prompter;
        self
    }

    /// Checks host keys with `policy`.
    #[must_use]
    pub fn host_key_policy(mut self, policy: Rc<dyn HostKeyPolicy>) -> Self {
        self.host_keys = HostKeys::Policy(policy);
        self
    }

    /// Checks host keys against the `known_hosts` file at `path` in `mode`; new keys are added
    /// to it, and in `ask` mode the prompter asks.
    #[must_use]
    pub fn known_hosts(mut self, path: &Path, mode: StrictHostKeyChecking) -> Self {
        self.host_keys = HostKeys::File(path.to_path_buf());
        self.strict_host_key_checking = mode;
        self
    }

    /// `StrictHostKeyChecking` for the `known_hosts` files (default `ask`).
    #[must_use]
    pub fn strict_host_key_checking(mut self, mode: StrictHostKeyChecking) -> Self {
        self.strict_host_key_checking = mode;
        self
    }

    /// Trusts any host key. Anyone on the network path can then read and change the session;
    /// for tests against a local server only.
    #[must_use]
    pub fn dangerous_accept_any_host_key(mut self) -> Self {
        self.host_keys = HostKeys::Policy(dangerous_accept_any());
        self
    }

    /// `HostKeyAlias`: the name host keys are looked up and recorded under.
    #[must_use]
    pub fn host_key_alias(mut self, alias: &str) -> Self {
        self.host_key_alias = Some(alias.to_owned());
        self
    }

    /// `PreferredAuthentications`, in order (after the initial `none`).
    #[must_use]
    pub fn preferred_methods(mut self, methods: Vec<Method>) -> Self {
        Arc::make_mut(&mut self.userauth).preferred_methods = methods;
        self
    }

    /// The user authentication settings in full.
    #[must_use]
    pub fn userauth(mut self, config: userauth::ClientConfig) -> Self {
        self.userauth = Arc::new(config);
        self
    }

    /// The transport's settings: algorithm preferences (`Ciphers`, `KexAlgorithms`, `MACs`,
    /// `HostKeyAlgorithms`, in OpenSSH's `+`/`-`/`^` syntax through
    /// [`Preferences::configure`](crate::crypto::algorithms::Preferences::configure)), the
    /// identification line, rekey limits.
    #[must_use]
    pub fn transport(mut self, config: transport::ClientConfig) -> Self {
        self.transport = config;
        self
    }

    /// The connection layer's settings: windows, packet sizes, channel limits. The default is
    /// [`connection::Config::default`] (4 MiB windows) with the largest packets the connection
    /// layer allows ([`MAX_CHANNEL_PACKET`](connection::MAX_CHANNEL_PACKET), 128 KiB), so that a
    /// server moves bulk data in half as many packets as with 64 KiB.
    #[must_use]
    pub fn connection(mut self, config: connection::Config) -> Self {
        self.connection = config;
        self
    }

    /// `ConnectTimeout`, per address tried.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `ServerAliveInterval` and `ServerAliveCountMax`: after `interval` without a packet from
    /// the server, send `keepalive@openssh.com`; after `count_max` unanswered ones, disconnect
    /// with [`ClientError::ServerNotResponding`](super::ClientError::ServerNotResponding).
    #[must_use]
    pub fn server_alive(mut self, interval: Duration, count_max: u32) -> Self {
        self.server_alive = (!interval.is_zero()).then_some((interval, count_max));
        self
    }

    /// The policy to use, given the prompter.
    pub(crate) fn policy(&self) -> Rc<dyn HostKeyPolicy> {
        let mode = self.strict_host_key_checking;
        let policy = match &self.host_keys {
            HostKeys::Policy(policy) => return Rc::clone(policy),
            HostKeys::File(path) => KnownHostsPolicy::new(path, mode),
            HostKeys::Default => {
                let home =
                    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
                KnownHostsPolicy::openssh_defaults(&home, mode)
            }
        };
        Rc::new(policy.prompter(Rc::clone(&self.prompter)))
    }

    /// The signers: those added, then the key files.
    pub(crate) fn signers(&self) -> Vec<Rc<dyn IdentitySigner>> {
        let mut signers = self.identities.clone();
        let certificates: Vec<Certificate> = self
            .certificate_files
            .iter()
            .filter_map(|path| {
                let text = std::fs::read_to_string(path)
                    .map_err(|err| log::debug!("certificate {}: {err}", path.display()))
                    .ok()?;
                Certificate::from_openssh(text.trim())
                    .map_err(|err| log::debug!("certificate {}: {err}", path.display()))
                    .ok()
            })
            .collect();
        for path in &self.identity_files {
            let file = KeyFile::with_prompter(path, Rc::clone(&self.prompter));
            if !certificates.is_empty() {
                if let Ok(key) = file.public_key() {
                    for cert in certificates.iter().filter(|c| c.key == key) {
                        file.add_certificate(cert.clone());
                    }
                }
            }
            signers.push(Rc::new(file));
        }
        signers
    }
}

/// Where host keys are checked.
#[derive(Clone)]
enum HostKeys {
    /// `known_hosts` in the user's home and `/etc/ssh`.
    Default,
    /// One `known_hosts` file.
    File(PathBuf),
    /// A policy of the application's.
    Policy(Rc<dyn HostKeyPolicy>),
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("user", &self.user)
            .field("transport", &self.transport)
            .field("userauth", &self.userauth)
            .field("connection", &self.connection)
            .field("identities", &self.identities.len())
            .field("identity_files", &self.identity_files)
            .field("strict_host_key_checking", &self.strict_host_key_checking)
            .field("host_key_alias", &self.host_key_alias)
            .field("connect_timeout", &self.connect_timeout)
            .field("server_alive", &self.server_alive)
            .finish_non_exhaustive()
    }
}

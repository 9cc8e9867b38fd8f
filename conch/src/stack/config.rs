//! The configuration of each side's stack: the three layers' configurations, checked together
//! once, plus the timers that belong to no single layer.

use std::sync::Arc;
use std::time::Duration;

use crate::connection::{self, Connection, Side};
use crate::crypto::SecureRandom;
use crate::error::Error;
use crate::keys::HostKeySigner;
use crate::transport;
use crate::userauth;

/// OpenSSH's default `LoginGraceTime`.
pub const DEFAULT_LOGIN_GRACE_TIME: Duration = Duration::from_secs(120);

/// OpenSSH's default `ClientAliveCountMax` and `ServerAliveCountMax`.
pub const DEFAULT_ALIVE_COUNT_MAX: u32 = 3;

/// Everything a [`ServerStack`](super::ServerStack) needs, shared by all connections (wrap it in
/// an `Arc`).
///
/// The layers' configurations are fixed at [`ServerStackConfig::new`], which checks them and
/// derives the transport's `SSH_MSG_EXT_INFO` from user authentication's; the timers are plain
/// fields.
#[derive(Clone, Debug)]
pub struct ServerStackConfig {
    transport: Arc<transport::ServerConfig>,
    userauth: Arc<userauth::ServerConfig>,
    connection: connection::Config,
    /// OpenSSH's `LoginGraceTime`: the connection ends if authentication has not succeeded this
    /// long after it started (default 120 s; `None`: no limit).
    pub login_grace_time: Option<Duration>,
    /// OpenSSH's `ClientAliveInterval`: after this long without a byte from the client, send
    /// `keepalive@openssh.com` (default `None`: never). Only after authentication.
    pub client_alive_interval: Option<Duration>,
    /// OpenSSH's `ClientAliveCountMax`: end the connection when this many probes in a row went
    /// unanswered (default 3; 0 never ends it, as in `sshd`).
    pub client_alive_count_max: u32,
}

impl ServerStackConfig {
    /// The three layers' configurations, checked, with the transport's `SSH_MSG_EXT_INFO`
    /// announcing `server-sig-algs` and `publickey-hostbound@openssh.com` as `userauth` has
    /// them (other extensions the transport config lists are kept after them).
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`](crate::error::LocalMisuse::InvalidConfig) when any layer
    /// refuses its configuration.
    pub fn new(
        mut transport: transport::ServerConfig,
        userauth: userauth::ServerConfig,
        connection: connection::Config,
    ) -> Result<Self, Error> {
        transport.check()?;
        let userauth = Arc::new(userauth);
        userauth::Server::<()>::new(Arc::clone(&userauth), b"", b"")?;
        Connection::new(Side::Server, connection.clone())?;
        let ours = userauth.ext_info_extensions();
        transport.ext_info.retain(|(name, _)| ours.iter().all(|(n, _)| n != name));
        transport.ext_info.splice(0..0, ours);
        Ok(Self {
            transport: Arc::new(transport),
            userauth,
            connection,
            login_grace_time: Some(DEFAULT_LOGIN_GRACE_TIME),
            client_alive_interval: None,
            client_alive_count_max: DEFAULT_ALIVE_COUNT_MAX,
        })
    }

    /// OpenSSH's defaults for every layer, serving `host_keys`: the paved path for a server that
    /// only needs its keys. The secret that keys the per-user failure delay is drawn from `rng`.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`](crate::error::LocalMisuse::InvalidConfig) when there is no
    /// usable host key, or [`Error::Crypto`] when `rng` fails.
    pub fn with_host_keys(
        host_keys: Vec<Arc<dyn HostKeySigner>>,
        rng: &mut dyn SecureRandom,
    ) -> Result<Self, Error> {
        let mut timing_secret = [0; 32];
        rng.fill(&mut timing_secret)?;
        Self::new(
            transport::ServerConfig::new(host_keys),
            userauth::ServerConfig::new(timing_secret),
            connection::Config::default(),
        )
    }

    /// This configuration with user authentication's replaced (for one user's settings, see
    /// [`ServerStack::user_settings`](super::ServerStack::user_settings)); the transport's,
    /// with its `SSH_MSG_EXT_INFO`, stays as it is.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`](crate::error::LocalMisuse::InvalidConfig) when user
    /// authentication refuses `userauth`.
    pub fn with_userauth(&self, userauth: userauth::ServerConfig) -> Result<Self, Error> {
        let userauth = Arc::new(userauth);
        userauth::Server::<()>::new(Arc::clone(&userauth), b"", b"")?;
        Ok(Self { userauth, ..self.clone() })
    }

    /// The transport's configuration (with the derived `SSH_MSG_EXT_INFO`).
    pub fn transport(&self) -> &Arc<transport::ServerConfig> {
        &self.transport
    }

    /// User authentication's configuration.
    pub fn userauth(&self) -> &Arc<userauth::ServerConfig> {
        &self.userauth
    }

    /// The connection layer's configuration.
    pub fn connection(&self) -> &connection::Config {
        &self.connection
    }
}

/// Everything a [`ClientStack`](super::ClientStack) needs, shared by all connections (wrap it in
/// an `Arc`).
#[derive(Clone, Debug)]
pub struct ClientStackConfig {
    transport: Arc<transport::ClientConfig>,
    userauth: Arc<userauth::ClientConfig>,
    connection: connection::Config,
    /// OpenSSH's `ServerAliveInterval`: after this long without a byte from the server, send
    /// `keepalive@openssh.com` (default `None`: never). Only after authentication.
    pub server_alive_interval: Option<Duration>,
    /// OpenSSH's `ServerAliveCountMax`: end the connection when this many probes in a row went
    /// unanswered (default 3; with 0, the first silent interval ends it, as in `ssh`).
    pub server_alive_count_max: u32,
}

impl ClientStackConfig {
    /// The three layers' configurations, checked.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::InvalidConfig`](crate::error::LocalMisuse::InvalidConfig) when the
    /// transport or the connection layer refuses its configuration.
    pub fn new(
        transport: transport::ClientConfig,
        userauth: userauth::ClientConfig,
        connection: connection::Config,
    ) -> Result<Self, Error> {
        transport.check()?;
        Connection::new(Side::Client, connection.clone())?;
        Ok(Self {
            transport: Arc::new(transport),
            userauth: Arc::new(userauth),
            connection,
            server_alive_interval: None,
            server_alive_count_max: DEFAULT_ALIVE_COUNT_MAX,
        })
    }

    /// The transport's configuration.
    pub fn transport(&self) -> &Arc<transport::ClientConfig> {
        &self.transport
    }

    /// User authentication's configuration.
    pub fn userauth(&self) -> &Arc<userauth::ClientConfig> {
        &self.userauth
    }

    /// The connection layer's configuration.
    pub fn connection(&self) -> &connection::Config {
        &self.connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures;
    use crate::userauth::Method;

    fn transport() -> transport::ServerConfig {
        transport::ServerConfig::new(vec![fixtures::ed25519_host_key(1)])
    }

    /// The transport announces user authentication's `server-sig-algs` and host-bound
    /// extension, not its own defaults, and keeps its other extensions after them.
    #[test]
    fn ext_info_comes_from_user_authentication() {
        let mut transport = transport();
        transport.ext_info.push(("x@example.com", b"1".to_vec()));
        let mut userauth = userauth::ServerConfig::new([0; 32]);
        userauth.publickey_algorithms = vec![crate::keys::SignatureAlgorithm::Ed25519];
        let config =
            ServerStackConfig::new(transport, userauth, connection::Config::default()).unwrap();
        let names: Vec<_> =
            config.transport().ext_info.iter().map(|(n, v)| (*n, v.clone())).collect();
        assert_eq!(
            names,
            [
                ("server-sig-algs", b"ssh-ed25519".to_vec()),
                ("publickey-hostbound@openssh.com", b"0".to_vec()),
                ("x@example.com", b"1".to_vec()),
            ]
        );
    }

    /// A layer configuration that its layer would refuse is refused when the stack config is
    /// made, not at the first connection.
    #[test]
    fn refuses_a_layer_config_up_front() {
        let mut userauth = userauth::ServerConfig::new([0; 32]);
        userauth.authentication_methods = vec![vec![Method::None]];
        let refused = ServerStackConfig::new(transport(), userauth, connection::Config::default());
        assert_eq!(refused.err(), Some(crate::error::LocalMisuse::InvalidConfig.into()));
        let window = connection::Config { window_size: 0, ..Default::default() };
        let refused = ClientStackConfig::new(
            transport::ClientConfig::default(),
            userauth::ClientConfig::new(),
            window,
        );
        assert_eq!(refused.err(), Some(crate::error::LocalMisuse::InvalidConfig.into()));
    }
}

//! One connection's settings, which may differ per user: sshd evaluates its `Match` blocks when
//! the first authentication request names the user, and everything they set applies to that
//! connection from then on.

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use twine_core::Deferred;

use super::super::forwarding::ForwardingPolicy;
use super::super::{ConnectionFacts, Offload};
use crate::config::pattern::match_pattern;
use crate::stack::ServerStackConfig;
use crate::transport::RekeyLimits;

/// The most `ChannelTimeout` entries kept (sshd's table is as long as the line).
pub const MAX_CHANNEL_TIMEOUTS: usize = 64;

/// One `ChannelTimeout` entry: channels whose type matches `pattern` are closed after
/// `interval` without data either way.
///
/// Types are sshd's names: the channel types `direct-tcpip`, `direct-streamlocal@openssh.com`,
/// `forwarded-tcpip`, `forwarded-streamlocal@openssh.com`, `agent-connection` and
/// `x11-connection`, and for sessions once they run something `session:shell`,
/// `session:command` and `session:subsystem:NAME` (`session` before that). The pattern `session` matches every session
/// and `*` every channel; `global` is the inactivity of all channels taken together: when no
/// channel has moved data for its interval, every channel is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelTimeout {
    /// A pattern (`*` and `?` wildcards) over channel types, or `global`.
    pub pattern: String,
    /// How long a channel may go without data.
    pub interval: Duration,
}

impl ChannelTimeout {
    /// Parses sshd's `type=interval` (the interval in seconds, or with `s m h d w` units, as
    /// `sshd_config` times are); `None` when it is not one.
    pub fn parse(entry: &str) -> Option<Self> {
        let (pattern, interval) = entry.split_once('=')?;
        if pattern.is_empty() {
            return None;
        }
        let seconds = crate::config::values::parse_time(interval)?;
        Some(Self { pattern: pattern.to_owned(), interval: Duration::from_secs(seconds.into()) })
    }

    /// Whether this entry covers a channel of type `kind` (not `global`).
    pub(super) fn covers(&self, kind: &str) -> bool {
        if self.pattern == "global" {
            return false;
        }
        if self.pattern == "session" && kind.starts_with("session") {
            return true;
        }
        match_pattern(kind, &self.pattern)
    }
}

/// What a connection applies after authentication, and where user authentication's and the
/// keepalive's settings come from.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// The stack's configuration for the rest of the connection (banner, methods,
    /// `MaxAuthTries`, `AuthenticationMethods`, public key algorithms, keepalive); `None` keeps
    /// the server's.
    pub stack: Option<Arc<ServerStackConfig>>,
    /// Which forwardings are allowed.
    pub forwarding: ForwardingPolicy,
    /// sshd's `AcceptEnv`: the `env` requests accepted (globs).
    pub accept_env: Vec<String>,
    /// sshd's `MaxSessions`: session channels open at once.
    pub max_sessions: usize,
    /// sshd's `ChannelTimeout` (at most [`MAX_CHANNEL_TIMEOUTS`] entries are used; the first
    /// entry matching a channel applies).
    pub channel_timeouts: Vec<ChannelTimeout>,
    /// sshd's `UnusedConnectionTimeout`: after authentication, the connection ends when it has
    /// had no channel open for this long (listeners for remote forwardings do not count).
    pub unused_connection_timeout: Option<Duration>,
    /// Rekey limits replacing the transport's for this connection (sshd's `RekeyLimit`);
    /// `None` keeps them.
    pub rekey_limits: Option<RekeyLimits>,
}

impl ConnectionSettings {
    /// sshd's defaults: the server's stack, forwarding as [`ForwardingPolicy::default`],
    /// `AcceptEnv LANG LC_*`, `MaxSessions 10`, no timeouts.
    pub fn new() -> Self {
        Self {
            stack: None,
            forwarding: ForwardingPolicy::default(),
            accept_env: vec!["LANG".into(), "LC_*".into()],
            max_sessions: 10,
            channel_timeouts: Vec::new(),
            unused_connection_timeout: None,
            rekey_limits: None,
        }
    }
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("forwarding", &self.forwarding)
            .field("accept_env", &self.accept_env)
            .field("max_sessions", &self.max_sessions)
            .field("channel_timeouts", &self.channel_timeouts)
            .field("unused_connection_timeout", &self.unused_connection_timeout)
            .field("rekey_limits", &self.rekey_limits)
            .finish_non_exhaustive()
    }
}

/// Decides a connection's settings when its user is known (sshd's `Match` evaluation at the
/// first authentication request). Set it as [`ServerConfig::user_settings`](super::ServerConfig::user_settings);
/// the stack must have [`userauth::ServerConfig::settings_per_user`](crate::userauth::ServerConfig::settings_per_user)
/// on, or it is never asked.
pub trait UserSettings {
    /// The settings for `user` on the connection `facts` describes; `current` is what applies
    /// now (the server's). Slow work (the user database) belongs on `offload`. A failed
    /// answer ends the connection: an error of kind
    /// [`PermissionDenied`](twine_core::error::ErrorKind::PermissionDenied) is the
    /// configuration refusing it, and its context is the disconnect's description the client
    /// reads ("no authentication methods enabled"); any other is the server's failure, logged,
    /// and the client reads "no settings for the user".
    fn settings(
        &self,
        user: &str,
        facts: &Rc<ConnectionFacts>,
        current: &ConnectionSettings,
        offload: &Offload,
    ) -> Deferred<ConnectionSettings>;
}

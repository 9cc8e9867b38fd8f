//! The SSH server adapter: binds the sans-IO stack to twine's reactor, and the backends that
//! decide who logs in and what their sessions run.
//!
//! ```text
//!  ServerFactory ── builds one ServerProtocol per TCP connection (or inetd pipe pair)
//!  ServerProtocol ─ drives conch::stack::ServerStack: input → transmit → timeout → events
//!    ├─ AuthBackend      who may log in: AuthorizedKeys, StaticUsers, TrustOnFirstUse,
//!    │                   PamBackend (feature pam), Chain, your own
//!    ├─ SessionBackend   what a session runs: UnixSessions (shell, exec, subsystem over a pty
//!    │                   or pipes) or InProcessSessions (your Protocol over the channel)
//!    ├─ ChannelTransport an open channel as a twine_core::Transport, with flow control
//!    └─ forwarding       direct-tcpip, tcpip-forward, streamlocal, under ForwardingPolicy
//! ```
//!
//! A server is a [`ServerConfig`] — [`ServerConfig::new`] with the stack's configuration
//! ([`ServerStackConfig`](crate::stack::ServerStackConfig): host keys, algorithms, methods,
//! limits), an auth backend and a session backend, then the public fields for forwarding,
//! `AcceptEnv`, `MaxSessions`, `ChannelTimeout` and `UnusedConnectionTimeout` — given to
//! [`ServerFactory::new`] and `listen_tcp`. A [`UserSettings`] hook in the configuration
//! gives each connection its own [`ConnectionSettings`] once the user is named (sshd's
//! `Match`), stack settings included.
//! `examples/ssh_server.rs` is a whole in-process server in about 40 lines.
//!
//! This is the only server code that touches the reactor. Every slow decision (an auth
//! backend, a connect, a spawned session) is an event out of the stack and a command back in
//! from a later turn of the loop: nothing user-supplied runs while the stack is borrowed.

mod account;
mod agent;
pub mod auth;
mod channel;
mod forwarding;
pub mod privsep;
mod protocol;
mod restrictions;
pub mod session;

pub use account::Account;
pub use auth::{
    AccountStatus, AuthBackend, AuthRequest, AuthorizedKeys, Chain, ConnectionFacts, ConnectionId,
    LoginRequest, Offload, SessionGrant, ShadowPasswords, StaticUsers, TofuVerdict,
    TrustOnFirstUse,
};
#[cfg(feature = "pam")]
pub use auth::{PamBackend, PamConversation, PamDriver, PamPending, PamSession, PamSessionSetup};
pub use channel::ChannelTransport;
pub use forwarding::{AllowForwarding, ForwardingPolicy, GatewayPorts};
pub use protocol::{
    ChannelTimeout, ConnectionSettings, ServerConfig, ServerFactory, ServerProtocol, UserSettings,
    MAX_CHANNEL_TIMEOUTS,
};
pub use restrictions::Restrictions;
pub use session::{
    InProcessSessions, Login, SessionBackend, SessionCommand, SessionControl, SessionInfo,
    SessionSpawner, UnixSessions,
};

use twine_core::Deferred;

/// Runs `f` with `deferred`'s result once it fires (on a later turn of the loop), ending its
/// chain.
pub(crate) fn when_fired<T: 'static>(
    deferred: &Deferred<T>,
    f: impl FnOnce(Result<T, twine_core::Error>) + 'static,
) {
    let _ended: Deferred<()> = deferred.then(move |result| {
        f(result);
        Ok(())
    });
}

//! The SSH client: connect, authenticate, run commands and shells, forward ports — the one
//! place where the client side of the sans-IO stack meets the reactor.
//!
//! ```text
//!  connect(reactor, target, ClientConfig) ──▶ Pending<Connection>
//!     │  TCP to each address in turn (or any transport: ClientProtocol, connect_fd_pair)
//!     │  key exchange ─▶ HostKeyPolicy::check_host_key ─▶ Deferred<bool>
//!     │  userauth: none, then publickey (IdentitySigner::sign), keyboard-interactive and
//!     │  password (Prompter) in the configured order
//!     ▼
//!  Connection ── exec / shell / subsystem / run ──▶ Session (a channel: a twine Transport)
//!             ── direct_tcpip / direct_streamlocal ──▶ a channel as a Transport (-W, -J)
//!             ── forward_local / forward_remote (and _unix) ──▶ channels spliced to sockets
//! ```
//!
//! The pieces: [`ClientConfig`] (user, identities, prompter, host key policy, algorithms,
//! `ConnectTimeout`, `ServerAliveInterval`); [`HostKeyPolicy`] with [`KnownHostsPolicy`]
//! (`StrictHostKeyChecking` yes, ask, accept-new, no), [`PinnedKeys`] and
//! [`dangerous_accept_any`]; [`IdentitySigner`] with [`KeyFile`] and [`InMemoryKey`] (an agent
//! implements it too); [`Prompter`] with [`NoPrompts`] and [`StaticPrompter`]; [`Splice`] to
//! join two transports.
//!
//! Every slow answer is asynchronous: the host key policy, identity signers (a key file's
//! passphrase, an agent) and prompts return twine [`Deferred`](twine_core::Deferred)s, and
//! client operations return [`Pending`] results, which are futures and carry a
//! [`ClientError`] that says what went wrong (`Permission denied (publickey,password).` with
//! the methods left, a refused host key, a refused channel).
//!
//! An open channel **is** a [`twine_core::Transport`]: the protocol given to
//! [`Connection::exec`] or [`Connection::direct_tcpip`] receives the channel in
//! `connection_made`, its data in `data_received`, end of file in `read_connection_lost`, and
//! writes with flow control both ways (see [below](self#flow-control)). A jump host is a
//! [`ClientProtocol`] run over another connection's `direct-tcpip` channel.
//!
//! # Flow control
//!
//! Data from the server is consumed only as the protocol takes it: a protocol that pauses its
//! transport stops the channel's window, and the server stops sending. Data to the server is
//! taken as far as the server's window allows; the rest is buffered and the protocol's
//! registered producer is paused past 64 KiB and resumed once it drained.
//!
//! # Example
//!
//! ```no_run
//! use twine_conch::client::{self, ClientConfig, StrictHostKeyChecking};
//! use twine_core::Reactor;
//!
//! let reactor = Reactor::new()?;
//! let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
//! let config = ClientConfig::new("alice")
//!     .identity_file(home.join(".ssh/id_ed25519"))
//!     .known_hosts(&home.join(".ssh/known_hosts"), StrictHostKeyChecking::Yes);
//! let output = reactor.run_until({
//!     let reactor = reactor.clone();
//!     async move {
//!         let connection = client::connect(&reactor, "example.org".parse()?, config).await?;
//!         Ok(connection.run("echo hello", 1 << 20).await?)
//!     }
//! })?;
//! assert_eq!(output.stdout, b"hello\n");
//! # Ok::<(), twine_core::Error>(())
//! ```

pub mod askpass;
mod channel;
mod config;
mod connect;
mod connection;
mod engine;
mod error;
mod forward;
mod handshake;
mod host_key;
mod identity;
mod pending;
mod prompt;
mod relay;
mod session;
mod stack;

#[cfg(test)]
mod tests;

pub use config::{ClientConfig, DEFAULT_CONNECT_TIMEOUT};
pub use connect::{
    connect, connect_addresses, connect_fd_pair, ClientProtocol, Target, DEFAULT_PORT,
};
pub use connection::Connection;
pub use error::ClientError;
pub use forward::{ForwardHandler, ForwardTarget, LocalForward, RemoteForward};
pub use host_key::{
    dangerous_accept_any, HostKeyPolicy, HostKeyQuery, KnownHostsPolicy, Lookup, PinnedKeys,
    StrictHostKeyChecking,
};
pub use identity::{IdentitySigner, InMemoryKey, KeyFile, PASSPHRASE_ATTEMPTS};
pub use pending::Pending;
pub use prompt::{NoPrompts, PasswordPrompt, Prompter, StaticPrompter, UnknownHostKey};
pub use relay::{Splice, SpliceEnd};
pub use session::{ExitStatus, Output, PtyRequest, Session, SessionBuilder};

pub use crate::connection::msgs::{GlobalReply, GlobalRequest, TerminalModes, WindowSize};
pub use crate::userauth::{InfoRequest, Method, Password, PasswordAnswer};

//! Privilege separation: a root monitor that never parses network data, and unprivileged,
//! sandboxed workers that do, talking over a narrow typed protocol on a socketpair.
//!
//! ```text
//!   monitor (root) ── host keys, account database, authorized_keys, shadow, PAM, sessions
//!      │  Monitor: per-connection phases and limits; a Violation kills the worker
//!      │  codec: length-prefixed, versioned, bounded frames (Request ⇄ Reply)
//!   socketpair
//!      │  MonitorClient: one blocking call at a time
//!   worker (uid ≠ 0, empty chroot, no_new_privs, seccomp) ── sockets, KEX, userauth, channels
//!         MonitorSigner: a HostKeySigner whose private half stays in the monitor
//! ```
//!
//! The codec and the [`Monitor`] are sans-IO and tested byte by byte; [`serve`] and
//! [`MonitorClient`] are their blocking ends. [`Penalties`] is `PerSourcePenalties`, for the
//! listener to feed with worker crashes and authentication failures. The sandbox itself is `twine_core::sandbox`.
//!
//! # In conchd
//!
//! `conchd -o UsePrivilegeSeparation=sandbox` (or `CONCHD_PRIVSEP=sandbox`), started as root,
//! runs this (`bin/conchd/privsep/`): the monitor keeps the host keys, binds the listeners and
//! starts one worker process per core (re-executed conchd, its socketpair end as fd 3, the
//! listeners from fd 4), serving each with [`serve_unix`] over a [`Monitor`] on a thread;
//! the worker builds its reactor, starts its pool threads, and enters
//! `twine_core::sandbox` (empty chroot, `sshd`/`nobody`, `no_new_privs`,
//! `install_worker_seccomp`) before it accepts.
//!
//! - [`SigningScope`]: `ServerProtocol` holds one around handling input and dispatching
//!   events, so [`MonitorSigner`] and a session spawner know their connection
//!   ([`current_connection`]).
//! - The worker's policy reads accounts, `authorized_keys` and passwords through [`hooks`]
//!   that ask the monitor (`LookupUser`, `ReadAuthorizedKeys`, `AuthenticatePassword`); a
//!   public key login is verified again by the monitor (`AuthenticatePublicKey`, with the
//!   signature `userauth::Attempt::PublicKey` carries), and `ConnectionAuthenticated` comes
//!   when the login completes. A certificate is checked by the monitor alone
//!   (`AuthenticateCertificate`: the backend's [`MonitorBackend::check_certificate`], and the
//!   signature with the certified key), its restrictions handed back ([`Reply::Authorized`])
//!   through [`hooks::set_certificate_override`]. The monitor reads `authorized_keys` with the
//!   settings of the `Match` blocks for the user and the connection
//!   ([`MonitorBackend::authorized_keys_for`]; `ConnectionLocalAddress` tells it our end).
//! - The monitor keeps the methods it verified on each connection (a key or certificate, a
//!   password, a PAM conversation), in order, and whether a key forced a command; it accepts
//!   `ConnectionAuthenticated` only when they complete the login's [`LoginRules`]
//!   ([`MonitorBackend::login_rules`]: `AuthenticationMethods`, `PermitRootLogin
//!   forced-commands-only`) and [`MonitorBackend::login_policy`] allows each of them, and
//!   refuses a key whose algorithm the rules do not accept (`PubkeyAcceptedAlgorithms`) or
//!   that already served. A worker's policy logs a signed key ("Accepted publickey",
//!   "Partial publickey", "Failed publickey") only once the monitor has answered.
//! - `hostkeys-prove-00@openssh.com`: [`MonitorSigner`] asks for each proof
//!   (`ProveHostKey`); the monitor builds the signed data from the session id it signed and
//!   signs only with a host key it holds.
//! - Sessions: the worker sends its `SpawnPlan` (`SpawnSession`); the monitor starts it as the
//!   verified user and passes a control socket plus the pty controller or the pipes; the worker
//!   serves them with `Reactor::adopt_foreign_process` (exit status and signals over the
//!   control socket).
//! - `ConnectionPeer` lets the monitor refuse a source (`MonitorBackend::admit`, and
//!   `connection_starting`, which counts the connections not yet logged in over every worker:
//!   conchd's `MaxStartups`, `PerSourceMaxStartups` and penalties); it penalises the sources
//!   of a dead worker's connections ([`PenaltyKind::Crash`]) and of served connections that
//!   closed without logging in (`login_abandoned`: [`PenaltyKind::AuthFail`] if they tried,
//!   [`PenaltyKind::NoAuth`] if not).
//! - PAM (`UsePAM yes`): keyboard-interactive is a conversation the monitor runs on a thread
//!   of its own per connection ([`MonitorBackend::pam_start`], `pam_respond`), each round
//!   relayed to the worker ([`Request::PamStart`], [`Request::PamRespond`],
//!   [`Reply::PamPrompts`]); passwords go through PAM too (`AuthenticatePassword`), and
//!   [`Request::PamAccount`] is PAM's account check for a key login. The monitor holds at
//!   most one conversation per connection, and ends it when the connection authenticates or
//!   closes.
//! - Agent forwarding, a root login's `-R` on a privileged port, and Unix-socket forwarding:
//!   the monitor makes the socket (`ListenAgent`: the user's private `/tmp/ssh-*/agent.<pid>`,
//!   removed when the connection closes; `ListenPrivileged`; `ListenStreamlocal`,
//!   `ConnectStreamlocal`) and passes it back with `SCM_RIGHTS`.

mod channel;
mod codec;
mod monitor;
mod penalty;
#[cfg(test)]
mod tests;

pub use channel::{
    current_connection, serve, serve_unix, ClientError, MonitorClient, MonitorSigner, ServeEnd,
    SigningScope, SystemBackend,
};
pub use codec::{
    CodecError, FrameDecoder, PtyPlan, Reply, Request, SessionPlan, UserRecord,
    MAX_AUTHORIZED_KEYS_LEN, MAX_PAM_PROMPT_LEN, MAX_PAM_RESPONSES, MAX_PAM_TEXT_LEN,
    MAX_REPLY_LEN, MAX_REQUEST_LEN, MAX_USER_LEN, PROTOCOL_VERSION,
};
pub use monitor::{
    Limits, LoginRules, Monitor, MonitorBackend, PamStep, Phase, SpawnedSession, Violation,
    MAX_PRIVILEGED_LISTENERS, REFUSED,
};
/// What a worker points at its monitor before it sandboxes itself: account look-ups,
/// `authorized_keys` contents and password checks.
pub mod hooks {
    pub use crate::server::account::set_lookup_override;
    pub use crate::server::auth::{
        set_account_delegate, set_certificate_override, set_keys_override, set_password_delegate,
    };
    pub use crate::server::forwarding::set_resolver_override;
    pub use crate::server::forwarding::{
        set_agent_listener_override, set_privileged_listener_override,
        set_streamlocal_connector_override, set_streamlocal_listener_override,
    };
}
/// The forwarded agent's socket, made by the monitor for a user ([`MonitorBackend::listen_agent`]).
pub mod agent_socket {
    pub use crate::server::agent::{listen_for, remove};
}
pub use penalty::{Overflow, Penalties, PenaltyConfig, PenaltyKind};

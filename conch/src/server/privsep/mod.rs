//! Privilege separation: a root monitor that never parses network data, and unprivileged,
//! sandboxed workers that do, talking over a narrow typed protocol on a socketpair.
//!
//! ```text
//!   monitor (root) ── host keys, account database, authorized_keys, (PAM, sessions: not yet)
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
//! # Wiring it into conchd (not done yet)
//!
//! 1. When root and `UsePrivilegeSeparation` is on, `main` keeps the host keys, binds the
//!    listeners, and instead of `Acceptor`'s reactor threads spawns one worker *process* per
//!    core (`twine_core::process` with `inherit_fd`: the worker's socketpair end as fd 3, the
//!    listeners from fd 4), re-executing conchd with a worker switch. It runs one thread per
//!    worker doing [`serve_unix`] over a [`Monitor`] with a [`SystemBackend`]; on a
//!    [`ServeEnd::Violation`] or a crash it kills the worker by pid, records
//!    [`PenaltyKind::Crash`] for the sources of that worker's open connections in
//!    [`Penalties`] (checked before accepting), and starts a new worker.
//! 2. The worker builds its `Reactor`, thread pool and `ServerConfig` first, with one
//!    [`MonitorSigner`] per host public key in place of the private keys, then calls
//!    `twine_core::sandbox::enter` (uid `sshd`/`nobody`, an empty root-owned directory such as
//!    `/run/conchd/empty`) before accepting. The seccomp list has no `clone`: every thread
//!    (`defer_to_thread`'s pool) must exist before it.
//! 3. `ServerProtocol` sends `ConnectionOpened`/`ConnectionClosed` and holds a
//!    [`SigningScope`] for its connection around `handle_input`/`drive` (the one hook needed
//!    in `server/protocol`).
//! 4. A worker-side `AuthBackend` asks `LookupUser` and `AuthenticatePublicKey`; for that,
//!    `userauth::Attempt::PublicKey` must also carry the client's signature blob and whether it
//!    was host-bound, so the monitor can verify it itself. Password and keyboard-interactive
//!    (PAM) need `PamStart`/`PamRespond` to be relayed: the monitor answers
//!    [`Reply::Unsupported`] today, so under privilege separation only `publickey` works.
//! 5. A worker-side `SessionBackend` sends `StartSession` with
//!    [`MonitorClient::call_with_fds`]; a [`MonitorBackend::start_session`] for the system
//!    must fork the user's process as root (initgroups, setuid, pty owned by the user, utmp)
//!    with `UnixSessions`' spawner and return the pty master or pipes; the worker adopts them
//!    as the channel's process. Exit statuses need a monitor→worker notification that the
//!    protocol does not have yet.

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
    CodecError, FrameDecoder, PtyPlan, Reply, Request, SessionKind, SessionPlan, UserRecord,
    MAX_AUTHORIZED_KEYS_LEN, MAX_PAM_RESPONSES, MAX_REPLY_LEN, MAX_REQUEST_LEN, MAX_USER_LEN,
    PROTOCOL_VERSION,
};
pub use monitor::{
    Limits, Monitor, MonitorBackend, Phase, SpawnedSession, StartedSession, Violation,
};
/// What a worker points at its monitor before it sandboxes itself: account look-ups,
/// `authorized_keys` contents and password checks.
pub mod hooks {
    pub use crate::server::account::set_lookup_override;
    pub use crate::server::auth::{set_keys_override, set_password_delegate};
}
pub use penalty::{Overflow, Penalties, PenaltyConfig, PenaltyKind};

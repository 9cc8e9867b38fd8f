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

mod channel;
mod codec;
mod monitor;
mod penalty;
#[cfg(test)]
mod tests;

pub use channel::{
    serve, serve_unix, ClientError, MonitorClient, MonitorSigner, ServeEnd, SigningScope,
    SystemBackend,
};
pub use codec::{
    CodecError, FrameDecoder, Reply, Request, SessionKind, UserRecord, MAX_AUTHORIZED_KEYS_LEN,
    MAX_PAM_RESPONSES, MAX_REPLY_LEN, MAX_REQUEST_LEN, MAX_USER_LEN, PROTOCOL_VERSION,
};
pub use monitor::{Limits, Monitor, MonitorBackend, Phase, StartedSession, Violation};
pub use penalty::{Overflow, Penalties, PenaltyConfig, PenaltyKind};

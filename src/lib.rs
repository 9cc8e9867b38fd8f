//! twine: a networking framework in the lineage of Twisted, with Conch, a complete SSHv2 suite.
//!
//! ```text
//!  bin/ conch (client)   conchd (server)   ckeygen (keys)        users' programs
//!  ──────────────────────────────────────────────────────────────────────────
//!  twine::conch     SSHv2: wire, crypto, keys, transport, userauth, connection,
//!                   and the server/client adapters that bind them to the reactor
//!  ──────────────────────────────────────────────────────────────────────────
//!  twine::internet  the reactor: TCP, UDP, Unix sockets, timers, threads,
//!                   processes, signals, flow control, line protocols, test kit
//! ```
//!
//! `twine::internet` is the crate `twine-core`; `twine::conch` is the crate `twine-conch`.
#![forbid(unsafe_code)]

pub use twine_conch as conch;
pub use twine_core as internet;

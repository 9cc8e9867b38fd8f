//! The test kit: drive protocols without sockets and without waiting (Twisted's
//! `internet.testing` and `iosim`).
//!
//! - [`StringTransport`]: a [`Transport`](crate::Transport) that records what is written and
//!   what was requested (`lose_connection`, `write_eof`, producers).
//! - [`Clock`]: a [`Scheduler`](crate::time::Scheduler) whose time moves only when told
//!   ([`Clock::advance`]).
//! - [`MemoryReactor`]: records `listen_tcp` and `connect_tcp` requests (a
//!   [`TcpReactor`](crate::reactor::TcpReactor)) and keeps a `Clock`.
//! - [`IoPump`]: two protocols wired back to back through string transports; `flush` moves
//!   bytes until both are quiet, in chunks of a chosen size, for a bounded number of rounds.
//!
//! Public behind the `testing` feature; always built for this crate's own tests. The methods
//! that are not transport or scheduler methods (`value`, `advance`, ...) exist for tests only.

mod clock;
mod io_pump;
mod memory_reactor;
mod string_transport;

pub use clock::Clock;
pub use io_pump::IoPump;
pub use memory_reactor::{MemoryReactor, TcpClientRecord, TcpServerRecord};
pub use string_transport::StringTransport;

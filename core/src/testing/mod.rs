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
//! - [`deliver`]: hands bytes to a protocol as a stream does, through its lent buffer
//!   ([`Protocol::receive_into`]) when it lends one.
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

use crate::protocol::Protocol;

/// Hands `data` to `protocol` as the reactor's streams do, in reads of at most `chunk` bytes
/// (at least 1): into the buffer it lends ([`Protocol::receive_into`]) when it lends one, else
/// with [`data_received`](Protocol::data_received). Returns how many bytes it took: fewer than
/// `data.len()` only when the protocol lent an empty buffer (a stream pauses reading there).
pub fn deliver(protocol: &mut dyn Protocol, data: &[u8], chunk: usize) -> usize {
    let chunk = chunk.max(1);
    let mut taken = 0;
    while let Some(rest) = data.get(taken..).filter(|rest| !rest.is_empty()) {
        let piece = rest.get(..chunk.min(rest.len())).unwrap_or_default();
        let mut copied = None;
        let lent = protocol.receive_into(piece.len(), &mut |space: &mut [u8]| {
            let n = space.len().min(piece.len());
            if let (Some(into), Some(from)) = (space.get_mut(..n), piece.get(..n)) {
                into.copy_from_slice(from);
            }
            copied = Some(n);
            n
        });
        match (lent, copied) {
            (true, Some(0)) => break,
            (true, Some(n)) => taken += n,
            _ => {
                protocol.data_received(piece);
                taken += piece.len();
            }
        }
    }
    taken
}

//! [`Splice`]: two transports joined back to back (a forwarded TCP connection and its channel,
//! standard input and output and a `direct-tcpip` channel for `ssh -W`): what one receives the
//! other sends, with flow control both ways and half-closes passed on.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use twine_core::error::Reason;
use twine_core::protocol::{HalfClose, PushProducer};
use twine_core::{Protocol, Transport};

/// The two ends; an end is `None` until its transport is made, and after it is lost.
#[derive(Default)]
struct Ends {
    ends: [Option<Rc<dyn Transport>>; 2],
    /// An end was lost, or the link failed before both were up.
    broken: bool,
}

/// Joins two transports: run [`end`](Self::end)`(0)` as the protocol of one and `end(1)` as
/// the protocol of the other, in either order. Until both are up, the first one's reading is
/// paused; then each pauses the other when its write buffer fills, an end of file on one is
/// passed to the other as `write_eof`, and when one is lost the other is closed.
///
/// ```no_run
/// # use twine_conch::client::{Connection, Splice};
/// # #[allow(dead_code)]
/// # fn jump(reactor: &twine_core::Reactor, connection: &Connection,
/// #         read: std::os::fd::OwnedFd, write: std::os::fd::OwnedFd) -> Result<(), twine_core::Error> {
/// // ssh -W db.internal:5432: standard input and output spliced to a direct-tcpip channel.
/// let splice = Splice::new();
/// reactor.adopt_fd_pair(read, write, splice.end(0))?;
/// let _channel = connection.direct_tcpip("db.internal", 5432, splice.end(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Splice {
    ends: Rc<RefCell<Ends>>,
}

impl Splice {
    /// A splice with neither end up.
    pub fn new() -> Self {
        Self::default()
    }

    /// The protocol for side 0 or 1 (any other number means `side % 2`).
    pub fn end(&self, side: usize) -> SpliceEnd {
        SpliceEnd { link: self.clone(), side: side & 1 }
    }

    /// One end could not be made (the channel was refused, the connect failed): the other is
    /// closed.
    pub fn fail(&self) {
        let ends = {
            let mut state = self.ends.borrow_mut();
            state.broken = true;
            std::mem::take(&mut state.ends)
        };
        for end in ends.into_iter().flatten() {
            end.lose_connection();
        }
    }

    fn other(&self, side: usize) -> Option<Rc<dyn Transport>> {
        self.ends.borrow().ends.get(1 - side).cloned().flatten()
    }
}

/// One side's protocol of a [`Splice`].
pub struct SpliceEnd {
    link: Splice,
    side: usize,
}

impl fmt::Debug for Splice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ends = self.ends.borrow();
        f.debug_struct("Splice")
            .field("up", &ends.ends.iter().filter(|end| end.is_some()).count())
            .field("broken", &ends.broken)
            .finish()
    }
}

impl fmt::Debug for SpliceEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpliceEnd").field("side", &self.side).finish_non_exhaustive()
    }
}

impl Protocol for SpliceEnd {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let other = {
            let mut state = self.link.ends.borrow_mut();
            if state.broken {
                drop(state);
                transport.lose_connection();
                return;
            }
            if let Some(slot) = state.ends.get_mut(self.side) {
                *slot = Some(Rc::clone(&transport));
            }
            state.ends.get(1 - self.side).cloned().flatten()
        };
        let Some(other) = other else {
            // Hold this end's data until the other end is up.
            transport.pause_producing();
            return;
        };
        // Each end pauses the other when its write buffer fills.
        let this_producer: Rc<dyn PushProducer> = Rc::new(Rc::clone(&transport));
        let other_producer: Rc<dyn PushProducer> = Rc::new(Rc::clone(&other));
        other.register_producer(this_producer);
        transport.register_producer(other_producer);
        other.resume_producing();
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(other) = self.link.other(self.side) {
            other.write(data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        match self.link.other(self.side) {
            Some(other) => {
                other.write_eof();
                HalfClose::KeepWriting
            }
            None => HalfClose::LoseConnection,
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("forwarded connection end {} lost: {reason}", self.side);
        let other = {
            let mut state = self.link.ends.borrow_mut();
            state.broken = true;
            if let Some(slot) = state.ends.get_mut(self.side) {
                *slot = None;
            }
            state.ends.get_mut(1 - self.side).and_then(Option::take)
        };
        if let Some(other) = other {
            other.unregister_producer();
            other.lose_connection();
        }
    }
}

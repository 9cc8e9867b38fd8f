//! The outgoing payload queue: one reusable buffer of length-prefixed payloads.

use crate::wire::{Reader, Writer};

/// Compact the buffer once this many consumed bytes sit before the first queued payload (and
/// they are more than half the buffer), so that a queue that never empties does not grow.
const COMPACT_AFTER: usize = 64 * 1024;

/// Payloads waiting for [`super::Connection::poll_payload`], in the order they were produced.
///
/// Each payload is stored as a `uint32` length and its bytes in one `Vec<u8>` that keeps its
/// capacity: once the buffer has grown to the queue's high-water mark, queuing and polling
/// allocate nothing.
#[derive(Debug, Default)]
pub(super) struct OutQueue {
    buf: Vec<u8>,
    start: usize,
}

impl OutQueue {
    /// Appends one payload, written by `f`.
    pub(super) fn push(&mut self, f: impl FnOnce(&mut Writer<'_>)) {
        Writer::new(&mut self.buf).write_prefixed(f);
    }

    /// Moves the oldest payload to the end of `out`; `false` if the queue is empty.
    pub(super) fn pop_into(&mut self, out: &mut Vec<u8>) -> bool {
        self.pop_with(|payload| out.extend_from_slice(payload)).is_some()
    }

    /// Lends the oldest payload to `f` and removes it (no copy); `None` if the queue is empty.
    pub(super) fn pop_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let queued = self.buf.get(self.start..)?;
        let mut r = Reader::new(queued);
        let payload = r.read_string().ok()?;
        let len = payload.len();
        let result = f(payload);
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > COMPACT_AFTER && self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Some(result)
    }

    /// Bytes queued, counting each payload's 4-byte length.
    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads come out whole and in order, and an emptied queue starts over at the front.
    #[test]
    fn pops_payloads_in_order() {
        let mut q = OutQueue::default();
        q.push(|w| {
            w.write_raw(b"one");
        });
        q.push(|w| {
            w.write_raw(b"");
        });
        q.push(|w| {
            w.write_raw(b"three");
        });
        assert_eq!(q.len(), 4 + 3 + 4 + 4 + 5);
        let mut out = Vec::new();
        assert!(q.pop_into(&mut out));
        assert_eq!(out, b"one");
        out.clear();
        assert!(q.pop_into(&mut out));
        assert_eq!(out, b"");
        assert!(q.pop_into(&mut out));
        assert_eq!(out, b"three");
        assert!(!q.pop_into(&mut out));
        assert_eq!(q.len(), 0);
        assert_eq!(q.start, 0);
    }

    /// A queue that is never drained to empty still reclaims the space of payloads taken out.
    #[test]
    fn compacts_a_queue_that_never_empties() {
        let mut q = OutQueue::default();
        let chunk = [7u8; 1000];
        let mut out = Vec::new();
        q.push(|w| {
            w.write_raw(&chunk);
        });
        for _ in 0..1000 {
            q.push(|w| {
                w.write_raw(&chunk);
            });
            out.clear();
            assert!(q.pop_into(&mut out));
            assert_eq!(out, chunk);
        }
        assert!(q.buf.len() <= 2 * COMPACT_AFTER + 2 * 1004, "{}", q.buf.len());
    }

    /// A payload lent to the caller is the next one in order and is gone afterwards.
    #[test]
    fn a_lent_payload_comes_in_order_and_is_removed() {
        let mut q = OutQueue::default();
        q.push(|w| {
            w.write_raw(b"one");
        });
        q.push(|w| {
            w.write_raw(b"two");
        });
        assert_eq!(q.pop_with(<[u8]>::to_vec), Some(b"one".to_vec()));
        assert_eq!(q.len(), 4 + 3);
        assert_eq!(q.pop_with(<[u8]>::to_vec), Some(b"two".to_vec()));
        assert_eq!(q.pop_with(<[u8]>::to_vec), None);
        assert_eq!(q.len(), 0);
    }
}

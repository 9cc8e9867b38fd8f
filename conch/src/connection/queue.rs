//! The outgoing payload queue: one reusable buffer of length-prefixed payloads.

use crate::wire::{Reader, Writer};

/// Payloads waiting for [`super::Connection::poll_payload`], in the order they were produced.
///
/// Each payload is stored as a `uint32` length and its bytes. Payloads are appended to `back`
/// and taken from `front`; when `front` runs out the two buffers trade places. So a queue that
/// never empties (a bulk transfer) moves no byte to make room, and both buffers keep their
/// capacity: once they have grown to the queue's high-water mark, queuing and polling
/// allocate nothing.
#[derive(Debug, Default)]
pub(super) struct OutQueue {
    front: Vec<u8>,
    /// The first byte of `front` not taken yet.
    start: usize,
    back: Vec<u8>,
}

impl OutQueue {
    /// Appends one payload, written by `f`.
    pub(super) fn push(&mut self, f: impl FnOnce(&mut Writer<'_>)) {
        Writer::new(&mut self.back).write_prefixed(f);
    }

    /// Moves the oldest payload to the end of `out`; `false` if the queue is empty.
    pub(super) fn pop_into(&mut self, out: &mut Vec<u8>) -> bool {
        self.pop_with(|payload| out.extend_from_slice(payload)).is_some()
    }

    /// Lends the oldest payload to `f` and removes it (no copy); `None` if the queue is empty.
    pub(super) fn pop_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.start >= self.front.len() {
            if self.back.is_empty() {
                return None;
            }
            std::mem::swap(&mut self.front, &mut self.back);
            self.back.clear();
            self.start = 0;
        }
        let queued = self.front.get(self.start..)?;
        let mut r = Reader::new(queued);
        let payload = r.read_string().ok()?;
        let len = payload.len();
        let result = f(payload);
        self.start += 4 + len;
        if self.start >= self.front.len() {
            self.front.clear();
            self.start = 0;
        }
        Some(result)
    }

    /// Bytes queued, counting each payload's 4-byte length.
    pub(super) fn len(&self) -> usize {
        self.front.len() - self.start + self.back.len()
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
        assert!(q.front.is_empty() && q.back.is_empty());
    }

    /// A queue that is never drained to empty still reclaims the space of payloads taken out,
    /// without moving the payloads still queued.
    #[test]
    fn a_queue_that_never_empties_reuses_its_space() {
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
        assert!(q.front.capacity() + q.back.capacity() <= 4 * 1004, "{q:?}");
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

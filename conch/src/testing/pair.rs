//! A client and a server transport wired back to back in memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SeededRandom;
use crate::error::Error;
use crate::transport::{ClientConfig, Event, ServerConfig, Transport};

/// The most steps [`Pair::drive`] takes before deciding the two sides will never go quiet.
const MAX_STEPS: usize = 100_000;

/// One direction of the in-memory connection, with fault injection.
///
/// Positions count every byte the sender wrote into this direction since the start, so a
/// test can aim a fault at "the byte after the handshake" by reading [`Link::position`] first.
#[derive(Debug, Default)]
pub struct Link {
    in_flight: Vec<u8>,
    read: usize,
    written: u64,
    chunk: Option<usize>,
    flips: Vec<(u64, u8)>,
    truncate_at: Option<u64>,
    dropping: bool,
    eof_delivered: bool,
}

impl Link {
    /// Delivers at most `size` bytes per `handle_input` call (`Some(1)`: one byte at a time);
    /// `None` delivers everything at once.
    pub fn set_chunk_size(&mut self, size: Option<usize>) {
        self.chunk = size.map(|s| s.max(1));
    }

    /// XORs `mask` into the byte at stream position `position` when it is written.
    pub fn flip_bit(&mut self, position: u64, mask: u8) {
        self.flips.push((position, mask));
    }

    /// Ends the stream at `position`: later bytes are lost, and the receiver sees end of
    /// stream once the earlier ones are delivered.
    pub fn truncate_at(&mut self, position: u64) {
        self.truncate_at = Some(position);
    }

    /// Loses everything written from now on, without ending the stream.
    pub fn drop_rest(&mut self) {
        self.dropping = true;
    }

    /// Puts raw bytes on the wire as if the sender had written them now.
    pub fn inject(&mut self, bytes: &[u8]) {
        self.accept(bytes);
    }

    /// The stream position of the next byte the sender writes.
    pub fn position(&self) -> u64 {
        self.written
    }

    /// Bytes written and not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len() - self.read
    }

    pub(super) fn accept(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let position = self.written;
            self.written += 1;
            if self.dropping || self.truncate_at.is_some_and(|at| position >= at) {
                continue;
            }
            let mask =
                self.flips.iter().filter(|(at, _)| *at == position).fold(0, |m, (_, b)| m ^ b);
            self.in_flight.push(byte ^ mask);
        }
    }

    pub(super) fn is_truncated(&self) -> bool {
        self.truncate_at.is_some_and(|at| self.written >= at)
    }

    /// Delivers in-flight bytes through `input`, one chunk at a time, each no larger than
    /// `capacity` says the receiver takes; a closed receiver (`closed`) swallows the rest.
    /// Returns whether any byte moved. (The whole-stack pair delivers this way.)
    pub(super) fn deliver_with<T>(
        &mut self,
        to: &mut T,
        capacity: impl Fn(&T) -> usize,
        closed: impl Fn(&T) -> bool,
        mut input: impl FnMut(&mut T, &[u8]),
    ) -> bool {
        let mut moved = false;
        while self.read < self.in_flight.len() {
            let available = self.in_flight.len() - self.read;
            let n = available.min(self.chunk.unwrap_or(available)).min(capacity(to));
            if n == 0 {
                if closed(to) {
                    self.read = self.in_flight.len();
                }
                break;
            }
            input(to, &self.in_flight[self.read..self.read + n]);
            self.read += n;
            moved = true;
        }
        if self.read == self.in_flight.len() {
            self.in_flight.clear();
            self.read = 0;
        }
        moved
    }

    /// Whether end of stream should now reach the receiver: the sender is done (`sender_done`)
    /// or the link was truncated, and everything before was delivered. True once.
    pub(super) fn take_end_of_stream(&mut self, sender_done: bool) -> bool {
        let ended = (sender_done || self.is_truncated()) && self.in_flight() == 0;
        if !ended || self.eof_delivered {
            return false;
        }
        self.eof_delivered = true;
        true
    }

    /// Delivers in-flight bytes to `to`, one chunk per `handle_input`, collecting what each
    /// chunk produces. Returns whether any byte moved.
    fn deliver(
        &mut self,
        to: &mut Transport,
        now: Instant,
        inbox: &mut Inbox,
        host_key_decision: Option<bool>,
    ) -> bool {
        let mut moved = false;
        while self.read < self.in_flight.len() {
            let available = self.in_flight.len() - self.read;
            let n = available.min(self.chunk.unwrap_or(available)).min(to.input_capacity());
            if n == 0 {
                if to.is_closed() {
                    self.read = self.in_flight.len();
                }
                break;
            }
            let _ = to.handle_input(now, &self.in_flight[self.read..self.read + n]);
            self.read += n;
            moved = true;
            inbox.collect(to, host_key_decision);
        }
        if self.read == self.in_flight.len() {
            self.in_flight.clear();
            self.read = 0;
        }
        moved
    }
}

/// What one side received: payloads and events, in order.
#[derive(Debug, Default)]
struct Inbox {
    payloads: VecDeque<Vec<u8>>,
    events: Vec<Event>,
}

impl Inbox {
    /// Polls payloads and events until both run dry, answering host key questions.
    fn collect(&mut self, t: &mut Transport, host_key_decision: Option<bool>) -> bool {
        let mut any = false;
        loop {
            let mut got = false;
            let mut buf = Vec::new();
            while t.poll_payload(&mut buf).is_some() {
                self.payloads.push_back(std::mem::take(&mut buf));
                got = true;
            }
            while let Some(event) = t.poll_event() {
                if let (Event::HostKeyReceived { .. }, Some(accept)) = (&event, host_key_decision) {
                    let _ = t.host_key_decided(accept);
                }
                self.events.push(event);
                got = true;
            }
            if !got {
                return any;
            }
            any = true;
        }
    }
}

/// A client and a server [`Transport`] talking through two [`Link`]s, with a virtual clock.
///
/// [`Pair::drive`] moves bytes both ways until neither side has anything more to say;
/// payloads and events each side received collect in its inbox. Time only moves when a test
/// calls [`Pair::advance`].
///
/// The inboxes take payloads as fast as they come, which suits tests of the transport. A layer
/// that must act on each payload before the next is decoded (switching on delayed compression
/// at `USERAUTH_SUCCESS`) drives the two transports itself, as `conch/src/tests/stack.rs`
/// does.
#[derive(Debug)]
pub struct Pair {
    /// The client.
    pub client: Transport,
    /// The server.
    pub server: Transport,
    /// Client to server.
    pub to_server: Link,
    /// Server to client.
    pub to_client: Link,
    /// The virtual current time.
    pub time: Instant,
    /// The client's answer when it reports [`Event::HostKeyReceived`]: accept (the default),
    /// refuse, or `None` to leave the question for the test to answer with
    /// [`Transport::host_key_decided`].
    pub host_key_decision: Option<bool>,
    client_inbox: Inbox,
    server_inbox: Inbox,
    buf: Vec<u8>,
}

impl Pair {
    /// A pair with fixed seeds for both sides.
    ///
    /// # Panics
    ///
    /// If either configuration is refused.
    pub fn new(client: ClientConfig, server: ServerConfig) -> Self {
        Self::with_seed(client, server, 1)
    }

    /// A pair whose randomness comes from `seed` (and `seed + 1` for the server).
    ///
    /// # Panics
    ///
    /// If either configuration is refused.
    pub fn with_seed(client: ClientConfig, server: ServerConfig, seed: u64) -> Self {
        #[allow(clippy::expect_used)] // the test kit: a refused config is a broken test
        let client = Transport::client(Arc::new(client), Box::new(SeededRandom::new(seed)))
            .expect("client config refused");
        #[allow(clippy::expect_used)]
        let server = Transport::server(Arc::new(server), Box::new(SeededRandom::new(seed + 1)))
            .expect("server config refused");
        Self::from_transports(client, server)
    }

    /// A pair from two transports built by the test.
    pub fn from_transports(client: Transport, server: Transport) -> Self {
        Self {
            client,
            server,
            to_server: Link::default(),
            to_client: Link::default(),
            time: Instant::now(),
            host_key_decision: Some(true),
            client_inbox: Inbox::default(),
            server_inbox: Inbox::default(),
            buf: Vec::new(),
        }
    }

    /// Sets the delivery chunk size of both directions.
    pub fn set_chunk_size(&mut self, size: Option<usize>) {
        self.to_server.set_chunk_size(size);
        self.to_client.set_chunk_size(size);
    }

    /// One round: each side's payloads and events are collected, its output goes on its link,
    /// and each link delivers to the other side; a side that closed and whose output is all
    /// delivered (or a truncated link) gives the other side end of stream. Returns whether
    /// anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.time;
        let accept = self.host_key_decision;
        let mut progress = self.client_inbox.collect(&mut self.client, accept);
        progress |= self.server_inbox.collect(&mut self.server, accept);
        self.client.poll_transmit(&mut self.buf);
        if !self.buf.is_empty() {
            self.to_server.accept(&self.buf);
            self.buf.clear();
            progress = true;
        }
        self.server.poll_transmit(&mut self.buf);
        if !self.buf.is_empty() {
            self.to_client.accept(&self.buf);
            self.buf.clear();
            progress = true;
        }
        progress |= self.to_server.deliver(&mut self.server, now, &mut self.server_inbox, accept);
        progress |= self.to_client.deliver(&mut self.client, now, &mut self.client_inbox, accept);
        progress |= end_of_stream(
            &self.client,
            &mut self.to_server,
            &mut self.server,
            now,
            &mut self.server_inbox,
        );
        progress |= end_of_stream(
            &self.server,
            &mut self.to_client,
            &mut self.client,
            now,
            &mut self.client_inbox,
        );
        progress
    }

    /// Steps until nothing happens.
    ///
    /// # Panics
    ///
    /// If the sides are still talking after 100 000 steps.
    pub fn drive(&mut self) {
        assert!(self.drive_bounded(MAX_STEPS), "pair still busy after {MAX_STEPS} steps");
    }

    /// Steps until nothing happens or `max_steps` have run; returns whether it went quiet.
    pub fn drive_bounded(&mut self, max_steps: usize) -> bool {
        (0..max_steps).any(|_| !self.step())
    }

    /// Moves the virtual clock forward and lets both sides handle their timers.
    pub fn advance(&mut self, by: Duration) {
        self.time += by;
        self.client.handle_timeout(self.time);
        self.server.handle_timeout(self.time);
    }

    /// Drives the handshake to completion.
    ///
    /// # Panics
    ///
    /// If either side is not established afterwards.
    pub fn handshake(&mut self) {
        self.drive();
        assert!(
            self.client.is_established() && self.server.is_established(),
            "handshake failed: client {:?}, server {:?}",
            self.client_error(),
            self.server_error()
        );
    }

    /// The payloads the client received and no test has taken yet.
    pub fn client_payloads(&mut self) -> &mut VecDeque<Vec<u8>> {
        &mut self.client_inbox.payloads
    }

    /// The payloads the server received and no test has taken yet.
    pub fn server_payloads(&mut self) -> &mut VecDeque<Vec<u8>> {
        &mut self.server_inbox.payloads
    }

    /// Every event the client reported.
    pub fn client_events(&self) -> &[Event] {
        &self.client_inbox.events
    }

    /// Every event the server reported.
    pub fn server_events(&self) -> &[Event] {
        &self.server_inbox.events
    }

    /// The error the client's connection ended with, if it ended.
    pub fn client_error(&self) -> Option<&Error> {
        disconnect_error(&self.client_inbox.events)
    }

    /// The error the server's connection ended with, if it ended.
    pub fn server_error(&self) -> Option<&Error> {
        disconnect_error(&self.server_inbox.events)
    }
}

/// Gives `to` end of stream once `from` has closed (or the link was truncated) and everything
/// before it was delivered.
fn end_of_stream(
    from: &Transport,
    link: &mut Link,
    to: &mut Transport,
    now: Instant,
    inbox: &mut Inbox,
) -> bool {
    let ended = ((from.is_closed() && from.send_queue_len() == 0) || link.is_truncated())
        && link.in_flight() == 0;
    if !ended || link.eof_delivered || to.is_closed() {
        return false;
    }
    link.eof_delivered = true;
    to.handle_eof(now);
    inbox.collect(to, None);
    true
}

fn disconnect_error(events: &[Event]) -> Option<&Error> {
    events.iter().find_map(|e| match e {
        Event::Disconnected { error, .. } => Some(error),
        _ => None,
    })
}

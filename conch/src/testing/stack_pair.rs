//! A client and a server stack wired back to back in memory.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Link, SeededRandom};
use crate::error::{Error, Initiator};
use crate::stack::{
    ClientEvent, ClientStack, ClientStackConfig, ServerEvent, ServerStack, ServerStackConfig,
};
use crate::transport;
use crate::userauth::{self, Attempt, Decision};

/// The most steps [`StackPair::drive`] takes before deciding the two sides will never go quiet.
const MAX_STEPS: usize = 100_000;

/// Answers a server's authentication question as it is asked: the login name (without
/// `:style`) and the attempt in, a decision out (`None` leaves it for the test to answer with
/// [`ServerStack::auth_decided`]).
pub type Decider<R> = Box<dyn FnMut(&str, &Attempt) -> Option<Decision<R>>>;

/// Answers a client's authentication question as it is asked, through the client's user
/// authentication (`password_ready`, `signature_ready`, `info_responses_ready`).
pub type Answerer = Box<dyn FnMut(&userauth::ClientEvent, &mut userauth::Client)>;

/// A [`ClientStack`] and a [`ServerStack`] talking through two [`Link`]s, with a virtual clock
/// and optional answerers for the questions each side asks.
///
/// [`StackPair::step`] polls both sides' events (answering host key and authentication
/// questions when told how), moves their output onto the links and delivers it (in the links'
/// chunk sizes, within each side's input capacity); a side that closed gives the other end of
/// stream once its last bytes are delivered. Time only moves when a test calls
/// [`StackPair::advance`].
pub struct StackPair<R = ()> {
    /// The client.
    pub client: ClientStack,
    /// The server.
    pub server: ServerStack<R>,
    /// Client to server.
    pub to_server: Link,
    /// Server to client.
    pub to_client: Link,
    /// The virtual current time.
    pub time: Instant,
    /// The client's answer to the server's host key: accept (the default), refuse, or `None`
    /// to leave it for the test.
    pub host_key_decision: Option<bool>,
    /// The server's backend, if the pair should answer for it.
    pub decider: Option<Decider<R>>,
    /// The client's user, if the pair should answer for them.
    pub answerer: Option<Answerer>,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent<R>>,
    buf: Vec<u8>,
}

impl<R> StackPair<R> {
    /// A pair with fixed seeds, the client logging in as `user`.
    ///
    /// # Panics
    ///
    /// If either stack refuses its configuration.
    pub fn new(client: ClientStackConfig, server: ServerStackConfig, user: &str) -> Self {
        Self::with_seed(client, server, user, 1)
    }

    /// A pair whose randomness comes from `seed` (and `seed + 1` for the server).
    ///
    /// # Panics
    ///
    /// If either stack refuses its configuration.
    pub fn with_seed(
        client: ClientStackConfig,
        server: ServerStackConfig,
        user: &str,
        seed: u64,
    ) -> Self {
        #[allow(clippy::expect_used)] // the test kit: a refused config is a broken test
        let client = ClientStack::new(Arc::new(client), user, Box::new(SeededRandom::new(seed)))
            .expect("client stack refused its config");
        #[allow(clippy::expect_used)]
        let server = ServerStack::new(Arc::new(server), Box::new(SeededRandom::new(seed + 1)))
            .expect("server stack refused its config");
        Self::from_stacks(client, server)
    }

    /// A pair from two stacks built by the test.
    pub fn from_stacks(client: ClientStack, server: ServerStack<R>) -> Self {
        Self {
            client,
            server,
            to_server: Link::default(),
            to_client: Link::default(),
            time: Instant::now(),
            host_key_decision: Some(true),
            decider: None,
            answerer: None,
            client_events: Vec::new(),
            server_events: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Sets the delivery chunk size of both directions (`Some(1)`: one byte at a time).
    pub fn set_chunk_size(&mut self, size: Option<usize>) {
        self.to_server.set_chunk_size(size);
        self.to_client.set_chunk_size(size);
    }

    /// One round; returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.time;
        let mut progress = self.collect();
        self.client.poll_transmit(now, &mut self.buf);
        if !self.buf.is_empty() {
            self.to_server.accept(&self.buf);
            self.buf.clear();
            progress = true;
        }
        self.server.poll_transmit(now, &mut self.buf);
        if !self.buf.is_empty() {
            self.to_client.accept(&self.buf);
            self.buf.clear();
            progress = true;
        }
        progress |= self.to_server.deliver_with(
            &mut self.server,
            ServerStack::input_capacity,
            ServerStack::is_closed,
            |s, bytes| {
                let _ = s.handle_input(now, bytes);
            },
        );
        progress |= self.to_client.deliver_with(
            &mut self.client,
            ClientStack::input_capacity,
            ClientStack::is_closed,
            |c, bytes| {
                let _ = c.handle_input(now, bytes);
            },
        );
        let client_done = self.client.is_closed() && self.client.transport().send_queue_len() == 0;
        if self.to_server.take_end_of_stream(client_done) && !self.server.is_closed() {
            self.server.handle_eof(now);
            progress = true;
        }
        let server_done = self.server.is_closed() && self.server.transport().send_queue_len() == 0;
        if self.to_client.take_end_of_stream(server_done) && !self.client.is_closed() {
            self.client.handle_eof(now);
            progress = true;
        }
        progress |= self.collect();
        progress
    }

    /// Steps until nothing happens.
    ///
    /// # Panics
    ///
    /// If the sides are still talking after 100 000 steps.
    pub fn drive(&mut self) {
        assert!(self.drive_bounded(MAX_STEPS), "stack pair still busy after {MAX_STEPS} steps");
    }

    /// Steps until nothing happens or `max_steps` have run; returns whether it went quiet.
    pub fn drive_bounded(&mut self, max_steps: usize) -> bool {
        (0..max_steps).any(|_| !self.step())
    }

    /// Moves the virtual clock forward by `by`, lets each side whose timer is due handle it,
    /// and drives.
    pub fn advance(&mut self, by: Duration) {
        self.time += by;
        self.fire_timers();
        self.drive();
    }

    /// Moves the virtual clock to the earlier of the two sides' timers (if any is set), fires
    /// it and drives; returns the instant, or `None` when neither side has a timer.
    pub fn advance_to_next_timer(&mut self) -> Option<Instant> {
        let next =
            [self.client.poll_timeout(), self.server.poll_timeout()].into_iter().flatten().min()?;
        self.time = self.time.max(next);
        self.fire_timers();
        self.drive();
        Some(next)
    }

    /// Every event the client reported so far.
    pub fn client_events(&self) -> &[ClientEvent] {
        &self.client_events
    }

    /// Every event the server reported so far.
    pub fn server_events(&self) -> &[ServerEvent<R>] {
        &self.server_events
    }

    /// Takes the client's events reported so far.
    pub fn take_client_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.client_events)
    }

    /// Takes the server's events reported so far.
    pub fn take_server_events(&mut self) -> Vec<ServerEvent<R>> {
        std::mem::take(&mut self.server_events)
    }

    /// How the client's connection ended, if it did: its `Closed` event's error and initiator.
    pub fn client_closed(&self) -> Option<(Option<&Error>, Initiator)> {
        self.client_events.iter().find_map(|e| match e {
            ClientEvent::Closed { error, initiator } => Some((error.as_ref(), *initiator)),
            _ => None,
        })
    }

    /// How the server's connection ended, if it did.
    pub fn server_closed(&self) -> Option<(Option<&Error>, Initiator)> {
        self.server_events.iter().find_map(|e| match e {
            ServerEvent::Closed { error, initiator } => Some((error.as_ref(), *initiator)),
            _ => None,
        })
    }

    fn fire_timers(&mut self) {
        let now = self.time;
        if self.client.poll_timeout().is_some_and(|at| at <= now) {
            self.client.handle_timeout(now);
        }
        if self.server.poll_timeout().is_some_and(|at| at <= now) {
            self.server.handle_timeout(now);
        }
    }

    /// Polls both sides' events, answering the questions the pair was told how to answer.
    fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.client.poll_event() {
            any = true;
            match &event {
                ClientEvent::Transport(transport::Event::HostKeyReceived { .. }) => {
                    if let Some(accept) = self.host_key_decision {
                        let _ = self.client.host_key_decided(self.time, accept);
                    }
                }
                ClientEvent::Auth(question) => {
                    if let (Some(answer), Some(userauth)) =
                        (self.answerer.as_mut(), self.client.userauth_mut())
                    {
                        answer(question, userauth);
                    }
                }
                _ => {}
            }
            self.client_events.push(event);
        }
        while let Some(event) = self.server.poll_event() {
            any = true;
            if let ServerEvent::Auth(userauth::ServerEvent::AuthRequested {
                id,
                user,
                attempt,
                ..
            }) = &event
            {
                if let Some(decision) = self.decider.as_mut().and_then(|d| d(user, attempt)) {
                    let _ = self.server.auth_decided(self.time, *id, decision);
                }
            }
            self.server_events.push(event);
        }
        any
    }
}

impl<R> fmt::Debug for StackPair<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPair")
            .field("client", &self.client)
            .field("server", &self.server)
            .field("to_server", &self.to_server)
            .field("to_client", &self.to_client)
            .field("client_events", &self.client_events.len())
            .field("server_events", &self.server_events.len())
            .finish_non_exhaustive()
    }
}

//! Channel transports between two connection layers back to back, in virtual time.

use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use std::time::Duration;

use twine_core::basic::{LineProtocol, LineReceiver, Lines};
use twine_core::error::Reason;
use twine_core::protocol::{Address, HalfClose, Protocol, PushProducer, Transport};
use twine_core::reactor::BufferLimits;
use twine_core::testing::Clock;

use super::*;
use crate::connection::msgs::{ChannelKind, ChannelRequest};
use crate::connection::{ChannelId, Config, Connection, Event, Side, Stream};

/// The server's connection layer as a channel host.
struct Host {
    connection: RefCell<Connection>,
    wakes: Cell<u32>,
}

impl ChannelHost for Host {
    fn connection(&self) -> Option<RefMut<'_, Connection>> {
        self.connection.try_borrow_mut().ok()
    }

    fn wake(&self) {
        self.wakes.set(self.wakes.get() + 1);
    }
}

/// What a channel's protocol saw, in order.
#[derive(Default)]
struct Seen {
    events: Vec<String>,
    data: Vec<u8>,
    transport: Option<Rc<dyn Transport>>,
}

type Log = Rc<RefCell<Seen>>;

/// Records everything; optionally keeps writing after the peer's EOF.
struct Recorder {
    seen: Log,
    keep_writing: bool,
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let mut seen = self.seen.borrow_mut();
        seen.events.push("made".into());
        seen.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().data.extend_from_slice(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.seen.borrow_mut().events.push("read lost".into());
        if self.keep_writing {
            HalfClose::KeepWriting
        } else {
            HalfClose::LoseConnection
        }
    }

    fn write_connection_lost(&mut self) {
        self.seen.borrow_mut().events.push("write lost".into());
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.seen.borrow_mut().events.push(format!("lost: {reason}"));
    }
}

/// A producer that counts its pauses and resumes.
#[derive(Default)]
struct Producer {
    paused: Cell<u32>,
    resumed: Cell<u32>,
    stopped: Cell<u32>,
}

impl PushProducer for Producer {
    fn pause_producing(&self) {
        self.paused.set(self.paused.get() + 1);
    }

    fn resume_producing(&self) {
        self.resumed.set(self.resumed.get() + 1);
    }

    fn stop_producing(&self) {
        self.stopped.set(self.stopped.get() + 1);
    }
}

/// How the rig's scheduled calls run: virtual time, or a real reactor (for child processes).
pub(crate) enum Turns {
    Clock(Clock),
    Reactor(twine_core::Reactor),
}

impl Turns {
    fn scheduler(&self) -> Rc<dyn Scheduler> {
        match self {
            Self::Clock(clock) => clock.scheduler(),
            Self::Reactor(reactor) => reactor.scheduler(),
        }
    }

    /// Runs what is due; with a reactor, one short turn of its loop.
    fn turn(&self) {
        match self {
            Self::Clock(clock) => clock.advance(Duration::ZERO),
            Self::Reactor(reactor) => {
                let tick = reactor.deferred::<()>();
                let fire = tick.clone();
                reactor.call_later(Duration::from_millis(2), move || fire.callback(()));
                reactor.run_until(tick).unwrap();
            }
        }
    }

    fn idle(&self) -> bool {
        match self {
            Self::Clock(clock) => clock.pending() == 0,
            Self::Reactor(_) => true,
        }
    }
}

/// A client connection layer and the server's, with the server's channels, wired together.
pub(crate) struct Rig {
    pub(crate) turns: Turns,
    host: Rc<Host>,
    pub(crate) channels: Rc<Channels>,
    pub(crate) client: Connection,
    /// What the client's session channel received on standard output.
    pub(crate) received: Vec<u8>,
    pub(crate) client_events: Vec<String>,
    /// Whether the client reads the data it is sent (and so reopens the window).
    client_reads: bool,
    pub(crate) client_channel: Option<ChannelId>,
    pub(crate) server_channel: Option<ChannelId>,
    /// Requests the server received, not yet handled.
    pub(crate) server_requests:
        Vec<(ChannelId, ChannelRequest, Option<crate::connection::RequestId>)>,
}

impl Rig {
    fn new(server: Config, client: Config) -> Self {
        Self::with_turns(server, client, Turns::Clock(Clock::new()))
    }

    pub(crate) fn with_turns(server: Config, client: Config, turns: Turns) -> Self {
        let host = Rc::new(Host {
            connection: RefCell::new(Connection::new(Side::Server, server).unwrap()),
            wakes: Cell::new(0),
        });
        let weak: Weak<dyn ChannelHost> = Rc::downgrade(&host) as Weak<dyn ChannelHost>;
        let peer = Address::Named("client".into());
        let channels =
            Channels::new(weak, turns.scheduler(), peer, Address::Named("server".into()));
        Self {
            turns,
            host,
            channels,
            client: Connection::new(Side::Client, client).unwrap(),
            received: Vec::new(),
            client_events: Vec::new(),
            client_reads: true,
            client_channel: None,
            server_channel: None,
            server_requests: Vec::new(),
        }
    }

    /// Opens a session from the client, without attaching anything on the server.
    pub(crate) fn open_session(&mut self) -> ChannelId {
        let id = self.client.open_channel(ChannelKind::Session).unwrap();
        self.client_channel = Some(id);
        self.pump();
        self.server_channel.expect("the server saw the open")
    }

    /// Runs the rig until `done` holds, for at most `turns` turns.
    pub(crate) fn pump_until(&mut self, turns: usize, mut done: impl FnMut(&Self) -> bool) {
        for _ in 0..turns {
            self.pump();
            if done(self) {
                return;
            }
            self.turns.turn();
        }
        panic!("condition not reached; client saw {:?}", self.client_events);
    }

    /// Opens a session from the client and attaches `protocol` to it on the server.
    fn open(&mut self, protocol: impl Protocol + 'static) -> Rc<ChannelTransport> {
        let id = self.client.open_channel(ChannelKind::Session).unwrap();
        self.client_channel = Some(id);
        self.pump();
        let server_id = self.server_channel.expect("the server saw the open");
        let channel = self.channels.attach(server_id, Box::new(protocol));
        self.pump();
        channel
    }

    /// Moves payloads and runs events until nothing moves.
    pub(crate) fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            if let Turns::Clock(clock) = &self.turns {
                clock.advance(Duration::ZERO);
            }
            self.channels.flush();
            let mut buf = Vec::new();
            while self.host.connection.borrow_mut().poll_payload(&mut buf) {
                self.client.handle_payload(&buf).unwrap();
                buf.clear();
                moved = true;
            }
            while self.client.poll_payload(&mut buf) {
                self.host.connection.borrow_mut().handle_payload(&buf).unwrap();
                buf.clear();
                moved = true;
            }
            loop {
                let event = self.host.connection.borrow_mut().poll_event();
                let Some(event) = event else { break };
                moved = true;
                if self.channels.handle_event(&event) {
                    continue;
                }
                match event {
                    Event::ChannelOpenRequested { id, .. } => {
                        self.host.connection.borrow_mut().accept_channel(id).unwrap();
                        self.server_channel = Some(id);
                    }
                    Event::RequestReceived { id, request, reply } => {
                        self.server_requests.push((id, request, reply));
                    }
                    _ => {}
                }
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                self.client_event(event);
            }
            if !moved && self.turns.idle() {
                return;
            }
        }
        panic!("the rig never went quiet");
    }

    fn client_event(&mut self, event: Event) {
        match event {
            Event::DataReceived { id, stream } => {
                if !self.client_reads {
                    self.client_events.push("data waiting".into());
                    return;
                }
                self.read_client(id, stream);
            }
            Event::EofReceived { .. } => self.client_events.push("eof".into()),
            Event::CloseReceived { id } => {
                self.client_events.push("close".into());
                self.client.close(id).unwrap();
            }
            Event::RequestReceived { request, .. } => {
                let text = match &request {
                    ChannelRequest::ExitStatus { code } => format!("exit-status {code}"),
                    ChannelRequest::ExitSignal { signal, .. } => format!("exit-signal {signal}"),
                    other => format!("request {}", other.name()),
                };
                self.client_events.push(text);
            }
            Event::RequestAnswered { success, .. } => {
                self.client_events.push(format!("answered {success}"));
            }
            Event::ChannelClosed { .. } => self.client_events.push("closed".into()),
            _ => {}
        }
    }

    fn read_client(&mut self, id: ChannelId, stream: Stream) {
        let mut buf = [0; 4096];
        loop {
            let n = self.client.recv(id, stream, &mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            if stream == Stream::Stderr {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.client_events.push(format!("stderr {text:?}"));
            } else {
                self.received.extend_from_slice(&buf[..n]);
                self.client_events.push("data".into());
            }
        }
    }

    /// The client reads everything waiting, then the rig runs.
    fn client_catch_up(&mut self) {
        self.client_reads = true;
        let id = self.client_channel.unwrap();
        self.read_client(id, Stream::Data);
        self.pump();
    }

    /// Sends `data` from the client in chunks of `chunk` bytes, pumping after each.
    fn send(&mut self, data: &[u8], chunk: usize) -> usize {
        let id = self.client_channel.unwrap();
        let mut sent = 0;
        for piece in data.chunks(chunk) {
            let Ok(n) = self.client.send_data(id, piece) else { break };
            sent += n;
            self.pump();
        }
        sent
    }
}

fn recorder(keep_writing: bool) -> (Recorder, Log) {
    let seen = Log::default();
    (Recorder { seen: Rc::clone(&seen), keep_writing }, seen)
}

fn events(seen: &Log) -> Vec<String> {
    seen.borrow().events.clone()
}

struct Shout;

impl LineProtocol for Shout {
    fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
        if line == b"bye" {
            lines.send_line(b"BYE");
            lines.lose_connection();
            return;
        }
        lines.send_line(&line.to_ascii_uppercase());
    }
}

/// A `LineReceiver` written for TCP runs over a channel unchanged, whatever the chunking of
/// its input; its `lose_connection` closes the channel after its last line.
#[test]
fn line_receiver_runs_over_a_channel_unchanged() {
    for chunk in [usize::MAX, 1, 7] {
        let mut rig = Rig::new(Config::default(), Config::default());
        let channel = rig.open(LineReceiver::new(Shout));
        assert_eq!(channel.peer(), Address::Named("client".into()));
        rig.send(b"hello\r\nsecure shell\r\nbye\r\nignored\r\n", chunk);
        assert_eq!(rig.received, b"HELLO\r\nSECURE SHELL\r\nBYE\r\n", "chunk {chunk}");
        let tail: Vec<&str> =
            rig.client_events.iter().map(String::as_str).filter(|e| *e != "data").collect();
        assert_eq!(tail, ["eof", "close", "closed"], "chunk {chunk}");
        assert!(channel.is_lost());
        assert_eq!(rig.channels.len(), 0);
    }
}

/// Data the client sent before the protocol was attached is delivered after
/// `connection_made`.
#[test]
fn delivers_data_that_arrived_before_the_protocol() {
    let mut rig = Rig::new(Config::default(), Config::default());
    let id = rig.client.open_channel(ChannelKind::Session).unwrap();
    rig.client_channel = Some(id);
    rig.pump();
    rig.send(b"early", usize::MAX);
    let (protocol, seen) = recorder(false);
    rig.channels.attach(rig.server_channel.unwrap(), Box::new(protocol));
    assert!(events(&seen).is_empty(), "connection_made comes from the loop");
    rig.pump();
    assert_eq!(events(&seen), ["made"]);
    assert_eq!(seen.borrow().data, b"early");
}

/// Writes beyond the peer's window wait in the buffer; the producer is paused past the
/// high-water mark and resumed once window adjusts drain it, and every byte arrives in order.
#[test]
fn a_full_window_pauses_the_producer_until_it_reopens() {
    let client = Config { window_size: 1000, max_packet_size: 300, ..Config::default() };
    let mut rig = Rig::new(Config::default(), client);
    rig.channels.set_buffer_limits(BufferLimits { low: 0, high: 2000, hard: 1 << 20 });
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    let producer = Rc::new(Producer::default());
    channel.register_producer(Rc::clone(&producer) as Rc<dyn PushProducer>);
    rig.client_reads = false;
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let transport = seen.borrow().transport.clone().unwrap();
    transport.write(&data);
    assert_eq!(transport.buffered(), 4000, "the window took 1000 bytes");
    assert_eq!(producer.paused.get(), 0, "pausing comes from the loop");
    rig.pump();
    assert_eq!(producer.paused.get(), 1);
    assert_eq!(producer.resumed.get(), 0);
    rig.client_catch_up();
    assert_eq!(rig.received, data);
    assert_eq!(transport.buffered(), 0);
    assert_eq!(producer.resumed.get(), 1);
}

/// A producer whose pause only records the request (a transport, such as a child's pipe) is
/// paused from inside the write that filled the buffer, so it reads no more before the loop
/// turns; its resume still comes from the loop.
#[test]
fn a_producer_that_pauses_at_once_is_paused_inside_the_write() {
    struct AtOnce(Producer);
    impl PushProducer for AtOnce {
        fn pause_producing(&self) {
            self.0.pause_producing();
        }
        fn resume_producing(&self) {
            self.0.resume_producing();
        }
        fn stop_producing(&self) {
            self.0.stop_producing();
        }
        fn pauses_at_once(&self) -> bool {
            true
        }
    }
    let client = Config { window_size: 1000, max_packet_size: 300, ..Config::default() };
    let mut rig = Rig::new(Config::default(), client);
    let (protocol, seen) = recorder(false);
    let _channel = rig.open(protocol);
    let transport = seen.borrow().transport.clone().unwrap();
    let producer = Rc::new(AtOnce(Producer::default()));
    transport.register_producer(Rc::clone(&producer) as Rc<dyn PushProducer>);
    rig.client_reads = false;
    let data = vec![7u8; 1500];
    transport.write(&data);
    assert_eq!(transport.buffered(), 500, "the window took 1000 bytes");
    assert_eq!(producer.0.paused.get(), 1, "paused inside the write");
    rig.client_catch_up();
    assert_eq!(rig.received, data);
    assert_eq!(producer.0.paused.get(), 1);
    assert_eq!(producer.0.resumed.get(), 1);
}

/// A paused channel stops reading, so the connection layer stops reopening the window and
/// the client cannot send past it; resuming delivers the rest and reopens it.
#[test]
fn pausing_the_channel_closes_the_peers_window() {
    let server = Config { window_size: 1000, max_packet_size: 500, ..Config::default() };
    let mut rig = Rig::new(server, Config::default());
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    channel.pause_producing();
    let data = vec![b'x'; 3000];
    let sent = rig.send(&data, usize::MAX);
    assert_eq!(sent, 1000, "the client may send one window's worth");
    assert!(seen.borrow().data.is_empty());
    channel.resume_producing();
    rig.pump();
    assert_eq!(seen.borrow().data.len(), 1000);
    let sent = rig.send(&data[1000..], usize::MAX);
    assert!(sent > 0, "the window reopened");
}

/// `write_eof` sends EOF after the buffered data and reports `write_connection_lost`; the
/// channel stays open for reading.
#[test]
fn write_eof_sends_eof_after_the_data() {
    let mut rig = Rig::new(Config::default(), Config::default());
    let (protocol, seen) = recorder(false);
    rig.open(protocol);
    let transport = seen.borrow().transport.clone().unwrap();
    transport.write(b"last words");
    transport.write_eof();
    transport.write(b"too late");
    assert_eq!(events(&seen), ["made"], "write_connection_lost comes from the loop");
    rig.pump();
    assert_eq!(rig.received, b"last words");
    assert_eq!(rig.client_events, ["data", "eof"]);
    assert_eq!(events(&seen), ["made", "write lost"]);
    rig.send(b"still listening", usize::MAX);
    assert_eq!(seen.borrow().data, b"still listening");
}

/// The client's EOF reaches the protocol after the data before it; by default the channel then
/// closes, and with `KeepWriting` it may still write.
#[test]
fn peer_eof_reaches_the_protocol_after_its_data() {
    for keep_writing in [false, true] {
        let mut rig = Rig::new(Config::default(), Config::default());
        let (protocol, seen) = recorder(keep_writing);
        rig.open(protocol);
        rig.send(b"data then eof", 1);
        rig.client.send_eof(rig.client_channel.unwrap()).unwrap();
        rig.pump();
        assert_eq!(seen.borrow().data, b"data then eof");
        if keep_writing {
            assert_eq!(events(&seen), ["made", "read lost"]);
            let transport = seen.borrow().transport.clone().unwrap();
            transport.write(b"reply");
            transport.lose_connection();
            rig.pump();
            assert_eq!(rig.received, b"reply");
        }
        assert_eq!(
            events(&seen).last().map(String::as_str),
            Some("lost: connection closed cleanly")
        );
        assert!(rig.client_events.ends_with(&["eof".into(), "close".into(), "closed".into()]));
    }
}

/// `lose_connection` waits for the buffer to drain; the final requests go between EOF and
/// CLOSE, in OpenSSH's order.
#[test]
fn finish_sends_data_eof_exit_status_and_close_in_order() {
    let client = Config { window_size: 100, ..Config::default() };
    let mut rig = Rig::new(Config::default(), client);
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    rig.client_reads = false;
    channel.write(&[b'a'; 300]);
    channel.write_stderr(b"warning");
    channel.finish(vec![ChannelRequest::ExitStatus { code: 44 }]);
    rig.pump();
    assert!(!rig.client_events.iter().any(|e| e == "eof"), "EOF waits for the data");
    assert!(events(&seen).len() == 1, "nothing lost yet");
    rig.client_reads = true;
    rig.client_catch_up();
    assert_eq!(rig.received.len(), 300);
    let tail: Vec<&str> =
        rig.client_events.iter().map(String::as_str).filter(|e| !e.starts_with("data")).collect();
    assert_eq!(tail, ["stderr \"warning\"", "eof", "exit-status 44", "close", "closed"]);
    assert_eq!(events(&seen), ["made", "lost: connection closed cleanly"]);
}

/// A session's exit status cell ends a plain `lose_connection` with `exit-status` (the value
/// it holds when the channel closes), between EOF and CLOSE; an exit status of its own wins,
/// and an abort sends none.
#[test]
fn a_graceful_close_reports_the_sessions_exit_status() {
    let ending = |end: &dyn Fn(&ChannelTransport)| {
        let mut rig = Rig::new(Config::default(), Config::default());
        let (protocol, _seen) = recorder(false);
        let channel = rig.open(protocol);
        let status = Rc::new(Cell::new(0));
        channel.set_exit_status(Rc::clone(&status));
        status.set(7);
        end(&channel);
        rig.pump();
        rig.client_events.into_iter().filter(|e| e != "data").collect::<Vec<_>>()
    };
    let lose = ending(&|channel| channel.lose_connection());
    assert_eq!(lose, ["eof", "exit-status 7", "close", "closed"]);
    let own = ending(&|channel| channel.finish(vec![ChannelRequest::ExitStatus { code: 3 }]));
    assert_eq!(own, ["eof", "exit-status 3", "close", "closed"]);
    let abort = ending(&|channel| channel.abort_connection());
    assert_eq!(abort, ["eof", "close", "closed"]);
}

/// `abort_connection` discards what is buffered, closes at once and reports `Aborted`.
#[test]
fn abort_discards_the_buffer() {
    let client = Config { window_size: 10, ..Config::default() };
    let mut rig = Rig::new(Config::default(), client);
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    rig.client_reads = false;
    channel.write(&[b'z'; 100]);
    channel.abort_connection();
    assert_eq!(channel.buffered(), 0);
    rig.pump();
    assert_eq!(events(&seen), ["made", "lost: connection aborted locally"]);
    assert!(rig.client_events.contains(&"close".to_owned()));
}

/// The client's CLOSE (with the EOF the client sends before it) ends the channel: the protocol
/// gets `read_connection_lost` and `connection_lost`, and the producer is stopped.
#[test]
fn peer_close_ends_the_channel() {
    let mut rig = Rig::new(Config::default(), Config::default());
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    let producer = Rc::new(Producer::default());
    channel.register_producer(Rc::clone(&producer) as Rc<dyn PushProducer>);
    rig.client.close(rig.client_channel.unwrap()).unwrap();
    rig.pump();
    assert_eq!(events(&seen), ["made", "read lost", "lost: connection closed cleanly"]);
    assert_eq!(producer.stopped.get(), 1);
    channel.write(b"ignored");
    channel.lose_connection();
    assert_eq!(channel.buffered(), 0, "a lost channel ignores writes");
}

/// A protocol that ignores flow control cannot buffer past the hard limit: the channel aborts.
#[test]
fn buffering_past_the_hard_limit_aborts() {
    let client = Config { window_size: 10, ..Config::default() };
    let mut rig = Rig::new(Config::default(), client);
    rig.channels.set_buffer_limits(BufferLimits { low: 0, high: 100, hard: 1000 });
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    rig.client_reads = false;
    for _ in 0..20 {
        channel.write(&[1; 100]);
    }
    rig.pump();
    let last = events(&seen).last().cloned().unwrap();
    assert!(last.contains("hard limit"), "{last}");
}

/// When the SSH connection ends, every channel's protocol hears it with the reason.
#[test]
fn connection_loss_reaches_every_channel() {
    let mut rig = Rig::new(Config::default(), Config::default());
    let (protocol, seen) = recorder(false);
    rig.open(protocol);
    let err = twine_core::Error::new(ErrorKind::ConnectionReset, "reset");
    rig.channels.connection_lost(&Reason::Lost(err));
    assert_eq!(events(&seen), ["made"], "connection_lost comes from the loop");
    rig.turns.turn();
    assert!(events(&seen)[1].starts_with("lost: connection lost"));
}

/// When the connection layer is borrowed (the driver is busy), writes and ends are kept and
/// retried on the next flush.
#[test]
fn requests_made_while_the_connection_is_busy_are_retried() {
    let mut rig = Rig::new(Config::default(), Config::default());
    let (protocol, seen) = recorder(false);
    let channel = rig.open(protocol);
    {
        let _busy = rig.host.connection.borrow_mut();
        channel.write(b"while busy");
        channel.send_request(ChannelRequest::ExitStatus { code: 0 });
        channel.lose_connection();
    }
    rig.pump();
    assert_eq!(rig.received, b"while busy");
    let tail: Vec<&str> =
        rig.client_events.iter().map(String::as_str).filter(|e| *e != "data").collect();
    assert_eq!(tail, ["eof", "exit-status 0", "close", "closed"]);
    assert_eq!(events(&seen).last().map(String::as_str), Some("lost: connection closed cleanly"));
}

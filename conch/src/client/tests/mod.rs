//! The client's plumbing against fakes: a fake stack (a real connection layer and, for the
//! handshake, a real user authentication client) wired to a real server-side connection
//! layer and user authentication server in virtual time. No sockets, no sleeping.

mod policy;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twine_core::basic::{LineProtocol, LineReceiver, Lines};
use twine_core::error::Reason;
use twine_core::protocol::{HalfClose, PushProducer};
use twine_core::testing::{Clock, StringTransport};
use twine_core::time::Scheduler;
use twine_core::{Deferred, Protocol, Transport};

use super::connection::Shared;
use super::engine::{Engine, EngineEvent};
use super::handshake::{Handshake, HandshakeParams};
use super::*;
use crate::connection::msgs::{ChannelKind, ChannelRequest, OpenFailureReason};
use crate::connection::{self, ChannelId, Side, Stream};
use crate::crypto::OsRandom;
use crate::error::{Error, Initiator};
use crate::keys::{KeySpec, PrivateKey, PublicKey, SignatureAlgorithm};
use crate::userauth::{self, Attempt, Decision, ServerEvent};
use crate::wire::DisconnectReason;

type Wire = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// The fake stack: payloads instead of bytes, no transport layer.
struct FakeEngine {
    to_server: Wire,
    host_key: Option<PublicKey>,
    userauth_config: Arc<userauth::ClientConfig>,
    userauth: Option<userauth::Client>,
    conn: Option<connection::Connection>,
    conn_config: connection::Config,
    identities: Vec<PublicKey>,
    events: VecDeque<EngineEvent>,
}

impl FakeEngine {
    fn authenticated(to_server: Wire, config: connection::Config) -> Self {
        let conn = connection::Connection::new(Side::Client, config.clone()).unwrap();
        Self {
            to_server,
            host_key: None,
            userauth_config: Arc::new(userauth::ClientConfig::new()),
            userauth: None,
            conn: Some(conn),
            conn_config: config,
            identities: Vec::new(),
            events: VecDeque::new(),
        }
    }

    fn handshaking(to_server: Wire, host_key: Option<PublicKey>) -> Self {
        Self {
            to_server,
            host_key,
            userauth_config: Arc::new(userauth::ClientConfig::new()),
            userauth: None,
            conn: None,
            conn_config: connection::Config::default(),
            identities: Vec::new(),
            events: VecDeque::new(),
        }
    }
}

impl Engine for FakeEngine {
    fn handle_input(&mut self, _now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if let Some(conn) = self.conn.as_mut() {
            return conn.handle_payload(bytes);
        }
        match self.userauth.as_mut() {
            Some(userauth) => userauth.handle_payload(bytes).map(drop),
            None => Ok(()),
        }
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.events.push_back(EngineEvent::Closed { error: None, initiator: Initiator::Remote });
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self, _now: Instant, _out: &mut Vec<u8>) {
        let mut buf = Vec::new();
        if let Some(userauth) = self.userauth.as_mut() {
            while userauth.poll_payload(&mut buf) {
                self.to_server.borrow_mut().push_back(std::mem::take(&mut buf));
            }
        }
        if let Some(conn) = self.conn.as_mut() {
            while conn.poll_payload(&mut buf) {
                self.to_server.borrow_mut().push_back(std::mem::take(&mut buf));
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        if let Some(key) = self.host_key.take() {
            return Some(EngineEvent::HostKeyReceived {
                key,
                algorithm: SignatureAlgorithm::Ed25519,
            });
        }
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if self.conn.is_none() {
            let event = self.userauth.as_mut()?.poll_event()?;
            if let userauth::ClientEvent::Succeeded { .. } = event {
                self.conn = Some(
                    connection::Connection::new(Side::Client, self.conn_config.clone()).unwrap(),
                );
            }
            return Some(EngineEvent::Auth(event));
        }
        self.conn.as_mut()?.poll_event().map(EngineEvent::Connection)
    }

    fn host_key_decided(&mut self, _now: Instant, accept: bool) -> Result<(), Error> {
        if accept {
            let config = Arc::clone(&self.userauth_config);
            let mut client = userauth::Client::new(config, "user", b"session id", b"host key blob");
            for key in self.identities.drain(..) {
                client.add_identity(key);
            }
            self.userauth = Some(client);
        } else {
            self.events.push_back(EngineEvent::Closed {
                error: Some(Error::HostKeyRejected),
                initiator: Initiator::Local,
            });
        }
        Ok(())
    }

    fn add_identity(&mut self, key: PublicKey) {
        match self.userauth.as_mut() {
            Some(userauth) => userauth.add_identity(key),
            None => self.identities.push(key),
        }
    }

    fn transport(&self) -> Option<&crate::transport::Transport> {
        None
    }

    fn userauth_mut(&mut self) -> Option<&mut userauth::Client> {
        if self.conn.is_some() {
            return None;
        }
        self.userauth.as_mut()
    }

    fn connection_mut(&mut self) -> Option<&mut connection::Connection> {
        self.conn.as_mut()
    }

    fn disconnect(&mut self, _reason: DisconnectReason, _description: &str) {
        self.events.push_back(EngineEvent::Closed { error: None, initiator: Initiator::Local });
    }

    fn input_capacity(&self) -> usize {
        1 << 20
    }
}

/// A client driver over the fake stack, and the server's connection layer and user
/// authentication, in virtual time.
struct Harness {
    clock: Clock,
    shared: Rc<Shared>,
    wire: Rc<StringTransport>,
    to_server: Wire,
    server: connection::Connection,
    auth: Option<userauth::Server<()>>,
    /// The server's events not yet looked at.
    events: VecDeque<connection::Event>,
    auth_events: VecDeque<ServerEvent<()>>,
}

impl Harness {
    fn new() -> Self {
        Self::with_configs(connection::Config::default(), connection::Config::default())
    }

    fn with_configs(client: connection::Config, server: connection::Config) -> Self {
        let clock = Clock::new();
        let to_server: Wire = Rc::default();
        let engine = FakeEngine::authenticated(Rc::clone(&to_server), client);
        let shared =
            Shared::new(clock.scheduler(), None, Box::new(engine), None, Rc::new(NoPrompts));
        Self::finish(clock, shared, to_server, server, None)
    }

    fn handshake(params: HandshakeParams, host_key: PublicKey) -> (Self, Pending<Connection>) {
        Self::handshake_with(params, Some(host_key))
    }

    fn handshake_with(
        params: HandshakeParams,
        host_key: Option<PublicKey>,
    ) -> (Self, Pending<Connection>) {
        let clock = Clock::new();
        let to_server: Wire = Rc::default();
        let engine = FakeEngine::handshaking(Rc::clone(&to_server), host_key);
        let scheduler = clock.scheduler();
        let connected = Pending::new(&scheduler);
        let handshake = Handshake::new(params, connected.clone());
        let shared =
            Shared::new(scheduler, None, Box::new(engine), Some(handshake), Rc::new(NoPrompts));
        Handshake::start(&shared);
        let mut server_config = userauth::ServerConfig::new([7; 32]);
        server_config.failure_delay = userauth::FailureDelay::dangerous_none();
        let auth = userauth::Server::new(Arc::new(server_config), b"session id", b"host key blob")
            .unwrap();
        let harness =
            Self::finish(clock, shared, to_server, connection::Config::default(), Some(auth));
        (harness, connected)
    }

    fn finish(
        clock: Clock,
        shared: Rc<Shared>,
        to_server: Wire,
        server: connection::Config,
        auth: Option<userauth::Server<()>>,
    ) -> Self {
        let wire = StringTransport::new();
        shared.attach_wire(wire.clone());
        let server = connection::Connection::new(Side::Server, server).unwrap();
        Self {
            clock,
            shared,
            wire,
            to_server,
            server,
            auth,
            events: VecDeque::new(),
            auth_events: VecDeque::new(),
        }
    }

    fn connection(&self) -> Connection {
        self.shared.handle().unwrap()
    }

    /// Moves payloads both ways and runs queued calls until nothing moves.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            self.clock.advance(Duration::ZERO);
            let mut moved = false;
            loop {
                let payload = self.to_server.borrow_mut().pop_front();
                let Some(payload) = payload else { break };
                moved = true;
                self.server_input(&payload);
            }
            let mut buf = Vec::new();
            let mut from_server = Vec::new();
            let mut pipelined = None;
            if let Some(auth) = self.auth.as_mut() {
                while auth.poll_payload(&mut buf) {
                    from_server.push(std::mem::take(&mut buf));
                }
                while let Some(event) = auth.poll_event() {
                    moved = true;
                    if let ServerEvent::Authenticated { pipelined: early, .. } = &event {
                        pipelined = Some(early.clone());
                    }
                    self.auth_events.push_back(event);
                }
            }
            if let Some(early) = pipelined {
                self.auth = None;
                for payload in early {
                    self.server.handle_payload(&payload).unwrap();
                }
            }
            while self.server.poll_payload(&mut buf) {
                from_server.push(std::mem::take(&mut buf));
            }
            for payload in from_server {
                moved = true;
                self.shared.input(&payload);
            }
            while let Some(event) = self.server.poll_event() {
                self.events.push_back(event);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the pump did not settle");
    }

    fn server_input(&mut self, payload: &[u8]) {
        let now = self.clock.now();
        match self.auth.as_mut() {
            Some(auth) => {
                let _ = auth.handle_payload(now, payload).unwrap();
            }
            None => self.server.handle_payload(payload).unwrap(),
        }
    }

    /// Takes the server's events matching `pick`, keeping the others in order.
    fn take<T>(&mut self, mut pick: impl FnMut(&connection::Event) -> Option<T>) -> Vec<T> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for event in self.events.drain(..) {
            match pick(&event) {
                Some(value) => taken.push(value),
                None => kept.push_back(event),
            }
        }
        self.events = kept;
        taken
    }

    /// Accepts the session the client opened and answers its requests with `answer`; the
    /// server's id for it and the requests it saw.
    fn serve_session(
        &mut self,
        mut answer: impl FnMut(&ChannelRequest) -> bool,
    ) -> (ChannelId, Vec<ChannelRequest>) {
        self.pump();
        let opened = self.take(|event| match event {
            connection::Event::ChannelOpenRequested { id, kind: ChannelKind::Session } => Some(*id),
            _ => None,
        });
        let id = *opened.first().expect("a session was opened");
        self.server.accept_channel(id).unwrap();
        self.pump();
        let requests = self.answer_requests(&mut answer);
        (id, requests)
    }

    fn answer_requests(
        &mut self,
        answer: &mut impl FnMut(&ChannelRequest) -> bool,
    ) -> Vec<ChannelRequest> {
        let requests = self.take(|event| match event {
            connection::Event::RequestReceived { id, request, reply } => {
                Some((*id, request.clone(), *reply))
            }
            _ => None,
        });
        let mut seen = Vec::new();
        for (id, request, reply) in requests {
            if let Some(reply) = reply {
                self.server.reply_request(id, reply, answer(&request)).unwrap();
            }
            seen.push(request);
        }
        self.pump();
        seen
    }

    fn server_send(&mut self, id: ChannelId, data: &[u8]) {
        let sent = self.server.send_data(id, data).unwrap();
        assert_eq!(sent, data.len(), "the test sends within the window");
        self.pump();
    }

    fn server_recv(&mut self, id: ChannelId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = self.server.recv(id, Stream::Data, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        self.pump();
        all
    }

    /// Sends `exit-status`, EOF and CLOSE for the session, as a server does when the command
    /// ends.
    fn server_exit(&mut self, id: ChannelId, code: u32) {
        self.server.send_eof(id).unwrap();
        self.server.send_request(id, &ChannelRequest::ExitStatus { code }, false).unwrap();
        self.server.close(id).unwrap();
        self.pump();
    }
}

/// What a test protocol saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Seen {
    made: bool,
    data: Vec<u8>,
    eof: bool,
    lost: Option<String>,
}

/// A protocol that records everything and keeps its transport.
#[derive(Clone, Default)]
struct Recorder {
    seen: Rc<RefCell<Seen>>,
    transport: Rc<RefCell<Option<Rc<dyn Transport>>>>,
    keep_writing: bool,
}

impl Recorder {
    fn seen(&self) -> Seen {
        self.seen.borrow().clone()
    }

    fn transport(&self) -> Rc<dyn Transport> {
        self.transport.borrow().clone().expect("connection_made")
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.seen.borrow_mut().made = true;
        *self.transport.borrow_mut() = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().data.extend_from_slice(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.seen.borrow_mut().eof = true;
        if self.keep_writing {
            HalfClose::KeepWriting
        } else {
            HalfClose::LoseConnection
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.seen.borrow_mut().lost = Some(reason.to_string());
    }
}

fn settled<T: 'static>(pending: &Pending<T>) -> Result<T, ClientError> {
    pending.take_result().expect("settled")
}

// --- sessions ---------------------------------------------------------------------------------

/// A command's standard output reaches the protocol and its standard error the sink, whether
/// the server sends them in one packet or a byte at a time; the exit status is reported.
#[test]
fn exec_delivers_output_streams_and_exit_status() {
    for chunk in [usize::MAX, 1, 7] {
        let mut h = Harness::new();
        let recorder = Recorder::default();
        let stderr = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&stderr);
        let session = h
            .connection()
            .session()
            .stderr(move |data| sink.borrow_mut().extend_from_slice(data))
            .exec("echo hello", recorder.clone());
        let (id, requests) = h.serve_session(|_| true);
        assert_eq!(requests, vec![ChannelRequest::Exec { command: b"echo hello".to_vec() }]);
        let session = settled(&session).unwrap();
        for piece in b"hello, world\n".chunks(chunk.min(13)) {
            h.server_send(id, piece);
        }
        for piece in b"warning\n".chunks(chunk.min(8)) {
            h.server.send_extended_data(id, 1, piece).unwrap();
            h.pump();
        }
        let status = session.exit_status();
        h.server_exit(id, 44);
        assert_eq!(recorder.seen().data, b"hello, world\n", "chunk {chunk}");
        assert_eq!(*stderr.borrow(), b"warning\n");
        assert_eq!(settled(&status).unwrap(), ExitStatus::Code(44));
        assert_eq!(recorder.seen().lost.as_deref(), Some("connection closed cleanly"));
    }
}

/// The protocol hears nothing before the server accepted the start request, even if data
/// came first; then it gets everything in order.
#[test]
fn output_before_the_start_reply_waits_for_connection_made() {
    let mut h = Harness::new();
    let recorder = Recorder::default();
    let session = h.connection().exec("cat", recorder.clone());
    h.pump();
    let id = h.take(|event| match event {
        connection::Event::ChannelOpenRequested { id, .. } => Some(*id),
        _ => None,
    })[0];
    h.server.accept_channel(id).unwrap();
    h.pump();
    h.server_send(id, b"early ");
    assert_eq!(recorder.seen(), Seen::default(), "nothing before the reply");
    assert!(!session.is_settled());
    h.answer_requests(&mut |_| true);
    h.server_send(id, b"late");
    assert!(settled(&session).is_ok());
    assert_eq!(recorder.seen().data, b"early late");
}

/// A refused `exec` fails the session with the request's name and closes the channel.
#[test]
fn refused_exec_fails_with_request_refused() {
    let mut h = Harness::new();
    let recorder = Recorder::default();
    let session = h.connection().exec("forbidden", recorder.clone());
    h.serve_session(|_| false);
    let error = settled(&session).unwrap_err();
    assert_eq!(error, ClientError::RequestRefused { request: "exec".into() });
    let closes = h.take(|event| match event {
        connection::Event::CloseReceived { id } => Some(*id),
        _ => None,
    });
    assert_eq!(closes.len(), 1, "the client closed the channel");
    assert!(!recorder.seen().made);
}

/// A refused channel open fails with the server's reason and description.
#[test]
fn refused_open_fails_with_the_servers_reason() {
    let mut h = Harness::new();
    let session = h.connection().exec("true", Recorder::default());
    h.pump();
    let id = h.take(|event| match event {
        connection::Event::ChannelOpenRequested { id, .. } => Some(*id),
        _ => None,
    })[0];
    h.server.reject_channel(id, OpenFailureReason::RESOURCE_SHORTAGE, "too many").unwrap();
    h.pump();
    let error = settled(&session).unwrap_err();
    assert_eq!(
        error,
        ClientError::ChannelOpenFailed {
            reason: OpenFailureReason::RESOURCE_SHORTAGE,
            description: "too many".into()
        }
    );
    assert!(error.to_string().contains("resource shortage"), "{error}");
}

/// `env` goes without a reply, `pty-req` with one, then the start request; a refused pty does
/// not stop the session.
#[test]
fn sends_env_and_pty_before_the_start_request() {
    let mut h = Harness::new();
    let recorder = Recorder::default();
    let session = h
        .connection()
        .session()
        .env("LANG", "C")
        .pty(PtyRequest::new("xterm", 80, 24))
        .shell(recorder.clone());
    let (_, requests) =
        h.serve_session(|request| !matches!(request, ChannelRequest::PtyReq { .. }));
    let names: Vec<&str> = requests.iter().map(ChannelRequest::name).collect();
    assert_eq!(names, ["env", "pty-req", "shell"]);
    assert!(settled(&session).is_ok());
    assert!(recorder.seen().made);
}

/// `window-change` and `signal` reach the server on an open session.
#[test]
fn window_change_and_signal_reach_the_server() {
    let mut h = Harness::new();
    let session = h.connection().shell(Some(PtyRequest::new("vt100", 80, 24)), Recorder::default());
    h.serve_session(|_| true);
    let session = settled(&session).unwrap();
    let size = WindowSize { cols: 132, rows: 50, width_px: 0, height_px: 0 };
    session.window_change(size).unwrap();
    session.signal("INT").unwrap();
    h.pump();
    let requests = h.answer_requests(&mut |_| true);
    assert_eq!(
        requests,
        vec![ChannelRequest::WindowChange { size }, ChannelRequest::Signal { name: "INT".into() }]
    );
}

/// The server's EOF on a session makes the client send its own EOF but not close: the exit
/// status comes after, and the server closes.
#[test]
fn server_eof_on_a_session_waits_for_the_servers_close() {
    let mut h = Harness::new();
    let recorder = Recorder::default();
    let session = h.connection().exec("true", recorder.clone());
    let (id, _) = h.serve_session(|_| true);
    let session = settled(&session).unwrap();
    h.server.send_eof(id).unwrap();
    h.pump();
    assert!(recorder.seen().eof);
    let seen: Vec<_> = h.take(|event| match event {
        connection::Event::EofReceived { .. } => Some("eof"),
        connection::Event::CloseReceived { .. } => Some("close"),
        _ => None,
    });
    assert_eq!(seen, ["eof"], "EOF but no CLOSE from the client");
    h.server.send_request(id, &ChannelRequest::ExitStatus { code: 3 }, false).unwrap();
    h.server.close(id).unwrap();
    h.pump();
    assert_eq!(settled(&session.exit_status()).unwrap(), ExitStatus::Code(3));
    assert!(recorder.seen().lost.is_some());
}

/// A command killed by a signal reports the signal.
#[test]
fn reports_an_exit_signal() {
    let mut h = Harness::new();
    let session = h.connection().exec("sleep 100", Recorder::default());
    let (id, _) = h.serve_session(|_| true);
    let status = settled(&session).unwrap().exit_status();
    let signal = ChannelRequest::ExitSignal {
        signal: "TERM".into(),
        core_dumped: false,
        message: String::new(),
        language: String::new(),
    };
    h.server.send_request(id, &signal, false).unwrap();
    h.server.close(id).unwrap();
    h.pump();
    let status = settled(&status).unwrap();
    assert_eq!(
        status,
        ExitStatus::Signal { name: "TERM".into(), core_dumped: false, message: String::new() }
    );
    assert_eq!(status.openssh_exit_code(), 255);
}

/// `run` collects both streams and the status, with empty standard input.
#[test]
fn run_collects_output_and_status() {
    let mut h = Harness::new();
    let output = h.connection().run("make", 1024);
    let (id, _) = h.serve_session(|_| true);
    let eofs = h.take(|event| match event {
        connection::Event::EofReceived { id } => Some(*id),
        _ => None,
    });
    assert_eq!(eofs, [id], "standard input is closed at once");
    h.server_send(id, b"built\n");
    h.server.send_extended_data(id, 1, b"1 warning\n").unwrap();
    h.server_exit(id, 2);
    let output = settled(&output).unwrap();
    assert_eq!(output.stdout, b"built\n");
    assert_eq!(output.stderr, b"1 warning\n");
    assert_eq!(output.status, ExitStatus::Code(2));
}

/// Output past `run`'s bound closes the session and fails with the bound.
#[test]
fn run_fails_past_its_output_bound() {
    let mut h = Harness::new();
    let output = h.connection().run("yes", 10);
    let (id, _) = h.serve_session(|_| true);
    h.server_send(id, b"0123456789abc");
    let closes = h.take(|event| match event {
        connection::Event::CloseReceived { id } => Some(*id),
        _ => None,
    });
    assert_eq!(closes, [id]);
    h.server.close(id).unwrap();
    h.pump();
    assert_eq!(settled(&output).unwrap_err(), ClientError::OutputLimitExceeded { limit: 10 });
}

// --- flow control -----------------------------------------------------------------------------

/// A protocol that pauses its transport stops the channel window: the server can send no
/// more until the protocol resumes, and then everything arrives in order.
#[test]
fn paused_reading_stops_the_window_until_resumed() {
    let client = connection::Config { window_size: 1000, ..connection::Config::default() };
    let mut h = Harness::with_configs(client, connection::Config::default());
    let recorder = Recorder::default();
    let session = h.connection().exec("cat big", recorder.clone());
    let (id, _) = h.serve_session(|_| true);
    settled(&session).unwrap();
    recorder.transport().pause_producing();
    h.server_send(id, &[b'a'; 1000]);
    assert_eq!(recorder.seen().data.len(), 0, "paused: nothing delivered");
    assert_eq!(h.server.send_data(id, b"b").unwrap(), 0, "the window stays shut");
    recorder.transport().resume_producing();
    h.pump();
    assert_eq!(recorder.seen().data.len(), 1000);
    assert_eq!(h.server.send_data(id, b"b").unwrap(), 1, "the window reopened");
    h.pump();
    assert_eq!(recorder.seen().data.last(), Some(&b'b'));
}

/// Echoes what it receives back through its transport from inside `data_received`, and pauses
/// itself after the first piece.
#[derive(Clone, Default)]
struct EchoOnce {
    transport: Rc<RefCell<Option<Rc<dyn Transport>>>>,
    seen: Rc<RefCell<Vec<u8>>>,
}

impl Protocol for EchoOnce {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        *self.transport.borrow_mut() = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().extend_from_slice(data);
        let transport = self.transport.borrow().clone();
        if let Some(transport) = transport {
            transport.write(data);
            transport.pause_producing();
        }
    }
}

/// Data is handed to the protocol where the connection layer buffered it, yet the protocol may
/// write to its channel and pause it from inside `data_received`: its echo reaches the server,
/// and what it paused on arrives in order once it resumes.
#[test]
fn a_protocol_writes_and_pauses_from_inside_data_received() {
    let client = connection::Config { window_size: 4096, ..connection::Config::default() };
    let mut h = Harness::with_configs(client, connection::Config::default());
    let echo = EchoOnce::default();
    let session = h.connection().exec("chat", echo.clone());
    let (id, _) = h.serve_session(|_| true);
    settled(&session).unwrap();
    let data: Vec<u8> = (0..3000_u32).map(|i| (i % 251) as u8).collect();
    let (first, rest) = data.split_at(1000);
    h.server_send(id, first);
    assert_eq!(*echo.seen.borrow(), first, "the first piece, then a pause");
    h.server_send(id, rest);
    assert_eq!(echo.seen.borrow().len(), 1000, "paused: nothing more delivered");
    let mut echoed = Vec::new();
    for _ in 0..10 {
        echoed.extend(h.server_recv(id));
    }
    assert_eq!(echoed, first);
    let transport = echo.transport.borrow().clone().unwrap();
    for _ in 0..10 {
        if echo.seen.borrow().len() == data.len() {
            break;
        }
        transport.resume_producing();
        h.pump();
    }
    assert_eq!(*echo.seen.borrow(), data, "everything, in order");
}

/// A producer counting pauses and resumes.
#[derive(Default)]
struct CountingProducer {
    pauses: RefCell<u32>,
    resumes: RefCell<u32>,
}

impl PushProducer for CountingProducer {
    fn pause_producing(&self) {
        *self.pauses.borrow_mut() += 1;
    }

    fn resume_producing(&self) {
        *self.resumes.borrow_mut() += 1;
    }

    fn stop_producing(&self) {}
}

/// Writes beyond the server's window are buffered; the registered producer is paused as soon
/// as anything waits, and resumed once the window reopened and the buffer drained; the server gets every
/// byte in order.
#[test]
fn writes_past_the_window_buffer_and_pause_the_producer() {
    let server = connection::Config { window_size: 16 * 1024, ..connection::Config::default() };
    let mut h = Harness::with_configs(connection::Config::default(), server);
    let recorder = Recorder::default();
    let session = h.connection().exec("cat > file", recorder.clone());
    let (id, _) = h.serve_session(|_| true);
    settled(&session).unwrap();
    let transport = recorder.transport();
    let producer = Rc::new(CountingProducer::default());
    transport.register_producer(producer.clone());
    let data: Vec<u8> = (0..200_000_u32).map(|i| (i % 251) as u8).collect();
    transport.write(&data);
    assert!(transport.buffered() > 64 * 1024, "the rest waits for the window");
    h.pump();
    assert_eq!(*producer.pauses.borrow(), 1);
    assert_eq!(*producer.resumes.borrow(), 0);
    let mut received = Vec::new();
    for _ in 0..100 {
        received.extend(h.server_recv(id));
        if received.len() == data.len() {
            break;
        }
    }
    assert_eq!(received, data);
    assert_eq!(transport.buffered(), 0);
    assert_eq!(*producer.resumes.borrow(), 1);
}

/// `write_eof` sends EOF only after everything buffered went out, then reports
/// `write_connection_lost`.
#[test]
fn write_eof_waits_for_the_buffer_to_drain() {
    let server = connection::Config { window_size: 100, ..connection::Config::default() };
    let mut h = Harness::with_configs(connection::Config::default(), server);
    let recorder = Recorder::default();
    let session = h.connection().exec("wc -c", recorder.clone());
    let (id, _) = h.serve_session(|_| true);
    settled(&session).unwrap();
    let transport = recorder.transport();
    transport.write(&[b'x'; 250]);
    transport.write_eof();
    transport.write(b"ignored after EOF");
    h.pump();
    let early =
        h.take(|event| matches!(event, connection::Event::EofReceived { .. }).then_some(()));
    assert!(early.is_empty(), "no EOF while data waits");
    let mut received = Vec::new();
    for _ in 0..10 {
        received.extend(h.server_recv(id));
    }
    assert_eq!(received, vec![b'x'; 250]);
    let eofs = h.take(|event| matches!(event, connection::Event::EofReceived { .. }).then_some(()));
    assert_eq!(eofs.len(), 1);
}

// --- channels as transports, forwards ---------------------------------------------------------

/// Collects lines.
struct Collect(Rc<RefCell<Vec<String>>>);

impl LineProtocol for Collect {
    fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
        self.0.borrow_mut().push(String::from_utf8_lossy(line).into_owned());
        lines.send_line(b"ack");
    }
}

/// A line protocol written for TCP runs unchanged over a `direct-tcpip` channel, with lines
/// split across packets.
#[test]
fn a_line_protocol_runs_over_a_direct_tcpip_channel() {
    let mut h = Harness::new();
    let lines = Rc::new(RefCell::new(Vec::new()));
    let channel = h.connection().direct_tcpip(
        "db.internal",
        5432,
        LineReceiver::new(Collect(Rc::clone(&lines))),
    );
    h.pump();
    let opened = h.take(|event| match event {
        connection::Event::ChannelOpenRequested { id, kind } => Some((*id, kind.clone())),
        _ => None,
    });
    let (id, kind) = opened[0].clone();
    let ChannelKind::DirectTcpip { host, port, .. } = kind else { panic!("{kind:?}") };
    assert_eq!((host.as_str(), port), ("db.internal", 5432));
    h.server.accept_channel(id).unwrap();
    h.pump();
    assert!(settled(&channel).is_ok());
    for piece in [&b"fir"[..], b"st\r", b"\nsec", b"ond\r\n"] {
        h.server_send(id, piece);
    }
    assert_eq!(*lines.borrow(), ["first", "second"]);
    assert_eq!(h.server_recv(id), b"ack\r\nack\r\n");
}

/// Port 0 in a remote forward comes back as the port the server bound; a refusal fails.
#[test]
fn remote_forward_reports_the_bound_port() {
    let mut h = Harness::new();
    let forward =
        h.connection().forward_remote("localhost", 0, ForwardTarget::tcp("127.0.0.1", 80));
    let refused = h.connection().forward_remote("0.0.0.0", 22, ForwardTarget::tcp("127.0.0.1", 80));
    h.pump();
    let requests = h.take(|event| match event {
        connection::Event::GlobalRequestReceived { request, reply } => {
            Some((request.clone(), *reply))
        }
        _ => None,
    });
    assert_eq!(requests[0].0, GlobalRequest::TcpipForward { address: "localhost".into(), port: 0 });
    h.server.reply_global_request(requests[0].1.unwrap(), GlobalReply::BoundPort(4321)).unwrap();
    h.server.reply_global_request(requests[1].1.unwrap(), GlobalReply::Failure).unwrap();
    h.pump();
    assert_eq!(settled(&forward).unwrap().bound_port(), 4321);
    assert_eq!(
        settled(&refused).unwrap_err(),
        ClientError::RequestRefused { request: "tcpip-forward".into() }
    );
}

/// A channel the client did not ask for (a forward it never requested, X11, the agent) is
/// refused.
#[test]
fn refuses_channels_it_did_not_ask_for() {
    let mut h = Harness::new();
    let kind = ChannelKind::ForwardedTcpip {
        address: "0.0.0.0".into(),
        port: 8080,
        originator_address: "10.0.0.1".into(),
        originator_port: 5555,
    };
    let id = h.server.open_channel(kind).unwrap();
    h.server.open_channel(ChannelKind::AuthAgent).unwrap();
    h.pump();
    let failures = h.take(|event| match event {
        connection::Event::ChannelOpenFailed { id, reason, .. } => Some((*id, *reason)),
        _ => None,
    });
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0], (id, OpenFailureReason::ADMINISTRATIVELY_PROHIBITED));
}

// --- the connection's end ---------------------------------------------------------------------

/// When the connection is lost, open sessions hear `connection_lost` with the error, their
/// exit status fails, and new requests fail at once.
#[test]
fn connection_loss_reaches_every_channel_and_request() {
    let mut h = Harness::new();
    let recorder = Recorder::default();
    let session = h.connection().exec("sleep 9", recorder.clone());
    h.serve_session(|_| true);
    let status = settled(&session).unwrap().exit_status();
    let closed = h.connection().closed();
    let error = twine_core::Error::new(twine_core::ErrorKind::ConnectionReset, "read");
    h.shared.wire_lost(&Reason::Lost(error.clone()));
    h.pump();
    let lost = recorder.seen().lost.unwrap();
    assert!(lost.contains("reset"), "{lost}");
    assert_eq!(settled(&status).unwrap_err(), ClientError::ConnectionLost(Some(error.clone())));
    assert_eq!(settled(&closed).unwrap(), ClientError::ConnectionLost(Some(error.clone())));
    let late = h.connection().exec("true", Recorder::default());
    h.pump();
    assert_eq!(settled(&late).unwrap_err(), ClientError::ConnectionLost(Some(error)));
    assert!(h.connection().is_closed());
}

/// `disconnect` ends the connection cleanly and closes the socket.
#[test]
fn disconnect_closes_the_socket() {
    let mut h = Harness::new();
    let closed = h.connection().closed();
    h.connection().disconnect();
    h.pump();
    assert_eq!(settled(&closed).unwrap(), ClientError::ConnectionLost(None));
    assert!(h.wire.disconnecting());
}

/// The stack ending the connection for unanswered keepalives reads as the server not
/// responding, in OpenSSH's words.
#[test]
fn unanswered_keepalives_read_as_server_not_responding() {
    let mut h = Harness::new();
    let closed = h.connection().closed();
    let event = EngineEvent::Closed {
        error: Some(Error::Timeout(crate::error::TimeoutKind::Keepalive)),
        initiator: Initiator::Local,
    };
    h.shared.handle_event(event);
    h.pump();
    let reason = settled(&closed).unwrap();
    assert_eq!(reason, ClientError::ServerNotResponding);
    assert_eq!(reason.to_string(), "Timeout, server not responding.");
}

// --- the handshake ----------------------------------------------------------------------------

fn ed25519() -> PrivateKey {
    PrivateKey::generate(KeySpec::Ed25519, &mut OsRandom::new()).unwrap()
}

fn params(
    policy: Rc<dyn HostKeyPolicy>,
    prompter: Rc<dyn Prompter>,
    signers: Vec<Rc<dyn IdentitySigner>>,
) -> HandshakeParams {
    HandshakeParams {
        host: "server.example".into(),
        display_host: "server.example".into(),
        port: 22,
        key_port: 22,
        user: "user".into(),
        policy,
        prompter,
        signers,
        timeout: Duration::from_secs(30),
    }
}

impl Harness {
    /// Answers the server's authentication questions with `decide` until quiet.
    fn authenticate(&mut self, mut decide: impl FnMut(&Attempt) -> Decision<()>) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        for _ in 0..100 {
            self.pump();
            let Some(event) = self.auth_events.pop_front() else { return attempts };
            if let ServerEvent::AuthRequested { id, attempt, .. } = event {
                let decision = decide(&attempt);
                attempts.push(attempt);
                let now = self.clock.now();
                if let Some(auth) = self.auth.as_mut() {
                    auth.auth_decided(now, id, decision).unwrap();
                }
            }
        }
        attempts
    }
}

/// The key of an in-memory identity is offered, the server accepts it, and the client signs:
/// the connection settles once authenticated.
#[test]
fn publickey_authenticates_with_an_identity_signer() {
    let key = ed25519();
    let public = key.public_key().clone();
    let host = ed25519().public_key().clone();
    let (mut h, connected) = Harness::handshake(
        params(
            Rc::new(PinnedKeys::new([host.clone()])),
            Rc::new(NoPrompts),
            vec![Rc::new(InMemoryKey::new(key))],
        ),
        host,
    );
    let attempts = h.authenticate(|attempt| match attempt {
        Attempt::PublicKeyQuery { key, .. } | Attempt::PublicKey { key, .. } if *key == public => {
            Decision::Accept(())
        }
        _ => Decision::Reject,
    });
    let methods: Vec<Method> = attempts.iter().map(Attempt::method).collect();
    assert_eq!(methods, [Method::PublicKey, Method::PublicKey]);
    assert!(settled(&connected).is_ok());
}

/// A signer that reports its keys only when told to.
struct SlowSigner {
    key: PrivateKey,
    keys: RefCell<Option<Deferred<Vec<PublicKey>>>>,
}

impl IdentitySigner for SlowSigner {
    fn public_keys(&self, scheduler: &Rc<dyn Scheduler>) -> Deferred<Vec<PublicKey>> {
        let deferred = Deferred::new(Rc::clone(scheduler));
        *self.keys.borrow_mut() = Some(deferred.clone());
        deferred
    }

    fn sign(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        _key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Deferred<Option<Vec<u8>>> {
        Deferred::succeed(Rc::clone(scheduler), self.key.sign(algorithm, data).ok())
    }
}

/// The host key decision is held until every signer has listed its keys, so a slow agent's
/// keys are still offered.
#[test]
fn user_authentication_waits_for_the_signers_keys() {
    let key = ed25519();
    let public = key.public_key().clone();
    let signer = Rc::new(SlowSigner { key, keys: RefCell::new(None) });
    let host = ed25519().public_key().clone();
    let (mut h, connected) = Harness::handshake(
        params(dangerous_accept_any(), Rc::new(NoPrompts), vec![signer.clone()]),
        host,
    );
    h.pump();
    assert!(h.to_server.borrow().is_empty() && h.auth_events.is_empty(), "nothing sent yet");
    signer.keys.borrow().clone().unwrap().callback(vec![public.clone()]);
    let attempts = h.authenticate(|attempt| match attempt {
        Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. } => Decision::Accept(()),
        _ => Decision::Reject,
    });
    assert!(matches!(&attempts[0], Attempt::PublicKeyQuery { key, .. } if *key == public));
    assert!(settled(&connected).is_ok());
}

/// A password comes from the prompter, with OpenSSH's prompt text; the second prompt follows
/// a notice that the first was wrong.
#[test]
fn password_comes_from_the_prompter() {
    let prompter = Rc::new(StaticPrompter::new().password("hunter2"));
    let host = ed25519().public_key().clone();
    let (mut h, connected) =
        Harness::handshake(params(dangerous_accept_any(), prompter.clone(), Vec::new()), host);
    let mut tries = 0;
    h.authenticate(|attempt| match attempt {
        Attempt::Password { password, .. } => {
            tries += 1;
            if tries == 2 && password.matches(b"hunter2") {
                Decision::Accept(())
            } else {
                Decision::Reject
            }
        }
        _ => Decision::Reject,
    });
    assert!(settled(&connected).is_ok());
    let seen = prompter.seen();
    assert!(seen.contains(&"password: user@server.example's password: ".to_owned()), "{seen:?}");
    assert!(seen.contains(&"notice: Permission denied, please try again.".to_owned()), "{seen:?}");
}

/// Keyboard-interactive prompts are answered by the prompter.
#[test]
fn keyboard_interactive_answers_come_from_the_prompter() {
    let prompter = Rc::new(StaticPrompter::new().responses(vec!["123456".into()]));
    let host = ed25519().public_key().clone();
    let (mut h, connected) =
        Harness::handshake(params(dangerous_accept_any(), prompter.clone(), Vec::new()), host);
    h.authenticate(|attempt| match attempt {
        Attempt::KeyboardInteractive { .. } => Decision::InfoRequest(InfoRequest {
            name: String::new(),
            instruction: String::new(),
            prompts: vec![userauth::Prompt { text: "Code: ".into(), echo: false }],
        }),
        Attempt::KeyboardInteractiveResponses { responses, .. }
            if responses.len() == 1 && responses[0].matches(b"123456") =>
        {
            Decision::Accept(())
        }
        _ => Decision::Reject,
    });
    assert!(settled(&connected).is_ok());
    assert!(prompter.seen().contains(&"keyboard-interactive: Code: ".to_owned()));
}

/// When every method fails, the result carries the server's remaining methods, printed as
/// OpenSSH prints them.
#[test]
fn failure_carries_the_methods_left() {
    let host = ed25519().public_key().clone();
    let (mut h, connected) = Harness::handshake(
        params(
            dangerous_accept_any(),
            Rc::new(NoPrompts),
            vec![Rc::new(InMemoryKey::new(ed25519()))],
        ),
        host,
    );
    h.authenticate(|_| Decision::Reject);
    let error = settled(&connected).unwrap_err();
    let ClientError::AuthFailed { methods_left } = &error else { panic!("{error:?}") };
    assert_eq!(methods_left, &["publickey", "password", "keyboard-interactive"]);
    assert_eq!(error.to_string(), "Permission denied (publickey,password,keyboard-interactive).");
}

/// A host key the policy refuses ends the handshake before anything about the user is sent.
#[test]
fn a_refused_host_key_fails_before_authentication() {
    let host = ed25519().public_key().clone();
    let (mut h, connected) = Harness::handshake(
        params(
            Rc::new(PinnedKeys::new([ed25519().public_key().clone()])),
            Rc::new(NoPrompts),
            Vec::new(),
        ),
        host,
    );
    let attempts = h.authenticate(|_| Decision::Accept(()));
    assert!(attempts.is_empty());
    let error = settled(&connected).unwrap_err();
    assert!(
        matches!(&error, ClientError::HostKeyRejected { host, port: 22, .. } if host == "server.example")
    );
    assert_eq!(error.to_string(), "Host key verification failed.");
}

// --- splices ----------------------------------------------------------------------------------

/// A splice holds the first end's reading until the second is up, then relays both ways,
/// registers each end as the other's producer, passes EOF on as `write_eof`, and closes one end
/// when the other is lost.
#[test]
fn a_splice_relays_both_ways_with_flow_control() {
    let (a, b) = (StringTransport::new(), StringTransport::new());
    let splice = Splice::new();
    let (mut left, mut right) = (splice.end(0), splice.end(1));
    left.connection_made(a.clone());
    assert!(a.reading_paused(), "nothing is read before the other end is up");
    right.connection_made(b.clone());
    assert!(!a.reading_paused());
    assert!(a.producer().is_some() && b.producer().is_some());
    left.data_received(b"to the right");
    right.data_received(b"to the left");
    assert_eq!(b.value(), b"to the right");
    assert_eq!(a.value(), b"to the left");
    assert_eq!(left.read_connection_lost(), HalfClose::KeepWriting);
    assert!(b.eof_written() && !b.disconnecting());
    right.connection_lost(Reason::Done);
    assert!(a.disconnecting());
}

/// A splice whose second end never comes up closes the first.
#[test]
fn a_failed_splice_closes_the_end_that_was_up() {
    let a = StringTransport::new();
    let splice = Splice::new();
    splice.end(0).connection_made(a.clone());
    splice.fail();
    assert!(a.disconnecting());
    let late = StringTransport::new();
    splice.end(1).connection_made(late.clone());
    assert!(late.disconnecting(), "an end made after the failure is closed too");
}

/// A server that never proves its host key fails the connection after the connect timeout,
/// as OpenSSH's `ConnectTimeout` covers the banner and key exchanges.
#[test]
fn a_silent_server_times_out_during_the_handshake() {
    let (mut h, connected) = Harness::handshake_with(
        params(dangerous_accept_any(), Rc::new(NoPrompts), Vec::new()),
        None,
    );
    h.pump();
    h.clock.advance(Duration::from_secs(29));
    assert!(!connected.is_settled());
    h.clock.advance(Duration::from_secs(1));
    let error = settled(&connected).unwrap_err();
    assert!(matches!(&error, ClientError::Connect { port: 22, .. }), "{error:?}");
    assert!(error.to_string().ends_with("timed out"), "{error}");
    assert!(h.wire.disconnecting());
}

/// Once the host key is proved, the timeout no longer applies (the user may take their time).
#[test]
fn the_handshake_timeout_stops_at_the_host_key() {
    let host = ed25519().public_key().clone();
    let (mut h, connected) =
        Harness::handshake(params(dangerous_accept_any(), Rc::new(NoPrompts), Vec::new()), host);
    h.pump();
    h.clock.advance(Duration::from_secs(60));
    assert!(!connected.is_settled(), "waiting for authentication, not timed out");
}

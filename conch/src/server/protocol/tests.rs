//! The drive loop against a scripted stack, in virtual time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twine_core::testing::{Clock, StringTransport};
use twine_core::Deferred;

use super::*;
use crate::server::session::NoControl;
use crate::server::{AuthRequest, StaticUsers};
use crate::userauth::msgs::{MethodData, UserauthRequest};
use crate::userauth::{self, FailureDelay};
use crate::wire::Writer;

/// What the scripted stack was asked, and what it will answer.
#[derive(Default)]
struct Script {
    calls: Vec<String>,
    events: VecDeque<CoreEvent>,
    transmit: Vec<u8>,
    timeout: Option<Instant>,
    capacity: usize,
    decisions: Vec<String>,
    /// Whether the stack lends its input buffer (at most 5 bytes a read).
    lends: bool,
}

struct FakeCore(Rc<RefCell<Script>>, Vec<u8>);

impl ServerCore for FakeCore {
    fn handle_input(&mut self, _now: Instant, bytes: &[u8]) -> Result<(), Error> {
        self.0.borrow_mut().calls.push(format!("input {}", String::from_utf8_lossy(bytes)));
        Ok(())
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.0.borrow_mut().calls.push("eof".into());
    }

    fn handle_timeout(&mut self, _now: Instant) {
        let mut script = self.0.borrow_mut();
        script.calls.push("timeout".into());
        script.timeout = None;
    }

    fn poll_transmit(&mut self, _now: Instant, out: &mut Vec<u8>) {
        let mut script = self.0.borrow_mut();
        if !script.transmit.is_empty() {
            script.calls.push("transmit".into());
        }
        out.append(&mut script.transmit);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.0.borrow().timeout
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        let event = self.0.borrow_mut().events.pop_front();
        if event.is_some() {
            self.0.borrow_mut().calls.push("event".into());
        }
        event
    }

    fn user_settings(
        &mut self,
        _now: Instant,
        config: Option<Arc<ServerStackConfig>>,
    ) -> Result<(), Error> {
        self.0.borrow_mut().calls.push(format!("user settings {}", config.is_some()));
        Ok(())
    }

    fn auth_decided(
        &mut self,
        _now: Instant,
        _id: AuthId,
        decision: Decision<Restrictions>,
    ) -> Result<(), Error> {
        let text = match decision {
            Decision::Accept(r) => format!("accept pty={}", r.pty),
            Decision::Reject => "reject".into(),
            other => format!("{other:?}"),
        };
        self.0.borrow_mut().decisions.push(text);
        Ok(())
    }

    fn connection_mut(&mut self) -> Option<&mut Connection> {
        None
    }

    fn disconnect(&mut self, _reason: DisconnectReason, description: &str) {
        self.0.borrow_mut().calls.push(format!("disconnect {description}"));
    }

    fn input_capacity(&self) -> usize {
        self.0.borrow().capacity
    }

    fn input_buffer(&mut self, max: usize) -> Option<&mut [u8]> {
        let script = self.0.borrow();
        if !script.lends {
            return None;
        }
        let n = max.min(script.capacity).min(5);
        drop(script);
        self.1.resize(5, 0);
        self.1.get_mut(..n)
    }

    fn input_written(&mut self, _now: Instant, n: usize) -> Result<(), Error> {
        let text = String::from_utf8_lossy(&self.1[..n]).into_owned();
        self.0.borrow_mut().calls.push(format!("lent {text}"));
        Ok(())
    }

    fn peer_identification(&self) -> Option<String> {
        Some("SSH-2.0-Test".into())
    }
}

/// Counts `connection_ended` calls around a real backend.
struct Counting {
    inner: StaticUsers,
    ended: Rc<Cell<u32>>,
    /// The users of the signed keys the stack refused, as told.
    refused: Rc<RefCell<Vec<String>>>,
}

impl AuthBackend for Counting {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        self.inner.decide(request)
    }

    fn signature_refused(&self, request: &AuthRequest) {
        assert!(matches!(request.attempt, Attempt::PublicKey { .. }), "{:?}", request.attempt);
        self.refused.borrow_mut().push(request.user.clone());
    }

    fn connection_ended(&self, _connection: &ConnectionFacts) {
        self.ended.set(self.ended.get() + 1);
    }
}

struct NoSessions;

impl SessionBackend for NoSessions {
    fn start(&self, _start: SessionStart) -> Result<Box<dyn SessionControl>, twine_core::Error> {
        Ok(Box::new(NoControl))
    }
}

struct Setup {
    clock: Clock,
    script: Rc<RefCell<Script>>,
    transport: Rc<StringTransport>,
    protocol: ServerProtocol,
    ended: Rc<Cell<u32>>,
    refused: Rc<RefCell<Vec<String>>>,
}

fn setup() -> Setup {
    let clock = Clock::new();
    let script = Rc::new(RefCell::new(Script { capacity: 1 << 20, ..Script::default() }));
    let core_script = Rc::clone(&script);
    let ended = Rc::new(Cell::new(0));
    let backend = Counting {
        inner: StaticUsers::new()
            .with_password("alice", "pw")
            .with_restrictions("alice", Restrictions::restricted()),
        ended: Rc::clone(&ended),
        refused: Rc::default(),
    };
    let refused = Rc::clone(&backend.refused);
    let config = ServerConfig::with_core(
        move || Ok(Box::new(FakeCore(Rc::clone(&core_script), Vec::new())) as Box<dyn ServerCore>),
        backend,
        NoSessions,
    );
    let (transport, protocol) = connect(config, &clock);
    Setup { clock, script, transport, protocol, ended, refused }
}

/// One connection of a server on `config`, in `clock`'s virtual time, over a string transport.
fn connect(config: ServerConfig, clock: &Clock) -> (Rc<StringTransport>, ServerProtocol) {
    let services = Services {
        scheduler: clock.scheduler(),
        offload: Offload::inline(clock.scheduler()),
        reactor: None,
    };
    let factory = ServerFactory::with_services(config, services);
    let transport = StringTransport::new();
    let mut protocol = factory.protocol();
    protocol.connection_made(Rc::clone(&transport) as Rc<dyn Transport>);
    (transport, protocol)
}

/// A real userauth request event for `password`.
fn auth_event(password: &str) -> CoreEvent {
    let mut config = userauth::ServerConfig::new([1; 32]);
    config.failure_delay = FailureDelay::dangerous_none();
    let mut server: userauth::Server<Restrictions> =
        userauth::Server::new(Arc::new(config), b"sid", b"hostkey").unwrap();
    let mut payload = Vec::new();
    let method = MethodData::Password { password: password.as_bytes(), new_password: None };
    UserauthRequest { user: "alice", service: "ssh-connection", method }
        .encode(&mut Writer::new(&mut payload));
    let _ = server.handle_payload(Instant::now(), &payload).unwrap();
    CoreEvent::Auth(server.poll_event().unwrap())
}

/// The event a userauth server gives for a signed `publickey` request from `alice` whose
/// signature another key made.
fn forged_signature_event() -> CoreEvent {
    use crate::keys::{PrivateKey, SignatureAlgorithm};
    use crate::userauth::msgs::PublicKeyData;
    let mut config = userauth::ServerConfig::new([1; 32]);
    config.failure_delay = FailureDelay::dangerous_none();
    let mut server: userauth::Server<Restrictions> =
        userauth::Server::new(Arc::new(config), b"sid", b"hostkey").unwrap();
    let (offered, signer) = (
        PrivateKey::ed25519_from_seed(&[1; 32]).unwrap(),
        PrivateKey::ed25519_from_seed(&[2; 32]).unwrap(),
    );
    let blob = offered.public_key().to_blob();
    let signature = signer.sign(SignatureAlgorithm::Ed25519, b"anything").unwrap();
    let method = MethodData::PublicKey(PublicKeyData {
        algorithm: "ssh-ed25519",
        key_blob: &blob,
        host_key_blob: None,
        signature: Some(&signature),
    });
    let mut payload = Vec::new();
    UserauthRequest { user: "alice", service: "ssh-connection", method }
        .encode(&mut Writer::new(&mut payload));
    let _ = server.handle_payload(Instant::now(), &payload).unwrap();
    CoreEvent::Auth(server.poll_event().unwrap())
}

/// A signed key the stack refused itself (its signature does not verify) is told to the
/// backend, which is not asked to decide anything.
#[test]
fn a_refused_signature_is_told_to_the_backend_and_nothing_is_decided() {
    let mut s = setup();
    let event = forged_signature_event();
    assert!(matches!(event, CoreEvent::Auth(AuthEvent::SignatureRefused { .. })), "{event:?}");
    s.script.borrow_mut().events.push_back(event);
    s.protocol.data_received(b"request");
    s.clock.advance(Duration::ZERO);
    assert_eq!(*s.refused.borrow(), ["alice"]);
    assert!(s.script.borrow().decisions.is_empty(), "{:?}", s.script.borrow().decisions);
}

/// Input goes in, then the stack's output goes out, then its timer is armed, then its events
/// are dispatched; the timer calls `handle_timeout` and drives again.
#[test]
fn drives_input_transmit_timer_and_events_in_order() {
    let mut s = setup();
    {
        let mut script = s.script.borrow_mut();
        script.transmit = b"SSH-2.0-twine\r\n".to_vec();
        script.timeout = Some(s.clock.now() + Duration::from_secs(5));
        script.events.push_back(CoreEvent::Other);
    }
    s.protocol.data_received(b"SSH-2.0-client\r\n");
    assert_eq!(s.script.borrow().calls, ["input SSH-2.0-client\r\n", "transmit", "event"]);
    assert_eq!(s.transport.value(), b"SSH-2.0-twine\r\n");
    assert_eq!(s.clock.pending(), 1, "one timer");
    s.protocol.data_received(b"more");
    assert_eq!(s.clock.pending(), 1, "the same deadline keeps the same timer");
    s.clock.advance(Duration::from_secs(5));
    assert_eq!(s.script.borrow().calls.last().map(String::as_str), Some("timeout"));
    assert_eq!(s.clock.pending(), 0);
}

/// Reading pauses while the stack takes no input, and resumes when it does.
#[test]
fn pauses_reading_while_the_stack_is_full() {
    let mut s = setup();
    s.script.borrow_mut().capacity = 0;
    s.protocol.data_received(b"x");
    assert!(s.transport.reading_paused());
    s.script.borrow_mut().capacity = 10;
    s.protocol.data_received(b"");
    assert!(!s.transport.reading_paused());
}

/// A stack that lends its input buffer gets the bytes there, never more per read than it
/// lends; with no room the protocol reports a full buffer (the stream pauses reading), and the
/// drive resumes reading once the stack takes input again.
#[test]
fn a_lending_stack_reads_into_its_own_buffer_and_resumes_reading_when_it_has_room() {
    let mut s = setup();
    s.script.borrow_mut().lends = true;
    let line = b"SSH-2.0-client\r\n";
    assert_eq!(twine_core::testing::deliver(&mut s.protocol, line, usize::MAX), line.len());
    let calls = s.script.borrow().calls.clone();
    assert_eq!(calls, ["lent SSH-2", "lent .0-cl", "lent ient\r", "lent \n"]);
    s.script.borrow_mut().capacity = 0;
    assert_eq!(twine_core::testing::deliver(&mut s.protocol, b"x", usize::MAX), 0);
    assert_eq!(s.script.borrow().calls.len(), 4, "nothing taken without room");
    // The stream pauses its own reading on an empty buffer.
    s.transport.pause_producing();
    s.script.borrow_mut().capacity = 10;
    s.protocol.data_received(b"");
    assert!(!s.transport.reading_paused(), "the drive resumes reading");
}

/// An auth request goes to the backend; its answer (with the user's restrictions) comes back
/// as a command on a later turn, not during the dispatch.
#[test]
fn answers_auth_requests_through_the_backend() {
    let mut s = setup();
    s.script.borrow_mut().events.push_back(auth_event("pw"));
    s.protocol.data_received(b"request");
    assert!(s.script.borrow().decisions.is_empty(), "decided from the loop, later");
    s.clock.advance(Duration::ZERO);
    s.clock.advance(Duration::ZERO);
    s.clock.advance(Duration::ZERO);
    assert_eq!(s.script.borrow().decisions, ["accept pty=false"]);
    s.script.borrow_mut().events.push_back(auth_event("wrong"));
    s.protocol.data_received(b"request");
    s.clock.advance(Duration::ZERO);
    s.clock.advance(Duration::ZERO);
    assert_eq!(s.script.borrow().decisions, ["accept pty=false", "reject"]);
}

/// The stack's end loses the transport; the transport's loss releases the connection and
/// tells the auth backend, once.
#[test]
fn ends_the_transport_and_releases_the_connection() {
    let mut s = setup();
    s.script.borrow_mut().transmit = b"bye".to_vec();
    s.script
        .borrow_mut()
        .events
        .push_back(CoreEvent::Closed { error: None, initiator: Initiator::Remote });
    s.protocol.data_received(b"x");
    assert!(s.transport.disconnecting());
    assert_eq!(s.transport.value(), b"bye");
    s.protocol.connection_lost(Reason::Done);
    s.protocol.connection_lost(Reason::Done);
    assert_eq!(s.ended.get(), 1);
}

/// A connection the stack ends with an error says so after it is gone (sshd's exit status 255
/// in inetd mode); one ended by a disconnect or a plain close does not.
#[test]
fn a_connection_ended_by_an_error_says_so_and_a_disconnect_does_not() {
    let errors = [
        (None, false),
        (
            Some(Error::DisconnectReceived {
                reason: DisconnectReason::BY_APPLICATION,
                description: "bye".into(),
            }),
            false,
        ),
        (Some(Error::PeerIncompatible(crate::error::PeerIncompatible::ProtocolVersion)), true),
    ];
    for (error, failed) in errors {
        let mut s = setup();
        assert!(!s.protocol.ended_in_error(), "not before the end");
        s.script
            .borrow_mut()
            .events
            .push_back(CoreEvent::Closed { error, initiator: Initiator::Local });
        s.protocol.data_received(b"x");
        s.protocol.connection_lost(Reason::Done);
        assert_eq!(s.protocol.ended_in_error(), failed);
    }
}

/// The client's end of file reaches the stack, and the transport stays open for the reply.
#[test]
fn passes_end_of_file_to_the_stack() {
    let mut s = setup();
    assert_eq!(s.protocol.read_connection_lost(), HalfClose::KeepWriting);
    assert_eq!(s.script.borrow().calls, ["eof"]);
}

/// The real server stack behind the adapter, talking to a client stack in memory.
mod real_stack {
    use twine_core::basic::{LineProtocol, LineReceiver, Lines};
    use twine_core::protocol::PushProducer;

    use super::*;
    use crate::connection::msgs::{ChannelKind, ChannelRequest};
    use crate::connection::{self as conn, Stream};
    use crate::crypto::SeededRandom;
    use crate::server::InProcessSessions;
    use crate::stack::{ClientEvent, ClientStack, ClientStackConfig};
    use crate::testing::fixtures;
    use crate::userauth::{ClientEvent as AuthClientEvent, Password, PasswordAnswer};

    /// Answers each line with `echo: line`.
    struct Echo;

    impl LineProtocol for Echo {
        fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
            lines.send_line(&[b"echo: ", line].concat());
        }
    }

    /// A server protocol on a string transport, and a client stack fed from it.
    struct Wired {
        clock: Clock,
        transport: Rc<StringTransport>,
        protocol: ServerProtocol,
        client: ClientStack,
        password: String,
        events: Vec<ClientEvent>,
    }

    impl Wired {
        fn new(password: &str) -> Self {
            let sessions = InProcessSessions::new(|_| Some(Box::new(LineReceiver::new(Echo))));
            Self::with(password, sessions, conn::Config::default())
        }

        /// A server running `sessions`, and a client whose channels have `client_conn`'s
        /// windows.
        fn with(password: &str, sessions: InProcessSessions, client_conn: conn::Config) -> Self {
            let clock = Clock::new();
            let mut userauth = userauth::ServerConfig::new([7; 32]);
            userauth.failure_delay = FailureDelay::dangerous_none();
            let transport = transport::ServerConfig::new(vec![fixtures::ed25519_host_key(3)]);
            let stack = Arc::new(
                ServerStackConfig::new(transport, userauth, conn::Config::default()).unwrap(),
            );
            let core = move || {
                let stack = ServerStack::new(Arc::clone(&stack), Box::new(SeededRandom::new(9)))?;
                Ok(Box::new(stack) as Box<dyn ServerCore>)
            };
            let users = StaticUsers::new().with_password("alice", "pw");
            let config = ServerConfig::with_core(core, users, sessions);
            let (transport, protocol) = connect(config, &clock);
            let client_config = ClientStackConfig::new(
                transport::ClientConfig::default(),
                userauth::ClientConfig::new(),
                client_conn,
            )
            .unwrap();
            let client =
                ClientStack::new(Arc::new(client_config), "alice", Box::new(SeededRandom::new(5)))
                    .unwrap();
            Self { clock, transport, protocol, client, password: password.into(), events: vec![] }
        }

        /// Moves bytes both ways and runs the loop's pending calls until nothing moves.
        fn settle(&mut self) {
            for _ in 0..1000 {
                let now = self.clock.now();
                let mut moved = false;
                let mut to_client = self.transport.take();
                let mut fed = 0;
                // As a socket reader would: no more than the client takes at once.
                while fed < to_client.len() {
                    moved = true;
                    let n = self.client.input_capacity().min(to_client.len() - fed);
                    assert!(n > 0, "the client takes no more input");
                    self.client.handle_input(now, &to_client[fed..fed + n]).unwrap();
                    fed += n;
                    while let Some(event) = self.client.poll_event() {
                        self.client_event(event);
                    }
                }
                to_client.clear();
                let mut to_server = Vec::new();
                self.client.poll_transmit(now, &mut to_server);
                if !to_server.is_empty() {
                    moved = true;
                    self.protocol.data_received(&to_server);
                }
                while let Some(event) = self.client.poll_event() {
                    moved = true;
                    self.client_event(event);
                }
                let pending = self.clock.pending();
                self.clock.advance(Duration::ZERO);
                moved |= self.clock.pending() != pending;
                if !moved && self.transport.value().is_empty() {
                    return;
                }
            }
            panic!("the two sides never went quiet");
        }

        fn client_event(&mut self, event: ClientEvent) {
            let now = self.clock.now();
            match &event {
                ClientEvent::Transport(transport::Event::HostKeyReceived { .. }) => {
                    self.client.host_key_decided(now, true).unwrap();
                }
                ClientEvent::Auth(AuthClientEvent::PasswordRequested { .. }) => {
                    let answer = PasswordAnswer::Password(Password::from(self.password.as_str()));
                    let userauth = self.client.userauth_mut().unwrap();
                    userauth.password_ready(Some(answer)).unwrap();
                }
                _ => {}
            }
            self.events.push(event);
        }

        fn read(&mut self, id: ChannelId) -> Vec<u8> {
            let connection = self.client.connection_mut().unwrap();
            let mut out = Vec::new();
            let mut buf = [0; 1024];
            loop {
                let n = connection.recv(id, Stream::Data, &mut buf).unwrap();
                if n == 0 {
                    return out;
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
    }

    /// Through the adapter, the real stack authenticates a password user with the backend's
    /// answer and runs an in-process `LineReceiver` session over the channel.
    #[test]
    fn serves_an_in_process_line_protocol_over_the_real_stack() {
        let mut w = Wired::new("pw");
        w.settle();
        assert!(w.client.is_authenticated(), "events: {:?}", w.events);
        let id = w.client.connection_mut().unwrap().open_channel(ChannelKind::Session).unwrap();
        w.settle();
        let connection = w.client.connection_mut().unwrap();
        connection.send_request(id, &ChannelRequest::Shell, true).unwrap();
        w.settle();
        let connection = w.client.connection_mut().unwrap();
        assert_eq!(connection.send_data(id, b"hello\r\nworld\r\n").unwrap(), 14);
        w.settle();
        assert_eq!(w.read(id), b"echo: hello\r\necho: world\r\n");
        let replies = w
            .events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Connection(conn::Event::RequestAnswered { .. })))
            .count();
        assert_eq!(replies, 1, "the shell request was answered");
    }

    /// A wrong password is refused by the backend each time the client tries it, until the
    /// client runs out of prompts.
    #[test]
    fn refuses_a_wrong_password_through_the_backend() {
        let mut w = Wired::new("wrong");
        w.settle();
        assert!(!w.client.is_authenticated());
        let asked = w
            .events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Auth(AuthClientEvent::PasswordRequested { .. })))
            .count();
        assert_eq!(asked, 3, "OpenSSH's NumberOfPasswordPrompts");
        let failed =
            w.events.iter().any(|e| matches!(e, ClientEvent::Auth(AuthClientEvent::Failed { .. })));
        assert!(failed, "events: {:?}", w.events);
    }
    /// How much a flooding session offers: far past what the server may hold for one peer.
    const FLOOD: usize = 16 << 20;

    /// The byte at `offset` of the flood: a lost, repeated or reordered piece shows.
    fn flood_byte(offset: usize) -> u8 {
        u8::try_from(offset % 251).unwrap()
    }

    /// A session that writes `FLOOD` bytes as fast as its channel lets it: a push producer,
    /// as a child's output pipe is, counting what it handed over.
    struct FloodSource {
        transport: RefCell<Option<Rc<dyn Transport>>>,
        paused: Cell<bool>,
        written: Cell<usize>,
    }

    impl FloodSource {
        fn produce(&self) {
            let Some(transport) = self.transport.borrow().clone() else { return };
            let mut chunk = vec![0; 64 * 1024];
            while !self.paused.get() && self.written.get() < FLOOD {
                let start = self.written.get();
                let n = chunk.len().min(FLOOD - start);
                for (i, byte) in chunk.iter_mut().enumerate().take(n) {
                    *byte = flood_byte(start + i);
                }
                self.written.set(start + n);
                transport.write(&chunk[..n]);
            }
            if self.written.get() == FLOOD {
                transport.lose_connection();
            }
        }
    }

    impl PushProducer for FloodSource {
        fn pause_producing(&self) {
            self.paused.set(true);
        }

        fn resume_producing(&self) {
            self.paused.set(false);
            self.produce();
        }

        fn stop_producing(&self) {}

        fn pauses_at_once(&self) -> bool {
            true
        }
    }

    struct Flood(Rc<FloodSource>);

    impl Protocol for Flood {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            transport.register_producer(Rc::clone(&self.0) as Rc<dyn PushProducer>);
            *self.0.transport.borrow_mut() = Some(transport);
            self.0.produce();
        }

        fn data_received(&mut self, _data: &[u8]) {}
    }

    /// A peer that granted a window far larger than the flood and stops reading: while the
    /// server's transport is past its high-water mark (it paused the connection), the session's
    /// output waits in the session instead of piling up in the transport, bounded by the
    /// stack's send queue; once the transport drains, all of it arrives, in order.
    #[test]
    fn a_peer_that_stops_reading_holds_the_sessions_output_back_instead_of_buffering_it() {
        let source = Rc::new(FloodSource {
            transport: RefCell::new(None),
            paused: Cell::new(false),
            written: Cell::new(0),
        });
        let session_source = Rc::clone(&source);
        let sessions = InProcessSessions::new(move |_| {
            Some(Box::new(Flood(Rc::clone(&session_source))) as Box<dyn Protocol>)
        });
        let window = conn::Config { window_size: 1 << 30, ..conn::Config::default() };
        let mut w = Wired::with("pw", sessions, window);
        w.settle();
        assert!(w.client.is_authenticated(), "events: {:?}", w.events);
        let id = w.client.connection_mut().unwrap().open_channel(ChannelKind::Session).unwrap();
        w.settle();

        // The socket is full: the transport pauses its producer, the connection.
        let wire = w.transport.producer().expect("the connection produces into its transport");
        wire.pause_producing();
        let connection = w.client.connection_mut().unwrap();
        connection.send_request(id, &ChannelRequest::Shell, false).unwrap();
        let mut to_server = Vec::new();
        w.client.poll_transmit(w.clock.now(), &mut to_server);
        w.protocol.data_received(&to_server);
        for _ in 0..100 {
            w.clock.advance(Duration::ZERO);
        }
        let bound = transport::Limits::default().max_send_queue;
        let held = w.transport.value().len();
        assert!(held <= bound, "{held} bytes written to a full transport");
        assert!(source.written.get() < FLOOD, "the session was not held back");

        // It drains: everything arrives, whole and in order.
        wire.resume_producing();
        w.settle();
        let connection = w.client.connection_mut().unwrap();
        let mut received = Vec::new();
        let mut buf = vec![0; 256 * 1024];
        for _ in 0..=FLOOD / buf.len() {
            let n = connection.recv(id, Stream::Data, &mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
        }
        assert_eq!(received.len(), FLOOD);
        let first_wrong = received.iter().enumerate().position(|(i, b)| *b != flood_byte(i));
        assert_eq!(first_wrong, None);
    }
}

/// Answers every user with `MaxSessions 0` and no stack change, counting the questions.
struct OneSetting {
    asked: Rc<RefCell<Vec<String>>>,
}

impl UserSettings for OneSetting {
    fn settings(
        &self,
        user: &str,
        _facts: &Rc<ConnectionFacts>,
        current: &ConnectionSettings,
        offload: &Offload,
    ) -> Deferred<ConnectionSettings> {
        self.asked.borrow_mut().push(user.to_owned());
        let mut settings = current.clone();
        settings.max_sessions = 0;
        settings.accept_env = vec!["ONLY_*".into()];
        offload.run(move || settings)
    }
}

/// When the stack says the user is known, the adapter asks the settings hook (from the loop,
/// not during the dispatch) and hands the answer back to the stack; the connection's own
/// settings are the hook's from then on.
#[test]
fn the_user_settings_hook_is_asked_once_the_user_is_known_and_its_answer_applies() {
    let clock = Clock::new();
    let script = Rc::new(RefCell::new(Script { capacity: 1 << 20, ..Script::default() }));
    let core_script = Rc::clone(&script);
    let mut config = ServerConfig::with_core(
        move || Ok(Box::new(FakeCore(Rc::clone(&core_script), Vec::new())) as Box<dyn ServerCore>),
        StaticUsers::new(),
        NoSessions,
    );
    let asked = Rc::new(RefCell::new(Vec::new()));
    config.user_settings = Some(Rc::new(OneSetting { asked: Rc::clone(&asked) }));
    let (_transport, mut protocol) = connect(config, &clock);
    script.borrow_mut().events.push_back(CoreEvent::Auth(userauth::ServerEvent::UserIdentified {
        user: "alice".into(),
        service: "ssh-connection".into(),
    }));
    protocol.data_received(b"request");
    assert_eq!(*asked.borrow(), ["alice"]);
    for _ in 0..3 {
        clock.advance(Duration::ZERO);
    }
    assert!(script.borrow().calls.iter().any(|c| c == "user settings false"));
    let conn = protocol.conn.as_ref().unwrap();
    assert_eq!(conn.settings.borrow().max_sessions, 0);
    assert_eq!(conn.settings.borrow().accept_env, ["ONLY_*"]);
}

/// Fails every user with `kind`, saying `why`.
struct Refusing {
    kind: ErrorKind,
    why: &'static str,
}

impl UserSettings for Refusing {
    fn settings(
        &self,
        _user: &str,
        _facts: &Rc<ConnectionFacts>,
        _current: &ConnectionSettings,
        offload: &Offload,
    ) -> Deferred<ConnectionSettings> {
        let error = twine_core::Error::new(self.kind, self.why);
        Deferred::fail(offload.scheduler(), error)
    }
}

/// A hook that fails ends the connection: the configuration's refusal (`PermissionDenied`)
/// with its own words to the client, any other failure with "no settings for the user" (the
/// reason stays in the server's log).
#[test]
fn a_refusing_settings_hook_ends_the_connection_with_its_words_and_a_failing_one_without() {
    for (kind, why, told) in [
        (ErrorKind::PermissionDenied, "administratively prohibited", "administratively prohibited"),
        (ErrorKind::Other, "/etc/secret: unreadable", "no settings for the user"),
    ] {
        let clock = Clock::new();
        let script = Rc::new(RefCell::new(Script { capacity: 1 << 20, ..Script::default() }));
        let core_script = Rc::clone(&script);
        let mut config = ServerConfig::with_core(
            move || {
                Ok(Box::new(FakeCore(Rc::clone(&core_script), Vec::new())) as Box<dyn ServerCore>)
            },
            StaticUsers::new(),
            NoSessions,
        );
        config.user_settings = Some(Rc::new(Refusing { kind, why }));
        let (_transport, mut protocol) = connect(config, &clock);
        script.borrow_mut().events.push_back(CoreEvent::Auth(
            userauth::ServerEvent::UserIdentified {
                user: "alice".into(),
                service: "ssh-connection".into(),
            },
        ));
        protocol.data_received(b"request");
        for _ in 0..3 {
            clock.advance(Duration::ZERO);
        }
        let calls = script.borrow().calls.clone();
        assert!(calls.contains(&format!("disconnect {told}")), "{kind:?}: {calls:?}");
        assert!(!calls.iter().any(|c| c.starts_with("user settings")), "{kind:?}: {calls:?}");
    }
}

/// Without a hook, the stack is answered at once with the server's settings.
#[test]
fn without_a_hook_the_user_is_answered_with_the_servers_settings() {
    let s = setup();
    let mut protocol = s.protocol;
    s.script.borrow_mut().events.push_back(CoreEvent::Auth(
        userauth::ServerEvent::UserIdentified {
            user: "alice".into(),
            service: "ssh-connection".into(),
        },
    ));
    protocol.data_received(b"request");
    assert!(s.script.borrow().calls.iter().any(|c| c == "user settings false"));
}

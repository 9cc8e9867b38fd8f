//! The chat's backpressure over real SSH on a loopback port: one of our clients with a small
//! channel window stops reading while another keeps talking. The talker sees every message at
//! once; the sleeper's session holds at most one frame on the server and is not even drawn
//! meanwhile; when the sleeper reads again, the latest conversation arrives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/ssh_chat.rs"]
mod ssh_chat;

use std::cell::{Cell, RefCell};
use std::num::NonZeroU16;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ssh_chat::{Chat, User};
use twine_conch::client::{self, ClientConfig, InMemoryKey, PtyRequest, Target};
use twine_conch::connection;
use twine_conch::crypto::OsRandom;
use twine_conch::keys::{KeySpec, PrivateKey};
use twine_conch::server::{InProcessSessions, ServerFactory, TrustOnFirstUse};
use twine_conch::stack::ServerStackConfig;
use twine_conch::terminal::{AppContext, Canvas, Event, Size, TerminalApp, TerminalSession};
use twine_conch::ServerConfig;
use twine_core::protocol::Address;
use twine_core::{Protocol, Reactor, Reason, Transport};

/// The chat user, counting how often it is drawn.
struct Counted {
    user: User,
    draws: Rc<Cell<u64>>,
}

impl TerminalApp for Counted {
    fn start(&mut self, ctx: &mut AppContext<'_>) {
        self.user.start(ctx);
    }
    fn event(&mut self, ctx: &mut AppContext<'_>, event: &Event) {
        self.user.event(ctx, event);
    }
    fn draw(&mut self, canvas: &mut Canvas) {
        self.draws.set(self.draws.get() + 1);
        self.user.draw(canvas);
    }
    fn end(&mut self) {
        self.user.end();
    }
}

/// The server side of one session, as seen by the test: its channel and its draw count.
#[derive(Default)]
struct ServerSide {
    channel: RefCell<Option<Rc<dyn Transport>>>,
    draws: Rc<Cell<u64>>,
}

/// The session protocol, keeping its channel where the test can look at it.
struct Spy {
    session: TerminalSession<Counted>,
    side: Rc<ServerSide>,
}

impl Protocol for Spy {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        *self.side.channel.borrow_mut() = Some(Rc::clone(&transport));
        self.session.connection_made(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.session.data_received(data);
    }
    fn connection_lost(&mut self, reason: Reason) {
        self.session.connection_lost(reason);
    }
}

/// A client's terminal: a vt100 screen of what arrived; it can stop reading.
struct Screen {
    parser: Rc<RefCell<vt100::Parser>>,
    transport: Rc<RefCell<Option<Rc<dyn Transport>>>>,
    asleep: bool,
}

impl Protocol for Screen {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        if self.asleep {
            transport.pause_producing();
        }
        *self.transport.borrow_mut() = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.parser.borrow_mut().process(data);
    }
}

/// One of our clients logged in as `user` with a channel window of `window` bytes.
struct Client {
    parser: Rc<RefCell<vt100::Parser>>,
    transport: Rc<RefCell<Option<Rc<dyn Transport>>>>,
    _connection: client::Connection,
    _session: client::Session,
}

impl Client {
    fn connect(reactor: &Reactor, port: u16, user: &str, window: u32, asleep: bool) -> Self {
        let key = PrivateKey::generate(KeySpec::Ed25519, &mut OsRandom::new()).unwrap();
        let config = ClientConfig::new(user)
            .identity(Rc::new(InMemoryKey::new(key)))
            .dangerous_accept_any_host_key()
            .connection(connection::Config { window_size: window, ..Default::default() });
        let size = NonZeroU16::new;
        let parser =
            Rc::new(RefCell::new(vt100::Parser::new(size(24).unwrap(), size(80).unwrap(), 0)));
        let transport = Rc::new(RefCell::new(None));
        let screen =
            Screen { parser: Rc::clone(&parser), transport: Rc::clone(&transport), asleep };
        let target = Target::new("127.0.0.1", port);
        let connecting = client::connect(reactor, target, config);
        let started = reactor.run_until(async move {
            let login = async move {
                let connection = connecting.await?;
                let pty = PtyRequest::new("xterm-256color", 80, 24);
                let session = connection.shell(Some(pty), screen).await?;
                Ok::<_, client::ClientError>((connection, session))
            };
            Ok(login.await)
        });
        let (connection, session) = started.unwrap().unwrap();
        Self { parser, transport, _connection: connection, _session: session }
    }

    fn contents(&self) -> String {
        self.parser.borrow().screen().contents()
    }

    fn transport(&self) -> Rc<dyn Transport> {
        self.transport.borrow().clone().expect("the session started")
    }
}

/// Runs the loop for a few milliseconds.
fn turn(reactor: &Reactor) {
    let tick = reactor.deferred::<()>();
    let fire = tick.clone();
    reactor.call_later(Duration::from_millis(2), move || fire.callback(()));
    reactor.run_until(tick).unwrap();
}

/// Runs the loop until `done` holds (a bounded number of turns).
fn until(reactor: &Reactor, what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..5000 {
        if done() {
            return;
        }
        turn(reactor);
    }
    panic!("never: {what}");
}

/// The chat on a loopback port, with the server side of each session kept for the test.
fn serve(reactor: &Reactor) -> (u16, Rc<RefCell<Vec<Rc<ServerSide>>>>) {
    let mut rng = OsRandom::new();
    let host_key = Arc::new(PrivateKey::generate(KeySpec::Ed25519, &mut rng).unwrap());
    let stack = ServerStackConfig::with_host_keys(vec![host_key], &mut rng).unwrap();
    let chat = Rc::new(RefCell::new(Chat::default()));
    let sides: Rc<RefCell<Vec<Rc<ServerSide>>>> = Rc::default();
    let (scheduler, all) = (reactor.scheduler(), Rc::clone(&sides));
    let sessions = InProcessSessions::new(move |info| {
        let side = Rc::new(ServerSide::default());
        all.borrow_mut().push(Rc::clone(&side));
        let app =
            Counted { user: User::new(&chat, &info.login.user), draws: Rc::clone(&side.draws) };
        let size = info.window_size().map(|s| Size::from_pty(s.cols, s.rows)).unwrap();
        let session = TerminalSession::new(app, info.term()?, size, Rc::clone(&scheduler));
        Some(Box::new(Spy { session, side }))
    });
    let config = ServerConfig::new(stack, TrustOnFirstUse::in_memory(), sessions);
    let factory = ServerFactory::new(reactor, config);
    let port = reactor.listen_tcp(([127, 0, 0, 1], 0).into(), factory).unwrap();
    let Address::Tcp(address) = port.address() else { panic!("a TCP port") };
    (address.port(), sides)
}

#[test]
fn a_user_who_stops_reading_holds_one_frame_while_the_others_talk() {
    let reactor = Reactor::new().unwrap();
    let (port, sides) = serve(&reactor);
    let talker = Client::connect(&reactor, port, "talker", 4 * 1024 * 1024, false);
    until(&reactor, "the talker is in", || talker.contents().contains("Welcome, talker"));
    let sleeper = Client::connect(&reactor, port, "sleeper", 2048, true);
    until(&reactor, "both sessions run", || sides.borrow().len() == 2);
    until(&reactor, "the talker sees the sleeper", || talker.contents().contains("sleeper joined"));
    let (talker_side, sleeper_side) = {
        let sides = sides.borrow();
        (Rc::clone(&sides[0]), Rc::clone(&sides[1]))
    };
    let sleeper_channel = || sleeper_side.channel.borrow().clone().unwrap();
    let say = |text: &str| {
        talker.transport().write(format!("{text}\r").as_bytes());
        let said = format!("talker: {text}");
        until(&reactor, &said, || talker.contents().contains(&said));
    };
    // The sleeper's frames fill its window of 2 KiB; then its channel holds output.
    for n in 0..200 {
        if sleeper_channel().buffered() > 0 {
            break;
        }
        say(&format!("filling the window {n}"));
    }
    assert!(sleeper_channel().buffered() > 0, "the sleeper's window filled");
    let draws_when_full = sleeper_side.draws.get();
    let held_when_full = sleeper_channel().buffered();

    let mut most_held = 0;
    for n in 0..100 {
        say(&format!("message {n}"));
        most_held = most_held.max(sleeper_channel().buffered());
    }
    assert!(talker_side.draws.get() >= 100, "the talker was drawn for every message");
    assert_eq!(sleeper_side.draws.get(), draws_when_full, "nothing drawn for the sleeper");
    assert_eq!(most_held, held_when_full, "the sleeper's buffer did not grow");
    assert!(held_when_full < 8 * 1024, "at most one frame held: {held_when_full} bytes");

    sleeper.transport().resume_producing();
    until(&reactor, "the sleeper catches up", || sleeper.contents().contains("talker: message 99"));
    let caught_up = sleeper_side.draws.get() - draws_when_full;
    assert!(caught_up < 10, "the sleeper got the latest frames, not all 100: {caught_up}");
}

//! The chat of `examples/ssh_chat.rs`, back to back: each user's `TerminalSession` writes to a
//! channel-like transport read by a vt100 screen, in virtual time; keys go in whole or one byte
//! at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/ssh_chat.rs"]
mod ssh_chat;

use std::cell::{Cell, RefCell};
use std::num::NonZeroU16;
use std::rc::Rc;
use std::time::Duration;

use ssh_chat::{Chat, User};
use twine_conch::terminal::{Size, TerminalSession};
use twine_core::protocol::{Address, Protocol, PushProducer, Transport};
use twine_core::testing::Clock;

/// A channel whose window the test controls: writes beyond it wait in a buffer.
#[derive(Default)]
struct Channel {
    window: Cell<usize>,
    delivered: RefCell<Vec<u8>>,
    pending: RefCell<Vec<u8>>,
    most_pending: Cell<usize>,
    closed: Cell<bool>,
}

impl Channel {
    fn new(window: usize) -> Rc<Self> {
        let channel = Self::default();
        channel.window.set(window);
        Rc::new(channel)
    }

    fn open_window(&self) {
        self.window.set(usize::MAX);
        let rest = std::mem::take(&mut *self.pending.borrow_mut());
        self.delivered.borrow_mut().extend(rest);
    }
}

impl Transport for Channel {
    fn write(&self, data: &[u8]) {
        let mut pending = self.pending.borrow_mut();
        let take = if pending.is_empty() { data.len().min(self.window.get()) } else { 0 };
        self.window.set(self.window.get() - take);
        self.delivered.borrow_mut().extend_from_slice(&data[..take]);
        pending.extend_from_slice(&data[take..]);
        self.most_pending.set(self.most_pending.get().max(pending.len()));
    }
    fn lose_connection(&self) {
        self.closed.set(true);
    }
    fn abort_connection(&self) {
        self.closed.set(true);
    }
    fn write_eof(&self) {}
    fn peer(&self) -> Address {
        Address::Pipe
    }
    fn host(&self) -> Address {
        Address::Pipe
    }
    fn buffered(&self) -> usize {
        self.pending.borrow().len()
    }
    fn register_producer(&self, _producer: Rc<dyn PushProducer>) {}
    fn unregister_producer(&self) {}
    fn pause_producing(&self) {}
    fn resume_producing(&self) {}
}

/// One chat user: their session, channel and screen.
struct Person {
    session: TerminalSession<User>,
    channel: Rc<Channel>,
    screen: vt100::Parser,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

impl Person {
    fn join(
        clock: &Clock,
        chat: &Rc<RefCell<Chat>>,
        nick: &str,
        size: Size,
        window: usize,
    ) -> Self {
        let user = User::new(chat, nick);
        let mut session = TerminalSession::new(user, "xterm-256color", size, clock.scheduler());
        let channel = Channel::new(window);
        session.connection_made(Rc::clone(&channel) as Rc<dyn Transport>);
        let screen = vt100::Parser::new(nz(size.rows), nz(size.cols), 0);
        let mut person = Self { session, channel, screen };
        person.look(clock);
        person
    }

    /// Types `text` in pieces of `chunk` bytes.
    fn type_text(&mut self, clock: &Clock, text: &str, chunk: usize) {
        for piece in text.as_bytes().chunks(chunk) {
            self.session.data_received(piece);
            clock.advance(Duration::ZERO);
        }
        self.look(clock);
    }

    /// Runs what is due and shows what arrived.
    fn look(&mut self, clock: &Clock) -> String {
        clock.advance(Duration::from_millis(30));
        let bytes = std::mem::take(&mut *self.channel.delivered.borrow_mut());
        self.screen.process(&bytes);
        self.screen.screen().contents()
    }

    fn rows(&self) -> Vec<String> {
        let rows = self.screen.screen().rows(0, self.screen.screen().size().1.get());
        rows.map(|row| row.trim_end().to_owned()).collect()
    }
}

fn chat() -> Rc<RefCell<Chat>> {
    Rc::new(RefCell::new(Chat::default()))
}

/// Messages show on both screens in the order they were said, under the room's title bar and
/// above the input line, whether typed at once or one byte at a time.
#[test]
fn two_users_talk_whole_or_byte_by_byte() {
    for chunk in [usize::MAX, 1] {
        let clock = Clock::new();
        let chat = chat();
        let mut alice = Person::join(&clock, &chat, "alice", Size::new(60, 12), usize::MAX);
        let mut bob = Person::join(&clock, &chat, "bob", Size::new(60, 12), usize::MAX);
        alice.look(&clock);
        alice.type_text(&clock, "hello bob\r", chunk);
        bob.type_text(&clock, "hi alice\r", chunk);
        bob.type_text(&clock, "half-typ", chunk);
        alice.look(&clock);
        for person in [&alice, &bob] {
            let rows = person.rows();
            assert_eq!(rows[0], " #lobby · 2 here · /help", "{rows:#?}");
            let said: Vec<_> = rows.iter().filter(|r| r.contains(": h")).collect();
            assert_eq!(said, ["alice: hello bob", "bob: hi alice"], "{rows:#?}");
            let joins: Vec<_> = rows.iter().filter(|r| r.contains(" joined")).collect();
            assert_eq!(joins, ["* alice joined #lobby", "* bob joined #lobby"], "{rows:#?}");
        }
        assert_eq!(alice.rows()[11], "alice>");
        assert_eq!(bob.rows()[11], "bob> half-typ");
        assert_eq!(bob.screen.screen().cursor_position(), (11, 13));
    }
}

/// Rooms: `/join` moves a user (both rooms are told), messages stay in their room, `/rooms`
/// lists who is where, and whoever joins a room sees its history.
#[test]
fn rooms_keep_their_own_history() {
    let clock = Clock::new();
    let chat = chat();
    let mut alice = Person::join(&clock, &chat, "alice", Size::new(70, 16), usize::MAX);
    let mut bob = Person::join(&clock, &chat, "bob", Size::new(70, 16), usize::MAX);
    alice.type_text(&clock, "/join rust\r", 1);
    alice.type_text(&clock, "anyone here?\r", 3);
    let screen = bob.look(&clock);
    assert!(screen.contains("alice went to #rust"), "{screen}");
    assert!(!screen.contains("anyone here?"), "{screen}");
    bob.type_text(&clock, "/rooms\r", 2);
    assert!(bob.look(&clock).contains("#lobby: bob · #rust: alice"));
    bob.type_text(&clock, "/join #rust\r", usize::MAX);
    let screen = bob.look(&clock);
    assert!(screen.contains(" #rust · 2 here"), "{screen}");
    assert!(screen.contains("alice: anyone here?"), "history shown on join: {screen}");
    assert!(alice.look(&clock).contains("bob joined #rust"));
}

/// `/help` answers only who asked; an unknown command says so; Up brings back the last line.
#[test]
fn help_unknown_commands_and_history() {
    let clock = Clock::new();
    let chat = chat();
    let mut alice = Person::join(&clock, &chat, "alice", Size::new(100, 10), usize::MAX);
    let mut bob = Person::join(&clock, &chat, "bob", Size::new(100, 10), usize::MAX);
    alice.type_text(&clock, "/help\r/frobnicate\r", 1);
    let screen = alice.look(&clock);
    assert_eq!(screen.matches("/rooms: who is where").count(), 2, "welcome and /help: {screen}");
    assert!(screen.contains("no command /frobnicate; /help"), "{screen}");
    assert!(!bob.look(&clock).contains("frobnicate"));
    alice.type_text(&clock, "\x1b[A", 1);
    assert_eq!(alice.rows()[9], "alice> /frobnicate");
}

/// A narrower, shorter window is laid out again: the title, the latest messages wrapped to
/// the new width, and the input line on the new last row.
#[test]
fn a_resize_lays_the_screen_out_again() {
    let clock = Clock::new();
    let chat = chat();
    let mut alice = Person::join(&clock, &chat, "alice", Size::new(80, 24), usize::MAX);
    alice.type_text(&clock, "one two three four five six seven eight nine ten\r", usize::MAX);
    alice.screen.screen_mut().set_size(nz(8), nz(20));
    alice.session.handle().resize(Size::new(20, 8));
    alice.look(&clock);
    let rows = alice.rows();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0], " #lobby · 1 here · /");
    assert_eq!(rows[7], "alice>");
    assert!(rows[4..7].concat().contains("seven eight"), "{rows:#?}");
    assert!(rows.iter().all(|r| r.chars().count() <= 20));
}

/// `/quit` (or Ctrl-D) ends the session, restores the terminal, and the room hears it.
#[test]
fn quitting_leaves_the_room() {
    let clock = Clock::new();
    let chat = chat();
    let mut alice = Person::join(&clock, &chat, "alice", Size::new(60, 12), usize::MAX);
    let mut bob = Person::join(&clock, &chat, "bob", Size::new(60, 12), usize::MAX);
    let mut carol = Person::join(&clock, &chat, "carol", Size::new(60, 12), usize::MAX);
    bob.type_text(&clock, "/quit\r", 1);
    carol.type_text(&clock, "\x04", 1);
    assert!(bob.channel.closed.get() && carol.channel.closed.get());
    assert!(!bob.screen.screen().alternate_screen());
    let screen = alice.look(&clock);
    assert!(screen.contains("bob left") && screen.contains("carol left"), "{screen}");
    assert!(screen.contains("#lobby · 1 here"), "{screen}");
}

/// A user who reads nothing holds at most one frame while the others talk on; when they
/// read again they see the latest conversation.
#[test]
fn a_user_who_reads_nothing_holds_one_frame_and_stalls_nobody() {
    let clock = Clock::new();
    let chat = chat();
    let mut alice = Person::join(&clock, &chat, "alice", Size::new(80, 24), usize::MAX);
    let mut sleepy = Person::join(&clock, &chat, "sleepy", Size::new(80, 24), 100);
    for n in 0..300 {
        alice.type_text(&clock, &format!("message {n}\r"), usize::MAX);
        assert!(alice.look(&clock).contains(&format!("alice: message {n}")));
    }
    let held = sleepy.channel.most_pending.get();
    assert!(held < 8 * 1024, "one frame at most: {held} bytes");
    sleepy.channel.open_window();
    clock.advance(Duration::from_secs(1)); // the session looks again within a second
    let screen = sleepy.look(&clock);
    assert!(screen.contains("alice: message 299"), "{screen}");
}

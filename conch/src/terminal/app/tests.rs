//! Terminal sessions back to back with a channel-like transport (a window the test opens) and
//! a vt100 screen on the user's side, in virtual time.

use std::cell::{Cell, RefCell};
use std::num::NonZeroU16;
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::{Address, Protocol, PushProducer, Transport};
use twine_core::testing::Clock;

use super::*;
use crate::terminal::{KeyCode, Style};

/// The high-water mark of a channel's write buffer (`BufferLimits::default().high`).
const HIGH_WATER: usize = 64 * 1024;

/// A channel as a transport: writes go to the user as far as the window allows and are
/// buffered beyond it; the producer is paused past the high-water mark and resumed once the
/// buffer has drained, from a later turn, as `ChannelTransport` does.
struct FakeChannel {
    clock: Clock,
    window: Cell<usize>,
    delivered: RefCell<Vec<u8>>,
    pending: RefCell<Vec<u8>>,
    most_pending: Cell<usize>,
    producer: RefCell<Option<Rc<dyn PushProducer>>>,
    paused: Cell<bool>,
    closed: Cell<bool>,
}

impl FakeChannel {
    fn new(clock: &Clock, window: usize) -> Rc<Self> {
        Rc::new(Self {
            clock: clock.clone(),
            window: Cell::new(window),
            delivered: RefCell::new(Vec::new()),
            pending: RefCell::new(Vec::new()),
            most_pending: Cell::new(0),
            producer: RefCell::new(None),
            paused: Cell::new(false),
            closed: Cell::new(false),
        })
    }

    /// The user's side hands `n` more bytes of window back.
    fn open_window(&self, n: usize) {
        self.window.set(self.window.get().saturating_add(n));
        let mut pending = self.pending.borrow_mut();
        let take = pending.len().min(self.window.get());
        self.delivered.borrow_mut().extend(pending.drain(..take));
        self.window.set(self.window.get() - take);
        if pending.is_empty() && self.paused.replace(false) {
            if let Some(producer) = self.producer.borrow().clone() {
                self.clock.call_soon(move || producer.resume_producing());
            }
        }
    }

    fn take_delivered(&self) -> Vec<u8> {
        std::mem::take(&mut *self.delivered.borrow_mut())
    }
}

impl Transport for FakeChannel {
    fn write(&self, data: &[u8]) {
        if self.closed.get() {
            return;
        }
        let mut pending = self.pending.borrow_mut();
        let mut rest = data;
        if pending.is_empty() {
            let take = rest.len().min(self.window.get());
            self.delivered.borrow_mut().extend_from_slice(&rest[..take]);
            self.window.set(self.window.get() - take);
            rest = &rest[take..];
        }
        pending.extend_from_slice(rest);
        self.most_pending.set(self.most_pending.get().max(pending.len()));
        if pending.len() > HIGH_WATER && !self.paused.replace(true) {
            if let Some(producer) = self.producer.borrow().clone() {
                self.clock.call_soon(move || producer.pause_producing());
            }
        }
    }

    fn lose_connection(&self) {
        self.closed.set(true);
    }

    fn abort_connection(&self) {
        self.closed.set(true);
    }

    fn write_eof(&self) {}

    fn peer(&self) -> Address {
        Address::Named("user".into())
    }

    fn host(&self) -> Address {
        Address::Named("app".into())
    }

    fn buffered(&self) -> usize {
        self.pending.borrow().len()
    }

    fn register_producer(&self, producer: Rc<dyn PushProducer>) {
        *self.producer.borrow_mut() = Some(producer);
    }

    fn unregister_producer(&self) {
        *self.producer.borrow_mut() = None;
    }

    fn pause_producing(&self) {}

    fn resume_producing(&self) {}
}

/// The state every test session shares: a counter and the text typed so far, per session.
#[derive(Default)]
struct Board {
    counter: u64,
    sessions: Vec<SessionHandle>,
}

/// Shows the shared counter, what this user typed, the keys it saw and the size; `q` quits
/// with status 3; `+` bumps the counter and wakes every session.
struct Probe {
    board: Rc<RefCell<Board>>,
    typed: String,
    keys: Vec<String>,
    size: Size,
    ended: Rc<Cell<bool>>,
}

impl TerminalApp for Probe {
    fn start(&mut self, ctx: &mut AppContext<'_>) {
        self.size = ctx.size();
        self.board.borrow_mut().sessions.push(ctx.handle());
    }

    fn event(&mut self, ctx: &mut AppContext<'_>, event: &Event) {
        match event {
            Event::Key(key) => match key.code {
                KeyCode::Char('q') => ctx.quit(3),
                KeyCode::Char('+') => {
                    self.board.borrow_mut().counter += 1;
                    for handle in &self.board.borrow().sessions {
                        handle.redraw();
                    }
                }
                KeyCode::Char(c) if key.modifiers.is_empty() => self.typed.push(c),
                other => self.keys.push(format!("{other:?}")),
            },
            Event::Paste(text) => self.typed.push_str(text),
            Event::Resize(size) => self.size = *size,
            _ => {}
        }
    }

    fn draw(&mut self, canvas: &mut Canvas) {
        let counter = self.board.borrow().counter;
        canvas.put_str(0, 0, &format!("counter {counter}"), Style::DEFAULT);
        canvas.put_str(1, 0, &format!("typed {}", self.typed), Style::DEFAULT);
        canvas.put_str(2, 0, &format!("keys {}", self.keys.join(",")), Style::DEFAULT);
        let size = format!("size {}x{}", self.size.cols, self.size.rows);
        canvas.put_str(canvas.size().rows - 1, 0, &size, Style::DEFAULT);
        canvas.set_cursor(Some((1, 6 + u16::try_from(self.typed.len()).unwrap_or(0))));
    }

    fn end(&mut self) {
        self.ended.set(true);
    }
}

/// One user: the session, its channel, and their vt100 screen.
struct User {
    session: TerminalSession<Probe>,
    channel: Rc<FakeChannel>,
    screen: vt100::Parser,
    ended: Rc<Cell<bool>>,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

impl User {
    fn connect(clock: &Clock, board: &Rc<RefCell<Board>>, size: Size, window: usize) -> Self {
        let ended = Rc::new(Cell::new(false));
        let probe = Probe {
            board: Rc::clone(board),
            typed: String::new(),
            keys: Vec::new(),
            size: Size::DEFAULT,
            ended: Rc::clone(&ended),
        };
        let mut session = TerminalSession::new(probe, "xterm-256color", size, clock.scheduler());
        let channel = FakeChannel::new(clock, window);
        session.connection_made(Rc::clone(&channel) as Rc<dyn Transport>);
        let screen = vt100::Parser::new(nz(size.rows), nz(size.cols), 0);
        let mut user = Self { session, channel, screen, ended };
        user.settle(clock);
        user
    }

    fn type_bytes(&mut self, clock: &Clock, bytes: &[u8]) {
        self.session.data_received(bytes);
        self.settle(clock);
    }

    /// Runs what is due and moves what the user received to their screen.
    fn settle(&mut self, clock: &Clock) {
        clock.advance(Duration::ZERO);
        let bytes = self.channel.take_delivered();
        self.screen.process(&bytes);
    }

    fn row(&self, row: u16) -> String {
        let (_, cols) = self.screen.screen().size();
        self.screen.screen().contents_between(row, 0, row, cols.get()).trim_end().to_owned()
    }
}

fn board() -> Rc<RefCell<Board>> {
    Rc::new(RefCell::new(Board::default()))
}

/// The session enters the alternate screen and draws the application's first frame.
#[test]
fn a_session_starts_on_the_alternate_screen_with_the_first_frame() {
    let clock = Clock::new();
    let user = User::connect(&clock, &board(), Size::new(40, 10), usize::MAX);
    assert!(user.screen.screen().alternate_screen());
    assert!(user.screen.screen().bracketed_paste());
    assert_eq!(user.row(0), "counter 0");
    assert_eq!(user.row(9), "size 40x10");
}

/// Typing, arrows and a bracketed paste reach the application the same whether they arrive
/// at once or one byte at a time, and what it draws is on the user's screen.
#[test]
fn input_reaches_the_app_whole_or_one_byte_at_a_time() {
    let input: &[u8] = b"hi\x1b[A\x1bOB\x1b[1;5C\x1b[200~pasted\x1b[201~!";
    let mut screens = Vec::new();
    for chunk in [input.len(), 1] {
        let clock = Clock::new();
        let mut user = User::connect(&clock, &board(), Size::new(40, 10), usize::MAX);
        for piece in input.chunks(chunk) {
            user.type_bytes(&clock, piece);
        }
        assert_eq!(user.row(1), "typed hipasted!");
        assert_eq!(user.row(2), "keys Up,Down,Right");
        assert_eq!(user.screen.screen().cursor_position(), (1, 15));
        screens.push(user.screen.screen().contents());
    }
    assert_eq!(screens[0], screens[1]);
}

/// A lone Escape is reported once the decoder's timeout passes, from the session's timer.
#[test]
fn a_lone_escape_arrives_after_the_timeout() {
    let clock = Clock::new();
    let mut user = User::connect(&clock, &board(), Size::new(40, 10), usize::MAX);
    user.type_bytes(&clock, b"\x1b");
    assert_eq!(user.row(2), "keys");
    clock.advance(Duration::from_secs(1));
    user.settle(&clock);
    assert_eq!(user.row(2), "keys Escape");
}

/// A window change reaches the application as a resize, and the next frame is drawn at the
/// new size.
#[test]
fn a_window_change_redraws_at_the_new_size() {
    let clock = Clock::new();
    let mut user = User::connect(&clock, &board(), Size::new(40, 10), usize::MAX);
    user.screen.set_size(nz(6), nz(30));
    user.session.handle().resize(Size::new(30, 6));
    user.settle(&clock);
    assert_eq!(user.row(5), "size 30x6");
    assert_eq!(user.row(0), "counter 0");
}

/// Quitting restores the user's terminal, closes the channel and ends the application once;
/// the handle then reports the session closed and does nothing.
#[test]
fn quitting_restores_the_terminal_and_closes_the_channel() {
    let clock = Clock::new();
    let mut user = User::connect(&clock, &board(), Size::new(40, 10), usize::MAX);
    let handle = user.session.handle();
    assert!(handle.is_open());
    user.type_bytes(&clock, b"q");
    assert!(!user.screen.screen().alternate_screen());
    assert!(!user.screen.screen().hide_cursor());
    assert!(user.channel.closed.get());
    assert!(user.ended.get());
    assert!(!handle.is_open());
    handle.redraw();
    clock.advance(Duration::ZERO);
    assert!(user.channel.take_delivered().is_empty());
}

/// A lost connection ends the application, and nothing is written after.
#[test]
fn a_lost_connection_ends_the_application() {
    let clock = Clock::new();
    let mut user = User::connect(&clock, &board(), Size::new(40, 10), usize::MAX);
    user.session.connection_lost(Reason::Done);
    assert!(user.ended.get());
    user.type_bytes(&clock, b"abc");
    assert!(user.channel.take_delivered().is_empty());
}

/// One user's update wakes the others through their handles.
#[test]
fn a_redraw_from_another_session_updates_every_screen() {
    let clock = Clock::new();
    let board = board();
    let mut alice = User::connect(&clock, &board, Size::new(40, 10), usize::MAX);
    let mut bob = User::connect(&clock, &board, Size::new(40, 10), usize::MAX);
    alice.type_bytes(&clock, b"++");
    bob.settle(&clock);
    assert_eq!(alice.row(0), "counter 2");
    assert_eq!(bob.row(0), "counter 2");
}

/// The backpressure bound: a user whose window never opens holds at most one frame while
/// another keeps receiving every update; the slow user's application is not even drawn for
/// the frames in between, and once the window opens they get the latest frame.
#[test]
fn a_user_whose_window_never_opens_stalls_nobody_and_holds_one_frame() {
    let clock = Clock::new();
    let board = board();
    let mut fast = User::connect(&clock, &board, Size::new(80, 24), usize::MAX);
    let mut slow = User::connect(&clock, &board, Size::new(80, 24), 0);
    let held = slow.channel.buffered();
    assert!(held > 0, "the start of the session waits for the window");
    for n in 1..=2000 {
        fast.type_bytes(&clock, b"+");
        assert_eq!(fast.row(0), format!("counter {n}"));
        clock.advance(Duration::from_millis(5));
    }
    let slow_frames = slow.session.shared.state.borrow().frames;
    assert!(slow_frames <= 1, "no frame drawn while the user is behind: {slow_frames}");
    assert_eq!(slow.channel.most_pending.get(), held, "nothing more was buffered");
    assert!(held < 4096, "at most one frame of 80x24: {held} bytes");
    slow.channel.open_window(usize::MAX);
    clock.advance(MAX_RETRY_DELAY);
    slow.settle(&clock);
    assert_eq!(slow.row(0), "counter 2000");
    assert_eq!(slow.session.shared.state.borrow().frames, slow_frames + 1);
}

/// A user whose window opens a little at a time gets frames only as fast as they take them,
/// and always ends up with the latest.
#[test]
fn a_slow_user_skips_frames_and_ends_with_the_latest() {
    let clock = Clock::new();
    let board = board();
    let mut fast = User::connect(&clock, &board, Size::new(80, 24), usize::MAX);
    let mut slow = User::connect(&clock, &board, Size::new(80, 24), 0);
    for _ in 0..500 {
        fast.type_bytes(&clock, b"+");
        slow.channel.open_window(7);
        clock.advance(Duration::from_millis(5));
        assert!(slow.channel.buffered() <= slow.channel.most_pending.get());
    }
    slow.channel.open_window(usize::MAX);
    clock.advance(MAX_RETRY_DELAY);
    slow.settle(&clock);
    assert_eq!(slow.row(0), "counter 500");
    let frames = slow.session.shared.state.borrow().frames;
    assert!(frames < 500, "intermediate frames are skipped: {frames} drawn");
    assert!(slow.channel.most_pending.get() < 4096);
}

/// Past the high-water mark the channel pauses the session; nothing is drawn until it
/// resumes, and then the latest state is.
#[test]
fn a_paused_channel_holds_frames_until_it_resumes() {
    let clock = Clock::new();
    let board = board();
    let mut user = User::connect(&clock, &board, Size::new(40, 10), usize::MAX);
    user.session.shared.paused.set(true);
    board.borrow_mut().counter = 9;
    user.session.handle().redraw();
    user.settle(&clock);
    assert_eq!(user.row(0), "counter 0");
    let producer = user.channel.producer.borrow().clone().unwrap();
    producer.resume_producing();
    user.settle(&clock);
    assert_eq!(user.row(0), "counter 9");
}

//! Full-screen terminal applications on in-process SSH sessions: the glue between a
//! [`Terminal`], a [`Screen`] and the session's channel.
//!
//! An application implements [`TerminalApp`] for one user's session: it gets that user's
//! decoded input [`Event`]s (keys, paste, and [`Event::Resize`] from `window-change`), and
//! draws its whole state onto a [`Canvas`] whenever asked. [`terminal_sessions`] turns a
//! builder of such applications into an [`InProcessSessions`] backend: each session gets a
//! [`Terminal`] for the `TERM` and size of its `pty-req`, the alternate screen, and a
//! [`TerminalSession`] protocol that drives the application.
//!
//! Applications that share state (a chat room, a game) wake each other through
//! [`SessionHandle::redraw`]: the handle only marks the session dirty and schedules a redraw
//! on a later turn of the loop, so one session never runs inside another's callback.
//!
//! # Backpressure
//!
//! A frame is drawn and rendered only when the user's channel has taken everything sent before
//! (its transport buffers nothing) and the channel has not paused its producer. While a user
//! is behind — their window is full, their link is slow — redraws only mark the session dirty;
//! when the channel drains, the application draws once, and the [`Screen`] sends the
//! difference between that latest frame and the one the user last received. Intermediate
//! frames are never drawn or encoded, so a slow user holds at most one render of memory and
//! costs the others nothing.
//!
//! The session hears that the channel drained from its producer's resume (when the buffer went
//! past the high-water mark) or by looking again: after 20 ms, then backing off to 320 ms while
//! the user stays behind.
//!
//! ```no_run
//! use twine_conch::terminal::app::{terminal_sessions, AppContext, TerminalApp};
//! use twine_conch::terminal::{Canvas, Event, KeyCode, Style};
//!
//! /// Counts key presses; `q` quits.
//! struct Counter(u32);
//!
//! impl TerminalApp for Counter {
//!     fn event(&mut self, ctx: &mut AppContext<'_>, event: &Event) {
//!         match event {
//!             Event::Key(key) if key.code == KeyCode::Char('q') => ctx.quit(0),
//!             Event::Key(_) => self.0 += 1,
//!             _ => {}
//!         }
//!     }
//!     fn draw(&mut self, canvas: &mut Canvas) {
//!         canvas.put_str(0, 0, &format!("{} keys; q quits", self.0), Style::DEFAULT);
//!     }
//! }
//!
//! let reactor = twine_core::Reactor::new()?;
//! let sessions = terminal_sessions(reactor.scheduler(), |_info| Some(Counter(0)));
//! # let _ = sessions;
//! # Ok::<(), twine_core::Error>(())
//! ```

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use twine_core::error::Reason;
use twine_core::protocol::{Protocol, PushProducer, Transport};
use twine_core::time::{DelayedCall, Scheduler};

use super::{Canvas, Capabilities, DecoderConfig, Event, Screen, Size, Terminal};
use crate::server::session::{InProcessSessions, SessionInfo};

/// How long to wait before looking again at a channel that still holds output but has not
/// paused its producer (its buffer is under the high-water mark, so no resume will come); the
/// wait doubles, up to [`MAX_RETRY_DELAY`], while the user stays behind.
const RETRY_DELAY: Duration = Duration::from_millis(20);

/// The longest wait between looks at a channel whose user is behind.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(320);

/// The `TERM` assumed for a session without a pty request.
const DEFAULT_TERM: &str = "vt100";

/// One user's full-screen application (see the [module documentation](self)).
pub trait TerminalApp {
    /// The session started: the terminal is in the alternate screen and a first
    /// [`draw`](Self::draw) follows. Keep [`AppContext::handle`] to be woken by others.
    fn start(&mut self, ctx: &mut AppContext<'_>) {
        let _ = ctx;
    }

    /// The user did something. A redraw follows every batch of events.
    fn event(&mut self, ctx: &mut AppContext<'_>, event: &Event);

    /// Draws the whole state onto `canvas`, which is blank and the terminal's size.
    fn draw(&mut self, canvas: &mut Canvas);

    /// The session ended: the user left, [`AppContext::quit`] was called, or the connection
    /// was lost. Nothing more is drawn.
    fn end(&mut self) {}
}

/// What an application's callbacks may do with their session.
pub struct AppContext<'a> {
    terminal: &'a Terminal,
    handle: &'a SessionHandle,
    quit: &'a mut Option<u32>,
}

impl AppContext<'_> {
    /// The user's terminal: its size and capabilities.
    pub fn terminal(&self) -> &Terminal {
        self.terminal
    }

    /// The terminal's size.
    pub fn size(&self) -> Size {
        self.terminal.size()
    }

    /// A handle to this session, for other sessions to wake it.
    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }

    /// Ends the session with exit status `status` once this callback returns: the terminal is
    /// restored (normal screen, cursor shown) and the channel closed.
    pub fn quit(&mut self, status: u32) {
        *self.quit = Some(status);
    }
}

impl fmt::Debug for AppContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppContext").field("size", &self.size()).finish_non_exhaustive()
    }
}

/// The session side of a [`SessionHandle`].
trait Wake {
    fn redraw(&self);
    fn resize(&self, size: Size);
    fn is_open(&self) -> bool;
}

/// A handle to one session, cheap to clone and safe to keep after the session ends (it then
/// does nothing).
#[derive(Clone)]
pub struct SessionHandle {
    session: Weak<dyn Wake>,
}

impl SessionHandle {
    /// Asks for the application to be drawn again on a later turn of the loop (or, while the
    /// user is behind, once they have caught up).
    pub fn redraw(&self) {
        if let Some(session) = self.session.upgrade() {
            session.redraw();
        }
    }

    /// The user's terminal is now `size` (a `window-change`): the application gets
    /// [`Event::Resize`] on a later turn.
    pub fn resize(&self, size: Size) {
        if let Some(session) = self.session.upgrade() {
            session.resize(size);
        }
    }

    /// Whether the session is still running.
    pub fn is_open(&self) -> bool {
        self.session.upgrade().is_some_and(|session| session.is_open())
    }

    /// Whether two handles name the same session.
    pub fn same_session(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.session, &other.session)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle").field("open", &self.is_open()).finish()
    }
}

/// Sessions whose applications `build` makes: an [`InProcessSessions`] backend in which every
/// session runs a [`TerminalSession`] on `scheduler` (the reactor's). `build` sees the session
/// (user, command, `TERM`, size) and returns the application, or `None` to refuse it.
///
/// The terminal is the pty request's `TERM` (`vt100` without one) and size (80x24 without
/// one), with `COLORTERM` if the server accepted it (`AcceptEnv`); `window-change` requests
/// become [`Event::Resize`]; [`AppContext::quit`]'s status is the session's exit status.
pub fn terminal_sessions<A, F>(scheduler: Rc<dyn Scheduler>, build: F) -> InProcessSessions
where
    A: TerminalApp + 'static,
    F: Fn(&SessionInfo) -> Option<A> + 'static,
{
    InProcessSessions::new(move |info| {
        let app = build(info)?;
        let size = info.window_size().map_or(Size::DEFAULT, |s| Size::from_pty(s.cols, s.rows));
        let term = info.term().unwrap_or(DEFAULT_TERM);
        let colorterm = info.env.iter().find(|(name, _)| name == "COLORTERM");
        let colorterm = colorterm.and_then(|(_, value)| std::str::from_utf8(value).ok());
        let caps = Capabilities::from_term(term, colorterm);
        let terminal = Terminal::with_capabilities(caps, size, DecoderConfig::default());
        let session = TerminalSession::with_terminal(app, terminal, Rc::clone(&scheduler));
        session.shared.info.replace(Some(Rc::clone(info)));
        let handle = session.handle();
        info.on_window_change(move |size| handle.resize(Size::from_pty(size.cols, size.rows)));
        Some(Box::new(session))
    })
}

/// The [`Protocol`] that runs one [`TerminalApp`] over a channel (or any transport), paced by
/// what the transport accepts (see the [module documentation](self)).
pub struct TerminalSession<A> {
    shared: Rc<Shared<A>>,
}

impl<A: TerminalApp + 'static> TerminalSession<A> {
    /// A session of `app` on a terminal named `term` of `size`, whose later calls run on
    /// `scheduler`.
    pub fn new(app: A, term: &str, size: Size, scheduler: Rc<dyn Scheduler>) -> Self {
        Self::with_terminal(app, Terminal::new(term, size), scheduler)
    }

    /// A session of `app` on `terminal` (explicit capabilities, decoder settings).
    pub fn with_terminal(app: A, terminal: Terminal, scheduler: Rc<dyn Scheduler>) -> Self {
        let size = terminal.size();
        let screen = Screen::new(terminal.capabilities().clone());
        let shared = Rc::new_cyclic(|me: &Weak<Shared<A>>| {
            let weak: Weak<dyn Wake> = me.clone();
            Shared {
                me: me.clone(),
                handle: SessionHandle { session: weak },
                scheduler,
                info: RefCell::new(None),
                state: RefCell::new(State {
                    app,
                    terminal,
                    screen,
                    canvas: Canvas::new(size),
                    transport: None,
                    dirty: false,
                    quit: None,
                    frames: 0,
                }),
                phase: Cell::new(Phase::Waiting),
                wake_scheduled: Cell::new(false),
                resize: Cell::new(None),
                paused: Cell::new(false),
                retry: RefCell::new(None),
                retry_delay: Cell::new(RETRY_DELAY),
                timeout: RefCell::new(None),
            }
        });
        Self { shared }
    }

    /// A handle to this session.
    pub fn handle(&self) -> SessionHandle {
        self.shared.handle.clone()
    }
}

impl<A> fmt::Debug for TerminalSession<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalSession").field("phase", &self.shared.phase.get()).finish()
    }
}

impl<A: TerminalApp + 'static> Protocol for TerminalSession<A> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.shared.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.shared.data_received(data);
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("terminal session ended: {reason}");
        self.shared.end();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before `connection_made`.
    Waiting,
    Running,
    /// Quit, lost, or ended.
    Ended,
}

struct State<A> {
    app: A,
    terminal: Terminal,
    screen: Screen,
    canvas: Canvas,
    transport: Option<Rc<dyn Transport>>,
    /// Whether the application's state may differ from the last frame rendered.
    dirty: bool,
    quit: Option<u32>,
    /// How many frames were rendered.
    frames: u64,
}

struct Shared<A> {
    me: Weak<Self>,
    handle: SessionHandle,
    scheduler: Rc<dyn Scheduler>,
    /// The SSH session, to report the exit status (`None` outside an SSH session).
    info: RefCell<Option<Rc<SessionInfo>>>,
    state: RefCell<State<A>>,
    phase: Cell<Phase>,
    wake_scheduled: Cell<bool>,
    /// The latest size from `window-change`, not yet given to the terminal.
    resize: Cell<Option<Size>>,
    /// Whether the transport paused us (its buffer is past its high-water mark).
    paused: Cell<bool>,
    retry: RefCell<Option<DelayedCall>>,
    /// The wait before the next retry.
    retry_delay: Cell<Duration>,
    timeout: RefCell<Option<DelayedCall>>,
}

impl<A: TerminalApp + 'static> Shared<A> {
    fn connection_made(&self, transport: Rc<dyn Transport>) {
        if self.phase.get() != Phase::Waiting {
            return;
        }
        self.phase.set(Phase::Running);
        if let Some(size) = self.resize.take() {
            self.state.borrow_mut().terminal.handle_resize(size);
        }
        let producer: Rc<dyn PushProducer> = Rc::new(Producer(self.me.clone()));
        transport.register_producer(producer);
        let mut setup = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let mut emitter = state.terminal.emitter(&mut setup);
            emitter.alternate_screen(true);
            emitter.bracketed_paste(true);
            state.transport = Some(Rc::clone(&transport));
        }
        transport.write(&setup);
        self.with_app(|app, ctx| app.start(ctx));
        self.settle();
    }

    fn data_received(&self, data: &[u8]) {
        if self.phase.get() != Phase::Running {
            return;
        }
        let now = self.scheduler.now();
        self.state.borrow_mut().terminal.handle_input(now, data);
        self.run_events();
        self.settle();
    }

    /// A scheduled turn: a resize, an input timeout, a redraw, or a drained channel.
    fn wake(&self) {
        self.wake_scheduled.set(false);
        if self.phase.get() != Phase::Running {
            return;
        }
        if let Some(size) = self.resize.take() {
            self.state.borrow_mut().terminal.handle_resize(size);
        }
        let now = self.scheduler.now();
        {
            let mut state = self.state.borrow_mut();
            if state.terminal.poll_timeout().is_some_and(|at| at <= now) {
                state.terminal.handle_timeout(now);
            }
        }
        self.run_events();
        self.settle();
    }

    fn schedule_wake(&self) {
        if self.wake_scheduled.replace(true) {
            return;
        }
        let me = self.me.clone();
        self.scheduler.call_soon_boxed(Box::new(move || {
            if let Some(me) = me.upgrade() {
                me.wake();
            }
        }));
    }

    /// Hands every decoded event to the application.
    fn run_events(&self) {
        loop {
            let event = self.state.borrow_mut().terminal.poll_event();
            let Some(event) = event else { break };
            self.with_app(|app, ctx| app.event(ctx, &event));
            if self.state.borrow().quit.is_some() {
                break;
            }
        }
    }

    /// Runs `f` on the application with a context, and marks the screen dirty.
    fn with_app(&self, f: impl FnOnce(&mut A, &mut AppContext<'_>)) {
        let mut state = self.state.borrow_mut();
        let State { app, terminal, quit, dirty, .. } = &mut *state;
        let mut ctx = AppContext { terminal, handle: &self.handle, quit };
        f(app, &mut ctx);
        *dirty = true;
    }

    /// After a callback: quit if asked, else draw if the user can take it, and keep the input
    /// timer armed.
    fn settle(&self) {
        let quit = self.state.borrow().quit;
        if let Some(status) = quit {
            self.quit(status);
            return;
        }
        self.present();
        self.arm_timeout();
    }

    /// Draws and sends a frame if the screen is dirty and the user has taken the last one.
    fn present(&self) {
        if self.phase.get() != Phase::Running || self.paused.get() {
            return;
        }
        let mut state = self.state.borrow_mut();
        if !state.dirty {
            return;
        }
        let Some(transport) = state.transport.clone() else { return };
        if transport.buffered() > 0 {
            drop(state);
            self.arm_retry();
            return;
        }
        self.retry_delay.set(RETRY_DELAY);
        let size = state.terminal.size();
        if state.canvas.size() == size {
            state.canvas.clear();
        } else {
            state.canvas.resize(size);
        }
        let State { app, canvas, screen, .. } = &mut *state;
        app.draw(canvas);
        let mut out = Vec::new();
        screen.render(canvas, &mut out);
        state.dirty = false;
        state.frames += 1;
        drop(state);
        if !out.is_empty() {
            transport.write(&out);
        }
    }

    fn arm_retry(&self) {
        let mut retry = self.retry.borrow_mut();
        if retry.as_ref().is_some_and(DelayedCall::active) {
            return;
        }
        let delay = self.retry_delay.get();
        self.retry_delay.set((delay * 2).min(MAX_RETRY_DELAY));
        let me = self.me.clone();
        *retry = Some(self.scheduler.call_later_boxed(
            delay,
            Box::new(move || {
                if let Some(me) = me.upgrade() {
                    me.present();
                }
            }),
        ));
    }

    fn arm_timeout(&self) {
        let Some(at) = self.state.borrow().terminal.poll_timeout() else { return };
        let mut timeout = self.timeout.borrow_mut();
        if timeout.as_ref().is_some_and(|call| call.active() && call.deadline() == Some(at)) {
            return;
        }
        if let Some(call) = timeout.take() {
            call.cancel();
        }
        let delay = at.saturating_duration_since(self.scheduler.now());
        let me = self.me.clone();
        *timeout = Some(self.scheduler.call_later_boxed(
            delay,
            Box::new(move || {
                if let Some(me) = me.upgrade() {
                    me.wake();
                }
            }),
        ));
    }

    /// Restores the user's terminal and closes the channel with `status`.
    fn quit(&self, status: u32) {
        let transport = self.state.borrow_mut().transport.take();
        if let Some(info) = self.info.borrow().as_ref() {
            info.set_exit_status(status);
        }
        self.end();
        if let Some(transport) = transport {
            let mut out = Vec::new();
            self.state.borrow().terminal.emitter(&mut out).restore();
            transport.write(&out);
            transport.unregister_producer();
            transport.lose_connection();
        }
    }

    /// The session is over: the application hears it once; timers stop.
    fn end(&self) {
        if self.phase.replace(Phase::Ended) == Phase::Ended {
            return;
        }
        let timers = [self.retry.borrow_mut().take(), self.timeout.borrow_mut().take()];
        for call in timers.into_iter().flatten() {
            call.cancel();
        }
        let mut state = self.state.borrow_mut();
        state.app.end();
        if state.quit.is_none() {
            state.transport = None;
        }
    }
}

impl<A: TerminalApp + 'static> Wake for Shared<A> {
    fn redraw(&self) {
        if self.phase.get() == Phase::Ended {
            return;
        }
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.dirty = true;
        } else {
            // Called from inside this session's own callback: it redraws afterwards anyway.
            return;
        }
        self.schedule_wake();
    }

    fn resize(&self, size: Size) {
        if self.phase.get() == Phase::Ended {
            return;
        }
        self.resize.set(Some(size));
        self.schedule_wake();
    }

    fn is_open(&self) -> bool {
        self.phase.get() != Phase::Ended
    }
}

/// The session as its transport's producer: paused while the transport's buffer is full.
struct Producer<A>(Weak<Shared<A>>);

impl<A: TerminalApp + 'static> PushProducer for Producer<A> {
    fn pause_producing(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.paused.set(true);
        }
    }

    fn resume_producing(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.paused.set(false);
            shared.present();
        }
    }

    fn stop_producing(&self) {}
}

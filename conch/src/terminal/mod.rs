//! Terminal applications over SSH, sans-IO: the decoding of what the user types, the escape
//! sequences that draw on their screen, a line editor and a command REPL.
//!
//! Twisted's `insults`, `recvline` and `manhole` are the ancestors. Nothing here touches a
//! socket, a channel or a clock: bytes and time go in, events and bytes (appended to the
//! caller's buffer) come out, so one session of an in-process terminal application is a
//! [`Terminal`] plus the application's state, driven by whatever carries the bytes.
//!
//! ```text
//!  input    bytes → Event: keys (xterm, vt100, rxvt, Linux console), paste, focus
//!  output   Capabilities from TERM; Emitter: cursor, erase, colours, modes, title
//!  screen   Canvas (a frame of cells), Screen (sends what changed), Presenter (paces it)
//!  line     LineEditor: a prompt, cursor editing, history, password mode (recvline)
//!  repl     Repl: named commands, help, completion, history, exit (manhole)
//!  width    display width of text (wide and combining characters), sanitizing
//!  app      TerminalApp on in-process SSH sessions: events in, frames out, paced by the
//!           channel (the one part that touches a transport and a scheduler)
//! ```
//!
//! # Example: a REPL
//!
//! ```
//! use std::time::Instant;
//! use twine_conch::terminal::{Repl, ReplEvent, Reply, Size, Terminal};
//!
//! // Per session: the terminal the client asked for in its pty request...
//! let mut term = Terminal::new("xterm-256color", Size::new(80, 24));
//! // ...and the application's commands, each with help text and a handler.
//! let mut repl: Repl<u32> = Repl::new("> ");
//! repl.command("add", "add N: add N to the counter", |counter, args| {
//!     match args.trim().parse::<u32>() {
//!         Ok(n) => {
//!             *counter += n;
//!             Reply::Output(format!("counter is {counter}"))
//!         }
//!         Err(_) => Reply::Error("add wants a number".into()),
//!     }
//! });
//!
//! let mut counter = 0;
//! let mut out = Vec::new(); // what to send on the channel
//! repl.start(&term, &mut out);
//! term.handle_input(Instant::now(), b"add 2\r");
//! while let Some(event) = term.poll_event() {
//!     if repl.handle_event(&mut counter, &term, &event, &mut out) == Some(ReplEvent::Exit) {
//!         // The session closes the channel here.
//!     }
//! }
//! assert_eq!(counter, 2);
//! assert!(String::from_utf8_lossy(&out).contains("counter is 2"));
//! ```
//!
//! # Driving a session
//!
//! 1. On the pty request: [`Terminal::new`] with its `TERM` and size (or
//!    [`Terminal::with_capabilities`]); on `window-change`: [`Terminal::handle_resize`].
//! 2. On channel data: [`Terminal::handle_input`] with the current time, then
//!    [`Terminal::poll_event`] until `None`, handing each event to the application, which
//!    appends its output to a buffer.
//! 3. Keep one timer at [`Terminal::poll_timeout`]; when it fires, call
//!    [`Terminal::handle_timeout`] and poll events again (a lone Escape key is reported then).
//! 4. Send the buffer on the channel. A full-screen application draws into a [`Canvas`] as
//!    often as it likes; a [`Presenter`] renders it only when the channel has taken the previous
//!    render, sending the difference between the latest frame and what the user has. Frames
//!    drawn in between cost nothing, and a slow user holds at most one render in memory.
//!
//! On an in-process SSH session, [`app`] does all of this: implement [`TerminalApp`], hand a
//! builder to [`terminal_sessions`], and each user's session gets its `TERM`, size, resizes,
//! decoded events and paced full-screen drawing.

pub mod app;
pub mod input;
pub mod line;
pub mod output;
pub mod repl;
pub mod screen;
pub mod width;

#[cfg(test)]
mod tests;

use std::time::Instant;

pub use self::app::{terminal_sessions, AppContext, SessionHandle, TerminalApp, TerminalSession};
pub use self::input::{Decoder, DecoderConfig, Event, KeyCode, KeyEvent, Modifiers};
pub use self::line::{LineConfig, LineEditor, LineEvent};
pub use self::output::{Capabilities, Color, ColorSupport, Emitter, Style};
pub use self::repl::{Repl, ReplEvent, Reply};
pub use self::screen::{Canvas, Cell, Presenter, Screen};

/// A terminal window's size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Size {
    /// Columns (width).
    pub cols: u16,
    /// Rows (height).
    pub rows: u16,
}

impl Size {
    /// The terminals' traditional size, for clients that did not say.
    pub const DEFAULT: Self = Self { cols: 80, rows: 24 };

    /// `cols` by `rows`; zeros (a pty request may carry them) become the default size.
    pub const fn new(cols: u16, rows: u16) -> Self {
        Self {
            cols: if cols == 0 { Self::DEFAULT.cols } else { cols },
            rows: if rows == 0 { Self::DEFAULT.rows } else { rows },
        }
    }

    /// Width and height from the `u32` fields of an SSH pty request or window change, clamped.
    pub fn from_pty(cols: u32, rows: u32) -> Self {
        Self::new(u16::try_from(cols).unwrap_or(u16::MAX), u16::try_from(rows).unwrap_or(u16::MAX))
    }
}

impl Default for Size {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One user's terminal, as the server sees it: what it can do, how big it is, and the decoder
/// of what the user types. Sans-IO; see the module documentation for how to drive it.
#[derive(Debug)]
pub struct Terminal {
    caps: Capabilities,
    size: Size,
    decoder: Decoder,
    /// A resize not yet reported as an event (only the latest counts).
    resized: bool,
}

impl Terminal {
    /// A terminal named `term` (the pty request's `TERM`), of `size`.
    pub fn new(term: &str, size: Size) -> Self {
        Self::with_capabilities(Capabilities::from_term(term, None), size, DecoderConfig::default())
    }

    /// A terminal with explicit capabilities and decoder settings.
    pub fn with_capabilities(caps: Capabilities, size: Size, config: DecoderConfig) -> Self {
        Self { caps, size, decoder: Decoder::new(config), resized: false }
    }

    /// Takes bytes the user's terminal sent (channel data) at `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.decoder.handle_input(now, bytes);
    }

    /// The window is now `size` (a `window-change` request). Several resizes before the next
    /// poll are reported once, with the latest size.
    pub fn handle_resize(&mut self, size: Size) {
        if size != self.size {
            self.size = size;
            self.resized = true;
        }
    }

    /// The time is `now`; see [`Terminal::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.decoder.handle_timeout(now);
    }

    /// The next event: a pending resize first, then decoded input.
    pub fn poll_event(&mut self) -> Option<Event> {
        if std::mem::take(&mut self.resized) {
            return Some(Event::Resize(self.size));
        }
        self.decoder.poll_event()
    }

    /// When to call [`Terminal::handle_timeout`], if anything waits for time to pass.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.decoder.poll_timeout()
    }

    /// An [`Emitter`] for this terminal, appending to `out`.
    pub fn emitter<'a>(&'a self, out: &'a mut Vec<u8>) -> Emitter<'a> {
        Emitter::new(&self.caps, out)
    }

    /// What the terminal can do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The window size.
    pub fn size(&self) -> Size {
        self.size
    }
}

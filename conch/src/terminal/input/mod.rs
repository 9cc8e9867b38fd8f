//! The input decoder: bytes typed at the user's terminal in, key and paste events out.
//!
//! A terminal sends keys as bytes: printable text as UTF-8, Ctrl+letter as a C0 control, and
//! everything else as escape sequences whose shape depends on the terminal (`ESC [ A`,
//! `ESC O A` and `ESC [ 1 ; 5 A` are all Up). [`Decoder`] knows the xterm, vt100/vt220, rxvt and
//! Linux console variants, decodes input in any chunking (a multi-byte character or a sequence
//! may be split anywhere), and drops what it does not know without harm.
//!
//! A lone `ESC` is ambiguous: it is the Escape key, or the start of a sequence whose rest has
//! not arrived yet. The decoder waits for [`DecoderConfig::escape_timeout`] after the last input
//! and then decides it was the key; the caller drives the clock ([`Decoder::poll_timeout`],
//! [`Decoder::handle_timeout`]).
//!
//! We do not use `vte` here: it parses what programs send *to* a terminal, and key input differs
//! in the places that matter (DEL is Backspace, `ESC O` introduces keys, a lone ESC needs a
//! timeout, `ESC` before a key means Alt, and a paste must be taken raw).
//!
//! # Memory bounds
//!
//! The decoder keeps the bytes it was given until they are polled (the caller bounds that by
//! polling after each [`Decoder::handle_input`]), at most [`MAX_SEQUENCE_LEN`] bytes of an
//! unfinished escape sequence, and at most [`DecoderConfig::max_paste_len`] bytes of a paste.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::time::{Duration, Instant};

use super::Size;

/// How long a lone `ESC` waits for the rest of a sequence by default.
pub const DEFAULT_ESCAPE_TIMEOUT: Duration = Duration::from_millis(50);

/// The default bound on one bracketed paste, in bytes.
pub const DEFAULT_MAX_PASTE_LEN: usize = 64 * 1024;

/// The longest escape sequence the decoder buffers; a longer one is skipped up to its final byte.
pub const MAX_SEQUENCE_LEN: usize = 32;

/// The bytes that end a bracketed paste.
const PASTE_END: &[u8] = b"\x1b[201~";

/// Modifier keys held with a key, as a small bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modifiers(u8);

impl Modifiers {
    /// No modifier.
    pub const NONE: Self = Self(0);
    /// Shift.
    pub const SHIFT: Self = Self(1);
    /// Alt (Option), also what an `ESC` prefix means.
    pub const ALT: Self = Self(2);
    /// Control.
    pub const CTRL: Self = Self(4);
    /// Meta, as xterm reports it separately from Alt.
    pub const META: Self = Self(8);

    /// The modifiers an xterm-style parameter encodes (`1 + bits`: 2 is Shift, 5 is Ctrl, ...).
    fn from_xterm_param(param: u16) -> Self {
        Self(u8::try_from(param.saturating_sub(1) & 0x0f).unwrap_or(0))
    }

    /// Whether every modifier in `other` is held.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no modifier is held.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Modifiers {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Modifiers {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Modifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("NONE");
        }
        let names = [
            (Self::SHIFT, "SHIFT"),
            (Self::ALT, "ALT"),
            (Self::CTRL, "CTRL"),
            (Self::META, "META"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if !self.contains(bit) {
                continue;
            }
            if !first {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

/// Which key was pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyCode {
    /// A printable character; Ctrl+letter is the lowercase letter with [`Modifiers::CTRL`].
    Char(char),
    /// Enter (CR, LF, or CR LF as one key).
    Enter,
    /// Tab; Shift+Tab is this with [`Modifiers::SHIFT`].
    Tab,
    /// Backspace (DEL or ^H).
    Backspace,
    /// Escape (a lone `ESC`, after the escape timeout).
    Escape,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Page Up.
    PageUp,
    /// Page Down.
    PageDown,
    /// Insert.
    Insert,
    /// Delete (forward delete).
    Delete,
    /// Function key F1 to F20.
    F(u8),
}

/// A key with its modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyEvent {
    /// The key.
    pub code: KeyCode,
    /// The modifiers held with it.
    pub modifiers: Modifiers,
}

impl KeyEvent {
    /// A key with modifiers.
    pub const fn new(code: KeyCode, modifiers: Modifiers) -> Self {
        Self { code, modifiers }
    }

    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        Self { code, modifiers: Modifiers::NONE }
    }

    /// Ctrl and a character (`KeyEvent::ctrl('a')` is Ctrl-A).
    pub const fn ctrl(c: char) -> Self {
        Self { code: KeyCode::Char(c), modifiers: Modifiers::CTRL }
    }

    /// Alt and a character.
    pub const fn alt(c: char) -> Self {
        Self { code: KeyCode::Char(c), modifiers: Modifiers::ALT }
    }

    /// The same key with `extra` modifiers added.
    const fn with(self, extra: Modifiers) -> Self {
        Self { code: self.code, modifiers: Modifiers(self.modifiers.0 | extra.0) }
    }
}

/// Something the user did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// Text was pasted (bracketed paste): line ends are `\n`, and text beyond
    /// [`DecoderConfig::max_paste_len`] is dropped.
    Paste(String),
    /// The terminal window gained focus (after focus reporting was enabled).
    FocusGained,
    /// The terminal window lost focus.
    FocusLost,
    /// The window was resized (reported by [`super::Terminal`], never by the decoder).
    Resize(Size),
}

/// Settings for a [`Decoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// How long an unfinished escape sequence waits for its rest before it is taken as the
    /// Escape key (or Alt+`[`, Alt+`O`) or dropped.
    pub escape_timeout: Duration,
    /// The most bytes of one bracketed paste that are kept.
    pub max_paste_len: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self { escape_timeout: DEFAULT_ESCAPE_TIMEOUT, max_paste_len: DEFAULT_MAX_PASTE_LEN }
    }
}

/// Decodes the bytes of a terminal's input into [`Event`]s. Sans-IO: bytes and time in, events
/// out.
///
/// # Call order
///
/// 1. [`Decoder::handle_input`] with each chunk of input, as it arrives, with the current time;
/// 2. [`Decoder::poll_event`] until it returns `None`;
/// 3. arm a timer for [`Decoder::poll_timeout`], if any; when it fires, call
///    [`Decoder::handle_timeout`] and go to 2.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    /// Input not yet decoded is `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// When the last input arrived: an unfinished sequence times out relative to it.
    last_input: Option<Instant>,
    /// The escape timeout passed: resolve an unfinished sequence at the end of the input.
    timed_out: bool,
    /// The last key was a CR, so an LF or NUL right after it is part of the same Enter.
    after_cr: bool,
    /// Dropping an over-long control sequence up to its final byte.
    skipping: bool,
    /// Inside a bracketed paste: the text so far.
    paste: Option<Vec<u8>>,
}

/// What decoding the front of the input found.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// An event, taking this many bytes.
    Emit(Event, usize),
    /// Bytes to drop (unknown or malformed).
    Skip(usize),
    /// The start of a bracketed paste, this many bytes.
    PasteStart(usize),
    /// A control sequence longer than [`MAX_SEQUENCE_LEN`]: drop these bytes and the rest of it.
    SkipLong(usize),
    /// The input ends inside a character or sequence.
    Incomplete,
}

impl Decoder {
    /// A decoder with `config`.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            buf: Vec::new(),
            pos: 0,
            last_input: None,
            timed_out: false,
            after_cr: false,
            skipping: false,
            paste: None,
        }
    }

    /// Takes bytes the terminal sent at `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.last_input = Some(now);
        self.timed_out = false;
    }

    /// Tells the decoder the time is `now`: an unfinished sequence older than the escape timeout
    /// is resolved by the next [`Decoder::poll_event`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.timed_out = true;
        }
    }

    /// The next decoded event, or `None` when the input is used up (or ends inside a sequence
    /// that waits for more input or the timeout).
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if self.paste.is_some() {
                let text = self.take_paste()?;
                return Some(Event::Paste(text));
            }
            let input = self.buf.get(self.pos..).unwrap_or_default();
            let first = *input.first()?;
            if self.skipping {
                self.skip_long_sequence();
                continue;
            }
            if self.after_cr && (first == b'\n' || first == 0) {
                self.after_cr = false;
                self.pos += 1;
                continue;
            }
            self.after_cr = false;
            let step = match decode(input, self.timed_out) {
                Step::Incomplete => return None,
                step => step,
            };
            self.timed_out = false;
            match step {
                Step::Emit(event, len) => {
                    self.pos += len;
                    self.after_cr = first == b'\r';
                    return Some(event);
                }
                Step::Skip(len) => self.pos += len,
                Step::SkipLong(len) => {
                    self.pos += len;
                    self.skipping = true;
                }
                Step::PasteStart(len) => {
                    self.pos += len;
                    self.paste = Some(Vec::new());
                }
                Step::Incomplete => return None,
            }
        }
    }

    /// When the decoder wants [`Decoder::handle_timeout`] called: the deadline of an unfinished
    /// escape sequence (or character), if one waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.paste.is_some() || self.timed_out {
            return None;
        }
        let input = self.buf.get(self.pos..).unwrap_or_default();
        if input.is_empty() || self.skipping || decode(input, false) != Step::Incomplete {
            return None;
        }
        Some(self.last_input? + self.config.escape_timeout)
    }

    /// Whether the decoder holds input it has not turned into events yet.
    pub fn has_pending_input(&self) -> bool {
        self.pos < self.buf.len() || self.paste.is_some()
    }

    /// How many bytes the decoder holds: input not yet decoded plus the paste being collected.
    /// After [`Decoder::poll_event`] has returned `None` this is at most [`MAX_SEQUENCE_LEN`]
    /// plus [`DecoderConfig::max_paste_len`].
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.pos + self.paste.as_ref().map_or(0, Vec::len)
    }

    /// Drops the rest of an over-long control sequence: parameter and intermediate bytes, then
    /// its final byte.
    fn skip_long_sequence(&mut self) {
        while let Some(&byte) = self.buf.get(self.pos) {
            match byte {
                0x20..=0x3f => self.pos += 1,
                0x40..=0x7e => {
                    self.pos += 1;
                    self.skipping = false;
                    return;
                }
                _ => {
                    self.skipping = false;
                    return;
                }
            }
        }
    }

    /// Moves paste text from the input into the paste buffer; returns the whole paste once its
    /// end marker has arrived.
    fn take_paste(&mut self) -> Option<String> {
        let input = self.buf.get(self.pos..).unwrap_or_default();
        let (text_len, consumed, done) = match find(input, PASTE_END) {
            Some(at) => (at, at + PASTE_END.len(), true),
            None => {
                // Keep a possible start of the end marker for the next input.
                let keep = (1..PASTE_END.len())
                    .rev()
                    .find(|&n| input.ends_with(PASTE_END.get(..n).unwrap_or_default()))
                    .unwrap_or(0);
                let text_len = input.len() - keep;
                (text_len, text_len, false)
            }
        };
        let text = input.get(..text_len).unwrap_or_default();
        let paste = self.paste.as_mut()?;
        let room = self.config.max_paste_len.saturating_sub(paste.len());
        paste.extend_from_slice(text.get(..room.min(text.len())).unwrap_or_default());
        self.pos += consumed;
        if !done {
            return None;
        }
        let bytes = self.paste.take()?;
        Some(normalize_paste(&bytes))
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

/// The paste as text: invalid UTF-8 replaced, a character cut by the size bound dropped, and
/// CR LF and CR turned into LF.
fn normalize_paste(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\u{fffd}');
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Decodes the event at the front of `input` (not empty). With `timed_out`, input that ends
/// inside an escape sequence is resolved instead of waiting.
fn decode(input: &[u8], timed_out: bool) -> Step {
    match input.first() {
        Some(0x1b) => decode_escape(input, timed_out),
        Some(_) => decode_plain(input, timed_out),
        None => Step::Incomplete,
    }
}

/// A key that is not an escape sequence: text, or a C0 control.
fn decode_plain(input: &[u8], timed_out: bool) -> Step {
    let Some(&byte) = input.first() else { return Step::Incomplete };
    let key = match byte {
        b'\r' | b'\n' => KeyEvent::plain(KeyCode::Enter),
        b'\t' => KeyEvent::plain(KeyCode::Tab),
        0x08 | 0x7f => KeyEvent::plain(KeyCode::Backspace),
        0x1b => KeyEvent::plain(KeyCode::Escape),
        0x00 => KeyEvent::ctrl(' '),
        0x01..=0x1a => KeyEvent::ctrl(char::from(b'a' + byte - 1)),
        0x1c..=0x1f => KeyEvent::ctrl(char::from(b'\\' + byte - 0x1c)),
        0x20..=0x7e => KeyEvent::plain(KeyCode::Char(char::from(byte))),
        _ => return decode_utf8(input, timed_out),
    };
    Step::Emit(Event::Key(key), 1)
}

/// A multi-byte UTF-8 character.
fn decode_utf8(input: &[u8], timed_out: bool) -> Step {
    let Some(&lead) = input.first() else { return Step::Incomplete };
    let len = match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Step::Skip(1),
    };
    let bytes = input.get(..len.min(input.len())).unwrap_or_default();
    match std::str::from_utf8(bytes) {
        Ok(text) => match text.chars().next() {
            Some(c) => Step::Emit(Event::Key(KeyEvent::plain(KeyCode::Char(c))), len),
            None => Step::Skip(1),
        },
        Err(error) => match error.error_len() {
            Some(bad) => Step::Skip(bad.max(1)),
            None if timed_out => Step::Skip(bytes.len()),
            None => Step::Incomplete,
        },
    }
}

/// A sequence starting with `ESC`.
fn decode_escape(input: &[u8], timed_out: bool) -> Step {
    let Some(&second) = input.get(1) else {
        return if timed_out {
            Step::Emit(Event::Key(KeyEvent::plain(KeyCode::Escape)), 1)
        } else {
            Step::Incomplete
        };
    };
    let rest = input.get(1..).unwrap_or_default();
    let inner = match second {
        b'[' => return decode_csi(input, timed_out),
        b'O' => return decode_ss3(input, timed_out),
        // `ESC ESC [ A` is Alt+Up on some terminals; `ESC ESC` otherwise is Alt+Escape.
        0x1b => match rest.get(1) {
            Some(b'[' | b'O') => decode_escape(rest, timed_out),
            None if !timed_out => Step::Incomplete,
            _ => Step::Emit(Event::Key(KeyEvent::plain(KeyCode::Escape)), 1),
        },
        _ => decode_plain(rest, timed_out),
    };
    // ESC before a key is Alt+key.
    match inner {
        Step::Emit(Event::Key(key), len) => {
            Step::Emit(Event::Key(key.with(Modifiers::ALT)), len + 1)
        }
        Step::Emit(event, len) => Step::Emit(event, len + 1),
        Step::Skip(len) => Step::Skip(len + 1),
        Step::SkipLong(len) => Step::SkipLong(len + 1),
        Step::PasteStart(len) => Step::PasteStart(len + 1),
        Step::Incomplete => Step::Incomplete,
    }
}

/// `ESC [ ...`: a control sequence (CSI), or the Linux console's `ESC [ [ A` function keys.
fn decode_csi(input: &[u8], timed_out: bool) -> Step {
    let body = input.get(2..).unwrap_or_default();
    let Some(&first) = body.first() else {
        return if timed_out {
            Step::Emit(Event::Key(KeyEvent::alt('[')), 2)
        } else {
            Step::Incomplete
        };
    };
    if first == b'[' {
        return match body.get(1) {
            Some(&key @ b'A'..=b'E') => {
                Step::Emit(Event::Key(KeyEvent::plain(KeyCode::F(key - b'A' + 1))), 4)
            }
            Some(_) => Step::Skip(4),
            None if timed_out => Step::Skip(3),
            None => Step::Incomplete,
        };
    }
    for (i, &byte) in body.iter().enumerate() {
        let len = i + 3;
        match byte {
            // rxvt ends Shift+key with `$`, which is an intermediate byte in the standard grammar.
            b'$' if i > 0 && body.get(..i).is_some_and(|p| p.iter().all(u8::is_ascii_digit)) => {
                return decode_csi_final(body.get(..i).unwrap_or_default(), byte, len);
            }
            0x20..=0x3f if len > MAX_SEQUENCE_LEN => return Step::SkipLong(len),
            0x20..=0x3f => {}
            0x40..=0x7e => return decode_csi_final(body.get(..i).unwrap_or_default(), byte, len),
            // A byte that cannot be in a sequence ends it: drop what came before, decode the byte.
            _ => return Step::Skip(len - 1),
        }
    }
    if timed_out {
        Step::Skip(input.len())
    } else {
        Step::Incomplete
    }
}

/// A complete control sequence `ESC [ params final`, `len` bytes long.
fn decode_csi_final(params: &[u8], final_byte: u8, len: usize) -> Step {
    if params.iter().any(|&b| !(b.is_ascii_digit() || b == b';' || b == b':')) {
        // Private markers (`<` for mouse reports, `?`, ...) and intermediates: not keys.
        return Step::Skip(len);
    }
    let mut numbers = [0u16; 3];
    let mut count = 0;
    for param in params.split(|&b| b == b';') {
        if let Some(slot) = numbers.get_mut(count) {
            *slot = parse_param(param);
        }
        count += 1;
    }
    if params.is_empty() {
        count = 0;
    }
    let [p0, p1, p2] = numbers;
    let mods = if count >= 2 { Modifiers::from_xterm_param(p1) } else { Modifiers::NONE };
    let key = |code| Step::Emit(Event::Key(KeyEvent::new(code, mods)), len);
    match final_byte {
        b'A' => key(KeyCode::Up),
        b'B' => key(KeyCode::Down),
        b'C' => key(KeyCode::Right),
        b'D' => key(KeyCode::Left),
        b'H' => key(KeyCode::Home),
        b'F' => key(KeyCode::End),
        b'Z' => Step::Emit(Event::Key(KeyEvent::new(KeyCode::Tab, mods | Modifiers::SHIFT)), len),
        b'P' => key(KeyCode::F(1)),
        b'Q' => key(KeyCode::F(2)),
        // `ESC [ row ; col R` is a cursor position report unless the row is 1.
        b'R' if p0 <= 1 => key(KeyCode::F(3)),
        b'S' => key(KeyCode::F(4)),
        b'I' if count == 0 => Step::Emit(Event::FocusGained, len),
        b'O' if count == 0 => Step::Emit(Event::FocusLost, len),
        // rxvt: Shift+arrows.
        b'a'..=b'd' if count == 0 => {
            let code = arrow(final_byte - b'a');
            Step::Emit(Event::Key(KeyEvent::new(code, Modifiers::SHIFT)), len)
        }
        // CSI u (fixterms, kitty): `ESC [ code ; mods u`.
        b'u' => match key_from_codepoint(p0) {
            Some(code) => key(code),
            None => Step::Skip(len),
        },
        b'~' | b'^' | b'$' | b'@' => {
            let mods = match final_byte {
                b'^' => Modifiers::CTRL,
                b'$' => Modifiers::SHIFT,
                b'@' => Modifiers::CTRL | Modifiers::SHIFT,
                _ => mods,
            };
            let code = match p0 {
                200 if count == 1 => return Step::PasteStart(len),
                // xterm modifyOtherKeys: `ESC [ 27 ; mods ; code ~`.
                27 if count == 3 => key_from_codepoint(p2),
                _ => tilde_key(p0),
            };
            match code {
                Some(code) => Step::Emit(Event::Key(KeyEvent::new(code, mods)), len),
                None => Step::Skip(len),
            }
        }
        _ => Step::Skip(len),
    }
}

/// `ESC O x`: vt100 application-mode keys (SS3).
fn decode_ss3(input: &[u8], timed_out: bool) -> Step {
    let body = input.get(2..).unwrap_or_default();
    // Some terminals put a modifier digit before the key: `ESC O 5 P`.
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 2 {
        // Not a key: drop it up to its final byte, as an over-long control sequence, so that
        // where the digits were split makes no difference.
        return Step::SkipLong(2 + digits);
    }
    let Some(&final_byte) = body.get(digits) else {
        return match (timed_out, digits) {
            (false, _) => Step::Incomplete,
            (true, 0) => Step::Emit(Event::Key(KeyEvent::alt('O')), 2),
            (true, _) => Step::Skip(input.len()),
        };
    };
    let len = digits + 3;
    let mods = match body.get(..digits) {
        Some(param) if digits > 0 => Modifiers::from_xterm_param(parse_param(param)),
        _ => Modifiers::NONE,
    };
    let code = match final_byte {
        b'A'..=b'D' => arrow(final_byte - b'A'),
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'P'..=b'S' => KeyCode::F(final_byte - b'P' + 1),
        b'M' => KeyCode::Enter,
        // Keypad in application mode: `ESC O j` is `*` up to `ESC O y` is `9`.
        b'j'..=b'y' => match b"*+,-./0123456789".get(usize::from(final_byte - b'j')) {
            Some(&c) => KeyCode::Char(char::from(c)),
            None => return Step::Skip(len),
        },
        b'X' => KeyCode::Char('='),
        // rxvt: Ctrl+arrows.
        b'a'..=b'd' => {
            return Step::Emit(
                Event::Key(KeyEvent::new(arrow(final_byte - b'a'), Modifiers::CTRL)),
                len,
            )
        }
        0x20..=0x7e => return Step::Skip(len),
        // Not a sequence after all: Alt+O, then decode the byte on its own.
        _ if digits == 0 => return Step::Emit(Event::Key(KeyEvent::alt('O')), 2),
        _ => return Step::Skip(len - 1),
    };
    Step::Emit(Event::Key(KeyEvent::new(code, mods)), len)
}

/// The arrow at `index` in the order Up, Down, Right, Left (`A` to `D`).
fn arrow(index: u8) -> KeyCode {
    match index {
        0 => KeyCode::Up,
        1 => KeyCode::Down,
        2 => KeyCode::Right,
        _ => KeyCode::Left,
    }
}

/// The key of `ESC [ n ~` (xterm, vt220, rxvt and Linux console numbering).
fn tilde_key(n: u16) -> Option<KeyCode> {
    let code = match n {
        1 | 7 => KeyCode::Home,
        2 => KeyCode::Insert,
        3 => KeyCode::Delete,
        4 | 8 => KeyCode::End,
        5 => KeyCode::PageUp,
        6 => KeyCode::PageDown,
        11..=15 => KeyCode::F(u8::try_from(n - 10).ok()?),
        17..=21 => KeyCode::F(u8::try_from(n - 11).ok()?),
        23..=26 => KeyCode::F(u8::try_from(n - 12).ok()?),
        28 | 29 => KeyCode::F(u8::try_from(n - 13).ok()?),
        31..=34 => KeyCode::F(u8::try_from(n - 14).ok()?),
        _ => return None,
    };
    Some(code)
}

/// The key a Unicode code point names in CSI u and modifyOtherKeys reports.
fn key_from_codepoint(code: u16) -> Option<KeyCode> {
    let key = match code {
        9 => KeyCode::Tab,
        13 => KeyCode::Enter,
        27 => KeyCode::Escape,
        8 | 127 => KeyCode::Backspace,
        0..=31 => return None,
        _ => KeyCode::Char(char::from_u32(u32::from(code))?),
    };
    Some(key)
}

/// A decimal parameter (the part before any `:` sub-parameter), saturating; empty is 0.
fn parse_param(param: &[u8]) -> u16 {
    param
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u16, |n, &d| n.saturating_mul(10).saturating_add(u16::from(d - b'0')))
}

#[cfg(test)]
mod tests;

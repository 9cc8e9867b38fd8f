//! A line editor for a scrolling terminal (Twisted's `recvline`): a prompt, cursor editing with
//! the readline keys, history, and a password mode that does not echo.
//!
//! The editor draws its prompt and line at the cursor's row and keeps track of how many rows
//! they take at the terminal's width, so it can redraw them in place after an edit, a wrap, a
//! resize, or output written above them ([`LineEditor::write_above`]). It assumes the terminal
//! does not reflow wrapped lines on resize (xterm does not); a terminal that does may keep a
//! stale row after narrowing, which Ctrl-L clears.
//!
//! | key | action |
//! |---|---|
//! | Left, Ctrl-B / Right, Ctrl-F | one character back / forward |
//! | Home, Ctrl-A / End, Ctrl-E | start / end of line |
//! | Ctrl-Left, Alt-B / Ctrl-Right, Alt-F | one word back / forward |
//! | Backspace, Ctrl-H / Delete | delete before / under the cursor |
//! | Ctrl-D | delete under the cursor; on an empty line, [`LineEvent::Eof`] |
//! | Ctrl-K / Ctrl-U | delete to the end / start of the line |
//! | Ctrl-W / Alt-Backspace / Alt-D | delete the word before (to a space / to a word start) / after |
//! | Ctrl-Y | insert what the last delete-to or delete-word removed |
//! | Up, Ctrl-P / Down, Ctrl-N | history |
//! | Insert | toggle insert and overwrite |
//! | Ctrl-L | clear the screen and redraw |
//! | Ctrl-C | discard the line ([`LineEvent::Interrupt`]) |
//! | Tab | [`LineEvent::Complete`] |
//! | Enter | [`LineEvent::Line`] |

use std::collections::VecDeque;

use super::input::{Event, KeyCode, KeyEvent, Modifiers};
use super::output::Style;
use super::screen::Canvas;
use super::width::{char_width, sanitize, str_width};
use super::Terminal;

/// Settings for a [`LineEditor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineConfig {
    /// The longest line, in bytes; typing beyond it rings the bell.
    pub max_len: usize,
    /// How many lines the history keeps (0 turns it off).
    pub history_len: usize,
}

impl Default for LineConfig {
    fn default() -> Self {
        Self { max_len: 4096, history_len: 100 }
    }
}

/// What the editor reports back from a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineEvent {
    /// Enter: the finished line. The cursor is at the start of the next row and the prompt is
    /// not drawn until [`LineEditor::start`] (or the next key, or [`LineEditor::write_above`]).
    Line(String),
    /// Ctrl-D on an empty line: the user wants to leave.
    Eof,
    /// Ctrl-C: the line was discarded, and the prompt is not drawn (as after [`LineEvent::Line`]).
    Interrupt,
    /// Tab: the application may complete the word at the cursor.
    Complete,
    /// A key the editor does not use (F-keys, Page Up, ...), for the application.
    Key(KeyEvent),
}

/// A row and column relative to the row the prompt starts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Position {
    row: u16,
    col: u16,
}

/// Where a drawing of the prompt and line puts its end and the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    /// After the last character; a full last row puts this at the start of the next one.
    end: Position,
    cursor: Position,
}

/// A line editor with history. Sans-IO: keys in, escape sequences appended to the caller's
/// buffer. See the [module documentation](self) for the keys.
#[derive(Debug)]
pub struct LineEditor {
    config: LineConfig,
    prompt: String,
    prompt_style: Style,
    line: String,
    /// Byte offset of the cursor in `line`, on a character boundary.
    cursor: usize,
    overwrite: bool,
    password: bool,
    history: VecDeque<String>,
    /// The history entry being shown, while browsing.
    history_pos: Option<usize>,
    /// The line being typed before browsing began.
    saved_line: String,
    /// What the last delete-to-end, delete-to-start or delete-word removed.
    kill: String,
    /// Whether the prompt is on screen.
    drawn: bool,
    /// The last drawing, while `drawn`.
    shown: Layout,
    /// The width the last drawing was laid out for.
    shown_cols: u16,
}

impl LineEditor {
    /// An editor with `config` and the prompt `prompt`.
    pub fn new(prompt: &str, config: LineConfig) -> Self {
        Self {
            config,
            prompt: sanitize(prompt, false).into_owned(),
            prompt_style: Style::DEFAULT,
            line: String::new(),
            cursor: 0,
            overwrite: false,
            password: false,
            history: VecDeque::new(),
            history_pos: None,
            saved_line: String::new(),
            kill: String::new(),
            drawn: false,
            shown: Layout { end: Position::default(), cursor: Position::default() },
            shown_cols: 0,
        }
    }

    /// Sets the prompt (shown from the next drawing; call [`LineEditor::refresh`] to redraw now).
    pub fn set_prompt(&mut self, prompt: &str, style: Style) {
        self.prompt = sanitize(prompt, false).into_owned();
        self.prompt_style = style;
    }

    /// Turns password mode on or off: the line is not shown and not kept in history.
    pub fn set_password(&mut self, password: bool) {
        self.password = password;
    }

    /// Replaces the line, cursor at its end, and redraws it if the prompt is shown.
    pub fn set_line(&mut self, term: &Terminal, text: &str, out: &mut Vec<u8>) {
        self.line.clear();
        self.cursor = 0;
        self.insert_clean(text);
        if self.drawn {
            self.redraw(term, out);
        }
    }

    /// Inserts `text` at the cursor (controls removed, line ends as spaces), as far as the
    /// length limit allows.
    pub fn insert_str(&mut self, term: &Terminal, text: &str, out: &mut Vec<u8>) {
        self.ensure_drawn(term, out);
        if !self.insert_clean(text) {
            term.emitter(out).bell();
        }
        self.redraw(term, out);
    }

    /// Adds a line to the history, as if it had been entered.
    pub fn add_history(&mut self, line: &str) {
        if self.config.history_len == 0
            || line.is_empty()
            || self.history.back().is_some_and(|l| l == line)
        {
            return;
        }
        if self.history.len() >= self.config.history_len {
            self.history.pop_front();
        }
        self.history.push_back(line.to_owned());
    }

    /// Draws the prompt and line if they are not on screen. The cursor should be at the start
    /// of a line.
    pub fn start(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        self.ensure_drawn(term, out);
    }

    /// Redraws the prompt and line in place (after a prompt change, say).
    pub fn refresh(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        self.redraw(term, out);
    }

    /// Clears the screen and draws the prompt and line at the top.
    pub fn clear_screen(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        term.emitter(out).erase_screen();
        self.draw_here(term, out);
    }

    /// Writes `text` (made safe, in `style`) on the rows above the prompt, as if it had been
    /// printed before it, and redraws the prompt and line below it: how a chat shows a message
    /// that arrives while the user types.
    pub fn write_above(&mut self, term: &Terminal, text: &str, style: Style, out: &mut Vec<u8>) {
        self.hide(term, out);
        let mut emitter = term.emitter(out);
        if style != Style::DEFAULT {
            emitter.style(&style);
        }
        emitter.text(text.strip_suffix('\n').unwrap_or(text));
        if style != Style::DEFAULT {
            emitter.reset_style();
        }
        emitter.newline();
        self.draw_here(term, out);
    }

    /// Takes the prompt and line off the screen, leaving the cursor where the prompt started.
    pub fn hide(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        if !self.drawn {
            return;
        }
        let mut emitter = term.emitter(out);
        emitter.move_up(self.shown.cursor.row);
        emitter.carriage_return();
        emitter.erase_below();
        self.drawn = false;
    }

    /// Moves the cursor below the prompt and line, leaving them on screen as they are.
    pub fn finish(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        if !self.drawn {
            return;
        }
        let end = self.shown.end;
        self.move_cursor(term, end, out);
        // A full last row already put the cursor at the start of the next one.
        if end.col > 0 || end.row == 0 {
            term.emitter(out).newline();
        }
        self.drawn = false;
    }

    /// Handles one event: keys edit, a paste is inserted, a resize redraws.
    pub fn handle_event(
        &mut self,
        term: &Terminal,
        event: &Event,
        out: &mut Vec<u8>,
    ) -> Option<LineEvent> {
        match event {
            Event::Key(key) => self.handle_key(term, *key, out),
            Event::Paste(text) => {
                self.insert_str(term, text, out);
                None
            }
            Event::Resize(_) => {
                if self.drawn {
                    self.redraw(term, out);
                }
                None
            }
            _ => None,
        }
    }

    /// Handles one key.
    pub fn handle_key(
        &mut self,
        term: &Terminal,
        key: KeyEvent,
        out: &mut Vec<u8>,
    ) -> Option<LineEvent> {
        self.ensure_drawn(term, out);
        let KeyEvent { code, modifiers } = key;
        let ctrl = modifiers.contains(Modifiers::CTRL);
        let alt = modifiers.contains(Modifiers::ALT);
        match code {
            KeyCode::Char(c) if ctrl && !alt => return self.control(term, c, out),
            KeyCode::Char(c) if alt && !ctrl => return self.meta(term, key, c, out),
            KeyCode::Char(c) if !ctrl && !alt => self.type_char(term, c, out),
            KeyCode::Enter if !alt => {
                let line = std::mem::take(&mut self.line);
                self.finish(term, out);
                self.cursor = 0;
                self.history_pos = None;
                self.saved_line.clear();
                if !self.password {
                    self.add_history(&line);
                }
                return Some(LineEvent::Line(line));
            }
            KeyCode::Tab if modifiers.is_empty() => return Some(LineEvent::Complete),
            KeyCode::Backspace if alt => self.kill_range(term, self.word_start(), self.cursor, out),
            KeyCode::Backspace => self.backspace(term, out),
            KeyCode::Delete => self.delete(term, out),
            KeyCode::Left if ctrl || alt => self.move_to(term, self.word_start(), out),
            KeyCode::Right if ctrl || alt => self.move_to(term, self.word_end(), out),
            KeyCode::Left => self.move_to(term, self.prev_boundary(self.cursor), out),
            KeyCode::Right => self.move_to(term, self.next_boundary(self.cursor), out),
            KeyCode::Home => self.move_to(term, 0, out),
            KeyCode::End => self.move_to(term, self.line.len(), out),
            KeyCode::Up => self.history_back(term, out),
            KeyCode::Down => self.history_forward(term, out),
            KeyCode::Insert => self.overwrite = !self.overwrite,
            _ => return Some(LineEvent::Key(key)),
        }
        None
    }

    /// The line as typed so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The cursor's byte offset in [`LineEditor::line`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Whether typing replaces characters instead of inserting.
    pub fn is_overwrite(&self) -> bool {
        self.overwrite
    }

    /// Draws the prompt and the line on row `row` of `canvas` and puts the canvas's cursor at
    /// the editing position: the input line of a full-screen application, which hands keys to
    /// [`LineEditor::handle_event`] (ignoring what it writes) and draws with this. A line too
    /// long for the row scrolls sideways, the prompt first, so that the cursor shows. In
    /// password mode only the prompt is drawn.
    pub fn draw_on(&self, canvas: &mut Canvas, row: u16) {
        let (mut before, after) = match self.password {
            true => ("", ""),
            false => (
                self.line.get(..self.cursor).unwrap_or_default(),
                self.line.get(self.cursor..).unwrap_or_default(),
            ),
        };
        let cols = usize::from(canvas.size().cols);
        let mut prompt = self.prompt.as_str();
        while str_width(prompt) + str_width(before) >= cols
            && !(prompt.is_empty() && before.is_empty())
        {
            let text = if prompt.is_empty() { &mut before } else { &mut prompt };
            let first = text.chars().next().map_or(0, char::len_utf8);
            *text = text.get(first..).unwrap_or_default();
        }
        let col = canvas.put_str(row, 0, prompt, self.prompt_style);
        let col = canvas.put_str(row, col, before, Style::DEFAULT);
        canvas.put_str(row, col, after, Style::DEFAULT);
        canvas.set_cursor(Some((row, col.min(canvas.size().cols.saturating_sub(1)))));
    }

    /// Ctrl+letter.
    fn control(&mut self, term: &Terminal, c: char, out: &mut Vec<u8>) -> Option<LineEvent> {
        match c {
            'a' => self.move_to(term, 0, out),
            'e' => self.move_to(term, self.line.len(), out),
            'b' => self.move_to(term, self.prev_boundary(self.cursor), out),
            'f' => self.move_to(term, self.next_boundary(self.cursor), out),
            'd' if self.line.is_empty() => return Some(LineEvent::Eof),
            'd' => self.delete(term, out),
            'k' => self.kill_range(term, self.cursor, self.line.len(), out),
            'u' => self.kill_range(term, 0, self.cursor, out),
            'w' => self.kill_range(term, self.blank_word_start(), self.cursor, out),
            'y' => {
                let kill = self.kill.clone();
                self.insert_str(term, &kill, out);
            }
            'l' => self.clear_screen(term, out),
            'p' => self.history_back(term, out),
            'n' => self.history_forward(term, out),
            'c' => {
                let end = self.shown.end;
                self.move_cursor(term, end, out);
                let mut emitter = term.emitter(out);
                emitter.raw(b"^C");
                emitter.newline();
                self.drawn = false;
                self.line.clear();
                self.cursor = 0;
                self.history_pos = None;
                return Some(LineEvent::Interrupt);
            }
            _ => return Some(LineEvent::Key(KeyEvent::ctrl(c))),
        }
        None
    }

    /// Alt+character.
    fn meta(
        &mut self,
        term: &Terminal,
        key: KeyEvent,
        c: char,
        out: &mut Vec<u8>,
    ) -> Option<LineEvent> {
        match c {
            'b' => self.move_to(term, self.word_start(), out),
            'f' => self.move_to(term, self.word_end(), out),
            'd' => self.kill_range(term, self.cursor, self.word_end(), out),
            _ => return Some(LineEvent::Key(key)),
        }
        None
    }

    fn type_char(&mut self, term: &Terminal, c: char, out: &mut Vec<u8>) {
        if c.is_control() {
            return;
        }
        let at_end = self.cursor == self.line.len();
        // In overwrite mode the character replaces the one under the cursor; the line keeps it
        // when the new one would not fit.
        let replaced = if self.overwrite && !at_end {
            self.next_boundary(self.cursor) - self.cursor
        } else {
            0
        };
        if self.line.len() - replaced + c.len_utf8() > self.config.max_len {
            term.emitter(out).bell();
            return;
        }
        self.line.replace_range(self.cursor..self.cursor + replaced, "");
        self.line.insert(self.cursor, c);
        self.cursor += c.len_utf8();
        if self.password {
            return;
        }
        // Typing at the end of a row that has room: the character is the whole update. (A
        // combining mark is redrawn with its letter, which may be on the row above.)
        let width = u16::try_from(char_width(c)).unwrap_or(2);
        let end = self.shown.end;
        let fits = width > 0 && end.col + width < self.shown_cols;
        if at_end && fits && self.shown_cols == term.size().cols {
            let mut buf = [0; 4];
            term.emitter(out).raw(c.encode_utf8(&mut buf).as_bytes());
            let end = Position { row: end.row, col: end.col + width };
            self.shown = Layout { end, cursor: end };
            return;
        }
        self.redraw(term, out);
    }

    fn backspace(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        if self.cursor == 0 {
            return;
        }
        let start = self.prev_boundary(self.cursor);
        let at_end = self.cursor == self.line.len();
        let width = u16::try_from(self.line.get(start..self.cursor).map_or(0, str_width))
            .unwrap_or(u16::MAX);
        self.line.replace_range(start..self.cursor, "");
        self.cursor = start;
        if self.password {
            return;
        }
        // Deleting the last character of a row that keeps others: step back over it and erase.
        let end = self.shown.end;
        if at_end && self.shown_cols == term.size().cols && end.col > width {
            let mut emitter = term.emitter(out);
            emitter.move_left(width);
            emitter.erase_to_line_end();
            let end = Position { row: end.row, col: end.col - width };
            self.shown = Layout { end, cursor: end };
            return;
        }
        self.redraw(term, out);
    }

    fn delete(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        if self.cursor == self.line.len() {
            return;
        }
        let end = self.next_boundary(self.cursor);
        self.line.replace_range(self.cursor..end, "");
        self.redraw(term, out);
    }

    /// Removes `start..end` into the kill buffer.
    fn kill_range(&mut self, term: &Terminal, start: usize, end: usize, out: &mut Vec<u8>) {
        if start >= end {
            return;
        }
        let Some(removed) = self.line.get(start..end) else { return };
        self.kill = removed.to_owned();
        self.line.replace_range(start..end, "");
        self.cursor = start;
        self.redraw(term, out);
    }

    fn move_to(&mut self, term: &Terminal, cursor: usize, out: &mut Vec<u8>) {
        if cursor == self.cursor {
            return;
        }
        self.cursor = cursor;
        if self.password {
            return;
        }
        if self.shown_cols != term.size().cols {
            self.redraw(term, out);
            return;
        }
        let layout = self.layout(term.size().cols);
        self.move_cursor(term, layout.cursor, out);
    }

    fn history_back(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        let pos = match self.history_pos {
            None if self.history.is_empty() => None,
            None => {
                self.saved_line = std::mem::take(&mut self.line);
                Some(self.history.len() - 1)
            }
            Some(0) => None,
            Some(pos) => Some(pos - 1),
        };
        let Some(pos) = pos else {
            term.emitter(out).bell();
            return;
        };
        self.history_pos = Some(pos);
        self.line = self.history.get(pos).cloned().unwrap_or_default();
        self.cursor = self.line.len();
        self.redraw(term, out);
    }

    fn history_forward(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        let Some(pos) = self.history_pos else {
            term.emitter(out).bell();
            return;
        };
        if pos + 1 < self.history.len() {
            self.history_pos = Some(pos + 1);
            self.line = self.history.get(pos + 1).cloned().unwrap_or_default();
        } else {
            self.history_pos = None;
            self.line = std::mem::take(&mut self.saved_line);
        }
        self.cursor = self.line.len();
        self.redraw(term, out);
    }

    /// Inserts `text` made single-line and safe; returns whether all of it fit.
    fn insert_clean(&mut self, text: &str) -> bool {
        let mut all = true;
        for c in text.chars() {
            let c = match c {
                '\n' | '\t' => ' ',
                c if c.is_control() => continue,
                c => c,
            };
            if self.line.len() + c.len_utf8() > self.config.max_len {
                all = false;
                break;
            }
            self.line.insert(self.cursor, c);
            self.cursor += c.len_utf8();
        }
        all
    }

    fn ensure_drawn(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        if !self.drawn {
            term.emitter(out).carriage_return();
            term.emitter(out).erase_below();
            self.draw_here(term, out);
        }
    }

    /// Redraws the prompt and line where they are.
    fn redraw(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        self.hide(term, out);
        self.draw_here(term, out);
    }

    /// Draws the prompt and line from the cursor, which is at the start of an erased row.
    fn draw_here(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        let cols = term.size().cols;
        let layout = self.layout(cols);
        let mut emitter = term.emitter(out);
        if self.prompt_style == Style::DEFAULT {
            emitter.raw(self.prompt.as_bytes());
        } else {
            emitter.style(&self.prompt_style);
            emitter.raw(self.prompt.as_bytes());
            emitter.reset_style();
        }
        if !self.password {
            emitter.raw(self.line.as_bytes());
        }
        // A full last row leaves the terminal waiting to wrap: take the cursor to the next row.
        if layout.end.col == 0 && layout.end.row > 0 {
            emitter.newline();
        }
        self.drawn = true;
        self.shown_cols = cols;
        self.shown = Layout { end: layout.end, cursor: layout.end };
        self.move_cursor(term, layout.cursor, out);
    }

    /// Moves the terminal's cursor from where the last drawing left it to `to`.
    fn move_cursor(&mut self, term: &Terminal, to: Position, out: &mut Vec<u8>) {
        let from = self.shown.cursor;
        if from == to {
            return;
        }
        let mut emitter = term.emitter(out);
        if to.row < from.row {
            emitter.move_up(from.row - to.row);
        } else {
            emitter.move_down(to.row - from.row);
        }
        emitter.carriage_return();
        emitter.move_right(to.col);
        self.shown.cursor = to;
    }

    /// Where the prompt and line end, and where the cursor goes, at width `cols`.
    fn layout(&self, cols: u16) -> Layout {
        let cols = cols.max(2);
        let mut pos = Position::default();
        let mut cursor = None;
        let shown = if self.password { "" } else { self.line.as_str() };
        let chars = self
            .prompt
            .chars()
            .map(|c| (None, c))
            .chain(shown.char_indices().map(|(i, c)| (Some(i), c)));
        for (index, c) in chars {
            let width = u16::try_from(char_width(c)).unwrap_or(2);
            if width > 0 && pos.col + width > cols {
                pos = Position { row: pos.row.saturating_add(1), col: 0 };
            }
            if cursor.is_none() && index == Some(self.cursor) {
                cursor = Some(pos);
            }
            pos.col += width;
        }
        if pos.col >= cols {
            pos = Position { row: pos.row.saturating_add(1), col: 0 };
        }
        let cursor = if self.password { pos } else { cursor.unwrap_or(pos) };
        Layout { end: pos, cursor }
    }

    /// The start of the character before `at`, with any combining marks it carries.
    fn prev_boundary(&self, at: usize) -> usize {
        let mut at = at;
        while let Some(c) = self.line.get(..at).and_then(|head| head.chars().next_back()) {
            at -= c.len_utf8();
            if char_width(c) > 0 {
                break;
            }
        }
        at
    }

    /// The end of the character at `at`, with the combining marks after it.
    fn next_boundary(&self, at: usize) -> usize {
        let tail = self.line.get(at..).unwrap_or_default();
        let mut chars = tail.char_indices();
        if chars.next().is_none() {
            return at;
        }
        let len = chars.find(|&(_, c)| char_width(c) > 0).map_or(tail.len(), |(i, _)| i);
        at + len
    }

    /// The start of the word before the cursor (words are letters, digits and `_`).
    fn word_start(&self) -> usize {
        let head = self.line.get(..self.cursor).unwrap_or_default();
        let trimmed = head.trim_end_matches(|c: char| !is_word_char(c));
        trimmed.trim_end_matches(is_word_char).len()
    }

    /// The end of the word after the cursor.
    fn word_end(&self) -> usize {
        let tail = self.line.get(self.cursor..).unwrap_or_default();
        let trimmed = tail.trim_start_matches(|c: char| !is_word_char(c));
        let rest = trimmed.trim_start_matches(is_word_char);
        self.line.len() - rest.len()
    }

    /// The start of the space-delimited word before the cursor (Ctrl-W).
    fn blank_word_start(&self) -> usize {
        let head = self.line.get(..self.cursor).unwrap_or_default();
        head.trim_end_matches(char::is_whitespace)
            .trim_end_matches(|c: char| !c.is_whitespace())
            .len()
    }
}

/// Letters, digits, `_`, and the combining marks that go with them.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || (char_width(c) == 0 && !c.is_control())
}

#[cfg(test)]
mod tests;

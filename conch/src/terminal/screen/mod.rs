//! Full-screen drawing: a [`Canvas`] is one frame of styled cells; a [`Screen`] remembers what
//! the user's terminal shows and sends only the cells that differ from it.
//!
//! Because [`Screen::render`] always compares against the frame the user last *received*, an
//! application can redraw its canvas as often as it likes and render only when the channel can
//! take more output: the frames in between are never encoded, and the render that does happen
//! sends the difference to the latest one. That is how a slow user falls behind without memory
//! growing and without holding anyone else up.

use super::output::{Capabilities, Emitter, Style};
use super::width::char_width;
use super::Size;

/// The most characters one cell holds: a base character and its combining marks.
pub const MAX_CELL_CHARS: usize = 4;

/// How many unchanged cells a change run may bridge rather than move the cursor around them.
const MAX_GAP: usize = 4;

/// One character cell: a character (with combining marks), its style, and its width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    chars: [char; MAX_CELL_CHARS],
    /// 1 or 2 for a cell that starts a character; 0 for the right half of a wide character.
    width: u8,
    style: Style,
}

impl Cell {
    /// A blank cell in the default style.
    pub const BLANK: Self = Self::styled_blank(Style::DEFAULT);

    /// A blank cell in `style`.
    const fn styled_blank(style: Style) -> Self {
        Self { chars: [' ', '\0', '\0', '\0'], width: 1, style }
    }

    /// The right half of a wide character.
    const fn continuation(style: Style) -> Self {
        Self { chars: ['\0'; MAX_CELL_CHARS], width: 0, style }
    }

    /// Appends the cell's characters to `out` (nothing for the right half of a wide character).
    pub fn push_to(&self, out: &mut String) {
        out.extend(self.chars.iter().take_while(|&&c| c != '\0'));
    }

    /// The cell's style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// 1 or 2 for a cell that starts a character, 0 for the right half of a wide one.
    pub fn width(&self) -> u8 {
        self.width
    }

    /// Adds a combining mark, if there is room.
    fn combine(&mut self, mark: char) {
        if let Some(slot) = self.chars.iter_mut().find(|c| **c == '\0') {
            *slot = mark;
        }
    }
}

impl Default for Cell {
    fn default() -> Self {
        Self::BLANK
    }
}

/// One frame: a grid of cells and where the cursor is (or that it is hidden). Drawing clips at
/// the edges; nothing wraps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    size: Size,
    cells: Vec<Cell>,
    cursor: Option<(u16, u16)>,
}

impl Canvas {
    /// A blank canvas of `size`, cursor hidden.
    pub fn new(size: Size) -> Self {
        let count = usize::from(size.cols) * usize::from(size.rows);
        Self { size, cells: vec![Cell::BLANK; count], cursor: None }
    }

    /// Blanks every cell and hides the cursor.
    pub fn clear(&mut self) {
        self.cells.fill(Cell::BLANK);
        self.cursor = None;
    }

    /// Makes the canvas `size`, blank.
    pub fn resize(&mut self, size: Size) {
        self.size = size;
        self.cells.clear();
        self.cells.resize(usize::from(size.cols) * usize::from(size.rows), Cell::BLANK);
        self.cursor = None;
    }

    /// Fills row `row` with blanks in `style` (a coloured bar, say).
    pub fn fill_row(&mut self, row: u16, style: Style) {
        for col in 0..self.size.cols {
            if let Some(cell) = self.cell_mut(row, col) {
                *cell = Cell::styled_blank(style);
            }
        }
    }

    /// Writes `text` from `row`, `col` in `style`, clipped at the right edge, and returns the
    /// column after it. Control characters show as U+FFFD; combining marks join the character
    /// before them; a wide character that does not fit leaves a blank.
    pub fn put_str(&mut self, row: u16, col: u16, text: &str, style: Style) -> u16 {
        if row >= self.size.rows {
            return col;
        }
        let mut col = col;
        let mut last: Option<u16> = None;
        for c in text.chars() {
            let c = if c.is_control() { '\u{fffd}' } else { c };
            let width = char_width(c);
            if width == 0 {
                if let Some(cell) = last.and_then(|at| self.cell_mut(row, at)) {
                    cell.combine(c);
                }
                continue;
            }
            if col >= self.size.cols {
                break;
            }
            if width == 2 && col + 1 >= self.size.cols {
                self.put_cell(row, col, Cell::styled_blank(style));
                col += 1;
                break;
            }
            let mut cell = Cell::styled_blank(style);
            cell.chars[0] = c;
            cell.width = if width == 2 { 2 } else { 1 };
            self.put_cell(row, col, cell);
            if width == 2 {
                self.put_cell(row, col + 1, Cell::continuation(style));
            }
            last = Some(col);
            col += u16::from(cell.width);
        }
        col.min(self.size.cols)
    }

    /// Shows the cursor at `row`, `col`, or hides it with `None`.
    pub fn set_cursor(&mut self, position: Option<(u16, u16)>) {
        self.cursor = position.filter(|&(row, col)| row < self.size.rows && col < self.size.cols);
    }

    /// The canvas size.
    pub fn size(&self) -> Size {
        self.size
    }

    /// The cursor position, or `None` if it is hidden.
    pub fn cursor(&self) -> Option<(u16, u16)> {
        self.cursor
    }

    /// The cell at `row`, `col`.
    pub fn cell(&self, row: u16, col: u16) -> Option<&Cell> {
        self.index(row, col).and_then(|i| self.cells.get(i))
    }

    /// The text of row `row`, trailing blanks removed.
    pub fn row_text(&self, row: u16) -> String {
        let mut text = String::new();
        for cell in self.row(row) {
            cell.push_to(&mut text);
        }
        text.trim_end_matches(' ').to_owned()
    }

    /// Stores `cell` at `row`, `col`, blanking the other half of any wide character it cuts.
    fn put_cell(&mut self, row: u16, col: u16, cell: Cell) {
        let Some(old) = self.cell(row, col).copied() else { return };
        if old.width == 0 && col > 0 {
            if let Some(lead) = self.cell_mut(row, col - 1) {
                *lead = Cell::styled_blank(lead.style);
            }
        }
        if old.width == 2 {
            if let Some(right) = self.cell_mut(row, col + 1) {
                *right = Cell::styled_blank(right.style);
            }
        }
        if let Some(slot) = self.cell_mut(row, col) {
            *slot = cell;
        }
    }

    fn cell_mut(&mut self, row: u16, col: u16) -> Option<&mut Cell> {
        self.index(row, col).and_then(|i| self.cells.get_mut(i))
    }

    fn index(&self, row: u16, col: u16) -> Option<usize> {
        if row >= self.size.rows || col >= self.size.cols {
            return None;
        }
        Some(usize::from(row) * usize::from(self.size.cols) + usize::from(col))
    }

    /// The cells of row `row` (empty if out of range).
    fn row(&self, row: u16) -> &[Cell] {
        let cols = usize::from(self.size.cols);
        let start = usize::from(row) * cols;
        self.cells.get(start..start + cols).unwrap_or_default()
    }
}

/// What the user's terminal shows, and the renderer that brings it up to date with a [`Canvas`]
/// by sending only the differences.
///
/// The screen assumes nothing else writes to the terminal between renders. After a resize, or
/// anything else that may have disturbed the display, call [`Screen::invalidate`]: the next
/// render clears and repaints everything.
#[derive(Debug)]
pub struct Screen {
    caps: Capabilities,
    /// The frame the terminal shows, or `None` when unknown.
    shown: Option<Canvas>,
    /// Where the terminal's cursor is, if known.
    cursor: Option<(u16, u16)>,
    /// Whether the terminal's cursor is visible, if known.
    cursor_visible: Option<bool>,
    /// The terminal's current style, if known.
    style: Option<Style>,
}

impl Screen {
    /// A screen for a terminal with `caps`, whose contents are unknown.
    pub fn new(caps: Capabilities) -> Self {
        Self { caps, shown: None, cursor: None, cursor_visible: None, style: None }
    }

    /// Forgets what the terminal shows: the next render repaints the whole screen.
    pub fn invalidate(&mut self) {
        self.shown = None;
        self.cursor = None;
        self.cursor_visible = None;
        self.style = None;
    }

    /// Appends to `out` what turns the terminal's display into `frame`, and returns how many
    /// bytes that took: none when `frame` is what the terminal already shows.
    pub fn render(&mut self, frame: &Canvas, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let caps = self.caps.clone();
        let mut emitter = Emitter::new(&caps, out);
        let shown = match self.shown.take() {
            Some(shown) if shown.size == frame.size => shown,
            _ => {
                emitter.reset_style();
                emitter.erase_screen();
                self.style = Some(Style::DEFAULT);
                self.cursor = Some((0, 0));
                Canvas::new(frame.size)
            }
        };
        for row in 0..frame.size.rows {
            self.render_row(&mut emitter, row, shown.row(row), frame.row(row));
        }
        match frame.cursor {
            Some((row, col)) => {
                if self.cursor != Some((row, col)) {
                    emitter.move_to(row, col);
                    self.cursor = Some((row, col));
                }
                if self.cursor_visible != Some(true) {
                    emitter.cursor_visible(true);
                    self.cursor_visible = Some(true);
                }
            }
            None if self.cursor_visible != Some(false) => {
                emitter.cursor_visible(false);
                self.cursor_visible = Some(false);
            }
            None => {}
        }
        self.shown = Some(shown);
        if let Some(shown) = &mut self.shown {
            shown.clone_from(frame);
        }
        out.len() - start
    }

    /// Sends the changes of one row.
    fn render_row(&mut self, emitter: &mut Emitter<'_>, row: u16, old: &[Cell], new: &[Cell]) {
        let cols = new.len();
        let mut col = 0;
        while col < cols {
            if new.get(col) == old.get(col) {
                col += 1;
                continue;
            }
            // Redraw a whole wide character when either of its halves changed.
            let touches_wide = |cells: &[Cell]| cells.get(col).is_some_and(|c| c.width == 0);
            let start =
                if col > 0 && (touches_wide(new) || touches_wide(old)) { col - 1 } else { col };
            if new.get(start..).unwrap_or_default().iter().all(|c| *c == Cell::BLANK) {
                self.move_cursor(emitter, row, start);
                self.set_style(emitter, Style::DEFAULT);
                emitter.erase_to_line_end();
                return;
            }
            let end = run_end(old, new, col);
            self.move_cursor(emitter, row, start);
            let mut at = start;
            let mut text = String::new();
            while at < end {
                let Some(cell) = new.get(at) else { break };
                if cell.width == 0 {
                    // A right half whose left half is not in this run (its left half changed
                    // too, so an earlier run drew it): nothing to send.
                    at += 1;
                    continue;
                }
                self.set_style(emitter, cell.style);
                text.clear();
                cell.push_to(&mut text);
                emitter.raw(text.as_bytes());
                at += usize::from(cell.width);
            }
            let end_col = u16::try_from(at).unwrap_or(u16::MAX);
            // At the right edge the terminal's cursor waits to wrap: its position is unclear.
            self.cursor = (at < cols).then_some((row, end_col));
            col = at.max(col + 1);
        }
    }

    fn move_cursor(&mut self, emitter: &mut Emitter<'_>, row: u16, col: usize) {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        if self.cursor != Some((row, col)) {
            emitter.move_to(row, col);
            self.cursor = Some((row, col));
        }
    }

    fn set_style(&mut self, emitter: &mut Emitter<'_>, style: Style) {
        if self.style != Some(style) {
            if style == Style::DEFAULT {
                emitter.reset_style();
            } else {
                emitter.style(&style);
            }
            self.style = Some(style);
        }
    }
}

/// A [`Screen`] paced by what the channel accepts: the bytes of one render stay pending until
/// the channel has taken them all, and only then is the next frame rendered, against what the
/// user has by then. Frames drawn while the user is behind are never encoded, so a slow user
/// costs at most one render's bytes of memory and never delays anyone else.
///
/// ```text
/// on a redraw or Writable:  let bytes = presenter.poll_transmit(&canvas);
///                           let taken = connection.send_data(channel, bytes);
///                           presenter.consume(taken);
/// ```
#[derive(Debug)]
pub struct Presenter {
    screen: Screen,
    /// The last render; `pending[sent..]` is not yet accepted by the channel.
    pending: Vec<u8>,
    sent: usize,
}

impl Presenter {
    /// A presenter for a terminal with `caps`, whose contents are unknown.
    pub fn new(caps: Capabilities) -> Self {
        Self { screen: Screen::new(caps), pending: Vec::new(), sent: 0 }
    }

    /// The bytes to send now: the rest of the last render or, once that has all been taken, the
    /// render of `frame` against what the user has. Empty when the user is up to date.
    pub fn poll_transmit(&mut self, frame: &Canvas) -> &[u8] {
        if self.sent >= self.pending.len() {
            self.pending.clear();
            self.sent = 0;
            self.screen.render(frame, &mut self.pending);
        }
        self.pending.get(self.sent..).unwrap_or_default()
    }

    /// The channel took `n` bytes of what [`Presenter::poll_transmit`] returned.
    pub fn consume(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.pending.len());
    }

    /// Repaints everything at the next render (after a resize); bytes already pending are still
    /// sent first, since the terminal may be inside an escape sequence.
    pub fn invalidate(&mut self) {
        self.screen.invalidate();
    }

    /// How many rendered bytes the channel has not taken yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len() - self.sent
    }
}

/// The end (exclusive) of the run of changes that starts at `col`: changes separated by at most
/// [`MAX_GAP`] unchanged cells are sent as one run, and a wide character is never cut.
fn run_end(old: &[Cell], new: &[Cell], col: usize) -> usize {
    let mut end = col + 1;
    let mut at = end;
    while at < new.len() && at - end <= MAX_GAP {
        if new.get(at) != old.get(at) {
            end = at + 1;
        }
        at += 1;
    }
    if end > 0 && new.get(end - 1).is_some_and(|c| c.width == 2) {
        end += 1;
    }
    end.min(new.len())
}

#[cfg(test)]
mod tests;

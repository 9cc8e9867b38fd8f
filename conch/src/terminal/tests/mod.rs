//! What the user would see: a terminal emulator (the `vt100` crate) fed our output, helpers to
//! drive the terminal layer with keystroke scripts, and property tests over random input.

mod properties;

use std::num::NonZeroU16;
use std::time::Instant;

use super::{Event, LineConfig, LineEditor, LineEvent, Size, Terminal};

/// A terminal emulator showing what our output draws.
pub(super) struct Emulator {
    parser: vt100::Parser,
}

impl Emulator {
    pub(super) fn new(size: Size) -> Self {
        Self { parser: vt100::Parser::new(nonzero(size.rows), nonzero(size.cols), 0) }
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    pub(super) fn resize(&mut self, size: Size) {
        self.parser.set_size(nonzero(size.rows), nonzero(size.cols));
    }

    /// The visible rows, trailing blanks removed.
    pub(super) fn rows(&self) -> Vec<String> {
        let (_, cols) = self.parser.screen().size();
        self.parser.screen().rows(0, cols.get()).map(|row| row.trim_end().to_owned()).collect()
    }

    /// The visible rows up to the last one that is not blank.
    pub(super) fn text_rows(&self) -> Vec<String> {
        let mut rows = self.rows();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows
    }

    /// The cursor's row and column.
    pub(super) fn cursor(&self) -> (u16, u16) {
        self.parser.screen().cursor_position()
    }

    pub(super) fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }
}

fn nonzero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n.max(1)).unwrap_or(NonZeroU16::MIN)
}

/// A line editor on a terminal, with an emulator showing the result.
pub(super) struct EditorSession {
    pub(super) term: Terminal,
    pub(super) editor: LineEditor,
    pub(super) emulator: Emulator,
    pub(super) events: Vec<LineEvent>,
    /// Every byte the editor wrote.
    pub(super) output: Vec<u8>,
}

impl EditorSession {
    pub(super) fn new(prompt: &str, size: Size, config: LineConfig) -> Self {
        let term = Terminal::new("xterm-256color", size);
        let mut session = Self {
            term,
            editor: LineEditor::new(prompt, config),
            emulator: Emulator::new(size),
            events: Vec::new(),
            output: Vec::new(),
        };
        let mut out = Vec::new();
        session.editor.start(&session.term, &mut out);
        session.show(&out);
        session
    }

    /// Types `input` in one chunk.
    pub(super) fn type_bytes(&mut self, input: &[u8]) {
        self.term.handle_input(Instant::now(), input);
        self.pump();
    }

    /// Resizes the window (the emulator first, as a real terminal does before it tells us).
    pub(super) fn resize(&mut self, size: Size) {
        self.emulator.resize(size);
        self.term.handle_resize(size);
        self.pump();
    }

    /// Hands every pending event to the editor.
    pub(super) fn pump(&mut self) {
        while let Some(event) = self.term.poll_event() {
            self.handle(&event);
        }
    }

    pub(super) fn handle(&mut self, event: &Event) {
        let mut out = Vec::new();
        if let Some(line_event) = self.editor.handle_event(&self.term, event, &mut out) {
            self.events.push(line_event);
        }
        self.show(&out);
    }

    pub(super) fn show(&mut self, out: &[u8]) {
        self.emulator.feed(out);
        self.output.extend_from_slice(out);
    }
}

/// Runs `script` (bytes typed) through an editor session all at once and one byte at a time,
/// checks both end with the same screen and events, and returns the all-at-once session.
pub(super) fn run_script(
    prompt: &str,
    size: Size,
    config: LineConfig,
    script: &[u8],
) -> EditorSession {
    let mut whole = EditorSession::new(prompt, size, config.clone());
    whole.type_bytes(script);
    let mut bytewise = EditorSession::new(prompt, size, config);
    for byte in script {
        bytewise.type_bytes(std::slice::from_ref(byte));
    }
    assert_eq!(
        bytewise.emulator.rows(),
        whole.emulator.rows(),
        "screen differs when typed byte by byte"
    );
    assert_eq!(bytewise.emulator.cursor(), whole.emulator.cursor());
    assert_eq!(bytewise.events, whole.events);
    whole
}

use super::*;
use crate::terminal::tests::{run_script, EditorSession};
use crate::terminal::Size;

const LEFT: &str = "\x1b[D";
const RIGHT: &str = "\x1b[C";
const HOME: &str = "\x1b[H";
const END: &str = "\x1bOF";
const UP: &str = "\x1b[A";
const DOWN: &str = "\x1b[B";

fn size(cols: u16) -> Size {
    Size::new(cols, 10)
}

fn script(prompt: &str, cols: u16, keys: &str) -> EditorSession {
    run_script(prompt, size(cols), LineConfig::default(), keys.as_bytes())
}

fn line(text: &str) -> LineEvent {
    LineEvent::Line(text.to_owned())
}

/// Typed text is echoed after the prompt and Enter hands the line over, leaving the cursor on
/// the next row.
#[test]
fn typing_and_enter_deliver_the_line() {
    let session = script("> ", 40, "hello\r");
    assert_eq!(session.events, [line("hello")]);
    assert_eq!(session.emulator.text_rows(), ["> hello"]);
    assert_eq!(session.emulator.cursor(), (1, 0));
    assert_eq!(session.editor.line(), "");
}

/// Typing at the end of a row sends just the character, not a redraw.
#[test]
fn typing_at_the_end_echoes_only_the_character() {
    let mut session = script("> ", 40, "ab");
    let before = session.output.len();
    session.type_bytes(b"c");
    assert_eq!(&session.output[before..], b"c");
}

/// Cursor keys move within the line and inserting in the middle shifts the rest.
#[test]
fn inserts_in_the_middle_after_cursor_motion() {
    let session = script("> ", 40, &format!("helo{LEFT}{LEFT}{RIGHT}l{HOME}[{END}]"));
    assert_eq!(session.editor.line(), "[hello]");
    assert_eq!(session.emulator.text_rows(), ["> [hello]"]);
    assert_eq!(session.emulator.cursor(), (0, 9));
}

/// A line longer than the window wraps, and editing its start reflows all rows correctly.
#[test]
fn redraws_correctly_across_line_wraps() {
    let session = script("> ", 10, "abcdefghijklmnopqrst");
    assert_eq!(session.emulator.text_rows(), ["> abcdefgh", "ijklmnopqr", "st"]);
    assert_eq!(session.emulator.cursor(), (2, 2));
    let session = script("> ", 10, &format!("abcdefghijklmnopqrst{HOME}X"));
    assert_eq!(session.emulator.text_rows(), ["> Xabcdefg", "hijklmnopq", "rst"]);
    assert_eq!(session.emulator.cursor(), (0, 3));
    let session = script("> ", 10, &format!("abcdefghijklmnopqrst{HOME}\x1b[3~\x1b[3~\x1b[3~"));
    assert_eq!(session.emulator.text_rows(), ["> defghijk", "lmnopqrst"]);
    assert_eq!(session.emulator.cursor(), (0, 2));
}

/// Filling a row exactly puts the cursor at the start of the next row, and deleting back
/// over the edge returns to the row above.
#[test]
fn exactly_full_row_moves_the_cursor_to_the_next_row() {
    let mut session = script("> ", 10, "abcdefgh");
    assert_eq!(session.emulator.text_rows(), ["> abcdefgh"]);
    assert_eq!(session.emulator.cursor(), (1, 0));
    session.type_bytes(b"i");
    assert_eq!(session.emulator.text_rows(), ["> abcdefgh", "i"]);
    session.type_bytes(b"\x7f\x7f");
    assert_eq!(session.emulator.text_rows(), ["> abcdefg"]);
    assert_eq!(session.emulator.cursor(), (0, 9));
    session.type_bytes(b"\r");
    assert_eq!(session.events, [line("abcdefg")]);
    assert_eq!(session.emulator.cursor(), (1, 0));
}

/// A wide character that does not fit at the end of a row moves to the next row, as the
/// terminal draws it.
#[test]
fn wide_characters_wrap_whole() {
    let session = script("> ", 10, "abcdefg日本");
    assert_eq!(session.emulator.text_rows(), ["> abcdefg", "日本"]);
    assert_eq!(session.emulator.cursor(), (1, 4));
    let session = script("> ", 10, &format!("abcdefg日本{LEFT}{LEFT}{LEFT}x"));
    assert_eq!(session.editor.line(), "abcdefxg日本");
    assert_eq!(session.emulator.text_rows(), ["> abcdefxg", "日本"]);
    assert_eq!(session.emulator.cursor(), (0, 9));
}

/// A combining mark stays with its letter: one Backspace removes both.
#[test]
fn combining_marks_move_and_delete_with_their_letter() {
    let session = script("> ", 20, "cafe\u{301}\x7f");
    assert_eq!(session.editor.line(), "caf");
    let session = script("> ", 20, &format!("e\u{301}x{LEFT}{LEFT}y"));
    assert_eq!(session.editor.line(), "ye\u{301}x");
    assert_eq!(session.emulator.text_rows(), ["> ye\u{301}x"]);
    // Word motion never stops between a letter and its mark.
    let session = script("> ", 20, "e\u{301}\x02\x1bfa");
    assert_eq!(session.editor.line(), "e\u{301}a");
    // A mark typed after a letter in the last column joins it, not the next row.
    let session = script("> ", 7, "newer entrye\u{301}");
    assert_eq!(session.emulator.text_rows(), ["> newer", " entrye\u{301}"]);
}

/// After a resize the prompt and line are redrawn for the new width without leftovers.
#[test]
fn resize_redraws_for_the_new_width() {
    let mut session = script("> ", 10, "abcdefghijklmnopqrst");
    session.resize(Size::new(15, 10));
    assert_eq!(session.emulator.text_rows(), ["> abcdefghijklm", "nopqrst"]);
    assert_eq!(session.emulator.cursor(), (1, 7));
    session.resize(Size::new(6, 10));
    assert_eq!(session.emulator.text_rows(), ["> abcd", "efghij", "klmnop", "qrst"]);
    assert_eq!(session.emulator.cursor(), (3, 4));
    session.type_bytes(format!("{HOME}Z").as_bytes());
    assert_eq!(session.emulator.text_rows(), ["> Zabc", "defghi", "jklmno", "pqrst"]);
}

/// Output written above the prompt while typing leaves the line being edited intact below it.
#[test]
fn write_above_keeps_the_line_being_edited() {
    let mut session = script("> ", 10, "abcdefghijk");
    let mut out = Vec::new();
    session.editor.write_above(&session.term, "news\nmore", Style::DEFAULT, &mut out);
    session.show(&out);
    assert_eq!(session.emulator.text_rows(), ["news", "more", "> abcdefgh", "ijk"]);
    assert_eq!(session.emulator.cursor(), (3, 3));
    session.type_bytes(b"\r");
    assert_eq!(session.events, [line("abcdefghijk")]);
}

/// Up and Down walk the history, keep the line being typed, and ring at the ends.
#[test]
fn history_walks_back_and_forth() {
    let session = script("> ", 40, &format!("one\rtwo\rpar{UP}"));
    assert_eq!(session.editor.line(), "two");
    assert_eq!(session.emulator.rows()[2], "> two");
    let session = script("> ", 40, &format!("one\rtwo\rpar{UP}{UP}{UP}"));
    assert_eq!(session.editor.line(), "one");
    assert!(session.output.contains(&0x07), "rings at the oldest entry");
    let session = script("> ", 40, &format!("one\rtwo\rpar{UP}{UP}{DOWN}{DOWN}"));
    assert_eq!(session.editor.line(), "par");
    assert_eq!(session.emulator.rows()[2], "> par");
    let session = script("> ", 40, &format!("one\rtwo\r{UP}{UP}!\r"));
    assert_eq!(session.events.last(), Some(&line("one!")));
}

/// The history keeps only the newest lines, skips repeats and empty lines.
#[test]
fn history_is_bounded() {
    let config = LineConfig { history_len: 3, ..LineConfig::default() };
    let session = run_script("> ", size(40), config, b"a\rb\rb\r\rc\rd\r");
    assert_eq!(session.editor.history().collect::<Vec<_>>(), ["b", "c", "d"]);
}

/// The readline control keys edit as readline does.
#[test]
fn control_keys_edit_like_readline() {
    let cases: &[(&str, &str)] = &[
        ("hello\x01X", "Xhello"),
        ("hello\x01\x05X", "helloX"),
        ("hello\x02\x02X", "helXlo"),
        ("hello\x01\x06X", "hXello"),
        ("hello world\x01\x06\x06\x0b", "he"),
        ("hello world\x02\x02\x15", "ld"),
        ("hello big world\x17", "hello big "),
        ("hello big world\x17\x17", "hello "),
        ("hello world\x17\x01\x19 ", "world hello "),
        ("hello\x01\x04", "ello"),
        ("foo bar baz\x1bbX", "foo bar Xbaz"),
        ("foo bar baz\x1b[1;5D\x1b[1;5DX", "foo Xbar baz"),
        ("foo bar baz\x01\x1bfX", "fooX bar baz"),
        ("foo bar baz\x01\x1b[1;5CX", "fooX bar baz"),
        ("foo bar baz\x01\x1bd", " bar baz"),
        ("foo bar.baz\x1b\x7f", "foo bar."),
        ("abc\x01\x1b[2~XY", "XYc"),
        ("abc\x01\x1b[2~XYZW", "XYZW"),
    ];
    for &(keys, expected) in cases {
        let session = script("> ", 40, keys);
        assert_eq!(session.editor.line(), expected, "keys {keys:?}");
        assert_eq!(
            session.emulator.text_rows(),
            [format!("> {expected}").trim_end()],
            "keys {keys:?}"
        );
    }
}

/// Ctrl-D on an empty line is end of input; Ctrl-C discards the line and shows `^C`.
#[test]
fn ctrl_d_and_ctrl_c_end_or_discard() {
    let session = script("> ", 40, "\x04");
    assert_eq!(session.events, [LineEvent::Eof]);
    let session = script("> ", 40, "oops\x03next\r");
    assert_eq!(session.events, [LineEvent::Interrupt, line("next")]);
    assert_eq!(session.emulator.text_rows(), ["> oops^C", "> next"]);
}

/// Ctrl-L clears the screen and redraws the prompt at the top.
#[test]
fn ctrl_l_clears_the_screen() {
    let session = script("> ", 40, "one\rtwo\rthree\x0c");
    assert_eq!(session.emulator.text_rows(), ["> three"]);
    assert_eq!(session.emulator.cursor(), (0, 7));
}

/// Tab and keys the editor has no use for go to the application.
#[test]
fn unused_keys_are_handed_to_the_application() {
    let session = script("> ", 40, "ab\t\x1bOP\x1b[5~");
    assert_eq!(
        session.events,
        [
            LineEvent::Complete,
            LineEvent::Key(KeyEvent::plain(KeyCode::F(1))),
            LineEvent::Key(KeyEvent::plain(KeyCode::PageUp)),
        ]
    );
    assert_eq!(session.editor.line(), "ab");
}

/// In password mode nothing typed is shown and the line stays out of the history.
#[test]
fn password_mode_does_not_echo() {
    let mut session = EditorSession::new("Password: ", size(40), LineConfig::default());
    session.editor.set_password(true);
    session.type_bytes(format!("secret{LEFT}\x7fT\r").as_bytes());
    assert_eq!(session.events, [line("secrTt")]);
    assert_eq!(session.emulator.text_rows(), ["Password:"]);
    assert_eq!(session.editor.history().count(), 0);
}

/// A paste is inserted as one line: line ends become spaces, controls are dropped.
#[test]
fn paste_is_inserted_as_one_line() {
    let session = script("> ", 40, "[\x1b[200~a\r\nb\x1b[31mc\x1b[201~]");
    assert_eq!(session.editor.line(), "[a b[31mc]");
    assert_eq!(session.emulator.text_rows(), ["> [a b[31mc]"]);
}

/// The line never grows past its limit; the bell says so.
#[test]
fn line_length_is_bounded() {
    let config = LineConfig { max_len: 5, ..LineConfig::default() };
    let session = run_script("> ", size(40), config, b"abcdefg\x1b[200~xyz\x1b[201~");
    assert_eq!(session.editor.line(), "abcde");
    assert!(session.output.contains(&0x07));
}

/// Overwriting at the length limit keeps the character under the cursor when the new one is
/// too long to take its place, and replaces it when it fits.
#[test]
fn overwriting_at_the_length_limit_loses_nothing() {
    let config = LineConfig { max_len: 5, ..LineConfig::default() };
    let session = run_script("> ", size(40), config.clone(), "abcde\x1b[H\x1b[2~日".as_bytes());
    assert_eq!(session.editor.line(), "abcde");
    assert_eq!(session.emulator.text_rows(), ["> abcde"]);
    assert!(session.output.contains(&0x07));
    let session = run_script("> ", size(40), config, b"abcde\x1b[H\x1b[2~xy");
    assert_eq!(session.editor.line(), "xycde");
    assert_eq!(session.emulator.text_rows(), ["> xycde"]);
}

/// The prompt's style is drawn and reset, and the prompt itself cannot carry escapes.
#[test]
fn prompt_is_styled_and_sanitized() {
    let mut session = EditorSession::new("\x1b[2J$ ", size(40), LineConfig::default());
    assert!(session.output.ends_with("\u{fffd}[2J$ ".as_bytes()));
    session.editor.set_prompt("$ ", Style::new().bold());
    let mut out = Vec::new();
    session.editor.refresh(&session.term, &mut out);
    session.show(&out);
    assert_eq!(session.emulator.text_rows(), ["$"]);
    assert!(session.emulator.screen().cell(0, 0).is_some_and(vt100::Cell::bold));
    session.type_bytes(b"x");
    assert!(!session.emulator.screen().cell(0, 2).is_some_and(vt100::Cell::bold));
}

/// On a canvas, the editor draws its prompt and line on one row with the cursor at the editing
/// position; a long line scrolls the prompt, then the text, off the left; a password is hidden.
#[test]
fn draws_on_a_canvas_row_scrolled_to_the_cursor() {
    use crate::terminal::Canvas;
    let mut session = script("nick> ", 12, "hello");
    let mut canvas = Canvas::new(Size::new(12, 3));
    session.editor.draw_on(&mut canvas, 2);
    assert_eq!(canvas.row_text(2), "nick> hello");
    assert_eq!(canvas.cursor(), Some((2, 11)));
    session.type_bytes(b" world");
    canvas.clear();
    session.editor.draw_on(&mut canvas, 2);
    assert_eq!(canvas.row_text(2), "hello world");
    assert_eq!(canvas.cursor(), Some((2, 11)));
    session.type_bytes(format!("{HOME}{RIGHT}").as_bytes());
    canvas.clear();
    session.editor.draw_on(&mut canvas, 2);
    assert_eq!(canvas.row_text(2), "nick> hello");
    assert_eq!(canvas.cursor(), Some((2, 7)));
    session.editor.set_password(true);
    canvas.clear();
    session.editor.draw_on(&mut canvas, 2);
    assert_eq!(canvas.row_text(2), "nick>");
    assert_eq!(canvas.cursor(), Some((2, 6)));
}

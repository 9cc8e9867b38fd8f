use super::*;
use crate::terminal::output::{Color, ColorSupport};
use crate::terminal::tests::Emulator;

/// A renderer, a canvas and an emulator of the same size.
fn setup(cols: u16, rows: u16) -> (Screen, Canvas, Emulator) {
    let size = Size::new(cols, rows);
    let caps = Capabilities { colors: ColorSupport::TrueColor, ..Capabilities::xterm_256color() };
    (Screen::new(caps), Canvas::new(size), Emulator::new(size))
}

/// Renders `canvas`, shows it in `emulator`, and returns the bytes sent.
fn render(screen: &mut Screen, canvas: &Canvas, emulator: &mut Emulator) -> Vec<u8> {
    let mut out = Vec::new();
    let written = screen.render(canvas, &mut out);
    assert_eq!(written, out.len());
    emulator.feed(&out);
    out
}

/// The emulator shows exactly the canvas's text and cursor.
pub(crate) fn assert_shows(emulator: &Emulator, canvas: &Canvas) {
    let expected: Vec<String> = (0..canvas.size().rows).map(|row| canvas.row_text(row)).collect();
    assert_eq!(emulator.rows(), expected);
    if let Some(cursor) = canvas.cursor() {
        assert_eq!(emulator.cursor(), cursor);
    }
    assert_eq!(emulator.screen().hide_cursor(), canvas.cursor().is_none());
}

/// The first render paints the whole frame; rendering the same frame again sends nothing.
#[test]
fn unchanged_frame_renders_nothing() {
    let (mut screen, mut canvas, mut emulator) = setup(20, 5);
    canvas.put_str(0, 0, "title", Style::new().bold());
    canvas.put_str(2, 3, "hello", Style::DEFAULT);
    canvas.set_cursor(Some((4, 2)));
    assert!(!render(&mut screen, &canvas, &mut emulator).is_empty());
    assert_shows(&emulator, &canvas);
    assert!(render(&mut screen, &canvas, &mut emulator).is_empty());
    let copy = canvas.clone();
    assert!(render(&mut screen, &copy, &mut emulator).is_empty());
}

/// Changing one character sends a cursor move and that character, nothing more.
#[test]
fn one_changed_cell_sends_a_move_and_the_cell() {
    let (mut screen, mut canvas, mut emulator) = setup(20, 5);
    canvas.put_str(2, 3, "hello", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    canvas.put_str(2, 4, "a", Style::DEFAULT);
    let out = render(&mut screen, &canvas, &mut emulator);
    assert_eq!(out, b"\x1b[3;5Ha");
    assert_shows(&emulator, &canvas);
}

/// Nearby changes go out as one run; a cleared tail is erased rather than overwritten.
#[test]
fn close_changes_merge_and_blank_tails_are_erased() {
    let (mut screen, mut canvas, mut emulator) = setup(30, 3);
    canvas.put_str(0, 0, "abcdefghij", Style::DEFAULT);
    canvas.put_str(1, 0, "a long line that will be cut", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    canvas.put_str(0, 1, "X", Style::DEFAULT);
    canvas.put_str(0, 4, "Y", Style::DEFAULT);
    canvas.fill_row(1, Style::DEFAULT);
    canvas.put_str(1, 0, "a long", Style::DEFAULT);
    let out = render(&mut screen, &canvas, &mut emulator);
    assert_eq!(out, b"\x1b[1;2HXcdY\x1b[2;8H\x1b[K");
    assert_shows(&emulator, &canvas);
}

/// Styles are sent when they change and the emulator shows them on the right cells.
#[test]
fn styles_reach_the_right_cells() {
    let (mut screen, mut canvas, mut emulator) = setup(20, 3);
    canvas.put_str(0, 0, "red", Style::new().fg(Color::RED));
    canvas.put_str(0, 4, "bold", Style::new().bold().bg(Color::Rgb(1, 2, 3)));
    canvas.put_str(0, 9, "plain", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    let cell = |col| emulator.screen().cell(0, col).cloned().expect("cell");
    assert_eq!(cell(0).fgcolor(), vt100::Color::Idx(1));
    assert!(cell(4).bold());
    assert_eq!(cell(4).bgcolor(), vt100::Color::Rgb(1, 2, 3));
    assert!(!cell(9).bold());
    assert_eq!(cell(9).bgcolor(), vt100::Color::Default);
    assert_shows(&emulator, &canvas);
}

/// Wide characters take two cells; overwriting half of one repaints the pair.
#[test]
fn wide_characters_are_drawn_and_replaced_whole() {
    let (mut screen, mut canvas, mut emulator) = setup(10, 2);
    canvas.put_str(0, 0, "日本語です", Style::DEFAULT);
    canvas.put_str(1, 0, "ab日", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    assert_shows(&emulator, &canvas);
    canvas.put_str(0, 3, "x", Style::DEFAULT);
    canvas.put_str(1, 1, "本", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    assert_eq!(canvas.row_text(0), "日 x語です");
    assert_eq!(canvas.row_text(1), "a本");
    assert_shows(&emulator, &canvas);
}

/// Text is clipped at the right edge, a wide character that does not fit leaves a blank, and
/// combining marks join their letter.
#[test]
fn put_str_clips_and_combines() {
    let mut canvas = Canvas::new(Size::new(5, 1));
    assert_eq!(canvas.put_str(0, 0, "abcd日", Style::DEFAULT), 5);
    assert_eq!(canvas.row_text(0), "abcd");
    assert_eq!(canvas.put_str(0, 0, "e\u{301}\x1b", Style::DEFAULT), 2);
    assert_eq!(canvas.row_text(0), "e\u{301}\u{fffd}cd");
    assert_eq!(canvas.put_str(3, 0, "off the canvas", Style::DEFAULT), 0);
}

/// A frame of another size, or an invalidated screen, repaints everything from a clear screen.
#[test]
fn resize_and_invalidate_repaint_everything() {
    let (mut screen, mut canvas, mut emulator) = setup(10, 3);
    canvas.put_str(0, 0, "one", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    screen.invalidate();
    let out = render(&mut screen, &canvas, &mut emulator);
    assert!(out.starts_with(b"\x1b[0m\x1b[H\x1b[2J"));
    let size = Size::new(6, 2);
    emulator.resize(size);
    canvas.resize(size);
    canvas.put_str(1, 0, "two", Style::DEFAULT);
    let out = render(&mut screen, &canvas, &mut emulator);
    assert!(out.starts_with(b"\x1b[0m\x1b[H\x1b[2J"));
    assert_shows(&emulator, &canvas);
}

/// Frames drawn while the user is not receiving cost nothing: rendering later sends only the
/// difference between what the user has and the latest frame.
#[test]
fn skipped_frames_cost_nothing() {
    let (mut screen, mut canvas, mut emulator) = setup(20, 3);
    canvas.put_str(0, 0, "count 0", Style::DEFAULT);
    render(&mut screen, &canvas, &mut emulator);
    for n in 1..=1000 {
        canvas.put_str(0, 6, &n.to_string(), Style::DEFAULT);
    }
    let out = render(&mut screen, &canvas, &mut emulator);
    assert_eq!(out, b"\x1b[1;7H1000");
    assert_shows(&emulator, &canvas);
}

/// The cursor is shown at its position, and hidden when the frame has none.
#[test]
fn cursor_follows_the_frame() {
    let (mut screen, mut canvas, mut emulator) = setup(10, 3);
    canvas.set_cursor(Some((1, 4)));
    render(&mut screen, &canvas, &mut emulator);
    assert_shows(&emulator, &canvas);
    canvas.set_cursor(None);
    assert_eq!(render(&mut screen, &canvas, &mut emulator), b"\x1b[?25l");
    assert_shows(&emulator, &canvas);
    canvas.set_cursor(Some((9, 9)));
    assert_eq!(canvas.cursor(), None, "a cursor off the canvas is hidden");
}

/// A user whose channel is full holds one render's bytes, however many frames are drawn; when
/// the channel drains, one render brings them to the latest frame.
#[test]
fn presenter_drops_intermediate_frames_under_backpressure() {
    let size = Size::new(20, 3);
    let mut presenter = Presenter::new(Capabilities::xterm_256color());
    let mut emulator = Emulator::new(size);
    let mut canvas = Canvas::new(size);
    canvas.put_str(0, 0, "count 0", Style::DEFAULT);
    let first = presenter.poll_transmit(&canvas).to_vec();
    assert!(!first.is_empty());
    // The channel takes 3 bytes, then nothing while 1000 frames are drawn.
    emulator.feed(&first[..3]);
    presenter.consume(3);
    for n in 1..=1000 {
        canvas.put_str(0, 6, &n.to_string(), Style::DEFAULT);
        assert_eq!(presenter.poll_transmit(&canvas), &first[3..]);
        assert_eq!(presenter.pending_len(), first.len() - 3);
    }
    // The channel drains: the rest of the first render, then one render to the latest frame.
    let rest = presenter.poll_transmit(&canvas).to_vec();
    emulator.feed(&rest);
    presenter.consume(rest.len());
    let update = presenter.poll_transmit(&canvas).to_vec();
    assert_eq!(update, b"\x1b[1;7H1000");
    emulator.feed(&update);
    presenter.consume(update.len());
    assert_shows(&emulator, &canvas);
    assert!(presenter.poll_transmit(&canvas).is_empty());
}

//! Property tests: random input never panics, never buffers without bound, and what the user
//! sees always matches the model.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{EditorSession, Emulator};
use crate::terminal::input::{Decoder, DecoderConfig, MAX_SEQUENCE_LEN};
use crate::terminal::output::{Capabilities, Color, ColorSupport, Style};
use crate::terminal::screen::{Canvas, Screen};
use crate::terminal::width::char_width;
use crate::terminal::{Event, LineConfig, Size};

/// Bytes that look like terminal input: mostly escape-sequence material, some text.
fn input_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"\x1b[O;~0123456789ABCDHFPZabcu$^@<M?\r\n\x7f\x08\t".to_vec()),
        2 => any::<u8>(),
        1 => prop::sample::select(b"\x1b[200~\x1b[201~".to_vec()),
    ];
    prop::collection::vec(byte, 0..600)
}

/// Decodes `bytes` cut at `cuts`, polling after each piece; checks the bounds as it goes.
fn decode_in_pieces(bytes: &[u8], cuts: &[usize], config: &DecoderConfig) -> Vec<Event> {
    let now = Instant::now();
    let mut decoder = Decoder::new(config.clone());
    let mut events = Vec::new();
    let mut start = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    ends.push(bytes.len());
    ends.sort_unstable();
    for end in ends {
        decoder.handle_input(now, bytes.get(start..end).unwrap_or_default());
        start = end;
        events.extend(std::iter::from_fn(|| decoder.poll_event()));
        assert!(decoder.buffered_len() <= MAX_SEQUENCE_LEN + config.max_paste_len);
    }
    if let Some(deadline) = decoder.poll_timeout() {
        decoder.handle_timeout(deadline);
        events.extend(std::iter::from_fn(|| decoder.poll_event()));
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random input, in any chunking, decodes without panicking, within the buffer bounds, and
    /// to the same events as when it arrives all at once.
    #[test]
    fn decoder_is_total_bounded_and_chunking_independent(
        bytes in input_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let config = DecoderConfig { max_paste_len: 64, ..DecoderConfig::default() };
        let whole = decode_in_pieces(&bytes, &[], &config);
        let pieces = decode_in_pieces(&bytes, &cuts, &config);
        prop_assert_eq!(pieces, whole);
    }

    /// Timeouts firing at random moments never panic and never leave the decoder stuck.
    #[test]
    fn decoder_survives_timeouts_anywhere(
        bytes in input_bytes(),
        timeouts in prop::collection::vec(any::<bool>(), 600),
    ) {
        let start = Instant::now();
        let mut decoder = Decoder::default();
        for (i, byte) in bytes.iter().enumerate() {
            let now = start + Duration::from_millis(u64::try_from(i).unwrap_or(0) * 100);
            decoder.handle_input(now, std::slice::from_ref(byte));
            while decoder.poll_event().is_some() {}
            if timeouts.get(i).copied().unwrap_or(false) {
                decoder.handle_timeout(now + Duration::from_secs(1));
                while decoder.poll_event().is_some() {}
            }
            prop_assert!(decoder.buffered_len() <= MAX_SEQUENCE_LEN + DecoderConfig::default().max_paste_len);
        }
        // Whatever is left is either a paste waiting for its end or resolved by the timeout.
        decoder.handle_timeout(start + Duration::from_secs(3600));
        while decoder.poll_event().is_some() {}
        prop_assert!(decoder.poll_timeout().is_none());
    }
}

/// One keystroke for the line editor property test.
fn editor_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "b",
        " ",
        "-",
        "日",
        "é",
        "e\u{301}",
        "\x7f",
        "\x1b[D",
        "\x1b[C",
        "\x1b[H",
        "\x1bOF",
        "\x1b[3~",
        "\x1b[A",
        "\x1b[B",
        "\x01",
        "\x05",
        "\x02",
        "\x06",
        "\x0b",
        "\x15",
        "\x17",
        "\x19",
        "\x1bb",
        "\x1bf",
        "\x1bd",
        "\x1b\x7f",
        "\x1b[1;5D",
        "\x1b[1;5C",
        "\x1b[2~",
        "\t",
        "\x1b[200~pa\nste\x1b[201~",
    ])
}

/// What the prompt and line should look like at width `cols`: the rows and the cursor.
fn expected_screen(
    prompt: &str,
    line: &str,
    cursor: usize,
    cols: u16,
) -> (Vec<String>, (u16, u16)) {
    let mut rows = vec![String::new()];
    let (mut row, mut col) = (0u16, 0u16);
    let mut at = None;
    let text = prompt
        .char_indices()
        .map(|(_, c)| (None, c))
        .chain(line.char_indices().map(|(i, c)| (Some(i), c)));
    for (index, c) in text {
        let width = u16::try_from(char_width(c)).unwrap_or(2);
        if width > 0 && col + width > cols {
            rows.push(String::new());
            row += 1;
            col = 0;
        }
        if at.is_none() && index == Some(cursor) {
            at = Some((row, col));
        }
        if let Some(last) = rows.last_mut() {
            last.push(c);
        }
        col += width;
    }
    if col >= cols {
        rows.push(String::new());
        row += 1;
        col = 0;
    }
    let mut rows: Vec<String> = rows.iter().map(|r| r.trim_end().to_owned()).collect();
    while rows.last().is_some_and(String::is_empty) {
        rows.pop();
    }
    (rows, at.unwrap_or((row, col)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// After any keystroke, at any width, the screen shows the prompt and the line wrapped at
    /// that width, with the cursor at the editing position, and the line stays in its bound.
    #[test]
    fn line_editor_screen_always_matches_the_line(
        keys in prop::collection::vec(editor_key(), 0..60),
        cols in 6u16..30,
        resizes in prop::collection::vec((any::<u8>(), 6u16..30), 0..3),
    ) {
        let config = LineConfig { max_len: 60, history_len: 5 };
        let mut session = EditorSession::new("> ", Size::new(cols, 40), config);
        session.editor.add_history("older");
        session.editor.add_history("newer entry");
        let mut cols = cols;
        for (i, key) in keys.iter().enumerate() {
            if let Some(&(_, new_cols)) = resizes.iter().find(|(at, _)| usize::from(*at) == i) {
                cols = new_cols;
                session.resize(Size::new(cols, 40));
            }
            session.type_bytes(key.as_bytes());
            prop_assert!(session.editor.line().len() <= 60);
            let (rows, cursor) = expected_screen("> ", session.editor.line(), session.editor.cursor(), cols);
            prop_assert_eq!(session.emulator.text_rows(), rows, "after {:?}", &keys[..=i]);
            prop_assert_eq!(session.emulator.cursor(), cursor, "after {:?}", &keys[..=i]);
        }
    }
}

/// A random frame: a few strings at random places in random styles.
fn frame_strategy(size: Size) -> impl Strategy<Value = Canvas> {
    let text = prop::sample::select(vec![
        "hello",
        "日本",
        "x",
        "e\u{301}t",
        "  ",
        "wide日",
        "ab",
        "long text here",
    ]);
    let color = prop_oneof![
        Just(Color::Default),
        (0u8..16).prop_map(Color::Ansi),
        any::<u8>().prop_map(Color::Indexed),
        any::<(u8, u8, u8)>().prop_map(|(r, g, b)| Color::Rgb(r, g, b)),
    ];
    let style = (color, any::<bool>(), any::<bool>()).prop_map(|(fg, bold, reverse)| Style {
        fg,
        bold,
        reverse,
        ..Style::DEFAULT
    });
    let put = (0..size.rows, 0..size.cols, text, style);
    let cursor = prop::option::of((0..size.rows, 0..size.cols));
    (prop::collection::vec(put, 0..12), cursor).prop_map(move |(puts, cursor)| {
        let mut canvas = Canvas::new(size);
        for (row, col, text, style) in puts {
            canvas.put_str(row, col, text, style);
        }
        canvas.set_cursor(cursor);
        canvas
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Rendering any sequence of frames leaves the terminal showing the latest one, cell for
    /// cell and style for style, and a repeated frame sends nothing.
    #[test]
    fn screen_diffs_always_reproduce_the_frame(
        frames in prop::collection::vec(frame_strategy(Size::new(12, 4)), 1..8),
    ) {
        let caps = Capabilities { colors: ColorSupport::TrueColor, ..Capabilities::xterm_256color() };
        let mut screen = Screen::new(caps);
        let mut emulator = Emulator::new(Size::new(12, 4));
        for frame in &frames {
            let mut out = Vec::new();
            screen.render(frame, &mut out);
            emulator.feed(&out);
            for row in 0..4 {
                prop_assert_eq!(&emulator.rows()[usize::from(row)], &frame.row_text(row));
                for col in 0..12 {
                    let (Some(ours), Some(theirs)) = (frame.cell(row, col), emulator.screen().cell(row, col)) else {
                        continue;
                    };
                    if ours.width() == 0 {
                        continue;
                    }
                    prop_assert_eq!(theirs.bold(), ours.style().bold, "bold at {},{}", row, col);
                    prop_assert_eq!(theirs.inverse(), ours.style().reverse, "reverse at {},{}", row, col);
                    prop_assert_eq!(theirs.fgcolor(), vt100_color(ours.style().fg), "fg at {},{}", row, col);
                }
            }
            if let Some(cursor) = frame.cursor() {
                prop_assert_eq!(emulator.cursor(), cursor);
            }
            prop_assert_eq!(emulator.screen().hide_cursor(), frame.cursor().is_none());
            let mut again = Vec::new();
            prop_assert_eq!(screen.render(frame, &mut again), 0);
        }
    }
}

fn vt100_color(color: Color) -> vt100::Color {
    match color {
        Color::Default => vt100::Color::Default,
        Color::Ansi(n) | Color::Indexed(n) => vt100::Color::Idx(n),
        Color::Rgb(r, g, b) => vt100::Color::Rgb(r, g, b),
    }
}

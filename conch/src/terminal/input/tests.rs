use super::*;

const SHIFT: Modifiers = Modifiers::SHIFT;
const ALT: Modifiers = Modifiers::ALT;
const CTRL: Modifiers = Modifiers::CTRL;

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::plain(code))
}

fn with(code: KeyCode, modifiers: Modifiers) -> Event {
    Event::Key(KeyEvent::new(code, modifiers))
}

fn ch(c: char) -> Event {
    key(KeyCode::Char(c))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::ctrl(c))
}

fn alt(c: char) -> Event {
    Event::Key(KeyEvent::alt(c))
}

/// Every key the decoder knows, as the terminals send it. Entries marked `true` end in an
/// ambiguous state that only the escape timeout resolves.
fn table() -> Vec<(&'static [u8], Vec<Event>, bool)> {
    use KeyCode::*;
    vec![
        // Text, including multi-byte UTF-8.
        (b"a", vec![ch('a')], false),
        (b"Z", vec![ch('Z')], false),
        (b" ~", vec![ch(' '), ch('~')], false),
        ("é".as_bytes(), vec![ch('é')], false),
        ("日本".as_bytes(), vec![ch('日'), ch('本')], false),
        ("😀".as_bytes(), vec![ch('😀')], false),
        // Enter in all its spellings, Tab, Backspace.
        (b"\r", vec![key(Enter)], false),
        (b"\n", vec![key(Enter)], false),
        (b"\r\n", vec![key(Enter)], false),
        (b"\r\0", vec![key(Enter)], false),
        (b"\r\r", vec![key(Enter), key(Enter)], false),
        (b"\t", vec![key(Tab)], false),
        (b"\x1b[Z", vec![with(Tab, SHIFT)], false),
        (b"\x7f", vec![key(Backspace)], false),
        (b"\x08", vec![key(Backspace)], false),
        // Escape, resolved by the timeout.
        (b"\x1b", vec![key(Escape)], true),
        // Arrows: normal (CSI) and application (SS3) mode.
        (b"\x1b[A", vec![key(Up)], false),
        (b"\x1b[B", vec![key(Down)], false),
        (b"\x1b[C", vec![key(Right)], false),
        (b"\x1b[D", vec![key(Left)], false),
        (b"\x1bOA", vec![key(Up)], false),
        (b"\x1bOB", vec![key(Down)], false),
        (b"\x1bOC", vec![key(Right)], false),
        (b"\x1bOD", vec![key(Left)], false),
        // Home and End: xterm, SS3, vt220, rxvt.
        (b"\x1b[H", vec![key(Home)], false),
        (b"\x1b[F", vec![key(End)], false),
        (b"\x1bOH", vec![key(Home)], false),
        (b"\x1bOF", vec![key(End)], false),
        (b"\x1b[1~", vec![key(Home)], false),
        (b"\x1b[4~", vec![key(End)], false),
        (b"\x1b[7~", vec![key(Home)], false),
        (b"\x1b[8~", vec![key(End)], false),
        // The editing keypad.
        (b"\x1b[2~", vec![key(Insert)], false),
        (b"\x1b[3~", vec![key(Delete)], false),
        (b"\x1b[5~", vec![key(PageUp)], false),
        (b"\x1b[6~", vec![key(PageDown)], false),
        // Function keys: xterm SS3, vt220/rxvt tilde, Linux console.
        (b"\x1bOP", vec![key(F(1))], false),
        (b"\x1bOQ", vec![key(F(2))], false),
        (b"\x1bOR", vec![key(F(3))], false),
        (b"\x1bOS", vec![key(F(4))], false),
        (b"\x1b[11~", vec![key(F(1))], false),
        (b"\x1b[12~", vec![key(F(2))], false),
        (b"\x1b[13~", vec![key(F(3))], false),
        (b"\x1b[14~", vec![key(F(4))], false),
        (b"\x1b[15~", vec![key(F(5))], false),
        (b"\x1b[17~", vec![key(F(6))], false),
        (b"\x1b[18~", vec![key(F(7))], false),
        (b"\x1b[19~", vec![key(F(8))], false),
        (b"\x1b[20~", vec![key(F(9))], false),
        (b"\x1b[21~", vec![key(F(10))], false),
        (b"\x1b[23~", vec![key(F(11))], false),
        (b"\x1b[24~", vec![key(F(12))], false),
        (b"\x1b[[A", vec![key(F(1))], false),
        (b"\x1b[[B", vec![key(F(2))], false),
        (b"\x1b[[C", vec![key(F(3))], false),
        (b"\x1b[[D", vec![key(F(4))], false),
        (b"\x1b[[E", vec![key(F(5))], false),
        // xterm modifier parameters.
        (b"\x1b[1;5C", vec![with(Right, CTRL)], false),
        (b"\x1b[1;5D", vec![with(Left, CTRL)], false),
        (b"\x1b[1;3D", vec![with(Left, ALT)], false),
        (b"\x1b[1;2A", vec![with(Up, SHIFT)], false),
        (b"\x1b[1;6B", vec![with(Down, CTRL | SHIFT)], false),
        (b"\x1b[1;5H", vec![with(Home, CTRL)], false),
        (b"\x1b[3;5~", vec![with(Delete, CTRL)], false),
        (b"\x1b[5;3~", vec![with(PageUp, ALT)], false),
        (b"\x1b[15;2~", vec![with(F(5), SHIFT)], false),
        (b"\x1b[1;2P", vec![with(F(1), SHIFT)], false),
        (b"\x1b[1;5R", vec![with(F(3), CTRL)], false),
        (b"\x1bO5P", vec![with(F(1), CTRL)], false),
        // rxvt's modifier spellings.
        (b"\x1bOa", vec![with(Up, CTRL)], false),
        (b"\x1b[c", vec![with(Right, SHIFT)], false),
        (b"\x1b[2^", vec![with(Insert, CTRL)], false),
        (b"\x1b[3$", vec![with(Delete, SHIFT)], false),
        (b"\x1b[7@", vec![with(Home, CTRL | SHIFT)], false),
        // CSI u and modifyOtherKeys.
        (b"\x1b[97;5u", vec![ctrl('a')], false),
        (b"\x1b[27;5;13~", vec![with(Enter, CTRL)], false),
        // The keypad in application mode.
        (b"\x1bOM", vec![key(Enter)], false),
        (b"\x1bOp", vec![ch('0')], false),
        (b"\x1bOj", vec![ch('*')], false),
        // Ctrl+letter and the other C0 controls.
        (b"\x01", vec![ctrl('a')], false),
        (b"\x03", vec![ctrl('c')], false),
        (b"\x04", vec![ctrl('d')], false),
        (b"\x1a", vec![ctrl('z')], false),
        (b"\x00", vec![ctrl(' ')], false),
        (b"\x1c", vec![ctrl('\\')], false),
        (b"\x1f", vec![ctrl('_')], false),
        // Alt as an ESC prefix.
        (b"\x1ba", vec![alt('a')], false),
        (b"\x1bB", vec![alt('B')], false),
        (b"\x1bf", vec![alt('f')], false),
        (b"\x1b\x7f", vec![with(Backspace, ALT)], false),
        (b"\x1b\r", vec![with(Enter, ALT)], false),
        (b"\x1b\x01", vec![with(Char('a'), CTRL | ALT)], false),
        ("\x1bé".as_bytes(), vec![with(Char('é'), ALT)], false),
        (b"\x1b\x1b[A", vec![with(Up, ALT)], false),
        (b"\x1b\x1b", vec![with(Escape, ALT)], true),
        (b"\x1b[", vec![alt('[')], true),
        (b"\x1bO", vec![alt('O')], true),
        // Bracketed paste, taken raw.
        (b"\x1b[200~hello\r\nworld\x1b[201~", vec![Event::Paste("hello\nworld".into())], false),
        (b"\x1b[200~a\x1b[Ab\x1b[201~", vec![Event::Paste("a\x1b[Ab".into())], false),
        (b"\x1b[200~x\x1b[201y\x1b[201~", vec![Event::Paste("x\x1b[201y".into())], false),
        (b"\x1b[200~\x1b[201~", vec![Event::Paste(String::new())], false),
        // Focus reports.
        (b"\x1b[I", vec![Event::FocusGained], false),
        (b"\x1b[O", vec![Event::FocusLost], false),
        // Unknown and malformed input is dropped.
        (b"\x1b[<0;10;20M", vec![], false),
        (b"\x1b[99~", vec![], false),
        (b"\x1b[?1;2c", vec![], false),
        (b"\x1b[201~", vec![], false),
        (b"\x1b[5;10R", vec![], false),
        (b"\x1b[[z", vec![], false),
        (b"\x1bOz", vec![], false),
        // SS3 takes at most two modifier digits: a longer run is dropped with its final byte,
        // however the digits are split.
        (b"\x1bO2020a", vec![], false),
        (b"\x1bO2020\x1b[A", vec![key(Up)], false),
        (b"\x1b\x1bO2020b", vec![], false),
        (b"\xff", vec![], false),
        (b"\xc3(", vec![ch('(')], false),
        (b"\xed\xa0\x80", vec![], false),
    ]
}

/// Decodes `chunks` fed one after another at one instant, then lets the escape timeout pass.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Event> {
    let now = Instant::now();
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.handle_input(now, chunk);
        events.extend(std::iter::from_fn(|| decoder.poll_event()));
    }
    if let Some(deadline) = decoder.poll_timeout() {
        decoder.handle_timeout(deadline);
        events.extend(std::iter::from_fn(|| decoder.poll_event()));
    }
    assert_eq!(decoder.poll_timeout(), None, "nothing waits after the timeout");
    events
}

/// Decodes `bytes` all at once, one byte at a time, and in 7-byte chunks, and checks that all
/// three agree.
fn decode_every_way(bytes: &[u8]) -> Vec<Event> {
    let whole = decode_chunks([bytes]);
    let bytewise = decode_chunks(bytes.chunks(1));
    let sevens = decode_chunks(bytes.chunks(7));
    assert_eq!(bytewise, whole, "one byte at a time: {bytes:?}");
    assert_eq!(sevens, whole, "7-byte chunks: {bytes:?}");
    whole
}

/// Every key of every terminal variant decodes the same whatever the chunking.
#[test]
fn decodes_every_key_in_any_chunking() {
    for (bytes, expected, _) in table() {
        assert_eq!(decode_every_way(bytes), expected, "input {:?}", String::from_utf8_lossy(bytes));
    }
}

/// All the unambiguous keys back to back decode to all their events, whatever the chunking:
/// no key swallows or corrupts the next.
#[test]
fn decodes_all_keys_back_to_back() {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (bytes, events, needs_timeout) in table() {
        // CR then LF or NUL is one Enter, so such a pair is not two keys.
        let joins = stream.last() == Some(&b'\r') && matches!(bytes.first(), Some(b'\n' | 0));
        if needs_timeout || joins {
            continue;
        }
        stream.extend_from_slice(bytes);
        expected.extend(events);
    }
    assert_eq!(decode_every_way(&stream), expected);
}

/// A lone ESC waits for the deadline the decoder asks for, then is the Escape key.
#[test]
fn lone_escape_is_reported_when_its_deadline_passes() {
    let start = Instant::now();
    let mut decoder = Decoder::default();
    assert_eq!(decoder.poll_timeout(), None);
    decoder.handle_input(start, b"\x1b");
    assert_eq!(decoder.poll_event(), None);
    let deadline = decoder.poll_timeout().expect("a deadline for the lone ESC");
    assert_eq!(deadline, start + DEFAULT_ESCAPE_TIMEOUT);
    decoder.handle_timeout(start + DEFAULT_ESCAPE_TIMEOUT / 2);
    assert_eq!(decoder.poll_event(), None, "too early");
    decoder.handle_timeout(deadline);
    assert_eq!(decoder.poll_event(), Some(key(KeyCode::Escape)));
    assert_eq!(decoder.poll_event(), None);
    assert_eq!(decoder.poll_timeout(), None);
}

/// The rest of a sequence arriving before the deadline makes it a key, not Escape.
#[test]
fn escape_followed_in_time_by_its_sequence_is_that_key() {
    let start = Instant::now();
    let mut decoder = Decoder::default();
    decoder.handle_input(start, b"\x1b[");
    assert!(decoder.poll_timeout().is_some());
    decoder.handle_input(start + Duration::from_millis(10), b"1;5");
    assert_eq!(
        decoder.poll_timeout(),
        Some(start + Duration::from_millis(10) + DEFAULT_ESCAPE_TIMEOUT)
    );
    decoder.handle_input(start + Duration::from_millis(20), b"A");
    assert_eq!(decoder.poll_event(), Some(with(KeyCode::Up, CTRL)));
    assert_eq!(decoder.poll_timeout(), None);
}

/// A sequence cut off by the timeout is dropped, and what follows decodes normally.
#[test]
fn truncated_sequence_is_dropped_at_the_timeout() {
    let start = Instant::now();
    let mut decoder = Decoder::default();
    decoder.handle_input(start, b"x\x1b[1;5");
    assert_eq!(decoder.poll_event(), Some(ch('x')));
    assert_eq!(decoder.poll_event(), None);
    decoder.handle_timeout(start + DEFAULT_ESCAPE_TIMEOUT);
    assert_eq!(decoder.poll_event(), None);
    decoder.handle_input(start + DEFAULT_ESCAPE_TIMEOUT, b"y");
    assert_eq!(decoder.poll_event(), Some(ch('y')));
}

/// A paste larger than the bound is cut to it (on a character boundary) and the decoder
/// carries on with the input after the paste.
#[test]
fn paste_is_bounded_and_input_after_it_decodes() {
    let config = DecoderConfig { max_paste_len: 11, ..DecoderConfig::default() };
    for chunk in [1, 7, 4096] {
        let mut decoder = Decoder::new(config.clone());
        let mut input = b"\x1b[200~".to_vec();
        input.extend("aé".repeat(1000).as_bytes());
        input.extend(b"\x1b[201~z");
        let mut events = Vec::new();
        for piece in input.chunks(chunk) {
            decoder.handle_input(Instant::now(), piece);
            events.extend(std::iter::from_fn(|| decoder.poll_event()));
            assert!(decoder.paste.as_ref().map_or(0, Vec::len) <= 11);
        }
        assert_eq!(events, vec![Event::Paste("aéaéaéa".into()), ch('z')], "chunks of {chunk}");
    }
}

/// An endless control sequence is skipped to its final byte without being buffered.
#[test]
fn overlong_sequence_is_skipped_without_buffering() {
    let mut input = b"\x1b[".to_vec();
    input.extend(std::iter::repeat_n(b'1', 10_000));
    input.extend(b"Ax");
    for chunk in [1, 7, 100_000] {
        let mut decoder = Decoder::default();
        let mut events = Vec::new();
        for piece in input.chunks(chunk) {
            decoder.handle_input(Instant::now(), piece);
            events.extend(std::iter::from_fn(|| decoder.poll_event()));
            assert!(decoder.buf.len() - decoder.pos <= MAX_SEQUENCE_LEN);
        }
        assert_eq!(events, vec![ch('x')], "chunks of {chunk}");
    }
}

/// Thousands of ESC bytes neither recurse deeply nor buffer: each pair is Alt+Escape.
#[test]
fn a_flood_of_escapes_is_handled_iteratively() {
    let input = vec![0x1b; 100_000];
    let events = decode_chunks([input.as_slice()]);
    assert_eq!(events.len(), 50_000);
    assert!(events.iter().all(|e| *e == with(KeyCode::Escape, ALT)));
}

/// Modifiers print as their names.
#[test]
fn modifiers_debug_lists_names() {
    assert_eq!(format!("{:?}", CTRL | SHIFT), "SHIFT | CTRL");
    assert_eq!(format!("{:?}", Modifiers::NONE), "NONE");
}

//! Framing helpers: [`LineReceiver`] (with raw mode) and [`StringReceiver`] (Int32
//! length-prefixed and netstring), as in Twisted's `protocols.basic`.
//!
//! Each is a [`Protocol`] wrapping an application trait that sees whole frames:
//! [`LineProtocol::line_received`], [`StringProtocol::string_received`]. The callbacks get a
//! small control object ([`Lines`], [`Strings`]) that sends frames back (`send_line`,
//! `send_string`), switches modes, and holds the transport for writing from elsewhere (clone
//! it out in `connection_made`).
//!
//! Every limit is checked before anything is buffered past it: a peer sending an endless line
//! or announcing a 4 GiB string meets `line_length_exceeded` or `length_limit_exceeded`, whose
//! default loses the connection.

use std::fmt;
use std::rc::Rc;

use crate::error::Reason;
use crate::protocol::{HalfClose, Protocol, Transport};

/// The control object of a [`LineReceiver`], handed to every [`LineProtocol`] callback.
pub struct Lines {
    transport: Option<Rc<dyn Transport>>,
    delimiter: Vec<u8>,
    max_length: usize,
    raw: bool,
    extra: Vec<u8>,
}

impl Lines {
    /// Writes `line` followed by the delimiter.
    pub fn send_line(&self, line: &[u8]) {
        if let Some(transport) = &self.transport {
            transport.write_sequence(&[line, &self.delimiter]);
        }
    }

    /// From now on, deliver bytes as they come to
    /// [`raw_data_received`](LineProtocol::raw_data_received); bytes already buffered after
    /// the current line go there too.
    pub fn set_raw_mode(&mut self) {
        self.raw = true;
    }

    /// Back to lines; `extra` (bytes the raw handler did not consume) is parsed first.
    pub fn set_line_mode(&mut self, extra: &[u8]) {
        self.raw = false;
        self.extra.extend_from_slice(extra);
    }

    /// Whether raw mode is on.
    pub fn is_raw(&self) -> bool {
        self.raw
    }

    /// The connection's transport (set once `connection_made` has run).
    pub fn transport(&self) -> Option<&Rc<dyn Transport>> {
        self.transport.as_ref()
    }

    /// Loses the connection (see [`Transport::lose_connection`]).
    pub fn lose_connection(&self) {
        if let Some(transport) = &self.transport {
            transport.lose_connection();
        }
    }

    /// The line delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// The longest line accepted, delimiter excluded.
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

impl fmt::Debug for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lines")
            .field("delimiter", &self.delimiter)
            .field("max_length", &self.max_length)
            .field("raw", &self.raw)
            .finish()
    }
}

/// A line-oriented protocol, run by a [`LineReceiver`].
pub trait LineProtocol {
    /// The connection is up.
    fn connection_made(&mut self, lines: &mut Lines) {
        let _ = lines;
    }

    /// A complete line arrived, without its delimiter.
    fn line_received(&mut self, lines: &mut Lines, line: &[u8]);

    /// Bytes arrived in raw mode.
    fn raw_data_received(&mut self, lines: &mut Lines, data: &[u8]) {
        let _ = (lines, data);
    }

    /// A line longer than the maximum arrived (or is arriving): `line` is what was buffered,
    /// and it is dropped. The default loses the connection.
    fn line_length_exceeded(&mut self, lines: &mut Lines, line: &[u8]) {
        let _ = line;
        lines.lose_connection();
    }

    /// The peer finished sending; see [`Protocol::read_connection_lost`].
    fn read_connection_lost(&mut self, lines: &mut Lines) -> HalfClose {
        let _ = lines;
        HalfClose::LoseConnection
    }

    /// The connection is gone.
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }
}

/// Splits a byte stream into lines for a [`LineProtocol`] (Twisted's `LineReceiver`).
///
/// ```
/// use twine_core::basic::{LineProtocol, LineReceiver, Lines};
///
/// struct Shout;
/// impl LineProtocol for Shout {
///     fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
///         lines.send_line(&line.to_ascii_uppercase());
///     }
/// }
/// let protocol = LineReceiver::new(Shout).with_delimiter(b"\n");
/// # let _ = protocol;
/// ```
pub struct LineReceiver<P> {
    lines: Lines,
    buffer: Vec<u8>,
    scanned: usize,
    protocol: P,
}

impl<P: LineProtocol> LineReceiver<P> {
    /// The longest line accepted by default (Twisted's `MAX_LENGTH`).
    pub const MAX_LENGTH: usize = 16_384;

    /// Runs `protocol` over lines ending in `\r\n`, at most [`Self::MAX_LENGTH`] bytes long.
    pub fn new(protocol: P) -> Self {
        Self {
            lines: Lines {
                transport: None,
                delimiter: b"\r\n".to_vec(),
                max_length: Self::MAX_LENGTH,
                raw: false,
                extra: Vec::new(),
            },
            buffer: Vec::new(),
            scanned: 0,
            protocol,
        }
    }

    /// Uses `delimiter` (not empty) to end lines.
    #[must_use]
    pub fn with_delimiter(mut self, delimiter: &[u8]) -> Self {
        if !delimiter.is_empty() {
            self.lines.delimiter = delimiter.to_vec();
        }
        self
    }

    /// Accepts lines of at most `max_length` bytes.
    #[must_use]
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.lines.max_length = max_length;
        self
    }

    /// The wrapped protocol.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The wrapped protocol, mutably.
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    fn feed(&mut self, data: &[u8]) {
        if self.lines.raw {
            self.protocol.raw_data_received(&mut self.lines, data);
            self.take_extra();
            return;
        }
        self.buffer.extend_from_slice(data);
        self.parse();
    }

    /// Parses the extra bytes a raw handler gave back with `set_line_mode`.
    fn take_extra(&mut self) {
        while !self.lines.raw && !self.lines.extra.is_empty() {
            let extra = std::mem::take(&mut self.lines.extra);
            self.buffer.extend_from_slice(&extra);
            self.parse();
        }
    }

    fn parse(&mut self) {
        let Self { lines, buffer, scanned, protocol } = self;
        let delimiter_len = lines.delimiter.len();
        let mut start = 0;
        loop {
            if lines.raw {
                let rest = buffer.get(start..).unwrap_or_default();
                if !rest.is_empty() {
                    protocol.raw_data_received(lines, rest);
                }
                start = buffer.len();
                break;
            }
            let from = (*scanned).max(start);
            let found = find(buffer.get(from..).unwrap_or_default(), &lines.delimiter);
            let Some(offset) = found else {
                *scanned = buffer.len().saturating_sub(delimiter_len - 1).max(start);
                if buffer.len() - start >= lines.max_length + delimiter_len {
                    let line = buffer.get(start..).unwrap_or_default();
                    protocol.line_length_exceeded(lines, line);
                    start = buffer.len();
                }
                break;
            };
            let end = from + offset;
            let line = buffer.get(start..end).unwrap_or_default();
            if line.len() > lines.max_length {
                protocol.line_length_exceeded(lines, line);
            } else {
                protocol.line_received(lines, line);
            }
            start = end + delimiter_len;
        }
        buffer.drain(..start.min(buffer.len()));
        *scanned = scanned.saturating_sub(start);
        if buffer.is_empty() {
            *scanned = 0;
        }
        self.take_extra();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if let [byte] = needle {
        return haystack.iter().position(|b| b == byte);
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

impl<P: LineProtocol> Protocol for LineReceiver<P> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.lines.transport = Some(transport);
        self.protocol.connection_made(&mut self.lines);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.feed(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.protocol.read_connection_lost(&mut self.lines)
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.protocol.connection_lost(reason);
        self.lines.transport = None;
    }
}

impl<P> fmt::Debug for LineReceiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineReceiver")
            .field("lines", &self.lines)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

/// How a [`StringReceiver`] frames its strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// A 32-bit big-endian length, then the bytes (Twisted's `Int32StringReceiver`).
    Int32,
    /// `<decimal length>:<bytes>,` (D. J. Bernstein's netstrings).
    Netstring,
}

/// The control object of a [`StringReceiver`], handed to every [`StringProtocol`] callback.
pub struct Strings {
    transport: Option<Rc<dyn Transport>>,
    framing: Framing,
    max_length: usize,
}

impl Strings {
    /// Writes `data` as one frame. A string longer than `u32::MAX` cannot be framed with Int32
    /// and is not sent (logged).
    pub fn send_string(&self, data: &[u8]) {
        let Some(transport) = &self.transport else { return };
        match self.framing {
            Framing::Int32 => {
                let Ok(length) = u32::try_from(data.len()) else {
                    log::warn!("string of {} bytes too long for Int32 framing", data.len());
                    return;
                };
                transport.write_sequence(&[&length.to_be_bytes(), data]);
            }
            Framing::Netstring => {
                let prefix = format!("{}:", data.len());
                transport.write_sequence(&[prefix.as_bytes(), data, b","]);
            }
        }
    }

    /// The connection's transport (set once `connection_made` has run).
    pub fn transport(&self) -> Option<&Rc<dyn Transport>> {
        self.transport.as_ref()
    }

    /// Loses the connection.
    pub fn lose_connection(&self) {
        if let Some(transport) = &self.transport {
            transport.lose_connection();
        }
    }

    /// The longest string accepted.
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

impl fmt::Debug for Strings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Strings")
            .field("framing", &self.framing)
            .field("max_length", &self.max_length)
            .finish()
    }
}

/// A protocol of length-framed strings, run by a [`StringReceiver`].
pub trait StringProtocol {
    /// The connection is up.
    fn connection_made(&mut self, strings: &mut Strings) {
        let _ = strings;
    }

    /// A complete string arrived.
    fn string_received(&mut self, strings: &mut Strings, data: &[u8]);

    /// A frame announced `length` bytes, more than the maximum. Nothing more is parsed on this
    /// connection; the default loses it.
    fn length_limit_exceeded(&mut self, strings: &mut Strings, length: u64) {
        let _ = length;
        strings.lose_connection();
    }

    /// A frame was malformed (a netstring without digits, colon or comma). Nothing more is
    /// parsed on this connection; the default loses it.
    fn invalid_frame(&mut self, strings: &mut Strings) {
        strings.lose_connection();
    }

    /// The connection is gone.
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }
}

/// Splits a byte stream into length-framed strings for a [`StringProtocol`].
pub struct StringReceiver<P> {
    strings: Strings,
    buffer: Vec<u8>,
    broken: bool,
    protocol: P,
}

/// What the parser found at the front of the buffer.
enum Frame {
    /// A whole string at `data`, the frame ending at `end`.
    Complete { data: std::ops::Range<usize>, end: usize },
    /// More bytes needed.
    Partial,
    /// The announced length is over the limit.
    TooLong(u64),
    /// Not a frame.
    Invalid,
}

impl<P: StringProtocol> StringReceiver<P> {
    /// The longest string accepted by default (Twisted's `MAX_LENGTH` for these receivers).
    pub const MAX_LENGTH: usize = 99_999;

    /// Runs `protocol` over Int32-framed strings.
    pub fn int32(protocol: P) -> Self {
        Self::new(Framing::Int32, protocol)
    }

    /// Runs `protocol` over netstrings.
    pub fn netstring(protocol: P) -> Self {
        Self::new(Framing::Netstring, protocol)
    }

    /// Runs `protocol` over strings framed as `framing` says.
    pub fn new(framing: Framing, protocol: P) -> Self {
        Self {
            strings: Strings { transport: None, framing, max_length: Self::MAX_LENGTH },
            buffer: Vec::new(),
            broken: false,
            protocol,
        }
    }

    /// Accepts strings of at most `max_length` bytes.
    #[must_use]
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.strings.max_length = max_length;
        self
    }

    /// The wrapped protocol.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The wrapped protocol, mutably.
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    fn frame(&self, bytes: &[u8]) -> Frame {
        let max = self.strings.max_length;
        match self.strings.framing {
            Framing::Int32 => {
                let Some(header) = bytes.first_chunk::<4>() else { return Frame::Partial };
                let length = u64::from(u32::from_be_bytes(*header));
                let Ok(length) = usize::try_from(length).map_err(drop).and_then(|length| {
                    if length > max {
                        Err(())
                    } else {
                        Ok(length)
                    }
                }) else {
                    return Frame::TooLong(length);
                };
                if bytes.len() < 4 + length {
                    return Frame::Partial;
                }
                Frame::Complete { data: 4..4 + length, end: 4 + length }
            }
            Framing::Netstring => netstring_frame(bytes, max),
        }
    }
}

/// Parses `<digits>:<data>,` at the front of `bytes`.
fn netstring_frame(bytes: &[u8], max: usize) -> Frame {
    let digits = bytes.iter().take_while(|byte| byte.is_ascii_digit()).count();
    let max_digits = max.to_string().len();
    if digits > max_digits {
        return Frame::TooLong(u64::MAX);
    }
    let Some(&after) = bytes.get(digits) else { return Frame::Partial };
    if after != b':' || digits == 0 || (digits > 1 && bytes.first() == Some(&b'0')) {
        return Frame::Invalid;
    }
    let length = bytes
        .get(..digits)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse::<usize>().ok());
    let Some(length) = length else { return Frame::Invalid };
    if length > max {
        return Frame::TooLong(u64::try_from(length).unwrap_or(u64::MAX));
    }
    let start = digits + 1;
    let end = start + length;
    match bytes.get(end) {
        None => Frame::Partial,
        Some(b',') => Frame::Complete { data: start..end, end: end + 1 },
        Some(_) => Frame::Invalid,
    }
}

impl<P: StringProtocol> Protocol for StringReceiver<P> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.strings.transport = Some(transport);
        self.protocol.connection_made(&mut self.strings);
    }

    fn data_received(&mut self, data: &[u8]) {
        if self.broken {
            return;
        }
        self.buffer.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = self.buffer.get(start..).unwrap_or_default();
            match self.frame(rest) {
                Frame::Complete { data, end } => {
                    let text = rest.get(data).unwrap_or_default();
                    self.protocol.string_received(&mut self.strings, text);
                    start += end;
                }
                Frame::Partial => break,
                Frame::TooLong(length) => {
                    self.broken = true;
                    self.buffer = Vec::new();
                    self.protocol.length_limit_exceeded(&mut self.strings, length);
                    return;
                }
                Frame::Invalid => {
                    self.broken = true;
                    self.buffer = Vec::new();
                    self.protocol.invalid_frame(&mut self.strings);
                    return;
                }
            }
        }
        self.buffer.drain(..start);
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.protocol.connection_lost(reason);
        self.strings.transport = None;
    }
}

impl<P> fmt::Debug for StringReceiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringReceiver")
            .field("strings", &self.strings)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::StringTransport;

    /// Chunk sizes every framing test runs with: one byte, seven bytes, everything at once.
    const CHUNKS: [usize; 3] = [1, 7, usize::MAX];

    fn feed(protocol: &mut dyn Protocol, data: &[u8], chunk: usize) {
        for piece in data.chunks(chunk) {
            protocol.data_received(piece);
        }
    }

    #[derive(Default)]
    struct Collect {
        lines: Vec<Vec<u8>>,
        raw: Vec<u8>,
        exceeded: Vec<usize>,
        raw_after: Option<Vec<u8>>,
    }

    impl LineProtocol for Collect {
        fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
            self.lines.push(line.to_vec());
            if self.raw_after.as_deref() == Some(line) {
                lines.set_raw_mode();
            }
        }

        fn raw_data_received(&mut self, _lines: &mut Lines, data: &[u8]) {
            self.raw.extend_from_slice(data);
        }

        fn line_length_exceeded(&mut self, lines: &mut Lines, line: &[u8]) {
            self.exceeded.push(line.len());
            lines.lose_connection();
        }
    }

    fn line_receiver(collect: Collect) -> (LineReceiver<Collect>, Rc<StringTransport>) {
        let transport = StringTransport::new();
        let mut receiver = LineReceiver::new(collect);
        receiver.connection_made(transport.clone());
        (receiver, transport)
    }

    /// Lines split across any chunk boundary arrive whole and in order.
    #[test]
    fn splits_lines_at_crlf_whatever_the_chunking() {
        for chunk in CHUNKS {
            let (mut receiver, _) = line_receiver(Collect::default());
            feed(&mut receiver, b"hello\r\nworld\r\n\r\npartial", chunk);
            let expected: Vec<&[u8]> = vec![b"hello", b"world", b""];
            assert_eq!(receiver.protocol().lines, expected, "chunk {chunk}");
        }
    }

    /// A custom delimiter, here a multi-byte one, replaces CRLF.
    #[test]
    fn honours_a_custom_delimiter() {
        for chunk in CHUNKS {
            let transport = StringTransport::new();
            let mut receiver = LineReceiver::new(Collect::default()).with_delimiter(b"--");
            receiver.connection_made(transport);
            feed(&mut receiver, b"a-b--c----d", chunk);
            let expected: Vec<&[u8]> = vec![b"a-b", b"c", b""];
            assert_eq!(receiver.protocol().lines, expected, "chunk {chunk}");
        }
    }

    /// `send_line` appends the delimiter.
    #[test]
    fn send_line_appends_the_delimiter() {
        let transport = StringTransport::new();
        let mut receiver = LineReceiver::new(Collect::default()).with_delimiter(b"\n");
        receiver.connection_made(transport.clone());
        receiver.lines.send_line(b"hi");
        assert_eq!(transport.value(), b"hi\n");
    }

    /// A line over the maximum is reported (and the connection lost) instead of delivered.
    #[test]
    fn reports_a_line_over_the_maximum_length() {
        for chunk in CHUNKS {
            let transport = StringTransport::new();
            let mut receiver = LineReceiver::new(Collect::default()).with_max_length(4);
            receiver.connection_made(transport.clone());
            feed(&mut receiver, b"abcd\r\nabcde\r\n", chunk);
            let expected: Vec<&[u8]> = vec![b"abcd"];
            assert_eq!(receiver.protocol().lines, expected, "chunk {chunk}");
            assert_eq!(receiver.protocol().exceeded.len(), 1, "chunk {chunk}");
            assert!(transport.disconnecting());
        }
    }

    /// An endless line without delimiter is cut off once it passes the maximum, so it is never
    /// buffered beyond the limit.
    #[test]
    fn stops_buffering_an_endless_line() {
        for chunk in CHUNKS {
            let (mut receiver, transport) = line_receiver(Collect::default());
            let endless = vec![b'x'; LineReceiver::<Collect>::MAX_LENGTH * 3];
            feed(&mut receiver, &endless, chunk);
            assert!(!receiver.protocol().exceeded.is_empty(), "chunk {chunk}");
            assert!(receiver.buffer.len() <= LineReceiver::<Collect>::MAX_LENGTH + 2);
            assert!(transport.disconnecting());
        }
    }

    /// Switching to raw mode inside `line_received` hands the rest of the stream, including
    /// bytes already buffered, to `raw_data_received`.
    #[test]
    fn switches_to_raw_mode_mid_stream() {
        for chunk in CHUNKS {
            let collect = Collect { raw_after: Some(b"RAW".to_vec()), ..Collect::default() };
            let (mut receiver, _) = line_receiver(collect);
            feed(&mut receiver, b"one\r\nRAW\r\nbinary\r\nbytes", chunk);
            let expected: Vec<&[u8]> = vec![b"one", b"RAW"];
            assert_eq!(receiver.protocol().lines, expected, "chunk {chunk}");
            assert_eq!(receiver.protocol().raw, b"binary\r\nbytes", "chunk {chunk}");
        }
    }

    struct RawThenLines {
        lines: Vec<Vec<u8>>,
        raw: Vec<u8>,
    }

    impl LineProtocol for RawThenLines {
        fn connection_made(&mut self, lines: &mut Lines) {
            lines.set_raw_mode();
        }

        fn line_received(&mut self, _lines: &mut Lines, line: &[u8]) {
            self.lines.push(line.to_vec());
        }

        fn raw_data_received(&mut self, lines: &mut Lines, data: &[u8]) {
            // Raw mode reads a 3-byte header, then hands the rest back to line mode.
            let need = 3 - self.raw.len();
            let (head, rest) = data.split_at(need.min(data.len()));
            self.raw.extend_from_slice(head);
            if self.raw.len() == 3 {
                lines.set_line_mode(rest);
            }
        }
    }

    /// Going back to line mode with the unconsumed bytes parses them as lines.
    #[test]
    fn returns_to_line_mode_with_the_extra_bytes() {
        for chunk in CHUNKS {
            let transport = StringTransport::new();
            let mut receiver = LineReceiver::new(RawThenLines { lines: vec![], raw: vec![] });
            receiver.connection_made(transport);
            feed(&mut receiver, b"HDRfirst\r\nsecond\r\n", chunk);
            assert_eq!(receiver.protocol().raw, b"HDR", "chunk {chunk}");
            let expected: Vec<&[u8]> = vec![b"first", b"second"];
            assert_eq!(receiver.protocol().lines, expected, "chunk {chunk}");
        }
    }

    #[derive(Default)]
    struct Strs {
        got: Vec<Vec<u8>>,
        too_long: Option<u64>,
        invalid: bool,
    }

    impl StringProtocol for Strs {
        fn string_received(&mut self, _strings: &mut Strings, data: &[u8]) {
            self.got.push(data.to_vec());
        }

        fn length_limit_exceeded(&mut self, strings: &mut Strings, length: u64) {
            self.too_long = Some(length);
            strings.lose_connection();
        }

        fn invalid_frame(&mut self, strings: &mut Strings) {
            self.invalid = true;
            strings.lose_connection();
        }
    }

    fn string_receiver(
        framing: Framing,
        max: usize,
    ) -> (StringReceiver<Strs>, Rc<StringTransport>) {
        let transport = StringTransport::new();
        let mut receiver = StringReceiver::new(framing, Strs::default()).with_max_length(max);
        receiver.connection_made(transport.clone());
        (receiver, transport)
    }

    /// Int32 frames round-trip through `send_string` and the parser at every chunking.
    #[test]
    fn round_trips_int32_strings() {
        for chunk in CHUNKS {
            let (sender, wire) = string_receiver(Framing::Int32, 100);
            for text in [&b"hello"[..], b"", b"world!"] {
                sender.strings.send_string(text);
            }
            let bytes = wire.value();
            assert_eq!(bytes.get(..9), Some(&b"\0\0\0\x05hello"[..]));
            let (mut receiver, _) = string_receiver(Framing::Int32, 100);
            feed(&mut receiver, &bytes, chunk);
            let expected: Vec<&[u8]> = vec![b"hello", b"", b"world!"];
            assert_eq!(receiver.protocol().got, expected, "chunk {chunk}");
        }
    }

    /// An Int32 header announcing more than the limit is refused before anything is buffered.
    #[test]
    fn refuses_an_int32_length_over_the_limit() {
        for chunk in CHUNKS {
            let (mut receiver, transport) = string_receiver(Framing::Int32, 10);
            feed(&mut receiver, b"\xff\xff\xff\xffjunk", chunk);
            assert_eq!(receiver.protocol().too_long, Some(0xffff_ffff), "chunk {chunk}");
            assert!(receiver.buffer.is_empty());
            assert!(transport.disconnecting());
        }
    }

    /// Netstrings round-trip through `send_string` and the parser at every chunking.
    #[test]
    fn round_trips_netstrings() {
        for chunk in CHUNKS {
            let (sender, wire) = string_receiver(Framing::Netstring, 100);
            sender.strings.send_string(b"hello world!");
            sender.strings.send_string(b"");
            assert_eq!(wire.value(), b"12:hello world!,0:,");
            let (mut receiver, _) = string_receiver(Framing::Netstring, 100);
            feed(&mut receiver, &wire.value(), chunk);
            let expected: Vec<&[u8]> = vec![b"hello world!", b""];
            assert_eq!(receiver.protocol().got, expected, "chunk {chunk}");
        }
    }

    /// Malformed netstrings (no comma, leading zero, no digits) are rejected.
    #[test]
    fn rejects_malformed_netstrings() {
        for bad in [&b"3:abc;"[..], b"03:abc,", b":abc,", b"x"] {
            for chunk in CHUNKS {
                let (mut receiver, transport) = string_receiver(Framing::Netstring, 100);
                feed(&mut receiver, bad, chunk);
                assert!(receiver.protocol().invalid, "{bad:?} chunk {chunk}");
                assert!(receiver.protocol().got.is_empty());
                assert!(transport.disconnecting());
            }
        }
    }

    /// A netstring length over the limit, or with too many digits, is refused.
    #[test]
    fn refuses_a_netstring_length_over_the_limit() {
        for bad in [&b"101:"[..], b"99999999999999999999"] {
            for chunk in CHUNKS {
                let (mut receiver, _) = string_receiver(Framing::Netstring, 100);
                feed(&mut receiver, bad, chunk);
                assert!(receiver.protocol().too_long.is_some(), "{bad:?} chunk {chunk}");
            }
        }
    }
}

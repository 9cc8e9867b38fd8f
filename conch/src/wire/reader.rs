//! Decoding the SSH data types from a borrowed message.

use super::{InvalidMessage, MessageType, MAX_MPINT_LEN, MAX_NAME_LIST_ENTRIES, MAX_NAME_LIST_LEN};

/// Reads SSH data types (RFC 4251 §5) from a message, borrowing strings from it.
///
/// Every read checks the remaining length first, so a hostile length field can neither read past
/// the message nor make us allocate: nothing here allocates at all. Finish a message with
/// [`Reader::finish`], which rejects trailing bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// `byte`.
    pub fn read_u8(&mut self) -> Result<u8, InvalidMessage> {
        let (&first, rest) = self.buf.split_first().ok_or(InvalidMessage::Truncated)?;
        self.buf = rest;
        Ok(first)
    }

    /// The message number that starts a payload.
    pub fn read_message_type(&mut self) -> Result<MessageType, InvalidMessage> {
        self.read_u8().map(MessageType).map_err(|_| InvalidMessage::EmptyMessage)
    }

    /// `boolean`: RFC 4251 says any non-zero value is TRUE, but only 0 and 1 may be sent; like
    /// OpenSSH we accept any non-zero value as true.
    pub fn read_bool(&mut self) -> Result<bool, InvalidMessage> {
        Ok(self.read_u8()? != 0)
    }

    /// `uint32`, big-endian.
    pub fn read_u32(&mut self) -> Result<u32, InvalidMessage> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// `uint64`, big-endian.
    pub fn read_u64(&mut self) -> Result<u64, InvalidMessage> {
        let hi = u64::from(self.read_u32()?);
        let lo = u64::from(self.read_u32()?);
        Ok(hi << 32 | lo)
    }

    /// `n` raw bytes (no length prefix), such as a KEXINIT cookie.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], InvalidMessage> {
        self.take(n)
    }

    /// A fixed-size array of raw bytes.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], InvalidMessage> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// `string`: a uint32 length and that many bytes, borrowed. The length is bounded by the
    /// message itself.
    pub fn read_string(&mut self) -> Result<&'a [u8], InvalidMessage> {
        let len = self.read_len()?;
        self.take(len)
    }

    /// A `string` holding UTF-8 text (user names, descriptions, language tags).
    pub fn read_utf8(&mut self) -> Result<&'a str, InvalidMessage> {
        std::str::from_utf8(self.read_string()?).map_err(|_| InvalidMessage::InvalidUtf8)
    }

    /// A `string` that must be no longer than `limit` bytes.
    pub fn read_string_limited(&mut self, limit: usize) -> Result<&'a [u8], InvalidMessage> {
        let len = self.read_len()?;
        if len > limit {
            return Err(InvalidMessage::LengthOverLimit);
        }
        self.take(len)
    }

    /// `name-list`: comma-separated US-ASCII names, at most [`MAX_NAME_LIST_LEN`] bytes and
    /// [`MAX_NAME_LIST_ENTRIES`] names. An empty list is allowed; empty names are not.
    pub fn read_name_list(&mut self) -> Result<NameList<'a>, InvalidMessage> {
        let raw = self.read_string_limited(MAX_NAME_LIST_LEN)?;
        NameList::parse(raw)
    }

    /// `mpint` that must be non-negative: returns its magnitude, big-endian, without leading
    /// zero bytes (zero is the empty slice). Negative values are rejected; so are values longer
    /// than [`MAX_MPINT_LEN`].
    pub fn read_mpint_unsigned(&mut self) -> Result<&'a [u8], InvalidMessage> {
        let raw = self.read_string_limited(MAX_MPINT_LEN)?;
        if raw.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(InvalidMessage::InvalidMpint);
        }
        let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
        Ok(&raw[start..])
    }

    /// Runs `f` on the contents of a length-prefixed `string`, which must consume it exactly.
    pub fn read_prefixed<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, InvalidMessage>,
    ) -> Result<T, InvalidMessage> {
        let mut inner = Self::new(self.read_string()?);
        let value = f(&mut inner)?;
        inner.finish()?;
        Ok(value)
    }

    /// The bytes not yet read, without consuming them.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes all the bytes not yet read.
    pub fn read_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends the message: an error if any bytes are left.
    pub fn finish(&self) -> Result<(), InvalidMessage> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(InvalidMessage::TrailingData)
        }
    }

    fn read_len(&mut self) -> Result<usize, InvalidMessage> {
        let len = usize::try_from(self.read_u32()?).map_err(|_| InvalidMessage::LengthOverLimit)?;
        if len > self.buf.len() {
            return Err(InvalidMessage::Truncated);
        }
        Ok(len)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidMessage> {
        if n > self.buf.len() {
            return Err(InvalidMessage::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
}

/// A validated `name-list`, borrowed from the message: iterate it for its names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NameList<'a> {
    raw: &'a str,
}

impl<'a> NameList<'a> {
    /// Validates a name-list's bytes: printable US-ASCII without spaces, no empty names, at
    /// most [`MAX_NAME_LIST_ENTRIES`] names.
    pub fn parse(raw: &'a [u8]) -> Result<Self, InvalidMessage> {
        if raw.len() > MAX_NAME_LIST_LEN {
            return Err(InvalidMessage::LengthOverLimit);
        }
        if !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidMessage::InvalidNameList);
        }
        let text = std::str::from_utf8(raw).map_err(|_| InvalidMessage::InvalidNameList)?;
        if !text.is_empty() {
            let mut count = 0usize;
            for name in text.split(',') {
                count += 1;
                if name.is_empty() || count > MAX_NAME_LIST_ENTRIES {
                    return Err(InvalidMessage::InvalidNameList);
                }
            }
        }
        Ok(Self { raw: text })
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let raw = self.raw;
        raw.split(',').filter(move |_| !raw.is_empty())
    }

    /// Whether `name` is in the list.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    /// The list as sent: names joined by commas.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether the list has no names.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each fixed-size type reads big-endian and consumes exactly its width.
    #[test]
    fn reads_fixed_size_types_big_endian() {
        let buf = [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 3, 0];
        let mut r = Reader::new(&buf);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_u32().unwrap(), 2);
        assert_eq!(r.read_u64().unwrap(), 259);
        assert!(!r.read_bool().unwrap());
        r.finish().unwrap();
    }

    /// A string whose length runs past the end of the message is truncated, not read.
    #[test]
    fn rejects_string_longer_than_message() {
        let buf = [0, 0, 0, 5, b'a', b'b'];
        assert_eq!(Reader::new(&buf).read_string(), Err(InvalidMessage::Truncated));
        let huge = [0xff, 0xff, 0xff, 0xff, b'a'];
        assert_eq!(Reader::new(&huge).read_string(), Err(InvalidMessage::Truncated));
    }

    /// Every prefix of a valid message fails cleanly with `Truncated`.
    #[test]
    fn rejects_every_truncation_of_a_message() {
        let mut msg = Vec::new();
        let mut w = crate::wire::Writer::new(&mut msg);
        w.write_u8(20);
        w.write_string(b"hello");
        w.write_name_list(["a", "bb"]);
        w.write_u32(7);
        for cut in 0..msg.len() {
            let mut r = Reader::new(&msg[..cut]);
            let result = (|| {
                r.read_u8()?;
                r.read_string()?;
                r.read_name_list()?;
                r.read_u32()
            })();
            assert_eq!(result, Err(InvalidMessage::Truncated), "cut at {cut}");
        }
    }

    /// Bytes left after the last field are an error when the message is finished.
    #[test]
    fn rejects_trailing_data() {
        let r = Reader::new(&[0]);
        assert_eq!(r.finish(), Err(InvalidMessage::TrailingData));
    }

    /// Name-lists split on commas; empty lists are allowed, empty names are not.
    #[test]
    fn parses_name_lists_and_rejects_empty_names() {
        let list = NameList::parse(b"curve25519-sha256,ext-info-c").unwrap();
        assert_eq!(list.iter().collect::<Vec<_>>(), ["curve25519-sha256", "ext-info-c"]);
        assert!(list.contains("ext-info-c"));
        assert_eq!(NameList::parse(b"").unwrap().iter().count(), 0);
        for bad in [&b"a,,b"[..], b",a", b"a,", b"a b", b"a\0b", b"\xc3\xa9"] {
            assert_eq!(NameList::parse(bad), Err(InvalidMessage::InvalidNameList), "{bad:?}");
        }
    }

    /// A name-list over the length limit is rejected before it is looked at.
    #[test]
    fn rejects_oversized_name_list() {
        let mut msg = Vec::new();
        let long = "a,".repeat(MAX_NAME_LIST_LEN / 2) + "a";
        crate::wire::Writer::new(&mut msg).write_string(long.as_bytes());
        assert_eq!(Reader::new(&msg).read_name_list(), Err(InvalidMessage::LengthOverLimit));
    }

    /// A name-list with more names than the limit is rejected.
    #[test]
    fn rejects_name_list_with_too_many_names() {
        let many = vec!["a"; MAX_NAME_LIST_ENTRIES + 1].join(",");
        assert_eq!(NameList::parse(many.as_bytes()), Err(InvalidMessage::InvalidNameList));
        let enough = vec!["a"; MAX_NAME_LIST_ENTRIES].join(",");
        assert!(NameList::parse(enough.as_bytes()).is_ok());
    }

    /// Unsigned mpints lose their sign byte; negative ones are refused (RFC 4251 §5 examples).
    #[test]
    fn reads_unsigned_mpints_and_refuses_negative_ones() {
        type Case<'a> = (&'a [u8], Result<&'a [u8], InvalidMessage>);
        let cases: [Case<'_>; 4] = [
            (&[0, 0, 0, 0], Ok(&[])),
            (&[0, 0, 0, 2, 0x00, 0x80], Ok(&[0x80])),
            (
                &[0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
                Ok(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]),
            ),
            (&[0, 0, 0, 2, 0xed, 0xcc], Err(InvalidMessage::InvalidMpint)),
        ];
        for (wire, want) in cases {
            assert_eq!(Reader::new(wire).read_mpint_unsigned(), want, "{wire:?}");
        }
    }

    /// A nested, length-prefixed structure must be consumed exactly.
    #[test]
    fn read_prefixed_requires_the_inner_reader_to_finish() {
        let buf = [0, 0, 0, 2, 7, 8];
        assert_eq!(
            Reader::new(&buf).read_prefixed(|r| r.read_u8()),
            Err(InvalidMessage::TrailingData)
        );
        assert_eq!(
            Reader::new(&buf).read_prefixed(|r| Ok((r.read_u8()?, r.read_u8()?))),
            Ok((7, 8))
        );
    }
}

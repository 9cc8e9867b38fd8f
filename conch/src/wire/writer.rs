//! Encoding the SSH data types into a caller-owned buffer.

/// Appends SSH data types (RFC 4251 §5) to a `Vec<u8>` the caller owns and may reuse.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// `byte`.
    pub fn write_u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// `boolean`: 1 or 0.
    pub fn write_bool(&mut self, v: bool) -> &mut Self {
        self.write_u8(u8::from(v))
    }

    /// `uint32`, big-endian.
    pub fn write_u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `uint64`, big-endian.
    pub fn write_u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes, without a length prefix.
    pub fn write_raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `string`: uint32 length, then the bytes.
    ///
    /// # Panics
    ///
    /// Never for anything that fits in a packet; a slice of 4 GiB or more is a local bug and is
    /// written with its length saturated, which the peer rejects.
    pub fn write_string(&mut self, bytes: &[u8]) -> &mut Self {
        self.write_u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.write_raw(bytes)
    }

    /// A `string` whose contents are written by `f`; the length prefix is filled in after.
    pub fn write_prefixed(&mut self, f: impl FnOnce(&mut Writer<'_>)) -> &mut Self {
        let start = self.buf.len();
        self.write_u32(0);
        f(&mut Writer::new(self.buf));
        let len = u32::try_from(self.buf.len() - start - 4).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        self
    }

    /// `name-list`: the names joined by commas, as a string.
    pub fn write_name_list<I, S>(&mut self, names: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.write_prefixed(|w| {
            for (i, name) in names.into_iter().enumerate() {
                if i > 0 {
                    w.write_u8(b',');
                }
                w.write_raw(name.as_ref().as_bytes());
            }
        })
    }

    /// `mpint` from a non-negative big-endian magnitude: leading zeros are dropped and a zero
    /// byte is added when the top bit is set, so the encoding is the unique minimal one.
    pub fn write_mpint_unsigned(&mut self, magnitude: &[u8]) -> &mut Self {
        let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
        let digits = &magnitude[start..];
        let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
        let len = digits.len() + usize::from(pad);
        self.write_u32(u32::try_from(len).unwrap_or(u32::MAX));
        if pad {
            self.write_u8(0);
        }
        self.write_raw(digits)
    }

    /// The number of bytes in the buffer (including any written before this writer).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the underlying buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Reader;

    /// The mpint examples of RFC 4251 §5 encode exactly as the RFC shows.
    #[test]
    fn encodes_the_rfc_4251_mpint_examples() {
        let cases: [(&[u8], &[u8]); 4] = [
            (&[], &[0, 0, 0, 0]),
            (
                &[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
                &[0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
            ),
            (&[0x80], &[0, 0, 0, 2, 0x00, 0x80]),
            (&[0, 0, 0x7f], &[0, 0, 0, 1, 0x7f]),
        ];
        for (magnitude, wire) in cases {
            let mut buf = Vec::new();
            Writer::new(&mut buf).write_mpint_unsigned(magnitude);
            assert_eq!(buf, wire, "{magnitude:?}");
        }
    }

    /// What the writer writes, the reader reads back.
    #[test]
    fn round_trips_every_type() {
        let mut buf = Vec::new();
        Writer::new(&mut buf)
            .write_u8(7)
            .write_bool(true)
            .write_u32(0xdead_beef)
            .write_u64(u64::MAX - 1)
            .write_string(b"ssh-userauth")
            .write_name_list(["aes128-ctr", "aes256-ctr"])
            .write_name_list(Vec::<&str>::new())
            .write_mpint_unsigned(&[0xff, 0x01]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_u8().unwrap(), 7);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_u32().unwrap(), 0xdead_beef);
        assert_eq!(r.read_u64().unwrap(), u64::MAX - 1);
        assert_eq!(r.read_string().unwrap(), b"ssh-userauth");
        assert_eq!(r.read_name_list().unwrap().as_str(), "aes128-ctr,aes256-ctr");
        assert!(r.read_name_list().unwrap().is_empty());
        assert_eq!(r.read_mpint_unsigned().unwrap(), [0xff, 0x01]);
        r.finish().unwrap();
    }

    /// A prefixed string gets the length of what its closure wrote.
    #[test]
    fn write_prefixed_fills_in_the_length() {
        let mut buf = vec![9];
        Writer::new(&mut buf).write_prefixed(|w| {
            w.write_u32(1).write_string(b"ab");
        });
        assert_eq!(buf, [9, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b']);
    }
}

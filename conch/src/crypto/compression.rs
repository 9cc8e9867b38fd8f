//! Payload compression: `none`, `zlib` (RFC 4253 §6.2) and `zlib@openssh.com` (the same
//! stream, switched on only after user authentication succeeds; that delay is the transport's
//! business, these objects are identical).
//!
//! Each direction is one continuous zlib stream (header included) for the life of the keys;
//! every packet's payload ends with a partial flush (`Z_PARTIAL_FLUSH`), as OpenSSH does, so
//! the receiver can decode each packet as it arrives. Compression is `flate2` with its default
//! pure-Rust backend (`miniz_oxide`).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{Compressor, CryptoError, Decompressor};

/// Every compression name we implement.
pub const COMPRESSION_NAMES: &[&str] = &["none", "zlib@openssh.com", "zlib"];

/// How many output bytes each inflate step may add beyond what is already reserved.
const STEP: usize = 16 * 1024;

/// The compressor and decompressor pair for `name`, or `None` for `none` and for names we do
/// not implement (check [`COMPRESSION_NAMES`] to tell them apart).
pub fn compression_by_name(name: &str) -> Option<(ZlibCompressor, ZlibDecompressor)> {
    match name {
        "zlib" | "zlib@openssh.com" => Some((ZlibCompressor::new(), ZlibDecompressor::new())),
        _ => None,
    }
}

/// One direction's outgoing zlib stream.
#[derive(Debug)]
pub struct ZlibCompressor {
    stream: Compress,
}

impl ZlibCompressor {
    /// A new stream at OpenSSH's level (6, zlib's default).
    pub fn new() -> Self {
        Self { stream: Compress::new(Compression::new(6), true) }
    }
}

impl Default for ZlibCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor for ZlibCompressor {
    fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let start_in = self.stream.total_in();
        loop {
            let consumed = usize::try_from(self.stream.total_in() - start_in)
                .map_err(|_| CryptoError::BadCompression)?;
            let rest = payload.get(consumed..).ok_or(CryptoError::BadCompression)?;
            // Deflate's worst case is a few bytes per 16 KiB block beyond the input.
            out.reserve(rest.len() + rest.len() / 1000 + 64);
            self.stream
                .compress_vec(rest, out, FlushCompress::Partial)
                .map_err(|_| CryptoError::BadCompression)?;
            let done = self.stream.total_in() - start_in == payload.len() as u64;
            // The flush is complete once deflate stops with output space left over.
            if done && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// One direction's incoming zlib stream.
#[derive(Debug)]
pub struct ZlibDecompressor {
    stream: Decompress,
}

impl ZlibDecompressor {
    /// A new stream expecting a zlib header.
    pub fn new() -> Self {
        Self { stream: Decompress::new(true) }
    }
}

impl Default for ZlibDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor for ZlibDecompressor {
    /// Inflates into `out` in steps of at most 16 KiB, never letting it grow by more
    /// than `limit + 1` bytes; reaching `limit + 1` means the payload inflates beyond the limit
    /// and is [`CryptoError::BadCompression`], as is corrupt data or an ended stream.
    fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), CryptoError> {
        let start_in = self.stream.total_in();
        let start_len = out.len();
        loop {
            let consumed = usize::try_from(self.stream.total_in() - start_in)
                .map_err(|_| CryptoError::BadCompression)?;
            let rest = payload.get(consumed..).ok_or(CryptoError::BadCompression)?;
            let produced = out.len() - start_len;
            let room = (limit - produced).saturating_add(1).min(STEP);
            let before = out.len();
            out.resize(before + room, 0);
            let before_out = self.stream.total_out();
            let status = self.stream.decompress(rest, &mut out[before..], FlushDecompress::Sync);
            let written = usize::try_from(self.stream.total_out() - before_out)
                .map_err(|_| CryptoError::BadCompression)?;
            out.truncate(before + written);
            let status = status.map_err(|_| CryptoError::BadCompression)?;
            if out.len() - start_len > limit || status == Status::StreamEnd {
                return Err(CryptoError::BadCompression);
            }
            let now_consumed = usize::try_from(self.stream.total_in() - start_in)
                .map_err(|_| CryptoError::BadCompression)?;
            if now_consumed == payload.len() && written < room {
                return Ok(()); // all input taken and the output was not cut short
            }
            if now_consumed == consumed && written == 0 {
                return Err(CryptoError::BadCompression); // no progress: truncated or corrupt
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn payloads() -> Vec<Vec<u8>> {
        (0..40usize)
            .map(|i| {
                let text = format!("packet {i}: the quick brown fox jumps over the lazy dog. ");
                text.repeat(i * 7 % 50 + 1).into_bytes()
            })
            .collect()
    }

    /// Each packet decompresses on arrival to exactly its payload, over one continuous stream,
    /// and the stream compresses repetitive data well.
    #[test]
    fn packets_round_trip_one_at_a_time_over_a_continuous_stream() {
        let (mut compressor, mut decompressor) = compression_by_name("zlib@openssh.com").unwrap();
        let mut total_in = 0;
        let mut total_out = 0;
        for payload in payloads() {
            let mut compressed = Vec::new();
            compressor.compress(&payload, &mut compressed).unwrap();
            let mut out = b"prefix".to_vec();
            decompressor.decompress(&compressed, &mut out, 256 * 1024).unwrap();
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(&out[6..], &payload[..]);
            total_in += payload.len();
            total_out += compressed.len();
        }
        assert!(total_out * 10 < total_in, "{total_out} of {total_in}");
    }

    /// The concatenated packets are one valid zlib stream for an independent inflater, and we
    /// decode a stream made by an independent deflater using sync flushes (as zlib peers may).
    #[test]
    fn interoperates_with_an_independent_zlib_stream() {
        let mut compressor = ZlibCompressor::new();
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for payload in payloads() {
            compressor.compress(&payload, &mut wire).unwrap();
            want.extend_from_slice(&payload);
        }
        let mut inflated = Vec::new();
        let mut decoder = flate2::read::ZlibDecoder::new(&wire[..]);
        // The stream never ends (no final block), so read exactly what was sent.
        inflated.resize(want.len(), 0);
        decoder.read_exact(&mut inflated).unwrap();
        assert_eq!(inflated, want);

        let mut other = Compress::new(Compression::best(), true);
        let mut decompressor = ZlibDecompressor::new();
        for payload in payloads() {
            let mut packet = Vec::with_capacity(payload.len() + 128);
            other.compress_vec(&payload, &mut packet, FlushCompress::Sync).unwrap();
            let mut out = Vec::new();
            decompressor.decompress(&packet, &mut out, payload.len()).unwrap();
            assert_eq!(out, payload);
        }
    }

    /// A zip bomb (10 MiB of zeros in about 10 KiB) fails cleanly at the limit without growing
    /// the output past it; a payload of exactly the limit passes.
    #[test]
    fn a_zip_bomb_fails_at_the_limit() {
        let bomb = vec![0u8; 10 * 1024 * 1024];
        let mut compressed = Vec::new();
        ZlibCompressor::new().compress(&bomb, &mut compressed).unwrap();
        assert!(compressed.len() < 20 * 1024);
        let limit = 256 * 1024;
        let mut out = Vec::new();
        let err = ZlibDecompressor::new().decompress(&compressed, &mut out, limit);
        assert_eq!(err, Err(CryptoError::BadCompression));
        assert!(out.len() <= limit + 1, "{}", out.len());

        let exact = vec![7u8; limit];
        let mut compressed = Vec::new();
        ZlibCompressor::new().compress(&exact, &mut compressed).unwrap();
        let mut out = Vec::new();
        ZlibDecompressor::new().decompress(&compressed, &mut out, limit).unwrap();
        assert_eq!(out, exact);
        let mut out = Vec::new();
        let err = ZlibDecompressor::new().decompress(&compressed, &mut out, limit - 1);
        assert_eq!(err, Err(CryptoError::BadCompression));
    }

    /// Corrupt input, a missing zlib header, and a finished stream are errors, not panics.
    #[test]
    fn corrupt_data_fails_cleanly() {
        let mut compressed = Vec::new();
        ZlibCompressor::new().compress(b"hello hello hello", &mut compressed).unwrap();
        let mut headerless = compressed.clone();
        headerless[0] ^= 0xff;
        let mut out = Vec::new();
        assert_eq!(
            ZlibDecompressor::new().decompress(&headerless, &mut out, 1024),
            Err(CryptoError::BadCompression)
        );
        let garbage = [0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            ZlibDecompressor::new().decompress(&garbage, &mut out, 1024),
            Err(CryptoError::BadCompression)
        );
        let finished = {
            let mut c = Compress::new(Compression::default(), true);
            let mut v = Vec::with_capacity(64);
            c.compress_vec(b"end", &mut v, FlushCompress::Finish).unwrap();
            v
        };
        assert_eq!(
            ZlibDecompressor::new().decompress(&finished, &mut out, 1024),
            Err(CryptoError::BadCompression)
        );
    }

    /// Both zlib names give working objects; `none` and unknown names give none.
    #[test]
    fn names_resolve() {
        assert!(compression_by_name("zlib").is_some());
        assert!(compression_by_name("zlib@openssh.com").is_some());
        assert!(compression_by_name("none").is_none());
        assert!(compression_by_name("lz4").is_none());
    }
}

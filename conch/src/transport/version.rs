//! The identification line exchange (RFC 4253 §4.2).
//!
//! ```text
//! SSH-protoversion-softwareversion SP comments CR LF
//! ```
//!
//! Each side sends its line first thing. A client skips lines a server sends before its version
//! (RFC 4253 §4.2 allows them; OpenSSH accepts up to 1024), bounded here in count and bytes; a
//! server accepts nothing before the client's version. Like OpenSSH we accept a bare LF as the
//! line end, and `1.99` as `2.0`.

use crate::error::{Error, PeerIncompatible, PeerMisbehaved};

/// The longest identification line, CR LF included (RFC 4253 §4.2).
pub const MAX_VERSION_LINE_LEN: usize = 255;

/// The most lines a client skips before the server's version line (OpenSSH's
/// `SSH_MAX_PRE_BANNER_LINES`).
pub const MAX_PRE_BANNER_LINES: usize = 1024;

/// The most bytes a client skips before the server's version line.
pub const MAX_PRE_BANNER_BYTES: usize = 64 * 1024;

/// The text OpenSSH sends (outside any packet) when the peer's protocol version is not 2.0.
pub(crate) const PROTOCOL_MISMATCH_TEXT: &[u8] = b"Protocol major versions differ.\r\n";

/// The text OpenSSH sends when the peer's identification line is malformed.
pub(crate) const INVALID_IDENTIFICATION_TEXT: &[u8] = b"Invalid SSH identification string.\r\n";

/// Reads the peer's identification line from the start of the input, skipping pre-banner
/// lines when `allow_pre_banner` (the client side).
#[derive(Debug, Default)]
pub(crate) struct VersionReader {
    lines_skipped: usize,
    bytes_skipped: usize,
    /// Bytes at the start of the current (unfinished) line already known to hold no LF, so
    /// that a line trickled in byte by byte is scanned once, not once per byte.
    scanned: usize,
}

/// What the reader made of the bytes so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VersionRead {
    /// More bytes are needed; `consumed` leading bytes (skipped lines) can be dropped.
    Incomplete { consumed: usize },
    /// The version line: `consumed` bytes up to and including its LF, and the line without CR LF.
    Complete { consumed: usize, line: Vec<u8> },
}

impl VersionReader {
    /// Looks for the version line in `input`, which starts where the last call's `consumed`
    /// ended.
    pub(crate) fn read(
        &mut self,
        input: &[u8],
        allow_pre_banner: bool,
    ) -> Result<VersionRead, Error> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            let is_version = rest.starts_with(b"SSH-") || b"SSH-".starts_with(rest);
            let from = self.scanned.min(rest.len());
            let found = rest.get(from..).unwrap_or_default().iter().position(|&b| b == b'\n');
            let Some(lf) = found.map(|i| i + from) else {
                self.scanned = rest.len();
                if is_version {
                    if rest.len() >= MAX_VERSION_LINE_LEN {
                        return Err(PeerMisbehaved::InvalidIdentification.into());
                    }
                } else if !allow_pre_banner {
                    return Err(PeerMisbehaved::InvalidIdentification.into());
                } else if self.bytes_skipped + rest.len() > MAX_PRE_BANNER_BYTES {
                    return Err(PeerMisbehaved::TooMuchBeforeVersion.into());
                }
                return Ok(VersionRead::Incomplete { consumed });
            };
            self.scanned = 0;
            let line_len = lf + 1;
            let line = rest.get(..lf).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if rest.starts_with(b"SSH-") {
                if line_len > MAX_VERSION_LINE_LEN {
                    return Err(PeerMisbehaved::InvalidIdentification.into());
                }
                check_version_line(line)?;
                return Ok(VersionRead::Complete {
                    consumed: consumed + line_len,
                    line: line.to_vec(),
                });
            }
            if !allow_pre_banner {
                return Err(PeerMisbehaved::InvalidIdentification.into());
            }
            self.lines_skipped += 1;
            self.bytes_skipped += line_len;
            if self.lines_skipped > MAX_PRE_BANNER_LINES
                || self.bytes_skipped > MAX_PRE_BANNER_BYTES
            {
                return Err(PeerMisbehaved::TooMuchBeforeVersion.into());
            }
            consumed += line_len;
        }
    }
}

/// Checks `SSH-protoversion-softwareversion [SP comments]` (without CR LF).
fn check_version_line(line: &[u8]) -> Result<(), Error> {
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PeerMisbehaved::InvalidIdentification.into());
    }
    let rest = line.strip_prefix(b"SSH-").ok_or(PeerMisbehaved::InvalidIdentification)?;
    let dash = rest.iter().position(|&b| b == b'-').ok_or(PeerMisbehaved::InvalidIdentification)?;
    let (proto, software) = rest.split_at(dash);
    let software = software.get(1..).unwrap_or_default();
    let software = software.split(|&b| b == b' ').next().unwrap_or_default();
    match proto {
        b"2.0" | b"1.99" => {}
        _ if proto.is_empty() || !proto.iter().all(|b| b.is_ascii_digit() || *b == b'.') => {
            return Err(PeerMisbehaved::InvalidIdentification.into())
        }
        _ => return Err(PeerIncompatible::ProtocolVersion.into()),
    }
    if software.is_empty() {
        return Err(PeerMisbehaved::InvalidIdentification.into());
    }
    Ok(())
}

/// Checks our own identification line (without CR LF) as [`check_version_line`] would, plus
/// the RFC's rule that it is printable US-ASCII and fits in 255 bytes with CR LF.
pub(crate) fn is_valid_own_line(line: &str) -> bool {
    line.len() + 2 <= MAX_VERSION_LINE_LEN
        && line.bytes().all(|b| (0x20..0x7f).contains(&b))
        && line.starts_with("SSH-2.0-")
        && check_version_line(line.as_bytes()).is_ok()
}

/// The text to send outside any packet when the version exchange fails, as OpenSSH does.
pub(crate) fn error_text(error: &Error) -> Option<&'static [u8]> {
    match error {
        Error::PeerIncompatible(PeerIncompatible::ProtocolVersion) => Some(PROTOCOL_MISMATCH_TEXT),
        Error::PeerMisbehaved(
            PeerMisbehaved::InvalidIdentification | PeerMisbehaved::TooMuchBeforeVersion,
        ) => Some(INVALID_IDENTIFICATION_TEXT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes, as the transport does, until a result.
    fn feed(input: &[u8], chunk: usize, pre_banner: bool) -> Result<(usize, Vec<u8>), Error> {
        let mut reader = VersionReader::default();
        let mut buffered = Vec::new();
        let mut dropped = 0;
        for piece in input.chunks(chunk.max(1)) {
            buffered.extend_from_slice(piece);
            match reader.read(&buffered, pre_banner)? {
                VersionRead::Incomplete { consumed } => {
                    buffered.drain(..consumed);
                    dropped += consumed;
                }
                VersionRead::Complete { consumed, line } => return Ok((dropped + consumed, line)),
            }
        }
        Err(Error::ConnectionClosed)
    }

    fn feed_all_ways(input: &[u8], pre_banner: bool) -> Result<(usize, Vec<u8>), Error> {
        let whole = feed(input, input.len(), pre_banner);
        for chunk in [1, 7] {
            assert_eq!(feed(input, chunk, pre_banner), whole, "chunk {chunk}");
        }
        whole
    }

    /// A CR LF line, a bare LF line and a 1.99 line are all accepted, whatever the chunking.
    #[test]
    fn accepts_crlf_lf_and_1_99_lines() {
        let (n, line) = feed_all_ways(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\nrest", false).unwrap();
        assert_eq!((n, &line[..]), (30, &b"SSH-2.0-OpenSSH_9.2p1 Debian"[..]));
        let (n, line) = feed_all_ways(b"SSH-2.0-x\n", false).unwrap();
        assert_eq!((n, &line[..]), (10, &b"SSH-2.0-x"[..]));
        assert!(feed_all_ways(b"SSH-1.99-old\r\n", false).is_ok());
    }

    /// A client skips lines before the version; a server does not.
    #[test]
    fn only_the_client_skips_pre_banner_lines() {
        let input = b"hello\r\nworld\nSSH-2.0-srv\r\n";
        let (n, line) = feed_all_ways(input, true).unwrap();
        assert_eq!((n, &line[..]), (input.len(), &b"SSH-2.0-srv"[..]));
        assert_eq!(feed_all_ways(input, false), Err(PeerMisbehaved::InvalidIdentification.into()));
    }

    /// 1024 pre-banner lines are skipped; the 1025th is too many.
    #[test]
    fn rejects_more_than_1024_pre_banner_lines() {
        let mut input = b"x\r\n".repeat(MAX_PRE_BANNER_LINES);
        input.extend_from_slice(b"SSH-2.0-ok\r\n");
        assert!(feed_all_ways(&input, true).is_ok());
        let mut input = b"x\r\n".repeat(MAX_PRE_BANNER_LINES + 1);
        input.extend_from_slice(b"SSH-2.0-ok\r\n");
        assert_eq!(feed_all_ways(&input, true), Err(PeerMisbehaved::TooMuchBeforeVersion.into()));
    }

    /// A stream of pre-banner bytes without a line end stops at the byte limit.
    #[test]
    fn rejects_endless_pre_banner_bytes() {
        let input = vec![b'a'; MAX_PRE_BANNER_BYTES + 1];
        assert_eq!(feed_all_ways(&input, true), Err(PeerMisbehaved::TooMuchBeforeVersion.into()));
    }

    /// A version line of 256 bytes (CR LF included) is too long, whether or not it ends.
    #[test]
    fn rejects_version_lines_over_255_bytes() {
        let mut line = b"SSH-2.0-".to_vec();
        line.resize(MAX_VERSION_LINE_LEN - 2, b'a');
        line.extend_from_slice(b"\r\n");
        assert!(feed_all_ways(&line, false).is_ok());
        line.insert(10, b'a');
        assert_eq!(feed_all_ways(&line, false), Err(PeerMisbehaved::InvalidIdentification.into()));
        let endless = [b"SSH-2.0-".as_slice(), &[b'a'; 1000]].concat();
        assert_eq!(
            feed_all_ways(&endless, false),
            Err(PeerMisbehaved::InvalidIdentification.into())
        );
    }

    /// An SSH-1.5 peer is incompatible, not malformed.
    #[test]
    fn ssh_1_5_banner_is_a_protocol_version_error() {
        assert_eq!(
            feed_all_ways(b"SSH-1.5-HALLO\n", false),
            Err(PeerIncompatible::ProtocolVersion.into())
        );
        assert_eq!(
            feed_all_ways(b"SSH-3.0-future\r\n", true),
            Err(PeerIncompatible::ProtocolVersion.into())
        );
    }

    /// Lines with NUL or other control bytes, no software version or no dash are malformed.
    #[test]
    fn rejects_malformed_version_lines() {
        for bad in [&b"SSH-2.0-a\0b\r\n"[..], b"SSH-2.0-\r\n", b"SSH-2.0\r\n", b"SSH--x\r\n"] {
            assert_eq!(
                feed_all_ways(bad, true),
                Err(PeerMisbehaved::InvalidIdentification.into()),
                "{bad:?}"
            );
        }
    }

    /// Our own default line passes our own checks; one with a space in the software does not
    /// change meaning (the space starts the comment).
    #[test]
    fn validates_our_own_lines() {
        assert!(is_valid_own_line("SSH-2.0-twine_0.1.0"));
        assert!(is_valid_own_line("SSH-2.0-twine_0.1.0 a comment"));
        assert!(!is_valid_own_line("SSH-1.5-twine"));
        assert!(!is_valid_own_line("SSH-2.0-tw\tine"));
        assert!(!is_valid_own_line(&format!("SSH-2.0-{}", "a".repeat(250))));
    }
}

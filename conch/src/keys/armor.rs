//! The text wrapping shared by every key file format: a begin line, header lines, base64 in
//! fixed-width lines, an end line.

use base64::Engine as _;

/// `begin`, each header line, the base64 of `binary` in lines of `width`, then `end`, every
/// line ending in `\n`.
pub(crate) fn wrap(
    begin: &str,
    headers: &[String],
    binary: &[u8],
    width: usize,
    end: &str,
) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(binary);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / width.max(1) + 160);
    out.push_str(begin);
    out.push('\n');
    for header in headers {
        out.push_str(header);
        out.push('\n');
    }
    for chunk in encoded.as_bytes().chunks(width.max(1)) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(end);
    out.push('\n');
    out
}

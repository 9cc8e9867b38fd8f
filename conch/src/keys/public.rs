//! Public key text: OpenSSH lines (`type base64 comment`) and RFC 4716 (SSH2) public key files.

use base64::Engine as _;

use super::{KeyError, KeyType, PublicKey};

/// The RFC 4716 armor lines.
const RFC4716_BEGIN: &str = "---- BEGIN SSH2 PUBLIC KEY ----";
const RFC4716_END: &str = "---- END SSH2 PUBLIC KEY ----";

/// RFC 4716 §3.3: lines are at most 72 bytes; OpenSSH writes base64 in 70-column lines.
const RFC4716_LINE_WIDTH: usize = 70;

/// The longest public key line we read, in bytes (OpenSSH's `SSH_MAX_PUBKEY_BYTES` is 16384
/// for the blob; base64 and a comment make the line longer).
pub const MAX_PUBLIC_LINE_LEN: usize = 32 * 1024;

/// A public key with the comment that follows it on an OpenSSH line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyLine {
    /// The key.
    pub key: PublicKey,
    /// The comment (possibly empty, possibly with spaces).
    pub comment: String,
}

impl PublicKeyLine {
    /// Parses `type base64 [comment]`. The type name must match the blob's type.
    pub fn parse(line: &str) -> Result<Self, KeyError> {
        let (key, rest) = parse_key_prefix(line)?;
        Ok(Self { key, comment: rest.trim().to_owned() })
    }

    /// The line, without a newline: `type base64` and ` comment` if there is one.
    pub fn to_line(&self) -> String {
        let mut line = self.key.to_openssh();
        if !self.comment.is_empty() {
            line.push(' ');
            line.push_str(&self.comment);
        }
        line
    }
}

impl PublicKey {
    /// `type base64`, as in `.pub` files and `authorized_keys`, without a comment.
    pub fn to_openssh(&self) -> String {
        format!(
            "{} {}",
            self.key_type().name(),
            base64::engine::general_purpose::STANDARD.encode(self.to_blob())
        )
    }

    /// Parses `type base64`, ignoring anything after the key (the comment).
    pub fn from_openssh(line: &str) -> Result<Self, KeyError> {
        parse_key_prefix(line).map(|(key, _)| key)
    }
}

/// Parses `type base64` at the start of `text` (after blanks) and returns the key and the text
/// after it.
pub(crate) fn parse_key_prefix(text: &str) -> Result<(PublicKey, &str), KeyError> {
    if text.len() > MAX_PUBLIC_LINE_LEN {
        return Err(KeyError::InvalidFormat("line too long"));
    }
    let text = text.trim_start_matches([' ', '\t']);
    let (type_name, rest) = split_token(text);
    if type_name.is_empty() {
        return Err(KeyError::InvalidFormat("no key type"));
    }
    let key_type = KeyType::from_name(type_name)
        .ok_or_else(|| KeyError::UnsupportedType(type_name.to_owned()))?;
    let (encoded, rest) = split_token(rest.trim_start_matches([' ', '\t']));
    let blob = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| KeyError::InvalidFormat("bad base64"))?;
    // The type name is one we know, so a blob naming another type is a broken line.
    let key = PublicKey::from_blob(&blob).map_err(|e| match e {
        KeyError::UnsupportedType(_) => KeyError::InvalidFormat("key type does not match the blob"),
        other => other,
    })?;
    if key.key_type() != key_type {
        return Err(KeyError::InvalidFormat("key type does not match the blob"));
    }
    Ok((key, rest))
}

/// Splits at the first space or tab.
fn split_token(text: &str) -> (&str, &str) {
    match text.find([' ', '\t']) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    }
}

/// A public key read from an RFC 4716 file, with its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rfc4716Key {
    /// The key.
    pub key: PublicKey,
    /// Headers as (tag, value), in file order; the `Comment` header's quotes are removed.
    pub headers: Vec<(String, String)>,
}

impl Rfc4716Key {
    /// The `Comment` header's value, if any.
    pub fn comment(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(tag, _)| tag.eq_ignore_ascii_case("comment"))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `text` starts with the RFC 4716 begin line.
pub fn is_rfc4716(text: &str) -> bool {
    text.trim_start().starts_with(RFC4716_BEGIN)
}

/// Reads an RFC 4716 public key file: headers (with `\` continuation lines) then base64.
pub fn decode_rfc4716(text: &str) -> Result<Rfc4716Key, KeyError> {
    if text.len() > MAX_PUBLIC_LINE_LEN * 2 {
        return Err(KeyError::InvalidFormat("file too long"));
    }
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).skip_while(|l| l.is_empty());
    if lines.next().map(str::trim) != Some(RFC4716_BEGIN) {
        return Err(KeyError::InvalidFormat("not an RFC 4716 public key"));
    }
    let mut headers = Vec::new();
    let mut body = String::new();
    let mut continued: Option<String> = None;
    let mut ended = false;
    for line in lines.by_ref() {
        if line.trim() == RFC4716_END {
            ended = true;
            break;
        }
        if let Some(mut header) = continued.take() {
            header.push_str(line);
            finish_header(header, &mut continued, &mut headers)?;
            continue;
        }
        if body.is_empty() && line.contains(':') {
            finish_header(line.to_owned(), &mut continued, &mut headers)?;
            continue;
        }
        body.push_str(line.trim());
    }
    if !ended || continued.is_some() {
        return Err(KeyError::InvalidFormat("missing end marker"));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| KeyError::InvalidFormat("bad base64"))?;
    Ok(Rfc4716Key { key: PublicKey::from_blob(&blob)?, headers })
}

fn finish_header(
    header: String,
    continued: &mut Option<String>,
    headers: &mut Vec<(String, String)>,
) -> Result<(), KeyError> {
    if let Some(stripped) = header.strip_suffix('\\') {
        *continued = Some(stripped.to_owned());
        return Ok(());
    }
    let (tag, value) =
        header.split_once(':').ok_or(KeyError::InvalidFormat("bad RFC 4716 header"))?;
    let value = value.trim();
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    headers.push((tag.trim().to_owned(), value.to_owned()));
    Ok(())
}

/// Writes `key` as an RFC 4716 file with a `Comment` header (quoted, as OpenSSH writes it).
pub fn encode_rfc4716(key: &PublicKey, comment: &str) -> String {
    let header = format!("Comment: \"{comment}\"");
    super::armor::wrap(RFC4716_BEGIN, &[header], &key.to_blob(), RFC4716_LINE_WIDTH, RFC4716_END)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn key() -> PublicKey {
        PrivateKey::ed25519_from_seed(&[5; 32]).unwrap().public_key().clone()
    }

    /// An OpenSSH line with a spaced comment round-trips; a line whose type name disagrees
    /// with its blob is refused.
    #[test]
    fn openssh_lines_round_trip_and_type_must_match_blob() {
        let line = PublicKeyLine { key: key(), comment: "foo bar".into() };
        let text = line.to_line();
        assert!(text.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert_eq!(PublicKeyLine::parse(&text).unwrap(), line);
        let swapped = text.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(PublicKeyLine::parse(&swapped).is_err());
        assert_eq!(
            PublicKeyLine::parse("ssh-dss AAAA"),
            Err(KeyError::UnsupportedType("ssh-dss".into()))
        );
    }

    /// An RFC 4716 file round-trips, including a header continued over two lines.
    #[test]
    fn rfc4716_round_trips_with_continued_headers() {
        let text = encode_rfc4716(&key(), "256-bit ED25519, converted");
        let back = decode_rfc4716(&text).unwrap();
        assert_eq!(back.key, key());
        assert_eq!(back.comment(), Some("256-bit ED25519, converted"));
        let continued = text.replace("Comment: \"256-bit", "Subject: a\\\n b\nComment: \"256-bit");
        let back = decode_rfc4716(&continued).unwrap();
        assert_eq!(back.headers[0], ("Subject".to_owned(), "a b".to_owned()));
        assert!(decode_rfc4716(&text.replace(RFC4716_END, "")).is_err());
    }
}

//! The user authentication messages (RFC 4252 §5–§8, RFC 4256 §3), one struct each, borrowing
//! from the payload. `decode` takes a whole payload (message number first) and rejects trailing
//! bytes; `encode` appends a whole payload.
//!
//! Text fields the client sends are read as OpenSSH reads them (`sshpkt_get_cstring`): an
//! embedded NUL byte is an invalid message. Text the server sends for display (banner, prompts)
//! is kept as bytes; the client turns it into sanitized text.

use super::{MAX_NAME_LEN, MAX_PROMPTS, METHOD_PUBLICKEY_HOSTBOUND};
use crate::wire::{InvalidMessage, MessageType, NameList, Reader, Writer};

/// `SSH_MSG_USERAUTH_REQUEST` (RFC 4252 §5):
///
/// ```text
/// byte      SSH_MSG_USERAUTH_REQUEST
/// string    user name in ISO-10646 UTF-8 encoding [RFC3629]
/// string    service name in US-ASCII
/// string    method name in US-ASCII
/// ....      method specific fields
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthRequest<'a> {
    /// The user to log in as.
    pub user: &'a str,
    /// The service to start afterwards (`ssh-connection`).
    pub service: &'a str,
    /// The method and its fields.
    pub method: MethodData<'a>,
}

/// The method-specific fields of a [`UserauthRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodData<'a> {
    /// `none` (RFC 4252 §5.2): no fields.
    None,
    /// `password` (RFC 4252 §8):
    ///
    /// ```text
    /// boolean   FALSE (TRUE when changing the password)
    /// string    plaintext password in ISO-10646 UTF-8 encoding [RFC3629]
    /// string    plaintext new password (only when changing)
    /// ```
    Password {
        /// The password (the old one, when changing).
        password: &'a [u8],
        /// The new password, when the client answers a change request.
        new_password: Option<&'a [u8]>,
    },
    /// `publickey` or `publickey-hostbound-v00@openssh.com`.
    PublicKey(PublicKeyData<'a>),
    /// `keyboard-interactive` (RFC 4256 §3.1):
    ///
    /// ```text
    /// string    language tag (as defined in [RFC-3066])
    /// string    submethods (ISO-10646 UTF-8)
    /// ```
    KeyboardInteractive {
        /// The language tag (deprecated, ignored).
        language: &'a str,
        /// The submethods the client would like, comma-separated; may be empty.
        submethods: &'a str,
    },
    /// A method we do not implement; its fields are not looked at (as OpenSSH does).
    Other {
        /// The method name.
        name: &'a str,
        /// The unparsed method-specific fields.
        fields: &'a [u8],
    },
}

/// The fields of a public key request (RFC 4252 §7; OpenSSH `PROTOCOL` §2.5 adds the host key):
///
/// ```text
/// boolean   FALSE (a query) or TRUE (signed)
/// string    public key algorithm name
/// string    public key blob
/// string    server host key (publickey-hostbound-v00@openssh.com only)
/// string    signature (only when TRUE)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyData<'a> {
    /// The signature algorithm, such as `rsa-sha2-512` or `ssh-ed25519`.
    pub algorithm: &'a str,
    /// The public key blob.
    pub key_blob: &'a [u8],
    /// For the host-bound method, the server host key the client saw in the first key exchange.
    pub host_key_blob: Option<&'a [u8]>,
    /// The signature blob; `None` for a query ("would you accept this key?").
    pub signature: Option<&'a [u8]>,
}

impl<'a> UserauthRequest<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_REQUEST)?;
        let user = read_name(&mut r)?;
        let service = read_name(&mut r)?;
        let name = read_name(&mut r)?;
        let method = match name {
            "none" => MethodData::None,
            "password" => {
                let change = r.read_bool()?;
                let password = read_text(&mut r)?;
                let new_password = if change { Some(read_text(&mut r)?) } else { None };
                MethodData::Password { password, new_password }
            }
            "publickey" | METHOD_PUBLICKEY_HOSTBOUND => {
                let signed = r.read_bool()?;
                let algorithm = read_name(&mut r)?;
                let key_blob = r.read_string()?;
                let host_key_blob = if name == "publickey" { None } else { Some(r.read_string()?) };
                let signature = if signed { Some(r.read_string()?) } else { None };
                MethodData::PublicKey(PublicKeyData {
                    algorithm,
                    key_blob,
                    host_key_blob,
                    signature,
                })
            }
            "keyboard-interactive" => {
                let language = read_name(&mut r)?;
                let submethods = read_name(&mut r)?;
                MethodData::KeyboardInteractive { language, submethods }
            }
            _ => {
                return Ok(Self {
                    user,
                    service,
                    method: MethodData::Other { name, fields: r.read_rest() },
                })
            }
        };
        r.finish()?;
        Ok(Self { user, service, method })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_REQUEST.0)
            .write_string(self.user.as_bytes())
            .write_string(self.service.as_bytes())
            .write_string(self.method.name().as_bytes());
        match &self.method {
            MethodData::None => {}
            MethodData::Password { password, new_password } => {
                w.write_bool(new_password.is_some()).write_string(password);
                if let Some(new) = new_password {
                    w.write_string(new);
                }
            }
            MethodData::PublicKey(pk) => {
                w.write_bool(pk.signature.is_some())
                    .write_string(pk.algorithm.as_bytes())
                    .write_string(pk.key_blob);
                if let Some(host_key) = pk.host_key_blob {
                    w.write_string(host_key);
                }
                if let Some(signature) = pk.signature {
                    w.write_string(signature);
                }
            }
            MethodData::KeyboardInteractive { language, submethods } => {
                w.write_string(language.as_bytes()).write_string(submethods.as_bytes());
            }
            MethodData::Other { fields, .. } => {
                w.write_raw(fields);
            }
        }
    }
}

impl MethodData<'_> {
    /// The method name on the wire.
    pub fn name(&self) -> &str {
        match self {
            Self::None => "none",
            Self::Password { .. } => "password",
            Self::PublicKey(pk) if pk.host_key_blob.is_some() => METHOD_PUBLICKEY_HOSTBOUND,
            Self::PublicKey(_) => "publickey",
            Self::KeyboardInteractive { .. } => "keyboard-interactive",
            Self::Other { name, .. } => name,
        }
    }
}

/// `SSH_MSG_USERAUTH_FAILURE` (RFC 4252 §5.1):
///
/// ```text
/// byte         SSH_MSG_USERAUTH_FAILURE
/// name-list    authentications that can continue
/// boolean      partial success
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthFailure<'a> {
    /// The methods that may usefully be tried next.
    pub methods: NameList<'a>,
    /// Whether the request this answers succeeded, but more methods are needed.
    pub partial_success: bool,
}

impl<'a> UserauthFailure<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_FAILURE)?;
        let methods = r.read_name_list()?;
        let partial_success = r.read_bool()?;
        r.finish()?;
        Ok(Self { methods, partial_success })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_FAILURE.0)
            .write_string(self.methods.as_str().as_bytes())
            .write_bool(self.partial_success);
    }
}

/// `SSH_MSG_USERAUTH_SUCCESS` (RFC 4252 §5.1): `byte SSH_MSG_USERAUTH_SUCCESS` and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserauthSuccess;

impl UserauthSuccess {
    /// Decodes a whole payload.
    pub fn decode(payload: &[u8]) -> Result<Self, InvalidMessage> {
        expect_type(payload, MessageType::USERAUTH_SUCCESS)?.finish()?;
        Ok(Self)
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_SUCCESS.0);
    }
}

/// `SSH_MSG_USERAUTH_BANNER` (RFC 4252 §5.4):
///
/// ```text
/// byte      SSH_MSG_USERAUTH_BANNER
/// string    message in ISO-10646 UTF-8 encoding [RFC3629]
/// string    language tag [RFC3066]
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthBanner<'a> {
    /// The text to show the user, as sent.
    pub message: &'a [u8],
    /// The language tag (usually empty).
    pub language: &'a [u8],
}

impl<'a> UserauthBanner<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_BANNER)?;
        let message = read_text(&mut r)?;
        let language = read_text(&mut r)?;
        r.finish()?;
        Ok(Self { message, language })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_BANNER.0)
            .write_string(self.message)
            .write_string(self.language);
    }
}

/// `SSH_MSG_USERAUTH_PK_OK` (RFC 4252 §7), message number 60 after a public key query:
///
/// ```text
/// byte      SSH_MSG_USERAUTH_PK_OK
/// string    public key algorithm name from the request
/// string    public key blob from the request
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthPkOk<'a> {
    /// The algorithm, echoed from the query.
    pub algorithm: &'a str,
    /// The key blob, echoed from the query.
    pub key_blob: &'a [u8],
}

impl<'a> UserauthPkOk<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_60)?;
        let algorithm = read_name(&mut r)?;
        let key_blob = r.read_string()?;
        r.finish()?;
        Ok(Self { algorithm, key_blob })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_60.0)
            .write_string(self.algorithm.as_bytes())
            .write_string(self.key_blob);
    }
}

/// `SSH_MSG_USERAUTH_PASSWD_CHANGEREQ` (RFC 4252 §8), message number 60 after a password
/// request:
///
/// ```text
/// byte      SSH_MSG_USERAUTH_PASSWD_CHANGEREQ
/// string    prompt in ISO-10646 UTF-8 encoding [RFC3629]
/// string    language tag [RFC3066]
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthPasswdChangereq<'a> {
    /// Why the password must change, to show the user.
    pub prompt: &'a [u8],
    /// The language tag (usually empty).
    pub language: &'a [u8],
}

impl<'a> UserauthPasswdChangereq<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_60)?;
        let prompt = read_text(&mut r)?;
        let language = read_text(&mut r)?;
        r.finish()?;
        Ok(Self { prompt, language })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_60.0)
            .write_string(self.prompt)
            .write_string(self.language);
    }
}

/// `SSH_MSG_USERAUTH_INFO_REQUEST` (RFC 4256 §3.2), message number 60 during
/// keyboard-interactive:
///
/// ```text
/// byte      SSH_MSG_USERAUTH_INFO_REQUEST
/// string    name (ISO-10646 UTF-8)
/// string    instruction (ISO-10646 UTF-8)
/// string    language tag (as defined in [RFC-3066])
/// int       num-prompts
/// string    prompt[1] (ISO-10646 UTF-8)
/// boolean   echo[1]
/// ...
/// string    prompt[num-prompts] (ISO-10646 UTF-8)
/// boolean   echo[num-prompts]
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthInfoRequest<'a> {
    /// The round's title.
    pub name: &'a [u8],
    /// The round's instructions.
    pub instruction: &'a [u8],
    /// The language tag (deprecated, usually empty).
    pub language: &'a [u8],
    /// Each prompt and whether its answer may be echoed; at most [`MAX_PROMPTS`].
    pub prompts: Vec<(&'a [u8], bool)>,
}

impl<'a> UserauthInfoRequest<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_60)?;
        let name = read_text(&mut r)?;
        let instruction = read_text(&mut r)?;
        let language = read_text(&mut r)?;
        let count = read_count(&mut r)?;
        let mut prompts = Vec::new();
        for _ in 0..count {
            let prompt = read_text(&mut r)?;
            prompts.push((prompt, r.read_bool()?));
        }
        r.finish()?;
        Ok(Self { name, instruction, language, prompts })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_60.0)
            .write_string(self.name)
            .write_string(self.instruction)
            .write_string(self.language)
            .write_u32(count_u32(self.prompts.len()));
        for (prompt, echo) in &self.prompts {
            w.write_string(prompt).write_bool(*echo);
        }
    }
}

/// `SSH_MSG_USERAUTH_INFO_RESPONSE` (RFC 4256 §3.4):
///
/// ```text
/// byte      SSH_MSG_USERAUTH_INFO_RESPONSE
/// int       num-responses
/// string    response[1] (ISO-10646 UTF-8)
/// ...
/// string    response[num-responses] (ISO-10646 UTF-8)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserauthInfoResponse<'a> {
    /// The answers, in prompt order; at most [`MAX_PROMPTS`].
    pub responses: Vec<&'a [u8]>,
}

impl<'a> UserauthInfoResponse<'a> {
    /// Decodes a whole payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = expect_type(payload, MessageType::USERAUTH_INFO_RESPONSE)?;
        let count = read_count(&mut r)?;
        let mut responses = Vec::new();
        for _ in 0..count {
            responses.push(read_text(&mut r)?);
        }
        r.finish()?;
        Ok(Self { responses })
    }

    /// Appends the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::USERAUTH_INFO_RESPONSE.0)
            .write_u32(count_u32(self.responses.len()));
        for response in &self.responses {
            w.write_string(response);
        }
    }
}

/// A reader over `payload` positioned after its message number, which must be `expected`.
fn expect_type(payload: &[u8], expected: MessageType) -> Result<Reader<'_>, InvalidMessage> {
    let mut r = Reader::new(payload);
    if r.read_message_type()? != expected {
        return Err(InvalidMessage::UnexpectedMessageType);
    }
    Ok(r)
}

/// A short UTF-8 name (user, service, method, algorithm), at most [`MAX_NAME_LEN`] bytes,
/// without NUL.
fn read_name<'a>(r: &mut Reader<'a>) -> Result<&'a str, InvalidMessage> {
    let bytes = r.read_string_limited(MAX_NAME_LEN)?;
    if bytes.contains(&0) {
        return Err(InvalidMessage::InvalidValue);
    }
    std::str::from_utf8(bytes).map_err(|_| InvalidMessage::InvalidUtf8)
}

/// A text `string` (a password, a prompt, a banner) without NUL, as bytes.
fn read_text<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], InvalidMessage> {
    let bytes = r.read_string()?;
    if bytes.contains(&0) {
        return Err(InvalidMessage::InvalidValue);
    }
    Ok(bytes)
}

/// A prompt or response count, at most [`MAX_PROMPTS`].
fn read_count(r: &mut Reader<'_>) -> Result<usize, InvalidMessage> {
    usize::try_from(r.read_u32()?)
        .ok()
        .filter(|&n| n <= MAX_PROMPTS)
        .ok_or(InvalidMessage::LengthOverLimit)
}

/// A count we write; our own lists are bounded by [`MAX_PROMPTS`].
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        f(&mut Writer::new(&mut buf));
        buf
    }

    fn requests() -> Vec<Vec<u8>> {
        let methods = [
            MethodData::None,
            MethodData::Password { password: b"hunter2", new_password: None },
            MethodData::Password { password: b"old", new_password: Some(b"new") },
            MethodData::PublicKey(PublicKeyData {
                algorithm: "ssh-ed25519",
                key_blob: b"blob",
                host_key_blob: None,
                signature: None,
            }),
            MethodData::PublicKey(PublicKeyData {
                algorithm: "rsa-sha2-512",
                key_blob: b"blob",
                host_key_blob: Some(b"host"),
                signature: Some(b"sig"),
            }),
            MethodData::KeyboardInteractive { language: "", submethods: "pam" },
        ];
        methods
            .into_iter()
            .map(|method| {
                encoded(|w| {
                    UserauthRequest { user: "alice", service: "ssh-connection", method }.encode(w)
                })
            })
            .collect()
    }

    type Decoder = fn(&[u8]) -> Result<(), InvalidMessage>;

    fn server_messages() -> Vec<(Vec<u8>, Decoder)> {
        vec![
            (
                encoded(|w| {
                    UserauthFailure {
                        methods: NameList::parse(b"publickey,password").unwrap(),
                        partial_success: true,
                    }
                    .encode(w)
                }),
                |p| UserauthFailure::decode(p).map(drop),
            ),
            (encoded(|w| UserauthSuccess.encode(w)), |p| UserauthSuccess::decode(p).map(drop)),
            (encoded(|w| UserauthBanner { message: b"hello\r\n", language: b"" }.encode(w)), |p| {
                UserauthBanner::decode(p).map(drop)
            }),
            (
                encoded(|w| UserauthPkOk { algorithm: "ssh-ed25519", key_blob: b"k" }.encode(w)),
                |p| UserauthPkOk::decode(p).map(drop),
            ),
            (
                encoded(|w| {
                    UserauthPasswdChangereq { prompt: b"expired", language: b"" }.encode(w)
                }),
                |p| UserauthPasswdChangereq::decode(p).map(drop),
            ),
            (
                encoded(|w| {
                    UserauthInfoRequest {
                        name: b"n",
                        instruction: b"i",
                        language: b"",
                        prompts: vec![(b"Password: ", false), (b"Code: ", true)],
                    }
                    .encode(w)
                }),
                |p| UserauthInfoRequest::decode(p).map(drop),
            ),
            (encoded(|w| UserauthInfoResponse { responses: vec![b"a", b"bc"] }.encode(w)), |p| {
                UserauthInfoResponse::decode(p).map(drop)
            }),
        ]
    }

    /// Every request form encodes and decodes back to the same fields.
    #[test]
    fn round_trips_every_request_form() {
        for payload in requests() {
            let decoded = UserauthRequest::decode(&payload).unwrap();
            assert_eq!(encoded(|w| decoded.encode(w)), payload);
        }
    }

    /// Every server-to-client and response message decodes what it encodes, and rejects a
    /// trailing byte.
    #[test]
    fn round_trips_every_other_message_and_rejects_trailing_bytes() {
        for (payload, decode) in server_messages() {
            decode(&payload).unwrap();
            let mut long = payload.clone();
            long.push(0);
            assert_eq!(decode(&long), Err(InvalidMessage::TrailingData), "{payload:?}");
        }
    }

    /// Every proper prefix of every message fails to decode, with an error and no panic.
    #[test]
    fn rejects_every_truncation_of_every_message() {
        for payload in requests() {
            for cut in 0..payload.len() {
                assert!(UserauthRequest::decode(&payload[..cut]).is_err(), "{payload:?} at {cut}");
            }
        }
        for (payload, decode) in server_messages() {
            for cut in 0..payload.len() {
                assert!(decode(&payload[..cut]).is_err(), "{payload:?} at {cut}");
            }
        }
    }

    /// A request for a method we do not know keeps its fields unparsed, as OpenSSH ignores them.
    #[test]
    fn keeps_unknown_method_fields_unparsed() {
        let mut payload = encoded(|w| {
            w.write_u8(50)
                .write_string(b"u")
                .write_string(b"ssh-connection")
                .write_string(b"gssapi");
        });
        payload.extend_from_slice(&[1, 2, 3]);
        let request = UserauthRequest::decode(&payload).unwrap();
        assert_eq!(request.method, MethodData::Other { name: "gssapi", fields: &[1, 2, 3] });
    }

    /// A NUL inside a user name or password is refused, as OpenSSH's C-string reads refuse it.
    #[test]
    fn rejects_nul_in_text_fields() {
        for method in
            [MethodData::None, MethodData::Password { password: b"a\0b", new_password: None }]
        {
            let user = if method == MethodData::None { "a\0b" } else { "alice" };
            let payload =
                encoded(|w| UserauthRequest { user, service: "ssh-connection", method }.encode(w));
            assert_eq!(UserauthRequest::decode(&payload), Err(InvalidMessage::InvalidValue));
        }
    }

    /// A user name longer than the limit is refused before anything is copied.
    #[test]
    fn rejects_overlong_user_name() {
        let user = "u".repeat(MAX_NAME_LEN + 1);
        let payload = encoded(|w| {
            UserauthRequest { user: &user, service: "ssh-connection", method: MethodData::None }
                .encode(w)
        });
        assert_eq!(UserauthRequest::decode(&payload), Err(InvalidMessage::LengthOverLimit));
    }

    /// A prompt count over the limit is refused before any prompt is read.
    #[test]
    fn rejects_prompt_counts_over_the_limit() {
        let payload = encoded(|w| {
            w.write_u8(60).write_string(b"").write_string(b"").write_string(b"").write_u32(101);
        });
        assert_eq!(UserauthInfoRequest::decode(&payload), Err(InvalidMessage::LengthOverLimit));
        let payload = encoded(|w| {
            w.write_u8(61).write_u32(u32::MAX);
        });
        assert_eq!(UserauthInfoResponse::decode(&payload), Err(InvalidMessage::LengthOverLimit));
    }

    /// A payload of another message number is refused by each decoder.
    #[test]
    fn rejects_the_wrong_message_number() {
        assert_eq!(UserauthSuccess::decode(&[51]), Err(InvalidMessage::UnexpectedMessageType));
        assert_eq!(UserauthSuccess::decode(&[]), Err(InvalidMessage::EmptyMessage));
    }
}

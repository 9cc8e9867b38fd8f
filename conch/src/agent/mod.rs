//! An ssh-agent client (draft-miller-ssh-agent): list the agent's identities and have it sign.
//!
//! The protocol part is sans-IO: [`request_identities`] and [`sign_request`] encode requests,
//! [`Frames`] splits a byte stream into messages and [`parse_identities`] /
//! [`parse_sign_response`] read the answers. [`AgentClient`] speaks it over a blocking Unix
//! socket (`SSH_AUTH_SOCK`); the agent is local and answers at once, as OpenSSH's client
//! assumes. [`AgentSigner`] is the agent as an [`IdentitySigner`] for the client.

use std::cell::RefCell;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use twine_core::time::Scheduler;
use twine_core::Deferred;

use crate::client::IdentitySigner;
use crate::keys::{self, PublicKey, SignatureAlgorithm};
use crate::wire::{Reader, Writer};

/// `SSH_AGENT_FAILURE`.
pub const AGENT_FAILURE: u8 = 5;
/// `SSH_AGENTC_REQUEST_IDENTITIES`.
pub const REQUEST_IDENTITIES: u8 = 11;
/// `SSH_AGENT_IDENTITIES_ANSWER`.
pub const IDENTITIES_ANSWER: u8 = 12;
/// `SSH_AGENTC_SIGN_REQUEST`.
pub const SIGN_REQUEST: u8 = 13;
/// `SSH_AGENT_SIGN_RESPONSE`.
pub const SIGN_RESPONSE: u8 = 14;
/// Sign flag: `rsa-sha2-256`.
pub const RSA_SHA2_256: u32 = 2;
/// Sign flag: `rsa-sha2-512`.
pub const RSA_SHA2_512: u32 = 4;
/// The longest message accepted from an agent (OpenSSH's `AGENT_MAX_LEN`).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Why talking to the agent failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// The socket could not be used.
    Io(String),
    /// The agent refused (`SSH_AGENT_FAILURE`, or an unexpected answer).
    Refused,
    /// The answer did not parse, or was too long.
    Invalid(&'static str),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(err) => write!(f, "agent: {err}"),
            Self::Refused => f.write_str("agent refused operation"),
            Self::Invalid(what) => write!(f, "invalid agent answer: {what}"),
        }
    }
}

impl std::error::Error for AgentError {}

/// One identity the agent holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The public key blob, as the agent sent it.
    pub blob: Vec<u8>,
    /// The key, when we understand its type (certificates and others are `None`).
    pub key: Option<PublicKey>,
    /// The comment.
    pub comment: String,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    Writer::new(&mut out).write_u32(len).write_raw(payload);
    out
}

/// The framed `SSH_AGENTC_REQUEST_IDENTITIES` message.
pub fn request_identities() -> Vec<u8> {
    frame(&[REQUEST_IDENTITIES])
}

/// The framed `SSH_AGENTC_SIGN_REQUEST` for `blob` over `data` as `algorithm`.
pub fn sign_request(blob: &[u8], data: &[u8], algorithm: SignatureAlgorithm) -> Vec<u8> {
    let flags = match algorithm {
        SignatureAlgorithm::RsaSha256 => RSA_SHA2_256,
        SignatureAlgorithm::RsaSha512 => RSA_SHA2_512,
        _ => 0,
    };
    let mut payload = Vec::new();
    Writer::new(&mut payload)
        .write_u8(SIGN_REQUEST)
        .write_string(blob)
        .write_string(data)
        .write_u32(flags);
    frame(&payload)
}

/// Splits a byte stream from the agent into messages (each without its length).
#[derive(Debug, Default)]
pub struct Frames {
    buffer: Vec<u8>,
}

impl Frames {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes received.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete message, if one is in.
    ///
    /// # Errors
    ///
    /// A length past [`MAX_MESSAGE`], or an empty message.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, AgentError> {
        let Some(header) = self.buffer.get(..4) else { return Ok(None) };
        let mut len = [0u8; 4];
        len.copy_from_slice(header);
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len == 0 || len > MAX_MESSAGE {
            return Err(AgentError::Invalid("message length"));
        }
        let Some(body) = self.buffer.get(4..4 + len) else { return Ok(None) };
        let message = body.to_vec();
        self.buffer.drain(..4 + len);
        Ok(Some(message))
    }
}

/// Reads an `SSH_AGENT_IDENTITIES_ANSWER`.
///
/// # Errors
///
/// A failure answer, another message, or a malformed one.
pub fn parse_identities(message: &[u8]) -> Result<Vec<Identity>, AgentError> {
    let bad = |_| AgentError::Invalid("identities answer");
    let mut r = Reader::new(message);
    match r.read_u8().map_err(bad)? {
        IDENTITIES_ANSWER => {}
        AGENT_FAILURE => return Err(AgentError::Refused),
        _ => return Err(AgentError::Invalid("unexpected message")),
    }
    let count = r.read_u32().map_err(bad)?;
    let mut identities = Vec::new();
    for _ in 0..count.min(2048) {
        let blob = r.read_string().map_err(bad)?.to_vec();
        let comment = String::from_utf8_lossy(r.read_string().map_err(bad)?).into_owned();
        let key = PublicKey::from_blob(&blob).ok();
        identities.push(Identity { blob, key, comment });
    }
    Ok(identities)
}

/// Reads an `SSH_AGENT_SIGN_RESPONSE`: the signature blob (`string algorithm || string sig`).
///
/// # Errors
///
/// A failure answer, another message, or a malformed one.
pub fn parse_sign_response(message: &[u8]) -> Result<Vec<u8>, AgentError> {
    let bad = |_| AgentError::Invalid("sign response");
    let mut r = Reader::new(message);
    match r.read_u8().map_err(bad)? {
        SIGN_RESPONSE => Ok(r.read_string().map_err(bad)?.to_vec()),
        AGENT_FAILURE => Err(AgentError::Refused),
        _ => Err(AgentError::Invalid("unexpected message")),
    }
}

/// A blocking connection to an agent.
#[derive(Debug)]
pub struct AgentClient {
    stream: UnixStream,
    frames: Frames,
}

impl AgentClient {
    /// Connects to the agent's socket.
    ///
    /// # Errors
    ///
    /// The socket cannot be connected.
    pub fn connect(path: &Path) -> Result<Self, AgentError> {
        let stream = UnixStream::connect(path).map_err(|err| AgentError::Io(err.to_string()))?;
        let timeout = Some(Duration::from_secs(30));
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        Ok(Self { stream, frames: Frames::new() })
    }

    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, AgentError> {
        let io = |err: std::io::Error| AgentError::Io(err.to_string());
        self.stream.write_all(request).map_err(io)?;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(message) = self.frames.next_message()? {
                return Ok(message);
            }
            let n = self.stream.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Err(AgentError::Io("agent closed the connection".into()));
            }
            self.frames.push(buf.get(..n).unwrap_or_default());
        }
    }

    /// The agent's identities.
    ///
    /// # Errors
    ///
    /// As [`parse_identities`], or the socket failed.
    pub fn identities(&mut self) -> Result<Vec<Identity>, AgentError> {
        let answer = self.call(&request_identities())?;
        parse_identities(&answer)
    }

    /// Has the agent sign `data` with the key whose blob is `blob`.
    ///
    /// # Errors
    ///
    /// As [`parse_sign_response`], or the socket failed.
    pub fn sign(
        &mut self,
        blob: &[u8],
        data: &[u8],
        algorithm: SignatureAlgorithm,
    ) -> Result<Vec<u8>, AgentError> {
        let answer = self.call(&sign_request(blob, data, algorithm))?;
        parse_sign_response(&answer)
    }
}

/// The agent at a socket path as an [`IdentitySigner`]: its keys are offered before key files,
/// as OpenSSH does. An agent that cannot be reached offers nothing.
#[derive(Clone, Debug)]
pub struct AgentSigner {
    path: PathBuf,
    only: Option<Vec<PathBuf>>,
    client: Rc<RefCell<Option<AgentClient>>>,
}

impl AgentSigner {
    /// The agent listening at `path` (`SSH_AUTH_SOCK`).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self { path: path.as_ref().to_path_buf(), only: None, client: Rc::default() }
    }

    /// `IdentitiesOnly`: offer only the agent's keys whose public halves are in these identity
    /// files (private or public key files, or their `.pub` files).
    #[must_use]
    pub fn only(mut self, files: Vec<PathBuf>) -> Self {
        self.only = Some(files);
        self
    }

    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut AgentClient) -> Result<T, AgentError>,
    ) -> Result<T, AgentError> {
        let mut slot = self.client.borrow_mut();
        if slot.is_none() {
            *slot = Some(AgentClient::connect(&self.path)?);
        }
        let client = slot.as_mut().ok_or(AgentError::Refused)?;
        let result = f(client);
        if matches!(result, Err(AgentError::Io(_))) {
            *slot = None;
        }
        result
    }

    fn allowed(&self, key: &PublicKey) -> bool {
        let Some(files) = &self.only else { return true };
        files.iter().any(|file| {
            let mut pub_path = file.as_os_str().to_owned();
            pub_path.push(".pub");
            let from_pub = std::fs::read(&pub_path)
                .ok()
                .and_then(|text| keys::load_public_key(&text).ok())
                .map(|line| line.key);
            let contents = std::fs::read(file).ok();
            let from_file = contents.as_deref().and_then(|text| {
                keys::public_key_from_private(text)
                    .ok()
                    .or_else(|| keys::load_public_key(text).ok().map(|line| line.key))
            });
            from_pub.as_ref() == Some(key) || from_file.as_ref() == Some(key)
        })
    }
}

impl IdentitySigner for AgentSigner {
    fn public_keys(&self, scheduler: &Rc<dyn Scheduler>) -> Deferred<Vec<PublicKey>> {
        let keys = match self.with_client(AgentClient::identities) {
            Ok(identities) => {
                log::debug!("the agent holds {} identities", identities.len());
                identities
                    .into_iter()
                    .filter_map(|identity| identity.key)
                    .filter(|key| self.allowed(key))
                    .collect()
            }
            Err(err) => {
                log::debug!("{err}");
                Vec::new()
            }
        };
        Deferred::succeed(Rc::clone(scheduler), keys)
    }

    fn sign(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Deferred<Option<Vec<u8>>> {
        let blob = key.to_blob();
        let signature = match self.with_client(|client| client.sign(&blob, data, algorithm)) {
            Ok(signature) => Some(signature),
            Err(err) => {
                log::debug!("agent signature failed: {err}");
                None
            }
        };
        Deferred::succeed(Rc::clone(scheduler), signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sign request carries the blob, the data and the RSA flag for the SHA-2 variant asked.
    #[test]
    fn a_sign_request_carries_the_rsa_flag_for_sha2_512() {
        let framed = sign_request(b"blob", b"data", SignatureAlgorithm::RsaSha512);
        let mut frames = Frames::new();
        frames.push(&framed);
        let message = frames.next_message().unwrap().unwrap();
        let mut r = Reader::new(&message);
        assert_eq!(r.read_u8().unwrap(), SIGN_REQUEST);
        assert_eq!(r.read_string().unwrap(), b"blob");
        assert_eq!(r.read_string().unwrap(), b"data");
        assert_eq!(r.read_u32().unwrap(), RSA_SHA2_512);
        assert!(r.is_empty());
    }

    /// Messages split across reads come out whole; a zero or huge length is an error.
    #[test]
    fn frames_reassemble_split_messages_and_refuse_bad_lengths() {
        let mut frames = Frames::new();
        frames.push(&[0, 0, 0, 2, IDENTITIES_ANSWER]);
        assert_eq!(frames.next_message().unwrap(), None);
        frames.push(&[0]);
        assert_eq!(frames.next_message().unwrap(), Some(vec![IDENTITIES_ANSWER, 0]));
        frames.push(&[0, 0, 0, 0]);
        assert!(frames.next_message().is_err());
        let mut huge = Frames::new();
        huge.push(&[0, 0x10, 0, 0]);
        assert!(huge.next_message().is_err());
    }

    /// An identities answer lists blobs and comments; a failure answer is a refusal.
    #[test]
    fn identities_answers_parse_and_failures_are_refusals() {
        let mut message = vec![IDENTITIES_ANSWER];
        Writer::new(&mut message).write_u32(1).write_string(b"not a key").write_string(b"c");
        let identities = parse_identities(&message).unwrap();
        assert_eq!(identities.len(), 1);
        assert_eq!(identities[0].comment, "c");
        assert!(identities[0].key.is_none());
        assert_eq!(parse_identities(&[AGENT_FAILURE]), Err(AgentError::Refused));
        assert_eq!(parse_sign_response(&[AGENT_FAILURE]), Err(AgentError::Refused));
    }
}

//! User authentication (RFC 4252), as two sans-IO state machines: [`Server`] and [`Client`].
//!
//! The transport hands each side the decrypted payloads of message numbers 50–79 (and, before
//! authentication succeeds, anything of 80 and above) and sends the payloads each side produces.
//! Neither side touches a socket, reads a clock or waits for an answer: every slow decision
//! (is this password right? may this key log in? sign this with the agent) leaves as an event
//! and comes back later as a command, so a backend that answers with a `Deferred` sits on top in
//! a few lines.
//!
//! Methods: `none`, `password` with change requests (RFC 4252 §8), `publickey` with the query
//! step and the signed step (§7; `rsa-sha2-256`/`rsa-sha2-512` by RFC 8332, chosen from the
//! server's `server-sig-algs` of RFC 8308), OpenSSH's `publickey-hostbound-v00@openssh.com`, and
//! `keyboard-interactive` (RFC 4256).
//!
//! # Call order
//!
//! After every input (`handle_payload`, `handle_timeout`, a command), drain the outputs:
//! `poll_payload` until it returns `false`, then `poll_timeout`, then `poll_event` until `None`.
//! An `Err` from any input ends the connection: send `SSH_MSG_DISCONNECT` with
//! [`Error::disconnect_reason`](crate::Error::disconnect_reason) (if any) and close, except
//! [`LocalMisuse`](crate::error::LocalMisuse) errors, which change nothing.
//!
//! # Backends
//!
//! A backend is whatever turns an [`Attempt`] into a [`Decision`], now or later. With a
//! `Deferred`, the server adapter's event loop is:
//!
//! ```text
//! ServerEvent::AuthRequested { id, user, attempt, .. } =>
//!     backend.decide(&user, attempt)             // -> Deferred<Decision<R>>, maybe on a thread
//!         .add_callback(move |decision| {
//!             conn.userauth.auth_decided(reactor.now(), id, decision)?;
//!             conn.drive()                        // poll_payload, poll_timeout, poll_event
//!         })
//! ```
//!
//! The server takes up no other request while one is being decided, so a slow backend (PAM,
//! crypt) never sees two questions from one connection at once.
//!
//! # Example
//!
//! A client and a server back to back, with a backend that knows one password, in virtual time:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use twine_conch::userauth::{
//!     Attempt, Client, ClientConfig, ClientEvent, Decision, PasswordAnswer, Server,
//!     ServerConfig, ServerEvent,
//! };
//!
//! let (session_id, host_key) = (b"exchange hash", b"host key blob");
//! let config = Arc::new(ServerConfig::new([0x5a; 32]));
//! let mut server: Server<&str> = Server::new(config, session_id, host_key)?;
//! let mut client = Client::new(Arc::new(ClientConfig::new()), "alice", session_id, host_key);
//! let (mut now, mut buf) = (Instant::now(), Vec::new());
//! for _ in 0..20 {
//!     while client.poll_payload(&mut buf) {
//!         let _ = server.handle_payload(now, &buf)?;
//!         buf.clear();
//!     }
//!     while server.poll_payload(&mut buf) {
//!         let _ = client.handle_payload(&buf)?;
//!         buf.clear();
//!     }
//!     while let Some(event) = server.poll_event() {
//!         if let ServerEvent::AuthRequested { id, attempt, .. } = event {
//!             let decision = match attempt {
//!                 Attempt::Password { password, .. } if password.matches(b"hunter2") => {
//!                     Decision::Accept("uid 1000")
//!                 }
//!                 _ => Decision::Reject,
//!             };
//!             server.auth_decided(now, id, decision)?;
//!         }
//!     }
//!     while let Some(event) = client.poll_event() {
//!         if let ClientEvent::PasswordRequested { .. } = event {
//!             let answer = PasswordAnswer::Password("hunter2".into());
//!             client.password_ready(Some(answer))?;
//!         }
//!     }
//!     if let Some(at) = server.poll_timeout() {
//!         now = at; // the failure delay passes
//!         server.handle_timeout(now)?;
//!     }
//! }
//! assert!(client.is_authenticated() && server.is_authenticated());
//! # Ok::<(), twine_conch::Error>(())
//! ```

mod client;
pub mod msgs;
mod server;

#[cfg(test)]
mod tests;

pub use client::{Client, ClientConfig, ClientEvent, PasswordAnswer};
pub use server::{Attempt, Decision, FailureDelay, RequestId, Server, ServerConfig, ServerEvent};

use std::collections::VecDeque;
use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::wire::Writer;

/// The longest user name, service name, method name, algorithm name, language tag or
/// submethod list we accept from a peer, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// The longest password the server passes on for checking, as OpenSSH's `MAX_PASSWORD_LEN`;
/// longer ones fail without being looked at.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The most prompts in one keyboard-interactive round (OpenSSH refuses more than 100 replies).
pub const MAX_PROMPTS: usize = 100;

/// The most `USERAUTH_REQUEST`s one connection may send, counted whether or not they fail
/// (OpenSSH's limit, which bounds public key queries that `MaxAuthTries` does not count).
pub const MAX_ATTEMPTS: u32 = 1024;

/// The most payloads the server holds while it waits for a decision or a failure delay.
pub const MAX_QUEUED_PAYLOADS: usize = 32;

/// The most bytes of payload the server holds while it waits for a decision or a failure delay.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// The only service a client may ask to start after authentication.
pub const SERVICE_CONNECTION: &str = "ssh-connection";

/// The method name of OpenSSH's host-bound public key authentication (OpenSSH `PROTOCOL` §2.5).
pub const METHOD_PUBLICKEY_HOSTBOUND: &str = "publickey-hostbound-v00@openssh.com";

/// The `SSH_MSG_EXT_INFO` extension by which a server announces host-bound public key
/// authentication; its value is `"0"`.
pub const EXTENSION_PUBLICKEY_HOSTBOUND: &str = "publickey-hostbound@openssh.com";

/// The `SSH_MSG_EXT_INFO` extension listing the signature algorithms a server accepts for
/// public key authentication (RFC 8308 §3.1).
pub const EXTENSION_SERVER_SIG_ALGS: &str = "server-sig-algs";

/// An authentication method, by its RFC 4252 name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `none`: no credentials; servers for embedded applications may accept it.
    None,
    /// `password` (RFC 4252 §8).
    Password,
    /// `publickey` (RFC 4252 §7), including its host-bound variant.
    PublicKey,
    /// `keyboard-interactive` (RFC 4256).
    KeyboardInteractive,
}

impl Method {
    /// The method's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Password => "password",
            Self::PublicKey => "publickey",
            Self::KeyboardInteractive => "keyboard-interactive",
        }
    }

    /// The method with this wire name (the host-bound public key name included).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "password" => Some(Self::Password),
            "publickey" | METHOD_PUBLICKEY_HOSTBOUND => Some(Self::PublicKey),
            "keyboard-interactive" => Some(Self::KeyboardInteractive),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A password or a keyboard-interactive response: zeroized on drop, printed only as a length.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Wraps the bytes of a password.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The password as text, if it is UTF-8 (RFC 4252 says it should be).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Whether the password equals `expected`, compared in constant time (the length is not
    /// hidden).
    pub fn matches(&self, expected: &[u8]) -> bool {
        self.0.as_slice().ct_eq(expected).into()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes())
    }
}

impl From<String> for Password {
    fn from(text: String) -> Self {
        Self::new(text.into_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password({} bytes)", self.0.len())
    }
}

/// A keyboard-interactive round: what the server shows and asks (RFC 4256 §3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InfoRequest {
    /// A title for the round; may be empty.
    pub name: String,
    /// Instructions shown before the prompts; may be empty.
    pub instruction: String,
    /// The questions, in order; may be empty (the client still answers, with no responses).
    pub prompts: Vec<Prompt>,
}

/// One keyboard-interactive question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The question, such as `Password: `.
    pub text: String,
    /// Whether the answer may be shown as it is typed.
    pub echo: bool,
}

/// What became of a payload handed to [`Server::handle_payload`] or [`Client::handle_payload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Disposition {
    /// The payload was taken (acted on, queued, or ignored as RFC 4252 §5.1 asks).
    Handled,
    /// The message number is one this layer does not know: the transport must answer with
    /// `SSH_MSG_UNIMPLEMENTED` and the packet's sequence number (RFC 4253 §11.4).
    Unrecognized,
}

/// Payloads waiting to be sent, oldest first.
#[derive(Debug, Default)]
struct Outbox(VecDeque<Vec<u8>>);

impl Outbox {
    /// Queues the payload `f` writes.
    fn push(&mut self, f: impl FnOnce(&mut Writer<'_>)) {
        self.0.push_back(encode(f));
    }

    /// Queues a payload written earlier.
    fn push_payload(&mut self, payload: Vec<u8>) {
        self.0.push_back(payload);
    }

    /// Appends the oldest payload to `buf`; `false` when there is none.
    fn pop_into(&mut self, buf: &mut Vec<u8>) -> bool {
        let Some(payload) = self.0.pop_front() else {
            return false;
        };
        buf.extend_from_slice(&payload);
        true
    }
}

/// Whether `error` ends the connection: every error except the caller's misuse.
fn ends_connection(error: &Error) -> bool {
    !matches!(error, Error::LocalMisuse(_))
}

/// A payload written by `f`.
pub(crate) fn encode(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut payload = Vec::new();
    f(&mut Writer::new(&mut payload));
    payload
}

/// The data a public key signature covers (RFC 4252 §7, OpenSSH `PROTOCOL` §2.5 for the
/// host-bound variant):
///
/// ```text
/// string    session identifier
/// byte      SSH_MSG_USERAUTH_REQUEST
/// string    user name
/// string    service name
/// string    "publickey" (or "publickey-hostbound-v00@openssh.com")
/// boolean   TRUE
/// string    public key algorithm name
/// string    public key to be used for authentication
/// string    server host key (host-bound only)
/// ```
pub(crate) fn signed_data(
    session_id: &[u8],
    user: &str,
    service: &str,
    algorithm: &str,
    key_blob: &[u8],
    host_key_blob: Option<&[u8]>,
) -> Vec<u8> {
    let method = if host_key_blob.is_some() { METHOD_PUBLICKEY_HOSTBOUND } else { "publickey" };
    let mut data = Vec::new();
    let mut w = Writer::new(&mut data);
    w.write_string(session_id)
        .write_u8(crate::wire::MessageType::USERAUTH_REQUEST.0)
        .write_string(user.as_bytes())
        .write_string(service.as_bytes())
        .write_string(method.as_bytes())
        .write_bool(true)
        .write_string(algorithm.as_bytes())
        .write_string(key_blob);
    if let Some(host_key) = host_key_blob {
        w.write_string(host_key);
    }
    data
}

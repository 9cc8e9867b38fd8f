//! The monitor⇄worker wire format, sans-IO.
//!
//! ```text
//!  uint32  length      of everything after this field, 6 ..= the direction's maximum
//!  byte    version     PROTOCOL_VERSION
//!  byte    kind        a Request (1..) or a Reply (128..)
//!  uint32  id          chosen by the worker, echoed in the reply
//!  ...     fields      SSH encodings (RFC 4251 §5), nothing after the last field
//! ```
//!
//! Lengths are checked before anything is buffered past the header, every string has its own
//! limit, and a request carries at most [`MAX_PAM_RESPONSES`] items, so a hostile worker can
//! make the monitor allocate at most [`MAX_REQUEST_LEN`] bytes at a time.

use std::fmt;

use crate::keys::authorized_keys::PermittedHostPort;
use crate::server::{ConnectionId, Restrictions};
use crate::userauth::{InfoRequest, Prompt};
use crate::wire::{InvalidMessage, Reader, Writer};

/// The version byte every frame carries; a frame with another is malformed.
pub const PROTOCOL_VERSION: u8 = 1;

/// The longest request frame (after the length field) the monitor accepts from a worker.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// The longest reply frame a worker accepts from the monitor: an `authorized_keys` file is the
/// largest thing a reply carries.
pub const MAX_REPLY_LEN: usize = 1024 * 1024 + 1024;

/// The longest `authorized_keys` file the monitor hands a worker.
pub const MAX_AUTHORIZED_KEYS_LEN: usize = 1024 * 1024;

/// The longest user name, as the kernel's and OpenSSH's limits put it.
pub const MAX_USER_LEN: usize = 256;

/// The most responses one keyboard-interactive round may carry.
pub const MAX_PAM_RESPONSES: usize = 32;

/// The longest text of a PAM prompt or round name the monitor relays (longer is cut).
pub const MAX_PAM_PROMPT_LEN: usize = MAX_SHORT_STRING;

/// The longest instruction of a PAM round the monitor relays (what the modules said; longer
/// is cut).
pub const MAX_PAM_TEXT_LEN: usize = 8 * 1024;

const MAX_SHORT_STRING: usize = 1024;
const MAX_COMMAND_LEN: usize = 8 * 1024;
const MAX_SIGN_DATA: usize = 64;
const MAX_SIGNATURE_LEN: usize = 4096;
const MAX_KEY_BLOB_LEN: usize = 4096;
const MAX_PATH_LEN: usize = 4096;
const HEADER_LEN: usize = 6;
const MAX_PASSWORD_LEN: usize = 1024;
const MAX_PLAN_ITEMS: usize = 512;
const MAX_MODES_LEN: usize = 256;
/// A certificate is a key, a CA key, a signature and options: larger than a key blob.
const MAX_CERTIFICATE_LEN: usize = 16 * 1024;

/// A pty for a planned session: its size, and terminal modes encoded by the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtyPlan {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub columns: u16,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// The terminal modes, in the worker's encoding (opaque to the codec).
    pub modes: Option<Vec<u8>>,
}

/// Everything a session's process needs, decided by the worker (as `SpawnPlan`): the monitor
/// starts it as the connection's verified user, whatever the worker claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPlan {
    /// The program.
    pub program: Vec<u8>,
    /// `argv[0]`.
    pub arg0: Vec<u8>,
    /// The arguments after `argv[0]`.
    pub args: Vec<Vec<u8>>,
    /// The whole environment.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// The working directory.
    pub cwd: Vec<u8>,
    /// The pty, when the session has one.
    pub pty: Option<PtyPlan>,
    /// Whether `~/.ssh/rc` may run.
    pub user_rc: bool,
}

/// A worker's request to the monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A new connection was accepted; ids only ever grow.
    ConnectionOpened {
        /// The new connection.
        connection: ConnectionId,
    },
    /// Sign a key exchange's exchange hash with the host key for `algorithm` (an SSH name).
    SignExchangeHash {
        /// The connection in key exchange.
        connection: ConnectionId,
        /// The signature algorithm's SSH name (`ssh-ed25519`).
        algorithm: String,
        /// The exchange hash: 20, 32, 48 or 64 bytes, never arbitrary data.
        data: Vec<u8>,
    },
    /// Look up an account by name.
    LookupUser {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user name the client sent.
        user: String,
    },
    /// Read the `authorized_keys` of the user looked up on this connection.
    ReadAuthorizedKeys {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
        /// The public key offered (its blob), when an `AuthorizedKeysCommand` is to add the
        /// lines it prints for that key before the files'.
        key: Option<Vec<u8>>,
    },
    /// Start a PAM conversation for the user looked up on this connection.
    PamStart {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
    },
    /// Answers to the prompts of a PAM conversation.
    PamRespond {
        /// The connection authenticating.
        connection: ConnectionId,
        /// One answer per prompt.
        responses: Vec<String>,
    },
    /// Check a `publickey` authentication: the monitor rebuilds the signed data from the
    /// session id it signed, checks the key is in the user's `authorized_keys` and verifies the
    /// signature. Success makes the user verified on this connection.
    AuthenticatePublicKey {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
        /// The public key algorithm the client named.
        algorithm: String,
        /// The public key blob the client sent.
        key_blob: Vec<u8>,
        /// Whether the client used `publickey-hostbound-v00@openssh.com`.
        host_bound: bool,
        /// The signature blob the client sent.
        signature: Vec<u8>,
    },
    /// The connection's user is authenticated: accepted only after the monitor verified that
    /// user itself.
    ConnectionAuthenticated {
        /// The connection.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
        /// The method that succeeded (`publickey`).
        method: String,
    },
    /// The connection ended.
    ConnectionClosed {
        /// The connection.
        connection: ConnectionId,
    },
    /// Check a password for the user looked up on this connection (`/etc/shadow`). Success
    /// makes the user verified on this connection.
    AuthenticatePassword {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
        /// The password the client sent.
        password: Vec<u8>,
    },
    /// Where a connection just opened comes from: the monitor refuses (`Failed`) a source
    /// under a per-source penalty, and penalises the sources of a worker that dies.
    ConnectionPeer {
        /// The connection, just opened.
        connection: ConnectionId,
        /// The client's address and port.
        address: std::net::SocketAddr,
    },
    /// The names of the groups of the user looked up on this connection (`AllowGroups`,
    /// `Match Group`).
    LookupGroups {
        /// The connection.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
    },
    /// Resolve a host name for a `direct-tcpip` forwarding of this authenticated connection
    /// (the worker's empty root has no resolver configuration).
    ResolveHost {
        /// The authenticated connection.
        connection: ConnectionId,
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
    /// Start a session's process as the authenticated user of this connection, as `plan`
    /// says; the reply carries a control socket, then the pty controller or the three pipes.
    SpawnSession {
        /// The authenticated connection.
        connection: ConnectionId,
        /// What to run, and how.
        plan: SessionPlan,
    },
    /// PAM's account check (`pam_acct_mgmt`) for the user looked up on this connection, let
    /// in some other way (a public key) with `UsePAM yes`: an expired or locked account is
    /// refused (`Failed`).
    PamAccount {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
    },
    /// Whether PAM has answered the connection's last PAM request (`PamStart`, `PamRespond`,
    /// `AuthenticatePassword` with PAM, `PamAccount`), which the monitor answered
    /// [`Reply::PamPending`]: the answer, or `PamPending` again.
    PamPoll {
        /// The connection authenticating.
        connection: ConnectionId,
    },
    /// The address of ours a connection just opened reached (`Match LocalAddress`,
    /// `LocalPort`), told once before authentication.
    ConnectionLocalAddress {
        /// The connection, just opened.
        connection: ConnectionId,
        /// Our address and port.
        address: std::net::SocketAddr,
    },
    /// Check an OpenSSH user certificate offered for the user looked up on this connection:
    /// the monitor checks it as conchd does without privilege separation (trusted CA or
    /// `cert-authority` line, principals, validity, critical options, `RevokedKeys`) and
    /// answers [`Reply::Authorized`] with the login's restrictions. With a signature, it also
    /// verifies the signature over the session id it signed, with the certificate's key:
    /// success makes the user verified on this connection.
    AuthenticateCertificate {
        /// The connection authenticating.
        connection: ConnectionId,
        /// The user, as looked up before.
        user: String,
        /// The certificate algorithm the client named (`ssh-ed25519-cert-v01@openssh.com`).
        algorithm: String,
        /// The certificate blob the client sent.
        certificate: Vec<u8>,
        /// Whether the client used `publickey-hostbound-v00@openssh.com`.
        host_bound: bool,
        /// The signature blob the client sent; `None` for a query (no signature yet).
        signature: Option<Vec<u8>>,
    },
    /// Sign this connection's `hostkeys-prove-00@openssh.com` proof for one of the host keys:
    /// the monitor builds the signed data from the session id it knows and the key.
    ProveHostKey {
        /// The authenticated connection.
        connection: ConnectionId,
        /// The signature algorithm's SSH name.
        algorithm: String,
        /// The host key's public blob.
        key_blob: Vec<u8>,
    },
    /// Make the forwarded agent's socket for the authenticated user of this connection (a
    /// private directory in `/tmp` and a socket in it, both the user's, as sshd does); the
    /// reply ([`Reply::Listening`]) carries the listening socket. Removed when the
    /// connection closes.
    ListenAgent {
        /// The authenticated connection.
        connection: ConnectionId,
    },
    /// Bind and listen on a privileged TCP port (below 1024) for a remote forward of this
    /// connection, authenticated as root; the reply ([`Reply::Listening`]) carries the socket.
    ListenPrivileged {
        /// The authenticated connection.
        connection: ConnectionId,
        /// Where to listen.
        address: std::net::SocketAddr,
    },
    /// Listen on a Unix-domain socket at `path` for a `streamlocal-forward@openssh.com` of
    /// this authenticated connection (the worker's empty root has no such path); the socket
    /// is the user's, and removed when the connection closes. The reply
    /// ([`Reply::Listening`]) carries it.
    ListenStreamlocal {
        /// The authenticated connection.
        connection: ConnectionId,
        /// The socket's path, as the client sent it.
        path: Vec<u8>,
    },
    /// Connect to the Unix-domain socket at `path` for a `direct-streamlocal@openssh.com`
    /// channel of this authenticated connection; the reply ([`Reply::Listening`], without a
    /// path) carries the connected socket.
    ConnectStreamlocal {
        /// The authenticated connection.
        connection: ConnectionId,
        /// The socket's path, as the client sent it.
        path: Vec<u8>,
    },
}

impl Request {
    /// The connection the request is about.
    pub fn connection(&self) -> ConnectionId {
        match self {
            Self::ConnectionOpened { connection }
            | Self::SignExchangeHash { connection, .. }
            | Self::LookupUser { connection, .. }
            | Self::ReadAuthorizedKeys { connection, .. }
            | Self::PamStart { connection, .. }
            | Self::PamRespond { connection, .. }
            | Self::AuthenticatePublicKey { connection, .. }
            | Self::ConnectionAuthenticated { connection, .. }
            | Self::AuthenticatePassword { connection, .. }
            | Self::SpawnSession { connection, .. }
            | Self::ConnectionPeer { connection, .. }
            | Self::ResolveHost { connection, .. }
            | Self::LookupGroups { connection, .. }
            | Self::PamAccount { connection, .. }
            | Self::PamPoll { connection }
            | Self::ConnectionLocalAddress { connection, .. }
            | Self::AuthenticateCertificate { connection, .. }
            | Self::ProveHostKey { connection, .. }
            | Self::ListenAgent { connection }
            | Self::ListenPrivileged { connection, .. }
            | Self::ListenStreamlocal { connection, .. }
            | Self::ConnectStreamlocal { connection, .. }
            | Self::ConnectionClosed { connection } => *connection,
        }
    }

    /// The request's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConnectionOpened { .. } => "ConnectionOpened",
            Self::SignExchangeHash { .. } => "SignExchangeHash",
            Self::LookupUser { .. } => "LookupUser",
            Self::ReadAuthorizedKeys { .. } => "ReadAuthorizedKeys",
            Self::PamStart { .. } => "PamStart",
            Self::PamRespond { .. } => "PamRespond",
            Self::AuthenticatePublicKey { .. } => "AuthenticatePublicKey",
            Self::ConnectionAuthenticated { .. } => "ConnectionAuthenticated",
            Self::ConnectionClosed { .. } => "ConnectionClosed",
            Self::AuthenticatePassword { .. } => "AuthenticatePassword",
            Self::SpawnSession { .. } => "SpawnSession",
            Self::ConnectionPeer { .. } => "ConnectionPeer",
            Self::ResolveHost { .. } => "ResolveHost",
            Self::LookupGroups { .. } => "LookupGroups",
            Self::PamAccount { .. } => "PamAccount",
            Self::PamPoll { .. } => "PamPoll",
            Self::ConnectionLocalAddress { .. } => "ConnectionLocalAddress",
            Self::AuthenticateCertificate { .. } => "AuthenticateCertificate",
            Self::ProveHostKey { .. } => "ProveHostKey",
            Self::ListenAgent { .. } => "ListenAgent",
            Self::ListenPrivileged { .. } => "ListenPrivileged",
            Self::ListenStreamlocal { .. } => "ListenStreamlocal",
            Self::ConnectStreamlocal { .. } => "ConnectStreamlocal",
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Self::ConnectionOpened { .. } => 1,
            Self::SignExchangeHash { .. } => 2,
            Self::LookupUser { .. } => 3,
            Self::ReadAuthorizedKeys { .. } => 4,
            Self::PamStart { .. } => 5,
            Self::PamRespond { .. } => 6,
            Self::ConnectionAuthenticated { .. } => 7,
            Self::ConnectionClosed { .. } => 9,
            Self::AuthenticatePublicKey { .. } => 10,
            Self::AuthenticatePassword { .. } => 11,
            Self::SpawnSession { .. } => 12,
            Self::ConnectionPeer { .. } => 13,
            Self::ResolveHost { .. } => 14,
            Self::LookupGroups { .. } => 15,
            Self::PamAccount { .. } => 16,
            Self::PamPoll { .. } => 17,
            // Numbered apart from the others' additions (40..): kinds must never collide.
            Self::ConnectionLocalAddress { .. } => 40,
            Self::AuthenticateCertificate { .. } => 41,
            Self::ProveHostKey { .. } => 42,
            Self::ListenAgent { .. } => 18,
            Self::ListenPrivileged { .. } => 19,
            Self::ListenStreamlocal { .. } => 20,
            Self::ConnectStreamlocal { .. } => 21,
        }
    }

    /// The whole frame for this request, length field included.
    pub fn encode(&self, id: u32) -> Vec<u8> {
        frame(self.kind(), id, |w| match self {
            Self::ConnectionOpened { connection }
            | Self::ConnectionClosed { connection }
            | Self::PamPoll { connection }
            | Self::ListenAgent { connection } => {
                w.write_u64(connection.0);
            }
            Self::ListenPrivileged { connection, address } => {
                w.write_u64(connection.0).write_string(address.to_string().as_bytes());
            }
            Self::ListenStreamlocal { connection, path }
            | Self::ConnectStreamlocal { connection, path } => {
                w.write_u64(connection.0).write_string(path);
            }
            Self::SignExchangeHash { connection, algorithm, data } => {
                w.write_u64(connection.0).write_string(algorithm.as_bytes()).write_string(data);
            }
            Self::ReadAuthorizedKeys { connection, user, key } => {
                w.write_u64(connection.0).write_string(user.as_bytes());
                // Empty: no key (a key blob is never empty).
                w.write_string(key.as_deref().unwrap_or_default());
            }
            Self::LookupUser { connection, user }
            | Self::PamStart { connection, user }
            | Self::LookupGroups { connection, user }
            | Self::PamAccount { connection, user } => {
                w.write_u64(connection.0).write_string(user.as_bytes());
            }
            Self::PamRespond { connection, responses } => {
                w.write_u64(connection.0);
                w.write_u32(u32::try_from(responses.len()).unwrap_or(u32::MAX));
                for response in responses {
                    w.write_string(response.as_bytes());
                }
            }
            Self::AuthenticatePublicKey {
                connection,
                user,
                algorithm,
                key_blob,
                host_bound,
                signature,
            } => {
                w.write_u64(connection.0)
                    .write_string(user.as_bytes())
                    .write_string(algorithm.as_bytes())
                    .write_string(key_blob)
                    .write_bool(*host_bound)
                    .write_string(signature);
            }
            Self::ConnectionAuthenticated { connection, user, method } => {
                w.write_u64(connection.0)
                    .write_string(user.as_bytes())
                    .write_string(method.as_bytes());
            }
            Self::AuthenticatePassword { connection, user, password } => {
                w.write_u64(connection.0).write_string(user.as_bytes()).write_string(password);
            }
            Self::SpawnSession { connection, plan } => {
                w.write_u64(connection.0);
                encode_plan(w, plan);
            }
            Self::ResolveHost { connection, host, port } => {
                w.write_u64(connection.0).write_string(host.as_bytes()).write_u32((*port).into());
            }
            Self::ConnectionPeer { connection, address } => {
                w.write_u64(connection.0).write_string(address.to_string().as_bytes());
            }
            Self::ConnectionLocalAddress { connection, address } => {
                w.write_u64(connection.0).write_string(address.to_string().as_bytes());
            }
            Self::AuthenticateCertificate {
                connection,
                user,
                algorithm,
                certificate,
                host_bound,
                signature,
            } => {
                w.write_u64(connection.0)
                    .write_string(user.as_bytes())
                    .write_string(algorithm.as_bytes())
                    .write_string(certificate)
                    .write_bool(*host_bound);
                match signature {
                    None => w.write_bool(false),
                    Some(signature) => w.write_bool(true).write_string(signature),
                };
            }
            Self::ProveHostKey { connection, algorithm, key_blob } => {
                w.write_u64(connection.0).write_string(algorithm.as_bytes()).write_string(key_blob);
            }
        })
    }

    /// Decodes one frame body (everything after the length field).
    pub fn decode(body: &[u8]) -> Result<(u32, Self), CodecError> {
        let (kind, id, mut r) = header(body)?;
        // Kind 8 was StartSession, retired (sessions are SpawnSession's); not reused.
        if kind == 8 || !((1..=21).contains(&kind) || (40..=42).contains(&kind)) {
            return Err(CodecError::UnknownKind(kind));
        }
        let r = &mut r;
        let connection = ConnectionId(r.read_u64()?);
        let request = match kind {
            1 => Self::ConnectionOpened { connection },
            2 => Self::SignExchangeHash {
                connection,
                algorithm: text(r, MAX_SHORT_STRING)?,
                data: r.read_string_limited(MAX_SIGN_DATA)?.to_vec(),
            },
            3 => Self::LookupUser { connection, user: text(r, MAX_USER_LEN)? },
            4 => Self::ReadAuthorizedKeys {
                connection,
                user: text(r, MAX_USER_LEN)?,
                key: Some(r.read_string_limited(MAX_KEY_BLOB_LEN)?.to_vec())
                    .filter(|blob| !blob.is_empty()),
            },
            5 => Self::PamStart { connection, user: text(r, MAX_USER_LEN)? },
            6 => {
                let count = usize::try_from(r.read_u32()?).unwrap_or(usize::MAX);
                if count > MAX_PAM_RESPONSES {
                    return Err(CodecError::TooManyItems);
                }
                let mut responses = Vec::with_capacity(count);
                for _ in 0..count {
                    responses.push(text(r, MAX_SHORT_STRING)?);
                }
                Self::PamRespond { connection, responses }
            }
            7 => Self::ConnectionAuthenticated {
                connection,
                user: text(r, MAX_USER_LEN)?,
                method: text(r, MAX_SHORT_STRING)?,
            },
            9 => Self::ConnectionClosed { connection },
            10 => Self::AuthenticatePublicKey {
                connection,
                user: text(r, MAX_USER_LEN)?,
                algorithm: text(r, MAX_SHORT_STRING)?,
                key_blob: r.read_string_limited(MAX_KEY_BLOB_LEN)?.to_vec(),
                host_bound: flag(r)?,
                signature: r.read_string_limited(MAX_SIGNATURE_LEN)?.to_vec(),
            },
            11 => Self::AuthenticatePassword {
                connection,
                user: text(r, MAX_USER_LEN)?,
                password: r.read_string_limited(MAX_PASSWORD_LEN)?.to_vec(),
            },
            12 => Self::SpawnSession { connection, plan: decode_plan(r)? },
            14 => Self::ResolveHost {
                connection,
                host: text(r, MAX_SHORT_STRING)?,
                port: u16::try_from(r.read_u32()?)
                    .map_err(|_| CodecError::Invalid(InvalidMessage::InvalidValue))?,
            },
            15 => Self::LookupGroups { connection, user: text(r, MAX_USER_LEN)? },
            16 => Self::PamAccount { connection, user: text(r, MAX_USER_LEN)? },
            17 => Self::PamPoll { connection },
            13 => Self::ConnectionPeer {
                connection,
                address: text(r, MAX_SHORT_STRING)?
                    .parse()
                    .map_err(|_| CodecError::Invalid(InvalidMessage::InvalidValue))?,
            },
            18 => Self::ListenAgent { connection },
            40 => Self::ConnectionLocalAddress {
                connection,
                address: text(r, MAX_SHORT_STRING)?
                    .parse()
                    .map_err(|_| CodecError::Invalid(InvalidMessage::InvalidValue))?,
            },
            19 => Self::ListenPrivileged {
                connection,
                address: text(r, MAX_SHORT_STRING)?
                    .parse()
                    .map_err(|_| CodecError::Invalid(InvalidMessage::InvalidValue))?,
            },
            41 => Self::AuthenticateCertificate {
                connection,
                user: text(r, MAX_USER_LEN)?,
                algorithm: text(r, MAX_SHORT_STRING)?,
                certificate: r.read_string_limited(MAX_CERTIFICATE_LEN)?.to_vec(),
                host_bound: flag(r)?,
                signature: if flag(r)? {
                    Some(r.read_string_limited(MAX_SIGNATURE_LEN)?.to_vec())
                } else {
                    None
                },
            },
            42 => Self::ProveHostKey {
                connection,
                algorithm: text(r, MAX_SHORT_STRING)?,
                key_blob: r.read_string_limited(MAX_KEY_BLOB_LEN)?.to_vec(),
            },
            20 => Self::ListenStreamlocal {
                connection,
                path: r.read_string_limited(MAX_PATH_LEN)?.to_vec(),
            },
            21 => Self::ConnectStreamlocal {
                connection,
                path: r.read_string_limited(MAX_PATH_LEN)?.to_vec(),
            },
            other => return Err(CodecError::UnknownKind(other)),
        };
        r.finish()?;
        Ok((id, request))
    }
}

/// An account, as the monitor found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: String,
    /// The login shell.
    pub shell: String,
    /// Why the account may not log in by any method, as the monitor found it (locked or
    /// expired in the shadow file, without PAM); `None` when it may.
    pub refused: Option<String>,
}

/// The monitor's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The request was taken into account; nothing to return.
    Done,
    /// A signature blob (`string algorithm || string signature`).
    Signature(Vec<u8>),
    /// The account, or `None` when there is no such user.
    User(Option<UserRecord>),
    /// The user's `authorized_keys`, or `None` when it is missing or unreadable.
    AuthorizedKeys(Option<Vec<u8>>),
    /// The monitor does not do this (yet): the worker should act as if the method were off.
    Unsupported(String),
    /// A legal request that failed (a signing error, a session that could not start).
    Failed(String),
    /// Group names (`LookupGroups`).
    Groups(Vec<String>),
    /// A host name's addresses (`ResolveHost`).
    Addresses(Vec<std::net::SocketAddr>),
    /// A planned session's process started: its pid and terminal; `fds` descriptors come with
    /// the reply: the session's control socket, then the pty controller or stdin, stdout and
    /// stderr.
    SessionSpawned {
        /// The process id.
        pid: u32,
        /// The terminal's path, with a pty.
        tty: Option<String>,
        /// How many descriptors are attached.
        fds: u8,
    },
    /// A PAM conversation's next round (`PamStart`, `PamRespond`): what to show the client
    /// and ask it (at most [`MAX_PAM_RESPONSES`] prompts). `Done` ends a conversation that
    /// let the user in, `Failed` one that did not.
    PamPrompts(InfoRequest),
    /// PAM is still working on the connection's last PAM request (its thread computes, or
    /// waits for a module): ask again with [`Request::PamPoll`]. The monitor never waits for
    /// PAM, so one connection's slow PAM holds up no other request.
    PamPending,
    /// A certificate the monitor accepted (`AuthenticateCertificate`): the restrictions the
    /// certificate and the line or principal that let it in impose on the login.
    Authorized(Restrictions),
    /// A listening socket was made (`ListenAgent`, `ListenPrivileged`, `ListenStreamlocal`),
    /// or a connected one (`ConnectStreamlocal`); it comes with the reply (`SCM_RIGHTS`).
    Listening {
        /// The socket's path, for a Unix-domain socket.
        path: Option<String>,
        /// How many descriptors are attached (one).
        fds: u8,
    },
}

impl Reply {
    fn kind(&self) -> u8 {
        match self {
            Self::Done => 128,
            Self::Signature(_) => 129,
            Self::User(_) => 130,
            Self::AuthorizedKeys(_) => 131,
            Self::Unsupported(_) => 133,
            Self::Failed(_) => 134,
            Self::SessionSpawned { .. } => 135,
            Self::Addresses(_) => 136,
            Self::Groups(_) => 137,
            Self::PamPrompts(_) => 138,
            Self::PamPending => 139,
            // Numbered apart from the others' additions (170..): kinds must never collide.
            Self::Authorized(_) => 170,
            Self::Listening { .. } => 140,
        }
    }

    /// The whole frame for this reply, length field included.
    pub fn encode(&self, id: u32) -> Vec<u8> {
        frame(self.kind(), id, |w| match self {
            Self::Done | Self::PamPending => {}
            Self::Signature(blob) => {
                w.write_string(blob);
            }
            Self::User(None) | Self::AuthorizedKeys(None) => {
                w.write_bool(false);
            }
            Self::User(Some(user)) => {
                w.write_bool(true)
                    .write_string(user.name.as_bytes())
                    .write_u32(user.uid)
                    .write_u32(user.gid)
                    .write_string(user.home.as_bytes())
                    .write_string(user.shell.as_bytes());
                match &user.refused {
                    None => w.write_bool(false),
                    Some(why) => w.write_bool(true).write_string(why.as_bytes()),
                };
            }
            Self::AuthorizedKeys(Some(contents)) => {
                w.write_bool(true).write_string(contents);
            }
            Self::Unsupported(what) | Self::Failed(what) => {
                w.write_string(what.as_bytes());
            }
            Self::Groups(names) => {
                w.write_u32(u32::try_from(names.len()).unwrap_or(u32::MAX));
                for name in names {
                    w.write_string(name.as_bytes());
                }
            }
            Self::Addresses(addresses) => {
                w.write_u32(u32::try_from(addresses.len()).unwrap_or(u32::MAX));
                for address in addresses {
                    w.write_string(address.to_string().as_bytes());
                }
            }
            Self::PamPrompts(info) => {
                w.write_string(info.name.as_bytes())
                    .write_string(info.instruction.as_bytes())
                    .write_u32(u32::try_from(info.prompts.len()).unwrap_or(u32::MAX));
                for prompt in &info.prompts {
                    w.write_string(prompt.text.as_bytes()).write_bool(prompt.echo);
                }
            }
            Self::SessionSpawned { pid, tty, fds } => {
                w.write_u32(*pid);
                match tty {
                    None => w.write_bool(false),
                    Some(tty) => w.write_bool(true).write_string(tty.as_bytes()),
                };
                w.write_u8(*fds);
            }
            Self::Authorized(restrictions) => encode_restrictions(w, restrictions),
            Self::Listening { path, fds } => {
                match path {
                    None => w.write_bool(false),
                    Some(path) => w.write_bool(true).write_string(path.as_bytes()),
                };
                w.write_u8(*fds);
            }
        })
    }

    /// Decodes one frame body (everything after the length field).
    pub fn decode(body: &[u8]) -> Result<(u32, Self), CodecError> {
        let (kind, id, mut r) = header(body)?;
        let r = &mut r;
        let reply = match kind {
            128 => Self::Done,
            139 => Self::PamPending,
            129 => Self::Signature(r.read_string_limited(MAX_SIGNATURE_LEN)?.to_vec()),
            130 => Self::User(if flag(r)? {
                Some(UserRecord {
                    name: text(r, MAX_USER_LEN)?,
                    uid: r.read_u32()?,
                    gid: r.read_u32()?,
                    home: text(r, MAX_PATH_LEN)?,
                    shell: text(r, MAX_PATH_LEN)?,
                    refused: if flag(r)? { Some(text(r, MAX_SHORT_STRING)?) } else { None },
                })
            } else {
                None
            }),
            131 => Self::AuthorizedKeys(if flag(r)? {
                Some(r.read_string_limited(MAX_AUTHORIZED_KEYS_LEN)?.to_vec())
            } else {
                None
            }),
            133 => Self::Unsupported(text(r, MAX_SHORT_STRING)?),
            134 => Self::Failed(text(r, MAX_SHORT_STRING)?),
            137 => {
                let count = usize::try_from(r.read_u32()?).unwrap_or(usize::MAX);
                if count > MAX_PLAN_ITEMS {
                    return Err(CodecError::TooManyItems);
                }
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    names.push(text(r, MAX_USER_LEN)?);
                }
                Self::Groups(names)
            }
            136 => {
                let count = usize::try_from(r.read_u32()?).unwrap_or(usize::MAX);
                if count > MAX_PLAN_ITEMS {
                    return Err(CodecError::TooManyItems);
                }
                let mut addresses = Vec::with_capacity(count);
                for _ in 0..count {
                    addresses.push(
                        text(r, MAX_SHORT_STRING)?
                            .parse()
                            .map_err(|_| CodecError::Invalid(InvalidMessage::InvalidValue))?,
                    );
                }
                Self::Addresses(addresses)
            }
            135 => Self::SessionSpawned {
                pid: r.read_u32()?,
                tty: if flag(r)? { Some(text(r, MAX_PATH_LEN)?) } else { None },
                fds: r.read_u8()?,
            },
            138 => {
                let name = text(r, MAX_SHORT_STRING)?;
                let instruction = text(r, MAX_PAM_TEXT_LEN)?;
                let count = usize::try_from(r.read_u32()?).unwrap_or(usize::MAX);
                if count > MAX_PAM_RESPONSES {
                    return Err(CodecError::TooManyItems);
                }
                let mut prompts = Vec::with_capacity(count);
                for _ in 0..count {
                    prompts.push(Prompt { text: text(r, MAX_SHORT_STRING)?, echo: flag(r)? });
                }
                Self::PamPrompts(InfoRequest { name, instruction, prompts })
            }
            170 => Self::Authorized(decode_restrictions(r)?),
            140 => Self::Listening {
                path: if flag(r)? { Some(text(r, MAX_PATH_LEN)?) } else { None },
                fds: r.read_u8()?,
            },
            other => return Err(CodecError::UnknownKind(other)),
        };
        r.finish()?;
        Ok((id, reply))
    }
}

/// Why a frame could not be decoded. From a worker, every one of these is a protocol violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The length field was below the header's size or above the direction's maximum.
    BadLength(usize),
    /// The version byte was not [`PROTOCOL_VERSION`].
    BadVersion(u8),
    /// The kind byte names no message of this direction.
    UnknownKind(u8),
    /// A list claimed more items than allowed.
    TooManyItems,
    /// A field was truncated, over its limit, not UTF-8, or followed by trailing bytes.
    Invalid(InvalidMessage),
}

impl From<InvalidMessage> for CodecError {
    fn from(e: InvalidMessage) -> Self {
        Self::Invalid(e)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength(n) => write!(f, "frame length {n} out of bounds"),
            Self::BadVersion(v) => write!(f, "protocol version {v}, expected {PROTOCOL_VERSION}"),
            Self::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            Self::TooManyItems => f.write_str("too many items in a list"),
            Self::Invalid(e) => write!(f, "malformed field: {e}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Splits a byte stream into frame bodies, holding at most one frame's bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder for frames whose length field is at most `max`.
    pub fn new(max: usize) -> Self {
        Self { max, buf: Vec::new() }
    }

    /// A decoder for what the monitor reads from a worker.
    pub fn requests() -> Self {
        Self::new(MAX_REQUEST_LEN)
    }

    /// A decoder for what a worker reads from the monitor.
    pub fn replies() -> Self {
        Self::new(MAX_REPLY_LEN)
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished frame are buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete frame body, `Ok(None)` until one is complete. A bad length field is
    /// an error as soon as its four bytes are in, before the body is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        let Some(len_bytes) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_be_bytes(*len_bytes)).unwrap_or(usize::MAX);
        if !(HEADER_LEN..=self.max).contains(&len) {
            return Err(CodecError::BadLength(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let rest = self.buf.split_off(4 + len);
        let mut frame = std::mem::replace(&mut self.buf, rest);
        frame.drain(..4);
        Ok(Some(frame))
    }
}

fn encode_plan(w: &mut Writer<'_>, plan: &SessionPlan) {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    w.write_string(&plan.program).write_string(&plan.arg0).write_u32(count(plan.args.len()));
    for arg in &plan.args {
        w.write_string(arg);
    }
    w.write_u32(count(plan.env.len()));
    for (key, value) in &plan.env {
        w.write_string(key).write_string(value);
    }
    w.write_string(&plan.cwd);
    match &plan.pty {
        None => {
            w.write_bool(false);
        }
        Some(pty) => {
            w.write_bool(true)
                .write_u32(pty.rows.into())
                .write_u32(pty.columns.into())
                .write_u32(pty.width.into())
                .write_u32(pty.height.into());
            match &pty.modes {
                None => w.write_bool(false),
                Some(modes) => w.write_bool(true).write_string(modes),
            };
        }
    }
    w.write_bool(plan.user_rc);
}

fn decode_plan(r: &mut Reader<'_>) -> Result<SessionPlan, CodecError> {
    let bytes = |r: &mut Reader<'_>, limit| -> Result<Vec<u8>, CodecError> {
        Ok(r.read_string_limited(limit)?.to_vec())
    };
    let items = |r: &mut Reader<'_>| -> Result<usize, CodecError> {
        let n = usize::try_from(r.read_u32()?).unwrap_or(usize::MAX);
        if n > MAX_PLAN_ITEMS {
            return Err(CodecError::TooManyItems);
        }
        Ok(n)
    };
    let dimension = |r: &mut Reader<'_>| -> Result<u16, CodecError> {
        u16::try_from(r.read_u32()?).map_err(|_| CodecError::Invalid(InvalidMessage::InvalidValue))
    };
    let program = bytes(r, MAX_PATH_LEN)?;
    let arg0 = bytes(r, MAX_PATH_LEN)?;
    let mut args = Vec::new();
    for _ in 0..items(r)? {
        args.push(bytes(r, MAX_COMMAND_LEN)?);
    }
    let mut env = Vec::new();
    for _ in 0..items(r)? {
        env.push((bytes(r, MAX_SHORT_STRING)?, bytes(r, MAX_COMMAND_LEN)?));
    }
    let cwd = bytes(r, MAX_PATH_LEN)?;
    let pty = if flag(r)? {
        let (rows, columns, width, height) =
            (dimension(r)?, dimension(r)?, dimension(r)?, dimension(r)?);
        let modes = if flag(r)? { Some(bytes(r, MAX_MODES_LEN)?) } else { None };
        Some(PtyPlan { rows, columns, width, height, modes })
    } else {
        None
    };
    Ok(SessionPlan { program, arg0, args, env, cwd, pty, user_rc: flag(r)? })
}

fn encode_restrictions(w: &mut Writer<'_>, r: &Restrictions) {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match &r.forced_command {
        None => w.write_bool(false),
        Some(command) => w.write_bool(true).write_string(command.as_bytes()),
    };
    w.write_u32(count(r.environment.len()));
    for (name, value) in &r.environment {
        w.write_string(name.as_bytes()).write_string(value.as_bytes());
    }
    w.write_bool(r.pty)
        .write_bool(r.port_forwarding)
        .write_bool(r.agent_forwarding)
        .write_bool(r.x11_forwarding)
        .write_bool(r.user_rc);
    for list in [&r.permit_open, &r.permit_listen] {
        let Some(list) = list else {
            w.write_bool(false);
            continue;
        };
        w.write_bool(true).write_u32(count(list.len()));
        for entry in list {
            match &entry.host {
                None => w.write_bool(false),
                Some(host) => w.write_bool(true).write_string(host.as_bytes()),
            };
            // 0 ..= 65535 is a port, above it: any port.
            w.write_u32(entry.port.map_or(u32::MAX, u32::from));
        }
    }
}

fn decode_restrictions(r: &mut Reader<'_>) -> Result<Restrictions, CodecError> {
    let items = |r: &mut Reader<'_>| -> Result<usize, CodecError> {
        let n = usize::try_from(r.read_u32()?).unwrap_or(usize::MAX);
        if n > MAX_PLAN_ITEMS {
            return Err(CodecError::TooManyItems);
        }
        Ok(n)
    };
    let mut out = Restrictions::none();
    out.forced_command = if flag(r)? { Some(text(r, MAX_COMMAND_LEN)?) } else { None };
    for _ in 0..items(r)? {
        out.environment.push((text(r, MAX_SHORT_STRING)?, text(r, MAX_COMMAND_LEN)?));
    }
    out.pty = flag(r)?;
    out.port_forwarding = flag(r)?;
    out.agent_forwarding = flag(r)?;
    out.x11_forwarding = flag(r)?;
    out.user_rc = flag(r)?;
    let mut lists = [None, None];
    for list in &mut lists {
        if !flag(r)? {
            continue;
        }
        let mut entries = Vec::new();
        for _ in 0..items(r)? {
            let host = if flag(r)? { Some(text(r, MAX_SHORT_STRING)?) } else { None };
            let port = r.read_u32()?;
            entries.push(PermittedHostPort { host, port: u16::try_from(port).ok() });
        }
        *list = Some(entries);
    }
    let [permit_open, permit_listen] = lists;
    out.permit_open = permit_open;
    out.permit_listen = permit_listen;
    Ok(out)
}

fn frame(kind: u8, id: u32, body: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.write_prefixed(|w| {
        w.write_u8(PROTOCOL_VERSION).write_u8(kind).write_u32(id);
        body(w);
    });
    out
}

fn header(body: &[u8]) -> Result<(u8, u32, Reader<'_>), CodecError> {
    let mut r = Reader::new(body);
    let version = r.read_u8()?;
    if version != PROTOCOL_VERSION {
        return Err(CodecError::BadVersion(version));
    }
    let kind = r.read_u8()?;
    let id = r.read_u32()?;
    Ok((kind, id, r))
}

fn text(r: &mut Reader<'_>, limit: usize) -> Result<String, CodecError> {
    let bytes = r.read_string_limited(limit)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| CodecError::Invalid(InvalidMessage::InvalidUtf8))
}

fn flag(r: &mut Reader<'_>) -> Result<bool, CodecError> {
    match r.read_u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::Invalid(InvalidMessage::InvalidBoolean)),
    }
}

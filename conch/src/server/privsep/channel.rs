//! The blocking ends of the channel: the worker's client, a [`HostKeySigner`] that signs
//! through it, the monitor's serving loop, and the monitor's backend for the real system.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::crypto::CryptoError;
use crate::keys::{HostKeySigner, PublicKey, SignatureAlgorithm};
use crate::server::ConnectionId;

use super::codec::{CodecError, FrameDecoder, Reply, Request, UserRecord};
use super::monitor::{Monitor, MonitorBackend, Violation};

/// Why a call to the monitor failed.
#[derive(Debug)]
pub enum ClientError {
    /// Reading or writing the channel failed, or the monitor closed it.
    Io(io::Error),
    /// The monitor's reply was malformed, or answered another request.
    BadReply(CodecError),
    /// The reply did not match the request (another id, another kind).
    UnexpectedReply,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "monitor channel: {e}"),
            Self::BadReply(e) => write!(f, "monitor reply: {e}"),
            Self::UnexpectedReply => f.write_str("monitor reply does not match the request"),
        }
    }
}

impl std::error::Error for ClientError {}

struct ClientInner<S> {
    stream: S,
    decoder: FrameDecoder,
    next_id: u32,
    /// Replies still to come for requests sent with [`MonitorClient::notify`], which nobody
    /// waits for: the next call skips them (the monitor answers in order).
    unawaited: std::collections::VecDeque<u32>,
}

impl<S> ClientInner<S> {
    /// Whether the reply `got` answers a notification (and is dropped); a notification's
    /// reply that is not `Done` is an error.
    fn skip(&mut self, got: u32, reply: &Reply) -> Result<bool, ClientError> {
        if self.unawaited.front() != Some(&got) {
            return Ok(false);
        }
        self.unawaited.pop_front();
        match reply {
            Reply::Done => Ok(true),
            _ => Err(ClientError::UnexpectedReply),
        }
    }
}

/// The worker's end: one request at a time, each waiting for its reply.
pub struct MonitorClient<S> {
    inner: Mutex<ClientInner<S>>,
}

impl<S> fmt::Debug for MonitorClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MonitorClient")
    }
}

impl<S: Read + Write> MonitorClient<S> {
    /// A client over a blocking stream (a Unix socketpair end).
    pub fn new(stream: S) -> Self {
        Self {
            inner: Mutex::new(ClientInner {
                stream,
                decoder: FrameDecoder::replies(),
                next_id: 0,
                unawaited: std::collections::VecDeque::new(),
            }),
        }
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&self, request: &Request) -> Result<Reply, ClientError> {
        self.exchange(request, |stream, buf| stream.read(buf))
    }

    /// Sends `request` without waiting for its reply, which must be `Done` (the next call
    /// reads and checks it): for a notice such as `ConnectionClosed`, so the worker does not
    /// wait a round trip for it.
    pub fn notify(&self, request: &Request) -> Result<(), ClientError> {
        let mut inner = self.lock()?;
        let id = inner.send(&[request])?;
        inner.unawaited.push_back(id);
        Ok(())
    }

    /// Sends every request of `requests` at once, then waits for their replies, in order: one
    /// round trip instead of one each. The monitor answers requests in the order it reads them,
    /// so each must be valid whatever the replies to the ones before it say.
    pub fn call_all(&self, requests: &[Request]) -> Result<Vec<Reply>, ClientError> {
        let mut inner = self.lock()?;
        let first = inner.send(&requests.iter().collect::<Vec<_>>())?;
        inner.receive(first, requests.len(), |stream, buf| stream.read(buf))
    }

    fn exchange(
        &self,
        request: &Request,
        recv: impl FnMut(&mut S, &mut [u8]) -> io::Result<usize>,
    ) -> Result<Reply, ClientError> {
        let mut inner = self.lock()?;
        let id = inner.send(&[request])?;
        let mut replies = inner.receive(id, 1, recv)?;
        replies.pop().ok_or(ClientError::UnexpectedReply)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ClientInner<S>>, ClientError> {
        self.inner.lock().map_err(|_| ClientError::Io(io::Error::other("a previous call panicked")))
    }
}

impl<S: Read + Write> ClientInner<S> {
    /// Writes `requests` in one go, numbered in turn; the id of the first.
    fn send(&mut self, requests: &[&Request]) -> Result<u32, ClientError> {
        let first = self.next_id.wrapping_add(1);
        let mut out = Vec::new();
        for request in requests {
            self.next_id = self.next_id.wrapping_add(1);
            out.extend_from_slice(&request.encode(self.next_id));
        }
        self.stream.write_all(&out).map_err(ClientError::Io)?;
        self.stream.flush().map_err(ClientError::Io)?;
        Ok(first)
    }

    /// Reads the replies to `count` requests numbered from `first`, in order, skipping those
    /// of notices; `recv` reads from the stream.
    fn receive(
        &mut self,
        first: u32,
        count: usize,
        mut recv: impl FnMut(&mut S, &mut [u8]) -> io::Result<usize>,
    ) -> Result<Vec<Reply>, ClientError> {
        let mut replies = Vec::with_capacity(count);
        let mut buf = [0u8; 4096];
        let mut id = first;
        while replies.len() < count {
            if let Some(body) = self.decoder.next_frame().map_err(ClientError::BadReply)? {
                let (got, reply) = Reply::decode(&body).map_err(ClientError::BadReply)?;
                if self.skip(got, &reply)? {
                    continue;
                }
                if got != id {
                    return Err(ClientError::UnexpectedReply);
                }
                replies.push(reply);
                id = id.wrapping_add(1);
                continue;
            }
            let n = recv(&mut self.stream, &mut buf).map_err(ClientError::Io)?;
            if n == 0 {
                return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            self.decoder.extend(buf.get(..n).unwrap_or_default());
        }
        Ok(replies)
    }
}

impl MonitorClient<UnixStream> {
    /// Sends `request` and waits for its reply, with the descriptors that came with it (a
    /// started session's). A reply announcing other than the descriptors received is an error.
    pub fn call_with_fds(&self, request: &Request) -> Result<(Reply, Vec<OwnedFd>), ClientError> {
        let mut fds = Vec::new();
        let reply = self.exchange(request, |stream, buf| {
            twine_core::sandbox::recv_with_fds(stream.as_fd(), buf, &mut fds)
        })?;
        let announced = match reply {
            Reply::SessionSpawned { fds, .. } | Reply::Listening { fds, .. } => usize::from(fds),
            _ => 0,
        };
        if announced != fds.len() {
            return Err(ClientError::UnexpectedReply);
        }
        Ok((reply, fds))
    }
}

thread_local! {
    static SIGNING_FOR: Cell<Option<ConnectionId>> = const { Cell::new(None) };
}

/// While alive, host-key signatures made on this thread are asked for on behalf of
/// `connection`. The worker's glue holds one around feeding a connection's stack, which shares
/// its host keys with every other connection of the reactor.
#[derive(Debug)]
pub struct SigningScope {
    previous: Option<ConnectionId>,
}

impl SigningScope {
    /// Starts signing for `connection` on this thread.
    pub fn enter(connection: ConnectionId) -> Self {
        Self { previous: SIGNING_FOR.with(|c| c.replace(Some(connection))) }
    }
}

/// The connection of this thread's current [`SigningScope`]: the one whose input or events
/// are being handled (a worker's session spawner asks the monitor on its behalf).
pub fn current_connection() -> Option<ConnectionId> {
    SIGNING_FOR.with(Cell::get)
}

impl Drop for SigningScope {
    fn drop(&mut self) {
        SIGNING_FOR.with(|c| c.set(self.previous));
    }
}

/// A host key whose private half stays in the monitor: signing is a `SignExchangeHash`
/// request for the connection of the current [`SigningScope`].
pub struct MonitorSigner<S> {
    public: PublicKey,
    client: Arc<MonitorClient<S>>,
}

impl<S> fmt::Debug for MonitorSigner<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MonitorSigner({:?})", self.public)
    }
}

impl<S> MonitorSigner<S> {
    /// The host key `public`, signed with by the monitor behind `client`.
    pub fn new(public: PublicKey, client: Arc<MonitorClient<S>>) -> Self {
        Self { public, client }
    }
}

impl<S: Read + Write + Send> HostKeySigner for MonitorSigner<S> {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let connection = SIGNING_FOR.with(Cell::get).ok_or(CryptoError::InvalidKey)?;
        let request = Request::SignExchangeHash {
            connection,
            algorithm: algorithm.name().to_owned(),
            data: data.to_vec(),
        };
        match self.client.call(&request) {
            Ok(Reply::Signature(blob)) => Ok(blob),
            Ok(_) | Err(_) => Err(CryptoError::InvalidKey),
        }
    }

    /// A `ProveHostKey` request: the monitor builds the proof's data from the session id it
    /// signed itself (`_session_id` is not sent).
    fn sign_hostkeys_proof(
        &self,
        algorithm: SignatureAlgorithm,
        _session_id: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let connection = SIGNING_FOR.with(Cell::get).ok_or(CryptoError::InvalidKey)?;
        let request = Request::ProveHostKey {
            connection,
            algorithm: algorithm.name().to_owned(),
            key_blob: self.public.to_blob(),
        };
        match self.client.call(&request) {
            Ok(Reply::Signature(blob)) => Ok(blob),
            Ok(_) | Err(_) => Err(CryptoError::InvalidKey),
        }
    }
}

/// How serving a worker ended.
#[derive(Debug)]
pub enum ServeEnd {
    /// The worker closed its end between requests.
    Closed,
    /// The worker broke the protocol: kill it.
    Violation(Violation),
    /// The channel failed, or closed in the middle of a request: kill the worker.
    Io(io::Error),
}

/// Serves one worker over a blocking stream until it closes the channel or breaks the rules.
/// Descriptors of started sessions cannot travel over a plain stream and are closed: use
/// [`serve_unix`] for a real worker.
/// The caller kills the worker on anything but [`ServeEnd::Closed`].
pub fn serve<B: MonitorBackend, S: Read + Write>(
    monitor: &mut Monitor<B>,
    mut stream: S,
) -> ServeEnd {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) if monitor.has_partial_request() => {
                return ServeEnd::Io(io::ErrorKind::UnexpectedEof.into())
            }
            Ok(0) => return ServeEnd::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return ServeEnd::Io(e),
        };
        match monitor.received(buf.get(..n).unwrap_or_default()) {
            Ok(replies) => {
                // Without a Unix socket there is no passing descriptors: close them.
                drop(monitor.take_fds());
                match stream.write_all(&replies).and_then(|()| stream.flush()) {
                    // The worker left after its last notice (`notify`): the next read ends.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => return ServeEnd::Io(e),
                    Ok(()) => {}
                }
            }
            Err(v) => return ServeEnd::Violation(v),
        }
    }
}

/// [`serve`] over a Unix socket, attaching each started session's descriptors to its reply.
pub fn serve_unix<B: MonitorBackend>(monitor: &mut Monitor<B>, stream: &UnixStream) -> ServeEnd {
    let mut buf = [0u8; 4096];
    let mut reader = stream;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) if monitor.has_partial_request() => {
                return ServeEnd::Io(io::ErrorKind::UnexpectedEof.into())
            }
            Ok(0) => return ServeEnd::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return ServeEnd::Io(e),
        };
        let replies = match monitor.received(buf.get(..n).unwrap_or_default()) {
            Ok(replies) => replies,
            Err(v) => return ServeEnd::Violation(v),
        };
        let fds = monitor.take_fds();
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        let mut sent = 0;
        if !borrowed.is_empty() && !replies.is_empty() {
            match twine_core::sandbox::send_with_fds(stream.as_fd(), &replies, &borrowed) {
                Ok(n) => sent = n,
                Err(e) => return ServeEnd::Io(e),
            }
        }
        let mut writer = stream;
        match writer.write_all(replies.get(sent..).unwrap_or_default()) {
            // The worker left after its last notice (`notify`): the next read ends.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return ServeEnd::Io(e),
            Ok(()) => {}
        }
    }
}

/// The monitor's backend on the real system: host keys in memory, accounts from the system
/// database, `~/.ssh/authorized_keys` read as root. Sessions are not started through the
/// monitor by this backend: [`MonitorBackend::spawn_session`] answers that it cannot.
#[derive(Debug)]
pub struct SystemBackend {
    host_keys: Vec<Arc<dyn HostKeySigner>>,
}

impl SystemBackend {
    /// A backend signing with `host_keys`.
    pub fn new(host_keys: Vec<Arc<dyn HostKeySigner>>) -> Self {
        Self { host_keys }
    }
}

impl MonitorBackend for SystemBackend {
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .host_keys
            .iter()
            .find(|k| k.public_key().supports(algorithm))
            .ok_or(CryptoError::UnsupportedAlgorithm)?;
        key.sign(algorithm, data)
    }

    fn sign_with_host_key(
        &mut self,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let signer = self
            .host_keys
            .iter()
            .find(|k| k.public_key() == key)
            .ok_or(CryptoError::UnsupportedAlgorithm)?;
        signer.sign(algorithm, data)
    }

    fn host_public_key(&self, algorithm: SignatureAlgorithm) -> Option<PublicKey> {
        self.host_keys
            .iter()
            .find(|k| k.public_key().supports(algorithm))
            .map(|k| k.public_key().clone())
    }

    fn lookup_user(&mut self, name: &str) -> Option<UserRecord> {
        let user = nix::unistd::User::from_name(name).ok().flatten()?;
        Some(UserRecord {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir.to_string_lossy().into_owned(),
            shell: user.shell.to_string_lossy().into_owned(),
            refused: None,
        })
    }

    fn read_authorized_keys(&mut self, user: &UserRecord) -> Option<Vec<u8>> {
        let path = PathBuf::from(&user.home).join(".ssh").join("authorized_keys");
        let file = std::fs::File::open(path).ok()?;
        let mut contents = Vec::new();
        let limit = u64::try_from(super::codec::MAX_AUTHORIZED_KEYS_LEN).unwrap_or(u64::MAX);
        file.take(limit).read_to_end(&mut contents).ok()?;
        Some(contents)
    }
}

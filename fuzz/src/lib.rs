//! The bodies of twine-conch's fuzz targets, one public function each; `fuzz_targets/*.rs` are
//! one-line libFuzzer wrappers around them, and `examples/replay.rs` runs the same functions over
//! files (a corpus, or a crash to reproduce) without libFuzzer.
//!
//! Every target drives the library through its public API, as a peer would. The session targets
//! play a real key exchange (curve25519, so a run costs one exchange) and then send the fuzzer's
//! packets under the negotiated keys through [`Transport::inject_raw_packet`], the test kit's one
//! hook, so the fuzzer reaches every layer without forging keys. Their input is a data stream
//! and a control stream interleaved (see [`Records`]).
//!
//! Invariants checked on every input, besides "no panic":
//! - liveness: with bytes to deliver, a side that takes none and writes none twice in a row is
//!   stuck ([`stuck`] panics), and driving a pair must go quiet within a bound;
//! - a closed side stays closed and says why (a reason for every fatal error).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use twine_conch::connection::msgs::{ChannelKind, GlobalReply};
use twine_conch::connection::{self, ChannelId, Event as ConnectionEvent, Stream};
use twine_conch::crypto::algorithms::Category;
use twine_conch::crypto::kex::KEX_NAMES;
use twine_conch::crypto::SeededRandom;
use twine_conch::keys::{self, AuthorizedKeys, KnownHosts, PublicKey};
use twine_conch::stack::{
    ClientEvent, ClientStack, ClientStackConfig, ServerEvent, ServerStack, ServerStackConfig,
};
use twine_conch::testing::fixtures::{self, plain_packet, KexInitLists};
use twine_conch::transport::{ClientConfig, Event, ServerConfig, Transport};
use twine_conch::userauth::{self, Decision, FailureDelay};
use twine_conch::wire::{MessageType, Writer};

/// Heap allocation is capped around each input: an input that makes the library hold more
/// than [`PER_INPUT_HEAP`] at once fails its allocation and aborts the run, which libFuzzer
/// reports as a crash with the input saved. (libFuzzer's own `-malloc_limit_mb` needs a
/// sanitizer's malloc hooks, which a `-s none` build lacks.)
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// The most heap one input may make the library hold at once: 16 MiB (a whole session
/// target's key exchange, windows and buffers fit in well under 4 MiB; the allocation bugs of
/// the class this catches ask for gigabytes).
pub const PER_INPUT_HEAP: usize = 16 << 20;

/// Runs `target` on `data` under the [`PER_INPUT_HEAP`] cap.
pub fn run(target: fn(&[u8]), data: &[u8]) {
    /// Lifts the cap when the input ends, even by a panic.
    struct Lift;
    impl Drop for Lift {
        fn drop(&mut self) {
            let _ = HEAP.set_limit(usize::MAX);
        }
    }
    let _ = HEAP.set_limit(HEAP.allocated().saturating_add(PER_INPUT_HEAP));
    let _lift = Lift;
    target(data);
}

/// A valid client identification line.
pub const CLIENT_LINE: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n";
/// A valid server identification line.
pub const SERVER_LINE: &[u8] = b"SSH-2.0-OpenSSH_9.2p1\r\n";

/// The most steps a pair may take to go quiet after one input record.
const MAX_STEPS: usize = 2_000;

/// Fails the run: with bytes left to deliver, the side took none and wrote none twice.
fn stuck(what: &str) -> ! {
    panic!("stuck: {what} takes no input and makes no output with bytes pending")
}

fn now0() -> Instant {
    // One fixed origin per process; time only moves by the control stream.
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Feeds `input` to `transport` in pieces of `chunk` bytes, draining payloads and events, with
/// the liveness check.
fn feed_transport(transport: &mut Transport, input: &[u8], chunk: usize) {
    let now = now0();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut rest = input;
    let mut idle = 0;
    while !rest.is_empty() && !transport.is_closed() {
        let n = rest.len().min(chunk.max(1)).min(transport.input_capacity());
        let (piece, tail) = rest.split_at(n);
        let _ = transport.handle_input(now, piece);
        rest = tail;
        let mut progressed = n > 0;
        while transport.poll_payload(&mut buf).is_some() {
            buf.clear();
            progressed = true;
        }
        while let Some(event) = transport.poll_event() {
            progressed = true;
            if let Event::HostKeyReceived { .. } = event {
                let _ = transport.host_key_decided(true);
            }
        }
        out.clear();
        transport.poll_transmit(&mut out);
        progressed |= !out.is_empty();
        idle = if progressed { 0 } else { idle + 1 };
        if idle >= 2 {
            stuck("a transport");
        }
    }
    transport.handle_eof(now);
    while transport.poll_event().is_some() {}
}

fn server_transport() -> Transport {
    let mut config = ServerConfig::new(vec![fixtures::ed25519_host_key(1)]);
    config.algorithms.configure(Category::Kex, &KEX_NAMES.join(",")).unwrap();
    Transport::server(Arc::new(config), Box::new(SeededRandom::new(8))).unwrap()
}

fn client_transport() -> Transport {
    let mut config = ClientConfig::default();
    config.algorithms.configure(Category::Kex, &KEX_NAMES.join(",")).unwrap();
    Transport::client(Arc::new(config), Box::new(SeededRandom::new(7))).unwrap()
}

/// The chunk size a leading byte selects: all at once, or 1 to 255 bytes.
fn chunk_of(byte: u8) -> usize {
    if byte == 0 {
        usize::MAX
    } else {
        usize::from(byte)
    }
}

/// `packet_decode`: the binary packet protocol before keys (lengths, padding, message numbers).
/// Input: chunk byte, then the bytes after the client's identification line, to a server.
pub fn packet_decode(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let mut t = server_transport();
    feed_transport(&mut t, &[CLIENT_LINE, rest].concat(), chunk_of(chunk));
}

/// `identification`: the version exchange. Input: chunk byte, side byte (even: server), then
/// the peer's bytes from the very first.
pub fn identification(data: &[u8]) {
    let [chunk, side, rest @ ..] = data else { return };
    let mut t = if side % 2 == 0 { server_transport() } else { client_transport() };
    feed_transport(&mut t, rest, chunk_of(*chunk));
}

/// `kexinit`: KEXINIT parsing and negotiation. Input: the KEXINIT body after the message number,
/// to a server and to a client.
pub fn kexinit(data: &[u8]) {
    let payload = [&[MessageType::KEXINIT.0], data].concat();
    let mut t = server_transport();
    feed_transport(&mut t, &[CLIENT_LINE, &plain_packet(&payload)].concat(), usize::MAX);
    let mut t = client_transport();
    feed_transport(&mut t, &[SERVER_LINE, &plain_packet(&payload)].concat(), usize::MAX);
}

/// A strict KEXINIT for the method that `selector` picks, as `side` ("c" or "s") sends it.
fn kexinit_for(selector: u8, side: &str) -> Vec<u8> {
    let kex = KEX_NAMES[usize::from(selector) % KEX_NAMES.len()];
    let kex = format!("{kex},kex-strict-{side}-v00@openssh.com");
    KexInitLists::with_kex(&kex).payload()
}

/// `kex_init`: the server's handling of the client's key exchange message, for every method.
/// Input: method selector byte, then the message body after its number.
pub fn kex_init(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let init = [&[MessageType::KEX_INIT.0], body].concat();
    let input =
        [CLIENT_LINE, &plain_packet(&kexinit_for(selector, "c")), &plain_packet(&init)].concat();
    let mut t = server_transport();
    feed_transport(&mut t, &input, usize::MAX);
}

/// `kex_reply`: the client's handling of the server's key exchange reply (host key, public
/// value, signature), for every method. Input: method selector byte, then the reply body.
pub fn kex_reply(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let reply = [&[MessageType::KEX_REPLY.0], body].concat();
    let input =
        [SERVER_LINE, &plain_packet(&kexinit_for(selector, "s")), &plain_packet(&reply)].concat();
    let mut t = client_transport();
    feed_transport(&mut t, &input, usize::MAX);
}

/// The records of a session input: a control byte, a length (one byte), and that many bytes
/// of payload, repeated. The control byte's low 3 bits pick the action, bit 3 delivers one
/// byte at a time, the high 4 bits are an argument.
#[derive(Debug)]
pub struct Records<'a>(&'a [u8]);

/// One record of [`Records`].
#[derive(Debug)]
pub struct Record<'a> {
    /// The action, 0 to 7.
    pub action: u8,
    /// Deliver one byte at a time.
    pub bytewise: bool,
    /// The action's argument, 0 to 15.
    pub arg: u8,
    /// The bytes.
    pub bytes: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let [control, len, rest @ ..] = self.0 else { return None };
        let n = usize::from(*len).min(rest.len());
        let (bytes, tail) = rest.split_at(n);
        self.0 = tail;
        Some(Record { action: control & 7, bytewise: control & 8 != 0, arg: control >> 4, bytes })
    }
}

/// The side under test in a session target.
trait UnderTest {
    fn input(&mut self, now: Instant, bytes: &[u8]);
    fn eof(&mut self, now: Instant);
    fn timeout(&mut self, now: Instant);
    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>);
    fn capacity(&self) -> usize;
    /// Answers events as the control stream says (`accept`); false once closed.
    fn poll(&mut self, now: Instant, accept: bool) -> bool;
    /// An application action chosen by `arg` (open, data, close, rekey...).
    fn act(&mut self, now: Instant, arg: u8, bytes: &[u8]);
}

thread_local! {
    /// The channels the application has heard of in this run, for its actions to name.
    static CHANNELS: std::cell::RefCell<Vec<ChannelId>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn answer_connection(c: &mut connection::Connection, event: ConnectionEvent, accept: bool) {
    match event {
        ConnectionEvent::ChannelOpened { id } => CHANNELS.with(|ids| ids.borrow_mut().push(id)),
        ConnectionEvent::ChannelOpenRequested { id, .. } => {
            CHANNELS.with(|ids| ids.borrow_mut().push(id));
            if accept {
                let _ = c.accept_channel(id);
            } else {
                let _ = c.reject_channel(
                    id,
                    connection::msgs::OpenFailureReason::ADMINISTRATIVELY_PROHIBITED,
                    "no",
                );
            }
        }
        ConnectionEvent::RequestReceived { id, reply: Some(request), .. } => {
            let _ = c.reply_request(id, request, accept);
        }
        ConnectionEvent::GlobalRequestReceived { reply: Some(request), .. } => {
            let reply = if accept { GlobalReply::Success } else { GlobalReply::Failure };
            let _ = c.reply_global_request(request, reply);
        }
        ConnectionEvent::DataReceived { id, stream } => {
            let mut buf = [0; 4096];
            for _ in 0..64 {
                if c.recv(id, stream, &mut buf).unwrap_or(0) == 0 {
                    break;
                }
            }
        }
        _ => {}
    }
}

fn connection_act(c: &mut connection::Connection, arg: u8, bytes: &[u8]) {
    let opened = CHANNELS.with(|ids| ids.borrow().get(usize::from(arg & 3)).copied());
    let Some(id) = opened else {
        let _ = c.open_channel(ChannelKind::Session);
        return;
    };
    let _ = match arg >> 2 {
        0 => c.open_channel(ChannelKind::Session).map(|_| ()),
        1 => c.send_data(id, bytes).map(|_| ()),
        2 => c.send_eof(id),
        _ => c.close(id),
    };
    let _ = c.send_extended_data(id, 1, bytes);
    let _ = c.peek(id, Stream::Stderr);
}

impl UnderTest for ServerStack<()> {
    fn input(&mut self, now: Instant, bytes: &[u8]) {
        let _ = self.handle_input(now, bytes);
    }
    fn eof(&mut self, now: Instant) {
        self.handle_eof(now);
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now);
    }
    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.poll_transmit(now, out);
    }
    fn capacity(&self) -> usize {
        self.input_capacity()
    }
    fn poll(&mut self, now: Instant, accept: bool) -> bool {
        while let Some(event) = self.poll_event() {
            match event {
                ServerEvent::Auth(userauth::ServerEvent::AuthRequested { id, .. }) => {
                    let decision = if accept { Decision::Accept(()) } else { Decision::Reject };
                    let _ = self.auth_decided(now, id, decision);
                }
                ServerEvent::Connection(event) => {
                    if let Some(c) = self.connection_mut() {
                        answer_connection(c, event, accept);
                    }
                }
                ServerEvent::Closed { error, .. } => {
                    if let Some(error) = error {
                        let _ = error.disconnect_reason();
                    }
                    return false;
                }
                _ => {}
            }
        }
        !self.is_closed()
    }
    fn act(&mut self, now: Instant, arg: u8, bytes: &[u8]) {
        if arg == 15 {
            let _ = self.rekey(now);
        } else if let Some(c) = self.connection_mut() {
            connection_act(c, arg, bytes);
        }
    }
}

impl UnderTest for ClientStack {
    fn input(&mut self, now: Instant, bytes: &[u8]) {
        let _ = self.handle_input(now, bytes);
    }
    fn eof(&mut self, now: Instant) {
        self.handle_eof(now);
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now);
    }
    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.poll_transmit(now, out);
    }
    fn capacity(&self) -> usize {
        self.input_capacity()
    }
    fn poll(&mut self, now: Instant, accept: bool) -> bool {
        while let Some(event) = self.poll_event() {
            match event {
                ClientEvent::Transport(Event::HostKeyReceived { .. }) => {
                    let _ = self.host_key_decided(now, accept);
                }
                ClientEvent::Connection(event) => {
                    if let Some(c) = self.connection_mut() {
                        answer_connection(c, event, accept);
                    }
                }
                ClientEvent::Closed { .. } => return false,
                _ => {}
            }
        }
        !self.is_closed()
    }
    fn act(&mut self, now: Instant, arg: u8, bytes: &[u8]) {
        if arg == 15 {
            let _ = self.rekey(now);
        } else if let Some(c) = self.connection_mut() {
            connection_act(c, arg, bytes);
        }
    }
}

/// A stack under test and a peer transport that the fuzzer speaks through.
struct Session<S> {
    stack: S,
    peer: Transport,
    now: Instant,
    accept: bool,
    open: bool,
}

impl<S: UnderTest> Session<S> {
    /// Hands `bytes` to the stack in pieces of `chunk`, with the liveness check.
    fn deliver(&mut self, bytes: &[u8], chunk: usize) {
        let mut rest = bytes;
        let mut idle = 0;
        while !rest.is_empty() && self.open {
            let n = rest.len().min(chunk).min(self.stack.capacity());
            let (piece, tail) = rest.split_at(n);
            if n > 0 {
                self.stack.input(self.now, piece);
            }
            rest = tail;
            self.open = self.stack.poll(self.now, self.accept);
            let mut out = Vec::new();
            self.stack.transmit(self.now, &mut out);
            self.deliver_to_peer(&out);
            idle = if n > 0 || !out.is_empty() { 0 } else { idle + 1 };
            if idle >= 2 {
                stuck("the stack");
            }
        }
    }

    fn deliver_to_peer(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.peer.is_closed() {
            return;
        }
        let _ = self.peer.handle_input(self.now, bytes);
        let mut buf = Vec::new();
        for _ in 0..4 {
            while self.peer.poll_payload(&mut buf).is_some() {
                buf.clear();
            }
            let mut decided = false;
            while let Some(event) = self.peer.poll_event() {
                if let Event::HostKeyReceived { .. } = event {
                    let _ = self.peer.host_key_decided(true);
                    decided = true;
                }
            }
            if !decided {
                break;
            }
            // Bytes that waited for the decision.
            let _ = self.peer.handle_input(self.now, &[]);
        }
    }

    /// Moves bytes both ways until both are quiet; more than [`MAX_STEPS`] is a livelock.
    fn drive(&mut self, chunk: usize) {
        for _ in 0..MAX_STEPS {
            let mut to_stack = Vec::new();
            self.peer.poll_transmit(&mut to_stack);
            let mut to_peer = Vec::new();
            self.stack.transmit(self.now, &mut to_peer);
            self.deliver_to_peer(&to_peer);
            if to_stack.is_empty() && to_peer.is_empty() {
                return;
            }
            self.deliver(&to_stack, chunk);
            if !self.open {
                return;
            }
        }
        panic!("livelock: the pair never went quiet");
    }

    /// Plays the records: each sends a payload (raw, or through the peer's upper-layer path),
    /// moves time, ends the stream, or acts as the application.
    fn play(&mut self, data: &[u8]) {
        for record in Records(data) {
            if !self.open {
                return;
            }
            let chunk = if record.bytewise { 1 } else { usize::MAX };
            self.accept = record.arg & 1 == 0;
            match record.action {
                0..=2 if !record.bytes.is_empty() => {
                    let _ = self.peer.inject_raw_packet(record.bytes);
                }
                3 if !record.bytes.is_empty() => {
                    let _ = self.peer.send_payload(record.bytes);
                }
                4 => {
                    self.now += Duration::from_secs(1 << record.arg.min(12));
                    self.stack.timeout(self.now);
                    self.peer.handle_timeout(self.now);
                }
                5 => self.stack.act(self.now, record.arg, record.bytes),
                6 => {
                    // Raw bytes on the wire, past the peer's framing.
                    self.deliver(record.bytes, chunk);
                }
                7 if record.arg == 15 => {
                    self.stack.eof(self.now);
                    self.open = self.stack.poll(self.now, self.accept);
                }
                _ => {}
            }
            self.drive(chunk);
        }
    }
}

fn server_stack_config() -> ServerStackConfig {
    let transport = ServerConfig::new(vec![fixtures::ed25519_host_key(1)]);
    let mut auth = userauth::ServerConfig::new([0x5a; 32]);
    auth.failure_delay = FailureDelay::dangerous_none();
    ServerStackConfig::new(transport, auth, connection::Config::default()).unwrap()
}

fn payload(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut Writer::new(&mut out));
    out
}

/// A server stack after a real key exchange with a client transport.
fn server_after_kex() -> Session<ServerStack<()>> {
    let stack =
        ServerStack::new(Arc::new(server_stack_config()), Box::new(SeededRandom::new(2))).unwrap();
    let mut config = ClientConfig::default();
    config.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
    let peer = Transport::client(Arc::new(config), Box::new(SeededRandom::new(3))).unwrap();
    CHANNELS.with(|ids| ids.borrow_mut().clear());
    let mut s = Session { stack, peer, now: now0(), accept: true, open: true };
    s.drive(usize::MAX);
    assert!(s.peer.is_established(), "the key exchange: {:?} {:?}", s.peer, s.stack);
    s
}

/// A client stack (user `alice`) after a real key exchange with a server transport.
fn client_after_kex() -> Session<ClientStack> {
    let config = ClientStackConfig::new(
        ClientConfig::default(),
        userauth::ClientConfig::new(),
        connection::Config::default(),
    )
    .unwrap();
    let stack =
        ClientStack::new(Arc::new(config), "alice", Box::new(SeededRandom::new(4))).unwrap();
    let mut config = ServerConfig::new(vec![fixtures::ed25519_host_key(1)]);
    config.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
    let peer = Transport::server(Arc::new(config), Box::new(SeededRandom::new(5))).unwrap();
    CHANNELS.with(|ids| ids.borrow_mut().clear());
    let mut s = Session { stack, peer, now: now0(), accept: true, open: true };
    s.drive(usize::MAX);
    assert!(s.peer.is_established(), "the key exchange");
    s
}

/// `server_session`: a whole server stack after the key exchange, fed [`Records`].
pub fn server_session(data: &[u8]) {
    server_after_kex().play(data);
}

/// `userauth`: the server's user authentication. Input: the bodies of `USERAUTH_REQUEST`s (and
/// `INFO_RESPONSE`s), separated by the byte 0xff 0xfe, sent after `ssh-userauth` is accepted.
pub fn userauth(data: &[u8]) {
    let mut s = server_after_kex();
    let _ = s.peer.send_payload(&payload(|w| {
        w.write_u8(MessageType::SERVICE_REQUEST.0).write_string(b"ssh-userauth");
    }));
    s.drive(usize::MAX);
    for (i, body) in split(data).enumerate() {
        if !s.open {
            return;
        }
        let number = if i % 4 == 3 {
            MessageType::USERAUTH_INFO_RESPONSE
        } else {
            MessageType::USERAUTH_REQUEST
        };
        s.accept = i % 2 == 1;
        let _ = s.peer.send_payload(&[&[number.0], body].concat());
        s.drive(usize::MAX);
    }
}

/// `connection`: the server's connection layer after a login, with a session channel open.
/// Input: connection-layer payloads (message number first), separated by 0xff 0xfe.
pub fn connection(data: &[u8]) {
    let mut s = server_after_kex();
    let _ = s.peer.send_payload(&payload(|w| {
        w.write_u8(MessageType::SERVICE_REQUEST.0).write_string(b"ssh-userauth");
    }));
    let _ = s.peer.send_payload(&payload(|w| {
        w.write_u8(MessageType::USERAUTH_REQUEST.0)
            .write_string(b"alice")
            .write_string(b"ssh-connection")
            .write_string(b"password")
            .write_bool(false)
            .write_string(b"secret");
    }));
    let _ = s.peer.send_payload(&payload(|w| {
        w.write_u8(MessageType::CHANNEL_OPEN.0)
            .write_string(b"session")
            .write_u32(0)
            .write_u32(1 << 20)
            .write_u32(32 * 1024);
    }));
    s.drive(usize::MAX);
    assert!(s.stack.is_authenticated(), "the login");
    for body in split(data) {
        if !s.open {
            return;
        }
        if !body.is_empty() {
            let _ = s.peer.inject_raw_packet(body);
        }
        s.drive(usize::MAX);
    }
}

/// `client_session`: a whole client stack after the key exchange, fed [`Records`] from a
/// server.
pub fn client_session(data: &[u8]) {
    client_after_kex().play(data);
}

/// Splits `data` at each 0xff 0xfe.
fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let d = rest?;
        match d.windows(2).position(|w| w == [0xff, 0xfe]) {
            Some(i) => {
                rest = d.get(i + 2..);
                d.get(..i)
            }
            None => {
                rest = None;
                Some(d)
            }
        }
    })
}

/// `private_key`: private key files (OpenSSH, PEM, PKCS#8), with and without a passphrase.
///
/// A file names its own key-derivation cost (bcrypt-pbkdf rounds; PBKDF2 or scrypt parameters),
/// and honouring it is by design (OpenSSH has no cap either), so the passphrase is only typed
/// for OpenSSH files of at most 16 rounds: a slow input then means a slow parser, not a KDF.
pub fn private_key(data: &[u8]) {
    let _ = keys::load_private_key(data, &mut || None);
    let cheap = keys::openssh::read_envelope(data).is_ok_and(|e| e.rounds <= 16);
    if cheap {
        let _ = keys::load_private_key(data, &mut || Some(b"passphrase".to_vec().into()));
    }
    let _ = keys::public_key_from_private(data);
}

/// `public_key`: public key lines and wire blobs.
pub fn public_key(data: &[u8]) {
    let _ = PublicKey::from_blob(data);
    let _ = keys::load_public_key(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKey::from_openssh(text);
    }
}

/// `authorized_keys`: whole files, options included; then a lookup.
pub fn authorized_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = AuthorizedKeys::parse(text);
    for key in &file.keys {
        let _ = key.options.from_allows("host.example", "192.0.2.1");
    }
}

/// `known_hosts`: whole files (hashed names, markers, patterns); then a check.
pub fn known_hosts(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = KnownHosts::parse(text);
    let signer = fixtures::ed25519_host_key(1);
    let key = signer.public_key();
    let _ = file.check("host.example", 22, key);
    let _ = file.check("192.0.2.1", 2222, key);
}

/// `sshd_config`: one file, with the defaults.
pub fn sshd_config(data: &[u8]) {
    let _ = twine_conch::config::sshd::SshdConfigFile::parse_bytes(data);
}

/// `ssh_config`: one file, resolved for a host.
pub fn ssh_config(data: &[u8]) {
    let _ = twine_conch::config::ssh::SshLoader::parse_bytes(data, "host.example");
}

/// A target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for the replay driver.
pub const TARGETS: &[Target] = &[
    ("packet_decode", packet_decode),
    ("identification", identification),
    ("kexinit", kexinit),
    ("kex_init", kex_init),
    ("kex_reply", kex_reply),
    ("userauth", userauth),
    ("connection", connection),
    ("server_session", server_session),
    ("client_session", client_session),
    ("private_key", private_key),
    ("public_key", public_key),
    ("authorized_keys", authorized_keys),
    ("known_hosts", known_hosts),
    ("sshd_config", sshd_config),
    ("ssh_config", ssh_config),
];

//! Helpers shared by the back-to-back tests: configs, data exchange, scripted peers.

use std::sync::Arc;
use std::time::Instant;

use crate::crypto::algorithms::Category;
use crate::crypto::kex::KEX_NAMES;
use crate::crypto::mac::MAC_NAMES;
use crate::error::Error;
use crate::keys::{HostKeySigner, SignatureAlgorithm};
use crate::testing::{fixtures, Pair, SeededRandom};
use crate::transport::{ClientConfig, Event, ServerConfig, Transport};
use crate::wire::{DisconnectReason, MessageType, Reader};

/// The chunk sizes every framing-sensitive test runs with: all at once, 1 byte, 7 bytes.
pub(super) const CHUNKINGS: [Option<usize>; 3] = [None, Some(1), Some(7)];

/// Every host key the suite has, with the signature algorithms each makes.
pub(super) fn host_keys() -> Vec<(Arc<dyn HostKeySigner>, Vec<SignatureAlgorithm>)> {
    fixtures::all_host_keys()
        .into_iter()
        .map(|key| {
            let algorithms = SignatureAlgorithm::ALL
                .into_iter()
                .filter(|a| *a != SignatureAlgorithm::RsaSha1 && key.public_key().supports(*a))
                .collect();
            (key, algorithms)
        })
        .collect()
}

/// A server config with every host key of the suite, every key exchange method and every MAC
/// we implement (servers leave finite-field DH off by default, as OpenSSH 10 does, and nobody
/// offers the SHA-1 MACs unasked).
pub(super) fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new(host_keys().into_iter().map(|(k, _)| k).collect());
    config.algorithms.configure(Category::Kex, &KEX_NAMES.join(",")).unwrap();
    config.algorithms.configure(Category::Mac, &MAC_NAMES.join(",")).unwrap();
    config
}

/// The default client config.
pub(super) fn client_config() -> ClientConfig {
    ClientConfig::default()
}

/// A client config that offers exactly one of each.
pub(super) fn client_config_with(
    kex: &str,
    host_key: SignatureAlgorithm,
    cipher: &str,
    mac: Option<&str>,
) -> ClientConfig {
    let mut config = ClientConfig::default();
    let prefs = &mut config.algorithms;
    prefs.configure(Category::Kex, kex).unwrap();
    prefs.configure(Category::HostKey, host_key.name()).unwrap();
    prefs.configure(Category::Cipher, cipher).unwrap();
    if let Some(mac) = mac {
        prefs.configure(Category::Mac, mac).unwrap();
    }
    config
}

/// A payload numbered like `SSH_MSG_CHANNEL_DATA`, `len` bytes long, its body derived from `tag`.
pub(super) fn data_payload(tag: u8, len: usize) -> Vec<u8> {
    let mut p = vec![MessageType::CHANNEL_DATA.0];
    p.extend((0..len.saturating_sub(1)).map(|i| tag.wrapping_add(u8::try_from(i % 251).unwrap())));
    p
}

/// Sends `count` payloads each way, drives, and asserts each side received exactly those.
pub(super) fn exchange_data(pair: &mut Pair, count: usize, len: usize) {
    let sent_by_client: Vec<_> =
        (0..count).map(|i| data_payload(u8::try_from(i % 200).unwrap(), len + i)).collect();
    let sent_by_server: Vec<_> = (0..count)
        .map(|i| data_payload(u8::try_from(i % 200).unwrap() + 50, len + 2 * i))
        .collect();
    for p in &sent_by_client {
        pair.client.send_payload(p).unwrap();
    }
    for p in &sent_by_server {
        pair.server.send_payload(p).unwrap();
    }
    pair.drive();
    let got_by_server: Vec<_> = pair.server_payloads().drain(..).collect();
    let got_by_client: Vec<_> = pair.client_payloads().drain(..).collect();
    assert_eq!(got_by_server, sent_by_client, "client to server");
    assert_eq!(got_by_client, sent_by_server, "server to client");
}

/// How many rekeys (non-initial key exchanges) completed on each side: (client, server).
pub(super) fn rekeys(pair: &Pair) -> (usize, usize) {
    let count = |events: &[Event]| {
        events.iter().filter(|e| matches!(e, Event::KexCompleted { initial: false })).count()
    };
    (count(pair.client_events()), count(pair.server_events()))
}

/// Asserts that `side` failed with `error`, and the peer received a DISCONNECT with the
/// error's reason.
pub(super) fn assert_failed(pair: &Pair, side_is_client: bool, error: &Error) {
    let (mine, theirs) = if side_is_client {
        (pair.client_error(), pair.server_error())
    } else {
        (pair.server_error(), pair.client_error())
    };
    assert_eq!(mine, Some(error), "the failing side's error");
    let reason = error.disconnect_reason().unwrap();
    match theirs {
        Some(Error::DisconnectReceived { reason: got, .. }) => assert_eq!(*got, reason),
        other => panic!("peer should have received DISCONNECT {reason}, got {other:?}"),
    }
}

/// A transport driven by hand: the test plays the peer with raw bytes.
pub(super) struct Scripted {
    pub(super) transport: Transport,
    now: Instant,
}

impl Scripted {
    /// A client transport with the default config.
    pub(super) fn client() -> Self {
        Self::client_with(client_config())
    }

    /// A client transport with `config`.
    pub(super) fn client_with(config: ClientConfig) -> Self {
        let transport =
            Transport::client(Arc::new(config), Box::new(SeededRandom::new(7))).unwrap();
        Self { transport, now: Instant::now() }
    }

    /// A server transport with the suite's server config.
    pub(super) fn server() -> Self {
        Self::server_with(server_config())
    }

    /// A server transport with `config`.
    pub(super) fn server_with(config: ServerConfig) -> Self {
        let transport =
            Transport::server(Arc::new(config), Box::new(SeededRandom::new(8))).unwrap();
        Self { transport, now: Instant::now() }
    }

    /// Feeds `input` in chunks of `chunk` bytes (all at once for `None`), polling payloads and
    /// events between chunks; returns the error the transport ended with, if any.
    pub(super) fn feed(&mut self, input: &[u8], chunk: Option<usize>) -> Option<Error> {
        let size = chunk.unwrap_or(input.len()).max(1);
        for piece in input.chunks(size) {
            let _ = self.transport.handle_input(self.now, piece);
            let mut buf = Vec::new();
            while self.transport.poll_payload(&mut buf).is_some() {}
        }
        self.error()
    }

    /// The error of the `Disconnected` event, if the connection ended (other events are
    /// left in place).
    pub(super) fn error(&mut self) -> Option<Error> {
        let mut found = None;
        while let Some(e) = self.transport.poll_event() {
            if let Event::Disconnected { error, .. } = e {
                found = Some(error);
            }
        }
        found
    }

    /// Everything the transport wrote so far.
    pub(super) fn output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.transport.poll_transmit(&mut out);
        out
    }
}

/// Runs a fresh scripted transport per chunking over `input` and asserts every chunking ends
/// the same way; returns that error and the output of the all-at-once run.
pub(super) fn feed_all_ways(make: impl Fn() -> Scripted, input: &[u8]) -> (Option<Error>, Vec<u8>) {
    let mut first = None;
    for chunk in CHUNKINGS {
        let mut s = make();
        let error = s.feed(input, chunk);
        let output = s.output();
        match &first {
            None => first = Some((error, output)),
            Some((want, _)) => assert_eq!(&error, want, "chunk size {chunk:?}"),
        }
    }
    first.unwrap()
}

/// The identification line and the payloads of the plaintext packets in `output` (what a
/// transport sends before its first NEWKEYS).
pub(super) fn plain_output(output: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let lf = output.iter().position(|&b| b == b'\n').unwrap();
    let line = output[..lf].strip_suffix(b"\r").unwrap().to_vec();
    let mut rest = &output[lf + 1..];
    let mut payloads = Vec::new();
    while rest.len() >= 5 {
        let len = usize::try_from(u32::from_be_bytes(rest[..4].try_into().unwrap())).unwrap();
        let padding = usize::from(rest[4]);
        payloads.push(rest[5..4 + len - padding].to_vec());
        rest = &rest[4 + len..];
    }
    (line, payloads)
}

/// The reason of the plaintext DISCONNECT in `output`, if there is one.
pub(super) fn plain_disconnect_reason(output: &[u8]) -> Option<DisconnectReason> {
    plain_output(output).1.iter().find(|p| p.first() == Some(&MessageType::DISCONNECT.0)).map(|p| {
        let mut r = Reader::new(&p[1..]);
        DisconnectReason(r.read_u32().unwrap())
    })
}

/// A valid client identification line, CR LF included.
pub(super) const CLIENT_LINE: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n";

/// A valid server identification line, CR LF included.
pub(super) const SERVER_LINE: &[u8] = b"SSH-2.0-OpenSSH_9.2p1\r\n";

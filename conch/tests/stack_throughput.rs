//! The whole stack's channel data path through the public API: a client and a server stack
//! back to back in one thread, logged in with a password, moving channel data one way.
//!
//! This binary counts every allocation (through `stats_alloc`), so it holds one test that runs
//! by default (no allocation per packet, connection → transport → wire and back, once buffers
//! have grown) and one benchmark:
//!
//! ```text
//! cargo test --release -p twine-conch --test stack_throughput -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use twine_conch::connection::msgs::ChannelKind;
use twine_conch::connection::{self, ChannelId, Event as ChannelEvent, Stream};
use twine_conch::crypto::algorithms::Category;
use twine_conch::crypto::OsRandom;
use twine_conch::keys::PrivateKey;
use twine_conch::stack::{
    ClientEvent, ClientStack, ClientStackConfig, ServerEvent, ServerStack, ServerStackConfig,
};
use twine_conch::transport::{self, Event as TransportEvent};
use twine_conch::userauth::{self, Attempt, Decision, Password, PasswordAnswer};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Two stacks back to back, with the buffers the caller reuses.
struct Link {
    client: ClientStack,
    server: ServerStack<()>,
    wire: Vec<u8>,
    read: Vec<u8>,
    now: Instant,
    channels: Option<(ChannelId, ChannelId)>,
}

impl Link {
    /// Two stacks with `cipher` (and `mac`), logged in, with a session open.
    fn established(cipher: &str, mac: Option<&str>) -> Self {
        let mut client = transport::ClientConfig::default();
        client.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
        client.algorithms.configure(Category::Cipher, cipher).unwrap();
        if let Some(mac) = mac {
            client.algorithms.configure(Category::Mac, mac).unwrap();
        }
        let key = PrivateKey::ed25519_from_seed(&[7; 32]).expect("seed");
        let server = transport::ServerConfig::new(vec![Arc::new(key)]);
        let mut auth = userauth::ServerConfig::new([1; 32]);
        auth.failure_delay = userauth::FailureDelay::dangerous_none();
        let server = ServerStackConfig::new(server, auth, connection::Config::default()).unwrap();
        let client = ClientStackConfig::new(
            client,
            userauth::ClientConfig::new(),
            connection::Config::default(),
        )
        .unwrap();
        let mut link = Self {
            client: ClientStack::new(Arc::new(client), "alice", Box::new(OsRandom::new())).unwrap(),
            server: ServerStack::new(Arc::new(server), Box::new(OsRandom::new())).unwrap(),
            wire: Vec::new(),
            read: vec![0; 64 * 1024],
            now: Instant::now(),
            channels: None,
        };
        for _ in 0..20 {
            link.pump();
        }
        assert!(link.client.is_authenticated() && link.server.is_authenticated());
        let client_id =
            link.client.connection_mut().unwrap().open_channel(ChannelKind::Session).unwrap();
        for _ in 0..5 {
            link.pump();
        }
        let server_id = link.channels.map(|(_, s)| s).expect("the server accepted the session");
        link.channels = Some((client_id, server_id));
        link
    }

    /// Moves bytes both ways once, answers questions, and reads what arrived.
    fn pump(&mut self) {
        self.client.poll_transmit(self.now, &mut self.wire);
        self.server.handle_input(self.now, &self.wire).expect("server input");
        self.wire.clear();
        while let Some(event) = self.server.poll_event() {
            match event {
                ServerEvent::Auth(userauth::ServerEvent::AuthRequested { id, attempt, .. }) => {
                    let decision = match attempt {
                        Attempt::Password { .. } => Decision::Accept(()),
                        _ => Decision::Reject,
                    };
                    self.server.auth_decided(self.now, id, decision).unwrap();
                }
                ServerEvent::Connection(ChannelEvent::ChannelOpenRequested { id, .. }) => {
                    self.server.connection_mut().unwrap().accept_channel(id).unwrap();
                    self.channels = Some((id, id));
                }
                ServerEvent::Closed { error, .. } => panic!("server closed: {error:?}"),
                _ => {}
            }
        }
        self.server.poll_transmit(self.now, &mut self.wire);
        self.client.handle_input(self.now, &self.wire).expect("client input");
        self.wire.clear();
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Transport(TransportEvent::HostKeyReceived { .. }) => {
                    self.client.host_key_decided(self.now, true).unwrap();
                }
                ClientEvent::Auth(userauth::ClientEvent::PasswordRequested { .. }) => {
                    let answer = PasswordAnswer::Password(Password::from("pw"));
                    self.client.userauth_mut().unwrap().password_ready(Some(answer)).unwrap();
                }
                ClientEvent::Connection(ChannelEvent::DataReceived { id, stream }) => {
                    let connection = self.client.connection_mut().unwrap();
                    while connection.recv(id, stream, &mut self.read).unwrap() > 0 {}
                }
                ClientEvent::Closed { error, .. } => panic!("client closed: {error:?}"),
                _ => {}
            }
        }
    }

    /// Sends `data` from the server's channel and pumps until the client has read it all:
    /// through the connection layer's output queue, or framed straight into the transport
    /// (`direct`, `ServerStack::send_channel_data`).
    fn send(&mut self, data: &[u8], direct: bool) {
        let (client_id, server_id) = self.channels.unwrap();
        let mut sent = 0;
        for _ in 0..1000 {
            if sent < data.len() {
                let rest = &data[sent..];
                sent += if direct {
                    self.server.send_channel_data(server_id, None, rest).unwrap()
                } else {
                    self.server.connection_mut().unwrap().send_data(server_id, rest).unwrap()
                };
            }
            self.pump();
            let pending = self.client.connection().unwrap().buffered(client_id, Stream::Data);
            if sent == data.len() && pending == 0 {
                return;
            }
        }
        panic!("the data never arrived");
    }
}

/// Once buffers have grown to their working size, channel data allocates nothing per packet on
/// its way from one stack's connection layer (through its output queue, or framed straight into
/// the transport) through both transports into the other's channel buffer, and back out to the
/// reader, for AEAD ciphers and for CTR with a MAC.
#[test]
fn steady_state_channel_data_allocates_nothing_per_packet() {
    for (cipher, mac) in [
        ("chacha20-poly1305@openssh.com", None),
        ("aes128-gcm@openssh.com", None),
        ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
    ] {
        for direct in [false, true] {
            let mut link = Link::established(cipher, mac);
            let data = vec![0x5a; 16 * 1024];
            for _ in 0..300 {
                link.send(&data, direct);
            }
            let region = Region::new(GLOBAL);
            for _ in 0..300 {
                link.send(&data, direct);
            }
            let stats = region.change();
            assert_eq!(stats.allocations, 0, "{cipher}, direct {direct}: {stats:?}");
        }
    }
}

/// Throughput of the whole stack, one way, one thread (both ends' work counted).
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn benchmark_channel_throughput() {
    for (cipher, mac) in [
        ("chacha20-poly1305@openssh.com", None),
        ("aes128-gcm@openssh.com", None),
        ("aes256-gcm@openssh.com", None),
        ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
    ] {
        let mut link = Link::established(cipher, mac);
        let data = vec![0x5a; 256 * 1024];
        let rounds = 1024;
        let start = Instant::now();
        for _ in 0..rounds {
            link.send(&data, true);
        }
        let elapsed = start.elapsed();
        let mib = (rounds * data.len()) as f64 / (1024.0 * 1024.0);
        println!(
            "stack {cipher:<32} {:>8.1} MiB/s ({mib} MiB in {elapsed:?})",
            mib / elapsed.as_secs_f64()
        );
    }
}

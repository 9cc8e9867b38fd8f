//! The transport's hot path through the public API: a client and a server transport back to
//! back in one thread, moving encrypted payloads one way.
//!
//! This binary counts every allocation (through `stats_alloc`), so it holds one test that
//! runs by default (no allocation per packet once buffers have grown) and one benchmark:
//!
//! ```text
//! cargo test --release -p twine-conch --test transport_throughput -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use twine_conch::crypto::algorithms::Category;
use twine_conch::crypto::OsRandom;
use twine_conch::keys::PrivateKey;
use twine_conch::transport::{ClientConfig, Event, ServerConfig, Transport};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A payload the size of a full OpenSSH channel data packet.
const PAYLOAD_LEN: usize = 32 * 1024;

/// Two transports back to back, with the buffers the caller reuses.
struct Link {
    client: Transport,
    server: Transport,
    wire: Vec<u8>,
    payload: Vec<u8>,
    now: Instant,
}

impl Link {
    /// A client and server with `cipher` (and `mac`), through their handshake.
    fn established(cipher: &str, mac: Option<&str>) -> Self {
        let mut client = ClientConfig::default();
        client.algorithms.configure(Category::Kex, "curve25519-sha256").unwrap();
        client.algorithms.configure(Category::Cipher, cipher).unwrap();
        if let Some(mac) = mac {
            client.algorithms.configure(Category::Mac, mac).unwrap();
        }
        let key = PrivateKey::ed25519_from_seed(&[7; 32]).expect("seed");
        let server = ServerConfig::new(vec![Arc::new(key)]);
        let mut link = Self {
            client: Transport::client(Arc::new(client), Box::new(OsRandom::new())).expect("client"),
            server: Transport::server(Arc::new(server), Box::new(OsRandom::new())).expect("server"),
            wire: Vec::new(),
            payload: Vec::new(),
            now: Instant::now(),
        };
        for _ in 0..20 {
            link.pump();
        }
        assert!(link.client.is_established() && link.server.is_established());
        link
    }

    /// Moves bytes both ways once and drains payloads and events.
    fn pump(&mut self) {
        self.client.poll_transmit(&mut self.wire);
        self.server.handle_input(self.now, &self.wire).expect("server input");
        self.wire.clear();
        while self.server.poll_payload(&mut self.payload).is_some() {}
        while self.server.poll_event().is_some() {}
        self.server.poll_transmit(&mut self.wire);
        self.client.handle_input(self.now, &self.wire).expect("client input");
        self.wire.clear();
        while self.client.poll_payload(&mut self.payload).is_some() {}
        while let Some(event) = self.client.poll_event() {
            if let Event::HostKeyReceived { .. } = event {
                self.client.host_key_decided(true).expect("decision");
            }
        }
    }

    /// Sends one payload from client to server and takes it out on the other side (running
    /// a rekey first if a limit started one).
    fn send_one(&mut self, data: &[u8]) {
        self.client.send_payload(data).expect("send");
        for _ in 0..20 {
            self.client.poll_transmit(&mut self.wire);
            self.server.handle_input(self.now, &self.wire).expect("input");
            self.wire.clear();
            if let Some(incoming) = self.server.poll_payload(&mut self.payload) {
                assert_eq!(incoming.msg_type.0, data[0]);
                return;
            }
            while self.server.poll_event().is_some() {}
            self.server.poll_transmit(&mut self.wire);
            self.client.handle_input(self.now, &self.wire).expect("client input");
            self.wire.clear();
            while self.client.poll_payload(&mut self.payload).is_some() {}
            while self.client.poll_event().is_some() {}
        }
        panic!("the payload never arrived");
    }
}

/// Once buffers have grown to their working size, sending, sealing, opening and handing up
/// a payload allocates nothing, for AEAD ciphers and for CTR with EtM and classic MACs.
#[test]
fn steady_state_transfer_allocates_nothing_per_packet() {
    for (cipher, mac) in [
        ("aes128-gcm@openssh.com", None),
        ("chacha20-poly1305@openssh.com", None),
        ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
        ("aes256-ctr", Some("hmac-sha2-512")),
    ] {
        let mut link = Link::established(cipher, mac);
        // Small payloads keep this quick in debug builds; the path is the same.
        let data = [&[94u8][..], &[0x5a; 4095]].concat();
        for _ in 0..50 {
            link.send_one(&data);
        }
        let region = Region::new(GLOBAL);
        for _ in 0..1000 {
            link.send_one(&data);
        }
        let stats = region.change();
        // The count is global: the test harness's own thread may allocate a few times while
        // this runs (with --test-threads 1 the count is 0). One allocation per packet would
        // show as 1000 or more.
        let count = stats.allocations + stats.reallocations;
        assert!(count < 16, "{cipher} {mac:?}: {stats:?} over 1000 packets");
    }
}

/// Prints the encrypted payload throughput through one client and one server transport on
/// one core (seal and open both counted), for AES-128-GCM and ChaCha20-Poly1305.
#[test]
#[ignore = "a benchmark; run in release mode with --ignored --nocapture"]
fn measures_encrypted_throughput() {
    let total: usize = 1 << 30;
    for cipher in ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"] {
        let mut link = Link::established(cipher, None);
        let data = [&[94u8][..], &[0x5a; PAYLOAD_LEN - 1]].concat();
        let packets = total / PAYLOAD_LEN;
        let start = Instant::now();
        for _ in 0..packets {
            link.send_one(&data);
        }
        let seconds = start.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let mb_per_s = (packets * PAYLOAD_LEN) as f64 / seconds / 1e6;
        println!(
            "{cipher}: {} MiB in {seconds:.3} s = {mb_per_s:.0} MB/s \
             ({packets} payloads of {PAYLOAD_LEN} bytes)",
            total >> 20
        );
    }
}

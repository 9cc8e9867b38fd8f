//! Key re-exchange: started by either side, by bytes, packets and time, with payloads queued
//! meanwhile.

use std::time::Duration;

use super::util::{client_config, data_payload, exchange_data, rekeys, server_config, CHUNKINGS};
use crate::error::LocalMisuse;
use crate::testing::Pair;
use crate::transport::{Event, RekeyLimits, MAX_PACKETS_PER_KEY};

/// Either side can start a rekey; the session id stays, and data flows before, during and
/// after, in any chunking.
#[test]
fn either_side_can_rekey_and_data_flows_throughout() {
    for chunk in CHUNKINGS {
        let mut pair = Pair::new(client_config(), server_config());
        pair.set_chunk_size(chunk);
        pair.handshake();
        let session_id = pair.client.session_id().unwrap().to_vec();
        pair.client.rekey(pair.time).unwrap();
        exchange_data(&mut pair, 4, 500);
        pair.server.rekey(pair.time).unwrap();
        exchange_data(&mut pair, 4, 500);
        assert_eq!(rekeys(&pair), (2, 2));
        assert_eq!(pair.client.session_id(), Some(&session_id[..]));
        assert_eq!(pair.server.session_id(), Some(&session_id[..]));
        let asked = pair
            .client_events()
            .iter()
            .filter(|e| matches!(e, Event::HostKeyReceived { .. }))
            .count();
        assert_eq!(asked, 1, "a rekey does not ask about the host key again");
    }
}

/// Both sides starting a rekey at once run a single key exchange.
#[test]
fn simultaneous_rekeys_make_one_key_exchange() {
    let mut pair = Pair::new(client_config(), server_config());
    pair.handshake();
    pair.client.rekey(pair.time).unwrap();
    pair.server.rekey(pair.time).unwrap();
    pair.client.rekey(pair.time).unwrap();
    exchange_data(&mut pair, 2, 100);
    assert_eq!(rekeys(&pair), (1, 1));
}

/// A rekey cannot start before the first key exchange.
#[test]
fn rekey_before_the_first_key_exchange_is_refused() {
    let mut pair = Pair::new(client_config(), server_config());
    assert_eq!(pair.client.rekey(pair.time), Err(LocalMisuse::NotReady.into()));
}

/// "User authentication succeeded" on both sides, which lets the limits start rekeys.
fn authenticated(pair: &mut Pair) {
    pair.client.enable_delayed_compression();
    pair.server.enable_delayed_compression();
}

/// Before user authentication the limits start nothing, as in OpenSSH; explicit rekeys still
/// work.
#[test]
fn rekey_limits_wait_for_authentication() {
    let mut client = client_config();
    client.rekey.bytes = Some(16 * 1024);
    client.rekey.packets = 5;
    let mut pair = Pair::new(client, server_config());
    pair.handshake();
    exchange_data(&mut pair, 20, 2000);
    assert_eq!(rekeys(&pair), (0, 0));
    authenticated(&mut pair);
    exchange_data(&mut pair, 20, 2000);
    assert!(rekeys(&pair).0 >= 2);
}

/// A byte limit makes the sender rekey on its own, repeatedly, without losing data.
#[test]
fn the_byte_limit_starts_rekeys() {
    let mut client = client_config();
    client.rekey.bytes = Some(64 * 1024);
    let mut pair = Pair::new(client, server_config());
    pair.handshake();
    authenticated(&mut pair);
    for _ in 0..10 {
        exchange_data(&mut pair, 10, 3000);
    }
    let (client_rekeys, server_rekeys) = rekeys(&pair);
    assert!(client_rekeys >= 4, "{client_rekeys} rekeys after ~600 KiB");
    assert_eq!(client_rekeys, server_rekeys);
}

/// A packet limit makes the receiver rekey too: the server counts the packets it receives.
#[test]
fn the_packet_limit_starts_rekeys() {
    let mut server = server_config();
    server.rekey.packets = 25;
    let mut pair = Pair::new(client_config(), server);
    pair.handshake();
    authenticated(&mut pair);
    for _ in 0..10 {
        exchange_data(&mut pair, 10, 10);
    }
    let (client_rekeys, server_rekeys) = rekeys(&pair);
    assert!(server_rekeys >= 3, "{server_rekeys}");
    assert_eq!(client_rekeys, server_rekeys);
    assert_eq!(RekeyLimits::default().packets, MAX_PACKETS_PER_KEY);
    assert_eq!(MAX_PACKETS_PER_KEY, 1 << 31);
}

/// A time limit arms a timer; when virtual time reaches it, the side rekeys and re-arms.
#[test]
fn the_time_limit_starts_rekeys() {
    let hour = Duration::from_secs(3600);
    let mut client = client_config();
    client.rekey.time = Some(hour);
    let mut pair = Pair::new(client, server_config());
    pair.handshake();
    let start = pair.time;
    assert_eq!(pair.client.poll_timeout(), None, "no timer before authentication");
    authenticated(&mut pair);
    assert_eq!(pair.client.poll_timeout(), Some(start + hour));
    assert_eq!(pair.server.poll_timeout(), None);
    pair.advance(hour - Duration::from_secs(1));
    pair.drive();
    assert_eq!(rekeys(&pair), (0, 0));
    pair.advance(Duration::from_secs(1));
    pair.drive();
    assert_eq!(rekeys(&pair), (1, 1));
    assert_eq!(pair.client.poll_timeout(), Some(start + 2 * hour));
    exchange_data(&mut pair, 2, 10);
}

/// Payloads sent while a rekey runs are queued up to the bound; beyond it the sender is
/// told to wait, and after the rekey everything queued arrives in order.
#[test]
fn payloads_queue_during_a_rekey_up_to_the_bound() {
    let mut client = client_config();
    client.limits.max_send_queue = 10_000;
    let mut pair = Pair::new(client, server_config());
    pair.handshake();
    pair.client.rekey(pair.time).unwrap();
    let mut sent = Vec::new();
    while pair.client.can_send() {
        let p = data_payload(u8::try_from(sent.len() % 200).unwrap(), 1000);
        pair.client.send_payload(&p).unwrap();
        sent.push(p);
    }
    assert!(pair.client.send_queue_len() >= 10_000);
    assert_eq!(
        pair.client.send_payload(&data_payload(0, 10)),
        Err(LocalMisuse::SendQueueFull.into())
    );
    pair.drive();
    assert!(pair.client.can_send());
    let got: Vec<_> = pair.server_payloads().drain(..).collect();
    assert_eq!(got, sent);
    assert_eq!(rekeys(&pair), (1, 1));
}

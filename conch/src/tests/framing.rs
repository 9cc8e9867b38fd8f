//! The binary packet protocol under attack: bad lengths, bad padding, flipped bits,
//! truncation, for every cipher and MAC.

use super::handshake::cipher_mac_pairs;
use super::util::{
    assert_failed, client_config_with, data_payload, exchange_data, feed_all_ways,
    plain_disconnect_reason, server_config, Scripted, CLIENT_LINE,
};
use crate::error::{Error, Initiator};
use crate::keys::SignatureAlgorithm;
use crate::testing::fixtures::plain_packet;
use crate::testing::Pair;
use crate::transport::packet::Tamper;
use crate::transport::Event;
use crate::wire::{DisconnectReason, InvalidMessage};

/// The lengths the suite sends where a packet length belongs.
const BAD_LENGTHS: [u32; 4] = [0, 5, 1 << 31, 256 * 1024 + 1];

/// An established pair with one cipher and MAC (over curve25519, the fastest exchange).
fn established(cipher: &str, mac: Option<&str>, chunk: Option<usize>) -> Pair {
    let client = client_config_with("curve25519-sha256", SignatureAlgorithm::Ed25519, cipher, mac);
    let mut pair = Pair::new(client, server_config());
    pair.set_chunk_size(chunk);
    pair.handshake();
    pair
}

/// Before any keys, lengths 0, 5, 2^31 and 256 KiB + 1 end the connection with
/// PROTOCOL_ERROR, whatever the chunking.
#[test]
fn rejects_bad_lengths_in_plaintext_packets() {
    for len in BAD_LENGTHS {
        let mut input = CLIENT_LINE.to_vec();
        input.extend_from_slice(&len.to_be_bytes());
        input.extend_from_slice(&[4; 12]);
        let (error, output) = feed_all_ways(Scripted::server, &input);
        assert_eq!(error, Some(InvalidMessage::BadPacketLength.into()), "length {len}");
        assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::PROTOCOL_ERROR));
    }
}

/// Before any keys, padding under 4 bytes or longer than the packet ends the connection with
/// PROTOCOL_ERROR.
#[test]
fn rejects_bad_padding_in_plaintext_packets() {
    for padding in [0u8, 3, 12, 200] {
        let mut input = CLIENT_LINE.to_vec();
        input.extend_from_slice(&12u32.to_be_bytes());
        input.push(padding);
        input.extend_from_slice(&[20; 11]);
        let (error, output) = feed_all_ways(Scripted::server, &input);
        assert_eq!(error, Some(InvalidMessage::BadPadding.into()), "padding {padding}");
        assert_eq!(plain_disconnect_reason(&output), Some(DisconnectReason::PROTOCOL_ERROR));
    }
}

/// An empty payload (no message number) is a protocol error.
#[test]
fn rejects_an_empty_payload() {
    let input = [CLIENT_LINE, &plain_packet(&[])].concat();
    let (error, _) = feed_all_ways(Scripted::server, &input);
    assert_eq!(error, Some(InvalidMessage::EmptyMessage.into()));
}

/// Under every cipher and MAC, a sealed packet whose length field says 0, 5, 2^31 or
/// 256 KiB + 1 ends the connection with PROTOCOL_ERROR, checked before the body is awaited.
#[test]
fn rejects_bad_lengths_under_every_cipher_and_mac() {
    for (cipher, mac) in cipher_mac_pairs() {
        for len in BAD_LENGTHS {
            let mut pair = established(cipher, mac, None);
            pair.client.tamper_next_packet(Tamper { packet_len: Some(len), padding_len: None });
            pair.client.send_payload(&data_payload(1, 40)).unwrap();
            pair.drive();
            let what = format!("{cipher} {mac:?} length {len}");
            assert_eq!(
                pair.server_error(),
                Some(&InvalidMessage::BadPacketLength.into()),
                "{what}"
            );
            assert_failed(&pair, false, &InvalidMessage::BadPacketLength.into());
        }
    }
}

/// Under every cipher and MAC, a sealed packet with padding under 4 bytes or longer than the
/// packet ends the connection with PROTOCOL_ERROR.
#[test]
fn rejects_bad_padding_under_every_cipher_and_mac() {
    for (cipher, mac) in cipher_mac_pairs() {
        for padding in [3u8, 255] {
            let mut pair = established(cipher, mac, None);
            pair.client.tamper_next_packet(Tamper { packet_len: None, padding_len: Some(padding) });
            pair.client.send_payload(&data_payload(1, 40)).unwrap();
            pair.drive();
            assert_failed(&pair, false, &InvalidMessage::BadPadding.into());
        }
    }
}

/// One flipped bit anywhere after the length field of a sealed packet (body, padding or tag)
/// fails its MAC: the receiver disconnects with MAC_ERROR, for every cipher and MAC, in
/// both directions, fed at once and one byte at a time.
#[test]
fn a_flipped_bit_fails_the_mac_under_every_cipher_and_mac() {
    for (cipher, mac) in cipher_mac_pairs() {
        for chunk in [None, Some(1)] {
            for from_client in [true, false] {
                let mut pair = established(cipher, mac, chunk);
                let (sender, link) = if from_client {
                    (&mut pair.client, &mut pair.to_server)
                } else {
                    (&mut pair.server, &mut pair.to_client)
                };
                sender.send_payload(&data_payload(3, 100)).unwrap();
                let mut wire = Vec::new();
                sender.poll_transmit(&mut wire);
                let start = link.position();
                let offset = match (chunk, from_client) {
                    (None, true) => 4,
                    (None, false) => wire.len() / 2,
                    (Some(_), true) => wire.len() - 1,
                    (Some(_), false) => 9,
                };
                link.flip_bit(start + u64::try_from(offset).unwrap(), 0x10);
                link.inject(&wire);
                pair.drive();
                let what = format!("{cipher} {mac:?} chunk {chunk:?} offset {offset}");
                let mac_error: Error = InvalidMessage::MacMismatch.into();
                assert_eq!(mac_error.disconnect_reason(), Some(DisconnectReason::MAC_ERROR));
                let failed = if from_client { pair.server_error() } else { pair.client_error() };
                assert_eq!(failed, Some(&mac_error), "{what}");
                assert_failed(&pair, !from_client, &mac_error);
            }
        }
    }
}

/// A stream that ends inside a packet is reported as truncated, caused by the peer.
#[test]
fn a_stream_cut_inside_a_packet_is_truncated() {
    let mut pair = established("aes128-gcm@openssh.com", None, None);
    let cut = pair.to_server.position() + 10;
    pair.to_server.truncate_at(cut);
    pair.client.send_payload(&data_payload(1, 100)).unwrap();
    pair.drive();
    assert!(pair.server_events().contains(&Event::Disconnected {
        error: InvalidMessage::Truncated.into(),
        initiator: Initiator::Remote,
    }));
}

/// A stream that ends between packets is a plain close by the peer.
#[test]
fn a_stream_cut_between_packets_is_a_close() {
    let mut pair = established("aes128-gcm@openssh.com", None, None);
    let cut = pair.to_server.position();
    pair.to_server.truncate_at(cut);
    pair.client.send_payload(&data_payload(1, 100)).unwrap();
    pair.drive();
    assert!(pair.server_events().contains(&Event::Disconnected {
        error: Error::ConnectionClosed,
        initiator: Initiator::Remote,
    }));
}

/// Dropping the rest of a direction loses data silently: no error, and the other direction
/// still works.
#[test]
fn a_direction_that_goes_silent_loses_data_without_errors() {
    let mut pair = established("chacha20-poly1305@openssh.com", None, None);
    pair.to_server.drop_rest();
    pair.client.send_payload(&data_payload(1, 100)).unwrap();
    pair.drive();
    assert!(pair.server_payloads().is_empty());
    assert_eq!(pair.server_error(), None);
    pair.server.send_payload(&data_payload(2, 100)).unwrap();
    pair.drive();
    assert_eq!(pair.client_payloads().pop_front(), Some(data_payload(2, 100)));
}

/// Large payloads in both directions, fed in odd chunk sizes, arrive intact.
#[test]
fn large_payloads_arrive_intact_in_any_chunking() {
    for chunk in [None, Some(7), Some(1000)] {
        let mut pair = established("aes256-ctr", Some("hmac-sha2-512-etm@openssh.com"), chunk);
        exchange_data(&mut pair, 3, 100_000);
    }
}

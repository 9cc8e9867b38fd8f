//! `chacha20-poly1305@openssh.com` (OpenSSH `PROTOCOL.chacha20poly1305`), via `ring`.
//!
//! The 64-byte key is split into K_2 (first half: payload and Poly1305 key) and K_1 (second
//! half: the length). The nonce is the packet sequence number; the length is encrypted on its
//! own so it can be read before the packet is complete, and the tag covers the encrypted length
//! and the ciphertext.

use ring::aead::chacha20_poly1305_openssh::{OpeningKey, SealingKey, KEY_LEN, TAG_LEN};

use super::{fail_closed, read_u32};
use crate::crypto::{CryptoError, PacketOpener, PacketSealer};

const BLOCK_SIZE: usize = 8;

pub(super) struct ChaChaSealer {
    key: SealingKey,
}

impl ChaChaSealer {
    pub(super) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { key: SealingKey::new(key) })
    }
}

impl PacketSealer for ChaChaSealer {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn length_excluded_from_padding(&self) -> bool {
        true
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        let Ok(tag_out) = <&mut [u8; TAG_LEN]>::try_from(&mut *tag) else {
            return fail_closed(packet, tag);
        };
        if packet.len() < 4 {
            return fail_closed(packet, tag_out);
        }
        self.key.seal_in_place(seq, packet, tag_out);
    }
}

pub(super) struct ChaChaOpener {
    key: OpeningKey,
}

impl ChaChaOpener {
    pub(super) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { key: OpeningKey::new(key) })
    }
}

impl PacketOpener for ChaChaOpener {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn length_excluded_from_padding(&self) -> bool {
        true
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn length_prefix_len(&self) -> usize {
        4
    }

    /// Decrypts a copy: the encrypted length must stay in the buffer, since the tag covers it.
    fn decrypt_length(&mut self, seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        let encrypted = read_u32(head)?.to_be_bytes();
        Ok(u32::from_be_bytes(self.key.decrypt_packet_length(seq, encrypted)))
    }

    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| CryptoError::InvalidLength)?;
        let encrypted = read_u32(packet)?.to_be_bytes();
        self.key.open_in_place(seq, packet, tag).map_err(|_| CryptoError::AuthenticationFailed)?;
        // ring leaves the length encrypted; the contract is a fully decrypted packet.
        packet[..4].copy_from_slice(&self.key.decrypt_packet_length(seq, encrypted));
        Ok(())
    }
}

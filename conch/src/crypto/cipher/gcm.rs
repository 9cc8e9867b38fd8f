//! `aes128-gcm@openssh.com` and `aes256-gcm@openssh.com` (RFC 5647, as OpenSSH `PROTOCOL` §1.6
//! amends it), via `ring`.
//!
//! `packet_length` is sent in the clear as associated data. The 12-byte nonce is the IV from key
//! derivation: a 4-byte fixed field and an 8-byte invocation counter, which is incremented (mod
//! 2^64) after every packet (RFC 5647 §7.1), independently of the sequence number.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_128_GCM, AES_256_GCM};

use super::{fail_closed, read_u32};
use crate::crypto::{CryptoError, PacketOpener, PacketSealer};

const BLOCK_SIZE: usize = 16;
const TAG_LEN: usize = 16;

/// A key and its nonce sequence.
struct GcmState {
    key: LessSafeKey,
    fixed: [u8; 4],
    invocation: u64,
}

impl GcmState {
    fn new(key: &[u8], iv: &[u8]) -> Result<Self, CryptoError> {
        let algorithm = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return Err(CryptoError::InvalidKey),
        };
        let key = UnboundKey::new(algorithm, key).map_err(|_| CryptoError::InvalidKey)?;
        let (fixed, invocation) = iv.split_at_checked(4).ok_or(CryptoError::InvalidKey)?;
        let fixed = fixed.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let invocation = invocation.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { key: LessSafeKey::new(key), fixed, invocation: u64::from_be_bytes(invocation) })
    }

    /// The nonce for this packet; advances the invocation counter.
    fn next_nonce(&mut self) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.fixed);
        nonce[4..].copy_from_slice(&self.invocation.to_be_bytes());
        self.invocation = self.invocation.wrapping_add(1);
        Nonce::assume_unique_for_key(nonce)
    }
}

pub(super) struct GcmSealer(GcmState);

impl GcmSealer {
    pub(super) fn new(key: &[u8], iv: &[u8]) -> Result<Self, CryptoError> {
        GcmState::new(key, iv).map(Self)
    }
}

impl PacketSealer for GcmSealer {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn length_excluded_from_padding(&self) -> bool {
        true
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn seal(&mut self, _seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        if packet.len() < 4 || tag.len() != TAG_LEN {
            return fail_closed(packet, tag);
        }
        let nonce = self.0.next_nonce();
        let (length, body) = packet.split_at_mut(4);
        match self.0.key.seal_in_place_separate_tag(nonce, Aad::from(&*length), body) {
            Ok(computed) => tag.copy_from_slice(computed.as_ref()),
            Err(_) => fail_closed(packet, tag),
        }
    }
}

pub(super) struct GcmOpener(GcmState);

impl GcmOpener {
    pub(super) fn new(key: &[u8], iv: &[u8]) -> Result<Self, CryptoError> {
        GcmState::new(key, iv).map(Self)
    }
}

impl PacketOpener for GcmOpener {
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

    fn decrypt_length(&mut self, _seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        read_u32(head)
    }

    fn open(&mut self, _seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        let tag = Tag::try_from(tag).map_err(|_| CryptoError::InvalidLength)?;
        if packet.len() < 4 {
            return Err(CryptoError::InvalidLength);
        }
        let nonce = self.0.next_nonce();
        let (length, body) = packet.split_at_mut(4);
        self.0
            .key
            .open_in_place_separate_tag(nonce, Aad::from(&*length), tag, body, 0..)
            .map_err(|_| CryptoError::AuthenticationFailed)?;
        Ok(())
    }
}

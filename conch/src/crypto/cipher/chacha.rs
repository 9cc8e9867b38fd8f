//! `chacha20-poly1305@openssh.com` (OpenSSH `PROTOCOL.chacha20poly1305`), from the `chacha20`
//! (original 64-bit nonce variant) and `poly1305` crates.
//!
//! The 64-byte key is split into K_2 (first half: payload and Poly1305 key) and K_1 (second
//! half: the length). The nonce is the packet sequence number as a big-endian `u64`; the length
//! is encrypted on its own with K_1 so it can be read before the packet is complete. K_2's
//! keystream block 0 is the packet's Poly1305 key and blocks 1 onwards encrypt the payload; the
//! tag covers the encrypted length and the ciphertext.
//!
//! Both crates pick their SIMD code when the process starts (AVX2 for Poly1305; AVX-512, AVX2
//! or SSE2 for ChaCha20 — the AVX-512 one is compiled in by `--cfg chacha20_avx512` in
//! `.cargo/config.toml`), so one portable binary runs the widest code the CPU has.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20Legacy;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{fail_closed, read_u32};
use crate::crypto::{CryptoError, PacketOpener, PacketSealer};

const BLOCK_SIZE: usize = 8;
const KEY_LEN: usize = 64;
const TAG_LEN: usize = 16;

/// K_2 (payload and Poly1305 key) and K_1 (length), zeroized on drop.
struct Keys {
    main: Zeroizing<[u8; 32]>,
    length: Zeroizing<[u8; 32]>,
}

impl Keys {
    fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let (main, length) = key.split_at(32);
        let mut keys = Self { main: Zeroizing::new([0; 32]), length: Zeroizing::new([0; 32]) };
        keys.main.copy_from_slice(main);
        keys.length.copy_from_slice(length);
        Ok(keys)
    }

    /// XORs the length's keystream (K_1, block 0) into `head`'s four bytes.
    fn crypt_length(&self, seq: u32, head: &mut [u8; 4]) {
        ChaCha20Legacy::new(&(*self.length).into(), &nonce(seq).into()).apply_keystream(head);
    }

    /// The payload's cipher positioned at block 1, and the Poly1305 instance keyed from block 0.
    fn payload(&self, seq: u32) -> (ChaCha20Legacy, Poly1305) {
        let mut cipher = ChaCha20Legacy::new(&(*self.main).into(), &nonce(seq).into());
        let mut block = Zeroizing::new([0u8; 64]);
        cipher.apply_keystream(&mut block[..]);
        let mut poly_key = Zeroizing::new([0u8; 32]);
        poly_key.copy_from_slice(&block[..32]);
        (cipher, Poly1305::new(&(*poly_key).into()))
    }
}

/// Poly1305 of `data`: the whole 16-byte blocks in one call, so the AVX2 backend takes them
/// four at a time (`compute_unpadded` feeds it one block per call), then the tail.
fn mac(mut poly: Poly1305, data: &[u8]) -> poly1305::Tag {
    let (blocks, tail) = data.split_at(data.len() / 16 * 16);
    poly.update_padded(blocks);
    poly.compute_unpadded(tail)
}

fn nonce(seq: u32) -> [u8; 8] {
    u64::from(seq).to_be_bytes()
}

pub(super) struct ChaChaSealer {
    keys: Keys,
}

impl ChaChaSealer {
    pub(super) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self { keys: Keys::new(key)? })
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
        if tag.len() != TAG_LEN {
            return fail_closed(packet, tag);
        }
        let Some((head, body)) = packet.split_first_chunk_mut::<4>() else {
            return fail_closed(packet, tag);
        };
        self.keys.crypt_length(seq, head);
        let (mut cipher, poly) = self.keys.payload(seq);
        cipher.apply_keystream(body);
        tag.copy_from_slice(&mac(poly, packet));
    }
}

pub(super) struct ChaChaOpener {
    keys: Keys,
}

impl ChaChaOpener {
    pub(super) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self { keys: Keys::new(key)? })
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
        let mut length = read_u32(head)?.to_be_bytes();
        self.keys.crypt_length(seq, &mut length);
        Ok(u32::from_be_bytes(length))
    }

    /// Checks the tag over the ciphertext first; only then decrypts, in place.
    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        if tag.len() != TAG_LEN {
            return Err(CryptoError::InvalidLength);
        }
        if packet.len() < 4 {
            return Err(CryptoError::InvalidLength);
        }
        let (mut cipher, poly) = self.keys.payload(seq);
        let expected = mac(poly, packet);
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(CryptoError::AuthenticationFailed);
        }
        let Some((head, body)) = packet.split_first_chunk_mut::<4>() else {
            return Err(CryptoError::InvalidLength);
        };
        self.keys.crypt_length(seq, head);
        cipher.apply_keystream(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blockwise_mac_equals_poly1305_over_the_whole_input_for_every_length_up_to_80() {
        let data: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(37)).collect();
        let key = [5u8; 32];
        for len in 0..=data.len() {
            let ours = mac(Poly1305::new(&key.into()), &data[..len]);
            let whole = Poly1305::new(&key.into()).compute_unpadded(&data[..len]);
            assert_eq!(ours, whole, "length {len}");
        }
    }
}

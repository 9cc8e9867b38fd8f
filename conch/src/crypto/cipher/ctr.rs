//! `aes128-ctr`, `aes192-ctr` and `aes256-ctr` (RFC 4344) with an HMAC, via the `aes` and `ctr`
//! crates. The whole 16-byte IV is one big-endian counter, as RFC 4344 §4 specifies.
//!
//! With a classic MAC the whole packet is encrypted and the MAC covers the plaintext: the
//! opener decrypts the first block to learn the length ([`PacketOpener::decrypt_length`]) and
//! the rest in [`PacketOpener::open`], then checks the MAC. With an EtM MAC `packet_length` is
//! in the clear, the keystream starts after it, and the MAC is checked before decrypting.

use aes::{Aes128, Aes192, Aes256};
use ctr::cipher::{KeyIvInit, StreamCipher};
use ctr::Ctr128BE;

use super::{fail_closed, read_u32};
use crate::crypto::mac::PacketMac;
use crate::crypto::{CryptoError, PacketOpener, PacketSealer};

const BLOCK_SIZE: usize = 16;

/// AES-CTR keystream for one of the three key sizes; the key schedules zeroize on drop.
enum AesCtr {
    Aes128(Ctr128BE<Aes128>),
    Aes192(Ctr128BE<Aes192>),
    Aes256(Ctr128BE<Aes256>),
}

impl AesCtr {
    fn new(key: &[u8], iv: &[u8]) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError::InvalidKey;
        Ok(match key.len() {
            16 => Self::Aes128(Ctr128BE::new_from_slices(key, iv).map_err(bad)?),
            24 => Self::Aes192(Ctr128BE::new_from_slices(key, iv).map_err(bad)?),
            32 => Self::Aes256(Ctr128BE::new_from_slices(key, iv).map_err(bad)?),
            _ => return Err(CryptoError::InvalidKey),
        })
    }

    fn apply(&mut self, data: &mut [u8]) {
        match self {
            Self::Aes128(c) => c.apply_keystream(data),
            Self::Aes192(c) => c.apply_keystream(data),
            Self::Aes256(c) => c.apply_keystream(data),
        }
    }
}

pub(super) struct CtrSealer {
    cipher: AesCtr,
    mac: PacketMac,
}

impl CtrSealer {
    pub(super) fn new(key: &[u8], iv: &[u8], mac: PacketMac) -> Result<Self, CryptoError> {
        Ok(Self { cipher: AesCtr::new(key, iv)?, mac })
    }
}

impl PacketSealer for CtrSealer {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn length_excluded_from_padding(&self) -> bool {
        self.mac.is_etm()
    }

    fn tag_len(&self) -> usize {
        self.mac.tag_len()
    }

    fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        if packet.len() < 4 || tag.len() != self.mac.tag_len() {
            return fail_closed(packet, tag);
        }
        if self.mac.is_etm() {
            self.cipher.apply(&mut packet[4..]);
            self.mac.sign(seq, packet, tag);
        } else {
            self.mac.sign(seq, packet, tag);
            self.cipher.apply(packet);
        }
    }
}

pub(super) struct CtrOpener {
    cipher: AesCtr,
    mac: PacketMac,
    /// Whether [`PacketOpener::decrypt_length`] has decrypted the first block of the packet
    /// now being received (classic MACs only).
    head_decrypted: bool,
}

impl CtrOpener {
    pub(super) fn new(key: &[u8], iv: &[u8], mac: PacketMac) -> Result<Self, CryptoError> {
        Ok(Self { cipher: AesCtr::new(key, iv)?, mac, head_decrypted: false })
    }
}

impl PacketOpener for CtrOpener {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn length_excluded_from_padding(&self) -> bool {
        self.mac.is_etm()
    }

    fn tag_len(&self) -> usize {
        self.mac.tag_len()
    }

    fn length_prefix_len(&self) -> usize {
        if self.mac.is_etm() {
            4
        } else {
            BLOCK_SIZE
        }
    }

    /// With a classic MAC, decrypts the first block in place, once: a second call for the same
    /// packet returns the length again without touching the keystream.
    fn decrypt_length(&mut self, _seq: u32, head: &mut [u8]) -> Result<u32, CryptoError> {
        if self.mac.is_etm() {
            return read_u32(head);
        }
        let block = head.get_mut(..BLOCK_SIZE).ok_or(CryptoError::InvalidLength)?;
        if !self.head_decrypted {
            self.cipher.apply(block);
            self.head_decrypted = true;
        }
        read_u32(block)
    }

    fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        if self.mac.is_etm() {
            if packet.len() < 4 {
                return Err(CryptoError::InvalidLength);
            }
            self.mac.verify(seq, packet, tag)?;
            self.cipher.apply(&mut packet[4..]);
            return Ok(());
        }
        let start = if self.head_decrypted { BLOCK_SIZE } else { 0 };
        self.head_decrypted = false;
        let rest = packet.get_mut(start..).ok_or(CryptoError::InvalidLength)?;
        self.cipher.apply(rest);
        self.mac.verify(seq, packet, tag)
    }
}

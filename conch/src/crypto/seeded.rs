//! A deterministic [`SecureRandom`] for tests and fuzzing.

use std::fmt;

use super::{CryptoError, HashAlgorithm, SecureRandom};

/// A deterministic generator: SHA-256 over `seed || counter`, one 32-byte block per counter
/// value. Two generators with the same seed produce the same bytes, which makes key exchanges
/// reproducible in tests. It is predictable by design: never use it to protect anything.
///
/// Available in this crate's tests and with the `testing` feature.
#[derive(Clone)]
pub struct SeededRandom {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRandom {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        Self { seed: bytes, counter: 0, block: [0; 32], used: 32 }
    }
}

impl SecureRandom for SeededRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for byte in dest {
            if self.used == self.block.len() {
                let digest =
                    HashAlgorithm::Sha256.digest(&[&self.seed, &self.counter.to_be_bytes()]);
                self.block.copy_from_slice(digest.as_ref());
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used]; // invariant: used < 32 after the refill above
            self.used += 1;
        }
        Ok(())
    }
}

impl fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededRandom").field("counter", &self.counter).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal seeds give equal streams however the requests are split; other seeds differ.
    #[test]
    fn equal_seeds_give_equal_streams_regardless_of_request_sizes() {
        let mut a = SeededRandom::new(7);
        let mut b = SeededRandom::new(7);
        let mut whole = [0u8; 100];
        a.fill(&mut whole).unwrap();
        let mut parts = [0u8; 100];
        for chunk in parts.chunks_mut(7) {
            b.fill(chunk).unwrap();
        }
        assert_eq!(whole, parts);
        let mut other = [0u8; 100];
        SeededRandom::new(8).fill(&mut other).unwrap();
        assert_ne!(whole, other);
    }
}

//! The test kit (feature `testing`): [`Pair`], a client and a server transport back to back in
//! memory with virtual time and fault injection; [`StackPair`], the same for whole stacks
//! (transport, user authentication, connection); [`SeededRandom`], a deterministic randomness
//! source; and [`fixtures`], host keys and hand-made packets.
//!
//! Nothing here is for production: [`SeededRandom`] is predictable by design.

pub mod fixtures;
mod pair;
mod stack_pair;

pub use pair::{Link, Pair};
pub use stack_pair::{Answerer, Decider, StackPair};

/// The deterministic generator the suite seeds every transport with (it lives beside the
/// real one in [`crate::crypto`]).
pub use crate::crypto::SeededRandom;

//! The back-to-back protocol suite: client and server state machines wired together in
//! memory ([`crate::testing::Pair`]), with virtual time, every algorithm combination, and
//! every error path we can provoke. It lives inside the crate so that it can look at internal
//! state where the public API shows too little.

mod conformance;
mod framing;
mod handshake;
mod kex_errors;
mod layers;
mod messages;
mod rekey;
mod stack;
mod strict_kex;
mod util;
mod version;

//! twine-conch: SSHv2 as a sans-IO core, and the adapters that bind it to twine's reactor.
//!
//! ```text
//!  wire        SSH encodings: uint32, string, mpint, name-list; packets; message numbers
//!  crypto      negotiated algorithms: key exchange, ciphers, MACs, compression, randomness
//!  keys        key types and files: OpenSSH keys, authorized_keys, known_hosts, fingerprints
//!  transport   RFC 4253: version exchange, KEXINIT, NEWKEYS, rekey, strict kex
//!  userauth    RFC 4252: state machines and the AuthBackend trait
//!  connection  RFC 4254: channels, windows, session requests, forwarding
//!  stack       the three layers composed: one sans-IO server or client per connection
//!  server      binds the state machines to the reactor; session backends
//!  client      binds the state machines to the reactor
//!  terminal    terminal applications: key decoding, drawing, line editor, REPL (sans-IO)
//! ```
//!
//! The six modules from `wire` to `connection` are pure state machines: bytes and commands in,
//! bytes and events out. They read no clock (time is an argument), open no socket, spawn nothing,
//! and take their randomness from an injected source. Only `server` and `client` touch the
//! reactor.
#![forbid(unsafe_code)]
#![cfg_attr(test, deny(warnings))]
#![doc(test(attr(deny(warnings))))]

pub mod agent;
pub mod client;
pub mod config;
pub mod connection;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod server;
pub mod stack;
pub mod terminal;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;
pub mod userauth;
pub mod wire;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use server::ServerConfig;

//! twine-core: the reactor framework under twine.
//!
//! ```text
//!  ┌──────────────────────────────────────────────────────────────────────────────┐
//!  │ your protocols        Protocol · LineProtocol · ProcessProtocol · Datagram…  │
//!  ├──────────────────────────────────────────────────────────────────────────────┤
//!  │ basic       LineReceiver (raw mode), StringReceiver (Int32, netstring)       │
//!  │ protocol    Protocol / Factory / ClientFactory / Transport / PushProducer    │
//!  │ defer       Deferred<T>: callback chain + Future;  threads: ThreadPool       │
//!  │ time        Scheduler (reactor and test Clock), DelayedCall, LoopingCall     │
//!  │ process     spawn_process over pipes or a pty, signals, reaping              │
//!  │ reactor     the mio loop: TCP, Unix, UDP, adopted fds, raw fds, signals,     │
//!  │             timers, call_from_thread, spawned futures                        │
//!  │ error       layered failures: that it failed, how (ErrorKind), the errno     │
//!  ├──────────────────────────────────────────────────────────────────────────────┤
//!  │ sys         the only unsafe code: pty ioctls, the child's pre-exec steps     │
//!  │ mio · nix · signal-hook                                                      │
//!  └──────────────────────────────────────────────────────────────────────────────┘
//!  testing    StringTransport, Clock, MemoryReactor, IoPump (feature "testing")
//! ```
//!
//! A protocol never sees a socket: the same protocol runs over TCP, a Unix socket, a pipe
//! pair, a pty, an SSH channel (twine-conch implements [`Transport`] for its channels), or a
//! [`testing::StringTransport`] in a unit test. Event handlers are named in the past tense
//! (`data_received`, `connection_lost`, `process_ended`), requests in the imperative (`write`,
//! `lose_connection`, `call_later`, `listen_tcp`).
//!
//! # The echo server
//!
//! ```no_run
//! use std::rc::Rc;
//! use twine_core::protocol::ProtocolFactory;
//! use twine_core::{Error, Protocol, Reactor, Transport};
//!
//! #[derive(Default)]
//! struct Echo(Option<Rc<dyn Transport>>);
//!
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
//!         self.0 = Some(transport);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.0.iter().for_each(|transport| transport.write(data));
//!     }
//! }
//!
//! fn main() -> Result<(), Error> {
//!     let reactor = Reactor::new()?;
//!     reactor.listen_tcp(([127, 0, 0, 1], 8000).into(), ProtocolFactory::new(Echo::default))?;
//!     reactor.run()
//! }
//! ```
//!
//! # Ownership and re-entrancy
//!
//! The reactor is single-threaded and its handles are `Rc`-based: a [`Reactor`] clone and the
//! `Rc<dyn Transport>` a protocol receives in `connection_made` can be kept anywhere on the
//! reactor thread (another connection's protocol, a timer closure, a spawned future) and
//! written to from there. **No twine method ever calls back into a protocol, a producer or a
//! Deferred callback synchronously**: events are always delivered from the loop (see
//! [`protocol`](protocol#no-re-entrancy) and [`defer`](defer#delivery-is-never-synchronous)).
//! State kept in `Rc<RefCell<..>>` and touched from several events can therefore never be
//! double-borrowed through twine. Writing from a timer:
//!
//! ```no_run
//! # use std::{rc::Rc, time::Duration};
//! # use twine_core::{Protocol, Reactor, Transport};
//! struct Ticker {
//!     reactor: Reactor,
//! }
//! impl Protocol for Ticker {
//!     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
//!         self.reactor.call_later(Duration::from_secs(1), move || transport.write(b"tick\n"));
//!     }
//!     fn data_received(&mut self, _data: &[u8]) {}
//! }
//! # fn main() -> Result<(), twine_core::Error> {
//! #     let reactor = Reactor::new()?;
//! #     let ticker = reactor.clone();
//! #     let factory = twine_core::protocol::ProtocolFactory::new(move || Ticker { reactor: ticker.clone() });
//! #     reactor.listen_tcp(([127, 0, 0, 1], 0).into(), factory)?;
//! #     Ok(())
//! # }
//! ```
//!
//! Blocking work goes to [`Reactor::defer_to_thread`]; its result comes back on the reactor
//! thread as a [`Deferred`], through callbacks, [`Deferred::take_result`], or `.await` in a
//! future run by [`Reactor::spawn`]. Other threads reach the loop with
//! [`ThreadHandle::call_from_thread`](reactor::ThreadHandle::call_from_thread).
//!
//! # Portability
//!
//! Unix (Linux first; the BSDs and macOS through mio's kqueue). Readiness is edge-triggered
//! and transports drain until `WouldBlock`; see [`reactor`] for the details.
#![cfg_attr(test, deny(warnings))]
#![doc(test(attr(deny(warnings))))]

pub mod basic;
pub mod defer;
pub mod error;
pub mod process;
pub mod protocol;
pub mod reactor;
mod sys;
#[cfg(unix)]
pub use sys::sandbox;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod threads;
pub mod time;

pub use defer::Deferred;
pub use error::{Error, ErrorKind, Reason};
pub use protocol::{ClientFactory, Factory, Protocol, Transport};
pub use reactor::Reactor;

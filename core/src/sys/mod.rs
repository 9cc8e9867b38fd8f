//! Platform code: the only place in twine-core where `unsafe` is allowed.
//!
//! Every backend provides, under `sys::<platform>`:
//!
//! - `fd`: non-blocking and close-on-exec flags on a descriptor, half-closing a socket, and an
//!   exclusive epoll registration (a listener shared by worker processes).
//! - `pty`: opening a pseudo-terminal pair, reading and setting its window size.
//! - `sandbox` (public as `twine_core::sandbox`): confining a privilege-separated worker.
//! - `process`: starting a child (on Linux a vfork-style `clone` that shares the parent's memory
//!   until `exec`, in `unix::vfork`; elsewhere a [`std::process::Command`] that forks) and the
//!   child-side set-up before `exec` (new session, controlling terminal, groups and ids,
//!   descriptors).
//!
//! Everything else in the crate uses safe wrappers: mio for readiness, nix for the system calls
//! it wraps safely, signal-hook for signal delivery. Each `unsafe` block below carries a
//! `// SAFETY:` comment saying why it holds. Only Unix is supported today; a second backend adds
//! a sibling module with the same items.
#![allow(unsafe_code)]

#[cfg(unix)]
pub mod sandbox;
#[cfg(unix)]
mod unix;

#[cfg(unix)]
pub(crate) use unix::{fd, process, pty};

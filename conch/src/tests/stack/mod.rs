//! The whole-stack suite: a [`StackPair`](crate::testing::StackPair) (client and server stacks
//! back to back, real key exchange, virtual time) running every authentication flow, channel
//! flow control, the timers, and the message × state matrix with a scripted peer.

mod auth;
mod channels;
mod cves;
mod lifecycle;
mod matrix;
mod scripted;
mod timers;
mod util;

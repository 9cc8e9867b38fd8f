//! The adapter from the sans-IO [`ClientStack`] to the driver's [`Engine`] seam.

use std::sync::Arc;
use std::time::Instant;

use super::engine::{Engine, EngineEvent};
use super::{ClientConfig, ClientError};
use crate::connection;
use crate::crypto::OsRandom;
use crate::error::Error;
use crate::keys::PublicKey;
use crate::stack::{ClientEvent, ClientStack, ClientStackConfig};
use crate::transport::{self, Transport};
use crate::userauth;
use crate::wire::DisconnectReason;

/// The stack for one connection of `config`'s user.
pub(crate) fn engine(config: &ClientConfig) -> Result<Box<dyn Engine>, ClientError> {
    let mut stack_config = ClientStackConfig::new(
        config.transport.clone(),
        (*config.userauth).clone(),
        config.connection.clone(),
    )?;
    if let Some((interval, count_max)) = config.server_alive {
        stack_config.server_alive_interval = Some(interval);
        stack_config.server_alive_count_max = count_max;
    }
    let stack = ClientStack::new(Arc::new(stack_config), &config.user, Box::new(OsRandom::new()))?;
    Ok(Box::new(stack))
}

impl Engine for ClientStack {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        Self::handle_input(self, now, bytes)
    }

    fn handle_eof(&mut self, now: Instant) {
        Self::handle_eof(self, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Self::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) {
        Self::poll_transmit(self, now, out);
    }

    fn send_channel_data(
        &mut self,
        id: connection::ChannelId,
        data: &[u8],
    ) -> Result<usize, Error> {
        Self::send_channel_data(self, id, None, data)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Self::poll_timeout(self)
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        let event = match Self::poll_event(self)? {
            ClientEvent::Transport(transport::Event::HostKeyReceived { key, algorithm }) => {
                EngineEvent::HostKeyReceived { key, algorithm }
            }
            ClientEvent::Transport(transport::Event::DebugReceived {
                always_display: true,
                message,
            }) => EngineEvent::Notice(message),
            ClientEvent::Auth(event) => EngineEvent::Auth(event),
            ClientEvent::Connection(event) => EngineEvent::Connection(event),
            ClientEvent::Closed { error, initiator } => EngineEvent::Closed { error, initiator },
            _ => EngineEvent::Other,
        };
        Some(event)
    }

    fn host_key_decided(&mut self, now: Instant, accept: bool) -> Result<(), Error> {
        Self::host_key_decided(self, now, accept)
    }

    fn add_identity(&mut self, key: PublicKey) {
        Self::add_identity(self, key);
    }

    fn add_certificate(&mut self, cert: crate::keys::Certificate) {
        Self::add_certificate(self, cert);
    }

    fn userauth_mut(&mut self) -> Option<&mut userauth::Client> {
        Self::userauth_mut(self)
    }

    fn connection_mut(&mut self) -> Option<&mut connection::Connection> {
        Self::connection_mut(self)
    }

    fn transport(&self) -> Option<&Transport> {
        Some(Self::transport(self))
    }

    fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        Self::disconnect(self, reason, description);
    }

    fn input_capacity(&self) -> usize {
        Self::input_capacity(self)
    }

    fn input_buffer(&mut self, max: usize) -> Option<&mut [u8]> {
        Some(Self::input_buffer(self, max))
    }

    fn input_written(&mut self, now: Instant, n: usize) -> Result<(), Error> {
        Self::input_written(self, now, n)
    }
}

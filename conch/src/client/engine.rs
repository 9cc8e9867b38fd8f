//! What the client's reactor side needs from the sans-IO stack: a narrow seam, so that the
//! driver can be tested against a fake and the stack can change shape behind one adapter.

use std::time::Instant;

use crate::connection;
use crate::error::{Error, Initiator};
use crate::keys::{PublicKey, SignatureAlgorithm};
use crate::transport::Transport;
use crate::userauth;
use crate::wire::DisconnectReason;

/// An event of the stack, reduced to what the client acts on.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    /// The server proved it holds this host key: decide with
    /// [`Engine::host_key_decided`].
    HostKeyReceived {
        /// The key.
        key: PublicKey,
        /// The algorithm it was proved with.
        algorithm: SignatureAlgorithm,
    },
    /// The user authentication layer needs something or reports progress.
    Auth(userauth::ClientEvent),
    /// The connection layer's event.
    Connection(connection::Event),
    /// The connection ended.
    Closed {
        /// Why, if it was an error.
        error: Option<Error>,
        /// Who ended it.
        initiator: Initiator,
    },
    /// A message the server wants shown (`SSH_MSG_DEBUG` with `always_display`).
    Notice(String),
    /// Something the client does not act on (a debug message, a finished rekey).
    Other,
}

/// The sans-IO client stack, as the driver uses it. Call order: after every input or command,
/// `poll_transmit`, then `poll_timeout`, then `poll_event` until `None`.
pub(crate) trait Engine {
    /// Bytes from the server.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error>;
    /// The server closed its sending side.
    fn handle_eof(&mut self, now: Instant);
    /// The timer from `poll_timeout` expired.
    fn handle_timeout(&mut self, now: Instant);
    /// Appends the bytes to write to the server.
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>);
    /// When to call `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next event.
    fn poll_event(&mut self) -> Option<EngineEvent>;
    /// Answers [`EngineEvent::HostKeyReceived`].
    fn host_key_decided(&mut self, now: Instant, accept: bool) -> Result<(), Error>;
    /// Adds a key to offer; keys added before user authentication starts wait for it.
    fn add_identity(&mut self, key: PublicKey);
    /// Adds an OpenSSH certificate to offer; the default offers nothing.
    fn add_certificate(&mut self, cert: crate::keys::Certificate) {
        let _ = cert;
    }
    /// The user authentication layer, once it exists and until it succeeded.
    fn userauth_mut(&mut self) -> Option<&mut userauth::Client>;
    /// The connection layer, once authenticated.
    fn connection_mut(&mut self) -> Option<&mut connection::Connection>;
    /// Sends data on channel `id` as [`connection::Connection::send_data`] does; the stack
    /// frames it straight into its packet buffer.
    fn send_channel_data(
        &mut self,
        id: connection::ChannelId,
        data: &[u8],
    ) -> Result<usize, Error> {
        self.connection_mut().ok_or(Error::ConnectionClosed)?.send_data(id, data)
    }
    /// The transport, for what the key exchange settled (none in tests).
    fn transport(&self) -> Option<&Transport>;
    /// Ends the connection with `SSH_MSG_DISCONNECT`.
    fn disconnect(&mut self, reason: DisconnectReason, description: &str);
    /// How many more input bytes the stack takes now; 0 means stop reading.
    fn input_capacity(&self) -> usize;
    /// Space for at most `max` input bytes (never more than
    /// [`input_capacity`](Self::input_capacity)), to read straight into from the socket; then
    /// [`input_written`](Self::input_written). `None` (the default): input comes only through
    /// [`handle_input`](Self::handle_input).
    fn input_buffer(&mut self, max: usize) -> Option<&mut [u8]> {
        let _ = max;
        None
    }
    /// `n` bytes were read into the start of the space [`input_buffer`](Self::input_buffer)
    /// lent last.
    fn input_written(&mut self, now: Instant, n: usize) -> Result<(), Error> {
        let _ = (now, n);
        Ok(())
    }
}

//! `IoPump`: two protocols back to back.

use std::fmt;
use std::rc::Rc;

use super::StringTransport;
use crate::error::{Error, ErrorKind, Reason};
use crate::protocol::{Address, HalfClose, Protocol, Transport};

/// Rounds after which [`IoPump::flush`] gives up (Twisted's "Too long").
const MAX_ROUNDS: usize = 1000;

/// One side of the pump.
struct End {
    protocol: Box<dyn Protocol>,
    transport: Rc<StringTransport>,
    eof_delivered: bool,
    lost: bool,
}

/// Two protocols connected through [`StringTransport`]s (Twisted's `iosim.IOPump`): what
/// one writes, the other receives, when the test calls [`flush`](Self::flush).
///
/// Keep a handle on each protocol by passing `Rc<RefCell<P>>` (a protocol too) and keeping a
/// clone. Bytes are delivered in chunks of [`with_chunk_size`](Self::with_chunk_size) bytes
/// (all at once by default), so a protocol test can run with 1, 7 and unbounded chunks.
/// `lose_connection` or `abort_connection` on either side, once its bytes are delivered, ends
/// the connection for both (`connection_lost`); `write_eof` gives the other side
/// `read_connection_lost`.
pub struct IoPump {
    server: End,
    client: End,
    chunk: usize,
}

impl IoPump {
    /// Connects `server` and `client`: both get `connection_made` now, server first.
    pub fn connect(server: impl Protocol + 'static, client: impl Protocol + 'static) -> Self {
        let server_address = Address::Named("server".into());
        let client_address = Address::Named("client".into());
        let server_transport =
            StringTransport::with_addresses(client_address.clone(), server_address.clone());
        let client_transport = StringTransport::with_addresses(server_address, client_address);
        let mut pump = Self {
            server: End {
                protocol: Box::new(server),
                transport: server_transport,
                eof_delivered: false,
                lost: false,
            },
            client: End {
                protocol: Box::new(client),
                transport: client_transport,
                eof_delivered: false,
                lost: false,
            },
            chunk: usize::MAX,
        };
        let transport: Rc<dyn Transport> = pump.server.transport.clone();
        pump.server.protocol.connection_made(transport);
        let transport: Rc<dyn Transport> = pump.client.transport.clone();
        pump.client.protocol.connection_made(transport);
        pump
    }

    /// Delivers bytes in chunks of at most `size` bytes (at least 1).
    #[must_use]
    pub fn with_chunk_size(mut self, size: usize) -> Self {
        self.chunk = size.max(1);
        self
    }

    /// Moves whatever is written, both ways, once. Returns whether anything happened.
    pub fn pump(&mut self) -> bool {
        let chunk = self.chunk;
        let to_client = Self::transfer(&mut self.server, &mut self.client, chunk);
        let to_server = Self::transfer(&mut self.client, &mut self.server, chunk);
        let closed = self.settle();
        to_client || to_server || closed
    }

    /// Pumps until nothing moves.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LimitReached`] if the protocols still talk after 1000 rounds.
    pub fn flush(&mut self) -> Result<(), Error> {
        for _ in 0..MAX_ROUNDS {
            if !self.pump() {
                return Ok(());
            }
        }
        Err(Error::new(ErrorKind::LimitReached, "IoPump: still busy after 1000 rounds"))
    }

    /// The server side's transport.
    pub fn server_transport(&self) -> &Rc<StringTransport> {
        &self.server.transport
    }

    /// The client side's transport.
    pub fn client_transport(&self) -> &Rc<StringTransport> {
        &self.client.transport
    }

    fn transfer(from: &mut End, to: &mut End, chunk: usize) -> bool {
        if to.lost {
            return false;
        }
        let data = from.transport.take();
        let moved = !data.is_empty();
        for piece in data.chunks(chunk) {
            if !to.transport.reading_paused() {
                to.protocol.data_received(piece);
            }
        }
        if from.transport.eof_written() && !to.eof_delivered {
            to.eof_delivered = true;
            if to.protocol.read_connection_lost() == HalfClose::LoseConnection {
                to.transport.lose_connection();
            }
            return true;
        }
        moved
    }

    /// Ends the connection for both sides once one side asked and its bytes are delivered.
    fn settle(&mut self) -> bool {
        if self.server.lost {
            return false;
        }
        let aborted = self.server.transport.aborted() || self.client.transport.aborted();
        let closing =
            self.server.transport.disconnecting() || self.client.transport.disconnecting();
        let quiet = self.server.transport.buffered() == 0 && self.client.transport.buffered() == 0;
        if !(aborted || (closing && quiet)) {
            return false;
        }
        for end in [&mut self.server, &mut self.client] {
            end.lost = true;
            let reason = if end.transport.aborted() { Reason::Aborted } else { Reason::Done };
            end.protocol.connection_lost(reason);
        }
        true
    }
}

impl fmt::Debug for IoPump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoPump")
            .field("server", &self.server.transport)
            .field("client", &self.client.transport)
            .field("chunk", &self.chunk)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::basic::{LineProtocol, LineReceiver, Lines};

    struct Echo;

    impl LineProtocol for Echo {
        fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
            if line == b"bye" {
                lines.lose_connection();
                return;
            }
            lines.send_line(line);
        }
    }

    #[derive(Default)]
    struct Client {
        lines: Vec<Vec<u8>>,
        lost: Option<Reason>,
    }

    impl LineProtocol for Client {
        fn connection_made(&mut self, lines: &mut Lines) {
            lines.send_line(b"one");
            lines.send_line(b"two");
            lines.send_line(b"bye");
        }

        fn line_received(&mut self, _lines: &mut Lines, line: &[u8]) {
            self.lines.push(line.to_vec());
        }

        fn connection_lost(&mut self, reason: Reason) {
            self.lost = Some(reason);
        }
    }

    /// Two line protocols talk through the pump at every chunk size, and a server's
    /// `lose_connection` ends the connection for both once the bytes are through.
    #[test]
    fn connects_two_protocols_and_propagates_the_close() {
        for chunk in [1, 7, usize::MAX] {
            let client = Rc::new(RefCell::new(LineReceiver::new(Client::default())));
            let mut pump =
                IoPump::connect(LineReceiver::new(Echo), Rc::clone(&client)).with_chunk_size(chunk);
            assert!(pump.flush().is_ok());
            let client = client.borrow();
            let expected: Vec<&[u8]> = vec![b"one", b"two"];
            assert_eq!(client.protocol().lines, expected, "chunk {chunk}");
            assert_eq!(client.protocol().lost, Some(Reason::Done), "chunk {chunk}");
        }
    }

    struct Chatter;

    impl Protocol for Chatter {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            transport.write(b"x");
        }

        fn data_received(&mut self, _data: &[u8]) {}
    }

    struct Reflect(Option<Rc<dyn Transport>>);

    impl Protocol for Reflect {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            transport.write(b"x");
            self.0 = Some(transport);
        }

        fn data_received(&mut self, data: &[u8]) {
            if let Some(transport) = &self.0 {
                transport.write(data);
            }
        }
    }

    /// Protocols that never stop talking make `flush` give up with an error, not hang.
    #[test]
    fn flush_gives_up_on_endless_talk() {
        let mut pump = IoPump::connect(Reflect(None), Reflect(None));
        let err = pump.flush().err().map(|err| err.kind());
        assert_eq!(err, Some(ErrorKind::LimitReached));
        let mut quiet = IoPump::connect(Chatter, Chatter);
        assert!(quiet.flush().is_ok());
    }
}

//! `IoPump`: two protocols back to back.

use std::fmt;
use std::rc::Rc;

use super::{deliver, StringTransport};
use crate::error::{Error, ErrorKind, Reason};
use crate::protocol::{Address, HalfClose, Protocol, Transport};

/// Rounds after which [`IoPump::flush`] gives up (Twisted's "Too long").
const MAX_ROUNDS: usize = 1000;

/// One side of the pump.
struct End {
    protocol: Box<dyn Protocol>,
    transport: Rc<StringTransport>,
    /// Bytes written to this side that a lent-buffer protocol had no room for yet.
    unread: Vec<u8>,
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
                unread: Vec::new(),
                eof_delivered: false,
                lost: false,
            },
            client: End {
                protocol: Box::new(client),
                transport: client_transport,
                unread: Vec::new(),
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
        let mut moved = !data.is_empty();
        to.unread.extend_from_slice(&data);
        // Bytes wait while the receiver's reading is paused, as in a socket's buffers.
        let unread = std::mem::take(&mut to.unread);
        let mut taken = 0;
        while taken < unread.len() && !to.transport.reading_paused() {
            let rest = unread.get(taken..).unwrap_or_default();
            let piece = rest.get(..chunk.min(rest.len())).unwrap_or_default();
            let n = deliver(&mut to.protocol, piece, chunk);
            taken += n;
            moved |= n > 0;
            if n < piece.len() {
                // A lent-buffer protocol with no room: a stream pauses its reading until the
                // protocol resumes it.
                to.transport.pause_producing();
                break;
            }
        }
        to.unread = unread.get(taken..).unwrap_or_default().to_vec();
        if from.transport.eof_written() && !to.eof_delivered && to.unread.is_empty() {
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

    /// Receives into a lent buffer of `room` bytes, with room for `budget` bytes until
    /// `make_room`.
    struct Lender {
        buffer: Vec<u8>,
        budget: usize,
        held: usize,
        received: Vec<u8>,
        refused: usize,
    }

    impl Lender {
        fn new(room: usize, budget: usize) -> Self {
            Self { buffer: vec![0; room], budget, held: 0, received: Vec::new(), refused: 0 }
        }
    }

    impl Protocol for Lender {
        fn data_received(&mut self, _data: &[u8]) {
            panic!("a lending protocol is not handed data");
        }

        fn get_buffer(&mut self, size_hint: usize) -> Option<&mut [u8]> {
            let room = (self.budget - self.held).min(size_hint);
            if room == 0 {
                self.refused += 1;
            }
            let len = self.buffer.len();
            self.buffer.get_mut(..room.min(len))
        }

        fn buffer_updated(&mut self, nbytes: usize) {
            self.held += nbytes;
            let data = &self.buffer[..nbytes];
            self.received.extend_from_slice(data);
        }
    }

    struct Talker(Vec<u8>);

    impl Protocol for Talker {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            transport.write(&self.0);
        }

        fn data_received(&mut self, _data: &[u8]) {}
    }

    /// The pump hands a lent-buffer protocol the same bytes, in its own buffer, in chunks of 1,
    /// 7 and all at once, and with buffers smaller than a chunk.
    #[test]
    fn a_lent_buffer_protocol_gets_every_byte_in_any_chunking() {
        let message: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
        for chunk in [1, 7, usize::MAX] {
            for room in [3, 4096] {
                let lender = Rc::new(RefCell::new(Lender::new(room, usize::MAX)));
                let mut pump = IoPump::connect(Talker(message.clone()), Rc::clone(&lender))
                    .with_chunk_size(chunk);
                assert!(pump.flush().is_ok());
                assert!(lender.borrow().received == message, "chunk {chunk}, room {room}");
            }
        }
    }

    /// A lent-buffer protocol with no room pauses its transport's reading; the bytes wait, and
    /// come once it resumes with room.
    #[test]
    fn a_full_lent_buffer_pauses_reading_and_the_rest_waits() {
        let message: Vec<u8> = (0..100u8).collect();
        let lender = Rc::new(RefCell::new(Lender::new(64, 30)));
        let mut pump = IoPump::connect(Talker(message.clone()), Rc::clone(&lender));
        assert!(pump.flush().is_ok());
        assert_eq!(lender.borrow().received, message[..30]);
        assert_eq!(lender.borrow().refused, 1);
        assert!(pump.client_transport().reading_paused());
        lender.borrow_mut().budget = usize::MAX;
        pump.client_transport().resume_producing();
        assert!(pump.flush().is_ok());
        assert_eq!(lender.borrow().received, message);
    }

    /// `deliver` feeds a plain protocol through `data_received`, and a lending one through its
    /// buffer, stopping where the lender has no room.
    #[test]
    fn deliver_stops_where_a_lender_has_no_room() {
        let mut lender = Lender::new(8, 20);
        let data: Vec<u8> = (0..50u8).collect();
        assert_eq!(deliver(&mut lender, &data, 7), 20);
        assert_eq!(lender.received, data[..20]);
        let mut plain = LineReceiver::new(Echo);
        assert_eq!(deliver(&mut plain, b"a\r\nb", 1), 4);
    }
}

//! The binary packet protocol (RFC 4253 §6): framing, padding, sequence numbers, and packet
//! protection in place.
//!
//! ```text
//! uint32    packet_length
//! byte      padding_length
//! byte[n1]  payload; n1 = packet_length - padding_length - 1
//! byte[n2]  random padding; n2 = padding_length
//! byte[m]   mac (Message Authentication Code - MAC); m = mac_length
//! ```
//!
//! [`PacketReader`] decrypts packets in place inside its input buffer and hands out the payload
//! as a range of that buffer; [`PacketWriter`] builds each packet directly in its output buffer
//! and seals it there. Once the buffers have grown to their working size, no packet allocates.

use std::ops::Range;

use crate::crypto::{
    Compressor, CryptoError, Decompressor, NoneCipher, PacketOpener, PacketSealer, SecureRandom,
};
use crate::error::{Error, PeerMisbehaved};
use crate::wire::{InvalidMessage, MAX_PACKET_LEN};

/// The largest payload we send or accept after decompression: a packet of
/// [`MAX_PACKET_LEN`] leaves room for the padding, the padding length byte and the small growth
/// that compression can add.
pub const MAX_PAYLOAD_LEN: usize = MAX_PACKET_LEN - 1024;

/// The least padding RFC 4253 §6 allows.
const MIN_PADDING: usize = 4;

/// Random padding is drawn from the transport's generator this many bytes at a time, so that a
/// bulk transfer does not make a `getrandom(2)` call for every packet (OpenSSH's `arc4random`
/// buffers the same way).
const PAD_POOL: usize = 512;

/// Random bytes for padding, each handed out once.
struct PadPool {
    bytes: [u8; PAD_POOL],
    /// The first byte not handed out yet; `PAD_POOL` when the pool is empty.
    next: usize,
}

impl PadPool {
    fn new() -> Self {
        Self { bytes: [0; PAD_POOL], next: PAD_POOL }
    }

    /// Fills `dest` with random bytes from the pool, refilling it from `rng` when it runs short.
    fn fill(&mut self, dest: &mut [u8], rng: &mut dyn SecureRandom) -> Result<(), CryptoError> {
        if dest.len() > PAD_POOL {
            return rng.fill(dest);
        }
        if PAD_POOL - self.next < dest.len() {
            rng.fill(&mut self.bytes)?;
            self.next = 0;
        }
        let end = self.next + dest.len();
        let Some(random) = self.bytes.get(self.next..end) else {
            return rng.fill(dest);
        };
        dest.copy_from_slice(random);
        self.next = end;
        Ok(())
    }
}

/// Byte and packet counts for one direction since its keys were installed, for rekey limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Bytes on the wire, length field and tag included.
    pub(crate) bytes: u64,
    /// Packets.
    pub(crate) packets: u64,
}

impl Counters {
    fn add(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.packets = self.packets.saturating_add(1);
    }
}

/// One direction's packet sequence number (RFC 4253 §6.4): starts at 0, wraps after 2^32 - 1
/// (fatal during a strict initial key exchange), and resets at NEWKEYS under strict KEX.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sequence {
    next: u32,
    wrap_forbidden: bool,
}

impl Sequence {
    /// The number of the next packet.
    pub(crate) fn next(self) -> u32 {
        self.next
    }

    /// Counts a packet, returning its number.
    fn advance(&mut self) -> Result<u32, Error> {
        let current = self.next;
        self.next = self.next.wrapping_add(1);
        if self.next == 0 && self.wrap_forbidden {
            return Err(PeerMisbehaved::SequenceNumberWrapped.into());
        }
        Ok(current)
    }

    /// Starts again from 0 (strict key exchange, at each NEWKEYS).
    pub(crate) fn reset(&mut self) {
        self.next = 0;
    }

    /// Makes a wrap fatal (during the strict initial key exchange) or not.
    pub(crate) fn forbid_wrap(&mut self, forbidden: bool) {
        self.wrap_forbidden = forbidden;
    }

    /// Sets the next number (tests reaching a wrap without 2^32 packets).
    #[cfg(test)]
    pub(crate) fn set_next(&mut self, next: u32) {
        self.next = next;
    }
}

/// Where a decoded payload lives until the transport is done with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PayloadLocation {
    /// A range of the input buffer (the decrypted packet, in place).
    Input(Range<usize>),
    /// The decompression buffer.
    Inflated,
}

/// A packet taken from the input: its sequence number and where its payload is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) seq: u32,
    pub(crate) payload: PayloadLocation,
}

/// The most space [`PacketReader::spare`] makes ahead of need when it grows the buffer.
const MAX_SPARE: usize = 1024 * 1024;

/// The least space [`PacketReader::lend`] offers a read: room for a handshake's or an
/// interactive session's packets without growing the buffer of a connection that is idle.
const LEND_MIN: usize = 1024;

/// A read at least this large that filled all it was lent marks a bulk transfer: the next read
/// is lent twice as much (up to [`BULK_LEND`]) so that one system call takes many packets.
const BULK_READ: usize = 16 * 1024;

/// The most a bulk transfer's read is lent beyond what its packets need.
const BULK_LEND: usize = 256 * 1024;

/// After a bulk transfer, a buffer larger than this is given back once a small read (at most
/// [`BULK_READ`]) left nothing buffered: an idle connection keeps a small one.
const IDLE_BUFFER: usize = 64 * 1024;

/// The receiving half: buffers wire bytes and takes whole packets from them.
pub(crate) struct PacketReader {
    /// Received bytes up to `end`; the rest is space lent to the next read ([`Self::spare`]).
    /// Its length is its size: spare space is lent without being cleared again.
    buf: Vec<u8>,
    /// The end of the received bytes in `buf`.
    end: usize,
    /// The length of the space last lent by [`Self::spare`], which [`Self::filled`] may claim.
    lent: usize,
    /// What the last read through [`Self::lend`] received, and whether it filled all it was
    /// lent (more was likely waiting).
    last_read: usize,
    saturated: bool,
    /// The first byte of `buf` not yet taken into a packet.
    pos: usize,
    /// The start of a payload handed out and not yet released; compaction keeps it.
    held: Option<usize>,
    /// The packet length of the packet at `pos`, once its head has been decrypted.
    pending_len: Option<usize>,
    opener: Box<dyn PacketOpener>,
    decompressor: Option<Box<dyn Decompressor>>,
    inflated: Vec<u8>,
    pub(crate) seq: Sequence,
    pub(crate) counters: Counters,
}

impl PacketReader {
    /// A reader with no keys (the `none` cipher), as at the start of a connection.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            end: 0,
            lent: 0,
            last_read: 0,
            saturated: false,
            pos: 0,
            held: None,
            pending_len: None,
            opener: Box::new(NoneCipher),
            decompressor: None,
            inflated: Vec::new(),
            seq: Sequence::default(),
            counters: Counters::default(),
        }
    }

    /// Appends wire bytes (through [`Self::spare`] and [`Self::filled`]).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let space = self.spare(bytes.len());
        let n = space.len().min(bytes.len());
        if let (Some(into), Some(from)) = (space.get_mut(..n), bytes.get(..n)) {
            into.copy_from_slice(from);
        }
        self.filled(n);
        self.saturated = false;
    }

    /// Lends space for exactly `want` more wire bytes at the end of the buffer, to read into
    /// straight from the socket; [`Self::filled`] then says how many were written. First drops
    /// the bytes already taken unless a payload is held (its range must stay valid); the bytes
    /// not taken yet (a partial packet) are moved to the front only when the space would
    /// otherwise have to grow.
    pub(crate) fn spare(&mut self, want: usize) -> &mut [u8] {
        let taken = if self.held.is_some() { 0 } else { self.pos };
        if taken > 0 && taken == self.end {
            self.end = 0;
            self.pos = 0;
        } else if taken > 0 && self.end + want > self.buf.len() {
            self.buf.copy_within(taken..self.end, 0);
            self.end -= taken;
            self.pos -= taken;
        }
        let need = self.end + want;
        if need > self.buf.len() {
            // Doubling, so that a large packet fed a few bytes at a time is not moved on every
            // read, and so that a bulk transfer (each read ending inside a packet) moves a
            // partial packet every few reads rather than on every one. Bounded: at most twice
            // the buffer it replaces, and never past `MAX_SPARE` unless that much is needed
            // (a peer's heap cost stays within a small multiple of what it sent).
            let size = need.max((2 * self.buf.len()).min(MAX_SPARE));
            self.buf.reserve_exact(size - self.buf.len());
            self.buf.resize(size, 0);
        }
        self.lent = want;
        self.buf.get_mut(self.end..need).unwrap_or_default()
    }

    /// Space for the next socket read, at most `max` bytes: what the buffer has free already,
    /// or what the packet being received still lacks, or [`LEND_MIN`], whichever is most. Outside
    /// a bulk transfer the buffer grows only while large packets arrive, however large a read
    /// the caller offers, so an idle connection keeps a small one.
    ///
    /// A bulk transfer (a read of at least [`BULK_READ`] that filled all it was lent) is lent
    /// twice its last read, up to [`BULK_LEND`], so many packets come in one system call; when
    /// the traffic turns small again and nothing is buffered, a buffer past [`IDLE_BUFFER`] is
    /// given back.
    pub(crate) fn lend(&mut self, max: usize) -> &mut [u8] {
        let bulk = self.saturated && self.last_read >= BULK_READ;
        if !bulk
            && self.last_read <= BULK_READ
            && self.held.is_none()
            && self.pos == self.end
            && self.buf.len() > IDLE_BUFFER
        {
            self.buf = Vec::new();
            (self.pos, self.end) = (0, 0);
        }
        let taken = if self.held.is_some() { 0 } else { self.pos };
        let free = self.buf.len() - self.end + taken;
        let lacking = self
            .pending_len
            .map_or(0, |len| (self.pos + 4 + len + self.opener.tag_len()).saturating_sub(self.end));
        let mut want = free.max(lacking).max(LEND_MIN);
        if bulk {
            want = want.max((2 * self.last_read).min(BULK_LEND));
        }
        self.spare(max.min(want))
    }

    /// `n` bytes were written into the start of the space [`Self::spare`] lent last: they are
    /// received. Never more than was lent.
    pub(crate) fn filled(&mut self, n: usize) {
        let n = n.min(self.lent);
        self.saturated = n > 0 && n == self.lent;
        self.last_read = n;
        self.end = (self.end + n).min(self.buf.len());
        self.lent = 0;
    }

    /// Bytes received but not yet taken into a packet (or an identification line).
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.pos
    }

    /// The received bytes not yet taken, for the identification line parser.
    pub(crate) fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    /// Marks `n` bytes of [`Self::unread`] as taken (the identification lines).
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Installs the packet protection for packets after the current one.
    pub(crate) fn set_opener(&mut self, opener: Box<dyn PacketOpener>) {
        self.opener = opener;
        self.counters = Counters::default();
    }

    /// Installs (or removes) decompression for packets after the current one.
    pub(crate) fn set_decompressor(&mut self, decompressor: Option<Box<dyn Decompressor>>) {
        self.decompressor = decompressor;
    }

    /// Whether payloads are being decompressed.
    pub(crate) fn is_decompressing(&self) -> bool {
        self.decompressor.is_some()
    }

    /// Takes the next whole packet, verifying and decrypting it in place. `Ok(None)` means more
    /// bytes are needed. The payload stays valid until [`Self::release`] or the next call.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>, Error> {
        self.held = None;
        let packet_len = match self.pending_len {
            Some(len) => len,
            None => {
                let head_len = self.opener.length_prefix_len();
                let received = self.buf.get_mut(..self.end).unwrap_or_default();
                let Some(head) = received.get_mut(self.pos..self.pos + head_len) else {
                    return Ok(None);
                };
                let len = self
                    .opener
                    .decrypt_length(self.seq.next(), head)
                    .map_err(|_| InvalidMessage::BadPacketLength)?;
                let len = usize::try_from(len).map_err(|_| InvalidMessage::BadPacketLength)?;
                self.check_length(len)?;
                self.pending_len = Some(len);
                len
            }
        };
        let tag_len = self.opener.tag_len();
        let total = 4 + packet_len + tag_len;
        let received = self.buf.get_mut(..self.end).unwrap_or_default();
        let Some(whole) = received.get_mut(self.pos..self.pos + total) else {
            return Ok(None);
        };
        let (packet, tag) = whole.split_at_mut(4 + packet_len);
        self.opener.open(self.seq.next(), packet, tag).map_err(|e| match e {
            CryptoError::AuthenticationFailed => Error::from(InvalidMessage::MacMismatch),
            other => Error::from(other),
        })?;
        let padding = usize::from(packet[4]); // invariant: packet_len >= 5, checked above
        if padding < MIN_PADDING || padding + 1 > packet_len {
            return Err(InvalidMessage::BadPadding.into());
        }
        let payload = self.pos + 5..self.pos + 4 + packet_len - padding;
        let seq = self.seq.advance()?;
        self.pos += total;
        self.pending_len = None;
        self.counters.add(total);
        self.held = Some(payload.start);
        let location = match &mut self.decompressor {
            None => PayloadLocation::Input(payload),
            Some(d) => {
                self.inflated.clear();
                let compressed = self.buf.get(payload).unwrap_or_default();
                d.decompress(compressed, &mut self.inflated, MAX_PAYLOAD_LEN)
                    .map_err(|_| InvalidMessage::BadCompression)?;
                PayloadLocation::Inflated
            }
        };
        Ok(Some(Packet { seq, payload: location }))
    }

    /// The payload of a packet returned by [`Self::next_packet`].
    pub(crate) fn payload(&self, location: &PayloadLocation) -> &[u8] {
        match location {
            PayloadLocation::Input(range) => self.buf.get(range.clone()).unwrap_or_default(),
            PayloadLocation::Inflated => &self.inflated,
        }
    }

    /// Lets compaction reclaim the last payload handed out.
    pub(crate) fn release(&mut self) {
        self.held = None;
    }

    /// Checks a packet length against the size limits and the cipher's alignment.
    fn check_length(&self, len: usize) -> Result<(), InvalidMessage> {
        let aligned = if self.opener.length_excluded_from_padding() { len } else { len + 4 };
        if !(1 + MIN_PADDING..=MAX_PACKET_LEN).contains(&len)
            || aligned % self.opener.block_size() != 0
        {
            return Err(InvalidMessage::BadPacketLength);
        }
        Ok(())
    }
}

impl std::fmt::Debug for PacketReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketReader")
            .field("buffered", &self.buffered())
            .field("seq", &self.seq.next())
            .field("decompressing", &self.decompressor.is_some())
            .finish_non_exhaustive()
    }
}

/// Test-only damage to the next packet written, applied before it is sealed so that its
/// MAC is valid: the receiver must catch it by its framing rules.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tamper {
    /// A value for the `packet_length` field.
    pub(crate) packet_len: Option<u32>,
    /// A value for the `padding_length` byte.
    pub(crate) padding_len: Option<u8>,
}

/// The sending half: frames, pads, compresses and seals packets into the output buffer.
pub(crate) struct PacketWriter {
    #[cfg(test)]
    pub(crate) tamper: Option<Tamper>,
    out: Vec<u8>,
    sealer: Box<dyn PacketSealer>,
    compressor: Option<Box<dyn Compressor>>,
    deflated: Vec<u8>,
    /// A payload given in two parts, joined for the compressor.
    joined: Vec<u8>,
    padding: PadPool,
    pub(crate) seq: Sequence,
    pub(crate) counters: Counters,
}

impl PacketWriter {
    /// A writer with no keys (the `none` cipher).
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(test)]
            tamper: None,
            out: Vec::new(),
            sealer: Box::new(NoneCipher),
            compressor: None,
            deflated: Vec::new(),
            joined: Vec::new(),
            padding: PadPool::new(),
            seq: Sequence::default(),
            counters: Counters::default(),
        }
    }

    /// Appends raw bytes that are not a packet: the identification line, or a text error
    /// before the binary protocol starts.
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Frames `payload` as a packet, compressing and sealing it, into the output buffer.
    pub(crate) fn write_packet(
        &mut self,
        payload: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(), Error> {
        self.write_packet_parts(payload, &[], rng)
    }

    /// As [`write_packet`](Self::write_packet) for the payload `head || tail`, which goes into
    /// the output buffer without being joined first: a channel's data is framed straight from
    /// where the application holds it.
    pub(crate) fn write_packet_parts(
        &mut self,
        head: &[u8],
        tail: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<(), Error> {
        let (head, tail) = match &mut self.compressor {
            None => (head, tail),
            Some(c) => {
                self.deflated.clear();
                if tail.is_empty() {
                    c.compress(head, &mut self.deflated)?;
                } else {
                    // The compressor takes one payload; the join costs little next to it.
                    self.joined.clear();
                    self.joined.extend_from_slice(head);
                    self.joined.extend_from_slice(tail);
                    c.compress(&self.joined, &mut self.deflated)?;
                }
                (&self.deflated[..], &[][..])
            }
        };
        let body_len = head.len() + tail.len();
        let block = self.sealer.block_size();
        let unpadded =
            1 + body_len + if self.sealer.length_excluded_from_padding() { 0 } else { 4 };
        let mut padding = block - unpadded % block;
        if padding < MIN_PADDING {
            padding += block;
        }
        let packet_len = 1 + body_len + padding;
        if packet_len > MAX_PACKET_LEN {
            return Err(crate::error::LocalMisuse::PayloadTooLarge.into());
        }
        let tag_len = self.sealer.tag_len();
        let start = self.out.len();
        let len_field =
            u32::try_from(packet_len).map_err(|_| crate::error::LocalMisuse::PayloadTooLarge)?;
        self.out.extend_from_slice(&len_field.to_be_bytes());
        self.out.push(u8::try_from(padding).unwrap_or(u8::MAX)); // invariant: padding < 4 + 255
        self.out.extend_from_slice(head);
        self.out.extend_from_slice(tail);
        let pad_start = self.out.len();
        self.out.resize(pad_start + padding + tag_len, 0);
        let whole = &mut self.out[start..]; // invariant: start <= len, just extended
        let (packet, tag) = whole.split_at_mut(4 + packet_len);
        if let Some(pad) = packet.get_mut(5 + body_len..) {
            self.padding.fill(pad, rng)?;
        }
        #[cfg(test)]
        if let Some(tamper) = self.tamper.take() {
            if let Some(len) = tamper.packet_len {
                packet[..4].copy_from_slice(&len.to_be_bytes());
            }
            if let Some(padding) = tamper.padding_len {
                packet[4] = padding;
            }
        }
        self.sealer.seal(self.seq.next(), packet, tag);
        self.counters.add(4 + packet_len + tag_len);
        self.seq.advance().map(|_| ())
    }

    /// Installs the packet protection for packets after the ones already written.
    pub(crate) fn set_sealer(&mut self, sealer: Box<dyn PacketSealer>) {
        self.sealer = sealer;
        self.counters = Counters::default();
    }

    /// Installs (or removes) compression for packets after the ones already written.
    pub(crate) fn set_compressor(&mut self, compressor: Option<Box<dyn Compressor>>) {
        self.compressor = compressor;
    }

    /// Whether payloads are being compressed.
    pub(crate) fn is_compressing(&self) -> bool {
        self.compressor.is_some()
    }

    /// Bytes written and not yet taken by [`Self::take_output`].
    pub(crate) fn pending(&self) -> usize {
        self.out.len()
    }

    /// Moves the output into `dest`: appended, or swapped in when `dest` is empty so that two
    /// reused buffers trade places without copying.
    pub(crate) fn take_output(&mut self, dest: &mut Vec<u8>) {
        if dest.is_empty() {
            std::mem::swap(dest, &mut self.out);
            self.out.clear();
        } else {
            dest.extend_from_slice(&self.out);
            self.out.clear();
        }
    }
}

impl std::fmt::Debug for PacketWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketWriter")
            .field("pending", &self.out.len())
            .field("seq", &self.seq.next())
            .field("compressing", &self.compressor.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    fn write_all(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut writer = PacketWriter::new();
        let mut rng = SeededRandom::new(3);
        for p in payloads {
            writer.write_packet(p, &mut rng).unwrap();
        }
        let mut out = Vec::new();
        writer.take_output(&mut out);
        out
    }

    /// Feeds `wire` in chunks and returns every (seq, payload) read, or the first error.
    fn read_all(wire: &[u8], chunk: usize) -> Result<Vec<(u32, Vec<u8>)>, Error> {
        let mut reader = PacketReader::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk.max(1)) {
            reader.push(piece);
            while let Some(packet) = reader.next_packet()? {
                got.push((packet.seq, reader.payload(&packet.payload).to_vec()));
                reader.release();
            }
        }
        Ok(got)
    }

    fn read_all_ways(wire: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, Error> {
        let whole = read_all(wire, wire.len());
        for chunk in [1, 7] {
            assert_eq!(read_all(wire, chunk), whole, "chunk {chunk}");
        }
        whole
    }

    /// Packets of every payload size up to 300 bytes read back identically, with consecutive
    /// sequence numbers, whether fed at once, a byte at a time or in 7-byte chunks.
    #[test]
    fn packets_round_trip_in_any_chunking() {
        let payloads: Vec<Vec<u8>> =
            (0..300).map(|n| vec![u8::try_from(n % 251).unwrap(); n]).collect();
        let wire = write_all(&payloads);
        let got = read_all_ways(&wire).unwrap();
        assert_eq!(got.len(), payloads.len());
        for (i, ((seq, payload), want)) in got.iter().zip(&payloads).enumerate() {
            assert_eq!(*seq, u32::try_from(i).unwrap());
            assert_eq!(payload, want);
        }
    }

    /// A long stream read in pieces that end inside packets keeps the reader's buffer bounded,
    /// and every packet arrives.
    #[test]
    fn a_long_stream_read_in_odd_pieces_keeps_the_buffer_bounded() {
        let payload = vec![0x33; 32 * 1024];
        let wire = write_all(&vec![payload.clone(); 200]);
        let mut reader = PacketReader::new();
        let mut got = 0;
        for piece in wire.chunks(64 * 1024 + 123) {
            reader.push(piece);
            while let Some(packet) = reader.next_packet().unwrap() {
                assert_eq!(reader.payload(&packet.payload), &payload[..]);
                reader.release();
                got += 1;
            }
            assert!(
                reader.buf.capacity() <= MAX_SPARE + 2 * piece.len(),
                "{}",
                reader.buf.capacity()
            );
        }
        assert_eq!(got, 200);
    }

    /// Packets read through lent space, each read shorter than the space (as a socket's
    /// reads are), come out as pushed ones do, a byte at a time and in large reads; a claim past
    /// the space lent counts only the space.
    #[test]
    fn packets_read_into_lent_space_match_pushed_ones() {
        let payloads: Vec<Vec<u8>> =
            (0..200).map(|n| vec![u8::try_from(n % 251).unwrap(); n * 7]).collect();
        let wire = write_all(&payloads);
        let pushed = read_all(&wire, wire.len()).unwrap();
        for chunk in [1, 7, 64 * 1024 - 1] {
            let mut reader = PacketReader::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                let space = reader.spare(64 * 1024);
                assert_eq!(space.len(), 64 * 1024);
                space[..piece.len()].copy_from_slice(piece);
                reader.filled(piece.len());
                while let Some(packet) = reader.next_packet().unwrap() {
                    got.push((packet.seq, reader.payload(&packet.payload).to_vec()));
                    reader.release();
                }
            }
            assert_eq!(got, pushed, "chunk {chunk}");
        }
        let mut reader = PacketReader::new();
        reader.spare(3).copy_from_slice(b"abc");
        reader.filled(100);
        assert_eq!(reader.unread(), b"abc");
        reader.filled(5);
        assert_eq!(reader.unread(), b"abc", "nothing lent, nothing claimed");
    }

    /// A socket that always has more than the reader lent (a bulk transfer) is read in ever
    /// larger pieces up to BULK_LEND, so one system call takes many packets; when the traffic
    /// turns small and the buffer is empty, the large buffer is given back. Every packet
    /// arrives, in order, whichever way the reads fall.
    #[test]
    fn a_bulk_transfer_is_read_in_large_pieces_and_the_buffer_shrinks_when_it_ends() {
        let offered = 256 * 1024;
        let large: Vec<Vec<u8>> = (0..40u8).map(|n| vec![n; 32 * 1024]).collect();
        let small: Vec<Vec<u8>> = (0..5u8).map(|n| vec![n; 50]).collect();
        let mut all = large.clone();
        all.extend(small.iter().cloned());
        let wire = write_all(&all);
        let small_bytes = write_all(&small).len();
        let mut reader = PacketReader::new();
        let (mut at, mut got, mut lent_sizes) = (0, Vec::new(), Vec::new());
        while at < wire.len() {
            // The bulk part always has more waiting than was lent; the small packets come
            // one read each, as an interactive peer's would.
            let in_bulk = at < wire.len() - small_bytes;
            let space = reader.lend(offered);
            if in_bulk {
                lent_sizes.push(space.len());
            }
            let available = if in_bulk { wire.len() - small_bytes - at } else { 60 };
            let n = space.len().min(available).min(wire.len() - at);
            space[..n].copy_from_slice(&wire[at..at + n]);
            reader.filled(n);
            at += n;
            while let Some(packet) = reader.next_packet().unwrap() {
                got.push(reader.payload(&packet.payload).to_vec());
                reader.release();
            }
        }
        assert_eq!(got, all);
        assert!(lent_sizes.contains(&BULK_LEND), "lent {lent_sizes:?}");
        // 40 packets of 32 KiB: a read per packet before; now a few to grow, then 256 KiB each.
        assert!(lent_sizes.len() <= 10, "1280 KiB in {} reads: {lent_sizes:?}", lent_sizes.len());
        // The next read after the small ones gives the large buffer back.
        let _ = reader.lend(offered);
        assert!(reader.buf.len() <= IDLE_BUFFER, "kept {} bytes", reader.buf.len());
    }

    /// Offered reads far larger than its traffic, a reader of small packets keeps a small
    /// buffer (an idle connection's memory), while one receiving large packets is lent what
    /// each still lacks, and every packet arrives either way.
    #[test]
    fn lent_space_grows_only_for_the_packets_that_need_it() {
        let offered = 256 * 1024;
        let small: Vec<Vec<u8>> = (0..50).map(|n| vec![7; 100 + n]).collect();
        let wire = write_all(&small);
        let mut reader = PacketReader::new();
        let mut got = 0;
        for piece in wire.chunks(300) {
            let space = reader.lend(offered);
            assert!(space.len() >= piece.len(), "lent {}", space.len());
            space[..piece.len()].copy_from_slice(piece);
            reader.filled(piece.len());
            while reader.next_packet().unwrap().is_some() {
                reader.release();
                got += 1;
            }
        }
        assert_eq!(got, 50);
        assert!(reader.buf.len() <= 4 * LEND_MIN, "an idle-sized buffer: {}", reader.buf.len());

        let large = vec![vec![9; 200 * 1024]; 3];
        let wire = write_all(&large);
        let mut reader = PacketReader::new();
        let mut at = 0;
        let mut got = 0;
        while at < wire.len() {
            let space = reader.lend(offered);
            let n = space.len().min(wire.len() - at);
            space[..n].copy_from_slice(&wire[at..at + n]);
            reader.filled(n);
            at += n;
            while let Some(packet) = reader.next_packet().unwrap() {
                assert_eq!(reader.payload(&packet.payload), &large[0][..]);
                reader.release();
                got += 1;
            }
        }
        assert_eq!(got, 3);
        assert!(reader.buf.len() > 200 * 1024, "grown for the large packets");
    }

    /// A payload given in two parts makes the same packet as the joined payload.
    #[test]
    fn a_payload_in_two_parts_makes_the_same_packet_as_the_joined_one() {
        for split in [0, 1, 9, 300] {
            let payload: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
            let (head, tail) = payload.split_at(split);
            let mut joined = PacketWriter::new();
            joined.write_packet(&payload, &mut SeededRandom::new(5)).unwrap();
            let mut parts = PacketWriter::new();
            parts.write_packet_parts(head, tail, &mut SeededRandom::new(5)).unwrap();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            joined.take_output(&mut a);
            parts.take_output(&mut b);
            assert_eq!(a, b, "split at {split}");
        }
    }

    /// Every packet has at least 4 bytes of random padding and a length aligned to the block.
    #[test]
    fn padding_is_at_least_four_random_bytes_and_aligns_the_packet() {
        for n in 0..40 {
            let wire = write_all(&[vec![0xaa; n]]);
            let packet_len =
                usize::try_from(u32::from_be_bytes(wire[..4].try_into().unwrap())).unwrap();
            let padding = usize::from(wire[4]);
            assert_eq!(wire.len(), 4 + packet_len);
            assert_eq!((4 + packet_len) % 8, 0, "payload {n}");
            assert!((4..4 + 8).contains(&padding), "payload {n}: padding {padding}");
            assert!(wire[5 + n..].iter().any(|&b| b != 0), "padding of payload {n} is not random");
        }
    }

    /// Lengths 0, 5 (unaligned), 2^31 and 256 KiB + 1 are refused from the length field alone,
    /// before any body arrives.
    #[test]
    fn rejects_bad_packet_lengths_before_reading_the_body() {
        for len in [0u32, 5, 1 << 31, 256 * 1024 + 1, u32::MAX] {
            let mut wire = len.to_be_bytes().to_vec();
            wire.extend_from_slice(&[4, 0, 0, 0]);
            assert_eq!(
                read_all_ways(&wire),
                Err(InvalidMessage::BadPacketLength.into()),
                "length {len}"
            );
        }
    }

    /// The largest aligned length under 256 KiB is accepted and waited for.
    #[test]
    fn waits_for_a_maximum_size_packet() {
        let len = u32::try_from(MAX_PACKET_LEN - 4).unwrap();
        let mut reader = PacketReader::new();
        reader.push(&len.to_be_bytes());
        assert_eq!(reader.next_packet(), Ok(None));
        let payload = vec![7; MAX_PAYLOAD_LEN];
        let wire = write_all(std::slice::from_ref(&payload));
        assert_eq!(read_all(&wire, 4096).unwrap()[0].1, payload);
    }

    /// Padding shorter than 4 bytes, or as long as the packet, is refused.
    #[test]
    fn rejects_bad_padding() {
        // packet_length 12: padding_length byte, then 11 bytes.
        for padding in [0u8, 3, 12, 255] {
            let mut wire = 12u32.to_be_bytes().to_vec();
            wire.push(padding);
            wire.extend_from_slice(&[2; 11]);
            assert_eq!(read_all_ways(&wire), Err(InvalidMessage::BadPadding.into()), "{padding}");
        }
    }

    /// Sequence numbers wrap from 2^32 - 1 to 0, unless a wrap is forbidden (strict KEX).
    #[test]
    fn sequence_numbers_wrap_unless_forbidden() {
        let wire = write_all(&[vec![2], vec![2]]);
        let mut reader = PacketReader::new();
        reader.seq.set_next(u32::MAX);
        reader.push(&wire);
        assert_eq!(reader.next_packet().unwrap().unwrap().seq, u32::MAX);
        assert_eq!(reader.next_packet().unwrap().unwrap().seq, 0);

        let mut reader = PacketReader::new();
        reader.seq.set_next(u32::MAX);
        reader.seq.forbid_wrap(true);
        reader.push(&wire);
        assert_eq!(reader.next_packet(), Err(PeerMisbehaved::SequenceNumberWrapped.into()));
    }

    /// A payload that cannot fit in a 256 KiB packet is refused as local misuse.
    #[test]
    fn refuses_to_write_an_oversized_payload() {
        let mut writer = PacketWriter::new();
        let result = writer.write_packet(&vec![0; MAX_PACKET_LEN], &mut SeededRandom::new(1));
        assert_eq!(result, Err(crate::error::LocalMisuse::PayloadTooLarge.into()));
        assert_eq!(writer.pending(), 0);
    }

    /// Taking output into an empty buffer swaps buffers; into a non-empty one appends.
    #[test]
    fn take_output_swaps_into_empty_buffers_and_appends_otherwise() {
        let mut writer = PacketWriter::new();
        writer.write_raw(b"abc");
        let mut out = Vec::with_capacity(100);
        writer.take_output(&mut out);
        assert_eq!(out, b"abc");
        assert_eq!(writer.pending(), 0);
        writer.write_raw(b"de");
        writer.take_output(&mut out);
        assert_eq!(out, b"abcde");
    }

    /// Counts the calls made to it and keeps every byte it handed out.
    struct CountingRandom {
        calls: usize,
        given: Vec<u8>,
        inner: SeededRandom,
    }

    impl SecureRandom for CountingRandom {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
            self.calls += 1;
            self.inner.fill(dest)?;
            self.given.extend_from_slice(dest);
            Ok(())
        }
    }

    /// Padding comes from the generator a pool at a time: a hundred small packets make a few
    /// calls rather than a hundred, and no random byte is used twice.
    #[test]
    fn padding_is_drawn_from_the_generator_a_pool_at_a_time_without_reuse() {
        let mut writer = PacketWriter::new();
        let mut rng = CountingRandom { calls: 0, given: Vec::new(), inner: SeededRandom::new(5) };
        let mut pads = Vec::new();
        for _ in 0..100 {
            writer.write_packet(&[2, 0], &mut rng).unwrap();
            let mut out = Vec::new();
            writer.take_output(&mut out);
            pads.extend_from_slice(&out[7..]);
        }
        assert!(rng.calls <= pads.len() / PAD_POOL + 1, "{} calls", rng.calls);
        // The padding is the generator's output in order, with none of its bytes used twice:
        // a subsequence of what it gave.
        let mut given = rng.given.iter();
        for (i, pad) in pads.iter().enumerate() {
            assert!(given.any(|g| g == pad), "padding byte {i} is not from the generator in order");
        }
    }

    /// A payload handed out survives more input arriving (compaction keeps it).
    #[test]
    fn a_held_payload_survives_compaction() {
        let wire = write_all(&[vec![9; 100], vec![8; 100]]);
        let mut reader = PacketReader::new();
        reader.push(&wire[..wire.len() - 3]);
        let first = reader.next_packet().unwrap().unwrap();
        reader.push(&wire[wire.len() - 3..]);
        assert_eq!(reader.payload(&first.payload), &[9; 100][..]);
        reader.release();
        let second = reader.next_packet().unwrap().unwrap();
        assert_eq!(reader.payload(&second.payload), &[8; 100][..]);
    }
}

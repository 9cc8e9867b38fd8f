//! SSH messages as structs that decode themselves from a payload and encode themselves into a
//! caller-owned buffer. Each struct's documentation quotes the layout from its RFC.
//!
//! Decoding borrows from the payload (strings and name-lists are slices of it) and rejects
//! trailing bytes, so a message either decodes exactly or not at all.

pub mod transport;

use super::{InvalidMessage, MessageType, Reader, Writer};

/// A message with a fixed message number: decodes from and encodes to a whole payload.
pub trait Message<'a>: Sized {
    /// The message number that starts the payload.
    const TYPE: MessageType;

    /// Reads the fields after the message number.
    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage>;

    /// Writes the fields after the message number.
    fn encode_body(&self, w: &mut Writer<'_>);

    /// Decodes a whole payload: the message number must be [`Self::TYPE`] and every byte must
    /// be consumed.
    fn decode(payload: &'a [u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(payload);
        if r.read_message_type()? != Self::TYPE {
            return Err(InvalidMessage::UnexpectedMessageType);
        }
        let msg = Self::decode_body(&mut r)?;
        r.finish()?;
        Ok(msg)
    }

    /// Appends the whole payload (message number first) to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.write_u8(Self::TYPE.0);
        self.encode_body(&mut w);
    }
}

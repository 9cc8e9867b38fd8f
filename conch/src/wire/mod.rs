//! SSH encodings (RFC 4251 §5): the data types every message is made of, the message numbers
//! and disconnect reasons as open newtypes, and the limits that bound every length read from a
//! peer.
//!
//! [`Reader`] borrows from a decrypted packet and never allocates: strings and name-lists come
//! back as slices of the packet. [`Writer`] appends to a caller-owned `Vec<u8>`, so a buffer can
//! be reused from one packet to the next.

mod codes;
pub mod msgs;
mod reader;
mod writer;

pub use codes::{DisconnectReason, MessageType};
pub use reader::{NameList, Reader};
pub use writer::Writer;

use std::fmt;

/// The largest binary packet we accept or send, as OpenSSH does (`PACKET_MAX_SIZE`): the
/// `packet_length` field may not exceed this.
pub const MAX_PACKET_LEN: usize = 256 * 1024;

/// The longest name-list we accept, in bytes. OpenSSH's longest default lists are under 2 KiB;
/// this leaves room for every algorithm name we could ever know while bounding the work of
/// negotiation.
pub const MAX_NAME_LIST_LEN: usize = 64 * 1024;

/// The most names we accept in one name-list.
pub const MAX_NAME_LIST_ENTRIES: usize = 256;

/// The largest mpint we accept, in bytes: 16384-bit values, twice the largest DH group
/// (group18, 8192 bits) and RSA modulus we accept.
pub const MAX_MPINT_LEN: usize = 2048 + 1;

/// A message from the peer that could not be decoded. These are the peer's fault; each maps to
/// a disconnect reason through [`crate::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// A field ran past the end of the message.
    Truncated,
    /// Bytes were left after the last field of the message.
    TrailingData,
    /// A length field was larger than the limit for that field.
    LengthOverLimit,
    /// A boolean was neither 0 nor 1.
    InvalidBoolean,
    /// A field that must be UTF-8 (or US-ASCII) was not.
    InvalidUtf8,
    /// A name-list was empty where a name was required, had an empty name, a comma at an end,
    /// a non-printable byte, or too many names.
    InvalidNameList,
    /// An mpint had a redundant leading byte, or was negative where it must not be.
    InvalidMpint,
    /// A message was empty: it had no message number.
    EmptyMessage,
    /// The message number was not the one expected at this point.
    UnexpectedMessageType,
    /// A field had a value outside the set the protocol allows.
    InvalidValue,
    /// A packet's length was not a multiple of the cipher's block size, was below the minimum,
    /// or was over [`MAX_PACKET_LEN`].
    BadPacketLength,
    /// A packet's padding was shorter than 4 bytes or longer than the packet.
    BadPadding,
    /// The packet's MAC or AEAD tag did not verify.
    MacMismatch,
    /// A compressed payload did not inflate, or inflated past the packet limit.
    BadCompression,
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "message truncated",
            Self::TrailingData => "trailing data after message",
            Self::LengthOverLimit => "length field over limit",
            Self::InvalidBoolean => "invalid boolean",
            Self::InvalidUtf8 => "invalid UTF-8 in a text field",
            Self::InvalidNameList => "invalid name-list",
            Self::InvalidMpint => "invalid mpint encoding",
            Self::EmptyMessage => "empty message",
            Self::UnexpectedMessageType => "unexpected message type",
            Self::InvalidValue => "invalid field value",
            Self::BadPacketLength => "bad packet length",
            Self::BadPadding => "bad packet padding",
            Self::MacMismatch => "message authentication code incorrect",
            Self::BadCompression => "invalid compressed data",
        })
    }
}

impl std::error::Error for InvalidMessage {}

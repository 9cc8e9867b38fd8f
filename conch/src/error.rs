//! Errors, grouped by whose fault they are.
//!
//! - The peer's: [`InvalidMessage`] (could not decode), [`PeerMisbehaved`] (decoded, but not
//!   allowed here), [`PeerIncompatible`] (nothing in common with us).
//! - The peer's decision: [`Error::DisconnectReceived`].
//! - Ours, as a policy decision: [`Error::HostKeyRejected`], [`Error::Timeout`].
//! - Our caller's: [`LocalMisuse`].
//!
//! Each error knows which `SSH_MSG_DISCONNECT` reason, if any, goes on the wire
//! ([`Error::disconnect_reason`]), just as rustls maps its errors to alerts.

use std::fmt;

use crate::crypto::CryptoError;
use crate::wire::{DisconnectReason, InvalidMessage, MessageType};

/// An error that ends an SSH connection, or refuses a local request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that do not decode.
    InvalidMessage(InvalidMessage),
    /// The peer sent a well-formed message that the protocol forbids at this point.
    PeerMisbehaved(PeerMisbehaved),
    /// The peer and we have no common ground: protocol version or algorithms.
    PeerIncompatible(PeerIncompatible),
    /// The peer sent `SSH_MSG_DISCONNECT`.
    DisconnectReceived {
        /// The reason code it gave.
        reason: DisconnectReason,
        /// Its human-readable description, with control characters removed.
        description: String,
    },
    /// We ended the connection with `SSH_MSG_DISCONNECT` because the application asked.
    DisconnectSent {
        /// The reason code we sent.
        reason: DisconnectReason,
        /// The description we sent.
        description: String,
    },
    /// Our host-key policy refused the server's host key (client side).
    HostKeyRejected,
    /// A deadline passed: the login grace time, an unanswered keepalive.
    Timeout(TimeoutKind),
    /// A cryptographic operation failed on our side (not a peer's bad signature or MAC, which
    /// are [`PeerMisbehaved`] and [`InvalidMessage`]).
    Crypto(CryptoError),
    /// The caller used the API wrongly; nothing is sent to the peer.
    LocalMisuse(LocalMisuse),
    /// The connection is already closed.
    ConnectionClosed,
}

impl Error {
    /// The reason code to send in `SSH_MSG_DISCONNECT` for this error, or `None` when nothing
    /// should be sent (the peer already disconnected, or the error is local misuse).
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        match self {
            Self::InvalidMessage(InvalidMessage::MacMismatch) => Some(DisconnectReason::MAC_ERROR),
            Self::InvalidMessage(InvalidMessage::BadCompression) => {
                Some(DisconnectReason::COMPRESSION_ERROR)
            }
            Self::InvalidMessage(_) => Some(DisconnectReason::PROTOCOL_ERROR),
            Self::PeerMisbehaved(m) => Some(m.disconnect_reason()),
            Self::PeerIncompatible(PeerIncompatible::ProtocolVersion) => {
                Some(DisconnectReason::PROTOCOL_VERSION_NOT_SUPPORTED)
            }
            Self::PeerIncompatible(PeerIncompatible::ServiceNotAvailable) => {
                Some(DisconnectReason::SERVICE_NOT_AVAILABLE)
            }
            Self::PeerIncompatible(_) => Some(DisconnectReason::KEY_EXCHANGE_FAILED),
            Self::HostKeyRejected => Some(DisconnectReason::HOST_KEY_NOT_VERIFIABLE),
            Self::Timeout(_) | Self::Crypto(_) => Some(DisconnectReason::BY_APPLICATION),
            Self::DisconnectReceived { .. }
            | Self::DisconnectSent { .. }
            | Self::LocalMisuse(_)
            | Self::ConnectionClosed => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMessage(e) => write!(f, "invalid message from peer: {e}"),
            Self::PeerMisbehaved(e) => write!(f, "peer misbehaved: {e}"),
            Self::PeerIncompatible(e) => write!(f, "peer incompatible: {e}"),
            Self::DisconnectReceived { reason, description } => {
                write!(f, "peer disconnected ({reason}): {description}")
            }
            Self::DisconnectSent { reason, description } => {
                write!(f, "disconnected ({reason}): {description}")
            }
            Self::HostKeyRejected => f.write_str("host key verification failed"),
            Self::Timeout(kind) => write!(f, "timeout: {kind}"),
            Self::Crypto(e) => write!(f, "cryptographic failure: {e}"),
            Self::LocalMisuse(e) => write!(f, "API misuse: {e}"),
            Self::ConnectionClosed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for Error {}

impl From<InvalidMessage> for Error {
    fn from(e: InvalidMessage) -> Self {
        Self::InvalidMessage(e)
    }
}

impl From<PeerMisbehaved> for Error {
    fn from(e: PeerMisbehaved) -> Self {
        Self::PeerMisbehaved(e)
    }
}

impl From<PeerIncompatible> for Error {
    fn from(e: PeerIncompatible) -> Self {
        Self::PeerIncompatible(e)
    }
}

impl From<LocalMisuse> for Error {
    fn from(e: LocalMisuse) -> Self {
        Self::LocalMisuse(e)
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// Well-formed messages the protocol does not allow where the peer sent them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A message number not allowed in the current state (or from this side).
    UnexpectedMessage(MessageType),
    /// A second `SSH_MSG_KEXINIT` while a key exchange was already running.
    KexInitDuringKeyExchange,
    /// Under strict key exchange, a message other than KEXINIT came first, or a non-KEX message
    /// (IGNORE, DEBUG, ...) arrived before NEWKEYS (CVE-2023-48795, Terrapin).
    UnexpectedMessageDuringStrictKex,
    /// The sequence number wrapped during the initial key exchange under strict KEX.
    SequenceNumberWrapped,
    /// The host key signature over the exchange hash did not verify.
    BadHostKeySignature,
    /// The peer's key exchange public value was invalid (wrong length, not on the curve, out of
    /// range, a low-order point).
    InvalidKexPublicValue,
    /// The host key sent did not match the negotiated host key algorithm.
    HostKeyAlgorithmMismatch,
    /// More than the allowed number of identification lines or bytes before the version.
    TooMuchBeforeVersion,
    /// The identification line was longer than 255 bytes or not valid.
    InvalidIdentification,
    /// The peer sent more data than it was allowed to (a window or a buffer bound).
    BufferLimitExceeded,
    /// A userauth or connection message arrived before authentication completed.
    MessageBeforeAuthentication(MessageType),
    /// A rekey presented a different host key than the initial key exchange.
    HostKeyChangedDuringRekey,
    /// A channel message named a channel that does not exist (or no longer does).
    UnknownChannel(MessageType),
    /// More channel data than the channel's window allowed.
    ChannelWindowExceeded,
    /// A window adjust that would take the channel's window past 2^32 - 1.
    ChannelWindowOverflow,
    /// Channel data larger than the maximum packet size we advertised.
    ChannelPacketTooLarge,
    /// Extended data after the peer's `SSH_MSG_CHANNEL_EOF` on that channel.
    ChannelDataAfterEof,
    /// A session open after `no-more-sessions@openssh.com`.
    SessionAfterNoMoreSessions,
    /// More requests awaiting an answer or the application than the configured limit.
    TooManyPendingRequests,
    /// The client failed authentication `MaxAuthTries` times, or sent over a thousand requests.
    TooManyAuthFailures,
    /// A `USERAUTH_REQUEST` named another user or service than the first one did.
    AuthUserOrServiceChanged,
    /// A `publickey-hostbound-v00@openssh.com` request named a host key other than ours.
    HostboundWrongHostKey,
    /// An `SSH_MSG_USERAUTH_INFO_RESPONSE` did not answer exactly the prompts asked.
    WrongNumberOfInfoResponses,
    /// An `SSH_MSG_USERAUTH_PK_OK` named a key or algorithm other than the one queried.
    PkOkForUnrequestedKey,
}

impl PeerMisbehaved {
    /// The disconnect reason for this misbehaviour.
    pub fn disconnect_reason(self) -> DisconnectReason {
        match self {
            Self::BadHostKeySignature
            | Self::HostKeyAlgorithmMismatch
            | Self::HostKeyChangedDuringRekey => DisconnectReason::HOST_KEY_NOT_VERIFIABLE,
            Self::InvalidKexPublicValue
            | Self::KexInitDuringKeyExchange
            | Self::UnexpectedMessageDuringStrictKex
            | Self::SequenceNumberWrapped => DisconnectReason::KEY_EXCHANGE_FAILED,
            Self::UnexpectedMessage(_)
            | Self::TooMuchBeforeVersion
            | Self::InvalidIdentification
            | Self::BufferLimitExceeded
            | Self::MessageBeforeAuthentication(_)
            | Self::UnknownChannel(_)
            | Self::ChannelWindowExceeded
            | Self::ChannelWindowOverflow
            | Self::ChannelPacketTooLarge
            | Self::ChannelDataAfterEof
            | Self::SessionAfterNoMoreSessions
            | Self::TooManyPendingRequests => DisconnectReason::PROTOCOL_ERROR,
            Self::TooManyAuthFailures
            | Self::AuthUserOrServiceChanged
            | Self::HostboundWrongHostKey
            | Self::WrongNumberOfInfoResponses
            | Self::PkOkForUnrequestedKey => DisconnectReason::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for PeerMisbehaved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedMessage(t) => write!(f, "unexpected message {t}"),
            Self::KexInitDuringKeyExchange => f.write_str("KEXINIT during key exchange"),
            Self::UnexpectedMessageDuringStrictKex => {
                f.write_str("unexpected message during strict key exchange")
            }
            Self::SequenceNumberWrapped => {
                f.write_str("sequence number wrapped during key exchange")
            }
            Self::BadHostKeySignature => f.write_str("host key signature did not verify"),
            Self::InvalidKexPublicValue => f.write_str("invalid key exchange public value"),
            Self::HostKeyAlgorithmMismatch => f.write_str("host key does not match algorithm"),
            Self::TooMuchBeforeVersion => f.write_str("too much data before version line"),
            Self::InvalidIdentification => f.write_str("invalid identification line"),
            Self::BufferLimitExceeded => f.write_str("peer exceeded a buffer limit"),
            Self::MessageBeforeAuthentication(t) => {
                write!(f, "message {t} before authentication")
            }
            Self::HostKeyChangedDuringRekey => f.write_str("host key changed during rekey"),
            Self::UnknownChannel(t) => write!(f, "{t} for a channel that does not exist"),
            Self::ChannelWindowExceeded => f.write_str("channel data beyond the window"),
            Self::ChannelWindowOverflow => f.write_str("channel window adjust past 2^32-1"),
            Self::ChannelPacketTooLarge => f.write_str("channel data over the maximum packet size"),
            Self::ChannelDataAfterEof => f.write_str("extended data after channel EOF"),
            Self::SessionAfterNoMoreSessions => {
                f.write_str("session opened after no-more-sessions@openssh.com")
            }
            Self::TooManyPendingRequests => f.write_str("too many requests pending"),
            Self::TooManyAuthFailures => f.write_str("Too many authentication failures"),
            Self::AuthUserOrServiceChanged => {
                f.write_str("Change of username or service not allowed")
            }
            Self::HostboundWrongHostKey => {
                f.write_str("host-bound publickey request contained wrong host key")
            }
            Self::WrongNumberOfInfoResponses => {
                f.write_str("wrong number of keyboard-interactive responses")
            }
            Self::PkOkForUnrequestedKey => f.write_str("server replied with unknown key"),
        }
    }
}

/// Ways the peer and we have nothing in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerIncompatible {
    /// The peer speaks SSH 1.x (or another version that is not 2.0 or 1.99).
    ProtocolVersion,
    /// No key exchange method in common.
    NoCommonKex,
    /// No host key algorithm in common.
    NoCommonHostKey,
    /// No cipher in common (in the named direction).
    NoCommonCipher,
    /// No MAC in common.
    NoCommonMac,
    /// No compression method in common.
    NoCommonCompression,
    /// The peer asked for a service we do not offer (RFC 4252 §5: only `ssh-connection`).
    ServiceNotAvailable,
}

impl fmt::Display for PeerIncompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProtocolVersion => "protocol major versions differ",
            Self::NoCommonKex => "no matching key exchange method found",
            Self::NoCommonHostKey => "no matching host key type found",
            Self::NoCommonCipher => "no matching cipher found",
            Self::NoCommonMac => "no matching MAC found",
            Self::NoCommonCompression => "no matching compression method found",
            Self::ServiceNotAvailable => "requested service not available",
        })
    }
}

/// Deadlines that end a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Authentication did not finish within the login grace time.
    LoginGrace,
    /// The peer did not answer keepalives.
    Keepalive,
    /// A key exchange did not finish in time.
    KeyExchange,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LoginGrace => "authentication did not finish in time",
            Self::Keepalive => "peer did not answer keepalives",
            Self::KeyExchange => "key exchange did not finish in time",
        })
    }
}

/// Wrong uses of the API by the program embedding us. Never sent to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalMisuse {
    /// A payload was sent before the transport could carry it, or after it closed.
    NotReady,
    /// A payload exceeds the maximum packet size.
    PayloadTooLarge,
    /// The bounded queue of outgoing payloads held during key exchange is full.
    SendQueueFull,
    /// A configuration has no usable algorithm in some category, or no host key.
    InvalidConfig,
    /// An identifier (channel, request) that does not exist.
    UnknownId,
    /// More input was offered than the input buffer has room for.
    InputBufferFull,
    /// A payload that is empty or carries a message number the transport layer owns.
    InvalidPayload,
    /// The channel is not in a state that allows this (not open yet, or closing).
    WrongChannelState,
    /// The connection already has as many channels as its configuration allows.
    TooManyChannels,
    /// This side of the connection does not send this channel type or request.
    WrongSide,
    /// The connection layer's output queue is over its limit (poll payloads first), or too many
    /// of our requests await a reply.
    OutputQueueFull,
    /// A payload was handed to a layer that does not own its message number (a transport
    /// message to userauth, a connection message to userauth after authentication).
    WrongLayer,
    /// A command the state machine is not waiting for (a password nobody asked for).
    NotExpected,
    /// An answer that does not fit its question: a decision the request's method does not
    /// allow, a wrong number of responses, a signature of another algorithm.
    InvalidAnswer,
}

impl fmt::Display for LocalMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotReady => "transport not ready for this payload",
            Self::PayloadTooLarge => "payload too large for one packet",
            Self::SendQueueFull => "send queue full during key exchange",
            Self::InvalidConfig => "configuration has no usable algorithm or key",
            Self::UnknownId => "unknown identifier",
            Self::InputBufferFull => "input buffer full",
            Self::InvalidPayload => "payload empty or reserved to the transport layer",
            Self::WrongChannelState => "channel not in a state for this",
            Self::TooManyChannels => "too many channels",
            Self::WrongSide => "not sent by this side of the connection",
            Self::OutputQueueFull => "connection output queue full",
            Self::WrongLayer => "payload handed to a layer that does not own it",
            Self::NotExpected => "command not expected in this state",
            Self::InvalidAnswer => "answer does not fit the question",
        })
    }
}

/// Who ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Initiator {
    /// This side: an error we detected, or a close the application asked for.
    Local,
    /// The peer: its `SSH_MSG_DISCONNECT` or its closing the stream.
    Remote,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MAC failure is reported to the peer as a MAC error, other decode errors as protocol errors.
    #[test]
    fn maps_decode_errors_to_disconnect_reasons() {
        assert_eq!(
            Error::from(InvalidMessage::MacMismatch).disconnect_reason(),
            Some(DisconnectReason::MAC_ERROR)
        );
        assert_eq!(
            Error::from(InvalidMessage::Truncated).disconnect_reason(),
            Some(DisconnectReason::PROTOCOL_ERROR)
        );
        assert_eq!(
            Error::from(PeerMisbehaved::UnexpectedMessageDuringStrictKex).disconnect_reason(),
            Some(DisconnectReason::KEY_EXCHANGE_FAILED)
        );
    }

    /// Errors that came from the peer's own disconnect, or from local misuse, send nothing.
    #[test]
    fn sends_nothing_for_received_disconnects_or_local_misuse() {
        let received = Error::DisconnectReceived {
            reason: DisconnectReason::BY_APPLICATION,
            description: "bye".into(),
        };
        assert_eq!(received.disconnect_reason(), None);
        assert_eq!(Error::from(LocalMisuse::NotReady).disconnect_reason(), None);
    }
}

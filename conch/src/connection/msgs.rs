//! The connection protocol's messages (RFC 4254, RFC 4335 and OpenSSH's `PROTOCOL`), one
//! struct per message, plus the typed channel kinds, channel requests and global requests they
//! carry.
//!
//! Every `decode` reads the fields that follow the message number (the caller has already read
//! it to dispatch) and rejects trailing bytes; every `encode` writes the whole payload, message
//! number first. Decoders borrow from the payload where the data is on the hot path
//! ([`ChannelData`], [`ChannelExtendedData`]) and own what they hand to the application as an
//! event (kinds, requests). Nothing is allocated beyond what the payload itself holds, and a
//! payload is bounded by the transport's packet limit.

use std::collections::BTreeMap;
use std::fmt;

use super::Side;
use crate::wire::{InvalidMessage, MessageType, Reader, Writer};

/// The most host keys we accept in one `hostkeys-00@openssh.com` or
/// `hostkeys-prove-00@openssh.com` request or reply. OpenSSH servers hold a handful; this bounds
/// the number of allocations one request can cause.
pub const MAX_HOST_KEYS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Channel lifecycle and data messages.
// ---------------------------------------------------------------------------------------------

/// `SSH_MSG_CHANNEL_OPEN` (RFC 4254 §5.1):
///
/// ```text
/// byte      SSH_MSG_CHANNEL_OPEN
/// string    channel type in US-ASCII only
/// uint32    sender channel
/// uint32    initial window size
/// uint32    maximum packet size
/// ....      channel type specific data follows
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOpen {
    /// The opener's channel number.
    pub sender: u32,
    /// How many bytes the opener lets us send before it adjusts the window.
    pub window: u32,
    /// The largest data field the opener accepts in one packet.
    pub max_packet: u32,
    /// The channel type and its type-specific data; `None` for a type we do not know.
    pub kind: Option<ChannelKind>,
}

impl ChannelOpen {
    /// Decodes the fields after the message number. An unknown channel type is not an error: its
    /// type-specific data is skipped so that the open can be refused politely.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
        let channel_type = r.read_string()?;
        let sender = r.read_u32()?;
        let window = r.read_u32()?;
        let max_packet = r.read_u32()?;
        let kind = ChannelKind::decode(channel_type, r)?;
        if kind.is_none() {
            r.read_rest();
        }
        r.finish()?;
        Ok(Self { sender, window, max_packet, kind })
    }

    /// Encodes the whole message. A `None` kind cannot be sent and writes nothing.
    pub fn encode(&self, w: &mut Writer<'_>) {
        let Some(kind) = &self.kind else { return };
        w.write_u8(MessageType::CHANNEL_OPEN.0)
            .write_string(kind.type_name().as_bytes())
            .write_u32(self.sender)
            .write_u32(self.window)
            .write_u32(self.max_packet);
        kind.encode_data(w);
    }
}

/// `SSH_MSG_CHANNEL_OPEN_CONFIRMATION` (RFC 4254 §5.1):
///
/// ```text
/// byte      SSH_MSG_CHANNEL_OPEN_CONFIRMATION
/// uint32    recipient channel
/// uint32    sender channel
/// uint32    initial window size
/// uint32    maximum packet size
/// ....      channel type specific data follows
/// ```
///
/// No channel type we know has confirmation data, so trailing bytes are an error (as in
/// OpenSSH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOpenConfirmation {
    /// The opener's channel number.
    pub recipient: u32,
    /// The confirmer's channel number.
    pub sender: u32,
    /// How many bytes the confirmer lets the opener send.
    pub window: u32,
    /// The largest data field the confirmer accepts in one packet.
    pub max_packet: u32,
}

impl ChannelOpenConfirmation {
    /// Decodes the fields after the message number.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
        let msg = Self {
            recipient: r.read_u32()?,
            sender: r.read_u32()?,
            window: r.read_u32()?,
            max_packet: r.read_u32()?,
        };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the whole message.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::CHANNEL_OPEN_CONFIRMATION.0)
            .write_u32(self.recipient)
            .write_u32(self.sender)
            .write_u32(self.window)
            .write_u32(self.max_packet);
    }
}

/// `SSH_MSG_CHANNEL_OPEN_FAILURE` (RFC 4254 §5.1):
///
/// ```text
/// byte      SSH_MSG_CHANNEL_OPEN_FAILURE
/// uint32    recipient channel
/// uint32    reason code
/// string    description in ISO-10646 UTF-8 encoding [RFC3629]
/// string    language tag [RFC3066]
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOpenFailure {
    /// The opener's channel number.
    pub recipient: u32,
    /// Why the open was refused.
    pub reason: OpenFailureReason,
    /// A human-readable explanation; invalid UTF-8 is replaced, never fatal.
    pub description: String,
}

impl ChannelOpenFailure {
    /// Decodes the fields after the message number. The language tag is read and dropped.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
        let recipient = r.read_u32()?;
        let reason = OpenFailureReason(r.read_u32()?);
        let description = read_display_text(r)?;
        r.read_string()?;
        r.finish()?;
        Ok(Self { recipient, reason, description })
    }

    /// Encodes the whole message, with an empty language tag.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::CHANNEL_OPEN_FAILURE.0)
            .write_u32(self.recipient)
            .write_u32(self.reason.0)
            .write_string(self.description.as_bytes())
            .write_string(b"");
    }
}

/// `SSH_MSG_CHANNEL_WINDOW_ADJUST` (RFC 4254 §5.2):
///
/// ```text
/// byte      SSH_MSG_CHANNEL_WINDOW_ADJUST
/// uint32    recipient channel
/// uint32    bytes to add
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelWindowAdjust {
    /// The channel whose window grows, numbered by the receiver of this message.
    pub recipient: u32,
    /// How many more bytes the receiver may send.
    pub bytes_to_add: u32,
}

impl ChannelWindowAdjust {
    /// Decodes the fields after the message number.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
        let msg = Self { recipient: r.read_u32()?, bytes_to_add: r.read_u32()? };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the whole message.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::CHANNEL_WINDOW_ADJUST.0)
            .write_u32(self.recipient)
            .write_u32(self.bytes_to_add);
    }
}

/// `SSH_MSG_CHANNEL_DATA` (RFC 4254 §5.2), borrowed from the payload:
///
/// ```text
/// byte      SSH_MSG_CHANNEL_DATA
/// uint32    recipient channel
/// string    data
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The receiving side's channel number.
    pub recipient: u32,
    /// The bytes.
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Decodes the fields after the message number.
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let msg = Self { recipient: r.read_u32()?, data: r.read_string()? };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the whole message.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::CHANNEL_DATA.0).write_u32(self.recipient).write_string(self.data);
    }
}

/// `SSH_MSG_CHANNEL_EXTENDED_DATA` (RFC 4254 §5.2), borrowed from the payload:
///
/// ```text
/// byte      SSH_MSG_CHANNEL_EXTENDED_DATA
/// uint32    recipient channel
/// uint32    data_type_code
/// string    data
/// ```
///
/// The only code defined is `SSH_EXTENDED_DATA_STDERR` (1), [`EXTENDED_DATA_STDERR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelExtendedData<'a> {
    /// The receiving side's channel number.
    pub recipient: u32,
    /// The kind of data: 1 for standard error.
    pub code: u32,
    /// The bytes.
    pub data: &'a [u8],
}

/// `SSH_EXTENDED_DATA_STDERR`, the one extended data type code (RFC 4254 §5.2).
pub const EXTENDED_DATA_STDERR: u32 = 1;

impl<'a> ChannelExtendedData<'a> {
    /// Decodes the fields after the message number.
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let msg = Self { recipient: r.read_u32()?, code: r.read_u32()?, data: r.read_string()? };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the whole message.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.write_u8(MessageType::CHANNEL_EXTENDED_DATA.0)
            .write_u32(self.recipient)
            .write_u32(self.code)
            .write_string(self.data);
    }
}

macro_rules! recipient_only {
    ($(#[$meta:meta])* $name:ident, $konst:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The receiving side's channel number.
            pub recipient: u32,
        }

        impl $name {
            /// Decodes the fields after the message number.
            pub fn decode(r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
                let msg = Self { recipient: r.read_u32()? };
                r.finish()?;
                Ok(msg)
            }

            /// Encodes the whole message.
            pub fn encode(&self, w: &mut Writer<'_>) {
                w.write_u8(MessageType::$konst.0).write_u32(self.recipient);
            }
        }
    };
}

recipient_only! {
    /// `SSH_MSG_CHANNEL_EOF` (RFC 4254 §5.3):
    ///
    /// ```text
    /// byte      SSH_MSG_CHANNEL_EOF
    /// uint32    recipient channel
    /// ```
    ChannelEof, CHANNEL_EOF
}

recipient_only! {
    /// `SSH_MSG_CHANNEL_CLOSE` (RFC 4254 §5.3):
    ///
    /// ```text
    /// byte      SSH_MSG_CHANNEL_CLOSE
    /// uint32    recipient channel
    /// ```
    ChannelClose, CHANNEL_CLOSE
}

recipient_only! {
    /// `SSH_MSG_CHANNEL_SUCCESS` (RFC 4254 §5.4):
    ///
    /// ```text
    /// byte      SSH_MSG_CHANNEL_SUCCESS
    /// uint32    recipient channel
    /// ```
    ChannelSuccess, CHANNEL_SUCCESS
}

recipient_only! {
    /// `SSH_MSG_CHANNEL_FAILURE` (RFC 4254 §5.4):
    ///
    /// ```text
    /// byte      SSH_MSG_CHANNEL_FAILURE
    /// uint32    recipient channel
    /// ```
    ChannelFailure, CHANNEL_FAILURE
}

/// `SSH_MSG_CHANNEL_REQUEST` (RFC 4254 §5.4):
///
/// ```text
/// byte      SSH_MSG_CHANNEL_REQUEST
/// uint32    recipient channel
/// string    request type in US-ASCII characters only
/// boolean   want reply
/// ....      type-specific data follows
/// ```
///
/// Decoding stops after `want reply`: which requests are typed depends on the channel and on who
/// sent it, so [`ChannelRequest::decode`] runs on [`data`](Self::data) once the caller knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRequestHeader<'a> {
    /// The receiving side's channel number.
    pub recipient: u32,
    /// The request type.
    pub name: &'a str,
    /// Whether the sender wants `SSH_MSG_CHANNEL_SUCCESS` or `SSH_MSG_CHANNEL_FAILURE` back.
    pub want_reply: bool,
    /// The type-specific data, undecoded.
    pub data: &'a [u8],
}

impl<'a> ChannelRequestHeader<'a> {
    /// Decodes the fields after the message number; the rest is [`data`](Self::data).
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let recipient = r.read_u32()?;
        let name = r.read_utf8()?;
        let want_reply = r.read_bool()?;
        Ok(Self { recipient, name, want_reply, data: r.read_rest() })
    }

    /// Encodes a whole `SSH_MSG_CHANNEL_REQUEST` carrying `request`.
    pub fn encode(w: &mut Writer<'_>, recipient: u32, request: &ChannelRequest, want_reply: bool) {
        w.write_u8(MessageType::CHANNEL_REQUEST.0)
            .write_u32(recipient)
            .write_string(request.name().as_bytes())
            .write_bool(want_reply);
        request.encode_data(w);
    }
}

/// `SSH_MSG_GLOBAL_REQUEST` (RFC 4254 §4):
///
/// ```text
/// byte      SSH_MSG_GLOBAL_REQUEST
/// string    request name in US-ASCII only
/// boolean   want reply
/// ....      request-specific data follows
/// ```
///
/// As with [`ChannelRequestHeader`], the request-specific data is decoded by
/// [`GlobalRequest::decode`] once the caller knows who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalRequestHeader<'a> {
    /// The request name.
    pub name: &'a str,
    /// Whether the sender wants `SSH_MSG_REQUEST_SUCCESS` or `SSH_MSG_REQUEST_FAILURE` back.
    pub want_reply: bool,
    /// The request-specific data, undecoded.
    pub data: &'a [u8],
}

impl<'a> GlobalRequestHeader<'a> {
    /// Decodes the fields after the message number; the rest is [`data`](Self::data).
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let name = r.read_utf8()?;
        let want_reply = r.read_bool()?;
        Ok(Self { name, want_reply, data: r.read_rest() })
    }

    /// Encodes a whole `SSH_MSG_GLOBAL_REQUEST` carrying `request`.
    pub fn encode(w: &mut Writer<'_>, request: &GlobalRequest, want_reply: bool) {
        w.write_u8(MessageType::GLOBAL_REQUEST.0)
            .write_string(request.name().as_bytes())
            .write_bool(want_reply);
        request.encode_data(w);
    }
}

/// `SSH_MSG_REQUEST_SUCCESS` and `SSH_MSG_REQUEST_FAILURE` (RFC 4254 §4):
///
/// ```text
/// byte      SSH_MSG_REQUEST_SUCCESS
/// ....     response specific data
///
/// byte      SSH_MSG_REQUEST_FAILURE
/// ```
///
/// The response data's layout depends on the request it answers; see [`GlobalReply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyFormat {
    /// Any data is ignored: the request defines none.
    Plain,
    /// `tcpip-forward` for port 0: `uint32 port that was bound on the server` (RFC 4254 §7.1).
    BoundPort,
    /// `hostkeys-prove-00@openssh.com`: one `string signature` per key asked about.
    HostKeyProofs,
    /// A request we do not know: the data is kept as it came.
    Raw,
}

impl GlobalReply {
    /// Decodes the data of an `SSH_MSG_REQUEST_SUCCESS` (after the message number) answering a
    /// request whose reply has layout `format`.
    pub fn decode_success(format: ReplyFormat, r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
        let reply = match format {
            ReplyFormat::Plain => {
                r.read_rest();
                Self::Success
            }
            ReplyFormat::BoundPort => Self::BoundPort(r.read_u32()?),
            ReplyFormat::HostKeyProofs => Self::HostKeyProofs(read_blob_list(r)?),
            ReplyFormat::Raw => match r.read_rest() {
                [] => Self::Success,
                data => Self::SuccessWith(data.to_vec()),
            },
        };
        r.finish()?;
        Ok(reply)
    }

    /// Encodes the whole reply message.
    pub fn encode(&self, w: &mut Writer<'_>) {
        match self {
            Self::Failure => {
                w.write_u8(MessageType::REQUEST_FAILURE.0);
            }
            Self::Success => {
                w.write_u8(MessageType::REQUEST_SUCCESS.0);
            }
            Self::BoundPort(port) => {
                w.write_u8(MessageType::REQUEST_SUCCESS.0).write_u32(*port);
            }
            Self::HostKeyProofs(signatures) => {
                w.write_u8(MessageType::REQUEST_SUCCESS.0);
                for signature in signatures {
                    w.write_string(signature);
                }
            }
            Self::SuccessWith(data) => {
                w.write_u8(MessageType::REQUEST_SUCCESS.0).write_raw(data);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Typed contents: channel kinds, open failure reasons, requests and replies.
// ---------------------------------------------------------------------------------------------

/// A channel type with its type-specific open data (RFC 4254 §6.1, §6.3.2, §7.2; OpenSSH
/// `PROTOCOL` §2.4 and the agent protocol).
///
/// Addresses and names are UTF-8 text; socket paths are bytes, as the file system has them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelKind {
    /// `session`: a shell, a command or a subsystem. Opened by clients. No data.
    Session,
    /// `direct-tcpip`: the client asks the server to connect to `host:port` (local forwarding).
    ///
    /// ```text
    /// string    host to connect
    /// uint32    port to connect
    /// string    originator IP address
    /// uint32    originator port
    /// ```
    DirectTcpip {
        /// The host to connect to.
        host: String,
        /// The port to connect to.
        port: u32,
        /// Where the forwarded connection came from.
        originator_address: String,
        /// Its port.
        originator_port: u32,
    },
    /// `forwarded-tcpip`: the server reports a connection to a port forwarded with
    /// `tcpip-forward` (remote forwarding).
    ///
    /// ```text
    /// string    address that was connected
    /// uint32    port that was connected
    /// string    originator IP address
    /// uint32    originator port
    /// ```
    ForwardedTcpip {
        /// The listening address that was connected to.
        address: String,
        /// The listening port that was connected to.
        port: u32,
        /// Where the connection came from.
        originator_address: String,
        /// Its port.
        originator_port: u32,
    },
    /// `direct-streamlocal@openssh.com`: the client asks the server to connect to a Unix socket.
    ///
    /// ```text
    /// string    socket path
    /// string    reserved
    /// uint32    reserved
    /// ```
    DirectStreamlocal {
        /// The socket to connect to.
        socket_path: Vec<u8>,
    },
    /// `forwarded-streamlocal@openssh.com`: the server reports a connection to a Unix socket
    /// forwarded with `streamlocal-forward@openssh.com`.
    ///
    /// ```text
    /// string    socket path
    /// string    reserved for future use
    /// ```
    ForwardedStreamlocal {
        /// The listening socket that was connected to.
        socket_path: Vec<u8>,
    },
    /// `auth-agent@openssh.com`: the server opens a connection to the client's agent, after
    /// `auth-agent-req@openssh.com`. No data.
    AuthAgent,
    /// `x11`: the server opens an X11 connection to the client, after `x11-req`.
    ///
    /// ```text
    /// string    originator address (e.g., "192.168.7.38")
    /// uint32    originator port
    /// ```
    X11 {
        /// Where the X11 client connected from.
        originator_address: String,
        /// Its port.
        originator_port: u32,
    },
}

impl ChannelKind {
    /// The channel type as it appears on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::DirectTcpip { .. } => "direct-tcpip",
            Self::ForwardedTcpip { .. } => "forwarded-tcpip",
            Self::DirectStreamlocal { .. } => "direct-streamlocal@openssh.com",
            Self::ForwardedStreamlocal { .. } => "forwarded-streamlocal@openssh.com",
            Self::AuthAgent => "auth-agent@openssh.com",
            Self::X11 { .. } => "x11",
        }
    }

    /// The side that may open a channel of this kind.
    pub fn opener(&self) -> Side {
        match self {
            Self::Session | Self::DirectTcpip { .. } | Self::DirectStreamlocal { .. } => {
                Side::Client
            }
            Self::ForwardedTcpip { .. }
            | Self::ForwardedStreamlocal { .. }
            | Self::AuthAgent
            | Self::X11 { .. } => Side::Server,
        }
    }

    /// Decodes the type-specific data of a channel of type `name`; `None` for a type we do not
    /// know (its data is left unread).
    pub fn decode(name: &[u8], r: &mut Reader<'_>) -> Result<Option<Self>, InvalidMessage> {
        let kind = match name {
            b"session" => Self::Session,
            b"direct-tcpip" => Self::DirectTcpip {
                host: read_text(r)?,
                port: r.read_u32()?,
                originator_address: read_text(r)?,
                originator_port: r.read_u32()?,
            },
            b"forwarded-tcpip" => Self::ForwardedTcpip {
                address: read_text(r)?,
                port: r.read_u32()?,
                originator_address: read_text(r)?,
                originator_port: r.read_u32()?,
            },
            b"direct-streamlocal@openssh.com" => {
                let socket_path = read_cstring(r)?.to_vec();
                r.read_string()?;
                r.read_u32()?;
                Self::DirectStreamlocal { socket_path }
            }
            b"forwarded-streamlocal@openssh.com" => {
                let socket_path = read_cstring(r)?.to_vec();
                r.read_string()?;
                Self::ForwardedStreamlocal { socket_path }
            }
            b"auth-agent@openssh.com" => Self::AuthAgent,
            b"x11" => {
                Self::X11 { originator_address: read_text(r)?, originator_port: r.read_u32()? }
            }
            _ => return Ok(None),
        };
        Ok(Some(kind))
    }

    /// Encodes the type-specific data.
    pub fn encode_data(&self, w: &mut Writer<'_>) {
        match self {
            Self::Session | Self::AuthAgent => {}
            Self::DirectTcpip { host: a, port: p, originator_address, originator_port }
            | Self::ForwardedTcpip { address: a, port: p, originator_address, originator_port } => {
                w.write_string(a.as_bytes())
                    .write_u32(*p)
                    .write_string(originator_address.as_bytes())
                    .write_u32(*originator_port);
            }
            Self::DirectStreamlocal { socket_path } => {
                w.write_string(socket_path).write_string(b"").write_u32(0);
            }
            Self::ForwardedStreamlocal { socket_path } => {
                w.write_string(socket_path).write_string(b"");
            }
            Self::X11 { originator_address, originator_port } => {
                w.write_string(originator_address.as_bytes()).write_u32(*originator_port);
            }
        }
    }
}

/// The reason code of `SSH_MSG_CHANNEL_OPEN_FAILURE` (RFC 4254 §5.1, RFC 4250 §4.3): an open
/// newtype, so that codes we do not know still decode.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenFailureReason(pub u32);

impl OpenFailureReason {
    /// `SSH_OPEN_ADMINISTRATIVELY_PROHIBITED`.
    pub const ADMINISTRATIVELY_PROHIBITED: Self = Self(1);
    /// `SSH_OPEN_CONNECT_FAILED`.
    pub const CONNECT_FAILED: Self = Self(2);
    /// `SSH_OPEN_UNKNOWN_CHANNEL_TYPE`.
    pub const UNKNOWN_CHANNEL_TYPE: Self = Self(3);
    /// `SSH_OPEN_RESOURCE_SHORTAGE`.
    pub const RESOURCE_SHORTAGE: Self = Self(4);

    /// The protocol name of this code, if it is one we know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "ADMINISTRATIVELY_PROHIBITED",
            2 => "CONNECT_FAILED",
            3 => "UNKNOWN_CHANNEL_TYPE",
            4 => "RESOURCE_SHORTAGE",
            _ => return None,
        })
    }
}

impl fmt::Debug for OpenFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "OpenFailureReason({})", self.0),
        }
    }
}

/// A terminal's size in characters and pixels, as `pty-req` and `window-change` carry it
/// (RFC 4254 §6.2, §6.7). Pixel sizes are 0 when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowSize {
    /// Width in characters.
    pub cols: u32,
    /// Height in rows.
    pub rows: u32,
    /// Width in pixels.
    pub width_px: u32,
    /// Height in pixels.
    pub height_px: u32,
}

impl WindowSize {
    fn decode(r: &mut Reader<'_>) -> Result<Self, InvalidMessage> {
        Ok(Self {
            cols: r.read_u32()?,
            rows: r.read_u32()?,
            width_px: r.read_u32()?,
            height_px: r.read_u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.write_u32(self.cols)
            .write_u32(self.rows)
            .write_u32(self.width_px)
            .write_u32(self.height_px);
    }
}

/// A channel request (RFC 4254 §6, RFC 4335, OpenSSH `PROTOCOL`), typed.
///
/// Which side may send each request is [`ChannelRequest::sender`]; a request received from the
/// wrong side, or a session request on a channel that is not a session, arrives as
/// [`ChannelRequest::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelRequest {
    /// `pty-req` (§6.2):
    ///
    /// ```text
    /// string    TERM environment variable value (e.g., vt100)
    /// uint32    terminal width, characters (e.g., 80)
    /// uint32    terminal height, rows (e.g., 24)
    /// uint32    terminal width, pixels (e.g., 640)
    /// uint32    terminal height, pixels (e.g., 480)
    /// string    encoded terminal modes
    /// ```
    PtyReq {
        /// The terminal type.
        term: String,
        /// The initial size.
        size: WindowSize,
        /// The terminal modes, decoded per §8.
        modes: TerminalModes,
    },
    /// `x11-req` (§6.3.1):
    ///
    /// ```text
    /// boolean   single connection
    /// string    x11 authentication protocol
    /// string    x11 authentication cookie
    /// uint32    x11 screen number
    /// ```
    X11Req {
        /// Forward only one X11 connection.
        single_connection: bool,
        /// For example `MIT-MAGIC-COOKIE-1`.
        auth_protocol: String,
        /// The cookie, hexadecimal.
        auth_cookie: String,
        /// The screen number.
        screen: u32,
    },
    /// `env` (§6.4): `string variable name`, `string variable value`.
    Env {
        /// The variable's name.
        name: String,
        /// Its value, as bytes.
        value: Vec<u8>,
    },
    /// `shell` (§6.5). No data.
    Shell,
    /// `exec` (§6.5): `string command`.
    Exec {
        /// The command line, as bytes.
        command: Vec<u8>,
    },
    /// `subsystem` (§6.5): `string subsystem name`.
    Subsystem {
        /// For example `sftp`.
        name: String,
    },
    /// `window-change` (§6.7): four `uint32`s, as in `pty-req`.
    WindowChange {
        /// The new size.
        size: WindowSize,
    },
    /// `xon-xoff` (§6.8): `boolean client can do`. Sent by servers.
    XonXoff {
        /// Whether the client may do flow control itself.
        client_can_do: bool,
    },
    /// `signal` (§6.9): `string signal name (without the "SIG" prefix)`.
    Signal {
        /// For example `INT`, or OpenSSH's `INFO@openssh.com`.
        name: String,
    },
    /// `exit-status` (§6.10): `uint32 exit_status`. Sent by servers.
    ExitStatus {
        /// The command's exit status.
        code: u32,
    },
    /// `exit-signal` (§6.10). Sent by servers.
    ///
    /// ```text
    /// string    signal name (without the "SIG" prefix)
    /// boolean   core dumped
    /// string    error message in ISO-10646 UTF-8 encoding
    /// string    language tag [RFC3066]
    /// ```
    ExitSignal {
        /// The signal that ended the command.
        signal: String,
        /// Whether it dumped core.
        core_dumped: bool,
        /// An explanation; invalid UTF-8 is replaced.
        message: String,
        /// The message's language tag.
        language: String,
    },
    /// `break` (RFC 4335 §3): `uint32 break-length in milliseconds`.
    Break {
        /// How long to hold the break.
        length_ms: u32,
    },
    /// `eow@openssh.com` (OpenSSH `PROTOCOL` §2.1): the sender will read no more data on this
    /// channel; stop sending. No data.
    Eow,
    /// `auth-agent-req@openssh.com`: forward the client's agent. No data.
    AuthAgentReq,
    /// `keepalive@openssh.com`: an OpenSSH server's liveness probe. Receiving it answers
    /// `SSH_MSG_CHANNEL_FAILURE` as OpenSSH does and raises no event.
    Keepalive,
    /// Any other request, or a known one from the wrong side or on the wrong channel kind: its
    /// name and raw type-specific data.
    Unknown {
        /// The request type.
        name: String,
        /// Its type-specific data, undecoded.
        data: Vec<u8>,
    },
}

impl ChannelRequest {
    /// The request type as it appears on the wire.
    pub fn name(&self) -> &str {
        match self {
            Self::PtyReq { .. } => "pty-req",
            Self::X11Req { .. } => "x11-req",
            Self::Env { .. } => "env",
            Self::Shell => "shell",
            Self::Exec { .. } => "exec",
            Self::Subsystem { .. } => "subsystem",
            Self::WindowChange { .. } => "window-change",
            Self::XonXoff { .. } => "xon-xoff",
            Self::Signal { .. } => "signal",
            Self::ExitStatus { .. } => "exit-status",
            Self::ExitSignal { .. } => "exit-signal",
            Self::Break { .. } => "break",
            Self::Eow => "eow@openssh.com",
            Self::AuthAgentReq => "auth-agent-req@openssh.com",
            Self::Keepalive => "keepalive@openssh.com",
            Self::Unknown { name, .. } => name,
        }
    }

    /// Which side sends this request, or `None` if either may.
    pub fn sender(&self) -> Option<Side> {
        Self::sender_of(self.name())
    }

    /// Whether this request only makes sense on a `session` channel.
    pub fn is_session_request(&self) -> bool {
        Self::is_session_name(self.name())
    }

    /// Which side sends requests called `name` (`None`: either, or a name we do not know).
    pub fn sender_of(name: &str) -> Option<Side> {
        match name {
            "pty-req"
            | "x11-req"
            | "env"
            | "shell"
            | "exec"
            | "subsystem"
            | "window-change"
            | "signal"
            | "break"
            | "auth-agent-req@openssh.com" => Some(Side::Client),
            "xon-xoff" | "exit-status" | "exit-signal" | "keepalive@openssh.com" => {
                Some(Side::Server)
            }
            _ => None,
        }
    }

    /// Whether requests called `name` only make sense on a `session` channel.
    pub fn is_session_name(name: &str) -> bool {
        name != "keepalive@openssh.com" && Self::sender_of(name).is_some()
    }

    /// Decodes the type-specific data of a request called `name`. Names we do not know become
    /// [`ChannelRequest::Unknown`].
    pub fn decode(name: &str, data: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(data);
        let r = &mut r;
        let request = match name {
            "pty-req" => Self::PtyReq {
                term: read_text(r)?,
                size: WindowSize::decode(r)?,
                modes: TerminalModes::decode(r.read_string()?)?,
            },
            "x11-req" => Self::X11Req {
                single_connection: r.read_bool()?,
                auth_protocol: read_text(r)?,
                auth_cookie: read_text(r)?,
                screen: r.read_u32()?,
            },
            "env" => Self::Env { name: read_text(r)?, value: read_cstring(r)?.to_vec() },
            "shell" => Self::Shell,
            "exec" => Self::Exec { command: read_cstring(r)?.to_vec() },
            "subsystem" => Self::Subsystem { name: read_text(r)? },
            "window-change" => Self::WindowChange { size: WindowSize::decode(r)? },
            "xon-xoff" => Self::XonXoff { client_can_do: r.read_bool()? },
            "signal" => Self::Signal { name: read_text(r)? },
            "exit-status" => Self::ExitStatus { code: r.read_u32()? },
            "exit-signal" => Self::ExitSignal {
                signal: read_text(r)?,
                core_dumped: r.read_bool()?,
                message: read_display_text(r)?,
                language: read_display_text(r)?,
            },
            "break" => Self::Break { length_ms: r.read_u32()? },
            "eow@openssh.com" => Self::Eow,
            "auth-agent-req@openssh.com" => Self::AuthAgentReq,
            "keepalive@openssh.com" => {
                r.read_rest();
                Self::Keepalive
            }
            _ => Self::Unknown { name: name.to_owned(), data: r.read_rest().to_vec() },
        };
        r.finish()?;
        Ok(request)
    }

    /// Encodes the type-specific data.
    pub fn encode_data(&self, w: &mut Writer<'_>) {
        match self {
            Self::PtyReq { term, size, modes } => {
                w.write_string(term.as_bytes());
                size.encode(w);
                w.write_prefixed(|w| modes.encode(w));
            }
            Self::X11Req { single_connection, auth_protocol, auth_cookie, screen } => {
                w.write_bool(*single_connection)
                    .write_string(auth_protocol.as_bytes())
                    .write_string(auth_cookie.as_bytes())
                    .write_u32(*screen);
            }
            Self::Env { name, value } => {
                w.write_string(name.as_bytes()).write_string(value);
            }
            Self::Shell | Self::Eow | Self::AuthAgentReq | Self::Keepalive => {}
            Self::Exec { command } => {
                w.write_string(command);
            }
            Self::Subsystem { name } | Self::Signal { name } => {
                w.write_string(name.as_bytes());
            }
            Self::WindowChange { size } => size.encode(w),
            Self::XonXoff { client_can_do } => {
                w.write_bool(*client_can_do);
            }
            Self::ExitStatus { code } => {
                w.write_u32(*code);
            }
            Self::ExitSignal { signal, core_dumped, message, language } => {
                w.write_string(signal.as_bytes())
                    .write_bool(*core_dumped)
                    .write_string(message.as_bytes())
                    .write_string(language.as_bytes());
            }
            Self::Break { length_ms } => {
                w.write_u32(*length_ms);
            }
            Self::Unknown { data, .. } => {
                w.write_raw(data);
            }
        }
    }
}

/// A global request (RFC 4254 §4, §7; OpenSSH `PROTOCOL` §2.2, §2.4, §2.5), typed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalRequest {
    /// `tcpip-forward` (§7.1): `string address to bind`, `uint32 port number to bind`. Port 0
    /// asks the server to choose; the reply then carries the port ([`GlobalReply::BoundPort`]).
    TcpipForward {
        /// The address to listen on (`""`, `localhost`, `0.0.0.0`, ...).
        address: String,
        /// The port, or 0 for any.
        port: u32,
    },
    /// `cancel-tcpip-forward` (§7.1), with the same data as `tcpip-forward`.
    CancelTcpipForward {
        /// The address given to `tcpip-forward`.
        address: String,
        /// The port given to, or bound by, `tcpip-forward`.
        port: u32,
    },
    /// `streamlocal-forward@openssh.com`: `string socket path`.
    StreamlocalForward {
        /// The socket to listen on.
        socket_path: Vec<u8>,
    },
    /// `cancel-streamlocal-forward@openssh.com`: `string socket path`.
    CancelStreamlocalForward {
        /// The socket given to `streamlocal-forward@openssh.com`.
        socket_path: Vec<u8>,
    },
    /// `no-more-sessions@openssh.com`: the client will open no further sessions; a server that
    /// receives one disconnects on the next session open, as OpenSSH does. No data.
    NoMoreSessions,
    /// `hostkeys-00@openssh.com`: the server's host keys (`string` public key blobs), sent after
    /// authentication for `UpdateHostKeys`.
    HostKeys {
        /// Public key blobs.
        keys: Vec<Vec<u8>>,
    },
    /// `hostkeys-prove-00@openssh.com`: the client asks the server to prove it holds these keys;
    /// the reply is [`GlobalReply::HostKeyProofs`].
    HostKeysProve {
        /// Public key blobs.
        keys: Vec<Vec<u8>>,
    },
    /// `keepalive@openssh.com`: a liveness probe. Receiving it answers `SSH_MSG_REQUEST_FAILURE`
    /// as OpenSSH does and raises no event.
    Keepalive,
    /// Any other request, or a known one from the wrong side: its name and raw data.
    Unknown {
        /// The request name.
        name: String,
        /// Its request-specific data, undecoded.
        data: Vec<u8>,
    },
}

impl GlobalRequest {
    /// The request name as it appears on the wire.
    pub fn name(&self) -> &str {
        match self {
            Self::TcpipForward { .. } => "tcpip-forward",
            Self::CancelTcpipForward { .. } => "cancel-tcpip-forward",
            Self::StreamlocalForward { .. } => "streamlocal-forward@openssh.com",
            Self::CancelStreamlocalForward { .. } => "cancel-streamlocal-forward@openssh.com",
            Self::NoMoreSessions => "no-more-sessions@openssh.com",
            Self::HostKeys { .. } => "hostkeys-00@openssh.com",
            Self::HostKeysProve { .. } => "hostkeys-prove-00@openssh.com",
            Self::Keepalive => "keepalive@openssh.com",
            Self::Unknown { name, .. } => name,
        }
    }

    /// Which side sends this request, or `None` if either may.
    pub fn sender(&self) -> Option<Side> {
        Self::sender_of(self.name())
    }

    /// Which side sends requests called `name` (`None`: either, or a name we do not know).
    pub fn sender_of(name: &str) -> Option<Side> {
        match name {
            "tcpip-forward"
            | "cancel-tcpip-forward"
            | "streamlocal-forward@openssh.com"
            | "cancel-streamlocal-forward@openssh.com"
            | "no-more-sessions@openssh.com"
            | "hostkeys-prove-00@openssh.com" => Some(Side::Client),
            "hostkeys-00@openssh.com" => Some(Side::Server),
            _ => None,
        }
    }

    /// How a success reply to this request is laid out.
    pub fn reply_format(&self) -> ReplyFormat {
        match self {
            Self::TcpipForward { port: 0, .. } => ReplyFormat::BoundPort,
            Self::HostKeysProve { .. } => ReplyFormat::HostKeyProofs,
            Self::Unknown { .. } => ReplyFormat::Raw,
            _ => ReplyFormat::Plain,
        }
    }

    /// Decodes the request-specific data of a request called `name`. Names we do not know
    /// become [`GlobalRequest::Unknown`].
    pub fn decode(name: &str, data: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(data);
        let r = &mut r;
        let request = match name {
            "tcpip-forward" => Self::TcpipForward { address: read_text(r)?, port: r.read_u32()? },
            "cancel-tcpip-forward" => {
                Self::CancelTcpipForward { address: read_text(r)?, port: r.read_u32()? }
            }
            "streamlocal-forward@openssh.com" => {
                Self::StreamlocalForward { socket_path: read_cstring(r)?.to_vec() }
            }
            "cancel-streamlocal-forward@openssh.com" => {
                Self::CancelStreamlocalForward { socket_path: read_cstring(r)?.to_vec() }
            }
            "no-more-sessions@openssh.com" => Self::NoMoreSessions,
            "hostkeys-00@openssh.com" => Self::HostKeys { keys: read_blob_list(r)? },
            "hostkeys-prove-00@openssh.com" => Self::HostKeysProve { keys: read_blob_list(r)? },
            "keepalive@openssh.com" => {
                r.read_rest();
                Self::Keepalive
            }
            _ => Self::Unknown { name: name.to_owned(), data: r.read_rest().to_vec() },
        };
        r.finish()?;
        Ok(request)
    }

    /// Encodes the request-specific data.
    pub fn encode_data(&self, w: &mut Writer<'_>) {
        match self {
            Self::TcpipForward { address, port } | Self::CancelTcpipForward { address, port } => {
                w.write_string(address.as_bytes()).write_u32(*port);
            }
            Self::StreamlocalForward { socket_path }
            | Self::CancelStreamlocalForward { socket_path } => {
                w.write_string(socket_path);
            }
            Self::NoMoreSessions | Self::Keepalive => {}
            Self::HostKeys { keys } | Self::HostKeysProve { keys } => {
                for key in keys {
                    w.write_string(key);
                }
            }
            Self::Unknown { data, .. } => {
                w.write_raw(data);
            }
        }
    }
}

/// The answer to a global request: what the application gives [`super::Connection`] to send,
/// and what it reports when the peer answers one of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalReply {
    /// `SSH_MSG_REQUEST_SUCCESS` with no data.
    Success,
    /// `SSH_MSG_REQUEST_SUCCESS` for `tcpip-forward` with port 0: the port that was bound.
    BoundPort(u32),
    /// `SSH_MSG_REQUEST_SUCCESS` for `hostkeys-prove-00@openssh.com`: one signature per key.
    HostKeyProofs(Vec<Vec<u8>>),
    /// `SSH_MSG_REQUEST_SUCCESS` with request-specific data we do not interpret.
    SuccessWith(Vec<u8>),
    /// `SSH_MSG_REQUEST_FAILURE`.
    Failure,
}

// ---------------------------------------------------------------------------------------------
// Terminal modes (RFC 4254 §8).
// ---------------------------------------------------------------------------------------------

macro_rules! terminal_modes {
    ($( $(#[$meta:meta])* $konst:ident = $value:literal, )*) => {
        impl TerminalMode {
            $( $(#[$meta])* pub const $konst: Self = Self($value); )*

            /// The RFC's name for this opcode, if it is one we know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }
    };
}

/// A terminal mode opcode (RFC 4254 §8, RFC 8160): an open newtype, so that opcodes we do not
/// know still decode. Opcodes 1–159 take a `uint32` argument; 0 ends the list; 160–255 are
/// undefined and stop decoding, as OpenSSH does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TerminalMode(pub u8);

terminal_modes! {
    /// Interrupt character.
    VINTR = 1,
    /// Quit character.
    VQUIT = 2,
    /// Erase the character to the left of the cursor.
    VERASE = 3,
    /// Kill the current input line.
    VKILL = 4,
    /// End-of-file character.
    VEOF = 5,
    /// End-of-line character in addition to carriage return and/or line feed.
    VEOL = 6,
    /// Additional end-of-line character.
    VEOL2 = 7,
    /// Continues paused output (normally control-Q).
    VSTART = 8,
    /// Pauses output (normally control-S).
    VSTOP = 9,
    /// Suspends the current program.
    VSUSP = 10,
    /// Another suspend character.
    VDSUSP = 11,
    /// Reprints the current input line.
    VREPRINT = 12,
    /// Erases a word left of the cursor.
    VWERASE = 13,
    /// Enter the next character typed literally.
    VLNEXT = 14,
    /// Character to flush output.
    VFLUSH = 15,
    /// Switch to a different shell layer.
    VSWTCH = 16,
    /// Prints system status line.
    VSTATUS = 17,
    /// Toggles the flushing of terminal output.
    VDISCARD = 18,
    /// Ignore parity errors.
    IGNPAR = 30,
    /// Mark parity and framing errors.
    PARMRK = 31,
    /// Enable checking of parity errors.
    INPCK = 32,
    /// Strip 8th bit off characters.
    ISTRIP = 33,
    /// Map NL into CR on input.
    INLCR = 34,
    /// Ignore CR on input.
    IGNCR = 35,
    /// Map CR to NL on input.
    ICRNL = 36,
    /// Translate uppercase characters to lowercase.
    IUCLC = 37,
    /// Enable output flow control.
    IXON = 38,
    /// Any char will restart after stop.
    IXANY = 39,
    /// Enable input flow control.
    IXOFF = 40,
    /// Ring bell on input queue full.
    IMAXBEL = 41,
    /// Terminal input and output is assumed to be encoded in UTF-8 (RFC 8160).
    IUTF8 = 42,
    /// Enable the signal characters INTR, QUIT, SUSP and DSUSP.
    ISIG = 50,
    /// Canonicalize input lines.
    ICANON = 51,
    /// Enable input and output of uppercase characters by preceding them with a backslash.
    XCASE = 52,
    /// Enable echoing.
    ECHO = 53,
    /// Visually erase chars.
    ECHOE = 54,
    /// Kill character discards current line.
    ECHOK = 55,
    /// Echo NL even if ECHO is off.
    ECHONL = 56,
    /// Don't flush after interrupt.
    NOFLSH = 57,
    /// Stop background jobs from output.
    TOSTOP = 58,
    /// Enable extensions.
    IEXTEN = 59,
    /// Echo control characters as ^(Char).
    ECHOCTL = 60,
    /// Visual erase for line kill.
    ECHOKE = 61,
    /// Retype pending input.
    PENDIN = 62,
    /// Enable output processing.
    OPOST = 70,
    /// Convert lowercase to uppercase.
    OLCUC = 71,
    /// Map NL to CR-NL.
    ONLCR = 72,
    /// Translate carriage return to newline (output).
    OCRNL = 73,
    /// Translate newline to carriage return-newline (output).
    ONOCR = 74,
    /// Newline performs a carriage return (output).
    ONLRET = 75,
    /// 7 bit mode.
    CS7 = 90,
    /// 8 bit mode.
    CS8 = 91,
    /// Parity enable.
    PARENB = 92,
    /// Odd parity, else even.
    PARODD = 93,
    /// Specifies the input baud rate in bits per second.
    TTY_OP_ISPEED = 128,
    /// Specifies the output baud rate in bits per second.
    TTY_OP_OSPEED = 129,
}

impl TerminalMode {
    /// `TTY_OP_END`: ends the encoded modes.
    pub const TTY_OP_END: Self = Self(0);

    /// Whether this opcode carries a `uint32` argument (1–159).
    pub fn takes_argument(self) -> bool {
        (1..160).contains(&self.0)
    }
}

impl fmt::Debug for TerminalMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TerminalMode({})", self.0),
        }
    }
}

/// Encoded terminal modes (RFC 4254 §8): opcode and argument pairs. A mode given twice keeps
/// its last value, as applying them in order to a `termios` would; at most 159 modes exist, so
/// this never holds more than that.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminalModes {
    modes: BTreeMap<TerminalMode, u32>,
}

impl TerminalModes {
    /// No modes: the server keeps its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `mode` to `value`. Opcodes without an argument (0 and 160–255) cannot be encoded and
    /// are ignored; the return value says whether the mode was set.
    pub fn insert(&mut self, mode: TerminalMode, value: u32) -> bool {
        if !mode.takes_argument() {
            return false;
        }
        self.modes.insert(mode, value);
        true
    }

    /// The value of `mode`, if set.
    pub fn get(&self, mode: TerminalMode) -> Option<u32> {
        self.modes.get(&mode).copied()
    }

    /// The modes in opcode order.
    pub fn iter(&self) -> impl Iterator<Item = (TerminalMode, u32)> + '_ {
        self.modes.iter().map(|(&mode, &value)| (mode, value))
    }

    /// The number of modes set.
    pub fn len(&self) -> usize {
        self.modes.len()
    }

    /// Whether no mode is set.
    pub fn is_empty(&self) -> bool {
        self.modes.is_empty()
    }

    /// Decodes the contents of the `encoded terminal modes` string. Decoding stops at
    /// `TTY_OP_END`, at an undefined opcode (160–255), or at the end of the string; an argument
    /// cut short is an error.
    pub fn decode(encoded: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(encoded);
        let mut modes = Self::new();
        while !r.is_empty() {
            let mode = TerminalMode(r.read_u8()?);
            if !mode.takes_argument() {
                break;
            }
            let value = r.read_u32()?;
            modes.modes.insert(mode, value);
        }
        Ok(modes)
    }

    /// Encodes the modes followed by `TTY_OP_END` (the contents of the string, without its
    /// length).
    pub fn encode(&self, w: &mut Writer<'_>) {
        for (mode, value) in self.iter() {
            w.write_u8(mode.0).write_u32(value);
        }
        w.write_u8(TerminalMode::TTY_OP_END.0);
    }
}

impl FromIterator<(TerminalMode, u32)> for TerminalModes {
    fn from_iter<I: IntoIterator<Item = (TerminalMode, u32)>>(iter: I) -> Self {
        let mut modes = Self::new();
        for (mode, value) in iter {
            modes.insert(mode, value);
        }
        modes
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers.
// ---------------------------------------------------------------------------------------------

/// A `string` that must not contain NUL, as OpenSSH's `sshpkt_get_cstring` requires: names,
/// paths and commands end up in C strings on the other side.
fn read_cstring<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], InvalidMessage> {
    let bytes = r.read_string()?;
    if bytes.contains(&0) {
        return Err(InvalidMessage::InvalidValue);
    }
    Ok(bytes)
}

/// A NUL-free UTF-8 `string`: names, addresses, terminal types.
fn read_text(r: &mut Reader<'_>) -> Result<String, InvalidMessage> {
    let bytes = read_cstring(r)?;
    let text = std::str::from_utf8(bytes).map_err(|_| InvalidMessage::InvalidUtf8)?;
    Ok(text.to_owned())
}

/// A `string` meant for display (descriptions, messages, language tags): invalid UTF-8 is
/// replaced rather than fatal.
fn read_display_text(r: &mut Reader<'_>) -> Result<String, InvalidMessage> {
    Ok(String::from_utf8_lossy(r.read_string()?).into_owned())
}

/// `string`s up to the end of the data, at most [`MAX_HOST_KEYS`] of them.
fn read_blob_list(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, InvalidMessage> {
    let mut blobs = Vec::new();
    while !r.is_empty() {
        if blobs.len() == MAX_HOST_KEYS {
            return Err(InvalidMessage::LengthOverLimit);
        }
        blobs.push(r.read_string()?.to_vec());
    }
    Ok(blobs)
}

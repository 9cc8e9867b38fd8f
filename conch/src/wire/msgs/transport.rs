//! Transport layer messages (RFC 4253 §7–§11, RFC 8308, OpenSSH's `PROTOCOL`).
//!
//! The key exchange method messages (numbers 30–49) are here as structs, but their numbers mean
//! different things for different methods: the transport decodes them only inside the key
//! exchange state that knows which method is running.

use super::Message;
use crate::wire::{DisconnectReason, InvalidMessage, MessageType, NameList, Reader, Writer};

/// Defines a message whose body is one `string`.
macro_rules! string_message {
    ($(#[$meta:meta])* $name:ident = $type:ident { $(#[$field_meta:meta])* $field:ident }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<'a> {
            $(#[$field_meta])*
            pub $field: &'a [u8],
        }

        impl<'a> Message<'a> for $name<'a> {
            const TYPE: MessageType = MessageType::$type;

            fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
                Ok(Self { $field: r.read_string()? })
            }

            fn encode_body(&self, w: &mut Writer<'_>) {
                w.write_string(self.$field);
            }
        }
    };
}

/// `SSH_MSG_DISCONNECT` (RFC 4253 §11.1).
///
/// ```text
/// byte      SSH_MSG_DISCONNECT
/// uint32    reason code
/// string    description in ISO-10646 UTF-8 encoding [RFC3629]
/// string    language tag [RFC3066]
/// ```
///
/// The description is kept as bytes: a peer's text is sanitized for display, not trusted to be
/// UTF-8. Like OpenSSH, decoding accepts a message whose language tag is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// Why the sender is disconnecting.
    pub reason: DisconnectReason,
    /// Human-readable text.
    pub description: &'a [u8],
    /// Language tag of the description, usually empty.
    pub language: &'a [u8],
}

impl<'a> Message<'a> for Disconnect<'a> {
    const TYPE: MessageType = MessageType::DISCONNECT;

    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let reason = DisconnectReason(r.read_u32()?);
        let description = r.read_string()?;
        let language = if r.is_empty() { &[][..] } else { r.read_string()? };
        Ok(Self { reason, description, language })
    }

    fn encode_body(&self, w: &mut Writer<'_>) {
        w.write_u32(self.reason.0).write_string(self.description).write_string(self.language);
    }
}

string_message! {
    /// `SSH_MSG_IGNORE` (RFC 4253 §11.2).
    ///
    /// ```text
    /// byte      SSH_MSG_IGNORE
    /// string    data
    /// ```
    Ignore = IGNORE {
        /// Arbitrary data, discarded by the receiver.
        data
    }
}

/// `SSH_MSG_DEBUG` (RFC 4253 §11.3).
///
/// ```text
/// byte      SSH_MSG_DEBUG
/// boolean   always_display
/// string    message in ISO-10646 UTF-8 encoding [RFC3629]
/// string    language tag [RFC3066]
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Debug<'a> {
    /// Whether the sender asks for the message to be shown even when not debugging.
    pub always_display: bool,
    /// The text, to be sanitized before display.
    pub message: &'a [u8],
    /// Language tag of the message.
    pub language: &'a [u8],
}

impl<'a> Message<'a> for Debug<'a> {
    const TYPE: MessageType = MessageType::DEBUG;

    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        Ok(Self {
            always_display: r.read_bool()?,
            message: r.read_string()?,
            language: r.read_string()?,
        })
    }

    fn encode_body(&self, w: &mut Writer<'_>) {
        w.write_bool(self.always_display).write_string(self.message).write_string(self.language);
    }
}

/// `SSH_MSG_UNIMPLEMENTED` (RFC 4253 §11.4): the answer to a message number the receiver does
/// not know.
///
/// ```text
/// byte      SSH_MSG_UNIMPLEMENTED
/// uint32    packet sequence number of rejected message
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unimplemented {
    /// The sequence number of the packet that was not understood.
    pub seq: u32,
}

impl<'a> Message<'a> for Unimplemented {
    const TYPE: MessageType = MessageType::UNIMPLEMENTED;

    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        Ok(Self { seq: r.read_u32()? })
    }

    fn encode_body(&self, w: &mut Writer<'_>) {
        w.write_u32(self.seq);
    }
}

string_message! {
    /// `SSH_MSG_SERVICE_REQUEST` (RFC 4253 §10). The transport passes it up; the layer above
    /// decides which services exist.
    ///
    /// ```text
    /// byte      SSH_MSG_SERVICE_REQUEST
    /// string    service name
    /// ```
    ServiceRequest = SERVICE_REQUEST {
        /// The service, such as `ssh-userauth`.
        service
    }
}

string_message! {
    /// `SSH_MSG_SERVICE_ACCEPT` (RFC 4253 §10).
    ///
    /// ```text
    /// byte      SSH_MSG_SERVICE_ACCEPT
    /// string    service name
    /// ```
    ServiceAccept = SERVICE_ACCEPT {
        /// The service accepted.
        service
    }
}

/// One extension in [`ExtInfo`]: a name and an opaque value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension name, such as `server-sig-algs`.
    pub name: &'a str,
    /// The value; its format depends on the extension.
    pub value: &'a [u8],
}

/// `SSH_MSG_EXT_INFO` (RFC 8308 §2.3).
///
/// ```text
/// byte       SSH_MSG_EXT_INFO (value 7)
/// uint32     nr-extensions
/// repeat the following 2 fields "nr-extensions" times:
///   string   extension-name
///   string   extension-value (binary)
/// ```
///
/// The count is not trusted: decoding reads pairs while bytes remain, so a huge count with a
/// short message fails as truncated without any work proportional to the count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtInfo<'a> {
    /// The extensions, in the order sent.
    pub extensions: Vec<Extension<'a>>,
}

impl<'a> ExtInfo<'a> {
    /// The value of the extension called `name`, if present.
    pub fn find(&self, name: &str) -> Option<&'a [u8]> {
        self.extensions.iter().find(|e| e.name == name).map(|e| e.value)
    }
}

impl<'a> Message<'a> for ExtInfo<'a> {
    const TYPE: MessageType = MessageType::EXT_INFO;

    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        let count = r.read_u32()?;
        let mut extensions = Vec::new();
        for _ in 0..count {
            // Each pair is at least 8 bytes, so this loop ends after remaining / 8 rounds.
            let name = r.read_utf8()?;
            let value = r.read_string()?;
            extensions.push(Extension { name, value });
        }
        Ok(Self { extensions })
    }

    fn encode_body(&self, w: &mut Writer<'_>) {
        w.write_u32(u32::try_from(self.extensions.len()).unwrap_or(u32::MAX));
        for e in &self.extensions {
            w.write_string(e.name.as_bytes()).write_string(e.value);
        }
    }
}

/// `SSH_MSG_KEXINIT` (RFC 4253 §7.1): each side's algorithm proposals.
///
/// ```text
/// byte         SSH_MSG_KEXINIT
/// byte[16]     cookie (random bytes)
/// name-list    kex_algorithms
/// name-list    server_host_key_algorithms
/// name-list    encryption_algorithms_client_to_server
/// name-list    encryption_algorithms_server_to_client
/// name-list    mac_algorithms_client_to_server
/// name-list    mac_algorithms_server_to_client
/// name-list    compression_algorithms_client_to_server
/// name-list    compression_algorithms_server_to_client
/// name-list    languages_client_to_server
/// name-list    languages_server_to_client
/// boolean      first_kex_packet_follows
/// uint32       0 (reserved for future extension)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KexInit<'a> {
    /// Random bytes, so that neither side can fully determine the exchange hash.
    pub cookie: [u8; 16],
    /// Key exchange methods, plus pseudo-algorithms such as `ext-info-c` and the strict-KEX
    /// markers.
    pub kex: NameList<'a>,
    /// Host key (signature) algorithms.
    pub host_key: NameList<'a>,
    /// Ciphers, client to server.
    pub cipher_c2s: NameList<'a>,
    /// Ciphers, server to client.
    pub cipher_s2c: NameList<'a>,
    /// MACs, client to server.
    pub mac_c2s: NameList<'a>,
    /// MACs, server to client.
    pub mac_s2c: NameList<'a>,
    /// Compression, client to server.
    pub compression_c2s: NameList<'a>,
    /// Compression, server to client.
    pub compression_s2c: NameList<'a>,
    /// Languages, client to server (unused; sent empty).
    pub language_c2s: NameList<'a>,
    /// Languages, server to client (unused; sent empty).
    pub language_s2c: NameList<'a>,
    /// Whether a guessed key exchange packet follows this message.
    pub first_kex_packet_follows: bool,
    /// Reserved; sent as 0, ignored on receipt as the RFC asks.
    pub reserved: u32,
}

impl<'a> Message<'a> for KexInit<'a> {
    const TYPE: MessageType = MessageType::KEXINIT;

    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        Ok(Self {
            cookie: r.read_array()?,
            kex: r.read_name_list()?,
            host_key: r.read_name_list()?,
            cipher_c2s: r.read_name_list()?,
            cipher_s2c: r.read_name_list()?,
            mac_c2s: r.read_name_list()?,
            mac_s2c: r.read_name_list()?,
            compression_c2s: r.read_name_list()?,
            compression_s2c: r.read_name_list()?,
            language_c2s: r.read_name_list()?,
            language_s2c: r.read_name_list()?,
            first_kex_packet_follows: r.read_bool()?,
            reserved: r.read_u32()?,
        })
    }

    fn encode_body(&self, w: &mut Writer<'_>) {
        w.write_raw(&self.cookie);
        for list in [
            self.kex,
            self.host_key,
            self.cipher_c2s,
            self.cipher_s2c,
            self.mac_c2s,
            self.mac_s2c,
            self.compression_c2s,
            self.compression_s2c,
            self.language_c2s,
            self.language_s2c,
        ] {
            w.write_string(list.as_str().as_bytes());
        }
        w.write_bool(self.first_kex_packet_follows).write_u32(self.reserved);
    }
}

/// `SSH_MSG_NEWKEYS` (RFC 4253 §7.3): the sender uses the new keys from the next packet on.
///
/// ```text
/// byte      SSH_MSG_NEWKEYS
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewKeys;

impl<'a> Message<'a> for NewKeys {
    const TYPE: MessageType = MessageType::NEWKEYS;

    fn decode_body(_r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        Ok(Self)
    }

    fn encode_body(&self, _w: &mut Writer<'_>) {}
}

string_message! {
    /// The client's key exchange value: `SSH_MSG_KEX_ECDH_INIT` (RFC 5656 §4), which has the same
    /// layout as `SSH_MSG_KEXDH_INIT` (RFC 4253 §8, an `mpint e` in place of the string) and the
    /// post-quantum hybrids' init (`string C_INIT`).
    ///
    /// ```text
    /// byte     SSH_MSG_KEX_ECDH_INIT (30)
    /// string   Q_C, client's ephemeral public key octet string
    /// ```
    ///
    /// Only the key exchange state decodes message 30 as this, once it knows the method.
    KexEcdhInit = KEX_INIT {
        /// The client's public value (for DH, the body of `mpint e`).
        public
    }
}

/// The server's key exchange reply: `SSH_MSG_KEX_ECDH_REPLY` (RFC 5656 §4), with the same layout
/// as `SSH_MSG_KEXDH_REPLY` (RFC 4253 §8, `mpint f`) and the hybrids' reply (`string S_REPLY`).
///
/// ```text
/// byte     SSH_MSG_KEX_ECDH_REPLY (31)
/// string   K_S, server's public host key
/// string   Q_S, server's ephemeral public key octet string
/// string   the signature on the exchange hash
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KexEcdhReply<'a> {
    /// The host key blob `K_S`.
    pub host_key: &'a [u8],
    /// The server's public value (for DH, the body of `mpint f`).
    pub public: &'a [u8],
    /// The signature blob over the exchange hash.
    pub signature: &'a [u8],
}

impl<'a> Message<'a> for KexEcdhReply<'a> {
    const TYPE: MessageType = MessageType::KEX_REPLY;

    fn decode_body(r: &mut Reader<'a>) -> Result<Self, InvalidMessage> {
        Ok(Self {
            host_key: r.read_string()?,
            public: r.read_string()?,
            signature: r.read_string()?,
        })
    }

    fn encode_body(&self, w: &mut Writer<'_>) {
        w.write_string(self.host_key).write_string(self.public).write_string(self.signature);
    }
}

string_message! {
    /// `SSH2_MSG_PING` (OpenSSH `PROTOCOL` §1.10, extension `ping@openssh.com`).
    ///
    /// ```text
    /// byte      SSH2_MSG_PING
    /// string    data
    /// ```
    Ping = PING {
        /// Data the peer echoes back in a PONG.
        data
    }
}

string_message! {
    /// `SSH2_MSG_PONG` (OpenSSH `PROTOCOL` §1.10).
    ///
    /// ```text
    /// byte      SSH2_MSG_PONG
    /// string    data
    /// ```
    Pong = PONG {
        /// The data of the PING this answers.
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<'a, M: Message<'a> + PartialEq + std::fmt::Debug>(msg: &M, buf: &'a mut Vec<u8>) {
        msg.encode(buf);
        assert_eq!(buf.first(), Some(&M::TYPE.0));
        assert_eq!(&M::decode(buf).unwrap(), msg);
    }

    fn names(s: &str) -> NameList<'_> {
        NameList::parse(s.as_bytes()).unwrap()
    }

    /// A KEXINIT round-trips, cookie and flags included.
    #[test]
    fn can_round_trip_kexinit() {
        let msg = KexInit {
            cookie: [7; 16],
            kex: names("curve25519-sha256,ext-info-c"),
            host_key: names("ssh-ed25519"),
            cipher_c2s: names("aes128-ctr"),
            cipher_s2c: names("aes256-ctr"),
            mac_c2s: names("hmac-sha2-256"),
            mac_s2c: names("hmac-sha2-512"),
            compression_c2s: names("none"),
            compression_s2c: names("none,zlib@openssh.com"),
            language_c2s: names(""),
            language_s2c: names(""),
            first_kex_packet_follows: true,
            reserved: 0,
        };
        round_trip(&msg, &mut Vec::new());
    }

    /// Every other transport message round-trips through its own encoding.
    #[test]
    fn can_round_trip_every_transport_message() {
        round_trip(
            &Disconnect {
                reason: DisconnectReason::BY_APPLICATION,
                description: b"bye",
                language: b"en",
            },
            &mut Vec::new(),
        );
        round_trip(&Ignore { data: b"xyz" }, &mut Vec::new());
        round_trip(&Debug { always_display: true, message: b"m", language: b"" }, &mut Vec::new());
        round_trip(&Unimplemented { seq: 77 }, &mut Vec::new());
        round_trip(&ServiceRequest { service: b"ssh-userauth" }, &mut Vec::new());
        round_trip(&ServiceAccept { service: b"ssh-userauth" }, &mut Vec::new());
        round_trip(&NewKeys, &mut Vec::new());
        round_trip(&KexEcdhInit { public: &[1; 32] }, &mut Vec::new());
        round_trip(
            &KexEcdhReply { host_key: b"k", public: &[2; 32], signature: b"s" },
            &mut Vec::new(),
        );
        round_trip(&Ping { data: b"p" }, &mut Vec::new());
        round_trip(&Pong { data: b"p" }, &mut Vec::new());
        round_trip(
            &ExtInfo {
                extensions: vec![
                    Extension { name: "server-sig-algs", value: b"ssh-ed25519" },
                    Extension { name: "ping@openssh.com", value: b"0" },
                ],
            },
            &mut Vec::new(),
        );
    }

    /// Every strict prefix of a KEXINIT fails to decode, and so does a KEXINIT with a byte too
    /// many.
    #[test]
    fn rejects_truncated_or_padded_kexinit() {
        let mut buf = Vec::new();
        KexInit {
            cookie: [0; 16],
            kex: names("a"),
            host_key: names("b"),
            cipher_c2s: names("c"),
            cipher_s2c: names("c"),
            mac_c2s: names("d"),
            mac_s2c: names("d"),
            compression_c2s: names("none"),
            compression_s2c: names("none"),
            language_c2s: names(""),
            language_s2c: names(""),
            first_kex_packet_follows: false,
            reserved: 0,
        }
        .encode(&mut buf);
        for cut in 1..buf.len() {
            assert_eq!(KexInit::decode(&buf[..cut]), Err(InvalidMessage::Truncated), "cut {cut}");
        }
        buf.push(0);
        assert_eq!(KexInit::decode(&buf), Err(InvalidMessage::TrailingData));
    }

    /// A message decoded as the wrong type is refused rather than misread.
    #[test]
    fn rejects_a_payload_of_another_message_type() {
        let mut buf = Vec::new();
        Ping { data: b"x" }.encode(&mut buf);
        assert_eq!(Pong::decode(&buf), Err(InvalidMessage::UnexpectedMessageType));
        assert_eq!(Pong::decode(&[]), Err(InvalidMessage::EmptyMessage));
    }

    /// An EXT_INFO claiming 2^32-1 extensions with none present fails fast as truncated.
    #[test]
    fn ext_info_with_huge_count_and_no_data_is_truncated() {
        let payload = [7, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(ExtInfo::decode(&payload), Err(InvalidMessage::Truncated));
        let mut buf = Vec::new();
        ExtInfo { extensions: vec![Extension { name: "server-sig-algs", value: b"a,b" }] }
            .encode(&mut buf);
        assert_eq!(ExtInfo::decode(&buf).unwrap().find("server-sig-algs"), Some(&b"a,b"[..]));
    }

    /// A DISCONNECT without its language tag is accepted, as OpenSSH accepts it.
    #[test]
    fn disconnect_without_language_tag_decodes() {
        let payload = [1, 0, 0, 0, 11, 0, 0, 0, 2, b'o', b'k'];
        let msg = Disconnect::decode(&payload).unwrap();
        assert_eq!(msg.reason, DisconnectReason::BY_APPLICATION);
        assert_eq!(msg.description, b"ok");
        assert_eq!(msg.language, b"");
    }
}

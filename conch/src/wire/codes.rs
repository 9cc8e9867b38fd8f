//! Message numbers and disconnect reasons: open newtypes with a named constant per known value,
//! so that an unknown value from a peer still decodes (and gets `SSH_MSG_UNIMPLEMENTED`, or is
//! logged as a number) instead of failing to parse.

use std::fmt;

macro_rules! open_code {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The protocol name of this value, if it is one we know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

open_code! {
    /// An SSH message number (RFC 4250 §4.1), the first byte of every payload.
    ///
    /// Numbers 30–49 are specific to the negotiated key exchange method: `KEXDH_INIT` and
    /// `KEX_ECDH_INIT` are both 30. Decode them only inside the key exchange state that knows
    /// which method is running.
    pub struct MessageType(u8) {
        /// `SSH_MSG_DISCONNECT` (RFC 4253 §11.1).
        DISCONNECT = 1,
        /// `SSH_MSG_IGNORE` (RFC 4253 §11.2).
        IGNORE = 2,
        /// `SSH_MSG_UNIMPLEMENTED` (RFC 4253 §11.4).
        UNIMPLEMENTED = 3,
        /// `SSH_MSG_DEBUG` (RFC 4253 §11.3).
        DEBUG = 4,
        /// `SSH_MSG_SERVICE_REQUEST` (RFC 4253 §10).
        SERVICE_REQUEST = 5,
        /// `SSH_MSG_SERVICE_ACCEPT` (RFC 4253 §10).
        SERVICE_ACCEPT = 6,
        /// `SSH_MSG_EXT_INFO` (RFC 8308 §2.3).
        EXT_INFO = 7,
        /// `SSH_MSG_NEWCOMPRESS` (RFC 8308 §3.2; unused by OpenSSH).
        NEWCOMPRESS = 8,
        /// `SSH_MSG_KEXINIT` (RFC 4253 §7.1).
        KEXINIT = 20,
        /// `SSH_MSG_NEWKEYS` (RFC 4253 §7.3).
        NEWKEYS = 21,
        /// `SSH_MSG_KEXDH_INIT`, also `SSH_MSG_KEX_ECDH_INIT` and the hybrid methods' init.
        KEX_INIT = 30,
        /// `SSH_MSG_KEXDH_REPLY`, also `SSH_MSG_KEX_ECDH_REPLY` and the hybrid methods' reply.
        KEX_REPLY = 31,
        /// `SSH_MSG_USERAUTH_REQUEST` (RFC 4252 §5).
        USERAUTH_REQUEST = 50,
        /// `SSH_MSG_USERAUTH_FAILURE` (RFC 4252 §5.1).
        USERAUTH_FAILURE = 51,
        /// `SSH_MSG_USERAUTH_SUCCESS` (RFC 4252 §5.1).
        USERAUTH_SUCCESS = 52,
        /// `SSH_MSG_USERAUTH_BANNER` (RFC 4252 §5.4).
        USERAUTH_BANNER = 53,
        /// `SSH_MSG_USERAUTH_PK_OK`, `SSH_MSG_USERAUTH_PASSWD_CHANGEREQ` and
        /// `SSH_MSG_USERAUTH_INFO_REQUEST`: 60 means one of these depending on the method.
        USERAUTH_60 = 60,
        /// `SSH_MSG_USERAUTH_INFO_RESPONSE` (RFC 4256 §3.4).
        USERAUTH_INFO_RESPONSE = 61,
        /// `SSH_MSG_GLOBAL_REQUEST` (RFC 4254 §4).
        GLOBAL_REQUEST = 80,
        /// `SSH_MSG_REQUEST_SUCCESS` (RFC 4254 §4).
        REQUEST_SUCCESS = 81,
        /// `SSH_MSG_REQUEST_FAILURE` (RFC 4254 §4).
        REQUEST_FAILURE = 82,
        /// `SSH_MSG_CHANNEL_OPEN` (RFC 4254 §5.1).
        CHANNEL_OPEN = 90,
        /// `SSH_MSG_CHANNEL_OPEN_CONFIRMATION` (RFC 4254 §5.1).
        CHANNEL_OPEN_CONFIRMATION = 91,
        /// `SSH_MSG_CHANNEL_OPEN_FAILURE` (RFC 4254 §5.1).
        CHANNEL_OPEN_FAILURE = 92,
        /// `SSH_MSG_CHANNEL_WINDOW_ADJUST` (RFC 4254 §5.2).
        CHANNEL_WINDOW_ADJUST = 93,
        /// `SSH_MSG_CHANNEL_DATA` (RFC 4254 §5.2).
        CHANNEL_DATA = 94,
        /// `SSH_MSG_CHANNEL_EXTENDED_DATA` (RFC 4254 §5.2).
        CHANNEL_EXTENDED_DATA = 95,
        /// `SSH_MSG_CHANNEL_EOF` (RFC 4254 §5.3).
        CHANNEL_EOF = 96,
        /// `SSH_MSG_CHANNEL_CLOSE` (RFC 4254 §5.3).
        CHANNEL_CLOSE = 97,
        /// `SSH_MSG_CHANNEL_REQUEST` (RFC 4254 §5.4).
        CHANNEL_REQUEST = 98,
        /// `SSH_MSG_CHANNEL_SUCCESS` (RFC 4254 §5.4).
        CHANNEL_SUCCESS = 99,
        /// `SSH_MSG_CHANNEL_FAILURE` (RFC 4254 §5.4).
        CHANNEL_FAILURE = 100,
        /// `SSH2_MSG_PING` (OpenSSH PROTOCOL, `ping@openssh.com`).
        PING = 192,
        /// `SSH2_MSG_PONG` (OpenSSH PROTOCOL, `ping@openssh.com`).
        PONG = 193,
    }
}

impl MessageType {
    /// Transport layer generic messages (RFC 4250 §4.1.2): 1–19.
    pub fn is_transport_generic(self) -> bool {
        (1..=19).contains(&self.0)
    }

    /// Algorithm negotiation and key exchange messages: 20–49.
    pub fn is_key_exchange(self) -> bool {
        (20..=49).contains(&self.0)
    }

    /// User authentication messages: 50–79.
    pub fn is_userauth(self) -> bool {
        (50..=79).contains(&self.0)
    }

    /// Connection protocol messages: 80–127.
    pub fn is_connection(self) -> bool {
        (80..=127).contains(&self.0)
    }
}

open_code! {
    /// A reason code in `SSH_MSG_DISCONNECT` (RFC 4253 §11.1, RFC 4250 §4.2.2).
    pub struct DisconnectReason(u32) {
        /// `SSH_DISCONNECT_HOST_NOT_ALLOWED_TO_CONNECT`.
        HOST_NOT_ALLOWED_TO_CONNECT = 1,
        /// `SSH_DISCONNECT_PROTOCOL_ERROR`.
        PROTOCOL_ERROR = 2,
        /// `SSH_DISCONNECT_KEY_EXCHANGE_FAILED`.
        KEY_EXCHANGE_FAILED = 3,
        /// `SSH_DISCONNECT_RESERVED`.
        RESERVED = 4,
        /// `SSH_DISCONNECT_MAC_ERROR`.
        MAC_ERROR = 5,
        /// `SSH_DISCONNECT_COMPRESSION_ERROR`.
        COMPRESSION_ERROR = 6,
        /// `SSH_DISCONNECT_SERVICE_NOT_AVAILABLE`.
        SERVICE_NOT_AVAILABLE = 7,
        /// `SSH_DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED`.
        PROTOCOL_VERSION_NOT_SUPPORTED = 8,
        /// `SSH_DISCONNECT_HOST_KEY_NOT_VERIFIABLE`.
        HOST_KEY_NOT_VERIFIABLE = 9,
        /// `SSH_DISCONNECT_CONNECTION_LOST`.
        CONNECTION_LOST = 10,
        /// `SSH_DISCONNECT_BY_APPLICATION`.
        BY_APPLICATION = 11,
        /// `SSH_DISCONNECT_TOO_MANY_CONNECTIONS`.
        TOO_MANY_CONNECTIONS = 12,
        /// `SSH_DISCONNECT_AUTH_CANCELLED_BY_USER`.
        AUTH_CANCELLED_BY_USER = 13,
        /// `SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE`.
        NO_MORE_AUTH_METHODS_AVAILABLE = 14,
        /// `SSH_DISCONNECT_ILLEGAL_USER_NAME`.
        ILLEGAL_USER_NAME = 15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known message numbers print their protocol names; unknown ones print the number.
    #[test]
    fn debug_prints_names_for_known_values_and_numbers_otherwise() {
        assert_eq!(format!("{:?}", MessageType::KEXINIT), "KEXINIT");
        assert_eq!(format!("{:?}", MessageType(250)), "MessageType(250)");
        assert_eq!(format!("{}", DisconnectReason::MAC_ERROR), "MAC_ERROR");
        assert_eq!(DisconnectReason(99).name(), None);
    }

    /// The message ranges of RFC 4250 §4.1.2 classify every number exactly once.
    #[test]
    fn every_message_number_falls_in_at_most_one_range() {
        for n in 0..=255u8 {
            let t = MessageType(n);
            let hits =
                [t.is_transport_generic(), t.is_key_exchange(), t.is_userauth(), t.is_connection()]
                    .iter()
                    .filter(|b| **b)
                    .count();
            assert!(hits <= 1, "{n} is in {hits} ranges");
            assert_eq!(hits == 1, (1..=127).contains(&n), "{n}");
        }
    }
}

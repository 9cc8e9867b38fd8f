//! [`ClientError`]: why a client operation failed, in terms a program can act on.

use std::fmt;

use crate::connection::msgs::OpenFailureReason;
use crate::error::Error;

/// Why connecting, authenticating or a channel operation failed.
///
/// The `Display` texts follow OpenSSH's, so that a command-line client can print them as they
/// are (`Permission denied (publickey,password).`, `Host key verification failed.`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached: the name did not resolve, or every address refused or
    /// timed out (the last address's error is kept).
    Connect {
        /// The host as given.
        host: String,
        /// The port.
        port: u16,
        /// The failure, with the OS's errno when there was one.
        error: twine_core::Error,
    },
    /// The host key policy refused the server's key.
    HostKeyRejected {
        /// The host as checked (the `HostKeyAlias` when one is set).
        host: String,
        /// The port.
        port: u16,
        /// The key's SHA-256 fingerprint (`SHA256:...`).
        fingerprint: String,
    },
    /// Every authentication method we could try failed.
    AuthFailed {
        /// The methods the server would still have accepted (its last
        /// `SSH_MSG_USERAUTH_FAILURE` list).
        methods_left: Vec<String>,
    },
    /// The SSH protocol failed: the server disconnected, sent something invalid, or we found
    /// nothing in common with it.
    Protocol(Error),
    /// The server stopped answering keepalives (`ServerAliveCountMax` went unanswered).
    ServerNotResponding,
    /// The connection to the server was lost, or closed before the operation finished.
    ConnectionLost(Option<twine_core::Error>),
    /// The server refused to open a channel.
    ChannelOpenFailed {
        /// Its reason code.
        reason: OpenFailureReason,
        /// Its explanation.
        description: String,
    },
    /// The server refused a request (`exec`, `pty-req`, `tcpip-forward`, ...).
    RequestRefused {
        /// The request's name.
        request: String,
    },
    /// A command's output passed the bound given to [`Connection::run`](super::Connection::run).
    OutputLimitExceeded {
        /// The bound, in bytes.
        limit: usize,
    },
    /// Something failed on this side: a key file could not be read, a local port could not be
    /// opened, the reactor stopped.
    Local(twine_core::Error),
}

impl ClientError {
    /// The exit status OpenSSH's `ssh` uses for this failure when it is the reason a command
    /// could not run: always 255.
    pub fn exit_code(&self) -> u8 {
        255
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { host, port, error } => {
                write!(f, "connect to host {host} port {port}: ")?;
                match error.raw_os_error() {
                    Some(errno) => write!(f, "{}", std::io::Error::from_raw_os_error(errno)),
                    None => write!(f, "{}", error.kind()),
                }
            }
            Self::HostKeyRejected { .. } => f.write_str("Host key verification failed."),
            Self::AuthFailed { methods_left } => {
                write!(f, "Permission denied ({}).", methods_left.join(","))
            }
            Self::Protocol(Error::DisconnectReceived { description, .. }) => {
                write!(f, "Received disconnect from server: {description}")
            }
            Self::Protocol(error) => write!(f, "{error}"),
            Self::ServerNotResponding => f.write_str("Timeout, server not responding."),
            Self::ConnectionLost(Some(error)) => write!(f, "Connection lost: {error}"),
            Self::ConnectionLost(None) => f.write_str("Connection closed"),
            Self::ChannelOpenFailed { reason, description } => {
                let name = match reason.name() {
                    Some("ADMINISTRATIVELY_PROHIBITED") => "administratively prohibited",
                    Some("CONNECT_FAILED") => "connect failed",
                    Some("UNKNOWN_CHANNEL_TYPE") => "unknown channel type",
                    Some("RESOURCE_SHORTAGE") => "resource shortage",
                    _ => "unknown reason",
                };
                write!(f, "channel open failed: {name}: {description}")
            }
            Self::RequestRefused { request } => write!(f, "the server refused {request}"),
            Self::OutputLimitExceeded { limit } => {
                write!(f, "the command's output exceeded {limit} bytes")
            }
            Self::Local(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<Error> for ClientError {
    fn from(error: Error) -> Self {
        Self::Protocol(error)
    }
}

/// For `?` in code whose error type is the reactor's (a future given to
/// [`Reactor::run_until`](twine_core::Reactor::run_until)): the message is kept as context.
impl From<ClientError> for twine_core::Error {
    fn from(error: ClientError) -> Self {
        use twine_core::ErrorKind;
        let kind = match &error {
            ClientError::Connect { error, .. }
            | ClientError::Local(error)
            | ClientError::ConnectionLost(Some(error)) => error.kind(),
            ClientError::HostKeyRejected { .. } | ClientError::AuthFailed { .. } => {
                ErrorKind::PermissionDenied
            }
            ClientError::ServerNotResponding => ErrorKind::TimedOut,
            ClientError::ConnectionLost(None) => ErrorKind::ConnectionAborted,
            ClientError::OutputLimitExceeded { .. } => ErrorKind::LimitReached,
            ClientError::ChannelOpenFailed { .. } | ClientError::RequestRefused { .. } => {
                ErrorKind::ConnectionRefused
            }
            _ => ErrorKind::Other,
        };
        Self::new(kind, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An authentication failure prints as OpenSSH's does, listing the methods left.
    #[test]
    fn auth_failure_prints_like_openssh() {
        let error =
            ClientError::AuthFailed { methods_left: vec!["publickey".into(), "password".into()] };
        assert_eq!(error.to_string(), "Permission denied (publickey,password).");
    }

    /// A refused connection names the host, the port and how it failed.
    #[test]
    fn connect_failure_names_host_port_and_os_error() {
        let error = ClientError::Connect {
            host: "example.org".into(),
            port: 2222,
            error: twine_core::Error::new(twine_core::ErrorKind::ConnectionRefused, "connect"),
        };
        let text = error.to_string();
        assert!(text.starts_with("connect to host example.org port 2222: "), "{text}");
        assert!(text.contains("refused"), "{text}");
    }

    /// Converting to the reactor's error keeps the message and picks a matching kind.
    #[test]
    fn converts_to_a_reactor_error_keeping_the_message() {
        let error = twine_core::Error::from(ClientError::HostKeyRejected {
            host: "h".into(),
            port: 22,
            fingerprint: "SHA256:x".into(),
        });
        assert_eq!(error.kind(), twine_core::ErrorKind::PermissionDenied);
        assert!(error.to_string().contains("Host key verification failed."));
    }
}

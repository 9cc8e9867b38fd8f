//! Helpers shared by the whole-stack tests: configurations, decision-makers, channel helpers.

use crate::connection::msgs::{ChannelKind, ChannelRequest};
use crate::connection::{self, ChannelId, Event as ConnectionEvent, Stream};
use crate::keys::PrivateKey;
use crate::stack::{ClientEvent, ClientStackConfig, ServerEvent, ServerStackConfig};
use crate::testing::{fixtures, StackPair};
use crate::transport;
use crate::userauth::{self, Attempt, Decision, FailureDelay, Password, PasswordAnswer};

/// The chunk sizes every framing-sensitive test runs with: all at once, 1 byte, 7 bytes.
pub(super) const CHUNKINGS: [Option<usize>; 3] = [None, Some(1), Some(7)];

/// The password the test backends accept.
pub(super) const PASSWORD: &str = "hunter2";

/// A server stack config: one Ed25519 host key, no failure delay, default connection settings.
pub(super) fn server_config() -> ServerStackConfig {
    server_config_with(|_| {}, connection::Config::default())
}

/// A server stack config whose user authentication `edit` adjusts.
pub(super) fn server_config_with(
    edit: impl FnOnce(&mut userauth::ServerConfig),
    connection: connection::Config,
) -> ServerStackConfig {
    server_config_full(server_transport(), edit, connection)
}

/// The suite's server transport config: one Ed25519 host key.
pub(super) fn server_transport() -> transport::ServerConfig {
    transport::ServerConfig::new(vec![fixtures::ed25519_host_key(1)])
}

/// A server stack config from all three parts (no failure delay unless `edit` sets one).
pub(super) fn server_config_full(
    transport: transport::ServerConfig,
    edit: impl FnOnce(&mut userauth::ServerConfig),
    connection: connection::Config,
) -> ServerStackConfig {
    let mut userauth = userauth::ServerConfig::new([0x5a; 32]);
    userauth.failure_delay = FailureDelay::dangerous_none();
    edit(&mut userauth);
    ServerStackConfig::new(transport, userauth, connection).unwrap()
}

/// The default client stack config.
pub(super) fn client_config() -> ClientStackConfig {
    client_config_with(|_| {}, connection::Config::default())
}

/// A client stack config whose user authentication `edit` adjusts.
pub(super) fn client_config_with(
    edit: impl FnOnce(&mut userauth::ClientConfig),
    connection: connection::Config,
) -> ClientStackConfig {
    client_config_full(transport::ClientConfig::default(), edit, connection)
}

/// A client stack config from all three parts.
pub(super) fn client_config_full(
    transport: transport::ClientConfig,
    edit: impl FnOnce(&mut userauth::ClientConfig),
    connection: connection::Config,
) -> ClientStackConfig {
    let mut userauth = userauth::ClientConfig::new();
    edit(&mut userauth);
    ClientStackConfig::new(transport, userauth, connection).unwrap()
}

/// A user key made from a fixed seed.
pub(super) fn user_key(byte: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[byte; 32]).unwrap()
}

/// A backend that accepts [`PASSWORD`] for anyone, tagging the login with the user name.
pub(super) fn password_backend(_user: &str, attempt: &Attempt) -> Option<Decision<String>> {
    Some(match attempt {
        Attempt::Password { password, .. } if password.matches(PASSWORD.as_bytes()) => {
            Decision::Accept("password".to_owned())
        }
        _ => Decision::Reject,
    })
}

/// A pair whose server accepts [`PASSWORD`] and whose client answers with it.
pub(super) fn password_pair() -> StackPair<String> {
    let mut pair = StackPair::new(client_config(), server_config(), "alice");
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(Box::new(|event, client| {
        if let userauth::ClientEvent::PasswordRequested { .. } = event {
            let answer = PasswordAnswer::Password(Password::from(PASSWORD));
            client.password_ready(Some(answer)).unwrap();
        }
    }));
    pair
}

/// A pair driven to authentication with a password, with its events cleared.
pub(super) fn authenticated_pair() -> StackPair<String> {
    let mut pair = password_pair();
    pair.drive();
    assert_authenticated(&pair);
    pair.take_client_events();
    pair.take_server_events();
    pair
}

/// Asserts that both sides are authenticated and neither has closed.
pub(super) fn assert_authenticated<R: std::fmt::Debug>(pair: &StackPair<R>) {
    assert_eq!(pair.client_closed(), None, "client closed");
    assert_eq!(pair.server_closed(), None, "server closed");
    assert!(pair.client.is_authenticated(), "client not authenticated");
    assert!(pair.server.is_authenticated(), "server not authenticated");
}

/// The connection-layer events among the client's.
pub(super) fn client_connection_events<R>(pair: &StackPair<R>) -> Vec<&ConnectionEvent> {
    pair.client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Connection(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// The connection-layer events among the server's.
pub(super) fn server_connection_events<R>(pair: &StackPair<R>) -> Vec<&ConnectionEvent> {
    pair.server_events()
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Connection(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Opens a session from the client, accepts it on the server, and returns both ids.
pub(super) fn open_session<R>(pair: &mut StackPair<R>) -> (ChannelId, ChannelId) {
    let client_id =
        pair.client.connection_mut().unwrap().open_channel(ChannelKind::Session).unwrap();
    pair.drive();
    let server_id = pair
        .take_server_events()
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::Connection(ConnectionEvent::ChannelOpenRequested { id, .. }) => Some(id),
            _ => None,
        })
        .expect("the server saw the open");
    pair.server.connection_mut().unwrap().accept_channel(server_id).unwrap();
    pair.drive();
    let opened = pair.take_client_events().into_iter().any(|e| {
        matches!(e, ClientEvent::Connection(ConnectionEvent::ChannelOpened { id }) if id == client_id)
    });
    assert!(opened, "the client saw the confirmation");
    (client_id, server_id)
}

/// Sends an `exec` request without a reply wanted.
pub(super) fn exec(pair: &mut StackPair<String>, id: ChannelId, command: &str) {
    let request = ChannelRequest::Exec { command: command.as_bytes().to_vec() };
    pair.client.connection_mut().unwrap().send_request(id, &request, false).unwrap();
}

/// Reads everything buffered on `stream` of the server's channel `id`.
pub(super) fn read_server<R>(pair: &mut StackPair<R>, id: ChannelId, stream: Stream) -> Vec<u8> {
    let connection = pair.server.connection_mut().unwrap();
    read_all(connection, id, stream)
}

/// Reads everything buffered on `stream` of the client's channel `id`.
pub(super) fn read_client<R>(pair: &mut StackPair<R>, id: ChannelId, stream: Stream) -> Vec<u8> {
    let connection = pair.client.connection_mut().unwrap();
    read_all(connection, id, stream)
}

fn read_all(connection: &mut connection::Connection, id: ChannelId, stream: Stream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = connection.recv(id, stream, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

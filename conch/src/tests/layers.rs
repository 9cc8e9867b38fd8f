//! The layers above running over the transport, wired as a reactor adapter would wire them:
//! service request, user authentication (with `server-sig-algs` from EXT_INFO), delayed
//! compression switched on at USERAUTH_SUCCESS, a rekey in the middle of authentication, and
//! a session channel carrying data.
//!
//! This is the reference for how payloads go up and down: one payload at a time from
//! [`Transport::poll_payload`], acted on before the next.

use std::sync::Arc;
use std::time::Instant;

use super::util::{client_config, server_config, CHUNKINGS};
use crate::connection::{self, ChannelId, Connection, Stream};
use crate::crypto::algorithms::Category;
use crate::testing::SeededRandom;
use crate::transport::{Event, Incoming, Transport};
use crate::userauth::{
    self, Attempt, ClientEvent, Decision, Disposition, PasswordAnswer, ServerEvent,
};
use crate::wire::msgs::transport::{ServiceAccept, ServiceRequest};
use crate::wire::msgs::Message;
use crate::wire::MessageType;

const DATA: &[u8] = b"hello over every layer";

/// The client's layers above the transport.
#[derive(Default)]
struct ClientStack {
    ext_info: Vec<(String, Vec<u8>)>,
    auth: Option<userauth::Client>,
    conn: Option<Connection>,
    channel: Option<ChannelId>,
    received: Vec<u8>,
}

/// The server's layers above the transport.
#[derive(Default)]
struct ServerStack {
    /// User authentication requests seen; each starts a rekey.
    requests: usize,
    auth: Option<userauth::Server<()>>,
    conn: Option<Connection>,
}

impl ClientStack {
    fn on_payload(&mut self, t: &mut Transport, incoming: Incoming, payload: &[u8]) {
        match incoming.msg_type.0 {
            6 => {
                assert_eq!(ServiceAccept::decode(payload).unwrap().service, b"ssh-userauth");
                let host_key = t.host_key().unwrap().to_blob();
                let config = Arc::new(userauth::ClientConfig::new());
                let mut auth =
                    userauth::Client::new(config, "alice", t.session_id().unwrap(), &host_key);
                for (name, value) in &self.ext_info {
                    auth.handle_ext_info(name, value).unwrap();
                }
                self.auth = Some(auth);
            }
            50..=79 => {
                let auth = self.auth.as_mut().unwrap();
                if auth.handle_payload(payload).unwrap() == Disposition::Unrecognized {
                    t.send_unimplemented(incoming.seq).unwrap();
                }
                // Act on the result before the next payload: compression starts with the
                // server's very next packet.
                self.flush_auth(t);
            }
            _ => self.conn.as_mut().unwrap().handle_payload(payload).unwrap(),
        }
    }

    fn flush_auth(&mut self, t: &mut Transport) {
        let Some(auth) = self.auth.as_mut() else { return };
        send_all(t, |buf| auth.poll_payload(buf));
        while let Some(event) = auth.poll_event() {
            match event {
                ClientEvent::PasswordRequested { .. } => {
                    let answer = PasswordAnswer::Password("hunter2".into());
                    auth.password_ready(Some(answer)).unwrap();
                }
                ClientEvent::Succeeded { .. } => {
                    t.enable_delayed_compression();
                    let mut conn =
                        Connection::new(connection::Side::Client, connection::Config::default())
                            .unwrap();
                    self.channel =
                        Some(conn.open_channel(connection::msgs::ChannelKind::Session).unwrap());
                    self.conn = Some(conn);
                }
                other => panic!("unexpected {other:?}"),
            }
            send_all(t, |buf| auth.poll_payload(buf));
        }
    }

    fn after(&mut self, t: &mut Transport) {
        self.flush_auth(t);
        let Some(conn) = self.conn.as_mut() else { return };
        send_all(t, |buf| conn.poll_payload(buf));
        while let Some(event) = conn.poll_event() {
            match event {
                connection::Event::ChannelOpened { id } => {
                    assert_eq!(conn.send_data(id, DATA).unwrap(), DATA.len());
                }
                connection::Event::DataReceived { id, .. } => {
                    let mut chunk = [0; 64];
                    let n = conn.recv(id, Stream::Data, &mut chunk).unwrap();
                    self.received.extend_from_slice(&chunk[..n]);
                }
                _ => {}
            }
            send_all(t, |buf| conn.poll_payload(buf));
        }
    }
}

impl ServerStack {
    fn on_payload(&mut self, t: &mut Transport, now: Instant, incoming: Incoming, payload: &[u8]) {
        match incoming.msg_type.0 {
            5 => {
                assert_eq!(ServiceRequest::decode(payload).unwrap().service, b"ssh-userauth");
                let mut accept = Vec::new();
                ServiceAccept { service: b"ssh-userauth" }.encode(&mut accept);
                t.send_payload(&accept).unwrap();
                let host_key = t.host_key().unwrap().to_blob();
                let config = Arc::new(userauth::ServerConfig::new([9; 32]));
                let auth =
                    userauth::Server::new(config, t.session_id().unwrap(), &host_key).unwrap();
                self.auth = Some(auth);
            }
            50..=79 => {
                self.requests += 1;
                let auth = self.auth.as_mut().unwrap();
                if auth.handle_payload(now, payload).unwrap() == Disposition::Unrecognized {
                    t.send_unimplemented(incoming.seq).unwrap();
                }
                // A rekey in the middle of authentication: the answer (at last the
                // USERAUTH_SUCCESS, with compression switching on behind it) waits in the
                // transport's queue until our NEWKEYS.
                t.rekey(now).unwrap();
                self.flush_auth(t, now);
            }
            _ => self.conn.as_mut().unwrap().handle_payload(payload).unwrap(),
        }
    }

    fn flush_auth(&mut self, t: &mut Transport, now: Instant) {
        let Some(auth) = self.auth.as_mut() else { return };
        let mut buf = Vec::new();
        loop {
            while auth.poll_payload(&mut buf) {
                t.send_payload(&buf).unwrap();
                if buf.first() == Some(&MessageType::USERAUTH_SUCCESS.0) {
                    // Right after sending USERAUTH_SUCCESS, as OpenSSH does.
                    t.enable_delayed_compression();
                }
                buf.clear();
            }
            let Some(event) = auth.poll_event() else { return };
            match event {
                ServerEvent::UserIdentified { .. } => auth.user_settings(now, None).unwrap(),
                ServerEvent::AuthRequested { id, attempt, .. } => {
                    let decision = match attempt {
                        Attempt::Password { password, .. } if password.matches(b"hunter2") => {
                            Decision::Accept(())
                        }
                        _ => Decision::Reject,
                    };
                    auth.auth_decided(now, id, decision).unwrap();
                }
                ServerEvent::SignatureRefused { .. } => {}
                ServerEvent::Authenticated { pipelined, .. } => {
                    let mut conn =
                        Connection::new(connection::Side::Server, connection::Config::default())
                            .unwrap();
                    for p in pipelined {
                        conn.handle_payload(&p).unwrap();
                    }
                    self.conn = Some(conn);
                }
            }
        }
    }

    fn after(&mut self, t: &mut Transport, now: Instant) {
        self.flush_auth(t, now);
        let Some(conn) = self.conn.as_mut() else { return };
        loop {
            send_all(t, |buf| conn.poll_payload(buf));
            let Some(event) = conn.poll_event() else { return };
            match event {
                connection::Event::ChannelOpenRequested { id, .. } => {
                    conn.accept_channel(id).unwrap()
                }
                connection::Event::DataReceived { id, .. } => {
                    // Echo what arrives.
                    let mut chunk = [0; 64];
                    let n = conn.recv(id, Stream::Data, &mut chunk).unwrap();
                    assert_eq!(conn.send_data(id, &chunk[..n]).unwrap(), n);
                }
                _ => {}
            }
        }
    }
}

/// Hands every payload a layer has ready to the transport.
fn send_all(t: &mut Transport, mut next: impl FnMut(&mut Vec<u8>) -> bool) {
    let mut buf = Vec::new();
    while next(&mut buf) {
        t.send_payload(&buf).unwrap();
        buf.clear();
    }
}

/// Moves `from`'s output into `to`, `chunk` bytes per call (all at once for `None`),
/// respecting `to`'s input capacity.
fn carry(from: &mut Transport, to: &mut Transport, now: Instant, chunk: Option<usize>) -> bool {
    let mut wire = Vec::new();
    from.poll_transmit(&mut wire);
    for piece in wire.chunks(chunk.unwrap_or(wire.len()).max(1)) {
        to.handle_input(now, piece).unwrap();
    }
    !wire.is_empty()
}

/// Password login with a rekey started at every authentication request (so the
/// USERAUTH_SUCCESS waits behind a key exchange), `zlib@openssh.com` switched on at
/// USERAUTH_SUCCESS, and an echoed channel round trip, in every chunking.
#[test]
fn userauth_and_connection_run_over_the_transport() {
    for chunk in CHUNKINGS {
        let mut client_config = client_config();
        client_config.algorithms.configure(Category::Compression, "zlib@openssh.com").unwrap();
        let mut server_config = server_config();
        server_config.algorithms.configure(Category::Compression, "zlib@openssh.com,none").unwrap();
        server_config.ext_info = userauth::ServerConfig::new([9; 32]).ext_info_extensions();
        let mut client =
            Transport::client(Arc::new(client_config), Box::new(SeededRandom::new(1))).unwrap();
        let mut server =
            Transport::server(Arc::new(server_config), Box::new(SeededRandom::new(2))).unwrap();
        let mut now = Instant::now();
        let mut request = Vec::new();
        ServiceRequest { service: b"ssh-userauth" }.encode(&mut request);
        client.send_payload(&request).unwrap();
        let (mut cs, mut ss) = (ClientStack::default(), ServerStack::default());
        let mut payload = Vec::new();
        let mut rekeys = 0;
        for _ in 0..200 {
            let mut moved = carry(&mut client, &mut server, now, chunk);
            moved |= carry(&mut server, &mut client, now, chunk);
            while let Some(incoming) = server.poll_payload(&mut payload) {
                ss.on_payload(&mut server, now, incoming, &payload);
            }
            while let Some(event) = server.poll_event() {
                rekeys += usize::from(event == Event::KexCompleted { initial: false });
            }
            ss.after(&mut server, now);
            while let Some(incoming) = client.poll_payload(&mut payload) {
                cs.on_payload(&mut client, incoming, &payload);
            }
            while let Some(event) = client.poll_event() {
                match event {
                    Event::HostKeyReceived { .. } => client.host_key_decided(true).unwrap(),
                    Event::ExtInfoReceived { extensions } => cs.ext_info = extensions,
                    Event::Disconnected { error, .. } => panic!("client: {error}"),
                    _ => {}
                }
            }
            cs.after(&mut client);
            if !moved && cs.received.len() == DATA.len() {
                break;
            }
            // Virtual time: jump to the failure delay's end when it is all that is left.
            if let Some(at) = ss.auth.as_ref().and_then(userauth::Server::poll_timeout) {
                if !moved && at > now {
                    now = at;
                    ss.auth.as_mut().unwrap().handle_timeout(now).unwrap();
                }
            }
        }
        assert_eq!(cs.received, DATA, "chunk {chunk:?}");
        assert!(cs.channel.is_some());
        assert_eq!(rekeys, ss.requests, "chunk {chunk:?}");
        assert!(ss.requests >= 2, "none and password at least");
        assert_eq!(client.compression_active(), (true, true));
        assert_eq!(server.compression_active(), (true, true));
        assert!(client.server_sig_algs().unwrap().contains("rsa-sha2-512"));
    }
}

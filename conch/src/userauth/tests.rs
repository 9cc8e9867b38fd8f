//! User authentication, client and server back to back through payload queues, with a fake
//! decision-maker, fake user input and virtual time; plus hand-fed payloads for the protocol
//! violations a real peer of ours never sends.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::msgs::{
    MethodData, PublicKeyData, UserauthBanner, UserauthFailure, UserauthInfoRequest,
    UserauthInfoResponse, UserauthPasswdChangereq, UserauthPkOk, UserauthRequest,
};
use super::*;
use crate::error::{Error, LocalMisuse, PeerIncompatible, PeerMisbehaved};
use crate::keys::{PrivateKey, PublicKey, SignatureAlgorithm};
use crate::wire::{DisconnectReason, InvalidMessage, MessageType, NameList, Writer};

const SESSION_ID: &[u8] = b"an exchange hash of 32 bytes....";

fn host_key_blob() -> Vec<u8> {
    user_key(0x40).public_key().to_blob()
}

/// The Ed25519 key made from seed `[n; 32]`, made once (key derivation is slow in debug builds).
fn user_key(n: u8) -> &'static PrivateKey {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..=0x40).map(|n| PrivateKey::ed25519_from_seed(&[n; 32]).unwrap()).collect()
    });
    &keys[usize::from(n)]
}

fn server_config() -> ServerConfig {
    ServerConfig::new([7; 32])
}

/// A server offering only `methods`.
fn server_with(methods: &[Method]) -> ServerConfig {
    let mut config = server_config();
    config.methods = methods.to_vec();
    config
}

fn delay_for(config: &ServerConfig, user: &str) -> Duration {
    config.failure_delay.for_user(user)
}

type Backend = Box<dyn FnMut(&str, &Attempt) -> Decision<String>>;

/// Accepts `alice` with password `hunter2` and the keys of seeds 1 and 2; rejects the rest.
fn standard_backend() -> Backend {
    let allowed = [user_key(1).public_key().clone(), user_key(2).public_key().clone()];
    Box::new(move |user, attempt| {
        if user != "alice" {
            return Decision::Reject;
        }
        match attempt {
            Attempt::Password { password, new_password: None } if password.matches(b"hunter2") => {
                Decision::Accept("password".into())
            }
            Attempt::PublicKeyQuery { key, .. } | Attempt::PublicKey { key, .. }
                if allowed.contains(key) =>
            {
                Decision::Accept("key".into())
            }
            _ => Decision::Reject,
        }
    })
}

/// What `ServerEvent::Authenticated` carried: methods used, restrictions, pipelined payloads.
type Authenticated = (Vec<Method>, Vec<String>, Vec<Vec<u8>>);

/// One payload on the wire, with the virtual time it was sent.
#[derive(Debug)]
struct Wire {
    at: Duration,
    to_server: bool,
    payload: Vec<u8>,
}

impl Wire {
    fn number(&self) -> u8 {
        self.payload.first().copied().unwrap_or(0)
    }
}

#[derive(Debug)]
#[allow(dead_code)] // the errors are read through `Debug` when a test fails
enum End {
    Succeeded,
    Failed(Vec<String>),
    ServerError(Error),
    ClientError(Error),
}

/// A client and a server back to back, with virtual time: decisions take `latency`, user
/// input and signatures are immediate.
struct Pair {
    start: Instant,
    now: Instant,
    server: Server<String>,
    client: Client,
    backend: Backend,
    latency: Duration,
    scheduled: Vec<(Instant, RequestId, Decision<String>)>,
    signers: Vec<&'static PrivateKey>,
    forger: Option<&'static PrivateKey>,
    passwords: VecDeque<Option<PasswordAnswer>>,
    responses: VecDeque<Option<Vec<Password>>>,
    wire: Vec<Wire>,
    attempts: Vec<(String, Attempt)>,
    /// Signed requests the server refused itself (`SignatureRefused`).
    refused: Vec<(String, Attempt)>,
    authenticated: Option<Authenticated>,
    client_events: Vec<ClientEvent>,
    end: Option<End>,
    /// Users named by `UserIdentified`, and the settings to answer with.
    identified: Vec<String>,
    user_config: Option<Arc<ServerConfig>>,
}

impl Pair {
    fn new(server: ServerConfig, client: ClientConfig, backend: Backend) -> Self {
        Self::with_client_view(server, client, backend, "alice", SESSION_ID, &host_key_blob())
    }

    fn with_client_view(
        server: ServerConfig,
        client: ClientConfig,
        backend: Backend,
        user: &str,
        session_id: &[u8],
        host_key: &[u8],
    ) -> Self {
        let start = Instant::now();
        Self {
            start,
            now: start,
            server: Server::new(Arc::new(server), SESSION_ID, &host_key_blob()).unwrap(),
            client: Client::new(Arc::new(client), user, session_id, host_key),
            backend,
            latency: Duration::ZERO,
            scheduled: Vec::new(),
            signers: Vec::new(),
            forger: None,
            passwords: VecDeque::new(),
            responses: VecDeque::new(),
            wire: Vec::new(),
            attempts: Vec::new(),
            refused: Vec::new(),
            authenticated: None,
            client_events: Vec::new(),
            end: None,
            identified: Vec::new(),
            user_config: None,
        }
    }

    fn with_key(mut self, key: &'static PrivateKey) -> Self {
        self.client.add_identity(key.public_key().clone());
        self.signers.push(key);
        self
    }

    fn with_passwords(mut self, passwords: &[&str]) -> Self {
        for p in passwords {
            self.passwords.push_back(Some(PasswordAnswer::Password(Password::from(*p))));
        }
        self
    }

    /// Runs until the client succeeds or fails, a side errs, or nothing more can happen.
    fn drive(&mut self) -> &End {
        for _ in 0..10_000 {
            if self.end.is_some() {
                break;
            }
            if self.step() {
                continue;
            }
            let next_decision = self.scheduled.iter().map(|(at, ..)| *at).min();
            let Some(next) =
                [self.server.poll_timeout(), next_decision].into_iter().flatten().min()
            else {
                break;
            };
            self.now = self.now.max(next);
            self.run_timers();
        }
        self.end.as_ref().expect("the exchange stalled")
    }

    fn step(&mut self) -> bool {
        let mut progress = false;
        let mut buf = Vec::new();
        while self.end.is_none() && self.client.poll_payload(&mut buf) {
            progress = true;
            self.record(true, &buf);
            if let Err(e) = self.server.handle_payload(self.now, &buf) {
                self.end = Some(End::ServerError(e));
            }
            buf.clear();
        }
        while self.end.is_none() && self.server.poll_payload(&mut buf) {
            progress = true;
            self.record(false, &buf);
            if let Err(e) = self.client.handle_payload(&buf) {
                self.end = Some(End::ClientError(e));
            }
            buf.clear();
        }
        while let Some(event) = self.server.poll_event() {
            progress = true;
            self.server_event(event);
        }
        while let Some(event) = self.client.poll_event() {
            progress = true;
            self.client_event(event);
        }
        progress
    }

    fn run_timers(&mut self) {
        let now = self.now;
        let (due, later) = self.scheduled.drain(..).partition(|(at, ..)| *at <= now);
        self.scheduled = later;
        for (_, id, decision) in due {
            if let Err(e) = self.server.auth_decided(now, id, decision) {
                self.end = Some(End::ServerError(e));
            }
        }
        if let Err(e) = self.server.handle_timeout(now) {
            self.end.get_or_insert(End::ServerError(e));
        }
    }

    fn record(&mut self, to_server: bool, payload: &[u8]) {
        let at = self.now - self.start;
        self.wire.push(Wire { at, to_server, payload: payload.to_vec() });
    }

    fn server_event(&mut self, event: ServerEvent<String>) {
        match event {
            ServerEvent::UserIdentified { user, .. } => {
                self.identified.push(user);
                let config = self.user_config.take();
                if let Err(e) = self.server.user_settings(self.now, config) {
                    self.end = Some(End::ServerError(e));
                }
            }
            ServerEvent::AuthRequested { id, user, attempt, .. } => {
                let decision = (self.backend)(&user, &attempt);
                self.attempts.push((user, attempt));
                if self.latency.is_zero() {
                    if let Err(e) = self.server.auth_decided(self.now, id, decision) {
                        self.end = Some(End::ServerError(e));
                    }
                } else {
                    self.scheduled.push((self.now + self.latency, id, decision));
                }
            }
            ServerEvent::SignatureRefused { user, attempt, .. } => {
                self.refused.push((user, attempt));
            }
            ServerEvent::Authenticated { methods_used, restrictions, pipelined, .. } => {
                self.authenticated = Some((methods_used, restrictions, pipelined));
            }
        }
    }

    fn client_event(&mut self, event: ClientEvent) {
        let result = match &event {
            ClientEvent::SignatureRequested { key, algorithm, data } => {
                let signer =
                    self.forger.as_ref().or(self.signers.iter().find(|s| s.public_key() == key));
                self.client.signature_ready(signer.map(|s| s.sign(*algorithm, data).unwrap()))
            }
            ClientEvent::PasswordRequested { .. } => {
                let answer = self.passwords.pop_front().flatten();
                self.client.password_ready(answer)
            }
            ClientEvent::InfoRequested(_) => {
                let answer = self.responses.pop_front().flatten();
                self.client.info_responses_ready(answer)
            }
            ClientEvent::Succeeded { .. } => {
                self.end = Some(End::Succeeded);
                Ok(())
            }
            ClientEvent::Failed { methods_left } => {
                self.end = Some(End::Failed(methods_left.clone()));
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.end = Some(End::ClientError(e));
        }
        self.client_events.push(event);
    }

    fn sent_by_server(&self) -> Vec<&Wire> {
        self.wire.iter().filter(|w| !w.to_server).collect()
    }

    fn sent_by_client(&self) -> Vec<&Wire> {
        self.wire.iter().filter(|w| w.to_server).collect()
    }

    fn server_numbers(&self) -> Vec<u8> {
        self.sent_by_server().iter().map(|w| w.number()).collect()
    }

    fn attempt_methods(&self) -> Vec<&'static str> {
        self.attempts
            .iter()
            .map(|(_, a)| match a {
                Attempt::None => "none",
                Attempt::Password { .. } => "password",
                Attempt::PublicKeyQuery { .. } => "query",
                Attempt::PublicKey { .. } => "publickey",
                Attempt::KeyboardInteractive { .. } => "kbdint",
                Attempt::KeyboardInteractiveResponses { .. } => "responses",
            })
            .collect()
    }

    fn failures_sent(&self) -> Vec<(String, bool)> {
        self.sent_by_server()
            .iter()
            .filter(|w| w.number() == 51)
            .map(|w| {
                let f = UserauthFailure::decode(&w.payload).unwrap();
                (f.methods.as_str().to_owned(), f.partial_success)
            })
            .collect()
    }

    fn password_prompts(&self) -> Vec<(u32, Option<String>)> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::PasswordRequested { attempt, change_prompt } => {
                    Some((*attempt, change_prompt.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

fn encode_request(user: &str, method: MethodData<'_>) -> Vec<u8> {
    encode(|w| UserauthRequest { user, service: SERVICE_CONNECTION, method }.encode(w))
}

fn none_request(user: &str) -> Vec<u8> {
    encode_request(user, MethodData::None)
}

fn password_request(user: &str, password: &str) -> Vec<u8> {
    encode_request(user, MethodData::Password { password: password.as_bytes(), new_password: None })
}

fn query_request(user: &str, key: &PublicKey) -> Vec<u8> {
    let blob = key.to_blob();
    encode_request(
        user,
        MethodData::PublicKey(PublicKeyData {
            algorithm: "ssh-ed25519",
            key_blob: &blob,
            host_key_blob: None,
            signature: None,
        }),
    )
}

fn signed_request(
    user: &str,
    key: &PrivateKey,
    session_id: &[u8],
    host_key: Option<&[u8]>,
) -> Vec<u8> {
    let blob = key.public_key().to_blob();
    let data = signed_data(session_id, user, SERVICE_CONNECTION, "ssh-ed25519", &blob, host_key);
    let signature = key.sign(SignatureAlgorithm::Ed25519, &data).unwrap();
    encode_request(
        user,
        MethodData::PublicKey(PublicKeyData {
            algorithm: "ssh-ed25519",
            key_blob: &blob,
            host_key_blob: host_key,
            signature: Some(&signature),
        }),
    )
}

fn kbdint_request(user: &str) -> Vec<u8> {
    encode_request(user, MethodData::KeyboardInteractive { language: "", submethods: "" })
}

fn info_response(responses: &[&[u8]]) -> Vec<u8> {
    encode(|w| UserauthInfoResponse { responses: responses.to_vec() }.encode(w))
}

/// Feeds a payload the server must take.
fn take(server: &mut Server<String>, now: Instant, payload: &[u8]) {
    assert_eq!(server.handle_payload(now, payload), Ok(Disposition::Handled));
}

/// Feeds a payload the client must take.
fn take_client(client: &mut Client, payload: &[u8]) {
    assert_eq!(client.handle_payload(payload), Ok(Disposition::Handled));
}

/// A default server, the failure delay of user `alice`, and a starting instant.
fn alice_server() -> (Server<String>, Duration, Instant) {
    let config = server_config();
    let delay = delay_for(&config, "alice");
    (new_server(config), delay, Instant::now())
}

fn new_server(config: ServerConfig) -> Server<String> {
    Server::new(Arc::new(config), SESSION_ID, &host_key_blob()).unwrap()
}

fn drain_payloads(server: &mut Server<String>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while server.poll_payload(&mut buf) {
        out.push(std::mem::take(&mut buf));
    }
    out
}

fn numbers(payloads: &[Vec<u8>]) -> Vec<u8> {
    payloads.iter().map(|p| p[0]).collect()
}

/// The id and attempt of the one event the server emitted.
fn asked(server: &mut Server<String>) -> (RequestId, Attempt) {
    match server.poll_event() {
        Some(ServerEvent::AuthRequested { id, attempt, .. }) => {
            assert!(server.poll_event().is_none());
            (id, attempt)
        }
        other => panic!("expected AuthRequested, got {other:?}"),
    }
}

/// Feeds a request the server must ask about, and answers it at the same instant.
fn answer(server: &mut Server<String>, now: Instant, payload: &[u8], decision: Decision<String>) {
    take(server, now, payload);
    let (id, _) = asked(server);
    server.auth_decided(now, id, decision).unwrap();
}

fn failure_of(payload: &[u8]) -> (String, bool) {
    let f = UserauthFailure::decode(payload).unwrap();
    (f.methods.as_str().to_owned(), f.partial_success)
}

const ALL_METHODS: &str = "publickey,password,keyboard-interactive";

// ---------------------------------------------------------------------------------------------
// Flows, client and server back to back.

/// With `none` enabled and accepted, the very first request logs in, with no delay.
#[test]
fn none_succeeds_when_the_application_accepts_it() {
    let mut config = server_config();
    config.methods.push(Method::None);
    let mut pair =
        Pair::new(config, ClientConfig::new(), Box::new(|_, _| Decision::Accept("open".into())));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.server_numbers(), [52]);
    assert_eq!(pair.sent_by_server()[0].at, Duration::ZERO);
    let (methods, restrictions, _) = pair.authenticated.as_ref().unwrap();
    assert_eq!(
        (methods.as_slice(), restrictions.as_slice()),
        (&[Method::None][..], &["open".to_owned()][..])
    );
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::Succeeded { method: Method::None })
    ));
}

/// The `none` probe is answered at once with every enabled method, and is not asked of the
/// application when `none` is not enabled.
#[test]
fn none_probe_lists_the_methods_without_delay_or_penalty() {
    let mut pair = Pair::new(server_config(), ClientConfig::new(), standard_backend());
    assert!(
        matches!(pair.drive(), End::Failed(left) if *left == ["publickey", "password", "keyboard-interactive"])
    );
    assert_eq!(pair.failures_sent()[0], (ALL_METHODS.to_owned(), false));
    assert_eq!(pair.sent_by_server()[0].at, Duration::ZERO);
    assert!(!pair.attempts.iter().any(|(_, a)| matches!(a, Attempt::None)));
}

/// The right password logs in; the application sees it once and its restriction comes back.
#[test]
fn password_succeeds() {
    let mut pair =
        Pair::new(server_with(&[Method::Password]), ClientConfig::new(), standard_backend())
            .with_passwords(&["hunter2"]);
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["password"]);
    assert_eq!(pair.server_numbers(), [51, 52]);
    let (methods, restrictions, _) = pair.authenticated.as_ref().unwrap();
    assert_eq!(methods, &[Method::Password]);
    assert_eq!(restrictions, &["password".to_owned()]);
    assert_eq!(pair.password_prompts(), [(1, None)]);
}

/// Wrong passwords are asked for `NumberOfPasswordPrompts` times, each failure after the delay,
/// then the client gives up with the methods left.
#[test]
fn password_fails_after_number_of_password_prompts() {
    let config = server_with(&[Method::PublicKey, Method::Password]);
    let delay = delay_for(&config, "alice");
    let mut pair = Pair::new(config, ClientConfig::new(), standard_backend())
        .with_passwords(&["a", "b", "c", "hunter2"]);
    assert!(matches!(pair.drive(), End::Failed(left) if left.join(",") == "publickey,password"));
    assert_eq!(pair.attempt_methods(), ["password", "password", "password"]);
    assert_eq!(pair.password_prompts(), [(1, None), (2, None), (3, None)]);
    let times: Vec<Duration> = pair.sent_by_server().iter().map(|w| w.at).collect();
    assert_eq!(times, [Duration::ZERO, delay, delay * 2, delay * 3]);
    assert_eq!(pair.server.failures(), 3);
}

/// An expired password gets a change request; the client sends old and new, and is let in.
#[test]
fn password_change_request_is_answered_with_old_and_new_passwords() {
    let backend: Backend = Box::new(|_, attempt| match attempt {
        Attempt::Password { password, new_password: None } if password.matches(b"old") => {
            Decision::ChangePassword { prompt: "Password expired\x1b[2J".into() }
        }
        Attempt::Password { password, new_password: Some(new) }
            if password.matches(b"old") && new.matches(b"new") =>
        {
            Decision::Accept("changed".into())
        }
        _ => Decision::Reject,
    });
    let mut pair = Pair::new(server_with(&[Method::Password]), ClientConfig::new(), backend)
        .with_passwords(&["old"]);
    pair.passwords.push_back(Some(PasswordAnswer::Change { old: "old".into(), new: "new".into() }));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.password_prompts(), [(1, None), (1, Some("Password expired[2J".into()))]);
    assert_eq!(pair.server_numbers(), [51, 60, 52]);
    assert_eq!(pair.server.failures(), 0);
}

/// Answering a password prompt with `None` gives up the method: the next one is tried.
#[test]
fn a_cancelled_password_prompt_moves_to_the_next_method() {
    let mut pair = Pair::new(server_config(), ClientConfig::new(), standard_backend());
    pair.passwords.push_back(None);
    assert!(matches!(pair.drive(), End::Failed(_)));
    assert_eq!(pair.password_prompts().len(), 1);
    assert!(pair.attempt_methods().iter().all(|m| *m != "password"));
}

/// A key is queried, the server answers PK_OK, the client signs, and the application sees the
/// verified key: query first, then the signed attempt.
#[test]
fn publickey_query_then_signature_succeeds() {
    let mut pair =
        Pair::new(server_config(), ClientConfig::new(), standard_backend()).with_key(user_key(1));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["query", "publickey"]);
    assert_eq!(pair.server_numbers(), [51, 60, 52]);
    let ok = UserauthPkOk::decode(&pair.sent_by_server()[1].payload).unwrap();
    assert_eq!(
        (ok.algorithm, ok.key_blob),
        ("ssh-ed25519", &user_key(1).public_key().to_blob()[..])
    );
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::Succeeded { method: Method::PublicKey })
    ));
}

/// A key the application does not accept fails (counted, as in OpenSSH); the next key works.
#[test]
fn publickey_rejected_key_is_skipped_for_the_next_one() {
    let mut pair = Pair::new(server_config(), ClientConfig::new(), standard_backend())
        .with_key(user_key(9))
        .with_key(user_key(2));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["query", "query", "publickey"]);
    assert_eq!(pair.server.failures(), 1);
}

/// A signature by another key is never put to the application as a question: it counts as a
/// failure, and the application is told of it (`SignatureRefused`, with the key and the
/// signature that failed) for its log.
#[test]
fn wrong_signature_is_rejected_before_the_application_is_asked_and_told_to_it() {
    let mut pair =
        Pair::new(server_with(&[Method::PublicKey]), ClientConfig::new(), standard_backend())
            .with_key(user_key(1));
    pair.forger = Some(user_key(3));
    assert!(matches!(pair.drive(), End::Failed(_)));
    assert_eq!(pair.attempt_methods(), ["query"]);
    assert_eq!(pair.server.failures(), 1);
    let [(user, Attempt::PublicKey { key, signature, certificate: None, .. })] =
        pair.refused.as_slice()
    else {
        panic!("expected one refused signed key, got {:?}", pair.refused);
    };
    assert_eq!(user, "alice");
    assert_eq!(key, user_key(1).public_key());
    assert!(!signature.is_empty());
}

/// With `backend_verifies_plain_key_signatures` (a privilege-separated worker, whose monitor
/// verifies every key it accepts), a signed request with a plain key reaches the application
/// unchecked, with the bytes the client sent; the application's refusal fails it as any
/// refusal does. Without it, the same request fails before the application hears of it.
#[test]
fn a_backend_that_verifies_signatures_itself_gets_the_signature_unchecked() {
    let blob = user_key(1).public_key().to_blob();
    let data = signed_data(SESSION_ID, "alice", SERVICE_CONNECTION, "ssh-ed25519", &blob, None);
    // Key 1 offered, key 3's signature: no good for key 1.
    let forged = user_key(3).sign(SignatureAlgorithm::Ed25519, &data).unwrap();
    let request = encode_request(
        "alice",
        MethodData::PublicKey(PublicKeyData {
            algorithm: "ssh-ed25519",
            key_blob: &blob,
            host_key_blob: None,
            signature: Some(&forged),
        }),
    );
    let now = Instant::now();

    let mut checking = new_server(server_with(&[Method::PublicKey]));
    take(&mut checking, now, &request);
    match checking.poll_event() {
        Some(ServerEvent::SignatureRefused {
            attempt: Attempt::PublicKey { signature, .. },
            ..
        }) => {
            assert_eq!(signature, forged, "the core verifies and refuses it itself, and says so");
        }
        other => panic!("expected SignatureRefused, got {other:?}"),
    }
    assert!(checking.poll_event().is_none(), "nothing to decide");
    assert_eq!(checking.failures(), 1);

    let mut config = server_with(&[Method::PublicKey]);
    config.backend_verifies_plain_key_signatures = true;
    let mut server = new_server(config);
    take(&mut server, now, &request);
    let (id, attempt) = asked(&mut server);
    let Attempt::PublicKey { key, signature, certificate: None, .. } = attempt else {
        panic!("expected a signed public key attempt, got {attempt:?}");
    };
    assert_eq!(&key, user_key(1).public_key());
    assert_eq!(signature, forged);
    server.auth_decided(now, id, Decision::Reject).unwrap();
    assert_eq!(server.failures(), 1);
    assert!(!server.is_authenticated());
}

/// A signature over another session identifier does not verify.
#[test]
fn signature_over_another_session_does_not_verify() {
    let mut pair = Pair::with_client_view(
        server_with(&[Method::PublicKey]),
        ClientConfig::new(),
        standard_backend(),
        "alice",
        b"another session",
        &host_key_blob(),
    )
    .with_key(user_key(1));
    assert!(matches!(pair.drive(), End::Failed(_)));
    assert_eq!(pair.attempt_methods(), ["query"]);
    assert_eq!(pair.refused.len(), 1, "told as a refused signature");
}

/// When the key cannot sign (agent refused), the client goes on to its next key.
#[test]
fn a_refused_signature_moves_to_the_next_key() {
    let mut pair =
        Pair::new(server_config(), ClientConfig::new(), standard_backend()).with_key(user_key(2));
    pair.client.add_identity(user_key(1).public_key().clone());
    pair.signers.retain(|_| false);
    pair.signers.push(user_key(1));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["query", "query", "publickey"]);
    assert_eq!(pair.server.failures(), 0);
}

/// With `publickey-hostbound@openssh.com` announced, the signed request is host-bound and
/// verifies over the host key.
#[test]
fn hostbound_publickey_succeeds() {
    let mut pair =
        Pair::new(server_config(), ClientConfig::new(), standard_backend()).with_key(user_key(1));
    pair.client.handle_ext_info(EXTENSION_PUBLICKEY_HOSTBOUND, b"0").unwrap();
    assert!(matches!(pair.drive(), End::Succeeded));
    let signed = pair.sent_by_client().last().unwrap().payload.clone();
    let request = UserauthRequest::decode(&signed).unwrap();
    assert_eq!(request.method.name(), METHOD_PUBLICKEY_HOSTBOUND);
}

/// A host-bound request naming another host key ends the connection, as OpenSSH's `fatal`.
#[test]
fn hostbound_with_the_wrong_host_key_disconnects() {
    let mut pair = Pair::with_client_view(
        server_config(),
        ClientConfig::new(),
        standard_backend(),
        "alice",
        SESSION_ID,
        &user_key(5).public_key().to_blob(),
    )
    .with_key(user_key(1));
    pair.client.handle_ext_info(EXTENSION_PUBLICKEY_HOSTBOUND, b"0").unwrap();
    assert!(matches!(
        pair.drive(),
        End::ServerError(Error::PeerMisbehaved(PeerMisbehaved::HostboundWrongHostKey))
    ));
}

/// Keyboard-interactive runs several rounds in one conversation, then logs in.
#[test]
fn keyboard_interactive_runs_several_rounds() {
    let backend: Backend = Box::new(|_, attempt| match attempt {
        Attempt::KeyboardInteractive { .. } => Decision::InfoRequest(InfoRequest {
            name: "Login".into(),
            instruction: "".into(),
            prompts: vec![Prompt { text: "Password: ".into(), echo: false }],
        }),
        Attempt::KeyboardInteractiveResponses { responses, .. }
            if responses.len() == 1 && responses[0].matches(b"pw") =>
        {
            Decision::InfoRequest(InfoRequest {
                name: "".into(),
                instruction: "Second factor".into(),
                prompts: vec![
                    Prompt { text: "Code: ".into(), echo: true },
                    Prompt { text: "PIN: ".into(), echo: false },
                ],
            })
        }
        Attempt::KeyboardInteractiveResponses { responses, .. }
            if responses.len() == 2 && responses[0].matches(b"123") =>
        {
            Decision::Accept("2fa".into())
        }
        _ => Decision::Reject,
    });
    let mut pair = Pair::new(server_config(), ClientConfig::new(), backend);
    pair.responses.push_back(Some(vec!["pw".into()]));
    pair.responses.push_back(Some(vec!["123".into(), "9".into()]));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["kbdint", "responses", "responses"]);
    assert_eq!(pair.server_numbers(), [51, 60, 60, 52]);
    let conversations: Vec<RequestId> = pair
        .attempts
        .iter()
        .filter_map(|(_, a)| match a {
            Attempt::KeyboardInteractiveResponses { conversation, .. } => Some(*conversation),
            _ => None,
        })
        .collect();
    assert_eq!(conversations[0], conversations[1]);
    let asked: Vec<usize> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::InfoRequested(info) => Some(info.prompts.len()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [1, 2]);
}

/// Wrong answers fail after the delay (questions go out at once); having been asked, the
/// client starts keyboard-interactive again up to `NumberOfPasswordPrompts` times.
#[test]
fn keyboard_interactive_wrong_answers_fail_and_are_retried() {
    let backend: Backend = Box::new(|_, attempt| match attempt {
        Attempt::KeyboardInteractive { .. } => Decision::InfoRequest(InfoRequest {
            prompts: vec![Prompt { text: "Password: ".into(), echo: false }],
            ..InfoRequest::default()
        }),
        _ => Decision::Reject,
    });
    let config = server_with(&[Method::KeyboardInteractive]);
    let delay = delay_for(&config, "alice");
    let mut pair = Pair::new(config, ClientConfig::new(), backend);
    for answer in ["a", "b", "c"] {
        pair.responses.push_back(Some(vec![answer.into()]));
    }
    assert!(matches!(pair.drive(), End::Failed(left) if *left == ["keyboard-interactive"]));
    assert_eq!(
        pair.attempt_methods(),
        ["kbdint", "responses", "kbdint", "responses", "kbdint", "responses"]
    );
    let timed: Vec<(u8, Duration)> =
        pair.sent_by_server().iter().map(|w| (w.number(), w.at)).collect();
    assert_eq!(
        timed,
        [
            (51, Duration::ZERO),
            (60, Duration::ZERO),
            (51, delay),
            (60, delay),
            (51, delay * 2),
            (60, delay * 2),
            (51, delay * 3),
        ]
    );
    assert_eq!(pair.server.failures(), 3);
}

/// A round with no prompts is still answered (with no responses), as RFC 4256 §3.4 asks.
#[test]
fn keyboard_interactive_round_without_prompts_is_answered() {
    let backend: Backend = Box::new(|_, attempt| match attempt {
        Attempt::KeyboardInteractive { .. } => Decision::InfoRequest(InfoRequest {
            name: "".into(),
            instruction: "Press enter".into(),
            prompts: vec![],
        }),
        Attempt::KeyboardInteractiveResponses { responses, .. } if responses.is_empty() => {
            Decision::Accept(String::new())
        }
        _ => Decision::Reject,
    });
    let mut pair = Pair::new(server_config(), ClientConfig::new(), backend);
    pair.responses.push_back(Some(vec![]));
    assert!(matches!(pair.drive(), End::Succeeded));
}

/// Rejected keyboard-interactive is retried only if the server ever asked something; here it
/// never did, so the client moves on to password after one try.
#[test]
fn keyboard_interactive_without_any_info_request_is_tried_once() {
    let mut pair = Pair::new(server_config(), ClientConfig::new(), standard_backend())
        .with_passwords(&["hunter2"]);
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["kbdint", "password"]);
}

/// Methods are tried in `PreferredAuthentications` order: keys, then keyboard-interactive,
/// then password.
#[test]
fn methods_are_tried_in_preferred_order() {
    let mut pair =
        Pair::new(server_config(), ClientConfig::new(), Box::new(|_, _| Decision::Reject))
            .with_key(user_key(1))
            .with_passwords(&["x"]);
    let mut client_config = ClientConfig::new();
    client_config.number_of_password_prompts = 1;
    pair.client = Client::new(Arc::new(client_config), "alice", SESSION_ID, &host_key_blob());
    pair.client.add_identity(user_key(1).public_key().clone());
    assert!(matches!(pair.drive(), End::Failed(_)));
    assert_eq!(pair.attempt_methods(), ["query", "kbdint", "password"]);
}

/// `AuthenticationMethods publickey,password`: the key gives partial success, the failure lists
/// only password, and the password completes the login; both restrictions come back.
#[test]
fn partial_success_follows_authentication_methods() {
    let mut config = server_config();
    config.authentication_methods = vec![vec![Method::PublicKey, Method::Password]];
    let mut pair = Pair::new(config, ClientConfig::new(), standard_backend())
        .with_key(user_key(1))
        .with_passwords(&["hunter2"]);
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(
        pair.failures_sent(),
        [("publickey".to_owned(), false), ("password".to_owned(), true)]
    );
    let (methods, restrictions, _) = pair.authenticated.as_ref().unwrap();
    assert_eq!(methods, &[Method::PublicKey, Method::Password]);
    assert_eq!(restrictions, &["key".to_owned(), "password".to_owned()]);
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::PartialSuccess { method: Method::PublicKey })));
    assert_eq!(pair.server.failures(), 0);
}

/// A password first is refused under `publickey,password` without asking the application.
#[test]
fn authentication_methods_refuse_a_method_out_of_order() {
    let mut config = server_config();
    config.authentication_methods = vec![vec![Method::PublicKey, Method::Password]];
    let mut server = new_server(config);
    let t0 = Instant::now();
    take(&mut server, t0, &password_request("alice", "hunter2"));
    assert!(server.poll_event().is_none());
    server.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(failure_of(&drain_payloads(&mut server)[0]), ("publickey".into(), false));
    assert_eq!(server.failures(), 1);
}

/// With two lists, the partial-success failure offers the next method of each, and the client
/// takes the one it prefers.
#[test]
fn partial_success_offers_the_next_method_of_every_list() {
    let mut config = server_config();
    config.authentication_methods = vec![
        vec![Method::PublicKey, Method::Password],
        vec![Method::PublicKey, Method::KeyboardInteractive],
    ];
    let backend: Backend = Box::new(|_, attempt| match attempt {
        Attempt::KeyboardInteractive { .. } => Decision::Accept("kbd".into()),
        _ => Decision::Accept("key".into()),
    });
    let mut pair = Pair::new(config, ClientConfig::new(), backend).with_key(user_key(1));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.failures_sent()[1], ("password,keyboard-interactive".into(), true));
    assert_eq!(pair.attempt_methods(), ["query", "publickey", "kbdint"]);
}

/// An application's own partial success asks for more, whatever the lists say.
#[test]
fn partial_success_decided_by_the_application() {
    let backend: Backend = Box::new(|_, attempt| match attempt {
        Attempt::Password { .. } => Decision::PartialSuccess("first".into()),
        Attempt::KeyboardInteractive { .. } => Decision::Accept("second".into()),
        _ => Decision::Reject,
    });
    let mut config = ClientConfig::new();
    config.preferred_methods = vec![Method::Password, Method::KeyboardInteractive];
    let mut pair = Pair::new(server_config(), config, backend).with_passwords(&["x"]);
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.failures_sent()[1], (ALL_METHODS.into(), true));
    let (methods, restrictions, _) = pair.authenticated.as_ref().unwrap();
    assert_eq!(methods, &[Method::Password, Method::KeyboardInteractive]);
    assert_eq!(restrictions, &["first".to_owned(), "second".to_owned()]);
}

/// `AuthenticationMethods publickey,publickey` needs two different keys: the first key again
/// fails without asking the application (OpenSSH's `auth2_key_already_used`).
#[test]
fn the_same_key_cannot_count_twice() {
    let mut config = server_config();
    config.authentication_methods = vec![vec![Method::PublicKey, Method::PublicKey]];
    let mut pair = Pair::new(config, ClientConfig::new(), standard_backend())
        .with_key(user_key(1))
        .with_key(user_key(2));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["query", "publickey", "query", "publickey"]);
    let queried: Vec<Vec<u8>> = pair
        .sent_by_client()
        .iter()
        .filter_map(|w| match UserauthRequest::decode(&w.payload).unwrap().method {
            MethodData::PublicKey(pk) if pk.signature.is_none() => Some(pk.key_blob.to_vec()),
            _ => None,
        })
        .collect();
    // After partial success the client offers key 1 again (OpenSSH's `pubkey_reset`); the
    // server refuses it itself.
    let one = user_key(1).public_key().to_blob();
    let two = user_key(2).public_key().to_blob();
    assert_eq!(queried, [one.clone(), one, two]);
}

/// The sixth failure ends the connection with OpenSSH's reason and text instead of a FAILURE;
/// the initial `none` does not count.
#[test]
fn max_auth_tries_disconnects_like_openssh() {
    let mut client_config = ClientConfig::new();
    client_config.number_of_password_prompts = 10;
    let mut pair = Pair::new(server_config(), client_config, standard_backend())
        .with_passwords(&["1", "2", "3", "4", "5", "6", "7"]);
    let End::ServerError(error) = pair.drive() else { panic!("{:?}", pair.end) };
    assert_eq!(error, &Error::PeerMisbehaved(PeerMisbehaved::TooManyAuthFailures));
    assert_eq!(error.disconnect_reason(), Some(DisconnectReason::PROTOCOL_ERROR));
    assert!(error.to_string().contains("Too many authentication failures"));
    assert_eq!(pair.failures_sent().len(), 1 + 5);
    assert_eq!(pair.attempt_methods().len(), 6);
}

/// `MaxAuthTries` is configurable, and a second `none` counts where the first did not.
#[test]
fn max_auth_tries_counts_a_repeated_none() {
    let mut config = server_config();
    config.max_auth_tries = 2;
    let mut server = new_server(config);
    let t0 = Instant::now();
    take(&mut server, t0, &none_request("alice"));
    assert_eq!(server.failures(), 0);
    take(&mut server, t0, &none_request("alice"));
    assert_eq!(server.failures(), 1);
    assert_eq!(
        server.handle_payload(t0, &none_request("alice")),
        Err(Error::PeerMisbehaved(PeerMisbehaved::TooManyAuthFailures))
    );
    assert_eq!(numbers(&drain_payloads(&mut server)), [51, 51]);
}

/// Accepted public key queries do not count against `MaxAuthTries`; rejected ones do.
#[test]
fn accepted_queries_do_not_count_but_rejected_ones_do() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    for _ in 0..20 {
        answer(
            &mut server,
            t0,
            &query_request("alice", user_key(1).public_key()),
            Decision::Accept(String::new()),
        );
        assert_eq!(numbers(&drain_payloads(&mut server)), [60]);
    }
    assert_eq!(server.failures(), 0);
    answer(&mut server, t0, &query_request("alice", user_key(1).public_key()), Decision::Reject);
    assert_eq!(server.failures(), 1);
}

/// More than 1024 requests end the connection even if none of them failed.
#[test]
fn more_than_a_thousand_requests_disconnect() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    for _ in 0..MAX_ATTEMPTS {
        answer(
            &mut server,
            t0,
            &query_request("alice", user_key(1).public_key()),
            Decision::Accept(String::new()),
        );
    }
    assert_eq!(
        server.handle_payload(t0, &query_request("alice", user_key(1).public_key())),
        Err(Error::PeerMisbehaved(PeerMisbehaved::TooManyAuthFailures))
    );
}

// ---------------------------------------------------------------------------------------------
// The failure delay, in virtual time.

/// A rejected password's FAILURE is held until the user's delay has passed, not a nanosecond
/// earlier, and `poll_timeout` says when.
#[test]
fn failure_is_not_sent_before_the_delay() {
    let (mut server, delay, t0) = alice_server();
    answer(&mut server, t0, &password_request("alice", "wrong"), Decision::Reject);
    assert!(drain_payloads(&mut server).is_empty());
    assert_eq!(server.poll_timeout(), Some(t0 + delay));
    server.handle_timeout(t0 + delay - Duration::from_nanos(1)).unwrap();
    assert!(drain_payloads(&mut server).is_empty());
    server.handle_timeout(t0 + delay).unwrap();
    assert_eq!(numbers(&drain_payloads(&mut server)), [51]);
    assert_eq!(server.poll_timeout(), None);
}

/// The failure goes out at the same instant whether the application answered at once (no such
/// user) or took its time (a real check), as long as it answered within the delay.
#[test]
fn failure_time_does_not_depend_on_how_long_the_decision_took() {
    let config = server_config();
    let delay = delay_for(&config, "alice");
    let mut sent_at = Vec::new();
    for took in [Duration::ZERO, delay / 3, delay - Duration::from_nanos(1), delay] {
        let mut server = new_server(config.clone());
        let t0 = Instant::now();
        take(&mut server, t0, &password_request("alice", "wrong"));
        let (id, _) = asked(&mut server);
        server.auth_decided(t0 + took, id, Decision::Reject).unwrap();
        let at = server.poll_timeout().unwrap_or(t0 + took);
        server.handle_timeout(at).unwrap();
        assert_eq!(numbers(&drain_payloads(&mut server)), [51]);
        sent_at.push(at - t0);
    }
    assert_eq!(sent_at, [delay; 4]);
}

/// A decision slower than the delay is rounded up to the next doubling; one slower than five
/// seconds is sent at once.
#[test]
fn slow_decisions_double_the_delay_until_it_covers_them() {
    let config = server_config();
    let delay = delay_for(&config, "alice");
    for (took, expect) in [
        (delay + delay / 2, delay * 2),
        (delay * 3, delay * 4),
        (Duration::from_secs(6), Duration::from_secs(6)),
    ] {
        let mut server = new_server(config.clone());
        let t0 = Instant::now();
        take(&mut server, t0, &password_request("alice", "wrong"));
        let (id, _) = asked(&mut server);
        server.auth_decided(t0 + took, id, Decision::Reject).unwrap();
        let at = server.poll_timeout().unwrap_or(t0 + took);
        assert_eq!(at - t0, expect, "took {took:?}");
    }
}

/// The delay is OpenSSH's: 5 ms plus up to about 4.3 ms, the same for the same user and
/// secret, and different secrets give different users different delays.
#[test]
fn per_user_delay_is_deterministic_and_bounded() {
    let a = FailureDelay::new([1; 32]);
    let b = FailureDelay::new([2; 32]);
    let users = ["alice", "bob", "root", "nobody", "x"];
    for user in users {
        let d = a.for_user(user);
        assert!(d >= Duration::from_millis(5) && d <= Duration::from_nanos(9_294_967), "{d:?}");
        assert_eq!(d, FailureDelay::new([1; 32]).for_user(user));
    }
    assert!(users.iter().any(|u| a.for_user(u) != b.for_user(u)));
    assert!(users.iter().any(|u| a.for_user(u) != a.for_user("alice")));
    assert_eq!(FailureDelay::dangerous_none().for_user("alice"), Duration::ZERO);
}

/// Success and answers to `none` are never delayed; PK_OK goes out at once too.
#[test]
fn success_none_and_pk_ok_are_not_delayed() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    take(&mut server, t0, &none_request("alice"));
    answer(
        &mut server,
        t0,
        &query_request("alice", user_key(1).public_key()),
        Decision::Accept(String::new()),
    );
    answer(&mut server, t0, &password_request("alice", "hunter2"), Decision::Accept(String::new()));
    assert_eq!(numbers(&drain_payloads(&mut server)), [51, 60, 52]);
    assert_eq!(server.poll_timeout(), None);
}

/// A partial-success failure and a password change request wait out the delay like failures.
#[test]
fn partial_success_and_change_requests_are_delayed() {
    let (mut server, delay, t0) = alice_server();
    answer(
        &mut server,
        t0,
        &password_request("alice", "old"),
        Decision::ChangePassword { prompt: "expired".into() },
    );
    assert_eq!(server.poll_timeout(), Some(t0 + delay));
    server.handle_timeout(t0 + delay).unwrap();
    assert_eq!(numbers(&drain_payloads(&mut server)), [60]);
    let t1 = t0 + delay;
    answer(
        &mut server,
        t1,
        &password_request("alice", "pw"),
        Decision::PartialSuccess(String::new()),
    );
    assert_eq!(server.poll_timeout(), Some(t1 + delay));
}

// ---------------------------------------------------------------------------------------------
// Server rules, with hand-fed payloads.

/// The banner is sent once, before the answer to the first request, and the client shows it
/// without control characters.
#[test]
fn banner_is_sent_once_before_the_first_answer() {
    let mut config = server_config();
    config.methods = vec![Method::Password];
    config.banner = Some("Welcome\r\n\x1b[31mto the machine\n".into());
    let mut pair = Pair::new(config, ClientConfig::new(), standard_backend())
        .with_passwords(&["x", "hunter2"]);
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.server_numbers(), [53, 51, 51, 52]);
    let banners: Vec<&String> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Banner { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(banners, ["Welcome\n[31mto the machine\n"]);
    let wire = UserauthBanner::decode(&pair.sent_by_server()[0].payload).unwrap();
    assert_eq!(wire.message, b"Welcome\r\n\x1b[31mto the machine\n");
}

/// With settings per user, the first request waits for the user's settings, and their banner,
/// methods and `MaxAuthTries` are the ones that apply: here one failure ends it, where the
/// server-wide six would have let the right password in.
#[test]
fn the_settings_given_for_the_user_replace_the_servers() {
    let mut config = server_config();
    config.methods = vec![Method::Password];
    config.settings_per_user = true;
    config.banner = Some("server-wide\n".into());
    let mut mine = config.clone();
    mine.banner = Some("for alice\n".into());
    mine.max_auth_tries = 1;
    let mut pair = Pair::new(config, ClientConfig::new(), standard_backend())
        .with_passwords(&["x", "hunter2"]);
    pair.user_config = Some(Arc::new(mine));
    assert!(matches!(pair.drive(), End::ServerError(_)));
    assert_eq!(pair.identified, ["alice"]);
    let banners: Vec<&String> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Banner { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(banners, ["for alice\n"]);
    assert_eq!(pair.server.failures(), 1);
}

/// Without new settings the server's apply, and the request that waited is taken up.
#[test]
fn answering_the_user_without_settings_keeps_the_servers() {
    let mut config = server_config();
    config.methods = vec![Method::Password];
    config.settings_per_user = true;
    let mut pair = Pair::new(config, ClientConfig::new(), standard_backend())
        .with_passwords(&["x", "hunter2"]);
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.identified, ["alice"]);
    assert_eq!(pair.attempts.len(), 2);
}

/// A second request for another user, or another service, ends the connection with a
/// protocol error, as OpenSSH's "Change of username or service not allowed".
#[test]
fn changing_user_or_service_disconnects() {
    let t0 = Instant::now();
    let other_service = encode(|w| {
        UserauthRequest { user: "alice", service: "ssh-userauth", method: MethodData::None }
            .encode(w)
    });
    for second in [none_request("bob"), other_service] {
        let mut server = new_server(server_config());
        take(&mut server, t0, &none_request("alice"));
        let error = server.handle_payload(t0, &second).unwrap_err();
        assert_eq!(error, Error::PeerMisbehaved(PeerMisbehaved::AuthUserOrServiceChanged));
        assert_eq!(error.disconnect_reason(), Some(DisconnectReason::PROTOCOL_ERROR));
        assert_eq!(server.handle_payload(t0, &none_request("alice")), Err(Error::ConnectionClosed));
    }
}

/// Only `ssh-connection` may follow authentication; anything else is "service not available".
#[test]
fn services_other_than_ssh_connection_are_refused() {
    let mut server = new_server(server_config());
    let request = encode(|w| {
        UserauthRequest { user: "alice", service: "ssh-sftp", method: MethodData::None }.encode(w)
    });
    let error = server.handle_payload(Instant::now(), &request).unwrap_err();
    assert_eq!(error, Error::PeerIncompatible(PeerIncompatible::ServiceNotAvailable));
    assert_eq!(error.disconnect_reason(), Some(DisconnectReason::SERVICE_NOT_AVAILABLE));
}

/// An unknown method gets a (delayed, counted) failure listing what can continue, without the
/// application being asked.
#[test]
fn unknown_methods_fail_with_the_remaining_list() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    let mut request = encode(|w| {
        w.write_u8(50)
            .write_string(b"alice")
            .write_string(b"ssh-connection")
            .write_string(b"hostbased");
    });
    request.extend_from_slice(b"whatever follows");
    take(&mut server, t0, &request);
    assert!(server.poll_event().is_none());
    assert!(drain_payloads(&mut server).is_empty());
    server.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(failure_of(&drain_payloads(&mut server)[0]), (ALL_METHODS.into(), false));
    assert_eq!(server.failures(), 1);
}

/// A disabled method fails without the application being asked, and drops out of the list.
#[test]
fn disabled_methods_fail_and_are_not_listed() {
    let mut config = server_config();
    config.methods = vec![Method::PublicKey];
    let mut server = new_server(config);
    let t0 = Instant::now();
    take(&mut server, t0, &password_request("alice", "hunter2"));
    assert!(server.poll_event().is_none());
    server.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(failure_of(&drain_payloads(&mut server)[0]), ("publickey".into(), false));
}

/// A password longer than OpenSSH's limit fails without being passed on.
#[test]
fn overlong_passwords_fail_without_being_checked() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    let long = "p".repeat(MAX_PASSWORD_LEN + 1);
    take(&mut server, t0, &password_request("alice", &long));
    assert!(server.poll_event().is_none());
    assert_eq!(server.failures(), 1);
}

/// Keys and algorithms the server does not accept fail without asking: an algorithm not in the
/// list, an unparsable key, an algorithm that does not fit the key.
#[test]
fn unacceptable_keys_fail_without_asking() {
    let key_blob = user_key(1).public_key().to_blob();
    let cases: [(&str, &[u8]); 3] =
        [("ssh-rsa", &key_blob), ("ssh-ed25519", b"not a key"), ("ecdsa-sha2-nistp256", &key_blob)];
    for (algorithm, blob) in cases {
        let mut server = new_server(server_config());
        let request = encode_request(
            "alice",
            MethodData::PublicKey(PublicKeyData {
                algorithm,
                key_blob: blob,
                host_key_blob: None,
                signature: None,
            }),
        );
        take(&mut server, Instant::now(), &request);
        assert!(server.poll_event().is_none(), "{algorithm}");
        assert_eq!(server.failures(), 1);
    }
}

/// After success, further requests are ignored (RFC 4252 §5.1) and connection messages belong
/// to the next layer.
#[test]
fn requests_after_success_are_ignored() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    answer(&mut server, t0, &password_request("alice", "pw"), Decision::Accept(String::new()));
    assert!(server.is_authenticated());
    drain_payloads(&mut server);
    assert!(matches!(server.poll_event(), Some(ServerEvent::Authenticated { .. })));
    assert_eq!(
        server.handle_payload(t0, &password_request("alice", "pw")),
        Ok(Disposition::Handled)
    );
    assert!(drain_payloads(&mut server).is_empty());
    assert!(server.poll_event().is_none());
    assert_eq!(
        server.handle_payload(t0, &[90, 0]),
        Err(Error::LocalMisuse(LocalMisuse::WrongLayer))
    );
}

/// Requests sent without waiting are taken up one at a time: one question is outstanding, and
/// the answers go out in order.
#[test]
fn pipelined_requests_are_taken_one_at_a_time() {
    let (mut server, delay, t0) = alice_server();
    for password in ["a", "b", "hunter2"] {
        take(&mut server, t0, &password_request("alice", password));
    }
    let (first, _) = asked(&mut server);
    server.auth_decided(t0, first, Decision::Reject).unwrap();
    assert!(server.poll_event().is_none(), "the next request waits for the delay");
    server.handle_timeout(t0 + delay).unwrap();
    let (second, _) = asked(&mut server);
    server.auth_decided(t0 + delay, second, Decision::Reject).unwrap();
    server.handle_timeout(t0 + delay * 2).unwrap();
    let (third, attempt) = asked(&mut server);
    assert!(matches!(attempt, Attempt::Password { password, .. } if password.matches(b"hunter2")));
    server.auth_decided(t0 + delay * 2, third, Decision::Accept(String::new())).unwrap();
    assert_eq!(numbers(&drain_payloads(&mut server)), [51, 51, 52]);
}

/// Connection messages sent right after a request that then succeeds are handed on with the
/// success; after one that fails they are a protocol error.
#[test]
fn connection_messages_after_a_pending_request_wait_for_its_outcome() {
    let t0 = Instant::now();
    let channel_open = vec![90, 1, 2, 3];

    let mut server = new_server(server_config());
    take(&mut server, t0, &password_request("alice", "pw"));
    take(&mut server, t0, &password_request("alice", "pw"));
    take(&mut server, t0, &channel_open);
    let (id, _) = asked(&mut server);
    server.auth_decided(t0, id, Decision::Accept("r".into())).unwrap();
    match server.poll_event() {
        Some(ServerEvent::Authenticated { pipelined, .. }) => {
            assert_eq!(pipelined, std::slice::from_ref(&channel_open))
        }
        other => panic!("{other:?}"),
    }

    let mut server = new_server(server_config());
    take(&mut server, t0, &password_request("alice", "pw"));
    take(&mut server, t0, &channel_open);
    let (id, _) = asked(&mut server);
    server.auth_decided(t0, id, Decision::Reject).unwrap();
    assert_eq!(
        server.handle_timeout(t0 + Duration::from_secs(1)),
        Err(Error::PeerMisbehaved(PeerMisbehaved::MessageBeforeAuthentication(MessageType(90))))
    );
}

/// The queue of waiting payloads is bounded.
#[test]
fn the_wait_queue_is_bounded() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    take(&mut server, t0, &password_request("alice", "pw"));
    for _ in 0..MAX_QUEUED_PAYLOADS {
        take(&mut server, t0, &none_request("alice"));
    }
    assert_eq!(
        server.handle_payload(t0, &none_request("alice")),
        Err(Error::PeerMisbehaved(PeerMisbehaved::BufferLimitExceeded))
    );
    let mut server = new_server(server_config());
    take(&mut server, t0, &password_request("alice", "pw"));
    let big = vec![94; MAX_QUEUED_BYTES / 2 + 1];
    take(&mut server, t0, &big);
    assert_eq!(
        server.handle_payload(t0, &big),
        Err(Error::PeerMisbehaved(PeerMisbehaved::BufferLimitExceeded))
    );
}

/// Responses that do not answer exactly the prompts asked end the connection.
#[test]
fn wrong_number_of_info_responses_disconnects() {
    let t0 = Instant::now();
    for responses in [&[][..], &[&b"a"[..], b"b"][..]] {
        let mut server = new_server(server_config());
        take(&mut server, t0, &kbdint_request("alice"));
        let (id, _) = asked(&mut server);
        let info = InfoRequest {
            prompts: vec![Prompt { text: "Password: ".into(), echo: false }],
            ..InfoRequest::default()
        };
        server.auth_decided(t0, id, Decision::InfoRequest(info)).unwrap();
        assert_eq!(
            server.handle_payload(t0, &info_response(responses)),
            Err(Error::PeerMisbehaved(PeerMisbehaved::WrongNumberOfInfoResponses))
        );
    }
}

/// A new request abandons a keyboard-interactive conversation; late responses are then a
/// protocol error.
#[test]
fn a_new_request_abandons_keyboard_interactive() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    take(&mut server, t0, &kbdint_request("alice"));
    let (id, _) = asked(&mut server);
    let info = InfoRequest { prompts: vec![], ..InfoRequest::default() };
    server.auth_decided(t0, id, Decision::InfoRequest(info)).unwrap();
    take(&mut server, t0, &password_request("alice", "pw"));
    let (_, attempt) = asked(&mut server);
    assert_eq!(attempt.method(), Method::Password);
    assert_eq!(
        server.handle_payload(t0, &info_response(&[])),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage(MessageType(61))))
    );
}

/// Answers the server cannot use are refused without closing anything: a stale id, a decision
/// that does not fit the attempt, too many prompts.
#[test]
fn misfit_decisions_are_local_misuse() {
    let mut server = new_server(server_config());
    let t0 = Instant::now();
    take(&mut server, t0, &query_request("alice", user_key(1).public_key()));
    let (id, _) = asked(&mut server);
    let misuse = |e| Err(Error::LocalMisuse(e));
    assert_eq!(
        server.auth_decided(t0, RequestId(999), Decision::Reject),
        misuse(LocalMisuse::UnknownId)
    );
    for decision in [
        Decision::ChangePassword { prompt: String::new() },
        Decision::PartialSuccess(String::new()),
        Decision::InfoRequest(InfoRequest::default()),
    ] {
        assert_eq!(server.auth_decided(t0, id, decision), misuse(LocalMisuse::InvalidAnswer));
    }
    server.auth_decided(t0, id, Decision::Accept(String::new())).unwrap();
    assert_eq!(server.auth_decided(t0, id, Decision::Reject), misuse(LocalMisuse::UnknownId));

    take(&mut server, t0, &kbdint_request("alice"));
    let (id, _) = asked(&mut server);
    let prompts = vec![Prompt { text: "?".into(), echo: true }; MAX_PROMPTS + 1];
    let info = InfoRequest { prompts, ..InfoRequest::default() };
    assert_eq!(
        server.auth_decided(t0, id, Decision::InfoRequest(info)),
        misuse(LocalMisuse::InvalidAnswer)
    );
    server.auth_decided(t0, id, Decision::Reject).unwrap();
}

/// A configuration that cannot authenticate anyone is refused.
#[test]
fn invalid_configurations_are_refused() {
    let mut none_in_list = server_config();
    none_in_list.methods.push(Method::None);
    none_in_list.authentication_methods = vec![vec![Method::None]];
    let mut disabled_in_list = server_config();
    disabled_in_list.methods = vec![Method::Password];
    disabled_in_list.authentication_methods = vec![vec![Method::PublicKey]];
    let mut nothing = server_config();
    nothing.methods.clear();
    let mut empty_list = server_config();
    empty_list.authentication_methods = vec![vec![]];
    for config in [none_in_list, disabled_in_list, nothing, empty_list] {
        assert_eq!(
            Server::<()>::new(Arc::new(config), SESSION_ID, &host_key_blob()).unwrap_err(),
            Error::LocalMisuse(LocalMisuse::InvalidConfig)
        );
    }
}

/// The EXT_INFO the transport sends lists our public key algorithms and host-bound support.
#[test]
fn ext_info_extensions_announce_server_sig_algs_and_hostbound() {
    let extensions = server_config().ext_info_extensions();
    assert_eq!(extensions[0].0, "server-sig-algs");
    assert_eq!(
        String::from_utf8(extensions[0].1.clone()).unwrap(),
        "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256"
    );
    assert_eq!(extensions[1], ("publickey-hostbound@openssh.com", b"0".to_vec()));
}

// ---------------------------------------------------------------------------------------------
// Client rules.

/// An RSA public key blob (the modulus need not be a real one for the query step).
fn rsa_key() -> PublicKey {
    let mut blob = Vec::new();
    let mut n = vec![0xc5; 256];
    n[255] = 0x01;
    Writer::new(&mut blob)
        .write_string(b"ssh-rsa")
        .write_mpint_unsigned(&[1, 0, 1])
        .write_mpint_unsigned(&n);
    PublicKey::from_blob(&blob).unwrap()
}

/// The algorithms of the client's queries.
fn queried_algorithms(client: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while client.poll_payload(&mut buf) {
        if let Ok(request) = UserauthRequest::decode(&buf) {
            if let MethodData::PublicKey(pk) = request.method {
                out.push(pk.algorithm.to_owned());
            }
        }
        buf.clear();
    }
    out
}

fn failure(methods: &str, partial: bool) -> Vec<u8> {
    encode(|w| {
        UserauthFailure {
            methods: NameList::parse(methods.as_bytes()).unwrap(),
            partial_success: partial,
        }
        .encode(w)
    })
}

/// RSA keys sign with the server's preferred SHA-2 algorithm from `server-sig-algs`; without
/// that list they would need SHA-1 `ssh-rsa`, which is off, so they are skipped.
#[test]
fn rsa_keys_use_server_sig_algs() {
    for (server_sig_algs, expect) in [
        (Some(&b"ssh-ed25519,rsa-sha2-256,rsa-sha2-512"[..]), vec!["rsa-sha2-512"]),
        (Some(b"rsa-sha2-256"), vec!["rsa-sha2-256"]),
        (Some(b"ssh-rsa"), vec![]),
        (None, vec![]),
    ] {
        let mut client =
            Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
        client.add_identity(rsa_key());
        if let Some(list) = server_sig_algs {
            client.handle_ext_info(EXTENSION_SERVER_SIG_ALGS, list).unwrap();
        }
        take_client(&mut client, &failure("publickey", false));
        assert_eq!(queried_algorithms(&mut client), expect, "{server_sig_algs:?}");
    }
}

/// With SHA-1 allowed and no `server-sig-algs`, RSA keys fall back to `ssh-rsa`, as OpenSSH.
#[test]
fn rsa_keys_fall_back_to_ssh_rsa_only_when_allowed() {
    let mut config = ClientConfig::new();
    config.publickey_algorithms.push(SignatureAlgorithm::RsaSha1);
    let mut client = Client::new(Arc::new(config), "alice", SESSION_ID, &host_key_blob());
    client.add_identity(rsa_key());
    take_client(&mut client, &failure("publickey", false));
    assert_eq!(queried_algorithms(&mut client), ["ssh-rsa"]);
}

/// An invalid `server-sig-algs` ends the connection.
#[test]
fn invalid_server_sig_algs_is_an_error() {
    let mut client =
        Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
    assert_eq!(
        client.handle_ext_info(EXTENSION_SERVER_SIG_ALGS, b"a,,b"),
        Err(Error::InvalidMessage(InvalidMessage::InvalidNameList))
    );
    assert_eq!(client.handle_payload(&failure("password", false)), Err(Error::ConnectionClosed));
}

/// A PK_OK for a key or algorithm other than the one queried ends the connection.
#[test]
fn pk_ok_for_another_key_disconnects() {
    let other = user_key(2).public_key().to_blob();
    let mine = user_key(1).public_key().to_blob();
    for (algorithm, blob) in [("ssh-ed25519", &other), ("ecdsa-sha2-nistp256", &mine)] {
        let mut client =
            Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
        client.add_identity(user_key(1).public_key().clone());
        take_client(&mut client, &failure("publickey", false));
        let ok = encode(|w| UserauthPkOk { algorithm, key_blob: blob }.encode(w));
        let error = client.handle_payload(&ok).unwrap_err();
        assert_eq!(error, Error::PeerMisbehaved(PeerMisbehaved::PkOkForUnrequestedKey));
        assert_eq!(error.disconnect_reason(), Some(DisconnectReason::PROTOCOL_ERROR));
    }
}

/// Answers the client did not ask for, or that do not fit, are refused without closing.
#[test]
fn client_refuses_answers_it_did_not_ask_for() {
    let mut client =
        Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
    let misuse = |e| Err(Error::LocalMisuse(e));
    assert_eq!(client.signature_ready(None), misuse(LocalMisuse::NotExpected));
    assert_eq!(client.password_ready(None), misuse(LocalMisuse::NotExpected));
    assert_eq!(client.info_responses_ready(None), misuse(LocalMisuse::NotExpected));

    client.add_identity(user_key(1).public_key().clone());
    take_client(&mut client, &failure("publickey", false));
    let blob = user_key(1).public_key().to_blob();
    let ok = encode(|w| UserauthPkOk { algorithm: "ssh-ed25519", key_blob: &blob }.encode(w));
    take_client(&mut client, &ok);
    let Some(ClientEvent::SignatureRequested { data, .. }) = client.poll_event() else { panic!() };
    let wrong = user_key(1).sign(SignatureAlgorithm::Ed25519, &data).map(|mut s| {
        s[7] = b'X';
        s
    });
    assert_eq!(client.signature_ready(wrong.ok()), misuse(LocalMisuse::InvalidAnswer));
    client
        .signature_ready(Some(user_key(1).sign(SignatureAlgorithm::Ed25519, &data).unwrap()))
        .unwrap();

    let mut client =
        Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
    take_client(&mut client, &failure("keyboard-interactive", false));
    let info = encode(|w| {
        UserauthInfoRequest {
            name: b"",
            instruction: b"",
            language: b"",
            prompts: vec![(b"?", false)],
        }
        .encode(w)
    });
    take_client(&mut client, &info);
    assert_eq!(client.info_responses_ready(Some(vec![])), misuse(LocalMisuse::InvalidAnswer));
    client.info_responses_ready(Some(vec!["x".into()])).unwrap();
}

/// When the server's list has nothing the client can try, it fails with that list at once.
#[test]
fn client_fails_with_the_servers_list_when_nothing_fits() {
    let mut client =
        Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
    take_client(&mut client, &failure("hostbased,gssapi-with-mic", false));
    assert!(
        matches!(client.poll_event(), Some(ClientEvent::Failed { methods_left }) if methods_left == ["hostbased", "gssapi-with-mic"])
    );
    assert_eq!(
        client.methods_left(),
        Some(&["hostbased".to_owned(), "gssapi-with-mic".to_owned()][..])
    );
}

// ---------------------------------------------------------------------------------------------
// Message × state tables: every message number in every state.

/// Server states, each reached by legitimate transitions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ServerState {
    Fresh,
    AfterFailure,
    AwaitDecision,
    DelayReply,
    ExpectInfoResponse,
    Authenticated,
}

fn server_in(state: ServerState, t0: Instant) -> Server<String> {
    let mut server = new_server(server_config());
    let decide = |server: &mut Server<String>, decision| {
        let (id, _) = asked(server);
        server.auth_decided(t0, id, decision).unwrap();
    };
    match state {
        ServerState::Fresh => {}
        ServerState::AfterFailure => take(&mut server, t0, &none_request("alice")),
        ServerState::AwaitDecision => take(&mut server, t0, &password_request("alice", "pw")),
        ServerState::DelayReply => {
            take(&mut server, t0, &password_request("alice", "pw"));
            decide(&mut server, Decision::Reject);
        }
        ServerState::ExpectInfoResponse => {
            take(&mut server, t0, &kbdint_request("alice"));
            let info = InfoRequest {
                prompts: vec![Prompt { text: "?".into(), echo: false }],
                ..InfoRequest::default()
            };
            decide(&mut server, Decision::InfoRequest(info));
        }
        ServerState::Authenticated => {
            take(&mut server, t0, &password_request("alice", "pw"));
            decide(&mut server, Decision::Accept(String::new()));
        }
    }
    drain_payloads(&mut server);
    while server.poll_event().is_some() {}
    server
}

/// A well-formed client payload with message number `n` (the body matters only for 50 and 61).
fn client_payload(n: u8) -> Vec<u8> {
    match n {
        50 => none_request("alice"),
        61 => info_response(&[b"answer"]),
        _ => vec![n, 0, 0, 0, 0],
    }
}

/// What the server must do with message `n` in `state`, from RFC 4252/4256 and the rules above.
fn server_expects(state: ServerState, n: u8) -> Result<Disposition, Error> {
    use ServerState::*;
    let t = MessageType(n);
    let busy = matches!(state, AwaitDecision | DelayReply);
    match n {
        0..=49 => Err(LocalMisuse::WrongLayer.into()),
        51..=53 | 60 => Err(PeerMisbehaved::UnexpectedMessage(t).into()),
        54..=59 | 62..=79 => Ok(Disposition::Unrecognized),
        50 => Ok(Disposition::Handled),
        61 if state == ExpectInfoResponse => Ok(Disposition::Handled),
        61 => Err(PeerMisbehaved::UnexpectedMessage(t).into()),
        _ if state == Authenticated => Err(LocalMisuse::WrongLayer.into()),
        _ if busy => Ok(Disposition::Handled),
        _ => Err(PeerMisbehaved::MessageBeforeAuthentication(t).into()),
    }
}

/// Every message number 1–255 in every server state is accepted or refused with the right
/// error; a peer error closes the server, local misuse does not.
#[test]
fn server_message_state_table() {
    use ServerState::*;
    let t0 = Instant::now();
    for state in [Fresh, AfterFailure, AwaitDecision, DelayReply, ExpectInfoResponse, Authenticated]
    {
        for n in 1..=255u8 {
            let mut server = server_in(state, t0);
            let got = server.handle_payload(t0, &client_payload(n));
            assert_eq!(got, server_expects(state, n), "{state:?} message {n}");
            let closed =
                server.handle_payload(t0, &client_payload(50)) == Err(Error::ConnectionClosed);
            assert_eq!(
                closed,
                matches!(got, Err(ref e) if !matches!(e, Error::LocalMisuse(_))),
                "{state:?} {n}"
            );
        }
    }
}

/// Client states, each reached by legitimate transitions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ClientState {
    AwaitNoneReply,
    AwaitPkOk,
    AwaitSignature,
    AwaitSignedReply,
    AwaitPassword,
    AwaitPasswordReply,
    AwaitInfoRequest,
    AwaitInfoResponses,
    Succeeded,
    Failed,
}

impl ClientState {
    const ALL: [Self; 10] = [
        Self::AwaitNoneReply,
        Self::AwaitPkOk,
        Self::AwaitSignature,
        Self::AwaitSignedReply,
        Self::AwaitPassword,
        Self::AwaitPasswordReply,
        Self::AwaitInfoRequest,
        Self::AwaitInfoResponses,
        Self::Succeeded,
        Self::Failed,
    ];
}

fn client_in(state: ClientState) -> Client {
    use ClientState::*;
    let mut client =
        Client::new(Arc::new(ClientConfig::new()), "alice", SESSION_ID, &host_key_blob());
    client.add_identity(user_key(1).public_key().clone());
    let feed = |client: &mut Client, payload: Vec<u8>| take_client(client, &payload);
    let blob = user_key(1).public_key().to_blob();
    let pk_ok = encode(|w| UserauthPkOk { algorithm: "ssh-ed25519", key_blob: &blob }.encode(w));
    match state {
        AwaitNoneReply => {}
        AwaitPkOk => feed(&mut client, failure("publickey", false)),
        AwaitSignature | AwaitSignedReply => {
            feed(&mut client, failure("publickey", false));
            feed(&mut client, pk_ok);
            if state == AwaitSignedReply {
                let data = match client.poll_event() {
                    Some(ClientEvent::SignatureRequested { data, .. }) => data,
                    other => panic!("{other:?}"),
                };
                let signature = user_key(1).sign(SignatureAlgorithm::Ed25519, &data).unwrap();
                client.signature_ready(Some(signature)).unwrap();
            }
        }
        AwaitPassword | AwaitPasswordReply => {
            feed(&mut client, failure("password", false));
            if state == AwaitPasswordReply {
                client.password_ready(Some(PasswordAnswer::Password("pw".into()))).unwrap();
            }
        }
        AwaitInfoRequest | AwaitInfoResponses => {
            feed(&mut client, failure("keyboard-interactive", false));
            if state == AwaitInfoResponses {
                feed(&mut client, server_payload(AwaitInfoRequest, 60));
            }
        }
        Succeeded => feed(&mut client, vec![52]),
        Failed => feed(&mut client, failure("hostbased", false)),
    }
    let mut buf = Vec::new();
    while client.poll_payload(&mut buf) {}
    while client.poll_event().is_some() {}
    client
}

/// A well-formed server payload with message number `n`; 60 takes the form `state` expects.
fn server_payload(state: ClientState, n: u8) -> Vec<u8> {
    match (n, state) {
        (51, _) => failure(ALL_METHODS, false),
        (52, _) => vec![52],
        (53, _) => encode(|w| UserauthBanner { message: b"hi", language: b"" }.encode(w)),
        (60, ClientState::AwaitPasswordReply) => {
            encode(|w| UserauthPasswdChangereq { prompt: b"expired", language: b"" }.encode(w))
        }
        (60, ClientState::AwaitInfoRequest) => encode(|w| {
            UserauthInfoRequest {
                name: b"",
                instruction: b"",
                language: b"",
                prompts: vec![(b"?", false)],
            }
            .encode(w)
        }),
        (60, _) => {
            let blob = user_key(1).public_key().to_blob();
            encode(|w| UserauthPkOk { algorithm: "ssh-ed25519", key_blob: &blob }.encode(w))
        }
        _ => vec![n, 0, 0, 0, 0],
    }
}

/// What the client must do with message `n` in `state`.
fn client_expects(state: ClientState, n: u8) -> Result<Disposition, Error> {
    use ClientState::*;
    let t = MessageType(n);
    let awaiting_reply = matches!(
        state,
        AwaitNoneReply | AwaitPkOk | AwaitSignedReply | AwaitPasswordReply | AwaitInfoRequest
    );
    let unexpected = Err(PeerMisbehaved::UnexpectedMessage(t).into());
    match n {
        0..=49 => Err(LocalMisuse::WrongLayer.into()),
        54..=59 | 62..=79 => Ok(Disposition::Unrecognized),
        80..=255 if state == Succeeded => Err(LocalMisuse::WrongLayer.into()),
        80..=255 => Err(PeerMisbehaved::MessageBeforeAuthentication(t).into()),
        50 | 61 => unexpected,
        _ if state == Succeeded => unexpected,
        53 => Ok(Disposition::Handled),
        51 | 52 if awaiting_reply => Ok(Disposition::Handled),
        60 if matches!(state, AwaitPkOk | AwaitPasswordReply | AwaitInfoRequest) => {
            Ok(Disposition::Handled)
        }
        _ => unexpected,
    }
}

/// Every message number 1–255 in every client state is accepted or refused with the right
/// error; a peer error closes the client, local misuse does not.
#[test]
fn client_message_state_table() {
    for state in ClientState::ALL {
        for n in 1..=255u8 {
            let mut client = client_in(state);
            let got = client.handle_payload(&server_payload(state, n));
            assert_eq!(got, client_expects(state, n), "{state:?} message {n}");
            let closed = client.handle_payload(&[53]) == Err(Error::ConnectionClosed);
            assert_eq!(
                closed,
                matches!(got, Err(ref e) if !matches!(e, Error::LocalMisuse(_))),
                "{state:?} {n}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Truncation: every prefix of every message the state machines parse fails cleanly.

/// Every truncation of every request form, and of an info response, is an invalid message
/// that closes the server.
#[test]
fn server_rejects_every_truncation() {
    let t0 = Instant::now();
    let requests = [
        none_request("alice"),
        password_request("alice", "hunter2"),
        encode_request(
            "alice",
            MethodData::Password { password: b"old", new_password: Some(b"new") },
        ),
        query_request("alice", user_key(1).public_key()),
        signed_request("alice", user_key(1), SESSION_ID, None),
        signed_request("alice", user_key(1), SESSION_ID, Some(&host_key_blob())),
        kbdint_request("alice"),
    ];
    for request in &requests {
        for cut in 0..request.len() {
            let mut server = server_in(ServerState::Fresh, t0);
            let got = server.handle_payload(t0, &request[..cut]);
            assert!(matches!(got, Err(Error::InvalidMessage(_))), "{request:?} at {cut}: {got:?}");
            assert_eq!(
                server.handle_payload(t0, &none_request("alice")),
                Err(Error::ConnectionClosed)
            );
        }
    }
    let response = info_response(&[b"answer"]);
    for cut in 1..response.len() {
        let mut server = server_in(ServerState::ExpectInfoResponse, t0);
        let got = server.handle_payload(t0, &response[..cut]);
        assert!(matches!(got, Err(Error::InvalidMessage(_))), "at {cut}: {got:?}");
    }
}

/// Every truncation of every server message, in the state that parses it, is an invalid
/// message.
#[test]
fn client_rejects_every_truncation() {
    use ClientState::*;
    for (state, n) in [
        (AwaitNoneReply, 51),
        (AwaitNoneReply, 53),
        (AwaitPkOk, 60),
        (AwaitPasswordReply, 60),
        (AwaitInfoRequest, 60),
    ] {
        let payload = server_payload(state, n);
        for cut in 1..payload.len() {
            let mut client = client_in(state);
            let got = client.handle_payload(&payload[..cut]);
            assert!(
                matches!(got, Err(Error::InvalidMessage(_))),
                "{state:?} {n} at {cut}: {got:?}"
            );
        }
    }
    let mut client = client_in(AwaitNoneReply);
    assert_eq!(
        client.handle_payload(&[]),
        Err(Error::InvalidMessage(InvalidMessage::EmptyMessage))
    );
    let mut client = client_in(AwaitNoneReply);
    assert_eq!(
        client.handle_payload(&[52, 0]),
        Err(Error::InvalidMessage(InvalidMessage::TrailingData))
    );
}

/// Secrets print only their length.
#[test]
fn passwords_print_only_their_length() {
    let password = Password::from("hunter2");
    assert_eq!(format!("{password:?}"), "Password(7 bytes)");
    let attempt = Attempt::Password { password, new_password: None };
    assert!(!format!("{attempt:?}").contains("hunter2"));
}

/// A request signed with the key of an OpenSSH certificate, as `*-cert-v01@openssh.com`.
fn cert_request(
    user: &str,
    algorithm: &str,
    cert: &crate::keys::Certificate,
    signer: &PrivateKey,
) -> Vec<u8> {
    let blob = cert.to_blob().to_vec();
    let data = signed_data(SESSION_ID, user, SERVICE_CONNECTION, algorithm, &blob, None);
    let signature = signer.sign(SignatureAlgorithm::Ed25519, &data).unwrap();
    encode_request(
        user,
        MethodData::PublicKey(PublicKeyData {
            algorithm,
            key_blob: &blob,
            host_key_blob: None,
            signature: Some(&signature),
        }),
    )
}

/// A certificate's signed request is verified with the certified key and asked about with
/// the certificate; a certificate algorithm not accepted, a signature by another key (also
/// when plain keys' signatures are left to the backend), and a plain algorithm name over a
/// certificate blob fail without asking.
#[test]
fn certificate_requests_are_verified_with_the_certified_key() {
    use crate::keys::cert::CertificateBuilder;
    let ca = user_key(3);
    let cert = CertificateBuilder::user(user_key(1).public_key().clone())
        .sign(ca.public_key(), |body| ca.sign(SignatureAlgorithm::Ed25519, body))
        .unwrap();
    let name = "ssh-ed25519-cert-v01@openssh.com";
    let mut server = new_server(server_config());
    take(&mut server, Instant::now(), &cert_request("alice", name, &cert, user_key(1)));
    match asked(&mut server).1 {
        Attempt::PublicKey { algorithm, key, certificate: Some(c), .. } => {
            assert_eq!(algorithm, SignatureAlgorithm::Ed25519);
            assert_eq!(&key, user_key(1).public_key());
            assert_eq!(*c, cert);
        }
        other => panic!("expected a certificate attempt, got {other:?}"),
    }

    let mut no_certs = server_config();
    no_certs.publickey_cert_algorithms = vec![SignatureAlgorithm::EcdsaP256];
    // A backend that verifies plain keys' signatures itself still gets no certificate signed
    // by another key: certificates are always verified here.
    let mut plain_keys_left = server_config();
    plain_keys_left.backend_verifies_plain_key_signatures = true;
    // (config, algorithm, signer, whether the failure is a refused signature)
    for (config, algorithm, signer, bad_signature) in [
        (no_certs, name, user_key(1), false),
        (server_config(), name, user_key(2), true),
        (plain_keys_left, name, user_key(2), true),
        (server_config(), "ssh-ed25519", user_key(1), false),
    ] {
        let mut server = new_server(config);
        take(&mut server, Instant::now(), &cert_request("alice", algorithm, &cert, signer));
        match server.poll_event() {
            None => assert!(!bad_signature, "{algorithm}: a refused signature not told"),
            Some(ServerEvent::SignatureRefused {
                attempt: Attempt::PublicKey { certificate: Some(c), .. },
                ..
            }) => {
                assert!(bad_signature, "{algorithm}: told as a refused signature");
                assert_eq!(*c, cert);
            }
            Some(other) => panic!("{algorithm}: {other:?}"),
        }
        assert!(server.poll_event().is_none(), "{algorithm} asked");
        assert_eq!(server.failures(), 1);
    }
}

/// A client with a certificate offers it first, as `ssh-ed25519-cert-v01@openssh.com`, signs
/// with the certified key, and a server that accepts only certificates lets it in.
#[test]
fn a_client_certificate_is_offered_and_accepted() {
    use crate::keys::cert::CertificateBuilder;
    let ca = user_key(3);
    let cert = CertificateBuilder::user(user_key(5).public_key().clone())
        .sign(ca.public_key(), |body| ca.sign(SignatureAlgorithm::Ed25519, body))
        .unwrap();
    let ca_key = ca.public_key().clone();
    let backend: Backend = Box::new(move |_, attempt| match attempt {
        Attempt::PublicKeyQuery { certificate: Some(c), .. }
        | Attempt::PublicKey { certificate: Some(c), .. }
            if c.signature_key == ca_key =>
        {
            Decision::Accept("cert".into())
        }
        _ => Decision::Reject,
    });
    let mut pair = Pair::new(server_config(), ClientConfig::new(), backend);
    pair.client.add_certificate(&cert);
    pair.client.add_identity(user_key(5).public_key().clone());
    pair.signers.push(user_key(5));
    assert!(matches!(pair.drive(), End::Succeeded));
    assert_eq!(pair.attempt_methods(), ["query", "publickey"]);
    let signed = pair.sent_by_client().last().unwrap().payload.clone();
    let request = UserauthRequest::decode(&signed).unwrap();
    match request.method {
        MethodData::PublicKey(pk) => {
            assert_eq!(pk.algorithm, "ssh-ed25519-cert-v01@openssh.com");
            assert_eq!(pk.key_blob, cert.to_blob());
        }
        other => panic!("expected publickey, got {other:?}"),
    }
}

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::crypto::CryptoError;
use crate::keys::authorized_keys::PermittedHostPort;
use crate::keys::{HostKeySigner, PrivateKey, PublicKey, SignatureAlgorithm};
use crate::server::{ConnectionId, Restrictions};
use crate::userauth::Method;

const C1: ConnectionId = ConnectionId(1);
const HASH: [u8; 32] = [7; 32];

fn host_key() -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[42; 32]).unwrap()
}

fn client_key() -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[1; 32]).unwrap()
}

/// A `publickey` proof by `key` for `user` over `session_id`, as a client would sign it.
fn proof(key: &PrivateKey, user: &str, session_id: &[u8], host_key: Option<&[u8]>) -> Request {
    let blob = key.public_key().to_blob();
    let data = crate::userauth::signed_data(
        session_id,
        user,
        "ssh-connection",
        "ssh-ed25519",
        &blob,
        host_key,
    );
    Request::AuthenticatePublicKey {
        connection: C1,
        user: user.into(),
        algorithm: "ssh-ed25519".into(),
        key_blob: blob,
        host_bound: host_key.is_some(),
        signature: HostKeySigner::sign(key, SignatureAlgorithm::Ed25519, &data).unwrap(),
    }
}

fn alice_proof() -> Request {
    proof(&client_key(), "alice", &HASH, None)
}

#[derive(Debug)]
struct Fake {
    key: PrivateKey,
    sessions_started: u32,
    /// Penalties recorded, and the address refused.
    penalised: Vec<(std::net::IpAddr, PenaltyKind)>,
    refuse: Option<std::net::IpAddr>,
    /// Handed to the worker with the next session started.
    session_output: Option<std::os::fd::OwnedFd>,
    /// The connection facts `authorized_keys_for` and `check_certificate` were given.
    facts_seen: Vec<crate::server::ConnectionFacts>,
    /// What the configuration asks of every login.
    rules: LoginRules,
    /// The `authorized_keys` lines before the one every user has: `(options, key)` pairs.
    extra_lines: Vec<(String, PublicKey)>,
    /// The options of every user's line for `client_key()`.
    key_options: String,
    /// The time the backend says it is (`None`: the system clock).
    clock: Option<std::time::SystemTime>,
    /// The users `RefuseConnection` applies to.
    refused_users: Vec<String>,
    /// The keys `authorized_keys_for` was asked about (for an `AuthorizedKeysCommand`).
    keys_asked: Vec<Option<PublicKey>>,
}

/// The CA the fake backend trusts for alice's certificates.
fn ca_key() -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[9; 32]).unwrap()
}

/// A user certificate of `client_key()` for `principal`, signed by `ca`.
fn certificate(ca: &PrivateKey, principal: &str) -> crate::keys::Certificate {
    let mut builder =
        crate::keys::cert::CertificateBuilder::user(client_key().public_key().clone());
    builder.principals = vec![principal.to_owned()];
    builder
        .sign(ca.public_key(), |body| HostKeySigner::sign(ca, SignatureAlgorithm::Ed25519, body))
        .unwrap()
}

const CERT_ALGORITHM: &str = "ssh-ed25519-cert-v01@openssh.com";

/// An `AuthenticateCertificate` for alice with `blob`, signed by the certified key over
/// `session_id` (no signature: a query).
fn cert_request(blob: &[u8], session_id: Option<&[u8]>) -> Request {
    let signature = session_id.map(|id| {
        let data =
            crate::userauth::signed_data(id, "alice", "ssh-connection", CERT_ALGORITHM, blob, None);
        HostKeySigner::sign(&client_key(), SignatureAlgorithm::Ed25519, &data).unwrap()
    });
    Request::AuthenticateCertificate {
        connection: C1,
        user: "alice".into(),
        algorithm: CERT_ALGORITHM.into(),
        certificate: blob.to_vec(),
        host_bound: false,
        signature,
    }
}

/// The restrictions the fake backend grants alice's certificates.
fn cert_restrictions() -> Restrictions {
    let mut r = Restrictions::none().with_forced_command("from the certificate");
    r.pty = false;
    r.permit_open =
        Some(vec![PermittedHostPort { host: Some("db.example".into()), port: Some(5432) }]);
    r.permit_listen = Some(vec![PermittedHostPort { host: None, port: None }]);
    r.environment = vec![("A".into(), "b".into())];
    r
}

impl MonitorBackend for Fake {
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !self.key.public_key().supports(algorithm) {
            return Err(CryptoError::UnsupportedAlgorithm);
        }
        HostKeySigner::sign(&self.key, algorithm, data)
    }
    fn host_public_key(&self, algorithm: SignatureAlgorithm) -> Option<PublicKey> {
        let key = self.key.public_key();
        key.supports(algorithm).then(|| key.clone())
    }
    fn lookup_user(&mut self, name: &str) -> Option<UserRecord> {
        match name {
            "alice" | "bob" => Some(user(name)),
            "root" => Some(UserRecord { uid: 0, gid: 0, home: "/root".into(), ..user(name) }),
            _ => None,
        }
    }
    fn read_authorized_keys(&mut self, user: &UserRecord) -> Option<Vec<u8>> {
        let mut text = format!("# keys of {}\n", user.name);
        for (options, key) in &self.extra_lines {
            text.push_str(&format!("{options} {}\n", key.to_openssh()));
        }
        let line = client_key().public_key().to_openssh();
        let options = if self.key_options.is_empty() {
            String::new()
        } else {
            format!("{} ", self.key_options)
        };
        text.push_str(&format!("{options}{line} {}@laptop\n", user.name));
        Some(text.into_bytes())
    }
    fn login_rules(
        &mut self,
        _: &UserRecord,
        _: &crate::server::ConnectionFacts,
    ) -> Result<LoginRules, String> {
        Ok(self.rules.clone())
    }
    fn refuses_connection(
        &mut self,
        user: &str,
        _: Option<&UserRecord>,
        _: &crate::server::ConnectionFacts,
    ) -> bool {
        self.refused_users.iter().any(|u| u == user)
    }
    fn now(&self) -> std::time::SystemTime {
        self.clock.unwrap_or_else(std::time::SystemTime::now)
    }
    /// The configuration lets bob in by password only.
    fn login_policy(
        &mut self,
        user: &UserRecord,
        method: &str,
        _: &crate::server::ConnectionFacts,
    ) -> Result<(), String> {
        if user.name == "bob" && method != "password" {
            return Err(format!("{method} is not enabled for bob"));
        }
        Ok(())
    }
    fn spawn_session(
        &mut self,
        _: ConnectionId,
        _: &UserRecord,
        _: &SessionPlan,
    ) -> Result<SpawnedSession, String> {
        self.sessions_started += 1;
        let fds = match self.session_output.take() {
            Some(fd) => vec![fd],
            None => Vec::new(),
        };
        Ok(SpawnedSession { pid: 100 + self.sessions_started, tty: None, fds })
    }
    fn check_password(&mut self, user: &UserRecord, password: &[u8]) -> bool {
        user.name == "alice" && password == b"right"
    }
    fn admit(&mut self, address: std::net::IpAddr) -> Result<(), String> {
        match self.refuse {
            Some(refused) if refused == address => Err("penalty: caused crash".into()),
            _ => Ok(()),
        }
    }
    fn authorized_keys_for(
        &mut self,
        user: &UserRecord,
        facts: &crate::server::ConnectionFacts,
        key: Option<&PublicKey>,
    ) -> Option<Vec<u8>> {
        self.facts_seen.push(facts.clone());
        self.keys_asked.push(key.cloned());
        self.read_authorized_keys(user)
    }
    fn check_certificate(
        &mut self,
        user: &UserRecord,
        certificate: &crate::keys::Certificate,
        facts: &crate::server::ConnectionFacts,
    ) -> Result<Restrictions, String> {
        self.facts_seen.push(facts.clone());
        if certificate.signature_key != *ca_key().public_key() {
            return Err("untrusted CA".into());
        }
        if !certificate.principals.contains(&user.name) {
            return Err("not a principal".into());
        }
        Ok(cert_restrictions())
    }
    fn sign_with_host_key(
        &mut self,
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if key != self.key.public_key() {
            return Err(CryptoError::UnsupportedAlgorithm);
        }
        HostKeySigner::sign(&self.key, algorithm, data)
    }
    fn penalise(&mut self, address: std::net::IpAddr, kind: PenaltyKind) {
        self.penalised.push((address, kind));
    }
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        name: name.to_owned(),
        uid: 1000,
        gid: 1000,
        home: format!("/home/{name}"),
        shell: "/bin/sh".to_owned(),
        refused: None,
    }
}

fn fake() -> Fake {
    Fake {
        key: host_key(),
        sessions_started: 0,
        penalised: Vec::new(),
        refuse: None,
        session_output: None,
        facts_seen: Vec::new(),
        rules: LoginRules::default(),
        extra_lines: Vec::new(),
        key_options: String::new(),
        clock: None,
        refused_users: Vec::new(),
        keys_asked: Vec::new(),
    }
}

fn monitor() -> Monitor<Fake> {
    Monitor::new(fake(), Limits::default())
}

fn sign(connection: ConnectionId) -> Request {
    Request::SignExchangeHash { connection, algorithm: "ssh-ed25519".into(), data: HASH.to_vec() }
}

fn lookup(name: &str) -> Request {
    Request::LookupUser { connection: C1, user: name.into() }
}

fn authenticated(name: &str) -> Request {
    Request::ConnectionAuthenticated {
        connection: C1,
        user: name.into(),
        method: "publickey".into(),
    }
}

fn shell() -> Request {
    Request::SpawnSession { connection: C1, plan: plan() }
}

fn every_request() -> Vec<Request> {
    vec![
        Request::ConnectionOpened { connection: C1 },
        sign(C1),
        lookup("alice"),
        Request::ReadAuthorizedKeys { connection: C1, user: "alice".into(), key: None },
        Request::PamStart { connection: C1, user: "alice".into() },
        Request::PamRespond { connection: C1, responses: vec!["secret".into(), String::new()] },
        alice_proof(),
        authenticated("alice"),
        shell(),
        Request::SpawnSession { connection: C1, plan: SessionPlan { pty: None, ..plan() } },
        Request::ConnectionClosed { connection: C1 },
        Request::ConnectionLocalAddress { connection: C1, address: "[::1]:2222".parse().unwrap() },
        cert_request(certificate(&ca_key(), "alice").to_blob(), None),
        cert_request(certificate(&ca_key(), "alice").to_blob(), Some(&HASH)),
        Request::ProveHostKey {
            connection: C1,
            algorithm: "ssh-ed25519".into(),
            key_blob: host_key().public_key().to_blob(),
        },
    ]
}

fn every_reply() -> Vec<Reply> {
    vec![
        Reply::Done,
        Reply::Signature(vec![1, 2, 3]),
        Reply::User(None),
        Reply::User(Some(user("alice"))),
        Reply::User(Some(UserRecord { refused: Some("account is locked".into()), ..user("bob") })),
        Reply::AuthorizedKeys(None),
        Reply::AuthorizedKeys(Some(b"ssh-ed25519 AAAA\n".to_vec())),
        Reply::SessionSpawned { pid: 9, tty: None, fds: 3 },
        Reply::Unsupported("pam".into()),
        Reply::Failed("no".into()),
        Reply::Authorized(Restrictions::none()),
        Reply::Authorized(cert_restrictions()),
    ]
}

type Decode<T> = fn(&[u8]) -> Result<(u32, T), CodecError>;

fn decode_all<T>(
    bytes: &[u8],
    mut decoder: FrameDecoder,
    chunk: usize,
    decode: Decode<T>,
) -> Vec<(u32, T)> {
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        decoder.extend(piece);
        while let Some(body) = decoder.next_frame().unwrap() {
            out.push(decode(&body).unwrap());
        }
    }
    assert!(!decoder.has_partial());
    out
}

#[test]
fn every_request_decodes_to_itself_fed_whole_and_one_byte_at_a_time() {
    let requests = every_request();
    let mut stream = Vec::new();
    for (id, r) in requests.iter().enumerate() {
        stream.extend(r.encode(u32::try_from(id).unwrap()));
    }
    for chunk in [stream.len(), 1] {
        let decoded = decode_all(&stream, FrameDecoder::requests(), chunk, Request::decode);
        let expected: Vec<_> = requests
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, r)| (u32::try_from(i).unwrap(), r))
            .collect();
        assert_eq!(decoded, expected);
    }
}

#[test]
fn every_reply_decodes_to_itself_fed_whole_and_one_byte_at_a_time() {
    let replies = every_reply();
    let stream: Vec<u8> = replies.iter().flat_map(|r| r.encode(5)).collect();
    for chunk in [stream.len(), 1] {
        let decoded = decode_all(&stream, FrameDecoder::replies(), chunk, Reply::decode);
        assert_eq!(decoded, replies.iter().cloned().map(|r| (5, r)).collect::<Vec<_>>());
    }
}

#[test]
fn a_length_over_the_limit_is_refused_as_soon_as_its_four_bytes_arrive() {
    let mut decoder = FrameDecoder::requests();
    let len = u32::try_from(MAX_REQUEST_LEN + 1).unwrap().to_be_bytes();
    for byte in &len[..3] {
        decoder.extend(&[*byte]);
        assert_eq!(decoder.next_frame(), Ok(None));
    }
    decoder.extend(&len[3..]);
    assert_eq!(decoder.next_frame(), Err(CodecError::BadLength(MAX_REQUEST_LEN + 1)));
}

#[test]
fn a_length_shorter_than_the_header_is_refused() {
    let mut decoder = FrameDecoder::requests();
    decoder.extend(&[0, 0, 0, 5, 1, 1, 0, 0, 0]);
    assert_eq!(decoder.next_frame(), Err(CodecError::BadLength(5)));
}

#[test]
fn another_protocol_version_is_malformed() {
    let mut frame = Request::ConnectionOpened { connection: C1 }.encode(1);
    frame[4] = 2;
    assert_eq!(Request::decode(&frame[4..]), Err(CodecError::BadVersion(2)));
}

#[test]
fn a_reply_kind_sent_as_a_request_is_malformed() {
    let frame = Reply::Done.encode(1);
    assert_eq!(Request::decode(&frame[4..]), Err(CodecError::UnknownKind(128)));
}

#[test]
fn trailing_bytes_after_the_last_field_are_malformed() {
    let mut frame = Request::ConnectionClosed { connection: C1 }.encode(1);
    frame.push(0);
    frame[3] += 1;
    assert!(matches!(Request::decode(&frame[4..]), Err(CodecError::Invalid(_))));
}

#[test]
fn a_pam_response_count_over_the_limit_is_refused_before_reading_the_responses() {
    let mut frame = Request::PamRespond { connection: C1, responses: vec![] }.encode(1);
    let count = frame.len() - 4;
    frame[count..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Request::decode(&frame[4..]), Err(CodecError::TooManyItems));
}

#[test]
fn a_user_name_over_the_limit_is_malformed() {
    let frame = lookup(&"a".repeat(MAX_USER_LEN + 1)).encode(1);
    assert!(matches!(Request::decode(&frame[4..]), Err(CodecError::Invalid(_))));
}

/// Runs `requests` through a fresh monitor as one byte stream fed `chunk` bytes at a time;
/// returns the decoded replies, or the violation.
fn run(requests: &[Request], chunk: usize) -> (Monitor<Fake>, Result<Vec<Reply>, Violation>) {
    run_with(fake(), requests, chunk)
}

/// [`run`] with `backend`.
fn run_with(
    backend: Fake,
    requests: &[Request],
    chunk: usize,
) -> (Monitor<Fake>, Result<Vec<Reply>, Violation>) {
    let mut m = Monitor::new(backend, Limits::default());
    let stream: Vec<u8> = requests.iter().flat_map(|r| r.encode(3)).collect();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        match m.received(piece) {
            Ok(bytes) => out.extend(bytes),
            Err(v) => return (m, Err(v)),
        }
    }
    let replies = decode_all(&out, FrameDecoder::replies(), out.len().max(1), Reply::decode);
    (m, Ok(replies.into_iter().map(|(_, r)| r).collect()))
}

/// The same, fed whole and one byte at a time, which must agree.
fn both_ways(requests: &[Request]) -> (Monitor<Fake>, Result<Vec<Reply>, Violation>) {
    let (_, byte_by_byte) = run(requests, 1);
    let (m, whole) = run(requests, usize::MAX);
    assert_eq!(byte_by_byte, whole);
    (m, whole)
}

/// [`both_ways`] with the backends `make` makes.
fn both_ways_with(
    make: impl Fn() -> Fake,
    requests: &[Request],
) -> (Monitor<Fake>, Result<Vec<Reply>, Violation>) {
    let (_, byte_by_byte) = run_with(make(), requests, 1);
    let (m, whole) = run_with(make(), requests, usize::MAX);
    assert_eq!(byte_by_byte, whole);
    (m, whole)
}

fn opened() -> Request {
    Request::ConnectionOpened { connection: C1 }
}

#[test]
fn a_whole_login_is_served_in_order_fed_whole_and_one_byte_at_a_time() {
    let (m, replies) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        Request::ReadAuthorizedKeys { connection: C1, user: "alice".into(), key: None },
        alice_proof(),
        authenticated("alice"),
        shell(),
        sign(C1),
        Request::ConnectionClosed { connection: C1 },
    ]);
    let replies = replies.unwrap();
    assert_eq!(replies.len(), 9);
    let Reply::Signature(blob) = &replies[1] else { panic!("{:?}", replies[1]) };
    host_key().public_key().verify(SignatureAlgorithm::Ed25519, &HASH, blob).unwrap();
    assert_eq!(replies[2], Reply::User(Some(user("alice"))));
    let Reply::AuthorizedKeys(Some(keys)) = &replies[3] else { panic!("{:?}", replies[3]) };
    assert!(keys.starts_with(b"# keys of alice\nssh-ed25519 "));
    assert_eq!(replies[4], Reply::Done);
    assert_eq!(replies[6], Reply::SessionSpawned { pid: 101, tty: None, fds: 0 });
    assert!(matches!(replies[7], Reply::Signature(_)));
    assert_eq!(m.phase(C1), None);
}

#[test]
fn a_session_for_an_unauthenticated_connection_is_a_violation_and_starts_nothing() {
    let (m, result) = both_ways(&[opened(), sign(C1), lookup("alice"), shell()]);
    assert_eq!(
        result,
        Err(Violation::OutOfState { request: "SpawnSession", phase: Phase::PreAuth })
    );
    assert_eq!(m.backend().sessions_started, 0);
}

#[test]
fn a_request_for_a_connection_never_opened_is_a_violation() {
    let (_, result) = both_ways(&[sign(C1)]);
    assert_eq!(result, Err(Violation::UnknownConnection(C1)));
}

#[test]
fn a_closed_connection_id_cannot_be_opened_again() {
    let closed = Request::ConnectionClosed { connection: C1 };
    let (_, result) = both_ways(&[opened(), closed.clone(), opened()]);
    assert_eq!(result, Err(Violation::ReusedConnection(C1)));
    let (_, result) = both_ways(&[opened(), closed, lookup("alice")]);
    assert_eq!(result, Err(Violation::UnknownConnection(C1)));
}

#[test]
fn a_second_signature_before_authentication_is_refused_for_that_connection() {
    let (_, result) = both_ways(&[opened(), sign(C1), sign(C1)]);
    assert!(matches!(result.unwrap().last(), Some(Reply::Failed(_))));
}

#[test]
fn data_that_is_not_an_exchange_hash_is_never_signed() {
    let request = Request::SignExchangeHash {
        connection: C1,
        algorithm: "ssh-ed25519".into(),
        data: vec![0; 33],
    };
    let (_, result) = both_ways(&[opened(), request]);
    assert_eq!(result, Err(Violation::NotAnExchangeHash(33)));
}

#[test]
fn signing_with_an_algorithm_the_monitor_holds_no_key_for_is_a_violation() {
    let request = Request::SignExchangeHash {
        connection: C1,
        algorithm: "rsa-sha2-512".into(),
        data: HASH.to_vec(),
    };
    let (_, result) = both_ways(&[opened(), request]);
    assert_eq!(result, Err(Violation::UnknownAlgorithm("rsa-sha2-512".into())));
}

#[test]
fn an_unknown_user_is_answered_and_cannot_then_be_authenticated() {
    let (_, result) = both_ways(&[opened(), lookup("mallory")]);
    assert_eq!(result, Ok(vec![Reply::Done, Reply::User(None)]));
    let (_, result) = both_ways(&[opened(), lookup("mallory"), authenticated("mallory")]);
    assert_eq!(result, Err(Violation::UserMismatch));
}

#[test]
fn authenticating_a_user_other_than_the_one_looked_up_is_a_violation() {
    let (_, result) = both_ways(&[opened(), lookup("alice"), authenticated("bob")]);
    assert_eq!(result, Err(Violation::UserMismatch));
}

#[test]
fn reading_the_keys_of_a_user_not_looked_up_is_a_violation() {
    let read = Request::ReadAuthorizedKeys { connection: C1, user: "bob".into(), key: None };
    let (_, result) = both_ways(&[opened(), lookup("alice"), read]);
    assert_eq!(result, Err(Violation::UserMismatch));
}

#[test]
fn the_groups_and_keys_of_a_user_the_lookup_did_not_find_are_empty_so_a_worker_may_pipeline_them() {
    let (_, replies) = both_ways(&[
        opened(),
        lookup("mallory"),
        Request::LookupGroups { connection: C1, user: "mallory".into() },
        Request::ReadAuthorizedKeys { connection: C1, user: "mallory".into(), key: None },
    ]);
    assert_eq!(
        replies.unwrap()[1..],
        [Reply::User(None), Reply::Groups(Vec::new()), Reply::AuthorizedKeys(None)]
    );
}

#[test]
fn the_keys_of_another_unknown_user_than_the_one_looked_up_are_still_a_violation() {
    let read = Request::ReadAuthorizedKeys { connection: C1, user: "eve".into(), key: None };
    let (_, result) = both_ways(&[opened(), lookup("mallory"), read]);
    assert_eq!(result, Err(Violation::UserMismatch));
    let groups = Request::LookupGroups { connection: C1, user: "eve".into() };
    let (_, result) = both_ways(&[opened(), lookup("mallory"), groups]);
    assert_eq!(result, Err(Violation::UserMismatch));
}

#[test]
fn a_user_found_after_an_unknown_one_is_served_and_the_unknown_name_no_longer_is() {
    let read =
        |name: &str| Request::ReadAuthorizedKeys { connection: C1, user: name.into(), key: None };
    let (_, replies) = both_ways(&[opened(), lookup("mallory"), lookup("alice"), read("alice")]);
    assert!(matches!(replies.unwrap()[3], Reply::AuthorizedKeys(Some(_))));
    let (_, result) = both_ways(&[opened(), lookup("mallory"), lookup("alice"), read("mallory")]);
    assert_eq!(result, Err(Violation::UserMismatch));
}

#[test]
fn a_lookup_after_authentication_is_out_of_state() {
    let (_, result) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        alice_proof(),
        authenticated("alice"),
        lookup("bob"),
    ]);
    assert_eq!(
        result,
        Err(Violation::OutOfState { request: "LookupUser", phase: Phase::Authenticated })
    );
}

#[test]
fn lookups_beyond_the_limit_are_refused_for_that_connection() {
    let mut requests = vec![opened()];
    let limit = usize::try_from(Limits::default().max_lookups).unwrap();
    requests.extend(std::iter::repeat_with(|| lookup("alice")).take(limit));
    let (_, result) = both_ways(&requests);
    assert_eq!(result.unwrap().len(), limit + 1);
    requests.push(lookup("alice"));
    let (_, result) = both_ways(&requests);
    assert!(matches!(result.unwrap().last(), Some(Reply::Failed(_))));
}

#[test]
fn sessions_beyond_the_limit_are_refused_for_that_connection() {
    let mut requests =
        vec![opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")];
    let limit = usize::try_from(Limits::default().max_sessions).unwrap();
    requests.extend(std::iter::repeat_with(shell).take(limit + 1));
    let (m, result) = both_ways(&requests);
    assert!(matches!(result.unwrap().last(), Some(Reply::Failed(_))));
    assert_eq!(m.backend().sessions_started, u32::try_from(limit).unwrap());
}

#[test]
fn authenticating_a_user_whose_key_the_monitor_did_not_verify_is_a_violation() {
    let (m, result) = both_ways(&[opened(), sign(C1), lookup("alice"), authenticated("alice")]);
    assert_eq!(result, Err(Violation::Unverified));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_signature_over_another_session_id_fails_and_does_not_verify_the_user() {
    let replay = proof(&client_key(), "alice", &[8; 32], None);
    let (_, result) = both_ways(&[opened(), sign(C1), lookup("alice"), replay.clone()]);
    assert!(matches!(result.unwrap()[3], Reply::Failed(_)));
    let (_, result) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        replay,
        Request::ReadAuthorizedKeys { connection: C1, user: "alice".into(), key: None },
        authenticated("alice"),
    ]);
    assert_eq!(result, Err(Violation::Unverified));
}

#[test]
fn a_login_pipelined_after_a_failed_key_check_is_refused_and_the_connection_stays_before_authentication(
) {
    let replay = proof(&client_key(), "alice", &[8; 32], None);
    let (m, result) =
        both_ways(&[opened(), sign(C1), lookup("alice"), replay, authenticated("alice")]);
    let replies = result.unwrap();
    assert_eq!(replies[3], Reply::Failed("signature does not verify".into()));
    assert_eq!(replies[4], Reply::Failed("the public key check failed".into()));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
    // Nothing was granted: a session is still out of state.
    let (_, result) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        proof(&client_key(), "alice", &[8; 32], None),
        authenticated("alice"),
        shell(),
    ]);
    assert_eq!(
        result,
        Err(Violation::OutOfState { request: "SpawnSession", phase: Phase::PreAuth })
    );
}

#[test]
fn a_login_pipelined_after_a_failed_key_check_is_refused_even_when_a_password_verified_the_user() {
    let stranger = PrivateKey::ed25519_from_seed(&[2; 32]).unwrap();
    let mut m = monitor();
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    m.handle(sign(C1)).unwrap();
    m.handle(lookup("alice")).unwrap();
    assert_eq!(m.handle(password("right")), Ok(Reply::Done));
    let refused = m.handle(proof(&stranger, "alice", &HASH, None));
    assert_eq!(refused, Ok(Reply::Failed("key not authorized".into())));
    let login = m.handle(authenticated("alice"));
    assert_eq!(login, Ok(Reply::Failed("the public key check failed".into())));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_login_pipelined_after_a_key_check_refused_for_its_count_is_refused_too() {
    let mut requests = vec![opened(), sign(C1), lookup("alice")];
    let limit = usize::try_from(Limits::default().max_key_reads).unwrap();
    let read = || Request::ReadAuthorizedKeys { connection: C1, user: "alice".into(), key: None };
    requests.extend(std::iter::repeat_with(read).take(limit));
    requests.extend([alice_proof(), authenticated("alice")]);
    let (m, result) = both_ways(&requests);
    let replies = result.unwrap();
    assert!(matches!(&replies[replies.len() - 2], Reply::Failed(why) if why.contains("too many")));
    assert_eq!(replies.last(), Some(&Reply::Failed("the public key check failed".into())));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_login_pipelined_after_a_key_check_that_passed_completes() {
    let (m, result) =
        both_ways(&[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")]);
    assert_eq!(result.unwrap()[3..], [Reply::Done, Reply::Done]);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn a_key_missing_from_authorized_keys_fails_even_with_a_good_signature() {
    let stranger = PrivateKey::ed25519_from_seed(&[2; 32]).unwrap();
    let attempt = proof(&stranger, "alice", &HASH, None);
    let (_, result) = both_ways(&[opened(), sign(C1), lookup("alice"), attempt]);
    assert_eq!(result.unwrap()[3], Reply::Failed("key not authorized".into()));
}

#[test]
fn a_host_bound_signature_is_checked_against_the_host_key_of_the_first_exchange() {
    let host_blob = host_key().public_key().to_blob();
    let bound = proof(&client_key(), "alice", &HASH, Some(&host_blob));
    let (m, result) =
        both_ways(&[opened(), sign(C1), lookup("alice"), bound, authenticated("alice")]);
    assert_eq!(result.unwrap()[3], Reply::Done);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
    let other = PrivateKey::ed25519_from_seed(&[3; 32]).unwrap().public_key().to_blob();
    let wrong = proof(&client_key(), "alice", &HASH, Some(&other));
    let (_, result) = both_ways(&[opened(), sign(C1), lookup("alice"), wrong]);
    assert!(matches!(result.unwrap()[3], Reply::Failed(_)));
}

#[test]
fn a_public_key_proof_before_any_key_exchange_is_out_of_state() {
    let (_, result) = both_ways(&[opened(), lookup("alice"), alice_proof()]);
    assert_eq!(
        result,
        Err(Violation::OutOfState { request: "AuthenticatePublicKey", phase: Phase::PreAuth })
    );
}

#[test]
fn pam_is_answered_unsupported_for_the_looked_up_user() {
    let start = Request::PamStart { connection: C1, user: "alice".into() };
    let (_, result) = both_ways(&[opened(), lookup("alice"), start]);
    assert!(matches!(result.unwrap()[2], Reply::Unsupported(_)));
}

#[test]
fn a_monitor_signer_signs_through_the_monitor_and_the_signature_verifies() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut m = monitor();
        matches!(serve(&mut m, monitor_end), ServeEnd::Closed)
    });
    let client = Arc::new(MonitorClient::new(worker_end));
    let public = host_key().public_key().clone();
    let signer = MonitorSigner::new(public.clone(), Arc::clone(&client));
    assert_eq!(signer.sign(SignatureAlgorithm::Ed25519, &HASH), Err(CryptoError::InvalidKey));
    assert_eq!(client.call(&opened()).unwrap(), Reply::Done);
    let blob = {
        let _scope = SigningScope::enter(C1);
        signer.sign(SignatureAlgorithm::Ed25519, &HASH).unwrap()
    };
    public.verify(SignatureAlgorithm::Ed25519, &HASH, &blob).unwrap();
    drop(signer);
    drop(client);
    assert!(server.join().unwrap());
}

#[test]
fn requests_sent_together_get_their_replies_in_order_and_later_calls_still_match() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let server =
        std::thread::spawn(move || matches!(serve(&mut monitor(), monitor_end), ServeEnd::Closed));
    let client = MonitorClient::new(worker_end);
    let replies = client
        .call_all(&[
            opened(),
            peer("192.0.2.7"),
            lookup("alice"),
            Request::LookupGroups { connection: C1, user: "alice".into() },
        ])
        .unwrap();
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[..2], [Reply::Done, Reply::Done]);
    assert!(matches!(&replies[2], Reply::User(Some(record)) if record.name == "alice"));
    assert!(matches!(replies[3], Reply::Groups(_)));
    assert!(matches!(client.call(&lookup("bob")).unwrap(), Reply::User(Some(_))));
    drop(client);
    assert!(server.join().unwrap());
}

#[test]
fn a_notice_is_not_waited_for_and_the_next_call_still_gets_its_own_reply() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let server =
        std::thread::spawn(move || matches!(serve(&mut monitor(), monitor_end), ServeEnd::Closed));
    let client = MonitorClient::new(worker_end);
    let c2 = ConnectionId(C1.0 + 1);
    assert_eq!(client.call(&opened()).unwrap(), Reply::Done);
    assert_eq!(client.call(&Request::ConnectionOpened { connection: c2 }).unwrap(), Reply::Done);
    client.notify(&Request::ConnectionClosed { connection: C1 }).unwrap();
    client.notify(&Request::ConnectionClosed { connection: c2 }).unwrap();
    let third = Request::ConnectionOpened { connection: ConnectionId(C1.0 + 2) };
    assert_eq!(client.call(&third).unwrap(), Reply::Done);
    drop(client);
    assert!(server.join().unwrap());
}

#[test]
fn a_notice_answered_other_than_done_fails_the_next_call() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || serve(&mut monitor(), monitor_end));
    let client = MonitorClient::new(worker_end);
    assert_eq!(client.call(&opened()).unwrap(), Reply::Done);
    client.notify(&lookup("alice")).unwrap();
    assert!(matches!(client.call(&lookup("bob")), Err(ClientError::UnexpectedReply)));
    drop(client);
    let _ = server.join().unwrap();
}

#[test]
fn a_worker_breaking_the_rules_ends_serving_with_the_violation() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let client = MonitorClient::new(worker_end);
    let server = std::thread::spawn(move || serve(&mut monitor(), monitor_end));
    assert_eq!(client.call(&opened()).unwrap(), Reply::Done);
    assert!(client.call(&shell()).is_err());
    let end = server.join().unwrap();
    assert!(matches!(
        end,
        ServeEnd::Violation(Violation::OutOfState { request: "SpawnSession", .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_monitor(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut m = monitor();
        let _ = m.received(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic_the_decoder(
        kind in 1u8..11,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut frame = vec![PROTOCOL_VERSION, kind, 0, 0, 0, 1];
        frame.extend(body);
        let _ = Request::decode(&frame);
        let _ = Reply::decode(&frame);
    }
}

#[test]
fn a_started_session_s_descriptor_reaches_the_worker_with_its_reply() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let (mut output, input) = std::io::pipe().unwrap();
    let server = std::thread::spawn(move || {
        let mut m = monitor();
        m.backend_mut().session_output = Some(input.into());
        matches!(serve_unix(&mut m, &monitor_end), ServeEnd::Closed)
    });
    let client = MonitorClient::new(worker_end);
    for request in [opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")] {
        let (_, fds) = client.call_with_fds(&request).unwrap();
        assert!(fds.is_empty());
    }
    let (reply, mut fds) = client.call_with_fds(&shell()).unwrap();
    assert_eq!(reply, Reply::SessionSpawned { pid: 101, tty: None, fds: 1 });
    let mut pty = std::fs::File::from(fds.pop().unwrap());
    std::io::Write::write_all(&mut pty, b"login banner").unwrap();
    drop(pty);
    drop(client);
    assert!(server.join().unwrap());
    let mut got = String::new();
    std::io::Read::read_to_string(&mut output, &mut got).unwrap();
    assert_eq!(got, "login banner");
}

mod penalties {
    use super::super::{Overflow, Penalties, PenaltyConfig, PenaltyKind};
    use std::net::IpAddr;
    use std::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn table() -> Penalties {
        Penalties::new(PenaltyConfig::default(), Vec::new())
    }

    #[test]
    fn one_failed_login_is_recorded_but_does_not_refuse_the_source() {
        let mut p = table();
        p.penalise(ip("192.0.2.1"), PenaltyKind::AuthFail, secs(100));
        assert_eq!(p.len(), (1, 0));
        assert_eq!(p.check(ip("192.0.2.1"), secs(100)), Ok(()));
    }

    #[test]
    fn failed_logins_past_the_minimum_refuse_the_source_until_the_penalty_expires() {
        let mut p = table();
        for _ in 0..4 {
            p.penalise(ip("192.0.2.1"), PenaltyKind::AuthFail, secs(100));
        }
        assert_eq!(p.check(ip("192.0.2.1"), secs(100)), Err("penalty: failed authentication"));
        assert_eq!(p.check(ip("192.0.2.2"), secs(100)), Ok(()));
        assert!(p.check(ip("192.0.2.1"), secs(120)).is_err());
        assert_eq!(p.check(ip("192.0.2.1"), secs(121)), Ok(()));
        assert_eq!(p.len(), (0, 0));
    }

    #[test]
    fn a_crash_refuses_the_source_at_once_for_ninety_seconds() {
        let mut p = table();
        p.penalise(ip("2001:db8::7"), PenaltyKind::Crash, secs(0));
        assert_eq!(p.check(ip("2001:db8::7"), secs(0)), Err("penalty: caused crash"));
        assert!(p.check(ip("2001:db8::7"), secs(90)).is_err());
        assert_eq!(p.check(ip("2001:db8::7"), secs(91)), Ok(()));
    }

    #[test]
    fn penalties_accumulate_no_further_than_the_maximum() {
        let mut p = table();
        for _ in 0..100 {
            p.penalise(ip("192.0.2.9"), PenaltyKind::Crash, secs(0));
        }
        assert!(p.check(ip("192.0.2.9"), secs(600)).is_err());
        assert_eq!(p.check(ip("192.0.2.9"), secs(601)), Ok(()));
    }

    #[test]
    fn an_exempt_network_is_never_refused() {
        let mut p = Penalties::new(PenaltyConfig::default(), vec![(ip("10.0.0.0"), 8)]);
        p.penalise(ip("10.1.2.3"), PenaltyKind::Crash, secs(0));
        assert_eq!(p.check(ip("10.1.2.3"), secs(0)), Ok(()));
        assert_eq!(p.len(), (0, 0));
    }

    #[test]
    fn sources_in_one_net_block_share_their_penalty() {
        let config = PenaltyConfig { netblock4: 24, ..PenaltyConfig::default() };
        let mut p = Penalties::new(config, Vec::new());
        p.penalise(ip("198.51.100.7"), PenaltyKind::Crash, secs(0));
        assert!(p.check(ip("198.51.100.200"), secs(1)).is_err());
        assert_eq!(p.check(ip("198.51.101.7"), secs(1)), Ok(()));
    }

    #[test]
    fn a_full_table_in_deny_all_mode_refuses_every_source_of_that_family() {
        let config = PenaltyConfig {
            max_sources4: 2,
            overflow4: Overflow::DenyAll,
            ..PenaltyConfig::default()
        };
        let mut p = Penalties::new(config, Vec::new());
        p.penalise(ip("192.0.2.1"), PenaltyKind::NoAuth, secs(0));
        p.penalise(ip("192.0.2.2"), PenaltyKind::NoAuth, secs(0));
        assert_eq!(p.check(ip("192.0.2.3"), secs(0)), Err("too many penalised addresses"));
        assert_eq!(p.check(ip("2001:db8::1"), secs(0)), Ok(()));
        assert_eq!(p.check(ip("192.0.2.3"), secs(2)), Ok(()));
    }

    #[test]
    fn a_full_table_in_permissive_mode_forgets_the_soonest_to_expire() {
        let config = PenaltyConfig { max_sources4: 2, ..PenaltyConfig::default() };
        let mut p = Penalties::new(config, Vec::new());
        p.penalise(ip("192.0.2.1"), PenaltyKind::Crash, secs(0));
        p.penalise(ip("192.0.2.2"), PenaltyKind::Crash, secs(1));
        p.penalise(ip("192.0.2.3"), PenaltyKind::Crash, secs(2));
        assert_eq!(p.len(), (2, 0));
        assert_eq!(p.check(ip("192.0.2.1"), secs(3)), Ok(()));
        assert!(p.check(ip("192.0.2.2"), secs(3)).is_err());
        assert!(p.check(ip("192.0.2.3"), secs(3)).is_err());
    }

    #[test]
    fn penalties_switched_off_refuse_nobody() {
        let mut p = Penalties::new(
            PenaltyConfig { enabled: false, ..PenaltyConfig::default() },
            Vec::new(),
        );
        p.penalise(ip("192.0.2.1"), PenaltyKind::Crash, secs(0));
        assert_eq!(p.check(ip("192.0.2.1"), secs(0)), Ok(()));
    }
}

#[test]
fn a_session_s_descriptor_is_closed_when_the_stream_cannot_carry_it() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let (mut output, input) = std::io::pipe().unwrap();
    let server = std::thread::spawn(move || {
        let mut m = monitor();
        m.backend_mut().session_output = Some(input.into());
        matches!(serve(&mut m, monitor_end), ServeEnd::Closed)
    });
    let client = MonitorClient::new(worker_end);
    for request in [opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")] {
        client.call(&request).unwrap();
    }
    assert_eq!(
        client.call(&shell()).unwrap(),
        Reply::SessionSpawned { pid: 101, tty: None, fds: 1 }
    );
    // The monitor dropped the pipe's only write end: a non-blocking read sees end of file,
    // where a leaked descriptor would make it `WouldBlock`.
    let flags = nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&output, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    assert_eq!(std::io::Read::read(&mut output, &mut [0u8; 8]).unwrap(), 0);
    drop(client);
    assert!(server.join().unwrap());
}

fn password(word: &str) -> Request {
    Request::AuthenticatePassword { connection: C1, user: "alice".into(), password: word.into() }
}

fn peer(address: &str) -> Request {
    let address = std::net::SocketAddr::new(address.parse().unwrap(), 50_022);
    Request::ConnectionPeer { connection: C1, address }
}

fn plan() -> SessionPlan {
    SessionPlan {
        program: b"/bin/sh".to_vec(),
        arg0: b"-sh".to_vec(),
        args: vec![b"-c".to_vec(), b"true".to_vec()],
        env: vec![(b"TERM".to_vec(), b"xterm".to_vec())],
        cwd: b"/".to_vec(),
        pty: Some(PtyPlan { rows: 24, columns: 80, width: 0, height: 0, modes: Some(vec![1, 2]) }),
        user_rc: true,
    }
}

#[test]
fn the_new_requests_and_the_spawned_reply_round_trip_through_the_codec() {
    let requests = [
        password("secret"),
        peer("2001:db8::1"),
        Request::SpawnSession { connection: C1, plan: plan() },
        Request::ResolveHost { connection: C1, host: "localhost".into(), port: 22 },
        Request::LookupGroups { connection: C1, user: "alice".into() },
    ];
    for request in requests {
        let frame = request.encode(9);
        assert_eq!(Request::decode(&frame[4..]), Ok((9, request)));
    }
    let replies = [
        Reply::SessionSpawned { pid: 77, tty: Some("/dev/pts/3".into()), fds: 2 },
        Reply::Addresses(vec!["127.0.0.1:22".parse().unwrap(), "[::1]:22".parse().unwrap()]),
        Reply::Groups(vec!["wheel".into(), "users".into()]),
    ];
    for reply in replies {
        let frame = reply.encode(4);
        assert_eq!(Reply::decode(&frame[4..]), Ok((4, reply)));
    }
}

#[test]
fn a_password_the_monitor_checked_itself_lets_the_login_complete_and_a_wrong_one_does_not() {
    let mut m = monitor();
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    m.handle(sign(C1)).unwrap();
    m.handle(lookup("alice")).unwrap();
    assert!(matches!(m.handle(password("wrong")), Ok(Reply::Failed(_))));
    assert_eq!(m.handle(authenticated("alice")), Err(Violation::Unverified));
    let mut m = monitor();
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    m.handle(lookup("alice")).unwrap();
    assert_eq!(m.handle(password("right")), Ok(Reply::Done));
    assert_eq!(m.handle(authenticated("alice")), Ok(Reply::Done));
}

#[test]
fn a_planned_session_before_authentication_is_a_violation() {
    let mut m = monitor();
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    m.handle(lookup("alice")).unwrap();
    assert_eq!(
        m.handle(Request::SpawnSession { connection: C1, plan: plan() }),
        Err(Violation::OutOfState { request: "SpawnSession", phase: Phase::PreAuth })
    );
}

#[test]
fn a_penalised_source_is_refused_and_a_failed_login_that_ends_is_penalised() {
    let mut m = monitor();
    m.backend_mut().refuse = Some("192.0.2.9".parse().unwrap());
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    assert!(
        matches!(m.handle(peer("192.0.2.9")), Ok(Reply::Failed(why)) if why.contains("penalty"))
    );
    let c2 = ConnectionId(2);
    m.handle(Request::ConnectionOpened { connection: c2 }).unwrap();
    m.handle(Request::ConnectionPeer {
        connection: c2,
        address: "192.0.2.1:50022".parse().unwrap(),
    })
    .unwrap();
    m.handle(Request::LookupUser { connection: c2, user: "alice".into() }).unwrap();
    let wrong = Request::AuthenticatePassword {
        connection: c2,
        user: "alice".into(),
        password: b"no".to_vec(),
    };
    m.handle(wrong).unwrap();
    assert_eq!(
        m.open_peers(),
        vec!["192.0.2.9".parse::<std::net::IpAddr>().unwrap(), "192.0.2.1".parse().unwrap()]
    );
    m.handle(Request::ConnectionClosed { connection: c2 }).unwrap();
    assert_eq!(m.backend().penalised, vec![("192.0.2.1".parse().unwrap(), PenaltyKind::AuthFail)]);
}

#[test]
fn a_second_peer_for_one_connection_is_a_violation() {
    let mut m = monitor();
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    m.handle(peer("192.0.2.1")).unwrap();
    assert!(matches!(m.handle(peer("192.0.2.2")), Err(Violation::OutOfState { .. })));
}

#[test]
fn resolving_a_host_name_before_authentication_is_a_violation() {
    let mut m = monitor();
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    let resolve = Request::ResolveHost { connection: C1, host: "localhost".into(), port: 80 };
    assert_eq!(
        m.handle(resolve),
        Err(Violation::OutOfState { request: "ResolveHost", phase: Phase::PreAuth })
    );
}

#[test]
fn a_certificate_login_is_verified_by_the_monitor_with_the_certified_key() {
    let blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    let (m, result) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        cert_request(&blob, Some(&HASH)),
        authenticated("alice"),
    ]);
    let replies = result.unwrap();
    assert_eq!(replies[3], Reply::Authorized(cert_restrictions()));
    assert_eq!(replies[4], Reply::Done);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn a_certificate_whose_signature_does_not_verify_is_refused_and_does_not_verify_the_user() {
    let blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    let replay = cert_request(&blob, Some(&[8; 32]));
    let (_, result) = both_ways(&[opened(), sign(C1), lookup("alice"), replay.clone()]);
    assert_eq!(result.unwrap()[3], Reply::Failed("signature does not verify".into()));
    let (_, result) =
        both_ways(&[opened(), sign(C1), lookup("alice"), replay, authenticated("alice")]);
    assert_eq!(result, Err(Violation::Unverified));
}

#[test]
fn a_certificate_with_a_forged_ca_signature_is_refused_whatever_the_backend_trusts() {
    let mut blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    *blob.last_mut().unwrap() ^= 1;
    let (m, result) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        cert_request(&blob, Some(&HASH)),
        authenticated("alice"),
    ]);
    assert_eq!(result, Err(Violation::Unverified));
    assert!(m.backend().facts_seen.is_empty(), "the backend was asked about a forged certificate");
    let (_, result) =
        both_ways(&[opened(), sign(C1), lookup("alice"), cert_request(&blob, Some(&HASH))]);
    assert_eq!(result.unwrap()[3], Reply::Failed("certificate signature does not verify".into()));
}

#[test]
fn a_certificate_the_backend_refuses_fails_even_with_a_good_signature() {
    let stranger = PrivateKey::ed25519_from_seed(&[5; 32]).unwrap();
    for blob in [
        certificate(&stranger, "alice").to_blob().to_vec(),
        certificate(&ca_key(), "bob").to_blob().to_vec(),
    ] {
        let (_, result) =
            both_ways(&[opened(), sign(C1), lookup("alice"), cert_request(&blob, Some(&HASH))]);
        assert!(matches!(result.unwrap()[3], Reply::Failed(_)));
    }
}

#[test]
fn a_certificate_query_answers_its_restrictions_but_does_not_verify_the_user() {
    let blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    let (_, result) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        cert_request(&blob, None),
        authenticated("alice"),
    ]);
    assert_eq!(result, Err(Violation::Unverified));
    let (_, result) = both_ways(&[opened(), lookup("alice"), cert_request(&blob, None)]);
    assert_eq!(result.unwrap()[2], Reply::Authorized(cert_restrictions()));
}

#[test]
fn a_certificate_for_a_user_not_looked_up_is_a_violation() {
    let blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    let (_, result) = both_ways(&[opened(), sign(C1), cert_request(&blob, Some(&HASH))]);
    assert_eq!(result, Err(Violation::UserMismatch));
}

fn prove(key_blob: Vec<u8>) -> Request {
    Request::ProveHostKey { connection: C1, algorithm: "ssh-ed25519".into(), key_blob }
}

fn logged_in() -> Vec<Request> {
    vec![opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")]
}

#[test]
fn the_monitor_signs_a_hostkeys_proof_it_builds_itself_for_a_key_it_holds() {
    let public = host_key().public_key().clone();
    let mut requests = logged_in();
    requests.push(prove(public.to_blob()));
    let (_, result) = both_ways(&requests);
    let Reply::Signature(blob) = &result.unwrap()[5] else { panic!("no signature") };
    let data = crate::keys::hostkeys_prove_data(&HASH, &public.to_blob());
    public.verify(SignatureAlgorithm::Ed25519, &data, blob).unwrap();
}

#[test]
fn the_monitor_refuses_to_sign_a_hostkeys_proof_for_a_key_it_does_not_hold() {
    let stranger = PrivateKey::ed25519_from_seed(&[6; 32]).unwrap().public_key().to_blob();
    let mut requests = logged_in();
    requests.push(prove(stranger));
    requests.push(prove(b"not a key".to_vec()));
    let (_, result) = both_ways(&requests);
    let replies = result.unwrap();
    assert_eq!(replies[5], Reply::Failed("not a host key of this server".into()));
    assert!(matches!(replies[6], Reply::Failed(_)));
}

#[test]
fn a_hostkeys_proof_before_authentication_is_out_of_state() {
    let (_, result) =
        both_ways(&[opened(), sign(C1), lookup("alice"), prove(host_key().public_key().to_blob())]);
    assert_eq!(
        result,
        Err(Violation::OutOfState { request: "ProveHostKey", phase: Phase::PreAuth })
    );
}

#[test]
fn hostkeys_proofs_beyond_the_limit_are_refused_for_that_connection() {
    let mut requests = logged_in();
    let limit = usize::try_from(Limits::default().max_proofs).unwrap();
    requests.extend((0..=limit).map(|_| prove(host_key().public_key().to_blob())));
    let (_, result) = both_ways(&requests);
    let replies = result.unwrap();
    assert!(matches!(replies[5 + limit - 1], Reply::Signature(_)));
    assert!(matches!(replies[5 + limit], Reply::Failed(_)));
}

#[test]
fn a_monitor_signer_asks_for_hostkeys_proofs_and_they_verify() {
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut m = monitor();
        matches!(serve(&mut m, monitor_end), ServeEnd::Closed)
    });
    let client = Arc::new(MonitorClient::new(worker_end));
    for request in logged_in() {
        assert!(!matches!(client.call(&request).unwrap(), Reply::Failed(_)));
    }
    let public = host_key().public_key().clone();
    let signer = MonitorSigner::new(public.clone(), Arc::clone(&client));
    let proof = {
        let _scope = SigningScope::enter(C1);
        // The session id the worker passes is not what the monitor signs over: its own is.
        signer.sign_hostkeys_proof(SignatureAlgorithm::Ed25519, &[0; 32]).unwrap()
    };
    let data = crate::keys::hostkeys_prove_data(&HASH, &public.to_blob());
    public.verify(SignatureAlgorithm::Ed25519, &data, &proof).unwrap();
    drop(signer);
    drop(client);
    assert!(server.join().unwrap());
}

#[test]
fn the_backend_reads_keys_and_checks_certificates_with_the_connection_s_addresses() {
    let peer =
        Request::ConnectionPeer { connection: C1, address: "192.0.2.7:50022".parse().unwrap() };
    let local = "198.51.100.1:2022".parse().unwrap();
    let ours = Request::ConnectionLocalAddress { connection: C1, address: local };
    let blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    let (m, result) = both_ways(&[
        opened(),
        peer,
        ours.clone(),
        lookup("alice"),
        Request::ReadAuthorizedKeys { connection: C1, user: "alice".into(), key: None },
        cert_request(&blob, None),
    ]);
    assert!(result.is_ok());
    let seen = &m.backend().facts_seen;
    assert_eq!(seen.len(), 2);
    for facts in seen {
        assert_eq!(facts.id, C1);
        assert_eq!(facts.peer_ip(), "192.0.2.7");
        assert_eq!(facts.local, Some(local));
    }
    let (_, result) = both_ways(&[opened(), ours.clone(), ours]);
    assert!(matches!(result, Err(Violation::OutOfState { .. })));
}

/// A monitor backend with PAM: alice's password is `right`, bob's account has expired;
/// `rounds` prompts are asked (of `prompt_len` bytes each) before the answer counts.
#[derive(Debug)]
struct PamFake {
    inner: Fake,
    prompts: usize,
    prompt_len: usize,
    /// The connections whose conversations were ended.
    ended: Vec<ConnectionId>,
    /// Whether a conversation is held.
    talking: bool,
    /// How many polls each PAM call takes before its answer (0: answered at once).
    delay: u32,
    /// The answer being worked on, and the polls left before it.
    working: Option<(PamStep, u32)>,
}

impl PamFake {
    /// `step` now, or after `delay` polls.
    fn answer(&mut self, step: PamStep) -> PamStep {
        if self.delay == 0 {
            return step;
        }
        self.working = Some((step, self.delay));
        PamStep::Pending
    }
}

impl MonitorBackend for PamFake {
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(algorithm, data)
    }
    fn host_public_key(&self, algorithm: SignatureAlgorithm) -> Option<PublicKey> {
        self.inner.host_public_key(algorithm)
    }
    fn lookup_user(&mut self, name: &str) -> Option<UserRecord> {
        self.inner.lookup_user(name)
    }
    fn read_authorized_keys(&mut self, user: &UserRecord) -> Option<Vec<u8>> {
        self.inner.read_authorized_keys(user)
    }
    fn spawn_session(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        plan: &SessionPlan,
    ) -> Result<SpawnedSession, String> {
        self.inner.spawn_session(connection, user, plan)
    }
    fn check_password(&mut self, _: &UserRecord, _: &[u8]) -> bool {
        panic!("with PAM, passwords are not checked against the shadow file")
    }
    fn pam_start(&mut self, _: ConnectionId, _: Option<std::net::IpAddr>, user: &str) -> PamStep {
        if user == "bob" {
            return PamStep::Refused("account expired".into());
        }
        self.talking = true;
        let prompt =
            crate::userauth::Prompt { text: "é".repeat(self.prompt_len / 2), echo: false };
        self.answer(PamStep::Ask(crate::userauth::InfoRequest {
            name: String::new(),
            instruction: "x".repeat(self.prompt_len * 10),
            prompts: vec![prompt; self.prompts],
        }))
    }
    fn pam_respond(&mut self, _: ConnectionId, responses: &[String]) -> PamStep {
        assert!(self.talking, "answers without a conversation reached PAM");
        self.talking = false;
        let step = if responses.first().map(String::as_str) == Some("right") {
            PamStep::Accepted
        } else {
            PamStep::Refused("authentication failure".into())
        };
        self.answer(step)
    }
    fn pam_poll(&mut self, _: ConnectionId) -> PamStep {
        match self.working.take() {
            Some((step, 1)) => step,
            Some((step, left)) => {
                self.working = Some((step, left - 1));
                PamStep::Pending
            }
            None => panic!("a poll reached PAM with nothing pending"),
        }
    }
    fn pam_password(
        &mut self,
        _: ConnectionId,
        _: Option<std::net::IpAddr>,
        user: &UserRecord,
        password: &[u8],
    ) -> Option<PamStep> {
        let step = if user.name == "alice" && password == b"right" {
            PamStep::Accepted
        } else {
            PamStep::Refused("authentication failure".into())
        };
        Some(self.answer(step))
    }
    fn pam_account(
        &mut self,
        _: ConnectionId,
        _: Option<std::net::IpAddr>,
        user: &UserRecord,
    ) -> PamStep {
        if user.name == "bob" {
            PamStep::Refused("account expired".into())
        } else {
            PamStep::Accepted
        }
    }
    fn pam_end(&mut self, connection: ConnectionId) {
        self.talking = false;
        self.ended.push(connection);
    }
    fn login_rules(
        &mut self,
        user: &UserRecord,
        facts: &crate::server::ConnectionFacts,
    ) -> Result<LoginRules, String> {
        self.inner.login_rules(user, facts)
    }
}

fn pam_monitor(limits: Limits) -> Monitor<PamFake> {
    let inner = fake();
    let backend = PamFake {
        inner,
        prompts: 1,
        prompt_len: 10,
        ended: Vec::new(),
        talking: false,
        delay: 0,
        working: None,
    };
    Monitor::new(backend, limits)
}

fn pam_start(name: &str) -> Request {
    Request::PamStart { connection: C1, user: name.into() }
}

fn pam_respond(answers: &[&str]) -> Request {
    Request::PamRespond { connection: C1, responses: answers.iter().map(|&a| a.into()).collect() }
}

fn by_keyboard(name: &str) -> Request {
    Request::ConnectionAuthenticated {
        connection: C1,
        user: name.into(),
        method: "keyboard-interactive".into(),
    }
}

/// A PAM monitor with C1 opened, its exchange signed and `name` looked up.
fn pam_ready(name: &str, limits: Limits) -> Monitor<PamFake> {
    let mut m = pam_monitor(limits);
    m.handle(opened()).unwrap();
    m.handle(sign(C1)).unwrap();
    m.handle(lookup(name)).unwrap();
    m
}

#[test]
fn a_pam_conversation_pam_accepts_verifies_the_user_and_ends_when_the_login_completes() {
    let mut m = pam_ready("alice", Limits::default());
    let Ok(Reply::PamPrompts(round)) = m.handle(pam_start("alice")) else { panic!() };
    assert_eq!(round.prompts.len(), 1);
    assert!(!round.prompts[0].echo);
    assert_eq!(m.handle(pam_respond(&["right"])), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("alice")), Ok(Reply::Done));
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
    assert_eq!(m.backend().ended, vec![C1]);
    assert_eq!(m.handle(shell()), Ok(Reply::SessionSpawned { pid: 101, tty: None, fds: 0 }));
}

#[test]
fn a_wrong_answer_fails_and_the_login_cannot_then_complete() {
    let mut m = pam_ready("alice", Limits::default());
    m.handle(pam_start("alice")).unwrap();
    assert!(matches!(m.handle(pam_respond(&["wrong"])), Ok(Reply::Failed(_))));
    assert_eq!(m.handle(by_keyboard("alice")), Err(Violation::Unverified));
}

#[test]
fn pam_answers_without_a_conversation_are_a_violation() {
    let mut m = pam_ready("alice", Limits::default());
    assert_eq!(
        m.handle(pam_respond(&["right"])),
        Err(Violation::OutOfState { request: "PamRespond", phase: Phase::PreAuth })
    );
    // Nor twice to one round.
    let mut m = pam_ready("alice", Limits::default());
    m.handle(pam_start("alice")).unwrap();
    assert!(matches!(m.handle(pam_respond(&["wrong"])), Ok(Reply::Failed(_))));
    assert_eq!(
        m.handle(pam_respond(&["right"])),
        Err(Violation::OutOfState { request: "PamRespond", phase: Phase::PreAuth })
    );
}

#[test]
fn pam_after_authentication_is_out_of_state() {
    let mut m = pam_ready("alice", Limits::default());
    m.handle(alice_proof()).unwrap();
    m.handle(authenticated("alice")).unwrap();
    for request in [pam_start("alice"), pam_respond(&["right"])] {
        let name = request.name();
        assert_eq!(
            m.handle(request),
            Err(Violation::OutOfState { request: name, phase: Phase::Authenticated })
        );
    }
    let account = Request::PamAccount { connection: C1, user: "alice".into() };
    assert!(matches!(m.handle(account), Err(Violation::OutOfState { .. })));
}

/// As sshd's, the conversation runs for a user without an account (the client cannot tell
/// such a user by an immediate failure); it is an attempt, and PAM's acceptance verifies no one.
#[test]
fn an_invalid_user_is_asked_by_pam_like_any_other_and_never_verified() {
    let mut m = pam_ready("mallory", Limits::default());
    let Ok(Reply::PamPrompts(round)) = m.handle(pam_start("mallory")) else { panic!() };
    assert_eq!(round.prompts.len(), 1);
    assert_eq!(m.handle(pam_respond(&["right"])), Ok(Reply::Failed("invalid user".into())));
    assert_eq!(m.handle(by_keyboard("mallory")), Err(Violation::UserMismatch));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_conversation_for_a_user_not_looked_up_is_a_violation() {
    let mut m = pam_ready("alice", Limits::default());
    assert_eq!(m.handle(pam_start("bob")), Err(Violation::UserMismatch));
}

#[test]
fn answers_other_than_one_per_prompt_are_a_violation() {
    let mut m = pam_ready("alice", Limits::default());
    m.handle(pam_start("alice")).unwrap();
    assert_eq!(
        m.handle(pam_respond(&["right", "more"])),
        Err(Violation::WrongResponseCount { asked: 1, got: 2 })
    );
}

#[test]
fn a_round_is_cut_to_the_codec_s_limits_and_still_decodes() {
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().prompts = 100;
    m.backend_mut().prompt_len = 5000;
    let Ok(reply) = m.handle(pam_start("alice")) else { panic!() };
    let Reply::PamPrompts(round) = &reply else { panic!("{reply:?}") };
    assert_eq!(round.prompts.len(), MAX_PAM_RESPONSES);
    assert!(round.prompts.iter().all(|p| p.text.len() <= MAX_PAM_PROMPT_LEN));
    assert!(round.instruction.len() <= MAX_PAM_TEXT_LEN);
    let frame = reply.encode(3);
    assert_eq!(Reply::decode(&frame[4..]), Ok((3, reply)));
    let answers = vec!["a"; MAX_PAM_RESPONSES];
    assert!(matches!(m.handle(pam_respond(&answers)), Ok(Reply::Failed(_))));
}

#[test]
fn pam_requests_beyond_the_limit_are_refused_for_that_connection() {
    let mut m = pam_ready("alice", Limits { max_pam: 3, ..Limits::default() });
    m.handle(pam_start("alice")).unwrap();
    assert!(matches!(m.handle(pam_respond(&["wrong"])), Ok(Reply::Failed(_))));
    m.handle(pam_start("alice")).unwrap();
    let Ok(Reply::Failed(why)) = m.handle(pam_respond(&["right"])) else { panic!() };
    assert!(why.contains("too many"), "{why}");
    assert_eq!(m.handle(by_keyboard("alice")), Err(Violation::Unverified));
    assert!(matches!(m.handle(pam_start("alice")), Ok(Reply::Failed(_))));
}

#[test]
fn a_closed_connection_ends_its_pam_conversation() {
    let mut m = pam_ready("alice", Limits::default());
    m.handle(pam_start("alice")).unwrap();
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert_eq!(m.backend().ended, vec![C1]);
    assert!(!m.backend().talking);
}

#[test]
fn with_pam_a_password_is_pam_s_to_check() {
    let mut m = pam_ready("alice", Limits::default());
    assert!(matches!(m.handle(password("wrong")), Ok(Reply::Failed(_))));
    assert_eq!(m.handle(password("right")), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("alice")), Ok(Reply::Done));
}

#[test]
fn pam_s_account_check_refuses_an_expired_account_and_verifies_no_one() {
    let mut m = pam_ready("bob", Limits::default());
    let account = Request::PamAccount { connection: C1, user: "bob".into() };
    assert_eq!(m.handle(account), Ok(Reply::Failed("account expired".into())));
    let mut m = pam_ready("alice", Limits::default());
    let account = Request::PamAccount { connection: C1, user: "alice".into() };
    assert_eq!(m.handle(account), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("alice")), Err(Violation::Unverified));
    let mut m = monitor();
    m.handle(opened()).unwrap();
    m.handle(lookup("alice")).unwrap();
    let account = Request::PamAccount { connection: C1, user: "alice".into() };
    assert!(matches!(m.handle(account), Ok(Reply::Unsupported(_))));
}

#[test]
fn the_pam_request_and_reply_round_trip_through_the_codec() {
    let request = Request::PamAccount { connection: C1, user: "alice".into() };
    let frame = request.encode(2);
    assert_eq!(Request::decode(&frame[4..]), Ok((2, request)));
    let reply = Reply::PamPrompts(crate::userauth::InfoRequest {
        name: "title".into(),
        instruction: "say it".into(),
        prompts: vec![
            crate::userauth::Prompt { text: "Code: ".into(), echo: true },
            crate::userauth::Prompt { text: "Password: ".into(), echo: false },
        ],
    });
    let frame = reply.encode(6);
    assert_eq!(Reply::decode(&frame[4..]), Ok((6, reply)));
}

fn pam_poll() -> Request {
    Request::PamPoll { connection: C1 }
}

#[test]
fn a_pam_call_still_working_is_answered_pending_and_then_by_polling() {
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().delay = 2;
    assert_eq!(m.handle(pam_start("alice")), Ok(Reply::PamPending));
    assert_eq!(m.handle(pam_poll()), Ok(Reply::PamPending));
    let Ok(Reply::PamPrompts(round)) = m.handle(pam_poll()) else { panic!() };
    assert_eq!(round.prompts.len(), 1);
    assert_eq!(m.handle(pam_respond(&["right"])), Ok(Reply::PamPending));
    assert_eq!(m.handle(by_keyboard("alice")), Err(Violation::Unverified));
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().delay = 1;
    m.handle(pam_start("alice")).unwrap();
    m.handle(pam_poll()).unwrap();
    m.handle(pam_respond(&["right"])).unwrap();
    assert_eq!(m.handle(pam_poll()), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("alice")), Ok(Reply::Done));
}

#[test]
fn a_password_pam_is_still_checking_verifies_the_user_only_once_polled() {
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().delay = 1;
    assert_eq!(m.handle(password("right")), Ok(Reply::PamPending));
    assert_eq!(m.handle(pam_poll()), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("alice")), Ok(Reply::Done));
}

#[test]
fn a_poll_with_nothing_pending_is_a_violation() {
    let mut m = pam_ready("alice", Limits::default());
    assert_eq!(
        m.handle(pam_poll()),
        Err(Violation::OutOfState { request: "PamPoll", phase: Phase::PreAuth })
    );
    // Nor once the answer was taken.
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().delay = 1;
    m.handle(pam_start("alice")).unwrap();
    m.handle(pam_poll()).unwrap();
    assert!(matches!(m.handle(pam_poll()), Err(Violation::OutOfState { .. })));
}

#[test]
fn answers_while_pam_still_works_are_a_violation() {
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().delay = 1;
    m.handle(pam_start("alice")).unwrap();
    assert!(matches!(m.handle(pam_respond(&["right"])), Err(Violation::OutOfState { .. })));
}

#[test]
fn a_poll_for_a_connection_closed_meanwhile_fails_but_one_never_opened_is_a_violation() {
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().delay = 1;
    m.handle(pam_start("alice")).unwrap();
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert!(matches!(m.handle(pam_poll()), Ok(Reply::Failed(_))));
    let never = ConnectionId(99);
    assert_eq!(
        m.handle(Request::PamPoll { connection: never }),
        Err(Violation::UnknownConnection(never))
    );
}

#[test]
fn the_poll_and_pending_messages_round_trip_through_the_codec() {
    let frame = pam_poll().encode(8);
    assert_eq!(Request::decode(&frame[4..]), Ok((8, pam_poll())));
    let frame = Reply::PamPending.encode(8);
    assert_eq!(Reply::decode(&frame[4..]), Ok((8, Reply::PamPending)));
}

#[test]
fn pam_verifies_the_user_it_was_asked_about_not_one_looked_up_since() {
    let mut m = pam_ready("alice", Limits::default());
    m.handle(pam_start("alice")).unwrap();
    m.handle(lookup("bob")).unwrap();
    assert_eq!(m.handle(pam_respond(&["right"])), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("bob")), Err(Violation::Unverified));
    assert_eq!(m.handle(by_keyboard("alice")), Err(Violation::UserMismatch));
}

/// A backend that makes listening sockets: the fake's logins, `root` as uid 0, and a record
/// of what it was asked.
#[derive(Debug)]
struct Listens {
    inner: Fake,
    agents: Vec<ConnectionId>,
    bound: Vec<std::net::SocketAddr>,
    closed: Vec<ConnectionId>,
}

impl MonitorBackend for Listens {
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(algorithm, data)
    }
    fn host_public_key(&self, algorithm: SignatureAlgorithm) -> Option<PublicKey> {
        self.inner.host_public_key(algorithm)
    }
    fn lookup_user(&mut self, name: &str) -> Option<UserRecord> {
        match name {
            "root" => Some(UserRecord { uid: 0, gid: 0, ..user("root") }),
            _ => self.inner.lookup_user(name),
        }
    }
    fn read_authorized_keys(&mut self, user: &UserRecord) -> Option<Vec<u8>> {
        self.inner.read_authorized_keys(user)
    }
    fn spawn_session(
        &mut self,
        connection: ConnectionId,
        user: &UserRecord,
        plan: &SessionPlan,
    ) -> Result<SpawnedSession, String> {
        self.inner.spawn_session(connection, user, plan)
    }
    fn listen_agent(
        &mut self,
        connection: ConnectionId,
        _: &UserRecord,
    ) -> Result<(String, std::os::fd::OwnedFd), String> {
        self.agents.push(connection);
        let (ours, _) = UnixStream::pair().map_err(|e| e.to_string())?;
        Ok(("/tmp/ssh-test/agent.1".into(), ours.into()))
    }
    fn listen_privileged(
        &mut self,
        _: ConnectionId,
        address: std::net::SocketAddr,
    ) -> Result<std::os::fd::OwnedFd, String> {
        self.bound.push(address);
        let (ours, _) = UnixStream::pair().map_err(|e| e.to_string())?;
        Ok(ours.into())
    }
    fn connection_closed(&mut self, connection: ConnectionId) {
        self.closed.push(connection);
    }
}

fn listening_monitor() -> Monitor<Listens> {
    let inner = fake();
    Monitor::new(
        Listens { inner, agents: Vec::new(), bound: Vec::new(), closed: Vec::new() },
        Limits::default(),
    )
}

/// Opens C1 and logs `name` in with the client key.
fn log_in(m: &mut Monitor<Listens>, name: &str) {
    for request in [
        opened(),
        sign(C1),
        Request::LookupUser { connection: C1, user: name.into() },
        proof(&client_key(), name, &HASH, None),
        authenticated(name),
    ] {
        assert!(!matches!(m.handle(request), Err(_) | Ok(Reply::Failed(_))));
    }
}

fn agent() -> Request {
    Request::ListenAgent { connection: C1 }
}

fn privileged(port: u16) -> Request {
    Request::ListenPrivileged { connection: C1, address: ([127, 0, 0, 1], port).into() }
}

#[test]
fn listening_requests_and_their_reply_decode_to_themselves() {
    for request in [
        agent(),
        privileged(80),
        Request::ListenPrivileged { connection: C1, address: "[::1]:443".parse().unwrap() },
    ] {
        assert_eq!(Request::decode(&request.encode(5)[4..]).unwrap(), (5, request));
    }
    for reply in [
        Reply::Listening { path: Some("/tmp/ssh-x/agent.9".into()), fds: 1 },
        Reply::Listening { path: None, fds: 1 },
    ] {
        assert_eq!(Reply::decode(&reply.encode(6)[4..]).unwrap(), (6, reply));
    }
}

#[test]
fn an_agent_socket_before_authentication_is_a_violation_and_makes_nothing() {
    let mut m = listening_monitor();
    m.handle(opened()).unwrap();
    m.handle(sign(C1)).unwrap();
    assert_eq!(
        m.handle(agent()),
        Err(Violation::OutOfState { request: "ListenAgent", phase: Phase::PreAuth })
    );
    assert!(m.backend().agents.is_empty());
}

#[test]
fn an_authenticated_connection_gets_one_agent_socket_with_its_descriptor_removed_at_close() {
    let mut m = listening_monitor();
    log_in(&mut m, "alice");
    assert_eq!(
        m.handle(agent()),
        Ok(Reply::Listening { path: Some("/tmp/ssh-test/agent.1".into()), fds: 1 })
    );
    assert_eq!(m.take_fds().len(), 1);
    assert!(matches!(m.handle(agent()), Ok(Reply::Failed(_))));
    assert!(m.take_fds().is_empty());
    assert_eq!(m.backend().agents, [C1]);
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert_eq!(m.backend().closed, [C1]);
}

#[test]
fn the_backend_hears_of_every_closed_connection_even_one_nothing_was_made_for() {
    let mut m = listening_monitor();
    log_in(&mut m, "alice");
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert_eq!(m.backend().closed, [C1]);
}

#[test]
fn a_privileged_port_is_bound_for_root_only_and_only_below_1024() {
    let mut m = listening_monitor();
    log_in(&mut m, "alice");
    assert!(matches!(m.handle(privileged(80)), Ok(Reply::Failed(_))));
    assert!(m.backend().bound.is_empty());

    let mut m = listening_monitor();
    log_in(&mut m, "root");
    assert!(matches!(m.handle(privileged(2222)), Ok(Reply::Failed(_))));
    assert!(matches!(m.handle(privileged(0)), Ok(Reply::Failed(_))));
    assert_eq!(m.handle(privileged(80)), Ok(Reply::Listening { path: None, fds: 1 }));
    assert_eq!(m.take_fds().len(), 1);
    assert_eq!(m.backend().bound, [std::net::SocketAddr::from(([127, 0, 0, 1], 80))]);
}

#[test]
fn a_privileged_port_before_authentication_is_a_violation() {
    let mut m = listening_monitor();
    m.handle(opened()).unwrap();
    assert_eq!(
        m.handle(privileged(80)),
        Err(Violation::OutOfState { request: "ListenPrivileged", phase: Phase::PreAuth })
    );
}

#[test]
fn the_retired_start_session_kind_is_unknown() {
    let mut frame = vec![PROTOCOL_VERSION, 8, 0, 0, 0, 1];
    frame.extend(1u64.to_be_bytes());
    frame.extend([0, 0, 0, 0, 0, 0]);
    assert_eq!(Request::decode(&frame), Err(CodecError::UnknownKind(8)));
}

#[test]
fn socket_forwarding_requests_round_trip_and_are_violations_before_authentication() {
    let requests = [
        Request::ListenStreamlocal { connection: C1, path: b"/tmp/fwd.sock".to_vec() },
        Request::ConnectStreamlocal { connection: C1, path: b"/run/app.sock".to_vec() },
    ];
    for request in requests {
        assert_eq!(Request::decode(&request.encode(3)[4..]), Ok((3, request.clone())));
        let mut m = listening_monitor();
        m.handle(opened()).unwrap();
        let name = request.name();
        assert_eq!(
            m.handle(request),
            Err(Violation::OutOfState { request: name, phase: Phase::PreAuth })
        );
    }
}

#[test]
fn socket_forwarding_is_refused_by_a_monitor_that_does_not_do_it() {
    let mut m = listening_monitor();
    log_in(&mut m, "alice");
    let listen = Request::ListenStreamlocal { connection: C1, path: b"/tmp/fwd.sock".to_vec() };
    assert!(matches!(m.handle(listen), Ok(Reply::Failed(_))));
    assert!(m.take_fds().is_empty());
}

/// A client that sent `alice:skey` signed that name: the monitor verifies the signature over
/// it and then the account `alice`, as OpenSSH's auth2.c splits the style off; a signature
/// over another name does not verify.
#[test]
fn a_user_name_with_a_style_is_verified_over_the_name_as_sent() {
    let (_, replies) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        proof(&client_key(), "alice:skey", &HASH, None),
        authenticated("alice"),
    ]);
    let replies = replies.unwrap();
    assert_eq!(replies[3], Reply::Done);
    assert_eq!(replies[4], Reply::Done);
    let Request::AuthenticatePublicKey { signature, .. } =
        proof(&client_key(), "alice", &HASH, None)
    else {
        unreachable!()
    };
    let Request::AuthenticatePublicKey {
        connection, user, algorithm, key_blob, host_bound, ..
    } = proof(&client_key(), "alice:skey", &HASH, None)
    else {
        unreachable!()
    };
    let mixed = Request::AuthenticatePublicKey {
        connection,
        user,
        algorithm,
        key_blob,
        host_bound,
        signature,
    };
    let (_, replies) = both_ways(&[opened(), sign(C1), lookup("alice"), mixed]);
    assert_eq!(replies.unwrap()[3], Reply::Failed("signature does not verify".to_owned()));
}

/// A worker that says a login completed which the configuration does not allow (its own
/// policy skipped) is refused by the monitor's check of the same configuration: no session.
#[test]
fn a_login_the_configuration_forbids_is_refused_by_the_monitor_even_when_verified() {
    let (m, replies) = both_ways(&[
        opened(),
        sign(C1),
        lookup("bob"),
        proof(&client_key(), "bob", &HASH, None),
        authenticated("bob"),
    ]);
    let replies = replies.unwrap();
    assert_eq!(replies[3], Reply::Done);
    assert_eq!(replies[4], Reply::Failed("publickey is not enabled for bob".to_owned()));
    // Still before authentication: no session can be asked for.
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_connection_that_closes_without_trying_earns_noauth_and_a_refused_one_earns_nothing() {
    let mut m = monitor();
    m.backend_mut().refuse = Some("192.0.2.9".parse().unwrap());
    m.handle(Request::ConnectionOpened { connection: C1 }).unwrap();
    assert!(matches!(m.handle(peer("192.0.2.9")), Ok(Reply::Failed(_))));
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert_eq!(m.backend().penalised, vec![], "a connection never served earned a penalty");
    let c2 = ConnectionId(2);
    m.handle(Request::ConnectionOpened { connection: c2 }).unwrap();
    m.handle(Request::ConnectionPeer {
        connection: c2,
        address: "192.0.2.1:50022".parse().unwrap(),
    })
    .unwrap();
    m.handle(Request::ConnectionClosed { connection: c2 }).unwrap();
    assert_eq!(m.backend().penalised, vec![("192.0.2.1".parse().unwrap(), PenaltyKind::NoAuth)]);
}

/// The penalty a connection from 192.0.2.1 earns for `requests` (after it opened and named its
/// peer) and its close, fed whole and byte by byte, with `make`'s backend; and the replies.
fn penalty_for(make: impl Fn() -> Fake, requests: &[Request]) -> (Vec<PenaltyKind>, Vec<Reply>) {
    let mut all = vec![opened(), peer("192.0.2.1")];
    all.extend_from_slice(requests);
    all.push(Request::ConnectionClosed { connection: C1 });
    let (m, replies) = both_ways_with(make, &all);
    let kinds = m.backend().penalised.iter().map(|(_, kind)| *kind).collect();
    let replies = replies.unwrap();
    (kinds, replies[2..replies.len() - 1].to_vec())
}

fn keys_of(name: &str) -> Request {
    Request::ReadAuthorizedKeys { connection: C1, user: name.into(), key: None }
}

fn groups_of(name: &str) -> Request {
    Request::LookupGroups { connection: C1, user: name.into() }
}

/// The key a worker names with `ReadAuthorizedKeys` (for an `AuthorizedKeysCommand`'s lines)
/// reaches the backend, as does the key of a check; a malformed one is refused.
#[test]
fn the_key_offered_reaches_the_backend_with_the_read_and_the_check() {
    let blob = client_key().public_key().to_blob().to_vec();
    let with_key = |key: Vec<u8>| Request::ReadAuthorizedKeys {
        connection: C1,
        user: "alice".into(),
        key: Some(key),
    };
    let (m, replies) = both_ways(&[
        opened(),
        sign(C1),
        lookup("alice"),
        keys_of("alice"),
        with_key(blob.clone()),
        with_key(b"not a key".to_vec()),
        alice_proof(),
    ]);
    let replies = replies.unwrap();
    assert!(matches!(replies[3], Reply::AuthorizedKeys(Some(_))), "{replies:?}");
    assert!(matches!(replies[4], Reply::AuthorizedKeys(Some(_))), "{replies:?}");
    assert_eq!(replies[5], Reply::Failed("malformed public key".into()));
    assert_eq!(replies[6], Reply::Done);
    let key = client_key().public_key().clone();
    assert_eq!(m.backend().keys_asked, vec![None, Some(key.clone()), Some(key)]);
}

#[test]
fn refuse_connection_refuses_the_user_and_everything_after_and_earns_refuseconnection() {
    let refusing = || Fake { refused_users: vec!["alice".into()], ..fake() };
    let (kinds, replies) = penalty_for(
        refusing,
        &[
            sign(C1),
            lookup("alice"),
            groups_of("alice"),
            keys_of("alice"),
            alice_proof(),
            password("secret"),
            authenticated("alice"),
            lookup("bob"),
        ],
    );
    assert!(matches!(replies[0], Reply::Signature(_)), "{replies:?}");
    // The user and groups, for the worker's own reading of the configuration; then nothing.
    assert!(matches!(replies[1], Reply::User(Some(_))), "{replies:?}");
    assert!(matches!(replies[2], Reply::Groups(_)), "{replies:?}");
    let refused = Reply::Failed(REFUSED.to_owned());
    assert!(replies[3..].iter().all(|r| *r == refused), "{replies:?}");
    assert_eq!(kinds, vec![PenaltyKind::RefuseConnection]);
    // Another user is not refused.
    let (kinds, replies) = penalty_for(refusing, &[lookup("bob")]);
    assert!(matches!(replies[0], Reply::User(Some(_))), "{replies:?}");
    assert_eq!(kinds, vec![PenaltyKind::NoAuth]);
}

#[test]
fn an_invalid_user_whose_keys_were_asked_for_earns_invaliduser() {
    // The worker's look-up for a key: user, groups and keys in one breath.
    let (kinds, replies) =
        penalty_for(fake, &[lookup("mallory"), groups_of("mallory"), keys_of("mallory")]);
    assert_eq!(
        replies,
        vec![Reply::User(None), Reply::Groups(Vec::new()), Reply::AuthorizedKeys(None)]
    );
    assert_eq!(kinds, vec![PenaltyKind::InvalidUser]);
}

#[test]
fn a_password_for_an_invalid_user_is_an_attempt_that_earns_authfail() {
    let for_mallory = Request::AuthenticatePassword {
        connection: C1,
        user: "mallory".into(),
        password: b"guess".to_vec(),
    };
    let (kinds, replies) = penalty_for(fake, &[lookup("mallory"), for_mallory]);
    assert_eq!(replies[1], Reply::Failed("invalid user".into()));
    assert_eq!(kinds, vec![PenaltyKind::AuthFail]);
}

#[test]
fn a_valid_user_named_without_a_check_earns_noauth_and_one_whose_keys_were_read_authfail() {
    let (kinds, _) = penalty_for(fake, &[lookup("alice"), groups_of("alice")]);
    assert_eq!(kinds, vec![PenaltyKind::NoAuth]);
    let (kinds, _) = penalty_for(fake, &[lookup("alice"), groups_of("alice"), keys_of("alice")]);
    assert_eq!(kinds, vec![PenaltyKind::AuthFail]);
    // An invalid user first, then a valid one checked: the attempt counts first, as in sshd.
    let (kinds, _) = penalty_for(fake, &[lookup("mallory"), lookup("alice"), keys_of("alice")]);
    assert_eq!(kinds, vec![PenaltyKind::AuthFail]);
}

// The monitor's own checks of a login: AuthenticationMethods over the methods it verified,
// PubkeyAcceptedAlgorithms, one use per key, and PermitRootLogin forced-commands-only.

/// A fake whose rules ask for `lists` (`AuthenticationMethods`).
fn with_lists(lists: &[&[Method]]) -> Fake {
    let mut backend = fake();
    backend.rules.methods = lists.iter().map(|list| list.to_vec()).collect();
    backend
}

const KEY_THEN_PASSWORD: &[Method] = &[Method::PublicKey, Method::Password];

#[test]
fn a_login_claimed_after_one_method_of_a_two_method_list_is_refused_and_stays_before_authentication(
) {
    let (m, result) = both_ways_with(
        || with_lists(&[KEY_THEN_PASSWORD]),
        &[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice"), shell()],
    );
    assert_eq!(
        result,
        Err(Violation::OutOfState { request: "SpawnSession", phase: Phase::PreAuth })
    );
    assert_eq!(m.backend().sessions_started, 0);
    let (m, result) = both_ways_with(
        || with_lists(&[KEY_THEN_PASSWORD]),
        &[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")],
    );
    let replies = result.unwrap();
    assert_eq!(replies[3], Reply::Done);
    assert_eq!(
        replies[4],
        Reply::Failed("AuthenticationMethods for alice not completed (verified: publickey)".into())
    );
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_login_after_both_methods_of_the_list_is_accepted() {
    let (m, result) = both_ways_with(
        || with_lists(&[KEY_THEN_PASSWORD]),
        &[
            opened(),
            sign(C1),
            lookup("alice"),
            alice_proof(),
            password("right"),
            authenticated("alice"),
            shell(),
        ],
    );
    let replies = result.unwrap();
    assert_eq!(replies[3..6], [Reply::Done, Reply::Done, Reply::Done]);
    assert_eq!(replies[6], Reply::SessionSpawned { pid: 101, tty: None, fds: 0 });
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn the_methods_of_a_list_complete_it_only_in_its_order_and_any_list_will_do() {
    let password_then_key = [opened(), lookup("alice"), password("right")]
        .into_iter()
        .chain([sign(C1), alice_proof(), authenticated("alice")])
        .collect::<Vec<_>>();
    let mut m = Monitor::new(with_lists(&[KEY_THEN_PASSWORD]), Limits::default());
    let replies: Vec<_> = password_then_key.iter().map(|r| m.handle(r.clone())).collect();
    assert!(matches!(&replies[5], Ok(Reply::Failed(why)) if why.contains("not completed")));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
    let either = [KEY_THEN_PASSWORD, &[Method::Password, Method::PublicKey]];
    let mut m = Monitor::new(with_lists(&either), Limits::default());
    let replies: Vec<_> = password_then_key.iter().map(|r| m.handle(r.clone())).collect();
    assert_eq!(replies[5], Ok(Reply::Done));
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn a_partial_success_key_step_whose_signature_fails_does_not_count_towards_the_list() {
    let replay = proof(&client_key(), "alice", &[8; 32], None);
    let (m, result) = both_ways_with(
        || with_lists(&[KEY_THEN_PASSWORD]),
        &[opened(), sign(C1), lookup("alice"), replay, password("right"), authenticated("alice")],
    );
    let replies = result.unwrap();
    assert_eq!(replies[3], Reply::Failed("signature does not verify".into()));
    assert_eq!(replies[4], Reply::Done);
    assert_eq!(
        replies[5],
        Reply::Failed("AuthenticationMethods for alice not completed (verified: password)".into())
    );
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn one_key_cannot_serve_both_steps_of_publickey_publickey() {
    let (m, result) = both_ways_with(
        || with_lists(&[&[Method::PublicKey, Method::PublicKey]]),
        &[
            opened(),
            sign(C1),
            lookup("alice"),
            alice_proof(),
            alice_proof(),
            authenticated("alice"),
        ],
    );
    let replies = result.unwrap();
    assert_eq!(replies[3], Reply::Done);
    assert_eq!(replies[4], Reply::Failed("key already used on this connection".into()));
    assert_eq!(replies[5], Reply::Failed("the public key check failed".into()));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn a_pam_conversation_counts_as_keyboard_interactive_for_the_list() {
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().inner.rules.methods =
        vec![vec![Method::PublicKey, Method::KeyboardInteractive]];
    m.handle(pam_start("alice")).unwrap();
    assert_eq!(m.handle(pam_respond(&["right"])), Ok(Reply::Done));
    assert!(
        matches!(m.handle(by_keyboard("alice")), Ok(Reply::Failed(why)) if why.contains("not completed"))
    );
    let mut m = pam_ready("alice", Limits::default());
    m.backend_mut().inner.rules.methods =
        vec![vec![Method::PublicKey, Method::KeyboardInteractive]];
    assert_eq!(m.handle(alice_proof()), Ok(Reply::Done));
    m.handle(pam_start("alice")).unwrap();
    assert_eq!(m.handle(pam_respond(&["right"])), Ok(Reply::Done));
    assert_eq!(m.handle(by_keyboard("alice")), Ok(Reply::Done));
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn another_user_looked_up_forgets_the_methods_verified_for_the_first() {
    let mut m = Monitor::new(with_lists(&[KEY_THEN_PASSWORD]), Limits::default());
    for request in
        [opened(), sign(C1), lookup("alice"), alice_proof(), lookup("bob"), lookup("alice")]
    {
        m.handle(request).unwrap();
    }
    assert_eq!(m.handle(password("right")), Ok(Reply::Done));
    let login = m.handle(authenticated("alice"));
    assert!(matches!(login, Ok(Reply::Failed(why)) if why.ends_with("(verified: password)")));
}

#[test]
fn a_key_whose_algorithm_the_rules_refuse_fails_and_counts_as_a_failure() {
    let refusing = || {
        let mut backend = fake();
        backend.rules.public_key_algorithms = Some(vec!["rsa-sha2-512".into()]);
        backend
    };
    let (mut m, result) = both_ways_with(
        refusing,
        &[
            opened(),
            peer("192.0.2.7"),
            sign(C1),
            lookup("alice"),
            alice_proof(),
            authenticated("alice"),
        ],
    );
    let replies = result.unwrap();
    assert_eq!(
        replies[4],
        Reply::Failed("ssh-ed25519 not in PubkeyAcceptedAlgorithms for alice".into())
    );
    assert_eq!(replies[5], Reply::Failed("the public key check failed".into()));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
    // Counted: the connection that ends is a failed login, penalised.
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert_eq!(m.backend().penalised, vec![("192.0.2.7".parse().unwrap(), PenaltyKind::AuthFail)]);
    // A key the rules accept goes through.
    let (_, result) = both_ways_with(
        || {
            let mut backend = fake();
            backend.rules.public_key_algorithms = Some(vec!["ssh-ed25519".into()]);
            backend
        },
        &[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")],
    );
    assert_eq!(result.unwrap()[3..], [Reply::Done, Reply::Done]);
}

#[test]
fn a_certificate_whose_algorithm_the_rules_refuse_fails_and_verifies_no_one() {
    let blob = certificate(&ca_key(), "alice").to_blob().to_vec();
    let only_plain_keys = || {
        let mut backend = fake();
        backend.rules.public_key_algorithms = Some(vec!["ssh-ed25519".into()]);
        backend
    };
    let signed = cert_request(&blob, Some(&HASH));
    let (_, result) =
        both_ways_with(only_plain_keys, &[opened(), sign(C1), lookup("alice"), signed.clone()]);
    assert_eq!(
        result.unwrap()[3],
        Reply::Failed(format!("{CERT_ALGORITHM} not in PubkeyAcceptedAlgorithms for alice"))
    );
    let (_, result) = both_ways_with(
        only_plain_keys,
        &[opened(), sign(C1), lookup("alice"), signed, authenticated("alice")],
    );
    assert_eq!(result, Err(Violation::Unverified));
}

/// A fake under `PermitRootLogin forced-commands-only`, root's line for `client_key()` with
/// `options`.
fn forced_only(options: &str) -> Fake {
    let mut backend = fake();
    backend.rules.forced_command_only = true;
    options.clone_into(&mut backend.key_options);
    backend
}

fn root_login() -> Vec<Request> {
    vec![
        opened(),
        peer("192.0.2.7"),
        sign(C1),
        lookup("root"),
        proof(&client_key(), "root", &HASH, None),
        authenticated("root"),
    ]
}

#[test]
fn a_root_login_by_a_key_without_a_forced_command_is_refused_under_forced_commands_only() {
    let (m, result) = both_ways_with(|| forced_only(""), &root_login());
    let replies = result.unwrap();
    assert_eq!(replies[4], Reply::Done);
    assert_eq!(
        replies[5],
        Reply::Failed("ROOT LOGIN REFUSED for root: no verified key forces a command".into())
    );
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
    // Another user needs no forced command.
    let mut alice = root_login();
    alice[3] = lookup("alice");
    alice[4] = alice_proof();
    alice[5] = authenticated("alice");
    let (m, result) = both_ways_with(|| forced_only(""), &alice);
    assert_eq!(result.unwrap()[5], Reply::Done);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn a_root_login_by_a_key_whose_line_forces_a_command_is_accepted_under_forced_commands_only() {
    let (m, result) = both_ways_with(|| forced_only("command=\"uptime\""), &root_login());
    assert_eq!(result.unwrap()[4..], [Reply::Done, Reply::Done]);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn the_line_that_counts_is_the_first_whose_from_admits_the_client() {
    // A line forcing a command from elsewhere, then one without: from 192.0.2.7 the second
    // is the one sshd uses, and it forces nothing.
    let elsewhere = || {
        let mut backend = forced_only("");
        let key = client_key().public_key().clone();
        backend.extra_lines = vec![("from=\"10.9.9.9\",command=\"uptime\"".into(), key)];
        backend
    };
    let (_, result) = both_ways_with(elsewhere, &root_login());
    let replies = result.unwrap();
    assert_eq!(replies[4], Reply::Done);
    assert!(matches!(&replies[5], Reply::Failed(why) if why.starts_with("ROOT LOGIN REFUSED")));
    // A key whose only line admits another address is not authorized at all.
    let (_, result) = both_ways_with(|| forced_only("from=\"10.9.9.9\""), &root_login());
    assert_eq!(result.unwrap()[4], Reply::Failed("key not authorized".into()));
}

#[test]
fn a_root_certificate_that_forces_a_command_is_accepted_under_forced_commands_only() {
    let blob = certificate(&ca_key(), "root").to_blob().to_vec();
    let data =
        crate::userauth::signed_data(&HASH, "root", "ssh-connection", CERT_ALGORITHM, &blob, None);
    let signature = HostKeySigner::sign(&client_key(), SignatureAlgorithm::Ed25519, &data).unwrap();
    let mut requests = root_login();
    requests[4] = Request::AuthenticateCertificate {
        connection: C1,
        user: "root".into(),
        algorithm: CERT_ALGORITHM.into(),
        certificate: blob,
        host_bound: false,
        signature: Some(signature),
    };
    let (m, result) = both_ways_with(|| forced_only(""), &requests);
    let replies = result.unwrap();
    assert_eq!(replies[4], Reply::Authorized(cert_restrictions()));
    assert_eq!(replies[5], Reply::Done);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

#[test]
fn every_method_the_monitor_verified_must_be_allowed_not_only_the_one_the_worker_names() {
    // The configuration lets bob in by password only; the monitor verified his key, and the
    // worker claims a password login.
    let bob_key = proof(&client_key(), "bob", &HASH, None);
    let claim = Request::ConnectionAuthenticated {
        connection: C1,
        user: "bob".into(),
        method: "password".into(),
    };
    let (m, result) = both_ways(&[opened(), sign(C1), lookup("bob"), bob_key, claim]);
    let replies = result.unwrap();
    assert_eq!(replies[3], Reply::Done);
    assert_eq!(replies[4], Reply::Failed("publickey is not enabled for bob".into()));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
}

#[test]
fn without_rules_any_one_verified_method_completes_a_login_as_before() {
    assert!(LoginRules::default().methods_completed_by(&[Method::Password]));
    let rules = with_lists(&[KEY_THEN_PASSWORD, &[Method::KeyboardInteractive]]).rules;
    assert!(!rules.methods_completed_by(&[]));
    assert!(!rules.methods_completed_by(&[Method::PublicKey]));
    assert!(rules.methods_completed_by(&[Method::KeyboardInteractive]));
    assert!(rules.methods_completed_by(&[Method::Password, Method::PublicKey, Method::Password]));
}

// An `authorized_keys` line's `expiry-time`, against the backend's clock.

/// 2030-01-01T12:00:00Z, in seconds since the epoch.
const NOON_2030: u64 = 1_893_499_200;

/// A fake whose clock says `at` (seconds since the epoch), alice's line for `client_key()`
/// expiring at noon on 2030-01-01 (UTC).
fn expiring_at_noon_2030(at: u64) -> Fake {
    let mut backend = fake();
    backend.key_options = "expiry-time=\"203001011200Z\"".into();
    backend.clock = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at));
    backend
}

#[test]
fn a_key_whose_line_has_expired_fails_and_logs_no_one_in() {
    for at in [NOON_2030, NOON_2030 + 1, NOON_2030 + 86_400 * 365] {
        let (mut m, result) = both_ways_with(
            || expiring_at_noon_2030(at),
            &[opened(), peer("192.0.2.7"), sign(C1), lookup("alice"), alice_proof()],
        );
        assert_eq!(
            result.unwrap()[4],
            Reply::Failed("key expired (expiry-time)".into()),
            "at {at}"
        );
        assert_eq!(
            m.handle(authenticated("alice")),
            Ok(Reply::Failed("the public key check failed".into()))
        );
        assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
        // Counted as a failure: the connection that ends earns its source a penalty.
        let mut m = Monitor::new(expiring_at_noon_2030(at), Limits::default());
        for request in [opened(), peer("192.0.2.7"), sign(C1), lookup("alice"), alice_proof()] {
            m.handle(request).unwrap();
        }
        m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
        assert_eq!(
            m.backend().penalised,
            vec![("192.0.2.7".parse().unwrap(), PenaltyKind::AuthFail)]
        );
    }
}

#[test]
fn a_key_whose_line_expires_later_is_accepted() {
    for at in [NOON_2030 - 1, NOON_2030 - 86_400, 1_700_000_000] {
        let (m, result) = both_ways_with(
            || expiring_at_noon_2030(at),
            &[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")],
        );
        assert_eq!(result.unwrap()[3..], [Reply::Done, Reply::Done], "at {at}");
        assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
    }
}

#[test]
fn an_expired_line_gives_way_to_a_later_line_for_the_same_key() {
    let with_later_line = || {
        let mut backend = expiring_at_noon_2030(NOON_2030 + 1);
        backend.key_options.clear();
        let key = client_key().public_key().clone();
        backend.extra_lines = vec![("expiry-time=\"20300101\",command=\"uptime\"".into(), key)];
        backend
    };
    let (_, result) = both_ways_with(
        with_later_line,
        &[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")],
    );
    assert_eq!(result.unwrap()[3..], [Reply::Done, Reply::Done]);
}

// RequiredRSASize: an RSA key (a certificate's certified key) smaller than it is refused.

/// A `publickey` proof for alice by the 2048-bit RSA test key, with `rsa-sha2-512`.
fn rsa_proof() -> Request {
    let signer = crate::testing::fixtures::rsa_host_key();
    let blob = signer.public_key().to_blob();
    let data =
        crate::userauth::signed_data(&HASH, "alice", "ssh-connection", "rsa-sha2-512", &blob, None);
    Request::AuthenticatePublicKey {
        connection: C1,
        user: "alice".into(),
        algorithm: "rsa-sha2-512".into(),
        key_blob: blob,
        host_bound: false,
        signature: signer.sign(SignatureAlgorithm::RsaSha512, &data).unwrap(),
    }
}

/// A fake under `RequiredRSASize min`, alice's keys including the RSA test key.
fn requiring_rsa_bits(min: u32) -> Fake {
    let mut backend = fake();
    backend.rules.min_rsa_bits = Some(min);
    let key = crate::testing::fixtures::rsa_host_key().public_key().clone();
    backend.extra_lines = vec![("no-pty".into(), key)];
    backend
}

#[test]
fn an_rsa_key_smaller_than_required_rsa_size_fails_and_counts_as_a_failure() {
    let (mut m, result) = both_ways_with(
        || requiring_rsa_bits(3072),
        &[
            opened(),
            peer("192.0.2.7"),
            sign(C1),
            lookup("alice"),
            rsa_proof(),
            authenticated("alice"),
        ],
    );
    let replies = result.unwrap();
    assert_eq!(
        replies[4],
        Reply::Failed(
            "refusing RSA key for alice: Invalid key length (2048 < RequiredRSASize 3072)".into()
        )
    );
    assert_eq!(replies[5], Reply::Failed("the public key check failed".into()));
    assert_eq!(m.phase(C1), Some(&Phase::PreAuth));
    m.handle(Request::ConnectionClosed { connection: C1 }).unwrap();
    assert_eq!(m.backend().penalised, vec![("192.0.2.7".parse().unwrap(), PenaltyKind::AuthFail)]);
}

#[test]
fn an_rsa_key_of_required_rsa_size_and_other_key_types_are_accepted() {
    let (m, result) = both_ways_with(
        || requiring_rsa_bits(2048),
        &[opened(), sign(C1), lookup("alice"), rsa_proof(), authenticated("alice")],
    );
    assert_eq!(result.unwrap()[3..], [Reply::Done, Reply::Done]);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
    // Never fewer than OpenSSH's 1024, whatever the configuration says.
    let (_, result) = both_ways_with(
        || requiring_rsa_bits(512),
        &[opened(), sign(C1), lookup("alice"), rsa_proof()],
    );
    assert_eq!(result.unwrap()[3], Reply::Done);
    // The size applies to RSA keys only: an Ed25519 key has 256 bits.
    let (_, result) = both_ways_with(
        || requiring_rsa_bits(16_384),
        &[opened(), sign(C1), lookup("alice"), alice_proof(), authenticated("alice")],
    );
    assert_eq!(result.unwrap()[3..], [Reply::Done, Reply::Done]);
}

#[test]
fn a_certificate_of_an_rsa_key_smaller_than_required_rsa_size_fails_whatever_its_ca() {
    let signer = crate::testing::fixtures::rsa_host_key();
    let mut builder = crate::keys::cert::CertificateBuilder::user(signer.public_key().clone());
    builder.principals = vec!["alice".to_owned()];
    let ca = ca_key();
    let blob = builder
        .sign(ca.public_key(), |body| HostKeySigner::sign(&ca, SignatureAlgorithm::Ed25519, body))
        .unwrap()
        .to_blob()
        .to_vec();
    let algorithm = "rsa-sha2-512-cert-v01@openssh.com";
    let data =
        crate::userauth::signed_data(&HASH, "alice", "ssh-connection", algorithm, &blob, None);
    let request = Request::AuthenticateCertificate {
        connection: C1,
        user: "alice".into(),
        algorithm: algorithm.into(),
        certificate: blob,
        host_bound: false,
        signature: Some(signer.sign(SignatureAlgorithm::RsaSha512, &data).unwrap()),
    };
    let requests = [opened(), sign(C1), lookup("alice"), request, authenticated("alice")];
    let (_, result) = both_ways_with(|| requiring_rsa_bits(4096), &requests[..4]);
    assert_eq!(
        result.unwrap()[3],
        Reply::Failed(
            "refusing RSA key for alice: Invalid key length (2048 < RequiredRSASize 4096)".into()
        )
    );
    let (_, result) = both_ways_with(|| requiring_rsa_bits(4096), &requests);
    assert_eq!(result, Err(Violation::Unverified));
    let (m, result) = both_ways_with(|| requiring_rsa_bits(2048), &requests);
    assert_eq!(result.unwrap()[3..], [Reply::Authorized(cert_restrictions()), Reply::Done]);
    assert_eq!(m.phase(C1), Some(&Phase::Authenticated));
}

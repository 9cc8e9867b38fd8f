//! Backends against files in a scratch directory and requests from a real userauth server.

mod cert;

use std::cell::Cell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use twine_core::testing::Clock;

use super::*;
use crate::keys::PublicKey;
use crate::server::{Account, Restrictions};
use crate::userauth::msgs::{MethodData, PublicKeyData, UserauthInfoResponse, UserauthRequest};
use crate::userauth::{
    self, Attempt, Decision, FailureDelay, InfoRequest, Password, Prompt, ServerEvent,
};
use crate::wire::Writer;

/// A directory removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("twine-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(n: u8) -> PublicKey {
    PublicKey::Ed25519([n; 32])
}

/// A home directory with `.ssh/authorized_keys` holding `lines`, and its account.
struct Home {
    _scratch: Scratch,
    account: Account,
}

impl Home {
    fn new(lines: &[String]) -> Self {
        let scratch = Scratch::new("home");
        let home = scratch.0.join("alice");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        for dir in [&home, &home.join(".ssh")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let file = home.join(".ssh/authorized_keys");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let me = Account::current().unwrap();
        let account = Account { name: "alice".into(), home, ..me };
        Self { _scratch: scratch, account }
    }

    fn backend(&self) -> AuthorizedKeys {
        let account = self.account.clone();
        AuthorizedKeys::new()
            .with_accounts(move |name| Ok((name == "alice").then(|| account.clone())))
            .with_local_offset(0)
    }

    fn file(&self) -> PathBuf {
        self.account.home.join(".ssh/authorized_keys")
    }
}

/// Makes userauth request ids the way the server adapter gets them: from a userauth server.
struct Requests {
    server: userauth::Server<Restrictions>,
    clock: Clock,
    facts: Rc<ConnectionFacts>,
    now: SystemTime,
}

impl Requests {
    fn new() -> Self {
        let server = Self::fresh_server();
        let peer = "192.0.2.7:50000".parse().ok();
        let facts = Rc::new(ConnectionFacts::new(ConnectionId(1), peer, None));
        Self { server, clock: Clock::new(), facts, now: SystemTime::now() }
    }

    fn fresh_server() -> userauth::Server<Restrictions> {
        let mut config = userauth::ServerConfig::new([7; 32]);
        config.failure_delay = FailureDelay::dangerous_none();
        userauth::Server::new(Arc::new(config), b"session", b"host key").unwrap()
    }

    fn with_peer_ip(mut self, ip: &str) -> Self {
        let peer = format!("{ip}:50000").parse().ok();
        self.facts = Rc::new(ConnectionFacts::new(ConnectionId(1), peer, None));
        self
    }

    fn at(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }

    /// A first request on a fresh userauth server (each test request stands alone).
    fn send(&mut self, user: &str, method: MethodData<'_>) -> AuthRequest {
        self.server = Self::fresh_server();
        let mut payload = Vec::new();
        UserauthRequest { user, service: "ssh-connection", method }
            .encode(&mut Writer::new(&mut payload));
        let _ = self.server.handle_payload(Instant::now(), &payload).unwrap();
        self.next_request()
    }

    fn next_request(&mut self) -> AuthRequest {
        while let Some(event) = self.server.poll_event() {
            if let ServerEvent::AuthRequested { id, user, attempt, .. } = event {
                let offload = Offload::inline(self.clock.scheduler());
                return AuthRequest::new(
                    id,
                    user,
                    attempt,
                    Rc::clone(&self.facts),
                    self.now,
                    offload,
                );
            }
        }
        panic!("no auth request");
    }

    /// A public key request (the query step: the backends answer both steps alike, and the
    /// signed step needs a signature the userauth tests already cover).
    fn signed(&mut self, user: &str, key: &PublicKey) -> AuthRequest {
        let blob = key.to_blob();
        let data = PublicKeyData {
            algorithm: "ssh-ed25519",
            key_blob: &blob,
            host_key_blob: None,
            signature: None,
        };
        self.send(user, MethodData::PublicKey(data))
    }

    fn password(&mut self, user: &str, password: &str) -> AuthRequest {
        self.send(user, MethodData::Password { password: password.as_bytes(), new_password: None })
    }

    fn keyboard(&mut self, user: &str) -> AuthRequest {
        self.send(user, MethodData::KeyboardInteractive { language: "", submethods: "" })
    }

    /// Answers `request` with `decision`, then sends `responses` to the questions asked.
    fn respond(
        &mut self,
        request: &AuthRequest,
        decision: Decision<Restrictions>,
        responses: &[&str],
    ) -> AuthRequest {
        self.server.auth_decided(Instant::now(), request.id, decision).unwrap();
        let mut out = Vec::new();
        while self.server.poll_payload(&mut out) {
            out.clear();
        }
        let mut payload = Vec::new();
        let responses = responses.iter().map(|r| r.as_bytes()).collect();
        UserauthInfoResponse { responses }.encode(&mut Writer::new(&mut payload));
        let _ = self.server.handle_payload(Instant::now(), &payload).unwrap();
        self.next_request()
    }

    /// Runs the clock until `deferred` has a result.
    fn settle<T: 'static>(&self, deferred: &Deferred<T>) -> T {
        for _ in 0..32 {
            if let Some(result) = deferred.take_result() {
                return result.unwrap();
            }
            self.clock.advance(Duration::ZERO);
        }
        panic!("the Deferred never fired");
    }

    fn login(&self) -> LoginRequest {
        let offload = Offload::inline(self.clock.scheduler());
        LoginRequest::new("alice", Method::PublicKey, Rc::clone(&self.facts), offload)
    }
}

fn accepted(decision: Decision<Restrictions>) -> Restrictions {
    match decision {
        Decision::Accept(restrictions) => restrictions,
        other => panic!("expected an accept, got {other:?}"),
    }
}

fn is_reject(decision: &Decision<Restrictions>) -> bool {
    matches!(decision, Decision::Reject)
}

fn line(options: &str, key: &PublicKey) -> String {
    if options.is_empty() {
        key.to_openssh()
    } else {
        format!("{options} {}", key.to_openssh())
    }
}

/// A key in the file logs in with no restrictions; a key not in it does not.
#[test]
fn accepts_a_listed_key_and_rejects_others() {
    let home = Home::new(&[line("", &key(1))]);
    let backend = home.backend();
    let mut requests = Requests::new();
    let listed = requests.signed("alice", &key(1));
    assert_eq!(accepted(requests.settle(&backend.decide(&listed))), Restrictions::none());
    let other = requests.signed("alice", &key(2));
    assert!(is_reject(&requests.settle(&backend.decide(&other))));
    let stranger = requests.signed("mallory", &key(1));
    assert!(is_reject(&requests.settle(&backend.decide(&stranger))));
}

/// Every option of the matching line becomes the session's restrictions.
#[test]
fn turns_the_lines_options_into_restrictions() {
    let options = "restrict,pty,command=\"/usr/bin/backup\",environment=\"MODE=nightly\",\
                   permitopen=\"db.internal:5432\",permitlisten=\"localhost:9000\"";
    let home = Home::new(&[line(options, &key(1))]);
    let mut requests = Requests::new();
    let request = requests.signed("alice", &key(1));
    let r = accepted(requests.settle(&home.backend().decide(&request)));
    assert_eq!(r.forced_command.as_deref(), Some("/usr/bin/backup"));
    assert_eq!(r.environment, vec![("MODE".to_owned(), "nightly".to_owned())]);
    assert!(r.pty && !r.port_forwarding && !r.agent_forwarding && !r.x11_forwarding && !r.user_rc);
    assert_eq!(r.permit_open.as_ref().map(Vec::len), Some(1));
    assert!(r.permit_listen.is_some());
}

/// `from=` that does not match the client's address refuses the key; one that matches
/// admits it.
#[test]
fn from_mismatch_is_a_rejection() {
    let home = Home::new(&[line("from=\"10.0.0.0/8,!10.0.0.66\"", &key(1))]);
    let backend = home.backend();
    let mut outside = Requests::new().with_peer_ip("192.0.2.7");
    let request = outside.signed("alice", &key(1));
    assert!(is_reject(&outside.settle(&backend.decide(&request))));
    let mut negated = Requests::new().with_peer_ip("10.0.0.66");
    let request = negated.signed("alice", &key(1));
    assert!(is_reject(&negated.settle(&backend.decide(&request))));
    let mut inside = Requests::new().with_peer_ip("10.1.2.3");
    let request = inside.signed("alice", &key(1));
    assert!(matches!(inside.settle(&backend.decide(&request)), Decision::Accept(_)));
}

/// A key past its `expiry-time` is refused; before it, admitted (the time given is used, in
/// UTC with `Z` and in the configured local offset without).
#[test]
fn expired_key_is_a_rejection() {
    let home = Home::new(&[line("expiry-time=\"20300101Z\"", &key(1))]);
    let backend = home.backend();
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    let new_year_2030 = 1_893_456_000;
    let mut before = Requests::new().at(at(new_year_2030 - 1));
    let request = before.signed("alice", &key(1));
    assert!(matches!(before.settle(&backend.decide(&request)), Decision::Accept(_)));
    let mut after = Requests::new().at(at(new_year_2030));
    let request = after.signed("alice", &key(1));
    assert!(is_reject(&after.settle(&backend.decide(&request))));
    // Local time two hours east of UTC: 2030-01-01 00:00 local is 22:00 UTC the day before.
    let home = Home::new(&[line("expiry-time=\"203001010000\"", &key(1))]);
    let backend = home.backend().with_local_offset(7200);
    let mut late = Requests::new().at(at(new_year_2030 - 7200));
    let request = late.signed("alice", &key(1));
    assert!(is_reject(&late.settle(&backend.decide(&request))));
}

/// When the first line for a key refuses the client, a later line for the same key decides.
#[test]
fn a_later_line_for_the_same_key_can_still_admit() {
    let home = Home::new(&[
        line("from=\"203.0.113.0/24\",command=\"first\"", &key(1)),
        line("command=\"second\"", &key(1)),
    ]);
    let mut requests = Requests::new();
    let request = requests.signed("alice", &key(1));
    let r = accepted(requests.settle(&home.backend().decide(&request)));
    assert_eq!(r.forced_command.as_deref(), Some("second"));
}

/// With strict modes, a group-writable file or directory is ignored; without, it is used.
#[test]
fn strict_modes_refuse_writable_files_and_directories() {
    let home = Home::new(&[line("", &key(1))]);
    let mut requests = Requests::new();
    let set_mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(&home.file(), 0o620);
    let request = requests.signed("alice", &key(1));
    assert!(is_reject(&requests.settle(&home.backend().decide(&request))));
    let relaxed = home.backend().with_strict_modes(false);
    assert!(matches!(requests.settle(&relaxed.decide(&request)), Decision::Accept(_)));
    set_mode(&home.file(), 0o600);
    set_mode(&home.account.home.join(".ssh"), 0o777);
    assert!(is_reject(&requests.settle(&home.backend().decide(&request))));
    set_mode(&home.account.home.join(".ssh"), 0o700);
    assert!(matches!(requests.settle(&home.backend().decide(&request)), Decision::Accept(_)));
}

/// `%h`, `%u` and `%%` expand in `AuthorizedKeysFile`; files that do not exist are skipped.
#[test]
fn expands_tokens_in_the_file_list() {
    let home = Home::new(&[]);
    std::fs::write(home.account.home.join("keys-alice%"), line("", &key(3))).unwrap();
    let backend = home.backend().with_files(["/nonexistent/keys", "%h/keys-%u%%"]);
    let mut requests = Requests::new();
    let request = requests.signed("alice", &key(3));
    assert!(matches!(requests.settle(&backend.decide(&request)), Decision::Accept(_)));
    assert_eq!(
        authorized_keys::expand_path(".ssh/k-%U", &home.account),
        home.account.home.join(format!(".ssh/k-{}", home.account.uid))
    );
}

/// Passwords are not the authorized_keys backend's business.
#[test]
fn authorized_keys_rejects_passwords() {
    let home = Home::new(&[line("", &key(1))]);
    let mut requests = Requests::new();
    let request = requests.password("alice", "anything");
    assert!(is_reject(&requests.settle(&home.backend().decide(&request))));
}

/// The static table checks plain passwords, crypt hashes and keys, and gives the user's
/// restrictions.
#[test]
fn static_users_check_passwords_hashes_and_keys() {
    let hash = "$6$saltsaltsalt$/YcSJBZ1GwOaYU2XCNxvWBX3MbYsX7qkf0.0L28t35vap3Pr7yS0JA8iUjaUrIKpD1\
                vbB841OQkrlcX47Jjuy/";
    let users = StaticUsers::new()
        .with_password("alice", "open sesame")
        .with_restrictions("alice", Restrictions::restricted())
        .with_password_hash("bob", hash)
        .unwrap()
        .with_key("bob", key(9));
    let mut requests = Requests::new();
    let cases = [
        (requests.password("alice", "open sesame"), true),
        (requests.password("alice", "open sesame!"), false),
        (requests.password("bob", "hunter2"), true),
        (requests.password("bob", "hunter"), false),
        (requests.password("carol", "open sesame"), false),
        (requests.signed("bob", &key(9)), true),
        (requests.signed("bob", &key(8)), false),
        (requests.signed("alice", &key(9)), false),
    ];
    for (request, ok) in cases {
        let decision = requests.settle(&users.decide(&request));
        assert_eq!(
            matches!(decision, Decision::Accept(_)),
            ok,
            "{} {:?}",
            request.user,
            request.attempt
        );
    }
    let request = requests.password("alice", "open sesame");
    assert_eq!(accepted(requests.settle(&users.decide(&request))), Restrictions::restricted());
    assert!(StaticUsers::new().with_password_hash("x", "$1$md5$x").is_err());
}

/// A backend whose answer is fixed, counting how often it was asked.
struct Fixed {
    decision: Option<Decision<Restrictions>>,
    asked: Rc<Cell<u32>>,
    account: AccountStatus,
    environment: Vec<(String, String)>,
}

impl Fixed {
    fn new(decision: Option<Decision<Restrictions>>) -> (Self, Rc<Cell<u32>>) {
        let asked = Rc::new(Cell::new(0));
        let fixed = Self {
            decision,
            asked: Rc::clone(&asked),
            account: AccountStatus::Allowed,
            environment: Vec::new(),
        };
        (fixed, asked)
    }
}

impl AuthBackend for Fixed {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        self.asked.set(self.asked.get() + 1);
        match &self.decision {
            Some(decision) => request.offload.succeed(decision.clone()),
            None => {
                let failed = request.offload.deferred();
                failed
                    .errback(twine_core::Error::new(twine_core::ErrorKind::Other, "backend down"));
                failed
            }
        }
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        login.offload.succeed(self.account.clone())
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        login.offload.succeed(SessionGrant { environment: self.environment.clone() })
    }
}

/// A chain asks its backends in order until one does not reject; failures count as
/// rejections; an empty chain rejects.
#[test]
fn chain_takes_the_first_answer_that_is_not_a_rejection() {
    let (failing, asked_failing) = Fixed::new(None);
    let (rejecting, asked_rejecting) = Fixed::new(Some(Decision::Reject));
    let (accepting, asked_accepting) =
        Fixed::new(Some(Decision::Accept(Restrictions::restricted())));
    let (never, asked_never) = Fixed::new(Some(Decision::Reject));
    let chain = Chain::new().with(failing).with(rejecting).with(accepting).with(never);
    let mut requests = Requests::new();
    let request = requests.password("alice", "pw");
    assert_eq!(accepted(requests.settle(&chain.decide(&request))), Restrictions::restricted());
    let counts: Vec<u32> = [asked_failing, asked_rejecting, asked_accepting, asked_never]
        .iter()
        .map(|c| c.get())
        .collect();
    assert_eq!(counts, [1, 1, 1, 0]);
    assert!(is_reject(&requests.settle(&Chain::new().decide(&request))));
}

/// A keyboard-interactive conversation's answers go back to the backend that asked, over
/// several rounds.
#[test]
fn chain_routes_keyboard_interactive_answers_to_the_asking_backend() {
    struct Questions;
    impl AuthBackend for Questions {
        fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
            let ask = |text: &str| {
                Decision::InfoRequest(InfoRequest {
                    name: String::new(),
                    instruction: String::new(),
                    prompts: vec![Prompt { text: text.into(), echo: false }],
                })
            };
            let decision = match &request.attempt {
                Attempt::KeyboardInteractive { .. } => ask("Password: "),
                Attempt::KeyboardInteractiveResponses { responses, .. } => {
                    match responses.first().map(Password::as_bytes) {
                        Some(b"pw") => ask("Code: "),
                        Some(b"123456") => Decision::Accept(Restrictions::none()),
                        _ => Decision::Reject,
                    }
                }
                _ => Decision::Reject,
            };
            request.offload.succeed(decision)
        }
    }
    let (first, asked_first) = Fixed::new(Some(Decision::Reject));
    let chain = Chain::new().with(first).with(Questions);
    let mut requests = Requests::new();
    let start = requests.keyboard("alice");
    let round1 = requests.settle(&chain.decide(&start));
    assert!(matches!(round1, Decision::InfoRequest(_)));
    let answers = requests.respond(&start, round1, &["pw"]);
    let round2 = requests.settle(&chain.decide(&answers));
    assert!(matches!(&round2, Decision::InfoRequest(r) if r.prompts[0].text == "Code: "));
    let answers = requests.respond(&answers, round2, &["123456"]);
    assert!(matches!(requests.settle(&chain.decide(&answers)), Decision::Accept(_)));
    assert_eq!(asked_first.get(), 1, "the first backend saw only the start");
}

/// Account checks must pass in every backend; session environments are gathered from all.
#[test]
fn chain_checks_every_account_and_gathers_environments() {
    let (mut a, _) = Fixed::new(Some(Decision::Reject));
    a.environment = vec![("A".into(), "1".into())];
    let (mut b, _) = Fixed::new(Some(Decision::Reject));
    b.environment = vec![("B".into(), "2".into())];
    let requests = Requests::new();
    let chain = Chain::new().with(a).with(b);
    let login = requests.login();
    assert_eq!(requests.settle(&chain.check_account(&login)), AccountStatus::Allowed);
    let grant = requests.settle(&chain.open_session(&login));
    assert_eq!(grant.environment, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
    let (mut locked, _) = Fixed::new(Some(Decision::Reject));
    locked.account = AccountStatus::Denied { reason: "locked".into() };
    let chain = Chain::new().with(Fixed::new(None).0).with(locked);
    let status = requests.settle(&chain.check_account(&login));
    assert_eq!(status, AccountStatus::Denied { reason: "locked".into() });
}

/// An `AuthorizedKeysCommand`'s lines come before the files': the first line for the key
/// decides (its options are the login's), a key the files list still logs in, one neither has
/// is refused; without an `AuthorizedKeysCommandUser` the command does not run. What a
/// monitor hands its worker for a key starts with the command's lines.
#[test]
fn the_authorized_keys_command_s_lines_come_before_the_files() {
    let home = Home::new(&[line("", &key(1)), line("", &key(3))]);
    let me = Account::current().unwrap().name;
    let command = format!("/bin/echo 'command=\"from-command\"' {}", key(1).to_openssh());
    let backend =
        home.backend().with_authorized_keys_command(Some(command.clone()), Some(me.clone()));
    let now = SystemTime::now();
    let check = |backend: &AuthorizedKeys, n: u8| {
        backend.check_attempt("alice", &key(n), None, "192.0.2.7", now)
    };
    let Decision::Accept(r) = check(&backend, 1) else { panic!("the command's key refused") };
    assert_eq!(r.forced_command.as_deref(), Some("from-command"));
    assert!(matches!(check(&backend, 3), Decision::Accept(_)), "the file's key refused");
    assert!(is_reject(&check(&backend, 2)), "a key neither lists was accepted");
    let text = backend.read_all_for(&home.account, Some((&key(1), None))).unwrap();
    assert!(text.starts_with("command=\"from-command\" ssh-ed25519 "), "{text}");
    assert!(!backend.read_all(&home.account).unwrap().contains("from-command"));
    let no_user =
        home.backend().with_authorized_keys_command(Some(command.clone()), None::<String>);
    let Decision::Accept(r) = check(&no_user, 1) else { panic!("the file's key refused") };
    assert_eq!(r.forced_command, None, "the command ran without AuthorizedKeysCommandUser");
    let unknown =
        home.backend().with_authorized_keys_command(Some(command), Some("no-such-user-x"));
    let Decision::Accept(r) = check(&unknown, 1) else { panic!("the file's key refused") };
    assert_eq!(r.forced_command, None, "the command ran as a user that does not exist");
    let failing = home.backend().with_authorized_keys_command(Some("/bin/false"), Some(me));
    assert!(is_reject(&check(&failing, 2)), "a failed command's key was accepted");
}

/// `TZ` is read as the C library reads it: empty is UTC, a zone name or a POSIX rule gives that
/// zone's offset, and a value that is neither is an error (the caller then reads `expiry-time=`
/// as UTC, and logs why).
#[test]
fn tz_values_give_the_zones_the_c_library_gives() {
    use super::authorized_keys::time_zone_for;
    // 2026-01-01T00:00:00Z: winter in New York.
    let january = 1_767_225_600;
    let offset = |tz: &str| {
        time_zone_for(Some(tz)).map(|zone| zone.find_local_time_type(january).unwrap().ut_offset())
    };
    assert_eq!(offset("").unwrap(), 0);
    assert_eq!(offset("XYZ-3").unwrap(), 3 * 3600, "a POSIX rule: three hours east");
    if Path::new("/usr/share/zoneinfo/America/New_York").exists() {
        assert_eq!(offset("America/New_York").unwrap(), -5 * 3600);
    }
    assert!(offset("Nowhere/Not_A_Zone").is_err());
}

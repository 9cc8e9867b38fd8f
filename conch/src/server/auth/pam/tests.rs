//! The PAM backend against real PAM: test users made with `useradd`, PAM services of our own
//! in `/etc/pam.d`, requests from a real userauth server, answers through a real reactor.
//!
//! These need root (CI runs as root); as anyone else each test says it was skipped and passes.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use twine_core::Reactor;

use super::transaction::THREAD_NAME;
use super::*;
use crate::server::auth::tests::Scratch;
use crate::server::Offload;
use crate::userauth::msgs::{MethodData, UserauthInfoResponse, UserauthRequest};
use crate::userauth::{self, FailureDelay, Method, Prompt, ServerEvent};
use crate::wire::Writer;

/// Changes to the user database take a lock that `useradd` and friends fail on when busy.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A number for each fixture, unique in this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// What every test here needs: a user, a PAM service, and a reactor.
struct Fixture {
    user: TestUser,
    service: Service,
    reactor: Reactor,
}

impl Fixture {
    /// A user with `password` and the service `make` writes; `None` (and a note saying the
    /// test was skipped) when not root.
    fn new(test: &str, password: &str, make: impl FnOnce() -> Service) -> Option<Self> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("{test}: skipped, PAM tests need root (useradd, /etc/pam.d)");
            return None;
        }
        let user = TestUser::new(password);
        Some(Self { user, service: make(), reactor: Reactor::new().unwrap() })
    }
}

/// Runs a system tool, feeding it `input`; panics unless it succeeds.
fn run(program: &str, args: &[&str], input: &str) {
    let mut child = Process::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{program}: {err}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{program} {args:?}: {stderr}");
}

/// A user of the system with a home and a password, removed when dropped.
struct TestUser {
    name: String,
}

impl TestUser {
    fn new(password: &str) -> Self {
        let name = format!("twpam{}u{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let user = Self { name };
        user.admin("useradd", &["-m", "-s", "/bin/sh", &user.name], "");
        user.admin("chpasswd", &[], &format!("{}:{password}\n", user.name));
        user
    }

    /// Runs an account tool with the user database lock held.
    fn admin(&self, program: &str, args: &[&str], input: &str) {
        let _lock = ACCOUNTS.lock().unwrap_or_else(PoisonError::into_inner);
        run(program, args, input);
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _lock = ACCOUNTS.lock().unwrap_or_else(PoisonError::into_inner);
        let removed =
            Process::new("userdel").args(["-r", "-f", &self.name]).stderr(Stdio::null()).status();
        if !removed.is_ok_and(|status| status.success()) {
            eprintln!("could not remove test user {}", self.name);
        }
    }
}

/// A PAM service of our own (`/etc/pam.d/<name>`) with a scratch directory for the scripts
/// and files its modules use; both removed when dropped.
struct Service {
    name: String,
    file: PathBuf,
    scratch: Scratch,
}

impl Service {
    /// A service whose configuration is `config`, with `{dir}` standing for the scratch
    /// directory.
    fn new(config: &str) -> Self {
        let name =
            format!("twine-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let scratch = Scratch::new("pam");
        let file = PathBuf::from("/etc/pam.d").join(&name);
        let dir = scratch.0.display().to_string();
        fs::write(&file, config.replace("{dir}", &dir)).unwrap();
        Self { name, file, scratch }
    }

    /// The usual stack: `pam_unix` for everything (no failure delay of its own).
    fn unix() -> Self {
        Self::new(
            "auth required pam_unix.so nodelay\n\
             account required pam_unix.so\n\
             password required pam_unix.so\n\
             session required pam_unix.so\n",
        )
    }

    /// Writes an executable `script` into the scratch directory, for `pam_exec`.
    fn script(&self, name: &str, body: &str) {
        let path = self.scratch.0.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The lines a script appended to the scratch file `name`.
    fn lines(&self, name: &str) -> Vec<String> {
        let text = fs::read_to_string(self.scratch.0.join(name)).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    fn backend(&self) -> PamBackend {
        PamBackend::new().with_service(&self.name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// One client connection as the backend sees it: requests made by a real userauth server,
/// answered through a real reactor.
struct Client {
    reactor: Reactor,
    server: userauth::Server<Restrictions>,
    facts: Rc<ConnectionFacts>,
}

impl Client {
    fn new(reactor: &Reactor) -> Self {
        let id = u64::from(NEXT.fetch_add(1, Ordering::SeqCst));
        let peer = "127.0.0.1:50022".parse().ok();
        let local = "127.0.0.1:2222".parse().ok();
        let facts = Rc::new(ConnectionFacts::new(ConnectionId(id), peer, local));
        Self { reactor: reactor.clone(), server: fresh_server(), facts }
    }

    fn offload(&self) -> Offload {
        Offload::reactor(&self.reactor)
    }

    fn password(&mut self, user: &str, password: &str) -> AuthRequest {
        let method = MethodData::Password { password: password.as_bytes(), new_password: None };
        self.send(user, method)
    }

    fn change_password(&mut self, user: &str, old: &str, new: &str) -> AuthRequest {
        let method =
            MethodData::Password { password: old.as_bytes(), new_password: Some(new.as_bytes()) };
        self.send(user, method)
    }

    fn keyboard(&mut self, user: &str) -> AuthRequest {
        self.send(user, MethodData::KeyboardInteractive { language: "", submethods: "" })
    }

    /// A first request on a fresh userauth server (each attempt stands alone here).
    fn send(&mut self, user: &str, method: MethodData<'_>) -> AuthRequest {
        self.server = fresh_server();
        let mut payload = Vec::new();
        UserauthRequest { user, service: "ssh-connection", method }
            .encode(&mut Writer::new(&mut payload));
        let _ = self.server.handle_payload(Instant::now(), &payload).unwrap();
        self.next_request()
    }

    /// Gives userauth the backend's `decision` (an info request), then answers its prompts.
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

    fn next_request(&mut self) -> AuthRequest {
        while let Some(event) = self.server.poll_event() {
            if let ServerEvent::AuthRequested { id, user, attempt, .. } = event {
                let facts = Rc::clone(&self.facts);
                return AuthRequest::new(
                    id,
                    user,
                    attempt,
                    facts,
                    SystemTime::now(),
                    self.offload(),
                );
            }
        }
        panic!("no auth request");
    }

    fn login(&self, user: &str, method: Method) -> LoginRequest {
        LoginRequest::new(user, method, Rc::clone(&self.facts), self.offload())
    }

    /// Runs the reactor until `deferred` fires (at most a minute, or the test fails).
    fn wait<T: 'static>(&self, deferred: Deferred<T>) -> T {
        let reactor = self.reactor.clone();
        let watchdog = self.reactor.call_later(Duration::from_secs(60), move || reactor.stop());
        let result = self.reactor.run_until(deferred);
        watchdog.cancel();
        result.expect("the backend answered within a minute")
    }

    /// `backend`'s decision on `request`.
    fn decide(&self, backend: &PamBackend, request: &AuthRequest) -> Decision<Restrictions> {
        self.wait(backend.decide(request))
    }

    /// `backend`'s last decision on a conversation, past the rounds without prompts that show
    /// what PAM said at the end; with what they said.
    fn outcome(
        &mut self,
        backend: &PamBackend,
        request: &AuthRequest,
    ) -> (Decision<Restrictions>, String) {
        let mut request = request.clone();
        let mut said = String::new();
        for _ in 0..4 {
            match self.decide(backend, &request) {
                Decision::InfoRequest(info) if info.prompts.is_empty() => {
                    said.push_str(&info.instruction);
                    request = self.respond(&request, Decision::InfoRequest(info), &[]);
                }
                decision => return (decision, said),
            }
        }
        panic!("the conversation never ended");
    }
}

fn fresh_server() -> userauth::Server<Restrictions> {
    let mut config = userauth::ServerConfig::new([7; 32]);
    config.failure_delay = FailureDelay::dangerous_none();
    userauth::Server::new(Arc::new(config), b"session", b"host key").unwrap()
}

fn info(decision: Decision<Restrictions>) -> InfoRequest {
    match decision {
        Decision::InfoRequest(info) => info,
        other => panic!("expected an info request, got {other:?}"),
    }
}

fn assert_accepted(decision: &Decision<Restrictions>) {
    assert!(
        matches!(decision, Decision::Accept(r) if *r == Restrictions::default()),
        "{decision:?}"
    );
}

fn assert_rejected(decision: &Decision<Restrictions>) {
    assert!(matches!(decision, Decision::Reject), "{decision:?}");
}

/// The ids of this process's threads named as PAM transaction threads.
fn pam_threads() -> HashSet<String> {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else { return HashSet::new() };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            let name = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            name.trim() == THREAD_NAME
        })
        .map(|task| task.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Ends the connections of `clients` and checks that every PAM thread of `backend` ends.
fn ended(backend: &PamBackend, clients: &[&Client]) {
    for client in clients {
        backend.connection_ended(&client.facts);
    }
    assert_eq!(settled(backend), 0, "every PAM thread ended");
}

/// Waits (a bounded while) for `backend`'s transaction threads to end; how many are left.
fn settled(backend: &PamBackend) -> usize {
    for _ in 0..600 {
        if backend.running_transactions() == 0 {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    backend.running_transactions()
}

/// The right password is accepted and the wrong one rejected, each in its own transaction
/// whose thread ends with the attempt unless it let the user in.
#[test]
fn accepts_the_right_password_and_rejects_a_wrong_one() {
    let Some(Fixture { user, service, reactor }) = Fixture::new(
        "accepts_the_right_password_and_rejects_a_wrong_one",
        "correct horse",
        Service::unix,
    ) else {
        return;
    };
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let wrong = client.password(&user.name, "battery staple");
    assert_rejected(&client.decide(&backend, &wrong));
    assert_eq!(settled(&backend), 0, "a rejected attempt's thread ends");

    let right = client.password(&user.name, "correct horse");
    assert_accepted(&client.decide(&backend, &right));
    assert_eq!(backend.running_transactions(), 1, "the login keeps its transaction");
    let allowed = client.wait(backend.check_account(&client.login(&user.name, Method::Password)));
    assert_eq!(allowed, AccountStatus::Allowed);

    ended(&backend, &[&client]);
}

/// An unknown user goes through the PAM stack just as a wrong password does (so the time a
/// refusal takes is PAM's and userauth's, the same for both), and is rejected alike.
#[test]
fn unknown_users_go_through_pam_like_wrong_passwords() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("unknown_users_go_through_pam_like_wrong_passwords", "correct horse", || {
            Service::new(
                "auth optional pam_exec.so quiet {dir}/log.sh\n\
             auth required pam_unix.so nodelay\n\
             account required pam_unix.so\n",
            )
        })
    else {
        return;
    };
    service.script("log.sh", "echo \"$PAM_TYPE $PAM_USER\" >> \"$(dirname \"$0\")/seen\"");
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let nobody = format!("{}x", user.name);
    let unknown = client.password(&nobody, "correct horse");
    assert_rejected(&client.decide(&backend, &unknown));
    let wrong = client.password(&user.name, "wrong");
    assert_rejected(&client.decide(&backend, &wrong));

    let expected = vec![format!("auth {nobody}"), format!("auth {}", user.name)];
    assert_eq!(service.lines("seen"), expected);
    ended(&backend, &[&client]);
}

/// Keyboard-interactive relays PAM's password prompt as one round; the right answer gets in,
/// a wrong one does not.
#[test]
fn keyboard_interactive_relays_the_pam_prompt() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("keyboard_interactive_relays_the_pam_prompt", "s3cret", Service::unix)
    else {
        return;
    };
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    for (answer, accepted) in [("wrong", false), ("s3cret", true)] {
        let start = client.keyboard(&user.name);
        let round = info(client.decide(&backend, &start));
        assert_eq!(round.prompts, vec![Prompt { text: "Password: ".into(), echo: false }]);
        assert_eq!(round.instruction, "");
        let answered = client.respond(&start, Decision::InfoRequest(round), &[answer]);
        let (decision, _) = client.outcome(&backend, &answered);
        if accepted {
            assert_accepted(&decision);
        } else {
            assert_rejected(&decision);
        }
    }
    ended(&backend, &[&client]);
}

/// A stack that asks twice (the password, then a second module's question) makes two rounds;
/// what a module says in between is the second round's instruction.
#[test]
fn keyboard_interactive_relays_two_rounds_with_the_modules_text() {
    let Some(Fixture { user, service, reactor }) = Fixture::new(
        "keyboard_interactive_relays_two_rounds_with_the_modules_text",
        "s3cret",
        || {
            Service::new(
                "auth requisite pam_unix.so nodelay\n\
             auth optional pam_echo.so Second factor for %u\n\
             auth required pam_stress.so\n\
             account required pam_unix.so\n",
            )
        },
    ) else {
        return;
    };
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let start = client.keyboard(&user.name);
    let first = info(client.decide(&backend, &start));
    assert_eq!(first.prompts[0].text, "Password: ");
    let answered = client.respond(&start, Decision::InfoRequest(first), &["s3cret"]);
    let second = info(client.decide(&backend, &answered));
    assert_eq!(second.instruction, format!("Second factor for {}", user.name));
    assert_eq!(second.prompts, vec![Prompt { text: "STRESS Password: ".into(), echo: false }]);
    let answered = client.respond(&answered, Decision::InfoRequest(second), &["123456"]);
    assert_accepted(&client.outcome(&backend, &answered).0);

    // A wrong first answer ends the conversation before the second question.
    let start = client.keyboard(&user.name);
    let first = info(client.decide(&backend, &start));
    let answered = client.respond(&start, Decision::InfoRequest(first), &["wrong"]);
    assert_rejected(&client.outcome(&backend, &answered).0);

    ended(&backend, &[&client]);
}

/// A client that leaves in the middle of a conversation leaves no thread and no PAM handle
/// behind: the thread waiting for its answer fails the conversation and ends.
#[test]
fn a_client_gone_mid_conversation_leaves_no_thread_behind() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("a_client_gone_mid_conversation_leaves_no_thread_behind", "s3cret", || {
            Service::new(
                "auth required pam_unix.so nodelay\n\
             account required pam_unix.so\n\
             session optional pam_exec.so quiet {dir}/log.sh\n",
            )
        })
    else {
        return;
    };
    service.script("log.sh", "echo \"$PAM_TYPE\" >> \"$(dirname \"$0\")/seen\"");
    let backend = service.backend();
    let before = pam_threads();

    let mut clients: Vec<Client> = (0..3).map(|_| Client::new(&reactor)).collect();
    for client in &mut clients {
        let start = client.keyboard(&user.name);
        let _round = info(client.decide(&backend, &start));
    }
    assert_eq!(backend.running_transactions(), 3);
    // Other tests' threads come and go meanwhile: ours are among the new ones, and all of
    // those end.
    let new: HashSet<String> = pam_threads().difference(&before).cloned().collect();
    assert!(new.len() >= 3, "{new:?}");
    ended(&backend, &clients.iter().collect::<Vec<_>>());
    for _ in 0..600 {
        if pam_threads().is_disjoint(&new) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(pam_threads().is_disjoint(&new), "PAM threads left running");
    assert!(service.lines("seen").is_empty(), "no session was opened");
}

/// An expired account (`chage -E 0`) is refused by PAM's account checks, whether the user
/// came with a password or a key.
#[test]
fn an_expired_account_is_refused_by_account_checks() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("an_expired_account_is_refused_by_account_checks", "s3cret", Service::unix)
    else {
        return;
    };
    user.admin("chage", &["-E", "0", &user.name], "");
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let request = client.password(&user.name, "s3cret");
    assert_rejected(&client.decide(&backend, &request));
    let start = client.keyboard(&user.name);
    let round = info(client.decide(&backend, &start));
    let answered = client.respond(&start, Decision::InfoRequest(round), &["s3cret"]);
    let (decision, said) = client.outcome(&backend, &answered);
    assert_rejected(&decision);
    assert!(said.contains("expired"), "PAM's word is shown: {said:?}");

    let status = client.wait(backend.check_account(&client.login(&user.name, Method::PublicKey)));
    assert!(matches!(status, AccountStatus::Denied { .. }), "{status:?}");
    ended(&backend, &[&client]);
}

/// A locked account (`usermod -L`) cannot log in with its password, by either method.
#[test]
fn a_locked_account_is_refused() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("a_locked_account_is_refused", "s3cret", Service::unix)
    else {
        return;
    };
    user.admin("usermod", &["-L", &user.name], "");
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let request = client.password(&user.name, "s3cret");
    assert_rejected(&client.decide(&backend, &request));
    let start = client.keyboard(&user.name);
    let round = info(client.decide(&backend, &start));
    let answered = client.respond(&start, Decision::InfoRequest(round), &["s3cret"]);
    assert_rejected(&client.outcome(&backend, &answered).0);
    ended(&backend, &[&client]);
}

/// An expired password (`chage -d 0`) is answered with a change request; the change goes
/// through PAM, and the new password works afterwards while the old one does not.
#[test]
fn an_expired_password_is_changed_through_a_change_request() {
    let Some(Fixture { user, service, reactor }) = Fixture::new(
        "an_expired_password_is_changed_through_a_change_request",
        "Old-pass-1",
        Service::unix,
    ) else {
        return;
    };
    user.admin("chage", &["-d", "0", &user.name], "");
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let request = client.password(&user.name, "Old-pass-1");
    match client.decide(&backend, &request) {
        Decision::ChangePassword { prompt } => assert!(prompt.contains("change"), "{prompt}"),
        other => panic!("expected a change request, got {other:?}"),
    }
    let change = client.change_password(&user.name, "Old-pass-1", "New-pass-2-long");
    assert_accepted(&client.decide(&backend, &change));

    let old = client.password(&user.name, "Old-pass-1");
    assert_rejected(&client.decide(&backend, &old));
    let new = client.password(&user.name, "New-pass-2-long");
    assert_accepted(&client.decide(&backend, &new));

    // Without password changes, an expired password is refused outright.
    user.admin("chage", &["-d", "0", &user.name], "");
    let strict = service.backend().with_password_change(false);
    let request = client.password(&user.name, "New-pass-2-long");
    assert_rejected(&client.decide(&strict, &request));
    ended(&backend, &[&client]);
    ended(&strict, &[&client]);
}

/// A login session opens with PAM's items set as sshd sets them and PAM's environment handed
/// to the sessions, and closes when the login ends.
#[test]
fn opens_and_closes_a_session_with_the_pam_environment() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("opens_and_closes_a_session_with_the_pam_environment", "s3cret", || {
            Service::new(
                "auth required pam_unix.so nodelay\n\
             account required pam_unix.so\n\
             session required pam_env.so readenv=1 envfile={dir}/environment conffile={dir}/empty\n\
             session required pam_unix.so\n\
             session optional pam_exec.so quiet {dir}/log.sh\n",
            )
        })
    else {
        return;
    };
    fs::write(service.scratch.0.join("environment"), "TWINE_PAM_TEST=from-pam\n").unwrap();
    fs::write(service.scratch.0.join("empty"), "").unwrap();
    service.script(
        "log.sh",
        "echo \"$PAM_TYPE user=$PAM_USER rhost=$PAM_RHOST ruser=$PAM_RUSER tty=$PAM_TTY\" \
         >> \"$(dirname \"$0\")/seen\"",
    );
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let request = client.password(&user.name, "s3cret");
    assert_accepted(&client.decide(&backend, &request));
    let login = client.login(&user.name, Method::Password);
    let grant = client.wait(backend.open_session(&login));
    let variable = |name: &str| {
        grant.environment.iter().find(|(n, _)| n == name).map(|(_, value)| value.clone())
    };
    assert_eq!(variable("TWINE_PAM_TEST").as_deref(), Some("from-pam"));
    assert_eq!(variable("SSH_CONNECTION").as_deref(), Some("127.0.0.1 50022 127.0.0.1 2222"));
    let items = format!("user={0} rhost=127.0.0.1 ruser={0} tty=ssh", user.name);
    assert_eq!(service.lines("seen"), vec![format!("open_session {items}")]);

    backend.close_session(&login);
    assert_eq!(settled(&backend), 0);
    let expected = vec![format!("open_session {items}"), format!("close_session {items}")];
    assert_eq!(service.lines("seen"), expected);
    backend.connection_ended(&client.facts);
}

/// A user let in by a key gets PAM's account check and a PAM session all the same, and a
/// connection that ends without closing its login still closes the session.
#[test]
fn a_key_login_gets_account_checks_and_a_session() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("a_key_login_gets_account_checks_and_a_session", "s3cret", || {
            Service::new(
                "auth required pam_unix.so nodelay\n\
             account required pam_exec.so quiet {dir}/log.sh\n\
             account required pam_unix.so\n\
             session optional pam_exec.so quiet {dir}/log.sh\n",
            )
        })
    else {
        return;
    };
    service.script("log.sh", "echo \"$PAM_TYPE $PAM_USER\" >> \"$(dirname \"$0\")/seen\"");
    let backend = service.backend();
    let client = Client::new(&reactor);

    let login = client.login(&user.name, Method::PublicKey);
    assert_eq!(client.wait(backend.check_account(&login)), AccountStatus::Allowed);
    let grant = client.wait(backend.open_session(&login));
    assert!(grant.environment.iter().any(|(name, _)| name == "SSH_CONNECTION"));
    assert_eq!(backend.running_transactions(), 1, "the account check's transaction is reused");

    ended(&backend, &[&client]);
    let name = &user.name;
    let expected = vec![
        format!("account {name}"),
        format!("open_session {name}"),
        format!("close_session {name}"),
    ];
    assert_eq!(service.lines("seen"), expected);
}

/// With sessions off (the server opens them in a process of its own), a key login still gets
/// PAM's account check, and opening the login's session opens no PAM session and ends the
/// transaction.
#[test]
fn without_sessions_a_key_login_is_checked_and_its_transaction_ends() {
    let Some(Fixture { user, service, reactor }) = Fixture::new(
        "without_sessions_a_key_login_is_checked_and_its_transaction_ends",
        "s3cret",
        || {
            Service::new(
                "auth required pam_unix.so nodelay\n\
             account required pam_exec.so quiet {dir}/log.sh\n\
             account required pam_unix.so\n\
             session optional pam_exec.so quiet {dir}/log.sh\n",
            )
        },
    ) else {
        return;
    };
    service.script("log.sh", "echo \"$PAM_TYPE $PAM_USER\" >> \"$(dirname \"$0\")/seen\"");
    let backend = service.backend().with_sessions(false);
    let client = Client::new(&reactor);

    let login = client.login(&user.name, Method::PublicKey);
    assert_eq!(client.wait(backend.check_account(&login)), AccountStatus::Allowed);
    let grant = client.wait(backend.open_session(&login));
    assert_eq!(grant, SessionGrant::default());
    assert_eq!(settled(&backend), 0, "the transaction ended with the login");
    backend.close_session(&login);
    ended(&backend, &[&client]);
    assert_eq!(service.lines("seen"), vec![format!("account {}", user.name)]);
}

/// A [`PamSession`] opens on the calling thread with sshd's items (the terminal given), hands
/// out PAM's environment and what the modules said, and closes when asked.
#[test]
fn a_pam_session_opens_with_the_items_and_closes() {
    let Some(Fixture { user, service, .. }) = Fixture::new(
        "a_pam_session_opens_with_the_items_and_closes",
        "s3cret",
        || {
            Service::new(
                "session required pam_env.so readenv=1 envfile={dir}/environment conffile={dir}/empty\n\
             session optional pam_echo.so hello from pam_echo\n\
             session optional pam_exec.so quiet {dir}/log.sh\n",
            )
        },
    ) else {
        return;
    };
    fs::write(service.scratch.0.join("environment"), "TWINE_PAM_TEST=from-pam\n").unwrap();
    fs::write(service.scratch.0.join("empty"), "").unwrap();
    service.script(
        "log.sh",
        "echo \"$PAM_TYPE user=$PAM_USER rhost=$PAM_RHOST ruser=$PAM_RUSER tty=$PAM_TTY\" \
         >> \"$(dirname \"$0\")/seen\"",
    );
    let mut setup = PamSessionSetup::new(&service.name, &user.name);
    setup.tty = "/dev/pts/77".to_owned();
    setup.rhost = Some("192.0.2.9".to_owned());
    setup.ssh_connection = Some("192.0.2.9 50022 127.0.0.1 22".to_owned());
    let mut session = PamSession::open(&setup).unwrap();
    let environment = session.environment();
    let variable =
        |name: &str| environment.iter().find(|(n, _)| n == name).map(|(_, value)| value.clone());
    assert_eq!(variable("TWINE_PAM_TEST").as_deref(), Some("from-pam"));
    assert_eq!(variable("SSH_CONNECTION").as_deref(), Some("192.0.2.9 50022 127.0.0.1 22"));
    assert_eq!(session.take_messages(), "hello from pam_echo\n");
    let items = format!("user={0} rhost=192.0.2.9 ruser={0} tty=/dev/pts/77", user.name);
    assert_eq!(service.lines("seen"), vec![format!("open_session {items}")]);
    session.close().unwrap();
    let expected = vec![format!("open_session {items}"), format!("close_session {items}")];
    assert_eq!(service.lines("seen"), expected);
}

/// Beyond the transaction limit, attempts are refused (and logged) rather than queued; a slot
/// frees when a connection ends.
#[test]
fn refuses_attempts_beyond_the_transaction_limit() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("refuses_attempts_beyond_the_transaction_limit", "s3cret", Service::unix)
    else {
        return;
    };
    let backend = service.backend().with_max_transactions(1);
    let mut waiting = Client::new(&reactor);
    let mut other = Client::new(&reactor);

    let start = waiting.keyboard(&user.name);
    let _round = info(waiting.decide(&backend, &start));
    let request = other.password(&user.name, "s3cret");
    assert_rejected(&other.decide(&backend, &request));

    ended(&backend, &[&waiting]);
    let request = other.password(&user.name, "s3cret");
    assert_accepted(&other.decide(&backend, &request));
    ended(&backend, &[&other]);
}

/// Without a reactor (an inline offload), the backend still answers, waiting on the calling
/// thread.
#[test]
fn answers_without_a_reactor() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("answers_without_a_reactor", "s3cret", Service::unix)
    else {
        return;
    };
    let backend = service.backend();
    let clock = twine_core::testing::Clock::new();
    let mut client = Client::new(&reactor);
    let mut request = client.password(&user.name, "s3cret");
    request.offload = Offload::inline(clock.scheduler());
    let decision = backend.decide(&request);
    clock.advance(Duration::ZERO);
    assert_accepted(&decision.take_result().unwrap().unwrap());
    ended(&backend, &[&client]);
}

/// Keyboard-interactive changes an expired password within the conversation, as sshd does:
/// PAM's questions for the current and the new password go to the client.
#[test]
fn keyboard_interactive_changes_an_expired_password() {
    let Some(Fixture { user, service, reactor }) = Fixture::new(
        "keyboard_interactive_changes_an_expired_password",
        "Old-pass-1",
        Service::unix,
    ) else {
        return;
    };
    user.admin("chage", &["-d", "0", &user.name], "");
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let mut request = client.keyboard(&user.name);
    let mut asked = Vec::new();
    let mut said = String::new();
    let decision = loop {
        assert!(asked.len() < 8, "too many rounds: {asked:?}");
        let round = match client.decide(&backend, &request) {
            Decision::InfoRequest(round) => round,
            decision => break decision,
        };
        said.push_str(&round.instruction);
        let answers: Vec<&str> = round
            .prompts
            .iter()
            .map(|prompt| {
                asked.push(prompt.text.clone());
                if asked.len() <= 2 {
                    "Old-pass-1"
                } else {
                    "New-pass-2-long"
                }
            })
            .collect();
        request = client.respond(&request, Decision::InfoRequest(round), &answers);
    };
    assert_accepted(&decision);
    let expected = ["Password: ", "Current password: ", "New password: ", "Retype new password: "];
    assert_eq!(asked, expected);
    assert!(said.contains("You are required to change your password immediately"), "{said:?}");

    let new = client.password(&user.name, "New-pass-2-long");
    assert_accepted(&client.decide(&backend, &new));
    ended(&backend, &[&client]);
}

/// A client that starts over with another request abandons its conversation: the thread that
/// waited for its answer ends.
#[test]
fn another_request_abandons_a_conversation() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("another_request_abandons_a_conversation", "s3cret", Service::unix)
    else {
        return;
    };
    let backend = service.backend();
    let mut client = Client::new(&reactor);

    let start = client.keyboard(&user.name);
    let _round = info(client.decide(&backend, &start));
    assert_eq!(backend.running_transactions(), 1);
    let wrong = client.password(&user.name, "wrong");
    assert_rejected(&client.decide(&backend, &wrong));
    assert_eq!(settled(&backend), 0);
    backend.connection_ended(&client.facts);
}

/// An unknown user, and root when root passwords are off, go through PAM with a wrong
/// password in place of the client's (so a refusal takes a wrong password's time) and are
/// refused even by a stack that lets anyone in; root is let in when allowed.
#[test]
fn unknown_users_and_refused_root_never_get_in_by_password() {
    let Some(Fixture { user, service, reactor }) =
        Fixture::new("unknown_users_and_refused_root_never_get_in_by_password", "s3cret", || {
            Service::new(
                "auth required pam_exec.so quiet expose_authtok {dir}/log.sh\n\
                 auth required pam_permit.so\n\
                 account required pam_permit.so\n",
            )
        })
    else {
        return;
    };
    service.script(
        "log.sh",
        "read -r given\n\
         if [ \"$given\" = anything ]; then said=client; else said=other; fi\n\
         echo \"$PAM_USER $said\" >> \"$(dirname \"$0\")/seen\"",
    );
    let open = service.backend();
    let strict = service.backend().with_root_passwords(false);
    let mut client = Client::new(&reactor);

    let root = client.password("root", "anything");
    assert_accepted(&client.decide(&open, &root));
    let root = client.password("root", "anything");
    assert_rejected(&client.decide(&strict, &root));
    let nobody = format!("{}x", user.name);
    let unknown = client.password(&nobody, "anything");
    assert_rejected(&client.decide(&open, &unknown));
    let known = client.password(&user.name, "anything");
    assert_accepted(&client.decide(&open, &known));
    let start = client.keyboard(&nobody);
    let round = info(client.decide(&open, &start));
    let answered = client.respond(&start, Decision::InfoRequest(round), &["anything"]);
    assert_rejected(&client.outcome(&open, &answered).0);

    let expected = [
        "root client".to_owned(),
        "root other".to_owned(),
        format!("{nobody} other"),
        format!("{} client", user.name),
        format!("{nobody} other"),
    ];
    assert_eq!(service.lines("seen"), expected);
    ended(&open, &[&client]);
    ended(&strict, &[&client]);
}

//! Privilege separation, checked on real processes: a worker (this test binary run again with
//! `TWINE_PRIVSEP_ROLE` set) enters `twine_core::sandbox`, and the test reads its state from
//! `/proc`, watches how it dies, and plays the monitor it talks to.
//!
//! These need root (to chroot and change uid); as another user each test prints why it is
//! skipped and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::Arc;

use twine_conch::crypto::CryptoError;
use twine_conch::keys::PublicKey;
use twine_conch::keys::{HostKeySigner, PrivateKey, SignatureAlgorithm};
use twine_conch::server::privsep::{
    serve, serve_unix, Limits, Monitor, MonitorBackend, MonitorClient, MonitorSigner, Phase, Reply,
    Request, ServeEnd, SessionPlan, SigningScope, SpawnedSession, SystemBackend, UserRecord,
    Violation,
};
use twine_conch::server::ConnectionId;
use twine_core::protocol::ProtocolFactory;
use twine_core::{sandbox, Protocol, Reactor, Reason, Transport};

const ROLE: &str = "TWINE_PRIVSEP_ROLE";
const READY: &str = "TWINE-PRIVSEP-SANDBOXED";
const HASH: [u8; 32] = [9; 32];

fn host_key() -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[5; 32]).unwrap()
}

fn not_root() -> bool {
    let skip = !nix::unistd::Uid::effective().is_root();
    if skip {
        eprintln!("skipped: privilege separation tests need root (chroot, setresuid)");
    }
    skip
}

/// A directory for one test: an empty root-owned `empty/` and a host key file only root may
/// read.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("twine-privsep-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::set_permissions(dir.join("empty"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = dir.join("ssh_host_ed25519_key");
        std::fs::write(&key, b"-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self(dir)
    }
    fn key(&self) -> PathBuf {
        self.0.join("ssh_host_ed25519_key")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A worker process: this test binary, running only `test`, in role `action`.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(test: &str, action: &str, scratch: &Scratch) -> Self {
        Self::spawn_with_stdin(test, action, scratch, Stdio::piped())
    }

    fn spawn_with_stdin(test: &str, action: &str, scratch: &Scratch, stdin: Stdio) -> Self {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE, action)
            .env("TWINE_PRIVSEP_UID", nobody.uid.to_string())
            .env("TWINE_PRIVSEP_GID", nobody.gid.to_string())
            .env("TWINE_PRIVSEP_CHROOT", scratch.0.join("empty"))
            .env("TWINE_PRIVSEP_KEY", scratch.key())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut worker = Self { child, stdin, stdout };
        worker.wait_for(READY);
        worker
    }

    /// Reads lines until one equals `line` (bounded: the harness prints a few of its own).
    fn wait_for(&mut self, line: &str) {
        for _ in 0..100 {
            let mut got = String::new();
            assert_ne!(self.stdout.read_line(&mut got).unwrap(), 0, "worker ended before {line:?}");
            if got.trim_end() == line {
                return;
            }
        }
        panic!("no {line:?} from the worker");
    }

    fn next_line(&mut self) -> String {
        let mut got = String::new();
        self.stdout.read_line(&mut got).unwrap();
        got.trim_end().to_owned()
    }

    fn status_field(&self, name: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
            .unwrap_or_else(|| panic!("no {name} in /proc status"))
            .trim()
            .to_owned()
    }

    fn wait(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }
}

/// The monitor's side of a worker's stdio.
struct Stdio2<R, W>(R, W);

impl<R: Read, W> Read for Stdio2<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R, W: Write> Write for Stdio2<R, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}

/// What a worker does: enter the sandbox, say so, then `action`. Never returns.
fn worker_main(action: &str) -> ! {
    let var = |name: &str| std::env::var(name).unwrap();
    let chroot = PathBuf::from(var("TWINE_PRIVSEP_CHROOT"));
    let key = PathBuf::from(var("TWINE_PRIVSEP_KEY"));
    // Like a real worker, everything the reactor needs is made before the sandbox closes.
    let reactor = (action == "reactor").then(|| {
        let reactor = Reactor::new().unwrap();
        let stop = reactor.clone();
        let factory = ProtocolFactory::new(move || Echo(None, stop.clone()));
        let port = reactor.listen_tcp(([127, 0, 0, 1], 0).into(), factory).unwrap();
        (reactor, port.tcp_address().unwrap())
    });
    let monitor_socket = (action == "session")
        .then(|| UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned().unwrap()));
    let (uid, gid) =
        (var("TWINE_PRIVSEP_UID").parse().unwrap(), var("TWINE_PRIVSEP_GID").parse().unwrap());
    if action.starts_with("worker-") {
        // An SSH worker's filter: the reactor's plus forwarding's sockets.
        sandbox::enter_empty_chroot(&chroot).unwrap();
        sandbox::drop_privileges(uid, gid).unwrap();
        sandbox::limit_resources().unwrap();
        sandbox::no_new_privs().unwrap();
        sandbox::install_worker_seccomp().unwrap();
    } else {
        sandbox::enter(&sandbox::Sandbox { uid, gid, chroot: &chroot }).unwrap();
    }
    let mut out = std::io::stdout();
    writeln!(out, "{READY}").unwrap();
    out.flush().unwrap();
    match action {
        "wait" => {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        "open-key" => {
            let line = match std::fs::File::open(&key) {
                Ok(_) => "opened".to_owned(),
                Err(e) => format!("refused {}", e.raw_os_error().unwrap_or(0)),
            };
            writeln!(out, "{line}").unwrap();
        }
        "execve" => {
            let _ = nix::unistd::execv(c"/bin/true", &[c"/bin/true"]);
        }
        "socket" => {
            let _ = std::net::TcpListener::bind("127.0.0.1:0");
        }
        "worker-forward" => {
            // What -L and -R need: a TCP listener, a connection to it, a Unix socket pair.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let connected = std::net::TcpStream::connect(listener.local_addr().unwrap()).is_ok();
            let pair = UnixStream::pair().is_ok();
            let key_open = std::fs::File::open(&key).is_ok();
            writeln!(out, "forward {connected} {pair} key {key_open}").unwrap();
        }
        "worker-netlink" => {
            let _ = nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Netlink,
                nix::sys::socket::SockType::Raw,
                nix::sys::socket::SockFlag::empty(),
                None,
            );
        }
        "worker-execve" => {
            let _ = nix::unistd::execv(c"/bin/true", &[c"/bin/true"]);
        }
        "monitor" => monitor_worker(key.as_path()),
        "session" => {
            if let Some(socket) = monitor_socket {
                session_worker(socket);
            }
        }
        "garbage" => {
            // A length field far over the limit, then bytes that were never a request.
            out.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
            out.flush().unwrap();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        "reactor" => {
            if let Some((reactor, address)) = reactor {
                writeln!(out, "{address}").unwrap();
                out.flush().unwrap();
                reactor.run().unwrap();
            }
        }
        _ => {}
    }
    out.flush().unwrap();
    std::process::exit(0)
}

/// Signs an exchange hash through the monitor; if the signature verifies, asks for a session
/// on the connection that never authenticated.
fn monitor_worker(_key: &Path) {
    let client = Arc::new(MonitorClient::new(Stdio2(std::io::stdin(), std::io::stdout())));
    let connection = ConnectionId(1);
    let public = host_key().public_key().clone();
    let signer = MonitorSigner::new(public.clone(), Arc::clone(&client));
    assert_eq!(client.call(&Request::ConnectionOpened { connection }).unwrap(), Reply::Done);
    let signature = {
        let _scope = SigningScope::enter(connection);
        signer.sign(SignatureAlgorithm::Ed25519, &HASH)
    };
    if signature.is_ok_and(|s| public.verify(SignatureAlgorithm::Ed25519, &HASH, &s).is_ok()) {
        let _ = client.call(&Request::SpawnSession { connection, plan: shell_plan() });
    }
    std::process::exit(3)
}

/// Echoes, and stops the reactor when its connection ends.
struct Echo(Option<Rc<dyn Transport>>, Reactor);

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.0 = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.0.iter().for_each(|t| t.write(data));
    }
    fn connection_lost(&mut self, _reason: Reason) {
        self.1.stop();
    }
}

/// A whole login through the monitor, then writes through the descriptor of the session the
/// monitor started.
fn session_worker(socket: UnixStream) {
    let client = Arc::new(MonitorClient::new(socket));
    let connection = ConnectionId(1);
    let signer = MonitorSigner::new(host_key().public_key().clone(), Arc::clone(&client));
    client.call(&Request::ConnectionOpened { connection }).unwrap();
    {
        let _scope = SigningScope::enter(connection);
        signer.sign(SignatureAlgorithm::Ed25519, &HASH).unwrap();
    }
    client.call(&Request::LookupUser { connection, user: "alice".into() }).unwrap();
    let key = client_key();
    let blob = key.public_key().to_blob();
    // RFC 4252 §7: what a client signs, over the session id the monitor signed first.
    let mut signed = Vec::new();
    twine_conch::wire::Writer::new(&mut signed)
        .write_string(&HASH)
        .write_u8(50)
        .write_string(b"alice")
        .write_string(b"ssh-connection")
        .write_string(b"publickey")
        .write_bool(true)
        .write_string(b"ssh-ed25519")
        .write_string(&blob);
    let signature = HostKeySigner::sign(&key, SignatureAlgorithm::Ed25519, &signed).unwrap();
    let proof = Request::AuthenticatePublicKey {
        connection,
        user: "alice".into(),
        algorithm: "ssh-ed25519".into(),
        key_blob: blob,
        host_bound: false,
        signature,
    };
    assert_eq!(client.call(&proof).unwrap(), Reply::Done);
    let done = Request::ConnectionAuthenticated {
        connection,
        user: "alice".into(),
        method: "publickey".into(),
    };
    assert_eq!(client.call(&done).unwrap(), Reply::Done);
    let start = Request::SpawnSession { connection, plan: shell_plan() };
    let (reply, mut fds) = client.call_with_fds(&start).unwrap();
    assert_eq!(reply, Reply::SessionSpawned { pid: 1, tty: None, fds: 1 });
    let mut session = std::fs::File::from(fds.pop().unwrap());
    session.write_all(b"hello from the sandbox").unwrap();
}

/// A session plan: a shell without a pty.
fn shell_plan() -> SessionPlan {
    SessionPlan {
        program: b"/bin/sh".to_vec(),
        arg0: b"-sh".to_vec(),
        args: Vec::new(),
        env: Vec::new(),
        cwd: b"/".to_vec(),
        pty: None,
        user_rc: false,
    }
}

fn client_key() -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[6; 32]).unwrap()
}

/// The monitor's backend for the session test: one user, `alice`, whose session is a pipe.
struct OneUser {
    key: PrivateKey,
    session_output: Option<OwnedFd>,
}

impl MonitorBackend for OneUser {
    fn sign(&mut self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        HostKeySigner::sign(&self.key, algorithm, data)
    }
    fn host_public_key(&self, _: SignatureAlgorithm) -> Option<PublicKey> {
        Some(self.key.public_key().clone())
    }
    fn lookup_user(&mut self, name: &str) -> Option<UserRecord> {
        (name == "alice").then(|| UserRecord {
            name: name.into(),
            uid: 1000,
            gid: 1000,
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
            refused: None,
        })
    }
    fn read_authorized_keys(&mut self, _: &UserRecord) -> Option<Vec<u8>> {
        Some(format!("{}\n", client_key().public_key().to_openssh()).into_bytes())
    }
    fn spawn_session(
        &mut self,
        _: ConnectionId,
        _: &UserRecord,
        _: &SessionPlan,
    ) -> Result<SpawnedSession, String> {
        let fds = self.session_output.take().into_iter().collect();
        Ok(SpawnedSession { pid: 1, tty: None, fds })
    }
}

fn is_worker() {
    if let Ok(action) = std::env::var(ROLE) {
        worker_main(&action);
    }
}

#[test]
fn a_sandboxed_worker_runs_without_root_with_no_new_privs_and_a_seccomp_filter() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("status");
    let worker = Worker::spawn(
        "a_sandboxed_worker_runs_without_root_with_no_new_privs_and_a_seccomp_filter",
        "wait",
        &scratch,
    );
    for field in ["Uid", "Gid"] {
        let ids = worker.status_field(field);
        assert!(ids.split_whitespace().all(|id| id != "0"), "{field}: {ids}");
    }
    assert_eq!(worker.status_field("Groups").split_whitespace().filter(|g| *g == "0").count(), 0);
    assert_eq!(worker.status_field("NoNewPrivs"), "1");
    assert_eq!(worker.status_field("Seccomp"), "2");
    let root = std::fs::read_link(format!("/proc/{}/root", worker.child.id())).unwrap();
    assert_eq!(root, scratch.0.join("empty"));
    let status = worker.wait();
    assert_eq!(status.code(), Some(0), "a sandboxed worker exits cleanly: {status:?}");
}

#[test]
fn a_sandboxed_worker_cannot_open_a_host_key_file() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("open-key");
    let mut worker =
        Worker::spawn("a_sandboxed_worker_cannot_open_a_host_key_file", "open-key", &scratch);
    assert_eq!(worker.next_line(), format!("refused {}", libc_eacces()));
    assert_eq!(worker.wait().code(), Some(0));
}

fn libc_eacces() -> i32 {
    nix::errno::Errno::EACCES as i32
}

#[test]
fn a_sandboxed_worker_that_calls_execve_is_killed() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("execve");
    let worker =
        Worker::spawn("a_sandboxed_worker_that_calls_execve_is_killed", "execve", &scratch);
    assert_eq!(worker.wait().signal(), Some(nix::sys::signal::Signal::SIGSYS as i32));
}

#[test]
fn a_sandboxed_worker_that_creates_an_inet_socket_is_killed() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("socket");
    let worker = Worker::spawn(
        "a_sandboxed_worker_that_creates_an_inet_socket_is_killed",
        "socket",
        &scratch,
    );
    assert_eq!(worker.wait().signal(), Some(nix::sys::signal::Signal::SIGSYS as i32));
}

#[test]
fn a_sandboxed_worker_asking_for_a_session_of_an_unauthenticated_connection_is_refused_and_killed()
{
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("monitor");
    let mut worker = Worker::spawn(
        "a_sandboxed_worker_asking_for_a_session_of_an_unauthenticated_connection_is_refused_and_killed",
        "monitor",
        &scratch,
    );
    let keys: Vec<Arc<dyn HostKeySigner>> = vec![Arc::new(host_key())];
    let mut monitor = Monitor::new(SystemBackend::new(keys), Limits::default());
    // The monitor keeps the worker's end open until it has killed it: a closed pipe would let
    // the worker exit on its own first, and the kill would find it already gone.
    let mut stdin = worker.stdin.take().unwrap();
    let end = serve(&mut monitor, Stdio2(&mut worker.stdout, &mut stdin));
    let ServeEnd::Violation(violation) = end else { panic!("{end:?}") };
    assert_eq!(violation, Violation::OutOfState { request: "SpawnSession", phase: Phase::PreAuth });
    // The monitor's answer to a violation: kill the worker, by its pid.
    worker.child.kill().unwrap();
    drop(stdin);
    assert_eq!(worker.wait().signal(), Some(nix::sys::signal::Signal::SIGKILL as i32));
}

#[test]
fn a_sandboxed_worker_still_serves_a_connection_with_its_reactor() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("reactor");
    let mut worker = Worker::spawn(
        "a_sandboxed_worker_still_serves_a_connection_with_its_reactor",
        "reactor",
        &scratch,
    );
    let address: std::net::SocketAddr = worker.next_line().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(b"through the sandbox").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap_or_default();
    assert_eq!(echoed, b"through the sandbox");
    drop(stream);
    let status = worker.wait();
    assert_eq!(
        status.code(),
        Some(0),
        "the reactor ran and stopped inside the sandbox: {status:?}"
    );
}

#[test]
fn a_sandboxed_worker_sending_a_malformed_request_is_killed_and_the_monitor_goes_on() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("garbage");
    let mut worker = Worker::spawn(
        "a_sandboxed_worker_sending_a_malformed_request_is_killed_and_the_monitor_goes_on",
        "garbage",
        &scratch,
    );
    let keys: Vec<Arc<dyn HostKeySigner>> = vec![Arc::new(host_key())];
    let mut monitor = Monitor::new(SystemBackend::new(keys), Limits::default());
    let stdin = worker.stdin.take().unwrap();
    // Held open until the kill, so the worker (reading to end of file) cannot exit first.
    let held = stdin.as_fd().try_clone_to_owned().unwrap();
    let end = serve(&mut monitor, Stdio2(&mut worker.stdout, stdin));
    assert!(matches!(end, ServeEnd::Violation(Violation::Malformed(_))), "{end:?}");
    worker.child.kill().unwrap();
    assert_eq!(worker.wait().signal(), Some(nix::sys::signal::Signal::SIGKILL as i32));
    drop(held);
    // The monitor process is still here and serves the next worker.
    let mut next = Monitor::new(SystemBackend::new(Vec::new()), Limits::default());
    let replies =
        next.received(&Request::ConnectionOpened { connection: ConnectionId(1) }.encode(1));
    assert_eq!(replies.unwrap(), Reply::Done.encode(1));
}

#[test]
fn a_sandboxed_worker_gets_its_session_s_descriptor_from_the_monitor_after_a_verified_login() {
    is_worker();
    if not_root() {
        return;
    }
    let scratch = Scratch::new("session");
    let (worker_end, monitor_end) = UnixStream::pair().unwrap();
    let (mut output, input) = std::io::pipe().unwrap();
    let worker = Worker::spawn_with_stdin(
        "a_sandboxed_worker_gets_its_session_s_descriptor_from_the_monitor_after_a_verified_login",
        "session",
        &scratch,
        Stdio::from(OwnedFd::from(worker_end)),
    );
    let backend = OneUser { key: host_key(), session_output: Some(input.into()) };
    let mut monitor = Monitor::new(backend, Limits::default());
    let end = serve_unix(&mut monitor, &monitor_end);
    assert!(matches!(end, ServeEnd::Closed), "{end:?}");
    drop(monitor);
    let status = worker.wait();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let mut got = String::new();
    output.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello from the sandbox");
}

#[test]
fn a_worker_filter_allows_forwarding_sockets_but_not_host_keys_other_families_or_execve() {
    is_worker();
    if not_root() {
        return;
    }
    let test =
        "a_worker_filter_allows_forwarding_sockets_but_not_host_keys_other_families_or_execve";
    let scratch = Scratch::new("worker-filter");
    let mut worker = Worker::spawn(test, "worker-forward", &scratch);
    assert_eq!(worker.next_line(), "forward true true key false");
    assert!(worker.wait().success());
    for action in ["worker-netlink", "worker-execve"] {
        let worker = Worker::spawn(test, action, &scratch);
        assert_eq!(
            worker.wait().signal(),
            Some(nix::sys::signal::Signal::SIGSYS as i32),
            "{action}"
        );
    }
}

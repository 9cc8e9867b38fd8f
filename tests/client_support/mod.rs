//! A private OpenSSH `sshd` for the client tests: its own host keys, config, port and test
//! user, in a temporary directory; stopped by PID and cleaned up when dropped.
//!
//! Needs `/usr/sbin/sshd` and `ssh-keygen` (Debian's `openssh-server` and `openssh-client`) and
//! root (to create the test user and to run sshd with privilege separation). Without root,
//! [`Sshd::start`] returns `None` and the tests say they were skipped.

#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use twine_conch::client::{ClientConfig, StaticPrompter, StrictHostKeyChecking};

/// The test user's password.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// `useradd` and `userdel` lock `/etc/passwd`: one at a time in this process.
static USERS: Mutex<()> = Mutex::new(());

/// A directory removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("twine-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a command to completion, panicking with its output if it fails.
pub(crate) fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A user created for one test, with a home in the test's directory; removed when dropped.
pub(crate) struct TestUser {
    pub(crate) name: String,
    pub(crate) home: PathBuf,
}

impl TestUser {
    fn create(dir: &TempDir) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let name = format!("twc{}x{n}", std::process::id());
        let home = dir.path("home");
        let _guard = USERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = Command::new("userdel").arg("-f").arg(&name).output();
        // Other processes on the machine may hold /etc/passwd's lock for a moment.
        retry(|| {
            Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", "-d"])
                .arg(&home)
                .arg(&name)
                .status()
                .is_ok_and(|status| status.success())
        });
        std::fs::create_dir_all(&home).expect("home");
        run(Command::new("chown").arg(format!("{name}:")).arg(&home));
        retry(|| {
            use std::io::Write as _;
            let Ok(mut chpasswd) = Command::new("chpasswd").stdin(Stdio::piped()).spawn() else {
                return false;
            };
            let line = format!("{name}:{PASSWORD}\n");
            let written = chpasswd
                .stdin
                .take()
                .is_some_and(|mut input| input.write_all(line.as_bytes()).is_ok());
            chpasswd.wait().is_ok_and(|status| status.success()) && written
        });
        Self { name, home }
    }
}

/// Runs `attempt` until it succeeds, at most 50 times, 100 ms apart; panics after that.
fn retry(mut attempt: impl FnMut() -> bool) {
    for _ in 0..50 {
        if attempt() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up after 50 attempts");
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _guard = USERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = Command::new("userdel").arg("-f").arg(&self.name).output();
    }
}

/// What to turn on in the sshd.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// `UsePAM yes` (keyboard-interactive through PAM) instead of `no`.
    pub(crate) pam: bool,
    /// Extra config lines.
    pub(crate) extra: Vec<String>,
}

/// A private sshd and everything it needs.
pub(crate) struct Sshd {
    pub(crate) dir: TempDir,
    pub(crate) user: TestUser,
    pub(crate) port: u16,
    pub(crate) config: PathBuf,
    /// `ssh-keygen -t <type>` host keys' public halves, one line each.
    pub(crate) host_keys: Vec<String>,
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd on a free loopback port, or `None` if not root.
    pub(crate) fn start(options: Options) -> Option<Self> {
        if !is_root() {
            eprintln!("skipped: the client tests against sshd need root (a test user, privsep)");
            return None;
        }
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        let dir = TempDir::new("sshd");
        let user = TestUser::create(&dir);
        let mut host_keys = Vec::new();
        let mut key_lines = String::new();
        for kind in ["ed25519", "ecdsa", "rsa"] {
            let path = dir.path(&format!("host_{kind}"));
            keygen(&path, kind, "");
            host_keys.push(std::fs::read_to_string(path.with_extension("pub")).expect("pub"));
            key_lines.push_str(&format!("HostKey {}\n", path.display()));
        }
        let authorized = dir.path("authorized_keys");
        std::fs::write(&authorized, "").expect("authorized_keys");
        let config = dir.path("sshd_config");
        let text = format!(
            "ListenAddress 127.0.0.1\nListenAddress ::1\n{key_lines}PidFile none\nAuthorizedKeysFile {}\n\
             StrictModes no\nUsePAM {}\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication {}\nPermitRootLogin no\nAcceptEnv LANG LC_*\n\
             AllowTcpForwarding yes\nAllowStreamLocalForwarding yes\nLoginGraceTime 20\n\
             Subsystem sftp internal-sftp\nLogLevel DEBUG1\nMaxStartups 100\n{}\n",
            authorized.display(),
            if options.pam { "yes" } else { "no" },
            if options.pam { "yes" } else { "no" },
            options.extra.join("\n"),
        );
        std::fs::write(&config, text).expect("sshd_config");
        let port = free_port();
        let log = std::fs::File::create(dir.path("sshd.log")).expect("log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts (openssh-server installed?)");
        let sshd = Self { dir, user, port, config, host_keys, child: Some(child) };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sshd)
    }

    /// Authorizes the public key in `pub_path` for the test user.
    pub(crate) fn authorize(&self, pub_path: &Path) {
        let line = std::fs::read_to_string(pub_path).expect("pub key");
        let path = self.dir.path("authorized_keys");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&line);
        std::fs::write(path, text).expect("authorized_keys");
    }

    /// Generates a client key of `kind` (`ed25519`, `ecdsa`, `rsa`, ...) with `passphrase`,
    /// optionally authorized; returns the private key's path.
    pub(crate) fn client_key(
        &self,
        name: &str,
        kind: &str,
        passphrase: &str,
        authorize: bool,
    ) -> PathBuf {
        let path = self.dir.path(name);
        keygen(&path, kind, passphrase);
        if authorize {
            self.authorize(&path.with_extension("pub"));
        }
        path
    }

    /// A `known_hosts` file listing this server's host keys.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        let path = self.dir.path("known_hosts");
        let mut text = String::new();
        for line in &self.host_keys {
            let mut parts = line.split_whitespace();
            let (kind, blob) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            text.push_str(&format!(
                "[127.0.0.1]:{port},[::1]:{port} {kind} {blob}\n",
                port = self.port
            ));
        }
        std::fs::write(&path, text).expect("known_hosts");
        path
    }

    /// A client config for the test user that trusts this server's keys (`StrictHostKeyChecking
    /// yes` over [`known_hosts`](Self::known_hosts)) and answers prompts with the password.
    pub(crate) fn client_config(&self) -> ClientConfig {
        ClientConfig::new(&self.user.name)
            .known_hosts(&self.known_hosts(), StrictHostKeyChecking::Yes)
            .prompter(std::rc::Rc::new(StaticPrompter::new().password(PASSWORD)))
            .connect_timeout(Duration::from_secs(10))
    }

    /// The sshd log, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("sshd.log")).unwrap_or_default()
    }

    /// A function sending a signal (`STOP`, `CONT`) to every process sshd has forked (its
    /// per-connection children and theirs), found by PID when called.
    pub(crate) fn signaller(&self) -> impl Fn(&str) + 'static {
        let root = self.child.as_ref().map(Child::id);
        move |signal: &str| {
            let mut parents: Vec<u32> = root.into_iter().collect();
            while let Some(parent) = parents.pop() {
                let path = format!("/proc/{parent}/task/{parent}/children");
                let text = std::fs::read_to_string(path).unwrap_or_default();
                for pid in text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                    let _ = Command::new("kill")
                        .arg(format!("-{signal}"))
                        .arg(pid.to_string())
                        .output();
                    parents.push(pid);
                }
            }
        }
    }

    /// The file `name` in the test user's home.
    pub(crate) fn home_file(&self, name: &str) -> PathBuf {
        self.user.home.join(name)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).output();
            let _ = child.wait();
        }
    }
}

/// `ssh-keygen -q -t kind -N passphrase -f path`.
pub(crate) fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let mut command = Command::new("ssh-keygen");
    command.args(["-q", "-t", kind, "-N", passphrase, "-C", "twine test", "-f"]).arg(path);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    run(&mut command);
}

/// A free loopback port (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Runs `future` on `reactor` to completion, or fails after `limit` (a stalled test ends
/// instead of hanging).
pub(crate) fn block_on<T: 'static>(
    reactor: &twine_core::Reactor,
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, twine_conch::client::ClientError>> + 'static,
) -> Result<T, twine_conch::client::ClientError> {
    let stopper = reactor.clone();
    let timer = reactor.call_later(limit, move || stopper.stop());
    let result = reactor.run_until(async move { Ok(future.await) });
    timer.cancel();
    result.unwrap_or_else(|err| Err(twine_conch::client::ClientError::Local(err)))
}

/// Echoes what it receives, and half-closes when the peer does.
#[derive(Default)]
pub(crate) struct Echo(Option<std::rc::Rc<dyn twine_core::Transport>>);

impl twine_core::Protocol for Echo {
    fn connection_made(&mut self, transport: std::rc::Rc<dyn twine_core::Transport>) {
        self.0 = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(transport) = &self.0 {
            transport.write(data);
        }
    }

    fn read_connection_lost(&mut self) -> twine_core::protocol::HalfClose {
        if let Some(transport) = &self.0 {
            transport.write_eof();
        }
        twine_core::protocol::HalfClose::KeepWriting
    }
}

/// Sends `payload`, half-closes, and collects everything the peer sends until it closes.
pub(crate) struct Exchange {
    payload: Vec<u8>,
    received: Vec<u8>,
    done: twine_core::Deferred<Vec<u8>>,
}

impl Exchange {
    pub(crate) fn new(payload: Vec<u8>, done: twine_core::Deferred<Vec<u8>>) -> Self {
        Self { payload, received: Vec::new(), done }
    }
}

impl twine_core::Protocol for Exchange {
    fn connection_made(&mut self, transport: std::rc::Rc<dyn twine_core::Transport>) {
        transport.write(&self.payload);
        transport.write_eof();
    }

    fn data_received(&mut self, data: &[u8]) {
        self.received.extend_from_slice(data);
    }

    fn read_connection_lost(&mut self) -> twine_core::protocol::HalfClose {
        twine_core::protocol::HalfClose::LoseConnection
    }

    fn connection_lost(&mut self, _reason: twine_core::Reason) {
        if !self.done.fired() {
            self.done.callback(std::mem::take(&mut self.received));
        }
    }
}

/// `len` bytes of a repeatable pattern that no short period repeats.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The usual start of a test: a private sshd with an authorized Ed25519 key, a reactor, and
/// a client config that logs in with that key.
pub(crate) struct Fixture {
    pub(crate) sshd: Sshd,
    pub(crate) key: PathBuf,
    pub(crate) reactor: twine_core::Reactor,
}

impl Fixture {
    /// `None` when sshd cannot run here (not root).
    pub(crate) fn start() -> Option<Self> {
        let sshd = Sshd::start(Options::default())?;
        let key = sshd.client_key("id_ed25519", "ed25519", "", true);
        let reactor = twine_core::Reactor::new().expect("reactor");
        Some(Self { sshd, key, reactor })
    }

    /// The client config: the test user, the key, the server's keys known.
    pub(crate) fn config(&self) -> ClientConfig {
        self.sshd.client_config().identity_file(&self.key)
    }

    /// The server's address.
    pub(crate) fn target(&self) -> twine_conch::client::Target {
        twine_conch::client::Target::new("127.0.0.1", self.sshd.port)
    }

    /// Runs `test` with a connection to the server; panics with the sshd log on failure.
    pub(crate) fn with_connection<T: 'static, F>(
        &self,
        test: impl FnOnce(twine_core::Reactor, twine_conch::client::Connection) -> F + 'static,
    ) -> T
    where
        F: std::future::Future<Output = Result<T, twine_conch::client::ClientError>> + 'static,
    {
        let reactor = self.reactor.clone();
        let (target, config) = (self.target(), self.config());
        let result = block_on(&self.reactor, Duration::from_secs(300), async move {
            let connection = twine_conch::client::connect(&reactor, target, config).await?;
            test(reactor, connection).await
        });
        result.unwrap_or_else(|err| panic!("{err}\n{}", self.sshd.log()))
    }
}

//! Helpers shared by the server's end-to-end tests: a twine SSH server on a loopback port (its
//! reactor on a thread of the test process), user keys made by `ssh-keygen`, and OpenSSH's
//! `ssh` run against the server with a private configuration.
#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use twine_conch::crypto::OsRandom;
use twine_conch::keys::{KeySpec, PrivateKey};
use twine_conch::server::{
    AuthorizedKeys, Chain, ForwardingPolicy, InProcessSessions, ServerFactory, SessionBackend,
    SessionInfo, StaticUsers, UnixSessions,
};
use twine_conch::stack::ServerStackConfig;
use twine_conch::userauth::{FailureDelay, Method};
use twine_conch::{connection, transport, userauth, ServerConfig};
use twine_core::basic::{LineProtocol, LineReceiver, Lines};
use twine_core::reactor::ThreadHandle;
use twine_core::Reactor;

/// The password the test server accepts for the current user.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// Debian's `sftp-server`, the Unix sessions' `sftp` subsystem.
pub(crate) const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// How long any one `ssh` may run before `timeout` kills it (a bound, never an assertion).
const SSH_TIME_LIMIT: &str = "60";

#[path = "../tempdir/mod.rs"]
mod tempdir;
pub(crate) use tempdir::TempDir;

/// What a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sessions {
    /// The user's shell and commands as processes ([`UnixSessions`]).
    Unix,
    /// An in-process `LineReceiver` that greets the user and echoes each line with `echo: `.
    Echo,
}

/// How to start a test server.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) sessions: Sessions,
    /// User authentication's methods (all of ours by default).
    pub(crate) methods: Option<Vec<Method>>,
    pub(crate) forwarding: ForwardingPolicy,
    /// Log in the system's users by their own `~/.ssh/authorized_keys` (sshd's defaults,
    /// strict modes on) instead of the current user by the server's file.
    pub(crate) system_users: bool,
}

impl Options {
    pub(crate) fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            methods: None,
            forwarding: ForwardingPolicy::default(),
            system_users: false,
        }
    }
}

/// The in-process session of [`Sessions::Echo`]: greets the user, then answers `info` with
/// the terminal, `exit N` by ending with status N, and anything else with `echo: ` and the
/// line.
struct Echo(Rc<SessionInfo>);

impl LineProtocol for Echo {
    fn connection_made(&mut self, lines: &mut Lines) {
        lines.send_line(format!("hello {}", self.0.login.user).as_bytes());
    }

    fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        if line == "info" {
            let size = self.0.window_size().map(|s| format!("{}x{}", s.cols, s.rows));
            let info = format!("term={:?} size={size:?}", self.0.term());
            lines.send_line(info.as_bytes());
        } else if let Some(code) = line.strip_prefix("exit ") {
            self.0.set_exit_status(code.parse().unwrap_or(255));
            lines.lose_connection();
        } else {
            lines.send_line(format!("echo: {line}").as_bytes());
        }
    }
}

/// Logs to standard error when `TWINE_TEST_LOG` is set (`debug`, `info`, ...).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
    }

    fn flush(&self) {}
}

fn init_log() {
    static LOG: StderrLog = StderrLog;
    let Ok(level) = std::env::var("TWINE_TEST_LOG") else { return };
    if log::set_logger(&LOG).is_ok() {
        log::set_max_level(level.parse().unwrap_or(log::LevelFilter::Debug));
    }
}

/// The current user's login name.
pub(crate) fn current_user() -> String {
    twine_conch::server::Account::current().unwrap().name
}

/// The server's configuration, built on its reactor's thread.
fn server_config(
    reactor: &Reactor,
    options: &Options,
    authorized_keys: &Path,
) -> (ServerConfig, String) {
    let mut rng = OsRandom::new();
    let host_key = PrivateKey::generate(KeySpec::Ed25519, &mut rng).unwrap();
    let host_line = host_key.public_key().to_openssh();
    let transport = transport::ServerConfig::new(vec![Arc::new(host_key)]);
    let mut userauth = userauth::ServerConfig::new([0x42; 32]);
    userauth.failure_delay = FailureDelay::dangerous_none();
    if let Some(methods) = &options.methods {
        userauth.methods = methods.clone();
    }
    let stack = ServerStackConfig::new(transport, userauth, connection::Config::default()).unwrap();
    let keys = if options.system_users {
        AuthorizedKeys::new()
    } else {
        AuthorizedKeys::for_current_user(authorized_keys).unwrap().with_strict_modes(false)
    };
    let users = StaticUsers::new().with_password(&current_user(), PASSWORD);
    let auth = Chain::new().with(keys).with(users);
    let sessions: Box<dyn SessionBackend> = match options.sessions {
        Sessions::Unix => Box::new(UnixSessions::new(reactor).with_subsystem("sftp", SFTP_SERVER)),
        Sessions::Echo => Box::new(InProcessSessions::new(|info| {
            let echo = LineReceiver::new(Echo(Rc::clone(info))).with_delimiter(b"\n");
            Some(Box::new(echo))
        })),
    };
    let mut config = ServerConfig::new(stack, auth, sessions);
    config.forwarding = options.forwarding.clone();
    (config, host_line)
}

/// A twine SSH server running on its own thread, stopped on drop.
pub(crate) struct Server {
    pub(crate) port: u16,
    pub(crate) dir: TempDir,
    pub(crate) user: String,
    handle: ThreadHandle,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// A server listening on 127.0.0.1, port chosen by the OS.
    pub(crate) fn start(options: Options) -> Self {
        Self::serve(options, false)
    }

    /// A server for one connection over two FIFOs in its directory, `from_client` and
    /// `to_client` (inetd mode: [`ServerFactory::protocol`] on a descriptor pair, adopted by
    /// the reactor). [`Server::ssh`] reaches it through a `ProxyCommand`.
    pub(crate) fn start_on_pipes(options: Options) -> Self {
        Self::serve(options, true)
    }

    fn serve(options: Options, pipes: bool) -> Self {
        init_log();
        let dir = TempDir::new("server");
        std::fs::write(dir.path("authorized_keys"), "").unwrap();
        let authorized_keys = dir.path("authorized_keys");
        let (from_client, to_client) = (dir.path("from_client"), dir.path("to_client"));
        if pipes {
            for fifo in [&from_client, &to_client] {
                let status = Command::new("mkfifo").arg(fifo).status().unwrap();
                assert!(status.success(), "mkfifo");
            }
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let reactor = Reactor::new().unwrap();
            let (config, host_line) = server_config(&reactor, &options, &authorized_keys);
            let factory = ServerFactory::new(&reactor, config);
            let mut listening = None;
            if pipes {
                tx.send((0, host_line, reactor.thread_handle())).unwrap();
                // Opening a FIFO waits for its other end: the client's ProxyCommand.
                let read: OwnedFd = std::fs::File::open(from_client).unwrap().into();
                let write: OwnedFd =
                    std::fs::OpenOptions::new().write(true).open(to_client).unwrap().into();
                reactor.adopt_fd_pair(read, write, factory.protocol()).unwrap();
            } else {
                let address: SocketAddr = ([127, 0, 0, 1], 0).into();
                let port = reactor.listen_tcp(address, factory).unwrap();
                let number = port.tcp_address().unwrap().port();
                tx.send((number, host_line, reactor.thread_handle())).unwrap();
                listening = Some(port);
            }
            reactor.run().unwrap();
            drop(listening);
        });
        let (port, host_line, handle) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        let known_hosts = match port {
            0 => format!("pipes {host_line}\n"),
            port => format!("[127.0.0.1]:{port} {host_line}\n"),
        };
        std::fs::write(dir.path("known_hosts"), known_hosts).unwrap();
        Self { port, dir, user: current_user(), handle, thread: Some(thread) }
    }

    /// Lets `key`'s public half log in, with `options` (an `authorized_keys` options field,
    /// or empty).
    pub(crate) fn authorize(&self, key: &Path, options: &str) {
        let public = std::fs::read_to_string(pub_path(key)).unwrap();
        let line = match options {
            "" => public,
            options => format!("{options} {public}"),
        };
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path("authorized_keys"))
            .unwrap();
        file.write_all(line.as_bytes()).unwrap();
    }

    /// `ssh` to this server as the current user, with only what the arguments say: no user
    /// configuration, the server's host key as the only known one, no agent.
    pub(crate) fn ssh(&self) -> Ssh {
        self.ssh_as(&self.user)
    }

    /// `ssh` to this server as `user` (see [`Server::ssh`]).
    pub(crate) fn ssh_as(&self, user: &str) -> Ssh {
        let mut args: Vec<String> = [
            "-F",
            "/dev/null",
            "-o",
            &format!("UserKnownHostsFile={}", self.dir.p("known_hosts")),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if self.port == 0 {
            let proxy = format!(
                "ProxyCommand=sh -c 'cat {} & exec cat > {}'",
                self.dir.p("to_client"),
                self.dir.p("from_client")
            );
            args.extend(["-o".into(), proxy, "-o".into(), "HostKeyAlias=pipes".into()]);
        } else {
            args.extend(["-p".into(), self.port.to_string()]);
        }
        Ssh { args, password: None, destination: format!("{user}@127.0.0.1") }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.handle.call_from_thread(Reactor::stop);
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if result.is_err() && !std::thread::panicking() {
                panic!("the server thread panicked");
            }
        }
    }
}

/// One `ssh` invocation being built.
pub(crate) struct Ssh {
    args: Vec<String>,
    password: Option<String>,
    destination: String,
}

impl Ssh {
    /// Logs in with the private key at `key` only (`BatchMode`: never a prompt).
    pub(crate) fn key(mut self, key: &Path) -> Self {
        self.args.extend(
            [
                "-i",
                key.to_str().unwrap(),
                "-o",
                "BatchMode=yes",
                "-o",
                "PreferredAuthentications=publickey",
            ]
            .map(str::to_owned),
        );
        self
    }

    /// Logs in with `password` typed by `sshpass`.
    pub(crate) fn password(mut self, password: &str) -> Self {
        self.args.extend(
            ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password"]
                .map(str::to_owned),
        );
        self.password = Some(password.to_owned());
        self
    }

    /// Adds `ssh` options.
    pub(crate) fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| (*s).to_owned()));
        self
    }

    fn command(&self, remote: &[&str]) -> Command {
        self.command_of("ssh", &self.args, remote)
    }

    /// `program` (`ssh`, `sftp`, `scp`) with `args` (ssh options), the destination, `rest`.
    fn command_of(&self, program: &str, args: &[String], rest: &[&str]) -> Command {
        let mut command = Command::new("timeout");
        command.arg(SSH_TIME_LIMIT);
        if let Some(password) = &self.password {
            command.args(["sshpass", "-p", password]);
        }
        command.arg(program).args(args).arg(&self.destination).args(rest);
        command.env_remove("SSH_AUTH_SOCK").env_remove("DISPLAY").env_remove("SSH_ASKPASS");
        command
    }

    /// Runs `remote` (nothing: a shell) with `stdin`, to the end.
    pub(crate) fn run(&self, remote: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh runs (install openssh-client and sshpass)");
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        output
    }

    /// Runs `sftp` with the same options, in batch mode on `batch` (`sftp -b -`).
    pub(crate) fn sftp(&self, batch: &str) -> Output {
        // sftp takes ssh's options but not its -p: the port goes as -P.
        let mut args = Vec::new();
        let mut rest = self.args.iter();
        while let Some(arg) = rest.next() {
            if arg == "-p" {
                args.push("-P".to_owned());
                args.extend(rest.next().cloned());
            } else {
                args.push(arg.clone());
            }
        }
        args.extend(["-b".to_owned(), "-".to_owned()]);
        let mut child = self
            .command_of("sftp", &args, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sftp runs");
        child.stdin.take().unwrap().write_all(batch.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Starts `ssh` with `remote`, its stdin empty and held open, stdout and stderr piped.
    pub(crate) fn spawn(&self, remote: &[&str]) -> Child {
        self.command(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh runs")
    }

    /// The command line, for `script -c` (a shell-quoted string).
    /// Runs `remote` with `ssh`'s standard input, output and error on a new pty of `rows` ×
    /// `columns` (as a user's terminal would be), to the end; returns the exit code and what
    /// the terminal showed. `ssh` is bounded by the same time limit as every other run.
    pub(crate) fn run_on_terminal(
        &self,
        rows: u16,
        columns: u16,
        remote: &[&str],
    ) -> (Option<i32>, String) {
        use std::io::Read as _;
        let size = nix::pty::Winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).expect("a pty opens");
        let slave = |pty: &nix::pty::OpenptyResult| Stdio::from(pty.slave.try_clone().unwrap());
        let mut child = self
            .command(remote)
            .stdin(slave(&pty))
            .stdout(slave(&pty))
            .stderr(slave(&pty))
            .spawn()
            .expect("ssh runs (install openssh-client)");
        let nix::pty::OpenptyResult { master, slave } = pty;
        drop(slave);
        let reader = std::thread::spawn(move || {
            let mut master = std::fs::File::from(master);
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // EIO once every holder of the slave side has gone.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&seen).into_owned()
        });
        let status = child.wait().unwrap();
        (status.code(), reader.join().unwrap())
    }
}

/// `arg` quoted for `sh`.
pub(crate) fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// A new key pair of `kind` (`ed25519`, `ecdsa`, `rsa`) made by `ssh-keygen` in `dir`.
pub(crate) fn keygen(dir: &TempDir, kind: &str) -> PathBuf {
    let path = dir.path(&format!("id_{kind}"));
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen -t {kind}");
    path
}

/// `server` with a fresh Ed25519 user key authorized; the key lives in the directory returned
/// with it.
pub(crate) fn with_key(server: Server) -> (Server, TempDir, PathBuf) {
    let keys = TempDir::new("keys");
    let key = keygen(&keys, "ed25519");
    server.authorize(&key, "");
    (server, keys, key)
}

/// `path.pub`.
pub(crate) fn pub_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", path.display()))
}

/// Standard output as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A TCP echo server on 127.0.0.1 (a thread per connection), for forwarding tests; returns
/// its port. Each connection is answered with everything it sent, until its end of file.
pub(crate) fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0; 16 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// Connects to `address`, retrying while nothing listens yet (a forward being set up), at
/// most `tries` times a tenth of a second apart.
pub(crate) fn connect_when_listening(address: SocketAddr, tries: u32) -> TcpStream {
    for _ in 0..tries {
        if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            return stream;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on {address}");
}

/// Sends `data` through `stream` and reads back as much, then checks it came back whole;
/// the writer runs on its own thread so that neither direction waits for the other.
pub(crate) fn round_trip(stream: TcpStream, data: &[u8]) {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = data.to_vec();
    let thread = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    let mut reader = stream;
    reader.read_to_end(&mut back).unwrap();
    thread.join().unwrap();
    assert_eq!(back.len(), data.len(), "bytes back");
    assert!(back == data, "the bytes came back changed");
}

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Stops a child this test started (`timeout`, which passes the signal on to `ssh`), by its
/// id, and reaps it.
pub(crate) fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

//! Running the `conch` binary against a private OpenSSH sshd (from `client_support`): an
//! `ssh_config` for the server, the command, its output; tmux for terminal sessions.

#![allow(
    dead_code,
    unreachable_pub,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "../client_support/mod.rs"]
pub(crate) mod client_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub(crate) use client_support::{free_port, keygen, Options, Sshd};

/// The binary under test.
pub const CONCH: &str = env!("CARGO_BIN_EXE_conch");

/// A server, a key it accepts, and an `ssh_config` naming it `server`.
pub struct Setup {
    pub sshd: Sshd,
    pub key: PathBuf,
    pub config: PathBuf,
    /// An empty home for conch (no `~/.ssh` of the user running the tests is read).
    pub home: PathBuf,
}

impl Setup {
    /// `None` when sshd cannot run here (not root).
    pub fn start() -> Option<Self> {
        Self::with_options(Options::default())
    }

    pub fn with_options(options: Options) -> Option<Self> {
        let sshd = Sshd::start(options)?;
        let key = sshd.client_key("id_ed25519", "ed25519", "", true);
        let home = sshd.dir.path("client-home");
        std::fs::create_dir_all(&home).unwrap();
        let config = sshd.dir.path("ssh_config");
        let setup = Self { sshd, key, config, home };
        setup.write_config("");
        Some(setup)
    }

    /// Writes the config: `Host server` with the server's address, user, key and known hosts,
    /// plus `extra` lines in the block.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "Host server\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n{extra}\n",
            self.sshd.port,
            self.sshd.user.name,
            self.key.display(),
            self.sshd.known_hosts().display(),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// `conch -F config args...`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(CONCH);
        command
            .env("HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSH_ASKPASS")
            .arg("-F")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `conch -F config args...` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("conch runs")
    }

    /// Panics with everything known when `output` is not a success.
    pub fn check(&self, output: &Output) {
        assert!(
            output.status.success(),
            "conch failed: {:?}\nstdout: {}\nstderr: {}\nsshd log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.sshd.log()
        );
    }
}

/// A shell-quoted string.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A tmux server of our own (its own socket), stopped when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `command` in a detached `cols` × `rows` session.
    pub fn start(dir: &Path, command: &str, cols: u16, rows: u16) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A socket of its own per server: a server being stopped may still hold the last one.
        let socket = dir.join(format!("tmux-{n}.sock"));
        let tmux = Self { socket };
        let status = tmux
            .tmux()
            .args(["new-session", "-d", "-x", &cols.to_string(), "-y", &rows.to_string()])
            .arg(command)
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        command
    }

    /// Types `keys` (tmux key names: `Enter`, `C-c`, or literal text).
    pub fn send(&self, keys: &[&str]) {
        let status = self.tmux().arg("send-keys").args(keys).status().unwrap();
        assert!(status.success());
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        let status = self.tmux().args(["send-keys", "-l", "--", text]).status().unwrap();
        assert!(status.success());
    }

    /// The screen's text.
    pub fn screen(&self) -> String {
        let out = self.tmux().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Resizes the window.
    pub fn resize(&self, cols: u16, rows: u16) {
        let status = self
            .tmux()
            .args(["resize-window", "-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most 30 s, polling) until the screen shows `text`; the screen then.
    pub fn wait_for(&self, text: &str) -> String {
        for _ in 0..300 {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the screen never showed {text:?}:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// Waits (at most 30 s) until `port` on loopback accepts connections.
pub fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port}");
}

/// An echo server on a loopback port, in a thread, for `count` connections.
pub fn echo_server(count: usize) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
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

/// Sends `payload` over a connection, half-closes, and reads everything back.
pub fn exchange(mut stream: std::net::TcpStream, payload: &[u8]) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let payload = payload.to_vec();
        std::thread::spawn(move || {
            stream.write_all(&payload).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    writer.join().unwrap();
    received
}

/// A child process killed (by its PID) when dropped.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

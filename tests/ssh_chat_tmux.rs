//! End to end: `examples/ssh_chat.rs` on a loopback port, two OpenSSH clients (`ssh -tt`) in
//! a private tmux server typing to each other; each sees the other's message on its screen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/ssh_chat.rs"]
mod ssh_chat;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use twine_core::reactor::ThreadHandle;
use twine_core::Reactor;

/// How many times a screen is looked at before a test gives up (every 50 ms: 30 s).
const POLLS: usize = 600;

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("twine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The chat server, its reactor on a thread of this process.
struct ChatServer {
    address: SocketAddr,
    handle: ThreadHandle,
    thread: Option<JoinHandle<()>>,
}

impl ChatServer {
    fn start(dir: &Path) -> Self {
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_owned();
        let thread = std::thread::spawn(move || {
            let reactor = Reactor::new().unwrap();
            let address = ssh_chat::serve(&reactor, ([127, 0, 0, 1], 0).into(), &dir).unwrap();
            tx.send((address, reactor.thread_handle())).unwrap();
            reactor.run().unwrap();
        });
        let (address, handle) = rx.recv().expect("the server started");
        Self { address, handle, thread: Some(thread) }
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        let _ = self.handle.call_from_thread(Reactor::stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A tmux server of our own (`tmux -L`), killed on drop; nobody else's is touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        Self { socket: format!("twine-chat-{}", std::process::id()) }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs")
    }

    /// A detached session `name` of 80x24 running `command` (kept on screen after it exits).
    fn session(&self, name: &str, command: &str) {
        let shell = format!("{command}; echo \"[ssh exited $?]\"; exec cat");
        let out = self.run(&["new-session", "-d", "-s", name, "-x", "80", "-y", "24", &shell]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn screen(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
    }

    fn type_line(&self, name: &str, text: &str) {
        assert!(self.run(&["send-keys", "-t", name, "-l", text]).status.success());
        assert!(self.run(&["send-keys", "-t", name, "Enter"]).status.success());
    }

    /// Looks at `name`'s screen until it shows `needle` (a bounded number of times).
    fn wait_for(&self, name: &str, needle: &str) -> String {
        let mut screen = String::new();
        for _ in 0..POLLS {
            screen = self.screen(name);
            if screen.contains(needle) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name}'s screen never showed {needle:?}; it shows:\n{screen}");
    }

    /// Looks at `name`'s screen until its row `row` starts with `start`.
    fn wait_for_row(&self, name: &str, row: usize, start: &str) {
        let mut screen = String::new();
        for _ in 0..POLLS {
            screen = self.screen(name);
            if screen.lines().nth(row).is_some_and(|line| line.starts_with(start)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name}'s row {row} never started with {start:?}; the screen is:\n{screen}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// `ssh -tt` as `user` with `key`, to the server, with no configuration but ours.
fn ssh_command(server: &ChatServer, dir: &Path, key: &Path, user: &str) -> String {
    format!(
        "ssh -tt -F /dev/null -o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o BatchMode=yes -i {key} -p {port} {user}@127.0.0.1",
        known = dir.join("known_hosts").display(),
        key = key.display(),
        port = server.address.port(),
    )
}

fn keygen(dir: &Path) -> PathBuf {
    keygen_named(dir, "id_ed25519")
}

fn keygen_named(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "chat", "-f"])
        .arg(&key)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    key
}

/// Alice and Bob log in with plain `ssh`, each sees the other arrive, they talk, and when Bob
/// leaves Alice's screen says so.
#[test]
fn two_ssh_clients_in_tmux_see_each_others_messages() {
    let scratch = Scratch::new("chat-tmux");
    let key = keygen(&scratch.0);
    let server = ChatServer::start(&scratch.0.join("server"));
    let tmux = Tmux::new();
    tmux.session("alice", &ssh_command(&server, &scratch.0, &key, "alice"));
    tmux.wait_for("alice", "Welcome, alice!");
    tmux.session("bob", &ssh_command(&server, &scratch.0, &key, "bob"));
    tmux.wait_for("bob", "Welcome, bob!");
    tmux.wait_for("alice", "bob joined #lobby");

    tmux.type_line("alice", "hello from alice");
    tmux.wait_for("bob", "alice: hello from alice");
    tmux.type_line("bob", "hi alice, bob here");
    let screen = tmux.wait_for("alice", "bob: hi alice, bob here");
    assert!(screen.contains("alice: hello from alice"), "{screen}");
    assert!(screen.contains("#lobby · 2 here"), "{screen}");

    // A taller window sends `window-change`: the input line moves to the new last row.
    let resize = ["resize-window", "-t", "alice", "-x", "100", "-y", "30"];
    assert!(tmux.run(&resize).status.success());
    tmux.wait_for_row("alice", 29, "alice>");
    tmux.wait_for_row("alice", 0, " #lobby · 2 here");

    tmux.type_line("bob", "/quit");
    tmux.wait_for("bob", "[ssh exited 0]");
    tmux.wait_for("alice", "bob left");
}

/// One `ssh -tt` login as `user` with `key`, its input at once at its end: the chat starts
/// and the end of input ends it. The host key is pinned under one alias for every port.
fn login_once(server: &ChatServer, dir: &Path, key: &Path, user: &str) -> Output {
    let command = ssh_command(server, dir, key, user).replace(
        "StrictHostKeyChecking=accept-new",
        "StrictHostKeyChecking=accept-new -o HostKeyAlias=chat",
    );
    Command::new("timeout")
        .args(["60", "sh", "-c", &command])
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs")
}

/// Trust on first use, end to end: the first key claims a name, another key is refused for
/// it, and after a restart on the same directory both the users and the host key are the same
/// (`ssh` checks the host key against the one it accepted the first time).
#[test]
fn the_chat_remembers_its_users_and_host_key_across_a_restart() {
    let scratch = Scratch::new("chat-tofu");
    let (mine, other) = (keygen(&scratch.0), keygen_named(&scratch.0, "id_other"));
    let dir = scratch.0.join("server");
    for round in ["first run", "after a restart"] {
        let server = ChatServer::start(&dir);
        let out = login_once(&server, &scratch.0, &mine, "alice");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{round}: {stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Welcome, alice!"), "{round}");
        let out = login_once(&server, &scratch.0, &other, "alice");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{round}: {stderr}");
        assert!(stderr.contains("Permission denied"), "{round}: {stderr}");
    }
    let users = std::fs::read_to_string(dir.join("users")).unwrap();
    assert_eq!(users.lines().count(), 1, "{users}");
    assert!(users.starts_with("SHA256:") && users.trim_end().ends_with(" alice"), "{users}");
}

//! End to end: `ssh -tt` gets a terminal from a twine server's Unix sessions, with the size and
//! environment sshd gives it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use server_support::{stderr, stdout, stop, with_key, Options, Server, Sessions};

/// With `-tt` the command runs on a pty (`tty` names it, as `SSH_TTY` does), and its output
/// comes back through the terminal (with CR LF).
#[test]
fn a_forced_tty_runs_the_command_on_a_pty() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let output = server.ssh().key(&key).args(&["-tt"]).run(&["tty; echo \"tty=$SSH_TTY\""], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{text:?}");
    assert_eq!(lines[1], format!("tty={}", lines[0]), "{text:?}");
}

/// The pty has the client terminal's size (`stty size`), as `ssh` reads it from its own
/// terminal: here a pty of 33 rows and 101 columns.
#[test]
fn the_pty_has_the_client_terminals_size() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let (code, shown) =
        server.ssh().key(&key).args(&["-tt"]).run_on_terminal(33, 101, &["stty size"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("33 101\r\n"), "{shown:?}");
}

/// The pty belongs to the user, with sshd's mode (`pty_setowner`: 0620 with a `tty` group),
/// when the command first looks at it. (Giving it to a user other than the server's is shown
/// in twine-core's `gives_the_terminal_to_its_owner_before_the_child_starts`.)
#[test]
fn the_pty_belongs_to_the_user_when_the_command_starts() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let output =
        server.ssh().key(&key).args(&["-tt"]).run(&["stat -c '%u %a' \"$(tty)\"; id -u"], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.split("\r\n").collect();
    let (owner, mode) = lines[0].split_once(' ').unwrap();
    assert_eq!(owner, lines[1], "{text:?}");
    assert!(mode == "620" || mode == "600", "{text:?}");
}

/// `ssh -tt` with no command runs the user's login shell on the pty: it reads what is typed,
/// and its exit status ends the session.
#[test]
fn a_login_shell_runs_on_the_pty() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let typed = b"echo \"shell:$0:$SSH_TTY\"; exit 3\n";
    let output = server.ssh().key(&key).args(&["-tt"]).run(&[], typed);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stdout(&output);
    let shell = twine_conch::server::Account::current().unwrap().shell;
    let name = shell.file_name().unwrap().to_str().unwrap();
    assert!(text.contains(&format!("shell:-{name}:/dev/pts/")), "{text:?}");
}

/// When the client goes away, the session on its pty is hung up: the shell's process group
/// ends instead of living on.
#[test]
fn a_lost_connection_hangs_up_the_session() {
    use std::io::BufRead as _;
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let mut ssh = server.ssh().key(&key).args(&["-tt"]).spawn(&["echo pid=$$; exec sleep 300"]);
    let out = ssh.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let pid = loop {
        let line = lines.next().expect("ssh printed the pid").unwrap();
        if let Some(pid) = line.trim_end().strip_prefix("pid=") {
            break pid.to_owned();
        }
    };
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists(), "the session runs");
    stop(&mut ssh);
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !proc.exists() || is_zombie(&proc)
    });
    assert!(gone, "process {pid} outlived its connection");
}

/// Whether the process at `proc` has exited and waits to be reaped.
fn is_zombie(proc: &std::path::Path) -> bool {
    std::fs::read_to_string(proc.join("stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
}

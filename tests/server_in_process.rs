//! End to end: an in-process session (a `LineReceiver` written for TCP) serves OpenSSH's
//! `ssh` over a channel, on a TCP port and over a pipe pair (inetd mode).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use server_support::{stderr, stdout, with_key, Options, Server, Sessions, TempDir, PASSWORD};

/// A server of echo sessions (over a pipe pair or TCP) with one authorized key, and the key.
fn echo_server_and_key(pipes: bool) -> (Server, TempDir, std::path::PathBuf) {
    let options = Options::new(Sessions::Echo);
    with_key(if pipes { Server::start_on_pipes(options) } else { Server::start(options) })
}

/// The line protocol greets the user and answers each line; the client's end of input ends
/// the session, which reports exit status 0.
#[test]
fn a_line_protocol_runs_over_the_channel() {
    let (server, _keys, key) = echo_server_and_key(false);
    let output = server.ssh().key(&key).args(&["-T"]).run(&[], b"one\ntwo\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let expected = format!("hello {}\necho: one\necho: two\n", server.user);
    assert_eq!(stdout(&output), expected);
}

/// The session ends itself with the exit status it chose; lines after it are not answered.
#[test]
fn the_session_chooses_its_exit_status() {
    let (server, _keys, key) = echo_server_and_key(false);
    let output = server.ssh().key(&key).args(&["-T"]).run(&[], b"before\nexit 44\nafter\n");
    assert_eq!(output.status.code(), Some(44), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("hello {}\necho: before\n", server.user));
}

/// A password login reaches the same session; with `-tt` it sees the client's terminal type.
#[test]
fn the_session_sees_the_terminal_type() {
    let (server, _keys, _key) = echo_server_and_key(false);
    let ssh = server.ssh().password(PASSWORD).args(&["-tt", "-o", "SetEnv=TERM=vt220"]);
    let output = ssh.run(&[], b"info\nexit 0\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("term=Some(\"vt220\")"), "{:?}", stdout(&output));
}

/// inetd mode: the server serves one connection over a pipe pair (the client's
/// `ProxyCommand` on two FIFOs), the same as over TCP.
#[test]
fn a_pipe_pair_serves_one_connection() {
    let (server, _keys, key) = echo_server_and_key(true);
    let output = server.ssh().key(&key).args(&["-T"]).run(&[], b"through pipes\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let expected = format!("hello {}\necho: through pipes\n", server.user);
    assert_eq!(stdout(&output), expected);
}

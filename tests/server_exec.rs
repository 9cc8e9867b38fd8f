//! End to end: OpenSSH's `ssh` runs commands through a twine server's Unix sessions, with
//! standard output, standard error and the exit status (or signal) as sshd reports them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use server_support::{stderr, stdout, with_key, Options, Server, Sessions};

/// Standard output, standard error and the exit status come back separately, for statuses 0,
/// 1 and 44.
#[test]
fn commands_report_output_errors_and_exit_status() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let cases = [
        ("echo out; echo err >&2", "out\n", "err\n", 0),
        ("echo failing >&2; exit 1", "", "failing\n", 1),
        ("printf 'a\\nb'; exit 44", "a\nb", "", 44),
    ];
    for (command, out, err, code) in cases {
        let output = server.ssh().key(&key).run(&[command], b"");
        assert_eq!(output.status.code(), Some(code), "{command}: {}", stderr(&output));
        assert_eq!(stdout(&output), out, "{command}");
        assert_eq!(stderr(&output), err, "{command}");
    }
}

/// A command killed by a signal is reported with `exit-signal` (which `ssh` turns into status
/// 255), after its output.
#[test]
fn a_command_killed_by_a_signal_is_reported() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let output = server.ssh().key(&key).args(&["-v"]).run(&["echo before; kill -KILL $$"], b"");
    assert_eq!(output.status.code(), Some(255));
    assert_eq!(stdout(&output), "before\n");
    let log = stderr(&output);
    assert!(log.contains("rtype exit-signal"), "{log}");
    assert!(!log.contains("rtype exit-status"), "{log}");
}

/// Standard input reaches the command, and its end of file ends `cat`.
#[test]
fn standard_input_reaches_the_command() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let output = server.ssh().key(&key).run(&["cat; echo done"], b"line one\nline two\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "line one\nline two\ndone\n");
}

/// The session's environment is sshd's: the user's name and home, `SSH_CONNECTION` naming
/// both ends, no `SSH_TTY` without a terminal.
#[test]
fn the_environment_is_sshds() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let script = "echo \"$USER|$LOGNAME|$HOME|$SSH_CONNECTION|${SSH_TTY-none}\"; pwd";
    let output = server.ssh().key(&key).run(&[script], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let mut lines = text.lines();
    let fields: Vec<&str> = lines.next().unwrap().split('|').collect();
    let account = twine_conch::server::Account::current().unwrap();
    assert_eq!(fields[0], account.name);
    assert_eq!(fields[1], account.name);
    assert_eq!(fields[2], account.home.to_str().unwrap());
    let connection: Vec<&str> = fields[3].split(' ').collect();
    assert_eq!(connection.len(), 4, "{}", fields[3]);
    assert_eq!((connection[0], connection[2]), ("127.0.0.1", "127.0.0.1"));
    assert_eq!(connection[3], server.port.to_string());
    assert_eq!(fields[4], "none");
    assert_eq!(lines.next(), account.home.to_str());
}

/// The `sftp` subsystem runs `sftp-server`: a file goes up and comes back whole; an unknown
/// subsystem is refused.
#[test]
fn the_sftp_subsystem_moves_files() {
    let (server, keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let local = keys.path("local");
    let data: Vec<u8> = (0..=255_u8).cycle().take(300_000).collect();
    std::fs::write(&local, &data).unwrap();
    let (remote, back) = (server.dir.path("remote"), keys.path("back"));
    let batch = format!(
        "put {} {}\nget {} {}\n",
        local.display(),
        remote.display(),
        remote.display(),
        back.display()
    );
    let output = server.ssh().key(&key).sftp(&batch);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(std::fs::read(&remote).unwrap() == data, "uploaded");
    assert!(std::fs::read(&back).unwrap() == data, "downloaded");

    let output = server.ssh().key(&key).args(&["-s"]).run(&["no-such-subsystem"], b"");
    assert_eq!(output.status.code(), Some(255));
    assert!(stderr(&output).contains("subsystem request failed"), "{}", stderr(&output));
}

/// The client's keepalives (`ServerAliveInterval`, `keepalive@openssh.com` wanting a reply)
/// are answered, so a quiet command outlives the client's limit of one unanswered probe.
#[test]
fn client_keepalives_are_answered() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let options = ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=1"];
    let output = server.ssh().key(&key).args(&options).run(&["sleep 3; echo alive"], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "alive\n");
}

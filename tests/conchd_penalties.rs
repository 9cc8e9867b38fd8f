//! `conchd`'s `PerSourcePenalties` and `PerSourceMaxStartups`, end to end on loopback: sources
//! are told apart by binding 127.0.0.2, 127.0.0.3, ... (all of 127/8 is loopback on Linux).
//!
//! The login tests need root (a throwaway account and a root `conchd`); otherwise they print
//! why and return. Every wait is bounded; every process started here is killed or waited for
//! by its PID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use conchd_support::{
    client_options, conchd_command, free_port, is_root, keygen, output, ssh_with_password, stderr,
    Daemon, TempDir, TestUser, CLIENT_TIME_LIMIT,
};

/// A `conchd` with `extra` configuration, and (as root) a user whose key is `key`.
struct Setup {
    dir: TempDir,
    key: PathBuf,
    stranger: PathBuf,
    user: Option<TestUser>,
    daemon: Daemon,
}

fn setup(tag: &str, extra: &str, with_user: bool) -> Option<Setup> {
    setup_with_workers(tag, extra, with_user, 2)
}

/// [`setup`] with `workers` privilege-separated workers (as root; otherwise one process).
fn setup_with_workers(tag: &str, extra: &str, with_user: bool, workers: u32) -> Option<Setup> {
    setup_with_env(tag, extra, with_user, &[("CONCHD_PRIVSEP_WORKERS", &workers.to_string())])
}

/// [`setup`] with `env` set for `conchd`.
fn setup_with_env(tag: &str, extra: &str, with_user: bool, env: &[(&str, &str)]) -> Option<Setup> {
    if with_user && !is_root() {
        println!("{tag}: skipped: needs root to create a test user");
        return None;
    }
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let stranger = keygen(dir.root(), "stranger", "ed25519");
    let user = if with_user {
        let Some(user) = TestUser::create(&dir.path("home"), &key) else {
            println!("{tag}: skipped: useradd failed");
            return None;
        };
        Some(user)
    } else {
        None
    };
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nLogLevel INFO\n{extra}",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    // As root conchd separates privileges: the monitor keeps the penalties and counts
    // MaxStartups and PerSourceMaxStartups over every worker.
    command.args(["-D", "-e", "-f", &config]).envs(env.iter().copied());
    let daemon = Daemon::start(command);
    Some(Setup { dir, key, stranger, user, daemon })
}

impl Setup {
    /// `ssh` from `source` with `key`, running `echo in`: whether it got in, and its stderr.
    fn login_from(&self, source: &str, key: &std::path::Path) -> (bool, String) {
        let user = self.user.as_ref().map_or("nobody", |u| u.name.as_str());
        self.login_as(source, key, user)
    }

    /// Waits (bounded) for a log line with every one of `needles`.
    fn log_line(&self, needles: &[&str]) -> Option<String> {
        self.log_line_or_seen(needles).ok()
    }

    /// [`log_line`](Self::log_line), or the lines seen meanwhile (for a failure's message).
    fn log_line_or_seen(&self, needles: &[&str]) -> Result<String, Vec<String>> {
        match self.log_lines_until(needles) {
            (Some(line), _) => Ok(line),
            (None, seen) => Err(seen),
        }
    }

    /// [`Daemon::log_lines_any_order`] on this setup's daemon.
    fn log_lines_any_order(&self, wanted: &[&[&str]]) -> Result<Vec<String>, Vec<String>> {
        self.daemon.log_lines_any_order(wanted)
    }

    /// Waits (bounded) for a log line with every one of `needles`: it, and the lines before.
    fn log_lines_until(&self, needles: &[&str]) -> (Option<String>, Vec<String>) {
        let mut seen = Vec::new();
        for _ in 0..600 {
            match self.daemon.log.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return (Some(line), seen),
                Ok(line) => seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        (None, seen)
    }

    /// A raw TCP connection from `source`.
    fn connect_from(&self, source: &str) -> TcpStream {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let from: SocketAddr = format!("{source}:0").parse().unwrap();
        socket.bind(&from.into()).unwrap();
        let to: SocketAddr = format!("127.0.0.1:{}", self.daemon.port).parse().unwrap();
        socket.connect(&to.into()).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
    }
}

/// The first line the server sends on `stream` (up to 255 bytes, bounded by the read
/// timeout); empty if it closed first.
fn first_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 255 {
        match stream.read(&mut byte) {
            Ok(1) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// A source that fails to authenticate (an unauthorized key from 127.0.0.2, with
/// `authfail:10 min:5`: one failure is a penalty of 10 s, active at once) is refused at accept
/// with sshd's log line, even with the right key; another source (127.0.0.3) logs in
/// meanwhile; and once the penalty expires 127.0.0.2 logs in again (waited for, bounded).
#[test]
fn a_source_that_fails_authentication_is_refused_for_its_penalty_while_another_logs_in() {
    let Some(s) = setup("penalty", "PerSourcePenalties authfail:10 min:5\n", true) else {
        return;
    };
    let (got_in, _) = s.login_from("127.0.0.2", &s.stranger);
    assert!(!got_in, "an unauthorized key logged in");
    // The penalty comes once the server has seen the connection close (after ssh is gone).
    let active = s.log_line_or_seen(&["penalty now active", "failed authentication"]);
    assert!(active.is_ok(), "no authfail penalty: {active:#?}");
    let (got_in, said) = s.login_from("127.0.0.2", &s.key);
    assert!(!got_in, "a penalised source logged in");
    assert!(!said.contains("Permission denied"), "refused at authentication, not accept: {said}");
    let line = s.log_line(&["drop connection #", "from [127.0.0.2]:"]).expect("a drop line");
    let port = s.daemon.port;
    assert!(
        line.contains(&format!("on [127.0.0.1]:{port} penalty: failed authentication")),
        "{line}"
    );
    let (got_in, said) = s.login_from("127.0.0.3", &s.key);
    assert!(got_in, "another source was kept out: {said}");
    let mut back = false;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        if s.login_from("127.0.0.2", &s.key).0 {
            back = true;
            break;
        }
    }
    assert!(back, "127.0.0.2 was still refused a minute after a 10 s penalty");
    let _ = &s.dir;
}

/// A source on `PerSourcePenaltyExemptList` is never refused however often it fails, while a
/// source not on it is.
#[test]
fn a_source_on_the_exempt_list_is_never_refused() {
    let extra = "PerSourcePenalties authfail:10 min:5\nPerSourcePenaltyExemptList 127.0.0.2\n";
    let Some(s) = setup("penalty-exempt", extra, true) else { return };
    for source in ["127.0.0.2", "127.0.0.4"] {
        for _ in 0..3 {
            assert!(!s.login_from(source, &s.stranger).0, "an unauthorized key logged in");
        }
    }
    let (got_in, said) = s.login_from("127.0.0.2", &s.key);
    assert!(got_in, "the exempt source was refused: {said}");
    assert!(!s.login_from("127.0.0.4", &s.key).0, "the source not exempt was not refused");
    assert!(s.log_line(&["from [127.0.0.4]:", "penalty: failed authentication"]).is_some());
}

/// `PerSourceMaxStartups 2`: a third unauthenticated connection from 127.0.0.2 is refused
/// ("Not allowed at this time", and sshd's log line) while two are open, one from 127.0.0.3 is
/// served, and once one of the two closes 127.0.0.2 is served again.
#[test]
fn per_source_max_startups_refuses_a_third_unauthenticated_connection_from_one_address() {
    let extra = "PerSourceMaxStartups 2\nPerSourcePenalties no\n";
    let Some(s) = setup("persource", extra, false) else { return };
    let mut first = s.connect_from("127.0.0.2");
    let mut second = s.connect_from("127.0.0.2");
    // Both are served: the server's identification line arrives on each.
    assert!(first_line(&mut first).starts_with("SSH-2.0-"));
    assert!(first_line(&mut second).starts_with("SSH-2.0-"));
    let mut third = s.connect_from("127.0.0.2");
    assert_eq!(first_line(&mut third), "Not allowed at this time\r\n");
    let line = s.log_line(&["drop connection #", "from [127.0.0.2]:"]).expect("a drop line");
    assert!(line.ends_with("past Maxstartups"), "{line}");
    let mut other = s.connect_from("127.0.0.3");
    assert!(first_line(&mut other).starts_with("SSH-2.0-"), "another address was refused");
    drop(first);
    // The server notices the close on its own time: retry, bounded.
    let mut served = false;
    for _ in 0..100 {
        let mut again = s.connect_from("127.0.0.2");
        if first_line(&mut again).starts_with("SSH-2.0-") {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served, "127.0.0.2 was still refused after one of its connections closed");
    drop((second, other));
}

/// Holds connections from `sources` open until the server's identification line arrives on
/// each (so each is counted), and returns them.
fn hold(s: &Setup, sources: &[&str]) -> Vec<TcpStream> {
    sources
        .iter()
        .map(|source| {
            let mut stream = s.connect_from(source);
            let line = first_line(&mut stream);
            assert!(line.starts_with("SSH-2.0-"), "{source} was not served: {line:?}");
            stream
        })
        .collect()
}

/// Connects from `source` until the server answers with its identification line (bounded:
/// the server notices closed connections on its own time).
fn served_again(s: &Setup, source: &str) -> bool {
    for _ in 0..100 {
        let mut again = s.connect_from(source);
        if first_line(&mut again).starts_with("SSH-2.0-") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// `MaxStartups 4` with two privilege-separated workers (as root): four unauthenticated
/// connections from four addresses are served, whichever worker took each; a fifth is closed
/// unanswered with sshd's log line ("drop connection #4 ... past MaxStartups"); once one of
/// the four closes, a new one is served.
#[test]
fn max_startups_counts_the_unauthenticated_connections_of_every_worker() {
    let extra = "MaxStartups 4\nPerSourcePenalties no\n";
    let Some(s) = setup_with_workers("maxstartups", extra, false, 2) else { return };
    let mut held = hold(&s, &["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    let mut fifth = s.connect_from("127.0.0.6");
    assert_eq!(first_line(&mut fifth), "", "a fifth unauthenticated connection was served");
    let line = s.log_line(&["drop connection #4 from [127.0.0.6]:", " on [127.0.0.1]:"]);
    let line = line.expect("sshd's drop line");
    assert!(line.ends_with("past MaxStartups"), "{line}");
    drop(held.remove(0));
    assert!(served_again(&s, "127.0.0.6"), "still dropped after one of the four closed");
}

/// `MaxStartups 3` without privilege separation (`CONCHD_PRIVSEP=no`; the acceptor counts):
/// a fourth unauthenticated connection is closed unanswered, with sshd's line.
#[test]
fn max_startups_drops_past_the_limit_without_privilege_separation_too() {
    let extra = "MaxStartups 3\nPerSourcePenalties no\n";
    let env = [("CONCHD_PRIVSEP", "no")];
    let Some(s) = setup_with_env("maxstartups-single", extra, false, &env) else { return };
    let _held = hold(&s, &["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let mut fourth = s.connect_from("127.0.0.5");
    assert_eq!(first_line(&mut fourth), "", "a fourth unauthenticated connection was served");
    let line = s.log_line(&["drop connection #3 from [127.0.0.5]:", " on [127.0.0.1]:"]);
    assert!(line.expect("sshd's drop line").ends_with("past MaxStartups"));
}

/// `PerSourceMaxStartups 2` with two privilege-separated workers (as root): the count is the
/// source's over both workers, so a third connection from 127.0.0.2 is refused whichever
/// worker takes it, and another address is served. (The kernel chooses the worker; at this
/// load it is often the same one. The monitor's count across workers is unit-tested in
/// `startups.rs`.)
#[test]
fn per_source_max_startups_counts_a_source_over_every_worker() {
    let extra = "PerSourceMaxStartups 2\nPerSourcePenalties no\n";
    let Some(s) = setup_with_workers("persource2", extra, false, 2) else { return };
    let _held = hold(&s, &["127.0.0.2", "127.0.0.2"]);
    // Several tries, so that both workers are likely to take one: each is refused.
    for _ in 0..6 {
        let mut third = s.connect_from("127.0.0.2");
        assert_eq!(first_line(&mut third), "Not allowed at this time\r\n");
    }
    let line = s.log_line(&["drop connection #2 from [127.0.0.2]:"]).expect("a drop line");
    assert!(line.ends_with("past Maxstartups"), "{line}");
    let _other = hold(&s, &["127.0.0.3"]);
}

/// `PerSourcePenalties noauth:10 min:5`: a connection from 127.0.0.7 that closes without
/// trying to authenticate earns its source the `noauth` penalty (sshd's "penalty now active"
/// line), the next one from it is refused with sshd's drop line, and 127.0.0.8 is served.
#[test]
fn a_connection_that_never_tries_to_authenticate_earns_its_source_a_penalty() {
    let extra = "PerSourcePenalties noauth:10 min:5\n";
    let Some(s) = setup("noauth", extra, false) else { return };
    drop(hold(&s, &["127.0.0.7"]));
    assert!(s.log_line(&["penalty now active", "without attempting authentication"]).is_some());
    let mut refused = false;
    // The penalty comes when the server has noticed the close: retry, bounded.
    for _ in 0..50 {
        let mut again = s.connect_from("127.0.0.7");
        if first_line(&mut again) == "Not allowed at this time\r\n" {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(refused, "127.0.0.7 was served again within its penalty");
    let line = s.log_line(&["from [127.0.0.7]:", "penalty: connections without"]);
    assert!(line.is_some_and(|l| l.contains("drop connection #")), "no drop line");
    let _other = hold(&s, &["127.0.0.8"]);
}

impl Setup {
    /// `ssh` from `source` as `user` with `key`, running `echo in`: whether it got in, and its
    /// stderr.
    fn login_as(&self, source: &str, key: &std::path::Path, user: &str) -> (bool, String) {
        let out = output({
            let mut c = Command::new("timeout");
            c.args([CLIENT_TIME_LIMIT, "ssh"]).args(client_options(key));
            c.args(["-b", source, "-p", &self.daemon.port.to_string(), "-l", user]);
            c.args(["127.0.0.1", "echo in"]);
            c
        });
        (out.status.success() && out.stdout == b"in\n", stderr(&out))
    }

    /// Connects from `source` until one is refused with "Not allowed at this time" (bounded:
    /// the penalty comes once the server has noticed the last close).
    fn refused_from(&self, source: &str) -> bool {
        for _ in 0..50 {
            let mut again = self.connect_from(source);
            if first_line(&mut again) == "Not allowed at this time\r\n" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// The two ways conchd runs as root: privilege-separated (the default; the monitor looks the
/// user up, applies `RefuseConnection` and keeps the penalties) and in one process.
const MODES: [(&str, &[(&str, &str)]); 2] =
    [("privsep", &[]), ("single", &[("CONCHD_PRIVSEP", "no")])];

/// `RefuseConnection yes` in a `Match Group <the user's group> Address 127.0.0.9` block: a
/// login from 127.0.0.9 ends when the user is named, with sshd's log line ("administratively
/// prohibited connection for USER from 127.0.0.9 port N") and the reason on the client's
/// screen; the source earns the `refuseconnection` penalty, so its next connection is refused
/// at accept with sshd's drop line; the same user from 127.0.0.10 logs in. With privilege
/// separation the worker, which has no user database, learns the user's groups from the
/// monitor before it reads the `Match` blocks.
#[test]
fn refuse_connection_in_a_match_block_ends_the_login_and_earns_its_penalty() {
    for (mode, env) in MODES {
        let tag = format!("refuse-{mode}");
        if !is_root() {
            println!("{tag}: skipped: needs root to create a test user");
            return;
        }
        let dir = TempDir::new(&tag);
        let key = keygen(dir.root(), "id_ed25519", "ed25519");
        let Some(user) = TestUser::create(&dir.path("home"), &key) else {
            println!("{tag}: skipped: useradd failed");
            return;
        };
        let extra = format!(
            "PerSourcePenalties refuseconnection:10 min:5\n\
             Match Group {0} Address 127.0.0.9,127.0.0.13\n  RefuseConnection yes\n",
            user.name
        );
        let Some(s) = setup_with_env(&tag, &extra, false, env) else { return };
        let (got_in, said) = s.login_as("127.0.0.9", &key, &user.name);
        assert!(!got_in, "{mode}: a refused connection logged in");
        assert!(said.contains("administratively prohibited connection"), "{mode}: {said}");
        let lines = s.log_lines_any_order(&[
            &["administratively prohibited connection for "],
            &["penalty now active", "prohibited by RefuseConnection"],
        ]);
        let lines = lines.unwrap_or_else(|seen| {
            panic!("{mode}: no RefuseConnection line or no penalty in {seen:#?}")
        });
        let prohibited = format!("for {} from 127.0.0.9 port ", user.name);
        assert!(lines[0].contains(&prohibited), "{mode}: {lines:?}");
        assert!(s.refused_from("127.0.0.9"), "{mode}: 127.0.0.9 served within its penalty");
        // A `:style` suffix names the same account, as in sshd: refused too (from 127.0.0.13,
        // also in the block; 127.0.0.9 is penalised by now).
        let styled = format!("{}:style", user.name);
        let (got_in, said) = s.login_as("127.0.0.13", &key, &styled);
        assert!(!got_in, "{mode}: {styled} logged in past RefuseConnection");
        assert!(said.contains("administratively prohibited connection"), "{mode}: {said}");
        let (got_in, said) = s.login_as("127.0.0.10", &key, &user.name);
        assert!(got_in, "{mode}: the user from another address was kept out: {said}");
        drop((s, user, dir));
    }
}

/// A client offering a key for a user that does not exist earns its source the `invaliduser`
/// penalty (sshd's monitor is never asked about such a key, so it is not `authfail`), with
/// sshd's lines; another source is served. Without root, conchd runs in one process as the
/// caller.
#[test]
fn a_key_offered_for_an_invalid_user_earns_the_invaliduser_penalty() {
    for (mode, env) in MODES {
        let extra = "PerSourcePenalties invaliduser:10 min:5\n";
        let Some(s) = setup_with_env(&format!("invaliduser-{mode}"), extra, false, env) else {
            return;
        };
        let (got_in, said) = s.login_as("127.0.0.11", &s.key, "no-such-user-here");
        assert!(!got_in, "{mode}: an invalid user logged in");
        assert!(said.contains("Permission denied"), "{mode}: {said}");
        let active = s.log_line(&["penalty now active", "authentication by invalid user"]);
        assert!(active.is_some(), "{mode}: no invaliduser penalty");
        assert!(s.refused_from("127.0.0.11"), "{mode}: 127.0.0.11 served within its penalty");
        let _other = hold(&s, &["127.0.0.12"]);
    }
}

/// A password for a user that does not exist is an attempt, as sshd's monitor counts it (it
/// checks the password against a fake account): the source earns `authfail`, not
/// `invaliduser`, with or without privilege separation.
#[test]
fn a_password_for_an_invalid_user_earns_authfail_not_invaliduser() {
    if Command::new("sshpass").arg("-V").output().is_err() {
        println!("invaliduser-password: skipped: sshpass is not installed");
        return;
    }
    for (mode, env) in MODES {
        let extra = "PasswordAuthentication yes\nUsePAM no\n\
                     PerSourcePenalties authfail:30 invaliduser:1 min:5\n";
        let Some(s) = setup_with_env(&format!("invalid-password-{mode}"), extra, false, env) else {
            return;
        };
        let out = output({
            let mut c = ssh_with_password("guess", "password");
            c.args(["-b", "127.0.0.14", "-p", &s.daemon.port.to_string()]);
            c.args(["-l", "no-such-user-here", "127.0.0.1", "echo in"]);
            c
        });
        assert!(!out.status.success(), "{mode}: an invalid user logged in");
        let active = s.log_line(&["127.0.0.14/", "penalty now active", "failed authentication"]);
        assert!(active.is_some(), "{mode}: no authfail penalty; ssh said {}", stderr(&out));
        assert!(s.refused_from("127.0.0.14"), "{mode}: 127.0.0.14 served within its penalty");
    }
}

//! Load and faults on loopback, bounded (the reliability plan's T1–T3 at CI size): a twine SSH
//! server (its reactor on a thread of this process) holding many idle pre-authentication
//! connections while OpenSSH's `ssh` logs in; a failed-password flood from 50 source addresses
//! beside legitimate logins; clients killed at random points. After each, the server's
//! descriptors return to where they were (this process's `/proc/self/fd`, which holds the
//! server's sockets).
//!
//! Sizes: CI runs the defaults; `LOAD_IDLE` (200; 1,000 for the large run) sets the idle
//! connections held and `LOAD_KILLS` (40) the clients killed. tests/load_faults.rs has the same
//! knobs against the `conchd` binary.
//!
//! Every wait is bounded; every process started here is killed or waited for by its PID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use server_support::{stderr, stdout, with_key, Options, Server, Sessions, PASSWORD};

/// Idle pre-authentication connections held open (the plan's CI size; `LOAD_IDLE`).
const IDLE: usize = 200;

/// Clients killed at random points (CI size; `LOAD_KILLS`).
const KILLS: usize = 40;

/// A size from the environment variable `name`, else `default`.
fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// Legitimate logins made while they are held.
const LOGINS: usize = 20;

/// The tests count this process's descriptors, so they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (at most 30 s, polling) until this process holds at most `baseline` descriptors;
/// returns the last count.
fn settle(baseline: usize) -> usize {
    let mut now = open_fds();
    for _ in 0..300 {
        if now <= baseline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        now = open_fds();
    }
    now
}

/// A login with the key that runs one line through the echo session.
fn login(server: &Server, key: &std::path::Path) -> Result<(), String> {
    let output = server.ssh().key(key).args(&["-T"]).run(&[], b"ping\n");
    let want = format!("hello {}\necho: ping\n", server.user);
    if output.status.code() == Some(0) && stdout(&output) == want {
        Ok(())
    } else {
        Err(format!("{:?}: {}", output.status.code(), stderr(&output)))
    }
}

/// 200 idle pre-authentication connections (half silent, half stopped after their
/// identification line) do not keep 20 legitimate logins out, and once they close the server
/// holds no descriptor for them.
#[test]
fn two_hundred_idle_connections_do_not_keep_legitimate_logins_out() {
    let _turn = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Echo)));
    login(&server, &key).unwrap();
    let baseline = settle(open_fds());
    let mut idle = Vec::new();
    for i in 0..size("LOAD_IDLE", IDLE) {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        if i % 2 == 1 {
            stream.write_all(b"SSH-2.0-idle\r\n").unwrap();
        }
        idle.push(stream);
    }
    let failures: Vec<String> = (0..LOGINS).filter_map(|_| login(&server, &key).err()).collect();
    assert!(failures.is_empty(), "{} of {LOGINS} logins failed: {failures:?}", failures.len());
    drop(idle);
    let after = settle(baseline);
    assert!(
        after <= baseline,
        "{after} descriptors after the idle connections closed, {baseline} before"
    );
}

/// A flood of wrong passwords from 50 source addresses (127.0.0.2–51, two connections each)
/// does not keep key logins out, the right password still logs in after it, and it leaves no
/// descriptor behind.
#[test]
fn a_failed_password_flood_does_not_keep_a_legitimate_login_out() {
    let _turn = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Echo)));
    login(&server, &key).unwrap();
    let baseline = settle(open_fds());
    let failures = std::thread::scope(|scope| {
        let attackers: Vec<_> = (2..52)
            .map(|source| {
                let server = &server;
                scope.spawn(move || {
                    for _ in 0..2 {
                        let output = server
                            .ssh()
                            .password("wrong password")
                            .args(&["-T", "-b", &format!("127.0.0.{source}")])
                            .run(&[], b"");
                        assert_ne!(output.status.code(), Some(0), "a wrong password logged in");
                    }
                })
            })
            .collect();
        let failures: Vec<String> = (0..5).filter_map(|_| login(&server, &key).err()).collect();
        for attacker in attackers {
            attacker.join().unwrap();
        }
        failures
    });
    assert!(failures.is_empty(), "legitimate logins failed during the flood: {failures:?}");
    let output = server.ssh().password(PASSWORD).args(&["-T"]).run(&[], b"ping\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let after = settle(baseline);
    assert!(after <= baseline, "{after} descriptors after the flood, {baseline} before");
}

/// 40 clients (`LOAD_KILLS`) killed (SIGKILL, by PID) at spread-out points of their connection (before the
/// key exchange ends, during authentication, in the session) leave the server serving, and
/// holding no descriptor for them.
#[test]
fn clients_killed_at_random_points_leave_nothing_behind() {
    let _turn = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Echo)));
    login(&server, &key).unwrap();
    let baseline = settle(open_fds());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let kills = size("LOAD_KILLS", KILLS);
    for _ in 0..kills {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(state % 400);
        let mut command = Command::new("ssh");
        command
            .args(["-F", "/dev/null", "-p", &server.port.to_string(), "-T"])
            .args(["-o", &format!("UserKnownHostsFile={}", server.dir.p("known_hosts"))])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-i"])
            .arg(&key)
            .arg(format!("{}@127.0.0.1", server.user))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
    }
    login(&server, &key).unwrap();
    let after = settle(baseline);
    assert!(
        after <= baseline,
        "{after} descriptors after {kills} killed clients, {baseline} before"
    );
}

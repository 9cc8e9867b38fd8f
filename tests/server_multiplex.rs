//! End to end: several sessions at once, over one connection (OpenSSH's `ControlMaster`) and
//! over many, on one twine server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use server_support::{stderr, stdout, stop, with_key, Options, Server, Sessions};

/// Five commands run at once through one master connection, each with its own output and
/// exit status; then the master is told to exit.
#[test]
fn sessions_run_side_by_side_on_one_connection() {
    let (server, keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let control = keys.p("control");
    let master_option = format!("ControlPath={control}");
    let mut master = server
        .ssh()
        .key(&key)
        .args(&["-M", "-N", "-o", &master_option, "-o", "ControlPersist=no"])
        .spawn(&[]);
    let mut ready = false;
    for _ in 0..100 {
        if std::path::Path::new(&control).exists() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ready, "the master never made its control socket");
    let threads: Vec<_> = (0..5_i32)
        .map(|i| {
            let ssh = server.ssh().key(&key).args(&["-S", &control]);
            std::thread::spawn(move || {
                let command = format!("sleep 0.2; echo session {i}; exit {}", 10 + i);
                ssh.run(&[&command], b"")
            })
        })
        .collect();
    for (i, thread) in (0..5_i32).zip(threads) {
        let output = thread.join().unwrap();
        assert_eq!(output.status.code(), Some(10 + i), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("session {i}\n"));
    }
    let exit = server.ssh().args(&["-S", &control, "-O", "exit"]).run(&[], b"");
    assert_eq!(exit.status.code(), Some(0), "{}", stderr(&exit));
    stop(&mut master);
}

/// Twenty clients log in and run a command at once, each on its own connection, and each gets
/// its own answer.
#[test]
fn many_connections_are_served_at_once() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let ssh = server.ssh().key(&key);
            std::thread::spawn(move || ssh.run(&[&format!("echo connection {i}")], b""))
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let output = thread.join().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("connection {i}\n"));
    }
}

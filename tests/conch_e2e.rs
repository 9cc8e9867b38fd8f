//! `conch` against a private OpenSSH sshd on loopback: commands and their exit statuses and
//! streams, big transfers, a terminal session through tmux, forwarding, jump hosts, host keys,
//! the agent and encrypted keys. Skipped (with a message) when not run as root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conch_support;

use std::io::{Read as _, Write as _};
use std::process::Stdio;

use conch_support::client_support::pattern;
use conch_support::{echo_server, exchange, free_port, wait_for_port, Running, Setup, Tmux, CONCH};

fn sha256(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A command's standard output and error stay apart and its exit status becomes conch's.
#[test]
fn a_command_keeps_its_streams_apart_and_its_exit_status_becomes_ours() {
    let Some(setup) = Setup::start() else { return };
    let output = setup.run(&["server", "echo out; echo err >&2; exit 7"]);
    assert_eq!(output.status.code(), Some(7), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.stdout, b"out\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("err\n"));
    let output = setup.run(&["server", "true"]);
    setup.check(&output);
}

/// A command killed by a signal makes conch exit 255, as ssh does.
#[test]
fn a_command_killed_by_a_signal_exits_255() {
    let Some(setup) = Setup::start() else { return };
    let output = setup.run(&["server", "kill -TERM $$"]);
    assert_eq!(output.status.code(), Some(255));
}

/// `-F` with HostName, Port, User, IdentityFile, UserKnownHostsFile and a ProxyCommand works
/// as OpenSSH's regress scripts use it.
#[test]
fn a_config_file_with_a_proxy_command_is_followed() {
    let Some(setup) = Setup::start() else { return };
    setup.write_config("  ProxyCommand nc %h %p");
    let output = setup.run(&["-q", "server", "echo via proxy"]);
    setup.check(&output);
    assert_eq!(output.stdout, b"via proxy\n");
}

/// 256 MiB go up through standard input and come down through standard output intact.
#[test]
fn a_256_mib_transfer_each_way_keeps_its_checksum() {
    let Some(setup) = Setup::start() else { return };
    const SIZE: usize = 256 << 20;
    // Up: our pattern into the remote sha256sum.
    let data = pattern(SIZE);
    let expected = sha256(&data);
    let mut child = setup
        .command(&["server", "sha256sum"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        input.write_all(&data).unwrap();
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    setup.check(&output);
    let remote = String::from_utf8_lossy(&output.stdout);
    assert_eq!(remote.split_whitespace().next(), Some(expected.as_str()));
    // Down: a remote random file, its checksum on standard error.
    let command = format!(
        "f=$(mktemp); head -c {SIZE} /dev/urandom > $f; sha256sum < $f >&2; cat $f; rm -f $f"
    );
    let output = setup.run(&["server", &command]);
    setup.check(&output);
    assert_eq!(output.stdout.len(), SIZE);
    let remote = String::from_utf8_lossy(&output.stderr);
    assert_eq!(remote.split_whitespace().next(), Some(sha256(&output.stdout).as_str()));
}

/// Standard input and output that are pipes from another process are grown to 1 MiB (fewer
/// wakeups of both sides per byte), never shrunk, and what goes through them arrives whole.
#[test]
fn standard_input_and_output_pipes_are_grown_to_one_mebibyte_and_carry_everything() {
    use nix::fcntl::{fcntl, FcntlArg};

    let Some(setup) = Setup::start() else { return };
    let mut child = setup
        .command(&["server", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    assert_eq!(fcntl(&input, FcntlArg::F_GETPIPE_SZ).unwrap(), 64 << 10);
    // Once a line has come back, conch has set both pipes up.
    input.write_all(b"first\n").unwrap();
    let mut first = [0; 6];
    output.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"first\n");
    assert_eq!(fcntl(&input, FcntlArg::F_GETPIPE_SZ).unwrap(), 1 << 20);
    assert_eq!(fcntl(&output, FcntlArg::F_GETPIPE_SZ).unwrap(), 1 << 20);
    let data = pattern(16 << 20);
    let expected = sha256(&data);
    let writer = std::thread::spawn(move || input.write_all(&data).unwrap());
    let mut received = Vec::new();
    output.read_to_end(&mut received).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(received.len(), 16 << 20);
    assert_eq!(sha256(&received), expected);
}

/// Standard output redirected to a file (written from conch's loop, not through a pipe) gets
/// everything, after what the file held when it is opened for appending.
#[test]
fn standard_output_to_a_file_gets_everything_and_appends_to_an_appending_file() {
    let Some(setup) = Setup::start() else { return };
    const SIZE: usize = 8 << 20;
    let command = format!(
        "f=$(mktemp); head -c {SIZE} /dev/urandom > $f; sha256sum < $f >&2; cat $f; rm -f $f"
    );
    let path = setup.sshd.dir.path("stdout");
    let file = std::fs::File::create(&path).unwrap();
    let output = setup.command(&["server", &command]).stdout(file).output().unwrap();
    setup.check(&output);
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written.len(), SIZE);
    let remote = String::from_utf8_lossy(&output.stderr);
    assert_eq!(remote.split_whitespace().next(), Some(sha256(&written).as_str()));
    std::fs::write(&path, b"before\n").unwrap();
    let file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    let output = setup.command(&["server", "echo after"]).stdout(file).output().unwrap();
    setup.check(&output);
    assert_eq!(std::fs::read(&path).unwrap(), b"before\nafter\n");
}

/// A reader of standard output that goes away ends the session, however much the remote
/// command still has to say (standard output is written from conch's loop).
#[test]
fn a_standard_output_reader_that_goes_away_ends_the_session() {
    let Some(setup) = Setup::start() else { return };
    let mut child = setup.command(&["server", "yes"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut some = [0; 1000];
    stdout.read_exact(&mut some).unwrap();
    assert!(some.starts_with(b"y\ny\n"));
    drop(stdout);
    let mut status = None;
    for _ in 0..1200 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(status.is_some(), "conch still runs without its reader");
}

/// With `-tt` in tmux: the session has a terminal, a resize reaches it, `~C` adds a forward,
/// and `~.` ends it.
#[test]
fn a_terminal_session_resizes_and_ends_with_tilde_dot() {
    let Some(setup) = Setup::start() else { return };
    let status_file = setup.sshd.dir.path("status");
    let command = format!(
        "{} -F {} -tt server; echo $? > {}; sleep 30",
        CONCH,
        setup.config.display(),
        status_file.display()
    );
    let tmux = Tmux::start(
        &setup.sshd.dir.0,
        &format!("env HOME={} {command}", setup.home.display()),
        100,
        30,
    );
    tmux.type_text("PS1='$ '; tty; stty size");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("30 100");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    tmux.resize(120, 40);
    tmux.type_text("clear; stty size");
    tmux.send(&["Enter"]);
    tmux.wait_for("40 120");
    // ~C adds a local forward to a running session.
    let echo = echo_server(4);
    let local = free_port();
    tmux.send(&["Enter"]);
    tmux.type_text("~C");
    tmux.type_text(&format!("-L {local}:127.0.0.1:{echo}"));
    tmux.send(&["Enter"]);
    tmux.wait_for("Forwarding port.");
    let payload = pattern(65536);
    let stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    assert_eq!(exchange(stream, &payload), payload);
    tmux.send(&["Enter"]);
    tmux.type_text("~.");
    tmux.wait_for("closed.");
    for _ in 0..300 {
        if std::fs::read_to_string(&status_file).is_ok_and(|s| !s.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&status_file).unwrap().trim(), "255");
}

/// `-L` carries data both ways to a server reached from sshd.
#[test]
fn a_local_forward_carries_data_both_ways() {
    let Some(setup) = Setup::start() else { return };
    let echo = echo_server(8);
    let local = free_port();
    let spec = format!("{local}:127.0.0.1:{echo}");
    let _conch = Running(setup.command(&["-N", "-L", &spec, "server"]).spawn().unwrap());
    wait_for_port(local);
    let payload = pattern(1 << 20);
    let stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    assert_eq!(exchange(stream, &payload), payload);
}

/// `-R` makes sshd listen and carries data both ways to a server reached from conch.
#[test]
fn a_remote_forward_carries_data_both_ways() {
    let Some(setup) = Setup::start() else { return };
    let echo = echo_server(8);
    let remote = free_port();
    let spec = format!("{remote}:127.0.0.1:{echo}");
    let _conch = Running(setup.command(&["-N", "-R", &spec, "server"]).spawn().unwrap());
    wait_for_port(remote);
    let payload = pattern(1 << 20);
    let stream = std::net::TcpStream::connect(("127.0.0.1", remote)).unwrap();
    assert_eq!(exchange(stream, &payload), payload);
}

/// `-D` answers SOCKS 5 and SOCKS 4a requests and carries data both ways.
#[test]
fn a_dynamic_forward_speaks_socks_4a_and_5() {
    let Some(setup) = Setup::start() else { return };
    let echo = echo_server(2);
    let local = free_port();
    let _conch =
        Running(setup.command(&["-N", "-D", &local.to_string(), "server"]).spawn().unwrap());
    wait_for_port(local);
    let payload = pattern(1 << 18);
    // SOCKS 5, no authentication, an IPv4 address.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    stream.write_all(&[5, 1, 0]).unwrap();
    let mut answer = [0u8; 2];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(answer, [5, 0]);
    let mut request = vec![5, 1, 0, 1, 127, 0, 0, 1];
    request.extend_from_slice(&echo.to_be_bytes());
    stream.write_all(&request).unwrap();
    let mut reply = [0u8; 10];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "SOCKS 5 success");
    assert_eq!(exchange(stream, &payload), payload);
    // SOCKS 4a, a host name.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    let mut request = vec![4, 1];
    request.extend_from_slice(&echo.to_be_bytes());
    request.extend_from_slice(&[0, 0, 0, 1, b'u', 0]);
    request.extend_from_slice(b"localhost\0");
    stream.write_all(&request).unwrap();
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0x5a, "SOCKS 4 granted");
    assert_eq!(exchange(stream, &payload), payload);
}

/// `-W` joins standard input and output to a port reached from sshd.
#[test]
fn a_stdio_forward_joins_our_streams_to_a_remote_port() {
    let Some(setup) = Setup::start() else { return };
    let echo = echo_server(8);
    let target = format!("127.0.0.1:{echo}");
    let mut child = setup
        .command(&["-W", &target, "server"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let payload = pattern(1 << 20);
    let mut input = child.stdin.take().unwrap();
    let sent = payload.clone();
    let writer = std::thread::spawn(move || input.write_all(&sent).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(output.stdout, payload);
}

/// `-J` reaches a second sshd through the first, in one hop or two.
#[test]
fn a_jump_host_reaches_a_second_server() {
    let Some(setup) = Setup::start() else { return };
    let Some(second) = conch_support::Sshd::start(conch_support::Options::default()) else {
        return;
    };
    second.authorize(&setup.key.with_extension("pub"));
    let extra = format!(
        "Host target\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
         UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
        second.port,
        second.user.name,
        setup.key.display(),
        second.known_hosts().display()
    );
    setup.write_config(&extra);
    let output = setup.run(&["-J", "server", "target", "echo $USER"]);
    setup.check(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), second.user.name);
    // Two hops: the first server, then the first server again through itself.
    let output = setup.run(&["-J", "server,server", "target", "echo $USER"]);
    setup.check(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), second.user.name);
}

/// An unknown host is asked about on the terminal; `yes` adds it (hashed), `no` refuses.
#[test]
fn an_unknown_host_is_asked_about_accepted_and_refused() {
    let Some(setup) = Setup::start() else { return };
    let known = setup.sshd.dir.path("new_known_hosts");
    let extra = format!(
        "Host fresh\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
         UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  HashKnownHosts yes\n",
        setup.sshd.port,
        setup.sshd.user.name,
        setup.key.display(),
        known.display()
    );
    setup.write_config(&extra);
    let run = |answer: &str, mark: &str| {
        let command = format!(
            "env HOME={} {CONCH} -F {} fresh 'echo {mark}'; echo status=$?; sleep 30",
            setup.home.display(),
            setup.config.display()
        );
        let tmux = Tmux::start(&setup.sshd.dir.0, &command, 120, 40);
        let screen = tmux.wait_for("(yes/no/[fingerprint])?");
        assert!(screen.contains("can't be established"), "{screen}");
        tmux.type_text(answer);
        tmux.send(&["Enter"]);
        tmux.wait_for("status=")
    };
    let refused = run("no", "refused");
    assert!(refused.contains("Host key verification failed."), "{refused}");
    assert!(refused.contains("status=255"), "{refused}");
    assert!(!known.exists() || std::fs::read_to_string(&known).unwrap().is_empty());
    let accepted = run("yes", "accepted");
    assert!(accepted.contains("Permanently added"), "{accepted}");
    assert!(accepted.contains("status=0"), "{accepted}");
    let written = std::fs::read_to_string(&known).unwrap();
    assert!(written.starts_with("|1|"), "hashed: {written}");
    // Known now: no question.
    let output = setup.run(&["-o", "BatchMode=yes", "fresh", "echo again"]);
    setup.check(&output);
    assert_eq!(output.stdout, b"again\n");
}

/// A changed host key is refused with OpenSSH's warning.
#[test]
fn a_changed_host_key_is_refused_with_the_warning() {
    let Some(setup) = Setup::start() else { return };
    let other = setup.sshd.dir.path("other_host");
    conch_support::keygen(&other, "ed25519", "");
    let line = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut parts = line.split_whitespace();
    let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
    let known = setup.sshd.dir.path("wrong_known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {kind} {blob}\n", setup.sshd.port)).unwrap();
    let output =
        setup.run(&["-o", &format!("UserKnownHostsFile={}", known.display()), "server", "true"]);
    assert_eq!(output.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{stderr}");
    assert!(stderr.contains("Host key verification failed."), "{stderr}");
}

/// Keys held by the real ssh-agent log in, with no key file around.
#[test]
fn the_real_ssh_agent_signs_for_us() {
    let Some(setup) = Setup::start() else { return };
    let socket = setup.sshd.dir.path("agent.sock");
    let _agent = Running(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent"),
    );
    for _ in 0..1200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let key = setup.sshd.client_key("agent_key", "ecdsa", "", true);
    let added = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    for path in [&key, &setup.key] {
        std::fs::remove_file(path).unwrap();
        std::fs::remove_file(path.with_extension("pub")).unwrap();
    }
    let output = setup
        .command(&["-o", "IdentityFile=/nonexistent", "server", "echo agent"])
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    setup.check(&output);
    assert_eq!(output.stdout, b"agent\n");
    // -A: the server's ssh-add sees the same agent.
    let output = setup
        .command(&["-A", "-o", "IdentityFile=/nonexistent", "server", "ssh-add -l"])
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    setup.check(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("(ECDSA)"));
}

/// An encrypted identity file's passphrase is asked (through SSH_ASKPASS here) and used.
#[test]
fn an_encrypted_identity_file_is_unlocked_with_its_passphrase() {
    let Some(setup) = Setup::start() else { return };
    let key = setup.sshd.client_key("locked", "ed25519", "sesame", true);
    std::fs::remove_file(&setup.key).unwrap();
    let askpass = setup.sshd.dir.path("askpass.sh");
    std::fs::write(&askpass, "#!/bin/sh\necho sesame\n").unwrap();
    std::process::Command::new("chmod").arg("755").arg(&askpass).status().unwrap();
    let output = setup
        .command(&[
            "-o",
            &format!("IdentityFile={}", key.display()),
            "-o",
            "BatchMode=no",
            "server",
            "echo unlocked",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .output()
        .unwrap();
    setup.check(&output);
    assert_eq!(output.stdout, b"unlocked\n");
}

/// Passwords are asked when keys fail; BatchMode never asks and fails with OpenSSH's text.
#[test]
fn batch_mode_never_asks_and_fails_with_permission_denied() {
    let Some(setup) = Setup::start() else { return };
    let output = setup.run(&["-o", "PubkeyAuthentication=no", "server", "true"]);
    assert_eq!(output.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Permission denied ("), "{stderr}");
    assert!(!stderr.contains("password:"), "{stderr}");
}

/// `-f` returns once the forwards are up; `-O check` finds the master and `-O exit` ends it.
#[test]
fn a_backgrounded_master_answers_check_and_exit() {
    let Some(setup) = Setup::start() else { return };
    let echo = echo_server(8);
    let local = free_port();
    let control = setup.sshd.dir.path("ctl");
    let control = control.to_str().unwrap();
    let spec = format!("{local}:127.0.0.1:{echo}");
    // The background copy keeps our standard streams: wait for the status, not for them.
    let status = setup
        .command(&["-f", "-N", "-M", "-S", control, "-L", &spec, "server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{}", setup.sshd.log());
    let payload = pattern(4096);
    let stream = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    assert_eq!(exchange(stream, &payload), payload);
    let check = setup.run(&["-S", control, "-O", "check", "server"]);
    setup.check(&check);
    assert!(String::from_utf8_lossy(&check.stderr).contains("Master running"));
    let exit = setup.run(&["-S", control, "-O", "exit", "server"]);
    setup.check(&exit);
    let mut closed = false;
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", local)).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(closed, "the master still listens after -O exit");
    let again = setup.run(&["-S", control, "-O", "check", "server"]);
    assert_eq!(again.status.code(), Some(255));
}

/// With ExitOnForwardFailure, a local port already taken ends the connection with 255.
#[test]
fn exit_on_forward_failure_ends_the_connection() {
    let Some(setup) = Setup::start() else { return };
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = format!("127.0.0.1:{port}:127.0.0.1:22");
    let output = setup.run(&["-o", "ExitOnForwardFailure=yes", "-L", &spec, "server", "echo ran"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(output.stdout.is_empty());
    let output = setup.run(&["-L", &spec, "server", "echo ran"]);
    setup.check(&output);
    assert_eq!(output.stdout, b"ran\n");
}

/// With ServerAliveInterval, a server that stops answering is given up on with OpenSSH's
/// message and 255.
#[test]
fn a_silent_server_is_given_up_on_after_the_keepalives() {
    let Some(setup) = Setup::start() else { return };
    let mut child = setup
        .command(&[
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ServerAliveCountMax=2",
            "server",
            "echo ready; sleep 60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    let signal = setup.sshd.signaller();
    signal("STOP");
    let output = child.wait_with_output();
    signal("CONT");
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Timeout, server 127.0.0.1 not responding."), "{stderr}");
}

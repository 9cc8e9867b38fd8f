//! Our client against a private OpenSSH `sshd`: commands with their streams and exit codes, a
//! pty shell, 64 MiB each way, `sshd -i` over a pipe pair, and the `ssh_exec` example.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod client_support;

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use client_support::{block_on, pattern, Fixture, Options, Sshd};
use twine_conch::client::{self, ClientConfig, ClientError, ExitStatus, PtyRequest, Target};
use twine_core::protocol::PushProducer;
use twine_core::{Deferred, Protocol, Reactor, Transport};

const LIMIT: Duration = Duration::from_secs(120);

/// Commands' standard output, standard error and exit status come back as the shell made them:
/// codes 0, 1 and 44, and a signal.
#[test]
fn exec_reports_streams_and_exit_statuses() {
    let Some(fixture) = Fixture::start() else { return };
    let outputs = fixture.with_connection(move |_, connection| async move {
        let mut outputs = Vec::new();
        for command in ["echo out; echo err >&2", "exit 1", "printf x; exit 44", "kill -TERM $$"] {
            outputs.push(connection.run(command, 1 << 20).await?);
        }
        connection.disconnect();
        Ok(outputs)
    });
    assert_eq!(outputs[0].stdout, b"out\n");
    assert_eq!(outputs[0].stderr, b"err\n");
    assert_eq!(outputs[0].status, ExitStatus::Code(0));
    assert_eq!(outputs[1].status, ExitStatus::Code(1));
    assert_eq!(
        (outputs[2].stdout.as_slice(), &outputs[2].status),
        (&b"x"[..], &ExitStatus::Code(44))
    );
    assert!(
        matches!(&outputs[3].status, ExitStatus::Signal { name, .. } if name == "TERM"),
        "{:?}",
        outputs[3].status
    );
}

/// Records a session's output and settles when the session closes.
struct Terminal {
    output: Rc<RefCell<Vec<u8>>>,
    input: &'static [u8],
    done: Deferred<()>,
}

impl Protocol for Terminal {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.write(self.input);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.output.borrow_mut().extend_from_slice(data);
    }

    fn connection_lost(&mut self, _reason: twine_core::Reason) {
        self.done.callback(());
    }
}

/// A shell on a pty: `tty` names a pseudo-terminal, `stty size` the size asked for, and the
/// exit status comes back.
#[test]
fn pty_shell_runs_tty() {
    let Some(fixture) = Fixture::start() else { return };
    let output = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&output);
    let status = fixture.with_connection(move |handle, connection| async move {
        let done = handle.deferred::<()>();
        let terminal =
            Terminal { output: seen, input: b"tty; stty size; exit 7\n", done: done.clone() };
        let session = connection.shell(Some(PtyRequest::new("xterm", 100, 30)), terminal).await?;
        let _ = done.await;
        session.exit_status().await
    });
    let text = String::from_utf8_lossy(&output.borrow()).into_owned();
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("30 100"), "{text}");
    assert_eq!(status, ExitStatus::Code(7));
}

/// Writes `total` bytes of the pattern with flow control: as much as the channel takes,
/// pausing when it is paused; then EOF.
struct Upload {
    transport: Option<Rc<dyn Transport>>,
    data: Rc<Vec<u8>>,
    sent: Rc<RefCell<usize>>,
    paused: Rc<RefCell<bool>>,
}

impl Upload {
    fn pump(
        transport: &Rc<dyn Transport>,
        data: &[u8],
        sent: &RefCell<usize>,
        paused: &RefCell<bool>,
    ) {
        // Pausing comes from the loop, after a write: stop at the high-water mark meanwhile.
        while !*paused.borrow() && *sent.borrow() < data.len() && transport.buffered() <= 64 * 1024
        {
            let start = *sent.borrow();
            let end = (start + 256 * 1024).min(data.len());
            *sent.borrow_mut() = end;
            transport.write(&data[start..end]);
        }
        if *sent.borrow() == data.len() {
            transport.write_eof();
        }
    }
}

struct UploadProducer {
    transport: Rc<dyn Transport>,
    data: Rc<Vec<u8>>,
    sent: Rc<RefCell<usize>>,
    paused: Rc<RefCell<bool>>,
}

impl PushProducer for UploadProducer {
    fn pause_producing(&self) {
        *self.paused.borrow_mut() = true;
    }

    fn resume_producing(&self) {
        *self.paused.borrow_mut() = false;
        Upload::pump(&self.transport, &self.data, &self.sent, &self.paused);
    }

    fn stop_producing(&self) {}
}

impl Protocol for Upload {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.register_producer(Rc::new(UploadProducer {
            transport: Rc::clone(&transport),
            data: Rc::clone(&self.data),
            sent: Rc::clone(&self.sent),
            paused: Rc::clone(&self.paused),
        }));
        Self::pump(&transport, &self.data, &self.sent, &self.paused);
        self.transport = Some(transport);
    }

    fn data_received(&mut self, _data: &[u8]) {}
}

/// Hashes what it receives.
struct Download {
    hasher: Rc<RefCell<(ring::digest::Context, usize)>>,
}

impl Protocol for Download {
    fn data_received(&mut self, data: &[u8]) {
        let mut hasher = self.hasher.borrow_mut();
        hasher.0.update(data);
        hasher.1 += data.len();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 MiB up (with flow control) and 64 MiB down arrive intact: `sha256sum` on the server
/// matches ours both ways. Prints the rates.
#[test]
fn transfers_64_mib_each_way_intact() {
    const SIZE: usize = 64 * 1024 * 1024;
    let Some(fixture) = Fixture::start() else { return };
    let data = Rc::new(pattern(SIZE));
    let expected = hex(ring::digest::digest(&ring::digest::SHA256, &data).as_ref());
    let upload_data = Rc::clone(&data);
    let hasher = Rc::new(RefCell::new((ring::digest::Context::new(&ring::digest::SHA256), 0)));
    let downloaded = Rc::clone(&hasher);
    let (remote_sum, up, down) = fixture.with_connection(move |_, connection| async move {
        let started = Instant::now();
        let upload = Upload {
            transport: None,
            data: upload_data,
            sent: Rc::default(),
            paused: Rc::default(),
        };
        let session = connection.exec("cat > upload.bin", upload).await?;
        let status = session.exit_status().await?;
        assert_eq!(status, ExitStatus::Code(0));
        let up = started.elapsed();
        let sum = connection.run("sha256sum upload.bin", 1024).await?;
        let started = Instant::now();
        let session = connection.exec("cat upload.bin", Download { hasher: downloaded }).await?;
        session.exit_status().await?;
        let down = started.elapsed();
        Ok((String::from_utf8_lossy(&sum.stdout).into_owned(), up, down))
    });
    assert_eq!(remote_sum.split_whitespace().next(), Some(expected.as_str()), "upload");
    let (context, length) = Rc::try_unwrap(hasher).ok().unwrap().into_inner();
    assert_eq!(length, SIZE);
    assert_eq!(hex(context.finish().as_ref()), expected, "download");
    let rate = |elapsed: Duration| 64.0 / elapsed.as_secs_f64();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "64 MiB through OpenSSH sshd ({build} build): up {:.2?} ({:.1} MiB/s), down {:.2?} ({:.1} MiB/s)",
        up,
        rate(up),
        down,
        rate(down)
    );
}

/// `sshd -i` over a pipe pair (no listener): the client runs over any pair of descriptors.
#[test]
fn runs_over_sshd_inetd_mode_pipes() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_ed25519", "ed25519", "", true);
    let config = sshd.client_config().identity_file(&key);
    let mut child = Command::new("/usr/sbin/sshd")
        .args(["-i", "-e", "-f"])
        .arg(&sshd.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd -i");
    let read = OwnedFd::from(child.stdout.take().expect("stdout"));
    let write = OwnedFd::from(child.stdin.take().expect("stdin"));
    let reactor = Reactor::new().unwrap();
    let handle = reactor.clone();
    let port = sshd.port;
    let output = block_on(&reactor, LIMIT, async move {
        let connected = client::connect_fd_pair(&handle, read, write, "127.0.0.1", port, config)?;
        let connection = connected.await?;
        let output = connection.run("echo over pipes", 1024).await?;
        connection.disconnect();
        Ok(output)
    });
    let _ = Command::new("kill").arg(child.id().to_string()).output();
    let _ = child.wait();
    let output = output.unwrap_or_else(|err| panic!("{err}\n{}", sshd.log()));
    assert_eq!(output.stdout, b"over pipes\n");
}

/// The `ssh_exec` example, run as a process, prints the command's output and exits with its
/// status; against an unknown host it refuses with OpenSSH's message and 255.
#[test]
fn ssh_exec_example_runs_a_command() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_ed25519", "ed25519", "", true);
    let known_hosts = sshd.known_hosts();
    let example = example_path("ssh_exec");
    let destination = format!("{}@127.0.0.1:{}", sshd.user.name, sshd.port);
    let output = Command::new(&example)
        .arg("-i")
        .arg(&key)
        .arg("-k")
        .arg(&known_hosts)
        .arg(&destination)
        .args(["echo", "hello;", "echo", "oops", ">&2;", "exit", "3"])
        .output()
        .expect("ssh_exec runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n", "{}", sshd.log());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "oops\n");
    assert_eq!(output.status.code(), Some(3));
    let empty = sshd.dir.path("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let refused = Command::new(&example)
        .arg("-i")
        .arg(&key)
        .arg("-k")
        .arg(&empty)
        .arg(&destination)
        .arg("true")
        .output()
        .expect("ssh_exec runs");
    assert_eq!(refused.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        "ssh_exec: Host key verification failed.\n"
    );
}

/// The example `name`, brought up to date with `cargo build --example` (a no-op when
/// `cargo test --all-targets` just built it).
fn example_path(name: &str) -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build --example");
    assert!(status.success());
    let exe = std::env::current_exe().expect("test path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    dir.join("examples").join(name)
}

/// Connects over IPv6 loopback; and after a refused address, the next one is tried; when every
/// address refuses, the error names the host, the port and the OS's reason.
#[test]
fn connects_over_ipv6_and_falls_back_across_addresses() {
    let Some(sshd) = Sshd::start(Options::default()) else { return };
    let key = sshd.client_key("id_ed25519", "ed25519", "", true);
    let reactor = Reactor::new().unwrap();
    let handle = reactor.clone();
    let (v6, fallback) =
        (sshd.client_config().identity_file(&key), sshd.client_config().identity_file(&key));
    let refused = client_support::free_port();
    let port = sshd.port;
    let (v6, fallback, failed) = block_on(&reactor, LIMIT, async move {
        let connection = client::connect(&handle, Target::new("::1", port), v6).await?;
        let v6 = connection.run("echo $SSH_CONNECTION", 1024).await?;
        let addresses = vec![([127, 0, 0, 1], refused).into(), ([127, 0, 0, 1], port).into()];
        let connection =
            client::connect_addresses(&handle, addresses, "127.0.0.1", port, fallback).await?;
        let fallback = connection.run("echo ok", 1024).await?;
        let config = ClientConfig::new("nobody");
        let failed = client::connect(&handle, Target::new("127.0.0.1", refused), config).await;
        Ok((v6, fallback, failed))
    })
    .unwrap_or_else(|err| panic!("{err}\n{}", sshd.log()));
    assert!(String::from_utf8_lossy(&v6.stdout).starts_with("::1 "), "{v6:?}");
    assert_eq!(fallback.stdout, b"ok\n");
    let error = failed.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("connect to host 127.0.0.1 port {refused}: Connection refused (os error 111)")
    );
}

/// Sends `SSH_FXP_INIT`, keeps what the sftp server says back, and ends its input once the
/// answer is complete.
struct SftpHello {
    reply: Rc<RefCell<Vec<u8>>>,
    transport: Option<Rc<dyn Transport>>,
}

impl Protocol for SftpHello {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        // uint32 length 5, byte SSH_FXP_INIT (1), uint32 version 3
        transport.write(&[0, 0, 0, 5, 1, 0, 0, 0, 3]);
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        let mut reply = self.reply.borrow_mut();
        reply.extend_from_slice(data);
        let length = reply
            .get(..4)
            .map_or(usize::MAX, |n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize);
        if reply.len() >= length.saturating_add(4) {
            if let Some(transport) = &self.transport {
                transport.write_eof();
            }
        }
    }
}

/// The `sftp` subsystem answers its version handshake; an `env` variable sshd accepts reaches
/// the command.
#[test]
fn subsystem_and_environment() {
    let Some(fixture) = Fixture::start() else { return };
    let reply = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&reply);
    let (with_env, without) = fixture.with_connection(move |handle, connection| async move {
        let session =
            connection.subsystem("sftp", SftpHello { reply: seen, transport: None }).await?;
        session.exit_status().await?;
        let output = Rc::new(RefCell::new(Vec::new()));
        let done = handle.deferred::<()>();
        let recorder = Terminal { output: Rc::clone(&output), input: b"", done: done.clone() };
        connection.session().env("LANG", "C.UTF-8").exec("echo $LANG", recorder).await?;
        let _ = done.await;
        let run = connection.run("echo ${LANG:-unset}", 1024).await?;
        let with_env = output.borrow().clone();
        Ok((with_env, run.stdout))
    });
    let reply = reply.borrow();
    assert!(reply.len() >= 9, "{reply:?}\n{}", fixture.sshd.log());
    assert_eq!(reply[4], 2, "SSH_FXP_VERSION");
    assert_eq!(&reply[5..9], &[0, 0, 0, 3], "version 3");
    assert_eq!(with_env, b"C.UTF-8\n");
    assert_eq!(without, b"unset\n", "env goes only to the session that asked");
}

/// With `ServerAliveInterval`, a server that stops answering (its session processes
/// stopped) ends the connection as not responding, after `ServerAliveCountMax` probes.
#[test]
fn keepalives_end_a_connection_to_a_frozen_server() {
    let Some(fixture) = Fixture::start() else { return };
    let reactor = fixture.reactor.clone();
    let config = fixture.config().server_alive(Duration::from_millis(300), 2);
    let target = fixture.target();
    let signal = fixture.sshd.signaller();
    let frozen = Rc::new(std::cell::Cell::new(false));
    let result = block_on(&reactor, LIMIT, {
        let reactor = reactor.clone();
        let frozen = Rc::clone(&frozen);
        let stopper = fixture.sshd.signaller();
        async move {
            let connection = client::connect(&reactor, target, config).await?;
            connection.run("true", 1024).await?;
            stopper("STOP");
            frozen.set(true);
            let reason = connection.closed().await?;
            stopper("CONT");
            Ok(reason)
        }
    });
    signal("CONT");
    assert!(frozen.get(), "{result:?}");
    assert_eq!(result.unwrap(), ClientError::ServerNotResponding);
}

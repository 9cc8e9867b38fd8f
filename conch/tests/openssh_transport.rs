//! The transport against real OpenSSH, on loopback: OpenSSH's `ssh` and `ssh-keyscan` against
//! a small test server built on [`Transport`] over a `std::net::TcpStream`, and our client
//! transport against a private OpenSSH `sshd`.
//!
//! These tests need `ssh`, `ssh-keyscan`, `ssh-keygen` and `/usr/sbin/sshd` (Debian packages
//! `openssh-client` and `openssh-server`). Every port is chosen by binding port 0 on
//! 127.0.0.1, every process started here is stopped by its PID, and every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use twine_conch::crypto::algorithms::{Category, Side as PreferenceSide};
use twine_conch::crypto::OsRandom;
use twine_conch::keys::{EcdsaCurve, HostKeySigner, KeySpec, PrivateKey, SignatureAlgorithm};
use twine_conch::transport::{ClientConfig, Event, Incoming, ServerConfig, Transport};
use twine_conch::wire::msgs::transport::{ServiceAccept, ServiceRequest};
use twine_conch::wire::msgs::Message;
use twine_conch::wire::{DisconnectReason, MessageType};

/// How long any one connection or command may take before the test gives up on it.
const DEADLINE: Duration = Duration::from_secs(60);

/// The names of `category` both we and the local OpenSSH implement (`kind` is its `ssh -Q`
/// name).
fn common(kind: &str, category: Category) -> Vec<String> {
    let output = Command::new("ssh").args(["-Q", kind]).output().expect("ssh -Q runs");
    let theirs = String::from_utf8_lossy(&output.stdout).to_string();
    let theirs: Vec<&str> = theirs.lines().collect();
    category.supported().iter().filter(|n| theirs.contains(n)).map(|n| (*n).to_owned()).collect()
}

/// A server config with our host keys and every key exchange method and MAC we implement
/// (OpenSSH 10 servers leave finite-field DH off by default, and we leave the SHA-1 MACs off;
/// we test them anyway).
fn server_config() -> ServerConfig {
    let mut config = ServerConfig::new(host_keys());
    config.algorithms.configure(Category::Kex, &Category::Kex.supported().join(",")).unwrap();
    config.algorithms.configure(Category::Mac, &Category::Mac.supported().join(",")).unwrap();
    config
}

/// A scratch directory of its own for each test.
fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("openssh-transport-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Drives `transport` over `stream` until it closes, the peer goes away or the deadline
/// passes, handing each upper-layer payload to `on_payload`; returns every event.
fn drive(
    stream: &mut TcpStream,
    transport: &mut Transport,
    mut on_payload: impl FnMut(&mut Transport, Incoming, &[u8]),
) -> Vec<Event> {
    stream.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
    let deadline = Instant::now() + DEADLINE;
    let (mut out, mut input, mut payload) = (Vec::new(), vec![0; 64 * 1024], Vec::new());
    let mut events = Vec::new();
    loop {
        loop {
            let mut any = false;
            while let Some(incoming) = transport.poll_payload(&mut payload) {
                on_payload(transport, incoming, &payload);
                any = true;
            }
            while let Some(event) = transport.poll_event() {
                if let Event::HostKeyReceived { .. } = event {
                    transport.host_key_decided(true).expect("decision pending");
                }
                events.push(event);
                any = true;
            }
            if !any {
                break;
            }
        }
        transport.poll_transmit(&mut out);
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                transport.handle_eof(Instant::now());
            }
            out.clear();
        }
        if transport.is_closed() || Instant::now() > deadline {
            return events;
        }
        let room = transport.input_capacity().min(input.len());
        match stream.read(&mut input[..room]) {
            Ok(0) => transport.handle_eof(Instant::now()),
            Ok(n) => {
                let _ = transport.handle_input(Instant::now(), &input[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                transport.handle_timeout(Instant::now());
            }
            Err(_) => transport.handle_eof(Instant::now()),
        }
    }
}

/// What our test server saw of one connection.
#[derive(Debug)]
struct Served {
    events: Vec<Event>,
    service_requested: bool,
}

/// A server on 127.0.0.1 built on our transport, serving `connections` connections, each on
/// a thread of its own. It completes key exchange, then refuses the service the client asks
/// for with `SERVICE_NOT_AVAILABLE` (there is no user authentication here).
fn start_server(config: ServerConfig, connections: usize) -> (u16, JoinHandle<Vec<Served>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let config = Arc::new(config);
    let handle = thread::spawn(move || {
        let mut threads = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept().expect("accept");
            let config = Arc::clone(&config);
            threads.push(thread::spawn(move || serve(stream, config)));
        }
        threads.into_iter().map(|t| t.join().expect("connection thread")).collect()
    });
    (port, handle)
}

fn serve(mut stream: TcpStream, config: Arc<ServerConfig>) -> Served {
    let mut transport =
        Transport::server(config, Box::new(OsRandom::new())).expect("server config");
    let mut service_requested = false;
    let events = drive(&mut stream, &mut transport, |t, incoming, payload| {
        if incoming.msg_type == MessageType::SERVICE_REQUEST {
            assert!(ServiceRequest::decode(payload).is_ok());
            service_requested = true;
            t.disconnect(DisconnectReason::SERVICE_NOT_AVAILABLE, "no services in this test");
        }
    });
    Served { events, service_requested }
}

/// Runs a command with a time limit, stopping it (by its PID) if it overruns.
fn run_bounded(command: &mut Command) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `ssh -vvv` with no config, no known hosts and no prompts, against our server, plus
/// `extra` options; returns its log.
fn ssh_log(port: u16, extra: &[&str]) -> String {
    let mut cmd = Command::new("ssh");
    cmd.args(["-vvv", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20"])
        .args(extra)
        .args(["-p", &port.to_string(), "127.0.0.1", "true"])
        .stdin(Stdio::null());
    let output = run_bounded(&mut cmd);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Our host keys for the interop server: one of each type.
fn host_keys() -> Vec<Arc<dyn HostKeySigner>> {
    static RSA: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    let rsa = RSA.get_or_init(|| {
        Arc::new(PrivateKey::generate(KeySpec::Rsa(2048), &mut OsRandom::new()).expect("RSA"))
    });
    let ecdsa = |curve: EcdsaCurve, byte: u8| {
        let mut scalar = vec![byte; curve.field_len()];
        scalar[0] &= 0x01;
        Arc::new(PrivateKey::ecdsa_from_scalar(curve, &scalar).expect("scalar"))
            as Arc<dyn HostKeySigner>
    };
    vec![
        Arc::new(PrivateKey::ed25519_from_seed(&[0x42; 32]).expect("seed")),
        ecdsa(EcdsaCurve::P256, 0x43),
        ecdsa(EcdsaCurve::P384, 0x44),
        ecdsa(EcdsaCurve::P521, 0x45),
        Arc::clone(rsa) as Arc<dyn HostKeySigner>,
    ]
}

/// Runs `ssh` once per option set against a server of ours and checks each got through key
/// exchange with what it asked for.
fn ssh_completes_kex_with_each(option_sets: &[(Vec<String>, String)]) {
    let (port, server) = start_server(server_config(), option_sets.len());
    for (options, expect) in option_sets {
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let log = ssh_log(port, &options);
        assert!(log.contains("SSH2_MSG_NEWKEYS received"), "{options:?}:\n{log}");
        assert!(log.contains("will use strict KEX ordering"), "{options:?}:\n{log}");
        assert!(log.contains(expect.as_str()), "{options:?} expected {expect:?}:\n{log}");
        assert!(log.contains("no services in this test"), "{options:?}: our DISCONNECT:\n{log}");
    }
    let served = server.join().expect("server thread");
    for s in served {
        assert!(s.service_requested, "{:?}", s.events);
        assert!(s.events.contains(&Event::KexCompleted { initial: true }), "{:?}", s.events);
    }
}

/// OpenSSH's `ssh` gets through key exchange with our server with every cipher we share,
/// and sends an encrypted service request we decrypt.
#[test]
fn openssh_client_completes_kex_with_every_cipher() {
    let ciphers = common("cipher", Category::Cipher);
    assert_eq!(ciphers.len(), 6, "{ciphers:?}");
    let sets: Vec<_> = ciphers
        .iter()
        .map(|c| (vec!["-c".to_owned(), c.clone()], format!("kex: server->client cipher: {c}")))
        .collect();
    ssh_completes_kex_with_each(&sets);
}

/// OpenSSH's `ssh` gets through key exchange with our server with every MAC we share (under
/// AES-CTR, where MACs apply).
#[test]
fn openssh_client_completes_kex_with_every_mac() {
    let macs = common("mac", Category::Mac);
    assert_eq!(macs.len(), 6, "{macs:?}");
    let sets: Vec<_> = macs
        .iter()
        .map(|m| {
            let options = vec!["-c".into(), "aes128-ctr".into(), "-m".into(), m.clone()];
            (options, format!("cipher: aes128-ctr MAC: {m}"))
        })
        .collect();
    ssh_completes_kex_with_each(&sets);
}

/// OpenSSH's `ssh` gets through key exchange with our server with every key exchange method
/// we share (OpenSSH 9.2 has no ML-KEM; it is tested where present).
#[test]
fn openssh_client_completes_kex_with_every_kex_method() {
    let methods = common("kex", Category::Kex);
    assert!(methods.len() >= 10, "{methods:?}");
    let sets: Vec<_> = methods
        .iter()
        .map(|k| (vec!["-o".into(), format!("KexAlgorithms={k}")], format!("kex: algorithm: {k}")))
        .collect();
    ssh_completes_kex_with_each(&sets);
}

/// OpenSSH's `ssh` verifies our server's signature with every host key algorithm.
#[test]
fn openssh_client_verifies_every_host_key_algorithm() {
    let sets: Vec<_> = SignatureAlgorithm::ALL
        .iter()
        .filter(|a| **a != SignatureAlgorithm::RsaSha1)
        .map(|a| {
            let options = vec!["-o".into(), format!("HostKeyAlgorithms={a}")];
            (options, format!("kex: host key algorithm: {a}"))
        })
        .collect();
    assert_eq!(sets.len(), 6);
    ssh_completes_kex_with_each(&sets);
}

/// `ssh-keyscan` returns exactly our host keys.
#[test]
fn ssh_keyscan_returns_our_host_keys() {
    let keys = host_keys();
    // ssh-keyscan makes one connection per key type it asks for; for "ecdsa" it offers the
    // three curves and the server picks one, so each curve gets a scan of its own.
    let (port, server) = start_server(ServerConfig::new(keys.clone()), 3);
    let mut output = run_bounded(Command::new("ssh-keyscan").args([
        "-t",
        "ed25519,ecdsa,rsa",
        "-p",
        &port.to_string(),
        "127.0.0.1",
    ]));
    for curve in ["ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"] {
        let (port, server) = start_server(ServerConfig::new(vec![curve_key(&keys, curve)]), 1);
        let more = run_bounded(Command::new("ssh-keyscan").args([
            "-t",
            "ecdsa",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ]));
        output.stdout.extend_from_slice(&more.stdout);
        let _ = server.join();
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut got: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect();
    got.sort();
    let mut want: Vec<String> = keys
        .iter()
        .map(|k| {
            format!("{} {}", k.public_key().key_type().name(), base64(&k.public_key().to_blob()))
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "ssh-keyscan said:\n{text}\n{}", String::from_utf8_lossy(&output.stderr));
    let _ = server.join();
}

/// The key among `keys` whose type is `name`.
fn curve_key(keys: &[Arc<dyn HostKeySigner>], name: &str) -> Arc<dyn HostKeySigner> {
    keys.iter().find(|k| k.public_key().key_type().name() == name).cloned().expect("key of type")
}

/// Base64 as OpenSSH writes key blobs, through coreutils' `base64`.
fn base64(bytes: &[u8]) -> String {
    let mut child = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("base64 runs");
    child.stdin.take().expect("stdin").write_all(bytes).expect("write");
    let output = child.wait_with_output().expect("base64 output");
    String::from_utf8(output.stdout).expect("ascii")
}

/// A private `sshd` on a port of its own, stopped (by PID) when dropped.
struct Sshd {
    child: Child,
    port: u16,
    /// The `.pub` lines of its host keys.
    host_key_lines: String,
}

impl Sshd {
    fn start(name: &str) -> Self {
        let dir = scratch_dir(name);
        let mut host_keys = String::new();
        let mut host_key_lines = String::new();
        for (kind, bits) in
            [("ed25519", ""), ("ecdsa", "256"), ("ecdsa", "384"), ("ecdsa", "521"), ("rsa", "2048")]
        {
            let key = dir.join(format!("ssh_host_{kind}{bits}_key"));
            let mut cmd = Command::new("ssh-keygen");
            cmd.args(["-q", "-t", kind, "-N", "", "-f"]).arg(&key);
            if !bits.is_empty() {
                cmd.args(["-b", bits]);
            }
            assert!(cmd.status().expect("ssh-keygen runs").success());
            host_keys.push_str(&format!("HostKey {}\n", key.display()));
            let public = dir.join(format!("ssh_host_{kind}{bits}_key.pub"));
            host_key_lines.push_str(&std::fs::read_to_string(public).expect("pub"));
        }
        let config = dir.join("sshd_config");
        let text = format!(
            "ListenAddress 127.0.0.1\n{host_keys}PidFile none\nUsePAM no\nStrictModes no\n\
             AuthorizedKeysFile none\nLogLevel DEBUG1\nKexAlgorithms {}\n",
            common("kex", Category::Kex).join(","),
        );
        std::fs::write(&config, text).expect("sshd_config");
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        let port =
            TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).expect("log"))
            .spawn()
            .expect("sshd starts");
        let sshd = Self { child, port, host_key_lines };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "sshd did not start");
            thread::sleep(Duration::from_millis(20));
        }
        sshd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects our client transport to `sshd` with `config`, asks for `ssh-userauth` once the
/// keys are in place, and returns the events and whether the service was accepted.
fn connect_client(sshd: &Sshd, config: ClientConfig) -> (Transport, Vec<Event>, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", sshd.port)).expect("connect");
    let mut transport =
        Transport::client(Arc::new(config), Box::new(OsRandom::new())).expect("client config");
    let mut request = Vec::new();
    ServiceRequest { service: b"ssh-userauth" }.encode(&mut request);
    transport.send_payload(&request).expect("queued until keys are in place");
    let mut accepted = false;
    let events = drive(&mut stream, &mut transport, |t, incoming, payload| {
        if incoming.msg_type == MessageType::SERVICE_ACCEPT {
            accepted = ServiceAccept::decode(payload)
                .map(|m| m.service == b"ssh-userauth")
                .unwrap_or(false);
            t.disconnect(DisconnectReason::BY_APPLICATION, "done");
        }
    });
    (transport, events, accepted)
}

/// Our client completes key exchange with OpenSSH's `sshd` for each cipher, MAC and key
/// exchange method both implement, gets the service it asks for, and sees the host key
/// `ssh-keygen` made.
#[test]
fn our_client_completes_kex_with_openssh_sshd() {
    let sshd = Sshd::start("client");
    let mut configs = Vec::new();
    let with = |category, name: &str| {
        let mut c = ClientConfig::default();
        c.algorithms.configure(category, name).unwrap();
        c
    };
    for cipher in common("cipher", Category::Cipher) {
        configs.push(with(Category::Cipher, &cipher));
    }
    for mac in common("mac", Category::Mac) {
        let mut c = with(Category::Cipher, "aes256-ctr");
        c.algorithms.configure(Category::Mac, &mac).unwrap();
        configs.push(c);
    }
    for kex in common("kex", Category::Kex) {
        configs.push(with(Category::Kex, &kex));
    }
    for host_key in Category::HostKey.defaults(PreferenceSide::Client) {
        configs.push(with(Category::HostKey, host_key));
    }
    for config in configs {
        let what = format!("{:?}", config.algorithms);
        let wanted = config.algorithms.clone();
        let (transport, events, accepted) = connect_client(&sshd, config);
        assert!(accepted, "{what}: {events:?}");
        let negotiated = transport.negotiated().expect("negotiated");
        assert!(wanted.list(Category::Kex).contains(&negotiated.kex.as_str()), "{what}");
        assert!(wanted.list(Category::Cipher).contains(&negotiated.cipher_c2s.as_str()), "{what}");
        assert_eq!(transport.is_strict_kex(), Some(true), "{what}");
        let key = transport.host_key().expect("host key");
        let blob = base64(&key.to_blob());
        assert!(sshd.host_key_lines.contains(&blob), "{what}: {}", sshd.host_key_lines);
        assert!(wanted.list(Category::HostKey).contains(&negotiated.host_key.name()), "{what}");
    }
}

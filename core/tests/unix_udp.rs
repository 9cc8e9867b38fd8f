//! Unix-domain sockets, UDP, adopted descriptors and watched descriptors, on real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use twine_core::protocol::ProtocolFactory;
use twine_core::reactor::{DatagramProtocol, Interest, Reactor, UdpPort};
use twine_core::{Deferred, Reason};
use util::{echo, log, loopback, reactor, Recorder};

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("twine-{}-{name}.sock", std::process::id()))
}

/// A Unix-domain server echoes to a client, and stopping the port removes the socket file.
#[test]
fn echoes_over_a_unix_socket_and_removes_it_when_done() {
    let reactor = reactor();
    let path = socket_path("echo");
    let _ = std::fs::remove_file(&path);
    let server_log = log();
    let factory_log = Rc::clone(&server_log);
    let port =
        reactor.listen_unix(&path, ProtocolFactory::new(move || echo(&factory_log))).unwrap();
    assert!(path.exists());
    let client_log = log();
    let done = reactor.deferred::<()>();
    let client = Recorder::new(&client_log)
        .greeting(b"over unix")
        .done(&done)
        .on_data(|transport, _| transport.lose_connection());
    let mut once = Some(client);
    reactor.connect_unix(
        &path,
        Duration::from_secs(5),
        ProtocolFactory::new(move || once.take().unwrap()),
    );
    reactor.run_until(done).unwrap();
    assert_eq!(client_log.borrow().data, b"over unix");
    assert_eq!(client_log.borrow().lost, Some(Reason::Done));
    port.stop_listening();
    assert!(!path.exists());
}

/// A datagram and where it came from.
type Received = Vec<(Vec<u8>, SocketAddr)>;

struct Datagrams {
    received: Rc<RefCell<Received>>,
    reply: bool,
    done: Option<Deferred<()>>,
    port: Option<UdpPort>,
}

impl DatagramProtocol for Datagrams {
    fn started(&mut self, port: UdpPort) {
        self.port = Some(port);
    }

    fn datagram_received(&mut self, data: &[u8], from: SocketAddr) {
        self.received.borrow_mut().push((data.to_vec(), from));
        if self.reply {
            let mut answer = b"re: ".to_vec();
            answer.extend_from_slice(data);
            self.port.as_ref().unwrap().write_to(&answer, from).unwrap();
        }
        if let Some(done) = self.done.take() {
            done.callback(());
        }
    }
}

/// A UDP port receives a datagram with its sender's address and answers it.
#[test]
fn exchanges_udp_datagrams() {
    let reactor = reactor();
    let server_seen = Rc::default();
    let server = reactor
        .listen_udp(
            loopback(),
            Datagrams { received: Rc::clone(&server_seen), reply: true, done: None, port: None },
        )
        .unwrap();
    let client_seen = Rc::default();
    let done = reactor.deferred::<()>();
    let client = reactor
        .listen_udp(
            loopback(),
            Datagrams {
                received: Rc::clone(&client_seen),
                reply: false,
                done: Some(done.clone()),
                port: None,
            },
        )
        .unwrap();
    client.write_to(b"ping", server.address()).unwrap();
    reactor.run_until(done).unwrap();
    assert_eq!(server_seen.borrow().first().cloned(), Some((b"ping".to_vec(), client.address())));
    let (answer, from) = client_seen.borrow().first().cloned().unwrap();
    assert_eq!(answer, b"re: ping");
    assert_eq!(from, server.address());
    server.stop_listening();
    assert!(client.write_to(b"x", client.address()).is_ok());
    assert!(server.write_to(b"x", client.address()).is_err());
}

/// Two descriptors adopted as one transport (inetd mode over a pair of pipes) carry a
/// conversation with another adopted pair.
#[test]
fn adopts_a_pipe_pair_as_one_transport() {
    let reactor = reactor();
    let (server_read, client_write) = nix::unistd::pipe().unwrap();
    let (client_read, server_write) = nix::unistd::pipe().unwrap();
    let server_log = log();
    reactor.adopt_fd_pair(server_read, server_write, echo(&server_log)).unwrap();
    let client_log = log();
    let done = reactor.deferred::<()>();
    let client =
        Recorder::new(&client_log).greeting(b"inetd").done(&done).on_data(|transport, _| {
            transport.write_eof();
        });
    let transport = reactor.adopt_fd_pair(client_read, client_write, client).unwrap();
    assert_eq!(transport.peer(), twine_core::protocol::Address::Pipe);
    reactor.run_until(done).unwrap();
    assert_eq!(client_log.borrow().data, b"inetd");
    assert!(client_log.borrow().write_lost);
    assert_eq!(server_log.borrow().data, b"inetd");
    assert!(server_log.borrow().read_lost);
}

/// An adopted connected socket knows its addresses and works as a transport.
#[test]
fn adopts_a_connected_socket() {
    let reactor = reactor();
    let (left, right) = std::os::unix::net::UnixStream::pair().unwrap();
    let right_log = log();
    reactor.adopt_fd(OwnedFd::from(right), echo(&right_log)).unwrap();
    let left_log = log();
    let done = reactor.deferred::<()>();
    let client = Recorder::new(&left_log)
        .greeting(b"pair")
        .done(&done)
        .on_data(|transport, _| transport.lose_connection());
    let transport = reactor.adopt_fd(OwnedFd::from(left), client).unwrap();
    assert_eq!(transport.peer(), twine_core::protocol::Address::Unix(None));
    reactor.run_until(done).unwrap();
    assert_eq!(left_log.borrow().data, b"pair");
}

/// A watched raw descriptor reports readability from the loop, and stops when told.
#[test]
fn watches_a_raw_descriptor() {
    let reactor = reactor();
    let (read, write) = nix::unistd::pipe().unwrap();
    twine_core_nonblocking(&read);
    let done = reactor.deferred::<()>();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (sink, fire) = (Rc::clone(&seen), done.clone());
    let read_file = std::fs::File::from(read);
    let raw = read_file.as_raw_fd();
    let watch = reactor
        .watch_fd(raw, Interest::Readable, move |readiness| {
            assert!(readiness.readable);
            let mut buffer = [0; 16];
            while let Ok(n) = std::io::Read::read(&mut &read_file, &mut buffer) {
                if n == 0 {
                    break;
                }
                sink.borrow_mut().extend_from_slice(&buffer[..n]);
            }
            if !fire.fired() {
                fire.callback(());
            }
        })
        .unwrap();
    std::fs::File::from(write).write_all(b"ready").unwrap();
    reactor.run_until(done).unwrap();
    assert_eq!(*seen.borrow(), b"ready");
    watch.stop();
}

fn twine_core_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
}

/// Listening sockets bound elsewhere (by a privileged process) serve as if listened on here;
/// an adopted Unix socket's file goes when the port stops.
#[test]
fn adopted_listening_sockets_serve_and_an_adopted_unix_socket_is_removed_when_done() {
    let reactor = reactor();
    let path = socket_path("adopted");
    let _ = std::fs::remove_file(&path);
    let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_address = tcp.local_addr().unwrap();
    let server_log = log();
    let (a, b) = (Rc::clone(&server_log), Rc::clone(&server_log));
    let unix_port =
        reactor.adopt_unix_listener(unix, &path, ProtocolFactory::new(move || echo(&a))).unwrap();
    let tcp_port = reactor.adopt_tcp_listener(tcp, ProtocolFactory::new(move || echo(&b))).unwrap();
    assert_eq!(tcp_port.tcp_address(), Some(tcp_address));
    for over_unix in [true, false] {
        let client_log = log();
        let done = reactor.deferred::<()>();
        let client = Recorder::new(&client_log)
            .greeting(b"adopted")
            .done(&done)
            .on_data(|transport, _| transport.lose_connection());
        let mut once = Some(client);
        let factory = ProtocolFactory::new(move || once.take().unwrap());
        if over_unix {
            reactor.connect_unix(&path, Duration::from_secs(5), factory);
        } else {
            reactor.connect_tcp(tcp_address, Duration::from_secs(5), factory);
        }
        reactor.run_until(done).unwrap();
        assert_eq!(client_log.borrow().data, b"adopted");
    }
    unix_port.stop_listening();
    tcp_port.stop_listening();
    assert!(!path.exists());
}

/// Several reactors waiting on one listening socket with `watch_shared_fd` (worker processes
/// sharing a listener): each connection wakes one of them, not all. With `watch_fd` every idle
/// reactor's thread wakes for every connection, and all but one find nothing (epoll re-checks
/// the listener, so they go back to sleep without calling the handler: only the thread's count
/// of voluntary context switches shows it).
#[test]
fn a_shared_listener_wakes_one_waiting_reactor_per_connection() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};
    const CONNECTIONS: u64 = 20;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let listener = Arc::new(listener);
    let accepted = Arc::new(AtomicU64::new(0));
    let (started_tx, started) = mpsc::channel();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (listener, accepted) = (Arc::clone(&listener), Arc::clone(&accepted));
            let started_tx = started_tx.clone();
            std::thread::spawn(move || {
                let reactor = reactor();
                let raw = listener.as_raw_fd();
                let watch = reactor
                    .watch_shared_fd(raw, move |_| {
                        // Bounded: the test makes CONNECTIONS connections in all.
                        for _ in 0..=CONNECTIONS {
                            if listener.accept().is_err() {
                                break;
                            }
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .unwrap();
                started_tx.send((reactor.thread_handle(), nix::unistd::gettid())).unwrap();
                reactor.run().unwrap();
                watch.stop();
            })
        })
        .collect();
    let started: Vec<_> = (0..2).map(|_| started.recv().unwrap()).collect();
    let switches = || -> u64 {
        started
            .iter()
            .map(|(_, tid)| {
                let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"));
                let status = status.unwrap();
                let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:"));
                line.unwrap().split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
            })
            .sum()
    };
    // Both loops are idle in their wait before the first connection.
    std::thread::sleep(Duration::from_millis(200));
    let before = switches();
    for made in 1..=CONNECTIONS {
        let _client = std::net::TcpStream::connect(address).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while accepted.load(Ordering::SeqCst) < made && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), made, "connection {made} accepted");
        // Let a second, needless wake-up happen (and end) before the next connection.
        std::thread::sleep(Duration::from_millis(20));
    }
    let woken = switches() - before;
    for (handle, _) in &started {
        handle.call_from_thread(Reactor::stop).unwrap();
    }
    for thread in threads {
        thread.join().unwrap();
    }
    // One wake-up (and sleep) per connection; two per connection without the flag.
    assert!(woken < CONNECTIONS * 3 / 2, "{woken} wake-ups for {CONNECTIONS} connections");
}

/// A descriptor epoll cannot poll (a regular file) is refused by both kinds of watch with the
/// OS's reason and what was being done, and the reactor keeps working: a pipe watched after
/// the refusals still reports.
#[test]
fn a_regular_file_cannot_be_watched_shared_or_not_and_the_error_says_why() {
    let reactor = reactor();
    let path = std::env::temp_dir().join(format!("twine-{}-watched-file", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let raw = file.as_raw_fd();
    let plain = reactor.watch_fd(raw, Interest::Readable, |_| {}).unwrap_err();
    let shared = reactor.watch_shared_fd(raw, |_| {}).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    for error in [plain, shared] {
        assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
        assert_eq!(error.context(), "watch a descriptor");
    }
    let (read, write) = nix::unistd::pipe().unwrap();
    twine_core_nonblocking(&read);
    let done = reactor.deferred::<()>();
    let fire = done.clone();
    let watch = reactor
        .watch_shared_fd(read.as_raw_fd(), move |readiness| {
            if readiness.readable && !fire.fired() {
                fire.callback(());
            }
        })
        .unwrap();
    std::fs::File::from(write).write_all(b"x").unwrap();
    reactor.run_until(done).unwrap();
    watch.stop();
    drop(read);
}

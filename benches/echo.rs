//! The echo workload served by twine-core and by tokio's current-thread runtime, side by side.
//!
//! `cargo bench --bench echo` (best of 3 alternating 2 s runs per case and runtime, about 1 min)
//! or `cargo bench --bench echo -- --quick` (one 0.5 s run each).
//! Each runtime runs the server on one thread and the load on another, over loopback:
//!
//! - **ping-pong**: 64 connections, each sending a 64-byte message and waiting for its echo
//!   before the next; reported in round trips per second.
//! - **bulk**: 4 connections streaming 64 KiB writes while reading the echoes back; reported in
//!   MB/s echoed.
//!
//! It prints both figures and the twine/tokio ratio; it asserts nothing.
//!
//! `--only twine` or `--only tokio` runs one runtime alone (for profilers: `valgrind --tool=callgrind`,
//! `perf stat`), and `--case ping-pong` or `--case bulk` one case; the ratio is then left out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twine::internet::protocol::{ProtocolFactory, PushProducer};
use twine::internet::{Protocol, Reactor, Transport};

const CONNECTIONS: usize = 64;
const MESSAGE: usize = 64;
const BULK_CONNECTIONS: usize = 4;
const BULK_CHUNK: usize = 64 * 1024;

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    round_trips: u64,
    bytes: u64,
    elapsed: Duration,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // as a smoke test.
    let bench = std::env::args().any(|arg| arg == "--bench");
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (duration, rounds) = match (bench, quick) {
        (false, _) => (Duration::from_millis(100), 1),
        (true, true) => (Duration::from_millis(500), 1),
        (true, false) => (Duration::from_secs(2), 3),
    };
    println!(
        "echo benchmark: {duration:?} per run, best of {rounds} alternating rounds{}",
        if !bench {
            " (smoke test)"
        } else if quick {
            " (quick)"
        } else {
            ""
        }
    );
    let only = option("--only");
    let (run_twine, run_tokio) = match only.as_deref() {
        None => (true, true),
        Some("twine") => (true, false),
        Some("tokio") => (false, true),
        Some(other) => panic!("--only takes twine or tokio, not {other:?}"),
    };
    let case = option("--case");
    let (run_ping_pong, run_bulk) = match case.as_deref() {
        None => (true, true),
        Some("ping-pong") => (true, false),
        Some("bulk") => (false, true),
        Some(other) => panic!("--case takes ping-pong or bulk, not {other:?}"),
    };
    println!("{:<10} {:>18} {:>18} {:>12}", "case", "twine", "tokio", "twine/tokio");

    if run_ping_pong {
        let (mut twine, mut tokio) = (0.0_f64, 0.0_f64);
        for _ in 0..rounds {
            if run_twine {
                let run = twine_ping_pong(duration);
                twine = twine.max(rate(run.round_trips, run.elapsed));
            }
            if run_tokio {
                let run = tokio_ping_pong(duration);
                tokio = tokio.max(rate(run.round_trips, run.elapsed));
            }
        }
        println!(
            "{:<10} {:>12.0} req/s {:>12.0} req/s {:>12}",
            "ping-pong",
            twine,
            tokio,
            ratio(twine, tokio)
        );
    }

    if run_bulk {
        let (mut twine, mut tokio) = (0.0_f64, 0.0_f64);
        for _ in 0..rounds {
            if run_twine {
                let run = twine_bulk(duration);
                twine = twine.max(rate(run.bytes, run.elapsed) / 1e6);
            }
            if run_tokio {
                let run = tokio_bulk(duration);
                tokio = tokio.max(rate(run.bytes, run.elapsed) / 1e6);
            }
        }
        println!(
            "{:<10} {:>13.1} MB/s {:>13.1} MB/s {:>12}",
            "bulk",
            twine,
            tokio,
            ratio(twine, tokio)
        );
    }
}

/// The value after `name` on the command line (`--only twine`), or of `name=value`.
fn option(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(arg) = args.next() {
        if arg == name {
            return args.next();
        }
        if let Some(value) = arg.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
            return Some(value.to_owned());
        }
    }
    None
}

/// `twine / tokio` to two places, or `-` when one of them did not run.
fn ratio(twine: f64, tokio: f64) -> String {
    if twine > 0.0 && tokio > 0.0 {
        format!("{:.2}", twine / tokio)
    } else {
        "-".to_owned()
    }
}

/// With `--only`, the whole run's count (warm-up included), to divide a profiler's totals by.
fn total(count: u64) {
    if option("--only").is_some() {
        println!("  ({count} in all, warm-up and wind-down included)");
    }
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ---------------------------------------------------------------------------------------------
// twine

/// The echo protocol, with the transport as its own producer: when the write buffer fills,
/// reading pauses.
#[derive(Default)]
struct Echo(Option<Rc<dyn Transport>>);

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.register_producer(Rc::new(Rc::clone(&transport)));
        self.0 = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(transport) = &self.0 {
            transport.write(data);
        }
    }
}

/// Runs a twine echo server on its own thread; returns its address and a stopper.
fn twine_server() -> (SocketAddr, impl FnOnce()) {
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let reactor = Reactor::new().unwrap();
        let port = reactor.listen_tcp(loopback(), ProtocolFactory::new(Echo::default)).unwrap();
        sender.send((port.tcp_address().unwrap(), reactor.thread_handle())).unwrap();
        reactor.run().unwrap();
    });
    let (addr, handle) = receiver.recv().unwrap();
    (addr, move || {
        handle.call_from_thread(Reactor::stop).unwrap();
        thread.join().unwrap();
    })
}

struct Shared {
    round_trips: Cell<u64>,
    bytes: Cell<u64>,
    running: Cell<bool>,
}

impl Shared {
    fn new() -> Rc<Self> {
        Rc::new(Self { round_trips: Cell::new(0), bytes: Cell::new(0), running: Cell::new(true) })
    }
}

struct PingClient {
    shared: Rc<Shared>,
    transport: Option<Rc<dyn Transport>>,
    pending: usize,
}

impl Protocol for PingClient {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.write(&[b'x'; MESSAGE]);
        self.pending = MESSAGE;
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.pending = self.pending.saturating_sub(data.len());
        if self.pending > 0 {
            return;
        }
        let Some(transport) = &self.transport else { return };
        self.shared.round_trips.set(self.shared.round_trips.get() + 1);
        if !self.shared.running.get() {
            transport.lose_connection();
            return;
        }
        transport.write(&[b'x'; MESSAGE]);
        self.pending = MESSAGE;
    }
}

fn twine_ping_pong(duration: Duration) -> Figures {
    let (addr, stop_server) = twine_server();
    let reactor = Reactor::new().unwrap();
    let shared = Shared::new();
    let client_shared = Rc::clone(&shared);
    for _ in 0..CONNECTIONS {
        let shared = Rc::clone(&client_shared);
        let mut once = Some(PingClient { shared, transport: None, pending: 0 });
        reactor.connect_tcp(
            addr,
            Duration::from_secs(5),
            ProtocolFactory::new(move || once.take().unwrap()),
        );
    }
    let figures = measure(&reactor, &shared, duration, |shared| shared.round_trips.get());
    stop_server();
    total(shared.round_trips.get());
    Figures { round_trips: figures.0, bytes: 0, elapsed: figures.1 }
}

/// Runs `reactor` for a warm-up and then `duration`, counting with `count`.
fn measure(
    reactor: &Reactor,
    shared: &Rc<Shared>,
    duration: Duration,
    count: impl Fn(&Shared) -> u64 + 'static,
) -> (u64, Duration) {
    let result = Rc::new(RefCell::new((0, Duration::ZERO)));
    let warm_up = duration / 5;
    let (start_shared, out) = (Rc::clone(shared), Rc::clone(&result));
    let stopper = reactor.clone();
    let count = Rc::new(count);
    reactor.call_later(warm_up, move || {
        let (started, base) = (Instant::now(), count(&start_shared));
        let end_shared = Rc::clone(&start_shared);
        let stop_reactor = stopper.clone();
        stopper.call_later(duration, move || {
            *out.borrow_mut() = (count(&end_shared) - base, started.elapsed());
            end_shared.running.set(false);
            let really = stop_reactor.clone();
            stop_reactor.call_later(Duration::from_millis(50), move || really.stop());
        });
    });
    reactor.run().unwrap();
    let result = *result.borrow();
    result
}

/// A bulk client: writes chunks while its transport accepts them, counts the echoes.
struct BulkClient {
    shared: Rc<Shared>,
    transport: RefCell<Option<Rc<dyn Transport>>>,
    paused: Cell<bool>,
    scheduled: Cell<bool>,
    reactor: Reactor,
}

impl BulkClient {
    fn schedule(self: &Rc<Self>) {
        if self.scheduled.replace(true) {
            return;
        }
        let me = Rc::clone(self);
        self.reactor.call_soon(move || me.produce());
    }

    fn produce(self: &Rc<Self>) {
        self.scheduled.set(false);
        let Some(transport) = self.transport.borrow().clone() else { return };
        if !self.shared.running.get() {
            transport.lose_connection();
            return;
        }
        // Like `write_all` until `WouldBlock`: write while the kernel takes everything.
        for _ in 0..16 {
            if self.paused.get() {
                return;
            }
            transport.write(&[0x42; BULK_CHUNK]);
            if transport.buffered() > 0 {
                break;
            }
        }
        self.schedule();
    }
}

struct BulkProducer(Rc<BulkClient>);

impl PushProducer for BulkProducer {
    fn pause_producing(&self) {
        self.0.paused.set(true);
    }

    fn resume_producing(&self) {
        self.0.paused.set(false);
        self.0.schedule();
    }

    fn stop_producing(&self) {
        self.0.transport.borrow_mut().take();
    }
}

struct BulkProtocol(Rc<BulkClient>);

impl Protocol for BulkProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.register_producer(Rc::new(BulkProducer(Rc::clone(&self.0))));
        *self.0.transport.borrow_mut() = Some(transport);
        self.0.schedule();
    }

    fn data_received(&mut self, data: &[u8]) {
        let shared = &self.0.shared;
        shared.bytes.set(shared.bytes.get() + data.len() as u64);
    }
}

fn twine_bulk(duration: Duration) -> Figures {
    let (addr, stop_server) = twine_server();
    let reactor = Reactor::new().unwrap();
    let shared = Shared::new();
    for _ in 0..BULK_CONNECTIONS {
        let client = Rc::new(BulkClient {
            shared: Rc::clone(&shared),
            transport: RefCell::new(None),
            paused: Cell::new(false),
            scheduled: Cell::new(false),
            reactor: reactor.clone(),
        });
        let mut once = Some(BulkProtocol(client));
        reactor.connect_tcp(
            addr,
            Duration::from_secs(5),
            ProtocolFactory::new(move || once.take().unwrap()),
        );
    }
    let (bytes, elapsed) = measure(&reactor, &shared, duration, |shared| shared.bytes.get());
    stop_server();
    Figures { round_trips: 0, bytes, elapsed }
}

// ---------------------------------------------------------------------------------------------
// tokio

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn tokio_server() -> (SocketAddr, impl FnOnce()) {
    let (sender, receiver) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio_runtime();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            let accept = async move {
                loop {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    socket.set_nodelay(true).unwrap();
                    tokio::spawn(async move {
                        let mut buffer = vec![0; 64 * 1024];
                        loop {
                            let n = match socket.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if socket.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            };
            tokio::select! {
                () = accept => {}
                _ = stop_rx => {}
            }
        });
    });
    let addr = receiver.recv().unwrap();
    (addr, move || {
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
    })
}

/// Serves echo on one tokio thread and runs `connections` clients made by `client` on
/// another: a warm-up, then `duration` counted on the shared counter.
fn tokio_case<F>(
    duration: Duration,
    connections: usize,
    client: impl Fn(SocketAddr, Arc<AtomicU64>, Arc<AtomicBool>) -> F,
) -> (u64, Duration)
where
    F: std::future::Future<Output = ()> + 'static,
{
    let (addr, stop_server) = tokio_server();
    let counter = Arc::new(AtomicU64::new(0));
    let local_counter = Arc::clone(&counter);
    let runtime = tokio_runtime();
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async move {
        let running = Arc::new(AtomicBool::new(true));
        for _ in 0..connections {
            tokio::task::spawn_local(client(
                addr,
                Arc::clone(&local_counter),
                Arc::clone(&running),
            ));
        }
        tokio::time::sleep(duration / 5).await;
        let (started, base) = (Instant::now(), local_counter.load(Ordering::Relaxed));
        tokio::time::sleep(duration).await;
        let result = (local_counter.load(Ordering::Relaxed) - base, started.elapsed());
        running.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
        result
    });
    stop_server();
    total(counter.load(Ordering::Relaxed));
    result
}

fn tokio_ping_pong(duration: Duration) -> Figures {
    let (round_trips, elapsed) =
        tokio_case(duration, CONNECTIONS, |addr, count, running| async move {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket.set_nodelay(true).unwrap();
            let message = [b'x'; MESSAGE];
            let mut answer = [0; MESSAGE];
            while running.load(Ordering::Relaxed) {
                socket.write_all(&message).await.unwrap();
                socket.read_exact(&mut answer).await.unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
    Figures { round_trips, bytes: 0, elapsed }
}

fn tokio_bulk(duration: Duration) -> Figures {
    let (bytes, elapsed) =
        tokio_case(duration, BULK_CONNECTIONS, |addr, count, running| async move {
            let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket.set_nodelay(true).unwrap();
            let (mut reader, mut writer) = socket.into_split();
            let writing = Arc::clone(&running);
            tokio::task::spawn_local(async move {
                let chunk = vec![0x42; BULK_CHUNK];
                while writing.load(Ordering::Relaxed) {
                    if writer.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
            let mut buffer = vec![0; 64 * 1024];
            while running.load(Ordering::Relaxed) {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => count.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
        });
    Figures { round_trips: 0, bytes, elapsed }
}

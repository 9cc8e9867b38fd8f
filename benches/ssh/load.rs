//! The load client, built on our client library: many connections from one reactor, so that
//! client process start-up does not hide the server's cost.

use std::cell::{Cell, RefCell};
use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use twine::conch::client::{self, ClientConfig, Connection, Target};
use twine::conch::crypto::algorithms::Category;
use twine::conch::transport;
use twine::internet::Reactor;

/// Our client's configuration for the benchmark: curve25519-sha256, ed25519 host key and
/// publickey, the host key accepted without a known_hosts file (private loopback servers).
pub fn config(user: &str, key: &Path) -> Result<ClientConfig, String> {
    let mut transport = transport::ClientConfig::default();
    let algorithms = &mut transport.algorithms;
    algorithms.configure(Category::Kex, "curve25519-sha256").map_err(|e| e.to_string())?;
    algorithms.configure(Category::HostKey, "ssh-ed25519").map_err(|e| e.to_string())?;
    Ok(ClientConfig::new(user)
        .identity_file(key)
        .dangerous_accept_any_host_key()
        .connect_timeout(Duration::from_secs(20))
        .transport(transport))
}

/// What a rate run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    pub sessions: u64,
    pub failures: u64,
    pub elapsed: Duration,
}

/// Runs `exec true` sessions (connect, key exchange, publickey, exec, close) on `port` with
/// `in_flight` at once, until `count` sessions or `limit` time.
pub fn rate(
    port: u16,
    config: &ClientConfig,
    in_flight: usize,
    count: u64,
    limit: Duration,
) -> Rate {
    let Ok(reactor) = Reactor::new() else { return Rate { failures: 1, ..Rate::default() } };
    let started = Instant::now();
    let (claimed, done, failures) =
        (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let first_error: Rc<RefCell<Option<String>>> = Rc::default();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (reactor2, config) = (reactor.clone(), config.clone());
        let (claimed, done, failures, first_error) =
            (claimed.clone(), done.clone(), failures.clone(), first_error.clone());
        workers.push(reactor.spawn(async move {
            while claimed.get() < count && started.elapsed() < limit {
                claimed.set(claimed.get() + 1);
                let result = async {
                    let connection =
                        client::connect(&reactor2, Target::new("127.0.0.1", port), config.clone())
                            .await?;
                    let output = connection.run("true", 4096).await?;
                    connection.disconnect();
                    Ok::<_, client::ClientError>(output.status.success())
                }
                .await;
                match result {
                    Ok(true) => done.set(done.get() + 1),
                    Ok(false) => failures.set(failures.get() + 1),
                    Err(error) => {
                        failures.set(failures.get() + 1);
                        first_error.borrow_mut().get_or_insert(error.to_string());
                    }
                }
            }
        }));
    }
    // A hard bound past the soft one, for a session that never ends.
    let stopper = reactor.clone();
    let _guard = reactor.call_later(limit + Duration::from_secs(30), move || stopper.stop());
    let _ = reactor.run_until(async move {
        for worker in workers {
            worker.await?;
        }
        Ok(())
    });
    let elapsed = started.elapsed();
    if let Some(error) = first_error.borrow().as_ref() {
        eprintln!("    (load client: {} failures; first: {error})", failures.get());
    }
    Rate { sessions: done.get(), failures: failures.get(), elapsed }
}

/// `--hold-idle PORT N IN_FLIGHT USER KEY`: opens N authenticated connections (no channels),
/// prints `ready <held>`, holds them until standard input closes, then exits.
pub fn hold_idle(
    port: u16,
    n: usize,
    in_flight: usize,
    user: &str,
    key: &Path,
) -> Result<(), String> {
    let config = config(user, key)?;
    // One socket per connection: the soft limit on open files is often 1,024.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let held: Rc<RefCell<Vec<Connection>>> = Rc::default();
    let (claimed, failures) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let started = Instant::now();
    let limit = Duration::from_secs(300);
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (reactor2, config, held, claimed, failures) =
            (reactor.clone(), config.clone(), held.clone(), claimed.clone(), failures.clone());
        workers.push(reactor.spawn(async move {
            while claimed.get() < n && failures.get() < 20 && started.elapsed() < limit {
                claimed.set(claimed.get() + 1);
                match client::connect(&reactor2, Target::new("127.0.0.1", port), config.clone())
                    .await
                {
                    Ok(connection) => held.borrow_mut().push(connection),
                    Err(error) => {
                        failures.set(failures.get() + 1);
                        eprintln!("    (idle client: {error})");
                    }
                }
            }
        }));
    }
    let stopper = reactor.clone();
    let _guard = reactor.call_later(limit + Duration::from_secs(30), move || stopper.stop());
    let _ = reactor.run_until(async move {
        for worker in workers {
            worker.await?;
        }
        Ok(())
    });
    // Let the last replies (global requests such as hostkeys-00@openssh.com) settle.
    let settle = reactor.clone();
    let _ = reactor.run_until(async move {
        let deferred = settle.deferred::<()>();
        let fire = deferred.clone();
        let _call = settle.call_later(Duration::from_millis(500), move || fire.callback(()));
        deferred.await
    });
    let count = held.borrow().len();
    println!("ready {count}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    for connection in held.borrow().iter() {
        connection.disconnect();
    }
    Ok(())
}

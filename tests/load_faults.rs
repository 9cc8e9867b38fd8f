//! Load and faults against the `conchd` binary on loopback, bounded (issue 9's CI size): the
//! server's own processes, descriptors and ptys are what is counted. Logins are made by our
//! client library in this process (so `ssh` start-up does not dominate), or by OpenSSH's `ssh`
//! where a source address must be bound.
//!
//! Needs root (a throwaway account and a root `conchd`); otherwise each test prints why and
//! returns. Every loop is bounded in count and every wait in time; every process started here
//! is killed or waited for by its PID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conchd_support;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use conchd_support::{conchd_command, free_port, is_root, keygen, Daemon, TempDir, TestUser};
use twine_conch::client::{self, ClientConfig, ClientError, ExitStatus, Target};

/// Idle pre-authentication connections held open (CI size; 1,000 for the large run).
const IDLE: usize = 200;

/// Legitimate logins made while they are held.
const LOGINS: usize = 1_000;

/// How long one client-library login may take before it counts as failed (a bound).
const LOGIN_LIMIT: Duration = Duration::from_secs(60);

/// A root `conchd` serving a throwaway user from their `authorized_keys`.
struct Setup {
    dir: TempDir,
    key: PathBuf,
    user: TestUser,
    daemon: Daemon,
}

/// `None` (with the reason printed) when not root or the account cannot be made.
fn setup(tag: &str, extra: &str) -> Option<Setup> {
    if !is_root() {
        println!("{tag}: skipped: needs root to create a test user");
        return None;
    }
    let dir = TempDir::new(tag);
    let key = keygen(dir.root(), "id_ed25519", "ed25519");
    let Some(user) = TestUser::create(&dir.path("home"), &key) else {
        println!("{tag}: skipped: useradd failed");
        return None;
    };
    let host_key = keygen(dir.root(), "host_key", "ed25519");
    let config = dir.write(
        "sshd_config",
        &format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nLogLevel INFO\n\
             MaxStartups 1000\n{extra}",
            free_port(),
            host_key.display()
        ),
    );
    let mut command = conchd_command(None, dir.root());
    command.args(["-D", "-e", "-f", &config]);
    let daemon = Daemon::start(command);
    Some(Setup { dir, key, user, daemon })
}

impl Setup {
    fn config(&self) -> ClientConfig {
        ClientConfig::new(&self.user.name)
            .identity_file(&self.key)
            .dangerous_accept_any_host_key()
            .connect_timeout(Duration::from_secs(10))
    }

    fn target(&self) -> Target {
        Target::new("127.0.0.1", self.daemon.port)
    }
}

/// Runs `future` on `reactor`, or fails after `limit`.
fn block_on<T: 'static>(
    reactor: &twine_core::Reactor,
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, ClientError>> + 'static,
) -> Result<T, ClientError> {
    let stopper = reactor.clone();
    let timer = reactor.call_later(limit, move || stopper.stop());
    let result = reactor.run_until(async move { Ok(future.await) });
    timer.cancel();
    result.unwrap_or_else(|err| Err(ClientError::Local(err)))
}

/// One login with the key that runs `echo ok` and disconnects.
fn login(setup: &Setup, reactor: &twine_core::Reactor) -> Result<(), String> {
    let (target, config, r) = (setup.target(), setup.config(), reactor.clone());
    let output = block_on(reactor, LOGIN_LIMIT, async move {
        let connection = client::connect(&r, target, config).await?;
        let output = connection.run("echo ok", 1 << 16).await;
        connection.disconnect();
        output
    })
    .map_err(|err| err.to_string())?;
    if output.status == ExitStatus::Code(0) && output.stdout == b"ok\n" {
        Ok(())
    } else {
        Err(format!("{:?} {:?}", output.status, String::from_utf8_lossy(&output.stdout)))
    }
}

/// 1,000 logins by our client succeed at ≥ 99.9% while 200 idle pre-authentication
/// connections (half silent, half stopped after their identification line) are held open.
#[test]
fn a_thousand_logins_succeed_while_two_hundred_idle_connections_are_held() {
    let Some(setup) = setup("load-logins", "") else { return };
    let reactor = twine_core::Reactor::new().unwrap();
    login(&setup, &reactor).unwrap();
    let mut idle = Vec::new();
    for i in 0..IDLE {
        let mut stream = TcpStream::connect(("127.0.0.1", setup.daemon.port)).unwrap();
        if i % 2 == 1 {
            stream.write_all(b"SSH-2.0-idle\r\n").unwrap();
        }
        idle.push(stream);
    }
    let logins = std::env::var("LOAD_LOGINS").ok().and_then(|n| n.parse().ok()).unwrap_or(LOGINS);
    let failures: Vec<String> = (0..logins).filter_map(|_| login(&setup, &reactor).err()).collect();
    drop(idle);
    // ≥ 99.9%: at most one failure in a thousand.
    assert!(
        failures.len() * 1000 <= logins,
        "{} of {logins} logins failed: {failures:?}",
        failures.len()
    );
    let _ = &setup.dir;
}

//! The servers under test: private instances on loopback ports, from throw-away configs and keys
//! in the run's scratch directory, stopped (by PID) on drop.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use twine::conch::crypto::OsRandom;
use twine::conch::keys::{KeySpec, PrivateKey};
use twine::conch::server::{AuthorizedKeys, Chain, ServerFactory, UnixSessions};
use twine::conch::stack::ServerStackConfig;
use twine::conch::ServerConfig;
use twine::internet::Reactor;

use crate::procs;

/// The run's scratch directory (on tmpfs when there is one): keys, configs, data, FIFOs.
#[derive(Debug)]
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Result<Self, String> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("twine-bench-ssh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home/.ssh"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let scratch = Self { dir };
        set_mode(&scratch.dir, 0o700);
        set_mode(&scratch.path("home"), 0o700);
        set_mode(&scratch.path("home/.ssh"), 0o700);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(scratch.path("id_ed25519")))?;
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(scratch.path("host_ed25519")))?;
        let public = std::fs::read(scratch.path("id_ed25519.pub")).map_err(|e| e.to_string())?;
        std::fs::write(scratch.path("authorized_keys"), &public).map_err(|e| e.to_string())?;
        std::fs::write(scratch.path("home/.ssh/authorized_keys"), &public)
            .map_err(|e| e.to_string())?;
        set_mode(&scratch.path("home/.ssh/authorized_keys"), 0o600);
        Ok(scratch)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Runs a setup command to success.
pub fn run(command: &mut Command) -> Result<(), String> {
    let out = command.stdin(Stdio::null()).output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?}: {} {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Our `conchd` binary, from the same sshd_config as OpenSSH's.
    Conchd,
    /// The library's server in this bench binary (`--serve-twine`): ServerFactory,
    /// ServerStackConfig defaults, Unix sessions. Stands in for conchd until it serves.
    TwineLib,
    Sshd,
    Dropbear,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Conchd => "conchd",
            Self::TwineLib => "twine-lib",
            Self::Sshd => "sshd",
            Self::Dropbear => "dropbear",
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    pub pid: u32,
    child: Child,
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until the server on `port` sends its identification line (bounded).
fn wait_for_banner(port: u16, child: &mut Child, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited early: {status}"));
        }
        if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("SSH-") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no SSH banner on port {port} within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sshd_config shared by OpenSSH's sshd and conchd.
fn sshd_config(scratch: &Scratch, port: u16) -> String {
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
         AuthorizedKeysFile {keys}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n\
         MaxStartups 100:30:300\nLogLevel ERROR\nX11Forwarding no\nPrintMotd no\nPrintLastLog no\n",
        host = scratch.p("host_ed25519"),
        keys = scratch.p("authorized_keys"),
    )
}

impl Server {
    pub fn start(kind: Kind, scratch: &Scratch, conchd: Option<&str>) -> Result<Self, String> {
        let port = free_port()?;
        let stderr = std::fs::File::create(scratch.path(&format!("{}.log", kind.name())))
            .map_err(|e| e.to_string())?;
        let command = match kind {
            Kind::Sshd | Kind::Conchd => {
                let config = scratch.path(&format!("{}_config", kind.name()));
                std::fs::write(&config, sshd_config(scratch, port)).map_err(|e| e.to_string())?;
                if kind == Kind::Sshd && !Path::new("/run/sshd").exists() {
                    // Debian's sshd refuses to start without its privilege-separation directory
                    // (the package's service creates it the same way).
                    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
                }
                let program = match kind {
                    Kind::Sshd => "/usr/sbin/sshd",
                    _ => conchd.ok_or("no conchd binary")?,
                };
                let mut command = Command::new(program);
                command.arg("-D").arg("-e").arg("-f").arg(config);
                command
            }
            Kind::Dropbear => {
                if !Path::new("/usr/sbin/dropbear").exists() {
                    return Err("dropbear is not installed (apt-get install dropbear-bin)".into());
                }
                let key = scratch.path("dropbear_host");
                if !key.exists() {
                    run(Command::new("dropbearkey").args(["-t", "ed25519", "-f"]).arg(&key))?;
                }
                let mut command = Command::new("/usr/sbin/dropbear");
                command.args(["-F", "-E", "-s", "-j", "-k", "-p"]);
                command.arg(format!("127.0.0.1:{port}")).arg("-r").arg(&key);
                command
            }
            Kind::TwineLib => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let mut command = Command::new(exe);
                command
                    .arg("--serve-twine")
                    .arg(port.to_string())
                    .arg(scratch.path("authorized_keys"));
                command
            }
        };
        // Every server runs in a private mount namespace where the scratch home is bound over the
        // user's home: Dropbear reads authorized_keys only from there, and every server's
        // sessions then start the login shell alike, without the real home's ~/.bashrc (Debian's
        // bash reads it for commands run over SSH, which would dominate the per-session cost).
        let home = twine::conch::server::Account::current().map_err(|e| e.to_string())?.home;
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-m", "--propagation", "private", "sh", "-c"]);
        wrapped.arg("mount --bind \"$0\" \"$1\" && shift && exec \"$@\"");
        wrapped
            .arg(scratch.path("home"))
            .arg(home)
            .arg(command.get_program())
            .args(command.get_args());
        // Without the privilege for a mount namespace (not root), the servers run as they are:
        // their sessions then read the real home's shell startup files, and Dropbear its
        // authorized_keys (so it fails to log in unless our key is there).
        let mut child = if private_home_possible() { wrapped } else { command }
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e}", kind.name()))?;
        if let Err(error) = wait_for_banner(port, &mut child, Duration::from_secs(20)) {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(scratch.path(&format!("{}.log", kind.name())))
                .unwrap_or_default();
            return Err(format!("{}: {error}; log: {}", kind.name(), log.trim()));
        }
        let pid = child.id();
        // Let the banner probe's connection finish on the server's side.
        procs::settle(pid, Duration::from_secs(2));
        Ok(Self { kind, port, pid, child })
    }
}

/// Whether `unshare -m` with a bind mount works here (root, or CAP_SYS_ADMIN).
pub fn private_home_possible() -> bool {
    static POSSIBLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *POSSIBLE.get_or_init(|| {
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", "mount --bind / / 2>/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our child's own descendants first (connection processes), then the child itself.
        for pid in procs::tree(self.pid).into_iter().filter(|&p| p != self.pid) {
            let _ = Command::new("kill").arg(pid.to_string()).stderr(Stdio::null()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--serve-twine PORT AUTHORIZED_KEYS`: the library's server with its defaults and Unix
/// sessions, on 127.0.0.1:PORT, until killed.
pub fn serve_twine(port: u16, authorized_keys: &Path) -> Result<(), String> {
    let mut rng = OsRandom::new();
    let host_key =
        Arc::new(PrivateKey::generate(KeySpec::Ed25519, &mut rng).map_err(|e| e.to_string())?);
    let stack =
        ServerStackConfig::with_host_keys(vec![host_key], &mut rng).map_err(|e| e.to_string())?;
    let keys = AuthorizedKeys::for_current_user(authorized_keys)
        .map_err(|e| e.to_string())?
        .with_strict_modes(false);
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let sessions = UnixSessions::new(&reactor);
    let factory =
        ServerFactory::new(&reactor, ServerConfig::new(stack, Chain::new().with(keys), sessions));
    let _port =
        reactor.listen_tcp(([127, 0, 0, 1], port).into(), factory).map_err(|e| e.to_string())?;
    reactor.run().map_err(|e| e.to_string())
}

//! Runs of OpenSSH's `ssh` binary against a server: `exec true` sessions and checksummed bulk
//! transfers, with the client's CPU time from the shell's `times` (its reaped children).

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::procs;
use crate::servers::{Scratch, Server};

/// How long any one `ssh` may run (a bound; `timeout` kills it).
const SSH_LIMIT_SECS: &str = "600";

/// `ssh`'s options for a server: our key only, no config file, the benchmark's algorithms.
fn ssh_args(scratch: &Scratch, port: u16, cipher: Option<(&str, Option<&str>)>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-F",
        "/dev/null",
        "-T",
        "-x",
        "-a",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=INFO",
        "-o",
        "Compression=no",
        "-o",
        "KexAlgorithms=curve25519-sha256",
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
        "-o",
        "PubkeyAcceptedAlgorithms=ssh-ed25519",
        "-o",
        "ControlPath=none",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(["-i".to_owned(), scratch.p("id_ed25519"), "-p".to_owned(), port.to_string()]);
    if let Some((cipher, mac)) = cipher {
        args.extend(["-c".to_owned(), cipher.to_owned()]);
        if let Some(mac) = mac {
            args.extend(["-o".to_owned(), format!("MACs={mac}")]);
        }
    }
    let user =
        twine::conch::server::Account::current().map(|a| a.name).unwrap_or_else(|_| "root".into());
    args.push(format!("{user}@127.0.0.1"));
    args
}

/// `ssh` (or another program with `args`: `sh -c` for the pipeline without SSH) under `sh`,
/// which prints its children's CPU times (`times`) on standard error last.
fn timed_ssh(
    program: &str,
    args: &[String],
    command: &str,
    stdin: Stdio,
    stdout: Stdio,
) -> Result<Child, String> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("timeout {SSH_LIMIT_SECS} \"$@\"; s=$?; times >&2; exit $s"))
        .arg("sh")
        .arg(program)
        .args(args)
        .arg(command)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ssh: {e}"))
}

/// Waits for a timed `ssh`: its CPU seconds (user + system) or its error output.
fn finish(mut child: Child) -> Result<f64, String> {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let lines: Vec<&str> = stderr.lines().collect();
    let cpu =
        lines.last().map_or(0.0, |line| line.split_whitespace().map(parse_times).sum::<f64>());
    if status.success() {
        Ok(cpu)
    } else {
        let text = lines.get(..lines.len().saturating_sub(2)).unwrap_or_default().join(" ");
        Err(format!("ssh {status}: {}", text.trim()))
    }
}

/// `0m1.230000s` as seconds.
fn parse_times(field: &str) -> f64 {
    let field = field.trim_end_matches('s');
    let (minutes, seconds) = field.split_once('m').unwrap_or(("0", field));
    minutes.parse::<f64>().unwrap_or(0.0) * 60.0 + seconds.parse::<f64>().unwrap_or(0.0)
}

/// One `ssh … true` (or `program … true`, a client with ssh's command line): elapsed seconds
/// and client CPU seconds.
pub fn session(
    program: &str,
    scratch: &Scratch,
    port: u16,
    cipher: Option<(&str, Option<&str>)>,
) -> Result<(f64, f64), String> {
    let started = Instant::now();
    let child =
        timed_ssh(program, &ssh_args(scratch, port, cipher), "true", Stdio::null(), Stdio::null())?;
    let cpu = finish(child)?;
    Ok((started.elapsed().as_secs_f64(), cpu))
}

/// Sessions with the `ssh` binary, `in_flight` at once, until `count` or `limit`:
/// (successes, failures, elapsed, first error).
pub fn rate(
    scratch: &Scratch,
    port: u16,
    in_flight: usize,
    count: u64,
    limit: Duration,
) -> (u64, u64, Duration, Option<String>) {
    let started = Instant::now();
    let (claimed, done, failed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_error = Arc::new(std::sync::Mutex::new(None));
    std::thread::scope(|scope| {
        for _ in 0..in_flight {
            let (claimed, done, failed, first_error) = (&claimed, &done, &failed, &first_error);
            scope.spawn(move || {
                while started.elapsed() < limit && claimed.fetch_add(1, Ordering::Relaxed) < count {
                    match session("ssh", scratch, port, None) {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(error);
                            }
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            });
        }
    });
    let error = first_error.lock().ok().and_then(|mut slot| slot.take());
    (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), started.elapsed(), error)
}

/// Which way the bulk data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (`ssh host 'cat > fifo'` fed by the client's standard input).
    Up,
    /// Server to client (`ssh host 'cat fifo'`).
    Down,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// A Fletcher-style checksum over 64-bit words (position-dependent, cheap enough not to
/// limit the transfer), with the byte count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sum {
    a: u64,
    b: u64,
    bytes: u64,
    carry: Vec<u8>,
}

impl Sum {
    pub fn update(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        if !self.carry.is_empty() {
            let take = (8 - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() == 8 {
                let word = u64::from_le_bytes(self.carry[..].try_into().unwrap_or([0; 8]));
                self.word(word);
                self.carry.clear();
            }
        }
        let mut words = data.chunks_exact(8);
        for chunk in &mut words {
            self.word(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
        }
        self.carry.extend_from_slice(words.remainder());
    }

    fn word(&mut self, word: u64) {
        self.a = self.a.wrapping_add(word);
        self.b = self.b.wrapping_add(self.a);
    }

    pub fn text(&self) -> String {
        format!("{:016x}{:016x}/{}/{:?}", self.a, self.b, self.bytes, self.carry)
    }
}

/// The data: `repeats` copies of the scratch directory's `data` file.
pub struct Data {
    pub repeats: u32,
    pub bytes: u64,
    pub checksum: String,
}

fn source_script() -> &'static str {
    "i=0; while [ $i -lt \"$1\" ]; do cat \"$0\" || exit 1; i=$((i+1)); done"
}

impl Data {
    pub fn new(scratch: &Scratch, chunk: u64, repeats: u32) -> Result<Self, String> {
        let path = scratch.path("data");
        let random = Command::new("head")
            .arg("-c")
            .arg(chunk.to_string())
            .arg("/dev/urandom")
            .output()
            .map_err(|e| e.to_string())?;
        let mut sum = Sum::default();
        for _ in 0..repeats {
            sum.update(&random.stdout);
        }
        std::fs::write(&path, random.stdout).map_err(|e| e.to_string())?;
        Ok(Self { repeats, bytes: chunk * u64::from(repeats), checksum: sum.text() })
    }
}

/// What one bulk transfer measured: the time from the first byte to the end of the data at the
/// receiving end, and the CPU time of each side with one `ssh … true` session's subtracted.
#[derive(Clone, Copy, Debug)]
pub struct Bulk {
    pub seconds: f64,
    pub client_cpu: f64,
    pub server_cpu: f64,
}

/// Kills a helper process of ours by PID if it is still running, and reaps it.
fn reap(mut child: Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Reads `reader` to its end: the checksum and the seconds from the first byte to the end.
fn drain(mut reader: impl std::io::Read) -> (Sum, f64) {
    let mut buffer = vec![0; 1 << 18];
    let mut sum = Sum::default();
    let mut first = None;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                first.get_or_insert_with(Instant::now);
                sum.update(&buffer[..n]);
            }
        }
    }
    (sum, first.map_or(0.0, |first| first.elapsed().as_secs_f64()))
}

/// A checksummed bulk transfer through `program` (`ssh`, or `conch` with the same command line)
/// with `cipher` (and `mac`) against `server`.
pub fn bulk(
    program: &str,
    scratch: &Scratch,
    server: &Server,
    cipher: &str,
    mac: Option<&str>,
    direction: Direction,
    data: &Data,
) -> Result<Bulk, String> {
    let args = ssh_args(scratch, server.port, Some((cipher, mac)));
    // The fixed cost of a session with this cipher, to subtract from the CPU times.
    let cpu_before = procs::cpu_seconds(server.pid);
    let (_, base_client) = session(program, scratch, server.port, Some((cipher, mac)))?;
    procs::settle(server.pid, Duration::from_secs(5));
    let base_server = procs::cpu_seconds(server.pid) - cpu_before;

    let server_before = procs::cpu_seconds(server.pid);
    let (client_cpu, seconds) =
        transfer(scratch, direction, data, false, |command, stdin, stdout| {
            timed_ssh(program, &args, command, stdin, stdout)
        })?;
    procs::settle(server.pid, Duration::from_secs(5));
    let server_cpu = procs::cpu_seconds(server.pid) - server_before;
    Ok(Bulk {
        seconds,
        client_cpu: (client_cpu - base_client).max(0.0),
        server_cpu: (server_cpu - base_server).max(0.0),
    })
}

/// Moves `data` through `middle` in `direction`: `middle(command, stdin, stdout)` starts what
/// runs `command` (`cat > FIFO` up, `cat FIFO` down) with those streams, `ssh host command` or
/// the command itself, and ends in [`finish`]'s way. With `grow`, the pipes we make for it (from
/// the source up, to our reader down) hold 1 MiB, as `conch` and `conchd` make theirs. Its CPU
/// seconds (from `times`) and the seconds from the first byte to the end, once what arrived
/// matched `data`'s checksum.
fn transfer(
    scratch: &Scratch,
    direction: Direction,
    data: &Data,
    grow: bool,
    middle: impl Fn(&str, Stdio, Stdio) -> Result<Child, String>,
) -> Result<(f64, f64), String> {
    let grown = |pipe: &dyn std::os::fd::AsFd| {
        if grow {
            let size = nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20);
            let _ = nix::fcntl::fcntl(pipe.as_fd(), size);
        }
    };
    let fifo = scratch.path(&format!("{}.fifo", direction.name()));
    let _ = std::fs::remove_file(&fifo);
    crate::servers::run(Command::new("mkfifo").arg(&fifo))?;
    let data_path = scratch.path("data");
    let fifo_text = fifo.display().to_string();
    let (cpu, (sum, seconds)) = match direction {
        Direction::Up => {
            // The server's `cat` writes into the FIFO; we read it on a thread.
            let reader_fifo = fifo.clone();
            let reader = std::thread::spawn(move || match std::fs::File::open(reader_fifo) {
                Ok(file) => drain(file),
                Err(_) => (Sum::default(), 0.0),
            });
            let mut source = Command::new("sh")
                .arg("-c")
                .arg(source_script())
                .arg(&data_path)
                .arg(data.repeats.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            if let Some(pipe) = &source.stdout {
                grown(pipe);
            }
            let stdin = source.stdout.take().map_or(Stdio::null(), Stdio::from);
            let cpu = middle(&format!("cat > {fifo_text}"), stdin, Stdio::null()).and_then(finish);
            reap(source);
            if cpu.is_err() {
                // Nobody may have opened the FIFO's writing end: release the reader.
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            }
            let received = reader.join().unwrap_or_default();
            (cpu?, received)
        }
        Direction::Down => {
            let source = Command::new("sh")
                .arg("-c")
                .arg(format!("exec > \"$2\"; {}", source_script()))
                .arg(&data_path)
                .arg(data.repeats.to_string())
                .arg(&fifo)
                .spawn()
                .map_err(|e| e.to_string())?;
            let mut child = middle(&format!("cat {fifo_text}"), Stdio::null(), Stdio::piped())?;
            if let Some(pipe) = &child.stdout {
                grown(pipe);
            }
            let received = child.stdout.take().map(drain).unwrap_or_default();
            let cpu = finish(child);
            // On failure the source may still be waiting for a reader of the FIFO.
            reap(source);
            (cpu?, received)
        }
    };
    if sum.text() != data.checksum {
        return Err(format!("checksum mismatch: got {}, sent {}", sum.text(), data.checksum));
    }
    Ok((cpu, seconds))
}

/// The bulk pipeline without SSH: the same source, FIFO, `cat` and reader as [`bulk`], the
/// `cat` run by `sh` here, with 1 MiB pipes as our client and server use. What the machine moves
/// through those parts alone, which every SSH transfer runs too (and more): MB/s.
pub fn without_ssh(scratch: &Scratch, direction: Direction, data: &Data) -> Result<f64, String> {
    let shell = ["-c".to_owned()];
    let (_, seconds) = transfer(scratch, direction, data, true, |command, stdin, stdout| {
        timed_ssh("sh", &shell, command, stdin, stdout)
    })?;
    Ok(data.bytes as f64 / 1e6 / seconds.max(f64::MIN_POSITIVE))
}

//! Our SSH server against OpenSSH's sshd and Dropbear, measured in one run on this machine.
//!
//! `cargo bench --bench ssh` (about 5–10 minutes) or `cargo bench --bench ssh -- --quick`
//! (about 1–2 minutes); `--only rate,bulk,idle,crypto` picks sections. See benches/README.md.
//!
//! Each server is a private instance on a free loopback port with a throw-away configuration and
//! keys: Debian's `/usr/sbin/sshd -D -e -f`, `dropbear -F -E` and ours, which is `conchd` from the
//! same sshd_config when it serves, else the library's server inside this bench binary
//! (`twine-lib`: ServerFactory, ServerStackConfig defaults and Unix sessions). It prints one table
//! with the ratios ours/sshd and ours/dropbear and writes the raw figures to
//! `target/bench/ssh.json`. It asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

mod load;
mod openssh;
mod procs;
mod servers;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openssh::{Data, Direction};
use servers::{Kind, Scratch, Server};

/// One raw figure.
#[derive(Clone, Debug)]
struct Figure {
    section: &'static str,
    metric: String,
    server: String,
    value: f64,
    unit: &'static str,
    /// Whether more is better (sessions/s, MB/s) or less (CPU, memory).
    higher_is_better: bool,
}

/// The run's sizes.
struct Sizes {
    quick: bool,
    seq_sessions: u64,
    par_sessions: u64,
    ssh_sessions: u64,
    /// Rounds of the load client's rate cases (each figure is their median).
    rate_rounds: u32,
    rate_limit: Duration,
    bulk_chunk: u64,
    bulk_repeats: u32,
    idle: Vec<usize>,
    openssl_seconds: u32,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                seq_sessions: 40,
                par_sessions: 120,
                ssh_sessions: 24,
                rate_rounds: 1,
                rate_limit: Duration::from_secs(8),
                bulk_chunk: 64 << 20,
                bulk_repeats: 1,
                idle: vec![200],
                openssl_seconds: 1,
            }
        } else {
            Self {
                quick,
                seq_sessions: 300,
                par_sessions: 1000,
                ssh_sessions: 150,
                rate_rounds: 3,
                rate_limit: Duration::from_secs(30),
                bulk_chunk: 64 << 20,
                bulk_repeats: 16,
                // 10,000 is issue 8's "held" target: ours only (sshd and Dropbear fork a
                // process per connection).
                idle: vec![200, 2000, 10_000],
                openssl_seconds: 3,
            }
        }
    }
}

const CIPHERS: [(&str, Option<&str>); 3] = [
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-ctr", Some("hmac-sha2-256-etm@openssh.com")),
];

struct Run {
    sizes: Sizes,
    scratch: Scratch,
    user: String,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Run {
    fn add(
        &mut self,
        section: &'static str,
        metric: &str,
        server: &str,
        value: f64,
        unit: &'static str,
        higher: bool,
    ) {
        println!("    {metric:<44} {server:<10} {value:>12.2} {unit}");
        self.figures.push(Figure {
            section,
            metric: metric.to_owned(),
            server: server.to_owned(),
            value,
            unit,
            higher_is_better: higher,
        });
    }

    fn note(&mut self, text: String) {
        println!("    note: {text}");
        self.notes.push(text);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--serve-twine") {
        let port = args.get(position + 1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let keys = PathBuf::from(args.get(position + 2).cloned().unwrap_or_default());
        if let Err(error) = servers::serve_twine(port, &keys) {
            eprintln!("serve-twine: {error}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(position) = args.iter().position(|a| a == "--hold-idle") {
        let get = |i: usize| args.get(position + i).cloned().unwrap_or_default();
        let result = load::hold_idle(
            get(1).parse().unwrap_or(0),
            get(2).parse().unwrap_or(0),
            get(3).parse().unwrap_or(1),
            &get(4),
            &PathBuf::from(get(5)),
        );
        if let Err(error) = result {
            eprintln!("hold-idle: {error}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(position) = args.iter().position(|a| a == "--load") {
        // `--load PORT USER KEY IN_FLIGHT COUNT`: the rate section's load client alone, against
        // a server started by hand (for profiling it: benches/README.md).
        let get = |i: usize| args.get(position + i).cloned().unwrap_or_default();
        let config = match load::config(&get(2), &PathBuf::from(get(3))) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("load: {error}");
                std::process::exit(1);
            }
        };
        let rate = load::rate(
            get(1).parse().unwrap_or(0),
            &config,
            get(4).parse().unwrap_or(1),
            get(5).parse().unwrap_or(100),
            Duration::from_secs(120),
        );
        println!(
            "{} sessions, {} failed, {:.1} sessions/s",
            rate.sessions,
            rate.failures,
            rate.sessions as f64 / rate.elapsed.as_secs_f64().max(1e-9)
        );
        std::process::exit(i32::from(rate.failures > 0));
    }
    // `cargo test --all-targets` runs this binary without `--bench`: nothing to do there.
    if !args.iter().any(|a| a == "--bench") {
        println!("benches/ssh: run with `cargo bench --bench ssh [-- --quick]`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|p| args.get(p + 1))
        .map(|list| list.split(',').map(str::to_owned).collect());
    let wants = |section: &str| only.as_ref().is_none_or(|list| list.iter().any(|s| s == section));
    let started = Instant::now();
    let scratch = match Scratch::new() {
        Ok(scratch) => scratch,
        Err(error) => {
            eprintln!("benches/ssh: cannot set up: {error}");
            std::process::exit(1);
        }
    };
    let user =
        twine::conch::server::Account::current().map(|a| a.name).unwrap_or_else(|_| "root".into());
    let mut run =
        Run { sizes: Sizes::new(quick), scratch, user, figures: Vec::new(), notes: Vec::new() };
    run.note(format!(
        "machine: {} cores, load average {}; timings are noisy when the machine is shared, ratios come from the same run",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    ));

    if !servers::private_home_possible() {
        run.note("no private mount namespace (not root?): servers run with the real home, so sessions read its shell startup files and Dropbear its authorized_keys".into());
    }
    // The servers: ours first (conchd if it serves, else the library's server).
    let mut servers = Vec::new();
    let conchd = option_env!("CARGO_BIN_EXE_conchd");
    match Server::start(Kind::Conchd, &run.scratch, conchd) {
        Ok(server) => {
            // As root conchd separates privileges unless told not to, as sshd does.
            let root = nix::unistd::Uid::effective().is_root();
            let off = std::env::var("CONCHD_PRIVSEP").is_ok_and(|v| v == "no");
            run.note(format!(
                "conchd privilege separation: {} (CONCHD_PRIVSEP=no turns it off as root)",
                if root && !off { "on (a monitor and one worker per core)" } else { "off" }
            ));
            servers.push(server);
        }
        Err(error) => {
            run.note(format!("conchd does not serve yet ({error}); ours = twine-lib, the library's server in this bench binary"));
            match Server::start(Kind::TwineLib, &run.scratch, None) {
                Ok(server) => servers.push(server),
                Err(error) => run.note(format!("twine-lib: {error}")),
            }
        }
    }
    for kind in [Kind::Sshd, Kind::Dropbear] {
        match Server::start(kind, &run.scratch, None) {
            Ok(server) => servers.push(server),
            Err(error) => run.note(format!("{}: not measured: {error}", kind.name())),
        }
    }
    let ours = servers.first().map(|s| s.kind.name()).unwrap_or("none").to_owned();

    if wants("crypto") {
        crypto(&mut run);
    }
    if wants("rate") {
        rate(&mut run, &servers);
    }
    if wants("bulk") {
        bulk(&mut run, &servers);
    }
    if wants("idle") {
        idle(&mut run, &servers);
    }
    drop(servers);
    table(&run, &ours);
    let path = write_json(&run, &ours, started.elapsed());
    println!("raw figures: {}  ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
}

/// The single-core crypto ceiling: `openssl speed -evp` with 16 KiB blocks.
fn crypto(run: &mut Run) {
    println!("crypto ceiling (openssl speed -evp, one core, 16 KiB blocks)");
    for (name, metric) in [
        ("aes-128-gcm", "openssl aes-128-gcm"),
        ("chacha20-poly1305", "openssl chacha20-poly1305"),
        ("aes-128-ctr", "openssl aes-128-ctr"),
    ] {
        let out = Command::new("openssl")
            .args([
                "speed",
                "-seconds",
                &run.sizes.openssl_seconds.to_string(),
                "-bytes",
                "16384",
                "-evp",
                name,
            ])
            .stderr(Stdio::null())
            .output();
        let value = out.ok().and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let last =
                text.lines().last()?.split_whitespace().last()?.trim_end_matches('k').to_owned();
            last.parse::<f64>().ok()
        });
        match value {
            Some(kilobytes) => {
                run.add("crypto", metric, "openssl", kilobytes / 1000.0, "MB/s", true)
            }
            None => run.note(format!("openssl speed -evp {name}: no figure")),
        }
    }
}

/// Connection rate: sessions/s and server CPU ms per session. The load client's cases run
/// `rate_rounds` times, the servers taking turns within each round, and each figure is the
/// median of its rounds (a note gives every round's CPU): a server's cost per session moves with
/// the host between minutes, so the rounds keep the comparison to like conditions. The `ssh`
/// binary's cases run once.
fn rate(run: &mut Run, servers: &[Server]) {
    println!("connection rate: curve25519-sha256 + ed25519 publickey + exec true + close");
    let limit = run.sizes.rate_limit;
    let config = match load::config(&run.user, &run.scratch.path("id_ed25519")) {
        Ok(config) => config,
        Err(error) => return run.note(format!("load client: {error}")),
    };
    let command_ms = session_command(run);
    let cases = [
        ("load client, sequential", false, false),
        ("load client, 8 in flight", true, false),
        ("ssh binary, sequential", false, true),
        ("ssh binary, 8 in flight", true, true),
    ];
    // Per server and case: each round's (sessions/s, server CPU ms per session).
    let mut samples = vec![vec![Vec::new(); cases.len()]; servers.len()];
    for round in 0..run.sizes.rate_rounds {
        for (which, server) in servers.iter().enumerate() {
            let name = server.kind.name();
            for (case, &(label, parallel, binary)) in cases.iter().enumerate() {
                if binary && round > 0 {
                    continue;
                }
                // Dropbear drops unauthenticated connections past 5 per source address
                // (MAX_UNAUTH_PER_IP).
                let in_flight = match (parallel, server.kind) {
                    (false, _) => 1,
                    (true, Kind::Dropbear) => 4,
                    (true, _) => 8,
                };
                let count = match (parallel, binary) {
                    (false, false) => run.sizes.seq_sessions,
                    (true, false) => run.sizes.par_sessions,
                    (false, true) => run.sizes.ssh_sessions,
                    (true, true) => run.sizes.ssh_sessions * 2,
                };
                let before = procs::cpu_seconds(server.pid);
                let (sessions, failures, elapsed) = if binary {
                    let (done, failed, elapsed, error) =
                        openssh::rate(&run.scratch, server.port, in_flight, count, limit);
                    if let Some(error) = error {
                        eprintln!("    (ssh: {failed} failures; first: {error})");
                    }
                    (done, failed, elapsed)
                } else {
                    let rate = load::rate(server.port, &config, in_flight, count, limit);
                    (rate.sessions, rate.failures, rate.elapsed)
                };
                procs::settle(server.pid, Duration::from_secs(10));
                let cpu = procs::cpu_seconds(server.pid) - before;
                if failures > 0 {
                    run.note(format!("{name}, {label}: {failures} failed sessions"));
                }
                if in_flight == 4 && round == 0 {
                    run.note(format!(
                        "{name}, {label}: {in_flight} in flight (dropbear's per-address limit)"
                    ));
                }
                if sessions == 0 {
                    continue;
                }
                let figure =
                    (sessions as f64 / elapsed.as_secs_f64(), cpu * 1000.0 / sessions as f64);
                println!(
                    "    round {}: {label:<26} {name:<10} {:>9.2} sessions/s {:>8.2} ms CPU/session",
                    round + 1,
                    figure.0,
                    figure.1
                );
                samples[which][case].push(figure);
            }
        }
    }
    for (which, server) in servers.iter().enumerate() {
        let name = server.kind.name();
        for (case, &(label, _, binary)) in cases.iter().enumerate() {
            let rounds = &samples[which][case];
            let (Some(per_second), Some(cpu)) = (
                median(rounds.iter().map(|r| r.0).collect()),
                median(rounds.iter().map(|r| r.1).collect()),
            ) else {
                continue;
            };
            if rounds.len() > 1 {
                let each: Vec<String> = rounds.iter().map(|r| format!("{:.2}", r.1)).collect();
                run.note(format!(
                    "{name}, {label}: server CPU ms/session in each round: {}",
                    each.join(", ")
                ));
            }
            run.add("rate", &format!("{label}: sessions/s"), name, per_second, "1/s", true);
            run.add("rate", &format!("{label}: server CPU ms/session"), name, cpu, "ms", false);
            if let (Some(command_ms), false) = (command_ms, binary) {
                run.add(
                    "rate",
                    &format!("{label}: server CPU ms/session less the command"),
                    name,
                    cpu - command_ms,
                    "ms",
                    false,
                );
            }
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2.0),
    }
}

/// The session's own command run alone: the user's shell with `-c true`, as the user, with a
/// session's environment (`SSH_CLIENT` makes Debian's bash read the startup files it reads
/// under any SSH server) and the servers' scratch home, but no server around it. Every server's
/// CPU per session includes it and none can make it cheaper; CPU ms per run (the children's
/// user and system time), in the same run as the servers' figures.
fn session_command(run: &mut Run) -> Option<f64> {
    let account = match twine::conch::server::Account::current() {
        Ok(account) => account,
        Err(error) => {
            run.note(format!("the session's command alone: not measured ({error})"));
            return None;
        }
    };
    let children = || {
        let usage =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok()?;
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        Some(seconds(usage.user_time()) + seconds(usage.system_time()))
    };
    let home = run.scratch.path("home");
    let runs = run.sizes.seq_sessions;
    let before = children()?;
    for _ in 0..runs {
        let status = Command::new(&account.shell)
            .args(["-c", "true"])
            .env_clear()
            .env("USER", &account.name)
            .env("LOGNAME", &account.name)
            .env("HOME", &home)
            .env("SHELL", &account.shell)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/games")
            .env("SSH_CLIENT", "127.0.0.1 40000 22")
            .env("SSH_CONNECTION", "127.0.0.1 40000 127.0.0.1 22")
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            run.note(format!(
                "the session's command alone: {} -c true failed",
                account.shell.display()
            ));
            return None;
        }
    }
    let ms = (children()? - before) * 1000.0 / runs as f64;
    println!(
        "    the session's command alone ({} -c true, {runs} runs): {ms:.2} ms CPU each",
        account.shell.display()
    );
    run.add("rate", "the session's command alone: CPU ms/run", "local", ms, "ms", false);
    Some(ms)
}

/// Bulk throughput with OpenSSH's ssh as the client, and our `conch` when it connects.
/// The bulk metric of the pipeline with no SSH in it.
const WITHOUT_SSH: &str = "pipeline without SSH";

fn bulk(run: &mut Run, servers: &[Server]) {
    let data = match Data::new(&run.scratch, run.sizes.bulk_chunk, run.sizes.bulk_repeats) {
        Ok(data) => data,
        Err(error) => return run.note(format!("bulk data: {error}")),
    };
    let mib = data.bytes >> 20;
    let mut clients = vec![("ssh", "ssh")];
    if let (Some(conch), Some(ours)) = (option_env!("CARGO_BIN_EXE_conch"), servers.first()) {
        match openssh::session(conch, &run.scratch, ours.port, None) {
            Ok(_) => clients.push(("conch", conch)),
            Err(error) => run.note(format!("conch: not measured as a client: {error}")),
        }
    }
    let names: Vec<&str> = clients.iter().map(|c| c.0).collect();
    println!("bulk throughput: {mib} MiB through {}, checksummed", names.join(" and "));
    // The same pipeline with a local `cat` in place of the SSH pair: no pair can beat it.
    for direction in [Direction::Up, Direction::Down] {
        let way = direction.name();
        match openssh::without_ssh(&run.scratch, direction, &data) {
            Ok(mbs) => {
                run.add("bulk", &format!("{WITHOUT_SSH} {way}: MB/s"), "local", mbs, "MB/s", true)
            }
            Err(error) => run.note(format!("{WITHOUT_SSH} {way}: {error}")),
        }
    }
    for (client, program) in clients {
        for (cipher, mac) in CIPHERS {
            let short = cipher.split('@').next().unwrap_or(cipher);
            for direction in [Direction::Up, Direction::Down] {
                for server in servers {
                    let name = server.kind.name();
                    let way = direction.name();
                    match openssh::bulk(
                        program,
                        &run.scratch,
                        server,
                        cipher,
                        mac,
                        direction,
                        &data,
                    ) {
                        Ok(bulk) => {
                            let gib = data.bytes as f64 / f64::from(1u32 << 30);
                            let mbs = data.bytes as f64 / 1e6 / bulk.seconds;
                            run.add(
                                "bulk",
                                &format!("{client} {short} {way}: MB/s"),
                                name,
                                mbs,
                                "MB/s",
                                true,
                            );
                            let cpu = bulk.server_cpu / gib;
                            run.add(
                                "bulk",
                                &format!("{client} {short} {way}: server CPU s/GiB"),
                                name,
                                cpu,
                                "s",
                                false,
                            );
                            let cpu = bulk.client_cpu / gib;
                            run.add(
                                "bulk",
                                &format!("{client} {short} {way}: client CPU s/GiB"),
                                name,
                                cpu,
                                "s",
                                false,
                            );
                        }
                        Err(error) => {
                            run.note(format!("{client} -> {name} {short} {way}: {error}"))
                        }
                    }
                }
            }
        }
    }
}

/// Memory per idle authenticated connection.
fn idle(run: &mut Run, servers: &[Server]) {
    println!("idle sessions: server PSS (all server processes) per authenticated idle connection");
    let available_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    let conchd = option_env!("CARGO_BIN_EXE_conchd");
    for n in run.sizes.idle.clone() {
        for kind in servers.iter().map(|s| s.kind) {
            let name = kind.name();
            // A fresh instance, so that memory freed by earlier sections does not absorb the
            // connections' growth.
            let server = match Server::start(kind, &run.scratch, conchd) {
                Ok(server) => server,
                Err(error) => {
                    run.note(format!("{name} idle N={n}: {error}"));
                    continue;
                }
            };
            let ours = matches!(kind, Kind::Conchd | Kind::TwineLib);
            if n > 2000 && !ours {
                run.note(format!("{name} idle N={n}: skipped, one process per connection"));
                continue;
            }
            // sshd holds about 2 MB per connection, ours far less: do not take more than a
            // quarter of the memory.
            let estimate_kib = if ours { 256 } else { 2048 };
            if n as u64 * estimate_kib > available_kib / 4 {
                run.note(format!("{name} idle N={n}: skipped, too little memory available"));
                continue;
            }
            match hold(run, &server, n) {
                Ok((held, per_connection, processes)) => {
                    if held < n {
                        run.note(format!("{name} idle N={n}: only {held} connections held"));
                    }
                    run.add(
                        "idle",
                        &format!("idle N={n}: KiB PSS per connection"),
                        name,
                        per_connection / 1024.0,
                        "KiB",
                        false,
                    );
                    run.add(
                        "idle",
                        &format!("idle N={n}: connections held"),
                        name,
                        held as f64,
                        "",
                        true,
                    );
                    run.add(
                        "idle",
                        &format!("idle N={n}: server processes"),
                        name,
                        processes as f64,
                        "",
                        false,
                    );
                }
                Err(error) => run.note(format!("{name} idle N={n}: {error}")),
            }
        }
    }
}

/// Holds `n` idle connections to `server` from a child process: (held, PSS bytes per connection,
/// server processes).
fn hold(run: &Run, server: &Server, n: usize) -> Result<(usize, f64, usize), String> {
    procs::settle(server.pid, Duration::from_secs(10));
    let (base, _) = procs::pss_bytes(server.pid);
    let in_flight = if server.kind == Kind::Dropbear { 4 } else { 8 };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("--hold-idle")
        .args([server.port.to_string(), n.to_string(), in_flight.to_string(), run.user.clone()])
        .arg(run.scratch.path("id_ed25519"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let held: usize = line.trim().strip_prefix("ready ").and_then(|n| n.parse().ok()).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));
    let (total, processes) = procs::pss_bytes(server.pid);
    // Closing its standard input lets the holder disconnect and exit.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    let _ = child.wait();
    procs::settle(server.pid, Duration::from_secs(30));
    if held == 0 {
        return Err("no connection held".into());
    }
    Ok((held, total.saturating_sub(base) as f64 / held as f64, processes))
}

/// The table: per metric, each server's figure and ours / each other.
fn table(run: &Run, ours: &str) {
    println!();
    println!(
        "{:<52} {:>11} {:>11} {:>11} {:>10} {:>10}",
        "metric (ours = ".to_owned() + ours + ")",
        "ours",
        "sshd",
        "dropbear",
        "ours/sshd",
        "ours/drpbr"
    );
    let mut metrics: Vec<&str> = Vec::new();
    for figure in &run.figures {
        if !metrics.contains(&figure.metric.as_str()) {
            metrics.push(&figure.metric);
        }
    }
    let find = |metric: &str, server: &str| {
        run.figures.iter().find(|f| f.metric == metric && f.server == server).map(|f| f.value)
    };
    let cell = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a / b < 0.1 => format!("{:.4}", a / b),
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    };
    for metric in metrics {
        if metric.starts_with("openssl") {
            println!("{metric:<52} {:>11}  (MB/s, one core)", cell(find(metric, "openssl")));
            continue;
        }
        if metric.starts_with("the session's command alone") {
            let value = cell(find(metric, "local"));
            println!("{metric:<52} {value:>11}  (no server: what every server's figure includes)");
            continue;
        }
        if metric.starts_with(WITHOUT_SSH) {
            let value = cell(find(metric, "local"));
            println!("{metric:<52} {value:>11}  (MB/s: source, FIFO, cat and reader alone)");
            continue;
        }
        let (mine, sshd, dropbear) =
            (find(metric, ours), find(metric, "sshd"), find(metric, "dropbear"));
        let better =
            run.figures.iter().find(|f| f.metric == metric).is_some_and(|f| f.higher_is_better);
        let arrow = if better { "↑" } else { "↓" };
        println!(
            "{:<52} {:>11} {:>11} {:>11} {:>10} {:>10}",
            format!("{metric} {arrow}"),
            cell(mine),
            cell(sshd),
            cell(dropbear),
            ratio(mine, sshd),
            ratio(mine, dropbear)
        );
    }
    println!("(↑ more is better, ↓ less is better; ratios are ours / theirs)");
    // Our client and server together against OpenSSH's pair, and against the crypto ceiling.
    let pairs: Vec<&Figure> = run
        .figures
        .iter()
        .filter(|f| f.metric.starts_with("conch ") && f.unit == "MB/s" && f.server == ours)
        .collect();
    if !pairs.is_empty() {
        println!();
        println!(
            "{:<52} {:>11} {:>11} {:>10} {:>10} {:>10}",
            "both ends", "conch-ours", "ssh-sshd", "ratio", "/ceiling", "/no-ssh"
        );
        for figure in pairs {
            let openssh = find(&figure.metric.replacen("conch ", "ssh ", 1), "sshd");
            let ceiling = [
                ("aes128-gcm", "openssl aes-128-gcm"),
                ("chacha20-poly1305", "openssl chacha20-poly1305"),
                ("aes128-ctr", "openssl aes-128-ctr"),
            ]
            .iter()
            .find(|(cipher, _)| figure.metric.contains(cipher))
            .and_then(|(_, openssl)| find(openssl, "openssl"));
            let way = if figure.metric.contains(" up:") { "up" } else { "down" };
            let alone = find(&format!("{WITHOUT_SSH} {way}: MB/s"), "local");
            println!(
                "{:<52} {:>11} {:>11} {:>10} {:>10} {:>10}",
                figure.metric,
                cell(Some(figure.value)),
                cell(openssh),
                ratio(Some(figure.value), openssh),
                ratio(Some(figure.value), ceiling),
                ratio(Some(figure.value), alone)
            );
        }
    }
    for note in &run.notes {
        println!("note: {note}");
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `target/bench/ssh.json` (under CARGO_TARGET_DIR when set).
fn write_json(run: &Run, ours: &str, elapsed: Duration) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("ssh.json");
    let figures: Vec<String> = run
        .figures
        .iter()
        .map(|f| {
            format!(
                "    {{\"section\": {}, \"metric\": {}, \"server\": {}, \"value\": {}, \"unit\": {}, \"higher_is_better\": {}}}",
                json_string(f.section),
                json_string(&f.metric),
                json_string(&f.server),
                if f.value.is_finite() { format!("{:.6}", f.value) } else { "null".to_owned() },
                json_string(f.unit),
                f.higher_is_better
            )
        })
        .collect();
    let notes: Vec<String> = run.notes.iter().map(|n| format!("    {}", json_string(n))).collect();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = format!(
        "{{\n  \"ours\": {},\n  \"quick\": {},\n  \"unix_time\": {unix},\n  \"elapsed_s\": {:.1},\n  \"bulk_bytes\": {},\n  \"figures\": [\n{}\n  ],\n  \"notes\": [\n{}\n  ]\n}}\n",
        json_string(ours),
        run.sizes.quick,
        elapsed.as_secs_f64(),
        run.sizes.bulk_chunk * u64::from(run.sizes.bulk_repeats),
        figures.join(",\n"),
        notes.join(",\n"),
    );
    let _ = std::fs::write(&path, text);
    path
}

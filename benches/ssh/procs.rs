//! Reading a server's process tree from /proc: CPU time (including reaped children) and PSS.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/<pid>/stat after the command name: (ppid, utime+stime+cutime+cstime).
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let ppid = fields.get(1)?.parse().ok()?;
    let mut ticks = 0;
    for index in 11..=14 {
        ticks += fields.get(index)?.parse::<u64>().ok()?;
    }
    Some((ppid, ticks))
}

/// `root` and all its live descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, _)) = stat(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let (mut all, mut next) = (Vec::new(), vec![root]);
    while let Some(pid) = next.pop() {
        all.push(pid);
        if let Some(kids) = children.get(&pid) {
            next.extend(kids);
        }
        if all.len() > 100_000 {
            break;
        }
    }
    all
}

/// CPU seconds used so far by `root`'s tree: every live process's own and reaped children's
/// user and system time (a child's time moves into its parent's when the parent reaps it).
pub fn cpu_seconds(root: u32) -> f64 {
    let ticks: u64 = tree(root).into_iter().filter_map(stat).map(|(_, ticks)| ticks).sum();
    ticks as f64 / ticks_per_second()
}

/// Waits (at most `limit`) until `root` has no descendants left, so their CPU time has been
/// reaped into it; true if it got there.
pub fn settle(root: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if tree(root).len() <= 1 {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Proportional set size in bytes, summed over `root`'s tree, and the number of processes.
pub fn pss_bytes(root: u32) -> (u64, usize) {
    let pids = tree(root);
    let mut total = 0;
    for pid in &pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("Pss:") {
                let kib: u64 = value.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                total += kib * 1024;
            }
        }
    }
    (total, pids.len())
}

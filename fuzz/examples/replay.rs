//! Runs fuzz targets without libFuzzer: over files (a corpus folder or a crash), and optionally
//! over random mutations of them for a bounded number of executions. Exits non-zero on a panic.
//!
//! ```text
//! replay TARGET PATH...            run each file (or each file in each folder)
//! replay TARGET --mutate N PATH... also run N seeded mutations of them
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> =
            std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for e in entries {
            files(&e, out);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// xorshift64: the mutations are reproducible from the run's arguments.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn mutate(input: &[u8], state: &mut u64) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + next(state) % 4 {
        let r = next(state);
        let at = if out.is_empty() { 0 } else { (r >> 8) as usize % out.len() };
        match r % 5 {
            0 if !out.is_empty() => out[at] ^= 1 << ((r >> 40) % 8),
            1 if !out.is_empty() => out[at] = (r >> 32) as u8,
            2 => out.insert(at, (r >> 32) as u8),
            3 if !out.is_empty() => {
                out.remove(at);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!("usage: replay TARGET [--mutate N] PATH...");
        return ExitCode::from(2);
    };
    let Some(&(_, target)) = twine_fuzz::TARGETS.iter().find(|(n, _)| n == name) else {
        eprintln!("replay: no target {name}");
        return ExitCode::from(2);
    };
    let mut rest = &args[1..];
    let mut mutations = 0u64;
    if rest.first().map(String::as_str) == Some("--mutate") {
        mutations = rest.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        rest = rest.get(2..).unwrap_or_default();
    }
    let mut paths = Vec::new();
    for p in rest {
        files(Path::new(p), &mut paths);
    }
    let inputs: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (path, input) in paths.iter().zip(&inputs) {
        eprintln!("replay {name}: {}", path.display());
        twine_fuzz::run(target, input);
    }
    let mut state = 0x2545_f491_4f6c_dd1d;
    for i in 0..mutations {
        let base = inputs.get(i as usize % inputs.len().max(1)).cloned().unwrap_or_default();
        twine_fuzz::run(target, &mutate(&base, &mut state));
    }
    println!("replay {name}: {} files, {mutations} mutations, no panic", inputs.len());
    ExitCode::SUCCESS
}

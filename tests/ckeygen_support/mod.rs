//! Helpers shared by the `ckeygen` tests: temporary directories and running `ckeygen` and the
//! real OpenSSH tools side by side.
#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "../tempdir/mod.rs"]
mod tempdir;
pub(crate) use tempdir::TempDir;

/// `path.pub`.
pub(crate) fn pub_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", path.display()))
}

/// Runs a program with `args` and `stdin`, returning its output whatever the exit status.
pub(crate) fn run(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("SSH_ASKPASS")
        .env_remove("DISPLAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): install openssh-client"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a program that must succeed, returning its standard output.
pub(crate) fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args, "");
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `ckeygen` binary under test.
pub(crate) fn ckeygen() -> &'static str {
    env!("CARGO_BIN_EXE_ckeygen")
}

#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (unit, reactor, back-to-back SSH,
# end-to-end and OpenSSH interop), then OpenSSH's own regress scripts against our binaries.
# This is the README's test command; .ci/run calls it after installing the system packages the
# interop tests need (see .ci/run for the list).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test"
cargo test --workspace --all-targets --all-features
cargo test --workspace --doc --all-features

step "OpenSSH regress: keygen scripts against ckeygen"
bash tests/regress/keygen.sh target/debug/ckeygen

step "OpenSSH regress: sshd scripts against conchd"
# The default build (no `pam` feature), as `cargo run --bin conchd` makes it: with PAM built in,
# the suite's `UsePAM yes` would open PAM sessions on a PAM thread, where pam_loginuid cannot set
# the login uid (see the conchd notes); the PAM backend has its own tests above.
cargo build --bin conchd --bin conch
bash tests/regress/sshd.sh "$PWD/target/debug/conchd"

step "OpenSSH regress: ssh scripts against conch"
bash tests/regress/ssh.sh "$PWD/target/debug/conch"

step "Fuzz smoke: every fuzz target for a few seconds"
bash tests/fuzz-smoke.sh

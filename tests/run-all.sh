#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (unit, reactor, back-to-back SSH,
# end-to-end and OpenSSH interop), then OpenSSH's own regress scripts against our binaries.
# This is the README's test command; .ci/run calls it after installing the system packages the
# interop tests need (see .ci/run for the list).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n== %s (at %ds)\n' "$*" "$((SECONDS - started))"; }
# Every step is bounded, so a hung test fails the run with its name instead of using up CI's
# whole time budget: `bounded MINUTES command...`.
bounded() {
    local minutes=$1
    shift
    timeout --kill-after=30 "${minutes}m" "$@" || {
        local code=$?
        [ "$code" -eq 124 ] && echo "run-all: '$*' ran over ${minutes} minutes" >&2
        return "$code"
    }
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
bounded 30 cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test"
bounded 45 cargo test --workspace --all-targets --all-features
bounded 15 cargo test --workspace --doc --all-features

step "cargo doc (no broken links)"
RUSTDOCFLAGS="-D warnings" bounded 15 cargo doc --workspace --no-deps --all-features

step "OpenSSH regress: keygen scripts against ckeygen"
bounded 10 bash tests/regress/keygen.sh target/debug/ckeygen

step "OpenSSH regress: sshd scripts against conchd"
# Built with PAM: the suite's sshd_config says `UsePAM yes`, so (as root) every session opens the
# system's sshd PAM session (pam_loginuid included) in conchd's per-session keeper process.
cargo build --features pam --bin conchd --bin conch
bounded 40 bash tests/regress/sshd.sh "$PWD/target/debug/conchd"

step "OpenSSH regress: ssh scripts against conch"
bounded 25 bash tests/regress/ssh.sh "$PWD/target/debug/conch"

step "Fuzz smoke: every fuzz target for a few seconds"
bounded 25 bash tests/fuzz-smoke.sh
step "all passed"

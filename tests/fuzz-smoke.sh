#!/usr/bin/env bash
# Fuzz smoke run: every target of fuzz/ for a short bounded time on the stable toolchain, then
# a replay of the seed corpus and of the regression inputs. Exits non-zero on any finding (a
# crash, panic, timeout, out-of-memory or leak report) and leaves it under fuzz/artifacts/.
#
#   bash tests/fuzz-smoke.sh              # about 9 s per target (15 targets, under 3 minutes)
#   FUZZ_SECONDS=40 bash tests/fuzz-smoke.sh   # a longer run (10 minutes)
#
# cargo-fuzz runs libFuzzer with `-s none` (no sanitizer: -Zsanitizer needs nightly); panics,
# overflow checks and debug assertions are on in the fuzz profile, and libFuzzer's own
# -rss_limit_mb/-malloc_limit_mb/-timeout bound memory and time per input. Without cargo-fuzz
# (it is installed from crates.io if missing), or where libFuzzer will not link, the script
# falls back to fuzz/examples/replay.rs: the same targets over the corpus plus seeded random
# mutations, for the same time budget.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-9}"
targets=(packet_decode identification kexinit kex_init kex_reply userauth connection
    server_session client_session private_key public_key authorized_keys known_hosts
    sshd_config ssh_config)
# The whole-session targets run a real key exchange per input, the key exchange targets the
# finite-field DH groups (8192-bit) and the private key target bcrypt-pbkdf with the rounds the
# file names: their inputs get a longer timeout than the 1 s default.
declare -A timeout=([userauth]=5 [connection]=5 [server_session]=5 [client_session]=5
    [kex_init]=10 [kex_reply]=10 [private_key]=10)

have_cargo_fuzz() { cargo fuzz --version >/dev/null 2>&1; }
if ! have_cargo_fuzz; then
    cargo install cargo-fuzz --locked >/dev/null 2>&1 || true
fi

status=0
if have_cargo_fuzz && cargo fuzz build -s none >/dev/null 2>fuzz-build.err; then
    mode=libfuzzer
else
    mode=replay
    cargo build --release --example replay
fi
rm -f fuzz-build.err
echo "fuzz-smoke: $mode, ${seconds}s per target"

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    work="$(mktemp -d)"
    cp -r "corpus/$t/." "$work/" 2>/dev/null || true
    if [ "$mode" = libfuzzer ]; then
        bin="target/x86_64-unknown-linux-gnu/release/$t"
        if ! "$bin" "$work" -max_total_time="$seconds" -timeout="${timeout[$t]:-1}" \
            -rss_limit_mb=512 -malloc_limit_mb=64 -print_final_stats=1 \
            -artifact_prefix="artifacts/$t/" >"$work.log" 2>&1; then
            echo "fuzz-smoke: FINDING in $t (see fuzz/artifacts/$t/)"
            tail -40 "$work.log"
            status=1
        fi
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$' || echo '?')
        cov=$(grep -o 'cov: [0-9]*' "$work.log" | tail -1 | grep -o '[0-9]*' || echo '?')
        echo "fuzz-smoke: $t: $runs executions, $cov coverage points"
    else
        if ! timeout "$((seconds + 30))" target/release/examples/replay "$t" --mutate 2000 "$work" \
            >"$work.log" 2>&1; then
            echo "fuzz-smoke: FINDING in $t"
            tail -40 "$work.log"
            status=1
        fi
        tail -1 "$work.log"
    fi
    rm -rf "$work" "$work.log"
done

# The inputs of past findings, replayed: each must pass.
if [ -d regressions ]; then
    cargo build --release --example replay >/dev/null 2>&1
    for t in "${targets[@]}"; do
        if [ -d "regressions/$t" ]; then
            target/release/examples/replay "$t" "regressions/$t" >/dev/null 2>&1 || {
                echo "fuzz-smoke: regression input of $t fails"
                status=1
            }
        fi
    done
fi
[ "$status" -eq 0 ] && echo "fuzz-smoke: no findings"
exit "$status"

#!/usr/bin/env bash
# Runs OpenSSH's regress suite (Debian's openssh-tests) against our client, conch, with Debian's
# sshd, ssh-keygen and ssh-keyscan as the other end, one `make` per test. The suite's loops over
# algorithms and key types ask the client under test (`conch -Q ...`); its answers are narrowed
# to what Debian's sshd 9.2 knows (it refuses a config naming, say, mlkem768x25519-sha256), and
# the closing note names what that leaves out.
# Prints "N passed, N failed" and the failures; exits non-zero if a required test failed.
# The work is done by the shared runner, tests/regress/openssh.sh.
#
# Usage: tests/regress/ssh.sh [path/to/ssh]   (default: target/debug/conch, built first)
#   `tests/regress/ssh.sh /usr/bin/ssh` runs the same tests with Debian's ssh (the control).
# SSH_TESTS overrides the list of required tests; SSH_OPTIONAL_TESTS adds tests that are run and
# reported but do not fail the run.
set -u
cd "$(dirname "$0")/../.."
CLIENT=${1:-}
if [ -z "$CLIENT" ]; then
    cargo build --quiet --bin conch || exit 1
    CLIENT=$PWD/target/debug/conch
fi

REQUIRED="connect proxy-connect exit-status stderr-data stderr-after-eof transfer yes-head
    envpass banner portnum forwarding dynamic-forward try-ciphers kextype"

# What the peer knows: Debian's ssh and sshd are one build, so its ssh's -Q lists are the sshd's.
PEER=(--no-sk)
for kind in cipher mac kex key-plain; do
    PEER+=(--allow "$kind=$(/usr/bin/ssh -Q "$kind" | paste -sd, -)")
done

# shellcheck disable=SC2086
exec bash tests/regress/openssh.sh --label ssh --ssh "$CLIENT" "${PEER[@]}" \
    ${SSH_TESTS:-$REQUIRED} ${SSH_OPTIONAL_TESTS:+--optional $SSH_OPTIONAL_TESTS}

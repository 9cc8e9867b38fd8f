#!/usr/bin/env bash
# Runs OpenSSH's own ssh-keygen regress tests (Debian's openssh-tests package) against ckeygen:
# keygen-change, keygen-comment, keygen-convert and keygen-knownhosts, one `make` per test, with
# TEST_SSH_SSHKEYGEN pointing at ckeygen (under the name ssh-keygen, which the scripts grep the
# usage text for). The harness also makes every key it uses with ckeygen and has the real sshd
# load them as host keys. Prints "N passed, N failed"; exits non-zero if any failed.
# The work is done by the shared runner, tests/regress/openssh.sh.
#
# Needs: openssh-tests openssh-server openssh-client (Debian). Usage:
#   tests/regress/keygen.sh [path/to/ckeygen]     (default: target/debug/ckeygen, built first)
# KEYGEN_TESTS overrides the list of tests; TEST_SSH_PORT a probed free port.
set -u
cd "$(dirname "$0")/../.."
CKEYGEN=${1:-}
if [ -z "$CKEYGEN" ]; then
    cargo build --quiet --bin ckeygen || exit 1
    CKEYGEN=$PWD/target/debug/ckeygen
fi

# ckeygen makes no security-key (sk-*) or DSA keys: `ssh -Q key-plain`, which decides the key
# types the harness generates, answers with the types ckeygen supports.
# shellcheck disable=SC2086
exec bash tests/regress/openssh.sh --label keygen --keygen "$CKEYGEN" --no-sk \
    --allow key-plain=ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa \
    --allow key=ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa \
    ${KEYGEN_TESTS:-keygen-change keygen-comment keygen-convert keygen-knownhosts}

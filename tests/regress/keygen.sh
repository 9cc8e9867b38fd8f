#!/usr/bin/env bash
# Runs OpenSSH's own ssh-keygen regress tests (Debian's openssh-tests package) against ckeygen:
# keygen-change, keygen-comment, keygen-convert and keygen-knownhosts, one `make` per test, with
# TEST_SSH_SSHKEYGEN pointing at ckeygen (under the name ssh-keygen, which the scripts grep the
# usage text for). The harness also makes every key it uses with ckeygen and has the real sshd
# load them as host keys. Prints "N passed, N failed"; exits non-zero if any failed.
#
# Needs: openssh-tests openssh-server openssh-client (Debian). Usage:
#   tests/regress/keygen.sh [path/to/ckeygen]     (default: target/debug/ckeygen, built first)
set -u
cd "$(dirname "$0")/../.."
CKEYGEN=${1:-}
if [ -z "$CKEYGEN" ]; then
    cargo build --quiet --bin ckeygen || exit 1
    CKEYGEN=$PWD/target/debug/ckeygen
fi
CKEYGEN=$(readlink -f "$CKEYGEN")
SRC=/usr/lib/openssh/regress
if [ ! -d "$SRC" ]; then
    echo "keygen regress: $SRC missing (apt-get install openssh-tests)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

W=$(mktemp -d /tmp/ckeygen-regress.XXXXXX)
[ -n "${KEEP_REGRESS:-}" ] || trap 'rm -rf "$W"' EXIT
cp -a "$SRC" "$W/regress"
R=$W/regress
# No security-key types: ckeygen does not make sk-* keys, and neither do we want the
# sk-dummy provider in the configs.
sed -i '/ENABLE_SK/d' "$R/config.h"
mkdir -p "$W/bin"
ln -s "$CKEYGEN" "$W/bin/ssh-keygen"
# `ssh -Q key-plain` decides which key types the harness makes: answer with the types ckeygen
# supports and pass everything else to the real ssh.
cat > "$W/bin/ssh" <<'WRAP'
#!/bin/sh
q=""; prev=""
for a in "$@"; do [ "$prev" = "-Q" ] && q="$a"; prev="$a"; done
case "$q" in
key|key-plain) /usr/bin/ssh "$@" | grep -E '^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa)$'; exit 0 ;;
esac
exec /usr/bin/ssh "$@"
WRAP
chmod +x "$W/bin/ssh"
mkdir -p /run/sshd 2>/dev/null || true

pass=0
fail=0
for t in ${KEYGEN_TESTS:-keygen-change keygen-comment keygen-convert keygen-knownhosts}; do
    if make -C "$R" .OBJDIR="$R" .CURDIR="$R" BUILDDIR="$R" OBJ="$R" \
        SUDO= TEST_SHELL=sh TEST_SSH_UNSAFE_PERMISSIONS=1 TEST_SSH_PORT="${TEST_SSH_PORT:-4242}" \
        TEST_SSH_SSH="$W/bin/ssh" TEST_SSH_SSHD=/usr/sbin/sshd \
        TEST_SSH_SSHKEYGEN="$W/bin/ssh-keygen" \
        TEST_SSH_SFTPSERVER=/usr/lib/openssh/sftp-server \
        LTESTS="$t" t-exec </dev/null >"$W/out.$t" 2>&1; then
        pass=$((pass + 1))
        echo "ok $t"
    else
        fail=$((fail + 1))
        echo "FAILED $t"
        tail -n 30 "$W/out.$t" | sed 's/^/    /'
        [ -f "$R/failed-regress.log" ] && tail -n 30 "$R/failed-regress.log" | sed 's/^/    /'
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

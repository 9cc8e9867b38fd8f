#!/usr/bin/env bash
# The one runner for OpenSSH's own regress scripts (Debian's openssh-tests package, installed
# under /usr/lib/openssh/regress) against our binaries or Debian's.
#
# It copies the scripts to a fresh temporary directory, picks free loopback ports, and runs each
# named test with its own `make t-exec LTESTS=<test>`, so that every test is counted on its own
# (the suite's own loop stops at the first failure). It prints one line per test, then
# "N passed, N failed" and the names of the failures, and exits non-zero if a required test
# failed. It runs as root (CI=true, no stdin; SUDO is left empty, so the few tests that need
# sudo skip) and as an ordinary user.
#
# Usage:
#   tests/regress/openssh.sh [options] TEST... [--optional TEST...]
# Options:
#   --sshd PATH      sshd under test (TEST_SSH_SSHD; default /usr/sbin/sshd)
#   --ssh PATH       ssh under test (TEST_SSH_SSH; default /usr/bin/ssh)
#   --keygen PATH    ssh-keygen under test (TEST_SSH_SSHKEYGEN; default /usr/bin/ssh-keygen). It is
#                    linked into a private directory under the name ssh-keygen, because some
#                    scripts grep the usage text for that name.
#   --allow KIND=NAMES
#                    answer `ssh -Q KIND` (cipher, mac, kex, key-plain, key, cipher-auth, ...) with
#                    only those of the real answer that are in the comma-separated NAMES. The
#                    suite's loops (try-ciphers, kextype, keytype, integrity, rekey, keyscan) and
#                    its key generation iterate over these answers, so this narrows the suite to
#                    what the binary under test implements. Repeatable. Use it only for what we
#                    really lack: the closing note names every filter in force.
#   --no-sk          drop the security-key (sk-*) setup: no sk-dummy provider in the configs.
#   --label NAME     name for messages and the log directory (default: openssh)
#   --optional       the tests after it are run and reported but do not make the run fail.
# Environment:
#   TEST_SSH_PORT      port for the daemon (default: a free one, probed, with the next 3 free too)
#   REGRESS_TIMEOUT    seconds one test may take before it is killed and failed (default 900)
#   REGRESS_LOG_DIR    where failure logs are kept (default target/regress/<label>)
#   KEEP_REGRESS=1     keep the temporary copy of the suite and say where it is
#   REGRESS_TRACE=1    run the suite with TEST_SSH_TRACE=yes (verbose)
#
# Needs (Debian): openssh-tests openssh-server openssh-client openssh-sftp-server telnet.
set -u

SRC=/usr/lib/openssh/regress
SSHD_UNDER_TEST=/usr/sbin/sshd
SSH_UNDER_TEST=/usr/bin/ssh
KEYGEN_UNDER_TEST=/usr/bin/ssh-keygen
LABEL=openssh
NO_SK=
ALLOWS=()
REQUIRED=()
OPTIONAL=()
optional=

die() {
    echo "$LABEL regress: $*" >&2
    echo "0 passed, 1 failed"
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --sshd) SSHD_UNDER_TEST=${2:?--sshd needs a path}; shift 2 ;;
    --ssh) SSH_UNDER_TEST=${2:?--ssh needs a path}; shift 2 ;;
    --keygen) KEYGEN_UNDER_TEST=${2:?--keygen needs a path}; shift 2 ;;
    --allow) ALLOWS+=("${2:?--allow needs KIND=NAMES}"); shift 2 ;;
    --no-sk) NO_SK=1; shift ;;
    --label) LABEL=${2:?--label needs a name}; shift 2 ;;
    --optional) optional=1; shift ;;
    --) shift ;;
    -*) die "unknown option $1" ;;
    *)
        if [ -n "$optional" ]; then OPTIONAL+=("$1"); else REQUIRED+=("$1"); fi
        shift
        ;;
    esac
done

[ -d "$SRC" ] || die "$SRC missing (apt-get install openssh-tests)"
[ ${#REQUIRED[@]} -gt 0 ] || [ ${#OPTIONAL[@]} -gt 0 ] || die "no tests named"

# Absolute paths: the harness resolves a relative sshd with `which`, and sshd must be absolute
# to re-execute itself.
abs() {
    local p
    case "$1" in
    */*) p=$(readlink -f "$1") ;;
    *) p=$(command -v "$1") || return 1 ;;
    esac
    [ -x "$p" ] || return 1
    printf '%s\n' "$p"
}
SSHD_UNDER_TEST=$(abs "$SSHD_UNDER_TEST") || die "sshd under test is not an executable"
SSH_UNDER_TEST=$(abs "$SSH_UNDER_TEST") || die "ssh under test is not an executable"
KEYGEN_UNDER_TEST=$(abs "$KEYGEN_UNDER_TEST") || die "ssh-keygen under test is not an executable"

# A port is free if we can bind it on 127.0.0.1 (which is where the suite listens).
port_free() {
    python3 - "$@" <<'PY' 2>/dev/null
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", int(p)))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PY
}
if ! command -v python3 >/dev/null 2>&1; then
    # Fallback: a port is taken if something accepts a connection on it.
    port_free() {
        local p
        for p in "$@"; do
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 1
        done
        return 0
    }
fi

# The daemon's port and the three after it (dynamic-forward uses PORT+1, multiplex PORT+1..2).
pick_port() {
    local tries=0 p
    while [ $tries -lt 200 ]; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
        if port_free "$p" $((p + 1)) $((p + 2)) $((p + 3)); then
            echo "$p"
            return 0
        fi
        tries=$((tries + 1))
    done
    return 1
}
# forwarding.sh chains forwards over ports <base><j><i> and <base><j><i>+50 (j, i in 0..2);
# forward-control.sh, cfgmatch.sh, cfgmatchlisten.sh and multiplex.sh use fixed ports. All are
# edited in our copy to use free ones: <base>80 to <base>83.
pick_fwd_base() {
    local tries=0 b ports j i
    while [ $tries -lt 200 ]; do
        b=$((11 + RANDOM % 50))
        ports=""
        for j in 0 1 2; do
            for i in 0 1 2; do
                ports="$ports $b$j$i $((10#$b$j$i + 50))"
            done
        done
        # shellcheck disable=SC2086
        if port_free $ports $((b * 100 + 80)) $((b * 100 + 81)) $((b * 100 + 82)) $((b * 100 + 83)); then
            echo "$b"
            return 0
        fi
        tries=$((tries + 1))
    done
    return 1
}

if [ -n "${TEST_SSH_PORT:-}" ]; then
    PORT=$TEST_SSH_PORT
else
    PORT=$(pick_port) || die "no free port found"
fi
FWD_BASE=$(pick_fwd_base) || die "no free forwarding ports found"

W=$(mktemp -d "${TMPDIR:-/tmp}/$LABEL-regress.XXXXXX") || die "mktemp failed"
if [ -n "${KEEP_REGRESS:-}" ]; then
    echo "$LABEL regress: keeping $W"
else
    trap 'rm -rf "$W"' EXIT
fi
chmod 755 "$W"
cp -a "$SRC" "$W/regress" || die "copying $SRC failed"
R=$W/regress
[ -z "$NO_SK" ] || sed -i '/ENABLE_SK/d' "$R/config.h"
sed -i "s/^base=33\$/base=$FWD_BASE/" "$R/forwarding.sh"
sed -i -e "s/^LFWD_PORT=3320\$/LFWD_PORT=${FWD_BASE}80/" \
    -e "s/^RFWD_PORT=3321\$/RFWD_PORT=${FWD_BASE}81/" "$R/forward-control.sh"
sed -i "s/^fwdport=3301\$/fwdport=${FWD_BASE}82/" "$R/cfgmatch.sh" "$R/cfgmatchlisten.sh"
sed -i "s/^P=3301 /P=${FWD_BASE}83 /" "$R/multiplex.sh"

BIN=$W/bin
mkdir -p "$BIN"
ln -s "$KEYGEN_UNDER_TEST" "$BIN/ssh-keygen"
SSH_FOR_SUITE=$SSH_UNDER_TEST
FILTER_NOTE=""
if [ ${#ALLOWS[@]} -gt 0 ]; then
    mkdir -p "$W/allow"
    for a in "${ALLOWS[@]}"; do
        kind=${a%%=*}
        names=${a#*=}
        [ "$kind" != "$a" ] && [ -n "$kind" ] || die "--allow $a: expected KIND=NAMES"
        printf '%s\n' "$names" | tr ',' '\n' | sed '/^$/d' >>"$W/allow/$kind"
        real=$("$SSH_UNDER_TEST" -Q "$kind" 2>/dev/null | tr '\n' ' ')
        lacking=""
        for n in $real; do
            grep -Fxq -- "$n" "$W/allow/$kind" || lacking="$lacking $n"
        done
        FILTER_NOTE="$FILTER_NOTE
  -Q $kind leaves out:${lacking:- (nothing)}"
    done
    # A wrapper that answers `-Q KIND` through the allow-list and runs the real ssh otherwise.
    cat >"$BIN/ssh" <<WRAP
#!/bin/sh
q=""; prev=""
for a in "\$@"; do [ "\$prev" = "-Q" ] && q="\$a"; case "\$a" in -Q?*) q="\${a#-Q}" ;; esac; prev="\$a"; done
if [ -n "\$q" ] && [ -f "$W/allow/\$q" ]; then
    "$SSH_UNDER_TEST" "\$@" | grep -Fx -f "$W/allow/\$q"
    exit 0
fi
exec "$SSH_UNDER_TEST" "\$@"
WRAP
    chmod 755 "$BIN/ssh"
    SSH_FOR_SUITE=$BIN/ssh
fi

# Debian's sshd needs its privilege-separation directory when it runs as root.
[ "$(id -u)" != 0 ] || mkdir -p /run/sshd

LOGS=${REGRESS_LOG_DIR:-$PWD/target/regress/$LABEL}
mkdir -p "$LOGS" 2>/dev/null || LOGS=$W/logs
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.out 2>/dev/null

echo "$LABEL regress: sshd=$SSHD_UNDER_TEST ssh=$SSH_UNDER_TEST ssh-keygen=$KEYGEN_UNDER_TEST port=$PORT"

# Stops a daemon a killed test left behind (the harness's own cleanup did not run).
stop_leftover() {
    local pid
    [ -f "$R/pidfile" ] || return 0
    pid=$(cat "$R/pidfile" 2>/dev/null)
    case "$pid" in '' | *[!0-9]*) ;; *) kill "$pid" 2>/dev/null ;; esac
    rm -f "$R/pidfile"
}

pass=0
fail=0
failed=()
failed_optional=()
run_one() {
    local t=$1 kind=$2 start end rc
    if [ ! -f "$R/$t.sh" ]; then
        fail=$((fail + 1))
        if [ "$kind" = required ]; then failed+=("$t"); else failed_optional+=("$t"); fi
        echo "FAILED $t (no such test in $SRC)"
        return
    else
        rm -f "$R"/failed-*.log
        start=$(date +%s)
        timeout --kill-after=10 "${REGRESS_TIMEOUT:-900}" \
            make -C "$R" .OBJDIR="$R" .CURDIR="$R" BUILDDIR="$R" OBJ="$R" \
            SUDO= TEST_SHELL=sh TEST_SSH_UNSAFE_PERMISSIONS=1 TEST_SSH_PORT="$PORT" \
            TEST_SSH_TRACE="${REGRESS_TRACE:+yes}" \
            TEST_SSH_SSH="$SSH_FOR_SUITE" TEST_SSH_SSHD="$SSHD_UNDER_TEST" \
            TEST_SSH_SSHKEYGEN="$BIN/ssh-keygen" \
            TEST_SSH_SSHKEYSCAN="$(command -v ssh-keyscan || echo ssh-keyscan)" \
            TEST_SSH_SFTPSERVER=/usr/lib/openssh/sftp-server \
            TEST_SSH_PLINK=plink TEST_SSH_PUTTYGEN=puttygen TEST_SSH_CONCH=conch3 \
            LTESTS="$t" t-exec </dev/null >"$W/out.$t" 2>&1
        rc=$?
        end=$(date +%s)
        stop_leftover
    fi
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
        echo "ok $t ($((end - start))s)"
        return
    fi
    fail=$((fail + 1))
    if [ "$kind" = required ]; then failed+=("$t"); else failed_optional+=("$t"); fi
    if [ $rc -eq 124 ]; then
        echo "FAILED $t (killed after ${REGRESS_TIMEOUT:-900}s)"
    else
        echo "FAILED $t ($((end - start))s)"
    fi
    [ -f "$W/out.$t" ] && cp "$W/out.$t" "$LOGS/$t.out" && tail -n 15 "$W/out.$t" | sed 's/^/    /'
    local f
    for f in regress ssh sshd; do
        [ -f "$R/failed-$f.log" ] && cp "$R/failed-$f.log" "$LOGS/$t.$f.log"
    done
    [ -f "$R/failed-regress.log" ] && tail -n 15 "$R/failed-regress.log" | sed 's/^/    /'
    echo "    (logs: $LOGS/$t.*)"
}

for t in "${REQUIRED[@]}"; do run_one "$t" required; done
for t in "${OPTIONAL[@]}"; do run_one "$t" optional; done

echo "$pass passed, $fail failed"
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
[ ${#failed_optional[@]} -eq 0 ] || echo "failed (optional): ${failed_optional[*]}"
[ -z "$FILTER_NOTE" ] || echo "note: -Q filter in force:$FILTER_NOTE"
[ ${#failed[@]} -eq 0 ]

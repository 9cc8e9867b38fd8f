#!/usr/bin/env bash
# Runs OpenSSH's regress suite (Debian's openssh-tests) against our sshd, conchd, with Debian's
# ssh, ssh-keygen and ssh-keyscan as the other end: the acceptance tests of issue 5, one `make`
# per test. Prints "N passed, N failed" and the failures; exits non-zero if a required test failed.
# The work is done by the shared runner, tests/regress/openssh.sh.
#
# Usage: tests/regress/sshd.sh [path/to/sshd [TEST...]]   (default: target/debug/conchd, built
#   first; TESTs replace the required list)
#   `tests/regress/sshd.sh /usr/sbin/sshd` runs the same tests against Debian's sshd (the control).
#   Under privilege separation: CONCHD=target/debug/conchd CONCHD_PRIVSEP=sandbox
#   tests/regress/sshd.sh "$PWD/tests/regress/conchd-privsep-inetd.sh" TEST... (the suite's
#   `sshd -i` connections, which conchd serves without privilege separation, go to a
#   privilege-separated conchd instead).
# SSHD_TESTS overrides the list of required tests; SSHD_OPTIONAL_TESTS adds tests that are run
# and reported but do not fail the run.
set -u
cd "$(dirname "$0")/../.."
SSHD=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$SSHD" ]; then
    cargo build --quiet --bin conchd || exit 1
    SSHD=$PWD/target/debug/conchd
fi

REQUIRED="connect proxy-connect proto-version proto-mismatch exit-status exit-status-signal
    stderr-data stderr-after-eof transfer yes-head envpass banner authinfo allow-deny-users
    forcecommand key-options brokenkeys keyscan login-timeout reconfigure connect-privsep portnum
    try-ciphers kextype keytype integrity rekey forwarding dynamic-forward forward-control
    channel-timeout connection-timeout cfgmatch
    agent limit-keytype hostkey-rotate cert-userkey principals-command keys-command
    reexec multiplex cfgmatchlisten connect-uri sftp-uri"

# The -Q filter: Debian's ssh 9.2 offers these, and the library does not implement them, so the
# suite's loops must not ask conchd for them (it would rightly refuse them as unknown names):
#   ciphers  3des-cbc aes128-cbc aes192-cbc aes256-cbc
#   MACs     hmac-sha1-96 hmac-md5 hmac-md5-96 umac-64@openssh.com umac-128@openssh.com and their
#            -etm@openssh.com forms, hmac-sha1-96-etm@openssh.com
#   kex      diffie-hellman-group1-sha1 diffie-hellman-group-exchange-sha1
#            diffie-hellman-group-exchange-sha256
#   keys     ssh-dss and the security-key types sk-* (also --no-sk: no sk-dummy provider)
# The allow-lists are what the library implements (conch/src/crypto: CIPHER_NAMES, MAC_NAMES,
# KEX_NAMES, KEY_TYPES).
# shellcheck disable=SC2086
exec bash tests/regress/openssh.sh --label sshd --sshd "$SSHD" --no-sk \
    --allow cipher=chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr \
    --allow mac=hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1 \
    --allow kex=mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,diffie-hellman-group14-sha1 \
    --allow key-plain=ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa \
    ${*:-${SSHD_TESTS:-$REQUIRED}} ${SSHD_OPTIONAL_TESTS:+--optional $SSHD_OPTIONAL_TESTS}

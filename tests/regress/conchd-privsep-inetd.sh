#!/usr/bin/env bash
# The sshd the regress suite runs, for privilege separation: conchd in inetd mode (`-i`, the
# connection on stdin and stdout) does not separate privileges, and most regress tests reach
# the server through `ProxyCommand sshd -i`. With CONCHD_PRIVSEP=sandbox, an `-i` run starts a
# privilege-separated conchd for one connection (`-d`) on a free loopback port instead, and
# relays stdin and stdout to it (until the server closes); everything else runs conchd as
# asked.
#
# Usage: CONCHD=path/to/conchd CONCHD_PRIVSEP=sandbox \
#            tests/regress/sshd.sh "$PWD/tests/regress/conchd-privsep-inetd.sh" TEST...
set -u
CONCHD=${CONCHD:?CONCHD must name the conchd binary}
inetd=no
args=()
for a in "$@"; do
    if [ "$a" = -i ]; then inetd=yes; else args+=("$a"); fi
done
if [ "$inetd" = no ] || [ "${CONCHD_PRIVSEP:-}" != sandbox ]; then
    exec "$CONCHD" "$@"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CONCHD" -d "${args[@]}" -o "Port=$port" -o ListenAddress=127.0.0.1 </dev/null &
pid=$!
# Wait (bounded) for the listener without connecting: -d serves one connection only.
for _ in $(seq 200); do
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
# shellcheck disable=SC2016
relay='
import os, selectors, socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ)
sel.register(conn, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj == 0:
            data = os.read(0, 65536)
            if data:
                conn.sendall(data)
            else:
                sel.unregister(0)
                conn.shutdown(socket.SHUT_WR)
        else:
            data = conn.recv(65536)
            if not data:
                sys.exit(0)
            os.write(1, data)
'
python3 -c "$relay" "$port"
rc=$?
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exit $rc

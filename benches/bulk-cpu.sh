#!/bin/sh
# Server CPU per GiB of a bulk transfer through conchd (or sshd), robust on a loaded machine:
# it counts CPU time, not wall-clock time. For each cipher and direction it moves SIZE MiB of
# zeros with OpenSSH's `ssh` and prints the server tree's user+system seconds per GiB (from
# /proc/<pid>/stat fields 14-17 of the listening server, which reaps every per-connection
# process and session child, plus the same fields of its children already running at the start:
# conchd's privilege-separated workers, started before the transfer and not reaped after it),
# and, when `perf` works, task-clock seconds (ns resolution) and context switches per GiB
# (perf stat -p on the listening server and those children, counters inherited by the children
# they start). With SYSCALLS=1 it also prints system calls per GiB of the same tree (perf's
# syscalls:sys_enter_* tracepoints: read, write, writev, sendto, recvfrom, epoll_wait; read and
# write include the remote `head`/`cat`'s, one per 8 KiB). The client's
# CPU seconds per GiB come from `perf stat` around it (task-clock; "-" without perf), and MB/s
# from the wall-clock time of the whole command (handshake included: use 256 MiB or more).
#
#   benches/bulk-cpu.sh [SIZE_MIB] [conchd|sshd]     (default 512 conchd)
#   CIPHERS='aes128-gcm@openssh.com:' WAYS=down benches/bulk-cpu.sh   (cipher:mac, a subset)
#   CLIENT=conch benches/bulk-cpu.sh 512 conchd      (our client; $CONCH or target/release/conch)
#
# conchd is $CONCHD or target/release/conchd (`cargo build --release --bin conchd`). Runs as the current
# user on a free 127.0.0.1 port with a scratch directory under /dev/shm, removed at the end.
set -eu
size=${1:-512}
server=${2:-conchd}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /dev/shm/twine-bulk-cpu.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
ssh-keygen -q -t ed25519 -N '' -f "$dir/host" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$dir/id" >/dev/null
cp "$dir/id.pub" "$dir/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host
PidFile none
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
LogLevel ERROR
X11Forwarding no
PrintMotd no
PrintLastLog no
EOF
case $server in
conchd) "${CONCHD:-$root/target/release/conchd}" -D -e -f "$dir/config" 2>"$dir/log" & ;;
sshd) mkdir -p /run/sshd; /usr/sbin/sshd -D -e -f "$dir/config" 2>"$dir/log" & ;;
*) echo "server: conchd or sshd" >&2; exit 2 ;;
esac
pid=$!
i=0
until ssh-keyscan -p "$port" 127.0.0.1 >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 50 ] || { cat "$dir/log" >&2; exit 1; }; sleep 0.1
done
client=ssh
[ "${CLIENT:-ssh}" = conch ] && client=${CONCH:-$root/target/release/conch}
pre=
ssh_() {
    $pre "$client" -F /dev/null -T -x -a -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o Compression=no -o ControlPath=none \
        -i "$dir/id" -p "$port" "$@" 127.0.0.1 "$cmd"
}
# The listening server and its children now (privilege-separated workers); later children
# (sessions, per-connection processes) are counted when reaped, and by perf as inherited.
tree() { echo "$pid" $(pgrep -P "$pid" || true); }
# utime+stime+cutime+cstime: fields 14-17, counted after the ")" that ends the command name.
ticks() {
    for p in $(tree); do cat "/proc/$p/stat" 2>/dev/null || true; done |
        awk '{sub(/.*\) /, ""); s += $12 + $13 + $14 + $15} END {print s + 0}'
}
hz=$(getconf CLK_TCK)
have_perf=no
perf stat -e task-clock true >/dev/null 2>&1 && have_perf=yes
printf '%-28s %10s %12s %12s %12s %8s\n' "$server ${size} MiB ${CLIENT:-ssh}" "CPU s/GiB" "perf s/GiB" "cswitch/GiB" "client s/GiB" "MB/s"
for spec in ${CIPHERS:-aes128-gcm@openssh.com: chacha20-poly1305@openssh.com: aes128-ctr:hmac-sha2-256-etm@openssh.com}; do
    cipher=${spec%%:*}; mac=${spec#*:}
    set -- -c "$cipher"; [ -n "$mac" ] && set -- "$@" -m "$mac"
    for way in ${WAYS:-down up}; do
        if [ $way = down ]; then cmd="head -c ${size}M /dev/zero"; else cmd="cat >/dev/null"; fi
        sleep 0.3
        before=$(ticks)
        if [ $have_perf = yes ]; then
            events=task-clock,context-switches
            [ -n "${SYSCALLS:-}" ] && for call in read write writev sendto recvfrom epoll_wait; do
                events=$events,syscalls:sys_enter_$call
            done
            perf stat -x, -o "$dir/perf" -e "$events" -p "$(tree | tr ' ' ,)" &
            perfpid=$!
            sleep 0.2
        fi
        start=$(date +%s.%N)
        [ $have_perf = yes ] && pre="perf stat -x, -o $dir/client -e task-clock --"
        if [ $way = down ]; then ssh_ "$@" >/dev/null; else head -c "${size}M" /dev/zero | ssh_ "$@"; fi
        end=$(date +%s.%N)
        sleep 0.3
        after=$(ticks)
        ins=-; cs=-; ccpu=-
        mbs=$(awk -v a="$start" -v b="$end" -v s="$size" 'BEGIN{printf "%.0f", s*1048576/1e6/(b-a)}')
        if [ $have_perf = yes ]; then
            kill -INT $perfpid; wait $perfpid || true
            ins=$(awk -F, -v s="$size" '$3=="task-clock"{printf "%.3f", $1/1e3*1024/s}' "$dir/perf")
            cs=$(awk -F, -v s="$size" '$3=="context-switches"{printf "%.0f", $1*1024/s}' "$dir/perf")
            ccpu=$(awk -F, -v s="$size" '$3=="task-clock"{printf "%.3f", $1/1e3*1024/s}' "$dir/client")
        fi
        cpu=$(awk -v a="$before" -v b="$after" -v hz="$hz" -v s="$size" 'BEGIN{printf "%.3f", (b-a)/hz*1024/s}')
        calls=
        [ -n "${SYSCALLS:-}" ] && [ $have_perf = yes ] && calls=$(awk -F, -v s="$size" \
            '$3 ~ /sys_enter_/ {sub(/.*sys_enter_/, "", $3); printf " %s=%.0f", $3, $1 * 1024 / s}' "$dir/perf")
        printf '%-28s %10s %12s %12s %12s %8s%s\n' "${cipher%@*} $way" "$cpu" "$ins" "$cs" "$ccpu" "$mbs" "$calls"
    done
done

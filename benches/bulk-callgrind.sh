#!/bin/sh
# conchd's instructions per GiB of a bulk transfer, counted by callgrind: repeatable on a loaded
# machine where CPU seconds move by tens of percent. For each cipher and direction it runs
# benches/bulk-cpu.sh twice with conchd under `valgrind --tool=callgrind` (without privilege
# separation, so one process counts everything of the connection's worker): once moving SIZE MiB,
# once moving nothing, and prints the difference scaled to a GiB (the handshake, the key
# exchange and the session's start cancel out). The remote `head`/`cat` are not counted.
#
#   benches/bulk-callgrind.sh [SIZE_MIB]                (default 32)
#   CLIENT=conch benches/bulk-callgrind.sh 32           (our client; $CONCH or target/release/conch)
#   CONCHD=/path/conchd CIPHERS='aes128-gcm@openssh.com:' WAYS=up benches/bulk-callgrind.sh
#
# Needs valgrind. Runs as the current user; scratch files under /dev/shm, removed at the end.
set -eu
size=${1:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
conchd=${CONCHD:-$root/target/release/conchd}
dir=$(mktemp -d /dev/shm/twine-bulk-callgrind.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
cat >"$dir/conchd" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$dir/out.%p --log-file=$dir/log.%p "$conchd" "\$@"
EOF
chmod +x "$dir/conchd"
count() {
    rm -f "$dir"/out.* "$dir"/log.*
    CONCHD_PRIVSEP=no CIPHERS=$1 WAYS=$2 CONCHD=$dir/conchd \
        timeout 600 "$root/benches/bulk-cpu.sh" "$3" conchd >/dev/null 2>&1 || true
    sleep 1
    cat "$dir"/log.* | awk '/Collected/ {gsub(",", "", $4); s += $4} END {print s + 0}'
}
printf '%-28s %14s\n' "conchd ${size} MiB ${CLIENT:-ssh}" "instr/GiB"
for spec in ${CIPHERS:-aes128-gcm@openssh.com: chacha20-poly1305@openssh.com: aes128-ctr:hmac-sha2-256-etm@openssh.com}; do
    cipher=${spec%%:*}
    for way in ${WAYS:-down up}; do
        none=$(count "$spec" "$way" 0)
        some=$(count "$spec" "$way" "$size")
        printf '%-28s %14s\n' "${cipher%@*} $way" \
            "$(awk -v a="$none" -v b="$some" -v s="$size" 'BEGIN{printf "%.2f G", (b-a)*1024/s/1e9}')"
    done
done

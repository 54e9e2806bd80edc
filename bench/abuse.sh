#!/usr/bin/env bash
# Abuse benchmark (issue 16): the service's memory under gzip bodies that inflate to megabytes and are
# never finished (100 HTTP/1.1 connections; 128 streams on one HTTP/2 connection) while ordinary
# reports keep arriving, and legitimate throughput next to 17 requests/s whose commit fails. Loopback
# only, each phase bounded (about 2 minutes in all). Prints the figures; record them in
# docs/performance.md.
#
#   bench/abuse.sh
#   ATTACK_SECONDS=10 WRK_SECONDS=10 bench/abuse.sh
#   BIN=path/to/telemetry-server bench/abuse.sh     # measure that binary (still builds the release one)
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_abuse}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
PORT=${PORT:-18098}
ATTACK_SECONDS=${ATTACK_SECONDS:-15}
WRK_SECONDS=${WRK_SECONDS:-15}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
POISON_RATE=${POISON_RATE:-17}
export BENCH_INSTANCES=100000 BENCH_FIXTURES=tests/fixtures

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

echo "== building (release)"
cargo build --release --quiet --bin telemetry-server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
# A copy: the build directory may be shared, and another build must not swap the binary mid-run.
cp "${BIN:-$target_dir/release/telemetry-server}" "$work/telemetry-server"
BIN=$work/telemetry-server

server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

start_server() {
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    DATABASE_URL=$BENCH_URL "$BIN" migrate >/dev/null
    DATABASE_URL=$BENCH_URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn "$BIN" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
        sleep 0.2
    done
    echo "service did not start:"; cat "$work/server.log"; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status"; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status"; }

# One attack next to a stream of ordinary reports; prints RSS before, the peak, and what both saw.
attack() {
    local name=$1; shift
    start_server
    python3 bench/abuse.py legit "$PORT" 3 >/dev/null   # warm-up
    local before; before=$(rss_mb)
    python3 bench/abuse.py "$@" >"$work/attack.txt" &
    local attacker=$!
    python3 bench/abuse.py legit "$PORT" "$ATTACK_SECONDS" >"$work/legit.txt"
    wait "$attacker"
    echo "   $name: RSS ${before} MB before, peak $(peak_rss_mb) MB"
    echo "   $(cat "$work/attack.txt")"
    echo "   $(cat "$work/legit.txt")"
    stop_server
}

echo "== 1. memory under unfinished gzip bodies (~4 KB each, inflating to 3.9 MiB)"
attack "100 HTTP/1.1 connections" slow-gzip "$PORT" 100 "$ATTACK_SECONDS"
attack "128 streams on one HTTP/2 connection" h2-streams "$PORT" 128 "$ATTACK_SECONDS"

echo "== 2. legitimate throughput next to $POISON_RATE failing requests/s"
# Stands for any report the database refuses at commit that validation cannot foresee.
poison=$(python3 -c 'import uuid; print(uuid.uuid4())')
start_server
psql -q "$BENCH_URL" <<SQL
CREATE FUNCTION bench_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN IF NEW.instance_id = '$poison' THEN RAISE EXCEPTION 'refused by the abuse benchmark'; END IF; RETURN NEW; END \$\$;
CREATE TRIGGER bench_refuse BEFORE INSERT ON reports FOR EACH ROW EXECUTE FUNCTION bench_refuse();
SQL
wrk_rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
wrk -t2 -c"$WRK_CONNECTIONS" -d5s -s bench/ingest.lua "http://127.0.0.1:$PORT" >/dev/null  # warm-up
wrk -t2 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency -s bench/ingest.lua "http://127.0.0.1:$PORT" >"$work/clean.txt"
python3 bench/abuse.py poison "$PORT" "$POISON_RATE" "$WRK_SECONDS" "$poison" >"$work/poison.txt" &
poisoner=$!
wrk -t2 -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency -s bench/ingest.lua "http://127.0.0.1:$PORT" >"$work/poisoned.txt"
wait "$poisoner"
clean=$(wrk_rate "$work/clean.txt"); poisoned=$(wrk_rate "$work/poisoned.txt")
p50() { awk '$1 == "50%" {print $2}' "$1"; }
echo "   clean: $clean req/s (p50 $(p50 "$work/clean.txt")); next to the failing requests: $poisoned req/s (p50 $(p50 "$work/poisoned.txt"))"
echo "   $(cat "$work/poison.txt")"
awk -v a="$poisoned" -v b="$clean" 'BEGIN {printf "   ratio: %.2f\n", a / b}'
stop_server

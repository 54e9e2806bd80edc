#!/usr/bin/env bash
# Fault test: under steady load, restart PostgreSQL, then SIGTERM the service and start it again.
# Afterwards every report that got a 200 must be in the database, and the service must have recovered
# with no manual step. Prints the figures and appends them to docs/performance.md.
# It restarts the machine's PostgreSQL cluster: run it when nothing else uses the database.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_faults}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
PORT=${PORT:-18098}
RATE=${RATE:-300}
SECONDS_TOTAL=${SECONDS_TOTAL:-45}
CLUSTER_VERSION=$(ls /etc/postgresql)

cargo build --release --quiet --bin telemetry-server --example loadgen
BIN=target/release/telemetry-server
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect "$CLUSTER_VERSION" main start
    rm -rf "$work"
}
trap cleanup EXIT

psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
start_server() {
    DATABASE_URL=$BENCH_URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=info DATABASE_ACQUIRE_TIMEOUT_SECS=1 \
        "$BIN" >>"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 150); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
        sleep 0.2
    done
    echo "service did not become ready"; cat "$work/server.log"; exit 1
}
start_server

echo "== load: $RATE requests/s for ${SECONDS_TOTAL}s"
target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --rate "$RATE" --seconds "$SECONDS_TOTAL" \
    --timeout 5 --acknowledged-out "$work/acknowledged.txt" >"$work/loadgen.txt" &
loadgen_pid=$!

sleep 8
echo "== restarting PostgreSQL"
pg_ctlcluster --skip-systemctl-redirect "$CLUSTER_VERSION" main stop -m fast
sleep 3
pg_ctlcluster --skip-systemctl-redirect "$CLUSTER_VERSION" main start
ready_after_pg=no
for _ in $(seq 1 50); do
    if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then ready_after_pg=yes; break; fi
    sleep 0.2
done
echo "   service ready again without intervention: $ready_after_pg"

sleep 8
echo "== SIGTERM to the service, then start it again"
kill -TERM "$server_pid"
wait "$server_pid" && exit_code=0 || exit_code=$?
server_pid=""
echo "   exit code: $exit_code"
sleep 2
start_server

wait "$loadgen_pid"
result=$(grep LOADGEN_RESULT "$work/loadgen.txt")
echo "$result"
sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<<"$result")
ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$result")
statuses=$(sed -n 's/.* statuses=\([^ ]*\).*/\1/p' <<<"$result")
errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")
refused=$(tr ',' '\n' <<<"$statuses" | awk -F: '$1==503 {print $2}'); refused=${refused:-0}

psql -qtA "$BENCH_URL" >"$work/lost.txt" <<SQL
CREATE TEMP TABLE acked (id uuid);
\\copy acked FROM '$work/acknowledged.txt'
SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM reports r WHERE r.report_id = a.id);
SQL
lost=$(tail -n 1 "$work/lost.txt")
stored=$(psql -qtA "$BENCH_URL" -c "SELECT count(*) FROM reports")
final_status=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @tests/fixtures/everest-report.json \
    "http://127.0.0.1:$PORT/v1/telemetry/GenericReport")

echo "== result: sent $sent, 200: $ok, 503: $refused, connection errors: $errors, stored: $stored, lost: $lost"
echo "   exit code on SIGTERM: $exit_code; ready after PostgreSQL restart: $ready_after_pg; ingest after restart: $final_status"
{
    [ -s docs/performance.md ] || printf '# Performance\n'
    printf '\n## Fault run %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'Steady load of %s requests/s for %s s (open loop, `examples/loadgen.rs`); PostgreSQL stopped (fast) and\n' "$RATE" "$SECONDS_TOTAL"
    printf 'started again after 8 s, the service sent SIGTERM after 8 more seconds and started again 2 s later.\n\n'
    printf '| requests sent | 200 | 503 | connection errors (service down) | reports stored | **acknowledged but lost** | exit code on SIGTERM | recovered by itself |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    printf '| %s | %s | %s | %s | %s | **%s** | %s | %s (ingest afterwards: %s) |\n' \
        "$sent" "$ok" "$refused" "$errors" "$stored" "$lost" "$exit_code" "$ready_after_pg" "$final_status"
} >>docs/performance.md
[ "$lost" = "0" ] && [ "$exit_code" = "0" ] && [ "$ready_after_pg" = "yes" ] && [ "$final_status" = "200" ]

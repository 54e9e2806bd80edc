#!/usr/bin/env bash
# The statistics page under load: a year of generated history, the release service with its page
# computed once, then wrk on /stats (full answers), /stats.json, and /stats with If-None-Match (304s).
# PostgreSQL's own counters for the database (transactions, rows read) are read before and after: page
# views must not move them. Appends the figures to docs/performance.md and prints them.
#
#   bench/stats.sh                          # 2,000 instances x 365 days, 30 s per wrk run
#   INSTANCES=500 SECONDS_PER_RUN=10 bench/stats.sh
#   BIN=/path/to/telemetry-server bench/stats.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_stats_bench}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
PORT=${PORT:-18098}
INSTANCES=${INSTANCES:-2000}
DAYS=${DAYS:-365}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-30}
CONNECTIONS=${CONNECTIONS:-64}
OUT=${OUT:-docs/performance.md}
# PostgreSQL publishes a backend's counters after it has been idle for up to 10 s.
STATS_SETTLE_SECS=12

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk"; exit 1; }
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin telemetry-server
    BIN=target/release/telemetry-server
fi
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "== generating $INSTANCES instances x $DAYS days"
psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
DATABASE_URL=$BENCH_URL RUST_LOG=warn "$BIN" generate --instances "$INSTANCES" --days "$DAYS" --seed 1
# Leave autovacuum nothing to do during the measurement.
psql -X -q "$BENCH_URL" -c "VACUUM ANALYZE" >/dev/null

echo "== starting the service (statistics computed once, at start-up)"
DATABASE_URL=$BENCH_URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn RETENTION_INTERVAL_SECS=0 \
    STATS_REFRESH_SECS=3600 "$BIN" >"$work/server.log" 2>&1 &
server_pid=$!
base=http://127.0.0.1:$PORT
for _ in $(seq 1 300); do
    curl -sf "$base/stats.json" 2>/dev/null | grep -q '"snapshot_day": "' && break
    sleep 0.2
done
refreshes() { curl -sf "$base/metrics" | awk '/^telemetry_stats_refreshes_total/ {n+=$2} END {print n+0}'; }
# Transactions and rows read in the benchmark database, as PostgreSQL counts them, from another database.
db_counters() {
    psql -X -qtA -F ' ' "$ADMIN_URL" -c "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched
        FROM pg_stat_database WHERE datname = '$BENCH_DB'"
}
etag=$(curl -sfI "$base/stats" | awk -F': ' 'tolower($1) == "etag" {print $2}' | tr -d '\r')
page_bytes=$(curl -sf "$base/stats" | wc -c)
gzip_bytes=$(curl -sf -H 'Accept-Encoding: gzip' "$base/stats" | wc -c)
json_bytes=$(curl -sf "$base/stats.json" | wc -c)

sleep "$STATS_SETTLE_SECS"
read -r xacts_before rows_before <<<"$(db_counters)"
refreshes_before=$(refreshes)

runs=0
run() {
    local name=$1 out
    shift
    runs=$((runs + 1))
    out="$work/wrk-$runs.txt"
    wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$@" >"$out"
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$out")
    echo "   $name: $rps requests/s, p50 $p50, p99 $p99, non-2xx/3xx ${non2xx:-0}"
    rows_md+="| $name | $(printf '%.0f' "$rps") | $p50 | $p99 | ${non2xx:-0} |"$'\n'
}
echo "== wrk, $CONNECTIONS connections, ${SECONDS_PER_RUN} s each"
rows_md=""
run "GET /stats (${page_bytes} bytes)" "$base/stats"
run "GET /stats.json (${json_bytes} bytes)" "$base/stats.json"
run "GET /stats, If-None-Match (304)" -H "If-None-Match: $etag" "$base/stats"
run "GET /stats, gzip (${gzip_bytes} bytes)" -H "Accept-Encoding: gzip" "$base/stats"

sleep "$STATS_SETTLE_SECS"
read -r xacts_after rows_after <<<"$(db_counters)"
refreshes_after=$(refreshes)
requests=$(cat "$work"/wrk-*.txt | awk '/requests in/ {n+=$1} END {print n}')
echo "   $requests page views; database transactions $xacts_before -> $xacts_after, rows read $rows_before -> $rows_after, refreshes $refreshes_before -> $refreshes_after"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
{
    printf '\n## Statistics page\n\n'
    printf 'Measured by `bench/stats.sh` on %s: %s cores (%s), release build, loopback, wrk with 2 threads and %s connections for %s s per row, on the same machine as the service. ' \
        "$(date -u +%Y-%m-%d)" "$(nproc)" "$cpu" "$CONNECTIONS" "$SECONDS_PER_RUN"
    printf 'History: %s generated instances over %s days; the page computed once from the rollups at start-up (`STATS_REFRESH_SECS=3600`).\n\n' "$INSTANCES" "$DAYS"
    printf '| request | requests/s | p50 | p99 | non-2xx/3xx |\n|---|---:|---:|---:|---:|\n%s\n' "$rows_md"
    printf '**Database load.** Over the %s page views, PostgreSQL counted %s transactions in the benchmark database (%s before, %s after) and %s rows read; the service refreshed the statistics %s times during the runs. Page views are served from memory; only the scheduled refresh queries the rollups.\n' \
        "$requests" "$((xacts_after - xacts_before))" "$xacts_before" "$xacts_after" "$((rows_after - rows_before))" "$((refreshes_after - refreshes_before))"
} >>"$OUT"
psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
[ "$xacts_after" = "$xacts_before" ]

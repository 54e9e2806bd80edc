#!/usr/bin/env bash
# Soak run: the release service at a fixed rate (default: half the maximum measured by bench/ingest.sh)
# for SOAK_SECONDS (default 600); samples the server's RSS every 10 s and checks for errors.
# Appends the figures to docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_soak}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
PORT=${PORT:-18097}
RATE=${RATE:?set RATE to half the maximum from bench/ingest.sh}
SOAK_SECONDS=${SOAK_SECONDS:-600}

cargo build --release --quiet --bin telemetry-server --example loadgen
work=$(mktemp -d)
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
DATABASE_URL=$BENCH_URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn target/release/telemetry-server >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

target/release/examples/loadgen --url "http://127.0.0.1:$PORT" --rate "$RATE" --seconds "$SOAK_SECONDS" >"$work/loadgen.txt" &
loadgen_pid=$!
: >"$work/rss.txt"
while kill -0 "$loadgen_pid" 2>/dev/null; do
    awk '/VmRSS/ {printf "%.1f\n", $2/1024}' "/proc/$server_pid/status" >>"$work/rss.txt"
    sleep 10
done
wait "$loadgen_pid"
result=$(grep LOADGEN_RESULT "$work/loadgen.txt")
echo "$result"
statuses=$(sed -n 's/.* statuses=\([^ ]*\).*/\1/p' <<<"$result")
errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")
p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$result")
skipped=$(sed -n 's/.* skipped=\([0-9]*\).*/\1/p' <<<"$result")
p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$result")
samples=$(wc -l <"$work/rss.txt")
peak=$(sort -n "$work/rss.txt" | tail -n 1)
# Flat means no trend once warmed up: the median of the second half of the run (after the first minute)
# is within 10% of the median of the first half. Single samples swing with the requests in flight.
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
warm=$(tail -n +7 "$work/rss.txt")
half=$(( $(wc -l <<<"$warm") / 2 ))
first_half=$(head -n "$half" <<<"$warm" | median)
second_half=$(tail -n "$half" <<<"$warm" | median)
flat=$(awk "BEGIN{print ($second_half <= 1.1 * $first_half) ? \"yes\" : \"no\"}")
non200=$(tr ',' '\n' <<<"$statuses" | awk -F: '$1!=200 {n+=$2} END {print n+0}')
settings=$(psql -qtA "$ADMIN_URL" -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
    FROM unnest(ARRAY['shared_buffers', 'max_wal_size', 'wal_compression', 'backend_flush_after', 'synchronous_commit']) AS name")
echo "RSS MB: median $first_half in the first half, $second_half in the second (flat: $flat), peak $peak ($samples samples)"
{
    [ -s docs/performance.md ] || printf '# Performance\n'
    printf '\n## Soak run %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf '%s requests/s for %s s (release build, loopback, open loop). PostgreSQL: %s.\n\n' "$RATE" "$SOAK_SECONDS" "$settings"
    printf '| answers | non-200 | client errors | sends skipped (generator at its in-flight bound) | p50 / p99 | RSS median first half / second half / peak | RSS flat |\n|---|---|---|---|---|---|---|\n'
    printf '| %s | %s | %s | %s | %s / %s ms | %s / %s / %s MB | %s |\n' "$statuses" "$non200" "$errors" "$skipped" "$p50" "$p99" "$first_half" "$second_half" "$peak" "$flat"
    printf '\nRSS samples (MB, every 10 s): %s\n' "$(paste -sd' ' "$work/rss.txt")"
} >>docs/performance.md
[ "$non200" = "0" ] && [ "$errors" = "0" ] && [ "$flat" = "yes" ]

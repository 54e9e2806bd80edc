#!/usr/bin/env bash
# Ingest benchmark: the database's own ceiling for one-transaction-per-report, against the service's
# group commit, over real HTTP on loopback. Prints the figures and the service/naive ratio and appends
# the run to docs/performance.md. Give it the machine to itself.
#
#   bench/ingest.sh                      # defaults below
#   SECONDS_PER_RUN=20 bench/ingest.sh   # shorter
#   CITUS=0 bench/ingest.sh              # without section 5, the same service on a Citus cluster
#
# Section 5 starts a Citus 13.2 cluster (a coordinator and two workers, ../shared/citus) on this
# machine and runs the service at the best connection count on one node and on the cluster, back to
# back, with the CPU each PostgreSQL node spends per 1,000 reports and the two-phase commits.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_bench}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
PORT=${PORT:-18099}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-30}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-15}
WARM_UP_SECONDS=${WARM_UP_SECONDS:-5}
CLIENT_COUNTS=${CLIENT_COUNTS:-"1 2 4 8 16 32"}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-"128 256 512 1024"}
INSTANCES=${INSTANCES:-100000}
export BENCH_INSTANCES=$INSTANCES BENCH_FIXTURES=tests/fixtures

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v pgbench >/dev/null || { echo "pgbench is needed (postgresql-client)"; exit 1; }

echo "== building (release)"
cargo build --release --quiet --bin telemetry-server --example loadgen
BIN=target/release/telemetry-server
LOADGEN=target/release/examples/loadgen

work=$(mktemp -d)
server_pid=""
citus_dir=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$citus_dir" ] && ../shared/citus/cluster.sh stop "$citus_dir" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

reset_db() {
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    DATABASE_URL=$BENCH_URL "$BIN" migrate >/dev/null
}
rows() { psql -qtA "$BENCH_URL" -c "SELECT count(*) FROM reports"; }
# The value of NAME=... in a result line: field NAME "$line".
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

sync_commit=$(psql -qtA "$ADMIN_URL" -c "SHOW synchronous_commit")
[ "$sync_commit" = "on" ] || { echo "synchronous_commit must be on (it is $sync_commit)"; exit 1; }

# Every measured run below starts on an empty database, so that no run inherits the tables, dirty
# pages or checkpoint debt of the one before it; the soak (bench/soak.sh) covers a growing database.
echo "== 1. naive ceiling: pgbench, one transaction per report"
naive_payload=$(python3 - <<'PY'
import json
def literal(path):
    metrics = json.load(open(path))["reports"][0]["metrics"]
    return "'" + json.dumps(metrics).replace("'", "''") + "'"
# Packed once, as the service packs each report before it reaches the database
# (src/stored_metrics.rs): the naive writer is a client that does the same.
print("""CREATE TABLE bench_payload AS
SELECT kind, metric_digest(p.keys) AS keys, p.short_values, p.value_digests, p.nul_escaped,
       ARRAY(SELECT metric_digest(v) FROM unnest(p.long_values || p.keys) AS v) AS entry_digests,
       p.long_values || p.keys AS entry_values
FROM (VALUES (1, %s::jsonb), (2, %s::jsonb)) AS m(kind, metrics), pack_metrics(m.metrics) AS p;""" % (
    literal("tests/fixtures/pmm-generic-report-1.json"), literal("tests/fixtures/telemetry-agent-ps.json")))
PY
)
cat > "$work/naive.sql" <<'SQL'
\set instance random(1, :instances)
\set kind random(1, 5)
\set bump random(0, 99)
\set minor 30 + mod(:instance, 10) + case when :bump < 3 then 1 else 0 end
\set hi random(0, 281474976710655)
\set lo random(0, 4294967295)
BEGIN;
-- The re-send check needs the instance's lock, as the service's (src/store/queries/lock_instances.sql).
SELECT pg_advisory_xact_lock(7310, hashtext(('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))));
WITH previous AS (
    SELECT version FROM instances
    WHERE instance_id = ('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))::uuid
      AND product_family = 'PRODUCT_FAMILY_PS'
    FOR UPDATE
)
INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))::uuid, 'PRODUCT_FAMILY_PS',
       version, '8.0.' || :minor, now(),
       (lpad(to_hex(:lo), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(:hi), 12, '0'))::uuid
FROM previous WHERE version <> '8.0.' || :minor;
INSERT INTO instances (instance_id, product_family, first_seen, last_seen, version, version_seen_at,
                       country_code, report_count, last_received_at, first_day)
VALUES (('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))::uuid, 'PRODUCT_FAMILY_PS',
        now(), now(), '8.0.' || :minor, now(), 'US', 1, now(), (now() AT TIME ZONE 'UTC')::date)
ON CONFLICT (instance_id, product_family) DO UPDATE SET
    last_seen = excluded.last_seen, version = excluded.version, version_seen_at = excluded.version_seen_at,
    country_code = excluded.country_code, report_count = instances.report_count + 1,
    last_received_at = excluded.last_received_at;
-- The report's key list and long values, once per instance and month, then its row.
INSERT INTO report_metric_values (arrived_month, instance_id, digest, value)
SELECT DISTINCT date_trunc('month', now() AT TIME ZONE 'UTC')::date,
       ('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))::uuid, e.digest, e.value
FROM bench_payload, unnest(entry_digests, entry_values) AS e(digest, value)
WHERE kind = CASE WHEN :kind = 1 THEN 1 ELSE 2 END
ON CONFLICT DO NOTHING;
INSERT INTO report_rows (report_id, instance_id, product_family, created_at, received_at, version, country_code,
                         up_duration_seconds, protocol, metric_keys, metric_values, metric_digests,
                         metric_nul_escaped)
SELECT (lpad(to_hex(:lo), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(:hi), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))::uuid, 'PRODUCT_FAMILY_PS',
       now(), now(), '8.0.' || :minor, 'US', NULL, 'GenericReport', keys, short_values,
       value_digests, nul_escaped
FROM bench_payload
WHERE kind = CASE WHEN :kind = 1 THEN 1 ELSE 2 END
  AND NOT EXISTS (
      SELECT FROM report_rows
      WHERE instance_id = ('00000000-0000-4000-8000-' || lpad(to_hex(:instance), 12, '0'))::uuid
        AND report_id = (lpad(to_hex(:lo), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(:hi), 12, '0'))::uuid);
END;
SQL
best_tps=0; best_clients=0
for clients in $CLIENT_COUNTS; do
    reset_db
    psql -q "$BENCH_URL" <<<"$naive_payload"
    tps=$(pgbench -n -f "$work/naive.sql" -D instances="$INSTANCES" -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" \
          -T "$PGBENCH_SECONDS" "$BENCH_URL" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    printf '   %3s clients: %8.1f tx/s\n' "$clients" "$tps"
    if awk "BEGIN{exit !($tps > $best_tps)}"; then best_tps=$tps; best_clients=$clients; fi
done
echo "   best: $best_tps reports/s at $best_clients clients"

start_server() {
    DATABASE_URL=${SERVER_DATABASE_URL:-$BENCH_URL} LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn "$BIN" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0
        sleep 0.2
    done
    echo "service did not start:"; cat "$work/server.log"; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status"; }
# The highest peak RSS over every service started so far.
note_peak_rss() { rss=$(awk -v now="$(peak_rss_mb)" -v seen="$rss" 'BEGIN{print (now > seen) ? now : seen}'); }

echo "== 2. service maximum: wrk, best of $WRK_CONNECTIONS connections, ${SECONDS_PER_RUN}s each"
# A closed loop's rate is its connections over its latency, and the service's latency is mostly the
# wait for a batch's commit, so more connections mean fuller batches: like pgbench's client counts
# above, the best count is taken.
service_rate=0; best_connections=0; wrk_ok=0; wrk_new_rows=0; rss=0
for connections in $WRK_CONNECTIONS; do
    reset_db
    start_server
    rows_before=$(rows)
    wrk -t2 -c"$connections" -d"${SECONDS_PER_RUN}s" --latency -s bench/ingest.lua "http://127.0.0.1:$PORT" >"$work/wrk.txt"
    sleep 1
    rows_after=$(rows)
    result=$(grep WRK_RESULT "$work/wrk.txt")
    ok=$(field ok "$result")
    other=$(field other "$result")
    errors=$(field errors "$result")
    us=$(field duration_us "$result")
    rate=$(awk "BEGIN{printf \"%.1f\", $ok / ($us / 1000000)}")
    wrk_ok=$((wrk_ok + ok)); wrk_new_rows=$((wrk_new_rows + rows_after - rows_before))
    printf '   %4s connections: %8s reports/s acknowledged, %s other answers, %s socket errors, %s new rows\n' \
        "$connections" "$rate" "$other" "$errors" "$((rows_after - rows_before))"
    if awk "BEGIN{exit !($rate > $service_rate)}"; then service_rate=$rate; best_connections=$connections; fi
    note_peak_rss
    stop_server
done
echo "   best: $service_rate reports/s at $best_connections connections"

echo "== 3. latency at half that rate, open loop, ${SECONDS_PER_RUN}s after ${WARM_UP_SECONDS}s of warm-up"
half_rate=$(awk "BEGIN{printf \"%d\", $service_rate / 2}")
reset_db
start_server
# A few seconds at the same rate first, not counted: the generator opens its connections and each
# database session prepares and plans its statements once.
"$LOADGEN" --url "http://127.0.0.1:$PORT" --rate "$half_rate" --seconds "$WARM_UP_SECONDS" \
    --instances "$INSTANCES" >/dev/null
rows_before=$(rows)
"$LOADGEN" --url "http://127.0.0.1:$PORT" --rate "$half_rate" --seconds "$SECONDS_PER_RUN" \
    --instances "$INSTANCES" --acknowledged-out "$work/acknowledged.txt" >"$work/loadgen.txt"
sleep 1
rows_after=$(rows)
result=$(grep LOADGEN_RESULT "$work/loadgen.txt")
lg_ok=$(field ok "$result")
lg_statuses=$(field statuses "$result")
p50=$(field p50_ms "$result")
p99=$(field p99_ms "$result")
max=$(field max_ms "$result")
lg_new_rows=$((rows_after - rows_before))
note_peak_rss
echo "   at $half_rate/s: p50 ${p50} ms, p99 ${p99} ms, max ${max} ms; answers $lg_statuses; $lg_new_rows new rows"

echo "== 4. nothing acknowledged is missing"
# wrk drops the answers still in flight when its time is up, so its phase can only show rows >= 200s;
# the open-loop phase awaits every answer, so there each acknowledged id is looked up.
missing=$(psql -qtA "$BENCH_URL" <<SQL | tail -n 1
CREATE TEMP TABLE acked (id uuid);
\\copy acked FROM '$work/acknowledged.txt'
SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM report_rows r WHERE r.report_id = a.id);
SQL
)
ack_total=$((wrk_ok + lg_ok)); new_total=$((wrk_new_rows + lg_new_rows))
if [ "$missing" = "0" ] && [ "$lg_ok" -eq "$lg_new_rows" ] && [ "$wrk_new_rows" -ge "$wrk_ok" ]; then verdict="ok"; else verdict="MISMATCH"; fi
echo "   wrk: $wrk_ok 200s, $wrk_new_rows new rows (the difference: answers wrk dropped at its deadline)"
echo "   open loop: $lg_ok 200s, $lg_new_rows new rows, $missing acknowledged ids missing → $verdict"

citus_rate=""
if [ "${CITUS:-1}" != 0 ] && [ -d ../shared/citus ]; then
    echo "== 5. one node against a Citus cluster (2 workers), $best_connections connections, ${SECONDS_PER_RUN}s each"
    # The open-loop phase's service is still running; each run below starts its own.
    stop_server
    ../shared/citus/install.sh >/dev/null
    citus_dir=$(mktemp -d /tmp/citus-bench.XXXXXX); chmod 755 "$citus_dir"
    citus_port=${CITUS_PORT:-25433}
    ../shared/citus/cluster.sh start "$citus_dir" "$citus_port" 2 >/dev/null
    # Two-phase commits stay in pg_dist_transaction for the count below.
    psql -qX -h 127.0.0.1 -p "$citus_port" -U postgres -c "ALTER SYSTEM SET citus.recover_2pc_interval = -1" \
        -c "SELECT pg_reload_conf()" >/dev/null
    citus_ports=$(seq "$citus_port" $((citus_port + 2)))
    CITUS_URL="postgres://postgres@127.0.0.1:$citus_port/$BENCH_DB?sslmode=disable"
    # As docs/deployment.md (Citus) sets a database up: on every node, then distributed.
    citus_reset_db() {
        local admin=(psql -qX -h 127.0.0.1 -p "$citus_port" -U postgres)
        PGOPTIONS="-c citus.enable_create_database_propagation=on" "${admin[@]}" \
            -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB" >/dev/null
        for p in $citus_ports; do
            psql -qX -h 127.0.0.1 -p "$p" -U postgres -d "$BENCH_DB" -c "CREATE EXTENSION citus" >/dev/null
        done
        "${admin[@]}" -d "$BENCH_DB" -c "SELECT citus_set_coordinator_host('127.0.0.1', $citus_port)" >/dev/null
        for p in $(seq $((citus_port + 1)) $((citus_port + 2))); do
            "${admin[@]}" -d "$BENCH_DB" -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null
        done
        DATABASE_URL=$CITUS_URL "$BIN" migrate --distribute >/dev/null
    }
    # CPU seconds a PostgreSQL cluster has spent: its postmaster, the backends it reaped, and the
    # live ones (utime, stime, cutime, cstime from /proc; 100 ticks a second).
    node_cpu() {
        local postmaster
        postmaster=$(head -1 "$1/postmaster.pid")
        { cat "/proc/$postmaster/stat"; for c in $(pgrep -P "$postmaster"); do cat "/proc/$c/stat" 2>/dev/null; done; } |
            awk '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { printf "%.2f", t / 100 }'
    }
    single_data=$(psql -qtA "$ADMIN_URL" -c "SHOW data_directory")
    # One run: the rate, and the CPU each PostgreSQL cluster in $nodes spent per 1,000 new rows.
    measured_run() {
        local url=$1; shift
        local nodes=("$@") before=() after=() i
        SERVER_DATABASE_URL=$url start_server
        for i in "${!nodes[@]}"; do before[i]=$(node_cpu "${nodes[i]}"); done
        rows_before=$(psql -qtA "$url" -c "SELECT count(*) FROM reports")
        wrk -t2 -c"$best_connections" -d"${SECONDS_PER_RUN}s" -s bench/ingest.lua "http://127.0.0.1:$PORT" >"$work/wrk.txt"
        sleep 1
        rows_after=$(psql -qtA "$url" -c "SELECT count(*) FROM reports")
        for i in "${!nodes[@]}"; do after[i]=$(node_cpu "${nodes[i]}"); done
        stop_server
        result=$(grep WRK_RESULT "$work/wrk.txt")
        run_new=$((rows_after - rows_before))
        run_rate=$(awk "BEGIN{printf \"%.1f\", $(field ok "$result") / ($(field duration_us "$result") / 1000000)}")
        run_cpu=""
        for i in "${!nodes[@]}"; do
            run_cpu="$run_cpu $(awk "BEGIN{printf \"%.2f\", (${after[i]} - ${before[i]}) * 1000 / $run_new}")"
        done
    }
    reset_db
    measured_run "$BENCH_URL" "$single_data"
    single_rate=$run_rate; single_cpu=$run_cpu
    echo "   one node:      $single_rate reports/s; CPU s per 1,000 reports:$single_cpu"
    citus_reset_db
    measured_run "$CITUS_URL" $(for p in $citus_ports; do echo "$citus_dir/node$p"; done)
    citus_rate=$run_rate; citus_cpu=$run_cpu
    two_phase=$(psql -qtA "$CITUS_URL" -c "SELECT count(DISTINCT split_part(gid, '_', 3) || '_' || split_part(gid, '_', 4)) FROM pg_dist_transaction")
    citus_2pc=$(awk "BEGIN{printf \"%.1f\", $two_phase * 1000 / $run_new}")
    echo "   Citus cluster: $citus_rate reports/s; CPU s per 1,000 reports (coordinator, worker, worker):$citus_cpu; $citus_2pc two-phase commits per 1,000 reports"
fi

echo "== 6. result"
ratio=$(awk "BEGIN{printf \"%.2f\", $service_rate / $best_tps}")
echo "   naive ceiling:  $best_tps reports/s (pgbench, $best_clients clients)"
echo "   service:        $service_rate reports/s (wrk, $best_connections connections)"
echo "   service/naive:  $ratio   (target ≥ 3)"
echo "   p99 at half:    $p99 ms  (target < 50)"
echo "   server peak RSS $rss MB  (target < 150)"

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
pg=$(psql -qtA "$ADMIN_URL" -c "SHOW server_version")
pg_settings=$(psql -qtA "$ADMIN_URL" -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
    FROM unnest(ARRAY['shared_buffers', 'max_wal_size', 'wal_compression', 'backend_flush_after',
                      'shared_preload_libraries']) AS name")
{
    [ -s docs/performance.md ] || printf '# Performance\n'
    printf '\n## Ingest run %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'Machine: %s cores (%s), %s; PostgreSQL %s, synchronous_commit=%s, %s; release build; loopback.\n' \
        "$(nproc)" "$cpu" "$mem" "$pg" "$sync_commit" "$pg_settings"
    printf 'Writer settings: defaults (see `telemetry-server --help`). %s s per run, %s instance ids; every run starts on an empty database.\n\n' "$SECONDS_PER_RUN" "$INSTANCES"
    printf '| measure | value |\n|---|---|\n'
    printf '| naive ceiling (pgbench, 1 tx per report, best of %s clients) | %s reports/s at %s clients |\n' "$CLIENT_COUNTS" "$best_tps" "$best_clients"
    printf '| service maximum (wrk, best of %s connections) | %s reports/s at %s connections |\n' "$WRK_CONNECTIONS" "$service_rate" "$best_connections"
    printf '| **service/naive** | **%s** (target ≥ 3) |\n' "$ratio"
    printf '| latency at %s req/s (half the maximum, after %s s of warm-up): p50 / p99 / max | %s / %s / %s ms (p99 target < 50) |\n' "$half_rate" "$WARM_UP_SECONDS" "$p50" "$p99" "$max"
    printf '| answers at half rate | %s |\n' "$lg_statuses"
    printf '| 200 responses vs new rows (wrk phase; wrk drops answers in flight at its deadline) | %s vs %s |\n' "$wrk_ok" "$wrk_new_rows"
    printf '| 200 responses vs new rows (open-loop phase), acknowledged ids missing | %s vs %s, %s missing: %s |\n' "$lg_ok" "$lg_new_rows" "$missing" "$verdict"
    printf '| server peak RSS | %s MB (target < 150) |\n' "$rss"
    if [ -n "$citus_rate" ]; then
        printf '| one node at %s connections: rate; PostgreSQL CPU s per 1,000 reports | %s reports/s;%s |\n' "$best_connections" "$single_rate" "$single_cpu"
        printf '| Citus 13.2, coordinator + 2 workers on this machine, same connections: rate; CPU s per 1,000 reports (coordinator, worker, worker); two-phase commits per 1,000 reports | %s reports/s;%s; %s |\n' "$citus_rate" "$citus_cpu" "$citus_2pc"
    fi
} >>docs/performance.md
echo "   appended to docs/performance.md"
[ "$verdict" = "ok" ]

#!/usr/bin/env bash
# Growth benchmark (issue #19): the service on a database that already holds months of reports.
# Pre-fills a database with DAYS days of history for INSTANCES installations through
# `telemetry-server generate` (about 10 million reports at the defaults), then, for each PostgreSQL
# settings profile, on a fresh copy of that database: an open-loop soak at RATE for SOAK_SECONDS with
# latency and service RSS per minute, WAL and disk written per 1,000 reports, bytes per report, and
# one retention run that drops the oldest month. Prints the figures and appends one section per
# profile to docs/performance.md. Give it the machine to itself: it restarts the local PostgreSQL
# cluster to apply each profile, and restores the original settings on exit.
#
#   RATE=3000 bench/growth.sh                              # 150,000 instances x 100 days, both profiles
#   RATE=200 INSTANCES=2000 DAYS=40 SOAK_SECONDS=60 PROFILES=default bench/growth.sh    # small scale
#   REUSE_PREFILL=1 KEEP_PREFILL=1 RATE=3000 bench/growth.sh   # soak again on an earlier pre-fill
#   PREFILL_ONLY=1 bench/growth.sh                         # only the pre-fill, kept for REUSE_PREFILL
#
# Profiles: "default" is PostgreSQL's built-in value (pg_settings.boot_val) of every setting in
# MANAGED_SETTINGS, whatever postgresql.conf says; "recommended" is the same with
# RECOMMENDED_SETTINGS (docs/deployment.md, "PostgreSQL settings") on top.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_growth}
PREFILL_DB=${PREFILL_DB:-${BENCH_DB}_prefill}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
PREFILL_URL=${ADMIN_URL%/*}/$PREFILL_DB
PORT=${PORT:-18096}
# The generator's installations report on about 0.68 of their days (some appear during the period,
# some stop, trials last days, agents skip some): 150,000 x 100 days is about 10 million reports.
INSTANCES=${INSTANCES:-150000}
DAYS=${DAYS:-100}
SEED=${SEED:-1}
# The generator writes each day in batches of disjoint installations, CONCURRENCY at a time. On
# 2 cores, 20,000 installations x 4 days: 500 x 4 wrote 7,300 reports/s, 1,000 x 4 6,700, 500 x 8
# 5,900, generate's default 5,000 x 2 1,600 to 3,000.
BATCH_SIZE=${BATCH_SIZE:-500}
CONCURRENCY=${CONCURRENCY:-4}
PREFILL_ONLY=${PREFILL_ONLY:-0}
# The pre-fill is the long part (40 minutes on 2 cores): it can run ahead, while the maximum that sets
# RATE is still being measured.
if [ "$PREFILL_ONLY" = 1 ]; then RATE=0; KEEP_PREFILL=1; fi
RATE=${RATE:?set RATE to half the maximum from bench/ingest.sh}
SOAK_SECONDS=${SOAK_SECONDS:-600}
INTERVAL_SECONDS=${INTERVAL_SECONDS:-60}
PROFILES=${PROFILES:-"default recommended"}
REUSE_PREFILL=${REUSE_PREFILL:-0}
KEEP_PREFILL=${KEEP_PREFILL:-0}
OUT=${OUT:-docs/performance.md}
ram_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024}' /proc/meminfo)
# docs/deployment.md: shared_buffers "the usual quarter of the server's memory", max_wal_size 4GB or
# more, wal_compression lz4, backend_flush_after 256kB.
RECOMMENDED_SETTINGS=${RECOMMENDED_SETTINGS:-"shared_buffers=$((ram_mb / 4))MB max_wal_size=4GB wal_compression=lz4 backend_flush_after=256kB"}
# The host's part of the recommended settings (docs/deployment.md, "PostgreSQL settings"): the kernel
# writes dirty pages back in the background once 16 MB have gathered, instead of 10 % of memory.
RECOMMENDED_SYSCTL=${RECOMMENDED_SYSCTL:-"vm.dirty_background_bytes=16777216"}
# Its progress a line per day; not the warning for every batch statement over a second.
GENERATE_LOG=${GENERATE_LOG:-"info,sqlx::query=error"}
# The retention run's steps, each logged with its time.
RETENTION_LOG=${RETENTION_LOG:-"warn,telemetry_server::retention=info,telemetry_server::store::expiry=info,sqlx::query=error"}
# Every setting a profile decides. autovacuum is here because some set-ups turn it off in
# postgresql.conf, and a soak on months of data should meet it as a deployment would.
MANAGED_SETTINGS="shared_buffers max_wal_size checkpoint_timeout wal_compression backend_flush_after synchronous_commit autovacuum $(tr ' ' '\n' <<<"$RECOMMENDED_SETTINGS" | cut -d= -f1 | tr '\n' ' ')"
MANAGED_SETTINGS=$(tr ' ' '\n' <<<"$MANAGED_SETTINGS" | awk 'NF && !seen[$0]++' | paste -sd' ')

# Without the notices of DROP ... IF EXISTS.
sql() { PGOPTIONS="-c client_min_messages=warning" psql -X -qtA -v ON_ERROR_STOP=1 "$@"; }
admin() { sql "$ADMIN_URL" "$@"; }
bench() { sql "$BENCH_URL" "$@"; }
prefill() { sql "$PREFILL_URL" "$@"; }
# The value of NAME=... in a result line: field NAME "$line".
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
now_s() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN{printf "%.1f", b - a}'; }
# The months' own size, PostgreSQL's way of counting it: heap + TOAST, and indexes, of the reports'
# rows and of their key lists and long metric values (report_metric_values) together.
partition_sizes() {
    "$@" -F ' ' -c "SELECT coalesce(sum(pg_table_size(t)), 0), coalesce(sum(pg_indexes_size(t)), 0)
                    FROM report_partitions,
                         LATERAL (VALUES (partition::regclass), (to_regclass(values_partition))) AS m(t)
                    WHERE t IS NOT NULL"
}

for tool in psql pg_ctlcluster pg_isready curl ss sysctl; do
    command -v "$tool" >/dev/null || { echo "$tool is needed"; exit 1; }
done

echo "== building (release)"
cargo build --release --quiet --bin telemetry-server --example loadgen
BIN=target/release/telemetry-server
LOADGEN=target/release/examples/loadgen

cluster=${PG_CLUSTER:-$(admin -c "SHOW cluster_name" | tr '/' ' ')}
[ -n "$cluster" ] || { echo "set PG_CLUSTER to the local cluster (\"15 main\"): pg_ctlcluster restarts it"; exit 1; }

work=$(mktemp -d)
server_pid=""; loadgen_pid=""
# What postgresql.auto.conf said about each managed setting before this run: restored on exit.
original=$(admin -F ' ' -c "SELECT name, setting FROM pg_file_settings
    WHERE sourcefile LIKE '%postgresql.auto.conf' AND name = ANY (string_to_array('$MANAGED_SETTINGS', ' '))")

wait_ready() {
    for _ in $(seq 1 150); do admin -c "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "PostgreSQL did not come back"; exit 1
}
# Reload, and restart the cluster when a setting needs it (shared_buffers).
reload_or_restart() {
    admin -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    if [ "$(admin -c "SELECT bool_or(pending_restart) FROM pg_settings")" = "t" ]; then
        echo "   restarting PostgreSQL cluster $cluster"
        pg_ctlcluster --skip-systemctl-redirect $cluster restart
        wait_ready
    fi
}
# The kernel's writeback threshold before this run, restored on exit and under the default profile.
# Setting either of the two zeroes the other, so the one in use is the one restored.
if [ "$(sysctl -n vm.dirty_background_bytes)" != 0 ]; then
    original_sysctl="vm.dirty_background_bytes=$(sysctl -n vm.dirty_background_bytes)"
else
    original_sysctl="vm.dirty_background_ratio=$(sysctl -n vm.dirty_background_ratio)"
fi
# Sets each name=value of $1 with sysctl; says so when this host does not allow it (not root, or a
# container that cannot change them).
apply_sysctl() {
    local setting
    for setting in $1; do
        sysctl -qw "$setting" >/dev/null 2>&1 || echo "   could not set $setting: this profile runs without it"
    done
}
restore_settings() {
    local name
    apply_sysctl "$original_sysctl"
    for name in $MANAGED_SETTINGS; do admin -c "ALTER SYSTEM RESET $name" >/dev/null; done
    while read -r name value; do
        [ -n "$name" ] && admin -c "ALTER SYSTEM SET $name = '$value'" >/dev/null
    done <<<"$original"
    reload_or_restart
}
cleanup() {
    local status=$?
    set +e
    if [ -n "$loadgen_pid" ]; then kill "$loadgen_pid" 2>/dev/null; wait "$loadgen_pid" 2>/dev/null; fi
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    echo "== restoring the original PostgreSQL settings"
    restore_settings
    admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    [ "$KEEP_PREFILL" = 1 ] || admin -c "DROP DATABASE IF EXISTS $PREFILL_DB WITH (FORCE)" >/dev/null
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apply_profile() {
    local profile=$1 name value
    case "$profile" in default|recommended) ;; *) echo "unknown profile $profile"; exit 1 ;; esac
    echo "== profile $profile"
    for name in $MANAGED_SETTINGS; do
        value=$(admin -c "SELECT boot_val FROM pg_settings WHERE name = '$name'")
        admin -c "ALTER SYSTEM SET $name = '$value'" >/dev/null
    done
    if [ "$profile" = recommended ]; then
        for setting in $RECOMMENDED_SETTINGS; do
            admin -c "ALTER SYSTEM SET ${setting%%=*} = '${setting#*=}'" >/dev/null
        done
        apply_sysctl "$RECOMMENDED_SYSCTL"
    else
        apply_sysctl "$original_sysctl"
    fi
    reload_or_restart
    settings=$(admin -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
        FROM unnest(string_to_array('$MANAGED_SETTINGS', ' ')) AS name")
    settings+="; host: vm.dirty_background_bytes=$(sysctl -n vm.dirty_background_bytes), vm.dirty_background_ratio=$(sysctl -n vm.dirty_background_ratio)"
    echo "   $settings"
}

# History that starts on the first of a month, so that the oldest partition holds a whole month and
# the retention run below drops that; it ends before today, so that the soak's month is its own.
end_date=${END_DATE:-$(python3 - "$DAYS" <<'PY'
import datetime, sys
days = int(sys.argv[1])
latest_first = datetime.date.today() - datetime.timedelta(days=days)
print(latest_first.replace(day=1) + datetime.timedelta(days=days - 1))
PY
)}

if [ "$REUSE_PREFILL" = 1 ]; then
    echo "== reusing the pre-filled database $PREFILL_DB"
    prefill_note=$(admin -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$PREFILL_DB'")
    [ -n "$prefill_note" ] || { echo "$PREFILL_DB has no note of how it was filled; run without REUSE_PREFILL"; exit 1; }
else
    # The pre-fill runs under the recommended settings when they are measured at all: the history
    # of a deployment that follows docs/deployment.md, and hours less on a small machine.
    case " $PROFILES " in *" recommended "*) apply_profile recommended ;; *) apply_profile "${PROFILES%% *}" ;; esac
    prefill_settings=$settings
    echo "== pre-filling $PREFILL_DB: $INSTANCES instances x $DAYS days through $end_date (batch $BATCH_SIZE, concurrency $CONCURRENCY)"
    free_mb=$(df -Pm "$(admin -c 'SHOW data_directory')" | awk 'NR==2 {print $4}')
    # About 0.7 reports per installation-day, 1.4 KB a report (docs/performance.md), two copies (the
    # pre-fill and a profile's), and room for the WAL.
    needed_mb=$(( INSTANCES * DAYS * 1000 * 2 / 1048576 + 8192 ))
    [ "$free_mb" -ge "$needed_mb" ] || { echo "not enough disk: about $needed_mb MB needed, $free_mb MB free"; exit 1; }
    admin -c "DROP DATABASE IF EXISTS $PREFILL_DB WITH (FORCE)" >/dev/null
    # Every month's partitions before the first batch, rather than by the first batch of each month.
    DATABASE_URL=$PREFILL_URL RUST_LOG=warn "$BIN" migrate >/dev/null
    prefill -c "SELECT create_report_partitions(date '$end_date' - $((DAYS - 1)), now())" >/dev/null
    started=$(now_s)
    DATABASE_URL=$PREFILL_URL RUST_LOG=$GENERATE_LOG "$BIN" generate --instances "$INSTANCES" \
        --days "$DAYS" --end-date "$end_date" --seed "$SEED" --batch-size "$BATCH_SIZE" \
        --concurrency "$CONCURRENCY" | tee "$work/generate.txt"
    generate_s=$(since "$started")
    generated=$(grep '^generated' "$work/generate.txt")
    prefill_reports=$(awk '{print $2}' <<<"$generated")
    generate_rate=$(sed -n 's/.*(\([0-9]*\) reports\/s).*/\1/p' <<<"$generated")
    echo "   $prefill_reports reports in $generate_s s, $generate_rate reports/s (rollups included)"
    # The generator notes every day it wrote as stale, and its last refresh rebuilt them all; the
    # notes stay ten minutes for transactions in flight, and none are. Left in, they would make the
    # timed retention run below rebuild the whole history when the soak is short.
    prefill -c "DELETE FROM analytics.stale_days"
    # What autovacuum would otherwise do to every partition at once during the first soak: a freshly
    # loaded table is vacuumed for its inserts, and set visible, once.
    started=$(now_s)
    prefill -c "VACUUM (ANALYZE)"
    vacuum_s=$(since "$started")
    echo "   VACUUM (ANALYZE) after the pre-fill: $vacuum_s s"
    prefill_note="instances=$INSTANCES days=$DAYS end_date=$end_date seed=$SEED reports=$prefill_reports generate_s=$generate_s generate_rate=$generate_rate batch_size=$BATCH_SIZE concurrency=$CONCURRENCY vacuum_s=$vacuum_s settings=${prefill_settings// /}"
    admin -c "COMMENT ON DATABASE $PREFILL_DB IS '$prefill_note'" >/dev/null
fi
echo "   $prefill_note"
[ "$PREFILL_ONLY" = 1 ] && { echo "== kept $PREFILL_DB for REUSE_PREFILL=1"; exit 0; }

echo "== bytes per report in the pre-filled database"
read -r prefill_rows table_bytes index_bytes <<<"$(prefill -F ' ' -c "SELECT count(*) FROM reports") $(partition_sizes prefill)"
# Per family: the stored rows of report_rows and of report_metric_values (pg_column_size of the whole
# row counts each value as stored, compressed or not, TOAST included) over the family's reports,
# scaled by the heap's and TOAST's overhead over all rows (page and tuple headers, free space, TOAST
# chunks), plus the index bytes per report, the same for every family.
by_family() {
    "$@" -F ' ' -c "
    WITH families AS (
        SELECT DISTINCT ON (instance_id) instance_id,
               CASE WHEN product_family = 'PRODUCT_FAMILY_PMM' THEN 'PMM' ELSE 'agent' END AS family
        FROM instances ORDER BY instance_id, product_family
    ),
    per_family AS (
        SELECT CASE WHEN product_family = 'PRODUCT_FAMILY_PMM' THEN 'PMM' ELSE 'agent' END AS family,
               count(*) AS reports, sum(pg_column_size(r.*)) AS row_bytes
        FROM report_rows r GROUP BY 1
    ),
    values_per_family AS (
        SELECT f.family, sum(pg_column_size(v.*)) AS value_bytes
        FROM report_metric_values v JOIN families f USING (instance_id) GROUP BY 1
    )
    SELECT family, reports, round((row_bytes + coalesce(value_bytes, 0)) / reports),
           round((row_bytes + coalesce(value_bytes, 0)) / reports * $table_bytes
                     / ((SELECT sum(row_bytes) FROM per_family) + (SELECT coalesce(sum(value_bytes), 0) FROM values_per_family))
                 + $index_bytes::numeric / (SELECT sum(reports) FROM per_family))
    FROM per_family LEFT JOIN values_per_family USING (family) ORDER BY family"
}
family_sizes=$(by_family prefill)
prefill_total_per_report=$(( (table_bytes + index_bytes) / prefill_rows ))
prefill_partitions=$(prefill -c "SELECT count(*) FROM report_partitions WHERE total_bytes > 0")
echo "   $prefill_rows reports in $prefill_partitions partitions: $prefill_total_per_report bytes per report ($(( table_bytes / prefill_rows )) heap + TOAST, $(( index_bytes / prefill_rows )) indexes)"
family_md=""
while read -r family reports row_bytes on_disk; do
    echo "   $family-sized: $reports reports, stored row $row_bytes bytes, about $on_disk bytes on disk with indexes"
    family_md+="$family $reports reports: row $row_bytes B, about $on_disk B on disk with indexes; "
done <<<"$family_sizes"

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
pg=$(admin -c "SHOW server_version")
start_server() {
    # No retention run during the soak: it is timed on its own below.
    DATABASE_URL=$BENCH_URL LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn RETENTION_INTERVAL_SECS=0 \
        "$BIN" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0; sleep 0.2; done
    echo "service did not start:"; cat "$work/server.log"; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
# Cluster-wide counters: WAL position and data pages written by checkpoints, the background writer
# and the backends. Nothing else should run on the cluster meanwhile.
counters() {
    bench -F ' ' -c "SELECT pg_current_wal_lsn(), pg_database_size(current_database()),
        buffers_checkpoint + buffers_clean + buffers_backend, current_setting('block_size')::int
        FROM pg_stat_bgwriter"
}
median() { awk 'NF' | sort -n | awk '{v[NR]=$1} END {print (NR ? v[int((NR+1)/2)] : 0)}'; }
peak() { awk 'NF && $1 > m {m = $1} END {print m + 0}'; }
failed=0

for profile in $PROFILES; do
    apply_profile "$profile"
    echo "== copying the pre-filled database to $BENCH_DB"
    admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    started=$(now_s)
    # FILE_COPY copies the files and checkpoints; WAL_LOG would write the whole database to the WAL.
    admin -c "CREATE DATABASE $BENCH_DB TEMPLATE $PREFILL_DB STRATEGY FILE_COPY"
    echo "   copied in $(since "$started") s"
    start_server

    echo "== soak: $RATE requests/s for $SOAK_SECONDS s, open loop"
    soak_from=$(bench -c "SELECT now()")
    read -r lsn_before size_before pages_before block_size <<<"$(counters)"
    read -r table_before index_before <<<"$(partition_sizes bench)"
    soak_started=$(now_s)
    "$LOADGEN" --url "http://127.0.0.1:$PORT" --rate "$RATE" --seconds "$SOAK_SECONDS" \
        --interval-seconds "$INTERVAL_SECONDS" >"$work/loadgen.txt" 2>"$work/loadgen.err" &
    loadgen_pid=$!
    : >"$work/rss.txt"
    # Every 5 s: the service's RSS, the HTTP connections open to it and its database sessions, to
    # tell memory the service keeps from memory that follows how many connections the load holds.
    while kill -0 "$loadgen_pid" 2>/dev/null; do
        http_connections=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
        db_sessions=$(admin -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$BENCH_DB' AND pid <> pg_backend_pid()")
        awk -v t="$(since "$soak_started")" -v h="$http_connections" -v d="$db_sessions" \
            '/VmRSS/ {printf "%s %.1f %s %s\n", t, $2/1024, h, d}' "/proc/$server_pid/status" >>"$work/rss.txt"
        sleep 5
    done
    wait "$loadgen_pid"
    loadgen_pid=""
    peak_rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status")
    stop_server
    read -r lsn_after size_after pages_after _ <<<"$(counters)"
    read -r table_after index_after <<<"$(partition_sizes bench)"
    inserted=$(bench -c "SELECT count(*) FROM reports WHERE received_at >= '$soak_from'")
    wal_bytes=$(bench -c "SELECT pg_wal_lsn_diff('$lsn_after', '$lsn_before')::bigint")
    result=$(grep LOADGEN_RESULT "$work/loadgen.txt")
    ok=$(field ok "$result"); statuses=$(field statuses "$result"); errors=$(field errors "$result")
    skipped=$(field skipped "$result")
    non200=$(tr ',' '\n' <<<"$statuses" | awk -F: '$1!=200 {n+=$2} END {print n+0}')
    per_k() { awk -v b="$1" -v n="$inserted" 'BEGIN{printf "%.0f", n ? b / n * 1000 : 0}'; }
    wal_per_k=$(per_k "$wal_bytes")
    db_per_k=$(per_k "$((size_after - size_before))")
    pages_per_k=$(per_k "$(( (pages_after - pages_before) * block_size ))")
    soak_per_report=$(awk -v b="$(( table_after + index_after - table_before - index_before ))" -v n="$inserted" \
        'BEGIN{printf "%.0f", n ? b / n : 0}')

    # Per interval: the loadgen's interval lines, and the RSS samples taken in that interval.
    # The values of column $2 of rss.txt (RSS, HTTP connections, sessions) sampled in interval $1.
    samples() { awk -v i="$1" -v s="$INTERVAL_SECONDS" -v c="$2" 'int($1 / s) == i {print $c}' "$work/rss.txt"; }
    minutes_md=""; minute_medians=""
    echo "   interval | sent | ok | skipped | p50 ms | p99 ms | max ms | RSS MB median / peak | HTTP connections median / peak | database sessions peak"
    while read -r line; do
        index=$(field index "$line")
        rss_median=$(samples "$index" 2 | median); rss_peak=$(samples "$index" 2 | peak)
        http_median=$(samples "$index" 3 | median); http_peak=$(samples "$index" 3 | peak)
        db_peak=$(samples "$index" 4 | peak)
        row="$((index + 1)) | $(field sent "$line") | $(field ok "$line") | $(field skipped "$line") | $(field p50_ms "$line") | $(field p99_ms "$line") | $(field max_ms "$line") | $rss_median / $rss_peak | $http_median / $http_peak | $db_peak"
        echo "   $row"
        minutes_md+="| $row |"$'\n'
        [ "$index" -ge 1 ] && minute_medians+="$rss_median"$'\n'
    done < <(grep LOADGEN_INTERVAL "$work/loadgen.txt")
    # Flat: after the first interval (connections opening, statements prepared) every interval's
    # median RSS within ±10 % of the median of them all.
    rss_flat=$(awk -v m="$(median <<<"$minute_medians")" 'NF {lo = (lo == "" || $1 < lo) ? $1 : lo; hi = ($1 > hi) ? $1 : hi}
        END {if (lo == "") print "n/a (one interval)"; else printf "%s (%.1f to %.1f MB around %.1f)\n",
             (lo >= 0.9 * m && hi <= 1.1 * m) ? "yes" : "no", lo, hi, m}' <<<"$minute_medians")
    # The open loop awaits every answer, so each 200 is a stored report and nothing else is.
    if [ "$non200" = 0 ] && [ "$errors" = 0 ] && [ "$ok" = "$inserted" ]; then verdict=ok; else verdict=MISMATCH; failed=1; fi
    echo "   whole soak: $result"
    echo "   $ok answered 200, $inserted reports stored: $verdict; RSS flat within ±10 %: $rss_flat; peak $peak_rss MB"
    echo "   per 1,000 reports: WAL $wal_per_k bytes, database growth $db_per_k bytes, data pages written $pages_per_k bytes; partitions grew $soak_per_report bytes per report"

    echo "== retention"
    # First a run that only brings the rollups up to date (the days since the pre-fill), so that the
    # timed run below is the expiry itself plus an up-to-date refresh, as in the hourly job.
    started=$(now_s)
    DATABASE_URL=$BENCH_URL RUST_LOG=$RETENTION_LOG RETENTION_DAYS=0 "$BIN" retention >/dev/null
    catch_up_s=$(since "$started")
    # The cutoff (now - RETENTION_DAYS) falls on the first day after the oldest month, so that run
    # drops that month's partition and deletes row by row only the next month's reports that arrived
    # before the cutoff's time of day.
    IFS='|' read -r oldest retention_days <<<"$(bench -c "
        SELECT partition, floor(extract(epoch FROM now() - arrived_before) / 86400)::int
        FROM report_partitions ORDER BY arrived_from LIMIT 1")"
    [ "$retention_days" -ge 1 ] || { echo "the oldest partition ($oldest) ended less than a day ago"; exit 1; }
    # Counted in the pre-fill, which the soak left alone: counting the copy would bring the partition
    # into memory just before the run that reads it once more before dropping it.
    oldest_rows=$(prefill -c "SELECT count(*) FROM $oldest")
    partitions_before=$(bench -c "SELECT count(*) FROM report_partitions")
    started=$(now_s)
    retention_out=$(DATABASE_URL=$BENCH_URL RUST_LOG=$RETENTION_LOG RETENTION_DAYS=$retention_days "$BIN" retention)
    retention_s=$(since "$started")
    removed=$(sed -n 's/.*deleted \([0-9]*\) raw reports.*/\1/p' <<<"$retention_out")
    # Seconds spent in the steps whose log lines match $1 (src/retention.rs, src/store/expiry.rs).
    step_s() {
        sed 's/\x1b\[[0-9;]*m//g' <<<"$retention_out" | { grep "$1" || true; } \
            | sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' | awk '{ms += $1} END {printf "%.1f", ms / 1000}'
    }
    refresh_step_s=$(step_s 'rollup refresh finished')
    drop_step_s=$(step_s 'expired month dropped')
    rows_step_s=$(step_s 'expired reports deleted row by row')
    partitions_after=$(bench -c "SELECT count(*) FROM report_partitions")
    echo "   rollup catch-up run: $catch_up_s s"
    echo "   RETENTION_DAYS=$retention_days: $retention_out"
    echo "   removed $removed reports in $retention_s s: $oldest ($oldest_rows reports) dropped, $((removed - oldest_rows)) deleted row by row; partitions $partitions_before -> $partitions_after"
    echo "   steps: rollup refresh $refresh_step_s s, dropping the month $drop_step_s s, deleting row by row $rows_step_s s"

    {
        [ -s "$OUT" ] || printf '# Performance\n'
        printf '\n## Growth run %s, profile %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$profile"
        printf 'Machine: %s cores (%s), %s; PostgreSQL %s: %s; release build; loopback. `bench/growth.sh` with RATE=%s SOAK_SECONDS=%s.\n\n' \
            "$(nproc)" "$cpu" "$mem" "$pg" "$settings" "$RATE" "$SOAK_SECONDS"
        printf 'Pre-fill: %s.\n\n' "$prefill_note"
        printf '| measure | value |\n|---|---|\n'
        printf '| reports before the soak | %s in %s partitions |\n' "$prefill_rows" "$prefill_partitions"
        printf '| bytes per report, pre-filled (partitions with TOAST and indexes / reports) | %s (%s heap + TOAST, %s indexes) |\n' \
            "$prefill_total_per_report" "$(( table_bytes / prefill_rows ))" "$(( index_bytes / prefill_rows ))"
        printf '| bytes per report by family, pre-filled (stored row scaled by heap overhead, plus indexes) | %s |\n' "${family_md%; }"
        printf '| soak answers | %s, %s non-200, %s client errors, %s sends skipped |\n' "$statuses" "$non200" "$errors" "$skipped"
        printf '| soak latency, whole run: p50 / p99 / max | %s / %s / %s ms |\n' "$(field p50_ms "$result")" "$(field p99_ms "$result")" "$(field max_ms "$result")"
        printf '| 200 answers vs reports stored by the soak | %s vs %s: %s |\n' "$ok" "$inserted" "$verdict"
        printf '| per 1,000 reports: WAL / database growth / data pages written (cluster-wide) | %s / %s / %s bytes |\n' "$wal_per_k" "$db_per_k" "$pages_per_k"
        printf '| partition growth per soak report (fixture bodies, 20 %% PMM) | %s bytes |\n' "$soak_per_report"
        printf '| service RSS flat within ±10 %% after the first interval; peak | %s; %s MB |\n' "$rss_flat" "$peak_rss"
        printf '| retention run dropping %s (%s reports), RETENTION_DAYS=%s | %s s, %s reports removed (%s row by row); rollup catch-up run before it %s s |\n' \
            "$oldest" "$oldest_rows" "$retention_days" "$retention_s" "$removed" "$((removed - oldest_rows))" "$catch_up_s"
        printf '| that run'"'"'s steps: rollup refresh / dropping the month (its two partitions) / deleting row by row | %s / %s / %s s |\n' \
            "$refresh_step_s" "$drop_step_s" "$rows_step_s"
        printf '\nPer %s s of the soak (requests by scheduled start):\n\n' "$INTERVAL_SECONDS"
        printf '| interval | sent | ok | skipped | p50 ms | p99 ms | max ms | RSS MB median / peak | HTTP connections median / peak | database sessions peak |\n|---|---|---|---|---|---|---|---|---|---|\n'
        printf '%s' "$minutes_md"
    } >>"$OUT"
    echo "   appended to $OUT"
    admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
done
[ "$failed" = 0 ]

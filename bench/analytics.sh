#!/usr/bin/env bash
# Analytics benchmark: a year of history for 100,000 instances, a full rollup rebuild, and each
# view's typical query timed with EXPLAIN ANALYZE. Writes the "## Analytics queries" section of
# docs/performance.md (replacing an earlier one) and prints it.
#
#   bench/analytics.sh                                   # 100,000 instances x 365 days
#   INSTANCES=5000 DAYS=60 bench/analytics.sh            # small scale, a few minutes
#   BIN=/path/to/telemetry-server bench/analytics.sh     # a binary built earlier
#
# How the volume is reached: RAW_INSTANCES installations (default INSTANCES / 20) are generated for
# DAYS days by `telemetry-server generate`, i.e. through store::insert_reports like real ingest, and
# measured for storage per million reports. Their per-instance daily facts (analytics.instance_days),
# instances and upgrades are then copied under new instance IDs until there are INSTANCES x DAYS
# instance-days, the volume 36.5 million daily reports leave behind. The views never read raw
# reports, only these tables and the rollups built from them, so this is the volume they face; storing
# 36.5 million raw reports as well (about 50 GB at the measured size) would only cost disk and hours.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_analytics_bench}
BENCH_URL=${ADMIN_URL%/*}/$BENCH_DB
INSTANCES=${INSTANCES:-100000}
DAYS=${DAYS:-365}
RAW_INSTANCES=${RAW_INSTANCES:-$(( (INSTANCES + 19) / 20 ))}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
OUT=${OUT:-docs/performance.md}

psql_q() { psql -X -qtA -v ON_ERROR_STOP=1 "$BENCH_URL" "$@"; }
seconds_since() { echo "$(( $(date +%s) - $1 ))"; }

if [ -z "${BIN:-}" ]; then
    echo "== building (release)"
    cargo build --release --quiet --bin telemetry-server
    BIN=target/release/telemetry-server
fi
export RETENTION_INTERVAL_SECS=0 RUST_LOG=warn

echo "== 1. generating $RAW_INSTANCES instances x $DAYS days through store::insert_reports"
psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
started=$(date +%s)
DATABASE_URL=$BENCH_URL "$BIN" generate --instances "$RAW_INSTANCES" --days "$DAYS" --seed "$SEED"
generate_s=$(seconds_since "$started")
psql_q -c "VACUUM ANALYZE"
# reports is partitioned: the parent has no storage, its size is the sum of its partitions'.
read -r raw_reports raw_days reports_bytes raw_db_bytes days_bytes <<<"$(psql_q -F ' ' -c "
    SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM analytics.instance_days),
           (SELECT sum(total_bytes) FROM report_partitions), pg_database_size(current_database()),
           pg_total_relation_size('analytics.instance_days')")"
target_days=$(( INSTANCES * DAYS ))
copies=$(( (target_days + raw_days - 1) / raw_days - 1 ))
echo "   $raw_reports reports, $raw_days instance-days; $copies copies reach $target_days instance-days"

needed_mb=$(( days_bytes * (copies + 1) * 2 / 1048576 + 2048 ))
free_mb=$(df -Pm "$(psql_q -c 'SHOW data_directory')" 2>/dev/null | awk 'NR==2 {print $4}' || echo 0)
if [ "${free_mb:-0}" -gt 0 ] && [ "$free_mb" -lt "$needed_mb" ]; then
    echo "not enough disk: about $needed_mb MB needed, $free_mb MB free"; exit 1
fi

echo "== 2. copying the per-instance facts $copies times"
started=$(date +%s)
psql_q <<SQL
SET synchronous_commit = off;
SET maintenance_work_mem = '1GB';
CREATE FUNCTION pg_temp.copy_id(id uuid, copy int) RETURNS uuid LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN copy = 0 THEN id ELSE md5(id::text || '/' || copy)::uuid END;
ALTER TABLE analytics.instance_days DROP CONSTRAINT instance_days_pkey;
INSERT INTO analytics.instance_days
SELECT d.day, pg_temp.copy_id(d.instance_id, k), d.product_family, d.report_count, d.first_report_at,
       d.last_report_at, pg_temp.copy_id(d.last_report_id, k), d.first_up_duration_seconds, d.first_version,
       d.version, d.country_code, d.distribution_method, d.alerting_enabled, d.stt_enabled,
       d.advisors_disabled, d.backup_management_enabled, d.dbaas_enabled, d.access_control_enabled,
       d.updates_disabled, d.grafana_users, d.nodes, d.services, d.mysql_versions, d.mongodb_versions,
       d.postgresql_versions
FROM analytics.instance_days d CROSS JOIN generate_series(1, $copies) AS k;
ALTER TABLE analytics.instance_days ADD PRIMARY KEY (day, instance_id, product_family);
INSERT INTO instances
SELECT pg_temp.copy_id(i.instance_id, k), i.product_family, i.first_seen, i.last_seen, i.version,
       i.version_seen_at, i.country_code, i.report_count, i.last_received_at, i.first_day
FROM instances i CROSS JOIN generate_series(1, $copies) AS k;
INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
SELECT pg_temp.copy_id(u.instance_id, k), u.product_family, u.from_version, u.to_version, u.upgraded_at,
       pg_temp.copy_id(u.report_id, k)
FROM upgrades u CROSS JOIN generate_series(1, $copies) AS k;
ANALYZE analytics.instance_days;
VACUUM ANALYZE instances;
VACUUM ANALYZE upgrades;
SQL
copy_s=$(seconds_since "$started")

echo "== 3. rebuilding every rollup from scratch (the retention job's first run)"
psql_q -c "DELETE FROM analytics.rollup_state"
started=$(date +%s)
DATABASE_URL=$BENCH_URL "$BIN" retention
rebuild_s=$(seconds_since "$started")
psql_q -c "ANALYZE"

read -r instance_days active_days total_instances upgrade_rows days_total_bytes rollup_bytes db_bytes snapshot <<<"$(psql_q -F ' ' -c "
    SELECT (SELECT count(*) FROM analytics.instance_days),
           (SELECT sum(active_instances) FROM analytics.daily_activity),
           (SELECT count(*) FROM instances), (SELECT count(*) FROM upgrades),
           pg_total_relation_size('analytics.instance_days'),
           (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'analytics' AND c.relkind = 'r' AND c.relname <> 'instance_days'),
           pg_database_size(current_database()),
           (SELECT day FROM analytics.snapshot_day)")"
active_now=$(psql_q -c "SELECT sum(active_instances) FROM analytics.active_instances_daily WHERE day = '$snapshot'")

# The steady state: an hourly run rebuilds the current day (and yesterday, for late reports); a
# report dated a month back makes it rebuild 30 days.
time_sql() {
    local started_ns
    started_ns=$(date +%s%N)
    psql_q -c "BEGIN" -c "$1" -c "ROLLBACK" >/dev/null
    echo $(( ($(date +%s%N) - started_ns) / 1000000 ))
}
incremental_ms=$(time_sql "SELECT analytics.refresh_days('$snapshot'::date, '$snapshot'::date + 1)")
month_ms=$(time_sql "SELECT analytics.refresh_days('$snapshot'::date - 28, '$snapshot'::date + 1)")

echo "== 4. timing the typical queries (median of $RUNS EXPLAIN ANALYZE runs after a warm-up)"
queries=$(cat <<SQL
active_instances_daily|SELECT day, product_family, active_instances FROM analytics.active_instances_daily WHERE day > '$snapshot'::date - 365 ORDER BY day
active_instances_weekly|SELECT * FROM analytics.active_instances_weekly ORDER BY week_start, product_family
active_instances_monthly|SELECT * FROM analytics.active_instances_monthly ORDER BY month_start, product_family
active_instances() 7-day window, 30 days|SELECT * FROM analytics.active_instances(7, '$snapshot'::date - 29, '$snapshot')
active_instances() 1-day window, 1 day|SELECT * FROM analytics.active_instances(1, '$snapshot', '$snapshot')
releases|SELECT * FROM analytics.releases WHERE product_family = 'PRODUCT_FAMILY_PMM' ORDER BY version_sort_key(version)
release_uptake_weekly|SELECT * FROM analytics.release_uptake_weekly WHERE product_family = 'PRODUCT_FAMILY_PMM' ORDER BY version, week_start
instances_older_than() 90 days|SELECT * FROM analytics.instances_older_than('PRODUCT_FAMILY_PMM', '3.0.0', '$snapshot'::date - 89, '$snapshot')
product_lines|SELECT * FROM analytics.product_lines ORDER BY product_family, line
product_lines_daily, PMM over a year|SELECT day, line, active_instances, share_of_family FROM analytics.product_lines_daily WHERE product_family = 'PRODUCT_FAMILY_PMM' AND day > '$snapshot'::date - 365
monitored_database_lines|SELECT * FROM analytics.monitored_database_lines ORDER BY database, line
monitored_database_lines_daily, MySQL over a year|SELECT day, line, services FROM analytics.monitored_database_lines_daily WHERE database = 'mysql' AND day > '$snapshot'::date - 365
monitored_database_versions|SELECT * FROM analytics.monitored_database_versions ORDER BY database, services DESC
pillar_versions|SELECT * FROM analytics.pillar_versions ORDER BY product_family, active_instances DESC
upgrade_paths|SELECT * FROM analytics.upgrade_paths WHERE product_family = 'PRODUCT_FAMILY_PMM' ORDER BY upgrades DESC LIMIT 20
release_adoption|SELECT * FROM analytics.release_adoption WHERE product_family = 'PRODUCT_FAMILY_PMM' ORDER BY first_seen
pmm_feature_adoption|SELECT * FROM analytics.pmm_feature_adoption
pmm_feature_adoption_daily, a year|SELECT day, feature, share_of_active FROM analytics.pmm_feature_adoption_daily WHERE day > '$snapshot'::date - 365
pmm_usage|SELECT * FROM analytics.pmm_usage
countries|SELECT * FROM analytics.countries WHERE product_family = 'PRODUCT_FAMILY_PMM' ORDER BY active_instances DESC LIMIT 20
countries_daily, one country over a year|SELECT day, product_family, active_instances FROM analytics.countries_daily WHERE country_code = 'DE' AND day > '$snapshot'::date - 365
grace_period_by_version|SELECT * FROM analytics.grace_period_by_version ORDER BY version_sort_key(pmm_version)
SQL
)
rows_md=""
slowest=0
while IFS='|' read -r name sql; do
    psql_q -c "$sql" >/dev/null
    times=()
    for _ in $(seq "$RUNS"); do
        times+=("$(psql_q -c "EXPLAIN (ANALYZE, FORMAT JSON) $sql" | python3 -c '
import json, sys
plan = json.load(sys.stdin)[0]
print("%.1f %d" % (plan["Planning Time"] + plan["Execution Time"], plan["Plan"]["Actual Rows"]))')")
    done
    read -r ms rows <<<"$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")"
    printf '   %-50s %8s ms %7s rows\n' "$name" "$ms" "$rows"
    slowest=$(python3 -c "print(max($slowest, $ms))")
    rows_md+="| \`$name\` | \`${sql//|/\\|}\` | $ms | $rows |"$'\n'
done <<<"$queries"

per_million() { python3 -c "print(round($1 / $2 * 1e6 / 1048576))"; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
section=$(cat <<MD
## Analytics queries

Measured by \`bench/analytics.sh\` on $(date -u +%Y-%m-%d) (INSTANCES=$INSTANCES DAYS=$DAYS RAW_INSTANCES=$RAW_INSTANCES):
$(nproc) cores ($cpu), PostgreSQL $(psql_q -c 'SHOW server_version'), default settings
(shared_buffers $(psql_q -c 'SHOW shared_buffers'), work_mem $(psql_q -c 'SHOW work_mem')), other work running on the machine.

**Volume.** $RAW_INSTANCES installations over $DAYS days were generated through \`store::insert_reports\`
($raw_reports reports, $raw_days instance-days, ${generate_s} s including the rollups), then their
per-instance daily facts, instances and upgrades were copied under new IDs: $instance_days instance-days
(the rows $target_days daily reports leave behind), $total_instances instances, $upgrade_rows upgrades,
$active_now instances active on the snapshot day $snapshot. The views read only these tables and the
rollups, never raw reports, so this is the volume they face. Raw reports for all of it were not stored:
at the size measured below they would take about $(python3 -c "print(round($reports_bytes / $raw_reports * $target_days / 1073741824))") GB (this machine had $(( free_mb / 1024 )) GB free),
and at the $(( raw_reports / (generate_s > 0 ? generate_s : 1) )) reports/s the generator reached through \`store::insert_reports\`
here, $(python3 -c "print(round($target_days / max($raw_reports / max($generate_s, 1), 1) / 3600, 1))") hours of ingest.

**Storage.**

| what | size |
|---|---|
| raw reports, table + TOAST + indexes | $(per_million "$reports_bytes" "$raw_reports") MB per million reports |
| whole database after generating (reports, instances, upgrades, instance_days, rollups) | $(per_million "$raw_db_bytes" "$raw_reports") MB per million reports |
| \`analytics.instance_days\` (kept forever) | $(per_million "$days_total_bytes" "$instance_days") MB per million instance-days |
| all \`analytics.daily_*\` rollups for $DAYS days | $(( rollup_bytes / 1048576 )) MB |
| benchmark database in total | $(( db_bytes / 1048576 )) MB |

**Rollup maintenance.** Copying took ${copy_s} s. Rebuilding every rollup from scratch ($active_days
active instance-days) took ${rebuild_s} s; a steady-state run of the retention job rebuilds today and
yesterday in ${incremental_ms} ms, and a late report dated a month back costs ${month_ms} ms.

**Typical queries** (planning + execution, median of $RUNS runs after a warm-up; target under 1 s;
slowest $slowest ms):

| view or function | query | ms | rows |
|---|---|---:|---:|
$rows_md
MD
)

SECTION=$section python3 - "$OUT" <<'PY'
import os, re, sys
path = sys.argv[1]
section = os.environ["SECTION"].rstrip() + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Performance\n"
pattern = re.compile(r"^## Analytics queries\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
echo
echo "$section"

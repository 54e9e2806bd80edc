-- The analysts' views exactly as their comments promise, on the paths a one-report-a-day history
-- never takes (issue 20):
--   - An instance keeps the version of its latest report that carried one, and the country of its
--     latest report that resolved to one, as instances.version and instances.country_code do: a
--     later report without a version or from an unresolved address changes neither, in every rollup.
--   - Every version reported counts, not only each instance-day's last: instance_days.extra_versions
--     keeps the versions of a day's other reports, so a release installed and replaced within hours
--     is in releases, release_uptake_weekly and release_adoption.
--   - analytics.history_start() is the first day of the history; the views mark the figures its
--     first 29 days leave uncertain (left-censored), because installations that existed before it
--     show up there as new.
--   - Published percentiles are rounded (analytics.round_percentile).
-- Existing rollups were built by the old rules: they are rebuilt from scratch by the next refresh.

-- ---------------------------------------------------------------------------------------------
-- Every version of a day's reports
-- ---------------------------------------------------------------------------------------------

ALTER TABLE analytics.instance_days ADD COLUMN extra_versions text[];
COMMENT ON COLUMN analytics.instance_days.extra_versions IS
    'Versions the day''s other reports carried, besides first_version and version, e.g. a release '
    'installed and replaced within the day; NULL when there were none (the usual case). Together, '
    'first_version, version and extra_versions are every version the instance reported that day.';

-- Days folded before this migration: from their reports while they are kept, and from the upgrades
-- (kept forever) for the days whose reports retention already deleted. Only a day with several
-- reports can have had a version besides its first and its last.
UPDATE analytics.instance_days d
SET extra_versions = s.extra
FROM (
    SELECT d.day, d.instance_id, d.product_family,
           array_agg(DISTINCT seen.version ORDER BY seen.version)
               FILTER (WHERE seen.version IS DISTINCT FROM d.first_version
                         AND seen.version IS DISTINCT FROM d.version) AS extra
    FROM analytics.instance_days d
    CROSS JOIN LATERAL (
        SELECT r.version FROM reports r
        WHERE r.instance_id = d.instance_id AND r.product_family = d.product_family
          AND r.created_at BETWEEN d.first_report_at AND d.last_report_at AND r.version IS NOT NULL
        UNION
        SELECT u.to_version FROM upgrades u
        WHERE u.instance_id = d.instance_id AND u.product_family = d.product_family
          AND u.upgraded_at BETWEEN d.first_report_at AND d.last_report_at
    ) AS seen(version)
    WHERE d.report_count > 1
    GROUP BY d.day, d.instance_id, d.product_family
) s
WHERE d.day = s.day AND d.instance_id = s.instance_id AND d.product_family = s.product_family
  AND s.extra IS NOT NULL;

-- The refresh looks up the version and country an instance carries into its first day in the
-- window from its earlier days; analysts reading one instance's history take the same path.
CREATE INDEX instance_days_instance_idx ON analytics.instance_days (instance_id, product_family, day);

-- ---------------------------------------------------------------------------------------------
-- History start, left censoring, rounding
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION analytics.history_start() RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT min(day) FROM analytics.instance_days);
COMMENT ON FUNCTION analytics.history_start() IS
    'The first UTC day of the history: the earliest day any stored report was created. Installations '
    'that existed before it have their first report here on or after it, so they count as new; see '
    'analytics.left_censored().';

CREATE FUNCTION analytics.left_censored(day date) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN day < analytics.history_start() + (analytics.default_window_days() - 1);
COMMENT ON FUNCTION analytics.left_censored(date) IS
    'True when the 30-day activity window of day reaches back before analytics.history_start(): '
    'instances active before the history began may not have reported again yet, so on such a day '
    'active counts can be too low, and new instances, first sightings of versions and first reports '
    'can be installations, releases and reports older than the history.';

CREATE FUNCTION analytics.round_percentile(value double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round(value::numeric, 1)::double precision;
COMMENT ON FUNCTION analytics.round_percentile(double precision) IS
    'How the views publish a percentile (median, p90): to one decimal, without floating-point noise.';

-- ---------------------------------------------------------------------------------------------
-- The refresh: carried version and country, every reported version
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION analytics.refresh_days(from_day date, to_day date) RETURNS bigint
    LANGUAGE plpgsql
    SET work_mem = '128MB'
AS $$
DECLARE
    active_instance_days bigint;
BEGIN
    -- A refresh calls this once per chunk in one transaction. Dropped tables would keep their files
    -- until the commit; tables created in this transaction are truncated in place instead.
    IF to_regclass('pg_temp.refresh_active') IS NULL THEN
        CREATE TEMP TABLE refresh_active (
            day date, instance_id uuid, product_family text, days_since_report integer, reported boolean,
            is_new boolean, first_version text, first_up_duration_seconds bigint, version text,
            day_version text, extra_versions text[],
            country_code text, alerting_enabled boolean, advisors_enabled boolean,
            backup_management_enabled boolean, dbaas_enabled boolean, access_control_enabled boolean,
            updates_disabled boolean, grafana_users integer, nodes integer, services integer,
            mysql_versions text[], mongodb_versions text[], postgresql_versions text[]
        ) ON COMMIT DROP;
        CREATE TEMP TABLE refresh_services (
            day date, instance_id uuid, database text, version text, services bigint
        ) ON COMMIT DROP;
    ELSE
        TRUNCATE refresh_active, refresh_services;
    END IF;

    -- Each instance-day row stands for the instance on the days from its own day until the instance
    -- reports again or the window runs out, so every active instance appears exactly once per day,
    -- carrying the state of its latest report on or before that day. Version and country are those
    -- of its latest report that had one (as in instances): a run of days without one keeps the value
    -- the run started with, and a run that starts the window looks further back, once per instance.
    INSERT INTO refresh_active (
        day, instance_id, product_family, days_since_report, reported, is_new, first_version,
        first_up_duration_seconds, version, day_version, extra_versions, country_code, alerting_enabled,
        advisors_enabled, backup_management_enabled, dbaas_enabled, access_control_enabled,
        updates_disabled, grafana_users, nodes, services, mysql_versions, mongodb_versions,
        postgresql_versions)
    SELECT r.day + g.offset_days AS day, r.instance_id, r.product_family,
           g.offset_days AS days_since_report,
           g.offset_days = 0 AS reported,
           g.offset_days = 0 AND r.day = r.first_day AS is_new,
           r.first_version, r.first_up_duration_seconds, r.held_version, r.version, r.extra_versions,
           r.held_country,
           r.alerting_enabled, coalesce(NOT r.advisors_disabled, r.stt_enabled) AS advisors_enabled,
           r.backup_management_enabled, r.dbaas_enabled, r.access_control_enabled, r.updates_disabled,
           r.grafana_users, r.nodes, r.services, r.mysql_versions, r.mongodb_versions, r.postgresql_versions
    FROM (
        SELECT c.*, (i.first_seen AT TIME ZONE 'UTC')::date AS first_day,
               coalesce(
                   first_value(c.version) OVER (PARTITION BY c.instance_id, c.product_family, c.version_run
                                                ORDER BY c.day),
                   CASE WHEN c.version_run = 0 AND i.version IS NOT NULL THEN
                       (SELECT p.version FROM analytics.instance_days p
                        WHERE p.instance_id = c.instance_id AND p.product_family = c.product_family
                          AND p.day <= from_day - analytics.default_window_days() AND p.version IS NOT NULL
                        ORDER BY p.day DESC LIMIT 1)
                   END) AS held_version,
               coalesce(
                   first_value(c.country_code) OVER (PARTITION BY c.instance_id, c.product_family, c.country_run
                                                     ORDER BY c.day),
                   CASE WHEN c.country_run = 0 AND i.country_code IS NOT NULL THEN
                       (SELECT p.country_code FROM analytics.instance_days p
                        WHERE p.instance_id = c.instance_id AND p.product_family = c.product_family
                          AND p.day <= from_day - analytics.default_window_days() AND p.country_code IS NOT NULL
                        ORDER BY p.day DESC LIMIT 1)
                   END) AS held_country
        FROM (
            SELECT d.*, lead(d.day) OVER w AS next_day,
                   count(d.version) OVER w AS version_run,
                   count(d.country_code) OVER w AS country_run
            FROM analytics.instance_days d
            WHERE d.day > from_day - analytics.default_window_days() AND d.day <= to_day
            WINDOW w AS (PARTITION BY d.instance_id, d.product_family ORDER BY d.day)
        ) c
        JOIN instances i USING (instance_id, product_family)
        -- Keeps the look-ups at one per instance-day row, not one per day it stands for.
        OFFSET 0
    ) r
    CROSS JOIN LATERAL generate_series(
        greatest(r.day, from_day) - r.day,
        least(coalesce(r.next_day, to_day + 1), r.day + analytics.default_window_days(), to_day + 1) - 1 - r.day
    ) AS g(offset_days);
    GET DIAGNOSTICS active_instance_days = ROW_COUNT;
    ANALYZE refresh_active;

    DELETE FROM analytics.daily_activity WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_activity
    WITH ages AS (
        SELECT day, product_family, days_since_report, count(*) AS instances,
               count(*) FILTER (WHERE is_new) AS new_instances
        FROM refresh_active
        GROUP BY day, product_family, days_since_report
    ),
    windows AS (
        SELECT a.day, a.product_family, w.window_days,
               sum(a.instances) FILTER (WHERE a.days_since_report < w.window_days) AS active
        FROM ages a
        CROSS JOIN generate_series(1, analytics.default_window_days()) AS w(window_days)
        GROUP BY a.day, a.product_family, w.window_days
    )
    SELECT w.day, w.product_family,
           max(w.active) FILTER (WHERE w.window_days = analytics.default_window_days()),
           coalesce(max(w.active) FILTER (WHERE w.window_days = 1), 0),
           (SELECT coalesce(sum(a.new_instances), 0) FROM ages a
            WHERE a.day = w.day AND a.product_family = w.product_family),
           array_agg(coalesce(w.active, 0)::integer ORDER BY w.window_days)
    FROM windows w
    GROUP BY w.day, w.product_family;

    DELETE FROM analytics.daily_versions WHERE day BETWEEN from_day AND to_day;
    -- Active instances count under the version they hold; reporting instances under every version
    -- they reported that day, so a version that was never an instance's last of a day still has
    -- its days (with no active instance). Lines are worked out once per distinct version:
    -- release_line() is not cheap enough per row.
    INSERT INTO analytics.daily_versions
    WITH held AS (
        SELECT day, product_family, version, count(*) AS active
        FROM refresh_active
        WHERE version IS NOT NULL
        GROUP BY day, product_family, version
    ),
    reported AS (
        SELECT a.day, a.product_family, s.version, count(*) AS reporting
        FROM refresh_active a
        CROSS JOIN LATERAL (
            SELECT DISTINCT v FROM unnest(ARRAY[a.first_version, a.day_version] || a.extra_versions) AS v
            WHERE v IS NOT NULL
        ) AS s(version)
        WHERE a.reported
        GROUP BY a.day, a.product_family, s.version
    ),
    counts AS (
        SELECT day, product_family, version, coalesce(h.active, 0) AS active, coalesce(r.reporting, 0) AS reporting
        FROM held h
        FULL JOIN reported r USING (day, product_family, version)
    ),
    lines AS MATERIALIZED (
        SELECT product_family, version, analytics.release_line(product_family, version) AS line
        FROM (SELECT DISTINCT product_family, version FROM counts) AS versions
    )
    SELECT c.day, c.product_family, c.version, l.line, c.active, c.reporting
    FROM counts c
    JOIN lines l USING (product_family, version);

    DELETE FROM analytics.daily_countries WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_countries
    SELECT day, product_family, country_code, count(*)
    FROM refresh_active
    GROUP BY day, product_family, country_code;

    DELETE FROM analytics.daily_new_instances WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_new_instances
    SELECT day, product_family, first_version, count(*), count(first_up_duration_seconds),
           count(*) FILTER (WHERE first_up_duration_seconds < 86400)
    FROM refresh_active
    WHERE is_new
    GROUP BY day, product_family, first_version;

    DELETE FROM analytics.daily_pmm_features WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_pmm_features
    SELECT a.day, f.feature, count(*), count(f.enabled), count(*) FILTER (WHERE f.enabled)
    FROM refresh_active a
    CROSS JOIN LATERAL (VALUES
        ('alerting', a.alerting_enabled),
        ('advisors', a.advisors_enabled),
        ('backup_management', a.backup_management_enabled),
        ('dbaas', a.dbaas_enabled),
        ('access_control', a.access_control_enabled),
        ('updates_disabled', a.updates_disabled)
    ) AS f(feature, enabled)
    WHERE a.product_family = 'PRODUCT_FAMILY_PMM'
    GROUP BY a.day, f.feature;

    DELETE FROM analytics.daily_pmm_usage WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_pmm_usage
    SELECT a.day, u.measure, count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY u.value),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY u.value),
           max(u.value)
    FROM refresh_active a
    CROSS JOIN LATERAL (VALUES ('grafana_users', a.grafana_users), ('nodes', a.nodes), ('services', a.services))
        AS u(measure, value)
    WHERE a.product_family = 'PRODUCT_FAMILY_PMM' AND u.value IS NOT NULL
    GROUP BY a.day, u.measure;

    -- One row per server, day and monitored version, so that plain counts are distinct servers.
    INSERT INTO refresh_services
    SELECT a.day, a.instance_id, s.database, s.version, count(*) AS services
    FROM refresh_active a
    CROSS JOIN LATERAL (
        SELECT 'mysql', unnest(a.mysql_versions)
        UNION ALL SELECT 'mongodb', unnest(a.mongodb_versions)
        UNION ALL SELECT 'postgresql', unnest(a.postgresql_versions)
    ) AS s(database, version)
    WHERE a.product_family = 'PRODUCT_FAMILY_PMM'
    GROUP BY a.day, a.instance_id, s.database, s.version;
    ANALYZE refresh_services;

    DELETE FROM analytics.daily_monitored_databases WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_monitored_databases
    SELECT day, database, version, count(*), sum(services)
    FROM refresh_services
    GROUP BY day, database, version;

    DELETE FROM analytics.daily_monitored_database_lines WHERE day BETWEEN from_day AND to_day;
    INSERT INTO analytics.daily_monitored_database_lines
    WITH lines AS MATERIALIZED (
        SELECT database, version, analytics.release_line(database, version) AS line
        FROM (SELECT DISTINCT database, version FROM refresh_services) AS versions
    )
    SELECT day, database, line, count(*), sum(services)
    FROM (
        SELECT s.day, s.database, l.line, s.instance_id, sum(s.services) AS services
        FROM refresh_services s
        JOIN lines l USING (database, version)
        WHERE l.line IS NOT NULL
        GROUP BY s.day, s.database, l.line, s.instance_id
    ) AS per_server
    GROUP BY day, database, line;

    RETURN active_instance_days;
END;
$$;
COMMENT ON FUNCTION analytics.refresh_days(date, date) IS
    'Rebuilds every daily_* rollup for the days from_day..to_day from analytics.instance_days and returns '
    'the number of active instance-days it counted. Idempotent; the retention job calls it for days whose '
    'reports changed, four weeks at a time.';

-- ---------------------------------------------------------------------------------------------
-- Table and view comments for the new rules; views marking left-censored figures
-- ---------------------------------------------------------------------------------------------

COMMENT ON TABLE analytics.daily_versions IS
    'Rollup: per UTC day, active instances by the version of their latest report on or before that day '
    'that carried one (as instances.version), and instances that reported each version that day. '
    'Instances that never sent a version are only in daily_activity.';
COMMENT ON COLUMN analytics.daily_versions.active_instances IS
    'Active instances (30-day window) running this version: of their latest report that carried one. '
    '0 for a version only reported in reports that were not an instance''s last of the day.';
COMMENT ON COLUMN analytics.daily_versions.reporting_instances IS
    'Instances that reported this version on this day, in any of their reports of the day.';
COMMENT ON TABLE analytics.daily_countries IS
    'Rollup: per UTC day, active instances by the country of their latest report on or before that day '
    'that resolved to one (as instances.country_code).';
COMMENT ON COLUMN analytics.daily_countries.country_code IS
    'ISO 3166-1 alpha-2 code; NULL when none of the instance''s reports so far resolved to a country.';

CREATE OR REPLACE VIEW analytics.snapshot_day AS
SELECT complete_through AS day, refreshed_at, analytics.history_start() AS history_start
FROM analytics.rollup_state;
COMMENT ON COLUMN analytics.snapshot_day.history_start IS
    'First UTC day of the history (analytics.history_start()); figures for days before it plus 29 are '
    'left-censored (analytics.left_censored()).';

CREATE OR REPLACE VIEW analytics.active_instances_daily AS
SELECT a.day, a.product_family, a.active_instances, a.reporting_instances, a.new_instances,
       a.day <= s.complete_through AS complete,
       analytics.left_censored(a.day) AS left_censored
FROM analytics.daily_activity a
CROSS JOIN analytics.rollup_state s;
COMMENT ON COLUMN analytics.active_instances_daily.left_censored IS
    'True in the first 29 days of the history (analytics.left_censored()): active_instances may miss '
    'instances that were active before the history began, and new_instances counts installations '
    'older than the history (on its first day, every one that reports).';

CREATE OR REPLACE VIEW analytics.active_instances_weekly AS
WITH weeks AS (
    SELECT date_trunc('week', a.day)::date AS week_start, a.product_family, sum(a.new_instances) AS new_instances
    FROM analytics.daily_activity a
    GROUP BY 1, 2
)
SELECT w.week_start, w.product_family,
       coalesce(e.active_instances, 0) AS active_instances,
       coalesce(p.reporting_instances, 0) AS reporting_instances,
       w.new_instances::integer AS new_instances,
       w.week_start + 6 <= s.complete_through AS complete,
       analytics.left_censored(w.week_start) AS left_censored
FROM weeks w
CROSS JOIN analytics.rollup_state s
LEFT JOIN analytics.daily_activity e
       ON e.product_family = w.product_family AND e.day = least(w.week_start + 6, s.refreshed_through)
LEFT JOIN analytics.period_activity p
       ON p.period = 'week' AND p.period_start = w.week_start AND p.product_family = w.product_family;
COMMENT ON COLUMN analytics.active_instances_weekly.left_censored IS
    'True when the week has a day in the first 29 days of the history (analytics.left_censored()): '
    'new_instances then counts installations older than the history.';

CREATE OR REPLACE VIEW analytics.active_instances_monthly AS
WITH months AS (
    SELECT date_trunc('month', a.day)::date AS month_start, a.product_family, sum(a.new_instances) AS new_instances
    FROM analytics.daily_activity a
    GROUP BY 1, 2
)
SELECT m.month_start, m.product_family,
       coalesce(e.active_instances, 0) AS active_instances,
       coalesce(p.reporting_instances, 0) AS reporting_instances,
       m.new_instances::integer AS new_instances,
       (m.month_start + interval '1 month')::date - 1 <= s.complete_through AS complete,
       analytics.left_censored(m.month_start) AS left_censored
FROM months m
CROSS JOIN analytics.rollup_state s
LEFT JOIN analytics.daily_activity e
       ON e.product_family = m.product_family
      AND e.day = least((m.month_start + interval '1 month')::date - 1, s.refreshed_through)
LEFT JOIN analytics.period_activity p
       ON p.period = 'month' AND p.period_start = m.month_start AND p.product_family = m.product_family;
COMMENT ON COLUMN analytics.active_instances_monthly.left_censored IS
    'True when the month has a day in the first 29 days of the history (analytics.left_censored()): '
    'new_instances then counts installations older than the history.';

CREATE OR REPLACE VIEW analytics.releases AS
WITH history AS (
    SELECT v.product_family, v.version, min(v.day) AS first_seen,
           max(v.day) FILTER (WHERE v.reporting_instances > 0) AS last_reported,
           max(v.active_instances) AS peak_active_instances
    FROM analytics.daily_versions v
    GROUP BY 1, 2
)
SELECT h.product_family, h.version, analytics.release_line(h.product_family, h.version) AS line,
       h.first_seen, h.last_reported,
       coalesce(v.active_instances, 0) AS active_instances,
       round(coalesce(v.active_instances, 0)::numeric / nullif(a.active_instances, 0), 4) AS share_of_family,
       h.peak_active_instances,
       analytics.left_censored(h.first_seen) AS first_seen_censored
FROM history h
CROSS JOIN analytics.rollup_state s
LEFT JOIN analytics.daily_versions v
       ON v.day = s.complete_through AND v.product_family = h.product_family AND v.version = h.version
LEFT JOIN analytics.daily_activity a
       ON a.day = s.complete_through AND a.product_family = h.product_family;
COMMENT ON VIEW analytics.releases IS
    'Every product version ever reported, in any report: when it was first and last seen and how many '
    'active instances run it on the snapshot day. Order versions with ORDER BY version_sort_key(version).';
COMMENT ON COLUMN analytics.releases.active_instances IS
    'Active instances (30-day window) running it on the snapshot day (by their latest report that carried a version).';
COMMENT ON COLUMN analytics.releases.peak_active_instances IS
    'Most active instances that ran it on any day; 0 for a version no instance kept until the end of a day.';
COMMENT ON COLUMN analytics.releases.first_seen_censored IS
    'True when first_seen falls in the first 29 days of the history (analytics.left_censored()): the '
    'version may have been in use before the history began.';

CREATE OR REPLACE VIEW analytics.release_uptake_weekly AS
WITH firsts AS (
    SELECT product_family, version, min(day) AS first_seen
    FROM analytics.daily_versions
    GROUP BY 1, 2
),
weeks AS (
    SELECT f.product_family, f.version, f.first_seen, w.week_start::date AS week_start,
           least(w.week_start::date + 6, s.refreshed_through) AS measured_on
    FROM firsts f
    CROSS JOIN analytics.rollup_state s
    CROSS JOIN LATERAL generate_series(date_trunc('week', f.first_seen), s.refreshed_through, interval '1 week')
        AS w(week_start)
)
SELECT w.product_family, w.version, w.first_seen, w.week_start,
       (w.week_start - date_trunc('week', w.first_seen)::date) / 7 AS weeks_since_first_seen,
       coalesce(v.active_instances, 0) AS active_instances,
       round(coalesce(v.active_instances, 0)::numeric / nullif(a.active_instances, 0), 4) AS share_of_family,
       analytics.left_censored(w.first_seen) AS first_seen_censored
FROM weeks w
LEFT JOIN analytics.daily_versions v
       ON v.day = w.measured_on AND v.product_family = w.product_family AND v.version = w.version
LEFT JOIN analytics.daily_activity a
       ON a.day = w.measured_on AND a.product_family = w.product_family;
COMMENT ON COLUMN analytics.release_uptake_weekly.first_seen IS
    'First UTC day any instance reported this version, in any report.';
COMMENT ON COLUMN analytics.release_uptake_weekly.first_seen_censored IS
    'True when first_seen falls in the first 29 days of the history (analytics.left_censored()): '
    'weeks_since_first_seen may count from too late a week.';

CREATE OR REPLACE VIEW analytics.product_lines_daily AS
SELECT v.day, v.product_family, v.line,
       sum(v.active_instances)::integer AS active_instances,
       round(sum(v.active_instances)::numeric / max(a.active_instances), 4) AS share_of_family
FROM analytics.daily_versions v
JOIN analytics.daily_activity a USING (day, product_family)
WHERE v.active_instances > 0
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW analytics.pillar_versions AS
SELECT v.product_family, v.version, v.line,
       v.active_instances, round(v.active_instances::numeric / a.active_instances, 4) AS share_of_family
FROM analytics.daily_versions v
JOIN analytics.rollup_state s ON v.day = s.complete_through
JOIN analytics.daily_activity a ON a.day = v.day AND a.product_family = v.product_family
WHERE v.product_family NOT IN ('PRODUCT_FAMILY_PMM', 'PRODUCT_FAMILY_EVEREST', 'PRODUCT_FAMILY_INVALID')
  AND v.active_instances > 0;

CREATE OR REPLACE VIEW analytics.pmm_usage_daily AS
SELECT day, measure, servers, analytics.round_percentile(median) AS median,
       analytics.round_percentile(p90) AS p90, max
FROM analytics.daily_pmm_usage;
COMMENT ON COLUMN analytics.pmm_usage_daily.median IS 'Median (interpolated, to one decimal).';
COMMENT ON COLUMN analytics.pmm_usage_daily.p90 IS '90th percentile (interpolated, to one decimal).';

CREATE OR REPLACE VIEW analytics.pmm_usage AS
SELECT u.measure, u.servers, analytics.round_percentile(u.median) AS median,
       analytics.round_percentile(u.p90) AS p90, u.max
FROM analytics.daily_pmm_usage u
JOIN analytics.rollup_state s ON u.day = s.complete_through;
COMMENT ON COLUMN analytics.pmm_usage.median IS 'Median (interpolated, to one decimal).';
COMMENT ON COLUMN analytics.pmm_usage.p90 IS '90th percentile (interpolated, to one decimal).';

CREATE OR REPLACE VIEW analytics.upgrade_paths AS
WITH paths AS (
    SELECT u.product_family, u.from_version, u.to_version, bool_or(u.is_downgrade) AS is_downgrade,
           count(*) AS upgrades,
           count(DISTINCT u.instance_id) AS instances,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY (u.upgraded_at AT TIME ZONE 'UTC')::date - DATE '2000-01-01')
               AS median_day_number,
           min(u.upgraded_at) AS first_upgrade,
           max(u.upgraded_at) AS last_upgrade
    FROM upgrades u
    GROUP BY u.product_family, u.from_version, u.to_version
),
firsts AS (
    SELECT product_family, version, min(day) AS first_seen
    FROM analytics.daily_versions
    GROUP BY 1, 2
)
SELECT p.product_family, p.from_version, p.to_version, p.is_downgrade, p.upgrades, p.instances,
       analytics.round_percentile(p.median_day_number - (f.first_seen - DATE '2000-01-01'))
           AS median_days_after_first_seen,
       p.first_upgrade, p.last_upgrade
FROM paths p
LEFT JOIN firsts f ON f.product_family = p.product_family AND f.version = p.to_version;
COMMENT ON COLUMN analytics.upgrade_paths.median_days_after_first_seen IS
    'Median of days from the first sighting of to_version (any instance) to the change (UTC days, to one decimal).';

CREATE OR REPLACE VIEW analytics.release_adoption AS
WITH firsts AS (
    SELECT product_family, version, min(day) AS first_seen
    FROM analytics.daily_versions
    GROUP BY 1, 2
),
releases AS (
    SELECT f.*,
           lag(f.first_seen) OVER (PARTITION BY f.product_family, analytics.release_line(f.product_family, f.version)
                                   ORDER BY version_sort_key(f.version)) AS previous_first_seen
    FROM firsts f
),
arrivals AS (
    SELECT u.product_family, u.to_version AS version, count(*) AS upgrades,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY (u.upgraded_at AT TIME ZONE 'UTC')::date - DATE '2000-01-01')
               AS median_day_number,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY (u.upgraded_at AT TIME ZONE 'UTC')::date - DATE '2000-01-01')
               AS p90_day_number
    FROM upgrades u
    WHERE NOT u.is_downgrade
    GROUP BY u.product_family, u.to_version
)
SELECT r.product_family, r.version, r.first_seen,
       CASE WHEN NOT analytics.left_censored(r.first_seen) AND NOT analytics.left_censored(r.previous_first_seen)
            THEN r.first_seen - r.previous_first_seen
       END AS days_since_previous_release,
       coalesce(a.upgrades, 0) AS upgrades,
       analytics.round_percentile(a.median_day_number - (r.first_seen - DATE '2000-01-01')) AS median_days_to_upgrade,
       analytics.round_percentile(a.p90_day_number - (r.first_seen - DATE '2000-01-01')) AS p90_days_to_upgrade,
       round((SELECT count(*) FROM upgrades u
              WHERE u.product_family = r.product_family AND u.to_version = r.version AND NOT u.is_downgrade
                AND u.upgraded_at < (r.first_seen + 31)::timestamp AT TIME ZONE 'UTC')::numeric
             / a.upgrades, 4) AS share_within_30_days,
       analytics.left_censored(r.first_seen) AS first_seen_censored
FROM releases r
LEFT JOIN arrivals a ON a.product_family = r.product_family AND a.version = r.version;
COMMENT ON COLUMN analytics.release_adoption.first_seen IS 'First UTC day any instance reported it, in any report.';
COMMENT ON COLUMN analytics.release_adoption.days_since_previous_release IS
    'Days between the first sightings of the previous version of the same line and this one; NULL when '
    'either first sighting is left-censored (analytics.left_censored()), as the release may be older.';
COMMENT ON COLUMN analytics.release_adoption.median_days_to_upgrade IS
    'Median days from first_seen to an upgrade (to one decimal).';
COMMENT ON COLUMN analytics.release_adoption.p90_days_to_upgrade IS
    '90th percentile of days from first_seen to an upgrade (to one decimal).';
COMMENT ON COLUMN analytics.release_adoption.first_seen_censored IS
    'True when first_seen falls in the first 29 days of the history (analytics.left_censored()): the '
    'release may be older, and the days to upgrade then count from too late a day.';

CREATE OR REPLACE VIEW analytics.grace_period_by_version AS
SELECT n.first_version AS pmm_version,
       coalesce(sum(n.new_instances) FILTER (WHERE NOT n.censored), 0)::integer AS new_instances,
       coalesce(sum(n.with_up_duration) FILTER (WHERE NOT n.censored), 0)::integer AS with_up_duration,
       coalesce(sum(n.first_report_under_24h) FILTER (WHERE NOT n.censored), 0)::integer AS first_report_under_24h,
       round(sum(n.first_report_under_24h) FILTER (WHERE NOT n.censored)::numeric
             / nullif(sum(n.with_up_duration) FILTER (WHERE NOT n.censored), 0), 4) AS share_under_24h,
       min(n.day) FILTER (WHERE NOT n.censored) AS first_day,
       max(n.day) FILTER (WHERE NOT n.censored) AS last_day,
       coalesce(sum(n.new_instances) FILTER (WHERE n.censored), 0)::integer AS left_censored_instances
FROM (
    SELECT d.*, analytics.left_censored(d.day) AS censored
    FROM analytics.daily_new_instances d
    WHERE d.product_family = 'PRODUCT_FAMILY_PMM'
) n
GROUP BY n.first_version;
COMMENT ON VIEW analytics.grace_period_by_version IS
    'Grace-period check: of the new PMM servers, by the version in their first report, how many sent that '
    'first report with UpDuration under 24 hours, i.e. without waiting for the documented grace period. '
    'Servers first seen in the first 29 days of the history are left out (left_censored_instances): '
    'they may be older installations whose first report here is not their first.';
COMMENT ON COLUMN analytics.grace_period_by_version.new_instances IS
    'New PMM instances whose first report had this version (left-censored days left out).';
COMMENT ON COLUMN analytics.grace_period_by_version.left_censored_instances IS
    'PMM instances with this first version first seen in the first 29 days of the history '
    '(analytics.left_censored()), left out of the other columns.';

-- Built by the rules above from scratch: the next refresh sees no state and rebuilds every day.
DELETE FROM analytics.rollup_state;


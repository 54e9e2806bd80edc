-- Analytics attribute a report to a UTC day near its arrival: its createTime's day, brought into the
-- week before the day it arrived. createTime is the client's word and can be anything protojson
-- accepts (years 1 to 9999); a batch spread over decades used to make the next rollup refresh
-- rebuild a 30-day window behind every distinct day. Now one arrival touches at most
-- analytics.late_report_days() + 1 days, so a refresh rebuilds at most that many more days than an
-- ordinary one. reports.created_at, instances.first_seen/last_seen and upgrades.upgraded_at keep the
-- time as sent.
--
-- Rows folded before this migration keep the days they were given; only reports that arrive from
-- now on are placed this way.

CREATE FUNCTION analytics.late_report_days() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 7;
COMMENT ON FUNCTION analytics.late_report_days() IS
    'How many days before its arrival a report can still count: a week, as long as the '
    'percona-telemetry-agent keeps a metrics file it could not send, and longer than PMM keeps '
    'a report it could not send in practice (it re-sends with the next day''s).';

CREATE FUNCTION analytics.report_day(created_at timestamptz, received_at timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN least(greatest((created_at AT TIME ZONE 'UTC')::date,
                          (received_at AT TIME ZONE 'UTC')::date - analytics.late_report_days()),
                 (received_at AT TIME ZONE 'UTC')::date);
COMMENT ON FUNCTION analytics.report_day(timestamptz, timestamptz) IS
    'The UTC day analytics count a report on (analytics.instance_days.day): the day of its createTime, '
    'but no earlier than analytics.late_report_days() before the day it arrived and no later than '
    'that day. A client clock years off counts on the day it arrived (or a week before).';

ALTER TABLE instances ADD COLUMN first_day date;
-- Before this migration every report counted on its createTime's day, so the first day is the
-- first createTime's day.
UPDATE instances SET first_day = (first_seen AT TIME ZONE 'UTC')::date;
ALTER TABLE instances ALTER COLUMN first_day SET NOT NULL;
COMMENT ON COLUMN instances.first_day IS
    'The UTC day analytics count this instance as new: the earliest analytics.report_day() of its '
    'reports, the first day it has in analytics.instance_days. Differs from first_seen''s day only '
    'when the client''s clock was off by more than analytics.late_report_days().';

CREATE OR REPLACE FUNCTION analytics.rollup_ranges(today date) RETURNS TABLE (from_day date, to_day date)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH state AS (
        SELECT refreshed_through, refreshed_at FROM analytics.rollup_state
    ),
    starts AS (
        -- The first refresh builds everything.
        SELECT min(d.day) AS day FROM analytics.instance_days d WHERE NOT EXISTS (SELECT FROM state)
        UNION
        -- Days stay in progress until they end, and the window keeps moving with the calendar.
        SELECT s.refreshed_through FROM state s
        UNION
        -- Days that received reports since the last refresh. received_at is the ingest transaction's
        -- start; the overlap covers transactions that started before that refresh and committed after.
        SELECT DISTINCT analytics.report_day(r.created_at, r.received_at)
        FROM reports r, state s
        WHERE r.received_at >= s.refreshed_at - interval '10 minutes'
        UNION
        SELECT day FROM analytics.stale_days
    ),
    spans AS (
        SELECT day AS span_from,
               CASE WHEN day = (SELECT refreshed_through FROM state) OR NOT EXISTS (SELECT FROM state)
                    THEN today
                    ELSE least(day + analytics.default_window_days() - 1, today)
               END AS span_to
        FROM starts
        WHERE day IS NOT NULL AND day <= today
    ),
    islands AS (
        SELECT span_from, span_to,
               count(*) FILTER (WHERE starts_island) OVER (ORDER BY span_from, span_to) AS island
        FROM (
            SELECT span_from, span_to,
                   span_from > coalesce(max(span_to) OVER (ORDER BY span_from, span_to
                                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1,
                                        '-infinity'::date) AS starts_island
            FROM spans
        ) marked
    )
    SELECT min(span_from), max(span_to) FROM islands GROUP BY island ORDER BY 1;
END;

-- analytics.refresh_days() as 20261202130002 defined it, except that an instance is new on its
-- first_day rather than on its first createTime's day.
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
           g.offset_days = 0 AND r.day = i.first_day AS is_new,
           r.first_version, r.first_up_duration_seconds, r.held_version, r.version, r.extra_versions,
           r.held_country,
           r.alerting_enabled, coalesce(NOT r.advisors_disabled, r.stt_enabled) AS advisors_enabled,
           r.backup_management_enabled, r.dbaas_enabled, r.access_control_enabled, r.updates_disabled,
           r.grafana_users, r.nodes, r.services, r.mysql_versions, r.mongodb_versions, r.postgresql_versions
    FROM (
        SELECT c.*,
               coalesce(
                   first_value(c.version) OVER (PARTITION BY c.instance_id, c.product_family, c.version_run
                                                ORDER BY c.day),
                   CASE WHEN c.version_run = 0 AND EXISTS (
                       SELECT FROM instances h
                       WHERE h.instance_id = c.instance_id AND h.product_family = c.product_family
                         AND h.version IS NOT NULL) THEN
                       (SELECT p.version FROM analytics.instance_days p
                        WHERE p.instance_id = c.instance_id AND p.product_family = c.product_family
                          AND p.day <= from_day - analytics.default_window_days() AND p.version IS NOT NULL
                        ORDER BY p.day DESC LIMIT 1)
                   END) AS held_version,
               coalesce(
                   first_value(c.country_code) OVER (PARTITION BY c.instance_id, c.product_family, c.country_run
                                                     ORDER BY c.day),
                   CASE WHEN c.country_run = 0 AND EXISTS (
                       SELECT FROM instances h
                       WHERE h.instance_id = c.instance_id AND h.product_family = c.product_family
                         AND h.country_code IS NOT NULL) THEN
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
        -- Keeps the look-ups at one per instance-day row, not one per day it stands for.
        OFFSET 0
    ) r
    JOIN instances i USING (instance_id, product_family)
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
            -- extra_versions holds neither the day's first version nor its last.
            SELECT v FROM unnest(CASE WHEN a.first_version IS DISTINCT FROM a.day_version
                                      THEN ARRAY[a.first_version, a.day_version] ELSE ARRAY[a.day_version] END
                                 || a.extra_versions) AS v
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
COMMENT ON FUNCTION analytics.rollup_ranges(date) IS
    'The day ranges the next refresh must rebuild: every day from a changed or stale day to 29 days '
    'later (its 30-day window), plus the days from the last refresh to today, merged into disjoint ranges. '
    'A changed day is the analytics.report_day() of a report received since the last refresh.';

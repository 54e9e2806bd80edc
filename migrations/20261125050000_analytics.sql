-- The analysts' interface: typed per-instance daily facts written at ingest, daily rollups the
-- retention job keeps for years, and documented views over them (docs/analytics.md).
--
-- Layers, from raw to answers:
--   reports (raw, deleted after RETENTION_DAYS)
--     -> analytics.instance_days   one row per instance and UTC day, typed metrics, written at ingest
--        in the same transaction as the report, kept forever
--     -> analytics.daily_*         per-day aggregates over the instances active that day (reported
--        within the last 30 days), rebuilt for changed days by the retention job
--     -> analytics views           what analysts query
-- All days are UTC calendar days.

CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS
    'Read-only SQL interface for analysts: views that answer the usual telemetry questions, the daily '
    'rollups behind them, and helper functions. See docs/analytics.md.';

-- ---------------------------------------------------------------------------------------------
-- Parsing helpers (IMMUTABLE, so they can be used anywhere, including indexes and generated columns)
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION analytics.default_window_days() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 30;
COMMENT ON FUNCTION analytics.default_window_days() IS
    'The activity window the rollups use: an instance is active on a day when it reported on that day '
    'or one of the 29 days before (30 days, as Percona counts unique instance IDs). '
    'analytics.active_instances() takes any other window.';

CREATE FUNCTION analytics.parse_flag(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE lower(btrim(value))
        WHEN '1' THEN true WHEN 't' THEN true WHEN 'true' THEN true
        WHEN '0' THEN false WHEN 'f' THEN false WHEN 'false' THEN false
    END;
COMMENT ON FUNCTION analytics.parse_flag(text) IS
    'A metric value as a boolean: 1/t/true is true, 0/f/false is false (any case), anything else NULL.';

CREATE FUNCTION analytics.parse_count(value text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN btrim(value) ~ '^\d{1,9}(\.\d+)?$' THEN round(btrim(value)::numeric)::integer END;
COMMENT ON FUNCTION analytics.parse_count(text) IS
    'A metric value as a non-negative integer (decimals rounded), NULL when it is not a number below 10^9.';

CREATE FUNCTION analytics.release_line(subject text, version text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN cardinality(parts) = 0 THEN NULL
        -- PMM and Everest lines are major versions (PMM 2 vs 3); PostgreSQL from 10 on too.
        WHEN subject IN ('PRODUCT_FAMILY_PMM', 'PRODUCT_FAMILY_EVEREST') THEN parts[1]::text
        WHEN subject IN ('PRODUCT_FAMILY_POSTGRESQL', 'postgresql') AND parts[1] >= 10 THEN parts[1]::text
        ELSE array_to_string(parts[1:2], '.')
    END
    FROM (SELECT version_sort_key(version) AS parts) AS v;
END;
COMMENT ON FUNCTION analytics.release_line(text, text) IS
    'The release line a version belongs to: the major version for PMM, Everest and PostgreSQL 10+ '
    '(3.2.0 -> 3, 16.4 -> 16), major.minor otherwise (8.0.39-30 -> 8.0, 5.7.44 -> 5.7, 7.0.14-8 -> 7.0). '
    'subject is a product_family or a monitored database name (mysql, mongodb, postgresql).';

-- The known metrics of one report, read in a single pass over its metrics array.
CREATE TYPE analytics.typed_metrics AS (
    distribution_method       text,
    alerting_enabled          boolean,
    stt_enabled               boolean,
    advisors_disabled         boolean,
    backup_management_enabled boolean,
    dbaas_enabled             boolean,
    access_control_enabled    boolean,
    updates_disabled          boolean,
    grafana_users             integer,
    nodes                     integer,
    services                  integer,
    mysql_versions            text[],
    mongodb_versions          text[],
    postgresql_versions       text[]
);
COMMENT ON TYPE analytics.typed_metrics IS
    'The typed fields analytics.extract_metrics() reads from a report''s metrics; see analytics.instance_days.';

CREATE FUNCTION analytics.extract_metrics(metrics jsonb) RETURNS analytics.typed_metrics
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT ROW(
        coalesce((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'DistributionMethod'))[1],
                 (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'deployment'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_ia_enabled'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_stt_enabled'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_advisors_disabled'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n)
            FILTER (WHERE m.key = 'pmm_server_backup_management_enabled'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_dbaas_enabled'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n)
            FILTER (WHERE m.key = 'pmm_server_access_control_enabled'))[1]),
        analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_updates_disabled'))[1]),
        analytics.parse_count(coalesce(
            (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'grafana_users_count'))[1],
            (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_grafana_stat_total_users'))[1])),
        analytics.parse_count((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_usage_nodes_count'))[1]),
        analytics.parse_count(coalesce(
            (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_usage_services_count'))[1],
            (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_pmm_usage_services_count'))[1])),
        array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'mysql_version' AND m.value <> ''),
        array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'mongodb_version' AND m.value <> ''),
        array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'postgresql_version' AND m.value <> '')
    )::analytics.typed_metrics
    FROM ROWS FROM (jsonb_to_recordset(metrics) AS (key text, value text)) WITH ORDINALITY AS m(key, value, n);
END;
COMMENT ON FUNCTION analytics.extract_metrics(jsonb) IS
    'Reads the known PMM and agent keys (docs/protocol.md, PMM metric keys) from a reports.metrics array '
    'in one pass: the first value of each single-valued key, every value of the per-service version keys. '
    'Ingest calls it once per instance and day; other keys stay in reports.metrics.';

-- ---------------------------------------------------------------------------------------------
-- Per-instance daily facts, written at ingest (store::insert_reports) and kept forever
-- ---------------------------------------------------------------------------------------------

CREATE TABLE analytics.instance_days (
    day                       date        NOT NULL,
    instance_id               uuid        NOT NULL,
    product_family            text        NOT NULL,
    report_count              integer     NOT NULL CHECK (report_count > 0),
    first_report_at           timestamptz NOT NULL,
    last_report_at            timestamptz NOT NULL,
    last_report_id            uuid        NOT NULL,
    first_up_duration_seconds bigint,
    first_version             text,
    version                   text,
    country_code              text CHECK (country_code ~ '^[A-Z]{2}$'),
    distribution_method       text,
    alerting_enabled          boolean,
    stt_enabled               boolean,
    advisors_disabled         boolean,
    backup_management_enabled boolean,
    dbaas_enabled             boolean,
    access_control_enabled    boolean,
    updates_disabled          boolean,
    grafana_users             integer,
    nodes                     integer,
    services                  integer,
    mysql_versions            text[],
    mongodb_versions          text[],
    postgresql_versions       text[],
    PRIMARY KEY (day, instance_id, product_family)
);
COMMENT ON TABLE analytics.instance_days IS
    'One row per instance, product family and UTC day on which it reported (by createTime), with the '
    'known metrics typed. Written in the same transaction as the reports, so it always covers every '
    'stored report, and kept when raw reports are deleted: the long-term record every rollup is built from. '
    'Unknown keys are only in reports.metrics.';
COMMENT ON COLUMN analytics.instance_days.day IS 'UTC calendar day of the reports'' createTime.';
COMMENT ON COLUMN analytics.instance_days.instance_id IS 'The installation; joins instances.instance_id.';
COMMENT ON COLUMN analytics.instance_days.product_family IS 'ProductFamily enum name, as in instances.product_family.';
COMMENT ON COLUMN analytics.instance_days.report_count IS 'Distinct reports with a createTime on this day.';
COMMENT ON COLUMN analytics.instance_days.first_report_at IS 'createTime of the day''s earliest report.';
COMMENT ON COLUMN analytics.instance_days.last_report_at IS
    'createTime of the day''s latest report, the one the typed metric columns come from.';
COMMENT ON COLUMN analytics.instance_days.last_report_id IS
    'report_id of the day''s latest report (ties on createTime are broken by report_id); joins reports while it is kept.';
COMMENT ON COLUMN analytics.instance_days.first_up_duration_seconds IS
    'PMM UpDuration in seconds of the day''s earliest report; on an instance''s first day, below 86400 means '
    'the first report came before the 24-hour grace period ended.';
COMMENT ON COLUMN analytics.instance_days.first_version IS 'Product version of the day''s earliest report.';
COMMENT ON COLUMN analytics.instance_days.version IS
    'Product version of the day''s latest report that carried one (reports.version).';
COMMENT ON COLUMN analytics.instance_days.country_code IS
    'Country of the day''s latest report whose address resolved to one; NULL if none did.';
COMMENT ON COLUMN analytics.instance_days.distribution_method IS
    'PMM DistributionMethod (DOCKER, OVF, AMI, AZURE, DO) or the agent''s deployment (PACKAGE, DOCKER).';
COMMENT ON COLUMN analytics.instance_days.alerting_enabled IS 'PMM pmm_server_ia_enabled (Alerting); NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.stt_enabled IS 'PMM pmm_server_stt_enabled (Advisors, older key); NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.advisors_disabled IS 'PMM pmm_server_advisors_disabled; NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.backup_management_enabled IS
    'PMM pmm_server_backup_management_enabled; NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.dbaas_enabled IS 'PMM pmm_server_dbaas_enabled (PMM 2 only); NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.access_control_enabled IS
    'PMM pmm_server_access_control_enabled (RBAC); NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.updates_disabled IS 'PMM pmm_server_updates_disabled; NULL if not sent.';
COMMENT ON COLUMN analytics.instance_days.grafana_users IS
    'PMM grafana_users_count, or pmm_server_grafana_stat_total_users when that is absent.';
COMMENT ON COLUMN analytics.instance_days.nodes IS 'PMM pmm_server_usage_nodes_count: nodes registered in PMM.';
COMMENT ON COLUMN analytics.instance_days.services IS
    'PMM pmm_server_usage_services_count (pmm_server_pmm_usage_services_count in early 2.x): monitored services.';
COMMENT ON COLUMN analytics.instance_days.mysql_versions IS 'PMM: one mysql_version per monitored MySQL service.';
COMMENT ON COLUMN analytics.instance_days.mongodb_versions IS 'PMM: one mongodb_version per monitored MongoDB service.';
COMMENT ON COLUMN analytics.instance_days.postgresql_versions IS
    'PMM: one postgresql_version per monitored PostgreSQL service.';

-- Reports that were stored before this migration.
INSERT INTO analytics.instance_days (
    day, instance_id, product_family, report_count, first_report_at, last_report_at, last_report_id,
    first_up_duration_seconds, first_version, version, country_code, distribution_method,
    alerting_enabled, stt_enabled, advisors_disabled, backup_management_enabled, dbaas_enabled,
    access_control_enabled, updates_disabled, grafana_users, nodes, services,
    mysql_versions, mongodb_versions, postgresql_versions)
SELECT s.day, s.instance_id, s.product_family, s.report_count, s.first_report_at, l.created_at, l.report_id,
       s.first_up_duration_seconds, s.first_version, s.version, s.country_code, m.distribution_method,
       m.alerting_enabled, m.stt_enabled, m.advisors_disabled, m.backup_management_enabled, m.dbaas_enabled,
       m.access_control_enabled, m.updates_disabled, m.grafana_users, m.nodes, m.services,
       m.mysql_versions, m.mongodb_versions, m.postgresql_versions
FROM (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, instance_id, product_family,
           count(*) AS report_count,
           min(created_at) AS first_report_at,
           (array_agg(up_duration_seconds ORDER BY created_at, report_id))[1] AS first_up_duration_seconds,
           (array_agg(version ORDER BY created_at, report_id))[1] AS first_version,
           (array_agg(version ORDER BY created_at DESC, report_id DESC) FILTER (WHERE version IS NOT NULL))[1] AS version,
           (array_agg(country_code ORDER BY created_at DESC, report_id DESC)
                FILTER (WHERE country_code IS NOT NULL))[1] AS country_code
    FROM reports
    GROUP BY 1, 2, 3
) s
JOIN (
    SELECT DISTINCT ON ((created_at AT TIME ZONE 'UTC')::date, instance_id, product_family)
           (created_at AT TIME ZONE 'UTC')::date AS day, instance_id, product_family, created_at, report_id, metrics
    FROM reports
    ORDER BY (created_at AT TIME ZONE 'UTC')::date, instance_id, product_family, created_at DESC, report_id DESC
) l USING (day, instance_id, product_family)
CROSS JOIN LATERAL analytics.extract_metrics(l.metrics) AS m;

-- Retention deletes by createTime day ranges as well as by arrival; a BRIN index keeps both cheap.
CREATE INDEX reports_created_at_brin_idx ON reports USING brin (created_at);

-- ---------------------------------------------------------------------------------------------
-- Daily rollups over active instances, rebuilt by analytics.refresh_days()
-- ---------------------------------------------------------------------------------------------

CREATE TABLE analytics.daily_activity (
    day                 date    NOT NULL,
    product_family      text    NOT NULL,
    active_instances    integer NOT NULL,
    reporting_instances integer NOT NULL,
    new_instances       integer NOT NULL,
    active_by_window    integer[] NOT NULL,
    PRIMARY KEY (day, product_family)
);
COMMENT ON TABLE analytics.daily_activity IS
    'Rollup: per UTC day and product family, instances active (reported within the 30-day window), '
    'reporting that day, and new that day. Days with no active instance of a family have no row.';
COMMENT ON COLUMN analytics.daily_activity.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_activity.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.daily_activity.active_instances IS 'Instances that reported on this day or the 29 days before.';
COMMENT ON COLUMN analytics.daily_activity.reporting_instances IS 'Instances that reported on this day.';
COMMENT ON COLUMN analytics.daily_activity.new_instances IS 'Instances whose first report ever is on this day.';
COMMENT ON COLUMN analytics.daily_activity.active_by_window IS
    'Element w (1 to 30): instances that reported on this day or the w - 1 days before; [1] is '
    'reporting_instances, [30] active_instances. analytics.active_instances() reads it.';

CREATE TABLE analytics.daily_versions (
    day                 date    NOT NULL,
    product_family      text    NOT NULL,
    version             text    NOT NULL,
    line                text,
    active_instances    integer NOT NULL,
    reporting_instances integer NOT NULL,
    PRIMARY KEY (day, product_family, version)
);
COMMENT ON TABLE analytics.daily_versions IS
    'Rollup: per UTC day, active instances by the product version of their latest report on or before that day. '
    'Instances that never sent a version are only in daily_activity.';
COMMENT ON COLUMN analytics.daily_versions.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_versions.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.daily_versions.version IS 'Product version (PMMServerVersion, pillar_version, Everest version).';
COMMENT ON COLUMN analytics.daily_versions.line IS 'Release line of the version (analytics.release_line), e.g. 3 or 8.0.';
COMMENT ON COLUMN analytics.daily_versions.active_instances IS 'Active instances (30-day window) running this version.';
COMMENT ON COLUMN analytics.daily_versions.reporting_instances IS 'Instances that reported this version on this day.';

CREATE TABLE analytics.daily_countries (
    day              date    NOT NULL,
    product_family   text    NOT NULL,
    country_code     text,
    active_instances integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, product_family, country_code)
);
COMMENT ON TABLE analytics.daily_countries IS
    'Rollup: per UTC day, active instances by the country of their latest report that resolved to one.';
COMMENT ON COLUMN analytics.daily_countries.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_countries.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.daily_countries.country_code IS 'ISO 3166-1 alpha-2 code; NULL when no report resolved to a country.';
COMMENT ON COLUMN analytics.daily_countries.active_instances IS 'Active instances (30-day window) in this country.';

CREATE TABLE analytics.daily_new_instances (
    day                    date    NOT NULL,
    product_family         text    NOT NULL,
    first_version          text,
    new_instances          integer NOT NULL,
    with_up_duration       integer NOT NULL,
    first_report_under_24h integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, product_family, first_version)
);
COMMENT ON TABLE analytics.daily_new_instances IS
    'Rollup: instances whose first report ever arrived on this UTC day, by the version in that first report.';
COMMENT ON COLUMN analytics.daily_new_instances.day IS 'UTC day of the first report.';
COMMENT ON COLUMN analytics.daily_new_instances.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.daily_new_instances.first_version IS 'Version in the first report; NULL if it had none.';
COMMENT ON COLUMN analytics.daily_new_instances.new_instances IS 'New instances.';
COMMENT ON COLUMN analytics.daily_new_instances.with_up_duration IS 'Of those, how many first reports carried UpDuration (PMM).';
COMMENT ON COLUMN analytics.daily_new_instances.first_report_under_24h IS
    'Of those, how many first reports had UpDuration under 86400 s, i.e. were sent before the 24-hour grace period ended.';

CREATE TABLE analytics.daily_pmm_features (
    day               date    NOT NULL,
    feature           text    NOT NULL,
    active_servers    integer NOT NULL,
    reporting_servers integer NOT NULL,
    enabled_servers   integer NOT NULL,
    PRIMARY KEY (day, feature)
);
COMMENT ON TABLE analytics.daily_pmm_features IS
    'Rollup: per UTC day and PMM feature, active PMM servers and how many of them have it enabled, '
    'by each server''s latest report on or before that day.';
COMMENT ON COLUMN analytics.daily_pmm_features.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_pmm_features.feature IS
    'alerting (pmm_server_ia_enabled), advisors (not pmm_server_advisors_disabled, else pmm_server_stt_enabled), '
    'backup_management, dbaas, access_control, updates_disabled (update checks switched off).';
COMMENT ON COLUMN analytics.daily_pmm_features.active_servers IS 'Active PMM servers (30-day window).';
COMMENT ON COLUMN analytics.daily_pmm_features.reporting_servers IS 'Active PMM servers whose latest report carried the flag.';
COMMENT ON COLUMN analytics.daily_pmm_features.enabled_servers IS 'Active PMM servers whose latest report had the flag set.';

CREATE TABLE analytics.daily_pmm_usage (
    day     date             NOT NULL,
    measure text             NOT NULL,
    servers integer          NOT NULL,
    median  double precision NOT NULL,
    p90     double precision NOT NULL,
    max     integer          NOT NULL,
    PRIMARY KEY (day, measure)
);
COMMENT ON TABLE analytics.daily_pmm_usage IS
    'Rollup: per UTC day, the distribution of a size measure over active PMM servers (latest report of each).';
COMMENT ON COLUMN analytics.daily_pmm_usage.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_pmm_usage.measure IS
    'grafana_users (grafana_users_count), nodes (pmm_server_usage_nodes_count) or services (pmm_server_usage_services_count).';
COMMENT ON COLUMN analytics.daily_pmm_usage.servers IS 'Active PMM servers that reported the measure.';
COMMENT ON COLUMN analytics.daily_pmm_usage.median IS 'Median (percentile_cont 0.5, interpolated).';
COMMENT ON COLUMN analytics.daily_pmm_usage.p90 IS '90th percentile (percentile_cont 0.9, interpolated).';
COMMENT ON COLUMN analytics.daily_pmm_usage.max IS 'Largest value.';

CREATE TABLE analytics.daily_monitored_databases (
    day         date    NOT NULL,
    database    text    NOT NULL,
    version     text    NOT NULL,
    pmm_servers integer NOT NULL,
    services    integer NOT NULL,
    PRIMARY KEY (day, database, version)
);
COMMENT ON TABLE analytics.daily_monitored_databases IS
    'Rollup: per UTC day, database services monitored by active PMM servers, by database version.';
COMMENT ON COLUMN analytics.daily_monitored_databases.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_monitored_databases.database IS 'mysql, mongodb or postgresql.';
COMMENT ON COLUMN analytics.daily_monitored_databases.version IS 'Version as reported (mysql_version, mongodb_version, postgresql_version).';
COMMENT ON COLUMN analytics.daily_monitored_databases.pmm_servers IS 'Active PMM servers monitoring at least one such service.';
COMMENT ON COLUMN analytics.daily_monitored_databases.services IS 'Monitored services with this version.';

CREATE TABLE analytics.daily_monitored_database_lines (
    day         date    NOT NULL,
    database    text    NOT NULL,
    line        text    NOT NULL,
    pmm_servers integer NOT NULL,
    services    integer NOT NULL,
    PRIMARY KEY (day, database, line)
);
COMMENT ON TABLE analytics.daily_monitored_database_lines IS
    'Rollup: as daily_monitored_databases, by release line (analytics.release_line: MySQL 5.7 / 8.0 / 8.4, ...), '
    'so that a server monitoring two 8.0 versions counts once for 8.0.';
COMMENT ON COLUMN analytics.daily_monitored_database_lines.day IS 'UTC day.';
COMMENT ON COLUMN analytics.daily_monitored_database_lines.database IS 'mysql, mongodb or postgresql.';
COMMENT ON COLUMN analytics.daily_monitored_database_lines.line IS 'Release line, e.g. 8.0 for MySQL, 7.0 for MongoDB, 16 for PostgreSQL.';
COMMENT ON COLUMN analytics.daily_monitored_database_lines.pmm_servers IS 'Active PMM servers monitoring at least one service of this line.';
COMMENT ON COLUMN analytics.daily_monitored_database_lines.services IS 'Monitored services of this line.';

CREATE TABLE analytics.period_activity (
    period              text    NOT NULL CHECK (period IN ('week', 'month')),
    period_start        date    NOT NULL,
    product_family      text    NOT NULL,
    reporting_instances integer NOT NULL,
    PRIMARY KEY (period, period_start, product_family)
);
COMMENT ON TABLE analytics.period_activity IS
    'Rollup: distinct instances that reported during an ISO week or a calendar month (UTC).';
COMMENT ON COLUMN analytics.period_activity.period IS 'week (Monday to Sunday) or month.';
COMMENT ON COLUMN analytics.period_activity.period_start IS 'First day of the week or month.';
COMMENT ON COLUMN analytics.period_activity.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.period_activity.reporting_instances IS 'Distinct instances with at least one report in the period.';

CREATE TABLE analytics.rollup_state (
    singleton         boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    refreshed_through date        NOT NULL,
    complete_through  date        NOT NULL,
    refreshed_at      timestamptz NOT NULL
);
COMMENT ON TABLE analytics.rollup_state IS
    'How fresh the rollups are (one row, written by the retention job). Snapshot views show complete_through.';
COMMENT ON COLUMN analytics.rollup_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN analytics.rollup_state.refreshed_through IS 'Last UTC day in the rollups; it was still in progress at refreshed_at.';
COMMENT ON COLUMN analytics.rollup_state.complete_through IS 'Last UTC day that had ended when the rollups were refreshed.';
COMMENT ON COLUMN analytics.rollup_state.refreshed_at IS
    'Start of the refresh; reports received after it are folded in by the next one.';

CREATE TABLE analytics.stale_days (
    day      date        PRIMARY KEY,
    noted_at timestamptz NOT NULL
);
COMMENT ON TABLE analytics.stale_days IS
    'Days whose rollups the next refresh must rebuild although no report for them arrived: a late '
    'report showed that an instance started earlier, so it is no longer new on its old first day. '
    'Written by ingest, emptied by the refresh.';
COMMENT ON COLUMN analytics.stale_days.day IS 'The instance''s old first day (UTC).';
COMMENT ON COLUMN analytics.stale_days.noted_at IS 'Start of the ingest transaction that noted it.';

-- ---------------------------------------------------------------------------------------------
-- Rollup maintenance (called by the service's retention job, not by analysts)
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION analytics.refresh_days(from_day date, to_day date) RETURNS bigint
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
    -- carrying the state of its latest report on or before that day.
    INSERT INTO refresh_active
    SELECT r.day + g.offset_days AS day, r.instance_id, r.product_family,
           g.offset_days AS days_since_report,
           g.offset_days = 0 AS reported,
           g.offset_days = 0 AND r.day = (i.first_seen AT TIME ZONE 'UTC')::date AS is_new,
           r.first_version, r.first_up_duration_seconds, r.version, r.country_code,
           r.alerting_enabled, coalesce(NOT r.advisors_disabled, r.stt_enabled) AS advisors_enabled,
           r.backup_management_enabled, r.dbaas_enabled, r.access_control_enabled, r.updates_disabled,
           r.grafana_users, r.nodes, r.services, r.mysql_versions, r.mongodb_versions, r.postgresql_versions
    FROM (
        SELECT d.*, lead(d.day) OVER (PARTITION BY d.instance_id, d.product_family ORDER BY d.day) AS next_day
        FROM analytics.instance_days d
        WHERE d.day > from_day - analytics.default_window_days() AND d.day <= to_day
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
    -- Lines are worked out once per distinct version: release_line() is not cheap enough per row.
    INSERT INTO analytics.daily_versions
    WITH counts AS (
        SELECT day, product_family, version, count(*) AS active, count(*) FILTER (WHERE reported) AS reporting
        FROM refresh_active
        WHERE version IS NOT NULL
        GROUP BY day, product_family, version
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

CREATE FUNCTION analytics.refresh_periods(from_day date, to_day date, today date) RETURNS void
    LANGUAGE plpgsql
    SET work_mem = '128MB'
AS $$
DECLARE
    period_name text;
    first_start date;
BEGIN
    FOREACH period_name IN ARRAY ARRAY['week', 'month'] LOOP
        first_start := date_trunc(period_name, from_day)::date;
        DELETE FROM analytics.period_activity
        WHERE period = period_name AND period_start BETWEEN first_start AND to_day;
        INSERT INTO analytics.period_activity
        SELECT period_name, date_trunc(period_name, d.day)::date, d.product_family, count(DISTINCT d.instance_id)
        FROM analytics.instance_days d
        WHERE d.day >= first_start
          AND d.day < (date_trunc(period_name, to_day) + ('1 ' || period_name)::interval)::date
          AND d.day <= today
        GROUP BY 2, 3;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION analytics.refresh_periods(date, date, date) IS
    'Rebuilds analytics.period_activity for every week and month overlapping from_day..to_day, '
    'counting days up to today.';

CREATE FUNCTION analytics.rollup_ranges(today date) RETURNS TABLE (from_day date, to_day date)
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
        SELECT DISTINCT (r.created_at AT TIME ZONE 'UTC')::date
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
COMMENT ON FUNCTION analytics.rollup_ranges(date) IS
    'The day ranges the next refresh must rebuild: every day from a changed or stale day to 29 days '
    'later (its 30-day window), plus the days from the last refresh to today, merged into disjoint ranges.';

CREATE FUNCTION analytics.finish_refresh(today date) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO analytics.rollup_state (singleton, refreshed_through, complete_through, refreshed_at)
    VALUES (true, today, today - 1, transaction_timestamp())
    ON CONFLICT (singleton) DO UPDATE SET
        refreshed_through = excluded.refreshed_through,
        complete_through = excluded.complete_through,
        refreshed_at = excluded.refreshed_at;
    -- Newer notes may come from transactions this refresh could not see yet; the next one redoes them.
    DELETE FROM analytics.stale_days WHERE noted_at < transaction_timestamp() - interval '10 minutes';
END;
COMMENT ON FUNCTION analytics.finish_refresh(date) IS
    'Records a finished refresh in analytics.rollup_state and forgets the stale days it rebuilt.';

REVOKE EXECUTE ON FUNCTION analytics.refresh_days(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION analytics.refresh_periods(date, date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION analytics.rollup_ranges(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION analytics.finish_refresh(date) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Views: the analysts' interface
-- ---------------------------------------------------------------------------------------------

CREATE VIEW analytics.snapshot_day AS
SELECT complete_through AS day, refreshed_at FROM analytics.rollup_state;
COMMENT ON VIEW analytics.snapshot_day IS
    'The day the snapshot views (countries, releases, pmm_feature_adoption, ...) describe: the last '
    'complete UTC day when the rollups were refreshed. Empty before the first refresh.';
COMMENT ON COLUMN analytics.snapshot_day.day IS 'Last complete UTC day in the rollups.';
COMMENT ON COLUMN analytics.snapshot_day.refreshed_at IS 'When the rollups were last refreshed.';

CREATE VIEW analytics.active_instances_daily AS
SELECT a.day, a.product_family, a.active_instances, a.reporting_instances, a.new_instances,
       a.day <= s.complete_through AS complete
FROM analytics.daily_activity a
CROSS JOIN analytics.rollup_state s;
COMMENT ON VIEW analytics.active_instances_daily IS
    'Active instances per UTC day and product family; active = reported within the last 30 days, '
    'counting unique instance IDs as Percona does. Other windows: analytics.active_instances().';
COMMENT ON COLUMN analytics.active_instances_daily.day IS 'UTC day.';
COMMENT ON COLUMN analytics.active_instances_daily.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.active_instances_daily.active_instances IS 'Instances that reported on this day or the 29 days before.';
COMMENT ON COLUMN analytics.active_instances_daily.reporting_instances IS 'Instances that reported on this day.';
COMMENT ON COLUMN analytics.active_instances_daily.new_instances IS 'Instances whose first report ever is on this day.';
COMMENT ON COLUMN analytics.active_instances_daily.complete IS 'False for the day still in progress when the rollups were refreshed.';

CREATE VIEW analytics.active_instances_weekly AS
WITH weeks AS (
    SELECT date_trunc('week', a.day)::date AS week_start, a.product_family, sum(a.new_instances) AS new_instances
    FROM analytics.daily_activity a
    GROUP BY 1, 2
)
SELECT w.week_start, w.product_family,
       coalesce(e.active_instances, 0) AS active_instances,
       coalesce(p.reporting_instances, 0) AS reporting_instances,
       w.new_instances::integer AS new_instances,
       w.week_start + 6 <= s.complete_through AS complete
FROM weeks w
CROSS JOIN analytics.rollup_state s
LEFT JOIN analytics.daily_activity e
       ON e.product_family = w.product_family AND e.day = least(w.week_start + 6, s.refreshed_through)
LEFT JOIN analytics.period_activity p
       ON p.period = 'week' AND p.period_start = w.week_start AND p.product_family = w.product_family;
COMMENT ON VIEW analytics.active_instances_weekly IS 'Active instances per ISO week (Monday start, UTC) and product family.';
COMMENT ON COLUMN analytics.active_instances_weekly.week_start IS 'Monday of the week.';
COMMENT ON COLUMN analytics.active_instances_weekly.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.active_instances_weekly.active_instances IS
    'Instances active (30-day window) on the week''s last day, or on the latest day so far.';
COMMENT ON COLUMN analytics.active_instances_weekly.reporting_instances IS 'Distinct instances that reported during the week.';
COMMENT ON COLUMN analytics.active_instances_weekly.new_instances IS 'Instances whose first report ever is in the week.';
COMMENT ON COLUMN analytics.active_instances_weekly.complete IS 'False while the week is still in progress.';

CREATE VIEW analytics.active_instances_monthly AS
WITH months AS (
    SELECT date_trunc('month', a.day)::date AS month_start, a.product_family, sum(a.new_instances) AS new_instances
    FROM analytics.daily_activity a
    GROUP BY 1, 2
)
SELECT m.month_start, m.product_family,
       coalesce(e.active_instances, 0) AS active_instances,
       coalesce(p.reporting_instances, 0) AS reporting_instances,
       m.new_instances::integer AS new_instances,
       (m.month_start + interval '1 month')::date - 1 <= s.complete_through AS complete
FROM months m
CROSS JOIN analytics.rollup_state s
LEFT JOIN analytics.daily_activity e
       ON e.product_family = m.product_family
      AND e.day = least((m.month_start + interval '1 month')::date - 1, s.refreshed_through)
LEFT JOIN analytics.period_activity p
       ON p.period = 'month' AND p.period_start = m.month_start AND p.product_family = m.product_family;
COMMENT ON VIEW analytics.active_instances_monthly IS 'Active instances per calendar month (UTC) and product family.';
COMMENT ON COLUMN analytics.active_instances_monthly.month_start IS 'First day of the month.';
COMMENT ON COLUMN analytics.active_instances_monthly.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.active_instances_monthly.active_instances IS
    'Instances active (30-day window) on the month''s last day, or on the latest day so far.';
COMMENT ON COLUMN analytics.active_instances_monthly.reporting_instances IS
    'Distinct instances that reported during the month (monthly unique instance IDs).';
COMMENT ON COLUMN analytics.active_instances_monthly.new_instances IS 'Instances whose first report ever is in the month.';
COMMENT ON COLUMN analytics.active_instances_monthly.complete IS 'False while the month is still in progress.';

CREATE FUNCTION analytics.active_instances(window_days integer, from_day date, to_day date)
    RETURNS TABLE (day date, product_family text, active_instances bigint)
    LANGUAGE plpgsql STABLE
    SET work_mem = '64MB'
AS $$
#variable_conflict use_column
BEGIN
    IF window_days IS NULL OR window_days < 1 THEN
        RAISE EXCEPTION 'window_days must be at least 1, got %', window_days;
    END IF;
    IF from_day IS NULL OR to_day IS NULL OR from_day > to_day THEN
        RAISE EXCEPTION 'from_day must be on or before to_day';
    END IF;
    IF window_days <= analytics.default_window_days()
       AND to_day <= (SELECT s.refreshed_through FROM analytics.rollup_state s) THEN
        RETURN QUERY
        WITH families AS (
            SELECT DISTINCT a.product_family FROM analytics.daily_activity a
            WHERE a.day BETWEEN from_day AND to_day AND a.active_by_window[window_days] > 0
        )
        SELECT g.day::date, f.product_family, coalesce(a.active_by_window[window_days], 0)::bigint
        FROM generate_series(from_day, to_day, interval '1 day') AS g(day)
        CROSS JOIN families f
        LEFT JOIN analytics.daily_activity a ON a.day = g.day::date AND a.product_family = f.product_family
        ORDER BY 2, 1;
        RETURN;
    END IF;
    -- Longer windows, or days the rollups do not have yet: from the per-instance daily facts.
    RETURN QUERY
    WITH spans AS (
        SELECT r.product_family, greatest(r.day, from_day) AS starts,
               least(coalesce(r.next_day, to_day + 1), r.day + window_days, to_day + 1) AS ends
        FROM (
            SELECT d.day, d.product_family,
                   lead(d.day) OVER (PARTITION BY d.instance_id, d.product_family ORDER BY d.day) AS next_day
            FROM analytics.instance_days d
            WHERE d.day > from_day - window_days AND d.day <= to_day
        ) r
    ),
    changes AS (
        SELECT s.product_family, e.day, sum(e.delta) AS delta
        FROM spans s
        CROSS JOIN LATERAL (VALUES (s.starts, 1), (s.ends, -1)) AS e(day, delta)
        WHERE s.ends > s.starts
        GROUP BY 1, 2
    ),
    days AS (
        SELECT g.day::date AS day, f.product_family
        FROM generate_series(from_day, to_day, interval '1 day') AS g(day)
        CROSS JOIN (SELECT DISTINCT c.product_family FROM changes c) f
    )
    SELECT days.day, days.product_family,
           (sum(coalesce(c.delta, 0)) OVER (PARTITION BY days.product_family ORDER BY days.day))::bigint
    FROM days
    LEFT JOIN changes c ON c.day = days.day AND c.product_family = days.product_family
    ORDER BY 2, 1;
END;
$$;
COMMENT ON FUNCTION analytics.active_instances(integer, date, date) IS
    'Active instances per day from from_day to to_day and product family, where active means reported '
    'within the last window_days days (1 = reported that day). Windows up to 30 days come from the '
    'rollups (daily_activity.active_by_window); longer ones are computed from analytics.instance_days, '
    'which takes seconds per month of range at 100,000 instances.';

CREATE VIEW analytics.releases AS
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
       h.peak_active_instances
FROM history h
CROSS JOIN analytics.rollup_state s
LEFT JOIN analytics.daily_versions v
       ON v.day = s.complete_through AND v.product_family = h.product_family AND v.version = h.version
LEFT JOIN analytics.daily_activity a
       ON a.day = s.complete_through AND a.product_family = h.product_family;
COMMENT ON VIEW analytics.releases IS
    'Every product version ever reported: when it was first seen and how many active instances run it '
    'on the snapshot day. Order versions with ORDER BY version_sort_key(version).';
COMMENT ON COLUMN analytics.releases.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.releases.version IS 'Product version.';
COMMENT ON COLUMN analytics.releases.line IS 'Release line (analytics.release_line), e.g. 3 for PMM 3.2.0, 8.0 for PS 8.0.39-30.';
COMMENT ON COLUMN analytics.releases.first_seen IS 'First UTC day any instance reported this version.';
COMMENT ON COLUMN analytics.releases.last_reported IS 'Last UTC day any instance reported this version.';
COMMENT ON COLUMN analytics.releases.active_instances IS 'Active instances (30-day window) running it on the snapshot day.';
COMMENT ON COLUMN analytics.releases.share_of_family IS 'active_instances / all active instances of the family on the snapshot day.';
COMMENT ON COLUMN analytics.releases.peak_active_instances IS 'Most active instances that ran it on any day.';

CREATE VIEW analytics.release_uptake_weekly AS
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
       round(coalesce(v.active_instances, 0)::numeric / nullif(a.active_instances, 0), 4) AS share_of_family
FROM weeks w
LEFT JOIN analytics.daily_versions v
       ON v.day = w.measured_on AND v.product_family = w.product_family AND v.version = w.version
LEFT JOIN analytics.daily_activity a
       ON a.day = w.measured_on AND a.product_family = w.product_family;
COMMENT ON VIEW analytics.release_uptake_weekly IS
    'Release uptake: for each version, one row per week from the week it was first seen, with the active '
    'instances running it at the end of that week and their share of the family.';
COMMENT ON COLUMN analytics.release_uptake_weekly.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.release_uptake_weekly.version IS 'Product version.';
COMMENT ON COLUMN analytics.release_uptake_weekly.first_seen IS 'First UTC day any instance reported this version.';
COMMENT ON COLUMN analytics.release_uptake_weekly.week_start IS 'Monday of the week.';
COMMENT ON COLUMN analytics.release_uptake_weekly.weeks_since_first_seen IS '0 for the week of first_seen, then 1, 2, ...';
COMMENT ON COLUMN analytics.release_uptake_weekly.active_instances IS
    'Active instances (30-day window) running this version on the week''s last day (or latest day so far).';
COMMENT ON COLUMN analytics.release_uptake_weekly.share_of_family IS 'active_instances / all active instances of the family that day.';

CREATE FUNCTION analytics.instances_older_than(product_family text, version text,
                                               from_day date DEFAULT NULL, to_day date DEFAULT NULL)
    RETURNS TABLE (day date, active_instances integer, older_instances bigint, share_older numeric)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT a.day, a.active_instances, coalesce(o.older_instances, 0),
           round(coalesce(o.older_instances, 0)::numeric / a.active_instances, 4)
    FROM analytics.daily_activity a
    CROSS JOIN analytics.rollup_state s
    LEFT JOIN (
        SELECT v.day, sum(v.active_instances) AS older_instances
        FROM analytics.daily_versions v
        WHERE v.product_family = instances_older_than.product_family
          AND v.version IN (
              SELECT known.version
              FROM (SELECT DISTINCT k.version FROM analytics.daily_versions k
                    WHERE k.product_family = instances_older_than.product_family) AS known
              WHERE version_sort_key(known.version) < version_sort_key(instances_older_than.version))
        GROUP BY v.day
    ) o ON o.day = a.day
    WHERE a.product_family = instances_older_than.product_family
      AND a.day BETWEEN coalesce(from_day, s.complete_through) AND coalesce(to_day, s.complete_through)
    ORDER BY a.day;
END;
COMMENT ON FUNCTION analytics.instances_older_than(text, text, date, date) IS
    'Legacy use: per day, active instances (30-day window) of product_family whose version is lower than '
    'the given one (compared with version_sort_key). Without from_day/to_day: the snapshot day only. '
    'Example: SELECT * FROM analytics.instances_older_than(''PRODUCT_FAMILY_PMM'', ''3.0.0'').';

CREATE VIEW analytics.product_lines_daily AS
SELECT v.day, v.product_family, v.line,
       sum(v.active_instances)::integer AS active_instances,
       round(sum(v.active_instances)::numeric / max(a.active_instances), 4) AS share_of_family
FROM analytics.daily_versions v
JOIN analytics.daily_activity a USING (day, product_family)
GROUP BY 1, 2, 3;
COMMENT ON VIEW analytics.product_lines_daily IS
    'Legacy use by release line per day: active instances per major line (PMM 2 vs 3, PS 5.7 / 8.0 / 8.4, ...).';
COMMENT ON COLUMN analytics.product_lines_daily.day IS 'UTC day.';
COMMENT ON COLUMN analytics.product_lines_daily.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.product_lines_daily.line IS 'Release line (analytics.release_line); NULL for versions without digits.';
COMMENT ON COLUMN analytics.product_lines_daily.active_instances IS 'Active instances (30-day window) on this line.';
COMMENT ON COLUMN analytics.product_lines_daily.share_of_family IS 'Share of all active instances of the family.';

CREATE VIEW analytics.product_lines AS
SELECT l.product_family, l.line, l.active_instances, l.share_of_family
FROM analytics.product_lines_daily l
JOIN analytics.rollup_state s ON l.day = s.complete_through;
COMMENT ON VIEW analytics.product_lines IS 'product_lines_daily on the snapshot day (analytics.snapshot_day).';
COMMENT ON COLUMN analytics.product_lines.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.product_lines.line IS 'Release line, e.g. 2 or 3 for PMM.';
COMMENT ON COLUMN analytics.product_lines.active_instances IS 'Active instances (30-day window) on this line.';
COMMENT ON COLUMN analytics.product_lines.share_of_family IS 'Share of all active instances of the family.';

CREATE VIEW analytics.monitored_database_lines_daily AS
SELECT l.day, l.database, l.line, l.pmm_servers, l.services,
       round(l.services::numeric / sum(l.services) OVER (PARTITION BY l.day, l.database), 4) AS share_of_services
FROM analytics.daily_monitored_database_lines l;
COMMENT ON VIEW analytics.monitored_database_lines_daily IS
    'Legacy use in monitored databases per day: services monitored by active PMM servers per release line '
    '(MySQL 5.7 / 8.0 / 8.4, MongoDB 6.0 / 7.0, PostgreSQL 15 / 16, ...).';
COMMENT ON COLUMN analytics.monitored_database_lines_daily.day IS 'UTC day.';
COMMENT ON COLUMN analytics.monitored_database_lines_daily.database IS 'mysql, mongodb or postgresql.';
COMMENT ON COLUMN analytics.monitored_database_lines_daily.line IS 'Release line (analytics.release_line).';
COMMENT ON COLUMN analytics.monitored_database_lines_daily.pmm_servers IS 'Active PMM servers monitoring at least one service of this line.';
COMMENT ON COLUMN analytics.monitored_database_lines_daily.services IS 'Monitored services of this line.';
COMMENT ON COLUMN analytics.monitored_database_lines_daily.share_of_services IS 'Share of all monitored services of this database.';

CREATE VIEW analytics.monitored_database_lines AS
SELECT l.database, l.line, l.pmm_servers, l.services, l.share_of_services
FROM analytics.monitored_database_lines_daily l
JOIN analytics.rollup_state s ON l.day = s.complete_through;
COMMENT ON VIEW analytics.monitored_database_lines IS 'monitored_database_lines_daily on the snapshot day.';
COMMENT ON COLUMN analytics.monitored_database_lines.database IS 'mysql, mongodb or postgresql.';
COMMENT ON COLUMN analytics.monitored_database_lines.line IS 'Release line, e.g. 5.7, 8.0, 8.4 for MySQL.';
COMMENT ON COLUMN analytics.monitored_database_lines.pmm_servers IS 'Active PMM servers monitoring at least one service of this line.';
COMMENT ON COLUMN analytics.monitored_database_lines.services IS 'Monitored services of this line.';
COMMENT ON COLUMN analytics.monitored_database_lines.share_of_services IS 'Share of all monitored services of this database.';

CREATE VIEW analytics.monitored_database_versions AS
SELECT m.database, m.version, analytics.release_line(m.database, m.version) AS line, m.pmm_servers, m.services,
       round(m.services::numeric / sum(m.services) OVER (PARTITION BY m.database), 4) AS share_of_services
FROM analytics.daily_monitored_databases m
JOIN analytics.rollup_state s ON m.day = s.complete_through;
COMMENT ON VIEW analytics.monitored_database_versions IS
    'Versions of the MySQL, MongoDB and PostgreSQL services monitored by active PMM servers on the snapshot '
    'day (history: analytics.daily_monitored_databases).';
COMMENT ON COLUMN analytics.monitored_database_versions.database IS 'mysql, mongodb or postgresql.';
COMMENT ON COLUMN analytics.monitored_database_versions.version IS 'Version as reported, e.g. 8.0.39-30.';
COMMENT ON COLUMN analytics.monitored_database_versions.line IS 'Release line (analytics.release_line).';
COMMENT ON COLUMN analytics.monitored_database_versions.pmm_servers IS 'Active PMM servers monitoring at least one such service.';
COMMENT ON COLUMN analytics.monitored_database_versions.services IS 'Monitored services with this version.';
COMMENT ON COLUMN analytics.monitored_database_versions.share_of_services IS 'Share of all monitored services of this database.';

CREATE VIEW analytics.pillar_versions AS
SELECT v.product_family, v.version, v.line,
       v.active_instances, round(v.active_instances::numeric / a.active_instances, 4) AS share_of_family
FROM analytics.daily_versions v
JOIN analytics.rollup_state s ON v.day = s.complete_through
JOIN analytics.daily_activity a ON a.day = v.day AND a.product_family = v.product_family
WHERE v.product_family NOT IN ('PRODUCT_FAMILY_PMM', 'PRODUCT_FAMILY_EVEREST', 'PRODUCT_FAMILY_INVALID');
COMMENT ON VIEW analytics.pillar_versions IS
    'Database products (pillars) as the telemetry agent and call-home report them (pillar_version): '
    'active instances per version on the snapshot day.';
COMMENT ON COLUMN analytics.pillar_versions.product_family IS 'ProductFamily enum name, e.g. PRODUCT_FAMILY_PS.';
COMMENT ON COLUMN analytics.pillar_versions.version IS 'pillar_version, e.g. 8.0.36-28.';
COMMENT ON COLUMN analytics.pillar_versions.line IS 'Release line (analytics.release_line), e.g. 8.0.';
COMMENT ON COLUMN analytics.pillar_versions.active_instances IS 'Active instances (30-day window) running it.';
COMMENT ON COLUMN analytics.pillar_versions.share_of_family IS 'Share of all active instances of the family.';

CREATE VIEW analytics.pmm_usage_daily AS
SELECT day, measure, servers, median, p90, max FROM analytics.daily_pmm_usage;
COMMENT ON VIEW analytics.pmm_usage_daily IS
    'Per day, the distribution over active PMM servers of Grafana users, nodes and services.';
COMMENT ON COLUMN analytics.pmm_usage_daily.day IS 'UTC day.';
COMMENT ON COLUMN analytics.pmm_usage_daily.measure IS 'grafana_users, nodes or services.';
COMMENT ON COLUMN analytics.pmm_usage_daily.servers IS 'Active PMM servers that reported the measure.';
COMMENT ON COLUMN analytics.pmm_usage_daily.median IS 'Median (interpolated).';
COMMENT ON COLUMN analytics.pmm_usage_daily.p90 IS '90th percentile (interpolated).';
COMMENT ON COLUMN analytics.pmm_usage_daily.max IS 'Largest value.';

CREATE VIEW analytics.pmm_usage AS
SELECT u.measure, u.servers, u.median, u.p90, u.max
FROM analytics.daily_pmm_usage u
JOIN analytics.rollup_state s ON u.day = s.complete_through;
COMMENT ON VIEW analytics.pmm_usage IS 'pmm_usage_daily on the snapshot day.';
COMMENT ON COLUMN analytics.pmm_usage.measure IS 'grafana_users, nodes or services.';
COMMENT ON COLUMN analytics.pmm_usage.servers IS 'Active PMM servers that reported the measure.';
COMMENT ON COLUMN analytics.pmm_usage.median IS 'Median (interpolated).';
COMMENT ON COLUMN analytics.pmm_usage.p90 IS '90th percentile (interpolated).';
COMMENT ON COLUMN analytics.pmm_usage.max IS 'Largest value.';

CREATE VIEW analytics.pmm_feature_adoption_daily AS
SELECT day, feature, active_servers, reporting_servers, enabled_servers,
       round(enabled_servers::numeric / active_servers, 4) AS share_of_active,
       round(enabled_servers::numeric / nullif(reporting_servers, 0), 4) AS share_of_reporting
FROM analytics.daily_pmm_features;
COMMENT ON VIEW analytics.pmm_feature_adoption_daily IS
    'Per day, PMM features enabled on active PMM servers (latest report of each server).';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.day IS 'UTC day.';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.feature IS
    'alerting, advisors, backup_management, dbaas, access_control or updates_disabled.';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.active_servers IS 'Active PMM servers (30-day window).';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.reporting_servers IS 'Of those, servers whose latest report carried the flag.';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.enabled_servers IS 'Of those, servers with the flag set.';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.share_of_active IS 'enabled_servers / active_servers.';
COMMENT ON COLUMN analytics.pmm_feature_adoption_daily.share_of_reporting IS
    'enabled_servers / reporting_servers (servers that say nothing about the feature are left out).';

CREATE VIEW analytics.pmm_feature_adoption AS
SELECT f.feature, f.active_servers, f.reporting_servers, f.enabled_servers, f.share_of_active, f.share_of_reporting
FROM analytics.pmm_feature_adoption_daily f
JOIN analytics.rollup_state s ON f.day = s.complete_through;
COMMENT ON VIEW analytics.pmm_feature_adoption IS 'pmm_feature_adoption_daily on the snapshot day.';
COMMENT ON COLUMN analytics.pmm_feature_adoption.feature IS
    'alerting, advisors, backup_management, dbaas, access_control or updates_disabled.';
COMMENT ON COLUMN analytics.pmm_feature_adoption.active_servers IS 'Active PMM servers (30-day window).';
COMMENT ON COLUMN analytics.pmm_feature_adoption.reporting_servers IS 'Of those, servers whose latest report carried the flag.';
COMMENT ON COLUMN analytics.pmm_feature_adoption.enabled_servers IS 'Of those, servers with the flag set.';
COMMENT ON COLUMN analytics.pmm_feature_adoption.share_of_active IS 'enabled_servers / active_servers.';
COMMENT ON COLUMN analytics.pmm_feature_adoption.share_of_reporting IS 'enabled_servers / reporting_servers.';

CREATE VIEW analytics.countries_daily AS
SELECT c.day, c.product_family, c.country_code, c.active_instances,
       round(c.active_instances::numeric / a.active_instances, 4) AS share_of_family
FROM analytics.daily_countries c
JOIN analytics.daily_activity a USING (day, product_family);
COMMENT ON VIEW analytics.countries_daily IS 'Per day, active instances by country and product family.';
COMMENT ON COLUMN analytics.countries_daily.day IS 'UTC day.';
COMMENT ON COLUMN analytics.countries_daily.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.countries_daily.country_code IS 'ISO 3166-1 alpha-2; NULL when the address did not resolve.';
COMMENT ON COLUMN analytics.countries_daily.active_instances IS 'Active instances (30-day window) in this country.';
COMMENT ON COLUMN analytics.countries_daily.share_of_family IS 'Share of all active instances of the family.';

CREATE VIEW analytics.countries AS
SELECT c.product_family, c.country_code, c.active_instances, c.share_of_family
FROM analytics.countries_daily c
JOIN analytics.rollup_state s ON c.day = s.complete_through;
COMMENT ON VIEW analytics.countries IS 'countries_daily on the snapshot day.';
COMMENT ON COLUMN analytics.countries.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.countries.country_code IS 'ISO 3166-1 alpha-2; NULL when the address did not resolve.';
COMMENT ON COLUMN analytics.countries.active_instances IS 'Active instances (30-day window) in this country.';
COMMENT ON COLUMN analytics.countries.share_of_family IS 'Share of all active instances of the family.';

-- The upgrade views group the whole upgrades table; these indexes hand the rows over in group order.
CREATE INDEX upgrades_path_idx ON upgrades (product_family, from_version, to_version)
    INCLUDE (instance_id, upgraded_at, is_downgrade);
CREATE INDEX upgrades_to_version_idx ON upgrades (product_family, to_version, upgraded_at) INCLUDE (is_downgrade);

-- A percentile of (day - first_seen) is the percentile of day, minus first_seen: aggregating day
-- numbers first and joining the first sightings afterwards keeps the join off the big side.
CREATE VIEW analytics.upgrade_paths AS
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
       p.median_day_number - (f.first_seen - DATE '2000-01-01') AS median_days_after_first_seen,
       p.first_upgrade, p.last_upgrade
FROM paths p
LEFT JOIN firsts f ON f.product_family = p.product_family AND f.version = p.to_version;
COMMENT ON VIEW analytics.upgrade_paths IS
    'Version changes between consecutive reports of an instance (table upgrades), per from -> to pair.';
COMMENT ON COLUMN analytics.upgrade_paths.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.upgrade_paths.from_version IS 'Version before the change.';
COMMENT ON COLUMN analytics.upgrade_paths.to_version IS 'Version after the change.';
COMMENT ON COLUMN analytics.upgrade_paths.is_downgrade IS 'True when to_version is lower than from_version.';
COMMENT ON COLUMN analytics.upgrade_paths.upgrades IS 'Number of changes.';
COMMENT ON COLUMN analytics.upgrade_paths.instances IS 'Distinct instances that made the change.';
COMMENT ON COLUMN analytics.upgrade_paths.median_days_after_first_seen IS
    'Median of days from the first sighting of to_version (any instance) to the change (UTC days).';
COMMENT ON COLUMN analytics.upgrade_paths.first_upgrade IS 'createTime of the earliest such change.';
COMMENT ON COLUMN analytics.upgrade_paths.last_upgrade IS 'createTime of the latest such change.';

CREATE VIEW analytics.release_adoption AS
WITH firsts AS (
    SELECT product_family, version, min(day) AS first_seen
    FROM analytics.daily_versions
    GROUP BY 1, 2
),
releases AS (
    SELECT f.*,
           f.first_seen - lag(f.first_seen) OVER (PARTITION BY f.product_family, analytics.release_line(f.product_family, f.version)
                                                  ORDER BY version_sort_key(f.version)) AS days_since_previous_release
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
SELECT r.product_family, r.version, r.first_seen, r.days_since_previous_release,
       coalesce(a.upgrades, 0) AS upgrades,
       a.median_day_number - (r.first_seen - DATE '2000-01-01') AS median_days_to_upgrade,
       a.p90_day_number - (r.first_seen - DATE '2000-01-01') AS p90_days_to_upgrade,
       round((SELECT count(*) FROM upgrades u
              WHERE u.product_family = r.product_family AND u.to_version = r.version AND NOT u.is_downgrade
                AND u.upgraded_at < (r.first_seen + 31)::timestamp AT TIME ZONE 'UTC')::numeric
             / a.upgrades, 4) AS share_within_30_days
FROM releases r
LEFT JOIN arrivals a ON a.product_family = r.product_family AND a.version = r.version;
COMMENT ON VIEW analytics.release_adoption IS
    'How fast instances upgrade to each release, next to how long after the previous release of the same '
    'line it appeared: relates release frequency to adoption. Downgrades are left out.';
COMMENT ON COLUMN analytics.release_adoption.product_family IS 'ProductFamily enum name.';
COMMENT ON COLUMN analytics.release_adoption.version IS 'The release upgraded to.';
COMMENT ON COLUMN analytics.release_adoption.first_seen IS 'First UTC day any instance reported it.';
COMMENT ON COLUMN analytics.release_adoption.days_since_previous_release IS
    'Days between the first sightings of the previous version of the same line and this one.';
COMMENT ON COLUMN analytics.release_adoption.upgrades IS 'Upgrades to this version.';
COMMENT ON COLUMN analytics.release_adoption.median_days_to_upgrade IS 'Median days from first_seen to an upgrade.';
COMMENT ON COLUMN analytics.release_adoption.p90_days_to_upgrade IS '90th percentile of days from first_seen to an upgrade.';
COMMENT ON COLUMN analytics.release_adoption.share_within_30_days IS 'Share of the upgrades that came within 30 days of first_seen.';

CREATE VIEW analytics.grace_period_by_version AS
SELECT n.first_version AS pmm_version,
       sum(n.new_instances)::integer AS new_instances,
       sum(n.with_up_duration)::integer AS with_up_duration,
       sum(n.first_report_under_24h)::integer AS first_report_under_24h,
       round(sum(n.first_report_under_24h)::numeric / nullif(sum(n.with_up_duration), 0), 4) AS share_under_24h,
       min(n.day) AS first_day,
       max(n.day) AS last_day
FROM analytics.daily_new_instances n
WHERE n.product_family = 'PRODUCT_FAMILY_PMM'
GROUP BY n.first_version;
COMMENT ON VIEW analytics.grace_period_by_version IS
    'Grace-period check: of the new PMM servers, by the version in their first report, how many sent that '
    'first report with UpDuration under 24 hours, i.e. without waiting for the documented grace period.';
COMMENT ON COLUMN analytics.grace_period_by_version.pmm_version IS 'PMMServerVersion in the first report.';
COMMENT ON COLUMN analytics.grace_period_by_version.new_instances IS 'New PMM instances whose first report had this version.';
COMMENT ON COLUMN analytics.grace_period_by_version.with_up_duration IS 'Of those, first reports that carried UpDuration.';
COMMENT ON COLUMN analytics.grace_period_by_version.first_report_under_24h IS 'Of those, first reports with UpDuration under 86400 s.';
COMMENT ON COLUMN analytics.grace_period_by_version.share_under_24h IS 'first_report_under_24h / with_up_duration.';
COMMENT ON COLUMN analytics.grace_period_by_version.first_day IS 'Earliest first-report day among them.';
COMMENT ON COLUMN analytics.grace_period_by_version.last_day IS 'Latest first-report day among them.';

-- ---------------------------------------------------------------------------------------------
-- Read-only role for analysts
-- ---------------------------------------------------------------------------------------------

-- Roles are cluster-wide and several databases may run this migration at once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'telemetry_analyst') THEN
        CREATE ROLE telemetry_analyst NOLOGIN;
        COMMENT ON ROLE telemetry_analyst IS
            'Read-only access to telemetry data: SELECT on the analytics schema and on instances, reports and '
            'upgrades. Grant it to a login role (docs/analytics.md).';
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA analytics TO telemetry_analyst;
GRANT USAGE ON SCHEMA public TO telemetry_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO telemetry_analyst;
GRANT SELECT ON instances, reports, upgrades TO telemetry_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO telemetry_analyst;

-- Metric values are free text, but versions and distribution methods are lifted out of them into
-- columns, btree indexes (upgrades, the rollups' keys) and /stats. A value of a few kilobytes was
-- accepted and then failed every later write of its instance and every rollup refresh. From here on
-- only plain labels enter those columns (the same rule as the service's
-- typed_metrics::is_plausible_label, tests/analytics.rs holds the two together); every value stays
-- exactly as sent in reports.metrics.
--
-- Redefines analytics.extract_metrics(jsonb) (keeping 20261202110001's reading of NUL-escaped
-- pairs); adds analytics.plausible_label(text).

CREATE FUNCTION analytics.plausible_label(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN octet_length(value) BETWEEN 1 AND 64 THEN value ~ '^[!-~]([ -~]*[!-~])?$' ELSE false END;
COMMENT ON FUNCTION analytics.plausible_label(text) IS
    'True when a metric value is plain enough to be a version or a category: 1 to 64 printable ASCII '
    'characters, neither starting nor ending with a space (8.0.36-28, 3.2.0, 16.4 (Ubuntu 16.4-1), DOCKER). '
    'Only such values enter the version columns (reports.version, instances.version, upgrades, '
    'analytics.instance_days and the rollups) and distribution_method; other values are kept only in '
    'reports.metrics, exactly as sent.';

CREATE OR REPLACE FUNCTION analytics.extract_metrics(metrics jsonb) RETURNS analytics.typed_metrics
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT ROW(
        -- The first key present decides, as for the counts: an unreadable DistributionMethod does
        -- not fall back to deployment.
        CASE WHEN analytics.plausible_label(t.distribution_method) THEN t.distribution_method END,
        t.alerting_enabled, t.stt_enabled, t.advisors_disabled, t.backup_management_enabled,
        t.dbaas_enabled, t.access_control_enabled, t.updates_disabled, t.grafana_users, t.nodes,
        t.services, t.mysql_versions, t.mongodb_versions, t.postgresql_versions
    )::analytics.typed_metrics
    FROM (
        SELECT
            coalesce((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'DistributionMethod'))[1],
                     (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'deployment'))[1])
                AS distribution_method,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_ia_enabled'))[1])
                AS alerting_enabled,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_stt_enabled'))[1])
                AS stt_enabled,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'pmm_server_advisors_disabled'))[1]) AS advisors_disabled,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'pmm_server_backup_management_enabled'))[1]) AS backup_management_enabled,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'pmm_server_dbaas_enabled'))[1]) AS dbaas_enabled,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'pmm_server_access_control_enabled'))[1]) AS access_control_enabled,
            analytics.parse_flag((array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'pmm_server_updates_disabled'))[1]) AS updates_disabled,
            analytics.parse_count(coalesce(
                (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'grafana_users_count'))[1],
                (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_grafana_stat_total_users'))[1]))
                AS grafana_users,
            analytics.parse_count((array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'pmm_server_usage_nodes_count'))[1]) AS nodes,
            analytics.parse_count(coalesce(
                (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_usage_services_count'))[1],
                (array_agg(m.value ORDER BY m.n) FILTER (WHERE m.key = 'pmm_server_pmm_usage_services_count'))[1]))
                AS services,
            array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'mysql_version' AND analytics.plausible_label(m.value)) AS mysql_versions,
            array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'mongodb_version' AND analytics.plausible_label(m.value)) AS mongodb_versions,
            array_agg(m.value ORDER BY m.n)
                FILTER (WHERE m.key = 'postgresql_version' AND analytics.plausible_label(m.value))
                AS postgresql_versions
        -- As in 20261202110001_nul_escaped_metrics: a value that held U+0000 counts as absent.
        FROM (SELECT r.key, CASE WHEN r.nul_escaped THEN NULL ELSE r.value END AS value, r.n
              FROM ROWS FROM (jsonb_to_recordset(metrics) AS (key text, value text, nul_escaped boolean))
                   WITH ORDINALITY AS r(key, value, nul_escaped, n)) AS m
    ) AS t;
END;
COMMENT ON FUNCTION analytics.extract_metrics(jsonb) IS
    'Reads the known PMM and agent keys (docs/protocol.md, PMM metric keys) from a reports.metrics array '
    'in one pass: the first value of each single-valued key, every value of the per-service version keys. '
    'A value that held U+0000 (a "nul_escaped" pair) counts as absent. '
    'Versions and the distribution method count only when analytics.plausible_label() accepts them. '
    'The same mapping ingest applies (in the service) to fill analytics.instance_days; use it on '
    'reports.metrics for the same fields of any stored report. Other keys stay in reports.metrics.';

-- Derived data stored before this migration: raw metrics stay as they are, derived columns lose
-- what the rule refuses.

UPDATE reports SET version = NULL
WHERE version IS NOT NULL AND NOT analytics.plausible_label(version);

-- An instance whose latest version was junk takes the latest plain version among its kept reports.
UPDATE instances i
SET (version, version_seen_at) = (
    SELECT r.version, r.created_at
    FROM reports r
    WHERE r.instance_id = i.instance_id AND r.product_family = i.product_family AND r.version IS NOT NULL
    ORDER BY r.created_at DESC, r.report_id DESC
    LIMIT 1)
WHERE i.version IS NOT NULL AND NOT analytics.plausible_label(i.version);

-- Upgrade rows to or from junk are dropped, and the versions on either side joined up, as if the
-- junk had never been a version: 3.1.0 -> junk -> 3.2.0 becomes 3.1.0 -> 3.2.0 (at the time and
-- report of the change to 3.2.0), 3.1.0 -> junk -> 3.1.0 no change at all. Rows between plain
-- versions come out as they were.
CREATE TEMP TABLE junk_upgrade_instances ON COMMIT DROP AS
SELECT DISTINCT instance_id, product_family
FROM upgrades
WHERE NOT analytics.plausible_label(from_version) OR NOT analytics.plausible_label(to_version);

CREATE TEMP TABLE rederived_upgrades ON COMMIT DROP AS
WITH steps AS (
    -- Each instance's version sequence: the version before its first change, then every change.
    SELECT u.instance_id, u.product_family, '-infinity'::timestamptz AS at, NULL::uuid AS report_id,
           (array_agg(u.from_version ORDER BY u.upgraded_at, u.report_id))[1] AS version
    FROM upgrades u
    JOIN junk_upgrade_instances j USING (instance_id, product_family)
    GROUP BY u.instance_id, u.product_family
    UNION ALL
    SELECT u.instance_id, u.product_family, u.upgraded_at, u.report_id, u.to_version
    FROM upgrades u
    JOIN junk_upgrade_instances j USING (instance_id, product_family)
),
plain AS (
    SELECT s.*, lag(s.version) OVER (PARTITION BY s.instance_id, s.product_family ORDER BY s.at, s.report_id)
                    AS previous_version
    FROM steps s
    WHERE analytics.plausible_label(s.version)
)
SELECT instance_id, product_family, previous_version AS from_version, version AS to_version,
       at AS upgraded_at, report_id
FROM plain
WHERE previous_version <> version;

DELETE FROM upgrades u
USING junk_upgrade_instances j
WHERE u.instance_id = j.instance_id AND u.product_family = j.product_family;

INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
SELECT instance_id, product_family, from_version, to_version, upgraded_at, report_id
FROM rederived_upgrades;

-- The daily facts: a junk day version falls back to the day's latest plain one while its reports
-- are kept; the rollups of every day touched are rebuilt by the next refresh.
CREATE TEMP TABLE junk_days ON COMMIT DROP AS
SELECT day, instance_id, product_family
FROM analytics.instance_days d
WHERE NOT analytics.plausible_label(d.version)
   OR NOT analytics.plausible_label(d.first_version)
   OR NOT analytics.plausible_label(d.distribution_method)
   OR EXISTS (SELECT FROM unnest(d.mysql_versions || d.mongodb_versions || d.postgresql_versions) AS v(version)
              WHERE NOT analytics.plausible_label(v.version));

UPDATE analytics.instance_days d
SET first_version = CASE WHEN analytics.plausible_label(d.first_version) THEN d.first_version END,
    version = CASE WHEN analytics.plausible_label(d.version) THEN d.version ELSE (
        SELECT r.version
        FROM reports r
        WHERE r.instance_id = d.instance_id AND r.product_family = d.product_family
          AND r.created_at >= d.day::timestamp AT TIME ZONE 'UTC'
          AND r.created_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
          AND r.version IS NOT NULL
        ORDER BY r.created_at DESC, r.report_id DESC
        LIMIT 1) END,
    distribution_method = CASE WHEN analytics.plausible_label(d.distribution_method) THEN d.distribution_method END,
    mysql_versions = (SELECT array_agg(v ORDER BY n) FROM unnest(d.mysql_versions) WITH ORDINALITY AS x(v, n)
                      WHERE analytics.plausible_label(v)),
    mongodb_versions = (SELECT array_agg(v ORDER BY n) FROM unnest(d.mongodb_versions) WITH ORDINALITY AS x(v, n)
                        WHERE analytics.plausible_label(v)),
    postgresql_versions = (SELECT array_agg(v ORDER BY n) FROM unnest(d.postgresql_versions) WITH ORDINALITY AS x(v, n)
                           WHERE analytics.plausible_label(v))
FROM junk_days j
WHERE d.day = j.day AND d.instance_id = j.instance_id AND d.product_family = j.product_family;

INSERT INTO analytics.stale_days (day, noted_at)
SELECT DISTINCT day, now() FROM junk_days
ON CONFLICT (day) DO UPDATE SET noted_at = excluded.noted_at;

-- Rollup rows already built from junk go now rather than at the next refresh, so the views are
-- clean in between.
DELETE FROM analytics.daily_versions WHERE NOT analytics.plausible_label(version);
DELETE FROM analytics.daily_new_instances WHERE NOT analytics.plausible_label(first_version);
DELETE FROM analytics.daily_monitored_databases WHERE NOT analytics.plausible_label(version);

-- What the derived columns hold now: only plain labels, and for every family pillar_version when
-- the family's own version key is absent (call-home.sh sends pillar_version whatever the product).
COMMENT ON COLUMN reports.version IS
    'Product version from the report: PMMServerVersion for PMM, version for Everest, pillar_version for '
    'the others, and pillar_version for PMM and Everest too when their own key is absent or empty. NULL '
    'when there is none or it is not a plain label (analytics.plausible_label); the raw value is in metrics.';
COMMENT ON COLUMN instances.version IS
    'Product version (as reports.version) in the instance''s latest report (by createTime) that carried one.';
COMMENT ON COLUMN upgrades.from_version IS
    'Version in the previous report that carried a version (reports.version: plain labels only).';
COMMENT ON COLUMN upgrades.to_version IS
    'Version in the first report with the new version (reports.version: plain labels only).';
COMMENT ON COLUMN analytics.instance_days.first_version IS
    'Product version (reports.version) of the day''s earliest report; NULL if it had none.';
COMMENT ON COLUMN analytics.instance_days.version IS
    'Product version of the day''s latest report that carried one (reports.version).';
COMMENT ON COLUMN analytics.instance_days.distribution_method IS
    'PMM DistributionMethod (DOCKER, OVF, AMI, AZURE, DO) or the agent''s deployment (PACKAGE, DOCKER); '
    'NULL when absent or not a plain label (analytics.plausible_label).';
COMMENT ON COLUMN analytics.instance_days.mysql_versions IS
    'PMM: one mysql_version per monitored MySQL service; values that are not plain labels '
    '(analytics.plausible_label) are left out.';
COMMENT ON COLUMN analytics.instance_days.mongodb_versions IS
    'PMM: one mongodb_version per monitored MongoDB service; values that are not plain labels are left out.';
COMMENT ON COLUMN analytics.instance_days.postgresql_versions IS
    'PMM: one postgresql_version per monitored PostgreSQL service; values that are not plain labels are left out.';
COMMENT ON COLUMN analytics.daily_versions.version IS
    'Product version (reports.version: PMMServerVersion, pillar_version or Everest version).';
COMMENT ON COLUMN analytics.daily_monitored_databases.version IS
    'Version as reported (mysql_version, mongodb_version, postgresql_version), when a plain label.';

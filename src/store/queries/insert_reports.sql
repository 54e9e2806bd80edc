-- Also runs on Citus (src/store/distribute.rs), where it is split into one step per CTE, each its own
-- query and snapshot, run in the order written: every read of a distributed table names the
-- batch's instances ($2, which the writer keeps to one shard there), and what must be read before
-- the upsert (prior) is materialized before it. The days the rollups must rebuild are returned, not
-- written to analytics.stale_days here: on Citus that is a reference table, and writing it (even no
-- rows) would make every batch a transaction on every node.
WITH incoming AS (
    -- The metrics arrive packed (src/stored_metrics.rs, as pack_metrics() packs them); the arrays of
    -- each report's row as array literals, since UNNEST cannot take a text[][] whose rows differ in
    -- length.
    SELECT *
    FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                $7::bigint[], $8::text[], $9::bigint[], $10::text[], $11::boolean[], $12::boolean[],
                $13::boolean[], $14::boolean[], $15::boolean[], $16::boolean[], $17::boolean[],
                $18::integer[], $19::integer[], $20::integer[], $21::text[], $22::text[], $23::text[],
                $24::timestamptz[], $25::text[], $26::text[], $27::text[])
        AS t(report_id, instance_id, product_family, created_at, version, country_code,
             up_duration_seconds, protocol, metric_keys, distribution_method, alerting_enabled,
             stt_enabled, advisors_disabled, backup_management_enabled, dbaas_enabled,
             access_control_enabled, updates_disabled, grafana_users, nodes, services,
             mysql_versions, mongodb_versions, postgresql_versions, received_at, metric_values,
             metric_digests, metric_nul_escaped)
),
kept_metric_values AS (
    -- Each instance's key lists and long values, once per month of arrival; in one order, so that
    -- two batches cannot deadlock on them.
    INSERT INTO report_metric_values (arrived_month, instance_id, digest, value)
    SELECT DISTINCT ON (arrived_month, instance_id, digest) arrived_month, instance_id, digest, value
    FROM (
        SELECT date_trunc('month', coalesce(e.received_at, now()) AT TIME ZONE 'UTC')::date AS arrived_month,
               e.instance_id, e.digest, e.value
        FROM UNNEST($28::uuid[], $29::timestamptz[], $30::bigint[], $31::text[])
            AS e(instance_id, received_at, digest, value)
    ) entries
    ORDER BY arrived_month, instance_id, digest
    ON CONFLICT DO NOTHING
    RETURNING 1 AS done
),
inserted AS (
    INSERT INTO report_rows (report_id, instance_id, product_family, created_at, received_at, version,
                             country_code, up_duration_seconds, protocol, metric_keys, metric_values,
                             metric_digests, metric_nul_escaped)
    SELECT DISTINCT ON (instance_id, report_id)
           report_id, instance_id, product_family, created_at, coalesce(received_at, now()), version,
           country_code, up_duration_seconds, protocol, metric_keys, metric_values::text[],
           metric_digests::bigint[], metric_nul_escaped::integer[]
    FROM incoming n
    -- A re-send: the instance's lock (lock_instances.sql, taken before this statement) makes sure
    -- no other transaction stores the same report between this check and the commit. A report
    -- arrived no earlier than its createTime less report_clock_lead_limit(), or else it is in
    -- reports_dated_ahead: each report is looked for in the partitions from that time on only,
    -- usually this month's. OFFSET 0 keeps that a probe per report; as a join, the planner reads
    -- every report the batch's instances ever sent instead. $32 is true on one server, where the
    -- list of the batch's instances would be walked again by every probe (each then costs as much
    -- as the batch is large), and false on Citus, which needs the list to route the probe.
    WHERE NOT EXISTS (SELECT FROM report_rows r
                      WHERE r.instance_id = n.instance_id AND r.report_id = n.report_id
                        AND r.received_at >= n.created_at - report_clock_lead_limit()
                        AND ($32 OR r.instance_id = ANY($2))
                      OFFSET 0)
      AND NOT EXISTS (SELECT FROM reports_dated_ahead a
                      WHERE a.instance_id = n.instance_id AND a.report_id = n.report_id
                        AND a.instance_id = ANY($2))
    ORDER BY instance_id, report_id
    RETURNING report_id, instance_id, product_family, created_at, received_at, version, country_code,
              up_duration_seconds, analytics.report_day(created_at, received_at) AS day
),
dated_ahead AS (
    -- Reports that the check above would not look for where they are.
    INSERT INTO reports_dated_ahead (instance_id, report_id, received_at)
    SELECT instance_id, report_id, received_at
    FROM inserted
    WHERE created_at - report_clock_lead_limit() > received_at
    RETURNING 1 AS done
),
per_instance AS (
    SELECT instance_id,
           product_family,
           min(created_at) AS first_seen,
           max(created_at) AS last_seen,
           min(day) AS first_day,
           max(received_at) AS last_received_at,
           (array_agg(version ORDER BY created_at DESC, report_id DESC)
                FILTER (WHERE version IS NOT NULL))[1] AS version,
           max(created_at) FILTER (WHERE version IS NOT NULL) AS version_seen_at,
           min(created_at) FILTER (WHERE version IS NOT NULL) AS earliest_versioned,
           (array_agg(country_code ORDER BY created_at DESC, report_id DESC)
                FILTER (WHERE country_code IS NOT NULL))[1] AS country_code,
           max(created_at) FILTER (WHERE country_code IS NOT NULL) AS country_seen_at,
           count(*) AS report_count,
           -- Reports stored as arriving in the past (generated history) are not among the
           -- arrivals a refresh looks for once it has passed them: their days are noted instead.
           array_agg(DISTINCT day) FILTER (WHERE received_at < now() - interval '10 minutes') AS unseen_days
    FROM inserted
    GROUP BY instance_id, product_family
),
prior AS MATERIALIZED (
    -- The instances as they stood before this statement: its snapshot.
    SELECT i.instance_id, i.product_family, i.first_day, i.version, i.version_seen_at, i.report_count
    FROM instances i
    JOIN per_instance p USING (instance_id, product_family)
    WHERE i.instance_id = ANY($2)
),
upserted AS (
    INSERT INTO instances AS i (instance_id, product_family, first_seen, last_seen, first_day, version,
                                version_seen_at, country_code, country_seen_at, report_count,
                                last_received_at)
    SELECT instance_id, product_family, first_seen, last_seen, first_day, version,
           version_seen_at, country_code, country_seen_at, report_count, last_received_at
    FROM per_instance
    ORDER BY instance_id, product_family
    ON CONFLICT (instance_id, product_family) DO UPDATE SET
        first_seen = least(i.first_seen, excluded.first_seen),
        last_seen = greatest(i.last_seen, excluded.last_seen),
        first_day = least(i.first_day, excluded.first_day),
        version = CASE
            WHEN excluded.version_seen_at IS NOT NULL
                 AND (i.version_seen_at IS NULL OR excluded.version_seen_at > i.version_seen_at)
            THEN excluded.version ELSE i.version END,
        version_seen_at = CASE
            WHEN excluded.version_seen_at IS NOT NULL
                 AND (i.version_seen_at IS NULL OR excluded.version_seen_at > i.version_seen_at)
            THEN excluded.version_seen_at ELSE i.version_seen_at END,
        -- The country follows the latest report by createTime whose address resolved, as the
        -- version does and as the rollups count it: a late, older report does not overwrite it.
        country_code = CASE
            WHEN excluded.country_seen_at IS NOT NULL
                 AND (i.country_seen_at IS NULL OR excluded.country_seen_at > i.country_seen_at)
            THEN excluded.country_code ELSE i.country_code END,
        country_seen_at = CASE
            WHEN excluded.country_seen_at IS NOT NULL
                 AND (i.country_seen_at IS NULL OR excluded.country_seen_at > i.country_seen_at)
            THEN excluded.country_seen_at ELSE i.country_seen_at END,
        report_count = i.report_count + excluded.report_count,
        last_received_at = greatest(i.last_received_at, excluded.last_received_at)
    RETURNING i.instance_id, i.product_family, i.report_count
),
in_order AS (
    -- Instances whose new reports all come after every stored report with a version, and
    -- whose row no other transaction changed between this statement's snapshot and its
    -- upsert (every change adds to report_count): their upgrades follow from the last
    -- version and the new reports alone, with nothing stored to re-derive.
    SELECT p.instance_id, p.product_family, r.version AS previous_version
    FROM per_instance p
    JOIN upserted u USING (instance_id, product_family)
    LEFT JOIN prior r USING (instance_id, product_family)
    WHERE p.earliest_versioned IS NOT NULL
      AND u.report_count = coalesce(r.report_count, 0) + p.report_count
      AND (r.version_seen_at IS NULL OR p.earliest_versioned > r.version_seen_at)
),
appended_upgrades AS (
    INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
    SELECT instance_id, product_family, from_version, version, created_at, report_id
    FROM (
        SELECT n.instance_id, n.product_family, n.report_id, n.created_at, n.version,
               lag(n.version, 1, o.previous_version)
                   OVER (PARTITION BY n.instance_id, n.product_family
                         ORDER BY n.created_at, n.report_id) AS from_version
        FROM inserted n
        JOIN in_order o USING (instance_id, product_family)
        WHERE n.version IS NOT NULL
    ) sequence
    WHERE from_version <> version
    RETURNING 1 AS done
),
day_summary AS (
    SELECT day, instance_id, product_family,
           count(*) AS report_count,
           min(created_at) AS first_report_at,
           (array_agg(up_duration_seconds ORDER BY created_at, report_id))[1] AS first_up_duration_seconds,
           (array_agg(version ORDER BY created_at, report_id))[1] AS first_version,
           (array_agg(version ORDER BY created_at DESC, report_id DESC)
                FILTER (WHERE version IS NOT NULL))[1] AS version,
           array_agg(DISTINCT version) FILTER (WHERE version IS NOT NULL) AS versions,
           (array_agg(country_code ORDER BY created_at DESC, report_id DESC)
                FILTER (WHERE country_code IS NOT NULL))[1] AS country_code
    FROM inserted
    GROUP BY day, instance_id, product_family
),
day_latest AS (
    -- The typed metrics were read from each report in the service (src/typed_metrics.rs).
    SELECT DISTINCT ON (n.day, n.instance_id, n.product_family)
           n.day, n.instance_id, n.product_family, n.created_at, n.report_id,
           i.distribution_method, i.alerting_enabled, i.stt_enabled, i.advisors_disabled,
           i.backup_management_enabled, i.dbaas_enabled, i.access_control_enabled,
           i.updates_disabled, i.grafana_users, i.nodes, i.services,
           i.mysql_versions::text[] AS mysql_versions, i.mongodb_versions::text[] AS mongodb_versions,
           i.postgresql_versions::text[] AS postgresql_versions
    FROM inserted n
    JOIN (SELECT DISTINCT ON (instance_id, report_id) * FROM incoming ORDER BY instance_id, report_id) i
        USING (instance_id, report_id)
    ORDER BY n.day, n.instance_id, n.product_family, n.created_at DESC, n.report_id DESC
),
folded AS (
    -- The typed daily facts analytics reads; they outlive the raw reports (src/retention.rs).
    -- Typed metrics follow the day's latest report, whichever batch it came in.
    INSERT INTO analytics.instance_days AS d (
        day, instance_id, product_family, report_count, first_report_at, last_report_at, last_report_id,
        first_up_duration_seconds, first_version, version, extra_versions, country_code,
        distribution_method, alerting_enabled, stt_enabled, advisors_disabled,
        backup_management_enabled, dbaas_enabled, access_control_enabled, updates_disabled,
        grafana_users, nodes, services, mysql_versions, mongodb_versions, postgresql_versions)
    SELECT s.day, s.instance_id, s.product_family, s.report_count, s.first_report_at, l.created_at,
           l.report_id, s.first_up_duration_seconds, s.first_version, s.version,
           nullif(array_remove(array_remove(s.versions, s.first_version), s.version), '{}'),
           s.country_code,
           l.distribution_method, l.alerting_enabled, l.stt_enabled, l.advisors_disabled,
           l.backup_management_enabled, l.dbaas_enabled, l.access_control_enabled, l.updates_disabled,
           l.grafana_users, l.nodes, l.services, l.mysql_versions, l.mongodb_versions,
           l.postgresql_versions
    FROM day_summary s
    JOIN day_latest l USING (day, instance_id, product_family)
    ORDER BY s.day, s.instance_id, s.product_family
    ON CONFLICT (day, instance_id, product_family) DO UPDATE SET
        report_count = d.report_count + excluded.report_count,
        first_report_at = least(d.first_report_at, excluded.first_report_at),
        first_up_duration_seconds = CASE WHEN excluded.first_report_at < d.first_report_at
            THEN excluded.first_up_duration_seconds ELSE d.first_up_duration_seconds END,
        first_version = CASE WHEN excluded.first_report_at < d.first_report_at
            THEN excluded.first_version ELSE d.first_version END,
        version = CASE WHEN (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
            THEN coalesce(excluded.version, d.version) ELSE coalesce(d.version, excluded.version) END,
        -- Every version of the day stays: whichever of the two sides' versions the new
        -- first_version and version (as just above) do not keep.
        extra_versions = (
            SELECT array_agg(DISTINCT v ORDER BY v)
            FROM unnest(ARRAY[d.first_version, d.version, excluded.first_version, excluded.version]
                        || d.extra_versions || excluded.extra_versions) AS v
            WHERE v IS NOT NULL
              AND v IS DISTINCT FROM CASE WHEN excluded.first_report_at < d.first_report_at
                  THEN excluded.first_version ELSE d.first_version END
              AND v IS DISTINCT FROM CASE
                  WHEN (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
                  THEN coalesce(excluded.version, d.version) ELSE coalesce(d.version, excluded.version) END),
        country_code = CASE WHEN (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
            THEN coalesce(excluded.country_code, d.country_code)
            ELSE coalesce(d.country_code, excluded.country_code) END,
        (last_report_at, last_report_id, distribution_method, alerting_enabled, stt_enabled,
         advisors_disabled, backup_management_enabled, dbaas_enabled, access_control_enabled,
         updates_disabled, grafana_users, nodes, services, mysql_versions, mongodb_versions,
         postgresql_versions) =
        (SELECT excluded.last_report_at, excluded.last_report_id, excluded.distribution_method,
                excluded.alerting_enabled, excluded.stt_enabled, excluded.advisors_disabled,
                excluded.backup_management_enabled, excluded.dbaas_enabled,
                excluded.access_control_enabled, excluded.updates_disabled, excluded.grafana_users,
                excluded.nodes, excluded.services, excluded.mysql_versions, excluded.mongodb_versions,
                excluded.postgresql_versions
         WHERE (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
         UNION ALL
         SELECT d.last_report_at, d.last_report_id, d.distribution_method, d.alerting_enabled,
                d.stt_enabled, d.advisors_disabled, d.backup_management_enabled, d.dbaas_enabled,
                d.access_control_enabled, d.updates_disabled, d.grafana_users, d.nodes, d.services,
                d.mysql_versions, d.mongodb_versions, d.postgresql_versions
         WHERE (excluded.last_report_at, excluded.last_report_id) <= (d.last_report_at, d.last_report_id))
    RETURNING 1 AS done
)
SELECT p.instance_id AS "instance_id!", p.product_family AS "product_family!",
       p.earliest_versioned AS "since?", p.report_count AS "report_count!",
       o.instance_id IS NOT NULL AS "upgrades_appended!",
       -- A late report older than an instance's first day moves that day: the old one is no
       -- longer the day the instance was new, and its rollups must be rebuilt.
       CASE WHEN p.first_day < r.first_day THEN r.first_day END AS "moved_first_day?",
       p.unseen_days AS "unseen_days?"
FROM per_instance p
LEFT JOIN in_order o USING (instance_id, product_family)
LEFT JOIN prior r USING (instance_id, product_family)


-- Raw reports partitioned by arrival month, their metrics stored compactly, and reports kept as the
-- view analysts query (#19).
--
-- Storage. report_rows holds the reports, natively partitioned by received_at, one partition per
-- UTC month (report_rows_YYYY_MM). Retention drops a month of reports as one table instead of
-- deleting them row by row. Each report's metrics are packed by pack_metrics(): the keys, as one
-- list, and every value of metric_dictionary_min_bytes() or more go to report_metric_values, once
-- per instance and month (an instance sends the same package list or plugin set day after day);
-- the row keeps the short values and the digests of the rest. report_metric_values is partitioned by
-- the same months and dropped with them. An agent report's row shrinks from about 1.7 KB to about
-- 0.5 KB (docs/performance.md, "Bytes per report").
--
-- Reading. reports is now a view over report_rows with the same columns, names, meanings and
-- comments as the table it replaces; its metrics column is rebuilt by report_metrics() exactly as
-- sent. Analysts' queries keep working; a condition on received_at reads only the months it names.
--
-- Identity. report_id is no longer a key on its own. A partitioned table can only have unique keys
-- that include the partition column, and a distributed one (Citus) only keys that include
-- instance_id, so no index can refuse a re-sent report on its own. Ingest serializes the reports
-- of each instance instead (an advisory transaction lock per instance, taken before the insert;
-- src/store/queries/lock_instances.sql) and skips every (instance_id, report_id) already stored in
-- any month (src/store/queries/insert_reports.sql). The same report id sent by two instances is two
-- reports.
--
-- Indexes, measured on the ingest path (docs/performance.md, "Indexes on the ingest path"):
--   reports_pkey (report_id)                               dropped: replaced by the next one
--   reports_instance_created_at_idx (instance_id, product_family, created_at)
--                                                          replaced by the next one
--   report_rows_instance_report_idx (instance_id, report_id)
--                                                          new: the re-send check, and an instance's
--                                                          reports for the rare re-derivation of its
--                                                          upgrades; one random-key index, not two
--   BRIN on received_at and created_at                     kept: a few pages per partition
--
-- Every existing row is copied into its month's partition, its metrics packed.

ALTER TABLE reports RENAME TO reports_unpartitioned;
DROP INDEX reports_instance_created_at_idx, reports_received_at_idx, reports_created_at_brin_idx;

CREATE FUNCTION metric_dictionary_min_bytes() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 32;
COMMENT ON FUNCTION metric_dictionary_min_bytes() IS
    'Metric values this long (in bytes) or longer are stored once per instance and month in '
    'report_metric_values; shorter ones stay in the report''s row, where they cost less than a digest '
    'and a dictionary entry. UpDuration and the other counters that change with every report are shorter.';

CREATE FUNCTION metric_digest(value text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ('x' || encode(substr(sha256(textsend(value)), 1, 8), 'hex'))::bit(64)::bigint;
COMMENT ON FUNCTION metric_digest(text) IS
    'The first 64 bits of the SHA-256 of a metric value (or of a report''s key list): how a report '
    'refers to its entry in report_metric_values.';

CREATE FUNCTION pack_metrics(metrics jsonb,
                             OUT keys text, OUT short_values text[], OUT value_digests bigint[],
                             OUT nul_escaped integer[], OUT long_values text[])
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(jsonb_agg(p->'key' ORDER BY n), '[]'::jsonb)::text,
           coalesce(array_agg(CASE WHEN octet_length(p->>'value') < metric_dictionary_min_bytes()
                                   THEN p->>'value' END ORDER BY n), '{}'),
           CASE WHEN bool_or(octet_length(p->>'value') >= metric_dictionary_min_bytes()) THEN
               array_agg(CASE WHEN octet_length(p->>'value') >= metric_dictionary_min_bytes()
                              THEN metric_digest(p->>'value') END ORDER BY n)
           END,
           array_agg(n::integer ORDER BY n) FILTER (WHERE p ? 'nul_escaped'),
           coalesce(array_agg(p->>'value' ORDER BY n)
                        FILTER (WHERE octet_length(p->>'value') >= metric_dictionary_min_bytes()), '{}')
    FROM jsonb_array_elements(metrics) WITH ORDINALITY AS e(p, n);
END;
COMMENT ON FUNCTION pack_metrics(jsonb) IS
    'A report''s metrics (the JSON array of {"key", "value"} pairs as sent) in the shape report_rows '
    'stores: the key list as a JSON array (kept in report_metric_values, referred to by its '
    'metric_digest()), the short values in order with NULL where a long value was, the digests of '
    'the long values in order with NULL where a short value was (NULL if there is no long value), '
    'the 1-based positions of the pairs marked nul_escaped, and the long values to keep in '
    'report_metric_values. report_metrics() puts them back together.';

CREATE TABLE report_rows (
    report_id           uuid        NOT NULL,
    instance_id         uuid        NOT NULL,
    product_family      text        NOT NULL,
    created_at          timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    version             text,
    country_code        text CHECK (country_code ~ '^[A-Z]{2}$'),
    up_duration_seconds bigint,
    protocol            text        NOT NULL,
    metric_keys         bigint      NOT NULL,
    metric_values       text[]      COMPRESSION lz4 NOT NULL,
    metric_digests      bigint[],
    metric_nul_escaped  integer[]
) PARTITION BY RANGE (received_at);
CREATE INDEX report_rows_instance_report_idx ON report_rows (instance_id, report_id);
CREATE INDEX report_rows_received_at_idx ON report_rows USING brin (received_at);
CREATE INDEX report_rows_created_at_idx ON report_rows USING brin (created_at);
COMMENT ON TABLE report_rows IS
    'Where the reports view keeps its rows: one partition per UTC month of arrival (report_rows_YYYY_MM), '
    'the metrics packed by pack_metrics(). Query reports instead; this table''s shape may change.';
COMMENT ON COLUMN report_rows.metric_keys IS 'metric_digest() of the key list, kept in report_metric_values.';
COMMENT ON COLUMN report_rows.metric_values IS 'The values shorter than metric_dictionary_min_bytes(), in order; NULL where a long value was.';
COMMENT ON COLUMN report_rows.metric_digests IS 'metric_digest() of each long value, in order; NULL where a short value was, and NULL altogether when there is none.';
COMMENT ON COLUMN report_rows.metric_nul_escaped IS 'The 1-based positions of the pairs marked "nul_escaped": true; NULL when there is none.';

CREATE TABLE report_metric_values (
    arrived_month date   NOT NULL,
    instance_id   uuid   NOT NULL,
    digest        bigint NOT NULL,
    value         text   COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (arrived_month, instance_id, digest)
) PARTITION BY RANGE (arrived_month);
COMMENT ON TABLE report_metric_values IS
    'The key lists and long metric values of the reports of one instance that arrived in one UTC month, '
    'each once (report_metric_values_YYYY_MM, dropped with report_rows_YYYY_MM). Query reports instead.';
COMMENT ON COLUMN report_metric_values.arrived_month IS 'First day of the UTC month the referring reports arrived in.';
COMMENT ON COLUMN report_metric_values.instance_id IS 'The instance whose reports refer to it.';
COMMENT ON COLUMN report_metric_values.digest IS 'metric_digest(value).';
COMMENT ON COLUMN report_metric_values.value IS 'A long metric value, or a key list as a JSON array.';

CREATE FUNCTION report_metrics(instance_id uuid, received_at timestamptz, keys bigint,
                               short_values text[], value_digests bigint[], nul_escaped integer[])
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(jsonb_agg(jsonb_build_object('key', k.key, 'value', coalesce(short_values[k.n], d.value))
                              || CASE WHEN k.n = ANY(nul_escaped) THEN '{"nul_escaped": true}'::jsonb
                                      ELSE '{}'::jsonb END
                              ORDER BY k.n), '[]'::jsonb)
    FROM report_metric_values l
    CROSS JOIN LATERAL jsonb_array_elements_text(l.value::jsonb) WITH ORDINALITY AS k(key, n)
    LEFT JOIN report_metric_values d
        ON d.arrived_month = l.arrived_month AND d.instance_id = l.instance_id
       AND d.digest = value_digests[k.n]
    WHERE l.arrived_month = date_trunc('month', received_at AT TIME ZONE 'UTC')::date
      AND l.instance_id = report_metrics.instance_id
      AND l.digest = keys;
END;
COMMENT ON FUNCTION report_metrics(uuid, timestamptz, bigint, text[], bigint[], integer[]) IS
    'A report''s metrics as sent, from the packed columns of report_rows: what reports.metrics shows.';

CREATE VIEW reports AS
SELECT r.report_id, r.instance_id, r.product_family, r.created_at, r.received_at, r.version,
       r.country_code, r.up_duration_seconds, r.protocol,
       report_metrics(r.instance_id, r.received_at, r.metric_keys, r.metric_values, r.metric_digests,
                      r.metric_nul_escaped) AS metrics
FROM report_rows r;
COMMENT ON VIEW reports IS
    'Every telemetry report received, once: a report id re-sent by the same instance is recognised and '
    'ignored for as long as the first copy is kept. Metrics are kept exactly as sent. Stored by arrival '
    'month in report_rows (report_partitions lists the months); a condition on received_at reads only '
    'the months it names.';
-- The column comments as the earlier migrations left them.
DO $$
DECLARE
    statement text;
BEGIN
    FOR statement IN
        SELECT format('COMMENT ON COLUMN reports.%I IS %L', a.attname,
                      col_description('reports_unpartitioned'::regclass, a.attnum))
        FROM pg_attribute a
        WHERE a.attrelid = 'reports_unpartitioned'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        EXECUTE statement;
    END LOOP;
END
$$;
COMMENT ON COLUMN reports.report_id IS
    'The report''s own UUID (id on the wire), new for every report. Unique per instance: the pair '
    '(instance_id, report_id) identifies a report.';
COMMENT ON COLUMN reports.received_at IS
    'When this service stored the report, by the server''s clock (the ingest transaction''s start). '
    'Reports are stored by the UTC month of this time.';
GRANT SELECT ON reports TO telemetry_analyst;
GRANT SELECT ON report_rows, report_metric_values TO telemetry_analyst;

CREATE FUNCTION create_report_partitions(arrived_from timestamptz, arrived_through timestamptz)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    month timestamp := date_trunc('month', arrived_from AT TIME ZONE 'UTC');
    last_month timestamp := date_trunc('month', arrived_through AT TIME ZONE 'UTC');
    suffix text;
    created integer := 0;
BEGIN
    WHILE month <= last_month LOOP
        suffix := to_char(month, 'YYYY_MM');
        IF to_regclass('report_rows_' || suffix) IS NULL THEN
            BEGIN
                -- CREATE then ATTACH: attaching locks the parent in SHARE UPDATE EXCLUSIVE mode, which
                -- lets ingest and queries go on, where CREATE TABLE ... PARTITION OF would wait for
                -- every query on it and hold up ingest behind it.
                EXECUTE format('CREATE TABLE %I (LIKE report_metric_values INCLUDING ALL)',
                               'report_metric_values_' || suffix);
                EXECUTE format('ALTER TABLE report_metric_values ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               'report_metric_values_' || suffix, month::date,
                               (month + interval '1 month')::date);
                EXECUTE format('CREATE TABLE %I (LIKE report_rows INCLUDING ALL)', 'report_rows_' || suffix);
                EXECUTE format('ALTER TABLE report_rows ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               'report_rows_' || suffix, month AT TIME ZONE 'UTC',
                               (month + interval '1 month') AT TIME ZONE 'UTC');
                EXECUTE format('COMMENT ON TABLE %I IS %L', 'report_rows_' || suffix,
                               format('The reports that arrived in %s (UTC): a partition of report_rows, '
                                      'dropped whole by the retention job once all of it has expired.',
                                      to_char(month, 'YYYY-MM')));
                EXECUTE format('COMMENT ON TABLE %I IS %L', 'report_metric_values_' || suffix,
                               format('The key lists and long metric values of the reports that arrived '
                                      'in %s (UTC): dropped with report_rows_%s.',
                                      to_char(month, 'YYYY-MM'), suffix));
                created := created + 1;
            EXCEPTION
                -- Another process created them first: its table, its row type or its catalog rows.
                WHEN duplicate_table OR duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION create_report_partitions(timestamptz, timestamptz) IS
    'Creates the monthly partitions of report_rows and report_metric_values (UTC months) for arrivals '
    'from arrived_from through arrived_through that do not exist yet, and returns how many months it '
    'created. The service calls it at start and with every retention run for the months around now, '
    'and for any month a batch needs (generated history arrives on its own days). Safe to run concurrently.';
REVOKE EXECUTE ON FUNCTION create_report_partitions(timestamptz, timestamptz) FROM PUBLIC;

CREATE VIEW report_partitions AS
SELECT c.relname::text AS partition,
       'report_metric_values_' || right(c.relname, 7) AS values_partition,
       bounds[1]::timestamptz AS arrived_from,
       bounds[2]::timestamptz AS arrived_before,
       i.inhdetachpending AS detach_pending,
       greatest(c.reltuples, 0)::bigint AS estimated_reports,
       pg_total_relation_size(c.oid)
           + coalesce(pg_total_relation_size(to_regclass('report_metric_values_' || right(c.relname, 7))), 0)
           AS total_bytes
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS bounds
WHERE i.inhparent = 'report_rows'::regclass;
COMMENT ON VIEW report_partitions IS
    'The months of reports held: the partition of report_rows and the one of report_metric_values '
    'for each, which arrivals it holds (arrived_from inclusive, arrived_before exclusive), the two '
    'together''s size on disk with indexes and TOAST, and the planner''s estimate of its reports '
    '(0 until it is first analyzed). detach_pending marks a month whose removal by the retention job '
    'was interrupted; the next run finishes it.';
GRANT SELECT ON report_partitions TO telemetry_analyst;

-- Every month that holds a stored report, the one before this (for reports stored as arriving a
-- little in the past) and the next two.
SELECT create_report_partitions(least(min(received_at), now() - interval '1 month'), now() + interval '2 months')
FROM reports_unpartitioned;

INSERT INTO report_metric_values (arrived_month, instance_id, digest, value)
SELECT DISTINCT ON (1, 2, 3) date_trunc('month', r.received_at AT TIME ZONE 'UTC')::date, r.instance_id,
       metric_digest(v), v
FROM reports_unpartitioned r
CROSS JOIN LATERAL pack_metrics(r.metrics) p
CROSS JOIN LATERAL unnest(p.long_values || p.keys) AS v
ORDER BY 1, 2, 3;

INSERT INTO report_rows (report_id, instance_id, product_family, created_at, received_at, version,
                         country_code, up_duration_seconds, protocol, metric_keys, metric_values,
                         metric_digests, metric_nul_escaped)
SELECT r.report_id, r.instance_id, r.product_family, r.created_at, r.received_at, r.version,
       r.country_code, r.up_duration_seconds, r.protocol, metric_digest(p.keys), p.short_values,
       p.value_digests, p.nul_escaped
FROM reports_unpartitioned r
CROSS JOIN LATERAL pack_metrics(r.metrics) p;

-- As 20261202140001 defined it, but reading report_rows: its body was bound to the table now named
-- reports_unpartitioned.
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
        FROM report_rows r, state s
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

DROP TABLE reports_unpartitioned;

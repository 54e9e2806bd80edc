-- Raw reports partitioned by arrival month (native range partitioning on received_at), so that
-- retention drops a month of reports as one table instead of deleting them row by row.
--
-- What changes for readers: nothing in the columns. reports keeps its name, columns, meanings and
-- comments; it is now the parent of one table per month, reports_YYYY_MM (report_partitions lists
-- them). What changes for writers: report_id is no longer a key on its own. A partitioned table can
-- only have unique keys that include the partition column, and a distributed one (Citus) only keys
-- that include instance_id, so no index can refuse a re-sent report on its own. Ingest serializes
-- the reports of each instance instead (an advisory transaction lock per instance, taken before the
-- insert; src/store/queries/lock_instances.sql) and skips every (instance_id, report_id) already
-- stored in any partition (src/store/queries/insert_reports.sql). The same report id sent by two
-- instances is two reports.
--
-- Indexes, measured on the ingest path (docs/performance.md, "Indexes on the ingest path"):
--   reports_pkey (report_id)                               dropped: replaced by the next one
--   reports_instance_created_at_idx (instance_id, product_family, created_at)
--                                                          replaced by the next one
--   reports_instance_report_idx (instance_id, report_id)   new: the re-send check, and an instance's
--                                                          reports for the rare re-derivation of its
--                                                          upgrades; one random-key index, not two
--   reports_received_at_idx, reports_created_at_brin_idx   kept: BRIN, a few pages per partition
--
-- Every existing row is copied into its month's partition.

ALTER TABLE reports RENAME TO reports_unpartitioned;
DROP INDEX reports_instance_created_at_idx, reports_received_at_idx, reports_created_at_brin_idx;

CREATE TABLE reports (
    report_id           uuid        NOT NULL,
    instance_id         uuid        NOT NULL,
    product_family      text        NOT NULL,
    created_at          timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    version             text,
    country_code        text CHECK (country_code ~ '^[A-Z]{2}$'),
    up_duration_seconds bigint,
    protocol            text        NOT NULL,
    metrics             jsonb       COMPRESSION lz4 NOT NULL CHECK (jsonb_typeof(metrics) = 'array')
) PARTITION BY RANGE (received_at);
CREATE INDEX reports_instance_report_idx ON reports (instance_id, report_id);
CREATE INDEX reports_received_at_idx ON reports USING brin (received_at);
CREATE INDEX reports_created_at_brin_idx ON reports USING brin (created_at);

COMMENT ON TABLE reports IS
    'Every telemetry report received, once: a report id re-sent by the same instance is recognised and '
    'ignored for as long as the first copy is kept. Metrics are kept exactly as sent. Partitioned by '
    'arrival month (received_at); report_partitions lists the months held.';
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
    'The partition key: the report lives in the partition of this month (UTC).';
GRANT SELECT ON reports TO telemetry_analyst;

CREATE FUNCTION create_report_partitions(arrived_from timestamptz, arrived_through timestamptz)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    month timestamp := date_trunc('month', arrived_from AT TIME ZONE 'UTC');
    last_month timestamp := date_trunc('month', arrived_through AT TIME ZONE 'UTC');
    partition text;
    created integer := 0;
BEGIN
    WHILE month <= last_month LOOP
        partition := 'reports_' || to_char(month, 'YYYY_MM');
        IF to_regclass(partition) IS NULL THEN
            BEGIN
                -- CREATE then ATTACH: attaching locks reports in SHARE UPDATE EXCLUSIVE mode, which
                -- lets ingest and queries go on, where CREATE TABLE ... PARTITION OF would wait for
                -- every query on reports and hold up ingest behind it.
                EXECUTE format('CREATE TABLE %I (LIKE reports INCLUDING ALL)', partition);
                EXECUTE format('ALTER TABLE reports ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               partition, month AT TIME ZONE 'UTC',
                               (month + interval '1 month') AT TIME ZONE 'UTC');
                EXECUTE format('COMMENT ON TABLE %I IS %L', partition,
                               format('The reports that arrived in %s (UTC): a partition of reports, '
                                      'dropped whole by the retention job once all of it has expired.',
                                      to_char(month, 'YYYY-MM')));
                created := created + 1;
            EXCEPTION
                -- Another process created it first.
                WHEN duplicate_table OR unique_violation THEN NULL;
            END;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION create_report_partitions(timestamptz, timestamptz) IS
    'Creates the monthly partitions of reports (reports_YYYY_MM, UTC months) for arrivals from '
    'arrived_from through arrived_through that do not exist yet, and returns how many it created. '
    'The service calls it at start and with every retention run for the months around now, and for '
    'any month a batch needs (generated history arrives on its own days). Safe to run concurrently.';
REVOKE EXECUTE ON FUNCTION create_report_partitions(timestamptz, timestamptz) FROM PUBLIC;

CREATE VIEW report_partitions AS
SELECT c.relname::text AS partition,
       bounds[1]::timestamptz AS arrived_from,
       bounds[2]::timestamptz AS arrived_before,
       i.inhdetachpending AS detach_pending,
       greatest(c.reltuples, 0)::bigint AS estimated_reports,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS bounds
WHERE i.inhparent = 'reports'::regclass;
COMMENT ON VIEW report_partitions IS
    'The monthly partitions of reports: which arrivals each holds (arrived_from inclusive, '
    'arrived_before exclusive), its size on disk with indexes and TOAST, and the planner''s estimate '
    'of its rows (0 until it is first analyzed). detach_pending marks a partition whose removal by '
    'the retention job was interrupted; the next run finishes it.';
GRANT SELECT ON report_partitions TO telemetry_analyst;

-- Every month that holds a stored report, the one before this (for reports stored as arriving a
-- little in the past) and the next two.
SELECT create_report_partitions(least(min(received_at), now() - interval '1 month'), now() + interval '2 months')
FROM reports_unpartitioned;

INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at, version,
                     country_code, up_duration_seconds, protocol, metrics)
SELECT report_id, instance_id, product_family, created_at, received_at, version,
       country_code, up_duration_seconds, protocol, metrics
FROM reports_unpartitioned;

-- As 20261202140001 defined it: its body was bound to the table now named reports_unpartitioned.
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

DROP TABLE reports_unpartitioned;

-- Citus (docs/deployment.md) plans a query that reads distributed or reference tables from inside a
-- LANGUAGE sql function only when the function has no parameters and an old-style body: it refuses
-- "parameterized queries for SQL functions referencing distributed tables" and cannot read a
-- SQL-standard body (BEGIN ATOMIC or RETURN) at all ("syntax error at or near RETURN"). The four
-- such functions become PL/pgSQL with the same statements, so the refresh, the reports view and the
-- analysts' views run on one server and on a Citus cluster alike. Same results; nothing else changes.

CREATE OR REPLACE FUNCTION analytics.history_start() RETURNS date
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (SELECT min(day) FROM analytics.instance_days);
END;
$$;

CREATE OR REPLACE FUNCTION analytics.rollup_ranges(today date) RETURNS TABLE (from_day date, to_day date)
    LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
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
$$;

CREATE OR REPLACE FUNCTION analytics.instances_older_than(product_family text, version text,
                                                          from_day date DEFAULT NULL, to_day date DEFAULT NULL)
    RETURNS TABLE (day date, active_instances integer, older_instances bigint, share_older numeric)
    LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
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
$$;

-- What the reports view calls for every report whose metrics are read.
CREATE OR REPLACE FUNCTION report_metrics(instance_id uuid, received_at timestamptz, keys bigint,
                                          short_values text[], value_digests bigint[],
                                          nul_escaped integer[])
    RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
#variable_conflict use_variable
BEGIN
    RETURN (
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
          AND l.digest = keys);
END;
$$;

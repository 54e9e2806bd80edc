-- Metric keys and values may hold U+0000, which Percona accepts and PostgreSQL's text and jsonb
-- cannot: such a pair is stored escaped (src/stored_metrics.rs), and this function reads any pair
-- back as the exact bytes sent.

CREATE FUNCTION analytics.metric_bytes(pair jsonb, part text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE
        WHEN (pair->>'nul_escaped')::boolean IS TRUE THEN (
            SELECT coalesce(string_agg(
                       CASE token[1]
                           WHEN '\\' THEN '\x5c'::bytea
                           WHEN '\0' THEN '\x00'::bytea
                           ELSE convert_to(token[1], 'UTF8')
                       END, ''::bytea ORDER BY n), ''::bytea)
            FROM regexp_matches(pair->>part, '\\\\|\\0|[^\\]+', 'g') WITH ORDINALITY AS t(token, n))
        ELSE convert_to(pair->>part, 'UTF8')
    END;
COMMENT ON FUNCTION analytics.metric_bytes(jsonb, text) IS
    'The key (part = ''key'') or value (part = ''value'') of one reports.metrics pair as the exact '
    'UTF-8 bytes the client sent. Needed only for pairs marked "nul_escaped": true, whose key or value '
    'held the character U+0000, which PostgreSQL text cannot store: in those two fields \0 stands for '
    'U+0000 and \\ for one backslash. Example: SELECT analytics.metric_bytes(m, ''value'') FROM reports, '
    'jsonb_array_elements(metrics) m WHERE m ? ''nul_escaped''.';

COMMENT ON COLUMN reports.metrics IS
    'Every metric pair in the order sent, duplicate keys included, as a JSON array of '
    '{"key": ..., "value": ...}. Example: SELECT m->>''value'' FROM reports, jsonb_array_elements(metrics) m '
    'WHERE m->>''key'' = ''mysql_version''. A pair whose key or value held U+0000 (which PostgreSQL text '
    'cannot store) also has "nul_escaped": true, and in its key and value \0 stands for U+0000 and \\ for '
    'a backslash; analytics.metric_bytes() decodes it.';

-- A value that held U+0000 is never typed, as in the service (src/typed_metrics.rs): the same
-- function, reading an escaped pair's value as absent.
CREATE OR REPLACE FUNCTION analytics.extract_metrics(metrics jsonb) RETURNS analytics.typed_metrics
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
    FROM (SELECT r.key, CASE WHEN r.nul_escaped THEN NULL ELSE r.value END AS value, r.n
          FROM ROWS FROM (jsonb_to_recordset(metrics) AS (key text, value text, nul_escaped boolean))
               WITH ORDINALITY AS r(key, value, nul_escaped, n)) AS m;
END;
COMMENT ON FUNCTION analytics.extract_metrics(jsonb) IS
    'Reads the known PMM and agent keys (docs/protocol.md, PMM metric keys) from a reports.metrics array '
    'in one pass: the first value of each single-valued key, every value of the per-service version keys. '
    'A value that held U+0000 (a "nul_escaped" pair) counts as absent. '
    'Ingest calls it once per instance and day; other keys stay in reports.metrics.';

-- Digits mean ASCII digits whatever the database's collation: under an ICU collation `\d` also
-- matches other scripts' digits, which the bigint and numeric casts below would then refuse,
-- failing the statement that stores a report. Same results as before for every ASCII input.
CREATE OR REPLACE FUNCTION version_sort_key(version text) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(
        SELECT match[1]::bigint
        FROM regexp_matches(version, '([0-9]{1,18})', 'g') WITH ORDINALITY AS part(match, position)
        ORDER BY position
    );

CREATE OR REPLACE FUNCTION analytics.parse_count(value text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN btrim(value) ~ '^[0-9]{1,9}(\.[0-9]+)?$' THEN round(btrim(value)::numeric)::integer END;

-- Ingest now types the known keys in the service, from the metrics it has already parsed
-- (src/typed_metrics.rs); this function stays as the same mapping for analysts' own queries.
COMMENT ON FUNCTION analytics.extract_metrics(jsonb) IS
    'Reads the known PMM and agent keys (docs/protocol.md, PMM metric keys) from a reports.metrics array '
    'in one pass: the first value of each single-valued key, every value of the per-service version keys. '
    'The same mapping ingest applies (in the service) to fill analytics.instance_days; use it on '
    'reports.metrics for the same fields of any stored report. Other keys stay in reports.metrics.';

-- PMM's metrics arrays run to several kilobytes and are compressed into TOAST on every insert; lz4
-- costs a fraction of the default pglz's CPU on the ingest path (and on analysts' reads). Rows
-- stored before keep their pglz compression; both read the same.
ALTER TABLE reports ALTER COLUMN metrics SET COMPRESSION lz4;

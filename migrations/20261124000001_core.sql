-- Core schema: every report as received, one row per instance, and the version changes between them.
-- This schema is a public interface for Percona's analysts: names and meanings stay stable.

CREATE FUNCTION version_sort_key(version text) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(
        SELECT match[1]::bigint
        FROM regexp_matches(version, '(\d{1,18})', 'g') WITH ORDINALITY AS part(match, position)
        ORDER BY position
    );
COMMENT ON FUNCTION version_sort_key(text) IS
    'The numeric parts of a version string as an array, so that versions compare as versions: '
    'ORDER BY version_sort_key(version) puts 3.9.1 before 3.10.0 and 8.0.36-28 after 8.0.36.';

CREATE TABLE instances (
    instance_id      uuid        NOT NULL,
    product_family   text        NOT NULL,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    version          text,
    version_seen_at  timestamptz,
    country_code     text CHECK (country_code ~ '^[A-Z]{2}$'),
    report_count     bigint      NOT NULL CHECK (report_count > 0),
    last_received_at timestamptz NOT NULL,
    PRIMARY KEY (instance_id, product_family)
);
COMMENT ON TABLE instances IS
    'One row per reporting installation and product family: the random instance ID a product sends '
    'with every report. Use it to count instances, new instances and versions in use.';
COMMENT ON COLUMN instances.instance_id IS
    'The random UUID the installation sends as instanceId, lowercase dashed. PMM erases it when '
    'telemetry is switched off, so a re-enabled server appears as a new instance.';
COMMENT ON COLUMN instances.product_family IS
    'ProductFamily enum name from the report, e.g. PRODUCT_FAMILY_PMM, PRODUCT_FAMILY_PS. '
    'PRODUCT_FAMILY_INVALID holds reports whose family was missing or unknown.';
COMMENT ON COLUMN instances.first_seen IS 'createTime of the earliest report received from this instance.';
COMMENT ON COLUMN instances.last_seen IS 'createTime of the latest report received from this instance.';
COMMENT ON COLUMN instances.version IS
    'Product version in the instance''s latest report (by createTime) that carried one: PMMServerVersion '
    'for PMM, pillar_version for database products, version for Everest.';
COMMENT ON COLUMN instances.version_seen_at IS 'createTime of the report that version comes from.';
COMMENT ON COLUMN instances.country_code IS
    'ISO 3166-1 alpha-2 country of the latest report whose address resolved to a country; '
    'NULL if none did. The address itself is never stored.';
COMMENT ON COLUMN instances.report_count IS 'Number of distinct reports received from this instance.';
COMMENT ON COLUMN instances.last_received_at IS 'Server time when the latest report from this instance arrived.';

CREATE TABLE reports (
    report_id           uuid        PRIMARY KEY,
    instance_id         uuid        NOT NULL,
    product_family      text        NOT NULL,
    created_at          timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    version             text,
    country_code        text CHECK (country_code ~ '^[A-Z]{2}$'),
    up_duration_seconds bigint,
    protocol            text        NOT NULL,
    metrics             jsonb       NOT NULL CHECK (jsonb_typeof(metrics) = 'array')
);
CREATE INDEX reports_instance_created_at_idx ON reports (instance_id, product_family, created_at);
CREATE INDEX reports_received_at_idx ON reports USING brin (received_at);
COMMENT ON TABLE reports IS
    'Every telemetry report received, once (re-sent reports are recognised by report_id and ignored). '
    'Metrics are kept exactly as sent.';
COMMENT ON COLUMN reports.report_id IS 'The report''s own UUID (id on the wire), new for every report.';
COMMENT ON COLUMN reports.instance_id IS 'The sending installation; joins instances.instance_id.';
COMMENT ON COLUMN reports.product_family IS 'ProductFamily enum name, as in instances.product_family.';
COMMENT ON COLUMN reports.created_at IS 'createTime: when the client produced the report, by the client''s clock.';
COMMENT ON COLUMN reports.received_at IS 'When this service stored the report, by the server''s clock.';
COMMENT ON COLUMN reports.version IS
    'Product version from the report (PMMServerVersion, pillar_version or version by family); NULL if absent.';
COMMENT ON COLUMN reports.country_code IS
    'ISO 3166-1 alpha-2 country the sending address resolved to at arrival; NULL for private or unknown '
    'addresses. The address itself is discarded after the lookup.';
COMMENT ON COLUMN reports.up_duration_seconds IS
    'PMM only: seconds since pmm-managed started (UpDuration), so under 86400 means the first report '
    'was sent before the 24-hour grace period ended.';
COMMENT ON COLUMN reports.protocol IS
    'How the report arrived: GenericReport for POST /v1/telemetry/GenericReport.';
COMMENT ON COLUMN reports.metrics IS
    'Every metric pair in the order sent, duplicate keys included, as a JSON array of '
    '{"key": ..., "value": ...}. Example: SELECT m->>''value'' FROM reports, jsonb_array_elements(metrics) m '
    'WHERE m->>''key'' = ''mysql_version''.';

CREATE TABLE upgrades (
    instance_id    uuid        NOT NULL,
    product_family text        NOT NULL,
    from_version   text        NOT NULL,
    to_version     text        NOT NULL,
    upgraded_at    timestamptz NOT NULL,
    report_id      uuid        NOT NULL,
    is_downgrade   boolean     NOT NULL
        GENERATED ALWAYS AS (version_sort_key(to_version) < version_sort_key(from_version)) STORED,
    PRIMARY KEY (instance_id, product_family, upgraded_at, report_id)
);
CREATE INDEX upgrades_upgraded_at_idx ON upgrades (upgraded_at);
COMMENT ON TABLE upgrades IS
    'One row each time an instance''s version changes between consecutive reports ordered by createTime. '
    'Kept consistent when reports arrive late or out of order: rows are derived from the report sequence, '
    'so there are no false downgrades and no duplicates.';
COMMENT ON COLUMN upgrades.instance_id IS 'The installation; joins instances.instance_id.';
COMMENT ON COLUMN upgrades.product_family IS 'ProductFamily enum name, as in instances.product_family.';
COMMENT ON COLUMN upgrades.from_version IS 'Version in the previous report that carried a version.';
COMMENT ON COLUMN upgrades.to_version IS 'Version in the first report with the new version.';
COMMENT ON COLUMN upgrades.upgraded_at IS 'createTime of the first report with the new version.';
COMMENT ON COLUMN upgrades.report_id IS 'The first report with the new version; joins reports.report_id.';
COMMENT ON COLUMN upgrades.is_downgrade IS
    'True when to_version is lower than from_version, compared as versions (version_sort_key), not as text.';

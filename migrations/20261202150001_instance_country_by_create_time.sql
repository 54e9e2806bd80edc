-- instances.country_code followed the latest report to *arrive* whose address resolved, so a late,
-- older report could overwrite a newer country, while the rollups (and docs/analytics.md) take the
-- latest by createTime. It now follows createTime, like instances.version: country_seen_at is to
-- the country what version_seen_at is to the version.

ALTER TABLE instances ADD COLUMN country_seen_at timestamptz;
COMMENT ON COLUMN instances.country_seen_at IS
    'createTime of the report country_code comes from. NULL where that report had expired before '
    'this column existed; the next report that resolves then sets both.';

-- From the stored reports: the latest by createTime that resolved. Instances whose resolved reports
-- have expired keep the country they had.
UPDATE instances i
SET country_code = r.country_code, country_seen_at = r.created_at
FROM (
    SELECT DISTINCT ON (instance_id, product_family) instance_id, product_family, country_code, created_at
    FROM reports
    WHERE country_code IS NOT NULL
    ORDER BY instance_id, product_family, created_at DESC, report_id DESC
) r
WHERE r.instance_id = i.instance_id AND r.product_family = i.product_family;

COMMENT ON COLUMN instances.country_code IS
    'ISO 3166-1 alpha-2 country of the latest report (by createTime) whose address resolved to a '
    'country; NULL if none did. The address itself is never stored.';

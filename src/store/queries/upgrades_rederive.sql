-- The upgrades of each instance from its earliest new report ($3) on, derived again from its
-- reports: from the last versioned report before it, so that the first change has its from_version.
-- No subquery refers to the outer query, and every read of report_rows names the instances ($1):
-- Citus runs this on the instances' shard (src/store/distribute.rs).
WITH touched AS (
    SELECT t.instance_id, t.product_family, t.since
    FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS t(instance_id, product_family, since)
),
previous AS (
    SELECT t.instance_id, t.product_family, max(p.created_at) AS previous_at
    FROM touched t
    JOIN report_rows p ON p.instance_id = t.instance_id AND p.product_family = t.product_family
    WHERE p.instance_id = ANY($1) AND p.version IS NOT NULL AND p.created_at < t.since
    GROUP BY t.instance_id, t.product_family
),
sequence AS (
    SELECT r.instance_id, r.product_family, r.report_id, r.created_at, r.version, t.since,
           lag(r.version) OVER (PARTITION BY r.instance_id, r.product_family
                                ORDER BY r.created_at, r.report_id) AS previous_version
    FROM touched t
    LEFT JOIN previous v USING (instance_id, product_family)
    JOIN report_rows r ON r.instance_id = t.instance_id AND r.product_family = t.product_family
    WHERE r.instance_id = ANY($1)
      AND r.version IS NOT NULL
      AND r.created_at >= coalesce(v.previous_at, t.since)
)
INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
SELECT instance_id, product_family, previous_version, version, created_at, report_id
FROM sequence
WHERE created_at >= since AND previous_version <> version

WITH touched AS (
    SELECT t.instance_id, t.product_family, t.since,
           (SELECT max(p.created_at) FROM report_rows p
            WHERE p.instance_id = t.instance_id AND p.product_family = t.product_family
              AND p.version IS NOT NULL AND p.created_at < t.since) AS previous_at
    FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS t(instance_id, product_family, since)
),
sequence AS (
    SELECT r.instance_id, r.product_family, r.report_id, r.created_at, r.version, t.since,
           lag(r.version) OVER (PARTITION BY r.instance_id, r.product_family
                                ORDER BY r.created_at, r.report_id) AS previous_version
    FROM touched t
    JOIN report_rows r ON r.instance_id = t.instance_id AND r.product_family = t.product_family
    WHERE r.version IS NOT NULL
      AND r.created_at >= coalesce(t.previous_at, t.since)
)
INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
SELECT instance_id, product_family, previous_version, version, created_at, report_id
FROM sequence
WHERE created_at >= since AND previous_version <> version


DELETE FROM upgrades u
USING UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS t(instance_id, product_family, since)
WHERE u.instance_id = t.instance_id
  AND u.product_family = t.product_family
  AND u.upgraded_at >= t.since
  -- Keeps Citus on the instances' shard (src/store/distribute.rs).
  AND u.instance_id = ANY($1)


-- analytics.release_adoption counted the upgrades within 30 days of a release's first sighting with a
-- correlated subquery over upgrades, which Citus refuses ("correlated subqueries are not supported"
-- once upgrades is distributed). The same count is now a filtered aggregate of the join that
-- already finds each version's upgrades: same columns, same rows, same numbers, on one server and on
-- Citus. The column comments stay with the view.
CREATE OR REPLACE VIEW analytics.release_adoption AS
WITH firsts AS (
    SELECT product_family, version, min(day) AS first_seen
    FROM analytics.daily_versions
    GROUP BY 1, 2
),
releases AS (
    SELECT f.*,
           lag(f.first_seen) OVER (PARTITION BY f.product_family, analytics.release_line(f.product_family, f.version)
                                   ORDER BY version_sort_key(f.version)) AS previous_first_seen
    FROM firsts f
),
arrivals AS (
    SELECT u.product_family, u.to_version AS version, count(*) AS upgrades,
           count(*) FILTER (WHERE u.upgraded_at < (f.first_seen + 31)::timestamp AT TIME ZONE 'UTC')
               AS within_30_days,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY (u.upgraded_at AT TIME ZONE 'UTC')::date - DATE '2000-01-01')
               AS median_day_number,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY (u.upgraded_at AT TIME ZONE 'UTC')::date - DATE '2000-01-01')
               AS p90_day_number
    FROM upgrades u
    JOIN firsts f ON f.product_family = u.product_family AND f.version = u.to_version
    WHERE NOT u.is_downgrade
    GROUP BY u.product_family, u.to_version
)
SELECT r.product_family, r.version, r.first_seen,
       CASE WHEN NOT analytics.left_censored(r.first_seen) AND NOT analytics.left_censored(r.previous_first_seen)
            THEN r.first_seen - r.previous_first_seen
       END AS days_since_previous_release,
       coalesce(a.upgrades, 0) AS upgrades,
       analytics.round_percentile(a.median_day_number - (r.first_seen - DATE '2000-01-01')) AS median_days_to_upgrade,
       analytics.round_percentile(a.p90_day_number - (r.first_seen - DATE '2000-01-01')) AS p90_days_to_upgrade,
       round(a.within_30_days::numeric / a.upgrades, 4) AS share_within_30_days,
       analytics.left_censored(r.first_seen) AS first_seen_censored
FROM releases r
LEFT JOIN arrivals a ON a.product_family = r.product_family AND a.version = r.version;

INSERT INTO analytics.stale_days (day, noted_at)
SELECT DISTINCT day, now() FROM UNNEST($1::date[]) AS t(day)
ON CONFLICT (day) DO UPDATE SET noted_at = excluded.noted_at

-- Serializes ingest per instance until the transaction ends: an advisory lock for each instance of the
-- batch, in one order so that two batches cannot deadlock. insert_reports.sql, the next statement,
-- then sees every report another transaction stored for these instances, which its re-send check
-- needs (no unique index can do it: reports is partitioned by arrival). 7310 is this service's
-- namespace in the two-key form of advisory locks; the second key is the instance's hash.
-- Also the month the transaction's reports arrive in, as insert_reports.sql files their key lists
-- and long values (now() is the transaction's start, the same in every statement of it).
SELECT count(pg_advisory_xact_lock(7310, key)::text) AS "locked!",
       date_trunc('month', now() AT TIME ZONE 'UTC')::date AS "arrival_month!"
FROM (SELECT DISTINCT hashtext(instance_id::text) AS key FROM UNNEST($1::uuid[]) AS t(instance_id) ORDER BY key) keys

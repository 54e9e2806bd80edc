-- Serializes ingest per instance until the transaction ends (lock_ingest_instances(), in
-- migrations/): insert_reports.sql, the next statement, then sees every report another transaction
-- stored for these instances, which its re-send check needs (no unique index can do it: reports is
-- partitioned by arrival). Also the month the transaction's reports arrive in, as
-- insert_reports.sql files their key lists and long values (now() is the transaction's start, the
-- same in every statement of it). The writer's batches on one server take the same locks with
-- their BEGIN instead (src/store/writes.rs).
SELECT lock_ingest_instances($1::uuid[], NULL) AS "arrival_month!"

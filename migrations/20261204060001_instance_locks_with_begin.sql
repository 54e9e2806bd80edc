-- Ingest's instance locks (src/store/queries/lock_instances.sql) were a statement of their own, a
-- round trip between a batch's BEGIN and its insert. The writer now takes them in the same round trip
-- as BEGIN, by calling this function from the BEGIN it sends (src/store/writes.rs). A batch leaves
-- out the key lists and long values it knows stored in its month of arrival, so it must know that
-- month before its insert: it assumes the month of its own clock and the function checks it against
-- the transaction's, which is the one its reports are filed under.

CREATE FUNCTION lock_ingest_instances(instances uuid[], assumed_arrival_month date) RETURNS date
    LANGUAGE plpgsql
AS $$
DECLARE
    arrival_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
BEGIN
    IF assumed_arrival_month IS DISTINCT FROM arrival_month AND assumed_arrival_month IS NOT NULL THEN
        RAISE EXCEPTION 'this transaction''s reports arrive in the month of %, not of %',
            arrival_month, assumed_arrival_month
            USING ERRCODE = 'T7310';
    END IF;
    -- One order in every transaction, so that two batches cannot deadlock. 7310 is ingest's
    -- namespace in the two-key form of advisory locks; the second key is the instance's hash.
    PERFORM pg_advisory_xact_lock(7310, key)
    FROM (SELECT DISTINCT hashtext(instance_id::text) AS key
          FROM unnest(instances) AS t(instance_id)
          ORDER BY key) keys;
    RETURN arrival_month;
END
$$;
COMMENT ON FUNCTION lock_ingest_instances(uuid[], date) IS
    'Internal to ingest: locks each instance until the transaction ends, so that concurrent batches of '
    'one instance store its reports one after the other and the re-send check sees every report stored '
    'before, and returns the first day of the month (UTC) its reports arrive in. With an assumed month '
    'that is not that one, fails with SQLSTATE T7310 instead, taking no lock.';

-- The re-send check (src/store/queries/insert_reports.sql) looked for a batch's reports among every
-- report their instances had sent, in every monthly partition: the planner joined the batch against
-- all of those rows, about 66 per instance on a database with 100 days of daily reports, and that
-- read grows with every day of history kept. A report cannot have arrived before it was created,
-- unless its client's clock runs ahead: the check now probes, for each report, only the partitions
-- that hold arrivals from its createTime less report_clock_lead_limit() on (usually one), and the
-- reports that arrived earlier than that are kept in reports_dated_ahead, where the check also looks.

CREATE FUNCTION report_clock_lead_limit() RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN interval '1 day';
COMMENT ON FUNCTION report_clock_lead_limit() IS
    'How far a report''s createTime may run ahead of its arrival (a client clock that is fast) for the '
    're-send check to find it among the reports that arrived from createTime minus this on. A report '
    'dated further ahead is also noted in reports_dated_ahead, where the check finds it.';

CREATE TABLE reports_dated_ahead (
    instance_id uuid        NOT NULL,
    report_id   uuid        NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (instance_id, report_id)
);
COMMENT ON TABLE reports_dated_ahead IS
    'The reports whose createTime was more than report_clock_lead_limit() after their arrival (a client '
    'clock running ahead), so that a re-send of one is still recognised. Few rows; they expire with '
    'their reports. Query reports instead.';
COMMENT ON COLUMN reports_dated_ahead.instance_id IS 'The instance that sent the report.';
COMMENT ON COLUMN reports_dated_ahead.report_id IS 'The report''s own id, as in reports.report_id.';
COMMENT ON COLUMN reports_dated_ahead.received_at IS 'When the report arrived, as in reports.received_at.';

INSERT INTO reports_dated_ahead (instance_id, report_id, received_at)
SELECT instance_id, report_id, min(received_at)
FROM report_rows
WHERE created_at - report_clock_lead_limit() > received_at
GROUP BY instance_id, report_id;
GRANT SELECT ON reports_dated_ahead TO telemetry_analyst;

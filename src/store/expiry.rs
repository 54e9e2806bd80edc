//! The expiry of raw reports after the retention period.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;

/// Deletes raw reports that arrived before `cutoff`, a chunk per transaction so that ingest and
/// vacuum keep up, and returns how many went. Their contribution stays in `analytics.instance_days`,
/// which ingest writes in the same transaction as the report.
///
/// The rollup refresh finds changed days through the reports received since it last ran; a report
/// deleted before any refresh saw it (refreshes kept failing for the whole retention period) has
/// its day noted in `analytics.stale_days` instead, so the next refresh still rebuilds it.
pub async fn delete_reports_received_before(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query_scalar!(
            r#"
            WITH gone AS (
                DELETE FROM reports
                WHERE report_id IN (SELECT report_id FROM reports WHERE received_at < $1 LIMIT $2)
                RETURNING created_at, received_at
            ),
            unrefreshed AS (
                -- The same overlap as analytics.rollup_ranges() gives transactions in flight.
                INSERT INTO analytics.stale_days (day, noted_at)
                SELECT DISTINCT analytics.report_day(g.created_at, g.received_at), now()
                FROM gone g, analytics.rollup_state s
                WHERE g.received_at >= s.refreshed_at - interval '10 minutes'
                ON CONFLICT (day) DO UPDATE SET noted_at = excluded.noted_at
                RETURNING 1 AS done
            )
            SELECT count(*) AS "deleted!" FROM gone
            "#,
            cutoff,
            chunk
        )
        .fetch_one(pool)
        .await?;
        let done = u64::try_from(done).unwrap_or(0);
        // A concurrent run may take rows from under this one; stop only once nothing is left.
        if done == 0 {
            return Ok(deleted);
        }
        deleted += done;
    }
}

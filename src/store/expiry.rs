//! The expiry of raw reports after the retention period: whole months of `report_rows` (and their
//! `report_metric_values`) are detached and dropped, and only the rows of the month the cutoff falls
//! in are deleted one by one.

use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use super::StoreError;
use super::distribute::reports_distributed;

/// Serialises the expiry runs of every process that shares the database (two-key advisory lock
/// namespace 7311; ingest's instance locks are in 7310).
const EXPIRY_LOCK: (i32, i32) = (7311, 0);

/// Removes the raw reports that arrived before `cutoff` and returns how many went. Every partition
/// whose month ended by `cutoff` is detached (`DETACH PARTITION ... CONCURRENTLY`, so ingest and
/// queries go on) and dropped: no row-by-row delete, no dead rows, the disk space back at once. The
/// month the cutoff falls in loses its expired rows `chunk` at a time; that month is at most an
/// hour of arrivals per hourly run. Their contribution stays in `analytics.instance_days`, which
/// ingest writes in the same transaction as the report.
///
/// The rollup refresh finds changed days through the reports received since it last ran; a report
/// removed before any refresh saw it (refreshes kept failing for the whole retention period) has its
/// day noted in `analytics.stale_days` instead, so the next refresh still rebuilds it.
pub async fn delete_reports_received_before(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    // One run at a time, under a session-level lock on a connection of its own, closed at the end:
    // the lock then cannot outlive the run, even a cancelled one.
    let options = pool.connect_options();
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(StoreError::Unavailable)?;
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock($1, $2) AS "locked!""#,
        EXPIRY_LOCK.0,
        EXPIRY_LOCK.1
    )
    .fetch_one(&mut conn)
    .await?;
    // Another run is at it; what it leaves, the next run takes.
    let removed = if locked {
        remove_expired(pool, &mut conn, cutoff, chunk).await
    } else {
        Ok(0)
    };
    conn.close().await.ok();
    removed
}

async fn remove_expired(
    pool: &PgPool,
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    let dropped = drop_partitions_on(conn, cutoff).await?;
    let started = Instant::now();
    let deleted = delete_expired_rows(pool, cutoff, chunk).await?;
    if deleted > 0 {
        tracing::info!(
            reports = deleted,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "expired reports deleted row by row"
        );
    }
    // Only after the reports themselves: a report noted there and still stored is found by the
    // re-send check through this note alone.
    sqlx::query!(
        "DELETE FROM reports_dated_ahead WHERE received_at < $1",
        cutoff
    )
    .execute(pool)
    .await?;
    Ok(dropped + deleted)
}

/// Drops the partitions that hold only expired reports and returns the reports they held.
async fn drop_partitions_on(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    // A run interrupted between detaching a month and dropping it left its tables behind, detached
    // or still pending detach: finish the job first.
    let leftovers = sqlx::query!(
        r#"
        SELECT c.relname::text AS "table!", p.relname::text AS "parent?",
               i.inhdetachpending AS "detach_pending?"
        FROM pg_class c
        JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
        LEFT JOIN pg_class p ON p.oid = i.inhparent
        WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'report_rows'::regclass)
          AND c.relkind = 'r'
          AND c.relname ~ '^(report_rows|report_metric_values)_[0-9]{4}_[0-9]{2}$'
          AND (d.description LIKE 'The reports that arrived in %'
               OR d.description LIKE 'The key lists and long metric values of the reports that arrived in %')
          AND (i.inhrelid IS NULL OR i.inhdetachpending)
          AND (to_date(right(c.relname, 7), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= $1
        "#,
        cutoff
    )
    .fetch_all(&mut *conn)
    .await?;
    for leftover in leftovers {
        let table = quote_identifier(&leftover.table);
        if let (Some(true), Some(parent)) = (leftover.detach_pending, &leftover.parent) {
            let parent = quote_identifier(parent);
            let finalize = format!("ALTER TABLE {parent} DETACH PARTITION {table} FINALIZE");
            sqlx::raw_sql(AssertSqlSafe(finalize))
                .execute(&mut *conn)
                .await?;
        }
        let drop = format!("DROP TABLE {table}");
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await?;
    }

    // Each expired month's partitions, the reports' first: once they are gone, nothing refers to
    // the month's metric values. A month whose reports an interrupted run already dropped still has
    // its metric values to go.
    let expired = sqlx::query!(
        r#"
        SELECT p.relname::text AS "parent!", c.relname::text AS "table!",
               to_date(right(c.relname, 7), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC' AS "arrived_from!",
               (to_date(right(c.relname, 7), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC'
                   AS "arrived_before!"
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE i.inhparent IN ('report_rows'::regclass, 'report_metric_values'::regclass)
          AND NOT i.inhdetachpending
          AND c.relname ~ '_[0-9]{4}_[0-9]{2}$'
          AND (to_date(right(c.relname, 7), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= $1
        ORDER BY right(c.relname, 7), p.relname DESC
        "#,
        cutoff
    )
    .fetch_all(&mut *conn)
    .await?;
    // Citus refuses DETACH ... CONCURRENTLY on a distributed table; there the plain DETACH locks
    // the parent table for the moment it takes.
    let concurrently = if reports_distributed(&mut *conn).await? {
        ""
    } else {
        " CONCURRENTLY"
    };
    // A month that ended before the rollups' last refresh (less the overlap analytics.rollup_ranges()
    // gives transactions in flight) holds no report the refresh has not seen: nothing to note, and
    // no need to read the month once more before dropping it.
    let seen_before = sqlx::query_scalar!(
        r#"SELECT refreshed_at - interval '10 minutes' AS "seen_before!" FROM analytics.rollup_state"#
    )
    .fetch_optional(&mut *conn)
    .await?;
    let mut dropped = 0;
    for partition in expired {
        let started = Instant::now();
        let mut reports = None;
        if partition.parent == "report_rows" {
            if let Some(seen_before) = seen_before
                && partition.arrived_before > seen_before
            {
                let unseen_from = partition.arrived_from.max(seen_before);
                note_unrefreshed_days(conn, unseen_from, partition.arrived_before).await?;
            }
            let held = count_rows(conn, &partition.table).await?;
            dropped += held;
            reports = Some(held);
        }
        let parent = quote_identifier(&partition.parent);
        let table = quote_identifier(&partition.table);
        // Not in a transaction: DETACH ... CONCURRENTLY refuses to run in one.
        let detach = format!("ALTER TABLE {parent} DETACH PARTITION {table}{concurrently}");
        sqlx::raw_sql(AssertSqlSafe(detach))
            .execute(&mut *conn)
            .await?;
        let drop = format!("DROP TABLE {table}");
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await?;
        tracing::info!(
            partition = partition.table,
            reports,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "expired month dropped"
        );
    }
    Ok(dropped)
}

/// Notes the days of the reports that arrived in `[from, before)`, which the rollups' last refresh
/// may not have seen, so that the next refresh rebuilds them once the reports are gone.
async fn note_unrefreshed_days(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    before: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"
        INSERT INTO analytics.stale_days (day, noted_at)
        SELECT DISTINCT analytics.report_day(r.created_at, r.received_at), now()
        FROM report_rows r
        WHERE r.received_at >= $1 AND r.received_at < $2
        ON CONFLICT (day) DO UPDATE SET noted_at = excluded.noted_at
        "#,
        from,
        before
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The rows of one partition of report_rows, counted in its `(instance_id, report_id)` index: a
/// month is written once and vacuumed, so an index-only scan reads a tenth of the bytes a
/// sequential scan of the month would.
async fn count_rows(conn: &mut PgConnection, table: &str) -> Result<u64, StoreError> {
    let mut transaction = conn.begin().await?;
    sqlx::raw_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        .execute(&mut *transaction)
        .await?;
    let count = format!("SELECT count(*) FROM {}", quote_identifier(table));
    let held: i64 = sqlx::query_scalar(AssertSqlSafe(count))
        .fetch_one(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(u64::try_from(held).unwrap_or(0))
}

/// Deletes the expired reports left in partitions that also hold unexpired ones, a chunk per
/// transaction so that ingest and vacuum keep up.
async fn delete_expired_rows(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query_scalar!(
            r#"
            WITH gone AS (
                DELETE FROM report_rows
                WHERE received_at < $1
                  AND (instance_id, report_id) IN (
                      SELECT instance_id, report_id FROM report_rows WHERE received_at < $1 LIMIT $2)
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
        if done == 0 {
            return Ok(deleted);
        }
        deleted += done;
    }
}

/// `name` as an SQL identifier, as PostgreSQL's quote_ident() writes it.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

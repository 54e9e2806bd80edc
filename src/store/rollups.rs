//! The rollup refresh: rebuilds the `analytics.daily_*` tables for the days that changed.

use chrono::NaiveDate;
use sqlx::PgPool;

use super::StoreError;

/// A span of UTC days, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// What one rollup refresh rebuilt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupRefresh {
    pub ranges: Vec<DayRange>,
    /// Instances counted as active, summed over the rebuilt days.
    pub active_instance_days: i64,
}

/// Days rebuilt per statement: four weeks of active instances keep the working set to a few hundred
/// megabytes at 100,000 instances while reading each day of history only about twice.
const REFRESH_CHUNK_DAYS: u64 = 28;

/// Serialises rollup refreshes across every process that shares the database.
const ROLLUP_LOCK_KEY: i64 = 0x7465_6c65_726f_6c6c;

/// Brings the `analytics.daily_*` rollups up to date through `today` (a UTC day, normally the
/// current one): rebuilds every day whose reports changed since the last refresh, the 29 days after
/// it (their 30-day window saw the change), and the days since the last refresh.
///
/// One transaction under an advisory lock: a second refresh waits and then finds little to do, a
/// cancelled one leaves nothing behind, and analysts never see half-rebuilt rollups. Ingest runs on
/// meanwhile; what it commits after the refresh started is picked up by the next refresh.
pub async fn refresh_rollups(pool: &PgPool, today: NaiveDate) -> Result<RollupRefresh, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"SELECT 1 AS "locked!" FROM pg_advisory_xact_lock($1)"#,
        ROLLUP_LOCK_KEY
    )
    .fetch_one(&mut *tx)
    .await?;
    let ranges: Vec<DayRange> = sqlx::query!(
        r#"SELECT from_day AS "from_day!", to_day AS "to_day!" FROM analytics.rollup_ranges($1)"#,
        today
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| DayRange {
        from: row.from_day,
        to: row.to_day,
    })
    .collect();

    let mut active_instance_days = 0;
    for range in &ranges {
        let mut from = range.from;
        while from <= range.to {
            let to = (from + chrono::Days::new(REFRESH_CHUNK_DAYS - 1)).min(range.to);
            active_instance_days += sqlx::query_scalar!(
                r#"SELECT analytics.refresh_days($1, $2) AS "active_instance_days!""#,
                from,
                to
            )
            .fetch_one(&mut *tx)
            .await?;
            from = to + chrono::Days::new(1);
        }
        sqlx::query!(
            r#"SELECT 1 AS "done!" FROM analytics.refresh_periods($1, $2, $3)"#,
            range.from,
            range.to,
            today
        )
        .fetch_one(&mut *tx)
        .await?;
    }
    sqlx::query!(
        r#"SELECT 1 AS "done!" FROM analytics.finish_refresh($1)"#,
        today
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RollupRefresh {
        ranges,
        active_instance_days,
    })
}

//! The monthly partitions of `reports` (migration `20261203060001`): created ahead of the arrivals
//! they will hold, and dropped whole once every report in them has expired (`expiry`).

use chrono::{DateTime, Months, Utc};
use sqlx::PgPool;

use super::StoreError;
use super::writes::NewReport;

/// Creates the partitions for the month before `now` (reports stored as arriving a little in the
/// past), its own and the two after it: a month never starts without its partition, even when
/// neither a retention run nor a restart falls in the weeks before it. Returns how many were new.
pub async fn create_partitions_around(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<i32, StoreError> {
    let from = now.checked_sub_months(Months::new(1)).unwrap_or(now);
    let through = now.checked_add_months(Months::new(2)).unwrap_or(now);
    create_partitions(pool, from, through).await
}

/// Creates the partitions for arrivals from `from` through `through` that do not exist yet.
pub async fn create_partitions(
    pool: &PgPool,
    from: DateTime<Utc>,
    through: DateTime<Utc>,
) -> Result<i32, StoreError> {
    let created = sqlx::query_scalar!(
        r#"SELECT create_report_partitions($1, $2) AS "created!""#,
        from,
        through
    )
    .fetch_one(pool)
    .await?;
    Ok(created)
}

/// Creates the partitions a batch arrives in: a report without an arrival time arrives now.
pub(super) async fn create_partitions_for<'a>(
    pool: &PgPool,
    reports: impl IntoIterator<Item = &'a NewReport>,
) -> Result<i32, StoreError> {
    let now = Utc::now();
    let arrivals = reports
        .into_iter()
        .map(|new| new.received_at.unwrap_or(now));
    let (from, through) = arrivals.fold((now, now), |(from, through), at| {
        (from.min(at), through.max(at))
    });
    create_partitions(pool, from, through).await
}

/// True when the database refused a row because no partition of `reports` takes its arrival time.
pub(super) fn is_missing_partition(error: &StoreError) -> bool {
    match error {
        StoreError::Query(sqlx::Error::Database(error)) => {
            error.code().as_deref() == Some("23514")
                && error.message().starts_with("no partition of relation")
        }
        _ => false,
    }
}

//! The retention job: on a schedule, create the partitions of the coming months, bring the analytics
//! rollups up to date, then remove raw reports that arrived more than `RETENTION_DAYS` ago (whole
//! months dropped, the rest of the month the cutoff falls in deleted: `store::expiry`).
//!
//! Nothing is lost by the deletion: ingest folds every report into `analytics.instance_days` in the
//! same transaction that stores it, and the daily rollups are rebuilt from there before any report
//! goes. Age counts from arrival (`received_at`, the server's clock), so a client with a wrong clock
//! can neither have its reports deleted on arrival nor kept forever.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::observability;
use crate::store::{self, RollupRefresh, StoreError};

/// Reports deleted per transaction, in the month the cutoff falls in.
const DELETE_CHUNK: i64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long raw reports are kept after they arrive; `None` keeps them forever.
    pub keep_reports: Option<chrono::Duration>,
    /// Time between runs; `None` disables the job (rollups then go stale).
    pub interval: Option<Duration>,
}

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRun {
    pub refresh: RollupRefresh,
    pub deleted_reports: u64,
}

impl std::fmt::Display for RetentionRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days: i64 = self
            .refresh
            .ranges
            .iter()
            .map(|range| (range.to - range.from).num_days() + 1)
            .sum();
        write!(
            f,
            "rebuilt {days} days of rollups ({} active instance-days), deleted {} raw reports",
            self.refresh.active_instance_days, self.deleted_reports
        )
    }
}

/// Why a run did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The deletion went ahead all the same: raw reports must go on time whatever the rollups do.
    #[error(
        "rollup refresh failed ({deleted_reports} expired raw reports deleted nonetheless): {source}"
    )]
    Refresh {
        #[source]
        source: StoreError,
        deleted_reports: u64,
    },
    #[error("deleting expired raw reports failed: {0}")]
    Delete(#[source] StoreError),
}

/// One run as of `now`: refresh the rollups through `now`'s UTC day, then delete raw reports that
/// arrived before `now - keep_reports`, whether or not the refresh succeeded (docs/privacy.md
/// promises the deletion; the reports' days are already in `analytics.instance_days`, and the
/// deletion notes the days a failed refresh left out so that the next one rebuilds them). Safe to
/// repeat and to run from several processes at once.
pub async fn run_once(
    pool: &PgPool,
    keep_reports: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Result<RetentionRun, RetentionError> {
    // Each run keeps two months of partitions ahead, whatever else fails.
    if let Err(error) = store::create_partitions_around(pool, now).await {
        tracing::warn!(%error, "creating the partitions of reports ahead failed");
    }
    let started = std::time::Instant::now();
    let refresh = store::refresh_rollups(pool, now.date_naive()).await;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "rollup refresh finished"
    );
    observability::rollup_refresh(refresh.is_ok(), now);
    if let Err(error) = &refresh {
        tracing::warn!(%error, "rollup refresh failed; expired raw reports are deleted all the same");
    }
    let deleted_reports = match keep_reports {
        Some(keep) => store::delete_reports_received_before(pool, now - keep, DELETE_CHUNK)
            .await
            .map_err(RetentionError::Delete)?,
        None => 0,
    };
    observability::reports_expired(deleted_reports);
    match refresh {
        Ok(refresh) => Ok(RetentionRun {
            refresh,
            deleted_reports,
        }),
        Err(source) => Err(RetentionError::Refresh {
            source,
            deleted_reports,
        }),
    }
}

/// The job: a first run right away, then one per interval, forever. Aborting it at any point is
/// safe: the refresh is one transaction, a partition is detached before it is dropped (and a later
/// run drops what an interrupted one detached), and row deletes go a chunk per transaction.
pub async fn run_every(pool: PgPool, keep_reports: Option<chrono::Duration>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = std::time::Instant::now();
        match run_once(&pool, keep_reports, Utc::now()).await {
            Ok(run) => {
                observability::retention_run(true);
                tracing::info!(
                    refreshed_ranges = run.refresh.ranges.len(),
                    active_instance_days = run.refresh.active_instance_days,
                    deleted_reports = run.deleted_reports,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention run finished"
                );
            }
            Err(error) => {
                observability::retention_run(false);
                tracing::warn!(%error, "retention run failed; retrying at the next interval");
            }
        }
    }
}

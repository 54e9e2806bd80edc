//! All SQL lives here, by concern: connecting (and creating the database) and migrations here and in
//! `connect`; the set-based batch write that stores reports, upserts their instances and keeps the
//! upgrade history consistent (`writes`, its statements in `queries/`, and the key lists it need
//! not send again in `stored_entries`); the monthly partitions of `report_rows` and
//! `report_metric_values`, where `reports` is stored (`partitions`); the rollup refresh
//! (`rollups`); the expiry of raw reports (`expiry`); what the statistics page reads (`read`); and
//! spreading the tables over a Citus cluster (`distribute`).

mod array_literal;
mod connect;
mod distribute;
mod expiry;
mod partitions;
mod read;
mod rollups;
mod stored_entries;
mod writes;

use sqlx::PgPool;

pub use connect::{DatabaseSettings, connect};
pub use distribute::{Distribution, Topology, distribute};
pub use expiry::delete_reports_received_before;
pub use partitions::{create_partitions, create_partitions_around};
pub use read::{
    CountryCount, DatabaseLine, FeatureAdoption, StatsRollups, WeeklyActivity, WeeklyVersion,
    stats_rollups,
};
pub use rollups::{DayRange, RollupRefresh, refresh_rollups};
pub use stored_entries::StoredEntries;
pub use writes::{GroupedWrite, NewReport, insert_reports, insert_reports_remembering};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("PostgreSQL is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("could not create database {name:?}: {source}")]
    CreateDatabase {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "this PostgreSQL server does not run Citus (the citus extension installed and in shared_preload_libraries); --distribute needs a Citus coordinator"
    )]
    NoCitus,
    #[error("could not distribute {table} with Citus: {source}")]
    Distribute {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
}

/// Whether the database could not be reached or answered with an error of the query's own.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_connectivity_error(&error) {
            Self::Unavailable(error)
        } else {
            Self::Query(error)
        }
    }
}

impl StoreError {
    /// True when retrying the same write later may succeed: the database was unreachable or busy,
    /// or the transaction lost a deadlock or serialization race.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Query(sqlx::Error::Database(error)) => {
                error.code().is_some_and(|code| code.starts_with("40"))
            }
            _ => false,
        }
    }
}

fn is_connectivity_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // SQLSTATE classes 08 connection exception, 53 insufficient resources, 57 operator
        // intervention (shutdown, terminated session), 58 system error.
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            ["08", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    }
}

/// Applies every migration in `migrations/` that the database has not seen yet, and creates the
/// monthly partitions for the reports that arrive around now.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    create_partitions_around(pool, chrono::Utc::now()).await?;
    Ok(())
}

/// True when the database answers a trivial query within the pool's acquire timeout.
pub async fn is_ready(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

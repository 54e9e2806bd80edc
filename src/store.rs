//! All SQL lives here: connecting (and creating the database), migrations, and the set-based batch
//! write that stores reports, upserts their instances and keeps the upgrade history consistent.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

use crate::ingest::Report;

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
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
}

impl StoreError {
    fn from_sqlx(error: sqlx::Error) -> Self {
        if is_connectivity_error(&error) {
            Self::Unavailable(error)
        } else {
            Self::Query(error)
        }
    }

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

/// How the service reaches PostgreSQL.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long a request may wait for a connection before it is answered 503.
    pub acquire_timeout: Duration,
}

/// Connects to the configured database, creating it first if it does not exist yet.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(&settings.url).map_err(StoreError::InvalidUrl)?;
    create_database_if_missing(&options).await?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(StoreError::from_sqlx)
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), StoreError> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut connection = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(StoreError::from_sqlx)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut connection)
            .await
            .map_err(StoreError::from_sqlx)?;
    if !exists {
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        let created = sqlx::query(AssertSqlSafe(statement))
            .execute(&mut connection)
            .await;
        match created {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another instance of the service created it at the same moment.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P04") => {}
            Err(source) => return Err(StoreError::CreateDatabase { name, source }),
        }
    }
    connection.close().await.ok();
    Ok(())
}

/// Applies every migration in `migrations/` that the database has not seen yet.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// A report as it goes to the database: the validated report plus what the server adds.
#[derive(Clone, Debug)]
pub struct NewReport {
    pub report: Report,
    /// ISO 3166-1 alpha-2 code of the sender's address, resolved before the address was dropped.
    pub country_code: Option<String>,
    /// Which wire protocol it came by, e.g. `GenericReport`.
    pub protocol: &'static str,
}

/// The report columns as parallel arrays, the shape `UNNEST` takes.
#[derive(Default)]
struct ReportColumns {
    report_id: Vec<uuid::Uuid>,
    instance_id: Vec<uuid::Uuid>,
    product_family: Vec<&'static str>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    version: Vec<Option<String>>,
    country_code: Vec<Option<String>>,
    up_duration_seconds: Vec<Option<i64>>,
    protocol: Vec<&'static str>,
    metrics: Vec<String>,
}

impl ReportColumns {
    fn from_reports(reports: &[NewReport]) -> Self {
        let mut columns = Self::default();
        for new in reports {
            let report = &new.report;
            columns.report_id.push(report.report_id);
            columns.instance_id.push(report.instance_id);
            columns.product_family.push(report.product_family.as_str());
            columns.created_at.push(report.created_at);
            columns.version.push(report.version.clone());
            columns.country_code.push(new.country_code.clone());
            columns.up_duration_seconds.push(report.up_duration_seconds);
            columns.protocol.push(new.protocol);
            columns.metrics.push(
                serde_json::to_string(&report.metrics)
                    .expect("a list of string pairs always serialises"),
            );
        }
        columns
    }
}

/// Stores a batch of reports in one transaction and returns how many were new.
///
/// Three set-based statements, whatever the batch size: insert the reports (skipping report ids
/// already stored) and upsert their instances; then, for each instance that got new reports, drop
/// and re-derive its upgrades from the earliest new report on, so late or out-of-order reports
/// never leave a false downgrade or a duplicate upgrade behind.
pub async fn insert_reports(pool: &PgPool, reports: &[NewReport]) -> Result<u64, StoreError> {
    if reports.is_empty() {
        return Ok(0);
    }
    let columns = ReportColumns::from_reports(reports);
    // Whatever stops us from getting a connection (refused, database closed to connections, pool
    // exhausted) means the database is unavailable, not that these reports are at fault.
    let mut tx = pool.begin().await.map_err(StoreError::Unavailable)?;

    let touched = sqlx::query!(
        r#"
        WITH incoming AS (
            SELECT *
            FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                        $7::bigint[], $8::text[], $9::text[])
                AS t(report_id, instance_id, product_family, created_at, version, country_code,
                     up_duration_seconds, protocol, metrics)
        ),
        inserted AS (
            INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at, version,
                                 country_code, up_duration_seconds, protocol, metrics)
            SELECT DISTINCT ON (report_id)
                   report_id, instance_id, product_family, created_at, now(), version,
                   country_code, up_duration_seconds, protocol, metrics::jsonb
            FROM incoming
            ORDER BY report_id
            ON CONFLICT (report_id) DO NOTHING
            RETURNING report_id, instance_id, product_family, created_at, version, country_code
        ),
        per_instance AS (
            SELECT instance_id,
                   product_family,
                   min(created_at) AS first_seen,
                   max(created_at) AS last_seen,
                   (array_agg(version ORDER BY created_at DESC, report_id DESC)
                        FILTER (WHERE version IS NOT NULL))[1] AS version,
                   max(created_at) FILTER (WHERE version IS NOT NULL) AS version_seen_at,
                   min(created_at) FILTER (WHERE version IS NOT NULL) AS earliest_versioned,
                   (array_agg(country_code ORDER BY created_at DESC, report_id DESC)
                        FILTER (WHERE country_code IS NOT NULL))[1] AS country_code,
                   count(*) AS report_count
            FROM inserted
            GROUP BY instance_id, product_family
        ),
        upserted AS (
            INSERT INTO instances AS i (instance_id, product_family, first_seen, last_seen, version,
                                        version_seen_at, country_code, report_count, last_received_at)
            SELECT instance_id, product_family, first_seen, last_seen, version,
                   version_seen_at, country_code, report_count, now()
            FROM per_instance
            ORDER BY instance_id, product_family
            ON CONFLICT (instance_id, product_family) DO UPDATE SET
                first_seen = least(i.first_seen, excluded.first_seen),
                last_seen = greatest(i.last_seen, excluded.last_seen),
                version = CASE
                    WHEN excluded.version_seen_at IS NOT NULL
                         AND (i.version_seen_at IS NULL OR excluded.version_seen_at > i.version_seen_at)
                    THEN excluded.version ELSE i.version END,
                version_seen_at = CASE
                    WHEN excluded.version_seen_at IS NOT NULL
                         AND (i.version_seen_at IS NULL OR excluded.version_seen_at > i.version_seen_at)
                    THEN excluded.version_seen_at ELSE i.version_seen_at END,
                country_code = coalesce(excluded.country_code, i.country_code),
                report_count = i.report_count + excluded.report_count,
                last_received_at = excluded.last_received_at
            RETURNING 1 AS done
        )
        SELECT instance_id AS "instance_id!", product_family AS "product_family!",
               earliest_versioned AS "since?", report_count AS "report_count!"
        FROM per_instance
        "#,
        &columns.report_id,
        &columns.instance_id,
        &columns.product_family as &[&str],
        &columns.created_at,
        &columns.version as &[Option<String>],
        &columns.country_code as &[Option<String>],
        &columns.up_duration_seconds as &[Option<i64>],
        &columns.protocol as &[&str],
        &columns.metrics,
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;

    let inserted: i64 = touched.iter().map(|row| row.report_count).sum();
    let versioned: Vec<_> = touched.iter().filter(|row| row.since.is_some()).collect();
    if !versioned.is_empty() {
        let instance_ids: Vec<uuid::Uuid> = versioned.iter().map(|row| row.instance_id).collect();
        let families: Vec<String> = versioned
            .iter()
            .map(|row| row.product_family.clone())
            .collect();
        let since: Vec<chrono::DateTime<chrono::Utc>> =
            versioned.iter().filter_map(|row| row.since).collect();

        sqlx::query!(
            r#"
            DELETE FROM upgrades u
            USING UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS t(instance_id, product_family, since)
            WHERE u.instance_id = t.instance_id
              AND u.product_family = t.product_family
              AND u.upgraded_at >= t.since
            "#,
            &instance_ids,
            &families,
            &since,
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;

        sqlx::query!(
            r#"
            WITH touched AS (
                SELECT t.instance_id, t.product_family, t.since,
                       (SELECT max(p.created_at) FROM reports p
                        WHERE p.instance_id = t.instance_id AND p.product_family = t.product_family
                          AND p.version IS NOT NULL AND p.created_at < t.since) AS previous_at
                FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS t(instance_id, product_family, since)
            ),
            sequence AS (
                SELECT r.instance_id, r.product_family, r.report_id, r.created_at, r.version, t.since,
                       lag(r.version) OVER (PARTITION BY r.instance_id, r.product_family
                                            ORDER BY r.created_at, r.report_id) AS previous_version
                FROM touched t
                JOIN reports r ON r.instance_id = t.instance_id AND r.product_family = t.product_family
                WHERE r.version IS NOT NULL
                  AND r.created_at >= coalesce(t.previous_at, t.since)
            )
            INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
            SELECT instance_id, product_family, previous_version, version, created_at, report_id
            FROM sequence
            WHERE created_at >= since AND previous_version <> version
            "#,
            &instance_ids,
            &families,
            &since,
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    }

    tx.commit().await.map_err(StoreError::from_sqlx)?;
    Ok(u64::try_from(inserted).unwrap_or(0))
}

/// True when the database answers a trivial query within the pool's acquire timeout.
pub async fn is_ready(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

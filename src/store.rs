//! All SQL lives here: connecting (and creating the database), migrations, and the set-based batch
//! write that stores reports, upserts their instances and keeps the upgrade history consistent.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

use crate::ingest::Report;
use crate::stored_metrics::{self, fits_text};
use crate::typed_metrics::{TypedMetrics, array_literal};

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
    let options = PgConnectOptions::from_str(&settings.url)
        .map_err(StoreError::InvalidUrl)?
        // sqlx keeps each statement prepared for the connection's lifetime, and after five runs
        // PostgreSQL may switch to a generic plan made once, with the table sizes of that moment:
        // plans made while the tables were small (seq scans, hash joins) then slowed every batch
        // down as the tables grew (docs/performance.md). A custom plan per run costs far less.
        .options([("plan_cache_mode", "force_custom_plan")]);
    let options = create_database_if_missing(options).await?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(StoreError::from_sqlx)
}

/// Creates the database unless it exists, and returns the options every later connection uses: the
/// same, or without TLS after [`connect_maintenance`] fell back to plain TCP.
async fn create_database_if_missing(
    options: PgConnectOptions,
) -> Result<PgConnectOptions, StoreError> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let (mut connection, options) = connect_maintenance(options).await?;
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
    Ok(options)
}

/// Connects to the maintenance database `postgres`. Under `sslmode=prefer` (also the default) a server
/// whose TLS handshake fails, typically over a certificate rustls cannot use (a self-signed X.509 v1
/// one, as Citus nodes make), is connected to again without TLS, as libpq does; the pool then keeps
/// plain TCP until the next start. `require`, `verify-ca` and `verify-full` still fail.
async fn connect_maintenance(
    options: PgConnectOptions,
) -> Result<(PgConnection, PgConnectOptions), StoreError> {
    match options.clone().database("postgres").connect().await {
        Ok(connection) => Ok((connection, options)),
        Err(error)
            if matches!(options.get_ssl_mode(), PgSslMode::Prefer) && is_tls_failure(&error) =>
        {
            tracing::warn!(%error, "TLS with PostgreSQL failed; sslmode=prefer, so connecting without TLS (set sslmode=require to refuse)");
            let options = options.ssl_mode(PgSslMode::Disable);
            let connection = options
                .clone()
                .database("postgres")
                .connect()
                .await
                .map_err(StoreError::from_sqlx)?;
            Ok((connection, options))
        }
        Err(error) => Err(StoreError::from_sqlx(error)),
    }
}

/// sqlx reports a failed TLS set-up as `Error::Tls`, or, for what rustls refuses during the
/// handshake (such as the server's certificate), as an I/O error carrying the rustls error.
fn is_tls_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
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
    /// When it arrived, if not now: generated history (src/synthetic.rs) arrives on its own days.
    /// `None` stores the ingest transaction's start, as for every report a client sends.
    pub received_at: Option<DateTime<Utc>>,
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
    distribution_method: Vec<Option<String>>,
    alerting_enabled: Vec<Option<bool>>,
    stt_enabled: Vec<Option<bool>>,
    advisors_disabled: Vec<Option<bool>>,
    backup_management_enabled: Vec<Option<bool>>,
    dbaas_enabled: Vec<Option<bool>>,
    access_control_enabled: Vec<Option<bool>>,
    updates_disabled: Vec<Option<bool>>,
    grafana_users: Vec<Option<i32>>,
    nodes: Vec<Option<i32>>,
    services: Vec<Option<i32>>,
    /// Array literals: `UNNEST` cannot take a text[][] whose rows differ in length.
    mysql_versions: Vec<Option<String>>,
    mongodb_versions: Vec<Option<String>>,
    postgresql_versions: Vec<Option<String>>,
    received_at: Vec<Option<DateTime<Utc>>>,
}

impl ReportColumns {
    fn from_reports<'a>(reports: impl IntoIterator<Item = &'a NewReport>) -> Self {
        let mut columns = Self::default();
        for new in reports {
            let report = &new.report;
            columns.report_id.push(report.report_id);
            columns.instance_id.push(report.instance_id);
            columns.product_family.push(report.product_family.as_str());
            columns.created_at.push(report.created_at);
            columns
                .version
                .push(report.version.clone().filter(|version| fits_text(version)));
            columns.country_code.push(new.country_code.clone());
            columns.up_duration_seconds.push(report.up_duration_seconds);
            columns.protocol.push(new.protocol);
            columns
                .metrics
                .push(stored_metrics::to_json(&report.metrics));
            let typed = TypedMetrics::from_metrics(&report.metrics);
            columns.distribution_method.push(typed.distribution_method);
            columns.alerting_enabled.push(typed.alerting_enabled);
            columns.stt_enabled.push(typed.stt_enabled);
            columns.advisors_disabled.push(typed.advisors_disabled);
            columns
                .backup_management_enabled
                .push(typed.backup_management_enabled);
            columns.dbaas_enabled.push(typed.dbaas_enabled);
            columns
                .access_control_enabled
                .push(typed.access_control_enabled);
            columns.updates_disabled.push(typed.updates_disabled);
            columns.grafana_users.push(typed.grafana_users);
            columns.nodes.push(typed.nodes);
            columns.services.push(typed.services);
            let literal = |versions: Option<Vec<String>>| versions.map(|v| array_literal(&v));
            columns.mysql_versions.push(literal(typed.mysql_versions));
            columns
                .mongodb_versions
                .push(literal(typed.mongodb_versions));
            columns
                .postgresql_versions
                .push(literal(typed.postgresql_versions));
            columns.received_at.push(new.received_at);
        }
        columns
    }
}

/// Stores a batch of reports in one transaction and returns how many were new.
///
/// Set-based statements, whatever the batch size. The first inserts the reports (skipping report
/// ids already stored), upserts their instances, folds them into their per-day analytics row
/// (`analytics.instance_days`) and appends the upgrades of instances whose new reports are newer
/// than everything stored for them, the usual case. Only for the other instances, with late or
/// out-of-order reports or a concurrent batch in between, two more statements drop and re-derive
/// the upgrades from the earliest new report on, so no false downgrade or duplicate upgrade is
/// left behind.
pub async fn insert_reports<'a>(
    pool: &PgPool,
    reports: impl IntoIterator<Item = &'a NewReport>,
) -> Result<u64, StoreError> {
    // Whatever stops us from getting a connection (refused, database closed to connections, pool
    // exhausted) means the database is unavailable, not that these reports are at fault.
    let mut tx = pool.begin().await.map_err(StoreError::Unavailable)?;
    let inserted = insert_reports_in(&mut tx, reports).await?;
    tx.commit().await.map_err(StoreError::from_sqlx)?;
    Ok(inserted)
}

/// Several groups of reports in one transaction, each group all or nothing: a group the database
/// refuses is rolled back to its savepoint and the others commit together. Finding the one request
/// that broke a batch thus costs statements, not a commit (and its flush) per request.
pub struct GroupedWrite {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl GroupedWrite {
    pub async fn begin(pool: &PgPool) -> Result<Self, StoreError> {
        let tx = pool.begin().await.map_err(StoreError::Unavailable)?;
        Ok(Self { tx })
    }

    /// Stores one group within the transaction, or leaves the transaction as it was before.
    pub async fn insert<'a>(
        &mut self,
        reports: impl IntoIterator<Item = &'a NewReport>,
    ) -> Result<u64, StoreError> {
        let mut savepoint = self.tx.begin().await.map_err(StoreError::from_sqlx)?;
        let inserted = insert_reports_in(&mut savepoint, reports).await?;
        savepoint.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(inserted)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(StoreError::from_sqlx)
    }
}

/// The statements of [`insert_reports`], within the caller's transaction.
async fn insert_reports_in<'a>(
    tx: &mut PgConnection,
    reports: impl IntoIterator<Item = &'a NewReport>,
) -> Result<u64, StoreError> {
    let columns = ReportColumns::from_reports(reports);
    if columns.report_id.is_empty() {
        return Ok(0);
    }

    let touched = sqlx::query!(
        r#"
        WITH incoming AS (
            SELECT *
            FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                        $7::bigint[], $8::text[], $9::text[], $10::text[], $11::boolean[], $12::boolean[],
                        $13::boolean[], $14::boolean[], $15::boolean[], $16::boolean[], $17::boolean[],
                        $18::integer[], $19::integer[], $20::integer[], $21::text[], $22::text[], $23::text[],
                        $24::timestamptz[])
                AS t(report_id, instance_id, product_family, created_at, version, country_code,
                     up_duration_seconds, protocol, metrics, distribution_method, alerting_enabled,
                     stt_enabled, advisors_disabled, backup_management_enabled, dbaas_enabled,
                     access_control_enabled, updates_disabled, grafana_users, nodes, services,
                     mysql_versions, mongodb_versions, postgresql_versions, received_at)
        ),
        inserted AS (
            INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at, version,
                                 country_code, up_duration_seconds, protocol, metrics)
            SELECT DISTINCT ON (report_id)
                   report_id, instance_id, product_family, created_at, coalesce(received_at, now()), version,
                   country_code, up_duration_seconds, protocol, metrics::jsonb
            FROM incoming
            ORDER BY report_id
            ON CONFLICT (report_id) DO NOTHING
            RETURNING report_id, instance_id, product_family, created_at, received_at, version, country_code,
                      up_duration_seconds, analytics.report_day(created_at, received_at) AS day
        ),
        per_instance AS (
            SELECT instance_id,
                   product_family,
                   min(created_at) AS first_seen,
                   max(created_at) AS last_seen,
                   min(day) AS first_day,
                   max(received_at) AS last_received_at,
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
        prior AS (
            -- The instances as they stood before this statement: its snapshot.
            SELECT i.instance_id, i.product_family, i.version, i.version_seen_at, i.report_count
            FROM instances i
            JOIN per_instance p USING (instance_id, product_family)
        ),
        upserted AS (
            INSERT INTO instances AS i (instance_id, product_family, first_seen, last_seen, first_day, version,
                                        version_seen_at, country_code, report_count, last_received_at)
            SELECT instance_id, product_family, first_seen, last_seen, first_day, version,
                   version_seen_at, country_code, report_count, last_received_at
            FROM per_instance
            ORDER BY instance_id, product_family
            ON CONFLICT (instance_id, product_family) DO UPDATE SET
                first_seen = least(i.first_seen, excluded.first_seen),
                last_seen = greatest(i.last_seen, excluded.last_seen),
                first_day = least(i.first_day, excluded.first_day),
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
                last_received_at = greatest(i.last_received_at, excluded.last_received_at)
            RETURNING i.instance_id, i.product_family, i.report_count
        ),
        in_order AS (
            -- Instances whose new reports all come after every stored report with a version, and
            -- whose row no other transaction changed between this statement's snapshot and its
            -- upsert (every change adds to report_count): their upgrades follow from the last
            -- version and the new reports alone, with nothing stored to re-derive.
            SELECT p.instance_id, p.product_family, r.version AS previous_version
            FROM per_instance p
            JOIN upserted u USING (instance_id, product_family)
            LEFT JOIN prior r USING (instance_id, product_family)
            WHERE p.earliest_versioned IS NOT NULL
              AND u.report_count = coalesce(r.report_count, 0) + p.report_count
              AND (r.version_seen_at IS NULL OR p.earliest_versioned > r.version_seen_at)
        ),
        appended_upgrades AS (
            INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
            SELECT instance_id, product_family, from_version, version, created_at, report_id
            FROM (
                SELECT n.instance_id, n.product_family, n.report_id, n.created_at, n.version,
                       lag(n.version, 1, o.previous_version)
                           OVER (PARTITION BY n.instance_id, n.product_family
                                 ORDER BY n.created_at, n.report_id) AS from_version
                FROM inserted n
                JOIN in_order o USING (instance_id, product_family)
                WHERE n.version IS NOT NULL
            ) sequence
            WHERE from_version <> version
            RETURNING 1 AS done
        ),
        moved_first_days AS (
            -- A late report older than an instance's first day moves that day: the old one is no
            -- longer the day the instance was new, and its rollups must be rebuilt.
            INSERT INTO analytics.stale_days (day, noted_at)
            SELECT DISTINCT i.first_day, now()
            FROM instances i
            JOIN per_instance p USING (instance_id, product_family)
            WHERE p.first_day < i.first_day
            ON CONFLICT (day) DO UPDATE SET noted_at = excluded.noted_at
            RETURNING 1 AS done
        ),
        unseen_arrivals AS (
            -- Reports stored as arriving in the past (generated history) are not among the arrivals
            -- a refresh looks for once it has passed them: their days are noted instead.
            INSERT INTO analytics.stale_days (day, noted_at)
            SELECT DISTINCT day, now()
            FROM inserted
            WHERE received_at < now() - interval '10 minutes'
            ON CONFLICT (day) DO UPDATE SET noted_at = excluded.noted_at
            RETURNING 1 AS done
        ),
        day_summary AS (
            SELECT day, instance_id, product_family,
                   count(*) AS report_count,
                   min(created_at) AS first_report_at,
                   (array_agg(up_duration_seconds ORDER BY created_at, report_id))[1] AS first_up_duration_seconds,
                   (array_agg(version ORDER BY created_at, report_id))[1] AS first_version,
                   (array_agg(version ORDER BY created_at DESC, report_id DESC)
                        FILTER (WHERE version IS NOT NULL))[1] AS version,
                   array_agg(DISTINCT version) FILTER (WHERE version IS NOT NULL) AS versions,
                   (array_agg(country_code ORDER BY created_at DESC, report_id DESC)
                        FILTER (WHERE country_code IS NOT NULL))[1] AS country_code
            FROM inserted
            GROUP BY day, instance_id, product_family
        ),
        day_latest AS (
            -- The typed metrics were read from each report in the service (src/typed_metrics.rs).
            SELECT DISTINCT ON (n.day, n.instance_id, n.product_family)
                   n.day, n.instance_id, n.product_family, n.created_at, n.report_id,
                   i.distribution_method, i.alerting_enabled, i.stt_enabled, i.advisors_disabled,
                   i.backup_management_enabled, i.dbaas_enabled, i.access_control_enabled,
                   i.updates_disabled, i.grafana_users, i.nodes, i.services,
                   i.mysql_versions::text[] AS mysql_versions, i.mongodb_versions::text[] AS mongodb_versions,
                   i.postgresql_versions::text[] AS postgresql_versions
            FROM inserted n
            JOIN (SELECT DISTINCT ON (report_id) * FROM incoming ORDER BY report_id) i USING (report_id)
            ORDER BY n.day, n.instance_id, n.product_family, n.created_at DESC, n.report_id DESC
        ),
        folded AS (
            -- The typed daily facts analytics reads; they outlive the raw reports (src/retention.rs).
            -- Typed metrics follow the day's latest report, whichever batch it came in.
            INSERT INTO analytics.instance_days AS d (
                day, instance_id, product_family, report_count, first_report_at, last_report_at, last_report_id,
                first_up_duration_seconds, first_version, version, extra_versions, country_code,
                distribution_method, alerting_enabled, stt_enabled, advisors_disabled,
                backup_management_enabled, dbaas_enabled, access_control_enabled, updates_disabled,
                grafana_users, nodes, services, mysql_versions, mongodb_versions, postgresql_versions)
            SELECT s.day, s.instance_id, s.product_family, s.report_count, s.first_report_at, l.created_at,
                   l.report_id, s.first_up_duration_seconds, s.first_version, s.version,
                   nullif(array_remove(array_remove(s.versions, s.first_version), s.version), '{}'),
                   s.country_code,
                   l.distribution_method, l.alerting_enabled, l.stt_enabled, l.advisors_disabled,
                   l.backup_management_enabled, l.dbaas_enabled, l.access_control_enabled, l.updates_disabled,
                   l.grafana_users, l.nodes, l.services, l.mysql_versions, l.mongodb_versions,
                   l.postgresql_versions
            FROM day_summary s
            JOIN day_latest l USING (day, instance_id, product_family)
            ORDER BY s.day, s.instance_id, s.product_family
            ON CONFLICT (day, instance_id, product_family) DO UPDATE SET
                report_count = d.report_count + excluded.report_count,
                first_report_at = least(d.first_report_at, excluded.first_report_at),
                first_up_duration_seconds = CASE WHEN excluded.first_report_at < d.first_report_at
                    THEN excluded.first_up_duration_seconds ELSE d.first_up_duration_seconds END,
                first_version = CASE WHEN excluded.first_report_at < d.first_report_at
                    THEN excluded.first_version ELSE d.first_version END,
                version = CASE WHEN (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
                    THEN coalesce(excluded.version, d.version) ELSE coalesce(d.version, excluded.version) END,
                -- Every version of the day stays: whichever of the two sides' versions the new
                -- first_version and version (as just above) do not keep.
                extra_versions = (
                    SELECT array_agg(DISTINCT v ORDER BY v)
                    FROM unnest(ARRAY[d.first_version, d.version, excluded.first_version, excluded.version]
                                || d.extra_versions || excluded.extra_versions) AS v
                    WHERE v IS NOT NULL
                      AND v IS DISTINCT FROM CASE WHEN excluded.first_report_at < d.first_report_at
                          THEN excluded.first_version ELSE d.first_version END
                      AND v IS DISTINCT FROM CASE
                          WHEN (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
                          THEN coalesce(excluded.version, d.version) ELSE coalesce(d.version, excluded.version) END),
                country_code = CASE WHEN (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
                    THEN coalesce(excluded.country_code, d.country_code)
                    ELSE coalesce(d.country_code, excluded.country_code) END,
                (last_report_at, last_report_id, distribution_method, alerting_enabled, stt_enabled,
                 advisors_disabled, backup_management_enabled, dbaas_enabled, access_control_enabled,
                 updates_disabled, grafana_users, nodes, services, mysql_versions, mongodb_versions,
                 postgresql_versions) =
                (SELECT excluded.last_report_at, excluded.last_report_id, excluded.distribution_method,
                        excluded.alerting_enabled, excluded.stt_enabled, excluded.advisors_disabled,
                        excluded.backup_management_enabled, excluded.dbaas_enabled,
                        excluded.access_control_enabled, excluded.updates_disabled, excluded.grafana_users,
                        excluded.nodes, excluded.services, excluded.mysql_versions, excluded.mongodb_versions,
                        excluded.postgresql_versions
                 WHERE (excluded.last_report_at, excluded.last_report_id) > (d.last_report_at, d.last_report_id)
                 UNION ALL
                 SELECT d.last_report_at, d.last_report_id, d.distribution_method, d.alerting_enabled,
                        d.stt_enabled, d.advisors_disabled, d.backup_management_enabled, d.dbaas_enabled,
                        d.access_control_enabled, d.updates_disabled, d.grafana_users, d.nodes, d.services,
                        d.mysql_versions, d.mongodb_versions, d.postgresql_versions
                 WHERE (excluded.last_report_at, excluded.last_report_id) <= (d.last_report_at, d.last_report_id))
            RETURNING 1 AS done
        )
        SELECT p.instance_id AS "instance_id!", p.product_family AS "product_family!",
               p.earliest_versioned AS "since?", p.report_count AS "report_count!",
               o.instance_id IS NOT NULL AS "upgrades_appended!"
        FROM per_instance p
        LEFT JOIN in_order o USING (instance_id, product_family)
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
        &columns.distribution_method as &[Option<String>],
        &columns.alerting_enabled as &[Option<bool>],
        &columns.stt_enabled as &[Option<bool>],
        &columns.advisors_disabled as &[Option<bool>],
        &columns.backup_management_enabled as &[Option<bool>],
        &columns.dbaas_enabled as &[Option<bool>],
        &columns.access_control_enabled as &[Option<bool>],
        &columns.updates_disabled as &[Option<bool>],
        &columns.grafana_users as &[Option<i32>],
        &columns.nodes as &[Option<i32>],
        &columns.services as &[Option<i32>],
        &columns.mysql_versions as &[Option<String>],
        &columns.mongodb_versions as &[Option<String>],
        &columns.postgresql_versions as &[Option<String>],
        &columns.received_at as &[Option<DateTime<Utc>>],
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;

    let inserted: i64 = touched.iter().map(|row| row.report_count).sum();
    let versioned: Vec<_> = touched
        .iter()
        .filter(|row| row.since.is_some() && !row.upgrades_appended)
        .collect();
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

    Ok(u64::try_from(inserted).unwrap_or(0))
}

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
    let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
    sqlx::query!(
        r#"SELECT 1 AS "locked!" FROM pg_advisory_xact_lock($1)"#,
        ROLLUP_LOCK_KEY
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let ranges: Vec<DayRange> = sqlx::query!(
        r#"SELECT from_day AS "from_day!", to_day AS "to_day!" FROM analytics.rollup_ranges($1)"#,
        today
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?
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
            .await
            .map_err(StoreError::from_sqlx)?;
            from = to + chrono::Days::new(1);
        }
        sqlx::query!(
            r#"SELECT 1 AS "done!" FROM analytics.refresh_periods($1, $2, $3)"#,
            range.from,
            range.to,
            today
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    }
    sqlx::query!(
        r#"SELECT 1 AS "done!" FROM analytics.finish_refresh($1)"#,
        today
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    tx.commit().await.map_err(StoreError::from_sqlx)?;
    Ok(RollupRefresh {
        ranges,
        active_instance_days,
    })
}

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
        .await
        .map_err(StoreError::from_sqlx)?;
        let done = u64::try_from(done).unwrap_or(0);
        // A concurrent run may take rows from under this one; stop only once nothing is left.
        if done == 0 {
            return Ok(deleted);
        }
        deleted += done;
    }
}

/// What the public statistics page is built from: aggregate rows of the analysts' views, never a
/// row about one instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsRollups {
    /// The day the snapshot views describe, and when the rollups were refreshed; `None` before the
    /// first refresh, when everything else is empty.
    pub snapshot: Option<(NaiveDate, DateTime<Utc>)>,
    pub weekly_activity: Vec<WeeklyActivity>,
    pub weekly_versions: Vec<WeeklyVersion>,
    pub pmm_features: Vec<FeatureAdoption>,
    pub database_lines: Vec<DatabaseLine>,
    pub countries: Vec<CountryCount>,
}

/// A row of `analytics.active_instances_weekly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeeklyActivity {
    pub week_start: NaiveDate,
    pub product_family: String,
    pub active_instances: i64,
}

/// A row of `analytics.release_uptake_weekly` with active instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeeklyVersion {
    pub week_start: NaiveDate,
    pub product_family: String,
    pub version: String,
    pub active_instances: i64,
}

/// A row of `analytics.pmm_feature_adoption`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureAdoption {
    pub feature: String,
    pub active_servers: i64,
    pub enabled_servers: i64,
}

/// A row of `analytics.monitored_database_lines`.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseLine {
    pub database: String,
    pub line: Option<String>,
    pub pmm_servers: i64,
    pub services: i64,
    pub share_of_services: f64,
}

/// Active instances of all products in one country (`analytics.countries`, summed over families).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountryCount {
    pub country_code: Option<String>,
    pub active_instances: i64,
}

/// Reads the statistics page's rollups in one read-only snapshot, so that a refresh of the rollups
/// running meanwhile cannot mix two days. `weeks` bounds the weekly series.
pub async fn stats_rollups(pool: &PgPool, weeks: i32) -> Result<StatsRollups, StoreError> {
    let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let snapshot = sqlx::query!(
        r#"SELECT day AS "day!", refreshed_at AS "refreshed_at!" FROM analytics.snapshot_day"#
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?
    .map(|row| (row.day, row.refreshed_at));
    let Some((day, _)) = snapshot else {
        return Ok(StatsRollups::default());
    };
    let since = day - Days::new(7 * u64::try_from(weeks).unwrap_or(0));

    let weekly_activity = sqlx::query_as!(
        WeeklyActivity,
        r#"
        SELECT week_start AS "week_start!", product_family AS "product_family!",
               active_instances::bigint AS "active_instances!"
        FROM analytics.active_instances_weekly
        WHERE week_start > $1 AND active_instances > 0
        ORDER BY week_start, product_family
        "#,
        since
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let weekly_versions = sqlx::query_as!(
        WeeklyVersion,
        r#"
        SELECT week_start AS "week_start!", product_family AS "product_family!", version AS "version!",
               active_instances::bigint AS "active_instances!"
        FROM analytics.release_uptake_weekly
        WHERE week_start > $1 AND active_instances > 0
        ORDER BY product_family, week_start, version
        "#,
        since
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let pmm_features = sqlx::query_as!(
        FeatureAdoption,
        r#"
        SELECT feature AS "feature!", active_servers::bigint AS "active_servers!",
               enabled_servers::bigint AS "enabled_servers!"
        FROM analytics.pmm_feature_adoption
        ORDER BY feature
        "#
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let database_lines = sqlx::query_as!(
        DatabaseLine,
        r#"
        SELECT database AS "database!", line, pmm_servers::bigint AS "pmm_servers!",
               services::bigint AS "services!", share_of_services::float8 AS "share_of_services!"
        FROM analytics.monitored_database_lines
        ORDER BY database, line
        "#
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let countries = sqlx::query_as!(
        CountryCount,
        r#"
        SELECT country_code, sum(active_instances)::bigint AS "active_instances!"
        FROM analytics.countries
        GROUP BY country_code
        HAVING sum(active_instances) > 0
        ORDER BY country_code
        "#
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    tx.commit().await.map_err(StoreError::from_sqlx)?;
    Ok(StatsRollups {
        snapshot,
        weekly_activity,
        weekly_versions,
        pmm_features,
        database_lines,
        countries,
    })
}

/// True when the database answers a trivial query within the pool's acquire timeout.
pub async fn is_ready(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

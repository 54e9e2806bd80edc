//! Connecting to PostgreSQL, creating the database on first start.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

use super::StoreError;

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
        // down as the tables grew (docs/performance.md). A custom plan per run costs far less;
        // only the writer's small batches choose the plan made once, for their own transaction
        // (src/store/writes.rs).
        .options([("plan_cache_mode", "force_custom_plan")]);
    let options = create_database_if_missing(options).await?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(StoreError::from)
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
            .await?;
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
            let connection = options.clone().database("postgres").connect().await?;
            Ok((connection, options))
        }
        Err(error) => Err(error.into()),
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

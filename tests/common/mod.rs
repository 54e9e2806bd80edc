//! Shared test helpers: a real service on a random port against a fresh PostgreSQL database, or
//! the fresh database alone.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

pub mod binary;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgPool};
use telemetry_server::config::{Cli, Config};
use telemetry_server::server::{self, RunningServer, Service};

/// The maintenance database tests create their own databases from.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@localhost:5432/postgres".to_owned())
}

pub fn database_url(name: &str) -> String {
    database_url_on(&admin_url(), name)
}

/// The URL of database `name` on the server of the maintenance URL `admin`, with its parameters.
fn database_url_on(admin: &str, name: &str) -> String {
    let (path, query) = admin
        .split_once('?')
        .map_or((admin, None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// The Citus coordinator's maintenance database (CITUS_DATABASE_URL, which scripts/test sets after
/// starting a cluster). Without it the Citus tests print why and pass without running, so that the
/// suite also runs on machines without Citus.
pub fn citus_admin_url(test: &str) -> Option<String> {
    let url = std::env::var("CITUS_DATABASE_URL").ok();
    if url.is_none() {
        eprintln!(
            "SKIPPED {test}: CITUS_DATABASE_URL is not set (scripts/test starts a Citus cluster from ../shared/citus and sets it)"
        );
    }
    url
}

/// Test databases are named `tst_<unix seconds>_<random>`; ones left over from runs more than an
/// hour old (a test that panicked never drops its own) are removed when the next test starts.
async fn fresh_database_name() -> String {
    fresh_database_name_on(&admin_url()).await
}

async fn fresh_database_name_on(admin_url: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let admin = admin_pool(admin_url).await;
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tst\\_%'")
            .fetch_all(&admin)
            .await
            .unwrap();
    for name in stale {
        let created = name
            .split('_')
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if created + 3600 < now {
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .ok();
        }
    }
    admin.close().await;
    format!("tst_{now}_{}", uuid::Uuid::new_v4().simple())
}

/// A database name and URL for a test that runs the service binary itself (the service creates it).
pub async fn fresh_database() -> (String, String) {
    let name = fresh_database_name().await;
    let url = database_url(&name);
    (name, url)
}

/// A connection to a maintenance database. On a Citus coordinator, CREATE and DROP DATABASE then
/// reach the workers too (Citus 13 propagates them only when asked to); a plain PostgreSQL takes
/// the setting as an unknown placeholder and ignores it.
async fn admin_pool(admin_url: &str) -> PgPool {
    let options = PgConnectOptions::from_str(admin_url)
        .expect("a valid maintenance URL")
        .options([("citus.enable_create_database_propagation", "on")]);
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("the test PostgreSQL is reachable (see README: Testing)")
}

/// Runs one statement on the maintenance database.
async fn on_admin(statement: String) {
    on_admin_of(&admin_url(), statement).await;
}

async fn on_admin_of(admin_url: &str, statement: String) {
    let admin = admin_pool(admin_url).await;
    sqlx::query(AssertSqlSafe(statement))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

/// Drops a test database.
pub async fn drop_database(name: &str) {
    on_admin(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
}

/// Drops a test database on the server of `admin_url`. On Citus a worker may still hold a session in
/// it for a moment (the coordinator's cached connections, the maintenance daemon), which FORCE on the
/// coordinator does not end there: the drop is tried again for a few seconds, and a database still
/// left is removed by a later test run (see [`fresh_database_name`]).
async fn drop_database_on(admin_url: &str, name: &str) {
    let admin = admin_pool(admin_url).await;
    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    for attempt in 1..=20 {
        match sqlx::query(AssertSqlSafe(drop.clone()))
            .execute(&admin)
            .await
        {
            Ok(_) => break,
            Err(error) if attempt == 20 => eprintln!("test database {name} left behind: {error}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    admin.close().await;
}

/// Creates database `name` on the Citus cluster of `admin_url` as docs/deployment.md tells an
/// operator to: the database on the coordinator (and through it on every worker), the citus
/// extension in it on every node, and the workers registered with it, for Citus keeps its
/// metadata per database.
async fn create_citus_database(admin_url: &str, name: &str) {
    // One test process at a time: registering nodes in two new databases at once fails on the
    // workers with "tuple concurrently updated". Held until the connection closes at the end.
    let admin = admin_pool(admin_url).await;
    sqlx::query("SELECT pg_advisory_lock(7318)")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await
        .unwrap();
    let nodes: Vec<(String, i32, i32)> =
        sqlx::query_as("SELECT nodename, nodeport, groupid FROM pg_dist_node ORDER BY groupid")
            .fetch_all(&admin)
            .await
            .expect("CITUS_DATABASE_URL is a Citus coordinator");
    let coordinator = PgConnectOptions::from_str(admin_url).unwrap();
    for (host, port, _) in nodes.iter().filter(|(_, _, group)| *group != 0) {
        let worker = coordinator
            .clone()
            .host(host)
            .port(u16::try_from(*port).unwrap())
            .database(name);
        let mut connection = sqlx::PgConnection::connect_with(&worker).await.unwrap();
        sqlx::query("CREATE EXTENSION citus")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.ok();
    }
    let database = PgPool::connect(&database_url_on(admin_url, name))
        .await
        .unwrap();
    sqlx::query("CREATE EXTENSION citus")
        .execute(&database)
        .await
        .unwrap();
    for (host, port, group) in &nodes {
        let register = if *group == 0 {
            "SELECT citus_set_coordinator_host($1, $2)"
        } else {
            "SELECT citus_add_node($1, $2)"
        };
        sqlx::query(register)
            .bind(host)
            .bind(port)
            .execute(&database)
            .await
            .unwrap();
    }
    database.close().await;
    admin.close().await;
}

/// A fresh database with migrations applied, for tests of the SQL, the store and the migrations
/// themselves, which need no service (no GeoIP database, listener or background jobs).
pub struct TestDatabase {
    pub name: String,
    pub pool: PgPool,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Every migration applied.
    pub async fn migrated() -> Self {
        let database = Self::created().await;
        telemetry_server::store::MIGRATOR
            .run(&database.pool)
            .await
            .unwrap();
        database
    }

    /// The migrations up to and including `version`, to show what the later ones make of data
    /// stored before them.
    pub async fn migrated_to(version: i64) -> Self {
        let database = Self::created().await;
        telemetry_server::store::MIGRATOR
            .run_to(version, &database.pool)
            .await
            .unwrap();
        database
    }

    /// A fresh database on the Citus cluster (see [`citus_admin_url`]), migrated and distributed as
    /// `telemetry-server migrate --distribute` does; `None` without a cluster.
    pub async fn citus_distributed(test: &str) -> Option<Self> {
        let admin_url = citus_admin_url(test)?;
        init_test_logging();
        let name = fresh_database_name_on(&admin_url).await;
        create_citus_database(&admin_url, &name).await;
        let url = database_url_on(&admin_url, &name);
        let pool = PgPool::connect(&url).await.unwrap();
        telemetry_server::store::MIGRATOR.run(&pool).await.unwrap();
        telemetry_server::store::distribute(&pool).await.unwrap();
        Some(Self {
            name,
            pool,
            url,
            admin_url,
        })
    }

    async fn created() -> Self {
        init_test_logging();
        let name = fresh_database_name().await;
        on_admin(format!("CREATE DATABASE \"{name}\"")).await;
        let url = database_url(&name);
        let pool = PgPool::connect(&url).await.unwrap();
        Self {
            name,
            pool,
            url,
            admin_url: admin_url(),
        }
    }

    pub async fn cleanup(self) {
        self.pool.close().await;
        drop_database_on(&self.admin_url, &self.name).await;
    }
}

/// Every row of `from` (a relation, or a parenthesised query) as text, one row per line in one
/// canonical order: for comparing what two databases, or one database at two moments, hold.
pub async fn rows_as_text(pool: &PgPool, from: &str) -> String {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {from} t"
    )))
    .fetch_one(pool)
    .await
    .unwrap_or_else(|error| panic!("{from}: {error}"))
}

/// Creates the partitions of `reports` that its rows need to move `days` further into the past:
/// tests that age reports by hand do what only retention-aged data otherwise has.
pub async fn partitions_for_aging(pool: &PgPool, days: i32) {
    sqlx::query(
        "SELECT create_report_partitions(
             least(min(received_at), now()) - make_interval(days => $1), now())
         FROM reports",
    )
    .bind(days)
    .execute(pool)
    .await
    .expect("partitions created");
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn test_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Sends the in-process service's log lines to the test's captured output, so that a failing test
/// shows what the service said (nextest and `cargo test` print captured output only on failure).
/// `TEST_LOG` is the filter (`EnvFilter` syntax, default `info`; `TEST_LOG=off` silences it).
pub fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "info".to_owned());
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init()
            .ok();
    });
}

/// A configuration for a test: a fresh database, a random loopback port, everything else default.
pub fn test_config(database_url: &str) -> Config {
    Cli::try_parse_from([
        "telemetry-server",
        "--database-url",
        database_url,
        "--listen-addr",
        "127.0.0.1:0",
        "--shutdown-grace-secs",
        "5",
    ])
    .expect("test flags parse")
    .config
}

pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    pub database_name: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
    admin_url: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with the test configuration, adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        init_test_logging();
        let database_name = fresh_database_name().await;
        let database_url = database_url(&database_name);
        let mut config = test_config(&database_url);
        configure(&mut config);
        Self::start(database_name, database_url, admin_url(), &config).await
    }

    /// The service on a fresh database of the Citus cluster, distributed before it starts (see
    /// [`TestDatabase::citus_distributed`]); `None` without a cluster.
    pub async fn spawn_citus(test: &str, configure: impl FnOnce(&mut Config)) -> Option<Self> {
        let database = TestDatabase::citus_distributed(test).await?;
        database.pool.close().await;
        let mut config = test_config(&database.url);
        configure(&mut config);
        Some(Self::start(database.name, database.url, database.admin_url, &config).await)
    }

    async fn start(
        database_name: String,
        database_url: String,
        admin_url: String,
        config: &Config,
    ) -> Self {
        let server = server::start(config).await.expect("service starts");
        let pool = server.pool.clone();
        Self {
            base_url: format!("http://{}", server.local_addr),
            database_url,
            database_name,
            pool,
            client: reqwest::Client::new(),
            server: Some(server),
            admin_url,
        }
    }

    /// The running service, e.g. to reach its GeoIP database or reload requests.
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("the service is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// POSTs a body to the GenericReport endpoint.
    pub async fn post_report(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/telemetry/GenericReport"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request reaches the service")
    }

    /// POSTs a body to the GenericReport endpoint as if relayed by a proxy for `client_address`;
    /// the service must trust loopback proxies (`trusted_proxies`).
    pub async fn post_report_from(
        &self,
        body: impl Into<reqwest::Body>,
        client_address: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/v1/telemetry/GenericReport"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", client_address)
            .body(body)
            .send()
            .await
            .expect("request reaches the service")
    }

    /// What `/metrics` says now, as Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request reaches the service")
            .text()
            .await
            .unwrap()
    }

    /// A database outage, as the service sees one: the test database refuses new connections and
    /// every session open to it (the service's pools', this app's) is killed. [`Self::end_outage`]
    /// lets connections in again.
    pub async fn start_outage(&self) {
        self.allow_connections(false).await;
        let admin = admin_pool(&self.admin_url).await;
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&self.database_name)
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }

    pub async fn end_outage(&self) {
        self.allow_connections(true).await;
    }

    async fn allow_connections(&self, allow: bool) {
        let statement = format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {allow}",
            self.database_name
        );
        on_admin_of(&self.admin_url, statement).await;
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A stored report's metric pairs as the exact UTF-8 bytes of key and value the client sent,
    /// decoded from `reports.metrics` by `analytics.metric_bytes()`, in order.
    pub async fn stored_metric_bytes(&self, report_id: uuid::Uuid) -> Vec<(Vec<u8>, Vec<u8>)> {
        sqlx::query_as(
            "SELECT analytics.metric_bytes(m, 'key'), analytics.metric_bytes(m, 'value')
             FROM reports, jsonb_array_elements(metrics) WITH ORDINALITY AS p(m, n)
             WHERE report_id = $1 ORDER BY n",
        )
        .bind(report_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// A canonical text rendering of every stored row, to prove that a refused request changed nothing.
    pub async fn snapshot(&self) -> String {
        let mut out = String::new();
        for table in ["instances", "reports", "upgrades"] {
            out.push_str(&rows_as_text(&self.pool, table).await);
            out.push_str("\n--\n");
        }
        out
    }

    /// Stops the service gracefully (in-flight requests and batches finish first).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    /// Stops the service and drops its database.
    pub async fn cleanup(mut self) {
        self.stop().await;
        self.pool.close().await;
        drop_database_on(&self.admin_url, &self.database_name).await;
    }
}

/// The body `{"code":3,...}` clients decode, checked for shape; returns the message.
pub async fn assert_grpc_error(response: reqwest::Response, status: u16, code: i64) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    assert_eq!(body["details"], serde_json::json!([]), "details in {body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(!message.is_empty());
    message.to_owned()
}

/// The service assembled but not listening ([`Service::prepare`]), for tests where a socket is not
/// the point: requests go straight to its router, and come back as reqwest responses so that
/// assertions read the same as over HTTP. No background job runs; a test refreshes what it needs.
pub struct InProcessApp {
    pub pool: PgPool,
    pub stats: std::sync::Arc<telemetry_server::stats::StatsCache>,
    service: Service,
    database_name: String,
}

impl InProcessApp {
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        init_test_logging();
        let database_name = fresh_database_name().await;
        let mut config = test_config(&database_url(&database_name));
        configure(&mut config);
        let service = Service::prepare(&config).await.expect("service prepared");
        Self {
            pool: service.state.pool.clone(),
            stats: service.state.stats.clone(),
            service,
            database_name,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// A GET with the given request headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = axum::http::Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(axum::body::Body::empty()).unwrap();
        // What the listener would attach: the peer's address.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        let response = tower::ServiceExt::oneshot(self.service.router.clone(), request)
            .await
            .expect("the router answers");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("the body is read");
        reqwest::Response::from(axum::http::Response::from_parts(parts, body.to_vec()))
    }

    /// Drops the service (its writer stops) and its database.
    pub async fn cleanup(self) {
        drop(self.service);
        self.pool.close().await;
        drop_database(&self.database_name).await;
    }
}

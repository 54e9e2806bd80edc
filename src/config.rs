//! Every setting, from a flag or the environment variable of the same name, with defaults that work
//! on a developer machine with a local PostgreSQL (`telemetry-server --help` prints them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::client_ip::{ForwardedHeader, TrustedProxies};
use crate::connections::ConnectionLimits;
use crate::rate_limit::RateLimitSettings;
use crate::retention::RetentionSettings;
use crate::store::DatabaseSettings;
use crate::synthetic;
use crate::writer::WriterSettings;

#[derive(Parser, Debug)]
#[command(
    name = "telemetry-server",
    version,
    about = "Receives Percona product telemetry (GenericReport) and stores it in PostgreSQL."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate(MigrateArgs),
    /// Write synthetic telemetry history into the database (for demos, tests and benchmarks), then
    /// refresh the analytics rollups and exit.
    Generate(GenerateArgs),
    /// Run the retention job once (refresh the analytics rollups, then delete raw reports older than
    /// RETENTION_DAYS) and exit; for deployments that schedule it themselves.
    Retention,
}

/// Options of the `migrate` subcommand.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct MigrateArgs {
    /// After the migrations, create the citus extension and distribute the tables over the Citus
    /// cluster this database is the coordinator of (docs/deployment.md, Citus); tables already
    /// distributed stay as they are. Fails on a PostgreSQL server without Citus.
    #[arg(long)]
    pub distribute: bool,
}

/// Options of the `generate` subcommand; `src/synthetic/mod.rs` describes the model behind them.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct GenerateArgs {
    /// Installations to simulate, across all product families.
    #[arg(long, default_value_t = 1000)]
    pub instances: u32,

    /// Days of history, ending with --end-date.
    #[arg(long, default_value_t = 90)]
    pub days: u32,

    /// Last day to generate (UTC, YYYY-MM-DD). Default: yesterday.
    #[arg(long)]
    pub end_date: Option<NaiveDate>,

    /// Random seed: the same seed, instances and days give the same reports, so a re-run adds nothing.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Reports per storage batch.
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,

    /// Batches written at the same time.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
}

/// The generator's settings from the flags. The conversion lives here, not in `synthetic`, so that
/// the generator (a library for tests and benchmarks too) does not depend on the command line. An
/// unset end date is yesterday; zero days, batch size or concurrency become one (a batch size of
/// zero cannot be chunked, and a concurrency of zero would write nothing).
impl From<&GenerateArgs> for synthetic::Settings {
    fn from(args: &GenerateArgs) -> Self {
        Self {
            instances: args.instances,
            days: args.days.max(1),
            end_date: args
                .end_date
                .unwrap_or_else(|| Utc::now().date_naive() - Days::new(1)),
            seed: args.seed,
            batch_size: args.batch_size.max(1),
            concurrency: args.concurrency.max(1),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@localhost:5432/telemetry",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Serve `/metrics` on this address (plain HTTP) instead of on LISTEN_ADDR, so that the public
    /// listener does not expose it. Unset: `/metrics` is served on LISTEN_ADDR.
    #[arg(long, env = "METRICS_LISTEN_ADDR")]
    pub metrics_listen_addr: Option<SocketAddr>,

    /// MaxMind-format country database (GeoIP2/GeoLite2 Country or City, or geo-whois-asn-country).
    /// Without it, the bundled geo-whois-asn-country database is used.
    #[arg(long, env = "GEOIP_DATABASE")]
    pub geoip_database: Option<PathBuf>,

    /// Seconds between checks of the GeoIP database file for a new version (a changed inode, size
    /// or modification time); 0 turns the check off. SIGHUP always reloads it.
    #[arg(long, env = "GEOIP_RELOAD_INTERVAL_SECS", default_value_t = 60)]
    pub geoip_reload_interval_secs: u64,

    /// Comma-separated CIDR ranges of reverse proxies whose forwarding header is trusted. Empty:
    /// the TCP peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', num_args = 0..)]
    pub trusted_proxies: Vec<IpNet>,

    /// The header the trusted proxies append the client address to; the other one is ignored, as a
    /// client could have written it.
    #[arg(long, env = "FORWARDED_HEADER", value_enum, default_value_t = ForwardedHeader::XForwardedFor)]
    pub forwarded_header: ForwardedHeader,

    /// PEM certificate chain; with --tls-key, the service speaks HTTPS itself.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `telemetry_server=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub rust_log: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,

    /// Largest accepted request body, in bytes, once gzip is inflated (and largest gRPC message): the
    /// only limit on what a report request may carry, as Percona's front end caps messages at 10 MiB
    /// and has no other. Larger bodies get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Request-body bytes (after gzip decompression) all requests together may hold at once; a request
    /// that finds them spent gets 503 with Retry-After. Three quarters of it at most go to the parts of
    /// bodies beyond their first 256 KiB, so large bodies cannot crowd out ordinary reports.
    #[arg(long, env = "MAX_BODY_BYTES_IN_FLIGHT", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes_in_flight: usize,

    /// Most database connections the service opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,

    /// Seconds a request waits for a database connection before it is answered 503.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value_t = 3)]
    pub database_acquire_timeout_secs: u64,

    /// Seconds start-up keeps retrying an unreachable database before giving up.
    #[arg(long, env = "DATABASE_STARTUP_TIMEOUT_SECS", default_value_t = 60)]
    pub database_startup_timeout_secs: u64,

    /// A write batch closes once it holds this many reports.
    #[arg(long, env = "BATCH_MAX_REPORTS", default_value_t = WriterSettings::default().max_batch_reports)]
    pub batch_max_reports: usize,

    /// ... or once its first report has waited this many milliseconds.
    #[arg(long, env = "BATCH_MAX_DELAY_MS", default_value_t = WriterSettings::default().max_batch_delay.as_millis() as u64)]
    pub batch_max_delay_ms: u64,

    /// Reports that may wait for a commit; beyond this, requests get 503 with Retry-After.
    #[arg(long, env = "QUEUE_CAPACITY", default_value_t = WriterSettings::default().queue_capacity)]
    pub queue_capacity: usize,

    /// Batches committed concurrently.
    #[arg(long, env = "WRITERS", default_value_t = WriterSettings::default().writers)]
    pub writers: usize,

    /// Seconds a request may take from its first byte to its answer before it gets 408.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Seconds a client may take to send its request headers before the connection is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Connections open at once; further ones are closed as soon as they are accepted. Keep the
    /// process's file descriptor limit above this plus the database connections.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds a connection (HTTP/1.1 or HTTP/2) may stay open with no request in flight.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,

    /// Requests one HTTP/2 connection may have in flight at once.
    #[arg(long, env = "HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,

    /// Reports requests allowed per client per minute on average; 0 turns the rate limit off.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 0)]
    pub rate_limit_per_minute: u32,

    /// Requests a client may send in a burst before the per-minute rate applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 20)]
    pub rate_limit_burst: u32,

    /// IPv4 clients sharing this many leading address bits share one rate-limit bucket.
    #[arg(long, env = "RATE_LIMIT_IPV4_PREFIX", default_value_t = 32, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub rate_limit_ipv4_prefix: u8,

    /// IPv6 clients sharing this many leading address bits share one rate-limit bucket; 64 because
    /// each end site is given at least a /64 and can use any address in it.
    #[arg(long, env = "RATE_LIMIT_IPV6_PREFIX", default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub rate_limit_ipv6_prefix: u8,

    /// Path that accepts PMM 2's "v1" plain-text reports (originally posted to https://v.percona.com/;
    /// route that host here, or point PMM 2 at it with PERCONA_VERSION_CHECK_URL).
    #[arg(long, env = "LEGACY_V1_PATH", default_value = "/v1/pmm-version-check", value_parser = route_path)]
    pub legacy_v1_path: String,

    /// Seconds given to in-flight requests and batches after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Days raw reports are kept after they arrive; the retention job then deletes them (their daily
    /// analytics rollups stay). 0 keeps raw reports forever.
    #[arg(long, env = "RETENTION_DAYS", default_value_t = 400)]
    pub retention_days: u32,

    /// Seconds between runs of the retention job, which refreshes the analytics rollups and then
    /// deletes expired raw reports (first run at start-up). 0 disables it, and the rollups go stale.
    #[arg(long, env = "RETENTION_INTERVAL_SECS", default_value_t = 3600)]
    pub retention_interval_secs: u64,

    /// Smallest number of instances a count on the public statistics page (/stats) may describe;
    /// smaller groups are folded into "other" or not shown.
    #[arg(long, env = "STATS_MIN_BUCKET", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..))]
    pub stats_min_bucket: i64,

    /// Seconds between refreshes of the statistics page from the analytics rollups; page views in
    /// between are served from memory. 0 computes it once at start-up only.
    #[arg(long, env = "STATS_REFRESH_SECS", default_value_t = 600)]
    pub stats_refresh_secs: u64,
}

/// A literal URL path: the router would read `{...}` and `*` as parameters.
fn route_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("must start with /".into());
    }
    if path.contains(['{', '}', '*', '?', '#']) || path.chars().any(char::is_whitespace) {
        return Err("must be a plain path, without {, }, *, ?, # or spaces".into());
    }
    Ok(path.to_owned())
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

impl Config {
    pub fn database(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: self.database_max_connections,
            acquire_timeout: Duration::from_secs(self.database_acquire_timeout_secs),
        }
    }

    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.clone(), self.forwarded_header)
    }

    /// None when the periodic check of the GeoIP file is off.
    pub fn geoip_reload_interval(&self) -> Option<Duration> {
        (self.geoip_reload_interval_secs > 0)
            .then(|| Duration::from_secs(self.geoip_reload_interval_secs))
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
        }
    }

    pub fn rate_limit(&self) -> RateLimitSettings {
        RateLimitSettings {
            per_minute: self.rate_limit_per_minute,
            burst: self.rate_limit_burst,
            ipv4_prefix: self.rate_limit_ipv4_prefix,
            ipv6_prefix: self.rate_limit_ipv6_prefix,
        }
    }

    pub fn retention(&self) -> RetentionSettings {
        RetentionSettings {
            keep_reports: (self.retention_days > 0)
                .then(|| chrono::Duration::days(i64::from(self.retention_days))),
            interval: (self.retention_interval_secs > 0)
                .then(|| Duration::from_secs(self.retention_interval_secs)),
        }
    }

    /// None when the statistics page is computed once, at start-up.
    pub fn stats_refresh_interval(&self) -> Option<Duration> {
        (self.stats_refresh_secs > 0).then(|| Duration::from_secs(self.stats_refresh_secs))
    }

    pub fn writer(&self) -> WriterSettings {
        WriterSettings {
            max_batch_reports: self.batch_max_reports.max(1),
            max_batch_delay: Duration::from_millis(self.batch_max_delay_ms),
            queue_capacity: self.queue_capacity.max(1),
            writers: self.writers.max(1),
        }
    }
}

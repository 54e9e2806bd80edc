//! Start-up and shutdown: wait for the database, migrate, open the GeoIP database, start the writer,
//! serve, and on shutdown finish in-flight requests and batches before returning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use sqlx::PgPool;
use tokio::task::{JoinHandle, JoinSet};

use crate::body_budget::BodyBudget;
use crate::config::Config;
use crate::connections::LimitConnections;
use crate::geoip::{self, GeoIp, GeoIpError};
use crate::http::{self, AppState, RouterOptions};
use crate::intake::Intake;
use crate::observability;
use crate::rate_limit::ClientRateLimiter;
use crate::reload::{ReloadRequests, ReloadSubscription};
use crate::retention;
use crate::stats::{StatsCache, StatsError};
use crate::store::{self, DatabaseSettings, StoreError};
use crate::writer::Writer;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    #[error("the statistics page could not be prepared: {0}")]
    Stats(#[from] StatsError),
    #[error(
        "no GeoIP database configured and the bundled one was not found (looked in {0}); set GEOIP_DATABASE"
    )]
    NoBundledGeoIp(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load TLS certificate {cert} / key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Retention(#[from] retention::RetentionError),
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot install the SIGHUP handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error("opening the GeoIP database failed: {0}")]
    GeoIpTask(#[source] std::io::Error),
}

/// Opens the configured database, or else the bundled one. Verification walks the whole file, so
/// it runs on a blocking thread.
async fn open_geoip(configured: Option<&Path>) -> Result<GeoIp, StartupError> {
    let path = match configured {
        Some(path) => path.to_owned(),
        None => {
            let candidates = geoip::bundled_geoip_candidates();
            candidates
                .iter()
                .find(|path| path.is_file())
                .cloned()
                .ok_or_else(|| {
                    let looked: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    StartupError::NoBundledGeoIp(looked.join(", "))
                })?
        }
    };
    let opened = tokio::task::spawn_blocking(move || GeoIp::open(&path))
        .await
        .map_err(|join_error| StartupError::GeoIpTask(std::io::Error::other(join_error)))?;
    Ok(opened?)
}

/// Connects (creating the database if needed), retrying with back-off until `startup_timeout` runs out,
/// so that the service and PostgreSQL can start in any order.
pub async fn connect_with_retry(
    settings: &DatabaseSettings,
    startup_timeout: Duration,
) -> Result<PgPool, StoreError> {
    let deadline = tokio::time::Instant::now() + startup_timeout;
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match store::connect(settings).await {
            Ok(pool) => return Ok(pool),
            Err(error)
                if error.is_transient() && tokio::time::Instant::now() + delay < deadline =>
            {
                tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, %error, "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Creates the database if needed and applies pending migrations (the `migrate` subcommand).
/// With `distribute`, the tables are then spread over the Citus cluster (`store::distribute`).
pub async fn migrate_only(config: &Config, distribute: bool) -> Result<(), StartupError> {
    let pool = connect_and_migrate(config).await?;
    if distribute {
        let done = store::distribute(&pool).await;
        pool.close().await;
        println!("{}", done?);
    } else {
        pool.close().await;
    }
    Ok(())
}

/// Connects (waiting for the database as start-up does) and applies pending migrations.
pub async fn connect_and_migrate(config: &Config) -> Result<PgPool, StartupError> {
    let pool = connect_with_retry(
        &config.database(),
        Duration::from_secs(config.database_startup_timeout_secs),
    )
    .await?;
    store::migrate(&pool).await?;
    Ok(pool)
}

/// A service that is accepting requests.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// Where `/metrics` is served when METRICS_LISTEN_ADDR moved it off the main listener.
    pub metrics_addr: Option<SocketAddr>,
    pub pool: PgPool,
    pub geoip: Arc<GeoIp>,
    /// SIGHUP sends these; so can anything else that wants files re-read now.
    pub reload: ReloadRequests,
    /// The statistics page's cache, to refresh it without waiting for the schedule.
    pub stats: Arc<StatsCache>,
    handle: axum_server::Handle<SocketAddr>,
    grace: Duration,
    task: JoinHandle<Result<(), StartupError>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests and queued batches finish (within the grace period),
    /// and returns when done.
    pub async fn shutdown(self) -> Result<(), StartupError> {
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        self.handle.graceful_shutdown(Some(self.grace));
        match self.task.await {
            Ok(result) => result,
            Err(join_error) => Err(StartupError::Serve(std::io::Error::other(join_error))),
        }
    }
}

/// Brings the whole service up and returns once it is listening.
pub async fn start(config: &Config) -> Result<RunningServer, StartupError> {
    Service::prepare(config).await?.serve()
}

/// The service assembled but not listening yet: GeoIP and TLS loaded, the database migrated, the
/// writer running, the router built. [`Service::serve`] binds the listeners and starts the
/// background jobs; until then the router can be driven in-process.
pub struct Service {
    config: Config,
    pub state: Arc<AppState>,
    pub router: axum::Router,
    tls: Option<RustlsConfig>,
    writer_tasks: JoinSet<()>,
}

impl Service {
    pub async fn prepare(config: &Config) -> Result<Self, StartupError> {
        let metrics = observability::install();
        let geoip = Arc::new(open_geoip(config.geoip_database.as_deref()).await?);
        let current = geoip.current();
        tracing::info!(
            path = %current.path().display(),
            database_type = current.database_type(),
            layout = ?current.layout(),
            "GeoIP database loaded"
        );
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(load_tls(cert, key).await?),
            _ => None,
        };

        let pool = connect_with_retry(
            &config.database(),
            Duration::from_secs(config.database_startup_timeout_secs),
        )
        .await?;
        store::migrate(&pool).await?;
        let topology = store::Topology::of(&pool).await?;
        tracing::info!(?topology, "database layout");

        let (writer, writer_tasks) = Writer::start(pool.clone(), topology, config.writer());
        let stats = Arc::new(StatsCache::new(pool.clone(), config.stats_min_bucket)?);
        let state = Arc::new(AppState {
            pool,
            intake: Intake {
                writer,
                geoip,
                trusted_proxies: config.trusted_proxies(),
            },
            max_body_bytes: config.max_body_bytes,
            metrics,
            rate_limiter: ClientRateLimiter::new(config.rate_limit()),
            stats,
            body_budget: BodyBudget::new(config.max_body_bytes_in_flight),
        });
        let router = http::router(
            state.clone(),
            RouterOptions {
                legacy_v1_path: config.legacy_v1_path.clone(),
                request_timeout: Duration::from_secs(config.request_timeout_secs),
                tls: tls.is_some(),
                separate_metrics: config.metrics_listen_addr.is_some(),
            },
        );
        Ok(Self {
            config: config.clone(),
            state,
            router,
            tls,
            writer_tasks,
        })
    }

    /// Binds the listeners, starts the background jobs (SIGHUP reloads, GeoIP and certificate
    /// watching, retention, the statistics page, the rate limiter's housekeeping) and serves.
    pub fn serve(self) -> Result<RunningServer, StartupError> {
        let Self {
            config,
            state,
            router,
            tls,
            mut writer_tasks,
        } = self;
        let (listener, local_addr) = bind(config.listen_addr)?;
        let metrics_listener = config.metrics_listen_addr.map(bind).transpose()?;
        let make_service = LimitConnections::new(
            router.into_make_service_with_connect_info::<SocketAddr>(),
            config.connection_limits(),
        );
        let max_streams = config.http2_max_concurrent_streams;
        let handle = axum_server::Handle::new();
        let header_timeout = Duration::from_secs(config.header_read_timeout_secs);
        let reload = ReloadRequests::default();
        let mut background = JoinSet::new();
        background.spawn(reload.forward_sighup().map_err(StartupError::Signal)?);
        background.spawn(geoip::watch_file(
            state.intake.geoip.clone(),
            reload.subscribe(),
            config.geoip_reload_interval(),
        ));
        let metrics = state.metrics.clone();
        background.spawn(every(observability::UPKEEP_INTERVAL, move || {
            metrics.run_upkeep();
        }));
        if let Some(limiter) = state.rate_limiter.clone() {
            background.spawn(every(Duration::from_secs(60), move || {
                limiter.forget_idle_clients();
            }));
        }
        if let (Some(tls), Some(cert), Some(key)) = (&tls, &config.tls_cert, &config.tls_key) {
            background.spawn(reload_tls(
                tls.clone(),
                cert.clone(),
                key.clone(),
                reload.subscribe(),
            ));
        }
        // Stopped mid-run at shutdown, the retention job rolls back and the next start redoes it.
        let retention = config.retention();
        if let Some(interval) = retention.interval {
            background.spawn(retention::run_every(
                state.pool.clone(),
                retention.keep_reports,
                interval,
            ));
        }

        let metrics_addr = metrics_listener.as_ref().map(|(_, addr)| *addr);
        if let Some((listener, addr)) = metrics_listener {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|source| StartupError::Listen { addr, source })?;
            let metrics = http::metrics_router(state.clone());
            background.spawn(async move {
                if let Err(error) = axum::serve(listener, metrics).await {
                    tracing::error!(%error, "metrics listener failed");
                }
            });
            tracing::info!(%addr, "metrics listening");
        }

        let refresh_stats = state.stats.clone();
        match config.stats_refresh_interval() {
            Some(interval) => background.spawn(refresh_stats.refresh_every(interval)),
            None => background.spawn(async move {
                if let Err(error) = refresh_stats.refresh().await {
                    tracing::warn!(%error, "statistics not computed");
                }
            }),
        };

        let serve_handle = handle.clone();
        let task = tokio::spawn(async move {
            let served = match tls {
                Some(tls) => {
                    let mut server = axum_server::from_tcp_rustls(listener, tls)
                        .map_err(StartupError::Serve)?
                        .handle(serve_handle);
                    limit_slow_clients(server.http_builder(), header_timeout, max_streams);
                    server
                        .first_request_timeout(header_timeout)
                        .serve(make_service)
                        .await
                }
                None => {
                    let mut server = axum_server::from_tcp(listener)
                        .map_err(StartupError::Serve)?
                        .handle(serve_handle);
                    limit_slow_clients(server.http_builder(), header_timeout, max_streams);
                    server
                        .first_request_timeout(header_timeout)
                        .serve(make_service)
                        .await
                }
            };
            background.shutdown().await;
            // Every connection, and with it every Writer handle, is gone now: the writer tasks
            // commit what is queued and stop.
            while writer_tasks.join_next().await.is_some() {}
            tracing::info!("all queued reports committed");
            served.map_err(StartupError::Serve)
        });
        tracing::info!(addr = %local_addr, "listening");
        Ok(RunningServer {
            local_addr,
            metrics_addr,
            pool: state.pool.clone(),
            geoip: state.intake.geoip.clone(),
            reload,
            stats: state.stats.clone(),
            handle,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            task,
        })
    }
}

/// Runs `task` once per `period`, forever, for the service's housekeeping; a late tick is not made
/// up with a burst.
async fn every(period: Duration, mut task: impl FnMut()) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        task();
    }
}

/// Binds a listener for the server to take over (non-blocking) and returns it with its real address,
/// which for port 0 is known only now.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), StartupError> {
    let listen_error = |source| StartupError::Listen { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let local_addr = listener.local_addr().map_err(listen_error)?;
    Ok((listener, local_addr))
}

/// Slowloris defence: a client that trickles its headers loses the connection after `header_timeout`;
/// one HTTP/2 connection holds at most `max_streams` requests (each may buffer a body).
fn limit_slow_clients(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
    max_streams: u32,
) {
    builder.http1().header_read_timeout(Some(header_timeout));
    builder
        .http2()
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(max_streams);
}

async fn load_tls(cert: &Path, key: &Path) -> Result<RustlsConfig, StartupError> {
    // rustls needs one process-wide crypto provider; choose it explicitly so that a dependency enabling
    // a second one cannot leave the choice ambiguous. An error means one is installed already.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|source| StartupError::Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })
}

/// Re-reads the certificate and key on every reload request (SIGHUP, after a renewal); a bad pair
/// keeps the old one in use.
async fn reload_tls(
    tls: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    mut requests: ReloadSubscription,
) {
    loop {
        requests.next().await;
        match tls.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!(cert = %cert.display(), "TLS certificate reloaded"),
            Err(error) => tracing::error!(cert = %cert.display(), key = %key.display(), %error,
                "TLS certificate not reloaded, keeping the current one"),
        }
    }
}

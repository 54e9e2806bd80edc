//! Start-up and shutdown: wait for the database, migrate, open the GeoIP database, start the writer,
//! serve, and on shutdown finish in-flight requests and batches before returning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{self, AppState};
use crate::client_ip::TrustedProxies;
use crate::config::Config;
use crate::geoip::{GeoIp, GeoIpError};
use crate::observability;
use crate::store::{self, DatabaseSettings, StoreError};
use crate::writer::Writer;

/// File name of the bundled CC BY 4.0 database (see `data/README.md`).
pub const BUNDLED_GEOIP_FILE: &str = "geo-whois-asn-country.mmdb";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
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
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Where the bundled database is looked for when `GEOIP_DATABASE` is not set: next to the sources
/// (a clone or `cargo run`), then where the container image and packages install it.
pub fn bundled_geoip_candidates() -> Vec<PathBuf> {
    vec![
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(BUNDLED_GEOIP_FILE),
        Path::new("data").join(BUNDLED_GEOIP_FILE),
        Path::new("/usr/share/telemetry-server").join(BUNDLED_GEOIP_FILE),
    ]
}

fn open_geoip(configured: Option<&Path>) -> Result<GeoIp, StartupError> {
    if let Some(path) = configured {
        return Ok(GeoIp::open(path)?);
    }
    let candidates = bundled_geoip_candidates();
    let bundled = candidates
        .iter()
        .find(|path| path.is_file())
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            StartupError::NoBundledGeoIp(looked.join(", "))
        })?;
    Ok(GeoIp::open(bundled)?)
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
pub async fn migrate_only(config: &Config) -> Result<(), StartupError> {
    let pool = connect_with_retry(
        &config.database(),
        Duration::from_secs(config.database_startup_timeout_secs),
    )
    .await?;
    store::migrate(&pool).await?;
    pool.close().await;
    Ok(())
}

/// A service that is accepting requests.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    pub pool: PgPool,
    pub geoip: Arc<GeoIp>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StartupError>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests and queued batches finish, and returns when done.
    pub async fn shutdown(self) -> Result<(), StartupError> {
        self.stop.send(()).ok();
        match self.task.await {
            Ok(result) => result,
            Err(join_error) => Err(StartupError::Serve(std::io::Error::other(join_error))),
        }
    }
}

/// Brings the whole service up and returns once it is listening.
pub async fn start(config: &Config) -> Result<RunningServer, StartupError> {
    let metrics = observability::install();
    let geoip = Arc::new(open_geoip(config.geoip_database.as_deref())?);
    let current = geoip.current();
    tracing::info!(path = %current.path().display(), database_type = current.database_type(), "GeoIP database loaded");

    let pool = connect_with_retry(
        &config.database(),
        Duration::from_secs(config.database_startup_timeout_secs),
    )
    .await?;
    store::migrate(&pool).await?;

    let listener = TcpListener::bind(config.listen_addr)
        .await
        .map_err(|source| StartupError::Listen {
            addr: config.listen_addr,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartupError::Listen {
            addr: config.listen_addr,
            source,
        })?;

    let (writer, mut writer_tasks) = Writer::start(pool.clone(), config.writer());
    let state = AppState {
        pool: pool.clone(),
        writer,
        geoip: geoip.clone(),
        trusted_proxies: TrustedProxies::new(config.trusted_proxies.clone()),
        limits: config.limits(),
        metrics,
    };
    let router = app::router(state, config.max_body_bytes, &config.legacy_v1_path);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let (stop, stopped) = oneshot::channel::<()>();

    let task = tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            stopped.await.ok();
            tracing::info!("shutting down: no new connections, finishing requests in flight");
        });
        let served = match tokio::time::timeout(grace, async { serve.await }).await {
            Ok(result) => result.map_err(StartupError::Serve),
            Err(_) => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "grace period over, closing remaining connections"
                );
                Ok(())
            }
        };
        // The router, and with it every Writer handle, is gone now: the writer tasks commit what is
        // queued and stop.
        let drained = tokio::time::timeout(grace, async {
            while writer_tasks.join_next().await.is_some() {}
        })
        .await;
        match drained {
            Ok(()) => tracing::info!("all queued reports committed"),
            Err(_) => {
                tracing::warn!("connections still open after the grace period; stopping the writer")
            }
        }
        served
    });
    tracing::info!(addr = %local_addr, "listening");
    Ok(RunningServer {
        local_addr,
        pool,
        geoip,
        stop,
        task,
    })
}

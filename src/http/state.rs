//! What every handler shares, and the settings that shape the router.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::body_budget::BodyBudget;
use crate::intake::Intake;
use crate::rate_limit::ClientRateLimiter;
use crate::stats::StatsCache;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Where every protocol's decoded reports go: country, forget the address, commit.
    pub intake: Intake,
    /// Largest request body (or gRPC message), once inflated; Percona's front end caps at 10 MiB.
    pub max_body_bytes: usize,
    pub metrics: PrometheusHandle,
    pub rate_limiter: Option<ClientRateLimiter>,
    pub stats: Arc<StatsCache>,
    /// Request-body bytes all requests together may hold (`MAX_BODY_BYTES_IN_FLIGHT`).
    pub body_budget: BodyBudget,
}

/// Settings that shape the router rather than any one handler.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// Where PMM 2's v1 plain-text reports are accepted (`Config::legacy_v1_path`).
    pub legacy_v1_path: String,
    pub request_timeout: Duration,
    /// Served over TLS: responses then carry HSTS.
    pub tls: bool,
    /// `/metrics` is served on a listener of its own ([`super::metrics_router`]), not on this router.
    pub separate_metrics: bool,
}

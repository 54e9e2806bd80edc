//! Prometheus metrics, served at `/metrics`. Labels carry routes, statuses, reasons and product
//! families: never anything that identifies a client.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("telemetry_batch_size_reports".into()),
                        &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // A recorder installed by an embedding program wins; ours then just stays empty.
            metrics::set_global_recorder(recorder).ok();
            handle
        })
        .clone()
}

/// How often the histograms' recorded samples are folded into their buckets (the exporter's own
/// default), with `PrometheusHandle::run_upkeep`. The recorder keeps every sample until `/metrics`
/// is rendered or that runs: without it, the memory of a service that nobody scrapes grows with
/// every request (docs/performance.md).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// One answered HTTP request. `method` must come from [`method_label`], so that a client inventing
/// methods cannot add label values.
pub fn http_request(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    counter!("telemetry_http_requests_total", "route" => route.to_owned(), "method" => method, "status" => status.to_string())
        .increment(1);
    histogram!("telemetry_http_request_duration_seconds", "route" => route.to_owned(), "method" => method)
        .record(elapsed.as_secs_f64());
}

/// The label for a request method: the standard ones by name, anything else as `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::CONNECT => "CONNECT",
        axum::http::Method::TRACE => "TRACE",
        _ => "other",
    }
}

pub fn reports_accepted(product_family: &'static str, count: u64) {
    counter!("telemetry_reports_accepted_total", "product_family" => product_family)
        .increment(count);
}

/// Why a request was refused: the `reason` label of `telemetry_reports_rejected_total` and of the
/// "request refused" log line. Each class is one kind of fault an operator acts on differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Not JSON as Percona's front end reads it: syntax, UTF-8, escapes, nesting deeper than 10,000.
    InvalidJson,
    /// JSON, but a field holds what the schema does not allow (a wrong type, not a UUID, a bad time).
    InvalidField,
    /// One message field given twice (under one name or under both of its names).
    DuplicateField,
    /// The body, once inflated, is over `MAX_BODY_BYTES` (or a gRPC message over the same size).
    TooLarge,
    /// Declared gzip, starts like gzip, does not inflate.
    InvalidEncoding,
    /// The connection failed while the body was being read.
    UnreadableBody,
    /// An empty v1 plain-text report.
    EmptyBody,
    /// The write queue is full (503).
    Overloaded,
    /// PostgreSQL is unreachable or the service is shutting down (503).
    Unavailable,
    /// The commit failed for another reason (500).
    StoreFailed,
    /// The client is over its rate limit (429).
    RateLimited,
    /// Request bodies in flight hold the whole memory budget, `MAX_BODY_BYTES_IN_FLIGHT` (503).
    MemoryBudget,
    /// The request took longer than `REQUEST_TIMEOUT_SECS` to arrive (408).
    Timeout,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidField => "invalid_field",
            Self::DuplicateField => "duplicate_field",
            Self::TooLarge => "too_large",
            Self::InvalidEncoding => "invalid_encoding",
            Self::UnreadableBody => "unreadable_body",
            Self::EmptyBody => "empty_body",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::StoreFailed => "store_failed",
            Self::RateLimited => "rate_limited",
            Self::MemoryBudget => "memory_budget",
            Self::Timeout => "timeout",
        }
    }
}

pub fn reports_rejected(reason: RejectReason, count: u64) {
    counter!("telemetry_reports_rejected_total", "reason" => reason.as_str()).increment(count);
}

pub fn queue_depth_set(reports: usize) {
    gauge!("telemetry_queue_depth_reports").set(reports as f64);
}

pub fn batch_committed(reports: usize) {
    histogram!("telemetry_batch_size_reports").record(reports as f64);
}

pub fn commit_finished(elapsed: Duration, committed: bool) {
    let result = if committed { "committed" } else { "failed" };
    histogram!("telemetry_commit_duration_seconds", "result" => result)
        .record(elapsed.as_secs_f64());
}

pub fn geoip_lookup(result: &'static str) {
    counter!("telemetry_geoip_lookups_total", "result" => result).increment(1);
}

pub fn geoip_reload(result: &'static str) {
    counter!("telemetry_geoip_reloads_total", "result" => result).increment(1);
}

/// The build time of the database in use, to alert on one that stopped being updated.
pub fn geoip_database_built(build_epoch: u64) {
    gauge!("telemetry_geoip_database_build_timestamp_seconds").set(build_epoch as f64);
}

pub fn pool_state(size: u32, idle: usize) {
    gauge!("telemetry_db_pool_connections", "state" => "open").set(size as f64);
    gauge!("telemetry_db_pool_connections", "state" => "idle").set(idle as f64);
}

pub fn retention_run(succeeded: bool) {
    let result = if succeeded { "succeeded" } else { "failed" };
    counter!("telemetry_retention_runs_total", "result" => result).increment(1);
}

/// Raw reports deleted for their age, counted whether or not the rollup refresh before succeeded.
pub fn reports_expired(deleted_reports: u64) {
    counter!("telemetry_retention_deleted_reports_total").increment(deleted_reports);
}

/// Each rollup refresh of the retention job; the time of the last good one, to alert on rollups
/// (and `/stats`) that stopped moving while raw reports are still deleted on time.
pub fn rollup_refresh(succeeded: bool, at: chrono::DateTime<chrono::Utc>) {
    let result = if succeeded { "succeeded" } else { "failed" };
    counter!("telemetry_rollup_refreshes_total", "result" => result).increment(1);
    if succeeded {
        gauge!("telemetry_rollup_last_success_timestamp_seconds").set(at.timestamp() as f64);
    }
}

/// Each refresh of the statistics page: its queries are all the database load the page causes.
pub fn stats_refresh(succeeded: bool) {
    let result = if succeeded { "succeeded" } else { "failed" };
    counter!("telemetry_stats_refreshes_total", "result" => result).increment(1);
}

/// A connection closed on arrival because `MAX_CONNECTIONS` were open.
pub fn connection_refused() {
    counter!("telemetry_connections_refused_total").increment(1);
}

/// Request-body bytes held in memory, against `MAX_BODY_BYTES_IN_FLIGHT`.
pub fn body_bytes_in_flight(bytes: usize) {
    gauge!("telemetry_body_bytes_in_flight").set(bytes as f64);
}

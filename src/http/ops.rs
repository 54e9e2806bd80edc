//! What operators and orchestrators ask: liveness, readiness, and the Prometheus metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::state::AppState;
use crate::{observability, store};

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "alive"}))
}

pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = tokio::time::timeout(Duration::from_secs(2), store::is_ready(&state.pool))
        .await
        .unwrap_or(false);
    let geoip = state.intake.geoip.current().database_type().to_owned();
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database { "ready" } else { "not ready" },
        "database": if database { "ok" } else { "unreachable" },
        "geoip": geoip,
    });
    (status, Json(body)).into_response()
}

pub(super) async fn prometheus_metrics(State(state): State<Arc<AppState>>) -> Response {
    observability::pool_state(state.pool.size(), state.pool.num_idle());
    observability::queue_depth_set(state.intake.writer.queued_reports());
    observability::body_bytes_in_flight(state.body_budget.held_bytes());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

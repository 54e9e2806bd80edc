//! The HTTP surface, in one place: the route table (here), what every handler shares (`state`), the
//! one mapping of errors to responses (`error`), the report endpoints (`ingest` for JSON and text,
//! `grpc` for PMM 2's gRPC method), health and metrics (`ops`), the middleware every request passes
//! (`middleware`), and the pages for people (`web`, `stats`).
//!
//! Everything the handlers do with a report happens below this module: decoding in `ingest` and
//! `legacy`, country and commit in `intake`. Nothing below imports from here.

mod error;
pub mod grpc;
mod ingest;
mod middleware;
mod ops;
mod state;
mod stats;
mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use error::ApiError;
pub use state::{AppState, RouterOptions};

/// Builds the router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// client address is needed for the country lookup.
///
/// The state is behind one `Arc` because every request clones it (more than once, through the
/// middleware): one reference count instead of a dozen.
pub fn router(state: Arc<AppState>, options: RouterOptions) -> Router {
    let post_only = || async { ApiError::MethodNotAllowed { allow: "POST" } };
    let report_routes = Router::new()
        .route(
            ingest::GENERIC_REPORT_PATH,
            post(ingest::generic_report).fallback(post_only),
        )
        .route(
            ingest::LEGACY_REPORT_PATH,
            post(ingest::legacy_report).fallback(post_only),
        )
        .route(
            &options.legacy_v1_path,
            post(ingest::legacy_v1_report).fallback(post_only),
        )
        // Charges the bytes as they arrive; body::read charges what they inflate to.
        .layer(from_fn_with_state(
            state.clone(),
            middleware::charge_body_budget,
        ))
        .layer(from_fn_with_state(state.clone(), middleware::rate_limit));
    // gRPC frames its own messages and compression; tonic enforces the size.
    let grpc_route = Router::new()
        .route(
            grpc::REPORT_PATH,
            post(|State(state): State<Arc<AppState>>, request: Request| {
                grpc::report(state, request)
            })
            .fallback(post_only),
        )
        .layer(from_fn_with_state(
            state.clone(),
            middleware::charge_body_budget,
        ))
        .layer(from_fn_with_state(state.clone(), middleware::rate_limit));

    let hsts = options.tls.then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    let request_timeout = options.request_timeout;

    let mut routes = Router::new()
        .merge(report_routes)
        .merge(grpc_route)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if !options.separate_metrics {
        routes = routes.route("/metrics", get(ops::prometheus_metrics));
    }
    routes
        .merge(web::routes())
        .route(stats::STATS_PATH, get(stats::page))
        .route(stats::STATS_JSON_PATH, get(stats::json))
        .fallback(web::not_found)
        .layer(from_fn(middleware::refuse_transfer_codings))
        .layer(from_fn(move |request, next| {
            middleware::time_limit(request_timeout, request, next)
        }))
        .layer(from_fn(middleware::count_requests))
        // Outside everything that can answer, 408 and 429 included.
        .layer(from_fn(middleware::security_headers))
        .layer(tower::util::option_layer(hsts))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                // Method, route and request id only: never the client address or headers.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str)
                    .to_owned();
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                tracing::info_span!("request", method = %request.method(), route, request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(from_fn(middleware::drop_unusable_request_id))
        .with_state(state)
}

/// `GET /metrics` alone, for `METRICS_LISTEN_ADDR`: scrapers reach it there while the public listener
/// does not serve it at all.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(ops::prometheus_metrics))
        .with_state(state)
}

//! The HTTP surface: routes, shared state, and the one place where errors become responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::body::{self, BodyError};
use crate::body_budget::{Account, BodyBudget};
use crate::ingest::{self, IngestError, ProductFamily};
use crate::intake::Intake;
use crate::legacy;
use crate::observability::{self, RejectReason};
use crate::rate_limit::ClientRateLimiter;
use crate::stats::{self, StatsCache};
use crate::store;
use crate::web;
use crate::writer::WriteError;

pub const GENERIC_REPORT_PATH: &str = "/v1/telemetry/GenericReport";
/// PMM 2.25–2.4x (`docs/legacy-protocols.md`).
pub const LEGACY_REPORT_PATH: &str = "/v1/telemetry/Report";

/// Seconds a client is asked to wait before retrying after a 503.
const RETRY_AFTER_SECS: u64 = 5;

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
    /// `/metrics` is served on a listener of its own ([`metrics_router`]), not on this router.
    pub separate_metrics: bool,
}

/// Builds the router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// client address is needed for the country lookup.
///
/// The state is behind one `Arc` because every request clones it (more than once, through the
/// middleware): one reference count instead of a dozen.
pub fn router(state: Arc<AppState>, options: RouterOptions) -> Router {
    let post_only = || async { ApiError::MethodNotAllowed { allow: "POST" } };
    let ingest = Router::new()
        .route(
            GENERIC_REPORT_PATH,
            post(generic_report).fallback(post_only),
        )
        .route(LEGACY_REPORT_PATH, post(legacy_report).fallback(post_only))
        .route(
            &options.legacy_v1_path,
            post(legacy_v1_report).fallback(post_only),
        )
        // Charges the bytes as they arrive; body::read charges what they inflate to.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            charge_body_budget,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit));
    // gRPC frames its own messages and compression; tonic enforces the size.
    let grpc = Router::new()
        .route(
            legacy::grpc::REPORT_PATH,
            post(|State(state): State<Arc<AppState>>, request: Request| {
                legacy::grpc::report(state, request)
            })
            .fallback(post_only),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            charge_body_budget,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit));

    let hsts = options.tls.then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    let request_timeout = options.request_timeout;

    let mut routes = Router::new()
        .merge(ingest)
        .merge(grpc)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if !options.separate_metrics {
        routes = routes.route("/metrics", get(prometheus_metrics));
    }
    routes
        .merge(web::routes())
        .merge(stats::routes())
        .fallback(web::not_found)
        .layer(middleware::from_fn(refuse_transfer_codings))
        .layer(middleware::from_fn(move |request, next| {
            time_limit(request_timeout, request, next)
        }))
        .layer(middleware::from_fn(count_requests))
        // Outside everything that can answer, 408 and 429 included.
        .layer(middleware::from_fn(web::security_headers))
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
        .layer(middleware::from_fn(drop_unusable_request_id))
        .with_state(state)
}

/// `POST /v1/telemetry/GenericReport`: decode, resolve the country, forget the address, store, and
/// answer `200 {}` only once the reports are committed.
async fn generic_report(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Extension(account): Extension<Account>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, &account, body).await?;
    let reports = ingest::parse_report_request(&body)
        .map_err(|error| ApiError::invalid_from(error, ingest::product_family_hint(&body)))?
        .into_iter()
        .map(|report| (report, "GenericReport"))
        .collect();
    state
        .intake
        .accept(Some(peer.ip()), &headers, reports)
        .await?;
    Ok(empty_json_ok())
}

/// `POST /v1/telemetry/Report` (PMM 2.25–2.4x): answered exactly like `GenericReport`.
async fn legacy_report(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Extension(account): Extension<Account>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, &account, body).await?;
    let reports = legacy::parse_report_request(&body)
        .map_err(|error| ApiError::invalid_from(error, Some(ProductFamily::Pmm)))?;
    state
        .intake
        .accept(Some(peer.ip()), &headers, reports)
        .await?;
    Ok(empty_json_ok())
}

/// PMM 2's v1 plain-text report. PMM only checks for status 200; the empty body is what a
/// version-check host answers when it has no advice.
async fn legacy_v1_report(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Extension(account): Extension<Account>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, &account, body).await?;
    let report = legacy::v1::parse_v1_report(&body, chrono::Utc::now())
        .map_err(|error| ApiError::invalid_from(error, Some(ProductFamily::Pmm)))?;
    state
        .intake
        .accept(
            Some(peer.ip()),
            &headers,
            vec![(report, legacy::PROTOCOL_V1)],
        )
        .await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
    )
        .into_response())
}

/// The request's body, inflated, within `MAX_BODY_BYTES` and the memory budget.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    account: &Account,
    body: Body,
) -> Result<Bytes, ApiError> {
    let charge = |bytes: usize| account.charge(&state.body_budget, bytes);
    Ok(body::read(headers, body, state.max_body_bytes, charge).await?)
}

/// Exactly what PMM expects: status 200, `Content-Type: application/json`, body `{}`.
fn empty_json_ok() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "{}",
    )
        .into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "alive"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
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

/// `GET /metrics` alone, for `METRICS_LISTEN_ADDR`: scrapers reach it there while the public listener
/// does not serve it at all.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(prometheus_metrics))
        .with_state(state)
}

async fn prometheus_metrics(State(state): State<Arc<AppState>>) -> Response {
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

/// Answers 408 (DEADLINE_EXCEEDED to a gRPC caller) when a request (a slowly sent body, typically)
/// takes longer than allowed.
async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    let grpc = is_grpc(request.headers());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response_for(grpc),
    }
}

/// gRPC callers read errors from `grpc-status`, not from the HTTP status and a JSON body.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// Longest `X-Request-Id` taken from a client; a UUID is 36 characters, tracing ids up to 64.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// A client's `X-Request-Id` is echoed and logged with every line of its request, so one that is long
/// or holds more than an id's characters is replaced by a fresh UUID.
async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
    let usable = request.headers().get("x-request-id").is_none_or(|id| {
        let id = id.as_bytes();
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_BYTES
            && id
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte))
    });
    if !usable {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// Only `chunked` is a transfer coding HTTP/1.1 servers must understand; hyper decodes it and passes
/// any other coding's bytes on undecoded, so a request naming one would be read as something it is
/// not. Compression belongs in `Content-Encoding`.
async fn refuse_transfer_codings(request: Request, next: Next) -> Response {
    let grpc = is_grpc(request.headers());
    let only_chunked = request
        .headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty())
        .all(|coding| coding.eq_ignore_ascii_case(b"chunked"));
    if !only_chunked {
        return ApiError::TransferCoding.into_response_for(grpc);
    }
    next.run(request).await
}

/// Charges the request's body to the memory budget until the request is answered, and answers 503
/// (gRPC: UNAVAILABLE) when the budget could not hold it.
async fn charge_body_budget(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let grpc = is_grpc(request.headers());
    let (mut request, account) = state.body_budget.charge(request);
    // The handler charges what a gzip body inflates to to the same account.
    request.extensions_mut().insert(account.clone());
    let response = next.run(request).await;
    // The JSON handlers answer 503 themselves (`BodyError::BudgetSpent`); tonic reads the body of a
    // gRPC call itself and reports a failed one as UNKNOWN.
    if account.refused() && response.status() != StatusCode::SERVICE_UNAVAILABLE {
        return ApiError::Busy.into_response_for(grpc);
    }
    response
}

/// Refuses a client over its rate with 429 before its body is even read.
async fn rate_limit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &state.rate_limiter {
        let client = state
            .intake
            .trusted_proxies
            .client_ip(peer.ip(), request.headers());
        if let Err(wait) = limiter.check(client) {
            return ApiError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            }
            .into_response_for(is_grpc(request.headers()));
        }
    }
    next.run(request).await
}

async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = observability::method_label(request.method());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    observability::http_request(&route, method, status, started.elapsed());
    if let Some(refused) = response.extensions().get::<Refused>() {
        log_refusal(&route, status, refused);
    }
    response
}

/// What a refused request's response carries to [`count_requests`], which knows the route.
#[derive(Clone, Copy, Debug)]
struct Refused {
    reason: RejectReason,
    product_family: Option<ProductFamily>,
}

/// The one line an operator sees for each refused request: never the address, never the body.
fn log_refusal(route: &str, status: u16, refused: &Refused) {
    tracing::info!(
        route,
        status,
        reason = refused.reason.as_str(),
        product_family = refused.product_family.map(ProductFamily::as_str),
        "request refused"
    );
}

/// Every error a client can see, mapped to a status and a grpc-gateway `google.rpc.Status` body in
/// [`IntoResponse`] below and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request's content is wrong; the family of the product that sent it, where it could be told.
    #[error("{error}")]
    Invalid {
        error: IngestError,
        product_family: Option<ProductFamily>,
    },
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("method not allowed; this endpoint accepts {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("not found")]
    NotFound,
    #[error("too many requests from this client; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the request took too long to arrive")]
    Timeout,
    #[error("the service is busy with other requests' bodies; try again shortly")]
    Busy,
    #[error(
        "unsupported Transfer-Encoding: only chunked is accepted; compress with Content-Encoding: gzip"
    )]
    TransferCoding,
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        Self::Invalid {
            error,
            product_family: None,
        }
    }
}

impl ApiError {
    /// A refusal of what a product of a known family sent.
    pub fn invalid_from(error: IngestError, product_family: Option<ProductFamily>) -> Self {
        Self::Invalid {
            error,
            product_family,
        }
    }

    /// The same error for a gRPC caller: the gRPC code paired with the HTTP status below
    /// (InvalidArgument, Unavailable, ...) and the same message.
    pub fn into_grpc_status(self) -> tonic::Status {
        let (status, code) = self.status_and_code();
        if let Some(refused) = self.refused() {
            observability::reports_rejected(refused.reason, 1);
            log_refusal(legacy::grpc::REPORT_PATH, status.as_u16(), &refused);
        }
        tonic::Status::new(tonic::Code::from_i32(i32::from(code)), self.to_string())
    }

    /// The error as a gRPC caller (`grpc`) or any other client reads it.
    pub fn into_response_for(self, grpc: bool) -> Response {
        if grpc {
            self.into_grpc_status().into_http()
        } else {
            self.into_response()
        }
    }

    /// How the refusal is counted and logged; `None` for requests that are not reports at all.
    fn refused(&self) -> Option<Refused> {
        let reason = match self {
            Self::Invalid { error, .. } => error.reason(),
            Self::Body(BodyError::TooLarge { .. }) => RejectReason::TooLarge,
            Self::Body(BodyError::InvalidGzip(_)) => RejectReason::InvalidEncoding,
            Self::Body(BodyError::Unreadable(_)) | Self::TransferCoding => {
                RejectReason::UnreadableBody
            }
            Self::Write(WriteError::Overloaded) => RejectReason::Overloaded,
            Self::Write(WriteError::Unavailable | WriteError::ShuttingDown) => {
                RejectReason::Unavailable
            }
            Self::Write(WriteError::Failed) => RejectReason::StoreFailed,
            Self::RateLimited { .. } => RejectReason::RateLimited,
            Self::Timeout => RejectReason::Timeout,
            Self::Busy | Self::Body(BodyError::BudgetSpent(_)) => RejectReason::MemoryBudget,
            Self::MethodNotAllowed { .. } | Self::NotFound => return None,
        };
        let product_family = match self {
            Self::Invalid { product_family, .. } => *product_family,
            _ => None,
        };
        Some(Refused {
            reason,
            product_family,
        })
    }

    /// HTTP status and the gRPC code grpc-gateway pairs with it.
    fn status_and_code(&self) -> (StatusCode, u16) {
        match self {
            Self::Invalid { .. }
            | Self::TransferCoding
            | Self::Body(BodyError::InvalidGzip(_) | BodyError::Unreadable(_)) => {
                (StatusCode::BAD_REQUEST, 3)
            }
            Self::Body(BodyError::TooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, 8),
            Self::Write(WriteError::Failed) => (StatusCode::INTERNAL_SERVER_ERROR, 13),
            Self::Write(_) | Self::Busy | Self::Body(BodyError::BudgetSpent(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, 14)
            }
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, 12),
            Self::NotFound => (StatusCode::NOT_FOUND, 5),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, 8),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, 4),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let refused = self.refused();
        let body = json!({"code": code, "message": self.to_string(), "details": []});
        let mut response = (status, Json(body)).into_response();
        if let Some(refused) = refused {
            observability::reports_rejected(refused.reason, 1);
            response.extensions_mut().insert(refused);
        }
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::Write(
                WriteError::Overloaded | WriteError::Unavailable | WriteError::ShuttingDown,
            )
            | Self::Busy
            | Self::Body(BodyError::BudgetSpent(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

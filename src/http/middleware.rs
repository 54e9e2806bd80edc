//! The middleware around the routes: request ids, time limit, transfer codings, the body budget,
//! the rate limit, the request count and refusal log, and the security headers on every response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::{ApiError, Refused, log_refusal};
use super::state::AppState;
use crate::observability;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
     style-src 'self'; img-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Answers 408 (DEADLINE_EXCEEDED to a gRPC caller) when a request (a slowly sent body, typically)
/// takes longer than allowed.
pub(super) async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
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
pub(super) async fn drop_unusable_request_id(mut request: Request, next: Next) -> Response {
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
pub(super) async fn refuse_transfer_codings(request: Request, next: Next) -> Response {
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
pub(super) async fn charge_body_budget(
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
pub(super) async fn rate_limit(
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

pub(super) async fn count_requests(request: Request, next: Next) -> Response {
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

/// Security headers on every response; the Content-Security-Policy on HTML, where it has effect.
/// HSTS is left to the TLS set-up.
pub(super) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let is_html = is_html(response.headers());
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    if is_html {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
    }
    response
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

//! The report endpoints that take a body: `GenericReport` and PMM 2's two HTTP forms. Each reads
//! the body within its limits, decodes it (`crate::ingest`, `crate::legacy`), hands the reports to
//! intake, and answers as the clients expect.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::body;
use crate::body_budget::Account;
use crate::ingest;
use crate::legacy;
use crate::report::ProductFamily;

pub const GENERIC_REPORT_PATH: &str = "/v1/telemetry/GenericReport";
/// PMM 2.25–2.4x (`docs/legacy-protocols.md`).
pub const LEGACY_REPORT_PATH: &str = "/v1/telemetry/Report";

/// `POST /v1/telemetry/GenericReport`: decode, resolve the country, forget the address, store, and
/// answer `200 {}` only once the reports are committed.
pub(super) async fn generic_report(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Extension(account): Extension<Account>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, &account, body).await?;
    let reports = ingest::parse_report_request(&body)
        .map_err(|error| ApiError::invalid_from(error, ingest::product_family_hint(&body)))?;
    state
        .intake
        .accept(Some(peer.ip()), &headers, reports)
        .await?;
    Ok(empty_json_ok())
}

/// `POST /v1/telemetry/Report` (PMM 2.25–2.4x): answered exactly like `GenericReport`.
pub(super) async fn legacy_report(
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
pub(super) async fn legacy_v1_report(
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
        .accept(Some(peer.ip()), &headers, vec![report])
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

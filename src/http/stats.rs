//! `/stats` and `/stats.json`: the statistics page and its numbers, served from the cache
//! (`crate::stats`), which computes and renders them on its own schedule.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::state::AppState;

pub const STATS_PATH: &str = "/stats";
pub const STATS_JSON_PATH: &str = "/stats.json";

pub(super) async fn page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    state
        .stats
        .current()
        .html
        .respond(&headers, "text/html; charset=utf-8")
}

pub(super) async fn json(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    state
        .stats
        .current()
        .json
        .respond(&headers, "application/json")
}

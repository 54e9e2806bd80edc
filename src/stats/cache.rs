//! The statistics as last computed, held in memory, and the HTTP representation of each: rendered
//! and gzipped once per refresh, served with an ETag and Last-Modified, and answered with 304 when
//! the client's copy is current, so that a page view never reaches PostgreSQL.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use sqlx::PgPool;

use super::model::Statistics;
use crate::store::{self, StatsRollups, StoreError};

/// Weeks the time series cover: a year.
const WEEKS: i32 = 52;
/// Browsers and proxies may reuse a copy this long; the ETag makes a later check cheap.
const CACHE_CONTROL: &str = "public, max-age=300";

/// A response body rendered once, and compressed once, with the validators that let clients skip it.
#[derive(Debug)]
pub struct Rendered {
    pub body: Bytes,
    /// The body gzipped at refresh time: compressing a page of tables per request would cost far
    /// more CPU than serving it.
    pub gzip: Bytes,
    pub etag: HeaderValue,
    pub last_modified: SystemTime,
}

impl Rendered {
    fn new(body: Vec<u8>, last_modified: SystemTime) -> Self {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        // Weak: the same content goes out plain or gzipped.
        let etag = HeaderValue::from_str(&format!("W/\"{:016x}\"", hasher.finish()))
            .expect("a hex ETag is a valid header value");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        let gzip = encoder
            .write_all(&body)
            .and_then(|()| encoder.finish())
            .expect("gzip into memory cannot fail");
        Self {
            body: body.into(),
            gzip: gzip.into(),
            etag,
            last_modified,
        }
    }

    /// The whole response to a GET with these request headers: 304 when the client's copy is current.
    pub fn respond(&self, request: &HeaderMap, content_type: &'static str) -> Response {
        let last_modified = HeaderValue::from_str(&httpdate(self.last_modified))
            .expect("an HTTP date is a valid header value");
        let headers = [
            (header::ETAG, self.etag.clone()),
            (header::LAST_MODIFIED, last_modified),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ];
        let vary = [(header::VARY, HeaderValue::from_static("accept-encoding"))];
        if self.is_fresh_for(request) {
            return (StatusCode::NOT_MODIFIED, headers, vary).into_response();
        }
        let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))];
        if accepts_gzip(request) {
            let encoding = [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))];
            (
                headers,
                vary,
                content_type,
                encoding,
                Body::from(self.gzip.clone()),
            )
                .into_response()
        } else {
            (headers, vary, content_type, Body::from(self.body.clone())).into_response()
        }
    }

    /// RFC 9110 §13.1: If-None-Match wins over If-Modified-Since; ETags compare weakly for GET.
    fn is_fresh_for(&self, request: &HeaderMap) -> bool {
        if let Some(if_none_match) = request.get(header::IF_NONE_MATCH) {
            let Ok(tags) = if_none_match.to_str() else {
                return false;
            };
            let ours = weak_tag(self.etag.to_str().unwrap_or_default());
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || weak_tag(tag) == ours);
        }
        request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_httpdate)
            .is_some_and(|since| truncate_to_seconds(self.last_modified) <= since)
    }
}

/// True when Accept-Encoding lists gzip (or `*`) without `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn weak_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn httpdate(time: SystemTime) -> String {
    DateTime::<Utc>::from(time)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn parse_httpdate(value: &str) -> Option<SystemTime> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|date| SystemTime::from(date.with_timezone(&Utc)))
}

/// The page and its JSON as last computed.
#[derive(Debug)]
pub struct Snapshot {
    pub statistics: Statistics,
    pub html: Rendered,
    pub json: Rendered,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rendering the statistics page failed: {0}")]
    Render(#[from] askama::Error),
    #[error("encoding the statistics as JSON failed: {0}")]
    Json(#[from] serde_json::Error),
}

/// The statistics as last computed, shared by every request; replaced whole by each refresh.
#[derive(Debug)]
pub struct StatsCache {
    pool: PgPool,
    min_bucket: i64,
    current: ArcSwap<Snapshot>,
}

impl StatsCache {
    /// A cache that serves an empty page until the first [`refresh`](Self::refresh).
    pub fn new(pool: PgPool, min_bucket: i64) -> Result<Self, StatsError> {
        let empty = Statistics::from_rollups(&StatsRollups::default(), min_bucket);
        let snapshot = Self::render(empty, SystemTime::now())?;
        Ok(Self {
            pool,
            min_bucket,
            current: ArcSwap::from_pointee(snapshot),
        })
    }

    fn render(statistics: Statistics, last_modified: SystemTime) -> Result<Snapshot, StatsError> {
        let html = Rendered::new(statistics.render_page()?.into_bytes(), last_modified);
        let json = Rendered::new(serde_json::to_vec_pretty(&statistics)?, last_modified);
        Ok(Snapshot {
            statistics,
            html,
            json,
        })
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Reads the rollups and replaces the snapshot. Last-Modified only moves when the numbers do.
    pub async fn refresh(&self) -> Result<(), StatsError> {
        let rollups = store::stats_rollups(&self.pool, WEEKS).await?;
        let statistics = Statistics::from_rollups(&rollups, self.min_bucket);
        let previous = self.current();
        let last_modified = if previous.statistics == statistics {
            previous.html.last_modified
        } else {
            rollups
                .snapshot
                .map_or_else(SystemTime::now, |(_, refreshed_at)| refreshed_at.into())
        };
        self.current
            .store(Arc::new(Self::render(statistics, last_modified)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Rendered {
        Rendered::new(
            b"{}".to_vec(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let rendered = rendered();
        let tag = rendered.etag.to_str().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", {}", weak_tag(&tag))).unwrap(),
        );
        assert!(rendered.is_fresh_for(&headers));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        // If-None-Match decides even when If-Modified-Since alone would say fresh.
        headers.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Fri, 01 Jan 2100 00:00:00 GMT"),
        );
        assert!(!rendered.is_fresh_for(&headers));
    }

    #[test]
    fn gzip_is_sent_to_clients_that_accept_it() {
        let accepts = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));

        let rendered = rendered();
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&rendered.gzip[..]),
            &mut plain,
        )
        .unwrap();
        assert_eq!(plain.as_bytes(), &rendered.body[..]);
    }

    #[test]
    fn if_modified_since_is_compared_to_the_second() {
        let rendered = rendered();
        let mut headers = HeaderMap::new();
        let date = httpdate(rendered.last_modified);
        headers.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&date).unwrap(),
        );
        assert!(rendered.is_fresh_for(&headers));
        let earlier = httpdate(rendered.last_modified - Duration::from_secs(1));
        headers.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&earlier).unwrap(),
        );
        assert!(!rendered.is_fresh_for(&headers));
        headers.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("not a date"),
        );
        assert!(!rendered.is_fresh_for(&headers));
    }
}

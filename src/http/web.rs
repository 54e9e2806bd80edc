//! The public face for people: the landing page, the API description, the HTML 404 page, static
//! assets (compiled in, `crate::assets`), and the caching headers they carry. The security headers
//! every response carries are `middleware`'s.

use std::path::Path;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Request, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

use super::error::{ApiError, WebError};
use super::ingest::GENERIC_REPORT_PATH;
use super::state::AppState;
use crate::assets::{EmbeddedAssets, asset_version};
use crate::catalogue::{self, Group, MetricKey, Product};
use crate::geoip::{BUNDLED_GEOIP_FILE, CountryDatabase, RecordLayout};

/// How long browsers and proxies may reuse each kind of response.
const PAGE_CACHE: &str = "public, max-age=300";
const API_DESCRIPTION_CACHE: &str = "public, max-age=3600";
const ASSET_CACHE: &str = "public, max-age=86400";

/// The routes for people and for the API description. Unknown paths are answered by [`not_found`],
/// which the main router installs as its fallback.
pub fn routes() -> Router<Arc<AppState>> {
    let assets = ServeDir::with_backend("static", EmbeddedAssets)
        .append_index_html_on_directories(false)
        .fallback(html_not_found.into_service());
    Router::new()
        .route("/", get(landing_page))
        .route_service("/openapi.json", assets.clone())
        .route_service("/robots.txt", assets.clone())
        .route_service("/favicon.ico", assets.clone())
        .nest_service("/static", assets)
        .layer(middleware::from_fn(cache_headers))
        .layer(CompressionLayer::new())
}

/// Fallback for every unmatched path: API clients under `/v1/` get the grpc-gateway JSON error they
/// can decode, everyone else gets the HTML page.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/v1" || uri.path().starts_with("/v1/") {
        ApiError::NotFound.into_response()
    } else {
        html_not_found().await
    }
}

async fn html_not_found() -> Response {
    let page = NotFoundPage {
        asset_version: asset_version(),
    };
    match page.render() {
        Ok(html) => (StatusCode::NOT_FOUND, Html(html)).into_response(),
        Err(source) => WebError::Render {
            page: "not found",
            source,
        }
        .into_response(),
    }
}

async fn landing_page(State(state): State<Arc<AppState>>) -> Result<Html<String>, WebError> {
    let database = state.intake.geoip.current();
    let page = LandingPage::new(GeoIpCredit::of(&database));
    page.render().map(Html).map_err(|source| WebError::Render {
        page: "landing",
        source,
    })
}

/// Cache lifetimes by path, only on successful or not-modified answers: an error is never cached.
async fn cache_headers(request: Request, next: Next) -> Response {
    let policy = match request.uri().path() {
        "/" => PAGE_CACHE,
        "/openapi.json" => API_DESCRIPTION_CACHE,
        _ => ASSET_CACHE,
    };
    let mut response = next.run(request).await;
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static(policy));
    }
    response
}

/// Which attribution the GeoIP database in use requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeoIpSource {
    /// geo-whois-asn-country (the bundled database): CC BY 4.0, data from the NRO.
    Nro,
    /// MaxMind GeoLite2, which requires the "This product includes GeoLite2 data" notice.
    MaxMindLite,
    /// A commercial MaxMind GeoIP2 database.
    MaxMind,
    /// Anything else the operator configured.
    Other,
}

/// What the attribution section shows about the database in use.
#[derive(Clone, Debug)]
pub struct GeoIpCredit {
    pub source: GeoIpSource,
    /// The database's own description of its type, from the file's metadata.
    pub database_type: String,
}

impl GeoIpCredit {
    pub fn of(database: &CountryDatabase) -> Self {
        let database_type = database.database_type().to_owned();
        let source = match database.layout() {
            RecordLayout::MaxMind if database_type.to_ascii_lowercase().contains("geolite2") => {
                GeoIpSource::MaxMindLite
            }
            RecordLayout::MaxMind => GeoIpSource::MaxMind,
            RecordLayout::CountryCode if is_geo_whois_asn_country(database.path()) => {
                GeoIpSource::Nro
            }
            RecordLayout::CountryCode => GeoIpSource::Other,
        };
        Self {
            source,
            database_type,
        }
    }
}

/// The bundled file, or an updated copy of it from the same project under its usual names.
fn is_geo_whois_asn_country(path: &Path) -> bool {
    let stem = BUNDLED_GEOIP_FILE.trim_end_matches(".mmdb");
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.to_ascii_lowercase().contains(stem))
}

/// One product's part of the table of collected values.
pub struct CatalogueSection {
    pub product: Product,
    pub groups: Vec<CatalogueGroup>,
}

pub struct CatalogueGroup {
    pub group: Group,
    pub keys: Vec<&'static MetricKey>,
    /// Shown expanded, so that a visitor sees what a table looks like without a click.
    pub open: bool,
}

fn catalogue_sections() -> Vec<CatalogueSection> {
    Product::ALL
        .into_iter()
        .map(|product| CatalogueSection {
            product,
            groups: Group::ALL
                .into_iter()
                .filter(|group| group.product() == product)
                .map(|group| CatalogueGroup {
                    group,
                    keys: group.keys().collect(),
                    open: group == Group::ALL[0],
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct LandingPage {
    pub catalogue: Vec<CatalogueSection>,
    pub key_count: usize,
    pub geoip: GeoIpCredit,
    pub ingest_path: &'static str,
    pub asset_version: &'static str,
}

impl LandingPage {
    pub fn new(geoip: GeoIpCredit) -> Self {
        Self {
            catalogue: catalogue_sections(),
            key_count: catalogue::METRIC_KEYS.len(),
            geoip,
            ingest_path: GENERIC_REPORT_PATH,
            asset_version: asset_version(),
        }
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    asset_version: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(database_type: &str, source: GeoIpSource) -> String {
        LandingPage::new(GeoIpCredit {
            source,
            database_type: database_type.to_owned(),
        })
        .render()
        .expect("the landing page renders")
    }

    #[test]
    fn text_from_the_geoip_file_cannot_inject_markup() {
        let html = page_with("<script>alert(1)</script>\"'&", GeoIpSource::Other);
        assert!(!html.contains("<script"), "raw markup reached the page");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;"),
            "escaped form missing"
        );
    }

    #[test]
    fn attribution_follows_the_database() {
        let nro = page_with("country ipvAll", GeoIpSource::Nro);
        assert!(nro.contains("https://www.nro.net/"));
        assert!(nro.contains("CC BY 4.0"));
        assert!(!nro.contains("MaxMind"));

        let lite = page_with("GeoLite2-Country", GeoIpSource::MaxMindLite);
        assert!(lite.contains("This product includes GeoLite2 data created by MaxMind"));
        assert!(!lite.contains("nro.net"));

        let paid = page_with("GeoIP2-Country", GeoIpSource::MaxMind);
        assert!(paid.contains("GeoIP2 data created by MaxMind"));
    }

    #[test]
    fn geo_whois_asn_country_is_recognised_by_file_name() {
        assert!(is_geo_whois_asn_country(Path::new(
            "/usr/share/telemetry-server/geo-whois-asn-country.mmdb"
        )));
        assert!(is_geo_whois_asn_country(Path::new(
            "/var/lib/geoip/geo-whois-asn-country-ipv4.mmdb"
        )));
        assert!(!is_geo_whois_asn_country(Path::new("dbip-country.mmdb")));
    }

    #[test]
    fn the_api_description_is_valid_json_and_names_the_ingest_path() {
        let (_, bytes) = crate::assets::ASSETS
            .iter()
            .find(|(n, _)| *n == "openapi.json")
            .unwrap();
        let document: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        assert!(document["paths"][GENERIC_REPORT_PATH]["post"].is_object());
        for path in [
            crate::http::stats::STATS_PATH,
            crate::http::stats::STATS_JSON_PATH,
        ] {
            assert!(document["paths"][path]["get"].is_object(), "{path}");
        }
        assert!(document["components"]["schemas"]["Statistics"].is_object());
    }
}

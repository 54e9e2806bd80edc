//! The public statistics page: what the telemetry says, in aggregate, for everyone (`/stats`, and
//! the same numbers as JSON at `/stats.json`).
//!
//! - `model`: the published numbers and the privacy rule that folds small counts ([`fold_small`]);
//! - `page`: the charts and tables of the HTML page;
//! - `cache`: the computed page and JSON in memory, with their HTTP validators;
//! - here: the refresh loop (the routes are `crate::http`'s).
//!
//! Cost: the page is computed from the rollups on a schedule (`STATS_REFRESH_SECS`), rendered once,
//! and served from memory with an ETag and Last-Modified; a page view never reaches PostgreSQL.

mod cache;
mod charts;
mod countries;
mod model;
mod page;

use std::sync::Arc;
use std::time::Duration;

pub use cache::{Rendered, Snapshot, StatsCache, StatsError};
pub use model::{
    ActiveInstances, Countries, CountryStat, DatabaseLineStat, FeatureStat, Folded,
    MonitoredDatabase, PmmFeatures, ProductSeries, ReleaseUptake, Statistics, VersionSeries,
    VersionValues, fold_small, is_release_label,
};
pub use page::{Figure, LegendEntry, StatsPage, Table};

use crate::observability;

impl StatsCache {
    /// Refreshes now and then once per `interval`, forever; a failed refresh keeps the last page.
    pub async fn refresh_every(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.refresh().await {
                Ok(()) => observability::stats_refresh(true),
                Err(error) => {
                    observability::stats_refresh(false);
                    tracing::warn!(%error, "statistics not refreshed; serving the previous ones");
                }
            }
        }
    }
}

//! The public statistics page: what the telemetry says, in aggregate, for everyone (`/stats`, and
//! the same numbers as JSON at `/stats.json`).
//!
//! Privacy: the numbers come from the analysts' rollups, which hold counts, never instances. Any
//! count below `STATS_MIN_BUCKET` is folded into "other" and, if "other" itself would be that small,
//! larger buckets are folded in with it until it is not ([`fold_small`]), so that no published count
//! and no difference of published counts describes fewer instances than the threshold.
//!
//! Cost: the page is computed from the rollups on a schedule (`STATS_REFRESH_SECS`), rendered once,
//! and served from memory with an ETag and Last-Modified; a page view never reaches PostgreSQL.

mod charts;
mod countries;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sqlx::PgPool;

use crate::app::AppState;
use crate::catalogue::product_name;
use crate::ingest::ProductFamily;
use crate::observability;
use crate::store::{self, StatsRollups, StoreError};
use crate::web::{WebError, asset_version};
use charts::{Caption, TimeSeries, percent, series_class, thousands};

pub const STATS_PATH: &str = "/stats";
pub const STATS_JSON_PATH: &str = "/stats.json";

/// Weeks the time series cover: a year.
const WEEKS: i32 = 52;
/// Versions drawn per product; the rest join "Other versions".
const MAX_VERSIONS: usize = 10;
/// Countries drawn in the chart; the table lists every published one.
const MAX_CHART_COUNTRIES: usize = 15;
/// Browsers and proxies may reuse a copy this long; the ETag makes a later check cheap.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The active window the rollups count with (`analytics.default_window_days()`).
const ACTIVE_WINDOW_DAYS: i64 = 30;

/// Everything the page shows, as `/stats.json` serves it. `null` in a count means "not published":
/// fewer than `min_bucket` instances, counted in `other` instead (or withheld, when even "other"
/// would be that small).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statistics {
    /// The UTC day the snapshot figures describe; `null` before the first rollup refresh.
    pub snapshot_day: Option<NaiveDate>,
    /// When the analytics rollups behind these numbers were refreshed.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// Smallest number of instances a published count may describe.
    pub min_bucket: i64,
    /// An instance is active on a day if it reported on that day or the days before, this many in all.
    pub active_window_days: i64,
    pub active_instances: ActiveInstances,
    pub release_uptake: Vec<ReleaseUptake>,
    pub pmm_features: Option<PmmFeatures>,
    pub monitored_databases: Vec<MonitoredDatabase>,
    pub countries: Countries,
}

/// Active instances per product family, weekly over the last year.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActiveInstances {
    /// Monday of each week; every series has one value per week.
    pub weeks: Vec<NaiveDate>,
    pub products: Vec<ProductSeries>,
    /// Products too small to show on their own, together.
    pub other: Vec<Option<i64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProductSeries {
    pub product_family: String,
    pub name: String,
    /// Active instances on the week's last day (or the latest day so far).
    pub active_instances: Vec<Option<i64>>,
}

/// Share of a product's active instances on each version, weekly over the last year.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReleaseUptake {
    pub product_family: String,
    pub name: String,
    pub weeks: Vec<NaiveDate>,
    /// All active instances of the product that week, the denominator of the shares.
    pub active_instances: Vec<Option<i64>>,
    pub versions: Vec<VersionSeries>,
    /// Versions too small or too many to show on their own, together.
    pub other: VersionValues,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionSeries {
    /// The version as reported; "unknown" for instances that never sent one.
    pub version: String,
    #[serde(flatten)]
    pub values: VersionValues,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VersionValues {
    pub active_instances: Vec<Option<i64>>,
    /// active_instances / the product's active instances that week, rounded to 4 decimals.
    pub share: Vec<Option<f64>>,
}

/// PMM features enabled on active PMM servers on the snapshot day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PmmFeatures {
    pub active_servers: i64,
    pub features: Vec<FeatureStat>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeatureStat {
    pub feature: String,
    pub name: String,
    /// `null` when the servers with or without the feature are fewer than `min_bucket`.
    pub enabled_servers: Option<i64>,
    pub share: Option<f64>,
}

/// Release lines of the databases active PMM servers monitor, on the snapshot day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitoredDatabase {
    pub database: String,
    pub name: String,
    /// Lines monitored by at least `min_bucket` PMM servers; smaller ones are left out.
    pub lines: Vec<DatabaseLineStat>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatabaseLineStat {
    /// Release line, e.g. "8.0"; "unknown" for versions without digits.
    pub line: String,
    pub pmm_servers: i64,
    pub services: i64,
    /// Share of all monitored services of this database, small lines included.
    pub share_of_services: f64,
}

/// Countries of active instances of all products on the snapshot day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Countries {
    pub total: i64,
    pub countries: Vec<CountryStat>,
    /// Countries too small to show on their own, together.
    pub other: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CountryStat {
    /// ISO 3166-1 alpha-2 code; `null` for addresses that resolved to no country.
    pub country_code: Option<String>,
    pub name: String,
    pub active_instances: i64,
    pub share: f64,
}

/// One group of disjoint buckets (each instance in exactly one), after suppression.
#[derive(Debug, PartialEq, Eq)]
pub struct Folded<K> {
    /// Buckets of at least the threshold, largest first.
    pub shown: Vec<(K, i64)>,
    /// Everything else together: 0, at least the threshold, or `None` when the whole group is smaller
    /// than the threshold and nothing is published.
    pub other: Option<i64>,
}

/// Folds buckets below `min_bucket` into "other"; while "other" is non-empty but still below the
/// threshold, the smallest shown bucket joins it, so that "other" (which a reader could also get as
/// the total minus the shown buckets) never describes fewer than `min_bucket` instances.
pub fn fold_small<K: Ord>(buckets: Vec<(K, i64)>, min_bucket: i64) -> Folded<K> {
    fold_into_other(buckets, 0, min_bucket)
}

/// [`fold_small`] with `unlabelled` instances in "other" from the start: those whose label may not
/// be published whatever their number.
fn fold_into_other<K: Ord>(
    mut buckets: Vec<(K, i64)>,
    unlabelled: i64,
    min_bucket: i64,
) -> Folded<K> {
    buckets.retain(|(_, count)| *count > 0);
    buckets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let split = buckets.partition_point(|(_, count)| *count >= min_bucket);
    let mut other: i64 = unlabelled + buckets[split..].iter().map(|(_, count)| count).sum::<i64>();
    buckets.truncate(split);
    while other > 0 && other < min_bucket {
        match buckets.pop() {
            Some((_, count)) => other += count,
            None => break,
        }
    }
    let other = (other == 0 || other >= min_bucket).then_some(other);
    Folded {
        shown: buckets,
        other,
    }
}

fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

fn family_name(family: &str) -> String {
    product_name(ProductFamily::from_name(family)).1.to_owned()
}

fn feature_name(feature: &str) -> String {
    match feature {
        "alerting" => "Alerting",
        "advisors" => "Advisors",
        "backup_management" => "Backup Management",
        "dbaas" => "DBaaS",
        "access_control" => "Access control",
        "updates_disabled" => "Updates switched off",
        other => other,
    }
    .to_owned()
}

fn database_name(database: &str) -> String {
    match database {
        "mysql" => "MySQL",
        "mongodb" => "MongoDB",
        "postgresql" => "PostgreSQL",
        other => other,
    }
    .to_owned()
}

/// Weeks of a year ending with the snapshot day's week, as the weekly views date them.
fn year_of_weeks(rollups: &StatsRollups) -> Vec<NaiveDate> {
    let weeks: BTreeSet<NaiveDate> = rollups
        .weekly_activity
        .iter()
        .map(|row| row.week_start)
        .chain(rollups.weekly_versions.iter().map(|row| row.week_start))
        .collect();
    weeks.into_iter().collect()
}

impl Statistics {
    /// Builds the published numbers from the rollups, suppressing every bucket below `min_bucket`.
    pub fn from_rollups(rollups: &StatsRollups, min_bucket: i64) -> Self {
        let min_bucket = min_bucket.max(1);
        let weeks = year_of_weeks(rollups);
        Self {
            snapshot_day: rollups.snapshot.map(|(day, _)| day),
            refreshed_at: rollups.snapshot.map(|(_, at)| at),
            min_bucket,
            active_window_days: ACTIVE_WINDOW_DAYS,
            active_instances: active_instances(rollups, &weeks, min_bucket),
            release_uptake: release_uptake(rollups, &weeks, min_bucket),
            pmm_features: pmm_features(rollups, min_bucket),
            monitored_databases: monitored_databases(rollups, min_bucket),
            countries: countries(rollups, min_bucket),
        }
    }
}

fn active_instances(
    rollups: &StatsRollups,
    weeks: &[NaiveDate],
    min_bucket: i64,
) -> ActiveInstances {
    let mut by_week: BTreeMap<NaiveDate, Vec<(String, i64)>> = BTreeMap::new();
    for row in &rollups.weekly_activity {
        by_week
            .entry(row.week_start)
            .or_default()
            .push((row.product_family.clone(), row.active_instances));
    }
    let mut values: HashMap<String, Vec<Option<i64>>> = HashMap::new();
    let mut other = Vec::with_capacity(weeks.len());
    for (index, week) in weeks.iter().enumerate() {
        let folded = fold_small(by_week.remove(week).unwrap_or_default(), min_bucket);
        for (family, count) in folded.shown {
            values
                .entry(family)
                .or_insert_with(|| vec![None; weeks.len()])[index] = Some(count);
        }
        other.push(folded.other);
    }
    let mut products: Vec<ProductSeries> = values
        .into_iter()
        .map(|(family, active_instances)| ProductSeries {
            name: family_name(&family),
            product_family: family,
            active_instances,
        })
        .collect();
    products.sort_by_key(|series| {
        (
            std::cmp::Reverse(last_published(&series.active_instances)),
            series.product_family.clone(),
        )
    });
    ActiveInstances {
        weeks: weeks.to_vec(),
        products,
        other,
    }
}

/// The most recent published value of a weekly series, by which products are listed largest first.
fn last_published(values: &[Option<i64>]) -> Option<i64> {
    values.iter().rev().flatten().next().copied()
}

/// What instances without a version are listed as.
const UNKNOWN_VERSION: &str = "unknown";

/// Longest version or release line the page shows; Percona's longest are about 12 characters.
const MAX_LABEL_CHARS: usize = 24;

/// Whether a version or release line, which any client can report, may be shown on the public page:
/// it must read as a release does (`3.1.0`, `16`, `8.0.36-28`, `8.0.35-27.1`, `2.41.1-rc1`), 1 to 4
/// numbers of up to 5 digits, then at most two suffixes of up to 8 letters and digits, each holding a
/// digit. Anything else (a sentence, a URL) is counted in "other" but never published, so a handful
/// of fake instances cannot put text on the page.
pub fn is_release_label(text: &str) -> bool {
    if text.is_empty() || text.len() > MAX_LABEL_CHARS {
        return false;
    }
    let core_end = text.find(['-', '+', '~', '_']).unwrap_or(text.len());
    let (core, suffix) = text.split_at(core_end);
    let numbers: Vec<&str> = core.split('.').collect();
    let core_ok = numbers.len() <= 4
        && numbers
            .iter()
            .all(|n| (1..=5).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
    if !core_ok {
        return false;
    }
    if suffix.is_empty() {
        return true;
    }
    let segments: Vec<&str> = suffix[1..].split(['-', '.', '+', '~', '_']).collect();
    segments.len() <= 2
        && segments.iter().all(|segment| {
            (1..=8).contains(&segment.len())
                && segment.bytes().all(|b| b.is_ascii_alphanumeric())
                && segment.bytes().any(|b| b.is_ascii_digit())
        })
}

fn release_uptake(
    rollups: &StatsRollups,
    weeks: &[NaiveDate],
    min_bucket: i64,
) -> Vec<ReleaseUptake> {
    let week_index: HashMap<NaiveDate, usize> = weeks
        .iter()
        .enumerate()
        .map(|(i, week)| (*week, i))
        .collect();
    let mut totals: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for row in &rollups.weekly_activity {
        if let Some(&index) = week_index.get(&row.week_start) {
            totals
                .entry(&row.product_family)
                .or_insert_with(|| vec![0; weeks.len()])[index] = row.active_instances;
        }
    }
    let mut cells: HashMap<(&str, usize), Vec<(String, i64)>> = HashMap::new();
    for row in &rollups.weekly_versions {
        if let Some(&index) = week_index.get(&row.week_start) {
            cells
                .entry((&row.product_family, index))
                .or_default()
                .push((row.version.clone(), row.active_instances));
        }
    }

    let mut uptake: Vec<ReleaseUptake> = totals
        .into_iter()
        .filter_map(|(family, totals)| uptake_of(family, weeks, &totals, &mut cells, min_bucket))
        .collect();
    uptake.sort_by_key(|product| {
        (
            std::cmp::Reverse(last_published(&product.active_instances)),
            product.product_family.clone(),
        )
    });
    uptake
}

fn uptake_of<'a>(
    family: &'a str,
    weeks: &[NaiveDate],
    totals: &[i64],
    cells: &mut HashMap<(&'a str, usize), Vec<(String, i64)>>,
    min_bucket: i64,
) -> Option<ReleaseUptake> {
    let folded: Vec<Folded<String>> = totals
        .iter()
        .enumerate()
        .map(|(index, &total)| {
            let mut buckets = cells.remove(&(family, index)).unwrap_or_default();
            let unlabelled: i64 = buckets
                .iter()
                .filter(|(version, _)| !is_release_label(version))
                .map(|(_, count)| count)
                .sum();
            buckets.retain(|(version, _)| is_release_label(version));
            let versioned: i64 = unlabelled + buckets.iter().map(|(_, count)| count).sum::<i64>();
            if total > versioned {
                buckets.push((UNKNOWN_VERSION.to_owned(), total - versioned));
            }
            fold_into_other(buckets, unlabelled, min_bucket)
        })
        .collect();
    // The versions drawn: every one published in the latest week, then those with the most
    // instance-weeks over the year, at most MAX_VERSIONS; stacked from the oldest at the bottom to
    // the newest on top.
    let latest = folded.iter().rposition(|week| !week.shown.is_empty())?;
    let mut published: HashMap<&str, (bool, i64, usize)> = HashMap::new();
    for (index, week) in folded.iter().enumerate() {
        for (version, count) in &week.shown {
            let entry = published.entry(version).or_insert((false, 0, index));
            entry.0 |= index == latest;
            entry.1 += count;
        }
    }
    let mut ranked: Vec<(&str, (bool, i64, usize))> = published.into_iter().collect();
    ranked.sort_by(|a, b| {
        (b.1.0, b.1.1)
            .cmp(&(a.1.0, a.1.1))
            .then_with(|| a.0.cmp(b.0))
    });
    ranked.truncate(MAX_VERSIONS);
    ranked.sort_by(|a, b| a.1.2.cmp(&b.1.2).then_with(|| a.0.cmp(b.0)));
    let drawn: Vec<String> = ranked
        .into_iter()
        .map(|(version, _)| version.to_owned())
        .collect();

    let mut versions: Vec<VersionSeries> = drawn
        .iter()
        .map(|version| VersionSeries {
            version: version.clone(),
            values: VersionValues {
                active_instances: vec![None; weeks.len()],
                share: vec![None; weeks.len()],
            },
        })
        .collect();
    let mut other = VersionValues {
        active_instances: vec![None; weeks.len()],
        share: vec![None; weeks.len()],
    };
    let mut published_totals = vec![None; weeks.len()];
    for (index, week) in folded.into_iter().enumerate() {
        let Some(mut rest) = week.other else { continue };
        let total = totals[index];
        published_totals[index] = Some(total);
        for (version, count) in week.shown {
            match drawn.iter().position(|drawn| *drawn == version) {
                Some(position) => {
                    versions[position].values.active_instances[index] = Some(count);
                    versions[position].values.share[index] = Some(share(count, total));
                }
                None => rest += count,
            }
        }
        other.active_instances[index] = Some(rest);
        other.share[index] = Some(share(rest, total));
    }
    Some(ReleaseUptake {
        product_family: family.to_owned(),
        name: family_name(family),
        weeks: weeks.to_vec(),
        active_instances: published_totals,
        versions,
        other,
    })
}

fn pmm_features(rollups: &StatsRollups, min_bucket: i64) -> Option<PmmFeatures> {
    let active_servers = rollups.pmm_features.first()?.active_servers;
    if active_servers < min_bucket {
        return None;
    }
    // A share says how many servers have the feature and how many do not: both must be large enough.
    let publishable = |count: i64| count == 0 || count >= min_bucket;
    let features = rollups
        .pmm_features
        .iter()
        .map(|row| {
            let published = publishable(row.enabled_servers)
                && publishable(row.active_servers - row.enabled_servers);
            FeatureStat {
                name: feature_name(&row.feature),
                feature: row.feature.clone(),
                enabled_servers: published.then_some(row.enabled_servers),
                share: published.then(|| share(row.enabled_servers, row.active_servers)),
            }
        })
        .collect();
    Some(PmmFeatures {
        active_servers,
        features,
    })
}

fn monitored_databases(rollups: &StatsRollups, min_bucket: i64) -> Vec<MonitoredDatabase> {
    // One PMM server may monitor several lines, so small lines cannot be added up into an "other"
    // whose server count is known; they are left out.
    let mut by_database: BTreeMap<&str, Vec<DatabaseLineStat>> = BTreeMap::new();
    for row in &rollups.database_lines {
        let lines = by_database.entry(&row.database).or_default();
        let publishable_line = row.line.as_deref().is_none_or(is_release_label);
        if row.pmm_servers >= min_bucket && publishable_line {
            lines.push(DatabaseLineStat {
                line: row
                    .line
                    .clone()
                    .unwrap_or_else(|| UNKNOWN_VERSION.to_owned()),
                pmm_servers: row.pmm_servers,
                services: row.services,
                share_of_services: row.share_of_services,
            });
        }
    }
    by_database
        .into_iter()
        .filter(|(_, lines)| !lines.is_empty())
        .map(|(database, mut lines)| {
            lines.sort_by(|a, b| {
                b.services
                    .cmp(&a.services)
                    .then_with(|| a.line.cmp(&b.line))
            });
            MonitoredDatabase {
                database: database.to_owned(),
                name: database_name(database),
                lines,
            }
        })
        .collect()
}

fn countries(rollups: &StatsRollups, min_bucket: i64) -> Countries {
    let buckets: Vec<(Option<String>, i64)> = rollups
        .countries
        .iter()
        .map(|row| (row.country_code.clone(), row.active_instances))
        .collect();
    let total: i64 = buckets.iter().map(|(_, count)| count).sum();
    let folded = fold_small(buckets, min_bucket);
    if folded.other.is_none() {
        return Countries::default();
    }
    Countries {
        total,
        countries: folded
            .shown
            .into_iter()
            .map(|(code, count)| CountryStat {
                name: match code.as_deref() {
                    Some(code) => countries::name(code).unwrap_or(code).to_owned(),
                    None => "Unknown".to_owned(),
                },
                country_code: code,
                active_instances: count,
                share: share(count, total),
            })
            .collect(),
        other: folded.other,
    }
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

/// A chart with the table of its numbers.
pub struct Figure {
    pub svg: String,
    pub legend: Vec<LegendEntry>,
    pub table: Table,
}

pub struct LegendEntry {
    pub label: String,
    pub class: &'static str,
}

/// A table of numbers: a header row, then rows that start with a row header.
pub struct Table {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

#[derive(Template)]
#[template(path = "stats.html")]
pub struct StatsPage<'a> {
    pub stats: &'a Statistics,
    pub active: Option<Figure>,
    pub uptake: Vec<(String, Figure)>,
    pub features: Option<Figure>,
    pub databases: Vec<(String, Figure)>,
    pub countries: Option<Figure>,
    pub snapshot_day: String,
    pub refreshed_at: String,
    pub asset_version: &'static str,
}

fn published(value: Option<i64>) -> String {
    value.map_or_else(|| "–".to_owned(), thousands)
}

fn week_label(week: NaiveDate) -> String {
    week.format("%Y-%m-%d").to_string()
}

fn render_svg(template: &impl Template) -> Result<String, WebError> {
    template.render().map_err(|source| WebError::Render {
        page: "statistics",
        source,
    })
}

fn active_figure(stats: &Statistics) -> Result<Option<Figure>, WebError> {
    let active = &stats.active_instances;
    if active.products.is_empty() {
        return Ok(None);
    }
    let mut series: Vec<TimeSeries<'_>> = active
        .products
        .iter()
        .enumerate()
        .map(|(index, product)| TimeSeries {
            label: &product.name,
            class: series_class(index),
            values: &product.active_instances,
        })
        .collect();
    let other_shown = active.other.iter().any(|value| value.unwrap_or(0) > 0);
    if other_shown {
        series.push(TimeSeries {
            label: "Other products",
            class: charts::OTHER_CLASS,
            values: &active.other,
        });
    }
    let latest: Vec<String> = active
        .products
        .iter()
        .filter_map(|product| {
            let last = active.weeks.len().checked_sub(1)?;
            product.active_instances[last]
                .map(|count| format!("{}: {}", product.name, thousands(count)))
        })
        .collect();
    let caption = Caption {
        id: "active-chart".into(),
        title: "Active instances per product, weekly".into(),
        description: format!(
            "Lines per product over the last year. In the latest week: {}.",
            if latest.is_empty() {
                "no product published".to_owned()
            } else {
                latest.join("; ")
            }
        ),
    };
    let svg = render_svg(&charts::line_chart(caption, &active.weeks, &series))?;
    let mut columns: Vec<String> = active.products.iter().map(|p| p.name.clone()).collect();
    if other_shown {
        columns.push("Other products".into());
    }
    let rows = active
        .weeks
        .iter()
        .enumerate()
        .rev()
        .map(|(index, week)| {
            let mut cells: Vec<String> = active
                .products
                .iter()
                .map(|p| published(p.active_instances[index]))
                .collect();
            if other_shown {
                cells.push(published(active.other[index]));
            }
            (week_label(*week), cells)
        })
        .collect();
    Ok(Some(Figure {
        svg,
        legend: series
            .iter()
            .map(|s| LegendEntry {
                label: s.label.to_owned(),
                class: s.class,
            })
            .collect(),
        table: Table {
            caption: "Active instances per product, by week (latest first)".into(),
            columns: std::iter::once("Week of".to_owned())
                .chain(columns)
                .collect(),
            rows,
        },
    }))
}

fn uptake_figure(uptake: &ReleaseUptake, index: usize) -> Result<Figure, WebError> {
    let other_shown = uptake
        .other
        .active_instances
        .iter()
        .any(|v| v.unwrap_or(0) > 0);
    // "Other versions" (mostly old ones) at the bottom of each column, the newest version on top.
    let mut series: Vec<(&str, &'static str, &[Option<f64>])> = Vec::new();
    if other_shown {
        series.push((
            "Other versions",
            charts::OTHER_CLASS,
            uptake.other.share.as_slice(),
        ));
    }
    series.extend(uptake.versions.iter().enumerate().map(|(i, version)| {
        (
            version.version.as_str(),
            series_class(i),
            version.values.share.as_slice(),
        )
    }));
    let last = uptake.weeks.len().saturating_sub(1);
    let leaders: Vec<String> = uptake
        .versions
        .iter()
        .filter_map(|v| Some((v.version.as_str(), v.values.share.get(last).copied()??)))
        .map(|(version, share)| format!("{version} {}", percent(share)))
        .collect();
    let caption = Caption {
        id: format!("uptake-chart-{index}"),
        title: format!(
            "{}: share of active instances per version, weekly",
            uptake.name
        ),
        description: format!(
            "One column per week over the last year, split by version. In the latest week: {}.",
            if leaders.is_empty() {
                "nothing published".to_owned()
            } else {
                leaders.join(", ")
            }
        ),
    };
    let svg = render_svg(&charts::share_columns(caption, &uptake.weeks, &series))?;
    let mut columns: Vec<String> = vec!["Week of".into(), "Active instances".into()];
    columns.extend(uptake.versions.iter().map(|v| v.version.clone()));
    if other_shown {
        columns.push("Other versions".into());
    }
    let cell = |values: &VersionValues, week: usize| match (
        values.share[week],
        values.active_instances[week],
    ) {
        (Some(share), Some(count)) if count > 0 => {
            format!("{} ({})", percent(share), thousands(count))
        }
        (Some(_), Some(_)) => "0".to_owned(),
        _ => "–".to_owned(),
    };
    let rows = uptake
        .weeks
        .iter()
        .enumerate()
        .rev()
        .filter(|(week, _)| uptake.active_instances[*week].is_some())
        .map(|(week, monday)| {
            let mut cells = vec![published(uptake.active_instances[week])];
            cells.extend(uptake.versions.iter().map(|v| cell(&v.values, week)));
            if other_shown {
                cells.push(cell(&uptake.other, week));
            }
            (week_label(*monday), cells)
        })
        .collect();
    Ok(Figure {
        svg,
        legend: series
            .iter()
            .cycle()
            .skip(usize::from(other_shown))
            .take(series.len())
            .map(|(label, class, _)| LegendEntry {
                label: (*label).to_owned(),
                class,
            })
            .collect(),
        table: Table {
            caption: format!(
                "{}: share of active instances per version, by week (latest first)",
                uptake.name
            ),
            columns,
            rows,
        },
    })
}

fn features_figure(features: &PmmFeatures, min_bucket: i64) -> Result<Figure, WebError> {
    let rows: Vec<(String, f64, String)> = features
        .features
        .iter()
        .map(|f| match f.share {
            Some(share) => (f.name.clone(), share, percent(share)),
            None => (f.name.clone(), 0.0, format!("not shown (< {min_bucket})")),
        })
        .collect();
    let caption = Caption {
        id: "features-chart".into(),
        title: "PMM features in use".into(),
        description: format!(
            "Share of the {} active PMM servers with each feature on: {}.",
            thousands(features.active_servers),
            rows.iter()
                .map(|(name, _, value)| format!("{name} {value}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let svg = render_svg(&charts::bar_chart(caption, &rows))?;
    Ok(Figure {
        svg,
        legend: Vec::new(),
        table: Table {
            caption: format!(
                "PMM features on {} active PMM servers",
                thousands(features.active_servers)
            ),
            columns: vec![
                "Feature".into(),
                "Servers with it on".into(),
                "Share".into(),
            ],
            rows: features
                .features
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        vec![
                            published(f.enabled_servers),
                            f.share.map_or_else(|| "–".to_owned(), percent),
                        ],
                    )
                })
                .collect(),
        },
    })
}

fn database_figure(database: &MonitoredDatabase) -> Result<Figure, WebError> {
    let rows: Vec<(String, f64, String)> = database
        .lines
        .iter()
        .map(|l| {
            (
                format!("{} {}", database.name, l.line),
                l.share_of_services,
                percent(l.share_of_services),
            )
        })
        .collect();
    let caption = Caption {
        id: format!("database-chart-{}", database.database),
        title: format!("Monitored {} services by release line", database.name),
        description: format!(
            "Share of the {} services PMM servers monitor: {}.",
            database.name,
            rows.iter()
                .map(|(name, _, value)| format!("{name} {value}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let svg = render_svg(&charts::bar_chart(caption, &rows))?;
    Ok(Figure {
        svg,
        legend: Vec::new(),
        table: Table {
            caption: format!("Monitored {} services by release line", database.name),
            columns: vec![
                "Line".into(),
                "Services".into(),
                "PMM servers".into(),
                "Share of services".into(),
            ],
            rows: database
                .lines
                .iter()
                .map(|l| {
                    (
                        l.line.clone(),
                        vec![
                            thousands(l.services),
                            thousands(l.pmm_servers),
                            percent(l.share_of_services),
                        ],
                    )
                })
                .collect(),
        },
    })
}

fn countries_figure(countries: &Countries) -> Result<Option<Figure>, WebError> {
    if countries.countries.is_empty() {
        return Ok(None);
    }
    let largest = countries
        .countries
        .first()
        .map_or(1, |c| c.active_instances)
        .max(1);
    let mut rows: Vec<(String, f64, String)> = countries
        .countries
        .iter()
        .take(MAX_CHART_COUNTRIES)
        .map(|c| {
            (
                c.name.clone(),
                c.active_instances as f64 / largest as f64,
                percent(c.share),
            )
        })
        .collect();
    let beyond_chart: i64 = countries
        .countries
        .iter()
        .skip(MAX_CHART_COUNTRIES)
        .map(|c| c.active_instances)
        .sum::<i64>()
        + countries.other.unwrap_or(0);
    if beyond_chart > 0 {
        rows.push((
            "All other countries".into(),
            beyond_chart as f64 / largest as f64,
            percent(share(beyond_chart, countries.total)),
        ));
    }
    let caption = Caption {
        id: "countries-chart".into(),
        title: "Countries of active instances".into(),
        description: format!(
            "Share of {} active instances by country: {}.",
            thousands(countries.total),
            rows.iter()
                .take(5)
                .map(|(name, _, value)| format!("{name} {value}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let svg = render_svg(&charts::bar_chart(caption, &rows))?;
    let mut table_rows: Vec<(String, Vec<String>)> = countries
        .countries
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                vec![thousands(c.active_instances), percent(c.share)],
            )
        })
        .collect();
    if let Some(other) = countries.other.filter(|other| *other > 0) {
        table_rows.push((
            "Other countries".into(),
            vec![thousands(other), percent(share(other, countries.total))],
        ));
    }
    Ok(Some(Figure {
        svg,
        legend: Vec::new(),
        table: Table {
            caption: format!(
                "Active instances by country ({} in all)",
                thousands(countries.total)
            ),
            columns: vec!["Country".into(), "Active instances".into(), "Share".into()],
            rows: table_rows,
        },
    }))
}

impl Statistics {
    pub fn render_page(&self) -> Result<String, WebError> {
        let page = StatsPage {
            stats: self,
            active: active_figure(self)?,
            uptake: self
                .release_uptake
                .iter()
                .enumerate()
                .map(|(index, uptake)| Ok((uptake.name.clone(), uptake_figure(uptake, index)?)))
                .collect::<Result<_, WebError>>()?,
            features: self
                .pmm_features
                .as_ref()
                .map(|features| features_figure(features, self.min_bucket))
                .transpose()?,
            databases: self
                .monitored_databases
                .iter()
                .map(|database| Ok((database.name.clone(), database_figure(database)?)))
                .collect::<Result<_, WebError>>()?,
            countries: countries_figure(&self.countries)?,
            snapshot_day: self
                .snapshot_day
                .map(|day| day.format("%-d %B %Y").to_string())
                .unwrap_or_default(),
            refreshed_at: self
                .refreshed_at
                .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            asset_version: asset_version(),
        };
        page.render().map_err(|source| WebError::Render {
            page: "statistics",
            source,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------

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
    fn respond(&self, request: &HeaderMap, content_type: &'static str) -> Response {
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
    #[error(transparent)]
    Render(#[from] WebError),
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

/// `/stats` and `/stats.json`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(STATS_PATH, get(stats_page))
        .route(STATS_JSON_PATH, get(stats_json))
}

async fn stats_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    state
        .stats
        .current()
        .html
        .respond(&headers, "text/html; charset=utf-8")
}

async fn stats_json(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    state
        .stats
        .current()
        .json
        .respond(&headers, "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(folded: &Folded<&'static str>) -> Vec<&'static str> {
        folded.shown.iter().map(|(key, _)| *key).collect()
    }

    #[test]
    fn only_release_shaped_labels_are_published() {
        for label in [
            "3.1.0",
            "16",
            "8.0.36-28",
            "8.0.35-27.1",
            "2.41.1-rc1",
            "7.0.12-7",
            "1.0.0+b20",
        ] {
            assert!(is_release_label(label), "{label}");
        }
        for label in [
            "",
            "SECURITY NOTICE https://evil.example/fix",
            "v3.1.0",
            "8.0 beta",
            "8.0-evil1-fix2-now3",
            "8.0-visit",
            "1.2.3.4.5",
            "123456.0",
            "8..0",
            "8.0-",
            "8.0.36-28<b>",
            "8.0.36-2222222222",
        ] {
            assert!(!is_release_label(label), "{label}");
        }
    }

    #[test]
    fn unlabelled_instances_count_in_other() {
        let folded = fold_into_other(vec![("3.0.0", 12), ("3.1.0", 11)], 3, 10);
        assert_eq!(folded.shown, vec![("3.0.0", 12)]);
        assert_eq!(
            folded.other,
            Some(14),
            "too few unlabelled to stand alone: the smallest shown joins them"
        );
        let folded = fold_into_other(vec![("3.0.0", 12)], 10, 10);
        assert_eq!(folded.shown, vec![("3.0.0", 12)]);
        assert_eq!(folded.other, Some(10));
    }

    #[test]
    fn small_buckets_are_folded_into_other() {
        let folded = fold_small(vec![("a", 50), ("b", 4), ("c", 30), ("d", 7)], 10);
        assert_eq!(keys(&folded), ["a", "c"]);
        assert_eq!(folded.other, Some(11));
    }

    #[test]
    fn a_small_other_takes_the_smallest_shown_bucket_with_it() {
        // "other" alone would be 3, and total minus the shown buckets would reveal it.
        let folded = fold_small(vec![("a", 50), ("b", 3), ("c", 12)], 10);
        assert_eq!(keys(&folded), ["a"]);
        assert_eq!(folded.other, Some(15));
    }

    #[test]
    fn a_group_smaller_than_the_threshold_publishes_nothing() {
        let folded = fold_small(vec![("a", 6), ("b", 3)], 10);
        assert!(folded.shown.is_empty());
        assert_eq!(folded.other, None);
    }

    #[test]
    fn empty_buckets_are_not_published_and_nothing_small_is() {
        let folded = fold_small(vec![("a", 10), ("b", 0)], 10);
        assert_eq!(keys(&folded), ["a"]);
        assert_eq!(folded.other, Some(0));
        for min in 1..40 {
            let folded = fold_small(vec![("a", 25), ("b", 9), ("c", 1), ("d", 14)], min);
            assert!(folded.shown.iter().all(|(_, n)| *n >= min));
            assert!(folded.other.is_none_or(|n| n == 0 || n >= min));
            let total: i64 =
                folded.shown.iter().map(|(_, n)| n).sum::<i64>() + folded.other.unwrap_or(0);
            assert!(total == 49 || folded.other.is_none());
        }
    }

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

    #[test]
    fn the_empty_page_renders() {
        let statistics = Statistics::from_rollups(&StatsRollups::default(), 10);
        let html = statistics.render_page().unwrap();
        assert!(html.contains("No statistics yet"));
    }
}

//! The published model and its privacy rule: [`Statistics`], built from the analysts' rollups by
//! [`Statistics::from_rollups`], is everything `/stats` and `/stats.json` publish.
//!
//! What it guarantees: the rollups hold counts, never instances, and no count built here describes
//! fewer than `min_bucket` (`STATS_MIN_BUCKET`) instances. [`fold_small`] folds any bucket below the
//! threshold into "other" and, if "other" itself would be that small, folds larger buckets in with
//! it until it is not, so that no published count and no difference of published counts (such as
//! the total minus the shown buckets) describes fewer instances than the threshold; a group smaller
//! than the threshold as a whole publishes nothing. Labels a client chooses (versions, release
//! lines) are published only when they read as a release does ([`is_release_label`]); the others
//! are counted in "other" whatever their number.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::countries;
use crate::catalogue::product_name;
use crate::report::ProductFamily;
use crate::store::StatsRollups;

/// Versions drawn per product; the rest join "Other versions".
const MAX_VERSIONS: usize = 10;

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

pub(super) fn share(part: i64, whole: i64) -> f64 {
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
///
/// Stricter than [`crate::label::is_plausible_label`], which decides what may be stored as a
/// version at all (a bounded printable label, so that analysts see every one): a sentence with a link
/// is a plausible label, but not one to publish.
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
}

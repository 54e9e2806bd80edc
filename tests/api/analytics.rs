//! The analysts' views against answers computed here, in Rust, from the reports themselves: a
//! generated history is written through `store::insert_reports`, the rollups are refreshed, and
//! every view is compared with what the reports say.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::common::{self, TestApp, TestDatabase, rows_as_text};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc};
use sqlx::{AssertSqlSafe, PgPool, Row};
use telemetry_server::ingest::{Metric, ProductFamily, parse_report_request};
use telemetry_server::label::is_plausible_label;
use telemetry_server::store::{self, NewReport};
use telemetry_server::synthetic::{Settings, Simulation};
use telemetry_server::typed_metrics::TypedMetrics;
use uuid::Uuid;

const WINDOW: i64 = 30;
const PMM: &str = "PRODUCT_FAMILY_PMM";

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
}

fn history_settings(instances: u32, days: u32, seed: u64) -> Settings {
    Settings {
        instances,
        days,
        end_date: end_date(),
        seed,
        batch_size: 500,
        concurrency: 2,
    }
}

async fn write(pool: &PgPool, reports: &[NewReport]) {
    for batch in reports.chunks(500) {
        store::insert_reports(pool, store::Topology::OneServer, batch)
            .await
            .expect("batch stored");
    }
}

/// Moves everything stored so far a day into the past, and the last refresh an hour back, so that
/// the next refresh sees only what arrives from now on as new. That refresh would have forgotten
/// the stale days noted a day before it (analytics.finish_refresh()).
async fn arrived_long_before_the_last_refresh(pool: &PgPool) {
    common::partitions_for_aging(pool, 1).await;
    sqlx::query("UPDATE reports SET received_at = received_at - interval '1 day'")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM analytics.stale_days")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE analytics.rollup_state SET refreshed_at = refreshed_at - interval '1 hour'",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Generates the history, stores it day by day, refreshes the rollups as of the day after, and
/// returns every report.
async fn load_history(pool: &PgPool, settings: &Settings) -> Vec<NewReport> {
    let mut simulation = Simulation::new(settings);
    let mut all = Vec::new();
    while let Some((_, day)) = simulation.next_day() {
        write(pool, &day).await;
        all.extend(day);
    }
    store::refresh_rollups(pool, settings.end_date + Days::new(1))
        .await
        .expect("rollups refresh");
    all
}

fn first<'a>(report: &'a NewReport, key: &str) -> Option<&'a str> {
    report
        .report
        .metrics
        .iter()
        .find(|metric| metric.key == key)
        .map(|metric| metric.value.as_str())
}

fn all_values(report: &NewReport, key: &str) -> Vec<String> {
    report
        .report
        .metrics
        .iter()
        .filter(|metric| metric.key == key && !metric.value.is_empty())
        .map(|metric| metric.value.clone())
        .collect()
}

fn flag(value: Option<&str>) -> Option<bool> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

fn count(value: Option<&str>) -> Option<i64> {
    value?.trim().parse::<f64>().ok().map(|v| v.round() as i64)
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap())
        .collect()
}

fn release_line(subject: &str, version: &str) -> Option<String> {
    let parts = version_key(version);
    let major = *parts.first()?;
    if subject == PMM
        || subject == "PRODUCT_FAMILY_EVEREST"
        || ((subject == "postgresql" || subject == "PRODUCT_FAMILY_POSTGRESQL") && major >= 10)
    {
        return Some(major.to_string());
    }
    Some(
        parts
            .iter()
            .take(2)
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// percentile_cont: linear interpolation between the closest ranks.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let position = p * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

/// A percentile as the views publish it (`analytics.round_percentile`): to one decimal.
fn published(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn ratio(part: i64, whole: i64) -> f64 {
    part as f64 / whole as f64
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 0.000_051,
        "{what}: {actual} != {expected}"
    );
}

type Key = (Uuid, &'static str);
type ReleaseRow = (
    String,
    String,
    Option<String>,
    NaiveDate,
    Option<NaiveDate>,
    i32,
    Option<f64>,
    i32,
    bool,
);
type AdoptionRow = (
    String,
    String,
    NaiveDate,
    Option<i32>,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    bool,
);
/// active, reporting and new instances, complete, left-censored.
type ActivityCounts = (i32, i32, i32, bool, bool);
type UptakeRow = (String, NaiveDate, NaiveDate, i32, i32, Option<f64>, bool);
/// first_version, version, distribution_method, mysql_versions of an instance day.
type DerivedDay = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
);
type GraceRow = (Option<String>, i32, i32, i32, Option<f64>, i32);
type PathStats = (Vec<f64>, BTreeSet<Uuid>);
type FeatureReader = Box<dyn Fn(&NewReport) -> Option<bool>>;
type BackfilledDay = (
    NaiveDate,
    i32,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<bool>,
    Option<Vec<String>>,
);
type DayRow = (
    i32,
    DateTime<Utc>,
    DateTime<Utc>,
    Uuid,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<String>,
    Option<bool>,
    Option<Vec<String>>,
    Option<i32>,
);

/// The state of one instance on one day: its latest report of that day, its first, every version
/// it reported that day, and what it holds at the end of the day: the version of its latest report
/// so far that carried one and the country of its latest report so far that resolved.
#[derive(Clone)]
struct Day<'a> {
    latest: &'a NewReport,
    first: &'a NewReport,
    versions: BTreeSet<String>,
    version: Option<String>,
    country: Option<String>,
}

/// The reports seen the way the views see them.
struct Model<'a> {
    days: HashMap<Key, BTreeMap<NaiveDate, Day<'a>>>,
    first_seen: HashMap<Key, NaiveDate>,
    first_report: HashMap<Key, &'a NewReport>,
    version_first_seen: HashMap<(&'static str, String), NaiveDate>,
    first_day: NaiveDate,
    /// The last day in the rollups (the refresh ran as of the day after the history).
    today: NaiveDate,
}

fn order(report: &NewReport) -> (DateTime<Utc>, Uuid) {
    (report.report.created_at, report.report.report_id)
}

impl<'a> Model<'a> {
    fn new(reports: &'a [NewReport], today: NaiveDate) -> Self {
        let mut days: HashMap<Key, BTreeMap<NaiveDate, Day<'a>>> = HashMap::new();
        let mut first_report: HashMap<Key, &'a NewReport> = HashMap::new();
        let mut version_first_seen = HashMap::new();
        for report in reports {
            let key = (
                report.report.instance_id,
                report.report.product_family.as_str(),
            );
            let date = report.report.created_at.date_naive();
            let day = days.entry(key).or_default().entry(date).or_insert(Day {
                latest: report,
                first: report,
                versions: BTreeSet::new(),
                version: None,
                country: None,
            });
            day.versions.extend(report.report.version.clone());
            if order(report) > order(day.latest) {
                day.latest = report;
            }
            if order(report) < order(day.first) {
                day.first = report;
            }
            let earliest = first_report.entry(key).or_insert(report);
            if order(report) < order(earliest) {
                *earliest = report;
            }
            if let Some(version) = &report.report.version {
                let seen = version_first_seen
                    .entry((key.1, version.clone()))
                    .or_insert(date);
                *seen = (*seen).min(date);
            }
        }
        let mut by_instance: HashMap<Key, Vec<&'a NewReport>> = HashMap::new();
        for report in reports {
            by_instance
                .entry((
                    report.report.instance_id,
                    report.report.product_family.as_str(),
                ))
                .or_default()
                .push(report);
        }
        for (key, mut list) in by_instance {
            list.sort_by_key(|r| order(r));
            let (mut version, mut country) = (None, None);
            let mut list = list.into_iter().peekable();
            for (date, day) in days.get_mut(&key).unwrap().iter_mut() {
                while let Some(report) = list.next_if(|r| r.report.created_at.date_naive() <= *date)
                {
                    version = report.report.version.clone().or(version);
                    country = report.country_code.clone().or(country);
                }
                day.version = version.clone();
                day.country = country.clone();
            }
        }
        let first_seen = first_report
            .iter()
            .map(|(key, report)| (*key, report.report.created_at.date_naive()))
            .collect();
        let first_day = reports
            .iter()
            .map(|r| r.report.created_at.date_naive())
            .min()
            .unwrap();
        Self {
            days,
            first_seen,
            first_report,
            version_first_seen,
            first_day,
            today,
        }
    }

    fn dates(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        self.first_day.iter_days().take_while({
            let today = self.today;
            move |day| *day <= today
        })
    }

    /// Every instance active on `date` with the given window, with its latest day on or before it.
    fn active(&self, date: NaiveDate, window: i64) -> Vec<(Key, &Day<'a>)> {
        let earliest = date - Days::new((window - 1) as u64);
        self.days
            .iter()
            .filter_map(|(key, days)| {
                days.range(earliest..=date)
                    .next_back()
                    .map(|(_, day)| (*key, day))
            })
            .collect()
    }

    /// True when the window of `date` reaches back before the history's first day.
    fn left_censored(&self, date: NaiveDate) -> bool {
        date < self.first_day + Days::new((WINDOW - 1) as u64)
    }

    fn reported_on(&self, date: NaiveDate) -> Vec<Key> {
        self.days
            .iter()
            .filter(|(_, days)| days.contains_key(&date))
            .map(|(key, _)| *key)
            .collect()
    }

    fn family_active(&self, date: NaiveDate) -> HashMap<&'static str, i64> {
        let mut counts = HashMap::new();
        for ((_, family), _) in self.active(date, WINDOW) {
            *counts.entry(family).or_insert(0) += 1;
        }
        counts
    }

    fn pmm_active(&self, date: NaiveDate) -> Vec<&Day<'a>> {
        self.active(date, WINDOW)
            .into_iter()
            .filter(|((_, family), _)| *family == PMM)
            .map(|(_, day)| day)
            .collect()
    }
}

#[tokio::test]
async fn activity_views_count_instances_within_the_window() {
    let db = TestDatabase::migrated().await;
    let settings = history_settings(400, 75, 11);
    let reports = load_history(&db.pool, &settings).await;
    let today = end_date() + Days::new(1);
    let model = Model::new(&reports, today);

    // Daily, over the whole history.
    let rows: Vec<(NaiveDate, String, i32, i32, i32, bool, bool)> = sqlx::query_as(
        "SELECT day, product_family, active_instances, reporting_instances, new_instances, complete,
                left_censored
         FROM analytics.active_instances_daily",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let actual: BTreeMap<(NaiveDate, String), ActivityCounts> = rows
        .into_iter()
        .map(
            |(day, family, active, reporting, new, complete, censored)| {
                ((day, family), (active, reporting, new, complete, censored))
            },
        )
        .collect();
    let mut expected = BTreeMap::new();
    for date in model.dates() {
        let mut per_family: HashMap<&str, (i32, i32, i32)> = HashMap::new();
        for ((_, family), _) in model.active(date, WINDOW) {
            per_family.entry(family).or_default().0 += 1;
        }
        for key in model.reported_on(date) {
            per_family.entry(key.1).or_default().1 += 1;
            if model.first_seen[&key] == date {
                per_family.entry(key.1).or_default().2 += 1;
            }
        }
        for (family, (active, reporting, new)) in per_family {
            expected.insert(
                (date, family.to_owned()),
                (
                    active,
                    reporting,
                    new,
                    date < today,
                    model.left_censored(date),
                ),
            );
        }
    }
    assert!(
        expected.len() > 300,
        "history too small: {}",
        expected.len()
    );
    assert_eq!(actual, expected);

    // Any window, through the function: 7 and 30 days from the rollups, 45 days (longer than
    // the rollups keep) and a range past the last refresh from the daily facts.
    for (window, from, to) in [
        (7, end_date() - Days::new(20), end_date()),
        (30, end_date() - Days::new(5), today),
        (45, end_date() - Days::new(20), end_date()),
        (3, end_date() - Days::new(3), today + Days::new(2)),
    ] {
        let rows: Vec<(NaiveDate, String, i64)> =
            sqlx::query_as("SELECT * FROM analytics.active_instances($1::int, $2, $3)")
                .bind(window)
                .bind(from)
                .bind(to)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        let actual: BTreeMap<(NaiveDate, String), i64> = rows
            .into_iter()
            .map(|(day, family, active)| ((day, family), active))
            .collect();
        let families: BTreeSet<&str> = actual.keys().map(|(_, family)| family.as_str()).collect();
        let mut expected = BTreeMap::new();
        for date in from.iter_days().take_while(|day| *day <= to) {
            for family in &families {
                expected.insert((date, (*family).to_owned()), 0);
            }
            for ((_, family), _) in model.active(date, window) {
                *expected.entry((date, family.to_owned())).or_insert(0) += 1;
            }
        }
        assert_eq!(actual, expected, "window of {window} days");
    }
    let window_one: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
        "SELECT * FROM analytics.active_instances(1, $1, $1) WHERE product_family = $2",
    )
    .bind(end_date())
    .bind(PMM)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let reported_pmm = model
        .reported_on(end_date())
        .iter()
        .filter(|(_, family)| *family == PMM)
        .count() as i64;
    assert_eq!(window_one, vec![(end_date(), PMM.to_owned(), reported_pmm)]);
    let refused = sqlx::query("SELECT * FROM analytics.active_instances(0, $1, $1)")
        .bind(end_date())
        .execute(&db.pool)
        .await
        .expect_err("a window of 0 days is refused");
    assert!(refused.to_string().contains("window_days"), "{refused}");

    // Weekly and monthly.
    for (view, period) in [
        ("analytics.active_instances_weekly", "week"),
        ("analytics.active_instances_monthly", "month"),
    ] {
        let start_column = if period == "week" {
            "week_start"
        } else {
            "month_start"
        };
        let rows: Vec<(NaiveDate, String, i32, i32, i32, bool, bool)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {start_column}, product_family, active_instances, reporting_instances, new_instances, complete,
                    left_censored FROM {view}"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert!(!rows.is_empty());
        for (start, family, active, reporting, new, complete, censored) in rows {
            let end = if period == "week" {
                start + Days::new(6)
            } else {
                start.checked_add_months(chrono::Months::new(1)).unwrap() - Days::new(1)
            };
            assert_eq!(
                start,
                if period == "week" {
                    start - Days::new(start.weekday().num_days_from_monday().into())
                } else {
                    start.with_day(1).unwrap()
                }
            );
            let measured = end.min(today);
            let expected_active = model
                .active(measured, WINDOW)
                .iter()
                .filter(|((_, f), _)| *f == family)
                .count() as i32;
            let in_period = |day: &NaiveDate| *day >= start && *day <= end.min(today);
            let expected_reporting = model
                .days
                .iter()
                .filter(|((_, f), days)| *f == family && days.keys().any(in_period))
                .count() as i32;
            let expected_new = model
                .first_seen
                .iter()
                .filter(|((_, f), day)| *f == family && in_period(day))
                .count() as i32;
            assert_eq!(
                (active, reporting, new, complete, censored),
                (
                    expected_active,
                    expected_reporting,
                    expected_new,
                    end < today,
                    model.left_censored(start),
                ),
                "{view} {start} {family}"
            );
        }
    }
    db.cleanup().await;
}

#[tokio::test]
async fn version_views_follow_releases_legacy_lines_and_upgrades() {
    let db = TestDatabase::migrated().await;
    let settings = history_settings(400, 75, 23);
    let reports = load_history(&db.pool, &settings).await;
    let today = end_date() + Days::new(1);
    let snapshot = end_date();
    let model = Model::new(&reports, today);
    let family_active = model.family_active(snapshot);

    // Versions on the snapshot day, per family.
    let mut running: HashMap<(&str, String), i64> = HashMap::new();
    for ((_, family), day) in model.active(snapshot, WINDOW) {
        if let Some(version) = &day.version {
            *running.entry((family, version.clone())).or_default() += 1;
        }
    }

    // releases
    let rows: Vec<ReleaseRow> = sqlx::query_as(
        "SELECT product_family, version, line, first_seen, last_reported, active_instances,
                    share_of_family::float8, peak_active_instances, first_seen_censored
             FROM analytics.releases",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), model.version_first_seen.len());
    let replaced_within_a_day = model.days.values().flat_map(BTreeMap::values).any(|day| {
        day.latest.report.version.is_some()
            && day
                .versions
                .iter()
                .any(|version| Some(version) != day.latest.report.version.as_ref())
    });
    let versionless_latest = model
        .days
        .values()
        .flat_map(BTreeMap::values)
        .any(|day| day.latest.report.version.is_none() && day.version.is_some());
    assert!(
        versionless_latest,
        "the history has days whose latest report carried no version after one that did"
    );
    assert!(
        replaced_within_a_day,
        "the history has versions that were not the last of their day"
    );
    for (family, version, line, first_seen, last_reported, active, share, peak, censored) in rows {
        let family: &str = ProductFamily::from_name(&family).as_str();
        assert_eq!(
            first_seen,
            model.version_first_seen[&(family, version.clone())]
        );
        let expected_last = reports
            .iter()
            .filter(|r| {
                r.report.product_family.as_str() == family
                    && r.report.version.as_deref() == Some(&version)
            })
            .map(|r| r.report.created_at.date_naive())
            .max();
        assert_eq!(last_reported, expected_last);
        assert_eq!(line, release_line(family, &version));
        assert_eq!(censored, model.left_censored(first_seen));
        let expected_active = running
            .get(&(family, version.clone()))
            .copied()
            .unwrap_or(0);
        assert_eq!(i64::from(active), expected_active, "{family} {version}");
        match family_active.get(family) {
            Some(total) => assert_close(share.unwrap(), ratio(expected_active, *total), "share"),
            None => assert_eq!(share, None),
        }
        let expected_peak = model
            .dates()
            .map(|date| {
                model
                    .active(date, WINDOW)
                    .iter()
                    .filter(|((_, f), day)| {
                        *f == family && day.version.as_deref() == Some(&version)
                    })
                    .count() as i32
            })
            .max()
            .unwrap();
        assert_eq!(peak, expected_peak, "peak of {family} {version}");
    }

    // release_uptake_weekly, for PMM versions
    let rows: Vec<UptakeRow> = sqlx::query_as(
        "SELECT version, first_seen, week_start, weeks_since_first_seen, active_instances, share_of_family::float8,
                first_seen_censored
         FROM analytics.release_uptake_weekly WHERE product_family = $1",
    )
    .bind(PMM)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let pmm_versions: BTreeSet<&String> = model
        .version_first_seen
        .keys()
        .filter(|(family, _)| *family == PMM)
        .map(|(_, version)| version)
        .collect();
    let mut expected_rows = 0;
    for version in &pmm_versions {
        let first_seen = model.version_first_seen[&(PMM, (*version).clone())];
        let mut week = first_seen - Days::new(first_seen.weekday().num_days_from_monday().into());
        while week <= today {
            expected_rows += 1;
            week = week + Days::new(7);
        }
    }
    assert_eq!(rows.len(), expected_rows);
    for (version, first_seen, week_start, weeks_since, active, share, censored) in rows {
        assert_eq!(
            first_seen,
            model.version_first_seen[&(PMM, version.clone())]
        );
        assert_eq!(censored, model.left_censored(first_seen));
        let week_of_first =
            first_seen - Days::new(first_seen.weekday().num_days_from_monday().into());
        assert_eq!(
            i64::from(weeks_since),
            (week_start - week_of_first).num_days() / 7
        );
        let measured = (week_start + Days::new(6)).min(today);
        let active_pmm: Vec<_> = model.pmm_active(measured);
        let expected = active_pmm
            .iter()
            .filter(|day| day.version.as_deref() == Some(&version))
            .count() as i64;
        assert_eq!(
            i64::from(active),
            expected,
            "{version} in week {week_start}"
        );
        if active_pmm.is_empty() {
            assert_eq!(share, None);
        } else {
            assert_close(
                share.unwrap(),
                ratio(expected, active_pmm.len() as i64),
                "uptake share",
            );
        }
    }

    // instances_older_than
    let from = end_date() - Days::new(10);
    let rows: Vec<(NaiveDate, i32, i64, f64)> = sqlx::query_as(
        "SELECT day, active_instances, older_instances, share_older::float8
         FROM analytics.instances_older_than($1, '3.2.0', $2, $3)",
    )
    .bind(PMM)
    .bind(from)
    .bind(end_date())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 11);
    let mut some_older = false;
    for (day, active, older, share) in rows {
        let pmm = model.pmm_active(day);
        let expected_older = pmm
            .iter()
            .filter_map(|day| day.version.as_deref())
            .filter(|version| version_key(version) < version_key("3.2.0"))
            .count() as i64;
        some_older |= expected_older > 0;
        assert_eq!(
            (active as usize, older),
            (pmm.len(), expected_older),
            "{day}"
        );
        assert_close(
            share,
            ratio(expected_older, pmm.len() as i64),
            "older share",
        );
    }
    assert!(some_older, "the history has legacy PMM servers");
    let snapshot_only: Vec<(NaiveDate,)> =
        sqlx::query_as("SELECT day FROM analytics.instances_older_than($1, '3.2.0')")
            .bind(PMM)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(snapshot_only, vec![(snapshot,)]);

    // product_lines (PMM 2 vs 3, PS 5.7 / 8.0 / 8.4, ...)
    let rows: Vec<(String, Option<String>, i32, f64)> = sqlx::query_as(
        "SELECT product_family, line, active_instances, share_of_family::float8 FROM analytics.product_lines",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut expected: HashMap<(String, Option<String>), i64> = HashMap::new();
    for ((family, version), active) in &running {
        *expected
            .entry(((*family).to_owned(), release_line(family, version)))
            .or_default() += active;
    }
    assert_eq!(rows.len(), expected.len());
    assert!(
        rows.iter()
            .any(|(f, line, _, _)| f == PMM && line.as_deref() == Some("2"))
    );
    for (family, line, active, share) in rows {
        let want = expected[&(family.clone(), line.clone())];
        assert_eq!(i64::from(active), want, "{family} {line:?}");
        assert_close(
            share,
            ratio(want, family_active[family.as_str()]),
            "line share",
        );
    }

    // upgrade_paths and release_adoption
    let mut by_instance: HashMap<Key, Vec<&NewReport>> = HashMap::new();
    for report in &reports {
        by_instance
            .entry((
                report.report.instance_id,
                report.report.product_family.as_str(),
            ))
            .or_default()
            .push(report);
    }
    let mut paths: HashMap<(String, String, String), PathStats> = HashMap::new();
    let mut arrivals: HashMap<(String, String), Vec<f64>> = HashMap::new();
    for ((instance, family), mut list) in by_instance {
        list.retain(|r| r.report.version.is_some());
        list.sort_by_key(|r| order(r));
        for pair in list.windows(2) {
            let (from, to) = (
                pair[0].report.version.clone().unwrap(),
                pair[1].report.version.clone().unwrap(),
            );
            if from != to {
                let day = pair[1].report.created_at.date_naive();
                let days =
                    (day - model.version_first_seen[&(family, to.clone())]).num_days() as f64;
                let path = paths
                    .entry((family.to_owned(), from.clone(), to.clone()))
                    .or_default();
                path.0.push(days);
                path.1.insert(instance);
                if version_key(&to) >= version_key(&from) {
                    arrivals
                        .entry((family.to_owned(), to))
                        .or_default()
                        .push(days);
                }
            }
        }
    }
    let rows: Vec<(String, String, String, bool, i64, i64, f64)> = sqlx::query_as(
        "SELECT product_family, from_version, to_version, is_downgrade, upgrades, instances,
                median_days_after_first_seen FROM analytics.upgrade_paths",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), paths.len());
    assert!(rows.len() > 10, "only {} upgrade paths", rows.len());
    for (family, from, to, downgrade, upgrades, instances, median) in rows {
        let (days, who) = paths
            .get_mut(&(family.clone(), from.clone(), to.clone()))
            .unwrap();
        days.sort_by(f64::total_cmp);
        assert_eq!(downgrade, version_key(&to) < version_key(&from));
        assert_eq!(
            (upgrades as usize, instances as usize),
            (days.len(), who.len())
        );
        assert_eq!(
            median,
            published(percentile(days, 0.5)),
            "median days after first seen"
        );
    }
    let rows: Vec<AdoptionRow> = sqlx::query_as(
        "SELECT product_family, version, first_seen, days_since_previous_release, upgrades,
                    median_days_to_upgrade, p90_days_to_upgrade, share_within_30_days::float8,
                    first_seen_censored
             FROM analytics.release_adoption",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), model.version_first_seen.len());
    assert!(
        rows.iter().any(|row| row.3.is_some()) && rows.iter().any(|row| row.8),
        "releases both inside and after the censored start"
    );
    for (family, version, first_seen, since_previous, upgrades, median, p90, within_30, censored) in
        rows
    {
        assert_eq!(
            first_seen,
            model.version_first_seen
                [&(ProductFamily::from_name(&family).as_str(), version.clone())]
        );
        assert_eq!(censored, model.left_censored(first_seen));
        let family: &str = ProductFamily::from_name(&family).as_str();
        let line = release_line(family, &version);
        let previous = model
            .version_first_seen
            .iter()
            .filter(|((f, v), _)| {
                *f == family && release_line(f, v) == line && version_key(v) < version_key(&version)
            })
            .max_by_key(|((_, v), _)| version_key(v))
            .map(|(_, seen)| *seen);
        assert_eq!(
            since_previous.map(i64::from),
            previous
                .filter(|seen| !model.left_censored(*seen) && !censored)
                .map(|seen| (first_seen - seen).num_days()),
            "{family} {version}"
        );
        let mut days = arrivals
            .remove(&(family.to_owned(), version.clone()))
            .unwrap_or_default();
        days.sort_by(f64::total_cmp);
        assert_eq!(upgrades as usize, days.len(), "{family} {version}");
        if days.is_empty() {
            assert_eq!((median, p90, within_30), (None, None, None));
        } else {
            assert_eq!(median, Some(published(percentile(&days, 0.5))), "median");
            assert_eq!(p90, Some(published(percentile(&days, 0.9))), "p90");
            let soon = days.iter().filter(|d| **d <= 30.0).count() as i64;
            assert_close(
                within_30.unwrap(),
                ratio(soon, days.len() as i64),
                "within 30 days",
            );
        }
    }
    db.cleanup().await;
}

#[tokio::test]
async fn pmm_views_follow_features_databases_usage_countries_and_grace() {
    let db = TestDatabase::migrated().await;
    let settings = history_settings(500, 60, 37);
    let reports = load_history(&db.pool, &settings).await;
    let today = end_date() + Days::new(1);
    let snapshot = end_date();
    let model = Model::new(&reports, today);
    let servers: Vec<&NewReport> = model
        .pmm_active(snapshot)
        .iter()
        .map(|day| day.latest)
        .collect();
    assert!(servers.len() > 50, "only {} PMM servers", servers.len());

    // pmm_feature_adoption
    let rows: Vec<(String, i32, i32, i32, f64, Option<f64>)> = sqlx::query_as(
        "SELECT feature, active_servers, reporting_servers, enabled_servers, share_of_active::float8,
                share_of_reporting::float8
         FROM analytics.pmm_feature_adoption ORDER BY feature",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let features: Vec<(&str, FeatureReader)> = vec![
        (
            "access_control",
            Box::new(|r| flag(first(r, "pmm_server_access_control_enabled"))),
        ),
        (
            "advisors",
            Box::new(|r| {
                flag(first(r, "pmm_server_advisors_disabled"))
                    .map(|disabled| !disabled)
                    .or_else(|| flag(first(r, "pmm_server_stt_enabled")))
            }),
        ),
        (
            "alerting",
            Box::new(|r| flag(first(r, "pmm_server_ia_enabled"))),
        ),
        (
            "backup_management",
            Box::new(|r| flag(first(r, "pmm_server_backup_management_enabled"))),
        ),
        (
            "dbaas",
            Box::new(|r| flag(first(r, "pmm_server_dbaas_enabled"))),
        ),
        (
            "updates_disabled",
            Box::new(|r| flag(first(r, "pmm_server_updates_disabled"))),
        ),
    ];
    assert_eq!(rows.len(), features.len());
    for ((feature, active, reporting, enabled, share_active, share_reporting), (name, read)) in
        rows.into_iter().zip(&features)
    {
        assert_eq!(feature, *name);
        let values: Vec<Option<bool>> = servers.iter().map(|r| read(r)).collect();
        let expected_reporting = values.iter().filter(|v| v.is_some()).count() as i64;
        let expected_enabled = values.iter().filter(|v| **v == Some(true)).count() as i64;
        assert_eq!(
            (active as usize, i64::from(reporting), i64::from(enabled)),
            (servers.len(), expected_reporting, expected_enabled),
            "{feature}"
        );
        assert_close(
            share_active,
            ratio(expected_enabled, servers.len() as i64),
            "share of active",
        );
        if expected_reporting > 0 {
            assert_close(
                share_reporting.unwrap(),
                ratio(expected_enabled, expected_reporting),
                "share of reporting",
            );
        }
    }

    // pmm_usage
    let rows: Vec<(String, i32, f64, f64, i32)> = sqlx::query_as(
        "SELECT measure, servers, median, p90, max FROM analytics.pmm_usage ORDER BY measure",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let measures = [
        ("grafana_users", "grafana_users_count"),
        ("nodes", "pmm_server_usage_nodes_count"),
        ("services", "pmm_server_usage_services_count"),
    ];
    assert_eq!(rows.len(), measures.len());
    for ((measure, count_, median, p90, max), (name, key)) in rows.into_iter().zip(measures) {
        assert_eq!(measure, name);
        let mut values: Vec<f64> = servers
            .iter()
            .filter_map(|r| count(first(r, key)))
            .map(|v| v as f64)
            .collect();
        values.sort_by(f64::total_cmp);
        assert_eq!(count_ as usize, values.len(), "{measure}");
        assert_eq!(median, published(percentile(&values, 0.5)), "median");
        assert_eq!(p90, published(percentile(&values, 0.9)), "p90");
        assert_eq!(f64::from(max), *values.last().unwrap());
    }

    // monitored_database_versions and monitored_database_lines
    let databases = [
        ("mongodb", "mongodb_version"),
        ("mysql", "mysql_version"),
        ("postgresql", "postgresql_version"),
    ];
    let mut versions: HashMap<(String, String), (i64, BTreeSet<Uuid>)> = HashMap::new();
    let mut lines: HashMap<(String, String), (i64, BTreeSet<Uuid>)> = HashMap::new();
    let mut services_per_database: HashMap<String, i64> = HashMap::new();
    for server in &servers {
        for (database, key) in databases {
            for version in all_values(server, key) {
                let entry = versions
                    .entry((database.to_owned(), version.clone()))
                    .or_default();
                entry.0 += 1;
                entry.1.insert(server.report.instance_id);
                let entry = lines
                    .entry((
                        database.to_owned(),
                        release_line(database, &version).unwrap(),
                    ))
                    .or_default();
                entry.0 += 1;
                entry.1.insert(server.report.instance_id);
                *services_per_database
                    .entry(database.to_owned())
                    .or_default() += 1;
            }
        }
    }
    let rows: Vec<(String, String, Option<String>, i32, i32, f64)> = sqlx::query_as(
        "SELECT database, version, line, pmm_servers, services, share_of_services::float8
         FROM analytics.monitored_database_versions",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), versions.len());
    for (database, version, line, pmm_servers, services, share) in rows {
        let (count_, who) = &versions[&(database.clone(), version.clone())];
        assert_eq!(line, release_line(&database, &version));
        assert_eq!(
            (i64::from(services), pmm_servers as usize),
            (*count_, who.len()),
            "{database} {version}"
        );
        assert_close(
            share,
            ratio(*count_, services_per_database[&database]),
            "service share",
        );
    }
    let rows: Vec<(String, String, i32, i32, f64)> = sqlx::query_as(
        "SELECT database, line, pmm_servers, services, share_of_services::float8
         FROM analytics.monitored_database_lines",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), lines.len());
    assert!(
        rows.iter()
            .any(|(db, line, ..)| db == "mysql" && line == "5.7")
    );
    for (database, line, pmm_servers, services, share) in rows {
        let (count_, who) = &lines[&(database.clone(), line.clone())];
        assert_eq!(
            (i64::from(services), pmm_servers as usize),
            (*count_, who.len()),
            "{database} {line}"
        );
        assert_close(
            share,
            ratio(*count_, services_per_database[&database]),
            "line share",
        );
    }

    // pillar_versions
    let rows: Vec<(String, String, i32, f64)> = sqlx::query_as(
        "SELECT product_family, version, active_instances, share_of_family::float8 FROM analytics.pillar_versions",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let family_active = model.family_active(snapshot);
    let mut pillars: HashMap<(String, String), i64> = HashMap::new();
    for ((_, family), day) in model.active(snapshot, WINDOW) {
        if let Some(version) = day
            .version
            .clone()
            .filter(|_| !matches!(family, PMM | "PRODUCT_FAMILY_EVEREST"))
        {
            *pillars.entry((family.to_owned(), version)).or_default() += 1;
        }
    }
    assert_eq!(rows.len(), pillars.len());
    for (family, version, active, share) in rows {
        let want = pillars[&(family.clone(), version.clone())];
        assert_eq!(i64::from(active), want);
        assert_close(
            share,
            ratio(want, family_active[family.as_str()]),
            "pillar share",
        );
    }

    // countries
    let rows: Vec<(String, Option<String>, i32, f64)> = sqlx::query_as(
        "SELECT product_family, country_code, active_instances, share_of_family::float8 FROM analytics.countries",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut countries: HashMap<(String, Option<String>), i64> = HashMap::new();
    for ((_, family), day) in model.active(snapshot, WINDOW) {
        *countries
            .entry((family.to_owned(), day.country.clone()))
            .or_default() += 1;
    }
    assert!(
        model
            .active(snapshot, WINDOW)
            .iter()
            .any(|(_, day)| day.latest.country_code.is_none() && day.country.is_some()),
        "an instance whose latest report did not resolve holds an earlier country"
    );
    assert_eq!(rows.len(), countries.len());
    assert!(rows.iter().any(|(_, country, ..)| country.is_none()));
    for (family, country, active, share) in rows {
        let want = countries[&(family.clone(), country.clone())];
        assert_eq!(i64::from(active), want, "{family} {country:?}");
        assert_close(
            share,
            ratio(want, family_active[family.as_str()]),
            "country share",
        );
    }

    // grace_period_by_version: servers first seen in the censored start are only counted apart.
    let mut grace: HashMap<Option<String>, (i64, i64, i64, i64)> = HashMap::new();
    for ((_, family), report) in &model.first_report {
        if *family == PMM {
            let entry = grace.entry(report.report.version.clone()).or_default();
            if model.left_censored(report.report.created_at.date_naive()) {
                entry.3 += 1;
                continue;
            }
            entry.0 += 1;
            if let Some(up) = report.report.up_duration_seconds {
                entry.1 += 1;
                if up < 86_400 {
                    entry.2 += 1;
                }
            }
        }
    }
    let rows: Vec<GraceRow> = sqlx::query_as(
        "SELECT pmm_version, new_instances, with_up_duration, first_report_under_24h, share_under_24h::float8,
                left_censored_instances
         FROM analytics.grace_period_by_version",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), grace.len());
    assert!(
        rows.iter().any(|row| row.3 > 0),
        "some first reports skip the grace period"
    );
    assert!(
        rows.iter().any(|row| row.5 > 0),
        "the history's start is counted apart"
    );
    for (version, new, with_up, under, share, censored) in rows {
        let (want_new, want_up, want_under, want_censored) = grace[&version];
        assert_eq!(
            (
                i64::from(new),
                i64::from(with_up),
                i64::from(under),
                i64::from(censored)
            ),
            (want_new, want_up, want_under, want_censored),
            "{version:?}"
        );
        match share {
            Some(share) => assert_close(share, ratio(want_under, want_up), "grace share"),
            None => assert_eq!(want_up, 0, "{version:?}"),
        }
    }
    db.cleanup().await;
}

fn handmade(
    instance: Uuid,
    family: ProductFamily,
    at: &str,
    metrics: &[(&str, &str)],
    country: Option<&str>,
) -> NewReport {
    let metrics: Vec<telemetry_server::ingest::Metric> = metrics
        .iter()
        .map(|(key, value)| telemetry_server::ingest::Metric {
            key: (*key).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    let created_at = DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&Utc);
    NewReport {
        report: telemetry_server::ingest::Report::new(
            telemetry_server::ingest::Protocol::GenericReport,
            Uuid::new_v4(),
            instance,
            family,
            created_at,
            metrics,
        ),
        country_code: country.map(str::to_owned),
        // Sent on time: the report counts on its own day.
        received_at: Some(created_at),
    }
}

/// An instance's country is that of its latest report by createTime whose address resolved, in
/// `instances` as in the rollups: a late, older report does not overwrite it, nor does a newer one
/// that did not resolve.
#[tokio::test]
async fn instance_country_follows_create_time_like_the_rollups() {
    let db = TestDatabase::migrated().await;
    let server = Uuid::new_v4();
    let report = |at: &str, country: Option<&str>| {
        handmade(
            server,
            ProductFamily::Pmm,
            at,
            &[("PMMServerVersion", "3.2.0")],
            country,
        )
    };
    let country = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT country_code FROM instances WHERE instance_id = $1",
        )
        .bind(server)
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    write(&db.pool, &[report("2026-02-12T10:00:00Z", Some("DE"))]).await;
    write(&db.pool, &[report("2026-02-11T10:00:00Z", Some("FR"))]).await;
    assert_eq!(
        country().await.as_deref(),
        Some("DE"),
        "the late, older report"
    );
    write(&db.pool, &[report("2026-02-13T10:00:00Z", None)]).await;
    assert_eq!(
        country().await.as_deref(),
        Some("DE"),
        "a newer report that did not resolve"
    );
    store::refresh_rollups(&db.pool, NaiveDate::from_ymd_opt(2026, 2, 14).unwrap())
        .await
        .unwrap();
    let counted: Option<String> = sqlx::query_scalar(
        "SELECT country_code FROM analytics.countries_daily
         WHERE day = '2026-02-13' AND product_family = 'PRODUCT_FAMILY_PMM' AND active_instances > 0",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(counted.as_deref(), Some("DE"), "the rollups agree");
    write(&db.pool, &[report("2026-02-14T10:00:00Z", Some("US"))]).await;
    assert_eq!(
        country().await.as_deref(),
        Some("US"),
        "a newer report that resolved"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn daily_facts_fold_out_of_order_and_repeated_reports() {
    let db = TestDatabase::migrated().await;
    let server = Uuid::new_v4();
    let pmm = |at: &str, version: &str, alerting: &str, up: &str, country: Option<&str>| {
        handmade(
            server,
            ProductFamily::Pmm,
            at,
            &[
                ("PMMServerVersion", version),
                ("UpDuration", up),
                ("pmm_server_ia_enabled", alerting),
                ("mysql_version", "8.0.39-30"),
                ("mysql_version", "5.7.44-48"),
                ("mysql_version", ""),
                ("grafana_users_count", "4"),
                ("some_future_key", "kept in reports.metrics"),
            ],
            country,
        )
    };
    let noon = pmm(
        "2026-02-10T12:00:00Z",
        "3.1.0",
        "1",
        "seconds:600",
        Some("DE"),
    );
    let evening = pmm("2026-02-10T20:00:00Z", "3.2.0", "0", "seconds:29400", None);
    let morning = pmm(
        "2026-02-10T06:00:00Z",
        "3.0.0",
        "1",
        "seconds:100 nanos:5",
        Some("FR"),
    );
    // The latest report of the day arrives first, the earliest last, each in its own batch; the
    // middle one is sent twice.
    write(&db.pool, std::slice::from_ref(&evening)).await;
    write(&db.pool, &[noon.clone(), noon.clone()]).await;
    write(&db.pool, std::slice::from_ref(&noon)).await;
    write(&db.pool, std::slice::from_ref(&morning)).await;

    let row: DayRow =
        sqlx::query_as(
            "SELECT report_count, first_report_at, last_report_at, last_report_id, first_up_duration_seconds,
                    first_version, version, extra_versions, country_code, alerting_enabled, mysql_versions,
                    grafana_users
             FROM analytics.instance_days WHERE instance_id = $1",
        )
        .bind(server)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        row,
        (
            3,
            morning.report.created_at,
            evening.report.created_at,
            evening.report.report_id,
            Some(100),
            Some("3.0.0".to_owned()),
            Some("3.2.0".to_owned()),
            // The noon report's version, neither the day's first nor its last, is kept too.
            Some(vec!["3.1.0".to_owned()]),
            // The evening report did not resolve to a country: the latest one that did counts.
            Some("DE".to_owned()),
            Some(false),
            Some(vec!["8.0.39-30".to_owned(), "5.7.44-48".to_owned()]),
            Some(4),
        )
    );
    let unknown: String = sqlx::query_scalar(
        "SELECT m->>'value' FROM reports, jsonb_array_elements(metrics) m
         WHERE instance_id = $1 AND m->>'key' = 'some_future_key' LIMIT 1",
    )
    .bind(server)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(unknown, "kept in reports.metrics");

    // A new server on 20 February, then a report of its that had been delayed since 5 January: after
    // a refresh the earlier days count it, and it is new on 5 January, no longer on 20 February
    // (which is beyond the late report's 30-day window and received nothing new).
    let late = Uuid::new_v4();
    let report = |at: &str, up: &str| {
        handmade(
            late,
            ProductFamily::Pmm,
            at,
            &[("PMMServerVersion", "3.2.0"), ("UpDuration", up)],
            Some("US"),
        )
    };
    write(&db.pool, &[report("2026-02-20T10:00:00Z", "seconds:90000")]).await;
    let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    store::refresh_rollups(&db.pool, today).await.unwrap();
    let active_on = |day: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_as::<_, (i32, i32)>(
                "SELECT active_instances, new_instances FROM analytics.active_instances_daily
                 WHERE product_family = 'PRODUCT_FAMILY_PMM' AND day = $1::date",
            )
            .bind(day)
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(active_on("2026-02-10").await, Some((1, 1)));
    assert_eq!(active_on("2026-02-20").await, Some((2, 1)));
    assert_eq!(active_on("2026-01-07").await, None);

    // What has arrived so far arrived long before the next refresh.
    arrived_long_before_the_last_refresh(&db.pool).await;
    write(&db.pool, &[report("2026-01-05T10:00:00Z", "seconds:3600")]).await;
    let refresh = store::refresh_rollups(&db.pool, today).await.unwrap();
    let day = |d: u32, m: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    assert_eq!(
        refresh.ranges,
        vec![
            store::DayRange {
                from: day(5, 1),
                to: day(3, 2)
            },
            store::DayRange {
                from: day(20, 2),
                to: today
            },
        ]
    );
    assert_eq!(active_on("2026-01-07").await, Some((1, 0)));
    assert_eq!(active_on("2026-01-05").await, Some((1, 1)));
    assert_eq!(active_on("2026-02-20").await, Some((2, 0)));
    let stale: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics.stale_days")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    // The instance's old first day, and the late report's own day (stored as arriving on 5 January,
    // before the last refresh): noted in the last 10 minutes, so kept for the next refresh too.
    assert_eq!(stale, 2);
    // The history now starts on 5 January: the late server's first report is in its censored
    // first 29 days and counts apart.
    let grace: Vec<(String, i32, i32, i32)> = sqlx::query_as(
        "SELECT pmm_version, new_instances, first_report_under_24h, left_censored_instances
         FROM analytics.grace_period_by_version ORDER BY pmm_version",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        grace,
        vec![("3.0.0".to_owned(), 1, 1, 0), ("3.2.0".to_owned(), 0, 0, 1)]
    );

    // Refreshing again changes nothing.
    let before = rollups(&db.pool).await;
    store::refresh_rollups(&db.pool, today).await.unwrap();
    assert_eq!(rollups(&db.pool).await, before);
    db.cleanup().await;
}

/// One GenericReport request body: a Percona Server report per createTime, each from an instance
/// of its own.
fn reports_created_at(times: &[DateTime<Utc>]) -> String {
    let reports: Vec<serde_json::Value> = times
        .iter()
        .map(|at| {
            serde_json::json!({
                "id": Uuid::new_v4().to_string(),
                "createTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "instanceId": Uuid::new_v4().to_string(),
                "productFamily": ProductFamily::Ps.as_str(),
                "metrics": [{"key": "pillar_version", "value": "8.0.36-28"}],
            })
        })
        .collect();
    serde_json::json!({ "reports": reports }).to_string()
}

fn days_rebuilt(refresh: &store::RollupRefresh) -> i64 {
    refresh
        .ranges
        .iter()
        .map(|range| (range.to - range.from).num_days() + 1)
        .sum()
}

/// However far a batch's createTimes are from its arrival, the next refresh does at most
/// analytics.late_report_days() + 1 times the work of one after a batch sent on time: analytics
/// count a report within a week of its arrival. The createTimes are stored as sent.
#[tokio::test]
async fn report_dates_far_from_arrival_do_not_widen_the_refresh() {
    // The retention job is off, so that only the test refreshes the rollups.
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let now = Utc::now();
    let today = now.date_naive();
    let on_time = vec![now; 1000];
    let response = app.post_report(reports_created_at(&on_time)).await;
    assert_eq!(response.status().as_u16(), 200);
    store::refresh_rollups(&app.pool, today).await.unwrap();
    let response = app.post_report(reports_created_at(&on_time)).await;
    assert_eq!(response.status().as_u16(), 200);
    let ordinary = store::refresh_rollups(&app.pool, today).await.unwrap();
    assert_eq!(days_rebuilt(&ordinary), 1);

    // 1,000 reports a month apart, from 60 years ago to 20 years ahead.
    let spread: Vec<DateTime<Utc>> = (0..1000)
        .map(|i| now - TimeDelta::days(60 * 365) + TimeDelta::days(i * 80 * 365 / 1000))
        .collect();
    let response = app.post_report(reports_created_at(&spread)).await;
    assert_eq!(response.status().as_u16(), 200);
    let refresh = store::refresh_rollups(&app.pool, today).await.unwrap();
    let late: i32 = sqlx::query_scalar("SELECT analytics.late_report_days()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        days_rebuilt(&refresh),
        i64::from(late) + 1,
        "{:?}",
        refresh.ranges
    );
    assert!(
        refresh.active_instance_days
            <= (i64::from(late) + 1) * ordinary.active_instance_days.max(1),
        "{} active instance-days against {} for an ordinary refresh",
        refresh.active_instance_days,
        ordinary.active_instance_days
    );

    let (first, last): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT min(created_at), max(created_at) FROM reports WHERE created_at < now() - interval '1 year'
            OR created_at > now() + interval '1 year'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(first.timestamp(), spread[0].timestamp());
    assert_eq!(last.timestamp(), spread[999].timestamp());
    let (earliest_day, latest_day, new_instances): (NaiveDate, NaiveDate, i64) = sqlx::query_as(
        "SELECT (SELECT min(day) FROM analytics.instance_days), (SELECT max(day) FROM analytics.instance_days),
                (SELECT sum(new_instances)::int8 FROM analytics.daily_new_instances)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        earliest_day,
        today - Days::new(u64::try_from(late).unwrap())
    );
    assert_eq!(latest_day, today);
    assert_eq!(
        new_instances, 3000,
        "every instance is new once, on its first day"
    );
    app.cleanup().await;
}

/// The three paths one report a day never takes: an instance whose latest report did not resolve
/// to a country, two reports of one instance on one day, a latest report without a version. Each
/// view must do what its comment says. The reports are stored as arriving when they were made:
/// the history spans two months, and analytics place a report within a week of its arrival.
#[tokio::test]
async fn views_keep_their_promises_on_repeated_versionless_and_unresolved_reports() {
    let db = TestDatabase::migrated().await;
    let resolved = Some("US");
    let unresolved = None;
    let send = |instance: Uuid,
                family: ProductFamily,
                at: &'static str,
                version: Option<&'static str>,
                country: Option<&'static str>| {
        let db = &db;
        async move {
            let metrics: Vec<(&str, &str)> = version
                .map(|version| (family.version_metric_key(), version))
                .into_iter()
                .collect();
            write(
                &db.pool,
                &[handmade(instance, family, at, &metrics, country)],
            )
            .await;
        }
    };
    let (pmm, ps) = (ProductFamily::Pmm, ProductFamily::Ps);
    let [a, b, c, e, old] = [(); 5].map(|_| Uuid::new_v4());
    // The history starts on 1 October, so that late November is past its censored start.
    send(old, ps, "2026-10-01T10:00:00Z", Some("8.0.36-28"), resolved).await;
    // 1: resolves on the 27th, not on the 30th.
    send(a, pmm, "2026-11-27T08:00:00Z", Some("3.3.0"), resolved).await;
    send(a, pmm, "2026-11-30T09:00:00Z", Some("3.3.0"), unresolved).await;
    // 2: 3.4.0 in the morning and 3.6.0 in the evening of the 29th.
    send(b, pmm, "2026-11-20T10:00:00Z", Some("3.3.0"), resolved).await;
    send(b, pmm, "2026-11-29T08:00:00Z", Some("3.4.0"), resolved).await;
    send(b, pmm, "2026-11-29T20:00:00Z", Some("3.6.0"), resolved).await;
    send(c, pmm, "2026-11-20T11:00:00Z", Some("3.3.0"), resolved).await;
    send(c, pmm, "2026-11-30T10:00:00Z", Some("3.5.0"), resolved).await;
    // 3: the latest report carries no version.
    send(e, pmm, "2026-11-25T12:00:00Z", Some("3.3.0"), resolved).await;
    send(e, pmm, "2026-11-30T12:00:00Z", None, resolved).await;
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    store::refresh_rollups(&db.pool, today).await.unwrap();

    // 1
    let countries: Vec<(Option<String>, i32)> = sqlx::query_as(
        "SELECT country_code, active_instances FROM analytics.countries WHERE product_family = $1",
    )
    .bind(PMM)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(countries, vec![(Some("US".to_owned()), 4)]);
    let held: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT country_code, version FROM instances WHERE instance_id = $1")
            .bind(a)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(held, (Some("US".to_owned()), Some("3.3.0".to_owned())));

    // 2
    let releases: Vec<(String, NaiveDate, Option<NaiveDate>, i32, bool)> = sqlx::query_as(
        "SELECT version, first_seen, last_reported, active_instances, first_seen_censored
         FROM analytics.releases WHERE product_family = $1 ORDER BY version_sort_key(version)",
    )
    .bind(PMM)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    assert_eq!(
        releases,
        vec![
            ("3.3.0".to_owned(), day(20), Some(day(30)), 2, false),
            ("3.4.0".to_owned(), day(29), Some(day(29)), 0, false),
            ("3.5.0".to_owned(), day(30), Some(day(30)), 1, false),
            ("3.6.0".to_owned(), day(29), Some(day(29)), 1, false),
        ]
    );
    let adoption: Vec<(String, Option<i32>, i64)> = sqlx::query_as(
        "SELECT version, days_since_previous_release, upgrades FROM analytics.release_adoption
         WHERE product_family = $1 ORDER BY version_sort_key(version)",
    )
    .bind(PMM)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        adoption,
        vec![
            ("3.3.0".to_owned(), None, 0),
            ("3.4.0".to_owned(), Some(9), 1),
            ("3.5.0".to_owned(), Some(1), 1),
            ("3.6.0".to_owned(), Some(-1), 1),
        ]
    );
    let uptake_weeks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM analytics.release_uptake_weekly WHERE product_family = $1 AND version = '3.4.0'",
    )
    .bind(PMM)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(uptake_weeks, 2, "the weeks of 23 and 30 November");

    // 3
    let shares: f64 = sqlx::query_scalar(
        "SELECT sum(share_of_family)::float8 FROM analytics.releases WHERE product_family = $1",
    )
    .bind(PMM)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_close(shares, 1.0, "PMM shares");
    let version: Option<String> =
        sqlx::query_scalar("SELECT version FROM instances WHERE instance_id = $1")
            .bind(e)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(version.as_deref(), Some("3.3.0"));

    // An incremental refresh whose window starts after an instance's last version and country
    // looks further back for them, and agrees with a rebuild from scratch.
    arrived_long_before_the_last_refresh(&db.pool).await;
    send(old, ps, "2026-12-05T10:00:00Z", None, unresolved).await;
    let later = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let refresh = store::refresh_rollups(&db.pool, later).await.unwrap();
    assert_eq!(
        refresh.ranges[0].from, today,
        "only the days since the last refresh"
    );
    let ps_on_5th: (Option<String>, String) = sqlx::query_as(
        "SELECT c.country_code, v.version FROM analytics.countries_daily c
         JOIN analytics.daily_versions v USING (day, product_family)
         WHERE c.day = '2026-12-05' AND c.product_family = 'PRODUCT_FAMILY_PS' AND v.active_instances > 0",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(ps_on_5th, (Some("US".to_owned()), "8.0.36-28".to_owned()));
    let incremental = rollups(&db.pool).await;
    sqlx::query("DELETE FROM analytics.rollup_state")
        .execute(&db.pool)
        .await
        .unwrap();
    store::refresh_rollups(&db.pool, later).await.unwrap();
    assert_eq!(rollups(&db.pool).await, incremental);
    db.cleanup().await;
}

/// Every rollup row, as text, to compare refreshes.
async fn rollups(pool: &PgPool) -> String {
    let mut out = String::new();
    for table in [
        "daily_activity",
        "daily_versions",
        "daily_countries",
        "daily_new_instances",
        "daily_pmm_features",
        "daily_pmm_usage",
        "daily_monitored_databases",
        "daily_monitored_database_lines",
        "period_activity",
    ] {
        let rows = rows_as_text(pool, &format!("analytics.{table}")).await;
        out.push_str(&format!("{table}:\n{rows}\n"));
    }
    out
}

#[tokio::test]
async fn analyst_role_reads_the_interface_and_cannot_write() {
    let db = TestDatabase::migrated().await;
    load_history(&db.pool, &history_settings(60, 10, 5)).await;
    let mut connection = db.pool.acquire().await.unwrap();
    let can_login: bool =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'telemetry_analyst'")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    assert!(!can_login);
    sqlx::query("SET ROLE telemetry_analyst")
        .execute(&mut *connection)
        .await
        .unwrap();

    let views: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.views WHERE table_schema = 'analytics'",
    )
    .fetch_all(&mut *connection)
    .await
    .unwrap();
    assert!(views.len() >= 20, "{views:?}");
    for view in &views {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM analytics.{view} LIMIT 1"
        )))
        .execute(&mut *connection)
        .await
        .unwrap_or_else(|e| panic!("analyst reads analytics.{view}: {e}"));
    }
    let reports: i64 = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    assert!(reports > 0);
    sqlx::query("SELECT * FROM analytics.active_instances(7, '2026-03-01', '2026-03-31')")
        .execute(&mut *connection)
        .await
        .unwrap();

    for statement in [
        "INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at, protocol)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'PRODUCT_FAMILY_PMM', now(), now(), 'x')",
        "INSERT INTO report_rows (report_id, instance_id, product_family, created_at, received_at, protocol,
                                  metric_keys, metric_values)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'PRODUCT_FAMILY_PMM', now(), now(), 'x', 0, '{}')",
        "DELETE FROM report_metric_values",
        "DELETE FROM instances",
        "UPDATE upgrades SET to_version = 'x'",
        "DELETE FROM analytics.instance_days",
        "INSERT INTO analytics.daily_activity VALUES ('2026-01-01', 'x', 1, 1, 1)",
        "SELECT analytics.refresh_days('2026-03-01', '2026-03-02')",
        "CREATE TABLE analytics.mine (x int)",
        "CREATE TABLE public.mine (x int)",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut *connection)
            .await
            .expect_err(statement);
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
    }
    sqlx::query("RESET ROLE")
        .execute(&mut *connection)
        .await
        .unwrap();
    drop(connection);
    db.cleanup().await;
}

#[tokio::test]
async fn every_analytics_view_and_column_is_documented() {
    let db = TestDatabase::migrated().await;
    let undocumented: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || coalesce('.' || a.attname, '')
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'analytics'
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'v')
           AND (obj_description(c.oid, 'pg_class') IS NULL
                OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(undocumented, Vec::<String>::new());
    let functions_without_comment: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'analytics' AND obj_description(p.oid, 'pg_proc') IS NULL",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(functions_without_comment, Vec::<String>::new());
    db.cleanup().await;
}

/// What the migration that gave `instances` its `country_seen_at` makes of a country a late,
/// older report had overwritten: the latest by createTime again.
#[tokio::test]
async fn migration_puts_back_the_country_of_the_latest_report() {
    let db = TestDatabase::migrated_to(20261202140001).await;
    let pool = &db.pool;
    let instance = Uuid::new_v4();
    for (at, country) in [
        ("2026-02-12T10:00:00Z", "DE"),
        ("2026-02-11T10:00:00Z", "FR"),
    ] {
        sqlx::query(
            "INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at,
                                  country_code, protocol, metrics)
             VALUES (gen_random_uuid(), $1, 'PRODUCT_FAMILY_PS', $2::timestamptz, now(), $3,
                     'GenericReport', '[]'::jsonb)",
        )
        .bind(instance)
        .bind(at)
        .bind(country)
        .execute(pool)
        .await
        .unwrap();
    }
    // What the service of the time wrote: the country of the report that arrived last.
    sqlx::query(
        "INSERT INTO instances (instance_id, product_family, first_seen, last_seen, first_day,
                                country_code, report_count, last_received_at)
         VALUES ($1, 'PRODUCT_FAMILY_PS', '2026-02-11T10:00:00Z', '2026-02-12T10:00:00Z',
                 '2026-02-11', 'FR', 2, now())",
    )
    .bind(instance)
    .execute(pool)
    .await
    .unwrap();
    store::MIGRATOR.run(pool).await.unwrap();
    let (country, seen_at): (Option<String>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT country_code, country_seen_at FROM instances WHERE instance_id = $1",
    )
    .bind(instance)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(country.as_deref(), Some("DE"));
    assert_eq!(
        seen_at,
        Some(
            DateTime::parse_from_rfc3339("2026-02-12T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
        )
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM reports")
            .fetch_one(pool)
            .await
            .unwrap(),
        2
    );
    db.cleanup().await;
}

#[tokio::test]
async fn migration_folds_reports_stored_before_it() {
    let db = TestDatabase::migrated_to(20261124000001).await;
    let pool = &db.pool;
    let instance = Uuid::new_v4();
    for (at, version, metrics) in [
        (
            "2026-01-05T08:00:00Z",
            "3.1.0",
            r#"[{"key":"pmm_server_ia_enabled","value":"1"}]"#,
        ),
        (
            "2026-01-05T08:30:00Z",
            "3.1.5",
            r#"[{"key":"pmm_server_ia_enabled","value":"1"}]"#,
        ),
        (
            "2026-01-05T09:00:00Z",
            "3.2.0",
            r#"[{"key":"pmm_server_ia_enabled","value":"0"},{"key":"mysql_version","value":"8.4.2-2"}]"#,
        ),
        (
            "2026-01-06T09:00:00Z",
            "3.2.0",
            r#"[{"key":"pmm_server_ia_enabled","value":"1"}]"#,
        ),
    ] {
        sqlx::query(
            "INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at, version,
                                  up_duration_seconds, protocol, metrics)
             VALUES (gen_random_uuid(), $1, 'PRODUCT_FAMILY_PMM', $2::timestamptz, now(), $3, 90000,
                     'GenericReport', $4::jsonb)",
        )
        .bind(instance)
        .bind(at)
        .bind(version)
        .bind(metrics)
        .execute(pool)
        .await
        .unwrap();
    }
    store::MIGRATOR.run(pool).await.unwrap();
    let days: Vec<BackfilledDay> = sqlx::query_as(
        "SELECT day, report_count, first_version, version, extra_versions, alerting_enabled, mysql_versions
             FROM analytics.instance_days ORDER BY day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        days,
        vec![
            (
                NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
                3,
                Some("3.1.0".to_owned()),
                Some("3.2.0".to_owned()),
                // The middle report's version, found by the later migration that added the column.
                Some(vec!["3.1.5".to_owned()]),
                Some(false),
                Some(vec!["8.4.2-2".to_owned()])
            ),
            (
                NaiveDate::from_ymd_opt(2026, 1, 6).unwrap(),
                1,
                Some("3.2.0".to_owned()),
                Some("3.2.0".to_owned()),
                None,
                Some(true),
                None
            ),
        ]
    );
    db.cleanup().await;
}

/// What `analytics.extract_metrics()` makes of a metrics list, in the shape of `TypedMetrics`.
async fn typed_in_sql(pool: &PgPool, metrics: &[Metric]) -> TypedMetrics {
    let row = sqlx::query(
        "SELECT (m).distribution_method, (m).alerting_enabled, (m).stt_enabled, (m).advisors_disabled,
                (m).backup_management_enabled, (m).dbaas_enabled, (m).access_control_enabled,
                (m).updates_disabled, (m).grafana_users, (m).nodes, (m).services, (m).mysql_versions,
                (m).mongodb_versions, (m).postgresql_versions
         FROM (SELECT analytics.extract_metrics($1::jsonb) AS m) AS extracted",
    )
    .bind(serde_json::to_string(metrics).unwrap())
    .fetch_one(pool)
    .await
    .unwrap();
    TypedMetrics {
        distribution_method: row.get(0),
        alerting_enabled: row.get(1),
        stt_enabled: row.get(2),
        advisors_disabled: row.get(3),
        backup_management_enabled: row.get(4),
        dbaas_enabled: row.get(5),
        access_control_enabled: row.get(6),
        updates_disabled: row.get(7),
        grafana_users: row.get(8),
        nodes: row.get(9),
        services: row.get(10),
        mysql_versions: row.get(11),
        mongodb_versions: row.get(12),
        postgresql_versions: row.get(13),
    }
}

/// Ingest types the known keys in the service; analysts have the same mapping in SQL. The two must
/// agree on every real payload, on generated history, and on the awkward values.
/// `analytics.extract_metrics()` cannot import the Rust constants: it reads exactly the keys
/// `metric_keys::TYPED` lists, no more and no fewer.
#[tokio::test]
async fn metric_keys_match_the_sql_extraction() {
    let db = TestDatabase::migrated().await;
    let definition: String = sqlx::query_scalar(
        "SELECT pg_get_functiondef('analytics.extract_metrics(jsonb)'::regprocedure)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let mut in_sql = BTreeSet::new();
    let mut rest = definition.as_str();
    while let Some(start) = rest.find("m.key = '") {
        let after = &rest[start + "m.key = '".len()..];
        let end = after.find('\'').expect("a closed literal");
        in_sql.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    let in_rust: BTreeSet<String> = telemetry_server::metric_keys::TYPED
        .iter()
        .map(|key| (*key).to_owned())
        .collect();
    assert_eq!(in_sql, in_rust);
    db.cleanup().await;
}

#[tokio::test]
async fn typed_metrics_match_the_sql_extraction() {
    let db = TestDatabase::migrated().await;
    let long_version = "8.0.36-28".repeat(400);
    let mut lists: Vec<Vec<Metric>> = Vec::new();
    for fixture in std::fs::read_dir("tests/fixtures").unwrap().flatten() {
        let body = std::fs::read(fixture.path()).unwrap();
        if let Ok(reports) = parse_report_request(&body) {
            lists.extend(reports.into_iter().map(|report| report.metrics));
        }
    }
    assert!(lists.len() >= 5, "the fixtures hold real payloads");
    let mut simulation = Simulation::new(&history_settings(60, 20, 3));
    while let Some((_, day)) = simulation.next_day() {
        lists.extend(day.into_iter().map(|new| new.report.metrics));
    }
    let awkward = [
        ("pmm_server_ia_enabled", " TRUE "),
        ("pmm_server_stt_enabled", "yes"),
        ("pmm_server_updates_disabled", "F"),
        ("grafana_users_count", "12.5"),
        ("pmm_server_usage_nodes_count", "1234567890"),
        ("pmm_server_usage_services_count", "1."),
        ("pmm_server_pmm_usage_services_count", "4"),
        ("mysql_version", r#"8.0 "quoted" \ {braces, comma}"#),
        ("mysql_version", ""),
        ("mysql_version", "NULL"),
        ("mysql_version", &long_version),
        ("mongodb_version", "7.0.14-8\n"),
        ("postgresql_version", "16.4 (Ubuntu 16.4-1.pgdg22.04+1)"),
        ("postgresql_version", "16 ½"),
        ("deployment", "PACKAGE"),
    ];
    let junk_method = [("DistributionMethod", " DOCKER"), ("deployment", "PACKAGE")];
    for pairs in [&awkward[..], &junk_method[..]] {
        lists.push(
            pairs
                .iter()
                .map(|(key, value)| Metric {
                    key: (*key).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
        );
    }

    for metrics in &lists {
        assert_eq!(
            TypedMetrics::from_metrics(metrics),
            typed_in_sql(&db.pool, metrics).await,
            "{metrics:?}"
        );
    }
    db.cleanup().await;
}

/// Which values may become versions is decided in the service at ingest and, for stored data and
/// analysts' own queries, by `analytics.plausible_label()`: one rule, held together here.
#[tokio::test]
async fn plausible_labels_match_the_sql_rule() {
    let db = TestDatabase::migrated().await;
    let mut values: Vec<String> = [
        "8.0.36-28",
        "3.2.0",
        "v1.2.0",
        "16.4 (Ubuntu 16.4-1.pgdg22.04+1)",
        "10.6.16-MariaDB-1:10.6.16+maria~ubu2004",
        "DOCKER",
        "x",
        "~",
        "!",
        "",
        " ",
        " 8.0",
        "8.0 ",
        "8.0  1",
        "8.0\t1",
        "8.0\r\n",
        "8.0\u{7f}",
        "8.0.٣",
        "versión",
        "8.0.36\u{200b}",
        "😀",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for length in [63, 64, 65, 2704, 3000] {
        values.push("8".repeat(length));
    }
    for value in &values {
        let in_sql: bool = sqlx::query_scalar("SELECT analytics.plausible_label($1)")
            .bind(value)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(is_plausible_label(value), in_sql, "{value:?}");
    }
    assert!(is_plausible_label(&"8".repeat(64)) && !is_plausible_label(&"8".repeat(65)));
    db.cleanup().await;
}

/// A database that took junk versions before the rule existed: the migration keeps every raw report
/// and metric, clears the junk out of every derived column, joins the upgrade history up around it,
/// and the rollups then refresh.
#[tokio::test]
async fn migration_clears_junk_out_of_derived_data_and_keeps_the_reports() {
    let db = TestDatabase::migrated_to(20261125100000).await;
    let pool = &db.pool;
    let junk = "3.".repeat(1500);
    let instance = Uuid::new_v4();
    let reports = [
        ("2026-01-05T08:00:00Z", "3.1.0"),
        ("2026-01-06T08:00:00Z", junk.as_str()),
        ("2026-01-07T08:00:00Z", "3.2.0"),
        ("2026-01-08T08:00:00Z", "vers\u{f6}n"),
        ("2026-01-09T08:00:00Z", "3.2.0"),
    ];
    let mut report_ids = Vec::new();
    for (at, version) in reports {
        let report_id = Uuid::new_v4();
        report_ids.push(report_id);
        let metrics = serde_json::json!([
            {"key": "PMMServerVersion", "value": version},
            {"key": "mysql_version", "value": version},
            {"key": "DistributionMethod", "value": version},
        ]);
        sqlx::query(
            "INSERT INTO reports (report_id, instance_id, product_family, created_at, received_at, version,
                                  protocol, metrics)
             VALUES ($1, $2, 'PRODUCT_FAMILY_PMM', $3::timestamptz, now(), $4, 'GenericReport', $5)",
        )
        .bind(report_id)
        .bind(instance)
        .bind(at)
        .bind(version)
        .bind(&metrics)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO analytics.instance_days
                 (day, instance_id, product_family, report_count, first_report_at, last_report_at,
                  last_report_id, first_version, version, distribution_method, mysql_versions)
             VALUES ($1::timestamptz::date, $2, 'PRODUCT_FAMILY_PMM', 1, $1::timestamptz, $1::timestamptz,
                     $3, $4, $4, $4, ARRAY['8.0.36', $4])",
        )
        .bind(at)
        .bind(instance)
        .bind(report_id)
        .bind(version)
        .execute(pool)
        .await
        .unwrap();
    }
    // What the service of the time wrote: the latest version, and an upgrade at every change
    // (except the one to the long junk, whose index entry it could not write).
    sqlx::query(
        "INSERT INTO instances (instance_id, product_family, first_seen, last_seen, version, version_seen_at,
                                report_count, last_received_at)
         VALUES ($1, 'PRODUCT_FAMILY_PMM', '2026-01-05T08:00:00Z', '2026-01-09T08:00:00Z', $2,
                 '2026-01-08T08:00:00Z', 5, now())",
    )
    .bind(instance)
    .bind("vers\u{f6}n")
    .execute(pool)
    .await
    .unwrap();
    for (from, to, at, report) in [
        ("3.1.0", "3.2.0", "2026-01-07T08:00:00Z", report_ids[2]),
        (
            "3.2.0",
            "vers\u{f6}n",
            "2026-01-08T08:00:00Z",
            report_ids[3],
        ),
        (
            "vers\u{f6}n",
            "3.2.0",
            "2026-01-09T08:00:00Z",
            report_ids[4],
        ),
    ] {
        sqlx::query(
            "INSERT INTO upgrades (instance_id, product_family, from_version, to_version, upgraded_at, report_id)
             VALUES ($1, 'PRODUCT_FAMILY_PMM', $2, $3, $4::timestamptz, $5)",
        )
        .bind(instance)
        .bind(from)
        .bind(to)
        .bind(at)
        .bind(report)
        .execute(pool)
        .await
        .unwrap();
    }
    let raw_before: Vec<String> =
        sqlx::query_scalar("SELECT metrics::text FROM reports ORDER BY created_at")
            .fetch_all(pool)
            .await
            .unwrap();

    store::MIGRATOR.run(pool).await.unwrap();

    let raw_after: Vec<String> =
        sqlx::query_scalar("SELECT metrics::text FROM reports ORDER BY created_at")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(raw_after, raw_before, "every raw report and metric is kept");
    let versions: Vec<Option<String>> =
        sqlx::query_scalar("SELECT version FROM reports ORDER BY created_at")
            .fetch_all(pool)
            .await
            .unwrap();
    let plain = |v: &str| Some(v.to_owned());
    assert_eq!(
        versions,
        [plain("3.1.0"), None, plain("3.2.0"), None, plain("3.2.0")]
    );
    let latest: (Option<String>, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT version, version_seen_at FROM instances")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        latest,
        (
            plain("3.2.0"),
            Some("2026-01-09T08:00:00Z".parse().unwrap())
        )
    );
    let upgrades: Vec<(String, String, Uuid)> = sqlx::query_as(
        "SELECT from_version, to_version, report_id FROM upgrades ORDER BY upgraded_at",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        upgrades,
        [("3.1.0".to_owned(), "3.2.0".to_owned(), report_ids[2])]
    );
    let days: Vec<DerivedDay> = sqlx::query_as(
        "SELECT first_version, version, distribution_method, mysql_versions
             FROM analytics.instance_days ORDER BY day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let day = |version: Option<String>| {
        (
            version.clone(),
            version.clone(),
            version.clone(),
            Some(
                std::iter::once("8.0.36".to_owned())
                    .chain(version)
                    .collect::<Vec<_>>(),
            ),
        )
    };
    assert_eq!(
        days,
        [
            day(plain("3.1.0")),
            day(None),
            day(plain("3.2.0")),
            day(None),
            day(plain("3.2.0"))
        ]
    );
    let stale: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics.stale_days")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(stale, 2, "the two days that held junk are rebuilt");
    store::refresh_rollups(pool, NaiveDate::from_ymd_opt(2026, 1, 20).unwrap())
        .await
        .expect("the rollups refresh");
    let rolled: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT version FROM analytics.daily_versions
         UNION SELECT DISTINCT version FROM analytics.daily_monitored_databases ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(rolled, ["3.1.0", "3.2.0", "8.0.36"]);
    db.cleanup().await;
}

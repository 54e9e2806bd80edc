//! Synthetic telemetry history for demos, tests and benchmarks: N installations over D days,
//! written through `store::insert_reports` exactly as ingest writes reports (protocol `synthetic`).
//!
//! The model, deterministic for a seed:
//! - Product mix: PMM 38 %, PS 22 %, PSMDB 14 %, PostgreSQL 14 %, PXC 7 %, Everest 5 %.
//! - Release calendar per product line (PMM 2 and 3, PS 5.7 / 8.0 / 8.4, ...): PMM 3 minors every
//!   6 weeks, alternately followed by a patch of the same minor (3.4.0 -> 3.4.1) two weeks later, or
//!   pulled at noon on their release day and replaced by their patch (3.5.0 -> 3.5.1); database
//!   minors quarterly, Everest monthly. It starts well before the first generated day so that old
//!   versions are in use from the start.
//! - Staged upgrades: each installation is eager (mean 7 days after a release), normal (45) or a
//!   laggard (365); moving to a newer line (PMM 2 -> 3, MySQL 8.0 -> 8.4) is rarer still.
//! - Churn: 55 % of installations exist before the first day, the rest appear during the period;
//!   lifetimes are exponential (mean 500 days) and a fifth of new ones are trials of a few days.
//! - Reporting: one report a day at a fixed time per installation. PMM waits 24 hours after every
//!   start (a restart or upgrade before that time skips the day's report) except that x.y.1 patches
//!   mostly, and pulled builds always, send right away, so a restart or upgrade after the day's
//!   report, or a pulled build replaced within hours, makes two or three reports in one UTC day;
//!   the agent skips 2 % of days. Half a percent of reports carry no version (a server still
//!   starting, a package the agent could not read).
//! - PMM features and monitored databases (MySQL 5.7 / 8.0 / 8.4, MongoDB, PostgreSQL) drawn per
//!   server with occasional changes; Grafana users log-normal; countries by a fixed weighting, and
//!   one installation in twenty sends from an address that resolves only now and then (a third of
//!   its reports have no country).
//!
//! A day is generated and written (in concurrent batches of disjoint installations) before the next
//! one, because the upgrade history is derived from each installation's report order.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use sqlx::PgPool;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::GenerateArgs;
use crate::ingest::{Metric, ProductFamily, Report};
use crate::store::{self, NewReport, RollupRefresh, StoreError};

/// `reports.protocol` of generated reports, so that they can be told apart from real ones.
pub const PROTOCOL: &str = "synthetic";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub instances: u32,
    pub days: u32,
    /// Last generated UTC day.
    pub end_date: NaiveDate,
    pub seed: u64,
    pub batch_size: usize,
    pub concurrency: usize,
}

impl Settings {
    pub fn from_args(args: &GenerateArgs) -> Self {
        Self {
            instances: args.instances,
            days: args.days.max(1),
            end_date: args
                .end_date
                .unwrap_or_else(|| Utc::now().date_naive() - Days::new(1)),
            seed: args.seed,
            batch_size: args.batch_size.max(1),
            concurrency: args.concurrency.max(1),
        }
    }

    pub fn first_date(&self) -> NaiveDate {
        self.end_date - Days::new(u64::from(self.days.max(1)) - 1)
    }
}

/// What `generate` wrote.
#[derive(Clone, Debug)]
pub struct Summary {
    pub settings: Settings,
    pub reports: u64,
    pub seconds: f64,
    pub refresh: RollupRefresh,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "generated {} reports from {} instances over {} days ({} to {}) in {:.1} s ({:.0} reports/s); \
             rollups refreshed through {}",
            self.reports,
            self.settings.instances,
            self.settings.days,
            self.settings.first_date(),
            self.settings.end_date,
            self.seconds,
            self.reports as f64 / self.seconds.max(0.001),
            self.settings.end_date,
        )
    }
}

/// Generates the history day by day, writes it, and refreshes the rollups as of the day after.
pub async fn generate(pool: &PgPool, settings: &Settings) -> Result<Summary, StoreError> {
    let started = std::time::Instant::now();
    let mut simulation = Simulation::new(settings);
    let mut reports = 0u64;
    while let Some((date, day)) = simulation.next_day() {
        let count = day.len();
        reports += write_day(pool, day, settings).await?;
        tracing::info!(%date, reports = count, total = reports, elapsed_s = started.elapsed().as_secs(), "day written");
    }
    let refresh = store::refresh_rollups(pool, settings.end_date + Days::new(1)).await?;
    Ok(Summary {
        settings: settings.clone(),
        reports,
        seconds: started.elapsed().as_secs_f64(),
        refresh,
    })
}

async fn write_day(
    pool: &PgPool,
    reports: Vec<NewReport>,
    settings: &Settings,
) -> Result<u64, StoreError> {
    let mut batches = reports
        .chunks(settings.batch_size)
        .map(<[NewReport]>::to_vec);
    let mut running = JoinSet::new();
    let mut written = 0;
    loop {
        while running.len() < settings.concurrency {
            let Some(batch) = batches.next() else { break };
            let pool = pool.clone();
            running.spawn(async move { store::insert_reports(&pool, &batch).await });
        }
        match running.join_next().await {
            Some(result) => written += result.expect("a batch task does not panic")?,
            None => return Ok(written),
        }
    }
}

/// A product line and its releases, as day offsets from the first generated day.
struct Line {
    family: ProductFamily,
    name: &'static str,
    releases: Vec<(i64, String)>,
    /// Per release: withdrawn at noon on its release day, when the next release replaces it.
    pulled: Vec<bool>,
    install_weight: f64,
}

impl Line {
    fn new(
        family: ProductFamily,
        name: &'static str,
        install_weight: f64,
        releases: Vec<(i64, String)>,
    ) -> Self {
        let mut releases = releases;
        releases.sort_by_key(|(day, _)| *day);
        Self {
            family,
            name,
            pulled: vec![false; releases.len()],
            releases,
            install_weight,
        }
    }

    /// Marks the releases `is_pulled` names as pulled; each must have its replacement on the same day.
    fn pulling(mut self, is_pulled: impl Fn(&str) -> bool) -> Self {
        self.pulled = self
            .releases
            .iter()
            .map(|(_, name)| is_pulled(name))
            .collect();
        self
    }

    /// How many releases are out on `day`.
    fn released_by(&self, day: i64) -> usize {
        self.releases
            .partition_point(|(released, _)| *released <= day)
    }

    /// How many releases can be installed on `day`: a pulled release's replacement only from noon.
    fn available(&self, day: i64, before_noon: bool) -> usize {
        let released = self.released_by(day);
        let replaces_pulled = released >= 2
            && self.pulled[released - 2]
            && self.releases[released - 2].0 == day
            && self.releases[released - 1].0 == day;
        if before_noon && replaces_pulled {
            released - 1
        } else {
            released
        }
    }

    /// The release an installation gets when it asks for `release` on `day`: a pulled one only on
    /// its release day before noon, its replacement otherwise.
    fn installable(&self, release: usize, day: i64, before_noon: bool) -> usize {
        if self.pulled[release] && (self.releases[release].0 < day || !before_noon) {
            release + 1
        } else {
            release
        }
    }
}

/// Releases `first`, `first + every`, ... before `until`, named by `name(k)`.
fn cadence(first: i64, every: i64, until: i64, name: impl Fn(i64) -> String) -> Vec<(i64, String)> {
    (0..)
        .map(|k| (first + k * every, name(k)))
        .take_while(|(day, _)| *day < until)
        .collect()
}

fn catalog(days: i64) -> Vec<Line> {
    use ProductFamily::*;
    let pmm2 = [
        cadence(-700, 56, -190, |k| format!("2.{}.0", 39 + k)),
        cadence(-110, 120, days, |k| format!("2.48.{}", 1 + k)),
    ]
    .concat();
    // Sorting is stable: a pulled minor stays before its same-day replacement.
    let pmm3 = [
        cadence(-150, 42, days, |k| format!("3.{k}.0")),
        cadence(-136, 84, days, |k| format!("3.{}.1", 2 * k)),
        cadence(-108, 84, days, |k| format!("3.{}.1", 2 * k + 1)),
    ]
    .concat();
    let odd_minor = |name: &str| {
        name.ends_with(".0")
            && name
                .split('.')
                .nth(1)
                .and_then(|minor| minor.parse::<u32>().ok())
                .is_some_and(|minor| minor % 2 == 1)
    };
    vec![
        Line::new(Pmm, "2", 0.1, pmm2),
        Line::new(Pmm, "3", 0.9, pmm3).pulling(odd_minor),
        Line::new(Ps, "5.7", 0.08, vec![(-900, "5.7.44-48".into())]),
        Line::new(
            Ps,
            "8.0",
            0.55,
            cadence(-500, 91, days, |k| format!("8.0.{}-{}", 36 + k, 28 + k)),
        ),
        Line::new(
            Ps,
            "8.4",
            0.37,
            cadence(-350, 91, days, |k| format!("8.4.{k}-{}", k + 1)),
        ),
        Line::new(Pxc, "5.7", 0.1, vec![(-900, "5.7.44-31.65".into())]),
        Line::new(
            Pxc,
            "8.0",
            0.6,
            cadence(-480, 91, days, |k| format!("8.0.{}-{}.1", 36 + k, 28 + k)),
        ),
        Line::new(
            Pxc,
            "8.4",
            0.3,
            cadence(-330, 91, days, |k| format!("8.4.{k}-{}.1", k + 1)),
        ),
        Line::new(
            Psmdb,
            "6.0",
            0.25,
            cadence(-600, 60, days, |k| format!("6.0.{}-{}", 15 + k, 12 + k)),
        ),
        Line::new(
            Psmdb,
            "7.0",
            0.55,
            cadence(-450, 60, days, |k| format!("7.0.{}-{}", 8 + k, 5 + k)),
        ),
        Line::new(
            Psmdb,
            "8.0",
            0.2,
            cadence(-120, 60, days, |k| format!("8.0.{}-{}", 4 + k, 1 + k)),
        ),
        Line::new(
            Postgresql,
            "13",
            0.1,
            cadence(-600, 91, days, |k| format!("13.{}", 14 + k)),
        ),
        Line::new(
            Postgresql,
            "14",
            0.15,
            cadence(-600, 91, days, |k| format!("14.{}", 11 + k)),
        ),
        Line::new(
            Postgresql,
            "15",
            0.2,
            cadence(-600, 91, days, |k| format!("15.{}", 6 + k)),
        ),
        Line::new(
            Postgresql,
            "16",
            0.35,
            cadence(-600, 91, days, |k| format!("16.{}", 2 + k)),
        ),
        Line::new(
            Postgresql,
            "17",
            0.2,
            cadence(-60, 91, days, |k| format!("17.{k}")),
        ),
        Line::new(
            Everest,
            "1",
            1.0,
            cadence(-300, 35, days, |k| format!("1.{k}.0")),
        ),
    ]
}

/// Daily chance of moving to a newer line of the same product.
const LINE_MOVES: &[(ProductFamily, &str, &str, f64)] = &[
    (ProductFamily::Pmm, "2", "3", 1.0 / 250.0),
    (ProductFamily::Ps, "5.7", "8.0", 1.0 / 2000.0),
    (ProductFamily::Ps, "8.0", "8.4", 1.0 / 900.0),
    (ProductFamily::Pxc, "5.7", "8.0", 1.0 / 2000.0),
    (ProductFamily::Pxc, "8.0", "8.4", 1.0 / 900.0),
    (ProductFamily::Psmdb, "6.0", "7.0", 1.0 / 700.0),
    (ProductFamily::Psmdb, "7.0", "8.0", 1.0 / 700.0),
    (ProductFamily::Postgresql, "13", "14", 1.0 / 1200.0),
    (ProductFamily::Postgresql, "14", "15", 1.0 / 1200.0),
    (ProductFamily::Postgresql, "15", "16", 1.0 / 1200.0),
    (ProductFamily::Postgresql, "16", "17", 1.0 / 1200.0),
];

const FAMILIES: &[(ProductFamily, f64)] = &[
    (ProductFamily::Pmm, 0.38),
    (ProductFamily::Ps, 0.22),
    (ProductFamily::Psmdb, 0.14),
    (ProductFamily::Postgresql, 0.14),
    (ProductFamily::Pxc, 0.07),
    (ProductFamily::Everest, 0.05),
];

const COUNTRIES: &[(Option<&str>, f64)] = &[
    (Some("US"), 22.0),
    (Some("DE"), 8.0),
    (Some("IN"), 8.0),
    (Some("GB"), 6.0),
    (Some("FR"), 5.0),
    (Some("BR"), 5.0),
    (Some("CN"), 5.0),
    (Some("RU"), 4.0),
    (Some("NL"), 4.0),
    (Some("CA"), 4.0),
    (Some("JP"), 3.0),
    (Some("ES"), 3.0),
    (Some("IT"), 3.0),
    (Some("PL"), 3.0),
    (Some("AU"), 3.0),
    (Some("UA"), 2.0),
    (Some("SG"), 2.0),
    (Some("KR"), 2.0),
    (Some("SE"), 2.0),
    (Some("TR"), 2.0),
    (None, 3.0),
];

const MYSQL_VERSIONS: &[(&str, f64)] = &[
    ("5.7.42-46", 0.04),
    ("5.7.43-47", 0.05),
    ("5.7.44-48", 0.09),
    ("8.0.32-24", 0.05),
    ("8.0.34-26", 0.07),
    ("8.0.35-27", 0.08),
    ("8.0.36-28", 0.12),
    ("8.0.37-29", 0.1),
    ("8.0.39-30", 0.12),
    ("8.0.40-31", 0.08),
    ("8.4.0-1", 0.04),
    ("8.4.2-2", 0.07),
    ("8.4.3-3", 0.09),
];
const MONGODB_VERSIONS: &[(&str, f64)] = &[
    ("5.0.26-22", 0.1),
    ("6.0.15-12", 0.15),
    ("6.0.16-13", 0.2),
    ("7.0.12-7", 0.2),
    ("7.0.14-8", 0.25),
    ("8.0.4-1", 0.1),
];
const POSTGRESQL_VERSIONS: &[(&str, f64)] = &[
    ("13.16.0", 0.1),
    ("14.13.0", 0.15),
    ("15.8.0", 0.2),
    ("16.4.0", 0.25),
    ("16.6.0", 0.15),
    ("17.2.0", 0.15),
];
const DISTRIBUTIONS: &[(&str, f64)] = &[
    ("DOCKER", 0.78),
    ("AMI", 0.1),
    ("OVF", 0.08),
    ("AZURE", 0.03),
    ("DO", 0.01),
];
const OPERATING_SYSTEMS: &[(&str, f64)] = &[
    ("Ubuntu 22.04.4 LTS", 0.3),
    ("Ubuntu 24.04.1 LTS", 0.15),
    ("Red Hat Enterprise Linux 9.3 (Plow)", 0.2),
    ("Oracle Linux Server 8.9", 0.1),
    ("Debian GNU/Linux 12 (bookworm)", 0.12),
    ("Rocky Linux 9.3 (Blue Onyx)", 0.13),
];

/// Alerting, Advisors, Backup Management, DBaaS, access control, updates disabled.
const FEATURE_ODDS: [f64; 6] = [0.55, 0.85, 0.2, 0.06, 0.12, 0.09];

fn pick<T: Copy>(rng: &mut SmallRng, weighted: &[(T, f64)]) -> T {
    let total: f64 = weighted.iter().map(|(_, weight)| weight).sum();
    let mut point = rng.random::<f64>() * total;
    for (item, weight) in weighted {
        if point < *weight {
            return *item;
        }
        point -= weight;
    }
    weighted[weighted.len() - 1].0
}

/// Failures before the first success, each try succeeding with probability `p`.
fn geometric(rng: &mut SmallRng, p: f64) -> u32 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    (u.ln() / (1.0 - p).ln()).floor().min(1e6) as u32
}

fn exponential(rng: &mut SmallRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

fn random_uuid(rng: &mut SmallRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

fn pick_versions(
    rng: &mut SmallRng,
    odds: f64,
    stop: f64,
    versions: &[(&str, f64)],
) -> Vec<String> {
    if !rng.random_bool(odds) {
        return Vec::new();
    }
    let count = 1 + geometric(rng, stop).min(60);
    (0..count)
        .map(|_| (pick(rng, versions)).to_owned())
        .collect()
}

struct PmmServer {
    distribution: &'static str,
    features: [bool; 6],
    mysql: Vec<String>,
    mongodb: Vec<String>,
    postgresql: Vec<String>,
    other_services: u32,
    grafana_users: u32,
    cpu_cores: u32,
}

impl PmmServer {
    fn new(rng: &mut SmallRng) -> Self {
        let normal: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        Self {
            distribution: pick(rng, DISTRIBUTIONS),
            features: FEATURE_ODDS.map(|odds| rng.random_bool(odds)),
            mysql: pick_versions(rng, 0.65, 0.35, MYSQL_VERSIONS),
            mongodb: pick_versions(rng, 0.35, 0.45, MONGODB_VERSIONS),
            postgresql: pick_versions(rng, 0.3, 0.45, POSTGRESQL_VERSIONS),
            other_services: geometric(rng, 0.6),
            grafana_users: 1 + (0.8 + 1.1 * normal).exp().min(5000.0) as u32,
            cpu_cores: pick(rng, &[(2, 0.2), (4, 0.35), (8, 0.3), (16, 0.1), (32, 0.05)]),
        }
    }

    fn services(&self) -> u32 {
        (self.mysql.len() + self.mongodb.len() + self.postgresql.len()) as u32 + self.other_services
    }

    /// Nodes grow with services: several services often share a host.
    fn nodes(&self) -> u32 {
        1 + self.services().div_ceil(2)
    }

    fn drift(&mut self, rng: &mut SmallRng) {
        if rng.random_bool(0.003) {
            let feature = rng.random_range(0..self.features.len());
            self.features[feature] = !self.features[feature];
        }
        if rng.random_bool(0.002) {
            match rng.random_range(0..3) {
                0 => self.mysql.push(pick(rng, MYSQL_VERSIONS).to_owned()),
                1 => self.mongodb.push(pick(rng, MONGODB_VERSIONS).to_owned()),
                _ => self
                    .postgresql
                    .push(pick(rng, POSTGRESQL_VERSIONS).to_owned()),
            }
        }
        if rng.random_bool(0.001) {
            self.mysql.pop();
        }
    }
}

struct Instance {
    id: Uuid,
    family: ProductFamily,
    rng: SmallRng,
    /// First and last day of its life, as offsets from the first generated day.
    start: i64,
    end: i64,
    line: usize,
    /// Index into the line's releases.
    release: usize,
    upgrade_mean_days: f64,
    seconds_of_day: i64,
    country: Option<&'static str>,
    /// Chance that a report's address resolves to `country`.
    resolves: f64,
    /// When the product last started, for PMM's UpDuration and its 24-hour first-report delay.
    started_at: DateTime<Utc>,
    sends_on_start: bool,
    /// Whether it existed before the first generated day.
    preexisting: bool,
    pmm: Option<PmmServer>,
    database_instance_id: Uuid,
    arch: &'static str,
    os: &'static str,
    deployment: &'static str,
}

/// The day-by-day simulation; `generate` writes what it yields, tests read it directly.
pub struct Simulation {
    first_date: NaiveDate,
    days: i64,
    day: i64,
    lines: Vec<Line>,
    instances: Vec<Instance>,
}

impl Simulation {
    pub fn new(settings: &Settings) -> Self {
        let days = i64::from(settings.days.max(1));
        let first_date = settings.first_date();
        let lines = catalog(days);
        let instances = (0..settings.instances)
            .map(|index| {
                let seed = settings
                    .seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(u64::from(index));
                new_instance(SmallRng::seed_from_u64(seed), &lines, days, first_date)
            })
            .collect();
        Self {
            first_date,
            days,
            day: 0,
            lines,
            instances,
        }
    }

    /// The reports of the next day, or `None` after the last one.
    pub fn next_day(&mut self) -> Option<(NaiveDate, Vec<NewReport>)> {
        if self.day >= self.days {
            return None;
        }
        let day = self.day;
        let date = self.first_date + Days::new(day as u64);
        let midnight = date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        let lines = &self.lines;
        let reports = self
            .instances
            .iter_mut()
            .flat_map(|instance| instance.step(lines, day, midnight))
            .collect();
        self.day += 1;
        Some((date, reports))
    }
}

fn new_instance(mut rng: SmallRng, lines: &[Line], days: i64, first_date: NaiveDate) -> Instance {
    let family = pick(&mut rng, FAMILIES);
    let preexisting = rng.random_bool(0.55);
    let (start, end) = if preexisting {
        (
            -rng.random_range(1..500),
            exponential(&mut rng, 500.0) as i64,
        )
    } else {
        let start = rng.random_range(0..days);
        let life = if rng.random_bool(0.2) {
            rng.random_range(1..14)
        } else {
            exponential(&mut rng, 500.0) as i64
        };
        (start, start + life)
    };
    let born = start.max(0);
    let candidates: Vec<(usize, f64)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.family == family && line.released_by(born) > 0)
        .map(|(index, line)| (index, line.install_weight))
        .collect();
    let line = pick(&mut rng, &candidates);
    let latest = lines[line].released_by(born) - 1;
    let installable = |release: usize| lines[line].installable(release, born, false);
    let upgrade_mean_days = pick(&mut rng, &[(7.0, 0.25), (45.0, 0.5), (365.0, 0.25)]);
    let release = if preexisting {
        let behind = geometric(
            &mut rng,
            if upgrade_mean_days > 100.0 {
                0.25
            } else {
                0.55
            },
        );
        installable(latest.saturating_sub(behind as usize))
    } else if rng.random_bool(0.15) {
        installable(latest.saturating_sub(1))
    } else {
        latest
    };
    let sends_on_start = family == ProductFamily::Pmm
        && rng.random_bool(if lines[line].releases[release].1.ends_with(".1") {
            0.7
        } else {
            0.03
        });
    let seconds_of_day = rng.random_range(0..85_000);
    let install_date = first_date
        .checked_add_signed(TimeDelta::days(start))
        .unwrap_or(first_date);
    let started_at = install_date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        + TimeDelta::seconds(seconds_of_day - rng.random_range(60..600));
    let pmm = (family == ProductFamily::Pmm).then(|| PmmServer::new(&mut rng));
    Instance {
        id: random_uuid(&mut rng),
        family,
        start,
        end,
        line,
        release,
        upgrade_mean_days,
        seconds_of_day,
        country: pick(&mut rng, COUNTRIES),
        resolves: if rng.random_bool(0.05) {
            2.0 / 3.0
        } else {
            1.0
        },
        started_at,
        sends_on_start,
        preexisting,
        pmm,
        database_instance_id: random_uuid(&mut rng),
        arch: pick(
            &mut rng,
            &[
                ("x86_64 x86_64", 0.85),
                ("aarch64 aarch64", 0.13),
                ("x86_64 unknown", 0.02),
            ],
        ),
        os: pick(&mut rng, OPERATING_SYSTEMS),
        deployment: pick(&mut rng, &[("PACKAGE", 0.75), ("DOCKER", 0.25)]),
        rng,
    }
}

impl Instance {
    fn version<'a>(&self, lines: &'a [Line]) -> &'a str {
        &lines[self.line].releases[self.release].1
    }

    /// Advances the installation to `day` and returns its reports of that day, oldest first.
    fn step(&mut self, lines: &[Line], day: i64, midnight: DateTime<Utc>) -> Vec<NewReport> {
        if day < self.start || day > self.end {
            return Vec::new();
        }
        let report_at =
            midnight + TimeDelta::seconds(self.seconds_of_day + self.rng.random_range(0..900));
        if day == self.start && !self.preexisting {
            // Installed today: PMM reports after its 24-hour delay unless this build skips it.
            return if self.sends_on_start {
                vec![self.report(lines, report_at)]
            } else {
                Vec::new()
            };
        }
        if let Some(pmm) = &mut self.pmm {
            pmm.drift(&mut self.rng);
        }
        if self.family == ProductFamily::Pmm {
            return self.pmm_day(lines, day, midnight, report_at);
        }
        if let Some((line, release)) = self.upgrade_target(lines, day, false) {
            self.install(lines, line, release);
            self.started_at = report_at - TimeDelta::seconds(self.rng.random_range(300..3600));
        } else if self.rng.random_bool(0.01) {
            self.started_at = report_at - TimeDelta::seconds(self.rng.random_range(300..3600));
        }
        if self.rng.random_bool(0.98) {
            vec![self.report(lines, report_at)]
        } else {
            Vec::new()
        }
    }

    /// A PMM server's day. pmm-managed reports 24 hours after it starts and every 24 hours after
    /// that, so a restart (for an upgrade, or 1 % of days for no reason) before the day's report
    /// time skips it, and one after it comes on top; a build that sends on start reports at once.
    fn pmm_day(
        &mut self,
        lines: &[Line],
        day: i64,
        midnight: DateTime<Utc>,
        report_at: DateTime<Utc>,
    ) -> Vec<NewReport> {
        let noon = midnight + TimeDelta::hours(12);
        let restart_at = midnight + TimeDelta::seconds(self.rng.random_range(0..84_000));
        let target = self.upgrade_target(lines, day, restart_at < noon);
        if target.is_none() && !self.rng.random_bool(0.01) {
            return vec![self.report(lines, report_at)];
        }
        let mut reports = Vec::new();
        if report_at < restart_at {
            reports.push(self.report(lines, report_at));
        }
        if let Some((line, release)) = target {
            self.install(lines, line, release);
        }
        self.start(lines, restart_at, &mut reports);
        if lines[self.line].pulled[self.release] {
            // Withdrawn at noon: the server gets the replacement that afternoon or evening.
            let replaced_at = (restart_at.max(noon)
                + TimeDelta::seconds(self.rng.random_range(600..36_000)))
            .min(midnight + TimeDelta::seconds(86_000));
            self.install(lines, self.line, self.release + 1);
            self.start(lines, replaced_at, &mut reports);
        }
        reports
    }

    /// The release an upgrade today would install, if the installation upgrades today.
    fn upgrade_target(
        &mut self,
        lines: &[Line],
        day: i64,
        before_noon: bool,
    ) -> Option<(usize, usize)> {
        let line = &lines[self.line];
        let moves = LINE_MOVES
            .iter()
            .find(|(family, from, _, _)| *family == self.family && *from == line.name);
        if let Some((_, _, to, odds)) = moves {
            let target = lines
                .iter()
                .position(|l| l.family == self.family && l.name == *to)
                .expect("line moves name existing lines");
            let released = lines[target].released_by(day);
            if released > 0 && self.rng.random_bool(*odds) {
                return Some((target, lines[target].installable(released - 1, day, false)));
            }
        }
        let available = line.available(day, before_noon);
        if available > self.release + 1 && self.rng.random_bool(1.0 / self.upgrade_mean_days) {
            let release = if self.rng.random_bool(0.85) {
                available - 1
            } else {
                self.release + 1
            };
            return Some((self.line, line.installable(release, day, before_noon)));
        }
        None
    }

    fn install(&mut self, lines: &[Line], line: usize, release: usize) {
        self.line = line;
        self.release = release;
        self.sends_on_start = self.family == ProductFamily::Pmm
            && (lines[line].pulled[release]
                || self
                    .rng
                    .random_bool(if lines[line].releases[release].1.ends_with(".1") {
                        0.7
                    } else {
                        0.03
                    }));
    }

    /// The product starts at `at`; a build that sends on start reports a few minutes later.
    fn start(&mut self, lines: &[Line], at: DateTime<Utc>, reports: &mut Vec<NewReport>) {
        self.started_at = at;
        if self.sends_on_start {
            let sent_at = at + TimeDelta::seconds(self.rng.random_range(30..300));
            reports.push(self.report(lines, sent_at));
        }
    }

    fn report(&mut self, lines: &[Line], created_at: DateTime<Utc>) -> NewReport {
        let version = self.version(lines).to_owned();
        let versioned = self.rng.random_bool(0.995);
        let resolved = self.rng.random_bool(self.resolves);
        let up_duration = (created_at - self.started_at).num_seconds().max(1);
        let mut metrics = Vec::with_capacity(40);
        let mut add = |key: &str, value: String| {
            metrics.push(Metric {
                key: key.to_owned(),
                value,
            })
        };
        match (&self.pmm, self.family) {
            (Some(pmm), _) => {
                let pmm3 = version.starts_with("3.");
                let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
                if versioned {
                    add("PMMServerVersion", version.clone());
                }
                add(
                    "UpDuration",
                    format!(
                        "seconds:{up_duration} nanos:{}",
                        self.rng.random_range(0..1_000_000_000)
                    ),
                );
                add("DistributionMethod", pmm.distribution.to_owned());
                add("pmm_server_ia_enabled", flag(pmm.features[0]));
                add(
                    "pmm_server_alert_rules_number",
                    self.rng.random_range(0..40).to_string(),
                );
                if pmm3 {
                    add("pmm_server_advisors_disabled", flag(!pmm.features[1]));
                } else {
                    add("pmm_server_stt_enabled", flag(pmm.features[1]));
                }
                add(
                    "pmm_server_backup_management_enabled",
                    flag(pmm.features[2]),
                );
                add("pmm_server_alert_manager_enabled", "false".to_owned());
                if !pmm3 {
                    add("pmm_server_dbaas_enabled", flag(pmm.features[3]));
                }
                add("pmm_server_access_control_enabled", flag(pmm.features[4]));
                add("pmm_server_updates_disabled", flag(pmm.features[5]));
                add(
                    "pmm_server_data_retention_period",
                    "2592000000000000".to_owned(),
                );
                for mysql in &pmm.mysql {
                    add("mysql_version", mysql.clone());
                    add(
                        "mysql_version_comment",
                        format!(
                            "Percona Server (GPL), Release {}",
                            mysql.rsplit('-').next().unwrap_or("1")
                        ),
                    );
                }
                for mongodb in &pmm.mongodb {
                    add("mongodb_version", mongodb.clone());
                    add("mongodb_edition", "Community".to_owned());
                }
                for postgresql in &pmm.postgresql {
                    add("postgresql_version", postgresql.clone());
                }
                add("pmm_server_postgresql_version", "14.13.0".to_owned());
                add("grafana_users_count", pmm.grafana_users.to_string());
                add("pmm_server_usage_nodes_count", pmm.nodes().to_string());
                add(
                    "pmm_server_usage_services_count",
                    pmm.services().to_string(),
                );
                add("pmm_server_node_cpu_core_count", pmm.cpu_cores.to_string());
                add(
                    "pmm_server_node_memory_size",
                    (u64::from(pmm.cpu_cores) * 4 * 1024 * 1024 * 1024).to_string(),
                );
                let agents: Vec<String> = (0..pmm.nodes())
                    .map(|node| {
                        format!(
                            r#"{{"1":"pmm-agent","2":"{}","3":"{version}"}}"#,
                            if node == 0 {
                                "pmm-server".to_owned()
                            } else {
                                format!("node-{node}")
                            }
                        )
                    })
                    .collect();
                add(
                    "pmm_server_agents_version",
                    format!(r#"{{"v":[{}]}}"#, agents.join(",")),
                );
            }
            (None, ProductFamily::Everest) => {
                if versioned {
                    add("version", version.clone());
                }
                add("pxc", self.rng.random_range(0..5).to_string());
                add("psmdb", self.rng.random_range(0..5).to_string());
                add("postgresql", self.rng.random_range(0..5).to_string());
            }
            (None, family) => {
                let package = match family {
                    ProductFamily::Ps => "percona-server-server",
                    ProductFamily::Pxc => "percona-xtradb-cluster-server",
                    ProductFamily::Psmdb => "percona-server-mongodb-server",
                    _ => "percona-postgresql-server",
                };
                add("hardware_arch", self.arch.to_owned());
                add(
                    "installed_packages",
                    format!(
                        r#"[{{"name":"percona-release","version":"1.0-29","repository":{{"name":"","component":""}}}},{{"name":"{package}","version":"{version}-1","repository":{{"name":"{}","component":"release"}}}},{{"name":"percona-telemetry-agent","version":"1.0.2-1","repository":{{"name":"telemetry","component":"release"}}}}]"#,
                        lines[self.line].name.replace('.', "")
                    ),
                );
                add("OS", self.os.to_owned());
                add("deployment", self.deployment.to_owned());
                if versioned {
                    add("pillar_version", version.clone());
                }
                add("db_instance_id", self.database_instance_id.to_string());
                add("uptime", up_duration.to_string());
                add("databases_count", self.rng.random_range(1..40).to_string());
                add(
                    "databases_size",
                    self.rng.random_range(1_000..10_000_000_000u64).to_string(),
                );
                if matches!(family, ProductFamily::Ps | ProductFamily::Pxc) {
                    add(
                        "active_plugins",
                        r#"["binlog","mysql_native_password","caching_sha2_password","PERFORMANCE_SCHEMA"]"#.to_owned(),
                    );
                    add("se_engines_in_use", r#"["InnoDB"]"#.to_owned());
                }
            }
        }
        NewReport {
            report: Report {
                report_id: random_uuid(&mut self.rng),
                instance_id: self.id,
                product_family: self.family,
                created_at,
                version: versioned.then_some(version),
                up_duration_seconds: (self.family == ProductFamily::Pmm).then_some(up_duration),
                metrics,
            },
            country_code: self.country.filter(|_| resolved).map(str::to_owned),
            protocol: PROTOCOL,
            // Arriving as sent places the report on its own day (analytics.report_day()) and lets
            // retention age it as the history says.
            received_at: Some(created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(instances: u32, days: u32) -> Settings {
        Settings {
            instances,
            days,
            end_date: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            seed: 7,
            batch_size: 100,
            concurrency: 1,
        }
    }

    #[test]
    fn same_seed_same_history() {
        let mut a = Simulation::new(&settings(50, 5));
        let mut b = Simulation::new(&settings(50, 5));
        while let (Some((day_a, reports_a)), Some((day_b, reports_b))) =
            (a.next_day(), b.next_day())
        {
            assert_eq!(day_a, day_b);
            let ids_a: Vec<_> = reports_a.iter().map(|r| r.report.report_id).collect();
            let ids_b: Vec<_> = reports_b.iter().map(|r| r.report.report_id).collect();
            assert_eq!(ids_a, ids_b);
        }
    }

    #[test]
    fn reports_stay_on_their_day_and_carry_the_version_metric() {
        let mut simulation = Simulation::new(&settings(300, 20));
        let mut total = 0;
        while let Some((date, reports)) = simulation.next_day() {
            for new in &reports {
                let report = &new.report;
                assert_eq!(report.created_at.date_naive(), date);
                let key = report.product_family.version_metric_key();
                let sent = report
                    .metrics
                    .iter()
                    .find(|m| m.key == key)
                    .map(|m| m.value.as_str());
                assert_eq!(sent, report.version.as_deref());
            }
            total += reports.len();
        }
        assert!(total > 300 * 20 / 4, "only {total} reports");
    }

    #[test]
    fn patches_follow_their_minor_and_pulled_releases_are_replaced_the_same_day() {
        let lines = catalog(200);
        let pmm3 = lines.iter().find(|line| line.name == "3").unwrap();
        for (index, (day, name)) in pmm3.releases.iter().enumerate() {
            if let Some(minor) = name.strip_suffix(".1") {
                let (released, _) = pmm3
                    .releases
                    .iter()
                    .find(|(_, n)| *n == format!("{minor}.0"))
                    .unwrap();
                assert!(
                    *day == *released || *day == released + 14,
                    "{name} on {day}"
                );
            }
            if pmm3.pulled[index] {
                assert_eq!(pmm3.releases[index + 1], (*day, name.replace(".0", ".1")));
                assert_eq!(pmm3.available(*day, true), index + 1);
                assert_eq!(pmm3.available(*day, false), index + 2);
                assert_eq!(pmm3.installable(index, *day + 1, true), index + 1);
            }
        }
        assert!(pmm3.pulled.iter().filter(|pulled| **pulled).count() >= 2);
    }

    /// What one report a day would never show: several reports per instance-day, reports without a
    /// version, instances that resolve only sometimes, a pulled release seen only before the day's last report.
    #[test]
    fn history_has_the_awkward_paths_of_real_data() {
        let mut simulation = Simulation::new(&settings(1500, 90));
        let mut per_day: HashMap<(Uuid, NaiveDate), Vec<NewReport>> = HashMap::new();
        let mut countries: HashMap<Uuid, (bool, bool)> = HashMap::new();
        let mut unversioned = 0;
        while let Some((date, reports)) = simulation.next_day() {
            for new in reports {
                unversioned += usize::from(new.report.version.is_none());
                let seen = countries.entry(new.report.instance_id).or_default();
                if new.country_code.is_some() {
                    seen.0 = true
                } else {
                    seen.1 = true
                }
                per_day
                    .entry((new.report.instance_id, date))
                    .or_default()
                    .push(new);
            }
        }
        let crowded: Vec<_> = per_day.values().filter(|day| day.len() > 1).collect();
        assert!(
            crowded.len() > 20,
            "{} instance-days with several reports",
            crowded.len()
        );
        let mid_day_only = crowded.iter().any(|day| {
            let last = day.iter().max_by_key(|r| r.report.created_at).unwrap();
            day.iter()
                .any(|r| r.report.version.is_some() && r.report.version != last.report.version)
        });
        assert!(mid_day_only, "a version replaced within the day");
        assert!(unversioned > 20, "{unversioned} reports without a version");
        let mixed = countries
            .values()
            .filter(|(resolved, unresolved)| *resolved && *unresolved)
            .count();
        assert!(
            mixed > 10,
            "{mixed} instances with resolved and unresolved reports"
        );
    }
}

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
//!
//! The files follow the model: `calendar.rs` the release calendar, `installation.rs` an
//! installation's life and days, `pmm_server.rs` what a PMM server runs and monitors, `report.rs`
//! what a report carries, and `random.rs` the draws they are made of. Each installation draws from
//! its own generator, seeded from the seed and its index, so the same settings give the same
//! reports byte for byte.

mod calendar;
mod installation;
mod pmm_server;
mod random;
mod report;

use std::fmt;

use chrono::{Days, NaiveDate};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use sqlx::PgPool;
use tokio::task::JoinSet;

use crate::store::{self, NewReport, RollupRefresh, StoreError, Topology};
use calendar::{Line, release_calendar};
use installation::{Instance, new_instance};

/// What to generate and how to write it: the `generate` command fills it in from its flags, tests
/// and benchmarks build it directly.
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
    let topology = store::Topology::of(pool).await?;
    let mut reports = 0u64;
    while let Some((date, day)) = simulation.next_day() {
        let count = day.len();
        reports += write_day(pool, topology, day, settings).await?;
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

/// Writes one day's reports, `concurrency` batches of `batch_size` at a time.
async fn write_day(
    pool: &PgPool,
    topology: Topology,
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
            running.spawn(async move { store::insert_reports(&pool, topology, &batch).await });
        }
        match running.join_next().await {
            Some(result) => written += result.expect("a batch task does not panic")?,
            None => return Ok(written),
        }
    }
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
        let lines = release_calendar(days);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use uuid::Uuid;

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

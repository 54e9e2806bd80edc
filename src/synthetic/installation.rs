//! An installation over its life: when it appears and goes away, which line and release it runs,
//! and what each of its days brings (staged upgrades, line moves, restarts, PMM's 24-hour report
//! timer and pulled builds). What its reports carry is in `report.rs`.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rand::RngExt;
use rand::rngs::SmallRng;
use uuid::Uuid;

use super::calendar::{LINE_MOVES, Line};
use super::pmm_server::PmmServer;
use super::random::{exponential, geometric, pick, random_uuid};
use crate::report::ProductFamily;
use crate::store::NewReport;

/// The product mix.
const FAMILIES: &[(ProductFamily, f64)] = &[
    (ProductFamily::Pmm, 0.38),
    (ProductFamily::Ps, 0.22),
    (ProductFamily::Psmdb, 0.14),
    (ProductFamily::Postgresql, 0.14),
    (ProductFamily::Pxc, 0.07),
    (ProductFamily::Everest, 0.05),
];

/// Where installations report from; `None` is an address the country database does not resolve.
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

/// Of the hosts the database packages run on.
const OPERATING_SYSTEMS: &[(&str, f64)] = &[
    ("Ubuntu 22.04.4 LTS", 0.3),
    ("Ubuntu 24.04.1 LTS", 0.15),
    ("Red Hat Enterprise Linux 9.3 (Plow)", 0.2),
    ("Oracle Linux Server 8.9", 0.1),
    ("Debian GNU/Linux 12 (bookworm)", 0.12),
    ("Rocky Linux 9.3 (Blue Onyx)", 0.13),
];

/// One installation: when it exists, what it runs, where it reports from, and its own generator.
pub(super) struct Instance {
    pub(super) id: Uuid,
    pub(super) family: ProductFamily,
    pub(super) rng: SmallRng,
    /// First and last day of its life, as offsets from the first generated day.
    start: i64,
    end: i64,
    pub(super) line: usize,
    /// Index into the line's releases.
    pub(super) release: usize,
    upgrade_mean_days: f64,
    seconds_of_day: i64,
    pub(super) country: Option<&'static str>,
    /// Chance that a report's address resolves to `country`.
    pub(super) resolves: f64,
    /// When the product last started, for PMM's UpDuration and its 24-hour first-report delay.
    pub(super) started_at: DateTime<Utc>,
    sends_on_start: bool,
    /// Whether it existed before the first generated day.
    preexisting: bool,
    pub(super) pmm: Option<PmmServer>,
    pub(super) database_instance_id: Uuid,
    pub(super) arch: &'static str,
    pub(super) os: &'static str,
    pub(super) deployment: &'static str,
}

/// A new installation, drawn from its own generator: everything but its daily behaviour is
/// decided here.
pub(super) fn new_instance(
    mut rng: SmallRng,
    lines: &[Line],
    days: i64,
    first_date: NaiveDate,
) -> Instance {
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
    /// The release it runs.
    pub(super) fn version<'a>(&self, lines: &'a [Line]) -> &'a str {
        &lines[self.line].releases[self.release].1
    }

    /// Advances the installation to `day` and returns its reports of that day, oldest first.
    pub(super) fn step(
        &mut self,
        lines: &[Line],
        day: i64,
        midnight: DateTime<Utc>,
    ) -> Vec<NewReport> {
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
}

//! The release calendar: each product line (PMM 2 and 3, PS 5.7 / 8.0 / 8.4, ...) with its
//! releases as day offsets from the first generated day, which releases were pulled, and how often
//! an installation moves to a newer line. Installations only ever ask it what is out on a day.

use crate::report::ProductFamily;

/// A product line and its releases, as day offsets from the first generated day.
pub(super) struct Line {
    pub(super) family: ProductFamily,
    pub(super) name: &'static str,
    pub(super) releases: Vec<(i64, String)>,
    /// Per release: withdrawn at noon on its release day, when the next release replaces it.
    pub(super) pulled: Vec<bool>,
    pub(super) install_weight: f64,
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
    pub(super) fn released_by(&self, day: i64) -> usize {
        self.releases
            .partition_point(|(released, _)| *released <= day)
    }

    /// How many releases can be installed on `day`: a pulled release's replacement only from noon.
    pub(super) fn available(&self, day: i64, before_noon: bool) -> usize {
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
    pub(super) fn installable(&self, release: usize, day: i64, before_noon: bool) -> usize {
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

/// Every product line the model knows, with its releases up to the last generated day.
pub(super) fn release_calendar(days: i64) -> Vec<Line> {
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
pub(super) const LINE_MOVES: &[(ProductFamily, &str, &str, f64)] = &[
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_follow_their_minor_and_pulled_releases_are_replaced_the_same_day() {
        let lines = release_calendar(200);
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
}

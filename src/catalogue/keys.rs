//! The table of known metric keys: every key Percona's clients are known to send, with the
//! products that send it, its value shape and its meaning. Sources for every key are listed in
//! `docs/protocol.md` (§3.6 for PMM, §4–§6 for the telemetry agent, installer and Everest).
//!
//! The table is written in one file per product, PMM Server's in two as it is most of the table:
//! `keys/pmm_server.rs` (the installation, its switches, what it monitors), `keys/pmm_usage.rs`
//! (its size and use), `keys/database_packages.rs` and `keys/everest.rs`. [`METRIC_KEYS`] joins
//! them in that order, the order of the landing page.

mod database_packages;
mod everest;
mod pmm_server;
mod pmm_usage;

use super::{Group, MetricKey, ValueKind};
use crate::report::ProductFamily;

pub(super) use database_packages::ANY_DATABASE_PACKAGE;

const PMM: &[ProductFamily] = &[ProductFamily::Pmm];

const fn pmm(
    key: &'static str,
    group: Group,
    value: ValueKind,
    meaning: &'static str,
) -> MetricKey {
    MetricKey::new(key, group, PMM, value, meaning)
}

/// Every known key. Keys are unique within a product family (a unit test checks this).
pub static METRIC_KEYS: &[MetricKey] = &concat::<{ total(PARTS) }>(PARTS);

const PARTS: &[&[MetricKey]] = &[
    pmm_server::KEYS,
    pmm_usage::KEYS,
    database_packages::KEYS,
    everest::KEYS,
];

const fn total(parts: &[&[MetricKey]]) -> usize {
    let mut total = 0;
    let mut part = 0;
    while part < parts.len() {
        total += parts[part].len();
        part += 1;
    }
    total
}

/// The parts one after the other, at compile time, so that `METRIC_KEYS` stays one plain slice.
const fn concat<const N: usize>(parts: &[&[MetricKey]]) -> [MetricKey; N] {
    // Any key will do to fill the array: every place is overwritten below.
    let mut all = [parts[0][0]; N];
    let mut at = 0;
    let mut part = 0;
    while part < parts.len() {
        let mut index = 0;
        while index < parts[part].len() {
            all[at] = parts[part][index];
            at += 1;
            index += 1;
        }
        part += 1;
    }
    all
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn keys_are_unique_per_family() {
        let mut seen = HashSet::new();
        for entry in METRIC_KEYS {
            for family in entry.families {
                assert!(
                    seen.insert((*family, entry.key)),
                    "{} listed twice for {family:?}",
                    entry.key
                );
            }
        }
    }

    #[test]
    fn every_entry_names_its_senders_and_meaning() {
        for entry in METRIC_KEYS {
            assert!(!entry.families.is_empty(), "{}", entry.key);
            assert!(!entry.meaning.is_empty(), "{}", entry.key);
            assert!(!entry.families.contains(&ProductFamily::Invalid));
        }
    }
}

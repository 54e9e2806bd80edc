//! The `report_metric_values` entries (key lists and long values) that this process saw committed
//! for live reports this month, so that a batch leaves them out instead of sending them again.
//!
//! An instance sends the same key list and long values report after report, and each entry is kept
//! once per instance and month of arrival. Sent with every report, each one cost an index probe of
//! the month's `report_metric_values` key (its `ON CONFLICT DO NOTHING`) and its text on the wire:
//! eight probes per fixture-shaped report, about a sixth of PostgreSQL's time in the growth soak
//! (docs/performance.md). What is left out is what a committed transaction of this process stored
//! in the very month the batch's own transaction stores into, so nothing a report refers to can be
//! missing: entries leave the table only with their whole month's partition, which the expiry drops
//! only once the month has ended. Generated history (reports with their own arrival time) is sent
//! in full, as before.
//!
//! Remembered per instance is one fingerprint of the set of digests its latest committed report
//! sent (about 30 bytes an instance): a report whose set has that fingerprint sends none of it. The
//! digests are SHA-256 prefixes and the table's key already takes them as unique per instance and
//! month; the fingerprint of a set is no weaker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use uuid::Uuid;

/// Instances remembered at most; past that the memory starts again empty, and entries are sent
/// until they are remembered again.
const MAX_INSTANCES: usize = 500_000;
/// The memory starts again empty after this long, so that whatever happened to the table behind
/// the service's back (a restore, a manual delete) is noticed within this time.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Shared by the writer tasks. Empty (and unused) for writes outside the writer.
#[derive(Default)]
pub struct StoredEntries {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The month of arrival the fingerprints are of (the first of the month, UTC).
    month: Option<NaiveDate>,
    started: Option<Instant>,
    fingerprints: HashMap<Uuid, u64>,
}

impl State {
    /// Whether the fingerprints are of `month` and young enough to go by.
    fn holds(&self, month: NaiveDate) -> bool {
        self.month == Some(month)
            && self
                .started
                .is_some_and(|started| started.elapsed() < FORGET_AFTER)
    }
}

/// The sets of entries a transaction sends, to be remembered once it has committed.
#[derive(Default)]
pub struct SentEntries {
    month: Option<NaiveDate>,
    sets: Vec<(Uuid, u64)>,
}

impl SentEntries {
    pub fn add(&mut self, month: NaiveDate, instance: Uuid, fingerprint: u64) {
        self.month = Some(month);
        self.sets.push((instance, fingerprint));
    }
}

/// One number for a report's set of digests, whatever their order.
pub fn fingerprint(digests: impl IntoIterator<Item = i64>) -> u64 {
    let mut digests: Vec<i64> = digests.into_iter().collect();
    digests.sort_unstable();
    digests.dedup();
    digests.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &digest| {
        (hash.rotate_left(23) ^ digest as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl StoredEntries {
    /// For each `(instance, fingerprint)`, whether a committed transaction of this process stored
    /// that set of entries in `month`, the month of arrival of the transaction that asks.
    pub fn stored(&self, month: NaiveDate, sets: &[(Uuid, u64)]) -> Vec<bool> {
        let state = self.state.lock().expect("stored entries lock");
        if !state.holds(month) {
            return vec![false; sets.len()];
        }
        sets.iter()
            .map(|(instance, fingerprint)| state.fingerprints.get(instance) == Some(fingerprint))
            .collect()
    }

    /// Remembers what a transaction sent, after it committed.
    pub fn remember(&self, sent: SentEntries) {
        let Some(month) = sent.month else { return };
        let mut state = self.state.lock().expect("stored entries lock");
        // A transaction of the month before, committed after one of this month.
        if state.month.is_some_and(|current| current > month) {
            return;
        }
        if !state.holds(month) {
            state.fingerprints.clear();
            state.month = Some(month);
            state.started = Some(Instant::now());
        }
        for (instance, fingerprint) in sent.sets {
            if state.fingerprints.len() >= MAX_INSTANCES
                && !state.fingerprints.contains_key(&instance)
            {
                state.fingerprints.clear();
            }
            state.fingerprints.insert(instance, fingerprint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, 1).unwrap()
    }

    fn stored(seen: &StoredEntries, month: NaiveDate, instance: Uuid, set: &[i64]) -> bool {
        seen.stored(month, &[(instance, fingerprint(set.iter().copied()))])[0]
    }

    fn remember(seen: &StoredEntries, month: NaiveDate, instance: Uuid, set: &[i64]) {
        let mut sent = SentEntries::default();
        sent.add(month, instance, fingerprint(set.iter().copied()));
        seen.remember(sent);
    }

    #[test]
    fn only_the_set_remembered_for_the_instance_and_the_asking_month_counts_as_stored() {
        let seen = StoredEntries::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(!stored(&seen, month(12), a, &[7, 9]));
        remember(&seen, month(12), a, &[7, 9]);
        assert!(stored(&seen, month(12), a, &[9, 7]));
        assert!(!stored(&seen, month(12), a, &[7]));
        assert!(!stored(&seen, month(12), a, &[7, 9, 11]));
        assert!(!stored(&seen, month(12), b, &[7, 9]));
        // Another month's transaction stores into another partition: nothing counts there.
        assert!(!stored(&seen, month(11), a, &[7, 9]));
        let january = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        assert!(!stored(&seen, january, a, &[7, 9]));
    }

    #[test]
    fn a_new_month_starts_empty_and_a_late_commit_of_the_old_one_is_ignored() {
        let seen = StoredEntries::default();
        let a = Uuid::from_u128(1);
        remember(&seen, month(11), a, &[7]);
        remember(&seen, month(12), a, &[8]);
        assert!(stored(&seen, month(12), a, &[8]));
        remember(&seen, month(11), a, &[9]);
        assert!(!stored(&seen, month(11), a, &[9]));
        assert!(stored(&seen, month(12), a, &[8]));
    }

    #[test]
    fn a_memory_an_hour_old_counts_for_nothing() {
        let seen = StoredEntries::default();
        let a = Uuid::from_u128(1);
        remember(&seen, month(12), a, &[7]);
        assert!(stored(&seen, month(12), a, &[7]));
        seen.state.lock().unwrap().started = Instant::now().checked_sub(FORGET_AFTER);
        assert!(!stored(&seen, month(12), a, &[7]));
        remember(&seen, month(12), a, &[8]);
        assert!(!stored(&seen, month(12), a, &[7]));
        assert!(stored(&seen, month(12), a, &[8]));
    }

    #[test]
    fn an_instance_s_latest_set_replaces_the_one_before() {
        let seen = StoredEntries::default();
        let a = Uuid::from_u128(1);
        remember(&seen, month(12), a, &[1, 2]);
        remember(&seen, month(12), a, &[1, 3]);
        assert!(!stored(&seen, month(12), a, &[1, 2]));
        assert!(stored(&seen, month(12), a, &[1, 3]));
    }

    #[test]
    fn fingerprints_tell_sets_apart_and_ignore_order_and_repeats() {
        assert_eq!(fingerprint([3, 1, 2]), fingerprint([1, 2, 3, 3]));
        assert_ne!(fingerprint([1, 2]), fingerprint([2, 3]));
        assert_ne!(fingerprint([1]), fingerprint([1, 0]));
        assert_ne!(fingerprint([]), fingerprint([0]));
    }
}

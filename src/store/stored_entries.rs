//! The `report_metric_values` entries (key lists and long values) that this process saw committed
//! for live reports this month, so that a batch leaves them out instead of sending them again.
//!
//! An instance sends the same key list and long values report after report, and each entry is kept
//! once per instance and month of arrival. Sent with every report, each one cost an index probe of
//! the month's `report_metric_values` key (its `ON CONFLICT DO NOTHING`) and its text on the wire:
//! eight probes per fixture-shaped report, a fifth of PostgreSQL's time in the growth soak
//! (docs/performance.md). What is left out is what a committed transaction of this process stored
//! in the very month the batch's own transaction stores into, so nothing a report refers to can be
//! missing: entries leave the table only with their whole month's partition, which the expiry drops
//! only once the month has ended. Generated history (reports with their own arrival time) is sent
//! in full, as before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use uuid::Uuid;

/// Instances remembered at most, about 100 bytes each with their digests; past that the memory
/// starts again empty, and entries are sent until they are remembered again.
const MAX_INSTANCES: usize = 200_000;
/// Digests remembered per instance; an instance whose long values change with every report keeps
/// only its latest transaction's.
const MAX_DIGESTS_PER_INSTANCE: usize = 64;
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
    /// The month of arrival the digests are of (the first of the month, UTC).
    month: Option<NaiveDate>,
    started: Option<Instant>,
    /// Each instance's digests, sorted.
    digests: HashMap<Uuid, Box<[i64]>>,
}

/// The live entries a transaction sends, to be remembered once it has committed.
#[derive(Default)]
pub struct SentEntries {
    month: Option<NaiveDate>,
    entries: Vec<(Uuid, i64)>,
}

impl SentEntries {
    pub fn add(&mut self, month: NaiveDate, instance: Uuid, digest: i64) {
        self.month = Some(month);
        self.entries.push((instance, digest));
    }
}

impl StoredEntries {
    /// For each `(instance, digest)`, whether a committed transaction of this process stored it in
    /// `month`, the month of arrival of the transaction that asks.
    pub fn stored(&self, month: NaiveDate, entries: &[(Uuid, i64)]) -> Vec<bool> {
        let state = self.state.lock().expect("stored entries lock");
        if state.month != Some(month) {
            return vec![false; entries.len()];
        }
        entries
            .iter()
            .map(|(instance, digest)| {
                state
                    .digests
                    .get(instance)
                    .is_some_and(|digests| digests.binary_search(digest).is_ok())
            })
            .collect()
    }

    /// Remembers what a transaction sent, after it committed.
    pub fn remember(&self, sent: SentEntries) {
        let Some(month) = sent.month else { return };
        let mut state = self.state.lock().expect("stored entries lock");
        let expired = state
            .started
            .is_none_or(|started| started.elapsed() >= FORGET_AFTER);
        match state.month {
            // A transaction of the month before, committed after one of this month.
            Some(current) if current > month => return,
            Some(current) if current == month && !expired => {}
            _ => {
                state.digests.clear();
                state.month = Some(month);
                state.started = Some(Instant::now());
            }
        }
        let mut by_instance: HashMap<Uuid, Vec<i64>> = HashMap::new();
        for (instance, digest) in sent.entries {
            by_instance.entry(instance).or_default().push(digest);
        }
        for (instance, mut latest) in by_instance {
            latest.sort_unstable();
            latest.dedup();
            let mut digests = latest.clone();
            if let Some(known) = state.digests.get(&instance) {
                digests.extend_from_slice(known);
                digests.sort_unstable();
                digests.dedup();
            }
            if digests.len() > MAX_DIGESTS_PER_INSTANCE {
                digests = latest;
            }
            if digests.len() > MAX_DIGESTS_PER_INSTANCE {
                state.digests.remove(&instance);
                continue;
            }
            if !state.digests.contains_key(&instance) && state.digests.len() >= MAX_INSTANCES {
                state.digests.clear();
            }
            state.digests.insert(instance, digests.into_boxed_slice());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, 1).unwrap()
    }

    fn stored(seen: &StoredEntries, month: NaiveDate, instance: Uuid, digest: i64) -> bool {
        seen.stored(month, &[(instance, digest)])[0]
    }

    fn sent(month: NaiveDate, entries: &[(Uuid, i64)]) -> SentEntries {
        let mut sent = SentEntries::default();
        for &(instance, digest) in entries {
            sent.add(month, instance, digest);
        }
        sent
    }

    #[test]
    fn only_entries_remembered_for_the_asking_month_count_as_stored() {
        let seen = StoredEntries::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(!stored(&seen, month(12), a, 7));
        seen.remember(sent(month(12), &[(a, 7), (a, 9)]));
        assert!(stored(&seen, month(12), a, 7));
        assert!(stored(&seen, month(12), a, 9));
        assert!(!stored(&seen, month(12), a, 8));
        assert!(!stored(&seen, month(12), b, 7));
        // The next month's transaction stores into another partition: nothing counts there.
        assert!(!stored(&seen, month(11), a, 7));
        assert!(!stored(
            &seen,
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            a,
            7
        ));
    }

    #[test]
    fn a_new_month_starts_empty_and_a_late_commit_of_the_old_one_is_ignored() {
        let seen = StoredEntries::default();
        let a = Uuid::from_u128(1);
        seen.remember(sent(month(11), &[(a, 7)]));
        seen.remember(sent(month(12), &[(a, 8)]));
        assert!(!stored(&seen, month(12), a, 7));
        assert!(stored(&seen, month(12), a, 8));
        seen.remember(sent(month(11), &[(a, 9)]));
        assert!(!stored(&seen, month(11), a, 9));
        assert!(!stored(&seen, month(12), a, 9));
    }

    #[test]
    fn digests_add_up_per_instance_up_to_the_limit() {
        let seen = StoredEntries::default();
        let a = Uuid::from_u128(1);
        seen.remember(sent(month(12), &[(a, 1)]));
        seen.remember(sent(month(12), &[(a, 2)]));
        assert!(stored(&seen, month(12), a, 1) && stored(&seen, month(12), a, 2));
        let many: Vec<(Uuid, i64)> = (10..10 + MAX_DIGESTS_PER_INSTANCE as i64)
            .map(|d| (a, d))
            .collect();
        seen.remember(sent(month(12), &many));
        // Past the limit the instance keeps its latest transaction's digests only.
        assert!(!stored(&seen, month(12), a, 1));
        assert!(stored(&seen, month(12), a, 10));
        let too_many: Vec<(Uuid, i64)> = (100..101 + MAX_DIGESTS_PER_INSTANCE as i64)
            .map(|d| (a, d))
            .collect();
        seen.remember(sent(month(12), &too_many));
        assert!(!stored(&seen, month(12), a, 10));
        assert!(!stored(&seen, month(12), a, 100));
    }
}

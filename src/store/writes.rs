//! The batch write: reports, their instances, their day's analytics row and their upgrades, in one
//! transaction. The statements are in `queries/`.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};

use super::array_literal;
use super::distribute::shards_of;
use super::stored_entries::{self, SentEntries, StoredEntries};
use super::{StoreError, Topology, partitions};
use crate::report::Report;
use crate::stored_metrics::{self, fits_text};
use crate::typed_metrics::TypedMetrics;

/// A report as it goes to the database: the validated report plus what the server adds.
#[derive(Clone, Debug)]
pub struct NewReport {
    pub report: Report,
    /// ISO 3166-1 alpha-2 code of the sender's address, resolved before the address was dropped.
    pub country_code: Option<String>,
    /// When it arrived, if not now: generated history (src/synthetic/) arrives on its own days.
    /// `None` stores the ingest transaction's start, as for every report a client sends.
    pub received_at: Option<DateTime<Utc>>,
}

/// The report columns as parallel arrays, the shape `UNNEST` takes.
#[derive(Default)]
struct ReportColumns {
    report_id: Vec<uuid::Uuid>,
    instance_id: Vec<uuid::Uuid>,
    product_family: Vec<&'static str>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    version: Vec<Option<String>>,
    country_code: Vec<Option<String>>,
    up_duration_seconds: Vec<Option<i64>>,
    protocol: Vec<&'static str>,
    /// The packed metrics (src/stored_metrics.rs); the arrays as literals, since `UNNEST` cannot
    /// take an array of arrays whose rows differ in length.
    metric_keys: Vec<i64>,
    metric_values: Vec<String>,
    metric_digests: Vec<Option<String>>,
    metric_nul_escaped: Vec<Option<String>>,
    distribution_method: Vec<Option<String>>,
    alerting_enabled: Vec<Option<bool>>,
    stt_enabled: Vec<Option<bool>>,
    advisors_disabled: Vec<Option<bool>>,
    backup_management_enabled: Vec<Option<bool>>,
    dbaas_enabled: Vec<Option<bool>>,
    access_control_enabled: Vec<Option<bool>>,
    updates_disabled: Vec<Option<bool>>,
    grafana_users: Vec<Option<i32>>,
    nodes: Vec<Option<i32>>,
    services: Vec<Option<i32>>,
    /// Array literals, as above.
    mysql_versions: Vec<Option<String>>,
    mongodb_versions: Vec<Option<String>>,
    postgresql_versions: Vec<Option<String>>,
    received_at: Vec<Option<DateTime<Utc>>>,
    dictionary: DictionaryColumns,
}

/// The batch's entries of `report_metric_values` (key lists and long values), each once.
#[derive(Default)]
struct DictionaryColumns {
    instance_id: Vec<uuid::Uuid>,
    received_at: Vec<Option<DateTime<Utc>>>,
    digest: Vec<i64>,
    value: Vec<String>,
    /// Each report's set of entries, and where those not already in the batch are.
    sets: Vec<EntrySet>,
}

struct EntrySet {
    instance_id: uuid::Uuid,
    /// Arriving now, rather than generated history with its own arrival time.
    live: bool,
    fingerprint: u64,
    entries: std::ops::Range<usize>,
}

impl DictionaryColumns {
    /// Leaves out the entries of the live reports whose whole set `seen` knows stored in `month`
    /// (the transaction's month of arrival), and notes the sets still sent in `sent`.
    fn leave_out_stored(&mut self, seen: &StoredEntries, month: NaiveDate, sent: &mut SentEntries) {
        let live: Vec<&EntrySet> = self.sets.iter().filter(|set| set.live).collect();
        let keys: Vec<(uuid::Uuid, u64)> = live
            .iter()
            .map(|set| (set.instance_id, set.fingerprint))
            .collect();
        let mut left_out = vec![false; self.digest.len()];
        for (set, stored) in live.iter().zip(seen.stored(month, &keys)) {
            if stored {
                left_out[set.entries.clone()].fill(true);
            } else {
                sent.add(month, set.instance_id, set.fingerprint);
            }
        }
        if !left_out.contains(&true) {
            return;
        }
        let columns = std::mem::take(self);
        self.instance_id = without(columns.instance_id, &left_out);
        self.received_at = without(columns.received_at, &left_out);
        self.digest = without(columns.digest, &left_out);
        self.value = without(columns.value, &left_out);
        self.sets = columns.sets;
    }
}

/// The values whose place in `left_out` is false.
fn without<T>(values: Vec<T>, left_out: &[bool]) -> Vec<T> {
    values
        .into_iter()
        .zip(left_out)
        .filter(|(_, left_out)| !**left_out)
        .map(|(value, _)| value)
        .collect()
}

impl ReportColumns {
    fn from_reports<'a>(reports: impl IntoIterator<Item = &'a NewReport>) -> Self {
        let mut columns = Self::default();
        let mut entries_seen = std::collections::HashSet::new();
        for new in reports {
            let report = &new.report;
            columns.report_id.push(report.report_id);
            columns.instance_id.push(report.instance_id);
            columns.product_family.push(report.product_family.as_str());
            columns.created_at.push(report.created_at);
            columns
                .version
                .push(report.version.clone().filter(|version| fits_text(version)));
            columns.country_code.push(new.country_code.clone());
            columns.up_duration_seconds.push(report.up_duration_seconds);
            columns.protocol.push(report.protocol.as_str());
            let packed = stored_metrics::pack(&report.metrics);
            let dictionary = &mut columns.dictionary;
            let first = dictionary.digest.len();
            for (digest, value) in packed.dictionary_entries() {
                if entries_seen.insert((report.instance_id, new.received_at, digest)) {
                    dictionary.instance_id.push(report.instance_id);
                    dictionary.received_at.push(new.received_at);
                    dictionary.digest.push(digest);
                    dictionary.value.push(value.to_owned());
                }
            }
            dictionary.sets.push(EntrySet {
                instance_id: report.instance_id,
                live: new.received_at.is_none(),
                fingerprint: stored_entries::fingerprint(
                    packed.dictionary_entries().map(|(digest, _)| digest),
                ),
                entries: first..dictionary.digest.len(),
            });
            columns.metric_keys.push(packed.keys);
            columns.metric_values.push(array_literal::text(
                packed.short_values.iter().map(Option::as_deref),
            ));
            columns
                .metric_digests
                .push(packed.value_digests.map(array_literal::unquoted));
            columns.metric_nul_escaped.push(
                packed
                    .nul_escaped
                    .map(|positions| array_literal::unquoted(positions.into_iter().map(Some))),
            );
            let typed = TypedMetrics::from_metrics(&report.metrics);
            columns.distribution_method.push(typed.distribution_method);
            columns.alerting_enabled.push(typed.alerting_enabled);
            columns.stt_enabled.push(typed.stt_enabled);
            columns.advisors_disabled.push(typed.advisors_disabled);
            columns
                .backup_management_enabled
                .push(typed.backup_management_enabled);
            columns.dbaas_enabled.push(typed.dbaas_enabled);
            columns
                .access_control_enabled
                .push(typed.access_control_enabled);
            columns.updates_disabled.push(typed.updates_disabled);
            columns.grafana_users.push(typed.grafana_users);
            columns.nodes.push(typed.nodes);
            columns.services.push(typed.services);
            let literal = |versions: Option<Vec<String>>| {
                versions.map(|v| array_literal::text(v.iter().map(|v| Some(v.as_str()))))
            };
            columns.mysql_versions.push(literal(typed.mysql_versions));
            columns
                .mongodb_versions
                .push(literal(typed.mongodb_versions));
            columns
                .postgresql_versions
                .push(literal(typed.postgresql_versions));
            columns.received_at.push(new.received_at);
        }
        columns
    }
}

/// Instances a transaction locks at most. Each lock takes a slot of PostgreSQL's shared lock table,
/// which holds `max_locks_per_transaction` (64) times `max_connections` (100) slots by default for
/// every session together; a request carrying reports of thousands of instances must not exhaust it.
const MAX_INSTANCES_PER_TRANSACTION: usize = 1000;

/// Stores a batch of reports and returns how many were new: in one transaction, or for a batch of
/// more than [`MAX_INSTANCES_PER_TRANSACTION`] instances in one per that many instances (a request
/// that big is generated history or abuse; real clients send one instance's reports). A failure
/// part-way leaves the earlier transactions committed, which is safe: the caller's retry, or the
/// client's re-send, finds those reports stored and changes nothing.
///
/// Set-based statements, whatever the batch size. The first takes each instance's lock, so that
/// concurrent batches of one instance store its reports one after the other. The second inserts
/// the reports (skipping those the instance already sent), upserts their instances, folds them into
/// their per-day analytics row (`analytics.instance_days`) and appends the upgrades of instances
/// whose new reports are newer than everything stored for them, the usual case. Only for the other
/// instances, with late or out-of-order reports or a concurrent batch in between, two more
/// statements drop and re-derive the upgrades from the earliest new report on, so no false
/// downgrade or duplicate upgrade is left behind. The days whose rollups must be rebuilt although
/// no refresh will see them arrive (late reports older than an instance's first day, generated
/// history) are noted in `analytics.stale_days` by one more statement, when there are any. A batch
/// that arrives in a month without its partitions creates them and is written again.
pub async fn insert_reports<'a>(
    pool: &PgPool,
    topology: Topology,
    reports: impl IntoIterator<Item = &'a NewReport>,
) -> Result<u64, StoreError> {
    insert_reports_remembering(pool, topology, &StoredEntries::default(), reports).await
}

/// [`insert_reports`], leaving out the key lists and long values that `seen` knows stored, and
/// remembering there what each committed transaction stored (src/store/stored_entries.rs).
pub async fn insert_reports_remembering<'a>(
    pool: &PgPool,
    topology: Topology,
    seen: &StoredEntries,
    reports: impl IntoIterator<Item = &'a NewReport>,
) -> Result<u64, StoreError> {
    let mut reports: Vec<&NewReport> = reports.into_iter().collect();
    let mut instances: Vec<uuid::Uuid> = reports.iter().map(|new| new.report.instance_id).collect();
    instances.sort_unstable();
    instances.dedup();
    if instances.len() <= MAX_INSTANCES_PER_TRANSACTION {
        return insert_reports_creating_partitions(pool, topology, seen, &reports).await;
    }
    reports.sort_by_key(|new| new.report.instance_id);
    let mut inserted = 0;
    for bounds in instances.chunks(MAX_INSTANCES_PER_TRANSACTION) {
        let (first, last) = (bounds[0], bounds[bounds.len() - 1]);
        let start = reports.partition_point(|new| new.report.instance_id < first);
        let end = reports.partition_point(|new| new.report.instance_id <= last);
        inserted +=
            insert_reports_creating_partitions(pool, topology, seen, &reports[start..end]).await?;
    }
    Ok(inserted)
}

async fn insert_reports_creating_partitions(
    pool: &PgPool,
    topology: Topology,
    seen: &StoredEntries,
    reports: &[&NewReport],
) -> Result<u64, StoreError> {
    match insert_reports_once(pool, topology, seen, reports).await {
        Err(error) if partitions::is_missing_partition(&error) => {
            partitions::create_partitions_for(pool, reports.iter().copied()).await?;
            insert_reports_once(pool, topology, seen, reports).await
        }
        other => other,
    }
}

async fn insert_reports_once(
    pool: &PgPool,
    topology: Topology,
    seen: &StoredEntries,
    reports: &[&NewReport],
) -> Result<u64, StoreError> {
    if topology == Topology::Citus {
        return insert_reports_in_transaction(pool, topology, seen, reports, None).await;
    }
    let assumed = arrival_month(Utc::now());
    match insert_reports_in_transaction(pool, topology, seen, reports, Some(assumed)).await {
        // This process's clock and the database's are on two sides of a month's end.
        Err(error) if is_other_arrival_month(&error) => {
            insert_reports_in_transaction(pool, topology, seen, reports, None).await
        }
        other => other,
    }
}

/// The batch in one transaction. With `lock_with_begin`, the instances' locks are taken in the
/// BEGIN's round trip, under that assumed month of arrival (lock_ingest_instances(), in
/// migrations/), instead of by a statement of their own.
async fn insert_reports_in_transaction(
    pool: &PgPool,
    topology: Topology,
    seen: &StoredEntries,
    reports: &[&NewReport],
    lock_with_begin: Option<NaiveDate>,
) -> Result<u64, StoreError> {
    // Whatever stops us from getting a connection (refused, database closed to connections, pool
    // exhausted) means the database is unavailable, not that these reports are at fault.
    let mut connection = pool.acquire().await.map_err(StoreError::Unavailable)?;
    // What goes with BEGIN goes in one round trip: each round trip of a batch waits for the writer
    // to be scheduled again, and on a busy machine that wait is what a batch's time is made of.
    let mut begin = format!("BEGIN; {}", batch_settings(topology, reports.len()));
    if let Some(month) = lock_with_begin {
        let instances =
            array_literal::unquoted(reports.iter().map(|new| Some(new.report.instance_id)));
        write!(
            begin,
            "; SELECT lock_ingest_instances('{instances}'::uuid[], DATE '{month}')"
        )
        .expect("writing to a String does not fail");
    }
    let error = match connection.begin_with(sqlx::AssertSqlSafe(begin)).await {
        Ok(mut tx) => {
            let mut sent = SentEntries::default();
            let inserted = insert_laid_out(
                &mut tx,
                topology,
                seen,
                &mut sent,
                reports.iter().copied(),
                lock_with_begin,
            )
            .await?;
            tx.commit().await?;
            seen.remember(sent);
            return Ok(inserted);
        }
        Err(error) => error,
    };
    // A statement after BEGIN that fails leaves its transaction open and aborted, which the next
    // user of the connection would meet: the connection is closed instead.
    connection.close_on_drop();
    Err(if is_other_arrival_month_code(&error) {
        StoreError::Query(error)
    } else {
        StoreError::Unavailable(error)
    })
}

/// The first day of the month (UTC) of `now`, the month a transaction started then files its
/// reports' key lists and long values under.
fn arrival_month(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive()
        .with_day(1)
        .expect("every month has a first day")
}

/// SQLSTATE of lock_ingest_instances() when the month it was told is not its transaction's.
const OTHER_ARRIVAL_MONTH: &str = "T7310";

fn is_other_arrival_month(error: &StoreError) -> bool {
    matches!(error, StoreError::Query(error) if is_other_arrival_month_code(error))
}

fn is_other_arrival_month_code(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.code().as_deref() == Some(OTHER_ARRIVAL_MONTH))
}

/// The batch's statements, in a transaction that has [`batch_settings`] for this batch already.
/// On Citus, the batch's statements run once per shard, each with the reports of that shard's
/// instances only, so that every step of them touches one shard (docs/deployment.md, Citus). The
/// shards go in ascending order, the same in every transaction, so that two batches take their
/// instances' locks in one order.
async fn insert_laid_out<'a>(
    tx: &mut PgConnection,
    topology: Topology,
    seen: &StoredEntries,
    sent: &mut SentEntries,
    reports: impl IntoIterator<Item = &'a NewReport>,
    locked: Option<NaiveDate>,
) -> Result<u64, StoreError> {
    let reports: Vec<&NewReport> = reports.into_iter().collect();
    match topology {
        Topology::OneServer => insert_reports_in(tx, topology, seen, sent, reports, locked).await,
        Topology::Citus => {
            let instances: Vec<uuid::Uuid> = reports.iter().map(|r| r.report.instance_id).collect();
            let shards = shards_of(&mut *tx, &instances).await?;
            let mut by_shard: std::collections::BTreeMap<i64, Vec<&NewReport>> =
                std::collections::BTreeMap::new();
            for (report, shard) in reports.into_iter().zip(shards) {
                by_shard.entry(shard).or_default().push(report);
            }
            let mut inserted = 0;
            for group in by_shard.into_values() {
                inserted += insert_reports_in(tx, topology, seen, sent, group, locked).await?;
            }
            Ok(inserted)
        }
    }
}

/// Batches of up to this many reports run the batch statement with the plan PostgreSQL made once
/// for the connection; larger ones get a plan of their own. Planning the statement takes about
/// 2 ms, a third of a small batch's time in PostgreSQL; the plan made once expects about ten reports
/// and joins the statement's steps with nested loops, which cost more than planning from about 45
/// reports on (docs/performance.md).
const SHARED_PLAN_MAX_REPORTS: usize = 32;

/// What the batch's transaction sets for itself, for each group of reports (SET LOCAL, undone at the
/// transaction's end):
/// - No table scans. Every read of the batch's statements is keyed by instance (and report id), so a
///   table scan is never the right plan, but the planner picks one for a partition it still believes
///   small (a month's partition starts empty, and autovacuum may not have analysed it yet).
/// - No JIT. The batch statement's estimated cost grows with the square of the batch and passes
///   jit_above_cost from about 150 reports on; compiling it then took 150 to 200 ms, for a statement
///   that runs in 50.
/// - The plan made once for small batches ([`SHARED_PLAN_MAX_REPORTS`]), on one server. On Citus
///   each shard's statement gets its plan, as Citus routes it by the instances it names.
fn batch_settings(topology: Topology, reports: usize) -> &'static str {
    if topology == Topology::OneServer && reports <= SHARED_PLAN_MAX_REPORTS {
        "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; \
         SET LOCAL plan_cache_mode = force_generic_plan"
    } else {
        // Named even though the connection's default: an earlier group of the same transaction
        // (GroupedWrite) may have set the other.
        "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; \
         SET LOCAL plan_cache_mode = force_custom_plan"
    }
}

/// Several groups of reports in one transaction, each group all or nothing: a group the database
/// refuses is rolled back to its savepoint and the others commit together. Finding the one request
/// that broke a batch thus costs statements, not a commit (and its flush) per request.
pub struct GroupedWrite {
    pool: PgPool,
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    topology: Topology,
}

impl GroupedWrite {
    pub async fn begin(pool: &PgPool, topology: Topology) -> Result<Self, StoreError> {
        let tx = pool.begin().await.map_err(StoreError::Unavailable)?;
        Ok(Self {
            pool: pool.clone(),
            tx,
            topology,
        })
    }

    /// Stores one group within the transaction, or leaves the transaction as it was before.
    pub async fn insert<'a>(
        &mut self,
        reports: impl IntoIterator<Item = &'a NewReport>,
    ) -> Result<u64, StoreError> {
        let reports: Vec<&NewReport> = reports.into_iter().collect();
        match self.insert_once(&reports).await {
            Err(error) if partitions::is_missing_partition(&error) => {
                // On its own connection: a partition created in this transaction would lock
                // reports against every other writer until the commit.
                partitions::create_partitions_for(&self.pool, reports.iter().copied()).await?;
                self.insert_once(&reports).await
            }
            other => other,
        }
    }

    async fn insert_once(&mut self, reports: &[&NewReport]) -> Result<u64, StoreError> {
        let mut savepoint = self.tx.begin().await?;
        sqlx::raw_sql(batch_settings(self.topology, reports.len()))
            .execute(&mut *savepoint)
            .await?;
        // Whole: a group's transaction may still roll back after this savepoint, so what it sends
        // is not remembered, and the failing requests it isolates are rare.
        let inserted = insert_laid_out(
            &mut savepoint,
            self.topology,
            &StoredEntries::default(),
            &mut SentEntries::default(),
            reports.iter().copied(),
            None,
        )
        .await?;
        savepoint.commit().await?;
        Ok(inserted)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(StoreError::from)
    }
}

/// The statements of [`insert_reports`], within the caller's transaction. `locked` is the month of
/// arrival when the transaction holds the instances' locks already (taken with its BEGIN).
async fn insert_reports_in<'a>(
    tx: &mut PgConnection,
    topology: Topology,
    seen: &StoredEntries,
    sent: &mut SentEntries,
    reports: impl IntoIterator<Item = &'a NewReport>,
    locked: Option<NaiveDate>,
) -> Result<u64, StoreError> {
    let mut columns = ReportColumns::from_reports(reports);
    if columns.report_id.is_empty() {
        return Ok(0);
    }

    let arrival_month = match locked {
        Some(month) => month,
        None => {
            sqlx::query_file_scalar!("src/store/queries/lock_instances.sql", &columns.instance_id)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    columns
        .dictionary
        .leave_out_stored(seen, arrival_month, sent);
    let touched = sqlx::query_file!(
        "src/store/queries/insert_reports.sql",
        &columns.report_id,
        &columns.instance_id,
        &columns.product_family as &[&str],
        &columns.created_at,
        &columns.version as &[Option<String>],
        &columns.country_code as &[Option<String>],
        &columns.up_duration_seconds as &[Option<i64>],
        &columns.protocol as &[&str],
        &columns.metric_keys,
        &columns.distribution_method as &[Option<String>],
        &columns.alerting_enabled as &[Option<bool>],
        &columns.stt_enabled as &[Option<bool>],
        &columns.advisors_disabled as &[Option<bool>],
        &columns.backup_management_enabled as &[Option<bool>],
        &columns.dbaas_enabled as &[Option<bool>],
        &columns.access_control_enabled as &[Option<bool>],
        &columns.updates_disabled as &[Option<bool>],
        &columns.grafana_users as &[Option<i32>],
        &columns.nodes as &[Option<i32>],
        &columns.services as &[Option<i32>],
        &columns.mysql_versions as &[Option<String>],
        &columns.mongodb_versions as &[Option<String>],
        &columns.postgresql_versions as &[Option<String>],
        &columns.received_at as &[Option<DateTime<Utc>>],
        &columns.metric_values,
        &columns.metric_digests as &[Option<String>],
        &columns.metric_nul_escaped as &[Option<String>],
        &columns.dictionary.instance_id,
        &columns.dictionary.received_at as &[Option<DateTime<Utc>>],
        &columns.dictionary.digest,
        &columns.dictionary.value,
        topology == Topology::OneServer,
    )
    .fetch_all(&mut *tx)
    .await?;

    let inserted: i64 = touched.iter().map(|row| row.report_count).sum();
    // Usually none: only late reports older than an instance's first day, and generated history.
    let mut stale_days: Vec<chrono::NaiveDate> = touched
        .iter()
        .flat_map(|row| {
            row.moved_first_day
                .iter()
                .chain(row.unseen_days.iter().flatten())
        })
        .copied()
        .collect();
    if !stale_days.is_empty() {
        stale_days.sort_unstable();
        stale_days.dedup();
        sqlx::query_file!("src/store/queries/note_stale_days.sql", &stale_days)
            .execute(&mut *tx)
            .await?;
    }
    let versioned: Vec<_> = touched
        .iter()
        .filter(|row| row.since.is_some() && !row.upgrades_appended)
        .collect();
    if !versioned.is_empty() {
        let instance_ids: Vec<uuid::Uuid> = versioned.iter().map(|row| row.instance_id).collect();
        let families: Vec<String> = versioned
            .iter()
            .map(|row| row.product_family.clone())
            .collect();
        let since: Vec<chrono::DateTime<chrono::Utc>> =
            versioned.iter().filter_map(|row| row.since).collect();

        sqlx::query_file!(
            "src/store/queries/upgrades_delete_since.sql",
            &instance_ids,
            &families,
            &since,
        )
        .execute(&mut *tx)
        .await?;

        sqlx::query_file!(
            "src/store/queries/upgrades_rederive.sql",
            &instance_ids,
            &families,
            &since,
        )
        .execute(&mut *tx)
        .await?;
    }

    Ok(u64::try_from(inserted).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_batches_on_one_server_use_the_shared_plan_and_every_batch_names_its_plan() {
        let shared = "plan_cache_mode = force_generic_plan";
        let own = "plan_cache_mode = force_custom_plan";
        for (topology, reports, expected) in [
            (Topology::OneServer, 1, shared),
            (Topology::OneServer, SHARED_PLAN_MAX_REPORTS, shared),
            (Topology::OneServer, SHARED_PLAN_MAX_REPORTS + 1, own),
            (Topology::OneServer, 500, own),
            (Topology::Citus, 1, own),
        ] {
            let settings = batch_settings(topology, reports);
            assert!(
                settings.contains(expected),
                "{topology:?} {reports}: {settings}"
            );
            assert!(settings.contains("enable_seqscan = off"), "{settings}");
            assert!(settings.contains("jit = off"), "{settings}");
        }
    }
}

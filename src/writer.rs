//! Group commit: request handlers hand validated reports to a bounded queue and wait until the
//! transaction holding them has committed. A few writer tasks drain the queue in batches, so the
//! database commits once per batch instead of once per report, and nothing is acknowledged early.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Span;
use uuid::Uuid;

use crate::observability;
use crate::store::{self, NewReport, StoreError, StoredEntries, Topology};

/// How the writer batches; defaults come from `bench/ingest.sh` (see `docs/performance.md`).
#[derive(Clone, Copy, Debug)]
pub struct WriterSettings {
    /// A batch closes once it holds this many reports.
    pub max_batch_reports: usize,
    /// ... or once its first report has waited this long for company.
    pub max_batch_delay: Duration,
    /// Reports that may wait in the queue; beyond this, requests are answered 503 at once.
    pub queue_capacity: usize,
    /// Batches committed concurrently, each on its own connection.
    pub writers: usize,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            max_batch_reports: 500,
            max_batch_delay: Duration::from_millis(2),
            queue_capacity: 20_000,
            writers: 2,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WriteError {
    #[error("the service is at capacity; try again shortly")]
    Overloaded,
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    #[error("the service is shutting down; try again shortly")]
    ShuttingDown,
    #[error("the reports could not be stored")]
    Failed,
}

struct Job {
    reports: Vec<NewReport>,
    done: oneshot::Sender<Result<(), WriteError>>,
    /// The request's span (its route and `x-request-id`), so that what the writer logs about these
    /// reports is logged as part of the request they came with.
    span: Span,
    _queue_slots: OwnedSemaphorePermit,
}

/// The handle request handlers use. Cloning it is cheap; the writer tasks stop once every clone is
/// dropped and the queue is drained.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    queue_slots: Arc<Semaphore>,
    capacity: usize,
}

impl Writer {
    /// Starts the writer tasks; await the returned set after dropping every `Writer` to flush the queue.
    pub fn start(
        pool: PgPool,
        topology: Topology,
        settings: WriterSettings,
    ) -> (Self, JoinSet<()>) {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut tasks = JoinSet::new();
        let quarantine = Arc::new(Quarantine::default());
        let seen = Arc::new(StoredEntries::default());
        for _ in 0..settings.writers.max(1) {
            tasks.spawn(run_writer(
                pool.clone(),
                topology,
                receiver.clone(),
                settings,
                quarantine.clone(),
                seen.clone(),
            ));
        }
        let capacity = settings.queue_capacity.max(1);
        let writer = Self {
            jobs,
            queue_slots: Arc::new(Semaphore::new(capacity)),
            capacity,
        };
        (writer, tasks)
    }

    /// Queues the reports and waits for the commit of the batch that holds them. Ok means durably
    /// stored (or already stored before: re-sent report ids are no-ops).
    pub async fn write(&self, reports: Vec<NewReport>) -> Result<(), WriteError> {
        if reports.is_empty() {
            return Ok(());
        }
        let wanted = u32::try_from(reports.len().min(self.capacity)).unwrap_or(u32::MAX);
        let queue_slots = self
            .queue_slots
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| WriteError::Overloaded)?;
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job {
                reports,
                done,
                span: Span::current(),
                _queue_slots: queue_slots,
            })
            .map_err(|_| WriteError::ShuttingDown)?;
        result.await.unwrap_or(Err(WriteError::ShuttingDown))
    }

    /// Reports waiting in the queue or in a batch being committed.
    pub fn queued_reports(&self) -> usize {
        self.capacity - self.queue_slots.available_permits()
    }
}

async fn run_writer(
    pool: PgPool,
    topology: Topology,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    settings: WriterSettings,
    quarantine: Arc<Quarantine>,
    seen: Arc<StoredEntries>,
) {
    while let Some(batch) = next_batch(&receiver, &settings).await {
        // Requests of quarantined instances go after the batch, each in a transaction of its own.
        let (suspects, batch): (Vec<Job>, Vec<Job>) =
            batch.into_iter().partition(|job| quarantine.holds(job));
        if !batch.is_empty() {
            commit_batch(&pool, topology, batch, &quarantine, &seen).await;
        }
        for job in suspects {
            commit_batch(&pool, topology, vec![job], &quarantine, &seen).await;
        }
    }
}

/// How long an instance stays quarantined after one of its requests failed on its own.
const QUARANTINE_FOR: Duration = Duration::from_secs(600);
/// Instances held at most (about 100 bytes each); beyond, a failing instance is not remembered and
/// its requests just go through the batch split again.
const QUARANTINE_CAPACITY: usize = 10_000;

/// Instances whose request failed to commit on its own. PMM keeps a refused report and re-sends it
/// with every later one, so a report the database refuses comes back again and again; a request of
/// a quarantined instance is committed alone instead of joining a batch, and then costs only its own
/// failed statement rather than a split of everyone else's batch. It is still stored if it can be.
#[derive(Default)]
struct Quarantine {
    until: std::sync::Mutex<HashMap<Uuid, Instant>>,
}

impl Quarantine {
    fn holds(&self, job: &Job) -> bool {
        let now = Instant::now();
        let until = self.until.lock().expect("quarantine lock");
        !until.is_empty()
            && job.reports.iter().any(|new| {
                until
                    .get(&new.report.instance_id)
                    .is_some_and(|&expiry| expiry > now)
            })
    }

    fn add(&self, job: &Job) {
        let now = Instant::now();
        let mut until = self.until.lock().expect("quarantine lock");
        until.retain(|_, expiry| *expiry > now);
        for new in &job.reports {
            if until.len() >= QUARANTINE_CAPACITY {
                break;
            }
            until.insert(new.report.instance_id, now + QUARANTINE_FOR);
        }
    }
}

/// Waits for a first job, then gathers more until the batch is full or its delay has run out.
/// Holding the receiver lock while gathering keeps each batch's reports contiguous.
async fn next_batch(
    receiver: &Mutex<mpsc::UnboundedReceiver<Job>>,
    settings: &WriterSettings,
) -> Option<Vec<Job>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut size = first.reports.len();
    let mut batch = vec![first];
    let deadline = Instant::now() + settings.max_batch_delay;
    while size < settings.max_batch_reports {
        let job = match receiver.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) | Err(_) => break,
                }
            }
        };
        size += job.reports.len();
        batch.push(job);
    }
    Some(batch)
}

/// Commits a batch; when a request in it makes the commit fail, [`isolate_failures`] stores the
/// others without it.
async fn commit_batch(
    pool: &PgPool,
    topology: Topology,
    batch: Vec<Job>,
    quarantine: &Quarantine,
    seen: &StoredEntries,
) {
    let reports: Vec<&NewReport> = batch.iter().flat_map(|job| &job.reports).collect();
    let count = reports.len();
    let outcome = commit_with_retry(pool, topology, seen, &reports).await;
    drop(reports);
    match outcome {
        Ok(()) => {
            observability::batch_committed(count);
            finish(batch, Ok(()));
        }
        Err(error) if error.is_transient() => {
            tracing::warn!(reports = count, requests = batch.len(), %error, "batch not committed, database unavailable");
            not_committed(batch);
        }
        Err(error) if batch.len() == 1 => {
            tracing::error!(parent: &batch[0].span, reports = count, %error, "request's reports could not be stored");
            quarantine.add(&batch[0]);
            finish(batch, Err(WriteError::Failed));
        }
        Err(error) => {
            tracing::warn!(requests = batch.len(), %error, "batch failed, isolating the failing requests");
            isolate_failures(pool, topology, batch, quarantine).await;
        }
    }
}

/// Stores a failed batch's requests in one transaction, each group of requests in a savepoint,
/// halving the groups the database refuses down to the requests at fault. A failing request thus
/// costs its batch about 2·log2(requests) statements and one extra commit, instead of a commit per
/// request: replaying it cannot collapse everyone else's throughput.
async fn isolate_failures(
    pool: &PgPool,
    topology: Topology,
    mut batch: Vec<Job>,
    quarantine: &Quarantine,
) {
    let started = Instant::now();
    let mut write = match store::GroupedWrite::begin(pool, topology).await {
        Ok(write) => write,
        Err(error) => {
            tracing::warn!(requests = batch.len(), %error, "batch not committed, database unavailable");
            not_committed(batch);
            return;
        }
    };
    let second_half = batch.split_off(batch.len() / 2);
    let mut groups = vec![second_half, batch];
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    while let Some(mut group) = groups.pop() {
        let reports: Vec<&NewReport> = group.iter().flat_map(|job| &job.reports).collect();
        let outcome = write.insert(reports).await;
        match outcome {
            Ok(_) => stored.append(&mut group),
            Err(error) if error.is_transient() => {
                // The transaction is lost, and with it what the earlier groups stored in it.
                tracing::warn!(%error, "batch not committed, database unavailable");
                stored.append(&mut group);
                stored.extend(groups.into_iter().flatten());
                stored.append(&mut refused);
                not_committed(stored);
                return;
            }
            Err(error) if group.len() == 1 => {
                tracing::error!(parent: &group[0].span, reports = group[0].reports.len(), %error, "request's reports could not be stored");
                quarantine.add(&group[0]);
                refused.append(&mut group);
            }
            Err(_) => {
                let second_half = group.split_off(group.len() / 2);
                groups.push(second_half);
                groups.push(group);
            }
        }
    }
    let committed = write.commit().await;
    observability::commit_finished(started.elapsed(), committed.is_ok());
    match committed {
        Ok(()) => {
            observability::batch_committed(stored.iter().map(|job| job.reports.len()).sum());
            finish(stored, Ok(()));
        }
        Err(error) => {
            tracing::warn!(%error, "batch not committed");
            let result = if error.is_transient() {
                WriteError::Unavailable
            } else {
                WriteError::Failed
            };
            finish(stored, Err(result));
        }
    }
    finish(refused, Err(WriteError::Failed));
}

/// Answers every request of `jobs` that its reports were not committed for want of the database.
fn not_committed(jobs: Vec<Job>) {
    for job in &jobs {
        tracing::info!(parent: &job.span, reports = job.reports.len(), "reports not committed, database unavailable");
    }
    finish(jobs, Err(WriteError::Unavailable));
}

/// Retries once after a lost deadlock or serialization race; other failures go back to the caller.
async fn commit_with_retry(
    pool: &PgPool,
    topology: Topology,
    seen: &StoredEntries,
    reports: &[&NewReport],
) -> Result<(), StoreError> {
    let started = Instant::now();
    let first =
        store::insert_reports_remembering(pool, topology, seen, reports.iter().copied()).await;
    let result = match first {
        Err(StoreError::Query(sqlx::Error::Database(ref error)))
            if matches!(error.code().as_deref(), Some("40001" | "40P01")) =>
        {
            store::insert_reports_remembering(pool, topology, seen, reports.iter().copied()).await
        }
        other => other,
    };
    observability::commit_finished(started.elapsed(), result.is_ok());
    result.map(|_| ())
}

fn finish(batch: Vec<Job>, result: Result<(), WriteError>) {
    for job in batch {
        // The request may have gone away (client timeout); its reports are stored all the same.
        job.done.send(result.clone()).ok();
    }
}

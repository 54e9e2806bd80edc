//! Spreading the tables over a Citus cluster (`telemetry-server migrate --distribute`): the
//! per-instance tables are sharded by `instance_id` and co-located, so that everything one instance
//! writes lands on one shard; the small tables the refresh and the statistics page share become
//! reference tables, copied to every node. The schema is the same as on one PostgreSQL server.
//!
//! These statements name Citus' own functions and catalogue, which a plain PostgreSQL does not
//! have, so they are checked when they run rather than at build time as the other queries are.

use sqlx::PgPool;
use sqlx::postgres::PgConnection;

use super::StoreError;

/// Sharded by `instance_id`, co-located with `instances`: the reports' rows and their key lists and
/// long metric values too, so that `reports` reads each report's metrics from one shard, and the
/// notes of reports dated ahead, which the re-send check reads with them.
/// `analytics.instance_days` must come before `upgrades`: Citus refuses to distribute a table that
/// shares a view (`analytics.upgrade_paths`) with a table it does not know yet.
const DISTRIBUTED: [&str; 6] = [
    "instances",
    "report_rows",
    "report_metric_values",
    "reports_dated_ahead",
    "analytics.instance_days",
    "upgrades",
];

/// Copied to every node: written by the rollup refresh (or noted by ingest in `stale_days`), read by
/// the views and the statistics page, a few rows per day at most.
const REFERENCE: [&str; 11] = [
    "analytics.rollup_state",
    "analytics.stale_days",
    "analytics.daily_activity",
    "analytics.daily_versions",
    "analytics.daily_countries",
    "analytics.daily_new_instances",
    "analytics.daily_pmm_features",
    "analytics.daily_pmm_usage",
    "analytics.daily_monitored_databases",
    "analytics.daily_monitored_database_lines",
    "analytics.period_activity",
];

/// What one run of [`distribute`] did: the tables it distributed now, and those that already were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    pub distributed: Vec<&'static str>,
    pub already: Vec<&'static str>,
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.distributed.is_empty() {
            write!(f, "every table was already distributed")
        } else {
            write!(
                f,
                "distributed {} ({} already were)",
                self.distributed.join(", "),
                self.already.len()
            )
        }
    }
}

/// Creates the `citus` extension if needed and distributes every table that is not distributed
/// yet; a second run changes nothing. Fails without touching anything when the server does not
/// run Citus. Tables that hold rows keep them: Citus copies them into the shards, and the local copy
/// left on the coordinator is then emptied.
pub async fn distribute(pool: &PgPool) -> Result<Distribution, StoreError> {
    // Installed is not enough: Citus works only when the server loaded it at start.
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'citus') \
         AND 'citus' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))",
    )
    .fetch_one(pool)
    .await?;
    if !available {
        return Err(StoreError::NoCitus);
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS citus")
        .execute(pool)
        .await?;

    let mut done = Distribution::default();
    let tables = DISTRIBUTED
        .iter()
        .map(|table| (*table, true))
        .chain(REFERENCE.iter().map(|table| (*table, false)));
    for (table, sharded) in tables {
        if is_citus_table(pool, table).await? {
            done.already.push(table);
            continue;
        }
        let create = if sharded {
            "SELECT create_distributed_table($1, 'instance_id', colocate_with => \
             CASE WHEN $1 = 'instances' THEN 'default' ELSE 'instances' END)"
        } else {
            "SELECT create_reference_table($1)"
        };
        sqlx::query(create)
            .bind(table)
            .execute(pool)
            .await
            .map_err(|source| StoreError::Distribute { table, source })?;
        sqlx::query("SELECT truncate_local_data_after_distributing_table($1)")
            .bind(table)
            .execute(pool)
            .await
            .map_err(|source| StoreError::Distribute { table, source })?;
        tracing::info!(table, sharded, "distributed with Citus");
        done.distributed.push(table);
    }
    // Citus pushes the reports view down to the shards, where report_metrics() reads the report's
    // key list and long values: a query from within a query on a shard, which Citus refuses unless
    // allowed. It is safe here: the function reads rows of the same instance, on the same shard,
    // written once and never changed.
    sqlx::query(
        "ALTER FUNCTION report_metrics(uuid, timestamptz, bigint, text[], bigint[], integer[]) \
         SET citus.allow_nested_distributed_execution = on",
    )
    .execute(pool)
    .await?;
    Ok(done)
}

/// How the tables are laid out, which decides how ingest groups its statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One PostgreSQL server (or Citus with the tables not distributed): one set-based statement
    /// per batch.
    OneServer,
    /// Distributed by [`distribute`]: a batch's statements are split by shard, so that each one
    /// touches the shard of its instances only.
    Citus,
}

impl Topology {
    /// Asks the database; start-up does once, after the migrations.
    pub async fn of(pool: &PgPool) -> Result<Self, StoreError> {
        let citus: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')")
                .fetch_one(pool)
                .await?;
        Ok(if citus && is_citus_table(pool, "report_rows").await? {
            Self::Citus
        } else {
            Self::OneServer
        })
    }
}

async fn is_citus_table(pool: &PgPool, table: &str) -> Result<bool, StoreError> {
    let known = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = to_regclass($1))",
    )
    .bind(table)
    .fetch_one(pool)
    .await?;
    Ok(known)
}

/// The shard of each instance, in order: Citus' own hash of the distribution column, worked out on
/// the coordinator without reaching a worker.
pub(super) async fn shards_of(
    connection: &mut PgConnection,
    instances: &[uuid::Uuid],
) -> Result<Vec<i64>, StoreError> {
    let shards = sqlx::query_scalar(
        "SELECT get_shard_id_for_distribution_column('instances', t.instance_id) \
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(instance_id, n) ORDER BY t.n",
    )
    .bind(instances)
    .fetch_all(connection)
    .await?;
    Ok(shards)
}

/// True when the reports' rows are distributed with Citus; false on a server without it.
pub(super) async fn reports_distributed(connection: &mut PgConnection) -> Result<bool, StoreError> {
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&mut *connection)
            .await?;
    if !citus {
        return Ok(false);
    }
    let distributed = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'report_rows'::regclass)",
    )
    .fetch_one(connection)
    .await?;
    Ok(distributed)
}

//! The service on a Citus 13.2 cluster (CITUS_DATABASE_URL, a coordinator whose workers are
//! registered; scripts/test starts one from ../shared/citus): the tables distributed by
//! `migrate --distribute`, ingest of every client's fixtures, re-sends and out-of-order upgrades,
//! two service processes at once, analytics, retention and /stats giving what one PostgreSQL server
//! gives for the same history, and the hot statements kept on one shard. Without a cluster every
//! test here prints that it skipped and passes.

mod common;

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, Utc};
use common::binary::{Service, run_command};
use common::{TestApp, TestDatabase, fixture, rows_as_text};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool};
use telemetry_server::store::{self, StoreError, Topology};
use telemetry_server::synthetic::{Settings, Simulation};
use uuid::Uuid;

const PMM: &str = "PRODUCT_FAMILY_PMM";

fn report(id: u128, instance: u128, created: &str, version: &str) -> Value {
    json!({
        "id": Uuid::from_u128(id).to_string(),
        "createTime": created,
        "instanceId": Uuid::from_u128(instance).to_string(),
        "productFamily": PMM,
        "metrics": [{"key": "PMMServerVersion", "value": version}, {"key": "DistributionMethod", "value": "DOCKER"}]
    })
}

fn request(reports: &[Value]) -> String {
    json!({ "reports": reports }).to_string()
}

async fn post(base_url: &str, body: String) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/telemetry/GenericReport"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request reaches the service");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!((status, text.as_str()), (200, "{}"), "the report is stored");
}

/// The version history of one instance, sent in `order` (indexes into the history).
fn history(instance: u128, order: &[usize]) -> Vec<Value> {
    let versions = [
        ("2025-01-01T00:00:00Z", "3.9.1"),
        ("2025-02-01T00:00:00Z", "3.9.1"),
        ("2025-03-01T00:00:00Z", "3.10.0"),
        ("2025-04-01T00:00:00Z", "3.11.0"),
    ];
    order
        .iter()
        .map(|&i| {
            report(
                instance * 100 + i as u128,
                instance,
                versions[i].0,
                versions[i].1,
            )
        })
        .collect()
}

/// What every test here sends, in this order: the fixtures of each client, an instance's history
/// in order, newest first one report at a time, shuffled in one request, a real downgrade, one
/// request with forty instances (every shard), and all of it once more (re-sends).
fn scenario() -> Vec<String> {
    let mut requests: Vec<String> = [
        "pmm-generic-report-1.json",
        "pmm-generic-report-2-batched.json",
        "telemetry-agent-ps.json",
        "call-home-install-postgresql.json",
        "everest-report.json",
    ]
    .iter()
    .map(|name| String::from_utf8(fixture(name)).unwrap())
    .collect();
    requests.extend(
        history(1, &[0, 1, 2, 3])
            .iter()
            .map(|r| request(std::slice::from_ref(r))),
    );
    requests.extend(
        history(2, &[3, 0, 2, 1])
            .iter()
            .map(|r| request(std::slice::from_ref(r))),
    );
    requests.push(request(&history(3, &[2, 0, 3, 1])));
    requests.push(request(&[
        report(401, 4, "2025-01-01T00:00:00Z", "3.10.0"),
        report(402, 4, "2025-01-02T00:00:00Z", "3.9.1"),
    ]));
    let many: Vec<Value> = (10..50)
        .map(|instance| report(instance * 100, instance, "2025-05-01T00:00:00Z", "3.2.0"))
        .collect();
    requests.push(request(&many));
    let resent = requests.clone();
    requests.extend(resent);
    requests
}

/// Every stored row, in a canonical text form, without what depends on the moment of arrival.
async fn durable_state(pool: &PgPool) -> String {
    let mut out = String::new();
    for query in [
        "SELECT instance_id, product_family, first_seen, last_seen, first_day, version, version_seen_at, \
         country_code, country_seen_at, report_count FROM instances",
        "SELECT instance_id, report_id, product_family, created_at, version, country_code, \
         up_duration_seconds, protocol, metrics FROM reports",
        "SELECT * FROM upgrades",
        "SELECT * FROM analytics.instance_days",
    ] {
        out.push_str(&rows_as_text(pool, &format!("({query})")).await);
        out.push_str("\n--\n");
    }
    out
}

async fn upgrades(pool: &PgPool, instance: u128) -> Vec<(String, String, bool)> {
    sqlx::query_as(
        "SELECT from_version, to_version, is_downgrade FROM upgrades WHERE instance_id = $1 ORDER BY upgraded_at",
    )
    .bind(Uuid::from_u128(instance))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn expected_history() -> Vec<(String, String, bool)> {
    vec![
        ("3.9.1".into(), "3.10.0".into(), false),
        ("3.10.0".into(), "3.11.0".into(), false),
    ]
}

#[tokio::test]
async fn distribute_shards_by_instance_and_a_second_run_changes_nothing() {
    let Some(database) = TestDatabase::citus_distributed("distribute_twice").await else {
        return;
    };
    let tables: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT p.logicalrelid::text, p.partmethod::text, p.colocationid \
         FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid \
         WHERE NOT c.relispartition ORDER BY 1",
    )
    .fetch_all(&database.pool)
    .await
    .unwrap();
    let colocation = |name: &str| tables.iter().find(|t| t.0 == name).unwrap().2;
    let sharded: Vec<&str> = tables
        .iter()
        .filter(|t| t.1 == "h")
        .map(|t| t.0.as_str())
        .collect();
    assert_eq!(
        sharded,
        [
            "analytics.instance_days",
            "instances",
            "report_metric_values",
            "report_rows",
            "reports_dated_ahead",
            "upgrades"
        ]
    );
    for table in &sharded {
        assert_eq!(
            colocation(table),
            colocation("instances"),
            "{table} co-located"
        );
    }
    assert_eq!(
        tables.iter().filter(|t| t.1 == "n").count(),
        11,
        "{tables:?}"
    );

    let again = store::distribute(&database.pool).await.unwrap();
    assert!(again.distributed.is_empty(), "{again:?}");
    assert_eq!(again.already.len(), 17);
    database.cleanup().await;
}

/// `migrate --distribute` is the documented way; on a server without Citus it says so and fails.
#[tokio::test]
async fn migrate_distribute_runs_on_citus_and_refuses_plain_postgresql() {
    let plain = TestDatabase::migrated().await;
    assert!(matches!(
        store::distribute(&plain.pool).await,
        Err(StoreError::NoCitus)
    ));
    let (ok, output) = run_command(
        "migrate --distribute",
        &[("DATABASE_URL", plain.url.clone())],
    )
    .await;
    assert!(!ok, "{output}");
    assert!(output.contains("does not run Citus"), "{output}");
    plain.cleanup().await;

    let Some(database) = TestDatabase::citus_distributed("migrate_distribute").await else {
        return;
    };
    let (ok, output) = run_command(
        "migrate --distribute",
        &[("DATABASE_URL", database.url.clone())],
    )
    .await;
    assert!(ok, "{output}");
    assert!(
        output.contains("every table was already distributed"),
        "{output}"
    );
    database.cleanup().await;
}

#[tokio::test]
async fn ingest_on_citus_stores_what_one_server_stores() {
    let Some(citus) = TestApp::spawn_citus("ingest", |_| {}).await else {
        return;
    };
    let plain = TestApp::spawn().await;
    for body in scenario() {
        post(&plain.base_url, body.clone()).await;
        post(&citus.base_url, body).await;
    }
    let state = durable_state(&citus.pool).await;
    assert_eq!(state, durable_state(&plain.pool).await);
    assert!(state.contains("ca11b4b3-c378-49d3-85c5-2828f1e32f11"));
    for instance in [1, 2, 3] {
        assert_eq!(upgrades(&citus.pool, instance).await, expected_history());
    }
    assert_eq!(
        upgrades(&citus.pool, 4).await,
        [("3.10.0".into(), "3.9.1".into(), true)]
    );
    plain.cleanup().await;
    citus.cleanup().await;
}

/// Two service processes on one Citus database, each sent every other report of the same
/// instances at the same time, end up with each report once and the upgrade history as if one
/// process had stored them in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_at_once() {
    let Some(database) = TestDatabase::citus_distributed("two_services").await else {
        return;
    };
    let env = [("DATABASE_URL", database.url.clone())];
    let (first, second) = tokio::join!(Service::start(&env), Service::start(&env));
    let bases = [first.port, second.port].map(|port| format!("http://127.0.0.1:{port}"));
    let instances: Vec<u128> = (1000..1040).collect();
    let mut senders = tokio::task::JoinSet::new();
    for (n, base) in bases.iter().enumerate() {
        let base = base.clone();
        let instances = instances.clone();
        senders.spawn(async move {
            // Newest first from one process, oldest first from the other: out of order on purpose.
            let order: &[usize] = if n == 0 { &[3, 1] } else { &[0, 2] };
            for instance in instances {
                for report in history(instance, order) {
                    post(&base, request(&[report])).await;
                }
            }
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent.unwrap();
    }
    first.stop().await;
    second.stop().await;
    let reports: i64 = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(reports, 4 * instances.len() as i64);
    let counted: i64 = sqlx::query_scalar("SELECT sum(report_count)::bigint FROM instances")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(counted, reports);
    for instance in instances {
        assert_eq!(
            upgrades(&database.pool, instance).await,
            expected_history(),
            "instance {instance}"
        );
    }
    database.cleanup().await;
}

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
}

async fn load_history(pool: &PgPool, settings: &Settings) {
    let topology = Topology::of(pool).await.unwrap();
    let mut simulation = Simulation::new(settings);
    while let Some((_, day)) = simulation.next_day() {
        for batch in day.chunks(500) {
            store::insert_reports(pool, topology, batch)
                .await
                .expect("batch stored");
        }
    }
    store::refresh_rollups(pool, settings.end_date + Days::new(1))
        .await
        .expect("rollups refresh");
}

/// Every analysts' view, rollup and the statistics page's reads, as text; not when the rollups
/// were refreshed or days noted for the next refresh.
async fn analytics_state(pool: &PgPool) -> BTreeMap<String, String> {
    let relations: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables \
         WHERE table_schema = 'analytics' \
           AND table_name NOT IN ('rollup_state', 'stale_days', 'snapshot_day') \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut state = BTreeMap::new();
    for relation in relations {
        let rows = rows_as_text(pool, &relation).await;
        state.insert(relation, rows);
    }
    let mut stats = store::stats_rollups(pool, 52)
        .await
        .unwrap_or_else(|error| panic!("/stats: {error}"));
    stats.snapshot = stats
        .snapshot
        .map(|(day, _)| (day, chrono::DateTime::UNIX_EPOCH));
    state.insert("/stats".into(), format!("{stats:?}"));
    state
}

/// The same generated history on one server and on the cluster: every rollup and view, and what
/// /stats reads, are equal; then the same retention on both, and they are still equal.
#[tokio::test]
async fn analytics_retention_and_stats_equal_one_server() {
    let Some(citus) = TestDatabase::citus_distributed("analytics_equal").await else {
        return;
    };
    let plain = TestDatabase::migrated().await;
    let settings = Settings {
        instances: 60,
        days: 60,
        end_date: end_date(),
        seed: 7,
        batch_size: 500,
        concurrency: 2,
    };
    load_history(&plain.pool, &settings).await;
    load_history(&citus.pool, &settings).await;
    let one = analytics_state(&plain.pool).await;
    let cluster = analytics_state(&citus.pool).await;
    assert!(one["analytics.daily_activity"].lines().count() > 60);
    for (relation, rows) in &one {
        assert_eq!(&cluster[relation], rows, "{relation} differs on Citus");
    }

    // Generated reports arrive on their own days, so this keeps the last month of the history.
    let cutoff = NaiveDate::from_ymd_opt(2026, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let deleted = store::delete_reports_received_before(&plain.pool, cutoff, 1000)
        .await
        .unwrap();
    assert!(deleted > 0);
    assert_eq!(
        store::delete_reports_received_before(&citus.pool, cutoff, 1000)
            .await
            .unwrap(),
        deleted
    );
    let today = Utc::now().date_naive();
    store::refresh_rollups(&plain.pool, today).await.unwrap();
    store::refresh_rollups(&citus.pool, today).await.unwrap();
    let one = analytics_state(&plain.pool).await;
    let cluster = analytics_state(&citus.pool).await;
    for (relation, rows) in &one {
        assert_eq!(
            &cluster[relation], rows,
            "{relation} differs on Citus after retention"
        );
    }
    plain.cleanup().await;
    citus.cleanup().await;
}

/// `count` instance ids that Citus puts on one shard.
async fn instances_on_one_shard(pool: &PgPool, count: usize) -> Vec<Uuid> {
    let candidates: Vec<Uuid> = (0..count * 64).map(|_| Uuid::new_v4()).collect();
    let shards: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT id, get_shard_id_for_distribution_column('instances', id) FROM unnest($1::uuid[]) id",
    )
    .bind(&candidates)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut by_shard: BTreeMap<i64, Vec<Uuid>> = BTreeMap::new();
    for (id, shard) in shards {
        by_shard.entry(shard).or_default().push(id);
    }
    let mut fullest = by_shard.into_values().max_by_key(Vec::len).unwrap();
    fullest.truncate(count);
    assert_eq!(fullest.len(), count);
    fullest
}

/// The Citus plan of `statement` with `binds` applied, as text.
async fn citus_plan(
    pool: &PgPool,
    statement: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> String {
    let explain = format!("EXPLAIN (COSTS OFF) {statement}");
    let mut tx = pool.begin().await.unwrap();
    // As the service's connections plan (src/store/connect.rs): with the values, so that Citus
    // sees the instance ids it prunes by.
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows: Vec<String> = bind(sqlx::query(AssertSqlSafe(explain)))
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|row| sqlx::Row::get(row, 0))
        .collect();
    tx.rollback().await.unwrap();
    rows.join("\n")
}

/// Every step Citus makes of the plan goes to one shard: each task list has one task, and the only
/// node other than the coordinator that any task names is that of the instances' shard.
fn assert_single_shard(statement: &str, plan: &str) {
    let task_counts: Vec<&str> = plan
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Task Count: "))
        .collect();
    assert!(
        !task_counts.is_empty(),
        "{statement}: not a Citus plan\n{plan}"
    );
    assert!(
        task_counts.iter().all(|count| *count == "1"),
        "{statement}: a step touches several shards\n{plan}"
    );
    let workers: std::collections::BTreeSet<&str> = plan
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Node: "))
        .filter(|node| !node.contains("host=localhost"))
        .collect();
    assert!(workers.len() <= 1, "{statement}: several workers\n{plan}");
    eprintln!(
        "{statement}: {} steps, each on one shard ({} with a worker task)",
        task_counts.len(),
        plan.lines()
            .filter(|l| l.trim().starts_with("Node: host=127"))
            .count()
    );
}

/// The hot statements of ingest, with a batch of reports of instances on one shard as the writer
/// passes them on Citus: `EXPLAIN` shows every step of each on that one shard.
#[tokio::test]
async fn hot_statements_stay_on_one_shard() {
    let Some(database) = TestDatabase::citus_distributed("explain").await else {
        return;
    };
    let pool = &database.pool;
    let instances = instances_on_one_shard(pool, 5).await;
    let n = instances.len();
    let reports: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let families = vec![PMM.to_owned(); n];
    let created = vec![Utc::now(); n];
    let text = |value: &str| vec![Some(value.to_owned()); n];
    let none_text: Vec<Option<String>> = vec![None; n];
    let none_bool: Vec<Option<bool>> = vec![None; n];
    let none_int: Vec<Option<i32>> = vec![None; n];

    // Reports without metrics, packed as the writer packs them (src/stored_metrics.rs): the key
    // list "[]" is each instance's one entry in report_metric_values.
    let packed = telemetry_server::stored_metrics::pack(&[]);
    let insert = include_str!("../src/store/queries/insert_reports.sql");
    let plan = citus_plan(pool, insert, |query| {
        query
            .bind(&reports)
            .bind(&instances)
            .bind(&families)
            .bind(&created)
            .bind(text("3.2.0"))
            .bind(text("DE"))
            .bind(vec![None::<i64>; n])
            .bind(vec!["GenericReport".to_owned(); n])
            .bind(vec![packed.keys; n])
            .bind(&none_text)
            .bind(&none_bool)
            .bind(&none_bool)
            .bind(&none_bool)
            .bind(&none_bool)
            .bind(&none_bool)
            .bind(&none_bool)
            .bind(&none_bool)
            .bind(&none_int)
            .bind(&none_int)
            .bind(&none_int)
            .bind(&none_text)
            .bind(&none_text)
            .bind(&none_text)
            .bind(vec![None::<chrono::DateTime<Utc>>; n])
            .bind(vec!["{}".to_owned(); n])
            .bind(&none_text)
            .bind(&none_text)
            .bind(&instances)
            .bind(vec![None::<chrono::DateTime<Utc>>; n])
            .bind(vec![packed.keys; n])
            .bind(vec![packed.key_list.clone(); n])
            // As the writer binds it on Citus: the re-send check names the instances.
            .bind(false)
    })
    .await;
    assert_single_shard("insert_reports.sql", &plan);

    // Citus cannot EXPLAIN these two with parameters ("could not create distributed plan",
    // though it runs them): the values go in as literals, as a custom plan has them.
    let literal = |values: Vec<String>, kind: &str| format!("'{{{}}}'::{kind}[]", values.join(","));
    let ids = literal(instances.iter().map(Uuid::to_string).collect(), "uuid");
    let since = literal(
        vec![format!("\"{}\"", created[0].to_rfc3339()); n],
        "timestamptz",
    );
    let families = literal(families, "text");
    for (name, statement) in [
        (
            "upgrades_delete_since.sql",
            include_str!("../src/store/queries/upgrades_delete_since.sql"),
        ),
        (
            "upgrades_rederive.sql",
            include_str!("../src/store/queries/upgrades_rederive.sql"),
        ),
    ] {
        let statement = statement
            .replace("$1", &ids)
            .replace("$2", &families)
            .replace("$3", &since);
        let plan = citus_plan(pool, &statement, |query| query).await;
        assert_single_shard(name, &plan);
    }
    database.cleanup().await;
}

/// Two-phase commits per 1,000 reports through the service: at most one per batch (its commit),
/// whatever the shards of its instances. The figures go to the test's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phase_commits_per_thousand_reports() {
    // No retention job: its refresh writes the reference tables, a two-phase commit of its own.
    let Some(app) = TestApp::spawn_citus("two_phase_commits", |config| {
        config.retention_interval_secs = 0;
    })
    .await
    else {
        return;
    };
    let recovery: String = sqlx::query_scalar("SHOW citus.recover_2pc_interval")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    if recovery != "-1" {
        eprintln!(
            "SKIPPED two_phase_commits: citus.recover_2pc_interval is {recovery}, so pg_dist_transaction \
             may be emptied during the count (scripts/test sets it to -1)"
        );
        app.cleanup().await;
        return;
    }
    let two_phase_commits = || async {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT split_part(gid, '_', 3) || '_' || split_part(gid, '_', 4)) \
             FROM pg_dist_transaction",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        count
    };
    let created = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let send = |instances: Vec<Uuid>| {
        let base = app.base_url.clone();
        let created = created.clone();
        async move {
            // 100 requests of 10 reports, 20 at a time, so that the writer batches them.
            let mut requests = tokio::task::JoinSet::new();
            for chunk in 0..100 {
                let reports: Vec<Value> = (0..10)
                    .map(|i| {
                        json!({
                            "id": Uuid::new_v4().to_string(),
                            "createTime": created,
                            "instanceId": instances[(chunk * 10 + i) % instances.len()].to_string(),
                            "productFamily": PMM,
                            "metrics": [{"key": "PMMServerVersion", "value": "3.2.0"}]
                        })
                    })
                    .collect();
                let base = base.clone();
                requests.spawn(async move { post(&base, request(&reports)).await });
                if requests.len() >= 20 {
                    requests.join_next().await.unwrap().unwrap();
                }
            }
            while let Some(done) = requests.join_next().await {
                done.unwrap();
            }
        }
    };

    let batches = || async {
        let metrics = app.metrics_text().await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("telemetry_batch_size_reports_count "))
            .map_or(0, |count| count.trim().parse::<i64>().unwrap())
    };
    let mut figures = Vec::new();
    for (what, instances) in [
        (
            "50 instances on one shard",
            instances_on_one_shard(&app.pool, 50).await,
        ),
        (
            "500 instances on every shard",
            (0..500).map(|_| Uuid::new_v4()).collect(),
        ),
    ] {
        let (commits_before, batches_before) = (two_phase_commits().await, batches().await);
        send(instances).await;
        let commits = two_phase_commits().await - commits_before;
        let batches = batches().await - batches_before;
        assert!(
            commits <= batches,
            "{what}: {commits} two-phase commits for {batches} batches"
        );
        figures.push(format!(
            "{what}: {commits} two-phase commits per 1,000 reports, in {batches} batches"
        ));
    }
    eprintln!("{}", figures.join("\n"));
    app.cleanup().await;
}

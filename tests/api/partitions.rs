//! Raw reports partitioned by arrival month: a re-send is recognised whichever month holds the
//! first copy and however many deliveries race, a month without its partition gets one on arrival,
//! retention drops whole months (and finishes what an interrupted run left), and the migration to
//! the partitioned table keeps every row of a database the previous release filled.

use std::io::Read;

use chrono::{NaiveDate, TimeDelta, Utc};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use telemetry_server::retention;
use telemetry_server::store::{self, NewReport};
use telemetry_server::synthetic::{Settings, Simulation};

use crate::common::{self, TestApp, TestDatabase, fixture, rows_as_text};

/// The last migration before the partitioned reports.
const BEFORE_PARTITIONING: i64 = 20261202150001;

/// Every row of the tables a report touches, as text in a stable order: equal before and after
/// means nothing was added, lost or changed.
async fn stored_state(pool: &PgPool) -> String {
    let mut out = String::new();
    for table in [
        "reports",
        "instances",
        "upgrades",
        "analytics.instance_days",
        "analytics.daily_activity",
        "analytics.daily_versions",
        "analytics.stale_days",
    ] {
        let rows = rows_as_text(pool, table).await;
        out.push_str(&format!("{table}:\n{rows}\n"));
    }
    out
}

/// The partition of `report_rows` that holds a stored report.
async fn partition_of(pool: &PgPool, report_id: &str) -> String {
    sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM report_rows WHERE report_id = $1::uuid",
    )
    .bind(report_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The partition of `report_rows` whose month includes `at`, if there is one.
async fn partition_for(pool: &PgPool, at: chrono::DateTime<Utc>) -> Option<String> {
    sqlx::query_scalar(
        "SELECT partition FROM report_partitions WHERE $1 >= arrived_from AND $1 < arrived_before",
    )
    .bind(at)
    .fetch_optional(pool)
    .await
    .unwrap()
}

const AGENT_REPORT_ID: &str = "244b3bd5-2e13-49ba-8316-8ed17f566af8";

#[tokio::test]
async fn a_report_re_sent_months_after_the_first_copy_changes_nothing() {
    let app = TestApp::spawn().await;
    let body = fixture("telemetry-agent-ps.json");
    assert_eq!(app.post_report(body.clone()).await.status(), 200);
    // The first copy arrived two months ago: it lives in another month's partition now.
    common::partitions_for_aging(&app.pool, 62).await;
    sqlx::query("UPDATE reports SET received_at = received_at - interval '62 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let old_partition = partition_of(&app.pool, AGENT_REPORT_ID).await;
    assert_ne!(
        Some(old_partition.clone()),
        partition_for(&app.pool, Utc::now()).await
    );
    let before = stored_state(&app.pool).await;

    let response = app.post_report(body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{}");
    assert_eq!(stored_state(&app.pool).await, before);
    assert_eq!(
        partition_of(&app.pool, AGENT_REPORT_ID).await,
        old_partition
    );
}

/// The agent fixture with its createTime `ahead` of now: sent by a client whose clock runs fast.
fn agent_report_dated_ahead(ahead: TimeDelta) -> Vec<u8> {
    let created = (Utc::now() + ahead)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let body = String::from_utf8(fixture("telemetry-agent-ps.json")).unwrap();
    assert!(body.contains(AGENT_CREATE_TIME));
    body.replace(AGENT_CREATE_TIME, &created).into_bytes()
}

const AGENT_CREATE_TIME: &str = "2024-06-11T07:39:16Z";

async fn dated_ahead(pool: &PgPool) -> String {
    rows_as_text(pool, "reports_dated_ahead").await
}

#[tokio::test]
async fn a_report_dated_ahead_of_its_arrival_is_recognised_when_re_sent_and_expires_with_it() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    // Far enough ahead that the re-send check does not look in the month it arrived in.
    let body = agent_report_dated_ahead(TimeDelta::days(40));
    assert_eq!(app.post_report(body.clone()).await.status(), 200);
    assert_eq!(app.count("reports").await, 1);
    let noted = dated_ahead(&app.pool).await;
    assert!(noted.contains(AGENT_REPORT_ID), "{noted}");
    let before = stored_state(&app.pool).await;

    let response = app.post_report(body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(stored_state(&app.pool).await, before);

    // A report dated only a little ahead is found where it arrived, without a note.
    let near = agent_report_dated_ahead(TimeDelta::hours(2));
    let near = String::from_utf8(near)
        .unwrap()
        .replace(AGENT_REPORT_ID, "6f1d3c0e-8a4b-4c52-9d7e-2b5a1f0c9e31");
    assert_eq!(app.post_report(near.clone()).await.status(), 200);
    assert_eq!(dated_ahead(&app.pool).await, noted);
    let before = stored_state(&app.pool).await;
    assert_eq!(app.post_report(near).await.status(), 200);
    assert_eq!(stored_state(&app.pool).await, before);

    // The note goes when its report expires.
    let run = retention::run_once(&app.pool, Some(TimeDelta::zero()), Utc::now())
        .await
        .unwrap();
    assert_eq!(run.deleted_reports, 2);
    assert_eq!(dated_ahead(&app.pool).await, "");
    app.cleanup().await;
}

/// One day of generated history: reports of many instances, each arriving on its own day.
fn one_day(instances: u32) -> Vec<NewReport> {
    let end_date = Utc::now().date_naive() - chrono::Days::new(1);
    let mut simulation = Simulation::new(&Settings {
        instances,
        days: 1,
        end_date,
        seed: 11,
        batch_size: 500,
        concurrency: 1,
    });
    simulation.next_day().expect("a day").1
}

#[tokio::test]
async fn simultaneous_deliveries_of_the_same_reports_store_them_once() {
    let db = TestDatabase::migrated().await;
    let reports = one_day(200);
    assert!(reports.len() > 50);
    // Eight transactions at once, each with the whole batch: no unique index stands between them,
    // only the instances' locks. Connections opened beforehand, so that none starts late.
    let mut warm = Vec::new();
    for _ in 0..8 {
        warm.push(db.pool.acquire().await.unwrap());
    }
    drop(warm);
    let deliveries: Vec<_> = (0..8)
        .map(|_| {
            let pool = db.pool.clone();
            let reports = reports.clone();
            tokio::spawn(async move {
                store::insert_reports(&pool, store::Topology::OneServer, &reports).await
            })
        })
        .collect();
    let mut stored = 0;
    for delivery in deliveries {
        stored += delivery.await.unwrap().expect("a delivery commits");
    }
    let expected = reports.len() as i64;
    assert_eq!(
        stored,
        reports.len() as u64,
        "the first delivery of each counts"
    );
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM reports),
                (SELECT sum(report_count)::bigint FROM instances),
                (SELECT sum(report_count)::bigint FROM analytics.instance_days)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(counts, (expected, expected, expected));
    db.cleanup().await;
}

#[tokio::test]
async fn a_month_without_its_partition_gets_one_when_a_report_arrives() {
    let app = TestApp::spawn().await;
    let current = partition_for(&app.pool, Utc::now())
        .await
        .expect("the service created this month's partition at start");
    let values = current.replace("report_rows_", "report_metric_values_");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER TABLE report_rows DETACH PARTITION {current}; DROP TABLE {current};
         ALTER TABLE report_metric_values DETACH PARTITION {values}; DROP TABLE {values}"
    )))
    .execute(&app.pool)
    .await
    .unwrap();

    let response = app.post_report(fixture("telemetry-agent-ps.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(partition_of(&app.pool, AGENT_REPORT_ID).await, current);
    let metrics: i32 = sqlx::query_scalar("SELECT jsonb_array_length(metrics) FROM reports")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(metrics, 13, "the metrics read back whole");
}

#[tokio::test]
async fn retention_drops_expired_months_whole_and_finishes_an_interrupted_run() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let end = Utc::now().date_naive() - chrono::Days::new(1);
    let mut simulation = Simulation::new(&Settings {
        instances: 100,
        days: 20,
        end_date: end,
        seed: 5,
        batch_size: 500,
        concurrency: 2,
    });
    while let Some((_, day)) = simulation.next_day() {
        store::insert_reports(&app.pool, store::Topology::OneServer, &day)
            .await
            .unwrap();
    }
    let total = app.count("reports").await;
    // Everything arrived 15 months earlier: several whole months expire at 400 days.
    common::partitions_for_aging(&app.pool, 460).await;
    sqlx::query("UPDATE reports SET received_at = received_at - interval '460 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let months: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT tableoid::regclass::text FROM report_rows ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(!months.is_empty());
    // A run that stopped between detaching a month and dropping it left the month behind.
    let interrupted = &months[0];
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER TABLE report_rows DETACH PARTITION {interrupted}"
    )))
    .execute(&app.pool)
    .await
    .unwrap();
    let left_in_interrupted: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {interrupted}")))
            .fetch_one(&app.pool)
            .await
            .unwrap();

    let keep = TimeDelta::days(400);
    let now = Utc::now();
    let run = retention::run_once(&app.pool, Some(keep), now)
        .await
        .unwrap();
    assert_eq!(run.deleted_reports as i64, total - left_in_interrupted);
    assert_eq!(app.count("reports").await, 0);
    let month_tables: Vec<String> = months
        .iter()
        .flat_map(|month| {
            [
                month.clone(),
                month.replace("report_rows_", "report_metric_values_"),
            ]
        })
        .collect();
    let tables_left: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relname = ANY($1) AND relkind = 'r'",
    )
    .bind(&month_tables)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        tables_left,
        Vec::<String>::new(),
        "expired months are dropped"
    );
    let expired_listed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM report_partitions WHERE arrived_before <= $1")
            .bind(now - keep)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(expired_listed, 0);
    assert!(partition_for(&app.pool, now).await.is_some());
}

/// A database the release before partitioning (18ddc82) filled: `telemetry-server generate
/// --instances 30 --days 50 --end-date 2026-12-01 --seed 7`, then the GenericReport fixtures over
/// HTTP, dumped with `pg_dump --data-only --column-inserts` (reports, instances, upgrades and the
/// analytics schema) without its session settings.
fn release_filled_dump() -> String {
    let compressed = std::fs::read(common::test_data("release-18ddc82-filled.sql.gz")).unwrap();
    let mut sql = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut sql)
        .unwrap();
    sql
}

/// A database migrated up to the release before partitioning, holding what that release stored.
async fn filled_by_the_release() -> TestDatabase {
    let db = TestDatabase::migrated_to(BEFORE_PARTITIONING).await;
    let mut connection = PgConnection::connect(&common::database_url(&db.name))
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(release_filled_dump()))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    db
}

#[tokio::test]
async fn the_migration_keeps_every_row_of_a_database_the_release_filled() {
    let db = filled_by_the_release().await;
    let before = stored_state(&db.pool).await;
    let reports: i64 = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(reports > 800);

    store::MIGRATOR.run(&db.pool).await.unwrap();
    assert_eq!(stored_state(&db.pool).await, before);
    // Each report in the partition of the month it arrived in.
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM report_rows r
         LEFT JOIN report_partitions p ON p.partition = r.tableoid::regclass::text
         WHERE NOT (r.received_at >= p.arrived_from AND r.received_at < p.arrived_before)
            OR p.partition IS NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(misplaced, 0);
    let months: Vec<NaiveDate> = sqlx::query_scalar(
        "SELECT DISTINCT (arrived_from AT TIME ZONE 'UTC')::date FROM report_partitions
         JOIN report_rows r ON r.tableoid::regclass::text = partition ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(months.len() >= 3, "the history spans months: {months:?}");
    db.cleanup().await;
}

#[tokio::test]
async fn the_migration_notes_the_reports_a_release_stored_dated_ahead_so_their_re_sends_are_recognised()
 {
    let db = filled_by_the_release().await;
    // One report came from a client whose clock ran 40 days fast.
    let (instance_id, report_id, created_at): (uuid::Uuid, uuid::Uuid, chrono::DateTime<Utc>) =
        sqlx::query_as(
            "UPDATE reports SET created_at = received_at + interval '40 days'
             WHERE report_id = (SELECT min(report_id::text)::uuid FROM reports)
             RETURNING instance_id, report_id, created_at",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
    store::MIGRATOR.run(&db.pool).await.unwrap();
    let noted: Vec<(uuid::Uuid, uuid::Uuid)> =
        sqlx::query_as("SELECT instance_id, report_id FROM reports_dated_ahead")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(noted, vec![(instance_id, report_id)]);

    let mut report =
        telemetry_server::ingest::parse_report_request(&fixture("telemetry-agent-ps.json"))
            .unwrap()
            .remove(0);
    report.instance_id = instance_id;
    report.report_id = report_id;
    report.created_at = created_at;
    let re_sent = NewReport {
        report,
        country_code: None,
        received_at: None,
    };
    let before = stored_state(&db.pool).await;
    let stored = store::insert_reports(&db.pool, store::Topology::OneServer, [&re_sent])
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert_eq!(stored_state(&db.pool).await, before);
    db.cleanup().await;
}

#[tokio::test]
async fn a_request_with_reports_of_more_instances_than_the_lock_table_holds_is_stored() {
    let app = TestApp::spawn().await;
    // PostgreSQL's shared lock table holds 64 × (max_connections + a few) entries by default, about
    // 7,000 here: one transaction locking every instance of this request would run out of it.
    let reports: Vec<serde_json::Value> = (0..40_000u32)
        .map(|n| {
            serde_json::json!({
                "id": uuid::Uuid::new_v4(),
                "createTime": "2026-11-30T10:00:00Z",
                "instanceId": uuid::Uuid::new_v4(),
                "productFamily": "PRODUCT_FAMILY_PS",
                "metrics": [{"key": "pillar_version", "value": format!("8.0.{}", n % 40)}],
            })
        })
        .collect();
    let body = serde_json::json!({ "reports": reports }).to_string();
    let response = app.post_report(body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("reports").await, 40_000);
    assert_eq!(app.count("instances").await, 40_000);
}

/// Whether no transaction holds ingest's lock of `instance` (lock_ingest_instances(), in migrations/).
async fn instance_lock_is_free(pool: &PgPool, instance: uuid::Uuid) -> bool {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7310, hashtext($1::text))")
        .bind(instance)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn instance_locks_are_taken_only_under_the_transactions_own_month_of_arrival() {
    let db = TestDatabase::migrated().await;
    let instance = uuid::Uuid::new_v4();
    let mut session = db.pool.acquire().await.unwrap();
    let lock = |month: Option<NaiveDate>| {
        sqlx::query_scalar::<_, NaiveDate>("SELECT lock_ingest_instances($1, $2)")
            .bind(vec![instance])
            .bind(month)
    };

    // Told another month (a writer whose clock is past a month's end that the database's is not):
    // refused with its own SQLSTATE, and nothing locked.
    sqlx::query("BEGIN").execute(&mut *session).await.unwrap();
    let error = lock(NaiveDate::from_ymd_opt(2000, 1, 1))
        .fetch_one(&mut *session)
        .await
        .unwrap_err();
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("T7310"),
        "{error}"
    );
    assert!(instance_lock_is_free(&db.pool, instance).await);
    sqlx::query("ROLLBACK")
        .execute(&mut *session)
        .await
        .unwrap();

    // Told nothing, or the right month: the month, and the lock until the transaction ends.
    sqlx::query("BEGIN").execute(&mut *session).await.unwrap();
    let month = lock(None).fetch_one(&mut *session).await.unwrap();
    let transactions_month: NaiveDate =
        sqlx::query_scalar("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")
            .fetch_one(&mut *session)
            .await
            .unwrap();
    assert_eq!(month, transactions_month);
    assert!(!instance_lock_is_free(&db.pool, instance).await);
    assert_eq!(
        lock(Some(month)).fetch_one(&mut *session).await.unwrap(),
        month
    );
    sqlx::query("COMMIT").execute(&mut *session).await.unwrap();
    assert!(instance_lock_is_free(&db.pool, instance).await);
    drop(session);
    db.cleanup().await;
}

#[tokio::test]
async fn a_batch_cancelled_while_it_waits_for_its_instances_does_not_leave_its_connection_broken() {
    let db = TestDatabase::migrated().await;
    // One connection: the write after the cancelled one gets a fresh one, or the same one back.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    let report = crate::packing::agent_report(uuid::Uuid::new_v4());
    let mut holder = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7310, hashtext($1::text))")
        .bind(report.report.instance_id)
        .execute(&mut holder)
        .await
        .unwrap();

    let writing = {
        let (pool, report) = (pool.clone(), report.clone());
        tokio::spawn(async move {
            store::insert_reports(&pool, store::Topology::OneServer, [&report]).await
        })
    };
    // The batch takes its instances' locks with its BEGIN: it waits there until cancelled.
    let waiting_pid = loop {
        let waiting: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event = 'advisory'",
        )
        .fetch_optional(&db.pool)
        .await
        .unwrap();
        if let Some(pid) = waiting {
            break pid;
        }
        tokio::task::yield_now().await;
    };
    sqlx::query("SELECT pg_cancel_backend($1)")
        .bind(waiting_pid)
        .execute(&db.pool)
        .await
        .unwrap();
    let cancelled = writing.await.unwrap().unwrap_err();
    assert!(cancelled.is_transient(), "{cancelled}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();

    // The cancelled BEGIN left its transaction aborted on that connection; had the connection gone
    // back to the pool, this write would meet "current transaction is aborted".
    let stored = store::insert_reports(&pool, store::Topology::OneServer, [&report])
        .await
        .unwrap();
    assert_eq!(stored, 1);
    pool.close().await;
    db.cleanup().await;
}

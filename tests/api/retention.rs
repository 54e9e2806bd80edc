//! The retention job: it keeps the rollups whole while it deletes raw reports, can run twice and
//! alongside ingest, and runs inside the service on its own.

use std::time::Duration;

use crate::common::{self, TestApp, fixture, rows_as_text};
use chrono::{Days, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, PgPool};
use telemetry_server::retention;
use telemetry_server::store::{self, NewReport};
use telemetry_server::synthetic::{Settings, Simulation};

const KEEP: chrono::TimeDelta = chrono::TimeDelta::days(400);

fn settings(instances: u32, days: u32, end_date: NaiveDate) -> Settings {
    Settings {
        instances,
        days,
        end_date,
        seed: 3,
        batch_size: 500,
        concurrency: 2,
    }
}

fn history(settings: &Settings) -> Vec<Vec<NewReport>> {
    let mut simulation = Simulation::new(settings);
    std::iter::from_fn(|| simulation.next_day().map(|(_, day)| day)).collect()
}

async fn write(pool: &PgPool, reports: &[NewReport]) {
    for batch in reports.chunks(500) {
        store::insert_reports(pool, store::Topology::OneServer, batch)
            .await
            .expect("batch stored");
    }
}

/// Rollup rows up to `last_day`, and the per-instance daily facts, as text.
async fn analytics_state(pool: &PgPool, last_day: NaiveDate) -> String {
    let mut out = String::new();
    for table in [
        "daily_activity",
        "daily_versions",
        "daily_countries",
        "daily_new_instances",
        "daily_pmm_features",
        "daily_pmm_usage",
        "daily_monitored_databases",
        "daily_monitored_database_lines",
        "instance_days",
    ] {
        let rows = rows_as_text(
            pool,
            &format!("(SELECT * FROM analytics.{table} WHERE day <= '{last_day}')"),
        )
        .await;
        out.push_str(&format!("{table}:\n{rows}\n"));
    }
    out
}

/// Rebuilds every rollup from scratch, as the first refresh on a new database does.
async fn rebuild(pool: &PgPool, today: NaiveDate) {
    sqlx::query("DELETE FROM analytics.rollup_state")
        .execute(pool)
        .await
        .unwrap();
    store::refresh_rollups(pool, today).await.unwrap();
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Makes the reports created before `day` look as if they had arrived 500 days ago.
async fn age_reports_before(pool: &PgPool, day: NaiveDate) -> u64 {
    common::partitions_for_aging(pool, 500).await;
    sqlx::query(
        "UPDATE reports SET received_at = received_at - interval '500 days'
         WHERE created_at < $1::date::timestamptz",
    )
    .bind(day)
    .execute(pool)
    .await
    .unwrap()
    .rows_affected()
}

/// An instance's upgrades as (from, to) versions.
async fn upgrades_of(pool: &PgPool, instance: uuid::Uuid) -> Vec<(String, String)> {
    sqlx::query_as("SELECT from_version, to_version FROM upgrades WHERE instance_id = $1")
        .bind(instance)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_reports_go_and_their_rollups_stay() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let end = Utc::now().date_naive() - Days::new(1);
    let settings = settings(150, 40, end);
    for day in history(&settings) {
        write(&app.pool, &day).await;
    }
    let total = count(&app.pool, "reports").await;

    let first = retention::run_once(&app.pool, Some(KEEP), Utc::now())
        .await
        .unwrap();
    assert_eq!(first.deleted_reports, 0, "nothing is old yet");
    assert!(!first.refresh.ranges.is_empty());
    let before = analytics_state(&app.pool, end).await;

    let cut = end - Days::new(15);
    let aged = age_reports_before(&app.pool, cut).await;
    assert!(aged > 0 && (aged as i64) < total);
    let run = retention::run_once(&app.pool, Some(KEEP), Utc::now())
        .await
        .unwrap();
    assert_eq!(run.deleted_reports, aged);
    assert_eq!(count(&app.pool, "reports").await, total - aged as i64);
    let oldest_left: NaiveDate = sqlx::query_scalar("SELECT min(created_at)::date FROM reports")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(oldest_left >= cut);
    assert_eq!(analytics_state(&app.pool, end).await, before);

    // A second run finds nothing to delete and changes nothing.
    let again = retention::run_once(&app.pool, Some(KEEP), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.deleted_reports, 0);
    assert_eq!(analytics_state(&app.pool, end).await, before);

    // The deleted days can still be rebuilt from the daily facts alone.
    rebuild(&app.pool, Utc::now().date_naive()).await;
    assert_eq!(analytics_state(&app.pool, end).await, before);

    // Without a retention period, nothing is ever deleted.
    age_reports_before(&app.pool, end + Days::new(1)).await;
    let keep_all = retention::run_once(&app.pool, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(keep_all.deleted_reports, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_runs_and_ingest_leave_the_same_rollups_as_a_rebuild() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let end = Utc::now().date_naive() - Days::new(1);
    let days = history(&settings(120, 30, end));
    let (early, late) = days.split_at(18);
    for day in early {
        write(&app.pool, day).await;
    }
    let aged = age_reports_before(&app.pool, end - Days::new(20)).await;
    assert!(aged > 0);

    let pool = app.pool.clone();
    let ingest = async {
        for day in late {
            write(&pool, day).await;
        }
    };
    let job = |pool: PgPool| async move {
        let mut deleted = 0;
        for _ in 0..3 {
            deleted += retention::run_once(&pool, Some(KEEP), Utc::now())
                .await
                .expect("a concurrent run succeeds")
                .deleted_reports;
        }
        deleted
    };
    let ((), first, second) = tokio::join!(ingest, job(app.pool.clone()), job(app.pool.clone()));
    assert_eq!(first + second, aged, "every expired report deleted once");

    let today = Utc::now().date_naive();
    store::refresh_rollups(&app.pool, today).await.unwrap();
    let incremental = analytics_state(&app.pool, end).await;
    rebuild(&app.pool, today).await;
    assert_eq!(analytics_state(&app.pool, end).await, incremental);
    let expected_reports: usize = days.iter().map(Vec::len).sum::<usize>() - aged as usize;
    assert_eq!(count(&app.pool, "reports").await, expected_reports as i64);
    app.cleanup().await;
}

#[tokio::test]
async fn the_service_runs_the_job_on_its_own() {
    let app = TestApp::spawn_with(|config| {
        config.retention_interval_secs = 1;
        config.retention_days = 400;
    })
    .await;
    let response = app.post_report(fixture("pmm-generic-report-1.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("reports").await, 1);
    // The job folds the new report's day into the rollups at its next run...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let active_that_day = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT active_instances FROM analytics.daily_activity
             WHERE day = (SELECT day FROM analytics.instance_days)
               AND product_family = 'PRODUCT_FAMILY_PMM'",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    while active_that_day().await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job did not refresh the rollups"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ... and deletes it once it is old enough.
    common::partitions_for_aging(&app.pool, 401).await;
    sqlx::query("UPDATE reports SET received_at = now() - interval '401 days'")
        .execute(&app.pool)
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app.count("reports").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job did not delete the expired report"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(active_that_day().await, Some(1));
    assert_eq!(app.count("analytics.instance_days").await, 1);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("telemetry_retention_deleted_reports_total"),
        "{metrics}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_instance_back_after_its_reports_expired_still_gets_its_upgrade() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let instance = uuid::Uuid::new_v4();
    let post = |created: chrono::DateTime<Utc>, version: &str| {
        let body = serde_json::json!({"reports": [{
            "id": uuid::Uuid::new_v4().to_string(),
            "instanceId": instance.to_string(),
            "createTime": created.to_rfc3339(),
            "productFamily": "PRODUCT_FAMILY_PMM",
            "metrics": [{"key": "PMMServerVersion", "value": version}],
        }]});
        app.post_report(body.to_string())
    };
    assert_eq!(post(Utc::now() - Days::new(2), "3.1.0").await.status(), 200);
    age_reports_before(&app.pool, Utc::now().date_naive()).await;
    let run = retention::run_once(&app.pool, Some(KEEP), Utc::now())
        .await
        .unwrap();
    assert_eq!(run.deleted_reports, 1);

    // The previous version now lives only in `instances`; the upgrade is read from there.
    assert_eq!(post(Utc::now(), "3.2.0").await.status(), 200);
    assert_eq!(
        upgrades_of(&app.pool, instance).await,
        [("3.1.0".to_owned(), "3.2.0".to_owned())]
    );
    app.cleanup().await;
}

/// A version of 3,000 characters is accepted and kept raw, but it is no version: it neither poisons
/// its instance's later writes nor the rollups, and the retention command still deletes on time.
#[tokio::test]
async fn a_junk_version_is_kept_raw_and_breaks_neither_ingest_nor_retention() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let instance = uuid::Uuid::new_v4();
    let junk = "3.".repeat(1500);
    let post = |created: chrono::DateTime<Utc>, version: String| {
        let body = serde_json::json!({"reports": [{
            "id": uuid::Uuid::new_v4().to_string(),
            "instanceId": instance.to_string(),
            "createTime": created.to_rfc3339(),
            "productFamily": "PRODUCT_FAMILY_PMM",
            "metrics": [
                {"key": "PMMServerVersion", "value": version},
                {"key": "mysql_version", "value": version},
                {"key": "DistributionMethod", "value": version},
            ],
        }]});
        app.post_report(body.to_string())
    };
    let now = Utc::now();
    assert_eq!(post(now - Days::new(3), "3.1.0".into()).await.status(), 200);
    assert_eq!(post(now - Days::new(2), junk.clone()).await.status(), 200);
    let stored: (Option<String>, String) = sqlx::query_as(
        "SELECT version, metrics->0->>'value' FROM reports ORDER BY created_at OFFSET 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, (None, junk.clone()), "kept raw, not as the version");
    assert_eq!(post(now - Days::new(1), "3.2.0".into()).await.status(), 200);
    assert_eq!(
        upgrades_of(&app.pool, instance).await,
        [("3.1.0".to_owned(), "3.2.0".to_owned())]
    );

    // The two older reports are due; the command refreshes the rollups and deletes them.
    age_reports_before(&app.pool, (now - Days::new(1)).date_naive()).await;
    let (succeeded, output) = common::binary::run_command(
        "retention",
        &[
            ("DATABASE_URL", app.database_url.clone()),
            ("RETENTION_DAYS", "400".into()),
        ],
    )
    .await;
    assert!(succeeded, "{output}");
    assert!(output.contains("deleted 2 raw reports"), "{output}");
    assert_eq!(count(&app.pool, "reports").await, 1);
    let longest: i32 = sqlx::query_scalar(
        "SELECT coalesce(max(length(version)), 0) FROM (
             SELECT version FROM analytics.daily_versions
             UNION ALL SELECT version FROM analytics.daily_monitored_databases
             UNION ALL SELECT distribution_method FROM analytics.instance_days) AS derived",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((1..=64).contains(&longest), "{longest}");
    app.cleanup().await;
}

/// A refresh that fails does not hold raw reports back: they go on time, the failure is logged and
/// counted, and the days it could not fold in are rebuilt by the next refresh that works.
#[tokio::test]
async fn expired_reports_go_even_when_the_refresh_fails() {
    let app = TestApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    let today = Utc::now().date_naive();
    let post = |created: chrono::DateTime<Utc>| {
        let body = serde_json::json!({"reports": [{
            "id": uuid::Uuid::new_v4().to_string(),
            "instanceId": uuid::Uuid::new_v4().to_string(),
            "createTime": created.to_rfc3339(),
            "productFamily": "PRODUCT_FAMILY_PS",
            "metrics": [{"key": "pillar_version", "value": "8.0.36-28"}],
        }]});
        app.post_report(body.to_string())
    };
    assert_eq!(post(Utc::now() - Days::new(5)).await.status(), 200);
    retention::run_once(&app.pool, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(post(Utc::now() - Days::new(6)).await.status(), 200);
    // Every refresh since the second report arrived failed, for longer than reports are kept: the
    // job runs 500 days from now, and the last refresh that worked was 100 days before they came.
    let later = Utc::now() + Days::new(500);
    sqlx::query("UPDATE analytics.rollup_state SET refreshed_at = now() - interval '100 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "ALTER TABLE analytics.daily_activity ADD CONSTRAINT refresh_breaks CHECK (false) NOT VALID",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let failed = retention::run_once(&app.pool, Some(KEEP), later).await;
    assert!(
        matches!(
            failed,
            Err(retention::RetentionError::Refresh {
                deleted_reports: 2,
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(count(&app.pool, "reports").await, 0);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(r#"telemetry_rollup_refreshes_total{result="failed"}"#),
        "{metrics}"
    );
    let (succeeded, output) = common::binary::run_command(
        "retention",
        &[
            ("DATABASE_URL", app.database_url.clone()),
            ("RETENTION_DAYS", "400".into()),
        ],
    )
    .await;
    assert!(!succeeded, "{output}");
    assert!(
        output.contains("rollup refresh failed; expired raw reports are deleted all the same"),
        "{output}"
    );

    sqlx::query("ALTER TABLE analytics.daily_activity DROP CONSTRAINT refresh_breaks")
        .execute(&app.pool)
        .await
        .unwrap();
    retention::run_once(&app.pool, Some(KEEP), Utc::now())
        .await
        .unwrap();
    let late_day = today - Days::new(6);
    let active: Vec<(NaiveDate, i32)> = sqlx::query_as(
        "SELECT day, active_instances FROM analytics.daily_activity
         WHERE product_family = 'PRODUCT_FAMILY_PS' AND day IN ($1, $2) ORDER BY day",
    )
    .bind(late_day)
    .bind(today - Days::new(2))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        active,
        [(late_day, 1), (today - Days::new(2), 2)],
        "the deleted report's days are in the rollups"
    );
    app.cleanup().await;
}

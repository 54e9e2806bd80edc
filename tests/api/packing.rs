//! The service packs each report's metrics itself (`stored_metrics::pack`), and the SQL function
//! `pack_metrics()` packs the metrics that migrations and the naive benchmark store. Both must give
//! the same bytes: the same key list and digests mean one dictionary entry per instance and month,
//! whichever packed it, and `report_metrics()` rebuilds either. Checked against the real function,
//! on the fixtures' metrics, on hand-picked edge cases and on generated pairs.

use std::borrow::Cow;

use crate::common::{TestDatabase, fixture};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use telemetry_server::ingest::parse_report_request;
use telemetry_server::report::Metric;
use telemetry_server::store::{NewReport, StoredEntries, Topology, insert_reports_remembering};
use telemetry_server::stored_metrics::{DICTIONARY_MIN_BYTES, PackedMetrics, pack};

fn metric(key: &str, value: &str) -> Metric {
    Metric {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

/// `reports.metrics` for the pairs, as docs/analytics.md describes it: what `pack_metrics()` reads.
fn stored_json(metrics: &[Metric]) -> String {
    let escape = |text: &str| text.replace('\\', "\\\\").replace('\0', "\\0");
    let pairs: Vec<Value> = metrics
        .iter()
        .map(|m| {
            if m.key.contains('\0') || m.value.contains('\0') {
                json!({"key": escape(&m.key), "value": escape(&m.value), "nul_escaped": true})
            } else {
                json!({"key": m.key, "value": m.value})
            }
        })
        .collect();
    Value::Array(pairs).to_string()
}

/// What `pack_metrics()` makes of the pairs, in the shape of [`PackedMetrics`].
async fn packed_in_sql(pool: &PgPool, metrics: &[Metric]) -> PackedMetrics<'static> {
    let row = sqlx::query(
        "SELECT p.keys, metric_digest(p.keys) AS key_digest, p.short_values, p.value_digests, \
                p.nul_escaped, p.long_values \
         FROM pack_metrics($1::jsonb) p",
    )
    .bind(stored_json(metrics))
    .fetch_one(pool)
    .await
    .unwrap();
    let long_values: Vec<String> = row.get("long_values");
    let short_values: Vec<Option<String>> = row.get("short_values");
    let mut digests = Vec::new();
    for value in &long_values {
        let digest: i64 = sqlx::query_scalar("SELECT metric_digest($1)")
            .bind(value)
            .fetch_one(pool)
            .await
            .unwrap();
        digests.push(digest);
    }
    PackedMetrics {
        keys: row.get("key_digest"),
        key_list: row.get("keys"),
        short_values: short_values
            .into_iter()
            .map(|v| v.map(Cow::Owned))
            .collect(),
        value_digests: row.get("value_digests"),
        nul_escaped: row.get("nul_escaped"),
        long_values: digests
            .into_iter()
            .zip(long_values.into_iter().map(Cow::Owned))
            .collect(),
    }
}

fn fixture_metrics(name: &str) -> Vec<Metric> {
    let body: Value = serde_json::from_slice(&fixture(name)).unwrap();
    body["reports"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            metric(
                pair["key"].as_str().unwrap(),
                pair["value"].as_str().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_service_packs_metrics_as_pack_metrics_does() {
    let db = TestDatabase::migrated().await;
    let threshold: i32 = sqlx::query_scalar("SELECT metric_dictionary_min_bytes()")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(threshold as usize, DICTIONARY_MIN_BYTES);

    let just_short = "x".repeat(DICTIONARY_MIN_BYTES - 1);
    let just_long = "x".repeat(DICTIONARY_MIN_BYTES);
    // 30 ASCII bytes and a two-byte character: 31 characters, 32 bytes, so long.
    let long_in_bytes = format!("{}é", "y".repeat(DICTIONARY_MIN_BYTES - 2));
    let cases = vec![
        fixture_metrics("pmm-generic-report-1.json"),
        fixture_metrics("telemetry-agent-ps.json"),
        fixture_metrics("everest-report.json"),
        Vec::new(),
        vec![metric("", "")],
        vec![
            metric("quotes \" and \\ backslashes", r#"{"a": [1, "b"]}"#),
            metric("control \u{1}\u{8}\t\n\u{c}\r\u{1f}\u{7f}", "NULL"),
            metric("non-ASCII é 😀 \u{2028}", "{x,y}"),
            metric("same key", &just_short),
            metric("same key", &just_long),
            metric("bytes", &long_in_bytes),
        ],
        vec![
            metric("nul in the key \0", r"a\b"),
            metric("nul in the value", "\0\\0"),
            metric("after them", &just_long),
        ],
    ];
    for metrics in cases {
        assert_eq!(
            pack(&metrics),
            packed_in_sql(&db.pool, &metrics).await,
            "{metrics:?}"
        );
    }
    db.cleanup().await;
}

#[test]
fn generated_metrics_pack_as_pack_metrics_does() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let db = runtime.block_on(TestDatabase::migrated());
    let pairs = prop::collection::vec((any::<String>(), any::<String>()), 0..8);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&pairs, |pairs| {
        let metrics: Vec<Metric> = pairs.iter().map(|(k, v)| metric(k, v)).collect();
        let in_sql = runtime.block_on(packed_in_sql(&db.pool, &metrics));
        prop_assert_eq!(pack(&metrics), in_sql);
        Ok::<(), TestCaseError>(())
    });
    runtime.block_on(db.cleanup());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// A report of the agent fixture's instance, with its own id, arriving now.
pub(crate) fn agent_report(instance_id: uuid::Uuid) -> NewReport {
    let mut report = parse_report_request(&fixture("telemetry-agent-ps.json"))
        .unwrap()
        .remove(0);
    report.instance_id = instance_id;
    report.report_id = uuid::Uuid::new_v4();
    NewReport {
        report,
        country_code: None,
        received_at: None,
    }
}

async fn entries_of(pool: &PgPool, instance_id: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM report_metric_values WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn key_lists_and_long_values_a_committed_batch_stored_this_month_are_not_sent_again() {
    let db = TestDatabase::migrated().await;
    let instance_id = uuid::Uuid::new_v4();
    let seen = StoredEntries::default();
    let first = agent_report(instance_id);
    let stored = insert_reports_remembering(&db.pool, Topology::OneServer, &seen, [&first])
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let entries = entries_of(&db.pool, instance_id).await;
    assert!(entries > 0, "the fixture has a key list and long values");

    // Gone behind the service's back: a batch that sent them again would put them back.
    sqlx::query("DELETE FROM report_metric_values WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&db.pool)
        .await
        .unwrap();
    let second = agent_report(instance_id);
    insert_reports_remembering(&db.pool, Topology::OneServer, &seen, [&second])
        .await
        .unwrap();
    assert_eq!(entries_of(&db.pool, instance_id).await, 0);

    // A writer that has not seen them commit sends them.
    let third = agent_report(instance_id);
    insert_reports_remembering(
        &db.pool,
        Topology::OneServer,
        &StoredEntries::default(),
        [&third],
    )
    .await
    .unwrap();
    assert_eq!(entries_of(&db.pool, instance_id).await, entries);
    let metrics: Vec<String> = sqlx::query_scalar(
        "SELECT metrics::text FROM reports WHERE instance_id = $1 ORDER BY report_id",
    )
    .bind(instance_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(metrics.len(), 3);
    assert!(
        metrics
            .iter()
            .all(|m| m == &metrics[0] && m.contains("pillar_version"))
    );
    db.cleanup().await;
}

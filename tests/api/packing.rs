//! The service packs each report's metrics itself (`stored_metrics::pack`), and the SQL function
//! `pack_metrics()` packs the metrics that migrations and the naive benchmark store. Both must give
//! the same bytes: the same key list and digests mean one dictionary entry per instance and month,
//! whichever packed it, and `report_metrics()` rebuilds either. Checked against the real function,
//! on the fixtures' metrics, on hand-picked edge cases and on generated pairs.

use crate::common::{TestDatabase, fixture};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use telemetry_server::report::Metric;
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
async fn packed_in_sql(pool: &PgPool, metrics: &[Metric]) -> PackedMetrics {
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
        short_values: row.get("short_values"),
        value_digests: row.get("value_digests"),
        nul_escaped: row.get("nul_escaped"),
        long_values: digests.into_iter().zip(long_values).collect(),
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

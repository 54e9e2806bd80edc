//! What every decoded report must satisfy, whichever protocol it came by: PostgreSQL can store it
//! exactly as the store writes it. A decoder that accepts a report breaking one of these would turn
//! bad input into a failed commit (a 500) instead of a 400.

use telemetry_server::ingest::Report;
use telemetry_server::stored_metrics;

/// `4714-11-24 00:00:00+00 BC`, the earliest `timestamptz`, in Unix seconds. The latest one is
/// beyond what chrono can represent.
pub const EARLIEST_TIMESTAMPTZ: i64 = -210_866_803_200;

pub fn assert_storable(report: &Report) {
    assert!(
        report.created_at.timestamp() >= EARLIEST_TIMESTAMPTZ,
        "created_at {} is before PostgreSQL's earliest timestamptz",
        report.created_at
    );
    if let Some(version) = &report.version {
        assert!(!version.is_empty(), "an empty version is stored as NULL");
    }
    // The store sends the metrics to PostgreSQL as JSON array text, which jsonb must take: no
    // U+0000 escape may be left in it.
    let encoded = stored_metrics::to_json(&report.metrics);
    assert!(!encoded.contains("\\u0000"), "U+0000 left in the stored metrics");
    let decoded: serde_json::Value = serde_json::from_str(&encoded).expect("metrics re-parse");
    assert_eq!(decoded.as_array().map(Vec::len), Some(report.metrics.len()));
}

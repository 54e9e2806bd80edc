//! What every decoded report must satisfy, whichever protocol it came by: PostgreSQL can store it
//! exactly as the store writes it. A decoder that accepts a report breaking one of these would turn
//! bad input into a failed commit (a 500) instead of a 400.

use telemetry_server::ingest::{Limits, Report};

/// `4714-11-24 00:00:00+00 BC`, the earliest `timestamptz`, in Unix seconds. The latest one is
/// beyond what chrono can represent.
pub const EARLIEST_TIMESTAMPTZ: i64 = -210_866_803_200;

pub fn assert_storable(report: &Report, limits: &Limits) {
    assert!(
        report.created_at.timestamp() >= EARLIEST_TIMESTAMPTZ,
        "created_at {} is before PostgreSQL's earliest timestamptz",
        report.created_at
    );
    for metric in &report.metrics {
        assert!(
            metric.key.len() <= limits.max_key_bytes,
            "key over the limit"
        );
        assert!(
            metric.value.len() <= limits.max_value_bytes,
            "value over the limit"
        );
        // PostgreSQL text and jsonb cannot hold U+0000.
        assert!(
            !metric.key.contains('\0') && !metric.value.contains('\0'),
            "NUL in a metric"
        );
    }
    if let Some(version) = &report.version {
        assert!(!version.is_empty(), "an empty version is stored as NULL");
        assert!(!version.contains('\0'), "NUL in the version");
    }
    // The store sends the metrics to PostgreSQL as JSON array text.
    let encoded = serde_json::to_string(&report.metrics).expect("metrics serialise");
    let decoded: serde_json::Value = serde_json::from_str(&encoded).expect("metrics re-parse");
    assert_eq!(decoded.as_array().map(Vec::len), Some(report.metrics.len()));
}

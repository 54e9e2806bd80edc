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
    // The store packs the metrics (stored_metrics::pack) into text and a jsonb key list, which
    // PostgreSQL must take: no U+0000 may be left in either.
    let packed = stored_metrics::pack(&report.metrics);
    assert!(
        !packed.key_list.contains("\\u0000"),
        "U+0000 left in the key list"
    );
    let keys: serde_json::Value =
        serde_json::from_str(&packed.key_list).expect("key list re-parses");
    assert_eq!(keys.as_array().map(Vec::len), Some(report.metrics.len()));
    for (_, value) in packed.dictionary_entries() {
        assert!(
            stored_metrics::fits_text(value),
            "U+0000 left in a long value"
        );
    }
    for value in packed.short_values.iter().flatten() {
        assert!(
            stored_metrics::fits_text(value),
            "U+0000 left in a short value"
        );
    }
}

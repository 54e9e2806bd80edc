//! The request decoder and validator on arbitrary bytes, with the limits the service runs with.
//! Besides "never panics", every report it accepts must be storable as the store writes it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_server::ingest::{Limits, parse_report_request};

fuzz_target!(|body: &[u8]| {
    let limits = Limits::default();
    let Ok(reports) = parse_report_request(body, &limits) else {
        return;
    };
    assert!(reports.len() <= limits.max_reports);
    for report in &reports {
        assert!(report.metrics.len() <= limits.max_metrics);
        for metric in &report.metrics {
            assert!(metric.key.len() <= limits.max_key_bytes);
            assert!(metric.value.len() <= limits.max_value_bytes);
            // PostgreSQL text and jsonb cannot hold U+0000.
            assert!(!metric.key.contains('\0') && !metric.value.contains('\0'));
        }
        assert!(report.version.as_deref() != Some(""));
        // The store sends metrics to PostgreSQL as a JSON array text; it must round-trip.
        let encoded = serde_json::to_string(&report.metrics).expect("metrics serialise");
        let decoded: serde_json::Value = serde_json::from_str(&encoded).expect("metrics re-parse");
        assert_eq!(decoded.as_array().map(Vec::len), Some(report.metrics.len()));
    }
});

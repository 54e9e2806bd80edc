//! `POST /v1/telemetry/GenericReport`: the request decoder and validator on arbitrary bytes, with
//! the limits the service runs with by default.

#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_server::ingest::{Limits, parse_report_request};
use telemetry_server_fuzz::assert_storable;

fuzz_target!(|body: &[u8]| {
    let limits = Limits::default();
    let Ok(reports) = parse_report_request(body, &limits) else {
        return;
    };
    assert!(reports.len() <= limits.max_reports);
    for report in &reports {
        assert!(report.metrics.len() <= limits.max_metrics);
        assert_storable(report, &limits);
    }
});

//! The plain-text "v1" report of PMM 2.0–2.27 on arbitrary bytes.

#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use telemetry_server::legacy::v1::parse_v1_report;
use telemetry_server_fuzz::assert_storable;

fuzz_target!(|body: &[u8]| {
    let received_at = DateTime::from_timestamp(1_750_000_000, 0).expect("a valid time");
    let Ok(report) = parse_v1_report(body, received_at) else {
        return;
    };
    assert_eq!(report.created_at, received_at);
    assert_storable(&report);
});

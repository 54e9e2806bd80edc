//! `POST /v1/telemetry/Report` (PMM 2.25+): the protojson and `encoding/json` decoder and the
//! validator on arbitrary bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_server::ingest::Limits;
use telemetry_server::legacy;
use telemetry_server_fuzz::assert_storable;

fuzz_target!(|body: &[u8]| {
    let limits = Limits::default();
    let Ok(reports) = legacy::parse_report_request(body, &limits) else {
        return;
    };
    assert!(reports.len() <= limits.max_reports);
    for (report, _protocol) in &reports {
        assert_storable(report, &limits);
    }
});

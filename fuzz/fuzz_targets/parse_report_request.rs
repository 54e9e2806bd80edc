//! `POST /v1/telemetry/GenericReport`: the request decoder and validator on arbitrary bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_server::ingest::parse_report_request;
use telemetry_server_fuzz::assert_storable;

fuzz_target!(|body: &[u8]| {
    let Ok(reports) = parse_report_request(body) else {
        return;
    };
    for report in &reports {
        assert_storable(report);
    }
});

//! `POST /v1/telemetry/Report` (PMM 2.25+): the protojson and `encoding/json` decoder and the
//! validator on arbitrary bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry_server::legacy;
use telemetry_server_fuzz::assert_storable;

fuzz_target!(|body: &[u8]| {
    let Ok(reports) = legacy::parse_report_request(body) else {
        return;
    };
    for (report, _protocol) in &reports {
        assert_storable(report);
    }
});

//! The gRPC method of PMM 2.4–2.24: arbitrary bytes as the protobuf `ReportRequest` tonic decodes,
//! then the validator.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use telemetry_server::legacy::{self, proto::ReportRequest};
use telemetry_server_fuzz::assert_storable;

fuzz_target!(|message: &[u8]| {
    let Ok(request) = ReportRequest::decode(message) else {
        return;
    };
    let Ok(reports) = legacy::grpc_reports(request) else {
        return;
    };
    for (report, _protocol) in &reports {
        assert_storable(report);
    }
});

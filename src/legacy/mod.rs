//! The telemetry protocols of PMM 2, decoded into the same [`Report`]s as `GenericReport`, so that a
//! server's 2.x reports and its later 3.x reports form one instance with one upgrade history (see
//! `docs/legacy-protocols.md`):
//!
//! * `POST /v1/telemetry/Report` (PMM 2.25–2.4x): protojson `{"events":[...]}` or `{"metrics":[...]}`,
//!   and PMM 2.25's `encoding/json` variant ([`json`]);
//! * gRPC `percona.platform.telemetry.reporter.v1.ReporterAPI/Report` (PMM 2.4–2.24) ([`proto`];
//!   the method itself is served by `crate::http::grpc`);
//! * the "v1" plain-text lines PMM 2.0–2.27 sent to `v.percona.com` ([`v1`]).
//!
//! Every legacy report becomes a `PRODUCT_FAMILY_PMM` report whose instance id is the 16-byte
//! telemetry id read as a UUID (the `instanceId` PMM 3 sends), and whose metrics start with the pairs
//! PMM 3 puts first (`PMMServerVersion`, `UpDuration`, `DistributionMethod`).

pub mod json;
pub mod proto;
pub mod v1;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ingest::{IngestError, invalid, quoted_excerpt};
use crate::metric_keys as keys;
use crate::report::{Metric, ProductFamily, Protocol, Report};
use proto::{AnyEvent, DistributionMethod, Event, ReportRequest, ServerMetric, ServerUptimeEvent};

/// The `type_url` of the one event type PMM sends.
pub const SERVER_UPTIME_EVENT: &str = "percona.platform.telemetry.events.pmm.v1.ServerUptimeEvent";

/// Decodes and validates a `POST /v1/telemetry/Report` body; each report comes with its protocol.
/// One invalid report rejects the whole request, as for `GenericReport`.
pub fn parse_report_request(body: &[u8]) -> Result<Vec<Report>, IngestError> {
    let request = json::report_request(body)?;
    reports(request, Protocol::ReportEvent, Protocol::ReportServerMetric)
}

/// Validates a `ReportRequest` that arrived over gRPC.
pub fn grpc_reports(request: ReportRequest) -> Result<Vec<Report>, IngestError> {
    reports(request, Protocol::Grpc, Protocol::Grpc)
}

fn reports(
    request: ReportRequest,
    event_protocol: Protocol,
    metric_protocol: Protocol,
) -> Result<Vec<Report>, IngestError> {
    let events = request
        .events
        .into_iter()
        .enumerate()
        .map(|(index, event)| event_report(event, &format!("events[{index}]"), event_protocol));
    let metrics = request
        .metrics
        .into_iter()
        .enumerate()
        .map(|(index, metric)| {
            server_metric_report(metric, &format!("metrics[{index}]"), metric_protocol)
        });
    events.chain(metrics).collect()
}

/// The fields PMM 2 sends outside its metrics, which PMM 3 sends as its first three metrics.
struct Header {
    version: String,
    up_duration: Option<prost_types::Duration>,
    distribution_method: i32,
}

impl Header {
    fn metrics(&self) -> Vec<Metric> {
        let mut metrics = Vec::with_capacity(3);
        // PMM drops empty values before sending (`removeEmpty`), so an unset field gives no pair.
        if !self.version.is_empty() {
            metrics.push(pair(keys::PMM_SERVER_VERSION, &self.version));
        }
        if let Some(up_duration) = self.up_duration.as_ref().map(prototext_duration)
            && !up_duration.is_empty()
        {
            metrics.push(pair(keys::UP_DURATION, &up_duration));
        }
        metrics.push(pair(
            keys::DISTRIBUTION_METHOD,
            &distribution_method_name(self.distribution_method),
        ));
        metrics
    }
}

fn pair(key: &str, value: &str) -> Metric {
    Metric {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

/// PMM 3 renders `UpDuration` with Go's prototext (`seconds:86401 nanos:318260114`, zero fields left
/// out), which `ingest::parse_up_duration` reads; legacy durations are rendered the same way so that
/// one query reads both.
fn prototext_duration(duration: &prost_types::Duration) -> String {
    let mut parts = Vec::with_capacity(2);
    if duration.seconds != 0 {
        parts.push(format!("seconds:{}", duration.seconds));
    }
    if duration.nanos != 0 {
        parts.push(format!("nanos:{}", duration.nanos));
    }
    parts.join(" ")
}

/// The name, as PMM 3's `DistributionMethod` pair has it; Go prints an unknown value as its number.
fn distribution_method_name(number: i32) -> String {
    DistributionMethod::try_from(number)
        .map_or_else(|_| number.to_string(), |method| method.as_str().to_owned())
}

fn event_report(event: Event, path: &str, protocol: Protocol) -> Result<Report, IngestError> {
    let report_id = uuid_from_bytes(&event.id, &format!("{path}.id"))?;
    let created_at = created_at(event.time, &format!("{path}.time"))?;
    let Some(any) = event.event else {
        return Err(invalid(format!("{path}.event"), "is required"));
    };
    let (uptime, uptime_path) = server_uptime_event(any, &format!("{path}.event"))?;
    let instance_id = uuid_from_bytes(&uptime.id, &format!("{uptime_path}.id"))?;
    let header = Header {
        version: uptime.version,
        up_duration: uptime.up_duration,
        distribution_method: uptime.distribution_method,
    };
    let mut metrics = header.metrics();
    // The flags PMM 2.17+ put in the event are the metrics PMM 2.28+ send under these keys.
    for (key, flag) in [
        (keys::ALERTING_ENABLED, uptime.ia_enabled),
        (keys::STT_ENABLED, uptime.stt_enabled),
    ] {
        if let Some(flag) = flag {
            metrics.push(pair(key, if flag { "1" } else { "0" }));
        }
    }
    Ok(Report::new(
        protocol,
        report_id,
        instance_id,
        ProductFamily::Pmm,
        created_at,
        metrics,
    ))
}

/// Reads the event out of its envelope; returns it with the path its fields are named under.
fn server_uptime_event(
    any: AnyEvent,
    path: &str,
) -> Result<(ServerUptimeEvent, String), IngestError> {
    // Tolerate a `type.googleapis.com/`-style prefix, as `google.protobuf.Any` resolvers do.
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    if type_name != SERVER_UPTIME_EVENT {
        return Err(invalid(
            format!("{path}.typeUrl"),
            format!(
                "{} is not an event type this service accepts (only {SERVER_UPTIME_EVENT})",
                quoted_excerpt(&any.type_url)
            ),
        ));
    }
    match (any.binary.is_empty(), any.json.is_empty()) {
        (false, false) => Err(invalid(
            path,
            "both binary and json are set; only one of them may be",
        )),
        (true, true) => Err(invalid(path, "one of binary or json is required")),
        (false, true) => {
            let binary_path = format!("{path}.binary");
            let event = <ServerUptimeEvent as prost::Message>::decode(any.binary.as_slice())
                .map_err(|e| {
                    invalid(
                        &binary_path,
                        format!("is not a serialized ServerUptimeEvent: {e}"),
                    )
                })?;
            Ok((event, binary_path))
        }
        (true, false) => {
            let json_path = format!("{path}.json");
            Ok((json::server_uptime_event(&any.json, &json_path)?, json_path))
        }
    }
}

fn server_metric_report(
    report: ServerMetric,
    path: &str,
    protocol: Protocol,
) -> Result<Report, IngestError> {
    let report_id = uuid_from_bytes(&report.id, &format!("{path}.id"))?;
    let created_at = created_at(report.time, &format!("{path}.time"))?;
    let instance_id = uuid_from_bytes(
        &report.pmm_server_telemetry_id,
        &format!("{path}.pmmServerTelemetryId"),
    )?;
    let header = Header {
        version: report.pmm_server_version,
        up_duration: report.up_duration,
        distribution_method: report.distribution_method,
    };
    let mut metrics = header.metrics();
    metrics.reserve(report.metrics.len());
    for metric in report.metrics {
        metrics.push(Metric {
            key: metric.key,
            value: metric.value,
        });
    }
    Ok(Report::new(
        protocol,
        report_id,
        instance_id,
        ProductFamily::Pmm,
        created_at,
        metrics,
    ))
}

/// A 16-byte protobuf `bytes` id read as a UUID: PMM fills it with a UUID's raw bytes.
fn uuid_from_bytes(bytes: &[u8], path: &str) -> Result<Uuid, IngestError> {
    if bytes.is_empty() {
        return Err(invalid(path, "is required"));
    }
    Uuid::from_slice(bytes)
        .map_err(|_| invalid(path, format!("expected 16 bytes, got {}", bytes.len())))
}

/// `google.protobuf.Timestamp`'s range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, as Go's
/// `timestamppb.CheckValid` enforces it. chrono reaches much further back than PostgreSQL's
/// `timestamptz` (4713 BC), so a time outside it would fail the commit instead of the request.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

fn created_at(
    time: Option<prost_types::Timestamp>,
    path: &str,
) -> Result<DateTime<Utc>, IngestError> {
    let time = time.ok_or_else(|| invalid(path, "is required"))?;
    u32::try_from(time.nanos)
        .ok()
        .filter(|_| TIMESTAMP_SECONDS.contains(&time.seconds))
        .and_then(|nanos| DateTime::from_timestamp(time.seconds, nanos))
        .ok_or_else(|| {
            invalid(
                path,
                format!(
                    "seconds {} and nanos {} are not a valid time between the years 1 and 9999",
                    time.seconds, time.nanos
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    /// The PMM 2.26 example of `docs/protocol.md` §3.7.
    const EXAMPLE_BINARY: &str = "ChCYhkbv3RNPz6L9dFgW5Xh3EgYyLjI2LjAaCgiAowUQgbiQ0AIgASoCCAEyAA==";

    #[test]
    fn reference_server_uptime_event_decodes() {
        let binary = STANDARD.decode(EXAMPLE_BINARY).unwrap();
        let event = <ServerUptimeEvent as prost::Message>::decode(binary.as_slice()).unwrap();
        assert_eq!(
            Uuid::from_slice(&event.id).unwrap().to_string(),
            "988646ef-dd13-4fcf-a2fd-745816e57877"
        );
        assert_eq!(event.version, "2.26.0");
        assert_eq!(
            event.up_duration,
            Some(prost_types::Duration {
                seconds: 86400,
                nanos: 704912385
            })
        );
        assert_eq!(event.distribution_method, DistributionMethod::Docker as i32);
        assert_eq!(
            (event.stt_enabled, event.ia_enabled),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn header_pairs_match_pmm3() {
        let header = Header {
            version: "2.41.1".into(),
            up_duration: Some(prost_types::Duration {
                seconds: 86400,
                nanos: 853372941,
            }),
            distribution_method: 1,
        };
        assert_eq!(
            header.metrics(),
            [
                pair("PMMServerVersion", "2.41.1"),
                pair("UpDuration", "seconds:86400 nanos:853372941"),
                pair("DistributionMethod", "DOCKER"),
            ]
        );
        assert_eq!(
            crate::report::parse_up_duration("seconds:86400 nanos:853372941"),
            Some(86400)
        );
        let bare = Header {
            version: String::new(),
            up_duration: None,
            distribution_method: 9,
        };
        assert_eq!(bare.metrics(), [pair("DistributionMethod", "9")]);
    }

    #[test]
    fn times_are_bounded_to_the_years_1_to_9999() {
        let at = |seconds| created_at(Some(prost_types::Timestamp { seconds, nanos: 0 }), "time");
        assert_eq!(
            at(-62_135_596_800).unwrap().to_rfc3339(),
            "0001-01-01T00:00:00+00:00"
        );
        assert_eq!(
            at(253_402_300_799).unwrap().to_rfc3339(),
            "9999-12-31T23:59:59+00:00"
        );
        for seconds in [
            -62_135_596_801,
            253_402_300_800,
            -1_000_000_000_000,
            i64::MIN,
        ] {
            let error = at(seconds).unwrap_err().to_string();
            assert!(error.starts_with("time: seconds "), "{error}");
        }
    }
}

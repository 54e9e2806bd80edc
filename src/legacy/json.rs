//! `POST /v1/telemetry/Report` bodies decoded into the legacy protobuf messages, with the protojson
//! rules of `ingest` (JSON and proto field names, enums by name or number, `null` as unset, unknown
//! fields ignored), plus the one extra shape PMM 2.25 produced by running Go's `encoding/json` over
//! the generated structs: `Timestamp` and `Duration` as `{"seconds":..,"nanos":..}` objects, enums as
//! numbers and `BoolValue` as `{"value":..}`. Both shapes are told apart by JSON type alone, so
//! nothing is guessed.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::proto::{
    AnyEvent, DistributionMethod, Event, ReportRequest, ServerMetric, ServerUptimeEvent,
    server_metric,
};
use crate::ingest::{self, IngestError, field, invalid, kind, nullable, quoted_excerpt};

/// Decodes a `ReportRequest` body; validation of the decoded messages is the caller's. As
/// grpc-gateway reads a body, an empty one is an empty request and only the first JSON value is
/// read: whatever follows it is not looked at.
pub fn report_request(body: &[u8]) -> Result<ReportRequest, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReportRequest::default());
    }
    let document = Value::deserialize(&mut serde_json::Deserializer::from_slice(body))
        .map_err(|e| IngestError::InvalidJson(e.to_string()))?;
    let request = object(&document, "request")?;
    Ok(ReportRequest {
        events: list(request, "events", "events", "request", event)?,
        metrics: list(request, "metrics", "metrics", "request", server_metric)?,
    })
}

/// Decodes the protojson text a `ServerUptimeEvent` can be carried in (`AnyEvent.json`).
pub fn server_uptime_event(text: &str, path: &str) -> Result<ServerUptimeEvent, IngestError> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| invalid(path, format!("is not valid JSON: {e}")))?;
    let event = object(&document, path)?;
    Ok(ServerUptimeEvent {
        id: bytes(event, "id", "id", path)?,
        version: string(event, "version", "version", path)?,
        up_duration: duration(event, "upDuration", "up_duration", path)?,
        distribution_method: distribution_method(
            event,
            "distributionMethod",
            "distribution_method",
            path,
        )?,
        stt_enabled: bool_value(event, "sttEnabled", "stt_enabled", path)?,
        ia_enabled: bool_value(event, "iaEnabled", "ia_enabled", path)?,
    })
}

fn event(value: &Value, path: &str) -> Result<Event, IngestError> {
    let event = object(value, path)?;
    let any = match nullable(field(event, "event", "event", path)?) {
        None => None,
        Some(value) => Some(any_event(value, &format!("{path}.event"))?),
    };
    Ok(Event {
        id: bytes(event, "id", "id", path)?,
        time: timestamp(event, "time", "time", path)?,
        event: any,
    })
}

fn any_event(value: &Value, path: &str) -> Result<AnyEvent, IngestError> {
    let any = object(value, path)?;
    Ok(AnyEvent {
        type_url: string(any, "typeUrl", "type_url", path)?,
        binary: bytes(any, "binary", "binary", path)?,
        json: string(any, "json", "json", path)?,
    })
}

fn server_metric(value: &Value, path: &str) -> Result<ServerMetric, IngestError> {
    let report = object(value, path)?;
    Ok(ServerMetric {
        id: bytes(report, "id", "id", path)?,
        time: timestamp(report, "time", "time", path)?,
        pmm_server_telemetry_id: bytes(
            report,
            "pmmServerTelemetryId",
            "pmm_server_telemetry_id",
            path,
        )?,
        pmm_server_version: string(report, "pmmServerVersion", "pmm_server_version", path)?,
        up_duration: duration(report, "upDuration", "up_duration", path)?,
        distribution_method: distribution_method(
            report,
            "distributionMethod",
            "distribution_method",
            path,
        )?,
        metrics: list(report, "metrics", "metrics", path, metric)?,
    })
}

fn metric(value: &Value, path: &str) -> Result<server_metric::Metric, IngestError> {
    let metric = object(value, path)?;
    Ok(server_metric::Metric {
        key: string(metric, "key", "key", path)?,
        value: string(metric, "value", "value", path)?,
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, IngestError> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(invalid(
            path,
            format!("expected an object, got {}", kind(other)),
        )),
    }
}

fn list<T>(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
    decode: impl Fn(&Value, &str) -> Result<T, IngestError>,
) -> Result<Vec<T>, IngestError> {
    // The request's own fields are named without a prefix, as `ingest` does for `reports`.
    let field_path = match path {
        "request" => json_name.to_owned(),
        _ => format!("{path}.{json_name}"),
    };
    match nullable(field(object, json_name, proto_name, path)?) {
        None => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(index, entry)| decode(entry, &format!("{field_path}[{index}]")))
            .collect(),
        Some(other) => Err(invalid(
            field_path,
            format!("expected an array, got {}", kind(other)),
        )),
    }
}

fn string(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<String, IngestError> {
    match nullable(field(object, json_name, proto_name, path)?) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(invalid(
            format!("{path}.{json_name}"),
            format!("expected a string, got {}", kind(other)),
        )),
    }
}

/// protojson writes `bytes` as standard base64 with padding, and reads URL-safe and unpadded too.
fn bytes(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Vec<u8>, IngestError> {
    let text = string(object, json_name, proto_name, path)?;
    let engine = if text.contains(['-', '_']) {
        URL_SAFE_PAD_INDIFFERENT
    } else {
        STANDARD_PAD_INDIFFERENT
    };
    engine.decode(&text).map_err(|_| {
        invalid(
            format!("{path}.{json_name}"),
            format!("{} is not base64", quoted_excerpt(&text)),
        )
    })
}

/// An RFC 3339 string (protojson) or `{"seconds":..,"nanos":..}` (PMM 2.25).
fn timestamp(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Option<prost_types::Timestamp>, IngestError> {
    let field_path = format!("{path}.{json_name}");
    match nullable(field(object, json_name, proto_name, path)?) {
        None => Ok(None),
        Some(Value::Object(parts)) => {
            let (seconds, nanos) = seconds_and_nanos(parts, &field_path)?;
            Ok(Some(prost_types::Timestamp { seconds, nanos }))
        }
        Some(value) => {
            let time = ingest::timestamp(value, &field_path)?;
            Ok(Some(prost_types::Timestamp {
                seconds: time.timestamp(),
                nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
            }))
        }
    }
}

/// A protojson duration string (`"86400.853372941s"`) or `{"seconds":..,"nanos":..}` (PMM 2.25).
fn duration(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Option<prost_types::Duration>, IngestError> {
    let field_path = format!("{path}.{json_name}");
    match nullable(field(object, json_name, proto_name, path)?) {
        None => Ok(None),
        Some(Value::Object(parts)) => {
            let (seconds, nanos) = seconds_and_nanos(parts, &field_path)?;
            Ok(Some(prost_types::Duration { seconds, nanos }))
        }
        Some(Value::String(text)) => {
            text.parse::<prost_types::Duration>()
                .map(Some)
                .map_err(|_| {
                    invalid(
                        field_path,
                        format!(
                            "{} is not a duration such as \"86400.853372941s\"",
                            quoted_excerpt(text)
                        ),
                    )
                })
        }
        Some(other) => Err(invalid(
            field_path,
            format!("expected a duration string, got {}", kind(other)),
        )),
    }
}

/// Go's `encoding/json` of a `Timestamp` or `Duration` struct: both fields `omitempty`, so either
/// may be missing and then means zero.
fn seconds_and_nanos(parts: &Map<String, Value>, path: &str) -> Result<(i64, i32), IngestError> {
    let seconds = match nullable(parts.get("seconds")) {
        None => 0,
        Some(Value::Number(number)) => number.as_i64().ok_or_else(|| {
            invalid(
                format!("{path}.seconds"),
                format!("{number} is not an integer"),
            )
        })?,
        Some(other) => {
            return Err(invalid(
                format!("{path}.seconds"),
                format!("expected an integer, got {}", kind(other)),
            ));
        }
    };
    let nanos = match nullable(parts.get("nanos")) {
        None => 0,
        Some(Value::Number(number)) => number
            .as_i64()
            .and_then(|nanos| i32::try_from(nanos).ok())
            .filter(|nanos| nanos.abs() < 1_000_000_000)
            .ok_or_else(|| {
                invalid(
                    format!("{path}.nanos"),
                    format!("{number} is not a number of nanoseconds below one second"),
                )
            })?,
        Some(other) => {
            return Err(invalid(
                format!("{path}.nanos"),
                format!("expected an integer, got {}", kind(other)),
            ));
        }
    };
    Ok((seconds, nanos))
}

/// By name or number. An unknown name reads as 0 (protojson with `DiscardUnknown`); an unknown
/// number is kept, as proto3 enums are open.
fn distribution_method(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<i32, IngestError> {
    let field_path = format!("{path}.{json_name}");
    match nullable(field(object, json_name, proto_name, path)?) {
        None => Ok(0),
        Some(Value::String(name)) => {
            Ok(DistributionMethod::from_name(name).map_or(0, |method| method as i32))
        }
        Some(Value::Number(number)) => number
            .as_i64()
            .and_then(|number| i32::try_from(number).ok())
            .ok_or_else(|| invalid(field_path, format!("{number} is not an enum number"))),
        Some(other) => Err(invalid(
            field_path,
            format!("expected an enum name or number, got {}", kind(other)),
        )),
    }
}

/// `google.protobuf.BoolValue`: a bare boolean (protojson) or `{"value":..}` (PMM 2.25).
fn bool_value(
    object: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Option<bool>, IngestError> {
    let field_path = format!("{path}.{json_name}");
    match nullable(field(object, json_name, proto_name, path)?) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::Object(wrapper)) => match nullable(wrapper.get("value")) {
            None => Ok(Some(false)),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(invalid(
                format!("{field_path}.value"),
                format!("expected a boolean, got {}", kind(other)),
            )),
        },
        Some(other) => Err(invalid(
            field_path,
            format!("expected a boolean, got {}", kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_time_shapes() {
        let body = json!({"metrics": [
            {"time": "2024-02-14T10:31:07.514728301Z", "upDuration": "86400.853372941s"},
            {"time": {"seconds": 1707906667, "nanos": 514728301}, "up_duration": {"seconds": 86400}},
        ]});
        let request = report_request(body.to_string().as_bytes()).unwrap();
        let expected_time = prost_types::Timestamp {
            seconds: 1707906667,
            nanos: 514728301,
        };
        assert_eq!(request.metrics[0].time, Some(expected_time));
        assert_eq!(request.metrics[1].time, Some(expected_time));
        assert_eq!(
            request.metrics[0].up_duration,
            Some(prost_types::Duration {
                seconds: 86400,
                nanos: 853372941
            })
        );
        assert_eq!(
            request.metrics[1].up_duration,
            Some(prost_types::Duration {
                seconds: 86400,
                nanos: 0
            })
        );
    }

    #[test]
    fn base64_forms() {
        for text in [
            "mIZG790TT8+i/XRYFuV4dw==",
            "mIZG790TT8+i/XRYFuV4dw",
            "mIZG790TT8-i_XRYFuV4dw==",
            "mIZG790TT8-i_XRYFuV4dw",
        ] {
            let body = json!({"metrics": [{"id": text}]});
            let request = report_request(body.to_string().as_bytes()).unwrap();
            assert_eq!(
                uuid::Uuid::from_slice(&request.metrics[0].id)
                    .unwrap()
                    .to_string(),
                "988646ef-dd13-4fcf-a2fd-745816e57877",
                "{text}"
            );
        }
        let body = json!({"metrics": [{"id": "not base64!"}]});
        assert!(matches!(
            report_request(body.to_string().as_bytes()),
            Err(IngestError::InvalidField { path, .. }) if path == "metrics[0].id"
        ));
    }

    #[test]
    fn enum_and_bool_value_forms() {
        let event = server_uptime_event(
            r#"{"distributionMethod": "AMI", "sttEnabled": true, "ia_enabled": {"value": false}}"#,
            "json",
        )
        .unwrap();
        assert_eq!(event.distribution_method, DistributionMethod::Ami as i32);
        assert_eq!(
            (event.stt_enabled, event.ia_enabled),
            (Some(true), Some(false))
        );
        let event =
            server_uptime_event(r#"{"distribution_method": 4, "iaEnabled": {}}"#, "json").unwrap();
        assert_eq!(event.distribution_method, DistributionMethod::Azure as i32);
        assert_eq!((event.stt_enabled, event.ia_enabled), (None, Some(false)));
        let event = server_uptime_event(r#"{"distributionMethod": "KUBERNETES"}"#, "json").unwrap();
        assert_eq!(event.distribution_method, 0);
        let event = server_uptime_event(r#"{"distributionMethod": 9}"#, "json").unwrap();
        assert_eq!(event.distribution_method, 9);
    }

    #[test]
    fn only_the_first_json_value_is_read() {
        let request = report_request(b"{\"metrics\":[]} {\"not\": read").unwrap();
        assert!(request.metrics.is_empty() && request.events.is_empty());
        assert_eq!(report_request(b" \n").unwrap(), ReportRequest::default());
        assert!(report_request(b"{\"metrics\":[]").is_err());
    }
}

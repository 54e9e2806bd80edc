//! The `GenericReport` wire format: protojson as the Go clients, `call-home.sh` and Everest write it,
//! decoded once into the domain types the rest of the service works with.
//!
//! The rules mirror `google.golang.org/protobuf/encoding/protojson` with `DiscardUnknown`, the decoder
//! behind Percona's grpc-gateway (see `docs/protocol.md`): both JSON and proto field names, enums by
//! name or number, RFC 3339 timestamps, `null` meaning "unset", unknown fields ignored.

mod scan;
mod typed;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::observability::RejectReason;
pub use crate::report::{Metric, ProductFamily, Protocol, Report, parse_up_duration};

/// Why a request body was refused. Every message names what is wrong and where, never who sent it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("request body is empty")]
    EmptyBody,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{path}: {problem}")]
    InvalidField { path: String, problem: String },
    /// protojson's `duplicate field`: one field of a message given twice, under one of its names or
    /// under both.
    #[error("{path}: duplicate field {field:?}")]
    DuplicateField { path: String, field: String },
}

impl IngestError {
    /// The class a refusal is counted and logged under.
    pub fn reason(&self) -> RejectReason {
        match self {
            Self::EmptyBody => RejectReason::EmptyBody,
            Self::InvalidJson(_) => RejectReason::InvalidJson,
            Self::InvalidField { .. } => RejectReason::InvalidField,
            Self::DuplicateField { .. } => RejectReason::DuplicateField,
        }
    }
}

pub(crate) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> IngestError {
    IngestError::InvalidField {
        path: path.into(),
        problem: problem.into(),
    }
}

/// Decodes a `ReportRequest` body as Percona's front end does: its first JSON value (an empty body is
/// an empty request; whatever follows the value is not read), checked by [`scan`], then decoded. One
/// invalid report rejects the whole request, as Percona's validator does. No limit applies beyond
/// the body's size: Percona has none, and PMM re-sends a refused report with every later one.
pub fn parse_report_request(body: &[u8]) -> Result<Vec<Report>, IngestError> {
    let Some(scanned) = scan::first_value(body)? else {
        return Ok(Vec::new());
    };
    match typed::decode(scanned.value) {
        Some(reports) => Ok(reports),
        None => parse_report_tree(&scanned.without_unknown_fields()),
    }
}

/// The product family of a refused request's first report that names one, for the refusal's log
/// line; `None` when the body does not get that far.
pub fn product_family_hint(body: &[u8]) -> Option<ProductFamily> {
    let scanned = scan::first_value(body).ok()??;
    let Ok(Value::Object(mut request)) =
        serde_json::from_slice::<Value>(&scanned.without_unknown_fields())
    else {
        return None;
    };
    let Some(Value::Array(reports)) = request.remove("reports") else {
        return None;
    };
    reports.iter().find_map(|report| {
        let report = report.as_object()?;
        let value = nullable(report.get("productFamily").or(report.get("product_family")))?;
        product_family(value, "").ok()
    })
}

/// The decoder that explains: walks the request as a JSON tree, so that a refusal can name the
/// field at fault and what is wrong with it. It gets the request with the values of unknown fields
/// already left out ([`scan::Scanned::without_unknown_fields`]): they may nest 10,000 levels deep.
fn parse_report_tree(body: &[u8]) -> Result<Vec<Report>, IngestError> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| IngestError::InvalidJson(e.to_string()))?;
    let Value::Object(mut request) = document else {
        return Err(invalid(
            "request",
            format!("expected a JSON object, got {}", kind(&document)),
        ));
    };
    let Some(reports) = take_field(&mut request, "reports", "reports", "request")? else {
        return Ok(Vec::new());
    };
    let Value::Array(reports) = reports else {
        return Err(invalid(
            "reports",
            format!("expected an array, got {}", kind(&reports)),
        ));
    };
    reports
        .into_iter()
        .enumerate()
        .map(|(index, report)| parse_report(report, &format!("reports[{index}]")))
        .collect()
}

/// Takes the report apart rather than copying out of it: its metrics are most of the body.
fn parse_report(value: Value, path: &str) -> Result<Report, IngestError> {
    let Value::Object(mut report) = value else {
        return Err(invalid(
            path,
            format!("expected an object, got {}", kind(&value)),
        ));
    };
    let report_id = required_uuid(&report, "id", "id", path)?;
    let instance_id = required_uuid(&report, "instanceId", "instance_id", path)?;
    let created_at = match nullable(field(&report, "createTime", "create_time", path)?) {
        Some(value) => timestamp(value, &format!("{path}.createTime"))?,
        None => return Err(invalid(format!("{path}.createTime"), "is required")),
    };
    let product_family = match nullable(field(&report, "productFamily", "product_family", path)?) {
        None => ProductFamily::Invalid,
        Some(value) => product_family(value, &format!("{path}.productFamily"))?,
    };
    let metrics = match take_field(&mut report, "metrics", "metrics", path)? {
        None => Vec::new(),
        Some(value) => metrics(value, &format!("{path}.metrics"))?,
    };
    Ok(Report::new(
        Protocol::GenericReport,
        report_id,
        instance_id,
        product_family,
        created_at,
        metrics,
    ))
}

/// Looks a field up by its JSON name or its proto name; giving both is an error, as in protojson.
pub(crate) fn field<'a>(
    object: &'a Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Option<&'a Value>, IngestError> {
    match (object.get(json_name), object.get(proto_name)) {
        (Some(_), Some(_)) if json_name != proto_name => Err(IngestError::DuplicateField {
            path: path.to_owned(),
            field: proto_name.to_owned(),
        }),
        (Some(value), _) | (None, Some(value)) => Ok(Some(value)),
        (None, None) => Ok(None),
    }
}

/// Like [`field`], but moves the value out of the object; `None` for an explicit `null` too.
fn take_field(
    object: &mut Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Option<Value>, IngestError> {
    field(object, json_name, proto_name, path)?;
    let value = object
        .remove(json_name)
        .or_else(|| object.remove(proto_name));
    Ok(value.filter(|value| !value.is_null()))
}

/// protojson treats an explicit `null` as an unset field.
pub(crate) fn nullable(value: Option<&Value>) -> Option<&Value> {
    value.filter(|value| !value.is_null())
}

fn required_uuid(
    report: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Uuid, IngestError> {
    let field_path = format!("{path}.{json_name}");
    match nullable(field(report, json_name, proto_name, path)?) {
        None => Err(invalid(field_path, "is required")),
        Some(Value::String(text)) if text.is_empty() => Err(invalid(field_path, "is required")),
        Some(Value::String(text)) => parse_uuid(text).ok_or_else(|| {
            invalid(
                field_path,
                format!("{} is not a UUID", quoted_excerpt(text)),
            )
        }),
        Some(other) => Err(invalid(
            field_path,
            format!("expected a string, got {}", kind(other)),
        )),
    }
}

/// Accepts every textual UUID form the clients produce (dashed, 32 hex digits, `{braced}`,
/// `urn:uuid:`, either case, any version), as Go's `uuid.Validate` does.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text).ok()
}

pub(crate) fn timestamp(value: &Value, path: &str) -> Result<DateTime<Utc>, IngestError> {
    let Value::String(text) = value else {
        return Err(invalid(
            path,
            format!("expected an RFC 3339 string, got {}", kind(value)),
        ));
    };
    parse_timestamp(text).ok_or_else(|| {
        invalid(
            path,
            format!(
                "{} is not an RFC 3339 timestamp such as 2025-03-14T09:12:45Z",
                quoted_excerpt(text)
            ),
        )
    })
}

/// protojson's `Timestamp`, as Go's `time.Parse(time.RFC3339Nano, ...)` and protojson's own checks
/// read it, no more and no less: a four-digit year, two-digit month, day, minute and second (no `:60`),
/// an hour of one or two digits, an upper-case `T`, a fraction after `.` (at most 9 digits) or `,` (any
/// number, the tenth on ignored), then `Z` or an offset `±hh:mm` of up to 24:60; the instant, in UTC,
/// between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') || bytes.get(10) != Some(&b'T') {
        return None;
    }
    // Go reads the hour ("15" in the layout) with one digit or two.
    let hour_digits = if bytes.get(12).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let hour = digits(11..11 + hour_digits)?;
    let rest = &bytes[11 + hour_digits..];
    if rest.first() != Some(&b':') || rest.get(3) != Some(&b':') {
        return None;
    }
    let at = 11 + hour_digits + 1;
    let minute = digits(at..at + 2)?;
    let second = digits(at + 3..at + 5)?;
    let mut rest = &bytes[at + 5..];
    let mut nanos = 0;
    if let [separator @ (b'.' | b','), digit, ..] = rest
        && digit.is_ascii_digit()
    {
        let count = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        // protojson refuses more than nine digits after a '.'; Go ignores those after the ninth.
        if *separator == b'.' && count > 9 {
            return None;
        }
        let kept = &rest[1..1 + count.min(9)];
        let value = kept.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
        nanos = value * 10u32.pow(9 - u32::try_from(kept.len()).ok()?);
        rest = &rest[1 + count..];
    }
    let offset_seconds = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: &u8, b: &u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from((a - b'0') * 10 + (b - b'0')))
            };
            let (hours, minutes) = (two(h1, h2)?, two(m1, m2)?);
            if hours > 24 || minutes > 60 {
                return None;
            }
            let seconds = (hours * 60 + minutes) * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let local = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = local.and_utc() - chrono::Duration::seconds(offset_seconds);
    (MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS)
        .contains(&utc.timestamp())
        .then_some(utc)
}

/// protojson's range for `google.protobuf.Timestamp`: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

fn product_family(value: &Value, path: &str) -> Result<ProductFamily, IngestError> {
    match value {
        Value::String(name) => Ok(ProductFamily::from_name(name)),
        Value::Number(number) => number
            .as_i64()
            .map(ProductFamily::from_number)
            .or_else(|| number.as_f64().and_then(ProductFamily::from_json_number))
            .ok_or_else(|| invalid(path, format!("{number} is not an enum number"))),
        other => Err(invalid(
            path,
            format!("expected an enum name or number, got {}", kind(other)),
        )),
    }
}

fn metrics(value: Value, path: &str) -> Result<Vec<Metric>, IngestError> {
    let Value::Array(entries) = value else {
        return Err(invalid(
            path,
            format!("expected an array, got {}", kind(&value)),
        ));
    };
    // Paths are spelled out only for an error: a report may carry thousands of metrics.
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let entry_path = || format!("{path}[{index}]");
            let Value::Object(mut entry) = entry else {
                return Err(invalid(
                    entry_path(),
                    format!("expected an object, got {}", kind(&entry)),
                ));
            };
            let key = string_or_empty(&mut entry, "key", entry_path)?;
            let value = string_or_empty(&mut entry, "value", entry_path)?;
            Ok(Metric { key, value })
        })
        .collect()
}

fn string_or_empty(
    object: &mut Map<String, Value>,
    name: &str,
    path: impl Fn() -> String,
) -> Result<String, IngestError> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(invalid(
            format!("{}.{name}", path()),
            format!("expected a string, got {}", kind(&other)),
        )),
    }
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Quotes what the client sent, cut short so that an error body stays small.
pub(crate) fn quoted_excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut excerpt: String = text.chars().take(MAX_CHARS).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    serde_json::to_string(&excerpt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn timestamps_as_protojson_reads_them() {
        let at = |text: &str| parse_timestamp(text).map(|time| time.to_rfc3339());
        for (text, expected) in [
            ("2025-03-14T09:12:45Z", "2025-03-14T09:12:45+00:00"),
            (
                "2025-03-14T09:12:45.318461902Z",
                "2025-03-14T09:12:45.318461902+00:00",
            ),
            (
                "2024-09-03T11:45:02.4173582+02:00",
                "2024-09-03T09:45:02.417358200+00:00",
            ),
            // Go's parser: a one-digit hour, a comma before the fraction (any number of digits,
            // the tenth on ignored), offsets up to 24:60.
            ("2025-03-14T9:12:45Z", "2025-03-14T09:12:45+00:00"),
            (
                "2025-03-14T09:12:45,1234567891234Z",
                "2025-03-14T09:12:45.123456789+00:00",
            ),
            ("2025-03-14T09:12:45+24:60", "2025-03-13T08:12:45+00:00"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
            (
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-31T23:59:59.999999999+00:00",
            ),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00+00:00"),
        ] {
            assert_eq!(at(text).as_deref(), Some(expected), "{text}");
        }
        for text in [
            "2025-03-14t09:12:45Z",
            "2025-03-14T09:12:45z",
            "2025-03-14 09:12:45Z",
            "2025-03-14T09:12:60Z",
            "2025-03-14T09:12:45.1234567891Z",
            "0000-12-31T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "2025-02-29T00:00:00Z",
            "2025-03-14T24:00:00Z",
            "2025-03-14T09:12:45+25:00",
            "2025-03-14T09:12:45+0100",
            "2025-03-14T09:12:45",
            "2025-03-14T09:12:45.Z",
            "2025-3-14T09:12:45Z",
            "+025-03-14T09:12:45Z",
            "2025-03-14T09:12:45Z ",
        ] {
            assert_eq!(at(text), None, "{text}");
        }
    }

    /// One part of a generated request, and whether the documented rules (docs/protocol.md,
    /// "Percona accepts / we accept") let it through.
    #[derive(Clone, Debug)]
    struct Part {
        bytes: Vec<u8>,
        valid: bool,
    }

    fn part(text: &str, valid: bool) -> Part {
        Part {
            bytes: text.as_bytes().to_vec(),
            valid,
        }
    }

    fn one_of(parts: Vec<Part>) -> impl Strategy<Value = Part> {
        prop::sample::select(parts)
    }

    const ID: &str = r#""id":"6f1f4b48-5a4e-4a2f-9d0c-2a3b4c5d6e7f""#;
    const INSTANCE: &str = r#""instanceId":"0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d""#;
    const TIME: &str = r#""createTime":"2025-03-14T09:12:45Z""#;

    fn create_time() -> impl Strategy<Value = Part> {
        one_of(vec![
            part(TIME, true),
            part(r#""create_time":"2025-03-14T09:12:45.5+02:00""#, true),
            part(r#""createTime":"2025-03-14T9:12:45,0123456789Z""#, true),
            part(r#""createTime":"2025-03-14t09:12:45Z""#, false),
            part(r#""createTime":"2025-03-14T09:12:45z""#, false),
            part(r#""createTime":"2025-03-14 09:12:45Z""#, false),
            part(r#""createTime":"2025-03-14T09:12:60Z""#, false),
            part(r#""createTime":"2025-03-14T09:12:45.0123456789Z""#, false),
            part(r#""createTime":"0000-01-01T00:00:00Z""#, false),
            part(r#""createTime":"10000-01-01T00:00:00Z""#, false),
            part(r#""createTime":null"#, false),
            part(
                &format!(r#"{TIME},"create_time":"2025-03-14T09:12:45Z""#),
                false,
            ),
            part(&format!("{TIME},{TIME}"), false),
        ])
    }

    fn identity() -> impl Strategy<Value = Part> {
        one_of(vec![
            part(&format!("{ID},{INSTANCE}"), true),
            part(
                r#""instance_id":"{0B5E1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2D}","id":"6f1f4b485a4e4a2f9d0c2a3b4c5d6e7f""#,
                true,
            ),
            part(&format!(r#""id":"",{INSTANCE}"#), false),
            part(&format!(r#""id":12,{INSTANCE}"#), false),
            part(INSTANCE, false),
            part(&format!(r#"{ID},"instanceId":"x""#), false),
            part(&format!("{ID},{ID},{INSTANCE}"), false),
        ])
    }

    fn family() -> impl Strategy<Value = Part> {
        one_of(vec![
            part("", true),
            part(r#""productFamily":"PRODUCT_FAMILY_PMM""#, true),
            part(r#""product_family":"PRODUCT_FAMILY_NEXT""#, true),
            part(r#""productFamily":6.0"#, true),
            part(r#""productFamily":6e0"#, true),
            part(r#""productFamily":99"#, true),
            part(r#""productFamily":null"#, true),
            part(r#""productFamily":6.5"#, false),
            part(r#""productFamily":true"#, false),
            part(r#""productFamily":1,"product_family":1"#, false),
        ])
    }

    fn metric() -> impl Strategy<Value = Part> {
        one_of(vec![
            part(r#"{"key":"pillar_version","value":"8.0.36-28"}"#, true),
            part(r#"{"key":"k\u0000","value":"v\u0000"}"#, true),
            part(r#"{"value":"only a value"}"#, true),
            part(r#"{"key":"k","value":null,"extra":{"a":1,"a":2}}"#, true),
            part("{}", true),
            part(r#"{"key":"k","value":1}"#, false),
            part(r#"{"key":"OS","value":"x","value":"y"}"#, false),
            part(r#"{"key":"a","key":"b"}"#, false),
            part("null", false),
            part(r#""k""#, false),
        ])
    }

    fn unknown_field() -> impl Strategy<Value = Part> {
        let nested = |depth: usize| format!(r#""deep":{}{}"#, "[".repeat(depth), "]".repeat(depth));
        let mut invalid_utf8 = br#""bytes":"a"#.to_vec();
        invalid_utf8.extend([0xff, b'"']);
        one_of(vec![
            part("", true),
            part(r#""other":{"a":[1,2,{"b":null}],"a":"dup"}"#, true),
            part(r#""other":"\ud83d\ude00 \u0000""#, true),
            part(r#""other":1e400"#, true),
            part(&nested(500), true),
            // Three levels are taken by the request, its reports and a report.
            part(&nested(scan::MAX_DEPTH - 3), true),
            part(&nested(scan::MAX_DEPTH + 1), false),
            part(r#""other":"\ud800""#, false),
            part(r#""other":"\udc00\ud800""#, false),
            Part {
                bytes: invalid_utf8,
                valid: false,
            },
        ])
    }

    fn join(parts: &[&Part]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts.iter().filter(|part| !part.bytes.is_empty()) {
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(&part.bytes);
        }
        out
    }

    fn list(name: &str, elements: &[Part]) -> Part {
        let refs: Vec<&Part> = elements.iter().collect();
        Part {
            bytes: [format!(r#""{name}":["#).as_bytes(), &join(&refs), b"]"].concat(),
            valid: elements.iter().all(|element| element.valid),
        }
    }

    fn object(fields: &[&Part]) -> Part {
        Part {
            bytes: [b"{".as_slice(), &join(fields), b"}"].concat(),
            valid: fields.iter().all(|field| field.valid),
        }
    }

    fn report() -> impl Strategy<Value = Part> {
        (
            identity(),
            create_time(),
            family(),
            prop::collection::vec(metric(), 0..4),
            unknown_field(),
        )
            .prop_map(|(identity, time, family, metrics, unknown)| {
                object(&[
                    &unknown,
                    &identity,
                    &time,
                    &family,
                    &list("metrics", &metrics),
                ])
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The same bytes to the fast decoder, the tree decoder and the documented rules: all three
        /// answer alike, and both decoders make the same reports of what they accept.
        #[test]
        fn both_decoders_answer_as_the_rules_say(
            reports in prop::collection::vec(report(), 0..3),
            request_unknown in unknown_field(),
            trailing in prop::sample::select(vec!["", " ", " x", "{", "\u{ff}"]),
        ) {
            let request = object(&[&request_unknown, &list("reports", &reports)]);
            let body = [request.bytes.as_slice(), trailing.as_bytes()].concat();
            let shown = String::from_utf8_lossy(&body).chars().take(2000).collect::<String>();
            let answer = parse_report_request(&body);
            prop_assert_eq!(answer.is_ok(), request.valid, "{}", shown);
            if let Ok(Some(scanned)) = scan::first_value(&body) {
                let fast = typed::decode(scanned.value);
                let tree = parse_report_tree(&scanned.without_unknown_fields());
                prop_assert_eq!(fast.is_some(), request.valid, "fast decoder: {}", shown);
                prop_assert_eq!(tree.is_ok(), request.valid, "tree decoder: {}", shown);
                if let (Some(fast), Ok(tree)) = (fast, tree) {
                    prop_assert_eq!(fast, tree);
                }
            }
        }
    }

    #[test]
    fn empty_bodies_and_what_follows_the_value() {
        assert_eq!(parse_report_request(b""), Ok(Vec::new()));
        assert_eq!(parse_report_request(b" \r\n\t"), Ok(Vec::new()));
        let body = format!(r#"{{"reports":[{{{ID},{INSTANCE},{TIME}}}]}} trailing {{"#);
        assert_eq!(parse_report_request(body.as_bytes()).unwrap().len(), 1);
        assert!(matches!(
            parse_report_request(b"\xef\xbb\xbf{}"),
            Err(IngestError::InvalidJson(_))
        ));
    }

    #[test]
    fn up_duration_forms() {
        assert_eq!(
            parse_up_duration("seconds:86401 nanos:318260114"),
            Some(86401)
        );
        assert_eq!(
            parse_up_duration("seconds:172800  nanos:9117634"),
            Some(172800)
        );
        assert_eq!(parse_up_duration("seconds:60"), Some(60));
        assert_eq!(parse_up_duration("nanos:5"), Some(0));
        assert_eq!(parse_up_duration(""), None);
        assert_eq!(parse_up_duration("86400s"), None);
        assert_eq!(parse_up_duration("seconds:x"), None);
        assert_eq!(parse_up_duration("seconds:-86400"), None);
        assert_eq!(parse_up_duration("nanos:-5"), None);
    }

    #[test]
    fn product_family_by_name_and_number() {
        assert_eq!(
            ProductFamily::from_name("PRODUCT_FAMILY_PBS"),
            ProductFamily::Pbs
        );
        assert_eq!(ProductFamily::from_name("pmm"), ProductFamily::Invalid);
        assert_eq!(ProductFamily::from_number(6), ProductFamily::Pmm);
        assert_eq!(ProductFamily::from_number(99), ProductFamily::Invalid);
        assert_eq!(ProductFamily::from_number(-1), ProductFamily::Invalid);
        for (number, family) in ProductFamily::ALL.into_iter().enumerate() {
            assert_eq!(ProductFamily::from_number(number as i64), family);
            assert_eq!(ProductFamily::from_name(family.as_str()), family);
        }
    }

    #[test]
    fn excerpt_is_bounded() {
        let long = "x".repeat(1000);
        assert!(quoted_excerpt(&long).chars().count() < 70);
        assert_eq!(quoted_excerpt("a\"b"), "\"a\\\"b\"");
    }
}

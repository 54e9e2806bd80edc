//! The `GenericReport` wire format: protojson as the Go clients, `call-home.sh` and Everest write it,
//! decoded once into the domain types the rest of the service works with.
//!
//! The rules mirror `google.golang.org/protobuf/encoding/protojson` with `DiscardUnknown`, the decoder
//! behind Percona's grpc-gateway (see `docs/protocol.md`): both JSON and proto field names, enums by
//! name or number, RFC 3339 timestamps, `null` meaning "unset", unknown fields ignored.

mod typed;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// `ProductFamily` from `reporter_api.proto`, in enum-number order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProductFamily {
    Invalid,
    Ps,
    Pxc,
    Psmdb,
    Pbm,
    Postgresql,
    Pmm,
    Everest,
    PerconaToolkit,
    Pxb,
    OperatorPxc,
    OperatorPostgresql,
    OperatorPsmdb,
    OperatorPs,
    Pbs,
}

impl ProductFamily {
    pub const ALL: [ProductFamily; 15] = [
        Self::Invalid,
        Self::Ps,
        Self::Pxc,
        Self::Psmdb,
        Self::Pbm,
        Self::Postgresql,
        Self::Pmm,
        Self::Everest,
        Self::PerconaToolkit,
        Self::Pxb,
        Self::OperatorPxc,
        Self::OperatorPostgresql,
        Self::OperatorPsmdb,
        Self::OperatorPs,
        Self::Pbs,
    ];

    /// The enum value's name, which is also what the database stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "PRODUCT_FAMILY_INVALID",
            Self::Ps => "PRODUCT_FAMILY_PS",
            Self::Pxc => "PRODUCT_FAMILY_PXC",
            Self::Psmdb => "PRODUCT_FAMILY_PSMDB",
            Self::Pbm => "PRODUCT_FAMILY_PBM",
            Self::Postgresql => "PRODUCT_FAMILY_POSTGRESQL",
            Self::Pmm => "PRODUCT_FAMILY_PMM",
            Self::Everest => "PRODUCT_FAMILY_EVEREST",
            Self::PerconaToolkit => "PRODUCT_FAMILY_PERCONA_TOOLKIT",
            Self::Pxb => "PRODUCT_FAMILY_PXB",
            Self::OperatorPxc => "PRODUCT_FAMILY_OPERATOR_PXC",
            Self::OperatorPostgresql => "PRODUCT_FAMILY_OPERATOR_POSTGRESQL",
            Self::OperatorPsmdb => "PRODUCT_FAMILY_OPERATOR_PSMDB",
            Self::OperatorPs => "PRODUCT_FAMILY_OPERATOR_PS",
            Self::Pbs => "PRODUCT_FAMILY_PBS",
        }
    }

    /// An unknown name decodes to `Invalid`, as protojson with `DiscardUnknown` does; the report is kept.
    pub fn from_name(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|family| family.as_str() == name)
            .unwrap_or(Self::Invalid)
    }

    /// An unknown number also decodes to `Invalid`: the family list grows with new Percona products.
    pub fn from_number(number: i64) -> Self {
        usize::try_from(number)
            .ok()
            .and_then(|index| Self::ALL.get(index).copied())
            .unwrap_or(Self::Invalid)
    }

    /// The metric that carries the version of the reporting product itself.
    pub fn version_metric_key(self) -> &'static str {
        match self {
            Self::Pmm => "PMMServerVersion",
            Self::Everest => "version",
            _ => "pillar_version",
        }
    }
}

/// One key/value pair of a report, exactly as sent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Metric {
    pub key: String,
    pub value: String,
}

/// A validated report, ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub report_id: Uuid,
    pub instance_id: Uuid,
    pub product_family: ProductFamily,
    pub created_at: DateTime<Utc>,
    /// Version of the reporting product, taken from the family's version metric.
    pub version: Option<String>,
    /// PMM's `UpDuration`, in whole seconds.
    pub up_duration_seconds: Option<i64>,
    /// Every pair in the order sent, duplicate keys included.
    pub metrics: Vec<Metric>,
}

/// Bounds on what one request may carry; everything beyond is a 400 naming the limit.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_reports: usize,
    pub max_metrics: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_reports: 1000,
            max_metrics: 5000,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
        }
    }
}

/// Why a request body was refused. Every message names what is wrong and where, never who sent it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("request body is empty")]
    EmptyBody,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{path}: {problem}")]
    InvalidField { path: String, problem: String },
    #[error("{path}: {count} entries exceed the limit of {limit}")]
    TooMany {
        path: String,
        count: usize,
        limit: usize,
    },
}

pub(crate) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> IngestError {
    IngestError::InvalidField {
        path: path.into(),
        problem: problem.into(),
    }
}

/// Decodes a `ReportRequest` body. One invalid report rejects the whole request, as Percona's validator does.
pub fn parse_report_request(body: &[u8], limits: &Limits) -> Result<Vec<Report>, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyBody);
    }
    match typed::decode(body, limits) {
        Some(reports) => Ok(reports),
        None => parse_report_tree(body, limits),
    }
}

/// The decoder that explains: walks the request as a JSON tree, so that a refusal can name the
/// field at fault and what is wrong with it.
fn parse_report_tree(body: &[u8], limits: &Limits) -> Result<Vec<Report>, IngestError> {
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
    if reports.len() > limits.max_reports {
        return Err(IngestError::TooMany {
            path: "reports".into(),
            count: reports.len(),
            limit: limits.max_reports,
        });
    }
    reports
        .into_iter()
        .enumerate()
        .map(|(index, report)| parse_report(report, &format!("reports[{index}]"), limits))
        .collect()
}

/// Takes the report apart rather than copying out of it: its metrics are most of the body.
fn parse_report(value: Value, path: &str, limits: &Limits) -> Result<Report, IngestError> {
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
        Some(value) => metrics(value, &format!("{path}.metrics"), limits)?,
    };
    Ok(assemble_report(
        report_id,
        instance_id,
        product_family,
        created_at,
        metrics,
    ))
}

/// The report from its decoded fields: the version and PMM's uptime are read from its metrics.
fn assemble_report(
    report_id: Uuid,
    instance_id: Uuid,
    product_family: ProductFamily,
    created_at: DateTime<Utc>,
    metrics: Vec<Metric>,
) -> Report {
    let version = metric_value(&metrics, product_family.version_metric_key())
        .filter(|version| !version.is_empty())
        .map(str::to_owned);
    let up_duration_seconds = match product_family {
        ProductFamily::Pmm => metric_value(&metrics, "UpDuration").and_then(parse_up_duration),
        _ => None,
    };
    Report {
        report_id,
        instance_id,
        product_family,
        created_at,
        version,
        up_duration_seconds,
        metrics,
    }
}

/// Looks a field up by its JSON name or its proto name; giving both is an error, as in protojson.
pub(crate) fn field<'a>(
    object: &'a Map<String, Value>,
    json_name: &str,
    proto_name: &str,
    path: &str,
) -> Result<Option<&'a Value>, IngestError> {
    match (object.get(json_name), object.get(proto_name)) {
        (Some(_), Some(_)) if json_name != proto_name => Err(invalid(
            format!("{path}.{json_name}"),
            format!("given twice, as {json_name} and as {proto_name}"),
        )),
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

/// protojson's `Timestamp`: RFC 3339 with any offset and 0–9 fraction digits, kept in UTC.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn product_family(value: &Value, path: &str) -> Result<ProductFamily, IngestError> {
    match value {
        Value::String(name) => Ok(ProductFamily::from_name(name)),
        Value::Number(number) => number
            .as_i64()
            .map(ProductFamily::from_number)
            .ok_or_else(|| invalid(path, format!("{number} is not an enum number"))),
        other => Err(invalid(
            path,
            format!("expected an enum name or number, got {}", kind(other)),
        )),
    }
}

fn metrics(value: Value, path: &str, limits: &Limits) -> Result<Vec<Metric>, IngestError> {
    let Value::Array(entries) = value else {
        return Err(invalid(
            path,
            format!("expected an array, got {}", kind(&value)),
        ));
    };
    if entries.len() > limits.max_metrics {
        return Err(IngestError::TooMany {
            path: path.into(),
            count: entries.len(),
            limit: limits.max_metrics,
        });
    }
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
            let key = string_or_empty(&mut entry, "key", entry_path, limits.max_key_bytes)?;
            let value = string_or_empty(&mut entry, "value", entry_path, limits.max_value_bytes)?;
            Ok(Metric { key, value })
        })
        .collect()
}

fn string_or_empty(
    object: &mut Map<String, Value>,
    name: &str,
    path: impl Fn() -> String,
    max_bytes: usize,
) -> Result<String, IngestError> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => {
            check_text(&text, max_bytes, || format!("{}.{name}", path()))?;
            Ok(text)
        }
        Some(other) => Err(invalid(
            format!("{}.{name}", path()),
            format!("expected a string, got {}", kind(&other)),
        )),
    }
}

/// Refuses a metric key or value that is over its limit or that could not be stored as sent.
pub(crate) fn check_text(
    text: &str,
    max_bytes: usize,
    path: impl FnOnce() -> String,
) -> Result<(), IngestError> {
    if text.len() > max_bytes {
        return Err(invalid(
            path(),
            format!("{} bytes exceed the limit of {max_bytes} bytes", text.len()),
        ));
    }
    // PostgreSQL text and jsonb cannot hold U+0000, so such a value could never be stored as sent.
    if text.contains('\0') {
        return Err(invalid(path(), "contains a NUL character"));
    }
    Ok(())
}

fn metric_value<'a>(metrics: &'a [Metric], key: &str) -> Option<&'a str> {
    metrics
        .iter()
        .find(|metric| metric.key == key)
        .map(|metric| metric.value.as_str())
}

/// Parses PMM's `UpDuration`, a `google.protobuf.Duration` in prototext (`seconds:86401 nanos:318260114`,
/// sometimes with two spaces; either field is absent when zero) into whole seconds.
pub fn parse_up_duration(text: &str) -> Option<i64> {
    let mut seconds = 0;
    let mut nanos = 0;
    let mut saw_field = false;
    for part in text.split_whitespace() {
        let (name, number) = part.split_once(':')?;
        match name {
            "seconds" => seconds = number.parse::<i64>().ok()?,
            "nanos" => nanos = number.parse::<i32>().ok()?,
            _ => return None,
        }
        saw_field = true;
    }
    saw_field.then_some(())?;
    up_duration_seconds(seconds, nanos)
}

/// An uptime in whole seconds, or None for a negative one: a protobuf Duration may be negative and
/// Percona accepts it, but no server has been up for less than nothing, and analytics would count it.
pub fn up_duration_seconds(seconds: i64, nanos: i32) -> Option<i64> {
    (seconds >= 0 && nanos >= 0).then_some(seconds)
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
    use super::*;

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

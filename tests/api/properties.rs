//! Properties of the ingest path, checked on generated input:
//! - the decoder never panics, and on structurally valid but randomised reports it accepts exactly
//!   the ones without a defect, normalising every UUID form and timestamp offset;
//! - the real service over HTTP answers any body with `200 {}` or a `400` carrying the
//!   `{"code":3,"message":...,"details":[]}` body clients decode, never a 5xx, and stores exactly
//!   what it acknowledged.
//!
//! The HTTP properties share one service per test (one runtime, one fresh database) and keep the
//! case counts modest, so that they run in seconds on a small machine.

use crate::common::TestApp;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use telemetry_server::ingest::{ProductFamily, parse_report_request};
use telemetry_server::label::is_plausible_label;
use uuid::Uuid;

const HTTP_CASES: u32 = 256;

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // A failure prints its minimal input; the generators are cheap to re-run from a seed.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A UUID and one of the textual forms the clients send for it.
fn uuid_text() -> impl Strategy<Value = (Uuid, String)> {
    // A few fixed instance ids recur across cases, so that the same instance gets many reports in
    // random time order and the upgrade history is re-derived again and again.
    let bits = prop_oneof![
        1 => (0u128..4).prop_map(|n| 0x5eed_0000_0000_4000_8000_0000_0000_0000 + n),
        3 => any::<u128>(),
    ];
    (bits, 0..6usize).prop_map(|(bits, form)| {
        let id = Uuid::from_u128(bits);
        let text = match form {
            0 => id.hyphenated().to_string(),
            1 => id.hyphenated().to_string().to_uppercase(),
            2 => id.simple().to_string(),
            3 => id.simple().to_string().to_uppercase(),
            4 => id.braced().to_string(),
            _ => id.urn().to_string(),
        };
        (id, text)
    })
}

/// The createTime of a recurring report id: a client re-sends a report as it was, and the re-send
/// check finds the first copy from its createTime on (docs/deployment.md, "Idempotent report
/// ids"), so the same id with another createTime is another report to it.
fn fixed_create_time(id: Uuid) -> Option<(DateTime<Utc>, String)> {
    let n = id
        .as_u128()
        .checked_sub(0x5eed_0000_0000_4000_8000_0000_0000_0000)?;
    (n < 4).then(|| {
        let at = DateTime::parse_from_rfc3339("2024-06-11T07:39:16Z")
            .expect("a valid instant")
            .with_timezone(&Utc)
            + chrono::Duration::days(i64::try_from(n).expect("n < 4") * 40);
        (at, at.to_rfc3339())
    })
}

/// An instant between the years 5 and 9985 and its RFC 3339 text, with any offset and precision.
fn timestamp_text() -> impl Strategy<Value = (DateTime<Utc>, String)> {
    (
        -62_000_000_000i64..253_000_000_000,
        0u32..1_000_000_000,
        -1439i32..=1439,
        0..4usize,
        any::<bool>(),
    )
        .prop_map(|(seconds, nanos, offset_minutes, precision, use_z)| {
            let (format, unit) = [
                (SecondsFormat::Secs, 1_000_000_000),
                (SecondsFormat::Millis, 1_000_000),
                (SecondsFormat::Micros, 1_000),
                (SecondsFormat::Nanos, 1),
            ][precision];
            let instant = DateTime::from_timestamp(seconds, nanos / unit * unit)
                .expect("the range is within chrono's");
            let offset = FixedOffset::east_opt(offset_minutes * 60).expect("offset under a day");
            let text = instant
                .with_timezone(&offset)
                .to_rfc3339_opts(format, use_z);
            (instant, text)
        })
}

/// How the product family is sent, and what it must decode to.
fn family() -> impl Strategy<Value = (Option<Value>, ProductFamily)> {
    prop_oneof![
        (0..ProductFamily::ALL.len()).prop_map(|n| {
            let family = ProductFamily::ALL[n];
            (Some(json!(family.as_str())), family)
        }),
        (-3i64..20).prop_map(|n| {
            let family = usize::try_from(n)
                .ok()
                .and_then(|n| ProductFamily::ALL.get(n).copied())
                .unwrap_or(ProductFamily::Invalid);
            (Some(json!(n)), family)
        }),
        // Lowercase can never be one of the enum's names: a family newer than this server.
        "[a-z_]{0,16}".prop_map(|name| (Some(json!(name)), ProductFamily::Invalid)),
        Just((Some(Value::Null), ProductFamily::Invalid)),
        Just((None, ProductFamily::Invalid)),
    ]
}

/// Text without U+0000 (which PostgreSQL cannot store and the validator refuses).
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\x00]{{0,{max_chars}}}")).expect("a valid regex")
}

fn metric_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "PMMServerVersion",
            "pillar_version",
            "version",
            "UpDuration",
            "mysql_version",
        ])
        .prop_map(str::to_owned),
        text(24),
    ]
}

fn metric_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[0-9a-z]{1,4})?",
        "seconds:[0-9]{1,6}( {1,2}nanos:[0-9]{1,9})?",
        text(64),
    ]
}

/// A metric entry on the wire, and the pair it must decode to (a missing or null value is "").
fn metric() -> impl Strategy<Value = (Value, (String, String))> {
    (metric_key(), metric_value(), 0..4usize).prop_map(|(key, value, form)| match form {
        0 => (json!({"key": key}), (key, String::new())),
        1 => (json!({"key": key, "value": null}), (key, String::new())),
        _ => (json!({"key": key, "value": value}), (key, value)),
    })
}

/// What can be wrong with a report; each one must get the whole request refused.
#[derive(Clone, Debug)]
enum Defect {
    IdNotAUuid(String),
    InstanceIdMissing,
    InstanceIdNotAString,
    CreateTimeMissing,
    CreateTimeInvalid(&'static str),
    FamilyWrongType,
    MetricsNotAnArray,
    MetricNotAnObject,
    MetricValueNotAString,
    InstanceIdGivenTwice,
    ReportNotAnObject,
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        prop_oneof![
            Just(String::new()),
            "[g-z]{1,36}",
            "[0-9a-f]{31}",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}",
        ]
        .prop_map(Defect::IdNotAUuid),
        Just(Defect::InstanceIdMissing),
        Just(Defect::InstanceIdNotAString),
        Just(Defect::CreateTimeMissing),
        prop::sample::select(vec![
            "2024-13-01T00:00:00Z",
            "2024-02-30T10:00:00Z",
            "2024-06-11",
            "2024-06-11T07:39:16",
            "1718091556",
            "yesterday",
            "",
        ])
        .prop_map(Defect::CreateTimeInvalid),
        Just(Defect::FamilyWrongType),
        Just(Defect::MetricsNotAnArray),
        Just(Defect::MetricNotAnObject),
        Just(Defect::MetricValueNotAString),
        Just(Defect::InstanceIdGivenTwice),
        Just(Defect::ReportNotAnObject),
    ]
}

/// One generated report: its JSON and what the decoder must make of it.
#[derive(Clone, Debug)]
struct ReportCase {
    json: Value,
    id: Uuid,
    instance_id: Uuid,
    created_at: DateTime<Utc>,
    family: ProductFamily,
    metrics: Vec<(String, String)>,
    defect: Option<Defect>,
}

impl ReportCase {
    /// The version the report carries: the first value of its family's version key, unless empty.
    /// The family's own version key, else `pillar_version` (as `call-home.sh` sends for every
    /// family), and only when it is a plausible label; anything else stays in the raw metrics only.
    fn version(&self) -> Option<&str> {
        let present = |wanted: &str| {
            self.metrics
                .iter()
                .find(|(key, _)| key == wanted)
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        present(self.family.version_metric_key())
            .or_else(|| present("pillar_version"))
            .filter(|value| is_plausible_label(value))
    }
}

fn report_case() -> impl Strategy<Value = ReportCase> {
    (
        uuid_text(),
        uuid_text(),
        timestamp_text(),
        family(),
        prop::collection::vec(metric(), 0..6),
        // Which name each field goes by: protojson accepts the JSON and the proto name.
        any::<[bool; 4]>(),
        prop::option::weighted(0.25, defect()),
        prop::option::of(("x_[a-z]{1,6}", text(8))),
    )
        .prop_map(
            |(id, instance, created, family, metrics, snake, defect, unknown)| {
                let created = fixed_create_time(id.0).unwrap_or(created);
                let name = |camel: &'static str, snake_name: &'static str, use_snake: bool| {
                    if use_snake { snake_name } else { camel }
                };
                let mut report = Map::new();
                report.insert("id".into(), json!(id.1));
                report.insert(
                    name("instanceId", "instance_id", snake[0]).into(),
                    json!(instance.1),
                );
                report.insert(
                    name("createTime", "create_time", snake[1]).into(),
                    json!(created.1),
                );
                if let Some(value) = family.0 {
                    report.insert(
                        name("productFamily", "product_family", snake[2]).into(),
                        value,
                    );
                }
                let (entries, pairs): (Vec<Value>, Vec<(String, String)>) =
                    metrics.into_iter().unzip();
                if !entries.is_empty() || snake[3] {
                    report.insert("metrics".into(), Value::Array(entries));
                }
                // Unknown fields are ignored, as protojson with DiscardUnknown does.
                if let Some((field, value)) = unknown {
                    report.insert(field, json!(value));
                }
                let mut case = ReportCase {
                    json: Value::Object(report),
                    id: id.0,
                    instance_id: instance.0,
                    created_at: created.0,
                    family: family.1,
                    metrics: pairs,
                    defect: None,
                };
                if let Some(defect) = defect {
                    apply(&mut case.json, &defect, snake);
                    case.defect = Some(defect);
                }
                case
            },
        )
}

fn apply(report: &mut Value, defect: &Defect, snake: [bool; 4]) {
    let instance_key = if snake[0] {
        "instance_id"
    } else {
        "instanceId"
    };
    let time_key = if snake[1] {
        "create_time"
    } else {
        "createTime"
    };
    let family_key = if snake[2] {
        "product_family"
    } else {
        "productFamily"
    };
    let fields = report
        .as_object_mut()
        .expect("reports are built as objects");
    let metrics = fields
        .entry("metrics")
        .or_insert_with(|| Value::Array(Vec::new()));
    let metrics = metrics.as_array_mut().expect("metrics are built as arrays");
    match defect {
        Defect::IdNotAUuid(text) => {
            fields.insert("id".into(), json!(text));
        }
        Defect::InstanceIdMissing => {
            fields.remove(instance_key);
        }
        Defect::InstanceIdNotAString => {
            fields.insert(instance_key.into(), json!(12345));
        }
        Defect::CreateTimeMissing => {
            fields.remove(time_key);
        }
        Defect::CreateTimeInvalid(text) => {
            fields.insert(time_key.into(), json!(text));
        }
        Defect::FamilyWrongType => {
            fields.insert(family_key.into(), json!(true));
        }
        Defect::MetricsNotAnArray => {
            fields.insert("metrics".into(), json!({"key": "k", "value": "v"}));
        }
        Defect::MetricNotAnObject => metrics.push(json!("key=value")),
        Defect::MetricValueNotAString => metrics.push(json!({"key": "k", "value": 1})),
        Defect::InstanceIdGivenTwice => {
            let other = if snake[0] {
                "instanceId"
            } else {
                "instance_id"
            };
            fields.insert(other.into(), json!(Uuid::new_v4().to_string()));
        }
        Defect::ReportNotAnObject => *report = json!([report.clone()]),
    }
}

fn request_case() -> impl Strategy<Value = Vec<ReportCase>> {
    prop::collection::vec(report_case(), 1..5)
}

fn request_body(reports: &[ReportCase]) -> Vec<u8> {
    let reports: Vec<&Value> = reports.iter().map(|report| &report.json).collect();
    json!({ "reports": reports }).to_string().into_bytes()
}

/// Any JSON document, with the protocol's field names mixed in so that it reaches the validator.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        text(16).prop_map(Value::from),
        uuid_text().prop_map(|(_, text)| Value::from(text)),
        timestamp_text().prop_map(|(_, text)| Value::from(text)),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "reports",
            "id",
            "instanceId",
            "instance_id",
            "createTime",
            "create_time",
            "productFamily",
            "product_family",
            "metrics",
            "key",
            "value",
        ])
        .prop_map(str::to_owned),
        text(8),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Any body at all: random bytes, random JSON, and valid requests with a byte changed or cut off.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        any_json().prop_map(|value| value.to_string().into_bytes()),
        any_json().prop_map(|value| json!({ "reports": [value] }).to_string().into_bytes()),
        (request_case(), any::<Index>(), any::<u8>(), 0..3usize).prop_map(
            |(reports, at, byte, edit)| {
                let mut body = request_body(&reports);
                let at = at.index(body.len());
                match edit {
                    0 => body.truncate(at),
                    1 => body[at] = byte,
                    _ => body.insert(at, byte),
                }
                body
            }
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The decoder on its own
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(proptest_config(1024))]

    #[test]
    fn decoder_never_panics(body in any_body()) {
        // Ok or Err are both fine; a panic fails the case.
        let _ = parse_report_request(&body);
    }

    #[test]
    fn decoder_accepts_exactly_the_reports_without_a_defect(reports in request_case()) {
        let result = parse_report_request(&request_body(&reports));
        match reports.iter().position(|report| report.defect.is_some()) {
            None => {
                let decoded = result.map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
                prop_assert_eq!(decoded.len(), reports.len());
                for (got, want) in decoded.iter().zip(&reports) {
                    // Whatever form the UUIDs came in, they are the same UUIDs now, stored
                    // lowercase dashed.
                    prop_assert_eq!(got.report_id, want.id);
                    prop_assert_eq!(got.instance_id, want.instance_id);
                    prop_assert_eq!(got.report_id.to_string(), want.id.hyphenated().to_string());
                    prop_assert_eq!(got.created_at, want.created_at);
                    prop_assert_eq!(got.product_family, want.family);
                    let pairs: Vec<(String, String)> = got
                        .metrics
                        .iter()
                        .map(|metric| (metric.key.clone(), metric.value.clone()))
                        .collect();
                    prop_assert_eq!(&pairs, &want.metrics);
                    prop_assert_eq!(got.version.as_deref(), want.version());
                }
            }
            Some(first_bad) => {
                // A field given twice is refused as the JSON is read, before any value is judged,
                // as protojson does: it is named wherever it is.
                let first_bad = reports
                    .iter()
                    .position(|report| matches!(report.defect, Some(Defect::InstanceIdGivenTwice)))
                    .unwrap_or(first_bad);
                let error = result.err().ok_or_else(|| TestCaseError::fail("accepted a defect"))?;
                let message = error.to_string();
                let expected_prefix = format!("reports[{first_bad}]");
                prop_assert!(
                    message.starts_with(&expected_prefix),
                    "{} does not name {}", message, expected_prefix
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real service over HTTP
// ---------------------------------------------------------------------------------------------

/// Runs `cases` generated inputs against one service on one runtime, then drops its database
/// whatever the outcome.
fn run_against_service<S, F>(strategy: S, check: F)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: AsyncFn(&TestApp, S::Value) -> Result<(), TestCaseError>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let app = runtime.block_on(TestApp::spawn());
    let mut runner = TestRunner::new(proptest_config(HTTP_CASES));
    let outcome = runner.run(&strategy, |input| runtime.block_on(check(&app, input)));
    runtime.block_on(app.cleanup());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// The answer must be `200 {}` or a 400 with the grpc-gateway error body; returns the status.
async fn answer(app: &TestApp, body: Vec<u8>) -> Result<u16, TestCaseError> {
    let response = app.post_report(body).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("the response body arrives");
    prop_assert_eq!(content_type.as_deref(), Some("application/json"));
    match status {
        200 => prop_assert_eq!(text.as_str(), "{}"),
        400 => {
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("400 body {text:?} is not JSON: {e}")))?;
            let fields = body.as_object().map(|o| {
                let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
                keys.sort_unstable();
                keys
            });
            prop_assert_eq!(fields, Some(vec!["code", "details", "message"]), "{}", text);
            prop_assert_eq!(&body["code"], &json!(3), "{}", text);
            prop_assert_eq!(&body["details"], &json!([]), "{}", text);
            prop_assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{}",
                text
            );
        }
        other => prop_assert!(false, "status {} with body {}", other, text),
    }
    Ok(status)
}

/// Stored reports among `keys`, (instance id, report id) pairs: a report id identifies a report
/// within its instance.
async fn stored_reports(app: &TestApp, keys: &[(Uuid, Uuid)]) -> i64 {
    let (instances, ids): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    sqlx::query_scalar(
        "SELECT count(*) FROM reports
         WHERE (instance_id, report_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
    )
    .bind(instances)
    .bind(ids)
    .fetch_one(&app.pool)
    .await
    .expect("the count query runs")
}

#[test]
fn any_body_gets_200_or_400_over_http() {
    run_against_service(any_body(), async |app, body| {
        let before = app.count("reports").await;
        let status = answer(app, body).await?;
        if status == 400 {
            prop_assert_eq!(
                app.count("reports").await,
                before,
                "a refused request stored something"
            );
        }
        Ok(())
    });
}

#[test]
fn randomised_reports_are_stored_exactly_when_valid_over_http() {
    run_against_service(request_case(), async |app, reports| {
        let before = app.count("reports").await;
        let status = answer(app, request_body(&reports)).await?;
        let keys: Vec<(Uuid, Uuid)> = reports
            .iter()
            .map(|report| (report.instance_id, report.id))
            .collect();
        let valid = reports.iter().all(|report| report.defect.is_none());
        if valid {
            prop_assert_eq!(status, 200);
            let mut distinct = keys.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let expected = i64::try_from(distinct.len()).expect("a handful of ids");
            prop_assert_eq!(stored_reports(app, &distinct).await, expected);
        } else {
            prop_assert_eq!(status, 400);
            prop_assert_eq!(
                app.count("reports").await,
                before,
                "a refused request stored something"
            );
        }
        Ok(())
    });
}

//! PMM 2's telemetry protocols through real HTTP/1.1 and HTTP/2 (a tonic gRPC client) into a real
//! PostgreSQL: `POST /v1/telemetry/Report` in all its shapes, the gRPC `ReporterAPI/Report` method,
//! v1 plain text, and one server's history across all of them and `GenericReport`.

use crate::common::{TestApp, assert_grpc_error, fixture};
use axum::http::uri::PathAndQuery;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use prost::Message;
use serde_json::{Value, json};
use telemetry_server::http::grpc::REPORT_PATH;
use telemetry_server::legacy::proto::{
    AnyEvent, DistributionMethod, Event, ReportRequest, ReportResponse, ServerMetric,
    ServerUptimeEvent, server_metric,
};
use uuid::Uuid;

const SERVER_UPTIME_EVENT: &str = "percona.platform.telemetry.events.pmm.v1.ServerUptimeEvent";
/// The PMM 2.26–2.27 body of `docs/protocol.md` §3.7, byte for byte.
const REFERENCE_EVENT_BODY: &str = r#"{"events":[{"id":"xfEA0OknRzeMJo4JptZrUw==","time":"2022-01-20T10:00:00.123456789Z","event":{"typeUrl":"percona.platform.telemetry.events.pmm.v1.ServerUptimeEvent","binary":"ChCYhkbv3RNPz6L9dFgW5Xh3EgYyLjI2LjAaCgiAowUQgbiQ0AIgASoCCAEyAA=="}}]}"#;
/// The telemetry id of the fixture and of the §3.7 example (`mIZG790TT8+i/XRYFuV4dw==`).
const REFERENCE_INSTANCE: &str = "988646ef-dd13-4fcf-a2fd-745816e57877";
/// The report id of both (`xfEA0OknRzeMJo4JptZrUw==`).
const REFERENCE_REPORT: &str = "c5f100d0-e927-4737-8c26-8e09a6d66b53";

async fn post(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .body(body)
        .send()
        .await
        .expect("request reaches the service")
}

async fn post_legacy(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    post(app, "/v1/telemetry/Report", body).await
}

async fn assert_ok(response: reqwest::Response) {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!((status, body.as_str()), (200, "{}"), "exactly 200 {{}}");
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn uptime_event(instance: Uuid, version: &str, seconds: i64) -> ServerUptimeEvent {
    ServerUptimeEvent {
        id: instance.as_bytes().to_vec(),
        version: version.into(),
        up_duration: Some(prost_types::Duration { seconds, nanos: 0 }),
        distribution_method: DistributionMethod::Docker as i32,
        stt_enabled: None,
        ia_enabled: None,
    }
}

fn grpc_event(report: Uuid, time: DateTime<Utc>, event: &ServerUptimeEvent) -> Event {
    Event {
        id: report.as_bytes().to_vec(),
        time: Some(timestamp(time)),
        event: Some(AnyEvent {
            type_url: SERVER_UPTIME_EVENT.into(),
            binary: event.encode_to_vec(),
            json: String::new(),
        }),
    }
}

/// A PMM 2.28+ body with one ServerMetric.
fn server_metric_body(report: Uuid, instance: Uuid, time: DateTime<Utc>, version: &str) -> String {
    json!({"metrics": [{
        "id": b64(report.as_bytes()), "time": rfc3339(time),
        "pmmServerTelemetryId": b64(instance.as_bytes()), "pmmServerVersion": version,
        "upDuration": "172800.5s", "distributionMethod": "OVF",
        "metrics": [{"key": "pmm_server_usage_nodes_count", "value": "3"}]
    }]})
    .to_string()
}

/// A PMM 2.26–2.27 body with one event carried as binary protobuf.
fn event_body(report: Uuid, instance: Uuid, time: DateTime<Utc>, version: &str) -> String {
    let event = uptime_event(instance, version, 86400);
    json!({"events": [{
        "id": b64(report.as_bytes()), "time": rfc3339(time),
        "event": {"typeUrl": SERVER_UPTIME_EVENT, "binary": b64(&event.encode_to_vec())}
    }]})
    .to_string()
}

fn v1_body(instance: Uuid, version: &str) -> String {
    let id = instance.simple();
    format!("{id};OS;Ubuntu 18.04\n{id};PMM;{version}\n")
}

/// A gRPC client built from the service's own prost types, over a real HTTP/2 connection.
async fn grpc_report(
    app: &TestApp,
    request: ReportRequest,
) -> Result<tonic::Response<ReportResponse>, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(app.base_url.clone())
        .unwrap()
        .connect()
        .await
        .expect("HTTP/2 connection to the service port");
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
        .unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(REPORT_PATH),
            tonic_prost::ProstCodec::<ReportRequest, ReportResponse>::default(),
        )
        .await
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct StoredReport {
    instance_id: Uuid,
    product_family: String,
    created_at: String,
    version: Option<String>,
    up_duration_seconds: Option<i64>,
    protocol: String,
    metrics: Value,
}

async fn stored_report(app: &TestApp, report_id: &str) -> StoredReport {
    sqlx::query_as(
        "SELECT instance_id, product_family,
                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS created_at,
                version, up_duration_seconds, protocol, metrics
         FROM reports WHERE report_id = $1::uuid",
    )
    .bind(report_id)
    .fetch_one(&app.pool)
    .await
    .unwrap_or_else(|e| panic!("report {report_id} not stored: {e}"))
}

async fn protocols(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT protocol FROM reports ORDER BY created_at")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn keys(metrics: &Value) -> Vec<(String, String)> {
    metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn servermetric_fixture_is_stored_like_a_pmm3_report() {
    let app = TestApp::spawn().await;
    assert_ok(post_legacy(&app, fixture("legacy-pmm2-servermetric-report.json")).await).await;

    let stored = stored_report(&app, REFERENCE_REPORT).await;
    assert_eq!(stored.instance_id.to_string(), REFERENCE_INSTANCE);
    assert_eq!(stored.product_family, "PRODUCT_FAMILY_PMM");
    assert_eq!(stored.created_at, "2024-02-14T10:31:07.514728");
    assert_eq!(stored.version.as_deref(), Some("2.41.1"));
    assert_eq!(stored.up_duration_seconds, Some(86400));
    assert_eq!(stored.protocol, "Report/ServerMetric");

    // The header fields first, as PMM 3 sends them, then every metric as sent.
    let sent: Value =
        serde_json::from_slice(&fixture("legacy-pmm2-servermetric-report.json")).unwrap();
    let mut expected = pairs(&[
        ("PMMServerVersion", "2.41.1"),
        ("UpDuration", "seconds:86400 nanos:853372941"),
        ("DistributionMethod", "DOCKER"),
    ]);
    expected.extend(keys(&sent["metrics"][0]["metrics"]));
    assert_eq!(keys(&stored.metrics), expected);
    assert_eq!(expected.len(), 22);

    let (family, version, count): (String, Option<String>, i64) = sqlx::query_as(
        "SELECT product_family, version, report_count FROM instances WHERE instance_id = $1::uuid",
    )
    .bind(REFERENCE_INSTANCE)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (family.as_str(), version.as_deref(), count),
        ("PRODUCT_FAMILY_PMM", Some("2.41.1"), 1)
    );
    app.cleanup().await;
}

#[tokio::test]
async fn reference_event_with_binary_server_uptime_event() {
    let app = TestApp::spawn().await;
    // PMM sends `Content-Type: application/json`; the body alone decides.
    let response = app
        .client
        .post(app.url("/v1/telemetry/Report"))
        .header("content-type", "application/json")
        .body(REFERENCE_EVENT_BODY)
        .send()
        .await
        .unwrap();
    assert_ok(response).await;

    let stored = stored_report(&app, REFERENCE_REPORT).await;
    assert_eq!(
        stored,
        StoredReport {
            instance_id: REFERENCE_INSTANCE.parse().unwrap(),
            product_family: "PRODUCT_FAMILY_PMM".into(),
            created_at: "2022-01-20T10:00:00.123456".into(),
            version: Some("2.26.0".into()),
            up_duration_seconds: Some(86400),
            protocol: "Report/Event".into(),
            metrics: json!([
                {"key": "PMMServerVersion", "value": "2.26.0"},
                {"key": "UpDuration", "value": "seconds:86400 nanos:704912385"},
                {"key": "DistributionMethod", "value": "DOCKER"},
                {"key": "pmm_server_ia_enabled", "value": "0"},
                {"key": "pmm_server_stt_enabled", "value": "1"},
            ]),
        }
    );
    app.cleanup().await;
}

#[tokio::test]
async fn event_as_json_and_the_pmm_2_25_encoding_json_form() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();

    // AnyEvent.json: the event as protojson text, enum by number, proto field names.
    let json_report = Uuid::new_v4();
    let inner = json!({"id": b64(instance.as_bytes()), "version": "2.26.0",
        "up_duration": "90000.000000001s", "distribution_method": 2, "iaEnabled": true});
    let body = json!({"events": [{"id": b64(json_report.as_bytes()), "time": "2022-01-21T10:00:00+01:00",
        "event": {"type_url": SERVER_UPTIME_EVENT, "json": inner.to_string()}, "futureField": 1}]});
    assert_ok(post_legacy(&app, body.to_string()).await).await;

    // PMM 2.25: Go's encoding/json of the generated structs.
    let go_report = Uuid::new_v4();
    let event = uptime_event(instance, "2.25.0", 86401);
    let body = format!(
        r#"{{"events":[{{"id":"{}","time":{{"seconds":1642672800,"nanos":5000}},"event":{{"type_url":"{SERVER_UPTIME_EVENT}","binary":"{}"}}}}]}}"#,
        b64(go_report.as_bytes()),
        b64(&event.encode_to_vec())
    );
    assert_ok(post_legacy(&app, body).await).await;
    // The same era's ServerMetric shape, for completeness: snake_case, objects, enum number.
    let go_metric = Uuid::new_v4();
    let body = json!({"metrics": [{"id": b64(go_metric.as_bytes()),
        "time": {"seconds": 1642845600}, "pmm_server_telemetry_id": b64(instance.as_bytes()),
        "pmm_server_version": "2.27.0", "up_duration": {"seconds": 60, "nanos": 5},
        "distribution_method": 3, "metrics": [{"key": "k"}]}]});
    assert_ok(post_legacy(&app, body.to_string()).await).await;

    let stored = stored_report(&app, &json_report.to_string()).await;
    assert_eq!(stored.created_at, "2022-01-21T09:00:00.000000");
    assert_eq!(stored.up_duration_seconds, Some(90000));
    assert_eq!(
        keys(&stored.metrics),
        pairs(&[
            ("PMMServerVersion", "2.26.0"),
            ("UpDuration", "seconds:90000 nanos:1"),
            ("DistributionMethod", "OVF"),
            ("pmm_server_ia_enabled", "1"),
        ])
    );
    let stored = stored_report(&app, &go_report.to_string()).await;
    assert_eq!(stored.created_at, "2022-01-20T10:00:00.000005");
    assert_eq!(
        (stored.version.as_deref(), stored.up_duration_seconds),
        (Some("2.25.0"), Some(86401))
    );
    assert_eq!(stored.protocol, "Report/Event");
    let stored = stored_report(&app, &go_metric.to_string()).await;
    assert_eq!(stored.created_at, "2022-01-22T10:00:00.000000");
    assert_eq!(
        keys(&stored.metrics),
        pairs(&[
            ("PMMServerVersion", "2.27.0"),
            ("UpDuration", "seconds:60 nanos:5"),
            ("DistributionMethod", "AMI"),
            ("k", ""),
        ])
    );

    let upgrades: Vec<(String, String)> = sqlx::query_as(
        "SELECT from_version, to_version FROM upgrades WHERE instance_id = $1 ORDER BY upgraded_at",
    )
    .bind(instance)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        upgrades,
        pairs(&[("2.25.0", "2.26.0"), ("2.26.0", "2.27.0")])
    );
    app.cleanup().await;
}

#[tokio::test]
async fn grpc_client_reaches_the_report_method_over_http2() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();
    let report = Uuid::new_v4();
    let time = DateTime::parse_from_rfc3339("2021-03-01T12:00:00.25Z")
        .unwrap()
        .to_utc();
    let mut event = uptime_event(instance, "2.14.0", 3 * 86400);
    event.distribution_method = DistributionMethod::Ami as i32;
    let request = ReportRequest {
        events: vec![grpc_event(report, time, &event)],
        metrics: Vec::new(),
    };
    let response = grpc_report(&app, request.clone())
        .await
        .expect("gRPC call succeeds");
    assert_eq!(response.into_inner(), ReportResponse {});

    let stored = stored_report(&app, &report.to_string()).await;
    assert_eq!(
        stored,
        StoredReport {
            instance_id: instance,
            product_family: "PRODUCT_FAMILY_PMM".into(),
            created_at: "2021-03-01T12:00:00.250000".into(),
            version: Some("2.14.0".into()),
            up_duration_seconds: Some(259200),
            protocol: "gRPC".into(),
            metrics: json!([
                {"key": "PMMServerVersion", "value": "2.14.0"},
                {"key": "UpDuration", "value": "seconds:259200"},
                {"key": "DistributionMethod", "value": "AMI"},
            ]),
        }
    );

    // A retry after a lost answer stores nothing new.
    let before = app.snapshot().await;
    grpc_report(&app, request)
        .await
        .expect("re-sent call succeeds");
    assert_eq!(app.snapshot().await, before);

    // The ServerMetric shape is accepted over gRPC too.
    let metric_report = Uuid::new_v4();
    let request = ReportRequest {
        events: Vec::new(),
        metrics: vec![ServerMetric {
            id: metric_report.as_bytes().to_vec(),
            time: Some(timestamp(time + Duration::days(1))),
            pmm_server_telemetry_id: instance.as_bytes().to_vec(),
            pmm_server_version: "2.15.0".into(),
            up_duration: None,
            distribution_method: 0,
            metrics: vec![server_metric::Metric {
                key: "mysql_version".into(),
                value: "8.0.23-14".into(),
            }],
        }],
    };
    grpc_report(&app, request)
        .await
        .expect("gRPC call succeeds");
    let stored = stored_report(&app, &metric_report.to_string()).await;
    assert_eq!(stored.protocol, "gRPC");
    assert_eq!(stored.up_duration_seconds, None);
    assert_eq!(
        keys(&stored.metrics),
        pairs(&[
            ("PMMServerVersion", "2.15.0"),
            ("DistributionMethod", "DISTRIBUTION_METHOD_INVALID"),
            ("mysql_version", "8.0.23-14"),
        ])
    );

    // Invalid messages: InvalidArgument naming the field, and nothing stored.
    let before = app.snapshot().await;
    let mut short_id = grpc_event(Uuid::new_v4(), time, &event);
    short_id.id.truncate(5);
    let mut wrong_type = grpc_event(Uuid::new_v4(), time, &event);
    wrong_type.event.as_mut().unwrap().type_url =
        "percona.platform.telemetry.events.pmm.v1.OtherEvent".into();
    let mut garbage = grpc_event(Uuid::new_v4(), time, &event);
    garbage.event.as_mut().unwrap().binary = vec![0xff, 0xff, 0xff];
    let valid = grpc_event(Uuid::new_v4(), time, &event);
    for (events, expected) in [
        (
            vec![valid.clone(), short_id],
            "events[1].id: expected 16 bytes, got 5",
        ),
        (vec![wrong_type], "events[0].event.typeUrl"),
        (
            vec![garbage],
            "events[0].event.binary: is not a serialized ServerUptimeEvent",
        ),
    ] {
        let status = grpc_report(
            &app,
            ReportRequest {
                events,
                metrics: Vec::new(),
            },
        )
        .await
        .expect_err("invalid report is refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(expected),
            "{:?} should contain {expected:?}",
            status.message()
        );
        assert_eq!(app.snapshot().await, before);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn grpc_and_json_report_unavailable_while_the_database_is() {
    let app = TestApp::spawn_with(|config| config.database_acquire_timeout_secs = 1).await;
    let instance = Uuid::new_v4();
    let time = Utc::now();
    let request = ReportRequest {
        events: vec![grpc_event(
            Uuid::new_v4(),
            time,
            &uptime_event(instance, "2.20.0", 1),
        )],
        metrics: Vec::new(),
    };
    let json_body = server_metric_body(Uuid::new_v4(), instance, time, "2.41.0");
    app.start_outage().await;
    {
        let status = grpc_report(&app, request.clone())
            .await
            .expect_err("no commit, no success");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(
            status.message(),
            "the database is unavailable; try again shortly"
        );
        let response = post_legacy(&app, json_body.clone()).await;
        assert!(response.headers().contains_key("retry-after"));
        assert_grpc_error(response, 503, 14).await;
    }
    app.end_outage().await;
    grpc_report(&app, request)
        .await
        .expect("accepted once the database is back");
    assert_ok(post_legacy(&app, json_body).await).await;
    assert_eq!(app.count("reports").await, 2);
    app.cleanup().await;
}

#[tokio::test]
async fn v1_plain_text_report() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();
    // Exactly what PMM 2.0–2.27 sent, including the misspelt content type.
    let response = app
        .client
        .post(app.url("/v1/pmm-version-check"))
        .header("content-type", "plain/text")
        .header("x-percona-toolkit-tool", "pmm")
        .body(v1_body(instance, "2.9.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "");

    let (report_id, created_at): (Uuid, DateTime<Utc>) =
        sqlx::query_as("SELECT report_id, created_at FROM reports WHERE instance_id = $1")
            .bind(instance)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let stored = stored_report(&app, &report_id.to_string()).await;
    assert_eq!(stored.product_family, "PRODUCT_FAMILY_PMM");
    assert_eq!(stored.version.as_deref(), Some("2.9.1"));
    assert_eq!(stored.protocol, "v1");
    assert_eq!(
        keys(&stored.metrics),
        pairs(&[("PMMServerVersion", "2.9.1"), ("OS", "Ubuntu 18.04")])
    );
    // The id is the v5 UUID of instance, arrival day and version.
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://v.percona.com/");
    let name = format!(
        "{}/{}/2.9.1",
        instance.simple(),
        created_at.format("%Y-%m-%d")
    );
    assert_eq!(report_id, Uuid::new_v5(&namespace, name.as_bytes()));

    // The same report again the same day (unless the test straddles midnight UTC) changes nothing.
    let before = app.snapshot().await;
    let response = post(&app, "/v1/pmm-version-check", v1_body(instance, "2.9.1")).await;
    assert_eq!(response.status().as_u16(), 200);
    if Utc::now().date_naive() == created_at.date_naive() {
        assert_eq!(app.snapshot().await, before);
    }

    // Other methods are refused like on every report endpoint.
    let response = app
        .client
        .get(app.url("/v1/pmm-version-check"))
        .send()
        .await
        .unwrap();
    assert_grpc_error(response, 405, 12).await;
    app.cleanup().await;
}

#[tokio::test]
async fn v1_path_is_configurable() {
    let app = TestApp::spawn_with(|config| config.legacy_v1_path = "/pmm-v1".into()).await;
    let instance = Uuid::new_v4();
    let response = post(&app, "/pmm-v1", v1_body(instance, "2.0.0")).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(app.count("reports").await, 1);
    let response = post(&app, "/v1/pmm-version-check", v1_body(instance, "2.0.1")).await;
    assert_grpc_error(response, 404, 5).await;
    assert_eq!(app.count("reports").await, 1);
    app.cleanup().await;
}

/// One PMM server's life: v1 and gRPC from 2.x, both `/v1/telemetry/Report` shapes, then PMM 3.
#[tokio::test]
async fn one_instance_across_every_protocol() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();
    // v1 reports carry no time (the arrival time is used), so the later reports are dated after now.
    let now = Utc::now();

    let response = post(&app, "/v1/pmm-version-check", v1_body(instance, "2.20.0")).await;
    assert_eq!(response.status().as_u16(), 200);

    let request = ReportRequest {
        events: vec![grpc_event(
            Uuid::new_v4(),
            now + Duration::days(1),
            &uptime_event(instance, "2.24.0", 86400),
        )],
        metrics: Vec::new(),
    };
    grpc_report(&app, request)
        .await
        .expect("gRPC call succeeds");

    let body = event_body(Uuid::new_v4(), instance, now + Duration::days(2), "2.26.0");
    assert_ok(post_legacy(&app, body).await).await;

    let body = server_metric_body(Uuid::new_v4(), instance, now + Duration::days(3), "2.41.1");
    assert_ok(post_legacy(&app, body).await).await;

    let body = json!({"reports": [{"id": Uuid::new_v4().to_string(),
        "createTime": rfc3339(now + Duration::days(4)), "instanceId": instance.to_string(),
        "productFamily": "PRODUCT_FAMILY_PMM", "metrics": [
            {"key": "PMMServerVersion", "value": "3.0.0"},
            {"key": "UpDuration", "value": "seconds:86401 nanos:318260114"},
            {"key": "DistributionMethod", "value": "DOCKER"}]}]});
    assert_ok(app.post_report(body.to_string()).await).await;

    let instances: Vec<(Uuid, String, Option<String>, i64)> =
        sqlx::query_as("SELECT instance_id, product_family, version, report_count FROM instances")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        instances,
        [(
            instance,
            "PRODUCT_FAMILY_PMM".to_owned(),
            Some("3.0.0".to_owned()),
            5
        )]
    );
    assert_eq!(
        protocols(&app).await,
        [
            "v1",
            "gRPC",
            "Report/Event",
            "Report/ServerMetric",
            "GenericReport"
        ]
    );
    let upgrades: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT from_version, to_version, is_downgrade FROM upgrades ORDER BY upgraded_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        upgrades,
        [
            ("2.20.0".into(), "2.24.0".into(), false),
            ("2.24.0".into(), "2.26.0".into(), false),
            ("2.26.0".into(), "2.41.1".into(), false),
            ("2.41.1".into(), "3.0.0".into(), false),
        ]
    );
    // Uptime is comparable across protocols.
    let uptimes: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT up_duration_seconds FROM reports ORDER BY created_at")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        uptimes,
        [None, Some(86400), Some(86400), Some(172800), Some(86401)]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn resent_legacy_reports_are_idempotent() {
    let app = TestApp::spawn().await;
    assert_ok(post_legacy(&app, fixture("legacy-pmm2-servermetric-report.json")).await).await;
    let before = app.snapshot().await;
    assert_ok(post_legacy(&app, fixture("legacy-pmm2-servermetric-report.json")).await).await;
    assert_eq!(app.snapshot().await, before);

    // PMM 2.28 sent one ServerMetric per row; a re-send of the batch adds only the new ones.
    let instance = Uuid::new_v4();
    let first = Uuid::new_v4();
    let second = Uuid::new_v4();
    let time = Utc::now();
    let one: Value =
        serde_json::from_str(&server_metric_body(first, instance, time, "2.28.0")).unwrap();
    let two: Value =
        serde_json::from_str(&server_metric_body(second, instance, time, "2.28.0")).unwrap();
    assert_ok(post_legacy(&app, one.to_string()).await).await;
    let both = json!({"metrics": [one["metrics"][0], two["metrics"][0]]});
    assert_ok(post_legacy(&app, both.to_string()).await).await;
    assert_ok(post_legacy(&app, both.to_string()).await).await;
    let count: i64 =
        sqlx::query_scalar("SELECT report_count FROM instances WHERE instance_id = $1")
            .bind(instance)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(count, 2);
    assert_eq!(app.count("reports").await, 3);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_legacy_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    assert_ok(post_legacy(&app, REFERENCE_EVENT_BODY).await).await;
    let before = app.snapshot().await;

    let instance = Uuid::new_v4();
    let time = Utc::now();
    let valid: Value = serde_json::from_str(&server_metric_body(
        Uuid::new_v4(),
        instance,
        time,
        "2.41.0",
    ))
    .unwrap();
    let valid = valid["metrics"][0].clone();
    let with = |field: &str, value: Value| {
        let mut report = valid.clone();
        report[field] = value;
        json!({"metrics": [valid.clone(), report]}).to_string()
    };
    let without = |field: &str| {
        let mut report = valid.clone();
        report.as_object_mut().unwrap().remove(field);
        json!({"metrics": [report]}).to_string()
    };
    let event = |any: Value| {
        json!({"events": [{"id": b64(Uuid::new_v4().as_bytes()), "time": rfc3339(time), "event": any}]})
            .to_string()
    };
    let binary = b64(&uptime_event(instance, "2.26.0", 1).encode_to_vec());

    let cases: Vec<(&str, String, &str)> = vec![
        ("invalid JSON", "{\"metrics\": [".into(), "not valid JSON"),
        (
            "metrics not an array",
            r#"{"metrics": {}}"#.into(),
            "metrics: expected an array",
        ),
        (
            "id not base64",
            with("id", json!("???")),
            "metrics[1].id: \"???\" is not base64",
        ),
        (
            "id of 12 bytes",
            with("id", json!(b64(&[1; 12]))),
            "metrics[1].id: expected 16 bytes, got 12",
        ),
        (
            "missing telemetry id",
            without("pmmServerTelemetryId"),
            "metrics[0].pmmServerTelemetryId: is required",
        ),
        (
            "missing time",
            without("time"),
            "metrics[0].time: is required",
        ),
        (
            "bad time",
            with("time", json!("yesterday")),
            "metrics[1].time",
        ),
        (
            "nanos out of range",
            with("time", json!({"seconds": 1, "nanos": 1_000_000_000})),
            "metrics[1].time.nanos",
        ),
        (
            // chrono represents it, PostgreSQL's timestamptz (from 4713 BC) cannot: this was a 500.
            "time before the year 1",
            with(
                "time",
                json!({"seconds": -1_000_000_000_000i64, "nanos": 0}),
            ),
            "metrics[1].time",
        ),
        (
            "bad duration",
            with("upDuration", json!("one day")),
            "metrics[1].upDuration: \"one day\" is not a duration",
        ),
        (
            "fractional enum",
            with("distributionMethod", json!(1.5)),
            "metrics[1].distributionMethod",
        ),
        (
            "numeric metric value",
            with("metrics", json!([{"key": "a", "value": 1}])),
            "metrics[1].metrics[0].value: expected a string",
        ),
        (
            "a field given twice",
            with("pmm_server_version", json!("2.41.0")),
            "duplicate field",
        ),
        (
            "missing event",
            json!({"events": [{"id": b64(Uuid::new_v4().as_bytes()), "time": rfc3339(time)}]})
                .to_string(),
            "events[0].event: is required",
        ),
        (
            "unknown event type",
            event(
                json!({"typeUrl": "percona.platform.telemetry.events.pmm.v1.OtherEvent", "binary": binary}),
            ),
            "events[0].event.typeUrl",
        ),
        (
            "both binary and json",
            event(json!({"typeUrl": SERVER_UPTIME_EVENT, "binary": binary, "json": "{}"})),
            "events[0].event: both binary and json are set",
        ),
        (
            "neither binary nor json",
            event(json!({"typeUrl": SERVER_UPTIME_EVENT})),
            "events[0].event: one of binary or json is required",
        ),
        (
            "binary that is not protobuf",
            event(json!({"typeUrl": SERVER_UPTIME_EVENT, "binary": b64(&[0xff; 4])})),
            "events[0].event.binary: is not a serialized ServerUptimeEvent",
        ),
        (
            "json that is not JSON",
            event(json!({"typeUrl": SERVER_UPTIME_EVENT, "json": "{"})),
            "events[0].event.json: is not valid JSON",
        ),
        (
            "event without the telemetry id",
            event(json!({"typeUrl": SERVER_UPTIME_EVENT, "json": "{\"version\": \"2.26.0\"}"})),
            "events[0].event.json.id: is required",
        ),
    ];
    for (name, body, expected) in cases {
        let message = assert_grpc_error(post_legacy(&app, body).await, 400, 3).await;
        assert!(
            message.contains(expected),
            "{name}: message {message:?} should contain {expected:?}"
        );
        assert_eq!(app.snapshot().await, before, "{name}: database unchanged");
    }

    let id = instance.simple();
    let v1_cases: Vec<(&str, String, &str)> = vec![
        ("empty v1 body", String::new(), "empty"),
        (
            "no PMM line",
            format!("{id};OS;Ubuntu\n"),
            "has no PMM line",
        ),
        ("not three fields", format!("{id};PMM\n"), "line 1: "),
        (
            "telemetry ids differ",
            format!("{id};OS;Ubuntu\n{};PMM;2.0.0\n", Uuid::new_v4().simple()),
            "line 2: telemetry id",
        ),
    ];
    for (name, body, expected) in v1_cases {
        let message =
            assert_grpc_error(post(&app, "/v1/pmm-version-check", body).await, 400, 3).await;
        assert!(
            message.contains(expected),
            "{name}: message {message:?} should contain {expected:?}"
        );
        assert_eq!(app.snapshot().await, before, "{name}: database unchanged");
    }

    let response = app
        .client
        .get(app.url("/v1/telemetry/Report"))
        .send()
        .await
        .unwrap();
    assert_grpc_error(response, 405, 12).await;
    app.cleanup().await;
}

#[tokio::test]
async fn grpc_message_size_is_limited_like_a_body() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 4 * 1024).await;
    let instance = Uuid::new_v4();
    let report = |value: String| ReportRequest {
        events: Vec::new(),
        metrics: vec![ServerMetric {
            id: Uuid::new_v4().as_bytes().to_vec(),
            time: Some(timestamp(Utc::now())),
            pmm_server_telemetry_id: instance.as_bytes().to_vec(),
            pmm_server_version: "2.41.0".into(),
            up_duration: None,
            distribution_method: 1,
            metrics: vec![server_metric::Metric {
                key: "padding".into(),
                value,
            }],
        }],
    };
    let status = grpc_report(&app, report("x".repeat(8 * 1024)))
        .await
        .expect_err("an oversized message is refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(app.count("reports").await, 0);
    grpc_report(&app, report("x".repeat(1024)))
        .await
        .expect("a message under the limit is accepted");
    assert_eq!(app.count("reports").await, 1);
    app.cleanup().await;
}

/// Posts one raw gRPC request body (length-prefixed frames as given) over HTTP/2 and returns the
/// HTTP status and `grpc-status` of the answer, which for a refusal is a trailers-only response.
async fn grpc_raw(app: &TestApp, body: Vec<u8>) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .post(app.url(REPORT_PATH))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response
        .headers()
        .get("grpc-status")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), status)
}

/// An uncompressed gRPC frame around `message`.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

#[tokio::test]
async fn malformed_grpc_messages_are_invalid_argument() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let mut truncated_frame = grpc_frame(&[0x0a, 0x00]);
    truncated_frame[4] = 100;
    for (what, body) in [
        // events[0] with a length varint that never ends.
        (
            "bad varint",
            grpc_frame(&[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]),
        ),
        // events[0].event.typeUrl = the bytes ff fe.
        (
            "invalid UTF-8",
            grpc_frame(&[0x0a, 0x06, 0x1a, 0x04, 0x0a, 0x02, 0xff, 0xfe]),
        ),
        (
            "message shorter than its field",
            grpc_frame(&[0x0a, 0x10, 0x1a]),
        ),
        ("frame shorter than its header says", truncated_frame),
        ("no message at all", Vec::new()),
    ] {
        assert_eq!(
            grpc_raw(&app, body).await,
            (200, Some("3".to_owned())),
            "{what}: INVALID_ARGUMENT"
        );
    }
    assert_eq!(app.snapshot().await, before);
    app.cleanup().await;
}

#[tokio::test]
async fn grpc_callers_get_grpc_statuses_for_limits() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_per_minute = 1;
        config.rate_limit_burst = 1;
        config.request_timeout_secs = 1;
    })
    .await;
    let instance = Uuid::new_v4();
    let request = |report: Uuid| ReportRequest {
        events: vec![grpc_event(
            report,
            Utc::now(),
            &uptime_event(instance, "2.41.0", 60),
        )],
        metrics: Vec::new(),
    };
    // Held in a transaction, the table makes the first call wait for its commit past the deadline.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE reports IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let status = grpc_report(&app, request(Uuid::new_v4()))
        .await
        .expect_err("the call outlives the request timeout");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    blocker.rollback().await.unwrap();

    let status = grpc_report(&app, request(Uuid::new_v4()))
        .await
        .expect_err("the second call within the minute is over the rate");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_negative_uptime_is_accepted_and_stored_as_null() {
    let app = TestApp::spawn().await;
    let report = Uuid::new_v4();
    let body = server_metric_body(report, Uuid::new_v4(), Utc::now(), "2.41.0")
        .replace("172800.5s", "-60s");
    assert_ok(post_legacy(&app, body).await).await;
    assert_eq!(
        stored_report(&app, &report.to_string())
            .await
            .up_duration_seconds,
        None
    );

    let event = uptime_event(Uuid::new_v4(), "2.14.0", -86400);
    let report = Uuid::new_v4();
    grpc_report(
        &app,
        ReportRequest {
            events: vec![grpc_event(report, Utc::now(), &event)],
            metrics: Vec::new(),
        },
    )
    .await
    .expect("a negative duration is a valid Duration");
    assert_eq!(
        stored_report(&app, &report.to_string())
            .await
            .up_duration_seconds,
        None
    );
    app.cleanup().await;
}

#[tokio::test]
async fn legacy_json_is_read_as_grpc_gateway_reads_it_and_has_no_limits_but_the_body() {
    let app = TestApp::spawn().await;
    // An empty body is an empty request; what follows the first JSON value is not read.
    assert_ok(post_legacy(&app, "").await).await;
    let body = server_metric_body(Uuid::new_v4(), Uuid::new_v4(), Utc::now(), "2.41.0");
    let mut report: Value = serde_json::from_str(&body).unwrap();
    // Any number of metrics, of any size and content, as Percona's front end takes them.
    let mut metrics: Vec<Value> = (0..6000)
        .map(|i| json!({"key": format!("k{i}\u{0}"), "value": "v".repeat(i % 100)}))
        .collect();
    metrics.push(json!({"key": "k".repeat(300), "value": "v".repeat(70_000)}));
    report["metrics"][0]["metrics"] = Value::Array(metrics);
    assert_ok(post_legacy(&app, format!("{report} trailing")).await).await;
    assert_eq!(app.count("reports").await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_spent_memory_budget_is_unavailable_to_grpc_callers() {
    // A budget smaller than one message: every call finds it spent.
    let app = TestApp::spawn_with(|config| config.max_body_bytes_in_flight = 1024).await;
    let request = ReportRequest {
        events: Vec::new(),
        metrics: vec![ServerMetric {
            id: Uuid::new_v4().as_bytes().to_vec(),
            time: Some(timestamp(Utc::now())),
            pmm_server_telemetry_id: Uuid::new_v4().as_bytes().to_vec(),
            pmm_server_version: "2.41.0".into(),
            up_duration: None,
            distribution_method: 1,
            metrics: vec![server_metric::Metric {
                key: "padding".into(),
                value: "x".repeat(8 * 1024),
            }],
        }],
    };
    let status = grpc_report(&app, request)
        .await
        .expect_err("the budget cannot hold the message");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(app.count("reports").await, 0);
    app.cleanup().await;
}

/// PMM 2's gRPC path takes its version from the same rule as GenericReport: a junk version is kept
/// raw and is no version, so the instance's next change answers OK, not INTERNAL.
#[tokio::test]
async fn a_junk_version_over_grpc_is_kept_raw_and_poisons_nothing() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();
    let junk = "2.".repeat(1500);
    let now = Utc::now();
    for (days, version) in [(0, "2.20.0"), (1, junk.as_str()), (2, "2.21.0")] {
        let request = ReportRequest {
            events: vec![grpc_event(
                Uuid::new_v4(),
                now + Duration::days(days),
                &uptime_event(instance, version, 86400),
            )],
            metrics: Vec::new(),
        };
        grpc_report(&app, request)
            .await
            .unwrap_or_else(|status| panic!("version {days}: {status:?}"));
    }
    let stored: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT version, metrics->0->>'value' FROM reports ORDER BY created_at")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            (Some("2.20.0".to_owned()), "2.20.0".to_owned()),
            (None, junk.clone()),
            (Some("2.21.0".to_owned()), "2.21.0".to_owned()),
        ]
    );
    let upgrades: Vec<(String, String)> =
        sqlx::query_as("SELECT from_version, to_version FROM upgrades")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(upgrades, [("2.20.0".to_owned(), "2.21.0".to_owned())]);
    app.cleanup().await;
}

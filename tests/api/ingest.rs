//! GenericReport ingest through real HTTP into a real PostgreSQL: the fixtures of every client, each
//! protojson rule, UUID forms, batching, idempotency, upgrade ordering and bad input.

use crate::common::{TestApp, assert_grpc_error, fixture};
use serde_json::{Value, json};
use uuid::Uuid;

fn report(id: Uuid, instance: Uuid, created: &str, family: &str, version: &str) -> Value {
    json!({
        "id": id.to_string(),
        "createTime": created,
        "instanceId": instance.to_string(),
        "productFamily": family,
        "metrics": [{"key": "pillar_version", "value": version}, {"key": "PMMServerVersion", "value": version}]
    })
}

fn request(reports: &[Value]) -> String {
    json!({ "reports": reports }).to_string()
}

async fn assert_ok(response: reqwest::Response) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    assert_eq!((status, body.as_str()), (200, "{}"), "exactly 200 {{}}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
}

async fn upgrades(app: &TestApp, instance: Uuid) -> Vec<(String, String, bool)> {
    sqlx::query_as(
        "SELECT from_version, to_version, is_downgrade FROM upgrades WHERE instance_id = $1 ORDER BY upgraded_at",
    )
    .bind(instance)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn instance_version(app: &TestApp, instance: Uuid) -> (Option<String>, i64) {
    sqlx::query_as("SELECT version, report_count FROM instances WHERE instance_id = $1")
        .bind(instance)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_client_fixture_is_accepted_and_stored() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "pmm-generic-report-1.json",
            "ca11b4b3-c378-49d3-85c5-2828f1e32f11",
            "PRODUCT_FAMILY_PMM",
            "3.2.0",
            1,
        ),
        (
            "pmm-generic-report-2-batched.json",
            "d2b6a0f4-6c51-4e0e-9d38-1f4a7b2c9e61",
            "PRODUCT_FAMILY_PMM",
            "3.1.0",
            2,
        ),
        (
            "telemetry-agent-ps.json",
            "5bec3a39-0008-4cf1-ae91-44567ae27ed4",
            "PRODUCT_FAMILY_PS",
            "8.0.36-28",
            1,
        ),
        (
            "call-home-install-postgresql.json",
            "060aa70b-7779-402c-8deb-22b2c1c28310",
            "PRODUCT_FAMILY_POSTGRESQL",
            "17.2",
            1,
        ),
        (
            "everest-report.json",
            "7108e1f0-10ca-45e3-a12e-e9f5df7244d3",
            "PRODUCT_FAMILY_EVEREST",
            "1.1.1",
            1,
        ),
    ];
    for (file, instance, family, version, reports) in cases {
        assert_ok(app.post_report(fixture(file)).await).await;
        let (stored_family, stored_version, count): (String, Option<String>, i64) = sqlx::query_as(
            "SELECT product_family, version, report_count FROM instances WHERE instance_id = $1::uuid",
        )
        .bind(instance)
        .fetch_one(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{file}: instance not stored: {e}"));
        assert_eq!(stored_family, family, "{file}");
        assert_eq!(stored_version.as_deref(), Some(version), "{file}");
        assert_eq!(count, reports, "{file}");
    }
    assert_eq!(app.count("reports").await, 6);

    // The PMM report keeps all 90 pairs in order, duplicates included, and its uptime in seconds.
    let (metrics, uptime): (Value, Option<i64>) = sqlx::query_as(
        "SELECT metrics, up_duration_seconds FROM reports WHERE report_id = '67114039-e393-4b26-a73d-75df892f513e'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let sent: Value = serde_json::from_slice(&fixture("pmm-generic-report-1.json")).unwrap();
    assert_eq!(metrics, sent["reports"][0]["metrics"]);
    assert_eq!(uptime, Some(86401));
    let mysql_versions: Vec<&str> = metrics
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["key"] == "mysql_version")
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(mysql_versions, ["8.0.39-30", "8.4.2-2"]);

    // Prototext with a doubled space, from the batched fixture.
    let uptimes: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT up_duration_seconds FROM reports WHERE instance_id = 'd2b6a0f4-6c51-4e0e-9d38-1f4a7b2c9e61' ORDER BY created_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(uptimes, [Some(172800), Some(259200)]);
    app.cleanup().await;
}

#[tokio::test]
async fn legacy_body_sent_to_generic_report_stores_nothing() {
    // `{"metrics":[...]}` has no `reports` field: protojson ignores the unknown field, as Percona's gateway does.
    let app = TestApp::spawn().await;
    assert_ok(
        app.post_report(fixture("legacy-pmm2-servermetric-report.json"))
            .await,
    )
    .await;
    assert_eq!(app.count("reports").await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn protojson_rules() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();
    let body = json!({"reports": [
        // snake_case proto names everywhere, enum by number, offset timestamp, unknown fields
        {"id": Uuid::new_v4().to_string(), "create_time": "2025-03-14T11:12:45+02:00",
         "instance_id": instance.to_string(), "product_family": 1, "future_field": {"x": 1},
         "metrics": [{"key": "pillar_version", "value": "8.0.40-31", "extra": true}]},
        // unknown enum name is kept as INVALID; missing value is ""; duplicate keys kept in order
        {"id": Uuid::new_v4().to_string(), "createTime": "2025-03-15T09:12:45.1Z",
         "instanceId": Uuid::new_v4().to_string(), "productFamily": "PRODUCT_FAMILY_SOMETHING_NEW",
         "metrics": [{"key": "a"}, {"key": "a", "value": "2"}, {"key": "a", "value": null}]},
        // unknown enum number, no metrics at all, nine fraction digits
        {"id": Uuid::new_v4().to_string(), "createTime": "2025-03-16T09:12:45.123456789Z",
         "instanceId": Uuid::new_v4().to_string(), "productFamily": 99},
        // zero fraction digits, explicit nulls for optional fields
        {"id": Uuid::new_v4().to_string(), "createTime": "2025-03-17T09:12:45Z",
         "instanceId": Uuid::new_v4().to_string(), "productFamily": null, "metrics": null},
    ]});
    // Any Content-Type, including none and a wrong one.
    let response = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_ok(response).await;

    let rows: Vec<(String, String, Value, Option<String>)> = sqlx::query_as(
        "SELECT product_family, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), metrics, version
         FROM reports ORDER BY created_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].0, "PRODUCT_FAMILY_PS");
    assert_eq!(rows[0].1, "2025-03-14 09:12:45.000000");
    assert_eq!(
        rows[0].2,
        json!([{"key": "pillar_version", "value": "8.0.40-31"}])
    );
    assert_eq!(rows[0].3.as_deref(), Some("8.0.40-31"));
    assert_eq!(rows[1].0, "PRODUCT_FAMILY_INVALID");
    assert_eq!(rows[1].1, "2025-03-15 09:12:45.100000");
    assert_eq!(
        rows[1].2,
        json!([{"key": "a", "value": ""}, {"key": "a", "value": "2"}, {"key": "a", "value": ""}])
    );
    assert_eq!(rows[2].0, "PRODUCT_FAMILY_INVALID");
    assert_eq!(rows[2].1, "2025-03-16 09:12:45.123456");
    assert_eq!(rows[2].2, json!([]));
    assert_eq!(rows[3].0, "PRODUCT_FAMILY_INVALID");
    assert_eq!(rows[3].2, json!([]));

    // No Content-Type header at all.
    let response = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .body(request(&[report(
            Uuid::new_v4(),
            instance,
            "2025-03-18T00:00:00Z",
            "PRODUCT_FAMILY_PS",
            "8.0.41",
        )]))
        .send()
        .await
        .unwrap();
    assert_ok(response).await;
    assert_eq!(app.count("reports").await, 5);
    app.cleanup().await;
}

#[tokio::test]
async fn every_uuid_form_is_normalised() {
    let app = TestApp::spawn().await;
    let forms = [
        "2F1C7A9E-3B4D-4C1E-9A52-0D8E6B7F1A23",
        "2f1c7a9e3b4d4c1e9a520d8e6b7f1a23",
        "{2f1c7a9e-3b4d-4c1e-9a52-0d8e6b7f1a23}",
        "urn:uuid:2f1c7a9e-3b4d-4c1e-9a52-0d8e6b7f1a23",
        "2f1c7a9e-3b4d-4c1e-9a52-0d8e6b7f1a23",
    ];
    for (index, form) in forms.iter().enumerate() {
        let body = json!({"reports": [{
            "id": form.replace("2f1c7a9e", &format!("0000000{index}")).replace("2F1C7A9E", "00000000"),
            "createTime": format!("2025-03-1{index}T00:00:00Z"),
            "instanceId": form,
            "productFamily": "PRODUCT_FAMILY_PS",
        }]});
        assert_ok(app.post_report(body.to_string()).await).await;
    }
    // A version-1 UUID as the agent's id file can hold one.
    let v1 = json!({"reports": [{"id": "1bed5f0d-cc3a-11ee-bd8a-c84bd64e0277", "createTime": "2025-01-01T00:00:00Z",
        "instanceId": "1bed5f0d-cc3a-11ee-bd8a-c84bd64e0277", "productFamily": "PRODUCT_FAMILY_PS"}]});
    assert_ok(app.post_report(v1.to_string()).await).await;

    let instances: Vec<String> =
        sqlx::query_scalar("SELECT instance_id::text FROM instances ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        instances,
        [
            "1bed5f0d-cc3a-11ee-bd8a-c84bd64e0277",
            "2f1c7a9e-3b4d-4c1e-9a52-0d8e6b7f1a23"
        ]
    );
    let count: i64 = sqlx::query_scalar(
        "SELECT report_count FROM instances WHERE instance_id = '2f1c7a9e-3b4d-4c1e-9a52-0d8e6b7f1a23'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(count, forms.len() as i64);
    app.cleanup().await;
}

#[tokio::test]
async fn resent_reports_are_idempotent() {
    let app = TestApp::spawn().await;
    let instance = Uuid::new_v4();
    let yesterday = report(
        Uuid::new_v4(),
        instance,
        "2025-03-13T00:00:00Z",
        "PRODUCT_FAMILY_PMM",
        "3.1.0",
    );
    let today = report(
        Uuid::new_v4(),
        instance,
        "2025-03-14T00:00:00Z",
        "PRODUCT_FAMILY_PMM",
        "3.2.0",
    );
    assert_ok(
        app.post_report(request(std::slice::from_ref(&yesterday)))
            .await,
    )
    .await;
    let before = app.snapshot().await;
    assert_ok(
        app.post_report(request(std::slice::from_ref(&yesterday)))
            .await,
    )
    .await;
    assert_eq!(
        app.snapshot().await,
        before,
        "a re-sent report changes nothing"
    );

    // PMM re-sends yesterday's report together with today's.
    assert_ok(
        app.post_report(request(&[yesterday.clone(), today.clone()]))
            .await,
    )
    .await;
    assert_ok(app.post_report(request(&[yesterday, today])).await).await;
    assert_eq!(app.count("reports").await, 2);
    assert_eq!(
        instance_version(&app, instance).await,
        (Some("3.2.0".into()), 2)
    );
    assert_eq!(
        upgrades(&app, instance).await,
        [("3.1.0".into(), "3.2.0".into(), false)]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn upgrades_follow_create_time_whatever_the_arrival_order() {
    let app = TestApp::spawn().await;
    let versions = [
        ("2025-01-01T00:00:00Z", "3.9.1"),
        ("2025-02-01T00:00:00Z", "3.9.1"),
        ("2025-03-01T00:00:00Z", "3.10.0"),
        ("2025-04-01T00:00:00Z", "3.11.0"),
    ];
    let in_order = Uuid::new_v4();
    for (time, version) in versions {
        let body = request(&[report(
            Uuid::new_v4(),
            in_order,
            time,
            "PRODUCT_FAMILY_PMM",
            version,
        )]);
        assert_ok(app.post_report(body).await).await;
    }
    let expected = vec![
        ("3.9.1".to_owned(), "3.10.0".to_owned(), false),
        ("3.10.0".to_owned(), "3.11.0".to_owned(), false),
    ];
    assert_eq!(upgrades(&app, in_order).await, expected);
    assert_eq!(
        instance_version(&app, in_order).await,
        (Some("3.11.0".into()), 4)
    );

    // The same history arriving newest first, then a late report in the middle, one at a time.
    let reversed = Uuid::new_v4();
    for index in [3, 0, 2, 1] {
        let (time, version) = versions[index];
        let body = request(&[report(
            Uuid::new_v4(),
            reversed,
            time,
            "PRODUCT_FAMILY_PMM",
            version,
        )]);
        assert_ok(app.post_report(body).await).await;
        let current = instance_version(&app, reversed).await.0;
        assert_eq!(
            current.as_deref(),
            Some("3.11.0"),
            "a late older report never moves the version back"
        );
        assert!(
            upgrades(&app, reversed)
                .await
                .iter()
                .all(|(_, _, down)| !down),
            "no false downgrade after sending index {index}"
        );
    }
    assert_eq!(upgrades(&app, reversed).await, expected);

    // All four in one request, shuffled.
    let batched = Uuid::new_v4();
    let reports: Vec<Value> = [2, 0, 3, 1]
        .iter()
        .map(|&i| {
            report(
                Uuid::new_v4(),
                batched,
                versions[i].0,
                "PRODUCT_FAMILY_PMM",
                versions[i].1,
            )
        })
        .collect();
    assert_ok(app.post_report(request(&reports)).await).await;
    assert_eq!(upgrades(&app, batched).await, expected);

    // A real downgrade, in createTime order, is recorded and flagged as one.
    let rolled_back = Uuid::new_v4();
    for (time, version) in [
        ("2025-01-01T00:00:00Z", "3.10.0"),
        ("2025-01-02T00:00:00Z", "3.9.1"),
    ] {
        let body = request(&[report(
            Uuid::new_v4(),
            rolled_back,
            time,
            "PRODUCT_FAMILY_PMM",
            version,
        )]);
        assert_ok(app.post_report(body).await).await;
    }
    assert_eq!(
        upgrades(&app, rolled_back).await,
        [("3.10.0".into(), "3.9.1".into(), true)]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn product_version_comes_from_the_family_key() {
    let app = TestApp::spawn().await;
    let metrics = json!([
        {"key": "PMMServerVersion", "value": "3.2.0"},
        {"key": "pillar_version", "value": "8.0.36-28"},
        {"key": "version", "value": "1.1.1"}
    ]);
    let mut expected = Vec::new();
    for (family, version) in [
        ("PRODUCT_FAMILY_PMM", Some("3.2.0")),
        ("PRODUCT_FAMILY_PS", Some("8.0.36-28")),
        ("PRODUCT_FAMILY_PBS", Some("8.0.36-28")),
        ("PRODUCT_FAMILY_EVEREST", Some("1.1.1")),
    ] {
        let id = Uuid::new_v4();
        let body = json!({"reports": [{"id": id.to_string(), "createTime": "2025-01-01T00:00:00Z",
            "instanceId": Uuid::new_v4().to_string(), "productFamily": family, "metrics": metrics}]});
        assert_ok(app.post_report(body.to_string()).await).await;
        expected.push((id, version.map(str::to_owned)));
    }
    for (id, version) in expected {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT version FROM reports WHERE report_id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(stored, version);
    }
    app.cleanup().await;
}

/// `call-home.sh` sends the version as `pillar_version` whatever the product: PMM and Everest pings
/// take it when their own key is absent or empty, and never over it.
#[tokio::test]
async fn pillar_version_stands_in_for_an_absent_family_key() {
    let app = TestApp::spawn().await;
    let pillar = json!({"key": "pillar_version", "value": "3.4.0"});
    let mut expected = Vec::new();
    for (family, metrics, version) in [
        ("PRODUCT_FAMILY_PMM", json!([pillar]), "3.4.0"),
        ("PRODUCT_FAMILY_EVEREST", json!([pillar]), "3.4.0"),
        (
            "PRODUCT_FAMILY_PMM",
            json!([{"key": "PMMServerVersion", "value": ""}, pillar]),
            "3.4.0",
        ),
        (
            "PRODUCT_FAMILY_PMM",
            json!([pillar, {"key": "PMMServerVersion", "value": "3.1.0"}]),
            "3.1.0",
        ),
        (
            "PRODUCT_FAMILY_EVEREST",
            json!([pillar, {"key": "version", "value": "1.2.0"}]),
            "1.2.0",
        ),
    ] {
        let instance = Uuid::new_v4();
        let body = json!({"reports": [{"id": Uuid::new_v4().to_string(),
            "createTime": "2025-01-01T00:00:00Z", "instanceId": instance.to_string(),
            "productFamily": family, "metrics": metrics}]});
        assert_ok(app.post_report(body.to_string()).await).await;
        expected.push((instance, version));
    }
    for (instance, version) in expected {
        assert_eq!(
            instance_version(&app, instance).await,
            (Some(version.to_owned()), 1)
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    assert_ok(app.post_report(fixture("telemetry-agent-ps.json")).await).await;
    let before = app.snapshot().await;
    let valid = report(
        Uuid::new_v4(),
        Uuid::new_v4(),
        "2025-01-01T00:00:00Z",
        "PRODUCT_FAMILY_PS",
        "8.0.1",
    );
    let mut missing_id = valid.clone();
    missing_id.as_object_mut().unwrap().remove("id");
    let mut bad_uuid = valid.clone();
    bad_uuid["instanceId"] = json!("ca11b4b3-c378-49d3-85c5-2828f1e32f1");
    let mut missing_time = valid.clone();
    missing_time.as_object_mut().unwrap().remove("createTime");
    let mut bad_time = valid.clone();
    bad_time["createTime"] = json!("14/03/2025");
    let mut number_id = valid.clone();
    number_id["id"] = json!(12345);
    let mut metrics_object = valid.clone();
    metrics_object["metrics"] = json!({"key": "x"});
    let mut numeric_value = valid.clone();
    numeric_value["metrics"] = json!([{"key": "uptime", "value": 86417}]);
    let mut fraction_family = valid.clone();
    fraction_family["productFamily"] = json!(1.5);
    let mut both_names = valid.clone();
    both_names["instance_id"] = json!(Uuid::new_v4().to_string());

    let call_home_unescaped = r#"{"reports":[{"instanceId" : "060aa70b-7779-402c-8deb-22b2c1c28310","product_family" : "PRODUCT_FAMILY_PS","createTime" : "2025-01-20T14:03:11Z","id" : "58880e16-1e07-4026-9cfe-30756088588b","metrics":[{"key" : "OS","value" : "Ubuntu "22.04" \n \l"}]}]}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("invalid JSON", "{\"reports\": [".into(), "not valid JSON"),
        (
            "call-home.sh unescaped quotes",
            call_home_unescaped.into(),
            "not valid JSON",
        ),
        ("top-level array", "[]".into(), "expected a JSON object"),
        (
            "reports not an array",
            r#"{"reports": {}}"#.into(),
            "reports: expected an array",
        ),
        (
            "missing id",
            request(&[valid.clone(), missing_id]),
            "reports[1].id: is required",
        ),
        (
            "bad UUID",
            request(&[bad_uuid]),
            "reports[0].instanceId: \"ca11b4b3-c378-49d3-85c5-2828f1e32f1\" is not a UUID",
        ),
        (
            "missing createTime",
            request(&[missing_time]),
            "reports[0].createTime: is required",
        ),
        (
            "bad createTime",
            request(&[bad_time]),
            "reports[0].createTime",
        ),
        (
            "id of the wrong type",
            request(&[number_id]),
            "reports[0].id: expected a string, got a number",
        ),
        (
            "metrics of the wrong type",
            request(&[metrics_object]),
            "reports[0].metrics: expected an array",
        ),
        (
            "numeric metric value",
            request(&[numeric_value]),
            "reports[0].metrics[0].value: expected a string",
        ),
        (
            "fractional enum number",
            request(&[fraction_family]),
            "reports[0].productFamily",
        ),
        (
            "a field given under both names",
            request(&[both_names]),
            "reports[0]: duplicate field \"instance_id\"",
        ),
    ];
    for (name, body, expected_message) in cases {
        let message = assert_grpc_error(app.post_report(body).await, 400, 3).await;
        assert!(
            message.contains(expected_message),
            "{name}: message {message:?} should contain {expected_message:?}"
        );
        assert_eq!(app.snapshot().await, before, "{name}: database unchanged");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn oversized_body_and_other_methods() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 64 * 1024).await;
    let before = app.snapshot().await;
    let huge = format!(
        "{{\"reports\":[{{\"id\":\"{}\",\"padding\":\"{}\"}}]}}",
        Uuid::new_v4(),
        "x".repeat(200 * 1024)
    );
    assert_grpc_error(app.post_report(huge).await, 413, 8).await;
    assert_eq!(app.snapshot().await, before);

    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url("/v1/telemetry/GenericReport"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some("POST"),
            "{method}"
        );
        assert_grpc_error(response, 405, 12).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn many_reports_in_one_request() {
    // No limit on reports per request, as at Percona: even more than the write queue holds.
    let app = TestApp::spawn_with(|config| config.queue_capacity = 100).await;
    let reports: Vec<Value> = (0..300)
        .map(|i| {
            report(
                Uuid::new_v4(),
                Uuid::new_v4(),
                &format!("2025-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
                "PRODUCT_FAMILY_PSMDB",
                "7.0.14-8",
            )
        })
        .collect();
    assert_ok(app.post_report(request(&reports)).await).await;
    assert_eq!(app.count("reports").await, 300);
    assert_eq!(app.count("instances").await, 300);
    app.cleanup().await;
}

/// One PS report with these metrics, and its id.
fn report_with_metrics(metrics: &[(String, String)]) -> (Uuid, String) {
    let id = Uuid::new_v4();
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    let body = json!({"reports": [{"id": id.to_string(), "createTime": "2025-01-01T00:00:00Z",
        "instanceId": Uuid::new_v4().to_string(), "productFamily": "PRODUCT_FAMILY_PS",
        "metrics": metrics}]});
    (id, body.to_string())
}

#[tokio::test]
async fn whatever_percona_accepts_is_stored_exactly() {
    let app = TestApp::spawn().await;
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    // PMM packs one entry per agent into one value: about 900 agents make 69 KB.
    let agents: Vec<Value> = (0..900)
        .map(|i| json!({"1": format!("/agent_id/{}", Uuid::from_u128(i)), "2": "node", "3": "3.2.0"}))
        .collect();
    let agents = json!({ "v": agents }).to_string();
    assert!(
        (68_000..72_000).contains(&agents.len()),
        "{} bytes",
        agents.len()
    );
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "a 69 KB value",
            pairs(&[
                ("PMMServerVersion", "3.2.0"),
                ("pmm_server_agents_version", &agents),
            ]),
        ),
        (
            "6,000 metrics",
            (0..6000)
                .map(|i| (format!("m{i}"), i.to_string()))
                .collect(),
        ),
        ("a 300-byte key", pairs(&[(&"k".repeat(300), "v")])),
        (
            "NUL in key and value, next to what looks like the escape",
            pairs(&[
                ("nul\0key", "a\0b"),
                ("pillar_version", "8.0\0"),
                (r"back\slash", r"\0 \\ \u0000"),
                ("\0", "\0\\0\\\0"),
            ]),
        ),
        (
            "an 8 MiB body",
            pairs(&[("blob", &"x".repeat(8 * 1024 * 1024))]),
        ),
    ];
    for (name, metrics) in cases {
        let (id, body) = report_with_metrics(&metrics);
        assert_ok(app.post_report(body).await).await;
        let expected: Vec<(Vec<u8>, Vec<u8>)> = metrics
            .into_iter()
            .map(|(key, value)| (key.into_bytes(), value.into_bytes()))
            .collect();
        assert!(
            app.stored_metric_bytes(id).await == expected,
            "{name}: stored exactly as sent"
        );
    }
    // A version PostgreSQL text cannot hold stays in the metrics only, and breaks nothing later.
    let versions: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT version FROM reports WHERE metrics @> '[{\"key\": \"pillar_version\"}]'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(versions, vec![None]);
    telemetry_server::retention::run_once(
        &app.pool,
        Some(chrono::Duration::days(400)),
        chrono::Utc::now(),
    )
    .await
    .expect("rollups refresh and retention run over what was accepted");
    app.cleanup().await;
}

#[tokio::test]
async fn an_empty_body_and_bytes_after_the_request_are_read_as_percona_reads_them() {
    let app = TestApp::spawn().await;
    assert_ok(app.post_report("").await).await;
    assert_ok(app.post_report(" \n").await).await;
    let id = Uuid::new_v4();
    let one = request(&[report(
        id,
        Uuid::new_v4(),
        "2025-01-01T00:00:00Z",
        "PRODUCT_FAMILY_PS",
        "8.0.1",
    )]);
    assert_ok(app.post_report(format!("{one}\n{{\"not read\"")).await).await;
    assert_eq!(app.count("reports").await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn duplicate_fields_are_refused_as_protojson_refuses_them() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let id = Uuid::new_v4().to_string();
    let instance = Uuid::new_v4().to_string();
    let with = |fields: &str, metrics: &str| {
        format!(
            r#"{{"reports":[{{"id":"{id}","instanceId":"{instance}",{fields}"metrics":[{metrics}]}}]}}"#
        )
    };
    let time = r#""createTime":"2025-01-01T00:00:00Z","#;
    let cases = [
        (
            with(time, r#"{"key":"OS","value":"x","value":"y"}"#),
            r#"reports[0].metrics[0]: duplicate field "value""#,
        ),
        (
            with(&format!("{time}{time}"), ""),
            r#"reports[0]: duplicate field "createTime""#,
        ),
        (
            with(
                &format!(r#"{time}"create_time":"2025-01-01T00:00:00Z","#),
                "",
            ),
            r#"reports[0]: duplicate field "create_time""#,
        ),
        (
            r#"{"reports":[],"reports":[]}"#.to_owned(),
            r#"request: duplicate field "reports""#,
        ),
    ];
    for (body, expected) in cases {
        let message = assert_grpc_error(app.post_report(body).await, 400, 3).await;
        assert_eq!(message, expected);
    }
    assert_eq!(app.snapshot().await, before, "nothing stored");
    // Keys repeated inside unknown fields are skipped with them, as protojson skips them.
    assert_ok(
        app.post_report(with(
            &format!(r#"{time}"x":{{"a":1,"a":2}},"#),
            r#"{"key":"k","y":1,"y":2}"#,
        ))
        .await,
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn timestamps_are_read_as_protojson_reads_them() {
    let app = TestApp::spawn().await;
    let post = |created: &str| {
        let body = request(&[report(
            Uuid::new_v4(),
            Uuid::new_v4(),
            created,
            "PRODUCT_FAMILY_PS",
            "8.0.1",
        )]);
        app.post_report(body)
    };
    for created in [
        "2025-03-14T9:12:45Z",
        "2025-03-14T09:12:45,5Z",
        "2025-03-14T09:12:45.123456789-08:00",
    ] {
        assert_ok(post(created).await).await;
    }
    for created in [
        "2025-03-14t09:12:45Z",
        "2025-03-14T09:12:45z",
        "2025-03-14 09:12:45Z",
        "2025-03-14T09:12:60Z",
        "2025-03-14T09:12:45.1234567890Z",
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
    ] {
        let message = assert_grpc_error(post(created).await, 400, 3).await;
        assert!(
            message.starts_with("reports[0].createTime: "),
            "{created}: {message}"
        );
    }
    app.cleanup().await;
}

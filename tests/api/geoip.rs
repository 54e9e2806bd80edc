//! Country lookup through real HTTP with real .mmdb files: every database format, broken and corrupt
//! files at start-up and on reload, swapping the file under load, SIGHUP to the real binary, and who
//! may set the client address. The test client always connects from loopback (no country), so public addresses
//! reach the service through a trusted proxy's X-Forwarded-For.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::binary::Service;
use crate::common::{TestApp, drop_database, fresh_database, test_config, test_data};
use serde_json::json;
use telemetry_server::config::Config;
use telemetry_server::geoip::{RecordLayout, ReloadStatus};
use telemetry_server::server;
use uuid::Uuid;

const COUNTRY_TEST: &str = "GeoIP2-Country-Test.mmdb";
const BROKEN: [&str; 3] = [
    "GeoIP2-City-Test-Broken-Double-Format.mmdb",
    "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
    "corrupt-search-tree.mmdb",
];

/// Upper bound for waiting on the file watcher; a safety net against hanging, not a speed claim.
const WATCH_TIMEOUT: Duration = Duration::from_secs(60);

fn bundled_database() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/geo-whois-asn-country.mmdb")
}

fn trust_loopback(config: &mut Config) {
    config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}

/// The service with `database` and the loopback test client as a trusted proxy.
async fn spawn_with_database(database: &Path) -> TestApp {
    let database = database.to_owned();
    TestApp::spawn_with(move |config| {
        config.geoip_database = Some(database);
        trust_loopback(config);
    })
    .await
}

fn one_report(instance: Uuid) -> String {
    json!({"reports": [{
        "id": Uuid::new_v4().to_string(),
        "createTime": "2025-06-01T10:00:00Z",
        "instanceId": instance.to_string(),
        "productFamily": "PRODUCT_FAMILY_PS",
        "metrics": [{"key": "pillar_version", "value": "8.0.36-28"}]
    }]})
    .to_string()
}

/// Sends one report with the given forwarding headers and returns its instance, once stored.
async fn send_with(app: &TestApp, headers: &[(&str, &str)]) -> Uuid {
    let raw: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    send_with_bytes(app, &raw).await
}

/// [`send_with`] for header values that are not text, as a hostile client may send them.
async fn send_with_bytes(app: &TestApp, headers: &[(&str, &[u8])]) -> Uuid {
    let instance = Uuid::new_v4();
    let mut request = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .header("content-type", "application/json")
        .body(one_report(instance));
    for (name, value) in headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        panic!("status {status}: {}", response.text().await.unwrap());
    }
    instance
}

/// The country stored for an instance, checked to agree between `reports` and `instances`.
async fn stored_country(app: &TestApp, instance: Uuid) -> Option<String> {
    let report: Option<String> =
        sqlx::query_scalar("SELECT country_code FROM reports WHERE instance_id = $1")
            .bind(instance)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let latest: Option<String> =
        sqlx::query_scalar("SELECT country_code FROM instances WHERE instance_id = $1")
            .bind(instance)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(report, latest, "reports and instances disagree");
    report
}

/// The country stored for a report forwarded by the trusted loopback proxy for `client`.
async fn country_of(app: &TestApp, client: &str) -> Option<String> {
    let instance = send_with(app, &[("x-forwarded-for", client)]).await;
    stored_country(app, instance).await
}

async fn assert_countries(app: &TestApp, expected: &[(&str, Option<&str>)]) {
    for (client, country) in expected {
        assert_eq!(
            country_of(app, client).await.as_deref(),
            *country,
            "country of {client}"
        );
    }
}

/// Waits until the service has made a reload attempt after the `before` state, and returns the status.
async fn next_reload(app: &TestApp, before: &ReloadStatus) -> ReloadStatus {
    let mut status = app.server().geoip.reload_status();
    let attempts = before.attempts;
    tokio::time::timeout(
        WATCH_TIMEOUT,
        status.wait_for(|status| status.attempts > attempts),
    )
    .await
    .expect("the watcher tried to reload")
    .unwrap()
    .clone()
}

fn reload_status(app: &TestApp) -> ReloadStatus {
    app.server().geoip.reload_status().borrow().clone()
}

/// Replaces `target` atomically by renaming a copy of `source` over it, as geoipupdate does.
fn replace_file(source: &Path, target: &Path) {
    let staging = target.with_extension("new");
    std::fs::copy(source, &staging).unwrap();
    std::fs::rename(&staging, target).unwrap();
}

#[tokio::test]
async fn maxmind_country_databases_give_known_countries() {
    for database in [COUNTRY_TEST, "GeoLite2-Country-Test.mmdb"] {
        let app = spawn_with_database(&test_data(database)).await;
        assert_eq!(app.server().geoip.current().layout(), RecordLayout::MaxMind);
        assert_countries(
            &app,
            &[
                // `country` wins over `registered_country` (US for this network).
                ("81.2.69.142", Some("GB")),
                ("89.160.20.112", Some("SE")),
                ("2001:218::", Some("JP")),
                ("2001:218::1", Some("JP")),
                // IPv4-mapped IPv6 is looked up as IPv4.
                ("::ffff:81.2.69.142", Some("GB")),
                // Not in the database.
                ("8.8.8.8", None),
                // Private, loopback, link-local and documentation addresses never have a country.
                ("10.1.2.3", None),
                ("192.168.1.1", None),
                ("fe80::1", None),
                ("2001:db8::1", None),
            ],
        )
        .await;
        app.cleanup().await;
    }
}

#[tokio::test]
async fn city_databases_work() {
    for database in ["GeoIP2-City-Test.mmdb", "GeoLite2-City-Test.mmdb"] {
        let app = spawn_with_database(&test_data(database)).await;
        assert_eq!(app.server().geoip.current().layout(), RecordLayout::MaxMind);
        assert_countries(
            &app,
            &[
                ("81.2.69.142", Some("GB")),
                ("89.160.20.112", Some("SE")),
                ("2001:218::", Some("JP")),
                ("175.16.199.1", Some("CN")),
            ],
        )
        .await;
        app.cleanup().await;
    }
}

#[tokio::test]
async fn anycast_without_country_gives_null() {
    // 214.1.1.0/24 is an anycast network whose record has neither country nor registered country.
    for database in [COUNTRY_TEST, "GeoIP2-City-Test.mmdb"] {
        let app = spawn_with_database(&test_data(database)).await;
        assert_countries(&app, &[("214.1.1.1", None)]).await;
        app.cleanup().await;
    }
}

#[tokio::test]
async fn absent_country_falls_back_to_the_registered_country() {
    // The Country test database with the `country` key renamed in every record (the key string is
    // stored once and shared), so each record keeps only `registered_country`: US for 81.2.69.142,
    // DE for 89.160.20.112, where `country` said GB and SE.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(test_data(COUNTRY_TEST)).unwrap();
    let key = b"\x47country";
    let renamed = b"\x47xountry";
    let mut patched = Vec::with_capacity(bytes.len());
    let mut rest = bytes.as_slice();
    let mut replaced = 0;
    while let Some(at) = rest.windows(key.len()).position(|window| window == key) {
        patched.extend_from_slice(&rest[..at]);
        patched.extend_from_slice(renamed);
        rest = &rest[at + key.len()..];
        replaced += 1;
    }
    patched.extend_from_slice(rest);
    assert!(replaced > 0, "the key string was found");
    let database = dir.path().join("registered-only.mmdb");
    std::fs::write(&database, patched).unwrap();

    let app = spawn_with_database(&database).await;
    assert_countries(
        &app,
        &[
            ("81.2.69.142", Some("US")),
            ("89.160.20.112", Some("DE")),
            ("214.1.1.1", None),
        ],
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn bundled_database_works_without_configuration() {
    let app = TestApp::spawn_with(trust_loopback).await;
    let current = app.server().geoip.current();
    assert_eq!(current.path(), bundled_database());
    assert_eq!(current.layout(), RecordLayout::CountryCode);
    assert_countries(
        &app,
        &[
            ("8.8.8.8", Some("US")),
            ("81.2.69.142", Some("GB")),
            ("89.160.20.112", Some("SE")),
            ("2001:4860:4860::8888", Some("US")),
            ("::ffff:8.8.8.8", Some("US")),
            ("172.16.0.1", None),
        ],
    )
    .await;
    app.cleanup().await;
}

/// A configuration whose PostgreSQL cannot be reached, so that start-up can only fail: at the GeoIP
/// database (what these tests expect) or else at the database, with a message that is not about GeoIP.
fn unreachable_config(database: &Path) -> Config {
    let mut config = test_config("postgres://postgres@127.0.0.1:1/unreachable");
    config.database_startup_timeout_secs = 0;
    config.geoip_database = Some(database.to_owned());
    config
}

#[tokio::test]
async fn broken_and_corrupt_databases_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mmdb");
    let cases = [
        (test_data(BROKEN[0]), "corrupt"),
        (test_data(BROKEN[1]), "invalid database"),
        (test_data(BROKEN[2]), "no country data"),
        (missing, "No such file"),
        (
            test_data("GeoIP2-City-Test.source.json"),
            "could not find MaxMind DB metadata",
        ),
    ];
    for (database, reason) in cases {
        let error = match server::start(&unreachable_config(&database)).await {
            Ok(_) => panic!("{} was accepted", database.display()),
            Err(error) => error.to_string(),
        };
        assert!(
            error.contains(&database.display().to_string()),
            "{error:?} names the path"
        );
        assert!(
            error.contains(reason),
            "{error:?} gives the reason {reason:?}"
        );
    }
}

#[tokio::test]
async fn the_binary_exits_with_the_path_and_reason() {
    let database = test_data(BROKEN[0]);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemetry-server"))
        .env_clear()
        .env("GEOIP_DATABASE", &database)
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/unreachable",
        )
        .env("DATABASE_STARTUP_TIMEOUT_SECS", "0")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "telemetry-server: GeoIP database {} is corrupt",
            database.display()
        )),
        "stderr: {stderr}"
    );
}

#[tokio::test]
async fn broken_and_corrupt_replacements_are_refused_and_the_old_database_stays() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("country.mmdb");
    std::fs::copy(test_data(COUNTRY_TEST), &database).unwrap();
    let watched = database.clone();
    let app = TestApp::spawn_with(move |config| {
        config.geoip_database = Some(watched);
        config.geoip_reload_interval_secs = 1;
        trust_loopback(config);
    })
    .await;
    assert_countries(&app, &[("67.43.156.1", Some("BT"))]).await;

    let missing = dir.path().join("not-an-mmdb.json");
    std::fs::copy(test_data("GeoIP2-City-Test.source.json"), &missing).unwrap();
    let mut replacements: Vec<PathBuf> = BROKEN.iter().map(|name| test_data(name)).collect();
    replacements.push(missing);
    for replacement in replacements {
        let before = reload_status(&app);
        replace_file(&replacement, &database);
        let after = next_reload(&app, &before).await;
        let refusal = after
            .last_refusal
            .unwrap_or_else(|| panic!("{} was accepted", replacement.display()));
        assert!(
            refusal.contains(&database.display().to_string()),
            "{refusal:?} names the path"
        );
        assert_eq!(after.loaded, 0);
        assert_eq!(
            app.server().geoip.current().database_type(),
            "GeoIP2-Country"
        );
        assert_countries(&app, &[("67.43.156.1", Some("BT"))]).await;
    }

    // A good file after the bad ones is taken, once, and the refusal is cleared.
    let before = reload_status(&app);
    replace_file(&bundled_database(), &database);
    let after = next_reload(&app, &before).await;
    assert_eq!((after.loaded, after.last_refusal), (1, None));
    assert_countries(&app, &[("67.43.156.1", Some("US"))]).await;
    app.cleanup().await;
}

#[tokio::test]
async fn swapping_the_file_under_load_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("country.mmdb");
    std::fs::copy(test_data(COUNTRY_TEST), &database).unwrap();
    let watched = database.clone();
    let app = Arc::new(
        TestApp::spawn_with(move |config| {
            config.geoip_database = Some(watched);
            config.geoip_reload_interval_secs = 1;
            trust_loopback(config);
        })
        .await,
    );
    // 67.43.156.1 is BT in the MaxMind test database and US in the bundled one.
    assert_countries(&app, &[("67.43.156.1", Some("BT"))]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut sent = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // send_with asserts the 200.
                    sent.push(send_with(&app, &[("x-forwarded-for", "67.43.156.1")]).await);
                }
                sent
            })
        })
        .collect();

    let before = reload_status(&app);
    replace_file(&bundled_database(), &database);
    let after = next_reload(&app, &before).await;
    assert_eq!((after.loaded, after.last_refusal), (1, None));
    // Keep the load on for a while after the swap too.
    let reports_after_swap = app.count("reports").await + 40;
    tokio::time::timeout(WATCH_TIMEOUT, async {
        while app.count("reports").await < reports_after_swap {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the senders keep going");
    stop.store(true, Ordering::Relaxed);

    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await.expect("no request failed"));
    }
    assert!(sent.len() >= 40);
    let mut seen = std::collections::BTreeSet::new();
    for instance in sent {
        seen.insert(stored_country(&app, instance).await);
    }
    // Every report got the old or the new country, never none.
    assert!(
        seen.iter()
            .all(|country| matches!(country.as_deref(), Some("BT" | "US"))),
        "{seen:?}"
    );
    assert!(seen.contains(&Some("US".to_owned())), "{seen:?}");
    assert_countries(&app, &[("67.43.156.1", Some("US"))]).await;
    Arc::into_inner(app)
        .expect("every sender is done")
        .cleanup()
        .await;
}

/// The country the binary stored for a report its trusted loopback proxy forwarded for `client`.
async fn binary_country_of(service: &Service, pool: &sqlx::PgPool, client: &str) -> Option<String> {
    let instance = Uuid::new_v4();
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/telemetry/GenericReport",
            service.port
        ))
        .header("x-forwarded-for", client)
        .body(one_report(instance))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    sqlx::query_scalar("SELECT country_code FROM reports WHERE instance_id = $1")
        .bind(instance)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// In its own process, as a signal reaches every service in the process it is sent to.
#[tokio::test]
async fn sighup_reloads_the_database_and_a_refusal_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("country.mmdb");
    std::fs::copy(test_data(COUNTRY_TEST), &database).unwrap();
    let (database_name, database_url) = fresh_database().await;
    let mut service = Service::start(&[
        ("DATABASE_URL", database_url.clone()),
        ("GEOIP_DATABASE", database.display().to_string()),
        // No polling: only the signal can make the service notice the new file.
        ("GEOIP_RELOAD_INTERVAL_SECS", "0".to_owned()),
        ("TRUSTED_PROXIES", "127.0.0.0/8".to_owned()),
        ("NO_COLOR", "1".to_owned()),
    ])
    .await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await
        .unwrap();
    assert_eq!(
        binary_country_of(&service, &pool, "67.43.156.1")
            .await
            .as_deref(),
        Some("BT")
    );

    replace_file(&test_data(BROKEN[0]), &database);
    service.signal("HUP");
    let refused = service.wait_for_line(|line| line.contains("refused")).await;
    assert!(refused.contains("ERROR"), "{refused}");
    assert!(
        refused.contains(&format!("GeoIP database {} is corrupt", database.display())),
        "the line names the path and the reason: {refused}"
    );
    assert_eq!(
        binary_country_of(&service, &pool, "67.43.156.1")
            .await
            .as_deref(),
        Some("BT")
    );

    replace_file(&bundled_database(), &database);
    service.signal("HUP");
    service
        .wait_for_line(|line| line.contains("GeoIP database reloaded"))
        .await;
    assert_eq!(
        binary_country_of(&service, &pool, "67.43.156.1")
            .await
            .as_deref(),
        Some("US")
    );

    pool.close().await;
    service.stop().await;
    drop_database(&database_name).await;
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let database = test_data(COUNTRY_TEST);
    let app = TestApp::spawn_with(move |config| config.geoip_database = Some(database)).await;
    for headers in [
        vec![("x-forwarded-for", "81.2.69.142")],
        vec![("forwarded", "for=81.2.69.142")],
        vec![("x-forwarded-for", "10.0.0.1, 81.2.69.142")],
        vec![("x-real-ip", "81.2.69.142")],
    ] {
        let instance = send_with(&app, &headers).await;
        assert_eq!(stored_country(&app, instance).await, None, "{headers:?}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_trusted_proxy_is_honoured() {
    let app = spawn_with_database(&test_data(COUNTRY_TEST)).await;
    let instance = send_with(&app, &[("x-forwarded-for", "81.2.69.142")]).await;
    assert_eq!(stored_country(&app, instance).await.as_deref(), Some("GB"));
    // Without a header the trusted proxy itself is the client: loopback, no country.
    let instance = send_with(&app, &[]).await;
    assert_eq!(stored_country(&app, instance).await, None);
    // A trusted proxy that forwards something that is not an address: unknown client.
    let instance = send_with(&app, &[("x-forwarded-for", "unknown")]).await;
    assert_eq!(stored_country(&app, instance).await, None);
    app.cleanup().await;
}

#[tokio::test]
async fn a_proxy_chain_gives_the_right_most_untrusted_hop() {
    let database = test_data(COUNTRY_TEST);
    let app = TestApp::spawn_with(move |config| {
        config.geoip_database = Some(database);
        config.trusted_proxies = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    })
    .await;
    // The client claimed 89.160.20.112 (SE); the edge proxy saw 81.2.69.142 (GB) and the inner
    // proxy 10.1.2.3 forwarded to the service.
    let chains: [&[(&str, &str)]; 2] = [
        &[("x-forwarded-for", "89.160.20.112, 81.2.69.142, 10.1.2.3")],
        &[
            ("x-forwarded-for", "89.160.20.112"),
            ("x-forwarded-for", "81.2.69.142, 10.1.2.3"),
        ],
    ];
    for headers in chains {
        let instance = send_with(&app, headers).await;
        assert_eq!(
            stored_country(&app, instance).await.as_deref(),
            Some("GB"),
            "{headers:?}"
        );
    }
    app.cleanup().await;
}

/// The service with the GeoIP test database, behind a trusted loopback proxy that appends to
/// `Forwarded`.
async fn spawn_behind_forwarded_proxy() -> TestApp {
    let database = test_data(COUNTRY_TEST);
    TestApp::spawn_with(move |config| {
        config.geoip_database = Some(database);
        config.forwarded_header = telemetry_server::client_ip::ForwardedHeader::Forwarded;
        trust_loopback(config);
    })
    .await
}

#[tokio::test]
async fn only_the_configured_forwarding_header_is_read() {
    // A proxy appends to one header and passes the other through as the client wrote it.
    let headers = [
        ("x-forwarded-for", "89.160.20.112"),
        ("forwarded", "for=81.2.69.142"),
    ];
    let app = spawn_with_database(&test_data(COUNTRY_TEST)).await;
    let instance = send_with(&app, &headers).await;
    assert_eq!(stored_country(&app, instance).await.as_deref(), Some("SE"));
    app.cleanup().await;

    let app = spawn_behind_forwarded_proxy().await;
    let instance = send_with(&app, &headers).await;
    assert_eq!(stored_country(&app, instance).await.as_deref(), Some("GB"));
    let instance = send_with(
        &app,
        &[(
            "forwarded",
            "for=\"[2001:218::1]:4711\";proto=https, for=127.0.0.1",
        )],
    )
    .await;
    assert_eq!(stored_country(&app, instance).await.as_deref(), Some("JP"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_client_behind_a_proxy_cannot_choose_its_country() {
    let app = spawn_behind_forwarded_proxy().await;
    // The proxy appended an element without `for=`, and a quoted comma is not a list separator:
    // neither the client's GB nor its SE is believed.
    for forwarded in [
        "for=81.2.69.142, by=127.0.0.1;proto=https",
        "for=\"81.2.69.142, for=89.160.20.112\"",
    ] {
        let instance = send_with(&app, &[("forwarded", forwarded)]).await;
        assert_eq!(stored_country(&app, instance).await, None, "{forwarded}");
    }
    app.cleanup().await;

    let database = test_data(COUNTRY_TEST);
    let app = TestApp::spawn_with(move |config| {
        config.geoip_database = Some(database);
        trust_loopback(config);
    })
    .await;
    // A byte outside ASCII left of the address our proxy appended refuses only itself.
    let instance = send_with_bytes(&app, &[("x-forwarded-for", b"\xe9, 89.160.20.112")]).await;
    assert_eq!(stored_country(&app, instance).await.as_deref(), Some("SE"));
    app.cleanup().await;
}

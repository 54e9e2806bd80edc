//! The client address exists only for the country lookup. The real binary runs with every log
//! target at trace level; reports and bad requests come from several loopback source addresses
//! (IPv4 and IPv6, direct; one of them until it is rate limited) and from public addresses
//! forwarded by a trusted proxy, over GenericReport and PMM 2's JSON and v1 text protocols. Then a full `pg_dump` of its database, every line it logged, every
//! response it gave and its metrics are searched for each address in every textual form.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::binary::Service;
use common::{drop_database, fixture, fresh_database, test_data};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// Direct clients: the service sees these as TCP peers.
const DIRECT_V4: &str = "127.0.0.2";
const DIRECT_V6: &str = "::1";
/// The trusted reverse proxy, and the public clients it forwards (with their test-database country).
const PROXY: &str = "127.0.0.3";
const FORWARDED: [(&str, &str); 3] = [
    ("81.2.69.142", "GB"),
    ("89.160.20.112", "SE"),
    ("2001:218::1", "JP"),
];
/// What a direct, untrusted client claims to be: ignored, and not written anywhere either.
const SPOOFED: &str = "175.16.199.1";

/// Every way an address is commonly written: dotted quad, reversed for in-addr.arpa, IPv6
/// compressed, uncompressed and zero-padded, IPv4-mapped (both notations), hex and decimal integer.
fn textual_forms(ip: IpAddr) -> Vec<String> {
    fn v6_forms(v6: Ipv6Addr) -> Vec<String> {
        let segments = v6.segments();
        let hex: String = segments.iter().map(|s| format!("{s:04x}")).collect();
        vec![
            v6.to_string(),
            segments.map(|s| format!("{s:x}")).join(":"),
            segments.map(|s| format!("{s:04x}")).join(":"),
            hex,
        ]
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let mapped = v4.to_ipv6_mapped();
            let [.., high, low] = mapped.segments();
            let mut forms = vec![
                v4.to_string(),
                format!("{d}.{c}.{b}.{a}"),
                format!("::ffff:{v4}"),
                format!("::ffff:{high:x}:{low:x}"),
                format!("{:08x}", u32::from(v4)),
                u32::from(v4).to_string(),
            ];
            forms.extend(v6_forms(mapped));
            forms.sort();
            forms.dedup();
            forms
        }
        IpAddr::V6(v6) => v6_forms(v6),
    }
}

/// A client whose connections come from `source`.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .no_proxy()
        .build()
        .unwrap()
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

/// Everything the clients got back, to be searched as well.
#[derive(Default)]
struct Responses(String);

impl Responses {
    async fn send(&mut self, request: reqwest::RequestBuilder, expected_status: u16) {
        let (status, body) = self.send_any(request).await;
        assert_eq!(status, expected_status, "{body}");
    }

    async fn send_any(&mut self, request: reqwest::RequestBuilder) -> (u16, String) {
        let response = request
            .send()
            .await
            .expect("the request reaches the service");
        let status = response.status().as_u16();
        self.0.push_str(&format!("{:?}\n", response.headers()));
        let body = response.text().await.unwrap();
        self.0.push_str(&body);
        self.0.push('\n');
        (status, body)
    }
}

async fn no_address_is_kept(log_format: &str) {
    let (database_name, database_url) = fresh_database().await;
    let service = Service::start(&[
        ("DATABASE_URL", database_url.clone()),
        ("RUST_LOG", "trace".to_owned()),
        ("LOG_FORMAT", log_format.to_owned()),
        (
            "GEOIP_DATABASE",
            test_data("GeoIP2-Country-Test.mmdb").display().to_string(),
        ),
        ("TRUSTED_PROXIES", format!("{PROXY}/32")),
        // Low enough for the last step below to reach it, high enough for everything before.
        ("RATE_LIMIT_PER_MINUTE", "1".to_owned()),
        ("RATE_LIMIT_BURST", "10".to_owned()),
    ])
    .await;
    let v4_url = format!("http://127.0.0.1:{}", service.port);
    let v6_url = format!("http://[::1]:{}", service.port);
    let ingest = "/v1/telemetry/GenericReport";
    let mut responses = Responses::default();
    let mut direct_instances = Vec::new();

    for (source, base) in [(DIRECT_V4, &v4_url), (DIRECT_V6, &v6_url)] {
        let client = client_from(source);
        let post = |body: String| {
            client
                .post(format!("{base}{ingest}"))
                .header("content-type", "application/json")
                .body(body)
        };
        let instance = Uuid::new_v4();
        direct_instances.push(instance);
        responses.send(post(one_report(instance)), 200).await;
        // An untrusted peer's forwarding headers are ignored, and not recorded either.
        let instance = Uuid::new_v4();
        direct_instances.push(instance);
        let spoofing = post(one_report(instance))
            .header("x-forwarded-for", SPOOFED)
            .header("forwarded", format!("for={SPOOFED}"));
        responses.send(spoofing, 200).await;
        responses.send(post("{not json".to_owned()), 400).await;
        responses
            .send(post(r#"{"reports":[{"id":"not-a-uuid"}]}"#.to_owned()), 400)
            .await;
        responses
            .send(client.get(format!("{base}{ingest}")), 405)
            .await;
        responses
            .send(client.get(format!("{base}/nowhere")), 404)
            .await;
        responses
            .send(client.get(format!("{base}/healthz")), 200)
            .await;
        // PMM 2's JSON protocol, valid and invalid.
        let legacy = |body: Vec<u8>| {
            client
                .post(format!("{base}/v1/telemetry/Report"))
                .header("content-type", "application/json")
                .body(body)
        };
        responses
            .send(legacy(fixture("legacy-pmm2-servermetric-report.json")), 200)
            .await;
        responses
            .send(legacy(br#"{"events":[{"id":"x"}]}"#.to_vec()), 400)
            .await;
    }

    // The rate limiter keys on the client address (hashed): drive one client into it.
    let limited = client_from(DIRECT_V4);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let request = limited
            .post(format!("{v4_url}{ingest}"))
            .header("content-type", "application/json")
            .body(one_report(Uuid::new_v4()));
        statuses.push(responses.send_any(request).await.0);
    }
    assert!(statuses.contains(&429), "rate limited: {statuses:?}");

    let proxy = client_from(PROXY);
    let mut forwarded_instances = Vec::new();
    let mut forwarded_v1_instances = Vec::new();
    for (client, _) in FORWARDED {
        let post = || {
            proxy
                .post(format!("{v4_url}{ingest}"))
                .header("content-type", "application/json")
                .header("x-forwarded-for", client)
        };
        let instance = Uuid::new_v4();
        forwarded_instances.push(instance);
        responses.send(post().body(one_report(instance)), 200).await;
        responses.send(post().body("[]"), 400).await;
        // PMM 2's v1 plain-text protocol.
        let instance = Uuid::new_v4();
        forwarded_v1_instances.push(instance);
        let v1 = proxy
            .post(format!("{v4_url}/v1/pmm-version-check"))
            .header("content-type", "plain/text")
            .header("x-forwarded-for", client)
            .body(format!("{};PMM;2.9.1\n", instance.simple()));
        responses.send(v1, 200).await;
    }
    let metrics = proxy
        .get(format!("{v4_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let log = service.stop().await.join("\n");
    let dump = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--dbname", &database_url])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8(dump.stdout).unwrap();

    // The searched texts are the real thing: every request was traced (tower-http's request events
    // are the most verbose lines there are), and the reports are in the dump.
    assert!(
        log.contains("DEBUG"),
        "debug lines logged:
{log}"
    );
    let traced_requests = log
        .lines()
        .filter(|line| line.contains("finished processing request"))
        .count();
    assert!(traced_requests >= 20, "{traced_requests} requests traced");
    for instance in direct_instances.iter().chain(&forwarded_instances) {
        assert!(
            dump.contains(&instance.to_string()),
            "{instance} in the dump"
        );
    }
    assert!(metrics.contains("telemetry_geoip_lookups_total"));

    // And so the search can fail: the expected countries are stored.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await
        .unwrap();
    for (instances, (_, country)) in forwarded_instances
        .iter()
        .zip(&forwarded_v1_instances)
        .zip(FORWARDED)
    {
        let (instance, v1_instance) = instances;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT country_code FROM instances WHERE instance_id = $1")
                .bind(v1_instance)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(stored.as_deref(), Some(country), "v1 protocol");
        let stored: Option<String> =
            sqlx::query_scalar("SELECT country_code FROM instances WHERE instance_id = $1")
                .bind(instance)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(stored.as_deref(), Some(country));
    }
    let direct: Vec<Option<String>> =
        sqlx::query_scalar("SELECT country_code FROM reports WHERE instance_id = ANY($1)")
            .bind(&direct_instances)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(direct, vec![None; direct_instances.len()]);
    pool.close().await;

    let addresses = [DIRECT_V4, DIRECT_V6, PROXY, SPOOFED]
        .into_iter()
        .chain(FORWARDED.map(|(ip, _)| ip));
    let places = [
        ("pg_dump", dump.to_ascii_lowercase()),
        ("log", log.to_ascii_lowercase()),
        ("responses", responses.0.to_ascii_lowercase()),
        ("metrics", metrics.to_ascii_lowercase()),
    ];
    let mut found = Vec::new();
    for address in addresses {
        for form in textual_forms(address.parse().unwrap()) {
            for (place, text) in &places {
                if let Some(at) = text.find(&form) {
                    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                    found.push(format!(
                        "{form} ({address}) in {place}: {}",
                        &text[start..end]
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "client addresses were kept:\n{}",
        found.join("\n")
    );
    drop_database(&database_name).await;
}

#[tokio::test]
async fn no_address_in_database_plain_logs_responses_or_metrics() {
    no_address_is_kept("plain").await;
}

#[tokio::test]
async fn no_address_in_database_json_logs_responses_or_metrics() {
    no_address_is_kept("json").await;
}

#[test]
fn textual_forms_cover_the_usual_notations() {
    let v4 = textual_forms(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)));
    for form in [
        "81.2.69.142",
        "142.69.2.81",
        "::ffff:81.2.69.142",
        "::ffff:5102:458e",
        "5102458e",
        "1359103374",
        "0:0:0:0:0:ffff:5102:458e",
        "0000:0000:0000:0000:0000:ffff:5102:458e",
    ] {
        assert!(v4.contains(&form.to_owned()), "{form} in {v4:?}");
    }
    let v6 = textual_forms("2001:218::1".parse().unwrap());
    for form in [
        "2001:218::1",
        "2001:218:0:0:0:0:0:1",
        "2001:0218:0000:0000:0000:0000:0000:0001",
        "20010218000000000000000000000001",
    ] {
        assert!(v6.contains(&form.to_owned()), "{form} in {v6:?}");
    }
}

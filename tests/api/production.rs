//! Running on the open internet: limits, gzip and zip bombs, rate limiting, slow clients, database
//! outages, TLS with HTTP/2 and certificate reload, health and metrics endpoints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::common::binary::Service;
use crate::common::{self, TestApp, assert_grpc_error, fixture};
use serde_json::json;
use telemetry_server::store::{self, DatabaseSettings};
use uuid::Uuid;

fn one_report(metrics: serde_json::Value) -> String {
    json!({"reports": [{"id": Uuid::new_v4().to_string(), "createTime": "2025-01-01T00:00:00Z",
        "instanceId": Uuid::new_v4().to_string(), "productFamily": "PRODUCT_FAMILY_PS", "metrics": metrics}]})
    .to_string()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_bombs_refused() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 1024 * 1024).await;
    let response = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .header("content-encoding", "gzip")
        .body(gzip(&fixture("pmm-generic-report-1.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("reports").await, 1);

    // Several gzip members one after another are one body, as Go's gzip reader reads them; the
    // coding is matched in any letter case.
    let body = fixture("telemetry-agent-ps.json");
    let (first, rest) = body.split_at(body.len() / 2);
    let members = [gzip(first), gzip(rest)].concat();
    let response = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .header("content-encoding", "GZip")
        .body(members)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("reports").await, 2);
    let before = app.snapshot().await;

    // 64 MiB of spaces inflate from about 64 KiB: refused once the inflated size passes the limit.
    let mut bomb = b"{\"reports\":[] ".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 64 * 1024 * 1024));
    bomb.push(b'}');
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 1024 * 1024);
    let response = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .header("content-encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_grpc_error(response, 413, 8).await;

    // Corrupt gzip is the client's fault, not ours.
    let response = app
        .client
        .post(app.url("/v1/telemetry/GenericReport"))
        .header("content-encoding", "gzip")
        .body(b"\x1f\x8b\x08\x00garbage".to_vec())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_client_error(),
        "corrupt gzip gets a 4xx, got {}",
        response.status()
    );
    assert_eq!(app.snapshot().await, before);
    app.cleanup().await;
}

#[tokio::test]
async fn rate_limit_per_client() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_per_minute = 6;
        config.rate_limit_burst = 3;
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let send = |client: &'static str| {
        app.client
            .post(app.url("/v1/telemetry/GenericReport"))
            .header("x-forwarded-for", client)
            .body(one_report(json!([])))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(send("203.0.113.7").await.unwrap().status(), 200);
    }
    let limited = send("203.0.113.7").await.unwrap();
    assert_eq!(
        limited.status(),
        429,
        "the fourth request in a burst of three"
    );
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "Retry-After {retry_after}");
    let message = assert_grpc_error(limited, 429, 8).await;
    assert!(
        !message.contains("203.0.113.7"),
        "the address is not echoed"
    );
    assert_eq!(
        send("198.51.100.20").await.unwrap().status(),
        200,
        "another client has its own budget"
    );
    assert_eq!(app.count("reports").await, 4);

    // Rotating addresses within one IPv6 /64 is one client.
    let rotated = [
        "2001:db8:7:1::1",
        "2001:db8:7:1::2",
        "2001:db8:7:1:8000::3",
        "2001:db8:7:1:ffff:ffff:ffff:ffff",
    ];
    let mut statuses = Vec::new();
    for client in rotated {
        statuses.push(send(client).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(send("2001:db8:7:2::1").await.unwrap().status(), 200);

    // Junk outside ASCII left of the real address does not put clients in one shared bucket.
    for client in [
        "198.51.100.31",
        "198.51.100.32",
        "198.51.100.33",
        "198.51.100.34",
    ] {
        let response = app
            .client
            .post(app.url("/v1/telemetry/GenericReport"))
            .header(
                "x-forwarded-for",
                reqwest::header::HeaderValue::from_bytes(format!("\u{e9}, {client}").as_bytes())
                    .unwrap(),
            )
            .body(one_report(json!([])))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{client}");
    }
    app.cleanup().await;
}

// Multi-threaded: the test blocks on plain sockets while the server keeps running on other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_get_408_or_lose_the_connection() {
    let app = TestApp::spawn_with(|config| {
        config.request_timeout_secs = 1;
        config.header_read_timeout_secs = 2;
    })
    .await;
    let address = app.base_url.trim_start_matches("http://").to_owned();

    // A body that never finishes arriving.
    let mut slow_body = TcpStream::connect(&address).unwrap();
    write!(
        slow_body,
        "POST /v1/telemetry/GenericReport HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"reports\""
    )
    .unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let read = slow_body.read(&mut buffer).unwrap();
    let answer = String::from_utf8_lossy(&buffer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "got {answer:?}");
    assert!(answer.contains("\"code\":4"));
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "got {answer:?}"
    );
    assert!(
        answer.contains("referrer-policy: no-referrer"),
        "got {answer:?}"
    );

    // Slowloris: many connections trickling headers hold nothing for long, and others are served.
    let mut trickling: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream
                .write_all(b"POST /v1/telemetry/GenericReport HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    let response = app.post_report(fixture("telemetry-agent-ps.json")).await;
    assert_eq!(
        response.status(),
        200,
        "served while 100 connections dawdle"
    );
    for stream in &mut trickling {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buffer = Vec::new();
        // The server closes the connection (EOF, possibly after a 408) instead of waiting forever.
        let closed = stream.read_to_end(&mut buffer).is_ok();
        assert!(closed, "connection closed by the server");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "ok");

    assert_eq!(
        app.post_report(fixture("everest-report.json"))
            .await
            .status(),
        200
    );
    assert_eq!(app.post_report("{").await.status(), 400);
    // A method a client makes up is labelled `other`, so clients cannot add label values.
    let invented = reqwest::Method::from_bytes(b"INVENTED").unwrap();
    app.client
        .request(invented, app.url("/v1/telemetry/GenericReport"))
        .send()
        .await
        .unwrap();
    let twice = r#"{"reports":[{"id":"6f1f4b48-5a4e-4a2f-9d0c-2a3b4c5d6e7f","id":"6f1f4b48-5a4e-4a2f-9d0c-2a3b4c5d6e7f"}]}"#;
    assert_eq!(app.post_report(twice).await.status(), 400);
    let metrics = app.metrics_text().await;
    for expected in [
        "telemetry_http_requests_total{route=\"/v1/telemetry/GenericReport\",method=\"POST\",status=\"200\"}",
        "telemetry_http_request_duration_seconds_bucket{route=\"/v1/telemetry/GenericReport\",method=\"POST\",le=\"0.005\"}",
        "telemetry_http_requests_total{route=\"/v1/telemetry/GenericReport\",method=\"other\",status=\"405\"}",
        "telemetry_reports_accepted_total{product_family=\"PRODUCT_FAMILY_EVEREST\"} 1",
        "telemetry_reports_rejected_total{reason=\"invalid_json\"} 1",
        "telemetry_reports_rejected_total{reason=\"duplicate_field\"} 1",
        "telemetry_batch_size_reports_bucket",
        "telemetry_commit_duration_seconds_bucket",
        "telemetry_geoip_lookups_total{result=\"not_public\"}",
        "telemetry_queue_depth_reports",
        "telemetry_db_pool_connections{state=\"open\"}",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
    assert!(
        !metrics.contains("127.0.0.1"),
        "no address in a metric label"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn metrics_listen_addr_moves_metrics_off_the_public_listener() {
    let app = TestApp::spawn_with(|config| {
        config.metrics_listen_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    assert_eq!(
        app.post_report(fixture("everest-report.json"))
            .await
            .status(),
        200
    );
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "the public listener has no /metrics");
    let metrics_addr = app.server().metrics_addr.expect("a metrics listener");
    let scraped = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains(
            "telemetry_reports_accepted_total{product_family=\"PRODUCT_FAMILY_EVEREST\"} 1"
        ),
        "{text}"
    );
    app.cleanup().await;
}

/// The bytes of PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A stand-in for a PostgreSQL server that offers TLS with a certificate rustls cannot use (a
/// self-signed X.509 v1 one, as Citus nodes make: `tests/data/postgres-x509v1.crt`, made with
/// `openssl req -new` and `openssl x509 -req -signkey`), and relays plain connections to the test
/// PostgreSQL.
async fn postgres_with_unusable_certificate() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
    use tokio_rustls::rustls::sign::CertifiedKey;

    // rustls would check the pair itself (and refuse the v1 certificate) if given it the usual way.
    #[derive(Debug)]
    struct Fixed(Arc<CertifiedKey>);
    impl ResolvesServerCert for Fixed {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let certificate =
        CertificateDer::from_pem_file(common::test_data("postgres-x509v1.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(common::test_data("postgres-x509v1.key")).unwrap();
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(CertifiedKey::new(
            vec![certificate],
            signing_key,
        )))));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let upstream = sqlx::postgres::PgConnectOptions::from_str(&common::admin_url()).unwrap();
    let upstream = format!("{}:{}", upstream.get_host(), upstream.get_port());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 8];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first == SSL_REQUEST {
                    client.write_all(b"S").await.ok();
                    acceptor.accept(client).await.ok();
                } else {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    server.write_all(&first).await.unwrap();
                    tokio::io::copy_bidirectional(&mut client, &mut server)
                        .await
                        .ok();
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_database_certificate_that_fails_means_plain_tcp_only_under_sslmode_prefer() {
    let proxy = postgres_with_unusable_certificate().await;
    let (name, _) = common::fresh_database().await;
    let settings = |query: &str| DatabaseSettings {
        url: format!("postgres://postgres@{proxy}/{name}{query}"),
        max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
    };
    // libpq's default, and sqlx's: prefer TLS, but connect without it when TLS fails.
    for query in ["", "?sslmode=prefer"] {
        let pool = store::connect(&settings(query))
            .await
            .unwrap_or_else(|error| panic!("{query:?} falls back to plain TCP: {error}"));
        let answer: i32 = sqlx::query_scalar("SELECT 7")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(answer, 7);
        pool.close().await;
    }
    for query in ["?sslmode=require", "?sslmode=verify-full"] {
        let error = store::connect(&settings(query))
            .await
            .expect_err("TLS that is required never falls back");
        assert!(
            error.to_string().contains("certificate"),
            "{query}: {error}"
        );
    }
    common::drop_database(&name).await;
}

#[tokio::test]
async fn database_outage_fails_readiness_and_recovers_without_restart() {
    let app = TestApp::spawn_with(|config| config.database_acquire_timeout_secs = 1).await;
    app.start_outage().await;

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let refused = app.post_report(fixture("everest-report.json")).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_grpc_error(refused, 503, 14).await;

    app.end_outage().await;
    let mut recovered = false;
    for _ in 0..50 {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "ready again once PostgreSQL accepts connections");
    assert_eq!(
        app.post_report(fixture("everest-report.json"))
            .await
            .status(),
        200
    );
    app.cleanup().await;
}

fn self_signed(name: &str) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn https_client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .tls_info(true)
        .build()
        .unwrap()
}

fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("TLS info")
        .to_vec()
}

#[tokio::test]
async fn native_tls_with_http2_hsts_and_reload_on_sighup() {
    let dir = std::env::temp_dir().join(format!("tls-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed("localhost");
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    let app = TestApp::spawn_with(|config| {
        config.tls_cert = Some(dir.join("cert.pem"));
        config.tls_key = Some(dir.join("key.pem"));
    })
    .await;
    let port = app.base_url.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}/v1/telemetry/GenericReport");

    let client = https_client(&cert);
    let response = client
        .post(&url)
        .body(fixture("everest-report.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN picks h2"
    );
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let first_certificate = peer_certificate(&response);
    assert_eq!(response.text().await.unwrap(), "{}");

    let http1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let response = http1
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);

    // A renewed certificate, then SIGHUP: new connections get it, with no restart.
    let (new_cert, new_key) = self_signed("localhost");
    std::fs::write(dir.join("cert.pem"), &new_cert).unwrap();
    std::fs::write(dir.join("key.pem"), &new_key).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let renewed_client = https_client(&new_cert);
    let mut renewed = false;
    for _ in 0..50 {
        if let Ok(response) = renewed_client
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
        {
            assert_ne!(peer_certificate(&response), first_certificate);
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed, "the renewed certificate is served after SIGHUP");
    assert_eq!(app.count("reports").await, 1);
    app.cleanup().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn plain_http_has_no_hsts() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(!response.headers().contains_key("strict-transport-security"));
    app.cleanup().await;
}

#[tokio::test]
async fn request_ids_are_echoed_only_when_sane() {
    let app = TestApp::spawn().await;
    let request_id = |sent: String| {
        let response = app
            .client
            .post(app.url("/v1/telemetry/GenericReport"))
            .header("x-request-id", sent)
            .body(one_report(json!([])));
        async move {
            let response = response.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let sane = "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7";
    assert_eq!(request_id(sane.to_owned()).await, sane);
    for insane in [
        "x".repeat(60 * 1024),
        "two words".to_owned(),
        "<script>".to_owned(),
    ] {
        let answered = request_id(insane.clone()).await;
        assert_ne!(answered, insane);
        assert!(
            Uuid::parse_str(&answered).is_ok(),
            "replaced by a fresh id, got {answered:?}"
        );
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_chunked_transfer_coding_is_accepted() {
    let app = TestApp::spawn().await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let body = one_report(json!([]));
    let send = |transfer_encoding: &str| {
        let mut stream = TcpStream::connect(&address).unwrap();
        // One write: the service answers a refused coding as soon as it has read the headers and
        // closes, and `write!` would go on writing piece by piece into the closed connection.
        let request = format!(
            "POST /v1/telemetry/GenericReport HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Transfer-Encoding: {transfer_encoding}\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let before = app.snapshot().await;
    for refused in ["gzip, chunked", "identity, chunked", "x-custom , chunked"] {
        let answer = send(refused);
        assert!(answer.starts_with("HTTP/1.1 400"), "{refused}: {answer:?}");
        assert!(answer.contains("\"code\":3"), "{refused}: {answer:?}");
    }
    assert_eq!(app.snapshot().await, before);
    let answer = send("chunked");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert_eq!(app.count("reports").await, 1);
    app.cleanup().await;
}

/// A cleartext HTTP/2 connection (prior knowledge) that sends one `GET /healthz` and then only
/// reads, as an idle client answering nothing would.
fn h2c_connection_with_one_request(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
    // HPACK: :method GET, :scheme http, :path "/healthz", :authority "x".
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x41, 1, b'x']);
    let length = u32::try_from(block.len()).unwrap().to_be_bytes();
    // HEADERS on stream 1 with END_STREAM and END_HEADERS.
    bytes.extend_from_slice(&[length[1], length[2], length[3], 1, 0x05, 0, 0, 0, 1]);
    bytes.extend_from_slice(&block);
    stream.write_all(&bytes).unwrap();
    stream
}

/// Reads HTTP/2 frames until the server closes the connection; returns the frame types seen.
fn h2_frames_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .expect("the server closes the connection");
    let mut types = Vec::new();
    let mut rest = received.as_slice();
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        types.push(rest[3]);
        rest = &rest[(9 + length).min(rest.len())..];
    }
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed() {
    let app = TestApp::spawn_with(|config| config.idle_timeout_secs = 1).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut connection = h2c_connection_with_one_request(&address);
    let frames = tokio::task::spawn_blocking(move || h2_frames_until_closed(&mut connection))
        .await
        .unwrap();
    const HEADERS: u8 = 1;
    const GOAWAY: u8 = 7;
    assert!(
        frames.contains(&HEADERS),
        "the request was answered: {frames:?}"
    );
    assert!(frames.contains(&GOAWAY), "told it is closed: {frames:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the idle timeout"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_on_arrival() {
    let app = TestApp::spawn_with(|config| config.max_connections = 2).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    let mut refused = TcpStream::connect(&address).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Whether the request is written before the close or not, no answer comes back.
    refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok();
    let mut answer = Vec::new();
    refused.read_to_end(&mut answer).ok();
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    drop(held);
    // The held connections' slots come back once the server has seen them close.
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.get(app.url("/healthz")).send().await {
            Ok(response) if response.status() == 200 => break,
            _ if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("no slot came back: {other:?}"),
        }
    }
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("telemetry_connections_refused_total"));
    app.cleanup().await;
}

/// The service's gauge of request-body bytes held, read from `/metrics`.
async fn body_bytes_in_flight(app: &TestApp) -> f64 {
    let metrics = app.metrics_text().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("telemetry_body_bytes_in_flight "))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// Waits until the gauge of body bytes held satisfies `condition`.
async fn wait_for_bytes_in_flight(app: &TestApp, condition: impl Fn(f64) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = body_bytes_in_flight(app).await;
        if condition(held) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "body bytes in flight stayed at {held}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request whose body is `size` bytes but never finishes: all but its last 8 bytes are sent. (A
/// gzip body is inflated only once it is complete, so what a slow client can hold is what it sent.)
fn unfinished_request(address: &str, size: usize) -> TcpStream {
    let mut body = b"{\"reports\":[".to_vec();
    body.resize(size, b' ');
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /v1/telemetry/GenericReport HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..body.len() - 8]).unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_in_flight_are_bounded() {
    let app = TestApp::spawn_with(|config| {
        config.max_body_bytes_in_flight = 2 * 1024 * 1024;
        config.max_body_bytes = 4 * 1024 * 1024;
    })
    .await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let size = 1536 * 1024;

    let holding = unfinished_request(&address, size);
    wait_for_bytes_in_flight(&app, |held| held >= (size - 8) as f64).await;

    // A second large body would take the budget past what large bodies may hold (its first
    // 256 KiB and the 256 KiB of the large share still free are not enough).
    let mut refused = unfinished_request(&address, 768 * 1024);
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let read = refused.read(&mut buffer).unwrap();
    let answer = String::from_utf8_lossy(&buffer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 503"), "got {answer:?}");
    assert!(answer.contains("retry-after: "), "got {answer:?}");
    assert!(answer.contains("\"code\":14"), "got {answer:?}");

    // An ordinary report still fits in what large bodies may not take.
    let response = app.post_report(fixture("telemetry-agent-ps.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("reports").await, 1);

    // The held body is released when its client goes away.
    drop(holding);
    wait_for_bytes_in_flight(&app, |held| held == 0.0).await;
    app.cleanup().await;
}

#[tokio::test]
async fn each_refused_request_is_one_info_line_naming_its_reason() {
    let (database_name, database_url) = common::fresh_database().await;
    // The default log level (info), as in production.
    let mut service = Service::start(&[
        ("DATABASE_URL", database_url),
        ("LOG_FORMAT", "json".to_owned()),
    ])
    .await;
    let url = format!(
        "http://127.0.0.1:{}/v1/telemetry/GenericReport",
        service.port
    );
    let client = reqwest::Client::new();
    let refused = [
        (
            json!({"reports": [{"id": Uuid::new_v4().to_string(), "instanceId": "x",
                "createTime": "2025-01-01T00:00:00Z", "productFamily": "PRODUCT_FAMILY_PMM"}]})
            .to_string(),
            [
                r#""reason":"invalid_field""#,
                r#""product_family":"PRODUCT_FAMILY_PMM""#,
            ],
        ),
        (
            r#"{"reports":[],"reports":[]}"#.to_owned(),
            [r#""reason":"duplicate_field""#, r#""status":400"#],
        ),
    ];
    for (body, expected) in refused {
        let response = client.post(&url).body(body).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let line = service
            .wait_for_line(|line| line.contains("request refused"))
            .await;
        for expected in expected.iter().chain(&[
            r#""level":"INFO""#,
            r#""route":"/v1/telemetry/GenericReport""#,
        ]) {
            assert!(line.contains(expected), "{expected} in {line}");
        }
        assert!(!line.contains("127.0.0.1"), "no address in {line}");
    }
    let lines = service.stop().await;
    let refusals = lines
        .iter()
        .filter(|line| line.contains("request refused"))
        .count();
    assert_eq!(refusals, 2, "one line per refused request");
    common::drop_database(&database_name).await;
}

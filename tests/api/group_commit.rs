//! The batching writer: concurrent requests end in the same state as sequential ones, a full queue
//! answers 503 at once, one failing request neither fails its batch-mates nor costs them more than a few transactions, and a failed commit is never
//! acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{TestApp, assert_grpc_error};
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

fn report(id: Uuid, instance: Uuid, created: &str, version: &str) -> Value {
    json!({
        "id": id.to_string(),
        "createTime": created,
        "instanceId": instance.to_string(),
        "productFamily": "PRODUCT_FAMILY_PMM",
        "metrics": [{"key": "PMMServerVersion", "value": version}]
    })
}

fn body(reports: &[Value]) -> String {
    json!({ "reports": reports }).to_string()
}

/// A request with one report of a new instance.
fn fresh_report_body(created: &str) -> String {
    body(&[report(Uuid::new_v4(), Uuid::new_v4(), created, "3.0.0")])
}

/// Everything but the server-side arrival times, which differ between two runs by nature.
async fn logical_state(app: &TestApp) -> String {
    let query = "SELECT concat_ws(E'\\n',
        (SELECT string_agg(concat_ws('|', instance_id, product_family, first_seen, last_seen, version,
                                     version_seen_at, country_code, report_count), E'\\n' ORDER BY instance_id)
         FROM instances),
        (SELECT string_agg(concat_ws('|', report_id, instance_id, created_at, version, metrics), E'\\n' ORDER BY report_id)
         FROM reports),
        (SELECT string_agg(concat_ws('|', instance_id, from_version, to_version, upgraded_at, report_id, is_downgrade),
                           E'\\n' ORDER BY instance_id, upgraded_at)
         FROM upgrades))";
    sqlx::query_scalar(query)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Twelve instances with eight reports each, versions rising over time, in a shuffled order.
fn workload() -> Vec<String> {
    let versions = [
        "3.0.0", "3.0.0", "3.1.0", "3.1.0", "3.2.0", "3.2.0", "3.10.0", "3.10.1",
    ];
    let mut bodies = Vec::new();
    for instance in 0..12u128 {
        let instance_id = Uuid::from_u128(0xaaaa_0000 + instance);
        for (day, version) in versions.iter().enumerate() {
            let id = Uuid::from_u128(instance << 64 | day as u128 | 1 << 120);
            let created = format!("2025-01-{:02}T00:00:00Z", day + 1);
            bodies.push(body(&[report(id, instance_id, &created, version)]));
        }
    }
    // A deterministic shuffle: late and early reports of one instance race each other.
    let len = bodies.len();
    for i in 0..len {
        bodies.swap(i, (i * 37 + 11) % len);
    }
    bodies
}

#[tokio::test]
async fn concurrent_requests_end_like_sequential_ones() {
    let sequential = TestApp::spawn().await;
    for request in workload() {
        let response = sequential.post_report(request).await;
        assert_eq!(response.status(), 200);
    }

    let concurrent = TestApp::spawn().await;
    let mut tasks = tokio::task::JoinSet::new();
    // Every request twice, so that duplicates race too.
    for request in workload().into_iter().chain(workload()) {
        let client = concurrent.client.clone();
        let url = concurrent.url("/v1/telemetry/GenericReport");
        tasks.spawn(async move {
            client
                .post(url)
                .body(request)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }

    let expected = logical_state(&sequential).await;
    assert_eq!(logical_state(&concurrent).await, expected);
    assert_eq!(concurrent.count("reports").await, 96);
    assert_eq!(concurrent.count("upgrades").await, 12 * 4);
    sequential.cleanup().await;
    concurrent.cleanup().await;
}

#[tokio::test]
async fn full_queue_answers_503_at_once_and_recovers() {
    let app = TestApp::spawn_with(|config| {
        config.queue_capacity = 2;
        config.writers = 1;
    })
    .await;
    // Hold the writer up: its upsert waits for this lock, so the queue fills behind it.
    let mut blocker = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE instances IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let client = app.client.clone();
        let url = app.url("/v1/telemetry/GenericReport");
        let request = fresh_report_body("2025-01-01T00:00:00Z");
        waiting.spawn(async move {
            client
                .post(url)
                .body(request)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    // Wait until both are queued (the writer holds them in a blocked batch).
    let mut queued = false;
    for _ in 0..100 {
        let metrics = app.metrics_text().await;
        if metrics.contains("telemetry_queue_depth_reports 2") {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(queued, "two reports should be waiting for the commit");

    let refused = app
        .post_report(fresh_report_body("2025-01-01T00:00:00Z"))
        .await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5")
    );
    assert_grpc_error(refused, 503, 14).await;

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    while let Some(status) = waiting.join_next().await {
        assert_eq!(
            status.unwrap(),
            200,
            "queued requests are committed once the lock goes"
        );
    }
    assert_eq!(
        app.count("reports").await,
        2,
        "the refused report was not stored"
    );
    let response = app
        .post_report(fresh_report_body("2025-01-01T00:00:00Z"))
        .await;
    assert_eq!(response.status(), 200);
    app.cleanup().await;
}

/// Installs a database-side rule that refuses one instance's reports (standing for any failure
/// validation cannot foresee) and counts every statement that tries to insert reports, committed or
/// not: a sequence is not rolled back with its transaction.
async fn refuse_instance_and_count_attempts(app: &TestApp, poison: Uuid) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SEQUENCE insert_attempts;
         CREATE FUNCTION count_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM nextval('insert_attempts'); RETURN NULL; END $$;
         CREATE TRIGGER count_attempt BEFORE INSERT ON report_rows FOR EACH STATEMENT EXECUTE FUNCTION count_attempt();
         CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.instance_id = '{poison}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON report_rows FOR EACH ROW EXECUTE FUNCTION refuse_poison();"
    )))
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn insert_attempts(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM insert_attempts")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_failing_request_costs_its_batch_a_few_statements_and_its_replays_only_their_own() {
    const REQUESTS: usize = 32;
    let app = TestApp::spawn_with(|config| {
        config.writers = 1;
        config.batch_max_delay_ms = 1000;
    })
    .await;
    let poison = Uuid::new_v4();
    refuse_instance_and_count_attempts(&app, poison).await;

    // Sends REQUESTS requests at once, the eighth for the refused instance; checks the answers.
    let send_round = || async {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..REQUESTS {
            let instance = if index == 7 { poison } else { Uuid::new_v4() };
            let client = app.client.clone();
            let url = app.url("/v1/telemetry/GenericReport");
            let request = body(&[report(
                Uuid::new_v4(),
                instance,
                "2025-01-01T00:00:00Z",
                "3.0.0",
            )]);
            tasks.spawn(async move {
                (
                    instance,
                    client
                        .post(url)
                        .body(request)
                        .send()
                        .await
                        .unwrap()
                        .status(),
                )
            });
        }
        let mut acknowledged = 0;
        while let Some(result) = tasks.join_next().await {
            let (instance, status) = result.unwrap();
            if instance == poison {
                assert!(
                    status.is_server_error(),
                    "the failing request is not acknowledged"
                );
            } else {
                assert_eq!(status, 200);
                acknowledged += 1;
            }
        }
        assert_eq!(acknowledged, REQUESTS - 1);
    };

    send_round().await;
    assert_eq!(app.count("reports").await, (REQUESTS - 1) as i64);
    // Halving down to the failing request: the whole batch, then a refused and a stored half at
    // each of log2(32) = 5 levels. Storing each request on its own would take 33. One more
    // failed attempt is allowed in case the requests did not all make the same batch.
    let first_round = insert_attempts(&app).await;
    assert!(
        first_round <= 1 + 2 * 5 + 1,
        "{first_round} insert statements for {REQUESTS} requests with one failing"
    );

    // The instance is now quarantined: its replayed request is committed on its own, after the
    // batch, which therefore commits in one statement (one more if the round made two batches).
    send_round().await;
    assert_eq!(app.count("reports").await, 2 * (REQUESTS - 1) as i64);
    let second_round = insert_attempts(&app).await - first_round;
    assert!(
        second_round <= 1 + 1 + 1,
        "{second_round} insert statements for a replay of the failing request"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn nothing_unstored_is_acknowledged_when_the_database_goes_away() {
    let app = TestApp::spawn_with(|config| {
        config.database_acquire_timeout_secs = 1;
    })
    .await;

    let answered_ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..300u32 {
        let client = app.client.clone();
        let url = app.url("/v1/telemetry/GenericReport");
        let id = Uuid::new_v4();
        let request = body(&[report(id, Uuid::new_v4(), "2025-01-01T00:00:00Z", "3.0.0")]);
        let answered_ok = answered_ok.clone();
        tasks.spawn(async move {
            // Requests spread over 1.5 s, so that many are still to come when the outage starts.
            tokio::time::sleep(Duration::from_millis(u64::from(index) * 5)).await;
            let status = client
                .post(url)
                .body(request)
                .send()
                .await
                .unwrap()
                .status();
            if status == 200 {
                answered_ok.fetch_add(1, Ordering::Relaxed);
            }
            (id, status)
        });
    }
    // Once the service is seen committing (not after a guessed time), its database refuses
    // connections and its sessions are killed, with most requests still to come.
    tokio::time::timeout(Duration::from_secs(60), async {
        while answered_ok.load(Ordering::Relaxed) < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the service acknowledges requests before the outage");
    app.start_outage().await;

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    while let Some(result) = tasks.join_next().await {
        let (id, status) = result.unwrap();
        match status.as_u16() {
            200 => acknowledged.push(id),
            503 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused > 0, "the outage was noticed");

    app.end_outage().await;
    let mut check = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT report_id FROM reports")
        .fetch_all(&mut check)
        .await
        .unwrap();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged report {id} is stored");
    }

    // The service recovers by itself once the database is back.
    let mut recovered = false;
    for _ in 0..50 {
        let response = app
            .post_report(fresh_report_body("2025-01-02T00:00:00Z"))
            .await;
        if response.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "ingest works again without a restart");
    check.close().await.ok();
    app.cleanup().await;
}

/// PostgreSQL's TCP port, as the test database URL gives it.
fn database_port(database_url: &str) -> u16 {
    let options: sqlx::postgres::PgConnectOptions = database_url.parse().unwrap();
    options.get_port()
}

/// Every TCP socket of this process connected to `port`, with whether it has TCP_NODELAY set.
fn nodelay_of_sockets_to(port: u16) -> Vec<bool> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor was listed as open a moment ago and is only borrowed for two
        // getsockopt/getpeername calls; a socket closed in between makes them fail, which is skipped.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let to_port = socket
            .peer_addr()
            .ok()
            .and_then(|address| address.as_socket())
            .is_some_and(|address| address.port() == port);
        if let (true, Ok(nodelay)) = (to_port, socket.tcp_nodelay()) {
            found.push(nodelay);
        }
    }
    found
}

/// Without TCP_NODELAY a batch's large Bind message waits out PostgreSQL's delayed ACK, 40 ms per
/// batch (sqlx 0.9.0 dropped the option; vendor/README.md). The writer's connections must have it.
#[tokio::test]
async fn database_connections_disable_nagle() {
    let app = TestApp::spawn().await;
    let response = app
        .post_report(fresh_report_body("2025-01-02T00:00:00Z"))
        .await;
    assert_eq!(response.status(), 200);

    let sockets = nodelay_of_sockets_to(database_port(&app.database_url));
    assert!(
        !sockets.is_empty(),
        "the service holds TCP connections to PostgreSQL"
    );
    assert!(
        sockets.iter().all(|&nodelay| nodelay),
        "every PostgreSQL connection has TCP_NODELAY: {sockets:?}"
    );
    app.cleanup().await;
}

/// The batch statements stay prepared on a connection for its lifetime. A generic plan made while the
/// tables were small (sequential scans) halved ingest once they held a few hundred thousand rows
/// (docs/performance.md), so the service's sessions plan each run with the tables as they are.
#[tokio::test]
async fn database_sessions_plan_every_statement_afresh() {
    let app = TestApp::spawn().await;
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(mode, "force_custom_plan");
    app.cleanup().await;
}

//! The real binary's operational behaviour: under load it receives SIGTERM, stops accepting, finishes
//! what is in flight, exits 0, and every report it acknowledged is in the database; and what goes wrong
//! after a request was handed to the writer is logged with that request's id.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::binary::{PROCESS_TIMEOUT, Service};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

/// How many acknowledgements the load has produced before SIGTERM, so that the signal lands on a
/// service with requests in flight rather than after a fixed time.
const ACKNOWLEDGED_BEFORE_SIGTERM: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_acknowledged() {
    let (name, url) = common::fresh_database().await;
    // Service listens on port 0 and reads the port from its log line: no race for a probed port.
    let service = Service::start(&[
        ("DATABASE_URL", url.clone()),
        ("RUST_LOG", "info".to_owned()),
    ])
    .await;
    let base = format!("http://127.0.0.1:{}", service.port);
    let client = reqwest::Client::new();

    let progress = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, base, progress) = (client.clone(), base.clone(), progress.clone());
        senders.spawn(async move {
            let mut acknowledged = Vec::new();
            // Until the listener is gone: connection errors end the sender.
            for _ in 0..10_000 {
                let id = Uuid::new_v4();
                let body = json!({"reports": [{"id": id.to_string(), "createTime": "2025-01-01T00:00:00Z",
                    "instanceId": Uuid::new_v4().to_string(), "productFamily": "PRODUCT_FAMILY_PS",
                    "metrics": [{"key": "pillar_version", "value": "8.0.40"}]}]});
                match client
                    .post(format!("{base}/v1/telemetry/GenericReport"))
                    .body(body.to_string())
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.push(id);
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            acknowledged
        });
    }
    tokio::time::timeout(PROCESS_TIMEOUT, async {
        while progress.load(Ordering::Relaxed) < ACKNOWLEDGED_BEFORE_SIGTERM {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the service acknowledges the load");
    // stop() sends SIGTERM and asserts a clean exit within the timeout.
    let lines = service.stop().await;

    let mut acknowledged = Vec::new();
    while let Some(result) = senders.join_next().await {
        acknowledged.extend(result.unwrap());
    }
    assert!(acknowledged.len() >= ACKNOWLEDGED_BEFORE_SIGTERM);
    assert!(
        !lines.iter().any(|line| line.contains("ERROR")),
        "no error logged during shutdown:\n{}",
        lines.join("\n")
    );

    let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT report_id FROM reports")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    let stored: std::collections::HashSet<Uuid> = stored.into_iter().collect();
    let missing = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .count();
    assert_eq!(
        missing,
        0,
        "of {} acknowledged reports, {missing} are missing",
        acknowledged.len()
    );
    connection.close().await.ok();
    common::drop_database(&name).await;
}

#[tokio::test]
async fn a_failed_commit_is_logged_with_its_request_id() {
    let (name, url) = common::fresh_database().await;
    let mut service = Service::start(&[
        ("DATABASE_URL", url.clone()),
        ("RUST_LOG", "info".to_owned()),
    ])
    .await;
    let poison = Uuid::new_v4();
    let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.instance_id = '{poison}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON report_rows FOR EACH ROW EXECUTE FUNCTION refuse_poison();"
    )))
    .execute(&mut connection)
    .await
    .unwrap();

    let request_id = Uuid::new_v4().to_string();
    let body = json!({"reports": [{"id": Uuid::new_v4().to_string(), "createTime": "2025-01-01T00:00:00Z",
        "instanceId": poison.to_string(), "productFamily": "PRODUCT_FAMILY_PS",
        "metrics": [{"key": "pillar_version", "value": "8.0.40"}]}]});
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/telemetry/GenericReport",
            service.port
        ))
        .header("x-request-id", &request_id)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_server_error(), "{}", response.status());
    // The writer logs the failure on its own task; the line must carry the request's span.
    let line = service
        .wait_for_line(|line| line.contains("could not be stored"))
        .await;
    assert!(line.contains(&request_id), "{line}");
    service.stop().await;
    connection.close().await.ok();
    common::drop_database(&name).await;
}

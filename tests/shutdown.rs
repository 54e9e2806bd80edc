//! The real binary under load receives SIGTERM: it stops accepting, finishes what is in flight, exits 0,
//! and every report it acknowledged is in the database.

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

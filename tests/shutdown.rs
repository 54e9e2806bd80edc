//! The real binary under load receives SIGTERM: it stops accepting, finishes what is in flight, exits 0,
//! and every report it acknowledged is in the database.

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_acknowledged() {
    let (name, url) = common::fresh_database().await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemetry-server"))
        .env("DATABASE_URL", &url)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SHUTDOWN_GRACE_SECS", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            ready = response.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "service became ready");

    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, base) = (client.clone(), base.clone());
        senders.spawn(async move {
            let mut acknowledged = Vec::new();
            let mut refused = 0u32;
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
                    Ok(response) if response.status() == 200 => acknowledged.push(id),
                    Ok(_) => refused += 1,
                    Err(_) => break,
                }
            }
            (acknowledged, refused)
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());

    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits within the grace period")
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    let mut acknowledged = Vec::new();
    while let Some(result) = senders.join_next().await {
        let (ids, _refused) = result.unwrap();
        acknowledged.extend(ids);
    }
    assert!(acknowledged.len() > 10, "the load was real");

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

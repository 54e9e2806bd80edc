//! The public statistics page against the analysts' views: the same numbers on generated history,
//! nothing below the bucket threshold, and page views served without touching PostgreSQL.

use std::collections::{BTreeMap, HashMap};

use crate::common::{InProcessApp, TestApp};
use chrono::NaiveDate;
use serde_json::Value;
use sqlx::PgPool;
use telemetry_server::synthetic::{self, Settings};

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
}

/// A service (in-process: the page is what is tested, not the listener) over 100 days of generated history from `instances` installations, with its
/// statistics computed from the refreshed rollups.
async fn app_with_history(instances: u32, min_bucket: i64) -> InProcessApp {
    let app = InProcessApp::spawn_with(|config| {
        config.retention_interval_secs = 0;
        config.stats_refresh_secs = 0;
        config.stats_min_bucket = min_bucket;
    })
    .await;
    let settings = Settings {
        instances,
        days: 100,
        end_date: end_date(),
        seed: 7,
        batch_size: 1000,
        concurrency: 2,
    };
    synthetic::generate(&app.pool, &settings)
        .await
        .expect("history generated");
    app.stats.refresh().await.expect("statistics refresh");
    app
}

async fn get_json(app: &InProcessApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// A GET with one conditional (or other) request header.
async fn get_with(app: &InProcessApp, path: &str, name: &str, value: &str) -> reqwest::Response {
    app.get_with(path, &[(name, value)]).await
}

async fn get_text(app: &InProcessApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

fn dates(value: &Value) -> Vec<NaiveDate> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect()
}

fn counts(value: &Value) -> Vec<Option<i64>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_i64)
        .collect()
}

fn assert_share(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no share"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} != {expected}"
    );
}

async fn snapshot_day(pool: &PgPool) -> NaiveDate {
    sqlx::query_scalar("SELECT day FROM analytics.snapshot_day")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_shows_what_the_analysts_views_say() {
    let app = app_with_history(300, 1).await;
    let stats = get_json(&app, "/stats.json").await;
    let day = snapshot_day(&app.pool).await;
    assert_eq!(stats["snapshot_day"], day.to_string());
    assert_eq!(stats["min_bucket"], 1);

    // Active instances per product family and week.
    let rows: Vec<(NaiveDate, String, i32)> = sqlx::query_as(
        "SELECT week_start, product_family, active_instances FROM analytics.active_instances_weekly
         WHERE week_start > $1 - 364 AND active_instances > 0",
    )
    .bind(day)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let expected: BTreeMap<(NaiveDate, String), i64> = rows
        .into_iter()
        .map(|(week, family, active)| ((week, family), i64::from(active)))
        .collect();
    let weeks = dates(&stats["active_instances"]["weeks"]);
    let mut published = BTreeMap::new();
    for product in stats["active_instances"]["products"].as_array().unwrap() {
        let family = product["product_family"].as_str().unwrap().to_owned();
        for (week, count) in weeks.iter().zip(counts(&product["active_instances"])) {
            if let Some(count) = count {
                published.insert((*week, family.clone()), count);
            }
        }
    }
    assert!(
        published.len() > 50,
        "a year of weekly points: {published:?}"
    );
    assert_eq!(
        published, expected,
        "with a threshold of 1 every count is shown"
    );

    // Release uptake: each version's instances and share of its family, per week.
    let rows: Vec<(String, String, NaiveDate, i32, f64)> = sqlx::query_as(
        "SELECT product_family, version, week_start, active_instances, share_of_family::float8
         FROM analytics.release_uptake_weekly WHERE week_start > $1 - 364 AND active_instances > 0",
    )
    .bind(day)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let view: HashMap<(String, String, NaiveDate), (i64, f64)> = rows
        .into_iter()
        .map(|(family, version, week, active, share)| {
            ((family, version, week), (i64::from(active), share))
        })
        .collect();
    let mut compared = 0;
    for product in stats["release_uptake"].as_array().unwrap() {
        let family = product["product_family"].as_str().unwrap();
        let weeks = dates(&product["weeks"]);
        let totals = counts(&product["active_instances"]);
        for version in product["versions"].as_array().unwrap() {
            let name = version["version"].as_str().unwrap();
            let instances = counts(&version["active_instances"]);
            for (index, week) in weeks.iter().enumerate() {
                let Some(count) = instances[index] else {
                    continue;
                };
                if name == "unknown" {
                    continue;
                }
                let (active, share) = view[&(family.to_owned(), name.to_owned(), *week)];
                assert_eq!(count, active, "{family} {name} {week}");
                assert_share(
                    &version["share"][index],
                    share,
                    &format!("{family} {name} {week}"),
                );
                compared += 1;
            }
        }
        // Shown versions and "other" add up to the family's active instances every week.
        for (index, total) in totals.iter().enumerate() {
            let Some(total) = total else { continue };
            let shown: i64 = product["versions"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v["active_instances"][index].as_i64())
                .sum();
            let other = product["other"]["active_instances"][index]
                .as_i64()
                .unwrap();
            assert_eq!(shown + other, *total, "{family} week {index}");
        }
    }
    assert!(compared > 100, "only {compared} uptake cells compared");

    // PMM feature adoption on the snapshot day.
    let rows: Vec<(String, i32, i32, f64)> = sqlx::query_as(
        "SELECT feature, active_servers, enabled_servers, share_of_active::float8
         FROM analytics.pmm_feature_adoption",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let features = stats["pmm_features"]["features"].as_array().unwrap();
    assert_eq!(features.len(), rows.len());
    for (feature, active, enabled, share) in rows {
        let shown = features
            .iter()
            .find(|f| f["feature"] == feature.as_str())
            .unwrap();
        assert_eq!(stats["pmm_features"]["active_servers"], active);
        assert_eq!(shown["enabled_servers"], enabled, "{feature}");
        assert_share(&shown["share"], share, &feature);
    }

    // Monitored database lines.
    let rows: Vec<(String, String, i32, i32, f64)> = sqlx::query_as(
        "SELECT database, coalesce(line, 'unknown'), pmm_servers, services, share_of_services::float8
         FROM analytics.monitored_database_lines",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    let mut shown = HashMap::new();
    for database in stats["monitored_databases"].as_array().unwrap() {
        for line in database["lines"].as_array().unwrap() {
            shown.insert(
                (
                    database["database"].as_str().unwrap().to_owned(),
                    line["line"].as_str().unwrap().to_owned(),
                ),
                line.clone(),
            );
        }
    }
    assert_eq!(shown.len(), rows.len());
    for (database, line, servers, services, share) in rows {
        let published = &shown[&(database.clone(), line.clone())];
        assert_eq!(published["pmm_servers"], servers, "{database} {line}");
        assert_eq!(published["services"], services, "{database} {line}");
        assert_share(
            &published["share_of_services"],
            share,
            &format!("{database} {line}"),
        );
    }

    // Countries, all products together.
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT country_code, sum(active_instances)::bigint FROM analytics.countries
         GROUP BY country_code HAVING sum(active_instances) > 0",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let countries = stats["countries"]["countries"].as_array().unwrap();
    assert_eq!(countries.len(), rows.len());
    let total: i64 = rows.iter().map(|(_, n)| n).sum();
    assert_eq!(stats["countries"]["total"], total);
    for (code, count) in rows {
        let shown = countries
            .iter()
            .find(|c| c["country_code"].as_str() == code.as_deref())
            .unwrap_or_else(|| panic!("{code:?} missing"));
        assert_eq!(shown["active_instances"], count, "{code:?}");
    }

    // The HTML page carries the same numbers, in charts with text alternatives and in tables.
    let html = get_text(&app, "/stats").await;
    assert!(html.contains("<svg class=\"chart\""));
    assert!(html.contains("role=\"img\""));
    assert!(html.contains("<desc id=\"active-chart-desc\">"));
    let first = &countries[0];
    assert!(html.contains(first["name"].as_str().unwrap()));
    assert!(html.contains(&format!("{}", first["active_instances"].as_i64().unwrap())));
    assert!(html.contains("<table class=\"keys stats-table\">"));
    app.cleanup().await;
}

/// Every count anywhere in the published JSON, with where it is.
fn published_counts(value: &Value, path: &str, out: &mut Vec<(String, i64)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let counting = matches!(
                    key.as_str(),
                    "active_instances"
                        | "active_servers"
                        | "enabled_servers"
                        | "pmm_servers"
                        | "other"
                        | "total"
                );
                if counting {
                    collect_numbers(child, &format!("{path}.{key}"), out);
                }
                published_counts(child, &format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                published_counts(item, &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

fn collect_numbers(value: &Value, path: &str, out: &mut Vec<(String, i64)>) {
    match value {
        Value::Number(n) => out.push((path.to_owned(), n.as_i64().unwrap())),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_numbers(item, &format!("{path}[{index}]"), out);
            }
        }
        Value::Object(map) => {
            if let Some(count) = map.get("active_instances") {
                collect_numbers(count, &format!("{path}.active_instances"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn buckets_below_the_threshold_are_never_published() {
    const MIN: i64 = 25;
    let app = app_with_history(300, MIN).await;
    let stats = get_json(&app, "/stats.json").await;
    assert_eq!(stats["min_bucket"], MIN);

    let mut numbers = Vec::new();
    published_counts(&stats, "", &mut numbers);
    assert!(numbers.len() > 100, "counts found: {}", numbers.len());
    for (path, count) in &numbers {
        assert!(
            *count == 0 || *count >= MIN,
            "{path} = {count} is below the threshold of {MIN}"
        );
    }

    // Countries the view has with fewer instances are not named on the page, and "other" holds them.
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT country_code, sum(active_instances)::bigint FROM analytics.countries
         GROUP BY country_code HAVING sum(active_instances) > 0",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let small: Vec<&Option<String>> = rows
        .iter()
        .filter(|(_, n)| *n < MIN)
        .map(|(code, _)| code)
        .collect();
    assert!(!small.is_empty(), "the test data has small countries");
    let shown: Vec<Option<&str>> = stats["countries"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["country_code"].as_str())
        .collect();
    for code in &small {
        assert!(!shown.contains(&code.as_deref()), "{code:?} shown");
    }
    let shown_sum: i64 = stats["countries"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["active_instances"].as_i64().unwrap())
        .sum();
    let total: i64 = rows.iter().map(|(_, n)| n).sum();
    assert_eq!(stats["countries"]["other"], total - shown_sum);

    // Small versions are folded: PMM's uptake in the latest week never names a version held by
    // fewer than MIN instances.
    let pmm = stats["release_uptake"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_family"] == "PRODUCT_FAMILY_PMM")
        .expect("PMM uptake published");
    let mut folded_any = false;
    for version in pmm["versions"].as_array().unwrap() {
        for count in counts(&version["active_instances"]).into_iter().flatten() {
            assert!(count >= MIN);
        }
        folded_any |= counts(&version["active_instances"]).contains(&None);
    }
    assert!(folded_any, "some weeks fold a version into other");
    app.cleanup().await;
}

#[tokio::test]
async fn page_views_are_served_from_memory_with_validators() {
    let app = app_with_history(120, 10).await;
    let first = app.get("/stats").await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(first.headers()["cache-control"], "public, max-age=300");
    let body = first.text().await.unwrap();
    assert!(body.contains("Active installations per product"));

    // Compressed once at refresh time, for clients that ask for it.
    let gzipped = get_with(&app, "/stats", "accept-encoding", "gzip").await;
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    let compressed = gzipped.bytes().await.unwrap();
    assert!(compressed.len() < body.len() / 3);
    let mut unpacked = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut unpacked,
    )
    .unwrap();
    assert_eq!(unpacked, body);

    // Unchanged rollups give the same validators on the next refresh.
    app.stats.refresh().await.unwrap();
    let refreshed = app.get("/stats").await;
    assert_eq!(refreshed.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(
        refreshed.headers()["last-modified"].to_str().unwrap(),
        last_modified
    );

    // Conditional requests.
    let not_modified = get_with(&app, "/stats", "if-none-match", &etag).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"].to_str().unwrap(), etag);
    assert!(not_modified.bytes().await.unwrap().is_empty());
    let not_modified = get_with(&app, "/stats", "if-modified-since", &last_modified).await;
    assert_eq!(not_modified.status(), 304);
    let other_representation = get_with(&app, "/stats.json", "if-none-match", &etag).await;
    assert_eq!(
        other_representation.status(),
        200,
        "the JSON has an ETag of its own"
    );

    // With the rollups locked, nothing can read them, yet page views are answered at once: they
    // never query PostgreSQL.
    let mut locker = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE analytics.daily_activity IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let mut reader = app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL statement_timeout = '200ms'")
        .execute(&mut *reader)
        .await
        .unwrap();
    assert!(
        sqlx::query("SELECT count(*) FROM analytics.active_instances_weekly")
            .execute(&mut *reader)
            .await
            .is_err(),
        "the lock keeps readers out"
    );
    reader.rollback().await.unwrap();
    let views = async {
        for _ in 0..20 {
            for path in ["/stats", "/stats.json"] {
                let response = app.get(path).await;
                assert_eq!(response.status(), 200, "{path}");
            }
        }
        app.get("/stats").await
    };
    let again = tokio::time::timeout(std::time::Duration::from_secs(10), views)
        .await
        .expect("page views do not wait for the database");
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(again.text().await.unwrap(), body);
    locker.rollback().await.unwrap();

    // A refresh that fails keeps the page that was there.
    app.pool.close().await;
    assert!(app.stats.refresh().await.is_err());
    let kept = app.get("/stats").await;
    assert_eq!(kept.status(), 200);
    assert_eq!(kept.headers()["etag"].to_str().unwrap(), etag);
    app.cleanup().await;
}

#[tokio::test]
async fn before_any_rollup_the_page_says_so_and_the_landing_page_links_it() {
    let app = InProcessApp::spawn_with(|config| config.retention_interval_secs = 0).await;
    app.stats.refresh().await.unwrap();
    let html = get_text(&app, "/stats").await;
    assert!(html.contains("No statistics yet"));
    let stats = get_json(&app, "/stats.json").await;
    assert_eq!(stats["snapshot_day"], Value::Null);
    assert_eq!(stats["min_bucket"], 10);
    let landing = get_text(&app, "/").await;
    assert!(landing.contains("href=\"/stats\""));
    app.cleanup().await;
}

#[tokio::test]
async fn hostile_labels_above_the_threshold_are_never_published() {
    const HOSTILE: [&str; 3] = [
        "SECURITY NOTICE: update now at https://evil.example/fix",
        "8.0-visit1-evil2-example3",
        "<b>8.0</b>",
    ];
    // Over HTTP: the labels must go through the whole ingest path.
    let app = TestApp::spawn_with(|config| {
        config.retention_interval_secs = 0;
        config.stats_refresh_secs = 0;
    })
    .await;
    let created = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let versions = HOSTILE.iter().chain(["8.0.36-28"].iter());
    for version in versions {
        // Twelve fake instances each: more than the default threshold of ten.
        let reports: Vec<Value> = (0..12)
            .map(|_| {
                serde_json::json!({
                    "id": uuid::Uuid::new_v4().to_string(), "createTime": created,
                    "instanceId": uuid::Uuid::new_v4().to_string(), "productFamily": "PRODUCT_FAMILY_PS",
                    "metrics": [{"key": "pillar_version", "value": version}]})
            })
            .collect();
        let response = app
            .post_report(serde_json::json!({ "reports": reports }).to_string())
            .await;
        assert_eq!(response.status(), 200);
    }
    let today = chrono::Utc::now().date_naive();
    telemetry_server::store::refresh_rollups(&app.pool, today + chrono::Days::new(1))
        .await
        .unwrap();
    app.server().stats.refresh().await.unwrap();

    let fetch = |path: &'static str| {
        let app = &app;
        async move {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.unwrap()
        }
    };
    let json = fetch("/stats.json").await;
    let page = fetch("/stats").await;
    assert!(json.contains("8.0.36-28"), "a release is published: {json}");
    for text in [&json, &page] {
        for hostile in ["evil", "SECURITY", "<b>"] {
            assert!(!text.contains(hostile), "{hostile} published");
        }
    }
    let stats: Value = serde_json::from_str(&json).unwrap();
    let ps = stats["release_uptake"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_family"] == "PRODUCT_FAMILY_PS")
        .expect("PS uptake published");
    let latest = |values: &Value| {
        values
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find_map(Value::as_i64)
            .unwrap()
    };
    assert_eq!(latest(&ps["active_instances"]), 48);
    assert_eq!(
        latest(&ps["other"]["active_instances"]),
        36,
        "they count in other"
    );
    app.cleanup().await;
}

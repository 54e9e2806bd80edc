//! The landing and statistics pages in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/landing.mjs` (playwright-core and axe-core, installed with
//! `npm ci --prefix tests/browser`), against the real service with a year of generated history.
//! Fails on any console error, failed request, accessibility violation, undrawn chart or sideways
//! scrolling. Screenshots go to a temporary directory, or to `SCREENSHOT_DIR` when set
//! (`SCREENSHOT_DIR=docs/screenshots` refreshes the committed ones).

mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{Days, Utc};
use common::TestApp;
use telemetry_server::synthetic::{self, Settings};

fn chromium() -> PathBuf {
    PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()))
}

#[tokio::test]
async fn pages_render_cleanly_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script_dir = root.join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir()
            && script_dir.join("node_modules/axe-core").is_dir(),
        "the browser test needs its npm packages: run `npm ci --prefix tests/browser`"
    );
    let chromium = chromium();
    assert!(
        chromium.is_file(),
        "the browser test needs Chromium at {} (or set CHROMIUM): `apt-get install -y chromium`",
        chromium.display()
    );
    // A test never rewrites tracked files unless asked to.
    let temporary = tempfile::tempdir().unwrap();
    let screenshots = std::env::var_os("SCREENSHOT_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| temporary.path().to_owned());
    let started = SystemTime::now();

    // server::start bounds the whole serving time by the shutdown grace period (5 s in tests), and
    // the browser run takes longer.
    let app = TestApp::spawn_with(|config| {
        config.shutdown_grace_secs = 120;
        config.retention_interval_secs = 0;
    })
    .await;
    // A year of history, so that the statistics page has every chart with realistic shapes.
    let history = Settings {
        instances: 800,
        days: 365,
        end_date: Utc::now().date_naive() - Days::new(1),
        seed: 1,
        batch_size: 2000,
        concurrency: 2,
    };
    synthetic::generate(&app.pool, &history)
        .await
        .expect("history generated");
    app.server()
        .stats
        .refresh()
        .await
        .expect("statistics computed");
    let output = tokio::process::Command::new("node")
        .arg(script_dir.join("landing.mjs"))
        .arg(&app.base_url)
        .arg(&screenshots)
        .env("CHROMIUM", &chromium)
        .current_dir(&script_dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (install Node.js 18 or newer)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Each screenshot must be this run's and show a drawn page: the expected width, and more bytes
    // than a blank page compresses to (an empty 1280x900 page is about 5 KB; the smallest real one,
    // the phone-sized statistics page, about 60 KB).
    for (name, width) in [
        ("landing-1280.png", 1280),
        ("landing-390.png", 390),
        ("stats-1280.png", 1280),
        ("stats-390.png", 390),
        ("stats-dark-1280.png", 1280),
    ] {
        let path = screenshots.join(name);
        let written = std::fs::metadata(&path)
            .and_then(|meta| meta.modified())
            .unwrap_or_else(|error| panic!("{name} not written: {error}"));
        assert!(
            written >= started,
            "{name} is left over from an earlier run"
        );
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
        let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(png_width, width, "{name} width");
        assert!(
            png.len() > 20_000,
            "{name} is {} bytes: nothing was drawn",
            png.len()
        );
    }
    app.cleanup().await;
}

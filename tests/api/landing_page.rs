//! The landing page, the API description and the static assets through real HTTP: every section and
//! every catalogued key on the page, security and caching headers, compression, HEAD, the 404 page,
//! robots.txt, the favicon, and that the page's own examples are what the service really does.

use crate::common::{TestApp, assert_grpc_error, test_data};
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::{Method, Response};
use serde_json::Value;
use telemetry_server::catalogue::{Group, METRIC_KEYS, Product};

async fn get(app: &TestApp, path: &str) -> Response {
    app.client
        .get(app.url(path))
        .send()
        .await
        .expect("request reaches the service")
}

fn header(response: &Response, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

/// The headers every HTML page must carry.
fn assert_html_security_headers(response: &Response) {
    let csp = header(response, "content-security-policy").expect("Content-Security-Policy");
    for directive in [
        "default-src 'self'",
        "script-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(
        header(response, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(response, "referrer-policy").as_deref(),
        Some("no-referrer")
    );
    assert_eq!(header(response, "x-frame-options").as_deref(), Some("DENY"));
}

/// Markup the strict policy would block, so it must not be in the page at all.
fn assert_nothing_inline(html: &str) {
    assert!(!html.contains("<script"), "inline or external script");
    assert!(!html.contains(" style="), "inline style attribute");
    assert!(!html.contains("<style"), "inline style element");
    for (at, _) in html.match_indices(" on") {
        let name: String = html[at + 3..]
            .chars()
            .take_while(char::is_ascii_lowercase)
            .collect();
        assert!(
            !html[at + 3 + name.len()..].starts_with('='),
            "event handler attribute on{name}"
        );
    }
    for external in ["src=\"http", "href=\"//", "@import"] {
        assert!(!html.contains(external), "{external}");
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} not found"))
        + start.len();
    let to = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("{end} not found"));
    &text[from..from + to]
}

#[tokio::test]
async fn landing_page_has_every_section_and_every_known_key() {
    let app = TestApp::spawn().await;
    let response = get(&app, "/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, CONTENT_TYPE).as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_html_security_headers(&response);
    let html = response.text().await.unwrap();
    assert_nothing_inline(&html);

    for (id, heading) in [
        ("why", "Why we collect it"),
        ("collected", "What is gathered"),
        ("never", "What is never gathered"),
        ("country-and-id", "Two things to be open about"),
        ("when", "When reports are sent"),
        ("opt-out", "How to turn it off"),
        ("developers", "For developers"),
        ("attribution", "Data sources and attribution"),
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\"")),
            "section {id}"
        );
        assert!(
            html.contains(&format!(">{heading}</h2>")),
            "heading {heading}"
        );
    }

    for reason in [
        "Where to focus development",
        "How each release is taken up",
        "Whether to patch older versions",
        "When a version can be retired",
        "How often to release",
    ] {
        assert!(html.contains(reason), "reason {reason}");
    }
    for promise in [
        "No hostnames, no IP addresses",
        "No queries, query text or query results",
        "IP address itself is then discarded",
        "a random UUID (version 4)",
        "Turning telemetry off in PMM erases the stored ID",
        "wait 24 hours before their first report",
        "Some versions send straight away",
    ] {
        assert!(html.contains(promise), "text {promise:?}");
    }
    for opt_out in [
        "Advanced Settings",
        "docker run -e PMM_DISABLE_TELEMETRY=1",
        "docker run -e DISABLE_TELEMETRY=1",
        "PERCONA_TELEMETRY_DISABLE=1",
        "sudo systemctl disable --now percona-telemetry-agent",
        "reporting_enabled = false",
        "after every update",
    ] {
        assert!(html.contains(opt_out), "opt-out {opt_out:?}");
    }
    assert!(html.contains("POST /v1/telemetry/GenericReport HTTP/1.1"));
    assert!(html.contains("<a href=\"/openapi.json\">"));

    for entry in METRIC_KEYS {
        assert!(
            html.contains(&format!("<code>{}</code>", entry.key)),
            "catalogued key {} is not on the page",
            entry.key
        );
    }
    for product in Product::ALL {
        assert!(html.contains(product.title()), "{product:?}");
    }
    for group in Group::ALL {
        assert!(
            html.contains(&format!("id=\"keys-{}\"", group.slug())),
            "{group:?}"
        );
    }
    assert!(html.contains(&format!("({} of them)", METRIC_KEYS.len())));
    app.cleanup().await;
}

#[tokio::test]
async fn landing_page_is_structured_for_assistive_technology() {
    let app = TestApp::spawn().await;
    let html = get(&app, "/").await.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<meta name=\"viewport\""));
    for landmark in [
        "<header",
        "<nav aria-label=\"Main\">",
        "<main id=\"main\"",
        "<footer",
    ] {
        assert_eq!(html.matches(landmark).count(), 1, "{landmark}");
    }
    assert!(html.contains("href=\"#main\""), "skip link");

    // One h1, and no heading skips a level on the way down.
    let levels: Vec<u32> = html
        .match_indices("<h")
        .filter_map(|(at, _)| {
            let level = html[at + 2..].chars().next()?.to_digit(10)?;
            (1..=6).contains(&level).then_some(level)
        })
        .collect();
    assert_eq!(levels.first(), Some(&1));
    assert_eq!(levels.iter().filter(|&&l| l == 1).count(), 1, "{levels:?}");
    for pair in levels.windows(2) {
        assert!(
            pair[1] <= pair[0] + 1,
            "heading jumps from h{} to h{}",
            pair[0],
            pair[1]
        );
    }

    // Every image says what it is, or says it is decoration.
    for (at, _) in html.match_indices("<img") {
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains(" alt="), "image without alt: {tag}");
    }
    // Every table has headers for its columns and rows.
    assert_eq!(
        html.matches("<table").count(),
        html.matches("<th scope=\"col\">Name</th>").count()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_page_examples_are_what_the_service_does() {
    let app = TestApp::spawn().await;
    let html = get(&app, "/").await.text().await.unwrap();
    let developers = between(&html, "<section id=\"developers\"", "</section>");

    let request = between(
        developers,
        "POST /v1/telemetry/GenericReport HTTP/1.1\nContent-Type: application/json\n\n",
        "</code>",
    );
    let response = app.post_report(request.to_owned()).await;
    assert_eq!(response.status(), 200, "the sample request is accepted");
    assert_eq!(response.text().await.unwrap(), "{}");
    assert_eq!(app.count("reports").await, 1);

    let refused = between(
        developers,
        "HTTP/1.1 400 Bad Request\nContent-Type: application/json\n\n",
        "</code>",
    );
    let shown: Value = serde_json::from_str(refused).expect("the error example is JSON");
    let mut without_instance: Value = serde_json::from_str(request).unwrap();
    without_instance["reports"][0]
        .as_object_mut()
        .unwrap()
        .remove("instanceId");
    let response = app.post_report(without_instance.to_string()).await;
    let message = assert_grpc_error(response, 400, 3).await;
    assert_eq!(
        shown["message"], message,
        "the page quotes the real message"
    );
    assert_eq!(shown["code"], 3);
    app.cleanup().await;
}

#[tokio::test]
async fn api_description_is_served_and_its_examples_are_accepted() {
    let app = TestApp::spawn().await;
    let response = get(&app, "/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, CONTENT_TYPE).as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&response, CACHE_CONTROL).as_deref(),
        Some("public, max-age=3600")
    );
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.0."));
    for path in [
        "/v1/telemetry/GenericReport",
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/openapi.json",
        "/v1/telemetry/Report",
        "/v1/pmm-version-check",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is described");
    }

    let operation = &document["paths"]["/v1/telemetry/GenericReport"]["post"];
    let examples = operation["requestBody"]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap();
    assert!(!examples.is_empty());
    for (name, example) in examples {
        let response = app.post_report(example["value"].to_string()).await;
        assert_eq!(response.status(), 200, "example {name}");
    }
    for status in ["200", "400", "413", "500", "503"] {
        assert!(operation["responses"][status].is_object(), "{status}");
    }

    for (path, content_type) in [
        ("/v1/telemetry/Report", "application/json"),
        ("/v1/pmm-version-check", "text/plain"),
    ] {
        let example =
            &document["paths"][path]["post"]["requestBody"]["content"][content_type]["example"];
        let body = match example {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let response = app
            .client
            .post(app.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the example of {path}");
    }
    let stored = i64::try_from(examples.len()).unwrap() + 2;
    assert_eq!(app.count("reports").await, stored, "one report per example");
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_paths_get_a_styled_page_but_api_paths_keep_the_json_error() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/no-such-page"),
        (Method::POST, "/no-such-page"),
        (Method::GET, "/static/no-such-file.css"),
        (Method::GET, "/static/"),
        (Method::GET, "/static/../Cargo.toml"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            header(&response, CONTENT_TYPE).as_deref(),
            Some("text/html; charset=utf-8"),
            "{method} {path}"
        );
        assert_html_security_headers(&response);
        assert!(
            header(&response, CACHE_CONTROL).is_none(),
            "a 404 is not cached"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("This page does not exist"));
        assert!(html.contains("/static/style.css"), "styled like the rest");
        assert_nothing_inline(&html);
    }

    for path in ["/v1/nope", "/v1/telemetry/Unknown", "/v1"] {
        assert_grpc_error(get(&app, path).await, 404, 5).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn head_works_on_the_page_and_the_assets() {
    let app = TestApp::spawn().await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/static/style.css", "text/css"),
        ("/robots.txt", "text/plain"),
        ("/favicon.ico", "image/x-icon"),
        ("/openapi.json", "application/json"),
    ] {
        let full = get(&app, path).await;
        let full_length = full.bytes().await.unwrap().len();
        let response = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert_eq!(
            header(&response, CONTENT_TYPE).as_deref(),
            Some(content_type),
            "{path}"
        );
        if path != "/" {
            assert_eq!(
                header(&response, CONTENT_LENGTH),
                Some(full_length.to_string()),
                "{path}"
            );
        }
        assert!(
            response.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn robots_and_favicons() {
    let app = TestApp::spawn().await;
    let robots = get(&app, "/robots.txt").await;
    assert_eq!(robots.status(), 200);
    let text = robots.text().await.unwrap();
    assert!(text.contains("User-agent: *"));
    assert!(text.contains("Disallow: /v1/"));

    let ico = get(&app, "/favicon.ico").await;
    assert_eq!(ico.status(), 200);
    let bytes = ico.bytes().await.unwrap();
    assert_eq!(&bytes[..4], &[0, 0, 1, 0], "an ICO file");

    let svg = get(&app, "/static/favicon.svg").await;
    assert_eq!(header(&svg, CONTENT_TYPE).as_deref(), Some("image/svg+xml"));
    assert!(svg.text().await.unwrap().contains("<svg"));

    let html = get(&app, "/").await.text().await.unwrap();
    assert!(html.contains("rel=\"icon\" href=\"/static/favicon.svg"));
    app.cleanup().await;
}

#[tokio::test]
async fn assets_are_cached_revalidated_and_compressed() {
    let app = TestApp::spawn().await;
    let html = get(&app, "/").await.text().await.unwrap();
    let stylesheet = between(&html, "<link rel=\"stylesheet\" href=\"", "\"");
    assert!(
        stylesheet.starts_with("/static/style.css?v="),
        "fingerprinted: {stylesheet}"
    );

    let plain = get(&app, stylesheet).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(
        header(&plain, CACHE_CONTROL).as_deref(),
        Some("public, max-age=86400")
    );
    assert!(header(&plain, LAST_MODIFIED).is_some());
    assert!(
        header(&plain, "content-security-policy").is_none(),
        "CSP is for HTML"
    );
    assert_eq!(
        header(&plain, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let etag = header(&plain, ETAG).expect("ETag");
    let plain_length = plain.bytes().await.unwrap().len();

    let revalidated = app
        .client
        .get(app.url(stylesheet))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(
        header(&revalidated, CACHE_CONTROL).as_deref(),
        Some("public, max-age=86400")
    );

    for (path, cache) in [
        (stylesheet, "public, max-age=86400"),
        ("/", "public, max-age=300"),
        ("/openapi.json", "public, max-age=3600"),
    ] {
        let compressed = app
            .client
            .get(app.url(path))
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(compressed.status(), 200, "{path}");
        assert_eq!(
            header(&compressed, CONTENT_ENCODING).as_deref(),
            Some("gzip"),
            "{path}"
        );
        assert_eq!(header(&compressed, CACHE_CONTROL).as_deref(), Some(cache));
        let body = compressed.bytes().await.unwrap();
        assert_eq!(&body[..2], &[0x1f, 0x8b], "{path}: gzip stream");
        if path == stylesheet {
            assert!(body.len() * 2 < plain_length, "{path}: compressed well");
        }
    }
    app.cleanup().await;
}

#[tokio::test]
async fn ingest_and_operational_responses_keep_their_shape() {
    let app = TestApp::spawn().await;
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        header(&health, CONTENT_TYPE).as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&health, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(header(&health, CACHE_CONTROL).is_none());
    let response = app
        .client
        .get(app.url("/v1/telemetry/GenericReport"))
        .send()
        .await
        .unwrap();
    assert_grpc_error(response, 405, 12).await;
    app.cleanup().await;
}

#[tokio::test]
async fn attribution_names_the_geoip_database_in_use() {
    let bundled = TestApp::spawn().await;
    let html = get(&bundled, "/").await.text().await.unwrap();
    let section = between(&html, "<section id=\"attribution\"", "</section>");
    assert!(section.contains("https://www.nro.net/"));
    assert!(section.contains("geo-whois-asn-country"));
    assert!(section.contains("CC BY 4.0"));
    assert!(!section.contains("MaxMind"));
    bundled.cleanup().await;

    let maxmind = TestApp::spawn_with(|config| {
        config.geoip_database = Some(test_data("GeoLite2-Country-Test.mmdb"));
    })
    .await;
    let html = get(&maxmind, "/").await.text().await.unwrap();
    let section = between(&html, "<section id=\"attribution\"", "</section>");
    assert!(section.contains("This product includes GeoLite2 data created by MaxMind"));
    assert!(section.contains("https://www.maxmind.com"));
    assert!(
        section.contains("GeoLite2-Country"),
        "the database type is shown"
    );
    assert!(!section.contains("nro.net"));
    maxmind.cleanup().await;
}

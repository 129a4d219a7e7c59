//! Checks every service must pass (section 3 of the architecture), shared by the
//! services' own test suites and the end-to-end suite through the gateway.

use serde_json::Value;

use crate::spawn::{jwks_url, spawn_auth, Verifier};
use peermesh_test_support::client::{assert_problem, TestClient};
use peermesh_test_support::metrics::{scrape, Scrape};

/// `/health` and `/ready` answer 200 JSON with a request id, at the root and under the prefix.
pub async fn health_and_ready(client: &TestClient, prefix: &str, service: &str) {
    for path in [format!("{prefix}/health"), format!("{prefix}/ready")] {
        let resp = client.get(&path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            resp.headers().contains_key("x-request-id"),
            "{path} has no X-Request-ID"
        );
        let ct = resp.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body["service"], service, "{path}: {body}");
        if path.ends_with("/ready") {
            assert_eq!(body["status"], "ready", "{body}");
            assert_eq!(body["checks"]["database"], "ok", "{body}");
        } else {
            assert_eq!(body["status"], "ok", "{body}");
        }
    }
}

/// A sane incoming `X-Request-ID` is echoed; a hostile one is replaced.
pub async fn request_ids(client: &TestClient, prefix: &str) {
    let path = format!("{prefix}/health");
    let resp = client
        .request(reqwest::Method::GET, &path)
        .header("X-Request-ID", "test-rid-42")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.headers()["x-request-id"], "test-rid-42");

    let resp = client
        .request(reqwest::Method::GET, &path)
        .header("X-Request-ID", "bad id with spaces")
        .send()
        .await
        .expect("GET");
    let id = resp.headers()["x-request-id"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!id.is_empty() && id != "bad id with spaces", "{id}");

    let a = client.get(&path).await.headers()["x-request-id"].clone();
    let b = client.get(&path).await.headers()["x-request-id"].clone();
    assert_ne!(a, b, "generated ids must differ per request");
}

/// Unknown routes, wrong methods and broken docs paths are problem+json, never HTML or a panic.
pub async fn errors_are_problems(client: &TestClient, prefix: &str) {
    let body = assert_problem(
        // Deep enough that no service's `/{id}`-style route takes it.
        client
            .get(&format!("{prefix}/no-such-route/at/all/x"))
            .await,
        404,
        "not_found",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no-such-route"),
        "{body}"
    );
    assert_problem(
        client
            .get(&format!("{prefix}/docs/definitely-not-a-file.js"))
            .await,
        404,
        "not_found",
    )
    .await;
    let resp = client
        .request(reqwest::Method::POST, &format!("{prefix}/health"))
        .send()
        .await
        .expect("POST");
    // actix answers an unrouted method like an unknown route: a 404 problem.
    assert_problem(resp, 404, "not_found").await;
}

/// The served OpenAPI document is valid v3, lists the health routes, and equals the
/// committed snapshot (`UPDATE_SNAPSHOTS=1` rewrites it).
pub async fn openapi_matches_snapshot(
    client: &TestClient,
    prefix: &str,
    snapshot: &std::path::Path,
) {
    let resp = client.get(&format!("{prefix}/openapi.json")).await;
    assert_eq!(resp.status(), 200);
    let spec: Value = resp.json().await.expect("spec is JSON");
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{spec}"
    );
    for route in ["health", "ready"] {
        let path = format!("{prefix}/{route}");
        assert!(
            spec["paths"][&path]["get"].is_object(),
            "spec lacks GET {path}"
        );
    }
    let rendered = serde_json::to_string_pretty(&spec).expect("pretty") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(snapshot, &rendered).expect("write snapshot");
        return;
    }
    let committed = std::fs::read_to_string(snapshot).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} differs from what the service serves; run `UPDATE_SNAPSHOTS=1 scripts/test` and commit it",
        snapshot.display()
    );

    // Swagger UI 5, for this spec only: /docs leads to the UI, whose configuration
    // names the spec and ignores ?url= / ?configUrl= (no foreign spec on our origin).
    for path in [
        format!("{prefix}/docs"),
        format!("{prefix}/docs?url=https://evil.example/x.json"),
    ] {
        let docs = client.get(&path).await;
        assert_eq!(docs.status(), 308, "{path}");
        assert_eq!(
            docs.headers()["location"],
            format!("{prefix}/docs/").as_str()
        );
    }
    let page = client.get(&format!("{prefix}/docs/")).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .contains("frame-ancestors 'none'"));
    let init = client
        .get(&format!("{prefix}/docs/swagger-initializer.js"))
        .await
        .text()
        .await
        .expect("initializer");
    assert!(
        init.contains(&format!("\"url\": \"{prefix}/openapi.json\"")),
        "{init}"
    );
    assert!(init.contains("\"queryConfigEnabled\": false"), "{init}");
    let bundle = client
        .get(&format!("{prefix}/docs/swagger-ui-bundle.js"))
        .await;
    assert_eq!(bundle.status(), 200);
}

async fn ready_body(client: &TestClient, prefix: &str) -> (u16, Value) {
    let resp = client.get(&format!("{prefix}/ready")).await;
    (resp.status().as_u16(), resp.json().await.expect("JSON"))
}

/// Without the auth service's keys a verifying service is alive but not ready and
/// says why; with migrations switched off on an empty database, readiness names the
/// database.
pub async fn readiness_names_failing_checks(service: Verifier) {
    let prefix = service.path_prefix();
    let auth = spawn_auth(&[]).await;
    let url = jwks_url(&auth);

    let pending = service
        .spawn(&url, &[("RUN_MIGRATIONS", "false".into())])
        .await;
    let (status, body) = ready_body(&pending.client, prefix).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["database"]
            .as_str()
            .unwrap_or_default()
            .contains("pending"),
        "{body}"
    );
    assert_eq!(body["checks"]["jwks"], "ok");

    auth.stop().await;
    let keyless = service
        .spawn(&url, &[("JWKS_MIN_REFETCH_SECS", "0".into())])
        .await;
    assert_eq!(
        keyless
            .client
            .get(&format!("{prefix}/health"))
            .await
            .status(),
        200
    );
    let (status, body) = ready_body(&keyless.client, prefix).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    assert!(
        body["checks"]["jwks"]
            .as_str()
            .unwrap_or_default()
            .contains("fetching JWKS"),
        "{body}"
    );
}

/// Everything above for one verifying service, started behind a real auth service.
pub async fn verifier_conformance(service: Verifier) {
    let prefix = service.path_prefix();
    let auth = spawn_auth(&[]).await;
    let app = service.spawn(&jwks_url(&auth), &[]).await;
    health_and_ready(&app.client, prefix, service.name()).await;
    request_ids(&app.client, prefix).await;
    errors_are_problems(&app.client, prefix).await;
    metrics_exposed(&app.client, prefix, service.name()).await;
}

/// `GET /metrics` (the service's own port only) counts requests by route pattern and
/// status — never by raw path — and reports the database pool and the process.
pub async fn metrics_exposed(client: &TestClient, prefix: &str, service: &str) {
    let health = format!("{prefix}/health");
    let before = scrape(client).await;
    for _ in 0..3 {
        assert_eq!(client.get(&health).await.status(), 200);
    }
    let stray = format!("{prefix}/no-such-route/at/all/metrics-probe");
    assert_eq!(client.get(&stray).await.status(), 404);
    let after: Scrape = scrape(client).await;

    let labels = [
        ("service", service),
        ("method", "GET"),
        ("route", health.as_str()),
        ("status", "200"),
    ];
    let counted = after
        .value("peermesh_http_requests_total", &labels)
        .unwrap_or(0.0)
        - before
            .value("peermesh_http_requests_total", &labels)
            .unwrap_or(0.0);
    assert_eq!(counted, 3.0, "{}", after.text);
    let latency = after
        .value("peermesh_http_request_duration_seconds_count", &labels)
        .unwrap_or(0.0);
    assert!(latency >= 3.0, "{}", after.text);
    assert!(
        after
            .value(
                "peermesh_http_requests_total",
                &[("route", "unmatched"), ("status", "404")]
            )
            .is_some_and(|n| n >= 1.0),
        "{}",
        after.text
    );
    assert!(
        !after.text.contains("metrics-probe"),
        "a raw path became a label"
    );
    assert!(
        after
            .value("peermesh_db_pool_max_connections", &[])
            .is_some_and(|n| n >= 1.0),
        "{}",
        after.text
    );
    assert!(
        after
            .value("process_resident_memory_bytes", &[])
            .is_some_and(|n| n > 0.0),
        "{}",
        after.text
    );
    // Not under the public prefix: only the operators' scraper reaches it.
    let public = client.get(&format!("{prefix}/metrics")).await;
    assert!(public.status().is_client_error(), "{}", public.status());
}

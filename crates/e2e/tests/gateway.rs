//! The whole system as a client sees it: three services behind a real nginx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use peermesh_test_support::client::assert_problem;
use peermesh_test_support::conformance;
use peermesh_test_support::spawn::spawn_stack;
use serde_json::Value;

const SERVICES: [(&str, &str); 3] = [
    ("/api/v1/auth", "auth"),
    ("/api/v1/ingest", "ingestion"),
    ("/api/v1/content", "content"),
];

#[actix_web::test]
async fn every_service_is_healthy_and_ready_through_the_gateway() {
    let stack = spawn_stack().await;
    for (prefix, service) in SERVICES {
        conformance::health_and_ready(&stack.client, prefix, service).await;
        conformance::request_ids(&stack.client, prefix).await;
        conformance::errors_are_problems(&stack.client, prefix).await;
        let spec: Value = stack
            .client
            .get(&format!("{prefix}/openapi.json"))
            .await
            .json()
            .await
            .unwrap();
        assert!(spec["paths"][format!("{prefix}/health")]["get"].is_object());
    }
    let resp = stack.client.get("/health").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["service"], "gateway");
}

#[actix_web::test]
async fn the_gateway_answers_its_own_errors_as_problems() {
    let stack = spawn_stack().await;
    let body = assert_problem(stack.client.get("/nowhere").await, 404, "not_found").await;
    assert!(body["detail"].as_str().unwrap().contains("/nowhere"));
    assert_problem(
        stack.client.get("/api/v1/content/metrics").await,
        404,
        "not_found",
    )
    .await;

    // 10 MiB is the ordinary body limit: one byte more is refused at the gateway.
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let resp = stack
        .client
        .request(reqwest::Method::POST, "/api/v1/content/")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413, "payload_too_large").await;

    // A service that is down is a 503 problem, not nginx's HTML page.
    stack.content.stop().await;
    let resp = stack.client.get("/api/v1/content/health").await;
    assert_problem(resp, 503, "service_unavailable").await;
}

#[actix_web::test]
async fn request_ids_flow_from_the_gateway_to_the_service_and_the_access_log() {
    let stack = spawn_stack().await;
    let resp = stack
        .client
        .request(reqwest::Method::GET, "/api/v1/auth/ready")
        .header("X-Request-ID", "e2e-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ids: Vec<_> = resp.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1, "exactly one X-Request-ID header");
    assert_eq!(ids[0], "e2e-trace-1");

    // Without one, the gateway's own id reaches the service and comes back.
    let resp = stack.client.get("/api/v1/ingest/health").await;
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32, "nginx $request_id: {generated}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));

    // Give nginx a moment to write the log lines.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = stack.gateway.access_log();
    let line = log
        .iter()
        .find(|l| l["request_id"] == "e2e-trace-1")
        .expect("access log line for the traced request");
    assert_eq!(line["path"], "/api/v1/auth/ready");
    assert_eq!(line["status"], 200);
    assert_eq!(line["service"], "gateway");
    assert!(log.iter().any(|l| l["request_id"] == generated.as_str()));
}

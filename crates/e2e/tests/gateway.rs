//! The whole system as a client sees it: three services behind a real nginx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use peermesh_test_stack::conformance;
use peermesh_test_stack::spawn::spawn_stack;
use peermesh_test_support::auth::{register, unique_email};
use peermesh_test_support::client::assert_problem;
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
    // Metrics are for the operators' scraper on each service's port, never public.
    for path in [
        "/metrics",
        "/api/v1/content/metrics",
        "/api/v1/auth/metrics",
    ] {
        assert_problem(stack.client.get(path).await, 404, "not_found").await;
    }

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

/// W3C trace context: the gateway passes a valid `traceparent` on and starts a trace
/// (its request id as the trace id) when none or a broken one comes in; the service
/// logs the trace id, and both ends agree.
#[actix_web::test]
async fn traces_start_or_continue_at_the_gateway_and_reach_the_service_logs() {
    peermesh_test_support::logs::capture();
    let stack = spawn_stack().await;
    let path = "/api/v1/auth/.well-known/jwks.json";
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let get = |traceparent: Option<&str>| {
        let mut request = stack.client.request(reqwest::Method::GET, path);
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        request.send()
    };
    let continued = get(Some(&incoming)).await.unwrap();
    assert_eq!(continued.status(), 200);
    let continued_id = continued.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let started = get(None).await.unwrap();
    let started_id = started.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let broken = get(Some("00-not-a-trace-01")).await.unwrap();
    let broken_id = broken.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let gateway = stack.gateway.access_log();
    let services = peermesh_test_support::logs::lines();
    let traced = |request_id: &str| {
        let at_gateway = gateway
            .iter()
            .find(|l| l["request_id"] == request_id)
            .and_then(|l| l["traceparent"].as_str())
            .unwrap_or_default()
            .to_owned();
        let at_service = services
            .iter()
            .find(|l| l["request_id"] == request_id && l["msg"] == "request")
            .and_then(|l| l["trace_id"].as_str())
            .unwrap_or_default()
            .to_owned();
        (at_gateway, at_service)
    };
    assert_eq!(traced(&continued_id), (incoming.clone(), trace_id.clone()));
    for generated in [&started_id, &broken_id] {
        let (at_gateway, at_service) = traced(generated);
        assert_eq!(
            at_gateway,
            format!("00-{generated}-{}-01", &generated[..16]),
            "the gateway starts the trace with its request id"
        );
        assert_eq!(&at_service, generated);
    }
}

/// The gateway limits sign-in attempts per address before they reach the service,
/// and says so as a problem with Retry-After.
#[actix_web::test]
async fn the_gateway_rate_limits_sign_in_routes() {
    use peermesh_test_support::gateway::{Gateway, Upstreams};
    let stack = spawn_stack().await;
    let gateway = Gateway::start_with(
        &Upstreams {
            auth: stack.auth.addr(),
            ingest: stack.ingestion.addr(),
            content: stack.content.addr(),
        },
        &[("GATEWAY_AUTH_RATE", "1r/s"), ("GATEWAY_AUTH_BURST", "3")],
    );
    let client = peermesh_test_support::TestClient::new(gateway.base_url());
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let resp = client
            .post_json(
                "/api/v1/auth/login",
                &serde_json::json!({"email": "nobody@example.com", "password": "guess guess"}),
            )
            .await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert_eq!(resp.headers()["retry-after"], "1");
            assert_problem(resp, 429, "rate_limited").await;
        }
    }
    assert!(statuses.contains(&401), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // Other auth routes are not limited.
    for _ in 0..10 {
        assert_eq!(client.get("/api/v1/auth/health").await.status(), 200);
    }
}

/// Sign up, use the token at another service, refresh and log out — all through nginx.
#[actix_web::test]
async fn a_user_signs_up_and_reads_content_through_the_gateway() {
    use peermesh_test_support::auth::{get_json, register, unique_email};
    let stack = spawn_stack().await;
    let user = register(&stack.client, &unique_email("e2e")).await;
    let resp = stack
        .client
        .request(reqwest::Method::GET, "/api/v1/content")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["items"], serde_json::json!([]));

    let resp = stack
        .client
        .post_json(
            "/api/v1/auth/refresh",
            &serde_json::json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let sessions = get_json(&stack.client, "/api/v1/auth/sessions", &user.access_token).await;
    // The gateway's X-Real-IP is what the service records, not nginx's own address.
    assert_eq!(sessions["items"][0]["ip"], "127.0.0.1");
}

/// Every answer, proxied or the gateway's own, carries the security headers once:
/// no sniffing, no framing, no referrer, a service's own policy where it sets one,
/// and HSTS only over HTTPS (here: a TLS proxy in front saying so).
#[actix_web::test]
async fn every_answer_carries_the_security_headers() {
    let stack = spawn_stack().await;
    let one = |resp: &reqwest::Response, name: &str| -> Option<String> {
        let all: Vec<_> = resp.headers().get_all(name).iter().collect();
        assert!(all.len() <= 1, "{name} given {} times", all.len());
        all.first().map(|v| v.to_str().unwrap().to_owned())
    };
    for path in [
        "/api/v1/content/health",         // proxied
        "/api/v1/auth/no-such-route/x/y", // the service's 404
        "/nowhere",                       // the gateway's own 404
    ] {
        let resp = stack.client.get(path).await;
        assert_eq!(
            one(&resp, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            one(&resp, "x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            one(&resp, "content-security-policy").as_deref(),
            Some("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(
            one(&resp, "referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(
            one(&resp, "strict-transport-security"),
            None,
            "{path}: plain HTTP"
        );
        assert!(one(&resp, "x-request-id").is_some(), "{path}");
    }
    // Swagger UI keeps its own (stricter) policy.
    let docs = stack.client.get("/api/v1/content/docs/").await;
    assert_eq!(docs.status(), 200);
    assert!(one(&docs, "content-security-policy")
        .unwrap()
        .starts_with("default-src 'self'"));

    let tls = stack
        .client
        .request(reqwest::Method::GET, "/api/v1/content/health")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        one(&tls, "strict-transport-security").as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[actix_web::test]
async fn the_change_stream_passes_the_gateway_event_by_event() {
    let stack = spawn_stack().await;
    let user = register(&stack.client, &unique_email("follower")).await;
    let mut resp = stack
        .client
        .request(reqwest::Method::GET, "/api/v1/content/changes/stream")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    // The first line comes through at once, not when the stream ends (buffering off).
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), resp.chunk())
        .await
        .expect("nothing came through the gateway")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("retry:"));
    // An item created now reaches the open stream.
    let created: Value = stack
        .client
        .request(reqwest::Method::POST, "/api/v1/content/")
        .bearer_auth(&user.access_token)
        .json(&serde_json::json!({"title": "Seen live", "body": "through nginx"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut text = String::new();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(&id) {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the change never came through: {text:?}");
    assert!(text.contains("event: change"), "{text}");
}

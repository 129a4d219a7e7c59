//! Optional OpenTelemetry export: with an OTLP endpoint set, each request's span goes
//! to the collector, in the trace the request came with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use peermesh_test_stack::spawn::{jwks_url, spawn_auth, Verifier};

/// A local OTLP/HTTP collector: keeps the bodies posted to /v1/traces.
fn collector(bodies: Arc<Mutex<Vec<Vec<u8>>>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let bodies = bodies.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let bodies = bodies.clone();
                async move {
                    bodies.lock().unwrap().push(body.to_vec());
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    port
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[actix_web::test]
async fn spans_go_to_the_configured_collector_in_the_callers_trace() {
    let bodies = Arc::default();
    let port = collector(Arc::clone(&bodies));
    let auth = spawn_auth(&[]).await;
    let content = Verifier::Content
        .spawn(
            &jwks_url(&auth),
            &[("OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"))],
        )
        .await;
    let trace_id = uuid::Uuid::new_v4();
    let resp = content
        .client
        .request(reqwest::Method::GET, "/api/v1/content/health")
        .header(
            "traceparent",
            format!("00-{}-00f067aa0ba902b7-01", trace_id.simple()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Exported in batches, about once a second.
    let mut exported = Vec::new();
    for _ in 0..100 {
        exported = bodies.lock().unwrap().concat();
        if contains(&exported, trace_id.as_bytes()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // OTLP protobuf carries ids as raw bytes and names as UTF-8.
    assert!(
        contains(&exported, trace_id.as_bytes()),
        "no span of the trace"
    );
    assert!(contains(
        &exported,
        &[0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    ));
    assert!(contains(&exported, b"peermesh-content"));
    assert!(contains(&exported, b"GET /api/v1/content/health"));
}

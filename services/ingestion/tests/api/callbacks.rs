//! Job callbacks: a signed POST to a local receiver when a job finishes.

use hmac::{Hmac, Mac};
use peermesh_test_support::client::assert_problem;
use peermesh_test_support::receiver::Receiver;
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;

use crate::files::{file, stack};

const SECRET: &str = "callback-secret-for-tests";

/// The first callback the receiver got, waiting for it: (signature, timestamp, body,
/// traceparent).
async fn first_callback(receiver: &Receiver) -> (String, String, String, String) {
    let first = receiver.until(|r| !r.is_empty()).await.remove(0);
    (
        first.signature,
        first.timestamp,
        first.body,
        first.traceparent,
    )
}

fn expected_signature(timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={:x}", mac.finalize().into_bytes())
}

#[actix_web::test]
async fn finished_jobs_post_a_signed_callback() {
    let inbox = Receiver::start(0);
    let port = inbox.port;
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("CALLBACK_SECRET", SECRET.into()),
            ("SYNC_MAX_BYTES", "20".into()),
        ],
    )
    .await;
    let hook = format!("http://127.0.0.1:{port}/hook");
    // A queued job (over the synchronous limit), finished by a worker.
    let resp = env
        .upload(
            file(
                "cb.txt",
                "text/plain",
                b"a queued document with a callback".to_vec(),
            )
            .text("callback_url", hook.clone()),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let job_id = resp.json::<Value>().await.unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (signature, timestamp, body, _) = first_callback(&inbox).await;
    assert_eq!(
        signature,
        expected_signature(&timestamp, &body),
        "the signature verifies"
    );
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["event"], "job.finished");
    assert_eq!(payload["job"]["id"], job_id.as_str());
    assert_eq!(payload["job"]["status"], "succeeded");
    assert_eq!(payload["job"]["content_ids"].as_array().unwrap().len(), 1);
    // Counted once the receiver answered.
    let mut delivered = None;
    for _ in 0..100 {
        let scraped = peermesh_test_support::metrics::scrape(&env.ingest.client).await;
        delivered = scraped.value(
            "peermesh_ingest_callbacks_total",
            &[("outcome", "delivered")],
        );
        if delivered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, Some(1.0));
}

#[actix_web::test]
async fn callback_urls_are_checked() {
    let without_secret = stack(None, true, &[]).await;
    let resp = without_secret
        .upload(
            file("a.txt", "text/plain", b"x".to_vec())
                .text("callback_url", "https://example.com/hook"),
        )
        .await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "callback_url");

    let strict = stack(None, true, &[("CALLBACK_SECRET", SECRET.into())]).await;
    for bad in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/",
        "ftp://example.com/",
    ] {
        let resp = strict
            .upload(file("a.txt", "text/plain", b"x".to_vec()).text("callback_url", bad))
            .await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "callback_url", "{bad}");
    }
    assert_eq!(
        strict.content_get("/api/v1/content").await["items"],
        serde_json::json!([])
    );
}

/// The trace of an upload (W3C `traceparent`) is stored with its job and continued by
/// the worker: its calls to auth and content and the job's callback all carry the same
/// trace id, each service logs it, and each hop has a span of its own.
#[actix_web::test]
async fn a_queued_upload_keeps_its_trace_through_worker_auth_content_and_callback() {
    peermesh_test_support::logs::capture();
    let inbox = Receiver::start(0);
    let port = inbox.port;
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("CALLBACK_SECRET", SECRET.into()),
            ("SYNC_MAX_BYTES", "20".into()),
        ],
    )
    .await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let resp = env
        .upload_with(
            file(
                "traced.txt",
                "text/plain",
                b"a queued document that carries its trace".to_vec(),
            )
            .text("callback_url", format!("http://127.0.0.1:{port}/hook")),
            &[("traceparent", format!("00-{trace_id}-{caller_span}-01"))],
        )
        .await;
    assert_eq!(resp.status(), 202);

    let (_, _, body, traceparent) = first_callback(&inbox).await;
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["job"]["status"], "succeeded", "{payload}");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(
        parts[1], trace_id,
        "the callback continues the upload's trace"
    );
    assert_ne!(parts[2], caller_span, "the worker has a span of its own");

    // Every service logged the trace: ingestion the upload, auth the worker's token
    // request, content the item the worker wrote.
    let lines = peermesh_test_support::logs::lines();
    let traced = |service: &str, path: &str| {
        lines.iter().any(|l| {
            l["service"] == service
                && l["msg"] == "request"
                && l["path"] == path
                && l["trace_id"] == trace_id.as_str()
        })
    };
    assert!(traced("ingestion", "/api/v1/ingest/files"));
    assert!(traced("auth", "/api/v1/auth/token"));
    assert!(traced("content", "/api/v1/content"));
    // And spans differ per hop: the content request's parent is not the caller's span.
    let content_span = lines
        .iter()
        .find(|l| l["service"] == "content" && l["trace_id"] == trace_id.as_str())
        .and_then(|l| l["span_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(content_span.len() == 16 && content_span != caller_span);
}

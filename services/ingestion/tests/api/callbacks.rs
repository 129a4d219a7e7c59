//! Job callbacks: a signed POST to a local receiver when a job finishes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use peermesh_test_support::client::assert_problem;
use serde_json::Value;
use sha2::Sha256;

use crate::files::{file, stack};

const SECRET: &str = "callback-secret-for-tests";

/// Received callbacks: (signature, timestamp, body).
type Inbox = Arc<Mutex<Vec<(String, String, String)>>>;

fn receiver(inbox: Inbox) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let inbox = inbox.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: String| {
                let inbox = inbox.clone();
                async move {
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    inbox.lock().unwrap().push((
                        header("x-peermesh-signature"),
                        header("x-peermesh-timestamp"),
                        body,
                    ));
                    HttpResponse::NoContent().finish()
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

fn expected_signature(timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={:x}", mac.finalize().into_bytes())
}

#[actix_web::test]
async fn finished_jobs_post_a_signed_callback() {
    let inbox: Inbox = Arc::default();
    let port = receiver(inbox.clone());
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
    let mut got = None;
    for _ in 0..100 {
        if let Some(first) = inbox.lock().unwrap().first().cloned() {
            got = Some(first);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (signature, timestamp, body) = got.expect("the callback arrived");
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

//! An export's archive, made by the content service, carries the original files kept
//! here: its download fetches each from `GET /files/{sha256}` with the downloading
//! owner's own token.

use std::io::Read;
use std::time::Duration;

use peermesh_test_support::auth::{authed, register, unique_email};
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::Value;
use sha2::Digest as _;

use crate::files::{file, stack};
use crate::limits::unique_text;

#[actix_web::test]
async fn an_exports_archive_carries_the_original_files() {
    let env = stack(None, true, &[]).await;
    let content = env.content.as_ref().unwrap();
    let token = &env.user.access_token;
    let original = unique_text("the original");
    let sha = format!("{:x}", sha2::Sha256::digest(&original));
    let resp = env
        .upload(file("field.txt", "text/plain", original.clone()))
        .await;
    assert_eq!(resp.status(), 201);

    // Ingestion serves it by its hash to its owner, and to nobody else.
    let path = format!("/api/v1/ingest/files/{sha}");
    let resp = authed(&env.ingest.client, Method::GET, &path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), original.as_slice());
    let other = register(&env.auth.client, &unique_email("other")).await;
    let resp = authed(&env.ingest.client, Method::GET, &path, &other.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404, "not_found").await;

    // The export, then its archive with the original in it, byte for byte.
    let resp = authed(
        &content.client,
        Method::POST,
        "/api/v1/content/export",
        token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let mut export = Value::Null;
    for _ in 0..400 {
        export = authed(&content.client, Method::GET, &location, token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if export["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(export["status"], "succeeded", "{export}");
    assert_eq!(export["originals"], 1);
    let archive = authed(
        &content.client,
        Method::GET,
        export["archive_url"].as_str().unwrap(),
        token,
    )
    .send()
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let mut tar = tar::Archive::new(archive.as_ref());
    let mut found = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        found.push((name, bytes));
    }
    let wanted = format!("peermesh-export/originals/{sha}");
    let (_, bytes) = found
        .iter()
        .find(|(name, _)| *name == wanted)
        .unwrap_or_else(|| {
            panic!(
                "no {wanted} among {:?}",
                found.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    assert_eq!(bytes, &original);
    assert!(found
        .iter()
        .any(|(n, _)| n == "peermesh-export/manifest.json"));
    // The archive ends where a tar ends: two zero blocks, after the original.
    assert!(archive.len() % 512 == 0 && archive[archive.len() - 1024..].iter().all(|b| *b == 0));

    // Another account takes it in whole (the originals are there to keep, not needed).
    let resp = authed(
        &content.client,
        Method::POST,
        "/api/v1/content/import",
        &other.access_token,
    )
    .header("content-type", "application/x-tar")
    .body(archive)
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let counts: Value = resp.json().await.unwrap();
    assert_eq!(counts["items"], 1);
}

#[actix_web::test]
async fn an_upload_reaches_its_owners_open_change_stream() {
    let env = stack(None, true, &[]).await;
    let content = env.content.as_ref().unwrap();
    let mut stream = authed(
        &content.client,
        Method::GET,
        "/api/v1/content/changes/stream",
        &env.user.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(stream.status(), 200);
    let resp = env
        .upload(file("live.txt", "text/plain", unique_text("followed")))
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let id = body["content_ids"][0].as_str().unwrap().to_owned();
    let mut text = String::new();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(&id) {
                return;
            }
        }
    })
    .await;
    assert!(
        seen.is_ok(),
        "the new item never reached the stream: {text:?}"
    );
    assert!(text.contains("\"op\":\"created\""), "{text}");
}

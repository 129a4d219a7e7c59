//! What one user may put in: refused uploads leave nothing on disk, a storage quota,
//! a share of the queue, and the same file sent many times at once is one item.

use std::path::PathBuf;

use peermesh_test_support::client::assert_problem;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::Digest as _;

use crate::files::{file, stack};

/// Where the test services keep blobs (see test-support's spawn), by content hash.
pub(crate) fn blob_path(bytes: &[u8]) -> PathBuf {
    let sha = format!("{:x}", sha2::Sha256::digest(bytes));
    std::env::temp_dir()
        .join("peermesh-test-blobs")
        .join(&sha[..2])
        .join(sha)
}

/// Bytes no other test uploads.
pub(crate) fn unique_text(tag: &str) -> Vec<u8> {
    format!("{tag} {}\nsome words to ingest\n", uuid::Uuid::new_v4()).into_bytes()
}

#[actix_web::test]
async fn refused_uploads_leave_no_bytes_on_disk() {
    let env = stack(
        None,
        true,
        &[
            ("MAX_BYTES", "4096".into()),
            ("SYNC_MAX_BYTES", "4096".into()),
        ],
    )
    .await;

    // The format is wrong: 415.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let resp = env.upload(file("x.png", "image/png", png.clone())).await;
    assert_problem(resp, 415, "unsupported_format").await;
    assert!(!blob_path(&png).exists());

    // The form is wrong after the file: 422.
    let text = unique_text("late field");
    let form = file("notes.txt", "text/plain", text.clone()).text("colour", "blue");
    let resp = env.upload(form).await;
    assert_problem(resp, 422, "validation_failed").await;
    assert!(!blob_path(&text).exists());

    // Too large: 413.
    let big = [unique_text("big"), vec![b'a'; 5000]].concat();
    let resp = env.upload(file("big.txt", "text/plain", big.clone())).await;
    assert_problem(resp, 413, "payload_too_large").await;
    assert!(!blob_path(&big).exists());

    // Accepted: kept.
    let fine = unique_text("fine");
    let resp = env
        .upload(file("fine.txt", "text/plain", fine.clone()))
        .await;
    assert_eq!(resp.status(), 201);
    assert!(blob_path(&fine).exists());
}

#[actix_web::test]
async fn uploads_fit_in_a_storage_quota_and_a_share_of_the_queue() {
    let env = stack(
        None,
        true,
        &[
            ("QUOTA_BYTES_PER_USER", "1000".into()),
            ("ACTIVE_JOBS_PER_USER", "2".into()),
            // No workers and queued files: jobs stay queued.
            ("ROLE", "api".into()),
            ("SYNC_MAX_BYTES", "10".into()),
        ],
    )
    .await;
    let first = unique_text("one");
    assert_eq!(
        env.upload(file("1.txt", "text/plain", first.clone()))
            .await
            .status(),
        202
    );
    assert_eq!(
        env.upload(file("2.txt", "text/plain", unique_text("two")))
            .await
            .status(),
        202
    );
    // The same bytes again are no new job, whatever the limits.
    assert_eq!(
        env.upload(file("1.txt", "text/plain", first))
            .await
            .status(),
        202
    );

    let third = unique_text("three");
    let resp = env.upload(file("3.txt", "text/plain", third.clone())).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 429, "too_many_jobs").await;
    assert!(!blob_path(&third).exists());

    let over = [unique_text("over"), vec![b'z'; 1000]].concat();
    let resp = env.upload(file("4.txt", "text/plain", over.clone())).await;
    let problem = assert_problem(resp, 413, "storage_quota_exceeded").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("of 1000 bytes"),
        "{problem}"
    );
    assert!(!blob_path(&over).exists());
}

/// The same file sent in parallel by one user is one job and one item: the first to
/// record it wins, the others answer with its job (processed now or queued alike).
#[actix_web::test]
async fn the_same_file_sent_at_once_becomes_one_item() {
    for sync in [true, false] {
        let settings = if sync {
            vec![]
        } else {
            vec![("SYNC_MAX_BYTES", "10".to_owned())]
        };
        let env = stack(None, true, &settings).await;
        let bytes = unique_text("burst");
        let uploads = (0..8).map(|_| {
            let form: Form = Form::new().part(
                "file",
                Part::bytes(bytes.clone())
                    .file_name("burst.txt")
                    .mime_str("text/plain")
                    .unwrap(),
            );
            env.upload(form)
        });
        let answers = futures_util::future::join_all(uploads).await;
        let mut jobs = std::collections::BTreeSet::new();
        for resp in answers {
            assert!(
                (200..=202).contains(&resp.status().as_u16()),
                "{}",
                resp.status()
            );
            let body: Value = resp.json().await.unwrap();
            jobs.insert(body["job"]["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(jobs.len(), 1, "sync {sync}: {jobs:?}");
        let job = env.finished(jobs.first().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let items = env.content_get("/api/v1/content").await;
        assert_eq!(
            items["items"].as_array().unwrap().len(),
            1,
            "sync {sync}: {items}"
        );
    }
}

//! Exports and imports: an account's content out as one archive and into another
//! account, where it lists, links and searches the same.

use std::io::Read;
use std::time::Duration;

use peermesh_test_support::auth::TestUser;
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, Env};

/// Starts an export and waits (up to 20 s) until it succeeded; the export.
async fn export(env: &Env, user: &TestUser) -> Value {
    let resp = env
        .call(
            Method::POST,
            "/api/v1/content/export",
            &user.access_token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    for _ in 0..400 {
        let export = env.get(&location, &user.access_token).await;
        match export["status"].as_str().unwrap() {
            "succeeded" => return export,
            "queued" | "running" => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the export is {other}: {export}"),
        }
    }
    panic!("the export never finished");
}

async fn download(env: &Env, user: &TestUser, export: &Value) -> Vec<u8> {
    let resp = env
        .call(
            Method::GET,
            export["archive_url"].as_str().unwrap(),
            &user.access_token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-tar");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    resp.bytes().await.unwrap().to_vec()
}

/// The archive's files: (path, bytes).
fn files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(archive);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

/// An archive of `files`.
fn archive_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    tar.into_inner().unwrap()
}

async fn import(env: &Env, user: &TestUser, archive: Vec<u8>) -> reqwest::Response {
    env.request(Method::POST, "/api/v1/content/import", &user.access_token)
        .header("content-type", "application/x-tar")
        .body(archive)
        .send()
        .await
        .unwrap()
}

/// What a user sees of their items, without ids and times that differ by account.
async fn listing(env: &Env, user: &TestUser) -> Vec<Value> {
    let t = &user.access_token;
    let page = env.get("/api/v1/content?limit=100", t).await;
    let mut seen = Vec::new();
    for item in page["items"].as_array().unwrap() {
        let full = env.get(&format!("/api/v1/content/{}", id(item)), t).await;
        let chunks = env
            .get(&format!("/api/v1/content/{}/chunks?limit=100", id(item)), t)
            .await;
        let links = env
            .get(
                &format!("/api/v1/content/{}/links?direction=out", id(item)),
                t,
            )
            .await;
        let mut targets = Vec::new();
        for link in links["items"].as_array().unwrap() {
            let target = env
                .get(
                    &format!("/api/v1/content/{}", link["target_id"].as_str().unwrap()),
                    t,
                )
                .await;
            targets.push(json!([link["relation"], link["weight"], target["title"]]));
        }
        seen.push(json!({
            "title": full["title"], "body": full["body"], "kind": full["kind"],
            "tags": full["tags"], "source": full["source"], "metadata": full["metadata"],
            "created_at": full["created_at"],
            "chunks": chunks["items"], "links": targets,
        }));
    }
    seen
}

/// Search hits without ids: (title, score, snippet).
async fn hits(env: &Env, user: &TestUser, q: &str) -> Vec<Value> {
    let found = env
        .get(&format!("/api/v1/content/search?q={q}"), &user.access_token)
        .await;
    found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!([h["item"]["title"], h["score"], h["snippet"]]))
        .collect()
}

async fn similar(env: &Env, user: &TestUser) -> Value {
    env.call(
        Method::POST,
        "/api/v1/content/search/similar",
        &user.access_token,
        Some(json!({"vector": [0.6, 0.8, 0.0], "k": 5, "model": "tiny"})),
    )
    .await
    .json()
    .await
    .unwrap()
}

#[actix_web::test]
async fn an_export_imported_into_an_empty_account_gives_the_same_content() {
    let env = env(&[]).await;
    let (alice, bob, carol) = (env.user().await, env.user().await, env.user().await);
    let a = &alice.access_token;
    let heron = env
        .create(
            a,
            json!({"title": "Heron notes", "body": "The grey heron waits in the reeds.\n\nIt strikes \"fast\" — ünïcödé 🐟.",
                   "tags": ["birds", "water"], "metadata": {"place": "marsh", "counts": [1, 2]}}),
        )
        .await;
    let long: String = (0..400)
        .map(|i| format!("Kingfisher sentence number {i} about the river. "))
        .collect();
    let kingfisher = env
        .create(
            a,
            json!({"title": "Kingfisher", "body": long, "kind": "document",
                   "source": {"type": "upload", "filename": "k.txt", "sha256": "ab".repeat(32)}}),
        )
        .await;
    let given = env
        .create(
            a,
            json!({"title": "Given chunks", "body": "one two three four",
                   "chunks": [{"start": 0, "end": 7}, {"start": 8, "end": 18, "text": "a summary of three four"}]}),
        )
        .await;
    for (from, to, relation, weight) in [
        (&heron, &kingfisher, "cites", json!(0.5)),
        (&kingfisher, &given, "related", Value::Null),
    ] {
        let resp = env
            .call(
                Method::POST,
                format!("/api/v1/content/{}/links", id(from)),
                a,
                Some(json!({"target_id": id(to), "relation": relation, "weight": weight})),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let resp = env
        .call(
            Method::PUT,
            format!("/api/v1/content/{}/embeddings", id(&heron)),
            a,
            Some(json!({"model": "tiny", "vectors": [{"chunk": 0, "vector": [0.6, 0.8, 0.0]}]})),
        )
        .await;
    assert_eq!(resp.status(), 204);

    let done = export(&env, &alice).await;
    assert_eq!(
        (done["items"].as_i64(), done["links"].as_i64()),
        (Some(3), Some(2))
    );
    // Only its owner sees it.
    let path = format!("/api/v1/content/exports/{}", id(&done));
    for path in [path.clone(), format!("{path}/archive")] {
        let resp = env.call(Method::GET, &path, &bob.access_token, None).await;
        assert_problem(resp, 404, "not_found").await;
    }
    let archive = download(&env, &alice, &done).await;
    let entries = files(&archive);
    let names: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    for item in [&heron, &kingfisher, &given] {
        assert!(names.contains(&format!("peermesh-export/items/{}.json", id(item)).as_str()));
        let md = format!("peermesh-export/items/{}.md", id(item));
        let (_, text) = entries.iter().find(|(p, _)| *p == md).unwrap();
        let text = String::from_utf8(text.clone()).unwrap();
        assert!(text.starts_with("---\nid: \""), "{text}");
        assert!(
            text.contains(&format!("title: {}", item["title"])),
            "{text}"
        );
    }
    assert!(names.contains(&"peermesh-export/links.json"));
    assert!(names.contains(&"peermesh-export/manifest.json"));

    // Into an empty account: the same items, chunks, links, search and neighbours.
    let resp = import(&env, &bob, archive.clone()).await;
    assert_eq!(resp.status(), 201);
    let counts: Value = resp.json().await.unwrap();
    assert_eq!(counts, json!({"items": 3, "links": 2, "vectors": 1}));
    assert_eq!(listing(&env, &bob).await, listing(&env, &alice).await);
    for q in ["heron", "kingfisher%20river", "four"] {
        let (theirs, ours) = (hits(&env, &alice, q).await, hits(&env, &bob, q).await);
        assert!(!ours.is_empty(), "{q}");
        assert_eq!(ours, theirs, "{q}");
    }
    let (theirs, ours) = (similar(&env, &alice).await, similar(&env, &bob).await);
    assert_eq!(ours["items"][0]["item"]["title"], "Heron notes");
    assert_eq!(ours["items"][0]["score"], theirs["items"][0]["score"]);

    // A refused archive leaves nothing: a link to an item it does not hold.
    let mut broken = entries.clone();
    for (path, bytes) in broken.iter_mut() {
        if path.ends_with("links.json") {
            *bytes = serde_json::to_vec(&json!([{"id": "x", "source_id": id(&heron),
                "target_id": "00000000-0000-7000-8000-000000000000", "relation": "cites",
                "weight": null, "created_at": "2026-12-07T00:00:00Z"}]))
            .unwrap();
        }
    }
    let resp = import(&env, &carol, archive_of(&broken)).await;
    let body = assert_problem(resp, 422, "invalid_archive").await;
    assert_eq!(body["errors"][0]["field"], "links.json[0].target_id");
    // ... or the same typed link twice (as `POST /{id}/links` refuses it).
    let mut twice = entries.clone();
    for (path, bytes) in twice.iter_mut() {
        if path.ends_with("links.json") {
            let links: Vec<Value> = serde_json::from_slice(bytes).unwrap();
            *bytes = serde_json::to_vec(&[links[0].clone(), links[0].clone()]).unwrap();
        }
    }
    let resp = import(&env, &carol, archive_of(&twice)).await;
    let body = assert_problem(resp, 422, "invalid_archive").await;
    assert_eq!(body["errors"][0]["field"], "links.json[1].relation");
    // Under an Idempotency-Key a retry gets the first answer and writes nothing more;
    // another archive under the same key is refused.
    let dave = env.user().await;
    let with_key = |body: Vec<u8>| {
        env.request(Method::POST, "/api/v1/content/import", &dave.access_token)
            .header("content-type", "application/x-tar")
            .header("idempotency-key", "import-1")
            .body(body)
            .send()
    };
    for _ in 0..2 {
        let resp = with_key(archive.clone()).await.unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.json::<Value>().await.unwrap(), counts);
    }
    assert_eq!(listing(&env, &dave).await.len(), 3);
    let resp = with_key(archive_of(&twice)).await.unwrap();
    assert_problem(resp, 422, "idempotency_key_reused").await;
    let resp = import(&env, &carol, b"not a tar archive at all".repeat(40)).await;
    assert_problem(resp, 422, "invalid_archive").await;
    let resp = env
        .request(Method::POST, "/api/v1/content/import", &carol.access_token)
        .header("content-type", "application/zip")
        .body(archive)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415, "unsupported_media_type").await;
    assert_eq!(
        env.get("/api/v1/content", &carol.access_token).await["items"],
        json!([])
    );
}

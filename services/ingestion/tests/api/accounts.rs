//! Deleting an account (`DELETE /auth/me`) erases what the user had in every service —
//! items, links, vectors, jobs, feeds, stored files — through the services' own APIs,
//! asked again until each confirms, across a restart of auth; the user's tokens stop
//! working everywhere.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peermesh_ingestion::store::{feeds, jobs};
use peermesh_test_stack::spawn::{jwks_url, spawn_auth_on, Spawned, Verifier};
use peermesh_test_support::auth::{authed, register, unique_email, TestUser, PASSWORD};
use peermesh_test_support::client::{assert_problem, TestClient};
use reqwest::Method;
use serde_json::{json, Value};

use crate::feeds::{feed_server, subscribe, Site};
use crate::files::{file, stack, Env};
use crate::limits::{blob_path, unique_text};

/// Polls `check` (up to 20 s) until it holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

async fn status(client: &TestClient, method: Method, path: &str, token: &str) -> u16 {
    authed(client, method, path, token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Uploads `bytes` as `user`; the content ids (201 or 200 expected).
async fn upload(env: &Env, user: &TestUser, bytes: Vec<u8>) -> Vec<String> {
    let resp = authed(
        &env.ingest.client,
        Method::POST,
        "/api/v1/ingest/files",
        &user.access_token,
    )
    .multipart(file("notes.txt", "text/plain", bytes))
    .send()
    .await
    .unwrap();
    assert!(
        [200, 201].contains(&resp.status().as_u16()),
        "{}",
        resp.status()
    );
    let body: Value = resp.json().await.unwrap();
    serde_json::from_value(body["content_ids"].clone()).unwrap()
}

/// The id of the item the feed's one post became (waits up to 20 s for it).
async fn feed_item(content: &Spawned, token: &str) -> String {
    for _ in 0..400 {
        let page: Value = authed(
            &content.client,
            Method::GET,
            "/api/v1/content?kind=article",
            token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        if let Some(id) = page["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the feed's post never became an item");
}

async fn delete_account(env: &Env) -> Value {
    let resp = authed(
        &env.auth.client,
        Method::DELETE,
        "/api/v1/auth/me",
        &env.user.access_token,
    )
    .json(&json!({ "password": PASSWORD }))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json().await.unwrap()
}

/// The account's jobs and feeds still in the ingestion database.
async fn ingestion_rows(env: &Env, owner: &str) -> (usize, usize) {
    let db =
        peermesh_db::Db::connect(env.ingest.db.url(), 1, &peermesh_ingestion::MIGRATIONS).unwrap();
    let owner = owner.to_owned();
    db.run(move |conn| {
        Ok((
            jobs::page(conn, Some(&owner), None, 100, None)?.len(),
            feeds::list(conn, &owner)?.len(),
        ))
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn deleting_an_account_erases_it_in_every_service() {
    let site = Arc::new(Mutex::new(Site::default()));
    site.lock().unwrap().items = vec![("p1".into(), "A post".into(), "<p>Egrets.</p>".into())];
    let feed_port = feed_server(site);
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("FEED_TICK_MS", "100".into()),
        ],
    )
    .await;
    let content = env.content.as_ref().unwrap();
    let (user, admin) = (&env.user, &env.admin);
    let other = register(&env.auth.client, &unique_email("staying")).await;

    // The user's own file, a file another user uploaded too, a link, vectors, a feed.
    let (own, shared) = (unique_text("own"), unique_text("shared"));
    let own_ids = upload(&env, user, own.clone()).await;
    let shared_ids = upload(&env, user, shared.clone()).await;
    let other_ids = upload(&env, &other, shared.clone()).await;
    let (a, b) = (own_ids[0].clone(), shared_ids[0].clone());
    let resp = authed(
        &content.client,
        Method::POST,
        &format!("/api/v1/content/{a}/links"),
        &user.access_token,
    )
    .json(&json!({"target_id": b, "relation": "cites"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = authed(
        &content.client,
        Method::PUT,
        &format!("/api/v1/content/{a}/embeddings"),
        &user.access_token,
    )
    .json(&json!({"model": "m", "vectors": [{"chunk": 0, "vector": [1.0, 0.0, 0.0]}]}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = subscribe(
        &env,
        &user.access_token,
        &format!("http://127.0.0.1:{feed_port}/feed.xml"),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let feed_item = feed_item(content, &user.access_token).await;
    // Nobody but auth erases an account: not another user, not the user.
    let path = format!("/api/v1/ingest/accounts/{}", user.id);
    for token in [&other.access_token, &user.access_token] {
        let resp = authed(&env.ingest.client, Method::DELETE, &path, token)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 403, "insufficient_scope").await;
    }
    assert_eq!(ingestion_rows(&env, &user.id).await.1, 1);

    let answer = delete_account(&env).await;
    assert_eq!(answer["id"], user.id.as_str());
    assert_eq!(answer["pending"], json!(["content", "ingest"]));

    // Each service is asked and erases; the user's token is refused everywhere.
    for id in [&a, &b, &feed_item] {
        let path = format!("/api/v1/content/{id}");
        until(&format!("{id} is gone for the admin too"), || async {
            status(&content.client, Method::GET, &path, &admin.access_token).await == 404
        })
        .await;
    }
    let user_path = format!("/api/v1/content/{a}");
    let resp = authed(&content.client, Method::GET, &user_path, &user.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "account_closed").await;
    until("the account's jobs and feed are gone", || async {
        ingestion_rows(&env, &user.id).await == (0, 0)
    })
    .await;
    let resp = authed(
        &env.ingest.client,
        Method::GET,
        "/api/v1/ingest/jobs",
        &user.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_problem(resp, 401, "account_closed").await;
    let resp = authed(
        &env.auth.client,
        Method::GET,
        "/api/v1/auth/me",
        &user.access_token,
    )
    .send()
    .await
    .unwrap();
    assert_problem(resp, 401, "account_closed").await;
    // Its file's stored bytes went; the bytes another user also uploaded stay.
    assert!(!blob_path(&own).exists());
    assert!(blob_path(&shared).exists());

    // The other user lost nothing.
    let path = format!("/api/v1/content/{}", other_ids[0]);
    assert_eq!(
        status(&content.client, Method::GET, &path, &other.access_token).await,
        200
    );
    assert_eq!(ingestion_rows(&env, &other.id).await, (1, 0));
}

#[actix_web::test]
async fn a_deletion_is_asked_for_again_after_auth_restarts_until_content_confirms() {
    let mut env = stack(None, true, &[]).await;
    let ids = upload(&env, &env.user, unique_text("kept until erased")).await;
    let other = register(&env.auth.client, &unique_email("staying")).await;
    let others = upload(&env, &other, unique_text("kept")).await;
    let content = env.content.take().unwrap();
    let (content_db, content_port) = (content.stop_keep_db().await, env.content_port);

    // Content is down: ingestion confirms, content cannot.
    let answer = delete_account(&env).await;
    assert_eq!(answer["pending"], json!(["content", "ingest"]));
    until("ingestion erased the account", || async {
        ingestion_rows(&env, &env.user.id).await == (0, 0)
    })
    .await;

    // Auth stops and starts again on its database (and port: the others fetch its
    // keys there); then content comes back, on its database.
    let auth_port = env.auth.port;
    let auth_db = env.auth.stop_keep_db().await;
    // (The clients it was given at first start are in its database by now.)
    let mut settings = env.auth_settings.clone();
    settings.retain(|(k, _)| *k != "CLIENTS_FILE");
    settings.push(("PORT", auth_port.to_string()));
    let auth = spawn_auth_on(auth_db, &settings).await;
    let jwks = jwks_url(&auth);
    let content = Verifier::Content
        .spawn(
            &jwks,
            &[
                ("PORT", content_port.to_string()),
                ("DATABASE_URL", content_db.url().to_owned()),
            ],
        )
        .await;
    let path = format!("/api/v1/content/{}", ids[0]);
    until("content erased the account", || async {
        status(&content.client, Method::GET, &path, &env.admin.access_token).await == 404
    })
    .await;
    let resp = authed(&content.client, Method::GET, &path, &env.user.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "account_closed").await;
    // The same database: the other user's item is there.
    let path = format!("/api/v1/content/{}", others[0]);
    assert_eq!(
        status(&content.client, Method::GET, &path, &other.access_token).await,
        200
    );
}

//! Vectors the service computes itself (a tiny model the tests make) and hybrid search.

use std::time::Duration;

use peermesh_test_stack::spawn::Verifier;
use peermesh_test_support::embedding_model;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, item, Env};

const MODEL: &str = "tiny-test";

async fn env_with_model() -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("model folder");
    embedding_model::write(dir.path());
    let env = env(&[
        ("EMBED_MODEL_DIR", dir.path().display().to_string()),
        ("EMBED_MODEL_NAME", MODEL.to_owned()),
    ])
    .await;
    (env, dir)
}

/// Waits until the item has fresh vectors of the service's model; returns how many.
async fn embedded(env: &Env, token: &str, item: &str) -> i64 {
    for _ in 0..300 {
        let out = env
            .get(&format!("/api/v1/content/{item}/embeddings"), token)
            .await;
        let fresh = out["models"]
            .as_array()
            .expect("models")
            .iter()
            .find(|m| m["model"] == MODEL && m["stale"] == false);
        if let Some(m) = fresh {
            return m["vectors"].as_i64().expect("count");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("item {item} was not embedded in 30 s");
}

async fn search(env: &Env, token: &str, query: &str) -> Value {
    env.get(&format!("/api/v1/content/search?{query}"), token)
        .await
}

fn hit_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|h| h["item"]["id"].as_str().expect("id").to_owned())
        .collect()
}

#[actix_web::test]
async fn the_service_embeds_items_itself_and_hybrid_search_uses_their_vectors() {
    let (env, _model) = env_with_model().await;
    let ready = env.get("/api/v1/content/ready", "").await;
    assert_eq!(
        ready["checks"]["embedding_model"],
        format!("ok: {MODEL} ({} dimensions)", embedding_model::DIMS)
    );
    let user = env.user().await;
    let token = &user.access_token;
    let long_body = "The heron waded through the shallow marsh at dawn. ".repeat(60);
    let heron = id(&env.create(token, item("Herons", &long_body)).await);
    let revenue = id(&env
        .create(
            token,
            item("Revenue", "Quarterly revenue grew by ten percent."),
        )
        .await);
    let kettle = id(&env
        .create(
            token,
            item("Kettle", "Boil the water in the kettle before making tea."),
        )
        .await);
    // One vector per chunk: the long body has several.
    let chunks = env
        .get(&format!("/api/v1/content/{heron}/chunks"), token)
        .await["items"]
        .as_array()
        .expect("chunks")
        .len() as i64;
    assert!(chunks > 1);
    assert_eq!(embedded(&env, token, &heron).await, chunks);
    assert_eq!(embedded(&env, token, &revenue).await, 1);
    assert_eq!(embedded(&env, token, &kettle).await, 1);

    // The vectors serve similarity search like vectors a client PUT.
    let resp = env
        .post(
            "/api/v1/content/search/similar",
            token,
            json!({"content_id": heron, "model": MODEL, "k": 10}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let similar: Value = resp.json().await.expect("JSON");
    let mut found = hit_ids(&similar);
    found.sort();
    let mut others = vec![revenue.clone(), kettle.clone()];
    others.sort();
    assert_eq!(found, others);

    // Full text finds the word; hybrid puts that item first, then the items found
    // by meaning alone, with their nearest passage as the snippet.
    let text = search(&env, token, "q=heron").await;
    assert_eq!(text["mode"], "fulltext");
    assert_eq!(hit_ids(&text), vec![heron.clone()]);
    let hybrid = search(&env, token, "q=heron&mode=hybrid").await;
    assert_eq!(hybrid["mode"], "hybrid");
    let ranked = hit_ids(&hybrid);
    assert_eq!(ranked.len(), 3, "{hybrid}");
    assert_eq!(ranked[0], heron);
    assert!(hybrid["items"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("<mark>"));
    for hit in &hybrid["items"].as_array().unwrap()[1..] {
        let snippet = hit["snippet"].as_str().unwrap();
        assert!(!snippet.is_empty() && !snippet.contains("<mark>"), "{hit}");
    }
    // A word no item holds: full text finds nothing, hybrid still ranks by meaning.
    assert_eq!(hit_ids(&search(&env, token, "q=zebra").await).len(), 0);
    assert_eq!(
        hit_ids(&search(&env, token, "q=zebra&mode=hybrid").await).len(),
        3
    );

    // Pages of the fused list: each hit once, in the same order.
    let first = search(&env, token, "q=heron&mode=hybrid&limit=2").await;
    assert_eq!(hit_ids(&first), ranked[..2].to_vec());
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = search(
        &env,
        token,
        &format!("q=heron&mode=hybrid&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(hit_ids(&second), ranked[2..].to_vec());
    assert_eq!(second["next_cursor"], Value::Null);
    // A full-text cursor is not a hybrid one.
    let resp = env
        .call(
            Method::GET,
            "/api/v1/content/search?q=heron&mode=hybrid&cursor=3ff0000000000000:7",
            token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 422);

    // Another user's hybrid search sees none of it.
    let other = env.user().await;
    let theirs = search(&env, &other.access_token, "q=heron&mode=hybrid").await;
    assert_eq!(hit_ids(&theirs).len(), 0);

    // A new body: the vectors go stale, then the service computes new ones.
    let resp = env
        .call(
            Method::PATCH,
            format!("/api/v1/content/{revenue}"),
            token,
            Some(json!({"body": "Revenue fell. Costs rose. The board met twice."})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(embedded(&env, token, &revenue).await, 1);

    // Clients may store vectors under the model's name, but only of its dimensions.
    let resp = env
        .call(
            Method::PUT,
            format!("/api/v1/content/{kettle}/embeddings"),
            token,
            Some(json!({"model": MODEL, "vectors": [{"chunk": 0, "vector": [1.0, 0.0, 0.0]}]})),
        )
        .await;
    assert_eq!(resp.status(), 422);
    let problem: Value = resp.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "vectors", "{problem}");
}

#[actix_web::test]
async fn without_a_model_ready_says_so_and_hybrid_search_is_full_text() {
    let env = env(&[]).await;
    let resp = env
        .call(Method::GET, "/api/v1/content/ready", "", None)
        .await;
    assert_eq!(resp.status(), 200);
    let ready: Value = resp.json().await.expect("JSON");
    assert_eq!(ready["status"], "ready");
    assert!(ready["checks"]["embedding_model"]
        .as_str()
        .unwrap()
        .starts_with("off: CONTENT_EMBED_MODEL_DIR is not set"));
    let user = env.user().await;
    let token = &user.access_token;
    let heron = id(&env
        .create(token, item("Herons", "A heron in the marsh."))
        .await);
    env.create(token, item("Revenue", "Quarterly revenue grew."))
        .await;
    let page = search(&env, token, "q=heron&mode=hybrid").await;
    assert_eq!(page["mode"], "fulltext");
    assert_eq!(hit_ids(&page), vec![heron.clone()]);
    // Nothing computed them, so the item has no vectors.
    let out = env
        .get(&format!("/api/v1/content/{heron}/embeddings"), token)
        .await;
    assert_eq!(out["models"], json!([]));
}

#[actix_web::test]
async fn a_broken_model_folder_stops_the_service_at_start() {
    let dir = tempfile::tempdir().expect("folder");
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let error = Verifier::Content
        .try_spawn(
            "http://127.0.0.1:9/jwks.json",
            &[("EMBED_MODEL_DIR", dir.path().display().to_string())],
        )
        .await
        .err()
        .expect("a broken model must stop start-up");
    assert!(error.contains("CONTENT_EMBED_MODEL_DIR"), "{error}");
    assert!(error.contains("config.json"), "{error}");
}

#[actix_web::test]
async fn items_written_without_a_model_are_embedded_by_a_process_that_has_one() {
    // Content without a model takes the writes; the queue keeps them.
    let env = env(&[]).await;
    let user = env.user().await;
    let token = &user.access_token;
    let first = id(&env
        .create(token, item("Herons", "A heron in the marsh."))
        .await);
    let second = id(&env.create(token, item("Tea", "Boil the kettle.")).await);

    // A process of its own on the same database, with the model, embeds them.
    let dir = tempfile::tempdir().expect("model folder");
    embedding_model::write(dir.path());
    let embedder = Verifier::Content
        .spawn(
            &peermesh_test_stack::spawn::jwks_url(&env.auth),
            &[
                ("DATABASE_URL", env.content.db.url().to_owned()),
                ("EMBED_MODEL_DIR", dir.path().display().to_string()),
                ("EMBED_MODEL_NAME", MODEL.to_owned()),
            ],
        )
        .await;
    assert_eq!(embedded(&env, token, &first).await, 1);
    assert_eq!(embedded(&env, token, &second).await, 1);
    let metrics = embedder
        .client
        .get("/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("\npeermesh_content_embedded_items_total{service=\"content\"} 2\n"),
        "{metrics}"
    );

    // Only the process with the model ranks by meaning.
    let resp = embedder
        .client
        .request(Method::GET, "/api/v1/content/search?q=zebra&mode=hybrid")
        .bearer_auth(token)
        .send()
        .await
        .expect("search");
    let page: Value = resp.json().await.expect("JSON");
    assert_eq!(page["mode"], "hybrid");
    assert_eq!(hit_ids(&page).len(), 2);
    let page = search(&env, token, "q=zebra&mode=hybrid").await;
    assert_eq!(page["mode"], "fulltext");
    assert_eq!(hit_ids(&page).len(), 0);
}

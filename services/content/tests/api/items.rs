//! Content behind real access tokens from a real auth service.

use peermesh_test_stack::spawn::{jwks_url, spawn_auth, Verifier};
use peermesh_test_support::auth::{register, unique_email};
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, ids, item};

#[actix_web::test]
async fn a_real_access_token_is_accepted_and_an_expired_one_refused() {
    let auth = spawn_auth(&[("ACCESS_TOKEN_TTL_SECS", "1".into())]).await;
    let content = Verifier::Content
        .spawn(&jwks_url(&auth), &[("JWT_LEEWAY_SECS", "0".into())])
        .await;
    let user = register(&auth.client, &unique_email("c")).await;

    for path in ["/api/v1/content", "/api/v1/content/"] {
        let resp = content
            .client
            .request(Method::GET, path)
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"items": [], "next_cursor": null}));
    }

    let resp = content
        .client
        .request(Method::GET, "/api/v1/content/")
        .bearer_auth(&user.refresh_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "invalid_token").await;
    assert_problem(
        content.client.get("/api/v1/content/").await,
        401,
        "unauthorized",
    )
    .await;

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let resp = content
        .client
        .request(Method::GET, "/api/v1/content/")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 401, "invalid_token").await;
    assert_eq!(body["detail"], "the token has expired");
}

#[actix_web::test]
async fn create_get_list_and_filters() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;

    let resp = env
        .post(
            "/api/v1/content/",
            t,
            json!({
                "title": "  Rust notes ",
                "body": "Ownership and borrowing.\n\nLifetimes.",
                "kind": "article",
                "tags": ["Rust", "rust", " Lang "],
                "source": {"type": "url", "url": "https://example.com/rust"},
                "metadata": {"lang": "en", "nested": {"ok": true}}
            }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/content/{}", id(&created)));
    assert_eq!(etag, "\"1\"");
    assert_eq!(created["title"], "Rust notes");
    assert_eq!(created["tags"], json!(["rust", "lang"]));
    assert_eq!(created["owner_id"], alice.id.as_str());
    assert_eq!(created["size"], 36);
    assert_eq!(created["source"]["type"], "url");
    assert_eq!(created["metadata"]["nested"]["ok"], true);

    let resp = env.call(Method::GET, &location, t, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], etag.as_str());
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["body"], "Ownership and borrowing.\n\nLifetimes.");
    let resp = env
        .request(Method::GET, &location, t)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);

    let note = env.create(t, item("Groceries", "milk, eggs")).await;
    assert_eq!(note["kind"], "note");
    let page = env.get("/api/v1/content", t).await;
    assert_eq!(ids(&page), vec![id(&note), id(&created)], "newest first");
    assert!(
        page["items"][0].get("body").is_none(),
        "lists carry excerpts"
    );
    assert_eq!(page["items"][0]["excerpt"], "milk, eggs");

    assert_eq!(
        ids(&env.get("/api/v1/content?tag=RUST", t).await),
        vec![id(&created)]
    );
    assert_eq!(
        ids(&env.get("/api/v1/content?kind=note", t).await),
        vec![id(&note)]
    );
    assert_eq!(
        ids(&env.get("/api/v1/content?q=lifetimes", t).await),
        vec![id(&created)]
    );
    assert_eq!(
        ids(&env.get("/api/v1/content?q=eggs&tag=rust", t).await),
        Vec::<String>::new()
    );
    let tags = env.get("/api/v1/content/tags", t).await;
    assert_eq!(
        tags["items"],
        json!([{"tag": "lang", "count": 1}, {"tag": "rust", "count": 1}])
    );

    assert_problem(
        env.call(Method::GET, "/api/v1/content?q=%22open", t, None)
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        env.call(Method::GET, "/api/v1/content?limit=0", t, None)
            .await,
        422,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn bad_input_is_refused_naming_the_field() {
    let env = env(&[
        ("MAX_BODY_BYTES", "64".into()),
        ("METADATA_MAX_DEPTH", "3".into()),
    ])
    .await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let cases = [
        (json!({"title": " ", "body": "x"}), "title"),
        (json!({"title": "x".repeat(501), "body": "x"}), "title"),
        (json!({"title": "ok", "body": "x".repeat(65)}), "body"),
        (
            json!({"title": "ok", "body": "x", "kind": "Not A Slug"}),
            "kind",
        ),
        (
            json!({"title": "ok", "body": "x", "tags": vec!["t"; 51]}),
            "tags",
        ),
        (
            json!({"title": "ok", "body": "x", "tags": ["y".repeat(65)]}),
            "tags[0]",
        ),
        (
            json!({"title": "ok", "body": "x", "metadata": [1, 2]}),
            "metadata",
        ),
        (
            json!({"title": "ok", "body": "x", "metadata": {"a": {"b": {"c": {}}}}}),
            "metadata",
        ),
        (
            json!({"title": "ok", "body": "x", "source": {"type": "url", "url": "ftp://x"}}),
            "source.url",
        ),
        (
            json!({"title": "ok", "body": "x", "source": {"type": "upload", "sha256": "abc"}}),
            "source.sha256",
        ),
        (
            json!({"title": "ok", "body": "abc", "chunks": [{"text": "abc", "start": 0, "end": 9}]}),
            "chunks[0]",
        ),
        (
            json!({"title": "ok", "body": "abc", "chunks": [{"start": 2, "end": 4}]}),
            "chunks[0]",
        ),
        (
            json!({"title": "ok", "body": "a  c", "chunks": [{"start": 0, "end": 1}, {"start": 1, "end": 3}]}),
            "chunks[1].text",
        ),
        (json!({"title": "ok", "body": 7}), "body"),
        // A value of the wrong type is named where it was, not as the whole body.
        (json!({"title": 5, "body": "x"}), "title"),
        (
            json!({"title": "ok", "body": "x", "tags": ["a", 7]}),
            "tags[1]",
        ),
        (
            json!({"title": "ok", "body": "x", "source": {"type": "url", "colour": 1}}),
            "source.colour",
        ),
        (
            json!({"title": "ok", "body": "x", "owner_id": "someone-else"}),
            "",
        ),
        (json!({"title": "ok", "body": "x", "version": 7}), ""),
    ];
    for (body, field) in cases {
        let resp = env.post("/api/v1/content", t, body.clone()).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["field"], field, "{body}");
        }
    }
    assert_eq!(
        env.get("/api/v1/content", t).await["items"],
        json!([]),
        "nothing was written"
    );
    let resp = env
        .request(Method::POST, "/api/v1/content", t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "malformed_json").await;
}

#[actix_web::test]
async fn patch_honours_if_match_and_races_have_one_winner() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let created = env.create(t, item("Draft", "first words")).await;
    let path = format!("/api/v1/content/{}", id(&created));

    let resp = env
        .request(Method::PATCH, &path, t)
        .header("if-match", "\"1\"")
        .json(&json!({"title": "Second", "tags": ["b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["title"], "Second");
    assert_eq!(patched["body"], "first words");

    let resp = env
        .request(Method::PATCH, &path, t)
        .header("if-match", "\"1\"")
        .json(&json!({"title": "Stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["etag"], "\"2\"");
    assert_problem(resp, 412, "precondition_failed").await;

    // Ten writers holding the same ETag: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let req = env
            .request(Method::PATCH, &path, t)
            .header("if-match", "\"2\"")
            .json(&json!({"title": format!("Writer {i}")}));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![200], vec![412; 9]].concat(), "{statuses:?}");
    let now = env.get(&path, t).await;
    assert_eq!(now["version"], 3);

    // Without If-Match the update is unconditional; a new body re-chunks and re-indexes.
    let resp = env
        .call(
            Method::PATCH,
            &path,
            t,
            Some(json!({"body": "brand new zebra text"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        ids(&env.get("/api/v1/content?q=zebra", t).await),
        vec![id(&created)]
    );
    assert_eq!(
        ids(&env.get("/api/v1/content?q=words", t).await),
        Vec::<String>::new()
    );
    let chunks = env.get(&format!("{path}/chunks"), t).await;
    assert_eq!(chunks["items"][0]["text"], "brand new zebra text");

    for (body, field) in [
        (
            json!({"chunks": [{"text": "x", "start": 0, "end": 1}]}),
            "chunks",
        ),
        (json!({"title": ""}), "title"),
    ] {
        let problem = assert_problem(
            env.call(Method::PATCH, &path, t, Some(body)).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    assert_problem(
        env.call(Method::PATCH, &path, t, Some(json!({"roles": ["admin"]})))
            .await,
        422,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn cursor_pages_are_stable_while_items_are_added() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(id(&env.create(t, item(&format!("item {i}"), "x")).await));
    }
    let first = env.get("/api/v1/content?limit=3", t).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // New items arrive between pages; they must not shift or repeat older ones.
    env.create(t, item("newer", "x")).await;
    let second = env
        .get(&format!("/api/v1/content?limit=3&cursor={cursor}"), t)
        .await;
    let third_cursor = second["next_cursor"].as_str().unwrap().to_owned();
    let third = env
        .get(&format!("/api/v1/content?limit=3&cursor={third_cursor}"), t)
        .await;
    let seen: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    made.reverse();
    assert_eq!(seen, made);
    assert!(third["next_cursor"].is_null());
    assert_problem(
        env.call(Method::GET, "/api/v1/content?cursor=%%%", t, None)
            .await,
        422,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn chunks_are_computed_or_taken_as_given() {
    let env = env(&[("CHUNK_CHARS", "40".into())]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let body = "First paragraph is here.\n\nSecond paragraph follows it.\n\nThird.";
    let made = env.create(t, item("Computed", body)).await;
    let chunks = env
        .get(&format!("/api/v1/content/{}/chunks", id(&made)), t)
        .await;
    let list = chunks["items"].as_array().unwrap();
    assert!(list.len() >= 2, "{chunks}");
    let chars: Vec<char> = body.chars().collect();
    for (i, c) in list.iter().enumerate() {
        assert_eq!(c["index"], i);
        let (s, e) = (
            c["start"].as_u64().unwrap() as usize,
            c["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(c["text"], chars[s..e].iter().collect::<String>());
        assert!(e - s <= 40);
    }
    let page = env
        .get(&format!("/api/v1/content/{}/chunks?limit=1", id(&made)), t)
        .await;
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = env
        .get(
            &format!("/api/v1/content/{}/chunks?limit=1&cursor={next}", id(&made)),
            t,
        )
        .await;
    assert_eq!(page2["items"][0]["index"], 1);

    let given = env
        .create(
            t,
            json!({"title": "Given", "body": "abcdef", "chunks": [
                {"text": "abc", "start": 0, "end": 3}, {"text": "def", "start": 3, "end": 6}]}),
        )
        .await;
    let chunks = env
        .get(&format!("/api/v1/content/{}/chunks", id(&given)), t)
        .await;
    assert_eq!(
        chunks["items"][1],
        json!({"index": 1, "text": "def", "start": 3, "end": 6})
    );

    // Offsets alone take their text from the body (characters, not bytes), and may
    // be mixed with given texts; the body arrives with JSON escapes of every kind.
    let body = "Zoë \"quoted\"\n😀 tail\tend \u{1}x";
    let spans = env
        .create(
            t,
            json!({"title": "Spans", "body": body, "chunks": [
                {"start": 0, "end": 3}, {"start": 4, "end": 12}, {"text": "own", "start": 13, "end": 14},
                {"start": 13, "end": body.chars().count()}]}),
        )
        .await;
    let got = env.get(&format!("/api/v1/content/{}", id(&spans)), t).await;
    assert_eq!(got["body"], body);
    let chunks = env
        .get(&format!("/api/v1/content/{}/chunks", id(&spans)), t)
        .await;
    let texts: Vec<&str> = chunks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Zoë", "\"quoted\"", "own", "😀 tail\tend \u{1}x"]);
}

#[actix_web::test]
async fn delete_takes_chunks_links_vectors_and_search_entries_along() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let doomed = env.create(t, item("Doomed", "walrus facts")).await;
    let other = env.create(t, item("Other", "walrus trivia")).await;
    let doomed_path = format!("/api/v1/content/{}", id(&doomed));
    let other_path = format!("/api/v1/content/{}", id(&other));
    assert_eq!(
        env.post(
            &format!("{other_path}/links"),
            t,
            json!({"target_id": id(&doomed), "relation": "cites"})
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        env.post(
            &format!("{doomed_path}/links"),
            t,
            json!({"target_id": id(&other), "relation": "cites"})
        )
        .await
        .status(),
        201
    );
    for (path, v) in [(&doomed_path, [1.0, 0.0]), (&other_path, [0.9, 0.1])] {
        let resp = env
            .call(
                Method::PUT,
                &format!("{path}/embeddings"),
                t,
                Some(json!({"model": "m", "vectors": [{"chunk": 0, "vector": v}]})),
            )
            .await;
        assert_eq!(resp.status(), 204);
    }

    let resp = env
        .request(Method::DELETE, &doomed_path, t)
        .header("if-match", "\"9\"")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 412, "precondition_failed").await;
    let resp = env
        .request(Method::DELETE, &doomed_path, t)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(
        env.call(Method::GET, &doomed_path, t, None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        env.call(Method::GET, &format!("{doomed_path}/chunks"), t, None)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        env.call(Method::DELETE, &doomed_path, t, None).await,
        404,
        "not_found",
    )
    .await;
    let links = env
        .get(&format!("{other_path}/links?direction=both"), t)
        .await;
    assert_eq!(links["items"], json!([]), "links to and from it are gone");
    let hits = env.get("/api/v1/content/search?q=walrus", t).await;
    assert_eq!(ids(&hits), vec![id(&other)]);
    let similar: Value = env
        .post(
            "/api/v1/content/search/similar",
            t,
            json!({"vector": [1.0, 0.0]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&similar), vec![id(&other)], "its vectors are gone");
}

#[actix_web::test]
async fn idempotency_keys_replay_the_first_answer() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let send = |body: Value, key: &str| {
        env.request(Method::POST, "/api/v1/content", t)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send(item("Once", "only once"), "key-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(item("Once", "only once"), "key-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(id(&again.json::<Value>().await.unwrap()), id(&first));
    let other = send(item("Twice", "different"), "key-1").await.unwrap();
    assert_problem(other, 422, "idempotency_key_reused").await;

    // Racing retries of one key create one item.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let req = env
            .request(Method::POST, "/api/v1/content", t)
            .header("idempotency-key", "key-2")
            .json(&item("Raced", "body"));
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 201);
            id(&resp.json::<Value>().await.unwrap())
        }));
    }
    let mut made = Vec::new();
    for task in tasks {
        made.push(task.await.unwrap());
    }
    made.dedup();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(ids(&env.get("/api/v1/content", t).await).len(), 2);
}

#[actix_web::test]
async fn a_minimal_answer_holds_only_the_id_when_asked_for() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let create = |prefer: &str, key: &str| {
        env.request(Method::POST, "/api/v1/content", t)
            .header("prefer", prefer)
            .header("idempotency-key", key)
            .json(&item("Brief", "a body not sent back"))
            .send()
    };
    for (prefer, key) in [
        ("return=minimal", "k1"),
        ("respond-async, RETURN=minimal; x=1", "k2"),
        ("return=minimal", "k1"), // a replay answers alike
    ] {
        let resp = create(prefer, key).await.unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["preference-applied"], "return=minimal");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        assert_eq!(location, format!("/api/v1/content/{}", id(&body)));
        let stored = env.get(&location, t).await;
        assert_eq!(stored["body"], "a body not sent back");
    }
    let full = create("return=representation", "k3").await.unwrap();
    assert_eq!(full.status(), 201);
    assert!(full.headers().get("preference-applied").is_none());
    assert!(full.headers().contains_key("etag"));
    let full: Value = full.json().await.unwrap();
    assert_eq!(full["body"], "a body not sent back");
    assert_eq!(ids(&env.get("/api/v1/content", t).await).len(), 3);
}

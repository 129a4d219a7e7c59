//! Full-text search, embeddings and similarity search.

use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, ids, item};

#[actix_web::test]
async fn full_text_search_ranks_pages_and_follows_changes() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let in_title = env
        .create(t, item("Capybara habits", "They live near water."))
        .await;
    let in_body = env
        .create(
            t,
            item(
                "Rodents",
                "Among rodents the capybara (size < 1.4 m) is largest & calm.",
            ),
        )
        .await;
    let unrelated = env.create(t, item("Bees", "Bees make honey.")).await;

    let hits = env.get("/api/v1/content/search?q=capybara", t).await;
    assert_eq!(
        ids(&hits),
        vec![id(&in_title), id(&in_body)],
        "title matches weigh more: {hits}"
    );
    let body_hit = &hits["items"][1];
    let snippet = body_hit["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>capybara</mark>"), "{snippet}");
    assert!(
        snippet.contains("&lt;") && snippet.contains("&amp;"),
        "escaped: {snippet}"
    );
    assert!(hits["items"][0]["score"].as_f64().unwrap() > body_hit["score"].as_f64().unwrap());
    assert!(body_hit["item"].get("body").is_none());

    // Words only in the body, stemming, phrases, exclusion and OR.
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=largest", t).await),
        vec![id(&in_body)]
    );
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=lives", t).await),
        vec![id(&in_title)]
    );
    assert_eq!(
        ids(&env
            .get("/api/v1/content/search?q=%22make%20honey%22", t)
            .await),
        vec![id(&unrelated)]
    );
    assert_eq!(
        ids(&env
            .get("/api/v1/content/search?q=%22honey%20make%22", t)
            .await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&env
            .get("/api/v1/content/search?q=capybara%20-water", t)
            .await),
        vec![id(&in_body)]
    );
    let either = ids(&env
        .get("/api/v1/content/search?q=honey%20OR%20water", t)
        .await);
    assert_eq!(either.len(), 2);

    // Updates re-index, deletes un-index, in the same transaction as the write.
    let path = format!("/api/v1/content/{}", id(&unrelated));
    assert_eq!(
        env.call(
            Method::PATCH,
            &path,
            t,
            Some(json!({"body": "Wasps sting."}))
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=honey", t).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=wasps", t).await),
        vec![id(&unrelated)]
    );
    assert_eq!(env.call(Method::DELETE, &path, t, None).await.status(), 204);
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=wasps", t).await),
        Vec::<String>::new()
    );

    for bad in ["%22unclosed", "-only", "OR%20x", "%20", "%2B%2B%2B"] {
        let resp = env
            .call(
                Method::GET,
                &format!("/api/v1/content/search?q={bad}"),
                t,
                None,
            )
            .await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "q", "{bad}");
    }
    // FTS5 operators typed by a user are plain words, never a 500.
    for odd in [
        "NEAR(a%20b)",
        "title%3Acapybara",
        "capy*",
        "%5E%24",
        "AND",
        "NOT%20NOT",
    ] {
        let resp = env
            .call(
                Method::GET,
                &format!("/api/v1/content/search?q={odd}"),
                t,
                None,
            )
            .await;
        assert!(
            matches!(resp.status().as_u16(), 200 | 422),
            "{odd}: {}",
            resp.status()
        );
    }
    assert_problem(
        env.call(Method::GET, "/api/v1/content/search", t, None)
            .await,
        400,
        "bad_query",
    )
    .await;
}

#[actix_web::test]
async fn search_pages_by_cursor_without_repeats() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let mut made = Vec::new();
    for i in 0..7 {
        // Different term counts give different scores; two pairs tie on purpose.
        let body = format!("{} filler text", "otter ".repeat(1 + i / 2));
        made.push(id(&env.create(t, item(&format!("doc {i}"), &body)).await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/content/search?q=otter&limit=2&cursor={c}"),
            None => "/api/v1/content/search?q=otter&limit=2".into(),
        };
        let page = env.get(&path, t).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    made.sort();
    assert_eq!(sorted_seen, made, "every hit once: {seen:?}");
    assert_problem(
        env.call(
            Method::GET,
            "/api/v1/content/search?q=otter&cursor=bm9wZQ",
            t,
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

/// A query matching more items than `SEARCH_CANDIDATES` ranks the newest of them,
/// best first, and pages through those only; another owner's matches never count.
#[actix_web::test]
async fn search_ranks_the_newest_matches_up_to_the_candidate_bound() {
    let env = env(&[("SEARCH_CANDIDATES", "4".into())]).await;
    let (alice, bob) = (env.user().await, env.user().await);
    let t = &alice.access_token;
    let mut made = Vec::new();
    for i in 0..6 {
        // The oldest has the most matches: unbounded, it would rank first.
        let body = format!("{} filler", "heron ".repeat(6 - i));
        made.push(id(&env.create(t, item(&format!("heron {i}"), &body)).await));
        // Bob's newer matches must not push Alice's out of her candidates.
        env.create(&bob.access_token, item("heron", "heron heron"))
            .await;
    }
    let newest: Vec<String> = made[2..].to_vec();
    let first = env.get("/api/v1/content/search?q=heron&limit=3", t).await;
    let second = env
        .get(
            &format!(
                "/api/v1/content/search?q=heron&limit=3&cursor={}",
                first["next_cursor"].as_str().expect("a second page")
            ),
            t,
        )
        .await;
    assert!(second["next_cursor"].is_null(), "{second}");
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    assert_eq!(
        seen, newest,
        "the four newest, the one with most matches first"
    );
    // A rarer word is ranked over all its matches.
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=%22heron%200%22", t).await),
        vec![made[0].clone()]
    );
}

#[actix_web::test]
async fn embeddings_and_similarity() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let bob = env.user().await;
    let t = &alice.access_token;
    let put = |item: &str, body: Value| {
        let path = format!("/api/v1/content/{item}/embeddings");
        let env = &env;
        async move { env.call(Method::PUT, &path, t, Some(body)).await }
    };
    let north = id(&env
        .create(
            t,
            json!({"title": "North", "body": "one two", "chunks": [
            {"text": "one", "start": 0, "end": 3}, {"text": "two", "start": 4, "end": 7}]}),
        )
        .await);
    let east = id(&env.create(t, item("East", "x")).await);
    let northeast = id(&env.create(t, item("Northeast", "x")).await);
    let south = id(&env.create(t, item("South", "x")).await);
    let bobs = id(&env.create(&bob.access_token, item("Bob north", "x")).await);

    assert_eq!(put(&north, json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [0.0, 1.0]}, {"chunk": 1, "vector": [0.1, 1.0]}]})).await.status(), 204);
    assert_eq!(
        put(
            &east,
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [2.0, 0.0]}]})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        put(
            &northeast,
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [1.0, 1.0]}]})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        put(
            &south,
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [0.0, -3.0]}]})
        )
        .await
        .status(),
        204
    );
    let resp = env
        .call(
            Method::PUT,
            &format!("/api/v1/content/{bobs}/embeddings"),
            &bob.access_token,
            Some(json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [0.0, 1.0]}]})),
        )
        .await;
    assert_eq!(resp.status(), 204);

    let similar: Value = env
        .post(
            "/api/v1/content/search/similar",
            t,
            json!({"vector": [0.0, 5.0], "k": 3}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(similar["model"], "geo");
    assert_eq!(
        ids(&similar),
        vec![north.clone(), northeast.clone(), east.clone()],
        "{similar}"
    );
    assert!((similar["items"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    assert!(
        (similar["items"][1]["score"].as_f64().unwrap() - std::f64::consts::FRAC_1_SQRT_2).abs()
            < 1e-4
    );

    let like_east: Value = env
        .post(
            "/api/v1/content/search/similar",
            t,
            json!({"content_id": east, "k": 2}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ids(&like_east),
        vec![northeast.clone(), north.clone()],
        "the item itself is left out"
    );

    // Dimensions are fixed per model, numbers must be finite and not all zero.
    for (body, field) in [
        (
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [1.0, 2.0, 3.0]}]}),
            "vectors",
        ),
        (
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [0.0, 0.0]}]}),
            "vectors[0].vector",
        ),
        (
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [1e39, 1.0]}]}),
            "vectors[0].vector",
        ),
        (
            json!({"model": "geo", "vectors": [{"chunk": 5, "vector": [1.0, 1.0]}]}),
            "vectors[0].chunk",
        ),
        (
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [1.0, 1.0]}, {"chunk": 0, "vector": [1.0, 0.0]}]}),
            "vectors[1].chunk",
        ),
        (
            json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [1.0, 1.0]}, {"chunk": 1, "vector": [1.0]}]}),
            "vectors[1].vector",
        ),
        (json!({"model": "geo", "vectors": []}), "vectors"),
        (
            json!({"model": "bad model!", "vectors": [{"chunk": 0, "vector": [1.0]}]}),
            "model",
        ),
    ] {
        let problem =
            assert_problem(put(&south, body.clone()).await, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    // Another model may have other dimensions; then the model must be named.
    assert_eq!(
        put(
            &south,
            json!({"model": "other", "vectors": [{"chunk": 0, "vector": [1.0, 0.0, 0.0]}]})
        )
        .await
        .status(),
        204
    );
    let problem = assert_problem(
        env.post(
            "/api/v1/content/search/similar",
            t,
            json!({"vector": [0.0, 1.0]}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "model");
    for (body, field) in [
        (json!({"vector": [0.0, 1.0], "model": "geo", "k": 0}), "k"),
        (json!({"vector": [0.0, 1.0], "model": "geo", "k": 101}), "k"),
        (json!({"vector": [0.0, 1.0, 2.0], "model": "geo"}), "vector"),
        (json!({"model": "geo"}), "content_id"),
        (
            json!({"vector": [1.0, 0.0], "content_id": east, "model": "geo"}),
            "content_id",
        ),
        (json!({"vector": [1.0, 0.0], "model": "nope"}), "model"),
    ] {
        let problem = assert_problem(
            env.post("/api/v1/content/search/similar", t, body.clone())
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }

    // A new body keeps the item's vectors but says they are stale (they describe the
    // old text): in the PATCH answer and in the item's list of vectors, until new ones
    // are PUT.
    let embeddings = |id: String| {
        let env = &env;
        async move {
            let resp = env
                .call(
                    Method::GET,
                    &format!("/api/v1/content/{id}/embeddings"),
                    t,
                    None,
                )
                .await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        embeddings(north.clone()).await,
        json!({"models": [{"model": "geo", "vectors": 2, "stale": false}]})
    );
    let patched = env
        .call(
            Method::PATCH,
            &format!("/api/v1/content/{north}"),
            t,
            Some(json!({"body": "changed"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["stale_vectors"], json!(["geo"]));
    assert_eq!(
        embeddings(north.clone()).await,
        json!({"models": [{"model": "geo", "vectors": 2, "stale": true}]})
    );
    // A change that leaves the body alone says nothing of vectors.
    let retitled: Value = env
        .call(
            Method::PATCH,
            &format!("/api/v1/content/{north}"),
            t,
            Some(json!({"title": "North, again"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(retitled.get("stale_vectors").is_none(), "{retitled}");
    // Still found by similarity (the best description there is), never lost.
    let similar: Value = env
        .post(
            "/api/v1/content/search/similar",
            t,
            json!({"vector": [0.0, 1.0], "model": "geo", "k": 10}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(ids(&similar).contains(&north));
    assert!(!ids(&similar).contains(&bobs), "never another user's items");
    assert_eq!(ids(&similar).len(), 4);
    // New vectors for the new text: fresh again.
    assert_eq!(
        env.call(
            Method::PUT,
            &format!("/api/v1/content/{north}/embeddings"),
            t,
            Some(json!({"model": "geo", "vectors": [{"chunk": 0, "vector": [0.0, 1.0]}]}))
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        embeddings(north.clone()).await,
        json!({"models": [{"model": "geo", "vectors": 1, "stale": false}]})
    );
    // Another user's item is not found.
    let bob_sees = env
        .call(
            Method::GET,
            &format!("/api/v1/content/{north}/embeddings"),
            &env.user().await.access_token,
            None,
        )
        .await;
    assert_eq!(bob_sees.status(), 404);
}

#[actix_web::test]
async fn replicas_on_one_database_never_serve_stale_vectors() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let db_url = env.content.db.url().to_owned();
    let jwks = peermesh_test_stack::spawn::jwks_url(&env.auth);
    let cached = peermesh_test_stack::spawn::Verifier::Content
        .spawn(&jwks, &[("DATABASE_URL", db_url.clone())])
        .await;
    let uncached = peermesh_test_stack::spawn::Verifier::Content
        .spawn(
            &jwks,
            &[("DATABASE_URL", db_url), ("VECTOR_CACHE_BYTES", "0".into())],
        )
        .await;
    let similar = |replica: &peermesh_test_stack::spawn::Spawned| {
        let req = replica
            .client
            .request(Method::POST, "/api/v1/content/search/similar")
            .bearer_auth(t)
            .json(&json!({"vector": [1.0, 0.0], "k": 5}));
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            ids(&resp.json::<Value>().await.unwrap())
        }
    };
    let put = |item: String, v: [f32; 2]| {
        env.call(
            Method::PUT,
            format!("/api/v1/content/{item}/embeddings"),
            t,
            Some(json!({"model": "m", "vectors": [{"chunk": 0, "vector": v}]})),
        )
    };
    let a = id(&env.create(t, item("A", "a")).await);
    let b = id(&env.create(t, item("B", "b")).await);
    assert_eq!(put(a.clone(), [1.0, 0.1]).await.status(), 204);
    assert_eq!(similar(&cached).await, vec![a.clone()]);

    // Written through the first replica; the second must see it at once.
    assert_eq!(put(b.clone(), [1.0, 0.0]).await.status(), 204);
    assert_eq!(similar(&cached).await, vec![b.clone(), a.clone()]);
    assert_eq!(similar(&uncached).await, vec![b.clone(), a.clone()]);
    assert_eq!(put(a.clone(), [-1.0, 0.0]).await.status(), 204);
    assert_eq!(similar(&cached).await, vec![b.clone(), a.clone()]);
    assert_eq!(
        env.call(Method::DELETE, &format!("/api/v1/content/{b}"), t, None)
            .await
            .status(),
        204
    );
    assert_eq!(similar(&cached).await, vec![a.clone()]);
    assert_eq!(similar(&uncached).await, vec![a]);
}

/// The first vectors of a model, sent for many items at once: every one is stored.
/// (On PostgreSQL the first writers all found the model unregistered, all registered
/// it, and all but one failed.)
#[actix_web::test]
async fn a_new_model_written_in_parallel_registers_once() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let mut items = Vec::new();
    for i in 0..12 {
        items.push(id(&env.create(t, item(&format!("Item {i}"), "x")).await));
    }
    let puts = items.iter().enumerate().map(|(i, item)| {
        env.call(
            Method::PUT,
            format!("/api/v1/content/{item}/embeddings"),
            t,
            Some(json!({"model": "burst", "vectors": [{"chunk": 0, "vector": [1.0, i as f32]}]})),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(puts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses, vec![204; items.len()]);
    let similar: Value = env
        .post(
            "/api/v1/content/search/similar",
            t,
            json!({"vector": [1.0, 0.0], "k": 20, "model": "burst"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&similar).len(), items.len(), "{similar}");
}

#[actix_web::test]
async fn the_index_holds_the_first_200_000_characters_of_a_body() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    // Two-byte characters before the words: the limit counts characters, not bytes.
    let body = format!(
        "{}quokkainside {} quokkaoutside",
        "é ".repeat(99_990),
        "x".repeat(20)
    );
    let made = env.create(t, item("Long", &body)).await;
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=quokkainside", t).await),
        vec![id(&made)]
    );
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=quokkaoutside", t).await),
        Vec::<String>::new()
    );
}

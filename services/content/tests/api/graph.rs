//! Knowledge-graph links and traversal.

use futures_util::StreamExt;
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, item, Env};

async fn link(env: &Env, token: &str, from: &str, to: &str, relation: &str) -> reqwest::Response {
    env.post(
        &format!("/api/v1/content/{from}/links"),
        token,
        json!({"target_id": to, "relation": relation}),
    )
    .await
}

fn node_depths(graph: &Value) -> Vec<(String, i64)> {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["title"].as_str().unwrap().to_owned(),
                n["depth"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn links_are_typed_unique_and_between_own_items() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    let a = id(&env.create(t, item("A", "a")).await);
    let b = id(&env.create(t, item("B", "b")).await);

    let resp = env
        .post(
            &format!("/api/v1/content/{a}/links"),
            t,
            json!({"target_id": b, "relation": "cites", "weight": 0.5}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let made: Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/content/{a}/links/{}", id(&made)));
    assert_eq!(
        (made["source_id"].as_str(), made["target_id"].as_str()),
        (Some(a.as_str()), Some(b.as_str()))
    );
    assert_eq!(made["weight"], 0.5);

    assert_problem(link(&env, t, &a, &b, "cites").await, 409, "link_exists").await;
    assert_eq!(
        link(&env, t, &a, &b, "extends").await.status(),
        201,
        "another relation is another edge"
    );
    assert_eq!(
        link(&env, t, &b, &a, "cites").await.status(),
        201,
        "edges are directed"
    );
    let missing = uuid::Uuid::now_v7().to_string();
    let problem =
        assert_problem(link(&env, t, &a, &missing, "cites").await, 404, "not_found").await;
    assert_eq!(problem["errors"][0]["field"], "target_id");
    assert_problem(link(&env, t, &missing, &a, "cites").await, 404, "not_found").await;
    for (body, field) in [
        (json!({"target_id": a, "relation": "self"}), "target_id"),
        (json!({"target_id": b, "relation": "Not Slug"}), "relation"),
        (json!({"target_id": "nope", "relation": "r"}), "target_id"),
    ] {
        let problem = assert_problem(
            env.post(&format!("/api/v1/content/{a}/links"), t, body)
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }

    let out = env.get(&format!("/api/v1/content/{a}/links"), t).await;
    assert_eq!(out["items"].as_array().unwrap().len(), 2);
    let incoming = env
        .get(&format!("/api/v1/content/{a}/links?direction=in"), t)
        .await;
    assert_eq!(incoming["items"].as_array().unwrap().len(), 1);
    assert_eq!(incoming["items"][0]["source_id"], b.as_str());
    let both = env
        .get(
            &format!("/api/v1/content/{a}/links?direction=both&relation=cites"),
            t,
        )
        .await;
    assert_eq!(both["items"].as_array().unwrap().len(), 2);
    assert_problem(
        env.call(
            Method::GET,
            &format!("/api/v1/content/{a}/links?direction=up"),
            t,
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    let resp = env.call(Method::DELETE, &location, t, None).await;
    assert_eq!(resp.status(), 204);
    assert_problem(
        env.call(Method::DELETE, &location, t, None).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        env.get(&format!("/api/v1/content/{a}/links?relation=cites"), t)
            .await["items"],
        json!([])
    );
}

#[actix_web::test]
async fn traversal_is_depth_bounded_cycle_safe_and_capped() {
    let env = env(&[("GRAPH_MAX_NODES", "6".into())]).await;
    let alice = env.user().await;
    let t = &alice.access_token;
    // a → b → c → d → e → f → g, plus a cycle c → a and a side edge b -[tag]→ x.
    let mut ids = std::collections::HashMap::new();
    for name in ["a", "b", "c", "d", "e", "f", "g", "x"] {
        ids.insert(name, id(&env.create(t, item(name, name)).await));
    }
    for (from, to, rel) in [
        ("a", "b", "next"),
        ("b", "c", "next"),
        ("c", "d", "next"),
        ("d", "e", "next"),
        ("e", "f", "next"),
        ("f", "g", "next"),
        ("c", "a", "next"),
        ("b", "x", "tag"),
    ] {
        assert_eq!(link(&env, t, &ids[from], &ids[to], rel).await.status(), 201);
    }
    let graph = |q: String| {
        let path = format!("/api/v1/content/{}/graph{q}", ids["a"]);
        let env = &env;
        async move { env.get(&path, t).await }
    };

    let g = graph("?depth=2".into()).await;
    assert_eq!(
        node_depths(&g),
        vec![
            ("a".into(), 0),
            ("b".into(), 1),
            ("c".into(), 2),
            ("x".into(), 2)
        ]
    );
    assert_eq!(
        g["edges"].as_array().unwrap().len(),
        4,
        "a→b, b→c, c→a, b→x: {g}"
    );
    assert_eq!(g["truncated"], false);

    let g = graph("?depth=3&relation=next".into()).await;
    assert_eq!(
        node_depths(&g),
        vec![
            ("a".into(), 0),
            ("b".into(), 1),
            ("c".into(), 2),
            ("d".into(), 3)
        ]
    );
    assert!(g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["relation"] == "next"));

    // Depth 5 reaches 8 nodes but the cap is 6.
    let g = graph("?depth=5".into()).await;
    assert_eq!(g["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(g["truncated"], true);

    let g = env
        .get(
            &format!("/api/v1/content/{}/graph?depth=1&direction=in", ids["a"]),
            t,
        )
        .await;
    assert_eq!(node_depths(&g), vec![("a".into(), 0), ("c".into(), 1)]);
    let g = env
        .get(
            &format!("/api/v1/content/{}/graph?depth=1&direction=both", ids["c"]),
            t,
        )
        .await;
    assert_eq!(
        node_depths(&g),
        vec![
            ("c".into(), 0),
            ("a".into(), 1),
            ("b".into(), 1),
            ("d".into(), 1)
        ]
    );

    for bad in [
        "?depth=0",
        "?depth=6",
        "?depth=x",
        "?relation=NOPE",
        "?direction=sideways",
        "?colour=red",
    ] {
        let resp = env
            .call(
                Method::GET,
                &format!("/api/v1/content/{}/graph{bad}", ids["a"]),
                t,
                None,
            )
            .await;
        assert!(
            matches!(resp.status().as_u16(), 400 | 422),
            "{bad}: {}",
            resp.status()
        );
    }
}

/// 1 000 items of one owner, each linked to every other (999 000 edges, written
/// straight into the database: the API would take minutes to make them).
async fn dense_graph(env: &Env, token: &str, owner: &str) -> Vec<String> {
    let creators = (0..1000).map(|n| env.create(token, item(&format!("N{n}"), "dense")));
    let mut ids = Vec::new();
    for batch in futures_util::stream::iter(creators)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
    {
        ids.push(id(&batch));
    }
    let db =
        peermesh_db::Db::connect(env.content.db.url(), 1, &peermesh_content::MIGRATIONS).unwrap();
    let owner = owner.to_owned();
    let made = db
        .write(move |conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(
                "INSERT INTO content_links \
                     (id, owner_id, source_id, target_id, relation, weight, created_at) \
                 SELECT a.id || '>' || b.id, a.owner_id, a.id, b.id, 'related', NULL, a.created_at \
                 FROM content_items a JOIN content_items b \
                     ON b.owner_id = a.owner_id AND b.id <> a.id \
                 WHERE a.owner_id = $1",
            )
            .bind::<diesel::sql_types::Text, _>(owner)
            .execute(conn)
            .map_err(Into::into)
        })
        .await
        .unwrap();
    assert_eq!(made, 999_000);
    ids
}

/// A dense graph at depth 5 costs work bounded by the node cap: the walk stops
/// expanding once the cap is reached instead of following every path and cutting the
/// answer afterwards. (Walked to the end, these traversals take tens of seconds.)
#[actix_web::test]
async fn traversal_of_a_dense_graph_stops_at_the_node_cap() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let ids = dense_graph(&env, &alice.access_token, &alice.id).await;
    for direction in ["out", "in", "both"] {
        let started = std::time::Instant::now();
        let graph = env
            .get(
                &format!(
                    "/api/v1/content/{}/graph?depth=5&direction={direction}",
                    ids[0]
                ),
                &alice.access_token,
            )
            .await;
        let took = started.elapsed();
        assert_eq!(graph["truncated"], true, "{direction}");
        let nodes = graph["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 500, "{direction}: the default cap");
        assert_eq!(nodes[0]["id"], ids[0].as_str());
        assert_eq!(nodes[0]["depth"], 0);
        // Every other node is one hop away, and is reported so.
        assert!(nodes[1..].iter().all(|n| n["depth"] == 1), "{direction}");
        assert_eq!(
            graph["edges"].as_array().unwrap().len(),
            2500,
            "{direction}"
        );
        // Not a benchmark: a guard against the unbounded walk (tens of seconds here).
        assert!(
            took < std::time::Duration::from_secs(5),
            "{direction}: {took:?}"
        );
    }
}

//! Who may touch what: owners only (404 for anyone else, on every route), admins
//! read everything, service tokens write for themselves or act for a user.

use peermesh_test_support::auth::service_token;
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, ids, item};

#[actix_web::test]
async fn nobody_reaches_another_users_items_on_any_route() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let bob = env.user().await;
    let a = &alice.access_token;
    let b = &bob.access_token;
    let secret = env
        .create(a, item("Alice's diary", "the secret platypus"))
        .await;
    let other = env.create(a, item("Alice's other", "x")).await;
    let mine = env.create(b, item("Bob's", "bob text")).await;
    let s = id(&secret);
    let p = format!("/api/v1/content/{s}");
    assert_eq!(
        env.post(
            &format!("{p}/links"),
            a,
            json!({"target_id": id(&other), "relation": "r"})
        )
        .await
        .status(),
        201
    );
    let link_id = id(&env.get(&format!("{p}/links"), a).await["items"][0]);
    let resp = env
        .call(
            Method::PUT,
            &format!("{p}/embeddings"),
            a,
            Some(json!({"model": "m", "vectors": [{"chunk": 0, "vector": [1.0, 0.0]}]})),
        )
        .await;
    assert_eq!(resp.status(), 204);

    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, p.clone(), None),
        (Method::PATCH, p.clone(), Some(json!({"title": "mine now"}))),
        (Method::DELETE, p.clone(), None),
        (Method::GET, format!("{p}/chunks"), None),
        (
            Method::PUT,
            format!("{p}/embeddings"),
            Some(json!({"model": "m", "vectors": [{"chunk": 0, "vector": [0.0, 1.0]}]})),
        ),
        (
            Method::POST,
            format!("{p}/links"),
            Some(json!({"target_id": id(&mine), "relation": "r"})),
        ),
        (Method::GET, format!("{p}/links"), None),
        (Method::DELETE, format!("{p}/links/{link_id}"), None),
        (Method::GET, format!("{p}/graph"), None),
        // Bob's own item pointing at Alice's.
        (
            Method::POST,
            format!("/api/v1/content/{}/links", id(&mine)),
            Some(json!({"target_id": s, "relation": "r"})),
        ),
        (
            Method::POST,
            "/api/v1/content/search/similar".into(),
            Some(json!({"content_id": s})),
        ),
    ];
    for (method, path, body) in attempts {
        let resp = env.call(method.clone(), &path, b, body).await;
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    // Nothing changed, and searches never show Alice's items to Bob.
    let still = env.get(&p, a).await;
    assert_eq!(still["title"], "Alice's diary");
    assert_eq!(still["version"], 1);
    assert_eq!(
        env.get(&format!("{p}/links"), a).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ids(&env.get("/api/v1/content/search?q=platypus", b).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&env.get("/api/v1/content?q=platypus", b).await),
        Vec::<String>::new()
    );
    assert_eq!(ids(&env.get("/api/v1/content", b).await), vec![id(&mine)]);
    let resp = env
        .post(
            "/api/v1/content/search/similar",
            b,
            json!({"vector": [1.0, 0.0]}),
        )
        .await;
    assert_problem(resp, 422, "validation_failed").await; // Bob has no vectors at all
    assert_eq!(env.get("/api/v1/content/tags", b).await["items"], json!([]));
}

#[actix_web::test]
async fn admins_read_any_item_but_write_only_their_own() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let admin = &env.admin.access_token;
    let a = env.create(&alice.access_token, item("A", "alpha")).await;
    let b = env.create(&alice.access_token, item("B", "beta")).await;
    let p = format!("/api/v1/content/{}", id(&a));
    assert_eq!(
        env.post(
            &format!("{p}/links"),
            &alice.access_token,
            json!({"target_id": id(&b), "relation": "r"})
        )
        .await
        .status(),
        201
    );

    assert_eq!(env.get(&p, admin).await["owner_id"], alice.id.as_str());
    assert_eq!(
        env.get(&format!("{p}/chunks"), admin).await["items"][0]["text"],
        "alpha"
    );
    assert_eq!(
        env.get(&format!("{p}/links"), admin).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.get(&format!("{p}/graph"), admin).await["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        env.call(Method::PATCH, &p, admin, Some(json!({"title": "x"})))
            .await
            .status(),
        404
    );
    assert_eq!(
        env.call(Method::DELETE, &p, admin, None).await.status(),
        404
    );
    // Their own list is their own.
    assert_eq!(env.get("/api/v1/content", admin).await["items"], json!([]));
}

#[actix_web::test]
async fn service_tokens_write_for_themselves_or_act_for_a_user() {
    let env = env(&[]).await;
    let alice = env.user().await;
    // Alice's own request through the client delegates to it (token exchange).
    let acting = env.acting.delegated_token(&env.auth.client, &alice).await;
    let writer = service_token(&env.auth.client, &env.admin, &["content:write"]).await;
    let reader = service_token(&env.auth.client, &env.admin, &["content:read"]).await;

    // Acting for Alice: the item is hers.
    let resp = env
        .request(Method::POST, "/api/v1/content", &acting)
        .header("x-on-behalf-of", &alice.id)
        .json(&item("Ingested", "from a feed"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let made: Value = resp.json().await.unwrap();
    assert_eq!(made["owner_id"], alice.id.as_str());
    assert_eq!(
        ids(&env.get("/api/v1/content", &alice.access_token).await),
        vec![id(&made)]
    );

    // content:write alone: its own items, and no acting.
    let own = env.create(&writer, item("Service note", "x")).await;
    assert_ne!(own["owner_id"], alice.id.as_str());
    let resp = env
        .request(Method::POST, "/api/v1/content", &writer)
        .header("x-on-behalf-of", &alice.id)
        .json(&item("Sneaky", "x"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403, "insufficient_scope").await;
    let resp = env
        .post("/api/v1/content", &reader, item("No scope", "x"))
        .await;
    assert_problem(resp, 403, "insufficient_scope").await;

    // A user token can never act for someone else; a bad header is a 400.
    let resp = env
        .request(Method::GET, "/api/v1/content", &alice.access_token)
        .header("x-on-behalf-of", &env.admin.email)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403, "insufficient_scope").await;
    let resp = env
        .request(Method::GET, "/api/v1/content", &acting)
        .header("x-on-behalf-of", "not-a-user-id")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "invalid_on_behalf_of").await;
    assert_eq!(
        ids(&env.get("/api/v1/content", &alice.access_token).await).len(),
        1,
        "nothing else was written"
    );
}

/// `content:act_as` lets a client act only for the user named in its token by auth,
/// and auth names only users who delegated to that client: a compromised client
/// cannot write into anyone else's account, and no admin can hand out the scope.
#[actix_web::test]
async fn acting_for_a_user_needs_that_users_delegation() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let bob = env.user().await;
    let for_alice = env.acting.delegated_token(&env.auth.client, &alice).await;
    let write_as = |token: String, user: String| {
        let req = env
            .request(Method::POST, "/api/v1/content", &token)
            .header("x-on-behalf-of", user)
            .json(&item("Planted", "x"));
        async move { req.send().await.unwrap() }
    };

    // Alice's delegation does not reach Bob.
    let resp = write_as(for_alice.clone(), bob.id.clone()).await;
    assert_problem(resp, 403, "not_delegated").await;
    // The scope without a delegation in the token acts for nobody.
    let resp = env
        .acting
        .request_token(&env.auth.client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(resp.status(), 200);
    let bare: Value = resp.json().await.unwrap();
    let bare = bare["access_token"].as_str().unwrap().to_owned();
    let resp = write_as(bare, alice.id.clone()).await;
    assert_problem(resp, 403, "not_delegated").await;
    // Auth mints acting tokens only for users who delegated.
    let resp = env
        .acting
        .request_token(
            &env.auth.client,
            &[("grant_type", "client_credentials"), ("act_for", &bob.id)],
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let resp = env
        .acting
        .request_token(
            &env.auth.client,
            &[("grant_type", "client_credentials"), ("act_for", &alice.id)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let later: Value = resp.json().await.unwrap();
    let resp = write_as(
        later["access_token"].as_str().unwrap().to_owned(),
        alice.id.clone(),
    )
    .await;
    assert_eq!(resp.status(), 201);
    // A delegation needs the user's own token: a service token is refused.
    let resp = env
        .acting
        .request_token(
            &env.auth.client,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", &for_alice),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);

    // Bob's account is untouched; no admin can create a client that acts for users.
    assert!(ids(&env.get("/api/v1/content", &bob.access_token).await).is_empty());
    let resp = env
        .auth
        .client
        .request(Method::POST, "/api/v1/auth/clients")
        .bearer_auth(&env.admin.access_token)
        .json(&json!({"name": "rogue", "scopes": ["content:act_as"]}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "scopes");
}

#[actix_web::test]
async fn only_the_auth_services_own_token_erases_an_account() {
    let env = env(&[]).await;
    let alice = env.user().await;
    let bob = env.user().await;
    let kept = env
        .create(&alice.access_token, item("Alice's", "still here"))
        .await;
    let path = format!("/api/v1/content/accounts/{}", alice.id);
    // Another user, an admin, a service client (even one acting for Alice): 403.
    let writer = service_token(&env.auth.client, &env.admin, &["content:write"]).await;
    let acting = env.acting.delegated_token(&env.auth.client, &alice).await;
    for token in [&bob.access_token, &env.admin.access_token, &writer, &acting] {
        let resp = env.call(Method::DELETE, &path, token, None).await;
        assert_problem(resp, 403, "insufficient_scope").await;
    }
    let p = format!("/api/v1/content/{}", id(&kept));
    assert_eq!(env.get(&p, &alice.access_token).await["id"], id(&kept));
}

//! Refresh rotation, grace window, reuse detection, logout, sessions, password change.

use peermesh_test_stack::spawn::spawn_auth;
use peermesh_test_support::auth::{get_json, login, register, unique_email, PASSWORD};
use peermesh_test_support::client::{assert_problem, TestClient};
use reqwest::Method;
use serde_json::{json, Value};

async fn refresh(client: &TestClient, token: &str) -> reqwest::Response {
    client
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": token}))
        .await
}

async fn refreshed(client: &TestClient, token: &str) -> Value {
    let resp = refresh(client, token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

fn sid(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).unwrap();
    let bytes = base64_decode(payload);
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[actix_web::test]
async fn refresh_rotates_and_a_replay_after_the_grace_window_revokes_the_session() {
    let app = spawn_auth(&[("REFRESH_GRACE_SECS", "1".into())]).await;
    let user = register(&app.client, &unique_email("r")).await;
    let first = refreshed(&app.client, &user.refresh_token).await;
    let second_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, user.refresh_token);
    assert_eq!(
        sid(first["access_token"].as_str().unwrap()),
        sid(&user.access_token)
    );

    // Within the grace window the old token still works (several tabs), same
    // session, and gets the same successor: no second chain starts.
    let sibling = refreshed(&app.client, &user.refresh_token).await;
    assert_eq!(
        sid(sibling["access_token"].as_str().unwrap()),
        sid(&user.access_token)
    );
    assert_eq!(sibling["refresh_token"], first["refresh_token"]);

    // After it, presenting the rotated token again is theft: the session is revoked.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_problem(
        refresh(&app.client, &user.refresh_token).await,
        401,
        "refresh_token_reused",
    )
    .await;
    assert_problem(
        refresh(&app.client, &second_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;

    // Unknown or garbage tokens.
    assert_problem(
        refresh(&app.client, "pmr_nonsense").await,
        401,
        "invalid_refresh_token",
    )
    .await;
    let resp = app
        .client
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": 5}))
        .await;
    assert_problem(resp, 422, "validation_failed").await;
}

#[actix_web::test]
async fn racing_refreshes_of_one_token_all_succeed_and_keep_the_session() {
    let app = spawn_auth(&[]).await;
    let user = register(&app.client, &unique_email("race")).await;
    let racers = (0..8).map(|_| {
        let (client, token) = (app.client.clone(), user.refresh_token.clone());
        async move { refresh(&client, &token).await }
    });
    let answers = futures_util::future::join_all(racers).await;
    let mut fresh_tokens = std::collections::BTreeSet::new();
    for resp in answers {
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            sid(body["access_token"].as_str().unwrap()),
            sid(&user.access_token)
        );
        fresh_tokens.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    // Every racer got the one successor, which works: one chain, still active.
    assert_eq!(fresh_tokens.len(), 1, "{fresh_tokens:?}");
    refreshed(&app.client, fresh_tokens.first().unwrap()).await;
}

/// Replays within the grace window never fork the family into chains that rotate on
/// their own: each gets the chain's newest token, so a thief replaying a stolen token
/// quickly holds the same token as the victim, and the next rotation by either one
/// makes the other's copy a replay.
#[actix_web::test]
async fn replays_within_the_grace_window_yield_one_chain() {
    let app = spawn_auth(&[("REFRESH_GRACE_SECS", "2".into())]).await;
    let user = register(&app.client, &unique_email("chain")).await;
    let original = user.refresh_token.clone();
    let s1 = refreshed(&app.client, &original).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        let replay = refreshed(&app.client, &original).await;
        assert_eq!(replay["refresh_token"], s1.as_str());
    }
    // The chain moves on; a late tab replaying the original lands on the newest token.
    let s2 = refreshed(&app.client, &s1).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(s2, s1);
    assert_eq!(
        refreshed(&app.client, &original).await["refresh_token"],
        s2.as_str()
    );
    assert_eq!(
        refreshed(&app.client, &s1).await["refresh_token"],
        s2.as_str()
    );
    // One live token: rotating it once more leaves every earlier one a replay, which
    // after the window revokes the family, the newest token included.
    let s3 = refreshed(&app.client, &s2).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_problem(refresh(&app.client, &s1).await, 401, "refresh_token_reused").await;
    assert_problem(
        refresh(&app.client, &s3).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}

#[actix_web::test]
async fn logout_logout_all_and_session_revocation() {
    let app = spawn_auth(&[]).await;
    let email = unique_email("s");
    let first = register(&app.client, &email).await;
    let second = login(&app.client, &email, PASSWORD).await;
    let third = login(&app.client, &email, PASSWORD).await;

    let sessions = get_json(&app.client, "/api/v1/auth/sessions", &second.access_token).await;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(items.iter().all(|s| s["last_used_at"].is_string()));

    // Logging out ends that session only.
    let resp = app
        .client
        .request(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&first.access_token)
        .json(&json!({"refresh_token": first.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        refresh(&app.client, &first.refresh_token).await.status(),
        401
    );
    let second = {
        let body = refreshed(&app.client, &second.refresh_token).await;
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };

    // Another user cannot revoke my session: 404, not 403.
    let stranger = register(&app.client, &unique_email("stranger")).await;
    let third_sid = sid(&third.access_token);
    let resp = app
        .client
        .request(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{third_sid}"),
        )
        .bearer_auth(&stranger.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404, "not_found").await;
    let resp = app
        .client
        .request(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{third_sid}"),
        )
        .bearer_auth(&second.0)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        refresh(&app.client, &third.refresh_token).await.status(),
        401
    );

    // logout-all ends the rest.
    let resp = app
        .client
        .request(Method::POST, "/api/v1/auth/logout-all")
        .bearer_auth(&second.0)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(refresh(&app.client, &second.1).await.status(), 401);
    assert_eq!(
        refresh(&app.client, &stranger.refresh_token).await.status(),
        200,
        "others are untouched"
    );
}

#[actix_web::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = spawn_auth(&[]).await;
    let email = unique_email("pw");
    let here = register(&app.client, &email).await;
    let elsewhere = login(&app.client, &email, PASSWORD).await;
    let change = |current: &'static str, new: &'static str| {
        let (client, token) = (app.client.clone(), here.access_token.clone());
        async move {
            client
                .request(Method::POST, "/api/v1/auth/me/password")
                .bearer_auth(token)
                .json(&json!({"current_password": current, "new_password": new}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_problem(
        change("not it at all", "a new password").await,
        403,
        "wrong_current_password",
    )
    .await;
    assert_problem(change(PASSWORD, "short").await, 422, "validation_failed").await;
    assert_eq!(change(PASSWORD, "a new password").await.status(), 204);

    assert_eq!(
        refresh(&app.client, &elsewhere.refresh_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        refresh(&app.client, &here.refresh_token).await.status(),
        200
    );
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), 401);
    login(&app.client, &email, "a new password").await;
}

#[actix_web::test]
async fn profile_updates_cannot_touch_roles() {
    let app = spawn_auth(&[]).await;
    let user = register(&app.client, &unique_email("p")).await;
    let patch = |body: Value| {
        let (client, token) = (app.client.clone(), user.access_token.clone());
        async move {
            client
                .request(Method::PATCH, "/api/v1/auth/me")
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = patch(json!({"display_name": "  Grace  "})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["display_name"], "Grace");
    let body = assert_problem(
        patch(json!({"roles": ["admin"]})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "roles");
    assert_problem(
        patch(json!({"display_name": ""})).await,
        422,
        "validation_failed",
    )
    .await;
    let resp = app.client.get("/api/v1/auth/me").await;
    assert_problem(resp, 401, "unauthorized").await;
}

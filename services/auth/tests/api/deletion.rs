//! Deleting one's own account (`DELETE /me`): what it asks for and what is left.
//! (Erasing the data the other services keep is tested with the whole stack, in the
//! ingestion service's tests.)

use peermesh_auth::routes::admin::new_client;
use peermesh_auth::store::clients;
use peermesh_test_stack::spawn::auth_with_admin;
use peermesh_test_stack::spawn::spawn_auth;
use peermesh_test_support::auth::{authed, register, unique_email, PASSWORD};
use peermesh_test_support::client::{assert_problem, TestClient};
use reqwest::{Method, Response};
use serde_json::{json, Value};

async fn delete_me(client: &TestClient, token: &str, body: Value) -> Response {
    authed(client, Method::DELETE, "/api/v1/auth/me", token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_as(client: &TestClient, path: &str, token: &str) -> Response {
    authed(client, Method::GET, path, token)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn an_account_is_deleted_with_its_password_and_its_tokens_stop_working() {
    let app = spawn_auth(&[]).await;
    let email = unique_email("leaving");
    let user = register(&app.client, &email).await;

    let resp = delete_me(
        &app.client,
        &user.access_token,
        json!({"password": "not it at all"}),
    )
    .await;
    assert_problem(resp, 403, "wrong_current_password").await;
    let resp = delete_me(&app.client, &user.access_token, json!({"password": 7})).await;
    let body = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "password");

    let resp = delete_me(
        &app.client,
        &user.access_token,
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], user.id.as_str());
    assert_eq!(
        body["pending"],
        json!([]),
        "no other service is configured here"
    );

    // The access token, still unexpired, is refused; so is the refresh token.
    let resp = get_as(&app.client, "/api/v1/auth/me", &user.access_token).await;
    assert_problem(resp, 401, "account_closed").await;
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_problem(resp, 401, "invalid_refresh_token").await;
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_problem(resp, 401, "invalid_credentials").await;

    // The address is free again: a new account, with a new id.
    let again = register(&app.client, &email).await;
    assert_ne!(again.id, user.id);
    let resp = get_as(&app.client, "/api/v1/auth/me", &again.access_token).await;
    assert_eq!(resp.status(), 200);
}

#[actix_web::test]
async fn without_the_password_only_a_fresh_sign_in_deletes_the_account() {
    // Any sign-in is "too old" here.
    let strict = spawn_auth(&[("REAUTH_WINDOW_SECS", "0".into())]).await;
    let user = register(&strict.client, &unique_email("stale")).await;
    let resp = delete_me(&strict.client, &user.access_token, json!({})).await;
    assert_problem(resp, 403, "reauthentication_required").await;
    let resp = get_as(&strict.client, "/api/v1/auth/me", &user.access_token).await;
    assert_eq!(resp.status(), 200, "the account is still there");

    // Signed in just now (registering signs in): no password needed, as for an
    // account that has none (Google, GitHub).
    let app = spawn_auth(&[]).await;
    let user = register(&app.client, &unique_email("fresh")).await;
    let resp = delete_me(&app.client, &user.access_token, json!({})).await;
    assert_eq!(resp.status(), 202);
    let resp = get_as(&app.client, "/api/v1/auth/sessions", &user.access_token).await;
    assert_problem(resp, 401, "account_closed").await;
}

#[actix_web::test]
async fn no_client_gets_the_scope_that_erases_accounts() {
    let (app, admin) = auth_with_admin(&[]).await;
    // An admin cannot create such a client...
    let resp = authed(
        &app.client,
        Method::POST,
        "/api/v1/auth/clients",
        &admin.access_token,
    )
    .json(&json!({"name": "eraser", "scopes": ["content:write", "accounts:delete"]}))
    .send()
    .await
    .unwrap();
    let body = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "scopes");

    // ... and one stored with it before it was reserved gets tokens without it.
    let (client, secret) = new_client("old", "accounts:delete content:write".into(), None);
    let id = client.id.clone();
    let db = peermesh_db::Db::connect(app.db.url(), 1, &peermesh_auth::MIGRATIONS).unwrap();
    db.write(move |conn| clients::insert(conn, &client))
        .await
        .unwrap();
    let token = |scope: Option<&str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|s| ("scope", s)));
        app.client
            .request(Method::POST, "/api/v1/auth/token")
            .basic_auth(&id, Some(&secret))
            .form(&form)
            .send()
    };
    let resp = token(None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "content:write");
    let resp = token(Some("accounts:delete")).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
}

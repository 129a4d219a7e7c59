//! Administrators: the bootstrap admin, user administration, service clients and the
//! client-credentials grant.

use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_test_stack::spawn::auth_with_admin;
use peermesh_test_stack::spawn::{jwks_url, spawn_auth, spawn_auth_on, Spawned};
use peermesh_test_support::auth::{
    get_json, login, register, unique_email, verify_email, TestUser, PASSWORD,
};
use peermesh_test_support::client::{assert_problem, TestClient};
use reqwest::Method;
use serde_json::{json, Value};

async fn with_admin() -> (Spawned, TestUser) {
    auth_with_admin(&[]).await
}

async fn call(
    client: &TestClient,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = client.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

#[actix_web::test]
async fn the_bootstrap_admin_administers_users() {
    let (app, admin) = with_admin().await;
    let me: Value = call(
        &app.client,
        Method::GET,
        "/api/v1/auth/me",
        &admin.access_token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(me["roles"], json!(["admin", "user"]));

    let mut users = Vec::new();
    for i in 0..4 {
        users.push(register(&app.client, &unique_email(&format!("u{i}"))).await);
    }
    // Regular users are refused (403), anonymous callers too (401).
    let resp = call(
        &app.client,
        Method::GET,
        "/api/v1/auth/users",
        &users[0].access_token,
        None,
    )
    .await;
    assert_problem(resp, 403, "forbidden").await;
    assert_problem(
        app.client.get("/api/v1/auth/users").await,
        401,
        "unauthorized",
    )
    .await;

    // Cursor pages: newest first, every user exactly once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/auth/users?limit=2".to_owned();
    loop {
        let page: Value = call(&app.client, Method::GET, &path, &admin.access_token, None)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/auth/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    for bad in ["limit=0", "limit=101", "cursor=%%%"] {
        let resp = call(
            &app.client,
            Method::GET,
            &format!("/api/v1/auth/users?{bad}"),
            &admin.access_token,
            None,
        )
        .await;
        assert!(
            resp.status() == 422 || resp.status() == 400,
            "{bad}: {}",
            resp.status()
        );
    }

    // Promote one user; disable another, who is locked out at once.
    let path = format!("/api/v1/auth/users/{}", users[0].id);
    let resp = call(
        &app.client,
        Method::PATCH,
        &path,
        &admin.access_token,
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["roles"],
        json!(["admin", "user"])
    );
    let resp = call(
        &app.client,
        Method::PATCH,
        &path,
        &admin.access_token,
        Some(json!({"roles": ["root"]})),
    )
    .await;
    assert_problem(resp, 422, "validation_failed").await;

    let victim = &users[1];
    let path = format!("/api/v1/auth/users/{}", victim.id);
    let resp = call(
        &app.client,
        Method::PATCH,
        &path,
        &admin.access_token,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["disabled"], true);
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": victim.email, "password": PASSWORD}),
        )
        .await;
    assert_problem(resp, 403, "account_disabled").await;
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": victim.refresh_token}),
        )
        .await;
    assert_problem(resp, 401, "invalid_refresh_token").await;

    // No self-lockout, no unknown users.
    let path = format!("/api/v1/auth/users/{}", admin.id);
    let resp = call(
        &app.client,
        Method::PATCH,
        &path,
        &admin.access_token,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_problem(resp, 422, "validation_failed").await;
    let resp = call(
        &app.client,
        Method::PATCH,
        "/api/v1/auth/users/nope",
        &admin.access_token,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_problem(resp, 404, "not_found").await;
}

async fn token_form(
    client: &TestClient,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = client
        .request(Method::POST, "/api/v1/auth/token")
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn oauth_error(resp: reqwest::Response, status: u16, error: &str) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
}

#[actix_web::test]
async fn service_clients_get_tokens_with_client_credentials() {
    let (app, admin) = with_admin().await;
    let resp = call(
        &app.client,
        Method::POST,
        "/api/v1/auth/clients",
        &admin.access_token,
        Some(json!({"name": "indexer", "scopes": ["content:write", "search:read"]})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    let listed: Value = call(
        &app.client,
        Method::GET,
        "/api/v1/auth/clients",
        &admin.access_token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once only"
    );

    // Credentials in the body, all scopes.
    let resp = token_form(
        &app.client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "content:write search:read");
    let validator = JwtValidator::new(JwtSettings::new(jwks_url(&app))).unwrap();
    let claims = validator
        .verify(body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.sub, id);
    assert!(claims.has_scope("content:write") && claims.sid.is_none());
    assert_eq!(claims.roles, vec!["service".to_owned()]);

    // HTTP Basic, narrower scope.
    let resp = token_form(
        &app.client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "content:write"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["scope"],
        "content:write"
    );

    // RFC 6749 §5.2 errors.
    let wrong = token_form(
        &app.client,
        &[("grant_type", "client_credentials")],
        Some((&id, "pms_wrong")),
    )
    .await;
    assert!(wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    oauth_error(wrong, 401, "invalid_client").await;
    oauth_error(
        token_form(
            &app.client,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "ghost"),
                ("client_secret", "x"),
            ],
            None,
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    oauth_error(
        token_form(
            &app.client,
            &[
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    oauth_error(
        token_form(
            &app.client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "auth:admin"),
            ],
            Some((&id, &secret)),
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    oauth_error(
        token_form(
            &app.client,
            &[("client_id", &id), ("client_secret", &secret)],
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    oauth_error(
        token_form(
            &app.client,
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/token",
            &json!({"grant_type": "client_credentials"}),
        )
        .await;
    oauth_error(resp, 400, "invalid_request").await;

    // Bad client definitions, non-admins, revocation.
    let resp = call(
        &app.client,
        Method::POST,
        "/api/v1/auth/clients",
        &admin.access_token,
        Some(json!({"name": "x", "scopes": ["everything"]})),
    )
    .await;
    assert_problem(resp, 422, "validation_failed").await;
    let user = register(&app.client, &unique_email("u")).await;
    let resp = call(
        &app.client,
        Method::POST,
        "/api/v1/auth/clients",
        &user.access_token,
        Some(json!({"name": "x", "scopes": ["content:write"]})),
    )
    .await;
    assert_problem(resp, 403, "forbidden").await;
    let resp = call(
        &app.client,
        Method::DELETE,
        &format!("/api/v1/auth/clients/{id}"),
        &admin.access_token,
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    oauth_error(
        token_form(
            &app.client,
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    let resp = call(
        &app.client,
        Method::DELETE,
        &format!("/api/v1/auth/clients/{id}"),
        &admin.access_token,
        None,
    )
    .await;
    assert_problem(resp, 404, "not_found").await;
}

#[actix_web::test]
async fn tokens_that_are_not_access_tokens_are_refused() {
    let app = spawn_auth(&[]).await;
    let user = register(&app.client, &unique_email("t")).await;
    // A refresh token presented as a bearer token.
    let resp = call(
        &app.client,
        Method::GET,
        "/api/v1/auth/me",
        &user.refresh_token,
        None,
    )
    .await;
    assert_problem(resp, 401, "invalid_token").await;
    // A token from another auth service (other key) is refused here.
    let other = spawn_auth(&[(
        "SIGNING_KEY_FILE",
        peermesh_test_support::keys::other_rsa_key()
            .path
            .display()
            .to_string(),
    )])
    .await;
    let foreign = register(&other.client, &unique_email("f")).await;
    let resp = call(
        &app.client,
        Method::GET,
        "/api/v1/auth/me",
        &foreign.access_token,
        None,
    )
    .await;
    assert_problem(resp, 401, "invalid_token").await;
}

/// Whoever registers the bootstrap address first has not shown they own it: the role
/// waits until the address is verified, restart or not.
#[actix_web::test]
async fn the_bootstrap_address_becomes_admin_only_once_verified() {
    let first = spawn_auth(&[]).await;
    let email = unique_email("boot");
    register(&first.client, &email).await;
    let db = first.stop_keep_db().await;
    let app = spawn_auth_on(db, &[("BOOTSTRAP_ADMIN_EMAIL", email.clone())]).await;
    let early = login(&app.client, &email, PASSWORD).await;
    let me = get_json(&app.client, "/api/v1/auth/me", &early.access_token).await;
    assert_eq!(me["roles"], json!(["user"]));
    let resp = call(
        &app.client,
        Method::GET,
        "/api/v1/auth/users",
        &early.access_token,
        None,
    )
    .await;
    assert_problem(resp, 403, "forbidden").await;

    // Proving the mailbox makes the account the administrator.
    verify_email(&app.client, &email).await;
    let admin = login(&app.client, &email, PASSWORD).await;
    let me = get_json(&app.client, "/api/v1/auth/me", &admin.access_token).await;
    assert_eq!(me["roles"], json!(["admin", "user"]));
    get_json(&app.client, "/api/v1/auth/users", &admin.access_token).await;
}

/// With a password file the operator defines the admin account: an unverified
/// sign-up holding the address is taken over (its password, sessions and identities
/// gone), and a later start does not reset the password again.
#[actix_web::test]
async fn a_bootstrap_password_file_takes_the_address_from_an_unverified_sign_up() {
    let first = spawn_auth(&[]).await;
    let email = unique_email("boot");
    let squatter = register(&first.client, &email).await;
    let db = first.stop_keep_db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-password");
    std::fs::write(&file, "the operator's own password\n").unwrap();
    let settings = [
        ("BOOTSTRAP_ADMIN_EMAIL", email.clone()),
        ("BOOTSTRAP_ADMIN_PASSWORD_FILE", file.display().to_string()),
    ];
    let app = spawn_auth_on(db, &settings).await;

    let resp = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_problem(resp, 401, "invalid_credentials").await;
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": squatter.refresh_token}),
        )
        .await;
    assert_problem(resp, 401, "invalid_refresh_token").await;
    let admin = login(&app.client, &email, "the operator's own password").await;
    let me = get_json(&app.client, "/api/v1/auth/me", &admin.access_token).await;
    assert_eq!(me["roles"], json!(["admin", "user"]));
    assert_eq!(me["email_verified"], true);

    // The admin changes the password; the file does not undo that at the next start.
    let resp = call(
        &app.client,
        Method::POST,
        "/api/v1/auth/me/password",
        &admin.access_token,
        Some(json!({
            "current_password": "the operator's own password",
            "new_password": "a newer password",
        })),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let db = app.stop_keep_db().await;
    let again = spawn_auth_on(db, &settings).await;
    login(&again.client, &email, "a newer password").await;
}

//! Register and log in: validation, tokens, enumeration, throttling.

use peermesh_common::jwt::{JwtSettings, JwtValidator};
use peermesh_test_stack::spawn::{jwks_url, spawn_auth};
use peermesh_test_support::auth::{get_json, login, register, unique_email, PASSWORD};
use peermesh_test_support::client::assert_problem;
use serde_json::{json, Value};

#[actix_web::test]
async fn register_signs_in_with_a_verifiable_access_token() {
    let app = spawn_auth(&[]).await;
    let email = unique_email("ada");
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": format!("  {}  ", email.to_uppercase()), "password": PASSWORD, "display_name": "Ada"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["user"]["email"], email,
        "emails are stored trimmed and lower-case"
    );
    assert_eq!(body["user"]["display_name"], "Ada");
    assert_eq!(body["user"]["roles"], json!(["user"]));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    assert!(body["user"].get("password_hash").is_none());

    let validator = JwtValidator::new(JwtSettings::new(jwks_url(&app))).unwrap();
    let claims = validator
        .verify(body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.sub, body["user"]["id"].as_str().unwrap());
    assert_eq!(claims.typ, "access");
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.roles, vec!["user".to_owned()]);
    assert!(claims.sid.is_some());
    assert!(
        uuid::Uuid::parse_str(&claims.sub)
            .unwrap()
            .get_version_num()
            == 7
    );

    let me = get_json(
        &app.client,
        "/api/v1/auth/me",
        body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me["email"], email);
    assert_eq!(me["identities"], json!([]));
}

#[actix_web::test]
async fn register_rejects_bad_input_and_taken_emails() {
    let app = spawn_auth(&[]).await;
    let post = |body: Value| {
        let client = app.client.clone();
        async move { client.post_json("/api/v1/auth/register", &body).await }
    };
    let body = assert_problem(
        post(json!({"email": "nope", "password": PASSWORD})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "email");
    let body = assert_problem(
        post(json!({"email": unique_email("a"), "password": "short"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "password");
    let long = "x".repeat(129);
    assert_problem(
        post(json!({"email": unique_email("a"), "password": long})).await,
        422,
        "validation_failed",
    )
    .await;
    // Mass assignment: a client can never choose its own roles.
    let body = assert_problem(
        post(json!({"email": unique_email("a"), "password": PASSWORD, "roles": ["admin"]})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "roles");

    let email = unique_email("taken");
    register(&app.client, &email).await;
    assert_problem(
        post(json!({"email": email.to_uppercase(), "password": PASSWORD})).await,
        409,
        "email_taken",
    )
    .await;
}

#[actix_web::test]
async fn login_answers_alike_for_unknown_emails_and_wrong_passwords() {
    let app = spawn_auth(&[]).await;
    let email = unique_email("bob");
    register(&app.client, &email).await;
    login(&app.client, &email.to_uppercase(), PASSWORD).await;

    let wrong = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": "wrong password"}),
        )
        .await;
    let unknown = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": unique_email("ghost"), "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let mut wrong = assert_problem(wrong, 401, "invalid_credentials").await;
    let mut unknown = assert_problem(unknown, 401, "invalid_credentials").await;
    wrong.as_object_mut().unwrap().remove("request_id");
    unknown.as_object_mut().unwrap().remove("request_id");
    assert_eq!(wrong, unknown);
}

#[actix_web::test]
async fn repeated_failures_lock_the_account_and_success_resets_the_count() {
    let app = spawn_auth(&[
        ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3".into()),
        ("LOGIN_LOCKOUT_SECS", "60".into()),
    ])
    .await;
    let email = unique_email("eve");
    register(&app.client, &email).await;
    let attempt = |password: &'static str| {
        let (client, email) = (app.client.clone(), email.clone());
        async move {
            client
                .post_json(
                    "/api/v1/auth/login",
                    &json!({"email": email, "password": password}),
                )
                .await
        }
    };
    // Two failures, a success (resets), two more failures: not locked.
    for _ in 0..2 {
        assert_eq!(attempt("bad password").await.status(), 401);
    }
    assert_eq!(attempt(PASSWORD).await.status(), 200);
    for _ in 0..2 {
        assert_eq!(attempt("bad password").await.status(), 401);
    }
    assert_eq!(attempt(PASSWORD).await.status(), 200);
    // Three in a row lock it, even against the right password.
    for _ in 0..3 {
        assert_eq!(attempt("bad password").await.status(), 401);
    }
    let locked = attempt(PASSWORD).await;
    let retry: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_problem(locked, 429, "rate_limited").await;
}

#[actix_web::test]
async fn one_address_failing_on_many_accounts_is_throttled() {
    let app = spawn_auth(&[("LOGIN_MAX_FAILURES_PER_IP", "4".into())]).await;
    for _ in 0..4 {
        let resp = app
            .client
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": unique_email("x"), "password": "guess guess"}),
            )
            .await;
        assert_eq!(resp.status(), 401);
    }
    let email = unique_email("victim");
    register(&app.client, &email).await;
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_problem(resp, 429, "rate_limited").await;
}

#[actix_web::test]
async fn x_real_ip_is_believed_only_from_trusted_proxies() {
    // The test client connects from 127.0.0.1, trusted by default: X-Real-IP is the
    // address, so failures "from" one address do not lock out another.
    let app = spawn_auth(&[("LOGIN_MAX_FAILURES_PER_IP", "2".into())]).await;
    let email = unique_email("ip");
    register(&app.client, &email).await;
    let try_from = |ip: &'static str, password: &'static str| {
        let (client, email) = (app.client.clone(), email.clone());
        async move {
            client
                .request(reqwest::Method::POST, "/api/v1/auth/login")
                .header("X-Real-IP", ip)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(try_from("203.0.113.7", "nope nope").await, 401);
    assert_eq!(try_from("203.0.113.7", "nope nope").await, 401);
    assert_eq!(try_from("203.0.113.7", PASSWORD).await, 429);
    assert_eq!(try_from("198.51.100.9", PASSWORD).await, 200);

    // Untrusted peers cannot pick their address: the header is ignored.
    let strict = spawn_auth(&[
        ("LOGIN_MAX_FAILURES_PER_IP", "2".into()),
        ("TRUSTED_PROXIES", "10.9.9.9".into()),
    ])
    .await;
    let email = unique_email("ip2");
    register(&strict.client, &email).await;
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let status = strict
            .client
            .request(reqwest::Method::POST, "/api/v1/auth/login")
            .header("X-Real-IP", ip)
            .json(&json!({"email": email, "password": "nope nope"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let status = strict
        .client
        .request(reqwest::Method::POST, "/api/v1/auth/login")
        .header("X-Real-IP", "198.51.100.1")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        status, 429,
        "rotating X-Real-IP must not escape the per-address limit"
    );
}

/// A login from `ip` (the gateway's X-Real-IP; the test client is a trusted proxy).
async fn login_from(
    client: &peermesh_test_support::TestClient,
    ip: &str,
    email: &str,
    password: &str,
) -> u16 {
    client
        .request(reqwest::Method::POST, "/api/v1/auth/login")
        .header("X-Real-IP", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The check and the count are one step: of 20 wrong guesses and the right password
/// sent at once, at most the limit (5) get their password checked (401, or 200 for
/// the right one); the rest are refused before any check.
#[actix_web::test]
async fn parallel_guesses_get_at_most_the_limit_of_checks() {
    let app = spawn_auth(&[("LOGIN_LOCKOUT_SECS", "60".into())]).await;
    let email = unique_email("burst");
    register(&app.client, &email).await;
    let attempts = (0..21).map(|n| {
        let (client, email) = (app.client.clone(), email.clone());
        let password = if n == 10 { PASSWORD } else { "a wrong guess" };
        async move { login_from(&client, "203.0.113.50", &email, password).await }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| matches!(s, 401 | 200)).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(checked <= 5, "{statuses:?}");
    assert_eq!(checked + refused, 21, "{statuses:?}");
}

/// Failing an account's password from one address locks that address out of that
/// account only: the owner, elsewhere, still signs in. Guesses spread over many
/// addresses hit an account-wide count, which locks out every address that never
/// signed in to the account, but not the owner's.
#[actix_web::test]
async fn lockouts_do_not_lock_the_owner_out() {
    let app = spawn_auth(&[
        ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3".into()),
        ("LOGIN_MAX_FAILURES_ACCOUNT_WIDE", "6".into()),
        ("LOGIN_LOCKOUT_SECS", "60".into()),
    ])
    .await;
    let email = unique_email("target");
    register(&app.client, &email).await;
    let home = "198.51.100.20";
    assert_eq!(login_from(&app.client, home, &email, PASSWORD).await, 200);

    for _ in 0..3 {
        assert_eq!(
            login_from(&app.client, "203.0.113.1", &email, "guess").await,
            401
        );
    }
    assert_eq!(
        login_from(&app.client, "203.0.113.1", &email, PASSWORD).await,
        429
    );
    assert_eq!(login_from(&app.client, home, &email, PASSWORD).await, 200);

    // Three more addresses, one guess each: six failures on the account in all.
    for ip in ["203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        assert_eq!(login_from(&app.client, ip, &email, "guess").await, 401);
    }
    assert_eq!(
        login_from(&app.client, "203.0.113.9", &email, PASSWORD).await,
        429
    );
    assert_eq!(login_from(&app.client, home, &email, PASSWORD).await, 200);
}

/// Someone holding a stolen access token cannot guess the current password at
/// leisure: wrong guesses at `POST /me/password` are limited like logins.
#[actix_web::test]
async fn current_password_guesses_are_throttled() {
    let app = spawn_auth(&[
        ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3".into()),
        ("LOGIN_LOCKOUT_SECS", "60".into()),
    ])
    .await;
    let user = register(&app.client, &unique_email("pw")).await;
    let change = |current: &'static str| {
        let (client, token) = (app.client.clone(), user.access_token.clone());
        async move {
            client
                .request(reqwest::Method::POST, "/api/v1/auth/me/password")
                .bearer_auth(token)
                .json(&json!({"current_password": current, "new_password": "a brand new one"}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_problem(change("not it at all").await, 403, "wrong_current_password").await;
    }
    let locked = change(PASSWORD).await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_problem(locked, 429, "rate_limited").await;
}

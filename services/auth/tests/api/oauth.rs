//! Sign-in with Google and GitHub, driven over HTTP like a browser against local
//! providers that speak the real protocols (crates/test-support/src/providers.rs).

use peermesh_test_stack::spawn::auth_with_admin;
use peermesh_test_stack::spawn::Spawned;
use peermesh_test_support::auth::{
    get_json, login, register, unique_email, verified_user, verify_email, Pkce, TestUser,
    DEFAULT_APP_URL, PASSWORD,
};
use peermesh_test_support::client::{assert_problem, redirect_location};
use peermesh_test_support::free_port;
use peermesh_test_support::providers::{
    FakeProvider, ProviderUser, Tamper, CLIENT_ID, CLIENT_SECRET,
};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};

const APP: &str = "http://app.example.test/after-sign-in";

struct Env {
    auth: Spawned,
    admin: TestUser,
    google: FakeProvider,
    github: FakeProvider,
    /// A browser that does not follow redirects (each hop is checked).
    browser: reqwest::Client,
    /// The PKCE pair this browser's frontend starts its sign-ins with.
    pkce: Pkce,
}

async fn env_with(extra: &[(&'static str, String)]) -> Env {
    let google = FakeProvider::oidc();
    let github = FakeProvider::github();
    let port = free_port();
    let mut settings = vec![
        ("PORT", port.to_string()),
        (
            "OAUTH_CALLBACK_BASE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "OAUTH_REDIRECT_ALLOWLIST",
            format!("{APP}, http://other.example.test/cb"),
        ),
        ("GOOGLE_CLIENT_ID", CLIENT_ID.into()),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("GOOGLE_ISSUER_URL", google.base.clone()),
        ("GITHUB_CLIENT_ID", CLIENT_ID.into()),
        ("GITHUB_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("GITHUB_BASE_URL", github.base.clone()),
        ("GITHUB_API_URL", github.base.clone()),
    ];
    settings.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    settings.extend(extra.iter().cloned());
    let (auth, admin) = auth_with_admin(&settings).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Env {
        auth,
        admin,
        google,
        github,
        browser,
        pkce: Pkce::new(),
    }
}

async fn env() -> Env {
    env_with(&[]).await
}

fn param(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// One browser's trip: the authorize answer, then the provider, then the callback.
struct Trip {
    authorize: reqwest::Response,
    cookie: String,
    callback: url::Url,
}

impl Env {
    /// Authorize (optionally as a signed-in user linking) and follow the provider back
    /// to our callback URL, without calling it yet.
    async fn trip(&self, provider: &str, link_as: Option<&TestUser>) -> Trip {
        let mut url = self.auth.client.url(&format!(
            "/api/v1/auth/oauth/{provider}/authorize?redirect_uri={}&{}",
            urlencode(APP),
            self.pkce.query()
        ));
        if link_as.is_some() {
            url.push_str("&link=true");
        }
        let mut req = self.browser.get(url);
        if let Some(user) = link_as {
            req = req.bearer_auth(&user.access_token);
        }
        let authorize = req.send().await.unwrap();
        let to_provider = redirect_location(&authorize);
        let cookie = authorize.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let back = self.browser.get(to_provider).send().await.unwrap();
        let callback = redirect_location(&back);
        Trip {
            authorize,
            cookie,
            callback,
        }
    }

    /// Calls the callback as the browser that started the trip; the client URL it ends at.
    async fn finish(&self, trip: &Trip) -> url::Url {
        let resp = self
            .browser
            .get(trip.callback.clone())
            .header(COOKIE, &trip.cookie)
            .send()
            .await
            .unwrap();
        redirect_location(&resp)
    }

    async fn sign_in(&self, provider: &str, link_as: Option<&TestUser>) -> url::Url {
        let trip = self.trip(provider, link_as).await;
        self.finish(&trip).await
    }

    async fn exchange(&self, code: &str) -> reqwest::Response {
        self.exchange_with(self.pkce.exchange_body(code)).await
    }

    async fn exchange_with(&self, body: Value) -> reqwest::Response {
        self.auth
            .client
            .post_json("/api/v1/auth/oauth/exchange", &body)
            .await
    }

    /// A full sign-in that must succeed: the token pair.
    async fn tokens(&self, provider: &str) -> Value {
        let landed = self.sign_in(provider, None).await;
        let code = param(&landed, "code").unwrap_or_else(|| panic!("no code in {landed}"));
        let resp = self.exchange(&code).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn me(&self, access_token: &str) -> Value {
        get_json(&self.auth.client, "/api/v1/auth/me", access_token).await
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn error_of(landed: &url::Url) -> String {
    assert!(
        landed.as_str().starts_with(APP) || landed.as_str().starts_with("http://app.example.test"),
        "sent to {landed}"
    );
    assert!(param(landed, "code").is_none(), "{landed}");
    param(landed, "error").unwrap_or_else(|| panic!("no error in {landed}"))
}

#[actix_web::test]
async fn google_sign_in_creates_an_account_and_hands_over_a_one_time_code() {
    let env = env().await;
    let email = unique_email("g");
    env.google
        .sign_in_as(Some(ProviderUser::new("g-100", &email, true)));
    let trip = env.trip("google", None).await;

    // What went to the provider: state, nonce and a PKCE S256 challenge, our callback.
    let sent = env.google.last_request();
    assert_eq!(sent["response_type"], "code");
    assert!(sent["scope"].split(' ').any(|s| s == "openid"));
    assert_eq!(sent["code_challenge_method"], "S256");
    assert!(sent["code_challenge"].len() >= 43);
    assert!(sent["nonce"].len() >= 16 && sent["state"].len() >= 32);
    assert_eq!(
        sent["redirect_uri"],
        env.auth.client.url("/api/v1/auth/oauth/google/callback")
    );
    // The state is bound to this browser by a cookie scripts cannot read.
    let set_cookie = trip.authorize.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/api/v1/auth/oauth",
        "Max-Age=600",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    // Plain HTTP on localhost (development): not `Secure`, or the browser would drop it.
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");

    let landed = env.finish(&trip).await;
    assert!(landed.as_str().starts_with(APP), "{landed}");
    let code = param(&landed, "code").unwrap();
    assert!(
        !landed.as_str().contains("eyJ"),
        "a token in the URL: {landed}"
    );

    // Only with the verifier of the challenge this browser started with: a code
    // taken from the redirect (login CSRF, a leaked URL) is worth nothing alone.
    let thief = Pkce::new();
    assert_problem(
        env.exchange_with(thief.exchange_body(&code)).await,
        400,
        "invalid_code",
    )
    .await;
    let no_verifier = env.exchange_with(json!({"code": code})).await;
    assert_problem(no_verifier, 422, "validation_failed").await;
    let resp = env.exchange(&code).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.unwrap();
    let me = env.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["email"], email);
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["identities"], json!(["google"]));

    // The code works once.
    assert_problem(env.exchange(&code).await, 400, "invalid_code").await;
    assert_problem(env.exchange("pmx_made-up").await, 400, "invalid_code").await;

    // Signing in again finds the same account by (issuer, subject).
    let again = env.tokens("google").await;
    assert_eq!(again["user"]["id"], me["id"]);

    let counted = peermesh_test_support::metrics::scrape(&env.auth.client).await;
    assert_eq!(
        counted.value(
            "peermesh_auth_oauth_callbacks_total",
            &[("provider", "google"), ("outcome", "signed_in")]
        ),
        Some(2.0),
        "{}",
        counted.text
    );
}

#[actix_web::test]
async fn github_sign_in_uses_the_verified_primary_email() {
    let env = env().await;
    let email = unique_email("gh");
    env.github
        .sign_in_as(Some(ProviderUser::new("4242", &email, true)));
    let tokens = env.tokens("github").await;
    let me = env.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["email"], email);
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["identities"], json!(["github"]));
    let sent = env.github.last_request();
    assert_eq!(sent["code_challenge_method"], "S256");
    assert!(sent["scope"].contains("user:email"));
}

#[actix_web::test]
async fn redirect_uris_outside_the_allow_list_and_unknown_providers_are_refused() {
    let env = env_with(&[
        ("GITHUB_CLIENT_ID", String::new()),
        ("GITHUB_CLIENT_SECRET", String::new()),
    ])
    .await;
    let ask = |path: String| env.browser.get(env.auth.client.url(&path)).send();
    for bad in [
        "http://evil.example/cb",
        "http://app.example.test/after-sign-in/extra",
        "",
    ] {
        let resp = ask(format!(
            "/api/v1/auth/oauth/google/authorize?redirect_uri={}",
            urlencode(bad)
        ))
        .await
        .unwrap();
        let problem = assert_problem(resp, 400, "invalid_redirect_uri").await;
        assert_eq!(problem["errors"][0]["field"], "redirect_uri");
    }
    // A sign-in starts only with the client's PKCE challenge (S256, well formed).
    for (query, field) in [
        (String::new(), "code_challenge"),
        ("&code_challenge=short".to_owned(), "code_challenge"),
        (
            format!(
                "&code_challenge={}&code_challenge_method=plain",
                Pkce::new().challenge
            ),
            "code_challenge_method",
        ),
    ] {
        let resp = ask(format!(
            "/api/v1/auth/oauth/google/authorize?redirect_uri={}{query}",
            urlencode(APP)
        ))
        .await
        .unwrap();
        let problem = assert_problem(resp, 400, "invalid_code_challenge").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    // Not configured (GitHub here) and unknown providers do not exist.
    for provider in ["github", "facebook"] {
        let resp = ask(format!(
            "/api/v1/auth/oauth/{provider}/authorize?redirect_uri={}&{}",
            urlencode(APP),
            Pkce::new().query()
        ))
        .await
        .unwrap();
        assert_problem(resp, 404, "not_found").await;
    }
}

#[actix_web::test]
async fn forged_replayed_foreign_and_expired_states_end_in_an_error_redirect() {
    let env = env_with(&[("OAUTH_STATE_TTL_SECS", "1".into())]).await;
    env.google
        .sign_in_as(Some(ProviderUser::new("g-200", &unique_email("st"), true)));

    // A state we never issued.
    let trip = env.trip("google", None).await;
    let mut forged = trip.callback.clone();
    let code = param(&forged, "code").unwrap();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "pmo_forged");
    let resp = env
        .browser
        .get(forged)
        .header(COOKIE, &trip.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(&redirect_location(&resp)), "invalid_state");

    // The right state from another browser (no cookie): login CSRF.
    let resp = env.browser.get(trip.callback.clone()).send().await.unwrap();
    assert_eq!(error_of(&redirect_location(&resp)), "invalid_state");
    // …and the state is spent: even its own browser cannot use it now.
    assert_eq!(error_of(&env.finish(&trip).await), "invalid_state");

    // Replayed after a success.
    let trip = env.trip("google", None).await;
    assert!(param(&env.finish(&trip).await, "code").is_some());
    assert_eq!(error_of(&env.finish(&trip).await), "invalid_state");

    // Expired (the test's lifetime is 1 s).
    let trip = env.trip("google", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(error_of(&env.finish(&trip).await), "state_expired");

    // No state at all.
    let resp = env
        .browser
        .get(
            env.auth
                .client
                .url("/api/v1/auth/oauth/google/callback?code=x"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(&redirect_location(&resp)), "invalid_state");
}

#[actix_web::test]
async fn bad_id_tokens_and_provider_failures_sign_nobody_in() {
    let env = env().await;
    let email = unique_email("bad");
    env.google
        .sign_in_as(Some(ProviderUser::new("g-300", &email, true)));
    for tamper in [
        Tamper::WrongNonce,
        Tamper::OtherKey,
        Tamper::Expired,
        Tamper::WrongAudience,
        Tamper::TokenEndpointDown,
    ] {
        env.google.tamper(tamper);
        let landed = env.sign_in("google", None).await;
        assert_eq!(error_of(&landed), "provider_error", "{tamper:?}");
    }
    env.github.tamper(Tamper::TokenEndpointDown);
    env.github
        .sign_in_as(Some(ProviderUser::new("77", &email, true)));
    assert_eq!(
        error_of(&env.sign_in("github", None).await),
        "provider_error"
    );

    // The person says no at the provider.
    env.google.tamper(Tamper::None);
    env.google.sign_in_as(None);
    assert_eq!(
        error_of(&env.sign_in("google", None).await),
        "access_denied"
    );

    // None of that created an account: the address is still free.
    let resp = env
        .auth
        .client
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": "a fine password"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let counted = peermesh_test_support::metrics::scrape(&env.auth.client).await;
    assert!(
        counted
            .value(
                "peermesh_auth_oauth_callbacks_total",
                &[("provider", "google"), ("outcome", "provider_error")]
            )
            .is_some_and(|n| n >= 1.0),
        "{}",
        counted.text
    );
}

#[actix_web::test]
async fn verified_provider_emails_link_only_to_verified_accounts() {
    let env = env().await;

    // A password account whose owner never verified the address: a provider that
    // vouches for the same address may not take it over.
    let squatted = unique_email("squat");
    register(&env.auth.client, &squatted).await;
    env.google
        .sign_in_as(Some(ProviderUser::new("g-400", &squatted, true)));
    assert_eq!(
        error_of(&env.sign_in("google", None).await),
        "account_exists_sign_in_to_link"
    );

    // An address the provider does not vouch for never links to an existing account…
    env.github
        .sign_in_as(Some(ProviderUser::new("500", &squatted, false)));
    assert_eq!(
        error_of(&env.sign_in("github", None).await),
        "email_not_verified"
    );

    // …while a verified account (verified here by an earlier Google sign-in) gains a
    // second provider when that provider vouches for the same address.
    let shared = unique_email("shared");
    env.google
        .sign_in_as(Some(ProviderUser::new("g-401", &shared, true)));
    let first = env.tokens("google").await;
    env.github
        .sign_in_as(Some(ProviderUser::new("501", &shared, true)));
    let second = env.tokens("github").await;
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    let me = env.me(second["access_token"].as_str().unwrap()).await;
    assert_eq!(me["identities"], json!(["github", "google"]));
}

#[actix_web::test]
async fn signed_in_users_link_and_unlink_providers() {
    let env = env().await;
    let email = unique_email("link");
    let user = register(&env.auth.client, &email).await;

    // Linking needs the user's token.
    let resp = env
        .browser
        .get(env.auth.client.url(&format!(
            "/api/v1/auth/oauth/github/authorize?link=true&redirect_uri={}&{}",
            urlencode(APP),
            env.pkce.query()
        )))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "unauthorized").await;

    // Linking waits for the account's address to be verified: whoever is signed in
    // to an unverified account has not proved the mailbox (it may be a squatter
    // preparing a way back in after the real owner recovers the account).
    env.github.sign_in_as(Some(ProviderUser::new(
        "600",
        &unique_email("other"),
        false,
    )));
    assert_eq!(
        error_of(&env.sign_in("github", Some(&user)).await),
        "verify_email_to_link"
    );
    assert_eq!(env.me(&user.access_token).await["identities"], json!([]));

    // Once verified, any GitHub address may be linked by the signed-in owner.
    verify_email(&env.auth.client, &email).await;
    let landed = env.sign_in("github", Some(&user)).await;
    assert!(param(&landed, "code").is_some(), "{landed}");
    let me = env.me(&user.access_token).await;
    assert_eq!(me["identities"], json!(["github"]));

    // That GitHub account now signs in to this user.
    let tokens = env.tokens("github").await;
    assert_eq!(tokens["user"]["id"], me["id"]);

    // It cannot be linked to someone else as well.
    let someone_email = unique_email("else");
    let someone = verified_user(&env.auth.client, &someone_email).await;
    assert_eq!(
        error_of(&env.sign_in("github", Some(&someone)).await),
        "identity_linked_to_another_account"
    );

    // Unlinking: fine while the password remains…
    let unlink = |token: String, provider: &'static str| {
        let client = &env.auth.client;
        async move {
            client
                .request(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/auth/me/identities/{provider}"),
                )
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        unlink(user.access_token.clone(), "github").await.status(),
        204
    );
    assert_problem(
        unlink(user.access_token.clone(), "github").await,
        404,
        "not_found",
    )
    .await;

    // …but never the last way in of an account without a password.
    env.google.sign_in_as(Some(ProviderUser::new(
        "g-700",
        &unique_email("only"),
        true,
    )));
    let only = env.tokens("google").await;
    let token = only["access_token"].as_str().unwrap().to_owned();
    assert_problem(
        unlink(token.clone(), "google").await,
        409,
        "last_sign_in_method",
    )
    .await;
    env.github.sign_in_as(Some(ProviderUser::new(
        "701",
        &unique_email("second"),
        true,
    )));
    let linker = TestUser {
        id: only["user"]["id"].as_str().unwrap().to_owned(),
        email: String::new(),
        access_token: token.clone(),
        refresh_token: String::new(),
    };
    assert!(param(&env.sign_in("github", Some(&linker)).await, "code").is_some());
    assert_eq!(unlink(token.clone(), "google").await.status(), 204);
    assert_eq!(env.me(&token).await["identities"], json!(["github"]));
}

#[actix_web::test]
async fn an_unreachable_provider_is_a_503_at_the_start() {
    let env = env().await;
    env.google.stop().await;
    let resp = env
        .browser
        .get(env.auth.client.url(&format!(
            "/api/v1/auth/oauth/google/authorize?redirect_uri={}&{}",
            urlencode(APP),
            env.pkce.query()
        )))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 503, "provider_unavailable").await;
}

#[actix_web::test]
async fn a_disabled_account_cannot_sign_in_with_a_provider() {
    let env = env().await;
    env.google
        .sign_in_as(Some(ProviderUser::new("g-800", &unique_email("off"), true)));
    let tokens = env.tokens("google").await;
    let id = tokens["user"]["id"].as_str().unwrap().to_owned();
    // A code handed out before the account is disabled…
    let pending = param(&env.sign_in("google", None).await, "code").unwrap();

    let resp = env
        .auth
        .client
        .request(reqwest::Method::PATCH, &format!("/api/v1/auth/users/{id}"))
        .bearer_auth(&env.admin.access_token)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    assert_eq!(
        error_of(&env.sign_in("google", None).await),
        "account_disabled"
    );
    // …buys nothing afterwards.
    assert_problem(env.exchange(&pending).await, 400, "invalid_code").await;
}

#[actix_web::test]
async fn unverified_provider_addresses_never_make_or_join_accounts() {
    let env = env().await;
    let email = unique_email("unvouched");
    env.github
        .sign_in_as(Some(ProviderUser::new("900", &email, false)));
    assert_eq!(
        error_of(&env.sign_in("github", None).await),
        "email_not_verified"
    );
    // No account holds the address: its owner can still sign up with it.
    register(&env.auth.client, &email).await;
}

/// An identity linked while the account's address was unverified (as earlier
/// releases allowed) is exactly what a squatter leaves behind; the password reset
/// that proves the mailbox removes it, and that provider account no longer signs in.
#[actix_web::test]
async fn a_password_reset_drops_identities_linked_before_the_mailbox_was_proved() {
    use diesel::RunQueryDsl;
    let env = env().await;
    let email = unique_email("prelinked");
    let user = register(&env.auth.client, &email).await;
    let db = peermesh_db::Db::connect(env.auth.db.url(), 1, &peermesh_auth::MIGRATIONS).unwrap();
    let (user_id, squatter) = (user.id.clone(), "31337".to_owned());
    db.write(move |conn| {
        diesel::sql_query(
            "INSERT INTO identities \
                 (id, user_id, provider, subject, email, email_verified, created_at, linked_unverified) \
             VALUES ($1, $2, 'github', $3, NULL, FALSE, CURRENT_TIMESTAMP, TRUE)",
        )
        .bind::<diesel::sql_types::Text, _>(uuid::Uuid::now_v7().to_string())
        .bind::<diesel::sql_types::Text, _>(user_id)
        .bind::<diesel::sql_types::Text, _>(squatter)
        .execute(conn)
        .map_err(Into::into)
    })
    .await
    .unwrap();
    assert_eq!(
        env.me(&user.access_token).await["identities"],
        json!(["github"])
    );

    let forgot = env
        .auth
        .client
        .post_json("/api/v1/auth/password/forgot", &json!({ "email": email }))
        .await;
    assert_eq!(forgot.status(), 202);
    let outbox = peermesh_test_support::mail::test_outbox();
    let mail = peermesh_test_support::mail::await_outbox_mail(&outbox, &email, 2).await;
    let token = mail.token(DEFAULT_APP_URL, "/reset-password");
    let reset = env
        .auth
        .client
        .post_json(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(reset.status(), 204);

    let owner = login(&env.auth.client, &email, PASSWORD).await;
    let me = env.me(&owner.access_token).await;
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["identities"], json!([]));
    env.github.sign_in_as(Some(ProviderUser::new(
        "31337",
        &unique_email("squatter"),
        false,
    )));
    assert_eq!(
        error_of(&env.sign_in("github", None).await),
        "email_not_verified"
    );
}

//! Sign-in with a provider through the real gateway: the browser only ever talks to
//! nginx and the provider; the state cookie, the callback and the one-time code all
//! travel through the gateway, and nothing secret lands in its access log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use peermesh_test_support::auth::Pkce;
use peermesh_test_support::client::redirect_location;
use peermesh_test_support::providers::{FakeProvider, ProviderUser};
use peermesh_test_support::spawn::google_sign_in_behind_gateway;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};

const APP: &str = "http://app.example.test/signed-in";

#[actix_web::test]
async fn google_sign_in_through_the_gateway() {
    let google = FakeProvider::oidc();
    let (_auth, gateway, public) = google_sign_in_behind_gateway(&google, APP).await;
    let email = format!("gw-{}@example.com", uuid::Uuid::new_v4().simple());
    google.sign_in_as(Some(ProviderUser::new("gw-1", &email, true)));
    // What the frontend keeps for the exchange (the code alone is not enough).
    let pkce = Pkce::new();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let start = browser
        .get(format!(
            "{public}/api/v1/auth/oauth/google/authorize?redirect_uri={}&{}",
            url::form_urlencoded::byte_serialize(APP.as_bytes()).collect::<String>(),
            pkce.query()
        ))
        .send()
        .await
        .unwrap();
    let cookie = start.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let at_provider = browser.get(redirect_location(&start)).send().await.unwrap();
    let callback = redirect_location(&at_provider);
    assert!(callback.as_str().starts_with(&public), "{callback}");
    let landed = redirect_location(
        &browser
            .get(callback.clone())
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap(),
    );
    assert!(landed.as_str().starts_with(APP), "{landed}");
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    let tokens: Value = browser
        .post(format!("{public}/api/v1/auth/oauth/exchange"))
        .json(&pkce.exchange_body(&code))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = browser
        .get(format!("{public}/api/v1/auth/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email);
    assert_eq!(me["identities"], json!(["google"]));

    // The gateway logged the hops by path only: no code, state or token.
    let log = gateway.access_log();
    assert!(log
        .iter()
        .any(|l| l["path"] == "/api/v1/auth/oauth/google/callback"));
    let text = serde_json::to_string(&log).unwrap();
    let state = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    for secret in [
        code.as_str(),
        state.as_str(),
        tokens["access_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "a secret in the access log");
    }
}

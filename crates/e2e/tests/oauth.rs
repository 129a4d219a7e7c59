//! Sign-in with a provider through the real gateway: the browser only ever talks to
//! nginx and the provider; the state cookie, the callback and the one-time code all
//! travel through the gateway, and nothing secret lands in its access log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use peermesh_test_stack::spawn::google_sign_in_behind_gateway;
use peermesh_test_support::providers::{browser_sign_in, FakeProvider, ProviderUser};
use serde_json::{json, Value};

const APP: &str = "http://app.example.test/signed-in";

#[actix_web::test]
async fn google_sign_in_through_the_gateway() {
    let google = FakeProvider::oidc();
    let (_auth, gateway, public) = google_sign_in_behind_gateway(&google, APP).await;
    let email = format!("gw-{}@example.com", uuid::Uuid::new_v4().simple());
    google.sign_in_as(Some(ProviderUser::new("gw-1", &email, true)));
    let signed_in = browser_sign_in(&public, "google", APP).await;
    let callback = &signed_in.callback;
    assert!(callback.as_str().starts_with(&public), "{callback}");
    let (code, tokens) = (&signed_in.code, &signed_in.tokens);
    let browser = reqwest::Client::new();
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

//! Content behind real access tokens from a real auth service.

use peermesh_test_support::auth::{register, unique_email};
use peermesh_test_support::client::assert_problem;
use peermesh_test_support::spawn::{jwks_url, spawn_auth, Verifier};
use reqwest::Method;
use serde_json::{json, Value};

#[actix_web::test]
async fn a_real_access_token_is_accepted_and_an_expired_one_refused() {
    let auth = spawn_auth(&[("ACCESS_TOKEN_TTL_SECS", "1".into())]).await;
    let content = Verifier::Content
        .spawn(&jwks_url(&auth), &[("JWT_LEEWAY_SECS", "0".into())])
        .await;
    let user = register(&auth.client, &unique_email("c")).await;

    for path in ["/api/v1/content", "/api/v1/content/"] {
        let resp = content
            .client
            .request(Method::GET, path)
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"items": [], "next_cursor": null}));
    }

    let resp = content
        .client
        .request(Method::GET, "/api/v1/content/")
        .bearer_auth(&user.refresh_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "invalid_token").await;
    assert_problem(
        content.client.get("/api/v1/content/").await,
        401,
        "unauthorized",
    )
    .await;

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let resp = content
        .client
        .request(Method::GET, "/api/v1/content/")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 401, "invalid_token").await;
    assert_eq!(body["detail"], "the token has expired");
}

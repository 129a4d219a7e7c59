//! Token issuance and reuse detection show in `/metrics`.

use peermesh_test_stack::spawn::auth_with_admin;
use peermesh_test_support::auth::{login, register, service_token, unique_email, PASSWORD};
use peermesh_test_support::metrics::scrape;
use serde_json::json;

fn issued(text: &peermesh_test_support::metrics::Scrape, grant: &str) -> f64 {
    text.value("peermesh_auth_tokens_issued_total", &[("grant", grant)])
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn tokens_issued_are_counted_by_grant_and_reuse_is_counted() {
    let (app, admin) = auth_with_admin(&[("REFRESH_GRACE_SECS", "0".into())]).await;
    let before = scrape(&app.client).await;

    let email = unique_email("metrics");
    let user = register(&app.client, &email).await;
    login(&app.client, &email, PASSWORD).await;
    login(&app.client, &email, PASSWORD).await;
    let refresh = |token: String| {
        let client = &app.client;
        async move {
            client
                .post_json("/api/v1/auth/refresh", &json!({"refresh_token": token}))
                .await
        }
    };
    assert_eq!(refresh(user.refresh_token.clone()).await.status(), 200);
    // The rotated token again, with no grace window: reuse, the session is revoked.
    assert_eq!(refresh(user.refresh_token.clone()).await.status(), 401);
    service_token(&app.client, &admin, &["content:write"]).await;
    // A wrong password issues nothing.
    let wrong = app
        .client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);

    let after = scrape(&app.client).await;
    for (grant, n) in [
        ("register", 1.0),
        ("password", 2.0),
        ("refresh", 1.0),
        ("client_credentials", 1.0),
    ] {
        assert_eq!(
            issued(&after, grant) - issued(&before, grant),
            n,
            "{grant}: {}",
            after.text
        );
    }
    let reuse = |s: &peermesh_test_support::metrics::Scrape| {
        s.value("peermesh_auth_refresh_reuse_total", &[])
            .unwrap_or(0.0)
    };
    assert_eq!(reuse(&after) - reuse(&before), 1.0, "{}", after.text);

    let logins = |s: &peermesh_test_support::metrics::Scrape, outcome: &str| {
        s.value("peermesh_auth_logins_total", &[("outcome", outcome)])
            .unwrap_or(0.0)
    };
    assert_eq!(
        logins(&after, "succeeded") - logins(&before, "succeeded"),
        2.0
    );
    assert_eq!(
        logins(&after, "invalid_credentials") - logins(&before, "invalid_credentials"),
        1.0,
        "{}",
        after.text
    );
    // The sign-up's verification mail, delivered to the outbox by the sender.
    let mut sent = 0.0;
    for _ in 0..100 {
        let now = scrape(&app.client).await;
        sent = now
            .value("peermesh_auth_mails_total", &[("outcome", "sent")])
            .unwrap_or(0.0);
        if sent >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sent >= 1.0, "no mail counted as sent");
}

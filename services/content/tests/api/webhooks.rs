//! Webhooks: a subscription gets its owner's changes in order, signed, at least once —
//! a receiver that fails is sent the same changes again until it takes them.

use peermesh_test_support::client::assert_problem;
use peermesh_test_support::receiver::Receiver;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{env, id, item};

#[actix_web::test]
async fn a_webhook_gets_every_change_in_order_signed_and_again_after_a_failure() {
    let env = env(&[
        ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("WEBHOOK_RETRY_BASE_MS", "50".into()),
        ("CHANGES_POLL_MS", "50".into()),
    ])
    .await;
    let (alice, bob) = (env.user().await, env.user().await);
    let a = &alice.access_token;
    env.create(
        a,
        item("Before", "not sent: it came before the subscription"),
    )
    .await;
    let receiver = Receiver::start(2);
    let url = receiver.url();
    let resp = env
        .call(
            Method::POST,
            "/api/v1/content/webhooks",
            a,
            Some(json!({ "url": url })),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let hook: Value = resp.json().await.unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let first = env.create(a, item("First", "one")).await;
    let second = env.create(a, item("Second", "two")).await;
    env.create(&bob.access_token, item("Bob's", "not Alice's"))
        .await;
    let changes_taken = |received: &[peermesh_test_support::receiver::Received]| -> Vec<Value> {
        received
            .iter()
            .filter(|r| r.taken)
            .flat_map(|r| {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                body["changes"].as_array().unwrap().clone()
            })
            .map(|c| json!([c["item_id"], c["op"]]))
            .collect()
    };
    let received = receiver.until(|r| changes_taken(r).len() >= 2).await;
    assert_eq!(
        changes_taken(&received),
        vec![
            json!([id(&first), "created"]),
            json!([id(&second), "created"])
        ],
        "in order, each once it was taken, and only Alice's"
    );
    assert!(received.len() >= 3, "the refused deliveries came again");
    // The first (refused) delivery carried what was taken later: nothing was skipped.
    let refused: Value = serde_json::from_str(&received[0].body).unwrap();
    assert!(!received[0].taken);
    assert_eq!(refused["changes"][0]["item_id"], id(&first).as_str());
    for r in &received {
        let t: i64 = r.timestamp.parse().unwrap();
        assert_eq!(
            r.signature,
            peermesh_common::outbound::sign(secret.as_bytes(), t, r.body.as_bytes()),
            "every delivery is signed with the subscription's secret"
        );
    }

    // Listed without the secret; only to its owner; removed.
    let list = env.get("/api/v1/content/webhooks", a).await;
    assert_eq!(list["items"][0]["url"], url.as_str());
    assert!(list["items"][0]["secret"].is_null());
    let path = format!("/api/v1/content/webhooks/{}", hook["id"].as_str().unwrap());
    let resp = env
        .call(Method::DELETE, &path, &bob.access_token, None)
        .await;
    assert_problem(resp, 404, "not_found").await;
    let resp = env.call(Method::DELETE, &path, a, None).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        env.get("/api/v1/content/webhooks", a).await["items"],
        json!([])
    );
}

#[actix_web::test]
async fn webhooks_to_private_addresses_are_refused() {
    let env = env(&[]).await;
    let alice = env.user().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ] {
        let resp = env
            .call(
                Method::POST,
                "/api/v1/content/webhooks",
                &alice.access_token,
                Some(json!({ "url": url })),
            )
            .await;
        let body = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "url", "{url}");
    }
}

//! The auth binary's administrative commands, run as an operator would.

use std::process::Command;

use peermesh_test_support::auth::{get_json, login, register, unique_email, PASSWORD};
use peermesh_test_support::keys;
use peermesh_test_support::spawn::{spawn_auth, spawn_auth_on};
use peermesh_test_support::TestDb;
use serde_json::Value;

fn auth_cli(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_peermesh-auth"))
        .args(args)
        .env_clear()
        .env("AUTH_DATABASE_URL", db.url())
        .env("AUTH_SIGNING_KEY_FILE", &keys::rsa_key().path)
        .output()
        .unwrap()
}

#[actix_web::test]
async fn promote_admin_and_create_client_from_the_command_line() {
    let first = spawn_auth(&[]).await;
    let email = unique_email("ops");
    register(&first.client, &email).await;
    let db = first.stop_keep_db().await;

    let out = auth_cli(&db, &["promote-admin", &email.to_uppercase()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = auth_cli(&db, &["promote-admin", "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account"));

    let out = auth_cli(
        &db,
        &[
            "create-client",
            "ingestion",
            "content:write",
            "content:act_as",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let out = auth_cli(&db, &["create-client", "bad", "not-a-scope"]);
    assert!(!out.status.success());
    let out = auth_cli(&db, &["frobnicate"]);
    assert!(!out.status.success());

    let app = spawn_auth_on(db, &[]).await;
    let admin = login(&app.client, &email, PASSWORD).await;
    let me = get_json(&app.client, "/api/v1/auth/me", &admin.access_token).await;
    assert_eq!(me["roles"], serde_json::json!(["admin", "user"]));
    let resp = app
        .client
        .request(reqwest::Method::POST, "/api/v1/auth/token")
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["scope"],
        "content:act_as content:write"
    );
}

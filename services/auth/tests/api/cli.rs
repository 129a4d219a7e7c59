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

async fn client_token(
    app: &peermesh_test_support::spawn::Spawned,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    app.client
        .request(reqwest::Method::POST, "/api/v1/auth/token")
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn clients_declared_in_a_file_are_created_at_start_and_rotated_by_editing_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clients.json");
    let declare = |secret: &str, scopes: &[&str]| {
        let body = serde_json::json!([{"id": "ingestion", "secret": secret, "scopes": scopes}]);
        std::fs::write(&file, body.to_string()).unwrap();
    };
    let first_secret = "s".repeat(40);
    declare(&first_secret, &["content:write", "content:act_as"]);
    let setting = [("CLIENTS_FILE", file.display().to_string())];

    let app = spawn_auth(&setting).await;
    let resp = client_token(&app, "ingestion", &first_secret).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["scope"],
        "content:act_as content:write"
    );
    let db = app.stop_keep_db().await;

    // A new secret and fewer scopes in the file: the next start applies them.
    let second_secret = "t".repeat(40);
    declare(&second_secret, &["content:write"]);
    let app = spawn_auth_on(db, &setting).await;
    assert_eq!(
        client_token(&app, "ingestion", &first_secret)
            .await
            .status(),
        401
    );
    let resp = client_token(&app, "ingestion", &second_secret).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["scope"],
        "content:write"
    );
    let db = app.stop_keep_db().await;

    // A file the service cannot use stops it at start-up, saying why.
    for (bad, reason) in [
        (
            r#"[{"id": "x", "secret": "short", "scopes": ["content:write"]}]"#,
            "at least 32",
        ),
        (
            r#"[{"id": "no spaces", "secret": "ssssssssssssssssssssssssssssssssssss", "scopes": ["content:write"]}]"#,
            "client id",
        ),
        (
            r#"[{"id": "x", "secret": "ssssssssssssssssssssssssssssssssssss", "scopes": ["root"]}]"#,
            "scope",
        ),
        (r#"{"id": "x"}"#, "not a list"),
    ] {
        std::fs::write(&file, bad).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_peermesh-auth"))
            .env_clear()
            .env("AUTH_DATABASE_URL", db.url())
            .env("AUTH_SIGNING_KEY_FILE", &keys::rsa_key().path)
            .env("AUTH_PORT", "0")
            .env("AUTH_CLIENTS_FILE", &file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            log.contains("AUTH_CLIENTS_FILE") && log.contains(reason),
            "{bad}: {log}"
        );
        assert!(!log.contains("ssssssss"), "a secret reached the log: {log}");
    }
}

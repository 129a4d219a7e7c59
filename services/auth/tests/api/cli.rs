//! The auth binary's administrative commands, run as an operator would.

use std::process::Command;

use peermesh_test_stack::spawn::{spawn_auth, spawn_auth_on};
use peermesh_test_support::auth::{get_json, login, register, unique_email, PASSWORD};
use peermesh_test_support::keys;
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

fn auth_cli_with_input(db: &TestDb, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_peermesh-auth"))
        .args(args)
        .env_clear()
        .env("AUTH_DATABASE_URL", db.url())
        .env("AUTH_SIGNING_KEY_FILE", &keys::rsa_key().path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[actix_web::test]
async fn operators_manage_accounts_and_clients_from_the_command_line() {
    let first = spawn_auth(&[]).await;
    let email = unique_email("ops");
    register(&first.client, &email).await;
    let db = first.stop_keep_db().await;

    succeeded(&auth_cli(&db, &["user", "promote", &email.to_uppercase()]));
    assert!(
        failed(&auth_cli(&db, &["user", "promote", "nobody@example.com"])).contains("no account")
    );

    // An administrator made from nothing, the password on standard input.
    let made = unique_email("made");
    let out = auth_cli_with_input(
        &db,
        &["user", "create", &made, "--admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(succeeded(&out).contains("created administrator"));
    let again = auth_cli_with_input(&db, &["user", "create", &made], PASSWORD);
    assert!(failed(&again).contains("exists already"));
    let weak = auth_cli_with_input(&db, &["user", "create", &unique_email("weak")], "short");
    assert!(failed(&weak).contains("password"));

    let client: Value = serde_json::from_str(&succeeded(&auth_cli(
        &db,
        &[
            "clients",
            "create",
            "ingestion",
            "content:write",
            "content:act_as",
        ],
    )))
    .unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    failed(&auth_cli(&db, &["clients", "create", "bad", "not-a-scope"]));
    failed(&auth_cli(&db, &["frobnicate"]));
    let listed = succeeded(&auth_cli(&db, &["clients", "list"]));
    let line: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(line["client_id"], id);
    assert_eq!(line["name"], "ingestion");
    assert!(!listed.contains(secret), "a secret was listed: {listed}");

    let app = spawn_auth_on(db, &[]).await;
    for account in [&email, &made] {
        let tokens = login(&app.client, account, PASSWORD).await;
        let me = get_json(&app.client, "/api/v1/auth/me", &tokens.access_token).await;
        assert_eq!(
            me["roles"],
            serde_json::json!(["admin", "user"]),
            "{account}"
        );
    }
    let resp = client_token(&app, id, secret).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["scope"],
        "content:act_as content:write"
    );
    let db = app.stop_keep_db().await;

    succeeded(&auth_cli(&db, &["clients", "revoke", id]));
    assert!(failed(&auth_cli(&db, &["clients", "revoke", id])).contains("no active client"));
    let app = spawn_auth_on(db, &[]).await;
    assert_eq!(client_token(&app, id, secret).await.status(), 401);
}

#[actix_web::test]
async fn migrate_applies_once_and_keys_rotate_keeps_old_tokens_verifiable() {
    let db = TestDb::new("auth");
    assert!(succeeded(&auth_cli(&db, &["migrate"])).contains("applied"));
    assert!(succeeded(&auth_cli(&db, &["migrate"])).contains("up to date"));

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.pem");
    std::fs::copy(&keys::rsa_key().path, &key).unwrap();
    let app = spawn_auth_on(db, &[("SIGNING_KEY_FILE", key.display().to_string())]).await;
    let email = unique_email("rotate");
    let old_token = register(&app.client, &email).await.access_token;
    let db = app.stop_keep_db().await;

    let out = succeeded(&auth_cli(
        &db,
        &["keys", "rotate", &key.display().to_string()],
    ));
    let previous = dir.path().join("signing.pem.previous");
    assert!(out.contains("AUTH_PUBLISHED_KEY_FILES"), "{out}");
    assert_eq!(
        std::fs::read(&previous).unwrap(),
        std::fs::read(&keys::rsa_key().path).unwrap()
    );
    assert_ne!(
        std::fs::read(&key).unwrap(),
        std::fs::read(&previous).unwrap()
    );

    let app = spawn_auth_on(
        db,
        &[
            ("SIGNING_KEY_FILE", key.display().to_string()),
            ("PUBLISHED_KEY_FILES", previous.display().to_string()),
        ],
    )
    .await;
    let jwks = app.client.get("/api/v1/auth/.well-known/jwks.json").await;
    let jwks: Value = jwks.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2), "{jwks}");
    // The old token still works, and new ones carry the new key's id.
    get_json(&app.client, "/api/v1/auth/me", &old_token).await;
    let new_token = login(&app.client, &email, PASSWORD).await.access_token;
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid;
    assert_ne!(kid(&old_token), kid(&new_token));
}

async fn client_token(
    app: &peermesh_test_stack::spawn::Spawned,
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

/// The binary's stdout is one JSON object per line: its own records, the access log
/// with the request's trace, and the libraries' records (the `log` facade) with their
/// `target`.
#[actix_web::test]
async fn the_service_log_is_json_lines_with_library_records_and_traces() {
    use peermesh_test_support::process::ServiceProcess;
    let db = TestDb::new("auth");
    let env = vec![
        ("AUTH_DATABASE_URL".to_owned(), db.url().to_owned()),
        (
            "AUTH_SIGNING_KEY_FILE".to_owned(),
            keys::rsa_key().path.display().to_string(),
        ),
    ];
    let auth = ServiceProcess::start(env!("CARGO_BIN_EXE_peermesh-auth"), "AUTH_", &env).await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let resp = auth
        .client
        .request(reqwest::Method::GET, "/api/v1/auth/.well-known/jwks.json")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = auth
            .log_text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        if lines.iter().any(|l| l["trace_id"] == trace_id.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(lines
        .iter()
        .all(|l| l["service"] == "auth" && l["ts"].is_string()));
    let access = lines
        .iter()
        .find(|l| l["msg"] == "request" && l["trace_id"] == trace_id.as_str())
        .expect("the access line carries the trace");
    assert_eq!(access["path"], "/api/v1/auth/.well-known/jwks.json");
    assert!(
        lines.iter().any(|l| l["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("actix_server"))),
        "no library record: {lines:#?}"
    );
}

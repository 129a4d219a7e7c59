//! Email verification and password reset, with the mails crossing real SMTP to a
//! server running inside the test (mailin-embedded), and the outbox folder.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::{response, Handler, Response, Server, SslConfig};
use peermesh_test_stack::spawn::{spawn_auth, Spawned};
use peermesh_test_support::auth::{login, register, unique_email, PASSWORD};
use peermesh_test_support::client::assert_problem;
use peermesh_test_support::free_port;
use peermesh_test_support::mail::Mail;
use reqwest::Method;
use serde_json::{json, Value};

const APP_URL: &str = "https://app.example.test";

#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    mail: Mail,
}

impl Received {
    fn header(&self, name: &str) -> Option<String> {
        self.mail.header(name)
    }

    /// The token of the link to `{APP_URL}{path}?token=`.
    fn token(&self, path: &str) -> String {
        self.mail.token(APP_URL, path)
    }
}

/// One SMTP session's state; every received message goes into the shared list.
#[derive(Clone, Default)]
struct Sink {
    received: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.received.lock().unwrap().push(Received {
            to: std::mem::take(&mut self.to),
            mail: Mail {
                raw: String::from_utf8_lossy(&self.data).into_owned(),
            },
        });
        response::OK
    }
}

struct Smtp {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Smtp {
    /// A real SMTP server on `listener` (its own threads, for the test's lifetime).
    fn serve(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let sink = Sink::default();
        let received = sink.received.clone();
        let mut server = Server::new(sink);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, received }
    }

    fn start() -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn settings(port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("SMTP_HOST", "127.0.0.1".into()),
            ("SMTP_PORT", port.to_string()),
            ("SMTP_SECURITY", "none".into()),
            ("MAIL_FROM", "PeerMesh <no-reply@peermesh.test>".into()),
            ("PUBLIC_APP_URL", APP_URL.into()),
            ("MAIL_RETRY_BASE_MS", "100".into()),
            ("SMTP_TIMEOUT_SECS", "2".into()),
        ]
    }

    /// Waits for the `n`-th message (1-based) to arrive.
    async fn nth(&self, n: usize) -> Received {
        for _ in 0..200 {
            if let Some(m) = self.received.lock().unwrap().get(n - 1) {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mail #{n} never arrived");
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

async fn auth_with(smtp_port: u16, extra: &[(&'static str, String)]) -> Spawned {
    let mut settings = Smtp::settings(smtp_port);
    settings.extend(extra.iter().cloned());
    spawn_auth(&settings).await
}

async fn post(app: &Spawned, path: &str, body: Value) -> reqwest::Response {
    app.client.post_json(path, &body).await
}

async fn me(app: &Spawned, token: &str) -> Value {
    peermesh_test_support::auth::get_json(&app.client, "/api/v1/auth/me", token).await
}

#[actix_web::test]
async fn registration_mails_a_link_that_verifies_the_address_once() {
    let smtp = Smtp::start();
    let app = auth_with(smtp.port, &[]).await;
    let email = unique_email("verify");
    let user = register(&app.client, &email).await;
    assert_eq!(me(&app, &user.access_token).await["email_verified"], false);

    let mail = smtp.nth(1).await;
    assert_eq!(mail.to, vec![email.clone()]);
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Confirm your email address for PeerMesh"
    );
    assert!(mail
        .header("From")
        .unwrap()
        .contains("no-reply@peermesh.test"));
    let token = mail.token("/verify-email");

    let resp = post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email_verified"], true);
    assert_eq!(me(&app, &user.access_token).await["email_verified"], true);

    let again = post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_problem(again, 400, "token_used").await;
    let wrong = post(
        &app,
        "/api/v1/auth/verify-email",
        json!({"token": "pmv_nope"}),
    )
    .await;
    assert_problem(wrong, 400, "invalid_token").await;
    let resp = app
        .client
        .request(Method::POST, "/api/v1/auth/verify-email/resend")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 409, "already_verified").await;
}

#[actix_web::test]
async fn resend_is_rate_limited_and_only_the_newest_link_works() {
    let smtp = Smtp::start();
    let app = auth_with(smtp.port, &[("VERIFY_RESEND_INTERVAL_SECS", "1".into())]).await;
    let user = register(&app.client, &unique_email("resend")).await;
    let first = smtp.nth(1).await.token("/verify-email");
    let resend = || {
        app.client
            .request(Method::POST, "/api/v1/auth/verify-email/resend")
            .bearer_auth(&user.access_token)
            .send()
    };
    let resp = resend().await.unwrap();
    assert_eq!(resp.status(), 429, "too soon after the first mail");
    assert!(resp.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = resend().await.unwrap();
    assert_eq!(resp.status(), 202);
    let second = smtp.nth(2).await.token("/verify-email");
    assert_ne!(first, second);
    let old = post(&app, "/api/v1/auth/verify-email", json!({"token": first})).await;
    assert_problem(old, 400, "token_used").await;
    assert_eq!(
        post(&app, "/api/v1/auth/verify-email", json!({"token": second}))
            .await
            .status(),
        200
    );
    let anonymous = app
        .client
        .request(Method::POST, "/api/v1/auth/verify-email/resend")
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, "unauthorized").await;
}

#[actix_web::test]
async fn forgotten_passwords_are_reset_by_mail_without_revealing_accounts() {
    let smtp = Smtp::start();
    let app = auth_with(smtp.port, &[]).await;
    let email = unique_email("forgot");
    let user = register(&app.client, &email).await;
    smtp.nth(1).await; // the verification mail

    let known = post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": email.to_uppercase()}),
    )
    .await;
    let unknown = post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": unique_email("nobody")}),
    )
    .await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    let (known, unknown): (Value, Value) =
        (known.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(
        known, unknown,
        "the same answer whether or not the account exists"
    );

    let mail = smtp.nth(2).await;
    assert_eq!(mail.to, vec![email.clone()]);
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Reset your PeerMesh password"
    );
    let token = mail.token("/reset-password");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 2, "no mail for the unknown address");

    let weak = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": token, "new_password": "short"}),
    )
    .await;
    let problem = assert_problem(weak, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "new_password");
    let new_password = "a brand new passphrase";
    let resp = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": token, "new_password": new_password}),
    )
    .await;
    assert_eq!(resp.status(), 204);

    // Every session ended; the old password is gone; the address counts as verified.
    let refresh = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": user.refresh_token}),
    )
    .await;
    assert_eq!(refresh.status(), 401);
    let old = post(
        &app,
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(old.status(), 401);
    let fresh = login(&app.client, &email, new_password).await;
    assert_eq!(me(&app, &fresh.access_token).await["email_verified"], true);

    let reused = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": token, "new_password": "yet another one!"}),
    )
    .await;
    assert_problem(reused, 400, "token_used").await;
    let bogus = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": "pmp_bogus", "new_password": "yet another one!"}),
    )
    .await;
    assert_problem(bogus, 400, "invalid_token").await;
    let bad = post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": "not an address"}),
    )
    .await;
    assert_problem(bad, 422, "validation_failed").await;
}

#[actix_web::test]
async fn reset_links_expire() {
    let smtp = Smtp::start();
    let app = auth_with(smtp.port, &[("RESET_TOKEN_TTL_SECS", "1".into())]).await;
    let email = unique_email("expire");
    register(&app.client, &email).await;
    smtp.nth(1).await; // the verification mail: mails go out in the background, so wait before the next
    assert_eq!(
        post(
            &app,
            "/api/v1/auth/password/forgot",
            json!({"email": email})
        )
        .await
        .status(),
        202
    );
    let token = smtp.nth(2).await.token("/reset-password");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resp = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": token, "new_password": "too late for this"}),
    )
    .await;
    assert_problem(resp, 400, "token_expired").await;
    login(&app.client, &email, PASSWORD).await;
}

#[actix_web::test]
async fn reset_requests_are_limited_per_address_and_per_account() {
    let smtp = Smtp::start();
    let app = auth_with(
        smtp.port,
        &[
            ("FORGOT_PER_IP_PER_HOUR", "3".into()),
            ("FORGOT_PER_ACCOUNT_PER_HOUR", "1".into()),
        ],
    )
    .await;
    let email = unique_email("limits");
    register(&app.client, &email).await;
    smtp.nth(1).await;
    // At once, so the per-account check races with itself (it must not let two through).
    let asks = (0..3).map(|_| {
        post(
            &app,
            "/api/v1/auth/password/forgot",
            json!({"email": email}),
        )
    });
    for resp in futures_util::future::join_all(asks).await {
        assert_eq!(resp.status(), 202);
    }
    let resp = post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": unique_email("other")}),
    )
    .await;
    let problem = assert_problem(resp, 429, "rate_limited").await;
    assert!(problem["detail"].is_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.count(),
        2,
        "one reset mail per account per hour, silently"
    );
}

#[actix_web::test]
async fn mail_waits_for_a_server_that_is_down_and_the_request_does_not() {
    // Reserve a port with nothing listening on it: the SMTP server is down.
    let port = free_port();
    let app = auth_with(port, &[]).await;
    let email = unique_email("down");
    let started = std::time::Instant::now();
    register(&app.client, &email).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "registration did not wait for mail"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;

    let smtp = Smtp::serve(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let mail = smtp.nth(1).await;
    assert_eq!(mail.to, vec![email]);
    assert!(!mail.token("/verify-email").is_empty());
}

#[actix_web::test]
async fn without_smtp_mail_lands_in_the_outbox_folder() {
    let outbox = tempfile::tempdir().unwrap();
    let app = spawn_auth(&[
        ("MAIL_OUTBOX_DIR", outbox.path().display().to_string()),
        ("PUBLIC_APP_URL", APP_URL.into()),
    ])
    .await;
    let email = unique_email("outbox");
    let user = register(&app.client, &email).await;
    let mut files = Vec::new();
    let mut raw = String::new();
    for _ in 0..100 {
        files = std::fs::read_dir(outbox.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // The file appears before the transport has finished writing it.
        raw = files
            .first()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        if raw.contains("/verify-email") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files.len(), 1);
    assert!(files[0].extension().is_some_and(|e| e == "eml"));
    let mail = Received {
        to: vec![],
        mail: Mail { raw },
    };
    assert!(mail.header("To").unwrap().contains(&email));
    let token = mail.token("/verify-email");
    assert_eq!(
        post(&app, "/api/v1/auth/verify-email", json!({"token": token}))
            .await
            .status(),
        200
    );
    assert_eq!(me(&app, &user.access_token).await["email_verified"], true);
}

/// Mail is written to the database with the token it carries: the auth process
/// killed (SIGKILL) while the SMTP server is down loses nothing; started again, it
/// delivers the mail once the server is up, and the link works.
#[actix_web::test]
async fn queued_mail_survives_a_killed_service() {
    use peermesh_test_support::process::ServiceProcess;
    let port = free_port();
    let db = peermesh_test_support::TestDb::new("auth");
    let env: Vec<(String, String)> = Smtp::settings(port)
        .into_iter()
        .map(|(k, v)| (format!("AUTH_{k}"), v))
        .chain([
            ("AUTH_DATABASE_URL".to_owned(), db.url().to_owned()),
            (
                "AUTH_SIGNING_KEY_FILE".to_owned(),
                peermesh_test_support::keys::rsa_key()
                    .path
                    .display()
                    .to_string(),
            ),
        ])
        .collect();
    let binary = env!("CARGO_BIN_EXE_peermesh-auth");
    let mut auth = ServiceProcess::start(binary, "AUTH_", &env).await;
    let email = unique_email("durable");
    register(&auth.client, &email).await;
    // Let the sender fail an attempt against the missing server, then kill it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    auth.kill();

    let smtp = Smtp::serve(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let auth = ServiceProcess::start(binary, "AUTH_", &env).await;
    let mail = smtp.nth(1).await;
    assert_eq!(mail.to, vec![email.clone()]);
    let token = mail.token("/verify-email");
    let resp = auth
        .client
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(resp.status(), 200, "{}", auth.log_text());
    // Sent once, then gone from the outbox: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.count(), 1);
}

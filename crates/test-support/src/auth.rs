//! Talking to the real auth service in tests: accounts and tokens over HTTP.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::client::TestClient;

pub const PASSWORD: &str = "correct horse battery";

/// A signed-up user: their tokens and id.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestUser {
    fn from_tokens(email: &str, body: &Value) -> Self {
        Self {
            id: body["user"]["id"].as_str().expect("user id").to_owned(),
            email: email.to_owned(),
            access_token: body["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        }
    }
}

/// A unique email for this test.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Registers `email` with [`PASSWORD`] (201 expected).
pub async fn register(client: &TestClient, email: &str) -> TestUser {
    let resp = client
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), 201, "register {email}");
    TestUser::from_tokens(email, &resp.json().await.expect("tokens"))
}

/// Logs in (200 expected).
pub async fn login(client: &TestClient, email: &str, password: &str) -> TestUser {
    let resp = client
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(resp.status(), 200, "login {email}");
    TestUser::from_tokens(email, &resp.json().await.expect("tokens"))
}

/// A request carrying `token` as bearer.
pub fn authed(
    client: &TestClient,
    method: Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    client.request(method, path).bearer_auth(token)
}

/// `GET path` with `token` as bearer; asserts 200 and returns the JSON body.
pub async fn get_json(client: &TestClient, path: &str, token: &str) -> Value {
    let resp = authed(client, Method::GET, path, token)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.expect("JSON body")
}

/// The default `AUTH_PUBLIC_APP_URL`, which mailed links start with.
pub const DEFAULT_APP_URL: &str = "http://127.0.0.1:8080";

/// Registers `email` and verifies it with the link mailed to the test outbox (the
/// service must write mail there, as the test stack's `spawn_auth` sets up, with the
/// default public app URL).
pub async fn verified_user(client: &TestClient, email: &str) -> TestUser {
    let user = register(client, email).await;
    verify_email(client, email).await;
    user
}

/// Follows the newest verification link mailed to `email` (see [`verified_user`]).
pub async fn verify_email(client: &TestClient, email: &str) {
    let outbox = crate::mail::test_outbox();
    let mail = crate::mail::await_outbox_mail(&outbox, email, 1).await;
    let mails = crate::mail::outbox_mails(&outbox, email);
    let newest = mails.last().unwrap_or(&mail);
    let token = newest.token(DEFAULT_APP_URL, "/verify-email");
    let resp = client
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(resp.status(), 200, "verify {email}");
}

/// A service client with `scopes`, created by `admin`: (client id, secret).
pub async fn create_client(
    client: &TestClient,
    admin: &TestUser,
    scopes: &[&str],
) -> (String, String) {
    let resp = authed(
        client,
        Method::POST,
        "/api/v1/auth/clients",
        &admin.access_token,
    )
    .json(&json!({"name": "test-service", "scopes": scopes}))
    .send()
    .await
    .expect("create client");
    assert_eq!(resp.status(), 201, "create client");
    let created: Value = resp.json().await.expect("client");
    (
        created["id"].as_str().expect("id").to_owned(),
        created["client_secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    )
}

/// A service client with `scopes`, created by `admin`, and an access token for it
/// from the client-credentials grant.
pub async fn service_token(client: &TestClient, admin: &TestUser, scopes: &[&str]) -> String {
    let (id, secret) = create_client(client, admin, scopes).await;
    let resp = client
        .request(Method::POST, "/api/v1/auth/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200, "client credentials");
    let body: Value = resp.json().await.expect("token body");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// What a frontend keeps between `GET /oauth/{provider}/authorize` and
/// `POST /oauth/exchange`: a PKCE verifier and its S256 challenge (RFC 7636).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        use sha2::Digest as _;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let verifier = b64.encode(bytes);
        let challenge = b64.encode(sha2::Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }

    /// `code_challenge=…&code_challenge_method=S256`, to append to an authorize URL.
    pub fn query(&self) -> String {
        format!(
            "code_challenge={}&code_challenge_method=S256",
            self.challenge
        )
    }

    /// The body of `POST /oauth/exchange` for `code`.
    pub fn exchange_body(&self, code: &str) -> Value {
        json!({"code": code, "code_verifier": self.verifier})
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// A service client the operator declares in `AUTH_CLIENTS_FILE` (the only way to
/// grant `content:act_as`): its id and secret, and the file to start auth with.
pub struct DeclaredClient {
    pub id: String,
    pub secret: String,
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl DeclaredClient {
    pub fn new(scopes: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let id = format!("svc-{}", uuid::Uuid::new_v4().simple());
        let secret = format!("pms_{}", uuid::Uuid::new_v4().simple());
        let file = dir.path().join("clients.json");
        let declared = json!([{"id": id, "secret": secret, "scopes": scopes}]);
        std::fs::write(&file, declared.to_string()).expect("clients file");
        Self {
            id,
            secret,
            file,
            _dir: dir,
        }
    }

    /// The auth setting that declares it (`CLIENTS_FILE`, without the prefix).
    pub fn setting(&self) -> (&'static str, String) {
        ("CLIENTS_FILE", self.file.display().to_string())
    }

    /// `POST /token` with this client's credentials and `params`.
    pub async fn request_token(&self, client: &TestClient, params: &[(&str, &str)]) -> Response {
        let mut form = vec![
            ("client_id", self.id.as_str()),
            ("client_secret", self.secret.as_str()),
        ];
        form.extend_from_slice(params);
        client
            .request(Method::POST, "/api/v1/auth/token")
            .form(&form)
            .send()
            .await
            .expect("token request")
    }

    /// The user's delegation to this client (token exchange with the user's own
    /// access token): a token acting for that user.
    pub async fn delegated_token(&self, client: &TestClient, user: &TestUser) -> String {
        let resp = self
            .request_token(
                client,
                &[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", user.access_token.as_str()),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                ],
            )
            .await;
        assert_eq!(resp.status(), 200, "token exchange");
        access_token_of(resp).await
    }
}

async fn access_token_of(resp: Response) -> String {
    let body: Value = resp.json().await.expect("token body");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

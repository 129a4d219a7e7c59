//! Local stand-ins for Google and GitHub that speak their real protocols on loopback,
//! so the auth service's real client code (openidconnect, oauth2, reqwest) runs in tests:
//! - an OpenID Connect provider: discovery document, JWKS with a real RSA key, an
//!   authorization endpoint that sends the browser back with a code, and a token endpoint
//!   that checks the client, the redirect URI and the PKCE verifier and returns a signed
//!   ID token (with knobs to get it wrong in the ways an attacker or a bug would);
//! - a GitHub-like OAuth 2.0 server with `/user` and `/user/emails`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::keys;

pub const CLIENT_ID: &str = "peermesh-test-client";
pub const CLIENT_SECRET: &str = "peermesh-test-secret";
const KID: &str = "provider-key-1";

/// The person signed in at the provider when the browser arrives.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    /// Google's `sub`; GitHub's numeric id.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: String,
}

impl ProviderUser {
    pub fn new(subject: &str, email: &str, verified: bool) -> Self {
        Self {
            subject: subject.to_owned(),
            email: Some(email.to_owned()),
            email_verified: verified,
            name: format!("User {subject}"),
        }
    }
}

/// Ways the provider's ID token can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tamper {
    #[default]
    None,
    WrongNonce,
    /// Signed by a key the JWKS does not hold (same `kid`).
    OtherKey,
    Expired,
    WrongAudience,
    /// The token endpoint fails (500).
    TokenEndpointDown,
}

#[derive(Debug, Clone)]
struct Issued {
    user: ProviderUser,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
}

#[derive(Default)]
struct State {
    base: String,
    user: Option<ProviderUser>,
    tamper: Tamper,
    codes: HashMap<String, Issued>,
    tokens: HashMap<String, ProviderUser>,
    /// Every authorization request's query, for assertions.
    requests: Vec<HashMap<String, String>>,
}

/// A running provider stand-in.
pub struct FakeProvider {
    pub base: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeProvider {
    /// The OpenID Connect provider (Google's role); its issuer is `base`.
    pub fn oidc() -> Self {
        Self::start(|cfg| {
            cfg.route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/jwks", web::get().to(jwks))
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(oidc_token))
            // A page to stand for the client app at the end of a browser test.
            .route("/app", web::get().to(app_page));
        })
    }

    /// The GitHub stand-in: `base` is both the web and the API base URL.
    pub fn github() -> Self {
        Self::start(|cfg| {
            cfg.route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(github_token))
                .route("/user", web::get().to(github_user))
                .route("/user/emails", web::get().to(github_emails));
        })
    }

    fn start(routes: fn(&mut web::ServiceConfig)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind provider");
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(State {
            base: base.clone(),
            ..Default::default()
        }));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).configure(routes))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("provider listens")
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            base,
            state,
            handle,
        }
    }

    /// Who is signed in at the provider (`None`: the person refuses, `access_denied`).
    pub fn sign_in_as(&self, user: Option<ProviderUser>) {
        self.state.lock().unwrap().user = user;
    }

    pub fn tamper(&self, tamper: Tamper) {
        self.state.lock().unwrap().tamper = tamper;
    }

    /// The query of the last authorization request the provider received.
    pub fn last_request(&self) -> HashMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .requests
            .last()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn app_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><title>signed in</title><p>Back in the app.</p>")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn discovery(state: web::Data<Mutex<State>>) -> HttpResponse {
    let base = state.lock().unwrap().base.clone();
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "email", "email_verified", "name"],
    }))
}

async fn jwks() -> HttpResponse {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&keys::rsa_key().pem).expect("RSA key");
    let public = key.to_public_key();
    HttpResponse::Ok().json(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
        "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
    }]}))
}

async fn authorize(
    state: web::Data<Mutex<State>>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.requests.push(query.0.clone());
    let field = |k: &str| query.get(k).cloned().unwrap_or_default();
    let redirect_uri = field("redirect_uri");
    if field("client_id") != CLIENT_ID || redirect_uri.is_empty() {
        return HttpResponse::BadRequest().body("unknown client or no redirect_uri");
    }
    let mut back = url::Url::parse(&redirect_uri).expect("redirect_uri");
    match s.user.clone() {
        None => {
            back.query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("state", &field("state"));
        }
        Some(user) => {
            let code = random();
            s.codes.insert(
                code.clone(),
                Issued {
                    user,
                    redirect_uri: redirect_uri.clone(),
                    challenge: field("code_challenge"),
                    nonce: query.get("nonce").cloned(),
                },
            );
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &field("state"));
        }
    }
    HttpResponse::Found()
        .insert_header(("Location", back.to_string()))
        .finish()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An OAuth error answer: status and `error` code.
type Refused = (u16, &'static str);

fn refused((status, error): Refused) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({ "error": error }))
}

/// What every token endpoint checks — the client (Basic or form), the code (single
/// use), the redirect URI and PKCE — after its outage knob.
fn redeem(req: &HttpRequest, form: &TokenForm, state: &mut State) -> Result<Issued, Refused> {
    if state.tamper == Tamper::TokenEndpointDown {
        return Err((500, "server_error"));
    }
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let (id, secret) = match basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':').unwrap_or_default();
            (id.to_owned(), secret.to_owned())
        }
        None => (
            form.client_id.clone().unwrap_or_default(),
            form.client_secret.clone().unwrap_or_default(),
        ),
    };
    let refuse = |error: &'static str| Err((400, error));
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return Err((401, "invalid_client"));
    }
    if form.grant_type != "authorization_code" {
        return refuse("unsupported_grant_type");
    }
    let Some(issued) = state.codes.remove(&form.code) else {
        return refuse("invalid_grant");
    };
    if form.redirect_uri.as_deref() != Some(issued.redirect_uri.as_str()) {
        return refuse("invalid_grant");
    }
    let verifier = form.code_verifier.clone().unwrap_or_default();
    if b64(&Sha256::digest(verifier.as_bytes())) != issued.challenge {
        return refuse("invalid_grant");
    }
    Ok(issued)
}

async fn oidc_token(
    state: web::Data<Mutex<State>>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    let issued = match redeem(&req, &form, &mut s) {
        Ok(issued) => issued,
        Err(why) => return refused(why),
    };
    let now = chrono::Utc::now().timestamp();
    let tamper = s.tamper;
    let mut claims = json!({
        "iss": s.base,
        "sub": issued.user.subject,
        "aud": if tamper == Tamper::WrongAudience { "someone-else" } else { CLIENT_ID },
        "iat": now,
        "exp": if tamper == Tamper::Expired { now - 600 } else { now + 300 },
        "nonce": if tamper == Tamper::WrongNonce { Some("not-the-nonce".to_owned()) } else { issued.nonce },
        "email_verified": issued.user.email_verified,
        "name": issued.user.name,
    });
    if let Some(email) = &issued.user.email {
        claims["email"] = Value::from(email.clone());
    }
    let pem = if tamper == Tamper::OtherKey {
        &keys::other_rsa_key().pem
    } else {
        &keys::rsa_key().pem
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KID.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("key");
    let id_token = jsonwebtoken::encode(&header, &claims, &key).expect("sign ID token");
    HttpResponse::Ok().json(json!({
        "access_token": random(),
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
}

async fn github_token(
    state: web::Data<Mutex<State>>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    let issued = match redeem(&req, &form, &mut s) {
        Ok(issued) => issued,
        Err(why) => return refused(why),
    };
    let token = random();
    s.tokens.insert(token.clone(), issued.user);
    HttpResponse::Ok().json(json!({
        "access_token": token,
        "token_type": "bearer",
        "scope": "read:user,user:email",
    }))
}

fn github_caller(req: &HttpRequest, state: &State) -> Option<ProviderUser> {
    let token = req
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    state.tokens.get(token).cloned()
}

async fn github_user(state: web::Data<Mutex<State>>, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    match github_caller(&req, &s) {
        Some(user) => HttpResponse::Ok().json(json!({
            "id": user.subject.parse::<u64>().unwrap_or(1),
            "login": format!("login{}", user.subject),
            "name": user.name,
            "email": null,
        })),
        None => HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"})),
    }
}

async fn github_emails(state: web::Data<Mutex<State>>, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    match github_caller(&req, &s) {
        Some(user) => HttpResponse::Ok().json(
            user.email
                .iter()
                .map(|email| {
                    json!({
                        "email": email, "primary": true, "verified": user.email_verified,
                        "visibility": "private",
                    })
                })
                .collect::<Vec<_>>(),
        ),
        None => HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"})),
    }
}

/// What a browser's sign-in with a provider through the gateway came to.
pub struct BrowserSignIn {
    /// Our callback URL as the provider sent the browser back to it.
    pub callback: url::Url,
    /// The one-time code the client got.
    pub code: String,
    /// The token pair `POST /oauth/exchange` gave for it.
    pub tokens: serde_json::Value,
}

/// A browser signing in with `provider_name` through `public` (the gateway's URL) for
/// the client `app`, as a frontend does it: authorize with a PKCE challenge, the
/// provider, our callback with the flow cookie (carried by hand: no redirect is
/// followed, so each hop can be checked), then the exchange with the verifier.
pub async fn browser_sign_in(public: &str, provider_name: &str, app: &str) -> BrowserSignIn {
    use reqwest::header::{COOKIE, SET_COOKIE};
    let pkce = crate::auth::Pkce::new();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = browser
        .get(format!(
            "{public}/api/v1/auth/oauth/{provider_name}/authorize?redirect_uri={}&{}",
            url::form_urlencoded::byte_serialize(app.as_bytes()).collect::<String>(),
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
    let at_provider = browser
        .get(crate::client::redirect_location(&start))
        .send()
        .await
        .unwrap();
    let callback = crate::client::redirect_location(&at_provider);
    let landed = crate::client::redirect_location(
        &browser
            .get(callback.clone())
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap(),
    );
    assert!(landed.as_str().starts_with(app), "{landed}");
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {landed}"));
    let resp = browser
        .post(format!("{public}/api/v1/auth/oauth/exchange"))
        .json(&pkce.exchange_body(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "exchange");
    BrowserSignIn {
        callback,
        code,
        tokens: resp.json().await.unwrap(),
    }
}

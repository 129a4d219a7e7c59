//! The JWT validator against real signed tokens and a real JWKS served over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use peermesh_common::auth::Principal;
use peermesh_common::jwt::{Claims, JwtError, JwtSettings, JwtValidator};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};

struct Key {
    pem: String,
    public_pem: String,
    kid: String,
    jwk: Jwk,
    alg: Algorithm,
}

fn rsa_key(slot: usize) -> &'static Key {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..2)
            .map(|_| {
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
                let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
                let public_pem = key
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap();
                make_key(pem, public_pem, Algorithm::RS256)
            })
            .collect()
    })[slot]
}

fn ed_key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        make_key(pem, String::new(), Algorithm::EdDSA)
    })
}

fn make_key(pem: String, public_pem: String, alg: Algorithm) -> Key {
    let enc = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    let mut jwk = match alg {
        // jsonwebtoken cannot derive Ed25519 JWKs; build it from the public key.
        Algorithm::EdDSA => {
            use ed25519_dalek::pkcs8::DecodePrivateKey as _;
            let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
            serde_json::from_value(json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes()),
            }))
            .unwrap()
        }
        _ => Jwk::from_encoding_key(&enc, alg).unwrap(),
    };
    let kid = jwk.thumbprint(ThumbprintHash::SHA256);
    jwk.common.key_id = Some(kid.clone());
    Key {
        pem,
        public_pem,
        kid,
        jwk,
        alg,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Claims {
    Claims {
        iss: "peermesh-auth".into(),
        aud: "peermesh".into(),
        sub: "0190f0e0-0000-7000-8000-000000000001".into(),
        exp: now() + 900,
        iat: now(),
        nbf: now(),
        jti: uuid::Uuid::new_v4().to_string(),
        typ: "access".into(),
        roles: vec!["user".into()],
        scope: "content:read content:write".into(),
        sid: Some("family-1".into()),
        act_for: None,
    }
}

fn sign(key: &Key, claims: &Claims) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    let enc = match key.alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(key.pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&header, claims, &enc).unwrap()
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A JWKS endpoint whose key set can change, counting its hits.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    hits: Arc<AtomicUsize>,
    /// The `traceparent` of the latest fetch.
    traceparent: Arc<Mutex<Option<String>>>,
}

async fn jwks_server(keys: Vec<Jwk>) -> JwksServer {
    let keys = Arc::new(Mutex::new(keys));
    let hits = Arc::new(AtomicUsize::new(0));
    let traceparent = Arc::new(Mutex::new(None));
    let (k, h, t) = (keys.clone(), hits.clone(), traceparent.clone());
    let server = HttpServer::new(move || {
        let (k, h, t) = (k.clone(), h.clone(), t.clone());
        App::new().route(
            "/jwks.json",
            web::get().to(move |req: actix_web::HttpRequest| {
                let (k, h, t) = (k.clone(), h.clone(), t.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    *t.lock().unwrap() = req
                        .headers()
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let set = JwkSet {
                        keys: k.lock().unwrap().clone(),
                    };
                    HttpResponse::Ok().json(set)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    JwksServer {
        url: format!("http://127.0.0.1:{port}/jwks.json"),
        keys,
        hits,
        traceparent,
    }
}

fn validator(url: &str, alg: &str) -> JwtValidator {
    let mut s = JwtSettings::new(url);
    s.algorithm = alg.into();
    s.leeway_secs = 0;
    JwtValidator::new(s).unwrap()
}

#[actix_web::test]
async fn valid_rs256_token_is_accepted_and_cached() {
    let key = rsa_key(0);
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let v = validator(&server.url, "RS256");
    let c = claims();
    let token = sign(key, &c);
    let got = v.verify(&token).await.unwrap();
    assert_eq!(*got, c);
    assert!(got.has_scope("content:write") && !got.has_scope("content"));
    // Second verification hits the claims cache and the key cache: no new fetch.
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn valid_eddsa_token_is_accepted() {
    let key = ed_key();
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let v = validator(&server.url, "EdDSA");
    assert_eq!(
        v.verify(&sign(key, &claims())).await.unwrap().sub,
        claims().sub
    );
    // …and an RS256 validator refuses EdDSA tokens.
    let rs = validator(&server.url, "RS256");
    assert_eq!(
        rs.verify(&sign(key, &claims())).await,
        Err(JwtError::Algorithm)
    );
}

#[actix_web::test]
async fn bad_tokens_are_refused_with_the_right_reason() {
    let key = rsa_key(0);
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let v = validator(&server.url, "RS256");

    let mut c = claims();
    c.exp = now() - 10;
    c.iat = now() - 1000;
    c.nbf = now() - 1000;
    assert_eq!(v.verify(&sign(key, &c)).await, Err(JwtError::Expired));

    let mut c = claims();
    c.nbf = now() + 300;
    assert_eq!(v.verify(&sign(key, &c)).await, Err(JwtError::NotYetValid));

    let mut c = claims();
    c.aud = "someone-else".into();
    assert_eq!(v.verify(&sign(key, &c)).await, Err(JwtError::Audience));

    let mut c = claims();
    c.iss = "https://evil.example".into();
    assert_eq!(v.verify(&sign(key, &c)).await, Err(JwtError::Issuer));

    let mut c = claims();
    c.typ = "refresh".into();
    assert_eq!(v.verify(&sign(key, &c)).await, Err(JwtError::WrongType));

    // Signed by a key the JWKS does not hold, but claiming a kid it does.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_rsa_pem(rsa_key(1).pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(v.verify(&forged).await, Err(JwtError::Signature));

    // A tampered payload breaks the signature.
    let token = sign(key, &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = claims();
    evil.roles = vec!["admin".into()];
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_value(&evil).unwrap()),
        parts[2]
    );
    assert_eq!(v.verify(&tampered).await, Err(JwtError::Signature));

    assert_eq!(v.verify("not-a-jwt").await, Err(JwtError::Malformed));
}

#[actix_web::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let key = rsa_key(0);
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let v = validator(&server.url, "RS256");
    let payload = serde_json::to_value(claims()).unwrap();

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg":"none","typ":"JWT","kid": key.kid})),
        b64(&payload)
    );
    assert!(matches!(
        v.verify(&none).await,
        Err(JwtError::Malformed | JwtError::Algorithm)
    ));

    // The classic confusion attack: HMAC keyed with the RSA public key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let hs = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(key.public_pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(v.verify(&hs).await, Err(JwtError::Algorithm));

    // No kid at all.
    let header = Header::new(Algorithm::RS256);
    let no_kid = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(v.verify(&no_kid).await, Err(JwtError::MissingKid));
}

#[actix_web::test]
async fn unknown_kid_refetches_at_most_once_per_interval_and_finds_rotated_keys() {
    let (old, new) = (rsa_key(0), rsa_key(1));
    let server = jwks_server(vec![old.jwk.clone()]).await;
    let mut settings = JwtSettings::new(&server.url);
    settings.min_refetch_secs = 1;
    let v = JwtValidator::new(settings).unwrap();
    v.verify(&sign(old, &claims())).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // A token with a kid nobody published: one re-fetch once the interval since the
    // last fetch has passed, then rate limited.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let stranger = sign(new, &claims());
    assert_eq!(v.verify(&stranger).await, Err(JwtError::UnknownKey));
    for _ in 0..20 {
        assert_eq!(
            v.verify(&sign(new, &claims())).await,
            Err(JwtError::UnknownKey)
        );
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "re-fetches must be rate limited"
    );

    // The auth service rotates: the new key shows up once the interval has passed.
    server.keys.lock().unwrap().push(new.jwk.clone());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    v.verify(&sign(new, &claims())).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);
}

#[actix_web::test]
async fn a_jwks_fetch_made_while_serving_a_request_carries_its_trace() {
    use peermesh_common::trace::{scope, TraceContext};
    let key = rsa_key(0);
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let v = validator(&server.url, "RS256");
    let trace = TraceContext::continue_from(Some(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ));
    scope(trace.clone(), v.verify(&sign(key, &claims())))
        .await
        .unwrap();
    assert_eq!(
        server.traceparent.lock().unwrap().as_deref(),
        Some(trace.traceparent().as_str())
    );
    // Outside any traced work (e.g. readiness at start-up) nothing is invented.
    let v = validator(&server.url, "RS256");
    v.refresh(true).await.unwrap();
    assert_eq!(*server.traceparent.lock().unwrap(), None);
}

#[actix_web::test]
async fn unreachable_jwks_is_reported_as_unavailable() {
    let v = validator("http://127.0.0.1:9/jwks.json", "RS256");
    assert!(matches!(
        v.ensure_keys().await,
        Err(JwtError::KeysUnavailable(_))
    ));
    assert!(matches!(
        v.verify(&sign(rsa_key(0), &claims())).await,
        Err(JwtError::KeysUnavailable(_))
    ));
}

async fn whoami(p: Principal) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sub": p.subject(), "admin": p.is_admin()}))
}

#[actix_web::test]
async fn principal_extractor_answers_401_problems() {
    let key = rsa_key(0);
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let v = web::Data::new(validator(&server.url, "RS256"));
    let app = actix_web::test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(|req, next| {
                peermesh_common::middleware::request_context(
                    peermesh_common::logging::discard(),
                    peermesh_common::metrics::Metrics::new("test").unwrap(),
                    None,
                    req,
                    next,
                )
            }))
            .app_data(v.clone())
            .route("/me", web::get().to(whoami)),
    )
    .await;

    let req = actix_web::test::TestRequest::get().uri("/me").to_request();
    let resp = actix_web::test::call_service(&app, req).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let rid = resp
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = actix_web::test::read_body_json(resp).await;
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["request_id"], rid);

    let mut expired = claims();
    expired.exp = now() - 60;
    expired.nbf = now() - 600;
    let req = actix_web::test::TestRequest::get()
        .uri("/me")
        .insert_header(("Authorization", format!("Bearer {}", sign(key, &expired))))
        .to_request();
    let resp = actix_web::test::call_service(&app, req).await;
    assert_eq!(resp.status(), 401);
    assert!(resp
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let body: Value = actix_web::test::read_body_json(resp).await;
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["detail"], "the token has expired");

    let req = actix_web::test::TestRequest::get()
        .uri("/me")
        .insert_header(("Authorization", "Basic dXNlcjpwYXNz"))
        .to_request();
    assert_eq!(actix_web::test::call_service(&app, req).await.status(), 401);

    let req = actix_web::test::TestRequest::get()
        .uri("/me")
        .insert_header(("Authorization", format!("bearer {}", sign(key, &claims()))))
        .to_request();
    let resp = actix_web::test::call_service(&app, req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = actix_web::test::read_body_json(resp).await;
    assert_eq!(body, json!({"sub": claims().sub, "admin": false}));
}

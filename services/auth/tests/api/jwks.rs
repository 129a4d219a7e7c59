use jsonwebtoken::{Algorithm, EncodingKey, Header};
use peermesh_common::jwt::{Claims, JwtError, JwtSettings, JwtValidator};
use peermesh_test_stack::spawn::{jwks_url, spawn_auth};
use peermesh_test_support::keys;
use serde_json::Value;

fn claims() -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "peermesh-auth".into(),
        aud: "peermesh".into(),
        sub: "user-1".into(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: "j1".into(),
        typ: "access".into(),
        roles: vec!["user".into()],
        scope: String::new(),
        sid: None,
        act_for: None,
    }
}

/// The published key is the public half of AUTH_SIGNING_KEY_FILE: a token signed with
/// that file's key verifies against the JWKS, one signed with another key does not.
#[actix_web::test]
async fn jwks_publishes_the_signing_key() {
    let app = spawn_auth(&[]).await;
    let resp = app.client.get("/api/v1/auth/.well-known/jwks.json").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(
        key.get("d").is_none(),
        "private parts must never be published"
    );
    let kid = key["kid"].as_str().unwrap().to_owned();
    assert_issued_tokens_verify(&app, "RS256").await;

    let validator = JwtValidator::new(JwtSettings::new(jwks_url(&app))).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.clone());
    let good = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_rsa_pem(keys::rsa_key().pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(validator.verify(&good).await.unwrap().sub, "user-1");
    let bad = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_rsa_pem(keys::other_rsa_key().pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(validator.verify(&bad).await, Err(JwtError::Signature));
}

#[actix_web::test]
async fn ed25519_keys_publish_okp_jwks() {
    let app = spawn_auth(&[(
        "SIGNING_KEY_FILE",
        keys::ed25519_key().path.display().to_string(),
    )])
    .await;
    let body: Value = app
        .client
        .get("/api/v1/auth/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key["kid"].as_str().is_some_and(|k| k.len() >= 40));
    assert_issued_tokens_verify(&app, "EdDSA").await;
}

/// An access token the service issues verifies against its JWKS with the common
/// validator: the service signs with the key it publishes, in the algorithm it names.
async fn assert_issued_tokens_verify(app: &peermesh_test_stack::spawn::Spawned, algorithm: &str) {
    let resp = app
        .client
        .post_json(
            "/api/v1/auth/register",
            &serde_json::json!({"email": "signed@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(format!("{:?}", header.alg), algorithm);
    let mut settings = JwtSettings::new(jwks_url(app));
    settings.algorithm = algorithm.into();
    let validator = JwtValidator::new(settings).unwrap();
    let claims = validator.verify(token).await.unwrap();
    assert_eq!(claims.sub, body["user"]["id"].as_str().unwrap());
    assert_eq!(claims.typ, "access");
}

#[test]
fn a_missing_key_file_is_a_clear_start_up_error() {
    let err = peermesh_common::config::load::<peermesh_auth::Settings>(vec![]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing required environment variable AUTH_SIGNING_KEY_FILE"
    );
    let err = peermesh_auth::keys::KeyRing::load("/nonexistent/key.pem", None)
        .err()
        .unwrap();
    assert!(
        err.contains("AUTH_SIGNING_KEY_FILE /nonexistent/key.pem"),
        "{err}"
    );
    let err = peermesh_auth::keys::KeyRing::from_pem(b"-----BEGIN NONSENSE-----")
        .err()
        .unwrap();
    assert!(err.contains("not an RSA or Ed25519 private key"), "{err}");
}

/// Rotation: the new key signs, the old one stays published, so tokens issued before
/// the switch keep verifying until they expire.
#[actix_web::test]
async fn previous_keys_stay_published_during_a_rotation() {
    use peermesh_test_support::auth::{register, unique_email};
    let old = spawn_auth(&[(
        "SIGNING_KEY_FILE",
        keys::other_rsa_key().path.display().to_string(),
    )])
    .await;
    let before = register(&old.client, &unique_email("rot")).await;

    let new = spawn_auth(&[(
        "PUBLISHED_KEY_FILES",
        format!(" {} ,", keys::other_rsa_key().path.display()),
    )])
    .await;
    let body: Value = new
        .client
        .get("/api/v1/auth/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["keys"].as_array().unwrap().len(), 2);
    let validator = JwtValidator::new(JwtSettings::new(jwks_url(&new))).unwrap();
    assert_eq!(
        validator.verify(&before.access_token).await.unwrap().sub,
        before.id
    );
    let after = register(&new.client, &unique_email("rot")).await;
    validator.verify(&after.access_token).await.unwrap();

    let err = peermesh_auth::keys::KeyRing::load(
        &keys::rsa_key().path.display().to_string(),
        Some("/nonexistent.pem"),
    )
    .err()
    .unwrap();
    assert!(
        err.contains("AUTH_PUBLISHED_KEY_FILES /nonexistent.pem"),
        "{err}"
    );
}

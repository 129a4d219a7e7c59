//! Access-token validation against the auth service's JWKS: keys fetched over HTTP and
//! cached (re-fetched on an unknown `kid`, rate limited), verified claims cached per
//! token until `exp` in a bounded cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

/// The claims of a PeerMesh access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id, or client id for service tokens.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// Always `access` for tokens this validator accepts.
    pub typ: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Space separated.
    #[serde(default)]
    pub scope: String,
    /// The refresh family the token came from (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Service tokens only: the user this client may act for (`X-On-Behalf-Of`), minted
    /// by auth for a delegation that user gave (see auth's token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_for: Option<String>,
}

impl Claims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split_whitespace().any(|s| s == scope)
    }
}

/// Why a token was refused. The text is safe to show to the client.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token has no key id")]
    MissingKid,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// Validator settings, read with the service's prefix (`CONTENT_JWKS_URL`, …).
#[derive(Debug, Clone, Deserialize)]
pub struct JwtSettings {
    /// Where the auth service publishes its keys.
    #[serde(default = "default_jwks_url")]
    pub jwks_url: String,
    #[serde(default = "default_issuer", rename = "jwt_issuer")]
    pub issuer: String,
    #[serde(default = "default_audience", rename = "jwt_audience")]
    pub audience: String,
    /// `RS256` (default) or `EdDSA`; only this one is accepted.
    #[serde(default = "default_algorithm", rename = "jwt_algorithm")]
    pub algorithm: String,
    /// Allowed clock skew, in seconds.
    #[serde(default = "default_leeway", rename = "jwt_leeway_secs")]
    pub leeway_secs: u64,
    /// Unknown-kid re-fetches happen at most this often.
    #[serde(default = "default_refetch", rename = "jwks_min_refetch_secs")]
    pub min_refetch_secs: u64,
    /// Keys are re-fetched when older than this, even without an unknown kid.
    #[serde(default = "default_jwks_ttl", rename = "jwks_ttl_secs")]
    pub ttl_secs: u64,
    #[serde(default = "default_cache_capacity", rename = "jwt_cache_capacity")]
    pub cache_capacity: u64,
}

pub const DEFAULT_ISSUER: &str = "peermesh-auth";
pub const DEFAULT_AUDIENCE: &str = "peermesh";

fn default_jwks_url() -> String {
    "http://127.0.0.1:8081/api/v1/auth/.well-known/jwks.json".into()
}
fn default_issuer() -> String {
    DEFAULT_ISSUER.into()
}
fn default_audience() -> String {
    DEFAULT_AUDIENCE.into()
}
fn default_algorithm() -> String {
    "RS256".into()
}
fn default_leeway() -> u64 {
    5
}
fn default_refetch() -> u64 {
    10
}
fn default_jwks_ttl() -> u64 {
    900
}
fn default_cache_capacity() -> u64 {
    50_000
}

impl JwtSettings {
    pub fn new(jwks_url: impl Into<String>) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            issuer: default_issuer(),
            audience: default_audience(),
            algorithm: default_algorithm(),
            leeway_secs: default_leeway(),
            min_refetch_secs: default_refetch(),
            ttl_secs: default_jwks_ttl(),
            cache_capacity: default_cache_capacity(),
        }
    }
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(format!(
            "unsupported JWT algorithm {other:?}: use RS256 or EdDSA"
        )),
    }
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    /// Keys given at construction (the auth service's own): never fetched.
    pinned: bool,
}

struct Inner {
    settings: JwtSettings,
    algorithm: Algorithm,
    validation: Validation,
    http: reqwest::Client,
    keys: RwLock<KeySet>,
    /// Serialises fetches and remembers when the last one started.
    last_fetch: Mutex<Option<Instant>>,
    cache: moka::sync::Cache<[u8; 32], Arc<Claims>>,
}

/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

struct UntilExp;

impl moka::Expiry<[u8; 32], Arc<Claims>> for UntilExp {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        claims: &Arc<Claims>,
        _: Instant,
    ) -> Option<Duration> {
        let left = claims.exp - chrono::Utc::now().timestamp();
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

impl JwtValidator {
    pub fn new(settings: JwtSettings) -> Result<Self, String> {
        let algorithm = parse_algorithm(&settings.algorithm)?;
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the JWKS client: {e}"))?;
        let cache = moka::sync::Cache::builder()
            .max_capacity(settings.cache_capacity)
            .expire_after(UntilExp)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                algorithm,
                validation,
                http,
                keys: RwLock::new(KeySet::default()),
                last_fetch: Mutex::new(None),
                cache,
            }),
        })
    }

    /// A validator for the keys in hand (the auth service verifying its own tokens):
    /// nothing is fetched.
    pub fn from_jwks(settings: JwtSettings, jwks: &JwkSet) -> Result<Self, String> {
        let validator = Self::new(settings)?;
        let keys = validator.usable_keys(jwks);
        if keys.is_empty() {
            return Err("the JWKS holds no key for the configured algorithm".into());
        }
        {
            let mut set = validator
                .inner
                .keys
                .try_write()
                .map_err(|_| "key set busy at construction".to_owned())?;
            set.keys = keys;
            set.fetched_at = Some(Instant::now());
            set.pinned = true;
        }
        Ok(validator)
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.inner.settings
    }

    /// The answer for a token verified before (its claims, or `Expired` once they
    /// have lapsed), without waiting on anything; `None` when it must be verified.
    pub fn cached(&self, token: &str) -> Option<Result<Arc<Claims>, JwtError>> {
        self.cached_digest(&Sha256::digest(token.as_bytes()).into())
    }

    /// [`Self::cached`] by the token's SHA-256, the cache's key.
    fn cached_digest(&self, digest: &[u8; 32]) -> Option<Result<Arc<Claims>, JwtError>> {
        let claims = self.inner.cache.get(digest)?;
        if claims.exp + self.inner.settings.leeway_secs as i64 > chrono::Utc::now().timestamp() {
            return Some(Ok(claims));
        }
        self.inner.cache.invalidate(digest);
        Some(Err(JwtError::Expired))
    }

    /// Verifies an access token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, JwtError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.cached_digest(&digest) {
            return answer;
        }

        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != self.inner.algorithm {
            return Err(JwtError::Algorithm);
        }
        if let Some(typ) = header.typ.as_deref() {
            if !typ.eq_ignore_ascii_case("JWT") && !typ.eq_ignore_ascii_case("at+jwt") {
                return Err(JwtError::WrongType);
            }
        }
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self.key_for(&kid).await?;

        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map_err(map_jwt_error)?;
        let claims = data.claims;
        if claims.typ != "access" {
            return Err(JwtError::WrongType);
        }
        let claims = Arc::new(claims);
        self.inner.cache.insert(digest, claims.clone());
        Ok(claims)
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, JwtError> {
        {
            let keys = self.inner.keys.read().await;
            let fresh = keys.pinned
                || keys.fetched_at.is_some_and(|t| {
                    t.elapsed() < Duration::from_secs(self.inner.settings.ttl_secs)
                });
            if let Some(key) = keys.keys.get(kid) {
                if fresh {
                    return Ok(key.clone());
                }
            }
        }
        // Unknown kid or stale keys: re-fetch (rate limited); stale keys stay usable
        // when the auth service cannot be reached.
        let fetch_error = self.refresh(false).await.err();
        let keys = self.inner.keys.read().await;
        match (keys.keys.get(kid), fetch_error) {
            (Some(key), _) => Ok(key.clone()),
            (None, Some(err)) if keys.fetched_at.is_none() => Err(err),
            (None, None) if keys.fetched_at.is_none() => Err(JwtError::KeysUnavailable(
                "signing keys have not been fetched yet".into(),
            )),
            (None, _) => Err(JwtError::UnknownKey),
        }
    }

    /// The readiness check: keys are loaded (fetched now if they are not).
    pub fn ready_check(
        &self,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
           + Send
           + Sync
           + 'static {
        let validator = self.clone();
        move || {
            let validator = validator.clone();
            Box::pin(async move {
                validator
                    .ensure_keys()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }
    }

    /// Makes sure keys are loaded (readiness): fetches them if none are.
    pub async fn ensure_keys(&self) -> Result<usize, JwtError> {
        {
            let keys = self.inner.keys.read().await;
            if keys.fetched_at.is_some() && !keys.keys.is_empty() {
                return Ok(keys.keys.len());
            }
        }
        self.refresh(false).await?;
        let keys = self.inner.keys.read().await;
        if keys.keys.is_empty() {
            return Err(JwtError::KeysUnavailable(
                "the JWKS holds no usable key".into(),
            ));
        }
        Ok(keys.keys.len())
    }

    /// Fetches the JWKS unless a fetch started less than `min_refetch_secs` ago
    /// (`force` skips that check; used by tests and start-up).
    pub async fn refresh(&self, force: bool) -> Result<(), JwtError> {
        if self.inner.keys.read().await.pinned {
            return Ok(());
        }
        let mut last = self.inner.last_fetch.lock().await;
        let min = Duration::from_secs(self.inner.settings.min_refetch_secs);
        if !force && last.is_some_and(|t| t.elapsed() < min) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let keys = self.fetch().await?;
        let mut set = self.inner.keys.write().await;
        set.keys = keys;
        set.fetched_at = Some(Instant::now());
        Ok(())
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, JwtError> {
        let unavailable = |e: String| JwtError::KeysUnavailable(e);
        let resp = crate::trace::propagate(self.inner.http.get(&self.inner.settings.jwks_url))
            .send()
            .await
            .map_err(|e| unavailable(format!("fetching JWKS: {e}")))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("JWKS answered {}", resp.status())));
        }
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("parsing JWKS: {e}")))?;
        Ok(self.usable_keys(&set))
    }

    /// The keys of `set` that have a kid and fit the configured algorithm.
    fn usable_keys(&self, set: &JwkSet) -> HashMap<String, DecodingKey> {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let family_fits = matches!(
                (&jwk.algorithm, self.inner.algorithm),
                (AlgorithmParameters::RSA(_), Algorithm::RS256)
                    | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
            );
            if !family_fits {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, key);
            }
        }
        keys
    }
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> JwtError {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::Issuer,
        ErrorKind::InvalidAudience => JwtError::Audience,
        ErrorKind::InvalidSignature => JwtError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtError::Algorithm,
        ErrorKind::MissingRequiredClaim(_) => JwtError::MissingClaim,
        _ => JwtError::Malformed,
    }
}

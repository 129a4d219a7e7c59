//! Issuing access tokens (JWT, signed with the key ring's current key) and opaque
//! refresh tokens (256 random bits, stored only as SHA-256 hashes).

use std::sync::Arc;

use base64::Engine as _;
use peermesh_common::jwt::Claims;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::keys::KeyRing;

pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
}

impl TokenIssuer {
    pub fn new(keys: Arc<KeyRing>, issuer: String, audience: String, access_ttl_secs: i64) -> Self {
        Self {
            keys,
            issuer,
            audience,
            access_ttl_secs,
        }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    /// [`TokenIssuer::access_token`] on the blocking pool: an RSA signature takes
    /// about a millisecond, which must not stall an async worker's other requests.
    pub async fn sign(
        self: &Arc<Self>,
        sub: String,
        roles: Vec<String>,
        scope: String,
        sid: Option<String>,
    ) -> Result<String, String> {
        let issuer = self.clone();
        tokio::task::spawn_blocking(move || issuer.access_token(&sub, roles, scope, sid))
            .await
            .map_err(|e| e.to_string())?
    }

    /// A signed access token for `sub`.
    pub fn access_token(
        &self,
        sub: &str,
        roles: Vec<String>,
        scope: String,
        sid: Option<String>,
    ) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            exp: now + self.access_ttl_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            typ: "access".into(),
            roles,
            scope,
            sid,
        };
        self.keys.sign(&claims)
    }
}

/// 32 random bytes, URL-safe base64, with a prefix that makes leaked tokens easy to spot.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How opaque secrets are stored. They carry 256 random bits, so a fast hash is
/// enough: there is nothing to brute-force.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashes_stable() {
        let a = random_secret("pmr_");
        let b = random_secret("pmr_");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_eq!(secret_hash(&a).len(), 64);
    }
}

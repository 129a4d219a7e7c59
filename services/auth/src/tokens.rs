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
    pub async fn sign(self: &Arc<Self>, grant: AccessGrant) -> Result<String, String> {
        let issuer = self.clone();
        tokio::task::spawn_blocking(move || issuer.access_token(grant))
            .await
            .map_err(|e| e.to_string())?
    }

    /// A signed access token for `grant`.
    pub fn access_token(&self, grant: AccessGrant) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: grant.sub,
            exp: now + self.access_ttl_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            typ: "access".into(),
            roles: grant.roles,
            scope: grant.scope,
            sid: grant.sid,
            act_for: grant.act_for,
        };
        self.keys.sign(&claims)
    }
}

/// Whom an access token is for and what it carries.
#[derive(Debug, Clone, Default)]
pub struct AccessGrant {
    /// The user, or the client of a service token.
    pub sub: String,
    pub roles: Vec<String>,
    /// Space separated.
    pub scope: String,
    /// The refresh family (user tokens).
    pub sid: Option<String>,
    /// The user a service token acts for (a delegation).
    pub act_for: Option<String>,
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

/// The pad that seals a refresh token's successor: HMAC-SHA-256 keyed with the
/// rotated token itself, so only someone who presents that token can open it (the
/// database holds the token's plain SHA-256, a different function of it).
fn successor_pad(token: &str) -> [u8; 32] {
    use hmac::Mac as _;
    let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"peermesh refresh successor v1");
    mac.finalize().into_bytes().into()
}

/// Seals `successor` (a [`random_secret`] with `prefix`) under `token`: hex of its 32
/// random bytes XOR the token's pad. Each pad seals exactly one successor.
pub fn seal_successor(token: &str, prefix: &str, successor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(successor.strip_prefix(prefix)?)
        .ok()?;
    let pad = successor_pad(token);
    (bytes.len() == pad.len()).then(|| {
        hex::encode(
            bytes
                .iter()
                .zip(pad)
                .map(|(b, p)| b ^ p)
                .collect::<Vec<u8>>(),
        )
    })
}

/// Opens what [`seal_successor`] sealed under `token`.
pub fn open_successor(token: &str, prefix: &str, sealed: &str) -> Option<String> {
    let bytes = hex::decode(sealed).ok()?;
    let pad = successor_pad(token);
    (bytes.len() == pad.len()).then(|| {
        let plain: Vec<u8> = bytes.iter().zip(pad).map(|(b, p)| b ^ p).collect();
        format!(
            "{prefix}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_successor_opens_only_with_its_token() {
        let (token, next) = (random_secret("pmr_"), random_secret("pmr_"));
        let sealed = seal_successor(&token, "pmr_", &next).unwrap();
        assert_eq!(
            open_successor(&token, "pmr_", &sealed).as_deref(),
            Some(next.as_str())
        );
        let other = random_secret("pmr_");
        assert_ne!(
            open_successor(&other, "pmr_", &sealed).as_deref(),
            Some(next.as_str())
        );
        // Neither the successor nor its hash is readable in what is stored.
        assert!(!sealed.contains(&secret_hash(&next)));
        assert_eq!(seal_successor(&token, "pmr_", "pmr_short"), None);
        assert_eq!(open_successor(&token, "pmr_", "zz"), None);
    }

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

//! The signing key (from `AUTH_SIGNING_KEY_FILE`) and the public JWKS built from it.

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey};

/// The key tokens are signed with, and every public key currently published.
pub struct KeyRing {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwks: JwkSet,
}

impl KeyRing {
    /// Reads a PEM private key: RSA (PKCS#1 or PKCS#8) signs RS256, Ed25519 signs EdDSA.
    pub fn load(path: &str) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("reading AUTH_SIGNING_KEY_FILE {path}: {e}"))?;
        Self::from_pem(&pem).map_err(|e| format!("AUTH_SIGNING_KEY_FILE {path}: {e}"))
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let (encoding, algorithm) = match EncodingKey::from_rsa_pem(pem) {
            Ok(key) => (key, Algorithm::RS256),
            Err(_) => match EncodingKey::from_ed_pem(pem) {
                Ok(key) => (key, Algorithm::EdDSA),
                Err(_) => return Err("not an RSA or Ed25519 private key in PEM form".into()),
            },
        };
        let mut jwk = match algorithm {
            Algorithm::EdDSA => ed25519_jwk(pem)?,
            _ => Jwk::from_encoding_key(&encoding, algorithm)
                .map_err(|e| format!("deriving the public key: {e}"))?,
        };
        // The kid is the RFC 7638 thumbprint: stable for the key, unique across keys.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            algorithm,
            encoding,
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    pub fn current_kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }
}

/// jsonwebtoken cannot derive an Ed25519 JWK from a private key, so build it here.
fn ed25519_jwk(pem: &[u8]) -> Result<Jwk, String> {
    let pem = std::str::from_utf8(pem).map_err(|_| "the key file is not UTF-8 PEM".to_owned())?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
        .map_err(|e| format!("reading the Ed25519 key: {e}"))?;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    Ok(Jwk {
        common: CommonParameters {
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x,
        }),
    })
}

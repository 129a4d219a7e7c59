//! The signing key (from `AUTH_SIGNING_KEY_FILE`) and the public JWKS: the signing
//! key's public half plus any older keys still published during a rotation.

use aws_lc_rs::signature::{Ed25519KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::traits::PublicKeyParts as _;

/// The key tokens are signed with, and every public key currently published.
pub struct KeyRing {
    kid: String,
    algorithm: Algorithm,
    signing: SigningKey,
    jwks: JwkSet,
}

/// The private key, parsed once. `jsonwebtoken::encode` takes the key's bytes and
/// parses (and, for RSA, checks) them again for every token: 0.8 of the 1.06 ms an
/// RS256 token cost here, paid by every login, refresh and client token.
enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl KeyRing {
    /// Reads the signing key, and the comma-separated `published` files whose public
    /// keys are published beside it.
    pub fn load(path: &str, published: Option<&str>) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("reading AUTH_SIGNING_KEY_FILE {path}: {e}"))?;
        let mut ring =
            Self::from_pem(&pem).map_err(|e| format!("AUTH_SIGNING_KEY_FILE {path}: {e}"))?;
        for extra in published
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let pem = std::fs::read(extra)
                .map_err(|e| format!("reading AUTH_PUBLISHED_KEY_FILES {extra}: {e}"))?;
            let jwk =
                public_jwk(&pem).map_err(|e| format!("AUTH_PUBLISHED_KEY_FILES {extra}: {e}"))?;
            let kid = jwk.common.key_id.clone();
            if !ring.jwks.keys.iter().any(|k| k.common.key_id == kid) {
                ring.jwks.keys.push(jwk);
            }
        }
        Ok(ring)
    }

    /// A PEM private key: RSA (PKCS#1 or PKCS#8) signs RS256, Ed25519 signs EdDSA.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        // jsonwebtoken reads the PEM (PKCS#1 or PKCS#8) into the DER its backend takes.
        let (signing, algorithm) = if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            let pair = RsaKeyPair::from_der(key.inner())
                .map_err(|e| format!("the RSA private key is not usable: {e}"))?;
            (SigningKey::Rsa(pair), Algorithm::RS256)
        } else if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            let pair = Ed25519KeyPair::from_pkcs8(key.inner())
                .map_err(|e| format!("the Ed25519 private key is not usable: {e}"))?;
            (SigningKey::Ed25519(pair), Algorithm::EdDSA)
        } else {
            return Err("not an RSA or Ed25519 private key in PEM form".into());
        };
        let jwk = public_jwk(pem)?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        Ok(Self {
            kid,
            algorithm,
            signing,
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    /// A JWS compact serialisation of `claims` (RFC 7515 §7.1) under the current key,
    /// with `alg`, `kid` and `typ: JWT` in its header.
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut token = format!("{}.{}", b64(&header), b64(&claims));
        let signature = match &self.signing {
            SigningKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(|e| format!("signing: {e}"))?;
                signature
            }
            SigningKey::Ed25519(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }

    pub fn current_kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }
}

/// The public JWK of a PEM key (private or public, RSA or Ed25519), with its RFC 7638
/// thumbprint as `kid`.
pub fn public_jwk(pem: &[u8]) -> Result<Jwk, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the key file is not PEM text".to_owned())?;
    let (algorithm, key_algorithm) = if let Some((n, e)) = rsa_components(text) {
        let params = AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: b64(&n),
            e: b64(&e),
        });
        (params, KeyAlgorithm::RS256)
    } else if let Some(x) = ed25519_public(text) {
        let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: b64(&x),
        });
        (params, KeyAlgorithm::EdDSA)
    } else {
        return Err("not an RSA or Ed25519 key in PEM form".into());
    };
    let mut jwk = Jwk {
        common: CommonParameters {
            key_algorithm: Some(key_algorithm),
            public_key_use: Some(PublicKeyUse::Signature),
            ..Default::default()
        },
        algorithm,
    };
    jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256));
    Ok(jwk)
}

fn rsa_components(pem: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
    use rsa::pkcs8::DecodePrivateKey as _;
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map(|k| k.to_public_key())
        .or_else(|_| rsa::RsaPublicKey::from_public_key_pem(pem))
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
        .ok()?;
    Some((public.n().to_bytes_be(), public.e().to_bytes_be()))
}

fn ed25519_public(pem: &str) -> Option<[u8; 32]> {
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
        .map(|k| k.verifying_key())
        .or_else(|_| ed25519_dalek::VerifyingKey::from_public_key_pem(pem))
        .ok()
        .map(|k| k.to_bytes())
}

/// The kinds of signing key `peermesh-auth keys rotate` makes.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    Rsa,
    Ed25519,
}

/// A new private key as PKCS#8 PEM (what `scripts/gen-keys` writes with openssl).
pub fn generate_pem(kind: KeyKind) -> Result<String, String> {
    use aws_lc_rs::encoding::AsDer;
    use base64::Engine as _;
    let failed = |_| "key generation failed".to_owned();
    let der: Vec<u8> = match kind {
        KeyKind::Rsa => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .and_then(|pair| pair.as_der())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        KeyKind::Ed25519 => aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(failed)?
        .as_ref()
        .to_vec(),
    };
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

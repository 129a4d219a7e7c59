//! Signing keys for tests, generated once per test process.

use std::path::PathBuf;
use std::sync::OnceLock;

use rsa::pkcs8::{EncodePrivateKey, LineEnding};

/// A private key in PEM form and a file holding it.
pub struct TestKey {
    pub pem: String,
    pub path: PathBuf,
}

fn keys_dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir for keys"))
}

fn write(name: &str, pem: String) -> TestKey {
    let path = keys_dir().path().join(name);
    std::fs::write(&path, &pem).expect("write key file");
    TestKey { pem, path }
}

/// An RSA 2048 key (RS256), PKCS#8.
pub fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| write("rsa.pem", generate_rsa_pem()))
}

/// A second RSA key, for "signed by someone else" cases.
pub fn other_rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| write("rsa-other.pem", generate_rsa_pem()))
}

/// An Ed25519 key (EdDSA), PKCS#8.
pub fn ed25519_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encode ed25519 key")
            .to_string();
        write("ed25519.pem", pem)
    })
}

pub fn generate_rsa_pem() -> String {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("generate RSA key");
    key.to_pkcs8_pem(LineEnding::LF)
        .expect("encode RSA key")
        .to_string()
}

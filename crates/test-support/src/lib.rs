//! Dev-only helpers for the services' tests that know no service: a fresh database per
//! test (SQLite file or a new PostgreSQL database), signing keys, a typed HTTP client,
//! a real nginx gateway and local stand-ins for outside providers. Starting the
//! services themselves is `peermesh-test-stack`'s.

// Dev-only: a failed set-up step is a failed test, so panicking is the right answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod auth;
pub mod client;
pub mod contract;
pub mod db;
pub mod dns;
pub mod embedding_model;
pub mod gateway;
pub mod keys;
pub mod logs;
pub mod mail;
pub mod metrics;
pub mod process;
pub mod providers;
pub mod receiver;

pub use client::TestClient;
pub use db::{TestBackend, TestDb};
pub use gateway::Gateway;

/// The workspace root (for deploy/ and migrations/).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// A loopback port nobody listens on right now (for a service that must know its
/// port in advance, or a server that is down).
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768 and up), where every port-0 listener
    // and outgoing connection of the tests running meanwhile gets its port: a port
    // picked from there could be taken again before the service binds it (seen: a
    // test's ingestion failed to start with "Address already in use"). Each test
    // process walks 20000..32000 from its own random start.
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        rand::random::<u32>() % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT)
}

/// A service binary of this workspace, built beside the running test binary
/// (`target/<profile>/<name>`; `cargo test --workspace` builds every one).
pub fn service_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is not built; run `cargo build -p {name}` (or the whole workspace's tests)",
        binary.display()
    );
    binary
}

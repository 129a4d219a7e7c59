//! `scripts/run` as a new user runs it, on a gateway port other than the default, with
//! Google configured: the provider is sent back to the gateway on that port, and the
//! sign-in goes through end to end. (The script starts the already built binaries:
//! `--no-build`, from the test's own target folder.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peermesh_test_support::providers::{
    browser_sign_in, FakeProvider, ProviderUser, CLIENT_ID, CLIENT_SECRET,
};
use peermesh_test_support::{free_port, service_binary, workspace_root};
use serde_json::json;

const APP: &str = "http://app.example.test/signed-in";

#[actix_web::test]
async fn scripts_run_on_another_gateway_port_signs_in_with_google() {
    let google = FakeProvider::oidc();
    let port = free_port();
    let dirs = tempfile::tempdir().unwrap();
    let log = dirs.path().join("run.log");
    let bin_dir = service_binary("peermesh-auth")
        .parent()
        .unwrap()
        .to_path_buf();
    let mut run = Command::new(workspace_root().join("scripts/run"))
        .arg("--no-build")
        .env("PEERMESH_BIN_DIR", &bin_dir)
        .env("PEERMESH_DEV_DIR", dirs.path().join("dev"))
        .env("PEERMESH_DATA_DIR", dirs.path().join("data"))
        .env("GATEWAY_PORT", port.to_string())
        .env("AUTH_PORT", free_port().to_string())
        .env("INGEST_PORT", free_port().to_string())
        .env("CONTENT_PORT", free_port().to_string())
        .env("AUTH_GOOGLE_CLIENT_ID", CLIENT_ID)
        .env("AUTH_GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
        .env("AUTH_GOOGLE_ISSUER_URL", &google.base)
        .env("AUTH_OAUTH_REDIRECT_ALLOWLIST", APP)
        .env_remove("AUTH_OAUTH_CALLBACK_BASE_URL")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dirs.path().join("run.err")).unwrap())
        .spawn()
        .unwrap();

    let public = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = reqwest::get(format!("{public}/api/v1/auth/ready")).await {
            if resp.status() == 200 {
                break;
            }
        }
        if let Some(status) = run.try_wait().unwrap() {
            panic!(
                "scripts/run exited ({status}): {}",
                std::fs::read_to_string(dirs.path().join("run.err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "scripts/run never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let email = format!("run-{}@example.com", uuid::Uuid::new_v4().simple());
    google.sign_in_as(Some(ProviderUser::new("run-1", &email, true)));
    let signed_in = browser_sign_in(&public, "google", APP).await;
    let expected = format!("http://localhost:{port}/api/v1/auth/oauth/google/callback");
    assert_eq!(google.last_request()["redirect_uri"], expected);
    assert!(
        signed_in.callback.as_str().starts_with(&expected),
        "{}",
        signed_in.callback
    );
    assert_eq!(signed_in.tokens["user"]["email"], email);
    assert_eq!(signed_in.tokens["user"]["identities"], json!(["google"]));

    // The README's curl quick start, as a reader pastes it, against the same stack.
    let quickstart = run_readme_quickstart(&format!("{public}/api/v1"), dirs.path());
    for expected in [
        "\"user\": \"ada@example.com\"",
        "\"status\": \"succeeded\"",
        "\"title\": \"Knowledge graphs\"",
        "\"title\": \"Graph notes\"",
        "\"relation\": \"cites\"",
    ] {
        assert!(
            quickstart.contains(expected),
            "{expected} not in:\n{quickstart}"
        );
    }

    // SIGTERM stops the script and everything it started.
    let term = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while run.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "scripts/run did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reqwest::get(format!("{public}/health")).await.is_err());
}

/// Runs the shell block under `<!-- quickstart -->` in README.md with `API` set, in
/// `dir`, and returns what it printed; panics with its output when a step fails.
fn run_readme_quickstart(api: &str, dir: &std::path::Path) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let block = readme
        .split_once("<!-- quickstart -->\n```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(block, _)| block)
        .expect("README.md has a quick start block");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .env("API", api)
        .current_dir(dir)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the quick start failed ({}):\n{printed}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

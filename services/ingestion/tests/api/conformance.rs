use peermesh_test_support::client::TestClient;
use peermesh_test_support::conformance;
use peermesh_test_support::spawn::{jwks_url, spawn_auth, spawn_ingestion};
use serde_json::Value;

const PREFIX: &str = "/api/v1/ingest";

#[actix_web::test]
async fn health_ready_ids_errors_and_openapi() {
    let auth = spawn_auth(&[]).await;
    let app = spawn_ingestion(&jwks_url(&auth), &[]).await;
    conformance::health_and_ready(&app.client, PREFIX, "ingestion").await;
    conformance::request_ids(&app.client, PREFIX).await;
    conformance::errors_are_problems(&app.client, PREFIX).await;
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    conformance::openapi_matches_snapshot(&app.client, PREFIX, &snapshot).await;
}

async fn ready_body(client: &TestClient) -> (u16, Value) {
    let resp = client.get("/api/v1/ingest/ready").await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Without the auth service's keys the service is alive but not ready, and says why;
/// once auth is reachable it becomes ready by itself.
#[actix_web::test]
async fn not_ready_until_signing_keys_can_be_fetched() {
    let auth = spawn_auth(&[]).await;
    let url = jwks_url(&auth);
    auth.stop().await;
    let app = spawn_ingestion(&url, &[("JWKS_MIN_REFETCH_SECS", "0".into())]).await;
    assert_eq!(app.client.get("/api/v1/ingest/health").await.status(), 200);
    let (status, body) = ready_body(&app.client).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    assert!(
        body["checks"]["jwks"]
            .as_str()
            .unwrap()
            .contains("fetching JWKS"),
        "{body}"
    );
}

/// With migrations switched off on an empty database, readiness names the database.
#[actix_web::test]
async fn not_ready_while_migrations_are_pending() {
    let auth = spawn_auth(&[]).await;
    let app = spawn_ingestion(&jwks_url(&auth), &[("RUN_MIGRATIONS", "false".into())]).await;
    let (status, body) = ready_body(&app.client).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["database"]
            .as_str()
            .unwrap()
            .contains("pending"),
        "{body}"
    );
    assert_eq!(body["checks"]["jwks"], "ok");
}

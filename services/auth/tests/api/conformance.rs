use peermesh_test_stack::conformance;
use peermesh_test_stack::spawn::spawn_auth;

const PREFIX: &str = "/api/v1/auth";

#[actix_web::test]
async fn health_ready_ids_errors_and_openapi() {
    let app = spawn_auth(&[]).await;
    conformance::health_and_ready(&app.client, PREFIX, "auth").await;
    conformance::request_ids(&app.client, PREFIX).await;
    conformance::errors_are_problems(&app.client, PREFIX).await;
    conformance::metrics_exposed(&app.client, PREFIX, "auth").await;
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    conformance::openapi_matches_snapshot(&app.client, PREFIX, &snapshot).await;
}

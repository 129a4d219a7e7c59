use peermesh_test_stack::conformance;
use peermesh_test_stack::spawn::{jwks_url, spawn_auth, Verifier};

#[actix_web::test]
async fn health_ready_ids_errors() {
    conformance::verifier_conformance(Verifier::Content).await;
}

#[actix_web::test]
async fn openapi_matches_the_committed_snapshot() {
    let auth = spawn_auth(&[]).await;
    let app = Verifier::Content.spawn(&jwks_url(&auth), &[]).await;
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    conformance::openapi_matches_snapshot(&app.client, Verifier::Content.path_prefix(), &snapshot)
        .await;
}

#[actix_web::test]
async fn readiness_names_failing_checks() {
    conformance::readiness_names_failing_checks(Verifier::Content).await;
}

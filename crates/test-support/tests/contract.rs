//! Run by `scripts/test` after the API tests of both databases, which recorded every
//! answer the services gave (see `peermesh_test_support::contract`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use peermesh_test_support::contract::{check, load, DIR_VAR};

#[test]
#[ignore = "needs the answers recorded by a full test run; scripts/test runs it"]
fn every_answer_of_the_api_tests_is_in_its_openapi_document() {
    let dir = std::env::var_os(DIR_VAR).expect("PEERMESH_CONTRACT_DIR names the recordings");
    let seen = load(std::path::Path::new(&dir));
    let root = peermesh_test_support::workspace_root();
    let mut gaps = Vec::new();
    for (service, prefix) in [
        ("auth", "/api/v1/auth"),
        ("content", "/api/v1/content"),
        ("ingestion", "/api/v1/ingest"),
    ] {
        let judged = seen
            .iter()
            .filter(|s| s.pattern.starts_with(prefix))
            .count();
        // An empty recording would pass every check: it must hold real traffic.
        assert!(
            judged > 20,
            "only {judged} distinct answers of {service} were recorded"
        );
        let path = root.join("services").join(service).join("openapi.json");
        let spec = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        gaps.extend(check(&spec, prefix, &seen));
    }
    assert!(
        gaps.is_empty(),
        "{} answers are not described by the OpenAPI documents:\n{}",
        gaps.len(),
        gaps.join("\n")
    );
}

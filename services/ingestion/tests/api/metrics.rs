//! Job outcomes and the queue's depth show in `/metrics`.

use peermesh_test_support::metrics::{scrape, Scrape};

use crate::files::{file, stack};

fn outcome(s: &Scrape, outcome: &str) -> f64 {
    s.value(
        "peermesh_ingest_job_outcomes_total",
        &[("kind", "file"), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

fn depth(s: &Scrape, status: &str) -> Option<f64> {
    s.value("peermesh_ingest_queue_jobs", &[("status", status)])
}

#[actix_web::test]
async fn job_outcomes_and_queue_depth_are_reported() {
    // API role only: a queued job stays queued, so the depth is exact.
    let env = stack(
        None,
        true,
        &[("ROLE", "api".into()), ("SYNC_MAX_BYTES", "64".into())],
    )
    .await;
    let before = scrape(&env.ingest.client).await;
    assert_eq!(depth(&before, "queued"), Some(0.0), "{}", before.text);
    assert_eq!(depth(&before, "running"), Some(0.0));

    let small = env
        .upload(file(
            "a.md",
            "text/markdown",
            b"# Small\n\nIn the request.".to_vec(),
        ))
        .await;
    assert_eq!(small.status(), 201);
    let large = env
        .upload(file(
            "b.md",
            "text/markdown",
            "# Large\n\nword ".repeat(20).into_bytes(),
        ))
        .await;
    assert_eq!(large.status(), 202);

    let after = scrape(&env.ingest.client).await;
    assert_eq!(
        outcome(&after, "succeeded") - outcome(&before, "succeeded"),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(depth(&after, "queued"), Some(1.0), "{}", after.text);
    assert_eq!(depth(&after, "running"), Some(0.0));
}

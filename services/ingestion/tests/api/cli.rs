//! The ingestion binary's operator commands, run as an operator would.

use std::process::Command;

use peermesh_ingestion::store::jobs::{self, Job};
use peermesh_test_support::TestDb;
use serde_json::Value;

fn ingest_cli(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_peermesh-ingestion"))
        .args(args)
        .env_clear()
        .env("INGEST_DATABASE_URL", db.url())
        .output()
        .unwrap()
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[actix_web::test]
async fn operators_list_and_retry_every_users_jobs() {
    let db = TestDb::new("ingestion");
    assert!(stdout_of(&ingest_cli(&db, &["migrate"])).contains("applied"));
    assert!(stdout_of(&ingest_cli(&db, &["migrate"])).contains("up to date"));
    assert_eq!(stdout_of(&ingest_cli(&db, &["jobs", "list"])), "");

    // Two users' jobs: one failed for good, one still queued.
    let store = peermesh_db::Db::connect(db.url(), 1, &peermesh_ingestion::MIGRATIONS).unwrap();
    let mut failed = Job::queued("user-a", "file", "{}".into(), 3, None);
    failed.status = jobs::FAILED.into();
    failed.attempts = 3;
    failed.error = Some("the parser gave up".into());
    let queued = Job::queued("user-b", "url", "{}".into(), 3, None);
    let (f, q) = (failed.clone(), queued.clone());
    store
        .write(move |conn| {
            jobs::insert(conn, &f)?;
            jobs::insert(conn, &q)
        })
        .await
        .unwrap();

    let lines = |args: &[&str]| -> Vec<Value> {
        stdout_of(&ingest_cli(&db, args))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = lines(&["jobs", "list"]);
    assert_eq!(all.len(), 2, "{all:?}");
    let failed_only = lines(&["jobs", "list", "--status", "failed"]);
    assert_eq!(failed_only.len(), 1);
    assert_eq!(failed_only[0]["id"], failed.id);
    assert_eq!(failed_only[0]["owner_id"], "user-a");
    assert_eq!(
        lines(&["jobs", "list", "--owner", "user-b"])[0]["id"],
        queued.id
    );
    assert!(!ingest_cli(&db, &["jobs", "list", "--status", "bogus"])
        .status
        .success());

    assert!(stdout_of(&ingest_cli(&db, &["jobs", "retry", &failed.id])).contains("queued again"));
    let retried = lines(&["jobs", "list", "--owner", "user-a"]);
    assert_eq!(retried[0]["status"], "queued");
    assert_eq!(retried[0]["attempts"], 0);
    // Only failed or cancelled jobs can be retried.
    let out = ingest_cli(&db, &["jobs", "retry", &queued.id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no failed or cancelled job"));
}

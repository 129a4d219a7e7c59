//! The ingestion binary as operators run it: SIGTERM hands a job in progress back to
//! the queue; SIGKILL leaves it to its lease, after which another worker finishes it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peermesh_test_stack::spawn::{jwks_url, Verifier};
use peermesh_test_support::free_port;
use serde_json::Value;

use crate::files::{file, stack, Env};

/// A peer that accepts connections and never answers (a hung network path).
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

/// The ingestion binary in `role` on the test's ingestion database.
fn ingestion_process(env: &Env, role: &str) -> Command {
    let blobs = std::env::temp_dir().join("peermesh-test-blobs");
    let mut command = Command::new(env!("CARGO_BIN_EXE_peermesh-ingestion"));
    command
        .env_clear()
        .env("INGEST_DATABASE_URL", env.ingest.db.url())
        .env("INGEST_ROLE", role)
        .env("INGEST_PORT", "0")
        .env("INGEST_WORKER_COUNT", "1")
        .env("INGEST_JWKS_URL", jwks_url(&env.auth))
        .env("INGEST_BLOB_DIR", blobs)
        .env("INGEST_POLL_MS", "50");
    command
}

/// A worker process on the test's ingestion database whose content service hangs.
fn hung_worker(env: &Env, hole: u16, lease_secs: u32) -> Child {
    ingestion_process(env, "worker")
        .env("INGEST_CONTENT_URL", format!("http://127.0.0.1:{hole}"))
        .env("INGEST_TOKEN_URL", &env.settings["TOKEN_URL"])
        .env("INGEST_CLIENT_ID", &env.settings["CLIENT_ID"])
        .env("INGEST_CLIENT_SECRET", &env.settings["CLIENT_SECRET"])
        .env("INGEST_DRAIN_SECS", "1")
        .env("INGEST_JOB_LEASE_SECS", lease_secs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_for_status(env: &Env, id: &str, status: &str) -> Value {
    env.job_when(id, &format!("became {status}"), |job| {
        job["status"] == status
    })
    .await
}

#[actix_web::test]
async fn sigterm_hands_the_job_back_and_sigkill_leaves_it_to_the_lease() {
    let env = stack(
        None,
        true,
        &[("ROLE", "api".into()), ("SYNC_MAX_BYTES", "10".into())],
    )
    .await;
    let resp = env
        .upload(file(
            "work.txt",
            "text/plain",
            b"a document for a worker that will not finish".to_vec(),
        ))
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hole = black_hole();

    // SIGTERM while the job is in progress: the worker hands it back and exits.
    let mut worker = hung_worker(&env, hole, 60);
    wait_for_status(&env, &id, "running").await;
    // Read and converted, stuck writing to content: part of the way, and it shows.
    let job = env
        .job_when(&id, "showed progress", |job| {
            job["progress"].as_f64() > Some(0.5)
        })
        .await;
    let progress = job["progress"].as_f64().unwrap();
    assert!(progress < 1.0, "progress {progress}");
    let term = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the worker did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let job = env.job(&id).await;
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(
        job["attempts"], 0,
        "an attempt cut short by shutdown does not count"
    );

    // SIGKILL mid-job: nothing is handed back; the lease runs out and another worker
    // (with a content service that answers) finishes the job, once.
    let mut worker = hung_worker(&env, hole, 2);
    wait_for_status(&env, &id, "running").await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert_eq!(env.job(&id).await["status"], "running");
    let jwks = jwks_url(&env.auth);
    let mut settings: Vec<(&str, String)> = vec![
        ("DATABASE_URL", env.ingest.db.url().to_owned()),
        ("ROLE", "worker".into()),
        ("POLL_MS", "50".into()),
    ];
    for key in ["CONTENT_URL", "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET"] {
        settings.push((key, env.settings[key].clone()));
    }
    let _rescuer = Verifier::Ingestion.spawn(&jwks, &settings).await;
    let job = env.finished(&id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(
        env.content_get("/api/v1/content").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Waits up to `secs` for the process to exit; `None` while it keeps running.
fn exited_within(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[actix_web::test]
async fn on_sqlite_one_api_and_one_worker_process_may_share_the_database_and_no_more() {
    let single = ("SQLITE_SINGLE_INSTANCE", "true".into());
    // This test's own ingestion API holds the API lock.
    let env = stack(None, true, &[("ROLE", "api".into()), single]).await;
    let start = |role: &str| {
        ingestion_process(&env, role)
            .env("INGEST_SQLITE_SINGLE_INSTANCE", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut worker = start("worker");
    assert!(
        exited_within(&mut worker, 2).is_none(),
        "the first worker must run"
    );

    let sqlite = env.ingest.db.url().starts_with("sqlite");
    for role in ["worker", "api"] {
        let mut extra = start(role);
        if sqlite {
            let status = exited_within(&mut extra, 20).expect("a second process is refused");
            assert!(!status.success());
            let mut log = String::new();
            std::io::Read::read_to_string(&mut extra.stdout.take().unwrap(), &mut log).unwrap();
            assert!(
                log.contains("SQLite mode runs one replica per service"),
                "{role}: {log}"
            );
        } else {
            // PostgreSQL scales: a second process of each kind runs.
            assert!(
                exited_within(&mut extra, 2).is_none(),
                "{role} on PostgreSQL"
            );
            extra.kill().unwrap();
            extra.wait().unwrap();
        }
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
}

#[actix_web::test]
async fn the_binary_checks_the_health_of_the_local_service_for_container_health_checks() {
    let env = stack(None, true, &[("ROLE", "api".into())]).await;
    let check = |port: u16| {
        ingestion_process(&env, "api")
            .arg("healthcheck")
            .env("INGEST_PORT", port.to_string())
            .output()
            .unwrap()
    };
    let up = check(env.ingest.port);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let nobody = free_port();
    let down = check(nobody);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
}

/// A job whose worker dies on every attempt (SIGKILL here; an out-of-memory kill or a
/// crash alike) is not claimed forever: each lapsed lease counts its attempt, and after
/// the last one the job fails for good with its reason.
#[actix_web::test]
async fn a_job_that_takes_its_worker_down_every_time_is_given_up() {
    let env = stack(
        None,
        true,
        &[
            ("ROLE", "api".into()),
            ("SYNC_MAX_BYTES", "10".into()),
            ("JOB_MAX_ATTEMPTS", "2".into()),
        ],
    )
    .await;
    let resp = env
        .upload(file(
            "deadly.txt",
            "text/plain",
            b"a file no worker survives".to_vec(),
        ))
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hole = black_hole();
    for attempt in 1..=2 {
        let mut worker = hung_worker(&env, hole, 1);
        env.job_when(&id, "was claimed again", |job| {
            job["status"] == "running" && job["attempts"] == attempt
        })
        .await;
        worker.kill().unwrap();
        worker.wait().unwrap();
    }
    // The next worker finds the lease of the last attempt lapsed: the job is over.
    let mut worker = hung_worker(&env, hole, 1);
    let job = env.finished(&id).await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("stopped (its lease lapsed)"),
        "{job}"
    );
}

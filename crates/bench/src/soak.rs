//! `peermesh-bench soak <base-url> <secs> <conc> <pid-dir> <faults>`: mixed traffic from
//! `conc` clients for `secs` of steady load, then the same traffic while each fault
//! in `faults` (comma-separated: content, auth, ingestion, worker, postgres) strikes in
//! turn: a kill -9 of that process (its pid read from `<pid-dir>/<name>.pid`; the
//! stack's supervisor restarts it) or a PostgreSQL restart. Clients behave like real
//! ones: a refused connection, 502, 503 or 504 is retried (with the same
//! Idempotency-Key) for up to a minute. Afterwards every acknowledged write is read
//! back, every queued job must have succeeded and made exactly one item.
//! Exits non-zero when a 5xx came outside a fault window, an operation failed for
//! good, or a check after the run failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{document, register, vocabulary, Rng, Samples};

/// How long a client keeps retrying one operation before it gives up.
const GIVE_UP: Duration = Duration::from_secs(60);
/// After a fault, the stack counts as recovering until every service is ready again
/// and this much longer.
const SETTLE: Duration = Duration::from_secs(3);
/// Users the clients share (each client acts for one).
const USERS: usize = 40;
/// A queued upload: just over the synchronous limit, so a worker reads it.
const BIG_FILE_BYTES: usize = 10 * 1024 * 1024 + 64 * 1024;

#[derive(Default)]
struct Tally {
    /// 5xx answers (or refused connections) while no fault was being recovered from.
    unexpected_5xx: AtomicU64,
    /// The same, inside fault windows: expected, retried.
    fault_5xx: AtomicU64,
    /// Operations that never succeeded within `GIVE_UP`, or got an unexpected 4xx.
    failed: AtomicU64,
    ok: AtomicU64,
}

#[derive(Clone)]
struct User {
    token: String,
}

struct Soak {
    http: reqwest::Client,
    base: String,
    users: Vec<User>,
    tally: Tally,
    /// Inside a fault window (from the fault until SETTLE after all services are ready).
    faulty: AtomicBool,
    samples: Mutex<Vec<u64>>,
    /// Acknowledged items: id → (owner index, title).
    items: Mutex<HashMap<String, (usize, String)>>,
    /// Queued uploads: (owner index, job id, unique tag).
    jobs: Mutex<Vec<(usize, String, String)>>,
    stop: AtomicBool,
    first_failures: Mutex<Vec<String>>,
}

enum Outcome {
    Done(Value),
    /// A 4xx nobody expected: a bug in the service or in this tool.
    Refused(u16, String),
}

impl Soak {
    /// Sends `build()` until it gets an answer that is not a transient failure.
    async fn call(&self, what: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Option<Value> {
        self.call_allowing(what, &[], build).await
    }

    /// `call`, counting the 4xx statuses in `expected` as answers, not failures.
    async fn call_allowing(
        &self,
        what: &str,
        expected: &[u16],
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Option<Value> {
        let started = Instant::now();
        loop {
            let t = Instant::now();
            let outcome = match build().send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status >= 500 {
                        None
                    } else if status >= 400 && !expected.contains(&status) {
                        Some(Outcome::Refused(
                            status,
                            String::from_utf8_lossy(&body).chars().take(300).collect(),
                        ))
                    } else {
                        Some(Outcome::Done(
                            serde_json::from_slice(&body).unwrap_or(Value::Null),
                        ))
                    }
                }
                Err(_) => None,
            };
            match outcome {
                Some(Outcome::Done(body)) => {
                    self.tally.ok.fetch_add(1, Ordering::Relaxed);
                    if !self.faulty.load(Ordering::Relaxed) {
                        self.samples
                            .lock()
                            .unwrap()
                            .push(t.elapsed().as_micros() as u64);
                    }
                    return Some(body);
                }
                Some(Outcome::Refused(status, body)) => {
                    self.fail(format!("{what}: {status} {body}"));
                    return None;
                }
                None => {
                    if self.faulty.load(Ordering::Relaxed) {
                        self.tally.fault_5xx.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.tally.unexpected_5xx.fetch_add(1, Ordering::Relaxed);
                        self.note(format!("{what}: 5xx or no connection outside a fault"));
                    }
                    if started.elapsed() > GIVE_UP {
                        self.fail(format!("{what}: no answer within {GIVE_UP:?}"));
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    fn fail(&self, why: String) {
        self.tally.failed.fetch_add(1, Ordering::Relaxed);
        self.note(why);
    }

    fn note(&self, why: String) {
        let mut first = self.first_failures.lock().unwrap();
        if first.len() < 10 {
            first.push(why);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One client: a mix of reads and writes for user `u`, until told to stop.
    async fn client(self: Arc<Self>, id: usize) {
        let u = id % self.users.len();
        let token = self.users[u].token.clone();
        let words = vocabulary(2000);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1000_0001));
        let mut mine: Vec<String> = Vec::new();
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let roll = rng.below(100);
            let auth = |b: reqwest::RequestBuilder| b.bearer_auth(&token);
            if mine.is_empty() || roll < 20 {
                let title = format!("soak {id}-{n}");
                let body = json!({"title": title, "body": document(&mut rng, &words, 2000), "tags": ["soak"]});
                let key = format!("soak-{id}-{n}");
                let created = self
                    .call("create item", || {
                        auth(self.http.post(self.url("/api/v1/content")))
                            .header("Idempotency-Key", &key)
                            .json(&body)
                    })
                    .await;
                if let Some(id) = created.as_ref().and_then(|v| v["id"].as_str()) {
                    mine.push(id.to_owned());
                    self.items.lock().unwrap().insert(id.to_owned(), (u, title));
                }
            } else if roll < 60 {
                let item = &mine[rng.below(mine.len())];
                self.call("read item", || {
                    auth(self.http.get(self.url(&format!("/api/v1/content/{item}"))))
                })
                .await;
            } else if roll < 70 {
                self.call("list items", || {
                    auth(self.http.get(self.url("/api/v1/content?limit=20")))
                })
                .await;
            } else if roll < 80 {
                let q = &words[rng.below(50)];
                self.call("search", || {
                    auth(
                        self.http
                            .get(self.url(&format!("/api/v1/content/search?q={q}"))),
                    )
                })
                .await;
            } else if roll < 85 && mine.len() > 1 {
                let (a, b) = (&mine[rng.below(mine.len())], &mine[rng.below(mine.len())]);
                // 409: the same edge again (picked twice, or a retry of one that was
                // written before its answer was lost).
                if a != b {
                    self.call_allowing("link", &[409], || {
                        auth(
                            self.http
                                .post(self.url(&format!("/api/v1/content/{a}/links"))),
                        )
                        .json(&json!({"target_id": b, "relation": "related"}))
                    })
                    .await;
                }
            } else if roll < 92 {
                // A small file, unique to this client and step: processed at once.
                let text = format!(
                    "# soak upload {id}-{n}\n\n{}",
                    document(&mut rng, &words, 1500)
                );
                let answer = self
                    .call("upload", || {
                        let part = reqwest::multipart::Part::bytes(text.clone().into_bytes())
                            .file_name(format!("soak-{id}-{n}.md"))
                            .mime_str("text/markdown")
                            .unwrap();
                        auth(self.http.post(self.url("/api/v1/ingest/files")))
                            .multipart(reqwest::multipart::Form::new().part("file", part))
                    })
                    .await;
                if let Some(ids) = answer.as_ref().and_then(|v| v["content_ids"].as_array()) {
                    let mut items = self.items.lock().unwrap();
                    for cid in ids.iter().filter_map(Value::as_str) {
                        items.insert(cid.to_owned(), (u, format!("soak upload {id}-{n}")));
                    }
                }
            } else {
                self.call("me", || auth(self.http.get(self.url("/api/v1/auth/me"))))
                    .await;
            }
        }
    }

    /// Keeps queued uploads in flight, one at a time, so that a worker is busy when
    /// it is killed.
    async fn big_uploads(self: Arc<Self>) {
        let words = vocabulary(2000);
        let mut rng = Rng(0x51ed_270b);
        let mut n = 0;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let u = n % self.users.len();
            let token = self.users[u].token.clone();
            let tag = format!("soakbig{n}");
            let text = document(&mut rng, &words, BIG_FILE_BYTES);
            let answer = self
                .call("queued upload", || {
                    let part = reqwest::multipart::Part::bytes(text.clone().into_bytes())
                        .file_name(format!("{tag}.txt"))
                        .mime_str("text/plain")
                        .unwrap();
                    self.http
                        .post(self.url("/api/v1/ingest/files"))
                        .bearer_auth(&token)
                        .multipart(
                            reqwest::multipart::Form::new()
                                .part("file", part)
                                .text("tags", tag.clone()),
                        )
                })
                .await;
            if let Some(job) = answer.as_ref().and_then(|v| v["job"]["id"].as_str()) {
                self.jobs.lock().unwrap().push((u, job.to_owned(), tag));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn all_ready(&self) -> bool {
        for svc in ["auth", "content", "ingest"] {
            match self
                .http
                .get(self.url(&format!("/api/v1/{svc}/ready")))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => {}
                _ => return false,
            }
        }
        true
    }

    /// Strikes one fault, then waits for the stack to be ready again.
    async fn strike(&self, fault: &str, pid_dir: &str) -> Duration {
        self.faulty.store(true, Ordering::Relaxed);
        let struck = Instant::now();
        if fault == "postgres" {
            restart_postgres();
        } else {
            let pid = std::fs::read_to_string(format!("{pid_dir}/{fault}.pid"))
                .unwrap_or_else(|e| panic!("{pid_dir}/{fault}.pid: {e}"));
            let status = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -9 {fault} ({})", pid.trim());
        }
        // A killed process's port refuses at once; wait until it answers again (the
        // worker has no route through the gateway: its restart is seen in its pid file).
        tokio::time::sleep(Duration::from_millis(500)).await;
        while !self.all_ready().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let recovered = struck.elapsed();
        tokio::time::sleep(SETTLE).await;
        self.faulty.store(false, Ordering::Relaxed);
        recovered
    }

    /// After the run: every acknowledged item reads back, every queued job succeeded
    /// and made exactly one item (found by its unique tag).
    async fn verify(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let items: Vec<_> = self.items.lock().unwrap().clone().into_iter().collect();
        for (id, (u, title)) in &items {
            let token = &self.users[*u].token;
            match self
                .call("read back", || {
                    self.http
                        .get(self.url(&format!("/api/v1/content/{id}")))
                        .bearer_auth(token)
                })
                .await
            {
                Some(item)
                    if item["title"]
                        .as_str()
                        .is_some_and(|t| t.contains(title.as_str())) => {}
                other => problems.push(format!("item {id} ({title}) reads back as {other:?}")),
            }
        }
        let jobs = self.jobs.lock().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(300);
        for (u, job, tag) in &jobs {
            let token = &self.users[*u].token;
            let status = loop {
                let body = self
                    .call("poll job", || {
                        self.http
                            .get(self.url(&format!("/api/v1/ingest/jobs/{job}")))
                            .bearer_auth(token)
                    })
                    .await
                    .unwrap_or(Value::Null);
                let status = body["status"].as_str().unwrap_or("?").to_owned();
                if !matches!(status.as_str(), "queued" | "running") || Instant::now() > deadline {
                    break (status, body);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            if status.0 != "succeeded" {
                problems.push(format!(
                    "job {job} ended {}: {}",
                    status.0, status.1["error"]
                ));
                continue;
            }
            let page = self
                .call("items by tag", || {
                    self.http
                        .get(self.url(&format!("/api/v1/content?tag={tag}&limit=100")))
                        .bearer_auth(token)
                })
                .await
                .unwrap_or(Value::Null);
            let found = page["items"].as_array().map_or(0, Vec::len);
            let made = status.1["content_ids"].as_array().map_or(0, Vec::len);
            if found != 1 || made != 1 {
                problems.push(format!(
                    "job {job} ({tag}): {made} content ids, {found} items with its tag (want 1 and 1)"
                ));
            }
        }
        println!(
            "checked afterwards: {} acknowledged items read back, {} queued jobs",
            items.len(),
            jobs.len()
        );
        problems
    }
}

fn restart_postgres() {
    let versions = std::fs::read_dir("/etc/postgresql").expect("/etc/postgresql");
    for version in versions.filter_map(Result::ok) {
        let version = version.file_name().to_string_lossy().into_owned();
        // `immediate`: the server stops like a crash and recovers from its WAL.
        let status = std::process::Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &version,
                "main",
                "restart",
                "-m",
                "immediate",
            ])
            .status()
            .expect("pg_ctlcluster");
        assert!(status.success(), "pg_ctlcluster {version} main restart");
    }
}

/// Memory of each service process now, in MiB: its own (anonymous) memory and its
/// whole RSS. The two differ by mapped files: SQLite reads its database through a
/// memory map, shared page cache that RSS counts once per mapping process.
fn rss(pid_dir: &str) -> Vec<(String, f64, f64)> {
    ["auth", "content", "ingestion", "worker-1"]
        .iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(format!("{pid_dir}/{name}.pid")).ok()?;
            let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).ok()?;
            let field = |key: &str| -> Option<f64> {
                let kib: f64 = status
                    .lines()
                    .find(|l| l.starts_with(key))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some(kib / 1024.0)
            };
            Some((name.to_string(), field("RssAnon:")?, field("VmRSS:")?))
        })
        .collect()
}

fn show(rss: &[(String, f64, f64)]) -> String {
    rss.iter()
        .map(|(n, own, all)| format!("{n} {own:.1} MiB own ({all:.1} RSS)"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(base: String, secs: u64, conc: usize, pid_dir: String, faults: String) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc + 16)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut users = Vec::new();
    for _ in 0..USERS {
        let body = register(&http, &base, "soak").await;
        users.push(User {
            token: body["access_token"].as_str().unwrap().to_owned(),
        });
    }
    let soak = Arc::new(Soak {
        http,
        base,
        users,
        tally: Tally::default(),
        faulty: AtomicBool::new(false),
        samples: Mutex::new(Vec::new()),
        items: Mutex::new(HashMap::new()),
        jobs: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        first_failures: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let mut tasks: Vec<_> = (0..conc)
        .map(|i| tokio::spawn(soak.clone().client(i)))
        .collect();
    // SOAK_QUEUED_UPLOADS=0: no 10 MiB uploads through the queue (small traffic only).
    if std::env::var("SOAK_QUEUED_UPLOADS").as_deref() != Ok("0") {
        tasks.push(tokio::spawn(soak.clone().big_uploads()));
    }

    // Steady load, memory sampled at each tenth of the way: flat means the second
    // half's highest is not above the first half's.
    let mut samples_by_service: HashMap<String, Vec<f64>> = HashMap::new();
    for tenth in 1..=10u64 {
        tokio::time::sleep(Duration::from_secs(secs / 10)).await;
        let now = rss(&pid_dir);
        if tenth == 1 || tenth == 10 {
            println!("memory at {} s: {}", tenth * secs / 10, show(&now));
        }
        for (name, own, _) in now {
            samples_by_service.entry(name).or_default().push(own);
        }
    }
    let steady_ok = soak.tally.ok.load(Ordering::Relaxed);
    let steady_secs = started.elapsed().as_secs_f64();
    println!(
        "steady: {conc} clients for {steady_secs:.0} s, {:.0} ops/s",
        steady_ok as f64 / steady_secs,
    );
    let mut names: Vec<_> = samples_by_service.keys().cloned().collect();
    names.sort();
    for name in names {
        let own = &samples_by_service[&name];
        let (first, second) = own.split_at(own.len() / 2);
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "  {name}: own memory highest {:.1} MiB in the first half, {:.1} MiB in the second",
            max(first),
            max(second)
        );
    }

    for fault in faults.split(',').filter(|f| !f.is_empty() && *f != "none") {
        let recovered = soak.strike(fault, &pid_dir).await;
        println!(
            "fault {fault}: struck under load, every service ready again after {:.1} s",
            recovered.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    soak.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let problems = soak.verify().await;
    let mut samples = Samples(std::mem::take(&mut *soak.samples.lock().unwrap()));
    let t = &soak.tally;
    println!(
        "overall: {} ops in {:.0} s, p50 {:.1} ms, p99 {:.1} ms (outside fault windows); \
         5xx/refused outside faults: {}, inside fault windows (retried): {}, failed operations: {}",
        t.ok.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        samples.percentile(0.50),
        samples.percentile(0.99),
        t.unexpected_5xx.load(Ordering::Relaxed),
        t.fault_5xx.load(Ordering::Relaxed),
        t.failed.load(Ordering::Relaxed),
    );
    println!("memory at the end: {}", show(&rss(&pid_dir)));
    for why in soak.first_failures.lock().unwrap().iter() {
        println!("  failure: {why}");
    }
    for problem in &problems {
        println!("  check: {problem}");
    }
    let bad = t.unexpected_5xx.load(Ordering::Relaxed) + t.failed.load(Ordering::Relaxed);
    if bad > 0 || !problems.is_empty() {
        println!("SOAK FAILED");
        std::process::exit(1);
    }
    println!("SOAK PASSED");
}

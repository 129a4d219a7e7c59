//! Load generator behind `scripts/bench`. Drives a running PeerMesh stack over real
//! HTTP (normally through the gateway) and prints what it measured:
//!
//!   peermesh-bench argon2  <secs>                      raw argon2id verifies/s, one thread per core
//!   peermesh-bench login   <base-url> <secs> <conc>    logins/s, and GET /me p99 alone vs during logins
//!   peermesh-bench refresh <base-url> <secs> <conc>    refreshes/s (each worker rotates its own chain)
//!   peermesh-bench me      <base-url> <secs> <conc>    GET /me req/s with p50/p99

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde_json::{json, Value};

const PASSWORD: &str = "bench password 123";

fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Latencies of one run, in microseconds.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn percentile(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i] as f64 / 1000.0
    }
}

struct Run {
    ok: u64,
    errors: u64,
    secs: f64,
    samples: Samples,
}

impl Run {
    fn report(&mut self, what: &str) {
        let rate = self.ok as f64 / self.secs;
        let (p50, p99) = (self.samples.percentile(0.50), self.samples.percentile(0.99));
        println!(
            "{what}: {rate:.1} req/s over {:.1} s ({} ok, {} errors), p50 {p50:.2} ms, p99 {p99:.2} ms",
            self.secs, self.ok, self.errors
        );
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Runs `conc` workers calling `step` until `secs` have passed.
async fn drive<F, Fut>(secs: u64, conc: usize, step: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let step = Arc::new(step);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..conc {
        let (step, stop, errors) = (step.clone(), stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if step(worker).await {
                    samples.push(t.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    Run {
        ok: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs,
        samples: Samples(all),
    }
}

async fn register(http: &reqwest::Client, base: &str, tag: &str) -> Value {
    let email = format!(
        "{tag}-{}@bench.example",
        std::process::id() as u128 * 1_000_000 + rand_suffix()
    );
    let resp = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "register");
    let mut body: Value = resp.json().await.unwrap();
    body["email"] = json!(email);
    body
}

fn rand_suffix() -> u128 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u128;
    nanos * 1000 + NEXT.fetch_add(1, Ordering::Relaxed) as u128
}

fn bench_argon2(secs: u64) {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, hash) = (stop.clone(), count.clone(), hash.clone());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&hash).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    argon2()
                        .verify_password(PASSWORD.as_bytes(), &parsed)
                        .unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("argon2id verify (19 MiB, t=2, p=1), {threads} threads: {rate:.1} verifies/s");
}

async fn bench_me(http: reqwest::Client, base: String, secs: u64, conc: usize, label: &str) -> Run {
    let user = register(&http, &base, "me").await;
    let token = user["access_token"].as_str().unwrap().to_owned();
    let url = format!("{base}/api/v1/auth/me");
    let mut run = drive(secs, conc, move |_| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            match http.get(&url).bearer_auth(&token).send().await {
                Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    run.report(label);
    run
}

fn login_step(
    http: reqwest::Client,
    base: &str,
    email: String,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    let url = format!("{base}/api/v1/auth/login");
    move |_| {
        let (http, url, email) = (http.clone(), url.clone(), email.clone());
        Box::pin(async move {
            match http
                .post(&url)
                .json(&json!({"email": email, "password": PASSWORD}))
                .send()
                .await
            {
                Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        })
    }
}

/// Logins alone (the rate to hold against raw argon2id), then logins saturating the
/// machine while a light GET /me load measures what that does to other routes.
async fn bench_login(http: reqwest::Client, base: String, secs: u64, conc: usize) {
    let user = register(&http, &base, "login").await;
    let email = user["email"].as_str().unwrap().to_owned();
    let mut alone = bench_me(
        http.clone(),
        base.clone(),
        secs,
        2,
        "GET /me alone (2 clients)",
    )
    .await;
    let mut logins = drive(secs, conc, login_step(http.clone(), &base, email.clone())).await;
    logins.report(&format!("POST /login alone ({conc} clients)"));
    let background = tokio::spawn(drive(
        secs + 1,
        conc,
        login_step(http.clone(), &base, email),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut during = bench_me(http, base, secs, 2, "GET /me during logins (2 clients)").await;
    let mut mixed = background.await.unwrap();
    mixed.report(&format!("POST /login beside GET /me ({conc} clients)"));
    let ratio = during.samples.percentile(0.99) / alone.samples.percentile(0.99);
    println!("GET /me p99 during login saturation / alone: {ratio:.2}x");
}

async fn bench_refresh(http: reqwest::Client, base: String, secs: u64, conc: usize) {
    let mut chains = Vec::new();
    for _ in 0..conc {
        let user = register(&http, &base, "refresh").await;
        chains.push(tokio::sync::Mutex::new(
            user["refresh_token"].as_str().unwrap().to_owned(),
        ));
    }
    let chains = Arc::new(chains);
    let url = format!("{base}/api/v1/auth/refresh");
    let mut run = drive(secs, conc, move |worker| {
        let (http, url, chains) = (http.clone(), url.clone(), chains.clone());
        async move {
            let mut token = chains[worker].lock().await;
            let Ok(resp) = http
                .post(&url)
                .json(&json!({"refresh_token": *token}))
                .send()
                .await
            else {
                return false;
            };
            if resp.status() != 200 {
                return false;
            }
            let Ok(body) = resp.json::<Value>().await else {
                return false;
            };
            *token = body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            true
        }
    })
    .await;
    run.report(&format!("POST /refresh ({conc} clients)"));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let secs: u64 = arg(2, "10").parse().unwrap();
    let conc: usize = arg(3, "16").parse().unwrap();
    let base = arg(1, "http://127.0.0.1:8080");
    match args.first().map(String::as_str) {
        Some("argon2") => bench_argon2(arg(1, "10").parse().unwrap()),
        Some("login") => bench_login(client(), base, secs, conc).await,
        Some("refresh") => bench_refresh(client(), base, secs, conc).await,
        Some("me") => {
            bench_me(
                client(),
                base,
                secs,
                conc,
                &format!("GET /me ({conc} clients)"),
            )
            .await;
        }
        _ => {
            eprintln!("usage: peermesh-bench argon2 <secs> | login|refresh|me <base-url> <secs> <concurrency>");
            std::process::exit(2);
        }
    }
}

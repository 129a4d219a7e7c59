//! Load generator behind `scripts/bench`. Drives a running PeerMesh stack over real
//! HTTP (normally through the gateway) and prints what it measured:
//!
//!   peermesh-bench argon2  <secs>                      raw argon2id verifies/s, one thread per core
//!   peermesh-bench login   <base-url> <secs> <conc>    logins/s, and GET /me p99 alone vs during logins
//!   peermesh-bench refresh <base-url> <secs> <conc>    refreshes/s (each worker rotates its own chain)
//!   peermesh-bench me      <base-url> <secs> <conc>    GET /me req/s with p50/p99
//!   peermesh-bench content <base-url> <secs> <conc> <items> <reference-url>
//!       seeds one user with <items> items of ~2 KB (create req/s), links and 384-dim
//!       vectors, then GET /content/{id} req/s beside the same request through a
//!       reference gateway to a static upstream, p99 at half that rate, search,
//!       graph depth 3 and similarity search latencies
//!   peermesh-bench ingest  <base-url> <secs> <conc>
//!       small Markdown/HTML uploads per minute end to end, a 10 MiB PDF through the
//!       synchronous path, a 100 MiB text file through the queue
//!   peermesh-bench soak    <base-url> <secs> <conc> <pid-dir> <faults>
//!       mixed traffic, then kill -9 / PostgreSQL restarts under it (see `soak`)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: failing loudly is right

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod compare;
mod soak;

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

/// Client `i` signs in to account `i`: one person signs in once at a time, and the
/// throttle counts an attempt in flight until it succeeds (16 parallel logins to one
/// account from one address are answered 429 past the fifth, by design).
fn login_step(
    http: reqwest::Client,
    base: &str,
    emails: Arc<Vec<String>>,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    let url = format!("{base}/api/v1/auth/login");
    move |client| {
        let (http, url) = (http.clone(), url.clone());
        let email = emails[client % emails.len()].clone();
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
    let mut emails = Vec::new();
    for _ in 0..conc {
        let user = register(&http, &base, "login").await;
        emails.push(user["email"].as_str().unwrap().to_owned());
    }
    let emails = Arc::new(emails);
    let mut alone = bench_me(
        http.clone(),
        base.clone(),
        secs,
        2,
        "GET /me alone (2 clients)",
    )
    .await;
    let mut logins = drive(secs, conc, login_step(http.clone(), &base, emails.clone())).await;
    logins.report(&format!("POST /login alone ({conc} clients)"));
    let background = tokio::spawn(drive(
        secs + 1,
        conc,
        login_step(http.clone(), &base, emails),
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

/// Runs `conc` workers over the indexes `0..total`, each calling `step(index)`.
async fn drive_n<F, Fut>(total: usize, conc: usize, step: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let step = Arc::new(step);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (step, next, errors) = (step.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= total {
                    break;
                }
                let t = Instant::now();
                if step(i).await {
                    samples.push(t.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    Run {
        ok: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
        samples: Samples(all),
    }
}

/// An open-loop load: `rate` requests/s spread over `conc` workers, each latency
/// counted from when the request was due (so a stall is not hidden by waiting).
async fn drive_paced<F, Fut>(secs: u64, conc: usize, rate: f64, step: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let step = Arc::new(step);
    let errors = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(conc as f64 / rate);
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..conc {
        let (step, errors) = (step.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut due = Instant::now() + period.mul_f64(worker as f64 / conc as f64);
            while due < end {
                tokio::time::sleep_until(due.into()).await;
                if step(worker).await {
                    samples.push(due.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                due += period;
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    Run {
        ok: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
        samples: Samples(all),
    }
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Pseudo-words; word `i` is drawn with probability ~1/(i+1) (Zipf-like), like text.
fn vocabulary(n: usize) -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "bel", "dor", "fen", "gal", "hix", "jun",
        "mor", "pql",
    ];
    (0..n)
        .map(|i| {
            let mut w = String::new();
            let mut x = i + 1;
            while x > 0 {
                w.push_str(SYLLABLES[x % 16]);
                x /= 16;
            }
            w
        })
        .collect()
}

fn zipf_word<'a>(rng: &mut Rng, words: &'a [String]) -> &'a str {
    // Inverse-CDF of a harmonic distribution, approximately: exp(u * ln n) - 1.
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let i = ((words.len() as f64).ln() * u).exp() as usize - 1;
    &words[i.min(words.len() - 1)]
}

fn document(rng: &mut Rng, words: &[String], bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 64);
    let mut sentence = 0;
    while text.len() < bytes {
        text.push_str(zipf_word(rng, words));
        sentence += 1;
        if sentence % 12 == 0 {
            text.push_str(if sentence % 60 == 0 { ".\n\n" } else { ". " });
        } else {
            text.push(' ');
        }
    }
    text
}

fn vector(rng: &mut Rng, dims: usize) -> Vec<f32> {
    (0..dims).map(|_| rng.unit()).collect()
}

/// An authenticated GET of `url` answered 200 with its whole body.
async fn get_ok(http: &reqwest::Client, url: String, token: &str) -> bool {
    ok(http.get(url).bearer_auth(token).send().await, 200).await
}

async fn ok(resp: Result<reqwest::Response, reqwest::Error>, want: u16) -> bool {
    match resp {
        Ok(r) => r.status() == want && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

const DIMS: usize = 384;
/// The smaller data set of the side-by-side GET runs.
const SMALL_SET: usize = 2_000;

/// One `GET /content/{id}` of a random item, as a `drive` step.
fn get_item(
    http: &reqwest::Client,
    token: &str,
    ids: &Arc<Vec<String>>,
    base: &str,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
       + Send
       + Sync
       + 'static {
    let (http, token, ids, base) = (
        http.clone(),
        Arc::new(token.to_owned()),
        ids.clone(),
        base.to_owned(),
    );
    move |worker: usize| {
        let (http, token, ids, base) = (http.clone(), token.clone(), ids.clone(), base.clone());
        Box::pin(async move {
            let i = (worker * 7919 + rand_suffix() as usize) % ids.len();
            get_ok(&http, format!("{base}/api/v1/content/{}", ids[i]), &token).await
        })
    }
}
const LINKED_ITEMS: usize = 10_000;

/// Creates items `range` of the bench user's `items` (~2 KB each, the i-th always the
/// same text), recording their ids.
async fn seed_items(
    http: &reqwest::Client,
    collection: &str,
    token: &Arc<String>,
    words: &Arc<Vec<String>>,
    ids: &Arc<std::sync::Mutex<Vec<String>>>,
    range: std::ops::Range<usize>,
) -> Run {
    let (h, t, w, c, i2) = (
        http.clone(),
        token.clone(),
        words.clone(),
        collection.to_owned(),
        ids.clone(),
    );
    let start = range.start;
    drive_n(range.len(), 16, move |k| {
        let i = start + k;
        let (http, token, words, url, ids) =
            (h.clone(), t.clone(), w.clone(), c.clone(), i2.clone());
        async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
            let body = document(&mut rng, &words, 2000);
            let title = format!(
                "{} {} {}",
                zipf_word(&mut rng, &words),
                zipf_word(&mut rng, &words),
                i
            );
            let Ok(resp) = http
                .post(&url)
                .bearer_auth(&*token)
                .json(&json!({"title": title, "body": body, "tags": [words[i % 50].clone()]}))
                .send()
                .await
            else {
                return false;
            };
            if resp.status() != 201 {
                return false;
            }
            let Ok(item) = resp.json::<Value>().await else {
                return false;
            };
            ids.lock().unwrap()[i] = item["id"].as_str().unwrap_or_default().to_owned();
            true
        }
    })
    .await
}

/// A new access token for the bench user (a real client would hold a fresh one too).
async fn login(http: &reqwest::Client, base: &str, email: &str) -> String {
    let body: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Where the side-by-side GET runs point: the ceiling and the FastAPI reference.
pub struct References {
    pub ceiling: String,
    /// Empty: no FastAPI reference in this run.
    pub fastapi: String,
    pub work_dir: std::path::PathBuf,
    pub reps: usize,
    pub wrk_threads: usize,
}

async fn bench_content(
    http: reqwest::Client,
    base: String,
    secs: u64,
    conc: usize,
    items: usize,
    refs: References,
) {
    let user = register(&http, &base, "content").await;
    let email = user["user"]["email"].as_str().unwrap().to_owned();
    let token = Arc::new(user["access_token"].as_str().unwrap().to_owned());
    let words = Arc::new(vocabulary(5000));
    let collection = format!("{base}/api/v1/content");
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); items]));

    let compare = compare::Compare::new(&refs.work_dir, secs, refs.reps, refs.wrk_threads);
    let mut targets = vec![
        compare::Target {
            name: "ours",
            base: base.clone(),
        },
        compare::Target {
            name: "ceiling",
            base: refs.ceiling.clone(),
        },
    ];
    if !refs.fastapi.is_empty() {
        targets.push(compare::Target {
            name: "FastAPI",
            base: refs.fastapi.clone(),
        });
    }
    let mut sizes = vec![SMALL_SET.min(items), items];
    sizes.dedup();
    let mut seeded = 0;
    let mut seconds = 0.0;
    for &size in &sizes {
        let run = seed_items(&http, &collection, &token, &words, &ids, seeded..size).await;
        assert_eq!(run.errors, 0, "seeding failed");
        seconds += run.secs;
        seeded = size;
        let fresh = login(&http, &base, &email).await;
        let ids_now: Vec<String> = ids.lock().unwrap()[..size].to_vec();
        compare.run(
            &format!("{size} items"),
            &targets,
            &ids_now,
            &fresh,
            &[32, 64],
        );
    }
    println!(
        "POST /content, {items} items of ~2 KB (16 clients): {:.1} req/s",
        items as f64 / seconds
    );
    let ids: Arc<Vec<String>> = Arc::new(ids.lock().unwrap().clone());
    // The rest takes minutes more than the seeding token's 15.
    let token = Arc::new(login(&http, &base, &email).await);

    // Latency at half of what the server sustains with this tool's own client (open
    // loop: a stall counts from when the request was due).
    let mut probe = drive(secs, conc, get_item(&http, &token, &ids, &base)).await;
    probe.report(&format!(
        "GET /content/{{id}}, this tool's client ({conc} clients)"
    ));
    let rate = probe.ok as f64 / probe.secs;
    let mut half = drive_paced(secs, conc, rate / 2.0, get_item(&http, &token, &ids, &base)).await;
    half.report(&format!(
        "GET /content/{{id}} paced at half that rate ({:.0} req/s)",
        rate / 2.0
    ));

    let linked = LINKED_ITEMS.min(items);
    let (h, t, i2, c) = (http.clone(), token.clone(), ids.clone(), collection.clone());
    let mut links = drive_n(linked * 3, 16, move |k| {
        let (http, token, ids, base) = (h.clone(), t.clone(), i2.clone(), c.clone());
        async move {
            let (from, nth) = (k / 3, k % 3);
            let to = (from * [7, 13, 31][nth] + [1, 5, 11][nth]) % linked;
            if to == from {
                return true;
            }
            let resp = http
                .post(format!("{base}/{}/links", ids[from]))
                .bearer_auth(&*token)
                .json(&json!({"target_id": ids[to], "relation": "related"}))
                .send()
                .await;
            match resp {
                Ok(r) => matches!(r.status().as_u16(), 201 | 409),
                Err(_) => false,
            }
        }
    })
    .await;
    links.report(&format!(
        "POST /content/{{id}}/links, {} links (16 clients)",
        linked * 3
    ));

    let mut vectors = put_vectors(&http, &token, &ids, &collection).await;
    vectors.report(&format!(
        "PUT /content/{{id}}/embeddings, {items} x {DIMS} dims (16 clients)"
    ));

    // Mid-frequency words (ranks 20-220 of the Zipf vocabulary: each in 15-85 % of
    // the items), first from one client (the latency a user sees), then from eight
    // (the machine saturated: latency is mostly queueing).
    for clients in [1, 8] {
        let mut search = search_words(
            &http,
            &token,
            &words,
            &collection,
            secs,
            clients,
            "fulltext",
        )
        .await;
        search.report(&format!(
            "GET /content/search, one mid-frequency word, 20 hits ({clients} client(s))"
        ));
    }

    let (h, t, i2, c) = (http.clone(), token.clone(), ids.clone(), collection.clone());
    let mut graph = drive(secs, 8, move |_| {
        let (http, token, ids, base) = (h.clone(), t.clone(), i2.clone(), c.clone());
        async move {
            let i = rand_suffix() as usize % linked;
            get_ok(&http, format!("{base}/{}/graph?depth=3", ids[i]), &token).await
        }
    })
    .await;
    graph.report("GET /content/{id}/graph?depth=3, out-degree 3 (8 clients)");

    let (h, t, c) = (http.clone(), token.clone(), collection.clone());
    let mut similar = drive(secs, 2, move |_| {
        let (http, token, base) = (h.clone(), t.clone(), c.clone());
        async move {
            let mut rng = Rng(rand_suffix() as u64 | 1);
            let body = json!({"vector": vector(&mut rng, DIMS), "k": 10});
            ok(
                http.post(format!("{base}/search/similar"))
                    .bearer_auth(&*token)
                    .json(&body)
                    .send()
                    .await,
                200,
            )
            .await
        }
    })
    .await;
    similar.report(&format!(
        "POST /content/search/similar over {items} x {DIMS} dims, k=10 (2 clients)"
    ));
}

/// Searches for one mid-frequency word at a time (ranks 20-220 of the Zipf
/// vocabulary: each in 15-85 % of the items), 20 hits, from `clients` clients.
async fn search_words(
    http: &reqwest::Client,
    token: &Arc<String>,
    words: &Arc<Vec<String>>,
    collection: &str,
    secs: u64,
    clients: usize,
    mode: &'static str,
) -> Run {
    let (h, t, w, c) = (
        http.clone(),
        token.clone(),
        words.clone(),
        collection.to_owned(),
    );
    drive(secs, clients, move |_| {
        let (http, token, words, base) = (h.clone(), t.clone(), w.clone(), c.clone());
        async move {
            let mut rng = Rng(rand_suffix() as u64 | 1);
            let word = &words[20 + rng.below(200)];
            let url = format!("{base}/search?q={word}&limit=20&mode={mode}");
            get_ok(&http, url, &token).await
        }
    })
    .await
}

/// One random 384-dim vector of model `bench-384` per item (16 clients).
async fn put_vectors(
    http: &reqwest::Client,
    token: &Arc<String>,
    ids: &Arc<Vec<String>>,
    collection: &str,
) -> Run {
    let (h, t, i2, c) = (
        http.clone(),
        token.clone(),
        ids.clone(),
        collection.to_owned(),
    );
    drive_n(ids.len(), 16, move |i| {
        let (http, token, ids, base) = (h.clone(), t.clone(), i2.clone(), c.clone());
        async move {
            let mut rng = Rng(0x51_7cc1_b727_220a ^ (i as u64 + 7));
            let body = json!({"model": "bench-384", "vectors": [{"chunk": 0, "vector": vector(&mut rng, DIMS)}]});
            ok(http.put(format!("{base}/{}/embeddings", ids[i])).bearer_auth(&*token).json(&body).send().await, 204).await
        }
    })
    .await
}

/// A counter or gauge of a service's `/metrics` (0 when absent).
async fn metric(http: &reqwest::Client, service: &str, name: &str) -> f64 {
    let Ok(resp) = http.get(format!("{service}/metrics")).send().await else {
        return 0.0;
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let key = key.split_once('{').map_or(key, |(k, _)| k);
            (key == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0.0)
}

/// Embedding throughput of one content process that embeds on one thread
/// (`CONTENT_EMBED_THREADS=1`): `items` items of ~2 KB (two chunks each, every chunk
/// at the model's 256 word pieces) created at `service`.
async fn bench_embed_throughput(
    http: reqwest::Client,
    base: String,
    service: String,
    items: usize,
) {
    let user = register(&http, &base, "embed").await;
    let token = Arc::new(user["access_token"].as_str().unwrap().to_owned());
    let words = Arc::new(vocabulary(5000));
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); items]));
    let collection = format!("{service}/api/v1/content");
    let before = metric(&http, &service, "peermesh_content_embedded_chunks_total").await;
    let seeded = seed_items(&http, &collection, &token, &words, &ids, 0..items).await;
    assert_eq!(seeded.errors, 0, "seeding failed");
    // Timed from the first look after every item is in (those embedded meanwhile are
    // left out of the rate) until nothing waits.
    let mut start = None;
    let started_at = Instant::now();
    loop {
        let done = metric(&http, &service, "peermesh_content_embedded_chunks_total").await;
        let waiting = metric(&http, &service, "peermesh_content_embedding_backlog").await;
        if start.is_none() && done > before {
            start = Some((Instant::now(), done));
        }
        if waiting == 0.0 && done > before {
            let (t0, d0) = start.unwrap();
            let secs = t0.elapsed().as_secs_f64();
            let chunks = done - d0;
            println!(
                "embedding, all-MiniLM-L6-v2 on 1 thread: {:.1} chunks/s per core ({} chunks of {} items in {:.1} s; {:.1} items/s)",
                chunks / secs.max(1e-9),
                done - before,
                items,
                started_at.elapsed().as_secs_f64(),
                items as f64 / started_at.elapsed().as_secs_f64()
            );
            return;
        }
        assert!(
            started_at.elapsed() < Duration::from_secs(3600),
            "embedding did not finish in an hour"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Full-text and hybrid search latency over `items` items at `service` (a content
/// process with the model, `CONTENT_EMBED_MODEL_NAME=bench-384` and no embedding
/// threads): the items get random 384-dim vectors under that name, as computing real
/// ones for 100 000 items would take hours here; a query's own vector is the model's.
async fn bench_hybrid(
    http: reqwest::Client,
    base: String,
    service: String,
    secs: u64,
    items: usize,
) {
    let user = register(&http, &base, "hybrid").await;
    let email = user["user"]["email"].as_str().unwrap().to_owned();
    let token = Arc::new(user["access_token"].as_str().unwrap().to_owned());
    let words = Arc::new(vocabulary(5000));
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); items]));
    let collection = format!("{service}/api/v1/content");
    let seeded = seed_items(&http, &collection, &token, &words, &ids, 0..items).await;
    assert_eq!(seeded.errors, 0, "seeding failed");
    let ids: Arc<Vec<String>> = Arc::new(ids.lock().unwrap().clone());
    let token = Arc::new(login(&http, &base, &email).await);
    let vectors = put_vectors(&http, &token, &ids, &collection).await;
    assert_eq!(vectors.errors, 0, "storing vectors failed");
    let token = Arc::new(login(&http, &base, &email).await);
    for clients in [1, 8] {
        for mode in ["fulltext", "hybrid"] {
            let mut search =
                search_words(&http, &token, &words, &collection, secs, clients, mode).await;
            search.report(&format!(
                "GET /content/search?mode={mode} over {items} items, one mid-frequency word, 20 hits ({clients} client(s))"
            ));
        }
    }
}

/// A PDF with `pages` pages of Helvetica text (the same shape the ingestion tests
/// build), about `bytes_per_page` bytes each.
fn pdf(pages: usize, bytes_per_page: usize) -> Vec<u8> {
    let line = "The quick brown fox jumps over the lazy dog. ";
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            (0..pages)
                .map(|i| format!("{} 0 R", 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    ];
    for i in 0..pages {
        let mut content = String::from("BT /F1 10 Tf 40 800 Td 12 TL ");
        while content.len() < bytes_per_page {
            content.push_str(&format!("({line}) Tj T* "));
        }
        content.push_str("ET");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> Option<(u16, Value)> {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .ok()?;
    let resp = http
        .post(format!("{base}/api/v1/ingest/files"))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.unwrap_or(Value::Null)))
}

/// A service's memory per step, when `BENCH_<SERVICE>_PID` names its process: the peak
/// since the step began (VmHWM, reset through `clear_refs` at each step) and what it
/// held when the step began, so a step's own cost shows.
struct RssProbe {
    service: &'static str,
    pid: String,
    start_kib: f64,
}

impl RssProbe {
    fn read(pid: &str, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// The probe of `service` (`ingestion`, `content`), when its pid is given.
    fn of(service: &'static str) -> Option<Self> {
        let pid = std::env::var(format!("BENCH_{}_PID", service.to_uppercase())).ok()?;
        Self::begin(service, pid)
    }

    fn begin(service: &'static str, pid: String) -> Option<Self> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").ok()?;
        let start_kib = Self::read(&pid, "VmRSS:")?;
        Some(Self {
            service,
            pid,
            start_kib,
        })
    }

    /// Reports the step that ends and begins the next one.
    fn step(&mut self) -> String {
        let peak = Self::read(&self.pid, "VmHWM:").unwrap_or(f64::NAN);
        let own = Self::read(&self.pid, "RssAnon:").unwrap_or(f64::NAN);
        let report = format!(
            "{} peak RSS {:.1} MiB ({:.1} MiB when the step began; own memory now {:.1} MiB)",
            self.service,
            peak / 1024.0,
            self.start_kib / 1024.0,
            own / 1024.0
        );
        if let Some(next) = Self::begin(self.service, self.pid.clone()) {
            *self = next;
        }
        report
    }
}

async fn bench_ingest(http: reqwest::Client, base: String, secs: u64, conc: usize) {
    let mut rss = RssProbe::of("ingestion");
    let mut content_rss = RssProbe::of("content");
    let user = register(&http, &base, "ingest").await;
    let token = Arc::new(user["access_token"].as_str().unwrap().to_owned());
    let words = Arc::new(vocabulary(5000));
    let (h, t, w, b) = (http.clone(), token.clone(), words.clone(), base.clone());
    let mut small = drive(secs, conc, move |worker| {
        let (http, token, words, base) = (h.clone(), t.clone(), w.clone(), b.clone());
        async move {
            // Unique bytes every time (the same bytes would be answered from the first job).
            let mut rng = Rng(rand_suffix() as u64 | 1);
            let body = document(&mut rng, &words, 1500);
            let (name, mime, bytes) = if worker % 2 == 0 {
                ("note.md", "text/markdown", format!("# Note {}\n\n{body}\n", rng.next()).into_bytes())
            } else {
                ("page.html", "text/html", format!("<html><head><title>Page {}</title></head><body><p>{body}</p></body></html>", rng.next()).into_bytes())
            };
            matches!(upload(&http, &base, &token, name, mime, bytes).await, Some((201, _)))
        }
    })
    .await;
    small.report(&format!(
        "POST /ingest/files, ~1.5 KB Markdown/HTML, processed in the request ({conc} clients)"
    ));
    println!(
        "  = {:.0} documents/min end to end",
        small.ok as f64 / small.secs * 60.0
    );
    for rss in [rss.as_mut(), content_rss.as_mut()].into_iter().flatten() {
        println!("  {}", rss.step());
    }

    let big_pdf = pdf(280, 35_000);
    let size = big_pdf.len();
    let started = Instant::now();
    let answer = upload(&http, &base, &token, "big.pdf", "application/pdf", big_pdf).await;
    println!(
        "{:.1} MiB PDF (280 pages), synchronous: {:?} in {:.2} s",
        size as f64 / 1048576.0,
        answer.as_ref().map(|(s, _)| *s),
        started.elapsed().as_secs_f64()
    );
    if let Some(rss) = rss.as_mut() {
        println!("  {}", rss.step());
    }

    let mut rng = Rng(7);
    let mut text = String::with_capacity(100 * 1024 * 1024 + 4096);
    while text.len() < 100 * 1024 * 1024 - 4096 {
        text.push_str(&document(&mut rng, &words, 4000));
        text.push_str("\n\n");
    }
    let size = text.len();

    // The content service's side of a 100 MiB item: created straight (the body alone,
    // as a client writes it; to the service itself, as the gateway takes 10 MiB at most
    // outside uploads), then through ingestion (body and chunk offsets).
    if let Some(rss) = content_rss.as_mut() {
        rss.step();
    }
    let content = std::env::var("BENCH_CONTENT_URL").unwrap_or_else(|_| base.clone());
    let started = Instant::now();
    let created = http
        .post(format!("{content}/api/v1/content"))
        .bearer_auth(&*token)
        .header("prefer", "return=minimal")
        .json(&json!({"title": "huge", "body": text}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    println!(
        "{:.1} MiB item, POST /content straight: {:?} in {:.2} s",
        size as f64 / 1048576.0,
        created.ok(),
        started.elapsed().as_secs_f64()
    );
    if let Some(rss) = content_rss.as_mut() {
        println!("  {}", rss.step());
    }

    let started = Instant::now();
    let answer = upload(
        &http,
        &base,
        &token,
        "huge.txt",
        "text/plain",
        text.into_bytes(),
    )
    .await;
    let accepted = started.elapsed().as_secs_f64();
    let job = answer
        .as_ref()
        .and_then(|(_, body)| body["job"]["id"].as_str().map(str::to_owned));
    let mut status = String::from("not queued");
    if let Some(job) = job {
        loop {
            let resp: Value = http
                .get(format!("{base}/api/v1/ingest/jobs/{job}"))
                .bearer_auth(&*token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap_or(Value::Null);
            status = resp["status"].as_str().unwrap_or("?").to_owned();
            if !matches!(status.as_str(), "queued" | "running")
                || started.elapsed() > Duration::from_secs(600)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    println!(
        "{:.1} MiB text through the queue: {:?} after {:.2} s (upload), {status} after {:.2} s",
        size as f64 / 1048576.0,
        answer.as_ref().map(|(s, _)| *s),
        accepted,
        started.elapsed().as_secs_f64()
    );
    for rss in [rss.as_mut(), content_rss.as_mut()].into_iter().flatten() {
        println!("  {}", rss.step());
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    // Most commands take <base-url> <secs> <concurrency> first.
    let secs = || -> u64 { arg(2, "10").parse().unwrap() };
    let conc = || -> usize { arg(3, "16").parse().unwrap() };
    let base = arg(1, "http://127.0.0.1:8080");
    match args.first().map(String::as_str) {
        Some("argon2") => bench_argon2(arg(1, "10").parse().unwrap()),
        Some("login") => bench_login(client(), base, secs(), conc()).await,
        Some("refresh") => bench_refresh(client(), base, secs(), conc()).await,
        Some("me") => {
            bench_me(
                client(),
                base,
                secs(),
                conc(),
                &format!("GET /me ({} clients)", conc()),
            )
            .await;
        }
        Some("ingest") => bench_ingest(client(), base, secs(), conc()).await,
        Some("content") => {
            let items: usize = arg(4, "100000").parse().unwrap();
            let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
            let refs = References {
                ceiling: arg(5, "http://127.0.0.1:18085"),
                fastapi: arg(6, ""),
                work_dir: std::env::temp_dir()
                    .join(format!("peermesh-bench-{}", std::process::id())),
                reps: env("BENCH_REPS", "3").parse().unwrap(),
                wrk_threads: env("BENCH_WRK_THREADS", "1").parse().unwrap(),
            };
            bench_content(client(), base, secs(), conc(), items, refs).await;
        }
        Some("embed-throughput") => {
            bench_embed_throughput(client(), base, arg(2, ""), arg(3, "100").parse().unwrap())
                .await;
        }
        Some("hybrid") => {
            bench_hybrid(
                client(),
                base,
                arg(2, ""),
                arg(3, "10").parse().unwrap(),
                arg(4, "100000").parse().unwrap(),
            )
            .await;
        }
        Some("soak") => {
            soak::run(base, secs(), conc(), arg(4, ".dev/pids"), arg(5, "")).await;
        }
        _ => {
            eprintln!("usage: peermesh-bench argon2 <secs> | login|refresh|me|ingest <base-url> <secs> <concurrency> | content <base-url> <secs> <concurrency> <items> <reference-url> [<fastapi-url>] | embed-throughput <base-url> <content-url> <items> | hybrid <base-url> <content-url> <secs> <items> | soak <base-url> <secs> <concurrency> <pid-dir> [<gateway-pid>]");
            std::process::exit(2);
        }
    }
}

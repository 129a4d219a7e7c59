//! Feed subscriptions against a local feed server that changes between polls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use peermesh_test_support::auth::{register, unique_email};
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::files::{stack, Env};

#[derive(Default)]
pub(crate) struct Site {
    /// (guid, title, html) of the RSS items, oldest first.
    pub(crate) items: Vec<(String, String, String)>,
    /// Answer 500 instead of the feed.
    broken: bool,
    /// Requests answered with the full feed / with 304.
    full: usize,
    not_modified: usize,
}

fn rss(site: &Site) -> String {
    let items: String = site
        .items
        .iter()
        .rev()
        .map(|(guid, title, html)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><link>https://blog.example/{guid}</link>\
                 <description><![CDATA[{html}]]></description></item>"
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Field Blog</title><link>https://blog.example/</link><description>d</description>{items}</channel></rss>"#
    )
}

/// Serves `/feed.xml` (with an ETag per version) and `/page.html`.
pub(crate) fn feed_server(site: Arc<Mutex<Site>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let site = site.clone();
        App::new()
            .route(
                "/feed.xml",
                web::get().to(move |req: HttpRequest| {
                    let site = site.clone();
                    async move {
                        let mut s = site.lock().unwrap();
                        if s.broken {
                            return HttpResponse::InternalServerError().finish();
                        }
                        let etag = format!("\"v{}\"", s.items.len());
                        if req
                            .headers()
                            .get("if-none-match")
                            .and_then(|v| v.to_str().ok())
                            == Some(etag.as_str())
                        {
                            s.not_modified += 1;
                            return HttpResponse::NotModified().finish();
                        }
                        s.full += 1;
                        HttpResponse::Ok()
                            .content_type("application/rss+xml")
                            .insert_header(("etag", etag))
                            .body(rss(&s))
                    }
                }),
            )
            .route(
                "/page.html",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html")
                        .body("<p>not a feed</p>")
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    port
}

async fn call(
    env: &Env,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = env.ingest.client.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// `POST /feeds {url}` as the user with `token`.
pub(crate) async fn subscribe(env: &Env, token: &str, url: &str) -> reqwest::Response {
    call(
        env,
        Method::POST,
        "/api/v1/ingest/feeds",
        token,
        Some(json!({ "url": url })),
    )
    .await
}

/// `POST {feed}/refresh` (202 with the poll job); waits for the job and returns it.
async fn refresh(env: &Env, feed: &str, token: &str) -> Value {
    let resp = call(env, Method::POST, &format!("{feed}/refresh"), token, None).await;
    assert_eq!(resp.status(), 202);
    let job = resp.json::<Value>().await.unwrap();
    env.finished(job["id"].as_str().unwrap()).await
}

async fn items(env: &Env) -> Vec<Value> {
    env.content_get("/api/v1/content?limit=100").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_for_items(env: &Env, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let found = items(env).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jobs: Value = call(
        env,
        Method::GET,
        "/api/v1/ingest/jobs",
        &env.user.access_token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    panic!("never saw {n} items; jobs: {jobs}");
}

#[actix_web::test]
async fn entries_become_items_once_and_new_ones_follow() {
    let site = Arc::new(Mutex::new(Site::default()));
    site.lock().unwrap().items = vec![
        (
            "a1".into(),
            "First post".into(),
            "<p>Herons at <b>dawn</b>.</p>".into(),
        ),
        (
            "a2".into(),
            "Second post".into(),
            "<p>Kingfishers.</p>".into(),
        ),
    ];
    let port = feed_server(site.clone());
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("FEED_TICK_MS", "100".into()),
            ("FEED_REFRESH_INTERVAL_SECS", "0".into()),
        ],
    )
    .await;
    let t = env.user.access_token.clone();
    let url = format!("http://127.0.0.1:{port}/feed.xml");

    let resp = subscribe(&env, &t, &url).await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let feed: Value = resp.json().await.unwrap();
    assert_eq!(feed["title"], "Field Blog");
    assert_eq!(
        location,
        format!("/api/v1/ingest/feeds/{}", feed["id"].as_str().unwrap())
    );

    let found = wait_for_items(&env, 2).await;
    let titles: Vec<&str> = found.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        vec!["Second post", "First post"],
        "newest first, both once"
    );
    let first = env.content_item(found[1]["id"].as_str().unwrap()).await;
    assert_eq!(first["body"], "Herons at dawn.");
    assert_eq!(first["source"]["type"], "feed");
    assert_eq!(first["source"]["url"], "https://blog.example/a1");

    // Nothing new: a conditional poll gets 304 and creates nothing.
    assert_eq!(refresh(&env, &location, &t).await["status"], "succeeded");
    assert!(site.lock().unwrap().not_modified >= 1);
    assert_eq!(items(&env).await.len(), 2);

    // A new entry appears: only it is added.
    site.lock()
        .unwrap()
        .items
        .push(("a3".into(), "Third post".into(), "Plain text entry".into()));
    let job = refresh(&env, &location, &t).await;
    assert_eq!(job["content_ids"].as_array().unwrap().len(), 1, "{job}");
    let found = items(&env).await;
    assert_eq!(found.len(), 3);
    assert_eq!(found[0]["title"], "Third post");
    let listed: Value = call(&env, Method::GET, "/api/v1/ingest/feeds", &t, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["entries"], 3);

    // A failing feed shows its error and is pushed back.
    site.lock().unwrap().broken = true;
    assert_eq!(refresh(&env, &location, &t).await["status"], "failed");
    let feed: Value = call(&env, Method::GET, &location, &t, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["failures"], 1);
    assert!(
        feed["last_error"].as_str().unwrap().contains("500"),
        "{feed}"
    );

    // Others cannot see or touch it; the owner can unsubscribe (items stay).
    let other = register(&env.auth.client, &unique_email("other")).await;
    for (method, path) in [
        (Method::GET, location.clone()),
        (Method::DELETE, location.clone()),
        (Method::POST, format!("{location}/refresh")),
    ] {
        assert_eq!(
            call(&env, method.clone(), &path, &other.access_token, None)
                .await
                .status(),
            404,
            "{method} {path}"
        );
    }
    assert_eq!(
        call(&env, Method::DELETE, &location, &t, None)
            .await
            .status(),
        204
    );
    assert_problem(
        call(&env, Method::GET, &location, &t, None).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(items(&env).await.len(), 3);
}

#[actix_web::test]
async fn subscriptions_are_checked_and_limited() {
    let site = Arc::new(Mutex::new(Site::default()));
    site.lock().unwrap().items = vec![("x".into(), "X".into(), "x".into())];
    let port = feed_server(site);
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("FEEDS_PER_USER", "2".into()),
        ],
    )
    .await;
    let t = env.user.access_token.clone();
    let post = |url: String| {
        let (env, t) = (&env, &t);
        async move { subscribe(env, t, &url).await }
    };

    assert_problem(
        post(format!("http://127.0.0.1:{port}/page.html")).await,
        422,
        "not_a_feed",
    )
    .await;
    assert_problem(
        post("ftp://127.0.0.1/feed".into()).await,
        422,
        "url_refused",
    )
    .await;
    assert_eq!(
        post(format!("http://127.0.0.1:{port}/feed.xml"))
            .await
            .status(),
        201
    );
    assert_problem(
        post(format!("http://127.0.0.1:{port}/feed.xml")).await,
        409,
        "feed_exists",
    )
    .await;
    assert_eq!(
        post(format!("http://localhost:{port}/feed.xml"))
            .await
            .status(),
        201
    );
    assert_problem(
        post(format!("http://127.0.0.1:{port}/feed.xml?again")).await,
        409,
        "feed_limit",
    )
    .await;
}

#[actix_web::test]
async fn due_feeds_are_polled_without_being_asked() {
    let site = Arc::new(Mutex::new(Site::default()));
    site.lock().unwrap().items = vec![("p1".into(), "One".into(), "one".into())];
    let port = feed_server(site.clone());
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("FEED_POLL_SECS", "1".into()),
            ("FEED_TICK_MS", "100".into()),
        ],
    )
    .await;
    let t = env.user.access_token.clone();
    let url = format!("http://127.0.0.1:{port}/feed.xml");
    let resp = subscribe(&env, &t, &url).await;
    assert_eq!(resp.status(), 201);
    wait_for_items(&env, 1).await;
    site.lock()
        .unwrap()
        .items
        .push(("p2".into(), "Two".into(), "two".into()));
    let found = wait_for_items(&env, 2).await;
    assert_eq!(found[0]["title"], "Two");
}

/// Manual refreshes are limited per feed (429 with Retry-After), and a feed document
/// larger than `INGEST_FEED_MAX_BYTES` is not read whole: the poll fails with that
/// reason and the feed shows it.
#[actix_web::test]
async fn feed_refreshes_and_feed_bodies_are_limited() {
    let site = Arc::new(Mutex::new(Site::default()));
    let big = "x".repeat(4000);
    site.lock().unwrap().items = vec![("b1".into(), "Big".into(), big)];
    let port = feed_server(site.clone());
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("FEED_MAX_BYTES", "2000".into()),
            ("FEED_REFRESH_INTERVAL_SECS", "60".into()),
        ],
    )
    .await;
    let t = env.user.access_token.clone();
    let resp = subscribe(&env, &t, &format!("http://127.0.0.1:{port}/feed.xml")).await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();

    let job = refresh(&env, &location, &t).await;
    assert_eq!(job["status"], "failed", "{job}");
    let feed: Value = call(&env, Method::GET, &location, &t, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        feed["last_error"]
            .as_str()
            .unwrap()
            .contains("larger than 2000 bytes"),
        "{feed}"
    );
    assert!(items(&env).await.is_empty());

    let again = call(&env, Method::POST, &format!("{location}/refresh"), &t, None).await;
    let wait: u64 = again.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_problem(again, 429, "refresh_too_soon").await;
}

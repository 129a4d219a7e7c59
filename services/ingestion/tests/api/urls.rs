//! URL imports against a local web server: what is fetched, and what is refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::{web, App, HttpResponse, HttpServer};
use peermesh_test_support::client::assert_problem;
use reqwest::Method;
use serde_json::{json, Value};

use crate::files::{stack, Env};

/// A local site on 127.0.0.1: see [`site_on`].
fn site() -> u16 {
    site_on("127.0.0.1", Vec::new()).0
}

/// A local site on `ip`: a page, redirect chains, a redirect out of http, a 404, a
/// large and a slow document, and `/away/{i}` redirecting to `away[i]`. Returns its
/// port and the number of requests it has had.
fn site_on(ip: &str, away: Vec<String>) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = HttpServer::new(move || {
        let (away, counter) = (away.clone(), counter.clone());
        App::new()
            .wrap_fn(move |req, srv| {
                counter.fetch_add(1, Ordering::SeqCst);
                srv.call(req)
            })
            .route(
                "/away/{i}",
                web::get().to(move |i: web::Path<usize>| {
                    let target = away[*i].clone();
                    async move { HttpResponse::Found().insert_header(("location", target)).finish() }
                }),
            )
            .route(
                "/page.html",
                web::get().to(|| async {
                    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(
                        "<html><head><title>River birds</title></head><body><p>The kingfisher dives.</p></body></html>",
                    )
                }),
            )
            .route(
                "/article.html",
                web::get().to(|| async {
                    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(ARTICLE_PAGE)
                }),
            )
            .route(
                "/hop/{n}",
                web::get().to(|n: web::Path<u32>| async move {
                    let target = if *n == 0 { "/page.html".to_owned() } else { format!("/hop/{}", *n - 1) };
                    HttpResponse::Found().insert_header(("location", target)).finish()
                }),
            )
            .route(
                "/to-ftp",
                web::get().to(|| async { HttpResponse::Found().insert_header(("location", "ftp://127.0.0.1/x")).finish() }),
            )
            .route(
                "/big.txt",
                web::get().to(|| async { HttpResponse::Ok().content_type("text/plain").body("x".repeat(4096)) }),
            )
            .route(
                "/slow",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    HttpResponse::Ok().body("late")
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (port, hits)
}

/// A web page as sites make them: navigation, a header, the article, a sidebar and a
/// footer around it.
const ARTICLE_PAGE: &str = r#"<!doctype html><html lang="en"><head><title>Herons of the delta | Birdwatch Weekly</title></head>
<body>
<nav class="site-nav"><a href="/">Home</a> <a href="/news">News</a> <a href="/shop">Shop our binoculars</a> <a href="/login">Log in</a></nav>
<header class="masthead"><h1 class="logo">Birdwatch Weekly</h1><p>Menu: birds, trips, gear</p></header>
<main><article>
<h1>Herons of the delta</h1>
<p class="byline">By Ada Fieldnote</p>
<p>The grey heron stands in the shallows for an hour at a time, so still that the reeds move more than it does. Then the neck uncoils and the bill goes in, and a small fish is gone before the water settles again.</p>
<p>In the delta the herons nest in colonies at the top of the alders. A single tree may hold a dozen nests, and in March the noise of the young carries across the water to the dykes where the birdwatchers wait with their scopes.</p>
<p>Counting them is slow work. The survey team walks the same route every week, notes each nest that is in use, and compares the numbers with the years before. This spring the count rose for the third year running.</p>
<p>Nobody is quite sure why. Cleaner water and more fish are the usual answers, but the milder winters matter too: fewer birds starve in January, and more of them are ready to breed when the days grow long.</p>
</article></main>
<aside class="sidebar"><h3>Related posts</h3><ul><li><a href="/egrets">Ten facts about egrets</a></li><li><a href="/owls">Owls at night</a></li></ul></aside>
<footer class="site-footer"><p>Copyright 2026 Birdwatch Weekly. Subscribe to our newsletter for weekly deals.</p><p>Privacy policy · Cookie settings</p></footer>
</body></html>"#;

async fn import(env: &Env, url: &str) -> reqwest::Response {
    env.ingest
        .client
        .request(Method::POST, "/api/v1/ingest/urls")
        .bearer_auth(&env.user.access_token)
        .json(&json!({"url": url, "tags": ["web"]}))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn pages_are_fetched_through_checked_redirects() {
    let port = site();
    let env = stack(
        None,
        true,
        &[
            ("ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("MAX_BYTES", "2048".into()),
            ("SYNC_MAX_BYTES", "2048".into()),
            ("FETCH_TIMEOUT_SECS", "1".into()),
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");

    let resp = import(&env, &format!("{base}/hop/3")).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let item = env
        .content_item(body["content_ids"][0].as_str().unwrap())
        .await;
    assert_eq!(item["title"], "River birds");
    assert_eq!(item["body"], "The kingfisher dives.");
    assert_eq!(item["source"]["type"], "url");
    assert_eq!(item["source"]["url"], format!("{base}/page.html"));
    assert_eq!(item["tags"], json!(["web"]));

    let refused = assert_problem(
        import(&env, &format!("{base}/hop/6")).await,
        422,
        "url_refused",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("redirects"),
        "{refused}"
    );
    assert_problem(
        import(&env, &format!("{base}/to-ftp")).await,
        422,
        "url_refused",
    )
    .await;
    assert_problem(
        import(&env, &format!("{base}/missing")).await,
        422,
        "fetch_failed",
    )
    .await;
    assert_problem(
        import(&env, &format!("{base}/big.txt")).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_problem(
        import(&env, &format!("{base}/slow")).await,
        422,
        "fetch_failed",
    )
    .await;
    assert_problem(
        import(&env, "gopher://127.0.0.1/").await,
        422,
        "url_refused",
    )
    .await;
    assert_eq!(
        env.content_get("/api/v1/content").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A fetched page keeps its article, as a reader view would: not the navigation, the
/// sidebar or the footer. (An uploaded HTML file keeps all of its text.)
#[actix_web::test]
async fn web_pages_keep_their_main_text() {
    let port = site();
    let env = stack(None, true, &[("ALLOW_PRIVATE_NETWORKS", "true".into())]).await;
    let resp = import(&env, &format!("http://127.0.0.1:{port}/article.html")).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let item = env
        .content_item(body["content_ids"][0].as_str().unwrap())
        .await;
    let text = item["body"].as_str().unwrap();
    for kept in [
        "The grey heron stands in the shallows",
        "the count rose for the third year running",
        "more of them are ready to breed",
    ] {
        assert!(text.contains(kept), "{kept:?} is missing from:\n{text}");
    }
    for dropped in [
        "Shop our binoculars",
        "Log in",
        "Related posts",
        "Ten facts about egrets",
        "Subscribe to our newsletter",
        "Cookie settings",
    ] {
        assert!(!text.contains(dropped), "{dropped:?} was kept:\n{text}");
    }
    assert!(
        text.split("\n\n").count() >= 4,
        "paragraphs stay apart: {text}"
    );
    assert_eq!(item["metadata"]["extraction"], "readability");
    assert!(item["title"]
        .as_str()
        .unwrap()
        .contains("Herons of the delta"));

    // The same page uploaded as a file is a document of its own: all of its text.
    let upload = env
        .upload(crate::files::file(
            "page.html",
            "text/html",
            // Other bytes than the fetched page's (the same would answer with it).
            format!("{ARTICLE_PAGE}<!-- saved -->").into_bytes(),
        ))
        .await;
    assert_eq!(upload.status(), 201);
    let uploaded: Value = upload.json().await.unwrap();
    let whole = env
        .content_item(uploaded["content_ids"][0].as_str().unwrap())
        .await;
    assert!(whole["body"]
        .as_str()
        .unwrap()
        .contains("Subscribe to our newsletter"));
}

#[actix_web::test]
async fn private_addresses_are_refused_without_the_development_flag() {
    let port = site();
    let env = stack(None, true, &[]).await;
    for url in [
        format!("http://127.0.0.1:{port}/page.html"),
        format!("http://localhost:{port}/page.html"),
        format!("http://[::1]:{port}/page.html"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        format!("http://0x7f000001:{port}/page.html"),
    ] {
        let problem = assert_problem(import(&env, &url).await, 422, "url_refused").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    assert_eq!(env.content_get("/api/v1/content").await["items"], json!([]));
}

#[actix_web::test]
async fn allowed_networks_are_fetched_and_redirects_out_of_them_are_refused() {
    // An "intranet" on 127.0.0.2, allowed by configuration; the rest of loopback is
    // as private as ever, here a server on 127.0.0.1 that must never be reached.
    let (outside, outside_hits) = site_on("127.0.0.1", Vec::new());
    let away = vec![
        format!("http://127.0.0.1:{outside}/page.html"),
        format!("http://localhost:{outside}/page.html"),
        format!("http://0x7f000001:{outside}/page.html"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    let (inside, inside_hits) = site_on("127.0.0.2", away.clone());
    let env = stack(
        None,
        true,
        &[("FETCH_ALLOWED_NETWORKS", "127.0.0.2/32".into())],
    )
    .await;

    let resp = import(&env, &format!("http://127.0.0.2:{inside}/hop/2")).await;
    assert_eq!(
        resp.status(),
        201,
        "inside the allowed network, redirects included"
    );
    let asked = inside_hits.load(Ordering::SeqCst);
    assert_eq!(asked, 4);

    for (i, target) in away.iter().enumerate() {
        let url = format!("http://127.0.0.2:{inside}/away/{i}");
        let problem = assert_problem(import(&env, &url).await, 422, "url_refused").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{target}");
    }
    assert_eq!(inside_hits.load(Ordering::SeqCst), asked + away.len());
    assert_problem(import(&env, &away[0]).await, 422, "url_refused").await;
    assert_eq!(outside_hits.load(Ordering::SeqCst), 0, "never reached");
    assert_eq!(
        env.content_get("/api/v1/content").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

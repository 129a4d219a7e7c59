//! Sign-in with a provider in a real browser: headless Chromium, driven through
//! ChromeDriver's WebDriver API, goes gateway → provider → gateway callback → the app,
//! with the browser itself keeping and sending the state cookie.
//! Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peermesh_test_stack::spawn::google_sign_in_behind_gateway;
use peermesh_test_support::auth::Pkce;
use peermesh_test_support::free_port;
use peermesh_test_support::providers::{FakeProvider, ProviderUser};
use serde_json::{json, Value};

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    fn start() -> Self {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: apt-get install -y chromium chromium-driver (see README.md)"
            );
        }
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(resp["value"]["error"].is_null(), "WebDriver {path}: {resp}");
        resp["value"].clone()
    }

    async fn session(&self) -> String {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run"],
            },
        }}});
        let value = self
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        value["sessionId"].as_str().unwrap().to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn a_real_browser_signs_in_with_google_through_the_gateway() {
    let google = FakeProvider::oidc();
    let app = format!("{}/app", google.base);
    let (_auth, _gateway, public) = google_sign_in_behind_gateway(&google, &app).await;
    let email = format!("browser-{}@example.com", uuid::Uuid::new_v4().simple());
    google.sign_in_as(Some(ProviderUser::new("browser-1", &email, true)));

    // What the app's frontend keeps for the exchange (the code alone is not enough).
    let pkce = Pkce::new();
    let driver = Driver::start();
    let session = driver.session().await;
    let start = format!(
        "{public}/api/v1/auth/oauth/google/authorize?redirect_uri={}&{}",
        url::form_urlencoded::byte_serialize(app.as_bytes()).collect::<String>(),
        pkce.query()
    );
    driver
        .call(
            reqwest::Method::POST,
            &format!("/session/{session}/url"),
            Some(json!({ "url": start })),
        )
        .await;
    let landed = driver
        .call(
            reqwest::Method::GET,
            &format!("/session/{session}/url"),
            None,
        )
        .await;
    let landed = url::Url::parse(landed.as_str().unwrap()).unwrap();
    let title = driver
        .call(
            reqwest::Method::GET,
            &format!("/session/{session}/title"),
            None,
        )
        .await;
    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{session}"),
            None,
        )
        .await;

    assert!(
        landed.as_str().starts_with(&app),
        "the browser ended at {landed}"
    );
    assert_eq!(title, "signed in");
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {landed}"));

    // The app trades the code for tokens through the gateway.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{public}/api/v1/auth/oauth/exchange"))
        .json(&pkce.exchange_body(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["user"]["email"], email);
    assert_eq!(tokens["user"]["identities"], json!(["google"]));
}

/// Swagger UI renders our own spec only: `?url=` and `?configUrl=` naming another
/// site's document are ignored by the browser-side UI, which never even asks for it
/// (the UI paperclip bundled, 3.52, fetched and rendered it on our origin).
#[actix_web::test]
async fn swagger_ui_renders_only_our_own_spec() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let stack = peermesh_test_stack::spawn::spawn_stack().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let foreign = listener.local_addr().unwrap().port();
    let counter = hits.clone();
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                actix_web::HttpResponse::Ok()
                    .insert_header(("Access-Control-Allow-Origin", "*"))
                    .json(json!({"openapi": "3.0.0", "info": {"title": "Foreign spec", "version": "1"}, "paths": {}}))
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);

    let driver = Driver::start();
    let session = driver.session().await;
    let page = format!(
        "{}/api/v1/content/docs/index.html?url=http://127.0.0.1:{foreign}/spec.json&configUrl=http://127.0.0.1:{foreign}/config.json",
        stack.gateway.base_url()
    );
    driver
        .call(
            reqwest::Method::POST,
            &format!("/session/{session}/url"),
            Some(json!({ "url": page })),
        )
        .await;
    let script = json!({
        "script": "const t = document.querySelector('.info .title'); return t ? t.innerText : null;",
        "args": [],
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let title = loop {
        let title = driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{session}/execute/sync"),
                Some(script.clone()),
            )
            .await;
        if let Some(title) = title.as_str() {
            break title.to_owned();
        }
        assert!(Instant::now() < deadline, "Swagger UI rendered no spec");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{session}"),
            None,
        )
        .await;
    assert!(title.contains("PeerMesh content API"), "{title}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the foreign site was asked");
}

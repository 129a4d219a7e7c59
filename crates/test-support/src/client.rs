//! A small typed HTTP client for tests: every call goes over real HTTP.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

#[derive(Clone)]
pub struct TestClient {
    pub base_url: String,
    pub http: reqwest::Client,
}

impl TestClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            base_url: base_url.into(),
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Waits until `path` answers 200, for at most ~10 s.
    pub async fn wait_for_ok(&self, path: &str) {
        for _ in 0..200 {
            if let Ok(resp) = self.request(Method::GET, path).send().await {
                if resp.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{} never answered 200", self.url(path));
    }
}

/// Asserts a problem+json answer with `status` and `code`, and returns its body.
pub async fn assert_problem(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status of {}", resp.url());
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct:?}"
    );
    let header_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert!(
        body["type"].as_str().is_some_and(|t| t.ends_with(code)),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str(), header_id.as_deref(), "{body}");
    body
}

/// The `Location` of a 302 answer (a redirect the test follows by hand).
pub fn redirect_location(resp: &reqwest::Response) -> url::Url {
    assert_eq!(
        resp.status(),
        302,
        "expected a redirect from {}",
        resp.url()
    );
    let location = resp.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("Location");
    url::Url::parse(location).expect("absolute Location")
}

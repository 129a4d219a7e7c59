//! A real auth service and a content service verifying its tokens, with users.

use peermesh_test_stack::spawn::auth_with_admin;
use peermesh_test_stack::spawn::{jwks_url, Spawned, Verifier};
use peermesh_test_support::auth::{register, unique_email, DeclaredClient, TestUser};
use reqwest::{Method, Response};
use serde_json::Value;

pub struct Env {
    pub auth: Spawned,
    pub content: Spawned,
    pub admin: TestUser,
    /// A client the operator lets act for users who delegate to it (as ingestion).
    pub acting: DeclaredClient,
}

/// Auth (with an admin) and content with `extra` content settings (no prefix).
pub async fn env(extra: &[(&str, String)]) -> Env {
    let acting = DeclaredClient::new(&["content:write", "content:act_as"]);
    let (auth, admin) = auth_with_admin(&[acting.setting()]).await;
    let content = Verifier::Content.spawn(&jwks_url(&auth), extra).await;
    Env {
        auth,
        content,
        admin,
        acting,
    }
}

impl Env {
    pub async fn user(&self) -> TestUser {
        register(&self.auth.client, &unique_email("content")).await
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.content.client.request(method, path).bearer_auth(token)
    }

    pub async fn call(
        &self,
        method: Method,
        path: impl AsRef<str>,
        token: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.request(method, path.as_ref(), token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    /// Creates an item (201 expected) and returns it.
    pub async fn create(&self, token: &str, body: Value) -> Value {
        let resp = self
            .call(Method::POST, "/api/v1/content", token, Some(body))
            .await;
        assert_eq!(resp.status(), 201, "create");
        resp.json().await.expect("item")
    }

    /// `GET` expecting 200 JSON.
    pub async fn get(&self, path: &str, token: &str) -> Value {
        let resp = self.call(Method::GET, path, token, None).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.expect("JSON")
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }
}

/// A minimal item body.
pub fn item(title: &str, body: &str) -> Value {
    serde_json::json!({"title": title, "body": body})
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["id"]
                .as_str()
                .or(i["item"]["id"].as_str())
                .expect("id")
                .to_owned()
        })
        .collect()
}

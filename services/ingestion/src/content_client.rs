//! Writes ingested documents into the content service over HTTP, as the user: with
//! this service's own client-credentials token (scopes `content:write
//! content:act_as`), the user's id in `X-On-Behalf-Of`, the request id forwarded and
//! an `Idempotency-Key` per job, so a retried job never creates an item twice.

use std::time::{Duration, Instant};

use peermesh_common::config::Secret;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

/// `INGEST_CONTENT_URL`, `INGEST_TOKEN_URL`, `INGEST_CLIENT_ID`, `INGEST_CLIENT_SECRET`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentSettings {
    #[serde(default = "default_content_url")]
    pub content_url: String,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Per call to the content or auth service.
    #[serde(default = "default_timeout")]
    pub content_timeout_secs: u64,
}

fn default_content_url() -> String {
    "http://127.0.0.1:8083".into()
}
fn default_token_url() -> String {
    "http://127.0.0.1:8081/api/v1/auth/token".into()
}
fn default_timeout() -> u64 {
    60
}

/// Why a write did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContentError {
    /// The content or auth service cannot be reached or is failing: try later.
    #[error("the content service is unavailable: {0}")]
    Unavailable(String),
    /// The content service refused the document: retrying will not help.
    #[error("the content service refused the document: {0}")]
    Rejected(String),
    /// This service has no (working) client credentials.
    #[error("ingestion is not configured to write content: {0}")]
    Credentials(String),
}

impl ContentError {
    /// Worth retrying later: the service may come back, the credentials be fixed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ContentError::Unavailable(_) | ContentError::Credentials(_)
        )
    }
}

/// An item as the content service takes it.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub title: String,
    pub body: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub source: Value,
    pub metadata: Value,
    pub chunks: Vec<peermesh_chunking::Chunk>,
}

/// The JSON of `POST /api/v1/content`, borrowing the item.
#[derive(serde::Serialize)]
struct ItemBody<'a> {
    title: &'a str,
    body: &'a str,
    kind: &'a str,
    tags: &'a [String],
    source: &'a Value,
    metadata: &'a Value,
    #[serde(serialize_with = "chunks_json")]
    chunks: &'a [peermesh_chunking::Chunk],
}

fn chunks_json<S: serde::Serializer>(
    chunks: &&[peermesh_chunking::Chunk],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeMap, SerializeSeq};
    let mut seq = s.serialize_seq(Some(chunks.len()))?;
    for c in chunks.iter() {
        struct One<'a>(&'a peermesh_chunking::Chunk);
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("text", &self.0.text)?;
                m.serialize_entry("start", &self.0.start)?;
                m.serialize_entry("end", &self.0.end)?;
                m.end()
            }
        }
        seq.serialize_element(&One(c))?;
    }
    seq.end()
}

pub struct ContentClient {
    http: reqwest::Client,
    settings: ContentSettings,
    token: Mutex<Option<(String, Instant)>>,
}

impl ContentClient {
    pub fn new(settings: ContentSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.content_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            settings,
            token: Mutex::new(None),
        })
    }

    /// A cached access token, fetched again a minute before it lapses.
    async fn token(&self, refresh: bool) -> Result<String, ContentError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if !refresh && Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (Some(id), Some(secret)) = (&self.settings.client_id, &self.settings.client_secret)
        else {
            return Err(ContentError::Credentials(
                "INGEST_CLIENT_ID and INGEST_CLIENT_SECRET are not set".into(),
            ));
        };
        let resp = self
            .http
            .post(&self.settings.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", secret.expose()),
                ("scope", "content:write content:act_as"),
            ])
            .send()
            .await
            .map_err(|e| ContentError::Unavailable(format!("auth service: {e}")))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ContentError::Unavailable(format!(
                "auth service answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(ContentError::Credentials(format!(
                "the auth service refused this service's credentials ({status})"
            )));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ContentError::Unavailable(format!("auth service: {e}")))?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| ContentError::Unavailable("auth service: no access_token".into()))?
            .to_owned();
        let ttl = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(60)
            .max(10);
        *cached = Some((token.clone(), Instant::now() + Duration::from_secs(ttl)));
        Ok(token)
    }

    /// Creates the item for `owner`; returns its id. `key` makes retries safe.
    pub async fn create_item(
        &self,
        owner: &str,
        item: &NewItem,
        key: &str,
        request_id: Option<&str>,
    ) -> Result<String, ContentError> {
        // Serialised once, straight from the borrowed parts: a 100 MiB document is
        // not copied into a JSON tree first.
        // Sized up front: growing by doubling would hold two large buffers at once.
        let text_bytes =
            item.body.len() + item.chunks.iter().map(|c| c.text.len() + 48).sum::<usize>();
        let mut body = Vec::with_capacity(text_bytes + text_bytes / 16 + 64 * 1024);
        serde_json::to_writer(
            &mut body,
            &ItemBody {
                title: &item.title,
                body: &item.body,
                kind: &item.kind,
                tags: &item.tags,
                source: &item.source,
                metadata: &item.metadata,
                chunks: &item.chunks,
            },
        )
        .map_err(|e| ContentError::Rejected(e.to_string()))?;
        let body = bytes::Bytes::from(body);
        self.post_item(owner, key, request_id, || body.clone().into())
            .await
    }

    /// Creates an item from the JSON `body` makes (asked again for a second attempt
    /// with a fresh token); returns its id. `key` makes retries safe.
    pub async fn post_item(
        &self,
        owner: &str,
        key: &str,
        request_id: Option<&str>,
        mut body: impl FnMut() -> reqwest::Body,
    ) -> Result<String, ContentError> {
        let url = format!(
            "{}/api/v1/content",
            self.settings.content_url.trim_end_matches('/')
        );
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await?;
            let mut req = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .header("x-on-behalf-of", owner)
                .header("idempotency-key", key)
                // Only the id back: the item may hold 100 MiB of text.
                .header("prefer", "return=minimal")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body());
            if let Some(id) = request_id {
                req = req.header("x-request-id", id);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| ContentError::Unavailable(e.to_string()))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return answer["id"].as_str().map(str::to_owned).ok_or_else(|| {
                    ContentError::Unavailable("the content service gave no item id".into())
                });
            }
            let detail = answer["detail"].as_str().unwrap_or_default().to_owned();
            return Err(
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    ContentError::Unavailable(format!("{status} {detail}"))
                } else {
                    ContentError::Rejected(format!("{status} {detail}"))
                },
            );
        }
    }
}

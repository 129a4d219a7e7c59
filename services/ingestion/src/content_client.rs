//! Writes ingested documents into the content service over HTTP, as the user: with a
//! token auth mints for this service acting for that user (scope `content:act_as`,
//! claim `act_for`), the user's id in `X-On-Behalf-Of`, the request id forwarded and
//! an `Idempotency-Key` per job, so a retried job never creates an item twice.
//!
//! Auth mints such a token only for users who delegated to this service: each user
//! request that may lead to writes first trades the user's own access token for one
//! (token exchange, RFC 8693, [`ContentClient::delegate`]), which records or renews
//! the delegation; queued jobs and feed polls later ask for a token for that user
//! with the client-credentials grant (`act_for`).

use std::time::{Duration, Instant};

use moka::sync::Cache;

use peermesh_common::config::Secret;
use serde::Deserialize;
use serde_json::Value;

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
    /// The user has not (or no longer) delegated to this service, or is disabled.
    #[error("the user has not let ingestion act for them: {0}")]
    NotDelegated(String),
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
                // Offsets alone: the content service takes the text from the body.
                let mut m = s.serialize_map(Some(2))?;
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
    /// Tokens acting for each user, with when to fetch a new one.
    tokens: Cache<String, (String, Instant)>,
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

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
            tokens: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(15 * 60))
                .build(),
        })
    }

    /// Records (or renews) the user's delegation with their own access token, unless a
    /// token acting for them is already at hand. Called by user requests that may lead
    /// to writes.
    pub async fn delegate(&self, owner: &str, user_token: &str) -> Result<(), ContentError> {
        if self.cached(owner).is_some() {
            return Ok(());
        }
        let params = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("scope", "content:write content:act_as"),
        ];
        self.fetch_token(owner, &params).await.map(drop)
    }

    fn cached(&self, owner: &str) -> Option<String> {
        self.tokens
            .get(owner)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(token, _)| token)
    }

    /// A token acting for `owner`: cached, or fetched again a minute before it lapses
    /// (or at once, when `refresh`).
    async fn token(&self, owner: &str, refresh: bool) -> Result<String, ContentError> {
        if !refresh {
            if let Some(token) = self.cached(owner) {
                return Ok(token);
            }
        }
        let params = [
            ("grant_type", "client_credentials"),
            ("scope", "content:write content:act_as"),
            ("act_for", owner),
        ];
        self.fetch_token(owner, &params).await
    }

    /// `POST /token` with this service's credentials and `params`; caches the token
    /// for `owner`.
    async fn fetch_token(
        &self,
        owner: &str,
        params: &[(&str, &str)],
    ) -> Result<String, ContentError> {
        let (Some(id), Some(secret)) = (&self.settings.client_id, &self.settings.client_secret)
        else {
            return Err(ContentError::Credentials(
                "INGEST_CLIENT_ID and INGEST_CLIENT_SECRET are not set".into(),
            ));
        };
        let mut form = vec![
            ("client_id", id.as_str()),
            ("client_secret", secret.expose()),
        ];
        form.extend_from_slice(params);
        let resp = peermesh_common::trace::propagate(self.http.post(&self.settings.token_url))
            .form(&form)
            .send()
            .await
            .map_err(|e| ContentError::Unavailable(format!("auth service: {e}")))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ContentError::Unavailable(format!(
                "auth service answered {status}"
            )));
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = body["error"].as_str().unwrap_or_default();
            let detail = body["error_description"].as_str().unwrap_or_default();
            return Err(if error == "invalid_grant" {
                ContentError::NotDelegated(detail.to_owned())
            } else {
                ContentError::Credentials(format!(
                    "the auth service refused this service's credentials ({status} {error})"
                ))
            });
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| ContentError::Unavailable("auth service: no access_token".into()))?
            .to_owned();
        let ttl = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(60)
            .max(10);
        self.tokens.insert(
            owner.to_owned(),
            (token.clone(), Instant::now() + Duration::from_secs(ttl)),
        );
        Ok(token)
    }

    /// Whether `owner` still has item `id` (a conditional GET, `If-None-Match: *`, so
    /// no body comes back): the user may have deleted what an upload made.
    pub async fn item_exists(&self, owner: &str, id: &str) -> Result<bool, ContentError> {
        let url = format!(
            "{}/api/v1/content/{id}",
            self.settings.content_url.trim_end_matches('/')
        );
        let resp = self
            .send_as(owner, || {
                self.http
                    .get(&url)
                    .header(reqwest::header::IF_NONE_MATCH, "*")
            })
            .await?;
        match resp.status().as_u16() {
            304 | 200 => Ok(true),
            404 => Ok(false),
            status => Err(ContentError::Unavailable(format!(
                "the content service answered {status}"
            ))),
        }
    }

    /// Sends what `request` builds to content acting for `owner` (token, on-behalf-of,
    /// trace), once more with a fresh token when the cached one is refused.
    async fn send_as(
        &self,
        owner: &str,
        mut request: impl FnMut() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ContentError> {
        let mut refreshed = false;
        loop {
            let token = self.token(owner, refreshed).await?;
            let resp = peermesh_common::trace::propagate(request())
                .bearer_auth(&token)
                .header("x-on-behalf-of", owner)
                .send()
                .await
                .map_err(|e| ContentError::Unavailable(e.to_string()))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            return Ok(resp);
        }
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
        let resp = self
            .send_as(owner, || {
                let req = self
                    .http
                    .post(&url)
                    .header("idempotency-key", key)
                    // Only the id back: the item may hold 100 MiB of text.
                    .header("prefer", "return=minimal")
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body());
                match request_id {
                    Some(id) => req.header("x-request-id", id),
                    None => req,
                }
            })
            .await?;
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return answer["id"].as_str().map(str::to_owned).ok_or_else(|| {
                ContentError::Unavailable("the content service gave no item id".into())
            });
        }
        let detail = answer["detail"].as_str().unwrap_or_default().to_owned();
        Err(
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                ContentError::Unavailable(format!("{status} {detail}"))
            } else {
                ContentError::Rejected(format!("{status} {detail}"))
            },
        )
    }
}

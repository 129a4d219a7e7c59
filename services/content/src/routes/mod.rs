//! Every route of the content service, registered in one place, and the shapes and
//! helpers they share.

mod accounts;
pub(crate) mod changes;
mod exports;
mod graph;
pub(crate) mod items;
mod search;
mod webhooks;

use actix_web::body::BoxBody;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, Responder};
use paperclip::actix::{web, Apiv2Schema, OperationModifier};

use peermesh_common::openapi::{Contract, Header, Operation};
use serde::Serialize;

use crate::error::ContentError;
use crate::store::items::{Item, Summary};

/// Registers the service's routes inside its `/api/v1/content` scope (health and
/// readiness come from `peermesh_common::server`). Fixed paths come before `/{id}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The prefix itself and the prefix with a trailing slash are the same collection.
    cfg.route("", web::get().to(items::list))
        .route("/", web::get().to(items::list))
        .route("", web::post().to(items::create))
        .route("/", web::post().to(items::create))
        .route("/search", web::get().to(search::search))
        .route("/search/similar", web::post().to(search::similar))
        .route("/tags", web::get().to(items::tags))
        .route("/accounts/{id}", web::delete().to(accounts::erase))
        .route("/changes", web::get().to(changes::list))
        .route("/changes/stream", web::get().to(changes::stream))
        .route("/webhooks", web::post().to(webhooks::create))
        .route("/webhooks", web::get().to(webhooks::list))
        .route("/webhooks/{id}", web::delete().to(webhooks::delete))
        .route("/export", web::post().to(exports::start))
        .route("/exports/{id}", web::get().to(exports::get))
        .route("/exports/{id}/archive", web::get().to(exports::archive))
        .route("/import", web::post().to(exports::import))
        .route("/{id}", web::get().to(items::get))
        .route("/{id}", web::patch().to(items::patch))
        .route("/{id}", web::delete().to(items::delete))
        .route("/{id}/chunks", web::get().to(items::chunks))
        .route("/{id}/embeddings", web::put().to(search::put_embeddings))
        .route("/{id}/embeddings", web::get().to(search::list_embeddings))
        .route("/{id}/links", web::post().to(graph::create_link))
        .route("/{id}/links", web::get().to(graph::list_links))
        .route(
            "/{id}/links/{link_id}",
            web::delete().to(graph::delete_link),
        )
        .route("/{id}/graph", web::get().to(graph::graph));
}

/// What the OpenAPI document says beyond the handlers' signatures (statuses, headers,
/// who may call); the API tests fail on any answer it does not describe.
pub const CONTRACT: Contract = {
    use Header::PreferenceApplied;
    use Header::{ETag, IdempotencyKey, IfMatch, IfNoneMatch, Location, OnBehalfOf, Prefer};
    Contract {
        public: &[],
        service_scopes: &[
            (
                crate::caller::SCOPE_WRITE,
                "Create and change the client's own items",
            ),
            (
                crate::caller::SCOPE_ACT_AS,
                "Read and write the items of the user named in X-On-Behalf-Of",
            ),
        ],
        operations: &[
            Operation::new("POST /")
                .statuses(&[200, 409])
                .request_headers(&[IdempotencyKey, Prefer, OnBehalfOf])
                .response_headers(&[
                    (201, &[Location, ETag, PreferenceApplied]),
                    (200, &[Location, ETag, PreferenceApplied]),
                ]),
            Operation::new("GET /").request_headers(&[OnBehalfOf]),
            Operation::new("GET /{id}")
                .statuses(&[304])
                .request_headers(&[IfNoneMatch, OnBehalfOf])
                .response_headers(&[(200, &[ETag]), (304, &[ETag])]),
            Operation::new("PATCH /{id}")
                .statuses(&[412])
                .request_headers(&[IfMatch, OnBehalfOf])
                .response_headers(&[(200, &[ETag]), (412, &[ETag])]),
            Operation::new("DELETE /{id}")
                .statuses(&[412])
                .request_headers(&[IfMatch, OnBehalfOf])
                .response_headers(&[(412, &[ETag])]),
            Operation::new("GET /{id}/chunks").request_headers(&[OnBehalfOf]),
            Operation::new("PUT /{id}/embeddings").request_headers(&[OnBehalfOf]),
            Operation::new("GET /{id}/embeddings").request_headers(&[OnBehalfOf]),
            Operation::new("POST /{id}/links")
                .statuses(&[409])
                .request_headers(&[OnBehalfOf])
                .response_headers(&[(201, &[Location])]),
            Operation::new("GET /{id}/links").request_headers(&[OnBehalfOf]),
            Operation::new("DELETE /{id}/links/{link_id}").request_headers(&[OnBehalfOf]),
            Operation::new("GET /{id}/graph").request_headers(&[OnBehalfOf]),
            Operation::new("GET /search").request_headers(&[OnBehalfOf]),
            Operation::new("POST /search/similar").request_headers(&[OnBehalfOf]),
            Operation::new("GET /tags").request_headers(&[OnBehalfOf]),
            Operation::new("GET /changes")
                .statuses(&[410])
                .request_headers(&[OnBehalfOf]),
            Operation::new("GET /changes/stream")
                .statuses(&[410])
                .request_headers(&[OnBehalfOf])
                .response_headers(&[(200, &[Header::AccelBuffering])])
                .event_stream(),
            Operation::new("POST /webhooks")
                .statuses(&[409])
                .request_headers(&[OnBehalfOf])
                .response_headers(&[(201, &[Location])]),
            Operation::new("GET /webhooks").request_headers(&[OnBehalfOf]),
            Operation::new("DELETE /webhooks/{id}").request_headers(&[OnBehalfOf]),
            Operation::new("POST /export").response_headers(&[(202, &[Location])]),
            Operation::new("POST /import")
                .raw_body("application/x-tar")
                .request_headers(&[IdempotencyKey]),
            Operation::new("GET /exports/{id}/archive")
                .statuses(&[409])
                .download()
                .response_headers(&[(
                    200,
                    &[Header::ContentDisposition, Header::ContentTypeOptions],
                )]),
            Operation::new("DELETE /accounts/{id}").service_only(
                peermesh_common::auth::SCOPE_DELETE_ACCOUNTS,
                "Erase a deleted account's data (the auth service's own token)",
            ),
        ],
    }
};

pub(crate) use graph::MAX_LINKS_PER_ITEM;

/// An answer whose body is streamed (an archive, Server-Sent Events), as built; its
/// contract entry documents it.
pub struct Streamed(pub HttpResponse);

impl Responder for Streamed {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.0
    }
}

impl paperclip::v2::schema::Apiv2Schema for Streamed {}
impl OperationModifier for Streamed {}

/// A body that sends what a task puts into the channel, as it comes (the channel's
/// bound keeps memory small).
pub(crate) fn channel_body(
    rx: tokio::sync::mpsc::Receiver<Result<actix_web::web::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<actix_web::web::Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
pub(crate) use peermesh_common::http::rfc3339;

/// The path id, or the same 404 a missing item gets: ids that are not ours to show
/// (malformed, missing or someone else's) are alike.
pub(crate) fn item_id(raw: &str) -> Result<String, ContentError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ContentError::NotFound)
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SourceOut {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

fn source_out(
    kind: Option<String>,
    url: Option<String>,
    filename: Option<String>,
    sha256: Option<String>,
) -> Option<SourceOut> {
    kind.map(|kind| SourceOut {
        kind,
        url,
        filename,
        sha256,
    })
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json_object(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

/// A whole item.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ItemOut {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub body: String,
    /// Size of the body in bytes (UTF-8).
    pub size: i64,
    pub kind: String,
    pub tags: Vec<String>,
    pub source: Option<SourceOut>,
    pub metadata: serde_json::Value,
    /// Changes on every update; the `ETag` is this number in quotes.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// In the answer to a PATCH that changed the body: the models whose vectors of this
    /// item are now stale (kept, and listed so by `GET /{id}/embeddings`, until new
    /// ones are PUT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_vectors: Option<Vec<String>>,
}

/// Takes the item's fields over (the body may be 100 MiB).
impl From<Item> for ItemOut {
    fn from(i: Item) -> Self {
        Self {
            tags: json_list(&i.tags),
            metadata: json_object(&i.metadata),
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
            id: i.id,
            owner_id: i.owner_id,
            title: i.title,
            body: i.body,
            size: i.body_bytes,
            kind: i.kind,
            source: source_out(
                i.source_type,
                i.source_url,
                i.source_filename,
                i.source_sha256,
            ),
            version: i.version,
            stale_vectors: None,
        }
    }
}

/// An item without its body, as lists, search hits and graphs show it.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ItemSummary {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    /// The first 280 characters of the body.
    pub excerpt: String,
    pub size: i64,
    pub kind: String,
    pub tags: Vec<String>,
    pub source: Option<SourceOut>,
    pub metadata: serde_json::Value,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Summary> for ItemSummary {
    fn from(i: &Summary) -> Self {
        Self {
            id: i.id.clone(),
            owner_id: i.owner_id.clone(),
            title: i.title.clone(),
            excerpt: i.excerpt.clone(),
            size: i.body_bytes,
            kind: i.kind.clone(),
            tags: json_list(&i.tags),
            source: source_out(
                i.source_type.clone(),
                i.source_url.clone(),
                i.source_filename.clone(),
                i.source_sha256.clone(),
            ),
            metadata: json_object(&i.metadata),
            version: i.version,
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

pub(crate) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The `If-Match` header as sent (an unreadable one matches nothing).
pub(crate) fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned())
}

/// Whether `If-Match` (when sent) names the current version; 412 otherwise.
pub(crate) fn check_if_match(if_match: Option<&str>, version: i64) -> Result<(), ContentError> {
    let Some(value) = if_match else {
        return Ok(());
    };
    let current = etag(version);
    let matches = value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current);
    if matches {
        Ok(())
    } else {
        Err(ContentError::changed(current))
    }
}

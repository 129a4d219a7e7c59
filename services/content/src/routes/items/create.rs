//! `POST /content`: a new item, with `Idempotency-Key` replays and `Prefer: return=minimal`.

use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::reply::{Code, Reply};
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{chunks_for, kind, metadata, source, ChunkIn, SourceIn};
use crate::caller::Caller;
use crate::error::ContentError;
use crate::large_json::{LargeJson, LargeMember};
use crate::routes::{etag, ItemOut};
use crate::store::items::{self as store, Item, NewChunk};
use crate::validate::{self, Errors};
use crate::{AppState, Limits, PREFIX};

#[derive(Debug, Clone, Serialize, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct CreateItem {
    /// 1..500 characters.
    pub title: String,
    /// Up to `CONTENT_MAX_BODY_BYTES` (default 100 MiB).
    pub body: String,
    /// A slug; default `note`.
    pub kind: Option<String>,
    /// At most 50, each 1..64 characters; stored lower-case.
    pub tags: Option<Vec<String>>,
    pub source: Option<SourceIn>,
    /// A JSON object (bounded size and depth).
    pub metadata: Option<serde_json::Value>,
    /// The body in pieces; computed by the service when absent.
    pub chunks: Option<Vec<ChunkIn>>,
}

impl LargeMember for CreateItem {
    const MEMBER: &'static str = "body";
    fn set_member(&mut self, value: String) {
        self.body = value;
    }
}

pub struct Prepared {
    pub item: Item,
    pub tags: Vec<String>,
    pub chunks: Vec<NewChunk>,
}

/// The SHA-256 of the request as JSON, to tell a replay from another request under
/// the same idempotency key; hashed while it is written out, never held whole.
fn request_hash(input: &CreateItem) -> String {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    let _ = serde_json::to_writer(&mut hashing, input);
    format!("{:x}", hashing.0.finalize())
}

/// Checks a new item and takes its parts over (the body and chunks are moved, not
/// copied: they may be 100 MiB).
fn prepare_create(input: CreateItem, owner: String, limits: &Limits) -> Result<Prepared, ApiError> {
    let mut errors = Errors::default();
    let title = validate::title(&input.title).unwrap_or_else(|m| {
        errors.add("title", m);
        String::new()
    });
    errors.check("body", validate::body(&input.body, limits.max_body_bytes));
    let kind = kind(input.kind.as_deref(), &mut errors);
    let tags = validate::tags(input.tags.as_deref().unwrap_or_default(), &mut errors);
    let source = input.source.as_ref().map(|s| source(s, &mut errors));
    let metadata = metadata(input.metadata.as_ref(), limits, &mut errors);
    let chunks = chunks_for(&input.body, input.chunks, limits, &mut errors);
    errors.finish()?;
    let now = chrono::Utc::now().naive_utc();
    let source = source.unwrap_or_default();
    Ok(Prepared {
        item: Item {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: owner,
            title,
            body_bytes: input.body.len() as i64,
            body: input.body,
            kind,
            tags: serde_json::Value::from(tags.clone()).to_string(),
            metadata,
            source_type: (!source.kind.is_empty()).then_some(source.kind),
            source_url: source.url,
            source_filename: source.filename,
            source_sha256: source.sha256,
            version: 1,
            created_at: now,
            updated_at: now,
        },
        tags,
        chunks,
    })
}

/// An archived item (see `crate::import`) as a new item of `owner`: checked as a
/// create is, with a new id and the archived times.
pub fn prepare_import(
    item: crate::export::ArchivedItem,
    owner: String,
    limits: &Limits,
) -> Result<Prepared, ApiError> {
    let (source, chunks) = crate::import::create_parts(&item);
    let time = |field: &str, value: &str| {
        chrono::DateTime::parse_from_rfc3339(value)
            .map(|t| t.naive_utc())
            .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 time"))
    };
    let (created_at, updated_at) = (
        time("created_at", &item.created_at)?,
        time("updated_at", &item.updated_at)?,
    );
    let input = CreateItem {
        title: item.title,
        body: item.body,
        kind: Some(item.kind),
        tags: Some(item.tags),
        source,
        metadata: (!item.metadata.is_null()).then_some(item.metadata),
        chunks: (!chunks.is_empty()).then_some(chunks),
    };
    let mut prepared = prepare_create(input, owner, limits)?;
    prepared.item.created_at = created_at;
    prepared.item.updated_at = updated_at;
    Ok(prepared)
}

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1..255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// 201 for a new item: the item with its `ETag` and `Location`.
fn created(item: Item) -> Reply<ItemOut, Code<201>> {
    let (tag, location) = (etag(item.version), format!("{PREFIX}/{}", item.id));
    Reply::new(ItemOut::from(item)).etag(tag).location(location)
}

/// What a create did: made the item, or found the Idempotency-Key used before (with
/// the same request body or another).
enum Outcome {
    Created(String),
    Replayed { same_body: bool, id: String },
}

/// The client asked for `Prefer: return=minimal` (RFC 7240).
fn prefers_minimal(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            let p = p.split(';').next().unwrap_or_default();
            p.trim().eq_ignore_ascii_case("return=minimal")
        })
}

/// Creates an item: 201 with `Location` and `ETag` (only `{"id"}` and `Location` with
/// `Prefer: return=minimal`). With an `Idempotency-Key`, a retry with the same body gets
/// the same item back; another body under the key is a 422.
#[api_v2_operation(summary = "Create a content item", tags(content))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    input: LargeJson<CreateItem>,
) -> Result<Reply<ItemOut, Code<201>>, ApiError> {
    let owner = caller.writable_owner()?;
    let key = idempotency_key(&req)?;
    let input = input.into_inner();
    let limits = state.limits.clone();
    // Validation, chunking and hashing are CPU work over bodies of up to 100 MiB.
    let wants_hash = key.is_some();
    let (prepared, request_hash) = tokio::task::spawn_blocking(move || {
        let hash = wants_hash.then(|| request_hash(&input));
        prepare_create(input, owner, &limits).map(|p| (std::sync::Arc::new(p), hash))
    })
    .await
    .map_err(ApiError::internal)??;

    let owner = prepared.item.owner_id.clone();
    // Shared, not copied, with a second attempt: the item may hold 100 MiB.
    let attempt =
        |prepared: std::sync::Arc<Prepared>, key: Option<String>, hash: Option<String>| {
            let owner = owner.clone();
            state.db.write(move |conn| {
                let now = prepared.item.created_at;
                if let (Some(key), Some(hash)) = (&key, &hash) {
                    if let Some((first_hash, item_id)) =
                        store::idempotent_replay(conn, &owner, key, now)?
                    {
                        return Ok(Outcome::Replayed {
                            same_body: first_hash == *hash,
                            id: item_id,
                        });
                    }
                    store::insert(conn, &prepared.item, &prepared.tags, &prepared.chunks)?;
                    store::remember_key(conn, &owner, key, hash, &prepared.item.id, now)?;
                } else {
                    store::insert(conn, &prepared.item, &prepared.tags, &prepared.chunks)?;
                }
                Ok(Outcome::Created(prepared.item.id.clone()))
            })
        };
    let retry = key.as_ref().map(|_| prepared.clone());
    let result = match attempt(prepared, key.clone(), request_hash.clone()).await {
        // Two requests with one key at once: the loser's insert of the key fails;
        // the winner's item is the answer.
        Err(e) if e.is_unique_violation() && retry.is_some() => {
            let retry = retry.ok_or_else(|| ApiError::internal("retry without key"))?;
            attempt(retry, key, request_hash).await?
        }
        other => other?,
    };
    let id = match result {
        Outcome::Created(id)
        | Outcome::Replayed {
            same_body: true,
            id,
        } => id,
        Outcome::Replayed {
            same_body: false, ..
        } => {
            return Err(ApiError::validation(vec![FieldError::new(
                "Idempotency-Key",
                "was already used with a different request body",
            )])
            .with_code("idempotency_key_reused"))
        }
    };
    if prefers_minimal(&req) {
        // Only `{"id"}` and `Location`: a writer of large documents (the ingestion
        // service) need not get 100 MiB back, nor the service read it back.
        let location = format!("{PREFIX}/{id}");
        return Ok(Reply::minimal(serde_json::json!({ "id": id })).location(location));
    }
    let item = state
        .db
        .read(move |conn| store::get(conn, Some(&owner), &id))
        .await?
        .ok_or(ContentError::NotFound)?;
    Ok(created(item))
}

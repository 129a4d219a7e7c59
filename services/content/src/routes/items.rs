//! Content items: create, list, read, update with ETags, delete; chunks and tags.

use actix_web::http::header;
use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema, NoContent};
use peermesh_common::pagination::PageRequest;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    check_if_match, etag, if_match, item_id, not_found, precondition_failed, ItemOut, ItemSummary,
    MaybeModified, Tagged,
};
use crate::caller::Caller;
use crate::large_json::{LargeJson, LargeMember};
use crate::query::SearchQuery;
use crate::store::items::{self as store, Changes, ChunkText, Item, ListFilter, NewChunk, Source};
use crate::validate::{self, Errors};
use crate::{AppState, Limits, PREFIX};
use peermesh_chunking as chunking;

#[derive(Debug, Clone, Serialize, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct SourceIn {
    /// What the item came from: `upload`, `url`, `feed`, `manual`, … (a slug).
    #[serde(rename = "type")]
    pub kind: String,
    pub url: Option<String>,
    pub filename: Option<String>,
    /// SHA-256 of the original bytes, lower-case hex.
    pub sha256: Option<String>,
}

/// A chunk given by the client; offsets count characters of the body.
#[derive(Debug, Clone, Serialize, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ChunkIn {
    /// The chunk's text; when omitted, the body's characters `start..end`.
    pub text: Option<String>,
    pub start: u64,
    pub end: u64,
}

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

#[derive(Debug, Clone, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct PatchItem {
    pub title: Option<String>,
    pub body: Option<String>,
    pub kind: Option<String>,
    pub tags: Option<Vec<String>>,
    pub source: Option<SourceIn>,
    pub metadata: Option<serde_json::Value>,
    /// Only together with `body`; computed by the service when a new body comes alone.
    pub chunks: Option<Vec<ChunkIn>>,
}

impl LargeMember for PatchItem {
    const MEMBER: &'static str = "body";
    fn set_member(&mut self, value: String) {
        self.body = Some(value);
    }
}

fn source(input: &SourceIn, errors: &mut Errors) -> Source {
    errors.check("source.type", validate::slug(&input.kind));
    if let Some(url) = &input.url {
        errors.check("source.url", validate::url(url));
    }
    if let Some(name) = &input.filename {
        errors.check("source.filename", validate::filename(name));
    }
    if let Some(sha) = &input.sha256 {
        errors.check("source.sha256", validate::sha256(sha));
    }
    Source {
        kind: input.kind.clone(),
        url: input.url.clone(),
        filename: input.filename.clone(),
        sha256: input.sha256.clone(),
    }
}

/// Checks client chunks against the body, or computes them.
fn chunks_for(
    body: &str,
    given: Option<Vec<ChunkIn>>,
    limits: &Limits,
    errors: &mut Errors,
) -> Vec<NewChunk> {
    let Some(given) = given else {
        let spans = chunking::spans(body, limits.chunk_chars);
        return spans.into_iter().map(NewChunk::from).collect();
    };
    if given.len() > validate::MAX_CHUNKS {
        errors.add("chunks", format!("at most {} chunks", validate::MAX_CHUNKS));
        return Vec::new();
    }
    let body_chars = body.chars().count() as u64;
    let mut out = Vec::with_capacity(given.len());
    let mut numbers = Vec::with_capacity(given.len());
    for (i, c) in given.into_iter().enumerate() {
        if c.start > c.end || c.end > body_chars {
            errors.add(
                format!("chunks[{i}]"),
                format!("start..end must lie within the body's {body_chars} characters"),
            );
            continue;
        }
        let text = match c.text {
            Some(text) if text.len() > limits.max_body_bytes => {
                errors.add(format!("chunks[{i}].text"), "is longer than a body may be");
                continue;
            }
            Some(text) => ChunkText::Own(text),
            // Byte offsets are found below, in one pass over the body.
            None => ChunkText::Body(c.start as usize..c.end as usize),
        };
        out.push(NewChunk {
            start: c.start as usize,
            end: c.end as usize,
            text,
        });
        numbers.push(i);
    }
    chars_to_bytes(body, &mut out);
    for (i, c) in numbers.into_iter().zip(&out) {
        if c.text(body).trim().is_empty() {
            errors.add(format!("chunks[{i}].text"), "must not be empty");
        }
    }
    out
}

/// Turns the character ranges of chunks given as offsets into byte ranges of `body`.
fn chars_to_bytes(body: &str, chunks: &mut [NewChunk]) {
    let mut wanted: Vec<usize> = chunks
        .iter()
        .filter_map(|c| match &c.text {
            ChunkText::Body(chars) => Some([chars.start, chars.end]),
            ChunkText::Own(_) => None,
        })
        .flatten()
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut bytes = std::collections::HashMap::with_capacity(wanted.len());
    let mut positions = body
        .char_indices()
        .map(|(byte, _)| byte)
        .chain(std::iter::once(body.len()))
        .enumerate();
    for want in wanted {
        if let Some((_, byte)) = positions.find(|&(chars, _)| chars == want) {
            bytes.insert(want, byte);
        }
    }
    let byte = |chars: &usize| bytes.get(chars).copied().unwrap_or(body.len());
    for c in chunks {
        if let ChunkText::Body(range) = &mut c.text {
            *range = byte(&range.start)..byte(&range.end);
        }
    }
}

fn kind(value: Option<&str>, errors: &mut Errors) -> String {
    let kind = value.unwrap_or("note");
    errors.check("kind", validate::slug(kind));
    kind.to_owned()
}

fn metadata(value: Option<&serde_json::Value>, limits: &Limits, errors: &mut Errors) -> String {
    match value {
        None => "{}".into(),
        Some(v) => validate::metadata(v, limits.metadata_max_bytes, limits.metadata_max_depth)
            .unwrap_or_else(|message| {
                errors.add("metadata", message);
                String::new()
            }),
    }
}

struct Prepared {
    item: Item,
    tags: Vec<String>,
    chunks: Vec<NewChunk>,
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

/// The `Idempotency-Key` header, checked.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
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

fn created(item: Item) -> Tagged<ItemOut, 201> {
    Tagged {
        etag: Some(etag(item.version)),
        location: Some(format!("{PREFIX}/{}", item.id)),
        body: ItemOut::from(item),
    }
}

enum Outcome {
    Created(String),
    Replayed(String),
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

/// 201 for a new item: the item with its `ETag`, or, when the client prefers
/// `return=minimal`, only `{"id"}` and `Location` — a writer of large documents (the
/// ingestion service) need not get 100 MiB back, nor the service read it back.
pub enum CreatedItem {
    Full(Box<Tagged<ItemOut, 201>>),
    Minimal(String),
}

impl actix_web::Responder for CreatedItem {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, req: &HttpRequest) -> actix_web::HttpResponse {
        match self {
            CreatedItem::Full(item) => (*item).respond_to(req),
            CreatedItem::Minimal(id) => actix_web::HttpResponse::Created()
                .insert_header((header::LOCATION, format!("{PREFIX}/{id}")))
                .insert_header(("preference-applied", "return=minimal"))
                .json(serde_json::json!({ "id": id })),
        }
    }
}

impl paperclip::v2::schema::Apiv2Schema for CreatedItem {
    fn name() -> Option<String> {
        Tagged::<ItemOut, 201>::name()
    }

    fn raw_schema() -> paperclip::v2::models::DefaultSchemaRaw {
        Tagged::<ItemOut, 201>::raw_schema()
    }
}

impl paperclip::actix::OperationModifier for CreatedItem {
    fn update_response(op: &mut paperclip::v2::models::DefaultOperationRaw) {
        Tagged::<ItemOut, 201>::update_response(op);
    }

    fn update_definitions(
        map: &mut std::collections::BTreeMap<String, paperclip::v2::models::DefaultSchemaRaw>,
    ) {
        Tagged::<ItemOut, 201>::update_definitions(map);
    }
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
) -> Result<CreatedItem, ApiError> {
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
                        return Ok(Err((first_hash == *hash, item_id)));
                    }
                    store::insert(conn, &prepared.item, &prepared.tags, &prepared.chunks)?;
                    store::remember_key(conn, &owner, key, hash, &prepared.item.id, now)?;
                } else {
                    store::insert(conn, &prepared.item, &prepared.tags, &prepared.chunks)?;
                }
                Ok(Ok(prepared.item.id.clone()))
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
    let outcome = match result {
        Ok(id) => Outcome::Created(id),
        Err((true, id)) => Outcome::Replayed(id),
        Err((false, _)) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "Idempotency-Key",
                "was already used with a different request body",
            )])
            .with_code("idempotency_key_reused"))
        }
    };
    let id = match outcome {
        Outcome::Created(id) | Outcome::Replayed(id) => id,
    };
    if prefers_minimal(&req) {
        return Ok(CreatedItem::Minimal(id));
    }
    let item = state
        .db
        .read(move |conn| store::get(conn, Some(&owner), &id))
        .await?
        .ok_or_else(not_found)?;
    Ok(CreatedItem::Full(Box::new(created(item))))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only items with this tag.
    pub tag: Option<String>,
    /// Only items of this kind.
    pub kind: Option<String>,
    /// Only items matching this full-text query (search syntax of `GET /search`).
    pub q: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ItemsPage {
    pub items: Vec<ItemSummary>,
    pub next_cursor: Option<String>,
}

/// The caller's items, newest first, optionally filtered.
#[api_v2_operation(summary = "List content items", tags(content))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<ItemsPage>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let mut errors = Errors::default();
    let text = match query.q.as_deref() {
        Some(q) => SearchQuery::parse(q).map_err(|m| errors.add("q", m)).ok(),
        None => None,
    };
    let filter = ListFilter {
        tag: query.tag.as_ref().map(|t| t.trim().to_lowercase()),
        kind: query.kind.clone(),
        text,
    };
    errors.finish()?;
    let owner = caller.owner.clone();
    let request = page.clone();
    let mut items = state
        .db
        .run(move |conn| {
            store::page(
                conn,
                &owner,
                &filter,
                request.fetch(),
                request.after.as_deref(),
            )
        })
        .await?;
    let next_cursor = page.finish(&mut items, |i| &i.id);
    Ok(web::Json(ItemsPage {
        items: items.iter().map(ItemSummary::from).collect(),
        next_cursor,
    }))
}

/// One item with its body; `If-None-Match` with the current ETag gives 304.
#[api_v2_operation(summary = "Get a content item", tags(content))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<MaybeModified<ItemOut>, ApiError> {
    let id = item_id(&path)?;
    let scope = caller.read_scope();
    let item = state
        .db
        .read(move |conn| store::get(conn, scope.as_deref(), &id))
        .await?
        .ok_or_else(not_found)?;
    let tag = etag(item.version);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(str::trim).any(|t| t == tag || t == "*"));
    if fresh {
        return Ok(MaybeModified::NotModified(tag));
    }
    Ok(MaybeModified::Body(Tagged {
        body: ItemOut::from(item),
        etag: Some(tag),
        location: None,
    }))
}

/// Checks a change and takes its parts over (a new body and its chunks are moved, not
/// copied: they may be 100 MiB).
fn prepare_patch(input: PatchItem, limits: &Limits) -> Result<Changes, ApiError> {
    let mut errors = Errors::default();
    let mut changes = Changes::default();
    if let Some(title) = &input.title {
        match validate::title(title) {
            Ok(t) => changes.title = Some(t),
            Err(m) => errors.add("title", m),
        }
    }
    if let Some(kind_value) = &input.kind {
        changes.kind = Some(kind(Some(kind_value), &mut errors));
    }
    if let Some(tags) = &input.tags {
        changes.tags = Some(validate::tags(tags, &mut errors));
    }
    if let Some(s) = &input.source {
        changes.source = Some(source(s, &mut errors));
    }
    if input.metadata.is_some() {
        changes.metadata = Some(metadata(input.metadata.as_ref(), limits, &mut errors));
    }
    match (input.body, input.chunks) {
        (Some(body), chunks) => {
            errors.check("body", validate::body(&body, limits.max_body_bytes));
            changes.chunks = Some(chunks_for(&body, chunks, limits, &mut errors));
            changes.body = Some(body);
        }
        (None, Some(_)) => errors.add("chunks", "may only be sent together with a new body"),
        (None, None) => {}
    }
    errors.finish()?;
    Ok(changes)
}

/// Changes an item. With `If-Match`, only if it is still at that ETag (412 otherwise).
/// A new body replaces the chunks; the item's vectors are kept but marked stale (they
/// describe the old text), and the answer names their models in `stale_vectors`.
#[api_v2_operation(summary = "Update a content item", tags(content))]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    input: LargeJson<PatchItem>,
) -> Result<Tagged<ItemOut, 200>, ApiError> {
    let id = item_id(&path)?;
    let owner = caller.writable_owner()?;
    let input = input.into_inner();
    let limits = state.limits.clone();
    let condition = if_match(&req);
    let changes = tokio::task::spawn_blocking(move || prepare_patch(input, &limits))
        .await
        .map_err(ApiError::internal)??;
    let item = state
        .db
        .write(move |conn| {
            let Some(item) = store::get(conn, Some(&owner), &id)? else {
                return Ok(Err(not_found()));
            };
            if let Err(e) = check_if_match(condition.as_deref(), item.version) {
                return Ok(Err(e));
            }
            let now = chrono::Utc::now().naive_utc();
            let new_body = changes.chunks.is_some();
            if !store::update(conn, &item, &changes, now)? {
                // Another writer got there first (PostgreSQL, read committed).
                return Ok(Err(precondition_failed(
                    "the item was changed by another request; fetch it and try again".into(),
                    &etag(item.version + 1),
                )));
            }
            // Its vectors describe the old text: kept, marked stale, and named here.
            let stale = if new_body {
                Some(crate::store::embeddings::mark_stale(conn, &id)?).filter(|m| !m.is_empty())
            } else {
                None
            };
            Ok(store::get(conn, Some(&owner), &id)?
                .map(|item| (item, stale))
                .ok_or_else(not_found))
        })
        .await??;
    let (item, stale_vectors) = item;
    Ok(Tagged {
        etag: Some(etag(item.version)),
        body: ItemOut {
            stale_vectors,
            ..ItemOut::from(item)
        },
        location: None,
    })
}

/// Deletes an item with its chunks, links and vectors; honours `If-Match`.
#[api_v2_operation(summary = "Delete a content item", tags(content))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let id = item_id(&path)?;
    let owner = caller.writable_owner()?;
    let condition = if_match(&req);
    state
        .db
        .write(move |conn| {
            let Some(item) = store::get(conn, Some(&owner), &id)? else {
                return Ok(Err(not_found()));
            };
            if let Err(e) = check_if_match(condition.as_deref(), item.version) {
                return Ok(Err(e));
            }
            store::delete(conn, &owner, &id)?;
            Ok(Ok(()))
        })
        .await??;
    Ok(NoContent)
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ChunkOut {
    pub index: i32,
    pub text: String,
    /// Character offsets into the body.
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ChunksPage {
    pub items: Vec<ChunkOut>,
    pub next_cursor: Option<String>,
}

/// The item's chunks in order.
#[api_v2_operation(summary = "List an item's chunks", tags(content))]
pub async fn chunks(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ChunksPage>, ApiError> {
    let id = item_id(&path)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let after = match &page.after {
        Some(a) => Some(a.parse::<i32>().map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                "cursor",
                "is not a cursor this API gave out",
            )])
        })?),
        None => None,
    };
    let scope = caller.read_scope();
    let fetch = page.fetch();
    let rows = state
        .db
        .run(move |conn| {
            if store::visible_owner(conn, scope.as_deref(), &id)?.is_none() {
                return Ok(None);
            }
            store::chunks(conn, &id, after, fetch).map(Some)
        })
        .await?
        .ok_or_else(not_found)?;
    let mut items: Vec<(String, ChunkOut)> = rows
        .into_iter()
        .map(|c| {
            (
                c.idx.to_string(),
                ChunkOut {
                    index: c.idx,
                    text: c.text,
                    start: c.start_offset,
                    end: c.end_offset,
                },
            )
        })
        .collect();
    let next_cursor = page.finish(&mut items, |(cursor, _)| cursor);
    Ok(web::Json(ChunksPage {
        items: items.into_iter().map(|(_, c)| c).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct TagsQuery {
    /// How many tags, most used first: 1..=1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TagCount {
    pub tag: String,
    pub count: i64,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TagsOut {
    pub items: Vec<TagCount>,
}

/// The caller's tags with how many items carry each, most used first.
#[api_v2_operation(summary = "List tags with counts", tags(content))]
pub async fn tags(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TagsQuery>,
) -> Result<web::Json<TagsOut>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 1000",
        )]));
    }
    let owner = caller.owner.clone();
    let rows = state
        .db
        .run(move |conn| store::tag_counts(conn, &owner, limit))
        .await?;
    Ok(web::Json(TagsOut {
        items: rows
            .into_iter()
            .map(|(tag, count)| TagCount { tag, count })
            .collect(),
    }))
}

//! `PATCH /content/{id}`: changes under `If-Match`; a new body re-chunks and marks vectors stale.

use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::reply::Reply;
use peermesh_common::ApiError;
use serde::Deserialize;

use super::{chunks_for, kind, metadata, source, ChunkIn, SourceIn};
use crate::caller::Caller;
use crate::error::ContentError;
use crate::large_json::{LargeJson, LargeMember};
use crate::routes::{check_if_match, etag, if_match, item_id, ItemOut};
use crate::store::items::{self as store, Changes};
use crate::validate::{self, Errors};
use crate::{AppState, Limits};

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
) -> Result<Reply<ItemOut>, ApiError> {
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
        .try_write(move |conn| {
            let item = store::get(conn, Some(&owner), &id)?.ok_or(ContentError::NotFound)?;
            check_if_match(condition.as_deref(), item.version)?;
            let now = chrono::Utc::now().naive_utc();
            let new_body = changes.chunks.is_some();
            if !store::update(conn, &item, &changes, now)? {
                // Another writer got there first (PostgreSQL, read committed).
                return Err(ContentError::Changed {
                    detail: "the item was changed by another request; fetch it and try again"
                        .into(),
                    current: etag(item.version + 1),
                });
            }
            // Its vectors describe the old text: kept, marked stale, and named here.
            let stale = if new_body {
                Some(crate::store::embeddings::mark_stale(conn, &id)?).filter(|m| !m.is_empty())
            } else {
                None
            };
            let item = store::get(conn, Some(&owner), &id)?.ok_or(ContentError::NotFound)?;
            Ok((item, stale))
        })
        .await?;
    let (item, stale_vectors) = item;
    let tag = etag(item.version);
    Ok(Reply::new(ItemOut {
        stale_vectors,
        ..ItemOut::from(item)
    })
    .etag(tag))
}

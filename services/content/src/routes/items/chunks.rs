//! `GET /content/{id}/chunks`: an item's chunks, paged.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::pagination::PageRequest;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::error::ContentError;
use crate::routes::item_id;
use crate::store::items as store;
use crate::AppState;

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
        .ok_or(ContentError::NotFound)?;
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

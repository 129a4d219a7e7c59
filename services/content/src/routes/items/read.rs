//! `GET /content` (the caller's items, newest first) and `GET /content/{id}`.

use actix_web::http::header;
use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::pagination::PageRequest;
use peermesh_common::reply::Reply;
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::error::ContentError;
use crate::query::SearchQuery;
use crate::routes::{etag, item_id, ItemOut, ItemSummary};
use crate::store::items::{self as store, ListFilter};
use crate::validate::Errors;
use crate::AppState;

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
) -> Result<Reply<ItemOut>, ApiError> {
    let id = item_id(&path)?;
    let scope = caller.read_scope();
    let item = state
        .db
        .read(move |conn| store::get(conn, scope.as_deref(), &id))
        .await?
        .ok_or(ContentError::NotFound)?;
    let tag = etag(item.version);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(str::trim).any(|t| t == tag || t == "*"));
    if fresh {
        return Ok(Reply::not_modified(tag));
    }
    Ok(Reply::new(ItemOut::from(item)).etag(tag))
}

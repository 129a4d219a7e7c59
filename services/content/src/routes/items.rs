//! Content items.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::auth::Principal;
use peermesh_common::pagination::PageRequest;
use peermesh_common::ApiError;
use serde::{Deserialize, Serialize};

use crate::store::{self, ContentItem};
use crate::AppState;

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ItemOut {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub kind: String,
    pub created_at: String,
    pub updated_at: String,
}

fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl From<&ContentItem> for ItemOut {
    fn from(item: &ContentItem) -> Self {
        Self {
            id: item.id.clone(),
            owner_id: item.owner_id.clone(),
            title: item.title.clone(),
            kind: item.kind.clone(),
            created_at: rfc3339(item.created_at),
            updated_at: rfc3339(item.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ItemsPage {
    pub items: Vec<ItemOut>,
    pub next_cursor: Option<String>,
}

/// The caller's items, newest first.
#[api_v2_operation(summary = "List content items", tags(content))]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<web::Json<ItemsPage>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let owner = principal.subject().to_owned();
    let request = page.clone();
    let mut items = state
        .db
        .run(move |conn| store::page(conn, &owner, request.fetch(), request.after.as_deref()))
        .await?;
    let next_cursor = page.finish(&mut items, |i| &i.id);
    Ok(web::Json(ItemsPage {
        items: items.iter().map(ItemOut::from).collect(),
        next_cursor,
    }))
}

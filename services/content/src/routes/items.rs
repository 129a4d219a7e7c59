//! Content items.

use base64::Engine as _;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::auth::Principal;
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use crate::store::{self, ContentItem, Scope};
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

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// The caller's items, newest first.
#[api_v2_operation(summary = "List content items", tags(content))]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<web::Json<ItemsPage>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    let after = match &query.cursor {
        None => None,
        Some(c) => Some(
            b64()
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::validation(vec![FieldError::new(
                        "cursor",
                        "is not a cursor this API gave out",
                    )])
                })?,
        ),
    };
    let scope = Scope::Owner(principal.subject().to_owned());
    let mut items = state
        .db
        .run(move |conn| store::page(conn, &scope, limit + 1, after.as_deref()))
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|i| b64().encode(i.id.as_bytes()))
    } else {
        None
    };
    Ok(web::Json(ItemsPage {
        items: items.iter().map(ItemOut::from).collect(),
        next_cursor,
    }))
}

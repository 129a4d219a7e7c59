//! `GET /content/tags`: the caller's tags with their counts.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::store::items as store;
use crate::AppState;

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

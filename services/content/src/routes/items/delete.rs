//! `DELETE /content/{id}` with its chunks, links and vectors.

use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, NoContent};
use peermesh_common::ApiError;

use crate::caller::Caller;
use crate::error::ContentError;
use crate::routes::{check_if_match, if_match, item_id};
use crate::store::items as store;
use crate::AppState;

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
        .try_write(move |conn| {
            let item = store::get(conn, Some(&owner), &id)?.ok_or(ContentError::NotFound)?;
            check_if_match(condition.as_deref(), item.version)?;
            store::delete(conn, &owner, &id)?;
            Ok::<_, ContentError>(())
        })
        .await?;
    Ok(NoContent)
}

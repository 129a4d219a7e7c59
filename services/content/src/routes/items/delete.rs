//! `DELETE /content/{id}` with its chunks, links and vectors.

use actix_web::HttpRequest;
use paperclip::actix::{api_v2_operation, web, NoContent};
use peermesh_common::ApiError;

use crate::caller::Caller;
use crate::routes::{check_if_match, if_match, item_id, not_found};
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
